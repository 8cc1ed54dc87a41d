/*
 * jwt: compact JWS tokens, RS256 and ES256 through OpenSSL EVP. See jwt.h.
 */
#include "config.h"
#include "jwt.h"
#include "util.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

struct jwt_key {
    EVP_PKEY *pkey;
    int priv;        /* pkey holds the private half */
    const char *alg; /* "RS256" or "ES256" */
    char *kid;
};

/* ---------------------------------------------------------------- base64url */

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *jwt_b64url_encode(const void *data, size_t len)
{
    const uint8_t *p = data;
    char *out = xmalloc(len / 3 * 4 + 5);
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64u[v >> 18];
        out[o++] = b64u[(v >> 12) & 63];
        out[o++] = b64u[(v >> 6) & 63];
        out[o++] = b64u[v & 63];
    }
    if (len - i == 1) {
        out[o++] = b64u[p[i] >> 2];
        out[o++] = b64u[(p[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        out[o++] = b64u[v >> 10];
        out[o++] = b64u[(v >> 4) & 63];
        out[o++] = b64u[(v & 15) << 2];
    }
    out[o] = '\0';
    return out;
}

static int b64u_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

int jwt_b64url_decode(const char *s, size_t len, uint8_t **out, size_t *olen)
{
    if (len % 4 == 1)
        return -1;
    uint8_t *d = xmalloc(len / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64u_val(s[i]);
        if (v < 0)
            goto bad;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) /* non-canonical: leftover bits set */
        goto bad;
    d[o] = 0;
    *out = d;
    *olen = o;
    return 0;
bad:
    free(d);
    return -1;
}

/* ---------------------------------------------------------------- keys */

static char *ossl_err(const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return e ? xasprintf("%s: %s", what, buf) : xstrdup(what);
}

/* The algorithm for pkey's type, or NULL (only RSA and P-256 are taken). */
static const char *key_alg(EVP_PKEY *pkey)
{
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA)
        return "RS256";
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
        return NULL;
    char curve[64];
    size_t cl;
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
                                        &cl))
        return NULL;
    return !strcmp(curve, "prime256v1") || !strcmp(curve, "P-256") ? "ES256" : NULL;
}

/* A key of pkey (taken); NULL with *err when its type is not RSA or P-256. */
static jwt_key_t *key_new(EVP_PKEY *pkey, int priv, const char *path, char **err)
{
    const char *alg = key_alg(pkey);
    unsigned char *der = NULL;
    int dl = alg ? i2d_PUBKEY(pkey, &der) : -1;
    if (dl <= 0) {
        *err = alg ? ossl_err(path)
                   : xasprintf("%s: unsupported key type (RSA or ECDSA P-256 expected)", path);
        EVP_PKEY_free(pkey);
        return NULL;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned ml = 0;
    EVP_Digest(der, (size_t)dl, md, &ml, EVP_sha256(), NULL);
    OPENSSL_free(der);
    jwt_key_t *k = xcalloc(1, sizeof(*k));
    k->pkey = pkey;
    k->priv = priv;
    k->alg = alg;
    k->kid = jwt_b64url_encode(md, ml);
    return k;
}

/* One PEM block as a key: *pkey and *priv, or 0 if the block holds no key. -1 on bad data. */
static int pem_block_key(const char *name, const unsigned char *data, long len, EVP_PKEY **pkey,
                         int *priv)
{
    const unsigned char *p = data;
    *pkey = NULL;
    *priv = 0;
    if (!strcmp(name, "PUBLIC KEY")) {
        *pkey = d2i_PUBKEY(NULL, &p, len);
    } else if (!strcmp(name, "RSA PUBLIC KEY")) {
        *pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, len);
    } else if (!strcmp(name, "CERTIFICATE")) {
        X509 *x = d2i_X509(NULL, &p, len);
        if (x)
            *pkey = X509_get_pubkey(x);
        X509_free(x);
    } else if (!strcmp(name, "PRIVATE KEY") || !strcmp(name, "RSA PRIVATE KEY") ||
               !strcmp(name, "EC PRIVATE KEY")) {
        *pkey = d2i_AutoPrivateKey(NULL, &p, len);
        *priv = 1;
    } else {
        return 0; /* EC PARAMETERS and the like */
    }
    return *pkey ? 1 : -1;
}

/* Calls fn for each key of the PEM file; stops at fn's nonzero. -1 with *err. */
static int pem_keys(const char *path, int (*fn)(EVP_PKEY *pkey, int priv, void *arg), void *arg,
                    char **err)
{
    BIO *bio = BIO_new_file(path, "r");
    if (!bio) {
        *err = xasprintf("%s: cannot open: %s", path, strerror(errno));
        ERR_clear_error();
        return -1;
    }
    int r = 0;
    char *name, *header;
    unsigned char *data;
    long len;
    while (PEM_read_bio(bio, &name, &header, &data, &len)) {
        EVP_PKEY *pkey;
        int priv, got = pem_block_key(name, data, len, &pkey, &priv);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (got < 0) {
            *err = ossl_err(path);
            r = -1;
            break;
        }
        if (got > 0 && (r = fn(pkey, priv, arg)) != 0)
            break;
    }
    ERR_clear_error(); /* the end of the file reads as an error */
    BIO_free(bio);
    return r < 0 ? -1 : 0;
}

