/*
 * informer: list, then watch, one kind into a local cache; resume, re-list
 * and back off as the apiserver comes and goes. See informer.h.
 *
 * States: LIST (paging into a pending table) -> WATCH (applying events to the
 * cache) -> on a stream end: WATCH again from the last revision; on
 * OUT_OF_RANGE or an ERROR event: LIST again and diff; on a failure: WAIT
 * (backoff timer) then the same step again.
 */
#include "config.h"

#include "informer.h"
#include "grpc.h"
#include "pb.h"
#include "smap.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Every list is { base; ListMeta *metadata; n_items; items } and every watch
 * event { base; type; object }: walked generically through these. */
struct gen_list {
    ProtobufCMessage base;
    Coracle__V1__ListMeta *metadata;
    size_t n_items;
    ProtobufCMessage **items;
};
struct gen_event {
    ProtobufCMessage base;
    char *type;
    ProtobufCMessage *object;
};
#define LIST_LAYOUT(T)                                                                             \
    _Static_assert(offsetof(T, metadata) == offsetof(struct gen_list, metadata) &&                 \
                       offsetof(T, n_items) == offsetof(struct gen_list, n_items) &&               \
                       offsetof(T, items) == offsetof(struct gen_list, items),                     \
                   "list layout")
#define EVENT_LAYOUT(T)                                                                            \
    _Static_assert(offsetof(T, type) == offsetof(struct gen_event, type) &&                        \
                       offsetof(T, object) == offsetof(struct gen_event, object),                  \
                   "event layout")
LIST_LAYOUT(Coracle__V1__PodList);
LIST_LAYOUT(Coracle__V1__NodeList);
LIST_LAYOUT(Coracle__V1__EventList);
LIST_LAYOUT(Coracle__V1__LeaseList);
LIST_LAYOUT(Coracle__V1__NamespaceList);
LIST_LAYOUT(Coracle__V1__ConfigMapList);
LIST_LAYOUT(Coracle__V1__SecretList);
LIST_LAYOUT(Coracle__V1__ServiceAccountList);
LIST_LAYOUT(Coracle__V1__ReplicaSetList);
LIST_LAYOUT(Coracle__V1__DeploymentList);
LIST_LAYOUT(Coracle__V1__DaemonSetList);
LIST_LAYOUT(Coracle__V1__JobList);
LIST_LAYOUT(Coracle__V1__CronJobList);
LIST_LAYOUT(Coracle__V1__ClusterRoleBindingList);
LIST_LAYOUT(Coracle__V1__ClusterRoleList);
LIST_LAYOUT(Coracle__V1__RoleBindingList);
LIST_LAYOUT(Coracle__V1__RoleList);
EVENT_LAYOUT(Coracle__V1__PodWatchEvent);
EVENT_LAYOUT(Coracle__V1__NodeWatchEvent);
EVENT_LAYOUT(Coracle__V1__EventWatchEvent);
EVENT_LAYOUT(Coracle__V1__LeaseWatchEvent);
EVENT_LAYOUT(Coracle__V1__NamespaceWatchEvent);
EVENT_LAYOUT(Coracle__V1__ConfigMapWatchEvent);
EVENT_LAYOUT(Coracle__V1__SecretWatchEvent);
EVENT_LAYOUT(Coracle__V1__ServiceAccountWatchEvent);
EVENT_LAYOUT(Coracle__V1__ReplicaSetWatchEvent);
EVENT_LAYOUT(Coracle__V1__DeploymentWatchEvent);
EVENT_LAYOUT(Coracle__V1__DaemonSetWatchEvent);
EVENT_LAYOUT(Coracle__V1__JobWatchEvent);
EVENT_LAYOUT(Coracle__V1__CronJobWatchEvent);
EVENT_LAYOUT(Coracle__V1__ClusterRoleBindingWatchEvent);
EVENT_LAYOUT(Coracle__V1__ClusterRoleWatchEvent);
EVENT_LAYOUT(Coracle__V1__RoleBindingWatchEvent);
EVENT_LAYOUT(Coracle__V1__RoleWatchEvent);

/* ------------------------------------------------------------ the cache */

/* The cache and a list's pending table: smaps of key -> object (owned). */
static void msg_free(void *obj)
{
    protobuf_c_message_free_unpacked(obj, NULL);
}

