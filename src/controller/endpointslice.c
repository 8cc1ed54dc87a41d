/*
 * The EndpointSlice controller, as Kubernetes' (pkg/controller/endpointslice):
 * for each Service with a selector, EndpointSlices (discovery.k8s.io/v1,
 * addressType IPv4) listing the pods it selects that have an IP, each with
 * its conditions (ready: Ready and not terminating, or any pod with
 * publishNotReadyAddresses; serving: Ready; terminating: being deleted),
 * nodeName, targetRef and the Service's ports resolved for that pod (a
 * named targetPort looked up in the pod's containers). Pods whose ports
 * resolve alike share slices of at most --max-endpoints-per-slice
 * endpoints.
 *
 * Few writes: a sync keeps each endpoint in the slice that has it, updates
 * a slice only when its content changes, fills new endpoints into slices
 * with room before it creates one, and deletes only emptied slices. A
 * Service with no endpoints keeps one empty placeholder slice, as
 * Kubernetes does. Slices carry kubernetes.io/service-name,
 * endpointslice.kubernetes.io/managed-by and a controller owner reference
 * to the Service (the garbage collector removes them with it).
 * Expectations count the writes in flight so a sync never acts on a cache
 * that has not seen its own slices yet.
 */
#include "config.h"

#include "controllers.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define MANAGED_BY "endpointslice.kubernetes.io/managed-by"
#define CONTROLLER_NAME "endpointslice-controller.k8s.io"
#define SERVICE_NAME "kubernetes.io/service-name"
#define HEADLESS "service.kubernetes.io/headless"

static const char *label_of(const Coracle__V1__ObjectMeta *m, const char *key)
{
    for (size_t i = 0; m && i < m->n_labels; i++)
        if (!strcmp(m->labels[i]->key, key))
            return m->labels[i]->value ? m->labels[i]->value : "";
    return NULL;
}

static const char *ns_of(const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    return m && m->namespace_ ? m->namespace_ : "";
}

/* The Service's selector matches the pod's labels (an empty one matches nothing here). */
static bool selects(const Coracle__V1__Service *svc, const Coracle__V1__Pod *pod)
{
    const Coracle__V1__ServiceSpec *sp = svc->spec;
    if (!sp || !sp->n_selector)
        return false;
    for (size_t i = 0; i < sp->n_selector; i++) {
        const char *v = label_of(pod->metadata, sp->selector[i]->key);
        if (!v || strcmp(v, sp->selector[i]->value ? sp->selector[i]->value : ""))
            return false;
    }
    return true;
}

static void enqueue_obj(ctrl_t *c, const ProtobufCMessage *obj)
{
    char *key = cm_key(obj);
    ctrl_enqueue(c, key);
    free(key);
}

/* ---- handlers ---- */

struct pod_walk {
    ctrl_t *c;
    const Coracle__V1__Pod *pod;
};

static int offer_pod(const ProtobufCMessage *obj, void *arg)
{
    struct pod_walk *w = arg;
    if (!strcmp(ns_of(obj), ns_of(&w->pod->base)) &&
        selects((const Coracle__V1__Service *)obj, w->pod))
        enqueue_obj(w->c, obj);
    return 0;
}

/* A pod changed: every Service in its namespace selecting it. */
static void enqueue_services(ctrl_t *c, const ProtobufCMessage *pod)
{
    struct pod_walk w = {c, (const Coracle__V1__Pod *)pod};
    inf_foreach(cm_informer(ctrl_cm(c), &kind_service), offer_pod, &w);
}

static void pod_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    enqueue_services(arg, obj);
}

static void pod_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                       void *arg)
{
    enqueue_services(arg, old);
    enqueue_services(arg, obj);
}

static void svc_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    enqueue_obj(arg, obj);
}

static void svc_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                       void *arg)
{
    enqueue_obj(arg, obj);
}

