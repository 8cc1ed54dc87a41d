/*
 * client: the connection, the config file, kubectl-style errors and the
 * resuming watch loop. See client.h.
 */
#include "config.h"
#include "client.h"
#include "output.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl.h"
#include "grpc.h"
#include "tls.h"
#include "pb.h"
#include "util.h"

static char *cfg_server, *cfg_token, *cfg_ca, *cfg_cert, *cfg_key;
static char *cfg_path; /* the config file read, or NULL */
static int cfg_loaded;

/* The config file: --kubeconfig (must exist), $CORACLE_CONFIG, ~/.config/coracle/config. */
/* The server's warnings, as kubectl prints its Warning headers. */
static void print_warning(const char *msg, void *arg)
{
    (void)arg;
    fprintf(stderr, "Warning: %s\n", msg);
}

static void load_config(void)
{
    if (cfg_loaded)
        return;
    cfg_loaded = 1;
    char *path = NULL;
    int must = 0;
    const char *env = getenv("CORACLE_CONFIG");
    if (ctl_g.kubeconfig && *ctl_g.kubeconfig) {
        path = xstrdup(ctl_g.kubeconfig);
        must = 1;
    } else if (env && *env) {
        path = xstrdup(env);
    } else if (getenv("HOME")) {
        path = xasprintf("%s/.config/coracle/config", getenv("HOME"));
    }
    if (!path)
        return;
    struct stat st;
    if (stat(path, &st) < 0) {
        /* a missing default or $CORACLE_CONFIG file is an empty config, as kubectl's */
        if (errno != ENOENT || must) {
            fprintf(stderr, "error: stat %s: %s\n", path, strerror(errno));
            exit(1);
        }
        free(path);
        return;
    }
    const struct cfg_opt opts[] = {
        {"server", CFG_STR, &cfg_server, "ADDR", "the apiserver"},
        {"token", CFG_STR, &cfg_token, "TOKEN", "bearer token"},
        {"certificate-authority", CFG_STR, &cfg_ca, "FILE", "CA of the server's certificate"},
        {"client-certificate", CFG_STR, &cfg_cert, "FILE", "TLS client certificate"},
        {"client-key", CFG_STR, &cfg_key, "FILE", "its key"},
    };
    char *err = NULL;
    if (cfg_load(path, opts, ARRAY_SIZE(opts), &err) < 0) {
        fprintf(stderr, "error: %s\n", err);
        free(err);
        exit(1);
    }
    cfg_path = path;
}

/*
 * A file named in the config file: relative paths are relative to the
 * config file's directory (kubeconfig's rule). NULL if unset; malloc'd.
 */
static char *config_file_path(const char *v)
{
    if (!v || !*v)
        return NULL;
    if (v[0] == '/' || !cfg_path)
        return xstrdup(v);
    const char *slash = strrchr(cfg_path, '/');
    if (!slash)
        return xstrdup(v);
    return xasprintf("%.*s/%s", (int)(slash - cfg_path), cfg_path, v);
}

/* A flag's value if given, else the config file's (resolved). malloc'd or NULL. */
static char *flag_or_config(const char *flag, const char *cfgval)
{
    if (flag && *flag)
        return xstrdup(flag);
    load_config();
    return config_file_path(cfgval);
}

char *ctl_server_addr(void)
{
    if (ctl_g.server && *ctl_g.server)
        return xstrdup(ctl_g.server);
    const char *env = getenv("CORACLE_SERVER");
    if (env && *env)
        return xstrdup(env);
    load_config();
    if (cfg_server && *cfg_server)
        return xstrdup(cfg_server);
    return xstrdup(CTL_DEFAULT_SERVER);
}

