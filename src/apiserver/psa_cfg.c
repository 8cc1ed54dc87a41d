/*
 * psa_cfg: reads --admission-control-config-file, Kubernetes'
 * AdmissionConfiguration (apiserver.config.k8s.io/v1), for the PodSecurity
 * plugin's PodSecurityConfiguration (pod-security.admission.config.k8s.io
 * v1, v1beta1 or v1alpha1): given inline as the plugin's configuration, or
 * in the file its path names (relative to the admission configuration's
 * directory). Other plugins' entries are accepted and left alone, as a
 * kube-apiserver without those plugins would. libyaml loads the document;
 * each problem is told as "FILE:LINE: plugins[0].configuration.defaults.
 * enforce: what". Strict: unknown fields and aliases are refused.
 */
#include "config.h"
#include "psa.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define CFG_MAX_FILE (1u << 20)
#define PATH_LEN 160

struct plugin;

struct yctx {
    const char *name; /* the file, for messages */
    const char *dir;  /* where a plugin's relative path is; NULL: paths refused */
    yaml_document_t *doc;
    char *err;
    struct psa_file *out;
    bool found;            /* the PodSecurity plugin */
    struct plugin *plugin; /* the plugins[] entry being read */
};

static int fail(struct yctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
    PRINTF(4, 5);
static int fail(struct yctx *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    if (c->err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    c->err = xasprintf("%s:%zu: %s%s%s", c->name, n ? n->start_mark.line + 1 : 1, path,
                       *path ? ": " : "", msg);
    free(msg);
    return -1;
}

/* Node idx, refusing aliases (a node reached twice). */
static yaml_node_t *node(struct yctx *c, int idx, unsigned char *seen, const char *path)
{
    yaml_node_t *n = yaml_document_get_node(c->doc, idx);
    if (!n) {
        fail(c, NULL, path, "no such node");
        return NULL;
    }
    size_t i = (size_t)(n - c->doc->nodes.start);
    if (seen[i]) {
        fail(c, n, path, "YAML aliases are not supported");
        return NULL;
    }
    seen[i] = 1;
    return n;
}

static const char *str(struct yctx *c, const yaml_node_t *n, const char *path)
{
    if (n->type != YAML_SCALAR_NODE) {
        fail(c, n, path, "expected a string");
        return NULL;
    }
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        fail(c, n, path, "a NUL byte in a string");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

/*
 * Mapping n's pairs: fn(key, value, its path) for each, the keys strings and
 * none twice. seen: the document's nodes visited.
 */
typedef int (*pair_fn)(struct yctx *c, const char *key, yaml_node_t *v, const char *path,
                       unsigned char *seen);
static int pairs(struct yctx *c, yaml_node_t *n, const char *path, unsigned char *seen, pair_fn fn)
{
    if (n->type != YAML_MAPPING_NODE)
        return fail(c, n, path, "expected a mapping");
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key, seen, path), *v;
        const char *key = k ? str(c, k, path) : NULL;
        if (!key)
            return -1;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE &&
                !strcmp((const char *)k2->data.scalar.value, key))
                return fail(c, k, path, "duplicate field \"%s\"", key);
        }
        char sub[PATH_LEN];
        snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
        if (!(v = node(c, p->value, seen, sub)) || fn(c, key, v, sub, seen))
            return -1;
    }
    return 0;
}

/* A list of strings into *out (NULL-terminated, malloc'd). */
static int str_list(struct yctx *c, yaml_node_t *n, const char *path, unsigned char *seen,
                    char ***out)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(c, n, path, "expected a list");
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start), i = 0;
    char **v = xcalloc(cnt + 1, sizeof(*v));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        char sub[PATH_LEN];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        yaml_node_t *item = node(c, *it, seen, sub);
        const char *s = item ? str(c, item, sub) : NULL;
        if (s && !*s)
            fail(c, item, sub, "Invalid value: \"\": must not be empty");
        if (!s || !*s) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return -1;
        }
        v[i] = xstrdup(s);
    }
    for (size_t j = 0; *out && (*out)[j]; j++)
        free((*out)[j]);
    free(*out);
    *out = v;
    return 0;
}

