/*
 * test_h2: the gRPC server (h2s) and client (gcl) against each other in one
 * process and one event loop, over TCP and a unix socket; plain HTTP/1.1
 * and HTTP/2 GETs; garbage on the wire; and, where installed, the stock
 * tools (curl, nghttp, h2load). Blocking raw-socket clients and external
 * tools run in a forked child while the parent keeps the loop turning.
 */
#include "config.h"
#include "buf.h"
#include "gcl.h"
#include "grpc.h"
#include "h2s.h"
#include "loopchild.h"
#include "tap.h"
#include "util.h"

#include "proto/coracle.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <nghttp2/nghttp2.h>
#include <unistd.h>

static struct event_base *base;
static int hang_closed, hang_started;
static h2s_call_t *hang_call;
static int64_t hang_closed_at;
static size_t big_queued;
static int later_pending;

/* ---------------------------------------------------------------- server side */

static void h_echo(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    h2s_call_reply(c, msg, len);
}

/*
 * Warnings as trailers: "one", "two" with a control byte, then 5000 bytes
 * (cut to the cap); the request "fail" ends with an error (trailers only).
 */
static void h_warn(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    char big[5001];
    memset(big, 'x', 5000);
    big[5000] = 0;
    h2s_call_add_trailer(c, "warning", "one");
    h2s_call_add_trailer(c, "warning", "two\x01");
    h2s_call_add_trailer(c, "warning", big);
    h2s_call_add_trailer(c, "warning", "dropped: no room left");
    if (len == 4 && !memcmp(msg, "fail", 4))
        h2s_call_finish(c, GRPC_PERMISSION_DENIED, "no");
    else
        h2s_call_reply(c, msg, len);
}

/* request: decimal count; answers "msg-<i>" count times, then OK */
static void h_stream(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%.*s", (int)(len < 31 ? len : 31), (const char *)msg);
    int n = atoi(buf);
    for (int i = 0; i < n; i++) {
        char m[32];
        int l = snprintf(m, sizeof(m), "msg-%d", i);
        if (i % 2) {
            h2s_call_send(c, m, (size_t)l);
        } else {
            rbuf_t *b = rbuf_alloc(GRPC_FRAME_HDR + (size_t)l);
            grpc_frame_hdr(b->data, (uint32_t)l);
            memcpy(b->data + GRPC_FRAME_HDR, m, (size_t)l);
            h2s_call_send_framed(c, b);
            rbuf_unref(b);
        }
    }
    h2s_call_finish(c, GRPC_OK, NULL);
}

/* request: "<code> <message>" */
static void h_error(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    char *s = xstrndup((const char *)msg, len);
    char *sp = strchr(s, ' ');
    h2s_call_finish(c, atoi(s), sp ? sp + 1 : NULL);
    free(s);
}

static void bidi_msg(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    if (!msg) {
        h2s_call_finish(c, GRPC_OK, "bye");
        return;
    }
    h2s_call_send(c, msg, len);
}

static void h_bidi(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    h2s_call_on_msg(c, bidi_msg, NULL);
}

static void hang_close(h2s_call_t *c, void *arg)
{
    hang_closed++;
    hang_closed_at = mono_ns();
}

static void h_hang(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    hang_started++;
    hang_call = c;
    h2s_call_on_close(c, hang_close, NULL);
    h2s_call_send(c, "first", 5);
}

struct later {
    h2s_call_t *c;
    struct event *ev;
    uint8_t *msg;
    size_t len;
};

static void later_fire(evutil_socket_t fd, short what, void *arg)
{
    struct later *l = arg;
    h2s_call_reply(l->c, l->msg, l->len);
    event_free(l->ev);
    free(l->msg);
    free(l);
    later_pending--;
}

/* answers from a timer, after the handler returned */
static void h_later(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct later *l = xcalloc(1, sizeof(*l));
    l->c = c;
    l->msg = xmemdup(msg, len ? len : 1);
    l->len = len;
    l->ev = evtimer_new(base, later_fire, l);
    struct timeval tv = {0, 1000 * (rand() % 5)};
    evtimer_add(l->ev, &tv);
    later_pending++;
}

static void h_headers(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    const char *a = h2s_call_header(c, "authorization");
    const char *t = h2s_call_header(c, "grpc-timeout");
    char *r = xasprintf("%s|%s|%s", a ? a : "-", t ? t : "-", h2s_call_peer(c));
    h2s_call_reply(c, r, strlen(r));
    free(r);
}

/* /md: the value of the x-md header */
static void h_md(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    const char *v = h2s_call_header(c, "x-md");
    h2s_call_reply(c, v ? v : "-", strlen(v ? v : "-"));
}

/* a group of calls: when one closes, its on_close finishes the others */
static h2s_call_t *group[3];
static int ngroup, group_closes;

static void group_close(h2s_call_t *c, void *arg)
{
    group_closes++;
    for (int i = 0; i < ngroup; i++) {
        if (group[i] && group[i] != c)
            h2s_call_finish(group[i], GRPC_OK, "group ended");
        group[i] = NULL;
    }
    ngroup = 0;
}

static void h_group(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    group[ngroup++] = c;
    h2s_call_on_close(c, group_close, NULL);
    h2s_call_send(c, "in", 2);
}

/* 8 messages of 1 MiB (one shared rbuf), for flow control and h2s_call_queued */
static void h_big(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    size_t n = 1 << 20;
    rbuf_t *b = rbuf_alloc(GRPC_FRAME_HDR + n);
    grpc_frame_hdr(b->data, (uint32_t)n);
    memset(b->data + GRPC_FRAME_HDR, 'b', n);
    for (int i = 0; i < 8; i++)
        h2s_call_send_framed(c, b);
    rbuf_unref(b);
    big_queued = h2s_call_queued(c);
    h2s_call_finish(c, GRPC_OK, NULL);
}

/* /later: answered from a timer, after the handler returned */
static void later_answer(evutil_socket_t fd, short what, void *arg)
{
    h2s_req_t *r = arg;
    h2s_req_on_close(r, NULL, NULL);
    event_free(h2s_req_data(r));
    h2s_req_respond(r, 200, "text/plain", "late", 4);
}

static void later_gone(h2s_req_t *r, void *arg)
{
    event_free(arg);
}

/* /stream: three chunks, the last one and the end from a timer */
static void stream_end(evutil_socket_t fd, short what, void *arg)
{
    h2s_req_t *r = arg;
    h2s_req_on_close(r, NULL, NULL);
    event_free(h2s_req_data(r));
    h2s_req_send(r, "c\n", 2);
    h2s_req_end(r);
}

static void http_fn(h2s_req_t *r, void *arg)
{
    const char *path = h2s_req_path(r);
    if (strcmp(path, "/echo") == 0) {
        size_t blen;
        const uint8_t *b = h2s_req_body(r, &blen);
        const char *x = h2s_req_header(r, "x-test");
        char *m = xasprintf("%s %s %s %.*s %s %d", h2s_req_method(r), path, h2s_req_query(r),
                            (int)blen, (const char *)b, x ? x : "-", h2s_req_http_version(r));
        h2s_req_add_header(r, "x-reply", "yes");
        h2s_req_respond(r, 200, "text/plain", m, strlen(m));
        free(m);
    } else if (strcmp(path, "/later") == 0) {
        /* ?slow: long enough for another request to find the in-flight slot taken */
        struct timeval tv = {0, strncmp(h2s_req_query(r), "slow", 4) ? 50000 : 500000};
        struct event *ev = evtimer_new(base, later_answer, r);
        h2s_req_set_data(r, ev);
        h2s_req_on_close(r, later_gone, ev);
        evtimer_add(ev, &tv);
    } else if (strcmp(path, "/stream") == 0) {
        static const struct timeval tv = {0, 50000};
        h2s_req_add_header(r, "x-reply", "yes");
        h2s_req_start(r, 200, "application/json");
        h2s_req_send(r, "a\n", 2);
        rbuf_t *b = rbuf_new("b\n", 2);
        h2s_req_send_rbuf(r, b);
        rbuf_unref(b);
        struct event *ev = evtimer_new(base, stream_end, r);
        h2s_req_set_data(r, ev);
        h2s_req_on_close(r, later_gone, ev);
        evtimer_add(ev, &tv);
    } else if (strcmp(h2s_req_method(r), "POST") == 0) /* this server serves only gRPC posts */
        h2s_req_respond(r, 415, "text/plain", "415 unsupported media type\n", 27);
    else if (strcmp(h2s_req_path(r), "/healthz") == 0)
        h2s_req_respond(r, 200, "text/plain", "ok", 2);
    else
        h2s_req_respond(r, 404, "text/plain", "404 page not found\n", 19);
}

