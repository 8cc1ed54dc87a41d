/*
 * h2s_conn: h2s's connections (see h2s.c for the whole module). Accepting
 * (TLS or cleartext), deciding the protocol from the first bytes, feeding
 * HTTP/2 input to nghttp2, and the output side: DATA frames staged from the
 * calls' queues (h2s_send_data_cb), h2s_conn_send pulling frames and writing
 * them, and the flush line (urgent answers first, bulk traffic in time
 * slices) that decides which connection sends when. The periodic sweep
 * (idle, keepalive, slowloris) and h2s_conn_free live here too. What a
 * stream does with its frames is h2s_call.c's; HTTP/1.1 is h2s_http1.c's.
 */
#include "config.h"
#include "h2s_int.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void conn_wready(evutil_socket_t fd, short what, void *arg);

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN 24

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

void h2s_mark_dirty(struct conn *c)
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
void h2s_mark_dirty_for(h2s_call_t *call)
{
    if (call->bulk || (call->route && call->route->kind != H2S_UNARY))
        h2s_mark_dirty(call->conn);
    else
        mark_urgent(call->conn);
}

static void rbuf_cleanup(const void *data, size_t len, void *arg)
{
    rbuf_unref(arg);
}

#define REF_MIN 2048     /* chunks at least this big are referenced, not copied */
#define STAGE_GIVE 16384 /* staged passes this big are handed over, not copied */

static void stage_flush(h2s_t *s, struct evbuffer *out);

/*
 * A full staging area is handed over (stage_flush) and a new one begun,
 * not grown: growing it reallocated and copied everything staged so far
 * (32 -> 64 -> 128 -> 256 KiB in a pass up to OUT_HIGH), which was 40% of
 * the apiserver's instructions for 1,000 JSON watchers at full speed.
 */
static void stage_put(h2s_t *s, const void *p, size_t n)
{
    if (s->sbuf.len + n + 1 > s->sbuf.cap && s->sbuf.len >= STAGE_GIVE)
        stage_flush(s, bufferevent_get_output(s->sowner->bev));
    if (!s->sbuf.cap)
        buf_reserve(&s->sbuf, 2 * STAGE_GIVE - 1); /* with the NUL: 2 * STAGE_GIVE at once */
    buf_add(&s->sbuf, p, n);
}

static void stage_free(const void *data, size_t len, void *arg)
{
    free(arg);
}

/* Small passes are copied; big ones hand the buffer itself to the evbuffer (no second copy). */
static void stage_flush(h2s_t *s, struct evbuffer *out)
{
    size_t len = s->sbuf.len;
    if (len >= STAGE_GIVE) {
        size_t cap = s->sbuf.cap;
        char *p = buf_take(&s->sbuf);
        if (cap > len + len / 4)
            p = xrealloc(p, len); /* shrinks in place: no waste held */
        evbuffer_add_reference(out, p, len, stage_free, p);
    } else if (len) {
        evbuffer_add(out, s->sbuf.p, len);
        buf_reset(&s->sbuf);
    }
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

/* While h2s_conn_send stages: the frame bytes go to the staging area. */
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

int h2s_send_data_cb(nghttp2_session *ngh, nghttp2_frame *f, const uint8_t *framehd, size_t length,
                     nghttp2_data_source *src, void *user)
{
    struct conn *conn = user;
    h2s_call_t *c = src->ptr;
    h2s_t *s = conn->s;
    /*
     * One nghttp2_session_mem_send call goes on from a NO_COPY DATA frame
     * to the next, so h2s_conn_send's own checks between calls do not bound
     * it: a connection with 100 streams behind would have all of their
     * queues framed in one call. Here each frame checks the output bound
     * and (every few frames) the bulk pass's deadline; past either, nghttp2
     * keeps the frame for the next pass.
     */
    if (evbuffer_get_length(bufferevent_get_output(conn->bev)) + s->sbuf.len >= OUT_HIGH) {
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
        /* h2s_conn_send writes itself: see there */
        bufferevent_disable(c->bev, EV_WRITE);
        c->wev = event_new(s->base, bufferevent_getfd(c->bev), EV_WRITE, conn_wready, c);
    }
}

/* Close after what is queued has been written. Returns 1 if c is freed (nothing was left). */
int h2s_conn_close_later(struct conn *c)
{
    c->closing = 1;
    if (c->wev)
        event_del(c->wev);
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        h2s_conn_free(c);
        return 1;
    }
    /* the rest through the bufferevent: conn_writecb frees c once it is out */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->bev, EV_WRITE);
    return 0;
}