/* ------------------------------------------------------------ informer */

enum inf_state { ST_IDLE, ST_LIST, ST_WATCH, ST_WAIT };

struct inf {
    struct event_base *base;
    gcl_t *g;
    const struct kind *kind;
    struct inf_handlers h;
    char *ns, *lsel, *fsel;
    int page_size, backoff_initial_ms, backoff_max_ms;

    enum inf_state state;
    gcl_call_t *call;
    struct event *timer;
    int backoff_ms; /* the next wait */
    bool need_list; /* the step after a wait: list (true) or watch */
    bool synced;
    bool got_msg;                             /* the current watch delivered something */
    bool list_ok;                             /* the current list call's page arrived */
    bool call_ended;                          /* the done callback of the current call ran */
    uint64_t rv;                              /* last revision seen */
    bool compact;                             /* cached objects are pb_compact blocks */
    void (*transform)(ProtobufCMessage *obj); /* inf_opts' */
    void (*free_obj)(void *obj);              /* frees a cached object: msg_free or free */

    smap_t *cache;
    smap_t *pending; /* pages of a list in progress */
    char *cont;      /* continue token of the list in progress */
    uint64_t pending_rv;
    struct inf_stats st;
};

char *inf_key_of(const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    const char *ns = m && m->namespace_ ? m->namespace_ : "";
    const char *name = m && m->name ? m->name : "";
    if (!*ns)
        return xstrdup(name);
    return xasprintf("%s/%s", ns, name);
}

uint64_t inf_obj_revision(const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = obj ? kind_meta(obj) : NULL;
    if (!m || !m->resourceversion)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(m->resourceversion, &end, 10);
    if (errno || *end || end == m->resourceversion)
        return 0;
    return v;
}

ProtobufCMessage *inf_copy(const ProtobufCMessage *obj)
{
    return pb_clone(obj);
}

static void start_list(inf_t *inf);
static void start_watch(inf_t *inf);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    inf_t *inf = arg;
    if (inf->call) { /* a watch abandoned from its message callback */
        gcl_call_t *c = inf->call;
        inf->call = NULL;
        gcl_call_cancel(c);
    }
    if (inf->need_list)
        start_list(inf);
    else
        start_watch(inf);
}

/* Waits (backoff with jitter), then lists or watches. */
static void retry_later(inf_t *inf, bool list)
{
    int d = inf->backoff_ms;
    d -= (int)(random() % (d / 5 + 1)); /* jitter: 80-100 %, never above the cap */
    inf->backoff_ms *= 2;
    if (inf->backoff_ms > inf->backoff_max_ms)
        inf->backoff_ms = inf->backoff_max_ms;
    inf->need_list = list;
    inf->state = ST_WAIT;
    inf->st.retries++;
    struct timeval tv = {d / 1000, (d % 1000) * 1000};
    evtimer_add(inf->timer, &tv);
    log_debug("informer %s: retrying %s in %d ms", inf->kind->resource, list ? "list" : "watch", d);
}

/* Soon, but from the loop (never re-entering a gcl callback). */
static void step_soon(inf_t *inf, bool list)
{
    inf->need_list = list;
    inf->state = ST_WAIT;
    struct timeval tv = {0, 0};
    evtimer_add(inf->timer, &tv);
}

/* Starts a call; inf->call is set unless it already ended (gcl may fail at once). */
static void begin_call(inf_t *inf, const char *verb, const Coracle__V1__ListRequest *req,
                       gcl_msg_fn on_msg, gcl_done_fn on_done)
{
    char *path = xasprintf("/%s/%s", inf->kind->service, verb);
    inf->call_ended = false;
    gcl_call_t *c = gcl_call(inf->g, path, &req->base, on_msg, on_done, inf, 0);
    inf->call = inf->call_ended ? NULL : c;
    free(path);
}

static void backoff_reset(inf_t *inf)
{
    inf->backoff_ms = inf->backoff_initial_ms;
}

static void fill_req(const inf_t *inf, Coracle__V1__ListRequest *req)
{
    coracle__v1__list_request__init(req);
    if (inf->ns)
        req->namespace_ = inf->ns;
    if (inf->lsel)
        req->labelselector = inf->lsel;
    if (inf->fsel)
        req->fieldselector = inf->fsel;
}

