/*
 * etcdcall: the etcd client (src/lib/etcd.c) driven line by line, for
 * t/39-etcd-client.t against real etcd members.
 *
 *   etcdcall [-c CA -C CERT -K KEY] [-t REQUEST_TIMEOUT_MS] ENDPOINT,...
 *
 * Reads one command a line from stdin, runs it, prints one answer line
 * (or "err CODE MESSAGE") before reading the next. Watches print what
 * they get whenever it comes:
 *   ev ID REV TYPE KEY VALUE MOD_REVISION PREV_VALUE|-
 *   progress ID REV
 *   ended ID CODE COMPACT_REVISION MESSAGE
 * Commands (keys and values without spaces; "-" is the empty value):
 *   put KEY VALUE              -> put REV
 *   get KEY [REV]              -> kvs REV MORE COUNT KEY=VALUE@MOD...
 *   prefix PREFIX LIMIT        -> kvs ... (a prefix range)
 *   del KEY | delprefix P      -> del REV DELETED PREV_KEY=VALUE...
 *   cas KEY MOD VALUE          -> txn SUCCEEDED REV RETRIED OPS... (put if mod_revision == MOD,
 *                                 else get: OPS are the failure branch's keys)
 *   compact REV                -> compacted REV
 *   status                     -> status REV MEMBER LEADER TERM
 *   endpoint                   -> endpoint URL
 *   watch ID KEY|KEY* REV PREVKV -> watching ID (KEY* watches the prefix)
 *   progress ID | cancel ID    -> progress-sent | cancelled
 *   loop-start | loop-stop     -> Range requests one after the other until stopped:
 *                                 looping | loop OK FAILED LAST_ERROR
 *   bench-range N | bench-txn N -> bench OP N SECONDS
 *   sleep MS                   -> slept
 *   reopen-in-cb               -> reopen-done CODE (etcd_free and etcd_new inside a Range's
 * callback) reopen-on-event ID         -> armed; the next event of watch ID does the same inside
 * the watch's callback instead of printing: "reopened ID"
 */
#include "config.h"
#include "etcd.h"
#include "grpc.h"
#include "tls.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WATCHES 16

static struct event_base *base;
static etcd_t *etcd;
static struct etcd_opts opts;
static char reopen_on_event[32]; /* the watch whose next event frees and remakes the client */
static struct bufferevent *in;
static int running; /* a command is under way */
static int in_eof;  /* stdin ended: quit once the commands read are done */
static struct {
    etcd_watch_t *w;
    char id[32];
} watches[MAX_WATCHES];
static struct {
    int on, inflight;
    long ok, failed;
    char last_err[512];
} loop;
static struct {
    const char *op;
    long left, n;
    int64_t t0;
} bench;

static void next_command(void);

static void done(void)
{
    running = 0;
    fflush(stdout);
    next_command();
}

static void print_kvs(const struct etcd_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf(" %.*s=%.*s@%lld", (int)kv[i].key_len, kv[i].key, (int)kv[i].value_len, kv[i].value,
               (long long)kv[i].mod_revision);
}

static int failed(int err, const char *msg)
{
    if (err == GRPC_OK)
        return 0;
    printf("err %d %s\n", err, msg);
    return 1;
}

static void range_cb(void *arg, int err, const char *msg, const struct etcd_range_resp *r)
{
    if (!failed(err, msg)) {
        printf("kvs %lld %d %lld", (long long)r->revision, r->more, (long long)r->count);
        print_kvs(r->kvs, r->n_kvs);
        printf("\n");
    }
    done();
}

static void txn_cb(void *arg, int err, const char *msg, const struct etcd_txn_resp *r)
{
    const char *what = arg;
    if (!failed(err, msg)) {
        if (strcmp(what, "put") == 0) {
            printf("put %lld\n", (long long)r->revision);
        } else if (strcmp(what, "del") == 0) {
            printf("del %lld %lld", (long long)r->revision,
                   (long long)(r->n_resps ? r->resps[0].deleted : -1));
            if (r->n_resps)
                print_kvs(r->resps[0].kvs, r->resps[0].n_kvs);
            printf("\n");
        } else {
            printf("txn %d %lld %d", r->succeeded, (long long)r->revision, r->retried);
            for (size_t i = 0; i < r->n_resps; i++)
                print_kvs(r->resps[i].kvs, r->resps[i].n_kvs);
            printf("\n");
        }
    }
    done();
}

