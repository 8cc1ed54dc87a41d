/*
 * h2s_http1: the HTTP/1.1 responder of h2s (see h2s.c for the whole
 * module). A connection whose first bytes are "GET " or "HEAD " is served
 * here: complete request heads are parsed, dispatched through
 * h2s_http_dispatch (the same handler HTTP/2 GETs reach) and answered;
 * pipelined requests from a client that does not read wait.
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
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define H1_MAX_HEAD 8192 /* HTTP/1.1 request head cap */

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
    h2s_conn_close_later(c);
}

/* Serves the complete HTTP/1.1 requests in the input; may free c. */
void h2s_h1_read(struct conn *c)
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
        h2s_http_dispatch(c->s, path, &status, &ctype, &body, &blen);
        h1_respond(c, status, ctype, body, blen, head_only, close);
        free(body);
        if (close) {
            h2s_conn_close_later(c);
            return;
        }
    }
}
