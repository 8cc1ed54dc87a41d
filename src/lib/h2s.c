/*
 * h2s: the gRPC server over HTTP/2 (nghttp2 1.52 + libevent 2.1). See h2s.h.
 *
 * Shape (after nghttp2's examples/libevent-server.c): an evconnlistener
 * accepts; each connection is one struct conn owning its bufferevent and,
 * once the first bytes show an HTTP/2 preface, its nghttp2 session. The
 * read callback feeds nghttp2_session_mem_recv from the input evbuffer;
 * output is pulled with nghttp2_session_mem_send into the bufferevent's
 * output buffer once per read batch (or once per loop iteration through a
 * deferred "flush" event when a handler answers later), so there is no
 * syscall per frame. conn_free() tears everything down.
 *
 * A stream is a struct h2s_call from HEADERS until nghttp2 closes the
 * stream (or the connection goes): the call memory lives that long even
 * after the handler finished it, because queued response bytes must
 * outlive the handler's interest. Two flags keep the handler contract:
 * `done` (the handler finished it, it will never touch it again) and
 * `ended` (the end of the response has been submitted to nghttp2). When a
 * stream closes with done == 0 and the handler was invoked, on_close runs.
 *
 * The first bytes decide the protocol: the h2 client preface -> HTTP/2;
 * "GET " or "HEAD " -> a minimal HTTP/1.1 responder for /healthz & co.;
 * anything else closes the connection.
 *
 * Bounds: a client that does not read its answers gets nothing more read
 * (input stops while the output is backed up); request bodies are capped
 * per message and per connection; one periodic sweep closes idle
 * connections and PINGs connections whose calls have been quiet, closing
 * them when the PING goes unanswered (a peer that vanished).
 */
#include "config.h"
#include "h2s.h"
#include "addr.h"
#include "grpc.h"
#include "tls.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <protobuf-c/protobuf-c.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ROUTE_BUCKETS 64
#define OUT_HIGH (256 * 1024) /* stop pulling from nghttp2 above this much unsent output */
#define OUT_LOW (64 * 1024)   /* ...and resume when the socket drained below this */
#define H1_MAX_HEAD 8192      /* HTTP/1.1 request head cap */
#define CALL_FREELIST_MAX 1024
#define KEEP_BUF_MAX (8 * 1024) /* buffers bigger than this are not kept on free calls */
#define KEEP_Q_MAX 64           /* queue rings bigger than this are freed once empty */

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN 24

struct h2s_route {
    struct h2s_route *next;
    uint32_t hash;
    enum h2s_method_kind kind;
    h2s_handler_fn fn;
    void *arg;
    char path[];
};

struct h2s_listener {
    h2s_t *s;
    struct evconnlistener *l;
    char *unix_path;
    int port;
    SSL_CTX *tls; /* NULL: cleartext */
};

/*
 * Control frames a client may send (PING, SETTINGS, PRIORITY, RST_STREAM,
 * empty DATA): a bucket of CTRL_BURST refilled at CTRL_RATE per second.
 * A client that empties it gets GOAWAY(ENHANCE_YOUR_CALM): the floods of
 * CVE-2019-9512/9514/9515/9518 and 2023-44487 (rapid reset) cost us a
 * bounded amount of work per connection.
 */
#define CTRL_BURST 1000
#define CTRL_RATE 100

#define WQ_FACTOR 10                /* queued calls per in-flight slot */
#define WQ_WAIT (10 * 1000000000LL) /* longest wait in the queue, ns */

enum conn_mode { CM_SNIFF, CM_H2, CM_H1 };

/* Long-running calls held by one owner (h2s_call_claim), across connections. */
struct claim {
    struct claim *next;
    const void *key;
    unsigned n;
};
#define CLAIM_BUCKETS 64

struct conn {
    h2s_t *s;
    struct bufferevent *bev;
    struct event *wev; /* plain HTTP/2: room in a full socket again (see conn_send) */
    nghttp2_session *ngh;
    enum conn_mode mode;
    struct conn *prev, *next; /* s->conns */
    struct conn *dirty_next;  /* s->dirty */
    int dirty;
    struct conn *urgent_next; /* s->urgent */
    int urgent;
    int in_recv;
    int held;             /* send_data_cb held a frame back this pass: HELD_FULL, HELD_LATE */
    unsigned pass_frames; /* DATA frames this pass */
    int closing;          /* close once the output is flushed */
    int h1_paused;        /* HTTP/1.1: reading stopped until the client reads our answers */
    int64_t h1_since;     /* HTTP/1.1: a request head is incomplete since (mono ns), or 0 */
    int rpaused;          /* HTTP/2: reading stopped while the output is backed up */
    int dying;
    h2s_call_t *calls; /* every stream's call */
    size_t ncalls;
    size_t inbuf; /* request bytes buffered by all its calls (capped, see conn_inbuf_max) */
    int64_t last_active;
    int64_t ping_sent; /* keepalive PING outstanding since (mono ns), or 0 */
    int64_t born;      /* accepted at (mono ns): the preface must come within handshake_timeout */
    int64_t ctrl_at;   /* last refill of ctrl_tokens (mono ns) */
    int64_t ctrl_tokens;
    int tls;
    int is_local;      /* unix socket or loopback peer */
    size_t nstreaming; /* long-running (server-streaming, bidi) calls invoked */
    char peer[64];
};

enum call_method { M_OTHER, M_GET, M_HEAD, M_POST };

struct h2s_call {
    h2s_t *s;
    struct conn *conn;
    h2s_call_t *prev, *next; /* conn->calls; next also links the free list */
    int32_t sid;
    const struct h2s_route *route;
    uint8_t method;
    unsigned grpc : 1;         /* content-type application/grpc* */
    unsigned invoked : 1;      /* the handler has been called */
    unsigned done : 1;         /* the handler finished it (or never had it) */
    unsigned ended : 1;        /* end of response submitted */
    unsigned closed : 1;       /* stream closed: nothing may be submitted */
    unsigned submitted : 1;    /* response HEADERS submitted */
    unsigned deferred : 1;     /* data provider returned DEFERRED */
    unsigned req_ended : 1;    /* client sent END_STREAM */
    unsigned discard : 1;      /* ignore further request DATA */
    unsigned http : 1;         /* a plain HTTP response (no trailers) */
    unsigned hdr_over : 1;     /* header list too large */
    unsigned hdrs_done : 1;    /* request HEADERS complete */
    unsigned counted : 2;      /* 1: counted as an in-flight read, 2: mutating, 0: not */
    unsigned streaming : 1;    /* counted in conn->nstreaming */
    unsigned inq : 2;          /* waiting in s->wq[inq] for an in-flight slot (1 reads, 2 writes) */
    h2s_call_t *wprev, *wnext; /* s->wq */
    int64_t wsince;            /* queued at (mono ns) */
    uint32_t wlen;             /* the request message's length (at body + 5) */
    int64_t born;              /* stream opened at (mono ns) */
    struct claim *claim;       /* h2s_call_claim, or NULL */
    /* request headers: "name\0value\0" pairs */
    char *hbuf;
    size_t hlen, hcap, hbytes;
    size_t path_off; /* offset of the :path value in hbuf, or SIZE_MAX */
    /* request body */
    uint8_t *body;
    size_t blen, bcap;
    struct rbufq q;  /* response queue */
    size_t queued;   /* bytes in q */
    size_t held_len; /* a DATA frame of this many bytes of q that nghttp2 holds (WOULDBLOCK) */
    int64_t moved;   /* when q last went from empty or a DATA frame took from it */
    int status;
    char *message; /* percent-encoded grpc-message, or NULL */
    char status_buf[12];
    void (*on_close)(h2s_call_t *c, void *arg);
    void *on_close_arg;
    h2s_msg_fn on_msg;
    void *on_msg_arg;
    void *data;
};

struct h2s {
    struct event_base *base;
    struct h2s_config cfg;
    struct h2s_listener **ls;
    size_t nls;
    /* in-flight limits for unary calls (0 = none) */
    size_t max_inflight[3]; /* [1] reads, [2] mutating */
    size_t inflight[3];
    /*
     * Unary calls over their in-flight limit wait here, first come first
     * served (as Kubernetes' priority and fairness queues them), up to
     * WQ_FACTOR x the limit and WQ_WAIT; beyond that RESOURCE_EXHAUSTED.
     */
    h2s_call_t *wq_head[3], *wq_tail[3];
    size_t wq_len[3];
    struct event *dispatch_ev;
    int (*is_mutating)(const char *path);
    struct claim *claims[CLAIM_BUCKETS];
    struct h2s_route *routes[ROUTE_BUCKETS];
    h2s_http_fn http_fn;
    void *http_arg;
    struct conn *conns;
    /*
     * Connections with frames to send: urgent ones (an answer to a unary
     * call) first and all at once; then the rest (watch events, in FIFO
     * order) in slices of FLUSH_SLICE_NS, so that a fan-out to thousands of
     * streams does not hold a Get's answer, nor the reading of new requests,
     * for the whole of its pass. A connection with more than a slice of
     * frames to make (100 streams behind one change) is cut at the
     * deadline (bulk_deadline) and goes back to the end of the line.
     */
    struct conn *urgent;
    struct conn *dirty, *dirty_tail;
    int64_t bulk_deadline; /* while flush_cb sends a bulk connection */
    struct event *flush_ev;
    struct event *flush_later_ev;
    struct event *sweep_ev;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    h2s_call_t *free_calls;
    size_t nfree_calls;
    int accepting;
    int64_t ka_interval, ka_timeout; /* keepalive, ns; 0 = off */
    int64_t last_refuse_log;
    struct h2s_stats st;
    /*
     * conn_send's staging area: frames are appended here with memcpy and
     * handed to the output evbuffer in one evbuffer_add per pass (plus one
     * per referenced big chunk), not one evbuffer operation (and callback
     * run) per frame and message. Owned by one conn_send at a time.
     */
    uint8_t *sbuf;
    size_t slen, scap;
    struct conn *sowner;
};

