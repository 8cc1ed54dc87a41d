/*
 * sched: the scheduler's core: informers -> queue -> filter/score -> assume
 * -> Bind -> events. See sched.h.
 */
#include "config.h"

#include "sched.h"
#include "fit.h"
#include "gcl.h"
#include "grpc.h"
#include "informer.h"
#include "kinds.h"
#include "queue.h"
#include "pb.h"
#include "smap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Pods scheduled per turn of the loop before letting I/O in. */
#define SCHED_BATCH 64
/* The event spam filter's burst and refill period (client-go's defaults). */
#define SCHED_EVENT_BURST 25
#define SCHED_EVENT_REFILL_S 300

/* A pod charged to a node (bound, or assumed while its Bind is in flight). */
struct acct {
    char *node;
    struct sched_req req;
    bool assumed;
    bool deleted; /* the pod went away while its Bind was in flight */
};

struct sched {
    struct obs_hist alg_hist, e2e_hist;
    struct event_base *base;
    struct sched_cfg cfg;
    char *server, *name, *token;
    char *instance; /* reportingInstance: <name>-<hostname>, as Kubernetes */
    gcl_t *g;
    inf_t *pods, *nodes;
    sched_queue_t *q;
    struct event *run_ev;
    bool run_armed;
    bool standby; /* not the leader (yet): informers only */

    smap_t *node_map;        /* name -> struct sched_node */
    struct sched_node **arr; /* nodes with a Node object: the candidates */
    size_t narr, caparr, next_start;
    smap_t *accts; /* pod key -> struct acct */

    int inflight;
    uint64_t last_event_ts;
    struct sched_stats st;
};

static const char *S(const char *s)
{
    return s ? s : "";
}

bool sched_pod_is_terminal(const Coracle__V1__Pod *pod)
{
    const char *ph = pod->status ? pod->status->phase : NULL;
    return ph && (!strcmp(ph, "Succeeded") || !strcmp(ph, "Failed"));
}

bool sched_pod_is_pending(const Coracle__V1__Pod *pod, const char *name)
{
    const Coracle__V1__PodSpec *spec = pod->spec;
    if (!spec)
        return false;
    if (spec->nodename && *spec->nodename)
        return false;
    if (spec->schedulername && *spec->schedulername && strcmp(spec->schedulername, name))
        return false;
    if (pod->metadata && pod->metadata->deletiontimestamp)
        return false;
    return !sched_pod_is_terminal(pod);
}

size_t sched_num_to_find(size_t n, int percentage)
{
    const size_t min_feasible = 100;
    if (n < min_feasible)
        return n;
    long p = percentage;
    if (p <= 0) {
        p = 50 - (long)(n / 125);
        if (p < 5)
            p = 5;
    }
    if (p >= 100)
        return n;
    size_t k = n * (size_t)p / 100;
    return k < min_feasible ? min_feasible : k;
}

/* ------------------------------------------------------------ nodes */

static struct sched_node *node_get(sched_t *s, const char *name, bool create)
{
    struct sched_node *n = smap_get(s->node_map, name);
    if (n || !create)
        return n;
    n = xcalloc(1, sizeof(*n));
    n->name = xstrdup(name);
    n->idx = -1;
    smap_put(s->node_map, name, n);
    return n;
}

static void arr_add(sched_t *s, struct sched_node *n)
{
    if (n->idx >= 0)
        return;
    if (s->narr == s->caparr) {
        s->caparr = s->caparr ? s->caparr * 2 : 64;
        s->arr = xrealloc(s->arr, s->caparr * sizeof(*s->arr));
    }
    n->idx = (long)s->narr;
    s->arr[s->narr++] = n;
}

static void arr_del(sched_t *s, struct sched_node *n)
{
    if (n->idx < 0)
        return;
    size_t i = (size_t)n->idx;
    s->arr[i] = s->arr[--s->narr];
    s->arr[i]->idx = (long)i;
    n->idx = -1;
}

