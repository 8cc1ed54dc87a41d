/*
 * h2s_limit: what bounds the work a client can make h2s do (see h2s.c for
 * the whole module). Admission of a call to its handler: unary calls
 * within the in-flight limits (reads and mutating calls apart), the others
 * within the streaming cap per connection; unary calls over their limit
 * wait in a FIFO queue, within bounds of length and time. Claims count the
 * long-running calls of one owner across connections. Each connection's
 * control frames spend from a token bucket. (Size limits on requests are
 * checked where the request is read, in h2s_call.c; the slowloris and idle
 * timeouts in the sweep, in h2s_conn.c.)
 */
#include "config.h"
#include "h2s_int.h"
#include "grpc.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WQ_FACTOR 10                /* queued calls per in-flight slot */
#define WQ_WAIT (10 * 1000000000LL) /* longest wait in the queue, ns */

static void wq_unlink(h2s_call_t *c)
{
    h2s_t *s = c->s;
    int q = c->inq;
    if (c->wprev)
        c->wprev->wnext = c->wnext;
    else
        s->wq_head[q] = c->wnext;
    if (c->wnext)
        c->wnext->wprev = c->wprev;
    else
        s->wq_tail[q] = c->wprev;
    c->wprev = c->wnext = NULL;
    s->wq_len[q]--;
    c->inq = 0;
}

/* One more call or request of key's, or NULL when it holds max already (0: no cap). */
static struct claim *claim_take(h2s_t *s, const void *key, unsigned max)
{
    struct claim **pp = &s->claims[((uintptr_t)key >> 4) % CLAIM_BUCKETS];
    struct claim *cl = *pp;
    while (cl && cl->key != key)
        cl = cl->next;
    if (cl && max && cl->n >= max)
        return NULL;
    if (!cl) {
        cl = xcalloc(1, sizeof(*cl));
        cl->key = key;
        cl->next = *pp;
        *pp = cl;
    }
    cl->n++;
    return cl;
}

static void claim_drop(h2s_t *s, struct claim *cl)
{
    if (--cl->n)
        return;
    struct claim **pp = &s->claims[((uintptr_t)cl->key >> 4) % CLAIM_BUCKETS];
    while (*pp != cl)
        pp = &(*pp)->next;
    *pp = cl->next;
    free(cl);
}

/* The handler is done with the call: it no longer counts against the limits. */
void h2s_call_uncount(h2s_call_t *c)
{
    if (c->inq)
        wq_unlink(c);
    if (c->counted) {
        c->s->inflight[c->counted]--;
        if (c->s->wq_len[c->counted])
            event_active(c->s->dispatch_ev, EV_WRITE, 0);
        c->counted = 0;
    }
    if (c->streaming) {
        c->conn->nstreaming--;
        c->streaming = 0;
    }
    if (c->claim) {
        claim_drop(c->s, c->claim);
        c->claim = NULL;
    }
}

static void call_reject_busy(h2s_call_t *c)
{
    c->s->st.inflight_rejected++;
    c->done = 1;
    c->discard = 1;
    h2s_call_end(c, GRPC_RESOURCE_EXHAUSTED, "too many requests, please try again later");
}

void h2s_call_invoke(h2s_call_t *c, const uint8_t *msg, size_t len)
{
    h2s_t *s = c->s;
    if (c->route->kind == H2S_UNARY) {
        int cls = s->is_mutating && s->is_mutating(c->route->path) ? 2 : 1;
        if (s->max_inflight[cls] && (s->inflight[cls] >= s->max_inflight[cls] || s->wq_len[cls])) {
            if (s->wq_len[cls] >= WQ_FACTOR * s->max_inflight[cls]) {
                call_reject_busy(c);
                return;
            }
            /* wait for a slot; msg is c->body + 5 and stays until the call goes */
            c->inq = (unsigned)cls;
            c->wsince = mono_ns();
            c->wlen = (uint32_t)len;
            c->wprev = s->wq_tail[cls];
            c->wnext = NULL;
            if (s->wq_tail[cls])
                s->wq_tail[cls]->wnext = c;
            else
                s->wq_head[cls] = c;
            s->wq_tail[cls] = c;
            s->wq_len[cls]++;
            return;
        }
        s->inflight[cls]++;
        c->counted = (unsigned)cls;
    } else {
        if (c->conn->nstreaming >= s->cfg.max_streaming) {
            char m[96];
            snprintf(m, sizeof(m), "too many watches and streams on this connection (max %u)",
                     s->cfg.max_streaming);
            s->st.inflight_rejected++;
            c->done = 1;
            c->discard = 1;
            h2s_call_end(c, GRPC_RESOURCE_EXHAUSTED, m);
            return;
        }
        c->conn->nstreaming++;
        c->streaming = 1;
    }
    c->invoked = 1;
    c->route->fn(c, msg, len, c->route->arg);
}

