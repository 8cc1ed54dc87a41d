/*
 * watch-bench: put-to-event latency and fan-out of watches, for coracle and
 * etcd, from one process with one clock. It opens N watchers, writes at a
 * fixed rate (or as fast as allowed) and times every delivery of every write
 * to every watcher: latency = the time the event reached the watcher minus
 * the time the write was sent. Prints one line of key=value results.
 *
 * coracle: watchers are /coracle.v1.Pods/Watch calls on namespace "wbench"
 * from the current revision; writes are /coracle.v1.Pods/Create of a pod
 * named w<run>-<seq> (the pod is a template file, see --pod). etcd: watchers
 * are watches on the prefix /wbench/<run>/ over /etcdserverpb.Watch/Watch
 * (bidi; --per-stream watches share one stream, as clientv3 does), writes
 * are /etcdserverpb.KV/Put of /wbench/<run>/<seq> with the template's bytes
 * as the value, so both carry the same payload. The etcd messages are
 * hand-encoded with the field numbers of etcd's api/etcdserverpb/rpc.proto
 * and api/mvccpb/kv.proto.
 *
 * rest: the same writes as coracle's, watched as a Kubernetes client does:
 * GET /api/v1/namespaces/wbench/pods?watch=1 streams (JSON lines, one
 * HTTP/2 stream each, --per-conn to a connection, nghttp2 directly), so
 * the two targets compare the REST watch path with the gRPC one.
 *
 * Before the timed phase one write (seq 0) must reach every watcher, so
 * every watch is established when the clock starts.
 *
 * Exit: 0 when the run completed (missing deliveries are a result and are
 * printed), 2 on a setup failure (no connection, the sync write never
 * arrived everywhere), 1 on bad arguments.
 */
#include "config.h"
#include "buf.h"
#include "coracle.pb-c.h"
#include "gcl.h"
#include "grpc.h"
#include "pb.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>
#include <unistd.h>

enum { T_CORACLE, T_ETCD, T_REST };

/* ---- latency histogram: exact below 1024 us, then 64 steps per power of two ---- */

#define H_LIN 1024
#define H_SUB 64
#define H_NB (H_LIN + 40 * H_SUB)

struct hist {
    uint64_t b[H_NB];
    uint64_t n;
    uint64_t max;
};

static void hist_add(struct hist *h, uint64_t us)
{
    size_t i;
    if (us < H_LIN) {
        i = us;
    } else {
        int e = 63 - __builtin_clzll(us); /* >= 10 */
        i = H_LIN + (size_t)(e - 10) * H_SUB + ((us >> (e - 6)) & (H_SUB - 1));
        if (i >= H_NB)
            i = H_NB - 1;
    }
    h->b[i]++;
    h->n++;
    if (us > h->max)
        h->max = us;
}

static uint64_t hist_low(size_t i)
{
    if (i < H_LIN)
        return i;
    size_t e = (i - H_LIN) / H_SUB + 10, sub = (i - H_LIN) % H_SUB;
    return ((uint64_t)1 << e) + ((uint64_t)sub << (e - 6));
}

/* The value below which a fraction q of the samples lie (bucket's lower bound), in us. */
static uint64_t hist_q(const struct hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->n), acc = 0;
    if (want < 1)
        want = 1;
    for (size_t i = 0; i < H_NB; i++) {
        acc += h->b[i];
        if (acc >= want)
            return hist_low(i);
    }
    return h->max;
}

/* ---- tiny protobuf helpers (hand encoding for etcd, hand decoding for speed) ---- */

/* A varint field (wire type 0); length-delimited ones are buf_field's. */
static void put_int(struct buf *w, unsigned field, uint64_t v)
{
    buf_varint(w, (uint64_t)field << 3 | 0);
    buf_varint(w, v);
}

/*
 * Next field of [*p, end): its number, wire type, and either the varint
 * (*v) or the bytes (*d, *dn). -1 at the end or on bad input.
 */
static int pb_next(const uint8_t **p, const uint8_t *end, unsigned *field, uint64_t *v,
                   const uint8_t **d, size_t *dn)
{
    uint64_t tag;
    if (*p >= end || pb_varint_get(p, end, &tag) < 0)
        return -1;
    *field = (unsigned)(tag >> 3);
    switch (tag & 7) {
    case 0:
        return pb_varint_get(p, end, v);
    case 1:
        if (end - *p < 8)
            return -1;
        *p += 8;
        return 0;
    case 5:
        if (end - *p < 4)
            return -1;
        *p += 4;
        return 0;
    case 2:
        if (pb_varint_get(p, end, v) < 0 || *v > (uint64_t)(end - *p))
            return -1;
        *d = *p;
        *dn = (size_t)*v;
        *p += *dn;
        return 0;
    default:
        return -1;
    }
}

