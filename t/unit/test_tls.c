/*
 * test_tls: h2s and gcl over TLS with certificates made by contrib/certs:
 * client identities (CN/O), a certificate from another CA, an expired
 * one, a server checked against the wrong CA or name, cleartext against a
 * TLS port; and the hostile-client limits of h2s: slowloris (preface and
 * headers timeout), a PING flood, the in-flight limits and the cap on
 * streams per connection.
 */
#include "config.h"
#include "gcl.h"
#include "grpc.h"
#include "h2s.h"
#include "tap.h"
#include "tls.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct event_base *base;
static char dir[] = "/tmp/test_tls.XXXXXX";
static h2s_call_t *held[64];
static int nheld;

static void h_who(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    char *u, **g;
    if (tls_peer_identity(h2s_call_ssl(c), &u, &g) < 0) {
        h2s_call_reply(c, "anonymous", 9);
        return;
    }
    char out[512];
    size_t n = (size_t)snprintf(out, sizeof(out), "%s|", u);
    for (size_t i = 0; g[i]; i++)
        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "," : "", g[i]);
    tls_identity_free(u, g);
    h2s_call_reply(c, out, n);
}

static void h_hold(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    if (nheld < 64)
        held[nheld++] = c;
    else
        h2s_call_finish(c, GRPC_INTERNAL, "too many held");
}

static int claim_key;

/* A watch counted against one owner, at most 1 at a time. */
static void h_claim(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    if (h2s_call_claim(c, &claim_key, 1) < 0) {
        h2s_call_finish(c, GRPC_RESOURCE_EXHAUSTED, "too many watches for this user");
        return;
    }
    h_hold(c, msg, len, arg);
}

/* Never answers: the client resets the stream (rapid reset test). */
static void h_ignore(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
}

static void release_held(void)
{
    for (int i = 0; i < nheld; i++)
        h2s_call_finish(held[i], GRPC_OK, NULL);
    nheld = 0;
}

static int is_mut(const char *path)
{
    return strstr(path, "Create") != NULL;
}

struct res {
    int done, code;
    char msg[512];
    char body[512];
};

static void r_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct res *r = arg;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)len, (const char *)msg);
}

static void r_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct res *r = arg;
    r->done = 1;
    r->code = code;
    snprintf(r->msg, sizeof(r->msg), "%s", message);
}

static void run_ms(int ms)
{
    int64_t end = mono_ns() + (int64_t)ms * 1000000;
    while (mono_ns() < end) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(2000);
    }
}

/* Runs the loop until cond holds or ms pass: for what must happen, where a
   fixed wait would assume this machine's speed (ms only bounds a hang). */
#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        int64_t end_ = mono_ns() + (int64_t)(ms)*1000000;                                          \
        while (!(cond) && mono_ns() < end_)                                                        \
            run_ms(5);                                                                             \
    } while (0)