/* Hands queued calls the in-flight slots freed since; expires those that waited too long. */
void h2s_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    h2s_t *s = arg;
    int64_t now = mono_ns();
    for (int cls = 1; cls <= 2; cls++) {
        while (s->wq_head[cls]) {
            h2s_call_t *c = s->wq_head[cls];
            if (now - c->wsince > WQ_WAIT) {
                wq_unlink(c);
                call_reject_busy(c);
                continue;
            }
            if (s->inflight[cls] >= s->max_inflight[cls])
                break;
            wq_unlink(c);
            s->inflight[cls]++;
            c->counted = (unsigned)cls;
            c->invoked = 1;
            c->route->fn(c, (const uint8_t *)c->body.p + GRPC_FRAME_HDR, c->wlen, c->route->arg);
        }
    }
}

/* One control frame from the client; 0, or -1 when it floods (the session is being ended). */
int h2s_ctrl_spend(struct conn *conn)
{
    int64_t now = mono_ns();
    int64_t add = (now - conn->ctrl_at) * CTRL_RATE / 1000000000;
    if (add > 0) {
        conn->ctrl_tokens =
            conn->ctrl_tokens + add > CTRL_BURST ? CTRL_BURST : conn->ctrl_tokens + add;
        conn->ctrl_at = now;
    }
    if (conn->ctrl_tokens > 0) {
        conn->ctrl_tokens--;
        return 0;
    }
    if (conn->ctrl_tokens == 0) {
        conn->ctrl_tokens = -1; /* once */
        conn->s->st.flood_closed++;
        log_warn("h2s: %s: control frame flood (PING/SETTINGS/PRIORITY/RST_STREAM/empty DATA); "
                 "closing",
                 conn->peer);
        nghttp2_session_terminate_session(conn->ngh, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return -1;
}

int h2s_call_claim(h2s_call_t *c, const void *key, unsigned max)
{
    if (c->claim || !key)
        return 0;
    c->claim = claim_take(c->s, key, max);
    return c->claim ? 0 : -1;
}

int h2s_req_claim(h2s_req_t *r, const void *key, unsigned max)
{
    if (r->claim || !key)
        return 0;
    r->claim = claim_take(r->s, key, max);
    return r->claim ? 0 : -1;
}

void h2s_req_unclaim(h2s_req_t *r)
{
    if (r->claim) {
        claim_drop(r->s, r->claim);
        r->claim = NULL;
    }
}

/*
 * Plain requests count like unary calls (GET and HEAD as reads), but do
 * not wait in the queue: Kubernetes answers 429 at once and clients retry.
 * Long-running ones (watches) are outside the limits, as in Kubernetes:
 * they would hold a slot for their whole life.
 */
int h2s_req_count(h2s_req_t *r)
{
    h2s_t *s = r->s;
    if (s->req_long_running && s->req_long_running(r))
        return 0;
    int cls = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD") ? 1 : 2;
    if (s->max_inflight[cls] && s->inflight[cls] >= s->max_inflight[cls])
        return -1;
    s->inflight[cls]++;
    r->counted = (unsigned)cls;
    return 0;
}

void h2s_req_uncount(h2s_req_t *r)
{
    if (!r->counted)
        return;
    r->s->inflight[r->counted]--;
    if (r->s->wq_len[r->counted])
        event_active(r->s->dispatch_ev, EV_WRITE, 0);
    r->counted = 0;
}
