/*
 * coracle-apiserver: the only process that touches the store. main() reads
 * the configuration, opens the store, starts the HTTP/2 server, registers
 * the API (api.c) and the kubelet tunnel (tunnel.c) and runs one libevent
 * loop under daemon.c (signals, systemd). SIGTERM/SIGINT shut down in
 * order: stop accepting, refuse new calls and end watches cleanly, wait
 * for the accepted calls to be answered (their writes durable), then close
 * the server and the store and exit 0.
 */
#include "config.h"
#include "addr.h"
#include "api.h"
#include "audit.h"
#include "auth.h"
#include "certexp.h"
#include "cfg.h"
#include "daemon.h"
#include "enc.h"
#include "grpc.h"
#include "h2s.h"
#include "obs.h"
#include "satoken.h"
#include "tls.h"
#include "store.h"
#include "store_etcd.h"
#include "tunnel.h"
#include "util.h"
#include "wire.h"

#include <event2/event.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct cfg_list listen_addrs;
static char *data_dir = LOCALSTATEDIR "/lib/coracle";
static long long event_ttl = 3600;
static long long compact_keep = 100000;
static long long wal_size = 64 << 20;
static char *map_dir = "";
static long long max_request_bytes = GRPC_MAX_MSG_DEFAULT;
static long long watch_queue_bytes = 16 << 20;
static long long watch_memory_limit = 256 << 20;
static long long bookmark_interval = 60;
static long long node_monitor_grace = 40;
static char *tls_cert_file, *tls_key_file, *client_ca_file, *token_auth_file, *policy_file;
static char *authorization_mode;
static long long max_inflight = 400, max_mutating_inflight = 1000, max_watches = 1000;
static int insecure_loopback;
static int implicit_namespaces;
static long long stream_setup_timeout = 30, stream_idle_timeout = 14400;
static char *storage_backend = "lmdb", *etcd_servers, *etcd_cafile, *etcd_certfile, *etcd_keyfile;
static char *etcd_prefix = "/registry", *etcd_compaction_interval = "5m";
static char *encryption_config;
static struct cfg_list sa_issuers, sa_key_files, api_audiences;
static char *sa_signing_key_file, *sa_max_expiration, *sa_jwks_uri;
static char *pod_security_default;
static char *psa_exempt_users, *psa_exempt_namespaces, *psa_exempt_runtime_classes;
static char *admission_config;
static char *audit_policy_file, *audit_log_path;
static long long audit_log_maxage, audit_log_maxbackup, audit_log_maxsize;
static char *service_cluster_ip_range = "10.96.0.0/12", *service_node_port_range = "30000-32767";
static char *advertise_address, *endpoint_reconciler_type = "none";

