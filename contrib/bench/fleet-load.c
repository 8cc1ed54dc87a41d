/*
 * fleet-load: one phase of the fleet benchmark (contrib/bench/fleet), in
 * ClusterLoader2's density shape, against an apiserver whose nodes are
 * hollow kubelets (contrib/bench/hollow-kubelet) and a scheduler:
 *
 *   --phase create  creates --pods pods (fleet-<start>...) at --rate a
 *                   second (0: as fast as --inflight calls in flight allow)
 *                   and waits for each to be Running;
 *   --phase churn   for --seconds, deletes one pod and creates one pod
 *                   --rate times a second; waits for the new ones to run
 *                   and the old ones to be gone;
 *   --phase delete  deletes every pod of the namespace at --rate (0: as
 *                   fast as it goes) and waits until they are gone.
 *
 * Meanwhile it reads as clients do: --gets single-pod Gets a second and a
 * full paged List of every pod (all namespaces, pages of 500, as kubectl)
 * every --list-every seconds. A watch on the namespace, opened before the
 * first write, observes the pods: startup latency is the Create sent to
 * the watch event showing phase Running with the pod Ready (one process,
 * one clock), the scheduler's throughput the binds seen per second.
 * Prints one JSON object (the phase's figures, from this client's clock)
 * on stdout; exits 1 if a pod did not get there before --timeout.
 */
#include "config.h"

#include "cfg.h"
#include "gcl.h"
#include "grpc.h"
#include "util.h"

#include "coracle.pb-c.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { L_CREATE, L_DELETE, L_GET, L_LIST, L_STARTUP, L_GONE, NL };
static const char *const l_names[NL] = {"create", "delete",  "get",
                                        "list",   "startup", "delete_to_gone"};

struct lat {
    int64_t *us;
    size_t n, cap;
    long long errors;
};

#define MAXPODS 1000000

struct pod {
    int64_t t_sent, t_bound, t_running, t_del, t_gone;
    bool exists, mine_create, mine_delete;
};

struct load {
    struct event_base *base;
    gcl_t *g;
    char *ns, *phase, *image;
    long long npods, start, rate, inflight_max, seconds, gets, list_every, timeout;
    int inflight;
    struct pod *p; /* by index: fleet-<index> */
    long long hi;  /* indexes below are tracked */
    long long want_create, issued_create, want_delete, issued_delete;
    long long *victims; /* pods to delete, in order */
    long long nvictims;
    long long running_mine, gone_mine, bound, creates_left, deletes_left;
    int64_t t0, t_issued, t_first_bound, t_last_bound, t_end;
    int64_t t_last_answer; /* the last write answered */
    bool listing, done, watching;
    char *rv;
    struct lat lat[NL];
    struct event *tick, *get_ev, *list_ev, *to_ev;
    int64_t list_t0;
    char *list_cont; /* the next page's continue token */
    long long list_items;
};

static void lat_add(struct lat *l, int64_t ns)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->us = xrealloc(l->us, l->cap * sizeof(*l->us));
    }
    l->us[l->n++] = ns / 1000;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static long long pod_index(const char *name)
{
    if (!name || strncmp(name, "fleet-", 6))
        return -1;
    char *end;
    long long i = strtoll(name + 6, &end, 10);
    return *end || i < 0 || i >= MAXPODS ? -1 : i;
}

static void grow(struct load *L, long long i)
{
    if (i < L->hi)
        return;
    long long n = L->hi ? L->hi : 1024;
    while (n <= i)
        n *= 2;
    L->p = xrealloc(L->p, (size_t)n * sizeof(*L->p));
    memset(L->p + L->hi, 0, (size_t)(n - L->hi) * sizeof(*L->p));
    L->hi = n;
}

