/*
 * etcd_watch: every etcd_watch of a client on one bidi Watch stream
 * (e->ws). See etcd.h.
 *
 * etcd answers creates in the order they were sent, each with a created
 * response that carries the watch_id it chose: the watches whose created
 * response is still due wait in e->pend, in order. When the stream breaks
 * (or sends bytes that do not decode), every watch is created again on a
 * new stream, on the next endpoint, from the revision after the last event
 * it delivered (or after the revision its first created response named),
 * and events older than that are dropped, so a caller never sees a
 * revision twice. The stream has request_timeout_ms from its first failure
 * to work again (a created response) before every watch ends UNAVAILABLE.
 *
 * Cancelled watches wait in e->grave until the loop entry that holds
 * e->busy ends (etcd.c), so a callback may cancel any watch, its own too.
 */
#include "config.h"
#include "etcd.h"
#include "etcd_int.h"
#include "grpc.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ws_open(etcd_t *e);
static void ws_broken(etcd_t *e, int code, const char *msg);

static void ws_send(etcd_t *e, const Etcdserverpb__WatchRequest *m)
{
    size_t len;
    uint8_t *b = etcd_encode(&m->base, &len);
    gcl_call_send_raw(e->ws, b, len);
    free(b);
}

static void ws_send_create(etcd_t *e, etcd_watch_t *w)
{
    Etcdserverpb__WatchRequest m = ETCDSERVERPB__WATCH_REQUEST__INIT;
    Etcdserverpb__WatchCreateRequest c = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    c.key = etcd_bin(w->key, w->key_len);
    c.range_end = etcd_end(w->range_end, w->range_end_len);
    c.start_revision = w->next_rev;
    c.prev_kv = w->prev_kv;
    c.progress_notify = w->progress_notify;
    m.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    m.create_request = &c;
    ws_send(e, &m);
    if (e->pend_head == e->n_pend)
        e->pend_head = e->n_pend = 0;
    e->pend = xgrow(e->pend, &e->cap_pend, e->n_pend + 1, sizeof(*e->pend));
    e->pend[e->n_pend++] = w;
}

static void ws_send_cancel(etcd_t *e, int64_t id)
{
    Etcdserverpb__WatchRequest m = ETCDSERVERPB__WATCH_REQUEST__INIT;
    Etcdserverpb__WatchCancelRequest c = ETCDSERVERPB__WATCH_CANCEL_REQUEST__INIT;
    c.watch_id = id;
    m.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST;
    m.cancel_request = &c;
    ws_send(e, &m);
}

/* Takes w out of the live list and its pending create; freed when the loop entry ends. */
static void watch_release(etcd_watch_t *w)
{
    etcd_t *e = w->e;
    w->dead = true;
    for (size_t i = e->pend_head; i < e->n_pend; i++)
        if (e->pend[i] == w)
            e->pend[i] = NULL;
    if (w->prev)
        w->prev->next = w->next;
    else
        e->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        e->watches_tail = w->prev;
    w->prev = NULL;
    w->next = e->grave;
    e->grave = w;
}

/* w ends for good: its ended callback, then it goes. */
static void watch_end(etcd_watch_t *w, int code, const char *msg, int64_t compact_rev)
{
    watch_release(w);
    if (w->cbs.ended)
        w->cbs.ended(w->arg, code, msg, compact_rev);
}

static void ws_end_all(etcd_t *e, int code, const char *msg)
{
    while (e->watches && !e->dead)
        watch_end(e->watches, code, msg, 0);
}

static const char *compacted_msg = "etcdserver: mvcc: required revision has been compacted";

/* A canceled response for w: compacted, or etcd's reason. */
static void watch_canceled(etcd_watch_t *w, const Etcdserverpb__WatchResponse *m)
{
    const char *why = m->cancel_reason && *m->cancel_reason ? m->cancel_reason : NULL;
    if (m->compact_revision > 0)
        watch_end(w, GRPC_OUT_OF_RANGE, why ? why : compacted_msg, m->compact_revision);
    else
        watch_end(w, GRPC_CANCELLED, why ? why : "etcd: the watch was canceled by the server", 0);
}

