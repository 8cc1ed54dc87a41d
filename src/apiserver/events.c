/*
 * events: event de-duplication index and TTL expiry. See events.h.
 */
#include "config.h"
#include "events.h"
#include "obj.h"
#include "smap.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct events {
    struct event_base *base;
    store_t *st;
    int64_t ttl_ns;
    /*
     * The tuple's 64-bit hash in hex -> the event's store key, as last's
     * own copy (smap_key: it lives as long as the event is stored). The
     * hash, not the tuple, and no copy of the name: a fleet keeps a
     * hundred thousand events or more, and their tuples (messages naming
     * pods and nodes) were most of the apiserver's heap. A repeat found by
     * hash is checked against the stored event's tuple before it is
     * counted (events_repeats).
     */
    smap_t *idx;
    smap_t *last; /* store key -> int64_t last occurrence, ns (malloc'd) */
    struct event *timer;
    void (*expire)(void *arg, const char *ns, const char *name);
    void *arg;
};

#define S(x) ((x) ? (x) : "")

/* Kubernetes' EventCorrelator key (getEventKey), plus the event's namespace. */
static char *tuple(const Coracle__V1__Event *ev)
{
    const Coracle__V1__ObjectReference *o = ev->involvedobject;
    const Coracle__V1__EventSource *s = ev->source;
    return xasprintf("%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s",
                     ev->metadata ? S(ev->metadata->namespace_) : "", s ? S(s->component) : "",
                     s ? S(s->host) : "", o ? S(o->kind) : "", o ? S(o->namespace_) : "",
                     o ? S(o->name) : "", o ? S(o->fieldpath) : "", o ? S(o->uid) : "",
                     o ? S(o->apiversion) : "", S(ev->type), S(ev->reason), S(ev->message));
}

#define IDX_KEY 17

/* The index key of ev's tuple: FNV-1a, 64 bits, in hex. */
static void idx_key(const Coracle__V1__Event *ev, char out[IDX_KEY])
{
    char *t = tuple(ev);
    uint64_t h = 14695981039346656037u;
    for (const char *p = t; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211u;
    free(t);
    snprintf(out, IDX_KEY, "%016" PRIx64, h);
}

bool events_repeats(const Coracle__V1__Event *stored, const Coracle__V1__Event *ev)
{
    char *a = tuple(stored), *b = tuple(ev);
    bool same = !strcmp(a, b);
    free(a);
    free(b);
    return same;
}

/* When the event last happened: lastTimestamp, else eventTime, else creation. */
static int64_t event_last(const Coracle__V1__Event *ev)
{
    return ev->lasttimestamp ? obj_time_ns(ev->lasttimestamp)
           : ev->eventtime   ? obj_microtime_ns(ev->eventtime)
           : ev->metadata    ? obj_time_ns(ev->metadata->creationtimestamp)
                             : 0;
}

static void idx_put(events_t *e, const char *key, size_t klen, const void *val, size_t len)
{
    Coracle__V1__Event *ev = (void *)obj_decode(&coracle__v1__event__descriptor, val, len);
    if (!ev)
        return;
    if (!ev->metadata || !ev->metadata->name) {
        obj_free(&ev->base);
        return;
    }
    char *k = xstrndup(key, klen);
    int64_t *last = smap_get(e->last, k);
    if (!last) {
        last = xmalloc(sizeof(*last));
        smap_put(e->last, k, last);
    }
    *last = event_last(ev);
    char t[IDX_KEY];
    idx_key(ev, t);
    smap_put(e->idx, t, (void *)smap_key(e->last, k));
    free(k);
    obj_free(&ev->base);
}

/* Forgets the tuple of key's value val if the index names key for it. */
static void idx_del(events_t *e, const char *key, size_t klen, const void *val, size_t len)
{
    Coracle__V1__Event *ev = (void *)obj_decode(&coracle__v1__event__descriptor, val, len);
    if (!ev)
        return;
    if (!ev->metadata || !ev->metadata->name) {
        obj_free(&ev->base);
        return;
    }
    char t[IDX_KEY];
    idx_key(ev, t);
    const char *k = smap_get(e->idx, t);
    if (k && strlen(k) == klen && !memcmp(k, key, klen))
        smap_del(e->idx, t);
    obj_free(&ev->base);
}

void events_on_change(events_t *e, const struct store_change *ch)
{
    if (ch->key_len < 7 || memcmp(ch->key, "events/", 7))
        return;
    if (ch->prev)
        idx_del(e, ch->key, ch->key_len, ch->prev, ch->prev_len);
    if (ch->val) {
        idx_put(e, ch->key, ch->key_len, ch->val, ch->val_len);
    } else {
        char *k = xstrndup(ch->key, ch->key_len);
        free(smap_del(e->last, k));
        free(k);
    }
}

const char *events_find(events_t *e, const Coracle__V1__Event *ev)
{
    char t[IDX_KEY];
    idx_key(ev, t);
    const char *k = smap_get(e->idx, t), *slash = k ? strchr(k + 7, '/') : NULL;
    return slash ? slash + 1 : NULL; /* "events/<namespace>/<name>" */
}

static int rebuild_cb(const char *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    idx_put(arg, key, klen, val, vlen);
    return 0;
}

struct expire_scan {
    events_t *e;
    int64_t now;
    char **keys;
    size_t n, cap;
};

static int expire_cb(const char *key, void *val, void *arg)
{
    struct expire_scan *x = arg;
    if (x->now - *(int64_t *)val < x->e->ttl_ns)
        return 0;
    *XPUSH(x->keys, x->n, x->cap) = xstrdup(key);
    return 0;
}

/* Expiry from the in-memory times: no store scan, no decoding. */
static void tick(evutil_socket_t fd, short what, void *arg)
{
    events_t *e = arg;
    struct expire_scan x = {.e = e, .now = now_ns()};
    smap_each(e->last, expire_cb, &x);
    for (size_t i = 0; i < x.n; i++) {
        /* "events/<ns>/<name>" */
        char *ns = x.keys[i] + 7, *slash = strchr(ns, '/');
        if (slash) {
            *slash = 0;
            e->expire(e->arg, ns, slash + 1);
        }
        free(x.keys[i]);
    }
    free(x.keys);
}

events_t *events_new(struct event_base *base, store_t *st, int64_t ttl_s,
                     void (*expire)(void *arg, const char *ns, const char *name), void *arg)
{
    events_t *e = xcalloc(1, sizeof(*e));
    e->base = base;
    e->st = st;
    e->ttl_ns = (ttl_s > 0 ? ttl_s : 3600) * 1000000000LL;
    e->idx = smap_new();
    e->last = smap_new();
    e->expire = expire;
    e->arg = arg;
    store_rtxn_t *t;
    if (store_read_begin(st, &t) == 0) {
        store_scan(t, "events/", 7, NULL, 0, rebuild_cb, e);
        store_read_end(t);
    }
    /* check a few times per TTL, at least every minute, at most every second */
    int64_t iv = e->ttl_ns / 4 / 1000000;
    if (iv > 60000)
        iv = 60000;
    if (iv < 1000)
        iv = 1000;
    e->timer = event_new(base, -1, EV_PERSIST, tick, e);
    struct timeval tv = {iv / 1000, (iv % 1000) * 1000};
    event_add(e->timer, &tv);
    return e;
}

void events_stop(events_t *e)
{
    if (e)
        event_del(e->timer);
}

void events_free(events_t *e)
{
    if (!e)
        return;
    event_free(e->timer);
    smap_free(e->idx, NULL);
    smap_free(e->last, free);
    free(e);
}
