/*
 * sched-bench-load: load generator for coracle-scheduler. Registers hollow
 * nodes (Node objects, Ready, with Leases it keeps renewing; no kubelets),
 * then creates many pods at once (many Create calls in flight) and watches
 * them get bound. Reports pods bound per second and create-to-bind latency
 * (p50/p99/max, from the Create answer to the watch event that shows
 * spec.nodeName). Needs a running apiserver and scheduler
 * (contrib/bench/sched-bench starts both).
 */
#include "config.h"

#include "cfg.h"
#include "gcl.h"
#include "grpc.h"
#include "util.h"

#include "coracle.pb-c.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bench {
    struct event_base *base;
    gcl_t *g;
    long long nodes, pods, inflight_max;
    char *ns, *node_cpu, *node_mem, *pod_cpu, *pod_mem, *prefix;
    int inflight;
    long long next_node, nodes_done, next_pod, created, bound, errors;
    Coracle__V1__Lease **leases;
    int64_t *t_sent, *t_created, *t_bound;
    int64_t t0, t_first_bound, t_last_bound, t_created_all;
    char *watch_rv;
    struct event *renew, *timeout;
    int phase; /* 0 nodes, 1 watch setup, 2 pods, 3 done */
};

struct ctx {
    struct bench *b;
    long long i;
};

static void pump(struct bench *b);

static Coracle__V1__Quantity *qty(const char *s)
{
    Coracle__V1__Quantity *q = xmalloc(sizeof(*q));
    coracle__v1__quantity__init(q);
    q->string = xstrdup(s);
    return q;
}

static Coracle__V1__Node *mk_node(struct bench *b, long long i)
{
    Coracle__V1__Node *n = xmalloc(sizeof(*n));
    coracle__v1__node__init(n);
    n->metadata = xmalloc(sizeof(*n->metadata));
    coracle__v1__object_meta__init(n->metadata);
    n->metadata->name = xasprintf("%snode-%04lld", b->prefix, i);
    n->metadata->n_labels = 1;
    n->metadata->labels = xmalloc(sizeof(*n->metadata->labels));
    n->metadata->labels[0] = xmalloc(sizeof(**n->metadata->labels));
    coracle__v1__object_meta__labels_entry__init(n->metadata->labels[0]);
    n->metadata->labels[0]->key = xstrdup("kubernetes.io/hostname");
    n->metadata->labels[0]->value = xstrdup(n->metadata->name);
    n->status = xmalloc(sizeof(*n->status));
    coracle__v1__node_status__init(n->status);
    const char *k[] = {"cpu", "memory", "pods"}, *v[] = {b->node_cpu, b->node_mem, "110"};
    n->status->n_allocatable = n->status->n_capacity = 3;
    n->status->allocatable = xcalloc(3, sizeof(*n->status->allocatable));
    n->status->capacity = xcalloc(3, sizeof(*n->status->capacity));
    for (int j = 0; j < 3; j++) {
        n->status->allocatable[j] = xmalloc(sizeof(*n->status->allocatable[j]));
        coracle__v1__node_status__allocatable_entry__init(n->status->allocatable[j]);
        n->status->allocatable[j]->key = xstrdup(k[j]);
        n->status->allocatable[j]->value = qty(v[j]);
        n->status->capacity[j] = xmalloc(sizeof(*n->status->capacity[j]));
        coracle__v1__node_status__capacity_entry__init(n->status->capacity[j]);
        n->status->capacity[j]->key = xstrdup(k[j]);
        n->status->capacity[j]->value = qty(v[j]);
    }
    n->status->n_conditions = 1;
    n->status->conditions = xmalloc(sizeof(*n->status->conditions));
    n->status->conditions[0] = xmalloc(sizeof(**n->status->conditions));
    coracle__v1__node_condition__init(n->status->conditions[0]);
    n->status->conditions[0]->type = xstrdup("Ready");
    n->status->conditions[0]->status = xstrdup("True");
    n->status->conditions[0]->reason = xstrdup("KubeletReady");
    return n;
}

