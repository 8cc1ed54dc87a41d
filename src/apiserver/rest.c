/*
 * rest: the Kubernetes REST API's read path. See rest.h.
 *
 * A request goes: plain endpoints -> authenticate -> discovery, or parse
 * the resource path (group-version, namespace, resource, name,
 * subresource) into a struct rreq -> the verb (get, list, watch) ->
 * authorize with the same attributes the gRPC API checks -> the shared
 * machinery: read_object (Get), read_list_start (List, which may finish in
 * the read worker) and the watch hub (watch_start_rest). What they produce
 * is protobuf (the stored bytes); kjson turns it into Kubernetes JSON, kpb
 * wraps it in Kubernetes' protobuf envelope as it is.
 * Nothing here names a kind: the kinds table says what exists.
 */
#include "config.h"
#include "rest_int.h"
#include "satoken.h"
#include "api.h"
#include "audit.h"
#include "buf.h"
#include "grpc.h"
#include "kjson.h"
#include "kobj.h"
#include "kpb.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEGS 9

/* ---- answers ---- */

/*
 * A request's data says what it is, for the answers made later (a List's):
 * its verb (enum rverb, 0 until known), whether it wants a Table and its
 * rows' include, or protobuf, and the index of its kind in kinds_all.
 */
#define W_VERB 0xf
#define W_TABLE 0x10
#define W_INCLUDE_SHIFT 5
#define W_PB 0x80
#define W_KIND_SHIFT 8

void rest_set_what(h2s_req_t *r, enum rverb v, const struct rreq *rq)
{
    size_t ki = 0;
    while (rq && kinds_all[ki] != rq->k)
        ki++;
    intptr_t w = v | (rq && rq->table ? W_TABLE : 0) | (rq && rq->pb ? W_PB : 0);
    if (rq)
        w |= (intptr_t)rq->include << W_INCLUDE_SHIFT | (intptr_t)ki << W_KIND_SHIFT;
    h2s_req_set_data(r, (void *)w);
}

/* The parts of rq set_what kept (kind, table, include). */
struct rreq rest_what_rreq(const h2s_req_t *r)
{
    intptr_t w = (intptr_t)h2s_req_data(r);
    return (struct rreq){.k = kinds_all[w >> W_KIND_SHIFT],
                         .table = (w & W_TABLE) != 0,
                         .pb = (w & W_PB) != 0,
                         .include = (enum cols_include)(w >> W_INCLUDE_SHIFT & 3)};
}

/* Counts an answer to r. */
void rest_count(rest_t *rs, h2s_req_t *r, int status)
{
    if (rs->cfg.audit)
        audit_rest(rs->cfg.audit, rs->cfg.auth, r, status);
    enum rverb v = (enum rverb)((intptr_t)h2s_req_data(r) & W_VERB);
    for (int i = 0; i < RCODES; i++) {
        if (rs->counts[v][i].status == status || !rs->counts[v][i].status) {
            rs->counts[v][i].status = status;
            rs->counts[v][i].n++;
            return;
        }
    }
}

void rest_answer_json(rest_t *rs, h2s_req_t *r, int status, const char *body, size_t len)
{
    rest_count(rs, r, status);
    h2s_req_respond(r, status, REST_JSON, body, len);
}

void rest_answer_table(rest_t *rs, h2s_req_t *r, const char *body, size_t len)
{
    rest_count(rs, r, 200);
    h2s_req_respond(r, 200, REST_TABLE, body, len);
}

void rest_answer_pb(rest_t *rs, h2s_req_t *r, const char *body, size_t len)
{
    rest_count(rs, r, 200);
    h2s_req_respond(r, 200, KPB_TYPE, body, len);
}

void rest_answer_status(rest_t *rs, h2s_req_t *r, int status, const char *reason, const char *msg,
                        const struct kind *k, const char *name)
{
    if (status == 429)
        h2s_req_add_header(r, "retry-after", "1");
    bool pb_only;
    rest_accept(h2s_req_header(r, "accept"), &pb_only);
    if (pb_only) {
        size_t n;
        char *b = kpb_status(status, reason, msg, k ? k->resource : NULL, name, &n);
        rest_count(rs, r, status);
        h2s_req_respond(r, status, KPB_TYPE, b, n);
        free(b);
        return;
    }
    char *b = kjson_status(status, reason, msg, k ? k->resource : NULL, name);
    rest_answer_json(rs, r, status, b, strlen(b));
    free(b);
}

