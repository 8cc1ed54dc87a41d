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

#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define ENC_MAX_FILE (1u << 20)
#define PATH_MAX_LEN 160

struct pctx {
    const char *name;
    yaml_document_t *doc;
    unsigned char *seen; /* per node: visited (a second visit is an alias) */
    size_t n_nodes;
    char *err;
    enc_t *e;
};

static int fail(struct pctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
    PRINTF(4, 5);
static int fail(struct pctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    if (c->err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (n)
        c->err = xasprintf("%s:%zu: %s%s%s", c->name, n->start_mark.line + 1, path ? path : "",
                           path && *path ? ": " : "", msg);
    else
        c->err = xasprintf("%s: %s%s%s", c->name, path ? path : "", path && *path ? ": " : "", msg);
    free(msg);
    return -1;
}

/* Node idx of the document, or NULL (err set) when it was seen before: an alias. */
static yaml_node_t *node_at(struct pctx *c, int idx, const yaml_node_t *parent, const char *path)
{
    yaml_node_t *n = yaml_document_get_node(c->doc, idx);
    if (!n) {
        fail(c, parent, path, "no such node");
        return NULL;
    }
    size_t i = (size_t)(n - c->doc->nodes.start);
    if (c->seen[i]) {
        fail(c, n, path, "YAML aliases are not supported");
        return NULL;
    }
    c->seen[i] = 1;
    return n;
}

static const char *node_kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE    ? "a mapping"
           : n->type == YAML_SEQUENCE_NODE ? "a list"
                                           : "a scalar";
}

/* A scalar's text, or NULL (err set). Empty plain scalars are null, and refused. */
static const char *scalar(struct pctx *c, const yaml_node_t *n, const char *path)
{
    if (n->type != YAML_SCALAR_NODE) {
        fail(c, n, path, "expected a string, got %s", node_kind(n));
        return NULL;
    }
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        fail(c, n, path, "a NUL byte in a string");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static void path_sub(char *out, const char *path, const char *field)
{
    snprintf(out, PATH_MAX_LEN, "%s%s%s", path, *path ? "." : "", field);
}

static void path_idx(char *out, const char *path, size_t i)
{
    snprintf(out, PATH_MAX_LEN, "%s[%zu]", path, i);
}

/*
 * Walks mapping n: fn(c, key, value, path of the value, arg) for each pair.
 * Duplicate keys and non-string keys are refused.
 */
typedef int (*pair_fn)(struct pctx *c, const char *key, yaml_node_t *v, const char *path,
                       void *arg);
static int each_pair(struct pctx *c, yaml_node_t *n, const char *path, pair_fn fn, void *arg)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, path, "expected a mapping, got %s", node_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key, n, path), *v;
        const char *key = k ? scalar(c, k, path) : NULL;
        if (!key)
            return -1;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE &&
                !strcmp((const char *)k2->data.scalar.value, key))
                return fail(c, k, path, "duplicate field \"%s\"", key);
        }
        char sub[PATH_MAX_LEN];
        path_sub(sub, path, key);
        if (!(v = node_at(c, p->value, k, sub)) || fn(c, key, v, sub, arg))
            return -1;
    }
    return 0;
}

/* Walks list n: fn(c, item, path of the item, index, arg); an empty or absent list is refused. */
typedef int (*item_fn)(struct pctx *c, yaml_node_t *v, const char *path, size_t i, void *arg);
static int each_item(struct pctx *c, yaml_node_t *n, const char *path, item_fn fn, void *arg)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(c, n, path, "expected a list, got %s", node_kind(n));
    if (n->data.sequence.items.start == n->data.sequence.items.top)
        return fail(c, n, path, "at least one is required");
    size_t i = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        char sub[PATH_MAX_LEN];
        path_idx(sub, path, i);
        yaml_node_t *v = node_at(c, *it, n, sub);
        if (!v || fn(c, v, sub, i, arg))
            return -1;
    }
    return 0;
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

static int key_field(struct pctx *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct key_arg *ka = arg;
    const char *s;
    if (strcmp(key, "name") && strcmp(key, "secret"))
        return fail(c, v, path, "unknown field (a key has name and secret)");
    if (!(s = scalar(c, v, path)))
        return -1;
    if (!strcmp(key, "name")) {
        if (!*s)
            return fail(c, v, path, "a key needs a name");
        ka->k->name = xstrdup(s);
        ka->has_name = 1;
        return 0;
    }
    unsigned char tmp[ENC_MAX_KEY + 3];
    long n = b64_decode(s, tmp, sizeof(tmp));
    if (n < 0)
        return fail(c, v, path, "secrets must be base64 encoded");
    if (n != 16 && n != 24 && n != 32)
        return fail(c, v, path, "secret is %ld bytes; AES needs 16, 24 or 32", n);
    memcpy(ka->k->secret, tmp, (size_t)n);
    ka->k->len = (size_t)n;
    ka->has_secret = 1;
    return 0;
}

