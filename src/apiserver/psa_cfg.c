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
#include "ycfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static void free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

struct plugin;

struct yctx {
    const char *dir; /* where a plugin's relative path is; NULL: paths refused */
    struct psa_file *out;
    bool found;            /* the PodSecurity plugin */
    struct plugin *plugin; /* the plugins[] entry being read */
};

/* The reader's state: c->user. */
static struct yctx *ctx(struct ycfg *c)
{
    return c->user;
}

struct strs {
    char **v; /* NULL-terminated */
};

static int str_item(struct ycfg *c, yaml_node_t *v, const char *path, size_t i, void *arg)
{
    struct strs *l = arg;
    const char *s = ycfg_str(c, v, path);
    if (!s)
        return -1;
    if (!*s)
        return ycfg_fail(c, v, path, "Invalid value: \"\": must not be empty");
    l->v[i] = xstrdup(s);
    return 0;
}

/* A list of strings into *out (NULL-terminated, malloc'd), replacing what was there. */
static int str_list(struct ycfg *c, yaml_node_t *n, const char *path, char ***out)
{
    struct strs l = {xcalloc(ycfg_len(n) + 1, sizeof(char *))};
    if (ycfg_items(c, n, path, 0, str_item, &l) < 0) {
        free_list(l.v);
        return -1;
    }
    free_list(*out);
    *out = l.v;
    return 0;
}

static int exemption(struct ycfg *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    struct psa_file *o = ctx(c)->out;
    char ***l = !strcmp(key, "usernames")        ? &o->exempt_users
                : !strcmp(key, "namespaces")     ? &o->exempt_namespaces
                : !strcmp(key, "runtimeClasses") ? &o->exempt_runtime_classes
                                                 : NULL;
    if (!l)
        return ycfg_fail(c, v, path, "unknown field");
    (void)arg;
    return str_list(c, v, path, l);
}

static int defaults(struct ycfg *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    (void)arg;
    static const char *const modes[] = {"enforce", "audit", "warn"};
    struct psa_lv *lvs[] = {&ctx(c)->out->defaults.enforce, &ctx(c)->out->defaults.audit,
                            &ctx(c)->out->defaults.warn};
    const char *s = ycfg_str(c, v, path);
    if (!s)
        return -1;
    for (int i = 0; i < 3; i++) {
        size_t ml = strlen(modes[i]);
        if (strncmp(key, modes[i], ml))
            continue;
        if (!key[ml]) {
            if (psa_parse_level(s, &lvs[i]->level) < 0)
                return ycfg_fail(c, v, path,
                                 "Invalid value: \"%s\": must be one of privileged, baseline, "
                                 "restricted",
                                 s);
            return 0;
        }
        if (!strcmp(key + ml, "-version")) {
            if (psa_parse_version(s, &lvs[i]->minor) < 0)
                return ycfg_fail(c, v, path,
                                 "Invalid value: \"%s\": must be \"latest\" or \"v1.x\"", s);
            return 0;
        }
    }
    return ycfg_fail(c, v, path, "unknown field");
}

static int type_meta(struct ycfg *c, const char *key, yaml_node_t *v, const char *path,
                     const char *const *versions, const char *kind)
{
    const char *s = ycfg_str(c, v, path);
    if (!s)
        return -1;
    if (!strcmp(key, "kind")) {
        if (strcmp(s, kind))
            return ycfg_fail(c, v, path, "want %s, not \"%s\"", kind, s);
        return 0;
    }
    for (; *versions; versions++)
        if (!strcmp(s, *versions))
            return 0;
    return ycfg_fail(c, v, path, "unsupported apiVersion \"%s\"", s);
}

static int ps_config(struct ycfg *c, const char *key, yaml_node_t *v, const char *path, void *arg)
{
    (void)arg;
    static const char *const versions[] = {"pod-security.admission.config.k8s.io/v1",
                                           "pod-security.admission.config.k8s.io/v1beta1",
                                           "pod-security.admission.config.k8s.io/v1alpha1", NULL};
    if (!strcmp(key, "apiVersion") || !strcmp(key, "kind"))
        return type_meta(c, key, v, path, versions, "PodSecurityConfiguration");
    if (!strcmp(key, "defaults"))
        return ycfg_pairs(c, v, path, defaults, NULL);
    if (!strcmp(key, "exemptions"))
        return ycfg_pairs(c, v, path, exemption, NULL);
    return ycfg_fail(c, v, path, "unknown field");
}

/* A plugin entry: name, then its configuration inline or at path. */
struct plugin {
    const char *name;
    yaml_node_t *conf, *path;
    char conf_path[YCFG_PATH_LEN], path_path[YCFG_PATH_LEN];
};

