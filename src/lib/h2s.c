/*
 * h2s: the gRPC server over HTTP/2 (nghttp2 1.52 + libevent 2.1). See h2s.h.
 * This file: routing (the gRPC method table and the request handler)
 * and the server's life: h2s_new, listening, stopping, h2s_free.
 *
 * Shape (after nghttp2's examples/libevent-server.c): an evconnlistener
 * accepts; each connection is one struct conn owning its bufferevent and,
 * once the first bytes show an HTTP/2 preface, its nghttp2 session. The
 * read callback feeds nghttp2_session_mem_recv from the input evbuffer;
 * output is pulled with nghttp2_session_mem_send into the bufferevent's
 * output buffer once per read batch (or once per loop iteration through a
 * deferred "flush" event when a handler answers later), so there is no
 * syscall per frame. h2s_conn_free() tears everything down.
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
 * an HTTP/1.1 request line ("GET ", "POST " and the other methods of a
 * REST API) -> the HTTP/1.1 server side (h2s_http1.c, requests for the
 * handler); anything else closes the connection.
 *
 * Bounds: a client that does not read its answers gets nothing more read
 * (input stops while the output is backed up); request bodies are capped
 * per message and per connection; one periodic sweep closes idle
 * connections and PINGs connections whose calls have been quiet, closing
 * them when the PING goes unanswered (a peer that vanished).
 *
 * The module's files, one concern each, share h2s_int.h (its structs):
 *   h2s.c        routing and the server's life (this file);
 *   h2s_conn.c   connections: accept, protocol sniffing, TLS, the HTTP/2
 *                read path, output staging, flush scheduling, the sweep;
 *   h2s_call.c   a stream's call: the nghttp2 callbacks, request headers
 *                and body, the response queue and trailers, h2s_call_*;
 *   h2s_req.c    plain HTTP requests (h2s_req_*) over either protocol:
 *                the HTTP/2 side here, the HTTP/1.1 wire in h2s_http1.c;
 *   h2s_http1.c  HTTP/1.1 (libhttp-parser): requests, bodies, pipelining,
 *                whole and chunked answers;
 *   h2s_limit.c  in-flight limits and their wait queue, claims, the
 *                control-frame budget;
 *   h2s_raw.c    connections upgraded by a 101 (WebSocket, SPDY/3.1):
 *                a raw byte stream for the handler.
 * Plain HTTP requests, over HTTP/1.1 or as HTTP/2 streams that are not
 * gRPC, all become an h2s_req handed to the one request handler.
 */
#include "config.h"
#include "h2s_int.h"
#include "addr.h"
#include "grpc.h"
#include "util.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

const struct h2s_route *h2s_route_find(const h2s_t *s, const char *path)
{
    return smap_get(s->routes, path);
}

h2s_t *h2s_new(struct event_base *base, const struct h2s_config *cfg)
{
    sigpipe_ignore(); /* a peer that closed must not kill us */
    h2s_t *s = xcalloc(1, sizeof(*s));
    s->base = base;
    s->routes = smap_new();
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
    nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, h2s_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(s->cbs, h2s_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, h2s_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, h2s_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(s->cbs, h2s_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, h2s_on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(s->cbs, h2s_send_data_cb);
    /*
     * nghttp2 1.52 as Debian ships it has the rapid-reset and CONTINUATION
     * flood fixes: set their limits explicitly; h2s_ctrl_spend() adds a budget
     * for the other control frames. Outbound ACKs (a PING/SETTINGS flood from
     * a client that does not read) are capped by nghttp2's default (1000).
     * nghttp2's stream-reset limit is the backstop, twice ours: h2s_ctrl_spend()
     * (which counts every RST_STREAM too) ends a rapid reset first, with
     * ENHANCE_YOUR_CALM, a log line and the flood counter. (At a third of our
     * rate, as it was, nghttp2 ended slow floods first with INTERNAL_ERROR,
     * uncounted.)
     */
    nghttp2_option_new(&s->opt);
    nghttp2_option_set_stream_reset_rate_limit(s->opt, 2 * CTRL_BURST, CTRL_RATE);
    nghttp2_option_set_max_continuations(s->opt, 8);
    nghttp2_option_set_max_settings(s->opt, 32);

    s->flush_ev = event_new(base, -1, 0, h2s_flush_cb, s);
    s->flush_later_ev = evtimer_new(base, h2s_flush_cb, s);
    s->sweep_ev = event_new(base, -1, EV_PERSIST, h2s_sweep_cb, s);
    s->dispatch_ev = event_new(base, -1, 0, h2s_dispatch_cb, s);
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
    return h2s_sockaddr_is_loopback((struct sockaddr *)&ss);
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

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    int e = EVUTIL_SOCKET_ERROR();
    log_warn("h2s: accept: %s", evutil_socket_error_to_string(e));
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
        evconnlistener_new_bind(s->base, h2s_accept_cb, hl, flags, 1024, sa, sslen);
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
            h2s_mark_dirty(c);
        } else if (c->mode != CM_H2 && !c->closing) {
            h2s_conn_free(c);
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
                h2s_call_end(call, GRPC_UNAVAILABLE, "server shutting down");
    }
    struct conn *next;
    for (struct conn *c = s->conns; c; c = next) {
        next = c->next;
        if (c->mode == CM_H2 && !c->closing) {
            c->dirty = 0;
            c->urgent = 0;
            h2s_conn_send(c);
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
        h2s_conn_free(c);
    }
    linger_close(linger, nlinger, deadline);
    free(linger);
    for (size_t i = 0; i < s->nls; i++) {
        free(s->ls[i]->unix_path);
        SSL_CTX_free(s->ls[i]->tls);
        free(s->ls[i]);
    }
    free(s->ls);
    smap_free(s->routes, free);
    while (s->free_calls) {
        h2s_call_t *c = s->free_calls;
        s->free_calls = c->next;
        buf_free(&c->hbuf);
        buf_free(&c->body);
        free(c->q.v);
        free(c);
    }
    event_free(s->flush_ev);
    event_free(s->flush_later_ev);
    event_free(s->sweep_ev);
    event_free(s->dispatch_ev);
    nghttp2_session_callbacks_del(s->cbs);
    nghttp2_option_del(s->opt);
    buf_free(&s->sbuf);
    free(s);
}

void h2s_route(h2s_t *s, const char *path, enum h2s_method_kind kind, h2s_handler_fn fn, void *arg)
{
    size_t n = strlen(path);
    struct h2s_route *r = xcalloc(1, sizeof(*r) + n + 1);
    memcpy(r->path, path, n + 1);
    r->kind = kind;
    r->fn = fn;
    r->arg = arg;
    free(smap_put(s->routes, path, r)); /* the last registration of a path wins */
}

void h2s_set_req_handler(h2s_t *s, h2s_req_fn fn, void *arg)
{
    s->req_fn = fn;
    s->req_arg = arg;
}

void h2s_set_req_long_running(h2s_t *s, int (*fn)(const h2s_req_t *r))
{
    s->req_long_running = fn;
}

void h2s_get_stats(const h2s_t *s, struct h2s_stats *out)
{
    *out = s->st;
    out->inflight_read = s->inflight[1];
    out->inflight_mutating = s->inflight[2];
}

uint64_t h2s_out_buffered(const h2s_t *s)
{
    uint64_t n = 0;
    for (const struct conn *c = s->conns; c; c = c->next)
        n += evbuffer_get_length(bufferevent_get_output(c->bev));
    return n;
}
