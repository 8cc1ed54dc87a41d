/*
 * test_http1: h2s's HTTP/1.1 side (h2s_http1.c) through a real socket.
 * A blocking raw client in a forked child sends bytes (whole, or one byte a
 * write) and keeps what comes back in shared memory; the parent turns the
 * loop and checks the answers: methods, queries, headers, bodies
 * (Content-Length, chunked), pipelining in order behind an answer that
 * comes later, streamed (chunked) answers, the limits (413, 431), garbage
 * (400), slow clients, a client that goes away, upgrades (101, then the
 * connection's bytes are the handler's), and a server with no request
 * handler.
 */
#include "config.h"
#include "h2s.h"
#include "loopchild.h"
#include "tap.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_MSG 1024
#define GOT_MAX (256 * 1024)

static struct event_base *base;
static int port;
static char *got; /* shared with the child: what the server answered */
static size_t *got_len;
static int closed_calls;

/* ---------------------------------------------------------------- server side */

struct later {
    h2s_req_t *r;
    struct event *ev;
};

static void later_fire(evutil_socket_t fd, short what, void *arg)
{
    struct later *l = arg;
    h2s_req_respond(l->r, 200, "text/plain", "later\n", 6);
    event_free(l->ev);
    free(l);
}

static void hold_closed(h2s_req_t *r, void *arg)
{
    closed_calls++;
}

static int raw_closed;

/* The upgraded stream echoes what comes as "[...]"; "bye" in it closes. */
static void raw_read(h2s_raw_t *w, void *arg)
{
    char b[256];
    size_t n = h2s_raw_read(w, b, sizeof(b) - 1);
    b[n] = '\0';
    h2s_raw_write(w, "[", 1);
    h2s_raw_write(w, b, n);
    h2s_raw_write(w, "]", 1);
    if (strstr(b, "bye"))
        h2s_raw_close(w);
}

static void raw_gone(h2s_raw_t *w, const char *why, void *arg)
{
    raw_closed++;
}

static const struct h2s_raw_ops raw_ops = {.on_read = raw_read, .on_close = raw_gone};

/*
 * /echo answers "<method> <path> ?<query> h=<x-test> body=<body>";
 * /stream streams "a" and "bcd"; /later answers 50 ms later; /hold never.
 */
static void h_req(h2s_req_t *r, void *arg)
{
    const char *path = h2s_req_path(r);
    if (strcmp(path, "/echo") == 0) {
        size_t blen;
        const uint8_t *b = h2s_req_body(r, &blen);
        const char *h = h2s_req_header(r, "x-test");
        char *s = xasprintf("%s %s ?%s h=%s body=%.*s", h2s_req_method(r), path, h2s_req_query(r),
                            h ? h : "-", (int)blen, b ? (const char *)b : "");
        h2s_req_add_header(r, "X-Answer", "yes");
        h2s_req_add_header(r, "X-Evil", "a\r\nInjected: 1");
        h2s_req_respond(r, 200, "text/plain", s, strlen(s));
        free(s);
    } else if (strcmp(path, "/empty") == 0) {
        h2s_req_respond(r, 204, NULL, "x", 1);
    } else if (strcmp(path, "/stream") == 0) {
        h2s_req_start(r, 200, "application/json");
        h2s_req_send(r, "a", 1);
        rbuf_t *c = rbuf_new("bcd", 3);
        h2s_req_send_rbuf(r, c);
        rbuf_unref(c);
        h2s_req_end(r);
    } else if (strcmp(path, "/cut") == 0) {
        h2s_req_start(r, 200, "application/json");
        h2s_req_send(r, "a", 1);
        h2s_req_abort(r);
    } else if (strcmp(path, "/later") == 0) {
        struct later *l = xcalloc(1, sizeof(*l));
        l->r = r;
        l->ev = evtimer_new(base, later_fire, l);
        struct timeval tv = {0, 50000};
        evtimer_add(l->ev, &tv);
    } else if (strcmp(path, "/upgrade") == 0) {
        h2s_req_add_header(r, "X-Proto", "echo/1");
        if (!h2s_req_upgrade(r, "echo", &raw_ops, NULL))
            h2s_req_respond(r, 400, "text/plain", "no\n", 3);
    } else if (strcmp(path, "/hold") == 0) {
        h2s_req_on_close(r, hold_closed, NULL);
    } else {
        h2s_req_respond(r, 404, "text/plain", "nope\n", 5);
    }
}

/* ---------------------------------------------------------------- client side (a child) */

