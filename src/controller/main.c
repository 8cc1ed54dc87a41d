/*
 * coracle-controller-manager: runs the controllers that make workloads
 * happen (doc/man/coracle-controller-manager.8). main() only reads the
 * configuration and builds the manager on one loop; the frame is cm.c,
 * the controllers are the files beside it, and signals, systemd
 * notification and the health endpoint are daemon.c's.
 */
#include "config.h"

#include "buf.h"
#include "cfg.h"
#include "cm.h"
#include "controllers.h"
#include "daemon.h"
#include "gcl.h"
#include "leader.h"
#include "obs.h"
#include "util.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the daemon hooks and the election callbacks need. */
struct cm_main {
    cm_t *cm;
    leader_t *el; /* NULL without --leader-elect */
};

static void main_describe(char *buf, size_t len, void *arg)
{
    struct cm_main *m = arg;
    cm_describe(buf, len, m->cm);
}

static void main_metrics(FILE *f, void *arg)
{
    struct cm_main *m = arg;
    cm_metrics_write(f, m->cm);
    if (m->el)
        leader_metrics_write(f, m->el);
}

static void elected(void *arg)
{
    cm_lead(arg);
}

/* As kube-controller-manager: a manager that may no longer lead exits, and is restarted. */
static void lost(void *arg)
{
    fatal("leaderelection lost");
}

/* Whether controller name is on in list ("*", "a,b", "*,-b", as kube-controller-manager). */
static bool controller_on(const char *list, const char *name)
{
    bool on = false;
    char *copy = xstrdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "*"))
            on = true;
        else if (t[0] == '-' && !strcmp(t + 1, name))
            on = false;
        else if (!strcmp(t, name))
            on = true;
    }
    free(copy);
    return on;
}

static bool controller_known(const char *t)
{
    if (*t == '-')
        t++;
    if (!strcmp(t, "*"))
        return true;
    for (size_t i = 0; ctrl_all[i]; i++)
        if (!strcmp(ctrl_all[i]->name, t))
            return true;
    return false;
}

/* The PEM text of path ("": none, NULL); a file that cannot be read is fatal. */
static char *read_root_ca(const char *path)
{
    if (!*path)
        return NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        fatal("--root-ca-file %s: %s", path, strerror(errno));
    struct buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < (1u << 20))
        buf_add(&b, chunk, n);
    fclose(f);
    if (!b.len || !memmem(b.p, b.len, "-----BEGIN CERTIFICATE-----", 27))
        fatal("--root-ca-file %s: no PEM certificate in it", path);
    return buf_take(&b);
}