/* A digest of what filters and scores read from the Node object. */
static uint64_t node_sig(const struct sched_node *n)
{
    uint64_t h = 1469598103934665603ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    MIX(n->alloc_cpu);
    MIX(n->alloc_mem);
    MIX(n->alloc_pods);
    MIX(n->ready);
    const Coracle__V1__Node *o = n->node;
    if (!o)
        return h;
    if (o->spec) {
        MIX(o->spec->has_unschedulable && o->spec->unschedulable);
        for (size_t i = 0; i < o->spec->n_taints; i++) {
            const Coracle__V1__Taint *t = o->spec->taints[i];
            const char *f[] = {S(t->key), S(t->value), S(t->effect)};
            for (size_t j = 0; j < 3; j++)
                for (const char *c = f[j]; *c; c++)
                    MIX(*c);
            MIX(0x100);
        }
    }
    if (o->metadata)
        for (size_t i = 0; i < o->metadata->n_labels; i++) {
            for (const char *c = S(o->metadata->labels[i]->key); *c; c++)
                MIX(*c);
            MIX(0x101);
            for (const char *c = S(o->metadata->labels[i]->value); *c; c++)
                MIX(*c);
            MIX(0x102);
        }
#undef MIX
    return h;
}

static void node_add_or_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                               void *arg)
{
    sched_t *s = arg;
    const Coracle__V1__Node *node = (const Coracle__V1__Node *)obj;
    const char *name = node->metadata ? node->metadata->name : NULL;
    if (!name || !*name)
        return;
    struct sched_node *n = node_get(s, name, true);
    bool known = n->node != NULL;
    uint64_t before = known ? node_sig(n) : 0;
    sched_node_set(n, node);
    arr_add(s, n);
    if (!known)
        log_info("node %s: added (cpu %lldm, memory %lld, pods %lld, %s)", name,
                 (long long)n->alloc_cpu, (long long)n->alloc_mem, (long long)n->alloc_pods,
                 n->ready == SCHED_READY_TRUE ? "ready" : "not ready");
    if (!known || node_sig(n) != before)
        sched_queue_move_all(s->q);
}

static void node_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    node_add_or_update(inf, NULL, obj, arg);
}

static void node_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    sched_t *s = arg;
    const Coracle__V1__Node *node = (const Coracle__V1__Node *)obj;
    const char *name = node->metadata ? node->metadata->name : NULL;
    struct sched_node *n = name ? node_get(s, name, false) : NULL;
    if (!n)
        return;
    log_info("node %s: deleted", name);
    arr_del(s, n);
    if (n->node)
        protobuf_c_message_free_unpacked(&n->node->base, NULL);
    n->node = NULL;
    n->alloc_cpu = n->alloc_mem = n->alloc_pods = 0;
    /* the entry stays while pods are charged to it (they go with the informer) */
}

/* ------------------------------------------------------------ accounting */

static void acct_free(void *v)
{
    struct acct *a = v;
    sched_req_free(&a->req);
    free(a->node);
    free(a);
}

/* Releases what key holds; returns true if it held something. */
static bool release(sched_t *s, const char *key)
{
    struct acct *a = smap_del(s->accts, key);
    if (!a)
        return false;
    struct sched_node *n = node_get(s, a->node, false);
    if (n)
        sched_node_charge(n, &a->req, -1);
    acct_free(a);
    return true;
}

/* Charges pod (key) to node: assumed (our Bind in flight) or bound. */
static void charge(sched_t *s, const char *key, const Coracle__V1__Pod *pod, const char *node,
                   const struct sched_req *req, bool assumed)
{
    struct acct *a = smap_get(s->accts, key);
    if (a && !strcmp(a->node, node)) {
        if (!assumed)
            a->assumed = false;
        return;
    }
    if (a)
        release(s, key);
    a = xcalloc(1, sizeof(*a));
    a->node = xstrdup(node);
    a->assumed = assumed;
    if (req) {
        a->req = *req;
        if (req->n_ports) {
            a->req.ports = xmemdup(req->ports, req->n_ports * sizeof(*req->ports));
        }
    } else {
        char *err = NULL;
        sched_req_of(pod, &a->req, &err);
        free(err);
    }
    sched_node_charge(node_get(s, node, true), &a->req, +1);
    smap_put(s->accts, key, a);
}