/* obj (decoded, owned) as the cache keeps it: itself, or its compact copy. */
static ProtobufCMessage *own(inf_t *inf, ProtobufCMessage *obj)
{
    if (inf->transform)
        inf->transform(obj);
    if (!inf->compact)
        return obj;
    ProtobufCMessage *c = pb_compact(obj);
    msg_free(obj);
    return c;
}

/* What cache_replace's walk of the new cache needs. */
struct diff {
    inf_t *inf;
    smap_t *old; /* the replaced cache; what the walk leaves in it has vanished */
};

static int diff_one(const char *key, void *val, void *arg)
{
    struct diff *d = arg;
    inf_t *inf = d->inf;
    ProtobufCMessage *o = smap_del(d->old, key);
    if (!o) {
        if (inf->h.on_add)
            inf->h.on_add(inf, val, inf->h.arg);
        return 0;
    }
    if (inf_obj_revision(o) != inf_obj_revision(val) && inf->h.on_update)
        inf->h.on_update(inf, o, val, inf->h.arg);
    inf->free_obj(o);
    return 0;
}

static int report_gone(const char *key, void *val, void *arg)
{
    inf_t *inf = arg;
    if (inf->h.on_delete)
        inf->h.on_delete(inf, val, inf->h.arg);
    return 0;
}

/*
 * Replaces the cache with the pending table (a completed list) and reports
 * the difference: updates for changed objects (by resourceVersion), adds for
 * new ones, deletes for those gone. Before the first sync everything is an add.
 */
static void cache_replace(inf_t *inf)
{
    struct diff d = {inf, inf->cache};
    inf->cache = inf->pending;
    inf->pending = smap_new();
    smap_each(inf->cache, diff_one, &d);
    smap_each(d.old, report_gone, inf);
    smap_free(d.old, inf->free_obj);
}

static void list_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    inf_t *inf = arg;
    struct gen_list *l = (struct gen_list *)pb_decode(inf->kind->list_desc, msg, len);
    if (!l) {
        log_warn("informer %s: cannot decode a %s", inf->kind->resource,
                 inf->kind->list_desc->name);
        return;
    }
    for (size_t i = 0; i < l->n_items; i++) {
        ProtobufCMessage *obj = own(inf, l->items[i]);
        l->items[i] = NULL;
        char *key = inf_key_of(obj);
        ProtobufCMessage *dup = smap_put(inf->pending, key, obj);
        if (dup) /* a duplicate across pages: keep the later one */
            inf->free_obj(dup);
        free(key);
    }
    l->n_items = 0; /* the items are ours now; the array goes with the list */
    free(inf->cont);
    inf->cont = NULL;
    if (l->metadata) {
        if (l->metadata->continue_ && *l->metadata->continue_)
            inf->cont = xstrdup(l->metadata->continue_);
        if (l->metadata->resourceversion) {
            uint64_t rv = strtoull(l->metadata->resourceversion, NULL, 10);
            /* the first page fixes the snapshot's revision */
            if (!inf->pending_rv || rv < inf->pending_rv)
                inf->pending_rv = rv;
        }
    }
    inf->list_ok = true;
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

static void list_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    inf_t *inf = arg;
    inf->call = NULL;
    inf->call_ended = true;
    if (inf->state != ST_LIST)
        return; /* cancelled by inf_free */
    if (code != GRPC_OK || !inf->list_ok) {
        log_warn("informer %s: list failed: %s: %s", inf->kind->resource, grpc_code_name(code),
                 message && *message ? message : "(no message)");
        smap_clear(inf->pending, inf->free_obj);
        free(inf->cont);
        inf->cont = NULL;
        inf->pending_rv = 0;
        retry_later(inf, true);
        return;
    }
    if (inf->cont) {
        step_soon(inf, true); /* the next page */
        return;
    }
    backoff_reset(inf);
    inf->st.lists++;
    inf->rv = inf->pending_rv;
    inf->pending_rv = 0;
    log_debug("informer %s: listed %zu at revision %llu", inf->kind->resource,
              smap_count(inf->pending), (unsigned long long)inf->rv);
    cache_replace(inf);
    if (!inf->synced) {
        inf->synced = true;
        if (inf->h.on_synced)
            inf->h.on_synced(inf, inf->h.arg);
    }
    step_soon(inf, false);
}

