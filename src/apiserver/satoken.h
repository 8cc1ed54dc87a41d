/*
 * satoken: ServiceAccount tokens, as kube-apiserver makes and checks them.
 *  - TokenRequest (authentication.k8s.io/v1, serviceaccounts/NAME/token):
 *    a JWT signed with --service-account-signing-key-file (RS256 or ES256)
 *    for system:serviceaccount:NS:NAME, issued by the first
 *    --service-account-issuer, for spec.audiences (default
 *    --api-audiences), expiring after spec.expirationSeconds (default 1 h,
 *    at most --service-account-max-token-expiration), optionally bound to
 *    a Pod (and through it its Node): the claims Kubernetes writes.
 *  - Authentication of bearer JWTs: signature by one of
 *    --service-account-key-file's keys (the key decides the algorithm; the
 *    key id must match), issuer one of --service-account-issuer, audience
 *    one of --api-audiences, exp and nbf with 60 s of leeway, and the
 *    ServiceAccount (same uid) and bound Pod (same uid, not deleted more
 *    than 60 s ago) still in the store: two reads by key.
 *  - The OpenID discovery documents (/.well-known/openid-configuration,
 *    /openid/v1/jwks).
 *  - The ServiceAccount admission plugin for pods (satoken_admit_pod).
 * Loop thread only; reads go to the apiserver's own store.
 */
#ifndef CORACLE_SATOKEN_H
#define CORACLE_SATOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "h2s.h"
#include "store.h"

typedef struct satoken satoken_t;

struct satoken_config {
    const char *const *issuers; /* --service-account-issuer; the first signs */
    size_t n_issuers;
    const char *const *key_files; /* --service-account-key-file: verification keys */
    size_t n_key_files;
    const char *signing_key_file; /* --service-account-signing-key-file, or NULL */
    const char *const *audiences; /* --api-audiences; none: the issuers */
    size_t n_audiences;
    int64_t max_expiration_s; /* --service-account-max-token-expiration; 0: none */
    const char *jwks_uri;     /* --service-account-jwks-uri, or NULL */
};

/*
 * Loads the keys. Returns 0 and *out (satoken_free), or -1 with *err
 * (malloc'd). With no issuer configured *out is NULL: no tokens are
 * issued or accepted and the documents are not served. st is borrowed.
 */
int satoken_new(const struct satoken_config *cfg, store_t *st, satoken_t **out, char **err);
void satoken_free(satoken_t *s);
/* Whether TokenRequests can be served (a signing key is configured). */
bool satoken_issuing(const satoken_t *s);

/*
 * auth's bearer hook (auth_set_bearer): tok is a bearer token the static
 * file does not know. Returns 1 if it is not one of ours (not a JWT, or
 * another issuer's), 0 with *name and *groups (malloc'd; groups
 * NULL-terminated) for a valid token, -1 with *err (malloc'd, for the
 * log) for an invalid one.
 */
int satoken_authenticate(void *s, const char *tok, char **name, char ***groups, char **err);

/* A refusal, for both APIs: gRPC code, HTTP status and reason, message (malloc'd). */
struct satoken_err {
    int code;
    int http;
    const char *reason;
    char *msg;
};

/*
 * Serves a TokenRequest for ServiceAccount ns/name by user u (already
 * authorized for create serviceaccounts/token): checks and defaults
 * req->spec, applies node restriction (a node gets tokens only bound to a
 * pod on it that runs as this ServiceAccount), fills req->metadata and
 * req->status. 0, or -1 with *e (Kubernetes' texts). The token is never
 * logged.
 */
int satoken_request(satoken_t *s, const struct auth_user *u, const char *ns, const char *name,
                    Coracle__V1__TokenRequest *req, struct satoken_err *e);

/* Registers /coracle.v1.ServiceAccounts/CreateToken on srv (authenticated and authorized by au). */
void satoken_register(satoken_t *s, h2s_t *srv, auth_t *au);

/*
 * The discovery documents: the body (malloc'd, JSON) for path, or NULL if
 * path is neither /.well-known/openid-configuration nor /openid/v1/jwks
 * (or s is NULL).
 */
char *satoken_discovery(const satoken_t *s, const char *path);
/* Whether path is one of the discovery documents' (served or not). */
bool satoken_discovery_path(const char *path);

/*
 * The ServiceAccount admission plugin on a pod being created (ns: its
 * namespace): spec.serviceAccountName defaults to "default" (and
 * serviceAccount, its deprecated alias, is kept equal); the ServiceAccount
 * must exist; unless automountServiceAccountToken (the pod's, else the
 * ServiceAccount's) is false, the kube-api-access-XXXXX projected volume
 * and its mount at /var/run/secrets/kubernetes.io/serviceaccount in every
 * container are added, as Kubernetes does. 0, or -1 with *e.
 */
int satoken_admit_pod(satoken_t *s, Coracle__V1__Pod *pod, const char *ns, struct satoken_err *e);

#endif