/* ------------------------------------------------------------ pods */

/* True if the specs differ (Kubernetes' isPodUpdated: status, resourceVersion
 * and the like do not count; our own PodScheduled update must not requeue). */
static bool spec_changed(const Coracle__V1__Pod *a, const Coracle__V1__Pod *b)
{
    if (!a->spec || !b->spec)
        return a->spec != b->spec;
    return !pb_equal(&a->spec->base, &b->spec->base);
}

static void pod_changed(sched_t *s, const Coracle__V1__Pod *old, const Coracle__V1__Pod *pod)
{
    char *key = inf_key_of(&pod->base);
    const char *node = pod->spec ? pod->spec->nodename : NULL;
    if (node && *node) {
        sched_queue_remove(s->q, key);
        if (sched_pod_is_terminal(pod)) {
            if (release(s, key))
                sched_queue_move_all(s->q); /* resources came free */
        } else {
            charge(s, key, pod, node, NULL, false);
        }
    } else if (sched_pod_is_pending(pod, s->name)) {
        int32_t prio = pod->spec->has_priority ? pod->spec->priority : 0;
        if (!sched_queue_add(s->q, key, prio) && old && spec_changed(old, pod))
            sched_queue_update(s->q, key, prio);
    } else {
        sched_queue_remove(s->q, key);
    }
    free(key);
}

/* What an assigned pod keeps of a container: its requests and host ports (sched_req_of). */
static Coracle__V1__Container **slim_containers(Coracle__V1__Container **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Coracle__V1__Container *c = xmalloc(sizeof(*c));
        coracle__v1__container__init(c);
        c->name = v[i]->name;
        c->resources = v[i]->resources;
        c->n_ports = v[i]->n_ports;
        c->ports = v[i]->ports;
        v[i]->name = NULL;
        v[i]->resources = NULL;
        v[i]->n_ports = 0;
        v[i]->ports = NULL;
        protobuf_c_message_free_unpacked(&v[i]->base, NULL);
        v[i] = c;
    }
    return v;
}

/*
 * The informer's transform: what the scheduler keeps of a pod. An assigned
 * pod is only charged to its node and freed when it ends: it keeps its
 * name, namespace, uid and resourceVersion, of its spec the node, priority
 * and each container's name, resources and ports (what charge() and
 * sched_req_of read), and of its status the phase once it is terminal
 * (sched_pod_is_terminal). The rest (labels, annotations, images,
 * commands, environment, volumes, tolerations, conditions,
 * containerStatuses: most of a running pod's memory) no filter of ours
 * reads for a pod already on a node; the plugins of kube-scheduler that
 * would (inter-pod affinity, topology spread: labels) are not here. No pod
 * keeps its managedFields (kube-scheduler drops those too). A pending pod
 * keeps all the rest: the filters read its spec and set_unschedulable
 * writes its status back. The cache holds each pod in one block
 * (inf_opts.compact): no allocation per field.
 */
