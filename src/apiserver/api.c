/*
 * api: routes, the request pipeline and the write handlers. See api.h.
 *
 * Every gRPC method is a struct api_route {kind, verb}; one handler per
 * verb serves all kinds (Pods/Log and Pods/Exec are the tunnel's, see
 * tunnel.c). A request goes through named stages:
 *   stage_authenticate -> (decode) -> stage_authorize -> stage_admit -> stage_store
 * (authorization needs the decoded namespace and name)
 * Reads (Get/List) are answered from read snapshots (read.c); Watch is
 * handed to the hub (watch.c); writes become store ops (apply.c) answered
 * from their done callback once durable, through the op's owner (struct
 * apply_owner: the gRPC call here; the REST API's writes, rest_write.c,
 * drive the same stages through api_authorize, api_admit and api_submit).
 * If the client goes away first, the op still commits and its answer is
 * dropped.
 */
#include "config.h"
#include "api.h"
#include "admit.h"
#include "apply.h"
#include "audit.h"
#include "auth.h"
#include "events.h"
#include "grpc.h"
#include "leader.h"
#include "nodelife.h"
#include "nslife.h"
#include "obj.h"
#include "rbac.h"
#include "rest.h"
#include "review.h"
#include "satoken.h"
#include "svcalloc.h"
#include "svckube.h"
#include "tunnel.h"
#include "util.h"
#include "watch.h"
#include "wire.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct api {
    struct event_base *base;
    store_t *st;
    h2s_t *srv;
    struct api_config cfg;
    watch_hub_t *hub;
    rpool_t *reads; /* the read worker: work too big for the loop */
    events_t *events;
    nodelife_t *nl;
    nslife_t *nsl;
    /* on etcd, node lifecycle and event expiry each run on one apiserver: the holder of its
     * Lease (NULL: on LMDB the only apiserver runs both) */
    struct single *nl_single, *ev_single;
    rbac_t *rbac;            /* the stored RBAC objects, when they authorize (auth_rbac_on) */
    struct event *rbac_boot; /* creates and reconciles the default roles until done */
    bool rbac_ready;         /* the defaults are in place (/readyz waits for it) */
    psa_t *psa;              /* Pod Security admission */
    struct api_route *routes;
    size_t nroutes;
    int64_t inflight;     /* calls and writes not answered yet (the drain at exit waits for 0) */
    int64_t watching;     /* of them, gRPC watches: long-running, left out of the gauges */
    struct op_hold *held; /* writes waiting for the replica to reach their resourceVersion */
    bool stopping;
    tun_hub_t *tun;
    rest_t *rest;      /* the Kubernetes REST API */
    svcalloc_t *alloc; /* Services' cluster IPs and node ports */
    svckube_t *kube;   /* the `kubernetes` Service, once api_set_kubernetes */
    /* commit batches and fsync latency, sampled from the store's counters
     * once per delivered batch of results */
    struct event *stats_ev;
    uint64_t last_commits, last_ops, last_fsync_ns;
    struct obs_hist batch, fsync;
    /* the namespace and name of the call being answered, for its audit event: set by
     * stage_authorize (answers while the handler runs) and call_answer (from the op) */
    struct {
        h2s_call_t *c;
        char ns[64], name[256];
    } aud;
};

/* Histogram bounds: request and fsync latency (seconds), operations per commit. */
static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000};

static const char *const verb_names[API_NVERBS] = {
    "Create", "Get", "List", "Update", "UpdateStatus", "Delete", "Watch", "Bind", "Log", "Exec",
};
/* Kubernetes' verbs for authorization */
static const char *const verb_k8s[API_NVERBS] = {
    "create", "get", "list", "update", "update", "delete", "watch", "create", "get", "create",
};
static const char *const verb_sub[API_NVERBS] = {
    NULL, NULL, NULL, NULL, "status", NULL, NULL, "binding", "log", "exec",
};

/* ---- answers and counters ---- */

void api_count(struct api_route *rt, int code)
{
    if (!rt)
        return;
    rt->api->inflight--;
    if (rt->verb == API_WATCH)
        rt->api->watching--;
    if (code >= 0 && code < 17)
        rt->codes[code]++;
}

/* Latency of a unary call: the handler stored its start in the call's data. */
static void observe_latency(struct api_route *rt, h2s_call_t *c)
{
    if (rt->verb == API_WATCH)
        return;
    int64_t t0 = (int64_t)(intptr_t)h2s_call_data(c);
    if (t0 > 0)
        obs_hist_observe(&rt->lat, (double)(mono_ns() - t0) / 1e9);
}

/* The audit event of call c on rt, answered with code (audit.h). */
static void audit_call(struct api_route *rt, h2s_call_t *c, int code, const char *msg)
{
    api_t *a = rt->api;
    if (!a->cfg.audit)
        return;
    const struct kind *k = rt->k;
    const char *slash = strchr(k->api_version, '/');
    char group[64];
    snprintf(group, sizeof(group), "%.*s", slash ? (int)(slash - k->api_version) : 0,
             k->api_version);
    bool known = a->aud.c == c;
    struct audit_req q = {.verb = verb_k8s[rt->verb],
                          .resource = true,
                          .path = rt->path,
                          .api_group = group,
                          .api_version = slash ? slash + 1 : k->api_version,
                          .res = k->resource,
                          .subresource = verb_sub[rt->verb],
                          .ns = known ? a->aud.ns : NULL,
                          .name = known ? a->aud.name : NULL};
    audit_grpc(a->cfg.audit, a->cfg.auth, c, &q, code, msg);
}

/* Remembers what call c names for its audit event (NULLs: nothing). */
static void audit_names(api_t *a, h2s_call_t *c, const char *ns, const char *name)
{
    a->aud.c = c;
    snprintf(a->aud.ns, sizeof(a->aud.ns), "%s", ns ? ns : "");
    snprintf(a->aud.name, sizeof(a->aud.name), "%s", name ? name : "");
}

void api_reply(struct api_route *rt, h2s_call_t *c, const void *msg, size_t len)
{
    audit_call(rt, c, GRPC_OK, NULL);
    observe_latency(rt, c);
    h2s_call_reply(c, msg, len);
    api_count(rt, GRPC_OK);
}

void api_fail(struct api_route *rt, h2s_call_t *c, int code, const char *msg)
{
    if (code != GRPC_NOT_FOUND && code != GRPC_ALREADY_EXISTS && code != GRPC_ABORTED)
        log_debug("%s from %s: %s: %s", rt->path, h2s_call_peer(c), grpc_code_name(code),
                  msg ? msg : "");
    audit_call(rt, c, code, msg);
    observe_latency(rt, c);
    h2s_call_finish(c, code, msg);
    api_count(rt, code);
}

void api_failf(struct api_route *rt, h2s_call_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    api_fail(rt, c, code, m);
    free(m);
}

/* ---- pipeline stages ---- */

static int stage_authenticate(struct api_route *rt, h2s_call_t *c, struct auth_user *u)
{
    char *err = NULL;
    if (auth_authenticate(rt->api->cfg.auth, c, u, &err) == 0)
        return 0;
    api_fail(rt, c, GRPC_UNAUTHENTICATED, err ? err : "Unauthorized");
    free(err);
    return -1;
}

int api_admit(const struct kind *k, ProtobufCMessage *obj, char **msg)
{
    admit_defaults(k, obj);
    *msg = NULL;
    return admit_validate(k, obj, msg) == 0 ? 0 : -1;
}

/* Defaults, then validation. Returns 0, or -1 after answering INVALID_ARGUMENT. */
/* A CSR's create: its requester (admit_csr_create). 0, or -1 after answering. */
static int stage_requester(struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                           ProtobufCMessage *obj)
{
    char *msg;
    if (rt->k != &kind_csr || admit_csr_create(obj, u->name, u->groups, &msg) == 0)
        return 0;
    api_fail(rt, c, GRPC_PERMISSION_DENIED, msg);
    free(msg);
    return -1;
}

static int stage_admit(struct api_route *rt, h2s_call_t *c, ProtobufCMessage *obj)
{
    char *msg;
    if (api_admit(rt->k, obj, &msg) == 0)
        return 0;
    api_fail(rt, c, GRPC_INVALID_ARGUMENT, msg);
    free(msg);
    return -1;
}

int api_authorize(api_t *a, const struct auth_user *u, const char *verb, const struct kind *k,
                  const char *subresource, const char *ns, const char *name,
                  const char *field_selector, char **err)
{
    return auth_check(a->cfg.auth, u, a->st, verb, k, subresource,
                      k->namespaced && ns && *ns ? ns : NULL, name && *name ? name : NULL,
                      field_selector, err) == 0
               ? 0
               : -1;
}

/*
 * The full authorization once the request is decoded (namespace, name, field
 * selector; node restriction). Returns 0, or -1 after answering PERMISSION_DENIED.
 */
static int stage_authorize(api_t *a, struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                           const char *ns, const char *name, const char *field_selector)
{
    char *err = NULL;
    if (a->cfg.audit)
        audit_names(a, c, ns, name);
    if (api_authorize(a, u, verb_k8s[rt->verb], rt->k, verb_sub[rt->verb], ns, name, field_selector,
                      &err) == 0)
        return 0;
    api_fail(rt, c, GRPC_PERMISSION_DENIED, err ? err : "forbidden");
    free(err);
    return -1;
}

/* The namespace a request object will have once defaulted ("default" when unset). */
static const char *req_ns(const struct kind *k, const Coracle__V1__ObjectMeta *m)
{
    return k->namespaced ? (m->namespace_ && *m->namespace_ ? m->namespace_ : "default") : NULL;
}

static void op_done(struct store_op *sop, int err, const struct store_change *ch);
static void gen_name(Coracle__V1__ObjectMeta *m);

