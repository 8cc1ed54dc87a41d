/*
 * enc_cfg: reads --encryption-provider-config, Kubernetes'
 * EncryptionConfiguration (apiserver.config.k8s.io/v1) in YAML or JSON,
 * into the rules enc.c applies. libyaml loads the document as a tree whose
 * every node knows its line, so each problem is told as
 * "FILE:LINE: resources[0].providers[1].aesgcm.keys[0].secret: what".
 * Strict, as kube-apiserver is: unknown fields, aliases, and providers this
 * apiserver has not (secretbox, kms) are refused rather than ignored.
 */
#include "config.h"
#include "enc_int.h"
#include "kinds.h"
#include "util.h"
#include "ycfg.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

/* The rules being read. */
static enc_t *enc_of(struct ycfg *c)
{
    return c->user;
}

/* ---- base64 ---- */

static int b64_val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* Standard, padded base64 (as Go's StdEncoding) into out (cap bytes). Returns the length or -1. */
static long b64_decode(const char *s, unsigned char *out, size_t cap)
{
    size_t len = strlen(s), n = 0;
    if (len == 0 || len % 4)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == len && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad || (v[j] = b64_val((unsigned char)s[i + j])) < 0) {
                return -1;
            }
        }
        unsigned long w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
                          (unsigned long)v[2] << 6 | (unsigned long)v[3];
        unsigned char b[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8), (unsigned char)w};
        /* the bits padding leaves over must be zero, as Go's strict decoder wants */
        if ((pad == 1 && b[2]) || (pad == 2 && (b[1] || b[2])))
            return -1;
        for (int j = 0; j < 3 - pad; j++) {
            if (n == cap)
                return -1;
            out[n++] = b[j];
        }
    }
    return (long)n;
}

/* ---- keys and providers ---- */

struct key_arg {
    struct enc_key *k;
    int has_name, has_secret;
};

static int key_field(struct ycfg *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct key_arg *ka = arg;
    const char *s;
    if (strcmp(key, "name") && strcmp(key, "secret"))
        return ycfg_fail(c, v, path, "unknown field (a key has name and secret)");
    if (!(s = ycfg_str(c, v, path)))
        return -1;
    if (!strcmp(key, "name")) {
        if (!*s)
            return ycfg_fail(c, v, path, "a key needs a name");
        ka->k->name = xstrdup(s);
        ka->has_name = 1;
        return 0;
    }
    unsigned char tmp[ENC_MAX_KEY + 3];
    long n = b64_decode(s, tmp, sizeof(tmp));
    if (n < 0)
        return ycfg_fail(c, v, path, "secrets must be base64 encoded");
    if (n != 16 && n != 24 && n != 32)
        return ycfg_fail(c, v, path, "secret is %ld bytes; AES needs 16, 24 or 32", n);
    memcpy(ka->k->secret, tmp, (size_t)n);
    ka->k->len = (size_t)n;
    ka->has_secret = 1;
    return 0;
}

static int key_item(struct ycfg *c, yaml_node_t *v, const char *path, size_t i, void *arg)
{
    struct enc_provider *p = arg;
    struct enc_key *k = &p->keys[i];
    struct key_arg ka = {.k = k};
    if (ycfg_pairs(c, v, path, key_field, &ka))
        return -1;
    if (!ka.has_name || !ka.has_secret)
        return ycfg_fail(c, v, path, "a key needs %s", ka.has_name ? "a secret" : "a name");
    for (size_t j = 0; j < i; j++)
        if (!strcmp(p->keys[j].name, k->name))
            return ycfg_fail(c, v, path, "a second key named \"%s\"", k->name);
    k->prefix = xasprintf("k8s:enc:%s:v1:%s:", enc_type_name(p->type), k->name);
    k->prefix_len = strlen(k->prefix);
    return 0;
}

static int aes_field(struct ycfg *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct enc_provider *p = arg;
    if (strcmp(key, "keys"))
        return ycfg_fail(c, v, path, "unknown field (%s has keys)", enc_type_name(p->type));
    if (v->type == YAML_SEQUENCE_NODE && !p->keys) {
        p->n_keys = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        p->keys = xcalloc(p->n_keys ? p->n_keys : 1, sizeof(*p->keys));
    }
    return ycfg_items(c, v, path, YCFG_NONEMPTY, key_item, p);
}

struct prov_arg {
    struct enc_provider *p;
    int n; /* providers named in this item */
};