static void report(struct load *L)
{
    double span = (double)(L->t_end - L->t0) / 1e9;
    double issue = (double)((L->t_issued ? L->t_issued : L->t_end) - L->t0) / 1e9;
    /* writes a second: from the first sent to the last answered */
    double wspan = (double)((L->t_last_answer ? L->t_last_answer : L->t_end) - L->t0) / 1e9;
    double bspan = (double)(L->t_last_bound - L->t_first_bound) / 1e9;
    printf("{\"phase\":\"%s\",\"rate\":%lld,\"creates\":%lld,\"deletes\":%lld,"
           "\"seconds\":%.3f,\"issue_seconds\":%.3f,\"ops_per_s\":%.1f,\"bound\":%lld,"
           "\"binds_per_s\":%.1f,\"running\":%lld,\"gone\":%lld,\"last_list_items\":%lld",
           L->phase, L->rate, L->issued_create, L->issued_delete, span, issue,
           wspan > 0 ? (L->issued_create + L->issued_delete) / wspan : 0, L->bound,
           bspan > 0 ? (L->bound - 1) / bspan : 0, L->running_mine, L->gone_mine, L->list_items);
    for (int i = 0; i < NL; i++) {
        struct lat *l = &L->lat[i];
        if (l->n) /* qsort of no array: undefined behaviour */
            qsort(l->us, l->n, sizeof(*l->us), cmp_i64);
        printf(",\"%s\":{\"n\":%zu,\"errors\":%lld,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"max_ms\":%.3f}",
               l_names[i], l->n, l->errors, l->n ? l->us[l->n / 2] / 1000.0 : 0,
               l->n ? l->us[l->n * 9 / 10] / 1000.0 : 0, l->n ? l->us[l->n * 99 / 100] / 1000.0 : 0,
               l->n ? l->us[l->n - 1] / 1000.0 : 0);
    }
    printf("}\n");
    fflush(stdout);
}

static void check_done(struct load *L)
{
    if (L->done || L->issued_create < L->want_create || L->issued_delete < L->want_delete ||
        L->creates_left > 0 || L->deletes_left > 0 || L->inflight > 0)
        return;
    L->done = true;
    L->t_end = mono_ns();
    event_base_loopbreak(L->base);
}

/* ---- the watch ---- */

static bool pod_ready(const Coracle__V1__Pod *p)
{
    if (!p->status || !p->status->phase || strcmp(p->status->phase, "Running"))
        return false;
    for (size_t i = 0; i < p->status->n_conditions; i++) {
        const Coracle__V1__PodCondition *c = p->status->conditions[i];
        if (c->type && !strcmp(c->type, "Ready"))
            return c->status && !strcmp(c->status, "True");
    }
    return false;
}

static void watch_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct load *L = arg;
    Coracle__V1__PodWatchEvent *ev = coracle__v1__pod_watch_event__unpack(NULL, len, msg);
    if (!ev)
        return;
    const Coracle__V1__Pod *p = ev->object;
    long long i = p && p->metadata ? pod_index(p->metadata->name) : -1;
    int64_t now = mono_ns();
    if (i >= 0 && ev->type && strcmp(ev->type, "BOOKMARK")) {
        grow(L, i);
        struct pod *x = &L->p[i];
        if (!strcmp(ev->type, "DELETED")) {
            x->exists = false;
            if (x->mine_delete && !x->t_gone) {
                x->t_gone = now;
                if (x->t_del)
                    lat_add(&L->lat[L_GONE], now - x->t_del);
                L->gone_mine++;
                L->deletes_left--;
            }
        } else {
            x->exists = true;
            if (p->spec && p->spec->nodename && *p->spec->nodename && !x->t_bound &&
                x->mine_create) {
                x->t_bound = now;
                if (!L->bound++)
                    L->t_first_bound = now;
                L->t_last_bound = now;
            }
            if (x->mine_create && !x->t_running && pod_ready(p)) {
                x->t_running = now;
                lat_add(&L->lat[L_STARTUP], now - x->t_sent);
                L->running_mine++;
                L->creates_left--;
            }
        }
    }
    coracle__v1__pod_watch_event__free_unpacked(ev, NULL);
    check_done(L);
}