static void pod_slim(ProtobufCMessage *obj)
{
    Coracle__V1__Pod *p = (Coracle__V1__Pod *)obj;
    Coracle__V1__ObjectMeta *m = p->metadata;
    if (m && m->n_managedfields) {
        for (size_t i = 0; i < m->n_managedfields; i++)
            protobuf_c_message_free_unpacked(&m->managedfields[i]->base, NULL);
        free(m->managedfields);
        m->managedfields = NULL;
        m->n_managedfields = 0;
    }
    if (!p->spec || !p->spec->nodename || !*p->spec->nodename)
        return;
    if (sched_pod_is_terminal(p)) {
        char *phase = p->status->phase;
        p->status->phase = NULL;
        protobuf_c_message_free_unpacked(&p->status->base, NULL);
        p->status = xmalloc(sizeof(*p->status));
        coracle__v1__pod_status__init(p->status);
        p->status->phase = phase;
    } else if (p->status) {
        protobuf_c_message_free_unpacked(&p->status->base, NULL);
        p->status = NULL;
    }
    if (m) {
        Coracle__V1__ObjectMeta *km = xmalloc(sizeof(*km));
        coracle__v1__object_meta__init(km);
        km->name = m->name;
        km->namespace_ = m->namespace_;
        km->uid = m->uid;
        km->resourceversion = m->resourceversion;
        m->name = m->namespace_ = m->uid = m->resourceversion = NULL;
        protobuf_c_message_free_unpacked(&m->base, NULL);
        p->metadata = km;
    }

    Coracle__V1__PodSpec *old = p->spec, *sp = xmalloc(sizeof(*sp));
    coracle__v1__pod_spec__init(sp);
    sp->nodename = old->nodename;
    sp->has_priority = old->has_priority;
    sp->priority = old->priority;
    sp->n_containers = old->n_containers;
    sp->containers = slim_containers(old->containers, old->n_containers);
    sp->n_initcontainers = old->n_initcontainers;
    sp->initcontainers = slim_containers(old->initcontainers, old->n_initcontainers);
    old->nodename = NULL;
    old->n_containers = old->n_initcontainers = 0;
    old->containers = old->initcontainers = NULL;
    protobuf_c_message_free_unpacked(&old->base, NULL);
    p->spec = sp;
}

static void pod_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    pod_changed(arg, NULL, (const Coracle__V1__Pod *)obj);
}

static void pod_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                       void *arg)
{
    pod_changed(arg, (const Coracle__V1__Pod *)old, (const Coracle__V1__Pod *)obj);
}

static void pod_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    sched_t *s = arg;
    char *key = inf_key_of(obj);
    sched_queue_remove(s->q, key);
    struct acct *a = smap_get(s->accts, key);
    /* an assumed pod stays charged until its Bind answers */
    if (a && a->assumed)
        a->deleted = true;
    else if (a && release(s, key))
        sched_queue_move_all(s->q);
    free(key);
}

static void kick(void *arg);

static void synced(inf_t *inf, void *arg)
{
    sched_t *s = arg;
    log_info("%s informer synced: %zu objects at revision %llu", inf_kind(inf)->resource,
             inf_count(inf), (unsigned long long)inf_revision(inf));
    kick(s);
}

/* ------------------------------------------------------------ API writes */

struct call_ctx {
    sched_t *s;
    struct sched_qpod *qp;
    char *ns, *name, *uid, *node, *what;
    int64_t at_ns;   /* when the decision was made (the Scheduled event's time) */
    int64_t t0_mono; /* when the attempt started (e2e latency) */
};

static void ctx_free(struct call_ctx *c)
{
    free(c->ns);
    free(c->name);
    free(c->uid);
    free(c->node);
    free(c->what);
    free(c);
}

static void write_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct call_ctx *c = arg;
    c->s->inflight--;
    if (code != GRPC_OK && code != GRPC_CANCELLED)
        log_debug("%s for %s/%s failed: %s: %s", c->what, c->ns, c->name, grpc_code_name(code),
                  S(message));
    kick(c->s);
    ctx_free(c);
}

