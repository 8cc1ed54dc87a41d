/*
 * gcl: the gRPC client over HTTP/2 (nghttp2 1.52 + libevent 2.1). See gcl.h.
 *
 * A gcl_t has at most one live connection (struct gconn) at a time; it is
 * opened by the first call and dropped when it breaks or the server sends
 * GOAWAY (a connection draining after GOAWAY keeps its open calls until
 * they end). The nghttp2 session is created with the connection, so
 * requests are submitted at once and their bytes wait in the bufferevent
 * until the socket connects.
 *
 * A call's memory lives until its stream closes (or the connection goes),
 * but the user sees it only until on_done returns: `done` marks that the
 * user is finished with it. Output is pulled from nghttp2 after each read
 * batch, or from a deferred event when the user submits from outside a
 * read (never from inside an nghttp2 callback). User callbacks may free
 * the gcl_t: a connection inside nghttp2 is then only marked and freed
 * when nghttp2 returns. A keepalive PING fails connections whose server
 * went silent while calls are open.
 *
 * TLS (gcl_opts.tls): each connection gets an SSL from the context, set
 * to verify the server's certificate against the address's host name or
 * IP (tls_client_ssl), over libevent's bufferevent_openssl; the
 * bufferevent reports CONNECTED once the handshake is done, and a failed
 * handshake fails the calls with UNAVAILABLE naming the reason
 * ("certificate verify failed: unable to get local issuer certificate").
 */
#include "config.h"
#include "gcl.h"
#include "addr.h"
#include "buf.h"
#include "grpc.h"
#include "tls.h"
#include "pb.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define GCL_MAX_RESP (64u << 20) /* cap on one response message */
#define OUT_HIGH (256 * 1024)
#define GCL_FAILOVER_MIN_MS 100
#define GCL_FAILOVER_MAX_MS 1000

struct gconn {
    gcl_t *g;           /* NULL once detached from its gcl (draining or zombie) */
    struct gconn *next; /* g->conns */
    struct event_base *base;
    struct bufferevent *bev;
    nghttp2_session *ngh;
    struct event *flush_ev;
    struct event *connect_timer;
    size_t ep;              /* index into g->eps */
    struct event *start_ev; /* a connect delayed by the failover backoff */
    char *addr;
    char *authority, *bearer; /* copies: header values must outlive a gcl_free inside a callback */
    char *user_agent;         /* copy, or NULL */
    gcl_call_t *calls;
    int connected;
    int alive;   /* the server sent something: its address works */
    int in_recv; /* inside nghttp2 (mem_recv or mem_send): it must not be freed now */
    int dying;
    int zombie; /* freed by the read callback after mem_recv returns */
    int goaway;
    int connect_errno; /* errno seen by connect() itself (refused at once) */
    int tls;
    struct event *ka_timer;
    int64_t last_recv, ping_sent; /* mono ns; ping_sent 0 = no PING outstanding */
    int64_t ka_interval, ka_timeout;
    char *fail_msg; /* connect() failed at once: report this from the loop */
};

/* One apiserver address of the list. */
struct gcl_ep {
    char *addr; /* without its scheme: what messages name */
    char *authority;
    struct sockaddr_storage ss;
    int sslen;
    char *host; /* for connect_hostname when not numeric */
    int port;
    char *tls_host; /* the name or IP the server certificate must carry */
};

struct gcl {
    struct event_base *base;
    struct gcl_ep *eps;
    size_t neps;
    size_t ep;    /* where the next connection goes */
    int fails;    /* connections failed in a row (the failover backoff) */
    char *bearer; /* "Bearer xyz" or NULL */
    char *user_agent;
    int connect_timeout_ms;
    int ka_interval_ms, ka_timeout_ms;
    SSL_CTX *tls; /* NULL: cleartext */
    void (*on_warning)(const char *msg, void *arg);
    void *warning_arg;
    struct gconn *cur;   /* where new calls go */
    struct gconn *conns; /* every connection, cur included */
};

struct gcl_call {
    struct gconn *conn;
    gcl_call_t *prev, *next;
    int32_t sid;
    unsigned hops;     /* connections that failed before this call could go out */
    struct gcl_md *md; /* extra headers (copies: a call may be submitted again), or NULL */
    size_t n_md;
    gcl_msg_fn on_msg;
    gcl_done_fn on_done;
    void *arg;
    char *path;
    char timeout_hdr[16];
    struct event *timer;
    int timeout_ms;
    struct rbufq q; /* request queue */
    unsigned send_closed : 1;
    unsigned deferred : 1;
    unsigned done : 1;
    unsigned got_headers : 1;
    unsigned end_sent : 1; /* our END_STREAM went out */
    /* response */
    struct buf rb; /* received bytes not yet cut into messages */
    int http_status;
    int grpc_status; /* -1 until seen */
    char *grpc_message;
    char *err; /* a local error decided while receiving */
    int err_code;
};

static void gconn_fail(struct gconn *c, const char *why);
static void gconn_free(struct gconn *c);
static void gconn_detach(struct gconn *c);
static void call_attach(gcl_t *g, gcl_call_t *call);

/* ---------------------------------------------------------------- calls */