struct key_list {
    const char *path;
    jwt_key_t **v;
    size_t n;
    char **err;
    int want_priv;
};

static int collect(EVP_PKEY *pkey, int priv, void *arg)
{
    struct key_list *l = arg;
    if (l->want_priv && !priv) {
        EVP_PKEY_free(pkey);
        return 0;
    }
    jwt_key_t *k = key_new(pkey, priv, l->path, l->err);
    if (!k)
        return -1;
    l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = k;
    return l->want_priv ? 1 : 0;
}

int jwt_keys_load(const char *path, jwt_key_t ***keys, size_t *n, char **err)
{
    *err = NULL;
    struct key_list l = {path, NULL, 0, err, 0};
    if (pem_keys(path, collect, &l, err) < 0 || !l.n) {
        if (!*err)
            *err = xasprintf("%s: no public or private key in the file", path);
        for (size_t i = 0; i < l.n; i++)
            jwt_key_free(l.v[i]);
        free(l.v);
        return -1;
    }
    *keys = l.v;
    *n = l.n;
    return 0;
}

int jwt_key_load_private(const char *path, jwt_key_t **out, char **err)
{
    *err = NULL;
    struct key_list l = {path, NULL, 0, err, 1};
    if (pem_keys(path, collect, &l, err) < 0 || !l.n) {
        if (!*err)
            *err = xasprintf("%s: no private key in the file", path);
        if (l.n)
            jwt_key_free(l.v[0]);
        free(l.v);
        return -1;
    }
    *out = l.v[0];
    free(l.v);
    return 0;
}

void jwt_key_free(jwt_key_t *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k->kid);
    free(k);
}

const char *jwt_key_kid(const jwt_key_t *k)
{
    return k->kid;
}

const char *jwt_key_alg(const jwt_key_t *k)
{
    return k->alg;
}

int jwt_key_same(const jwt_key_t *a, const jwt_key_t *b)
{
    return !strcmp(a->kid, b->kid);
}

/* A big number parameter of pkey, base64url, left-padded to pad bytes (0: minimal). */
static char *bn_param(const EVP_PKEY *pkey, const char *param, int pad)
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
        return xstrdup("");
    int n = pad ? pad : BN_num_bytes(bn);
    unsigned char *b = xmalloc((size_t)n + 1);
    BN_bn2binpad(bn, b, n);
    char *s = jwt_b64url_encode(b, (size_t)n);
    free(b);
    BN_free(bn);
    return s;
}

