/*
 * hollow-kubelet: one process simulating many nodes (kubemark's idea), a
 * client of the public API only, doing for each node what a kubelet does
 * to the control plane, without containers:
 *
 *  - registers the Node (the real kubelet's shape: the well-known labels,
 *    capacity and allocatable, the four conditions with Ready=True
 *    KubeletReady, addresses, nodeInfo);
 *  - renews the Lease kube-node-lease/<node> every 10 s (4 % jitter,
 *    leaseDurationSeconds 40), from its cached copy as the kubelet does;
 *  - every node-status-update-frequency (10 s) Gets its Node and posts the
 *    status when it changed or node-status-report-frequency has passed;
 *  - watches its pods with fieldSelector spec.nodeName=<node> (one informer
 *    per node, so the apiserver's hub sees one watcher per node, as with
 *    real kubelets);
 *  - takes each new pod through Kubernetes' transitions: Pending with its
 *    containers waiting in ContainerCreating, then after --start-delay-ms
 *    the events Pulled, Created and Started per container and the status
 *    Running (Ready, ContainersReady, containerStatuses running, podIP);
 *  - on a pod's deletionTimestamp: Killing per container, after
 *    --stop-delay-ms the containers terminated (exit 0, phase Succeeded,
 *    as the kubelet reports a deleted pod's terminal phase) and the
 *    grace-0 Delete with the pod's uid as precondition.
 *
 * The nodes are spread over --connections gcl connections. Every call's
 * latency is kept by operation (the client's own clock); SIGUSR1 prints
 * them as one JSON object on stdout and starts over (a phase's figures),
 * SIGTERM/SIGINT prints them and exits. "hollow-kubelet: ready" is printed
 * once every Node and Lease is created and every pod informer has listed.
 */
#include "config.h"

#include "arena.h"
#include "cfg.h"
#include "gcl.h"
#include "grpc.h"
#include "informer.h"
#include "kinds.h"
#include "pb.h"
#include "smap.h"
#include "util.h"

#include "coracle.pb-c.h"

#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS 1000000000LL
#define LEASE_NS "kube-node-lease"
#define LEASE_RENEW_S 10
#define LEASE_DURATION_S 40
#define CALL_TIMEOUT_MS 30000

/* The calls timed, by verb and resource. */
enum op {
    OP_NODE_CREATE,
    OP_NODE_GET,
    OP_NODE_STATUS,
    OP_LEASE_CREATE,
    OP_LEASE_GET,
    OP_LEASE_UPDATE,
    OP_POD_STATUS,
    OP_POD_DELETE,
    OP_EVENT_CREATE,
    NOPS
};

static const char *const op_names[NOPS] = {
    "create nodes",  "get nodes",          "update nodes/status", "create leases", "get leases",
    "update leases", "update pods/status", "delete pods",         "create events",
};

struct lat {
    int64_t *us; /* latencies in microseconds */
    size_t n, cap;
    long long errors;
};

struct hk {
    struct event_base *base;
    gcl_t **conns;
    long long nconns, nnodes, start_delay_ms, stop_delay_ms, status_update_s, status_report_s;
    int events, stagger;
    bool stopping;         /* tearing down: no new calls */
    int64_t last_event_ns; /* event names: strictly increasing times */
    char *prefix, *cpu, *memory, *max_pods;
    struct hnode *nodes;
    long long registered, leased, synced;
    bool ready;
    struct lat lat[NOPS];
    long long running, deleted; /* pods reported Running, Deletes answered */
    struct event *sig_usr1, *sig_term, *sig_int;
};

struct hnode {
    struct hk *hk;
    long long idx;
    char *name, ip[32];
    gcl_t *g;
    inf_t *inf;
    smap_t *pods;              /* "ns/name" -> struct hpod */
    Coracle__V1__Lease *lease; /* the server's copy, renewed from */
    Coracle__V1__Node *server; /* the last Get */
    struct event *lease_ev, *status_ev;
    bool registered, lease_busy, status_busy, synced_once;
    int64_t status_posted, ready_since;
    int next_ip;
};

enum pstate { P_NEW, P_STARTING, P_RUNNING, P_STOPPING, P_DELETING };

struct hpod {
    struct hnode *n;
    char *key, *ns, *name, *uid, ip[32];
    enum pstate state;
    struct event *timer;
    int64_t start_ns, running_ns;
    int refs;  /* calls in flight that point here */
    bool gone; /* out of the map; freed when refs drops to 0 */
};

/* One timed call: what to record and whom to tell. */
struct tcall {
    struct hk *hk;
    enum op op;
    int64_t t0;
    void (*done)(void *arg, int code, const char *msg);
    void *arg;
};

/* ------------------------------------------------------------------ timing */

static void lat_add(struct lat *l, int64_t us)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->us = xrealloc(l->us, l->cap * sizeof(*l->us));
    }
    l->us[l->n++] = us;
}

static void tcall_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct tcall *t = arg;
    struct lat *l = &t->hk->lat[t->op];
    if (code == GRPC_OK)
        lat_add(l, (mono_ns() - t->t0) / 1000);
    else
        l->errors++;
    if (t->done)
        t->done(t->arg, code, message);
    free(t);
}

