/*
 * obs: the local /healthz, /readyz, /metrics endpoint of the scheduler and
 * the kubelet, Prometheus histograms, and the SIGHUP log-level reload.
 * See obs.h.
 */
#include "config.h"
#include "obs.h"

#include "h2s.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct obs {
    h2s_t *srv;
    struct obs_ops ops;
    bool stopping;
    double start_time;
};

static void obs_write_common(FILE *f, const obs_t *o)
{
    fprintf(f,
            "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
            "# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds %.3f\n"
            "# HELP coracle_build_info The version of this program.\n"
            "# TYPE coracle_build_info gauge\n"
            "coracle_build_info{version=\"%s\"} 1\n",
            o->start_time, PACKAGE_VERSION);
}

static void obs_answer(const char *path, int *status, const char **ctype, char **body,
                       size_t *body_len, void *arg)
{
    obs_t *o = arg;
    size_t pl = strcspn(path, "?");
    *ctype = "text/plain; charset=utf-8";
    if (pl == 8 && !strncmp(path, "/healthz", 8)) {
        *status = 200;
        *body = xstrdup("ok");
    } else if (pl == 7 && !strncmp(path, "/readyz", 7)) {
        bool ready = !o->stopping && (!o->ops.ready || o->ops.ready(o->ops.arg));
        *status = ready ? 200 : 503;
        *body = xstrdup(o->stopping ? "shutting down" : ready ? "ok" : "not ready");
    } else if (pl == 8 && !strncmp(path, "/metrics", 8)) {
        char *buf = NULL;
        size_t sz = 0;
        FILE *f = open_memstream(&buf, &sz);
        if (!f) {
            *status = 500;
            *body = xstrdup("out of memory");
        } else {
            if (o->ops.metrics)
                o->ops.metrics(f, o->ops.arg);
            obs_write_common(f, o);
            fclose(f);
            *status = 200;
            *ctype = "text/plain; version=0.0.4; charset=utf-8";
            *body = buf;
            *body_len = sz;
            return;
        }
    } else {
        *status = 404;
        *body = xstrdup("404 page not found\n");
    }
    *body_len = strlen(*body);
}

/* The request handler: /healthz, /readyz, /metrics. */
static void obs_http(h2s_req_t *r, void *arg)
{
    int status;
    const char *ctype;
    char *body;
    size_t len;
    obs_answer(h2s_req_path(r), &status, &ctype, &body, &len, arg);
    h2s_req_respond(r, status, ctype, body, len);
    free(body);
}

obs_t *obs_start(struct event_base *base, const char *addr, const struct obs_ops *ops, char **err)
{
    obs_t *o = xcalloc(1, sizeof(*o));
    if (ops)
        o->ops = *ops;
    o->start_time = (double)now_ns() / 1e9;
    struct h2s_config hc = {.max_conns = 64, .idle_timeout_s = 60};
    o->srv = h2s_new(base, &hc);
    h2s_set_req_handler(o->srv, obs_http, o);
    int rc = h2s_listen(o->srv, addr);
    if (rc < 0) {
        *err = xasprintf("cannot listen on %s: %s", addr, strerror(-rc));
        obs_free(o);
        return NULL;
    }
    return o;
}

int obs_port(const obs_t *o)
{
    return o ? h2s_port(o->srv) : 0;
}

void obs_set_stopping(obs_t *o)
{
    if (o)
        o->stopping = true;
}

void obs_free(obs_t *o)
{
    if (!o)
        return;
    h2s_free(o->srv);
    free(o);
}

/* ---- histograms ---- */

const double obs_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5,   1,      2.5,   5,    10,    30,   60};
const size_t obs_latency_nbuckets = ARRAY_SIZE(obs_latency_buckets);

void obs_hist_init(struct obs_hist *h, const double *bounds, size_t n)
{
    h->bounds = bounds;
    h->n = n;
    h->counts = xcalloc(n + 1, sizeof(*h->counts));
    h->count = 0;
    h->sum = 0;
}

void obs_hist_observe_n(struct obs_hist *h, double v, uint64_t count)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    h->counts[i] += count;
    h->count += count;
    h->sum += v * (double)count;
}

void obs_hist_observe(struct obs_hist *h, double v)
{
    obs_hist_observe_n(h, v, 1);
}

void obs_hist_free(struct obs_hist *h)
{
    free(h->counts);
    h->counts = NULL;
}

void obs_hist_write(FILE *f, const char *name, const char *labels, const struct obs_hist *h)
{
    const char *l = labels && *labels ? labels : "";
    const char *comma = *l ? "," : "";
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->n; i++) {
        cum += h->counts ? h->counts[i] : 0;
        if (i < h->n)
            fprintf(f, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, l, comma, h->bounds[i], cum);
        else
            fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, l, comma, cum);
    }
    if (*l) {
        fprintf(f, "%s_sum{%s} %.9g\n", name, l, h->sum);
        fprintf(f, "%s_count{%s} %" PRIu64 "\n", name, l, h->count);
    } else {
        fprintf(f, "%s_sum %.9g\n", name, h->sum);
        fprintf(f, "%s_count %" PRIu64 "\n", name, h->count);
    }
}

/* ---- configuration reload ---- */

const char *obs_config_path(int argc, char **argv, const char *def)
{
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    if (!config && def && access(def, R_OK) == 0)
        config = def;
    return config;
}

static char *obs_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int obs_reload_log_level(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, lvl = -1, at = 0;
    char *val = NULL;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue; /* cfg_load reported such lines at start; only log-level matters here */
        *eq = '\0';
        if (strcmp(obs_trim(line), "log-level"))
            continue;
        char *v = obs_trim(eq + 1);
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            v++;
        }
        free(val);
        val = xstrdup(v); /* the last occurrence wins, as in cfg_load */
        at = lineno;
    }
    fclose(f);
    if (!val)
        return 0;
    lvl = log_level_parse(val);
    if (lvl < 0) {
        *err = xasprintf("%s:%d: log-level: unknown level \"%s\" (error, warn, info, debug)", path,
                         at, val);
        free(val);
        return -1;
    }
    free(val);
    log_set_level((enum log_level)lvl);
    return 1;
}
