/*
 * rest_token: the REST side of ServiceAccount tokens (satoken.h): POST
 * serviceaccounts/NAME/token with an authentication.k8s.io/v1
 * TokenRequest (what `kubectl create token` sends), answered 201 with the
 * request, its spec defaulted and its status holding the token; and the
 * OpenID discovery documents. See rest_int.h.
 */
#include "config.h"
#include "rest_int.h"
#include "kobj.h"
#include "obj.h"
#include "satoken.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define TR_KIND "TokenRequest"
#define TR_API_VERSION "authentication.k8s.io/v1"

/* The TokenRequest as JSON, kind and apiVersion first as every object has them. malloc'd. */
static char *token_request_json(const Coracle__V1__TokenRequest *tr)
{
    char *bare = kobj_emit(NULL, &tr->base, KOBJ_FMT_JSON_COMPACT);
    char *j = xconcat("{\"kind\":\"" TR_KIND "\",\"apiVersion\":\"" TR_API_VERSION "\"",
                      bare[1] == '}' ? "" : ",", bare + 1, NULL);
    free(bare);
    return j;
}

void rest_token(rest_t *rs, h2s_req_t *r, const struct auth_user *u, const struct rreq *rq)
{
    rest_set_what(r, RV_CREATE, rq);
    if (strcmp(h2s_req_method(r), "POST")) {
        rest_answer_status(rs, r, 405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", NULL,
                           NULL);
        return;
    }
    char *err = NULL;
    if (auth_check(rs->cfg.auth, u, rs->cfg.st, "create", rq->k, "token", rq->ns, rq->name, NULL,
                   &err) < 0) {
        rest_answer_status(rs, r, 403, "Forbidden", err ? err : "forbidden", rq->k, rq->name);
        free(err);
        return;
    }
    size_t len;
    const uint8_t *body = h2s_req_body(r, &len);
    char *media = rest_media_type(h2s_req_header(r, "content-type"));
    struct kobj_opts ko = {0};
    struct rest_err e;
    ProtobufCMessage *m =
        rest_body_decode(media, body, len, &coracle__v1__token_request__descriptor, TR_KIND,
                         TR_API_VERSION, KOBJ_FIELDS_STRICT, &ko, &e);
    kobj_opts_free(&ko);
    free(media);
    if (!m) {
        rest_answer_status(rs, r, e.status, e.reason, e.msg, NULL, NULL);
        free(e.msg);
        return;
    }
    struct satoken_err se;
    if (satoken_request(rs->cfg.sat, u, rq->ns ? rq->ns : "default", rq->name, (void *)m, &se) <
        0) {
        rest_answer_status(rs, r, se.http, se.reason, se.msg, rq->k, rq->name);
        free(se.msg);
    } else {
        char *j = token_request_json((void *)m);
        rest_answer_json(rs, r, 201, j, strlen(j));
        free(j);
    }
    obj_free(m);
}

bool rest_oidc(rest_t *rs, h2s_req_t *r)
{
    const char *path = h2s_req_path(r);
    char *doc = satoken_discovery(rs->cfg.sat, path);
    if (!doc)
        return false;
    rest_set_what(r, RV_DISCOVERY, NULL);
    if (strcmp(h2s_req_method(r), "GET") && strcmp(h2s_req_method(r), "HEAD")) {
        rest_answer_status(rs, r, 405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", NULL,
                           NULL);
    } else {
        bool jwks = !strcmp(path, "/openid/v1/jwks");
        h2s_req_add_header(r, "cache-control", "public, max-age=3600");
        rest_count(rs, r, 200); /* before the answer, which frees r */
        h2s_req_respond(r, 200, jwks ? "application/jwk-set+json" : "application/json", doc,
                        strlen(doc));
    }
    free(doc);
    return true;
}
