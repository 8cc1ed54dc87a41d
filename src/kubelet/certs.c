/*
 * certs: join with a bootstrap token, then renew the client certificate.
 * See certs.h.
 */
#include "config.h"
#include "certs.h"
#include "coracle.pb-c.h"
#include "grpc.h"
#include "kinds.h"
#include "pki.h"
#include "tls.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CSR_SERVICE "/coracle.v1.CertificateSigningRequests/"
#define CERT_FILE "kubelet-client-current.pem"
#define CA_FILE "ca.crt"

/* ---------------------------------------------------------------- files */

static char *pki_path(const char *root, const char *name)
{
    return xasprintf("%s/pki/%s", root, name);
}

/* Writes data to path through a temporary file, mode 0600, synced, renamed. 0 or -1 with *err. */
static int write_secret(const char *path, const char *a, const char *b, char **err)
{
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t al = strlen(a), bl = b ? strlen(b) : 0;
    int ok = fd >= 0 && write(fd, a, al) == (ssize_t)al &&
             (!bl || write(fd, b, bl) == (ssize_t)bl) && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp, path) < 0) {
        *err = xasprintf("cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char chunk[4096];
    size_t n;
    char *out = NULL;
    size_t len = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && len < (1u << 20)) {
        out = xrealloc(out, len + n + 1);
        memcpy(out + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (out)
        out[len] = 0;
    return out;
}

/* notAfter of the certificate in path, or 0. */
static int64_t cert_not_after(const char *path, int64_t *not_before)
{
    char *pem = read_text(path);
    int64_t nb = 0, na = 0;
    if (pem && pki_cert_times(pem, strlen(pem), &nb, &na) < 0)
        na = 0;
    free(pem);
    if (not_before)
        *not_before = nb;
    return na;
}

int klet_certs_joined(const char *root_dir)
{
    char *p = pki_path(root_dir, CERT_FILE);
    int r = access(p, R_OK) == 0;
    free(p);
    return r;
}

/* ---------------------------------------------------------------- discovery */

/* "https://host:port", "host:port", "[v6]:port" into host and port (malloc'd). */
static int split_server(const char *server, char **host, char **port)
{
    const char *s = server;
    if (!strncmp(s, "https://", 8))
        s += 8;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || !colon[1] || strchr(s, ','))
        return -1;
    const char *h = s, *he = colon;
    if (*h == '[' && he[-1] == ']')
        h++, he--;
    *host = xstrndup(h, (size_t)(he - h));
    *port = xstrdup(colon + 1);
    return 0;
}

static int tcp_connect(const char *host, const char *port, char **err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int r = getaddrinfo(host, port, &hints, &res);
    if (r) {
        *err = xasprintf("cannot resolve %s: %s", host, gai_strerror(r));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        struct timeval tv = {10, 0};
        if (fd >= 0) {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        *err = xasprintf("cannot connect to %s:%s: %s", host, port, strerror(errno));
    return fd;
}

static char *cert_pem(X509 *c)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *out = NULL;
    if (b && PEM_write_bio_X509(b, c)) {
        long n = BIO_get_mem_data(b, &p);
        out = xstrndup(p, (size_t)n);
    }
    BIO_free(b);
    return out;
}

/*
 * The CA among the certificates the apiserver presents whose key hashes to
 * pin and which signed the server's certificate, as PEM (malloc'd); NULL
 * with *err listing what was presented.
 */
static char *chain_ca(SSL *ssl, const char *pin, char **err)
{
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    X509 *leaf = SSL_get0_peer_certificate(ssl);
    char seen[1024] = "";
    size_t sl = 0;
    for (int i = 0; chain && leaf && i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        char h[PKI_HASH_LEN];
        if (pki_spki_hash(c, h) < 0)
            continue;
        if (!strcmp(h, pin) && X509_verify(leaf, X509_get0_pubkey(c)) == 1)
            return cert_pem(c);
        if (sl + strlen(h) + 3 < sizeof(seen))
            sl += (size_t)snprintf(seen + sl, sizeof(seen) - sl, "%s%s", sl ? ", " : "", h);
    }
    ERR_clear_error();
    *err = xasprintf("the apiserver presents no CA with --ca-cert-hash %s that signed its "
                     "certificate (it presents %s): a wrong hash, or not the cluster you meant",
                     pin, sl ? seen : "no certificate");
    return NULL;
}

/* The cluster CA (PEM, malloc'd), pinned by hash: see certs.h. NULL with *err. */
static char *discover_ca(const char *server, const char *pin, char **err)
{
    char *host = NULL, *port = NULL, *pem = NULL;
    if (split_server(server, &host, &port) < 0) {
        *err = xasprintf("--server \"%s\": joining needs one https://host:port address", server);
        return NULL;
    }
    int fd = tcp_connect(host, port, err);
    SSL_CTX *ctx = fd >= 0 ? SSL_CTX_new(TLS_client_method()) : NULL;
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (ssl) {
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL); /* the pin decides, below */
        SSL_set_alpn_protos(ssl, (const unsigned char *)"\x02h2", 3);
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set_fd(ssl, fd);
        if (SSL_connect(ssl) == 1)
            pem = chain_ca(ssl, pin, err);
        else
            *err = xasprintf("TLS handshake with %s:%s failed: %s", host, port, tls_last_error());
        SSL_shutdown(ssl);
    } else if (fd >= 0) {
        *err = xasprintf("cannot set up TLS: %s", tls_last_error());
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    free(host);
    free(port);
    return pem;
}

/* ---------------------------------------------------------------- one CSR */

typedef void (*kcsr_done_fn)(void *arg, const char *cert, const char *key, const char *err);

/* A CSR sent and watched until it is signed or refused (on the caller's loop). */
struct kcsr {
    gcl_t *g;
    char *key_pem, *csr_pem, *name, *node;
    gcl_call_t *call;
    struct event *ev; /* the watch's restart, then the deferred end */
    kcsr_done_fn done;
    void *arg;
    char *cert, *err; /* the outcome, once decided */
    int decided;
};

static void kcsr_free(struct kcsr *r)
{
    if (r->ev)
        event_free(r->ev);
    free(r->key_pem);
    free(r->csr_pem);
    free(r->name);
    free(r->node);
    free(r->cert);
    free(r->err);
    free(r);
}

static void kcsr_end_cb(evutil_socket_t fd, short what, void *arg)
{
    struct kcsr *r = arg;
    if (r->call) {
        gcl_call_t *c = r->call;
        r->call = NULL;
        gcl_call_cancel(c);
    }
    r->done(r->arg, r->cert, r->key_pem, r->err);
    kcsr_free(r);
}

/* Decides (once) and ends from the loop, outside gcl's callbacks. */
static void kcsr_decide(struct kcsr *r, const char *cert, char *err)
{
    if (r->decided) {
        free(err);
        return;
    }
    r->decided = 1;
    r->cert = cert ? xstrdup(cert) : NULL;
    r->err = err;
    struct event_base *base = event_get_base(r->ev);
    event_free(r->ev);
    r->ev = event_new(base, -1, 0, kcsr_end_cb, r);
    event_active(r->ev, 0, 0);
}

/* What the CSR's state decides, if anything. */
static void kcsr_look(struct kcsr *r, const Coracle__V1__CertificateSigningRequest *csr)
{
    const Coracle__V1__CertificateSigningRequestCondition *c;
    if ((c = pki_csr_cond(csr, "Denied")) || (c = pki_csr_cond(csr, "Failed")))
        kcsr_decide(r, NULL,
                    xasprintf("certificate signing request %s was %s: %s: %s", r->name,
                              !strcmp(c->type, "Denied") ? "denied" : "refused by the signer",
                              c->reason ? c->reason : "", c->message ? c->message : ""));
    else if (csr->status && csr->status->certificate.len) {
        char *pem =
            xstrndup((const char *)csr->status->certificate.data, csr->status->certificate.len);
        kcsr_decide(r, pem, NULL);
        free(pem);
    }
}

static void kcsr_watch(struct kcsr *r);

static void watch_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct kcsr *r = arg;
    Coracle__V1__CertificateSigningRequestWatchEvent *ev =
        coracle__v1__certificate_signing_request_watch_event__unpack(NULL, len, msg);
    if (!ev)
        return;
    const Coracle__V1__CertificateSigningRequest *csr = ev->object;
    if (csr && csr->metadata && csr->metadata->name && !strcmp(csr->metadata->name, r->name) &&
        ev->type && strcmp(ev->type, "BOOKMARK")) {
        if (!strcmp(ev->type, "DELETED"))
            kcsr_decide(r, NULL, xasprintf("certificate signing request %s was deleted", r->name));
        else
            kcsr_look(r, csr);
    }
    coracle__v1__certificate_signing_request_watch_event__free_unpacked(ev, NULL);
}

static void watch_again_cb(evutil_socket_t fd, short what, void *arg)
{
    kcsr_watch(arg);
}

static void watch_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct kcsr *r = arg;
    if (r->call == call)
        r->call = NULL;
    if (r->decided)
        return;
    if (code == GRPC_UNAUTHENTICATED || code == GRPC_PERMISSION_DENIED) {
        kcsr_decide(r, NULL,
                    xasprintf("watching certificate signing request %s: %s", r->name, message));
        return;
    }
    /* the stream ended (the server restarted, a timeout): watch again */
    log_info("certificate signing request %s: watch ended (%s: %s); watching again", r->name,
             grpc_code_name(code), message);
    struct timeval tv = {1, 0};
    event_add(r->ev, &tv);
}

