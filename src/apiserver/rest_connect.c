/*
 * rest_connect: pods/log, pods/exec and pods/attach over the REST API.
 * See rest_int.h.
 */
#include "config.h"
#include "rest_int.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

bool rest_connect_sub(const char *sub)
{
    static const char *const subs[] = {"log", "exec", "attach"};
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
        if (!strcmp(sub, subs[i]))
            return true;
    return false;
}

void rest_connect(rest_t *rs, h2s_req_t *r, const struct auth_user *u, struct rreq *rq,
                  const struct rquery *q)
{
    rest_set_what(r, RV_CONNECT, rq);
    char *msg = xasprintf("%s on %s/%s is not served yet by this server", h2s_req_method(r),
                          rq->k->resource, rq->sub);
    rest_answer_status(rs, r, 405, "MethodNotAllowed", msg, NULL, NULL);
    free(msg);
}