/* The test's long-running requests: a "watch" in the query. */
static int long_running(const h2s_req_t *r)
{
    return strstr(h2s_req_query(r), "watch") != NULL;
}

static h2s_t *server_new_cfg(const struct h2s_config *cfg)
{
    h2s_t *s = h2s_new(base, cfg);
    h2s_route(s, "/test.Echo/Echo", H2S_UNARY, h_echo, NULL);
    h2s_route(s, "/test.Echo/Warn", H2S_UNARY, h_warn, NULL);
    h2s_route(s, "/test.Echo/Stream", H2S_SERVER_STREAM, h_stream, NULL);
    h2s_route(s, "/test.Echo/Error", H2S_UNARY, h_error, NULL);
    h2s_route(s, "/test.Echo/Bidi", H2S_BIDI, h_bidi, NULL);
    h2s_route(s, "/test.Echo/Hang", H2S_SERVER_STREAM, h_hang, NULL);
    h2s_route(s, "/test.Echo/Later", H2S_UNARY, h_later, NULL);
    h2s_route(s, "/test.Echo/Headers", H2S_UNARY, h_headers, NULL);
    h2s_route(s, "/test.Echo/Md", H2S_UNARY, h_md, NULL);
    h2s_route(s, "/test.Echo/Group", H2S_SERVER_STREAM, h_group, NULL);
    h2s_route(s, "/test.Echo/Big", H2S_SERVER_STREAM, h_big, NULL);
    h2s_set_req_handler(s, http_fn, NULL);
    return s;
}

static h2s_t *server_new(void)
{
    struct h2s_config cfg = {.max_msg = 64 * 1024};
    return server_new_cfg(&cfg);
}

/* ---------------------------------------------------------------- client side */

struct res {
    int done, code, nmsg, in_order;
    char *msg;
    char *first, *last;
};

static void r_msg(gcl_call_t *c, const uint8_t *m, size_t len, void *arg)
{
    struct res *r = arg;
    char expect[32];
    snprintf(expect, sizeof(expect), "msg-%d", r->nmsg);
    if (len != strlen(expect) || memcmp(m, expect, len) != 0)
        r->in_order = 0;
    if (!r->first)
        r->first = xstrndup((const char *)m, len);
    free(r->last);
    r->last = xstrndup((const char *)m, len);
    r->nmsg++;
}

static void r_done(gcl_call_t *c, int code, const char *message, void *arg)
{
    struct res *r = arg;
    r->done++;
    r->code = code;
    free(r->msg);
    r->msg = xstrdup(message);
}

static void res_init(struct res *r)
{
    memset(r, 0, sizeof(*r));
    r->in_order = 1;
    r->code = -1;
}

static void res_clear(struct res *r)
{
    free(r->msg);
    free(r->first);
    free(r->last);
    res_init(r);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until *flag >= want or ms pass; returns 1 if the flag got there. */
static int run_until(const int *flag, int want, int ms)
{
    int64_t end = mono_ns() + (int64_t)ms * 1000000;
    struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(t, &tv);
    while (*flag < want && mono_ns() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *flag >= want;
}

static void unary(gcl_t *g, const char *path, const char *req, struct res *r)
{
    res_init(r);
    gcl_call_raw(g, path, req, strlen(req), r_msg, r_done, r, 5000);
    run_until(&r->done, 1, 6000);
}

/* ---------------------------------------------------------------- forked helpers */

static int in_child(int (*fn)(void *), void *arg)
{
    return loop_child(base, fn, arg);
}

static int port;
static char unix_path[128];

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads until EOF (or timeout); returns bytes read into buf, -1 on timeout. */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET)
                break;
            return -1;
        }
        n += (size_t)r;
        if (n >= cap - 1)
            break;
    }
    buf[n] = '\0';
    return (ssize_t)n;
}

static int c_h1_healthz(void *arg)
{
    int fd = tcp_connect();
    if (fd < 0)
        return 10;
    /* two keep-alive requests then one with close */
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        return 11;
    char buf[4096];
    if (read_all(fd, buf, sizeof(buf)) < 0)
        return 12;
    char *a = strstr(buf, "HTTP/1.1 200 OK\r\n");
    char *b = a ? strstr(a, "HTTP/1.1 404") : NULL;
    char *c = b ? strstr(b, "HTTP/1.1 200 OK\r\n") : NULL;
    if (!a || !b || !c || !strstr(c, "\r\n\r\nok"))
        return 13;
    close(fd);
    return 0;
}

/* 400000 pipelined GETs from a client that first does not read at all */
static int c_h1_pipeline(void *arg)
{
    enum { N = 400000 };
    int fd = tcp_connect();
    if (fd < 0)
        return 10;
    int small = 16384;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    const char *last = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    size_t rl = strlen(req), total = (N - 1) * rl + strlen(last), sent = 0;
    char *all = xmalloc(total);
    for (int i = 0; i < N - 1; i++)
        memcpy(all + (size_t)i * rl, req, rl);
    memcpy(all + (size_t)(N - 1) * rl, last, strlen(last));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    /* phase 1: write until the server stops taking requests */
    int64_t stuck = 0;
    while (sent < total) {
        ssize_t w = write(fd, all + sent, total - sent);
        if (w > 0) {
            sent += (size_t)w;
            stuck = 0;
            continue;
        }
        if (!stuck)
            stuck = mono_ns();
        if (mono_ns() - stuck > 300000000)
            break;
        struct pollfd pw = {.fd = fd, .events = POLLOUT};
        poll(&pw, 1, 50);
    }
    int blocked = sent < total;
    /* phase 2: read everything while writing the rest */
    size_t got = 0, one = 0;
    char buf[65536];
    for (;;) {
        if (sent < total) {
            ssize_t w = write(fd, all + sent, total - sent);
            if (w > 0)
                sent += (size_t)w;
        }
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r == 0)
            break;
        if (r < 0) {
            if (errno != EAGAIN)
                return 11;
            struct pollfd pr = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
            poll(&pr, 1, 1000);
            continue;
        }
        if (!one) {
            char *e = memmem(buf, (size_t)r, "\r\n\r\nok", 6);
            one = e ? (size_t)(e - buf) + 6 : 0;
        }
        got += (size_t)r;
    }
    free(all);
    close(fd);
    /* the last answer carries "Connection: close" too */
    size_t want = one * N + strlen("Connection: close\r\n");
    if (!blocked)
        return 12;
    return got == want ? 0 : 13;
}

