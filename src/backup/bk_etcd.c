/*
 * bk_etcd: what both directions between LMDB and etcd share: the client
 * made from the --etcd-* flags, object names for messages, values opened
 * and sealed for encryption at rest, and the count by kind the summary
 * line prints.
 */
#include "config.h"

#include "backup.h"
#include "buf.h"
#include "enc.h"
#include "tls.h"
#include "util.h"

#include <string.h>

#define MAX_SERVERS 32

etcd_t *bk_etcd_new(struct event_base *base, const struct bk_etcd_opts *o, char **err)
{
    char *list = xstrdup(o->servers ? o->servers : "");
    const char *servers[MAX_SERVERS];
    size_t n = 0;
    for (char *tok, *s = list, *save = NULL; (tok = strtok_r(s, ",", &save)) && n < MAX_SERVERS;
         s = NULL)
        if (*tok)
            servers[n++] = tok;
    etcd_t *e = NULL;
    SSL_CTX *tls = NULL;
    if (!n) {
        *err = xstrdup("--etcd-servers: no server given (URL,URL,...)");
        goto out;
    }
    if (o->cafile || o->certfile || o->keyfile) {
        tls = tls_client_ctx(o->cafile, o->certfile, o->keyfile, err);
        if (!tls)
            goto out;
    }
    struct etcd_opts eo = {
        .endpoints = servers, .n_endpoints = n, .tls = tls, .request_timeout_ms = o->timeout_ms};
    e = etcd_new(base, &eo, err);
out:
    if (tls)
        SSL_CTX_free(tls);
    free(list);
    return e;
}

char *bk_prefix_dir(const char *prefix)
{
    size_t pl = strlen(prefix);
    return pl && prefix[pl - 1] == '/' ? xstrdup(prefix) : xconcat(prefix, "/", NULL);
}

char *bk_obj_name(const char *key, size_t key_len)
{
    const char *s1 = memchr(key, '/', key_len);
    if (s1 && s1 + 1 < key + key_len && s1[1] == '/') /* cluster-scoped: "nodes//node0" */
        return xasprintf("%.*s/%.*s", (int)(s1 - key), key, (int)(key + key_len - s1 - 2), s1 + 2);
    return xstrndup(key, key_len);
}

int bk_value_open(const struct enc *enc, const char *key, size_t key_len, const void *ad,
                  size_t ad_len, const void *v, size_t len, const void **out, size_t *out_len,
                  void **owned, char **why)
{
    const enc_rule_t *r = enc_rule_for_key(enc, key, key_len);
    *out = v;
    *out_len = len;
    *owned = NULL;
    if (!r) {
        if (len >= 8 && !memcmp(v, "k8s:enc:", 8)) {
            *why = xstrdup(enc ? "encrypted at rest, but the encryption config given does not "
                                 "name its resource"
                               : "encrypted at rest: give the apiserver's "
                                 "--encryption-provider-config");
            return -1;
        }
        return 0;
    }
    char *err = NULL;
    void *p;
    size_t pl;
    if (enc_open(r, ad, ad_len, v, len, &p, &pl, NULL, &err)) {
        *why = xasprintf("cannot decrypt it: %s", err);
        free(err);
        return -1;
    }
    if (p) {
        *out = *owned = p;
        *out_len = pl;
    }
    return 0;
}

int bk_value_seal(const struct enc *enc, const char *key, size_t key_len, const void *ad,
                  size_t ad_len, const void *v, size_t len, void **out, size_t *out_len, char **why)
{
    const enc_rule_t *r = enc_rule_for_key(enc, key, key_len);
    *out = NULL;
    *out_len = 0;
    if (!r)
        return 0;
    char *err = NULL;
    if (enc_seal(r, ad, ad_len, v, len, out, out_len, &err)) {
        *why = xasprintf("cannot encrypt it: %s", err);
        free(err);
        return -1;
    }
    return 0;
}

void bk_tally_add(struct bk_tally *t, const struct kind *k)
{
    for (size_t i = 0; kinds_all[i] && i < ARRAY_SIZE(t->n); i++)
        if (kinds_all[i] == k)
            t->n[i]++;
    t->total++;
}

char *bk_tally_str(const struct bk_tally *t)
{
    struct buf b = {0};
    buf_printf(&b, "%zu object%s", t->total, t->total == 1 ? "" : "s");
    const char *sep = " (";
    for (size_t i = 0; kinds_all[i] && i < ARRAY_SIZE(t->n); i++) {
        if (!t->n[i])
            continue;
        buf_printf(&b, "%s%s %zu", sep, kinds_all[i]->resource, t->n[i]);
        sep = ", ";
    }
    if (*sep == ',')
        buf_printf(&b, ")");
    return buf_take(&b);
}
