/*
 * h2s_raw: connections upgraded by a 101 answer (see h2s.h, "upgraded
 * connections", and h2s.c for the whole module). After h2s_req_upgrade
 * the connection is in CM_RAW: h2s_conn.c hands its read, write and
 * close events here, and the bytes are the handler's (WebSocket and
 * SPDY/3.1 framing live with the handler, not in h2s).
 *
 * Closing: the handler's h2s_raw_close lingers. Once the output is out,
 * our side is shut (cleartext; TLS closes with the connection) and the
 * peer's input is read and dropped until it closes too or RAW_LINGER_S
 * pass: closing a socket with unread input would reset the connection,
 * and a reset can destroy what the peer has not read yet (the exit status
 * of an exec, the last bytes of its output). A peer that does not take
 * what is left to send within RAW_DRAIN_S is cut.
 */
#include "config.h"
#include "h2s_int.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RAW_LINGER_S 5 /* after our last byte, for the peer's end */
#define RAW_DRAIN_S 30 /* for the peer to take what is left to send */

struct h2s_raw {
    struct conn *c;
    h2s_req_t *req; /* the upgraded request: its claim and strings live as long */
    const struct h2s_raw_ops *ops;
    void *arg;
    struct event *kick;     /* input read with the request: on_read on the next turn */
    int timeout_s;          /* h2s_raw_set_timeout's */
    unsigned closed : 1;    /* the handler called h2s_raw_close */
    unsigned lingering : 1; /* output out, waiting for the peer's end */
};

static void raw_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    h2s_raw_readable(arg);
}

h2s_raw_t *h2s_req_upgrade(h2s_req_t *r, const char *protocol, const struct h2s_raw_ops *ops,
                           void *arg)
{
    struct conn *c = r->conn;
    if (r->call || c->mode != CM_H1 || c->h1_req != r || c->closing || c->dying)
        return NULL;
    h2s_h1_switch(r, protocol);
    h2s_req_uncount(r); /* long-running from here on, as a streamed answer */
    h2s_raw_t *w = xcalloc(1, sizeof(*w));
    w->c = c;
    w->req = r;
    w->ops = ops;
    w->arg = arg;
    w->kick = event_new(c->s->base, -1, 0, raw_kick_cb, c);
    c->mode = CM_RAW;
    c->raw = w;
    c->h1_req = NULL;
    c->h1_since = 0;
    /* frames may be bigger than an HTTP/1.1 read-ahead: read on, the handler bounds them */
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
    c->h1_paused = 0;
    if (evbuffer_get_length(bufferevent_get_input(c->bev)))
        event_active(w->kick, EV_WRITE, 0);
    return w;
}

/* Output out, our side shut: read until the peer ends, at most RAW_LINGER_S. */
static void raw_linger(struct conn *c)
{
    h2s_raw_t *w = c->raw;
    if (w->lingering)
        return;
    w->lingering = 1;
    if (!c->tls)
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    struct timeval tv = {RAW_LINGER_S, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ);
}

void h2s_raw_readable(struct conn *c)
{
    h2s_raw_t *w = c->raw;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (w->closed) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (evbuffer_get_length(in))
        w->ops->on_read(w, w->arg);
}

void h2s_raw_writable(struct conn *c)
{
    h2s_raw_t *w = c->raw;
    if (w->closed) {
        if (!evbuffer_get_length(bufferevent_get_output(c->bev)))
            raw_linger(c);
        return;
    }
    if (w->ops->on_drain)
        w->ops->on_drain(w, w->arg);
}

void h2s_raw_gone(struct conn *c, const char *why)
{
    h2s_raw_t *w = c->raw;
    c->raw = NULL;
    if (!w->closed && w->ops->on_close)
        w->ops->on_close(w, why, w->arg);
    event_free(w->kick);
    w->req->conn = NULL;
    h2s_req_free(w->req);
    free(w);
}

size_t h2s_raw_read(h2s_raw_t *w, void *buf, size_t max)
{
    int n = evbuffer_remove(bufferevent_get_input(w->c->bev), buf, max);
    return n > 0 ? (size_t)n : 0;
}

size_t h2s_raw_pending(const h2s_raw_t *w)
{
    return evbuffer_get_length(bufferevent_get_input(w->c->bev));
}

int h2s_raw_write(h2s_raw_t *w, const void *data, size_t len)
{
    if (w->closed || w->c->dying)
        return -1;
    evbuffer_add(bufferevent_get_output(w->c->bev), data, len);
    w->c->s->st.bytes_out += len;
    return 0;
}

size_t h2s_raw_queued(const h2s_raw_t *w)
{
    return evbuffer_get_length(bufferevent_get_output(w->c->bev));
}

void h2s_raw_set_timeout(h2s_raw_t *w, int seconds)
{
    w->timeout_s = seconds;
    struct timeval tv = {seconds, 0};
    bufferevent_set_timeouts(w->c->bev, seconds > 0 ? &tv : NULL, NULL);
}

const char *h2s_raw_peer(const h2s_raw_t *w)
{
    return w->c->peer;
}

void h2s_raw_close(h2s_raw_t *w)
{
    struct conn *c = w->c;
    if (w->closed)
        return;
    w->closed = 1;
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    if (!evbuffer_get_length(bufferevent_get_output(c->bev))) {
        raw_linger(c);
    } else {
        /* the rest first: h2s_raw_writable lingers once the output is empty; a peer that
         * reads nothing for RAW_DRAIN_S (or the stream's shorter timeout) is cut */
        int s = w->timeout_s > 0 && w->timeout_s < RAW_DRAIN_S ? w->timeout_s : RAW_DRAIN_S;
        struct timeval rd = {s, 0}, wr = {s, 0};
        bufferevent_set_timeouts(c->bev, &rd, &wr);
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_enable(c->bev, EV_WRITE);
    }
}