static int c_h1_abuse(void *arg)
{
    int fd = tcp_connect();
    if (fd < 0)
        return 10;
    char big[10000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    if (write(fd, big, sizeof(big)) < 0)
        return 11;
    char buf[4096];
    if (read_all(fd, buf, sizeof(buf)) < 0)
        return 12;
    close(fd);
    return strncmp(buf, "HTTP/1.1 431", 12) == 0 ? 0 : 13;
}

/* Sends bytes, half-closes, expects the server to close without hanging. */
static int send_expect_close(const void *bytes, size_t n, int shut)
{
    int fd = tcp_connect();
    if (fd < 0)
        return 10;
    if (write(fd, bytes, n) != (ssize_t)n)
        return 11;
    if (shut)
        shutdown(fd, SHUT_WR);
    char buf[4096];
    ssize_t r = read_all(fd, buf, sizeof(buf));
    close(fd);
    return r < 0 ? 12 : 0;
}

static int c_garbage_hello(void *arg)
{
    return send_expect_close("hello\r\n\r\n", 9, 0);
}

static int c_garbage_random(void *arg)
{
    uint8_t b[512];
    srand(42);
    for (size_t i = 0; i < sizeof(b); i++)
        b[i] = (uint8_t)rand();
    b[0] = 0x17; /* not P, G or H */
    return send_expect_close(b, sizeof(b), 0);
}

static int c_garbage_truncated(void *arg)
{
    return send_expect_close("PRI * HTTP/2.0\r\n", 16, 1);
}

static int c_garbage_frames(void *arg)
{
    uint8_t b[24 + 64];
    memcpy(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    /* a frame claiming type 0x4 (SETTINGS) with a bad length, then junk */
    for (size_t i = 24; i < sizeof(b); i++)
        b[i] = (uint8_t)(0xA5 ^ i);
    b[24] = 0, b[25] = 0, b[26] = 5, b[27] = 4, b[28] = 0;
    b[29] = b[30] = b[31] = b[32] = 0;
    return send_expect_close(b, sizeof(b), 0);
}

/* ---- a raw HTTP/2 client for malformed gRPC requests (runs in a child) */

struct raw_req {
    const char *path, *ctype;
    const uint8_t *body;
    size_t len;
    size_t big_header; /* add a header this many bytes long (split over CONTINUATION) */
};

static int raw_pipe[2];

static void hp_int(uint8_t **p, size_t v, int prefix_bits, uint8_t first)
{
    size_t max = (1u << prefix_bits) - 1;
    if (v < max) {
        *(*p)++ = (uint8_t)(first | v);
        return;
    }
    *(*p)++ = (uint8_t)(first | max);
    v -= max;
    while (v >= 128) {
        *(*p)++ = (uint8_t)(v % 128 + 128);
        v /= 128;
    }
    *(*p)++ = (uint8_t)v;
}

/* HPACK literal without indexing, new name, no Huffman */
static void hp_lit(uint8_t **p, const char *n, const char *v, size_t vl)
{
    *(*p)++ = 0;
    hp_int(p, strlen(n), 7, 0);
    memcpy(*p, n, strlen(n));
    *p += strlen(n);
    hp_int(p, vl, 7, 0);
    memcpy(*p, v, vl);
    *p += vl;
}

static uint8_t *put_frame(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
    *p++ = (uint8_t)(len >> 16), *p++ = (uint8_t)(len >> 8), *p++ = (uint8_t)len;
    *p++ = type, *p++ = flags;
    *p++ = (uint8_t)(sid >> 24), *p++ = (uint8_t)(sid >> 16), *p++ = (uint8_t)(sid >> 8);
    *p++ = (uint8_t)sid;
    return p;
}

/* Sends one request on stream 1; reports ":status|grpc-status|grpc-message" on raw_pipe. */
static int c_raw_grpc(void *arg)
{
    const struct raw_req *rq = arg;
    size_t cap = 65536 + rq->len + rq->big_header;
    uint8_t *out = xmalloc(cap), *p = out, *hb = xmalloc(cap), *h = hb;
    memcpy(p, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    p = put_frame(p + 24, 0, 4, 0, 0);
    hp_lit(&h, ":method", "POST", 4);
    hp_lit(&h, ":scheme", "http", 4);
    hp_lit(&h, ":path", rq->path, strlen(rq->path));
    hp_lit(&h, ":authority", "x", 1);
    hp_lit(&h, "content-type", rq->ctype, strlen(rq->ctype));
    if (rq->big_header) {
        char *v = xmalloc(rq->big_header);
        memset(v, 'v', rq->big_header);
        hp_lit(&h, "x-big", v, rq->big_header);
        free(v);
    }
    size_t hl = (size_t)(h - hb), off = 0;
    int first = 1;
    while (off < hl || first) {
        size_t k = hl - off > 16000 ? 16000 : hl - off;
        uint8_t fl = (uint8_t)((off + k == hl ? 4 : 0) | (first && !rq->body ? 1 : 0));
        p = put_frame(p, k, first ? 1 : 9, fl, 1);
        memcpy(p, hb + off, k);
        p += k, off += k, first = 0;
    }
    if (rq->body) {
        p = put_frame(p, rq->len, 0, 1, 1);
        memcpy(p, rq->body, rq->len);
        p += rq->len;
    }
    int fd = tcp_connect();
    if (fd < 0 || write(fd, out, (size_t)(p - out)) != p - out)
        return 10;
    /* read frames until stream 1 ends */
    size_t n = 0;
    uint8_t *in = out;
    char result[512] = "";
    char st[8] = "-", gs[8] = "-", gm[400] = "-";
    nghttp2_hd_inflater *inf;
    nghttp2_hd_inflate_new(&inf);
    int end = 0;
    while (!end) {
        ssize_t r = read(fd, in + n, cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        size_t pos = 0;
        while (!end && n - pos >= 9) {
            size_t fl = (size_t)in[pos] << 16 | (size_t)in[pos + 1] << 8 | in[pos + 2];
            if (n - pos < 9 + fl)
                break;
            uint8_t type = in[pos + 3], flags = in[pos + 4];
            const uint8_t *pl = in + pos + 9;
            if (type == 1) {
                size_t used = 0;
                for (;;) {
                    nghttp2_nv nv;
                    int iflags = 0;
                    ssize_t c = nghttp2_hd_inflate_hd2(inf, &nv, &iflags, pl + used, fl - used, 1);
                    if (c < 0)
                        return 11;
                    used += (size_t)c;
                    if (iflags & NGHTTP2_HD_INFLATE_EMIT) {
                        char *dst = NULL;
                        size_t dl = 0;
                        if (nv.namelen == 7 && !memcmp(nv.name, ":status", 7))
                            dst = st, dl = sizeof(st);
                        else if (nv.namelen == 11 && !memcmp(nv.name, "grpc-status", 11))
                            dst = gs, dl = sizeof(gs);
                        else if (nv.namelen == 12 && !memcmp(nv.name, "grpc-message", 12))
                            dst = gm, dl = sizeof(gm);
                        if (dst)
                            snprintf(dst, dl, "%.*s", (int)nv.valuelen, nv.value);
                    }
                    if (iflags & NGHTTP2_HD_INFLATE_FINAL) {
                        nghttp2_hd_inflate_end_headers(inf);
                        break;
                    }
                    if (c == 0 && !(iflags & NGHTTP2_HD_INFLATE_EMIT))
                        break;
                }
                if (flags & 1)
                    end = 1;
            } else if (type == 0 && (flags & 1)) {
                end = 1;
            } else if (type == 3 || type == 7) {
                end = 1;
            }
            pos += 9 + fl;
        }
        memmove(in, in + pos, n - pos);
        n -= pos;
    }
    nghttp2_hd_inflate_del(inf);
    close(fd);
    snprintf(result, sizeof(result), "%s|%s|%s", st, gs, gm);
    if (write(raw_pipe[1], result, strlen(result) + 1) < 0)
        return 12;
    return end ? 0 : 13;
}

static void raw_expect(const struct raw_req *rq, const char *want, const char *name)
{
    char got[512] = "";
    if (pipe(raw_pipe) < 0)
        return;
    int rc = in_child(c_raw_grpc, (void *)rq);
    close(raw_pipe[1]);
    ssize_t r = read(raw_pipe[0], got, sizeof(got) - 1);
    got[r > 0 ? r : 0] = '\0';
    close(raw_pipe[0]);
    ok(rc == 0 && strcmp(got, want) == 0, "%s", name);
    if (strcmp(got, want) != 0)
        diag("got '%s' (child %d), want '%s'", got, rc, want);
}

static void test_raw(void)
{
    struct raw_req rq = {.path = "/test.Echo/Echo", .ctype = "application/grpc"};
    raw_expect(&rq, "200|13|grpc: request has no message", "no request message -> INTERNAL");
    rq.body = (const uint8_t *)"\0\0\0\0\x0a"
                               "abc";
    rq.len = 8;
    raw_expect(&rq, "200|13|grpc: truncated request message (3 of 10 bytes)",
               "truncated message -> INTERNAL");
    rq.body = (const uint8_t *)"\0\0";
    rq.len = 2;
    raw_expect(&rq, "200|13|grpc: truncated request frame header (2 of 5 bytes)",
               "truncated frame header -> INTERNAL");
    rq.body = (const uint8_t *)"\1\0\0\0\3abc";
    rq.len = 8;
    raw_expect(&rq, "200|12|compressed messages are not supported",
               "compressed flag -> UNIMPLEMENTED");
    rq.body = (const uint8_t *)"\0\0\0\0\1a\0\0\0\0\1b";
    rq.len = 12;
    raw_expect(&rq,
               "200|13|grpc: more than one request message for a unary or server-streaming method",
               "two messages on a unary method -> INTERNAL");
    rq.body = (const uint8_t *)"\0\0\0\0\2hi";
    rq.len = 7;
    rq.ctype = "application/grpc+proto";
    raw_expect(&rq, "200|0|-", "application/grpc+proto accepted");
    rq.ctype = "text/plain";
    raw_expect(&rq, "415|-|-", "POST with another content-type -> 415");
    rq.ctype = "application/grpc";
    rq.big_header = 20000;
    raw_expect(&rq, "200|8|header list too large", "20 KB header -> RESOURCE_EXHAUSTED");
}

static int c_shell(void *arg)
{
    int r = system((const char *)arg);
    return WIFEXITED(r) ? WEXITSTATUS(r) : 99;
}

static int have(const char *tool)
{
    char *cmd = xasprintf("command -v %s >/dev/null 2>&1", tool);
    int r = system(cmd);
    free(cmd);
    return r == 0;
}

/* ---------------------------------------------------------------- tests */

static void test_basic(gcl_t *g, const char *what)
{
    struct res r;
    unary(g, "/test.Echo/Echo", "hello", &r);
    is_int(r.code, GRPC_OK, "unary echo status");
    ok(r.nmsg == 1 && r.first && strcmp(r.first, "hello") == 0, "%s: unary echo body (%s)", what,
       r.first ? r.first : "-");
    res_clear(&r);

    /* empty message */
    unary(g, "/test.Echo/Echo", "", &r);
    ok(r.code == GRPC_OK && r.nmsg == 1 && r.first && !*r.first, "%s: empty message echo", what);
    res_clear(&r);

    unary(g, "/test.Echo/Stream", "1000", &r);
    is_int(r.code, GRPC_OK, "stream status");
    ok(r.nmsg == 1000 && r.in_order, "%s: 1000 streamed messages in order (%d)", what, r.nmsg);
    res_clear(&r);
}

static void test_errors(gcl_t *g)
{
    struct res r;
    const char *m = "Pod \"x\" is invalid: ünïcödé 100% \t\x01 ~ {}";
    char *req = xasprintf("%d %s", GRPC_INVALID_ARGUMENT, m);
    unary(g, "/test.Echo/Error", req, &r);
    is_int(r.code, GRPC_INVALID_ARGUMENT, "error code round trip");
    is_str(r.msg, m, "error message with non-ASCII and % round trip");
    free(req);
    res_clear(&r);

    unary(g, "/test.Echo/Error", "5 pods \"x\" not found", &r);
    ok(r.code == GRPC_NOT_FOUND && strcmp(r.msg, "pods \"x\" not found") == 0, "NOT_FOUND");
    res_clear(&r);

    unary(g, "/x/y", "", &r);
    is_int(r.code, GRPC_UNIMPLEMENTED, "unknown method -> UNIMPLEMENTED");
    is_str(r.msg, "unknown method /x/y", "unknown method message");
    res_clear(&r);

    /* oversized request next to a normal call on the same connection */
    size_t big = 100 * 1024;
    char *b = xmalloc(big);
    memset(b, 'z', big);
    struct res r2, r3;
    res_init(&r);
    res_init(&r2);
    res_init(&r3);
    gcl_call_raw(g, "/test.Echo/Echo", b, big, r_msg, r_done, &r, 5000);
    gcl_call_raw(g, "/test.Echo/Echo", "small", 5, r_msg, r_done, &r2, 5000);
    run_until(&r.done, 1, 6000);
    run_until(&r2.done, 1, 6000);
    is_int(r.code, GRPC_RESOURCE_EXHAUSTED, "oversized -> RESOURCE_EXHAUSTED");
    ok(r.msg && strstr(r.msg, "larger than max (102400 vs. 65536)"), "oversize message: %s",
       r.msg ? r.msg : "-");
    ok(r2.code == GRPC_OK && r2.first && strcmp(r2.first, "small") == 0,
       "other call on the same connection fine");
    unary(g, "/test.Echo/Echo", "after", &r3);
    ok(r3.code == GRPC_OK && r3.first && strcmp(r3.first, "after") == 0,
       "connection still works after the oversized call");
    free(b);
    res_clear(&r);
    res_clear(&r2);
    res_clear(&r3);

    /* just under the cap works */
    big = 64 * 1024;
    b = xmalloc(big);
    memset(b, 'y', big);
    res_init(&r);
    gcl_call_raw(g, "/test.Echo/Echo", b, big, r_msg, r_done, &r, 5000);
    run_until(&r.done, 1, 6000);
    ok(r.code == GRPC_OK && r.nmsg == 1 && r.first && strlen(r.first) == big,
       "64 KiB message (the cap) echoed");
    free(b);
    res_clear(&r);
}

static void test_headers(h2s_t *s, struct gcl_opts *o)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    gcl_t *g = gcl_new(base, addr, o);
    struct res r;
    res_init(&r);
    gcl_call_raw(g, "/test.Echo/Headers", "", 0, r_msg, r_done, &r, 2500);
    run_until(&r.done, 1, 5000);
    ok(r.first && strncmp(r.first, "Bearer sekrit|2500m|127.0.0.1:", 30) == 0,
       "authorization, grpc-timeout and peer reach the handler (%s)", r.first ? r.first : "-");
    res_clear(&r);
    gcl_free(g);
}

/* The warnings a client heard, "|"-joined, each cut to 20 bytes and its length. */
static void on_warning(const char *msg, void *arg)
{
    struct buf *b = arg;
    buf_printf(b, "%s%.20s/%zu", b->len ? "|" : "", msg, strlen(msg));
}

static void test_warnings(void)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    struct buf heard = {0};
    struct gcl_opts o = {.on_warning = on_warning, .warning_arg = &heard};
    gcl_t *g = gcl_new(base, addr, &o);
    static const char *const reqs[] = {"ok", "fail"};
    for (int i = 0; i < 2; i++) {
        struct res r;
        buf_reset(&heard);
        unary(g, "/test.Echo/Warn", reqs[i], &r);
        is_int(r.code, i ? GRPC_PERMISSION_DENIED : GRPC_OK, "warning trailers: status");
        /* 4096 bytes for names and values with a NUL each: 4096 - 8 - 4 - 8 - 5 - 8 - 1 */
        is_str(heard.p, "one/3|two?/4|xxxxxxxxxxxxxxxxxxxx/4062",
               i ? "warnings in a trailers-only answer" : "warnings after a message");
        res_clear(&r);
    }
    buf_free(&heard);
    gcl_free(g);
}

static void test_cancel(gcl_t *g)
{
    struct res r;
    res_init(&r);
    hang_closed = hang_started = 0;
    gcl_call_t *c = gcl_call_raw(g, "/test.Echo/Hang", "", 0, r_msg, r_done, &r, 0);
    run_until(&r.nmsg, 1, 3000);
    ok(hang_started == 1 && r.nmsg == 1, "streaming call started, first message received");
    gcl_call_cancel(c);
    ok(r.done == 1 && r.code == GRPC_CANCELLED, "cancel -> CANCELLED at once");
    ok(run_until(&hang_closed, 1, 3000), "server on_close fired after client cancel");
    res_clear(&r);

    /* deadline: the local timer cancels and the server sees the close */
    hang_closed = 0;
    res_init(&r);
    gcl_call_raw(g, "/test.Echo/Hang", "", 0, r_msg, r_done, &r, 200);
    run_until(&r.done, 1, 3000);
    is_int(r.code, GRPC_DEADLINE_EXCEEDED, "timeout -> DEADLINE_EXCEEDED");
    ok(run_until(&hang_closed, 1, 3000), "server on_close fired after deadline");
    res_clear(&r);
}

static void test_bidi(gcl_t *g)
{
    struct res r;
    res_init(&r);
    gcl_call_t *c = gcl_call_bidi(g, "/test.Echo/Bidi", r_msg, r_done, &r);
    for (int i = 0; i < 50; i++) {
        char m[32];
        int l = snprintf(m, sizeof(m), "msg-%d", i);
        gcl_call_send_raw(c, m, (size_t)l);
        if (i % 10 == 0)
            run_until(&r.nmsg, i + 1, 3000);
    }
    run_until(&r.nmsg, 50, 3000);
    ok(r.nmsg == 50 && r.in_order && !r.done, "bidi: 50 messages echoed in order, still open");
    gcl_call_close_send(c);
    run_until(&r.done, 1, 3000);
    ok(r.code == GRPC_OK && strcmp(r.msg, "bye") == 0, "bidi: close_send -> server finishes OK");
    res_clear(&r);

    /* a protobuf message through gcl_call_send */
    res_init(&r);
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.name = "msg-0";
    c = gcl_call_bidi(g, "/test.Echo/Bidi", NULL, r_done, &r);
    ok(gcl_call_send(c, &meta.base) == 0, "gcl_call_send");
    gcl_call_close_send(c);
    run_until(&r.done, 1, 3000);
    is_int(r.code, GRPC_OK, "bidi with protobuf message");
    res_clear(&r);
}

static void test_concurrent(gcl_t *g)
{
    enum { N = 200 };
    static struct res rs[N];
    int dones = 0;
    for (int i = 0; i < N; i++) {
        char m[32];
        snprintf(m, sizeof(m), "msg-%d", i);
        res_init(&rs[i]);
        gcl_call_raw(g, i % 2 ? "/test.Echo/Echo" : "/test.Echo/Later", m, strlen(m), r_msg, r_done,
                     &rs[i], 10000);
    }
    int64_t end = mono_ns() + 10000000000LL;
    while (mono_ns() < end) {
        dones = 0;
        for (int i = 0; i < N; i++)
            dones += rs[i].done;
        if (dones == N)
            break;
        event_base_loop(base, EVLOOP_ONCE);
    }
    int good = 0;
    for (int i = 0; i < N; i++) {
        char m[32];
        snprintf(m, sizeof(m), "msg-%d", i);
        if (rs[i].done == 1 && rs[i].code == GRPC_OK && rs[i].first && strcmp(rs[i].first, m) == 0)
            good++;
        res_clear(&rs[i]);
    }
    is_int(good, N, "200 concurrent calls (half answered later) on one connection");
}

static void test_sync(gcl_t *g)
{
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT, *out = NULL;
    meta.name = "pod-a";
    meta.namespace_ = "default";
    char *err = NULL;
    int code =
        gcl_unary_sync(g, "/test.Echo/Echo", &meta.base, &coracle__v1__object_meta__descriptor,
                       (ProtobufCMessage **)&out, &err);
    ok(code == GRPC_OK && out && strcmp(out->name, "pod-a") == 0 &&
           strcmp(out->namespace_, "default") == 0,
       "gcl_unary_sync round trip of a protobuf message");
    if (out)
        protobuf_c_message_free_unpacked(&out->base, NULL);
    free(err);
    err = NULL;
    code = gcl_unary_sync(g, "/nope/Nope", &meta.base, &coracle__v1__object_meta__descriptor,
                          (ProtobufCMessage **)&out, &err);
    ok(code == GRPC_UNIMPLEMENTED && err && strcmp(err, "unknown method /nope/Nope") == 0,
       "gcl_unary_sync error -> code and message");
    free(err);
}

static void test_server_gone(void)
{
    /* a second server that goes away with a call open */
    h2s_t *s2 = server_new();
    ok(h2s_listen(s2, "127.0.0.1:0") == 0, "second server listens");
    int p2 = h2s_port(s2);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", p2);
    gcl_t *g = gcl_new(base, addr, NULL);
    struct res r;
    res_init(&r);
    hang_closed = 0;
    gcl_call_raw(g, "/test.Echo/Hang", "", 0, r_msg, r_done, &r, 0);
    run_until(&r.nmsg, 1, 3000);
    h2s_free(s2);
    ok(hang_closed == 1, "h2s_free: the open call's on_close ran");
    run_until(&r.done, 1, 3000);
    ok(r.code == GRPC_UNAVAILABLE, "server shut down -> UNAVAILABLE (%s)", r.msg ? r.msg : "-");
    res_clear(&r);

    unary(g, "/test.Echo/Echo", "x", &r);
    char want[96];
    snprintf(want, sizeof(want), "connect to %s: Connection refused", addr);
    is_int(r.code, GRPC_UNAVAILABLE, "server gone -> UNAVAILABLE");
    is_str(r.msg, want, "message names the address");
    res_clear(&r);
    unary(g, "/test.Echo/Echo", "x", &r);
    is_int(r.code, GRPC_UNAVAILABLE, "and again on the next call (fresh connect)");
    res_clear(&r);
    gcl_free(g);

    g = gcl_new(base, "unix:/nonexistent/sock", NULL);
    unary(g, "/test.Echo/Echo", "x", &r);
    ok(r.code == GRPC_UNAVAILABLE && r.msg && strstr(r.msg, "unix:/nonexistent/sock"),
       "missing unix socket -> UNAVAILABLE (%s)", r.msg ? r.msg : "-");
    res_clear(&r);
    gcl_free(g);

    /* connection lost: the peer closes the TCP connection mid-call */
    h2s_t *s3 = server_new();
    h2s_listen(s3, "127.0.0.1:0");
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", h2s_port(s3));
    g = gcl_new(base, addr, NULL);
    res_init(&r);
    gcl_call_raw(g, "/test.Echo/Hang", "", 0, r_msg, r_done, &r, 0);
    run_until(&r.nmsg, 1, 3000);
    /* make the free path skip the UNAVAILABLE trailers: kill the process-side socket */
    struct gcl *gg = g;
    (void)gg;
    h2s_free(s3);
    run_until(&r.done, 1, 3000);
    ok(r.done == 1 && r.code == GRPC_UNAVAILABLE, "call ends UNAVAILABLE when server goes");
    res_clear(&r);
    gcl_free(g);
}

/* A port nothing listens on (a server's, after it went). */
static int dead_port(void)
{
    h2s_t *d = server_new();
    h2s_listen(d, "127.0.0.1:0");
    int p = h2s_port(d);
    h2s_free(d);
    return p;
}

/* Several addresses: a dead one is skipped, a lost one left for the next. */
static void test_failover(void)
{
    char addr[256];
    int dead = dead_port(), dead2 = dead_port();
    struct res r;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d,unix:/nonexistent/sock,127.0.0.1:%d", dead, port);
    gcl_t *g = gcl_new(base, addr, NULL);
    ok(g != NULL, "gcl_new takes a list");
    unary(g, "/test.Echo/Echo", "through", &r);
    ok(r.code == GRPC_OK && r.first && !strcmp(r.first, "through"),
       "two dead addresses first: the call goes to the third (%s)", r.msg ? r.msg : "-");
    res_clear(&r);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", port);
    is_str(gcl_addr(g), want, "and stays there");
    /* a bidi call opened towards a dead address keeps its messages, a call its metadata */
    gcl_free(g);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d,127.0.0.1:%d", dead, port);
    g = gcl_new(base, addr, NULL);
    res_init(&r);
    const struct gcl_md md[] = {{"x-md", "kept"}};
    gcl_call_raw_md(g, "/test.Echo/Md", md, 1, "", 0, r_msg, r_done, &r, 3000);
    run_until(&r.done, 1, 3000);
    ok(r.code == GRPC_OK && r.first && !strcmp(r.first, "kept"),
       "metadata moved with its call (%s)", r.first ? r.first : "-");
    res_clear(&r);
    gcl_free(g);
    g = gcl_new(base, addr, NULL);
    res_init(&r);
    gcl_call_t *c = gcl_call_bidi(g, "/test.Echo/Bidi", r_msg, r_done, &r);
    gcl_call_send_raw(c, "msg-0", 5);
    gcl_call_send_raw(c, "msg-1", 5);
    gcl_call_close_send(c);
    run_until(&r.done, 1, 3000);
    ok(r.code == GRPC_OK && r.nmsg == 2 && r.in_order, "bidi moved with its messages (%d)", r.nmsg);
    res_clear(&r);
    gcl_free(g);

    snprintf(addr, sizeof(addr), "127.0.0.1:%d,127.0.0.1:%d", dead, dead2);
    g = gcl_new(base, addr, NULL);
    unary(g, "/test.Echo/Echo", "x", &r);
    snprintf(want, sizeof(want), "connect to 127.0.0.1:%d: Connection refused", dead2);
    is_int(r.code, GRPC_UNAVAILABLE, "every address dead -> UNAVAILABLE");
    is_str(r.msg, want, "naming the last one tried");
    res_clear(&r);
    gcl_free(g);

    /* the server in use goes: the call fails, the next one reaches the other */
    h2s_t *s2 = server_new();
    h2s_listen(s2, "127.0.0.1:0");
    snprintf(addr, sizeof(addr), "127.0.0.1:%d,127.0.0.1:%d", h2s_port(s2), port);
    g = gcl_new(base, addr, NULL);
    res_init(&r);
    gcl_call_raw(g, "/test.Echo/Hang", "", 0, r_msg, r_done, &r, 0);
    run_until(&r.nmsg, 1, 3000);
    h2s_free(s2);
    run_until(&r.done, 1, 3000);
    is_int(r.code, GRPC_UNAVAILABLE, "open call on the lost server -> UNAVAILABLE");
    res_clear(&r);
    int64_t t0 = mono_ns();
    unary(g, "/test.Echo/Echo", "again", &r);
    int64_t ms = (mono_ns() - t0) / 1000000;
    ok(r.code == GRPC_OK && ms < 500, "the retry reaches the other server at once (%lld ms)",
       (long long)ms);
    res_clear(&r);
    gcl_free(g);

    int d0 = gcl_failover_delay_ms(0), d1 = gcl_failover_delay_ms(1);
    int d2 = gcl_failover_delay_ms(2), d3 = gcl_failover_delay_ms(3);
    int d9 = gcl_failover_delay_ms(9), d99 = gcl_failover_delay_ms(99);
    ok(d0 == 0 && d1 == 0, "failover: the first retry at once");
    ok(d2 >= 80 && d2 <= 100 && d3 >= 160 && d3 <= 200, "then 100 ms doubling (%d, %d)", d2, d3);
    ok(d9 >= 800 && d9 <= 1000 && d99 >= 800 && d99 <= 1000, "to 1 s (%d, %d)", d9, d99);
}

static void test_gcl_free_cancels(void)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    gcl_t *g = gcl_new(base, addr, NULL);
    struct res r;
    res_init(&r);
    hang_closed = 0;
    gcl_call_raw(g, "/test.Echo/Hang", "", 0, r_msg, r_done, &r, 0);
    run_until(&r.nmsg, 1, 3000);
    gcl_free(g);
    ok(r.done == 1 && r.code == GRPC_CANCELLED, "gcl_free -> open call CANCELLED");
    ok(run_until(&hang_closed, 1, 3000), "server sees the connection go");
    res_clear(&r);
    ok(gcl_new(base, "nonsense", NULL) == NULL, "gcl_new rejects a bad address");
}

static int c_idle(void *arg)
{
    int fd = tcp_connect();
    if (fd < 0)
        return 10;
    int64_t t0 = mono_ns();
    char buf[64];
    ssize_t r = read_all(fd, buf, sizeof(buf));
    close(fd);
    int64_t ms = (mono_ns() - t0) / 1000000;
    return r == 0 && ms >= 900 && ms < 8000 ? 0 : 11;
}

static void test_limits(void)
{
    struct h2s_config cfg = {.idle_timeout_s = 1, .max_conns = 2};
    h2s_t *s = server_new_cfg(&cfg);
    h2s_listen(s, "127.0.0.1:0");
    int saved = port;
    port = h2s_port(s);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    struct h2s_stats st;

    is_int(in_child(c_idle, NULL), 0, "a silent connection is closed after the idle timeout");

    gcl_t *g = gcl_new(base, addr, NULL);
    struct res r;
    unary(g, "/test.Echo/Echo", "one", &r);
    is_int(r.code, GRPC_OK, "call before idling");
    res_clear(&r);
    /* closed within 1.25 s (a 250 ms sweep); the 10 s only bound a hang */
    int never = 0;
    int64_t end = mono_ns() + 10000000000LL;
    do {
        run_until(&never, 1, 50);
        h2s_get_stats(s, &st);
    } while (st.conns_open && mono_ns() < end);
    is_int(st.conns_open, 0, "idle h2 connection closed by the server");
    /* the client reads the close on its next pass through the loop: give it
     * a few (the server's count drops before the client has seen the EOF) */
    run_until(&never, 1, 300);
    unary(g, "/test.Echo/Echo", "two", &r);
    ok(r.code == GRPC_OK && r.first && strcmp(r.first, "two") == 0,
       "next call reconnects after the idle close");
    res_clear(&r);

    /* a connection with an open streaming call is not idle */
    struct res rh;
    res_init(&rh);
    hang_closed = 0;
    gcl_call_raw(g, "/test.Echo/Hang", "", 0, r_msg, r_done, &rh, 0);
    run_until(&never, 1, 2600);
    ok(!rh.done && hang_closed == 0, "open streaming call keeps its connection past idle timeout");

    /* max_conns = 2: g holds one, g2 the second, g3 is refused */
    gcl_t *g2 = gcl_new(base, addr, NULL), *g3 = gcl_new(base, addr, NULL);
    unary(g2, "/test.Echo/Echo", "x", &r);
    is_int(r.code, GRPC_OK, "second connection accepted");
    res_clear(&r);
    unary(g3, "/test.Echo/Echo", "x", &r);
    ok(r.code == GRPC_UNAVAILABLE, "third connection refused (max_conns): %s", r.msg);
    res_clear(&r);

    /* graceful shutdown: GOAWAY; the open call goes on, new connections are not served */
    h2s_stop_accepting(s);
    run_until(&never, 1, 100);
    ok(!rh.done && hang_call, "open call survives h2s_stop_accepting");
    h2s_call_send(hang_call, "more", 4);
    h2s_call_finish(hang_call, GRPC_OK, "done");
    run_until(&rh.done, 1, 3000);
    ok(rh.code == GRPC_OK && rh.nmsg == 2 && strcmp(rh.last, "more") == 0,
       "...and finishes normally after GOAWAY");
    res_clear(&rh);
    unary(g, "/test.Echo/Echo", "x", &r);
    ok(r.code == GRPC_UNAVAILABLE && strstr(r.msg, "Connection refused"),
       "new connections refused after stop_accepting (%s: %s)", grpc_code_name(r.code), r.msg);
    res_clear(&r);
    gcl_free(g);
    gcl_free(g2);
    gcl_free(g3);
    h2s_free(s);
    port = saved;
}

static void test_big(gcl_t *g)
{
    struct res r;
    res_init(&r);
    big_queued = 0;
    gcl_call_raw(g, "/test.Echo/Big", "", 0, NULL, r_done, &r, 10000);
    run_until(&r.done, 1, 10000);
    is_int(r.code, GRPC_OK, "8 x 1 MiB streamed through flow control");
    is_int(big_queued, 8 * ((1 << 20) + 5), "h2s_call_queued counts unsent bytes");
    res_clear(&r);

    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT, *out = NULL;
    char *err = NULL;
    int code = gcl_unary_sync_timeout(g, "/test.Echo/Hang", &meta.base,
                                      &coracle__v1__object_meta__descriptor,
                                      (ProtobufCMessage **)&out, &err, 100);
    ok(code == GRPC_DEADLINE_EXCEEDED && err && strstr(err, "deadline"),
       "gcl_unary_sync_timeout -> DEADLINE_EXCEEDED (%s)", err ? err : "-");
    free(err);
}

struct reent {
    gcl_t *g;
    int dones, msgs, chain, freed;
};

static void re_done_free(gcl_call_t *c, int code, const char *m, void *arg)
{
    struct reent *r = arg;
    r->dones++;
    if (r->g) {
        gcl_t *g = r->g;
        r->g = NULL;
        gcl_free(g);
        r->freed++;
    }
}

static void re_msg_free(gcl_call_t *c, const uint8_t *m, size_t len, void *arg)
{
    struct reent *r = arg;
    if (++r->msgs == 10 && r->g) {
        gcl_t *g = r->g;
        r->g = NULL;
        gcl_free(g);
        r->freed++;
    }
}

static void re_done_count(gcl_call_t *c, int code, const char *m, void *arg)
{
    ((struct reent *)arg)->dones++;
}

static void re_done_chain(gcl_call_t *c, int code, const char *m, void *arg)
{
    struct reent *r = arg;
    r->dones++;
    if (code == GRPC_OK && ++r->chain < 5)
        gcl_call_raw(r->g, "/test.Echo/Echo", "c", 1, NULL, re_done_chain, r, 3000);
}

static void test_reentrancy(void)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    struct reent r = {0};
    int never = 0;

    /* gcl_free from on_done while nghttp2 is reading */
    r.g = gcl_new(base, addr, NULL);
    gcl_call_raw(r.g, "/test.Echo/Echo", "a", 1, NULL, re_done_free, &r, 3000);
    gcl_call_raw(r.g, "/test.Echo/Hang", "", 0, NULL, re_done_free, &r, 3000);
    run_until(&r.dones, 2, 3000);
    ok(r.dones == 2 && r.freed == 1, "gcl_free inside on_done: every call ended once");
    run_until(&never, 1, 50);

    /* gcl_free from on_msg */
    memset(&r, 0, sizeof(r));
    r.g = gcl_new(base, addr, NULL);
    gcl_call_raw(r.g, "/test.Echo/Stream", "1000", 4, re_msg_free, re_done_count, &r, 3000);
    run_until(&r.dones, 1, 3000);
    ok(r.dones == 1 && r.freed == 1 && r.msgs == 10,
       "gcl_free inside on_msg: no more messages, done once (%d msgs)", r.msgs);
    run_until(&never, 1, 50);

    /* gcl_free from a deadline's on_done (timer context) */
    memset(&r, 0, sizeof(r));
    r.g = gcl_new(base, addr, NULL);
    gcl_call_raw(r.g, "/test.Echo/Hang", "", 0, NULL, re_done_free, &r, 100);
    gcl_call_raw(r.g, "/test.Echo/Hang", "", 0, NULL, re_done_free, &r, 0);
    run_until(&r.dones, 2, 3000);
    ok(r.dones == 2 && r.freed == 1, "gcl_free inside a deadline's on_done");
    run_until(&never, 1, 50);

    /* new calls from on_done */
    memset(&r, 0, sizeof(r));
    r.g = gcl_new(base, addr, NULL);
    gcl_call_raw(r.g, "/test.Echo/Echo", "c", 1, NULL, re_done_chain, &r, 3000);
    run_until(&r.dones, 5, 3000);
    is_int(r.chain, 5, "calls started from on_done chain on");
    gcl_free(r.g);

    /* gcl_free with a call whose connect is still under way */
    memset(&r, 0, sizeof(r));
    r.g = gcl_new(base, addr, NULL);
    gcl_call_raw(r.g, "/test.Echo/Echo", "x", 1, NULL, re_done_count, &r, 0);
    gcl_free(r.g);
    ok(r.dones == 1, "gcl_free right after gcl_call: done once");
    r.g = gcl_new(base, "unix:/nonexistent/x", NULL);
    gcl_call_raw(r.g, "/test.Echo/Echo", "x", 1, NULL, re_done_count, &r, 0);
    gcl_free(r.g);
    run_until(&never, 1, 50);
    ok(r.dones == 2, "gcl_free before a failed connect is reported: done once");
}

