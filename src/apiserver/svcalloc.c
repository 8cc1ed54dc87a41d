/*
 * svcalloc: cluster IPs and node ports for Services, one store record per
 * address held (svcalloc.h says why). A claim walks the addresses a Service
 * needs one at a time: it picks a candidate (the requested one, or a free
 * one from a random start in the range), creates its record where the key
 * is absent, and on a lost race picks again. Freeing deletes a record only
 * while it still names the Service, so a late free never takes an address
 * another Service has since been given.
 */
#include "svcalloc.h"

#include "grpc.h"
#include "kinds.h"
#include "obj.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The record exists already: someone holds the address. */
#define REC_TAKEN (STORE_EAPP - 50)
/* Candidates an automatic pick tries after lost races before giving up. */
#define PICK_TRIES 32

struct svcalloc {
    store_t *st;
    struct svcalloc_config cfg;
    char cidr[24];
};

struct svc_claim {
    char *ns, *name; /* the Service the records name */
    char **keys;
    size_t n;
};

/* One address a claim needs: the clusterIP (port < 0) or ports[port]'s nodePort. */
struct need {
    int port;
    bool requested;
    int tries;
};

struct job {
    svcalloc_t *al;
    Coracle__V1__Service *svc;
    struct need *v;
    size_t n, next;
    struct svc_claim *c;
    svcalloc_done_fn done;
    void *arg;
    /* a refusal waiting for its releases */
    int code;
    char *msg;
};

/* Releases someone waits for: then(arg) once the last is done. */
struct waiter {
    size_t left;
    void (*then)(void *arg);
    void *arg;
};

struct rec_op {
    struct store_op op; /* first */
    svcalloc_t *al;
    char *ns, *name;  /* the parent Service */
    char *rec;        /* the record's name (the IP, the port) */
    struct job *job;  /* NULL: a release */
    struct waiter *w; /* a release's waiter, or NULL */
};

/* ---- ranges ---- */

int svcalloc_parse_cidr(struct svcalloc_config *cfg, const char *s, char **err)
{
    char ip[32];
    int prefix;
    const char *slash = strchr(s, '/');
    struct in_addr a;
    if (!slash || (size_t)(slash - s) >= sizeof(ip))
        goto bad;
    memcpy(ip, s, (size_t)(slash - s));
    ip[slash - s] = 0;
    char *end;
    prefix = (int)strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1 || inet_pton(AF_INET, ip, &a) != 1)
        goto bad;
    if (prefix < 8 || prefix > 30) {
        *err = xasprintf("--service-cluster-ip-range %s: the prefix must be between /8 and /30", s);
        return -1;
    }
    uint32_t mask = ~0u << (32 - prefix);
    cfg->net = ntohl(a.s_addr) & mask;
    cfg->prefix = prefix;
    return 0;
bad:
    *err = xasprintf("--service-cluster-ip-range %s: not an IPv4 CIDR (10.96.0.0/12)", s);
    return -1;
}

int svcalloc_parse_ports(struct svcalloc_config *cfg, const char *s, char **err)
{
    int lo, hi, n = 0;
    if (sscanf(s, "%d-%d%n", &lo, &hi, &n) != 2 || s[n] || lo < 1 || hi > 65535 || lo > hi) {
        *err = xasprintf("--service-node-port-range %s: not a port range (30000-32767)", s);
        return -1;
    }
    cfg->port_base = lo;
    cfg->port_last = hi;
    return 0;
}