static void call_unlink(gcl_call_t *call)
{
    struct gconn *c = call->conn;
    if (call->prev)
        call->prev->next = call->next;
    else if (c)
        c->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

static void call_destroy(gcl_call_t *call)
{
    rbufq_free(&call->q);
    if (call->timer)
        event_free(call->timer);
    buf_free(&call->rb);
    free(call->grpc_message);
    free(call->err);
    free(call->path);
    for (size_t i = 0; i < call->n_md; i++) {
        free((char *)call->md[i].name);
        free((char *)call->md[i].value);
    }
    free(call->md);
    free(call);
}

/* Reports the end to the user once. */
static void call_done(gcl_call_t *call, int code, const char *msg)
{
    if (call->done)
        return;
    call->done = 1;
    if (call->timer)
        event_del(call->timer);
    if (call->on_done)
        call->on_done(call, code, msg ? msg : "", call->arg);
}

static void gconn_kick(struct gconn *c)
{
    if (c->in_recv || c->dying)
        return;
    event_active(c->flush_ev, EV_WRITE, 0);
}

static ssize_t req_read_cb(nghttp2_session *ngh, int32_t sid, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *src, void *user)
{
    gcl_call_t *c = src->ptr;
    size_t n = 0;
    while (n < length && c->q.n) {
        rbuf_t *b = rbufq_at(&c->q, 0);
        size_t k = b->len - c->q.off;
        if (k > length - n)
            k = length - n;
        memcpy(buf + n, b->data + c->q.off, k);
        n += k;
        rbufq_advance(&c->q, k);
    }
    if (c->q.n == 0 && (c->send_closed || c->done)) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        c->end_sent = 1;
        return (ssize_t)n;
    }
    if (n == 0) {
        c->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* ---------------------------------------------------------------- nghttp2 callbacks */

static int on_header(nghttp2_session *ngh, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    gcl_call_t *c = nghttp2_session_get_stream_user_data(ngh, f->hd.stream_id);
    if (!c || c->done)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        c->http_status = 0;
        for (size_t i = 0; i < vlen && i < 4; i++)
            c->http_status = c->http_status * 10 + (value[i] - '0');
    } else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        int v = 0;
        for (size_t i = 0; i < vlen && i < 6; i++) {
            if (value[i] < '0' || value[i] > '9') {
                v = GRPC_UNKNOWN;
                break;
            }
            v = v * 10 + (value[i] - '0');
        }
        c->grpc_status = v;
    } else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        free(c->grpc_message);
        c->grpc_message = grpc_message_decode((const char *)value, vlen);
    } else if (nlen == 7 && memcmp(name, "warning", 7) == 0 && c->conn->g &&
               c->conn->g->on_warning) {
        char *w = xstrndup((const char *)value, vlen);
        c->conn->g->on_warning(w, c->conn->g->warning_arg);
        free(w);
    }
    return 0;
}

static void call_set_err(gcl_call_t *c, int code, const char *msg)
{
    if (c->err)
        return;
    c->err = xstrdup(msg);
    c->err_code = code;
}

static int on_data_chunk(nghttp2_session *ngh, uint8_t flags, int32_t sid, const uint8_t *d,
                         size_t n, void *user)
{
    gcl_call_t *c = nghttp2_session_get_stream_user_data(ngh, sid);
    if (!c || c->done || c->err)
        return 0;
    buf_add(&c->rb, d, n);
    const uint8_t *rb = (const uint8_t *)c->rb.p;
    size_t off = 0;
    while (!c->done) {
        uint32_t mlen;
        int r = grpc_frame_peek(rb + off, c->rb.len - off, &mlen);
        if (r == 0)
            break;
        if (r < 0) {
            call_set_err(c, GRPC_INTERNAL, "compressed response messages are not supported");
            nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
            break;
        }
        if (mlen > GCL_MAX_RESP) {
            char m[96];
            snprintf(m, sizeof(m), "grpc: received message larger than max (%u vs. %u)", mlen,
                     GCL_MAX_RESP);
            call_set_err(c, GRPC_RESOURCE_EXHAUSTED, m);
            nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
            break;
        }
        if (c->rb.len - off - GRPC_FRAME_HDR < mlen)
            break;
        if (c->on_msg)
            c->on_msg(c, rb + off + GRPC_FRAME_HDR, mlen, c->arg);
        off += GRPC_FRAME_HDR + mlen;
    }
    buf_consume(&c->rb, c->err ? c->rb.len : off);
    return 0;
}