/* A failure from the shared machinery, which speaks gRPC codes. */
void rest_answer_grpc(rest_t *rs, h2s_req_t *r, int code, const char *msg, const struct kind *k,
                      const char *name)
{
    const char *reason;
    int st = kjson_http_status(code, &reason);
    rest_answer_status(rs, r, st, reason, msg, k, name);
}

void rest_not_found_path(rest_t *rs, h2s_req_t *r)
{
    rest_answer_status(rs, r, 404, "NotFound", "the server could not find the requested resource",
                       NULL, NULL);
}

/* ---- resource paths ---- */

static size_t split(char *p, char **seg)
{
    size_t n = 0;
    while (n < MAX_SEGS) {
        p += strspn(p, "/");
        if (!*p)
            break;
        seg[n++] = p;
        p += strcspn(p, "/");
        if (*p)
            *p++ = 0;
    }
    return n;
}

/* namespaces/<ns>/<resource>...: a scope; namespaces[/<name>[/status]]: the kind */
static bool ns_scoped(char **seg, size_t n)
{
    return n >= 3 && !strcmp(seg[0], "namespaces") && strcmp(seg[2], "status") &&
           strcmp(seg[2], "finalize");
}

/*
 * seg (after the group-version) into rq for gv. Returns 0, or -1 after
 * answering 404.
 */
static int parse_resource(rest_t *rs, h2s_req_t *r, const char *gv, char **seg, size_t n,
                          struct rreq *rq)
{
    memset(rq, 0, sizeof(*rq));
    if (ns_scoped(seg, n)) {
        rq->ns = seg[1];
        seg += 2;
        n -= 2;
    }
    if (n < 1 || n > 3)
        goto nf;
    /* one kind's requests come in runs: the last one found is tried first */
    const struct kind *last = rs->last_kind;
    if (last && !strcmp(last->resource, seg[0]) && !strcmp(last->api_version, gv))
        rq->k = last;
    for (size_t i = 0; !rq->k && kinds_all[i]; i++)
        if (!strcmp(kinds_all[i]->resource, seg[0]) && !strcmp(kinds_all[i]->api_version, gv))
            rq->k = rs->last_kind = kinds_all[i];
    if (!rq->k || (rq->ns && !rq->k->namespaced) || (n > 1 && rq->k->namespaced && !rq->ns))
        goto nf;
    rq->name = n > 1 ? seg[1] : NULL;
    rq->sub = n > 2 ? seg[2] : NULL;
    return 0;
nf:
    rest_not_found_path(rs, r);
    return -1;
}

/* Whether segment s of n bytes is w. */
static bool seg_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && !memcmp(s, w, n);
}

/*
 * kube-apiserver's long-running check: the watch and proxy verbs (a watch
 * query, or the /watch/ and /proxy/ path forms) and the attach, exec,
 * log, portforward and proxy subresources, whatever their options.
 */
int rest_long_running(const h2s_req_t *r)
{
    static const char *const subs[] = {"attach", "exec", "log", "portforward", "proxy"};
    const char *p = h2s_req_path(r), *qs = h2s_req_query(r);
    if (strncmp(p, "/api/", 5) && strncmp(p, "/apis/", 6))
        return 0;
    if (!strcmp(h2s_req_method(r), "GET") && strstr(qs, "watch")) {
        struct rquery q;
        rest_query_parse(qs, &q);
        bool watch = rest_query_true(rest_query_get(&q, "watch"));
        rest_query_free(&q);
        if (watch)
            return 1;
    }
    /* the path's segments as split makes them, in place: every request is counted */
    const char *seg[MAX_SEGS];
    size_t len[MAX_SEGS], n = 0;
    for (const char *t = p; *t && n < MAX_SEGS;) {
        size_t l = strcspn(t, "/");
        if (l) {
            seg[n] = t;
            len[n++] = l;
        }
        t += l + (t[l] == '/');
    }
    size_t gv = seg_is(seg[0], len[0], "api") ? 2 : 3, s = gv;
    int lr = 0;
    if (n > gv) {
        lr = seg_is(seg[s], len[s], "watch") || seg_is(seg[s], len[s], "proxy");
        /* ns_scoped's namespaces/<ns>/<resource>... */
        if (n - s >= 3 && seg_is(seg[s], len[s], "namespaces") &&
            !seg_is(seg[s + 2], len[s + 2], "status") &&
            !seg_is(seg[s + 2], len[s + 2], "finalize"))
            s += 2;
        for (size_t i = 0; n - s >= 3 && i < ARRAY_SIZE(subs); i++)
            lr |= seg_is(seg[s + 2], len[s + 2], subs[i]);
    }
    return lr;
}

