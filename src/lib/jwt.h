/*
 * jwt: JSON Web Tokens (RFC 7519) in the compact JWS form (RFC 7515),
 * signed with RS256 (RSA PKCS#1 v1.5, SHA-256) or ES256 (ECDSA P-256,
 * SHA-256) through OpenSSL's EVP, the two algorithms Kubernetes'
 * service account tokens use. The parser takes untrusted bytes (a bearer
 * header) and is bounded: a token longer than JWT_MAX_BYTES is refused
 * before anything is decoded. The algorithm of a verification comes from
 * the key, never from the token: a header naming another ("none", HS256)
 * is refused.
 *
 * Keys are PEM files as kube-apiserver takes them: PUBLIC KEY, RSA PUBLIC
 * KEY, CERTIFICATE, PRIVATE KEY, RSA PRIVATE KEY and EC PRIVATE KEY
 * blocks, several in a file. A key's id ("kid") is Kubernetes':
 * base64url(SHA-256(DER SubjectPublicKeyInfo)).
 */
#ifndef CORACLE_JWT_H
#define CORACLE_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define JWT_MAX_BYTES (64u << 10)

/* base64url without padding (RFC 7515 section 2): malloc'd, NUL-terminated. */
char *jwt_b64url_encode(const void *data, size_t len);
/*
 * Decodes s[0..len): the URL-safe alphabet, no padding, no blanks; the
 * unused low bits of the last character must be zero (one text per byte
 * string). Returns 0 and *out (malloc'd, NUL-terminated, *olen bytes), or -1.
 */
int jwt_b64url_decode(const char *s, size_t len, uint8_t **out, size_t *olen);

typedef struct jwt_key jwt_key_t;

/*
 * Every key in the PEM file path, public halves only (private blocks
 * give their public key). Returns 0 with *keys (an array of *n keys: free
 * each with jwt_key_free, then the array), or -1 with *err (malloc'd).
 */
int jwt_keys_load(const char *path, jwt_key_t ***keys, size_t *n, char **err);
/* The private key in path (its first private block), for signing. 0 and *out, or -1 with *err. */
int jwt_key_load_private(const char *path, jwt_key_t **out, char **err);
void jwt_key_free(jwt_key_t *k);
/* The key's id and algorithm ("RS256", "ES256"): valid while k is. */
const char *jwt_key_kid(const jwt_key_t *k);
const char *jwt_key_alg(const jwt_key_t *k);
/* Whether a and b have the same public key. */
int jwt_key_same(const jwt_key_t *a, const jwt_key_t *b);
/* k's public half as a JWK, compact JSON as Kubernetes writes it: malloc'd. */
char *jwt_key_jwk(const jwt_key_t *k);

/*
 * A signed token for claims (a compact JSON object) with header
 * {"alg":ALG,"kid":KID}. k must hold a private key. malloc'd, or NULL if
 * OpenSSL fails.
 */
char *jwt_sign(const jwt_key_t *k, const char *claims);

/* A token split and decoded, its signature not yet checked. */
struct jwt {
    json_t *header, *claims; /* objects */
    const char *alg, *kid;   /* the header's (kid NULL if absent); in header */
    uint8_t *sig;            /* the decoded signature */
    size_t sig_len;
    const char *signed_part; /* header "." payload, as in the token (borrowed) */
    size_t signed_len;
};
/*
 * Splits tok[0..len) in three base64url parts and parses the header and
 * claims (JSON objects; the header must name an "alg"). 0 and *t
 * (jwt_clear; it borrows tok for signed_part), or -1 with *err (malloc'd).
 */
int jwt_parse(const char *tok, size_t len, struct jwt *t, char **err);
void jwt_clear(struct jwt *t);
/*
 * Checks t's signature with keys: those whose kid is the header's (all of
 * them when it names none), each under its own algorithm, which the
 * header must name. 0 when one verifies, else -1 with *err (malloc'd).
 */
int jwt_verify(const struct jwt *t, jwt_key_t *const *keys, size_t n, char **err);

#endif
