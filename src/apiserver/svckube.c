/*
 * svckube: the `kubernetes` Service and its EndpointSlice (svckube.h).
 * One timer: renew this apiserver's Lease, read the fresh ones, write the
 * Service if missing and the slice if its addresses differ.
 */
#include "svckube.h"

#include "obj.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_PREFIX "apiserver-endpoint-"
#define LEASE_S 15
#define PERIOD_S 10

struct svckube {
    struct event_base *base;
    store_t *st;
    struct svckube_ops ops;
    char *ip, *first_ip;
    int port;
    struct event *tick;
};

/* The stored object at key, decoded (NULL if none). */
static ProtobufCMessage *stored(store_rtxn_t *t, const struct kind *k, const char *key)
{
    const void *v;
    size_t len;
    if (store_get(t, key, strlen(key), &v, &len) != 0)
        return NULL;
    return obj_decode(k->desc, v, len);
}

static Coracle__V1__ObjectMeta *meta_new(const char *ns, const char *name)
{
    Coracle__V1__ObjectMeta *m = xmalloc(sizeof(*m));
    coracle__v1__object_meta__init(m);
    m->namespace_ = xstrdup(ns);
    m->name = xstrdup(name);
    return m;
}

static void add_label(Coracle__V1__ObjectMeta *m, const char *k, const char *v)
{
    m->labels = xrealloc(m->labels, (m->n_labels + 1) * sizeof(*m->labels));
    Coracle__V1__ObjectMeta__LabelsEntry *e = xmalloc(sizeof(*e));
    coracle__v1__object_meta__labels_entry__init(e);
    e->key = xstrdup(k);
    e->value = xstrdup(v);
    m->labels[m->n_labels++] = e;
}

/* This apiserver's Lease, renewed now. */
static void renew(svckube_t *s, store_rtxn_t *t)
{
    char name[64];
    snprintf(name, sizeof(name), LEASE_PREFIX "%s", s->ip);
    char *key = kind_key(&kind_lease, "kube-system", name);
    ProtobufCMessage *old = stored(t, &kind_lease, key);
    free(key);
    Coracle__V1__Lease *l = xmalloc(sizeof(*l));
    coracle__v1__lease__init(l);
    l->metadata = meta_new("kube-system", name);
    l->spec = xmalloc(sizeof(*l->spec));
    coracle__v1__lease_spec__init(l->spec);
    l->spec->holderidentity = xstrdup(s->ip);
    l->spec->has_leasedurationseconds = 1;
    l->spec->leasedurationseconds = LEASE_S;
    l->spec->renewtime = obj_microtime(now_ns());
    s->ops.put(s->ops.arg, &kind_lease, &l->base, old != NULL);
    obj_free(old);
}

struct fresh {
    char **ips;
    size_t n;
    int64_t now;
};

