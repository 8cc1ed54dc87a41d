/*
 * watch: the watch hub. See watch.h.
 *
 * A change is handled in a struct chg: the raw bytes from the store, the
 * decoded new and previous objects (decoded on first need), and up to
 * three framed events (ADDED/MODIFIED with the new object, DELETED with the
 * previous object carrying the change's revision, as Kubernetes' cacher
 * does), each built on first need and shared by every stream.
 */
#include "config.h"
#include "watch.h"
#include "grpc.h"
#include "kjson.h"
#include "kpb.h"
#include "obj.h"
#include "rpool.h"
#include "sel.h"
#include "smap.h"
#include "util.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define NKINDS KINDS_N

struct wlist {
    struct watcher *head;
};

struct watcher {
    struct watcher *prev, *next;
    struct wlist *list;
    watch_hub_t *hub;
    /* the stream: a gRPC call (framed events), or a REST request (JSON lines, protobuf frames) */
    h2s_call_t *call;
    h2s_req_t *req;
    bool json;          /* a REST watcher (req may be NULL once it ended) */
    enum watch_enc enc; /* REST: the events' encoding */
    bool pb_errors;     /* REST: a Status answer before the first event in protobuf */
    bool table_headers; /* REST Table: the first event, with its columns, is out */
    bool started;       /* REST: the 200 and its headers are out */
    const struct kind *k;
    char *prefix;
    size_t prefix_len;
    sel_t *lsel, *fsel; /* NULL when empty */
    char *node;         /* indexed by spec.nodeName */
    uint64_t last_rev;
    int bookmarks;
    struct event *timeout;
    /* while its initial state is sent: listed (the budget may end it) but not fed */
    struct wstart *start;
    void (*on_end)(void *arg, int code);
    void *arg;
};

struct watch_hub {
    struct event_base *base;
    store_t *st;
    struct watch_config cfg;
    struct wlist all[NKINDS];
    smap_t *by_node; /* pods' spec.nodeName -> struct wlist */
    struct event *bookmark;
    struct watch_stats stats;
    /*
     * Every frame the hub made, with a reference of its own: frames are
     * shared by many streams, so the memory they hold is the size of those
     * still referenced by someone else (a queue, a socket buffer), not the
     * sum of the queues. A sweep drops the frames only the ledger holds.
     */
    rbuf_t **led;
    size_t led_n, led_cap;
    size_t led_bytes;   /* bytes of the frames in the ledger */
    size_t led_live;    /* led_bytes after the last sweep */
    size_t budget_skip; /* no eligible victim: do not look again below this */
    struct fanout *fan; /* the change being fanned out, and those waiting (watch_hub_new) */
};

static int kind_index(const struct kind *k)
{
    for (int i = 0; kinds_all[i]; i++)
        if (kinds_all[i] == k)
            return i;
    return -1;
}

/* ---- lists ---- */

static void wl_add(struct wlist *l, struct watcher *w)
{
    w->list = l;
    w->prev = NULL;
    w->next = l->head;
    if (l->head)
        l->head->prev = w;
    l->head = w;
}

static void fan_unlinked(struct watcher *w);

static void wl_del(struct watcher *w)
{
    if (!w->list)
        return;
    fan_unlinked(w);
    if (w->prev)
        w->prev->next = w->next;
    else
        w->list->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->list = NULL;
    w->prev = w->next = NULL;
}

static void watcher_unlink(struct watcher *w)
{
    struct wlist *l = w->list;
    wl_del(w);
    if (w->node && l)
        w->hub->stats.by_node--;
    if (w->node && l && !l->head) {
        smap_del(w->hub->by_node, w->node);
        free(l);
    }
}

static void start_free(struct wstart *s);

static void watcher_free(struct watcher *w)
{
    if (w->start)
        start_free(w->start); /* the start of a listed watcher ends with it */
    watcher_unlink(w);
    if (w->timeout)
        event_free(w->timeout);
    sel_free(w->lsel);
    sel_free(w->fsel);
    free(w->prefix);
    free(w->node);
    w->hub->stats.watchers--;
    free(w);
}

/* ---- the stream: a gRPC call or a REST request ---- */

static size_t w_queued(const struct watcher *w)
{
    return w->call ? h2s_call_queued(w->call) : w->req ? h2s_req_queued(w->req) : 0;
}

static int64_t w_stuck(const struct watcher *w, int64_t now)
{
    return w->call ? h2s_call_stuck_ns(w->call, now) : w->req ? h2s_req_stuck_ns(w->req, now) : 0;
}

static const char *w_peer(const struct watcher *w)
{
    return w->call ? h2s_call_peer(w->call) : w->req ? h2s_req_peer(w->req) : "-";
}

/* REST: the answer's head, before the first event (errors before it are Status answers). */
static int w_start(struct watcher *w)
{
    if (!w->req || w->started)
        return 0;
    w->started = true;
    return h2s_req_start(w->req, 200,
                         w->enc == WATCH_PROTOBUF ? KPB_WATCH_TYPE : "application/json");
}

static int w_send(struct watcher *w, rbuf_t *frame)
{
    if (w->call)
        return h2s_call_send_framed(w->call, frame);
    if (!w->req || w_start(w) < 0)
        return -1;
    return h2s_req_send_rbuf(w->req, frame);
}

static void w_on_close(struct watcher *w, void (*call_fn)(h2s_call_t *, void *),
                       void (*req_fn)(h2s_req_t *, void *), void *arg)
{
    if (w->call)
        h2s_call_on_close(w->call, call_fn, arg);
    else if (w->req)
        h2s_req_on_close(w->req, req_fn, arg);
}

/*
 * A REST watch's end: a clean end, an ERROR event (Expired and the
 * like, once the stream has begun) or, before, a Status answer.
 */
