/*
 * cm: shared informers, work queues, writes and expectations for the
 * controllers. See cm.h.
 */
#include "config.h"

#include "cm.h"
#include "grpc.h"
#include "pb.h"
#include "sel.h"
#include "smap.h"
#include "buf.h"
#include "util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_FIRST_MS 5
#define BACKOFF_MAX_MS 60000
#define EXPECT_TTL_NS (300ll * 1000000000ll)

/* One kind's shared informer, its subscribers and its owner index. */
struct share {
    const struct kind *k;
    inf_t *inf;
    struct inf_handlers *subs;
    size_t n_subs;
    /* "ns/ownerUID" -> smap of the keys owned (value: the key's map entry, unused) */
    smap_t *owners;
    /* key -> "ns/ownerUID" it is indexed under (malloc'd), for moves and deletes */
    smap_t *owner_of;
    cm_t *cm;
};

struct delayed {
    ctrl_t *c;
    char *key;
    struct event *ev;
    int64_t when_ns;
};

struct expectation {
    int adds, dels;
    int64_t at_ns;
};

struct ctrl {
    const struct ctrl_def *def;
    cm_t *cm;
    void *state;
    char name[64];
    int workers;
    /* the queue: a FIFO of keys; queued holds each key once */
    char **fifo;
    size_t head, tail, cap;
    smap_t *queued;           /* keys waiting in fifo */
    smap_t *processing;       /* keys being synced */
    smap_t *dirty;            /* keys enqueued while being synced */
    smap_t *fails;            /* key -> failures in a row (as an integer in the pointer) */
    smap_t *delayed;          /* key -> struct delayed */
    smap_t *expect;           /* key -> struct expectation */
    struct owned_sub **owned; /* cm_on_owned's handlers' arguments */
    size_t n_owned;
    uint64_t syncs, sync_errors;
};

/* What cm_on_owned's handlers need: the controller and the kind of owner it is. */
struct owned_sub {
    ctrl_t *c;
    const struct kind *owner;
};

/* A write waiting for room (max_inflight). */
struct pending_call {
    char *path;
    uint8_t *body;
    size_t len;
    const ProtobufCMessageDescriptor *resp_desc;
    cm_done_fn done;
    void *arg;
    struct pending_call *next;
};

struct cm {
    struct event_base *base;
    gcl_t *g;
    char *instance; /* events' reportingInstance */
    bool leading, started;
    bool closing; /* cm_free: every call ends at once, CANCELLED */
    int max_inflight, inflight;
    int max_endpoints_per_slice;
    struct pending_call *wait_head, *wait_tail;
    struct share shares[KINDS_N];
    ctrl_t **ctrls;
    size_t n_ctrls;
    struct event *kick; /* runs the queues from the loop */
    uint64_t writes, write_errors, events_seq;
    char *root_ca;
    char *cluster_cidr; /* node IPAM: NULL off */
    int node_cidr_mask_size;
};

static void kick(cm_t *cm)
{
    if (cm->started && cm->leading)
        event_active(cm->kick, 0, 0);
}

static size_t kind_slot(const struct kind *k)
{
    for (size_t i = 0; kinds_all[i]; i++)
        if (kinds_all[i] == k)
            return i;
    fatal("cm: a kind outside the table");
}

/* ------------------------------------------------------------ owner index */

const Coracle__V1__OwnerReference *cm_controller_of(const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->n_ownerreferences; i++) {
        const Coracle__V1__OwnerReference *o = m->ownerreferences[i];
        if (o->has_controller && o->controller && o->uid)
            return o;
    }
    return NULL;
}

/* The owner index's key of obj: "ns/uid" of its controller, "ns/" for an orphan. */
static char *owner_key(const ProtobufCMessage *obj)
{
    const Coracle__V1__OwnerReference *o = cm_controller_of(obj);
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    return xconcat(m && m->namespace_ ? m->namespace_ : "", "/", o ? o->uid : "", NULL);
}

static void index_del(struct share *sh, const char *key)
{
    char *ok = smap_del(sh->owner_of, key);
    if (!ok)
        return;
    smap_t *set = smap_get(sh->owners, ok);
    if (set) {
        smap_del(set, key);
        if (!smap_count(set))
            smap_free(smap_del(sh->owners, ok), NULL);
    }
    free(ok);
}

static void index_put(struct share *sh, const ProtobufCMessage *obj)
{
    char *key = cm_key(obj), *ok = owner_key(obj);
    const char *was = smap_get(sh->owner_of, key);
    if (was && !strcmp(was, ok)) {
        free(ok);
        free(key);
        return;
    }
    index_del(sh, key);
    smap_t *set = smap_get(sh->owners, ok);
    if (!set) {
        set = smap_new();
        smap_put(sh->owners, ok, set);
    }
    smap_put(set, key, sh);
    smap_put(sh->owner_of, key, ok);
    free(key);
}

static void sh_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct share *sh = arg;
    index_put(sh, obj);
    for (size_t i = 0; i < sh->n_subs; i++)
        if (sh->subs[i].on_add)
            sh->subs[i].on_add(inf, obj, sh->subs[i].arg);
}

