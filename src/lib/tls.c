/*
 * tls: OpenSSL server and client contexts, ALPN, peer identity. See tls.h.
 */
#include "config.h"
#include "tls.h"
#include "util.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tls_last_error(void)
{
    static char buf[256];
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (!last)
        return "unknown TLS error";
    ERR_error_string_n(last, buf, sizeof(buf));
    /* "error:0A000086:SSL routines::certificate verify failed" -> the reason */
    const char *r = strstr(buf, "::");
    if (r)
        return r + 2;
    return buf;
}

static const unsigned char alpn_h2[] = "\x02h2";

/* Server ALPN: h2 if offered, else http/1.1 (health checks), else no ALPN. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char prefs[] = "\x02h2\x08http/1.1";
    unsigned char *o;
    if (SSL_select_next_proto(&o, outlen, prefs, sizeof(prefs) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *ctx_common(const SSL_METHOD *m)
{
    SSL_CTX *ctx = SSL_CTX_new(m);
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* HTTP/2 (RFC 9113 9.2.2) forbids the weak TLS 1.2 suites */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

static int load_cert_key(SSL_CTX *ctx, const char *cert, const char *key, char **err)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        *err = xasprintf("%s: cannot load certificate: %s", cert, tls_last_error());
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        *err = xasprintf("%s: cannot load private key: %s", key, tls_last_error());
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        *err = xasprintf("%s: private key does not match certificate %s", key, cert);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, const char *client_ca,
                        char **err)
{
    *err = NULL;
    SSL_CTX *ctx = ctx_common(TLS_server_method());
    if (!ctx) {
        *err = xasprintf("TLS: %s", tls_last_error());
        return NULL;
    }
    if (load_cert_key(ctx, cert_file, key_file, err) < 0)
        goto fail;
    if (client_ca) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            *err = xasprintf("%s: cannot load client CA: %s", client_ca, tls_last_error());
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_verify_depth(ctx, 4);
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    /* no session tickets across restarts are needed; keep a small cache */
    SSL_CTX_sess_set_cache_size(ctx, 1024);
    static const unsigned char sid[] = "coracle";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *tls_client_ctx(const char *ca_file, const char *cert_file, const char *key_file,
                        char **err)
{
    *err = NULL;
    if (!cert_file != !key_file) {
        *err = xasprintf("TLS: a client certificate needs its key and a key its certificate");
        return NULL;
    }
    SSL_CTX *ctx = ctx_common(TLS_client_method());
    if (!ctx) {
        *err = xasprintf("TLS: %s", tls_last_error());
        return NULL;
    }
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            *err = xasprintf("%s: cannot load CA certificate: %s", ca_file, tls_last_error());
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        *err = xasprintf("TLS: cannot load the system CA store: %s", tls_last_error());
        goto fail;
    }
    if (cert_file && load_cert_key(ctx, cert_file, key_file, err) < 0)
        goto fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2) - 1);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL *tls_client_ssl(SSL_CTX *ctx, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    char h[256];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n >= sizeof(h))
        goto fail;
    memcpy(h, host, n);
    h[n] = '\0';
    unsigned char a[16];
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    if (inet_pton(AF_INET, h, a) == 1 || inet_pton(AF_INET6, h, a) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, h) != 1)
            goto fail;
    } else {
        SSL_set_tlsext_host_name(ssl, h);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(vp, h, 0) != 1)
            goto fail;
    }
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}

void tls_identity_free(char *user, char **groups)
{
    free(user);
    if (groups)
        for (char **g = groups; *g; g++)
            free(*g);
    free(groups);
}

/* The UTF-8 text of a name entry, or NULL if it is empty or holds a NUL. */
static char *entry_text(X509_NAME_ENTRY *e)
{
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
    if (n <= 0)
        return NULL;
    char *s = NULL;
    if (memchr(u, '\0', (size_t)n) == NULL)
        s = xstrndup((char *)u, (size_t)n);
    OPENSSL_free(u);
    return s;
}

int tls_peer_identity(SSL *ssl, char **user, char ***groups)
{
    *user = NULL;
    *groups = NULL;
    if (!ssl)
        return -1;
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x || SSL_get_verify_result(ssl) != X509_V_OK)
        return -1;
    X509_NAME *nm = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
    if (i < 0)
        return -1;
    char *cn = entry_text(X509_NAME_get_entry(nm, i));
    if (!cn || !*cn) {
        free(cn);
        return -1;
    }
    size_t ng = 0;
    char **gs = xcalloc(1, sizeof(*gs));
    for (i = -1; (i = X509_NAME_get_index_by_NID(nm, NID_organizationName, i)) >= 0;) {
        char *o = entry_text(X509_NAME_get_entry(nm, i));
        if (!o)
            continue;
        gs = xrealloc(gs, (ng + 2) * sizeof(*gs));
        gs[ng++] = o;
        gs[ng] = NULL;
    }
    *user = cn;
    *groups = gs;
    return 0;
}