static void conn_free(struct conn *c);
static int conn_send(struct conn *c);
static void conn_wready(evutil_socket_t fd, short what, void *arg);
static int sockaddr_is_loopback(const struct sockaddr *sa);
static void call_end(h2s_call_t *c, int code, const char *message);

/* ---------------------------------------------------------------- utils */

static uint32_t hash_path(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static const struct h2s_route *route_find(const h2s_t *s, const char *p, size_t n)
{
    uint32_t h = hash_path(p, n);
    for (const struct h2s_route *r = s->routes[h % ROUTE_BUCKETS]; r; r = r->next)
        if (r->hash == h && strlen(r->path) == n && memcmp(r->path, p, n) == 0)
            return r;
    return NULL;
}

#define NV_STATIC(n, v)                                                                            \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1,                              \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }

static nghttp2_nv nv_make(const char *n, const char *v)
{
    nghttp2_nv nv = {(uint8_t *)n, (uint8_t *)v, strlen(n), strlen(v),
                     NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
    return nv;
}

#define FLUSH_SLICE_NS 100000 /* bulk sending per loop pass, at most */

enum { HELD_FULL = 1, HELD_LATE = 2 }; /* output at OUT_HIGH; bulk pass past its deadline */

static void dirty_push(struct conn *c)
{
    h2s_t *s = c->s;
    c->dirty = 1;
    c->dirty_next = NULL;
    if (s->dirty_tail)
        s->dirty_tail->dirty_next = c;
    else
        s->dirty = c;
    s->dirty_tail = c;
}

static void mark_dirty(struct conn *c)
{
    if (c->dying || c->dirty || c->in_recv)
        return;
    dirty_push(c);
    event_active(c->s->flush_ev, EV_WRITE, 0);
}

static void mark_urgent(struct conn *c)
{
    h2s_t *s = c->s;
    if (c->dying || c->urgent || c->in_recv)
        return;
    c->urgent = 1;
    c->urgent_next = s->urgent;
    s->urgent = c;
    event_active(s->flush_ev, EV_WRITE, 0);
}

/* An answer to a unary call (or a plain HTTP one) goes out before bulk watch traffic. */
static void mark_dirty_for(h2s_call_t *call)
{
    if (call->route && call->route->kind != H2S_UNARY)
        mark_dirty(call->conn);
    else
        mark_urgent(call->conn);
}

/* ---------------------------------------------------------------- calls */

static h2s_call_t *call_new(struct conn *conn, int32_t sid)
{
    h2s_t *s = conn->s;
    h2s_call_t *c = s->free_calls;
    if (c) {
        s->free_calls = c->next;
        s->nfree_calls--;
        char *hbuf = c->hbuf;
        size_t hcap = c->hcap;
        uint8_t *body = c->body;
        size_t bcap = c->bcap;
        struct rbufq q = {.v = c->q.v, .cap = c->q.cap}; /* emptied by call_closed */
        memset(c, 0, sizeof(*c));
        c->hbuf = hbuf, c->hcap = hcap, c->body = body, c->bcap = bcap, c->q = q;
    } else {
        c = xcalloc(1, sizeof(*c));
    }
    c->s = s;
    c->conn = conn;
    c->sid = sid;
    c->path_off = SIZE_MAX;
    c->status = -1;
    c->born = mono_ns();
    c->next = conn->calls;
    if (conn->calls)
        conn->calls->prev = c;
    conn->calls = c;
    conn->ncalls++;
    s->st.calls_open++;
    s->st.calls_total++;
    return c;
}

static void wq_unlink(h2s_call_t *c)
{
    h2s_t *s = c->s;
    int q = c->inq;
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        s->wq_head[q] = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    else
        s->wq_tail[q] = c->wprev;
    c->wprev = c->wnext = NULL;
    s->wq_len[q]--;
    c->inq = 0;
}

/* The handler is done with the call: it no longer counts against the limits. */
static void call_uncount(h2s_call_t *c)
{
    if (c->inq)
        wq_unlink(c);
    if (c->counted) {
        c->s->inflight[c->counted]--;
        if (c->s->wq_len[c->counted])
            event_active(c->s->dispatch_ev, EV_WRITE, 0);
        c->counted = 0;
    }
    if (c->streaming) {
        c->conn->nstreaming--;
        c->streaming = 0;
    }
    if (c->claim) {
        struct claim *cl = c->claim;
        c->claim = NULL;
        if (--cl->n == 0) {
            struct claim **pp = &c->s->claims[((uintptr_t)cl->key >> 4) % CLAIM_BUCKETS];
            while (*pp != cl)
                pp = &(*pp)->next;
            *pp = cl->next;
            free(cl);
        }
    }
}

/* Drops everything the call holds and returns it to the free list. */
static void call_release(h2s_call_t *c)
{
    struct conn *conn = c->conn;
    h2s_t *s = c->s;
    call_uncount(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        conn->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    conn->ncalls--;
    conn->inbuf -= c->blen;
    c->blen = 0;
    s->st.calls_open--;
    rbufq_empty(&c->q);
    s->st.bytes_queued -= c->queued;
    c->queued = 0;
    free(c->message);
    c->message = NULL;
    if (s->nfree_calls >= CALL_FREELIST_MAX || c->q.cap > KEEP_Q_MAX)
        s->st.queue_mem -= rbufq_free(&c->q);
    if (s->nfree_calls >= CALL_FREELIST_MAX) {
        free(c->hbuf);
        free(c->body);
        free(c);
        return;
    }
    if (c->hcap > KEEP_BUF_MAX) {
        free(c->hbuf);
        c->hbuf = NULL;
        c->hcap = 0;
    }
    if (c->bcap > KEEP_BUF_MAX) {
        free(c->body);
        c->body = NULL;
        c->bcap = 0;
    }
    c->next = s->free_calls;
    s->free_calls = c;
    s->nfree_calls++;
}

/* The stream is gone: tell the handler if it still holds the call, then free it. */
static void call_closed(h2s_call_t *c)
{
    c->closed = 1;
    c->ended = 1;
    if (c->invoked && !c->done) {
        c->done = 1;
        if (c->on_close)
            c->on_close(c, c->on_close_arg);
    }
    call_release(c);
}

static void hdr_add(h2s_call_t *c, const uint8_t *name, size_t nlen, const uint8_t *value,
                    size_t vlen)
{
    size_t need = nlen + vlen + 2;
    if (c->hlen + need > c->hcap) {
        size_t cap = c->hcap ? c->hcap : 512;
        while (cap < c->hlen + need)
            cap *= 2;
        c->hbuf = xrealloc(c->hbuf, cap);
        c->hcap = cap;
    }
    memcpy(c->hbuf + c->hlen, name, nlen);
    c->hbuf[c->hlen + nlen] = '\0';
    memcpy(c->hbuf + c->hlen + nlen + 1, value, vlen);
    c->hbuf[c->hlen + nlen + 1 + vlen] = '\0';
    if (nlen == 5 && memcmp(name, ":path", 5) == 0)
        c->path_off = c->hlen + nlen + 1;
    c->hlen += need;
}

static void q_push(h2s_call_t *c, rbuf_t *b)
{
    if (!c->queued)
        c->moved = mono_ns();
    c->s->st.queue_mem += rbufq_push(&c->q, b);
    c->queued += b->len;
    c->s->st.bytes_queued += b->len;
}

/*
 * Response bodies go out without nghttp2 copying them: the read callback
 * only says how many queued bytes the next DATA frame carries
 * (NGHTTP2_DATA_FLAG_NO_COPY) and send_data_cb appends the frame header and
 * those bytes to the output: big chunks by reference to the rbuf (no copy
 * at all), small ones copied once.
 */
static ssize_t data_read_cb(nghttp2_session *ngh, int32_t sid, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)user, (void)buf;
    h2s_call_t *c = src->ptr;
    size_t n = c->queued < length ? c->queued : length;
    if (n)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n < c->queued)
        return (ssize_t)n;
    if (!c->ended) {
        if (n)
            return (ssize_t)n;
        c->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!c->http) {
        nghttp2_nv nv[2] = {NV_STATIC("grpc-status", ""), NV_STATIC("grpc-message", "")};
        size_t nnv = 1;
        nv[0].value = (uint8_t *)c->status_buf;
        nv[0].valuelen = strlen(c->status_buf);
        if (c->message) {
            nv[1].value = (uint8_t *)c->message;
            nv[1].valuelen = strlen(c->message);
            nnv = 2;
        }
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(ngh, sid, nv, nnv) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

static void rbuf_cleanup(const void *data, size_t len, void *arg)
{
    (void)data, (void)len;
    rbuf_unref(arg);
}

#define REF_MIN 2048     /* chunks at least this big are referenced, not copied */
#define STAGE_GIVE 16384 /* staged passes this big are handed over, not copied */

static void stage_put(h2s_t *s, const void *p, size_t n)
{
    if (s->slen + n > s->scap) {
        size_t cap = s->scap ? s->scap : 2 * STAGE_GIVE;
        while (cap < s->slen + n)
            cap *= 2;
        s->sbuf = xrealloc(s->sbuf, cap);
        s->scap = cap;
    }
    memcpy(s->sbuf + s->slen, p, n);
    s->slen += n;
}

static void stage_free(const void *data, size_t len, void *arg)
{
    (void)data, (void)len;
    free(arg);
}

/* Small passes are copied; big ones hand the buffer itself to the evbuffer (no second copy). */
static void stage_flush(h2s_t *s, struct evbuffer *out)
{
    if (s->slen >= STAGE_GIVE) {
        if (s->scap > s->slen + s->slen / 4)
            s->sbuf = xrealloc(s->sbuf, s->slen); /* shrinks in place: no waste held */
        evbuffer_add_reference(out, s->sbuf, s->slen, stage_free, s->sbuf);
        s->sbuf = NULL;
        s->scap = 0;
    } else if (s->slen) {
        evbuffer_add(out, s->sbuf, s->slen);
    }
    s->slen = 0;
}

/* A DATA frame took n queued bytes: the counters; an emptied big ring goes. */
static void q_sent(h2s_t *s, h2s_call_t *c, size_t n)
{
    if (!c->q.n && c->q.cap > KEEP_Q_MAX) /* a stream that lagged once does not keep its big ring */
        s->st.queue_mem -= rbufq_free(&c->q);
    c->queued -= n;
    s->st.bytes_queued -= n;
    if (n)
        c->moved = mono_ns();
}

/* While conn_send stages: the frame bytes go to the staging area. */
static int send_data_staged(struct conn *conn, nghttp2_frame *f, const uint8_t *framehd,
                            size_t length, h2s_call_t *c)
{
    h2s_t *s = conn->s;
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    size_t pad = f->data.padlen;
    stage_put(s, framehd, 9);
    if (pad) {
        uint8_t pl = (uint8_t)(pad - 1);
        stage_put(s, &pl, 1);
    }
    size_t n = 0;
    while (n < length && c->q.n) {
        rbuf_t *b = rbufq_at(&c->q, 0);
        size_t k = b->len - c->q.off;
        if (k > length - n)
            k = length - n;
        if (k >= REF_MIN) {
            stage_flush(s, out);
            evbuffer_add_reference(out, b->data + c->q.off, k, rbuf_cleanup, rbuf_ref(b));
        } else {
            stage_put(s, b->data + c->q.off, k);
        }
        n += k;
        rbufq_advance(&c->q, k);
    }
    q_sent(s, c, n);
    if (pad > 1) {
        static const uint8_t zeros[256];
        stage_put(s, zeros, pad - 1);
    }
    s->st.bytes_out += 9 + length + pad;
    return 0;
}

static int send_data_cb(nghttp2_session *ngh, nghttp2_frame *f, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *src, void *user)
{
    (void)ngh;
    struct conn *conn = user;
    h2s_call_t *c = src->ptr;
    h2s_t *s = conn->s;
    /*
     * One nghttp2_session_mem_send call goes on from a NO_COPY DATA frame
     * to the next, so conn_send's own checks between calls do not bound
     * it: a connection with 100 streams behind would have all of their
     * queues framed in one call. Here each frame checks the output bound
     * and (every few frames) the bulk pass's deadline; past either, nghttp2
     * keeps the frame for the next pass.
     */
    if (evbuffer_get_length(bufferevent_get_output(conn->bev)) + s->slen >= OUT_HIGH) {
        conn->held = HELD_FULL;
        c->held_len = length; /* its header is made: those bytes must stay (h2s_call_abort) */
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    if (s->bulk_deadline && ++conn->pass_frames % 8 == 0 && mono_ns() > s->bulk_deadline) {
        conn->held = HELD_LATE;
        c->held_len = length;
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    c->held_len = 0;
    if (s->sowner == conn)
        return send_data_staged(conn, f, framehd, length, c);
    struct evbuffer *out = bufferevent_get_output(conn->bev);
    size_t pad = f->data.padlen;
    /*
     * The frame header and the run of small chunks after it are copied
     * into one reserved extent (one evbuffer operation instead of one per
     * message: a watch stream's DATA frame often carries many small events).
     */
    size_t small = 9 + (pad ? 1 : 0), scan = 0;
    for (size_t i = 0, off = c->q.off; i < c->q.n && scan < length; i++, off = 0) {
        const rbuf_t *b = rbufq_at(&c->q, i);
        size_t k = b->len - off;
        if (k > length - scan)
            k = length - scan;
        if (k >= REF_MIN)
            break;
        small += k;
        scan += k;
    }
    struct evbuffer_iovec v;
    uint8_t *dst = NULL;
    if (evbuffer_reserve_space(out, (ev_ssize_t)small, &v, 1) == 1 && v.iov_len >= small) {
        dst = v.iov_base;
        memcpy(dst, framehd, 9);
        if (pad)
            dst[9] = (uint8_t)(pad - 1);
        dst += small - scan;
        if (!scan) {
            v.iov_len = small;
            evbuffer_commit_space(out, &v, 1);
        }
    } else {
        scan = 0;
        evbuffer_add(out, framehd, 9);
        if (pad) {
            uint8_t pl = (uint8_t)(pad - 1);
            evbuffer_add(out, &pl, 1);
        }
    }
    size_t n = 0;
    while (n < length && c->q.n) {
        rbuf_t *b = rbufq_at(&c->q, 0);
        size_t k = b->len - c->q.off;
        if (k > length - n)
            k = length - n;
        if (n < scan) {
            memcpy(dst, b->data + c->q.off, k);
            dst += k;
            if (n + k == scan) {
                v.iov_len = small;
                evbuffer_commit_space(out, &v, 1);
            }
        } else if (k >= REF_MIN) {
            evbuffer_add_reference(out, b->data + c->q.off, k, rbuf_cleanup, rbuf_ref(b));
        } else {
            evbuffer_add(out, b->data + c->q.off, k);
        }
        n += k;
        rbufq_advance(&c->q, k);
    }
    q_sent(conn->s, c, n);
    if (pad > 1) {
        static const uint8_t zeros[256];
        evbuffer_add(out, zeros, pad - 1);
    }
    conn->s->st.bytes_out += 9 + length + pad;
    return 0;
}

/* Submits the response HEADERS with a data provider over the queue. */
static int call_submit_headers(h2s_call_t *c)
{
    static const nghttp2_nv nv[] = {NV_STATIC(":status", "200"),
                                    NV_STATIC("content-type", "application/grpc")};
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = data_read_cb};
    c->submitted = 1;
    int rv = nghttp2_submit_response(c->conn->ngh, c->sid, nv, ARRAY_SIZE(nv), &dp);
    if (rv != 0) {
        log_debug("h2s: submit_response on stream %d: %s", c->sid, nghttp2_strerror(rv));
        return -1;
    }
    return 0;
}

static void call_kick(h2s_call_t *c)
{
    if (!c->submitted) {
        call_submit_headers(c);
    } else if (c->deferred) {
        c->deferred = 0;
        nghttp2_session_resume_data(c->conn->ngh, c->sid);
    }
    mark_dirty_for(c);
}

/*
 * Ends the response with a status. Before any message this is a
 * trailers-only response (one HEADERS with END_STREAM); otherwise the
 * trailers follow the queued data (see data_read_cb).
 */
static void call_end(h2s_call_t *c, int code, const char *message)
{
    if (c->ended || c->closed || c->conn->dying)
        return;
    c->ended = 1;
    c->status = code;
    snprintf(c->status_buf, sizeof(c->status_buf), "%d", code);
    if (message && *message)
        c->message = grpc_message_encode(message);
    if (!c->submitted && c->q.n == 0) {
        nghttp2_nv nv[] = {NV_STATIC(":status", "200"),
                           NV_STATIC("content-type", "application/grpc"),
                           NV_STATIC("grpc-status", ""), NV_STATIC("grpc-message", "")};
        nv[2].value = (uint8_t *)c->status_buf;
        nv[2].valuelen = strlen(c->status_buf);
        size_t nnv = 3;
        if (c->message) {
            nv[3].value = (uint8_t *)c->message;
            nv[3].valuelen = strlen(c->message);
            nnv = 4;
        }
        c->submitted = 1;
        int rv = nghttp2_submit_response(c->conn->ngh, c->sid, nv, nnv, NULL);
        if (rv != 0)
            log_debug("h2s: submit_response on stream %d: %s", c->sid, nghttp2_strerror(rv));
        mark_dirty_for(c);
        return;
    }
    call_kick(c);
}

/* A plain HTTP response on an HTTP/2 stream (GET /healthz over h2). */
static void call_http_respond(h2s_call_t *c, int status, const char *ctype, char *body, size_t blen)
{
    char st[8], cl[24];
    snprintf(st, sizeof(st), "%d", status);
    snprintf(cl, sizeof(cl), "%zu", blen);
    nghttp2_nv nv[] = {nv_make(":status", st), nv_make("content-type", ctype),
                       nv_make("content-length", cl)};
    for (size_t i = 0; i < ARRAY_SIZE(nv); i++)
        nv[i].flags = NGHTTP2_NV_FLAG_NONE; /* copied: st/cl are on the stack */
    c->http = 1;
    c->ended = 1;
    c->done = 1;
    c->submitted = 1;
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = data_read_cb};
    if (blen && c->method != M_HEAD)
        q_push(c, rbuf_new(body, blen));
    int rv = nghttp2_submit_response(c->conn->ngh, c->sid, nv, ARRAY_SIZE(nv), c->q.n ? &dp : NULL);
    if (rv != 0)
        log_debug("h2s: submit_response on stream %d: %s", c->sid, nghttp2_strerror(rv));
    mark_dirty_for(c);
}

static void http_dispatch(h2s_t *s, const char *path, int *status, const char **ctype, char **body,
                          size_t *blen)
{
    *status = 404;
    *ctype = "text/plain";
    *body = NULL;
    *blen = 0;
    if (s->http_fn)
        s->http_fn(path, status, ctype, body, blen, s->http_arg);
    if (!*ctype)
        *ctype = "text/plain";
    if (!*body && *status == 404) {
        *body = xstrdup("404 page not found\n");
        *blen = strlen(*body);
    }
}

static void call_reject_busy(h2s_call_t *c)
{
    c->s->st.inflight_rejected++;
    c->done = 1;
    c->discard = 1;
    call_end(c, GRPC_RESOURCE_EXHAUSTED, "too many requests, please try again later");
}

static void call_invoke(h2s_call_t *c, const uint8_t *msg, size_t len)
{
    h2s_t *s = c->s;
    if (c->route->kind == H2S_UNARY) {
        int cls = s->is_mutating && s->is_mutating(c->route->path) ? 2 : 1;
        if (s->max_inflight[cls] && (s->inflight[cls] >= s->max_inflight[cls] || s->wq_len[cls])) {
            if (s->wq_len[cls] >= WQ_FACTOR * s->max_inflight[cls]) {
                call_reject_busy(c);
                return;
            }
            /* wait for a slot; msg is c->body + 5 and stays until the call goes */
            c->inq = (unsigned)cls;
            c->wsince = mono_ns();
            c->wlen = (uint32_t)len;
            c->wprev = s->wq_tail[cls];
            c->wnext = NULL;
            if (s->wq_tail[cls])
                s->wq_tail[cls]->wnext = c;
            else
                s->wq_head[cls] = c;
            s->wq_tail[cls] = c;
            s->wq_len[cls]++;
            return;
        }
        s->inflight[cls]++;
        c->counted = (unsigned)cls;
    } else {
        if (c->conn->nstreaming >= s->cfg.max_streaming) {
            char m[96];
            snprintf(m, sizeof(m), "too many watches and streams on this connection (max %u)",
                     s->cfg.max_streaming);
            s->st.inflight_rejected++;
            c->done = 1;
            c->discard = 1;
            call_end(c, GRPC_RESOURCE_EXHAUSTED, m);
            return;
        }
        c->conn->nstreaming++;
        c->streaming = 1;
    }
    c->invoked = 1;
    c->route->fn(c, msg, len, c->route->arg);
}

/* Hands queued calls the in-flight slots freed since; expires those that waited too long. */
static void dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    h2s_t *s = arg;
    int64_t now = mono_ns();
    for (int cls = 1; cls <= 2; cls++) {
        while (s->wq_head[cls]) {
            h2s_call_t *c = s->wq_head[cls];
            if (now - c->wsince > WQ_WAIT) {
                wq_unlink(c);
                call_reject_busy(c);
                continue;
            }
            if (s->inflight[cls] >= s->max_inflight[cls])
                break;
            wq_unlink(c);
            s->inflight[cls]++;
            c->counted = (unsigned)cls;
            c->invoked = 1;
            c->route->fn(c, c->body + GRPC_FRAME_HDR, c->wlen, c->route->arg);
        }
    }
}

/* The request HEADERS are complete. */
static void call_headers_done(h2s_call_t *c)
{
    h2s_t *s = c->s;
    const char *path = c->path_off != SIZE_MAX ? c->hbuf + c->path_off : "/";
    c->hdrs_done = 1;
    if (c->hdr_over) {
        if (c->grpc && c->method == M_POST) {
            c->done = 1;
            call_end(c, GRPC_RESOURCE_EXHAUSTED, "header list too large");
        } else {
            char *b = xstrdup("431 request header fields too large\n");
            call_http_respond(c, 431, "text/plain", b, strlen(b));
            free(b);
        }
        c->discard = 1;
        return;
    }
    if (c->method == M_GET || c->method == M_HEAD) {
        int status;
        const char *ctype;
        char *body;
        size_t blen;
        http_dispatch(s, path, &status, &ctype, &body, &blen);
        call_http_respond(c, status, ctype, body, blen);
        free(body);
        c->discard = 1;
        return;
    }
    if (c->method != M_POST || !c->grpc) {
        char *b = xstrdup(c->method == M_POST ? "415 unsupported media type\n"
                                              : "405 method not allowed\n");
        call_http_respond(c, c->method == M_POST ? 415 : 405, "text/plain", b, strlen(b));
        free(b);
        c->discard = 1;
        return;
    }
    if (!s->accepting) {
        c->done = 1;
        c->discard = 1;
        call_end(c, GRPC_UNAVAILABLE, "server shutting down");
        return;
    }
    c->route = route_find(s, path, strlen(path));
    if (!c->route) {
        char *m = xasprintf("unknown method %s", path);
        c->done = 1;
        c->discard = 1;
        call_end(c, GRPC_UNIMPLEMENTED, m);
        free(m);
        return;
    }
    /*
     * RFC 9218 priorities (SETTINGS_NO_RFC7540_PRIORITIES, conn_start_h2):
     * answers to unary calls before stream traffic, and streams (watches,
     * logs, tunnels) served round-robin (incremental), as the RFC 7540
     * tree with equal weights did; a non-incremental stream is sent whole
     * before the next. Clients' own signals are ignored.
     */
    nghttp2_extpri pri = {c->route->kind == H2S_UNARY ? 2 : 3, c->route->kind != H2S_UNARY};
    nghttp2_session_change_extpri_stream_priority(c->conn->ngh, c->sid, &pri, 1);
    if (c->route->kind == H2S_BIDI)
        call_invoke(c, NULL, 0);
}

/* Ends the call for bad input before the handler holds it (or while it does). */
static void call_fail_input(h2s_call_t *c, int code, const char *msg)
{
    c->discard = 1;
    if (!c->invoked)
        c->done = 1;
    call_end(c, code, msg);
}

/*
 * A connection may buffer at most this much request data across its
 * streams, so max_streams x max_msg cannot be reached by one client.
 */
static size_t conn_inbuf_max(const h2s_t *s)
{
    size_t m = 4 * ((size_t)s->cfg.max_msg + GRPC_FRAME_HDR);
    return m > (64u << 20) ? m : (64u << 20);
}

static void body_append(h2s_call_t *c, const uint8_t *d, size_t n)
{
    c->conn->inbuf += n;
    if (c->blen + n > c->bcap) {
        size_t cap = c->bcap ? c->bcap : 256;
        while (cap < c->blen + n)
            cap *= 2;
        c->body = xrealloc(c->body, cap);
        c->bcap = cap;
    }
    memcpy(c->body + c->blen, d, n);
    c->blen += n;
}

/* Checks a frame header at the start of buf; 0 ok, -1 when the call was failed. */
static int check_frame(h2s_call_t *c, const uint8_t *buf, size_t avail, uint32_t *mlen)
{
    int r = grpc_frame_peek(buf, avail, mlen);
    if (r < 0) {
        call_fail_input(c, GRPC_UNIMPLEMENTED, "compressed messages are not supported");
        return -1;
    }
    if (r > 0 && *mlen > c->s->cfg.max_msg) {
        char m[128];
        snprintf(m, sizeof(m), "grpc: received message larger than max (%u vs. %u)", *mlen,
                 c->s->cfg.max_msg);
        call_fail_input(c, GRPC_RESOURCE_EXHAUSTED, m);
        return -1;
    }
    return r;
}

static void call_data(h2s_call_t *c, const uint8_t *d, size_t n)
{
    uint32_t mlen;
    if (c->discard || c->ended || !c->route)
        return;
    if (c->conn->inbuf + n > conn_inbuf_max(c->s)) {
        call_fail_input(c, GRPC_RESOURCE_EXHAUSTED,
                        "grpc: too much request data buffered on this connection");
        return;
    }
    if (c->route->kind != H2S_BIDI) {
        /* one message: collect the header, check it, then at most the message */
        while (n && c->blen < GRPC_FRAME_HDR) {
            body_append(c, d, 1);
            d++, n--;
        }
        if (c->blen < GRPC_FRAME_HDR)
            return;
        if (check_frame(c, c->body, c->blen, &mlen) < 0)
            return;
        if (c->blen + n > (size_t)GRPC_FRAME_HDR + mlen) {
            call_fail_input(c, GRPC_INTERNAL,
                            "grpc: more than one request message for a "
                            "unary or server-streaming method");
            return;
        }
        body_append(c, d, n);
        return;
    }
    body_append(c, d, n);
    size_t off = 0;
    while (!c->discard && !c->closed) {
        int r = check_frame(c, c->body + off, c->blen - off, &mlen);
        if (r < 0)
            return;
        if (r == 0 || c->blen - off - GRPC_FRAME_HDR < mlen)
            break;
        if (c->on_msg && !c->done)
            c->on_msg(c, c->body + off + GRPC_FRAME_HDR, mlen, c->on_msg_arg);
        off += GRPC_FRAME_HDR + mlen;
    }
    if (off && !c->closed) {
        memmove(c->body, c->body + off, c->blen - off);
        c->blen -= off;
        c->conn->inbuf -= off;
    }
}

/* The client sent END_STREAM. */
static void call_req_end(h2s_call_t *c)
{
    uint32_t mlen = 0;
    c->req_ended = 1;
    if (c->discard || c->ended || !c->route)
        return;
    if (c->route->kind == H2S_BIDI) {
        if (c->blen) {
            call_fail_input(c, GRPC_INTERNAL, "grpc: truncated message at end of stream");
            return;
        }
        if (c->on_msg && !c->done)
            c->on_msg(c, NULL, 0, c->on_msg_arg);
        return;
    }
    if (c->blen == 0) {
        call_fail_input(c, GRPC_INTERNAL, "grpc: request has no message");
        return;
    }
    char m[128];
    if (c->blen < GRPC_FRAME_HDR) {
        snprintf(m, sizeof(m), "grpc: truncated request frame header (%zu of 5 bytes)", c->blen);
        call_fail_input(c, GRPC_INTERNAL, m);
        return;
    }
    grpc_frame_peek(c->body, c->blen, &mlen); /* checked in call_data */
    if (c->blen != (size_t)GRPC_FRAME_HDR + mlen) {
        snprintf(m, sizeof(m), "grpc: truncated request message (%zu of %u bytes)",
                 c->blen - GRPC_FRAME_HDR, mlen);
        call_fail_input(c, GRPC_INTERNAL, m);
        return;
    }
    call_invoke(c, c->body + GRPC_FRAME_HDR, mlen);
}

/* ---------------------------------------------------------------- nghttp2 callbacks */

static int on_begin_headers(nghttp2_session *ngh, const nghttp2_frame *f, void *user)
{
    struct conn *conn = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2s_call_t *c = call_new(conn, f->hd.stream_id);
    nghttp2_session_set_stream_user_data(ngh, f->hd.stream_id, c);
    return 0;
}

static int on_header(nghttp2_session *ngh, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)flags, (void)user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2s_call_t *c = nghttp2_session_get_stream_user_data(ngh, f->hd.stream_id);
    if (!c || c->hdr_over)
        return 0;
    c->hbytes += nlen + vlen + 32;
    if (c->hbytes > c->s->cfg.max_header_bytes) {
        c->hdr_over = 1;
        return 0;
    }
    if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
        if (vlen == 4 && memcmp(value, "POST", 4) == 0)
            c->method = M_POST;
        else if (vlen == 3 && memcmp(value, "GET", 3) == 0)
            c->method = M_GET;
        else if (vlen == 4 && memcmp(value, "HEAD", 4) == 0)
            c->method = M_HEAD;
    } else if (nlen == 12 && memcmp(name, "content-type", 12) == 0) {
        if (vlen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
            (vlen == 16 || value[16] == '+' || value[16] == ';'))
            c->grpc = 1;
    }
    hdr_add(c, name, nlen, value, vlen);
    return 0;
}