static void lease_stamp(Coracle__V1__Lease *l)
{
    int64_t now = now_ns();
    if (!l->spec->renewtime) {
        l->spec->renewtime = xmalloc(sizeof(*l->spec->renewtime));
        coracle__v1__micro_time__init(l->spec->renewtime);
    }
    l->spec->renewtime->has_seconds = l->spec->renewtime->has_nanos = 1;
    l->spec->renewtime->seconds = now / 1000000000;
    l->spec->renewtime->nanos = (int32_t)(now % 1000000000);
}

static Coracle__V1__Lease *mk_lease(struct bench *b, long long i)
{
    Coracle__V1__Lease *l = xmalloc(sizeof(*l));
    coracle__v1__lease__init(l);
    l->metadata = xmalloc(sizeof(*l->metadata));
    coracle__v1__object_meta__init(l->metadata);
    l->metadata->name = xasprintf("%snode-%04lld", b->prefix, i);
    l->metadata->namespace_ = xstrdup("kube-node-lease");
    l->spec = xmalloc(sizeof(*l->spec));
    coracle__v1__lease_spec__init(l->spec);
    l->spec->holderidentity = xstrdup(l->metadata->name);
    l->spec->has_leasedurationseconds = 1;
    l->spec->leasedurationseconds = 40;
    lease_stamp(l);
    return l;
}