static void sh_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    struct share *sh = arg;
    index_put(sh, obj);
    for (size_t i = 0; i < sh->n_subs; i++)
        if (sh->subs[i].on_update)
            sh->subs[i].on_update(inf, old, obj, sh->subs[i].arg);
}

static void sh_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct share *sh = arg;
    char *key = cm_key(obj);
    index_del(sh, key);
    free(key);
    for (size_t i = 0; i < sh->n_subs; i++)
        if (sh->subs[i].on_delete)
            sh->subs[i].on_delete(inf, obj, sh->subs[i].arg);
}

static void sh_synced(inf_t *inf, void *arg)
{
    struct share *sh = arg;
    for (size_t i = 0; i < sh->n_subs; i++)
        if (sh->subs[i].on_synced)
            sh->subs[i].on_synced(inf, sh->subs[i].arg);
    log_info("informer %s synced: %zu objects", sh->k->resource, inf_count(inf));
    kick(sh->cm);
}

void cm_on(cm_t *cm, const struct kind *k, const struct inf_handlers *h)
{
    struct share *sh = &cm->shares[kind_slot(k)];
    if (!sh->inf) {
        struct inf_handlers own = {sh_add, sh_update, sh_delete, sh_synced, sh};
        sh->k = k;
        sh->cm = cm;
        struct inf_opts io = {.compact = true};
        sh->inf = inf_new(cm->base, cm->g, k, &io, &own);
        sh->owners = smap_new();
        sh->owner_of = smap_new();
    }
    if (h) {
        sh->subs = xrealloc(sh->subs, (sh->n_subs + 1) * sizeof(*sh->subs));
        sh->subs[sh->n_subs++] = *h;
    }
}

inf_t *cm_informer(const cm_t *cm, const struct kind *k)
{
    return cm->shares[kind_slot(k)].inf;
}

const ProtobufCMessage *cm_get(const cm_t *cm, const struct kind *k, const char *ns,
                               const char *name)
{
    inf_t *inf = cm_informer(cm, k);
    return inf ? inf_get(inf, ns, name) : NULL;
}

struct owned_walk {
    const struct share *sh;
    int (*fn)(const ProtobufCMessage *obj, void *arg);
    void *arg;
};

static int owned_one(const char *key, void *val, void *arg)
{
    struct owned_walk *w = arg;
    const ProtobufCMessage *obj = inf_get_key(w->sh->inf, key);
    return obj ? w->fn(obj, w->arg) : 0;
}

int cm_owned(const cm_t *cm, const struct kind *k, const char *ns, const char *owner_uid,
             int (*fn)(const ProtobufCMessage *obj, void *arg), void *arg)
{
    const struct share *sh = &cm->shares[kind_slot(k)];
    if (!sh->inf || !owner_uid)
        return 0;
    char *ok = xconcat(ns ? ns : "", "/", owner_uid, NULL);
    smap_t *set = smap_get(sh->owners, ok);
    free(ok);
    if (!set)
        return 0;
    /* fn may start writes but not change the informer: the set is stable here */
    struct owned_walk w = {sh, fn, arg};
    return smap_each(set, owned_one, &w);
}

struct owned_list {
    const ProtobufCMessage **v;
    size_t n, cap;
};

static int owned_add(const ProtobufCMessage *obj, void *arg)
{
    struct owned_list *l = arg;
    l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
    l->v[l->n++] = obj;
    return 0;
}

const ProtobufCMessage **cm_owned_list(const cm_t *cm, const struct kind *k, const char *ns,
                                       const char *owner_uid, size_t *n)
{
    struct owned_list l = {0};
    cm_owned(cm, k, ns, owner_uid, owned_add, &l);
    *n = l.n;
    return l.v;
}

char *cm_key(const ProtobufCMessage *obj)
{
    return inf_key_of(obj);
}

/*
 * For a change to obj: when its controller is of kind owner_kind, that
 * controller's key is enqueued, its expectations first lowered by adds
 * and dels.
 */
static void ctrl_enqueue_owner(ctrl_t *c, const ProtobufCMessage *obj, const char *owner_kind,
                               int adds, int dels)
{
    const Coracle__V1__OwnerReference *o = cm_controller_of(obj);
    if (!o || !o->kind || strcmp(o->kind, owner_kind) || !o->name)
        return;
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    char *key = xconcat(m->namespace_ ? m->namespace_ : "", "/", o->name, NULL);
    if (adds || dels)
        cm_observed(c, key, adds, dels);
    ctrl_enqueue(c, key);
    free(key);
}

static bool being_deleted(const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    return m && m->deletiontimestamp;
}

static void owned_added(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct owned_sub *o = arg;
    ctrl_enqueue_owner(o->c, obj, o->owner->kind, 1, 0);
}

static void owned_updated(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                          void *arg)
{
    struct owned_sub *o = arg;
    const Coracle__V1__OwnerReference *a = cm_controller_of(old), *b = cm_controller_of(obj);
    if (a && (!b || strcmp(a->uid, b->uid)))
        ctrl_enqueue_owner(o->c, old, o->owner->kind, 0, 0);
    ctrl_enqueue_owner(o->c, obj, o->owner->kind, 0, being_deleted(obj) && !being_deleted(old));
}

static void owned_deleted(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct owned_sub *o = arg;
    ctrl_enqueue_owner(o->c, obj, o->owner->kind, 0, !being_deleted(obj));
}

