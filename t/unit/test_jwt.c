/*
 * test_jwt: JWS signing and verification (src/lib/jwt.h) with both
 * algorithms: round trips, the kid, tampering, another key, an algorithm
 * the key does not have, and base64url's edge cases.
 */
#include "config.h"
#include "tap.h"
#include "jwt.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh key of type ("RSA" or "EC") written as PEM to a temp file; its path (malloc'd). */
static char *key_file(const char *type)
{
    EVP_PKEY *k = !strcmp(type, "RSA") ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    char *path = strdup("/tmp/test_jwt_XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    EVP_PKEY_free(k);
    return path;
}

/* The token with one byte of part (0 header, 1 claims, 2 signature) changed. */
static char *tamper(const char *tok, int part)
{
    char *t = strdup(tok);
    char *p = t;
    for (int i = 0; i < part; i++)
        p = strchr(p, '.') + 1;
    p[1] = p[1] == 'A' ? 'B' : 'A';
    return t;
}

static int verifies(const char *tok, jwt_key_t *const *keys, size_t n)
{
    struct jwt t;
    char *err = NULL;
    if (jwt_parse(tok, strlen(tok), &t, &err) < 0) {
        free(err);
        return 0;
    }
    int r = jwt_verify(&t, keys, n, &err) == 0;
    free(err);
    jwt_clear(&t);
    return r;
}

static void algorithm(const char *type, const char *alg)
{
    char *path = key_file(type), *other = key_file(type), *err = NULL;
    jwt_key_t *priv = NULL, **pub = NULL, **opub = NULL;
    size_t n = 0, on = 0;
    ok(jwt_key_load_private(path, &priv, &err) == 0 && jwt_keys_load(path, &pub, &n, &err) == 0 &&
           n == 1 && jwt_keys_load(other, &opub, &on, &err) == 0,
       "%s: keys load (%s)", alg, err ? err : "");
    ok(!strcmp(jwt_key_alg(priv), alg) && !strcmp(jwt_key_kid(priv), jwt_key_kid(pub[0])) &&
           strlen(jwt_key_kid(priv)) == 43 && !jwt_key_same(pub[0], opub[0]),
       "%s: the algorithm, a kid of SHA-256's 43 base64url characters", alg);
    char *tok = jwt_sign(priv, "{\"sub\":\"x\"}");
    ok(tok && verifies(tok, pub, 1), "%s: a signed token verifies", alg);
    struct jwt t;
    ok(jwt_parse(tok, strlen(tok), &t, &err) == 0 && !strcmp(t.alg, alg) &&
           !strcmp(t.kid, jwt_key_kid(priv)) && !strcmp(json_str(json_get(t.claims, "sub")), "x"),
       "%s: header alg and kid, claims", alg);
    jwt_clear(&t);
    for (int part = 0; part < 3; part++) {
        char *bad = tamper(tok, part);
        ok(!verifies(bad, pub, 1), "%s: part %d changed: refused", alg, part);
        free(bad);
    }
    ok(!verifies(tok, opub, 1), "%s: another key (another kid): refused", alg);
    char *pj = jwt_key_jwk(pub[0]);
    ok(strstr(pj, !strcmp(alg, "RS256") ? "\"kty\":\"RSA\"" : "\"crv\":\"P-256\"") != NULL,
       "%s: JWK %s", alg, pj);
    free(pj);
    free(tok);
    jwt_key_free(priv);
    jwt_key_free(pub[0]);
    jwt_key_free(opub[0]);
    free(pub);
    free(opub);
    unlink(path);
    unlink(other);
    free(path);
    free(other);
}

int main(void)
{
    algorithm("RSA", "RS256");
    algorithm("EC", "ES256");

    char *e = jwt_b64url_encode("\xfb\xff", 2);
    ok(!strcmp(e, "-_8"), "base64url: URL alphabet, no padding (%s)", e);
    free(e);
    uint8_t *d;
    size_t dl;
    ok(jwt_b64url_decode("-_8", 3, &d, &dl) == 0 && dl == 2 && d[0] == 0xfb && d[1] == 0xff,
       "base64url: decodes");
    free(d);
    ok(jwt_b64url_decode("-_9", 3, &d, &dl) < 0, "base64url: stray low bits refused");
    ok(jwt_b64url_decode("-_8=", 4, &d, &dl) < 0, "base64url: padding refused");
    ok(jwt_b64url_decode("A", 1, &d, &dl) < 0, "base64url: one character refused");
    struct jwt t;
    char *err = NULL;
    ok(jwt_parse("a.b", 3, &t, &err) < 0 && err, "two parts: refused");
    free(err);
    ok(jwt_parse("e30.e30.", 8, &t, &err) < 0 && err, "a header without alg: refused");
    free(err);
    ok(jwt_parse("eyJhbGciOiJub25lIn0.e30.", 24, &t, &err) == 0 && !strcmp(t.alg, "none") &&
           t.sig_len == 0,
       "alg none parses (verification refuses it)");
    jwt_clear(&t);
    return done_testing();
}
