/*
 * satoken: ServiceAccount tokens (TokenRequest, JWT authentication, the
 * OpenID discovery documents) and the ServiceAccount admission plugin.
 * See satoken.h. Kubernetes' references: pkg/serviceaccount (claims.go,
 * jwt.go, openidmetadata.go), pkg/registry/core/serviceaccount/storage
 * (token.go) and plugin/pkg/admission/serviceaccount.
 */
#include "config.h"
#include "satoken.h"
#include "buf.h"
#include "grpc.h"
#include "json.h"
#include "jwt.h"
#include "kinds.h"
#include "obj.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define LEEWAY_S 60             /* exp, nbf, iat, deleted pods: as go-jose's DefaultLeeway */
#define DEFAULT_EXPIRATION 3600 /* TokenRequest spec.expirationSeconds */
#define MIN_EXPIRATION 600      /* "may not specify a duration less than 10 minutes" */
#define MAX_EXPIRATION (1LL << 32)
#define SA_PREFIX "system:serviceaccount:"
#define TOKEN_MOUNT "/var/run/secrets/kubernetes.io/serviceaccount"

struct satoken {
    char **issuers;
    size_t n_issuers;
    char **auds;
    size_t n_auds;
    jwt_key_t **keys; /* verification */
    size_t n_keys;
    jwt_key_t *signer; /* NULL: no TokenRequest */
    int64_t max_exp;
    store_t *st;
    char *oidc, *jwks; /* the discovery documents, or NULL when not served */
};

/* ---------------------------------------------------------------- setup */