int ctl_client_open(struct ctl_client *c)
{
    memset(c, 0, sizeof(*c));
    c->addr = ctl_server_addr();
    if (ctl_g.token && *ctl_g.token)
        c->token = xstrdup(ctl_g.token);
    else if (getenv("CORACLE_TOKEN") && *getenv("CORACLE_TOKEN"))
        c->token = xstrdup(getenv("CORACLE_TOKEN"));
    else {
        load_config();
        if (cfg_token && *cfg_token)
            c->token = xstrdup(cfg_token);
    }
    char *ca = flag_or_config(ctl_g.certificate_authority, cfg_ca);
    char *cert = flag_or_config(ctl_g.client_certificate, cfg_cert);
    char *key = flag_or_config(ctl_g.client_key, cfg_key);
    struct gcl_opts o = {.connect_timeout_ms = 5000,
                         .user_agent = "coraclectl/" PACKAGE_VERSION,
                         .on_warning = print_warning};
    char *err = NULL;
    int rc = gcl_opts_setup(&o, c->addr, ca, cert, key, c->token, &err);
    c->ca_file = ca;
    free(cert);
    free(key);
    if (rc < 0) {
        fprintf(stderr, "error: %s\n", err);
        free(err);
        ctl_client_close(c);
        return -1;
    }
    c->tls = o.tls;
    c->base = event_base_new();
    if (!c->base)
        fatal("event_base_new failed");
    c->g = gcl_new(c->base, c->addr, &o);
    if (!c->g) {
        fprintf(stderr,
                "error: cannot use server address \"%s\": expected host:port, https://host:port "
                "or unix:/path (from --server, CORACLE_SERVER or the config file)\n",
                c->addr);
        ctl_client_close(c);
        return -1;
    }
    return 0;
}

void ctl_client_close(struct ctl_client *c)
{
    if (c->g)
        gcl_free(c->g);
    if (c->base)
        event_base_free(c->base);
    if (c->tls)
        SSL_CTX_free(c->tls);
    free(c->addr);
    free(c->token);
    free(c->ca_file);
    memset(c, 0, sizeof(*c));
}

int ctl_call(struct ctl_client *c, const struct kind *k, const char *method,
             const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
             ProtobufCMessage **resp, char **errmsg)
{
    char *path = xasprintf("/%s/%s", k->service, method);
    *resp = NULL;
    *errmsg = NULL;
    int code = gcl_unary_sync(c->g, path, req, resp_desc, resp, errmsg);
    free(path);
    if (code != GRPC_OK && !*errmsg)
        *errmsg = xstrdup("");
    return code;
}

#define CTL_LIST_CHUNK 500

int ctl_list_all(struct ctl_client *c, const struct kind *k, const Coracle__V1__ListRequest *req,
                 ProtobufCMessage **resp, char **errmsg)
{
    Coracle__V1__ListRequest r = *req;
    Coracle__V1__PodList *all = NULL;
    char *token = NULL;
    int code;
    r.has_limit = 1;
    r.limit = CTL_LIST_CHUNK;
    *resp = NULL;
    for (;;) {
        ProtobufCMessage *page;
        r.continue_ = token;
        code = ctl_call(c, k, "List", &r.base, k->list_desc, &page, errmsg);
        free(token);
        token = NULL;
        if (code != GRPC_OK)
            break;
        /* every list is { ListMeta metadata = 1; repeated items = 2 } */
        Coracle__V1__PodList *l = (Coracle__V1__PodList *)page;
        if (l->metadata && l->metadata->continue_ && *l->metadata->continue_)
            token = xstrdup(l->metadata->continue_);
        if (!all)
            all = l;
        else {
            all->items =
                xrealloc(all->items, (all->n_items + l->n_items + 1) * sizeof(*all->items));
            memcpy(all->items + all->n_items, l->items, l->n_items * sizeof(*l->items));
            all->n_items += l->n_items;
            free(l->items);
            l->items = NULL;
            l->n_items = 0;
            protobuf_c_message_free_unpacked(page, NULL);
        }
        if (!token)
            break;
    }
    if (code != GRPC_OK) {
        if (all)
            protobuf_c_message_free_unpacked(&all->base, NULL);
        return code;
    }
    if (all->metadata && all->metadata->continue_) {
        free(all->metadata->continue_);
        all->metadata->continue_ = NULL;
    }
    *resp = &all->base;
    return GRPC_OK;
}

