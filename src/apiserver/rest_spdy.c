/*
 * rest_spdy: exec and attach over SPDY/3.1, Kubernetes' v4.channel.k8s.io
 * remote command protocol, for kubectl before 1.29 (and after, when a
 * WebSocket upgrade fails). Frames are src/lib/spdy.c's.
 *
 * After the 101 the client opens one stream per channel, each a
 * SYN_STREAM with a "streamtype" header (error, stdin, stdout, stderr,
 * resize); each gets a SYN_REPLY at once, and once all the query asked
 * for are open the session starts (within the setup timeout, or the
 * connection closes). stdin comes as DATA on its stream (FIN: the end of
 * stdin), window sizes as JSON objects on the resize stream; stdout and
 * stderr go back as DATA on theirs. The end: the Status on the error
 * stream, FIN on every stream, GOAWAY, and a lingering close.
 *
 * Bounds: frames over SPDY_MAX_FRAME, header blocks over SPDY_MAX_HEADERS
 * inflated, malformed frames (GOAWAY PROTOCOL_ERROR, the session ends);
 * more than SPDY_MAX_STREAMS streams; a stream type twice or unknown
 * (RST_STREAM, as Kubernetes refuses it).
 */
#include "config.h"
#include "rest_int.h"
#include "spdy.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SPDY_MAX_FRAME (1u << 20)
#define SPDY_MAX_HEADERS (16u << 10)
#define SPDY_MAX_STREAMS 16
#define SPDY_MAX_RESIZE 4096 /* a resize message not ended by this is garbage */
#define SPDY_OUT_CHUNK (32u << 10)

struct rspdy {
    rest_t *rs;
    struct rxs *x;
    h2s_raw_t *w;
    spdy_t *z;
    struct buf in;       /* input not yet parsed (less than a frame) */
    struct buf out;      /* frames being made */
    uint32_t sid[RCH_N]; /* each channel's stream, 0 while not open */
    bool want[RCH_N];    /* the channels the query asked for */
    uint32_t last_sid;   /* the client's last stream */
    int nstreams;
    bool ready;
    struct buf resize; /* resize JSON not yet complete */
};

static const char *const stream_types[RCH_N] = {"stdin", "stdout", "stderr", "error", "resize"};

static void sp_flush(struct rspdy *s)
{
    if (s->out.len)
        h2s_raw_write(s->w, s->out.p, s->out.len);
    buf_reset(&s->out);
}

static void sp_free(struct rspdy *s)
{
    spdy_free(s->z);
    buf_free(&s->in);
    buf_free(&s->out);
    buf_free(&s->resize);
    free(s);
}

/* The connection ends (garbage, the client's GOAWAY): GOAWAY status, the session goes. */
static void sp_end(struct rspdy *s, uint32_t status, const char *why)
{
    spdy_put_goaway(&s->out, s->last_sid, status);
    sp_flush(s);
    rxs_gone(s->x, why);
    h2s_raw_close(s->w);
    sp_free(s);
}

/* A SYN_STREAM: the channel of its streamtype, answered. */
static void sp_syn(struct rspdy *s, const struct spdy_frame *f)
{
    const char *type = NULL;
    for (size_t off = 0; off < f->hdrs.len;) {
        const char *n = f->hdrs.p + off, *v = n + strlen(n) + 1;
        off = (size_t)(v - f->hdrs.p) + strlen(v) + 1;
        if (!strcasecmp(n, "streamtype"))
            type = v;
    }
    int ch = -1;
    for (int i = 0; type && i < RCH_N; i++)
        if (!strcmp(type, stream_types[i]))
            ch = i;
    if (ch < 0 || s->sid[ch] || !s->want[ch]) {
        log_debug("rest: SPDY stream %u: type %s refused", f->stream_id, type ? type : "(none)");
        spdy_put_rst_stream(&s->out, f->stream_id, SPDY_RST_REFUSED_STREAM);
        return;
    }
    s->sid[ch] = f->stream_id;
    spdy_put_syn_reply(s->z, &s->out, f->stream_id, 0, NULL, 0);
    if (ch == RCH_STDIN && (f->flags & SPDY_FLAG_FIN))
        rxs_stdin_close(s->x);
}

/* Resize messages: JSON objects one after the other on the stream. */
static void sp_resize(struct rspdy *s, const uint8_t *d, size_t n)
{
    buf_add(&s->resize, d, n);
    char *end;
    while ((end = memchr(s->resize.p, '}', s->resize.len))) {
        size_t len = (size_t)(end - s->resize.p) + 1;
        rxs_resize(s->x, (const uint8_t *)s->resize.p, len);
        buf_consume(&s->resize, len);
    }
    if (s->resize.len > SPDY_MAX_RESIZE)
        buf_reset(&s->resize);
}

static void sp_data(struct rspdy *s, const struct spdy_frame *f)
{
    if (f->stream_id == s->sid[RCH_STDIN]) {
        rxs_stdin(s->x, f->data, f->len);
        if (f->flags & SPDY_FLAG_FIN)
            rxs_stdin_close(s->x);
    } else if (f->stream_id == s->sid[RCH_RESIZE]) {
        sp_resize(s, f->data, f->len);
    }
}

/* Every stream asked for is open: the session starts. */
static void sp_maybe_ready(struct rspdy *s)
{
    for (int i = 0; i < RCH_N; i++)
        if (s->want[i] && !s->sid[i])
            return;
    s->ready = true;
    h2s_raw_set_timeout(s->w, s->rs->streams.idle_timeout_s);
    sp_flush(s);
    rxs_ready(s->x);
}