static const struct cfg_opt opts[] = {
    {"listen", CFG_LIST, &listen_addrs, "ADDR",
     "address to serve on, host:port or unix:/path; repeatable (default 127.0.0.1:6443)"},
    {"data-dir", CFG_STR, &data_dir, "DIR", "the store's directory (default /var/lib/coracle)"},
    {"event-ttl", CFG_INT, &event_ttl, "SECONDS",
     "events expire this long after their last "
     "occurrence (default 3600)"},
    {"compact-keep", CFG_INT, &compact_keep, "REVISIONS",
     "revisions of history kept for watch resumption (default 100000)"},
    {"wal-size", CFG_INT, &wal_size, "BYTES",
     "the store's write-ahead log (DATA-DIR/wal); a full log is checkpointed into "
     "DATA-DIR/snap.mdb (default 67108864; at most a quarter of the disk's free space; "
     "grows to a quarter of a checkpoint's size, 1 GiB at most)"},
    {"map-dir", CFG_STR, &map_dir, "DIR",
     "keep the store's map (data.mdb) in DIR, a tmpfs, instead of DATA-DIR: rebuilt from "
     "DATA-DIR/snap.mdb and the log at every start, so an idle apiserver writes only its log; "
     "costs the map's size in memory; back it up online from DIR (default: none)"},
    {"max-request-bytes", CFG_INT, &max_request_bytes, "BYTES",
     "largest request message accepted (default 1572864)"},
    {"watch-queue-bytes", CFG_INT, &watch_queue_bytes, "BYTES",
     "unsent bytes after which a slow watcher is ended (default 16777216)"},
    {"watch-memory-limit", CFG_INT, &watch_memory_limit, "BYTES",
     "memory held by all watches' unsent events; beyond it the slowest are ended (default "
     "268435456)"},
    {"bookmark-interval", CFG_INT, &bookmark_interval, "SECONDS",
     "period of BOOKMARK events to watchers that allow them (default 60)"},
    {"node-monitor-grace", CFG_INT, &node_monitor_grace, "SECONDS",
     "a node whose lease is not renewed this long becomes Unknown (default 40)"},
    {"tls-cert-file", CFG_STR, &tls_cert_file, "FILE",
     "PEM certificate (chain): serve TCP addresses over TLS (default none: cleartext, "
     "loopback only)"},
    {"tls-private-key-file", CFG_STR, &tls_key_file, "FILE",
     "PEM key of --tls-cert-file (default none)"},
    {"client-ca-file", CFG_STR, &client_ca_file, "FILE",
     "CA whose client certificates authenticate users (CN = user, O = groups) (default none)"},
    {"token-auth-file", CFG_STR, &token_auth_file, "FILE",
     "static bearer tokens, CSV token,user,uid,\"group1,group2\" (default none)"},
    {"authorization-policy-file", CFG_STR, &policy_file, "FILE",
     "bootstrap policy, allowing beside the RBAC objects (default none)"},
    {"authorization-mode", CFG_STR, &authorization_mode, "MODES",
     "Node,RBAC: the RBAC objects authorize; AlwaysAllow: every authenticated user may do "
     "everything (default Node,RBAC with a policy file, else AlwaysAllow)"},
    {"max-requests-inflight", CFG_INT, &max_inflight, "N",
     "unary read calls in flight before RESOURCE_EXHAUSTED; 0 = no limit (default 400)"},
    {"max-mutating-requests-inflight", CFG_INT, &max_mutating_inflight, "N",
     "unary write calls in flight before RESOURCE_EXHAUSTED; 0 = no limit (default 1000)"},
    {"insecure-loopback", CFG_BOOL, &insecure_loopback, NULL,
     "with TLS configured, still serve loopback TCP addresses in cleartext (default false)"},
    {"implicit-namespaces", CFG_BOOL, &implicit_namespaces, NULL,
     "namespaces as before they were objects: any may be written into, none is created "
     "(default false: the system namespaces exist, a missing one is NotFound)"},
    {"max-watches-per-user", CFG_INT, &max_watches, "N",
     "watches and other long-running calls one user may hold (default 1000)"},
    {"stream-setup-timeout", CFG_INT, &stream_setup_timeout, "SECONDS",
     "exec/attach over SPDY: the client's streams must be open within this (default 30)"},
    {"stream-idle-timeout", CFG_INT, &stream_idle_timeout, "SECONDS",
     "exec/attach streams with no input from the client this long are closed (default 14400)"},
    {"storage-backend", CFG_STR, &storage_backend, "lmdb|etcd3",
     "where objects are kept: lmdb (embedded, in --data-dir) or etcd3 (--etcd-servers; "
     "--data-dir then holds a cache) (default lmdb)"},
    {"etcd-servers", CFG_STR, &etcd_servers, "URL,URL,...",
     "etcd members, http:// or https:// (default none)"},
    {"etcd-cafile", CFG_STR, &etcd_cafile, "FILE", "CA that signed the etcd members' certificates"},
    {"etcd-certfile", CFG_STR, &etcd_certfile, "FILE", "client certificate for etcd"},
    {"etcd-keyfile", CFG_STR, &etcd_keyfile, "FILE", "key of --etcd-certfile"},
    {"etcd-prefix", CFG_STR, &etcd_prefix, "PREFIX",
     "key prefix of every object in etcd (default /registry)"},
    {"etcd-compaction-interval", CFG_STR, &etcd_compaction_interval, "DURATION",
     "how often an apiserver compacts etcd's history; 0 turns it off (default 5m)"},
    {"encryption-provider-config", CFG_STR, &encryption_config, "FILE",
     "EncryptionConfiguration (apiserver.config.k8s.io/v1): the resources encrypted at rest and "
     "their keys (default none)"},
    {"service-account-issuer", CFG_LIST, &sa_issuers, "URL",
     "identifier of the service account token issuer (iss); repeatable: the first signs, all "
     "are accepted (default none: no service account tokens)"},
    {"service-account-key-file", CFG_LIST, &sa_key_files, "FILE",
     "PEM keys (RSA or ECDSA P-256, public or private) that verify service account tokens; "
     "repeatable (default: the signing key)"},
    {"service-account-signing-key-file", CFG_STR, &sa_signing_key_file, "FILE",
     "PEM private key that signs service account tokens (TokenRequest) (default none)"},
    {"api-audiences", CFG_LIST, &api_audiences, "AUD,AUD,...",
     "audiences a service account token must name one of, and the default audiences of "
     "TokenRequests (default: the issuers)"},
    {"service-account-max-token-expiration", CFG_STR, &sa_max_expiration, "DURATION",
     "the longest lifetime of a requested token; longer requests are shortened (default none)"},
    {"service-account-jwks-uri", CFG_STR, &sa_jwks_uri, "URL",
     "jwks_uri of /.well-known/openid-configuration (default: the issuer's origin + "
     "/openid/v1/jwks)"},
    {"pod-security-default", CFG_STR, &pod_security_default, "LEVEL[:VERSION]",
     "Pod Security for namespaces without pod-security.kubernetes.io labels: a level "
     "(privileged, baseline, restricted) and version (latest, v1.N) enforced, audited and "
     "warned about, or each mode's, enforce=baseline,warn=restricted (default privileged)"},
    {"pod-security-exempt-usernames", CFG_STR, &psa_exempt_users, "USER,...",
     "users whose pods Pod Security does not check (default none)"},
    {"pod-security-exempt-namespaces", CFG_STR, &psa_exempt_namespaces, "NAMESPACE,...",
     "namespaces Pod Security does not check (default none)"},
    {"pod-security-exempt-runtime-classes", CFG_STR, &psa_exempt_runtime_classes, "CLASS,...",
     "runtimeClassNames whose pods Pod Security does not check (default none)"},
    {"admission-control-config-file", CFG_STR, &admission_config, "FILE",
     "Kubernetes' AdmissionConfiguration: its PodSecurity plugin's PodSecurityConfiguration "
     "instead of the --pod-security-* flags (default none)"},
    {"audit-policy-file", CFG_STR, &audit_policy_file, "FILE",
     "audit.k8s.io/v1 Policy: which requests the audit log records, at which level (default "
     "none: no audit log)"},
    {"audit-log-path", CFG_STR, &audit_log_path, "FILE",
     "where audit events go, one JSON line each; - for stdout (default none: no audit log)"},
    {"audit-log-maxage", CFG_INT, &audit_log_maxage, "DAYS",
     "rotated audit logs older than this are removed; 0 = no limit (default 0)"},
    {"audit-log-maxbackup", CFG_INT, &audit_log_maxbackup, "N",
     "rotated audit logs kept; 0 = all (default 0)"},
    {"audit-log-maxsize", CFG_INT, &audit_log_maxsize, "MEGABYTES",
     "size at which the audit log is rotated (default 100)"},
    {"service-cluster-ip-range", CFG_STR, &service_cluster_ip_range, "CIDR",
     "Services' cluster IPs come from this IPv4 range; its first IP is the `kubernetes` "
     "Service's (default 10.96.0.0/12)"},
    {"service-node-port-range", CFG_STR, &service_node_port_range, "LOW-HIGH",
     "the ports NodePort Services are given (default 30000-32767)"},
    {"advertise-address", CFG_STR, &advertise_address, "IP",
     "the address the `kubernetes` Service's endpoints list for this apiserver (default: the "
     "first --listen IP address that is not a wildcard, else 127.0.0.1)"},
    {"endpoint-reconciler-type", CFG_STR, &endpoint_reconciler_type, "lease|none",
     "lease: keep the `kubernetes` Service in default and its EndpointSlice of the apiservers "
     "that renew their Lease (the packaged configuration sets it); none: leave them alone "
     "(default none)"},
};