/* gcl_call timed as op; done (may be NULL) runs after the latency is recorded. */
static void tcall(struct hk *hk, gcl_t *g, enum op op, const char *path, const ProtobufCMessage *m,
                  gcl_msg_fn on_msg, void (*done)(void *, int, const char *), void *arg)
{
    if (hk->stopping)
        return; /* the caller's references are dropped with everything else */
    struct tcall *t = xmalloc(sizeof(*t));
    *t = (struct tcall){hk, op, mono_ns(), done, arg};
    /* on_msg gets the tcall: the response handlers below take it */
    gcl_call(g, path, m, on_msg, tcall_done, t, CALL_TIMEOUT_MS);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints the latencies since the last report as one JSON line and starts over. */
static void stats_print(struct hk *hk)
{
    printf("{\"hollow\":{\"nodes\":%lld,\"running\":%lld,\"deleted\":%lld,\"ops\":{", hk->nnodes,
           hk->running, hk->deleted);
    bool first = true;
    for (int i = 0; i < NOPS; i++) {
        struct lat *l = &hk->lat[i];
        if (!l->n && !l->errors)
            continue;
        if (l->n) /* qsort of no array: undefined behaviour */
            qsort(l->us, l->n, sizeof(*l->us), cmp_i64);
        double p50 = l->n ? l->us[l->n / 2] / 1000.0 : 0;
        double p99 = l->n ? l->us[l->n * 99 / 100] / 1000.0 : 0;
        double max = l->n ? l->us[l->n - 1] / 1000.0 : 0;
        printf("%s\"%s\":{\"n\":%zu,\"errors\":%lld,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
               "\"max_ms\":%.3f}",
               first ? "" : ",", op_names[i], l->n, l->errors, p50, p99, max);
        first = false;
        l->n = 0;
        l->errors = 0;
    }
    printf("}}}\n");
    fflush(stdout);
}

/* ------------------------------------------------------------------ helpers */

static void timer_in_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* period plus up to 4 % (Kubernetes' wait.JitterUntil with factor 0.04) */
static int64_t jittered_ms(int64_t period_s)
{
    return period_s * 1000 + random() % (period_s * 40 + 1);
}

/*
 * The first period of a node that just registered: with --stagger, a random
 * point of it, as in a fleet whose kubelets did not all start in the same
 * second (the 4 % jitter alone keeps nodes started together in step for
 * minutes, every Lease renewed in one burst); without, a whole period.
 */
static int64_t first_ms(const struct hk *hk, int64_t period_s)
{
    return hk->stagger ? random() % (period_s * 1000) + 1 : jittered_ms(period_s);
}

static Coracle__V1__Time *mk_time(struct arena *a, int64_t ns)
{
    Coracle__V1__Time *t = arena_alloc(a, sizeof(*t));
    coracle__v1__time__init(t);
    t->has_seconds = 1;
    t->seconds = ns / NS;
    return t;
}

static Coracle__V1__Quantity *mk_qty(struct arena *a, const char *s)
{
    Coracle__V1__Quantity *q = arena_alloc(a, sizeof(*q));
    coracle__v1__quantity__init(q);
    q->string = arena_strdup(a, s);
    return q;
}

static void check_ready(struct hk *hk)
{
    if (hk->ready || hk->registered < hk->nnodes || hk->leased < hk->nnodes ||
        hk->synced < hk->nnodes)
        return;
    hk->ready = true;
    printf("hollow-kubelet: ready: %lld nodes registered, leased and watching their pods\n",
           hk->nnodes);
    fflush(stdout);
}

/* ------------------------------------------------------------------ the Node */

/* The Node as the kubelet registers and reports it, built in a. */
static Coracle__V1__Node *node_build(struct hnode *n, struct arena *a)
{
    struct hk *hk = n->hk;
    Coracle__V1__Node *node = arena_alloc(a, sizeof(*node));
    coracle__v1__node__init(node);
    Coracle__V1__ObjectMeta *m = node->metadata = arena_alloc(a, sizeof(*m));
    coracle__v1__object_meta__init(m);
    m->name = n->name;
    const char *labels[][2] = {
        {"beta.kubernetes.io/arch", "amd64"}, {"beta.kubernetes.io/os", "linux"},
        {"kubernetes.io/arch", "amd64"},      {"kubernetes.io/hostname", n->name},
        {"kubernetes.io/os", "linux"},
    };
    m->n_labels = ARRAY_SIZE(labels);
    m->labels = arena_alloc(a, m->n_labels * sizeof(*m->labels));
    for (size_t i = 0; i < m->n_labels; i++) {
        Coracle__V1__ObjectMeta__LabelsEntry *e = arena_alloc(a, sizeof(*e));
        coracle__v1__object_meta__labels_entry__init(e);
        e->key = (char *)labels[i][0];
        e->value = (char *)labels[i][1];
        m->labels[i] = e;
    }
    node->spec = arena_alloc(a, sizeof(*node->spec));
    coracle__v1__node_spec__init(node->spec);
    Coracle__V1__NodeStatus *st = node->status = arena_alloc(a, sizeof(*st));
    coracle__v1__node_status__init(st);
    const char *res[][2] = {{"cpu", hk->cpu},
                            {"ephemeral-storage", "102350Mi"},
                            {"hugepages-2Mi", "0"},
                            {"memory", hk->memory},
                            {"pods", hk->max_pods}};
    st->n_capacity = st->n_allocatable = ARRAY_SIZE(res);
    st->capacity = arena_alloc(a, ARRAY_SIZE(res) * sizeof(*st->capacity));
    st->allocatable = arena_alloc(a, ARRAY_SIZE(res) * sizeof(*st->allocatable));
    for (size_t i = 0; i < ARRAY_SIZE(res); i++) {
        Coracle__V1__NodeStatus__CapacityEntry *c = arena_alloc(a, sizeof(*c));
        coracle__v1__node_status__capacity_entry__init(c);
        c->key = (char *)res[i][0];
        c->value = mk_qty(a, res[i][1]);
        st->capacity[i] = c;
        Coracle__V1__NodeStatus__AllocatableEntry *e = arena_alloc(a, sizeof(*e));
        coracle__v1__node_status__allocatable_entry__init(e);
        e->key = (char *)res[i][0];
        e->value = c->value;
        st->allocatable[i] = e;
    }
    const char *conds[][4] = {
        {"MemoryPressure", "False", "KubeletHasSufficientMemory",
         "kubelet has sufficient memory available"},
        {"DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
        {"PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"},
        {"Ready", "True", "KubeletReady", "kubelet is posting ready status"},
    };
    int64_t now = now_ns();
    st->n_conditions = ARRAY_SIZE(conds);
    st->conditions = arena_alloc(a, ARRAY_SIZE(conds) * sizeof(*st->conditions));
    for (size_t i = 0; i < ARRAY_SIZE(conds); i++) {
        Coracle__V1__NodeCondition *c = arena_alloc(a, sizeof(*c));
        coracle__v1__node_condition__init(c);
        c->type = (char *)conds[i][0];
        c->status = (char *)conds[i][1];
        c->reason = (char *)conds[i][2];
        c->message = (char *)conds[i][3];
        c->lastheartbeattime = mk_time(a, now);
        c->lasttransitiontime = mk_time(a, n->ready_since);
        st->conditions[i] = c;
    }
    st->n_addresses = 2;
    st->addresses = arena_alloc(a, 2 * sizeof(*st->addresses));
    const char *addrs[][2] = {{"InternalIP", n->ip}, {"Hostname", n->name}};
    for (size_t i = 0; i < 2; i++) {
        Coracle__V1__NodeAddress *ad = arena_alloc(a, sizeof(*ad));
        coracle__v1__node_address__init(ad);
        ad->type = (char *)addrs[i][0];
        ad->address = (char *)addrs[i][1];
        st->addresses[i] = ad;
    }
    Coracle__V1__NodeSystemInfo *ni = st->nodeinfo = arena_alloc(a, sizeof(*ni));
    coracle__v1__node_system_info__init(ni);
    char *id = arena_alloc(a, 33);
    snprintf(id, 33, "%032llx", (unsigned long long)(0x4b0110e0000ULL + (uint64_t)n->idx));
    ni->machineid = id;
    ni->systemuuid = id;
    ni->bootid = id;
    ni->kernelversion = "6.1.0-hollow";
    ni->osimage = "Debian GNU/Linux 12 (bookworm)";
    ni->containerruntimeversion = "runc://1.1.5";
    ni->kubeletversion = "v" PACKAGE_VERSION;
    ni->kubeproxyversion = "";
    ni->operatingsystem = "linux";
    ni->architecture = "amd64";
    return node;
}

/* The status compared for a change: packed, heartbeat times left out. Caller frees. */
static uint8_t *status_key(Coracle__V1__NodeStatus *st, size_t *len)
{
    for (size_t i = 0; i < st->n_conditions; i++)
        if (st->conditions[i]->lastheartbeattime)
            st->conditions[i]->lastheartbeattime->seconds = 0;
    return pb_encode(&st->base, len);
}

static bool status_same(Coracle__V1__Node *server, Coracle__V1__Node *mine)
{
    if (!server || !server->status)
        return false;
    size_t la, lb;
    uint8_t *x = status_key(server->status, &la), *y = status_key(mine->status, &lb);
    bool same = la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

static void status_timer(evutil_socket_t fd, short what, void *arg);

static void node_status_done(void *arg, int code, const char *msg)
{
    struct hnode *n = arg;
    n->status_busy = false;
    if (code != GRPC_OK) {
        log_warn("node %s: UpdateStatus: %s", n->name, msg);
        n->status_posted = 0;
    }
}

static void node_got(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct hnode *n = ((struct tcall *)arg)->arg;
    if (n->server)
        coracle__v1__node__free_unpacked(n->server, NULL);
    n->server = coracle__v1__node__unpack(NULL, len, msg);
}

/* After the Get: UpdateStatus if the status changed or the report is due. */
static void node_get_done(void *arg, int code, const char *msg)
{
    struct hnode *n = arg;
    struct hk *hk = n->hk;
    struct arena a = {0};
    Coracle__V1__Node *node = node_build(n, &a);
    int64_t now = now_ns();
    bool due = !n->status_posted || now - n->status_posted >= hk->status_report_s * NS;
    if (code == GRPC_OK && !due && status_same(n->server, node)) {
        n->status_busy = false;
    } else {
        node = node_build(n, &a); /* status_same zeroed the heartbeats */
        n->status_posted = now;
        tcall(hk, n->g, OP_NODE_STATUS, "/coracle.v1.Nodes/UpdateStatus", &node->base, NULL,
              node_status_done, n);
    }
    arena_free(&a);
}

static void node_create_done(void *arg, int code, const char *msg)
{
    struct hnode *n = arg;
    n->status_busy = false;
    if (code == GRPC_OK || code == GRPC_ALREADY_EXISTS) {
        n->registered = true;
        n->status_posted = code == GRPC_OK ? now_ns() : 0;
        n->hk->registered++;
        check_ready(n->hk);
        timer_in_ms(n->status_ev, code == GRPC_OK ? first_ms(n->hk, n->hk->status_update_s) : 0);
        return;
    }
    log_warn("node %s: register: %s", n->name, msg);
    timer_in_ms(n->status_ev, 1000);
}

static void status_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hnode *n = arg;
    struct hk *hk = n->hk;
    if (!n->registered) {
        struct arena a = {0};
        Coracle__V1__Node *node = node_build(n, &a);
        n->status_busy = true;
        tcall(hk, n->g, OP_NODE_CREATE, "/coracle.v1.Nodes/Create", &node->base, NULL,
              node_create_done, n);
        arena_free(&a);
        return;
    }
    if (!n->status_busy) {
        Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
        req.name = n->name;
        n->status_busy = true;
        tcall(hk, n->g, OP_NODE_GET, "/coracle.v1.Nodes/Get", &req.base, node_got, node_get_done,
              n);
    }
    timer_in_ms(n->status_ev, jittered_ms(hk->status_update_s));
}

/* ------------------------------------------------------------------ the Lease */

static void lease_got(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct hnode *n = ((struct tcall *)arg)->arg;
    if (n->lease)
        coracle__v1__lease__free_unpacked(n->lease, NULL);
    n->lease = coracle__v1__lease__unpack(NULL, len, msg);
}

static void lease_done(void *arg, int code, const char *msg)
{
    struct hnode *n = arg;
    n->lease_busy = false;
    if (code == GRPC_OK) {
        if (!n->synced_once) {
            n->synced_once = true;
            n->hk->leased++;
            check_ready(n->hk);
            timer_in_ms(n->lease_ev, first_ms(n->hk, LEASE_RENEW_S));
            return;
        }
        timer_in_ms(n->lease_ev, jittered_ms(LEASE_RENEW_S));
        return;
    }
    log_warn("lease %s/%s: %s", LEASE_NS, n->name, msg);
    if (n->lease && code == GRPC_ABORTED) { /* conflict: renew from the server's copy */
        coracle__v1__lease__free_unpacked(n->lease, NULL);
        n->lease = NULL;
    }
    timer_in_ms(n->lease_ev, 1000);
}

static void lease_get_done(void *arg, int code, const char *msg);
static void lease_renew_done(void *arg, int code, const char *msg);

static void lease_renew(struct hnode *n)
{
    struct hk *hk = n->hk;
    if (n->lease_busy)
        return;
    int64_t now = now_ns();
    Coracle__V1__MicroTime rt = CORACLE__V1__MICRO_TIME__INIT;
    rt.has_seconds = rt.has_nanos = 1;
    rt.seconds = now / NS;
    rt.nanos = (int32_t)((now % NS) / 1000 * 1000);
    n->lease_busy = true;
    if (n->lease && n->lease->spec) {
        Coracle__V1__MicroTime *old = n->lease->spec->renewtime;
        n->lease->spec->renewtime = &rt;
        tcall(hk, n->g, OP_LEASE_UPDATE, "/coracle.v1.Leases/Update", &n->lease->base, lease_got,
              lease_done, n);
        n->lease->spec->renewtime = old;
        return;
    }
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.name = n->name;
    meta.namespace_ = LEASE_NS;
    Coracle__V1__LeaseSpec spec = CORACLE__V1__LEASE_SPEC__INIT;
    spec.holderidentity = n->name;
    spec.has_leasedurationseconds = 1;
    spec.leasedurationseconds = LEASE_DURATION_S;
    spec.renewtime = &rt;
    spec.acquiretime = &rt;
    Coracle__V1__Lease l = CORACLE__V1__LEASE__INIT;
    l.metadata = &meta;
    l.spec = &spec;
    tcall(hk, n->g, OP_LEASE_CREATE, "/coracle.v1.Leases/Create", &l.base, lease_got,
          lease_get_done, n);
}

/* After a Create: the Lease is taken over if it existed (a restart): Get it, then renew. */
static void lease_get_done(void *arg, int code, const char *msg)
{
    struct hnode *n = arg;
    if (code != GRPC_ALREADY_EXISTS) {
        lease_done(arg, code, msg);
        return;
    }
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.namespace_ = LEASE_NS;
    req.name = n->name;
    n->lease_busy = false;
    tcall(n->hk, n->g, OP_LEASE_GET, "/coracle.v1.Leases/Get", &req.base, lease_got,
          lease_renew_done, n);
}

static void lease_timer(evutil_socket_t fd, short what, void *arg)
{
    lease_renew(arg);
}

/* After the Get of an existing Lease: renew it at once. */
static void lease_renew_done(void *arg, int code, const char *msg)
{
    struct hnode *n = arg;
    if (code != GRPC_OK) {
        lease_done(arg, code, msg);
        return;
    }
    lease_renew(n);
}

/* ------------------------------------------------------------------ pods */

static void pod_unref(struct hpod *p)
{
    if (--p->refs > 0 || !p->gone)
        return;
    event_free(p->timer);
    free(p->key);
    free(p->ns);
    free(p->name);
    free(p->uid);
    free(p);
}

static void event_done(void *arg, int code, const char *msg)
{
    if (code != GRPC_OK)
        log_debug("event: %s", msg);
}

/* One event about p (container c's name, or NULL for the pod), fire and forget. */
static void pod_event(struct hpod *p, const char *ctr, const char *reason, const char *msg)
{
    struct hnode *n = p->n;
    if (!n->hk->events)
        return;
    int64_t now = now_ns();
    if (now <= n->hk->last_event_ns)
        now = n->hk->last_event_ns + 1;
    n->hk->last_event_ns = now;
    char name[512], field[300];
    snprintf(name, sizeof name, "%s.%016llx", p->name, (unsigned long long)now);
    snprintf(field, sizeof field, "spec.containers{%s}", ctr ? ctr : "");
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.name = name;
    meta.namespace_ = p->ns;
    Coracle__V1__ObjectReference ref = CORACLE__V1__OBJECT_REFERENCE__INIT;
    ref.kind = "Pod";
    ref.apiversion = "v1";
    ref.namespace_ = p->ns;
    ref.name = p->name;
    ref.uid = p->uid;
    ref.fieldpath = ctr ? field : NULL;
    Coracle__V1__EventSource src = CORACLE__V1__EVENT_SOURCE__INIT;
    src.component = "kubelet";
    src.host = n->name;
    Coracle__V1__Time ts = CORACLE__V1__TIME__INIT;
    ts.has_seconds = ts.has_nanos = 1;
    ts.seconds = now / NS;
    ts.nanos = (int32_t)(now % NS);
    Coracle__V1__Event ev = CORACLE__V1__EVENT__INIT;
    ev.metadata = &meta;
    ev.involvedobject = &ref;
    ev.reason = (char *)reason;
    ev.message = (char *)msg;
    ev.source = &src;
    ev.firsttimestamp = ev.lasttimestamp = &ts;
    ev.has_count = 1;
    ev.count = 1;
    ev.type = "Normal";
    ev.reportingcomponent = "kubelet";
    ev.reportinginstance = n->name;
    tcall(n->hk, n->g, OP_EVENT_CREATE, "/coracle.v1.Events/Create", &ev.base, NULL, event_done,
          NULL);
}

static const Coracle__V1__Pod *pod_cached(struct hpod *p)
{
    return (const Coracle__V1__Pod *)inf_get(p->n->inf, p->ns, p->name);
}

static Coracle__V1__PodCondition *mk_cond(struct arena *a, const char *type, bool ok,
                                          const char *reason, const char *msg, int64_t since)
{
    Coracle__V1__PodCondition *c = arena_alloc(a, sizeof(*c));
    coracle__v1__pod_condition__init(c);
    c->type = (char *)type;
    c->status = ok ? "True" : "False";
    c->reason = ok ? NULL : (char *)reason;
    c->message = ok ? NULL : (char *)msg;
    c->lasttransitiontime = mk_time(a, since);
    return c;
}

/* "containers with unready status: [a b]" over the pod's containers, in a. */
static char *unready_msg(struct arena *a, const Coracle__V1__PodSpec *s)
{
    size_t len = 64;
    for (size_t i = 0; i < s->n_containers; i++)
        len += strlen(s->containers[i]->name ? s->containers[i]->name : "") + 1;
    char *m = arena_alloc(a, len);
    strcpy(m, "containers with unready status: [");
    for (size_t i = 0; i < s->n_containers; i++) {
        if (i)
            strcat(m, " ");
        strcat(m, s->containers[i]->name ? s->containers[i]->name : "");
    }
    strcat(m, "]");
    return m;
}

/* The pod's status in state p->state (P_STARTING, P_RUNNING or P_STOPPING), built in a. */
static Coracle__V1__PodStatus *pod_status(struct hpod *p, const Coracle__V1__Pod *pod,
                                          struct arena *a)
{
    const Coracle__V1__PodSpec *s = pod->spec;
    bool running = p->state == P_RUNNING, stopped = p->state == P_STOPPING;
    int64_t now = now_ns();
    Coracle__V1__PodStatus *st = arena_alloc(a, sizeof(*st));
    coracle__v1__pod_status__init(st);
    st->phase = running ? "Running" : stopped ? "Succeeded" : "Pending";
    st->hostip = p->n->ip;
    st->n_hostips = 1;
    st->hostips = arena_alloc(a, sizeof(*st->hostips));
    st->hostips[0] = arena_alloc(a, sizeof(**st->hostips));
    coracle__v1__host_ip__init(st->hostips[0]);
    st->hostips[0]->ip = p->n->ip;
    if (running || stopped) {
        st->podip = p->ip;
        st->n_podips = 1;
        st->podips = arena_alloc(a, sizeof(*st->podips));
        st->podips[0] = arena_alloc(a, sizeof(**st->podips));
        coracle__v1__pod_ip__init(st->podips[0]);
        st->podips[0]->ip = p->ip;
    }
    st->starttime = mk_time(a, p->start_ns);
    st->qosclass = "Burstable";
    const char *why = stopped ? "PodCompleted" : "ContainersNotReady";
    char *msg = stopped ? NULL : unready_msg(a, s);
    int64_t since = running ? p->running_ns : stopped ? now : p->start_ns;
    st->n_conditions = 4;
    st->conditions = arena_alloc(a, 4 * sizeof(*st->conditions));
    st->conditions[0] = mk_cond(a, "Initialized", true, NULL, NULL, p->start_ns);
    st->conditions[1] = mk_cond(a, "Ready", running, why, msg, since);
    st->conditions[2] = mk_cond(a, "ContainersReady", running, why, msg, since);
    st->conditions[3] = mk_cond(a, "PodScheduled", true, NULL, NULL, p->start_ns);
    st->n_containerstatuses = s->n_containers;
    st->containerstatuses = arena_alloc(a, (s->n_containers + 1) * sizeof(void *));
    for (size_t i = 0; i < s->n_containers; i++) {
        const Coracle__V1__Container *c = s->containers[i];
        Coracle__V1__ContainerStatus *cs = arena_alloc(a, sizeof(*cs));
        coracle__v1__container_status__init(cs);
        cs->name = c->name;
        cs->image = c->image;
        cs->imageid = "";
        cs->has_restartcount = cs->has_ready = cs->has_started = 1;
        cs->ready = cs->started = running;
        cs->state = arena_alloc(a, sizeof(*cs->state));
        coracle__v1__container_state__init(cs->state);
        char *id = arena_alloc(a, 80);
        snprintf(id, 80, "runc://%.16s%04zx", p->uid ? p->uid : "", i);
        if (running) {
            cs->state->running = arena_alloc(a, sizeof(*cs->state->running));
            coracle__v1__container_state_running__init(cs->state->running);
            cs->state->running->startedat = mk_time(a, p->running_ns);
            cs->containerid = id;
        } else if (stopped) {
            Coracle__V1__ContainerStateTerminated *t = arena_alloc(a, sizeof(*t));
            coracle__v1__container_state_terminated__init(t);
            t->has_exitcode = 1;
            t->reason = "Completed";
            t->startedat = mk_time(a, p->running_ns ? p->running_ns : p->start_ns);
            t->finishedat = mk_time(a, now);
            t->containerid = id;
            cs->state->terminated = t;
            cs->containerid = id;
        } else {
            cs->state->waiting = arena_alloc(a, sizeof(*cs->state->waiting));
            coracle__v1__container_state_waiting__init(cs->state->waiting);
            cs->state->waiting->reason = "ContainerCreating";
        }
        st->containerstatuses[i] = cs;
    }
    return st;
}

static void pod_delete_done(void *arg, int code, const char *msg)
{
    struct hpod *p = arg;
    if (code == GRPC_OK || code == GRPC_NOT_FOUND)
        p->n->hk->deleted++;
    else
        log_warn("pod %s: Delete: %s", p->key, msg);
    pod_unref(p);
}

static void pod_status_done(void *arg, int code, const char *msg)
{
    struct hpod *p = arg;
    if (code != GRPC_OK && code != GRPC_NOT_FOUND) {
        log_warn("pod %s: UpdateStatus: %s", p->key, msg);
        if (!p->gone && p->state != P_STARTING) /* Running or stopped: post it again */
            timer_in_ms(p->timer, 1000);
    }
    if (code == GRPC_OK && p->state == P_STOPPING && !p->gone) {
        /* stopped and cleaned up: the grace-0 Delete removes the object */
        p->state = P_DELETING;
        Coracle__V1__Preconditions pre = CORACLE__V1__PRECONDITIONS__INIT;
        pre.uid = p->uid;
        Coracle__V1__DeleteRequest req = CORACLE__V1__DELETE_REQUEST__INIT;
        req.namespace_ = p->ns;
        req.name = p->name;
        req.has_graceperiodseconds = 1;
        req.graceperiodseconds = 0;
        req.preconditions = &pre;
        p->refs++;
        tcall(p->n->hk, p->n->g, OP_POD_DELETE, "/coracle.v1.Pods/Delete", &req.base, NULL,
              pod_delete_done, p);
    }
    pod_unref(p);
}

/* Posts p's status for its current state. */
static void pod_status_send(struct hpod *p)
{
    const Coracle__V1__Pod *pod = pod_cached(p);
    if (!pod || !pod->spec)
        return;
    struct arena a = {0};
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.name = p->name;
    meta.namespace_ = p->ns;
    meta.uid = p->uid;
    Coracle__V1__Pod up = CORACLE__V1__POD__INIT;
    up.metadata = &meta;
    up.status = pod_status(p, pod, &a);
    p->refs++;
    tcall(p->n->hk, p->n->g, OP_POD_STATUS, "/coracle.v1.Pods/UpdateStatus", &up.base, NULL,
          pod_status_done, p);
    arena_free(&a);
}

static void pod_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hpod *p = arg;
    const Coracle__V1__Pod *pod = pod_cached(p);
    if (!pod || !pod->spec)
        return;
    if (p->state == P_STARTING) {
        for (size_t i = 0; i < pod->spec->n_containers; i++) {
            const Coracle__V1__Container *c = pod->spec->containers[i];
            char msg[600];
            snprintf(msg, sizeof msg, "Container image \"%s\" already present on machine",
                     c->image ? c->image : "");
            pod_event(p, c->name, "Pulled", msg);
            snprintf(msg, sizeof msg, "Created container %s", c->name);
            pod_event(p, c->name, "Created", msg);
            snprintf(msg, sizeof msg, "Started container %s", c->name);
            pod_event(p, c->name, "Started", msg);
        }
        p->state = P_RUNNING;
        p->running_ns = now_ns();
        p->n->hk->running++;
    }
    if (p->state == P_RUNNING || p->state == P_STOPPING)
        pod_status_send(p);
}

/* The deletionTimestamp is set: stop the containers, then report and delete. */
static void pod_terminate(struct hpod *p, const Coracle__V1__Pod *pod)
{
    if (p->state >= P_STOPPING)
        return;
    evtimer_del(p->timer);
    for (size_t i = 0; i < pod->spec->n_containers; i++) {
        char msg[300];
        snprintf(msg, sizeof msg, "Stopping container %s", pod->spec->containers[i]->name);
        pod_event(p, pod->spec->containers[i]->name, "Killing", msg);
    }
    p->state = P_STOPPING;
    timer_in_ms(p->timer, p->n->hk->stop_delay_ms);
}

static void pod_seen(struct hnode *n, const Coracle__V1__Pod *pod)
{
    const Coracle__V1__ObjectMeta *m = pod->metadata;
    if (!m || !m->name || !pod->spec)
        return;
    char *key = inf_key_of(&pod->base);
    struct hpod *p = smap_get(n->pods, key);
    if (!p) {
        const char *phase = pod->status ? pod->status->phase : NULL;
        if (phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))) {
            free(key);
            return;
        }
        p = xcalloc(1, sizeof(*p));
        p->n = n;
        p->key = key;
        p->ns = xstrdup(m->namespace_ ? m->namespace_ : "default");
        p->name = xstrdup(m->name);
        p->uid = xstrdup(m->uid ? m->uid : "");
        p->refs = 1; /* the map's */
        p->timer = evtimer_new(n->hk->base, pod_timer, p);
        int slot = 2 + n->next_ip++ % 250;
        snprintf(p->ip, sizeof p->ip, "10.%lld.%lld.%d", 128 + n->idx / 256, n->idx % 256, slot);
        smap_put(n->pods, key, p);
        key = NULL;
    }
    free(key);
    if (m->deletiontimestamp) {
        pod_terminate(p, pod);
        return;
    }
    if (p->state == P_NEW) {
        p->state = P_STARTING;
        p->start_ns = now_ns();
        pod_status_send(p);
        timer_in_ms(p->timer, n->hk->start_delay_ms);
    }
}