static void svc_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = cm_key(obj);
    cm_expect_forget(arg, key);
    ctrl_enqueue(arg, key);
    free(key);
}

/* A slice of ours changed: its Service's key, with the write observed. */
static void slice_seen(ctrl_t *c, const ProtobufCMessage *obj, int adds, int dels)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    const char *by = label_of(m, MANAGED_BY), *svc = label_of(m, SERVICE_NAME);
    if (!by || strcmp(by, CONTROLLER_NAME) || !svc)
        return;
    char *key = xconcat(ns_of(obj), "/", svc, NULL);
    cm_observed(c, key, adds, dels);
    ctrl_enqueue(c, key);
    free(key);
}

static void slice_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    slice_seen(arg, obj, 1, 0);
}

static void slice_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                         void *arg)
{
    slice_seen(arg, obj, 1, 0);
}

static void slice_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    slice_seen(arg, obj, 0, 1);
}

static void *es_setup(cm_t *cm, ctrl_t *c)
{
    struct inf_handlers sh = {svc_add, svc_update, svc_delete, NULL, c};
    struct inf_handlers ph = {pod_add, pod_update, pod_add, NULL, c};
    struct inf_handlers eh = {slice_add, slice_update, slice_delete, NULL, c};
    cm_on(cm, &kind_service, &sh);
    cm_on(cm, &kind_pod, &ph);
    cm_on(cm, &kind_endpointslice, &eh);
    return NULL;
}

/* ---- the endpoints a Service wants ---- */

/* One pod's endpoint, its strings borrowed from the caches. */
struct ep {
    Coracle__V1__Endpoint ep;
    Coracle__V1__EndpointConditions cond;
    Coracle__V1__ObjectReference ref;
    char *addr[1];
    size_t group; /* its ports: the index in struct want's groups */
    bool placed;
};

/* A set of resolved ports that some pods share. */
struct group {
    Coracle__V1__EndpointPort *ports; /* n_ports of the Service's, those that resolved */
    Coracle__V1__EndpointPort **pp;
    size_t n;
};

struct want {
    const Coracle__V1__Service *svc;
    struct ep *v;
    size_t n, cap;
    struct group *g;
    size_t ng;
};

/* The container port named name (with the protocol), or 0. */
static int32_t named_port(const Coracle__V1__Pod *pod, const char *name, const char *proto)
{
    const Coracle__V1__PodSpec *sp = pod->spec;
    for (size_t i = 0; sp && i < sp->n_containers; i++)
        for (size_t j = 0; j < sp->containers[i]->n_ports; j++) {
            const Coracle__V1__ContainerPort *p = sp->containers[i]->ports[j];
            const char *pp = p->protocol && *p->protocol ? p->protocol : "TCP";
            if (p->name && !strcmp(p->name, name) && !strcmp(pp, proto))
                return p->containerport;
        }
    return 0;
}

static bool ports_equal(Coracle__V1__EndpointPort *const *a, size_t na,
                        Coracle__V1__EndpointPort *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (a[i]->port != b[i]->port ||
            strcmp(a[i]->name ? a[i]->name : "", b[i]->name ? b[i]->name : "") ||
            strcmp(a[i]->protocol ? a[i]->protocol : "", b[i]->protocol ? b[i]->protocol : ""))
            return false;
    return true;
}