/* Empty strings from a config file mean "not set". */
static const char *opt_str(const char *s)
{
    return s && *s ? s : NULL;
}

/* Whether the comma list modes (--authorization-mode) names mode. */
static int authz_has(const char *modes, const char *mode)
{
    size_t ml = strlen(mode);
    for (const char *p = modes; p && *p;) {
        size_t l = strcspn(p, ",");
        if (l == ml && !strncmp(p, mode, ml))
            return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

struct app {
    struct event_base *base;
    char **psa_lists[3]; /* the Pod Security exemptions, NULL-terminated */
    store_t *st;
    h2s_t *srv;
    api_t *api;
    tun_hub_t *tun;
    auth_t *auth;
    audit_t *audit;
    enc_t *enc;
    satoken_t *sat;
    certexp_t *certs; /* the expiry of the certificates below */
};

/*
 * The `kubernetes` Service's endpoint for this apiserver: --advertise-address,
 * else the first TCP listen address that is not a wildcard, else the host's
 * address when it listens on a wildcard (127.0.0.1 if it listens on neither),
 * on the first TCP listen port.
 */
static void kubernetes_service(struct app *app, const struct cfg_list *ls)
{
    char ip[64] = "";
    int port = 0;
    bool wildcard = false;
    for (size_t j = 0; j < ls->n; j++) {
        const char *a = ls->v[j], *colon = strrchr(a, ':');
        if (!strncmp(a, "unix:", 5) || !colon)
            continue;
        int p = atoi(colon + 1);
        if (!port)
            port = p ? p : h2s_port(app->srv);
        struct in_addr in;
        char host[64];
        snprintf(host, sizeof(host), "%.*s", (int)(colon - a), a);
        if (!*ip && inet_pton(AF_INET, host, &in) == 1 && in.s_addr != INADDR_ANY)
            snprintf(ip, sizeof(ip), "%s", host);
        else if (!*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "[::]"))
            wildcard = true;
    }
    if (opt_str(advertise_address))
        snprintf(ip, sizeof(ip), "%s", advertise_address);
    struct in_addr in;
    if (inet_pton(AF_INET, ip, &in) != 1) {
        if (opt_str(advertise_address))
            fatal("--advertise-address %s: not an IPv4 address", advertise_address);
        /* a wildcard listener: the host's address, as kube-apiserver chooses one */
        char *host = wildcard ? addr_host_ipv4() : xstrdup("127.0.0.1");
        snprintf(ip, sizeof(ip), "%s", host);
        free(host);
    }
    if (port)
        api_set_kubernetes(app->api, ip, port);
}

/* STATUS= for systemctl status: the revision, connections, calls, kubelets. */
static void describe(char *buf, size_t len, void *arg)
{
    struct app *app = arg;
    struct h2s_stats hs;
    h2s_get_stats(app->srv, &hs);
    snprintf(buf, len, "revision %llu, %llu connections, %llu calls open, %zu kubelets",
             (unsigned long long)store_rev(app->st), (unsigned long long)hs.conns_open,
             (unsigned long long)hs.calls_open, tun_hub_nodes(app->tun));
}

/* SIGHUP, after the log-level: the token and policy files. */
static void reload(void *arg)
{
    struct app *app = arg;
    char *err = NULL;
    auth_reload(app->auth, &err); /* logs and keeps the old files on error */
    free(err);
    certexp_reload(app->certs);
}

/*
 * SIGTERM/SIGINT: stop accepting, refuse new calls and end watches with
 * OK; the loop ends once every accepted call is answered (drained).
 */
static void stop(void *arg)
{
    struct app *app = arg;
    h2s_stop_accepting(app->srv);
    api_stop(app->api);
}

static bool drained(void *arg)
{
    const struct app *app = arg;
    return api_inflight(app->api) == 0;
}

/* Splits a comma list in place into v (at most max); returns the count. */
static size_t split_commas(char *s, const char **v, size_t max)
{
    size_t n = 0;
    for (char *tok, *save = NULL; (tok = strtok_r(s, ",", &save)) && n < max; s = NULL)
        if (*tok)
            v[n++] = tok;
    return n;
}

/*
 * LMDB in --data-dir, or etcd with an LMDB replica in --data-dir/etcd-cache
 * (its own directory: a data directory can go from one backend to the
 * other and back without either reading the other's files).
 */
static void open_store(struct app *app, char **err)
{
    bool etcd = !strcmp(storage_backend, "etcd3");
    if (!etcd && strcmp(storage_backend, "lmdb"))
        fatal("--storage-backend: \"%s\" is not one of lmdb, etcd3", storage_backend);
    char *dir = etcd ? xconcat(data_dir, "/etcd-cache", NULL) : xstrdup(data_dir);
    if (opt_str(encryption_config)) {
        if (enc_load(encryption_config, &app->enc, err) < 0)
            fatal("--encryption-provider-config: %s", *err);
        char *what = enc_describe(app->enc);
        log_info("encryption at rest: %s", *what ? what : "no resource of this apiserver");
        free(what);
    }
    struct store_opts so = {.dir = dir,
                            .compact_keep = (uint64_t)compact_keep,
                            .replica = etcd,
                            .enc = app->enc,
                            .wal_size = (size_t)wal_size,
                            .map_dir = opt_str(map_dir) ? map_dir : NULL,
                            .value_rev = wire_get_rv,
                            .loop_commits = 1};
    if (store_open(&app->st, &so, app->base, err) < 0)
        fatal("cannot open the store in %s: %s", dir, *err ? *err : "unknown error");
    free(dir);
    if (!etcd) {
        if (opt_str(etcd_servers))
            log_warn("--etcd-servers is ignored with --storage-backend lmdb");
        return;
    }
    if (!opt_str(etcd_servers))
        fatal("--storage-backend etcd3 needs --etcd-servers");
    int64_t interval;
    if (parse_duration(etcd_compaction_interval, &interval) < 0)
        fatal("--etcd-compaction-interval: \"%s\" is not a duration (5m, 300s, 0)",
              etcd_compaction_interval);
    char *list = xstrdup(etcd_servers);
    const char *servers[32];
    size_t n = split_commas(list, servers, ARRAY_SIZE(servers));
    struct store_etcd_opts eo = {
        .servers = servers,
        .n_servers = n,
        .cafile = opt_str(etcd_cafile),
        .certfile = opt_str(etcd_certfile),
        .keyfile = opt_str(etcd_keyfile),
        .prefix = opt_str(etcd_prefix) ? etcd_prefix : "/registry",
        .compaction_interval_s = (int)(interval / 1000000000),
        .history = (uint64_t)compact_keep,
        .enc = app->enc,
    };
    if (!n)
        fatal("--etcd-servers: no server in \"%s\"", etcd_servers);
    if (store_etcd_open(app->st, app->base, &eo, err) < 0)
        fatal("%s", *err);
    free(list);
}

/* A list flag's values, each split at commas (Kubernetes' string slices). */
static size_t list_values(const struct cfg_list *l, char **keep, const char **v, size_t max)
{
    size_t n = 0;
    *keep = NULL;
    for (size_t i = 0; i < l->n; i++) {
        char *add = *keep ? xconcat(*keep, ",", l->v[i], NULL) : xstrdup(l->v[i]);
        free(*keep);
        *keep = add;
    }
    return *keep ? split_commas(*keep, v, max) : n;
}

/* Service account tokens (satoken.h): keys, issuers, audiences; the bearer hook. */
static void open_satoken(struct app *app, char **err)
{
    const char *iss[16], *keys[16], *auds[16];
    char *ki, *kk, *ka;
    struct satoken_config sc = {
        .issuers = iss,
        .n_issuers = list_values(&sa_issuers, &ki, iss, ARRAY_SIZE(iss)),
        .key_files = keys,
        .n_key_files = list_values(&sa_key_files, &kk, keys, ARRAY_SIZE(keys)),
        .signing_key_file = opt_str(sa_signing_key_file),
        .audiences = auds,
        .n_audiences = list_values(&api_audiences, &ka, auds, ARRAY_SIZE(auds)),
        .jwks_uri = opt_str(sa_jwks_uri),
    };
    int64_t ns = 0;
    if (opt_str(sa_max_expiration) && (parse_duration(sa_max_expiration, &ns) < 0 || ns <= 0))
        fatal("--service-account-max-token-expiration: \"%s\" is not a positive duration (48h, "
              "3600s)",
              sa_max_expiration);
    sc.max_expiration_s = ns / 1000000000;
    if (satoken_new(&sc, app->st, &app->sat, err) < 0)
        fatal("%s", *err);
    free(ki);
    free(kk);
    free(ka);
    if (app->sat)
        auth_set_bearer(app->auth, satoken_authenticate, app->sat);
}

/* "a,b,c" as a NULL-terminated list (malloc'd, as its strings); NULL for none. */
static char **split_list(const char *s)
{
    if (!opt_str(s))
        return NULL;
    size_t n = 0;
    char **v = xcalloc(strlen(s) + 2, sizeof(*v));
    for (const char *p = s; *p;) {
        size_t len = strcspn(p, ",");
        if (len)
            v[n++] = xstrndup(p, len);
        p += len;
        if (*p)
            p++;
    }
    return v;
}

static void free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* The Pod Security configuration of --admission-control-config-file. */
static void pod_security_file(struct app *app, struct psa_config *cfg)
{
    char *err = NULL;
    struct psa_file f;
    if (opt_str(pod_security_default) || opt_str(psa_exempt_users) ||
        opt_str(psa_exempt_namespaces) || opt_str(psa_exempt_runtime_classes))
        fatal("--admission-control-config-file and --pod-security-*: configure Pod Security in "
              "one place");
    if (psa_file_load(admission_config, &f, &err) < 0)
        fatal("--admission-control-config-file: %s", err);
    if (!f.found)
        log_notice("%s does not configure PodSecurity: every namespace without labels is "
                   "privileged",
                   admission_config);
    cfg->defaults = f.defaults;
    app->psa_lists[0] = f.exempt_users;
    app->psa_lists[1] = f.exempt_namespaces;
    app->psa_lists[2] = f.exempt_runtime_classes;
}

/* --pod-security-* (or the admission configuration) into cfg; the lists are kept in app until exit.
 */
static void pod_security_config(struct app *app, struct psa_config *cfg)
{
    char *err = NULL;
    if (opt_str(admission_config)) {
        pod_security_file(app, cfg);
    } else {
        if (psa_parse_defaults(opt_str(pod_security_default) ? pod_security_default : "privileged",
                               &cfg->defaults, &err) < 0)
            fatal("--pod-security-default: %s", err);
        app->psa_lists[0] = split_list(psa_exempt_users);
        app->psa_lists[1] = split_list(psa_exempt_namespaces);
        app->psa_lists[2] = split_list(psa_exempt_runtime_classes);
    }
    cfg->exempt_users = (const char *const *)app->psa_lists[0];
    cfg->exempt_namespaces = (const char *const *)app->psa_lists[1];
    cfg->exempt_runtime_classes = (const char *const *)app->psa_lists[2];
}

int main(int argc, char **argv)
{
    static const struct cfg_prog prog = {"coracle-apiserver",
                                         "the coracle API server (gRPC over HTTP/2, LMDB store)",
                                         SYSCONFDIR "/coracle/coracle-apiserver.conf"};
    int i = cfg_main(argc, argv, opts, ARRAY_SIZE(opts), &prog);
    if (i < argc) {
        fprintf(stderr, "coracle-apiserver: unexpected argument '%s'\n", argv[i]);
        return 2;
    }
    if (event_ttl <= 0 || compact_keep <= 0 || wal_size <= 0 || max_request_bytes <= 0 ||
        watch_queue_bytes <= 0 || watch_memory_limit <= 0 || bookmark_interval <= 0 ||
        node_monitor_grace <= 0 || stream_setup_timeout <= 0 || stream_idle_timeout <= 0) {
        fprintf(stderr, "coracle-apiserver: numeric settings must be positive\n");
        return 2;
    }
    struct app app = {0};
    app.base = event_base_new();
    if (!app.base)
        fatal("event_base_new failed");
    struct daemon_ops ops = {
        .describe = describe,
        .reload = reload,
        .stop = stop,
        .drained = drained,
        .arg = &app,
    };
    daemon_t *d = daemon_new(app.base, obs_config_path(argc, argv, prog.default_config), &ops);

    char *err = NULL;
    open_store(&app, &err);

    /* authentication and authorization (auth.c), TLS for TCP listeners */
    struct auth_config auc = {
        .client_ca = opt_str(client_ca_file) != NULL,
        .token_file = opt_str(token_auth_file),
        .policy_file = opt_str(policy_file),
        .max_watches = (unsigned)max_watches,
        .rbac = authz_has(opt_str(authorization_mode), "RBAC"),
    };
    if (auth_new(&auc, &app.auth, &err) < 0)
        fatal("%s", err);
    open_satoken(&app, &err);
    auth_set_store(app.auth, app.st); /* bootstrap tokens */

    struct audit_config auditc = {
        .policy_file = opt_str(audit_policy_file),
        .log_path = opt_str(audit_log_path),
        .max_age_days = (int)audit_log_maxage,
        .max_backups = (int)audit_log_maxbackup,
        .max_size_mb = (int)audit_log_maxsize,
    };
    if (audit_log_maxage < 0 || audit_log_maxbackup < 0 || audit_log_maxsize < 0)
        fatal("--audit-log-maxage, --audit-log-maxbackup and --audit-log-maxsize must not be "
              "negative");
    if (audit_new(app.base, &auditc, &app.audit, &err) < 0)
        fatal("%s", err);
    const char *cert_files[] = {opt_str(tls_cert_file), opt_str(client_ca_file),
                                opt_str(etcd_certfile), opt_str(etcd_cafile)};
    app.certs = certexp_new(app.base, cert_files, ARRAY_SIZE(cert_files));

    struct h2s_config hc = {.max_msg = (uint32_t)max_request_bytes};
    app.srv = h2s_new(app.base, &hc);
    if (strcmp(endpoint_reconciler_type, "lease") && strcmp(endpoint_reconciler_type, "none"))
        fatal("--endpoint-reconciler-type %s: lease or none", endpoint_reconciler_type);
    struct svcalloc_config svc;
    if (svcalloc_parse_cidr(&svc, service_cluster_ip_range, &err) < 0 ||
        svcalloc_parse_ports(&svc, service_node_port_range, &err) < 0)
        fatal("%s", err);
    /* this apiserver among those on one etcd: the same after a restart */
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    const char *first = listen_addrs.n ? listen_addrs.v[0] : "127.0.0.1:6443";
    char *ident = strlen(first) > 2 && strcmp(first + strlen(first) - 2, ":0")
                      ? xasprintf("%s_%s", host, first)
                      : NULL;
    struct api_config ac = {
        .event_ttl_s = event_ttl,
        .node_grace_s = node_monitor_grace,
        .bookmark_interval_s = (int)bookmark_interval,
        .watch_queue_bytes = (size_t)watch_queue_bytes,
        .watch_memory_limit = (size_t)watch_memory_limit,
        .auth = app.auth,
        .stream_setup_timeout_s = (int)stream_setup_timeout,
        .stream_idle_timeout_s = (int)stream_idle_timeout,
        .implicit_namespaces = implicit_namespaces != 0,
        .sat = app.sat,
        .audit = app.audit,
        .metrics_extra = certexp_metrics,
        .metrics_arg = app.certs,
        .svc = svc,
        .elect_singletons = !strcmp(storage_backend, "etcd3"),
        .identity = ident,
    };
    pod_security_config(&app, &ac.pod_security);
    app.api = api_new(app.base, app.st, app.srv, &ac);
    app.tun = tun_hub_new(app.srv, app.st, app.auth); /* Pods/Log, Pods/Exec, NodeTunnel/Connect */
    api_set_tunnel(app.api, app.tun);
    if (app.sat)
        satoken_register(app.sat, app.srv, app.auth); /* ServiceAccounts/CreateToken */

    SSL_CTX *tls = NULL;
    if (opt_str(tls_cert_file) || opt_str(tls_key_file)) {
        if (!opt_str(tls_cert_file) || !opt_str(tls_key_file))
            fatal("--tls-cert-file and --tls-private-key-file go together");
        tls = tls_server_ctx(tls_cert_file, tls_key_file, opt_str(client_ca_file), &err);
        if (!tls)
            fatal("%s", err);
    } else if (opt_str(client_ca_file)) {
        fatal("--client-ca-file needs TLS: set --tls-cert-file and --tls-private-key-file");
    }
    h2s_set_inflight_limits(app.srv, (size_t)max_inflight, (size_t)max_mutating_inflight,
                            auth_is_mutating);

    static char *def_listen[] = {"127.0.0.1:6443"};
    struct cfg_list ls = listen_addrs.n ? listen_addrs : (struct cfg_list){def_listen, 1};
    for (size_t j = 0; j < ls.n; j++) {
        int is_unix = !strncmp(ls.v[j], "unix:", 5);
        /*
         * doc/security.md, "Transport": cleartext h2c on loopback and unix sockets only (loopback
         * with TLS configured only with --insecure-loopback); elsewhere TLS
         * and authentication (auth_listen refuses the rest)
         */
        if (auth_listen(app.auth, app.srv, ls.v[j], tls, insecure_loopback, &err) < 0)
            fatal("%s", err);
        int cleartext = !tls || is_unix || (insecure_loopback && h2s_addr_is_local(ls.v[j]));
        if (!strncmp(ls.v[j], "unix:", 5))
            log_info("listening on %s", ls.v[j]);
        else if (h2s_port(app.srv) && !strcmp(strrchr(ls.v[j], ':'), ":0"))
            log_info("listening on %.*s:%d", (int)(strrchr(ls.v[j], ':') - ls.v[j]), ls.v[j],
                     h2s_port(app.srv));
        else
            log_info("listening on %s%s", ls.v[j], cleartext ? "" : " (TLS)");
    }
    if (tls)
        SSL_CTX_free(tls); /* the listeners hold their own references */
    if (!strcmp(endpoint_reconciler_type, "lease"))
        kubernetes_service(&app, &ls);
    if (auth_required(app.auth))
        log_info("authentication required (%s%s%s)",
                 opt_str(client_ca_file) ? "client certificates" : "",
                 opt_str(client_ca_file) && opt_str(token_auth_file) ? ", " : "",
                 opt_str(token_auth_file) ? "bearer tokens" : "");
    else
        log_info("no --client-ca-file or --token-auth-file: every caller is system:anonymous in "
                 "system:masters (development mode)");
    log_info("ready: revision %llu, data in %s%s", (unsigned long long)store_rev(app.st), data_dir,
             strcmp(storage_backend, "etcd3") ? "" : " (a cache of etcd)");
    daemon_run(d, "serving");

    /* tunnels, then every open call (answers flushed best-effort), then the
     * store (ops still queued commit; their callers are gone) */
    tun_hub_free(app.tun);
    h2s_free(app.srv);
    api_end_reads(app.api);
    store_close(app.st);
    certexp_free(app.certs);
    api_free(app.api);
    free(ident);
    for (size_t j = 0; j < ARRAY_SIZE(app.psa_lists); j++)
        free_list(app.psa_lists[j]);
    audit_free(app.audit); /* writes what it holds */
    auth_free(app.auth);   /* after the calls holding its identities */
    satoken_free(app.sat);
    enc_free(app.enc);
    daemon_free(d);
    log_info("stopped");
    event_base_free(app.base);
    return 0;
}