static void compact_cb(void *arg, int err, const char *msg, int64_t rev)
{
    if (!failed(err, msg))
        printf("compacted %lld\n", (long long)rev);
    done();
}

static void status_cb(void *arg, int err, const char *msg, const struct etcd_status *st)
{
    if (!failed(err, msg))
        printf("status %lld %llx %llx %llu\n", (long long)st->revision,
               (unsigned long long)st->member_id, (unsigned long long)st->leader,
               (unsigned long long)st->raft_term);
    done();
}

/* ---- watches ---- */

static void reopen(void);

static void w_events(void *arg, int64_t rev, const struct etcd_event *ev, size_t n)
{
    const char *id = arg;
    if (n && strcmp(id, reopen_on_event) == 0) {
        reopen_on_event[0] = 0;
        reopen();
        printf("reopened %s\n", id);
        fflush(stdout);
        return;
    }
    if (n == 0)
        printf("progress %s %lld\n", id, (long long)rev);
    for (size_t i = 0; i < n; i++) {
        const struct etcd_event *e = &ev[i];
        printf("ev %s %lld %s %.*s %.*s %lld ", id, (long long)rev,
               e->type == ETCD_EV_PUT ? "PUT" : "DELETE", (int)e->kv.key_len, e->kv.key,
               e->kv.value_len ? (int)e->kv.value_len : 1,
               e->kv.value_len ? (const char *)e->kv.value : "-", (long long)e->kv.mod_revision);
        if (e->prev_kv.key_len)
            printf("%.*s\n", e->prev_kv.value_len ? (int)e->prev_kv.value_len : 1,
                   e->prev_kv.value_len ? (const char *)e->prev_kv.value : "-");
        else
            printf("-\n");
    }
    fflush(stdout);
}

static void w_ended(void *arg, int err, const char *msg, int64_t compact_rev)
{
    const char *id = arg;
    printf("ended %s %d %lld %s\n", id, err, (long long)compact_rev, msg);
    fflush(stdout);
    for (int i = 0; i < MAX_WATCHES; i++)
        if (watches[i].w && watches[i].id == id)
            watches[i].w = NULL;
}

static int watch_slot(const char *id)
{
    for (int i = 0; i < MAX_WATCHES; i++)
        if (watches[i].w && strcmp(watches[i].id, id) == 0)
            return i;
    return -1;
}

/* etcd_free and etcd_new again, from inside a callback: the old client's watches go without
 * a callback. */
static void reopen(void)
{
    char *err = NULL;
    etcd_free(etcd);
    for (int i = 0; i < MAX_WATCHES; i++)
        watches[i].w = NULL;
    etcd = etcd_new(base, &opts, &err);
    if (!etcd)
        fatal("etcdcall: %s", err);
}

static void reopen_cb(void *arg, int err, const char *msg, const struct etcd_range_resp *r)
{
    reopen();
    printf("reopen-done %d\n", err);
    done();
}

/* ---- the request loop and benches ---- */

static void loop_send(void);

static void loop_cb(void *arg, int err, const char *msg, const struct etcd_range_resp *r)
{
    loop.inflight = 0;
    if (err == GRPC_OK) {
        loop.ok++;
    } else {
        loop.failed++;
        snprintf(loop.last_err, sizeof(loop.last_err), "%d %s", err, msg);
    }
    if (loop.on)
        loop_send();
}

static void loop_send(void)
{
    struct etcd_range_req q = {.key = "loop", .key_len = 4};
    loop.inflight = 1;
    etcd_range(etcd, &q, loop_cb, NULL);
}

static void bench_send(void);

static void bench_range_cb(void *arg, int err, const char *msg, const struct etcd_range_resp *r)
{
    if (failed(err, msg)) {
        done();
        return;
    }
    bench_send();
}

static void bench_txn_cb(void *arg, int err, const char *msg, const struct etcd_txn_resp *r)
{
    if (failed(err, msg)) {
        done();
        return;
    }
    bench_send();
}

static void bench_send(void)
{
    if (bench.left-- == 0) {
        printf("bench %s %ld %.3f\n", bench.op, bench.n, (double)(mono_ns() - bench.t0) / 1e9);
        done();
        return;
    }
    if (strcmp(bench.op, "range") == 0) {
        struct etcd_range_req q = {.key = "bench", .key_len = 5};
        etcd_range(etcd, &q, bench_range_cb, NULL);
    } else {
        struct etcd_op op = {
            .type = ETCD_OP_PUT, .key = "bench", .key_len = 5, .value = "value", .value_len = 5};
        struct etcd_txn_req t = {.success = &op, .n_success = 1};
        etcd_txn(etcd, &t, bench_txn_cb, NULL);
    }
}