static Coracle__V1__Pod *mk_pod(struct bench *b, long long i)
{
    Coracle__V1__Pod *p = xmalloc(sizeof(*p));
    coracle__v1__pod__init(p);
    p->metadata = xmalloc(sizeof(*p->metadata));
    coracle__v1__object_meta__init(p->metadata);
    p->metadata->name = xasprintf("%spod-%06lld", b->prefix, i);
    p->metadata->namespace_ = xstrdup(b->ns);
    p->spec = xmalloc(sizeof(*p->spec));
    coracle__v1__pod_spec__init(p->spec);
    p->spec->n_containers = 1;
    p->spec->containers = xmalloc(sizeof(*p->spec->containers));
    Coracle__V1__Container *c = xmalloc(sizeof(*c));
    p->spec->containers[0] = c;
    coracle__v1__container__init(c);
    c->name = xstrdup("c");
    c->image = xstrdup("registry.k8s.io/pause:3.9");
    c->resources = xmalloc(sizeof(*c->resources));
    coracle__v1__resource_requirements__init(c->resources);
    c->resources->n_requests = 2;
    c->resources->requests = xcalloc(2, sizeof(*c->resources->requests));
    const char *k[] = {"cpu", "memory"}, *v[] = {b->pod_cpu, b->pod_mem};
    for (int j = 0; j < 2; j++) {
        c->resources->requests[j] = xmalloc(sizeof(*c->resources->requests[j]));
        coracle__v1__resource_requirements__requests_entry__init(c->resources->requests[j]);
        c->resources->requests[j]->key = xstrdup(k[j]);
        c->resources->requests[j]->value = qty(v[j]);
    }
    return p;
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(struct bench *b)
{
    int64_t *lat = xcalloc((size_t)b->pods, sizeof(*lat));
    int64_t *lats = xcalloc((size_t)b->pods, sizeof(*lats));
    long long n = 0, ns = 0;
    for (long long i = 0; i < b->pods; i++) {
        if (b->t_bound[i] && b->t_created[i])
            lat[n++] = b->t_bound[i] > b->t_created[i] ? b->t_bound[i] - b->t_created[i] : 0;
        if (b->t_bound[i])
            lats[ns++] = b->t_bound[i] - b->t_sent[i];
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
    qsort(lats, (size_t)ns, sizeof(*lats), cmp_i64);
    double span = ms(b->t_last_bound - b->t0) / 1000.0;
    double bind_span = ms(b->t_last_bound - b->t_first_bound) / 1000.0;
    printf("nodes %lld, pods %lld, bound %lld, create errors %lld\n", b->nodes, b->pods, b->bound,
           b->errors);
    printf("created all in %.3f s (%.0f pods/s)\n", ms(b->t_created_all - b->t0) / 1000.0,
           b->t_created_all > b->t0 ? b->pods / (ms(b->t_created_all - b->t0) / 1000.0) : 0);
    printf("bound all in %.3f s from the first create: %.0f pods/s\n", span,
           span > 0 ? b->bound / span : 0);
    printf("first to last bind: %.3f s: %.0f pods/s\n", bind_span,
           bind_span > 0 ? b->bound / bind_span : 0);
    /* side by side: the same apiserver's Create rate is the ceiling for binds */
    double create_span = ms(b->t_created_all - b->t0) / 1000.0;
    if (create_span > 0 && span > 0)
        printf("bind rate / Create rate in this run: %.2f\n",
               (b->bound / span) / (b->pods / create_span));
    if (n)
        printf("create-to-bind latency (from the Create answer): p50 %.1f ms, p90 %.1f ms, "
               "p99 %.1f ms, max %.1f ms\n",
               ms(lat[n / 2]), ms(lat[n * 9 / 10]), ms(lat[n * 99 / 100]), ms(lat[n - 1]));
    if (ns)
        printf("send-to-bind latency (from sending the Create): p50 %.1f ms, p99 %.1f ms\n",
               ms(lats[ns / 2]), ms(lats[ns * 99 / 100]));
    fflush(stdout);
    free(lat);
    free(lats);
}

static void finish(struct bench *b)
{
    if (b->phase == 3)
        return;
    b->phase = 3;
    report(b);
    event_base_loopbreak(b->base);
}

/* ---- watch ---- */

static void watch_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct bench *b = arg;
    Coracle__V1__PodWatchEvent *ev = coracle__v1__pod_watch_event__unpack(NULL, len, msg);
    if (!ev)
        return;
    const Coracle__V1__Pod *p = ev->object;
    if (p && p->spec && p->spec->nodename && *p->spec->nodename && p->metadata &&
        p->metadata->name) {
        const char *name = p->metadata->name;
        size_t pl = strlen(b->prefix);
        long long i = -1;
        if (!strncmp(name, b->prefix, pl) && !strncmp(name + pl, "pod-", 4))
            i = atoll(name + pl + 4);
        if (i >= 0 && i < b->pods && !b->t_bound[i]) {
            int64_t now = mono_ns();
            b->t_bound[i] = now;
            if (!b->bound)
                b->t_first_bound = now;
            b->t_last_bound = now;
            if (++b->bound == b->pods)
                finish(b);
        }
    }
    coracle__v1__pod_watch_event__free_unpacked(ev, NULL);
}

static void watch_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct bench *b = arg;
    if (b->phase != 3) {
        fprintf(stderr, "sched-bench: pod watch ended: %s: %s\n", grpc_code_name(code), message);
        finish(b);
    }
}

static void list_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct bench *b = arg;
    Coracle__V1__PodList *l = coracle__v1__pod_list__unpack(NULL, len, msg);
    if (l && l->metadata && l->metadata->resourceversion)
        b->watch_rv = xstrdup(l->metadata->resourceversion);
    if (l)
        coracle__v1__pod_list__free_unpacked(l, NULL);
}

static void list_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct bench *b = arg;
    if (code != GRPC_OK || !b->watch_rv)
        fatal("list pods: %s: %s", grpc_code_name(code), message);
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = b->ns;
    req.resourceversion = b->watch_rv;
    gcl_call(b->g, "/coracle.v1.Pods/Watch", &req.base, watch_msg, watch_done, b, 0);
    b->phase = 2;
    b->t0 = mono_ns();
    pump(b);
}

/* ---- writes ---- */