static void watch_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct load *L = arg;
    if (!L->done)
        fatal("the pod watch ended: %s: %s", grpc_code_name(code), message);
}

/* ---- writes ---- */

struct ctx {
    struct load *L;
    long long i;
    int64_t t0;
};

static void pump(struct load *L);

static void create_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct ctx *c = arg;
    struct load *L = c->L;
    L->inflight--;
    L->t_last_answer = mono_ns();
    if (code == GRPC_OK) {
        lat_add(&L->lat[L_CREATE], mono_ns() - c->t0);
    } else {
        if (L->lat[L_CREATE].errors++ < 5)
            fprintf(stderr, "fleet-load: create: %s: %s\n", grpc_code_name(code), message);
        if (!L->p[c->i].t_running) /* never coming */
            L->creates_left--;
    }
    free(c);
    pump(L);
    check_done(L);
}

static void delete_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct ctx *c = arg;
    struct load *L = c->L;
    L->inflight--;
    L->t_last_answer = mono_ns();
    if (code == GRPC_OK || code == GRPC_NOT_FOUND) {
        lat_add(&L->lat[L_DELETE], mono_ns() - c->t0);
    } else {
        if (L->lat[L_DELETE].errors++ < 5)
            fprintf(stderr, "fleet-load: delete: %s: %s\n", grpc_code_name(code), message);
        if (!L->p[c->i].t_gone)
            L->deletes_left--;
    }
    free(c);
    pump(L);
    check_done(L);
}

static void send_create(struct load *L)
{
    long long i = L->start + L->issued_create++;
    grow(L, i);
    struct pod *x = &L->p[i];
    x->mine_create = true;
    x->t_sent = mono_ns();
    char name[32];
    snprintf(name, sizeof name, "fleet-%06lld", i);
    Coracle__V1__ObjectMeta__LabelsEntry le = CORACLE__V1__OBJECT_META__LABELS_ENTRY__INIT;
    le.key = "app";
    le.value = "fleet";
    Coracle__V1__ObjectMeta__LabelsEntry *lep = &le;
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.name = name;
    meta.namespace_ = L->ns;
    meta.n_labels = 1;
    meta.labels = &lep;
    Coracle__V1__Quantity cpu = CORACLE__V1__QUANTITY__INIT, mem = CORACLE__V1__QUANTITY__INIT;
    cpu.string = "10m";
    mem.string = "16Mi";
    Coracle__V1__ResourceRequirements__RequestsEntry rq[2] = {
        CORACLE__V1__RESOURCE_REQUIREMENTS__REQUESTS_ENTRY__INIT,
        CORACLE__V1__RESOURCE_REQUIREMENTS__REQUESTS_ENTRY__INIT};
    rq[0].key = "cpu";
    rq[0].value = &cpu;
    rq[1].key = "memory";
    rq[1].value = &mem;
    Coracle__V1__ResourceRequirements__RequestsEntry *rqp[2] = {&rq[0], &rq[1]};
    Coracle__V1__ResourceRequirements res = CORACLE__V1__RESOURCE_REQUIREMENTS__INIT;
    res.n_requests = 2;
    res.requests = rqp;
    Coracle__V1__Container ctr = CORACLE__V1__CONTAINER__INIT;
    ctr.name = "pause";
    ctr.image = L->image;
    ctr.resources = &res;
    Coracle__V1__Container *ctrp = &ctr;
    Coracle__V1__PodSpec spec = CORACLE__V1__POD_SPEC__INIT;
    spec.n_containers = 1;
    spec.containers = &ctrp;
    Coracle__V1__Pod pod = CORACLE__V1__POD__INIT;
    pod.metadata = &meta;
    pod.spec = &spec;
    struct ctx *c = xmalloc(sizeof(*c));
    *c = (struct ctx){L, i, x->t_sent};
    L->inflight++;
    L->creates_left++;
    gcl_call(L->g, "/coracle.v1.Pods/Create", &pod.base, NULL, create_done, c, 60000);
}

