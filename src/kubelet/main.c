/*
 * coracle-kubelet: the node agent. Thin: reads the config, builds the
 * struct klet with one event loop and one API connection, starts the
 * Node/Lease heartbeat (node.c), the pod informer (watch.c) and runs the
 * loop. Everything else lives in libkubelet.a.
 */
#include "config.h"
#include "cfg.h"
#include "image.h"
#include "klet.h"
#include "obs.h"
#include "sdnotify.h"
#include "tunnel.h"
#include "util.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *config_path;
static obs_t *obs;

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    struct klet *k = arg;
    /* Containers keep running under their monitors; a restart re-adopts them. */
    log_info("signal received: exiting (containers keep running)");
    sdn_stopping();
    if (obs)
        obs_set_stopping(obs);
    event_base_loopbreak(k->base);
}

/* The token file's first line (trailing whitespace dropped); fatal if unreadable. */
static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fatal("token-file %s: %s", path, strerror(errno));
    char buf[4096] = "";
    if (!fgets(buf, sizeof buf, f))
        buf[0] = 0;
    fclose(f);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = 0;
    if (!n)
        fatal("token-file %s: empty", path);
    return xstrdup(buf);
}

static void on_hup(evutil_socket_t fd, short what, void *arg)
{
    obs_reload(config_path); /* log-level; the rest applies at restart */
}

static bool klet_ready(void *arg)
{
    const struct klet *k = arg;
    return k->synced;
}

/*
 * Pod start latency (Kubernetes' kubelet_pod_start_duration_seconds): from
 * the kubelet first seeing a pod to all its containers running, observed
 * once per pod by a 1 s sampler (and at each scrape). Pods older than this
 * kubelet (adopted after a restart) are not counted.
 */
static struct {
    int64_t started_ns;
    struct obs_hist hist;
    char **seen; /* uids already observed or skipped */
    size_t nseen;
    struct event *ev;
} pstart;

static bool pstart_seen(const char *uid)
{
    for (size_t i = 0; i < pstart.nseen; i++)
        if (!strcmp(pstart.seen[i], uid))
            return true;
    return false;
}

static void pstart_sample(evutil_socket_t fd, short what, void *arg)
{
    const struct klet *k = arg;
    for (size_t i = 0; i < pstart.nseen;) { /* forget pods that are gone */
        bool here = false;
        for (size_t j = 0; j < k->npods && !here; j++)
            here = !strcmp(k->pods[j]->uid, pstart.seen[i]);
        if (here) {
            i++;
            continue;
        }
        free(pstart.seen[i]);
        pstart.seen[i] = pstart.seen[--pstart.nseen];
    }
    for (size_t j = 0; j < k->npods; j++) {
        const struct klet_pod *p = k->pods[j];
        if (p->nctr == 0 || pstart_seen(p->uid))
            continue;
        bool all = true;
        int64_t last = 0;
        for (size_t c = 0; c < p->nctr && all; c++) {
            all = p->ctrs[c].state == KC_RUNNING;
            if (p->ctrs[c].started_ns > last)
                last = p->ctrs[c].started_ns;
        }
        if (!all)
            continue;
        if (p->start_ns >= pstart.started_ns) {
            double sec = (double)(last - p->start_ns) / 1e9;
            obs_hist_observe(&pstart.hist, sec < 0 ? 0 : sec);
        }
        pstart.seen = xrealloc(pstart.seen, (pstart.nseen + 1) * sizeof(*pstart.seen));
        pstart.seen[pstart.nseen++] = xstrdup(p->uid);
    }
}

/* STATUS= for systemctl status. */
static void describe(char *buf, size_t len, void *arg)
{
    const struct klet *k = arg;
    size_t running = 0;
    for (size_t i = 0; i < k->npods; i++)
        for (size_t j = 0; j < k->pods[i]->nctr; j++)
            running += k->pods[i]->ctrs[j].state == KC_RUNNING;
    snprintf(buf, len, "node %s: %zu pods, %zu containers running", k->cfg.node_name, k->npods,
             running);
}