/* One control frame from the client; 0, or -1 when it floods (the session is being ended). */
static int ctrl_spend(struct conn *conn)
{
    int64_t now = mono_ns();
    int64_t add = (now - conn->ctrl_at) * CTRL_RATE / 1000000000;
    if (add > 0) {
        conn->ctrl_tokens =
            conn->ctrl_tokens + add > CTRL_BURST ? CTRL_BURST : conn->ctrl_tokens + add;
        conn->ctrl_at = now;
    }
    if (conn->ctrl_tokens > 0) {
        conn->ctrl_tokens--;
        return 0;
    }
    if (conn->ctrl_tokens == 0) {
        conn->ctrl_tokens = -1; /* once */
        conn->s->st.flood_closed++;
        log_warn("h2s: %s: control frame flood (PING/SETTINGS/PRIORITY/RST_STREAM/empty DATA); "
                 "closing",
                 conn->peer);
        nghttp2_session_terminate_session(conn->ngh, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return -1;
}

static int on_frame_recv(nghttp2_session *ngh, const nghttp2_frame *f, void *user)
{
    struct conn *conn = user;
    h2s_call_t *c;
    int ctrl = 0;
    switch (f->hd.type) {
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
        ctrl = !(f->hd.flags & NGHTTP2_FLAG_ACK);
        break;
    case NGHTTP2_PRIORITY:
    case NGHTTP2_RST_STREAM:
        ctrl = 1;
        break;
    case NGHTTP2_DATA:
        ctrl = f->hd.length == 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM);
        break;
    default:
        break;
    }
    if (ctrl && ctrl_spend(conn) < 0)
        return 0;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        c = nghttp2_session_get_stream_user_data(ngh, f->hd.stream_id);
        if (!c)
            return 0;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
            call_headers_done(c);
        if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
            call_req_end(c);
        break;
    case NGHTTP2_DATA:
        if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            break;
        c = nghttp2_session_get_stream_user_data(ngh, f->hd.stream_id);
        if (c)
            call_req_end(c);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ngh, uint8_t flags, int32_t sid, const uint8_t *d,
                         size_t n, void *user)
{
    (void)flags, (void)user;
    h2s_call_t *c = nghttp2_session_get_stream_user_data(ngh, sid);
    if (c)
        call_data(c, d, n);
    return 0;
}

static int on_frame_send(nghttp2_session *ngh, const nghttp2_frame *f, void *user)
{
    struct conn *conn = user;
    /*
     * nghttp2's own limiter (stream resets, CVE-2023-44487) can end the
     * session before ctrl_spend does: count that flood too.
     */
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM &&
        conn->ctrl_tokens != -1) {
        conn->ctrl_tokens = -1;
        conn->s->st.flood_closed++;
        log_warn("h2s: %s: stream reset flood; closing", conn->peer);
    }
    /*
     * The response is complete but the client is still sending (an early
     * error on a large upload, a server-ended bidi): reset the stream with
     * NO_ERROR so it stops, as gRPC servers do.
     */
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        h2s_call_t *c = nghttp2_session_get_stream_user_data(ngh, f->hd.stream_id);
        if (c && !c->req_ended)
            nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ngh, int32_t sid, uint32_t err, void *user)
{
    (void)err, (void)user;
    h2s_call_t *c = nghttp2_session_get_stream_user_data(ngh, sid);
    if (!c)
        return 0;
    nghttp2_session_set_stream_user_data(ngh, sid, NULL);
    call_closed(c);
    return 0;
}