static int exemption(struct yctx *c, const char *key, yaml_node_t *v, const char *path,
                     unsigned char *seen)
{
    struct psa_file *o = c->out;
    char ***l = !strcmp(key, "usernames")        ? &o->exempt_users
                : !strcmp(key, "namespaces")     ? &o->exempt_namespaces
                : !strcmp(key, "runtimeClasses") ? &o->exempt_runtime_classes
                                                 : NULL;
    if (!l)
        return fail(c, v, path, "unknown field");
    return str_list(c, v, path, seen, l);
}

static int defaults(struct yctx *c, const char *key, yaml_node_t *v, const char *path,
                    unsigned char *seen)
{
    (void)seen;
    static const char *const modes[] = {"enforce", "audit", "warn"};
    struct psa_lv *lvs[] = {&c->out->defaults.enforce, &c->out->defaults.audit,
                            &c->out->defaults.warn};
    const char *s = str(c, v, path);
    if (!s)
        return -1;
    for (int i = 0; i < 3; i++) {
        size_t ml = strlen(modes[i]);
        if (strncmp(key, modes[i], ml))
            continue;
        if (!key[ml]) {
            if (psa_parse_level(s, &lvs[i]->level) < 0)
                return fail(c, v, path,
                            "Invalid value: \"%s\": must be one of privileged, baseline, "
                            "restricted",
                            s);
            return 0;
        }
        if (!strcmp(key + ml, "-version")) {
            if (psa_parse_version(s, &lvs[i]->minor) < 0)
                return fail(c, v, path, "Invalid value: \"%s\": must be \"latest\" or \"v1.x\"", s);
            return 0;
        }
    }
    return fail(c, v, path, "unknown field");
}

static int type_meta(struct yctx *c, const char *key, yaml_node_t *v, const char *path,
                     const char *const *versions, const char *kind)
{
    const char *s = str(c, v, path);
    if (!s)
        return -1;
    if (!strcmp(key, "kind")) {
        if (strcmp(s, kind))
            return fail(c, v, path, "want %s, not \"%s\"", kind, s);
        return 0;
    }
    for (; *versions; versions++)
        if (!strcmp(s, *versions))
            return 0;
    return fail(c, v, path, "unsupported apiVersion \"%s\"", s);
}

static int ps_config(struct yctx *c, const char *key, yaml_node_t *v, const char *path,
                     unsigned char *seen)
{
    static const char *const versions[] = {"pod-security.admission.config.k8s.io/v1",
                                           "pod-security.admission.config.k8s.io/v1beta1",
                                           "pod-security.admission.config.k8s.io/v1alpha1", NULL};
    if (!strcmp(key, "apiVersion") || !strcmp(key, "kind"))
        return type_meta(c, key, v, path, versions, "PodSecurityConfiguration");
    if (!strcmp(key, "defaults"))
        return pairs(c, v, path, seen, defaults);
    if (!strcmp(key, "exemptions"))
        return pairs(c, v, path, seen, exemption);
    return fail(c, v, path, "unknown field");
}

static int parse_text(struct yctx *c, const char *buf, size_t len, pair_fn top);

/* A plugin entry: name, then its configuration inline or at path. */
struct plugin {
    const char *name;
    yaml_node_t *conf, *path;
    char conf_path[PATH_LEN], path_path[PATH_LEN];
};

static int plugin_field(struct yctx *c, const char *key, yaml_node_t *v, const char *path,
                        unsigned char *seen)
{
    (void)seen;
    struct plugin *p = c->plugin;
    if (!strcmp(key, "name"))
        return (p->name = str(c, v, path)) ? 0 : -1;
    if (!strcmp(key, "configuration")) {
        p->conf = v;
        snprintf(p->conf_path, sizeof(p->conf_path), "%s", path);
        return 0;
    }
    if (!strcmp(key, "path")) {
        p->path = v;
        snprintf(p->path_path, sizeof(p->path_path), "%s", path);
        return str(c, v, path) ? 0 : -1;
    }
    return fail(c, v, path, "unknown field");
}

static int load_file(struct yctx *c, const char *path, pair_fn top);

