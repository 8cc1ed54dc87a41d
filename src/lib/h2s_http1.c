/*
 * h2s_http1: the HTTP/1.1 server side of h2s (see h2s.c for the whole
 * module). A connection whose first bytes are an HTTP/1.1 request line (a
 * method conn_sniff knows, then a space) is served here.
 *
 * Parsing is libhttp-parser's (Debian's http-parser 2.9, the parser Node.js
 * used for a decade): one request at a time, the parser paused at the end
 * of each. A request is collected whole (method, target, headers, body),
 * made an h2s_req and handed to the request handler (h2s_req.c); the
 * requests pipelined behind it wait in the input buffer (the read
 * watermark bounds it, and reading goes on below it, so a client that
 * hangs up during a watch is seen) until it is answered, so answers go out
 * in order. The answer is whole (Content-Length) or streamed (chunked
 * transfer encoding; HTTP/1.0 clients get the bare bytes and a close).
 *
 * Limits: the head (request line and headers) H1_MAX_HEAD bytes, 431
 * beyond; the body max_msg bytes (Content-Length or chunked), 413 beyond;
 * the head must be complete within handshake_timeout_s of its first byte
 * and the body may not stall longer than that (slowloris: conn_too_slow
 * reads c->h1_since); what the parser rejects gets a 400. Each of these
 * answers closes the connection: the rest of its input cannot be trusted.
 * A client that does not read its answers gets no more requests read.
 *
 * Upgrades (WebSocket, SPDY/3.1: exec, attach) are requests like the
 * others; a handler that answers one with h2s_req_upgrade turns the
 * connection into a raw stream (h2s_raw.c), and parsing stops there. Any
 * other answer to an Upgrade request closes the connection after it.
 */
#include "config.h"
#include "h2s_int.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define H1_MAX_HEAD 8192      /* request line and headers, bytes */
#define H1_IN_MAX (64 * 1024) /* input read ahead of the request being answered */

enum h1_hstate { HS_NONE, HS_FIELD, HS_VALUE }; /* the last header callback */

/*
 * A connection's HTTP/1.1 state (c->h1): the parser, the request it is
 * reading, and how the one being answered (c->h1_req) is to be framed.
 */
struct h1 {
    http_parser p;
    struct conn *c;
    /* the request being read */
    struct buf target; /* as sent: path?query */
    struct buf hbuf;   /* "name\0value\0" pairs, names in lower case */
    struct buf body;
    const char *method; /* static (http_method_str) */
    size_t head_bytes;  /* of its head so far */
    enum h1_hstate hs;  /* header callbacks: where hbuf is */
    int trailers;       /* past the head: header callbacks are a chunked body's trailers */
    int err;            /* the status a failed callback asks for */
    const char *errmsg; /* ...and why, for a 400 */
    /* the request being answered */
    unsigned close : 1;   /* close the connection after the answer */
    unsigned http10 : 1;  /* an HTTP/1.0 client: no chunked encoding */
    unsigned head : 1;    /* HEAD: headers but no body */
    int reading;          /* inside h2s_h1_read: it goes on after an answer itself */
    int close_after;      /* an answer asked to close: h2s_h1_read does once it is out */
    struct event *resume; /* an answer came later: parse on (h2s_h1_read) */
};

/* ---- parsing (libhttp-parser callbacks; h->err says which answer a failure gets) */

/* n more bytes of the head at at: within the cap, and no NUL (libhttp-parser 2.9 lets one
 * through as a header value's first byte; the pairs in hbuf are NUL-separated) */