/*
 * Whether a gRPC create of k may leave decoding and admission (defaults,
 * validation) to the commit thread (apply): not when the loop needs the
 * admitted object (Events, CSRs, Services, pods the ServiceAccount plugin
 * changes, the kinds of api_escalation_checked).
 */
static bool api_admit_on_commit(const api_t *a, const struct kind *k)
{
    /* pods are admitted on the loop when the ServiceAccount plugin is to change them; events
     * are matched there; a CSR gets its requester's identity, a Service its addresses */
    bool sa_admit = k == &kind_pod && satoken_issuing(a->cfg.sat);
    return k != &kind_event && k != &kind_csr && k != &kind_service && !sa_admit &&
           !api_escalation_checked(a, k);
}

bool api_escalation_checked(const api_t *a, const struct kind *k)
{
    return a->rbac && (k == &kind_role || k == &kind_clusterrole || k == &kind_rolebinding ||
                       k == &kind_clusterrolebinding);
}

/* Escalation prevention (rbac.h). Returns 0, or -1 after answering. */
static int stage_escalation(api_t *a, struct api_route *rt, h2s_call_t *c,
                            const struct auth_user *u, const ProtobufCMessage *obj)
{
    int code;
    char *msg;
    if (api_rbac_admit(a, u, rt->k, obj, &code, &msg) == 0)
        return 0;
    api_fail(rt, c, code, msg);
    free(msg);
    return -1;
}

/* Answers o's owner with code and msg (or logs them) and frees o. */
static void refuse(api_t *a, struct apply_op *o, int code, const char *msg)
{
    if (o->ow)
        o->ow->answer(o, code, msg, NULL, 0);
    else
        log_debug("internal %s on %s: %s", o->k->resource, o->op.key, msg);
    if (o->counted)
        a->inflight--;
    apply_op_free(o);
}

/*
 * The ServiceAccount admission plugin on a pod create (satoken.h), when
 * the apiserver issues tokens. Idempotent: a create retried under another
 * generated name passes again unchanged.
 */
static bool sa_refused(api_t *a, struct apply_op *o)
{
    struct satoken_err e;
    if (o->verb != APPLY_CREATE || o->k != &kind_pod || !o->obj || !satoken_issuing(a->cfg.sat) ||
        satoken_admit_pod(a->cfg.sat, (Coracle__V1__Pod *)o->obj, o->ns, &e) == 0)
        return false;
    refuse(a, o, e.code, e.msg);
    free(e.msg);
    return true;
}

/*
 * NamespaceLifecycle: a create into a namespace that is missing or
 * Terminating is refused (o answered and freed: returns true); then the
 * ServiceAccount plugin.
 */
static bool ns_refused(api_t *a, struct apply_op *o)
{
    int code;
    char *msg;
    if (o->verb != APPLY_CREATE || !a->nsl ||
        nslife_admit(a->nsl, o->k, o->ns, o->gen_tries ? NULL : o->name, &code, &msg) == 0)
        return sa_refused(a, o);
    refuse(a, o, code, msg);
    free(msg);
    return true;
}

static void dry_run(api_t *a, struct apply_op *o);
static void store_op(api_t *a, struct apply_op *o);

/* o admitted: to the store, or (dry) decided and answered at once. */
static void proceed(api_t *a, struct apply_op *o, bool dry)
{
    if (dry)
        dry_run(a, o);
    else
        store_op(a, o);
}

/*
 * A namespace's existing pods checked against its new enforce level, by the
 * read worker in a snapshot the loop holds (3000 pods are more than the
 * loop's millisecond); then its write goes on, with the warnings.
 */
struct podcheck {
    struct rjob job;
    api_t *a;
    struct apply_op *o;
    bool dry;
    store_rtxn_t *t;
    struct psa_lv lv;
    char *ns;
    char **warn; /* the worker's, until done */
    size_t n_warn;
};

static void podcheck_work(struct rjob *j)
{
    struct podcheck *pc = RJOB_OWNER(j, struct podcheck, job);
    psa_check_pods(pc->a->psa, pc->t, pc->ns, &pc->lv, &pc->warn, &pc->n_warn);
}

static void podcheck_done(struct rjob *j, bool cancelled)
{
    struct podcheck *pc = RJOB_OWNER(j, struct podcheck, job);
    (void)cancelled; /* never cancelled: the write goes on whoever waits for it */
    store_read_end(pc->t);
    struct apply_op *o = pc->o;
    o->warnings = xrealloc(o->warnings, (o->n_warnings + pc->n_warn + 1) * sizeof(*o->warnings));
    memcpy(o->warnings + o->n_warnings, pc->warn, pc->n_warn * sizeof(*pc->warn));
    o->n_warnings += pc->n_warn;
    free(pc->warn);
    free(pc->ns);
    proceed(pc->a, o, pc->dry);
    free(pc);
}

/*
 * Pod Security for a client's create or update. A pod's or workload's
 * check is attached for apply to run on the decoded object; a namespace's
 * labels are judged here: refused (o answered and freed), or, when its
 * enforce level tightens, its pods checked first (o taken: it goes on from
 * the read worker's done). Returns whether o was taken.
 */
static bool psa_taken(api_t *a, struct apply_op *o, bool dry)
{
    if (!o->ow || !a->psa || (o->verb != APPLY_CREATE && o->verb != APPLY_UPDATE))
        return false;
    if (o->k != &kind_namespace) {
        psa_req_free(o->psa);
        o->psa = psa_request(a->psa, o->k, o->ns, o->user);
        return false;
    }
    ProtobufCMessage *obj = o->obj ? o->obj : obj_decode(o->k->desc, o->req, o->req_len);
    char *msg = NULL;
    struct psa_lv lv;
    int r = obj ? psa_namespace(a->psa, obj, o->verb == APPLY_CREATE, &msg, &o->warnings,
                                &o->n_warnings, &lv)
                : 0;
    if (obj != o->obj)
        obj_free(obj);
    if (r == 0)
        return false;
    if (r < 0) {
        refuse(a, o, GRPC_INVALID_ARGUMENT, msg);
        free(msg);
        return true;
    }
    struct podcheck *pc = xcalloc(1, sizeof(*pc));
    if (store_read_begin(a->st, &pc->t) < 0) {
        free(pc);
        o->warnings = xrealloc(o->warnings, (o->n_warnings + 1) * sizeof(*o->warnings));
        o->warnings[o->n_warnings++] =
            xstrdup("failed to list pods while checking new PodSecurity enforce level");
        return false;
    }
    pc->a = a;
    pc->o = o;
    pc->dry = dry;
    pc->lv = lv;
    pc->ns = xstrdup(o->name);
    pc->job.work = podcheck_work;
    pc->job.done = podcheck_done;
    rpool_submit(a->reads, &pc->job);
    return true;
}

/* The admission that needs the loop's caches (namespace lifecycle, Pod Security): o taken? */
static bool admit_taken(api_t *a, struct apply_op *o, bool dry)
{
    return ns_refused(a, o) || psa_taken(a, o, dry);
}

/* ---- Services: their addresses are taken before the write (svcalloc.h) ---- */

/* The claim's outcome: the write goes on with the addresses filled in, or is refused. */
static void svc_claimed(void *arg, int code, const char *msg, struct svc_claim *c)
{
    struct apply_op *o = arg;
    api_t *a = o->op.arg;
    o->claimed = 1;
    o->claim = c;
    if (code != GRPC_OK)
        refuse(a, o, code, msg);
    else
        store_op(a, o);
}

/*
 * A Service sent as bytes is decoded and admitted here rather than on the
 * commit thread: its addresses are taken before the store sees it.
 * Returns -1 with o refused.
 */
static int svc_decode_req(api_t *a, struct apply_op *o)
{
    char *msg = NULL;
    ProtobufCMessage *obj = obj_decode(o->k->desc, o->req, o->req_len);
    if (!obj) {
        refuse(a, o, GRPC_INVALID_ARGUMENT, "failed to decode Service: invalid protobuf wire data");
        return -1;
    }
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    if (o->gen_tries)
        obj_set_str(&m->name, o->name);
    if (api_admit(o->k, obj, &msg) < 0 || strcmp(m->name ? m->name : "", o->name) ||
        strcmp(m->namespace_ ? m->namespace_ : "", o->ns)) {
        refuse(a, o, GRPC_INVALID_ARGUMENT,
               msg ? msg : "Service: metadata.name and metadata.namespace do not match");
        free(msg);
        obj_free(obj);
        return -1;
    }
    o->obj = obj;
    free(o->req);
    o->req = NULL;
    return 0;
}

/* The stored Service an update replaces (NULL if none). */
static Coracle__V1__Service *svc_stored(api_t *a, struct apply_op *o)
{
    store_rtxn_t *t;
    const void *v;
    size_t len;
    ProtobufCMessage *m = NULL;
    if (store_read_begin(a->st, &t) < 0)
        return NULL;
    if (store_get(t, o->op.key, o->op.key_len, &v, &len) == 0)
        m = obj_decode(o->k->desc, v, len);
    store_read_end(t);
    return (Coracle__V1__Service *)m;
}

static void svc_claim(api_t *a, struct apply_op *o)
{
    if (!o->obj && o->req && svc_decode_req(a, o) < 0)
        return;
    o->op.arg = a;
    Coracle__V1__Service *old = o->verb == APPLY_UPDATE ? svc_stored(a, o) : NULL;
    Coracle__V1__Service *svc = (Coracle__V1__Service *)o->obj;
    if (!svc->spec || (o->verb == APPLY_UPDATE && !old)) {
        o->claimed = 1; /* nothing to take: the store answers */
        store_op(a, o);
    } else {
        svcalloc_claim(a->alloc, svc, old, svc_claimed, o);
    }
    if (old)
        obj_free(&old->base);
}

