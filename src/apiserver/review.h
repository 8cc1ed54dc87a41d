/*
 * review: the answers of the virtual kinds (kinds.h's kind_virtual), which
 * are created and never stored: the access reviews (SelfSubjectAccessReview,
 * SubjectAccessReview, LocalSubjectAccessReview: may this user do that?),
 * SelfSubjectRulesReview (what may I do in this namespace?) and
 * SelfSubjectReview (who am I?). Both APIs decode the request object,
 * authorize create on its kind as for any create, then call review_answer,
 * which fills the object's status from the very functions that decide real
 * calls (auth_check, auth_authorize_path, auth_rules_for), so an answer is
 * what the call it describes would get. Loop thread only.
 */
#ifndef CORACLE_REVIEW_H
#define CORACLE_REVIEW_H

#include "auth.h"
#include "kinds.h"
#include "store.h"

/*
 * Fills obj's status (obj: a message of k, a virtual kind, created by u;
 * ns: the request path's namespace for a namespaced kind, else NULL).
 * st is where node restriction looks pods up (may be NULL). Returns 0, or
 * a gRPC code (GRPC_INVALID_ARGUMENT: Kubernetes' Invalid text naming the
 * field, "... is invalid: ..."; GRPC_FAILED_PRECONDITION for its
 * BadRequest) with *msg (malloc'd).
 */
int review_answer(const auth_t *au, store_t *st, const struct auth_user *u, const struct kind *k,
                  const char *ns, ProtobufCMessage *obj, char **msg);

#endif
