/*
 * fuzz_ws: WebSocket frames from a client, through libwslay's server-side
 * parser configured as rest_ws.c configures it (the message cap), into the
 * channel protocol's reading as rest_ws.c does it: the channel byte, the
 * v5 close message, and resize messages through json_parse with the
 * bounds rest_connect.c gives it. What wslay answers (pongs, closes) goes
 * to a sink; the input ends as the peer's EOF.
 */
#include "config.h"
#include "fuzz.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

struct fz_ws {
    const uint8_t *data;
    size_t size, off;
    size_t sent, stdin_bytes;
    int closed_stdin, resizes;
};

static ssize_t fz_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *u)
{
    struct fz_ws *f = u;
    if (f->off == f->size) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    /* small reads: frames cut anywhere */
    size_t n = f->size - f->off < len ? f->size - f->off : len;
    if (n > 7)
        n = 7 + (f->data[f->off] & 7);
    if (n > f->size - f->off)
        n = f->size - f->off;
    memcpy(buf, f->data + f->off, n);
    f->off += n;
    return (ssize_t)n;
}

static ssize_t fz_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *u)
{
    struct fz_ws *f = u;
    f->sent += len;
    return (ssize_t)len;
}

static void fz_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *u)
{
    struct fz_ws *f = u;
    if (a->opcode == WSLAY_TEXT_FRAME) {
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
        wslay_event_shutdown_read(ctx);
        return;
    }
    if (a->opcode != WSLAY_BINARY_FRAME || a->msg_length < 1)
        return;
    const uint8_t *d = a->msg + 1;
    size_t n = a->msg_length - 1;
    if (a->msg[0] == 0) {
        f->stdin_bytes += n;
    } else if (a->msg[0] == 4) {
        json_t *j = NULL;
        struct json_limits lim = {.max_bytes = 256, .max_depth = 2, .max_nodes = 8};
        if (json_parse((const char *)d, n, &lim, &j, NULL) == 0) {
            f->resizes += json_get(j, "Width") && json_get(j, "Height");
            json_free(j);
        }
    } else if (a->msg[0] == 255 && n >= 1 && d[0] == 0) {
        f->closed_stdin = 1;
    }
}

int fuzz_ws_one(const uint8_t *data, size_t size)
{
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = fz_recv, .send_callback = fz_send, .on_msg_recv_callback = fz_msg};
    struct fz_ws f = {.data = data, .size = size};
    wslay_event_context_ptr ctx;
    if (wslay_event_context_server_init(&ctx, &cbs, &f) != 0)
        abort();
    wslay_event_config_set_max_recv_msg_length(ctx, 1u << 16);
    while (f.off < f.size && wslay_event_get_read_enabled(ctx)) {
        size_t before = f.off;
        if (wslay_event_recv(ctx) < 0)
            break;
        while (wslay_event_want_write(ctx))
            if (wslay_event_send(ctx) < 0)
                break;
        if (f.off == before)
            break;
    }
    wslay_event_context_free(ctx);
    return 0;
}

FUZZ_ENTRY(fuzz_ws_one)