static void w_end_req(struct watcher *w, h2s_req_t *r, int code, const char *msg)
{
    if (code == GRPC_RESOURCE_EXHAUSTED && w->started) {
        h2s_req_abort(r); /* frees its unsent events now */
        return;
    }
    bool pb = w->enc == WATCH_PROTOBUF;
    if (code == GRPC_OK || code == GRPC_CANCELLED) {
        if (!w->started)
            h2s_req_start(r, 200, pb ? KPB_WATCH_TYPE : "application/json");
        h2s_req_end(r);
        return;
    }
    const char *reason;
    int st = kjson_http_status(code, &reason);
    if (!w->started && code != GRPC_OUT_OF_RANGE) {
        size_t n;
        char *body = w->pb_errors ? kpb_status(st, reason, msg, NULL, NULL, &n)
                                  : kjson_status(st, reason, msg, NULL, NULL);
        if (!w->pb_errors)
            n = strlen(body);
        h2s_req_respond(r, st, w->pb_errors ? KPB_TYPE : "application/json", body, n);
        free(body);
        return;
    }
    if (!w->started)
        h2s_req_start(r, 200, pb ? KPB_WATCH_TYPE : "application/json");
    rbuf_t *f = pb ? kpb_error_frame(st, reason, msg) : kjson_error_frame(st, reason, msg);
    h2s_req_send_rbuf(r, f);
    rbuf_unref(f);
    h2s_req_end(r);
}

/* Ends the stream with code (OK: clean end) and frees the watcher. */
static void watcher_end(struct watcher *w, int code, const char *msg)
{
    h2s_call_t *c = w->call;
    h2s_req_t *r = w->req;
    w->call = NULL;
    w->req = NULL;
    if (c) {
        h2s_call_on_close(c, NULL, NULL);
        if (code == GRPC_RESOURCE_EXHAUSTED)
            h2s_call_abort(c, code, msg); /* frees its unsent events now */
        else
            h2s_call_finish(c, code, msg);
    } else if (r) {
        h2s_req_on_close(r, NULL, NULL);
        w_end_req(w, r, code, msg);
    }
    if (w->on_end)
        w->on_end(w->arg, code);
    watcher_free(w);
}

static void watcher_gone(struct watcher *w)
{
    w->call = NULL;
    w->req = NULL;
    if (w->on_end)
        w->on_end(w->arg, -1);
    watcher_free(w);
}

static void watcher_closed(h2s_call_t *c, void *arg)
{
    watcher_gone(arg);
}

static void watcher_req_closed(h2s_req_t *r, void *arg)
{
    watcher_gone(arg);
}

/* Queues a frame; ends the watcher if its queue is past the cap. Returns -1 if it ended. */
static int watcher_send(struct watcher *w, rbuf_t *frame, uint64_t rev)
{
    if (w_send(w, frame) < 0) {
        watcher_end(w, GRPC_CANCELLED, "stream closed");
        return -1;
    }
    w->last_rev = rev;
    w->hub->stats.events_sent++;
    size_t q = w_queued(w);
    if (q > w->hub->stats.bytes_queued_max)
        w->hub->stats.bytes_queued_max = q;
    if (q > w->hub->cfg.queue_bytes) {
        w->hub->stats.cut_slow++;
        log_info("watch %s from %s: queue %zu bytes past the cap, ending it", w->k->resource,
                 w_peer(w), q);
        watcher_end(w, GRPC_RESOURCE_EXHAUSTED, "watch queue full: the client is too slow");
        return -1;
    }
    return 0;
}

/* ---- the global budget ---- */

#define BUDGET_MIN_VICTIM (64u << 10) /* a watcher this little behind is never cut */

struct victim {
    struct watcher *w;
    size_t q;
    int64_t stuck; /* ns its queue has not moved */
};

struct victims {
    struct victim *v;
    size_t n, cap;
    int64_t now;
};

static void victims_add_list(struct victims *vs, struct wlist *l)
{
    for (struct watcher *w = l ? l->head : NULL; w; w = w->next) {
        size_t q = w_queued(w);
        if (q < BUDGET_MIN_VICTIM)
            continue;
        if (vs->n == vs->cap) {
            vs->cap = vs->cap ? 2 * vs->cap : 64;
            vs->v = xrealloc(vs->v, vs->cap * sizeof(*vs->v));
        }
        vs->v[vs->n++] = (struct victim){w, q, w_stuck(w, vs->now)};
    }
}

static int victims_add_node(const char *key, void *val, void *arg)
{
    victims_add_list(arg, val);
    return 0;
}

/*
 * Stuck longest first (biggest queue first among equals), not simply the
 * biggest: a watcher that just started has its whole initial state queued,
 * often the biggest queue of all, yet it is not slow, it has had no time
 * to read.
 */
static int victim_cmp(const void *a, const void *b)
{
    const struct victim *x = a, *y = b;
    if (x->stuck != y->stuck)
        return x->stuck < y->stuck ? 1 : -1;
    return x->q < y->q ? 1 : x->q > y->q ? -1 : 0;
}

/* Registers a frame the hub made (takes a reference); returns it. */
static rbuf_t *ledger_add(watch_hub_t *h, rbuf_t *f)
{
    if (!f)
        return f;
    if (h->led_n == h->led_cap) {
        h->led_cap = h->led_cap ? 2 * h->led_cap : 256;
        h->led = xrealloc(h->led, h->led_cap * sizeof(*h->led));
    }
    h->led[h->led_n++] = rbuf_ref(f);
    h->led_bytes += f->len;
    return f;
}

/* Frees the frames nobody but the ledger holds any more. */
static void ledger_sweep(watch_hub_t *h)
{
    size_t j = 0;
    for (size_t i = 0; i < h->led_n; i++) {
        rbuf_t *f = h->led[i];
        if (f->refs == 1) {
            h->led_bytes -= f->len;
            rbuf_unref(f);
        } else {
            h->led[j++] = f;
        }
    }
    h->led_n = j;
    h->led_live = h->led_bytes;
}

static void ledger_free(watch_hub_t *h)
{
    for (size_t i = 0; i < h->led_n; i++)
        rbuf_unref(h->led[i]);
    free(h->led);
}

static size_t fan_pending_bytes(const watch_hub_t *h);

/* What the unsent events hold: the live frames, the queues' slots, the changes not yet fanned out.
 */