/* The first length-delimited field number f of a message. */
static int pb_find(const uint8_t *m, size_t n, unsigned f, const uint8_t **d, size_t *dn)
{
    const uint8_t *p = m, *end = m + n;
    unsigned field;
    uint64_t v;
    const uint8_t *dd = NULL;
    size_t ddn = 0;
    while (pb_next(&p, end, &field, &v, &dd, &ddn) == 0)
        if (field == f && dd) {
            *d = dd;
            *dn = ddn;
            return 0;
        } else {
            dd = NULL;
        }
    return -1;
}

/* ---- the run ---- */

struct wb;

struct watcher {
    struct wb *wb;
    gcl_call_t *call; /* coracle: one call per watcher; etcd: the stream's first watcher */
    uint64_t count;
    uint64_t last_rv; /* coracle: resourceVersion of the last event */
    struct buf line;  /* rest: the event line received so far */
    int synced;
    int ended;
};

struct stream {
    struct wb *wb;
    gcl_call_t *call;
    int first, n; /* watchers [first, first+n) */
};

struct wb {
    struct event_base *base;
    int target;
    const char *addr;
    int nwatch, per_conn, per_stream;
    int conn_window; /* rest: the connections' receive window */
    double rate;
    long writes;
    int max_inflight;
    double drain_s, sync_s, max_s;
    int timed_out;
    char run[32];
    /* the payload */
    Coracle__V1__Pod *pod;
    uint8_t *podbuf;
    size_t podlen;
    /* connections */
    struct rconn *rconns; /* rest: one per --per-conn watchers */
    gcl_t **conns;
    int nconns;
    gcl_t *wconn;
    struct watcher *w;
    struct stream *st;
    int nst;
    /* state */
    int64_t *sent; /* mono ns per seq, 0 = not sent */
    long issued, acked, write_err;
    int inflight;
    int synced, ended;
    int phase; /* 0 setup, 1 sync, 2 timed, 3 done */
    uint64_t deliveries, stray;
    /* coracle: events not after the watcher's previous one (repeats, reorders) */
    uint64_t disorder;
    int64_t t0, t_last_deliv, t_last_progress, t_end_writes;
    uint64_t last_deliv_seen;
    struct hist lat, ack;
    struct event *tick;
    char first_err[256];
    int64_t rev;
    int rev_done;
};

static void note_err(struct wb *wb, const char *what, int code, const char *msg)
{
    if (!wb->first_err[0])
        snprintf(wb->first_err, sizeof wb->first_err, "%s: %s (%d) %s", what, grpc_code_name(code),
                 code, msg ? msg : "");
}

/* seq from a name or key ending in digits after the run prefix; -1 if not ours. */
static long parse_seq(struct wb *wb, const uint8_t *s, size_t n)
{
    size_t rl = strlen(wb->run);
    const uint8_t *p;
    if (wb->target != T_ETCD) {
        /* "w<run>-<seq>" */
        if (n < rl + 3 || s[0] != 'w' || memcmp(s + 1, wb->run, rl) || s[rl + 1] != '-')
            return -1;
        p = s + rl + 2;
    } else {
        /* "/wbench/<run>/<seq>" */
        if (n < rl + 10 || memcmp(s, "/wbench/", 8) || memcmp(s + 8, wb->run, rl) ||
            s[rl + 8] != '/')
            return -1;
        p = s + rl + 9;
    }
    long v = 0;
    for (; p < s + n; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static void deliver(struct wb *wb, struct watcher *w, long seq, int64_t now)
{
    if (seq < 0 || seq > wb->writes) {
        wb->stray++;
        return;
    }
    if (seq == 0) {
        if (!w->synced) {
            w->synced = 1;
            wb->synced++;
        }
        return;
    }
    if (!wb->sent[seq]) {
        wb->stray++;
        return;
    }
    w->count++;
    wb->deliveries++;
    wb->t_last_deliv = now;
    int64_t d = now - wb->sent[seq];
    hist_add(&wb->lat, d > 0 ? (uint64_t)d / 1000 : 0);
}

/* coracle: PodWatchEvent{type=1, object=2 Pod{metadata=1 ObjectMeta{name=1}}} */
static void coracle_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct watcher *w = arg;
    const uint8_t *pod, *meta, *name, *type;
    size_t podn, metan, namen, typen;
    if (pb_find(msg, len, 1, &type, &typen) < 0 || typen != 5 || memcmp(type, "ADDED", 5))
        return; /* BOOKMARK, MODIFIED of others: not ours */
    if (pb_find(msg, len, 2, &pod, &podn) < 0 || pb_find(pod, podn, 1, &meta, &metan) < 0 ||
        pb_find(meta, metan, 1, &name, &namen) < 0) {
        w->wb->stray++;
        return;
    }
    /* a watcher sees each revision once, in order: metadata.resourceVersion (6) rises */
    const uint8_t *rvs;
    size_t rvn;
    uint64_t rv = 0;
    if (pb_find(meta, metan, 6, &rvs, &rvn) == 0)
        for (size_t i = 0; i < rvn && rvs[i] >= '0' && rvs[i] <= '9'; i++)
            rv = rv * 10 + (uint64_t)(rvs[i] - '0');
    if (rv <= w->last_rv)
        w->wb->disorder++;
    else
        w->last_rv = rv;
    deliver(w->wb, w, parse_seq(w->wb, name, namen), mono_ns());
}

static void watch_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct watcher *w = arg;
    struct wb *wb = w->wb;
    if (!w->ended) {
        w->ended = 1;
        wb->ended++;
        note_err(wb, "watch ended", code, message);
    }
    w->call = NULL;
}