static void watch_created(etcd_t *e, const Etcdserverpb__WatchResponse *m)
{
    etcd_watch_t *w = e->pend_head < e->n_pend ? e->pend[e->pend_head++] : NULL;
    e->ws_down_since = 0;
    e->ws_attempts = 0;
    if (!w) {
        if (!m->canceled)
            ws_send_cancel(e, m->watch_id); /* cancelled before etcd answered */
        return;
    }
    w->id = m->watch_id;
    if (m->canceled)
        watch_canceled(w, m);
    else if (w->next_rev == 0)
        w->next_rev = etcd_hdr_rev(m->header) + 1;
}

/* Events for w: those it has not delivered yet, to the caller. */
static void watch_events(etcd_watch_t *w, struct arena *a, const Etcdserverpb__WatchResponse *m)
{
    struct etcd_event *ev = etcd_arena_alloc(a, m->n_events * sizeof(*ev));
    size_t n = 0;
    for (size_t i = 0; i < m->n_events; i++) {
        const Etcdserverpb__Event *x = m->events[i];
        if (!x->kv || x->kv->mod_revision < w->next_rev)
            continue; /* delivered before the stream was re-established */
        ev[n].type =
            x->type == ETCDSERVERPB__EVENT__EVENT_TYPE__DELETE ? ETCD_EV_DELETE : ETCD_EV_PUT;
        etcd_kv_view(x->kv, &ev[n].kv);
        etcd_kv_view(x->prev_kv, &ev[n].prev_kv);
        n++;
    }
    if (!n)
        return;
    w->next_rev = ev[n - 1].kv.mod_revision + 1;
    w->cbs.events(w->arg, etcd_hdr_rev(m->header), ev, n);
}

static void ws_handle(etcd_t *e, struct arena *a, const Etcdserverpb__WatchResponse *m)
{
    if (m->created) {
        watch_created(e, m);
        return;
    }
    if (m->watch_id == -1) {
        /* answer to a progress request: for every watch of the stream */
        for (etcd_watch_t *w = e->watches; w && !e->dead;) {
            etcd_watch_t *next = w->next;
            if (w->id >= 0)
                w->cbs.events(w->arg, etcd_hdr_rev(m->header), NULL, 0);
            if (e->dead || w->dead || (next && next->dead))
                break; /* a callback that cancels watches ends the round */
            w = next;
        }
        return;
    }
    etcd_watch_t *w = e->watches;
    while (w && w->id != m->watch_id)
        w = w->next;
    if (!w)
        return; /* cancelled meanwhile */
    if (m->canceled)
        watch_canceled(w, m);
    else if (m->n_events == 0)
        w->cbs.events(w->arg, etcd_hdr_rev(m->header), NULL, 0);
    else
        watch_events(w, a, m);
}

static void ws_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    etcd_t *e = arg;
    if (call != e->ws || e->dead)
        return;
    e->busy++;
    struct arena *a = etcd_arena_get(e);
    Etcdserverpb__WatchResponse *m = (Etcdserverpb__WatchResponse *)etcd_decode(
        a, &etcdserverpb__watch_response__descriptor, msg, len);
    if (m) {
        ws_handle(e, a, m);
    } else {
        /* a member must not feed us garbage: drop the stream, resume elsewhere */
        char why[160];
        snprintf(why, sizeof(why), "etcd: a WatchResponse from %s does not decode",
                 e->ep[e->ws_ep].url);
        e->ws = NULL;
        gcl_call_cancel(call);
        ws_broken(e, GRPC_INTERNAL, why);
    }
    etcd_arena_put(e, a);
    etcd_leave(e);
}

static void ws_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    etcd_t *e = arg;
    if (call != e->ws || e->dead)
        return;
    e->ws = NULL;
    e->busy++;
    ws_broken(e, code, message && *message ? message : "the watch stream ended");
    etcd_leave(e);
}

static void ws_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    etcd_t *e = arg;
    e->busy++;
    if (!e->ws && e->watches)
        ws_open(e);
    etcd_leave(e);
}

/* Errors that another endpoint would answer alike: the watches end with them. */
static bool ws_fatal(int code)
{
    return code == GRPC_INVALID_ARGUMENT || code == GRPC_PERMISSION_DENIED ||
           code == GRPC_UNAUTHENTICATED || code == GRPC_UNIMPLEMENTED ||
           code == GRPC_FAILED_PRECONDITION;
}