static size_t budget_held(const watch_hub_t *h)
{
    size_t n = h->led_bytes + fan_pending_bytes(h);
    if (h->cfg.srv) {
        struct h2s_stats st;
        h2s_get_stats(h->cfg.srv, &st);
        n += st.queue_mem;
    }
    return n;
}

/*
 * Over the budget: ends the watchers stuck longest (see victim_cmp) until the
 * frames still held are under 7/8 of it. Runs after a change has been
 * fanned out (never in the middle of a list walk). Sweeps (O(frames held))
 * only once 1 MiB more has been made since the last one: the ledger keeps
 * at most that much of dead frames alive, and while clients keep up (few
 * frames held) a sweep is cheap.
 */
static void budget_check(watch_hub_t *h)
{
    size_t limit = h->cfg.memory_limit;
    size_t slack = limit / 16 < (1u << 20) ? limit / 16 : 1u << 20;
    if (h->led_bytes <= h->led_live + slack && budget_held(h) <= limit)
        return;
    ledger_sweep(h);
    size_t held = budget_held(h);
    if (held <= limit) {
        h->budget_skip = 0;
        return;
    }
    if (h->budget_skip && held < h->budget_skip)
        return;
    struct victims vs = {.now = mono_ns()};
    for (int i = 0; i < NKINDS; i++)
        victims_add_list(&vs, &h->all[i]);
    smap_each(h->by_node, victims_add_node, &vs);
    qsort(vs.v, vs.n, sizeof(*vs.v), victim_cmp);
    size_t goal = limit - limit / 8, i = 0;
    while (held > goal && i < vs.n) {
        /* a batch whose queues add up to the excess, then see what that freed */
        size_t need = held - goal, got = 0;
        for (; i < vs.n && got < need; i++) {
            struct watcher *w = vs.v[i].w;
            h->stats.cut_slow++;
            h->stats.cut_budget++;
            log_info("watch %s from %s: %zu bytes queued (not moved for %" PRId64
                     " ms), unsent watch events hold %zu bytes, past the budget %zu: ending it",
                     w->k->resource, w_peer(w), vs.v[i].q, vs.v[i].stuck / 1000000, held, limit);
            got += vs.v[i].q;
            watcher_end(w, GRPC_RESOURCE_EXHAUSTED,
                        "watch queue full: the server's watch memory budget is spent and this "
                        "client is among the slowest");
        }
        ledger_sweep(h);
        held = budget_held(h);
    }
    free(vs.v);
    if (i)
        mem_release(); /* what the cut watchers held, back to the system now */
    /* nothing (more) to cut: the rest is held by small queues; look again later */
    h->budget_skip = held > limit ? held + limit / 8 : 0;
}

/* ---- one change ---- */

/*
 * The formats of events: gRPC frames, JSON lines, JSON lines of Tables
 * with their columns (a watcher's first event) and without, protobuf
 * frames.
 */
enum wfmt { WF_GRPC, WF_JSON, WF_TABLE, WF_TABLE_ROWS, WF_PB, WF_N };

static enum wfmt w_fmt(const struct watcher *w)
{
    if (!w->json)
        return WF_GRPC;
    switch (w->enc) {
    case WATCH_TABLE:
        return w->table_headers ? WF_TABLE_ROWS : WF_TABLE;
    case WATCH_PROTOBUF:
        return WF_PB;
    default:
        return WF_JSON;
    }
}

enum { EV_ADDED, EV_MODIFIED, EV_DELETED };
static const char *const ev_names[] = {"ADDED", "MODIFIED", "DELETED"};

struct chg {
    watch_hub_t *hub;
    const struct store_change *ch;
    const struct kind *k;
    ProtobufCMessage *cur, *prev;
    int cur_done, prev_done;
    rbuf_t *frame[WF_N][3]; /* by format (enum wfmt) and event type */
};

static ProtobufCMessage *chg_cur(struct chg *c)
{
    if (!c->cur_done && c->ch->val) {
        c->cur = obj_decode(c->k->desc, c->ch->val, c->ch->val_len);
        c->cur_done = 1;
    }
    return c->cur;
}

static ProtobufCMessage *chg_prev(struct chg *c)
{
    if (!c->prev_done && c->ch->prev) {
        c->prev = obj_decode(c->k->desc, c->ch->prev, c->ch->prev_len);
        c->prev_done = 1;
    }
    return c->prev;
}

/* One event of an object of kind k in format fmt. */
static rbuf_t *event_frame(const struct kind *k, enum wfmt fmt, const char *type, const void *obj,
                           size_t len)
{
    if (fmt == WF_GRPC)
        return wire_watch_frame(type, obj, len);
    if (fmt == WF_PB)
        return kpb_watch_frame(k, type, obj, len);
    rbuf_t *f = fmt == WF_TABLE        ? kjson_table_watch_frame(k, type, obj, len, true)
                : fmt == WF_TABLE_ROWS ? kjson_table_watch_frame(k, type, obj, len, false)
                                       : kjson_watch_frame(k, type, obj, len);
    return f ? f : kjson_error_frame(500, "InternalError", "undecodable stored object");
}

/* The frame of a change as an event of type (either thread: no ledger). */
static rbuf_t *make_frame(const struct store_change *ch, int type, const struct kind *k,
                          enum wfmt fmt)
{
    if (type != EV_DELETED)
        return event_frame(k, fmt, ev_names[type], ch->val, ch->val_len);
    /* the previous object, carrying the revision of its deletion */
    size_t n;
    void *b = wire_set_rv(ch->prev, ch->prev_len, ch->rev, &n);
    rbuf_t *f = b ? event_frame(k, fmt, "DELETED", b, n)
                  : event_frame(k, fmt, "DELETED", ch->prev, ch->prev_len);
    free(b);
    return f;
}

/* The change's event for w, made once for all the watchers of each format. */
static rbuf_t *chg_frame(struct chg *c, int type, const struct watcher *w)
{
    rbuf_t **f = &c->frame[w_fmt(w)][type];
    if (!*f)
        *f = ledger_add(c->hub, make_frame(c->ch, type, c->k, w_fmt(w)));
    return *f;
}

