/*
 * netpol: NetworkPolicies, Pods and Namespaces (all namespaces: a policy's
 * peers may be anywhere in the cluster) kept by three informers; any
 * change schedules one zero-delay run that rebuilds the wanted objects
 * (netpol_rules.c) from the caches, diffs them against what the kernel
 * has and applies the difference through libnftables as one transaction.
 * The model is rebuilt whole in memory, but what reaches the kernel is
 * only what differs: a peer pod that starts is one set element. A failed
 * transaction changes nothing: a full sync follows a second later.
 *
 * Semantics (Kubernetes' NetworkPolicy): a local pod selected by some
 * policy of type Ingress (Egress) is isolated in that direction: only
 * what some such policy's rule allows passes, the union of the rules.
 * Replies of allowed connections pass (conntrack). Peers are pods with an
 * IPv4 podIP, not on the host network, not finished; a namespaceSelector
 * sees the namespace's labels and kubernetes.io/metadata.name. A named
 * port is looked up in the target pod's containers: for ingress the local
 * pod, for egress each peer pod.
 */
#include "config.h"
#include "arena.h"
#include "columns.h"
#include "informer.h"
#include "kinds.h"
#include "klet.h"
#include "netpol.h"
#include "sel.h"
#include "smap.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct knp {
    struct klet *k;
    struct nft_ctx *nft;
    inf_t *pols, *pods, *nss;
    struct kpx_objs applied; /* as the kernel has them */
    struct event *ev;
    bool full; /* the next run rebuilds the table */
};

/* ---- selectors and pods ---- */

struct labels {
    const Coracle__V1__ObjectMeta *m;
    const char *ns_name; /* a Namespace's name: its kubernetes.io/metadata.name label */
};

static const char *label_get(void *arg, const char *key)
{
    const struct labels *l = arg;
    for (size_t i = 0; l->m && i < l->m->n_labels; i++)
        if (!strcmp(l->m->labels[i]->key, key))
            return l->m->labels[i]->value ? l->m->labels[i]->value : "";
    if (l->ns_name && !strcmp(key, "kubernetes.io/metadata.name"))
        return l->ns_name;
    return NULL;
}

/* The selector of ls (an empty one matches everything), or NULL when it does not parse
 * (then it matches nothing). */
static sel_t *selector(const Coracle__V1__LabelSelector *ls)
{
    char *s = cols_label_selector(ls), *err = NULL;
    sel_t *out = NULL;
    if (sel_parse_labels(s, &out, &err) < 0) {
        log_warn("netpol: selector \"%s\": %s", s, err);
        free(err);
        out = NULL;
    }
    free(s);
    return out;
}

static bool is_v4(const char *ip)
{
    struct in_addr a;
    return ip && inet_pton(AF_INET, ip, &a) == 1;
}

/* Whether p takes part in policies: an IPv4 pod IP of its own, still running. */
static bool pod_live(const Coracle__V1__Pod *p)
{
    const Coracle__V1__PodStatus *st = p->status;
    if (!p->metadata || !p->spec || !st || !is_v4(st->podip) ||
        (p->spec->has_hostnetwork && p->spec->hostnetwork))
        return false;
    return !st->phase || (strcmp(st->phase, "Succeeded") && strcmp(st->phase, "Failed"));
}