/*
 * etcd: WatchResponse{header=1, watch_id=2, created=3, canceled=4, events=11
 * Event{type=1, kv=2 KeyValue{key=1}}}.
 */
static void etcd_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct stream *s = arg;
    struct wb *wb = s->wb;
    const uint8_t *p = msg, *end = msg + len, *d = NULL;
    size_t dn = 0;
    unsigned f;
    uint64_t v, wid = 0;
    int canceled = 0;
    int64_t now = mono_ns();
    /* watch_id comes before the events in Go's encoding, but do not rely on it */
    while (pb_next(&p, end, &f, &v, &d, &dn) == 0) {
        if (f == 2)
            wid = v;
        else if (f == 4 && v)
            canceled = 1;
    }
    if (wid < 1 || wid > (uint64_t)s->n) {
        wb->stray++;
        return;
    }
    struct watcher *w = &wb->w[s->first + (int)wid - 1];
    if (canceled) {
        if (!w->ended) {
            w->ended = 1;
            wb->ended++;
            note_err(wb, "etcd watch canceled", 0, "");
        }
        return;
    }
    p = msg;
    while (pb_next(&p, end, &f, &v, &d, &dn) == 0) {
        const uint8_t *kv, *key;
        size_t kvn, keyn;
        if (f != 11)
            continue;
        if (pb_find(d, dn, 2, &kv, &kvn) < 0 || pb_find(kv, kvn, 1, &key, &keyn) < 0) {
            wb->stray++;
            continue;
        }
        deliver(wb, w, parse_seq(wb, key, keyn), now);
    }
}

static void stream_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct stream *s = arg;
    struct wb *wb = s->wb;
    for (int i = s->first; i < s->first + s->n; i++)
        if (!wb->w[i].ended) {
            wb->w[i].ended = 1;
            wb->ended++;
        }
    note_err(wb, "etcd watch stream ended", code, message);
    s->call = NULL;
}

/* ---- rest: JSON watch streams over HTTP/2 ---- */

struct rconn {
    struct wb *wb;
    struct bufferevent *bev;
    nghttp2_session *ngh;
    int first, n; /* its watchers [first, first+n) */
};

/* The string value after key (a JSON key with its quotes and colon) in [p, end), or NULL. */
static const char *json_after(const char *p, const char *end, const char *key, size_t *n)
{
    size_t kl = strlen(key);
    const char *k = memmem(p, (size_t)(end - p), key, kl);
    if (!k || k + kl >= end || k[kl] != '"')
        return NULL;
    const char *v = k + kl + 1, *q = memchr(v, '"', (size_t)(end - v));
    if (!q)
        return NULL;
    *n = (size_t)(q - v);
    return v;
}

/*
 * One event line: {"type":"ADDED","object":{"apiVersion":..,"metadata":{"name":..,
 * .., "resourceVersion":"N"..}..}}. kobj writes metadata's fields in proto order,
 * so the first "name" and "resourceVersion" after "metadata" are the object's.
 */
static void rest_line(struct watcher *w, const char *l, size_t n)
{
    const char *end = l + n, *type, *meta, *name, *rvs;
    size_t tn, nn, rvn;
    if (!(type = json_after(l, end, "\"type\":", &tn)) || tn != 5 || memcmp(type, "ADDED", 5))
        return; /* BOOKMARK, MODIFIED of others: not ours */
    if (!(meta = memmem(l, n, "\"metadata\":{", 12)) ||
        !(name = json_after(meta, end, "\"name\":", &nn))) {
        w->wb->stray++;
        return;
    }
    uint64_t rv = 0;
    if ((rvs = json_after(meta, end, "\"resourceVersion\":", &rvn)))
        for (size_t i = 0; i < rvn && rvs[i] >= '0' && rvs[i] <= '9'; i++)
            rv = rv * 10 + (uint64_t)(rvs[i] - '0');
    if (rv <= w->last_rv)
        w->wb->disorder++;
    else
        w->last_rv = rv;
    deliver(w->wb, w, parse_seq(w->wb, (const uint8_t *)name, nn), mono_ns());
}

