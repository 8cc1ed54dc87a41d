/*
 * h2s_int: what the files of the h2s module share (h2s.c, h2s_conn.c,
 * h2s_call.c, h2s_req.c, h2s_http1.c, h2s_limit.c; h2s.c says which does what): the
 * server, connection and call structs, and the functions one file calls in
 * another. Not for other modules: use h2s.h.
 */
#ifndef CORACLE_H2S_INT_H
#define CORACLE_H2S_INT_H

#include "buf.h"
#include "h2s.h"
#include "smap.h"

#include <event2/listener.h>
#include <event2/util.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

struct h1; /* a connection's HTTP/1.1 state (h2s_http1.c) */

#define OUT_HIGH (256 * 1024) /* stop pulling from nghttp2 above this much unsent output */
#define OUT_LOW (64 * 1024)   /* ...and resume when the socket drained below this */
#define CALL_FREELIST_MAX 1024
#define KEEP_BUF_MAX (8 * 1024) /* buffers bigger than this are not kept on free calls */
#define KEEP_Q_MAX 64           /* queue rings bigger than this are freed once empty */

struct h2s_route {
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

enum conn_mode { CM_SNIFF, CM_H2, CM_H1, CM_RAW /* upgraded (h2s_raw.c) */ };

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
    int64_t h1_since;     /* HTTP/1.1: a request is incomplete since (mono ns; its body: since it
                           * last moved), or 0 */
    struct h1 *h1;        /* HTTP/1.1: the parser and how the answer is framed (h2s_http1.c) */
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
    h2s_req_t *h1_req; /* HTTP/1.1: the request being answered, or NULL */
    h2s_raw_t *raw;    /* CM_RAW: the upgraded stream */
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
    unsigned plain : 1;        /* a plain HTTP request: for the req handler (h2s_req.c) */
    unsigned hdr_over : 1;     /* header list too large */
    unsigned hdrs_done : 1;    /* request HEADERS complete */
    unsigned counted : 2;      /* 1: counted as an in-flight read, 2: mutating, 0: not */
    unsigned streaming : 1;    /* counted in conn->nstreaming */
    unsigned bulk : 1;         /* a streamed plain answer (h2s_req_start): sent as streams are */
    unsigned inq : 2;          /* waiting in s->wq[inq] for an in-flight slot (1 reads, 2 writes) */
    h2s_call_t *wprev, *wnext; /* s->wq */
    int64_t wsince;            /* queued at (mono ns) */
    uint32_t wlen;             /* the request message's length (at body + 5) */
    int64_t born;              /* stream opened at (mono ns) */
    struct claim *claim;       /* h2s_call_claim, or NULL */
    /* request headers: "name\0value\0" pairs */
    struct buf hbuf;
    size_t hbytes;   /* what they count against max_header_bytes */
    size_t path_off; /* offset of the :path value in hbuf, or SIZE_MAX */
    /* request body: gRPC frames not yet handed to the handler */
    struct buf body;
    struct rbufq q;  /* response queue */
    size_t queued;   /* bytes in q */
    size_t held_len; /* a DATA frame of this many bytes of q that nghttp2 holds (WOULDBLOCK) */
    int64_t moved;   /* when q last went from empty or a DATA frame took from it */
    int status;
    char *message;  /* percent-encoded grpc-message, or NULL */
    struct buf trl; /* more trailers: "name\0value\0" pairs (h2s_call_add_trailer) */
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
    int (*req_long_running)(const h2s_req_t *r);
    struct claim *claims[CLAIM_BUCKETS];
    smap_t *routes; /* path -> struct h2s_route (owned) */
    h2s_req_fn req_fn;
    void *req_arg;
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
     * run) per frame and message; a full one is handed over and a new one
     * begun (never grown by copying). Owned by one conn_send at a time.
     */
    struct buf sbuf;
    struct conn *sowner;
};

/*
 * A plain HTTP request (h2s_req.c), from either protocol. The strings
 * point into buf (one allocation); HTTP/1.1 headers are "name\0value\0"
 * pairs in hbuf (names in lower case), HTTP/2 ones are the call's.
 */
struct h2s_req {
    h2s_t *s;
    struct conn *conn;
    h2s_call_t *call; /* HTTP/2: the stream; NULL on HTTP/1.1 */
    char *buf;
    const char *method, *path, *query;
    struct buf hbuf;        /* HTTP/1.1 */
    struct buf body;        /* HTTP/1.1; HTTP/2 reads the call's */
    struct buf rh;          /* response headers to add: "name\0value\0" pairs */
    unsigned started : 1;   /* a streamed answer began */
    unsigned head_only : 1; /* HEAD: no body in the answer */
    unsigned h1_close : 1;  /* HTTP/1.1: close the connection after the answer */
    unsigned counted : 2;   /* in-flight: 1 read, 2 mutating, 0 not */
    struct claim *claim;    /* h2s_req_claim, or NULL */
    void (*on_close)(h2s_req_t *r, void *arg);
    void *on_close_arg;
    void *data;
    int64_t born; /* received at (mono ns) */
};

/* ---- h2s.c: routing */

/* The gRPC route for path, or NULL. */
const struct h2s_route *h2s_route_find(const h2s_t *s, const char *path);

/* ---- h2s_req.c: plain HTTP requests */

/*
 * A new request (method and target as sent: target is path?query); the
 * protocol side fills in call or conn and the headers. Owned by h2s until
 * h2s_req_dispatch hands it to the handler.
 */
h2s_req_t *h2s_req_new(h2s_t *s, struct conn *conn, const char *method, size_t mlen,
                       const char *target, size_t tlen);