static void send_event(sched_t *s, const char *ns, const char *name, const char *uid,
                       const char *type, const char *reason, const char *action,
                       const char *message, int64_t at_ns)
{
    uint64_t ts = (uint64_t)(at_ns ? at_ns : now_ns());
    if (ts <= s->last_event_ts)
        ts = s->last_event_ts + 1;
    s->last_event_ts = ts;
    char ename[300];
    snprintf(ename, sizeof ename, "%s.%016llx", name, (unsigned long long)ts);

    Coracle__V1__Event ev = CORACLE__V1__EVENT__INIT;
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__ObjectReference ref = CORACLE__V1__OBJECT_REFERENCE__INIT;
    Coracle__V1__EventSource src = CORACLE__V1__EVENT_SOURCE__INIT;
    Coracle__V1__Time t = CORACLE__V1__TIME__INIT;
    meta.name = ename;
    meta.namespace_ = (char *)ns;
    ref.kind = "Pod";
    ref.apiversion = "v1";
    ref.namespace_ = (char *)ns;
    ref.name = (char *)name;
    ref.uid = (char *)uid;
    src.component = s->name;
    t.has_seconds = 1;
    t.seconds = (int64_t)(ts / 1000000000ull);
    t.has_nanos = 1;
    t.nanos = (int32_t)(ts % 1000000000ull);
    ev.metadata = &meta;
    ev.involvedobject = &ref;
    ev.reason = (char *)reason;
    ev.message = (char *)message;
    ev.source = &src;
    ev.firsttimestamp = &t;
    ev.lasttimestamp = &t;
    ev.has_count = 1;
    ev.count = 1;
    ev.type = (char *)type;
    ev.action = (char *)action;
    ev.reportingcomponent = s->name;
    ev.reportinginstance = s->instance;

    struct call_ctx *c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->ns = xstrdup(ns);
    c->name = xstrdup(name);
    c->what = xstrdup("event");
    s->inflight++;
    gcl_call(s->g, "/coracle.v1.Events/Create", &ev.base, NULL, write_done, c, 30000);
}

/* Sets PodScheduled=False/Unschedulable (as Kubernetes does), unless it says so already. */
static void set_unschedulable(sched_t *s, const Coracle__V1__Pod *pod, const char *message)
{
    const Coracle__V1__PodStatus *st = pod->status;
    for (size_t i = 0; st && i < st->n_conditions; i++) {
        const Coracle__V1__PodCondition *c = st->conditions[i];
        if (c->type && !strcmp(c->type, "PodScheduled") && !strcmp(S(c->status), "False") &&
            !strcmp(S(c->reason), "Unschedulable") && !strcmp(S(c->message), message))
            return;
    }
    Coracle__V1__Pod *p = (Coracle__V1__Pod *)inf_copy(&pod->base);
    if (!p->status) {
        p->status = xmalloc(sizeof(*p->status));
        coracle__v1__pod_status__init(p->status);
    }
    Coracle__V1__PodCondition *cond = NULL;
    for (size_t i = 0; i < p->status->n_conditions; i++)
        if (p->status->conditions[i]->type &&
            !strcmp(p->status->conditions[i]->type, "PodScheduled"))
            cond = p->status->conditions[i];
    bool transition = true;
    if (!cond) {
        cond = xmalloc(sizeof(*cond));
        coracle__v1__pod_condition__init(cond);
        cond->type = xstrdup("PodScheduled");
        p->status->conditions =
            xrealloc(p->status->conditions, (p->status->n_conditions + 1) * sizeof(cond));
        p->status->conditions[p->status->n_conditions++] = cond;
    } else {
        transition = strcmp(S(cond->status), "False") != 0;
    }
    free(cond->status);
    cond->status = xstrdup("False");
    free(cond->reason);
    cond->reason = xstrdup("Unschedulable");
    free(cond->message);
    cond->message = xstrdup(message);
    if (transition || !cond->lasttransitiontime) {
        if (!cond->lasttransitiontime) {
            cond->lasttransitiontime = xmalloc(sizeof(*cond->lasttransitiontime));
            coracle__v1__time__init(cond->lasttransitiontime);
        }
        cond->lasttransitiontime->has_seconds = 1;
        cond->lasttransitiontime->seconds = now_ns() / 1000000000;
    }
    struct call_ctx *c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->ns = xstrdup(S(pod->metadata->namespace_));
    c->name = xstrdup(S(pod->metadata->name));
    c->what = xstrdup("status update");
    s->inflight++;
    gcl_call(s->g, "/coracle.v1.Pods/UpdateStatus", &p->base, NULL, write_done, c, 30000);
    protobuf_c_message_free_unpacked(&p->base, NULL);
}

