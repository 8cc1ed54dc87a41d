/*
 * gclcall: one gRPC call made with gcl, for testing gcl against stock
 * servers (t/27-h2-gcl-grpcio.t runs a Python grpcio server).
 *   gclcall ADDR PATH REQUEST [TIMEOUT_MS] [bidi]
 * Sends REQUEST (bytes as given) and prints one line:
 *   <code> <nmsgs> <first message> <last message> <grpc-message>
 * REQUEST "@N" means N bytes of 'x'.
 * With "bidi", opens a bidi call and sends REQUEST 3 times, then closes.
 */
#include "config.h"
#include "gcl.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st {
    int done, code, n;
    char *first, *last, *msg;
};

static void on_msg(gcl_call_t *c, const uint8_t *m, size_t len, void *arg)
{
    struct st *s = arg;
    if (!s->n++)
        s->first = xstrndup((const char *)m, len);
    free(s->last);
    s->last = xstrndup((const char *)m, len);
}

static void on_done(gcl_call_t *c, int code, const char *message, void *arg)
{
    struct st *s = arg;
    s->done = 1;
    s->code = code;
    s->msg = xstrdup(message);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: gclcall ADDR PATH REQUEST [TIMEOUT_MS] [bidi]\n");
        return 2;
    }
    log_init("gclcall");
    struct event_base *base = event_base_new();
    gcl_t *g = gcl_new(base, argv[1], NULL);
    if (!g)
        return 2;
    struct st s = {0};
    int timeout = argc > 4 ? atoi(argv[4]) : 0;
    char *req = argv[3];
    size_t len = strlen(req);
    if (req[0] == '@') {
        len = strtoul(req + 1, NULL, 10);
        req = xmalloc(len + 1);
        memset(req, 'x', len);
        req[len] = '\0';
    }
    if (argc > 5 && strcmp(argv[5], "bidi") == 0) {
        gcl_call_t *c = gcl_call_bidi(g, argv[2], on_msg, on_done, &s);
        for (int i = 0; i < 3; i++)
            gcl_call_send_raw(c, req, len);
        gcl_call_close_send(c);
    } else {
        gcl_call_raw(g, argv[2], req, len, on_msg, on_done, &s, timeout);
    }
    while (!s.done)
        event_base_loop(base, EVLOOP_ONCE);
    printf("%d %d %s %s %s\n", s.code, s.n, s.first ? s.first : "-", s.last ? s.last : "-", s.msg);
    free(s.first);
    free(s.last);
    free(s.msg);
    if (req != argv[3])
        free(req);
    gcl_free(g);
    event_base_free(base);
    return 0;
}