/* ---------------------------------------------------------------- connections */

static void conn_start_h2(struct conn *c)
{
    h2s_t *s = c->s;
    c->mode = CM_H2;
    nghttp2_session_server_new2(&c->ngh, s->cbs, c, s->opt);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, s->cfg.max_header_bytes},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
        /*
         * No RFC 7540 priority tree (RFC 9218 scheduling instead, see
         * call_headers_done): opening, scheduling and closing a stream in
         * the tree, and keeping closed streams for it, were a good part of
         * nghttp2's cost per call.
         */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv));
    /* a bigger connection window so many streams can upload at once */
    nghttp2_session_set_local_window_size(c->ngh, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    if (!c->tls) {
        /* conn_send writes itself: see there */
        bufferevent_disable(c->bev, EV_WRITE);
        c->wev = event_new(s->base, bufferevent_getfd(c->bev), EV_WRITE, conn_wready, c);
    }
}

/* Close after what is queued has been written. Returns 1 if c is freed (nothing was left). */
static int conn_close_later(struct conn *c)
{
    c->closing = 1;
    if (c->wev)
        event_del(c->wev);
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_free(c);
        return 1;
    }
    /* the rest through the bufferevent: conn_writecb frees c once it is out */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->bev, EV_WRITE);
    return 0;
}