/* To the store (o taken); if the store refuses it, answers its owner at once. */
/*
 * A write carrying resourceVersion N (an update's object, a delete's
 * precondition) decides against the store's current value; a replica of
 * etcd that has not reached N yet (the client saw N through another
 * apiserver: it created the object there a moment ago) would answer
 * NotFound or Conflict from the past. As reads do (read_rv_hold), it waits
 * for the replica to get there, 3 s at most (or until the apiserver stops:
 * the drain is shorter), then goes on either way: the compare on etcd
 * decides. kube-apiserver reads the object from etcd when
 * its watch cache does not have it; this is the replica's way. (LMDB: a
 * resourceVersion from the future is a Conflict at once, as before.)
 */
struct op_hold {
    struct op_hold *next, **pprev; /* in api's held */
    api_t *a;
    struct apply_op *o;
    struct read_rvwait *w;
};

/* The wait is over (or given up): o goes on to the store. */
static void hold_end(struct op_hold *h)
{
    api_t *a = h->a;
    struct apply_op *o = h->o;
    *h->pprev = h->next;
    if (h->next)
        h->next->pprev = h->pprev;
    free(h);
    store_op(a, o);
}

static void rv_held(void *arg, const char *too_large)
{
    (void)too_large;
    hold_end(arg);
}

static bool rv_hold_op(api_t *a, struct apply_op *o)
{
    if (o->rv_held || !store_is_replica(a->st))
        return false; /* the embedded store is never behind what a client saw */
    o->rv_held = 1;
    const char *rv = o->pre_rv;
    if (!rv && o->obj && (o->verb == APPLY_UPDATE || o->verb == APPLY_STATUS))
        rv = obj_meta(o->obj)->resourceversion;
    struct op_hold *h = xcalloc(1, sizeof(*h));
    *h = (struct op_hold){.next = a->held, .pprev = &a->held, .a = a, .o = o};
    h->w = read_rv_hold(a->st, a->base, rv, rv_held, h);
    if (!h->w) {
        free(h);
        return false;
    }
    if (a->held)
        a->held->pprev = &h->next;
    a->held = h;
    return true;
}

/* At stop: the held writes go on now, as at the end of their wait (the drain waits for them). */
static void holds_end(api_t *a)
{
    while (a->held) {
        read_rv_cancel(a->held->w);
        hold_end(a->held);
    }
}

static void store_op(api_t *a, struct apply_op *o)
{
    if (rv_hold_op(a, o))
        return;
    if (o->k == &kind_service && !o->claimed &&
        (o->verb == APPLY_CREATE || o->verb == APPLY_UPDATE)) {
        svc_claim(a, o); /* the addresses first, then the store */
        return;
    }
    o->op.done = op_done;
    o->op.arg = a;
    if (store_submit(a->st, &o->op) == 0)
        return;
    if (o->ow)
        o->ow->answer(o, GRPC_UNAVAILABLE, "server shutting down", NULL, 0);
    if (o->counted)
        a->inflight--;
    apply_op_free(o);
}

/* Submits o (taken) through admission to the store. */
static void submit(api_t *a, struct apply_op *o)
{
    if (!admit_taken(a, o, false))
        store_op(a, o);
}

/* ---- the gRPC call as an op's owner: owner = route, owner2 = call ---- */

static void op_call_closed(h2s_call_t *c, void *arg)
{
    struct apply_op *o = arg;
    o->owner2 = NULL;
    api_count(o->owner, -1);
}

static void call_answer(struct apply_op *o, int code, const char *msg, const void *val, size_t len)
{
    struct api_route *rt = o->owner;
    h2s_call_t *c = o->owner2;
    if (!c)
        return;
    h2s_call_on_close(c, NULL, NULL);
    for (size_t i = 0; i < o->n_warnings; i++)
        h2s_call_add_trailer(c, "warning", o->warnings[i]);
    if (rt->api->cfg.audit)
        audit_names(rt->api, c, o->ns, o->name);
    if (code == GRPC_OK)
        api_reply(rt, c, val ? val : "", len);
    else
        api_fail(rt, c, code, msg);
    rt->api->aud.c = NULL;
}

static void call_moved(struct apply_op *o, struct apply_op *n)
{
    if (n->owner2)
        h2s_call_on_close(n->owner2, op_call_closed, n);
}

static const struct apply_owner call_owner = {call_answer, call_moved};

char *api_field_manager(const char *field_manager, const char *user_agent)
{
    if (field_manager && *field_manager)
        return xstrdup(field_manager);
    size_t n = user_agent ? strcspn(user_agent, "/") : 0;
    if (n > FIELD_MANAGER_MAX)
        n = FIELD_MANAGER_MAX;
    return n ? xstrndup(user_agent, n) : xstrdup("unknown");
}

/* The store stage; dry: the op decided and answered, nothing written (dryRun=All). */
static void stage_store_dry(api_t *a, struct api_route *rt, h2s_call_t *c, struct apply_op *o,
                            bool dry)
{
    /* gRPC writes record no manager (o->manager stays NULL): see doc/DESIGN.md,
     * "Field managers", for why only the Kubernetes API's writes do */
    o->ow = rt ? &call_owner : NULL;
    o->owner = rt;
    o->owner2 = c;
    if (c)
        h2s_call_on_close(c, op_call_closed, o);
    if (!dry)
        submit(a, o);
    else if (!admit_taken(a, o, true))
        dry_run(a, o);
}

static void stage_store(api_t *a, struct api_route *rt, h2s_call_t *c, struct apply_op *o)
{
    stage_store_dry(a, rt, c, o, false);
}

/* A retry of o as n: n takes o's owner, o is freed, n is submitted. */
static void resubmit(api_t *a, struct apply_op *o, struct apply_op *n)
{
    n->ow = o->ow;
    n->owner = o->owner;
    n->owner2 = o->owner2;
    n->counted = o->counted;
    n->manager = o->manager;
    o->manager = NULL;
    n->user = o->user;
    o->user = NULL;
    n->claim = o->claim;
    n->claimed = o->claimed;
    n->op.prepare = o->op.prepare; /* a JSON answer made ahead (apply_pre_json) */
    o->claim = NULL;
    if (o->ow && o->ow->moved)
        o->ow->moved(o, n);
    o->counted = 0;
    apply_op_free(o);
    submit(a, n);
}

/*
 * What a dry run would have written (out) shows: the stored object's
 * resourceVersion, or none for a new object. malloc'd, *len; NULL if out
 * does not decode.
 */
static void *dry_result(const struct kind *k, const void *out, size_t out_len, const void *cur,
                        size_t cur_len, size_t *len)
{
    ProtobufCMessage *m = obj_decode(k->desc, out, out_len);
    if (!m)
        return NULL;
    ProtobufCMessage *c = cur ? obj_decode(k->desc, cur, cur_len) : NULL;
    obj_set_str(&obj_meta(m)->resourceversion, c ? obj_meta(c)->resourceversion : NULL);
    void *r = obj_encode(m, len);
    obj_free(c);
    obj_free(m);
    return r;
}

/*
 * A dry run: the op's apply against the stored object, on the loop, with
 * nothing written. Apply functions touch only the op and the bytes (they
 * are made for the commit thread), so running one here is safe.
 */
static void dry_run(api_t *a, struct apply_op *o)
{
    store_rtxn_t *t;
    if (store_read_begin(a->st, &t) < 0) {
        o->ow->answer(o, GRPC_UNAVAILABLE, "the store cannot be read", NULL, 0);
        apply_op_free(o);
        return;
    }
    const void *cur = NULL;
    size_t cur_len = 0, len = 0;
    if (store_get(t, o->op.key, o->op.key_len, &cur, &cur_len) != 0)
        cur = NULL;
    void *out = NULL, *res = NULL;
    size_t out_len = 0;
    int del = 0;
    int r = o->op.apply(&o->op, cur, cur_len, store_rtxn_rev(t), &out, &out_len, &del);
    if (r == APPLY_EFAIL)
        o->ow->answer(o, o->code, o->msg, NULL, 0);
    else if (r < 0)
        o->ow->answer(o, GRPC_INTERNAL, store_strerror(r), NULL, 0);
    else if (del && o->res)
        o->ow->answer(o, GRPC_OK, NULL, o->res, o->res_len);
    else if (del)
        o->ow->answer(o, GRPC_OK, NULL, cur, cur_len);
    else if (out && (res = dry_result(o->k, out, out_len, cur, cur_len, &len)))
        o->ow->answer(o, GRPC_OK, NULL, res, len);
    else
        o->ow->answer(o, GRPC_OK, NULL, o->res, o->res_len);
    free(res);
    free(out);
    store_read_end(t);
    apply_op_free(o);
}

void api_submit(api_t *a, struct apply_op *o, bool dry)
{
    if (a->stopping) {
        o->ow->answer(o, GRPC_UNAVAILABLE, "server shutting down", NULL, 0);
        apply_op_free(o);
        return;
    }
    if (dry) {
        if (!admit_taken(a, o, true))
            dry_run(a, o);
        return;
    }
    a->inflight++;
    o->counted = 1;
    submit(a, o);
}

bool api_has_verb(const struct kind *k, enum api_verb v)
{
    if (kind_virtual(k))
        return v == API_CREATE;
    if (v >= API_BIND && k != &kind_pod)
        return false;
    return v < API_NVERBS;
}