/* Runs fn in a child while the loop serves, with the server's capture emptied first. */
static int in_child(int (*fn)(void *), void *arg)
{
    *got_len = 0;
    got[0] = '\0';
    return loop_child(base, fn, arg);
}

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

/* Reads into got until EOF; 0, or 1 on a timeout. */
static int read_all(int fd)
{
    for (;;) {
        ssize_t r = read(fd, got + *got_len, GOT_MAX - 1 - *got_len);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET)
                break;
            return 1;
        }
        *got_len += (size_t)r;
        got[*got_len] = '\0';
        if (*got_len >= GOT_MAX - 1)
            break;
    }
    return 0;
}

struct send {
    const char *bytes;
    size_t len;   /* 0: strlen(bytes) */
    int bytewise; /* one byte a write, 1 ms apart */
    int shut;     /* half-close after sending */
};

static int c_send(void *arg)
{
    const struct send *s = arg;
    int fd = tcp_connect();
    if (fd < 0)
        return 10;
    size_t n = s->len ? s->len : strlen(s->bytes);
    if (s->bytewise) {
        for (size_t i = 0; i < n; i++) {
            if (write(fd, s->bytes + i, 1) != 1)
                return 11;
            usleep(1000);
        }
    } else if (write(fd, s->bytes, n) != (ssize_t)n) {
        return 11;
    }
    if (s->shut)
        shutdown(fd, SHUT_WR);
    int r = read_all(fd);
    close(fd);
    return r ? 12 : 0;
}

/* Sends the bytes; 0 if the exchange ended (the server closed), the answer in got. */
static int exchange(const char *bytes, int bytewise)
{
    struct send s = {.bytes = bytes, .bytewise = bytewise};
    return in_child(c_send, &s);
}

/* The n-th (from 0) occurrence of needle in got, or NULL. */
static const char *nth(const char *needle, int n)
{
    const char *p = got;
    for (int i = 0; p; i++) {
        p = strstr(p, needle);
        if (!p || i == n)
            return p;
        p += strlen(needle);
    }
    return NULL;
}

/* ---------------------------------------------------------------- tests */