static void ip_text(uint32_t ip, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

void svcalloc_first_ip(const struct svcalloc_config *cfg, char buf[16])
{
    ip_text(cfg->net + 1, buf);
}

static uint32_t range_size(const svcalloc_t *al)
{
    return 1u << (32 - al->cfg.prefix);
}

/* ---- the records ---- */

static char *rec_key(bool ip, const char *rec)
{
    return xasprintf("%s//%s", ip ? kind_ipaddress.resource : kind_nodeportalloc.resource, rec);
}

static void *rec_encode(const struct rec_op *r, size_t *len)
{
    Coracle__V1__IPAddress a = CORACLE__V1__IPADDRESS__INIT;
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__IPAddressSpec sp = CORACLE__V1__IPADDRESS_SPEC__INIT;
    Coracle__V1__ParentReference p = CORACLE__V1__PARENT_REFERENCE__INIT;
    char uid[37];
    uuid_v4(uid);
    m.name = r->rec;
    m.uid = uid;
    m.creationtimestamp = obj_time(now_ns());
    p.group = "";
    p.resource = "services";
    p.namespace_ = r->ns;
    p.name = r->name;
    sp.parentref = &p;
    a.metadata = &m;
    a.spec = &sp;
    void *b = obj_encode(&a.base, len);
    obj_free(&m.creationtimestamp->base);
    return b;
}

static bool rec_names(const void *cur, size_t len, const char *ns, const char *name)
{
    Coracle__V1__IPAddress *a = (void *)obj_decode(&coracle__v1__ipaddress__descriptor, cur, len);
    if (!a)
        return false;
    const Coracle__V1__ParentReference *p = a->spec ? a->spec->parentref : NULL;
    bool r = p && p->namespace_ && p->name && !strcmp(p->namespace_, ns) && !strcmp(p->name, name);
    obj_free(&a->base);
    return r;
}

/* Commit thread: creates the record where absent, or deletes it while it names the parent. */
static int rec_apply(struct store_op *op, const void *cur, size_t cur_len, uint64_t rev, void **out,
                     size_t *out_len, int *del)
{
    (void)rev;
    struct rec_op *r = (struct rec_op *)op;
    if (!r->job) {
        *del = cur && rec_names(cur, cur_len, r->ns, r->name);
        return 0;
    }
    if (cur)
        return REC_TAKEN;
    *out = rec_encode(r, out_len);
    return 0;
}

static void rec_free(struct rec_op *r)
{
    free(r->op.key);
    free(r->ns);
    free(r->name);
    free(r->rec);
    free(r);
}

static void rec_done(struct store_op *op, int err, const struct store_change *ch);

static struct rec_op *rec_new(svcalloc_t *al, const char *key, const char *ns, const char *name,
                              const char *rec)
{
    struct rec_op *r = xcalloc(1, sizeof(*r));
    r->al = al;
    r->op.key = xstrdup(key);
    r->op.key_len = strlen(key);
    r->op.apply = rec_apply;
    r->op.done = rec_done;
    r->op.arg = r;
    r->ns = xstrdup(ns);
    r->name = xstrdup(name);
    r->rec = xstrdup(rec);
    return r;
}

/* Frees key (while it names ns/name); w, if any, counts it (w->left counted by the caller). */
static void release(svcalloc_t *al, const char *key, const char *ns, const char *name,
                    struct waiter *w)
{
    struct rec_op *r = rec_new(al, key, ns, name, "");
    r->w = w;
    if (store_submit(al->st, &r->op) < 0) {
        rec_free(r);
        if (w && !--w->left) {
            w->then(w->arg);
            free(w);
        }
    }
}

/* Frees the n keys, then calls then(arg) (at once if n is 0). */
static void release_all(svcalloc_t *al, char *const *keys, size_t n, const char *ns,
                        const char *name, void (*then)(void *), void *arg)
{
    if (!n) {
        if (then)
            then(arg);
        return;
    }
    struct waiter *w = NULL;
    if (then) {
        w = xmalloc(sizeof(*w));
        *w = (struct waiter){n, then, arg};
    }
    for (size_t i = 0; i < n; i++)
        release(al, keys[i], ns, name, w);
}

/* ---- what a Service holds ---- */

static bool wants_ip(const Coracle__V1__ServiceSpec *sp)
{
    return sp && (!sp->type || strcmp(sp->type, "ExternalName")) &&
           (!sp->clusterip || strcmp(sp->clusterip, "None"));
}

static bool wants_node_ports(const Coracle__V1__ServiceSpec *sp)
{
    if (!sp || !sp->type)
        return false;
    if (!strcmp(sp->type, "NodePort"))
        return true;
    return !strcmp(sp->type, "LoadBalancer") &&
           (!sp->has_allocateloadbalancernodeports || sp->allocateloadbalancernodeports);
}

/* The record keys svc holds (each malloc'd), *n of them. */
static char **held_keys(const Coracle__V1__Service *svc, size_t *n)
{
    const Coracle__V1__ServiceSpec *sp = svc ? svc->spec : NULL;
    *n = 0;
    if (!sp)
        return NULL;
    char **v = xcalloc(sp->n_ports + 1, sizeof(*v));
    struct in_addr a;
    if (wants_ip(sp) && sp->clusterip && inet_pton(AF_INET, sp->clusterip, &a) == 1)
        v[(*n)++] = rec_key(true, sp->clusterip);
    for (size_t i = 0; i < sp->n_ports; i++) {
        if (!sp->ports[i]->nodeport)
            continue;
        char port[16];
        snprintf(port, sizeof(port), "%d", sp->ports[i]->nodeport);
        char *k = rec_key(false, port);
        bool dup = false;
        for (size_t j = 0; j < *n && !dup; j++)
            dup = !strcmp(v[j], k);
        if (dup)
            free(k);
        else
            v[(*n)++] = k;
    }
    return v;
}

static void keys_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool keys_have(char *const *v, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], k))
            return true;
    return false;
}