static void test_group(void)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    gcl_t *g = gcl_new(base, addr, NULL);
    struct res r[3];
    gcl_call_t *first = NULL;
    for (int i = 0; i < 3; i++) {
        res_init(&r[i]);
        gcl_call_t *c = gcl_call_raw(g, "/test.Echo/Group", "", 0, r_msg, r_done, &r[i], 3000);
        run_until(&r[i].nmsg, 1, 3000);
        if (i == 0)
            first = c;
    }
    gcl_call_cancel(first);
    run_until(&r[2].done, 1, 3000);
    run_until(&r[1].done, 1, 3000);
    ok(group_closes == 1 && r[1].code == GRPC_OK && r[2].code == GRPC_OK &&
           strcmp(r[1].msg, "group ended") == 0,
       "on_close of one call finishes the others");
    for (int i = 0; i < 3; i++)
        res_clear(&r[i]);

    group_closes = 0;
    for (int i = 0; i < 3; i++) {
        res_init(&r[i]);
        gcl_call_raw(g, "/test.Echo/Group", "", 0, r_msg, r_done, &r[i], 3000);
        run_until(&r[i].nmsg, 1, 3000);
    }
    gcl_free(g);
    int never = 0;
    run_until(&never, 1, 100);
    ok(group_closes == 1 && ngroup == 0, "connection loss: one on_close, the rest finished by it");
    for (int i = 0; i < 3; i++)
        res_clear(&r[i]);
}