static int http_to_grpc(int st)
{
    switch (st) {
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

/* The server ended the stream (END_STREAM): settle the status. */
static void call_finish_from_response(gcl_call_t *c)
{
    char m[128];
    if (c->err) {
        call_done(c, c->err_code, c->err);
    } else if (c->http_status != 200) {
        snprintf(m, sizeof(m), "unexpected HTTP status %d from server", c->http_status);
        call_done(c, http_to_grpc(c->http_status), m);
    } else if (c->grpc_status < 0) {
        call_done(c, GRPC_INTERNAL, "server sent no grpc-status");
    } else if (c->grpc_status == GRPC_OK && c->rb.len) {
        call_done(c, GRPC_INTERNAL, "response ended inside a message");
    } else {
        call_done(c, c->grpc_status, c->grpc_message);
    }
}

static int on_frame_recv(nghttp2_session *ngh, const nghttp2_frame *f, void *user)
{
    struct gconn *conn = user;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        conn->goaway = 1;
        if (conn->g && conn->g->cur == conn)
            conn->g->cur = NULL;
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    gcl_call_t *c = nghttp2_session_get_stream_user_data(ngh, f->hd.stream_id);
    if (!c || c->done)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE)
        c->got_headers = 1;
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        call_finish_from_response(c);
        if (!c->end_sent)
            nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

/*
 * A request that never went out (GOAWAY arrived first, or the call was
 * cancelled before its HEADERS left). A stream close may still follow (it
 * does for a cancelled one): it must not find the call it is about to lose.
 */
static int on_frame_not_send(nghttp2_session *ngh, const nghttp2_frame *f, int err, void *user)
{
    struct gconn *conn = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    gcl_call_t *c = conn->calls;
    while (c && c->sid != f->hd.stream_id)
        c = c->next;
    if (!c)
        return 0;
    char m[160];
    snprintf(m, sizeof(m), "cannot start a call on %s: %s", conn->addr, nghttp2_strerror(err));
    nghttp2_session_set_stream_user_data(ngh, f->hd.stream_id, NULL); /* fails if no stream: fine */
    call_unlink(c);
    c->conn = NULL;
    call_done(c, GRPC_UNAVAILABLE, m);
    call_destroy(c);
    return 0;
}

static int on_stream_close(nghttp2_session *ngh, int32_t sid, uint32_t err, void *user)
{
    struct gconn *conn = user;
    gcl_call_t *c = nghttp2_session_get_stream_user_data(ngh, sid);
    if (!c)
        return 0;
    nghttp2_session_set_stream_user_data(ngh, sid, NULL);
    if (!c->done) {
        char m[160];
        int code;
        if (c->err) {
            code = c->err_code;
            snprintf(m, sizeof(m), "%s", c->err);
        } else if (err == NGHTTP2_REFUSED_STREAM) {
            code = GRPC_UNAVAILABLE;
            snprintf(m, sizeof(m), "stream refused by %s", conn->addr);
        } else if (err == NGHTTP2_CANCEL) {
            code = GRPC_CANCELLED;
            snprintf(m, sizeof(m), "stream cancelled by %s", conn->addr);
        } else if (err == NGHTTP2_ENHANCE_YOUR_CALM) {
            code = GRPC_RESOURCE_EXHAUSTED;
            snprintf(m, sizeof(m), "stream reset by %s: ENHANCE_YOUR_CALM", conn->addr);
        } else {
            code = GRPC_INTERNAL;
            snprintf(m, sizeof(m), "stream reset by %s (HTTP/2 error %s)", conn->addr,
                     nghttp2_http2_strerror(err));
        }
        call_done(c, code, m);
    }
    call_unlink(c);
    call_destroy(c);
    return 0;
}

/* ---------------------------------------------------------------- connection */

static nghttp2_session_callbacks *client_cbs(void)
{
    static nghttp2_session_callbacks *cbs;
    if (!cbs) {
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    }
    return cbs;
}

/* ---------------------------------------------------------------- failover */

int gcl_failover_delay_ms(int fails)
{
    if (fails < 2)
        return 0; /* the first retry goes out at once */
    int d = fails - 2 >= 4 ? GCL_FAILOVER_MAX_MS : GCL_FAILOVER_MIN_MS << (fails - 2);
    if (d > GCL_FAILOVER_MAX_MS)
        d = GCL_FAILOVER_MAX_MS;
    return d - (int)(random() % (d / 5 + 1)); /* jitter: 80-100 %, never above the cap */
}

/* A connection to the current address failed: the next one goes to the next address. */
static void ep_failed(gcl_t *g, const struct gconn *c)
{
    if (!g || g->neps < 2 || c->ep != g->ep)
        return;
    g->ep = (g->ep + 1) % g->neps;
    g->fails++;
    log_debug("gcl: %s failed; next connection to %s", c->addr, g->eps[g->ep].addr);
}

/*
 * A connection that never connected sent nothing: its calls that have
 * addresses left to try move to a connection to the next address (c is
 * detached already, so g->cur is not c). The rest stay to fail with c.
 */
static void gconn_reroute(gcl_t *g, struct gconn *c)
{
    gcl_call_t *next;
    for (gcl_call_t *call = c->calls; call; call = next) {
        next = call->next;
        if (call->done || call->hops + 1 >= g->neps)
            continue;
        call_unlink(call);
        call->hops++;
        call->sid = 0;
        call->deferred = 0;
        call_attach(g, call);
    }
}

/* Pulls frames into the output buffer; returns -1 if the connection failed (and is freed). */
static int gconn_send(struct gconn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->in_recv)
        return 0; /* the read callback sends when nghttp2 returns */
    if (c->dying)
        return -1;
    if (!c->connected)
        return 0; /* requests stay in nghttp2, free to move to another address */
    while (evbuffer_get_length(out) < OUT_HIGH) {
        const uint8_t *data;
        c->in_recv = 1;
        ssize_t n = nghttp2_session_mem_send(c->ngh, &data);
        c->in_recv = 0;
        if (c->zombie) {
            gconn_free(c);
            return -1;
        }
        if (n < 0) {
            char m[160];
            snprintf(m, sizeof(m), "connection to %s failed: %s", c->addr,
                     nghttp2_strerror((int)n));
            gconn_fail(c, m);
            return -1;
        }
        if (n == 0)
            break;
        evbuffer_add(out, data, (size_t)n);
    }
    return 0;
}

/* A detached connection with nothing left to do goes away. */
static void gconn_maybe_reap(struct gconn *c)
{
    if (c->dying || c->in_recv)
        return;
    if (c->zombie || ((!c->g || c->g->cur != c) && !c->calls &&
                      evbuffer_get_length(bufferevent_get_output(c->bev)) == 0))
        gconn_free(c);
}

static void gconn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gconn *c = arg;
    if (c->fail_msg) {
        gcl_t *g = c->g;
        gconn_detach(c);
        if (g)
            gconn_reroute(g, c);
        for (gcl_call_t *call = c->calls; call; call = call->next)
            call_done(call, GRPC_UNAVAILABLE, c->fail_msg);
        gconn_free(c);
        return;
    }
    if (gconn_send(c) < 0)
        return;
    gconn_maybe_reap(c);
}

/* n received bytes into nghttp2: what it took, or -1 after failing c (gconn_fail ran). */
static ssize_t gconn_recv(struct gconn *c, const uint8_t *p, size_t n)
{
    ssize_t r = nghttp2_session_mem_recv(c->ngh, p, n);
    if (r < 0) {
        c->in_recv = 0;
        char m[160];
        snprintf(m, sizeof(m), "connection to %s failed: %s", c->addr, nghttp2_strerror((int)r));
        gconn_fail(c, m);
        return -1;
    }
    return r;
}