static Coracle__V1__Service *svc_decode(const void *b, size_t len)
{
    return b ? (void *)obj_decode(&coracle__v1__service__descriptor, b, len) : NULL;
}

/* ---- claims ---- */

static void claim_free(struct svc_claim *c)
{
    if (!c)
        return;
    keys_free(c->keys, c->n);
    free(c->ns);
    free(c->name);
    free(c);
}

void svcalloc_drop(svcalloc_t *al, struct svc_claim *c)
{
    if (c)
        release_all(al, c->keys, c->n, c->ns, c->name, NULL, NULL);
    claim_free(c);
}

void svcalloc_settle(svcalloc_t *al, struct svc_claim *c, int ok, const void *prev, size_t prev_len,
                     const void *val, size_t val_len, void (*then)(void *), void *arg)
{
    if (!ok) {
        if (c)
            release_all(al, c->keys, c->n, c->ns, c->name, then, arg);
        else if (then)
            then(arg);
        claim_free(c);
        return;
    }
    claim_free(c);
    Coracle__V1__Service *p = svc_decode(prev, prev_len), *v = svc_decode(val, val_len);
    size_t np = 0, nv = 0, n = 0;
    char **kp = held_keys(p, &np), **kv = held_keys(v, &nv);
    for (size_t i = 0; i < np; i++)
        if (!keys_have(kv, nv, kp[i])) {
            char *k = kp[n];
            kp[n++] = kp[i];
            kp[i] = k;
        }
    release_all(al, kp, n, p ? p->metadata->namespace_ : "", p ? p->metadata->name : "", then, arg);
    keys_free(kp, np);
    keys_free(kv, nv);
    if (p)
        obj_free(&p->base);
    if (v)
        obj_free(&v->base);
}

static void job_free(struct job *j)
{
    free(j->v);
    free(j->msg);
    free(j);
}

static void job_refused(void *arg)
{
    struct job *j = arg;
    j->done(j->arg, j->code, j->msg, NULL);
    job_free(j);
}

static void job_end(struct job *j, int code, const char *msg)
{
    if (code == GRPC_OK) {
        j->done(j->arg, code, msg, j->c);
        job_free(j);
        return;
    }
    /* the refusal is answered once what was taken is free again, so the
     * client's next request finds it free */
    j->code = code;
    j->msg = xstrdup(msg);
    struct svc_claim *c = j->c;
    j->c = NULL;
    release_all(j->al, c->keys, c->n, c->ns, c->name, job_refused, j);
    claim_free(c);
}

static const char *svc_name(const struct job *j)
{
    return j->svc->metadata && j->svc->metadata->name ? j->svc->metadata->name : "";
}

/* Whether the record key is free now (a read; the create decides). */
static bool key_free(store_rtxn_t *t, const char *key)
{
    const void *v;
    size_t l;
    return store_get(t, key, strlen(key), &v, &l) == STORE_ENOTFOUND;
}

/* A free address for need n into rec (an IP's or a port's text); false: the range is full. */
static bool pick(struct job *j, const struct need *n, char rec[16])
{
    svcalloc_t *al = j->al;
    bool ip = n->port < 0;
    /* IPs: the network, the first (the `kubernetes` Service's) and the broadcast address are
     * never picked */
    uint32_t first = ip ? 2 : 0;
    uint32_t count =
        ip ? range_size(al) - 3 : (uint32_t)(al->cfg.port_last - al->cfg.port_base + 1);
    store_rtxn_t *t;
    if (store_read_begin(al->st, &t) < 0)
        return false;
    uint32_t start = arc4random_uniform(count);
    bool found = false;
    for (uint32_t i = 0; i < count && !found; i++) {
        uint32_t off = first + (start + i) % count;
        if (ip)
            ip_text(al->cfg.net + off, rec);
        else
            snprintf(rec, 16, "%u", (unsigned)al->cfg.port_base + off);
        char *key = rec_key(ip, rec);
        found = key_free(t, key) && !keys_have(j->c->keys, j->c->n, key);
        free(key);
    }
    store_read_end(t);
    return found;
}