static void kcsr_watch(struct kcsr *r)
{
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    char *sel = xasprintf("metadata.name=%s", r->name);
    req.fieldselector = sel;
    r->call = gcl_call(r->g, CSR_SERVICE "Watch", &req.base, watch_msg, watch_done, r, 0);
    free(sel);
}

static void create_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct kcsr *r = arg;
    Coracle__V1__CertificateSigningRequest *csr =
        coracle__v1__certificate_signing_request__unpack(NULL, len, msg);
    if (csr && csr->metadata && csr->metadata->name) {
        free(r->name);
        r->name = xstrdup(csr->metadata->name);
    }
    if (csr)
        coracle__v1__certificate_signing_request__free_unpacked(csr, NULL);
}

static void create_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct kcsr *r = arg;
    r->call = NULL;
    if (code != GRPC_OK || !r->name) {
        kcsr_decide(r, NULL,
                    xasprintf("the apiserver refused the certificate signing request: %s: %s",
                              grpc_code_name(code), message && *message ? message : "no answer"));
        return;
    }
    log_info("sent certificate signing request %s for system:node:%s; waiting for it to be "
             "approved and signed",
             r->name, r->node);
    kcsr_watch(r);
}

/*
 * A new key and a CSR for system:node:<node> through g; done gets the
 * certificate and key (PEM, valid during the call) or why not.
 */
