/*
 * h2s_call: one HTTP/2 stream's call, from HEADERS to the stream's close
 * (see h2s.c for the whole module). The nghttp2 session callbacks land
 * here: request headers are collected, the request is routed when they
 * are complete, the body is read and framed into gRPC messages, and the
 * handler is invoked (through h2s_limit.c's admission). The response side
 * queues framed messages, submits HEADERS, feeds DATA (h2s_call_data_read_cb) and
 * ends with trailers; the public h2s_call_* functions are here. Sending the
 * frames is h2s_conn.c's.
 */
#include "config.h"
#include "h2s_int.h"
#include "grpc.h"
#include "util.h"

#include <event2/bufferevent_ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static h2s_call_t *call_new(struct conn *conn, int32_t sid)
{
    h2s_t *s = conn->s;
    h2s_call_t *c = s->free_calls;
    if (c) {
        s->free_calls = c->next;
        s->nfree_calls--;
        struct buf hbuf = c->hbuf, body = c->body;       /* kept for reuse */
        struct rbufq q = {.v = c->q.v, .cap = c->q.cap}; /* emptied by h2s_call_closed */
        memset(c, 0, sizeof(*c));
        c->hbuf = hbuf, c->body = body, c->q = q;
        buf_reset(&c->hbuf);
        buf_reset(&c->body);
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

/* Drops everything the call holds and returns it to the free list. */
static void call_release(h2s_call_t *c)
{
    struct conn *conn = c->conn;
    h2s_t *s = c->s;
    h2s_call_uncount(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        conn->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    conn->ncalls--;
    conn->inbuf -= c->body.len;
    buf_reset(&c->body);
    s->st.calls_open--;
    rbufq_empty(&c->q);
    s->st.bytes_queued -= c->queued;
    c->queued = 0;
    free(c->message);
    c->message = NULL;
    buf_free(&c->trl);
    if (s->nfree_calls >= CALL_FREELIST_MAX || c->q.cap > KEEP_Q_MAX)
        s->st.queue_mem -= rbufq_free(&c->q);
    if (s->nfree_calls >= CALL_FREELIST_MAX) {
        buf_free(&c->hbuf);
        buf_free(&c->body);
        free(c);
        return;
    }
    if (c->hbuf.cap > KEEP_BUF_MAX)
        buf_free(&c->hbuf);
    if (c->body.cap > KEEP_BUF_MAX)
        buf_free(&c->body);
    c->next = s->free_calls;
    s->free_calls = c;
    s->nfree_calls++;
}

/* The stream is gone: tell the handler if it still holds the call, then free it. */
void h2s_call_closed(h2s_call_t *c)
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
    char *w = buf_reserve(&c->hbuf, need);
    memcpy(w, name, nlen);
    w[nlen] = '\0';
    memcpy(w + nlen + 1, value, vlen);
    w[nlen + 1 + vlen] = '\0';
    if (nlen == 5 && memcmp(name, ":path", 5) == 0)
        c->path_off = c->hbuf.len + nlen + 1;
    buf_commit(&c->hbuf, need);
}

void h2s_call_push(h2s_call_t *c, rbuf_t *b)
{
    if (!c->queued)
        c->moved = mono_ns();
    c->s->st.queue_mem += rbufq_push(&c->q, b);
    c->queued += b->len;
    c->s->st.bytes_queued += b->len;
}

void h2s_call_add_trailer(h2s_call_t *c, const char *name, const char *value)
{
    size_t n = 0, nl = strlen(name) + 1, used = c->trl.len; /* used: never over the cap */
    for (size_t off = 0; off < c->trl.len; off += strlen(c->trl.p + off) + 1)
        n++;
    if (n / 2 >= H2S_MAX_TRAILERS || used + nl + 1 >= H2S_MAX_TRAILER_BYTES)
        return;
    buf_add(&c->trl, name, nl);
    size_t room = H2S_MAX_TRAILER_BYTES - used - nl - 1;
    for (const char *p = value; *p && room; p++, room--)
        buf_add(&c->trl, *p >= 0x20 && *p < 0x7f ? p : "?", 1);
    buf_add(&c->trl, "", 1);
}

/* The added trailers into nv (room for H2S_MAX_TRAILERS); returns how many. */
static size_t trailers_nv(h2s_call_t *c, nghttp2_nv *nv)
{
    size_t n = 0;
    for (size_t off = 0; off < c->trl.len && n < H2S_MAX_TRAILERS;) {
        const char *name = c->trl.p + off;
        const char *value = name + strlen(name) + 1;
        off = (size_t)(value - c->trl.p) + strlen(value) + 1;
        nv[n] = nv_make(name, value);
        nv[n++].flags = NGHTTP2_NV_FLAG_NONE; /* copied: the call may go first */
    }
    return n;
}

/*
 * Response bodies go out without nghttp2 copying them: the read callback
 * only says how many queued bytes the next DATA frame carries
 * (NGHTTP2_DATA_FLAG_NO_COPY) and h2s_send_data_cb appends the frame header and
 * those bytes to the output: big chunks by reference to the rbuf (no copy
 * at all), small ones copied once.
 */
ssize_t h2s_call_data_read_cb(nghttp2_session *ngh, int32_t sid, uint8_t *buf, size_t length,
                              uint32_t *flags, nghttp2_data_source *src, void *user)
{
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
        nghttp2_nv nv[2 + H2S_MAX_TRAILERS] = {NV_STATIC("grpc-status", ""),
                                               NV_STATIC("grpc-message", "")};
        size_t nnv = 1;
        nv[0].value = (uint8_t *)c->status_buf;
        nv[0].valuelen = strlen(c->status_buf);
        if (c->message) {
            nv[1].value = (uint8_t *)c->message;
            nv[1].valuelen = strlen(c->message);
            nnv = 2;
        }
        nnv += trailers_nv(c, nv + nnv);
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(ngh, sid, nv, nnv) != 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return (ssize_t)n;
}

/* Submits the response HEADERS with a data provider over the queue. */
static int call_submit_headers(h2s_call_t *c)
{
    static const nghttp2_nv nv[] = {NV_STATIC(":status", "200"),
                                    NV_STATIC("content-type", "application/grpc")};
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = h2s_call_data_read_cb};
    c->submitted = 1;
    int rv = nghttp2_submit_response(c->conn->ngh, c->sid, nv, ARRAY_SIZE(nv), &dp);
    if (rv != 0) {
        log_debug("h2s: submit_response on stream %d: %s", c->sid, nghttp2_strerror(rv));
        return -1;
    }
    return 0;
}

void h2s_call_kick(h2s_call_t *c)
{
    if (!c->submitted) {
        call_submit_headers(c);
    } else if (c->deferred) {
        c->deferred = 0;
        nghttp2_session_resume_data(c->conn->ngh, c->sid);
    }
    h2s_mark_dirty_for(c);
}

/*
 * Ends the response with a status. Before any message this is a
 * trailers-only response (one HEADERS with END_STREAM); otherwise the
 * trailers follow the queued data (see h2s_call_data_read_cb).
 */
void h2s_call_end(h2s_call_t *c, int code, const char *message)
{
    if (c->ended || c->closed || c->conn->dying)
        return;
    c->ended = 1;
    c->status = code;
    snprintf(c->status_buf, sizeof(c->status_buf), "%d", code);
    if (message && *message)
        c->message = grpc_message_encode(message);
    if (!c->submitted && c->q.n == 0) {
        nghttp2_nv nv[4 + H2S_MAX_TRAILERS] = {
            NV_STATIC(":status", "200"), NV_STATIC("content-type", "application/grpc"),
            NV_STATIC("grpc-status", ""), NV_STATIC("grpc-message", "")};
        nv[2].value = (uint8_t *)c->status_buf;
        nv[2].valuelen = strlen(c->status_buf);
        size_t nnv = 3;
        if (c->message) {
            nv[3].value = (uint8_t *)c->message;
            nv[3].valuelen = strlen(c->message);
            nnv = 4;
        }
        nnv += trailers_nv(c, nv + nnv);
        c->submitted = 1;
        int rv = nghttp2_submit_response(c->conn->ngh, c->sid, nv, nnv, NULL);
        if (rv != 0)
            log_debug("h2s: submit_response on stream %d: %s", c->sid, nghttp2_strerror(rv));
        h2s_mark_dirty_for(c);
        return;
    }
    h2s_call_kick(c);
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
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = h2s_call_data_read_cb};
    if (blen && c->method != M_HEAD)
        h2s_call_push(c, rbuf_new(body, blen));
    int rv = nghttp2_submit_response(c->conn->ngh, c->sid, nv, ARRAY_SIZE(nv), c->q.n ? &dp : NULL);
    if (rv != 0)
        log_debug("h2s: submit_response on stream %d: %s", c->sid, nghttp2_strerror(rv));
    h2s_mark_dirty_for(c);
}