static void start_list(inf_t *inf)
{
    Coracle__V1__ListRequest req;
    fill_req(inf, &req);
    req.has_limit = 1;
    req.limit = inf->page_size;
    if (inf->cont)
        req.continue_ = inf->cont;
    else {
        smap_clear(inf->pending, inf->free_obj);
        inf->pending_rv = 0;
    }
    inf->state = ST_LIST;
    inf->list_ok = false;
    begin_call(inf, "List", &req, list_msg, list_done);
}

/* Applies one watch event to the cache. Returns -1 if a re-list is needed. */
static int apply_event(inf_t *inf, const char *type, ProtobufCMessage *obj)
{
    uint64_t rv = inf_obj_revision(obj);
    if (!strcmp(type, "BOOKMARK")) {
        if (rv)
            inf->rv = rv;
        protobuf_c_message_free_unpacked(obj, NULL);
        return 0;
    }
    if (!strcmp(type, "ERROR")) {
        protobuf_c_message_free_unpacked(obj, NULL);
        return -1;
    }
    if (rv)
        inf->rv = rv;
    char *key = inf_key_of(obj);
    if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
        obj = own(inf, obj);
        ProtobufCMessage *old = smap_put(inf->cache, key, obj);
        free(key);
        if (old) {
            if (inf->h.on_update)
                inf->h.on_update(inf, old, obj, inf->h.arg);
            inf->free_obj(old);
        } else if (inf->h.on_add) {
            inf->h.on_add(inf, obj, inf->h.arg);
        }
        return 0;
    }
    if (!strcmp(type, "DELETED")) {
        ProtobufCMessage *old = smap_del(inf->cache, key);
        free(key);
        if (old) {
            if (inf->h.on_delete)
                inf->h.on_delete(inf, obj, inf->h.arg);
            inf->free_obj(old);
        }
        msg_free(obj);
        return 0;
    }
    log_warn("informer %s: unknown watch event type '%s'", inf->kind->resource, type);
    free(key);
    protobuf_c_message_free_unpacked(obj, NULL);
    return 0;
}

static void watch_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    inf_t *inf = arg;
    if (inf->state != ST_WATCH)
        return;
    struct gen_event *ev = (struct gen_event *)pb_decode(inf->kind->event_desc, msg, len);
    if (!ev) {
        log_warn("informer %s: cannot decode a watch event", inf->kind->resource);
        return;
    }
    if (!inf->got_msg) {
        inf->got_msg = true;
        backoff_reset(inf);
    }
    inf->st.events++;
    const char *type = ev->type ? ev->type : "";
    ProtobufCMessage *obj = ev->object;
    ev->object = NULL;
    int rc;
    if (!obj) {
        rc = strcmp(type, "ERROR") ? 0 : -1;
        if (rc == 0)
            log_warn("informer %s: %s event without an object", inf->kind->resource, type);
    } else {
        rc = apply_event(inf, type, obj);
    }
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    if (rc < 0) {
        log_info("informer %s: watch reported an error at revision %llu; re-listing",
                 inf->kind->resource, (unsigned long long)inf->rv);
        inf->st.relists++;
        /* watch_done ignores what follows; the timer cancels the call */
        step_soon(inf, true);
    }
}

static void watch_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    inf_t *inf = arg;
    inf->call = NULL;
    inf->call_ended = true;
    if (inf->state != ST_WATCH)
        return;
    if (code == GRPC_OUT_OF_RANGE) {
        log_info("informer %s: watch from %llu: %s; re-listing", inf->kind->resource,
                 (unsigned long long)inf->rv, message && *message ? message : "too old");
        inf->st.relists++;
        step_soon(inf, true);
        return;
    }
    if (code == GRPC_OK && inf->got_msg) {
        /* the server ended the stream (timeout): resume at once */
        step_soon(inf, false);
        return;
    }
    if (code == GRPC_OK || code == GRPC_RESOURCE_EXHAUSTED)
        log_info("informer %s: watch ended (%s); resuming from %llu", inf->kind->resource,
                 grpc_code_name(code), (unsigned long long)inf->rv);
    else
        log_warn("informer %s: watch failed: %s: %s; resuming from %llu", inf->kind->resource,
                 grpc_code_name(code), message && *message ? message : "(no message)",
                 (unsigned long long)inf->rv);
    retry_later(inf, false);
}

