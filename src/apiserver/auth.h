/*
 * auth: the first two stages of the request pipeline, authenticate (who is
 * calling: client certificate CN/O, bearer token) and authorize (may they
 * do this verb on this resource). For now every caller is the anonymous
 * member of system:masters and everything is allowed; the TLS/RBAC issue
 * fills these in without touching the handlers.
 */
#ifndef CORACLE_AUTH_H
#define CORACLE_AUTH_H

#include "h2s.h"
#include "kinds.h"

struct auth_user {
    const char *name;
    const char *const *groups; /* NULL-terminated */
};

/* Returns 0 and *u, or -1 with *err (malloc'd) for UNAUTHENTICATED. */
int auth_authenticate(h2s_call_t *c, struct auth_user *u, char **err);
/* verb is Kubernetes' ("create", "get", "list", "watch", "update", "delete", ...).
 * Returns 0, or -1 with *err (malloc'd) for PERMISSION_DENIED. */
int auth_authorize(const struct auth_user *u, const char *verb, const struct kind *k,
                   const char *subresource, char **err);

#endif