static void sleep_cb(evutil_socket_t fd, short what, void *arg)
{
    event_free(arg);
    printf("slept\n");
    done();
}

/* ---- commands ---- */

static const char *val(const char *v)
{
    return strcmp(v, "-") == 0 ? "" : v;
}

static void run(char **a, int n)
{
    static char end[512];
    const char *c = a[0];
    running = 1;
    if (strcmp(c, "put") == 0 && n == 3) {
        struct etcd_op op = {.type = ETCD_OP_PUT,
                             .key = a[1],
                             .key_len = strlen(a[1]),
                             .value = val(a[2]),
                             .value_len = strlen(val(a[2]))};
        struct etcd_txn_req t = {.success = &op, .n_success = 1};
        etcd_txn(etcd, &t, txn_cb, "put");
    } else if (strcmp(c, "get") == 0 && n >= 2) {
        struct etcd_range_req q = {.key = a[1], .key_len = strlen(a[1])};
        q.revision = n > 2 ? atoll(a[2]) : 0;
        etcd_range(etcd, &q, range_cb, NULL);
    } else if (strcmp(c, "prefix") == 0 && n == 3) {
        size_t len = strlen(a[1]);
        struct etcd_range_req q = {.key = a[1], .key_len = len, .range_end = end};
        q.range_end_len = etcd_prefix_end(a[1], len, (uint8_t *)end);
        q.limit = atoll(a[2]);
        etcd_range(etcd, &q, range_cb, NULL);
    } else if ((strcmp(c, "del") == 0 || strcmp(c, "delprefix") == 0) && n == 2) {
        size_t len = strlen(a[1]);
        struct etcd_op op = {.type = ETCD_OP_DELETE, .key = a[1], .key_len = len, .prev_kv = true};
        if (c[3]) {
            op.range_end = end;
            op.range_end_len = etcd_prefix_end(a[1], len, (uint8_t *)end);
        }
        struct etcd_txn_req t = {.success = &op, .n_success = 1};
        etcd_txn(etcd, &t, txn_cb, "del");
    } else if (strcmp(c, "cas") == 0 && n == 4) {
        struct etcd_cmp cmp = {.key = a[1],
                               .key_len = strlen(a[1]),
                               .target = ETCD_CMP_MOD,
                               .result = ETCD_CMP_EQUAL,
                               .number = atoll(a[2])};
        struct etcd_op put = {.type = ETCD_OP_PUT,
                              .key = a[1],
                              .key_len = strlen(a[1]),
                              .value = val(a[3]),
                              .value_len = strlen(val(a[3])),
                              .prev_kv = true};
        struct etcd_op get = {.type = ETCD_OP_RANGE, .key = a[1], .key_len = strlen(a[1])};
        struct etcd_txn_req t = {.cmp = &cmp,
                                 .n_cmp = 1,
                                 .success = &put,
                                 .failure = &get,
                                 .n_success = 1,
                                 .n_failure = 1};
        etcd_txn(etcd, &t, txn_cb, "cas");
    } else if (strcmp(c, "compact") == 0 && n == 2) {
        etcd_compact(etcd, atoll(a[1]), true, compact_cb, NULL);
    } else if (strcmp(c, "status") == 0) {
        etcd_status(etcd, status_cb, NULL);
    } else if (strcmp(c, "reopen-in-cb") == 0) {
        struct etcd_range_req q = {.key = "x", .key_len = 1};
        etcd_range(etcd, &q, reopen_cb, NULL);
    } else if (strcmp(c, "reopen-on-event") == 0 && n == 2) {
        snprintf(reopen_on_event, sizeof(reopen_on_event), "%s", a[1]);
        printf("armed\n");
        done();
    } else if (strcmp(c, "endpoint") == 0) {
        printf("endpoint %s\n", etcd_endpoint(etcd));
        done();
    } else if (strcmp(c, "watch") == 0 && n == 5) {
        int i = 0;
        while (i < MAX_WATCHES && watches[i].w)
            i++;
        size_t len = strlen(a[2]);
        int prefix = len && a[2][len - 1] == '*';
        struct etcd_watch_opts o = {.key = a[2], .key_len = len - (size_t)prefix};
        if (prefix) {
            o.range_end = end;
            o.range_end_len = etcd_prefix_end(a[2], o.key_len, (uint8_t *)end);
        }
        o.start_revision = atoll(a[3]);
        o.prev_kv = atoi(a[4]);
        struct etcd_watch_cbs cbs = {.events = w_events, .ended = w_ended};
        if (i == MAX_WATCHES) {
            printf("err 8 too many watches\n");
        } else {
            snprintf(watches[i].id, sizeof(watches[i].id), "%s", a[1]);
            watches[i].w = etcd_watch(etcd, &o, &cbs, watches[i].id);
            printf("watching %s\n", a[1]);
        }
        done();
    } else if ((strcmp(c, "progress") == 0 || strcmp(c, "cancel") == 0) && n == 2) {
        int i = watch_slot(a[1]);
        if (i < 0) {
            printf("err 5 no watch %s\n", a[1]);
        } else if (c[0] == 'p') {
            etcd_watch_progress(watches[i].w);
            printf("progress-sent\n");
        } else {
            etcd_watch_cancel(watches[i].w);
            watches[i].w = NULL;
            printf("cancelled\n");
        }
        done();
    } else if (strcmp(c, "loop-start") == 0) {
        loop.on = 1;
        if (!loop.inflight)
            loop_send();
        printf("looping\n");
        done();
    } else if (strcmp(c, "loop-stop") == 0) {
        loop.on = 0;
        printf("loop %ld %ld %s\n", loop.ok, loop.failed, loop.last_err[0] ? loop.last_err : "-");
        done();
    } else if (strncmp(c, "bench-", 6) == 0 && n == 2) {
        bench.op = strcmp(c + 6, "range") == 0 ? "range" : "txn";
        bench.n = bench.left = atol(a[1]);
        bench.t0 = mono_ns();
        bench_send();
    } else if (strcmp(c, "sleep") == 0 && n == 2) {
        struct event *ev = event_new(base, -1, 0, sleep_cb, event_self_cbarg());
        int ms = atoi(a[1]);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(ev, &tv);
    } else {
        printf("err 3 bad command: %s\n", c);
        done();
    }
}

