/*
 * admit: defaults and validation for each kind, with Kubernetes' texts.
 * See admit.h. Field errors are collected in a list (struct errs) in the
 * order Kubernetes reports them and formatted once at the end.
 */
#include "config.h"
#include "admit.h"
#include "admit_int.h"
#include "cidr.h"
#include "buf.h"
#include "json.h"
#include "kobj.h"
#include "obj.h"
#include "qty.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int admit_errs_finish(struct errs *e, const struct kind *k, const char *name, char **msg)
{
    if (!e->n)
        return 0;
    size_t len = 0;
    for (size_t i = 0; i < e->n; i++)
        len += strlen(e->v[i]) + 2;
    char *all = xmalloc(len + 3), *p = all;
    if (e->n > 1)
        *p++ = '[';
    for (size_t i = 0; i < e->n; i++) {
        p += sprintf(p, "%s%s", i ? ", " : "", e->v[i]);
        free(e->v[i]);
    }
    if (e->n > 1)
        *p++ = ']';
    *p = 0;
    free(e->v);
    char qk[128];
    *msg = xasprintf("%s \"%s\" is invalid: %s", kind_qualified(k, qk, sizeof(qk)),
                     name ? name : "", all);
    free(all);
    return -1;
}

static int efinish(struct errs *e, const struct kind *k, const char *name, char **msg)
{
    return admit_errs_finish(e, k, name, msg);
}

/* ---- name syntax ---- */

#define SUBDOMAIN_MSG                                                                              \
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "   \
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "  \
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define LABEL_MSG                                                                                  \
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "   \
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "     \
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
#define QNAME_MSG                                                                                  \
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "  \
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for " \
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
#define LVALUE_MSG                                                                                 \
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "    \
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "             \
    "'my_value',  or '12345', regex used for validation is "                                       \
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"

static int lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int label_ok(const char *s, size_t n)
{
    if (n == 0 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!lower_alnum(s[i]) && s[i] != '-')
            return 0;
    return 1;
}

const char *admit_dns1123_label(const char *s)
{
    size_t n = strlen(s);
    if (n > 63)
        return "must be no more than 63 characters";
    return label_ok(s, n) ? NULL : LABEL_MSG;
}

const char *admit_dns1123_subdomain(const char *s)
{
    size_t n = strlen(s);
    if (n > 253)
        return "must be no more than 253 characters";
    const char *p = s;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_ok(p, l))
            return SUBDOMAIN_MSG;
        if (!dot)
            return NULL;
        p = dot + 1;
    }
}

static int qname_part_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

/* Label/annotation key: [prefix/]name. Returns NULL or the reason. */
static const char *qualified_name_err(const char *s)
{
    const char *slash = strchr(s, '/');
    const char *name = s;
    if (slash) {
        char *prefix = xstrndup(s, (size_t)(slash - s));
        const char *pe = *prefix ? admit_dns1123_subdomain(prefix)
                                 : "prefix part must be "
                                   "non-empty";
        int bad_syntax = *prefix && pe && strlen(prefix) <= 253;
        free(prefix);
        if (bad_syntax)
            return "prefix part " SUBDOMAIN_MSG;
        if (pe)
            return pe;
        name = slash + 1;
    }
    size_t n = strlen(name);
    if (n == 0)
        return "name part must be non-empty";
    if (n > 63)
        return "name part must be no more than 63 characters";
    return qname_part_ok(name, n) ? NULL : QNAME_MSG;
}

static const char *label_value_err(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return NULL;
    if (n > 63)
        return "must be no more than 63 characters";
    return qname_part_ok(s, n) ? NULL : LVALUE_MSG;
}

/* ---- metadata ---- */

#define SUBRESOURCE_MAX 256

char *admit_field_manager(const char *s)
{
    size_t n = strlen(s);
    if (n > FIELD_MANAGER_MAX)
        return xasprintf("Too long: may not be more than %d bytes", FIELD_MANAGER_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned cp = c;
        if (c == 0xc2 && i + 1 < n)
            cp = (unsigned char)s[i + 1]; /* U+0080..U+00BF */
        /* unicode.IsPrint: no control characters, no space but ' ' */
        if (c < 0x20 || c == 0x7f || (c == 0xc2 && cp >= 0x80 && cp <= 0xa0))
            return xasprintf("Invalid value: \"%s\": invalid character U+%04X (at position %zu)", s,
                             c == 0xc2 ? cp : c, i);
    }
    return NULL;
}

/* ValidateManagedFields: entries a client may send are well-formed (kssa keeps them). */
static void check_managed_fields(struct errs *e, const Coracle__V1__ObjectMeta *m)
{
    for (size_t i = 0; i < m->n_managedfields; i++) {
        const Coracle__V1__ManagedFieldsEntry *f = m->managedfields[i];
        const char *op = f->operation ? f->operation : "";
        if (strcmp(op, "Apply") && strcmp(op, "Update"))
            admit_err(
                e,
                "metadata.managedFields[%zu].operation: Invalid value: \"%s\": must be `Apply` "
                "or `Update`",
                i, op);
        if (f->fieldstype && *f->fieldstype && strcmp(f->fieldstype, "FieldsV1"))
            admit_err(e,
                      "metadata.managedFields[%zu].fieldsType: Invalid value: \"%s\": must be "
                      "`FieldsV1`",
                      i, f->fieldstype);
        /* stored as sent and written out verbatim in JSON (kobj_emit): must be a JSON object */
        if (f->fieldsv1 && f->fieldsv1->has_raw) {
            json_t *v = NULL;
            struct json_limits lim = {0, KOBJ_MAX_DEPTH, 0};
            if (json_parse((const char *)f->fieldsv1->raw.data, f->fieldsv1->raw.len, &lim, &v,
                           NULL) < 0 ||
                !json_is(v, JSON_OBJECT))
                admit_err(
                    e, "metadata.managedFields[%zu].fieldsV1: Invalid value: must be a JSON object",
                    i);
            json_free(v);
        }
        char *r = admit_field_manager(f->manager ? f->manager : "");
        if (r)
            admit_err(e, "metadata.managedFields[%zu].manager: %s", i, r);
        free(r);
        if (f->subresource && strlen(f->subresource) > SUBRESOURCE_MAX)
            admit_err(e,
                      "metadata.managedFields[%zu].subresource: Too long: may not be more than %d "
                      "bytes",
                      i, SUBRESOURCE_MAX);
    }
}

static void check_labels(struct errs *e, const char *path,
                         Coracle__V1__ObjectMeta__LabelsEntry *const *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = l[i]->key ? l[i]->key : "", *v = l[i]->value ? l[i]->value : "";
        const char *r = qualified_name_err(k);
        if (r)
            admit_err(e, "%s: Invalid value: \"%s\": %s", path, k, r);
        if ((r = label_value_err(v)))
            admit_err(e, "%s: Invalid value: \"%s\": %s", path, v, r);
    }
}

/* An owner reference as Kubernetes prints a bad one (json.Marshal of metav1.OwnerReference). */
static void owner_json(struct buf *b, const Coracle__V1__OwnerReference *r)
{
    const char *const vals[] = {r->apiversion, r->kind, r->name, r->uid};
    const char *const keys[] = {"apiVersion", "kind", "name", "uid"};
    for (size_t i = 0; i < 4; i++) {
        char *q = json_quote(vals[i] ? vals[i] : "");
        buf_printf(b, "%s\"%s\":%s", i ? "," : "{", keys[i], q);
        free(q);
    }
    if (r->has_controller)
        buf_printf(b, ",\"controller\":%s", r->controller ? "true" : "false");
    if (r->has_blockownerdeletion)
        buf_printf(b, ",\"blockOwnerDeletion\":%s", r->blockownerdeletion ? "true" : "false");
    buf_puts(b, "}");
}

/* apiVersion is <group>/<version> or <version> (schema.ParseGroupVersion, version non-empty). */
static bool group_version_ok(const char *gv)
{
    const char *slash = strchr(gv, '/');
    if (!slash)
        return true;
    return !strchr(slash + 1, '/') && slash[1];
}