static void bind_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct call_ctx *c = arg;
    sched_t *s = c->s;
    s->inflight--;
    char *key = xasprintf("%s/%s", c->ns, c->name);
    struct acct *da = smap_get(s->accts, key);
    if (da && da->deleted && release(s, key))
        sched_queue_move_all(s->q);
    if (code == GRPC_OK) {
        s->st.bound++;
        obs_hist_observe(&s->e2e_hist, (double)(mono_ns() - c->t0_mono) / 1e9);
        log_debug("bound %s to %s", key, c->node);
        char *msg = xasprintf("Successfully assigned %s to %s", key, c->node);
        send_event(s, c->ns, c->name, c->uid, "Normal", "Scheduled", "Binding", msg, c->at_ns);
        free(msg);
        sched_queue_done(s->q, c->qp);
    } else {
        s->st.bind_errors++;
        struct acct *a = smap_get(s->accts, key);
        if (a && a->assumed && !strcmp(a->node, c->node)) {
            release(s, key); /* forget the assumption */
            sched_queue_move_all(s->q);
        }
        if (code == GRPC_NOT_FOUND || code == GRPC_ABORTED || code == GRPC_CANCELLED) {
            /* gone, or bound already (the informer will say where) */
            log_info("binding %s to %s: %s: %s", key, c->node, grpc_code_name(code), S(message));
            sched_queue_done(s->q, c->qp);
        } else {
            log_warn("binding %s to %s failed: %s: %s; retrying after backoff", key, c->node,
                     grpc_code_name(code), S(message));
            sched_queue_backoff(s->q, c->qp);
        }
    }
    free(key);
    kick(s);
    ctx_free(c);
}

/* ------------------------------------------------------------ scheduling */

static void fail_pod(sched_t *s, struct sched_qpod *qp, const Coracle__V1__Pod *pod,
                     const char *msg)
{
    s->st.unschedulable++;
    const Coracle__V1__ObjectMeta *m = pod->metadata;
    /*
     * Kubernetes' event spam filter (EventSourceObjectSpamFilter): a token
     * bucket per object, 25 events then one per 5 minutes, so a pod retried
     * after every cluster change cannot flood the apiserver with events.
     */
    int64_t now = mono_ns();
    if (!qp->ev_at)
        qp->ev_tokens = SCHED_EVENT_BURST;
    else
        qp->ev_tokens += (double)(now - qp->ev_at) / 1e9 / SCHED_EVENT_REFILL_S;
    if (qp->ev_tokens > SCHED_EVENT_BURST)
        qp->ev_tokens = SCHED_EVENT_BURST;
    qp->ev_at = now;
    if (qp->ev_tokens >= 1) {
        qp->ev_tokens -= 1;
        log_info("pod %s/%s: FailedScheduling: %s", S(m->namespace_), S(m->name), msg);
        send_event(s, S(m->namespace_), S(m->name), m->uid, "Warning", "FailedScheduling",
                   "Scheduling", msg, 0);
    } else {
        log_debug("pod %s/%s: FailedScheduling (event suppressed): %s", S(m->namespace_),
                  S(m->name), msg);
    }
    set_unschedulable(s, pod, msg);
    sched_queue_unschedulable(s->q, qp);
}

