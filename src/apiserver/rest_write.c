/*
 * rest_write: the REST API's write verbs (create, update, patch, delete,
 * deletecollection). See rest_int.h.
 */
#include "config.h"
#include "rest_int.h"
#include "util.h"

#include <stdlib.h>

void rest_write(rest_t *rs, h2s_req_t *r, const struct auth_user *u, struct rreq *rq,
                const struct rquery *q)
{
    char *msg = xasprintf("%s on %s%s%s is not served yet by this server", h2s_req_method(r),
                          rq->k->resource, rq->sub ? "/" : "", rq->sub ? rq->sub : "");
    rest_answer_status(rs, r, 405, "MethodNotAllowed", msg, NULL, NULL);
    free(msg);
}