static void on_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    pod_seen(arg, (const Coracle__V1__Pod *)obj);
}

static void on_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    pod_seen(arg, (const Coracle__V1__Pod *)obj);
}

static void on_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct hnode *n = arg;
    char *key = inf_key_of(obj);
    struct hpod *p = smap_del(n->pods, key);
    free(key);
    if (!p)
        return;
    evtimer_del(p->timer);
    p->gone = true;
    pod_unref(p);
}

static void on_synced(inf_t *inf, void *arg)
{
    struct hnode *n = arg;
    n->hk->synced++;
    check_ready(n->hk);
}

/* ------------------------------------------------------------------ main */

static void node_start(struct hk *hk, struct hnode *n, long long i)
{
    n->hk = hk;
    n->idx = i;
    n->name = xasprintf("%s%05lld", hk->prefix, i);
    snprintf(n->ip, sizeof n->ip, "10.%lld.%lld.%lld", 64 + i / 65536, (i / 256) % 256, i % 256);
    n->g = hk->conns[i % hk->nconns];
    n->pods = smap_new();
    n->ready_since = now_ns();
    n->status_ev = evtimer_new(hk->base, status_timer, n);
    n->lease_ev = evtimer_new(hk->base, lease_timer, n);
    /* the node registers before its informer and Lease, as a kubelet starting */
    timer_in_ms(n->status_ev, 0);
    timer_in_ms(n->lease_ev, 0);
    char *sel = xasprintf("spec.nodeName=%s", n->name);
    struct inf_opts o = {.field_selector = sel};
    struct inf_handlers h = {
        .on_add = on_add,
        .on_update = on_update,
        .on_delete = on_delete,
        .on_synced = on_synced,
        .arg = n,
    };
    n->inf = inf_new(hk->base, n->g, &kind_pod, &o, &h);
    free(sel);
    inf_start(n->inf);
}

