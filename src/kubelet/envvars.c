/*
 * envvars: a container's own environment as Kubernetes' kubelet makes it
 * (makeEnvironmentVariables): envFrom's ConfigMaps and Secrets first (with
 * their prefix; keys that are not valid variable names skipped, with an
 * InvalidEnvironmentVariableNames event), then env in order, each value
 * with its $(VAR) references expanded against the variables defined so
 * far, or taken from valueFrom: a field of the pod (fieldRef), a resource
 * of a container (resourceFieldRef, rounded up to the divisor, limits
 * defaulting to the node's allocatable), a key of a ConfigMap or Secret.
 * The objects come from refs.c; a missing one that is not optional fails
 * the container with Kubernetes' message (CreateContainerConfigError).
 * The pure parts (expansion, fieldRef, resourceFieldRef) are exported for
 * the unit tests.
 */
#include "config.h"
#include "klet.h"
#include "buf.h"
#include "qty.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ $(VAR) expansion */

/* The value of name in env ("NAME=value" strings), or NULL. */
static const char *env_lookup(char *const *env, size_t n, const char *name, size_t nl)
{
    for (size_t i = 0; i < n; i++)
        if (!strncmp(env[i], name, nl) && env[i][nl] == '=')
            return env[i] + nl + 1;
    return NULL;
}

/*
 * Kubernetes' expansion (third_party/forked/golang/expansion): $(VAR) is
 * replaced by VAR's value, or kept as written when VAR is undefined; $$ is
 * a $; a $ not starting a reference stays, and so does an unterminated $(.
 */
char *klet_env_expand(const char *in, char *const *env, size_t n)
{
    struct buf b = {0};
    for (const char *p = in; *p; p++) {
        if (*p != '$' || !p[1]) {
            buf_add(&b, p, 1);
            continue;
        }
        if (p[1] == '$') {
            buf_add(&b, "$", 1);
            p++;
        } else if (p[1] == '(' && strchr(p + 2, ')')) {
            const char *name = p + 2, *end = strchr(name, ')');
            const char *v = env_lookup(env, n, name, (size_t)(end - name));
            if (v)
                buf_add(&b, v, strlen(v));
            else
                buf_add(&b, p, (size_t)(end + 1 - p));
            p = end;
        } else {
            buf_add(&b, p, 2);
            p++;
        }
    }
    return buf_take(&b);
}

/* ------------------------------------------------------------ fieldRef */

/* Go's %q of s, as Kubernetes' FormatMap writes annotation and label values. */
static void go_quote(struct buf *b, const char *s)
{
    buf_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\')
            snprintf(esc, sizeof esc, "\\%c", *p);
        else if (*p == '\n')
            snprintf(esc, sizeof esc, "\\n");
        else if (*p == '\t')
            snprintf(esc, sizeof esc, "\\t");
        else if (*p == '\r')
            snprintf(esc, sizeof esc, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            snprintf(esc, sizeof esc, "\\x%02x", *p);
        else
            snprintf(esc, sizeof esc, "%c", *p);
        buf_add(b, esc, strlen(esc));
    }
    buf_add(b, "\"", 1);
}

static int cmp_entry_keys(const void *a, const void *b)
{
    const Coracle__V1__ObjectMeta__LabelsEntry *const *x = a, *const *y = b;
    return strcmp((*x)->key ? (*x)->key : "", (*y)->key ? (*y)->key : "");
}

/* Kubernetes' FormatMap: key="value" lines in key order. Labels and annotations share the
 * entry layout (key, value). */
static char *format_map(Coracle__V1__ObjectMeta__LabelsEntry *const *m, size_t n)
{
    Coracle__V1__ObjectMeta__LabelsEntry **s = xcalloc(n + 1, sizeof *s);
    memcpy(s, m, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_entry_keys);
    struct buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_add(&b, "\n", 1);
        const char *key = s[i]->key ? s[i]->key : "";
        buf_add(&b, key, strlen(key));
        buf_add(&b, "=", 1);
        go_quote(&b, s[i]->value ? s[i]->value : "");
    }
    free(s);
    return buf_take(&b);
}

static const char *map_get(Coracle__V1__ObjectMeta__LabelsEntry *const *m, size_t n,
                           const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (m[i]->key && !strcmp(m[i]->key, key))
            return m[i]->value ? m[i]->value : "";
    return "";
}

#define S(x) ((x) ? (x) : "")

