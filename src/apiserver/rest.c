/*
 * rest: the Kubernetes REST API's read path. See rest.h.
 *
 * A request goes: plain endpoints -> authenticate -> discovery, or parse
 * the resource path (group-version, namespace, resource, name,
 * subresource) into a struct rreq -> the verb (get, list, watch) ->
 * authorize with the same attributes the gRPC API checks -> the shared
 * machinery: read_object (Get), read_list_start (List, which may finish in
 * the read worker) and the watch hub (watch_start_rest). What they produce
 * is protobuf (the stored bytes); kjson turns it into Kubernetes JSON.
 * Nothing here names a kind: the kinds table says what exists.
 */
#include "config.h"
#include "rest.h"
#include "api.h"
#include "buf.h"
#include "grpc.h"
#include "kjson.h"
#include "kobj.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGS 8
#define JSON "application/json"
#define TABLE "application/json;as=Table;v=v1;g=meta.k8s.io"

/* What a request was, for the counters (/metrics). */
enum rverb { RV_OTHER, RV_DISCOVERY, RV_GET, RV_LIST, RV_WATCH, RV_N };
static const char *const rverb_names[RV_N] = {"other", "discovery", "get", "list", "watch"};
#define RCODES 16 /* distinct HTTP statuses counted per verb */

struct rest {
    struct rest_config cfg;
    struct {
        int status;
        uint64_t n;
    } counts[RV_N][RCODES];
};

/* A parsed resource request. */
struct rreq {
    const struct kind *k;
    const char *ns;            /* NULL: cluster-scoped kind, or all namespaces */
    const char *name;          /* NULL: the collection */
    const char *sub;           /* subresource, or NULL */
    bool table;                /* the client asks for a meta.k8s.io Table (Accept) */
    enum cols_include include; /* and what its rows carry (?includeObject=) */
};

/* The query parameters the read verbs take (percent-decoded, malloc'd). */
struct rquery {
    char *label_selector, *field_selector, *limit, *cont, *rv, *watch, *bookmarks, *timeout,
        *initial, *include;
};

/* ---- answers ---- */

/*
 * A request's data says what it is, for the answers made later (a List's):
 * its verb (enum rverb, 0 until known), whether it wants a Table and its
 * rows' include, and the index of its kind in kinds_all.
 */
#define W_VERB 0xf
#define W_TABLE 0x10
#define W_INCLUDE_SHIFT 5
#define W_KIND_SHIFT 8

static void set_what(h2s_req_t *r, enum rverb v, const struct rreq *rq)
{
    size_t ki = 0;
    while (rq && kinds_all[ki] != rq->k)
        ki++;
    intptr_t w = v | (rq && rq->table ? W_TABLE : 0);
    if (rq)
        w |= (intptr_t)rq->include << W_INCLUDE_SHIFT | (intptr_t)ki << W_KIND_SHIFT;
    h2s_req_set_data(r, (void *)w);
}

/* The parts of rq set_what kept (kind, table, include). */
static struct rreq what_rreq(const h2s_req_t *r)
{
    intptr_t w = (intptr_t)h2s_req_data(r);
    return (struct rreq){.k = kinds_all[w >> W_KIND_SHIFT],
                         .table = (w & W_TABLE) != 0,
                         .include = (enum cols_include)(w >> W_INCLUDE_SHIFT & 3)};
}

/* Counts an answer to r. */
static void count(rest_t *rs, h2s_req_t *r, int status)
{
    enum rverb v = (enum rverb)((intptr_t)h2s_req_data(r) & W_VERB);
    for (int i = 0; i < RCODES; i++) {
        if (rs->counts[v][i].status == status || !rs->counts[v][i].status) {
            rs->counts[v][i].status = status;
            rs->counts[v][i].n++;
            return;
        }
    }
}

static void answer_json(rest_t *rs, h2s_req_t *r, int status, const char *body, size_t len)
{
    count(rs, r, status);
    h2s_req_respond(r, status, JSON, body, len);
}

static void answer_table(rest_t *rs, h2s_req_t *r, const char *body, size_t len)
{
    count(rs, r, 200);
    h2s_req_respond(r, 200, TABLE, body, len);
}