/* Pulls frames from nghttp2 into the output buffer and writes them. Returns 1 if it freed c. */
static int conn_send(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    h2s_t *s = c->s;
    if (c->mode != CM_H2 || c->dying || s->sowner == c)
        return 0;           /* (called back from inside this conn's own pass: that pass goes on) */
    int stage = !s->sowner; /* not nested in another conn's pass */
    c->pass_frames = 0;
again:
    if (stage)
        s->sowner = c;
    c->held = 0;
    while (evbuffer_get_length(out) + s->slen < OUT_HIGH && !c->held) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ngh, &data);
        if (n < 0) {
            log_debug("h2s: %s: mem_send: %s", c->peer, nghttp2_strerror((int)n));
            if (stage) {
                stage_flush(s, out);
                s->sowner = NULL;
            }
            return conn_close_later(c);
        }
        if (n == 0)
            break;
        if (stage)
            stage_put(s, data, (size_t)n);
        else
            evbuffer_add(out, data, (size_t)n);
        s->st.bytes_out += (uint64_t)n;
    }
    if (stage) {
        stage_flush(s, out);
        s->sowner = NULL;
    }
    /*
     * Write now, not in the bufferevent's write callback: those all run in
     * one pass of the loop after the poll, and a change fanned out to a
     * thousand connections would make a thousand writev calls there before a
     * waiting request is read. Here they fall in flush_cb's time slices. A
     * plain connection's bufferevent never writes (its EV_WRITE is off, see
     * conn_start_h2): what a full socket leaves waits for c->wev, which only
     * puts the connection back in flush_cb's line. (Armed for good, libevent's
     * write event also cost an epoll_ctl, a wakeup for a socket with nothing
     * to write and a second epoll_ctl per pass.) TLS goes through the
     * bufferevent, OpenSSL owns the framing; so does a closing connection.
     */
    if (!c->tls && !c->closing) {
        if (evbuffer_get_length(out)) {
            /* a socket bufferevent keeps its output's start frozen (only it
             * may drain it): thawed for this write, as libevent does for its own */
            evbuffer_unfreeze(out, 1);
            int w = evbuffer_write_atmost(out, bufferevent_getfd(c->bev), OUT_HIGH);
            evbuffer_freeze(out, 1);
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                log_debug("h2s: %s: write: %s; closing", c->peer, strerror(errno));
                conn_free(c);
                return 1;
            }
        }
        if (evbuffer_get_length(out)) {
            if (!event_pending(c->wev, EV_WRITE, NULL))
                event_add(c->wev, NULL);
        } else if (event_pending(c->wev, EV_WRITE, NULL)) {
            event_del(c->wev);
        }
        if (c->rpaused && evbuffer_get_length(out) < OUT_LOW) {
            c->rpaused = 0;
            bufferevent_enable(c->bev, EV_READ);
        }
    }
    if (!nghttp2_session_want_read(c->ngh) && !nghttp2_session_want_write(c->ngh))
        return conn_close_later(c);
    if (c->held && !c->closing && evbuffer_get_length(out) < OUT_HIGH) {
        /* frames were held back and the socket took what was made: more now, or
         * (a bulk pass past its deadline) when its turn comes again; flush_cb is
         * past its deadline too and schedules the next pass */
        if (c->held == HELD_FULL && !(s->bulk_deadline && mono_ns() > s->bulk_deadline))
            goto again;
        if (!c->dirty)
            dirty_push(c);
    }
    /*
     * A client that does not read its answers gets no more requests read
     * either, so it cannot make us build responses without bound (its
     * WINDOW_UPDATEs are not needed: the socket, not flow control, is full).
     */
    if (evbuffer_get_length(out) >= OUT_HIGH && !c->rpaused && !c->closing) {
        c->rpaused = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
    return 0;
}

/* A plain connection's full socket has room again: its turn in flush_cb. */
static void conn_wready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    mark_dirty(arg);
}

static void h1_respond(struct conn *c, int status, const char *ctype, const char *body, size_t blen,
                       int head, int close)
{
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 503 ? "Service Unavailable"
                         : status == 500 ? "Internal Server Error"
                                         : "Status";
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                        status, reason, ctype, blen, close ? "Connection: close\r\n" : "");
    if (!head && blen)
        evbuffer_add(out, body, blen);
    c->s->st.bytes_out += blen;
}

static void h1_error(struct conn *c, int status, const char *msg)
{
    h1_respond(c, status, "text/plain", msg, strlen(msg), 0, 1);
    conn_close_later(c);
}