static int fresh_lease(const char *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    (void)key;
    (void)key_len;
    struct fresh *f = arg;
    Coracle__V1__Lease *l = (void *)obj_decode(&coracle__v1__lease__descriptor, val, val_len);
    if (!l)
        return 0;
    const Coracle__V1__LeaseSpec *sp = l->spec;
    if (sp && sp->holderidentity && sp->renewtime &&
        obj_microtime_ns(sp->renewtime) + (int64_t)sp->leasedurationseconds * 1000000000 >=
            f->now) {
        f->ips = xrealloc(f->ips, (f->n + 1) * sizeof(*f->ips));
        f->ips[f->n++] = xstrdup(sp->holderidentity);
    }
    obj_free(&l->base);
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void ensure_service(svckube_t *s, store_rtxn_t *t)
{
    char *key = kind_key(&kind_service, "default", "kubernetes");
    ProtobufCMessage *old = stored(t, &kind_service, key);
    free(key);
    if (old) {
        obj_free(old);
        return;
    }
    Coracle__V1__Service *svc = xmalloc(sizeof(*svc));
    coracle__v1__service__init(svc);
    svc->metadata = meta_new("default", "kubernetes");
    add_label(svc->metadata, "component", "apiserver");
    add_label(svc->metadata, "provider", "kubernetes");
    Coracle__V1__ServiceSpec *sp = svc->spec = xmalloc(sizeof(*sp));
    coracle__v1__service_spec__init(sp);
    sp->type = xstrdup("ClusterIP");
    sp->clusterip = xstrdup(s->first_ip);
    sp->ports = xmalloc(sizeof(*sp->ports));
    Coracle__V1__ServicePort *p = sp->ports[0] = xmalloc(sizeof(*p));
    coracle__v1__service_port__init(p);
    sp->n_ports = 1;
    p->name = xstrdup("https");
    p->protocol = xstrdup("TCP");
    p->has_port = 1;
    p->port = 443;
    p->targetport = xmalloc(sizeof(*p->targetport));
    coracle__v1__int_or_string__init(p->targetport);
    p->targetport->has_intval = 1;
    p->targetport->intval = s->port;
    s->ops.put(s->ops.arg, &kind_service, &svc->base, false);
}

/* Whether slice lists exactly ips (sorted) on port. */
static bool slice_is(const Coracle__V1__EndpointSlice *e, char **ips, size_t n, int port)
{
    if (e->n_endpoints != n || e->n_ports != 1 || e->ports[0]->port != port)
        return false;
    for (size_t i = 0; i < n; i++)
        if (e->endpoints[i]->n_addresses != 1 || strcmp(e->endpoints[i]->addresses[0], ips[i]))
            return false;
    return true;
}

static void ensure_slice(svckube_t *s, store_rtxn_t *t, char **ips, size_t n)
{
    char *key = kind_key(&kind_endpointslice, "default", "kubernetes");
    Coracle__V1__EndpointSlice *old = (void *)stored(t, &kind_endpointslice, key);
    free(key);
    if (old && slice_is(old, ips, n, s->port)) {
        obj_free(&old->base);
        return;
    }
    Coracle__V1__EndpointSlice *e = xmalloc(sizeof(*e));
    coracle__v1__endpoint_slice__init(e);
    e->metadata = meta_new("default", "kubernetes");
    add_label(e->metadata, "kubernetes.io/service-name", "kubernetes");
    e->addresstype = xstrdup("IPv4");
    e->endpoints = xcalloc(n ? n : 1, sizeof(*e->endpoints));
    for (size_t i = 0; i < n; i++) {
        Coracle__V1__Endpoint *ep = e->endpoints[i] = xmalloc(sizeof(*ep));
        coracle__v1__endpoint__init(ep);
        ep->addresses = xmalloc(sizeof(*ep->addresses));
        ep->addresses[0] = xstrdup(ips[i]);
        ep->n_addresses = 1;
        ep->conditions = xmalloc(sizeof(*ep->conditions));
        coracle__v1__endpoint_conditions__init(ep->conditions);
        ep->conditions->has_ready = 1;
        ep->conditions->ready = 1;
    }
    e->n_endpoints = n;
    e->ports = xmalloc(sizeof(*e->ports));
    Coracle__V1__EndpointPort *p = e->ports[0] = xmalloc(sizeof(*p));
    coracle__v1__endpoint_port__init(p);
    e->n_ports = 1;
    p->name = xstrdup("https");
    p->protocol = xstrdup("TCP");
    p->has_port = 1;
    p->port = s->port;
    s->ops.put(s->ops.arg, &kind_endpointslice, &e->base, old != NULL);
    if (old)
        obj_free(&old->base);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    svckube_t *s = arg;
    store_rtxn_t *t;
    if (store_read_begin(s->st, &t) == 0) {
        renew(s, t);
        struct fresh f = {.now = now_ns()};
        const char *prefix = "leases/kube-system/" LEASE_PREFIX;
        store_scan(t, prefix, strlen(prefix), NULL, 0, fresh_lease, &f);
        bool self = false;
        for (size_t i = 0; i < f.n; i++)
            self |= !strcmp(f.ips[i], s->ip);
        if (!self) { /* the renewal is on its way */
            f.ips = xrealloc(f.ips, (f.n + 1) * sizeof(*f.ips));
            f.ips[f.n++] = xstrdup(s->ip);
        }
        qsort(f.ips, f.n, sizeof(*f.ips), str_cmp);
        ensure_service(s, t);
        ensure_slice(s, t, f.ips, f.n);
        for (size_t i = 0; i < f.n; i++)
            free(f.ips[i]);
        free(f.ips);
        store_read_end(t);
    }
    struct timeval tv = {PERIOD_S, 0};
    evtimer_add(s->tick, &tv);
}

svckube_t *svckube_new(struct event_base *base, store_t *st, const struct svckube_config *cfg,
                       const struct svckube_ops *ops)
{
    svckube_t *s = xcalloc(1, sizeof(*s));
    s->base = base;
    s->st = st;
    s->ops = *ops;
    s->ip = xstrdup(cfg->ip);
    s->first_ip = xstrdup(cfg->first_ip);
    s->port = cfg->port;
    s->tick = evtimer_new(base, tick, s);
    struct timeval now = {0, 0};
    evtimer_add(s->tick, &now);
    return s;
}

void svckube_free(svckube_t *s)
{
    if (!s)
        return;
    event_free(s->tick);
    free(s->ip);
    free(s->first_ip);
    free(s);
}