static char **strv_copy(const char *const *v, size_t n)
{
    char **c = xcalloc(n + 1, sizeof(*c));
    for (size_t i = 0; i < n; i++)
        c[i] = xstrdup(v[i]);
    return c;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int load_keys(satoken_t *s, const struct satoken_config *cfg, char **err)
{
    if (cfg->signing_key_file && jwt_key_load_private(cfg->signing_key_file, &s->signer, err) < 0)
        return -1;
    const char *const *files = cfg->key_files;
    size_t nf = cfg->n_key_files;
    if (!nf && cfg->signing_key_file) { /* as kube-apiserver: the signing key verifies too */
        files = &cfg->signing_key_file;
        nf = 1;
    }
    for (size_t i = 0; i < nf; i++) {
        jwt_key_t **k;
        size_t n;
        if (jwt_keys_load(files[i], &k, &n, err) < 0)
            return -1;
        s->keys = xrealloc(s->keys, (s->n_keys + n) * sizeof(*s->keys));
        memcpy(s->keys + s->n_keys, k, n * sizeof(*k));
        s->n_keys += n;
        free(k);
    }
    if (!s->n_keys) {
        *err = xstrdup("--service-account-issuer needs --service-account-key-file or "
                       "--service-account-signing-key-file");
        return -1;
    }
    return 0;
}

/* The algorithms of the verification keys, sorted, as a JSON array's members. */
static void algs_json(const satoken_t *s, struct buf *b)
{
    static const char *const algs[] = {"ES256", "RS256"};
    int first = 1;
    for (size_t a = 0; a < ARRAY_SIZE(algs); a++) {
        for (size_t i = 0; i < s->n_keys; i++) {
            if (strcmp(jwt_key_alg(s->keys[i]), algs[a]))
                continue;
            buf_printf(b, "%s\"%s\"", first ? "" : ",", algs[a]);
            first = 0;
            break;
        }
    }
}

/*
 * The documents, when the issuer is an https URL (Kubernetes serves them
 * only then). The JWKS URI defaults to the issuer's origin.
 */
static void make_docs(satoken_t *s, const char *jwks_uri)
{
    const char *iss = s->issuers[0];
    if (strncmp(iss, "https://", 8) != 0) {
        log_info("service account issuer %s is not an https URL: the OpenID discovery "
                 "documents are not served",
                 iss);
        return;
    }
    struct buf b = {0};
    buf_puts(&b, "{\"keys\":[");
    for (size_t i = 0; i < s->n_keys; i++) {
        char *j = jwt_key_jwk(s->keys[i]);
        buf_printf(&b, "%s%s", i ? "," : "", j);
        free(j);
    }
    buf_puts(&b, "]}");
    s->jwks = buf_take(&b);
    char *uri = jwks_uri && *jwks_uri
                    ? xstrdup(jwks_uri)
                    : xasprintf("%.*s/openid/v1/jwks", (int)(8 + strcspn(iss + 8, "/?#")), iss);
    char *qi = json_quote(iss), *qu = json_quote(uri);
    buf_printf(&b,
               "{\"issuer\":%s,\"jwks_uri\":%s,\"response_types_supported\":[\"id_token\"],"
               "\"subject_types_supported\":[\"public\"],"
               "\"id_token_signing_alg_values_supported\":[",
               qi, qu);
    algs_json(s, &b);
    buf_puts(&b, "]}");
    s->oidc = buf_take(&b);
    free(qi);
    free(qu);
    free(uri);
}

int satoken_new(const struct satoken_config *cfg, store_t *st, satoken_t **out, char **err)
{
    *out = NULL;
    *err = NULL;
    if (!cfg->n_issuers) {
        if (cfg->signing_key_file || cfg->n_key_files) {
            *err = xstrdup("--service-account-issuer is required with service account keys");
            return -1;
        }
        return 0;
    }
    satoken_t *s = xcalloc(1, sizeof(*s));
    s->st = st;
    s->issuers = strv_copy(cfg->issuers, cfg->n_issuers);
    s->n_issuers = cfg->n_issuers;
    s->auds = cfg->n_audiences ? strv_copy(cfg->audiences, cfg->n_audiences)
                               : strv_copy(cfg->issuers, cfg->n_issuers);
    s->n_auds = cfg->n_audiences ? cfg->n_audiences : cfg->n_issuers;
    s->max_exp = cfg->max_expiration_s;
    if (load_keys(s, cfg, err) < 0) {
        satoken_free(s);
        return -1;
    }
    make_docs(s, cfg->jwks_uri);
    log_info("service account tokens: issuer %s, %zu verification key(s)%s", s->issuers[0],
             s->n_keys, s->signer ? ", signing" : ", no signing key (TokenRequest off)");
    *out = s;
    return 0;
}

void satoken_free(satoken_t *s)
{
    if (!s)
        return;
    strv_free(s->issuers);
    strv_free(s->auds);
    for (size_t i = 0; i < s->n_keys; i++)
        jwt_key_free(s->keys[i]);
    free(s->keys);
    jwt_key_free(s->signer);
    free(s->oidc);
    free(s->jwks);
    free(s);
}

bool satoken_issuing(const satoken_t *s)
{
    return s && s->signer;
}

bool satoken_discovery_path(const char *path)
{
    return !strcmp(path, "/.well-known/openid-configuration") || !strcmp(path, "/openid/v1/jwks");
}

char *satoken_discovery(const satoken_t *s, const char *path)
{
    if (!s)
        return NULL;
    if (!strcmp(path, "/.well-known/openid-configuration") && s->oidc)
        return xstrdup(s->oidc);
    if (!strcmp(path, "/openid/v1/jwks") && s->jwks)
        return xstrdup(s->jwks);
    return NULL;
}

/* ---------------------------------------------------------------- store reads */

/* The stored object ns/name of k, decoded (obj_free), or NULL. */
static ProtobufCMessage *stored(const satoken_t *s, const struct kind *k, const char *ns,
                                const char *name)
{
    store_rtxn_t *t;
    if (!name || !*name || store_read_begin(s->st, &t) < 0)
        return NULL;
    char *key = kind_key(k, ns ? ns : "", name);
    const void *v;
    size_t vl;
    ProtobufCMessage *m = NULL;
    if (store_get(t, key, strlen(key), &v, &vl) == 0)
        m = obj_decode(k->desc, v, vl);
    store_read_end(t);
    free(key);
    return m;
}

static const char *uid_of(ProtobufCMessage *m)
{
    Coracle__V1__ObjectMeta *md = m ? obj_meta(m) : NULL;
    return md && md->uid ? md->uid : "";
}

/* ---------------------------------------------------------------- claims */

struct claims {
    const char *ns, *sa, *sa_uid;
    const char *pod, *pod_uid, *secret, *secret_uid, *node, *node_uid;
    char *const *auds;
    size_t n_auds;
    int64_t iat, exp;
};

static void ref_json(struct buf *b, const char *key, const char *name, const char *uid)
{
    char *qn = json_quote(name), *qu = json_quote(uid ? uid : "");
    buf_printf(b, ",\"%s\":{\"name\":%s", key, qn);
    if (uid && *uid)
        buf_printf(b, ",\"uid\":%s", qu);
    buf_puts(b, "}");
    free(qn);
    free(qu);
}

/* The claims as Kubernetes writes them (go-jose: members in name order). malloc'd. */
static char *claims_json(const satoken_t *s, const struct claims *c)
{
    struct buf b = {0};
    buf_puts(&b, "{\"aud\":[");
    for (size_t i = 0; i < c->n_auds; i++) {
        char *q = json_quote(c->auds[i]);
        buf_printf(&b, "%s%s", i ? "," : "", q);
        free(q);
    }
    char jti[37];
    uuid_v4(jti);
    char *iss = json_quote(s->issuers[0]), *ns = json_quote(c->ns);
    buf_printf(&b,
               "],\"exp\":%lld,\"iat\":%lld,\"iss\":%s,\"jti\":\"%s\",\"kubernetes.io\":{"
               "\"namespace\":%s",
               (long long)c->exp, (long long)c->iat, iss, jti, ns);
    if (c->node)
        ref_json(&b, "node", c->node, c->node_uid);
    if (c->pod)
        ref_json(&b, "pod", c->pod, c->pod_uid);
    if (c->secret)
        ref_json(&b, "secret", c->secret, c->secret_uid);
    ref_json(&b, "serviceaccount", c->sa, c->sa_uid);
    char *sub = xasprintf(SA_PREFIX "%s:%s", c->ns, c->sa);
    char *qs = json_quote(sub);
    buf_printf(&b, "},\"nbf\":%lld,\"sub\":%s}", (long long)c->iat, qs);
    free(qs);
    free(sub);
    free(iss);
    free(ns);
    return buf_take(&b);
}

/* ---------------------------------------------------------------- authenticate */

static bool in_strv(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (!strcmp(v[i], s))
            return true;
    return false;
}

/* Whether the aud claim (a string or an array of strings) names one of auds. */
static bool aud_ok(const satoken_t *s, const json_t *aud)
{
    if (json_is(aud, JSON_STRING))
        return in_strv(s->auds, s->n_auds, json_str(aud));
    for (size_t i = 0; json_is(aud, JSON_ARRAY) && i < aud->n; i++)
        if (in_strv(s->auds, s->n_auds, json_str(aud->kids[i])))
            return true;
    return false;
}

/* exp, nbf, iat against now with the leeway: NULL or why not (static). */
static const char *times_bad(const json_t *claims, int64_t now)
{
    int64_t exp, nbf, iat;
    json_t *je = json_get(claims, "exp"), *jn = json_get(claims, "nbf"),
           *ji = json_get(claims, "iat");
    if (!je || json_int64(je, &exp) < 0)
        return "no expiration";
    if (now > exp + LEEWAY_S)
        return "service account token has expired";
    if (jn && (json_int64(jn, &nbf) < 0 || now < nbf - LEEWAY_S))
        return "service account token is not valid yet";
    if (ji && (json_int64(ji, &iat) < 0 || now < iat - LEEWAY_S))
        return "service account token is issued in the future";
    return NULL;
}

/* A name/uid reference of the kubernetes.io claim. */
static int claim_ref(const json_t *kio, const char *key, const char **name, const char **uid)
{
    json_t *r = json_get(kio, key);
    *name = json_str(json_get(r, "name"));
    *uid = json_str(json_get(r, "uid"));
    return r ? 0 : -1;
}

/* The bound object still exists with the token's uid (pods: not deleted long ago). */
static const char *bound_gone(const satoken_t *s, const struct kind *k, const char *ns,
                              const char *name, const char *uid, int64_t now)
{
    ProtobufCMessage *m = stored(s, k, k->namespaced ? ns : NULL, name);
    const char *why = NULL;
    if (!m || !uid || strcmp(uid_of(m), uid))
        why = "the object the token is bound to no longer exists";
    else if (k == &kind_pod && obj_meta(m)->deletiontimestamp &&
             obj_time_ns(obj_meta(m)->deletiontimestamp) / 1000000000 < now - LEEWAY_S)
        why = "the pod the token is bound to is being deleted";
    obj_free(m);
    return why;
}

/* The store's part: NULL, or why the token no longer holds (static). */
static const char *still_valid(const satoken_t *s, const json_t *kio, const char *ns,
                               const char *sa, int64_t now)
{
    const char *name, *uid, *why = NULL;
    claim_ref(kio, "serviceaccount", &name, &uid);
    ProtobufCMessage *m = stored(s, &kind_serviceaccount, ns, sa);
    if (!m || !uid || strcmp(uid_of(m), uid))
        why = "the service account no longer exists";
    obj_free(m);
    if (!why && claim_ref(kio, "pod", &name, &uid) == 0)
        why = bound_gone(s, &kind_pod, ns, name, uid, now);
    else if (!why && claim_ref(kio, "secret", &name, &uid) == 0)
        why = bound_gone(s, &kind_secret, ns, name, uid, now);
    else if (!why && claim_ref(kio, "node", &name, &uid) == 0)
        why = bound_gone(s, &kind_node, NULL, name, uid, now);
    return why;
}

/* The claims' identity and validity; NULL with *ns and *sa, or why not. */
static const char *check_claims(const satoken_t *s, const json_t *c, const char **ns,
                                const char **sa)
{
    int64_t now = now_ns() / 1000000000;
    const char *why = times_bad(c, now);
    if (why)
        return why;
    if (!aud_ok(s, json_get(c, "aud")))
        return "token audiences are not the apiserver's";
    json_t *kio = json_get(c, "kubernetes.io");
    const char *uid;
    *ns = json_str(json_get(kio, "namespace"));
    if (!*ns || !**ns || claim_ref(kio, "serviceaccount", sa, &uid) < 0 || !*sa || !**sa)
        return "token has no namespace or service account";
    const char *sub = json_str(json_get(c, "sub"));
    size_t pl = strlen(SA_PREFIX), nl = strlen(*ns);
    if (!sub || strncmp(sub, SA_PREFIX, pl) || strncmp(sub + pl, *ns, nl) || sub[pl + nl] != ':' ||
        strcmp(sub + pl + nl + 1, *sa))
        return "token subject is not its service account";
    return still_valid(s, kio, *ns, *sa, now);
}

int satoken_authenticate(void *arg, const char *tok, char **name, char ***groups, char **err)
{
    satoken_t *s = arg;
    *err = NULL;
    struct jwt t;
    char *perr = NULL;
    if (jwt_parse(tok, strlen(tok), &t, &perr) < 0) {
        free(perr);
        return 1;
    }
    const char *iss = json_str(json_get(t.claims, "iss"));
    if (!in_strv(s->issuers, s->n_issuers, iss)) {
        jwt_clear(&t);
        return 1;
    }
    const char *ns, *sa, *why = NULL;
    if (jwt_verify(&t, s->keys, s->n_keys, err) < 0) {
        jwt_clear(&t);
        return -1;
    }
    if ((why = check_claims(s, t.claims, &ns, &sa))) {
        *err = xstrdup(why);
        jwt_clear(&t);
        return -1;
    }
    *name = xasprintf(SA_PREFIX "%s:%s", ns, sa);
    *groups = xcalloc(3, sizeof(char *));
    (*groups)[0] = xstrdup("system:serviceaccounts");
    (*groups)[1] = xasprintf("system:serviceaccounts:%s", ns);
    jwt_clear(&t);
    return 0;
}

/* ---------------------------------------------------------------- TokenRequest */

static int fail(struct satoken_err *e, int code, int http, const char *reason, char *msg)
{
    e->code = code;
    e->http = http;
    e->reason = reason;
    e->msg = msg;
    return -1;
}

/* The node a user is (system:node:NAME in group system:nodes), or NULL. */
static const char *node_user(const struct auth_user *u)
{
    static const char pfx[] = "system:node:";
    if (strncmp(u->name, pfx, sizeof(pfx) - 1))
        return NULL;
    for (size_t i = 0; u->groups && u->groups[i]; i++)
        if (!strcmp(u->groups[i], "system:nodes"))
            return u->name + sizeof(pfx) - 1;
    return NULL;
}

/* spec.expirationSeconds defaulted and checked (Kubernetes' ValidateTokenRequest). */
static int check_expiration(Coracle__V1__TokenRequestSpec *sp, const char *name,
                            struct satoken_err *e)
{
    if (!sp->has_expirationseconds) {
        sp->has_expirationseconds = 1;
        sp->expirationseconds = DEFAULT_EXPIRATION;
    }
    const char *why = sp->expirationseconds < MIN_EXPIRATION
                          ? "may not specify a duration less than 10 minutes"
                      : sp->expirationseconds > MAX_EXPIRATION
                          ? "may not specify a duration larger than 2^32 seconds"
                          : NULL;
    if (!why)
        return 0;
    return fail(e, GRPC_INVALID_ARGUMENT, 422, "Invalid",
                xasprintf("TokenRequest.authentication.k8s.io \"%s\" is invalid: "
                          "spec.expirationSeconds: Invalid value: %lld: %s",
                          name, (long long)sp->expirationseconds, why));
}

/* NodeRestriction for a node's TokenRequest: NULL or why not (static). */
static const char *node_refused(const char *node, const Coracle__V1__BoundObjectReference *ref,
                                const Coracle__V1__Pod *pod)
{
    if (!ref || !ref->kind || strcmp(ref->kind, "Pod"))
        return "node requested token not bound to a pod";
    if (!ref->uid || !*ref->uid)
        return "node requested token with a pod binding without a uid";
    if (!pod)
        return "node requested token bound to a pod that does not exist";
    const char *pn = obj_pod_node(&pod->base);
    if (!pn || strcmp(pn, node))
        return "node requested token bound to a pod scheduled on a different node";
    return NULL;
}

/*
 * The bound object of the request, into c (its names borrow from *held,
 * which the caller frees). 0, or -1 with *e.
 */
static int bind_object(satoken_t *s, const struct auth_user *u, const char *ns, const char *sa,
                       const Coracle__V1__BoundObjectReference *ref, struct claims *c,
                       ProtobufCMessage **held, ProtobufCMessage **node_held, struct satoken_err *e)
{
    const char *node = node_user(u);
    const char *kind = ref && ref->kind ? ref->kind : "";
    const char *av = ref && ref->apiversion ? ref->apiversion : "";
    const struct kind *k = !strcmp(kind, "Pod")      ? &kind_pod
                           : !strcmp(kind, "Secret") ? &kind_secret
                           : !strcmp(kind, "Node")   ? &kind_node
                                                     : NULL;
    if (ref && (!k || strcmp(av, "v1")))
        return fail(e, GRPC_INVALID_ARGUMENT, 400, "BadRequest",
                    xasprintf("cannot bind token to object of type %s%s, Kind=%s",
                              strchr(av, '/') ? "" : "/", av, kind));
    *held = ref ? stored(s, k, k->namespaced ? ns : NULL, ref->name) : NULL;
    const char *why = node ? node_refused(node, ref, k == &kind_pod ? (void *)*held : NULL) : NULL;
    if (why)
        return fail(e, GRPC_PERMISSION_DENIED, 403, "Forbidden",
                    xasprintf("serviceaccounts \"%s\" is forbidden: %s", sa, why));
    if (!ref)
        return 0;
    if (!*held)
        return fail(e, GRPC_NOT_FOUND, 404, "NotFound",
                    xasprintf("%s \"%s\" not found", k->resource, ref->name ? ref->name : ""));
    const char *uid = uid_of(*held);
    if (ref->uid && *ref->uid && strcmp(ref->uid, uid))
        return fail(e, GRPC_ABORTED, 409, "Conflict",
                    xasprintf("Operation cannot be fulfilled on %s \"%s\": the UID in the bound "
                              "object reference (%s) does not match the UID in record. The "
                              "object might have been deleted and then recreated",
                              kind, ref->name, ref->uid));
    if (k == &kind_pod) {
        const Coracle__V1__Pod *pod = (const void *)*held;
        const char *psa =
            pod->spec && pod->spec->serviceaccountname ? pod->spec->serviceaccountname : "";
        if (strcmp(psa, sa))
            return fail(e, GRPC_INVALID_ARGUMENT, 400, "BadRequest",
                        xasprintf("cannot bind token for serviceaccount \"%s\" to pod running "
                                  "with different serviceaccount name.",
                                  sa));
        c->pod = ref->name;
        c->pod_uid = uid;
        const char *pn = obj_pod_node(&pod->base);
        if (pn && *pn) { /* the node claim: informational for a pod-bound token */
            *node_held = stored(s, &kind_node, NULL, pn);
            c->node = pn;
            c->node_uid = *node_held ? uid_of(*node_held) : NULL;
        }
    } else if (k == &kind_secret) {
        c->secret = ref->name;
        c->secret_uid = uid;
    } else {
        c->node = ref->name;
        c->node_uid = uid;
    }
    return 0;
}

/* Fills in req's metadata, spec and status once everything is checked. */
static void answer(Coracle__V1__TokenRequest *req, const char *ns, const char *name, char *tok,
                   int64_t exp)
{
    if (!req->metadata) {
        req->metadata = xmalloc(sizeof(*req->metadata));
        coracle__v1__object_meta__init(req->metadata);
    }
    obj_set_str(&req->metadata->name, name);
    obj_set_str(&req->metadata->namespace_, ns);
    if (!req->status) {
        req->status = xmalloc(sizeof(*req->status));
        coracle__v1__token_request_status__init(req->status);
    }
    free(req->status->token);
    req->status->token = tok;
    if (req->status->expirationtimestamp)
        obj_free(&req->status->expirationtimestamp->base);
    req->status->expirationtimestamp = obj_time(exp * 1000000000);
}

int satoken_request(satoken_t *s, const struct auth_user *u, const char *ns, const char *name,
                    Coracle__V1__TokenRequest *req, struct satoken_err *e)
{
    memset(e, 0, sizeof(*e));
    if (!satoken_issuing(s))
        return fail(e, GRPC_NOT_FOUND, 404, "NotFound",
                    xstrdup("the server could not find the requested resource"));
    if (!req->spec) {
        req->spec = xmalloc(sizeof(*req->spec));
        coracle__v1__token_request_spec__init(req->spec);
    }
    Coracle__V1__TokenRequestSpec *sp = req->spec;
    if (check_expiration(sp, name, e) < 0)
        return -1;
    ProtobufCMessage *sa = stored(s, &kind_serviceaccount, ns, name);
    if (!sa)
        return fail(e, GRPC_NOT_FOUND, 404, "NotFound",
                    xasprintf("serviceaccounts \"%s\" not found", name));
    struct claims c = {.ns = ns, .sa = name, .sa_uid = uid_of(sa)};
    ProtobufCMessage *held = NULL, *node_held = NULL;
    int r = bind_object(s, u, ns, name, sp->boundobjectref, &c, &held, &node_held, e);
    if (r == 0) {
        if (s->max_exp > 0 && sp->expirationseconds > s->max_exp)
            sp->expirationseconds = s->max_exp;
        if (!sp->n_audiences) {
            sp->audiences = strv_copy((const char *const *)s->auds, s->n_auds);
            sp->n_audiences = s->n_auds;
        }
        c.auds = sp->audiences;
        c.n_auds = sp->n_audiences;
        c.iat = now_ns() / 1000000000;
        c.exp = c.iat + sp->expirationseconds;
        char *claims = claims_json(s, &c);
        char *tok = jwt_sign(s->signer, claims);
        free(claims);
        if (tok)
            answer(req, ns, name, tok, c.exp);
        else
            r = fail(e, GRPC_INTERNAL, 500, "InternalError", xstrdup("failed to sign the token"));
    }
    obj_free(held);
    obj_free(node_held);
    obj_free(sa);
    return r;
}

/* ---------------------------------------------------------------- gRPC */

struct grpc_ctx {
    satoken_t *s;
    auth_t *au;
};

static void create_token(h2s_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct grpc_ctx *g = arg;
    Coracle__V1__TokenRequest *req =
        (void *)obj_decode(&coracle__v1__token_request__descriptor, msg, len);
    if (!req) {
        h2s_call_finish(c, GRPC_INVALID_ARGUMENT, "failed to decode TokenRequest");
        return;
    }
    const Coracle__V1__ObjectMeta *m = req->metadata;
    const char *name = m && m->name ? m->name : "";
    const char *ns = m && m->namespace_ && *m->namespace_ ? m->namespace_ : "default";
    struct auth_user u;
    if (!*name) {
        h2s_call_finish(c, GRPC_INVALID_ARGUMENT, "metadata.name: the ServiceAccount is required");
    } else if (auth_call(g->au, c, g->s ? g->s->st : NULL, "create", &kind_serviceaccount, "token",
                         ns, name, &u) == 0) {
        char *sa = xstrdup(name), *nsd = xstrdup(ns);
        struct satoken_err e;
        if (satoken_request(g->s, &u, nsd, sa, req, &e) == 0)
            h2s_call_reply_pb(c, &req->base);
        else
            h2s_call_finish(c, e.code, e.msg);
        free(e.msg);
        free(sa);
        free(nsd);
    }
    obj_free(&req->base);
}

void satoken_register(satoken_t *s, h2s_t *srv, auth_t *au)
{
    static struct grpc_ctx g; /* one apiserver a process */
    g.s = s;
    g.au = au;
    h2s_route(srv, "/coracle.v1.ServiceAccounts/CreateToken", H2S_UNARY, create_token, &g);
}

/* ---------------------------------------------------------------- admission */

/* Five characters of Kubernetes' util/rand alphabet (no vowels, no look-alikes). */
static void rand_suffix(char out[6])
{
    static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
    uint8_t r[5];
    while (getrandom(r, sizeof(r), 0) != sizeof(r))
        ;
    for (int i = 0; i < 5; i++)
        out[i] = alnum[r[i] % (sizeof(alnum) - 1)];
    out[5] = '\0';
}

static void *new_msg(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = xmalloc(d->sizeof_message);
    d->message_init(m);
    return m;
}

/* The projected volume Kubernetes' admission adds: token, ca.crt, namespace. */
static Coracle__V1__Volume *token_volume(const char *name)
{
    Coracle__V1__VolumeProjection **src = xcalloc(3, sizeof(*src));
    for (int i = 0; i < 3; i++)
        src[i] = new_msg(&coracle__v1__volume_projection__descriptor);
    Coracle__V1__ServiceAccountTokenProjection *tp =
        new_msg(&coracle__v1__service_account_token_projection__descriptor);
    tp->has_expirationseconds = 1;
    tp->expirationseconds = 3607; /* the kubelet's "warn after an hour" marker */
    tp->path = xstrdup("token");
    src[0]->serviceaccounttoken = tp;
    Coracle__V1__ConfigMapProjection *cm = new_msg(&coracle__v1__config_map_projection__descriptor);
    cm->localobjectreference = new_msg(&coracle__v1__local_object_reference__descriptor);
    cm->localobjectreference->name = xstrdup("kube-root-ca.crt");
    cm->items = xcalloc(1, sizeof(*cm->items));
    cm->n_items = 1;
    cm->items[0] = new_msg(&coracle__v1__key_to_path__descriptor);
    cm->items[0]->key = xstrdup("ca.crt");
    cm->items[0]->path = xstrdup("ca.crt");
    src[1]->configmap = cm;
    Coracle__V1__DownwardAPIProjection *dp =
        new_msg(&coracle__v1__downward_apiprojection__descriptor);
    dp->items = xcalloc(1, sizeof(*dp->items));
    dp->n_items = 1;
    dp->items[0] = new_msg(&coracle__v1__downward_apivolume_file__descriptor);
    dp->items[0]->path = xstrdup("namespace");
    dp->items[0]->fieldref = new_msg(&coracle__v1__object_field_selector__descriptor);
    dp->items[0]->fieldref->apiversion = xstrdup("v1");
    dp->items[0]->fieldref->fieldpath = xstrdup("metadata.namespace");
    src[2]->downwardapi = dp;
    Coracle__V1__ProjectedVolumeSource *pv =
        new_msg(&coracle__v1__projected_volume_source__descriptor);
    pv->sources = src;
    pv->n_sources = 3;
    pv->has_defaultmode = 1;
    pv->defaultmode = 0644;
    Coracle__V1__Volume *v = new_msg(&coracle__v1__volume__descriptor);
    v->name = xstrdup(name);
    v->volumesource = new_msg(&coracle__v1__volume_source__descriptor);
    v->volumesource->projected = pv;
    return v;
}

/* The read-only mount at TOKEN_MOUNT, unless the container mounts something there already. */
static bool add_mount(Coracle__V1__Container *c, const char *vol)
{
    for (size_t i = 0; i < c->n_volumemounts; i++)
        if (c->volumemounts[i]->mountpath && !strcmp(c->volumemounts[i]->mountpath, TOKEN_MOUNT))
            return false;
    Coracle__V1__VolumeMount *m = new_msg(&coracle__v1__volume_mount__descriptor);
    m->name = xstrdup(vol);
    m->has_readonly = 1;
    m->readonly = 1;
    m->mountpath = xstrdup(TOKEN_MOUNT);
    c->volumemounts = xrealloc(c->volumemounts, (c->n_volumemounts + 1) * sizeof(m));
    c->volumemounts[c->n_volumemounts++] = m;
    return true;
}

/*
 * As Kubernetes' mountServiceAccountToken: an existing kube-api-access-*
 * volume is reused, else one is named; every container without a mount at
 * TOKEN_MOUNT gets one; the volume is added if one of them needed it.
 */
static void inject_token_volume(Coracle__V1__PodSpec *sp)
{
    static const char base[] = "kube-api-access-";
    char name[64] = "";
    for (size_t i = 0; i < sp->n_volumes && !*name; i++)
        if (sp->volumes[i]->name && !strncmp(sp->volumes[i]->name, base, sizeof(base) - 1))
            snprintf(name, sizeof(name), "%s", sp->volumes[i]->name);
    bool has = *name != '\0', needed = false;
    if (!has) {
        char sfx[6];
        rand_suffix(sfx);
        snprintf(name, sizeof(name), "%s%s", base, sfx);
    }
    for (size_t i = 0; i < sp->n_initcontainers; i++)
        needed |= add_mount(sp->initcontainers[i], name);
    for (size_t i = 0; i < sp->n_containers; i++)
        needed |= add_mount(sp->containers[i], name);
    if (has || !needed)
        return;
    sp->volumes = xrealloc(sp->volumes, (sp->n_volumes + 1) * sizeof(*sp->volumes));
    sp->volumes[sp->n_volumes++] = token_volume(name);
}

int satoken_admit_pod(satoken_t *s, Coracle__V1__Pod *pod, const char *ns, struct satoken_err *e)
{
    memset(e, 0, sizeof(*e));
    Coracle__V1__PodSpec *sp = pod->spec;
    if (!s || !sp)
        return 0;
    if (!sp->serviceaccountname || !*sp->serviceaccountname)
        obj_set_str(&sp->serviceaccountname,
                    sp->serviceaccount && *sp->serviceaccount ? sp->serviceaccount : "default");
    obj_set_str(&sp->serviceaccount, sp->serviceaccountname);
    Coracle__V1__ServiceAccount *sa =
        (void *)stored(s, &kind_serviceaccount, ns, sp->serviceaccountname);
    if (!sa) {
        const char *pn = pod->metadata && pod->metadata->name ? pod->metadata->name : "";
        return fail(e, GRPC_PERMISSION_DENIED, 403, "Forbidden",
                    xasprintf("pods \"%s\" is forbidden: error looking up service account "
                              "%s/%s: serviceaccount \"%s\" not found",
                              pn, ns, sp->serviceaccountname, sp->serviceaccountname));
    }
    bool mount = sp->has_automountserviceaccounttoken   ? sp->automountserviceaccounttoken
                 : sa->has_automountserviceaccounttoken ? sa->automountserviceaccounttoken
                                                        : true;
    obj_free(&sa->base);
    if (mount && satoken_issuing(s))
        inject_token_volume(sp);
    return 0;
}