/* ValidateOwnerReferences, with Kubernetes' texts. */
static void check_owners(struct errs *e, Coracle__V1__OwnerReference *const *refs, size_t n)
{
    const char *first = NULL, *first_name = NULL;
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__OwnerReference *r = refs[i];
        const char *av = r->apiversion ? r->apiversion : "", *kind = r->kind ? r->kind : "";
        if (!*av)
            admit_err(e,
                      "metadata.ownerReferences[%zu].apiVersion: Required value: must not be empty",
                      i);
        else if (!group_version_ok(av))
            admit_err(e,
                      "metadata.ownerReferences[%zu].apiVersion: Invalid value: \"%s\": must be "
                      "<group>/<version> or <version>",
                      i, av);
        if (!*kind)
            admit_err(e, "metadata.ownerReferences[%zu].kind: Required value: must not be empty",
                      i);
        if (!r->name || !*r->name)
            admit_err(e, "metadata.ownerReferences[%zu].name: Required value: must not be empty",
                      i);
        if (!r->uid || !*r->uid)
            admit_err(e, "metadata.ownerReferences[%zu].uid: Required value: must not be empty", i);
        if (!strcmp(av, "v1") && !strcmp(kind, "Event")) {
            struct buf b = {0};
            owner_json(&b, r);
            admit_err(e,
                      "metadata.ownerReferences[%zu]: Invalid value: %s: /v1, Kind=Event is "
                      "disallowed from being an owner",
                      i, b.p);
            buf_free(&b);
        }
        if (!r->has_controller || !r->controller)
            continue;
        if (!first) {
            first = kind;
            first_name = r->name ? r->name : "";
            continue;
        }
        struct buf b = {0};
        buf_puts(&b, "[");
        for (size_t j = 0; j < n; j++) {
            if (j)
                buf_puts(&b, ",");
            owner_json(&b, refs[j]);
        }
        buf_puts(&b, "]");
        admit_err(e,
                  "metadata.ownerReferences: Invalid value: %s: Only one reference can have "
                  "Controller set to true. Found \"true\" in references for %s/%s and %s/%s",
                  b.p, first, first_name, kind, r->name ? r->name : "");
        buf_free(&b);
    }
}

/* The finalizers as Kubernetes prints a bad list (json.Marshal of []string). */
static char *finalizers_json(char *const *f, size_t n)
{
    struct buf b = {0};
    buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        char *q = json_quote(f[i] ? f[i] : "");
        buf_printf(&b, "%s%s", i ? "," : "", q);
        free(q);
    }
    buf_puts(&b, "]");
    return buf_take(&b);
}

/* ValidateFinalizers: qualified names, and not both of the garbage collector's. */
static void check_finalizers(struct errs *e, char *const *f, size_t n)
{
    bool orphan = false, fg = false;
    for (size_t i = 0; i < n; i++) {
        const char *s = f[i] ? f[i] : "";
        const char *r = qualified_name_err(s);
        if (r)
            admit_err(e, "metadata.finalizers: Invalid value: \"%s\": %s", s, r);
        orphan |= !strcmp(s, "orphan");
        fg |= !strcmp(s, "foregroundDeletion");
    }
    if (orphan && fg) {
        char *j = finalizers_json(f, n);
        admit_err(e,
                  "metadata.finalizers: Invalid value: %s: finalizer orphan and foregroundDeletion "
                  "cannot be both set",
                  j);
        free(j);
    }
}

/* strcmp for qsort over strings */
static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * ValidateNoNewFinalizers: once an object is being deleted its finalizers
 * may only go. The new ones named sorted and once, as Kubernetes' set does.
 */
static void check_no_new_finalizers(struct errs *e, const Coracle__V1__ObjectMeta *old,
                                    const Coracle__V1__ObjectMeta *upd)
{
    if (!old || !old->deletiontimestamp || !upd)
        return;
    char **extra = xcalloc(upd->n_finalizers + 1, sizeof(*extra));
    size_t n = 0;
    for (size_t i = 0; i < upd->n_finalizers; i++) {
        const char *f = upd->finalizers[i] ? upd->finalizers[i] : "";
        bool known = false;
        for (size_t j = 0; j < old->n_finalizers && !known; j++)
            known = old->finalizers[j] && !strcmp(old->finalizers[j], f);
        for (size_t j = 0; j < n && !known; j++)
            known = !strcmp(extra[j], f);
        if (!known)
            extra[n++] = (char *)f;
    }
    if (n) {
        qsort(extra, n, sizeof(*extra), str_cmp);
        struct buf b = {0};
        buf_puts(&b, "[]string{");
        for (size_t i = 0; i < n; i++) {
            char *q = json_quote(extra[i]);
            buf_printf(&b, "%s%s", i ? ", " : "", q);
            free(q);
        }
        buf_puts(&b, "}");
        admit_err(e,
                  "metadata.finalizers: Forbidden: no new finalizers can be added if the object is "
                  "being deleted, found new finalizers %s",
                  b.p);
        buf_free(&b);
    }
    free(extra);
}

static void check_meta(struct errs *e, const struct kind *k, const Coracle__V1__ObjectMeta *m)
{
    if (!m || !m->name || !*m->name) {
        admit_err(e, "metadata.name: Required value: name or generateName is required");
    } else {
        /* a namespace's name is a label: it is a DNS name's part elsewhere; RBAC's names
         * are path segments ("system:node") */
        const char *r = k == &kind_namespace ? admit_dns1123_label(m->name)
                        : admit_rbac_kind(k) ? admit_path_segment_name(m->name)
                                             : admit_dns1123_subdomain(m->name);
        if (r)
            admit_err(e, "metadata.name: Invalid value: \"%s\": %s", m->name, r);
    }
    if (!m)
        return;
    if (k->namespaced) {
        if (!m->namespace_ || !*m->namespace_) {
            admit_err(e, "metadata.namespace: Required value");
        } else {
            const char *r = admit_dns1123_label(m->namespace_);
            if (r)
                admit_err(e, "metadata.namespace: Invalid value: \"%s\": %s", m->namespace_, r);
        }
    }
    check_labels(e, "metadata.labels", m->labels, m->n_labels);
    for (size_t i = 0; i < m->n_annotations; i++) {
        const char *key = m->annotations[i]->key ? m->annotations[i]->key : "";
        const char *r = qualified_name_err(key);
        if (r)
            admit_err(e, "metadata.annotations: Invalid value: \"%s\": %s", key, r);
    }
    check_owners(e, m->ownerreferences, m->n_ownerreferences);
    check_finalizers(e, m->finalizers, m->n_finalizers);
    if (m->has_deletiongraceperiodseconds && m->deletiongraceperiodseconds < 0)
        admit_err(e,
                  "metadata.deletionGracePeriodSeconds: Invalid value: %" PRId64
                  ": must be greater than or equal to 0",
                  m->deletiongraceperiodseconds);
    check_managed_fields(e, m);
}

/* ---- pods ---- */

static int str_in(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}

/* spec.dnsConfig as Kubernetes validates it (the resolver's limits: 3 nameservers, 32 search
 * domains of 2048 characters); dnsPolicy None needs it and a nameserver. */
static void check_dns_config(struct errs *e, const Coracle__V1__PodSpec *sp)
{
    const Coracle__V1__PodDNSConfig *c = sp->dnsconfig;
    bool none = sp->dnspolicy && !strcmp(sp->dnspolicy, "None");
    if (!c) {
        if (none)
            admit_err(e,
                      "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` "
                      "is None");
        return;
    }
    if (c->n_nameservers > 3)
        admit_err(e,
                  "spec.dnsConfig.nameservers: Invalid value: %zu: must not have more than 3 "
                  "nameservers",
                  c->n_nameservers);
    if (none && !c->n_nameservers)
        admit_err(e, "spec.dnsConfig.nameservers: Required value: must provide at least one DNS "
                     "nameserver when `dnsPolicy` is None");
    for (size_t i = 0; i < c->n_nameservers; i++) {
        struct in6_addr a;
        if (inet_pton(AF_INET, c->nameservers[i], &a) != 1 &&
            inet_pton(AF_INET6, c->nameservers[i], &a) != 1)
            admit_err(e,
                      "spec.dnsConfig.nameservers[%zu]: Invalid value: \"%s\": must be valid IP "
                      "address",
                      i, c->nameservers[i]);
    }
    size_t chars = 0;
    for (size_t i = 0; i < c->n_searches; i++) {
        chars += strlen(c->searches[i]) + (i ? 1 : 0);
        char *d = xstrdup(c->searches[i]);
        size_t len = strlen(d);
        if (len > 1 && d[len - 1] == '.')
            d[len - 1] = '\0'; /* a trailing dot is allowed */
        const char *r = admit_dns1123_subdomain(d);
        if (r)
            admit_err(e, "spec.dnsConfig.searches[%zu]: Invalid value: \"%s\": %s", i,
                      c->searches[i], r);
        free(d);
    }
    if (c->n_searches > 32)
        admit_err(e,
                  "spec.dnsConfig.searches: Invalid value: %zu: must not have more than 32 search "
                  "paths",
                  c->n_searches);
    if (chars > 2048)
        admit_err(e,
                  "spec.dnsConfig.searches: Invalid value: %zu: must not have more than 2048 "
                  "characters (including spaces) in the search list",
                  chars);
    for (size_t i = 0; i < c->n_options; i++)
        if (!c->options[i]->name || !*c->options[i]->name)
            admit_err(
                e, "spec.dnsConfig.options[%zu]: Required value: Option.Name must not be empty", i);
}

