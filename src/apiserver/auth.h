/*
 * auth: the first two stages of the request pipeline, authenticate (who is
 * calling: client certificate CN/O, bearer token) and authorize (may they
 * do this verb on this resource), plus the per-user watch cap.
 *
 * Authentication (as Kubernetes does):
 *  - a client certificate verified against --client-ca-file (by the TLS
 *    layer): user = subject CN, groups = subject O values;
 *  - "authorization: Bearer T" with T in --token-auth-file, Kubernetes'
 *    static token CSV: token,user,uid,"group1,group2";
 *  - "authorization: Bearer <id>.<secret>", a bootstrap token: the Secret
 *    kube-system/bootstrap-token-<id> of type bootstrap.kubernetes.io/token
 *    with that token-secret, usage-bootstrap-authentication "true" and an
 *    expiration (RFC 3339) not passed: user system:bootstrap:<id> in
 *    system:bootstrappers and the Secret's auth-extra-groups (read from the
 *    store at each request; auth_set_store);
 *  - every authenticated user is also in group system:authenticated.
 *  With neither a client CA nor a token file configured (the development
 *  mode, allowed on loopback and unix sockets only) every caller is
 *  "system:anonymous" in group system:masters. Otherwise a request with no
 *  identity gets UNAUTHENTICATED "Unauthorized" (/healthz, /readyz and
 *  /metrics are plain HTTP and need none).
 *
 * Authorization: default deny. A request passes when the bootstrap policy
 * file (--authorization-policy-file, format in conf/policy; reloaded by
 * auth_reload on SIGHUP) OR the stored RBAC objects (rbac.h, Kubernetes'
 * rules) allow it. RBAC is on with a policy file or with
 * --authorization-mode naming RBAC. Members of system:masters pass
 * everything. With neither a policy file nor RBAC every authenticated user
 * may do everything (Kubernetes' AlwaysAllow mode). Non-resource requests
 * (/version, /api, /apis discovery, /openapi) are authorized too
 * (auth_authorize_path); /healthz, /readyz and /metrics need no identity.
 * Node restriction (Kubernetes' Node authorizer and NodeRestriction
 * admission) is always on for users "system:node:<name>" in group
 * system:nodes: such a user may write only its own Node and Lease, the
 * status of pods bound to it and their delete, and events; it may read
 * only pods bound to it (list/watch must carry the field selector
 * spec.nodeName=<name>).
 *
 * Denials read like Kubernetes': pods "x" is forbidden: User "bob" cannot
 * get resource "pods" in API group "" in the namespace "default"; they
 * are logged.
 *
 * State (the files' contents and the interned identities) lives in an
 * auth_t that main.c creates and hands to api.c and tunnel.c; call from
 * the event loop only.
 */
#ifndef CORACLE_AUTH_H
#define CORACLE_AUTH_H

#include "h2s.h"
#include "kinds.h"
#include "rbac.h"
#include "store.h"

typedef struct auth auth_t;

/* An identity. The strings live as long as the auth_t (identities are interned). */
struct auth_user {
    const char *name;
    const char *const *groups; /* NULL-terminated */
    void *id;                  /* the interned identity (watch counts) */
    const char *uid;           /* "" when the authenticator gives none (certificates) */
};

struct auth_config {
    int client_ca;          /* TLS listeners verify client certificates (--client-ca-file) */
    const char *token_file; /* --token-auth-file, or NULL */
    const char
        *policy_file; /* --authorization-policy-file, or NULL (allow every authenticated user) */
    unsigned max_watches; /* long-running calls per user (0: 1000) */
    int rbac;             /* authorize from the stored RBAC objects too (auth_set_rbac) */
};

/*
 * Loads the files. Returns 0 and *out (the caller's, auth_free), or -1 with
 * *err (malloc'd, naming file and line). cfg is copied.
 */
int auth_new(const struct auth_config *cfg, auth_t **out, char **err);
/* Re-reads the token and policy files (SIGHUP); on error keeps the old ones. */
int auth_reload(auth_t *au, char **err);
/* Frees au and every identity it interned (after the calls holding them). NULL: no-op. */
void auth_free(auth_t *au);
/*
 * The RBAC index the decisions consult (borrowed: outlives au; NULL: none).
 * Used when the config's rbac is set or a policy file is given.
 */