static int rest_chunk(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
                      size_t len, void *arg)
{
    struct watcher *w = nghttp2_session_get_stream_user_data(s, sid);
    if (!w)
        return 0;
    const char *p = (const char *)data, *end = p + len, *nl;
    if (w->line.len) {
        /* the end of a line begun in an earlier chunk */
        if (!(nl = memchr(p, '\n', len))) {
            buf_add(&w->line, p, len);
            return 0;
        }
        buf_add(&w->line, p, (size_t)(nl - p));
        rest_line(w, w->line.p, w->line.len);
        buf_reset(&w->line);
        p = nl + 1;
    }
    /* whole lines straight from the chunk; a partial one kept */
    while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
        rest_line(w, p, (size_t)(nl - p));
        p = nl + 1;
    }
    if (p < end)
        buf_add(&w->line, p, (size_t)(end - p));
    return 0;
}

static int rest_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *arg)
{
    struct watcher *w = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (w && namelen == 7 && !memcmp(name, ":status", 7) &&
        (valuelen != 3 || memcmp(value, "200", 3))) {
        char m[32];
        snprintf(m, sizeof m, "HTTP %.*s", (int)(valuelen < 8 ? valuelen : 8), value);
        note_err(w->wb, "rest watch", 0, m);
    }
    return 0;
}

static int rest_close(nghttp2_session *s, int32_t sid, uint32_t code, void *arg)
{
    struct watcher *w = nghttp2_session_get_stream_user_data(s, sid);
    if (w && !w->ended) {
        w->ended = 1;
        w->wb->ended++;
        note_err(w->wb, "rest watch ended", 0, "");
    }
    return 0;
}

static ssize_t rest_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *arg)
{
    struct rconn *c = arg;
    bufferevent_write(c->bev, data, len);
    return (ssize_t)len;
}

static void rest_flush(struct rconn *c)
{
    if (nghttp2_session_send(c->ngh) != 0)
        note_err(c->wb, "rest connection", 0, "nghttp2_session_send failed");
}

static void rest_readcb(struct bufferevent *bev, void *arg)
{
    struct rconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in)) {
        struct evbuffer_iovec v[16];
        int nv = evbuffer_peek(in, -1, NULL, v, 16);
        size_t used = 0;
        for (int i = 0; i < nv && i < 16; i++) {
            if (nghttp2_session_mem_recv(c->ngh, v[i].iov_base, v[i].iov_len) < 0) {
                note_err(c->wb, "rest connection", 0, "bad HTTP/2 from the server");
                evbuffer_drain(in, evbuffer_get_length(in));
                return;
            }
            used += v[i].iov_len;
        }
        evbuffer_drain(in, used);
    }
    /*
     * libevent 2.1 reads 4 KiB per call: the rest in big reads, as gcl reads
     * the gRPC watchers' (and as a Go client reads 16 KiB DATA frames whole);
     * otherwise the system calls per 4 KiB, not the events, set the pace.
     */
    static uint8_t big[65536];
    ssize_t r;
    for (size_t got = 0; got < 4 * sizeof big; got += (size_t)r) {
        r = read(bufferevent_getfd(bev), big, sizeof big);
        if (r <= 0)
            break; /* EOF and errors: libevent's next read reports them */
        if (nghttp2_session_mem_recv(c->ngh, big, (size_t)r) < 0) {
            note_err(c->wb, "rest connection", 0, "bad HTTP/2 from the server");
            break;
        }
        if ((size_t)r < sizeof big)
            break;
    }
    rest_flush(c);
}

/* A connection that ends ends its watchers (the streams never see their close). */
static void rest_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct rconn *c = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    note_err(c->wb, "rest connection", 0, what & BEV_EVENT_EOF ? "closed by the server" : "failed");
    for (int i = c->first; i < c->first + c->n; i++)
        if (!c->wb->w[i].ended) {
            c->wb->w[i].ended = 1;
            c->wb->ended++;
        }
}

/* An HTTP/2 (h2c, prior knowledge) connection with windows large enough for every stream. */
static int rest_connect(struct wb *wb, struct rconn *c)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (evutil_parse_sockaddr_port(wb->addr, (struct sockaddr *)&ss, &sl) < 0)
        return -1;
    c->wb = wb;
    c->bev = bufferevent_socket_new(wb->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, rest_readcb, NULL, rest_eventcb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, sl) < 0)
        return -1;
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, rest_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, rest_chunk);
    nghttp2_session_callbacks_set_on_header_callback(cb, rest_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, rest_close);
    nghttp2_session_client_new(&c->ngh, cb, c);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry st[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100000},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
    nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, st, 2);
    nghttp2_session_set_local_window_size(c->ngh, NGHTTP2_FLAG_NONE, 0, wb->conn_window);
    return 0;
}

