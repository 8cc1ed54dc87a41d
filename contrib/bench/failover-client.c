/*
 * failover-client: a client given several apiservers, as the scheduler,
 * the kubelet and coraclectl are (gcl's comma list of addresses), for
 * contrib/bench/run's failover measurement. It makes calls one after
 * another on one gcl_t, each started as soon as the previous one ended, a
 * failed one retried at once (gcl sends the retry to the next address),
 * and prints, with CLOCK_MONOTONIC times (Python's time.monotonic()):
 *
 *   ok T ADDR N     the first success after a change of address (ADDR the
 *                   apiserver that answered, N successes so far)
 *   fail T CODE     a call that failed (gRPC code), and why on stderr
 *   total ok=N failed=M inflight=I   on SIGTERM or SIGINT (I: a call was
 *                   under way, its create may have been applied), then exit 0
 *
 * The call is /coracle.v1.Pods/Create of the pod in --pod (a Pod with
 * generateName, serialized; a gRPC-framed body is accepted too).
 */
#include "config.h"
#include "gcl.h"
#include "grpc.h"
#include "util.h"

#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fc {
    struct event_base *base;
    gcl_t *g;
    uint8_t *body;
    size_t len;
    int timeout_ms;
    struct event *next_ev;
    char *last_addr; /* the apiserver that answered the last success */
    uint64_t ok, failed;
    bool inflight;
    bool stopping; /* gcl_free cancels the call in flight: not a failure */
};

static double now_s(void)
{
    return (double)mono_ns() / 1e9;
}

static void call_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct fc *fc = arg;
    (void)call;
    if (fc->stopping)
        return;
    fc->inflight = false;
    if (code == GRPC_OK) {
        fc->ok++;
        const char *a = gcl_addr(fc->g);
        if (!fc->last_addr || strcmp(fc->last_addr, a)) {
            free(fc->last_addr);
            fc->last_addr = xstrdup(a);
            printf("ok %.9f %s %" PRIu64 "\n", now_s(), a, fc->ok);
        }
    } else {
        fc->failed++;
        printf("fail %.9f %d\n", now_s(), code);
        fprintf(stderr, "failover-client: %s\n", message);
    }
    /* the next call from the loop, not from inside gcl's callback */
    event_active(fc->next_ev, EV_TIMEOUT, 0);
}

static void next_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fc *fc = arg;
    (void)fd;
    (void)what;
    fc->inflight = true;
    gcl_call_raw(fc->g, "/coracle.v1.Pods/Create", fc->body, fc->len, NULL, call_done, fc,
                 fc->timeout_ms);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    struct fc *fc = arg;
    (void)sig;
    (void)what;
    event_base_loopbreak(fc->base);
}

/* The request body: the file's bytes, without a gRPC frame header if it has one. */
static int load_body(struct fc *fc, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "failover-client: %s: %m\n", path);
        return -1;
    }
    fc->body = xmalloc(1 << 20);
    fc->len = fread(fc->body, 1, 1 << 20, f);
    fclose(f);
    const uint8_t *b = fc->body;
    if (fc->len >= 5 && b[0] == 0 &&
        ((size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4]) == fc->len - 5) {
        memmove(fc->body, fc->body + 5, fc->len - 5);
        fc->len -= 5;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct fc fc = {.timeout_ms = 5000};
    const char *addr = NULL, *pod = NULL;
    static const struct option lo[] = {
        {"addr", 1, 0, 'a'}, {"pod", 1, 0, 'p'}, {"timeout-ms", 1, 0, 't'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 'a':
            addr = optarg;
            break;
        case 'p':
            pod = optarg;
            break;
        case 't':
            fc.timeout_ms = atoi(optarg);
            break;
        default:
            addr = NULL;
            optind = argc;
            break;
        }
    }
    if (!addr || !pod) {
        fprintf(stderr, "usage: failover-client --addr HOST:PORT,HOST:PORT... --pod FILE "
                        "[--timeout-ms MS]\n");
        return 1;
    }
    if (load_body(&fc, pod) < 0)
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    fc.base = event_base_new();
    fc.g = gcl_new(fc.base, addr, NULL);
    if (!fc.g)
        return 1;
    fc.next_ev = event_new(fc.base, -1, 0, next_cb, &fc);
    struct event *term = evsignal_new(fc.base, SIGTERM, stop_cb, &fc);
    struct event *intr = evsignal_new(fc.base, SIGINT, stop_cb, &fc);
    event_add(term, NULL);
    event_add(intr, NULL);
    event_active(fc.next_ev, EV_TIMEOUT, 0);
    event_base_dispatch(fc.base);
    printf("total ok=%" PRIu64 " failed=%" PRIu64 " inflight=%d\n", fc.ok, fc.failed, fc.inflight);
    fc.stopping = true;
    gcl_free(fc.g);
    event_free(term);
    event_free(intr);
    event_free(fc.next_ev);
    event_base_free(fc.base);
    free(fc.last_addr);
    free(fc.body);
    return 0;
}