static void answer_status(rest_t *rs, h2s_req_t *r, int status, const char *reason, const char *msg,
                          const struct kind *k, const char *name)
{
    char *b = kjson_status(status, reason, msg, k ? k->resource : NULL, name);
    if (status == 429)
        h2s_req_add_header(r, "retry-after", "1");
    answer_json(rs, r, status, b, strlen(b));
    free(b);
}

/* A failure from the shared machinery, which speaks gRPC codes. */
static void answer_grpc(rest_t *rs, h2s_req_t *r, int code, const char *msg, const struct kind *k,
                        const char *name)
{
    const char *reason;
    int st = kjson_http_status(code, &reason);
    answer_status(rs, r, st, reason, msg, k, name);
}

static void not_found_path(rest_t *rs, h2s_req_t *r)
{
    answer_status(rs, r, 404, "NotFound", "the server could not find the requested resource", NULL,
                  NULL);
}

/* ---- discovery ---- */

/* "v1" or "coordination.k8s.io/v1": the group ("" for core) and version of a kind. */
static void kind_gv(const struct kind *k, const char **group, size_t *glen, const char **version)
{
    const char *slash = strchr(k->api_version, '/');
    *group = slash ? k->api_version : "";
    *glen = slash ? (size_t)(slash - k->api_version) : 0;
    *version = slash ? slash + 1 : k->api_version;
}

static void discovery_version(rest_t *rs, h2s_req_t *r)
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
    answer_json(rs, r, 200, b, strlen(b));
    free(b);
}

static void discovery_api(rest_t *rs, h2s_req_t *r)
{
    static const char b[] = "{\"kind\":\"APIVersions\",\"versions\":[\"v1\"],"
                            "\"serverAddressByClientCIDRs\":[{\"clientCIDR\":\"0.0.0.0/0\","
                            "\"serverAddress\":\"\"}]}\n";
    answer_json(rs, r, 200, b, sizeof(b) - 1);
}

/* One group's JSON ({"name":..,"versions":[..],"preferredVersion":..}) for group g. */
static void group_json(struct buf *b, const char *g, size_t glen)
{
    buf_printf(b, "{\"name\":\"%.*s\",\"versions\":[", (int)glen, g);
    const char *first = NULL;
    for (size_t i = 0; kinds_all[i]; i++) {
        const char *kg, *v;
        size_t kgl;
        kind_gv(kinds_all[i], &kg, &kgl, &v);
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
    kind_gv(kinds_all[i], &g, &gl, &v);
    for (size_t j = 0; j < i; j++) {
        const char *g2, *v2;
        size_t gl2;
        kind_gv(kinds_all[j], &g2, &gl2, &v2);
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
        kind_gv(kinds_all[i], &g, &gl, &v);
        if (!gl || !group_first(i))
            continue;
        buf_puts(&b, sep);
        group_json(&b, g, gl);
        sep = ",";
    }
    buf_puts(&b, "]}\n");
    answer_json(rs, r, 200, b.p, b.len);
    buf_free(&b);
}

static bool group_exists(const char *g)
{
    for (size_t i = 0; kinds_all[i]; i++) {
        const char *kg, *v;
        size_t gl;
        kind_gv(kinds_all[i], &kg, &gl, &v);
        if (gl && gl == strlen(g) && memcmp(kg, g, gl) == 0)
            return true;
    }
    return false;
}

static void discovery_group(rest_t *rs, h2s_req_t *r, const char *g)
{
    if (!group_exists(g)) {
        not_found_path(rs, r);
        return;
    }
    struct buf gj = {0}, b = {0};
    group_json(&gj, g, strlen(g));
    /* the group's fields inside the envelope's braces */
    buf_printf(&b, "{\"kind\":\"APIGroup\",\"apiVersion\":\"v1\",%s\n", gj.p + 1);
    answer_json(rs, r, 200, b.p, b.len);
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
    answer_json(rs, r, 200, b.p, b.len);
    buf_free(&b);
    return true;
}

/* ---- query ---- */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s[0..n) ('+' is a space); malloc'd. */
static char *unescape(const char *s, size_t n)
{
    char *o = xmalloc(n + 1), *w = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *w++ = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
            i += 2;
        } else {
            *w++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *w = '\0';
    return o;
}

static const struct {
    const char *name;
    size_t off;
} params[] = {
    {"labelSelector", offsetof(struct rquery, label_selector)},
    {"fieldSelector", offsetof(struct rquery, field_selector)},
    {"limit", offsetof(struct rquery, limit)},
    {"continue", offsetof(struct rquery, cont)},
    {"resourceVersion", offsetof(struct rquery, rv)},
    {"watch", offsetof(struct rquery, watch)},
    {"allowWatchBookmarks", offsetof(struct rquery, bookmarks)},
    {"timeoutSeconds", offsetof(struct rquery, timeout)},
    {"sendInitialEvents", offsetof(struct rquery, initial)},
    {"includeObject", offsetof(struct rquery, include)},
};

static char **param_slot(struct rquery *q, size_t i)
{
    return (char **)((char *)q + params[i].off);
}

static void query_parse(const char *q, struct rquery *out)
{
    memset(out, 0, sizeof(*out));
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t kl = eq ? (size_t)(eq - q) : n;
        for (size_t i = 0; i < ARRAY_SIZE(params); i++) {
            if (strlen(params[i].name) != kl || memcmp(params[i].name, q, kl) != 0)
                continue;
            char **slot = param_slot(out, i);
            free(*slot);
            *slot = eq ? unescape(eq + 1, n - kl - 1) : xstrdup("");
        }
        q += n;
        if (*q == '&')
            q++;
    }
}

