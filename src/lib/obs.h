/*
 * obs: what a daemon shows its operator. A small local HTTP endpoint
 * (/healthz, /readyz, /metrics over HTTP/1.1 and h2c, served by h2s with
 * only its plain-HTTP handler), the Prometheus histogram every daemon's
 * /metrics uses (the apiserver's too), and reading the config file's
 * log-level again (the SIGHUP of daemon.c).
 * Everything runs on the caller's event loop.
 */
#ifndef CORACLE_OBS_H
#define CORACLE_OBS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct obs obs_t;

struct obs_ops {
    /* true when /readyz should answer 200; NULL: ready while not stopping. */
    bool (*ready)(void *arg);
    /* Writes the Prometheus text exposition (0.0.4) of the daemon's metrics. */
    void (*metrics)(FILE *f, void *arg);
    void *arg;
};

/*
 * Serves /healthz, /readyz and /metrics on addr ("host:port" or
 * "unix:/path"). Returns NULL with *err (malloc'd) if it cannot listen.
 * ops is copied. Also exports process_start_time_seconds and
 * coracle_build_info.
 */
obs_t *obs_start(struct event_base *base, const char *addr, const struct obs_ops *ops, char **err);
/* The TCP port listened on (useful with port 0), or 0. */
int obs_port(const obs_t *o);
/* /readyz answers 503 from now on (shutting down). */
void obs_set_stopping(obs_t *o);
void obs_free(obs_t *o);

/* ---- Prometheus text helpers ---- */

/* A cumulative histogram with fixed upper bounds (ascending, +Inf implied). */
struct obs_hist {
    const double *bounds;
    size_t n;
    uint64_t *counts; /* n + 1 buckets, not cumulative (the last is +Inf) */
    uint64_t count;
    double sum;
};
/* Latency buckets in seconds, 1 ms .. 60 s. */
extern const double obs_latency_buckets[];
extern const size_t obs_latency_nbuckets;

/* bounds (n of them) must outlive h; obs_hist_free frees what init allocates. */
void obs_hist_init(struct obs_hist *h, const double *bounds, size_t n);
/* One observation of v. */
void obs_hist_observe(struct obs_hist *h, double v);
/* count observations, each of value v (a batch sampled at once). */
void obs_hist_observe_n(struct obs_hist *h, double v, uint64_t count);
void obs_hist_free(struct obs_hist *h);
/*
 * Writes name_bucket{labels,le=".."}, name_sum, name_count. labels is
 * `method="Get"` or NULL. HELP/TYPE lines are the caller's.
 */
void obs_hist_write(FILE *f, const char *name, const char *labels, const struct obs_hist *h);

/* ---- configuration reload ---- */

/* The config file cfg_main() reads for this argv: --config, else def if readable, else NULL. */
const char *obs_config_path(int argc, char **argv, const char *def);
/*
 * SIGHUP (daemon.c): re-reads "log-level" from path and applies it. Returns
 * 1 if set, 0 if the file does not set it, -1 with *err (a bad file changes
 * nothing).
 */
int obs_reload_log_level(const char *path, char **err);

#endif