static void chg_done(struct chg *c)
{
    obj_free(c->cur);
    obj_free(c->prev);
    for (int f = 0; f < WF_N; f++)
        for (int i = 0; i < 3; i++)
            rbuf_unref(c->frame[f][i]);
}

static bool matches(const struct watcher *w, const struct kind *k, const ProtobufCMessage *o)
{
    if (!o)
        return false;
    if (w->lsel && !obj_match_labels(w->lsel, o))
        return false;
    struct obj_fields_arg fa = {k, o};
    return !w->fsel || sel_match(w->fsel, obj_field_get, &fa);
}

/* What the change is to w (EV_*), or -1: nothing w wants. Either thread. */
static int chg_type(const struct watcher *w, struct chg *c)
{
    const struct store_change *ch = c->ch;
    if (ch->rev <= w->last_rev)
        return -1;
    if (ch->key_len < w->prefix_len || memcmp(ch->key, w->prefix, w->prefix_len))
        return -1;
    if (!w->lsel && !w->fsel)
        return ch->type == STORE_PUT_NEW   ? EV_ADDED
               : ch->type == STORE_PUT_MOD ? EV_MODIFIED
                                           : EV_DELETED;
    bool cm = ch->val && matches(w, c->k, chg_cur(c));
    bool pm = ch->prev && matches(w, c->k, chg_prev(c));
    return cm && pm ? EV_MODIFIED : cm ? EV_ADDED : pm ? EV_DELETED : -1;
}

/* Sends an event's frame to w. Returns -1 if w ended. */
static int watcher_send_event(struct watcher *w, rbuf_t *frame, uint64_t rev)
{
    if (watcher_send(w, frame, rev) < 0)
        return -1;
    w->table_headers = true; /* a Table watcher's next events go without the columns */
    return 0;
}

/* Sends the change to w if it wants it. Returns -1 if w ended. */
static int deliver(struct watcher *w, struct chg *c)
{
    if (w->start)
        return 0; /* its start replays the log before it is fed */
    int type = chg_type(w, c);
    return type < 0 ? 0 : watcher_send_event(w, chg_frame(c, type, w), c->ch->rev);
}

/*
 * ---- fan-out ----
 *
 * A change goes to every watcher that wants it in slices of FAN_SLICE_NS:
 * with 10,000 watchers one change is milliseconds of work, and a request
 * read meanwhile would wait for all of it. Between slices the loop polls,
 * so unary calls are read and answered (h2s sends answers first). The
 * walk's place is a watcher pointer that fan_unlinked moves on when that
 * watcher goes. Changes arriving meanwhile wait in order, copied (the
 * store's bytes last only for the call), and count in the watch memory
 * budget; past FAN_BACKLOG of them the backlog is fanned out at once, so
 * memory stays bounded when writes outrun delivery. A watcher that starts
 * meanwhile is at a snapshot that already has the waiting changes (its
 * last_rev), and skips them; a bookmark never claims a revision not yet
 * fanned out (fan_done_rev).
 */

#define FAN_SLICE_NS 100000 /* one slice of delivery, at most (checked every FAN_CHECK) */
#define FAN_CHECK 32
#define FAN_TERMS 64
#define FAN_BACKLOG 256              /* changes waiting: past this, deliver without yielding */
#define FAN_BACKLOG_BYTES (8u << 20) /* or past this many of their bytes */

struct pending {
    struct pending *next;
    struct store_change ch; /* points into data */
    size_t size;
    char data[];
};

struct fanout {
    watch_hub_t *hub;
    struct event *slice; /* the next slice, after a poll */
    struct pending *cur; /* the change being delivered (its copy, once one was needed) */
    struct chg c;
    int stage;                   /* 0: its kind's list; 1, 2: the new and old nodes' lists */
    const char *node[2];         /* (into c's decoded objects) */
    struct watcher *next;        /* the next watcher to visit; NULL: this stage is done */
    struct pending *head, *tail; /* waiting */
    size_t n, bytes;
};

static struct pending *pending_copy(const struct store_change *ch)
{
    size_t sz = sizeof(struct pending) + ch->key_len + ch->val_len + ch->prev_len;
    struct pending *p = xmalloc(sz);
    p->next = NULL;
    p->size = sz;
    p->ch = *ch;
    char *d = p->data;
    memcpy(d, ch->key, ch->key_len);
    p->ch.key = d;
    d += ch->key_len;
    if (ch->val) {
        memcpy(d, ch->val, ch->val_len);
        p->ch.val = d;
        d += ch->val_len;
    }
    if (ch->prev) {
        memcpy(d, ch->prev, ch->prev_len);
        p->ch.prev = d;
    }
    return p;
}

static size_t fan_pending_bytes(const watch_hub_t *h)
{
    const struct fanout *f = h->fan;
    return f->bytes + (f->cur ? f->cur->size : 0);
}

static void fan_unlinked(struct watcher *w)
{
    struct fanout *f = w->hub->fan;
    if (f->next == w)
        f->next = w->next;
}

/* The first watcher of the list for stage i of the current change (NULL: none). */
static struct watcher *fan_stage_head(struct fanout *f, int i)
{
    watch_hub_t *h = f->hub;
    if (i == 0)
        return h->all[kind_index(f->c.k)].head;
    if (f->c.k != &kind_pod || !smap_count(h->by_node))
        return NULL;
    if (i == 1) {
        ProtobufCMessage *cur = chg_cur(&f->c), *prev = chg_prev(&f->c);
        f->node[0] = cur ? obj_pod_node(cur) : NULL;
        f->node[1] = prev ? obj_pod_node(prev) : NULL;
        if (f->node[0] && f->node[1] && !strcmp(f->node[0], f->node[1]))
            f->node[1] = NULL;
    }
    const char *n = f->node[i - 1];
    struct wlist *l = n ? smap_get(h->by_node, n) : NULL;
    return l ? l->head : NULL;
}

