/*
 * rest_openapi: the OpenAPI documents (/openapi/v2, /openapi/v3 and its
 * group-versions), answered as kube-apiserver (kube-openapi's handlers)
 * answers them. See rest_int.h; openapi.c makes the documents.
 *
 * They are made once, at the first request, and kept: they only change
 * with the binary. Each has an ETag (the SHA-512 of its JSON, in hex, as
 * Kubernetes computes it), and If-None-Match answers 304. /openapi/v3
 * lists each group-version's URL with ?hash=<its ETag>; a request with
 * the current hash may be cached for good (Cache-Control: public,
 * immutable), one with an old hash is redirected to the current URL.
 */
#include "config.h"
#include "rest_int.h"
#include "buf.h"
#include "openapi.h"
#include "util.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CT_PB_V2 "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
#define CT_PB_V2_OLD "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
#define MAX_GVS 16

struct odoc {
    char *body;
    size_t len;
    char etag[EVP_MAX_MD_SIZE * 2 + 1]; /* hex, unquoted */
};

struct rest_openapi {
    struct odoc v2, v2pb, index;
    struct {
        char gv[128];   /* "v1", "coordination.k8s.io/v1" */
        char path[160]; /* "api/v1", "apis/coordination.k8s.io/v1" */
        struct odoc doc;
    } v3[MAX_GVS];
    size_t nv3;
};

/* Kubernetes' ETag: SHA-512 of the bytes, upper-case hex. */
static void etag_of(struct odoc *d, const char *json, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_Digest(json, len, md, &n, EVP_sha512(), NULL))
        fatal("openapi: SHA-512 failed");
    for (unsigned i = 0; i < n; i++)
        snprintf(d->etag + 2 * i, 3, "%02X", md[i]);
}

static void v3_add(struct rest_openapi *o, const char *gv)
{
    for (size_t i = 0; i < o->nv3; i++)
        if (!strcmp(o->v3[i].gv, gv))
            return;
    if (o->nv3 == MAX_GVS)
        fatal("openapi: more than %d group-versions", MAX_GVS);
    struct odoc *d = &o->v3[o->nv3].doc;
    snprintf(o->v3[o->nv3].gv, sizeof(o->v3[0].gv), "%s", gv);
    snprintf(o->v3[o->nv3].path, sizeof(o->v3[0].path), "%s/%s", strchr(gv, '/') ? "apis" : "api",
             gv);
    d->body = oapi_v3(gv, &d->len);
    etag_of(d, d->body, d->len);
    o->nv3++;
}

/* Every document, made now. */
static struct rest_openapi *build(void)
{
    int64_t t0 = mono_ns();
    struct rest_openapi *o = xcalloc(1, sizeof(*o));
    o->v2.body = oapi_v2(&o->v2.len);
    etag_of(&o->v2, o->v2.body, o->v2.len);
    struct buf pb = {0};
    char *err = NULL;
    if (oapi_v2_pb(o->v2.body, o->v2.len, &pb, &err) < 0)
        fatal("openapi: the v2 document does not parse: %s", err);
    o->v2pb.len = pb.len;
    o->v2pb.body = buf_take(&pb);
    memcpy(o->v2pb.etag, o->v2.etag, sizeof(o->v2.etag));
    for (size_t i = 0; kinds_all[i]; i++)
        v3_add(o, kinds_all[i]->api_version);

    struct buf ix = {0};
    buf_puts(&ix, "{\"paths\":{");
    for (size_t i = 0; i < o->nv3; i++)
        buf_printf(&ix, "%s\"%s\":{\"serverRelativeURL\":\"/openapi/v3/%s?hash=%s\"}", i ? "," : "",
                   o->v3[i].path, o->v3[i].path, o->v3[i].doc.etag);
    buf_puts(&ix, "}}");
    o->index.len = ix.len;
    o->index.body = buf_take(&ix);
    etag_of(&o->index, o->index.body, o->index.len);

    size_t total = o->v2.len + o->v2pb.len + o->index.len;
    for (size_t i = 0; i < o->nv3; i++)
        total += o->v3[i].doc.len;
    log_info("openapi: documents made in %.1f ms: v2 %zu bytes JSON, %zu protobuf; "
             "%zu group-versions; %zu bytes in all",
             (double)(mono_ns() - t0) / 1e6, o->v2.len, o->v2pb.len, o->nv3, total);
    return o;
}