static void lease_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct ctx *c = arg;
    Coracle__V1__Lease *l = coracle__v1__lease__unpack(NULL, len, msg);
    if (!l)
        return;
    if (c->b->leases[c->i])
        coracle__v1__lease__free_unpacked(c->b->leases[c->i], NULL);
    c->b->leases[c->i] = l;
}

static void write_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct ctx *c = arg;
    struct bench *b = c->b;
    b->inflight--;
    if (code != GRPC_OK && code != GRPC_ALREADY_EXISTS) {
        if (b->errors++ < 5)
            fprintf(stderr, "sched-bench: write failed: %s: %s\n", grpc_code_name(code), message);
    }
    free(c);
    pump(b);
}

static void pod_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct ctx *c = arg;
    struct bench *b = c->b;
    b->t_created[c->i] = mono_ns();
    if (++b->created == b->pods)
        b->t_created_all = mono_ns();
    write_done(call, code, message, arg);
}

static void node_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct ctx *c = arg;
    c->b->nodes_done++;
    write_done(call, code, message, arg);
}

static void bench_send(struct bench *b, const char *path, const ProtobufCMessage *m,
                       gcl_msg_fn on_msg, gcl_done_fn done, long long i)
{
    struct ctx *c = xmalloc(sizeof(*c));
    c->b = b;
    c->i = i;
    b->inflight++;
    gcl_call(b->g, path, m, on_msg, done, c, 60000);
}

static void pump(struct bench *b)
{
    if (b->phase == 0) {
        while (b->inflight < b->inflight_max && b->next_node < b->nodes) {
            long long i = b->next_node++;
            Coracle__V1__Node *n = mk_node(b, i);
            bench_send(b, "/coracle.v1.Nodes/Create", &n->base, NULL, node_done, i);
            coracle__v1__node__free_unpacked(n, NULL);
            Coracle__V1__Lease *l = mk_lease(b, i);
            bench_send(b, "/coracle.v1.Leases/Create", &l->base, lease_msg, write_done, i);
            coracle__v1__lease__free_unpacked(l, NULL);
        }
        if (b->nodes_done == b->nodes && b->inflight == 0) {
            fprintf(stderr, "sched-bench: %lld hollow nodes registered\n", b->nodes);
            b->phase = 1;
            Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
            req.namespace_ = b->ns;
            req.has_limit = 1;
            req.limit = 1;
            gcl_call(b->g, "/coracle.v1.Pods/List", &req.base, list_msg, list_done, b, 30000);
        }
        return;
    }
    if (b->phase != 2)
        return;
    while (b->inflight < b->inflight_max && b->next_pod < b->pods) {
        long long i = b->next_pod++;
        Coracle__V1__Pod *p = mk_pod(b, i);
        b->t_sent[i] = mono_ns();
        bench_send(b, "/coracle.v1.Pods/Create", &p->base, NULL, pod_done, i);
        coracle__v1__pod__free_unpacked(p, NULL);
    }
}

static void renew_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bench *b = arg;
    for (long long i = 0; i < b->nodes; i++) {
        Coracle__V1__Lease *l = b->leases[i];
        if (!l)
            continue;
        lease_stamp(l);
        bench_send(b, "/coracle.v1.Leases/Update", &l->base, lease_msg, write_done, i);
    }
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bench *b = arg;
    fprintf(stderr, "sched-bench: timed out with %lld of %lld pods bound\n", b->bound, b->pods);
    finish(b);
}