/* Kubernetes' answer to a requested address that is taken or out of range. */
static char *refusal(struct job *j, const struct need *n, const char *why)
{
    if (n->port < 0)
        return xasprintf("Service \"%s\" is invalid: spec.clusterIPs: Invalid value: "
                         "[]string{\"%s\"}: failed to allocate IP %s: %s",
                         svc_name(j), j->svc->spec->clusterip, j->svc->spec->clusterip, why);
    return xasprintf("Service \"%s\" is invalid: spec.ports[%d].nodePort: Invalid value: %d: %s",
                     svc_name(j), n->port, j->svc->spec->ports[n->port]->nodeport, why);
}

/* A requested address inside the range? Else *msg says why not. */
static bool in_range(struct job *j, const struct need *n, char **msg)
{
    svcalloc_t *al = j->al;
    if (n->port >= 0) {
        int32_t p = j->svc->spec->ports[n->port]->nodeport;
        if (p >= al->cfg.port_base && p <= al->cfg.port_last)
            return true;
        char *why = xasprintf("provided port is not in the valid range. The range of valid ports "
                              "is %d-%d",
                              al->cfg.port_base, al->cfg.port_last);
        *msg = refusal(j, n, why);
        free(why);
        return false;
    }
    struct in_addr a;
    inet_pton(AF_INET, j->svc->spec->clusterip, &a);
    uint32_t ip = ntohl(a.s_addr), off = ip - al->cfg.net;
    if ((ip & (~0u << (32 - al->cfg.prefix))) == al->cfg.net && off && off < range_size(al) - 1)
        return true;
    char *why = xasprintf("the provided IP (%s) is not in the valid range. The range of valid "
                          "IPs is %s",
                          j->svc->spec->clusterip, al->cidr);
    *msg = refusal(j, n, why);
    free(why);
    return false;
}

static void set_addr(struct job *j, const struct need *n, const char *rec)
{
    Coracle__V1__ServiceSpec *sp = j->svc->spec;
    if (n->port >= 0) {
        sp->ports[n->port]->has_nodeport = 1;
        sp->ports[n->port]->nodeport = atoi(rec);
        return;
    }
    obj_set_str(&sp->clusterip, rec);
    for (size_t i = 0; i < sp->n_clusterips; i++)
        free(sp->clusterips[i]);
    free(sp->clusterips);
    sp->clusterips = xmalloc(sizeof(*sp->clusterips));
    sp->clusterips[0] = xstrdup(rec);
    sp->n_clusterips = 1;
}

static void step(struct job *j);

static void rec_done(struct store_op *op, int err, const struct store_change *ch)
{
    (void)ch;
    struct rec_op *r = (struct rec_op *)op;
    struct job *j = r->job;
    if (!j) {
        struct waiter *w = r->w;
        if (err && err != STORE_ECLOSED)
            log_warn("freeing %s: %s", op->key, store_strerror(err));
        rec_free(r);
        if (w && !--w->left) {
            w->then(w->arg);
            free(w);
        }
        return;
    }
    struct need *n = &j->v[j->next];
    if (err == 0) {
        set_addr(j, n, r->rec);
        j->c->keys = xrealloc(j->c->keys, (j->c->n + 1) * sizeof(*j->c->keys));
        j->c->keys[j->c->n++] = xstrdup(op->key);
        j->next++;
        rec_free(r);
        step(j);
        return;
    }
    rec_free(r);
    if (err == REC_TAKEN && n->requested) {
        char *msg = refusal(j, n,
                            n->port < 0 ? "provided IP is already allocated"
                                        : "provided port is already allocated");
        job_end(j, GRPC_INVALID_ARGUMENT, msg);
        free(msg);
    } else if (err == REC_TAKEN) {
        n->tries++; /* another writer took it first: pick again */
        step(j);
    } else {
        job_end(j, err == STORE_EUNAVAIL ? GRPC_UNAVAILABLE : GRPC_INTERNAL, store_strerror(err));
    }
}