static void rest_open(struct wb *wb, const char *rv)
{
    int nc = (wb->nwatch + wb->per_conn - 1) / wb->per_conn;
    wb->rconns = xcalloc((size_t)nc, sizeof *wb->rconns);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/namespaces/wbench/pods?watch=1&resourceVersion=%s", rv);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv hd[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", wb->addr),
                       NV(":path", path), NV("accept", "application/json")};
#undef NV
    for (int c = 0; c < nc; c++) {
        if (rest_connect(wb, &wb->rconns[c]) < 0) {
            note_err(wb, "rest connect", 0, wb->addr);
            return;
        }
        wb->rconns[c].first = c * wb->per_conn;
        wb->rconns[c].n = wb->nwatch - c * wb->per_conn < wb->per_conn
                              ? wb->nwatch - c * wb->per_conn
                              : wb->per_conn;
        for (int i = c * wb->per_conn; i < wb->nwatch && i < (c + 1) * wb->per_conn; i++)
            if (nghttp2_submit_request(wb->rconns[c].ngh, NULL, hd, 5, NULL, &wb->w[i]) < 0)
                note_err(wb, "rest watch", 0, "nghttp2_submit_request failed");
        rest_flush(&wb->rconns[c]);
    }
}

/* ---- writes ---- */

struct wreq {
    struct wb *wb;
    long seq;
};

static void write_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct wreq *r = arg;
    struct wb *wb = r->wb;
    wb->inflight--;
    if (r->seq > 0)
        wb->acked++;
    if (code != GRPC_OK) {
        wb->write_err++;
        note_err(wb, "write", code, message);
    } else if (r->seq > 0) {
        int64_t d = mono_ns() - wb->sent[r->seq];
        hist_add(&wb->ack, d > 0 ? (uint64_t)d / 1000 : 0);
    }
    if (wb->phase == 2 && wb->acked == wb->writes)
        wb->t_end_writes = mono_ns();
    free(r);
}

static void issue_write(struct wb *wb, long seq)
{
    struct wreq *r = xmalloc(sizeof *r);
    r->wb = wb;
    r->seq = seq;
    wb->inflight++;
    if (seq > 0)
        wb->sent[seq] = mono_ns();
    if (wb->target != T_ETCD) {
        char name[64];
        snprintf(name, sizeof name, "w%s-%ld", wb->run, seq);
        wb->pod->metadata->name = name;
        size_t n = protobuf_c_message_get_packed_size(&wb->pod->base);
        uint8_t *buf = xmalloc(n);
        protobuf_c_message_pack(&wb->pod->base, buf);
        wb->pod->metadata->name = NULL;
        gcl_call_raw(wb->wconn, "/coracle.v1.Pods/Create", buf, n, NULL, write_done, r, 30000);
        free(buf);
    } else {
        /* PutRequest{key=1, value=2} */
        char key[64];
        int kn = snprintf(key, sizeof key, "/wbench/%s/%ld", wb->run, seq);
        struct buf w = {0};
        buf_field(&w, 1, key, (size_t)kn);
        buf_field(&w, 2, wb->podbuf, wb->podlen);
        gcl_call_raw(wb->wconn, "/etcdserverpb.KV/Put", w.p, w.len, NULL, write_done, r, 30000);
        buf_free(&w);
    }
}

static void pump_writes(struct wb *wb, int64_t now)
{
    long due = wb->writes;
    if (wb->rate > 0) {
        due = (long)((double)(now - wb->t0) * wb->rate / 1e9) + 1;
        if (due > wb->writes)
            due = wb->writes;
    }
    while (wb->issued < due && wb->inflight < wb->max_inflight)
        issue_write(wb, ++wb->issued);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct wb *wb = arg;
    int64_t now = mono_ns();
    if (wb->phase == 2) {
        pump_writes(wb, now);
        if (wb->deliveries != wb->last_deliv_seen) {
            wb->last_deliv_seen = wb->deliveries;
            wb->t_last_progress = now;
        }
        uint64_t expect = (uint64_t)wb->writes * (uint64_t)wb->nwatch;
        if (now - wb->t0 > (int64_t)(wb->max_s * 1e9)) {
            wb->timed_out = 1;
            wb->phase = 3;
            event_base_loopbreak(wb->base);
            return;
        }
        if (wb->acked == wb->writes && (wb->deliveries >= expect || wb->ended == wb->nwatch ||
                                        now - wb->t_last_progress > (int64_t)(wb->drain_s * 1e9))) {
            wb->phase = 3;
            event_base_loopbreak(wb->base);
        }
    }
}

