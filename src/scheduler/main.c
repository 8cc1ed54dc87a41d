/*
 * coracle-scheduler: places pending pods on nodes (doc/man/coracle-scheduler.8). main()
 * only reads the configuration and builds the scheduler on one loop; the
 * scheduler itself is sched.c, what it shows its operator metrics.c, and
 * signals, systemd notification and the health endpoint daemon.c.
 */
#include "config.h"

#include "cfg.h"
#include "daemon.h"
#include "gcl.h"
#include "leader.h"
#include "obs.h"
#include "sched.h"
#include "util.h"

#include <openssl/ssl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "1s", "200ms", "1.5s", "2m" or plain seconds -> ms; -1 if bad. */
static long long parse_duration_ms(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    double mul = 1000;
    if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s") || !*end)
        mul = 1000;
    else if (!strcmp(end, "m"))
        mul = 60000;
    else
        return -1;
    return (long long)(v * mul + 0.5);
}

/* What the daemon hooks and the election callbacks need. */
struct sched_main {
    sched_t *s;
    leader_t *el; /* NULL without --leader-elect */
};

static void sched_main_describe(char *buf, size_t len, void *arg)
{
    struct sched_main *m = arg;
    sched_describe(buf, len, m->s);
}

static void sched_main_metrics(FILE *f, void *arg)
{
    struct sched_main *m = arg;
    sched_metrics_write(f, m->s);
    if (m->el)
        leader_metrics_write(f, m->el);
}

static void elected(void *arg)
{
    sched_lead(arg);
}

/* As kube-scheduler: a scheduler that may no longer be the leader exits, and is restarted. */
static void lost(void *arg)
{
    fatal("leaderelection lost");
}

int main(int argc, char **argv)
{
    /* static: cfg_set's copies stay reachable for the life of the program */
    static char *server = "127.0.0.1:6443", *name = "default-scheduler";
    static char *backoff_initial = "1s", *backoff_max = "10s", *token_file = "";
    static char *ca = "", *cert = "", *key = "";
    static char *healthz_listen = "127.0.0.1:10251";
    static long long max_inflight = 500, pct = 0;
    static struct leader_flags le = LEADER_FLAGS_INIT("coracle-scheduler");
    const struct cfg_opt opts[] = {
        {"server", CFG_STR, &server, "ADDR",
         "apiserver address, host:port or unix:/path, or a comma list of them "
         "(failover; default 127.0.0.1:6443)"},
        {"scheduler-name", CFG_STR, &name, "NAME",
         "schedule pods whose spec.schedulerName is NAME or empty (default default-scheduler)"},
        {"backoff-initial", CFG_STR, &backoff_initial, "DURATION",
         "first backoff of a pod that failed (default 1s)"},
        {"backoff-max", CFG_STR, &backoff_max, "DURATION", "longest backoff (default 10s)"},
        {"max-inflight", CFG_INT, &max_inflight, "N",
         "API calls (binds, events, status updates) in flight at most (default 500)"},
        {"percentage-of-nodes-to-score", CFG_INT, &pct, "PCT",
         "share of nodes to find feasible before scoring; 0 = adaptive as Kubernetes (default 0)"},
        {"certificate-authority", CFG_STR, &ca, "FILE",
         "CA to verify the apiserver's certificate with; set: TLS (default none: cleartext)"},
        {"client-certificate", CFG_STR, &cert, "FILE",
         "TLS client certificate, CN system:kube-scheduler (default none)"},
        {"client-key", CFG_STR, &key, "FILE", "its private key (default none)"},
        {"token-file", CFG_STR, &token_file, "FILE",
         "bearer token to present to the apiserver (default none)"},
        LEADER_CFG_OPTS(le, "schedulers", "coracle-scheduler"),
        {"healthz-listen", CFG_STR, &healthz_listen, "ADDR",
         "serve /healthz, /readyz, /metrics on host:port or unix:/path; empty: off "
         "(default 127.0.0.1:10251)"},
    };
    const struct cfg_prog prog = {
        "coracle-scheduler",
        "Places pending pods on nodes: filters, scores, binds; driven by watches.",
        SYSCONFDIR "/coracle/coracle-scheduler.conf",
    };
    int i = cfg_main(argc, argv, opts, ARRAY_SIZE(opts), &prog);
    if (i < argc) {
        fprintf(stderr, "coracle-scheduler: unexpected argument \"%s\" (see --help)\n", argv[i]);
        return 2;
    }
    long long bi = parse_duration_ms(backoff_initial), bm = parse_duration_ms(backoff_max);
    if (bi <= 0 || bm <= 0 || bm < bi) {
        fprintf(stderr, "coracle-scheduler: --backoff-initial/--backoff-max: expected durations "
                        "like 1s or 500ms with initial <= max\n");
        return 2;
    }
    if (max_inflight <= 0 || pct < 0 || pct > 100) {
        fprintf(stderr, "coracle-scheduler: --max-inflight must be > 0 and "
                        "--percentage-of-nodes-to-score within 0..100\n");
        return 2;
    }
    srandom((unsigned)(mono_ns() ^ getpid()));

    struct event_base *base = event_base_new();
    if (!base)
        fatal("cannot create the event loop");
    char *token = NULL, *err = NULL;
    if (*token_file && daemon_read_token(token_file, &token, &err) < 0)
        fatal("%s", err);
    struct gcl_opts gopts = {0};
    if (gcl_opts_setup(&gopts, server, ca, cert, key, token, &err) < 0)
        fatal("%s", err);
    struct sched_cfg cfg = {
        .server = server,
        .name = name,
        .backoff_initial_ms = (int)bi,
        .backoff_max_ms = (int)bm,
        .max_inflight = (int)max_inflight,
        .percentage_nodes = (int)pct,
        .token = token,
        .tls = gopts.tls,
        .standby = le.elect,
    };
    struct sched_main m = {sched_new(base, &cfg), NULL};
    sched_t *s = m.s;
    gcl_t *eg = NULL; /* the election's own connection: renewals stay clear of binds */
    if (s)
        m.el =
            leader_from_flags(base, prog.name, server, gopts, "coracle-scheduler/" PACKAGE_VERSION,
                              &le, name, elected, lost, s, &eg);
    if (gopts.tls)
        SSL_CTX_free(gopts.tls); /* the connections hold their own references */
    if (!s)
        fatal("bad --server \"%s\"", server);
    struct daemon_ops ops = {
        .describe = sched_main_describe,
        .metrics = sched_main_metrics,
        .arg = &m,
    };
    daemon_t *d = daemon_new(base, obs_config_path(argc, argv, prog.default_config), &ops);
    daemon_serve_health(d, healthz_listen); /* not fatal: scheduling matters more */

    log_info("coracle-scheduler %s: server %s%s, scheduler name %s", PACKAGE_VERSION, server,
             gopts.tls ? " (TLS)" : "", name);
    sched_start(s);
    if (m.el) {
        log_info("leader election: lease %s/%s, identity %s", le.ns, le.name,
                 leader_identity(m.el));
        leader_start(m.el);
    }
    daemon_run(d, "scheduling");

    daemon_free(d);
    sched_free(s); /* no bind goes out once the Lease is given up */
    leader_release(m.el, 2000);
    leader_free(m.el);
    gcl_free(eg);
    event_base_free(base);
    free(token);
    return 0;
}