void cm_on_owned(cm_t *cm, ctrl_t *c, const struct kind *k, const struct kind *owner)
{
    struct owned_sub *o = xcalloc(1, sizeof(*o));
    o->c = c;
    o->owner = owner;
    c->owned = xrealloc(c->owned, (c->n_owned + 1) * sizeof(*c->owned));
    c->owned[c->n_owned++] = o;
    struct inf_handlers h = {owned_added, owned_updated, owned_deleted, NULL, o};
    cm_on(cm, k, &h);
}

void ctrl_enqueue_added(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = cm_key(obj);
    ctrl_enqueue(arg, key);
    free(key);
}

void ctrl_enqueue_updated(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                          void *arg)
{
    ctrl_enqueue_added(inf, obj, arg);
}

const char *cm_uid(const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    return m && m->uid ? m->uid : "";
}

/* ---------------------------------------------------------------- queue */

static void fifo_push(ctrl_t *c, const char *key)
{
    if (c->tail - c->head == c->cap || !c->cap) {
        size_t n = c->tail - c->head, cap = c->cap ? 2 * c->cap : 64;
        char **f = xmalloc(cap * sizeof(*f));
        for (size_t i = 0; i < n; i++)
            f[i] = c->fifo[(c->head + i) % c->cap];
        free(c->fifo);
        c->fifo = f;
        c->cap = cap;
        c->head = 0;
        c->tail = n;
    }
    c->fifo[c->tail++ % c->cap] = xstrdup(key);
}

void ctrl_enqueue(ctrl_t *c, const char *key)
{
    if (smap_get(c->processing, key)) {
        smap_put(c->dirty, key, c);
        return;
    }
    if (smap_get(c->queued, key))
        return;
    smap_put(c->queued, key, c);
    fifo_push(c, key);
    kick(c->cm);
}

static void delayed_fire(evutil_socket_t fd, short what, void *arg)
{
    struct delayed *d = arg;
    ctrl_t *c = d->c;
    smap_del(c->delayed, d->key);
    ctrl_enqueue(c, d->key);
    event_free(d->ev);
    free(d->key);
    free(d);
}

void ctrl_enqueue_after(ctrl_t *c, const char *key, int64_t ms)
{
    if (ms <= 0) {
        ctrl_enqueue(c, key);
        return;
    }
    int64_t when = mono_ns() + ms * 1000000;
    struct delayed *d = smap_get(c->delayed, key);
    if (d) {
        if (d->when_ns <= when)
            return;
        event_del(d->ev);
    } else {
        d = xcalloc(1, sizeof(*d));
        d->c = c;
        d->key = xstrdup(key);
        d->ev = evtimer_new(c->cm->base, delayed_fire, d);
        smap_put(c->delayed, key, d);
    }
    d->when_ns = when;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(d->ev, &tv);
}

void ctrl_done(ctrl_t *c, const char *key_in, bool ok, const char *why)
{
    char *key = xstrdup(key_in); /* key_in may be the processing map's own copy */
    if (!smap_del(c->processing, key)) {
        log_err("%s: sync of %s ended twice", c->name, key);
        free(key);
        return;
    }
    uintptr_t n = (uintptr_t)smap_get(c->fails, key);
    if (ok) {
        if (n)
            smap_del(c->fails, key);
    } else {
        c->sync_errors++;
        n++;
        smap_put(c->fails, key, (void *)n);
        int64_t ms = BACKOFF_FIRST_MS;
        for (uintptr_t i = 1; i < n && ms < BACKOFF_MAX_MS; i++)
            ms *= 2;
        if (ms > BACKOFF_MAX_MS)
            ms = BACKOFF_MAX_MS;
        log_info("%s: error syncing %s (retry in %lld ms): %s", c->name, key, (long long)ms,
                 why ? why : "failed");
        ctrl_enqueue_after(c, key, ms);
    }
    if (smap_del(c->dirty, key))
        ctrl_enqueue(c, key);
    free(key);
    kick(c->cm);
}

static bool caches_synced(const cm_t *cm)
{
    for (size_t i = 0; i < KINDS_N; i++)
        if (cm->shares[i].inf && !inf_synced(cm->shares[i].inf))
            return false;
    return true;
}

/* Starts what syncs the workers allow, controller by controller. */
static void run_queues(evutil_socket_t fd, short what, void *arg)
{
    cm_t *cm = arg;
    if (!cm->leading || !caches_synced(cm))
        return;
    for (size_t i = 0; i < cm->n_ctrls; i++) {
        ctrl_t *c = cm->ctrls[i];
        while (c->head < c->tail && smap_count(c->processing) < (size_t)c->workers) {
            char *key = c->fifo[c->head++ % c->cap];
            smap_del(c->queued, key);
            smap_put(c->processing, key, c);
            c->syncs++;
            c->def->sync(c, key, c->state);
            free(key);
        }
        if (c->head == c->tail)
            c->head = c->tail = 0;
    }
}

/* --------------------------------------------------------------- writes */

struct call_ctx {
    cm_t *cm;
    const ProtobufCMessageDescriptor *resp_desc;
    ProtobufCMessage *resp;
    cm_done_fn done;
    void *arg;
};

static void start_call(cm_t *cm, struct pending_call *p);