static int plugins(struct yctx *c, yaml_node_t *n, const char *path, unsigned char *seen)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(c, n, path, "expected a list");
    size_t i = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        char sub[PATH_LEN];
        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        yaml_node_t *item = node(c, *it, seen, sub);
        struct plugin p = {0};
        c->plugin = &p;
        int r = item ? pairs(c, item, sub, seen, plugin_field) : -1;
        c->plugin = NULL;
        if (r < 0)
            return -1;
        if (!p.name)
            return fail(c, item, sub, "name: Required value");
        if (strcmp(p.name, "PodSecurity"))
            continue; /* another plugin's: not this apiserver's business */
        if (c->found)
            return fail(c, item, sub, "PodSecurity configured twice");
        c->found = true;
        if (p.conf && p.path)
            return fail(c, item, sub, "configuration and path: give one");
        if (p.conf && pairs(c, p.conf, p.conf_path, seen, ps_config))
            return -1;
        if (p.path && !c->dir)
            return fail(c, p.path, p.path_path, "not read from text (psa_file_parse)");
        if (p.path) {
            const char *f = (const char *)p.path->data.scalar.value;
            char *full = f[0] == '/' ? xstrdup(f) : xconcat(c->dir, "/", f, NULL);
            struct yctx sc = {.name = full, .dir = c->dir, .out = c->out};
            int lr = load_file(&sc, full, ps_config);
            free(full);
            if (lr < 0) {
                c->err = sc.err;
                return -1;
            }
        }
    }
    return 0;
}

static int admission_config(struct yctx *c, const char *key, yaml_node_t *v, const char *path,
                            unsigned char *seen)
{
    static const char *const versions[] = {"apiserver.config.k8s.io/v1",
                                           "apiserver.config.k8s.io/v1alpha1",
                                           "apiserver.k8s.io/v1alpha1", NULL};
    if (!strcmp(key, "apiVersion") || !strcmp(key, "kind"))
        return type_meta(c, key, v, path, versions, "AdmissionConfiguration");
    if (!strcmp(key, "plugins"))
        return plugins(c, v, path, seen);
    return fail(c, v, path, "unknown field");
}

/* One YAML document of buf, its root mapping walked with top. */
static int parse_text(struct yctx *c, const char *buf, size_t len, pair_fn top)
{
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p))
        fatal("yaml_parser_initialize");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int rc = -1;
    if (!yaml_parser_load(&p, &doc)) {
        c->err = xasprintf("%s:%zu: %s", c->name, p.problem_mark.line + 1,
                           p.problem ? p.problem : "invalid YAML");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
            fail(c, NULL, "", "empty file");
        } else {
            unsigned char *seen = xcalloc((size_t)(doc.nodes.top - doc.nodes.start), 1);
            seen[root - doc.nodes.start] = 1;
            c->doc = &doc;
            rc = pairs(c, root, "", seen, top);
            free(seen);
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    return rc;
}

static int load_file(struct yctx *c, const char *path, pair_fn top)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        c->err = xasprintf("%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = xmalloc(CFG_MAX_FILE + 1);
    size_t n = fread(buf, 1, CFG_MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = -1;
    if (bad)
        c->err = xasprintf("%s: read error", path);
    else if (n > CFG_MAX_FILE)
        c->err = xasprintf("%s: larger than %u bytes", path, CFG_MAX_FILE);
    else
        rc = parse_text(c, buf, n, top);
    free(buf);
    return rc;
}

static void file_init(struct psa_file *out)
{
    struct psa_lv priv = {PSA_PRIVILEGED, PSA_LATEST};
    *out = (struct psa_file){.defaults = {priv, priv, priv}};
}

int psa_file_parse(const char *name, const char *buf, size_t len, struct psa_file *out, char **err)
{
    file_init(out);
    struct yctx c = {.name = name, .out = out};
    if (parse_text(&c, buf, len, admission_config) < 0) {
        psa_file_free(out);
        *err = c.err;
        return -1;
    }
    out->found = c.found;
    return 0;
}

int psa_file_load(const char *path, struct psa_file *out, char **err)
{
    file_init(out);
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
    struct yctx c = {.name = path, .dir = dir, .out = out};
    int rc = load_file(&c, path, admission_config);
    free(dir);
    if (rc < 0) {
        psa_file_free(out);
        *err = c.err;
        return -1;
    }
    out->found = c.found;
    return 0;
}

static void free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void psa_file_free(struct psa_file *f)
{
    free_list(f->exempt_users);
    free_list(f->exempt_namespaces);
    free_list(f->exempt_runtime_classes);
    f->exempt_users = f->exempt_namespaces = f->exempt_runtime_classes = NULL;
}