/* Delivers the current change until done (1) or past deadline (0; 0: none). */
static int fan_walk(struct fanout *f, int64_t deadline)
{
    for (size_t work = 0;;) {
        while (!f->next) {
            if (++f->stage > 2)
                return 1;
            f->next = fan_stage_head(f, f->stage);
        }
        if (deadline && work >= FAN_CHECK) {
            if (mono_ns() > deadline)
                return 0;
            work = 0;
        }
        struct watcher *w = f->next;
        f->next = w->next;
        /* a delivery is one unit, and matching a big selector a unit per FAN_TERMS terms */
        work += 1 + (sel_count(w->lsel) + sel_count(w->fsel)) / FAN_TERMS;
        deliver(w, &f->c);
    }
}

static void fan_begin(struct fanout *f, const struct store_change *ch, const struct kind *k)
{
    f->c = (struct chg){.hub = f->hub, .ch = ch, .k = k};
    f->stage = 0;
    f->node[0] = f->node[1] = NULL;
    f->next = fan_stage_head(f, 0);
}

static void fan_end(struct fanout *f)
{
    chg_done(&f->c);
    f->c.k = NULL;
    free(f->cur);
    f->cur = NULL;
    budget_check(f->hub);
}

/*
 * Goes on with the current change and then those waiting, until all are
 * delivered (returns 1) or deadline passes (0; deadline 0: no limit).
 */
static int fan_run(struct fanout *f, int64_t deadline)
{
    for (;;) {
        if (f->c.k) {
            if (!fan_walk(f, deadline))
                return 0;
            fan_end(f);
        }
        struct pending *p = f->head;
        if (!p)
            return 1;
        f->head = p->next;
        if (!f->head)
            f->tail = NULL;
        f->n--;
        f->bytes -= p->size;
        f->cur = p;
        fan_begin(f, &p->ch, kind_by_key(p->ch.key, p->ch.key_len));
    }
}

/* The next slice after a poll: a zero-timeout timer, not event_active (that runs before polling).
 */
static void fan_later(struct fanout *f)
{
    static const struct timeval now = {0, 0};
    evtimer_add(f->slice, &now);
}

static void fan_slice_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fanout *f = arg;
    if (!fan_run(f, mono_ns() + FAN_SLICE_NS))
        fan_later(f);
}

static struct fanout *fan_new(watch_hub_t *h)
{
    struct fanout *f = xcalloc(1, sizeof(*f));
    f->hub = h;
    f->slice = evtimer_new(h->base, fan_slice_cb, f);
    return f;
}

/* Everything waiting, delivered now (before the hub ends its watchers). */
static void fan_drain(watch_hub_t *h)
{
    if (fan_run(h->fan, 0))
        evtimer_del(h->fan->slice);
}

/* The newest revision fanned out to every watcher: bookmarks may claim no more. */
static uint64_t fan_done_rev(const watch_hub_t *h, uint64_t store_rev)
{
    const struct fanout *f = h->fan;
    if (f->c.k)
        return f->c.ch->rev - 1;
    if (f->head)
        return f->head->ch.rev - 1;
    return store_rev;
}

void watch_on_change(watch_hub_t *h, const struct store_change *ch)
{
    const struct kind *k = kind_by_key(ch->key, ch->key_len);
    if (!k || kind_index(k) < 0)
        return;
    struct fanout *f = h->fan;
    if (f->c.k || f->head) {
        /* behind others: wait in order (or, with too many waiting, all at once) */
        struct pending *p = pending_copy(ch);
        if (f->tail)
            f->tail->next = p;
        else
            f->head = p;
        f->tail = p;
        f->n++;
        f->bytes += p->size;
        if (f->n > FAN_BACKLOG || f->bytes > FAN_BACKLOG_BYTES)
            fan_drain(h);
        return;
    }
    fan_begin(f, ch, k);
    if (fan_walk(f, mono_ns() + FAN_SLICE_NS)) {
        fan_end(f);
        return;
    }
    /* the rest after a poll, from a copy: ch's bytes are the store's for this call only */
    f->cur = pending_copy(ch);
    f->c.ch = &f->cur->ch;
    fan_later(f);
}

/* ---- bookmarks, timeouts ---- */

/* A REST watcher's BOOKMARK at rev (initial_end: the end of a WatchList's initial state). */
static rbuf_t *rest_bookmark(const struct watcher *w, uint64_t rev, bool initial_end)
{
    return w->enc == WATCH_PROTOBUF ? kpb_bookmark_frame(w->k, rev, initial_end)
                                    : kjson_bookmark_frame(w->k, rev, initial_end);
}

static void bookmark_list(struct wlist *l, uint64_t rev, rbuf_t **frame)
{
    for (struct watcher *w = l->head, *n; w; w = n) {
        n = w->next;
        if (!w->bookmarks || w->start)
            continue;
        uint64_t r = rev > w->last_rev ? rev : w->last_rev;
        if (w->json) {
            rbuf_t *f = ledger_add(w->hub, rest_bookmark(w, r, false));
            watcher_send(w, f, r);
            rbuf_unref(f);
        } else if (r == rev) {
            if (!*frame)
                *frame = ledger_add(w->hub, wire_bookmark_frame(rev));
            watcher_send(w, *frame, r);
        } else {
            rbuf_t *f = ledger_add(w->hub, wire_bookmark_frame(r));
            watcher_send(w, f, r);
            rbuf_unref(f);
        }
    }
}

struct lists {
    struct wlist **v;
    size_t n;
};

static int collect(const char *key, void *val, void *arg)
{
    struct lists *ls = arg;
    ls->v[ls->n++] = val;
    return 0;
}

/* The node-indexed lists, copied out (ending watchers changes the map). */
static struct lists node_lists(watch_hub_t *h)
{
    struct lists ls = {xmalloc((smap_count(h->by_node) + 1) * sizeof(*ls.v)), 0};
    smap_each(h->by_node, collect, &ls);
    return ls;
}

static void bookmark_cb(evutil_socket_t fd, short what, void *arg)
{
    watch_hub_t *h = arg;
    uint64_t rev = fan_done_rev(h, store_rev(h->st));
    rbuf_t *frame = NULL;
    for (int i = 0; i < NKINDS; i++)
        bookmark_list(&h->all[i], rev, &frame);
    /* a node list is freed when its last watcher ends, which happens only as the
     * list's last step, so each list stays valid while it is walked */
    struct lists ls = node_lists(h);
    for (size_t i = 0; i < ls.n; i++)
        bookmark_list(ls.v[i], rev, &frame);
    free(ls.v);
    rbuf_unref(frame);
    budget_check(h);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    watcher_end(arg, GRPC_OK, NULL);
}