int klet_env_field(const Coracle__V1__Pod *pod, const char *path, const char *pod_ip,
                   const char *host_ip, char **out, char **err)
{
    const Coracle__V1__ObjectMeta *m = pod->metadata;
    const Coracle__V1__PodSpec *sp = pod->spec;
    /* annotations share the labels' entry layout */
    Coracle__V1__ObjectMeta__LabelsEntry *const *labels = m ? m->labels : NULL;
    Coracle__V1__ObjectMeta__LabelsEntry *const *annots =
        m ? (Coracle__V1__ObjectMeta__LabelsEntry *const *)m->annotations : NULL;
    size_t nl = m ? m->n_labels : 0, na = m ? m->n_annotations : 0;
    size_t len = strlen(path);
    const char *sub = strstr(path, "['");
    if (len > 2 && !strcmp(path + len - 2, "']") && sub && sub != path) {
        /* metadata.labels['k'], metadata.annotations['k'] */
        char *key = xstrndup(sub + 2, (size_t)(path + len - 2 - (sub + 2)));
        size_t pl = (size_t)(sub - path);
        if (pl == 15 && !strncmp(path, "metadata.labels", pl))
            *out = xstrdup(map_get(labels, nl, key));
        else if (pl == 20 && !strncmp(path, "metadata.annotations", pl))
            *out = xstrdup(map_get(annots, na, key));
        else
            *err = xasprintf("fieldPath \"%s\" does not support subscript", path);
        free(key);
        return *err ? -1 : 0;
    }
    if (!strcmp(path, "metadata.name"))
        *out = xstrdup(m ? S(m->name) : "");
    else if (!strcmp(path, "metadata.namespace"))
        *out = xstrdup(m ? S(m->namespace_) : "");
    else if (!strcmp(path, "metadata.uid"))
        *out = xstrdup(m ? S(m->uid) : "");
    else if (!strcmp(path, "metadata.labels"))
        *out = format_map(labels, nl);
    else if (!strcmp(path, "metadata.annotations"))
        *out = format_map(annots, na);
    else if (!strcmp(path, "spec.nodeName"))
        *out = xstrdup(sp ? S(sp->nodename) : "");
    else if (!strcmp(path, "spec.serviceAccountName"))
        *out = xstrdup(sp ? S(sp->serviceaccountname) : "");
    else if (!strcmp(path, "status.hostIP"))
        *out = xstrdup(S(host_ip));
    else if (!strcmp(path, "status.podIP") || !strcmp(path, "status.podIPs"))
        *out = xstrdup(S(pod_ip));
    else if (!strcmp(path, "status.hostIPs"))
        *out = xstrdup(S(host_ip));
    else
        *err = xasprintf("unsupported fieldPath: %s", path);
    return *err ? -1 : 0;
}

/* ------------------------------------------------------------ resourceFieldRef */

/* The quantity of resource ("cpu", "memory") in the container's limits (or requests), NULL. */
static const char *res_of(const Coracle__V1__Container *c, bool limits, const char *res)
{
    const Coracle__V1__ResourceRequirements *r = c->resources;
    if (!r)
        return NULL;
    size_t n = limits ? r->n_limits : r->n_requests;
    for (size_t i = 0; i < n; i++) {
        const char *key = limits ? r->limits[i]->key : r->requests[i]->key;
        const Coracle__V1__Quantity *q = limits ? r->limits[i]->value : r->requests[i]->value;
        if (key && !strcmp(key, res) && q && q->string)
            return q->string;
    }
    return NULL;
}

/* ceil(a / b) for a >= 0, b > 0 */
static int64_t div_up(int64_t a, int64_t b)
{
    return a / b + (a % b != 0);
}

int klet_env_resource(const Coracle__V1__Container *c, const char *resource, const char *divisor,
                      int64_t node_cpu_milli, int64_t node_mem, char **out, char **err)
{
    bool limits = !strncmp(resource, "limits.", 7);
    bool requests = !strncmp(resource, "requests.", 9);
    const char *res = limits ? resource + 7 : requests ? resource + 9 : "";
    bool cpu = !strcmp(res, "cpu"), mem = !strcmp(res, "memory");
    if (!cpu && !mem) {
        *err = xasprintf("unsupported container resource : %s", resource);
        return -1;
    }
    /* Kubernetes' defaulting: requests are the limits when only those are set; limits left
     * out are the node's allocatable */
    const char *q = res_of(c, limits, res);
    if (!q && requests)
        q = res_of(c, true, res);
    int64_t v = 0, d = 1000;
    if (q && qty_parse(q, &v, NULL) < 0)
        v = 0;
    if (!q && limits)
        v = cpu ? node_cpu_milli : node_mem * 1000;
    if (divisor && *divisor && (qty_parse(divisor, &d, NULL) < 0 || d == 0)) {
        *err = xasprintf("invalid divisor \"%s\" for %s", divisor, resource);
        return -1;
    }
    /* cpu: milli-units over the divisor's; memory: whole units (Value() rounds up) */
    *out = cpu ? xasprintf("%lld", (long long)div_up(v, d))
               : xasprintf("%lld", (long long)div_up(qty_value(v), qty_value(d)));
    return 0;
}