/* Frees it (a request never handed over, or finished). */
void h2s_req_free(h2s_req_t *r);
/* Admits it (in-flight limits) and calls the handler. */
void h2s_req_dispatch(h2s_req_t *r);
/* HTTP/2: the plain request on call c is complete (END_STREAM): to the handler. */
void h2s_req_from_call(h2s_call_t *c);
/* The client went away before the answer was finished: on_close, then free. */
void h2s_req_gone(h2s_req_t *r);

/* ---- h2s_conn.c: connections */

void h2s_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                   void *arg);
/* A unix socket or a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104). */
int h2s_sockaddr_is_loopback(const struct sockaddr *sa);
/* Pulls frames from nghttp2 into the output buffer and writes them. Returns 1 if it freed c. */
int h2s_conn_send(struct conn *c);
/* Close after what is queued has been written. Returns 1 if c is freed (nothing was left). */
int h2s_conn_close_later(struct conn *c);
/* Closes the connection now: its calls, its session, its socket. */
void h2s_conn_free(struct conn *c);
/* Puts c in the bulk flush line. */
void h2s_mark_dirty(struct conn *c);
/* An answer to a unary call (or a plain HTTP one) goes out before bulk watch traffic
 * (a stream's, a streamed plain answer's). */
void h2s_mark_dirty_for(h2s_call_t *call);
/* nghttp2's send_data callback: a DATA frame from the call's queue to the output. */
int h2s_send_data_cb(nghttp2_session *ngh, nghttp2_frame *f, const uint8_t *framehd, size_t length,
                     nghttp2_data_source *src, void *user);
/* The flush line's event (h2s->flush_ev, flush_later_ev). */
void h2s_flush_cb(evutil_socket_t fd, short what, void *arg);
/* The periodic sweep (h2s->sweep_ev). */
void h2s_sweep_cb(evutil_socket_t fd, short what, void *arg);

/* ---- h2s_http1.c: the HTTP/1.1 responder */

/* Serves the complete HTTP/1.1 requests in the input; may free c. */
void h2s_h1_read(struct conn *c);
/* The connection is going (its request, if any, is gone already): frees c->h1. */
void h2s_h1_free(struct conn *c);
/* The HTTP/1.1 side of h2s_req_respond / start / send / end (r->conn's output). */
void h2s_h1_respond(h2s_req_t *r, int status, const char *ctype, const void *body, size_t len);
void h2s_h1_start(h2s_req_t *r, int status, const char *ctype);
void h2s_h1_send(h2s_req_t *r, rbuf_t *chunk);
/* The streamed answer is complete (abort: cut, close the connection). */
void h2s_h1_end(h2s_req_t *r, int abort);

/* Writes the 101 head of an upgrade (r's added headers): r is no longer the one answered. */
void h2s_h1_switch(h2s_req_t *r, const char *protocol);

/* ---- h2s_raw.c: upgraded connections */

/* Input came / the output drained / the connection is going (calls on_close, frees c->raw). */
void h2s_raw_readable(struct conn *c);
void h2s_raw_writable(struct conn *c);
void h2s_raw_gone(struct conn *c, const char *why);

/* ---- h2s_call.c: calls (nghttp2 session callbacks) */

int h2s_on_begin_headers(nghttp2_session *ngh, const nghttp2_frame *f, void *user);
int h2s_on_header(nghttp2_session *ngh, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                  const uint8_t *value, size_t vlen, uint8_t flags, void *user);
int h2s_on_frame_recv(nghttp2_session *ngh, const nghttp2_frame *f, void *user);
int h2s_on_data_chunk(nghttp2_session *ngh, uint8_t flags, int32_t sid, const uint8_t *d, size_t n,
                      void *user);
int h2s_on_frame_send(nghttp2_session *ngh, const nghttp2_frame *f, void *user);
int h2s_on_stream_close(nghttp2_session *ngh, int32_t sid, uint32_t err, void *user);
/* Ends the response with a status (trailers-only before any message). */
void h2s_call_end(h2s_call_t *c, int code, const char *message);
/* A header's value in "name\0value\0" pairs (a call's or an HTTP/1.1 request's), or NULL. */
const char *h2s_header_find(const struct buf *hb, const char *name);
/* Queues response bytes (takes the reference) / submits or resumes the response. */
void h2s_call_push(h2s_call_t *c, rbuf_t *b);
void h2s_call_kick(h2s_call_t *c);
/* nghttp2's data source over the call's queue. */
ssize_t h2s_call_data_read_cb(nghttp2_session *ngh, int32_t sid, uint8_t *buf, size_t length,
                              uint32_t *flags, nghttp2_data_source *src, void *user);
/* Drops the queued bytes no DATA frame has a claim on yet (h2s_call_abort, h2s_req_abort). */
void h2s_call_drop_unsent(h2s_call_t *c);
/* The stream is gone: tell the handler if it still holds the call, then free it. */
void h2s_call_closed(h2s_call_t *c);

/* ---- h2s_limit.c: limits */

/* Admits the call to its handler (in-flight limits, wait queue, streaming cap). */
void h2s_call_invoke(h2s_call_t *c, const uint8_t *msg, size_t len);
/* The handler is done with the call: it no longer counts against the limits. */
void h2s_call_uncount(h2s_call_t *c);
/* The wait queue's event (h2s->dispatch_ev). */
void h2s_dispatch_cb(evutil_socket_t fd, short what, void *arg);
/* One control frame from the client; 0, or -1 when it floods (the session is being ended). */
int h2s_ctrl_spend(struct conn *conn);
/* Counts a plain request against the in-flight limits: 0, or -1 when over (answer 429). */
int h2s_req_count(h2s_req_t *r);
/* It no longer counts (answered, streaming, or gone). */
void h2s_req_uncount(h2s_req_t *r);
/* Its h2s_req_claim ends (the request is freed). */
void h2s_req_unclaim(h2s_req_t *r);

#endif