static void kcsr_start(struct event_base *base, gcl_t *g, const char *node, kcsr_done_fn done,
                       void *arg)
{
    struct kcsr *r = xcalloc(1, sizeof(*r));
    r->g = g;
    r->node = xstrdup(node);
    r->done = done;
    r->arg = arg;
    r->ev = evtimer_new(base, watch_again_cb, r);
    char *cn = xasprintf("system:node:%s", node), *err = NULL;
    int rc = pki_new_key_csr(cn, "system:nodes", &r->key_pem, &r->csr_pem, &err);
    free(cn);
    if (rc < 0) {
        kcsr_decide(r, NULL, err);
        return;
    }
    static char *usages[] = {"digital signature", "client auth"};
    Coracle__V1__CertificateSigningRequest csr = CORACLE__V1__CERTIFICATE_SIGNING_REQUEST__INIT;
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__CertificateSigningRequestSpec sp =
        CORACLE__V1__CERTIFICATE_SIGNING_REQUEST_SPEC__INIT;
    m.generatename = "node-csr-";
    sp.has_request = 1;
    sp.request.data = (uint8_t *)r->csr_pem;
    sp.request.len = strlen(r->csr_pem);
    sp.signername = PKI_SIGNER_KUBELET_CLIENT;
    sp.usages = usages;
    sp.n_usages = 2;
    csr.metadata = &m;
    csr.spec = &sp;
    r->call = gcl_call(g, CSR_SERVICE "Create", &csr.base, create_msg, create_done, r, 30000);
}

/* ---------------------------------------------------------------- join */

struct join_wait {
    struct event_base *base;
    char *cert, *key, *err;
};