static int key_item(struct pctx *c, yaml_node_t *v, const char *path, size_t i, void *arg)
{
    struct enc_provider *p = arg;
    struct enc_key *k = &p->keys[i];
    struct key_arg ka = {.k = k};
    if (each_pair(c, v, path, key_field, &ka))
        return -1;
    if (!ka.has_name || !ka.has_secret)
        return fail(c, v, path, "a key needs %s", ka.has_name ? "a secret" : "a name");
    for (size_t j = 0; j < i; j++)
        if (!strcmp(p->keys[j].name, k->name))
            return fail(c, v, path, "a second key named \"%s\"", k->name);
    k->prefix = xasprintf("k8s:enc:%s:v1:%s:", enc_type_name(p->type), k->name);
    k->prefix_len = strlen(k->prefix);
    return 0;
}

static int aes_field(struct pctx *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct enc_provider *p = arg;
    if (strcmp(key, "keys"))
        return fail(c, v, path, "unknown field (%s has keys)", enc_type_name(p->type));
    if (v->type == YAML_SEQUENCE_NODE && !p->keys) {
        p->n_keys = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        p->keys = xcalloc(p->n_keys ? p->n_keys : 1, sizeof(*p->keys));
    }
    return each_item(c, v, path, key_item, p);
}

struct prov_arg {
    struct enc_provider *p;
    int n; /* providers named in this item */
};

static int prov_field(struct pctx *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct prov_arg *pa = arg;
    if (pa->n++)
        return fail(c, v, path, "one provider per item of providers");
    if (!strcmp(key, "identity")) {
        pa->p->type = ENC_IDENTITY;
        if (is_null(v) || (v->type == YAML_MAPPING_NODE &&
                           v->data.mapping.pairs.start == v->data.mapping.pairs.top))
            return 0;
        return fail(c, v, path, "identity takes no fields");
    }
    if (!strcmp(key, "aesgcm") || !strcmp(key, "aescbc")) {
        pa->p->type = !strcmp(key, "aesgcm") ? ENC_AESGCM : ENC_AESCBC;
        if (each_pair(c, v, path, aes_field, pa->p))
            return -1;
        if (!pa->p->keys)
            return fail(c, v, path, "keys: at least one is required");
        return 0;
    }
    if (!strcmp(key, "secretbox") || !strcmp(key, "kms"))
        return fail(c, v, path, "provider %s is not supported (aesgcm, aescbc and identity are)",
                    key);
    return fail(c, v, path, "unknown provider (aesgcm, aescbc or identity)");
}