static void check_enum(struct errs *e, const char *path, const char *v, const char *const *set,
                       const char *supported)
{
    if (v && !str_in(v, set))
        admit_err(e, "%s: Unsupported value: \"%s\": supported values: %s", path, v, supported);
}

/* path is <p><sub> (built only for an error) */
static void check_quantity_map(struct errs *e, const char *p, const char *sub,
                               Coracle__V1__ResourceRequirements__LimitsEntry *const *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *key = m[i]->key ? m[i]->key : "";
        const char *v = m[i]->value && m[i]->value->string ? m[i]->value->string : "";
        int64_t milli;
        char *qe = NULL;
        if (qty_parse(v, &milli, &qe) < 0)
            admit_err(e, "%s%s[%s]: Invalid value: \"%s\": %s", p, sub, key, v,
                      qe ? qe : "must be a valid quantity");
        free(qe);
        const char *r = qualified_name_err(key);
        if (r)
            admit_err(e, "%s%s[%s]: Invalid value: \"%s\": %s", p, sub, key, key, r);
    }
}

static const char *qmap_get(Coracle__V1__ResourceRequirements__LimitsEntry *const *m, size_t n,
                            const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (m[i]->key && !strcmp(m[i]->key, key))
            return m[i]->value && m[i]->value->string ? m[i]->value->string : "";
    return NULL;
}

static void check_port(struct errs *e, const char *path, int has, int32_t v, int required)
{
    if (!has || v == 0) {
        if (required)
            admit_err(e, "%s: Required value", path);
        return;
    }
    if (v < 1 || v > 65535)
        admit_err(e, "%s: Invalid value: %d: must be between 1 and 65535, inclusive", path, v);
}

/*
 * Field paths are built only when a check fails (building them eagerly,
 * with a malloc and a printf each, cost a tenth of a Create): the checks
 * below test first, then name the path.
 */
#define FPATH_LEN 256

/* "<a><b>[<i>]<c>" into buf (truncated past FPATH_LEN, paths are short). */
static const char *path_idx(char *buf, const char *a, const char *b, size_t i, const char *c)
{
    char num[24], *q = num + sizeof(num);
    *--q = 0;
    do
        *--q = (char)('0' + i % 10);
    while ((i /= 10));
    const char *parts[] = {a, b, "[", q, "]", c};
    size_t n = 0;
    for (size_t k = 0; k < ARRAY_SIZE(parts); k++) {
        size_t l = strlen(parts[k]);
        if (l > FPATH_LEN - 1 - n)
            l = FPATH_LEN - 1 - n;
        memcpy(buf + n, parts[k], l);
        n += l;
    }
    buf[n] = 0;
    return buf;
}

static int port_bad(int has, int32_t v, int required)
{
    return (!has || v == 0) ? required : (v < 1 || v > 65535);
}

/* A mode of a configMap or secret volume: 0 to 0777, as Kubernetes validates it. */
static void check_mode(struct errs *e, size_t i, const char *what, const char *sub, int has,
                       int32_t mode)
{
    if (has && (mode < 0 || mode > 0777))
        admit_err(e,
                  "spec.volumes[%zu].%s%s: Invalid value: %d: must be a number between 0 and 0777 "
                  "(octal), both inclusive",
                  i, what, sub, (int)mode);
}

/* A projected volume's sources: one kind each; a token's path and lifetime
 * (ValidateProjectedVolumeSource). */
static void check_projected(struct errs *e, size_t i, const Coracle__V1__ProjectedVolumeSource *pv)
{
    for (size_t j = 0; j < pv->n_sources; j++) {
        const Coracle__V1__VolumeProjection *s = pv->sources[j];
        int n = !!s->secret + !!s->configmap + !!s->downwardapi + !!s->serviceaccounttoken;
        if (n != 1)
            admit_err(e,
                      "spec.volumes[%zu].projected.sources[%zu]: Forbidden: may not specify more "
                      "than 1 volume type per source",
                      i, j);
        const Coracle__V1__ServiceAccountTokenProjection *t = s->serviceaccounttoken;
        if (t && (!t->path || !*t->path))
            admit_err(e,
                      "spec.volumes[%zu].projected.sources[%zu].serviceAccountToken.path: Required "
                      "value",
                      i, j);
        if (t && t->has_expirationseconds && t->expirationseconds < 600)
            admit_err(
                e,
                "spec.volumes[%zu].projected.sources[%zu].serviceAccountToken.expirationSeconds: "
                "Invalid value: %lld: may not specify a duration less than 10 minutes",
                i, j, (long long)t->expirationseconds);
    }
}

/* configMap and secret volumes: the object's name, the items' key and path, the modes. */
static void check_projection(struct errs *e, size_t i, const Coracle__V1__VolumeSource *src)
{
    const char *what = src->configmap ? "configMap" : "secret";
    const char *name = src->configmap ? (src->configmap->localobjectreference
                                             ? src->configmap->localobjectreference->name
                                             : NULL)
                                      : src->secret->secretname;
    Coracle__V1__KeyToPath **items = src->configmap ? src->configmap->items : src->secret->items;
    size_t n = src->configmap ? src->configmap->n_items : src->secret->n_items;
    if (!name || !*name)
        admit_err(e, "spec.volumes[%zu].%s.%s: Required value", i, what,
                  src->configmap ? "name" : "secretName");
    if (src->configmap)
        check_mode(e, i, what, ".defaultMode", src->configmap->has_defaultmode,
                   src->configmap->defaultmode);
    else
        check_mode(e, i, what, ".defaultMode", src->secret->has_defaultmode,
                   src->secret->defaultmode);
    for (size_t j = 0; j < n; j++) {
        const Coracle__V1__KeyToPath *it = items[j];
        if (!it->key || !*it->key)
            admit_err(e, "spec.volumes[%zu].%s.items[%zu].key: Required value", i, what, j);
        if (!it->path || !*it->path)
            admit_err(e, "spec.volumes[%zu].%s.items[%zu].path: Required value", i, what, j);
        else if (it->path[0] == '/' || !strncmp(it->path, "..", 2) || strstr(it->path, "/../") ||
                 (strlen(it->path) > 2 && !strcmp(it->path + strlen(it->path) - 3, "/..")))
            admit_err(e,
                      "spec.volumes[%zu].%s.items[%zu].path: Invalid value: \"%s\": must be a "
                      "relative path without '..'",
                      i, what, j, it->path);
        char sub[48];
        snprintf(sub, sizeof sub, ".items[%zu].mode", j);
        check_mode(e, i, what, sub, it->has_mode, it->mode);
    }
}