/* Prometheus text: pods and containers by state, restarts, pod start latency. */
static void klet_metrics(FILE *f, void *arg)
{
    const struct klet *k = arg;
    static const char *const states[] = {"waiting", "creating", "running", "exited"};
    uint64_t n[4] = {0};
    uint64_t restarts = 0;
    for (size_t i = 0; i < k->npods; i++) {
        const struct klet_pod *p = k->pods[i];
        for (size_t j = 0; j < p->ninit + p->nctr; j++) {
            const struct klet_ctr *c = j < p->ninit ? &p->inits[j] : &p->ctrs[j - p->ninit];
            n[c->state]++;
            restarts += c->restarts;
        }
    }
    fprintf(f,
            "# HELP coracle_kubelet_pods Pods this kubelet runs.\n"
            "# TYPE coracle_kubelet_pods gauge\ncoracle_kubelet_pods %zu\n",
            k->npods);
    fprintf(f, "# HELP coracle_kubelet_containers Containers by state.\n"
               "# TYPE coracle_kubelet_containers gauge\n");
    for (size_t i = 0; i < 4; i++)
        fprintf(f, "coracle_kubelet_containers{state=\"%s\"} %llu\n", states[i],
                (unsigned long long)n[i]);
    fprintf(f,
            "# HELP coracle_kubelet_container_restarts Sum of restartCount over containers.\n"
            "# TYPE coracle_kubelet_container_restarts gauge\n"
            "coracle_kubelet_container_restarts %llu\n",
            (unsigned long long)restarts);
    size_t running_pods = 0;
    for (size_t i = 0; i < k->npods; i++) {
        const struct klet_pod *p = k->pods[i];
        size_t run = 0;
        for (size_t j = 0; j < p->nctr; j++)
            run += p->ctrs[j].state == KC_RUNNING;
        running_pods += p->nctr && run == p->nctr;
    }
    fprintf(f,
            "# HELP coracle_kubelet_running_pods Pods whose containers all run.\n"
            "# TYPE coracle_kubelet_running_pods gauge\ncoracle_kubelet_running_pods %zu\n"
            "# HELP coracle_kubelet_running_containers Containers running.\n"
            "# TYPE coracle_kubelet_running_containers gauge\n"
            "coracle_kubelet_running_containers %llu\n",
            running_pods, (unsigned long long)n[KC_RUNNING]);
    pstart_sample(-1, 0, arg);
    fprintf(f, "# HELP coracle_kubelet_pod_start_duration_seconds From the kubelet first seeing "
               "a pod to all its containers running.\n"
               "# TYPE coracle_kubelet_pod_start_duration_seconds histogram\n");
    obs_hist_write(f, "coracle_kubelet_pod_start_duration_seconds", NULL, &pstart.hist);
}