static void join_done(void *arg, const char *cert, const char *key, const char *err)
{
    struct join_wait *w = arg;
    w->cert = cert ? xstrdup(cert) : NULL;
    w->key = key ? xstrdup(key) : NULL;
    w->err = err ? xstrdup(err) : NULL;
    event_base_loopbreak(w->base);
}

/* Lower-cases the hex of "sha256:HEX"; -1 if pin is not of that shape. */
static int norm_pin(const char *in, char out[PKI_HASH_LEN])
{
    if (strncmp(in, "sha256:", 7) || strlen(in) != PKI_HASH_LEN - 1)
        return -1;
    for (size_t i = 0; i < PKI_HASH_LEN - 1; i++) {
        out[i] = (char)tolower((unsigned char)in[i]);
        if (i >= 7 && !isxdigit((unsigned char)in[i]))
            return -1;
    }
    out[PKI_HASH_LEN - 1] = 0;
    return 0;
}

/* The CSR through a connection verified against ca and authenticated by the token. */
static int join_request(const struct klet_join *j, const char *ca, char **cert, char **key,
                        char **err)
{
    struct gcl_opts o = {.connect_timeout_ms = 10000,
                         .user_agent = "coracle-kubelet/" PACKAGE_VERSION};
    char *url =
        strncmp(j->server, "https://", 8) ? xasprintf("https://%s", j->server) : xstrdup(j->server);
    if (gcl_opts_setup(&o, url, ca, NULL, NULL, j->token, err) < 0) {
        free(url);
        return -1;
    }
    struct join_wait w = {event_base_new(), NULL, NULL, NULL};
    gcl_t *g = w.base ? gcl_new(w.base, url, &o) : NULL;
    SSL_CTX_free(o.tls);
    free(url);
    if (!g) {
        *err = xasprintf("cannot use --server \"%s\"", j->server);
        if (w.base)
            event_base_free(w.base);
        return -1;
    }
    kcsr_start(w.base, g, j->node_name, join_done, &w);
    event_base_dispatch(w.base);
    gcl_free(g);
    event_base_free(w.base);
    if (w.err || !w.cert) {
        *err = w.err ? w.err : xstrdup("no certificate");
        free(w.cert);
        free(w.key);
        return -1;
    }
    *cert = w.cert;
    *key = w.key;
    return 0;
}

int klet_certs_join(const struct klet_join *j, char **ca, char **cert, char **err)
{
    *err = NULL;
    *ca = pki_path(j->root_dir, CA_FILE);
    *cert = pki_path(j->root_dir, CERT_FILE);
    int64_t na = cert_not_after(*cert, NULL);
    if (na > (int64_t)time(NULL) && access(*ca, R_OK) == 0)
        return 0; /* joined before: the token is not needed */
    if (na)
        log_warn("the client certificate in %s expired; joining again", *cert);
    char pin[PKI_HASH_LEN], *dir = xasprintf("%s/pki", j->root_dir);
    int r = -1;
    char *ca_pem = NULL, *crt = NULL, *key = NULL;
    if (!j->token || !*j->token || !j->ca_hash || !*j->ca_hash) {
        *err = xasprintf("no client certificate in %s: give --token and --ca-cert-hash to join "
                         "the cluster (coraclectl token create prints them)",
                         dir);
    } else if (norm_pin(j->ca_hash, pin) < 0) {
        *err = xasprintf("--ca-cert-hash \"%s\": expected sha256: and 64 hex digits", j->ca_hash);
    } else if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        *err = xasprintf("mkdir %s: %s", dir, strerror(errno));
    } else if ((ca_pem = discover_ca(j->server, pin, err))) {
        log_info("the apiserver's CA matches --ca-cert-hash %s", pin);
        if (write_secret(*ca, ca_pem, NULL, err) == 0 &&
            join_request(j, *ca, &crt, &key, err) == 0 && write_secret(*cert, crt, key, err) == 0) {
            log_info("joined: client certificate for system:node:%s in %s", j->node_name, *cert);
            r = 0;
        }
    }
    free(ca_pem);
    free(crt);
    free(key);
    free(dir);
    if (r < 0) {
        free(*ca);
        free(*cert);
        *ca = *cert = NULL;
    }
    return r;
}

/* ---------------------------------------------------------------- rotation */

