/*
 * getprobe: measures how long the apiserver makes a small call wait. It
 * sends one Pods.Get at a time (namespace and name given) with gcl, on a
 * connection of its own, until STOPFILE exists or MAX calls are done, then
 * prints one line:
 *   n=<calls> errors=<calls not OK> p50=<ms> p99=<ms> max=<ms>
 * A separate process, so that the figures are the server's and the
 * network's, not a Python client's (t/70-sec-loop-bound.t).
 *   getprobe ADDR NAMESPACE NAME STOPFILE MAX
 */
#include "config.h"
#include "coracle.pb-c.h"
#include "gcl.h"
#include "util.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct probe {
    gcl_t *g;
    struct event_base *base;
    uint8_t *req;
    size_t req_len;
    const char *stop;
    size_t max, n, errors;
    int64_t *lat, t0;
};

static void send_one(struct probe *p);

static void on_done(gcl_call_t *c, int code, const char *message, void *arg)
{
    struct probe *p = arg;
    p->lat[p->n++] = mono_ns() - p->t0;
    if (code)
        p->errors++;
    if (p->n == p->max || access(p->stop, F_OK) == 0)
        event_base_loopbreak(p->base);
    else
        send_one(p);
}

static void send_one(struct probe *p)
{
    p->t0 = mono_ns();
    gcl_call_raw(p->g, "/coracle.v1.Pods/Get", p->req, p->req_len, NULL, on_done, p, 60000);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: getprobe ADDR NAMESPACE NAME STOPFILE MAX\n");
        return 2;
    }
    log_init("getprobe");
    struct probe p = {.stop = argv[4], .max = strtoul(argv[5], NULL, 10)};
    if (!p.max)
        return 2;
    p.lat = xcalloc(p.max, sizeof(*p.lat));
    p.base = event_base_new();
    p.g = gcl_new(p.base, argv[1], NULL);
    if (!p.g)
        return 2;
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.namespace_ = argv[2];
    req.name = argv[3];
    p.req_len = protobuf_c_message_get_packed_size(&req.base);
    p.req = xmalloc(p.req_len + 1);
    protobuf_c_message_pack(&req.base, p.req);
    send_one(&p);
    event_base_dispatch(p.base);
    qsort(p.lat, p.n, sizeof(*p.lat), cmp64);
    printf("n=%zu errors=%zu p50=%.3f p99=%.3f max=%.3f\n", p.n, p.errors,
           p.n ? (double)p.lat[p.n / 2] / 1e6 : 0, p.n ? (double)p.lat[p.n * 99 / 100] / 1e6 : 0,
           p.n ? (double)p.lat[p.n - 1] / 1e6 : 0);
    gcl_free(p.g);
    event_base_free(p.base);
    free(p.lat);
    free(p.req);
    return 0;
}