static void sig_cb(evutil_socket_t sig, short what, void *arg)
{
    struct hk *hk = arg;
    stats_print(hk);
    if (sig != SIGUSR1)
        event_base_loopbreak(hk->base);
}

static int free_pod(const char *key, void *val, void *arg)
{
    struct hpod *p = val;
    p->gone = true;
    p->refs = 1;
    pod_unref(p);
    return 0;
}

int main(int argc, char **argv)
{
    static struct hk hk; /* static: cfg_set's copies stay reachable */
    static char *server = "127.0.0.1:6443";
    static char *log_level = "warn";
    hk.nnodes = 100;
    hk.nconns = 4;
    hk.start_delay_ms = 200;
    hk.stop_delay_ms = 100;
    hk.status_update_s = 10;
    hk.status_report_s = 300;
    hk.events = 1;
    hk.stagger = 1;
    hk.prefix = "hollow-node-";
    hk.cpu = "4";
    hk.memory = "16331256Ki";
    hk.max_pods = "110";
    const struct cfg_opt opts[] = {
        {"server", CFG_STR, &server, "ADDR", "apiserver (default 127.0.0.1:6443)"},
        {"nodes", CFG_INT, &hk.nnodes, "N", "nodes to simulate (default 100)"},
        {"connections", CFG_INT, &hk.nconns, "N",
         "gRPC connections the nodes are spread over (default 4)"},
        {"prefix", CFG_STR, &hk.prefix, "STR", "node names: STR00000... (default hollow-node-)"},
        {"start-delay-ms", CFG_INT, &hk.start_delay_ms, "MS",
         "fake container start: Pending to Running (default 200)"},
        {"stop-delay-ms", CFG_INT, &hk.stop_delay_ms, "MS",
         "fake container stop: deletion to the final Delete (default 100)"},
        {"node-status-update-frequency", CFG_INT, &hk.status_update_s, "S",
         "how often each node computes its status (default 10)"},
        {"node-status-report-frequency", CFG_INT, &hk.status_report_s, "S",
         "how often an unchanged status is posted anyway (default 300)"},
        {"events", CFG_BOOL, &hk.events, "BOOL", "post the pods' events (default true)"},
        {"stagger", CFG_BOOL, &hk.stagger, "BOOL",
         "first Lease renewal and status check at a random point of their period, not in "
         "step (default true)"},
        {"node-cpu", CFG_STR, &hk.cpu, "Q", "capacity cpu (default 4)"},
        {"node-memory", CFG_STR, &hk.memory, "Q", "capacity memory (default 16331256Ki)"},
        {"max-pods", CFG_STR, &hk.max_pods, "N", "capacity pods (default 110)"},
        {"log-level", CFG_STR, &log_level, "LEVEL", "debug, info, warn, error (default warn)"},
    };
    const struct cfg_prog prog = {"hollow-kubelet",
                                  "Simulates many kubelets' traffic to the control plane.", NULL};
    cfg_main(argc, argv, opts, ARRAY_SIZE(opts), &prog);
    if (hk.nnodes <= 0 || hk.nconns <= 0 || hk.status_update_s <= 0 || hk.status_report_s <= 0)
        fatal("--nodes, --connections and the frequencies must be > 0");
    log_init("hollow-kubelet");
    int lvl = log_level_parse(log_level);
    if (lvl < 0)
        fatal("--log-level: unknown level %s", log_level);
    log_set_level((enum log_level)lvl);
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)now_ns());
    hk.base = event_base_new();
    hk.conns = xcalloc((size_t)hk.nconns, sizeof(*hk.conns));
    for (long long i = 0; i < hk.nconns; i++) {
        struct gcl_opts go = {.user_agent = "kubelet/hollow"};
        hk.conns[i] = gcl_new(hk.base, server, &go);
        if (!hk.conns[i])
            fatal("bad --server %s", server);
    }
    hk.sig_usr1 = evsignal_new(hk.base, SIGUSR1, sig_cb, &hk);
    hk.sig_term = evsignal_new(hk.base, SIGTERM, sig_cb, &hk);
    hk.sig_int = evsignal_new(hk.base, SIGINT, sig_cb, &hk);
    event_add(hk.sig_usr1, NULL);
    event_add(hk.sig_term, NULL);
    event_add(hk.sig_int, NULL);
    hk.nodes = xcalloc((size_t)hk.nnodes, sizeof(*hk.nodes));
    for (long long i = 0; i < hk.nnodes; i++)
        node_start(&hk, &hk.nodes[i], i);
    event_base_dispatch(hk.base);

    /* the informers, then the connections (their calls end with CANCELLED and start
     * nothing new), then what the calls pointed to */
    hk.stopping = true;
    for (long long i = 0; i < hk.nnodes; i++)
        inf_free(hk.nodes[i].inf);
    for (long long i = 0; i < hk.nconns; i++)
        gcl_free(hk.conns[i]);
    for (long long i = 0; i < hk.nnodes; i++) {
        struct hnode *n = &hk.nodes[i];
        smap_each(n->pods, free_pod, NULL);
        smap_free(n->pods, NULL);
        event_free(n->status_ev);
        event_free(n->lease_ev);
        if (n->lease)
            coracle__v1__lease__free_unpacked(n->lease, NULL);
        if (n->server)
            coracle__v1__node__free_unpacked(n->server, NULL);
        free(n->name);
    }
    for (int i = 0; i < NOPS; i++)
        free(hk.lat[i].us);
    event_free(hk.sig_usr1);
    event_free(hk.sig_term);
    event_free(hk.sig_int);
    free(hk.nodes);
    free(hk.conns);
    event_base_free(hk.base);
    return 0;
}