/* Serves the complete HTTP/1.1 requests in the input; may free c. */
static void h1_read(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (!c->closing) {
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > OUT_HIGH) {
            /* pipelined requests from a client that does not read: wait */
            c->h1_paused = 1;
            bufferevent_disable(c->bev, EV_READ);
            return;
        }
        size_t avail = evbuffer_get_length(in);
        if (!avail) {
            c->h1_since = 0;
            return;
        }
        struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (p.pos < 0) {
            if (avail > H1_MAX_HEAD)
                h1_error(c, 431, "request header too large\n");
            return;
        }
        size_t hl = (size_t)p.pos + 4;
        if (hl > H1_MAX_HEAD) {
            h1_error(c, 431, "request header too large\n");
            return;
        }
        char head[H1_MAX_HEAD + 1];
        evbuffer_remove(in, head, hl);
        c->h1_since = evbuffer_get_length(in) ? mono_ns() : 0;
        head[hl] = '\0';
        c->s->st.calls_total++;
        char *eol = strstr(head, "\r\n");
        *eol = '\0';
        char *sp1 = strchr(head, ' ');
        char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
        if (!sp1 || !sp2 || sp2 == sp1 + 1 || sp1[1] != '/') {
            h1_error(c, 400, "bad request line\n");
            return;
        }
        *sp1 = *sp2 = '\0';
        const char *method = head, *path = sp1 + 1, *ver = sp2 + 1;
        int head_only = strcmp(method, "HEAD") == 0;
        if (!head_only && strcmp(method, "GET") != 0) {
            h1_error(c, 405, "method not allowed\n");
            return;
        }
        int close;
        if (strcmp(ver, "HTTP/1.1") == 0)
            close = 0;
        else if (strcmp(ver, "HTTP/1.0") == 0)
            close = 1;
        else {
            h1_error(c, 400, "bad HTTP version\n");
            return;
        }
        /* headers: only Connection and a request body matter */
        for (char *l = eol + 2; *l;) {
            char *e = strstr(l, "\r\n");
            if (!e || e == l)
                break;
            *e = '\0';
            char *colon = strchr(l, ':');
            if (!colon) {
                h1_error(c, 400, "bad header line\n");
                return;
            }
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (strcasecmp(l, "connection") == 0) {
                if (strcasestr(v, "close"))
                    close = 1;
                else if (strcasestr(v, "keep-alive"))
                    close = 0;
            } else if (strcasecmp(l, "transfer-encoding") == 0 ||
                       (strcasecmp(l, "content-length") == 0 && strcmp(v, "0") != 0)) {
                h1_error(c, 400, "request body not allowed\n");
                return;
            }
            l = e + 2;
        }
        int status;
        const char *ctype;
        char *body;
        size_t blen;
        http_dispatch(c->s, path, &status, &ctype, &body, &blen);
        h1_respond(c, status, ctype, body, blen, head_only, close);
        free(body);
        if (close) {
            conn_close_later(c);
            return;
        }
    }
}

/* Decides the protocol from the first bytes; returns 0 when still undecided, -1 if c is gone. */
static int conn_sniff(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t avail = evbuffer_get_length(in);
    uint8_t b[H2_PREFACE_LEN];
    size_t n = avail < sizeof(b) ? avail : sizeof(b);
    evbuffer_copyout(in, b, n);
    if (memcmp(b, h2_preface, n) == 0) {
        if (n < H2_PREFACE_LEN)
            return 0;
        conn_start_h2(c);
        return 1;
    }
    static const char *h1[] = {"GET ", "HEAD "};
    for (size_t i = 0; i < ARRAY_SIZE(h1); i++) {
        size_t l = strlen(h1[i]);
        size_t k = n < l ? n : l;
        if (memcmp(b, h1[i], k) == 0) {
            if (k < l)
                return 0;
            c->mode = CM_H1;
            return 1;
        }
    }
    log_debug("h2s: %s: not HTTP/2 nor an HTTP/1.1 GET; closing", c->peer);
    conn_free(c);
    return -1;
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    c->last_active = mono_ns();
    c->ping_sent = 0;
    if (c->closing) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (c->mode == CM_SNIFF) {
        int r = conn_sniff(c);
        if (r <= 0)
            return;
    }
    if (c->mode == CM_H1) {
        c->s->st.bytes_in += evbuffer_get_length(in);
        if (!c->h1_since)
            c->h1_since = c->last_active;
        h1_read(c);
        return;
    }
    c->in_recv = 1;
    while (evbuffer_get_length(in)) {
        struct evbuffer_iovec v[16];
        int nv = evbuffer_peek(in, -1, NULL, v, 16);
        size_t used = 0;
        for (int i = 0; i < nv && i < 16; i++) {
            ssize_t r = nghttp2_session_mem_recv(c->ngh, v[i].iov_base, v[i].iov_len);
            if (r < 0) {
                c->in_recv = 0;
                log_debug("h2s: %s: %s; closing", c->peer, nghttp2_strerror((int)r));
                evbuffer_drain(in, evbuffer_get_length(in));
                if (r == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
                    conn_free(c);
                    return;
                }
                nghttp2_session_terminate_session(c->ngh, NGHTTP2_PROTOCOL_ERROR);
                if (!conn_send(c) && !c->closing)
                    conn_close_later(c);
                return;
            }
            used += (size_t)r;
        }
        c->s->st.bytes_in += used;
        evbuffer_drain(in, used);
    }
    c->in_recv = 0;
    conn_send(c);
}

static void conn_writecb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && c->closing) {
        conn_free(c);
        return;
    }
    if (c->closing)
        return;
    if (c->mode == CM_H1) {
        if (c->h1_paused) {
            c->h1_paused = 0;
            bufferevent_enable(c->bev, EV_READ);
            h1_read(c);
        }
        return;
    }
    if (c->rpaused) {
        c->rpaused = 0;
        bufferevent_enable(c->bev, EV_READ);
    }
    conn_send(c);
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        unsigned long e = c->tls ? bufferevent_get_openssl_error(bev) : 0;
        if (e) {
            char b[256];
            ERR_error_string_n(e, b, sizeof(b));
            if (c->mode == CM_SNIFF) {
                c->s->st.tls_failures++;
                log_info("h2s: %s: TLS handshake: %s", c->peer, b);
            } else {
                log_debug("h2s: %s: TLS: %s", c->peer, b);
            }
            while (bufferevent_get_openssl_error(bev))
                ;
        } else if (what & BEV_EVENT_ERROR) {
            log_debug("h2s: %s: %s", c->peer, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        }
        conn_free(c);
    }
}

static void conn_free(struct conn *c)
{
    h2s_t *s = c->s;
    c->dying = 1;
    if (c->dirty) {
        struct conn **pp = &s->dirty, *prev = NULL;
        while (*pp && *pp != c) {
            prev = *pp;
            pp = &(*pp)->dirty_next;
        }
        if (*pp) {
            *pp = c->dirty_next;
            if (s->dirty_tail == c)
                s->dirty_tail = prev;
        }
        c->dirty = 0;
    }
    if (c->urgent) {
        struct conn **pp = &s->urgent;
        while (*pp && *pp != c)
            pp = &(*pp)->urgent_next;
        if (*pp)
            *pp = c->urgent_next;
        c->urgent = 0;
    }
    while (c->calls) {
        h2s_call_t *call = c->calls;
        if (c->ngh)
            nghttp2_session_set_stream_user_data(c->ngh, call->sid, NULL);
        call_closed(call);
    }
    if (c->ngh)
        nghttp2_session_del(c->ngh);
    if (c->wev)
        event_free(c->wev);
    bufferevent_free(c->bev);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->st.conns_open--;
    free(c);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    h2s_t *s = arg;
    int64_t t0 = mono_ns();
    /* at least one bulk connection per pass: a flood of unary calls cannot starve watches */
    for (int nbulk = 0;; nbulk++) {
        while (s->urgent) {
            struct conn *c = s->urgent;
            s->urgent = c->urgent_next;
            c->urgent = 0;
            conn_send(c);
        }
        if (!s->dirty)
            return;
        if (nbulk && mono_ns() - t0 > FLUSH_SLICE_NS) {
            /* the rest after the next poll: new requests get read (and answered) first */
            static const struct timeval now = {0, 0};
            evtimer_add(s->flush_later_ev, &now);
            return;
        }
        struct conn *c = s->dirty;
        s->dirty = c->dirty_next;
        if (!s->dirty)
            s->dirty_tail = NULL;
        c->dirty = 0;
        s->bulk_deadline = t0 + FLUSH_SLICE_NS;
        conn_send(c);
        s->bulk_deadline = 0;
    }
}

/*
 * Slowloris: the TLS handshake and the preface (or an HTTP/1.1 request
 * head), and each HTTP/2 stream's request headers, must be complete
 * within hs of their start.
 */