/* Takes the next address the job needs, or ends it. */
static void step(struct job *j)
{
    if (j->next == j->n) {
        job_end(j, GRPC_OK, NULL);
        return;
    }
    struct need *n = &j->v[j->next];
    bool ip = n->port < 0;
    char rec[16];
    char *msg = NULL;
    if (n->requested) {
        if (!in_range(j, n, &msg)) {
            job_end(j, GRPC_INVALID_ARGUMENT, msg);
            free(msg);
            return;
        }
        if (ip)
            snprintf(rec, sizeof(rec), "%s", j->svc->spec->clusterip);
        else
            snprintf(rec, sizeof(rec), "%d", j->svc->spec->ports[n->port]->nodeport);
    } else if (n->tries >= PICK_TRIES || !pick(j, n, rec)) {
        job_end(j, GRPC_INTERNAL,
                ip ? "Internal error occurred: failed to allocate a serviceIP: range is full"
                   : "Internal error occurred: failed to allocate a nodePort: range is full");
        return;
    }
    char *key = rec_key(ip, rec);
    if (n->requested && keys_have(j->c->keys, j->c->n, key)) {
        /* a nodePort the Service's TCP and UDP ports share */
        free(key);
        j->next++;
        step(j);
        return;
    }
    const Coracle__V1__ObjectMeta *m = j->svc->metadata;
    struct rec_op *r = rec_new(j->al, key, m->namespace_ ? m->namespace_ : "", m->name, rec);
    free(key);
    r->job = j;
    if (store_submit(j->al->st, &r->op) < 0) {
        rec_free(r);
        job_end(j, GRPC_UNAVAILABLE, "server shutting down");
    }
}

/* The nodePort old gave the same port and protocol (Kubernetes keeps it on an update). */
static int32_t old_node_port(const Coracle__V1__Service *old, const Coracle__V1__ServicePort *p)
{
    if (!old || !old->spec)
        return 0;
    for (size_t i = 0; i < old->spec->n_ports; i++) {
        const Coracle__V1__ServicePort *o = old->spec->ports[i];
        if (o->port == p->port && o->protocol && p->protocol && !strcmp(o->protocol, p->protocol))
            return o->nodeport;
    }
    return 0;
}

void svcalloc_claim(svcalloc_t *al, Coracle__V1__Service *svc, const Coracle__V1__Service *old,
                    svcalloc_done_fn done, void *arg)
{
    Coracle__V1__ServiceSpec *sp = svc->spec;
    struct job *j = xcalloc(1, sizeof(*j));
    j->al = al;
    j->svc = svc;
    j->done = done;
    j->arg = arg;
    j->c = xcalloc(1, sizeof(*j->c));
    j->c->ns = xstrdup(svc->metadata->namespace_ ? svc->metadata->namespace_ : "");
    j->c->name = xstrdup(svc->metadata->name ? svc->metadata->name : "");
    j->v = xcalloc(sp->n_ports + 1, sizeof(*j->v));
    size_t nold = 0;
    char **kold = held_keys(old, &nold);
    bool wants_ports = wants_node_ports(sp);
    if (wants_ip(sp)) {
        /* an update that leaves the address out keeps the stored one */
        const Coracle__V1__ServiceSpec *os = old ? old->spec : NULL;
        if ((!sp->clusterip || !*sp->clusterip) && os && wants_ip(os) && os->clusterip &&
            *os->clusterip)
            set_addr(j, &(struct need){.port = -1}, os->clusterip);
        bool given = sp->clusterip && *sp->clusterip;
        char *key = given ? rec_key(true, sp->clusterip) : NULL;
        /* a changed address: the update is refused (immutable), nothing to take */
        bool changed = os && wants_ip(os) && os->clusterip && *os->clusterip;
        if (!changed && (!key || !keys_have(kold, nold, key)))
            j->v[j->n++] = (struct need){.port = -1, .requested = given};
        free(key);
    }
    for (size_t i = 0; i < sp->n_ports && wants_ports; i++) {
        Coracle__V1__ServicePort *p = sp->ports[i];
        if (!p->nodeport && old_node_port(old, p)) {
            p->has_nodeport = 1;
            p->nodeport = old_node_port(old, p);
        }
        char port[16];
        snprintf(port, sizeof(port), "%d", p->nodeport);
        char *key = p->nodeport ? rec_key(false, port) : NULL;
        if (!key || !keys_have(kold, nold, key))
            j->v[j->n++] = (struct need){.port = (int)i, .requested = p->nodeport != 0};
        free(key);
    }
    keys_free(kold, nold);
    step(j);
}

svcalloc_t *svcalloc_new(store_t *st, const struct svcalloc_config *cfg)
{
    svcalloc_t *al = xcalloc(1, sizeof(*al));
    al->st = st;
    al->cfg = *cfg;
    char ip[16];
    ip_text(cfg->net, ip);
    snprintf(al->cidr, sizeof(al->cidr), "%s/%d", ip, cfg->prefix);
    return al;
}

void svcalloc_free(svcalloc_t *al)
{
    free(al);
}