struct klet_rot {
    struct event_base *base;
    gcl_t *api;
    gcl_t **gcls;
    size_t n;
    char *ca, *cert, *node;
    struct event *timer;
    int fails;
    int busy;                /* a CSR is out */
    unsigned long long errs; /* failed renewals, ever */
};

static void rot_arm(klet_rot_t *r, int64_t delay_s)
{
    struct timeval tv = {(time_t)(delay_s > 0 ? delay_s : 0), 0};
    evtimer_add(r->timer, &tv);
}

/* The next renewal: at 70-90% of the current certificate's lifetime. */
static void rot_schedule(klet_rot_t *r)
{
    int64_t nb, na = cert_not_after(r->cert, &nb), now = (int64_t)time(NULL);
    if (!na) {
        log_warn("cannot read the client certificate %s; renewal not scheduled", r->cert);
        return;
    }
    double share = 0.7 + 0.2 * ((double)(random() % 1000) / 1000.0);
    int64_t at = nb + (int64_t)((double)(na - nb) * share);
    char until[64];
    struct tm tm;
    time_t t = (time_t)na;
    strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    log_info("client certificate valid until %s; renewal in %lld s", until,
             (long long)(at > now ? at - now : 0));
    rot_arm(r, at - now);
}

static void rot_done(void *arg, const char *cert, const char *key, const char *err)
{
    klet_rot_t *r = arg;
    char *werr = NULL;
    r->busy = 0;
    SSL_CTX *ctx = NULL;
    if (!err && write_secret(r->cert, cert, key, &werr) == 0)
        ctx = tls_client_ctx(r->ca, r->cert, r->cert, &werr);
    if (!ctx) {
        int64_t delay = 5LL << (r->fails < 6 ? r->fails : 6);
        r->fails++;
        r->errs++;
        log_warn("client certificate renewal failed: %s; the current one stays in use, next "
                 "try in %lld s",
                 err ? err : werr, (long long)delay);
        free(werr);
        rot_arm(r, delay);
        return;
    }
    for (size_t i = 0; i < r->n; i++)
        gcl_set_tls(r->gcls[i], ctx);
    SSL_CTX_free(ctx);
    r->fails = 0;
    log_info("rotated the client certificate: new connections use the renewed one");
    rot_schedule(r);
}

static void rot_fire(evutil_socket_t fd, short what, void *arg)
{
    klet_rot_t *r = arg;
    if (r->busy)
        return;
    r->busy = 1;
    log_info("renewing the client certificate for system:node:%s", r->node);
    kcsr_start(r->base, r->api, r->node, rot_done, r);
}

klet_rot_t *klet_certs_rotate(struct event_base *base, gcl_t *api, gcl_t *const *gcls, size_t n,
                              const char *ca, const char *cert, const char *node_name)
{
    klet_rot_t *r = xcalloc(1, sizeof(*r));
    r->base = base;
    r->api = api;
    r->gcls = xmalloc(n * sizeof(*r->gcls));
    memcpy(r->gcls, gcls, n * sizeof(*gcls));
    r->n = n;
    r->ca = xstrdup(ca);
    r->cert = xstrdup(cert);
    r->node = xstrdup(node_name);
    r->timer = evtimer_new(base, rot_fire, r);
    rot_schedule(r);
    return r;
}

void klet_certs_rotate_free(klet_rot_t *r)
{
    if (!r)
        return;
    event_free(r->timer);
    free(r->gcls);
    free(r->ca);
    free(r->cert);
    free(r->node);
    free(r);
}

void klet_certs_metrics(FILE *f, const klet_rot_t *r)
{
    int64_t na = cert_not_after(r->cert, NULL);
    fprintf(f,
            "# HELP coracle_kubelet_certificate_manager_client_ttl_seconds Seconds until the "
            "kubelet's client certificate expires (negative once it has).\n"
            "# TYPE coracle_kubelet_certificate_manager_client_ttl_seconds gauge\n"
            "coracle_kubelet_certificate_manager_client_ttl_seconds %lld\n"
            "# HELP coracle_kubelet_certificate_manager_client_expiration_renew_errors Failed "
            "renewals of the client certificate.\n"
            "# TYPE coracle_kubelet_certificate_manager_client_expiration_renew_errors counter\n"
            "coracle_kubelet_certificate_manager_client_expiration_renew_errors %llu\n",
            (long long)(na - (int64_t)time(NULL)), r->errs);
}