/* ---- setup ---- */

static void rev_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct wb *wb = arg;
    const uint8_t *d;
    size_t dn;
    if (wb->target != T_ETCD) {
        /* PodList{metadata=1 ListMeta{resourceVersion=2}} */
        const uint8_t *rv;
        size_t rvn;
        if (pb_find(msg, len, 1, &d, &dn) == 0 && pb_find(d, dn, 2, &rv, &rvn) == 0) {
            char b[32];
            snprintf(b, sizeof b, "%.*s", (int)(rvn < 31 ? rvn : 31), (const char *)rv);
            wb->rev = strtoll(b, NULL, 10);
        }
    } else {
        /* RangeResponse{header=1 ResponseHeader{revision=3}} */
        if (pb_find(msg, len, 1, &d, &dn) == 0) {
            const uint8_t *p = d, *end = d + dn, *x;
            size_t xn;
            unsigned f;
            uint64_t v;
            while (pb_next(&p, end, &f, &v, &x, &xn) == 0)
                if (f == 3)
                    wb->rev = (int64_t)v;
        }
    }
}

static void rev_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct wb *wb = arg;
    if (code != GRPC_OK) {
        note_err(wb, "revision", code, message);
        wb->rev = -1;
    }
    wb->rev_done = 1;
}

static int get_revision(struct wb *wb)
{
    struct buf w = {0};
    const char *path;
    wb->rev = -1;
    wb->rev_done = 0;
    if (wb->target != T_ETCD) {
        /* ListRequest{namespace=1, limit=4} */
        buf_field(&w, 1, "wbench", 6);
        put_int(&w, 4, 1);
        path = "/coracle.v1.Pods/List";
    } else {
        /* RangeRequest{key=1, count_only=9} */
        buf_field(&w, 1, "/wbench", 7);
        put_int(&w, 9, 1);
        path = "/etcdserverpb.KV/Range";
    }
    gcl_call_raw(wb->wconn, path, w.p, w.len, rev_msg, rev_done, wb, 10000);
    buf_free(&w);
    while (!wb->rev_done)
        event_base_loop(wb->base, EVLOOP_ONCE);
    return wb->rev >= 0 ? 0 : -1;
}

static void open_watchers(struct wb *wb)
{
    char rv[32];
    snprintf(rv, sizeof rv, "%" PRId64, wb->rev);
    int conn = 0, on_conn = 0;
    if (wb->target == T_REST) {
        rest_open(wb, rv);
        return;
    }
    if (wb->target == T_CORACLE) {
        /* ListRequest{namespace=1, resourceVersion=6} */
        struct buf w = {0};
        buf_field(&w, 1, "wbench", 6);
        buf_field(&w, 6, rv, strlen(rv));
        for (int i = 0; i < wb->nwatch; i++) {
            if (on_conn == wb->per_conn) {
                conn++;
                on_conn = 0;
            }
            on_conn++;
            wb->w[i].call = gcl_call_raw(wb->conns[conn], "/coracle.v1.Pods/Watch", w.p, w.len,
                                         coracle_msg, watch_done, &wb->w[i], 0);
        }
        buf_free(&w);
        return;
    }
    char start[64], endk[64];
    int sn = snprintf(start, sizeof start, "/wbench/%s/", wb->run);
    memcpy(endk, start, (size_t)sn);
    endk[sn - 1] = '/' + 1; /* the prefix's range end */
    for (int s = 0; s < wb->nst; s++) {
        struct stream *st = &wb->st[s];
        if (on_conn + st->n > wb->per_conn && on_conn) {
            conn++;
            on_conn = 0;
        }
        on_conn += st->n;
        st->call =
            gcl_call_bidi(wb->conns[conn], "/etcdserverpb.Watch/Watch", etcd_msg, stream_done, st);
        for (int k = 0; k < st->n; k++) {
            /* WatchRequest{create_request=1 WatchCreateRequest{key=1, range_end=2,
             * start_revision=3, watch_id=7}} */
            struct buf c = {0}, r = {0};
            buf_field(&c, 1, start, (size_t)sn);
            buf_field(&c, 2, endk, (size_t)sn);
            put_int(&c, 3, (uint64_t)(wb->rev + 1));
            put_int(&c, 7, (uint64_t)k + 1);
            buf_field(&r, 1, c.p, c.len);
            if (st->call)
                gcl_call_send_raw(st->call, r.p, r.len);
            buf_free(&c);
            buf_free(&r);
        }
    }
}