static int plugin_field(struct ycfg *c, const char *key, yaml_node_t *v, const char *path,
                        void *arg)
{
    struct plugin *p = arg;
    if (!strcmp(key, "name"))
        return (p->name = ycfg_str(c, v, path)) ? 0 : -1;
    if (!strcmp(key, "configuration")) {
        p->conf = v;
        snprintf(p->conf_path, sizeof(p->conf_path), "%s", path);
        return 0;
    }
    if (!strcmp(key, "path")) {
        p->path = v;
        snprintf(p->path_path, sizeof(p->path_path), "%s", path);
        return ycfg_str(c, v, path) ? 0 : -1;
    }
    return ycfg_fail(c, v, path, "unknown field");
}

static int ps_root(struct ycfg *c, yaml_node_t *root, void *arg)
{
    return ycfg_pairs(c, root, "", ps_config, arg);
}

/* The PodSecurityConfiguration in file f, relative to the admission configuration's directory. */
static int ps_file(struct ycfg *c, const char *f)
{
    struct yctx *x = ctx(c);
    char *full = f[0] == '/' ? xstrdup(f) : xconcat(x->dir, "/", f, NULL), *buf;
    size_t len;
    struct ycfg sc = {.name = full, .user = x};
    int rc = ycfg_read(full, &buf, &len, &sc.err);
    if (!rc) {
        rc = ycfg_parse(&sc, buf, len, ps_root, NULL);
        free(buf);
    }
    free(full);
    if (rc < 0 && !c->err)
        c->err = sc.err;
    else
        free(sc.err);
    return rc;
}

static int plugin_item(struct ycfg *c, yaml_node_t *item, const char *path, size_t i, void *arg)
{
    (void)i, (void)arg;
    struct yctx *x = ctx(c);
    struct plugin p = {0};
    if (ycfg_pairs(c, item, path, plugin_field, &p) < 0)
        return -1;
    if (!p.name)
        return ycfg_fail(c, item, path, "name: Required value");
    if (strcmp(p.name, "PodSecurity"))
        return 0; /* another plugin's: not this apiserver's business */
    if (x->found)
        return ycfg_fail(c, item, path, "PodSecurity configured twice");
    x->found = true;
    if (p.conf && p.path)
        return ycfg_fail(c, item, path, "configuration and path: give one");
    if (p.conf)
        return ycfg_pairs(c, p.conf, p.conf_path, ps_config, NULL);
    if (p.path && !x->dir)
        return ycfg_fail(c, p.path, p.path_path, "not read from text (psa_file_parse)");
    if (p.path)
        return ps_file(c, (const char *)p.path->data.scalar.value);
    return 0;
}

static int admission_config(struct ycfg *c, const char *key, yaml_node_t *v, const char *path,
                            void *arg)
{
    (void)arg;
    static const char *const versions[] = {"apiserver.config.k8s.io/v1",
                                           "apiserver.config.k8s.io/v1alpha1",
                                           "apiserver.k8s.io/v1alpha1", NULL};
    if (!strcmp(key, "apiVersion") || !strcmp(key, "kind"))
        return type_meta(c, key, v, path, versions, "AdmissionConfiguration");
    if (!strcmp(key, "plugins"))
        return ycfg_items(c, v, path, 0, plugin_item, NULL);
    return ycfg_fail(c, v, path, "unknown field");
}

static int admission_root(struct ycfg *c, yaml_node_t *root, void *arg)
{
    return ycfg_pairs(c, root, "", admission_config, arg);
}

static void file_init(struct psa_file *out)
{
    struct psa_lv priv = {PSA_PRIVILEGED, PSA_LATEST};
    *out = (struct psa_file){.defaults = {priv, priv, priv}};
}

static int finish(struct ycfg *c, int rc, struct psa_file *out, char **err)
{
    if (rc < 0) {
        psa_file_free(out);
        *err = c->err;
        return -1;
    }
    out->found = ctx(c)->found;
    return 0;
}

int psa_file_parse(const char *name, const char *buf, size_t len, struct psa_file *out, char **err)
{
    file_init(out);
    struct yctx x = {.out = out};
    struct ycfg c = {.name = name, .user = &x};
    return finish(&c, ycfg_parse(&c, buf, len, admission_root, NULL), out, err);
}

int psa_file_load(const char *path, struct psa_file *out, char **err)
{
    file_init(out);
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("."), *buf;
    size_t len;
    struct yctx x = {.dir = dir, .out = out};
    struct ycfg c = {.name = path, .user = &x};
    int rc = ycfg_read(path, &buf, &len, &c.err);
    if (!rc) {
        rc = ycfg_parse(&c, buf, len, admission_root, NULL);
        free(buf);
    }
    free(dir);
    return finish(&c, rc, out, err);
}

void psa_file_free(struct psa_file *f)
{
    free_list(f->exempt_users);
    free_list(f->exempt_namespaces);
    free_list(f->exempt_runtime_classes);
    f->exempt_users = f->exempt_namespaces = f->exempt_runtime_classes = NULL;
}