static int conn_too_slow(struct conn *c, int64_t now, int64_t hs)
{
    if (c->closing)
        return 0;
    if (c->mode == CM_SNIFF && now - c->born > hs) {
        log_info("h2s: %s: no %s within %llds; closing", c->peer,
                 c->tls ? "TLS handshake and HTTP/2 preface" : "HTTP/2 preface",
                 (long long)(hs / 1000000000));
        return 1;
    }
    if (c->mode == CM_H1 && c->h1_since && now - c->h1_since > hs) {
        log_info("h2s: %s: HTTP/1.1 request head not complete within %llds; closing", c->peer,
                 (long long)(hs / 1000000000));
        return 1;
    }
    if (c->mode == CM_H2) {
        for (h2s_call_t *call = c->calls; call; call = call->next) {
            if (!call->hdrs_done && now - call->born > hs) {
                log_info("h2s: %s: stream %d: request headers not complete within %llds; closing",
                         c->peer, call->sid, (long long)(hs / 1000000000));
                return 1;
            }
        }
    }
    return 0;
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    h2s_t *s = arg;
    int64_t now = mono_ns(), idle = (int64_t)s->cfg.idle_timeout_s * 1000000000;
    int64_t hs = (int64_t)s->cfg.handshake_timeout_s * 1000000000;
    struct conn *next;
    if (s->wq_len[1] || s->wq_len[2])
        event_active(s->dispatch_ev, EV_WRITE, 0);
    for (struct conn *c = s->conns; c; c = next) {
        next = c->next;
        if (conn_too_slow(c, now, hs)) {
            s->st.slow_closed++;
            conn_free(c);
            continue;
        }
        if (c->ncalls && c->mode == CM_H2 && !c->closing && s->ka_interval) {
            /* a peer that went away silently must not hold its calls forever */
            if (c->ping_sent && now - c->ping_sent > s->ka_timeout) {
                log_info("h2s: %s: no answer to a keepalive PING; closing", c->peer);
                conn_free(c);
            } else if (!c->ping_sent && now - c->last_active > s->ka_interval) {
                c->ping_sent = now;
                nghttp2_submit_ping(c->ngh, NGHTTP2_FLAG_NONE, NULL);
                mark_dirty(c);
            }
            continue;
        }
        if (c->ncalls || now - c->last_active < idle)
            continue;
        if (c->mode == CM_H2 && !c->closing) {
            log_debug("h2s: %s: idle; closing", c->peer);
            nghttp2_session_terminate_session(c->ngh, NGHTTP2_NO_ERROR);
            if (!conn_send(c) && !c->closing)
                conn_close_later(c);
        } else {
            conn_free(c);
        }
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)l, (void)salen;
    struct h2s_listener *hl = arg;
    h2s_t *s = hl->s;
    if (s->st.conns_open >= s->cfg.max_conns) {
        s->st.conns_refused++;
        int64_t now = mono_ns();
        if (now - s->last_refuse_log > 1000000000) {
            s->last_refuse_log = now;
            log_warn("h2s: too many connections (%zu); refusing new ones", s->cfg.max_conns);
        }
        evutil_closesocket(fd);
        return;
    }
    struct conn *c = xcalloc(1, sizeof(*c));
    c->s = s;
    c->last_active = c->born = c->ctrl_at = mono_ns();
    c->ctrl_tokens = CTRL_BURST;
    c->is_local = sockaddr_is_loopback(sa);
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
        snprintf(c->peer, sizeof(c->peer), "%s:%d", a, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        char a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
        snprintf(c->peer, sizeof(c->peer), "[%s]:%d", a, ntohs(in6->sin6_port));
    } else {
        snprintf(c->peer, sizeof(c->peer), "unix");
    }
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (hl->tls) {
        SSL *ssl = SSL_new(hl->tls);
        if (ssl)
            c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev && ssl)
            SSL_free(ssl);
        if (c->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->tls = 1;
    } else {
        c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->st.conns_open++;
    s->st.conns_total++;
}

/* A unix socket or a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). */
static int sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_UNIX)
        return 1;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l, (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    log_warn("h2s: accept: %s", evutil_socket_error_to_string(e));
}

/* ---------------------------------------------------------------- public */

/*
 * libevent writes with writev(), which raises SIGPIPE on a connection the
 * peer closed: a process using this module must ignore it, so do that
 * unless the program already chose a handler.
 */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

h2s_t *h2s_new(struct event_base *base, const struct h2s_config *cfg)
{
    ignore_sigpipe();
    h2s_t *s = xcalloc(1, sizeof(*s));
    s->base = base;
    if (cfg)
        s->cfg = *cfg;
    if (!s->cfg.max_msg)
        s->cfg.max_msg = GRPC_MAX_MSG_DEFAULT;
    if (!s->cfg.max_streams)
        s->cfg.max_streams = 1000;
    if (!s->cfg.max_header_bytes)
        s->cfg.max_header_bytes = 16 * 1024;
    if (!s->cfg.idle_timeout_s)
        s->cfg.idle_timeout_s = 300;
    if (!s->cfg.max_conns)
        s->cfg.max_conns = 10000;
    if (s->cfg.handshake_timeout_s <= 0)
        s->cfg.handshake_timeout_s = 10;
    if (!s->cfg.max_streaming)
        s->cfg.max_streaming = 1000;
    s->accepting = 1;

    nghttp2_session_callbacks_new(&s->cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(s->cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(s->cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(s->cbs, send_data_cb);
    /*
     * nghttp2 1.52 as Debian ships it has the rapid-reset and CONTINUATION
     * flood fixes: set their limits explicitly; ctrl_spend() adds a budget
     * for the other control frames. Outbound ACKs (a PING/SETTINGS flood from
     * a client that does not read) are capped by nghttp2's default (1000).
     * nghttp2's stream-reset limit is the backstop, twice ours: ctrl_spend()
     * (which counts every RST_STREAM too) ends a rapid reset first, with
     * ENHANCE_YOUR_CALM, a log line and the flood counter. (At a third of our
     * rate, as it was, nghttp2 ended slow floods first with INTERNAL_ERROR,
     * uncounted.)
     */
    nghttp2_option_new(&s->opt);
    nghttp2_option_set_stream_reset_rate_limit(s->opt, 2 * CTRL_BURST, CTRL_RATE);
    nghttp2_option_set_max_continuations(s->opt, 8);
    nghttp2_option_set_max_settings(s->opt, 32);

    s->flush_ev = event_new(base, -1, 0, flush_cb, s);
    s->flush_later_ev = evtimer_new(base, flush_cb, s);
    s->sweep_ev = event_new(base, -1, EV_PERSIST, sweep_cb, s);
    s->dispatch_ev = event_new(base, -1, 0, dispatch_cb, s);
    h2s_set_keepalive(s, 60, 20);
    return s;
}

void h2s_set_keepalive(h2s_t *s, int interval_s, int timeout_s)
{
    s->ka_interval = interval_s > 0 ? (int64_t)interval_s * 1000000000 : 0;
    s->ka_timeout = (int64_t)(timeout_s > 0 ? timeout_s : 20) * 1000000000;
    /* the sweep runs often enough for the idle timeout, the keepalive and slowloris */
    int64_t ms = (int64_t)s->cfg.idle_timeout_s * 250;
    if ((int64_t)s->cfg.handshake_timeout_s * 250 < ms)
        ms = (int64_t)s->cfg.handshake_timeout_s * 250;
    if (s->ka_interval && s->ka_timeout / 2000000 < ms)
        ms = s->ka_timeout / 2000000;
    ms = ms < 250 ? 250 : ms > 30000 ? 30000 : ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    event_add(s->sweep_ev, &tv);
}

int h2s_addr_is_local(const char *addr)
{
    struct sockaddr_storage ss;
    int sslen;
    if (strncmp(addr, "unix:", 5) == 0)
        return 1;
    if (addr_parse_hostport(addr, &ss, &sslen) < 0)
        return 0;
    return sockaddr_is_loopback((struct sockaddr *)&ss);
}

void h2s_set_inflight_limits(h2s_t *s, size_t max_read, size_t max_mutating,
                             int (*is_mutating)(const char *path))
{
    s->max_inflight[1] = max_read;
    s->max_inflight[2] = max_mutating;
    s->is_mutating = is_mutating;
}

int h2s_listen(h2s_t *s, const char *addr)
{
    return h2s_listen_tls(s, addr, NULL);
}

int h2s_listen_tls(h2s_t *s, const char *addr, SSL_CTX *tls)
{
    if (!s->accepting) {
        log_err("h2s: listen %s: server is shutting down", addr);
        return -EINVAL;
    }
    struct sockaddr_storage ss;
    int sslen;
    struct sockaddr_un un;
    struct sockaddr *sa;
    char *upath = NULL;
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC;
    if (strncmp(addr, "unix:", 5) == 0) {
        const char *p = addr + 5;
        if (!*p || strlen(p) >= sizeof(un.sun_path)) {
            log_err("h2s: listen %s: bad unix socket path", addr);
            return -EINVAL;
        }
        if (tls) {
            log_err("h2s: listen %s: unix sockets are cleartext only", addr);
            return -EINVAL;
        }
        memset(&un, 0, sizeof(un));
        un.sun_family = AF_UNIX;
        strcpy(un.sun_path, p);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(p);
        sa = (struct sockaddr *)&un;
        sslen = sizeof(un);
        upath = xstrdup(p);
    } else {
        if (addr_parse_hostport(addr, &ss, &sslen) < 0) {
            log_err("h2s: listen %s: expected host:port, [v6]:port or unix:/path", addr);
            return -EINVAL;
        }
        sa = (struct sockaddr *)&ss;
        flags |= LEV_OPT_REUSEABLE;
    }
    struct h2s_listener *hl = xcalloc(1, sizeof(*hl));
    hl->s = s;
    struct evconnlistener *l =
        evconnlistener_new_bind(s->base, accept_cb, hl, flags, 1024, sa, sslen);
    if (!l) {
        int e = errno ? errno : EADDRINUSE;
        log_err("h2s: listen %s: %s", addr, strerror(e));
        free(upath);
        free(hl);
        return -e;
    }
    evconnlistener_set_error_cb(l, accept_error_cb);
    s->ls = xrealloc(s->ls, (s->nls + 1) * sizeof(*s->ls));
    s->ls[s->nls++] = hl;
    hl->l = l;
    hl->unix_path = upath;
    hl->port = 0;
    if (tls) {
        SSL_CTX_up_ref(tls);
        hl->tls = tls;
    }
    if (!upath) {
        struct sockaddr_storage b;
        socklen_t bl = sizeof(b);
        if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&b, &bl) == 0)
            hl->port = ntohs(b.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&b)->sin6_port
                                                     : ((struct sockaddr_in *)&b)->sin_port);
    }
    log_debug("h2s: listening on %s%s", addr, tls ? " (TLS)" : "");
    return 0;
}

int h2s_port(h2s_t *s)
{
    for (size_t i = 0; i < s->nls; i++)
        if (!s->ls[i]->unix_path)
            return s->ls[i]->port;
    return 0;
}

void h2s_stop_accepting(h2s_t *s)
{
    if (!s->accepting)
        return;
    s->accepting = 0;
    /* close the listening sockets: new clients get "connection refused" at once */
    for (size_t i = 0; i < s->nls; i++) {
        evconnlistener_free(s->ls[i]->l);
        s->ls[i]->l = NULL;
        if (s->ls[i]->unix_path)
            unlink(s->ls[i]->unix_path);
    }
    struct conn *next;
    for (struct conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->mode == CM_H2 && !c->closing) {
            nghttp2_submit_goaway(c->ngh, NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(c->ngh), NGHTTP2_NO_ERROR,
                                  NULL, 0);
            mark_dirty(c);
        } else if (c->mode != CM_H2 && !c->closing) {
            conn_free(c);
        }
    }
}

