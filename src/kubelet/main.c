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
        struct obs_ops ops = {.ready = klet_ready, .metrics = klet_metrics_write, .arg = &k};
        obs = obs_start(k.base, healthz_listen, &ops, &err);
        if (!obs) {
            log_warn("healthz-listen: %s; serving no /healthz, /readyz, /metrics", err);
            free(err);
            err = NULL;
        } else {
            klet_metrics_start(&k);
        }
    }
    log_info("node %s: server %s, root %s, images %s", k.cfg.node_name, k.cfg.server,
             k.cfg.root_dir, k.cfg.image_dir);
    sdn_ready("running");
    sdn_status_t *status = sdn_status_start(k.base, 10, klet_describe, &k);
    event_base_dispatch(k.base);
    sdn_status_free(status);
    if (wd)
        event_free(wd);
    event_free(t1);
    event_free(t2);
    event_free(t3);
    ktun_free(tun);
    obs_free(obs);
    klet_metrics_stop(&k);
    gcl_free(k.api);
    free(token);
    event_base_free(k.base);
    return 0;
}