void auth_set_rbac(auth_t *au, const rbac_t *rb);
/* 1 if the stored RBAC objects take part in the decisions. */
int auth_rbac_on(const auth_t *au);
/* 1 if callers must identify themselves (a client CA or a token file is configured). */
int auth_required(const auth_t *au);

/*
 * Opens one apiserver listener by the transport rules: unix sockets are
 * cleartext; TCP listeners use TLS when tls is set, except loopback
 * addresses when insecure_loopback is set; without TLS (development mode)
 * only loopback addresses are allowed. A non-loopback listener also needs
 * authentication configured in au. Returns 0, or -1 with *err.
 */
int auth_listen(const auth_t *au, h2s_t *srv, const char *addr, struct ssl_ctx_st *tls,
                int insecure_loopback, char **err);

/* The store bootstrap tokens are looked up in (not owned; NULL: none). */
void auth_set_store(auth_t *au, store_t *st);

/* Returns 0 and *u, or -1 with *err (malloc'd) for UNAUTHENTICATED. May intern an identity. */
int auth_authenticate(auth_t *au, h2s_call_t *c, struct auth_user *u, char **err);
/* The same for a REST request (its client certificate or Authorization: Bearer). */
int auth_authenticate_req(auth_t *au, h2s_req_t *r, struct auth_user *u, char **err);
/*
 * Bearer tokens the token file does not know go to fn (service account
 * JWTs, satoken.h): it returns 0 with *name and *groups (malloc'd,
 * NULL-terminated; the identity is interned, system:authenticated added),
 * 1 if the token is not its kind, -1 with *err (malloc'd, logged) if it is
 * invalid. In the development mode (no client CA, no token file) a
 * request with a bearer token is authenticated by it too.
 */
typedef int (*auth_bearer_fn)(void *arg, const char *tok, char **name, char ***groups, char **err);
void auth_set_bearer(auth_t *au, auth_bearer_fn fn, void *arg);
/* The bearer-token part alone: header is the "authorization" value (may be NULL). */
int auth_authenticate_token(const auth_t *au, const char *header, struct auth_user *u, char **err);

/*
 * The coarse check before the request is decoded: may u do verb on
 * resource[/subresource] in some namespace? verb is Kubernetes' ("create",
 * "get", "list", "watch", "update", "delete"). Returns 0, or -1 with *err
 * (malloc'd) for PERMISSION_DENIED.
 */
int auth_authorize(const auth_t *au, const struct auth_user *u, const char *verb,
                   const struct kind *k, const char *subresource, char **err);

/* Everything known about a request once decoded. */
struct auth_attrs {
    const char *verb;
    const struct kind *k;
    const char *subresource;    /* "status", "binding", "log", "exec" or NULL */
    const char *ns;             /* NULL for cluster-scoped kinds and all-namespace lists */
    const char *name;           /* NULL for list/watch/create-with-generateName */
    const char *field_selector; /* list/watch */
    /* pods: spec.nodeName of the stored pod (get, update, delete, log, exec),
     * "" when unbound, NULL when not looked up */
    const char *pod_node;
};
/* The full check (RBAC with namespace and name, node restriction). 0, or -1 with *err.
 * Without the store, a node's read of a ConfigMap or Secret is refused (auth_check allows
 * those its pods use). */
int auth_authorize_attrs(const auth_t *au, const struct auth_user *u, const struct auth_attrs *a,
                         char **err);

/*
 * The decision alone, as RBAC's attributes (a->path set: a non-resource
 * request): system:masters, AlwaysAllow, the policy file (kinds of the
 * table only), the RBAC objects. No node restriction. Returns true if
 * allowed.
 */
bool auth_allows(const auth_t *au, const struct auth_user *u, const struct rbac_attrs *a);
/*
 * auth_allows with the denial: 0, or -1 with *err (malloc'd), Kubernetes'
 * text (`widgets.example.com "w" is forbidden: User "bob" cannot get
 * resource "widgets" in API group "example.com" in the namespace "x"`,
 * `forbidden: User "bob" cannot get path "/apis"`). For resources that are
 * not kinds of the table (a SubjectAccessReview may name any).
 */