#define READ_DIRECT 65536  /* bytes one read(2) may take from a cleartext socket */
#define READ_BUDGET 262144 /* ...and all of them in one callback (other connections wait) */

/*
 * libevent 2.1 reads at most 4 KiB per call (and asks FIONREAD first), so
 * a busy watch stream cost two system calls and a loop pass per 4 KiB;
 * for 1,000 watchers that was most of the client's CPU. What a cleartext
 * socket holds beyond that is read here, in big reads, straight into
 * nghttp2. Returns -1 if c failed (gconn_fail ran); c may be a zombie after.
 */
static int gconn_read_direct(struct gconn *c, int fd)
{
    uint8_t b[READ_DIRECT];
    for (size_t got = 0; got < READ_BUDGET && !c->zombie;) {
        ssize_t n = read(fd, b, sizeof(b));
        if (n <= 0)
            return 0; /* EAGAIN; EOF and errors: libevent's next read reports them */
        got += (size_t)n;
        if (gconn_recv(c, b, (size_t)n) < 0)
            return -1;
        if ((size_t)n < sizeof(b))
            return 0; /* drained */
    }
    return 0;
}

static void gconn_readcb(struct bufferevent *bev, void *arg)
{
    struct gconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (!c->alive) {
        c->alive = 1;
        if (c->g)
            c->g->fails = 0;
    }
    c->last_recv = mono_ns();
    c->ping_sent = 0;
    c->in_recv = 1;
    while (evbuffer_get_length(in) && !c->zombie) {
        struct evbuffer_iovec v[16];
        int nv = evbuffer_peek(in, -1, NULL, v, 16);
        size_t used = 0;
        for (int i = 0; i < nv && i < 16 && !c->zombie; i++) {
            ssize_t r = gconn_recv(c, v[i].iov_base, v[i].iov_len);
            if (r < 0)
                return;
            used += (size_t)r;
        }
        evbuffer_drain(in, used);
    }
    if (!c->tls && !c->zombie && gconn_read_direct(c, bufferevent_getfd(bev)) < 0)
        return;
    c->in_recv = 0;
    if (c->zombie) {
        gconn_free(c);
        return;
    }
    if (gconn_send(c) < 0)
        return;
    if (!nghttp2_session_want_read(c->ngh) && !nghttp2_session_want_write(c->ngh)) {
        char m[160];
        snprintf(m, sizeof(m), "connection to %s lost", c->addr);
        gconn_fail(c, m);
        return;
    }
    gconn_maybe_reap(c);
}

static void gconn_writecb(struct bufferevent *bev, void *arg)
{
    struct gconn *c = arg;
    if (gconn_send(c) < 0)
        return;
    gconn_maybe_reap(c);
}

static void gconn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct gconn *c = arg;
    char m[640];
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = 1;
        if (c->connect_timer)
            event_del(c->connect_timer);
        int fd = bufferevent_getfd(bev), one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (gconn_send(c) == 0)
            gconn_maybe_reap(c);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
        return;
    unsigned long te = c->tls ? bufferevent_get_openssl_error(bev) : 0;
    int syscall_errno = 0;
    if (te == SSL_ERROR_SYSCALL && !c->connected) {
        /* libevent's own code for a socket error during the handshake (a refused connect):
         * errno still says which */
        syscall_errno = errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS ? 0 : errno;
        while (bufferevent_get_openssl_error(bev))
            ;
        te = 0;
    }
    if (te) {
        char b[256];
        ERR_error_string_n(te, b, sizeof(b));
        const char *r = strstr(b, "::");
        r = r ? r + 2 : b;
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
        while (bufferevent_get_openssl_error(bev))
            ;
        if (vr != X509_V_OK)
            snprintf(m, sizeof(m), "%s %s: TLS: %s: %s",
                     c->connected ? "connection to" : "connect to", c->addr, r,
                     X509_verify_cert_error_string(vr));
        else
            snprintf(m, sizeof(m), "%s %s: TLS: %s", c->connected ? "connection to" : "connect to",
                     c->addr, r);
    } else if (!c->connected) {
        int e = 0, fd = bufferevent_getfd(bev);
        socklen_t el = sizeof(e);
        if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0 || !e)
            e = c->connect_errno ? c->connect_errno : EVUTIL_SOCKET_ERROR();
        if (syscall_errno) {
            e = syscall_errno;
            what &= ~BEV_EVENT_EOF;
        }
        int dnse = bufferevent_socket_get_dns_error(bev);
        if (dnse)
            snprintf(m, sizeof(m), "connect to %s: %s", c->addr, evutil_gai_strerror(dnse));
        else
            snprintf(m, sizeof(m), "connect to %s: %s", c->addr,
                     (what & BEV_EVENT_EOF) || !e ? "Connection closed" : strerror(e));
    } else {
        snprintf(m, sizeof(m), "connection to %s lost", c->addr);
    }
    gconn_fail(c, m);
}

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gconn *c = arg;
    char m[160];
    snprintf(m, sizeof(m), "connect to %s: %s", c->addr, strerror(ETIMEDOUT));
    gconn_fail(c, m);
}

/* Keepalive: a server that went away silently must not hold open calls forever. */
static void gconn_ka_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gconn *c = arg;
    int64_t now = mono_ns();
    if (!c->connected || !c->calls || c->dying)
        return;
    if (c->ping_sent && now - c->ping_sent > c->ka_timeout) {
        char m[192];
        snprintf(m, sizeof(m), "connection to %s lost: no answer to a keepalive PING in %lldms",
                 c->addr, (long long)(c->ka_timeout / 1000000));
        gconn_fail(c, m);
    } else if (!c->ping_sent && now - c->last_recv > c->ka_interval) {
        c->ping_sent = now;
        nghttp2_submit_ping(c->ngh, NGHTTP2_FLAG_NONE, NULL);
        gconn_kick(c);
    }
}