static void test_ipv6(void)
{
    h2s_t *s6 = server_new();
    int r = h2s_listen(s6, "[::1]:0");
    if (r < 0) {
        ok(1, "# SKIP no IPv6 loopback here (%s)", strerror(-r));
        h2s_free(s6);
        return;
    }
    char addr[64];
    snprintf(addr, sizeof(addr), "[::1]:%d", h2s_port(s6));
    gcl_t *g = gcl_new(base, addr, NULL);
    struct res res;
    unary(g, "/test.Echo/Echo", "six", &res);
    ok(res.code == GRPC_OK && res.first && strcmp(res.first, "six") == 0, "IPv6 %s round trip",
       addr);
    res_clear(&res);
    gcl_free(g);
    h2s_free(s6);
}

/* sends a streaming request, then goes silent (no frames, no PING answers) until
   the server closes the connection, or 10 s */
static int c_silent(void *arg)
{
    struct raw_req rq = {.path = "/test.Echo/Hang", .ctype = "application/grpc"};
    uint8_t out[512], *p = out, hb[256], *h = hb;
    memcpy(p, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    p = put_frame(p + 24, 0, 4, 0, 0);
    hp_lit(&h, ":method", "POST", 4);
    hp_lit(&h, ":scheme", "http", 4);
    hp_lit(&h, ":path", rq.path, strlen(rq.path));
    hp_lit(&h, ":authority", "x", 1);
    hp_lit(&h, "content-type", rq.ctype, strlen(rq.ctype));
    p = put_frame(p, (size_t)(h - hb), 1, 4, 1);
    memcpy(p, hb, (size_t)(h - hb));
    p += h - hb;
    p = put_frame(p, 5, 0, 1, 1);
    memcpy(p, "\0\0\0\0\0", 5);
    p += 5;
    int fd = tcp_connect();
    if (fd < 0 || write(fd, out, (size_t)(p - out)) != p - out)
        return 10;
    int64_t end = mono_ns() + 10000000000LL;
    char buf[4096];
    while (mono_ns() < end) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) > 0 && read(fd, buf, sizeof(buf)) <= 0)
            break;
    }
    close(fd);
    return 0;
}