int auth_authorize_rbac(const auth_t *au, const struct auth_user *u, const struct rbac_attrs *a,
                        char **err);

/*
 * A non-resource request (GET /version, /api, /apis/apps/v1, /openapi/v2):
 * verb is Kubernetes' lower-case HTTP method ("get", "post"). 0, or -1
 * with *err (malloc'd): Kubernetes' `forbidden: User "bob" cannot get path
 * "/apis"`.
 */
int auth_authorize_path(const auth_t *au, const struct auth_user *u, const char *verb,
                        const char *path, char **err);

/*
 * auth_authorize_attrs for a decoded request, looking the stored pod's
 * spec.nodeName up in st when node restriction needs it (pods: get,
 * update, patch, delete by a node), and for a node's get, list or watch of
 * a ConfigMap or Secret whether a pod bound to it refers to the object
 * (list/watch: the one named by fieldSelector metadata.name=NAME, in a
 * namespace). 0, or -1 with *err for PERMISSION_DENIED.
 * Cheap for everyone else: no store read.
 */
int auth_check(const auth_t *au, const struct auth_user *u, store_t *st, const char *verb,
               const struct kind *k, const char *subresource, const char *ns, const char *name,
               const char *field_selector, char **err);

/*
 * Both stages for a handler outside the API pipeline (the tunnel's
 * Pods/Log, Pods/Exec): authenticates c, runs auth_check, and on failure
 * finishes c with UNAUTHENTICATED or PERMISSION_DENIED and returns -1.
 * u (may be NULL) receives the identity.
 */
int auth_call(auth_t *au, h2s_call_t *c, store_t *st, const char *verb, const struct kind *k,
              const char *subresource, const char *ns, const char *name, struct auth_user *u);

/*
 * One rule of what a user may do, as Kubernetes' PolicyRule. The lists are
 * NULL-terminated and never NULL. A resource rule has api_groups ("" the
 * core group, "*" every group) and resources ("pods", "pods/status",
 * "pods/" "*", "*"), resource_names empty for every name, urls empty; a
 * non-resource rule has urls ("/api", "/apis/" "*", "*") only.
 */
struct auth_rule {
    const char *const *verbs;
    const char *const *api_groups;
    const char *const *resources;
    const char *const *resource_names;
    const char *const *urls;
};
typedef void (*auth_rule_cb)(const struct auth_rule *r, void *arg);
/*
 * Calls cb for each rule that grants u something in namespace ns (NULL or
 * "": the rules that hold in every namespace and for cluster-scoped
 * resources), as Kubernetes' RuleResolver.RulesFor behind
 * SelfSubjectRulesReview (kubectl auth can-i --list). The rules (and their
 * strings) live until cb returns. Every source of grants the authorizer
 * consults lists its rules here: the policy file, the built-in
 * self-review grants and the RBAC objects' Roles and ClusterRoles bound to
 * u. Returns 0, or 1 when the list is incomplete (node restriction narrows
 * what the rules say), with *why (static text).
 */
int auth_rules_for(const auth_t *au, const struct auth_user *u, const char *ns, auth_rule_cb cb,
                   void *arg, const char **why);

/*
 * May u serve node's tunnel (NodeTunnel/Connect)? Masters and the node
 * itself (system:node:<node>) only; 0, or -1 with *err (PERMISSION_DENIED).
 */
int auth_node_tunnel(const auth_t *au, const struct auth_user *u, const char *node, char **err);

/* For h2s_set_inflight_limits: 1 if the gRPC path changes state (Create, Update, Delete, Bind...).
 * Depends on the path alone. */
int auth_is_mutating(const char *path);

/*
 * The per-user cap on watches (auth_config.max_watches): the handler calls
 * h2s_call_claim(call, u->id, auth_max_watches(au)) for each watch. 0 (no
 * cap) in development mode, where every caller is the same anonymous user.
 */
unsigned auth_max_watches(const auth_t *au);

#endif