static void send_delete(struct load *L)
{
    long long i = L->victims[L->issued_delete++];
    struct pod *x = &L->p[i];
    x->mine_delete = true;
    x->t_del = mono_ns();
    char name[32];
    snprintf(name, sizeof name, "fleet-%06lld", i);
    Coracle__V1__DeleteRequest req = CORACLE__V1__DELETE_REQUEST__INIT;
    req.namespace_ = L->ns;
    req.name = name;
    struct ctx *c = xmalloc(sizeof(*c));
    *c = (struct ctx){L, i, x->t_del};
    L->inflight++;
    L->deletes_left++;
    gcl_call(L->g, "/coracle.v1.Pods/Delete", &req.base, NULL, delete_done, c, 60000);
}

/* Issues what is due: rate a second since t0 (or everything, inflight-bound, at rate 0). */
static void pump(struct load *L)
{
    if (!L->watching)
        return;
    int64_t el = mono_ns() - L->t0;
    long long due_c = L->want_create, due_d = L->want_delete;
    if (L->rate > 0) {
        long long due = (long long)((double)el / 1e9 * (double)L->rate) + 1;
        due_c = due < due_c ? due : due_c;
        due_d = due < due_d ? due : due_d;
    }
    while (L->inflight < L->inflight_max &&
           (L->issued_create < due_c || L->issued_delete < due_d)) {
        if (L->issued_delete < due_d)
            send_delete(L);
        if (L->issued_create < due_c && L->inflight < L->inflight_max)
            send_create(L);
    }
    if (!L->t_issued && L->issued_create == L->want_create && L->issued_delete == L->want_delete)
        L->t_issued = mono_ns();
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    pump(arg);
    check_done(arg);
}

/* ---- reads ---- */

static void get_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct ctx *c = arg;
    if (code == GRPC_OK)
        lat_add(&c->L->lat[L_GET], mono_ns() - c->t0);
    else if (code != GRPC_NOT_FOUND)
        c->L->lat[L_GET].errors++;
    free(c);
}

static void get_cb(evutil_socket_t fd, short what, void *arg)
{
    struct load *L = arg;
    if (!L->hi)
        return;
    for (int tries = 0; tries < 20; tries++) {
        long long i = random() % L->hi;
        if (!L->p[i].exists)
            continue;
        char name[32];
        snprintf(name, sizeof name, "fleet-%06lld", i);
        Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
        req.namespace_ = L->ns;
        req.name = name;
        struct ctx *c = xmalloc(sizeof(*c));
        *c = (struct ctx){L, i, mono_ns()};
        gcl_call(L->g, "/coracle.v1.Pods/Get", &req.base, NULL, get_done, c, 60000);
        return;
    }
}

static void list_page(struct load *L, const char *cont);

static void list_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct load *L = arg;
    Coracle__V1__PodList *l = coracle__v1__pod_list__unpack(NULL, len, msg);
    if (!l)
        return;
    L->list_items += (long long)l->n_items;
    free(L->list_cont);
    L->list_cont = l->metadata && l->metadata->continue_ && *l->metadata->continue_
                       ? xstrdup(l->metadata->continue_)
                       : NULL;
    if (!L->watching && !L->rv && l->metadata && l->metadata->resourceversion)
        L->rv = xstrdup(l->metadata->resourceversion);
    if (!L->watching) /* the first list: what exists now */
        for (size_t k = 0; k < l->n_items; k++) {
            const Coracle__V1__Pod *p = l->items[k];
            long long i = p->metadata ? pod_index(p->metadata->name) : -1;
            if (i < 0 ||
                (L->ns && p->metadata->namespace_ && strcmp(p->metadata->namespace_, L->ns)))
                continue;
            grow(L, i);
            if (!p->metadata->deletiontimestamp)
                L->p[i].exists = true;
        }
    coracle__v1__pod_list__free_unpacked(l, NULL);
}