static void gconn_detach(struct gconn *c)
{
    gcl_t *g = c->g;
    if (!g)
        return;
    if (g->cur == c)
        g->cur = NULL;
    for (struct gconn **pp = &g->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    c->g = NULL;
}

/*
 * Fails every open call with UNAVAILABLE and frees the connection. With
 * several addresses, the next connection goes to the next one, and calls
 * that never went out move there now.
 */
static void gconn_fail(struct gconn *c, const char *why)
{
    if (c->dying)
        return;
    gcl_t *g = c->g;
    ep_failed(g, c);
    gconn_detach(c);
    c->dying = 1;
    if (g && !c->connected)
        gconn_reroute(g, c);
    for (gcl_call_t *call = c->calls; call; call = call->next)
        call_done(call, GRPC_UNAVAILABLE, why);
    if (c->in_recv) {
        c->zombie = 1;
        return;
    }
    gconn_free(c);
}

static void gconn_free(struct gconn *c)
{
    gconn_detach(c);
    c->dying = 1;
    while (c->calls) {
        gcl_call_t *call = c->calls;
        call_unlink(call);
        call_done(call, GRPC_UNAVAILABLE, "connection closed");
        call_destroy(call);
    }
    if (c->ngh)
        nghttp2_session_del(c->ngh);
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->flush_ev);
    if (c->start_ev)
        event_free(c->start_ev);
    if (c->connect_timer)
        event_free(c->connect_timer);
    if (c->ka_timer)
        event_free(c->ka_timer);
    free(c->addr);
    free(c->authority);
    free(c->bearer);
    free(c->user_agent);
    free(c->fail_msg);
    free(c);
}

/* Starts connecting (now, or when the failover backoff is over). */
static void gconn_connect(struct gconn *c)
{
    gcl_t *g = c->g;
    const struct gcl_ep *ep = &g->eps[c->ep];
    int timeout = g->connect_timeout_ms;
    if (timeout > 0) {
        c->connect_timer = evtimer_new(g->base, connect_timeout_cb, c);
        struct timeval tv = {timeout / 1000, (timeout % 1000) * 1000};
        evtimer_add(c->connect_timer, &tv);
    }
    int r;
    errno = 0;
    if (ep->host)
        r = bufferevent_socket_connect_hostname(c->bev, NULL, AF_UNSPEC, ep->host, ep->port);
    else
        r = bufferevent_socket_connect(c->bev, (struct sockaddr *)&ep->ss, ep->sslen);
    if (r < 0) {
        /* the event callback may already have reported it; otherwise do it on the loop */
        int e = errno ? errno : ECONNREFUSED;
        char m[256];
        snprintf(m, sizeof(m), "connect to %s: %s", c->addr, strerror(e));
        ep_failed(g, c);
        if (g->cur == c)
            g->cur = NULL;
        c->dying = 1; /* the caller adds its call, the flush event fails it */
        c->fail_msg = xstrdup(m);
        event_active(c->flush_ev, EV_WRITE, 0);
        return;
    }
    if (errno == ECONNREFUSED)
        c->connect_errno = errno;
}

static void gconn_start_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gconn *c = arg;
    if (c->g && !c->dying)
        gconn_connect(c);
}

static struct gconn *gconn_open(gcl_t *g)
{
    const struct gcl_ep *ep = &g->eps[g->ep];
    struct gconn *c = xcalloc(1, sizeof(*c));
    c->g = g;
    c->base = g->base;
    c->ep = g->ep;
    c->addr = xstrdup(ep->addr);
    c->authority = xstrdup(ep->authority);
    c->bearer = g->bearer ? xstrdup(g->bearer) : NULL;
    c->user_agent = g->user_agent ? xstrdup(g->user_agent) : NULL;
    c->flush_ev = event_new(g->base, -1, 0, gconn_flush_cb, c);
    if (g->tls && ep->tls_host) {
        SSL *ssl = tls_client_ssl(g->tls, ep->tls_host);
        if (ssl)
            c->bev = bufferevent_openssl_socket_new(g->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) /* gcl_new made one already: only out of memory gets here */
            fatal("gcl: %s: cannot set up TLS: %s", ep->addr, tls_last_error());
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        c->tls = 1;
    } else {
        c->bev = bufferevent_socket_new(g->base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    bufferevent_setcb(c->bev, gconn_readcb, gconn_writecb, gconn_eventcb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, 64 * 1024, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    nghttp2_session_client_new(&c->ngh, client_cbs(), c);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
    };
    nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv));
    nghttp2_session_set_local_window_size(c->ngh, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    c->next = g->conns;
    g->conns = c;
    g->cur = c;
    c->last_recv = mono_ns();
    if (g->ka_interval_ms > 0) {
        c->ka_interval = (int64_t)g->ka_interval_ms * 1000000;
        c->ka_timeout = (int64_t)g->ka_timeout_ms * 1000000;
        int p = g->ka_interval_ms < g->ka_timeout_ms ? g->ka_interval_ms : g->ka_timeout_ms;
        p = p / 2 < 10 ? 10 : p / 2;
        c->ka_timer = event_new(g->base, -1, EV_PERSIST, gconn_ka_cb, c);
        struct timeval ktv = {p / 1000, (p % 1000) * 1000};
        event_add(c->ka_timer, &ktv);
    }
    int delay = g->neps > 1 ? gcl_failover_delay_ms(g->fails) : 0;
    if (delay > 0) {
        c->start_ev = evtimer_new(g->base, gconn_start_cb, c);
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        evtimer_add(c->start_ev, &tv);
        return c;
    }
    gconn_connect(c);
    return c;
}

/* ---------------------------------------------------------------- timers */

static void call_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    gcl_call_t *c = arg;
    char m[96];
    snprintf(m, sizeof(m), "deadline exceeded after %dms", c->timeout_ms);
    if (c->done)
        return;
    if (c->conn && !c->conn->dying && c->sid > 0) {
        nghttp2_submit_rst_stream(c->conn->ngh, NGHTTP2_FLAG_NONE, c->sid, NGHTTP2_CANCEL);
        gconn_kick(c->conn);
    }
    call_done(c, GRPC_DEADLINE_EXCEEDED, m); /* may free everything: c is not touched after */
}

