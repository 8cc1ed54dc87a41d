/*
 * enc: the transformer of stored values (see enc.h): sealing with a
 * rule's first provider, opening with the provider and key a value's
 * prefix names, through OpenSSL's EVP interface. The config reader is
 * enc_cfg.c.
 */
#include "config.h"
#include "enc_int.h"
#include "buf.h"
#include "util.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#define GCM_NONCE 12
#define GCM_TAG 16
#define CBC_IV 16
#define ENC_PREFIX "k8s:enc:"

const char *enc_type_name(enum enc_type t)
{
    switch (t) {
    case ENC_AESGCM:
        return "aesgcm";
    case ENC_AESCBC:
        return "aescbc";
    case ENC_IDENTITY:
        break;
    }
    return "identity";
}

const enc_rule_t *enc_rule_for_key(const enc_t *e, const char *key, size_t key_len)
{
    if (!e)
        return NULL;
    for (size_t i = 0; i < e->n_res; i++) {
        const struct enc_res *r = &e->res[i];
        if (key_len > r->len && key[r->len] == '/' && !memcmp(key, r->resource, r->len))
            return r->rule;
    }
    return NULL;
}

char *enc_describe(const enc_t *e)
{
    struct buf b = {0};
    for (size_t i = 0; e && i < e->n_res; i++) {
        const struct enc_rule *r = e->res[i].rule;
        buf_printf(&b, "%s%s:", i ? "; " : "", e->res[i].resource);
        for (size_t j = 0; j < r->n_prov; j++)
            buf_printf(&b, "%s %s", j ? "," : "", enc_type_name(r->prov[j].type));
    }
    return buf_take(&b);
}

static const EVP_CIPHER *cipher_of(enum enc_type t, size_t len)
{
    if (t == ENC_AESGCM)
        return len == 16 ? EVP_aes_128_gcm() : len == 24 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
    return len == 16 ? EVP_aes_128_cbc() : len == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
}

/* IV (aescbc) or nonce (aesgcm) bytes, and the tag's after the ciphertext. */
static size_t iv_len(enum enc_type t)
{
    return t == ENC_AESGCM ? GCM_NONCE : CBC_IV;
}

static size_t tag_len(enum enc_type t)
{
    return t == ENC_AESGCM ? GCM_TAG : 0;
}

/* OpenSSL's reason for the last failure, as *err; returns -1. */
static int ssl_fail(const char *what, char **err)
{
    unsigned long e = ERR_get_error();
    char msg[256];
    ERR_error_string_n(e, msg, sizeof(msg));
    ERR_clear_error();
    *err = xasprintf("%s: %s", what, e ? msg : "failed");
    return -1;
}

/*
 * One pass of key k's cipher (encrypting if enc) over in into out, with iv.
 * aesgcm: ad authenticated too, and the tag written to (or checked
 * against) tag. EVP's default padding is PKCS#7, as Kubernetes' aescbc.
 * Returns 0, 1 when a decryption does not authenticate or unpad (the key
 * is not the one that sealed it), or -1 with *err when OpenSSL failed.
 */
static int crypt(const struct enc_key *k, enum enc_type t, int enc, const unsigned char *iv,
                 const void *ad, size_t ad_len, unsigned char *tag, const void *in, size_t len,
                 unsigned char *out, size_t *out_len, char **err)
{
    int n = 0, n2 = 0, rc = -1, gcm = t == ENC_AESGCM;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        fatal("EVP_CIPHER_CTX_new: out of memory");
    if (EVP_CipherInit_ex(c, cipher_of(t, k->len), NULL, k->secret, iv, enc) != 1 ||
        (gcm && EVP_CipherUpdate(c, NULL, &n, ad, (int)ad_len) != 1) ||
        EVP_CipherUpdate(c, out, &n, in, (int)len) != 1 ||
        (gcm && !enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) != 1)) {
        rc = ssl_fail(enc_type_name(t), err);
        goto out;
    }
    if (EVP_CipherFinal_ex(c, out + n, &n2) != 1) {
        if (enc) {
            rc = ssl_fail(enc_type_name(t), err);
        } else {
            ERR_clear_error();
            rc = 1;
        }
        goto out;
    }
    if (gcm && enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, tag) != 1) {
        rc = ssl_fail(enc_type_name(t), err);
        goto out;
    }
    *out_len = (size_t)(n + n2);
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int enc_seal(const enc_rule_t *r, const void *ad, size_t ad_len, const void *in, size_t len,
             void **out, size_t *out_len, char **err)
{
    const struct enc_provider *p = &r->prov[0];
    *out = NULL;
    *out_len = 0;
    if (p->type == ENC_IDENTITY)
        return 0;
    if (len > (size_t)1 << 30 || ad_len > (size_t)1 << 30) {
        *err = xstrdup("value too large to encrypt");
        return -1;
    }
    const struct enc_key *k = &p->keys[0];
    size_t ivl = iv_len(p->type), n;
    /* prefix, IV or nonce, the text and a block of padding or the tag */
    unsigned char *b = xmalloc(k->prefix_len + ivl + len + 16), *iv = b + k->prefix_len;
    memcpy(b, k->prefix, k->prefix_len);
    if (RAND_bytes(iv, (int)ivl) != 1) {
        ssl_fail("RAND_bytes", err);
        free(b);
        return -1;
    }
    /* GCM is a stream mode: the tag goes right after len bytes of ciphertext */
    if (crypt(k, p->type, 1, iv, ad, ad_len, iv + ivl + len, in, len, iv + ivl, &n, err)) {
        free(b);
        return -1;
    }
    *out = b;
    *out_len = k->prefix_len + ivl + n + tag_len(p->type);
    return 0;
}

