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

static const EVP_CIPHER *gcm_cipher(size_t len)
{
    return len == 16 ? EVP_aes_128_gcm() : len == 24 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
}

static const EVP_CIPHER *cbc_cipher(size_t len)
{
    return len == 16 ? EVP_aes_128_cbc() : len == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
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

/* out (the key's prefix, room for nonce, len + tag) <- AES-GCM of in. */
static int gcm_seal(const struct enc_key *k, const void *ad, size_t ad_len, const void *in,
                    size_t len, unsigned char *out, size_t *out_len, char **err)
{
    unsigned char *nonce = out + k->prefix_len, *ct = nonce + GCM_NONCE;
    int n = 0, n2 = 0, rc = -1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        fatal("EVP_CIPHER_CTX_new: out of memory");
    if (RAND_bytes(nonce, GCM_NONCE) != 1) {
        rc = ssl_fail("aesgcm: RAND_bytes", err);
        goto out;
    }
    if (EVP_EncryptInit_ex(c, gcm_cipher(k->len), NULL, k->secret, nonce) != 1 ||
        EVP_EncryptUpdate(c, NULL, &n, ad, (int)ad_len) != 1 ||
        EVP_EncryptUpdate(c, ct, &n, in, (int)len) != 1 ||
        EVP_EncryptFinal_ex(c, ct + n, &n2) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG, ct + n + n2) != 1) {
        rc = ssl_fail("aesgcm: encrypt", err);
        goto out;
    }
    *out_len = k->prefix_len + GCM_NONCE + (size_t)(n + n2) + GCM_TAG;
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

static int cbc_seal(const struct enc_key *k, const void *in, size_t len, unsigned char *out,
                    size_t *out_len, char **err)
{
    unsigned char *iv = out + k->prefix_len, *ct = iv + CBC_IV;
    int n = 0, n2 = 0, rc = -1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        fatal("EVP_CIPHER_CTX_new: out of memory");
    if (RAND_bytes(iv, CBC_IV) != 1) {
        rc = ssl_fail("aescbc: RAND_bytes", err);
        goto out;
    }
    /* EVP's default padding is PKCS#7, as Kubernetes' aescbc */
    if (EVP_EncryptInit_ex(c, cbc_cipher(k->len), NULL, k->secret, iv) != 1 ||
        EVP_EncryptUpdate(c, ct, &n, in, (int)len) != 1 ||
        EVP_EncryptFinal_ex(c, ct + n, &n2) != 1) {
        rc = ssl_fail("aescbc: encrypt", err);
        goto out;
    }
    *out_len = k->prefix_len + CBC_IV + (size_t)(n + n2);
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
    /* prefix, IV or nonce, the text and a block of padding or the tag */
    unsigned char *b = xmalloc(k->prefix_len + CBC_IV + len + 16);
    memcpy(b, k->prefix, k->prefix_len);
    int rc = p->type == ENC_AESGCM ? gcm_seal(k, ad, ad_len, in, len, b, out_len, err)
                                   : cbc_seal(k, in, len, b, out_len, err);
    if (rc) {
        free(b);
        return -1;
    }
    *out = b;
    return 0;
}

static int gcm_open(const struct enc_key *k, const void *ad, size_t ad_len, const unsigned char *in,
                    size_t len, unsigned char *out, size_t *out_len, char **err)
{
    if (len < GCM_NONCE + GCM_TAG) {
        *err = xasprintf("aesgcm key \"%s\": the value is too short", k->name);
        return -1;
    }
    const unsigned char *nonce = in, *ct = in + GCM_NONCE;
    size_t ct_len = len - GCM_NONCE - GCM_TAG;
    int n = 0, n2 = 0, rc = -1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        fatal("EVP_CIPHER_CTX_new: out of memory");
    if (EVP_DecryptInit_ex(c, gcm_cipher(k->len), NULL, k->secret, nonce) != 1 ||
        EVP_DecryptUpdate(c, NULL, &n, ad, (int)ad_len) != 1 ||
        EVP_DecryptUpdate(c, out, &n, ct, (int)ct_len) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG, (void *)(ct + ct_len)) != 1) {
        rc = ssl_fail("aesgcm: decrypt", err);
        goto out;
    }
    if (EVP_DecryptFinal_ex(c, out + n, &n2) != 1) {
        ERR_clear_error();
        *err = xasprintf("aesgcm key \"%s\" does not open the value (another secret under that "
                         "name, or the value was changed or moved)",
                         k->name);
        goto out;
    }
    *out_len = (size_t)(n + n2);
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

static int cbc_open(const struct enc_key *k, const unsigned char *in, size_t len,
                    unsigned char *out, size_t *out_len, char **err)
{
    if (len < CBC_IV + 16 || (len - CBC_IV) % 16) {
        *err = xasprintf("aescbc key \"%s\": the value is not whole blocks", k->name);
        return -1;
    }
    int n = 0, n2 = 0, rc = -1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        fatal("EVP_CIPHER_CTX_new: out of memory");
    if (EVP_DecryptInit_ex(c, cbc_cipher(k->len), NULL, k->secret, in) != 1 ||
        EVP_DecryptUpdate(c, out, &n, in + CBC_IV, (int)(len - CBC_IV)) != 1) {
        rc = ssl_fail("aescbc: decrypt", err);
        goto out;
    }
    if (EVP_DecryptFinal_ex(c, out + n, &n2) != 1) {
        ERR_clear_error();
        *err = xasprintf("aescbc key \"%s\" does not open the value (bad padding: another "
                         "secret under that name?)",
                         k->name);
        goto out;
    }
    *out_len = (size_t)(n + n2);
    rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
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
            const unsigned char *body = v + k->prefix_len;
            size_t blen = len - k->prefix_len;
            unsigned char *b = xmalloc(blen ? blen : 1);
            int rc = p->type == ENC_AESGCM ? gcm_open(k, ad, ad_len, body, blen, b, out_len, err)
                                           : cbc_open(k, body, blen, b, out_len, err);
            if (rc) {
                free(b);
                return -1;
            }
            *out = b;
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