static void stats_sample(evutil_socket_t fd, short what, void *arg)
{
    api_t *a = arg;
    struct store_stats ss;
    store_get_stats(a->st, &ss);
    uint64_t dc = ss.commits - a->last_commits;
    if (dc && ss.commits > a->last_commits) {
        obs_hist_observe_n(&a->batch, (double)(ss.ops - a->last_ops) / (double)dc, dc);
        obs_hist_observe_n(&a->fsync,
                           (double)(ss.fsync_ns_total - a->last_fsync_ns) / 1e9 / (double)dc, dc);
    }
    a->last_commits = ss.commits;
    a->last_ops = ss.ops;
    a->last_fsync_ns = ss.fsync_ns_total;
}

static void op_finish(struct store_op *sop, int err, const struct store_change *ch);

/* A Service write's outcome, kept while the addresses it let go are freed. */
struct svc_after {
    struct apply_op *o;
    int err;
    bool has_ch;
    struct store_change ch; /* its bytes copied */
};

static void svc_settled(void *arg)
{
    struct svc_after *x = arg;
    op_finish(&x->o->op, x->err, x->has_ch ? &x->ch : NULL);
    free((void *)x->ch.val);
    free((void *)x->ch.prev);
    free(x);
}

static void op_done(struct store_op *sop, int err, const struct store_change *ch)
{
    struct apply_op *o = (struct apply_op *)sop;
    api_t *a = sop->arg;
    if (o->k != &kind_service || (err == APPLY_EFAIL && o->code == GRPC_ALREADY_EXISTS &&
                                  o->gen_tries > 0 && o->gen_tries < 8)) {
        op_finish(sop, err, ch);
        return;
    }
    /* the addresses the write let go, or those taken for a write that
     * failed, are free before the client hears, as kube-apiserver does */
    struct svc_after *x = xcalloc(1, sizeof(*x));
    x->o = o;
    x->err = err;
    if (ch) {
        x->has_ch = true;
        x->ch = *ch;
        x->ch.key = NULL;
        x->ch.key_len = 0;
        x->ch.val = ch->val ? xmemdup(ch->val, ch->val_len) : NULL;
        x->ch.prev = ch->prev ? xmemdup(ch->prev, ch->prev_len) : NULL;
    }
    struct svc_claim *c = o->claim;
    o->claim = NULL;
    svcalloc_settle(a->alloc, c, err == 0, ch ? ch->prev : NULL, ch ? ch->prev_len : 0,
                    ch ? ch->val : NULL, ch ? ch->val_len : 0, svc_settled, x);
}

static void op_finish(struct store_op *sop, int err, const struct store_change *ch)
{
    struct apply_op *o = (struct apply_op *)sop;
    api_t *a = sop->arg;
    if (!a->stopping && !event_pending(a->stats_ev, EV_TIMEOUT, NULL))
        event_active(a->stats_ev, EV_TIMEOUT, 0);
    if (err == APPLY_EGONE) {
        /* the event it repeated is gone: create it after all */
        ProtobufCMessage *obj = o->obj;
        o->obj = NULL;
        Coracle__V1__ObjectMeta *m = obj_meta(obj);
        struct apply_op *n = apply_op_new(o->k, APPLY_CREATE, m->namespace_, m->name);
        n->obj = obj;
        n->recorded = o->recorded;
        resubmit(a, o, n);
        return;
    }
    if (err == APPLY_EFAIL && o->verb == APPLY_CREATE && o->code == GRPC_ALREADY_EXISTS &&
        o->gen_tries > 0 && o->gen_tries < 8) {
        /* a generated name collided: draw another, as Kubernetes does (a
         * create sent as bytes was decoded and admitted before the name was
         * found taken, so o->obj is there either way) */
        ProtobufCMessage *obj = o->obj;
        o->obj = NULL;
        Coracle__V1__ObjectMeta *m = obj_meta(obj);
        gen_name(m);
        struct apply_op *n = apply_op_new(o->k, APPLY_CREATE, m->namespace_, m->name);
        n->obj = obj;
        n->gen_tries = o->gen_tries + 1;
        n->recorded = o->recorded;
        resubmit(a, o, n);
        return;
    }
    if (o->ow) {
        if (err == 0) {
            if (ch && ch->val)
                o->ow->answer(o, GRPC_OK, NULL, ch->val, ch->val_len);
            else if (o->res) /* nothing written, or an update that deleted */
                o->ow->answer(o, GRPC_OK, NULL, o->res, o->res_len);
            else if (ch && ch->prev)
                o->ow->answer(o, GRPC_OK, NULL, ch->prev, ch->prev_len);
            else
                o->ow->answer(o, GRPC_OK, NULL, o->res, o->res_len);
        } else if (err == APPLY_EFAIL) {
            o->ow->answer(o, o->code, o->msg, NULL, 0);
        } else if (err == STORE_EFULL) {
            char *m = xasprintf("the store is full: %s; reads and watches still work, writes will "
                                "succeed again once space is freed",
                                store_full_reason(a->st));
            o->ow->answer(o, GRPC_RESOURCE_EXHAUSTED, m, NULL, 0);
            free(m);
        } else if (err == STORE_ECLOSED) {
            o->ow->answer(o, GRPC_UNAVAILABLE, "server shutting down", NULL, 0);
        } else if (err == STORE_EUNAVAIL) {
            o->ow->answer(o, GRPC_UNAVAILABLE, store_unavail_reason(a->st), NULL, 0);
        } else {
            o->ow->answer(o, GRPC_INTERNAL, store_strerror(err), NULL, 0);
        }
    } else if (err) {
        log_debug("internal %s on %s: %s", o->k->resource, o->op.key,
                  err == APPLY_EFAIL ? o->msg : store_strerror(err));
    }
    if (o->counted)
        a->inflight--;
    apply_op_free(o);
}

/* ---- handlers ---- */

static ProtobufCMessage *decode_or_fail(struct api_route *rt, h2s_call_t *c,
                                        const ProtobufCMessageDescriptor *d, const char *what,
                                        const uint8_t *msg, size_t len)
{
    ProtobufCMessage *m = obj_decode(d, msg, len);
    if (!m)
        api_failf(rt, c, GRPC_INVALID_ARGUMENT,
                  "failed to decode %s: invalid protobuf wire data (%zu bytes)", what, len);
    return m;
}

/*
 * metadata.name = generateName + 5 characters of Kubernetes' alphabet. They
 * come from a counter with a random start, not from fresh randomness: names
 * made together then share their first characters and land on the same
 * B-tree pages of the store, which makes a burst of creates several times
 * cheaper to commit (scattered keys cost a page rewrite each). 27^5 names
 * go by before one repeats; a collision with a live object is retried.
 */
static char *gen_name_for(const char *prefix)
{
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
    enum { BASE = sizeof(alnum) - 1, SPAN = BASE * BASE * BASE * BASE * BASE };
    static uint32_t next;
    static int seeded;
    if (!seeded) {
        while (getrandom(&next, sizeof(next), 0) != sizeof(next))
            ;
        seeded = 1;
    }
    uint32_t v = next++ % SPAN;
    char sfx[6];
    for (int i = 4; i >= 0; i--) {
        sfx[i] = alnum[v % BASE];
        v /= BASE;
    }
    sfx[5] = 0;
    return xconcat(prefix, sfx, NULL);
}

static void gen_name(Coracle__V1__ObjectMeta *m)
{
    char *n = gen_name_for(m->generatename);
    free(m->name);
    m->name = n;
}

void api_gen_name(Coracle__V1__ObjectMeta *m)
{
    gen_name(m);
}

/*
 * A create of any kind but Event (events_find needs it decoded here). The
 * loop only reads the names off the wire, for authorization and the key;
 * decoding and admission run in apply on the commit thread, which has time
 * to spare while it waits for its sync, where every microsecond of the
 * loop's costs about a seventh of the creates per second (an experiment:
 * 1 us of extra work per create on the loop, -14%; on the commit thread,
 * -3%). The bytes are copied; the op owns them. Returns -1 if they do not
 * parse (the caller decodes them for the error).
 */
static int create_from_wire(api_t *a, struct api_route *rt, h2s_call_t *c,
                            const struct auth_user *u, const uint8_t *msg, size_t len)
{
    const struct kind *k = rt->k;
    char *name, *gen, *ns;
    if (wire_meta_names(msg, len, &name, &gen, &ns) < 0)
        return -1;
    int generated = 0;
    if ((!name || !*name) && gen && *gen) {
        free(name);
        name = gen_name_for(gen);
        generated = 1;
    }
    const char *nsd = k->namespaced ? (ns && *ns ? ns : "default") : NULL;
    if (stage_authorize(a, rt, c, u, nsd, generated ? NULL : name, NULL) == 0) {
        struct apply_op *o = apply_op_new(k, APPLY_CREATE, nsd, name);
        o->req = xmemdup(msg, len);
        o->req_len = len;
        o->gen_tries = generated;
        o->user = xstrdup(u->name);
        stage_store(a, rt, c, o);
    }
    free(name);
    free(gen);
    free(ns);
    return 0;
}

/* A virtual kind's create: authorized as any create, answered at once (review.h). */
static void do_review(api_t *a, struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                      const uint8_t *msg, size_t len)
{
    ProtobufCMessage *obj = decode_or_fail(rt, c, rt->k->desc, rt->k->kind, msg, len);
    if (!obj)
        return;
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    const char *ns = m ? req_ns(rt->k, m) : rt->k->namespaced ? "default" : NULL;
    char *err = NULL;
    int code = 0;
    if (stage_authorize(a, rt, c, u, ns, NULL, NULL) == 0 &&
        (code = review_answer(a->cfg.auth, a->st, u, rt->k, ns, obj, &err)) == 0) {
        size_t n;
        void *out = obj_encode(obj, &n);
        api_reply(rt, c, out, n);
        free(out);
    } else if (code) {
        api_fail(rt, c, code, err);
    }
    free(err);
    obj_free(obj);
}