static void query_free(struct rquery *q)
{
    for (size_t i = 0; i < ARRAY_SIZE(params); i++)
        free(*param_slot(q, i));
}

static bool query_true(const char *v)
{
    return v && (!strcmp(v, "true") || !strcmp(v, "1") || !*v);
}

/* A decimal int64 parameter; 0 ok (absent: *out untouched), -1 malformed. */
static int query_int(const char *v, int64_t *out)
{
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || !*v || *end)
        return -1;
    *out = x;
    return 0;
}

/* ---- resource paths ---- */

static size_t split(char *p, char **seg)
{
    size_t n = 0;
    for (char *t = strtok(p, "/"); t && n < MAX_SEGS; t = strtok(NULL, "/"))
        seg[n++] = t;
    return n;
}

/*
 * seg (after the group-version) into rq for gv. Returns 0, or -1 after
 * answering 404.
 */
static int parse_resource(rest_t *rs, h2s_req_t *r, const char *gv, char **seg, size_t n,
                          struct rreq *rq)
{
    memset(rq, 0, sizeof(*rq));
    if (n >= 1 && !strcmp(seg[0], "namespaces")) {
        if (n <= 2) {
            not_found_path(rs, r); /* namespaces themselves are not a kind here */
            return -1;
        }
        rq->ns = seg[1];
        seg += 2;
        n -= 2;
    }
    if (n < 1 || n > 3)
        goto nf;
    for (size_t i = 0; kinds_all[i]; i++)
        if (!strcmp(kinds_all[i]->resource, seg[0]) && !strcmp(kinds_all[i]->api_version, gv))
            rq->k = kinds_all[i];
    if (!rq->k || (rq->ns && !rq->k->namespaced) || (n > 1 && rq->k->namespaced && !rq->ns))
        goto nf;
    rq->name = n > 1 ? seg[1] : NULL;
    rq->sub = n > 2 ? seg[2] : NULL;
    return 0;
nf:
    not_found_path(rs, r);
    return -1;
}

/* ---- verbs ---- */

