/*
 * audit_policy: the audit policy (audit.k8s.io/v1 Policy: parsing,
 * Kubernetes' validation, the rule matcher of apiserver/pkg/audit/policy)
 * and Kubernetes' RequestInfo of a REST path. Pure: no I/O, so the fuzz
 * target links it alone. See audit.h.
 */
#include "config.h"
#include "audit.h"
#include "coracle.pb-c.h"
#include "kobj.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct audit_policy {
    Coracle__V1__AuditPolicy *pb;
};

/* ---------------------------------------------------------------- policy */

static const char *const levels[] = {"None", "Metadata", "Request", "RequestResponse", NULL};
static const char *const stages[] = {"RequestReceived", "ResponseStarted", "ResponseComplete",
                                     "Panic", NULL};

static int in(const char *const *l, const char *s)
{
    for (size_t i = 0; l[i]; i++)
        if (!strcmp(l[i], s))
            return (int)i;
    return -1;
}

static bool has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

/* Kubernetes' validation of stages at field (field path): NULL or the error (malloc'd). */
static char *stages_problem(const char *field, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (in(stages, v[i]) < 0)
            return xasprintf("%s[%zu]: Unsupported value: \"%s\": supported values: "
                             "\"Panic\", \"RequestReceived\", \"ResponseComplete\", "
                             "\"ResponseStarted\"",
                             field, i, v[i]);
    return NULL;
}

/* Kubernetes' ValidatePolicy for one rule: NULL or the error (malloc'd). */
static char *rule_problem(const Coracle__V1__AuditPolicyRule *r, size_t i)
{
    if (!r->level || in(levels, r->level) < 0)
        return xasprintf("rules[%zu].level: %s", i,
                         r->level ? "Unsupported value: supported values: \"Metadata\", "
                                    "\"None\", \"Request\", \"RequestResponse\""
                                  : "Required value");
    if (r->n_nonresourceurls && (r->n_resources || r->n_namespaces))
        return xasprintf("rules[%zu].nonResourceURLs: Invalid value: \"%s\": rules cannot apply "
                         "to both regular resources and non-resource URLs",
                         i, r->nonresourceurls[0]);
    for (size_t j = 0; j < r->n_nonresourceurls; j++) {
        const char *u = r->nonresourceurls[j];
        const char *star = strchr(u, '*');
        if (u[0] != '/' && strcmp(u, "*"))
            return xasprintf("rules[%zu].nonResourceURLs[%zu]: Invalid value: \"%s\": non-resource "
                             "URL rules must begin with a '/' character",
                             i, j, u);
        if (star && star[1])
            return xasprintf("rules[%zu].nonResourceURLs[%zu]: Invalid value: \"%s\": non-resource "
                             "URL wildcards (\"*\") must be the final character of the rule",
                             i, j, u);
    }
    for (size_t j = 0; j < r->n_resources; j++) {
        const Coracle__V1__AuditGroupResources *g = r->resources[j];
        if (g->n_resourcenames && !g->n_resources)
            return xasprintf("rules[%zu].resources[%zu].resourceNames: Invalid value: \"%s\": "
                             "using resourceNames requires at least one resource",
                             i, j, g->resourcenames[0]);
    }
    char f[48];
    snprintf(f, sizeof(f), "rules[%zu].omitStages", i);
    return stages_problem(f, r->omitstages, r->n_omitstages);
}