const char *ctl_reason(int code)
{
    switch (code) {
    case GRPC_NOT_FOUND:
        return "NotFound";
    case GRPC_ALREADY_EXISTS:
        return "AlreadyExists";
    case GRPC_ABORTED:
        return "Conflict";
    case GRPC_INVALID_ARGUMENT:
        return "Invalid";
    case GRPC_FAILED_PRECONDITION:
        return "BadRequest";
    case GRPC_PERMISSION_DENIED:
        return "Forbidden";
    case GRPC_UNAUTHENTICATED:
        return "Unauthorized";
    case GRPC_RESOURCE_EXHAUSTED:
        return "TooManyRequests";
    case GRPC_OUT_OF_RANGE:
        return "Expired";
    case GRPC_DEADLINE_EXCEEDED:
        return "Timeout";
    case GRPC_UNIMPLEMENTED:
        return "NotImplemented";
    case GRPC_INTERNAL:
        return "InternalError";
    case GRPC_UNAVAILABLE:
        return "ServiceUnavailable";
    default:
        return "Unknown";
    }
}

int ctl_tcp_connect(const char *addr, int *err, const char **why)
{
    const char *w_;
    const char **wp = why ? why : &w_;
    *err = 0;
    *wp = NULL;
    if (!strncmp(addr, "https://", 8))
        addr += 8;
    else if (!strncmp(addr, "http://", 7))
        addr += 7;
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return -1;
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h[hl - 1] = 0;
        h++;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(h, colon + 1, &hints, &res);
    if (gai || !res) {
        *wp = gai ? gai_strerror(gai) : "no address";
        return -1;
    }
    int fd = -1;
    struct timeval tv = {3, 0};
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            *err = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        *err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0)
        *err = 0;
    return fd;
}

/*
 * The names and addresses a server certificate is valid for (its SANs),
 * asked of the server at addr without verifying it: for the
 * hostname-mismatch message. Empty if it cannot be had. Nothing is sent
 * after the handshake.
 */
static void cert_names(const char *addr, char *out, size_t len)
{
    out[0] = 0;
    int e;
    int fd = ctl_tcp_connect(addr, &e, NULL);
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    if (fd < 0)
        return;
    ctx = SSL_CTX_new(TLS_client_method());
    ssl = ctx ? SSL_new(ctx) : NULL;
    if (!ssl)
        goto out;
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    static const unsigned char alpn[] = "\x02h2";
    SSL_set_alpn_protos(ssl, alpn, sizeof(alpn) - 1);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1)
        goto out;
    X509 *x = SSL_get1_peer_certificate(ssl);
    if (!x)
        goto out;
    struct buf b = {0};
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char ip[INET6_ADDRSTRLEN];
        const char *name = NULL;
        if (g->type == GEN_DNS)
            name = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
        else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 4)
            name = inet_ntop(AF_INET, ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof(ip));
        else if (g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == 16)
            name = inet_ntop(AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), ip, sizeof(ip));
        if (name)
            buf_printf(&b, "%s%s", b.len ? ", " : "", name);
    }
    GENERAL_NAMES_free(gens);
    X509_free(x);
    char *names = buf_take(&b);
    snprintf(out, len, "%s", names);
    free(names);
    SSL_shutdown(ssl);
out:
    if (ssl)
        SSL_free(ssl);
    if (ctx)
        SSL_CTX_free(ctx);
    close(fd);
}

/* The host part of addr ("https://h:p", "h:p", "[v6]:p"), into out. */
static void addr_host(const char *addr, char *out, size_t len)
{
    if (!strncmp(addr, "https://", 8))
        addr += 8;
    else if (!strncmp(addr, "http://", 7))
        addr += 7;
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
        addr++;
        n -= 2;
    }
    snprintf(out, len, "%.*s", (int)n, addr);
}