static void test_requests(void)
{
    const char *post = "POST /echo?x=1&y=%20 HTTP/1.1\r\nHost: x\r\nX-Test: v\r\n"
                       "Content-Length: 5\r\nConnection: close\r\n\r\nhello";
    is_int(exchange(post, 1), 0, "POST byte by byte: exchange ends");
    ok(strstr(got, "HTTP/1.1 200 OK\r\n") && strstr(got, "Content-Length: 36\r\n") &&
           strstr(got, "\r\n\r\nPOST /echo ?x=1&y=%20 h=v body=hello"),
       "...method, raw path and query, header, body");
    ok(strstr(got, "X-Answer: yes\r\n") && !strstr(got, "Injected") &&
           strstr(got, "Connection: close\r\n"),
       "...added header sent, one with CRLF dropped, Connection: close");

    const char *chunked = "PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                          "Connection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n"
                          "Trailer: t\r\n\r\n";
    exchange(chunked, 0);
    ok(strstr(got, "\r\n\r\nPUT /echo ? h=- body=hello world") != NULL,
       "chunked body (extension, trailer) collected");
    exchange(chunked, 1);
    ok(strstr(got, "\r\n\r\nPUT /echo ? h=- body=hello world") != NULL,
       "chunked body byte by byte");

    exchange("HEAD /echo HTTP/1.1\r\nConnection: close\r\n\r\n", 0);
    ok(strstr(got, "HTTP/1.1 200 OK\r\n") && strstr(got, "Content-Length: 22\r\n") &&
           strstr(got, "\r\n\r\n")[4] == '\0',
       "HEAD: length, no body");

    exchange("OPTIONS /empty HTTP/1.1\r\nConnection: close\r\n\r\n", 0);
    ok(strncmp(got, "HTTP/1.1 204 No Content\r\n", 25) == 0 && !strstr(got, "Content-Length") &&
           strstr(got, "\r\n\r\n")[4] == '\0',
       "204: no length, no body");

    exchange("DELETE /nope HTTP/1.1\r\nConnection: close\r\n\r\n", 0);
    ok(strncmp(got, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "DELETE reaches the handler: 404");

    exchange("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
             "Connection: close\r\n\r\nhi",
             0);
    ok(strncmp(got, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 42) == 0 &&
           strstr(got, "body=hi"),
       "Expect: 100-continue answered before the answer");
}

static void test_pipeline(void)
{
    /* the first answer comes later: the ones behind it wait, in order */
    const char *reqs =
        "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
        "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        "GET /stream HTTP/1.1\r\n\r\n"
        "PATCH /echo?p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n"
        "GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n";
    is_int(exchange(reqs, 0), 0, "5 pipelined requests: exchange ends");
    const char *a = strstr(got, "\r\n\r\nlater\n");
    const char *b = a ? strstr(a, "body=abc") : NULL;
    const char *c =
        b ? strstr(b, "Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n3\r\nbcd\r\n0\r\n\r\n") : NULL;
    const char *d = c ? strstr(c, "PATCH /echo ?p h=- body=zz") : NULL;
    const char *e = d ? strstr(d, "GET /echo ? h=- body=") : NULL;
    ok(a && b && c && d && e, "answered in order: later, echo, chunked stream, echo, echo");
    ok(nth("HTTP/1.1 200 OK", 4) && !nth("HTTP/1.1 200 OK", 5) && nth("Connection: close", 0) &&
           !nth("Connection: close", 1),
       "five answers, the last one closes");
    is_int(exchange(reqs, 1), 0, "the same byte by byte");
    ok(strstr(got, "later\n") && strstr(got, "body=abc") && strstr(got, "body=zz") &&
           nth("HTTP/1.1 200 OK", 4),
       "...all five answered");

    exchange("GET /cut HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n", 0);
    ok(*got_len == 0, "a streamed answer aborted: the connection closes, nothing more read");

    exchange("GET /stream HTTP/1.0\r\n\r\n", 0);
    ok(strncmp(got, "HTTP/1.1 200 OK\r\n", 17) == 0 && !strstr(got, "chunked") &&
           strstr(got, "Connection: close\r\n") && strstr(got, "\r\n\r\nabcd") &&
           strstr(got, "\r\n\r\nabcd")[8] == '\0',
       "HTTP/1.0: streamed bare, then closed");
}

static void test_limits(void)
{
    exchange("POST /echo HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", 0);
    ok(strncmp(got, "HTTP/1.1 413 ", 13) == 0 && strstr(got, "Connection: close"),
       "Content-Length over max_msg: 413 and close");
    char big[3000];
    int n = snprintf(big, sizeof(big), "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 5; i++)
        n += snprintf(big + n, sizeof(big) - (size_t)n, "100\r\n%0256d\r\n", 0);
    exchange(big, 0);
    ok(strncmp(got, "HTTP/1.1 413 ", 13) == 0, "chunked body over max_msg: 413");
    exchange("POST /echo HTTP/1.1\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n", 0);
    ok(*got_len == 0, "a body of max_msg announced but not sent: no answer");
    char head[9000];
    n = snprintf(head, sizeof(head), "GET /echo HTTP/1.1\r\n");
    while (n < 8500)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "X-Pad: %050d\r\n", 0);
    snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    exchange(head, 0);
    ok(strncmp(got, "HTTP/1.1 431 ", 13) == 0, "8.5 KiB of headers: 431");
}

static void test_garbage(void)
{
    static const struct {
        const char *req, *why;
    } bad[] = {
        {"GET /echo HTTP/1.1\r\nNo colon here\r\n\r\n", "a header line without a colon"},
        {"GET /echo HTTP/2.1\r\n\r\n", "HTTP/2.1"},
        {"GET echo HTTP/1.1\r\n\r\n", "a target not starting with /"},
        {"GET http://evil/ HTTP/1.1\r\n\r\n", "an absolute target (proxying)"},
        {"POST /echo HTTP/1.1\r\nContent-Length: x\r\n\r\n", "a bad Content-Length"},
        {"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         "two Content-Lengths"},
        {"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "a bad chunk size"},
        {"GET /echo HTTP/1.1\r\nX: a\0b\r\n\r\n", "a NUL in a header"},
        {"GET /echo HTTP/1.1\r\nX:\0b\r\n\r\n", "a NUL first in a header value"},
        {"GET /e\x01 HTTP/1.1\r\n\r\n", "a control byte in the target"},
        {"GET /echo HTTP/1.1\r\nX\x01Y: v\r\n\r\n", "a control byte in a header name"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct send s = {.bytes = bad[i].req, .len = strlen(bad[i].req)};
        if (strstr(bad[i].why, "NUL")) /* the bytes go on after it */
            s.len += 1 + strlen(bad[i].req + s.len + 1);
        int st = in_child(c_send, &s);
        const char *why = strstr(got, "\r\n\r\nbad request: ");
        ok(st == 0 && strncmp(got, "HTTP/1.1 400 Bad Request\r\n", 26) == 0 && why,
           "%s: 400 and closed (%.*s)", bad[i].why, why ? (int)strcspn(why + 4, "\n") : 0,
           why ? why + 4 : "");
    }
    exchange("GET /echo HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\nBad\r\n\r\n", 0);
    ok(strncmp(got, "HTTP/1.1 200 OK\r\n", 17) == 0 && strstr(got, "HTTP/1.1 400 "),
       "a good request, then garbage: answered, then 400");
    exchange("CONNECT x:1 HTTP/1.1\r\n\r\n", 0);
    ok(*got_len == 0, "CONNECT: not sniffed as HTTP/1.1, closed");
}

static int c_slow(void *arg)
{
    int fd = tcp_connect();
    if (fd < 0)
        return 10;
    const char *s = arg;
    if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
        return 11;
    int64_t t0 = mono_ns();
    char b[256];
    ssize_t r;
    while ((r = read(fd, b, sizeof(b))) > 0)
        ;
    close(fd);
    int64_t ms = (mono_ns() - t0) / 1000000;
    /* closed by the sweep after the 1 s timeout, well before the client's 5 s */
    return r == 0 && ms >= 900 && ms < 4000 ? 0 : 12;
}

static void test_slow(void)
{
    is_int(in_child(c_slow, "GET /echo HTTP/1.1\r\nHost: x\r\n"), 0,
           "a head that never ends: closed after the timeout");
    is_int(in_child(c_slow, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"), 0,
           "a body that stalls: closed after the timeout");
}

static int c_hold(void *arg)
{
    int fd = tcp_connect();
    if (fd < 0)
        return 10;
    const char *s = "GET /hold HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n";
    if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
        return 11;
    usleep(200000);
    close(fd);
    return 0;
}

static void test_gone(h2s_t *s)
{
    closed_calls = 0;
    is_int(in_child(c_hold, NULL), 0, "a client goes away while its request is held");
    for (int i = 0; i < 100 && closed_calls == 0; i++)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    is_int(closed_calls, 1, "...on_close ran once");
    struct h2s_stats st;
    h2s_get_stats(s, &st);
    is_int(st.conns_open, 0, "...no connection left");
}

static void test_upgrade(void)
{
    is_int(
        exchange("GET /upgrade HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhi bye", 0),
        0, "upgrade: the server ends the stream");
    ok(!strcmp(got, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"
                    "X-Proto: echo/1\r\n\r\n[hi bye]"),
       "upgrade: 101, the handler's headers, then its bytes (input sent with the request)");
    exchange("GET /echo HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"
             "GET /echo HTTP/1.1\r\n\r\n",
             0);
    ok(nth("HTTP/1.1 200 OK\r\n", 0) && !nth("HTTP/1.1 200 OK\r\n", 1) &&
           strstr(got, "Connection: close\r\n"),
       "an Upgrade request answered plainly: the connection closes after the answer");
    int before = raw_closed;
    struct send sd = {.bytes =
                          "GET /upgrade HTTP/1.1\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n"
                          "hello",
                      .shut = 1};
    in_child(c_send, &sd);
    ok(strstr(got, "[hello]") && raw_closed == before + 1,
       "upgraded: the client's end reaches on_close once");
}

static void test_no_handler(void)
{
    struct h2s_config cfg = {.max_msg = MAX_MSG};
    h2s_t *s = h2s_new(base, &cfg);
    h2s_listen(s, "127.0.0.1:0");
    int saved = port;
    port = h2s_port(s);
    exchange("GET /healthz HTTP/1.1\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
             "HEAD /y HTTP/1.1\r\nConnection: close\r\n\r\n",
             0);
    ok(nth("HTTP/1.1 404 Not Found\r\n", 2) && nth("404 page not found\n", 1) &&
           !nth("404 page not found\n", 2),
       "no request handler: 404 for every request (HEAD without the body)");
    port = saved;
    h2s_free(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_LVL_WARN);
    got = mmap(NULL, GOT_MAX + sizeof(size_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
               -1, 0);
    got_len = (size_t *)(got + GOT_MAX);
    base = event_base_new();
    struct h2s_config cfg = {.max_msg = MAX_MSG, .handshake_timeout_s = 1};
    h2s_t *s = h2s_new(base, &cfg);
    h2s_set_req_handler(s, h_req, NULL);
    h2s_listen(s, "127.0.0.1:0");
    port = h2s_port(s);
    test_requests();
    test_pipeline();
    test_limits();
    test_garbage();
    test_slow();
    test_gone(s);
    test_upgrade();
    test_no_handler();
    h2s_free(s);
    event_base_free(base);
    done_testing();
    return tap_failed ? 1 : 0;
}
