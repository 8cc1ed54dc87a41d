/*
 * proxy: Services and EndpointSlices (all namespaces, as kube-proxy
 * watches them) kept by two informers; every change marks its Service
 * dirty, and one zero-delay event applies what is dirty: each Service's
 * objects are rebuilt from the caches (proxy_rules.c) and diffed against
 * what was applied last, and the result runs through libnftables as one
 * transaction. The start installs the table and every Service in one
 * transaction too (deleting whatever an earlier run left). A failed
 * transaction changes nothing in the kernel: the proxy then redoes a full
 * sync after a second.
 *
 * Endpoints: conditions.ready (a missing ready counts as ready, as the
 * API says); when a port has no ready endpoint, the serving and
 * terminating ones (kube-proxy's fallback). The EndpointSlice controller
 * marks endpoints of NotReady nodes not ready.
 *
 * Masquerade of ClusterIP traffic, as kube-proxy does it: all of it with
 * --masquerade-all (default false); else what comes from outside
 * --cluster-cidr, when set. Hairpin traffic is masqueraded whatever the
 * flags: a connection DNATed back out of the interface it came in by (a
 * pod to an endpoint on its own CNI bridge). Kubernetes asks for
 * br_netfilter there; without it the endpoint's reply would cross the
 * bridge alone and skip conntrack's reverse DNAT. Masquerading more than
 * that costs every connection an SNAT (doc/DESIGN.md, Services).
 */
#include "config.h"
#include "cidr.h"
#include "informer.h"
#include "kinds.h"
#include "klet.h"
#include "proxy.h"
#include "smap.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <nftables/libnftables.h>
#include <stdlib.h>
#include <string.h>

struct kpx {
    struct klet *k;
    struct nft_ctx *nft;
    inf_t *svcs, *slices; /* the kubelet's (services.c), borrowed */
    smap_t *applied;      /* "ns/name" -> struct kpx_objs * as the kernel has them */
    smap_t *dirty;        /* "ns/name" -> (void *)1 */
    struct event *ev;
    bool full;             /* the next run is a full sync */
    char cluster_cidr[20]; /* --cluster-cidr, canonical; "" when unset or not IPv4 */
};

struct nft_ctx *kpx_nft_new(void)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (nft) {
        nft_ctx_buffer_output(nft);
        nft_ctx_buffer_error(nft);
    }
    return nft;
}

int kpx_nft_run(struct nft_ctx *nft, const char *script, char **err)
{
    if (nft_run_cmd_from_buffer(nft, script) == 0)
        return 0;
    const char *e = nft_ctx_get_error_buffer(nft);
    *err = xstrdup(e && *e ? e : "nftables transaction failed");
    return -1;
}

int kpx_nft_once(const char *script, char **err)
{
    struct nft_ctx *nft = kpx_nft_new();
    if (!nft) {
        *err = xstrdup("libnftables context failed");
        return -1;
    }
    int rc = kpx_nft_run(nft, script, err);
    nft_ctx_free(nft);
    return rc;
}

static const char *label(const Coracle__V1__ObjectMeta *m, const char *key)
{
    for (size_t i = 0; m && i < m->n_labels; i++)
        if (!strcmp(m->labels[i]->key, key))
            return m->labels[i]->value;
    return NULL;
}