/* OpenSSL's words for a TLS failure ("certificate verify failed: ...") in Go's. */
static const char *go_words(const char *addr, const char *t, char *buf, size_t len)
{
    static const struct {
        const char *openssl, *go;
    } map[] = {
        /* our verification of the server's certificate */
        {"unable to get local issuer certificate", "x509: certificate signed by unknown authority"},
        {"self-signed certificate", "x509: certificate signed by unknown authority"},
        {"self signed certificate", "x509: certificate signed by unknown authority"},
        {"unable to verify the first certificate", "x509: certificate signed by unknown authority"},
        {"unable to get issuer certificate", "x509: certificate signed by unknown authority"},
        {"certificate has expired", "x509: certificate has expired or is not yet valid"},
        {"certificate is not yet valid", "x509: certificate has expired or is not yet valid"},
        {"unsupported certificate purpose",
         "x509: certificate specifies an incompatible key usage"},
        /* a server that does not speak TLS */
        {"wrong version number", "tls: first record does not look like a TLS handshake"},
        {"packet length too long", "tls: first record does not look like a TLS handshake"},
        {"record layer failure", "tls: first record does not look like a TLS handshake"},
        /* the server refusing our certificate (its alerts) */
        {"alert unknown ca", "remote error: tls: unknown certificate authority"},
        {"alert bad certificate", "remote error: tls: bad certificate"},
        {"alert certificate expired", "remote error: tls: expired certificate"},
        {"alert certificate required", "remote error: tls: certificate required"},
        {"alert certificate revoked", "remote error: tls: revoked certificate"},
        {"alert handshake failure", "remote error: tls: handshake failure"},
        {"alert protocol version", "remote error: tls: protocol version not supported"},
        {"no application protocol", "remote error: tls: no application protocol"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (strstr(t, map[i].openssl))
            return map[i].go;
    if (strstr(t, "Hostname mismatch") || strstr(t, "IP address mismatch")) {
        char host[256], names[512];
        addr_host(addr, host, sizeof(host));
        cert_names(addr, names, sizeof(names));
        if (*names)
            snprintf(buf, len, "x509: certificate is valid for %s, not %s", names, host);
        else
            snprintf(buf, len, "x509: certificate is not valid for %s", host);
        return buf;
    }
    snprintf(buf, len, "tls: %s", t);
    return buf;
}

/*
 * gcl says "TLS: reason(5)" (libevent's SSL_get_error() code) when the
 * socket failed under the handshake: the TCP connect failed, or the server
 * dropped us, mostly for our certificate, its alert lost to the reset
 * that our unread request causes. Find out with a connection of our own
 * that sends nothing after the handshake. "" means refused.
 */
static const char *tls_probe(const struct ctl_client *c, const char *addr, char *buf, size_t len)
{
    int e, fd = ctl_tcp_connect(addr, &e, NULL);
    if (fd < 0) {
        if (e == ECONNREFUSED)
            return "";
        snprintf(buf, len, "dial tcp %s: connect: %s", addr, e ? strerror(e) : "bad address");
        return buf;
    }
    const char *res = "tls: the server closed the connection during the handshake";
    char host[256], t[512] = "";
    addr_host(addr, host, sizeof(host));
    SSL *ssl = c && c->tls ? tls_client_ssl(c->tls, host) : NULL;
    if (!ssl)
        goto out;
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) {
        long vr = SSL_get_verify_result(ssl);
        snprintf(t, sizeof(t), "%s%s%s", tls_last_error(), vr != X509_V_OK ? ": " : "",
                 vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
    } else {
        /* TLS 1.3: a refused client certificate is the server's first answer */
        char b[64];
        int r = SSL_read(ssl, b, sizeof(b));
        if (r <= 0 && SSL_get_error(ssl, r) == SSL_ERROR_SSL)
            snprintf(t, sizeof(t), "%s", tls_last_error());
        else if (r > 0)
            res = "tls: the connection was lost (a new one works: try again)";
    }
    if (*t)
        res = go_words(addr, t, buf, len);
    SSL_free(ssl);
out:
    close(fd);
    return res;
}

/*
 * A TLS failure as gcl reports it ("connect to ADDR: TLS: certificate
 * verify failed: unable to get local issuer certificate") in Go's words,
 * as kubectl shows them; NULL if msg is no TLS failure, "" if the
 * connection was refused.
 */
static const char *tls_failure(const struct ctl_client *c, const char *addr, const char *msg,
                               char *buf, size_t len)
{
    const char *t = strstr(msg, ": TLS: ");
    if (!t)
        return NULL;
    t += 7;
    if (!strncmp(t, "reason(", 7))
        return tls_probe(c, addr, buf, len);
    return go_words(addr, t, buf, len);
}

/*
 * With several servers (a comma list), the one a connection error names
 * ("connect to ADDR: ...", "connection to ADDR lost"), else the first;
 * without its scheme, as kubectl names host:port.
 */
static const char *named_server(const char *addr, const char *msg, char *buf, size_t len)
{
    const char *p = addr;
    size_t n = strcspn(addr, ",");
    const char *m = strstr(msg, "connect to ");
    if (m)
        m += 11;
    else if ((m = strstr(msg, "connection to ")))
        m += 14;
    if (addr[n] && m) {
        const char *colon = strstr(m, ": "), *space = strchr(m, ' ');
        const char *end = colon && (!space || colon < space) ? colon : space;
        if (end) {
            p = m;
            n = (size_t)(end - m);
        }
    }
    if (!strncmp(p, "https://", 8) && n >= 8)
        p += 8, n -= 8;
    else if (!strncmp(p, "http://", 7) && n >= 7)
        p += 7, n -= 7;
    snprintf(buf, len, "%.*s", (int)n, p);
    return buf;
}

void ctl_print_error(const struct ctl_client *c, int code, const char *msg)
{
    char abuf[512];
    if (!msg)
        msg = "";
    const char *addr =
        named_server(c && c->addr ? c->addr : CTL_DEFAULT_SERVER, msg, abuf, sizeof(abuf));
    char buf[1024];
    log_debug("%s: %s", grpc_code_name(code), msg);
    const char *tls = code == GRPC_UNAVAILABLE ? tls_failure(c, addr, msg, buf, sizeof(buf)) : NULL;
    if (tls && !*tls) {
        fprintf(stderr,
                "The connection to the server %s was refused - did you specify the right "
                "host or port?\n",
                addr);
        return;
    }
    if (tls) {
        fprintf(stderr, "Unable to connect to the server: %s\n", tls);
        return;
    }
    if (code == GRPC_UNAVAILABLE && strstr(msg, "connect to ")) {
        if (strstr(msg, "refused"))
            fprintf(stderr,
                    "The connection to the server %s was refused - did you specify the right "
                    "host or port?\n",
                    addr);
        else if (!(c && c->tls) && strstr(msg, "Connection closed"))
            /* a TLS server drops a cleartext client at once */
            fprintf(stderr,
                    "Unable to connect to the server %s: %s (does the server want TLS? set "
                    "certificate-authority in the config file, or --certificate-authority)\n",
                    addr, msg);
        else
            fprintf(stderr,
                    "Unable to connect to the server %s: %s (check --server, CORACLE_SERVER or "
                    "the config file)\n",
                    addr, msg);
        return;
    }
    if (code == GRPC_UNAVAILABLE && !strncmp(msg, "connection", 10)) {
        if (!(c && c->tls) && strstr(msg, "lost"))
            fprintf(stderr,
                    "Unable to connect to the server %s: %s (does the server want TLS? set "
                    "certificate-authority in the config file, or --certificate-authority)\n",
                    addr, msg);
        else
            fprintf(stderr, "Unable to connect to the server %s: %s\n", addr, msg);
        return;
    }
    if (code == GRPC_UNAUTHENTICATED) {
        /* kubectl: the server's reason in parentheses ("Unauthorized") */
        fprintf(stderr, "error: You must be logged in to the server (%s)\n",
                *msg ? msg : "Unauthorized");
        return;
    }
    fprintf(stderr, "Error from server (%s): %s\n", ctl_reason(code),
            *msg ? msg : grpc_code_name(code));
}

/* ------------------------------------------------------------ watch */

static void watch_start(struct ctl_watch *w);
static void watch_retry(struct ctl_watch *w);

static void list_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct ctl_watch *w = arg;
    if (w->list)
        protobuf_c_message_free_unpacked(w->list, NULL);
    w->list = pb_decode(w->k->list_desc, msg, len);
}

static void watch_list(struct ctl_watch *w, const char *token);

/*
 * The end of one page of the (re)list: pages are gathered (kubectl's
 * chunking, so no single message grows with the cluster); after the last
 * one the items are handed over and the watch starts from the list's
 * revision.
 */
static void list_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct ctl_watch *w = arg;
    ProtobufCMessage *resp = w->list;
    w->list = NULL;
    w->call = NULL;
    if (w->stop)
        goto stop;
    if (code == GRPC_OK && !resp) {
        code = GRPC_INTERNAL;
        message = "cannot decode the list";
    }
    if (code == GRPC_OUT_OF_RANGE && w->acc) {
        /* the continue token expired: list again from the start */
        protobuf_c_message_free_unpacked(w->acc, NULL);
        w->acc = NULL;
        watch_list(w, NULL);
        goto out;
    }
    if (code != GRPC_OK) {
        if (w->acc)
            protobuf_c_message_free_unpacked(w->acc, NULL);
        w->acc = NULL;
        if (code == GRPC_UNAVAILABLE && w->listed) {
            watch_retry(w);
            goto out;
        }
        ctl_print_error(w->c, code, message);
        w->rc = 1;
        goto stop;
    }
    /* every list is { ListMeta metadata = 1; repeated items = 2 } */
    Coracle__V1__PodList *l = (Coracle__V1__PodList *)resp;
    char *token = l->metadata && l->metadata->continue_ && *l->metadata->continue_
                      ? xstrdup(l->metadata->continue_)
                      : NULL;
    if (!w->acc) {
        w->acc = resp;
    } else {
        Coracle__V1__PodList *a = (Coracle__V1__PodList *)w->acc;
        a->items = xrealloc(a->items, (a->n_items + l->n_items + 1) * sizeof(*a->items));
        memcpy(a->items + a->n_items, l->items, l->n_items * sizeof(*l->items));
        a->n_items += l->n_items;
        free(l->items);
        l->items = NULL;
        l->n_items = 0;
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    resp = NULL;
    if (token) {
        watch_list(w, token);
        free(token);
        goto out;
    }
    resp = w->acc;
    w->acc = NULL;
    l = (Coracle__V1__PodList *)resp;
    free(w->rv);
    w->rv =
        xstrdup(l->metadata && l->metadata->resourceversion ? l->metadata->resourceversion : "0");
    w->listed = 1;
    w->backoff_ms = 0;
    if (w->on_list && w->on_list(w, resp, w->arg))
        goto stop;
    watch_start(w);
    goto out;
stop:
    w->stop = 1;
    event_base_loopbreak(w->c->base);
out:
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
}

#define CTL_WATCH_LIST_CHUNK 500

static void watch_list(struct ctl_watch *w, const char *token)
{
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = (char *)w->namespace_;
    req.labelselector = (char *)w->label_selector;
    req.fieldselector = (char *)w->field_selector;
    req.has_limit = 1;
    req.limit = CTL_WATCH_LIST_CHUNK;
    req.continue_ = (char *)token;
    char *path = xasprintf("/%s/List", w->k->service);
    w->call = gcl_call(w->c->g, path, &req.base, list_msg, list_done, w, 0);
    free(path);
}

static void watch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ctl_watch *w = arg;
    watch_start(w);
}