static int prov_field(struct ycfg *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct prov_arg *pa = arg;
    if (pa->n++)
        return ycfg_fail(c, v, path, "one provider per item of providers");
    if (!strcmp(key, "identity")) {
        pa->p->type = ENC_IDENTITY;
        if (ycfg_is_null(v) || (v->type == YAML_MAPPING_NODE &&
                                v->data.mapping.pairs.start == v->data.mapping.pairs.top))
            return 0;
        return ycfg_fail(c, v, path, "identity takes no fields");
    }
    if (!strcmp(key, "aesgcm") || !strcmp(key, "aescbc")) {
        pa->p->type = !strcmp(key, "aesgcm") ? ENC_AESGCM : ENC_AESCBC;
        if (ycfg_pairs(c, v, path, aes_field, pa->p))
            return -1;
        if (!pa->p->keys)
            return ycfg_fail(c, v, path, "keys: at least one is required");
        return 0;
    }
    if (!strcmp(key, "secretbox") || !strcmp(key, "kms"))
        return ycfg_fail(c, v, path,
                         "provider %s is not supported (aesgcm, aescbc and identity are)", key);
    return ycfg_fail(c, v, path, "unknown provider (aesgcm, aescbc or identity)");
}

static int prov_item(struct ycfg *c, yaml_node_t *v, const char *path, size_t i, void *arg)
{
    struct enc_rule *r = arg;
    struct prov_arg pa = {.p = &r->prov[i]};
    if (ycfg_pairs(c, v, path, prov_field, &pa))
        return -1;
    if (!pa.n)
        return ycfg_fail(c, v, path, "a provider is required (aesgcm, aescbc or identity)");
    if (pa.p->type == ENC_IDENTITY)
        r->has_identity = 1;
    return 0;
}

/* ---- resources ---- */

/* The API group of k: "" for the core group. */
static size_t kind_group(const struct kind *k, const char **group)
{
    const char *sl = strchr(k->api_version, '/');
    *group = k->api_version;
    return sl ? (size_t)(sl - k->api_version) : 0;
}

/* Does the resources[] entry s ("secrets", "leases.coordination.k8s.io", "*.", "*.*") name k? */
static int names_kind(const char *s, const struct kind *k)
{
    const char *g;
    size_t gl = kind_group(k, &g);
    if (!strcmp(s, "*.*"))
        return 1;
    const char *dot = strchr(s, '.');
    size_t rl = dot ? (size_t)(dot - s) : strlen(s);
    const char *sg = dot ? dot + 1 : "";
    if (strlen(sg) != gl || memcmp(sg, g, gl))
        return 0;
    return (rl == 1 && s[0] == '*') || (rl == strlen(k->resource) && !memcmp(s, k->resource, rl));
}

struct res_list {
    char **v;
    size_t n;
};

static int res_item(struct ycfg *c, yaml_node_t *v, const char *path, size_t i, void *arg)
{
    struct res_list *rl = arg;
    const char *s = ycfg_str(c, v, path);
    if (!s)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            return ycfg_fail(c, v, path, "resource name should not contain capital letters");
    if (!strcmp(s, "*"))
        return ycfg_fail(c, v, path,
                         "use '*.' to encrypt all the resources of the core API group or '*.*' "
                         "to encrypt all resources");
    for (size_t j = 0; j < i; j++)
        if (!strcmp(rl->v[j], s))
            return ycfg_fail(c, v, path, "\"%s\" is named twice", s);
    int found = 0;
    for (const struct kind *const *k = kinds_all; *k && !found; k++)
        found = names_kind(s, *k);
    if (!found && strncmp(s, "*.", 2))
        return ycfg_fail(c, v, path, "no resource \"%s\" in this apiserver", s);
    rl->v[i] = xstrdup(s);
    rl->n = i + 1;
    return 0;
}

struct rule_arg {
    struct enc_rule *r;
    struct res_list *names;
    int has_res, has_prov;
};

static int rule_field(struct ycfg *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct rule_arg *ra = arg;
    if (!strcmp(key, "resources")) {
        ra->has_res = 1;
        if (v->type == YAML_SEQUENCE_NODE && !ra->names->v)
            ra->names->v =
                xcalloc((size_t)(v->data.sequence.items.top - v->data.sequence.items.start) + 1,
                        sizeof(char *));
        return ycfg_items(c, v, path, YCFG_NONEMPTY, res_item, ra->names);
    }
    if (!strcmp(key, "providers")) {
        ra->has_prov = 1;
        if (v->type == YAML_SEQUENCE_NODE && !ra->r->prov) {
            ra->r->n_prov = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            ra->r->prov = xcalloc(ra->r->n_prov ? ra->r->n_prov : 1, sizeof(*ra->r->prov));
        }
        return ycfg_items(c, v, path, YCFG_NONEMPTY, prov_item, ra->r);
    }
    return ycfg_fail(c, v, path,
                     "unknown field (an item of resources has resources and providers)");
}

struct top_arg {
    struct res_list *names; /* per rule */
    int has_api, has_kind, has_res;
};