char *jwt_key_jwk(const jwt_key_t *k)
{
    char *out;
    if (!strcmp(k->alg, "RS256")) {
        char *n = bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        char *e = bn_param(k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        out = xasprintf("{\"use\":\"sig\",\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"RS256\","
                        "\"n\":\"%s\",\"e\":\"%s\"}",
                        k->kid, n, e);
        free(n);
        free(e);
    } else {
        char *x = bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        char *y = bn_param(k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        out = xasprintf("{\"use\":\"sig\",\"kty\":\"EC\",\"kid\":\"%s\",\"crv\":\"P-256\","
                        "\"alg\":\"ES256\",\"x\":\"%s\",\"y\":\"%s\"}",
                        k->kid, x, y);
        free(x);
        free(y);
    }
    return out;
}

/* ---------------------------------------------------------------- sign, verify */

/* ES256 signatures are r || s, 32 bytes each (RFC 7518 3.4); OpenSSL speaks DER. */
static int es_raw_from_der(const unsigned char *der, size_t dl, unsigned char raw[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    if (!s)
        return -1;
    const BIGNUM *r, *ss;
    ECDSA_SIG_get0(s, &r, &ss);
    int ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(ss, raw + 32, 32) == 32;
    ECDSA_SIG_free(s);
    return ok ? 0 : -1;
}

static int es_der_from_raw(const uint8_t *raw, size_t len, unsigned char **der, int *dl)
{
    if (len != 64)
        return -1;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *ss = BN_bin2bn(raw + 32, 32, NULL);
    if (!s || !r || !ss || !ECDSA_SIG_set0(s, r, ss)) {
        BN_free(r);
        BN_free(ss);
        ECDSA_SIG_free(s);
        return -1;
    }
    *der = NULL;
    *dl = i2d_ECDSA_SIG(s, der);
    ECDSA_SIG_free(s);
    return *dl > 0 ? 0 : -1;
}

char *jwt_sign(const jwt_key_t *k, const char *claims)
{
    if (!k->priv)
        return NULL;
    char *hdr = xasprintf("{\"alg\":\"%s\",\"kid\":\"%s\"}", k->alg, k->kid);
    char *h64 = jwt_b64url_encode(hdr, strlen(hdr));
    char *c64 = jwt_b64url_encode(claims, strlen(claims));
    char *input = xconcat(h64, ".", c64, NULL);
    free(hdr);
    free(h64);
    free(c64);
    char *tok = NULL;
    unsigned char *sig = NULL;
    size_t sl = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(ctx, NULL, &sl, (const unsigned char *)input, strlen(input)) != 1)
        goto out;
    sig = xmalloc(sl);
    if (EVP_DigestSign(ctx, sig, &sl, (const unsigned char *)input, strlen(input)) != 1)
        goto out;
    unsigned char raw[64];
    char *s64;
    if (!strcmp(k->alg, "ES256")) {
        if (es_raw_from_der(sig, sl, raw) < 0)
            goto out;
        s64 = jwt_b64url_encode(raw, sizeof(raw));
    } else {
        s64 = jwt_b64url_encode(sig, sl);
    }
    tok = xconcat(input, ".", s64, NULL);
    free(s64);
out:
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    free(sig);
    free(input);
    return tok;
}

static int verify_one(const struct jwt *t, const jwt_key_t *k)
{
    unsigned char *der = NULL;
    const unsigned char *sig = t->sig;
    size_t sl = t->sig_len;
    int dl = 0;
    if (!strcmp(k->alg, "ES256")) {
        if (es_der_from_raw(t->sig, t->sig_len, &der, &dl) < 0)
            return -1;
        sig = der;
        sl = (size_t)dl;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok =
        ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
        EVP_DigestVerify(ctx, sig, sl, (const unsigned char *)t->signed_part, t->signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ERR_clear_error();
    return ok ? 0 : -1;
}

int jwt_verify(const struct jwt *t, jwt_key_t *const *keys, size_t n, char **err)
{
    *err = NULL;
    int kid_seen = 0, alg_seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (t->kid && strcmp(t->kid, keys[i]->kid))
            continue;
        kid_seen = 1;
        if (strcmp(t->alg, keys[i]->alg))
            continue;
        alg_seen = 1;
        if (verify_one(t, keys[i]) == 0)
            return 0;
    }
    *err = !kid_seen   ? xstrdup("no key with the token's key id")
           : !alg_seen ? xasprintf("algorithm \"%s\" is not the key's", t->alg)
                       : xstrdup("invalid signature");
    return -1;
}

/* ---------------------------------------------------------------- parse */

/* Part [s, s+len) decoded and parsed as a JSON object: *out, or -1. */
static int part_json(const char *s, size_t len, json_t **out)
{
    uint8_t *d;
    size_t dl;
    if (jwt_b64url_decode(s, len, &d, &dl) < 0)
        return -1;
    struct json_limits lim = {JWT_MAX_BYTES, 16, 4096};
    int r = json_parse((const char *)d, dl, &lim, out, NULL);
    free(d);
    if (r == 0 && !json_is(*out, JSON_OBJECT)) {
        json_free(*out);
        *out = NULL;
        r = -1;
    }
    return r;
}

int jwt_parse(const char *tok, size_t len, struct jwt *t, char **err)
{
    memset(t, 0, sizeof(*t));
    *err = NULL;
    const char *d1 = len <= JWT_MAX_BYTES ? memchr(tok, '.', len) : NULL;
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok)) : NULL;
    const char *end = tok + len;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1))) {
        *err = xstrdup(len > JWT_MAX_BYTES ? "token too long" : "not a compact JWS (3 parts)");
        return -1;
    }
    if (part_json(tok, (size_t)(d1 - tok), &t->header) < 0) {
        *err = xstrdup("malformed header");
        goto fail;
    }
    t->alg = json_str(json_get(t->header, "alg"));
    json_t *kid = json_get(t->header, "kid");
    t->kid = json_str(kid);
    if (!t->alg || (kid && !t->kid)) {
        *err = xstrdup("header: alg missing, or alg or kid not a string");
        goto fail;
    }
    if (part_json(d1 + 1, (size_t)(d2 - d1 - 1), &t->claims) < 0) {
        *err = xstrdup("malformed claims");
        goto fail;
    }
    if (jwt_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), &t->sig, &t->sig_len) < 0) {
        *err = xstrdup("malformed signature");
        goto fail;
    }
    t->signed_part = tok;
    t->signed_len = (size_t)(d2 - tok);
    return 0;
fail:
    jwt_clear(t);
    return -1;
}

void jwt_clear(struct jwt *t)
{
    json_free(t->header);
    json_free(t->claims);
    free(t->sig);
    memset(t, 0, sizeof(*t));
}