/* The value after k's prefix, opened into *out (malloc'd). 0 or -1 with *err. */
static int open_with(const struct enc_key *k, enum enc_type t, const void *ad, size_t ad_len,
                     const unsigned char *body, size_t len, void **out, size_t *out_len, char **err)
{
    size_t ivl = iv_len(t), tl = tag_len(t);
    if (len < ivl + tl || (t == ENC_AESCBC && (len - ivl < 16 || (len - ivl) % 16))) {
        *err = xasprintf("%s key \"%s\": the value is too short or not whole blocks",
                         enc_type_name(t), k->name);
        return -1;
    }
    size_t ct_len = len - ivl - tl;
    unsigned char *b = xmalloc(ct_len ? ct_len : 1);
    int rc = crypt(k, t, 0, body, ad, ad_len, (unsigned char *)body + ivl + ct_len, body + ivl,
                   ct_len, b, out_len, err);
    if (rc) {
        free(b);
        if (rc > 0)
            *err =
                xasprintf("%s key \"%s\" does not open the value (%s)", enc_type_name(t), k->name,
                          t == ENC_AESGCM ? "another secret under that name, or the value was "
                                            "changed or moved"
                                          : "bad padding: another secret under that name?");
        return -1;
    }
    *out = b;
    return 0;
}

/* s..end as printable text onto b (a value's prefix may hold any byte). */
static void put_printable(struct buf *b, const unsigned char *s, const unsigned char *end)
{
    for (; s < end; s++)
        buf_printf(b, *s >= 0x20 && *s < 0x7f && *s != '"' ? "%c" : "\\x%02x", *s);
}

/* "aesgcm key \"k1\"" out of a value's prefix, for a message (malloc'd). */
static char *describe_prefix(const unsigned char *in, size_t len)
{
    const unsigned char *p = in + strlen(ENC_PREFIX), *end = in + (len < 128 ? len : 128);
    const unsigned char *c1 = memchr(p, ':', (size_t)(end - p));
    const unsigned char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
    const unsigned char *c3 = c2 ? memchr(c2 + 1, ':', (size_t)(end - c2 - 1)) : NULL;
    if (!c3)
        return xstrdup("an unknown provider");
    struct buf b = {0};
    put_printable(&b, p, c1);
    buf_puts(&b, " key \"");
    put_printable(&b, c2 + 1, c3);
    buf_puts(&b, "\"");
    return buf_take(&b);
}

int enc_open(const enc_rule_t *r, const void *ad, size_t ad_len, const void *in, size_t len,
             void **out, size_t *out_len, int *stale, char **err)
{
    const unsigned char *v = in;
    int dummy;
    if (!stale)
        stale = &dummy;
    *out = NULL;
    *out_len = 0;
    *stale = 0;
    if (len > (size_t)1 << 30 || ad_len > (size_t)1 << 30) {
        *err = xstrdup("value too large to decrypt");
        return -1;
    }
    if (len < strlen(ENC_PREFIX) || memcmp(v, ENC_PREFIX, strlen(ENC_PREFIX))) {
        if (!r->has_identity) {
            *err = xstrdup("the value is stored unencrypted and identity is not among the "
                           "resource's providers");
            return -1;
        }
        *stale = r->prov[0].type != ENC_IDENTITY;
        return 0;
    }
    for (size_t i = 0; i < r->n_prov; i++) {
        const struct enc_provider *p = &r->prov[i];
        for (size_t j = 0; j < p->n_keys; j++) {
            const struct enc_key *k = &p->keys[j];
            if (len < k->prefix_len || memcmp(v, k->prefix, k->prefix_len))
                continue;
            if (open_with(k, p->type, ad, ad_len, v + k->prefix_len, len - k->prefix_len, out,
                          out_len, err))
                return -1;
            *stale = i || j;
            return 0;
        }
    }
    char *what = describe_prefix(v, len);
    *err = xasprintf("the value was encrypted with %s, which the encryption config does not have",
                     what);
    free(what);
    return -1;
}