static void test_keepalive(void)
{
    /* client side: a "server" that accepts in the kernel and never speaks */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    bind(lfd, (struct sockaddr *)&a, sizeof(a));
    listen(lfd, 8);
    getsockname(lfd, (struct sockaddr *)&a, &al);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
    gcl_t *g = gcl_new(base, addr, NULL);
    gcl_set_keepalive(g, 200, 300);
    struct res r;
    res_init(&r);
    int64_t t0 = mono_ns();
    gcl_call_raw(g, "/test.Echo/Hang", "", 0, r_msg, r_done, &r, 0);
    run_until(&r.done, 1, 5000);
    int64_t ms = (mono_ns() - t0) / 1000000;
    ok(r.code == GRPC_UNAVAILABLE && r.msg && strstr(r.msg, "keepalive") && ms < 2000,
       "gcl keepalive: silent server -> UNAVAILABLE in %lldms (%s)", (long long)ms,
       r.msg ? r.msg : "-");
    res_clear(&r);
    gcl_free(g);
    close(lfd);

    /* server side: a client that goes silent with a call open */
    h2s_t *s = server_new();
    h2s_set_keepalive(s, 1, 1);
    h2s_listen(s, "127.0.0.1:0");
    int saved = port;
    port = h2s_port(s);
    hang_closed = 0;
    t0 = mono_ns();
    in_child(c_silent, NULL);
    ok(hang_closed == 1, "h2s keepalive: silent client's call closed (on_close ran)");
    ms = (hang_closed_at - t0) / 1000000;
    /* 2-3 s (PING after 1 s idle, close 1 s later, a 500 ms sweep) */
    ok(ms < 9000, "...after %lldms, before the client itself went away (10000ms)", (long long)ms);
    port = saved;
    h2s_free(s);
}