static int load_pod(struct wb *wb, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "watch-bench: %s: %m\n", path);
        return -1;
    }
    uint8_t *buf = xmalloc(1 << 20);
    size_t n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    /* accept a gRPC-framed body too (the h2load body files) */
    if (n >= 5 && buf[0] == 0 &&
        ((size_t)buf[1] << 24 | (size_t)buf[2] << 16 | (size_t)buf[3] << 8 | buf[4]) == n - 5) {
        memmove(buf, buf + 5, n - 5);
        n -= 5;
    }
    wb->pod = coracle__v1__pod__unpack(NULL, n, buf);
    if (!wb->pod || !wb->pod->metadata) {
        fprintf(stderr, "watch-bench: %s: not a Pod with metadata\n", path);
        free(buf);
        return -1;
    }
    /* our names, our namespace */
    wb->pod->metadata->name = NULL;
    wb->pod->metadata->generatename = NULL;
    wb->pod->metadata->namespace_ = "wbench";
    wb->podlen = protobuf_c_message_get_packed_size(&wb->pod->base);
    wb->podbuf = xmalloc(wb->podlen);
    protobuf_c_message_pack(&wb->pod->base, wb->podbuf);
    free(buf);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: watch-bench --target coracle|etcd|rest --addr HOST:PORT --pod POD.bin [options]\n"
        "  --watchers N      watchers (default 1)\n"
        "  --rate R          writes per second, 0 = as fast as --inflight allows (default "
        "1000)\n"
        "  --writes W        timed writes (default 5000)\n"
        "  --inflight K      writes in flight at most (default 1000)\n"
        "  --per-conn C      watchers per HTTP/2 connection (default 500)\n"
        "  --per-stream S    etcd: watches sharing one Watch stream (default 1)\n"
        "  --conn-window B   rest: each connection's receive window (default 16 MiB; up to\n"
        "                    2147483647: the client then sends no WINDOW_UPDATE for 1 GiB)\n"
        "  --drain S         give up S seconds after the last delivery (default 10)\n"
        "  --sync-timeout S  for the first write to reach every watcher (default 120)\n"
        "  --max-time S      end the timed phase after S seconds however far (default 300)\n"
        "Prints: key=value results on one line.\n");
}