/* ---- verbs ---- */

/* A copy of parameter name's value, or NULL if absent. */
static char *param_dup(const struct rquery *q, const char *name)
{
    const char *v = rest_query_get(q, name);
    return v ? xstrdup(v) : NULL;
}

/* A ListRequest from the query (the List and the watch take the same). */
static Coracle__V1__ListRequest *list_request(const struct rreq *rq, const struct rquery *q,
                                              const char *field_selector)
{
    Coracle__V1__ListRequest *lr = xmalloc(sizeof(*lr));
    coracle__v1__list_request__init(lr);
    lr->namespace_ = rq->ns ? xstrdup(rq->ns) : NULL;
    lr->labelselector = param_dup(q, "labelSelector");
    lr->fieldselector = field_selector ? xstrdup(field_selector) : NULL;
    lr->continue_ = param_dup(q, "continue");
    lr->resourceversion = param_dup(q, "resourceVersion");
    lr->has_allowwatchbookmarks = 1;
    lr->allowwatchbookmarks = rest_query_true(rest_query_get(q, "allowWatchBookmarks"));
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
    if (g->rq->pb) { /* the stored bytes as they are, in the envelope */
        size_t n;
        char *b = kpb_object(g->rq->k, val, len, &n);
        rest_answer_pb(g->rs, g->r, b, n);
        free(b);
        return;
    }
    if (g->rq->table) {
        size_t n;
        char *t = kjson_table_object(g->rq->k, val, len, g->rq->include, &n);
        if (t)
            rest_answer_table(g->rs, g->r, t, n);
        else
            rest_answer_status(g->rs, g->r, 500, "InternalError", "undecodable stored object", NULL,
                               NULL);
        free(t);
        return;
    }
    char *j = kjson_object(g->rq->k, val, len);
    if (!j) {
        rest_answer_status(g->rs, g->r, 500, "InternalError", "undecodable stored object", NULL,
                           NULL);
        return;
    }
    size_t n = strlen(j);
    j[n] = '\n'; /* kobj's compact JSON has no newline; replace the NUL (length n + 1) */
    rest_answer_json(g->rs, g->r, 200, j, n + 1);
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
        char *m = xasprintf("%s \"%s\" not found", rq->k->group_resource, rq->name);
        rest_answer_status(rs, r, 404, "NotFound", m, rq->k, rq->name);
        free(m);
    } else if (rc == STORE_ETRANSFORM) {
        rest_answer_status(rs, r, 500, "InternalError", store_strerror(rc), NULL, NULL);
    } else {
        rest_answer_status(rs, r, 503, "ServiceUnavailable", store_strerror(rc), NULL, NULL);
    }
}

static void list_done(void *owner, void *owner2, int code, const char *msg, const uint8_t *out,
                      size_t len)
{
    rest_t *rs = owner;
    h2s_req_t *r = owner2;
    struct rreq rq = rest_what_rreq(r);
    h2s_req_on_close(r, NULL, NULL);
    if (code != GRPC_OK) {
        rest_answer_grpc(rs, r, code, msg, NULL, NULL);
        return;
    }
    size_t n;
    if (rq.pb) { /* a ListResponse is a List message: it goes in the envelope as it is */
        char *b = kpb_list(rq.k, out, len, &n);
        rest_answer_pb(rs, r, b, n);
        free(b);
        return;
    }
    char *j = rq.table ? kjson_table_list(rq.k, out, len, rq.include, &n)
                       : kjson_list(rq.k, out, len, &n);
    if (!j)
        rest_answer_status(rs, r, 500, "InternalError", "undecodable stored object", NULL, NULL);
    else if (rq.table)
        rest_answer_table(rs, r, j, n);
    else
        rest_answer_json(rs, r, 200, j, n);
    free(j);
}

static void list_gone(h2s_req_t *r, void *arg)
{
    read_list_cancel(arg);
}

/* ---- ListOptions: the combinations Kubernetes refuses ---- */