static int prov_item(struct pctx *c, yaml_node_t *v, const char *path, size_t i, void *arg)
{
    struct enc_rule *r = arg;
    struct prov_arg pa = {.p = &r->prov[i]};
    if (each_pair(c, v, path, prov_field, &pa))
        return -1;
    if (!pa.n)
        return fail(c, v, path, "a provider is required (aesgcm, aescbc or identity)");
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

static int res_item(struct pctx *c, yaml_node_t *v, const char *path, size_t i, void *arg)
{
    struct res_list *rl = arg;
    const char *s = scalar(c, v, path);
    if (!s)
        return -1;
    for (const char *p = s; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            return fail(c, v, path, "resource name should not contain capital letters");
    if (!strcmp(s, "*"))
        return fail(c, v, path,
                    "use '*.' to encrypt all the resources of the core API group or '*.*' "
                    "to encrypt all resources");
    for (size_t j = 0; j < i; j++)
        if (!strcmp(rl->v[j], s))
            return fail(c, v, path, "\"%s\" is named twice", s);
    int found = 0;
    for (const struct kind *const *k = kinds_all; *k && !found; k++)
        found = names_kind(s, *k);
    if (!found && strncmp(s, "*.", 2))
        return fail(c, v, path, "no resource \"%s\" in this apiserver", s);
    rl->v[i] = xstrdup(s);
    rl->n = i + 1;
    return 0;
}

struct rule_arg {
    struct enc_rule *r;
    struct res_list *names;
    int has_res, has_prov;
};

static int rule_field(struct pctx *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct rule_arg *ra = arg;
    if (!strcmp(key, "resources")) {
        ra->has_res = 1;
        if (v->type == YAML_SEQUENCE_NODE && !ra->names->v)
            ra->names->v =
                xcalloc((size_t)(v->data.sequence.items.top - v->data.sequence.items.start) + 1,
                        sizeof(char *));
        return each_item(c, v, path, res_item, ra->names);
    }
    if (!strcmp(key, "providers")) {
        ra->has_prov = 1;
        if (v->type == YAML_SEQUENCE_NODE && !ra->r->prov) {
            ra->r->n_prov = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            ra->r->prov = xcalloc(ra->r->n_prov ? ra->r->n_prov : 1, sizeof(*ra->r->prov));
        }
        return each_item(c, v, path, prov_item, ra->r);
    }
    return fail(c, v, path, "unknown field (an item of resources has resources and providers)");
}

struct top_arg {
    struct res_list *names; /* per rule */
    int has_api, has_kind, has_res;
};

static int rule_item(struct pctx *c, yaml_node_t *v, const char *path, size_t i, void *arg)
{
    struct top_arg *ta = arg;
    struct rule_arg ra = {.r = &c->e->rules[i], .names = &ta->names[i]};
    if (each_pair(c, v, path, rule_field, &ra))
        return -1;
    if (!ra.has_res || !ra.has_prov) {
        char sub[PATH_MAX_LEN];
        path_sub(sub, path, ra.has_res ? "providers" : "resources");
        return fail(c, v, sub, "at least one is required");
    }
    return 0;
}

static int top_field(struct pctx *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct top_arg *ta = arg;
    const char *s;
    if (!strcmp(key, "apiVersion")) {
        ta->has_api = 1;
        if (!(s = scalar(c, v, path)))
            return -1;
        if (strcmp(s, "apiserver.config.k8s.io/v1"))
            return fail(c, v, path, "\"%s\": expected apiserver.config.k8s.io/v1", s);
        return 0;
    }
    if (!strcmp(key, "kind")) {
        ta->has_kind = 1;
        if (!(s = scalar(c, v, path)))
            return -1;
        if (strcmp(s, "EncryptionConfiguration"))
            return fail(c, v, path, "\"%s\": expected EncryptionConfiguration", s);
        return 0;
    }
    if (!strcmp(key, "resources")) {
        ta->has_res = 1;
        if (v->type == YAML_SEQUENCE_NODE && !c->e->rules) {
            c->e->n_rules = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            c->e->rules = xcalloc(c->e->n_rules ? c->e->n_rules : 1, sizeof(*c->e->rules));
            ta->names = xcalloc(c->e->n_rules ? c->e->n_rules : 1, sizeof(*ta->names));
        }
        return each_item(c, v, path, rule_item, ta);
    }
    return fail(c, v, path, "unknown field (apiVersion, kind, resources)");
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

static int parse_doc(struct pctx *c, yaml_document_t *doc)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    struct top_arg ta = {0};
    int rc = -1;
    if (!root) {
        fail(c, NULL, NULL, "empty file");
        return -1;
    }
    c->doc = doc;
    c->n_nodes = (size_t)(doc->nodes.top - doc->nodes.start);
    c->seen = xcalloc(c->n_nodes, 1);
    c->seen[root - doc->nodes.start] = 1;
    if (each_pair(c, root, "", top_field, &ta))
        goto out;
    if (!ta.has_api || !ta.has_kind || !ta.has_res) {
        fail(c, root, !ta.has_api ? "apiVersion" : !ta.has_kind ? "kind" : "resources", "required");
        goto out;
    }
    resolve(c->e, ta.names);
    rc = 0;
out:
    for (size_t i = 0; ta.names && i < c->e->n_rules; i++) {
        for (size_t j = 0; j < ta.names[i].n; j++)
            free(ta.names[i].v[j]);
        free(ta.names[i].v);
    }
    free(ta.names);
    free(c->seen);
    c->seen = NULL;
    return rc;
}

int enc_parse(const char *name, const char *buf, size_t len, enc_t **out, char **err)
{
    yaml_parser_t p;
    yaml_document_t doc;
    struct pctx c = {.name = name, .e = xcalloc(1, sizeof(enc_t))};
    *out = NULL;
    if (!yaml_parser_initialize(&p))
        fatal("yaml_parser_initialize");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&p, &doc)) {
        c.err = xasprintf("%s:%zu: %s%s%s", name, p.problem_mark.line + 1,
                          p.problem ? p.problem : "invalid YAML", p.context ? " " : "",
                          p.context ? p.context : "");
    } else {
        parse_doc(&c, &doc);
        yaml_document_delete(&doc);
        /* one document: a second one would be ignored by mistake */
        if (!c.err && yaml_parser_load(&p, &doc)) {
            yaml_node_t *more = yaml_document_get_root_node(&doc);
            if (more)
                fail(&c, more, NULL, "a second document (the file holds one configuration)");
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&p);
    if (c.err) {
        *err = c.err;
        enc_free(c.e);
        return -1;
    }
    *out = c.e;
    return 0;
}

int enc_load(const char *path, enc_t **out, char **err)
{
    FILE *f = fopen(path, "re");
    *out = NULL;
    if (!f) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = xmalloc(ENC_MAX_FILE + 1);
    size_t n = fread(buf, 1, ENC_MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = -1;
    if (bad)
        *err = xasprintf("%s: read error", path);
    else if (n > ENC_MAX_FILE)
        *err = xasprintf("%s: larger than %u bytes", path, ENC_MAX_FILE);
    else
        rc = enc_parse(path, buf, n, out, err);
    /* the file holds keys: leave no copy of it in freed memory */
    OPENSSL_cleanse(buf, n < ENC_MAX_FILE ? n : ENC_MAX_FILE);
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