static void do_create(api_t *a, struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                      const uint8_t *msg, size_t len)
{
    const struct kind *k = rt->k;
    if (kind_virtual(k)) {
        do_review(a, rt, c, u, msg, len);
        return;
    }
    if (api_admit_on_commit(a, k) && create_from_wire(a, rt, c, u, msg, len) == 0)
        return;
    ProtobufCMessage *obj = decode_or_fail(rt, c, k->desc, k->kind, msg, len);
    if (!obj)
        return;
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    int generated = 0;
    if ((!m->name || !*m->name) && m->generatename && *m->generatename) {
        gen_name(m);
        generated = 1;
    }
    if (stage_authorize(a, rt, c, u, req_ns(k, m), generated ? NULL : m->name, NULL) < 0 ||
        stage_requester(rt, c, u, obj) < 0 || stage_admit(rt, c, obj) < 0 ||
        stage_escalation(a, rt, c, u, obj) < 0) {
        obj_free(obj);
        return;
    }
    enum apply_verb verb = APPLY_CREATE;
    const char *name = m->name;
    if (k == &kind_event) {
        const char *existing = events_find(a->events, (void *)obj);
        if (existing) {
            verb = APPLY_EVENT_BUMP;
            name = existing;
        }
    }
    struct apply_op *o = apply_op_new(k, verb, m->namespace_, name);
    o->obj = obj;
    o->gen_tries = generated;
    o->user = xstrdup(u->name);
    stage_store(a, rt, c, o);
}

/*
 * Updates over this many bytes are decoded and admitted on the commit thread
 * (like creates): for the largest objects that is tens of milliseconds (a
 * 1.4 MB pod held the loop 34 ms), which no other caller should wait for.
 * Smaller ones stay on the loop, as measured for status writes.
 */
#define UPDATE_INLINE_MAX (64u << 10)

/* A big update: the loop reads only the names off the wire. Returns -1 to decode here instead. */
static int update_from_wire(api_t *a, struct api_route *rt, h2s_call_t *c,
                            const struct auth_user *u, const uint8_t *msg, size_t len, bool status)
{
    const struct kind *k = rt->k;
    char *name, *gen, *ns;
    if (len <= UPDATE_INLINE_MAX || api_escalation_checked(a, k) ||
        wire_meta_names(msg, len, &name, &gen, &ns) < 0)
        return -1;
    int r = -1;
    if (name && *name) { /* else the loop's path says what is missing */
        const char *nsd = k->namespaced ? (ns && *ns ? ns : "default") : NULL;
        if (stage_authorize(a, rt, c, u, nsd, name, NULL) == 0) {
            struct apply_op *o = apply_op_new(k, status ? APPLY_STATUS : APPLY_UPDATE, nsd, name);
            o->req = xmemdup(msg, len);
            o->req_len = len;
            o->user = xstrdup(u->name);
            stage_store(a, rt, c, o);
        }
        r = 0;
    }
    free(name);
    free(gen);
    free(ns);
    return r;
}

static void do_update(api_t *a, struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                      const uint8_t *msg, size_t len, bool status)
{
    const struct kind *k = rt->k;
    if (update_from_wire(a, rt, c, u, msg, len, status) == 0)
        return;
    ProtobufCMessage *obj = decode_or_fail(rt, c, k->desc, k->kind, msg, len);
    if (!obj)
        return;
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    if (status) {
        obj_normalize(obj);
        if (k->namespaced && (!m->namespace_ || !*m->namespace_))
            obj_set_str(&m->namespace_, "default");
        if (!m->name || !*m->name) {
            char qk[128];
            api_failf(rt, c, GRPC_INVALID_ARGUMENT,
                      "%s \"\" is invalid: metadata.name: Required value: name is required",
                      kind_qualified(k, qk, sizeof(qk)));
            obj_free(obj);
            return;
        }
    }
    if (stage_authorize(a, rt, c, u, req_ns(k, m), m->name, NULL) < 0 ||
        (!status && stage_admit(rt, c, obj) < 0) ||
        (!status && stage_escalation(a, rt, c, u, obj) < 0)) {
        obj_free(obj);
        return;
    }
    struct apply_op *o =
        apply_op_new(k, status ? APPLY_STATUS : APPLY_UPDATE, m->namespace_, m->name);
    o->obj = obj;
    o->user = xstrdup(u->name);
    stage_store(a, rt, c, o);
}

static void do_delete(api_t *a, struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                      const uint8_t *msg, size_t len)
{
    Coracle__V1__DeleteRequest *req = (void *)decode_or_fail(
        rt, c, &coracle__v1__delete_request__descriptor, "DeleteRequest", msg, len);
    if (!req)
        return;
    if (!req->name || !*req->name) {
        api_fail(rt, c, GRPC_INVALID_ARGUMENT, "resource name may not be empty");
        obj_free(&req->base);
        return;
    }
    if (req->has_graceperiodseconds && req->graceperiodseconds < 0) {
        api_failf(rt, c, GRPC_INVALID_ARGUMENT,
                  "DeleteOptions \"%s\" is invalid: gracePeriodSeconds: Invalid value: %" PRId64
                  ": must be greater than or equal to 0",
                  req->name, req->graceperiodseconds);
        obj_free(&req->base);
        return;
    }
    enum gcpolicy gc;
    char *why;
    bool dry = false;
    for (size_t i = 0; i < req->n_dryrun; i++) {
        if (strcmp(req->dryrun[i], "All")) {
            api_failf(rt, c, GRPC_INVALID_ARGUMENT,
                      "DeleteOptions \"%s\" is invalid: dryRun: Unsupported value: "
                      "[]string{\"%s\"}: supported values: \"All\"",
                      req->name, req->dryrun[i]);
            obj_free(&req->base);
            return;
        }
        dry = true;
    }
    if (gcpolicy_parse(req->propagationpolicy, req->has_orphandependents, req->orphandependents,
                       &gc, &why) < 0) {
        api_failf(rt, c, GRPC_INVALID_ARGUMENT, "DeleteOptions \"%s\" is invalid: %s", req->name,
                  why);
        free(why);
        obj_free(&req->base);
        return;
    }
    const char *ns = req->namespace_ && *req->namespace_ ? req->namespace_ : "default";
    if (stage_authorize(a, rt, c, u, ns, req->name, NULL) < 0) {
        obj_free(&req->base);
        return;
    }
    struct apply_op *o = apply_op_new(rt->k, APPLY_DELETE, ns, req->name);
    o->gc = gc;
    o->has_grace = req->has_graceperiodseconds;
    o->grace = req->graceperiodseconds;
    if (req->preconditions && req->preconditions->uid && *req->preconditions->uid)
        o->pre_uid = xstrdup(req->preconditions->uid);
    if (req->preconditions && req->preconditions->resourceversion &&
        *req->preconditions->resourceversion)
        o->pre_rv = xstrdup(req->preconditions->resourceversion);
    obj_free(&req->base);
    stage_store_dry(a, rt, c, o, dry);
}

int api_bind_validate(const Coracle__V1__Binding *b, char **msg)
{
    const char *name = b->metadata && b->metadata->name ? b->metadata->name : "";
    const char *tk = b->target && b->target->kind ? b->target->kind : "";
    *msg = NULL;
    if (!*name)
        *msg = xstrdup("Binding \"\" is invalid: metadata.name: Required value: name is required");
    else if (!b->target || !b->target->name || !*b->target->name)
        *msg = xasprintf("Binding \"%s\" is invalid: target.name: Required value", name);
    else if (*tk && strcmp(tk, "Node"))
        *msg = xasprintf("Binding \"%s\" is invalid: target.kind: Unsupported value: \"%s\": "
                         "supported values: \"Node\"",
                         name, tk);
    return *msg ? -1 : 0;
}

static void do_bind(api_t *a, struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                    const uint8_t *msg, size_t len)
{
    Coracle__V1__Binding *b =
        (void *)decode_or_fail(rt, c, &coracle__v1__binding__descriptor, "Binding", msg, len);
    if (!b)
        return;
    const char *name = b->metadata && b->metadata->name ? b->metadata->name : "";
    const char *ns = b->metadata && b->metadata->namespace_ && *b->metadata->namespace_
                         ? b->metadata->namespace_
                         : "default";
    char *err;
    if (api_bind_validate(b, &err) < 0) {
        api_fail(rt, c, GRPC_INVALID_ARGUMENT, err);
        free(err);
    } else if (stage_authorize(a, rt, c, u, ns, name, NULL) == 0) {
        struct apply_op *o = apply_op_new(&kind_pod, APPLY_BIND, ns, name);
        o->node = xstrdup(b->target->name);
        if (b->metadata && b->metadata->uid && *b->metadata->uid)
            o->pre_uid = xstrdup(b->metadata->uid);
        stage_store(a, rt, c, o);
    }
    obj_free(&b->base);
}

static void watch_ended(void *arg, int code)
{
    api_count(arg, code);
}

static void do_watch(api_t *a, struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                     const uint8_t *msg, size_t len)
{
    Coracle__V1__ListRequest *req = (void *)decode_or_fail(
        rt, c, &coracle__v1__list_request__descriptor, "ListRequest", msg, len);
    if (!req)
        return;
    if (stage_authorize(a, rt, c, u, req->namespace_, NULL, req->fieldselector) == 0) {
        if (h2s_call_claim(c, u->id, auth_max_watches(a->cfg.auth)) < 0)
            api_failf(rt, c, GRPC_RESOURCE_EXHAUSTED,
                      "too many long-running requests for user \"%s\" (at most %u)", u->name,
                      auth_max_watches(a->cfg.auth));
        else
            watch_start(a->hub, c, rt->k, req, watch_ended, rt);
    }
    obj_free(&req->base);
}