/*
 * Shutdown: how long the answers already made may take to leave, and the
 * peers to close their side, before the sockets are closed anyway.
 */
#define LINGER_NS (1000 * 1000000LL)

static int poll_until(int fd, short ev, int64_t deadline)
{
    int64_t left = deadline - mono_ns();
    if (left <= 0)
        return 0;
    struct pollfd p = {.fd = fd, .events = ev};
    return poll(&p, 1, (int)(left / 1000000) + 1);
}

/* Writes all of buf (nonblocking fd) by deadline, or gives up. */
static void send_all(int fd, const uint8_t *buf, size_t n, int64_t deadline, const char *peer)
{
    while (n) {
        ssize_t w = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            buf += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (poll_until(fd, POLLOUT, deadline) <= 0)
                break;
        } else if (w < 0 && errno != EINTR) {
            log_debug("h2s: %s: final write: %s", peer, strerror(errno));
            break;
        }
    }
}

/*
 * Lingering close: the fds (their writing side shut) are read and the input
 * dropped until each peer closes, or until deadline. Closing a socket with
 * unread input sends an RST, and an RST can make the peer's kernel throw
 * away our last answers before its client reads them.
 */
static void linger_close(int *fds, size_t n, int64_t deadline)
{
    struct pollfd *p = xcalloc(n + 1, sizeof(*p));
    size_t nopen = n;
    for (size_t i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    char junk[4096];
    while (nopen) {
        int64_t left = deadline - mono_ns();
        if (left <= 0)
            break;
        int r = poll(p, n, (int)(left / 1000000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            ssize_t k;
            while ((k = recv(p[i].fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
                ;
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                close(p[i].fd);
                p[i].fd = -1;
                nopen--;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    free(p);
}

void h2s_free(h2s_t *s)
{
    if (!s)
        return;
    h2s_stop_accepting(s);
    /* end every open call, push the bytes out best-effort, then tear down */
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->mode != CM_H2 || c->closing)
            continue;
        for (h2s_call_t *call = c->calls; call; call = call->next)
            if (!call->ended)
                call_end(call, GRPC_UNAVAILABLE, "server shutting down");
    }
    struct conn *next;
    for (struct conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->mode == CM_H2 && !c->closing) {
            c->dirty = 0;
            c->urgent = 0;
            conn_send(c);
        }
    }
    s->dirty = s->dirty_tail = s->urgent = NULL;
    int64_t deadline = mono_ns() + LINGER_NS;
    size_t nconns = 0, nlinger = 0;
    for (struct conn *c = s->conns; c; c = c->next)
        nconns++;
    int *linger = xcalloc(nconns + 1, sizeof(*linger));
    while (s->conns) {
        struct conn *c = s->conns;
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        size_t n = evbuffer_get_length(out);
        /* the bufferevent froze its output's start: send a copy directly */
        if (n && c->tls) {
            SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
            if (ssl && SSL_is_init_finished(ssl) &&
                SSL_write(ssl, evbuffer_pullup(out, -1), (int)n) <= 0)
                ERR_clear_error();
        } else if (n) {
            send_all(fd, evbuffer_pullup(out, -1), n, deadline, c->peer);
        }
        /* FIN, then read until the peer's FIN: a close with unread input would be an RST */
        shutdown(fd, SHUT_WR);
        if (fd >= 0 && nlinger < nconns) {
            int d = dup(fd);
            if (d >= 0)
                linger[nlinger++] = d;
        }
        conn_free(c);
    }
    linger_close(linger, nlinger, deadline);
    free(linger);
    for (size_t i = 0; i < s->nls; i++) {
        free(s->ls[i]->unix_path);
        SSL_CTX_free(s->ls[i]->tls);
        free(s->ls[i]);
    }
    free(s->ls);
    for (size_t i = 0; i < ROUTE_BUCKETS; i++) {
        while (s->routes[i]) {
            struct h2s_route *r = s->routes[i];
            s->routes[i] = r->next;
            free(r);
        }
    }
    while (s->free_calls) {
        h2s_call_t *c = s->free_calls;
        s->free_calls = c->next;
        free(c->hbuf);
        free(c->body);
        free(c->q.v);
        free(c);
    }
    event_free(s->flush_ev);
    event_free(s->flush_later_ev);
    event_free(s->sweep_ev);
    event_free(s->dispatch_ev);
    nghttp2_session_callbacks_del(s->cbs);
    nghttp2_option_del(s->opt);
    free(s->sbuf);
    free(s);
}

void h2s_route(h2s_t *s, const char *path, enum h2s_method_kind kind, h2s_handler_fn fn, void *arg)
{
    size_t n = strlen(path);
    struct h2s_route *r = xcalloc(1, sizeof(*r) + n + 1);
    memcpy(r->path, path, n + 1);
    r->hash = hash_path(path, n);
    r->kind = kind;
    r->fn = fn;
    r->arg = arg;
    r->next = s->routes[r->hash % ROUTE_BUCKETS];
    s->routes[r->hash % ROUTE_BUCKETS] = r;
}

void h2s_set_http_handler(h2s_t *s, h2s_http_fn fn, void *arg)
{
    s->http_fn = fn;
    s->http_arg = arg;
}

void h2s_call_reply(h2s_call_t *c, const void *msg, size_t len)
{
    h2s_call_send(c, msg, len);
    h2s_call_finish(c, GRPC_OK, NULL);
}

void h2s_call_reply_pb(h2s_call_t *c, const struct ProtobufCMessage *m)
{
    if (c->done)
        return;
    if (c->ended || c->closed) {
        c->done = 1;
        call_uncount(c);
        return;
    }
    q_push(c, grpc_frame_msg(m));
    h2s_call_finish(c, GRPC_OK, NULL);
}

void h2s_call_finish(h2s_call_t *c, int code, const char *message)
{
    if (c->done)
        return;
    c->done = 1;
    call_uncount(c);
    call_end(c, code, message);
}

void h2s_call_finishf(h2s_call_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    h2s_call_finish(c, code, m);
    free(m);
}

int h2s_call_send_framed(h2s_call_t *c, rbuf_t *framed)
{
    if (c->ended || c->closed || c->done || c->conn->dying)
        return -1;
    q_push(c, rbuf_ref(framed));
    call_kick(c);
    return 0;
}

int h2s_call_send(h2s_call_t *c, const void *msg, size_t len)
{
    if (c->ended || c->closed || c->done || c->conn->dying)
        return -1;
    rbuf_t *b = rbuf_alloc(GRPC_FRAME_HDR + len);
    grpc_frame_hdr(b->data, (uint32_t)len);
    if (len)
        memcpy(b->data + GRPC_FRAME_HDR, msg, len);
    q_push(c, b);
    call_kick(c);
    return 0;
}

int h2s_call_claim(h2s_call_t *c, const void *key, unsigned max)
{
    if (c->claim || !key)
        return 0;
    struct claim **pp = &c->s->claims[((uintptr_t)key >> 4) % CLAIM_BUCKETS];
    struct claim *cl = *pp;
    while (cl && cl->key != key)
        cl = cl->next;
    if (cl && max && cl->n >= max)
        return -1;
    if (!cl) {
        cl = xcalloc(1, sizeof(*cl));
        cl->key = key;
        cl->next = *pp;
        *pp = cl;
    }
    cl->n++;
    c->claim = cl;
    return 0;
}

size_t h2s_call_queued(const h2s_call_t *c)
{
    return c->queued;
}

int64_t h2s_call_stuck_ns(const h2s_call_t *c, int64_t now)
{
    return c->queued ? now - c->moved : 0;
}

void h2s_call_abort(h2s_call_t *c, int code, const char *message)
{
    if (c->done)
        return;
    /* keep what the wire has a claim on (a part-sent head, a DATA frame nghttp2
     * holds back); drop every other message */
    size_t claim = c->q.off + c->held_len, keep = 0;
    for (size_t have = 0; keep < c->q.n && have < claim; keep++)
        have += rbufq_at(&c->q, keep)->len;
    while (c->q.n > keep) {
        rbuf_t *b = rbufq_at(&c->q, c->q.n - 1);
        c->queued -= b->len;
        c->s->st.bytes_queued -= b->len;
        rbuf_unref(b);
        c->q.n--;
    }
    h2s_call_finish(c, code, message);
}

void h2s_call_on_msg(h2s_call_t *c, h2s_msg_fn fn, void *arg)
{
    c->on_msg = fn;
    c->on_msg_arg = arg;
}

void h2s_call_on_close(h2s_call_t *c, void (*fn)(h2s_call_t *c, void *arg), void *arg)
{
    c->on_close = fn;
    c->on_close_arg = arg;
}

const char *h2s_call_header(const h2s_call_t *c, const char *name)
{
    size_t off = 0;
    while (off < c->hlen) {
        const char *n = c->hbuf + off;
        size_t nl = strlen(n);
        const char *v = n + nl + 1;
        if (strcmp(n, name) == 0)
            return v;
        off += nl + strlen(v) + 2;
    }
    return NULL;
}

const char *h2s_call_peer(const h2s_call_t *c)
{
    return c->conn->peer;
}

SSL *h2s_call_ssl(const h2s_call_t *c)
{
    return c->conn->tls ? bufferevent_openssl_get_ssl(c->conn->bev) : NULL;
}

int h2s_call_is_local(const h2s_call_t *c)
{
    return c->conn->is_local;
}

void h2s_call_set_data(h2s_call_t *c, void *data)
{
    c->data = data;
}

void *h2s_call_data(const h2s_call_t *c)
{
    return c->data;
}

void h2s_get_stats(const h2s_t *s, struct h2s_stats *out)
{
    *out = s->st;
}

uint64_t h2s_out_buffered(const h2s_t *s)
{
    uint64_t n = 0;
    for (const struct conn *c = s->conns; c; c = c->next)
        n += evbuffer_get_length(bufferevent_get_output(c->bev));
    return n;
}
