/*
 * h2echo: a tiny gRPC test server on h2s, for the stock-client tests
 * (t/25-h2-grpcio.t with Python grpcio) and for h2load benchmarks.
 *   h2echo ADDR...      listens on each ADDR ("127.0.0.1:0", "unix:/p"),
 *                       prints "port N" once listening, serves until SIGTERM.
 * Methods: /test.Echo/Echo (unary echo), /test.Echo/Stream (request is a
 * decimal count N: N messages "msg-<i>"), /test.Echo/Error (request
 * "<code> <message>"), /test.Echo/Bidi (echoes each message, OK at the end).
 * GET /healthz answers "ok".
 */
#include "config.h"
#include "grpc.h"
#include "h2s.h"
#include "util.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void h_echo(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    h2s_call_reply(c, msg, len);
}

static void h_stream(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)(len < 31 ? len : 31), (const char *)msg);
    int n = atoi(buf);
    for (int i = 0; i < n; i++) {
        char m[32];
        int l = snprintf(m, sizeof(m), "msg-%d", i);
        h2s_call_send(c, m, (size_t)l);
    }
    h2s_call_finish(c, GRPC_OK, NULL);
}

static void h_error(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    char *s = xstrndup((const char *)msg, len);
    char *sp = strchr(s, ' ');
    h2s_call_finish(c, atoi(s), sp ? sp + 1 : NULL);
    free(s);
}

static void bidi_msg(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    if (!msg)
        h2s_call_finish(c, GRPC_OK, NULL);
    else
        h2s_call_send(c, msg, len);
}

static void h_bidi(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    h2s_call_on_msg(c, bidi_msg, NULL);
}

static void http_fn(h2s_req_t *r, void *arg)
{
    if (strcmp(h2s_req_path(r), "/healthz") == 0)
        h2s_req_respond(r, 200, "text/plain", "ok", 2);
    else
        h2s_req_respond(r, 404, "text/plain", "404 page not found\n", 19);
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    log_init("h2echo");
    if (getenv("H2_DEBUG"))
        log_set_level(LOG_LVL_DEBUG);
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    h2s_t *s = h2s_new(base, NULL);
    h2s_route(s, "/test.Echo/Echo", H2S_UNARY, h_echo, NULL);
    h2s_route(s, "/test.Echo/Stream", H2S_SERVER_STREAM, h_stream, NULL);
    h2s_route(s, "/test.Echo/Error", H2S_UNARY, h_error, NULL);
    h2s_route(s, "/test.Echo/Bidi", H2S_BIDI, h_bidi, NULL);
    h2s_set_req_handler(s, http_fn, NULL);
    for (int i = 1; i < argc; i++)
        if (h2s_listen(s, argv[i]) < 0)
            return 1;
    printf("port %d\n", h2s_port(s));
    fflush(stdout);
    struct event *t = evsignal_new(base, SIGTERM, on_term, base);
    struct event *n = evsignal_new(base, SIGINT, on_term, base);
    event_add(t, NULL);
    event_add(n, NULL);
    event_base_dispatch(base);
    event_free(t);
    event_free(n);
    h2s_free(s);
    event_base_free(base);
    return 0;
}
