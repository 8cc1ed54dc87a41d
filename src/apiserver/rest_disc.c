/*
 * rest_disc: discovery, made from the kinds table: /version, /api,
 * /api/v1, /apis, /apis/GROUP and /apis/GROUP/VERSION. See rest_int.h.
 */
#include "config.h"
#include "rest_int.h"
#include "buf.h"
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
                   "\"kind\":\"%s\",\"verbs\":[\"get\",\"list\",\"watch\"]",
                   sep, k->resource, k->singular, k->namespaced ? "true" : "false", k->kind);
        if (k->short_name)
            buf_printf(&b, ",\"shortNames\":[\"%s\"]", k->short_name);
        buf_puts(&b, "}");
        sep = ",";
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

bool rest_discovery(rest_t *rs, h2s_req_t *r, char **seg, size_t n)
{
    bool core = !strcmp(seg[0], "api");
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