int main(int argc, char **argv)
{
    /* static: cfg_set's copies stay reachable for the life of the program */
    static char *server = "127.0.0.1:6443", *token_file = "", *controllers = "*";
    static char *ca = "", *cert = "", *key = "", *root_ca_file = "";
    static char *signing_cert = "", *signing_key = "", *signing_duration = "8760h";
    static char *healthz_listen = "127.0.0.1:10257";
    static long long max_inflight = 500, node_cidr_mask_size = 24, max_endpoints_per_slice = 100;
    static char *cluster_cidr = "";
    static int allocate_node_cidrs = 0;
    static struct leader_flags le = LEADER_FLAGS_INIT("coracle-controller-manager");
    const struct cfg_opt opts[] = {
        {"server", CFG_STR, &server, "ADDR",
         "apiserver address, host:port or unix:/path, or a comma list of them "
         "(failover; default 127.0.0.1:6443)"},
        {"controllers", CFG_STR, &controllers, "LIST",
         "controllers to run: '*' for all, 'foo' one more, '-foo' one less (default *)"},
        {"max-inflight", CFG_INT, &max_inflight, "N",
         "API writes in flight at most, the rest wait (default 500)"},
        {"max-endpoints-per-slice", CFG_INT, &max_endpoints_per_slice, "N",
         "endpoints in one EndpointSlice at most, 1 to 1000 (default 100)"},
        {"certificate-authority", CFG_STR, &ca, "FILE",
         "CA to verify the apiserver's certificate with; set: TLS (default none: cleartext)"},
        {"client-certificate", CFG_STR, &cert, "FILE",
         "TLS client certificate, CN system:kube-controller-manager (default none)"},
        {"client-key", CFG_STR, &key, "FILE", "its private key (default none)"},
        {"token-file", CFG_STR, &token_file, "FILE",
         "bearer token to present to the apiserver (default none)"},
        {"root-ca-file", CFG_STR, &root_ca_file, "FILE",
         "CA published in every namespace's kube-root-ca.crt ConfigMap (default: "
         "--certificate-authority)"},
        {"allocate-node-cidrs", CFG_BOOL, &allocate_node_cidrs, "BOOL",
         "give every Node a spec.podCIDR from --cluster-cidr (nodeipam; default false)"},
        {"cluster-cidr", CFG_STR, &cluster_cidr, "CIDR",
         "the pods' IP range the node ranges are cut from (needs --allocate-node-cidrs)"},
        {"node-cidr-mask-size", CFG_INT, &node_cidr_mask_size, "BITS",
         "prefix length of each Node's range (default 24)"},
        {"cluster-signing-cert-file", CFG_STR, &signing_cert, "FILE",
         "PEM CA certificate the csrsigning controller issues client certificates with "
         "(default none: nothing is signed)"},
        {"cluster-signing-key-file", CFG_STR, &signing_key, "FILE", "its private key"},
        {"cluster-signing-duration", CFG_STR, &signing_duration, "DURATION",
         "the longest validity of a signed certificate (default 8760h)"},
        LEADER_CFG_OPTS(le, "managers", "coracle-controller-manager"),
        {"healthz-listen", CFG_STR, &healthz_listen, "ADDR",
         "serve /healthz, /readyz, /metrics on host:port or unix:/path; empty: off "
         "(default 127.0.0.1:10257)"},
    };
    const struct cfg_prog prog = {
        "coracle-controller-manager",
        "Runs the controllers (ReplicaSets, Deployments, ...); driven by watches.",
        SYSCONFDIR "/coracle/coracle-controller-manager.conf",
    };
    int i = cfg_main(argc, argv, opts, ARRAY_SIZE(opts), &prog);
    if (i < argc) {
        fprintf(stderr, "coracle-controller-manager: unexpected argument \"%s\" (see --help)\n",
                argv[i]);
        return 2;
    }
    if (max_endpoints_per_slice < 1 || max_endpoints_per_slice > 1000) {
        fprintf(stderr,
                "coracle-controller-manager: --max-endpoints-per-slice must be 1 to 1000\n");
        return 2;
    }
    if (max_inflight <= 0) {
        fprintf(stderr, "coracle-controller-manager: --max-inflight must be > 0\n");
        return 2;
    }
    char *copy = xstrdup(controllers), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (!controller_known(t)) {
            fprintf(stderr,
                    "coracle-controller-manager: --controllers: unknown controller \"%s\"\n", t);
            return 2;
        }
    free(copy);
    if (allocate_node_cidrs && !*cluster_cidr) {
        fprintf(stderr, "coracle-controller-manager: --cluster-cidr must be set when "
                        "--allocate-node-cidrs=true\n");
        return 2;
    }
    int64_t dur_ns;
    if (parse_duration(signing_duration, &dur_ns) < 0 || dur_ns < 1000000000LL) {
        fprintf(stderr,
                "coracle-controller-manager: --cluster-signing-duration: \"%s\" is not a "
                "duration of at least 1s (8760h, 10m)\n",
                signing_duration);
        return 2;
    }
    ctrl_certs_cfg = (struct ctrl_certs_cfg){signing_cert, signing_key, dur_ns / 1000000000LL};
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
    char *root_ca = read_root_ca(*root_ca_file ? root_ca_file : ca);
    struct cm_cfg cfg = {
        .server = server,
        .token = token,
        .tls = gopts.tls,
        .user_agent = "coracle-controller-manager/" PACKAGE_VERSION,
        .standby = le.elect,
        .max_inflight = (int)max_inflight,
        .root_ca = root_ca,
        .cluster_cidr = allocate_node_cidrs ? cluster_cidr : NULL,
        .node_cidr_mask_size = (int)node_cidr_mask_size,
        .max_endpoints_per_slice = (int)max_endpoints_per_slice,
    };
    struct cm_main m = {cm_new(base, &cfg), NULL};
    if (!m.cm)
        fatal("bad --server \"%s\"", server);
    size_t n_on = 0;
    for (size_t j = 0; ctrl_all[j]; j++)
        if (controller_on(controllers, ctrl_all[j]->name)) {
            cm_add(m.cm, ctrl_all[j]);
            log_info("starting %s controller", ctrl_all[j]->name);
            n_on++;
        }
    gcl_t *eg; /* the election's own connection: renewals stay clear of the writes */
    m.el = leader_from_flags(base, prog.name, server, gopts,
                             "coracle-controller-manager/" PACKAGE_VERSION, &le,
                             "coracle-controller-manager", elected, lost, m.cm, &eg);
    if (gopts.tls)
        SSL_CTX_free(gopts.tls); /* the connections hold their own references */
    struct daemon_ops ops = {
        .describe = main_describe,
        .metrics = main_metrics,
        .arg = &m,
    };
    daemon_t *d = daemon_new(base, obs_config_path(argc, argv, prog.default_config), &ops);
    daemon_serve_health(d, healthz_listen);

    log_info("coracle-controller-manager %s: server %s%s, %zu controllers", PACKAGE_VERSION, server,
             gopts.tls ? " (TLS)" : "", n_on);
    cm_start(m.cm);
    if (m.el) {
        log_info("leader election: lease %s/%s, identity %s", le.ns, le.name,
                 leader_identity(m.el));
        leader_start(m.el);
    }
    daemon_run(d, "controlling");

    daemon_free(d);
    cm_free(m.cm); /* no write goes out once the Lease is given up */
    leader_release(m.el, 2000);
    leader_free(m.el);
    gcl_free(eg);
    event_base_free(base);
    free(token);
    free(root_ca);
    return 0;
}