static void watch_retry(struct ctl_watch *w)
{
    if (w->stop) {
        event_base_loopbreak(w->c->base);
        return;
    }
    if (!w->timer)
        w->timer = evtimer_new(w->c->base, watch_retry_cb, w);
    struct timeval tv = {w->backoff_ms / 1000, (w->backoff_ms % 1000) * 1000};
    evtimer_add(w->timer, &tv);
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : 250;
    if (w->backoff_ms > 8000)
        w->backoff_ms = 8000;
}

static void watch_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct ctl_watch *w = arg;
    if (w->stop)
        return;
    ProtobufCMessage *m = pb_decode(w->k->event_desc, msg, len);
    if (!m)
        return;
    w->backoff_ms = 0;
    /* every watch event is { type = 1; object = 2 } */
    Coracle__V1__PodWatchEvent *ev = (Coracle__V1__PodWatchEvent *)m;
    ProtobufCMessage *obj = (ProtobufCMessage *)ev->object;
    const Coracle__V1__ObjectMeta *md = obj ? kind_meta(obj) : NULL;
    if (md && md->resourceversion && *md->resourceversion) {
        free(w->rv);
        w->rv = xstrdup(md->resourceversion);
    }
    const char *type = ev->type ? ev->type : "";
    if (strcmp(type, "BOOKMARK") && strcmp(type, "ERROR") && obj &&
        w->on_event(w, type, obj, w->arg)) {
        /* ctl_watch_run cancels the call once the loop is out of this callback */
        w->stop = 1;
        event_base_loopbreak(w->c->base);
    }
    protobuf_c_message_free_unpacked(m, NULL);
}