/* A call that never got a stream: report its error from the loop and drop it. */
static void call_fail_cb(evutil_socket_t fd, short what, void *arg)
{
    gcl_call_t *c = arg;
    call_unlink(c);
    c->conn = NULL;
    call_done(c, c->err_code, c->err);
    call_destroy(c);
}

/* ---------------------------------------------------------------- public */

static void ep_clear(struct gcl_ep *ep)
{
    free(ep->addr);
    free(ep->authority);
    free(ep->host);
    free(ep->tls_host);
}

/* One address of the list into *ep. Returns 0, or -1 (logged). */
static int ep_parse(struct gcl_ep *ep, const char *addr, const struct gcl_opts *opts)
{
    int https = 0;
    if (strncmp(addr, "https://", 8) == 0) {
        addr += 8;
        https = 1;
    } else if (strncmp(addr, "http://", 7) == 0) {
        addr += 7;
    }
    if (https && !(opts && opts->tls)) {
        log_err("gcl: https://%s: TLS needs a CA (certificate-authority)", addr);
        return -1;
    }
    ep->addr = xstrdup(addr);
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ep->ss;
        const char *p = addr + 5;
        if (!*p || strlen(p) >= sizeof(un->sun_path)) {
            log_err("gcl: %s: bad unix socket path", addr);
            return -1;
        }
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, p);
        ep->sslen = sizeof(*un);
        ep->authority = xstrdup("localhost");
        return 0; /* unix sockets are cleartext: opts->tls is not used */
    }
    if (opts && opts->tls) {
        const char *colon = strrchr(addr, ':');
        ep->tls_host = opts->tls_server_name ? xstrdup(opts->tls_server_name)
                       : colon               ? xstrndup(addr, (size_t)(colon - addr))
                                             : xstrdup(addr);
        SSL *probe = tls_client_ssl(opts->tls, ep->tls_host);
        if (!probe) {
            log_err("gcl: %s: cannot verify the server as '%s' (bad host name?)", addr,
                    ep->tls_host);
            return -1;
        }
        SSL_free(probe);
    }
    const char *colon = strrchr(addr, ':');
    if (addr_parse_hostport(addr, &ep->ss, &ep->sslen) == 0) {
        ep->authority = xstrdup(addr);
        return 0;
    }
    /* a host name ("localhost:6443"): resolved by libevent at connect time */
    if (!colon || colon == addr || !colon[1]) {
        log_err("gcl: %s: expected host:port or unix:/path", addr);
        return -1;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535) {
        log_err("gcl: %s: bad port", addr);
        return -1;
    }
    ep->host = xstrndup(addr, (size_t)(colon - addr));
    ep->port = (int)port;
    ep->authority = xstrdup(addr);
    return 0;
}

gcl_t *gcl_new(struct event_base *base, const char *addr, const struct gcl_opts *opts)
{
    sigpipe_ignore(); /* a peer that closed must not kill us */
    gcl_t *g = xcalloc(1, sizeof(*g));
    g->base = base;
    size_t n = 1;
    for (const char *p = addr; *p; p++)
        n += *p == ',';
    g->eps = xcalloc(n, sizeof(*g->eps));
    for (const char *p = addr;; p++) {
        size_t len = strcspn(p, ",");
        char *one = xstrndup(p, len);
        int r = ep_parse(&g->eps[g->neps++], one, opts);
        free(one);
        if (r < 0)
            goto fail;
        p += len;
        if (!*p)
            break;
    }
    g->connect_timeout_ms = opts && opts->connect_timeout_ms ? opts->connect_timeout_ms : 3000;
    g->ka_interval_ms = 30000;
    g->ka_timeout_ms = 20000;
    if (opts && opts->bearer_token)
        g->bearer = xasprintf("Bearer %s", opts->bearer_token);
    if (opts && opts->user_agent)
        g->user_agent = xstrdup(opts->user_agent);
    if (opts) {
        g->on_warning = opts->on_warning;
        g->warning_arg = opts->warning_arg;
    }
    if (opts && opts->tls) {
        SSL_CTX_up_ref(opts->tls);
        g->tls = opts->tls;
    }
    return g;
fail:
    for (size_t i = 0; i < g->neps; i++)
        ep_clear(&g->eps[i]);
    free(g->eps);
    free(g);
    return NULL;
}

void gcl_free(gcl_t *g)
{
    if (!g)
        return;
    while (g->conns) {
        struct gconn *c = g->conns;
        gconn_detach(c);
        c->dying = 1;
        for (gcl_call_t *call = c->calls; call; call = call->next)
            call_done(call, GRPC_CANCELLED, "client closed");
        if (c->in_recv)
            c->zombie = 1;
        else
            gconn_free(c);
    }
    for (size_t i = 0; i < g->neps; i++)
        ep_clear(&g->eps[i]);
    free(g->eps);
    free(g->bearer);
    free(g->user_agent);
    SSL_CTX_free(g->tls);
    free(g);
}

void gcl_set_keepalive(gcl_t *g, int interval_ms, int timeout_ms)
{
    g->ka_interval_ms = interval_ms > 0 ? interval_ms : 0;
    g->ka_timeout_ms = timeout_ms > 0 ? timeout_ms : 20000;
}