static void proto_lower(char *dst, const char *src)
{
    size_t i = 0;
    for (src = src && *src ? src : "TCP"; src[i] && i < 7; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static bool is_v4(const char *ip)
{
    struct in_addr a;
    return ip && inet_pton(AF_INET, ip, &a) == 1;
}

/* The model of one Service's endpoints, gathered from its slices. */
struct gather {
    const char *ns, *name, *node;
    const Coracle__V1__ServicePort *sp;
    char proto[8];
    bool fallback; /* taking serving+terminating endpoints */
    struct kpx_ep *eps;
    size_t neps;
};

static bool ep_usable(const Coracle__V1__Endpoint *e, bool fallback)
{
    const Coracle__V1__EndpointConditions *c = e->conditions;
    if (!fallback)
        return !c || !c->has_ready || c->ready;
    return c && c->has_serving && c->serving && c->has_terminating && c->terminating;
}

static int gather_slice(const ProtobufCMessage *obj, void *arg)
{
    struct gather *g = arg;
    const Coracle__V1__EndpointSlice *s = (const void *)obj;
    const char *svc = label(s->metadata, "kubernetes.io/service-name");
    if (!svc || strcmp(svc, g->name) || !s->metadata || strcmp(s->metadata->namespace_, g->ns))
        return 0;
    if (s->addresstype && strcmp(s->addresstype, "IPv4"))
        return 0;
    const char *pname = g->sp->name ? g->sp->name : "";
    int port = -1;
    for (size_t i = 0; i < s->n_ports; i++) {
        char pr[8];
        proto_lower(pr, s->ports[i]->protocol);
        if (!strcmp(s->ports[i]->name ? s->ports[i]->name : "", pname) && !strcmp(pr, g->proto) &&
            s->ports[i]->has_port)
            port = s->ports[i]->port;
    }
    if (port <= 0)
        return 0;
    for (size_t i = 0; i < s->n_endpoints; i++) {
        const Coracle__V1__Endpoint *e = s->endpoints[i];
        if (!e->n_addresses || !is_v4(e->addresses[0]) || !ep_usable(e, g->fallback))
            continue;
        bool dup = false;
        for (size_t j = 0; j < g->neps; j++)
            dup |= !strcmp(g->eps[j].ip, e->addresses[0]) && g->eps[j].port == port;
        if (dup)
            continue;
        g->eps = xrealloc(g->eps, (g->neps + 1) * sizeof *g->eps);
        g->eps[g->neps++] =
            (struct kpx_ep){e->addresses[0], port, e->nodename && !strcmp(e->nodename, g->node)};
    }
    return 0;
}

/* The objects the Service ns/name should have now (none when it is gone). */
static void svc_build(struct kpx *px, const char *key, struct kpx_objs *out)
{
    const Coracle__V1__Service *svc = (const void *)inf_get_key(px->svcs, key);
    if (!svc || !svc->spec || !svc->metadata)
        return;
    const Coracle__V1__ServiceSpec *sp = svc->spec;
    if (sp->type && !strcmp(sp->type, "ExternalName"))
        return;
    const char *vips[2];
    size_t nvips = 0;
    for (size_t i = 0; i < sp->n_clusterips && nvips < 2; i++)
        if (is_v4(sp->clusterips[i]))
            vips[nvips++] = sp->clusterips[i];
    if (!nvips && is_v4(sp->clusterip))
        vips[nvips++] = sp->clusterip;
    const char **ext = xcalloc(sp->n_externalips + 1, sizeof *ext);
    size_t next = 0;
    for (size_t i = 0; i < sp->n_externalips; i++)
        if (is_v4(sp->externalips[i]))
            ext[next++] = sp->externalips[i];
    struct kpx_port *ports = xcalloc(sp->n_ports + 1, sizeof *ports);
    struct gather *gs = xcalloc(sp->n_ports + 1, sizeof *gs);
    for (size_t i = 0; i < sp->n_ports; i++) {
        struct gather *g = &gs[i];
        *g = (struct gather){.ns = svc->metadata->namespace_,
                             .name = svc->metadata->name,
                             .node = px->k->cfg.node_name,
                             .sp = sp->ports[i]};
        proto_lower(g->proto, sp->ports[i]->protocol);
        inf_foreach(px->slices, gather_slice, g);
        if (!g->neps) {
            g->fallback = true;
            inf_foreach(px->slices, gather_slice, g);
        }
        ports[i] = (struct kpx_port){sp->ports[i]->name ? sp->ports[i]->name : "",
                                     g->proto,
                                     sp->ports[i]->port,
                                     sp->ports[i]->has_nodeport ? sp->ports[i]->nodeport : 0,
                                     g->eps,
                                     g->neps};
    }
    int aff = 0;
    if (sp->sessionaffinity && !strcmp(sp->sessionaffinity, "ClientIP")) {
        aff = 10800; /* Kubernetes' default */
        if (sp->sessionaffinityconfig && sp->sessionaffinityconfig->clientip &&
            sp->sessionaffinityconfig->clientip->has_timeoutseconds &&
            sp->sessionaffinityconfig->clientip->timeoutseconds > 0)
            aff = sp->sessionaffinityconfig->clientip->timeoutseconds;
    }
    struct kpx_svc m = {
        .ns = svc->metadata->namespace_,
        .name = svc->metadata->name,
        .vips = vips,
        .nvips = nvips,
        .ext_ips = ext,
        .next_ips = next,
        .ext_local = sp->externaltrafficpolicy && !strcmp(sp->externaltrafficpolicy, "Local"),
        .affinity_timeout = aff,
        .masq_all = px->k->cfg.masquerade_all,
        .cluster_cidr = px->cluster_cidr,
        .ports = ports,
        .nports = sp->n_ports,
    };
    kpx_svc_objs(&m, out);
    for (size_t i = 0; i < sp->n_ports; i++)
        free(gs[i].eps);
    free(gs);
    free(ports);
    free(ext);
}

static void objs_free(void *v)
{
    if (!v)
        return;
    kpx_objs_free(v);
    free(v);
}

/* Appends src's objects to dst without copying their strings (dst borrows them). */
static void objs_append(struct kpx_objs *dst, const struct kpx_objs *src)
{
    dst->v = xrealloc(dst->v, (dst->n + src->n + 1) * sizeof *dst->v);
    memcpy(dst->v + dst->n, src->v, src->n * sizeof *src->v);
    dst->n += src->n;
}

struct pending {
    char **keys;
    struct kpx_objs **objs;
    size_t n;
};

static int collect_key(const char *key, void *val, void *arg)
{
    struct pending *p = arg;
    p->keys = xrealloc(p->keys, (p->n + 1) * sizeof *p->keys);
    p->keys[p->n++] = xstrdup(key);
    return 0;
}

static int collect_obj(const ProtobufCMessage *obj, void *arg)
{
    char *key = inf_key_of(obj);
    collect_key(key, NULL, arg);
    free(key);
    return 0;
}

static void run_soon(struct kpx *px, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(px->ev, &tv);
}

/* Applies the dirty Services (or, on a full sync, every Service) in one transaction. */
static void kpx_apply(evutil_socket_t fd, short what, void *arg)
{
    struct kpx *px = arg;
    if (!inf_synced(px->svcs) || !inf_synced(px->slices))
        return; /* the synced handlers run us again */
    int64_t t0 = now_ns();
    struct pending p = {0};
    struct buf b = {0};
    static const struct kpx_objs none;
    bool full = px->full;
    if (full) {
        kpx_script_base(&b);
        inf_foreach(px->svcs, collect_obj, &p);
    } else {
        smap_each(px->dirty, collect_key, &p);
    }
    smap_clear(px->dirty, NULL);
    p.objs = xcalloc(p.n + 1, sizeof *p.objs);
    struct kpx_objs all = {0}; /* a full sync's objects, borrowed from p.objs */
    for (size_t i = 0; i < p.n; i++) {
        p.objs[i] = xcalloc(1, sizeof **p.objs);
        svc_build(px, p.keys[i], p.objs[i]);
        const struct kpx_objs *old = full ? NULL : smap_get(px->applied, p.keys[i]);
        if (full)
            objs_append(&all, p.objs[i]);
        else
            kpx_script_diff(&b, old ? old : &none, p.objs[i]);
    }
    /* a full sync in one diff: every chain's rules before any map element, as the kernel
     * walks a map's elements each time a rule binds it */
    if (full)
        kpx_script_diff(&b, &none, &all);
    free(all.v);
    char *err = NULL;
    if (b.len && kpx_nft_run(px->nft, b.p, &err) < 0) {
        log_warn("proxy: %s sync failed, full sync in 1 s: %s", full ? "full" : "incremental", err);
        free(err);
        px->full = true;
        run_soon(px, 1000);
        for (size_t i = 0; i < p.n; i++)
            objs_free(p.objs[i]);
    } else {
        if (full)
            smap_clear(px->applied, objs_free);
        for (size_t i = 0; i < p.n; i++)
            objs_free(smap_put(px->applied, p.keys[i], p.objs[i]));
        px->full = false;
        if (full)
            log_info("proxy: full sync of %zu services in %.1f ms (%zu bytes of rules)", p.n,
                     (now_ns() - t0) / 1e6, b.len);
        else
            log_debug("proxy: sync of %zu services in %.1f ms (%zu bytes of rules)", p.n,
                      (now_ns() - t0) / 1e6, b.len);
    }
    for (size_t i = 0; i < p.n; i++)
        free(p.keys[i]);
    free(p.keys);
    free(p.objs);
    buf_free(&b);
}

static void mark(struct kpx *px, const char *ns, const char *name)
{
    if (!ns || !name)
        return;
    char *key = xasprintf("%s/%s", ns, name);
    smap_put(px->dirty, key, (void *)1);
    free(key);
    if (!px->full)
        run_soon(px, 0);
}

static void svc_changed(inf_t *inf, const ProtobufCMessage *obj, struct kpx *arg)
{
    const Coracle__V1__Service *s = (const void *)obj;
    if (s->metadata)
        mark(arg, s->metadata->namespace_, s->metadata->name);
}

static void slice_changed(inf_t *inf, const ProtobufCMessage *obj, struct kpx *arg)
{
    const Coracle__V1__EndpointSlice *s = (const void *)obj;
    if (s->metadata)
        mark(arg, s->metadata->namespace_, label(s->metadata, "kubernetes.io/service-name"));
}

void klet_proxy_changed(struct klet *k, inf_t *inf, const ProtobufCMessage *old,
                        const ProtobufCMessage *obj)
{
    struct kpx *px = k->proxy;
    if (!px)
        return;
    if (inf_kind(inf) == &kind_endpointslice) {
        if (old)
            slice_changed(inf, old, px); /* the slice may have moved to another Service */
        slice_changed(inf, obj, px);
    } else {
        svc_changed(inf, obj, px);
    }
}

void klet_proxy_synced(struct klet *k)
{
    struct kpx *px = k->proxy;
    if (px && inf_synced(px->svcs) && inf_synced(px->slices)) {
        px->full = true;
        run_soon(px, 0);
    }
}

int klet_proxy_start(struct klet *k)
{
    struct kpx *px = xcalloc(1, sizeof *px);
    px->k = k;
    px->nft = kpx_nft_new();
    if (!px->nft) {
        log_warn("proxy: libnftables context failed: no Service rules on this node");
        free(px);
        return -1;
    }
    /* libnftables works here? An empty table made and removed says so. */
    char *err = NULL;
    if (kpx_nft_run(px->nft, "add table " KPX_TABLE "\n", &err) < 0) {
        log_warn("proxy: nftables does not work here (%s): no Service rules on this node", err);
        free(err);
        nft_ctx_free(px->nft);
        free(px);
        return -1;
    }
    const char *cc = k->cfg.cluster_cidr;
    struct cidr4 c;
    if (cc && *cc && cidr_parse4(cc, &c) == 0)
        cidr_format4(&c, px->cluster_cidr, sizeof px->cluster_cidr);
    else if (cc && *cc)
        log_warn("proxy: --cluster-cidr \"%s\" is not an IPv4 CIDR: ClusterIP traffic from "
                 "outside the cluster is not masqueraded",
                 cc);
    px->applied = smap_new();
    px->dirty = smap_new();
    px->ev = event_new(k->base, -1, 0, kpx_apply, px);
    px->full = true;
    px->svcs = k->svc_inf;
    px->slices = k->slice_inf;
    run_soon(px, 0); /* already listed when the kubelet's watch started earlier */
    k->proxy = px;
    log_info("proxy: nftables mode, table %s", KPX_TABLE);
    return 0;
}

int kpx_cleanup(char **err)
{
    return kpx_nft_once("add table " KPX_TABLE "\ndelete table " KPX_TABLE "\n", err);
}

void klet_proxy_stop(struct klet *k)
{
    struct kpx *px = k->proxy;
    if (!px)
        return;
    char *err = NULL;
    if (kpx_cleanup(&err) < 0) {
        log_warn("proxy: removing table %s: %s", KPX_TABLE, err);
        free(err);
    }
    event_free(px->ev);
    smap_free(px->applied, objs_free);
    smap_free(px->dirty, NULL);
    nft_ctx_free(px->nft);
    free(px);
    k->proxy = NULL;
}

bool klet_proxy_kubernetes(const struct klet *k, char *ip, size_t ip_len, int *port)
{
    const struct kpx *px = k->proxy;
    const Coracle__V1__Service *svc =
        px ? (const void *)inf_get(px->svcs, "default", "kubernetes") : NULL;
    const Coracle__V1__ServiceSpec *sp = svc ? svc->spec : NULL;
    if (!sp || !sp->clusterip || !*sp->clusterip || !strcmp(sp->clusterip, "None") ||
        !sp->n_ports || strlen(sp->clusterip) >= ip_len)
        return false;
    const Coracle__V1__ServicePort *p = sp->ports[0];
    for (size_t i = 0; i < sp->n_ports; i++)
        if (sp->ports[i]->name && !strcmp(sp->ports[i]->name, "https"))
            p = sp->ports[i];
    if (!p->port)
        return false;
    strcpy(ip, sp->clusterip);
    *port = p->port;
    return true;
}
