/*
 * podfield: the values an env var's valueFrom reads out of a pod, as
 * Kubernetes computes them: fieldRef paths (the kubelet's
 * podFieldSelectorRuntimeValue and fieldpath.ExtractFieldPathAsString)
 * and resourceFieldRef (ExtractContainerResourceValue: the quantity over
 * the divisor, rounded up). The kubelet sets env from them; coraclectl
 * describe shows them as kubectl does.
 */
#include "config.h"
#include "podfield.h"
#include "buf.h"
#include "qty.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int podfield_get(const Coracle__V1__Pod *pod, const char *path, const char *pod_ip,
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

int podfield_resource(const Coracle__V1__Container *c, const char *resource, const char *divisor,
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