static void proto_lower(char *dst, const char *src)
{
    size_t i = 0;
    for (src = src && *src ? src : "TCP"; src[i] && i < 7; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

/* ---- one run's model ---- */

/* What a local pod gets, gathered over the policies that select it. */
struct podacc {
    const Coracle__V1__Pod *pod;
    bool iso[2]; /* [0] ingress, [1] egress */
    struct knp_rule *r[2];
    size_t n[2];
};

struct run {
    struct knp *np;
    struct arena a; /* the model's strings and port lists */
    struct kpx_objs want;
    struct podacc *local;
    size_t nlocal;
    /* the policy being looked at */
    const Coracle__V1__NetworkPolicy *pol;
    sel_t *ns_sel, *pod_sel; /* the peer being looked at */
    const char *pol_ns;
    const char *named, *named_proto; /* collecting a named port's destinations */
    const char **ips;
    size_t nips;
    struct knp_dest *dests;
    size_t ndests;
};

static int collect_local(const ProtobufCMessage *obj, void *arg)
{
    struct run *r = arg;
    const Coracle__V1__Pod *p = (const void *)obj;
    if (!pod_live(p) || !p->spec->nodename || strcmp(p->spec->nodename, r->np->k->cfg.node_name))
        return 0;
    /* an address the runtime gave again while the pod that had it is still being deleted:
     * one map element per address, the live pod's */
    for (size_t i = 0; i < r->nlocal; i++) {
        if (strcmp(r->local[i].pod->status->podip, p->status->podip))
            continue;
        if (r->local[i].pod->metadata->deletiontimestamp && !p->metadata->deletiontimestamp)
            r->local[i].pod = p;
        return 0;
    }
    r->local = xrealloc(r->local, (r->nlocal + 1) * sizeof *r->local);
    r->local[r->nlocal++] = (struct podacc){.pod = p};
    return 0;
}

/* Whether the peer being looked at (r->ns_sel, r->pod_sel) selects pod p. */
static bool peer_selects(struct run *r, const Coracle__V1__Pod *p)
{
    const char *ns = p->metadata->namespace_ ? p->metadata->namespace_ : "";
    if (r->ns_sel) {
        const ProtobufCMessage *o = inf_get(r->np->nss, "", ns);
        struct labels nl = {o ? ((const Coracle__V1__Namespace *)o)->metadata : NULL, ns};
        if (!o || !sel_match(r->ns_sel, label_get, &nl))
            return false;
    } else if (strcmp(ns, r->pol_ns)) {
        return false;
    }
    struct labels pl = {p->metadata, NULL};
    return !r->pod_sel || sel_match(r->pod_sel, label_get, &pl);
}

static int collect_peer(const ProtobufCMessage *obj, void *arg)
{
    struct run *r = arg;
    const Coracle__V1__Pod *p = (const void *)obj;
    if (!pod_live(p) || !peer_selects(r, p))
        return 0;
    if (!r->named) {
        r->ips = xrealloc(r->ips, (r->nips + 1) * sizeof *r->ips);
        r->ips[r->nips++] = p->status->podip;
        return 0;
    }
    for (size_t i = 0; i < p->spec->n_containers; i++)
        for (size_t j = 0; j < p->spec->containers[i]->n_ports; j++) {
            const Coracle__V1__ContainerPort *cp = p->spec->containers[i]->ports[j];
            char pr[8];
            proto_lower(pr, cp->protocol);
            if (!cp->name || strcmp(cp->name, r->named) || strcmp(pr, r->named_proto))
                continue;
            r->dests = xrealloc(r->dests, (r->ndests + 1) * sizeof *r->dests);
            r->dests[r->ndests++] =
                (struct knp_dest){p->status->podip, r->named_proto, cp->containerport};
        }
    return 0;
}

/* Sets r->ns_sel, r->pod_sel for peer (NULL peer: every pod of the cluster). */
static void peer_begin(struct run *r, const Coracle__V1__NetworkPolicyPeer *peer, bool *ok)
{
    sel_free(r->ns_sel);
    sel_free(r->pod_sel);
    r->ns_sel = r->pod_sel = NULL;
    *ok = true;
    if (!peer) {
        r->ns_sel = selector(&(Coracle__V1__LabelSelector)CORACLE__V1__LABEL_SELECTOR__INIT);
        *ok = r->ns_sel != NULL;
        return;
    }
    if (peer->namespaceselector && !(r->ns_sel = selector(peer->namespaceselector)))
        *ok = false;
    if (peer->podselector && !(r->pod_sel = selector(peer->podselector)))
        *ok = false;
}

/* A policy rule's peers and ports, generically over ingress and egress. */
struct prule {
    int dir; /* 0 ingress, 1 egress */
    size_t idx;
    Coracle__V1__NetworkPolicyPort *const *ports;
    size_t nports;
    Coracle__V1__NetworkPolicyPeer *const *peers;
    size_t npeers;
};

/* The rule's sets (objects into r->want) and its model, except named ports (resolved per
 * target pod by rule_for_pod). */
static void rule_sets(struct run *r, const char *pol_id, const struct prule *pr,
                      struct knp_rule *out)
{
    static const char *const dirs[] = {"ingress", "egress"};
    *out = (struct knp_rule){.all_peers = !pr->npeers, .all_ports = !pr->nports};
    bool pods = false, blocks = false;
    for (size_t i = 0; i < pr->npeers; i++) {
        pods |= pr->peers[i]->podselector || pr->peers[i]->namespaceselector;
        blocks |= pr->peers[i]->ipblock != NULL;
    }
    if (pods) {
        char *name = xasprintf("%s/%s/%zu/pods", pol_id, dirs[pr->dir], pr->idx);
        r->nips = 0;
        for (size_t i = 0; i < pr->npeers; i++) {
            const Coracle__V1__NetworkPolicyPeer *p = pr->peers[i];
            bool ok;
            if (!p->podselector && !p->namespaceselector)
                continue;
            peer_begin(r, p, &ok);
            if (ok)
                inf_foreach(r->np->pods, collect_peer, r);
        }
        knp_pods_set_objs(name, r->ips, r->nips, &r->want);
        out->pods_set = arena_strdup(&r->a, name);
        free(name);
    }
    if (blocks) {
        char *name = xasprintf("%s/%s/%zu/cidrs", pol_id, dirs[pr->dir], pr->idx);
        struct knp_block *b = xcalloc(pr->npeers, sizeof *b);
        size_t nb = 0;
        for (size_t i = 0; i < pr->npeers; i++) {
            const Coracle__V1__IPBlock *ib = pr->peers[i]->ipblock;
            if (ib && ib->cidr)
                b[nb++] =
                    (struct knp_block){ib->cidr, (const char *const *)ib->except, ib->n_except};
        }
        knp_cidrs_set_objs(name, b, nb, &r->want);
        out->cidrs_set = arena_strdup(&r->a, name);
        free(b);
        free(name);
    }
    /* numeric ports, and egress named ports (a set of the peers' ports each) */
    struct knp_port *ports = arena_alloc(&r->a, (pr->nports + 1) * sizeof *ports);
    for (size_t j = 0; j < pr->nports; j++) {
        const Coracle__V1__NetworkPolicyPort *p = pr->ports[j];
        char proto[8];
        proto_lower(proto, p->protocol);
        struct knp_port *kp = &ports[out->nports];
        *kp = (struct knp_port){arena_strdup(&r->a, proto), 0, 0, NULL};
        if (p->port && p->port->type == 0) {
            kp->port = p->port->intval;
            kp->end_port = p->has_endport ? p->endport : 0;
        } else if (p->port) {
            if (!pr->dir)
                continue; /* ingress: the target pod's, see rule_for_pod */
            char *name = xasprintf("%s/%s/%zu/port%zu", pol_id, dirs[pr->dir], pr->idx, j);
            r->named = p->port->strval ? p->port->strval : "";
            r->named_proto = kp->proto;
            r->ndests = 0;
            for (size_t i = 0; i < (pr->npeers ? pr->npeers : 1); i++) {
                const Coracle__V1__NetworkPolicyPeer *peer = pr->npeers ? pr->peers[i] : NULL;
                bool ok;
                if (peer && !peer->podselector && !peer->namespaceselector)
                    continue; /* an ipBlock has no named ports */
                peer_begin(r, peer, &ok);
                if (ok)
                    inf_foreach(r->np->pods, collect_peer, r);
            }
            knp_dests_set_objs(name, r->dests, r->ndests, &r->want);
            kp->named_set = arena_strdup(&r->a, name);
            r->named = NULL;
            free(name);
        }
        out->nports++;
    }
    out->ports = ports;
}

/* The rule as it applies to local pod p: ingress named ports resolved in p's containers. */
static struct knp_rule rule_for_pod(struct run *r, const struct prule *pr,
                                    const struct knp_rule *base, const Coracle__V1__Pod *p)
{
    struct knp_rule out = *base;
    if (pr->dir || base->all_ports)
        return out;
    size_t cap = base->nports;
    for (size_t j = 0; j < pr->nports; j++)
        for (size_t i = 0; i < p->spec->n_containers; i++)
            cap += p->spec->containers[i]->n_ports;
    struct knp_port *ports = arena_alloc(&r->a, (cap + 1) * sizeof *ports);
    memcpy(ports, base->ports, base->nports * sizeof *ports);
    out.ports = ports;
    for (size_t j = 0; j < pr->nports; j++) {
        const Coracle__V1__NetworkPolicyPort *np = pr->ports[j];
        if (!np->port || np->port->type == 0)
            continue;
        char proto[8];
        proto_lower(proto, np->protocol);
        for (size_t i = 0; i < p->spec->n_containers; i++)
            for (size_t k = 0; k < p->spec->containers[i]->n_ports; k++) {
                const Coracle__V1__ContainerPort *cp = p->spec->containers[i]->ports[k];
                char cpr[8];
                proto_lower(cpr, cp->protocol);
                if (cp->name && np->port->strval && !strcmp(cp->name, np->port->strval) &&
                    !strcmp(cpr, proto))
                    ports[out.nports++] =
                        (struct knp_port){arena_strdup(&r->a, proto), cp->containerport, 0, NULL};
            }
    }
    return out;
}

static bool has_type(const Coracle__V1__NetworkPolicySpec *sp, const char *t)
{
    for (size_t i = 0; i < sp->n_policytypes; i++)
        if (!strcmp(sp->policytypes[i], t))
            return true;
    if (sp->n_policytypes)
        return false;
    return !strcmp(t, "Ingress") || sp->n_egress > 0; /* SetDefaults_NetworkPolicy */
}

static int add_policy(const ProtobufCMessage *obj, void *arg)
{
    struct run *r = arg;
    const Coracle__V1__NetworkPolicy *pol = (const void *)obj;
    const Coracle__V1__NetworkPolicySpec *sp = pol->spec;
    if (!sp || !pol->metadata || !pol->metadata->namespace_)
        return 0;
    const char *ns = pol->metadata->namespace_;
    sel_t *ps = sp->podselector ? selector(sp->podselector) : NULL;
    if (sp->podselector && !ps)
        return 0;
    /* the local pods this policy selects */
    size_t *sel = xcalloc(r->nlocal + 1, sizeof *sel), nsel = 0;
    for (size_t i = 0; i < r->nlocal; i++) {
        const Coracle__V1__ObjectMeta *m = r->local[i].pod->metadata;
        struct labels l = {m, NULL};
        if (!strcmp(m->namespace_ ? m->namespace_ : "", ns) && sel_match(ps, label_get, &l))
            sel[nsel++] = i;
    }
    sel_free(ps);
    if (!nsel) {
        free(sel);
        return 0;
    }
    r->pol = pol;
    r->pol_ns = ns;
    char *pol_id = knp_id(ns, pol->metadata->name);
    bool types[2] = {has_type(sp, "Ingress"), has_type(sp, "Egress")};
    size_t nrules[2] = {types[0] ? sp->n_ingress : 0, types[1] ? sp->n_egress : 0};
    for (int d = 0; d < 2; d++) {
        for (size_t s = 0; types[d] && s < nsel; s++)
            r->local[sel[s]].iso[d] = true;
        for (size_t i = 0; i < nrules[d]; i++) {
            struct prule pr = {.dir = d, .idx = i};
            if (!d) {
                const Coracle__V1__NetworkPolicyIngressRule *ir = sp->ingress[i];
                pr.ports = ir->ports, pr.nports = ir->n_ports;
                pr.peers = ir->from, pr.npeers = ir->n_from;
            } else {
                const Coracle__V1__NetworkPolicyEgressRule *er = sp->egress[i];
                pr.ports = er->ports, pr.nports = er->n_ports;
                pr.peers = er->to, pr.npeers = er->n_to;
            }
            struct knp_rule base;
            rule_sets(r, pol_id, &pr, &base);
            for (size_t s = 0; s < nsel; s++) {
                struct podacc *pa = &r->local[sel[s]];
                pa->r[d] = xrealloc(pa->r[d], (pa->n[d] + 1) * sizeof *pa->r[d]);
                pa->r[d][pa->n[d]++] = rule_for_pod(r, &pr, &base, pa->pod);
            }
        }
    }
    free(pol_id);
    free(sel);
    return 0;
}

/* Every object the table should hold now, into r->want. */
static void build(struct run *r)
{
    static const char *const dirs[] = {"ingress", "egress"};
    inf_foreach(r->np->pods, collect_local, r);
    inf_foreach(r->np->pols, add_policy, r);
    for (size_t i = 0; i < r->nlocal; i++) {
        struct podacc *pa = &r->local[i];
        for (int d = 0; d < 2; d++)
            if (pa->iso[d])
                knp_pod_objs(dirs[d], pa->pod->metadata->namespace_, pa->pod->metadata->name,
                             pa->pod->status->podip, pa->r[d], pa->n[d], &r->want);
    }
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->nlocal; i++) {
        free(r->local[i].r[0]);
        free(r->local[i].r[1]);
    }
    free(r->local);
    free(r->ips);
    free(r->dests);
    sel_free(r->ns_sel);
    sel_free(r->pod_sel);
    arena_free(&r->a);
}

static void run_soon(struct knp *np, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_add(np->ev, &tv);
}

/* Applies the difference between the caches' model and the kernel's table in one
 * transaction (the whole table on a full sync). */
static void knp_apply(evutil_socket_t fd, short what, void *arg)
{
    struct knp *np = arg;
    (void)fd, (void)what;
    if (!inf_synced(np->pols) || !inf_synced(np->pods) || !inf_synced(np->nss))
        return; /* the synced handlers run us again */
    int64_t t0 = now_ns();
    struct run r = {.np = np};
    build(&r);
    struct buf b = {0};
    static const struct kpx_objs none;
    bool full = np->full;
    if (full)
        knp_script_base(&b);
    kpx_script_diff_in(&b, KNP_TABLE, full ? &none : &np->applied, &r.want);
    char *err = NULL;
    if (b.len && kpx_nft_run(np->nft, b.p, &err) < 0) {
        log_warn("netpol: %s sync failed, full sync in 1 s: %s", full ? "full" : "incremental",
                 err);
        free(err);
        np->full = true;
        run_soon(np, 1000);
        kpx_objs_free(&r.want);
    } else {
        kpx_objs_free(&np->applied);
        np->applied = r.want;
        np->full = false;
        if (full)
            log_info("netpol: full sync of %zu objects in %.1f ms (%zu bytes of rules)",
                     np->applied.n, (now_ns() - t0) / 1e6, b.len);
    }
    run_free(&r);
    buf_free(&b);
}

static void changed(struct knp *np)
{
    if (!np->full)
        run_soon(np, 0);
}

static void on_change(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    (void)inf, (void)obj;
    changed(arg);
}

static bool same_str(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

static bool same_labels(const Coracle__V1__ObjectMeta *a, const Coracle__V1__ObjectMeta *b)
{
    if (a->n_labels != b->n_labels)
        return false;
    for (size_t i = 0; i < a->n_labels; i++)
        if (!same_str(a->labels[i]->key, b->labels[i]->key) ||
            !same_str(a->labels[i]->value, b->labels[i]->value))
            return false;
    return true;
}

/* Whether a pod's update changes nothing policies look at (most are status conditions):
 * its address, phase, node, labels, being deleted (containers' ports do not change). */
static bool pod_same(const Coracle__V1__Pod *a, const Coracle__V1__Pod *b)
{
    if (!a->metadata || !b->metadata || !a->spec || !b->spec || !a->status || !b->status)
        return false;
    return same_str(a->status->podip, b->status->podip) &&
           same_str(a->status->phase, b->status->phase) &&
           same_str(a->spec->nodename, b->spec->nodename) &&
           !a->metadata->deletiontimestamp == !b->metadata->deletiontimestamp &&
           same_labels(a->metadata, b->metadata);
}

static void on_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    struct knp *np = arg;
    if (inf == np->pods && pod_same((const void *)old, (const void *)obj))
        return;
    const Coracle__V1__ObjectMeta *mo = kind_meta(old), *mn = kind_meta(obj);
    if (inf == np->nss && mo && mn && same_labels(mo, mn))
        return;
    changed(np);
}

static void on_synced(inf_t *inf, void *arg)
{
    struct knp *np = arg;
    (void)inf;
    if (inf_synced(np->pols) && inf_synced(np->pods) && inf_synced(np->nss)) {
        np->full = true;
        run_soon(np, 0);
    }
}

/* br_netfilter's switch: without it, pods on one bridge talk past the forward hook. */
static void bridge_nf_on(void)
{
    const char *path = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    FILE *f = fopen(path, "r+");
    int c = f ? fgetc(f) : EOF;
    if (c == '1') {
        fclose(f);
        return;
    }
    if (!f || fseek(f, 0, SEEK_SET) || fputs("1\n", f) < 0 || fclose(f)) {
        log_warn("netpol: %s is not 1 and cannot be set: pods on one bridge are not "
                 "isolated from each other",
                 path);
        return;
    }
    log_info("netpol: set %s to 1 (bridged pod traffic crosses the forward hook)", path);
}

int klet_netpol_start(struct klet *k)
{
    struct knp *np = xcalloc(1, sizeof *np);
    np->k = k;
    np->nft = kpx_nft_new();
    if (!np->nft) {
        log_warn("netpol: libnftables context failed: NetworkPolicies not enforced here");
        free(np);
        return -1;
    }
    char *err = NULL;
    if (kpx_nft_run(np->nft, "add table " KNP_TABLE "\n", &err) < 0) {
        log_warn("netpol: nftables does not work here (%s): NetworkPolicies not enforced", err);
        free(err);
        nft_ctx_free(np->nft);
        free(np);
        return -1;
    }
    bridge_nf_on();
    np->ev = event_new(k->base, -1, 0, knp_apply, np);
    np->full = true;
    struct inf_handlers h = {
        .on_add = on_change,
        .on_update = on_update,
        .on_delete = on_change,
        .on_synced = on_synced,
        .arg = np,
    };
    struct inf_opts o = {0};
    np->pols = inf_new(k->base, k->api, &kind_networkpolicy, &o, &h);
    np->pods = inf_new(k->base, k->api, &kind_pod, &o, &h);
    np->nss = inf_new(k->base, k->api, &kind_namespace, &o, &h);
    inf_start(np->pols);
    inf_start(np->pods);
    inf_start(np->nss);
    k->netpol = np;
    log_info("netpol: NetworkPolicies enforced in table %s", KNP_TABLE);
    return 0;
}

int knp_cleanup(char **err)
{
    return kpx_nft_once("add table " KNP_TABLE "\ndelete table " KNP_TABLE "\n", err);
}

void klet_netpol_stop(struct klet *k)
{
    struct knp *np = k->netpol;
    if (!np)
        return;
    char *err = NULL;
    if (knp_cleanup(&err) < 0) {
        log_warn("netpol: removing table %s: %s", KNP_TABLE, err);
        free(err);
    }
    inf_free(np->pols);
    inf_free(np->pods);
    inf_free(np->nss);
    event_free(np->ev);
    kpx_objs_free(&np->applied);
    nft_ctx_free(np->nft);
    free(np);
    k->netpol = NULL;
}