/*
 * ---- start ----
 *
 * A watch begins with what its client has not seen: every object of the
 * kind (no resourceVersion), or the log after the resourceVersion given.
 * That can be a whole store's worth of decoding and matching, so it is
 * read like a List (read.c): up to START_INLINE_NS on the loop, the rest in
 * the read worker (rpool.h), from one snapshot; selectors of a big request
 * are parsed there too. The worker only chooses what to send (struct
 * wpend); the loop makes the frames and sends them, in slices, then replays
 * the log from the snapshot to now (changes fanned out meanwhile, which the
 * unlisted watcher missed) and lists the watcher, in one loop callback:
 * from then on the fan-out feeds it.
 */

struct replay {
    struct watcher *w;
    const struct kind *k;
    int ended;
};

static int replay_log(const struct store_change *ch, void *arg)
{
    struct replay *r = arg;
    const struct kind *k = kind_by_key(ch->key, ch->key_len);
    if (k != r->k)
        return 0;
    struct chg c = {.hub = r->w->hub, .ch = ch, .k = k};
    int e = deliver(r->w, &c);
    chg_done(&c);
    if (e < 0)
        r->ended = 1;
    return r->ended;
}

#define START_INLINE_NS 1000000
#define START_INLINE_MAX_SEL (64u << 10) /* selectors longer than this parse in the worker */
#define START_CHECK 32                   /* items between clock reads */

/*
 * An event to send: the change, its bytes pointing into the snapshot (valid
 * until it ends), and its type. The worker only chooses; the loop makes the
 * frames as it sends them, so a starting watch holds no copy of its state,
 * and its frames count in the hub's budget like any other.
 */
struct wpend {
    struct store_change ch;
    int type;
};

struct wstart {
    struct rjob job;
    struct watcher *w;
    char *ltext, *ftext; /* selectors not parsed yet (big ones: in the worker) */
    store_rtxn_t *t;
    uint64_t snap, from;
    uint64_t log_done; /* replay: log records up to this one were read */
    char *resume_key;  /* initial state: keys up to this one were read */
    size_t resume_len;
    struct wpend *v;
    size_t n, cap, sent;
    bool paused, done, in_worker;
    int code; /* nonzero: end the watch with it and err */
    char *err;
    int timeout_s;
    bool initial_end; /* WatchList: a BOOKMARK says where the initial state ends */
    struct event *send_ev;
};

static bool start_spent(struct wstart *s)
{
    if (!rjob_spent(&s->job, s->w->lsel || s->w->fsel ? 1 : START_CHECK))
        return false;
    s->paused = true;
    return true;
}

static void start_push(struct wstart *s, const struct store_change *ch, int type)
{
    struct wpend *p = XPUSH(s->v, s->n, s->cap);
    p->ch = *ch;
    p->ch.key = NULL; /* not kept: only the bytes are */
    p->ch.key_len = 0;
    p->type = type;
}

static int start_log_cb(const struct store_change *ch, void *arg)
{
    struct wstart *s = arg;
    s->log_done = ch->rev;
    const struct kind *k = kind_by_key(ch->key, ch->key_len);
    if (k == s->w->k) {
        struct chg c = {.ch = ch, .k = k};
        int type = chg_type(s->w, &c);
        if (type >= 0)
            start_push(s, ch, type);
        chg_done(&c);
    }
    return start_spent(s);
}

static int start_obj_cb(const char *key, size_t key_len, const void *val, size_t val_len, void *arg)
{
    struct wstart *s = arg;
    struct watcher *w = s->w;
    bool m = true;
    if (w->lsel || w->fsel) {
        ProtobufCMessage *o = obj_decode(w->k->desc, val, val_len);
        m = matches(w, w->k, o);
        obj_free(o);
    }
    if (m) {
        struct store_change ch = {.rev = s->snap, .val = val, .val_len = val_len};
        start_push(s, &ch, EV_ADDED);
    }
    if (!start_spent(s))
        return 0;
    free(s->resume_key);
    s->resume_key = xstrndup(key, key_len);
    s->resume_len = key_len;
    return 1;
}

static int start_parse(struct wstart *s)
{
    struct watcher *w = s->w;
    sel_t *ls = NULL, *fs = NULL;
    if (sel_parse_labels(s->ltext, &ls, &s->err) < 0 ||
        obj_check_field_selector(w->k, s->ftext, &s->err) < 0 ||
        sel_parse_fields(s->ftext, &fs, &s->err) < 0) {
        sel_free(ls);
        s->code = GRPC_INVALID_ARGUMENT;
        return -1;
    }
    if (!sel_empty(ls))
        w->lsel = ls;
    else
        sel_free(ls);
    if (!sel_empty(fs))
        w->fsel = fs;
    else
        sel_free(fs);
    free(s->ltext);
    free(s->ftext);
    s->ltext = s->ftext = NULL;
    return 0;
}

/* Reads until done or paused (past the deadline, or cancelled). Loop or worker. */
static void start_read(struct wstart *s)
{
    s->paused = false;
    if (s->ltext && start_parse(s) < 0) {
        s->done = true;
        return;
    }
    int r = 0;
    if (s->from) {
        if (s->log_done < s->snap) /* from in the future: nothing to replay, wait for it */
            r = store_log_scan(s->t, s->log_done, start_log_cb, s);
        if (r == STORE_ECOMPACTED)
            s->code = GRPC_OUT_OF_RANGE; /* start_send says it */
    } else {
        const char *from = s->resume_key;
        r = store_scan(s->t, s->w->prefix, s->w->prefix_len, from, from ? s->resume_len : 0,
                       start_obj_cb, s);
    }
    if (r < 0 && !s->code) {
        s->code = GRPC_INTERNAL;
        s->err = xstrdup(store_strerror(r));
    }
    s->done = s->code || !s->paused;
}