static int head_grow(struct h1 *h, const char *at, size_t n, size_t extra)
{
    if (memchr(at, '\0', n)) {
        h->err = 400;
        h->errmsg = "NUL in the request head";
        return -1;
    }
    h->head_bytes += n + extra;
    if (h->head_bytes > H1_MAX_HEAD) {
        h->err = 431;
        return -1;
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct h1 *h = p->data;
    buf_reset(&h->target);
    buf_reset(&h->hbuf);
    buf_free(&h->body); /* (handed to the last request, or a big one not to keep) */
    h->head_bytes = 0;
    h->hs = HS_NONE;
    h->trailers = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = p->data;
    if (head_grow(h, at, n, 0) < 0)
        return -1;
    buf_add(&h->target, at, n);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = p->data;
    if (head_grow(h, at, n, 4) < 0) /* ": " and CRLF */
        return -1;
    if (h->trailers)
        return 0; /* counted against the head's cap, and dropped */
    if (h->hs == HS_VALUE)
        buf_add(&h->hbuf, "", 1);
    h->hs = HS_FIELD;
    size_t at0 = h->hbuf.len;
    buf_add(&h->hbuf, at, n);
    for (size_t i = at0; i < h->hbuf.len; i++)
        if (h->hbuf.p[i] >= 'A' && h->hbuf.p[i] <= 'Z')
            h->hbuf.p[i] = (char)(h->hbuf.p[i] - 'A' + 'a');
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = p->data;
    if (head_grow(h, at, n, 0) < 0)
        return -1;
    if (h->trailers)
        return 0;
    if (h->hs == HS_FIELD)
        buf_add(&h->hbuf, "", 1);
    h->hs = HS_VALUE;
    buf_add(&h->hbuf, at, n);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct h1 *h = p->data;
    struct conn *c = h->c;
    if (h->hs == HS_FIELD)
        buf_add(&h->hbuf, "\0", 2);
    else if (h->hs == HS_VALUE)
        buf_add(&h->hbuf, "", 1);
    h->hs = HS_NONE;
    h->trailers = 1;
    if (p->http_major != 1 || p->http_minor > 1) {
        h->err = 400;
        h->errmsg = "bad HTTP version";
        return -1;
    }
    if (!h->target.len || h->target.p[0] != '/') {
        h->err = 400; /* origin-form targets only: this is no proxy */
        h->errmsg = "bad request target";
        return -1;
    }
    if (p->method == HTTP_CONNECT) {
        h->err = 405;
        return -1;
    }
    h->method = http_method_str((enum http_method)p->method);
    h->head = p->method == HTTP_HEAD;
    h->http10 = p->http_minor == 0;
    h->close = !http_should_keep_alive(p);
    if (p->upgrade) {
        /* the handler may switch (h2s_req_upgrade); any other answer closes: the next
         * bytes may be the other protocol's */
        h->close = 1;
        p->upgrade = 0; /* parsed as a plain request (see the top of the file) */
    }
    if (p->content_length != ULLONG_MAX && p->content_length > 0) {
        if (p->content_length > c->s->cfg.max_msg) {
            h->err = 413;
            return -1;
        }
        buf_reserve(&h->body, (size_t)p->content_length); /* one allocation */
    }
    int has_body = (p->flags & F_CHUNKED) || (p->content_length != ULLONG_MAX && p->content_length);
    const char *expect = h2s_header_find(&h->hbuf, "expect");
    if (has_body && expect && strcasecmp(expect, "100-continue") == 0 && !h->http10)
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->h1_since = has_body ? mono_ns() : 0; /* the body's own clock (see h1_since) */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct h1 *h = p->data;
    if (n > h->c->s->cfg.max_msg - h->body.len) {
        h->err = 413;
        return -1;
    }
    buf_add(&h->body, at, n);
    h->c->h1_since = mono_ns(); /* progress: a slow body is fine, a stalled one is not */
    return 0;
}

static int on_message_complete(http_parser *p)
{
    /* one request at a time: h2s_h1_read answers it before the parser goes on */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings h1_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- answers (h2s_req.c calls h2s_h1_* for HTTP/1.1 requests) */

static void h1_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    h2s_h1_read(arg);
}

static struct h1 *h1_of(struct conn *c)
{
    if (!c->h1) {
        struct h1 *h = xcalloc(1, sizeof(*h));
        http_parser_init(&h->p, HTTP_REQUEST);
        h->p.data = h;
        h->c = c;
        h->resume = event_new(c->s->base, -1, 0, h1_resume_cb, c);
        c->h1 = h;
        /* pipelined requests wait in the kernel, not here, beyond this */
        bufferevent_setwatermark(c->bev, EV_READ, 0, H1_IN_MAX);
    }
    return c->h1;
}

/*
 * The status line and headers: Content-Type if ctype, the length line if
 * not "", the handler's headers (r may be NULL), how the connection goes on.
 */
static void put_head(struct conn *c, const h2s_req_t *r, int status, const char *ctype,
                     const char *length)
{
    struct h1 *h = c->h1;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const char *reason = http_status_str((enum http_status)status);
    if (strcmp(reason, "<unknown>") == 0)
        reason = "Status";
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, reason);
    if (ctype)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (*length)
        evbuffer_add_printf(out, "%s\r\n", length);
    for (size_t off = 0; r && off < r->rh.len;) {
        const char *n = r->rh.p + off, *v = n + strlen(n) + 1;
        off = (size_t)(v - r->rh.p) + strlen(v) + 1;
        /* a CR or LF would let a value write headers (or a body) of its own */
        if (!strpbrk(n, "\r\n:") && !strpbrk(v, "\r\n"))
            evbuffer_add_printf(out, "%s: %s\r\n", n, v);
    }
    if (status == 101)
        ; /* the handler said how the connection goes on */
    else if (h->close)
        evbuffer_add(out, "Connection: close\r\n", 19);
    else if (h->http10)
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    evbuffer_add(out, "\r\n", 2);
}