static void call_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct call_ctx *x = arg;
    if (x->resp_desc && !x->resp)
        x->resp = protobuf_c_message_unpack(x->resp_desc, NULL, len, msg);
}

static void call_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct call_ctx *x = arg;
    cm_t *cm = x->cm;
    cm->inflight--;
    if (code != GRPC_OK)
        cm->write_errors++;
    if (x->done)
        x->done(code, message, code == GRPC_OK ? x->resp : NULL, x->arg);
    if (x->resp)
        protobuf_c_message_free_unpacked(x->resp, NULL);
    free(x);
    while (cm->wait_head && cm->inflight < cm->max_inflight) {
        struct pending_call *p = cm->wait_head;
        cm->wait_head = p->next;
        if (!cm->wait_head)
            cm->wait_tail = NULL;
        start_call(cm, p);
    }
}

static void start_call(cm_t *cm, struct pending_call *p)
{
    struct call_ctx *x = xcalloc(1, sizeof(*x));
    x->cm = cm;
    x->resp_desc = p->resp_desc;
    x->done = p->done;
    x->arg = p->arg;
    cm->inflight++;
    cm->writes++;
    gcl_call_raw(cm->g, p->path, p->body, p->len, call_msg, call_done, x, 30000);
    free(p->path);
    free(p->body);
    free(p);
}

static void queue_call(cm_t *cm, const char *path, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *resp_desc, cm_done_fn done, void *arg)
{
    if (cm->closing) {
        if (done)
            done(GRPC_CANCELLED, "the controller manager is stopping", NULL, arg);
        return;
    }
    struct pending_call *p = xcalloc(1, sizeof(*p));
    p->path = xstrdup(path);
    p->len = protobuf_c_message_get_packed_size(req);
    p->body = xmalloc(p->len ? p->len : 1);
    protobuf_c_message_pack(req, p->body);
    p->resp_desc = resp_desc;
    p->done = done;
    p->arg = arg;
    if (cm->inflight < cm->max_inflight) {
        start_call(cm, p);
        return;
    }
    if (cm->wait_tail)
        cm->wait_tail->next = p;
    else
        cm->wait_head = p;
    cm->wait_tail = p;
}

void cm_call(cm_t *cm, const struct kind *k, const char *method, const ProtobufCMessage *req,
             cm_done_fn done, void *arg)
{
    char *path = xconcat("/", k->service, "/", method, NULL);
    queue_call(cm, path, req, k->desc, done, arg);
    free(path);
}

/* Updates obj with its owner references replaced by refs[0..n). */
static void update_refs(cm_t *cm, const struct kind *k, const ProtobufCMessage *obj,
                        Coracle__V1__OwnerReference **refs, size_t n, cm_done_fn done, void *arg)
{
    size_t size = obj->descriptor->sizeof_message;
    ProtobufCMessage *upd = xmalloc(size);
    memcpy(upd, obj, size);
    Coracle__V1__ObjectMeta meta = *kind_meta(obj);
    meta.ownerreferences = refs;
    meta.n_ownerreferences = n;
    kind_set_meta(upd, &meta);
    cm_call(cm, k, "Update", upd, done, arg);
    free(upd);
}

void cm_adopt(cm_t *cm, const struct kind *k, const ProtobufCMessage *obj, const struct kind *ok,
              const ProtobufCMessage *owner, cm_done_fn done, void *arg)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj), *om = kind_meta(owner);
    Coracle__V1__OwnerReference ref = CORACLE__V1__OWNER_REFERENCE__INIT;
    size_t n = m->n_ownerreferences;
    Coracle__V1__OwnerReference **refs = xmalloc((n + 1) * sizeof(*refs));
    if (n)
        memcpy(refs, m->ownerreferences, n * sizeof(*refs));
    ref.apiversion = (char *)ok->api_version;
    ref.kind = (char *)ok->kind;
    ref.name = om->name;
    ref.uid = om->uid;
    ref.has_controller = ref.controller = 1;
    ref.has_blockownerdeletion = ref.blockownerdeletion = 1;
    refs[n] = &ref;
    update_refs(cm, k, obj, refs, n + 1, done, arg);
    free(refs);
}

void cm_release(cm_t *cm, const struct kind *k, const ProtobufCMessage *obj, cm_done_fn done,
                void *arg)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    const Coracle__V1__OwnerReference *mine = cm_controller_of(obj);
    Coracle__V1__OwnerReference **refs = xmalloc((m->n_ownerreferences + 1) * sizeof(*refs));
    size_t n = 0;
    for (size_t i = 0; i < m->n_ownerreferences; i++)
        if (m->ownerreferences[i] != mine)
            refs[n++] = m->ownerreferences[i];
    update_refs(cm, k, obj, refs, n, done, arg);
    free(refs);
}

void cm_delete(cm_t *cm, const struct kind *k, const char *ns, const char *name, const char *uid,
               const char *propagation, cm_done_fn done, void *arg)
{
    Coracle__V1__DeleteRequest req = CORACLE__V1__DELETE_REQUEST__INIT;
    Coracle__V1__Preconditions pre = CORACLE__V1__PRECONDITIONS__INIT;
    req.namespace_ = (char *)ns;
    req.name = (char *)name;
    if (uid && *uid) {
        pre.uid = (char *)uid;
        req.preconditions = &pre;
    }
    req.propagationpolicy = (char *)propagation;
    cm_call(cm, k, "Delete", &req.base, done, arg);
}

