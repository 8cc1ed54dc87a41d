/*
 * rest_ws: exec and attach over WebSocket (RFC 6455), Kubernetes'
 * v5.channel.k8s.io and v4.channel.k8s.io subprotocols, the way kubectl
 * 1.29 and later ask first. Framing is libwslay's (masking, fragments,
 * ping/pong, close); this file maps messages to the channels of
 * rest_int.h: every message is binary and starts with its channel byte
 * (client to server: 0 stdin, 4 resize, and in v5 255 = "close channel
 * N", 255 0 being the end of stdin; server to client: 1 stdout, 2 stderr,
 * 3 the status).
 *
 * Bounds: a message over WS_MAX_MSG is refused by wslay (close 1009), a
 * text message closes with 1003, any frame wslay finds malformed closes
 * with 1002; in each case the session ends. No input (pings included:
 * kubectl sends one every 5 s) for the idle timeout closes too.
 */
#include "config.h"
#include "rest_int.h"
#include "util.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#define WS_MAX_MSG (1u << 20)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct rws {
    struct rxs *x;
    h2s_raw_t *w;
    wslay_event_context_ptr ctx;
    bool v5;
};

/* ---- wslay's callbacks */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user)
{
    struct rws *s = user;
    size_t n = h2s_raw_read(s->w, buf, len);
    if (!n) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user)
{
    struct rws *s = user;
    if (h2s_raw_write(s->w, data, len) < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                      void *user)
{
    struct rws *s = user;
    if (a->opcode == WSLAY_TEXT_FRAME) {
        static const char why[] = "text messages are not part of the channel protocol";
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, (const uint8_t *)why,
                                sizeof(why) - 1);
        wslay_event_shutdown_read(ctx);
        return;
    }
    if (a->opcode != WSLAY_BINARY_FRAME || a->msg_length < 1)
        return; /* pings and pongs are wslay's; an empty message says nothing */
    const uint8_t *d = a->msg + 1;
    size_t n = a->msg_length - 1;
    switch (a->msg[0]) {
    case RCH_STDIN:
        rxs_stdin(s->x, d, n);
        break;
    case RCH_RESIZE:
        rxs_resize(s->x, d, n);
        break;
    case 255: /* v5: the client closed one of its channels */
        if (s->v5 && n >= 1 && d[0] == RCH_STDIN)
            rxs_stdin_close(s->x);
        break;
    default:
        break; /* nothing else comes from a client */
    }
}

static const struct wslay_event_callbacks ws_cbs = {
    .recv_callback = ws_recv_cb,
    .send_callback = ws_send_cb,
    .on_msg_recv_callback = ws_msg_cb,
};

/* ---- the stream */

static void ws_flush(struct rws *s)
{
    while (wslay_event_want_write(s->ctx))
        if (wslay_event_send(s->ctx) < 0)
            break;
}

static void ws_free(struct rws *s)
{
    wslay_event_context_free(s->ctx);
    free(s);
}

/* The client's end, or its garbage: what wslay queued (a close) goes out, then the stream. */
static void ws_end(struct rws *s, const char *why)
{
    ws_flush(s);
    rxs_gone(s->x, why);
    h2s_raw_close(s->w);
    ws_free(s);
}

static void ws_read(h2s_raw_t *w, void *arg)
{
    struct rws *s = arg;
    int rc = wslay_event_recv(s->ctx);
    if (rc < 0) {
        ws_end(s, "WebSocket read failed");
        return;
    }
    if (!wslay_event_get_read_enabled(s->ctx)) {
        uint16_t code = wslay_event_get_close_received(s->ctx)
                            ? wslay_event_get_status_code_received(s->ctx)
                            : wslay_event_get_status_code_sent(s->ctx);
        char why[64];
        snprintf(why, sizeof(why), "WebSocket closed (%s, code %u)",
                 wslay_event_get_close_received(s->ctx) ? "by the client" : "bad input", code);
        ws_end(s, why);
        return;
    }
    ws_flush(s); /* pongs */
}

static void ws_closed(h2s_raw_t *w, const char *why, void *arg)
{
    struct rws *s = arg;
    rxs_gone(s->x, why);
    ws_free(s);
}

static const struct h2s_raw_ops ws_raw_ops = {.on_read = ws_read, .on_close = ws_closed};

static void ws_send(struct rws *s, int ch, const uint8_t *data, size_t len)
{
    uint8_t *m = xmalloc(len + 1);
    m[0] = (uint8_t)ch;
    memcpy(m + 1, data, len);
    struct wslay_event_msg msg = {WSLAY_BINARY_FRAME, m, len + 1};
    wslay_event_queue_msg(s->ctx, &msg); /* copies */
    free(m);
    ws_flush(s);
}

static void ws_out(void *t, int ch, const uint8_t *data, size_t len)
{
    ws_send(t, ch, data, len);
}

/* The end: the Status, a normal close, the lingering close; s is freed. */
static void ws_finish(void *t, const char *status)
{
    struct rws *s = t;
    ws_send(s, RCH_ERROR, (const uint8_t *)status, strlen(status));
    wslay_event_queue_close(s->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    ws_flush(s);
    h2s_raw_close(s->w);
    ws_free(s);
}

static size_t ws_queued(void *t)
{
    const struct rws *s = t;
    return h2s_raw_queued(s->w) + wslay_event_get_queued_msg_length(s->ctx);
}

const struct rx_transport rest_ws_transport = {ws_out, ws_finish, ws_queued};

/* ---- the handshake */

const char *rest_ws_protocol(h2s_req_t *r)
{
    static const char *const ours[] = {"v5.channel.k8s.io",
                                       "v4.channel.k8s.io"}; /* preferred first */
    for (size_t i = 0; i < ARRAY_SIZE(ours); i++)
        if (rest_header_token(r, "sec-websocket-protocol", ours[i]))
            return ours[i];
    return NULL;
}

void *rest_ws_start(rest_t *rs, h2s_req_t *r, const char *proto, struct rxs *x)
{
    const char *key = h2s_req_header(r, "sec-websocket-key");
    const char *ver = h2s_req_header(r, "sec-websocket-version");
    if (!key || strlen(key) != 24 || !ver || strcmp(ver, "13")) {
        h2s_req_add_header(r, "Sec-WebSocket-Version", "13");
        rest_answer_status(rs, r, 400, "BadRequest",
                           "a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: "
                           "13",
                           NULL, NULL);
        return NULL;
    }
    /* Sec-WebSocket-Accept: base64(SHA-1(key GUID)) (RFC 6455 4.2.2) */
    char *cat = xasprintf("%s" WS_GUID, key);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, strlen(cat), sha);
    free(cat);
    char accept[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
    h2s_req_add_header(r, "Sec-WebSocket-Accept", accept);
    h2s_req_add_header(r, "Sec-WebSocket-Protocol", proto);
    struct rws *s = xcalloc(1, sizeof(*s));
    s->x = x;
    s->v5 = !strcmp(proto, "v5.channel.k8s.io");
    s->w = h2s_req_upgrade(r, "websocket", &ws_raw_ops, s);
    if (!s->w) {
        free(s);
        rest_answer_status(rs, r, 400, "BadRequest", "Upgrade request required", NULL, NULL);
        return NULL;
    }
    if (wslay_event_context_server_init(&s->ctx, &ws_cbs, s) != 0)
        fatal("wslay: out of memory");
    wslay_event_config_set_max_recv_msg_length(s->ctx, WS_MAX_MSG);
    h2s_raw_set_timeout(s->w, rs->streams.idle_timeout_s);
    return s;
}
