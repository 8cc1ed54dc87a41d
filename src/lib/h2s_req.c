/*
 * h2s_req: plain HTTP requests, the ones that are not gRPC calls (see
 * h2s.c for the whole module, h2s.h for the contract). A request is made
 * by its protocol's side (h2s_req_from_call here for an HTTP/2 stream,
 * h2s_h1_read for HTTP/1.1), admitted under the in-flight limits and
 * handed to the server's one handler. The answer goes back the way the
 * request came: on HTTP/2 as HEADERS and DATA frames from the stream's
 * queue (the same flow-controlled path as gRPC streams, without
 * trailers), on HTTP/1.1 through h2s_http1.c.
 *
 * Life: the request is freed when the handler finishes it (respond, end,
 * abort) or when the client goes first (after on_close). An HTTP/2
 * stream outlives its request while queued bytes drain.
 */
#include "config.h"
#include "h2s_int.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_AFTER_STATUS                                                                         \
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","           \
    "\"message\":\"Too many requests, please try again later.\",\"reason\":\"TooManyRequests\","   \
    "\"details\":{\"retryAfterSeconds\":1},\"code\":429}\n"

h2s_req_t *h2s_req_new(h2s_t *s, struct conn *conn, const char *method, size_t mlen,
                       const char *target, size_t tlen)
{
    h2s_req_t *r = xcalloc(1, sizeof(*r));
    r->s = s;
    r->conn = conn;
    /* "method\0path\0query\0" */
    r->buf = xmalloc(mlen + tlen + 3);
    memcpy(r->buf, method, mlen);
    r->buf[mlen] = '\0';
    char *p = r->buf + mlen + 1;
    memcpy(p, target, tlen);
    p[tlen] = '\0';
    r->method = r->buf;
    r->path = p;
    char *q = memchr(p, '?', tlen);
    if (q) {
        *q = '\0';
        r->query = q + 1;
    } else {
        p[tlen + 1] = '\0';
        r->query = p + tlen + 1;
    }
    r->head_only = strcmp(r->method, "HEAD") == 0;
    r->born = mono_ns();
    return r;
}

void h2s_req_free(h2s_req_t *r)
{
    h2s_req_uncount(r);
    h2s_req_unclaim(r);
    if (r->call) {
        h2s_call_on_close(r->call, NULL, NULL);
        r->call->done = 1;
    }
    if (r->conn && r->conn->h1_req == r)
        r->conn->h1_req = NULL;
    free(r->buf);
    buf_free(&r->hbuf);
    buf_free(&r->body);
    buf_free(&r->rh);
    free(r);
}

void h2s_req_gone(h2s_req_t *r)
{
    r->call = NULL;
    if (r->on_close)
        r->on_close(r, r->on_close_arg);
    h2s_req_free(r);
}

static void req_call_closed(h2s_call_t *c, void *arg)
{
    h2s_req_gone(arg);
}

void h2s_req_dispatch(h2s_req_t *r)
{
    if (h2s_req_count(r) < 0) {
        r->s->st.inflight_rejected++;
        h2s_req_add_header(r, "retry-after", "1");
        h2s_req_respond(r, 429, "application/json", RETRY_AFTER_STATUS, strlen(RETRY_AFTER_STATUS));
        return;
    }
    if (!r->s->req_fn) {
        static const char nf[] = "404 page not found\n";
        h2s_req_respond(r, 404, "text/plain", nf, strlen(nf));
        return;
    }
    r->s->req_fn(r, r->s->req_arg);
}

void h2s_req_from_call(h2s_call_t *c)
{
    const char *m = h2s_call_header(c, ":method");
    const char *t = c->path_off != SIZE_MAX ? c->hbuf.p + c->path_off : "/";
    if (!m)
        m = "GET";
    h2s_req_t *r = h2s_req_new(c->s, c->conn, m, strlen(m), t, strlen(t));
    r->call = c;
    c->invoked = 1;
    c->discard = 1;
    h2s_call_on_close(c, req_call_closed, r);
    h2s_req_dispatch(r);
}

/* ---- the request ---- */