static void run_until(int *flag, int ms)
{
    int64_t end = mono_ns() + (int64_t)ms * 1000000;
    while (!*flag && mono_ns() < end) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static char *path(const char *d, const char *f)
{
    return xasprintf("%s/%s/%s", dir, d, f);
}

/* One call with the given client TLS files; fills r. */
static void call_with(const char *addr, const char *ca, const char *cert, const char *key,
                      const char *server_name, const char *method, struct res *r)
{
    memset(r, 0, sizeof(*r));
    struct gcl_opts o = {0};
    char *err = NULL;
    if (gcl_opts_setup(&o, addr, ca, cert, key, NULL, &err) < 0) {
        r->done = 1;
        r->code = -1;
        snprintf(r->msg, sizeof(r->msg), "setup: %s", err);
        free(err);
        return;
    }
    o.tls_server_name = server_name;
    gcl_t *g = gcl_new(base, addr, &o);
    SSL_CTX_free(o.tls);
    if (!g) {
        r->done = 1;
        r->code = -2;
        return;
    }
    gcl_call_raw(g, method, "x", 1, r_msg, r_done, r, 5000);
    run_until(&r->done, 6000);
    gcl_free(g);
}

/* An expired client certificate for CN=admin signed by ca (written to out.crt/out.key). */
static int make_expired(const char *ca_crt, const char *ca_key, const char *out_crt,
                        const char *out_key)
{
    FILE *f = fopen(ca_crt, "r");
    X509 *ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    f = fopen(ca_key, "r");
    EVP_PKEY *cak = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int rc = -1;
    if (!ca || !cak || !k || !x)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_gmtime_adj(X509_getm_notBefore(x), -2 * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), -86400);
    X509_set_pubkey(x, k);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"system:masters", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"admin", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    if (!X509_sign(x, cak, EVP_sha256()))
        goto out;
    f = fopen(out_crt, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(out_key, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    rc = 0;
out:
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(k);
    EVP_PKEY_free(cak);
    return rc;
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 if the server closed fd (after draining what it sent). */
static int raw_closed(int fd)
{
    char b[4096];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const char *src = getenv("CORACLE_SRC") ? getenv("CORACLE_SRC") : SRCDIR;
    char *cmd = xasprintf("%s/contrib/certs -d %s/a -n n1 >/dev/null && "
                          "%s/contrib/certs -d %s/b -n n1 >/dev/null",
                          src, dir, src, dir);
    ok(system(cmd) == 0, "contrib/certs made two CAs and their certificates");
    free(cmd);
    char *ca = path("a", "ca.crt"), *ca_key = path("a", "ca.key");
    char *srv_crt = path("a", "apiserver.crt"), *srv_key = path("a", "apiserver.key");
    char *adm_crt = path("a", "admin.crt"), *adm_key = path("a", "admin.key");
    char *n1_crt = path("a", "kubelet-n1.crt"), *n1_key = path("a", "kubelet-n1.key");
    char *other_ca = path("b", "ca.crt");
    char *oth_crt = path("b", "admin.crt"), *oth_key = path("b", "admin.key");
    char *exp_crt = path("a", "expired.crt"), *exp_key = path("a", "expired.key");
    ok(make_expired(ca, ca_key, exp_crt, exp_key) == 0, "made an expired certificate");

    base = event_base_new();
    struct h2s_config hc = {.handshake_timeout_s = 1, .max_streaming = 2};
    h2s_t *s = h2s_new(base, &hc);
    h2s_route(s, "/test.T/Who", H2S_UNARY, h_who, NULL);
    h2s_route(s, "/test.T/Hold", H2S_UNARY, h_hold, NULL);
    h2s_route(s, "/test.T/HoldCreate", H2S_UNARY, h_hold, NULL);
    h2s_route(s, "/test.T/Watch", H2S_SERVER_STREAM, h_hold, NULL);
    char *err = NULL;
    SSL_CTX *sctx = tls_server_ctx(srv_crt, srv_key, ca, &err);
    ok(sctx != NULL, "server context (%s)", err ? err : "ok");
    free(err);
    SSL_CTX *bad = tls_server_ctx(srv_crt, adm_key, ca, &err);
    ok(!bad && err && strstr(err, "mismatch"), "mismatched key refused: %s", err);
    free(err);
    bad = tls_server_ctx("/nonexistent.crt", srv_key, ca, &err);
    ok(!bad && err && strstr(err, "/nonexistent.crt: cannot load certificate"), "missing file: %s",
       err);
    free(err);
    ok(h2s_listen_tls(s, "unix:/tmp/x.sock", sctx) < 0, "no TLS on unix sockets");
    ok(h2s_listen_tls(s, "127.0.0.1:0", sctx) == 0, "TLS listener");
    int tport = h2s_port(s);
    SSL_CTX_free(sctx); /* h2s holds its own reference */
    ok(h2s_listen(s, "127.0.0.1:0") == 0, "cleartext listener");
    int cport = 0;
    ok(h2s_addr_is_local("127.0.0.1:1") && h2s_addr_is_local("[::1]:1") &&
           h2s_addr_is_local("unix:/x") && h2s_addr_is_local("localhost:1") &&
           !h2s_addr_is_local("0.0.0.0:1") && !h2s_addr_is_local("10.1.2.3:1") &&
           !h2s_addr_is_local(":6443"),
       "h2s_addr_is_local");

    char addr[64], https[80];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", tport);
    snprintf(https, sizeof(https), "https://localhost:%d", tport);
    struct res r;
    call_with(addr, ca, adm_crt, adm_key, NULL, "/test.T/Who", &r);
    ok(r.code == GRPC_OK && strcmp(r.body, "admin|system:masters") == 0,
       "admin certificate: identity admin in system:masters (%d %s %s)", r.code, r.body, r.msg);
    call_with(https, ca, n1_crt, n1_key, NULL, "/test.T/Who", &r);
    ok(r.code == GRPC_OK && strcmp(r.body, "system:node:n1|system:nodes") == 0,
       "https://localhost: kubelet certificate: system:node:n1 in system:nodes (%s %s)", r.body,
       r.msg);
    call_with(addr, ca, NULL, NULL, NULL, "/test.T/Who", &r);
    ok(r.code == GRPC_OK && strcmp(r.body, "anonymous") == 0,
       "no client certificate: TLS works, no identity (%s)", r.msg);
    call_with(addr, ca, oth_crt, oth_key, NULL, "/test.T/Who", &r);
    ok(r.code == GRPC_UNAVAILABLE && strstr(r.msg, "TLS"),
       "client certificate from another CA: handshake refused (%s)", r.msg);
    call_with(addr, ca, exp_crt, exp_key, NULL, "/test.T/Who", &r);
    ok(r.code == GRPC_UNAVAILABLE && strstr(r.msg, "TLS"),
       "expired client certificate: handshake refused (%s)", r.msg);
    call_with(addr, other_ca, adm_crt, adm_key, NULL, "/test.T/Who", &r);
    ok(r.code == GRPC_UNAVAILABLE && strstr(r.msg, "certificate verify failed"),
       "server checked against another CA: refused (%s)", r.msg);
    call_with(addr, ca, adm_crt, adm_key, "evil.example.com", "/test.T/Who", &r);
    ok(r.code == GRPC_UNAVAILABLE && strstr(r.msg, "hostname mismatch"),
       "server name not in the certificate: refused (%s)", r.msg);
    call_with(addr, NULL, NULL, NULL, NULL, "/test.T/Who", &r);
    ok(r.code == GRPC_UNAVAILABLE, "cleartext client on the TLS port fails (%s)", r.msg);
    call_with(addr, NULL, adm_crt, adm_key, NULL, "/test.T/Who", &r);
    ok(r.code == -1 && strstr(r.msg, "certificate-authority"),
       "client certificate without a CA: config error (%s)", r.msg);
    struct h2s_stats st;
    h2s_get_stats(s, &st);
    ok(st.tls_failures >= 3, "server counted failed handshakes (%llu)",
       (unsigned long long)st.tls_failures);

    /* slowloris: connect and say nothing; also a TLS client stuck mid-handshake */
    int fd1 = raw_connect(tport);
    int fd2 = raw_connect(tport);
    if (fd2 >= 0 && send(fd2, "\x16\x03\x01", 3, 0) != 3)
        diag("send failed");
    run_ms(300);
    ok(fd1 >= 0 && !raw_closed(fd1), "a silent connection is open at first");
    RUN_UNTIL(raw_closed(fd1) && raw_closed(fd2), 10000);
    ok(raw_closed(fd1), "closed after the handshake timeout");
    ok(raw_closed(fd2), "a half TLS handshake closed too");
    close(fd1);
    close(fd2);
    h2s_get_stats(s, &st);
    ok(st.slow_closed >= 2, "slow_closed counted (%llu)", (unsigned long long)st.slow_closed);

    /* headers never completed: preface + SETTINGS + HEADERS without END_HEADERS */
    {
        h2s_t *s2 = h2s_new(base, &hc);
        h2s_route(s2, "/test.T/Hold", H2S_UNARY, h_hold, NULL);
        h2s_route(s2, "/test.T/HoldCreate", H2S_UNARY, h_hold, NULL);
        h2s_route(s2, "/test.T/Watch", H2S_SERVER_STREAM, h_hold, NULL);
        h2s_route(s2, "/test.T/Claim", H2S_SERVER_STREAM, h_claim, NULL);
        h2s_route(s2, "/test.T/Ignore", H2S_UNARY, h_ignore, NULL);
        h2s_set_inflight_limits(s2, 2, 1, is_mut);
        h2s_listen(s2, "127.0.0.1:0");
        cport = h2s_port(s2);
        int fd = raw_connect(cport);
        static const char pre[] =
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            "\x00\x00\x00\x04\x00\x00\x00\x00\x00"      /* SETTINGS */
            "\x00\x00\x01\x01\x00\x00\x00\x00\x01\x82"; /* HEADERS, no END_HEADERS */
        ssize_t w = send(fd, pre, sizeof(pre) - 1, 0);
        run_ms(400);
        ok(w > 0 && !raw_closed(fd), "stream with unfinished headers: open at first");
        RUN_UNTIL(raw_closed(fd), 10000);
        ok(raw_closed(fd), "closed when its headers did not complete in time");
        close(fd);

        /* PING flood */
        fd = raw_connect(cport);
        size_t n = 24 + 9 + 1500 * 17;
        char *b = xmalloc(n), *p = b;
        memcpy(p, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24), p += 24;
        memcpy(p, "\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9), p += 9;
        for (int i = 0; i < 1500; i++) {
            memcpy(p, "\x00\x00\x08\x06\x00\x00\x00\x00\x00", 9);
            memset(p + 9, i & 0xff, 8);
            p += 17;
        }
        size_t off = 0;
        while (off < n) {
            ssize_t k = send(fd, b + off, n - off, MSG_DONTWAIT);
            if (k > 0)
                off += (size_t)k;
            run_ms(5);
        }
        free(b);
        RUN_UNTIL(raw_closed(fd), 10000);
        ok(raw_closed(fd), "PING flood: connection closed");
        close(fd);
        h2s_get_stats(s2, &st);
        ok(st.flood_closed == 1, "flood counted (%llu)", (unsigned long long)st.flood_closed);

        /*
         * rapid reset (CVE-2023-44487): open and cancel streams as fast as
         * possible, on a server of its own without in-flight limits (a call
         * refused at once as RESOURCE_EXHAUSTED can be answered before the
         * client cancels it, and then there is nothing to reset)
         */
        {
            h2s_t *s3 = h2s_new(base, &hc);
            h2s_route(s3, "/test.T/Ignore", H2S_UNARY, h_ignore, NULL);
            h2s_listen(s3, "127.0.0.1:0");
            char raddr[64];
            snprintf(raddr, sizeof(raddr), "127.0.0.1:%d", h2s_port(s3));
            gcl_t *rg = gcl_new(base, raddr, NULL);
            struct res rr;
            /* connected first: a call cancelled before its connection is up sends nothing */
            memset(&rr, 0, sizeof(rr));
            gcl_call_t *rc0 = gcl_call_raw(rg, "/test.T/Ignore", "x", 1, r_msg, r_done, &rr, 0);
            run_ms(200);
            gcl_call_cancel(rc0);
            for (int i = 0; i < 3000; i++) {
                memset(&rr, 0, sizeof(rr));
                gcl_call_t *rc = gcl_call_raw(rg, "/test.T/Ignore", "x", 1, r_msg, r_done, &rr, 0);
                event_base_loop(base, EVLOOP_NONBLOCK);
                if (!rr.done)
                    gcl_call_cancel(rc);
            }
            run_ms(500);
            gcl_free(rg);
            h2s_get_stats(s3, &st);
            ok(st.flood_closed >= 1, "rapid reset: connections closed for flooding (%llu)",
               (unsigned long long)st.flood_closed);
            h2s_free(s3);
        }

        /* in-flight limits: 2 reads, 1 mutating; streaming calls do not count */
        char caddr[64];
        snprintf(caddr, sizeof(caddr), "127.0.0.1:%d", cport);
        gcl_t *g = gcl_new(base, caddr, NULL);
        static struct res a[32];
        memset(a, 0, sizeof(a));
        gcl_call_raw(g, "/test.T/Hold", "x", 1, r_msg, r_done, &a[0], 0);
        gcl_call_raw(g, "/test.T/Hold", "x", 1, r_msg, r_done, &a[1], 0);
        RUN_UNTIL(nheld == 2, 10000);
        gcl_call_raw(g, "/test.T/Hold", "x", 1, r_msg, r_done, &a[2], 0);
        run_ms(300);
        ok(nheld == 2 && !a[2].done, "third read waits in the queue, not yet handled");
        gcl_call_raw(g, "/test.T/HoldCreate", "x", 1, r_msg, r_done, &a[3], 0);
        RUN_UNTIL(nheld == 3, 10000);
        ok(nheld == 3, "the mutating limit is separate: a write is handled meanwhile");
        gcl_call_raw(g, "/test.T/HoldCreate", "x", 1, r_msg, r_done, &a[4], 0);
        /* 2 reads in flight + 1 waiting: fill the read queue (10 x 2) and overflow it */
        for (int i = 5; i < 5 + 20; i++)
            gcl_call_raw(g, "/test.T/Hold", "x", 1, r_msg, r_done, &a[i], 0);
        run_until(&a[24].done, 2000);
        ok(a[24].code == GRPC_RESOURCE_EXHAUSTED &&
               strcmp(a[24].msg, "too many requests, please try again later") == 0,
           "a full queue: RESOURCE_EXHAUSTED (%s)", a[24].msg);
        ok(!a[23].done && !a[2].done && !a[4].done, "the others still wait");
        for (int round = 0; round < 30 && !(a[2].done && a[4].done && a[23].done); round++) {
            release_held();
            run_ms(50);
        }
        int all = 1;
        for (int i = 0; i < 24; i++)
            all &= a[i].done && a[i].code == GRPC_OK;
        ok(all, "as slots free up every queued call is handled and finishes OK");
        h2s_get_stats(s2, &st);
        ok(st.inflight_rejected == 1, "one refusal counted (%llu)",
           (unsigned long long)st.inflight_rejected);
        /* streams per connection */
        struct res w3[3];
        memset(w3, 0, sizeof(w3));
        for (int i = 0; i < 3; i++) {
            gcl_call_raw(g, "/test.T/Watch", "x", 1, r_msg, r_done, &w3[i], 0);
            run_ms(100);
        }
        run_until(&w3[2].done, 2000);
        ok(!w3[0].done && !w3[1].done && w3[2].code == GRPC_RESOURCE_EXHAUSTED &&
               strstr(w3[2].msg, "too many watches"),
           "third watch on one connection refused (%s)", w3[2].msg);
        release_held();
        run_until(&w3[1].done, 2000);
        /* per-owner claims, across connections */
        gcl_t *g2 = gcl_new(base, caddr, NULL);
        memset(w3, 0, sizeof(w3));
        gcl_call_raw(g, "/test.T/Claim", "x", 1, r_msg, r_done, &w3[0], 0);
        run_ms(100);
        gcl_call_raw(g2, "/test.T/Claim", "x", 1, r_msg, r_done, &w3[1], 0);
        run_until(&w3[1].done, 2000);
        ok(!w3[0].done && w3[1].code == GRPC_RESOURCE_EXHAUSTED,
           "claim: a second watch of the same owner on another connection refused");
        release_held();
        run_until(&w3[0].done, 2000);
        gcl_call_raw(g2, "/test.T/Claim", "x", 1, r_msg, r_done, &w3[2], 0);
        RUN_UNTIL(nheld == 1 || w3[2].done, 10000);
        ok(!w3[2].done && nheld == 1, "claim released when the first one ended");
        release_held();
        run_until(&w3[2].done, 2000);
        gcl_free(g2);
        gcl_free(g);
        h2s_free(s2);
    }
    call_with(addr, ca, adm_crt, adm_key, NULL, "/test.T/Who", &r);
    ok(r.code == GRPC_OK, "TLS server still serves after all that");

    h2s_free(s);
    event_base_free(base);
    cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("cleanup failed");
    free(cmd);
    free(ca), free(ca_key), free(srv_crt), free(srv_key), free(adm_crt), free(adm_key);
    free(n1_crt), free(n1_key), free(other_ca), free(oth_crt), free(oth_key), free(exp_crt);
    free(exp_key);
    return done_testing();
}