static void start_free(struct wstart *s)
{
    if (s->t)
        store_read_end(s->t);
    free(s->v);
    free(s->resume_key);
    free(s->ltext);
    free(s->ftext);
    free(s->err);
    if (s->send_ev)
        event_free(s->send_ev);
    free(s);
}

/* The client went away while the watch was starting. */
static void start_gone(struct wstart *s)
{
    if (s->in_worker) {
        s->w->call = NULL;
        s->w->req = NULL;
        rjob_cancel(&s->job); /* start_job_done ends it */
        return;
    }
    watcher_gone(s->w); /* listed: frees s too */
}

static void start_closed(h2s_call_t *c, void *arg)
{
    start_gone(arg);
}

static void start_req_closed(h2s_req_t *r, void *arg)
{
    start_gone(arg);
}

/* Lists the watcher, not fed yet: the budget sees its queue from now on. */
static void start_list(struct wstart *s)
{
    struct watcher *w = s->w;
    watch_hub_t *h = w->hub;
    const char *node = w->k == &kind_pod ? sel_required_value(w->fsel, "spec.nodeName") : NULL;
    if (node) {
        w->node = xstrdup(node);
        struct wlist *l = smap_get(h->by_node, node);
        if (!l) {
            l = xcalloc(1, sizeof(*l));
            smap_put(h->by_node, node, l);
        }
        wl_add(l, w);
        h->stats.by_node++;
    } else {
        wl_add(&h->all[kind_index(w->k)], w);
    }
    w->start = s;
}

/* Ends the watch with code; s is gone after. */
static void start_fail(struct wstart *s, int code, const char *msg)
{
    struct watcher *w = s->w;
    bool listed = w->start != NULL;
    watcher_end(w, code, msg); /* a listed watcher's end frees s */
    if (!listed)
        start_free(s);
}

static void start_send(struct wstart *s);

static void start_send_cb(evutil_socket_t fd, short what, void *arg)
{
    start_send(arg);
}

/*
 * Sends what was read, in slices; then catches up with the log from the
 * snapshot to now and lets the fan-out feed the watcher, in one callback.
 */
static void start_send(struct wstart *s)
{
    struct watcher *w = s->w;
    watch_hub_t *h = w->hub;
    if (s->code == GRPC_OUT_OF_RANGE && !s->err)
        s->err = xasprintf("too old resource version: %" PRIu64 " (%" PRIu64 ")", s->from,
                           store_compacted(h->st));
    if (s->code) {
        start_fail(s, s->code, s->err);
        return;
    }
    if (!w->start)
        start_list(s);
    int64_t deadline = mono_ns() + START_INLINE_NS;
    while (s->sent < s->n) {
        struct wpend *p = &s->v[s->sent++];
        rbuf_t *f = ledger_add(h, make_frame(&p->ch, p->type, w->k, w_fmt(w)));
        int e = watcher_send_event(w, f, p->ch.rev);
        rbuf_unref(f);
        if (e < 0)
            return; /* ended, and s with it */
        if (s->sent % START_CHECK == 0 && mono_ns() > deadline && s->sent < s->n) {
            if (!s->send_ev)
                s->send_ev = evtimer_new(h->base, start_send_cb, s);
            static const struct timeval now = {0, 0};
            evtimer_add(s->send_ev, &now); /* after a poll */
            budget_check(h);               /* may end w, and s with it */
            return;
        }
    }
    if (w->last_rev < s->snap)
        w->last_rev = s->snap;
    if (s->initial_end && w->bookmarks) {
        /* WatchList: the state so far is out, at the snapshot's revision */
        rbuf_t *f = ledger_add(h, rest_bookmark(w, s->snap, true));
        int e = watcher_send(w, f, s->snap);
        rbuf_unref(f);
        if (e < 0)
            return; /* ended, and s with it */
    }
    store_read_end(s->t);
    s->t = NULL;
    /* changes fanned out while the watcher was not fed */
    store_rtxn_t *t;
    int r = store_read_begin(h->st, &t);
    if (r < 0) {
        start_fail(s, GRPC_UNAVAILABLE, store_strerror(r));
        return;
    }
    uint64_t now_rev = store_rtxn_rev(t);
    w->start = NULL; /* fed from here on: deliver() sends again */
    struct replay rp = {w, w->k, 0};
    if (w->last_rev < now_rev)
        r = store_log_scan(t, w->last_rev, replay_log, &rp);
    store_read_end(t);
    if (rp.ended) {
        start_free(s);
        return;
    }
    if (r < 0) {
        char *m = r == STORE_ECOMPACTED
                      ? xasprintf("too old resource version: %" PRIu64 " (%" PRIu64 ")",
                                  w->last_rev, store_compacted(h->st))
                      : xstrdup(store_strerror(r));
        watcher_end(w, r == STORE_ECOMPACTED ? GRPC_OUT_OF_RANGE : GRPC_INTERNAL, m);
        free(m);
        start_free(s);
        return;
    }
    if (w->last_rev < now_rev)
        w->last_rev = now_rev;
    if (s->timeout_s > 0) {
        w->timeout = evtimer_new(h->base, timeout_cb, w);
        struct timeval tv = {s->timeout_s, 0};
        evtimer_add(w->timeout, &tv);
    }
    w_on_close(w, watcher_closed, watcher_req_closed, w);
    if (w_start(w) < 0) {
        start_free(s);
        watcher_end(w, GRPC_CANCELLED, "stream closed");
        return;
    }
    start_free(s);
    budget_check(h); /* the initial state may be big (and unshared) */
}

static void start_job_work(struct rjob *j)
{
    start_read(RJOB_OWNER(j, struct wstart, job));
}

static void start_job_done(struct rjob *j, bool cancelled)
{
    struct wstart *s = RJOB_OWNER(j, struct wstart, job);
    s->in_worker = false;
    if (cancelled) { /* the client is gone; the watcher was never listed */
        struct watcher *w = s->w;
        w->call = NULL;
        w->req = NULL;
        if (w->on_end)
            w->on_end(w->arg, -1);
        watcher_free(w);
        start_free(s);
        return;
    }
    start_send(s);
}