/* One frame: 0, or -1 if the connection ended (s freed). */
static int sp_frame(struct rspdy *s, const struct spdy_frame *f)
{
    switch (f->type) {
    case SPDY_SYN_STREAM:
        if (!(f->stream_id & 1) || f->stream_id <= s->last_sid) {
            sp_end(s, SPDY_GOAWAY_PROTOCOL_ERROR, "SPDY: a client stream id out of order");
            return -1;
        }
        s->last_sid = f->stream_id;
        if (++s->nstreams > SPDY_MAX_STREAMS) {
            sp_end(s, SPDY_GOAWAY_PROTOCOL_ERROR, "SPDY: too many streams");
            return -1;
        }
        sp_syn(s, f);
        if (!s->ready)
            sp_maybe_ready(s);
        return 0;
    case SPDY_DATA:
        sp_data(s, f);
        return 0;
    case SPDY_RST_STREAM:
        if (s->sid[RCH_STDIN] && f->stream_id == s->sid[RCH_STDIN])
            rxs_stdin_close(s->x);
        return 0;
    case SPDY_PING:
        if (f->value & 1) /* the client's (odd ids): answered with the same id */
            spdy_put_ping(&s->out, f->value);
        return 0;
    case SPDY_GOAWAY:
        sp_end(s, SPDY_GOAWAY_OK, "SPDY: the client went away");
        return -1;
    default:
        return 0; /* SYN_REPLY, HEADERS, SETTINGS, WINDOW_UPDATE: nothing to do */
    }
}

static void sp_read(h2s_raw_t *w, void *arg)
{
    struct rspdy *s = arg;
    size_t n = h2s_raw_pending(w);
    h2s_raw_read(w, buf_reserve(&s->in, n), n);
    buf_commit(&s->in, n);
    size_t off = 0;
    for (;;) {
        struct spdy_frame f;
        const char *err = NULL;
        ssize_t used = spdy_parse(s->z, (const uint8_t *)s->in.p + off, s->in.len - off, &f, &err);
        if (used < 0) {
            char *why = xasprintf("SPDY: %s", err);
            sp_end(s, SPDY_GOAWAY_PROTOCOL_ERROR, why);
            free(why);
            return;
        }
        if (used == 0)
            break;
        off += (size_t)used;
        int rc = sp_frame(s, &f);
        spdy_frame_clear(&f);
        if (rc < 0)
            return;
    }
    buf_consume(&s->in, off);
    sp_flush(s);
}

static void sp_closed(h2s_raw_t *w, const char *why, void *arg)
{
    struct rspdy *s = arg;
    rxs_gone(s->x, why);
    sp_free(s);
}

static const struct h2s_raw_ops sp_raw_ops = {.on_read = sp_read, .on_close = sp_closed};

static void sp_out(void *t, int ch, const uint8_t *data, size_t len)
{
    struct rspdy *s = t;
    if (!s->sid[ch])
        return; /* a channel the client did not ask for */
    for (size_t off = 0; off < len; off += SPDY_OUT_CHUNK) {
        size_t n = len - off < SPDY_OUT_CHUNK ? len - off : SPDY_OUT_CHUNK;
        spdy_put_data(&s->out, s->sid[ch], 0, data + off, n);
    }
    sp_flush(s);
}

/* The end: the Status, FIN on every stream, GOAWAY, the lingering close; s is freed. */
static void sp_finish(void *t, const char *status)
{
    struct rspdy *s = t;
    if (s->sid[RCH_ERROR])
        spdy_put_data(&s->out, s->sid[RCH_ERROR], SPDY_FLAG_FIN, status, strlen(status));
    for (int ch = 0; ch < RCH_N; ch++)
        if (s->sid[ch] && ch != RCH_ERROR && ch != RCH_STDIN && ch != RCH_RESIZE)
            spdy_put_data(&s->out, s->sid[ch], SPDY_FLAG_FIN, NULL, 0);
    spdy_put_goaway(&s->out, s->last_sid, SPDY_GOAWAY_OK);
    sp_flush(s);
    h2s_raw_close(s->w);
    sp_free(s);
}

static size_t sp_queued(void *t)
{
    const struct rspdy *s = t;
    return h2s_raw_queued(s->w);
}

const struct rx_transport rest_spdy_transport = {sp_out, sp_finish, sp_queued};

const char *rest_spdy_protocol(h2s_req_t *r)
{
    static const char v4[] = "v4.channel.k8s.io";
    return rest_header_token(r, "x-stream-protocol-version", v4) ? v4 : NULL;
}

void *rest_spdy_start(rest_t *rs, h2s_req_t *r, const char *proto, const struct rx_want *want,
                      struct rxs *x)
{
    struct rspdy *s = xcalloc(1, sizeof(*s));
    s->rs = rs;
    s->x = x;
    s->want[RCH_ERROR] = true;
    s->want[RCH_STDIN] = want->stdin;
    s->want[RCH_STDOUT] = want->stdout;
    s->want[RCH_STDERR] = want->stderr && !want->tty;
    s->want[RCH_RESIZE] = want->tty;
    h2s_req_add_header(r, "X-Stream-Protocol-Version", proto);
    s->w = h2s_req_upgrade(r, "SPDY/3.1", &sp_raw_ops, s);
    if (!s->w) {
        free(s);
        rest_answer_status(rs, r, 400, "BadRequest", "Upgrade request required", NULL, NULL);
        return NULL;
    }
    s->z = spdy_new(SPDY_MAX_FRAME, SPDY_MAX_HEADERS);
    h2s_raw_set_timeout(s->w, rs->streams.setup_timeout_s);
    return s;
}