static void schedule_one(sched_t *s, struct sched_qpod *qp)
{
    const Coracle__V1__Pod *pod = (const Coracle__V1__Pod *)inf_get_key(s->pods, qp->key);
    if (!pod || !sched_pod_is_pending(pod, s->name)) {
        sched_queue_done(s->q, qp);
        return;
    }
    s->st.attempts++;
    int64_t t0 = mono_ns();
    struct sched_pod sp = {.pod = pod};
    char *err = NULL;
    if (sched_req_of(pod, &sp.req, &err) < 0) {
        log_warn("pod %s: %s (counted as 0)", qp->key, err);
        free(err);
    }
    size_t n = s->narr;
    if (n == 0) {
        fail_pod(s, qp, pod, SCHED_NO_NODES);
        sched_req_free(&sp.req);
        return;
    }
    size_t want = sched_num_to_find(n, s->cfg.percentage_nodes);
    struct sched_hist hist = {0};
    struct sched_reasons why;
    struct sched_node *best = NULL;
    int best_score = -1, ties = 0;
    size_t found = 0, i;
    size_t start = s->next_start % n;
    for (i = 0; i < n && found < want; i++) {
        struct sched_node *nd = s->arr[(start + i) % n];
        if (!sched_filter(&sp, nd, &why)) {
            sched_hist_add(&hist, &why);
            continue;
        }
        found++;
        int sc = sched_score(&sp.req, nd);
        if (sc > best_score) {
            best = nd;
            best_score = sc;
            ties = 1;
        } else if (sc == best_score && random() % ++ties == 0) {
            best = nd; /* reservoir sampling: ties broken at random */
        }
    }
    s->next_start = (start + i) % n;
    obs_hist_observe(&s->alg_hist, (double)(mono_ns() - t0) / 1e9);
    if (!best) {
        char *msg = sched_fit_message((int)n, &hist);
        fail_pod(s, qp, pod, msg);
        free(msg);
        sched_hist_free(&hist);
        sched_req_free(&sp.req);
        return;
    }
    sched_hist_free(&hist);

    /* assume: charged now, so the next pod sees it even before Bind answers */
    charge(s, qp->key, pod, best->name, &sp.req, true);
    sched_req_free(&sp.req);

    const Coracle__V1__ObjectMeta *m = pod->metadata;
    Coracle__V1__Binding b = CORACLE__V1__BINDING__INIT;
    Coracle__V1__ObjectMeta bm = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__ObjectReference target = CORACLE__V1__OBJECT_REFERENCE__INIT;
    bm.name = m->name;
    bm.namespace_ = m->namespace_;
    bm.uid = m->uid;
    target.kind = "Node";
    target.name = best->name;
    b.metadata = &bm;
    b.target = &target;
    struct call_ctx *c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->qp = qp;
    c->ns = xstrdup(S(m->namespace_));
    c->name = xstrdup(S(m->name));
    c->uid = m->uid ? xstrdup(m->uid) : NULL;
    c->node = xstrdup(best->name);
    c->at_ns = now_ns();
    c->t0_mono = t0;
    s->inflight++;
    gcl_call(s->g, "/coracle.v1.Pods/Bind", &b.base, NULL, bind_done, c, 30000);
}

static void run_cb(evutil_socket_t fd, short what, void *arg)
{
    sched_t *s = arg;
    s->run_armed = false;
    if (s->standby)
        return; /* sched_lead kicks */
    if (!inf_synced(s->pods) || !inf_synced(s->nodes))
        return; /* on_synced kicks again */
    for (int k = 0; k < SCHED_BATCH && s->inflight < s->cfg.max_inflight; k++) {
        struct sched_qpod *qp = sched_queue_pop(s->q);
        if (!qp)
            return;
        schedule_one(s, qp);
    }
    kick(s); /* more may wait: after the loop has seen I/O */
}

static void kick(void *arg)
{
    sched_t *s = arg;
    if (s->run_armed || s->inflight >= s->cfg.max_inflight)
        return;
    struct sched_queue_counts qc;
    sched_queue_counts(s->q, &qc);
    if (!qc.active)
        return;
    s->run_armed = true;
    struct timeval tv = {0, 0};
    evtimer_add(s->run_ev, &tv);
}