void cm_time_now(Coracle__V1__Time *t)
{
    *t = (Coracle__V1__Time)CORACLE__V1__TIME__INIT;
    t->has_seconds = 1;
    t->seconds = now_ns() / 1000000000;
}

void ctrl_event(ctrl_t *c, const struct kind *k, const ProtobufCMessage *obj, const char *type,
                const char *reason, const char *fmt, ...)
{
    cm_t *cm = c->cm;
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    if (!m || !m->name)
        return;
    const char *ns = m->namespace_ && *m->namespace_ ? m->namespace_ : "default";
    va_list ap;
    va_start(ap, fmt);
    char *message = xvasprintf(fmt, ap);
    va_end(ap);
    /* <object>.<strictly increasing time in hex>, as Kubernetes' recorder names events */
    int64_t t_ns = now_ns();
    char ename[320];
    snprintf(ename, sizeof(ename), "%.253s.%llx", m->name,
             (unsigned long long)(t_ns + (int64_t)(cm->events_seq++ % 1000)));
    Coracle__V1__Event ev = CORACLE__V1__EVENT__INIT;
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__ObjectReference ref = CORACLE__V1__OBJECT_REFERENCE__INIT;
    Coracle__V1__EventSource src = CORACLE__V1__EVENT_SOURCE__INIT;
    Coracle__V1__Time t = CORACLE__V1__TIME__INIT;
    meta.name = ename;
    meta.namespace_ = (char *)ns;
    ref.kind = (char *)k->kind;
    ref.apiversion = (char *)k->api_version;
    ref.namespace_ = m->namespace_;
    ref.name = m->name;
    ref.uid = m->uid;
    ref.resourceversion = m->resourceversion;
    src.component = c->name;
    t.has_seconds = 1;
    t.seconds = t_ns / 1000000000;
    ev.metadata = &meta;
    ev.involvedobject = &ref;
    ev.reason = (char *)reason;
    ev.message = message;
    ev.source = &src;
    ev.firsttimestamp = &t;
    ev.lasttimestamp = &t;
    ev.has_count = 1;
    ev.count = 1;
    ev.type = (char *)type;
    ev.reportingcomponent = c->name;
    ev.reportinginstance = cm->instance;
    queue_call(cm, "/coracle.v1.Events/Create", &ev.base, NULL, NULL, NULL);
    free(message);
}

/* ---------------------------------------------------------------- batch */

struct cm_batch {
    ctrl_t *c;
    char *key;
    int pending;
    int errors;
    char *why; /* the first failure */
};

struct cm_batch *cm_batch_new(ctrl_t *c, const char *key)
{
    struct cm_batch *b = xcalloc(1, sizeof(*b));
    b->c = c;
    b->key = xstrdup(key);
    b->pending = 1;
    return b;
}

void cm_batch_add(struct cm_batch *b)
{
    b->pending++;
}

void cm_batch_end(struct cm_batch *b, int code, const char *message, const char *what)
{
    if (code != GRPC_OK && code != GRPC_NOT_FOUND) {
        b->errors++;
        if (!b->why)
            b->why = xasprintf("%s: %s", what ? what : "write", message ? message : "failed");
    }
    if (--b->pending > 0)
        return;
    ctrl_done(b->c, b->key, b->errors == 0, b->why);
    free(b->why);
    free(b->key);
    free(b);
}

ctrl_t *cm_batch_ctrl(const struct cm_batch *b)
{
    return b->c;
}

const char *cm_batch_key(const struct cm_batch *b)
{
    return b->key;
}

void cm_batch_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    cm_batch_end(arg, code, message, NULL);
}

/* --------------------------------------------------------- expectations */

void cm_expect(ctrl_t *c, const char *key, int adds, int dels)
{
    struct expectation *e = smap_get(c->expect, key);
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        smap_put(c->expect, key, e);
    }
    e->adds = adds;
    e->dels = dels;
    e->at_ns = mono_ns();
}

void cm_observed(ctrl_t *c, const char *key, int adds, int dels)
{
    struct expectation *e = smap_get(c->expect, key);
    if (!e)
        return;
    e->adds -= adds;
    e->dels -= dels;
}

bool cm_satisfied(ctrl_t *c, const char *key)
{
    struct expectation *e = smap_get(c->expect, key);
    if (!e)
        return true;
    if ((e->adds <= 0 && e->dels <= 0) || mono_ns() - e->at_ns > EXPECT_TTL_NS)
        return true;
    return false;
}

void cm_expect_forget(ctrl_t *c, const char *key)
{
    free(smap_del(c->expect, key));
}

/* ------------------------------------------------------------- selectors */

