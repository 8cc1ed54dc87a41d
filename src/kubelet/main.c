/*
 * coracle-kubelet: the node agent. Thin: reads the config, builds the
 * struct klet with one event loop and one API connection, starts the
 * Node/Lease heartbeat (node.c), the pod informer (watch.c) and runs the
 * loop. Everything else lives in libkubelet.a.
 */
#include "config.h"
#include "addr.h"
#include "certs.h"
#include "cfg.h"
#include "daemon.h"
#include "dns.h"
#include "image.h"
#include "klet.h"
#include "oci.h"
#include "obs.h"
#include "netpol.h"
#include "proxy.h"
#include "tunnel.h"
#include "util.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* SIGTERM/SIGINT: the loop ends at once; say what stays. */
static void klet_stop(void *arg)
{
    log_info("containers keep running under their monitors; a restart re-adopts them");
}

#define MAX_SERVERS 16

/*
 * The connections the tunnels use: with one apiserver address, the
 * kubelet's own (api); with several, one per address (each fails over to
 * nothing: it follows its own apiserver as it comes and goes).
 */
static size_t tunnel_clients(struct event_base *base, const char *servers, const struct gcl_opts *o,
                             gcl_t **out, gcl_t *api)
{
    if (!strchr(servers, ',')) {
        out[0] = api;
        return 1;
    }
    char *list = xstrdup(servers), *save = NULL;
    size_t n = 0;
    for (char *a = strtok_r(list, ",", &save); a && n < MAX_SERVERS;
         a = strtok_r(NULL, ",", &save)) {
        gcl_t *g = *a ? gcl_new(base, a, o) : NULL;
        if (g)
            out[n++] = g;
    }
    free(list);
    return n;
}

/* The image GC flags, checked as Kubernetes' kubelet checks its configuration. */
static void image_gc_flags(struct klet *k, const char *min_age, const char *max_age,
                           const char *period)
{
    if (k->cfg.image_gc_high < 0 || k->cfg.image_gc_high > 100)
        fatal("invalid configuration: imageGCHighThresholdPercent (--image-gc-high-threshold) "
              "%lld must be between 0 and 100, inclusive",
              k->cfg.image_gc_high);
    if (k->cfg.image_gc_low < 0 || k->cfg.image_gc_low > 100)
        fatal("invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) "
              "%lld must be between 0 and 100, inclusive",
              k->cfg.image_gc_low);
    if (k->cfg.image_gc_low >= k->cfg.image_gc_high)
        fatal("invalid configuration: imageGCLowThresholdPercent (--image-gc-low-threshold) "
              "%lld must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) "
              "%lld",
              k->cfg.image_gc_low, k->cfg.image_gc_high);
    if (parse_duration(min_age, &k->imggc.min_age) < 0)
        fatal("--image-minimum-gc-age: \"%s\" is not a duration (2m)", min_age);
    if (parse_duration(max_age, &k->imggc.max_age) < 0)
        fatal("--image-maximum-gc-age: \"%s\" is not a duration (0s)", max_age);
    if (parse_duration(period, &k->imggc.period) < 0 || k->imggc.period <= 0)
        fatal("--image-gc-period: \"%s\" is not a positive duration (5m)", period);
    if (k->imggc.max_age > 0 && k->imggc.max_age < k->imggc.min_age)
        fatal("invalid configuration: imageMaximumGCAge %s must not be less than "
              "imageMinimumGCAge %s",
              max_age, min_age);
}