void rest_openapi_free(rest_t *rs)
{
    struct rest_openapi *o = rs->openapi;
    if (!o)
        return;
    free(o->v2.body);
    free(o->v2pb.body);
    free(o->index.body);
    for (size_t i = 0; i < o->nv3; i++)
        free(o->v3[i].doc.body);
    free(o);
    rs->openapi = NULL;
}

/* The document d with its ETag, or 304 if the client has it. */
static void answer(rest_t *rs, h2s_req_t *r, const struct odoc *d, const char *ctype)
{
    char quoted[sizeof(d->etag) + 2];
    snprintf(quoted, sizeof(quoted), "\"%s\"", d->etag);
    h2s_req_add_header(r, "etag", quoted);
    h2s_req_add_header(r, "vary", "Accept");
    const char *inm = h2s_req_header(r, "if-none-match");
    if (inm && (strstr(inm, quoted) || !strcmp(inm, "*"))) {
        rest_count(rs, r, 304);
        h2s_req_respond(r, 304, NULL, NULL, 0);
        return;
    }
    rest_count(rs, r, 200);
    h2s_req_respond(r, 200, ctype, d->body, d->len);
}

int rest_openapi_accept(const char *accept, bool pb)
{
    if (!accept || !*accept)
        return 1;
    char type[96], params[192];
    while (rest_accept_next(&accept, type, sizeof(type), params, sizeof(params))) {
        if (!strcmp(type, "application/json") || !strcmp(type, "*/*") ||
            !strcmp(type, "application/*"))
            return 1;
        if (pb && (!strcmp(type, CT_PB_V2) || !strcmp(type, CT_PB_V2_OLD)))
            return 2;
    }
    return 0;
}

static void not_acceptable(rest_t *rs, h2s_req_t *r)
{
    rest_answer_status(rs, r, 406, "NotAcceptable",
                       "only application/json and, for /openapi/v2, " CT_PB_V2 " are served", NULL,
                       NULL);
}

/* RFC 7231's date a year from now, for Expires. */
static void in_a_year(char *buf, size_t n)
{
    time_t t = time(NULL) + 365 * 24 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void group_version(rest_t *rs, h2s_req_t *r, struct rest_openapi *o, const char *path)
{
    size_t i = 0;
    while (i < o->nv3 && strcmp(o->v3[i].path, path))
        i++;
    if (i == o->nv3) {
        rest_not_found_path(rs, r);
        return;
    }
    if (rest_openapi_accept(h2s_req_header(r, "accept"), false) != 1) {
        not_acceptable(rs, r);
        return;
    }
    struct odoc *d = &o->v3[i].doc;
    struct rquery q;
    rest_query_parse(h2s_req_query(r), &q);
    const char *hash = rest_query_get(&q, "hash");
    if (hash && *hash && strcmp(hash, d->etag)) {
        char *loc = xasprintf("/openapi/v3/%s?hash=%s", o->v3[i].path, d->etag);
        h2s_req_add_header(r, "location", loc);
        rest_count(rs, r, 301);
        h2s_req_respond(r, 301, NULL, NULL, 0);
        free(loc);
    } else {
        if (hash && *hash) {
            char exp[64];
            in_a_year(exp, sizeof(exp));
            h2s_req_add_header(r, "cache-control", "public, immutable");
            h2s_req_add_header(r, "expires", exp);
        }
        answer(rs, r, d, REST_JSON);
    }
    rest_query_free(&q);
}

void rest_openapi(rest_t *rs, h2s_req_t *r, char **seg, size_t n)
{
    const char *m = h2s_req_method(r);
    if (strcmp(m, "GET") && strcmp(m, "HEAD")) {
        rest_answer_status(rs, r, 405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", NULL,
                           NULL);
        return;
    }
    if (n < 2 || (strcmp(seg[1], "v2") && strcmp(seg[1], "v3")) || (n > 2 && seg[1][1] == '2')) {
        rest_not_found_path(rs, r);
        return;
    }
    if (!rs->openapi)
        rs->openapi = build();
    struct rest_openapi *o = rs->openapi;
    if (seg[1][1] == '2') {
        int want = rest_openapi_accept(h2s_req_header(r, "accept"), true);
        if (!want)
            not_acceptable(rs, r);
        else if (want == 2)
            answer(rs, r, &o->v2pb, CT_PB_V2);
        else
            answer(rs, r, &o->v2, REST_JSON);
        return;
    }
    if (n == 2) {
        answer(rs, r, &o->index, REST_JSON);
        return;
    }
    char path[256] = "";
    for (size_t i = 2; i < n; i++)
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s%s", i > 2 ? "/" : "",
                 seg[i]);
    group_version(rs, r, o, path);
}