static void watch_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct ctl_watch *w = arg;
    w->call = NULL;
    if (w->stop) {
        event_base_loopbreak(w->c->base);
        return;
    }
    if (code == GRPC_OUT_OF_RANGE) {
        log_debug("watch from %s: %s; listing again", w->rv ? w->rv : "?", message);
        free(w->rv);
        w->rv = NULL;
        watch_start(w);
        return;
    }
    if (code == GRPC_OK || code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED ||
        code == GRPC_CANCELLED || code == GRPC_INTERNAL) {
        log_debug("watch ended (%s: %s), resuming from %s", grpc_code_name(code), message,
                  w->rv ? w->rv : "a new list");
        watch_retry(w);
        return;
    }
    ctl_print_error(w->c, code, message);
    w->rc = 1;
    w->stop = 1;
    event_base_loopbreak(w->c->base);
}

static void watch_start(struct ctl_watch *w)
{
    if (!w->rv) {
        watch_list(w, NULL);
        return;
    }
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = (char *)w->namespace_;
    req.labelselector = (char *)w->label_selector;
    req.fieldselector = (char *)w->field_selector;
    req.resourceversion = w->rv;
    req.has_allowwatchbookmarks = 1;
    req.allowwatchbookmarks = 1;
    char *path = xasprintf("/%s/Watch", w->k->service);
    w->call = gcl_call(w->c->g, path, &req.base, watch_msg, watch_done, w, 0);
    free(path);
}