/* env[j].valueFrom: alone (no value), exactly one source, the key selectors' name and key. */
static void check_value_from(struct errs *e, const char *p, size_t j, const Coracle__V1__EnvVar *ev)
{
    const Coracle__V1__EnvVarSource *vf = ev->valuefrom;
    if (!vf)
        return;
    int n = !!vf->fieldref + !!vf->resourcefieldref + !!vf->configmapkeyref + !!vf->secretkeyref;
    if (ev->value && *ev->value)
        admit_err(
            e,
            "%s.env[%zu].valueFrom: Invalid value: \"\": may not be specified when `value` is "
            "not empty",
            p, j);
    if (n == 0)
        admit_err(e,
                  "%s.env[%zu].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, "
                  "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                  p, j);
    else if (n > 1)
        admit_err(e,
                  "%s.env[%zu].valueFrom: Invalid value: \"\": may not have more than one field "
                  "specified at a time",
                  p, j);
    if (vf->fieldref && (!vf->fieldref->fieldpath || !*vf->fieldref->fieldpath))
        admit_err(e, "%s.env[%zu].valueFrom.fieldRef.fieldPath: Required value", p, j);
    if (vf->resourcefieldref &&
        (!vf->resourcefieldref->resource || !*vf->resourcefieldref->resource))
        admit_err(e, "%s.env[%zu].valueFrom.resourceFieldRef.resource: Required value", p, j);
    const char *sel = vf->configmapkeyref ? "configMapKeyRef" : "secretKeyRef";
    const Coracle__V1__LocalObjectReference *ref =
        vf->configmapkeyref ? vf->configmapkeyref->localobjectreference
        : vf->secretkeyref  ? vf->secretkeyref->localobjectreference
                            : NULL;
    const char *key = vf->configmapkeyref ? vf->configmapkeyref->key
                      : vf->secretkeyref  ? vf->secretkeyref->key
                                          : NULL;
    if (!vf->configmapkeyref && !vf->secretkeyref)
        return;
    if (!ref || !ref->name || !*ref->name)
        admit_err(e, "%s.env[%zu].valueFrom.%s.name: Required value", p, j, sel);
    if (!key || !*key)
        admit_err(e, "%s.env[%zu].valueFrom.%s.key: Required value", p, j, sel);
}

static void check_containers(struct errs *e, const char *base, Coracle__V1__Container *const *c,
                             size_t n, const Coracle__V1__PodSpec *sp, char ***names,
                             size_t *nnames)
{
    static const char *const pull[] = {"Always", "IfNotPresent", "Never", NULL};
    static const char *const proto[] = {"SCTP", "TCP", "UDP", NULL};
    static const char *const tmp[] = {"File", "FallbackToLogsOnError", NULL};
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__Container *ct = c[i];
        char p[FPATH_LEN], pp[FPATH_LEN];
        path_idx(p, base, "", i, "");
        if (!ct->name || !*ct->name) {
            admit_err(e, "%s.name: Required value", p);
        } else {
            const char *r = admit_dns1123_label(ct->name);
            if (r)
                admit_err(e, "%s.name: Invalid value: \"%s\": %s", p, ct->name, r);
            int dup = 0;
            for (size_t j = 0; j < *nnames && !dup; j++)
                dup = !strcmp((*names)[j], ct->name);
            if (dup)
                admit_err(e, "%s.name: Duplicate value: \"%s\"", p, ct->name);
            *names = xrealloc(*names, (*nnames + 1) * sizeof(**names));
            (*names)[(*nnames)++] = ct->name;
        }
        if (!ct->image || !*ct->image)
            admit_err(e, "%s.image: Required value", p);
        for (size_t j = 0; j < ct->n_ports; j++) {
            const Coracle__V1__ContainerPort *po = ct->ports[j];
            if (port_bad(po->has_containerport, po->containerport, 1))
                check_port(e, path_idx(pp, p, ".ports", j, ".containerPort"), po->has_containerport,
                           po->containerport, 1);
            if (port_bad(po->has_hostport, po->hostport, 0))
                check_port(e, path_idx(pp, p, ".ports", j, ".hostPort"), po->has_hostport,
                           po->hostport, 0);
            if (!po->protocol)
                admit_err(e, "%s.ports[%zu].protocol: Required value", p, j);
            else if (!str_in(po->protocol, proto))
                check_enum(e, path_idx(pp, p, ".ports", j, ".protocol"), po->protocol, proto,
                           "\"SCTP\", \"TCP\", \"UDP\"");
        }
        for (size_t j = 0; j < ct->n_env; j++) {
            if (!ct->env[j]->name || !*ct->env[j]->name)
                admit_err(e, "%s.env[%zu].name: Required value", p, j);
            check_value_from(e, p, j, ct->env[j]);
        }
        if (ct->resources) {
            const Coracle__V1__ResourceRequirements *r = ct->resources;
            check_quantity_map(e, p, ".resources.limits", r->limits, r->n_limits);
            check_quantity_map(e, p, ".resources.requests", (void *)r->requests, r->n_requests);
            for (size_t j = 0; j < r->n_requests; j++) {
                const char *key = r->requests[j]->key ? r->requests[j]->key : "";
                const char *rv = r->requests[j]->value && r->requests[j]->value->string
                                     ? r->requests[j]->value->string
                                     : "";
                const char *lv = qmap_get(r->limits, r->n_limits, key);
                int64_t rq, lq;
                if (lv && qty_parse(rv, &rq, NULL) == 0 && qty_parse(lv, &lq, NULL) == 0 && rq > lq)
                    admit_err(e,
                              "%s.resources.requests: Invalid value: \"%s\": must be less than or "
                              "equal to %s limit of %s",
                              p, rv, key, lv);
            }
        }
        for (size_t j = 0; j < ct->n_volumemounts; j++) {
            const Coracle__V1__VolumeMount *vm = ct->volumemounts[j];
            if (!vm->name || !*vm->name) {
                admit_err(e, "%s.volumeMounts[%zu].name: Required value", p, j);
            } else {
                int found = 0;
                for (size_t v = 0; v < sp->n_volumes && !found; v++)
                    found = sp->volumes[v]->name && !strcmp(sp->volumes[v]->name, vm->name);
                if (!found)
                    admit_err(e, "%s.volumeMounts[%zu].name: Not found: \"%s\"", p, j, vm->name);
            }
            if (!vm->mountpath || !*vm->mountpath) {
                admit_err(e, "%s.volumeMounts[%zu].mountPath: Required value", p, j);
            } else {
                for (size_t k = 0; k < j; k++)
                    if (ct->volumemounts[k]->mountpath &&
                        !strcmp(ct->volumemounts[k]->mountpath, vm->mountpath)) {
                        admit_err(e,
                                  "%s.volumeMounts[%zu].mountPath: Invalid value: \"%s\": must be "
                                  "unique",
                                  p, j, vm->mountpath);
                        break;
                    }
            }
        }
        if (ct->imagepullpolicy && !str_in(ct->imagepullpolicy, pull)) {
            path_idx(pp, base, "", i, ".imagePullPolicy");
            check_enum(e, pp, ct->imagepullpolicy, pull, "\"Always\", \"IfNotPresent\", \"Never\"");
        }
        if (ct->terminationmessagepolicy && !str_in(ct->terminationmessagepolicy, tmp)) {
            path_idx(pp, base, "", i, ".terminationMessagePolicy");
            check_enum(e, pp, ct->terminationmessagepolicy, tmp,
                       "\"File\", \"FallbackToLogsOnError\"");
        }
    }
}