/* The request HEADERS are complete. */
static void call_headers_done(h2s_call_t *c)
{
    h2s_t *s = c->s;
    const char *path = c->path_off != SIZE_MAX ? c->hbuf.p + c->path_off : "/";
    c->hdrs_done = 1;
    if (c->hdr_over) {
        if (c->grpc && c->method == M_POST) {
            c->done = 1;
            h2s_call_end(c, GRPC_RESOURCE_EXHAUSTED, "header list too large");
        } else {
            char *b = xstrdup("431 request header fields too large\n");
            call_http_respond(c, 431, "text/plain", b, strlen(b));
            free(b);
        }
        c->discard = 1;
        return;
    }
    if (c->method != M_POST || !c->grpc) {
        /* for the request handler once the body is in (call_req_end); answers first */
        c->plain = 1;
        nghttp2_extpri pri = {2, 0};
        nghttp2_session_change_extpri_stream_priority(c->conn->ngh, c->sid, &pri, 1);
        return;
    }
    if (!s->accepting) {
        c->done = 1;
        c->discard = 1;
        h2s_call_end(c, GRPC_UNAVAILABLE, "server shutting down");
        return;
    }
    c->route = h2s_route_find(s, path);
    if (!c->route) {
        char *m = xasprintf("unknown method %s", path);
        c->done = 1;
        c->discard = 1;
        h2s_call_end(c, GRPC_UNIMPLEMENTED, m);
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
        h2s_call_invoke(c, NULL, 0);
}

/* Ends the call for bad input before the handler holds it (or while it does). */
static void call_fail_input(h2s_call_t *c, int code, const char *msg)
{
    c->discard = 1;
    if (!c->invoked)
        c->done = 1;
    h2s_call_end(c, code, msg);
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

/* The request body's bytes from off on. */
static inline const uint8_t *body_at(const h2s_call_t *c, size_t off)
{
    return (const uint8_t *)c->body.p + off;
}

static void body_append(h2s_call_t *c, const uint8_t *d, size_t n)
{
    c->conn->inbuf += n;
    buf_add(&c->body, d, n);
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

/* A plain request's body: whole, up to max_msg. */
static void call_plain_data(h2s_call_t *c, const uint8_t *d, size_t n)
{
    if (c->discard || c->ended)
        return;
    if (c->body.len + n > c->s->cfg.max_msg || c->conn->inbuf + n > conn_inbuf_max(c->s)) {
        char *b = xasprintf("413 request body larger than %u bytes\n", c->s->cfg.max_msg);
        call_http_respond(c, 413, "text/plain", b, strlen(b));
        free(b);
        c->discard = 1;
        return;
    }
    body_append(c, d, n);
}

static void call_data(h2s_call_t *c, const uint8_t *d, size_t n)
{
    uint32_t mlen;
    if (c->plain) {
        call_plain_data(c, d, n);
        return;
    }
    if (c->discard || c->ended || !c->route)
        return;
    if (c->conn->inbuf + n > conn_inbuf_max(c->s)) {
        call_fail_input(c, GRPC_RESOURCE_EXHAUSTED,
                        "grpc: too much request data buffered on this connection");
        return;
    }
    if (c->route->kind != H2S_BIDI) {
        /* one message: collect the header, check it, then at most the message */
        while (n && c->body.len < GRPC_FRAME_HDR) {
            body_append(c, d, 1);
            d++, n--;
        }
        if (c->body.len < GRPC_FRAME_HDR)
            return;
        if (check_frame(c, body_at(c, 0), c->body.len, &mlen) < 0)
            return;
        if (c->body.len + n > (size_t)GRPC_FRAME_HDR + mlen) {
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
        int r = check_frame(c, body_at(c, off), c->body.len - off, &mlen);
        if (r < 0)
            return;
        if (r == 0 || c->body.len - off - GRPC_FRAME_HDR < mlen)
            break;
        if (c->on_msg && !c->done)
            c->on_msg(c, body_at(c, off + GRPC_FRAME_HDR), mlen, c->on_msg_arg);
        off += GRPC_FRAME_HDR + mlen;
    }
    if (off && !c->closed) {
        buf_consume(&c->body, off);
        c->conn->inbuf -= off;
    }
}

/* The client sent END_STREAM. */
static void call_req_end(h2s_call_t *c)
{
    uint32_t mlen = 0;
    c->req_ended = 1;
    if (c->plain && !c->discard && !c->ended) {
        h2s_req_from_call(c);
        return;
    }
    if (c->discard || c->ended || !c->route)
        return;
    if (c->route->kind == H2S_BIDI) {
        if (c->body.len) {
            call_fail_input(c, GRPC_INTERNAL, "grpc: truncated message at end of stream");
            return;
        }
        if (c->on_msg && !c->done)
            c->on_msg(c, NULL, 0, c->on_msg_arg);
        return;
    }
    if (c->body.len == 0) {
        call_fail_input(c, GRPC_INTERNAL, "grpc: request has no message");
        return;
    }
    char m[128];
    if (c->body.len < GRPC_FRAME_HDR) {
        snprintf(m, sizeof(m), "grpc: truncated request frame header (%zu of 5 bytes)",
                 c->body.len);
        call_fail_input(c, GRPC_INTERNAL, m);
        return;
    }
    grpc_frame_peek(body_at(c, 0), c->body.len, &mlen); /* checked in call_data */
    if (c->body.len != (size_t)GRPC_FRAME_HDR + mlen) {
        snprintf(m, sizeof(m), "grpc: truncated request message (%zu of %u bytes)",
                 c->body.len - GRPC_FRAME_HDR, mlen);
        call_fail_input(c, GRPC_INTERNAL, m);
        return;
    }
    h2s_call_invoke(c, body_at(c, GRPC_FRAME_HDR), mlen);
}

int h2s_on_begin_headers(nghttp2_session *ngh, const nghttp2_frame *f, void *user)
{
    struct conn *conn = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2s_call_t *c = call_new(conn, f->hd.stream_id);
    nghttp2_session_set_stream_user_data(ngh, f->hd.stream_id, c);
    return 0;
}

int h2s_on_header(nghttp2_session *ngh, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                  const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
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

int h2s_on_frame_recv(nghttp2_session *ngh, const nghttp2_frame *f, void *user)
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
    if (ctrl && h2s_ctrl_spend(conn) < 0)
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

int h2s_on_data_chunk(nghttp2_session *ngh, uint8_t flags, int32_t sid, const uint8_t *d, size_t n,
                      void *user)
{
    h2s_call_t *c = nghttp2_session_get_stream_user_data(ngh, sid);
    if (c)
        call_data(c, d, n);
    return 0;
}

int h2s_on_frame_send(nghttp2_session *ngh, const nghttp2_frame *f, void *user)
{
    struct conn *conn = user;
    /*
     * nghttp2's own limiter (stream resets, CVE-2023-44487) can end the
     * session before h2s_ctrl_spend does: count that flood too.
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

int h2s_on_stream_close(nghttp2_session *ngh, int32_t sid, uint32_t err, void *user)
{
    h2s_call_t *c = nghttp2_session_get_stream_user_data(ngh, sid);
    if (!c)
        return 0;
    nghttp2_session_set_stream_user_data(ngh, sid, NULL);
    h2s_call_closed(c);
    return 0;
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
        h2s_call_uncount(c);
        return;
    }
    h2s_call_push(c, grpc_frame_msg(m));
    h2s_call_finish(c, GRPC_OK, NULL);
}

void h2s_call_finish(h2s_call_t *c, int code, const char *message)
{
    if (c->done)
        return;
    c->done = 1;
    h2s_call_uncount(c);
    h2s_call_end(c, code, message);
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
    h2s_call_push(c, rbuf_ref(framed));
    h2s_call_kick(c);
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
    h2s_call_push(c, b);
    h2s_call_kick(c);
    return 0;
}

size_t h2s_call_queued(const h2s_call_t *c)
{
    return c->queued;
}

int64_t h2s_call_born(const h2s_call_t *c)
{
    return c->born;
}

int64_t h2s_call_stuck_ns(const h2s_call_t *c, int64_t now)
{
    return c->queued ? now - c->moved : 0;
}

void h2s_call_abort(h2s_call_t *c, int code, const char *message)
{
    if (c->done)
        return;
    h2s_call_drop_unsent(c);
    h2s_call_finish(c, code, message);
}

void h2s_call_drop_unsent(h2s_call_t *c)
{
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

const char *h2s_header_find(const struct buf *hb, const char *name)
{
    size_t off = 0;
    while (off < hb->len) {
        const char *n = hb->p + off;
        size_t nl = strlen(n);
        const char *v = n + nl + 1;
        /* the first byte first: most names differ there (the pseudo-headers' ':') */
        if (*n == *name && strcmp(n, name) == 0)
            return v;
        off += nl + strlen(v) + 2;
    }
    return NULL;
}

const char *h2s_call_header(const h2s_call_t *c, const char *name)
{
    return h2s_header_find(&c->hbuf, name);
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