int main(int argc, char **argv)
{
    log_init("coracle-kubelet");
    static struct klet k;
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    k.cfg = (struct klet_cfg){
        .server = "127.0.0.1:6443",
        .node_name = host,
        .root_dir = "/var/lib/coracle/kubelet",
        .runtime = "/usr/sbin/runc",
        .image_dir = NULL,
        .monitor = NULL,
        .cni_conf_dir = NULL,
        .crashloop_base = 10,
        .crashloop_max = 300,
        .log_max_size = 10 * 1024 * 1024,
        .node_status_period = 60,
    };
    static char *ca = "", *cert = "", *key = "", *token_file = "";
    static char *healthz_listen = "127.0.0.1:10248";
    const struct cfg_opt opts[] = {
        {"server", CFG_STR, &k.cfg.server, "ADDR",
         "apiserver host:port or unix:/path (127.0.0.1:6443)"},
        {"node-name", CFG_STR, &k.cfg.node_name, "NAME", "this node's name (the hostname)"},
        {"root-dir", CFG_STR, &k.cfg.root_dir, "DIR",
         "state: pods, containers, runc root (/var/lib/coracle/kubelet)"},
        {"runtime", CFG_STR, &k.cfg.runtime, "PATH", "the OCI runtime, runc (/usr/sbin/runc)"},
        {"image-dir", CFG_STR, &k.cfg.image_dir, "DIR", "local image store (<root-dir>/images)"},
        {"monitor", CFG_STR, &k.cfg.monitor, "PATH",
         "coracle-monitor (next to the kubelet, else " LIBEXECDIR ")"},
        {"cni-conf-dir", CFG_STR, &k.cfg.cni_conf_dir, "DIR",
         "CNI network configs (unset: loopback only)"},
        {"crashloop-backoff-base", CFG_INT, &k.cfg.crashloop_base, "SECONDS",
         "first crash-loop back-off, doubling (10)"},
        {"crashloop-backoff-max", CFG_INT, &k.cfg.crashloop_max, "SECONDS",
         "crash-loop back-off cap (300)"},
        {"container-log-max-size", CFG_INT, &k.cfg.log_max_size, "BYTES",
         "container log rotation size (10485760)"},
        {"node-status-update-period", CFG_INT, &k.cfg.node_status_period, "SECONDS",
         "Node status refresh (60)"},
        {"certificate-authority", CFG_STR, &ca, "FILE",
         "CA bundle to verify the apiserver (TLS); unset: cleartext h2c"},
        {"client-certificate", CFG_STR, &cert, "FILE",
         "client certificate (CN system:node:<name>, O system:nodes)"},
        {"client-key", CFG_STR, &key, "FILE", "the client certificate's key"},
        {"token-file", CFG_STR, &token_file, "FILE", "bearer token for the apiserver (none)"},
        {"healthz-listen", CFG_STR, &healthz_listen, "ADDR",
         "serve /healthz, /readyz, /metrics on host:port or unix:/path; empty: off "
         "(127.0.0.1:10248)"},
    };
    const struct cfg_prog prog = {
        .name = "coracle-kubelet",
        .about = "coracle's node agent: runs the pods bound to this node with runc",
        .default_config = SYSCONFDIR "/coracle/coracle-kubelet.conf",
    };
    int rest = cfg_main(argc, argv, opts, ARRAY_SIZE(opts), &prog);
    if (rest < argc) {
        fprintf(stderr, "coracle-kubelet: unexpected argument \"%s\" (see --help)\n", argv[rest]);
        return 2;
    }
    config_path = obs_config_path(argc, argv, prog.default_config);
    if (k.cfg.crashloop_base < 1)
        k.cfg.crashloop_base = 1;
    if (k.cfg.crashloop_max < k.cfg.crashloop_base)
        k.cfg.crashloop_max = k.cfg.crashloop_base;
    if (!k.cfg.image_dir)
        k.cfg.image_dir = xasprintf("%s/images", k.cfg.root_dir);

    if (access(k.cfg.runtime, X_OK) < 0)
        fatal("runtime %s: %s", k.cfg.runtime, strerror(errno));
    static const char *const sub[] = {"", "/pods", "/containers", "/runc"};
    for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
        char *d = xasprintf("%s%s", k.cfg.root_dir, sub[i]);
        if (mkdir(d, 0700) < 0 && errno != EEXIST)
            fatal("mkdir %s: %s", d, strerror(errno));
        free(d);
    }
    k.runc_root = xasprintf("%s/runc", k.cfg.root_dir);
    k.host_ip = klet_node_host_ip();
    k.base = event_base_new();
    if (!k.base)
        fatal("event_base_new failed");
    struct gcl_opts gopts = {0};
    char *token = *token_file ? read_token(token_file) : NULL;
    char *err = NULL;
    if (gcl_opts_setup(&gopts, k.cfg.server, ca, cert, key, token, &err) < 0)
        fatal("%s", err);
    k.api = gcl_new(k.base, k.cfg.server, &gopts);
    if (gopts.tls)
        SSL_CTX_free(gopts.tls); /* gcl holds its own reference */
    if (!k.api)
        fatal("bad server address \"%s\"", k.cfg.server);

    img_store_t *store = NULL;
    if (img_store_open(k.cfg.image_dir, IMG_STORE_CREATE, &store, &err) == 0) {
        img_import_dropin(store);
        img_store_close(store);
    } else {
        log_warn("image store %s: %s", k.cfg.image_dir, err ? err : "cannot open");
        free(err);
    }

    klet_proc_init(&k);
    klet_monitor_init(&k);
    klet_node_start(&k);
    klet_watch_start(&k);
    /* Logs and exec reach us through a stream we open (no inbound port). */
    struct ktun_opts topts = {
        .node = k.cfg.node_name,
        .runc = k.cfg.runtime,
        .resolve = klet_pods_resolve,
        .arg = &k,
    };
    ktun_t *tun = ktun_start(k.base, k.api, &topts);
    struct event *t1 = evsignal_new(k.base, SIGTERM, on_term, &k);
    struct event *t2 = evsignal_new(k.base, SIGINT, on_term, &k);
    event_add(t1, NULL);
    event_add(t2, NULL);
    struct event *t3 = evsignal_new(k.base, SIGHUP, on_hup, &k);
    event_add(t3, NULL);
    struct event *wd = sdn_watchdog_start(k.base);
    if (*healthz_listen) {
        /* Not fatal: running pods matters more than the health endpoint. */
        struct obs_ops ops = {.ready = klet_ready, .metrics = klet_metrics, .arg = &k};
        obs = obs_start(k.base, healthz_listen, &ops, &err);
        if (!obs) {
            log_warn("healthz-listen: %s; serving no /healthz, /readyz, /metrics", err);
            free(err);
            err = NULL;
        } else {
            pstart.started_ns = now_ns();
            obs_hist_init(&pstart.hist, obs_latency_buckets, obs_latency_nbuckets);
            pstart.ev = event_new(k.base, -1, EV_PERSIST, pstart_sample, &k);
            struct timeval sec = {1, 0};
            event_add(pstart.ev, &sec);
        }
    }
    log_info("node %s: server %s, root %s, images %s", k.cfg.node_name, k.cfg.server,
             k.cfg.root_dir, k.cfg.image_dir);
    sdn_ready("running");
    sdn_status_t *status = sdn_status_start(k.base, 10, describe, &k);
    event_base_dispatch(k.base);
    sdn_status_free(status);
    if (wd)
        event_free(wd);
    event_free(t1);
    event_free(t2);
    event_free(t3);
    ktun_free(tun);
    obs_free(obs);
    if (pstart.ev)
        event_free(pstart.ev);
    obs_hist_free(&pstart.hist);
    for (size_t i = 0; i < pstart.nseen; i++)
        free(pstart.seen[i]);
    free(pstart.seen);
    gcl_free(k.api);
    free(token);
    event_base_free(k.base);
    return 0;
}