int main(int argc, char **argv)
{
    static struct wb wbs;
    struct wb *wb = &wbs;
    const char *target = NULL, *podfile = NULL;
    wb->nwatch = 1;
    wb->rate = 1000;
    wb->writes = 5000;
    wb->max_inflight = 1000;
    wb->per_conn = 500;
    wb->per_stream = 1;
    wb->conn_window = 16 << 20;
    wb->drain_s = 10;
    wb->sync_s = 120;
    wb->max_s = 300;
    static const struct option lo[] = {
        {"target", 1, 0, 't'},      {"addr", 1, 0, 'a'},         {"pod", 1, 0, 'p'},
        {"watchers", 1, 0, 'n'},    {"rate", 1, 0, 'r'},         {"writes", 1, 0, 'w'},
        {"inflight", 1, 0, 'i'},    {"per-conn", 1, 0, 'c'},     {"per-stream", 1, 0, 's'},
        {"drain", 1, 0, 'd'},       {"sync-timeout", 1, 0, 'S'}, {"max-time", 1, 0, 'm'},
        {"conn-window", 1, 0, 'W'}, {"help", 0, 0, 'h'},         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 't':
            target = optarg;
            break;
        case 'a':
            wb->addr = optarg;
            break;
        case 'p':
            podfile = optarg;
            break;
        case 'n':
            wb->nwatch = atoi(optarg);
            break;
        case 'r':
            wb->rate = atof(optarg);
            break;
        case 'w':
            wb->writes = atol(optarg);
            break;
        case 'i':
            wb->max_inflight = atoi(optarg);
            break;
        case 'c':
            wb->per_conn = atoi(optarg);
            break;
        case 's':
            wb->per_stream = atoi(optarg);
            break;
        case 'd':
            wb->drain_s = atof(optarg);
            break;
        case 'S':
            wb->sync_s = atof(optarg);
            break;
        case 'm':
            wb->max_s = atof(optarg);
            break;
        case 'W':
            wb->conn_window = (int)atol(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (!target || !wb->addr || !podfile || wb->nwatch < 1 || wb->writes < 1 ||
        wb->max_inflight < 1 || wb->per_conn < 1 || wb->per_stream < 1) {
        usage(stderr);
        return 1;
    }
    if (!strcmp(target, "coracle"))
        wb->target = T_CORACLE;
    else if (!strcmp(target, "etcd"))
        wb->target = T_ETCD;
    else if (!strcmp(target, "rest"))
        wb->target = T_REST;
    else {
        fprintf(stderr, "watch-bench: --target: coracle, etcd or rest, not %s\n", target);
        return 1;
    }
    log_init("watch-bench");
    if (load_pod(wb, podfile) < 0)
        return 1;
    snprintf(wb->run, sizeof wb->run, "%lx", (unsigned long)(now_ns() / 1000) & 0xffffffffUL);

    wb->base = event_base_new();
    wb->wconn = gcl_new(wb->base, wb->addr, NULL);
    if (!wb->wconn)
        return 1;
    wb->w = xcalloc((size_t)wb->nwatch, sizeof *wb->w);
    for (int i = 0; i < wb->nwatch; i++)
        wb->w[i].wb = wb;
    if (wb->target == T_ETCD) {
        wb->nst = (wb->nwatch + wb->per_stream - 1) / wb->per_stream;
        wb->st = xcalloc((size_t)wb->nst, sizeof *wb->st);
        for (int s = 0; s < wb->nst; s++) {
            wb->st[s].wb = wb;
            wb->st[s].first = s * wb->per_stream;
            wb->st[s].n = wb->nwatch - s * wb->per_stream < wb->per_stream
                              ? wb->nwatch - s * wb->per_stream
                              : wb->per_stream;
        }
    }
    /* rest watchers have connections of their own (rest_open) */
    wb->nconns = wb->target == T_REST ? 0 : (wb->nwatch + wb->per_conn - 1) / wb->per_conn + 1;
    wb->conns = xcalloc((size_t)wb->nconns, sizeof *wb->conns);
    for (int i = 0; i < wb->nconns; i++)
        wb->conns[i] = gcl_new(wb->base, wb->addr, NULL);
    wb->sent = xcalloc((size_t)wb->writes + 1, sizeof *wb->sent);

    if (get_revision(wb) < 0) {
        fprintf(stderr, "watch-bench: %s\n", wb->first_err);
        return 2;
    }
    int64_t t_setup = mono_ns();
    open_watchers(wb);
    /* sync: seq 0 must reach every watcher */
    wb->phase = 1;
    issue_write(wb, 0);
    int64_t deadline = mono_ns() + (int64_t)(wb->sync_s * 1e9);
    while (wb->synced + wb->ended < wb->nwatch && mono_ns() < deadline) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(wb->base, &tv);
        event_base_dispatch(wb->base);
    }
    if (wb->synced < wb->nwatch || wb->write_err) {
        fprintf(stderr, "watch-bench: only %d of %d watchers got the first write (%d ended)%s%s\n",
                wb->synced, wb->nwatch, wb->ended, wb->first_err[0] ? ": " : "", wb->first_err);
        return 2;
    }
    double setup_s = (double)(mono_ns() - t_setup) / 1e9;

    wb->phase = 2;
    wb->t0 = wb->t_last_progress = mono_ns();
    wb->tick = event_new(wb->base, -1, EV_PERSIST, tick_cb, wb);
    struct timeval ms = {0, 1000};
    event_add(wb->tick, &ms);
    pump_writes(wb, wb->t0);
    event_base_dispatch(wb->base);

    int64_t span = wb->t_last_deliv > wb->t0 ? wb->t_last_deliv - wb->t0 : 1;
    int64_t wspan = wb->t_end_writes > wb->t0 ? wb->t_end_writes - wb->t0 : 1;
    uint64_t expect = (uint64_t)wb->writes * (uint64_t)wb->nwatch;
    printf("target=%s watchers=%d writes=%ld rate=%.0f write_rate=%.1f write_errors=%ld "
           "deliveries=%" PRIu64 " missing=%" PRIu64 " stray=%" PRIu64 " disorder=%" PRIu64
           " ended=%d "
           "span_s=%.3f deliveries_per_s=%.0f lat_p50_us=%" PRIu64 " lat_p99_us=%" PRIu64
           " lat_max_us=%" PRIu64 " ack_p50_us=%" PRIu64 " ack_p99_us=%" PRIu64
           " setup_s=%.3f timed_out=%d\n",
           target, wb->nwatch, wb->writes, wb->rate, (double)wb->writes * 1e9 / (double)wspan,
           wb->write_err, wb->deliveries, expect > wb->deliveries ? expect - wb->deliveries : 0,
           wb->stray, wb->disorder, wb->ended, (double)span / 1e9,
           (double)wb->deliveries * 1e9 / (double)span, hist_q(&wb->lat, 0.5),
           hist_q(&wb->lat, 0.99), wb->lat.max, hist_q(&wb->ack, 0.5), hist_q(&wb->ack, 0.99),
           setup_s, wb->timed_out);
    if (wb->first_err[0])
        fprintf(stderr, "watch-bench: first error: %s\n", wb->first_err);
    fflush(stdout);
    /* the process exits: no need to tear down 10,000 calls one by one */
    _exit(0);
}
