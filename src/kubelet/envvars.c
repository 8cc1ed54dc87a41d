/*
 * envvars: a container's own environment as Kubernetes' kubelet makes it
 * (makeEnvironmentVariables): envFrom's ConfigMaps and Secrets first (with
 * their prefix; keys that are not valid variable names skipped, with an
 * InvalidEnvironmentVariableNames event), then env in order, each value
 * with its $(VAR) references expanded against the variables defined so
 * far, or taken from valueFrom: a field of the pod (fieldRef), a resource
 * of a container (resourceFieldRef, rounded up to the divisor, limits
 * defaulting to the node's allocatable), a key of a ConfigMap or Secret.
 * The objects come from refs.c, fields and resources from podfield.c; a
 * missing object that is not optional fails the container with
 * Kubernetes' message (CreateContainerConfigError). The pure parts are
 * exported for the unit tests.
 */
#include "config.h"
#include "klet.h"
#include "proxy.h"
#include "podfield.h"
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

#define S(x) ((x) ? (x) : "")

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
        return podfield_get(p->pod, S(vf->fieldref->fieldpath), ip, k->host_ip, out, err);
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
        return podfield_resource(t, S(rf->resource), rf->divisor ? rf->divisor->string : NULL,
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

/* host and port of the first apiserver in server ("https://h:p,h2:p"); false for unix:. */
static bool api_host_port(const char *server, char *host, size_t hl, char *port, size_t pl)
{
    const char *s = server;
    if (!strncmp(s, "https://", 8))
        s += 8;
    else if (!strncmp(s, "http://", 7))
        s += 7;
    size_t len = strcspn(s, ",/");
    if (!strncmp(s, "unix:", 5) || !len)
        return false;
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':')
            colon = s + i;
    if (!colon || (s[0] == '[' && colon < (const char *)memchr(s, ']', len)))
        return false;
    size_t h = (size_t)(colon - s);
    if (s[0] == '[' && h >= 2 && s[h - 1] == ']') /* [v6]:port: the address alone */
        snprintf(host, hl, "%.*s", (int)(h - 2), s + 1);
    else
        snprintf(host, hl, "%.*s", (int)h, s);
    snprintf(port, pl, "%.*s", (int)(len - h - 1), colon + 1);
    return *host && *port;
}

void klet_service_env(const struct klet *k, const Coracle__V1__PodSpec *spec, char ***v, size_t *n)
{
    char host[256], port[16];
    int svc_port;
    /* the kubernetes Service in default (its port is named https), reached through the proxy;
     * without it, the apiserver this kubelet uses */
    if (klet_proxy_kubernetes(k, host, sizeof(host), &svc_port))
        snprintf(port, sizeof(port), "%d", svc_port);
    else if (!k->cfg.server ||
             !api_host_port(k->cfg.server, host, sizeof(host), port, sizeof(port)))
        return;
    klet_env_set(v, n, "KUBERNETES_SERVICE_HOST", host);
    klet_env_set(v, n, "KUBERNETES_SERVICE_PORT", port);
    klet_env_set(v, n, "KUBERNETES_SERVICE_PORT_HTTPS", port);
    if (spec && spec->has_enableservicelinks && !spec->enableservicelinks)
        return;
    bool v6 = strchr(host, ':') != NULL;
    char *url = xasprintf("tcp://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);
    char *pfx = xasprintf("KUBERNETES_PORT_%s_TCP", port);
    char *name;
    klet_env_set(v, n, "KUBERNETES_PORT", url);
    klet_env_set(v, n, pfx, url);
    klet_env_set(v, n, name = xconcat(pfx, "_PROTO", NULL), "tcp");
    free(name);
    klet_env_set(v, n, name = xconcat(pfx, "_PORT", NULL), port);
    free(name);
    klet_env_set(v, n, name = xconcat(pfx, "_ADDR", NULL), host);
    free(name);
    free(pfx);
    free(url);
}