/* The group of the pod's resolved ports (added if new). */
static size_t pod_group(struct want *w, const Coracle__V1__Pod *pod)
{
    const Coracle__V1__ServiceSpec *sp = w->svc->spec;
    struct group g = {xcalloc(sp->n_ports + 1, sizeof(*g.ports)),
                      xcalloc(sp->n_ports + 1, sizeof(*g.pp)), 0};
    for (size_t i = 0; i < sp->n_ports; i++) {
        const Coracle__V1__ServicePort *p = sp->ports[i];
        const Coracle__V1__IntOrString *t = p->targetport;
        const char *proto = p->protocol ? p->protocol : "TCP";
        int32_t port = !t             ? p->port
                       : t->type == 1 ? named_port(pod, t->strval ? t->strval : "", proto)
                                      : t->intval;
        if (!port)
            continue; /* not found in this pod: Kubernetes leaves the port out */
        Coracle__V1__EndpointPort *e = &g.ports[g.n];
        coracle__v1__endpoint_port__init(e);
        e->name = p->name ? p->name : "";
        e->protocol = (char *)proto;
        e->has_port = 1;
        e->port = port;
        e->appprotocol = p->appprotocol;
        g.pp[g.n++] = e;
    }
    for (size_t i = 0; i < w->ng; i++)
        if (ports_equal(w->g[i].pp, w->g[i].n, g.pp, g.n)) {
            free(g.ports);
            free(g.pp);
            return i;
        }
    w->g = xrealloc(w->g, (w->ng + 1) * sizeof(*w->g));
    w->g[w->ng] = g;
    return w->ng++;
}

static bool pod_listed(const Coracle__V1__Pod *pod)
{
    const Coracle__V1__PodStatus *st = pod->status;
    if (!st || !st->podip || !*st->podip)
        return false;
    return !st->phase || (strcmp(st->phase, "Succeeded") && strcmp(st->phase, "Failed"));
}

static int want_pod(const ProtobufCMessage *obj, void *arg)
{
    struct want *w = arg;
    const Coracle__V1__Pod *pod = (const Coracle__V1__Pod *)obj;
    if (strcmp(ns_of(obj), ns_of(&w->svc->base)) || !selects(w->svc, pod) || !pod_listed(pod))
        return 0;
    w->v = xgrow(w->v, &w->cap, w->n + 1, sizeof(*w->v));
    struct ep *e = &w->v[w->n++];
    memset(e, 0, sizeof(*e));
    coracle__v1__endpoint__init(&e->ep);
    coracle__v1__endpoint_conditions__init(&e->cond);
    coracle__v1__object_reference__init(&e->ref);
    const Coracle__V1__ObjectMeta *m = pod->metadata;
    bool serving = cm_pod_ready(pod), terminating = m->deletiontimestamp != NULL;
    bool publish =
        w->svc->spec->has_publishnotreadyaddresses && w->svc->spec->publishnotreadyaddresses;
    e->cond.has_ready = e->cond.has_serving = e->cond.has_terminating = 1;
    e->cond.ready = publish || (serving && !terminating);
    e->cond.serving = serving;
    e->cond.terminating = terminating;
    e->addr[0] = pod->status->podip;
    e->ep.n_addresses = 1;
    e->ref.kind = "Pod";
    e->ref.namespace_ = m->namespace_;
    e->ref.name = m->name;
    e->ref.uid = m->uid;
    e->ep.nodename =
        pod->spec && pod->spec->nodename && *pod->spec->nodename ? pod->spec->nodename : NULL;
    if (pod->spec && pod->spec->hostname && *pod->spec->hostname && pod->spec->subdomain &&
        !strcmp(pod->spec->subdomain, w->svc->metadata->name))
        e->ep.hostname = pod->spec->hostname;
    e->group = pod_group(w, pod);
    return 0;
}

static int ep_cmp(const void *a, const void *b)
{
    const struct ep *x = a, *y = b;
    return strcmp(x->ref.name, y->ref.name);
}

/* Points each endpoint at its own parts, once the array stopped moving. */
static void want_link(struct want *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct ep *e = &w->v[i];
        e->ep.addresses = e->addr;
        e->ep.conditions = &e->cond;
        e->ep.targetref = &e->ref;
    }
}

static void want_free(struct want *w)
{
    for (size_t i = 0; i < w->ng; i++) {
        free(w->g[i].ports);
        free(w->g[i].pp);
    }
    free(w->g);
    free(w->v);
}

/* ---- the plan: what each slice holds after the sync ---- */

