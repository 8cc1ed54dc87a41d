/*
 * admit_rbac: validation of the rbac.authorization.k8s.io kinds, as
 * Kubernetes' pkg/apis/rbac/validation: rules, subjects, the roleRef and
 * its immutability. Pure functions, as the rest of admit.
 */
#include "config.h"
#include "admit_int.h"

#include <string.h>

bool admit_rbac_kind(const struct kind *k)
{
    return k == &kind_role || k == &kind_clusterrole || k == &kind_rolebinding ||
           k == &kind_clusterrolebinding;
}

const char *admit_path_segment_name(const char *s)
{
    if (!strcmp(s, "."))
        return "may not be '.'";
    if (!strcmp(s, ".."))
        return "may not be '..'";
    if (strchr(s, '/'))
        return "may not contain '/'";
    if (strchr(s, '%'))
        return "may not contain '%'";
    return NULL;
}

static void check_rule(struct errs *e, size_t i, const Coracle__V1__PolicyRule *r, bool namespaced)
{
    if (!r->n_verbs)
        admit_err(e, "rules[%zu].verbs: Required value: verbs must contain at least one value", i);
    if (r->n_nonresourceurls) {
        if (namespaced)
            admit_err(e,
                      "rules[%zu].nonResourceURLs: Invalid value: \"%s\": namespaced rules cannot "
                      "apply to non-resource URLs",
                      i, r->nonresourceurls[0]);
        if (r->n_apigroups || r->n_resources || r->n_resourcenames)
            admit_err(
                e,
                "rules[%zu].nonResourceURLs: Invalid value: \"%s\": rules cannot apply to both "
                "regular resources and non-resource URLs",
                i, r->nonresourceurls[0]);
        return;
    }
    if (!r->n_apigroups)
        admit_err(e,
                  "rules[%zu].apiGroups: Required value: resource rules must supply at least one "
                  "api group",
                  i);
    if (!r->n_resources)
        admit_err(e,
                  "rules[%zu].resources: Required value: resource rules must supply at least one "
                  "resource",
                  i);
}

static void check_subject(struct errs *e, size_t i, const Coracle__V1__Subject *s)
{
    const char *kind = s->kind ? s->kind : "";
    if (!s->name || !*s->name)
        admit_err(e, "subjects[%zu].name: Required value", i);
    if (!strcmp(kind, "ServiceAccount")) {
        if (s->apigroup && *s->apigroup)
            admit_err(e,
                      "subjects[%zu].apiGroup: Unsupported value: \"%s\": supported values: \"\"",
                      i, s->apigroup);
    } else if (!strcmp(kind, "User") || !strcmp(kind, "Group")) {
        if (!s->apigroup || strcmp(s->apigroup, "rbac.authorization.k8s.io"))
            admit_err(e,
                      "subjects[%zu].apiGroup: Unsupported value: \"%s\": supported values: "
                      "\"rbac.authorization.k8s.io\"",
                      i, s->apigroup ? s->apigroup : "");
    } else {
        admit_err(e,
                  "subjects[%zu].kind: Unsupported value: \"%s\": supported values: "
                  "\"ServiceAccount\", \"User\", \"Group\"",
                  i, kind);
    }
}

static void check_binding(struct errs *e, const Coracle__V1__RoleBinding *b, bool cluster)
{
    const Coracle__V1__RoleRef *r = b->roleref;
    const char *g = r && r->apigroup ? r->apigroup : "", *k = r && r->kind ? r->kind : "";
    if (strcmp(g, "rbac.authorization.k8s.io"))
        admit_err(e,
                  "roleRef.apiGroup: Unsupported value: \"%s\": supported values: "
                  "\"rbac.authorization.k8s.io\"",
                  g);
    if (cluster && strcmp(k, "ClusterRole"))
        admit_err(e, "roleRef.kind: Unsupported value: \"%s\": supported values: \"ClusterRole\"",
                  k);
    else if (!cluster && strcmp(k, "Role") && strcmp(k, "ClusterRole"))
        admit_err(e,
                  "roleRef.kind: Unsupported value: \"%s\": supported values: \"Role\", "
                  "\"ClusterRole\"",
                  k);
    if (!r || !r->name || !*r->name)
        admit_err(e, "roleRef.name: Required value");
    else if (admit_path_segment_name(r->name))
        admit_err(e, "roleRef.name: Invalid value: \"%s\": %s", r->name,
                  admit_path_segment_name(r->name));
    for (size_t i = 0; i < b->n_subjects; i++)
        check_subject(e, i, b->subjects[i]);
}

void admit_rbac_validate(struct errs *e, const struct kind *k, const ProtobufCMessage *obj)
{
    if (k == &kind_role || k == &kind_clusterrole) {
        const Coracle__V1__Role *r = (const void *)obj;
        for (size_t i = 0; i < r->n_rules; i++)
            check_rule(e, i, r->rules[i], k == &kind_role);
    } else if (k == &kind_rolebinding || k == &kind_clusterrolebinding) {
        check_binding(e, (const void *)obj, k == &kind_clusterrolebinding);
    }
}

static bool same(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

void admit_rbac_update(struct errs *e, const struct kind *k, const ProtobufCMessage *old,
                       const ProtobufCMessage *upd)
{
    if (k != &kind_rolebinding && k != &kind_clusterrolebinding)
        return;
    const Coracle__V1__RoleRef *a = ((const Coracle__V1__RoleBinding *)old)->roleref;
    const Coracle__V1__RoleRef *b = ((const Coracle__V1__RoleBinding *)upd)->roleref;
    if (a && b && same(a->apigroup, b->apigroup) && same(a->kind, b->kind) &&
        same(a->name, b->name))
        return;
    /* as Go's %#v prints it */
    admit_err(
        e,
        "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"%s\", Kind:\"%s\", Name:\"%s\"}: cannot "
        "change roleRef",
        b && b->apigroup ? b->apigroup : "", b && b->kind ? b->kind : "",
        b && b->name ? b->name : "");
}