bool cm_selector(const Coracle__V1__LabelSelector *ls, struct sel **out)
{
    *out = NULL;
    if (!ls)
        return false;
    struct buf b = {0};
    for (size_t i = 0; i < ls->n_matchlabels; i++)
        buf_printf(&b, "%s%s=%s", b.len ? "," : "", ls->matchlabels[i]->key,
                   ls->matchlabels[i]->value ? ls->matchlabels[i]->value : "");
    for (size_t i = 0; i < ls->n_matchexpressions; i++) {
        const Coracle__V1__LabelSelectorRequirement *r = ls->matchexpressions[i];
        const char *op = r->operator_ ? r->operator_ : "";
        if (b.len)
            buf_puts(&b, ",");
        if (!strcmp(op, "Exists")) {
            buf_puts(&b, r->key);
        } else if (!strcmp(op, "DoesNotExist")) {
            buf_printf(&b, "!%s", r->key);
        } else if (!strcmp(op, "In") || !strcmp(op, "NotIn")) {
            buf_printf(&b, "%s %s (", r->key, !strcmp(op, "In") ? "in" : "notin");
            for (size_t j = 0; j < r->n_values; j++)
                buf_printf(&b, "%s%s", j ? "," : "", r->values[j]);
            buf_puts(&b, ")");
        } else {
            free(b.p);
            return false;
        }
    }
    char *err = NULL;
    int rc = sel_parse_labels(b.p ? b.p : "", out, &err);
    free(b.p);
    free(err);
    return rc == 0;
}

static const char *meta_label(void *arg, const char *key)
{
    const Coracle__V1__ObjectMeta *m = arg;
    for (size_t i = 0; i < m->n_labels; i++)
        if (!strcmp(m->labels[i]->key, key))
            return m->labels[i]->value ? m->labels[i]->value : "";
    return NULL;
}

bool cm_labels_match(const struct sel *sel, const Coracle__V1__ObjectMeta *meta)
{
    static const Coracle__V1__ObjectMeta empty = CORACLE__V1__OBJECT_META__INIT;
    return sel_match(sel, meta_label, (void *)(meta ? meta : &empty));
}

/* ------------------------------------------------------------------ pods */

bool cm_pod_active(const Coracle__V1__Pod *p)
{
    const char *phase = p->status && p->status->phase ? p->status->phase : "";
    if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"))
        return false;
    return !(p->metadata && p->metadata->deletiontimestamp);
}

static const Coracle__V1__PodCondition *ready_condition(const Coracle__V1__Pod *p)
{
    if (!p->status)
        return NULL;
    for (size_t i = 0; i < p->status->n_conditions; i++) {
        const Coracle__V1__PodCondition *c = p->status->conditions[i];
        if (c->type && !strcmp(c->type, "Ready"))
            return c;
    }
    return NULL;
}

bool cm_pod_ready(const Coracle__V1__Pod *p)
{
    const Coracle__V1__PodCondition *c = ready_condition(p);
    return c && c->status && !strcmp(c->status, "True");
}

bool cm_pod_available(const Coracle__V1__Pod *p, int32_t min_ready, int64_t now_s)
{
    if (!cm_pod_ready(p))
        return false;
    if (min_ready <= 0)
        return true;
    const Coracle__V1__PodCondition *c = ready_condition(p);
    return c->lasttransitiontime && c->lasttransitiontime->seconds + min_ready <= now_s;
}

/* Kubernetes' ActivePods order (cm_pod_delete_order). */
static int phase_rank(const Coracle__V1__Pod *p)
{
    const char *ph = p->status && p->status->phase ? p->status->phase : "";
    if (!strcmp(ph, "Pending"))
        return 0;
    if (!strcmp(ph, "Unknown"))
        return 1;
    return 2;
}

static int restarts(const Coracle__V1__Pod *p)
{
    int n = 0;
    if (p->status)
        for (size_t i = 0; i < p->status->n_containerstatuses; i++)
            n += p->status->containerstatuses[i]->restartcount;
    return n;
}

static int64_t created(const Coracle__V1__Pod *p)
{
    const Coracle__V1__Time *t = p->metadata ? p->metadata->creationtimestamp : NULL;
    return t ? t->seconds : 0;
}

int cm_pod_delete_order(const void *pa, const void *pb)
{
    const Coracle__V1__Pod *a = *(const Coracle__V1__Pod *const *)pa;
    const Coracle__V1__Pod *b = *(const Coracle__V1__Pod *const *)pb;
    bool sa = a->spec && a->spec->nodename && *a->spec->nodename;
    bool sb = b->spec && b->spec->nodename && *b->spec->nodename;
    if (sa != sb)
        return sa ? 1 : -1; /* unscheduled first */
    if (phase_rank(a) != phase_rank(b))
        return phase_rank(a) - phase_rank(b);
    bool ra = cm_pod_ready(a), rb = cm_pod_ready(b);
    if (ra != rb)
        return ra ? 1 : -1; /* not ready first */
    if (restarts(a) != restarts(b))
        return restarts(b) - restarts(a); /* more restarts first */
    if (created(a) != created(b))
        return created(a) > created(b) ? -1 : 1; /* newer first */
    return 0;
}