static void watch_begin(watch_hub_t *h, h2s_call_t *call, h2s_req_t *rreq,
                        const struct watch_rest_opts *o, const struct kind *k,
                        const Coracle__V1__ListRequest *req, void (*on_end)(void *arg, int code),
                        void *arg)
{
    static const struct watch_rest_opts grpc_opts = {0};
    if (!o)
        o = &grpc_opts;
    char *err = NULL;
    int code = GRPC_INVALID_ARGUMENT;
    uint64_t from = 0;
    const char *rvs = req->resourceversion;
    if (rvs && *rvs) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(rvs, &end, 10);
        if (errno || *end || rvs[0] == '-' || rvs[0] == '+') {
            err =
                xasprintf("resourceVersion: Invalid value: \"%s\": must be a decimal number", rvs);
            goto fail;
        }
        from = v;
    }
    if (from && from < store_compacted(h->st)) {
        code = GRPC_OUT_OF_RANGE;
        err = xasprintf("too old resource version: %" PRIu64 " (%" PRIu64 ")", from,
                        store_compacted(h->st));
        goto fail;
    }
    struct watcher *w = xcalloc(1, sizeof(*w));
    h->stats.watchers++;
    w->hub = h;
    w->call = call;
    w->req = rreq;
    w->json = rreq != NULL;
    w->enc = o->enc;
    w->pb_errors = o->pb_errors;
    w->k = k;
    w->on_end = on_end;
    w->arg = arg;
    w->bookmarks = req->has_allowwatchbookmarks && req->allowwatchbookmarks;
    const char *ns = k->namespaced && req->namespace_ && *req->namespace_ ? req->namespace_ : NULL;
    w->prefix = ns ? xasprintf("%s/%s/", k->resource, ns) : xasprintf("%s/", k->resource);
    w->prefix_len = strlen(w->prefix);
    w->last_rev = from;

    struct wstart *s = xcalloc(1, sizeof(*s));
    s->w = w;
    s->from = from;
    s->job.work = start_job_work;
    s->job.done = start_job_done;
    s->ltext = xstrdup(req->labelselector ? req->labelselector : "");
    s->ftext = xstrdup(req->fieldselector ? req->fieldselector : "");
    s->timeout_s = req->has_timeoutseconds && req->timeoutseconds > 0 ? req->timeoutseconds : 0;
    s->initial_end = o->initial_end && !from;
    w_on_close(w, start_closed, start_req_closed, s);
    int r = store_read_begin(h->st, &s->t);
    if (r < 0) {
        start_fail(s, GRPC_UNAVAILABLE, store_strerror(r));
        return;
    }
    s->snap = store_rtxn_rev(s->t);
    /* replay the log after from, then live */
    s->log_done = from;
    if (from > s->snap)
        s->snap = from;
    if (strlen(s->ltext) + strlen(s->ftext) <= START_INLINE_MAX_SEL) {
        s->job.deadline = mono_ns() + START_INLINE_NS;
        start_read(s);
        if (s->done) {
            start_send(s);
            return;
        }
    }
    s->in_worker = true;
    rpool_submit(h->cfg.pool, &s->job);
    return;
fail:
    if (call) {
        h2s_call_finish(call, code, err);
    } else {
        struct watcher tmp = {.req = rreq, .json = true, .enc = o->enc, .pb_errors = o->pb_errors};
        w_end_req(&tmp, rreq, code, err);
    }
    if (on_end)
        on_end(arg, code);
    free(err);
}

void watch_start(watch_hub_t *h, h2s_call_t *call, const struct kind *k,
                 const Coracle__V1__ListRequest *req, void (*on_end)(void *arg, int code),
                 void *arg)
{
    watch_begin(h, call, NULL, NULL, k, req, on_end, arg);
}

void watch_start_rest(watch_hub_t *h, h2s_req_t *r, const struct watch_rest_opts *o,
                      const struct kind *k, const Coracle__V1__ListRequest *req,
                      void (*on_end)(void *arg, int code), void *arg)
{
    watch_begin(h, NULL, r, o, k, req, on_end, arg);
}

/* ---- hub ---- */

watch_hub_t *watch_hub_new(struct event_base *base, store_t *st, const struct watch_config *cfg)
{
    watch_hub_t *h = xcalloc(1, sizeof(*h));
    h->base = base;
    h->st = st;
    h->cfg = *cfg;
    if (!h->cfg.queue_bytes)
        h->cfg.queue_bytes = 16u << 20;
    if (!h->cfg.memory_limit)
        h->cfg.memory_limit = (size_t)256 << 20;
    if (h->cfg.bookmark_interval_s <= 0)
        h->cfg.bookmark_interval_s = 60;
    h->by_node = smap_new();
    h->fan = fan_new(h);
    h->bookmark = event_new(base, -1, EV_PERSIST, bookmark_cb, h);
    struct timeval tv = {h->cfg.bookmark_interval_s, 0};
    event_add(h->bookmark, &tv);
    return h;
}

static void end_list(struct wlist *l)
{
    while (l->head)
        watcher_end(l->head, GRPC_OK, NULL);
}

void watch_hub_end_all(watch_hub_t *h)
{
    fan_drain(h);
    for (int i = 0; i < NKINDS; i++)
        end_list(&h->all[i]);
    struct lists ls = node_lists(h);
    for (size_t i = 0; i < ls.n; i++) {
        /* the last watcher's end frees its list */
        for (;;) {
            struct watcher *w = ls.v[i]->head;
            bool last = !w->next;
            watcher_end(w, GRPC_OK, NULL);
            if (last)
                break;
        }
    }
    free(ls.v);
}

void watch_hub_free(watch_hub_t *h)
{
    if (!h)
        return;
    watch_hub_end_all(h);
    event_free(h->fan->slice);
    free(h->fan);
    event_free(h->bookmark);
    smap_free(h->by_node, free);
    ledger_free(h);
    free(h);
}

void watch_get_stats(const watch_hub_t *h, struct watch_stats *out)
{
    *out = h->stats;
    out->held = budget_held(h);
    out->pending = h->fan->n + (h->fan->c.k != NULL);
}