/* ------------------------------------------------------------ lifecycle */

static void node_free(void *v)
{
    struct sched_node *n = v;
    sched_node_clear(n);
    free(n);
}

sched_t *sched_new(struct event_base *base, const struct sched_cfg *cfg)
{
    sched_t *s = xcalloc(1, sizeof(*s));
    obs_hist_init(&s->alg_hist, obs_latency_buckets, obs_latency_nbuckets);
    obs_hist_init(&s->e2e_hist, obs_latency_buckets, obs_latency_nbuckets);
    s->base = base;
    s->cfg = *cfg;
    s->server = xstrdup(cfg->server);
    s->name = xstrdup(cfg->name && *cfg->name ? cfg->name : "default-scheduler");
    s->token = cfg->token && *cfg->token ? xstrdup(cfg->token) : NULL;
    s->cfg.server = s->server;
    s->cfg.name = s->name;
    s->cfg.token = s->token;
    s->cfg.tls = NULL; /* the connection holds its own reference */
    s->standby = cfg->standby;
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    s->instance = xasprintf("%s-%s", s->name, host);
    if (s->cfg.max_inflight <= 0)
        s->cfg.max_inflight = 500;
    struct gcl_opts go = {.connect_timeout_ms = 3000,
                          .bearer_token = s->token,
                          .tls = cfg->tls,
                          .user_agent = "coracle-scheduler/" PACKAGE_VERSION};
    s->g = gcl_new(base, s->server, &go);
    if (!s->g) {
        free(s->server);
        free(s->name);
        free(s->token);
        free(s->instance);
        free(s);
        return NULL;
    }
    s->q = sched_queue_new(base, cfg->backoff_initial_ms, cfg->backoff_max_ms, kick, s);
    s->run_ev = evtimer_new(base, run_cb, s);
    s->node_map = smap_new();
    s->accts = smap_new();
    struct inf_handlers ph = {pod_add, pod_update, pod_delete, synced, s};
    struct inf_handlers nh = {node_add, node_add_or_update, node_delete, synced, s};
    struct inf_opts po = {.compact = true, .transform = pod_slim};
    s->pods = inf_new(base, s->g, &kind_pod, &po, &ph);
    s->nodes = inf_new(base, s->g, &kind_node, NULL, &nh);
    return s;
}

void sched_start(sched_t *s)
{
    inf_start(s->nodes);
    inf_start(s->pods);
}

void sched_lead(sched_t *s)
{
    if (!s->standby)
        return;
    s->standby = false;
    struct sched_queue_counts qc;
    sched_queue_counts(s->q, &qc);
    log_info("leading: scheduling %zu pending pods from the informers' caches", qc.active);
    kick(s);
}

void sched_free(sched_t *s)
{
    if (!s)
        return;
    obs_hist_free(&s->alg_hist);
    obs_hist_free(&s->e2e_hist);
    inf_free(s->pods);
    inf_free(s->nodes);
    gcl_free(s->g); /* in-flight calls end here (CANCELLED) */
    event_free(s->run_ev);
    sched_queue_free(s->q);
    smap_free(s->accts, acct_free);
    smap_free(s->node_map, node_free);
    free(s->arr);
    free(s->server);
    free(s->name);
    free(s->token);
    free(s->instance);
    free(s);
}

void sched_get_stats(const sched_t *s, struct sched_stats *st)
{
    *st = s->st;
    st->nodes = s->narr;
    st->pods_charged = smap_count(s->accts);
    struct sched_queue_counts qc;
    sched_queue_counts(s->q, &qc);
    st->q_active = qc.active;
    st->q_backoff = qc.backoff;
    st->q_unschedulable = qc.unsched;
    st->binds_inflight = qc.inflight;
    st->algorithm_seconds = &s->alg_hist;
    st->e2e_seconds = &s->e2e_hist;
}