/* A ListRequest from the query (the List and the watch take the same). */
static Coracle__V1__ListRequest *list_request(const struct rreq *rq, const struct rquery *q,
                                              const char *field_selector)
{
    Coracle__V1__ListRequest *lr = xmalloc(sizeof(*lr));
    coracle__v1__list_request__init(lr);
    lr->namespace_ = rq->ns ? xstrdup(rq->ns) : NULL;
    lr->labelselector = q->label_selector ? xstrdup(q->label_selector) : NULL;
    lr->fieldselector = field_selector ? xstrdup(field_selector) : NULL;
    lr->continue_ = q->cont ? xstrdup(q->cont) : NULL;
    lr->resourceversion = q->rv ? xstrdup(q->rv) : NULL;
    lr->has_allowwatchbookmarks = 1;
    lr->allowwatchbookmarks = query_true(q->bookmarks);
    return lr;
}

struct get_ctx {
    rest_t *rs;
    h2s_req_t *r;
    const struct rreq *rq;
};

static void get_cb(const void *val, size_t len, void *arg)
{
    struct get_ctx *g = arg;
    if (g->rq->table) {
        size_t n;
        char *t = kjson_table_object(g->rq->k, val, len, g->rq->include, &n);
        if (t)
            answer_table(g->rs, g->r, t, n);
        else
            answer_status(g->rs, g->r, 500, "InternalError", "undecodable stored object", NULL,
                          NULL);
        free(t);
        return;
    }
    char *j = kjson_object(g->rq->k, val, len);
    if (!j) {
        answer_status(g->rs, g->r, 500, "InternalError", "undecodable stored object", NULL, NULL);
        return;
    }
    size_t n = strlen(j);
    j[n] = '\n'; /* kobj's compact JSON has no newline; replace the NUL (length n + 1) */
    answer_json(g->rs, g->r, 200, j, n + 1);
    free(j);
}

static void do_get(rest_t *rs, h2s_req_t *r, const struct rreq *rq)
{
    struct get_ctx g = {rs, r, rq};
    const char *ns = rq->k->namespaced ? rq->ns : NULL;
    int rc = read_object(rs->cfg.st, rq->k, ns ? ns : "", rq->name, get_cb, &g);
    if (rc == 0)
        return;
    if (rc == STORE_ENOTFOUND) {
        char *m = xasprintf("%s \"%s\" not found", rq->k->resource, rq->name);
        answer_status(rs, r, 404, "NotFound", m, rq->k, rq->name);
        free(m);
    } else {
        answer_status(rs, r, 503, "ServiceUnavailable", store_strerror(rc), NULL, NULL);
    }
}

static void list_done(void *owner, void *owner2, int code, const char *msg, const uint8_t *out,
                      size_t len)
{
    rest_t *rs = owner;
    h2s_req_t *r = owner2;
    struct rreq rq = what_rreq(r);
    h2s_req_on_close(r, NULL, NULL);
    if (code != GRPC_OK) {
        answer_grpc(rs, r, code, msg, NULL, NULL);
        return;
    }
    size_t n;
    char *j = rq.table ? kjson_table_list(rq.k, out, len, rq.include, &n)
                       : kjson_list(rq.k, out, len, &n);
    if (!j)
        answer_status(rs, r, 500, "InternalError", "undecodable stored object", NULL, NULL);
    else if (rq.table)
        answer_table(rs, r, j, n);
    else
        answer_json(rs, r, 200, j, n);
    free(j);
}

static void list_gone(h2s_req_t *r, void *arg)
{
    read_list_cancel(arg);
}

static void do_list(rest_t *rs, h2s_req_t *r, const struct rreq *rq, const struct rquery *q)
{
    int64_t limit = 0;
    if (query_int(q->limit, &limit) < 0) {
        answer_status(rs, r, 400, "BadRequest", "limit: must be an integer", NULL, NULL);
        return;
    }
    Coracle__V1__ListRequest *lr = list_request(rq, q, q->field_selector);
    if (q->limit) {
        lr->has_limit = 1;
        lr->limit = limit;
    }
    size_t len = coracle__v1__list_request__get_packed_size(lr);
    struct lctx *x = read_list_start(rs->cfg.st, rs->cfg.reads, rq->k, lr, len, list_done, rs, r);
    if (x)
        h2s_req_on_close(r, list_gone, x);
}

static void watch_ended(void *arg, int code)
{
}