int main(int argc, char **argv)
{
    static struct bench b; /* static: cfg_set's copies stay reachable */
    static char *server = "127.0.0.1:6443";
    long long timeout_s = 300;
    b.nodes = 1000;
    b.pods = 10000;
    b.inflight_max = 500;
    b.ns = "bench";
    b.prefix = "";
    b.node_cpu = "32";
    b.node_mem = "128Gi";
    b.pod_cpu = "100m";
    b.pod_mem = "128Mi";
    const struct cfg_opt opts[] = {
        {"server", CFG_STR, &server, "ADDR", "apiserver (default 127.0.0.1:6443)"},
        {"nodes", CFG_INT, &b.nodes, "N", "hollow nodes to register (default 1000)"},
        {"pods", CFG_INT, &b.pods, "N", "pods to create at once (default 10000)"},
        {"inflight", CFG_INT, &b.inflight_max, "N", "Create calls in flight (default 500)"},
        {"namespace", CFG_STR, &b.ns, "NS", "namespace of the pods (default bench)"},
        {"prefix", CFG_STR, &b.prefix, "STR", "prefix of node and pod names (default none)"},
        {"node-cpu", CFG_STR, &b.node_cpu, "Q", "allocatable cpu per node (default 32)"},
        {"node-memory", CFG_STR, &b.node_mem, "Q", "allocatable memory per node (default 128Gi)"},
        {"pod-cpu", CFG_STR, &b.pod_cpu, "Q", "cpu request per pod (default 100m)"},
        {"pod-memory", CFG_STR, &b.pod_mem, "Q", "memory request per pod (default 128Mi)"},
        {"timeout", CFG_INT, &timeout_s, "SECONDS", "give up after (default 300)"},
    };
    const struct cfg_prog prog = {"sched-bench-load",
                                  "Hollow nodes + a burst of pods; measures scheduling.", NULL};
    cfg_main(argc, argv, opts, ARRAY_SIZE(opts), &prog);
    if (b.nodes <= 0 || b.pods <= 0 || b.inflight_max <= 0)
        fatal("--nodes, --pods and --inflight must be > 0");
    b.base = event_base_new();
    b.g = gcl_new(b.base, server, NULL);
    if (!b.g)
        fatal("bad --server %s", server);
    /* the pods' namespace must exist, as in Kubernetes */
    Coracle__V1__Namespace nsobj = CORACLE__V1__NAMESPACE__INIT;
    Coracle__V1__ObjectMeta nsmeta = CORACLE__V1__OBJECT_META__INIT;
    nsmeta.name = (char *)b.ns;
    nsobj.metadata = &nsmeta;
    ProtobufCMessage *nsresp = NULL;
    char *nserr = NULL;
    int nscode = gcl_unary_sync(b.g, "/coracle.v1.Namespaces/Create", &nsobj.base,
                                &coracle__v1__namespace__descriptor, &nsresp, &nserr);
    if (nscode != GRPC_OK && nscode != GRPC_ALREADY_EXISTS)
        fatal("create namespace %s: %s", b.ns, nserr ? nserr : "failed");
    if (nsresp)
        protobuf_c_message_free_unpacked(nsresp, NULL);
    free(nserr);
    b.leases = xcalloc((size_t)b.nodes, sizeof(*b.leases));
    b.t_sent = xcalloc((size_t)b.pods, sizeof(int64_t));
    b.t_created = xcalloc((size_t)b.pods, sizeof(int64_t));
    b.t_bound = xcalloc((size_t)b.pods, sizeof(int64_t));
    b.renew = event_new(b.base, -1, EV_PERSIST, renew_cb, &b);
    struct timeval ten = {10, 0}, to = {(time_t)timeout_s, 0};
    event_add(b.renew, &ten);
    b.timeout = evtimer_new(b.base, timeout_cb, &b);
    evtimer_add(b.timeout, &to);
    pump(&b);
    event_base_dispatch(b.base);
    event_free(b.renew);
    event_free(b.timeout);
    gcl_free(b.g);
    for (long long i = 0; i < b.nodes; i++)
        if (b.leases[i])
            coracle__v1__lease__free_unpacked(b.leases[i], NULL);
    free(b.leases);
    free(b.t_sent);
    free(b.t_created);
    free(b.t_bound);
    free(b.watch_rv);
    event_base_free(b.base);
    return b.bound == b.pods ? 0 : 1;
}