int ctl_watch_run(struct ctl_watch *w, const char *start_rv)
{
    w->rv = start_rv ? xstrdup(start_rv) : NULL;
    w->stop = 0;
    w->rc = 0;
    w->backoff_ms = 0;
    w->listed = 0;
    w->list = NULL;
    w->acc = NULL;
    watch_start(w);
    if (!w->stop)
        event_base_dispatch(w->c->base);
    if (w->call)
        gcl_call_cancel(w->call);
    if (w->timer)
        event_free(w->timer);
    w->timer = NULL;
    if (w->acc)
        protobuf_c_message_free_unpacked(w->acc, NULL);
    w->acc = NULL;
    free(w->rv);
    w->rv = NULL;
    return w->rc;
}

int ctl_list_names(struct ctl_client *c, const struct kind *k, const char *lsel,
                   ProtobufCMessage **list, const char ***names, size_t *n)
{
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = (char *)(k->namespaced ? ctl_namespace() : "");
    req.labelselector = (char *)lsel;
    char *err;
    int code = ctl_list_all(c, k, &req, list, &err);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return -1;
    }
    size_t ni;
    ProtobufCMessage **items = ctl_list_items(*list, &ni);
    *names = xcalloc(ni + 1, sizeof(**names));
    *n = 0;
    for (size_t i = 0; i < ni; i++) {
        const Coracle__V1__ObjectMeta *md = kind_meta(items[i]);
        if (md && md->name)
            (*names)[(*n)++] = md->name;
    }
    if (!*n)
        ctl_print_none(k, k->namespaced ? ctl_namespace() : NULL);
    return 0;
}