struct plan {
    const Coracle__V1__EndpointSlice *cur; /* NULL: to create */
    size_t group;                          /* SIZE_MAX: matches no group */
    Coracle__V1__Endpoint **eps;
    size_t n;
    bool changed;
};

struct sync {
    ctrl_t *c;
    cm_t *cm;
    const Coracle__V1__Service *svc;
    struct want w;
    struct plan *p;
    size_t np;
    size_t max;
    struct cm_batch *b;
};

static bool ep_equal(const Coracle__V1__Endpoint *a, const Coracle__V1__Endpoint *b)
{
    size_t la = protobuf_c_message_get_packed_size(&a->base);
    size_t lb = protobuf_c_message_get_packed_size(&b->base);
    if (la != lb)
        return false;
    uint8_t *x = xmalloc(la + 1), *y = xmalloc(lb + 1);
    protobuf_c_message_pack(&a->base, x);
    protobuf_c_message_pack(&b->base, y);
    bool eq = !memcmp(x, y, la);
    free(x);
    free(y);
    return eq;
}

static struct ep *find_want(struct want *w, const Coracle__V1__Endpoint *e, size_t group)
{
    const char *name = e->targetref && e->targetref->name ? e->targetref->name : NULL;
    for (size_t i = 0; name && i < w->n; i++)
        if (!w->v[i].placed && w->v[i].group == group && !strcmp(w->v[i].ref.name, name))
            return &w->v[i];
    return NULL;
}

static struct plan *plan_add(struct sync *s, const Coracle__V1__EndpointSlice *cur, size_t group)
{
    s->p = xrealloc(s->p, (s->np + 1) * sizeof(*s->p));
    struct plan *p = &s->p[s->np++];
    memset(p, 0, sizeof(*p));
    p->cur = cur;
    p->group = group;
    p->eps = xcalloc(s->max + 1, sizeof(*p->eps));
    p->changed = cur == NULL;
    return p;
}

/* An existing slice keeps the endpoints it has that are still wanted. */
static void plan_existing(struct sync *s, const Coracle__V1__EndpointSlice *es)
{
    size_t group = SIZE_MAX;
    for (size_t i = 0; i < s->w.ng; i++)
        if (ports_equal(s->w.g[i].pp, s->w.g[i].n, es->ports, es->n_ports))
            group = i;
    struct plan *p = plan_add(s, es, group);
    for (size_t i = 0; i < es->n_endpoints; i++) {
        struct ep *e = group == SIZE_MAX ? NULL : find_want(&s->w, es->endpoints[i], group);
        if (!e || p->n >= s->max) {
            p->changed = true; /* gone, or moved */
            continue;
        }
        e->placed = true;
        p->changed |= !ep_equal(es->endpoints[i], &e->ep);
        p->eps[p->n++] = &e->ep;
    }
}

/* New endpoints go into slices with room, changed ones first, then new slices. */
static void plan_place(struct sync *s)
{
    for (size_t i = 0; i < s->w.n; i++) {
        struct ep *e = &s->w.v[i];
        if (e->placed)
            continue;
        struct plan *to = NULL;
        for (size_t pass = 0; pass < 2 && !to; pass++)
            for (size_t j = 0; j < s->np && !to; j++)
                if (s->p[j].group == e->group && s->p[j].n < s->max && (pass || s->p[j].changed))
                    to = &s->p[j];
        if (!to)
            to = plan_add(s, NULL, e->group);
        to->changed = true;
        to->eps[to->n++] = &e->ep;
        e->placed = true;
    }
}

static void label(Coracle__V1__ObjectMeta__LabelsEntry *e,
                  Coracle__V1__ObjectMeta__LabelsEntry **pe, const char *k, const char *v)
{
    coracle__v1__object_meta__labels_entry__init(e);
    e->key = (char *)k;
    e->value = (char *)v;
    *pe = e;
}

