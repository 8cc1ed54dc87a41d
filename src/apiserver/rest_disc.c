/*
 * rest_disc: discovery, made from the kinds table: /version, /api,
 * /api/v1, /apis, /apis/GROUP and /apis/GROUP/VERSION. See rest_int.h.
 */
#include "config.h"
#include "rest_int.h"
#include "buf.h"
#include "openapi.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void rest_kind_gv(const struct kind *k, const char **group, size_t *glen, const char **version)
{
    const char *slash = strchr(k->api_version, '/');
    *group = slash ? k->api_version : "";
    *glen = slash ? (size_t)(slash - k->api_version) : 0;
    *version = slash ? slash + 1 : k->api_version;
}

void rest_discovery_version(rest_t *rs, h2s_req_t *r)
{
#if defined(__x86_64__)
    const char *arch = "amd64";
#elif defined(__aarch64__)
    const char *arch = "arm64";
#else
    const char *arch = "unknown";
#endif
    char *b = xasprintf("{\"major\":\"1\",\"minor\":\"32\",\"gitVersion\":\"v1.32.0-coracle\","
                        "\"gitCommit\":\"\",\"gitTreeState\":\"clean\",\"buildDate\":\"\","
                        "\"goVersion\":\"\",\"compiler\":\"gcc\",\"platform\":\"linux/%s\","
                        "\"coracleVersion\":\"%s\"}\n",
                        arch, PACKAGE_VERSION);
    rest_answer_json(rs, r, 200, b, strlen(b));
    free(b);
}

static void discovery_api(rest_t *rs, h2s_req_t *r)
{
    static const char b[] = "{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],"
                            "\"serverAddressByClientCIDRs\":[{\"clientCIDR\":\"0.0.0.0/0\","
                            "\"serverAddress\":\"\"}]}\n";
    rest_answer_json(rs, r, 200, b, sizeof(b) - 1);
}

/* One group's JSON ({"name":..,"versions":[..],"preferredVersion":..}) for group g. */
static void group_json(struct buf *b, const char *g, size_t glen)
{
    buf_printf(b, "{\"name\":\"%.*s\",\"versions\":[", (int)glen, g);
    const char *first = NULL;
    for (size_t i = 0; kinds_all[i]; i++) {
        const char *kg, *v;
        size_t kgl;
        rest_kind_gv(kinds_all[i], &kg, &kgl, &v);
        if (kgl != glen || memcmp(kg, g, glen) != 0)
            continue;
        if (first && strcmp(first, v) == 0)
            continue; /* one entry a version (kinds of a version are listed together) */
        buf_printf(b, "%s{\"groupVersion\":\"%.*s/%s\",\"version\":\"%s\"}", first ? "," : "",
                   (int)glen, g, v, v);
        if (!first)
            first = v;
    }
    buf_printf(b, "],\"preferredVersion\":{\"groupVersion\":\"%.*s/%s\",\"version\":\"%s\"}}",
               (int)glen, g, first ? first : "", first ? first : "");
}

/* Whether kind i is the first of its group in the table. */
static bool group_first(size_t i)
{
    const char *g, *v;
    size_t gl;
    rest_kind_gv(kinds_all[i], &g, &gl, &v);
    for (size_t j = 0; j < i; j++) {
        const char *g2, *v2;
        size_t gl2;
        rest_kind_gv(kinds_all[j], &g2, &gl2, &v2);
        if (gl2 == gl && memcmp(g, g2, gl) == 0)
            return false;
    }
    return true;
}

static void discovery_apis(rest_t *rs, h2s_req_t *r)
{
    struct buf b = {0};
    buf_puts(&b, "{\"kind\":\"APIGroupList\",\"apiVersion\":\"v1\",\"groups\":[");
    const char *sep = "";
    for (size_t i = 0; kinds_all[i]; i++) {
        const char *g, *v;
        size_t gl;
        rest_kind_gv(kinds_all[i], &g, &gl, &v);
        if (!gl || !group_first(i))
            continue;
        buf_puts(&b, sep);
        group_json(&b, g, gl);
        sep = ",";
    }
    buf_puts(&b, "]}\n");
    rest_answer_json(rs, r, 200, b.p, b.len);
    buf_free(&b);
}

static bool group_exists(const char *g)
{
    for (size_t i = 0; kinds_all[i]; i++) {
        const char *kg, *v;
        size_t gl;
        rest_kind_gv(kinds_all[i], &kg, &gl, &v);
        if (gl && gl == strlen(g) && memcmp(kg, g, gl) == 0)
            return true;
    }
    return false;
}