static void start_phase(struct load *L);

static void list_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct load *L = arg;
    if (code != GRPC_OK) {
        L->lat[L_LIST].errors++;
        free(L->list_cont);
        L->list_cont = NULL;
        L->listing = false;
        if (!L->watching)
            fatal("list pods: %s: %s", grpc_code_name(code), message);
        return;
    }
    if (L->list_cont) {
        list_page(L, L->list_cont);
        return;
    }
    L->listing = false;
    if (!L->watching) {
        start_phase(L);
        return;
    }
    lat_add(&L->lat[L_LIST], mono_ns() - L->list_t0);
}

static void list_page(struct load *L, const char *cont)
{
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.has_limit = 1;
    req.limit = 500;
    req.continue_ = (char *)cont;
    gcl_call(L->g, "/coracle.v1.Pods/List", &req.base, list_msg, list_done, L, 120000);
}

static void list_cb(evutil_socket_t fd, short what, void *arg)
{
    struct load *L = arg;
    if (L->listing)
        return;
    L->listing = true;
    L->list_items = 0;
    L->list_t0 = mono_ns();
    list_page(L, NULL);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct load *L = arg;
    fprintf(stderr, "fleet-load: timed out: %lld creates and %lld deletes not observed\n",
            L->creates_left, L->deletes_left);
    L->t_end = mono_ns();
    event_base_loopbreak(L->base);
}

/* After the first list: the victims, the watch, the timers. */
static void start_phase(struct load *L)
{
    long long nexist = 0;
    for (long long i = 0; i < L->hi; i++)
        nexist += L->p[i].exists;
    L->victims = xcalloc((size_t)nexist + 1, sizeof(*L->victims));
    for (long long i = 0; i < L->hi; i++)
        if (L->p[i].exists)
            L->victims[L->nvictims++] = i;
    if (!strcmp(L->phase, "create")) {
        L->want_create = L->npods;
    } else if (!strcmp(L->phase, "churn")) {
        L->want_create = L->want_delete = L->rate * L->seconds;
        if (L->want_delete > L->nvictims)
            L->want_delete = L->nvictims;
    } else if (!strcmp(L->phase, "delete")) {
        L->want_delete = L->nvictims;
    } else {
        fatal("--phase: create, churn or delete");
    }
    if (L->start < 0) { /* after the highest index seen */
        L->start = 0;
        for (long long i = 0; i < L->hi; i++)
            if (L->p[i].exists)
                L->start = i + 1;
    }
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = L->ns;
    req.resourceversion = L->rv;
    gcl_call(L->g, "/coracle.v1.Pods/Watch", &req.base, watch_msg, watch_done, L, 0);
    L->watching = true;
    L->t0 = mono_ns();
    L->tick = event_new(L->base, -1, EV_PERSIST, tick_cb, L);
    struct timeval ten = {0, 10000};
    event_add(L->tick, &ten);
    if (L->gets > 0) {
        L->get_ev = event_new(L->base, -1, EV_PERSIST, get_cb, L);
        struct timeval tv = {0, (suseconds_t)(1000000 / L->gets)};
        if (L->gets == 1)
            tv = (struct timeval){1, 0};
        event_add(L->get_ev, &tv);
    }
    if (L->list_every > 0) {
        L->list_ev = event_new(L->base, -1, EV_PERSIST, list_cb, L);
        struct timeval tv = {(time_t)L->list_every, 0};
        event_add(L->list_ev, &tv);
    }
    L->to_ev = evtimer_new(L->base, timeout_cb, L);
    struct timeval to = {(time_t)L->timeout, 0};
    evtimer_add(L->to_ev, &to);
    pump(L);
    check_done(L);
}