static void next_command(void)
{
    char *line;
    size_t len;
    while (!running && (line = evbuffer_readln(bufferevent_get_input(in), &len, EVBUFFER_EOL_LF))) {
        char *a[8];
        int n = 0;
        for (char *s = strtok(line, " "); s && n < 8; s = strtok(NULL, " "))
            a[n++] = s;
        if (n && strcmp(a[0], "quit") == 0) {
            free(line);
            event_base_loopbreak(base);
            return;
        }
        if (n)
            run(a, n);
        free(line);
    }
    if (!running && in_eof)
        event_base_loopbreak(base);
}

static void in_read(struct bufferevent *bev, void *arg)
{
    next_command();
}

static void in_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        in_eof = 1;
        next_command();
    }
}

int main(int argc, char **argv)
{
    const char *ca = NULL, *cert = NULL, *key = NULL;
    int timeout = 0, opt;
    while ((opt = getopt(argc, argv, "c:C:K:t:")) != -1) {
        switch (opt) {
        case 'c':
            ca = optarg;
            break;
        case 'C':
            cert = optarg;
            break;
        case 'K':
            key = optarg;
            break;
        case 't':
            timeout = atoi(optarg);
            break;
        default:
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: etcdcall [-c CA -C CERT -K KEY] [-t MS] ENDPOINT,...\n");
        return 2;
    }
    log_init("etcdcall");
    base = event_base_new();
    const char *eps[8];
    size_t n_eps = 0;
    char *list = xstrdup(argv[optind]);
    for (char *s = strtok(list, ","); s && n_eps < 8; s = strtok(NULL, ","))
        eps[n_eps++] = s;
    char *err = NULL;
    SSL_CTX *tls = NULL;
    if (ca && !(tls = tls_client_ctx(ca, cert, key, &err))) {
        fprintf(stderr, "etcdcall: %s\n", err);
        return 2;
    }
    opts = (struct etcd_opts){
        .endpoints = eps, .n_endpoints = n_eps, .tls = tls, .request_timeout_ms = timeout};
    etcd = etcd_new(base, &opts, &err);
    if (!etcd) {
        printf("err 3 %s\n", err);
        free(err);
        free(list);
        return 1;
    }
    in = bufferevent_socket_new(base, 0, 0);
    bufferevent_setcb(in, in_read, NULL, in_event, NULL);
    bufferevent_enable(in, EV_READ);
    event_base_dispatch(base);
    bufferevent_free(in);
    etcd_free(etcd);
    SSL_CTX_free(tls);
    free(list);
    event_base_free(base);
    return 0;
}