/* Get and List decode the request once more in read.c; these small messages cost little. */
static void do_get(api_t *a, struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                   const uint8_t *msg, size_t len)
{
    Coracle__V1__GetRequest *req = (void *)decode_or_fail(
        rt, c, &coracle__v1__get_request__descriptor, "GetRequest", msg, len);
    if (!req)
        return;
    const char *ns = req->namespace_ && *req->namespace_ ? req->namespace_ : "default";
    if (stage_authorize(a, rt, c, u, ns, req->name, NULL) == 0)
        read_get(rt, a->st, c, msg, len);
    obj_free(&req->base);
}

static void do_list(api_t *a, struct api_route *rt, h2s_call_t *c, const struct auth_user *u,
                    const uint8_t *msg, size_t len)
{
    Coracle__V1__ListRequest *req = (void *)decode_or_fail(
        rt, c, &coracle__v1__list_request__descriptor, "ListRequest", msg, len);
    if (!req)
        return;
    if (stage_authorize(a, rt, c, u, req->namespace_, NULL, req->fieldselector) == 0)
        read_list(rt, a->st, a->reads, a->base, c, msg, len);
    obj_free(&req->base);
}

static void handle(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct api_route *rt = arg;
    api_t *a = rt->api;
    a->inflight++;
    if (rt->verb == API_WATCH)
        a->watching++;
    h2s_call_set_data(c, (void *)(intptr_t)mono_ns());
    if (a->stopping) {
        api_fail(rt, c, GRPC_UNAVAILABLE, "server shutting down");
        return;
    }
    struct auth_user u;
    /* authorization needs the decoded request (namespace, name, field
     * selector): each verb calls stage_authorize_req after decoding */
    if (stage_authenticate(rt, c, &u) < 0)
        return;
    switch (rt->verb) {
    case API_CREATE:
        do_create(a, rt, c, &u, msg, len);
        break;
    case API_GET:
        do_get(a, rt, c, &u, msg, len);
        break;
    case API_LIST:
        do_list(a, rt, c, &u, msg, len);
        break;
    case API_UPDATE:
        do_update(a, rt, c, &u, msg, len, false);
        break;
    case API_STATUS:
        do_update(a, rt, c, &u, msg, len, true);
        break;
    case API_DELETE:
        do_delete(a, rt, c, &u, msg, len);
        break;
    case API_WATCH:
        do_watch(a, rt, c, &u, msg, len);
        break;
    case API_BIND:
        do_bind(a, rt, c, &u, msg, len);
        break;
    default:
        api_fail(rt, c, GRPC_UNIMPLEMENTED, "unknown method");
    }
    a->aud.c = NULL;
}

/* ---- internal writers: event TTL, node lifecycle ---- */

static bool single_leading(const struct single *x);

static void expire_event(void *arg, const char *ns, const char *name)
{
    api_t *a = arg;
    if (a->ev_single && !single_leading(a->ev_single))
        return; /* another apiserver expires them; the next tick asks again */
    struct apply_op *o = apply_op_new(&kind_event, APPLY_EVENT_EXPIRE, ns, name);
    o->ttl_ns = a->cfg.event_ttl_s * 1000000000LL;
    stage_store(a, NULL, NULL, o);
}

static void mark_node(void *arg, const char *node)
{
    stage_store(arg, NULL, NULL, apply_op_new(&kind_node, APPLY_NODE_UNKNOWN, NULL, node));
}

static void mark_pod(void *arg, const char *ns, const char *name, const char *node)
{
    struct apply_op *o = apply_op_new(&kind_pod, APPLY_POD_NOTREADY, ns, name);
    o->node = xstrdup(node);
    stage_store(arg, NULL, NULL, o);
}

/* The namespace lifecycle's writes (nslife.h). */
static void ns_create(void *arg, const struct kind *k, ProtobufCMessage *obj)
{
    admit_defaults(k, obj);
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    struct apply_op *o = apply_op_new(k, APPLY_CREATE, m->namespace_, m->name);
    o->obj = obj;
    stage_store(arg, NULL, NULL, o);
}

static void kube_put(void *arg, const struct kind *k, ProtobufCMessage *obj, bool update)
{
    api_t *a = arg;
    admit_defaults(k, obj);
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    struct apply_op *o =
        apply_op_new(k, update ? APPLY_UPDATE : APPLY_CREATE, m->namespace_, m->name);
    o->obj = obj;
    submit(a, o);
}

static void ns_remove(void *arg, const struct kind *k, const char *ns, const char *name)
{
    /* as Kubernetes' namespace deleter: Background whatever the kind's default */
    struct apply_op *o = apply_op_new(k, APPLY_DELETE, ns, name);
    o->gc = GCPOLICY_BACKGROUND;
    stage_store(arg, NULL, NULL, o);
}

static void ns_finish(void *arg, const char *name, const char *uid)
{
    struct apply_op *o = apply_op_new(&kind_namespace, APPLY_NS_REMOVE, NULL, name);
    o->pre_uid = xstrdup(uid);
    stage_store(arg, NULL, NULL, o);
}

/* The default roles' writes (rbac.h). */
static void rbac_create(void *arg, const struct kind *k, ProtobufCMessage *obj)
{
    ns_create(arg, k, obj);
}

static void rbac_update(void *arg, const struct kind *k, ProtobufCMessage *obj)
{
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    struct apply_op *o = apply_op_new(k, APPLY_UPDATE, m->namespace_, m->name);
    o->obj = obj;
    stage_store(arg, NULL, NULL, o);
}

/*
 * As kube-apiserver's rbac/bootstrap-roles hook: the defaults are created
 * or reconciled, then checked again a second later (once the writes are
 * back through the listener) until a pass has nothing to write.
 */
static void rbac_boot(evutil_socket_t fd, short what, void *arg)
{
    api_t *a = arg;
    (void)fd, (void)what;
    if (a->stopping)
        return;
    struct rbac_boot_ops ops = {rbac_create, rbac_update, a};
    if (!store_unhealthy(a->st) && rbac_boot_reconcile(a->rbac, &ops) == 0) {
        if (!a->rbac_ready)
            log_info("rbac: the default roles and bindings are in place");
        a->rbac_ready = true;
        return;
    }
    struct timeval tv = {1, 0};
    evtimer_add(a->rbac_boot, &tv);
}

int api_rbac_admit(api_t *a, const struct auth_user *u, const struct kind *k,
                   const ProtobufCMessage *obj, int *code, char **msg)
{
    *msg = NULL;
    if (!a->rbac)
        return 0;
    return rbac_admit(a->rbac, a->cfg.auth, u, k, obj, code, msg);
}

static void on_change(const struct store_change *ch, void *arg)
{
    api_t *a = arg;
    if (a->rbac)
        rbac_on_change(a->rbac, ch);
    if (a->nsl)
        nslife_on_change(a->nsl, ch);
    psa_on_change(a->psa, ch);
    if (ch->type == STORE_RESYNC) {
        /* ended with OK, watchers resume from their revision: replayed from the
         * rebuilt log, or OUT_OF_RANGE if it is older, so their clients re-list */
        watch_hub_end_all(a->hub);
        return;
    }
    watch_on_change(a->hub, ch);
    if (a->events)
        events_on_change(a->events, ch);
    if (a->nl)
        nodelife_on_change(a->nl, ch);
}

/* ---- singletons among the apiservers on one etcd ----
 *
 * Node lifecycle and event expiry write compare-and-set, so two apiservers
 * doing them at once would not corrupt anything, but each would do the
 * work. As kube-controller-manager's controllers, each runs on the holder
 * of a Lease in kube-system (leader.c, client-go's semantics: 15 s, renew
 * within 10 s, every 2 s), which this apiserver reads and writes through
 * its own store as any other Lease. A holder that loses its Lease stops
 * the work and becomes a candidate again (a daemon that elects exits
 * instead; the apiserver has other work to go on with). A holder that
 * stops gives its Leases up.
 */

struct single {
    api_t *a;
    const char *name; /* the Lease's */
    leader_t *l;
    bool leading;
    void (*set)(api_t *a, bool on); /* starts or stops the work */
    struct event *again;            /* a new candidacy after the last one ended */
};

/* A Leases call of an elector, in the store: answered through the op's owner. */
struct single_call {
    leader_io_done_fn done;
    void *arg;
    bool cancelled;
};

static void single_answer(struct apply_op *o, int code, const char *msg, const void *val,
                          size_t len)
{
    struct single_call *c = o->owner;
    o->owner = NULL;
    if (!c)
        return;
    if (!c->cancelled)
        c->done(c->arg, code, msg, val, len);
    free(c);
}

static const struct apply_owner single_owner = {single_answer, NULL};

struct single_get {
    leader_io_done_fn done;
    void *arg;
};

static void single_got(const void *val, size_t len, void *arg)
{
    struct single_get *g = arg;
    g->done(g->arg, GRPC_OK, NULL, val, len);
}

static void *single_call(void *io_arg, const char *method, const ProtobufCMessage *req,
                         leader_io_done_fn done, void *arg)
{
    api_t *a = io_arg;
    if (!strcmp(method, "Get")) {
        const Coracle__V1__GetRequest *g = (const void *)req;
        struct single_get sg = {done, arg};
        int r = read_object(a->st, &kind_lease, g->namespace_, g->name, single_got, &sg);
        if (r == STORE_ENOTFOUND)
            done(arg, GRPC_NOT_FOUND, "not found", NULL, 0);
        else if (r < 0)
            done(arg, GRPC_UNAVAILABLE, store_strerror(r), NULL, 0);
        return NULL;
    }
    ProtobufCMessage *obj = obj_clone(req);
    bool create = !strcmp(method, "Create");
    if (create)
        admit_defaults(&kind_lease, obj);
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    struct apply_op *o =
        apply_op_new(&kind_lease, create ? APPLY_CREATE : APPLY_UPDATE, m->namespace_, m->name);
    o->obj = obj;
    struct single_call *c = xcalloc(1, sizeof(*c));
    *c = (struct single_call){done, arg, false};
    o->ow = &single_owner;
    o->owner = c;
    a->inflight++; /* the drain at exit waits for it: a Lease's release is the last */
    o->counted = 1;
    submit(a, o);
    return c;
}