static void start_watch(inf_t *inf)
{
    Coracle__V1__ListRequest req;
    fill_req(inf, &req);
    char rvbuf[32];
    snprintf(rvbuf, sizeof rvbuf, "%llu", (unsigned long long)inf->rv);
    req.resourceversion = rvbuf;
    req.has_allowwatchbookmarks = 1;
    req.allowwatchbookmarks = 1;
    inf->state = ST_WATCH;
    inf->got_msg = false;
    inf->st.watches++;
    begin_call(inf, "Watch", &req, watch_msg, watch_done);
}

inf_t *inf_new(struct event_base *base, gcl_t *g, const struct kind *k, const struct inf_opts *opts,
               const struct inf_handlers *h)
{
    inf_t *inf = xcalloc(1, sizeof(*inf));
    inf->base = base;
    inf->g = g;
    inf->kind = k;
    if (h)
        inf->h = *h;
    if (opts) {
        if (opts->ns && *opts->ns && k->namespaced)
            inf->ns = xstrdup(opts->ns);
        if (opts->label_selector && *opts->label_selector)
            inf->lsel = xstrdup(opts->label_selector);
        if (opts->field_selector && *opts->field_selector)
            inf->fsel = xstrdup(opts->field_selector);
        inf->page_size = opts->page_size;
        inf->backoff_initial_ms = opts->backoff_initial_ms;
        inf->backoff_max_ms = opts->backoff_max_ms;
        inf->compact = opts->compact;
        inf->transform = opts->transform;
    }
    inf->free_obj = inf->compact ? free : msg_free;
    if (inf->page_size <= 0)
        inf->page_size = 500;
    if (inf->backoff_initial_ms <= 0)
        inf->backoff_initial_ms = 200;
    if (inf->backoff_max_ms <= 0)
        inf->backoff_max_ms = 10000;
    if (inf->backoff_max_ms < inf->backoff_initial_ms)
        inf->backoff_max_ms = inf->backoff_initial_ms;
    inf->backoff_ms = inf->backoff_initial_ms;
    inf->cache = smap_new();
    inf->pending = smap_new();
    inf->timer = base ? evtimer_new(base, timer_cb, inf) : NULL;
    return inf;
}

void inf_start(inf_t *inf)
{
    if (inf->state != ST_IDLE || !inf->timer)
        return;
    step_soon(inf, true);
}

void inf_free(inf_t *inf)
{
    if (!inf)
        return;
    inf->state = ST_IDLE;
    if (inf->call) {
        gcl_call_t *c = inf->call;
        inf->call = NULL;
        gcl_call_cancel(c);
    }
    if (inf->timer)
        event_free(inf->timer);
    smap_free(inf->cache, inf->free_obj);
    smap_free(inf->pending, inf->free_obj);
    free(inf->cont);
    free(inf->ns);
    free(inf->lsel);
    free(inf->fsel);
    free(inf);
}

const struct kind *inf_kind(const inf_t *inf)
{
    return inf->kind;
}

bool inf_synced(const inf_t *inf)
{
    return inf->synced;
}

size_t inf_count(const inf_t *inf)
{
    return smap_count(inf->cache);
}

uint64_t inf_revision(const inf_t *inf)
{
    return inf->rv;
}

const ProtobufCMessage *inf_get_key(const inf_t *inf, const char *key)
{
    return smap_get(inf->cache, key);
}

const ProtobufCMessage *inf_get(const inf_t *inf, const char *ns, const char *name)
{
    if (!inf->kind->namespaced || !ns || !*ns)
        return inf_get_key(inf, name);
    char *key = xasprintf("%s/%s", ns, name);
    const ProtobufCMessage *o = inf_get_key(inf, key);
    free(key);
    return o;
}

struct foreach {
    int (*fn)(const ProtobufCMessage *obj, void *arg);
    void *arg;
};

static int foreach_one(const char *key, void *val, void *arg)
{
    struct foreach *f = arg;
    return f->fn(val, f->arg);
}

int inf_foreach(const inf_t *inf, int (*fn)(const ProtobufCMessage *obj, void *arg), void *arg)
{
    struct foreach f = {fn, arg};
    return smap_each(inf->cache, foreach_one, &f);
}

void inf_get_stats(const inf_t *inf, struct inf_stats *st)
{
    *st = inf->st;
}