const char *h2s_req_method(const h2s_req_t *r)
{
    return r->method;
}

const char *h2s_req_path(const h2s_req_t *r)
{
    return r->path;
}

const char *h2s_req_query(const h2s_req_t *r)
{
    return r->query;
}

const char *h2s_req_header(const h2s_req_t *r, const char *name)
{
    return h2s_header_find(r->call ? &r->call->hbuf : &r->hbuf, name);
}

const char *h2s_req_header_nth(const h2s_req_t *r, const char *name, size_t nth)
{
    const struct buf *hb = r->call ? &r->call->hbuf : &r->hbuf;
    for (size_t off = 0; off < hb->len;) {
        const char *n = hb->p + off, *v = n + strlen(n) + 1;
        off = (size_t)(v - hb->p) + strlen(v) + 1;
        if (!strcmp(n, name) && nth-- == 0)
            return v;
    }
    return NULL;
}

const uint8_t *h2s_req_body(const h2s_req_t *r, size_t *len)
{
    if (r->call) {
        *len = r->call->body.len;
        return (const uint8_t *)r->call->body.p;
    }
    *len = r->body.len;
    return (const uint8_t *)r->body.p;
}

SSL *h2s_req_ssl(const h2s_req_t *r)
{
    return r->conn->tls ? bufferevent_openssl_get_ssl(r->conn->bev) : NULL;
}

int h2s_req_is_local(const h2s_req_t *r)
{
    return r->conn->is_local;
}

int64_t h2s_req_born(const h2s_req_t *r)
{
    return r->born;
}

const char *h2s_req_peer(const h2s_req_t *r)
{
    return r->conn->peer;
}

int h2s_req_http_version(const h2s_req_t *r)
{
    return r->call ? 2 : 1;
}

void h2s_req_set_data(h2s_req_t *r, void *data)
{
    r->data = data;
}

void *h2s_req_data(const h2s_req_t *r)
{
    return r->data;
}

void h2s_req_on_close(h2s_req_t *r, void (*fn)(h2s_req_t *r, void *arg), void *arg)
{
    r->on_close = fn;
    r->on_close_arg = arg;
}

/* ---- the answer ---- */

void h2s_req_add_header(h2s_req_t *r, const char *name, const char *value)
{
    buf_add(&r->rh, name, strlen(name) + 1);
    buf_add(&r->rh, value, strlen(value) + 1);
}

/*
 * Submits the response HEADERS of an HTTP/2 answer (nghttp2 copies the
 * header block): status, content-type, content-length if len is not
 * SIZE_MAX, the added headers; a data provider over the call's queue.
 */
static void h2_submit(h2s_req_t *r, int status, const char *ctype, size_t len)
{
    h2s_call_t *c = r->call;
    size_t n = 3;
    for (size_t off = 0; off < r->rh.len; n++) {
        off += strlen(r->rh.p + off) + 1;
        off += strlen(r->rh.p + off) + 1;
    }
    nghttp2_nv *nv = xcalloc(n, sizeof(*nv));
    /* by hand: snprintf took 700 instructions a number, twice in every answer */
    char st[U64STR_MAX], cl[U64STR_MAX];
    const char *kv[6] = {":status",        u64str(st, (unsigned)status),
                         "content-type",   ctype,
                         "content-length", u64str(cl, len)};
    size_t k = 0;
    for (int i = 0; i < 3; i++) {
        if (i == 2 && len == SIZE_MAX)
            break;
        nv[k++] = (nghttp2_nv){(uint8_t *)kv[2 * i], (uint8_t *)kv[2 * i + 1], strlen(kv[2 * i]),
                               strlen(kv[2 * i + 1]), NGHTTP2_NV_FLAG_NONE};
    }
    for (size_t off = 0; off < r->rh.len;) {
        char *name = r->rh.p + off, *v = name + strlen(name) + 1;
        off = (size_t)(v - r->rh.p) + strlen(v) + 1;
        nv[k++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)v, strlen(name), strlen(v),
                               NGHTTP2_NV_FLAG_NONE};
    }
    c->http = 1;
    c->submitted = 1;
    nghttp2_data_provider dp = {.source.ptr = c, .read_callback = h2s_call_data_read_cb};
    int rv = nghttp2_submit_response(c->conn->ngh, c->sid, nv, k, c->q.n || !c->ended ? &dp : NULL);
    if (rv != 0)
        log_debug("h2s: submit_response on stream %d: %s", c->sid, nghttp2_strerror(rv));
    free(nv);
    h2s_mark_dirty_for(c);
}