void gcl_set_tls(gcl_t *g, SSL_CTX *ctx)
{
    if (!g->tls || !ctx)
        return;
    SSL_CTX_up_ref(ctx);
    SSL_CTX_free(g->tls);
    g->tls = ctx;
    struct gconn *c = g->cur;
    if (!c)
        return;
    g->cur = NULL; /* the next call opens a connection with ctx */
    gconn_maybe_reap(c);
}

const char *gcl_addr(const gcl_t *g)
{
    return g->eps[g->ep].addr;
}

static gcl_call_t *call_start(gcl_t *g, const char *path, const struct gcl_md *md, size_t n_md,
                              rbuf_t *first, int close_send, gcl_msg_fn on_msg, gcl_done_fn on_done,
                              void *arg, int timeout_ms)
{
    gcl_call_t *call = xcalloc(1, sizeof(*call));
    call->on_msg = on_msg;
    call->on_done = on_done;
    call->arg = arg;
    call->path = xstrdup(path);
    call->grpc_status = -1;
    call->timeout_ms = timeout_ms;
    call->send_closed = close_send ? 1 : 0;
    if (n_md) {
        call->md = xcalloc(n_md, sizeof(*call->md));
        for (size_t i = 0; i < n_md; i++) {
            call->md[i].name = xstrdup(md[i].name);
            call->md[i].value = xstrdup(md[i].value);
        }
        call->n_md = n_md;
    }
    if (first)
        rbufq_push(&call->q, first);
    if (timeout_ms > 0) {
        call->timer = evtimer_new(g->base, call_timeout_cb, call);
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(call->timer, &tv);
    }
    call_attach(g, call);
    return call;
}

/* Puts the call on the current connection (opening one) and submits its request. */
static void call_attach(gcl_t *g, gcl_call_t *call)
{
    struct gconn *c = g->cur;
    if (c && (c->goaway || c->dying))
        c = NULL;
    if (!c)
        c = gconn_open(g);
    call->conn = c;
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    if (c->dying) {
        /* connect() failed at once: report from the loop, never from inside this call */
        return;
    }
    const struct gcl_md *md = call->md;
    size_t n_md = call->n_md;
    nghttp2_nv nv_fixed[9], *nv = nv_fixed;
    if (n_md)
        nv = xmalloc((ARRAY_SIZE(nv_fixed) + n_md) * sizeof(*nv));
    size_t n = 0;
#define NV(nm, v, fl)                                                                              \
    nv[n++] = (nghttp2_nv)                                                                         \
    {                                                                                              \
        (uint8_t *)(nm), (uint8_t *)(v), strlen(nm), strlen(v), (fl)                               \
    }
    const uint8_t nc = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    NV(":method", "POST", nc);
    NV(":scheme", "http", nc);
    NV(":path", call->path, NGHTTP2_NV_FLAG_NO_COPY_NAME);
    NV(":authority", c->authority, NGHTTP2_NV_FLAG_NO_COPY_NAME);
    NV("content-type", "application/grpc", nc);
    NV("te", "trailers", nc);
    if (c->bearer)
        NV("authorization", c->bearer, NGHTTP2_NV_FLAG_NO_COPY_NAME);
    if (c->user_agent)
        NV("user-agent", c->user_agent, NGHTTP2_NV_FLAG_NO_COPY_NAME);
    int timeout_ms = call->timeout_ms;
    if (timeout_ms > 0) {
        /* the spec allows at most 8 digits */
        if (timeout_ms <= 99999999)
            snprintf(call->timeout_hdr, sizeof(call->timeout_hdr), "%dm", timeout_ms);
        else
            snprintf(call->timeout_hdr, sizeof(call->timeout_hdr), "%dS", timeout_ms / 1000);
        NV("grpc-timeout", call->timeout_hdr, NGHTTP2_NV_FLAG_NO_COPY_NAME);
    }
    for (size_t i = 0; i < n_md; i++)
        NV(md[i].name, md[i].value, NGHTTP2_NV_FLAG_NONE); /* nghttp2 copies them */
#undef NV
    nghttp2_data_provider dp = {.source.ptr = call, .read_callback = req_read_cb};
    int32_t sid = nghttp2_submit_request(c->ngh, NULL, nv, n, &dp, call);
    if (nv != nv_fixed)
        free(nv);
    if (sid < 0) {
        /* out of stream ids or the like: this connection is done for new calls */
        char m[160];
        snprintf(m, sizeof(m), "cannot start a call on %s: %s", c->addr, nghttp2_strerror(sid));
        call_set_err(call, GRPC_UNAVAILABLE, m);
        if (g->cur == c)
            g->cur = NULL;
        c->goaway = 1;
        call->sid = -1;
        if (call->timer)
            event_free(call->timer); /* the deadline: the call fails now */
        call->timer = evtimer_new(g->base, call_fail_cb, call);
        struct timeval tv0 = {0, 0};
        evtimer_add(call->timer, &tv0);
        return;
    }
    call->sid = sid;
    gconn_kick(c);
}

gcl_call_t *gcl_call_raw(gcl_t *g, const char *path, const void *req, size_t len, gcl_msg_fn on_msg,
                         gcl_done_fn on_done, void *arg, int timeout_ms)
{
    return gcl_call_raw_md(g, path, NULL, 0, req, len, on_msg, on_done, arg, timeout_ms);
}

gcl_call_t *gcl_call_raw_md(gcl_t *g, const char *path, const struct gcl_md *md, size_t n_md,
                            const void *req, size_t len, gcl_msg_fn on_msg, gcl_done_fn on_done,
                            void *arg, int timeout_ms)
{
    rbuf_t *b = rbuf_alloc(GRPC_FRAME_HDR + len);
    grpc_frame_hdr(b->data, (uint32_t)len);
    if (len)
        memcpy(b->data + GRPC_FRAME_HDR, req, len);
    return call_start(g, path, md, n_md, b, 1, on_msg, on_done, arg, timeout_ms);
}