static void do_watch(rest_t *rs, h2s_req_t *r, const struct auth_user *u, const struct rreq *rq,
                     const struct rquery *q)
{
    int64_t timeout = 0;
    if (query_int(q->timeout, &timeout) < 0) {
        answer_status(rs, r, 400, "BadRequest", "timeoutSeconds: must be an integer", NULL, NULL);
        return;
    }
    if (query_true(q->initial)) {
        /* not implemented: refused, or a WatchList client would loop (it falls back to list) */
        answer_status(rs, r, 422, "Invalid",
                      "sendInitialEvents: Forbidden: sendInitialEvents is not supported by this "
                      "server",
                      NULL, NULL);
        return;
    }
    unsigned max = auth_max_watches(rs->cfg.auth);
    if (h2s_req_claim(r, u->id, max) < 0) {
        char *m =
            xasprintf("too many long-running requests for user \"%s\" (at most %u)", u->name, max);
        answer_status(rs, r, 429, "TooManyRequests", m, NULL, NULL);
        free(m);
        return;
    }
    /* the single-object form (GET .../pods/NAME?watch=true): a field selector on the name */
    char *fs = NULL;
    if (rq->name)
        fs = q->field_selector && *q->field_selector
                 ? xasprintf("metadata.name=%s,%s", rq->name, q->field_selector)
                 : xasprintf("metadata.name=%s", rq->name);
    Coracle__V1__ListRequest *lr = list_request(rq, q, fs ? fs : q->field_selector);
    if (timeout > 0) {
        lr->has_timeoutseconds = 1;
        lr->timeoutseconds = timeout;
    }
    watch_start_rest(rs->cfg.hub, r, rq->table, rq->k, lr, watch_ended, rs);
    coracle__v1__list_request__free_unpacked(lr, NULL);
    free(fs);
}

/* Subresources named but not served by this API yet. */
static bool sub_later(const char *sub)
{
    static const char *const later[] = {"log",   "exec",     "attach",      "binding",
                                        "proxy", "eviction", "portforward", "ephemeralcontainers",
                                        "resize"};
    for (size_t i = 0; i < ARRAY_SIZE(later); i++)
        if (!strcmp(sub, later[i]))
            return true;
    return false;
}

/*
 * Whether r asks for a Table (Accept: application/json;as=Table;g=meta.k8s.io,
 * as kubectl's get does): what its rows carry (enum cols_include), -1 for
 * no Table, -2 for a bad includeObject.
 */
static int table_wanted(h2s_req_t *r, const struct rquery *q)
{
    const char *acc = h2s_req_header(r, "accept");
    if (!acc || !strstr(acc, "as=Table") || !strstr(acc, "g=meta.k8s.io"))
        return -1;
    if (!q->include || !strcmp(q->include, "Metadata"))
        return COLS_INCLUDE_METADATA;
    if (!strcmp(q->include, "None"))
        return COLS_INCLUDE_NONE;
    if (!strcmp(q->include, "Object"))
        return COLS_INCLUDE_OBJECT;
    return -2;
}

static void resource(rest_t *rs, h2s_req_t *r, const struct auth_user *u, struct rreq *rq)
{
    const char *m = h2s_req_method(r);
    if ((strcmp(m, "GET") && strcmp(m, "HEAD")) || (rq->sub && sub_later(rq->sub))) {
        char *msg = xasprintf("%s on %s%s%s is not served yet by this server", m, rq->k->resource,
                              rq->sub ? "/" : "", rq->sub ? rq->sub : "");
        answer_status(rs, r, 405, "MethodNotAllowed", msg, NULL, NULL);
        free(msg);
        return;
    }
    if (rq->sub && strcmp(rq->sub, "status")) {
        not_found_path(rs, r);
        return;
    }
    struct rquery q;
    query_parse(h2s_req_query(r), &q);
    int inc = table_wanted(r, &q);
    if (inc == -2) {
        answer_status(rs, r, 400, "BadRequest",
                      "includeObject: must be one of None, Metadata or Object", NULL, NULL);
        query_free(&q);
        return;
    }
    rq->table = inc >= 0;
    rq->include = inc >= 0 ? (enum cols_include)inc : COLS_INCLUDE_METADATA;
    bool watch = query_true(q.watch);
    const char *verb = watch ? "watch" : rq->name ? "get" : "list";
    set_what(r, watch ? RV_WATCH : rq->name ? RV_GET : RV_LIST, rq);
    char *err = NULL;
    if (auth_check(rs->cfg.auth, u, rs->cfg.st, verb, rq->k, rq->sub, rq->ns,
                   watch ? NULL : rq->name, q.field_selector, &err) < 0) {
        answer_status(rs, r, 403, "Forbidden", err ? err : "forbidden", rq->k, rq->name);
        free(err);
    } else if (watch) {
        do_watch(rs, r, u, rq, &q);
    } else if (rq->name) {
        do_get(rs, r, rq);
    } else {
        do_list(rs, r, rq, &q);
    }
    query_free(&q);
}