static void check_pod_spec(struct errs *e, const Coracle__V1__PodSpec *sp)
{
    static const char *const restart[] = {"Always", "OnFailure", "Never", NULL};
    static const char *const dns[] = {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None",
                                      NULL};
    static const char *const tolop[] = {"Equal", "Exists", NULL};
    static const char *const effect[] = {"NoSchedule", "PreferNoSchedule", "NoExecute", NULL};
    Coracle__V1__PodSpec empty = CORACLE__V1__POD_SPEC__INIT;
    if (!sp)
        sp = &empty;
    /* volumes */
    for (size_t i = 0; i < sp->n_volumes; i++) {
        const Coracle__V1__Volume *v = sp->volumes[i];
        if (!v->name || !*v->name) {
            admit_err(e, "spec.volumes[%zu].name: Required value", i);
        } else {
            const char *r = admit_dns1123_label(v->name);
            if (r)
                admit_err(e, "spec.volumes[%zu].name: Invalid value: \"%s\": %s", i, v->name, r);
            for (size_t j = 0; j < i; j++)
                if (sp->volumes[j]->name && !strcmp(sp->volumes[j]->name, v->name)) {
                    admit_err(e, "spec.volumes[%zu].name: Duplicate value: \"%s\"", i, v->name);
                    break;
                }
        }
        const Coracle__V1__VolumeSource *src = v->volumesource;
        int types = src ? !!src->hostpath + !!src->emptydir + !!src->configmap + !!src->secret +
                              !!src->projected + !!src->downwardapi
                        : 0;
        if (types == 0)
            admit_err(e, "spec.volumes[%zu]: Required value: must specify a volume type", i);
        else if (types > 1)
            admit_err(e,
                      "spec.volumes[%zu].emptyDir: Forbidden: may not specify more than 1 volume "
                      "type",
                      i);
        if (src && src->hostpath && (!src->hostpath->path || !*src->hostpath->path))
            admit_err(e, "spec.volumes[%zu].hostPath.path: Required value", i);
        if (src && (src->configmap || src->secret))
            check_projection(e, i, src);
        if (src && src->projected)
            check_projected(e, i, src->projected);
        if (src && src->emptydir && src->emptydir->sizelimit) {
            const char *q =
                src->emptydir->sizelimit->string ? src->emptydir->sizelimit->string : "";
            int64_t m;
            char *qe = NULL;
            if (qty_parse(q, &m, &qe) < 0)
                admit_err(e, "spec.volumes[%zu].emptyDir.sizeLimit: Invalid value: \"%s\": %s", i,
                          q, qe ? qe : "must be a valid quantity");
            free(qe);
        }
        if (src && src->emptydir && src->emptydir->medium && *src->emptydir->medium &&
            strcmp(src->emptydir->medium, "Memory"))
            admit_err(e,
                      "spec.volumes[%zu].emptyDir.medium: Unsupported value: \"%s\": supported "
                      "values: \"\", \"Memory\"",
                      i, src->emptydir->medium);
    }
    char **names = NULL;
    size_t nnames = 0;
    check_containers(e, "spec.initContainers", sp->initcontainers, sp->n_initcontainers, sp, &names,
                     &nnames);
    if (sp->n_containers == 0)
        admit_err(e, "spec.containers: Required value");
    check_containers(e, "spec.containers", sp->containers, sp->n_containers, sp, &names, &nnames);
    free(names);
    check_enum(e, "spec.restartPolicy", sp->restartpolicy, restart,
               "\"Always\", \"OnFailure\", \"Never\"");
    check_enum(e, "spec.dnsPolicy", sp->dnspolicy, dns,
               "\"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"");
    check_dns_config(e, sp);
    check_labels(e, "spec.nodeSelector", (void *)sp->nodeselector, sp->n_nodeselector);
    if (sp->nodename && *sp->nodename) {
        const char *r = admit_dns1123_subdomain(sp->nodename);
        if (r)
            admit_err(e, "spec.nodeName: Invalid value: \"%s\": %s", sp->nodename, r);
    }
    if (sp->has_terminationgraceperiodseconds && sp->terminationgraceperiodseconds < 0)
        admit_err(e,
                  "spec.terminationGracePeriodSeconds: Invalid value: %" PRId64
                  ": must be greater than or equal to 0",
                  sp->terminationgraceperiodseconds);
    if (sp->has_activedeadlineseconds &&
        (sp->activedeadlineseconds < 1 || sp->activedeadlineseconds > 2147483647))
        admit_err(e,
                  "spec.activeDeadlineSeconds: Invalid value: %" PRId64
                  ": must be between 1 and 2147483647, inclusive",
                  sp->activedeadlineseconds);
    for (size_t i = 0; i < sp->n_tolerations; i++) {
        const Coracle__V1__Toleration *t = sp->tolerations[i];
        char p[FPATH_LEN], pp[FPATH_LEN];
        path_idx(p, "spec.tolerations", "", i, "");
        const char *op = t->operator_ ? t->operator_ : "Equal";
        if (t->key && *t->key) {
            const char *r = qualified_name_err(t->key);
            if (r)
                admit_err(e, "%s.key: Invalid value: \"%s\": %s", p, t->key, r);
        } else if (!strcmp(op, "Equal")) {
            admit_err(e,
                      "%s.operator: Invalid value: \"%s\": operator must be Exists when `key` is "
                      "empty, which means \"match all values and all keys\"",
                      p, op);
        }
        path_idx(pp, "spec.tolerations", "", i, ".operator");
        if (t->operator_ && *t->operator_)
            check_enum(e, pp, t->operator_, tolop, "\"Equal\", \"Exists\"");
        if (!strcmp(op, "Exists") && t->value && *t->value)
            admit_err(e,
                      "%s: Invalid value: \"%s\": value must be empty when `operator` is 'Exists'",
                      pp, t->value);
        if (t->effect && *t->effect) {
            path_idx(pp, "spec.tolerations", "", i, ".effect");
            check_enum(e, pp, t->effect, effect,
                       "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
        }
    }
}

static void check_pod_status(struct errs *e, const Coracle__V1__PodStatus *st)
{
    static const char *const phases[] = {"Pending", "Running", "Succeeded",
                                         "Failed",  "Unknown", NULL};
    if (st && st->phase && *st->phase)
        check_enum(e, "status.phase", st->phase, phases,
                   "\"Pending\", \"Running\", \"Succeeded\", \"Failed\", \"Unknown\"");
}

/* ---- other kinds ---- */

/* spec.podCIDRs: valid ranges, at most one of each family (Kubernetes' ValidateNode). */
static void check_pod_cidrs(struct errs *e, const Coracle__V1__NodeSpec *s)
{
    size_t v4 = 0;
    for (size_t i = 0; i < s->n_podcidrs; i++) {
        struct cidr4 c;
        if (!cidr_valid(s->podcidrs[i]))
            admit_err(
                e,
                "spec.podCIDRs[%zu]: Invalid value: \"%s\": must be a valid CIDR value, (e.g. "
                "10.9.8.0/24 or 2001:db8::/64)",
                i, s->podcidrs[i]);
        else if (cidr_parse4(s->podcidrs[i], &c) == 0)
            v4++;
    }
    if (s->n_podcidrs > 2 || (s->n_podcidrs == 2 && v4 != 1))
        admit_err(e,
                  "spec.podCIDRs: Invalid value: \"%s\": may specify no more than one CIDR for "
                  "each IP family",
                  s->podcidrs[0]);
}

static void check_node(struct errs *e, const Coracle__V1__Node *n)
{
    static const char *const effect[] = {"NoSchedule", "PreferNoSchedule", "NoExecute", NULL};
    if (n->spec)
        check_pod_cidrs(e, n->spec);
    if (n->spec)
        for (size_t i = 0; i < n->spec->n_taints; i++) {
            const Coracle__V1__Taint *t = n->spec->taints[i];
            if (!t->key || !*t->key) {
                admit_err(e, "spec.taints[%zu].key: Required value", i);
            } else {
                const char *r = qualified_name_err(t->key);
                if (r)
                    admit_err(e, "spec.taints[%zu].key: Invalid value: \"%s\": %s", i, t->key, r);
            }
            if (!t->effect || !*t->effect) {
                admit_err(e, "spec.taints[%zu].effect: Required value", i);
            } else {
                char *p = xasprintf("spec.taints[%zu].effect", i);
                check_enum(e, p, t->effect, effect,
                           "\"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"");
                free(p);
            }
        }
    if (n->status) {
        check_quantity_map(e, "", "status.capacity", (void *)n->status->capacity,
                           n->status->n_capacity);
        check_quantity_map(e, "", "status.allocatable", (void *)n->status->allocatable,
                           n->status->n_allocatable);
    }
}

static void check_event(struct errs *e, const Coracle__V1__Event *ev)
{
    const Coracle__V1__ObjectMeta *m = ev->metadata;
    const Coracle__V1__ObjectReference *o = ev->involvedobject;
    if (o && o->namespace_ && *o->namespace_ && m && m->namespace_ &&
        strcmp(o->namespace_, m->namespace_))
        admit_err(e,
                  "involvedObject.namespace: Invalid value: \"%s\": does not match event.namespace",
                  o->namespace_);
    if (ev->has_count && ev->count < 0)
        admit_err(e, "count: Invalid value: %d: must be greater than or equal to 0", ev->count);
    if (ev->type && *ev->type && strcmp(ev->type, "Normal") && strcmp(ev->type, "Warning"))
        admit_err(e, "type: Unsupported value: \"%s\": supported values: \"Normal\", \"Warning\"",
                  ev->type);
}

static void check_lease(struct errs *e, const Coracle__V1__Lease *l)
{
    if (l->spec && l->spec->has_leasedurationseconds && l->spec->leasedurationseconds <= 0)
        admit_err(e, "spec.leaseDurationSeconds: Invalid value: %d: must be greater than 0",
                  l->spec->leasedurationseconds);
}

/* ---- ConfigMap, Secret ---- */

/* The most data a ConfigMap or Secret holds (Kubernetes' MaxSecretSize, 1 MiB). */
#define CONFIG_DATA_MAX (1u << 20)

/* IsConfigMapKey: NULL or why key may not name a ConfigMap's or Secret's entry. */
static const char *config_key_err(const char *key)
{
    size_t n = strlen(key);
    if (!n || n > 253)
        return n ? "must be no more than 253 characters"
                 : "a valid config key must consist of "
                   "alphanumeric characters, '-', '_' or "
                   "'.' (e.g. 'key.name',  or 'KEY_NAME', "
                   " or 'key-name', regex used for "
                   "validation is '[-._a-zA-Z0-9]+')";
    if (strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") != n)
        return "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
               "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
               "'[-._a-zA-Z0-9]+')";
    if (!strcmp(key, "."))
        return "must not be '.'";
    if (!strcmp(key, ".."))
        return "must not be '..'";
    if (!strncmp(key, "..", 2))
        return "must not start with '..'";
    return NULL;
}

/* Map entries as protobuf-c lays out map<string, string> and map<string, bytes>. */
struct str_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
};
struct bytes_entry {
    ProtobufCMessage base;
    char *key;
    protobuf_c_boolean has_value;
    ProtobufCBinaryData value;
};
_Static_assert(offsetof(struct str_entry, value) ==
                   offsetof(Coracle__V1__ConfigMap__DataEntry, value),
               "map<string, string> layout");
_Static_assert(offsetof(struct bytes_entry, value) ==
                   offsetof(Coracle__V1__Secret__DataEntry, value),
               "map<string, bytes> layout");

/* The keys of field (a map) valid, adding their bytes to *total. */
static void check_config_keys(struct errs *e, const char *field, ProtobufCMessage *const *ents,
                              size_t n, bool bytes, size_t *total)
{
    for (size_t i = 0; i < n; i++) {
        const char *key = ((const struct str_entry *)ents[i])->key;
        key = key ? key : "";
        const char *r = config_key_err(key);
        if (r)
            admit_err(e, "%s[%s]: Invalid value: \"%s\": %s", field, key, key, r);
        if (bytes)
            *total += ((const struct bytes_entry *)ents[i])->value.len;
        else if (((const struct str_entry *)ents[i])->value)
            *total += strlen(((const struct str_entry *)ents[i])->value);
        *total += strlen(key);
    }
}

static void check_configmap(struct errs *e, const Coracle__V1__ConfigMap *c)
{
    size_t total = 0;
    check_config_keys(e, "data", (void *)c->data, c->n_data, false, &total);
    check_config_keys(e, "binaryData", (void *)c->binarydata, c->n_binarydata, true, &total);
    for (size_t i = 0; i < c->n_data; i++)
        for (size_t j = 0; j < c->n_binarydata; j++)
            if (c->data[i]->key && c->binarydata[j]->key &&
                !strcmp(c->data[i]->key, c->binarydata[j]->key))
                admit_err(e,
                          "data[%s]: Invalid value: \"%s\": duplicate of key present in binaryData",
                          c->data[i]->key, c->data[i]->key);
    if (total > CONFIG_DATA_MAX)
        admit_err(e, "[]: Too long: must have at most %u bytes", CONFIG_DATA_MAX);
}

/* The value of data[key] in a Secret, or NULL if the key is absent. */
static const ProtobufCBinaryData *secret_value(const Coracle__V1__Secret *sc, const char *key)
{
    for (size_t i = 0; i < sc->n_data; i++)
        if (sc->data[i]->key && !strcmp(sc->data[i]->key, key))
            return &sc->data[i]->value;
    return NULL;
}

/* A docker config key: present, and a JSON object (its contents never in the message). */
static void check_docker_config(struct errs *e, const Coracle__V1__Secret *sc, const char *key)
{
    const ProtobufCBinaryData *v = secret_value(sc, key);
    if (!v) {
        admit_err(e, "data[%s]: Required value", key);
        return;
    }
    json_t *j = NULL;
    char *why = NULL;
    struct json_limits lim = {0, KOBJ_MAX_DEPTH, 0};
    if (json_parse((const char *)v->data, v->len, &lim, &j, &why) < 0 || !json_is(j, JSON_OBJECT))
        admit_err(e, "data[%s]: Invalid value: \"<secret contents redacted>\": %s", key,
                  why ? why : "not a JSON object");
    free(why);
    json_free(j);
}

/* The keys each built-in Secret type requires (Kubernetes' ValidateSecret). */
static void check_secret_type(struct errs *e, const Coracle__V1__Secret *sc)
{
    const char *t = sc->type ? sc->type : "";
    if (!strcmp(t, "kubernetes.io/dockercfg")) {
        check_docker_config(e, sc, ".dockercfg");
    } else if (!strcmp(t, "kubernetes.io/dockerconfigjson")) {
        check_docker_config(e, sc, ".dockerconfigjson");
    } else if (!strcmp(t, "kubernetes.io/basic-auth")) {
        if (!secret_value(sc, "username") && !secret_value(sc, "password")) {
            admit_err(e, "data[username]: Required value");
            admit_err(e, "data[password]: Required value");
        }
    } else if (!strcmp(t, "kubernetes.io/ssh-auth")) {
        const ProtobufCBinaryData *v = secret_value(sc, "ssh-privatekey");
        if (!v || !v->len)
            admit_err(e, "data[ssh-privatekey]: Required value");
    } else if (!strcmp(t, "kubernetes.io/tls")) {
        if (!secret_value(sc, "tls.crt"))
            admit_err(e, "data[tls.crt]: Required value");
        if (!secret_value(sc, "tls.key"))
            admit_err(e, "data[tls.key]: Required value");
    } else if (!strcmp(t, "kubernetes.io/service-account-token")) {
        const Coracle__V1__ObjectMeta *m = sc->metadata;
        bool named = false;
        for (size_t i = 0; m && i < m->n_annotations; i++)
            named |= !strcmp(m->annotations[i]->key, "kubernetes.io/service-account.name") &&
                     m->annotations[i]->value && *m->annotations[i]->value;
        if (!named)
            admit_err(e,
                      "metadata.annotations[kubernetes.io/service-account.name]: Required value");
    }
}

static void check_secret(struct errs *e, const Coracle__V1__Secret *sc)
{
    size_t total = 0;
    check_config_keys(e, "data", (void *)sc->data, sc->n_data, true, &total);
    if (total > CONFIG_DATA_MAX)
        admit_err(e, "data: Too long: must have at most %u bytes", CONFIG_DATA_MAX);
    check_secret_type(e, sc);
}

int admit_validate(const struct kind *k, const ProtobufCMessage *obj, char **msg)
{
    struct errs e = {0};
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    check_meta(&e, k, m);
    if (k == &kind_pod) {
        check_pod_spec(&e, ((const Coracle__V1__Pod *)obj)->spec);
        check_pod_status(&e, ((const Coracle__V1__Pod *)obj)->status);
    } else if (k == &kind_node) {
        check_node(&e, (const void *)obj);
    } else if (k == &kind_event) {
        check_event(&e, (const void *)obj);
    } else if (k == &kind_lease) {
        check_lease(&e, (const void *)obj);
    } else if (k == &kind_configmap) {
        check_configmap(&e, (const void *)obj);
    } else if (k == &kind_secret) {
        check_secret(&e, (const void *)obj);
    } else if (admit_rbac_kind(k)) {
        admit_rbac_validate(&e, k, obj);
    } else if (k == &kind_csr) {
        admit_csr_validate(&e, (const void *)obj);
    } else if (k == &kind_service) {
        admit_service_validate(&e, (const void *)obj);
    } else if (k == &kind_endpointslice) {
        admit_endpointslice_validate(&e, (const void *)obj);
    } else if (k == &kind_networkpolicy) {
        admit_netpol_validate(&e, (const void *)obj);
    } else {
        admit_workload_validate(&e, k, obj);
    }
    return efinish(&e, k, m ? m->name : NULL, msg);
}

/* ---- pod update ---- */

#define POD_UPDATE_MSG                                                                             \
    "pod updates may not change fields other than `spec.containers[*].image`,"                     \
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "        \
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set " \
    "to 1 if it was previously negative)"

int admit_pod_update(const Coracle__V1__Pod *old, const Coracle__V1__Pod *upd, char **msg)
{
    struct errs e = {0};
    check_pod_spec(&e, upd->spec);
    if (!e.n && old->spec && upd->spec) {
        /* neutralise what may change, then the rest must be identical */
        Coracle__V1__PodSpec *a = (void *)obj_clone(&old->spec->base);
        Coracle__V1__PodSpec *b = (void *)obj_clone(&upd->spec->base);
        if (a->n_containers == b->n_containers)
            for (size_t i = 0; i < a->n_containers; i++)
                obj_set_str(&b->containers[i]->image, a->containers[i]->image);
        if (a->n_initcontainers == b->n_initcontainers)
            for (size_t i = 0; i < a->n_initcontainers; i++)
                obj_set_str(&b->initcontainers[i]->image, a->initcontainers[i]->image);
        b->has_activedeadlineseconds = a->has_activedeadlineseconds;
        b->activedeadlineseconds = a->activedeadlineseconds;
        /* tolerations: every old one must still be there; additions are fine */
        int tol_ok = 1;
        for (size_t i = 0; i < a->n_tolerations && tol_ok; i++) {
            int found = 0;
            for (size_t j = 0; j < b->n_tolerations && !found; j++)
                found = obj_equal(&a->tolerations[i]->base, &b->tolerations[j]->base);
            tol_ok = found;
        }
        if (!obj_equal(&a->base, &b->base) || !tol_ok) {
            /* compare again without tolerations */
            size_t na = a->n_tolerations, nb = b->n_tolerations;
            a->n_tolerations = b->n_tolerations = 0;
            if (!obj_equal(&a->base, &b->base) || !tol_ok)
                admit_err(&e, "spec: Forbidden: %s", POD_UPDATE_MSG);
            a->n_tolerations = na;
            b->n_tolerations = nb;
        }
        if (old->spec->has_activedeadlineseconds && upd->spec->has_activedeadlineseconds &&
            upd->spec->activedeadlineseconds > old->spec->activedeadlineseconds)
            admit_err(&e,
                      "spec.activeDeadlineSeconds: Invalid value: %" PRId64
                      ": must be less than or equal to previous value",
                      upd->spec->activedeadlineseconds);
        else if (old->spec->has_activedeadlineseconds && !upd->spec->has_activedeadlineseconds)
            admit_err(&e,
                      "spec.activeDeadlineSeconds: Invalid value: \"null\": must not update from a "
                      "positive integer to nil value");
        obj_free(&a->base);
        obj_free(&b->base);
    }
    return efinish(&e, &kind_pod, upd->metadata ? upd->metadata->name : NULL, msg);
}

/* ---- updates of any kind ---- */

/* Two maps (normalized: sorted by key) hold the same entries. */
static bool same_entries(ProtobufCMessage *const *a, size_t na, ProtobufCMessage *const *b,
                         size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!obj_equal(a[i], b[i]))
            return false;
    return true;
}

#define IMMUTABLE_MSG "Forbidden: field is immutable when `immutable` is set"

/* ValidateConfigMapUpdate / ValidateSecretUpdate's immutability, for either. */
static void check_immutable(struct errs *e, bool was, bool is, bool data_same, bool bin_same)
{
    if (!was)
        return;
    if (!is)
        admit_err(e, "immutable: " IMMUTABLE_MSG);
    if (!data_same)
        admit_err(e, "data: " IMMUTABLE_MSG);
    if (!bin_same)
        admit_err(e, "binaryData: " IMMUTABLE_MSG);
}

/*
 * A Node's pod ranges are set once (by the node IPAM allocator or by
 * hand): afterwards they may not change, as Kubernetes' ValidateNodeUpdate.
 */
static void check_node_update(struct errs *e, const Coracle__V1__Node *a,
                              const Coracle__V1__Node *b)
{
    size_t na = a->spec ? a->spec->n_podcidrs : 0, nb = b->spec ? b->spec->n_podcidrs : 0;
    bool same = na == nb;
    for (size_t i = 0; same && i < na; i++)
        same = !strcmp(a->spec->podcidrs[i], b->spec->podcidrs[i]);
    if (na && !same)
        admit_err(e,
                  "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" "
                  "to valid");
}

int admit_update(const struct kind *k, const ProtobufCMessage *old, const ProtobufCMessage *upd,
                 char **msg)
{
    *msg = NULL;
    struct errs e = {0};
    check_no_new_finalizers(&e, kind_meta(old), kind_meta(upd));
    if (e.n) {
        const Coracle__V1__ObjectMeta *m = kind_meta(upd);
        return efinish(&e, k, m ? m->name : NULL, msg);
    }
    if (k == &kind_pod)
        return admit_pod_update((const void *)old, (const void *)upd, msg);
    if (k == &kind_configmap) {
        const Coracle__V1__ConfigMap *a = (const void *)old, *b = (const void *)upd;
        check_immutable(&e, a->has_immutable && a->immutable, b->has_immutable && b->immutable,
                        same_entries((void *)a->data, a->n_data, (void *)b->data, b->n_data),
                        same_entries((void *)a->binarydata, a->n_binarydata, (void *)b->binarydata,
                                     b->n_binarydata));
    } else if (k == &kind_node) {
        check_node_update(&e, (const void *)old, (const void *)upd);
    } else if (k == &kind_secret) {
        const Coracle__V1__Secret *a = (const void *)old, *b = (const void *)upd;
        if (strcmp(a->type ? a->type : "", b->type ? b->type : ""))
            admit_err(&e, "type: Invalid value: \"%s\": field is immutable",
                      b->type ? b->type : "");
        check_immutable(&e, a->has_immutable && a->immutable, b->has_immutable && b->immutable,
                        same_entries((void *)a->data, a->n_data, (void *)b->data, b->n_data), true);
    } else if (admit_rbac_kind(k)) {
        admit_rbac_update(&e, k, old, upd);
    } else if (k == &kind_csr) {
        admit_csr_update(&e, (const void *)old, (const void *)upd);
    } else if (k == &kind_service) {
        admit_service_update(&e, (const void *)old, (const void *)upd);
    } else if (k == &kind_endpointslice) {
        admit_endpointslice_update(&e, (const void *)old, (const void *)upd);
    } else {
        admit_workload_update(&e, k, old, upd);
    }
    const Coracle__V1__ObjectMeta *m = kind_meta(upd);
    return efinish(&e, k, m ? m->name : NULL, msg);
}

void admit_prepare_create(const struct kind *k, ProtobufCMessage *obj)
{
    if (k == &kind_pod) {
        Coracle__V1__Pod *p = (void *)obj;
        if (p->status)
            obj_free(&p->status->base);
        p->status = xmalloc(sizeof(*p->status));
        coracle__v1__pod_status__init(p->status);
        p->status->phase = xstrdup("Pending");
        p->status->qosclass = xstrdup(admit_pod_qos(p->spec));
    } else if (k == &kind_namespace) {
        Coracle__V1__Namespace *n = (void *)obj;
        if (n->status)
            obj_free(&n->status->base);
        n->status = xmalloc(sizeof(*n->status));
        coracle__v1__namespace_status__init(n->status);
        n->status->phase = xstrdup("Active");
    } else {
        admit_workload_prepare_create(k, obj);
    }
}

/* ---- defaults ---- */

/*
 * A Secret's stringData folded into data (a key in both: stringData's
 * value wins, as in Kubernetes), and emptied: it is write-only.
 */
static void fold_string_data(Coracle__V1__Secret *sc)
{
    for (size_t i = 0; i < sc->n_stringdata; i++) {
        Coracle__V1__Secret__StringDataEntry *se = sc->stringdata[i];
        const char *key = se->key ? se->key : "";
        Coracle__V1__Secret__DataEntry *de = NULL;
        for (size_t j = 0; j < sc->n_data && !de; j++)
            if (sc->data[j]->key && !strcmp(sc->data[j]->key, key))
                de = sc->data[j];
        if (!de) {
            de = xmalloc(sizeof(*de));
            coracle__v1__secret__data_entry__init(de);
            de->key = xstrdup(key);
            sc->data = xrealloc(sc->data, (sc->n_data + 1) * sizeof(*sc->data));
            sc->data[sc->n_data++] = de;
        }
        free(de->value.data);
        size_t len = se->value ? strlen(se->value) : 0;
        de->value.data = len ? xmemdup(se->value, len) : NULL;
        de->value.len = len;
        de->has_value = 1;
        obj_free(&se->base);
    }
    free(sc->stringdata);
    sc->stringdata = NULL;
    sc->n_stringdata = 0;
}

static void set_default_str(char **f, const char *v)
{
    if (!*f || !**f)
        obj_set_str(f, v);
}

static int image_is_latest(const char *image)
{
    if (!image)
        return 1;
    if (strchr(image, '@'))
        return 0;
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(slash ? slash : image, ':');
    return !colon || !strcmp(colon, ":latest");
}

static void default_containers(Coracle__V1__Container **c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        Coracle__V1__Container *ct = c[i];
        set_default_str(&ct->terminationmessagepath, "/dev/termination-log");
        set_default_str(&ct->terminationmessagepolicy, "File");
        set_default_str(&ct->imagepullpolicy,
                        image_is_latest(ct->image) ? "Always" : "IfNotPresent");
        for (size_t j = 0; j < ct->n_ports; j++)
            set_default_str(&ct->ports[j]->protocol, "TCP");
        for (size_t j = 0; j < ct->n_env; j++)
            if (ct->env[j]->valuefrom && ct->env[j]->valuefrom->fieldref)
                set_default_str(&ct->env[j]->valuefrom->fieldref->apiversion, "v1");
        /* requests default to limits */
        Coracle__V1__ResourceRequirements *r = ct->resources;
        if (r)
            for (size_t j = 0; j < r->n_limits; j++) {
                const char *key = r->limits[j]->key;
                if (!key || qmap_get((void *)r->requests, r->n_requests, key))
                    continue;
                Coracle__V1__ResourceRequirements__RequestsEntry *en = xmalloc(sizeof(*en));
                coracle__v1__resource_requirements__requests_entry__init(en);
                en->key = xstrdup(key);
                en->value = xmalloc(sizeof(*en->value));
                coracle__v1__quantity__init(en->value);
                en->value->string = xstrdup(r->limits[j]->value && r->limits[j]->value->string
                                                ? r->limits[j]->value->string
                                                : "0");
                r->requests = xrealloc(r->requests, (r->n_requests + 1) * sizeof(*r->requests));
                r->requests[r->n_requests++] = en;
            }
    }
}

const char *admit_pod_qos(const Coracle__V1__PodSpec *sp)
{
    int any = 0, guaranteed = 1;
    for (int pass = 0; pass < 2; pass++) {
        Coracle__V1__Container **c = pass ? sp->initcontainers : sp->containers;
        size_t n = pass ? sp->n_initcontainers : sp->n_containers;
        for (size_t i = 0; i < n; i++) {
            const Coracle__V1__ResourceRequirements *r = c[i]->resources;
            if (r && (r->n_limits || r->n_requests))
                any = 1;
            const char *names[] = {"cpu", "memory"};
            for (int k = 0; k < 2; k++) {
                const char *l = r ? qmap_get(r->limits, r->n_limits, names[k]) : NULL;
                const char *q = r ? qmap_get((void *)r->requests, r->n_requests, names[k]) : NULL;
                int64_t lm, qm;
                if (!l || !q || qty_parse(l, &lm, NULL) || qty_parse(q, &qm, NULL) || lm != qm)
                    guaranteed = 0;
            }
        }
    }
    return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

/*
 * spec.podCIDR and spec.podCIDRs say one thing, as Kubernetes' v1
 * conversion makes them: podCIDRs wins, podCIDR alone fills it.
 */
static void node_pod_cidrs(Coracle__V1__Node *n)
{
    Coracle__V1__NodeSpec *s = n->spec;
    if (!s)
        return;
    if (!s->n_podcidrs && s->podcidr && *s->podcidr) {
        s->podcidrs = xmalloc(sizeof(*s->podcidrs));
        s->podcidrs[s->n_podcidrs++] = xstrdup(s->podcidr);
    } else if (s->n_podcidrs) {
        obj_set_str(&s->podcidr, s->podcidrs[0]);
    }
}

void admit_defaults(const struct kind *k, ProtobufCMessage *obj)
{
    if (k == &kind_node)
        node_pod_cidrs((void *)obj);
    if (k == &kind_secret) {
        fold_string_data((void *)obj); /* before normalize sorts data */
        set_default_str(&((Coracle__V1__Secret *)obj)->type, "Opaque");
    }
    obj_normalize(obj);
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    if (k->namespaced)
        set_default_str(&m->namespace_, "default");
    else
        obj_set_str(&m->namespace_, NULL); /* cluster-scoped: Kubernetes clears it */
    admit_workload_defaults(k, obj);
    if (k == &kind_service)
        admit_service_defaults((void *)obj);
    else if (k == &kind_endpointslice)
        admit_endpointslice_defaults((void *)obj);
    else if (k == &kind_networkpolicy)
        admit_netpol_defaults((void *)obj);
    if (k != &kind_pod)
        return;
    Coracle__V1__Pod *p = (void *)obj;
    if (!p->spec) {
        p->spec = xmalloc(sizeof(*p->spec));
        coracle__v1__pod_spec__init(p->spec);
    }
    admit_pod_spec_defaults(p->spec);
}

void admit_pod_spec_defaults(Coracle__V1__PodSpec *sp)
{
    set_default_str(&sp->restartpolicy, "Always");
    set_default_str(&sp->dnspolicy, "ClusterFirst");
    set_default_str(&sp->schedulername, "default-scheduler");
    if (!sp->has_terminationgraceperiodseconds) {
        sp->has_terminationgraceperiodseconds = 1;
        sp->terminationgraceperiodseconds = 30;
    }
    if (!sp->has_priority) {
        sp->has_priority = 1;
        sp->priority = 0;
    }
    default_containers(sp->containers, sp->n_containers);
    default_containers(sp->initcontainers, sp->n_initcontainers);
    for (size_t i = 0; i < sp->n_volumes; i++) {
        /* configMap and secret volumes: defaultMode 0644 */
        Coracle__V1__VolumeSource *vs = sp->volumes[i]->volumesource;
        if (vs && vs->configmap && !vs->configmap->has_defaultmode) {
            vs->configmap->has_defaultmode = 1;
            vs->configmap->defaultmode = 0644;
        }
        if (vs && vs->secret && !vs->secret->has_defaultmode) {
            vs->secret->has_defaultmode = 1;
            vs->secret->defaultmode = 0644;
        }
    }
    for (size_t i = 0; i < sp->n_tolerations; i++)
        if (sp->tolerations[i]->key && *sp->tolerations[i]->key)
            set_default_str(&sp->tolerations[i]->operator_, "Equal");
}

/* ---- for the workload kinds (admit_int.h) ---- */

void admit_err(struct errs *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *XPUSH(e->v, e->n, e->cap) = xvasprintf(fmt, ap);
    va_end(ap);
}

void admit_pod_template_errs(struct errs *e, const char *prefix, const Coracle__V1__PodSpec *sp)
{
    struct errs pe = {0};
    check_pod_spec(&pe, sp);
    for (size_t i = 0; i < pe.n; i++) {
        admit_err(e, "%s%s", prefix, pe.v[i]);
        free(pe.v[i]);
    }
    free(pe.v);
}

void admit_label_errs(struct errs *e, const char *path,
                      Coracle__V1__ObjectMeta__LabelsEntry *const *l, size_t n)
{
    check_labels(e, path, l, n);
}

const char *admit_label_key_err(const char *key)
{
    return qualified_name_err(key);
}

const char *admit_label_value_err(const char *value)
{
    return label_value_err(value);
}
