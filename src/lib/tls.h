/*
 * tls: OpenSSL contexts for the gRPC server (h2s) and client (gcl), and the
 * identity a verified client certificate carries. TLS 1.2 and 1.3 only,
 * ALPN "h2" (the server also accepts "http/1.1" so curl can GET /healthz).
 *
 * The server verifies client certificates only if one is presented
 * (Kubernetes' VerifyClientCertIfGiven): a client without one may still
 * authenticate with a bearer token, a client with a certificate from
 * another CA, or an expired one, fails the handshake.
 *
 * Contexts are plain SSL_CTX pointers, freed with SSL_CTX_free().
 */
#ifndef CORACLE_TLS_H
#define CORACLE_TLS_H

#include <openssl/ssl.h>

/*
 * A server context from a PEM certificate (chain) and key. client_ca may
 * be NULL (no client certificates asked for). Returns NULL with *err
 * (malloc'd, naming the file and what is wrong).
 */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file, const char *client_ca,
                        char **err);

/*
 * A client context verifying the server against ca_file (NULL: the system
 * store), with an optional client certificate and key (both or neither).
 * Returns NULL with *err (malloc'd).
 */
SSL_CTX *tls_client_ctx(const char *ca_file, const char *cert_file, const char *key_file,
                        char **err);

/*
 * A new client SSL for one connection to host (a name or an IP literal,
 * brackets allowed): sets SNI (names only) and the name or address the
 * server certificate must carry. NULL on error.
 */
SSL *tls_client_ssl(SSL_CTX *ctx, const char *host);

/*
 * The identity of a verified peer certificate: *user = the subject's CN,
 * *groups = its O values (NULL-terminated array); all malloc'd (free with
 * tls_identity_free). Returns 0, or -1 when there is no verified
 * certificate or it has no CN.
 */
int tls_peer_identity(SSL *ssl, char **user, char ***groups);
void tls_identity_free(char *user, char **groups);

/* The last OpenSSL error queued on this thread, as text (static buffer); clears the queue. */
const char *tls_last_error(void);

#endif
