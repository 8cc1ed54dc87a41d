/*
 * h2s_http1: the HTTP/1.1 responder of h2s (see h2s.c for the whole
 * module). A connection whose first bytes are "GET " or "HEAD " is served
 * here: complete request heads are parsed into an h2s_req for the request
 * handler (the one HTTP/2 requests reach, h2s_req.c), one at a time: the
 * next request is read once the answer is complete; pipelined requests
 * from a client that does not read wait.
 *
 * The Kubernetes REST API needs more of HTTP/1.1 than this (other methods,
 * request bodies, streamed watch responses) and WebSocket upgrades (exec,
 * attach, port-forward): its request parsing and responses grow here, and
 * WebSocket framing goes beside it in a file of its own (a conn mode of its
 * own after the upgrade, entered from h2s_h1_read).
 */
#include "config.h"
#include "h2s_int.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define H1_MAX_HEAD 8192 /* HTTP/1.1 request head cap */

static void h1_respond(struct conn *c, int status, const char *ctype, const char *body, size_t blen,
                       int head, int close)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                        status, h2s_req_reason(status), ctype, blen,
                        close ? "Connection: close\r\n" : "");
    if (!head && blen)
        evbuffer_add(out, body, blen);
    c->s->st.bytes_out += blen;
}

/* A request header for the handler, its name in lower case. */
static void h1_header_add(h2s_req_t *r, const char *name, const char *value)
{
    size_t nl = strlen(name);
    char *w = buf_reserve(&r->hbuf, nl + 1);
    for (size_t i = 0; i <= nl; i++)
        w[i] = (char)tolower((unsigned char)name[i]);
    buf_commit(&r->hbuf, nl + 1);
    buf_add(&r->hbuf, value, strlen(value) + 1);
}

static void h1_error(struct conn *c, int status, const char *msg)
{
    h1_respond(c, status, "text/plain", msg, strlen(msg), 0, 1);
    h2s_conn_close_later(c);
}

/* Serves the complete HTTP/1.1 requests in the input; may free c. */
void h2s_h1_read(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->h1_req) {
        /*
         * An answer (a watch) is in progress: the next request waits. Reading
         * goes on so that a client that hangs up is noticed, unless it sends
         * more than a request head meanwhile.
         */
        if (evbuffer_get_length(in) > H1_MAX_HEAD)
            bufferevent_disable(c->bev, EV_READ);
        return;
    }
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
        h2s_req_t *r = h2s_req_new(c->s, c, method, strlen(method), path, strlen(path));
        r->h1_close = (unsigned)close;
        /* headers: Connection and a request body matter here; all go to the handler */
        for (char *l = eol + 2; *l;) {
            char *e = strstr(l, "\r\n");
            if (!e || e == l)
                break;
            *e = '\0';
            char *colon = strchr(l, ':');
            if (!colon) {
                h2s_req_free(r);
                h1_error(c, 400, "bad header line\n");
                return;
            }
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (strcasecmp(l, "connection") == 0) {
                if (strcasestr(v, "close"))
                    r->h1_close = 1;
                else if (strcasestr(v, "keep-alive"))
                    r->h1_close = 0;
            } else if (strcasecmp(l, "transfer-encoding") == 0 ||
                       (strcasecmp(l, "content-length") == 0 && strcmp(v, "0") != 0)) {
                h2s_req_free(r);
                h1_error(c, 400, "request body not allowed\n");
                return;
            }
            h1_header_add(r, l, v);
            l = e + 2;
        }
        c->h1_req = r;
        h2s_req_dispatch(r);
        if (c->h1_req) {
            /* answered later: the next request once it is written (conn_writecb) */
            c->h1_since = 0;
            c->h1_paused = 1;
            return;
        }
    }
}

/* ---- the answers (h2s_req.c calls these for HTTP/1.1 requests) ---- */

static void h1_add_headers(struct evbuffer *out, const h2s_req_t *r)
{
    for (size_t off = 0; off < r->rh.len;) {
        const char *n = r->rh.p + off, *v = n + strlen(n) + 1;
        evbuffer_add_printf(out, "%s: %s\r\n", n, v);
        off = (size_t)(v - r->rh.p) + strlen(v) + 1;
    }
}

/* The answer is complete: the next request may be read (or the connection closes). */
static void h1_done(h2s_req_t *r)
{
    struct conn *c = r->conn;
    c->h1_req = NULL;
    c->h1_paused = 1; /* conn_writecb reads the next request once this is written */
    r->conn = NULL;   /* may be freed now */
    if (r->h1_close)
        h2s_conn_close_later(c);
}

void h2s_h1_respond(h2s_req_t *r, int status, const char *ctype, const void *body, size_t len)
{
    struct conn *c = r->conn;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n",
                        status, h2s_req_reason(status), ctype, len);
    h1_add_headers(out, r);
    evbuffer_add(out, r->h1_close ? "Connection: close\r\n\r\n" : "\r\n", r->h1_close ? 21 : 2);
    if (!r->head_only && len) {
        evbuffer_add(out, body, len);
        c->s->st.bytes_out += len;
    }
    h1_done(r);
}

void h2s_h1_start(h2s_req_t *r, int status, const char *ctype)
{
    struct evbuffer *out = bufferevent_get_output(r->conn->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n",
                        status, h2s_req_reason(status), ctype);
    h1_add_headers(out, r);
    evbuffer_add(out, "\r\n", 2);
}

static void h1_unref(const void *data, size_t len, void *arg)
{
    rbuf_unref(arg);
}

void h2s_h1_send(h2s_req_t *r, rbuf_t *chunk)
{
    struct evbuffer *out = bufferevent_get_output(r->conn->bev);
    evbuffer_add_printf(out, "%zx\r\n", chunk->len);
    evbuffer_add_reference(out, chunk->data, chunk->len, h1_unref, rbuf_ref(chunk));
    evbuffer_add(out, "\r\n", 2);
    r->conn->s->st.bytes_out += chunk->len;
}

void h2s_h1_end(h2s_req_t *r, int abort)
{
    struct conn *c = r->conn;
    if (abort) {
        c->h1_req = NULL;
        r->conn = NULL;
        evbuffer_drain(bufferevent_get_output(c->bev), (size_t)-1);
        h2s_conn_close_later(c);
        return;
    }
    evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5);
    h1_done(r);
}