/* ------------------------------------------------------------ names */

bool klet_env_name_ok(const char *s)
{
    /* IsEnvVarName: [-._a-zA-Z][-._a-zA-Z0-9]*, and not ".", "..", nor "..*" */
    if (!*s || (*s >= '0' && *s <= '9') || !strcmp(s, ".") || !strncmp(s, "..", 2))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            return false;
    return true;
}

/* ------------------------------------------------------------ the container's env */

/* Sets name=value in the list (*v, *n), replacing an earlier value in place. */
static void env_put(char ***v, size_t *n, const char *name, const char *val, size_t len)
{
    char *value = xstrndup(val ? val : "", val ? len : 0);
    klet_env_set(v, n, name, value);
    free(value);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* envFrom[i]: the object's keys (with the prefix); invalid names skipped, said in *warn (one
 * event's message a line). 1: wait for the object, -1 with *err, 0. */
static int env_from(struct klet_ctr *c, const Coracle__V1__EnvFromSource *ef, char ***v, size_t *n,
                    struct buf *warn, char **err)
{
    struct klet_pod *p = c->pod;
    enum podref_kind kind = ef->configmapref ? PODREF_CONFIGMAP : PODREF_SECRET;
    const Coracle__V1__LocalObjectReference *ref =
        ef->configmapref ? ef->configmapref->localobjectreference
        : ef->secretref  ? ef->secretref->localobjectreference
                         : NULL;
    bool optional = ef->configmapref ? ef->configmapref->optional
                    : ef->secretref  ? ef->secretref->optional
                                     : false;
    if (!ref || !ref->name || !*ref->name)
        return 0;
    const ProtobufCMessage *obj;
    enum klet_ref_state st = klet_ref_get(p, kind, ref->name, &obj);
    if (st == KREF_PENDING)
        return 1;
    if (st == KREF_MISSING) {
        if (optional)
            return 0;
        *err = klet_ref_missing(kind, ref->name);
        return -1;
    }
    struct klet_kv *kv;
    size_t nkv = klet_ref_data(obj, kind, false, &kv);
    char **bad = xcalloc(nkv + 1, sizeof *bad);
    size_t nbad = 0;
    for (size_t i = 0; i < nkv; i++) {
        char *name = xasprintf("%s%s", ef->prefix ? ef->prefix : "", kv[i].key);
        if (klet_env_name_ok(name)) {
            env_put(v, n, name, (const char *)kv[i].data, kv[i].len);
            free(name);
        } else {
            bad[nbad++] = name;
        }
    }
    if (nbad) {
        qsort(bad, nbad, sizeof *bad, cmp_str);
        buf_puts(warn, "Keys [");
        for (size_t i = 0; i < nbad; i++) {
            buf_printf(warn, "%s%s", i ? ", " : "", bad[i]);
            free(bad[i]);
        }
        buf_printf(warn,
                   "] from the EnvFrom %s %s/%s were skipped since they are considered invalid "
                   "environment variable names.\n",
                   kind == PODREF_SECRET ? "secret" : "configMap", p->ns, ref->name);
    }
    free(bad);
    free(kv);
    return 0;
}

/* A key of a ConfigMap or Secret (configMapKeyRef, secretKeyRef) into *out; *out NULL when
 * optional and missing. 1: wait for the object, -1 with *err, 0. */
static int env_key(struct klet_pod *p, enum podref_kind kind,
                   const Coracle__V1__LocalObjectReference *ref, const char *key, bool optional,
                   char **out, char **err)
{
    const char *name = ref && ref->name ? ref->name : "";
    const ProtobufCMessage *obj;
    enum klet_ref_state st = klet_ref_get(p, kind, name, &obj);
    if (st == KREF_PENDING)
        return 1;
    if (st == KREF_MISSING) {
        if (!optional)
            *err = klet_ref_missing(kind, name);
        return optional ? 0 : -1;
    }
    struct klet_kv *kv;
    size_t nkv = klet_ref_data(obj, kind, false, &kv);
    const struct klet_kv *e = klet_kv_find(kv, nkv, key ? key : "");
    if (e)
        *out = xstrndup((const char *)e->data, e->len);
    else if (!optional)
        *err = xasprintf("couldn't find key %s in %s %s/%s", key ? key : "",
                         kind == PODREF_SECRET ? "Secret" : "ConfigMap", p->ns, name);
    free(kv);
    return *err ? -1 : 0;
}

/* The spec of the pod's container (or init container) named name, or NULL. */
static const Coracle__V1__Container *ctr_named(const Coracle__V1__PodSpec *sp, const char *name)
{
    for (size_t i = 0; i < sp->n_containers; i++)
        if (sp->containers[i]->name && !strcmp(sp->containers[i]->name, name))
            return sp->containers[i];
    for (size_t i = 0; i < sp->n_initcontainers; i++)
        if (sp->initcontainers[i]->name && !strcmp(sp->initcontainers[i]->name, name))
            return sp->initcontainers[i];
    return NULL;
}

/* One env entry's value from valueFrom into *out (NULL: optional and missing, left out). */
static int value_from(struct klet_ctr *c, const Coracle__V1__Container *s,
                      const Coracle__V1__EnvVarSource *vf, char **out, char **err)
{
    struct klet_pod *p = c->pod;
    struct klet *k = p->k;
    if (vf->fieldref) {
        const char *ip = p->pod->spec->hostnetwork ? k->host_ip : p->pod_ip;
        return klet_env_field(p->pod, S(vf->fieldref->fieldpath), ip, k->host_ip, out, err);
    }
    if (vf->resourcefieldref) {
        const Coracle__V1__ResourceFieldSelector *rf = vf->resourcefieldref;
        const Coracle__V1__Container *t = rf->containername && *rf->containername
                                              ? ctr_named(p->pod->spec, rf->containername)
                                              : s;
        if (!t) {
            *err = xasprintf("container %s not found", rf->containername);
            return -1;
        }
        return klet_env_resource(t, S(rf->resource), rf->divisor ? rf->divisor->string : NULL,
                                 (int64_t)klet_node_cpus() * 1000,
                                 klet_node_mem_bytes() / 1024 * 1024, out, err);
    }
    if (vf->configmapkeyref)
        return env_key(p, PODREF_CONFIGMAP, vf->configmapkeyref->localobjectreference,
                       vf->configmapkeyref->key, vf->configmapkeyref->optional, out, err);
    if (vf->secretkeyref)
        return env_key(p, PODREF_SECRET, vf->secretkeyref->localobjectreference,
                       vf->secretkeyref->key, vf->secretkeyref->optional, out, err);
    return 0;
}

int klet_env_build(struct klet_ctr *c, const Coracle__V1__Container *s, char ***out, size_t *n,
                   char **err)
{
    char **v = xcalloc(1, sizeof *v);
    size_t nv = 0;
    int rc = 0;
    struct buf warn = {0};
    *err = NULL;
    for (size_t i = 0; i < s->n_envfrom && rc == 0; i++)
        rc = env_from(c, s->envfrom[i], &v, &nv, &warn, err);
    for (size_t i = 0; i < s->n_env && rc == 0; i++) {
        const Coracle__V1__EnvVar *e = s->env[i];
        if (!e->name)
            continue;
        char *val = NULL;
        if (e->value && *e->value)
            val = klet_env_expand(e->value, v, nv);
        else if (e->valuefrom)
            rc = value_from(c, s, e->valuefrom, &val, err);
        else
            val = xstrdup("");
        if (rc == 0 && val)
            klet_env_set(&v, &nv, e->name, val);
        free(val);
    }
    /* the skipped names are said once the env is made (not at each wait for an object) */
    for (char *l = warn.p, *e; rc == 0 && l && (e = strchr(l, '\n')); l = e + 1) {
        *e = 0;
        klet_event(c->pod->k, c->pod, NULL, "Warning", "InvalidEnvironmentVariableNames", "%s", l);
    }
    buf_free(&warn);
    if (rc != 0) {
        klet_strv_free(v);
        return rc;
    }
    *out = v;
    *n = nv;
    return 0;
}