static void test_http(void)
{
    is_int(in_child(c_h1_healthz, NULL), 0, "HTTP/1.1 GET /healthz, keep-alive, 404, close");
    is_int(in_child(c_h1_abuse, NULL), 0, "HTTP/1.1 oversized head -> 431");
    is_int(
        in_child(c_h1_pipeline, NULL), 0,
        "HTTP/1.1: 400000 pipelined GETs, client stalls: server stops reading, then answers all");
    char cmd[512];
    if (have("curl")) {
        snprintf(cmd, sizeof(cmd),
                 "test \"$(curl -s --max-time 5 --http2-prior-knowledge "
                 "http://127.0.0.1:%d/healthz)\" = ok",
                 port);
        is_int(in_child(c_shell, cmd), 0, "curl --http2-prior-knowledge GET /healthz");
        snprintf(cmd, sizeof(cmd),
                 "test \"$(curl -s --max-time 5 -o /dev/null -w '%%{http_code}' "
                 "--http2-prior-knowledge http://127.0.0.1:%d/missing)\" = 404",
                 port);
        is_int(in_child(c_shell, cmd), 0, "curl h2 GET /missing -> 404");
        snprintf(cmd, sizeof(cmd),
                 "test \"$(curl -s --max-time 5 http://127.0.0.1:%d/healthz)\" = ok", port);
        is_int(in_child(c_shell, cmd), 0, "curl HTTP/1.1 GET /healthz");
    } else {
        ok(1, "# SKIP curl not installed");
        ok(1, "# SKIP curl not installed");
        ok(1, "# SKIP curl not installed");
    }
    if (have("nghttp")) {
        snprintf(cmd, sizeof(cmd), "test \"$(nghttp -t 5 http://127.0.0.1:%d/healthz)\" = ok",
                 port);
        is_int(in_child(c_shell, cmd), 0, "nghttp GET /healthz");
    } else {
        ok(1, "# SKIP nghttp not installed");
    }
    if (have("h2load")) {
        snprintf(cmd, sizeof(cmd),
                 "h2load -n 2000 -c 4 -m 10 http://127.0.0.1:%d/healthz "
                 "| grep -q '2000 succeeded'",
                 port);
        is_int(in_child(c_shell, cmd), 0, "h2load smoke: 2000 GETs succeed");
    } else {
        ok(1, "# SKIP h2load not installed");
    }
}