/* The slice's labels: the Service's, then ours (n_out entries in le/lp, room for n_labels+3). */
static size_t slice_labels(const Coracle__V1__Service *svc,
                           Coracle__V1__ObjectMeta__LabelsEntry *le,
                           Coracle__V1__ObjectMeta__LabelsEntry **lp)
{
    size_t n = 0;
    const Coracle__V1__ObjectMeta *m = svc->metadata;
    for (size_t i = 0; i < m->n_labels; i++) {
        const char *k = m->labels[i]->key;
        if (strcmp(k, SERVICE_NAME) && strcmp(k, MANAGED_BY) && strcmp(k, HEADLESS))
            label(&le[n], &lp[n], k, m->labels[i]->value), n++;
    }
    label(&le[n], &lp[n], MANAGED_BY, CONTROLLER_NAME), n++;
    label(&le[n], &lp[n], SERVICE_NAME, m->name), n++;
    if (svc->spec->clusterip && !strcmp(svc->spec->clusterip, "None"))
        label(&le[n], &lp[n], HEADLESS, ""), n++;
    return n;
}

static bool labels_same(const Coracle__V1__ObjectMeta *m, Coracle__V1__ObjectMeta__LabelsEntry **lp,
                        size_t n)
{
    if (!m || m->n_labels != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *v = label_of(m, lp[i]->key);
        if (!v || strcmp(v, lp[i]->value))
            return false;
    }
    return true;
}

static void slice_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct cm_batch *b = arg;
    if (code != 0)
        cm_observed(cm_batch_ctrl(b), cm_batch_key(b), 1, 0); /* never seen */
    cm_batch_end(b, code, message, "write endpointslice");
}

static void delete_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct cm_batch *b = arg;
    if (code != 0)
        cm_observed(cm_batch_ctrl(b), cm_batch_key(b), 0, 1);
    cm_batch_end(b, code, message, "delete endpointslice");
}

/* Writes a plan's slice (create or update) with the given ports, if it changed: 1 if so. */
static int write_slice(struct sync *s, struct plan *p, Coracle__V1__EndpointPort **ports,
                       size_t nports)
{
    const Coracle__V1__Service *svc = s->svc;
    size_t nl = svc->metadata->n_labels + 3;
    Coracle__V1__ObjectMeta__LabelsEntry *le = xcalloc(nl, sizeof(*le));
    Coracle__V1__ObjectMeta__LabelsEntry **lp = xcalloc(nl, sizeof(*lp));
    size_t n = slice_labels(svc, le, lp);
    if (p->cur && !p->changed && labels_same(p->cur->metadata, lp, n)) {
        free(le);
        free(lp);
        return 0;
    }
    Coracle__V1__EndpointSlice es = CORACLE__V1__ENDPOINT_SLICE__INIT;
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__OwnerReference ref = CORACLE__V1__OWNER_REFERENCE__INIT, *refs[1] = {&ref};
    char *gen = NULL;
    if (p->cur) {
        es = *p->cur;
        m = *p->cur->metadata;
    } else {
        gen = xconcat(svc->metadata->name, "-", NULL);
        m.generatename = gen;
        m.namespace_ = svc->metadata->namespace_;
        ref.apiversion = "v1";
        ref.kind = "Service";
        ref.name = svc->metadata->name;
        ref.uid = svc->metadata->uid;
        ref.has_controller = ref.has_blockownerdeletion = 1;
        ref.controller = ref.blockownerdeletion = 1;
        m.ownerreferences = refs;
        m.n_ownerreferences = 1;
        es.addresstype = "IPv4";
    }
    m.labels = lp;
    m.n_labels = n;
    es.metadata = &m;
    es.endpoints = p->eps;
    es.n_endpoints = p->n;
    es.ports = ports;
    es.n_ports = nports;
    cm_batch_add(s->b);
    cm_call(s->cm, &kind_endpointslice, p->cur ? "Update" : "Create", &es.base, slice_done, s->b);
    free(gen);
    free(le);
    free(lp);
    return 1;
}