/* The stream is gone (e->ws already NULL): re-create every watch elsewhere, after a backoff. */
static void ws_broken(etcd_t *e, int code, const char *msg)
{
    e->pend_head = e->n_pend = 0;
    for (etcd_watch_t *w = e->watches; w; w = w->next)
        w->id = -1;
    if (!e->watches) {
        e->ws_down_since = 0; /* the next watch opens a new stream with a fresh deadline */
        e->ws_attempts = 0;
        return;
    }
    if (ws_fatal(code)) {
        ws_end_all(e, code, msg);
        return;
    }
    int64_t now = mono_ns();
    if (!e->ws_down_since)
        e->ws_down_since = now;
    free(e->ws_last_err);
    e->ws_last_err = xstrdup(msg);
    etcd_ep_failed(e, e->ws_ep, msg);
    int d = etcd_backoff_ms(e, ++e->ws_attempts);
    if (now + (int64_t)d * 1000000 - e->ws_down_since >= (int64_t)e->request_timeout_ms * 1000000) {
        char *m = xasprintf("etcd: no endpoint answered within %d ms (%s; last: %s)",
                            e->request_timeout_ms, e->ep_list, msg);
        ws_end_all(e, GRPC_UNAVAILABLE, m);
        free(m);
        return;
    }
    log_debug("etcd: watch stream on %s ended (%s); again on %s in %d ms", e->ep[e->ws_ep].url, msg,
              e->ep[e->cur].url, d);
    etcd_timer_in(e->ws_timer, d);
}

static void ws_open(etcd_t *e)
{
    e->ws_ep = e->cur;
    e->pend_head = e->n_pend = 0;
    e->ws = gcl_call_bidi_md(e->ep[e->cur].g, "/etcdserverpb.Watch/Watch", etcd_hasleader_md, 1,
                             ws_msg, ws_done, e);
    for (etcd_watch_t *w = e->watches; w; w = w->next)
        ws_send_create(e, w);
}

etcd_watch_t *etcd_watch(etcd_t *e, const struct etcd_watch_opts *o,
                         const struct etcd_watch_cbs *cbs, void *arg)
{
    etcd_watch_t *w = xcalloc(1, sizeof(*w));
    w->e = e;
    w->key = xmemdup(o->key, o->key_len ? o->key_len : 1);
    w->key_len = o->key_len;
    if (o->range_end) {
        w->range_end = xmemdup(o->range_end, o->range_end_len ? o->range_end_len : 1);
        w->range_end_len = o->range_end_len;
    }
    w->next_rev = o->start_revision;
    w->prev_kv = o->prev_kv;
    w->progress_notify = o->progress_notify;
    w->id = -1;
    w->cbs = *cbs;
    w->arg = arg;
    w->prev = e->watches_tail;
    if (e->watches_tail)
        e->watches_tail->next = w;
    else
        e->watches = w;
    e->watches_tail = w;
    if (e->ws)
        ws_send_create(e, w);
    else if (!evtimer_pending(e->ws_timer, NULL))
        ws_open(e); /* else the timer re-opens the stream with every watch */
    return w;
}

void etcd_watch_progress(etcd_watch_t *w)
{
    etcd_t *e = w->e;
    if (w->dead || !e->ws)
        return;
    Etcdserverpb__WatchRequest m = ETCDSERVERPB__WATCH_REQUEST__INIT;
    Etcdserverpb__WatchProgressRequest p = ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;
    m.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
    m.progress_request = &p;
    ws_send(e, &m);
}

void etcd_watch_cancel(etcd_watch_t *w)
{
    etcd_t *e = w->e;
    if (w->dead)
        return;
    if (w->id >= 0 && e->ws)
        ws_send_cancel(e, w->id);
    e->busy++;
    watch_release(w);
    etcd_leave(e);
}

void etcd_ws_init(etcd_t *e)
{
    e->ws_timer = evtimer_new(e->base, ws_timer_cb, e);
}

/* etcd_free: every watch goes, without a callback (the stream went with its gcl_t). */
void etcd_ws_close(etcd_t *e)
{
    e->ws = NULL;
    while (e->watches)
        watch_release(e->watches);
}

void etcd_ws_reap(etcd_t *e)
{
    while (e->grave) {
        etcd_watch_t *w = e->grave;
        e->grave = w->next;
        free(w->key);
        free(w->range_end);
        free(w);
    }
}

void etcd_ws_destroy(etcd_t *e)
{
    etcd_ws_reap(e);
    if (e->ws_timer)
        event_free(e->ws_timer);
    free(e->pend);
    free(e->ws_last_err);
}
