/*
 * fuzz_http1: h2s's HTTP/1.1 request path (h2s_conn.c's sniffing, then
 * h2s_http1.c: libhttp-parser's callbacks, the limits, pipelining and the
 * answers) on arbitrary client bytes. One server on one loop serves every
 * input: each is written into a socketpair whose other end h2s accepted,
 * the client end is half-closed and drained, and the loop turns until the
 * connection is gone (one still open after that, say held by a request
 * the handler keeps, is closed, which runs its on_close). The handler
 * answers whole, streamed or never, by the path's second byte, so each
 * kind of answer meets hostile requests.
 */
#include "config.h"
#include "fuzz.h"
#include "h2s_int.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct event_base *fz_base;
static h2s_t *fz_srv;
static struct h2s_listener fz_lis;

static void fz_closed(h2s_req_t *r, void *arg)
{
}

static void fz_req(h2s_req_t *r, void *arg)
{
    const char *path = h2s_req_path(r);
    size_t blen;
    const uint8_t *body = h2s_req_body(r, &blen);
    const char *ct = h2s_req_header(r, "content-type");
    /* request bytes as response headers: the CR/LF filter must hold */
    h2s_req_add_header(r, "X-Query", h2s_req_query(r));
    h2s_req_add_header(r, "X-Method", h2s_req_method(r));
    if (h2s_req_is_local(r) && h2s_req_ssl(r))
        abort(); /* a socketpair is local and cleartext */
    switch (path[1]) {
    case 's': {
        h2s_req_start(r, 200, ct);
        h2s_req_send(r, body, blen);
        rbuf_t *c = rbuf_new(path, strlen(path));
        h2s_req_send_rbuf(r, c);
        rbuf_unref(c);
        h2s_req_end(r);
        break;
    }
    case 'h':
        h2s_req_on_close(r, fz_closed, NULL);
        break;
    default:
        h2s_req_respond(r, path[1] == 'n' ? 404 : 200, ct, body, blen);
    }
}

static void fz_setup(void)
{
    fz_base = event_base_new();
    struct h2s_config cfg = {.max_msg = 4096};
    fz_srv = h2s_new(fz_base, &cfg);
    h2s_set_req_handler(fz_srv, fz_req, NULL);
    fz_lis.s = fz_srv;
}

int fuzz_http1_one(const uint8_t *data, size_t size)
{
    if (!fz_base)
        fz_setup();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 0;
    evutil_make_socket_nonblocking(sv[0]);
    evutil_make_socket_nonblocking(sv[1]);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    h2s_accept_cb(NULL, sv[0], (struct sockaddr *)&sa, sizeof(sa), &fz_lis);
    size_t off = 0;
    int shut = 0;
    char buf[65536];
    for (int i = 0; i < 1000 && fz_srv->conns; i++) {
        if (off < size) {
            ssize_t w = write(sv[1], data + off, size - off);
            if (w > 0)
                off += (size_t)w;
        } else if (!shut) {
            shutdown(sv[1], SHUT_WR);
            shut = 1;
        }
        while (read(sv[1], buf, sizeof(buf)) > 0)
            ;
        event_base_loop(fz_base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    }
    while (fz_srv->conns)
        h2s_conn_free(fz_srv->conns);
    close(sv[1]);
    return 0;
}

FUZZ_ENTRY(fuzz_http1_one)
