/*
 * enc: encryption at rest, as kube-apiserver's --encryption-provider-config
 * does it. A config (Kubernetes' EncryptionConfiguration, YAML or JSON)
 * names resources and, for each, providers in order: aesgcm, aescbc (keys
 * by name, each 16, 24 or 32 bytes) and identity. The first provider's
 * first key encrypts what is written; a stored value names the provider and
 * key that wrote it, so any provider of the list reads it back (a new key
 * put first, the objects rewritten, then the old key dropped: rotation).
 *
 * Stored forms, as Kubernetes writes them:
 *   aesgcm   "k8s:enc:aesgcm:v1:<key>:" 12-byte nonce, ciphertext, 16-byte tag;
 *            the additional authenticated data is the value's key (the store
 *            key in LMDB, the etcd key in etcd), so a value moved to
 *            another key does not open
 *   aescbc   "k8s:enc:aescbc:v1:<key>:" 16-byte IV, ciphertext (PKCS#7)
 *   identity the plain bytes
 *
 * A config is read-only once loaded: the store's commit thread and the
 * event loop use it at once.
 */
#ifndef CORACLE_ENC_H
#define CORACLE_ENC_H

#include <stddef.h>

typedef struct enc enc_t;
/* The providers of one resources[] entry. */
typedef struct enc_rule enc_rule_t;

/*
 * Reads the config at path. Returns 0 and *out (enc_free), or -1 with *err
 * (malloc'd) "FILE:LINE: field: problem" (or "FILE: problem").
 */
int enc_load(const char *path, enc_t **out, char **err);
/* The same from buf (len bytes); name stands for the file in messages. */
int enc_parse(const char *name, const char *buf, size_t len, enc_t **out, char **err);
void enc_free(enc_t *e);

/*
 * The rule for the resource of a store key ("secrets/default/x"), or NULL
 * when that resource is stored as it is (e NULL: nothing is encrypted).
 * Cheap: a few compares, whatever the config.
 */
const enc_rule_t *enc_rule_for_key(const enc_t *e, const char *key, size_t key_len);

/* "secrets: aesgcm, identity; configmaps: aescbc" for the log (no secrets). malloc'd. */
char *enc_describe(const enc_t *e);

/*
 * Encrypts in (len bytes) with r's first provider; ad is the value's key.
 * Returns 0 with *out (malloc'd) and *out_len, or with *out NULL when that
 * provider is identity (store in as it is); -1 with *err if OpenSSL failed.
 */
int enc_seal(const enc_rule_t *r, const void *ad, size_t ad_len, const void *in, size_t len,
             void **out, size_t *out_len, char **err);

/*
 * Decrypts a stored value with the provider and key its prefix names. Returns
 * 0 with *out (malloc'd) and *out_len, or with *out NULL when in is plain
 * and identity is among the providers (use in as it is). *stale (may be
 * NULL) is set when the value was not written by the first provider's
 * first key: rewriting it would change its stored form. -1 with *err
 * (malloc'd; never any of the value) when no provider of r opens it.
 */
int enc_open(const enc_rule_t *r, const void *ad, size_t ad_len, const void *in, size_t len,
             void **out, size_t *out_len, int *stale, char **err);

#endif