void cm_pod_from_template(struct cm_pod_parts *pp, const Coracle__V1__PodTemplateSpec *t,
                          const struct kind *ok, const ProtobufCMessage *owner,
                          const char *generate_name)
{
    const Coracle__V1__ObjectMeta *om = kind_meta(owner);
    const Coracle__V1__ObjectMeta *tm = t ? t->metadata : NULL;
    pp->pod = (Coracle__V1__Pod)CORACLE__V1__POD__INIT;
    pp->meta = (Coracle__V1__ObjectMeta)CORACLE__V1__OBJECT_META__INIT;
    pp->ref = (Coracle__V1__OwnerReference)CORACLE__V1__OWNER_REFERENCE__INIT;
    pp->meta.generatename = (char *)generate_name;
    pp->meta.namespace_ = om->namespace_;
    if (tm) {
        pp->meta.n_labels = tm->n_labels;
        pp->meta.labels = tm->labels;
        pp->meta.n_annotations = tm->n_annotations;
        pp->meta.annotations = tm->annotations;
        pp->meta.n_finalizers = tm->n_finalizers;
        pp->meta.finalizers = tm->finalizers;
    }
    pp->ref.apiversion = (char *)ok->api_version;
    pp->ref.kind = (char *)ok->kind;
    pp->ref.name = om->name;
    pp->ref.uid = om->uid;
    pp->ref.has_controller = pp->ref.controller = 1;
    pp->ref.has_blockownerdeletion = pp->ref.blockownerdeletion = 1;
    pp->refs[0] = &pp->ref;
    pp->meta.n_ownerreferences = 1;
    pp->meta.ownerreferences = pp->refs;
    pp->pod.metadata = &pp->meta;
    pp->pod.spec = t ? t->spec : NULL;
}