static void single_cancel(void *io_arg, void *call)
{
    (void)io_arg;
    ((struct single_call *)call)->cancelled = true; /* freed when its op is answered */
}

static void single_event(void *io_arg, const ProtobufCMessage *ev)
{
    ns_create(io_arg, &kind_event, obj_clone(ev));
}

static void single_started(void *arg)
{
    struct single *x = arg;
    x->leading = true;
    x->set(x->a, true);
}

static void single_stopped(void *arg)
{
    struct single *x = arg;
    x->leading = false;
    x->set(x->a, false);
    event_active(x->again, EV_TIMEOUT, 0); /* not here: x->l is in its callback */
}

static void single_candidate(struct single *x)
{
    struct leader_cfg lc = {.ns = "kube-system",
                            .name = x->name,
                            .identity = x->a->cfg.identity,
                            .component = "coracle-apiserver",
                            .lease_duration_ms = 15000,
                            .renew_deadline_ms = 10000,
                            .retry_period_ms = 2000,
                            .on_started = single_started,
                            .on_stopped = single_stopped,
                            .arg = x};
    struct leader_io io = {single_call, single_cancel, single_event, x->a};
    char *err = NULL;
    x->l = leader_new_io(x->a->base, &io, &lc, &err);
    if (!x->l)
        fatal("%s", err); /* the durations above are valid */
    leader_start(x->l);
}

static void single_again(evutil_socket_t fd, short what, void *arg)
{
    struct single *x = arg;
    (void)fd, (void)what;
    leader_free(x->l);
    single_candidate(x);
}

static struct single *single_new(api_t *a, const char *name, void (*set)(api_t *a, bool on))
{
    struct single *x = xcalloc(1, sizeof(*x));
    *x = (struct single){.a = a, .name = name, .set = set};
    x->again = evtimer_new(a->base, single_again, x);
    set(a, false);
    single_candidate(x);
    return x;
}

static void single_free(struct single *x)
{
    if (!x)
        return;
    leader_free(x->l);
    event_free(x->again);
    free(x);
}

/* At exit: the Lease given up if held (client-go's ReleaseOnCancel), so that a peer takes
 * over at its next try rather than once the Lease ran out; the drain waits for the write. */
static void single_stop(struct single *x)
{
    if (x)
        leader_release(x->l, 0);
    single_free(x);
}

static bool single_leading(const struct single *x)
{
    return x->leading;
}

static void nodelife_set(api_t *a, bool on)
{
    if (a->nl)
        nodelife_set_active(a->nl, on);
}

static void expiry_set(api_t *a, bool on)
{
    (void)a, (void)on; /* expire_event asks single_leading */
}

/* ---- /healthz, /readyz, /metrics ---- */

static void metrics(api_t *a, char **body, size_t *len)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    fprintf(f, "# HELP coracle_apiserver_requests_total gRPC calls answered, by method and "
               "status code.\n# TYPE coracle_apiserver_requests_total counter\n");
    for (size_t i = 0; i < a->nroutes; i++)
        for (int code = 0; code < 17; code++)
            if (a->routes[i].codes[code])
                fprintf(f,
                        "coracle_apiserver_requests_total{method=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                        a->routes[i].path, grpc_code_name(code), a->routes[i].codes[code]);
    fprintf(f, "# HELP coracle_apiserver_request_duration_seconds Unary gRPC call latency, from "
               "the handler to the answer (writes: once durable).\n"
               "# TYPE coracle_apiserver_request_duration_seconds histogram\n");
    for (size_t i = 0; i < a->nroutes; i++)
        if (a->routes[i].lat.count) {
            char *l = xasprintf("method=\"%s\"", a->routes[i].path);
            obs_hist_write(f, "coracle_apiserver_request_duration_seconds", l, &a->routes[i].lat);
            free(l);
        }
    rest_metrics(a->rest, f);
    if (a->cfg.metrics_extra)
        a->cfg.metrics_extra(f, a->cfg.metrics_arg);
    struct h2s_stats hs;
    h2s_get_stats(a->srv, &hs);
    /* long-running requests (watches, logs, exec) are in neither, as in Kubernetes */
    fprintf(f,
            "# HELP coracle_apiserver_inflight_requests gRPC calls and writes being served.\n"
            "# TYPE coracle_apiserver_inflight_requests gauge\n"
            "coracle_apiserver_inflight_requests %" PRId64 "\n"
            "# HELP apiserver_current_inflight_requests Requests holding a slot of "
            "--max-requests-inflight (readOnly) or --max-mutating-requests-inflight (mutating).\n"
            "# TYPE apiserver_current_inflight_requests gauge\n"
            "apiserver_current_inflight_requests{request_kind=\"mutating\"} %" PRIu64 "\n"
            "apiserver_current_inflight_requests{request_kind=\"readOnly\"} %" PRIu64 "\n",
            a->inflight - a->watching, hs.inflight_mutating, hs.inflight_read);
    struct watch_stats ws;
    watch_get_stats(a->hub, &ws);
    fprintf(f,
            "# TYPE coracle_apiserver_watchers gauge\ncoracle_apiserver_watchers %" PRIu64 "\n"
            "# TYPE coracle_apiserver_watch_events_sent_total counter\n"
            "coracle_apiserver_watch_events_sent_total %" PRIu64 "\n"
            "# TYPE coracle_apiserver_watch_slow_ended_total counter\n"
            "coracle_apiserver_watch_slow_ended_total %" PRIu64 "\n"
            "# HELP coracle_apiserver_watch_memory_bytes What unsent watch events hold "
            "(the --watch-memory-limit budget counts this).\n"
            "# TYPE coracle_apiserver_watch_memory_bytes gauge\n"
            "coracle_apiserver_watch_memory_bytes %" PRIu64 "\n"
            "# HELP coracle_apiserver_watch_pending_changes Changes not yet fanned out to "
            "every watcher.\n"
            "# TYPE coracle_apiserver_watch_pending_changes gauge\n"
            "coracle_apiserver_watch_pending_changes %" PRIu64 "\n"
            "# HELP coracle_apiserver_watchers_node_indexed Pod watchers selecting one "
            "spec.nodeName, found through the index by node (a change reaches only its "
            "node's).\n"
            "# TYPE coracle_apiserver_watchers_node_indexed gauge\n"
            "coracle_apiserver_watchers_node_indexed %" PRIu64 "\n",
            ws.watchers, ws.events_sent, ws.cut_slow, ws.held, ws.pending, ws.by_node);
    if (a->srv)
        fprintf(f,
                "# HELP coracle_apiserver_output_buffered_bytes Framed bytes waiting for room "
                "in the client sockets.\n"
                "# TYPE coracle_apiserver_output_buffered_bytes gauge\n"
                "coracle_apiserver_output_buffered_bytes %" PRIu64 "\n",
                h2s_out_buffered(a->srv));
    if (a->tun)
        fprintf(f,
                "# TYPE coracle_apiserver_tunnel_nodes gauge\ncoracle_apiserver_tunnel_nodes %zu\n",
                tun_hub_nodes(a->tun));
    struct store_stats ss;
    store_get_stats(a->st, &ss);
    fprintf(f,
            "# TYPE coracle_store_revision gauge\ncoracle_store_revision %" PRIu64 "\n"
            "# TYPE coracle_store_compacted_revision gauge\n"
            "coracle_store_compacted_revision %" PRIu64 "\n"
            "# TYPE coracle_store_commits_total counter\ncoracle_store_commits_total %" PRIu64 "\n"
            "# TYPE coracle_store_ops_total counter\ncoracle_store_ops_total %" PRIu64 "\n"
            "# TYPE coracle_store_fsync_seconds_total counter\n"
            "coracle_store_fsync_seconds_total %.6f\n"
            "# TYPE coracle_store_map_size_bytes gauge\ncoracle_store_map_size_bytes %" PRIu64 "\n"
            "# TYPE coracle_store_map_used_bytes gauge\ncoracle_store_map_used_bytes %" PRIu64 "\n"
            "# TYPE coracle_store_batch_max gauge\ncoracle_store_batch_max %" PRIu64 "\n"
            "# TYPE coracle_store_wal_record_bytes_total counter\n"
            "coracle_store_wal_record_bytes_total %" PRIu64 "\n"
            "# TYPE coracle_store_wal_written_bytes_total counter\n"
            "coracle_store_wal_written_bytes_total %" PRIu64 "\n"
            "# TYPE coracle_store_wal_size_bytes gauge\ncoracle_store_wal_size_bytes %" PRIu64 "\n"
            "# TYPE coracle_store_checkpoints_total counter\n"
            "coracle_store_checkpoints_total %" PRIu64 "\n"
            "# TYPE coracle_store_checkpoint_written_bytes_total counter\n"
            "coracle_store_checkpoint_written_bytes_total %" PRIu64 "\n"
            "# TYPE coracle_store_loop_commits_total counter\n"
            "coracle_store_loop_commits_total %" PRIu64 "\n",
            ss.rev, ss.compacted, ss.commits, ss.ops, (double)ss.fsync_ns_total / 1e9, ss.map_size,
            ss.map_used, ss.batch_max, ss.wal_rec_bytes, ss.wal_write_bytes, ss.wal_size,
            ss.checkpoints, ss.checkpoint_bytes, ss.loop_commits);
    fprintf(f, "# HELP coracle_store_commit_batch_size Operations per durable commit.\n"
               "# TYPE coracle_store_commit_batch_size histogram\n");
    obs_hist_write(f, "coracle_store_commit_batch_size", NULL, &a->batch);
    fprintf(f, "# HELP coracle_store_fsync_duration_seconds Time to make a commit durable.\n"
               "# TYPE coracle_store_fsync_duration_seconds histogram\n");
    obs_hist_write(f, "coracle_store_fsync_duration_seconds", NULL, &a->fsync);
    fprintf(f,
            "# TYPE coracle_http2_connections gauge\ncoracle_http2_connections %" PRIu64 "\n"
            "# TYPE coracle_http2_connections_total counter\n"
            "coracle_http2_connections_total %" PRIu64 "\n"
            "# TYPE coracle_http2_calls gauge\ncoracle_http2_calls %" PRIu64 "\n"
            "# TYPE coracle_http2_calls_total counter\ncoracle_http2_calls_total %" PRIu64 "\n"
            "# TYPE coracle_http2_received_bytes_total counter\n"
            "coracle_http2_received_bytes_total %" PRIu64 "\n"
            "# TYPE coracle_http2_sent_bytes_total counter\n"
            "coracle_http2_sent_bytes_total %" PRIu64 "\n",
            hs.conns_open, hs.conns_total, hs.calls_open, hs.calls_total, hs.bytes_in,
            hs.bytes_out);
    /* hostile or overloading clients turned away (limits: doc/security.md) */
    fprintf(f,
            "# HELP coracle_http2_refused_total Connections and calls refused by the limits.\n"
            "# TYPE coracle_http2_refused_total counter\n"
            "coracle_http2_refused_total{reason=\"max_connections\"} %" PRIu64 "\n"
            "coracle_http2_refused_total{reason=\"tls_handshake\"} %" PRIu64 "\n"
            "coracle_http2_refused_total{reason=\"slow_client\"} %" PRIu64 "\n"
            "coracle_http2_refused_total{reason=\"frame_flood\"} %" PRIu64 "\n"
            "coracle_http2_refused_total{reason=\"inflight\"} %" PRIu64 "\n",
            hs.conns_refused, hs.tls_failures, hs.slow_closed, hs.flood_closed,
            hs.inflight_rejected);
    fclose(f);
    *body = buf;
    *len = sz;
}

