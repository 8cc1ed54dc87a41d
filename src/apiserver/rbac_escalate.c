/*
 * rbac_escalate: escalation prevention on writes of RBAC objects, as
 * Kubernetes' pkg/registry/rbac/{role,clusterrole,rolebinding,
 * clusterrolebinding}/policybased and pkg/registry/rbac/validation: nobody
 * grants (in a role) or binds (to a subject) rights they do not hold,
 * unless they may `escalate` that role or `bind` it. "Hold" is the
 * authorizer's own decision (auth_allows), so the policy file, RBAC and
 * system:masters count alike. See rbac.h.
 */
#include "config.h"
#include "auth.h"
#include "grpc.h"
#include "rbac.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RBAC_GROUP "rbac.authorization.k8s.io"

struct holder {
    const auth_t *au;
    const struct auth_user *u;
};

static bool holds(const struct rbac_attrs *a, void *arg)
{
    const struct holder *h = arg;
    return auth_allows(h->au, h->u, a);
}

/* Go's %q of a []string: ["a" "b"]. malloc'd. */
static char *go_strings(const char *const *v)
{
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    fputc('[', f);
    for (size_t i = 0; v && v[i]; i++)
        fprintf(f, "%s\"%s\"", i ? " " : "", v[i]);
    fputc(']', f);
    fclose(f);
    return buf;
}

/* Forbidden on resource "name": why. */
static int refuse(const char *resource, const char *name, const char *why, int *code, char **msg)
{
    *code = GRPC_PERMISSION_DENIED;
    *msg = xasprintf("%s." RBAC_GROUP " \"%s\" is forbidden: %s", resource, name ? name : "", why);
    log_info("rbac: denied: %s", *msg);
    return -1;
}

/* ConfirmNoEscalation: every rule held in ns, else refused naming those not held. */
static int confirm(const auth_t *au, const struct auth_user *u,
                   Coracle__V1__PolicyRule *const *rules, size_t n, const char *ns,
                   const char *resource, const char *name, int *code, char **msg)
{
    struct holder h = {au, u};
    char *missing = rbac_rules_missing(rules, n, ns, holds, &h);
    if (!missing)
        return 0;
    char *groups = go_strings(u->groups);
    char *why = xasprintf("user \"%s\" (groups=%s) is attempting to grant RBAC permissions not "
                          "currently held:\n%s",
                          u->name, groups, missing);
    refuse(resource, name, why, code, msg);
    free(why);
    free(groups);
    free(missing);
    return -1;
}

/* May u `verb` (escalate, bind) the role resource/name in ns? */
static bool may(const auth_t *au, const struct auth_user *u, const char *verb, const char *group,
                const char *resource, const char *ns, const char *name)
{
    struct rbac_attrs a = {verb, group, resource, NULL, ns, name, NULL};
    return auth_allows(au, u, &a);
}

static int admit_role(const auth_t *au, const struct auth_user *u, const struct kind *k,
                      const ProtobufCMessage *obj, int *code, char **msg)
{
    const Coracle__V1__ClusterRole *r = (const void *)obj; /* a Role has the same head */
    const char *name = r->metadata ? r->metadata->name : NULL;
    const char *ns = k == &kind_role && r->metadata ? r->metadata->namespace_ : NULL;
    if (may(au, u, "escalate", RBAC_GROUP, k->resource, ns, name))
        return 0;
    if (confirm(au, u, r->rules, r->n_rules, ns, k->resource, name, code, msg) < 0)
        return -1;
    if (k != &kind_clusterrole || !r->aggregationrule)
        return 0;
    /* the aggregation can gather anything: it needs every right */
    static char *star[] = {"*"};
    Coracle__V1__PolicyRule all_res = CORACLE__V1__POLICY_RULE__INIT;
    all_res.n_verbs = all_res.n_apigroups = all_res.n_resources = 1;
    all_res.verbs = all_res.apigroups = all_res.resources = star;
    Coracle__V1__PolicyRule all_urls = CORACLE__V1__POLICY_RULE__INIT;
    all_urls.n_verbs = all_urls.n_nonresourceurls = 1;
    all_urls.verbs = all_urls.nonresourceurls = star;
    Coracle__V1__PolicyRule *full[] = {&all_res, &all_urls};
    struct holder h = {au, u};
    char *missing = rbac_rules_missing(full, 2, NULL, holds, &h);
    if (!missing)
        return 0;
    free(missing);
    return refuse(k->resource, name,
                  "must have cluster-admin privileges to use the aggregationRule", code, msg);
}

static int admit_binding(const rbac_t *rb, const auth_t *au, const struct auth_user *u,
                         const struct kind *k, const ProtobufCMessage *obj, int *code, char **msg)
{
    const Coracle__V1__RoleBinding *b = (const void *)obj; /* a ClusterRoleBinding's head too */
    const char *name = b->metadata ? b->metadata->name : NULL;
    const char *ns = k == &kind_rolebinding && b->metadata ? b->metadata->namespace_ : NULL;
    const Coracle__V1__RoleRef *ref = b->roleref;
    if (!ref || !ref->name || !ref->kind)
        return 0; /* validation says what is missing */
    bool cluster_role = !strcmp(ref->kind, "ClusterRole");
    const char *res = cluster_role ? "clusterroles" : "roles";
    if (may(au, u, "bind", ref->apigroup ? ref->apigroup : "", res, ns, ref->name))
        return 0;
    const Coracle__V1__Role *role = cluster_role ? (const void *)rbac_cluster_role(rb, ref->name)
                                                 : rbac_role(rb, ns, ref->name);
    if (!role) {
        *code = GRPC_NOT_FOUND;
        *msg = xasprintf("%s." RBAC_GROUP " \"%s\" not found", res, ref->name);
        return -1;
    }
    return confirm(au, u, role->rules, role->n_rules, ns, k->resource, name, code, msg);
}

int rbac_admit(const rbac_t *rb, const struct auth *au, const struct auth_user *u,
               const struct kind *k, const ProtobufCMessage *obj, int *code, char **msg)
{
    *msg = NULL;
    if (!auth_required(au))
        return 0;
    if (k == &kind_role || k == &kind_clusterrole)
        return admit_role(au, u, k, obj, code, msg);
    if (k == &kind_rolebinding || k == &kind_clusterrolebinding)
        return admit_binding(rb, au, u, k, obj, code, msg);
    return 0;
}