/* /api..., /apis...: discovery or a resource; seg are the path's segments. */
static void api_path(rest_t *rs, h2s_req_t *r, const struct auth_user *u, char **seg, size_t n)
{
    bool core = !strcmp(seg[0], "api");
    set_what(r, RV_DISCOVERY, NULL);
    if (core && n == 1) {
        discovery_api(rs, r);
        return;
    }
    if (!core && n == 1) {
        discovery_apis(rs, r);
        return;
    }
    if (!core && n == 2) {
        discovery_group(rs, r, seg[1]);
        return;
    }
    char gv[128];
    if (core)
        snprintf(gv, sizeof(gv), "%s", seg[1]);
    else
        snprintf(gv, sizeof(gv), "%s/%s", seg[1], seg[2]);
    size_t rest = core ? 2 : 3;
    if (n == rest) {
        if (!discovery_resources(rs, r, gv))
            not_found_path(rs, r);
        return;
    }
    struct rreq rq;
    if (parse_resource(rs, r, gv, seg + rest, n - rest, &rq) == 0)
        resource(rs, r, u, &rq);
}

void rest_handle(h2s_req_t *r, void *arg)
{
    rest_t *rs = arg;
    if (rs->cfg.plain && rs->cfg.plain(r, rs->cfg.plain_arg))
        return;
    char *path = xstrdup(h2s_req_path(r));
    char *seg[MAX_SEGS + 1];
    size_t n = split(path, seg);
    bool api = n >= 1 && (!strcmp(seg[0], "api") || !strcmp(seg[0], "apis"));
    bool version = n == 1 && !strcmp(seg[0], "version");
    if (!api && !version) {
        static const char nf[] = "404 page not found\n";
        h2s_req_respond(r, 404, "text/plain; charset=utf-8", nf, sizeof(nf) - 1);
        goto out;
    }
    struct auth_user u;
    char *err = NULL;
    if (auth_authenticate_req(rs->cfg.auth, r, &u, &err) < 0) {
        answer_status(rs, r, 401, "Unauthorized", err ? err : "Unauthorized", NULL, NULL);
        free(err);
        goto out;
    }
    if (version) {
        set_what(r, RV_DISCOVERY, NULL);
        discovery_version(rs, r);
    } else if (n > MAX_SEGS - 1)
        not_found_path(rs, r);
    else
        api_path(rs, r, &u, seg, n);
out:
    free(path);
}

void rest_metrics(const rest_t *rs, FILE *f)
{
    fprintf(f, "# HELP coracle_apiserver_rest_requests_total Kubernetes REST requests answered "
               "(watches: refused ones), by verb and HTTP status.\n"
               "# TYPE coracle_apiserver_rest_requests_total counter\n");
    for (int v = 0; v < RV_N; v++)
        for (int i = 0; i < RCODES && rs->counts[v][i].status; i++)
            fprintf(f,
                    "coracle_apiserver_rest_requests_total{verb=\"%s\",code=\"%d\"} %" PRIu64 "\n",
                    rverb_names[v], rs->counts[v][i].status, rs->counts[v][i].n);
}

rest_t *rest_new(const struct rest_config *cfg)
{
    rest_t *rs = xcalloc(1, sizeof(*rs));
    rs->cfg = *cfg;
    return rs;
}

void rest_free(rest_t *rs)
{
    free(rs);
}