static int collect(const ProtobufCMessage *obj, void *arg)
{
    struct sync *s = arg;
    const char *by = label_of(kind_meta(obj), MANAGED_BY);
    if (by && !strcmp(by, CONTROLLER_NAME))
        plan_existing(s, (const Coracle__V1__EndpointSlice *)obj);
    return 0;
}

/*
 * Writes the plan: changed slices, emptied ones deleted (one empty
 * placeholder kept), and expects what it wrote (the writes answer, and
 * their events arrive, only once the loop runs again).
 */
static void apply_plan(struct sync *s)
{
    int writes = 0, deletes = 0;
    bool placeholder = s->w.n == 0, kept = false;
    for (size_t i = 0; i < s->np; i++) {
        struct plan *p = &s->p[i];
        if (placeholder && !kept) {
            kept = true;
            p->changed |= p->cur && (p->cur->n_endpoints || p->cur->n_ports);
            writes += write_slice(s, p, NULL, 0);
        } else if (p->n == 0 && p->cur) {
            const Coracle__V1__ObjectMeta *m = p->cur->metadata;
            deletes++;
            cm_batch_add(s->b);
            cm_delete(s->cm, &kind_endpointslice, m->namespace_, m->name, m->uid, NULL, delete_done,
                      s->b);
        } else if (p->n) {
            writes += write_slice(s, p, s->w.g[p->group].pp, s->w.g[p->group].n);
        }
    }
    if (placeholder && !kept)
        writes += write_slice(s, plan_add(s, NULL, SIZE_MAX), NULL, 0);
    cm_expect(s->c, cm_batch_key(s->b), writes, deletes);
}

static void plans_free(struct sync *s)
{
    for (size_t i = 0; i < s->np; i++)
        free(s->p[i].eps);
    free(s->p);
}

static void es_sync(ctrl_t *c, const char *key, void *state)
{
    cm_t *cm = ctrl_cm(c);
    char *ns = xstrdup(key), *name = strchr(ns, '/');
    *name++ = '\0';
    const Coracle__V1__Service *svc =
        (const Coracle__V1__Service *)cm_get(cm, &kind_service, ns, name);
    if (!svc || !cm_satisfied(c, key)) {
        /* gone: the garbage collector takes its slices; unsatisfied: the
         * slices' own events bring the key back */
        if (!svc)
            cm_expect_forget(c, key);
        ctrl_done(c, key, true, NULL);
        free(ns);
        return;
    }
    struct sync s = {.c = c, .cm = cm, .svc = svc, .max = (size_t)cm_max_endpoints_per_slice(cm)};
    s.w.svc = svc;
    s.b = cm_batch_new(c, key);
    bool deleting = svc->metadata->deletiontimestamp != NULL;
    if (svc->spec && svc->spec->n_selector && !deleting) {
        inf_foreach(cm_informer(cm, &kind_pod), want_pod, &s.w);
        if (s.w.n)
            qsort(s.w.v, s.w.n, sizeof(*s.w.v), ep_cmp);
        want_link(&s.w);
    }
    cm_owned(cm, &kind_endpointslice, ns, cm_uid(&svc->base), collect, &s);
    if (!svc->spec || !svc->spec->n_selector) {
        /* no selector: the endpoints are the user's; ours go */
        for (size_t i = 0; i < s.np; i++)
            s.p[i].n = 0, s.p[i].changed = false;
        s.w.n = 1; /* no placeholder */
    } else {
        plan_place(&s);
    }
    if (!deleting)
        apply_plan(&s);
    plans_free(&s);
    want_free(&s.w);
    free(ns);
    cm_batch_end(s.b, 0, NULL, NULL);
}

const struct ctrl_def ctrl_endpointslice = {
    .name = "endpointslice",
    .workers = 5,
    .setup = es_setup,
    .sync = es_sync,
};