/* The answer is complete: the connection goes on to the next request (or closes). */
static void h1_done(struct conn *c)
{
    struct h1 *h = c->h1;
    c->h1_req = NULL; /* (h2s_req.c frees the request) */
    if (h->close)
        h->close_after = 1;
    if (!h->reading)
        event_active(h->resume, EV_WRITE, 0);
}

void h2s_h1_respond(h2s_req_t *r, int status, const char *ctype, const void *body, size_t len)
{
    struct conn *c = r->conn;
    char length[48] = "";
    if (status == 204 || status == 304)
        len = 0; /* no body, and no length either (RFC 9110 8.6) */
    else
        snprintf(length, sizeof(length), "Content-Length: %zu", len);
    put_head(c, r, status, ctype, length);
    if (!c->h1->head && len) {
        evbuffer_add(bufferevent_get_output(c->bev), body, len);
        c->s->st.bytes_out += len;
    }
    h1_done(c);
}

void h2s_h1_start(h2s_req_t *r, int status, const char *ctype)
{
    struct conn *c = r->conn;
    if (c->h1->http10)
        c->h1->close = 1; /* no chunked encoding: the close ends the body */
    put_head(c, r, status, ctype, c->h1->http10 ? "" : "Transfer-Encoding: chunked");
}

static void h1_unref(const void *data, size_t len, void *arg)
{
    rbuf_unref(arg);
}

void h2s_h1_send(h2s_req_t *r, rbuf_t *chunk)
{
    struct conn *c = r->conn;
    if (c->h1->head || !chunk->len)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (!c->h1->http10)
        evbuffer_add_printf(out, "%zx\r\n", chunk->len);
    evbuffer_add_reference(out, chunk->data, chunk->len, h1_unref, rbuf_ref(chunk));
    if (!c->h1->http10)
        evbuffer_add(out, "\r\n", 2);
    c->s->st.bytes_out += chunk->len;
}

void h2s_h1_end(h2s_req_t *r, int abort)
{
    struct conn *c = r->conn;
    struct h1 *h = c->h1;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (abort) {
        /*
         * What is unsent goes, whole chunks or not: the close tells the
         * client it is cut. (A socket bufferevent keeps its output's start
         * frozen, as h2s_conn_send says; over TLS the bytes go out first.)
         */
        if (!c->tls) {
            evbuffer_unfreeze(out, 1);
            evbuffer_drain(out, evbuffer_get_length(out));
            evbuffer_freeze(out, 1);
        }
        h->close = 1;
    } else if (!h->head && !h->http10) {
        evbuffer_add(out, "0\r\n\r\n", 5);
    }
    h1_done(c);
}