static void discovery_group(rest_t *rs, h2s_req_t *r, const char *g)
{
    if (!group_exists(g)) {
        rest_not_found_path(rs, r);
        return;
    }
    struct buf gj = {0}, b = {0};
    group_json(&gj, g, strlen(g));
    /* the group's fields inside the envelope's braces */
    buf_printf(&b, "{\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",%s\n", gj.p + 1);
    rest_answer_json(rs, r, 200, b.p, b.len);
    buf_free(&gj);
    buf_free(&b);
}

/* Every kind's verbs (rest_write.c serves the writes). */
#define REST_VERBS                                                                                 \
    "\"create\",\"delete\",\"deletecollection\",\"get\",\"list\",\"patch\",\"update\",\"watch\""

/* k's verbs, as a JSON array's items: a virtual kind is created only. */
static const char *kind_verbs(const struct kind *k)
{
    return kind_virtual(k) ? "\"create\"" : REST_VERBS;
}

/* The subresources of k (openapi.h's table), as entries of the APIResourceList. */
static void subresources(struct buf *b, const struct kind *k)
{
    const char *ns = k->namespaced ? "true" : "false";
    if (oapi_has_status(k))
        buf_printf(b,
                   ",{\"name\":\"%s/status\",\"singularName\":\"\",\"namespaced\":%s,"
                   "\"kind\":\"%s\",\"verbs\":[\"get\",\"patch\",\"update\"]}",
                   k->resource, ns, k->kind);
    for (const struct oapi_sub *s = oapi_subs; s->resource; s++) {
        if (strcmp(s->resource, k->resource))
            continue;
        buf_printf(b, ",{\"name\":\"%s/%s\",\"singularName\":\"\",\"namespaced\":%s,", k->resource,
                   s->name, ns);
        if (s->api_version) { /* a kind of another group-version */
            const char *slash = strchr(s->api_version, '/');
            buf_printf(b, "\"group\":\"%.*s\",\"version\":\"%s\",",
                       slash ? (int)(slash - s->api_version) : 0, s->api_version,
                       slash ? slash + 1 : s->api_version);
        }
        buf_printf(b, "\"kind\":\"%s\",\"verbs\":[", s->kind);
        for (const char *const *v = s->verbs; *v; v++)
            buf_printf(b, "%s\"%s\"", v == s->verbs ? "" : ",", *v);
        buf_puts(b, "]}");
    }
}

/* APIResourceList for gv ("v1", "coordination.k8s.io/v1"); false if no kind has it. */
static bool discovery_resources(rest_t *rs, h2s_req_t *r, const char *gv)
{
    struct buf b = {0};
    buf_printf(&b,
               "{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":"
               "\"%s\",\"resources\":[",
               gv);
    const char *sep = "";
    for (size_t i = 0; kinds_all[i]; i++) {
        const struct kind *k = kinds_all[i];
        if (strcmp(k->api_version, gv) != 0)
            continue;
        buf_printf(&b,
                   "%s{\"name\":\"%s\",\"singularName\":\"%s\",\"namespaced\":%s,"
                   "\"kind\":\"%s\",\"verbs\":[%s]",
                   sep, k->resource, k->singular, k->namespaced ? "true" : "false", k->kind,
                   kind_verbs(k));
        if (k->short_name)
            buf_printf(&b, ",\"shortNames\":[\"%s\"]", k->short_name);
        buf_puts(&b, "}");
        sep = ",";
        subresources(&b, k);
    }
    buf_puts(&b, "]}\n");
    if (!*sep) {
        buf_free(&b);
        return false;
    }
    rest_answer_json(rs, r, 200, b.p, b.len);
    buf_free(&b);
    return true;
}

/* ---- aggregated discovery (apidiscovery.k8s.io/v2) ---- */

#define REST_AGGREGATED "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

bool rest_accept_aggregated(const char *accept)
{
    char type[64], params[192];
    while (rest_accept_next(&accept, type, sizeof(type), params, sizeof(params))) {
        if (strcmp(type, "application/json") && strcmp(type, "*/*"))
            continue;
        bool g = false, v = false, as = false, other = false;
        for (char *save = NULL, *p = strtok_r(params, ";", &save); p;
             p = strtok_r(NULL, ";", &save)) {
            if (!strcmp(p, "g=apidiscovery.k8s.io"))
                g = true;
            else if (!strcmp(p, "v=v2"))
                v = true;
            else if (!strcmp(p, "as=APIGroupDiscoveryList"))
                as = true;
            else if (strncmp(p, "q=", 2))
                other = true;
        }
        if (g && v && as && !other)
            return true;
        if (!g && !v && !as && !other)
            return false; /* plain JSON comes first: the legacy form */
    }
    return false;
}

static void gvk_json(struct buf *b, const struct kind *k, const char *kind)
{
    const char *g, *v;
    size_t gl;
    rest_kind_gv(k, &g, &gl, &v);
    buf_printf(b, "{\"group\":\"%.*s\",\"version\":\"%s\",\"kind\":\"%s\"}", (int)gl, g, v, kind);
}

/* One APIResourceDiscovery: kind k, its verbs and subresources. */
static void aggregated_resource(struct buf *b, const struct kind *k)
{
    buf_printf(b, "{\"resource\":\"%s\",\"responseKind\":", k->resource);
    gvk_json(b, k, k->kind);
    buf_printf(b, ",\"scope\":\"%s\",\"singularResource\":\"%s\",\"verbs\":[%s]",
               k->namespaced ? "Namespaced" : "Cluster", k->singular, kind_verbs(k));
    if (k->short_name)
        buf_printf(b, ",\"shortNames\":[\"%s\"]", k->short_name);
    const char *sep = "";
    buf_puts(b, ",\"subresources\":[");
    if (oapi_has_status(k)) {
        buf_puts(b, "{\"subresource\":\"status\",\"responseKind\":");
        gvk_json(b, k, k->kind);
        buf_puts(b, ",\"verbs\":[\"get\",\"patch\",\"update\"]}");
        sep = ",";
    }
    for (const struct oapi_sub *s = oapi_subs; s->resource; s++) {
        if (strcmp(s->resource, k->resource))
            continue;
        buf_printf(b, "%s{\"subresource\":\"%s\",\"responseKind\":", sep, s->name);
        if (s->api_version) {
            const char *slash = strchr(s->api_version, '/');
            buf_printf(b, "{\"group\":\"%.*s\",\"version\":\"%s\",\"kind\":\"%s\"}",
                       slash ? (int)(slash - s->api_version) : 0, s->api_version,
                       slash ? slash + 1 : s->api_version, s->kind);
        } else {
            gvk_json(b, k, s->kind);
        }
        buf_puts(b, ",\"verbs\":[");
        for (const char *const *v = s->verbs; *v; v++)
            buf_printf(b, "%s\"%s\"", v == s->verbs ? "" : ",", *v);
        buf_puts(b, "]}");
        sep = ",";
    }
    buf_puts(b, "]}");
}

/* One APIGroupDiscovery: group g (glen bytes, "" for core) and its versions. */
static void aggregated_group(struct buf *b, const char *g, size_t glen)
{
    if (glen)
        buf_printf(b, "{\"metadata\":{\"name\":\"%.*s\",\"creationTimestamp\":null},", (int)glen,
                   g);
    else
        buf_puts(b, "{\"metadata\":{\"creationTimestamp\":null},");
    buf_puts(b, "\"versions\":[");
    const char *open = NULL; /* the version being written */
    for (size_t i = 0; kinds_all[i]; i++) {
        const char *kg, *v;
        size_t kgl;
        rest_kind_gv(kinds_all[i], &kg, &kgl, &v);
        if (kgl != glen || memcmp(kg, g, glen) != 0)
            continue;
        if (!open || strcmp(open, v)) {
            if (open)
                buf_puts(b, "],\"freshness\":\"Current\"},");
            buf_printf(b, "{\"version\":\"%s\",\"resources\":[", v);
            open = v;
        } else {
            buf_puts(b, ",");
        }
        aggregated_resource(b, kinds_all[i]);
    }
    if (open)
        buf_puts(b, "],\"freshness\":\"Current\"}");
    buf_puts(b, "]}");
}

/* /api (core) or /apis as an APIGroupDiscoveryList. */
static void discovery_aggregated(rest_t *rs, h2s_req_t *r, bool core)
{
    struct buf b = {0};
    buf_puts(&b, "{\"kind\":\"APIGroupDiscoveryList\",\"apiVersion\":\"apidiscovery.k8s.io/v2\","
                 "\"metadata\":{},\"items\":[");
    const char *sep = "";
    for (size_t i = 0; kinds_all[i]; i++) {
        const char *g, *v;
        size_t gl;
        rest_kind_gv(kinds_all[i], &g, &gl, &v);
        if (core != !gl || !group_first(i))
            continue;
        buf_puts(&b, sep);
        aggregated_group(&b, g, gl);
        sep = ",";
    }
    buf_puts(&b, "]}\n");
    rest_count(rs, r, 200);
    h2s_req_add_header(r, "vary", "Accept");
    h2s_req_respond(r, 200, REST_AGGREGATED, b.p, b.len);
    buf_free(&b);
}

bool rest_discovery(rest_t *rs, h2s_req_t *r, char **seg, size_t n)
{
    bool core = !strcmp(seg[0], "api");
    if (n == 1 && rest_accept_aggregated(h2s_req_header(r, "accept"))) {
        discovery_aggregated(rs, r, core);
        return true;
    }
    if (n == 1) {
        if (core)
            discovery_api(rs, r);
        else
            discovery_apis(rs, r);
        return true;
    }
    if (!core && n == 2) {
        discovery_group(rs, r, seg[1]);
        return true;
    }
    if (n != (core ? 2u : 3u))
        return false;
    char gv[256];
    if (core)
        snprintf(gv, sizeof(gv), "%s", seg[1]);
    else
        snprintf(gv, sizeof(gv), "%s/%s", seg[1], seg[2]);
    if (!discovery_resources(rs, r, gv))
        rest_not_found_path(rs, r);
    return true;
}
