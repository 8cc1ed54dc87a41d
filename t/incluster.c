/*
 * incluster: a client with Kubernetes' in-cluster configuration, for
 * t/50-kubelet-satoken.t: KUBERNETES_SERVICE_HOST and _PORT, the
 * ServiceAccount token, ca.crt and namespace the kubelet projects at
 * /var/run/secrets/kubernetes.io/serviceaccount. It GETs each path given
 * (NS in a path becomes the namespace) over HTTPS, verifying the
 * apiserver with ca.crt, and prints "<status> <path>" per request. Built
 * statically by the test, to run in any image.
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* GET path with the token; the HTTP status, or -1. */
static int get(SSL_CTX *ctx, const char *host, const char *port, const char *token,
               const char *path)
{
    char target[300];
    snprintf(target, sizeof(target), "%s:%s", host, port);
    BIO *b = BIO_new_ssl_connect(ctx);
    SSL *ssl;
    BIO_get_ssl(b, &ssl);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) ||
        X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), host, 0);
    BIO_set_conn_hostname(b, target);
    if (BIO_do_connect(b) <= 0 || BIO_do_handshake(b) <= 0) {
        ERR_print_errors_fp(stderr);
        BIO_free_all(b);
        return -1;
    }
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Accept: application/json\r\nConnection: close\r\n\r\n",
                     path, target, token);
    BIO_write(b, req, n);
    char resp[512] = "";
    int got = BIO_read(b, resp, sizeof(resp) - 1);
    BIO_free_all(b);
    int status = -1;
    if (got > 12)
        sscanf(resp, "HTTP/1.%*d %d", &status);
    return status;
}

int main(int argc, char **argv)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    char *token = slurp(SA_DIR "/token"), *ns = slurp(SA_DIR "/namespace");
    if (!host || !port || !token || !ns) {
        fprintf(stderr, "incluster: not in a cluster (env or " SA_DIR " missing)\n");
        return 2;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!SSL_CTX_load_verify_locations(ctx, SA_DIR "/ca.crt", NULL)) {
        fprintf(stderr, "incluster: cannot load ca.crt\n");
        return 2;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    for (int i = 1; i < argc; i++) {
        char path[1024] = "";
        const char *p = argv[i], *at;
        while ((at = strstr(p, "NS"))) {
            strncat(path, p, (size_t)(at - p));
            strcat(path, ns);
            p = at + 2;
        }
        strcat(path, p);
        printf("%d %s\n", get(ctx, host, port, token, path), path);
        fflush(stdout);
    }
    return 0;
}