static int rule_item(struct ycfg *c, yaml_node_t *v, const char *path, size_t i, void *arg)
{
    struct top_arg *ta = arg;
    struct rule_arg ra = {.r = &enc_of(c)->rules[i], .names = &ta->names[i]};
    if (ycfg_pairs(c, v, path, rule_field, &ra))
        return -1;
    if (!ra.has_res || !ra.has_prov) {
        char sub[YCFG_PATH_LEN];
        ycfg_path_sub(sub, path, ra.has_res ? "providers" : "resources");
        return ycfg_fail(c, v, sub, "at least one is required");
    }
    return 0;
}

static int top_field(struct ycfg *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct top_arg *ta = arg;
    const char *s;
    if (!strcmp(key, "apiVersion")) {
        ta->has_api = 1;
        if (!(s = ycfg_str(c, v, path)))
            return -1;
        if (strcmp(s, "apiserver.config.k8s.io/v1"))
            return ycfg_fail(c, v, path, "\"%s\": expected apiserver.config.k8s.io/v1", s);
        return 0;
    }
    if (!strcmp(key, "kind")) {
        ta->has_kind = 1;
        if (!(s = ycfg_str(c, v, path)))
            return -1;
        if (strcmp(s, "EncryptionConfiguration"))
            return ycfg_fail(c, v, path, "\"%s\": expected EncryptionConfiguration", s);
        return 0;
    }
    if (!strcmp(key, "resources")) {
        ta->has_res = 1;
        if (v->type == YAML_SEQUENCE_NODE && !enc_of(c)->rules) {
            enc_of(c)->n_rules =
                (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            enc_of(c)->rules =
                xcalloc(enc_of(c)->n_rules ? enc_of(c)->n_rules : 1, sizeof(*enc_of(c)->rules));
            ta->names = xcalloc(enc_of(c)->n_rules ? enc_of(c)->n_rules : 1, sizeof(*ta->names));
        }
        return ycfg_items(c, v, path, YCFG_NONEMPTY, rule_item, ta);
    }
    return ycfg_fail(c, v, path, "unknown field (apiVersion, kind, resources)");
}

/* Each kind takes the first rule that names it, as Kubernetes' resources[] order says. */
static void resolve(enc_t *e, const struct res_list *names)
{
    e->res = xcalloc(KINDS_N, sizeof(*e->res));
    for (const struct kind *const *k = kinds_all; *k; k++) {
        const struct enc_rule *rule = NULL;
        for (size_t i = 0; i < e->n_rules && !rule; i++)
            for (size_t j = 0; j < names[i].n && !rule; j++)
                if (names_kind(names[i].v[j], *k))
                    rule = &e->rules[i];
        if (rule)
            e->res[e->n_res++] = (struct enc_res){(*k)->resource, strlen((*k)->resource), rule};
    }
}

static int parse_root(struct ycfg *c, yaml_node_t *root, void *arg)
{
    (void)arg;
    struct top_arg ta = {0};
    int rc = -1;
    if (ycfg_pairs(c, root, "", top_field, &ta))
        goto out;
    if (!ta.has_api || !ta.has_kind || !ta.has_res) {
        ycfg_fail(c, root,
                  !ta.has_api    ? "apiVersion"
                  : !ta.has_kind ? "kind"
                                 : "resources",
                  "required");
        goto out;
    }
    resolve(enc_of(c), ta.names);
    rc = 0;
out:
    for (size_t i = 0; ta.names && i < enc_of(c)->n_rules; i++) {
        for (size_t j = 0; j < ta.names[i].n; j++)
            free(ta.names[i].v[j]);
        free(ta.names[i].v);
    }
    free(ta.names);
    return rc;
}

int enc_parse(const char *name, const char *buf, size_t len, enc_t **out, char **err)
{
    struct ycfg c = {.name = name, .user = xcalloc(1, sizeof(enc_t))};
    *out = NULL;
    if (ycfg_parse(&c, buf, len, parse_root, NULL) < 0) {
        *err = c.err;
        enc_free(c.user);
        return -1;
    }
    *out = c.user;
    return 0;
}

int enc_load(const char *path, enc_t **out, char **err)
{
    char *buf;
    size_t n;
    *out = NULL;
    if (ycfg_read(path, &buf, &n, err) < 0)
        return -1;
    int rc = enc_parse(path, buf, n, out, err);
    /* the file holds keys: leave no copy of it in freed memory */
    OPENSSL_cleanse(buf, n);
    free(buf);
    return rc;
}

void enc_free(enc_t *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_rules; i++) {
        struct enc_rule *r = &e->rules[i];
        for (size_t j = 0; j < r->n_prov; j++) {
            struct enc_provider *p = &r->prov[j];
            for (size_t k = 0; k < p->n_keys; k++) {
                free(p->keys[k].name);
                free(p->keys[k].prefix);
            }
            if (p->keys)
                OPENSSL_cleanse(p->keys, p->n_keys * sizeof(*p->keys));
            free(p->keys);
        }
        free(r->prov);
    }
    free(e->rules);
    free(e->res);
    free(e);
}