/* The handler no longer holds r and the client is still there. */
static int req_live(const h2s_req_t *r)
{
    if (r->call)
        return !r->call->closed && !r->call->ended && !r->conn->dying;
    return !r->conn->dying && !r->conn->closing;
}

void h2s_req_respond(h2s_req_t *r, int status, const char *content_type, const void *body,
                     size_t len)
{
    if (r->started) {
        h2s_req_end(r);
        return;
    }
    if (!content_type)
        content_type = "text/plain";
    if (r->call) {
        h2s_call_t *c = r->call;
        if (req_live(r)) {
            c->ended = 1;
            if (len && !r->head_only)
                h2s_call_push(c, rbuf_new(body, len));
            h2_submit(r, status, content_type, len);
        }
    } else if (req_live(r)) {
        h2s_h1_respond(r, status, content_type, body, len);
    }
    h2s_req_free(r);
}

int h2s_req_start(h2s_req_t *r, int status, const char *content_type)
{
    if (r->started || !req_live(r))
        return -1;
    r->started = 1;
    h2s_req_uncount(r); /* long-running from here on */
    if (!content_type)
        content_type = "text/plain";
    if (!r->call) {
        h2s_h1_start(r, status, content_type);
        return 0;
    }
    /* streams share the connection round-robin, after the answers (h2s_call.c), and go in
     * the bulk flush line: as urgent, each watch event was framed and sent on its own at once
     * (h2s_conn.c) */
    nghttp2_extpri pri = {3, 1};
    nghttp2_session_change_extpri_stream_priority(r->conn->ngh, r->call->sid, &pri, 1);
    r->call->bulk = 1;
    h2_submit(r, status, content_type, SIZE_MAX);
    return 0;
}

int h2s_req_send_rbuf(h2s_req_t *r, rbuf_t *chunk)
{
    if (!r->started || !req_live(r))
        return -1;
    if (!chunk->len)
        return 0;
    if (!r->call) {
        h2s_h1_send(r, chunk);
        return 0;
    }
    h2s_call_push(r->call, rbuf_ref(chunk));
    h2s_call_kick(r->call);
    return 0;
}

int h2s_req_send(h2s_req_t *r, const void *data, size_t len)
{
    rbuf_t *b = rbuf_new(data, len);
    int rc = h2s_req_send_rbuf(r, b);
    rbuf_unref(b);
    return rc;
}

size_t h2s_req_queued(const h2s_req_t *r)
{
    if (r->call)
        return r->call->queued;
    return evbuffer_get_length(bufferevent_get_output(r->conn->bev));
}

int64_t h2s_req_stuck_ns(const h2s_req_t *r, int64_t now)
{
    return r->call ? h2s_call_stuck_ns(r->call, now) : 0;
}

void h2s_req_end(h2s_req_t *r)
{
    if (!r->started) {
        h2s_req_respond(r, 200, NULL, NULL, 0);
        return;
    }
    if (req_live(r)) {
        if (r->call) {
            r->call->ended = 1;
            h2s_call_kick(r->call);
        } else {
            h2s_h1_end(r, 0);
        }
    }
    h2s_req_free(r);
}

void h2s_req_abort(h2s_req_t *r)
{
    if (req_live(r)) {
        if (r->call) {
            h2s_call_drop_unsent(r->call);
            r->call->ended = 1;
            nghttp2_submit_rst_stream(r->conn->ngh, NGHTTP2_FLAG_NONE, r->call->sid,
                                      NGHTTP2_CANCEL);
            h2s_mark_dirty_for(r->call);
        } else {
            h2s_h1_end(r, 1);
        }
    }
    h2s_req_free(r);
}