/* A Forbidden (detail) or, with bad, an Unsupported value error on field, into errs. */
static void lo_err(struct buf *errs, size_t *n, const char *field, const char *detail,
                   const char *bad)
{
    buf_printf(errs, "%s%s: ", (*n)++ ? ", " : "", field);
    if (bad) {
        buf_puts(errs, "Unsupported value: ");
        kobj_json_str(errs, bad, strlen(bad));
        buf_printf(errs, ": supported values: %s", detail);
    } else {
        buf_printf(errs, "Forbidden: %s", detail);
    }
}

/*
 * Kubernetes' checks of a list's or a watch's options (apimachinery
 * meta/internalversion/validation, WatchList enabled). Returns 0, or -1
 * after answering 422 Invalid as Kubernetes does.
 */
static int list_options_check(rest_t *rs, h2s_req_t *r, const struct rquery *q, bool watch)
{
    const char *match = rest_query_get(q, "resourceVersionMatch");
    const char *rv = rest_query_get(q, "resourceVersion");
    const char *cont = rest_query_get(q, "continue");
    const char *sie = rest_query_get(q, "sendInitialEvents");
    bool has_match = match && *match, has_cont = cont && *cont;
    struct buf e = {0};
    size_t n = 0;
    if (watch) {
        if (sie && !(has_match && !strcmp(match, "NotOlderThan")))
            lo_err(&e, &n, "resourceVersionMatch",
                   "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan", NULL);
        if (has_match && !sie)
            lo_err(&e, &n, "resourceVersionMatch",
                   "resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
                   "provided",
                   NULL);
        if (has_match && strcmp(match, "NotOlderThan"))
            lo_err(&e, &n, "resourceVersionMatch", "\"NotOlderThan\"", match);
        if (has_match && has_cont)
            lo_err(&e, &n, "resourceVersionMatch",
                   "resourceVersionMatch is forbidden when continue is provided", NULL);
    } else {
        if (has_match && !(rv && *rv))
            lo_err(&e, &n, "resourceVersionMatch",
                   "resourceVersionMatch is forbidden unless resourceVersion is provided", NULL);
        if (has_match && has_cont)
            lo_err(&e, &n, "resourceVersionMatch",
                   "resourceVersionMatch is forbidden when continue is provided", NULL);
        if (has_match && strcmp(match, "Exact") && strcmp(match, "NotOlderThan"))
            lo_err(&e, &n, "resourceVersionMatch", "\"Exact\", \"NotOlderThan\", \"\"", match);
        if (has_match && !strcmp(match, "Exact") && rv && !strcmp(rv, "0"))
            lo_err(&e, &n, "resourceVersionMatch",
                   "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"", NULL);
        if (sie)
            lo_err(&e, &n, "sendInitialEvents", "sendInitialEvents is forbidden for list", NULL);
    }
    if (!n)
        return 0;
    char *m = xasprintf("ListOptions.meta.k8s.io \"\" is invalid: %s%s%s", n > 1 ? "[" : "", e.p,
                        n > 1 ? "]" : "");
    bool pb_only;
    rest_accept(h2s_req_header(r, "accept"), &pb_only);
    if (pb_only) {
        rest_answer_status(rs, r, 422, "Invalid", m, NULL, NULL);
    } else {
        char *b = kjson_invalid("meta.k8s.io", "ListOptions", "", m);
        rest_answer_json(rs, r, 422, b, strlen(b));
        free(b);
    }
    free(m);
    buf_free(&e);
    return -1;
}

static void do_list(rest_t *rs, h2s_req_t *r, const struct rreq *rq, const struct rquery *q)
{
    if (list_options_check(rs, r, q, false) < 0)
        return;
    int64_t limit = 0;
    if (rest_query_int(rest_query_get(q, "limit"), &limit) < 0) {
        rest_answer_status(rs, r, 400, "BadRequest", "limit: must be an integer", NULL, NULL);
        return;
    }
    Coracle__V1__ListRequest *lr = list_request(rq, q, rest_query_get(q, "fieldSelector"));
    if (rest_query_get(q, "limit")) {
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

/*
 * WatchList (sendInitialEvents, resourceVersionMatch=NotOlderThan checked):
 * with sendInitialEvents=true the current state, which is at least as
 * fresh as any resourceVersion the store has reached, then the BOOKMARK
 * that ends it; with false, the changes after resourceVersion, or from now
 * without one. Sets lr's resourceVersion and o for the hub; returns 0, or
 * -1 after answering.
 */
static int watch_list(rest_t *rs, h2s_req_t *r, const struct rquery *q,
                      Coracle__V1__ListRequest *lr, struct watch_rest_opts *o)
{
    const char *rvs = lr->resourceversion;
    store_rtxn_t *t;
    int rc = store_read_begin(rs->cfg.st, &t);
    if (rc < 0) {
        rest_answer_status(rs, r, 503, "ServiceUnavailable", store_strerror(rc), NULL, NULL);
        return -1;
    }
    uint64_t now = store_rtxn_rev(t), n = 0;
    store_read_end(t);
    if (rvs && *rvs) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(rvs, &end, 10);
        if (errno || *end || !isdigit((unsigned char)rvs[0]))
            return 0; /* the hub says what is wrong with it */
        n = v;
    }
    if (!rest_query_true(rest_query_get(q, "sendInitialEvents"))) {
        if (!n) {
            free(lr->resourceversion);
            lr->resourceversion = xasprintf("%" PRIu64, now);
        }
        return 0;
    }
    if (n > now) {
        char *m = xasprintf("Too large resource version: %" PRIu64 ", current: %" PRIu64, n, now);
        rest_answer_status(rs, r, 504, "Timeout", m, NULL, NULL);
        free(m);
        return -1;
    }
    free(lr->resourceversion);
    lr->resourceversion = NULL; /* the state now, as ADDED events */
    o->initial_end = true;
    return 0;
}

static void do_watch(rest_t *rs, h2s_req_t *r, const struct auth_user *u, const struct rreq *rq,
                     const struct rquery *q)
{
    int64_t timeout = 0;
    if (rest_query_int(rest_query_get(q, "timeoutSeconds"), &timeout) < 0) {
        rest_answer_status(rs, r, 400, "BadRequest", "timeoutSeconds: must be an integer", NULL,
                           NULL);
        return;
    }
    if (list_options_check(rs, r, q, true) < 0)
        return;
    unsigned max = auth_max_watches(rs->cfg.auth);
    if (h2s_req_claim(r, u->id, max) < 0) {
        char *m =
            xasprintf("too many long-running requests for user \"%s\" (at most %u)", u->name, max);
        rest_answer_status(rs, r, 429, "TooManyRequests", m, NULL, NULL);
        free(m);
        return;
    }
    /* the single-object form (GET .../pods/NAME?watch=true): a field selector on the name */
    char *fs = NULL;
    if (rq->name)
        fs = rest_query_get(q, "fieldSelector") && *rest_query_get(q, "fieldSelector")
                 ? xasprintf("metadata.name=%s,%s", rq->name, rest_query_get(q, "fieldSelector"))
                 : xasprintf("metadata.name=%s", rq->name);
    Coracle__V1__ListRequest *lr =
        list_request(rq, q, fs ? fs : rest_query_get(q, "fieldSelector"));
    if (timeout > 0) {
        lr->has_timeoutseconds = 1;
        lr->timeoutseconds = timeout;
    }
    struct watch_rest_opts o = {.enc = rq->table ? WATCH_TABLE
                                       : rq->pb  ? WATCH_PROTOBUF
                                                 : WATCH_JSON};
    rest_accept(h2s_req_header(r, "accept"), &o.pb_errors);
    /* Kubernetes' defaulting (SetListOptionsDefaults): a watch from "" or "0" is a WatchList */
    const char *rv = lr->resourceversion;
    o.initial_end = !rest_query_get(q, "sendInitialEvents") &&
                    !rest_query_get(q, "resourceVersionMatch") && (!rv || !*rv || !strcmp(rv, "0"));
    if (!rest_query_get(q, "sendInitialEvents") || watch_list(rs, r, q, lr, &o) == 0)
        watch_start_rest(rs->cfg.hub, r, &o, rq->k, lr, watch_ended, rs);
    coracle__v1__list_request__free_unpacked(lr, NULL);
    free(fs);
}

/*
 * Whether the Accept header asked for a Table (fmt; application/json;as=Table;
 * g=meta.k8s.io, as kubectl's get sends): what its rows carry (enum
 * cols_include), -1 for no Table, -2 for a bad includeObject.
 */
static int table_wanted(enum rest_fmt fmt, const struct rquery *q)
{
    if (fmt != RF_TABLE)
        return -1;
    if (!rest_query_get(q, "includeObject") ||
        !strcmp(rest_query_get(q, "includeObject"), "Metadata"))
        return COLS_INCLUDE_METADATA;
    if (!strcmp(rest_query_get(q, "includeObject"), "None"))
        return COLS_INCLUDE_NONE;
    if (!strcmp(rest_query_get(q, "includeObject"), "Object"))
        return COLS_INCLUDE_OBJECT;
    return -2;
}

/* ---- reads not older than a resourceVersion (read_rv_hold) ---- */

struct rvwait {
    rest_t *rs;
    h2s_req_t *r;
    struct read_rvwait *w;
};

static void rvwait_gone(h2s_req_t *r, void *arg)
{
    struct rvwait *x = arg;
    (void)r;
    read_rv_cancel(x->w);
    free(x);
}

/* Reached: the request runs again from the top; else 504 as Kubernetes. */
static void rvwait_end(void *arg, const char *too_large)
{
    struct rvwait *x = arg;
    rest_t *rs = x->rs;
    h2s_req_t *r = x->r;
    h2s_req_on_close(r, NULL, NULL);
    free(x);
    if (!too_large) {
        rest_handle(r, rs);
        return;
    }
    h2s_req_add_header(r, "retry-after", "1");
    rest_answer_status(rs, r, 504, "Timeout", too_large, NULL, NULL);
}

/* A get or list whose resourceVersion the store has not reached yet waits. Returns true if held. */
static bool rv_hold(rest_t *rs, h2s_req_t *r, const struct rquery *q)
{
    struct rvwait *x = xcalloc(1, sizeof(*x));
    x->rs = rs;
    x->r = r;
    x->w = read_rv_hold(rs->cfg.st, rs->streams.base, rest_query_get(q, "resourceVersion"),
                        rvwait_end, x);
    if (!x->w) {
        free(x);
        return false;
    }
    h2s_req_on_close(r, rvwait_gone, x);
    return true;
}

static void resource(rest_t *rs, h2s_req_t *r, const struct auth_user *u, struct rreq *rq)
{
    const char *m = h2s_req_method(r);
    bool read = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    if (kind_virtual(rq->k) && read) {
        rest_answer_status(rs, r, 405, "MethodNotAllowed",
                           "the server does not allow this method on the requested resource", NULL,
                           NULL);
        return;
    }
    if (rq->sub && rest_connect_sub(rq->sub)) {
        struct rquery q;
        rest_query_parse(h2s_req_query(r), &q);
        rest_connect(rs, r, u, rq, &q);
        rest_query_free(&q);
        return;
    }
    if (rq->sub && !strcmp(rq->sub, "token") && rq->k == &kind_serviceaccount &&
        satoken_issuing(rs->cfg.sat)) {
        rest_token(rs, r, u, rq);
        return;
    }
    if (!read) {
        struct rquery q;
        rest_query_parse(h2s_req_query(r), &q);
        rest_write(rs, r, u, rq, &q);
        rest_query_free(&q);
        return;
    }
    bool scale = rq->sub && !strcmp(rq->sub, "scale") && kind_has_scale(rq->k) && rq->name;
    if (rq->sub && strcmp(rq->sub, "status") && !scale) {
        rest_not_found_path(rs, r);
        return;
    }
    struct rquery q;
    rest_query_parse(h2s_req_query(r), &q);
    bool pb_only;
    enum rest_fmt fmt = rest_accept(h2s_req_header(r, "accept"), &pb_only);
    int inc = table_wanted(fmt, &q);
    if (inc == -2) {
        rest_answer_status(rs, r, 400, "BadRequest",
                           "includeObject: must be one of None, Metadata or Object", NULL, NULL);
        rest_query_free(&q);
        return;
    }
    rq->table = inc >= 0;
    rq->pb = fmt == RF_PB;
    rq->include = inc >= 0 ? (enum cols_include)inc : COLS_INCLUDE_METADATA;
    bool watch = rest_query_true(rest_query_get(&q, "watch"));
    if (!watch && rv_hold(rs, r, &q)) {
        rest_query_free(&q);
        return;
    }
    const char *verb = watch ? "watch" : rq->name ? "get" : "list";
    rest_set_what(r, watch ? RV_WATCH : rq->name ? RV_GET : RV_LIST, rq);
    char *err = NULL;
    if (auth_check(rs->cfg.auth, u, rs->cfg.st, verb, rq->k, rq->sub, rq->ns,
                   watch ? NULL : rq->name, rest_query_get(&q, "fieldSelector"), &err) < 0) {
        rest_answer_status(rs, r, 403, "Forbidden", err ? err : "forbidden", rq->k, rq->name);
        free(err);
    } else if (scale && !watch) {
        rest_scale_get(rs, r, rq);
    } else if (watch) {
        do_watch(rs, r, u, rq, &q);
    } else if (rq->name) {
        do_get(rs, r, rq);
    } else {
        do_list(rs, r, rq, &q);
    }
    rest_query_free(&q);
}

/*
 * Authorizes a non-resource request (discovery, /version, /openapi) as
 * Kubernetes does: the lower-case method on the URL path. Returns 0, or -1
 * after answering 403.
 */
static int authorize_path(rest_t *rs, h2s_req_t *r, const struct auth_user *u)
{
    const char *p = h2s_req_path(r);
    char *path = xstrndup(p, strcspn(p, "?"));
    char verb[16];
    snprintf(verb, sizeof(verb), "%s", h2s_req_method(r));
    for (char *v = verb; *v; v++)
        *v = (char)tolower((unsigned char)*v);
    char *err = NULL;
    int rc = auth_authorize_path(rs->cfg.auth, u, verb, path, &err);
    if (rc < 0)
        rest_answer_status(rs, r, 403, "Forbidden", err, NULL, NULL);
    free(err);
    free(path);
    return rc;
}

/* /api..., /apis...: discovery or a resource; seg are the path's segments. */
static void api_path(rest_t *rs, h2s_req_t *r, const struct auth_user *u, char **seg, size_t n)
{
    rest_set_what(r, RV_DISCOVERY, NULL);
    bool core = !strcmp(seg[0], "api");
    /* /api, /api/v1, /apis, /apis/G, /apis/G/V are discovery: non-resource requests */
    if (n <= (core ? 2u : 3u) && authorize_path(rs, r, u) < 0)
        return;
    if (rest_discovery(rs, r, seg, n))
        return;
    char gv[256];
    size_t g = core ? 0 : strlen(seg[1]), v = strlen(seg[core ? 1 : 2]);
    if (g + 1 + v >= sizeof(gv)) {
        rest_not_found_path(rs, r); /* no kind has such a group-version */
        return;
    }
    memcpy(gv, seg[1], g);
    gv[g] = '/';
    memcpy(gv + (core ? 0 : g + 1), seg[core ? 1 : 2], v + 1);
    size_t rest = core ? 2 : 3;
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
    bool openapi = n >= 1 && !strcmp(seg[0], "openapi");
    bool oidc = satoken_discovery_path(h2s_req_path(r));
    if (!api && !version && !openapi && !oidc) {
        static const char nf[] = "404 page not found\n";
        h2s_req_respond(r, 404, "text/plain; charset=utf-8", nf, sizeof(nf) - 1);
        goto out;
    }
    struct auth_user u;
    char *err = NULL;
    if (auth_authenticate_req(rs->cfg.auth, r, &u, &err) < 0) {
        rest_answer_status(rs, r, 401, "Unauthorized", err ? err : "Unauthorized", NULL, NULL);
        free(err);
        goto out;
    }
    if (oidc) {
        if (!rest_oidc(rs, r))
            rest_not_found_path(rs, r);
    } else if ((version || openapi) && (rest_set_what(r, version ? RV_DISCOVERY : RV_OPENAPI, NULL),
                                        authorize_path(rs, r, &u) < 0)) {
        /* answered (403): r may be gone already */
    } else if (version) {
        rest_discovery_version(rs, r);
    } else if (openapi) {
        rest_openapi(rs, r, seg, n);
    } else if (n > MAX_SEGS - 1)
        rest_not_found_path(rs, r);
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
    static const char *const rverb_names[RV_N] = {
        "other",  "discovery",        "get",     "list",   "watch", "create", "update", "patch",
        "delete", "deletecollection", "connect", "openapi"};
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

void rest_set_streams(rest_t *rs, const struct rest_streams *st)
{
    rs->streams = *st;
    if (rs->streams.setup_timeout_s <= 0)
        rs->streams.setup_timeout_s = 30;
    if (rs->streams.idle_timeout_s <= 0)
        rs->streams.idle_timeout_s = 14400;
}

void rest_free(rest_t *rs)
{
    rest_openapi_free(rs);
    free(rs);
}