int main(int argc, char **argv)
{
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
        .pod_network = NULL,
        .pod_cidr = "",
        .bridge = "cni0",
        .crashloop_base = 10,
        .crashloop_max = 300,
        .log_max_size = 10 * 1024 * 1024,
        .node_status_period = 60,
        .node_status_report = 300,
        .allow_privileged = 1,
        .allowed_unsafe_sysctls = "",
        .node_ip = "",
        .pod_network_mode = "",
        .cluster_cidr = "",
        .vxlan_vni = 1,
        .vxlan_port = 8472,
        .proxy_mode = "none",
        .masquerade_all = 0,
        .image_gc_high = 85,
        .image_gc_low = 80,
        .cluster_dns = "",
        .cluster_domain = "cluster.local",
        .resolv_conf = "/etc/resolv.conf",
        .registry_config_dir = OCI_HOSTS_DIR,
        .image_credentials_file = "",
    };
    static char *image_min_age = "2m", *image_max_age = "0s", *image_gc_period = "5m";
    static char *ca = "", *cert = "", *key = "", *token_file = "";
    static char *join_token = "", *ca_cert_hash = "";
    static char *healthz_listen = "127.0.0.1:10248";
    static int cleanup = 0;
    const struct cfg_opt opts[] = {
        {"server", CFG_STR, &k.cfg.server, "ADDR",
         "apiserver host:port or unix:/path, or a comma list (failover; 127.0.0.1:6443)"},
        {"node-name", CFG_STR, &k.cfg.node_name, "NAME", "this node's name (the hostname)"},
        {"root-dir", CFG_STR, &k.cfg.root_dir, "DIR",
         "state: pods, containers, runc root (/var/lib/coracle/kubelet)"},
        {"runtime", CFG_STR, &k.cfg.runtime, "PATH", "the OCI runtime, runc (/usr/sbin/runc)"},
        {"image-dir", CFG_STR, &k.cfg.image_dir, "DIR", "local image store (<root-dir>/images)"},
        {"monitor", CFG_STR, &k.cfg.monitor, "PATH",
         "coracle-monitor (next to the kubelet, else " LIBEXECDIR ")"},
        {"cni-conf-dir", CFG_STR, &k.cfg.cni_conf_dir, "DIR",
         "CNI network configs (unset: --pod-network's built-in bridge)"},
        {"pod-network", CFG_STR, &k.cfg.pod_network, "MODE",
         "none (loopback only), bridge (the built-in network: a bridge and a range from the "
         "Node's spec.podCIDR or --pod-cidr; with --cni-conf-dir, that network instead), "
         "host-gw or vxlan (bridge, and other nodes' pod ranges routed: via their InternalIP "
         "on one subnet, or an overlay); default: bridge if --pod-cidr is set, else none"},
        {"cluster-cidr", CFG_STR, &k.cfg.cluster_cidr, "CIDR",
         "the cluster's pod range: the built-in network masquerades what pods send out of it, "
         "nothing between pods (unset: the node's range); the Service proxy what comes from "
         "outside it to a ClusterIP (unset: none)"},
        {"pod-cidr", CFG_STR, &k.cfg.pod_cidr, "CIDR",
         "pod range when the Node has no spec.podCIDR (none)"},
        {"bridge", CFG_STR, &k.cfg.bridge, "NAME", "the built-in network's bridge (cni0)"},
        {"crashloop-backoff-base", CFG_INT, &k.cfg.crashloop_base, "SECONDS",
         "first crash-loop back-off, doubling (10)"},
        {"crashloop-backoff-max", CFG_INT, &k.cfg.crashloop_max, "SECONDS",
         "crash-loop back-off cap (300)"},
        {"container-log-max-size", CFG_INT, &k.cfg.log_max_size, "BYTES",
         "container log rotation size (10485760)"},
        {"node-status-update-period", CFG_INT, &k.cfg.node_status_period, "SECONDS",
         "how often the Node status is computed and compared with the apiserver's (60)"},
        {"node-status-report-frequency", CFG_INT, &k.cfg.node_status_report, "SECONDS",
         "an unchanged Node status is posted this often; a change at once (300)"},
        {"allow-privileged", CFG_BOOL, &k.cfg.allow_privileged, "BOOL",
         "run pods with privileged containers; false: refuse them (true)"},
        {"seccomp-default", CFG_BOOL, &k.cfg.seccomp_default, "BOOL",
         "RuntimeDefault seccomp for containers whose pod names no profile (false)"},
        {"allowed-unsafe-sysctls", CFG_STR, &k.cfg.allowed_unsafe_sysctls, "LIST",
         "unsafe namespaced sysctls pods may set, names or patterns (kernel.msg*); "
         "Kubernetes' safe ones always may (none)"},
        {"node-ip", CFG_STR, &k.cfg.node_ip, "ADDR",
         "the node's InternalIP (the first up non-loopback IPv4 address)"},
        {"pod-network-mode", CFG_STR, &k.cfg.pod_network_mode, "MODE",
         "deprecated: host-gw or vxlan route other nodes' pod ranges, as --pod-network says "
         "now (none)"},
        {"vxlan-vni", CFG_INT, &k.cfg.vxlan_vni, "VNI", "the vxlan mode's VNI (1)"},
        {"vxlan-port", CFG_INT, &k.cfg.vxlan_port, "PORT", "the vxlan mode's UDP port (8472)"},
        {"cleanup", CFG_BOOL, &cleanup, "BOOL",
         "remove the pod network's routes, VXLAN device (--vxlan-vni) and masquerade (table ip "
         "coracle-net), the Service rules (table ip coracle-proxy), the NetworkPolicy rules "
         "(table inet coracle-netpol), the device coracle-dns and the --cluster-dns addresses "
         "on lo, and exit (false)"},
        {"proxy-mode", CFG_STR, &k.cfg.proxy_mode, "MODE",
         "Services' data path: nftables (table ip coracle-proxy, removed at shutdown) or none "
         "(none; the packaged config says nftables)"},
        {"masquerade-all", CFG_BOOL, &k.cfg.masquerade_all, "BOOL",
         "SNAT all traffic sent to ClusterIPs; else only what comes from outside "
         "--cluster-cidr, and hairpin traffic (false)"},
        {"image-gc-high-threshold", CFG_INT, &k.cfg.image_gc_high, "PERCENT",
         "disk usage of the image store's filesystem at which image garbage collection always "
         "runs; 100 turns it off (85)"},
        {"image-gc-low-threshold", CFG_INT, &k.cfg.image_gc_low, "PERCENT",
         "disk usage image garbage collection frees down to; not above the high threshold (80)"},
        {"image-minimum-gc-age", CFG_STR, &image_min_age, "DURATION",
         "minimum age of an unused image before it is garbage collected (2m)"},
        {"image-maximum-gc-age", CFG_STR, &image_max_age, "DURATION",
         "an image unused this long is garbage collected whatever the disk usage; 0s: never "
         "(0s)"},
        {"image-gc-period", CFG_STR, &image_gc_period, "DURATION",
         "how often image garbage collection runs (5m, the kubelet's ImageGCPeriod)"},
        {"cluster-dns", CFG_STR, &k.cfg.cluster_dns, "ADDRS",
         "comma list of the pods' nameservers (dnsPolicy ClusterFirst); the kubelet answers "
         "the cluster's names on them, port 53, putting each on the device coracle-dns when "
         "no interface has it (none: ClusterFirst falls back to Default)"},
        {"cluster-domain", CFG_STR, &k.cfg.cluster_domain, "DOMAIN",
         "the cluster's DNS domain (cluster.local)"},
        {"resolv-conf", CFG_STR, &k.cfg.resolv_conf, "FILE",
         "the node's resolver config: dnsPolicy Default and the cluster DNS's upstreams; \"\": "
         "none (/etc/resolv.conf)"},
        {"registry-pulls", CFG_BOOL, &k.cfg.registry_pulls, "BOOL",
         "pull images missing from the store (and imagePullPolicy Always ones) from their "
         "registries; false: images come only from `coraclectl image import` (false; the "
         "packaged config says true)"},
        {"registry-config-dir", CFG_STR, &k.cfg.registry_config_dir, "DIR",
         "per-registry mirrors and CAs, <registry>/hosts.toml as containerd's (" OCI_HOSTS_DIR ")"},
        {"image-credentials-file", CFG_STR, &k.cfg.image_credentials_file, "FILE",
         "registry credentials of the node, a docker config.json, used after the pod's "
         "imagePullSecrets (none)"},
        {"network-policy", CFG_BOOL, &k.cfg.network_policy, "BOOL",
         "enforce NetworkPolicies for this node's pods in nftables (table inet "
         "coracle-netpol, removed at shutdown); needs a credential that lists pods of every "
         "node (false)"},
        {"certificate-authority", CFG_STR, &ca, "FILE",
         "CA bundle to verify the apiserver (TLS); unset: cleartext h2c"},
        {"client-certificate", CFG_STR, &cert, "FILE",
         "client certificate (CN system:node:<name>, O system:nodes)"},
        {"client-key", CFG_STR, &key, "FILE", "the client certificate's key"},
        {"token-file", CFG_STR, &token_file, "FILE", "bearer token for the apiserver (none)"},
        {"token", CFG_STR, &join_token, "TOKEN",
         "bootstrap token to join with (coraclectl token create); needed once: the client "
         "certificate it gets is kept in <root-dir>/pki and renewed"},
        {"ca-cert-hash", CFG_STR, &ca_cert_hash, "sha256:HEX",
         "the cluster CA's public key hash to pin when joining with --token"},
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
    if (k.cfg.crashloop_base < 1)
        k.cfg.crashloop_base = 1;
    if (k.cfg.crashloop_max < k.cfg.crashloop_base)
        k.cfg.crashloop_max = k.cfg.crashloop_base;
    if (!k.cfg.image_dir)
        k.cfg.image_dir = xasprintf("%s/images", k.cfg.root_dir);
    /* the kubelet's own HTTP endpoint is the one it reports (the API reaches it by its tunnel) */
    const char *colon = strrchr(healthz_listen, ':');
    if (colon && strncmp(healthz_listen, "unix:", 5))
        k.cfg.endpoint_port = atoi(colon + 1);
    image_gc_flags(&k, image_min_age, image_max_age, image_gc_period);

    if (cleanup) {
        klet_podnet_cleanup(&k);
        char *cerr = NULL;
        if (klet_masq_remove(&cerr) < 0)
            fatal("--cleanup: %s", cerr);
        klet_dns_cleanup(k.cfg.cluster_dns);
        if (kpx_cleanup(&cerr) < 0 || knp_cleanup(&cerr) < 0)
            fatal("--cleanup: %s", cerr);
        return 0;
    }
    char *nerr = NULL;
    if (klet_podnet_config(&k, &nerr) < 0)
        fatal("%s", nerr);
    if (strcmp(k.cfg.proxy_mode, "nftables") && strcmp(k.cfg.proxy_mode, "none"))
        fatal("--proxy-mode: \"%s\" is not nftables or none", k.cfg.proxy_mode);
    char *uerr = NULL;
    if (klet_admit_unsafe_check(k.cfg.allowed_unsafe_sysctls, &uerr) < 0)
        fatal("--allowed-unsafe-sysctls: %s", uerr);
    if (access(k.cfg.runtime, X_OK) < 0)
        fatal("runtime %s: %s", k.cfg.runtime, strerror(errno));
    k.no_seccomp = !klet_runc_has_seccomp(&k);
    if (k.no_seccomp)
        log_warn("runtime %s has no seccomp support (built without libseccomp): containers "
                 "asking for a seccomp profile will not start",
                 k.cfg.runtime);
    static const char *const sub[] = {"", "/pods", "/containers", "/runc"};
    for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
        char *dir = xasprintf("%s%s", k.cfg.root_dir, sub[i]);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            fatal("mkdir %s: %s", dir, strerror(errno));
        free(dir);
    }
    k.runc_root = xasprintf("%s/runc", k.cfg.root_dir);
    k.host_ip = *k.cfg.node_ip ? xstrdup(k.cfg.node_ip) : addr_host_ipv4();
    k.base = event_base_new();
    if (!k.base)
        fatal("event_base_new failed");
    struct daemon_ops ops = {
        .describe = klet_describe,
        .stop = klet_stop,
        .ready = klet_ready,
        .metrics = klet_metrics_write,
        .arg = &k,
    };
    daemon_t *d = daemon_new(k.base, obs_config_path(argc, argv, prog.default_config), &ops);
    struct gcl_opts gopts = {0};
    char *token = NULL, *err = NULL;
    /* a joined node (or one joining now) uses and renews its own certificate */
    char *own_ca = NULL, *own_cert = NULL;
    if (!*cert && (*join_token || klet_certs_joined(k.cfg.root_dir))) {
        struct klet_join j = {k.cfg.server, join_token, ca_cert_hash, k.cfg.root_dir,
                              k.cfg.node_name};
        if (klet_certs_join(&j, &own_ca, &own_cert, &err) < 0)
            fatal("join: %s", err);
        ca = own_ca;
        cert = key = own_cert;
        if (strncmp(k.cfg.server, "https://", 8))
            k.cfg.server = xasprintf("https://%s", k.cfg.server);
    }
    if (*token_file && daemon_read_token(token_file, &token, &err) < 0)
        fatal("%s", err);
    gopts.user_agent = "coracle-kubelet/" PACKAGE_VERSION;
    if (gcl_opts_setup(&gopts, k.cfg.server, ca, cert, key, token, &err) < 0)
        fatal("%s", err);
    k.api = gcl_new(k.base, k.cfg.server, &gopts);
    if (!k.api)
        fatal("bad server address \"%s\"", k.cfg.server);
    /*
     * Logs and exec reach us through a stream we open (no inbound port),
     * one to each apiserver: a request to any of them finds this node's
     * tunnel there, and no apiserver needs to reach another.
     */
    gcl_t *tun_api[MAX_SERVERS];
    size_t ntun = tunnel_clients(k.base, k.cfg.server, &gopts, tun_api, k.api);
    if (gopts.tls)
        SSL_CTX_free(gopts.tls); /* gcl holds its own reference */

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
    klet_imggc_start(&k);
    if (klet_podnet_start(&k, &err) < 0)
        fatal("pod network: %s", err);
    if (klet_bridgenet_start(&k, &err) < 0)
        fatal("%s", err);
    if (!strcmp(k.cfg.proxy_mode, "nftables") || *k.cfg.cluster_dns)
        klet_services_start(&k);
    if (!strcmp(k.cfg.proxy_mode, "nftables"))
        klet_proxy_start(&k); /* logs why not; pods run without Services then */
    if (*k.cfg.cluster_dns && klet_dns_start(&k, &err) < 0) {
        /* pods matter more: they run, names of the cluster do not resolve on this node */
        log_err("%s: no cluster DNS on this node", err);
        free(err);
        err = NULL;
    }
    if (k.cfg.network_policy)
        klet_netpol_start(&k); /* logs why not */
    struct ktun_opts topts = {
        .node = k.cfg.node_name,
        .runc = k.cfg.runtime,
        .resolve = klet_pods_resolve,
        .arg = &k,
    };
    ktun_t *tun[MAX_SERVERS];
    for (size_t i = 0; i < ntun; i++)
        tun[i] = ktun_start(k.base, tun_api[i], &topts);
    if (own_cert) {
        gcl_t *all[MAX_SERVERS + 1] = {k.api};
        size_t nall = 1;
        for (size_t i = 0; i < ntun; i++)
            if (tun_api[i] != k.api)
                all[nall++] = tun_api[i];
        k.rot = klet_certs_rotate(k.base, k.api, all, nall, own_ca, own_cert, k.cfg.node_name);
    }
    if (daemon_serve_health(d, healthz_listen) == 0) /* not fatal: pods matter more */
        klet_metrics_start(&k);
    log_info("node %s: server %s, root %s, images %s", k.cfg.node_name, k.cfg.server,
             k.cfg.root_dir, k.cfg.image_dir);
    daemon_run(d, "running");
    klet_imggc_stop(&k);
    klet_bridgenet_stop(&k);

    for (size_t i = 0; i < ntun; i++) {
        ktun_free(tun[i]);
        if (tun_api[i] != k.api)
            gcl_free(tun_api[i]);
    }
    klet_podnet_stop(&k); /* before the loop goes: the informer lives on it */
    klet_certs_rotate_free(k.rot);
    klet_proxy_stop(&k);
    klet_dns_stop(&k);
    klet_services_stop(&k);
    klet_netpol_stop(&k);
    klet_watch_stop(&k);
    daemon_free(d);
    klet_metrics_stop(&k);
    gcl_free(k.api);
    free(token);
    free(own_ca);
    free(own_cert);
    event_base_free(k.base);
    return 0;
}