void h2s_h1_switch(h2s_req_t *r, const char *protocol)
{
    struct conn *c = r->conn;
    char *up = xasprintf("Connection: Upgrade\r\nUpgrade: %s", protocol);
    put_head(c, r, 101, NULL, up);
    free(up);
    c->h1_req = NULL;
}

/* ---- the connection */

/* An answer of h1 itself (garbage, limits): said, then the connection closes. May free c. */
static void h1_fail(struct conn *c, int status, const char *msg)
{
    char length[48];
    size_t n = strlen(msg);
    snprintf(length, sizeof(length), "Content-Length: %zu", n);
    c->h1->close = 1;
    c->h1->http10 = 0;
    put_head(c, NULL, status, "text/plain", length);
    evbuffer_add(bufferevent_get_output(c->bev), msg, n);
    c->s->st.bytes_out += n;
    h2s_conn_close_later(c);
}

/* The parser refused the input: the answer it calls for, and the connection closes. */
static void h1_parse_error(struct conn *c, enum http_errno e)
{
    struct h1 *h = c->h1;
    int status = h->err ? h->err : e == HPE_HEADER_OVERFLOW ? 431 : 400;
    char *msg;
    if (status == 431)
        msg = xstrdup("request header too large\n");
    else if (status == 413)
        msg = xstrdup("request body too large\n");
    else if (status == 405)
        msg = xstrdup("method not allowed\n");
    else
        msg = xasprintf("bad request: %s\n", h->errmsg ? h->errmsg : http_errno_description(e));
    log_debug("h2s: %s: HTTP/1.1: %d %.*s; closing", c->peer, status, (int)strlen(msg) - 1, msg);
    h1_fail(c, status, msg);
    free(msg);
}

/* A whole request: an h2s_req for the handler (h2s_req_dispatch: limits, then the handler). */
static void h1_dispatch(struct conn *c)
{
    struct h1 *h = c->h1;
    h2s_req_t *r = h2s_req_new(c->s, c, h->method, strlen(h->method), h->target.p, h->target.len);
    r->hbuf = h->hbuf; /* handed over: the parser starts the next request's afresh */
    r->body = h->body;
    memset(&h->hbuf, 0, sizeof(h->hbuf));
    memset(&h->body, 0, sizeof(h->body));
    r->h1_close = h->close;
    c->s->st.calls_total++;
    c->h1_req = r;
    h2s_req_dispatch(r);
}

/* Serves the complete HTTP/1.1 requests in the input, one at a time; may free c. */
void h2s_h1_read(struct conn *c)
{
    struct h1 *h = h1_of(c);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    h->reading = 1;
    while (!c->closing && c->mode == CM_H1) {
        if (c->h1_req) {
            c->h1_since = 0; /* the handler's time is not the client's */
            break;
        }
        if (h->close_after) {
            h2s_conn_close_later(c);
            return;
        }
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) > OUT_HIGH) {
            /* pipelined requests from a client that does not read: wait */
            c->h1_paused = 1;
            bufferevent_disable(c->bev, EV_READ);
            break;
        }
        if (!evbuffer_get_length(in))
            break;
        if (!c->h1_since)
            c->h1_since = mono_ns();
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t n = http_parser_execute(&h->p, &h1_settings, v.iov_base, v.iov_len);
        evbuffer_drain(in, n);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
        if (e == HPE_PAUSED) {
            http_parser_pause(&h->p, 0);
            c->h1_since = 0;
            h1_dispatch(c);
        } else if (e != HPE_OK || n < v.iov_len) {
            h1_parse_error(c, e);
            return;
        }
    }
    h->reading = 0;
}

void h2s_h1_free(struct conn *c)
{
    struct h1 *h = c->h1;
    if (!h)
        return;
    buf_free(&h->target);
    buf_free(&h->hbuf);
    buf_free(&h->body);
    event_free(h->resume);
    free(h);
    c->h1 = NULL;
}