gcl_call_t *gcl_call(gcl_t *g, const char *path, const ProtobufCMessage *req, gcl_msg_fn on_msg,
                     gcl_done_fn on_done, void *arg, int timeout_ms)
{
    return call_start(g, path, NULL, 0, grpc_frame_msg(req), 1, on_msg, on_done, arg, timeout_ms);
}

gcl_call_t *gcl_call_bidi(gcl_t *g, const char *path, gcl_msg_fn on_msg, gcl_done_fn on_done,
                          void *arg)
{
    return call_start(g, path, NULL, 0, NULL, 0, on_msg, on_done, arg, 0);
}

gcl_call_t *gcl_call_bidi_md(gcl_t *g, const char *path, const struct gcl_md *md, size_t n_md,
                             gcl_msg_fn on_msg, gcl_done_fn on_done, void *arg)
{
    return call_start(g, path, md, n_md, NULL, 0, on_msg, on_done, arg, 0);
}

static void call_resume(gcl_call_t *c)
{
    if (!c->conn || c->conn->dying || c->sid <= 0)
        return;
    if (c->deferred) {
        c->deferred = 0;
        nghttp2_session_resume_data(c->conn->ngh, c->sid);
    }
    gconn_kick(c->conn);
}

int gcl_call_send(gcl_call_t *c, const ProtobufCMessage *m)
{
    if (c->done || c->send_closed)
        return -1;
    rbufq_push(&c->q, grpc_frame_msg(m));
    call_resume(c);
    return 0;
}

/* Bidi: sends one pre-packed message (no 5-byte header). Returns 0 or -1 if the call ended. */
int gcl_call_send_raw(gcl_call_t *c, const void *msg, size_t len)
{
    if (c->done || c->send_closed)
        return -1;
    rbuf_t *b = rbuf_alloc(GRPC_FRAME_HDR + len);
    grpc_frame_hdr(b->data, (uint32_t)len);
    if (len)
        memcpy(b->data + GRPC_FRAME_HDR, msg, len);
    rbufq_push(&c->q, b);
    call_resume(c);
    return 0;
}

void gcl_call_close_send(gcl_call_t *c)
{
    if (c->done || c->send_closed)
        return;
    c->send_closed = 1;
    call_resume(c);
}

void gcl_call_cancel(gcl_call_t *c)
{
    if (c->done)
        return;
    if (c->conn && !c->conn->dying && c->sid > 0) {
        nghttp2_submit_rst_stream(c->conn->ngh, NGHTTP2_FLAG_NONE, c->sid, NGHTTP2_CANCEL);
        gconn_kick(c->conn);
    }
    call_done(c, GRPC_CANCELLED, "cancelled by the client");
}

struct sync_state {
    int done, code;
    char *msg;
    uint8_t *resp;
    size_t resp_len;
    int nmsg;
};

static void sync_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct sync_state *st = arg;
    if (st->nmsg++ == 0)
        st->resp = xmemdup(msg, len ? len : 1), st->resp_len = len;
}

static void sync_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct sync_state *st = arg;
    st->done = 1;
    st->code = code;
    st->msg = xstrdup(message);
}

int gcl_unary_sync(gcl_t *g, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                   char **errmsg)
{
    return gcl_unary_sync_timeout(g, path, req, resp_desc, resp, errmsg, 0);
}

int gcl_unary_sync_timeout(gcl_t *g, const char *path, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                           char **errmsg, int timeout_ms)
{
    struct sync_state st = {0};
    *resp = NULL;
    if (errmsg)
        *errmsg = NULL;
    gcl_call(g, path, req, sync_msg, sync_done, &st, timeout_ms);
    while (!st.done)
        event_base_loop(g->base, EVLOOP_ONCE);
    if (st.code == GRPC_OK) {
        if (st.nmsg != 1) {
            st.code = GRPC_INTERNAL;
            free(st.msg);
            st.msg = xasprintf("expected one response message, got %d", st.nmsg);
        } else {
            *resp = pb_decode(resp_desc, st.resp, st.resp_len);
            if (!*resp) {
                st.code = GRPC_INTERNAL;
                free(st.msg);
                st.msg = xasprintf("cannot decode the %s response", resp_desc->name);
            }
        }
    }
    free(st.resp);
    if (st.code != GRPC_OK && errmsg)
        *errmsg = st.msg;
    else
        free(st.msg);
    return st.code;
}

/* True if an address of the comma list starts with https://. */
static int addrs_have_https(const char *addrs)
{
    for (const char *p = addrs; p && *p; p++) {
        if (strncmp(p, "https://", 8) == 0)
            return 1;
        p += strcspn(p, ",");
        if (!*p)
            break;
    }
    return 0;
}

int gcl_opts_setup(struct gcl_opts *o, const char *addr, const char *ca, const char *cert,
                   const char *key, const char *token, char **err)
{
    *err = NULL;
    o->bearer_token = token && *token ? token : NULL;
    o->tls = NULL;
    int https = addrs_have_https(addr);
    if (ca && !*ca)
        ca = NULL;
    if (cert && !*cert)
        cert = NULL;
    if (key && !*key)
        key = NULL;
    if (!ca && !https) {
        if (cert || key) {
            *err = xasprintf("client-certificate needs certificate-authority (TLS)");
            return -1;
        }
        return 0;
    }
    if (addr && strncmp(addr, "unix:", 5) == 0)
        return 0;
    o->tls = tls_client_ctx(ca, cert, key, err);
    return o->tls ? 0 : -1;
}