int main(int argc, char **argv)
{
    static struct load L;
    static char *server = "127.0.0.1:6443";
    L.ns = "fleet";
    L.phase = "create";
    L.image = "registry.k8s.io/pause:3.9";
    L.npods = 1000;
    L.start = -1;
    L.rate = 100;
    L.inflight_max = 100;
    L.seconds = 30;
    L.gets = 10;
    L.list_every = 10;
    L.timeout = 600;
    const struct cfg_opt opts[] = {
        {"server", CFG_STR, &server, "ADDR", "apiserver (default 127.0.0.1:6443)"},
        {"phase", CFG_STR, &L.phase, "P", "create, churn or delete (default create)"},
        {"namespace", CFG_STR, &L.ns, "NS", "the pods' namespace (default fleet)"},
        {"pods", CFG_INT, &L.npods, "N", "pods to create (create; default 1000)"},
        {"start", CFG_INT, &L.start, "I", "first pod index (default: after the highest existing)"},
        {"rate", CFG_INT, &L.rate, "R", "operations a second; 0: as fast as it goes (default 100)"},
        {"inflight", CFG_INT, &L.inflight_max, "N", "writes in flight at most (default 100)"},
        {"seconds", CFG_INT, &L.seconds, "S", "churn duration (default 30)"},
        {"gets", CFG_INT, &L.gets, "N", "single-pod Gets a second (default 10)"},
        {"list-every", CFG_INT, &L.list_every, "S",
         "a full paged List of all pods every S seconds (default 10; 0: none)"},
        {"image", CFG_STR, &L.image, "REF", "the pods' image (default registry.k8s.io/pause:3.9)"},
        {"timeout", CFG_INT, &L.timeout, "S", "give up after (default 600)"},
    };
    const struct cfg_prog prog = {"fleet-load", "One phase of the fleet density benchmark.", NULL};
    cfg_main(argc, argv, opts, ARRAY_SIZE(opts), &prog);
    if (L.npods < 0 || L.npods >= MAXPODS || L.rate < 0 || L.inflight_max <= 0)
        fatal("bad --pods, --rate or --inflight");
    srandom((unsigned)now_ns());
    L.base = event_base_new();
    L.g = gcl_new(L.base, server, NULL);
    if (!L.g)
        fatal("bad --server %s", server);
    Coracle__V1__Namespace nsobj = CORACLE__V1__NAMESPACE__INIT;
    Coracle__V1__ObjectMeta nsmeta = CORACLE__V1__OBJECT_META__INIT;
    nsmeta.name = L.ns;
    nsobj.metadata = &nsmeta;
    ProtobufCMessage *resp = NULL;
    char *err = NULL;
    int code = gcl_unary_sync(L.g, "/coracle.v1.Namespaces/Create", &nsobj.base,
                              &coracle__v1__namespace__descriptor, &resp, &err);
    if (code != GRPC_OK && code != GRPC_ALREADY_EXISTS)
        fatal("create namespace %s: %s", L.ns, err ? err : "failed");
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    free(err);
    L.listing = true;
    list_page(&L, NULL); /* the first list: what exists, and where the watch starts */
    event_base_dispatch(L.base);
    if (!L.t_end)
        L.t_end = mono_ns();
    report(&L);
    bool ok = L.done;
    L.done = true; /* the watch's end below is ours */
    gcl_free(L.g);
    if (L.tick)
        event_free(L.tick);
    if (L.get_ev)
        event_free(L.get_ev);
    if (L.list_ev)
        event_free(L.list_ev);
    if (L.to_ev)
        event_free(L.to_ev);
    for (int i = 0; i < NL; i++)
        free(L.lat[i].us);
    free(L.p);
    free(L.victims);
    free(L.rv);
    free(L.list_cont);
    event_base_free(L.base);
    return ok ? 0 : 1;
}