/* One curl command line (after "curl -s --max-time 5") whose output must be want. */
static void curl_expect(const char *args, const char *want, const char *name)
{
    char *cmd = xasprintf("o=\"$(curl -s --max-time 5 %s)\"; test \"$o\" = '%s' || "
                          "{ echo \"# got: $o\"; false; }",
                          args, want);
    ok(in_child(c_shell, cmd) == 0, "%s", name);
    free(cmd);
}

/* The request API (h2s_req_*) over both protocols, through curl. */
static void test_req(h2s_t *s)
{
    if (!have("curl")) {
        for (int i = 0; i < 11; i++)
            ok(1, "# SKIP curl not installed");
        return;
    }
    char a[512], u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d", port);
    snprintf(a, sizeof(a),
             "--http2-prior-knowledge -X PUT --data-binary hello -H 'x-test: t1' '%s/echo?a=1&b'",
             u);
    curl_expect(a, "PUT /echo a=1&b hello t1 2", "h2: method, path, query, body, header");
    snprintf(a, sizeof(a), "-H 'X-Test: t2' '%s/echo?q'", u);
    curl_expect(a, "GET /echo q  t2 1", "HTTP/1.1: method, path, query, header");
    snprintf(a, sizeof(a), "--http2-prior-knowledge -D - -o /dev/null %s/echo | grep -ci x-reply",
             u);
    curl_expect(a, "1", "h2: added response header");
    snprintf(a, sizeof(a), "-D - -o /dev/null %s/echo | grep -ci '^x-reply: yes'", u);
    curl_expect(a, "1", "HTTP/1.1: added response header");
    snprintf(a, sizeof(a), "--http2-prior-knowledge %s/stream | tr -d '\\n'", u);
    curl_expect(a, "abc", "h2: streamed answer in DATA frames");
    snprintf(a, sizeof(a), "%s/stream | tr -d '\\n'", u);
    curl_expect(a, "abc", "HTTP/1.1: streamed answer, chunked");
    snprintf(a, sizeof(a), "%s/later %s/stream %s/healthz | tr -d '\\n'", u, u, u);
    curl_expect(a, "lateabcok", "HTTP/1.1 keep-alive: later answers, then the next request");
    snprintf(a, sizeof(a), "--http2-prior-knowledge %s/later", u);
    curl_expect(a, "late", "h2: an answer from a timer");
    snprintf(a, sizeof(a),
             "--max-time 0.2 --http2-prior-knowledge %s/later?slow; "
             "curl -s --max-time 0.2 %s/later?slow; curl -s --http2-prior-knowledge %s/healthz",
             u, u, u);
    curl_expect(a, "ok",
                "clients gone before the answer (both protocols): on_close, still serving");
    /* one read in flight at most: a second one is turned away as Kubernetes does */
    h2s_set_inflight_limits(s, 1, 1, NULL);
    char *lim = xasprintf("curl -s --max-time 5 %s/later?slow >/dev/null & sleep 0.2; "
                          "o=$(curl -s --max-time 5 -D - -o /dev/null --http2-prior-knowledge "
                          "%s/healthz | grep -ci -e '^HTTP/2 429' -e '^retry-after: 1'); wait; "
                          "test \"$o\" = 2",
                          u, u);
    ok(in_child(c_shell, lim) == 0, "over the in-flight limit: 429 with Retry-After: 1");
    free(lim);
    /* a long-running request (a watch) holds no slot, nor is refused */
    h2s_set_req_long_running(s, long_running);
    lim = xasprintf("curl -s --max-time 5 '%s/later?slow&watch' >/dev/null & sleep 0.2; "
                    "o=$(curl -s --max-time 5 -o /dev/null -w '%%{http_code}' "
                    "--http2-prior-knowledge '%s/later?slow&watch')$(curl -s --max-time 5 "
                    "%s/healthz); wait; test \"$o\" = 200ok",
                    u, u, u);
    ok(in_child(c_shell, lim) == 0, "long-running requests: out of the in-flight limit");
    free(lim);
    h2s_set_req_long_running(s, NULL);
    h2s_set_inflight_limits(s, 0, 0, NULL);
    char *cmd = xasprintf("head -c 70000 /dev/zero | curl -s --max-time 5 --http2-prior-knowledge "
                          "-o /dev/null -w '%%{http_code}' --data-binary @- %s/echo",
                          u);
    char *t = xasprintf("test \"$(%s)\" = 413", cmd);
    is_int(in_child(c_shell, t), 0, "h2: a body over max_msg -> 413");
    free(t);
    free(cmd);
}

static void test_garbage(gcl_t *g)
{
    is_int(in_child(c_garbage_hello, NULL), 0, "\"hello\" -> connection closed");
    is_int(in_child(c_garbage_random, NULL), 0, "random bytes -> connection closed");
    is_int(in_child(c_garbage_truncated, NULL), 0, "truncated preface + EOF -> closed");
    is_int(in_child(c_garbage_frames, NULL), 0, "preface then junk frames -> closed");
    struct res r;
    unary(g, "/test.Echo/Echo", "still", &r);
    ok(r.code == GRPC_OK && r.first && strcmp(r.first, "still") == 0,
       "server still serves after garbage");
    res_clear(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_init("test_h2");
    if (getenv("H2_DEBUG"))
        log_set_level(LOG_LVL_DEBUG);
    base = event_base_new();
    h2s_t *s = server_new();
    ok(h2s_listen(s, "127.0.0.1:0") == 0, "listen on 127.0.0.1:0");
    port = h2s_port(s);
    ok(port > 0, "got a port (%d)", port);
    snprintf(unix_path, sizeof(unix_path), "/tmp/test_h2.%d.sock", (int)getpid());
    char uaddr[160];
    snprintf(uaddr, sizeof(uaddr), "unix:%s", unix_path);
    ok(h2s_listen(s, uaddr) == 0, "listen on %s", uaddr);
    ok(h2s_listen(s, "bogus") < 0, "bad listen address refused");

    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    gcl_t *g = gcl_new(base, addr, NULL);
    gcl_t *gu = gcl_new(base, uaddr, NULL);
    ok(g && gu, "clients made");
    is_str(gcl_addr(g), addr, "gcl_addr");

    test_basic(g, "tcp");
    test_basic(gu, "unix");
    test_errors(g);
    struct gcl_opts o = {.bearer_token = "sekrit"};
    test_headers(s, &o);
    test_warnings();
    test_cancel(g);
    test_bidi(g);
    test_concurrent(g);
    test_sync(gu);
    test_server_gone();
    test_failover();
    test_gcl_free_cancels();
    test_http();
    test_req(s);
    test_garbage(g);
    test_raw();
    test_big(g);
    test_reentrancy();
    test_group();
    test_ipv6();
    test_keepalive();
    test_limits();

    struct h2s_stats st;
    h2s_get_stats(s, &st);
    ok(st.calls_total > 1000 && st.conns_total > 5, "stats count (%llu calls, %llu conns)",
       (unsigned long long)st.calls_total, (unsigned long long)st.conns_total);
    run_until(&later_pending, 1 << 30, 50);

    gcl_free(g);
    gcl_free(gu);
    h2s_free(s);
    ok(access(unix_path, F_OK) != 0, "unix socket removed on free");
    event_base_free(base);
    return done_testing();
}
