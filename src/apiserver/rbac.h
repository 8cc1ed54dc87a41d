/*
 * rbac: the stored rbac.authorization.k8s.io/v1 objects (Role, ClusterRole,
 * RoleBinding, ClusterRoleBinding) as the authorizer reads them, and
 * Kubernetes' rule evaluation (pkg/apis/rbac/v1/evaluation_helpers.go,
 * plugin/pkg/auth/authorizer/rbac).
 *
 * The index is kept in memory and follows the store's change listener
 * (the same feed as the watch hub: on etcd that includes what other
 * apiservers wrote), so a change takes effect on the next call and no
 * call reads the store. Bindings are indexed by subject and namespace:
 * a decision looks up "user NAME" and "group G" for each of the caller's
 * groups, at the cluster scope and in the request's namespace, then
 * walks the bound roles' rules.
 *
 * rbac_boot.c creates Kubernetes' default roles and bindings at start and
 * reconciles them (rbac_boot_*); rbac_admit.c refuses escalation.
 * Loop thread only.
 */
#ifndef CORACLE_RBAC_H
#define CORACLE_RBAC_H

#include <stdbool.h>
#include <stddef.h>

#include "coracle.pb-c.h"
#include "kinds.h"
#include "store.h"

typedef struct rbac rbac_t;

/* One request as RBAC sees it (Kubernetes' authorizer.Attributes). */
struct rbac_attrs {
    const char *verb;  /* "get", "list", "create"..., for non-resource requests "get", "post"... */
    const char *group; /* API group: "" (core), "apps", "rbac.authorization.k8s.io" */
    const char *resource; /* "pods" */
    const char *sub;      /* subresource ("status", "log") or NULL */
    const char *ns;       /* NULL: cluster scope (cluster-scoped kinds, all-namespace lists) */
    const char *name;     /* NULL: none (list, watch, create with generateName) */
    const char *path;     /* set: a non-resource request for this URL path; the above unused */
};

/* The index, filled from a read snapshot of st (empty if st cannot be read yet). */
rbac_t *rbac_new(store_t *st);
void rbac_free(rbac_t *rb);
/* Every committed change (the api's listener); STORE_RESYNC re-reads the store. */
void rbac_on_change(rbac_t *rb, const struct store_change *ch);

/*
 * Whether a role bound to user (name and its NULL-terminated groups) has a
 * rule allowing a: ClusterRoleBindings everywhere, RoleBindings in their
 * namespace.
 */
bool rbac_allows(const rbac_t *rb, const char *user, const char *const *groups,
                 const struct rbac_attrs *a);

typedef void (*rbac_rule_cb)(const Coracle__V1__PolicyRule *r, void *arg);
/*
 * Every rule of the roles bound to the user or one of its groups, at the
 * cluster scope and (ns not NULL or "") in ns: what SelfSubjectRulesReview
 * lists. A rule may come more than once.
 */
void rbac_rules_for(const rbac_t *rb, const char *user, const char *const *groups, const char *ns,
                    rbac_rule_cb cb, void *arg);

/* Kubernetes' RuleAllows: whether rule r allows a. */
bool rbac_rule_allows(const Coracle__V1__PolicyRule *r, const struct rbac_attrs *a);

/* The stored ClusterRole name (borrowed until the next change), or NULL. */
const Coracle__V1__ClusterRole *rbac_cluster_role(const rbac_t *rb, const char *name);
/* The stored Role ns/name (borrowed until the next change), or NULL. */
const Coracle__V1__Role *rbac_role(const rbac_t *rb, const char *ns, const char *name);
/* The stored ClusterRoleBinding name (borrowed until the next change), or NULL. */
const Coracle__V1__ClusterRoleBinding *rbac_cluster_binding(const rbac_t *rb, const char *name);

/*
 * Kubernetes' CompactString of a rule: {APIGroups:["apps"], Resources:["deployments"],
 * Verbs:["get" "list"]} (only the fields set, in the order APIGroups, Resources,
 * NonResourceURLs, ResourceNames, Verbs). malloc'd.
 */
char *rbac_rule_string(const Coracle__V1__PolicyRule *r);

/*
 * Kubernetes' Covers, as a list: every atomic request the rules grant
 * (verb x apiGroup x resource x resourceName, verb x nonResourceURL),
 * asked of held(a, arg) with a's namespace ns; those not held, verbs
 * merged (CompactRules), each as rbac_rule_string, sorted, one a line.
 * NULL if all are held, else malloc'd.
 */
char *rbac_rules_missing(Coracle__V1__PolicyRule *const *rules, size_t n, const char *ns,
                         bool (*held)(const struct rbac_attrs *a, void *arg), void *arg);
/* Whether the owner's rules cover rule r (each atom r grants, some owner rule grants). */
bool rbac_rules_cover(Coracle__V1__PolicyRule *const *owner, size_t n,
                      const Coracle__V1__PolicyRule *r);

/*
 * Escalation prevention (Kubernetes' pkg/registry/rbac): may u create or
 * update obj, a Role, ClusterRole, RoleBinding or ClusterRoleBinding (kind
 * k)? A role's rules must all be held by u (auth_allows) unless u may
 * `escalate` it; a binding needs u to hold its role's rules unless u may
 * `bind` that role; an aggregationRule needs every right. 0, or -1 with
 * *code (a gRPC code: PERMISSION_DENIED, NOT_FOUND) and *msg (malloc'd,
 * Kubernetes' text). Other kinds: 0.
 */
struct auth;
struct auth_user;
int rbac_admit(const rbac_t *rb, const struct auth *au, const struct auth_user *u,
               const struct kind *k, const ProtobufCMessage *obj, int *code, char **msg);

/* ---- default roles (rbac_boot.c) ---- */

/* The writes the reconciler makes, as internal ops (their errors are only logged). */
struct rbac_boot_ops {
    /* Create obj (taken) of kind k. */
    void (*create)(void *arg, const struct kind *k, ProtobufCMessage *obj);
    /* Update obj (taken, the stored object changed; its resourceVersion a precondition). */
    void (*update)(void *arg, const struct kind *k, ProtobufCMessage *obj);
    void *arg;
};

/*
 * Creates Kubernetes' default ClusterRoles and ClusterRoleBindings (and
 * coracle's daemons' own) that are missing from rb, and reconciles those
 * present, as kube-apiserver's rbac/bootstrap-roles post-start hook: a
 * role missing some of the default rules gets them added back, a binding
 * its default subjects, labels and annotations are merged; unless the
 * object is annotated rbac.authorization.kubernetes.io/autoupdate: "false".
 * Returns the number of writes made (0: everything was in place).
 */
int rbac_boot_reconcile(const rbac_t *rb, const struct rbac_boot_ops *ops);

#endif