static void http_answer(const char *path, int *status, const char **ctype, char **body, size_t *len,
                        void *arg)
{
    api_t *a = arg;
    *ctype = "text/plain; charset=utf-8";
    size_t pl = strcspn(path, "?");
    if (pl == 8 && !strncmp(path, "/healthz", 8)) {
        *status = 200;
        *body = xstrdup("ok");
    } else if (pl == 7 && !strncmp(path, "/readyz", 7)) {
        const char *why = a->stopping ? "shutting down" : store_unhealthy(a->st);
        if (!why && a->rbac && !a->rbac_ready)
            why = "[-]poststarthook/rbac/bootstrap-roles failed: not finished";
        *status = why ? 503 : 200;
        *body = why ? xasprintf("%s\n", why) : xstrdup("ok");
    } else if (pl == 8 && !strncmp(path, "/metrics", 8)) {
        *status = 200;
        *ctype = "text/plain; version=0.0.4; charset=utf-8";
        metrics(a, body, len);
        return;
    } else {
        *status = 404;
        *body = xstrdup("404 page not found\n");
    }
    *len = strlen(*body);
}

/* The plain endpoints, before the REST API's paths: /healthz, /readyz, /metrics. */
static bool http(h2s_req_t *r, void *arg)
{
    int status;
    const char *ctype;
    char *body;
    size_t len;
    http_answer(h2s_req_path(r), &status, &ctype, &body, &len, arg);
    if (status == 404) {
        free(body);
        return false;
    }
    h2s_req_respond(r, status, ctype, body, len);
    free(body);
    return true;
}

/* ---- setup ---- */

api_t *api_new(struct event_base *base, store_t *st, h2s_t *srv, const struct api_config *cfg)
{
    api_t *a = xcalloc(1, sizeof(*a));
    a->base = base;
    a->st = st;
    a->srv = srv;
    a->cfg = *cfg;
    if (a->cfg.event_ttl_s <= 0)
        a->cfg.event_ttl_s = 3600;
    a->reads = rpool_new(base);
    struct watch_config wc = {cfg->watch_queue_bytes, cfg->bookmark_interval_s,
                              cfg->watch_memory_limit, srv, a->reads};
    a->hub = watch_hub_new(base, st, &wc);
    a->events = events_new(base, st, a->cfg.event_ttl_s, expire_event, a);
    struct nodelife_ops nops = {mark_node, mark_pod, a};
    a->nl = nodelife_new(base, st, cfg->node_grace_s, &nops);
    if (cfg->elect_singletons) {
        a->nl_single = single_new(a, "node-lifecycle-controller", nodelife_set);
        a->ev_single = single_new(a, "coracle-apiserver-event-ttl", expiry_set);
    }
    if (cfg->auth && auth_rbac_on(cfg->auth)) {
        a->rbac = rbac_new(st);
        auth_set_rbac(cfg->auth, a->rbac);
        a->rbac_boot = evtimer_new(base, rbac_boot, a);
        event_active(a->rbac_boot, EV_TIMEOUT, 0);
    }
    store_set_listener(st, on_change, a);
    struct nslife_ops nsops = {ns_create, ns_remove, ns_finish, a};
    a->nsl = nslife_new(base, st, cfg->implicit_namespaces, &nsops);
    a->psa = psa_new(st, &cfg->pod_security);
    obs_hist_init(&a->batch, batch_bounds, ARRAY_SIZE(batch_bounds));
    obs_hist_init(&a->fsync, latency_bounds, ARRAY_SIZE(latency_bounds));
    a->stats_ev = event_new(base, -1, 0, stats_sample, a);

    a->routes = xcalloc(KINDS_N * API_NVERBS, sizeof(*a->routes));
    for (size_t i = 0; kinds_all[i]; i++) {
        const struct kind *k = kinds_all[i];
        for (int v = 0; v < API_NVERBS; v++) {
            if (!api_has_verb(k, (enum api_verb)v))
                continue;
            if (v == API_LOG || v == API_EXEC)
                continue; /* the kubelet tunnel (tunnel.c) serves them */
            struct api_route *rt = &a->routes[a->nroutes++];
            rt->api = a;
            rt->k = k;
            rt->verb = (enum api_verb)v;
            rt->path = xasprintf("/%s/%s", k->service, verb_names[v]);
            obs_hist_init(&rt->lat, latency_bounds, ARRAY_SIZE(latency_bounds));
            enum h2s_method_kind mk = v == API_WATCH || v == API_LOG ? H2S_SERVER_STREAM
                                      : v == API_EXEC                ? H2S_BIDI
                                                                     : H2S_UNARY;
            h2s_route(srv, rt->path, mk, handle, rt);
        }
    }
    struct rest_config rc = {.st = st,
                             .reads = a->reads,
                             .hub = a->hub,
                             .auth = cfg->auth,
                             .plain = http,
                             .plain_arg = a,
                             .api = a,
                             .sat = cfg->sat,
                             .audit = cfg->audit};
    a->rest = rest_new(&rc);
    a->alloc = svcalloc_new(st, &cfg->svc);
    h2s_set_req_handler(srv, rest_handle, a->rest);
    h2s_set_req_long_running(srv, rest_long_running);
    return a;
}

void api_set_tunnel(api_t *a, struct tun_hub *t)
{
    a->tun = t;
    struct rest_streams rst = {t, a->base, a->cfg.stream_setup_timeout_s,
                               a->cfg.stream_idle_timeout_s};
    rest_set_streams(a->rest, &rst);
}

void api_set_kubernetes(api_t *a, const char *ip, int port)
{
    char first[16];
    svcalloc_first_ip(&a->cfg.svc, first);
    struct svckube_config kc = {ip, port, first};
    struct svckube_ops ops = {kube_put, a};
    a->kube = svckube_new(a->base, a->st, &kc, &ops);
}

int64_t api_inflight(const api_t *a)
{
    return a->inflight;
}

void api_stop(api_t *a)
{
    a->stopping = true;
    holds_end(a);
    watch_hub_end_all(a->hub);
    single_stop(a->nl_single);
    single_stop(a->ev_single);
    a->nl_single = a->ev_single = NULL;
    /* Their timers write through the store, which closes next: stop them now. */
    nodelife_free(a->nl);
    a->nl = NULL;
    nslife_free(a->nsl);
    a->nsl = NULL;
    if (a->rbac_boot)
        event_del(a->rbac_boot);
    events_stop(a->events);
    svckube_free(a->kube);
    a->kube = NULL;
}

void api_end_reads(api_t *a)
{
    rpool_end(a->reads);
}

void api_free(api_t *a)
{
    if (!a)
        return;
    rpool_free(a->reads); /* its jobs may hold watchers */
    rest_free(a->rest);
    svcalloc_free(a->alloc);
    watch_hub_free(a->hub);
    event_free(a->stats_ev);
    events_free(a->events);
    single_free(a->nl_single);
    single_free(a->ev_single);
    if (a->nl)
        nodelife_free(a->nl);
    nslife_free(a->nsl);
    if (a->rbac) {
        auth_set_rbac(a->cfg.auth, NULL);
        rbac_free(a->rbac);
        event_free(a->rbac_boot);
    }
    psa_free(a->psa);
    for (size_t i = 0; i < a->nroutes; i++) {
        free(a->routes[i].path);
        obs_hist_free(&a->routes[i].lat);
    }
    free(a->routes);
    obs_hist_free(&a->batch);
    obs_hist_free(&a->fsync);
    free(a);
}