static uint32_t fnv32a(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

void cm_template_hash(const Coracle__V1__PodTemplateSpec *t, const int32_t *collisions,
                      char out[CM_HASH_LEN])
{
    static const char safe[] = "bcdfghjklmnpqrstvwxz2456789";
    uint32_t h = 2166136261u;
    if (t) {
        size_t n = protobuf_c_message_get_packed_size(&t->base);
        uint8_t *b = xmalloc(n ? n : 1);
        protobuf_c_message_pack(&t->base, b);
        h = fnv32a(h, b, n);
        free(b);
    }
    if (collisions) {
        uint32_t v = (uint32_t)*collisions;
        uint8_t le[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
        h = fnv32a(h, le, sizeof(le));
    }
    snprintf(out, CM_HASH_LEN, "%" PRIu32, h);
    for (char *c = out; *c; c++)
        *c = safe[(unsigned char)*c % (sizeof(safe) - 1)];
}

/* ------------------------------------------------------------ lifecycle */

cm_t *cm_new(struct event_base *base, const struct cm_cfg *cfg)
{
    struct gcl_opts o = {
        .bearer_token = cfg->token,
        .user_agent = cfg->user_agent,
        .tls = cfg->tls,
    };
    gcl_t *g = gcl_new(base, cfg->server, &o);
    if (!g)
        return NULL;
    cm_t *cm = xcalloc(1, sizeof(*cm));
    cm->base = base;
    cm->g = g;
    cm->leading = !cfg->standby;
    cm->max_inflight = cfg->max_inflight > 0 ? cfg->max_inflight : 500;
    cm->max_endpoints_per_slice =
        cfg->max_endpoints_per_slice > 0 ? cfg->max_endpoints_per_slice : 100;
    cm->kick = event_new(base, -1, 0, run_queues, cm);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    cm->instance = xasprintf("coracle-controller-manager-%s", host);
    cm->root_ca = cfg->root_ca ? xstrdup(cfg->root_ca) : NULL;
    cm->cluster_cidr = cfg->cluster_cidr ? xstrdup(cfg->cluster_cidr) : NULL;
    cm->node_cidr_mask_size = cfg->node_cidr_mask_size;
    return cm;
}

const char *cm_root_ca(const cm_t *cm)
{
    return cm->root_ca;
}

bool cm_node_cidrs(const cm_t *cm, const char **cidr, int *mask)
{
    *cidr = cm->cluster_cidr;
    *mask = cm->node_cidr_mask_size;
    return cm->cluster_cidr != NULL;
}

ctrl_t *cm_add(cm_t *cm, const struct ctrl_def *def)
{
    ctrl_t *c = xcalloc(1, sizeof(*c));
    c->def = def;
    c->cm = cm;
    c->workers = def->workers > 0 ? def->workers : 5;
    snprintf(c->name, sizeof(c->name), "%s-controller", def->name);
    c->queued = smap_new();
    c->processing = smap_new();
    c->dirty = smap_new();
    c->fails = smap_new();
    c->delayed = smap_new();
    c->expect = smap_new();
    cm->ctrls = xrealloc(cm->ctrls, (cm->n_ctrls + 1) * sizeof(*cm->ctrls));
    cm->ctrls[cm->n_ctrls++] = c;
    return c;
}

void cm_start(cm_t *cm)
{
    for (size_t i = 0; i < cm->n_ctrls; i++) {
        ctrl_t *c = cm->ctrls[i];
        c->state = c->def->setup ? c->def->setup(cm, c) : NULL;
    }
    cm->started = true;
    for (size_t i = 0; i < KINDS_N; i++)
        if (cm->shares[i].inf)
            inf_start(cm->shares[i].inf);
}

void cm_lead(cm_t *cm)
{
    cm->leading = true;
    kick(cm);
}

struct event_base *cm_base(const cm_t *cm)
{
    return cm->base;
}

int cm_max_endpoints_per_slice(const cm_t *cm)
{
    return cm->max_endpoints_per_slice;
}

const char *ctrl_name(const ctrl_t *c)
{
    return c->name;
}

cm_t *ctrl_cm(const ctrl_t *c)
{
    return c->cm;
}

void *ctrl_state(const ctrl_t *c)
{
    return c->state;
}

static void delayed_free(void *v)
{
    struct delayed *d = v;
    event_free(d->ev);
    free(d->key);
    free(d);
}

static void set_free(void *v)
{
    smap_free(v, NULL);
}

/*
 * The calls end first (CANCELLED), while the syncs waiting on them and
 * their controllers still live; what their callbacks start meanwhile ends
 * at once, and finds the caches empty.
 */
static void cancel_calls(cm_t *cm)
{
    cm->closing = true;
    for (size_t i = 0; i < KINDS_N; i++) {
        inf_free(cm->shares[i].inf);
        cm->shares[i].inf = NULL;
    }
    while (cm->wait_head) {
        struct pending_call *p = cm->wait_head;
        cm->wait_head = p->next;
        if (p->done)
            p->done(GRPC_CANCELLED, "the controller manager is stopping", NULL, p->arg);
        free(p->path);
        free(p->body);
        free(p);
    }
    cm->wait_tail = NULL;
    gcl_free(cm->g); /* open calls end CANCELLED: their callbacks see it */
    cm->g = NULL;
}

void cm_free(cm_t *cm)
{
    if (!cm)
        return;
    cancel_calls(cm);
    for (size_t i = 0; i < cm->n_ctrls; i++) {
        ctrl_t *c = cm->ctrls[i];
        if (c->def->free)
            c->def->free(c->state);
        for (size_t j = c->head; j < c->tail; j++)
            free(c->fifo[j % c->cap]);
        free(c->fifo);
        smap_free(c->queued, NULL);
        smap_free(c->processing, NULL);
        smap_free(c->dirty, NULL);
        smap_free(c->fails, NULL);
        smap_free(c->delayed, delayed_free);
        smap_free(c->expect, free);
        for (size_t j = 0; j < c->n_owned; j++)
            free(c->owned[j]);
        free(c->owned);
        free(c);
    }
    free(cm->ctrls);
    for (size_t i = 0; i < KINDS_N; i++) {
        struct share *sh = &cm->shares[i];
        free(sh->subs);
        smap_free(sh->owners, set_free);
        smap_free(sh->owner_of, free);
    }
    event_free(cm->kick);
    free(cm->instance);
    free(cm->root_ca);
    free(cm->cluster_cidr);
    free(cm);
}

/* ---------------------------------------------------------------- status */

void cm_metrics_write(FILE *f, void *arg)
{
    cm_t *cm = arg;
    fputs("# HELP workqueue_depth Current depth of workqueue.\n# TYPE workqueue_depth gauge\n", f);
    for (size_t i = 0; i < cm->n_ctrls; i++)
        fprintf(f, "workqueue_depth{name=\"%s\"} %zu\n", cm->ctrls[i]->def->name,
                cm->ctrls[i]->tail - cm->ctrls[i]->head);
    fputs("# HELP workqueue_adds_total Total number of syncs started by workqueue.\n"
          "# TYPE workqueue_adds_total counter\n",
          f);
    for (size_t i = 0; i < cm->n_ctrls; i++)
        fprintf(f, "workqueue_adds_total{name=\"%s\"} %llu\n", cm->ctrls[i]->def->name,
                (unsigned long long)cm->ctrls[i]->syncs);
    fputs("# HELP workqueue_retries_total Total number of retries handled by workqueue.\n"
          "# TYPE workqueue_retries_total counter\n",
          f);
    for (size_t i = 0; i < cm->n_ctrls; i++)
        fprintf(f, "workqueue_retries_total{name=\"%s\"} %llu\n", cm->ctrls[i]->def->name,
                (unsigned long long)cm->ctrls[i]->sync_errors);
    fprintf(f,
            "# HELP coracle_controller_api_writes_total API writes made.\n"
            "# TYPE coracle_controller_api_writes_total counter\n"
            "coracle_controller_api_writes_total %llu\n"
            "# HELP coracle_controller_api_write_errors_total API writes that failed.\n"
            "# TYPE coracle_controller_api_write_errors_total counter\n"
            "coracle_controller_api_write_errors_total %llu\n",
            (unsigned long long)cm->writes, (unsigned long long)cm->write_errors);
    for (size_t i = 0; i < cm->n_ctrls; i++)
        if (cm->ctrls[i]->def->metrics)
            cm->ctrls[i]->def->metrics(f, cm->ctrls[i]->state);
}

void cm_describe(char *buf, size_t len, void *arg)
{
    cm_t *cm = arg;
    size_t queued = 0, objects = 0;
    for (size_t i = 0; i < cm->n_ctrls; i++)
        queued += cm->ctrls[i]->tail - cm->ctrls[i]->head;
    for (size_t i = 0; i < KINDS_N; i++)
        if (cm->shares[i].inf)
            objects += inf_count(cm->shares[i].inf);
    snprintf(buf, len, "%s; %zu controllers, %zu objects cached, %zu keys queued, %llu writes",
             cm->leading ? "leading" : "standby", cm->n_ctrls, objects, queued,
             (unsigned long long)cm->writes);
}