struct audit_policy *audit_policy_parse(const char *name, const char *buf, size_t len, char **err)
{
    struct kobj_opts ko = {.fields = KOBJ_FIELDS_STRICT};
    *err = NULL;
    ProtobufCMessage *m =
        kobj_parse_msg_opts(name, buf, len, &coracle__v1__audit_policy__descriptor, &ko, err);
    if (m && (!ko.api_version || strcmp(ko.api_version, "audit.k8s.io/v1") || !ko.kind ||
              strcmp(ko.kind, "Policy")))
        *err = xasprintf("%s: expected apiVersion audit.k8s.io/v1 and kind Policy, not %s %s", name,
                         ko.api_version ? ko.api_version : "(none)", ko.kind ? ko.kind : "(none)");
    kobj_opts_free(&ko);
    Coracle__V1__AuditPolicy *p = (Coracle__V1__AuditPolicy *)m;
    char *why = NULL;
    for (size_t i = 0; p && !*err && !why && i < p->n_rules; i++)
        why = rule_problem(p->rules[i], i);
    if (p && !*err && !why)
        why = stages_problem("omitStages", p->omitstages, p->n_omitstages);
    if (why) {
        *err = xasprintf("%s: invalid audit policy: %s", name, why);
        free(why);
    }
    if (*err) {
        if (m)
            protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    struct audit_policy *out = xmalloc(sizeof(*out));
    out->pb = p;
    return out;
}

void audit_policy_free(struct audit_policy *p)
{
    if (!p)
        return;
    protobuf_c_message_free_unpacked(&p->pb->base, NULL);
    free(p);
}

static const char *str(const char *s)
{
    return s ? s : "";
}

/* Kubernetes' pathMatches: "*", the path itself, or a prefix ending in '*'. */
static bool path_matches(const char *path, const char *spec)
{
    size_t sl = strlen(spec);
    if (!strcmp(spec, "*") || !strcmp(spec, path))
        return true;
    return sl && spec[sl - 1] == '*' && !strncmp(path, spec, sl - 1);
}

/* One GroupResources entry against a resource request. */
static bool group_resources_match(const Coracle__V1__AuditGroupResources *g,
                                  const struct audit_req *q)
{
    if (strcmp(str(g->group), str(q->api_group)))
        return false;
    if (!g->n_resources)
        return true;
    const char *sub = str(q->subresource);
    char combined[160];
    snprintf(combined, sizeof(combined), "%s%s%s", str(q->res), *sub ? "/" : "", sub);
    if (g->n_resourcenames && !has(g->resourcenames, g->n_resourcenames, str(q->name)))
        return false;
    for (size_t i = 0; i < g->n_resources; i++) {
        const char *r = g->resources[i];
        size_t rl = strlen(r);
        if (!strcmp(r, combined) || !strcmp(r, "*"))
            return true;
        if (*sub && !strncmp(r, "*/", 2) && !strcmp(r + 2, sub))
            return true;
        if (rl > 2 && !strcmp(r + rl - 2, "/*") && strlen(str(q->res)) == rl - 2 &&
            !strncmp(r, str(q->res), rl - 2))
            return true;
    }
    return false;
}

/* Kubernetes' ruleMatches (apiserver/pkg/audit/policy/checker.go). */
static bool rule_matches(const Coracle__V1__AuditPolicyRule *r, const struct auth_user *u,
                         const struct audit_req *q)
{
    if (r->n_users && !has(r->users, r->n_users, u ? u->name : ""))
        return false;
    if (r->n_usergroups) {
        bool any = false;
        for (size_t i = 0; u && u->groups && u->groups[i] && !any; i++)
            any = has(r->usergroups, r->n_usergroups, u->groups[i]);
        if (!any)
            return false;
    }
    if (r->n_verbs && !has(r->verbs, r->n_verbs, q->verb))
        return false;
    if (r->n_namespaces || r->n_resources) {
        if (!q->resource)
            return false;
        if (r->n_namespaces && !has(r->namespaces, r->n_namespaces, str(q->ns)))
            return false;
        if (!r->n_resources)
            return true;
        for (size_t i = 0; i < r->n_resources; i++)
            if (group_resources_match(r->resources[i], q))
                return true;
        return false;
    }
    if (r->n_nonresourceurls) {
        if (q->resource)
            return false;
        for (size_t i = 0; i < r->n_nonresourceurls; i++)
            if (path_matches(q->path, r->nonresourceurls[i]))
                return true;
        return false;
    }
    return true;
}

enum audit_level audit_policy_level(const struct audit_policy *p, const struct auth_user *u,
                                    const struct audit_req *q, bool *omit)
{
    *omit = false;
    for (size_t i = 0; p && i < p->pb->n_rules; i++) {
        const Coracle__V1__AuditPolicyRule *r = p->pb->rules[i];
        if (!rule_matches(r, u, q))
            continue;
        *omit = has(r->omitstages, r->n_omitstages, "ResponseComplete") ||
                has(p->pb->omitstages, p->pb->n_omitstages, "ResponseComplete");
        int l = in(levels, r->level);
        return l < 0 ? AUDIT_NONE : (enum audit_level)l;
    }
    return AUDIT_NONE;
}

/* ---------------------------------------------------------------- RequestInfo */

static const char *method_verb(const char *m, bool named, bool watch)
{
    if (!strcmp(m, "POST"))
        return "create";
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD"))
        return watch ? "watch" : named ? "get" : "list";
    if (!strcmp(m, "PUT"))
        return "update";
    if (!strcmp(m, "PATCH"))
        return "patch";
    if (!strcmp(m, "DELETE"))
        return named ? "delete" : "deletecollection";
    return "";
}

/* Whether the query has watch=true (or 1, or bare). */
static bool query_watch(const char *query)
{
    for (const char *p = query; p && *p;) {
        size_t l = strcspn(p, "&");
        if ((l == 5 && !strncmp(p, "watch", 5)) || (l == 10 && !strncmp(p, "watch=true", 10)) ||
            (l == 7 && !strncmp(p, "watch=1", 7)))
            return true;
        p += l + (p[l] == '&');
    }
    return false;
}

void audit_request_info(const char *method, const char *path, const char *query,
                        struct audit_req *q, char *buf, size_t bn)
{
    memset(q, 0, sizeof(*q));
    q->path = path;
    snprintf(buf, bn, "%s", path);
    char *seg[8];
    size_t n = 0;
    for (char *t = strtok(buf, "/"); t && n < 8; t = strtok(NULL, "/"))
        seg[n++] = t;
    bool core = n >= 2 && !strcmp(seg[0], "api");
    bool group = n >= 3 && !strcmp(seg[0], "apis");
    size_t at = core ? 2 : 3;
    if ((!core && !group) || n <= at) { /* discovery and the rest: non-resource */
        static char verb[16];
        size_t i = 0;
        for (; method[i] && i < sizeof(verb) - 1; i++)
            verb[i] = (char)(method[i] >= 'A' && method[i] <= 'Z' ? method[i] + 32 : method[i]);
        verb[i] = '\0';
        q->verb = verb;
        return;
    }
    q->resource = true;
    q->api_group = core ? "" : seg[1];
    q->api_version = core ? seg[1] : seg[2];
    char **s = seg + at;
    size_t k = n - at;
    /* namespaces/NS/RESOURCE...: a scope (namespaces/NS[/status|finalize] is the kind) */
    if (k >= 3 && !strcmp(s[0], "namespaces")) {
        q->ns = s[1];
        s += 2;
        k -= 2;
    } else if (k >= 2 && !strcmp(s[0], "namespaces")) {
        q->ns = s[1];
    }
    q->res = s[0];
    q->name = k > 1 ? s[1] : NULL;
    q->subresource = k > 2 ? s[2] : NULL;
    q->verb = method_verb(method, q->name != NULL, query_watch(query));
}