/* Pulls frames from nghttp2 into the output buffer and writes them. Returns 1 if it freed c. */
int h2s_conn_send(struct conn *c)
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
    while (evbuffer_get_length(out) + s->sbuf.len < OUT_HIGH && !c->held) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ngh, &data);
        if (n < 0) {
            log_debug("h2s: %s: mem_send: %s", c->peer, nghttp2_strerror((int)n));
            if (stage) {
                stage_flush(s, out);
                s->sowner = NULL;
            }
            return h2s_conn_close_later(c);
        }
        if (n == 0)
            break;
        if (stage)
            stage_put(s, data, (size_t)n);
        else
            evbuffer_add(out, data, (size_t)n);
        s->st.bytes_out += (uint64_t)n;
    }
    /*
     * A pass cut by the output bound (here or before it began) left frames
     * in nghttp2 as a held one does: if the write below empties the output,
     * nothing else (no write event, no client frame: a client with a big
     * window sends none) would bring this connection back.
     */
    if (!c->held && evbuffer_get_length(out) + (stage ? s->sbuf.len : 0) >= OUT_HIGH)
        c->held = HELD_FULL;
    if (stage) {
        stage_flush(s, out);
        s->sowner = NULL;
    }
    /*
     * Write now, not in the bufferevent's write callback: those all run in
     * one pass of the loop after the poll, and a change fanned out to a
     * thousand connections would make a thousand writev calls there before a
     * waiting request is read. Here they fall in h2s_flush_cb's time slices. A
     * plain connection's bufferevent never writes (its EV_WRITE is off, see
     * conn_start_h2): what a full socket leaves waits for c->wev, which only
     * puts the connection back in h2s_flush_cb's line. (Armed for good, libevent's
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
                h2s_conn_free(c);
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
        return h2s_conn_close_later(c);
    if (c->held && !c->closing && evbuffer_get_length(out) < OUT_HIGH) {
        /* frames were held back and the socket took what was made: more now, or
         * (a bulk pass past its deadline) when its turn comes again; h2s_flush_cb is
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

/* A plain connection's full socket has room again: its turn in h2s_flush_cb. */
static void conn_wready(evutil_socket_t fd, short what, void *arg)
{
    h2s_mark_dirty(arg);
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
    static const char *h1[] = {"GET ", "HEAD ", "POST ", "PUT ", "PATCH ", "DELETE ", "OPTIONS "};
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
    log_debug("h2s: %s: not HTTP/2 nor an HTTP/1.1 request; closing", c->peer);
    h2s_conn_free(c);
    return -1;
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
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
        h2s_h1_read(c);
        return;
    }
    if (c->mode == CM_RAW) {
        c->s->st.bytes_in += evbuffer_get_length(in);
        h2s_raw_readable(c);
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
                    h2s_conn_free(c);
                    return;
                }
                nghttp2_session_terminate_session(c->ngh, NGHTTP2_PROTOCOL_ERROR);
                if (!h2s_conn_send(c) && !c->closing)
                    h2s_conn_close_later(c);
                return;
            }
            used += (size_t)r;
        }
        c->s->st.bytes_in += used;
        evbuffer_drain(in, used);
    }
    c->in_recv = 0;
    h2s_conn_send(c);
}

static void conn_writecb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && c->closing) {
        h2s_conn_free(c);
        return;
    }
    if (c->closing)
        return;
    if (c->mode == CM_RAW) {
        h2s_raw_writable(c);
        return;
    }
    if (c->mode == CM_H1) {
        if (c->h1_paused) {
            c->h1_paused = 0;
            bufferevent_enable(c->bev, EV_READ);
            h2s_h1_read(c);
        }
        return;
    }
    if (c->rpaused) {
        c->rpaused = 0;
        bufferevent_enable(c->bev, EV_READ);
    }
    h2s_conn_send(c);
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
        if (c->raw)
            h2s_raw_gone(c, what & BEV_EVENT_TIMEOUT ? "no input within the stream's timeout"
                            : what & BEV_EVENT_EOF   ? "the client closed the connection"
                                                     : "connection error");
        h2s_conn_free(c);
    }
}

void h2s_conn_free(struct conn *c)
{
    h2s_t *s = c->s;
    if (c->h1_req)
        h2s_req_gone(c->h1_req);
    if (c->raw)
        h2s_raw_gone(c, "server closing the connection");
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
        h2s_call_closed(call);
    }
    h2s_h1_free(c);
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

void h2s_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    h2s_t *s = arg;
    int64_t t0 = mono_ns();
    /* at least one bulk connection per pass: a flood of unary calls cannot starve watches */
    for (int nbulk = 0;; nbulk++) {
        while (s->urgent) {
            struct conn *c = s->urgent;
            s->urgent = c->urgent_next;
            c->urgent = 0;
            h2s_conn_send(c);
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
        h2s_conn_send(c);
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
        log_info("h2s: %s: HTTP/1.1 request not complete within %llds; closing", c->peer,
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

void h2s_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
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
            h2s_conn_free(c);
            continue;
        }
        if (c->ncalls && c->mode == CM_H2 && !c->closing && s->ka_interval) {
            /* a peer that went away silently must not hold its calls forever */
            if (c->ping_sent && now - c->ping_sent > s->ka_timeout) {
                log_info("h2s: %s: no answer to a keepalive PING; closing", c->peer);
                h2s_conn_free(c);
            } else if (!c->ping_sent && now - c->last_active > s->ka_interval) {
                c->ping_sent = now;
                nghttp2_submit_ping(c->ngh, NGHTTP2_FLAG_NONE, NULL);
                h2s_mark_dirty(c);
            }
            continue;
        }
        if (c->ncalls || c->h1_req || c->raw || now - c->last_active < idle)
            continue;
        if (c->mode == CM_H2 && !c->closing) {
            log_debug("h2s: %s: idle; closing", c->peer);
            nghttp2_session_terminate_session(c->ngh, NGHTTP2_NO_ERROR);
            if (!h2s_conn_send(c) && !c->closing)
                h2s_conn_close_later(c);
        } else {
            h2s_conn_free(c);
        }
    }
}

void h2s_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                   void *arg)
{
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
    c->is_local = h2s_sockaddr_is_loopback(sa);
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
int h2s_sockaddr_is_loopback(const struct sockaddr *sa)
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
