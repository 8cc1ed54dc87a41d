/*
 * rest_write: the REST API's write verbs, for every kind alike:
 *   POST   collection            create (201)
 *   PUT    NAME[/status]         update, UpdateStatus
 *   PATCH  NAME[/status]         patch (kpatch.h), then an update
 *   PUT    NAME/scale            the object's spec.replicas (rest_scale.c)
 *   PATCH  NAME/scale            a patch of the Scale, then the same
 *   POST   NAME/binding          Bind (kinds that have it: api_has_verb)
 *   DELETE NAME                  delete (DeleteOptions)
 *   DELETE collection            deletecollection
 * A request is decoded here (JSON, YAML or Kubernetes' protobuf envelope,
 * with fieldValidation; query options dryRun, fieldManager) and then goes
 * through the gRPC API's stages (api.h): api_authorize, api_admit,
 * api_submit, whose store op answers back through struct wreq, the ops'
 * owner. So REST and gRPC writes share authorization, admission, the
 * commit thread's decisions (apply.c), events and watch notifications.
 * Errors are Kubernetes Status objects with its wording. See rest_int.h.
 */
#include "config.h"
#include "rest_int.h"
#include "admit.h"
#include "api.h"
#include "apply.h"
#include "buf.h"
#include "grpc.h"
#include "kjson.h"
#include "kobj.h"
#include "kpatch.h"
#include "kssa.h"
#include "obj.h"
#include "pb.h"
#include "review.h"
#include "rpool.h"
#include "wire.h"
#include "util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MEDIA_APPLY "application/apply-patch+yaml"
/* Kubernetes retries a patch this often when the object changed under it */
#define PATCH_TRIES 5

/* One write in progress: the owner of its store ops (apply.h's struct apply_owner). */
struct wreq {
    rest_t *rs;
    h2s_req_t *r; /* NULL once the client has gone */
    const struct kind *k;
    enum rverb verb;
    const char *sub; /* "status", "binding", "scale" or NULL (static) */
    char *ns, *name; /* the path's (name: the object's for a create) */
    int ok_status;   /* 200, or 201 for creates */
    struct rwrite_opts opts;
    int pending;       /* ops (or a List) not answered yet */
    struct lctx *list; /* deletecollection: its List in progress */
    struct rjob *job;  /* a big body's decoding in the read worker */
    /* patch: what a retry needs */
    enum kpatch_type ptype;
    int tries;
    bool names_rv; /* the patch sets resourceVersion: no retry on Conflict */
    bool apply;    /* server-side apply: its result carries managedFields already */
    bool force;    /* apply: take the fields other managers own (force=true) */
    /* deletecollection: the delete's options, the answer so far */
    struct apply_op *tmpl;
    struct buf items; /* a ListResponse: ListMeta, then each deleted object */
    int fail_code;
    char *fail_msg;
    struct auth_user user; /* the caller (its strings live as long as the auth_t) */
};

static const struct apply_owner wreq_owner;

static void wreq_free(struct wreq *w)
{
    free(w->ns);
    free(w->name);
    free(w->opts.field_manager);
    apply_op_free(w->tmpl);
    buf_free(&w->items);
    free(w->fail_msg);
    free(w);
}

/* Frees w once nothing refers to it: answered (or the client gone) and no op pending. */
static void wreq_release(struct wreq *w)
{
    if (!w->r && !w->pending && !w->list)
        wreq_free(w);
}

static void wreq_closed(h2s_req_t *r, void *arg)
{
    struct wreq *w = arg;
    w->r = NULL;
    if (w->list) {
        read_list_cancel(w->list);
        w->list = NULL;
    }
    if (w->job)
        rjob_cancel(w->job); /* its done still runs, and releases w */
    wreq_release(w);
}

/* ---- answers ---- */

/* Every answer goes through here: the request is finished after it. */
static void answer_json(struct wreq *w, int status, const char *body, size_t len)
{
    h2s_req_on_close(w->r, NULL, NULL);
    rest_answer_json(w->rs, w->r, status, body, len);
    w->r = NULL;
}

/* A Status failure; Kubernetes names the object in those about one (404, 409, 403). */
static void answer_status(struct wreq *w, int status, const char *reason, const char *msg)
{
    bool details = w->name && (status == 404 || status == 409 || status == 403);
    h2s_req_on_close(w->r, NULL, NULL);
    rest_answer_status(w->rs, w->r, status, reason, msg, details ? w->k : NULL,
                       details ? w->name : NULL);
    w->r = NULL;
}

static void answer_statusf(struct wreq *w, int status, const char *reason, const char *fmt, ...)
    PRINTF(4, 5);
static void answer_statusf(struct wreq *w, int status, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    answer_status(w, status, reason, m);
    free(m);
}

/* A 422 Invalid for an admission message (`Pod "x" is invalid: ...`) about a kind of group. */
static void answer_invalid(struct wreq *w, const char *group, const char *kind, const char *name,
                           const char *msg)
{
    char *b = kjson_invalid(group, kind, name, msg);
    answer_json(w, 422, b, strlen(b));
    free(b);
}

static void answer_invalid_kind(struct wreq *w, const char *msg)
{
    const char *g, *v;
    size_t gl;
    rest_kind_gv(w->k, &g, &gl, &v);
    char *group = xstrndup(g, gl);
    answer_invalid(w, group, w->sub && !strcmp(w->sub, "binding") ? "Binding" : w->k->kind, w->name,
                   msg);
    free(group);
}

/* The reason Kubernetes gives with an HTTP status the patch library answers. */
static const char *reason_of(int status)
{
    switch (status) {
    case 413:
        return "RequestEntityTooLarge";
    case 415:
        return "UnsupportedMediaType";
    case 422:
        return "Invalid";
    case 409:
        return "Conflict";
    default:
        return "BadRequest";
    }
}

/* A failure of the shared pipeline (a gRPC code): admission's Invalid texts become 422. */
static void answer_grpc(struct wreq *w, int code, const char *msg)
{
    if (code == GRPC_INVALID_ARGUMENT && msg && strstr(msg, " is invalid: ")) {
        answer_invalid_kind(w, msg);
        return;
    }
    const char *reason;
    int st = kjson_http_status(code, &reason);
    answer_status(w, st, reason, msg);
}

/* The outcome of a write: the object (or, for a binding, Status Success). */
/* Object JSON j of n bytes (a NUL at j[n], which the newline replaces) as the answer. */
static void answer_text(struct wreq *w, char *j, size_t n)
{
    j[n] = '\n'; /* compact JSON has no newline */
    answer_json(w, w->ok_status, j, n + 1);
}

static void answer_object(struct wreq *w, const void *val, size_t len)
{
    if (w->sub && !strcmp(w->sub, "binding")) {
        static const char ok[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
                                 "\"status\":\"Success\",\"code\":201}\n";
        answer_json(w, 201, ok, sizeof(ok) - 1);
        return;
    }
    char *j = NULL;
    if (w->sub && !strcmp(w->sub, "scale")) {
        ProtobufCMessage *obj = val ? obj_decode(w->k->desc, val, len) : NULL;
        j = obj ? rest_scale_json(w->k, obj) : NULL;
        obj_free(obj);
    } else {
        j = kjson_object(w->k, val ? val : "", val ? len : 0);
    }
    if (!j) {
        answer_status(w, 500, "InternalError", "undecodable stored object");
        return;
    }
    answer_text(w, j, strlen(j));
    free(j);
}

/* ---- options ---- */

/* What Kubernetes calls a verb's options (the kind its Invalid answers name). */
static const char *options_kind(enum rverb v)
{
    return v == RV_CREATE   ? "CreateOptions"
           : v == RV_UPDATE ? "UpdateOptions"
           : v == RV_PATCH  ? "PatchOptions"
                            : "DeleteOptions";
}

/* Whether r is server-side apply's PATCH (its content type). */
static bool apply_patch(h2s_req_t *r)
{
    char *mt = rest_media_type(h2s_req_header(r, "content-type"));
    bool apply = !strcmp(mt, MEDIA_APPLY);
    free(mt);
    return apply;
}

/*
 * dryRun, fieldManager, fieldValidation (every write takes them) into
 * w->opts. Returns 0, or -1 after answering 422 as Kubernetes'
 * Validate*Options do.
 */
static int parse_opts(struct wreq *w, const struct rquery *q)
{
    const char *dry = rest_query_get(q, "dryRun"), *fm = rest_query_get(q, "fieldManager"),
               *fv = rest_query_get(q, "fieldValidation");
    char *why = NULL;
    if (dry && strcmp(dry, "All"))
        why = xasprintf("dryRun: Unsupported value: []string{\"%s\"}: supported values: \"All\"",
                        dry);
    else if (fm && (why = admit_field_manager(fm))) {
        char *t = why;
        why = xconcat("fieldManager: ", t, NULL);
        free(t);
    } else if (fv && *fv && strcmp(fv, "Strict") && strcmp(fv, "Warn") && strcmp(fv, "Ignore"))
        why = xasprintf("fieldValidation: Unsupported value: \"%s\": supported values: \"\", "
                        "\"Ignore\", \"Strict\", \"Warn\"",
                        fv);
    else if (w->verb == RV_PATCH && rest_query_get(q, "force") && !apply_patch(w->r))
        why = xstrdup("force: Forbidden: may not be specified for non-apply patch");
    else if (w->verb == RV_PATCH && (!fm || !*fm) && apply_patch(w->r))
        why = xstrdup("fieldManager: Required value: is required for apply patch");
    if (why) {
        char *m = xasprintf("%s.meta.k8s.io \"\" is invalid: %s", options_kind(w->verb), why);
        answer_invalid(w, "meta.k8s.io", options_kind(w->verb), "", m);
        free(m);
        free(why);
        return -1;
    }
    w->opts.dry_run = dry != NULL;
    w->opts.field_manager = fm ? xstrdup(fm) : NULL;
    /* a bool parameter: any value but false and 0 is true, as Kubernetes converts it */
    const char *force = rest_query_get(q, "force");
    w->force = force && strcasecmp(force, "false") && strcmp(force, "0");
    /* Warn unless told: Kubernetes' default since 1.27 */
    w->opts.fields = !fv || !*fv || !strcmp(fv, "Warn") ? KOBJ_FIELDS_WARN
                     : !strcmp(fv, "Strict")            ? KOBJ_FIELDS_STRICT
                                                        : KOBJ_FIELDS_IGNORE;
    return 0;
}

/* ---- request bodies ---- */

/* The request's media type without parameters, lower case ("" if none given). */
static char *media_type(h2s_req_t *r)
{
    return rest_media_type(h2s_req_header(r, "content-type"));
}

/* Kubernetes' Warning headers: 299 - "text" (quotes escaped), one per warning. */
static void add_warning_headers(h2s_req_t *r, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct buf b = {0};
        buf_puts(&b, "299 - \"");
        for (const char *p = v[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf_add(&b, "\\", 1);
            buf_add(&b, p, 1);
        }
        buf_puts(&b, "\"");
        h2s_req_add_header(r, "warning", b.p);
        buf_free(&b);
    }
}

/* The warnings of fieldValidation=Warn. */
static void add_warnings(h2s_req_t *r, const struct kobj_opts *ko)
{
    add_warning_headers(r, ko->warnings, ko->n_warnings);
}

/* rest_body's refusal (its 422s are DeleteOptions'). */
static void answer_err(struct wreq *w, struct rest_err *e)
{
    if (e->status == 422)
        answer_invalid(w, "meta.k8s.io", "DeleteOptions", "", e->msg);
    else
        answer_status(w, e->status, e->reason, e->msg);
    free(e->msg);
}

/*
 * body (of media type media) as a message of desc, of kind and
 * api_version, with w's fieldValidation (its warnings become headers).
 * Returns the message, or NULL after answering (400, 415).
 */
static ProtobufCMessage *decode(struct wreq *w, const char *media, const void *body, size_t len,
                                const ProtobufCMessageDescriptor *desc, const char *kind,
                                const char *api_version)
{
    struct kobj_opts ko = {0};
    struct rest_err e;
    ProtobufCMessage *m =
        rest_body_decode(media, body, len, desc, kind, api_version, w->opts.fields, &ko, &e);
    if (m)
        add_warnings(w->r, &ko);
    else
        answer_err(w, &e);
    kobj_opts_free(&ko);
    return m;
}

/* The request's body (decode). */
static ProtobufCMessage *decode_body(struct wreq *w, const ProtobufCMessageDescriptor *desc,
                                     const char *kind, const char *api_version)
{
    size_t len;
    const uint8_t *body = h2s_req_body(w->r, &len);
    char *mt = media_type(w->r);
    ProtobufCMessage *m = decode(w, mt, body, len, desc, kind, api_version);
    free(mt);
    return m;
}

/* ---- names ---- */

/*
 * Kubernetes' EnsureObjectNamespaceMatchesRequestNamespace for an object of
 * k on a path in namespace ns: fills or clears m's namespace; NULL, or the
 * 400's message (malloc'd). Pure: big bodies run it in the read worker.
 */
static char *ns_problem(const struct kind *k, const char *ns, Coracle__V1__ObjectMeta *m)
{
    if (!k->namespaced) {
        obj_set_str(&m->namespace_, NULL);
        return NULL;
    }
    if (!m->namespace_ || !*m->namespace_)
        obj_set_str(&m->namespace_, ns);
    if (!strcmp(m->namespace_, ns))
        return NULL;
    return xstrdup("the namespace of the provided object does not match the namespace sent on "
                   "the request");
}

/* Kubernetes' checkName for update and patch: the path (ns, name) names the object; then
 * ns_problem. */
static char *name_problem(const struct kind *k, const char *ns, const char *name,
                          Coracle__V1__ObjectMeta *m)
{
    const char *n = m->name ? m->name : "";
    if (strcmp(n, name))
        return xasprintf("the name of the object (%s) does not match the name on the URL (%s)", n,
                         name);
    if (k->namespaced && m->namespace_ && *m->namespace_ && strcmp(m->namespace_, ns))
        return xasprintf("the namespace of the object (%s) does not match the namespace on the "
                         "request (%s)",
                         m->namespace_, ns);
    return ns_problem(k, ns, m);
}

/* Answers a problem (400) if there is one: 0, or -1 after answering. */
static int bad_request(struct wreq *w, char *problem)
{
    if (!problem)
        return 0;
    answer_status(w, 400, "BadRequest", problem);
    free(problem);
    return -1;
}

static int create_ns(struct wreq *w, Coracle__V1__ObjectMeta *m)
{
    return bad_request(w, ns_problem(w->k, w->ns, m));
}

static int check_name(struct wreq *w, Coracle__V1__ObjectMeta *m)
{
    return bad_request(w, name_problem(w->k, w->ns, w->name, m));
}

/* ---- the pipeline ---- */

static int authorize(struct wreq *w, const struct auth_user *u, const char *verb, const char *name,
                     const char *field_selector)
{
    char *err = NULL;
    if (api_authorize(w->rs->cfg.api, u, verb, w->k, w->sub, w->ns, name, field_selector, &err) ==
        0)
        return 0;
    answer_status(w, 403, "Forbidden", err ? err : "forbidden");
    free(err);
    return -1;
}

/* Admission for obj (UpdateStatus: only the canonical form, as the gRPC API does). */
static int admit(struct wreq *w, ProtobufCMessage *obj, bool status)
{
    if (status) {
        obj_normalize(obj);
        return 0;
    }
    char *msg;
    if (api_admit(w->k, obj, &msg) < 0) {
        answer_invalid_kind(w, msg);
        free(msg);
        return -1;
    }
    int code;
    if (api_rbac_admit(w->rs->cfg.api, &w->user, w->k, obj, &code, &msg) < 0) {
        answer_grpc(w, code, msg);
        free(msg);
        return -1;
    }
    return 0;
}

/* A CSR's create: its requester (admit_csr_create). 0, or -1 after answering 403. */
static int requester(struct wreq *w, const struct auth_user *u, ProtobufCMessage *obj)
{
    char *msg;
    if (w->k != &kind_csr || admit_csr_create(obj, u->name, u->groups, &msg) == 0)
        return 0;
    answer_grpc(w, GRPC_PERMISSION_DENIED, msg);
    free(msg);
    return -1;
}

/* The store stage: o answers w through op_answer. */
static void submit(struct wreq *w, struct apply_op *o)
{
    o->ow = &wreq_owner;
    o->owner = w;
    o->user = xstrdup(w->user.name);
    if (!w->apply &&
        (o->verb == APPLY_CREATE || o->verb == APPLY_UPDATE || o->verb == APPLY_STATUS))
        o->manager = api_field_manager(w->opts.field_manager, h2s_req_header(w->r, "user-agent"));
    apply_record_create(o);
    if (!w->sub && (o->verb == APPLY_CREATE || o->verb == APPLY_UPDATE))
        apply_pre_json(o);
    w->pending++;
    api_submit(w->rs->cfg.api, o, w->opts.dry_run);
}

/* ---- big bodies ---- */

/*
 * Bodies over this many bytes are decoded in the read worker and admitted
 * on the commit thread (as the gRPC API's big creates and updates are), so
 * the loop only moves bytes: parsing a 1 MB JSON pod on the loop held it
 * about 300 ms.
 */
#define BODY_INLINE_MAX (64u << 10)

/* A big create or update's decoding in the read worker. */
struct bigjob {
    struct rjob job;
    struct wreq *w;
    const struct kind *k;
    struct auth_user u; /* a create is authorized once decoded */
    bool create;
    char *media, *ns, *name; /* copies: the worker touches nothing of the loop's */
    void *body;
    size_t len;
    enum kobj_fields fields;
    /* results */
    struct kobj_opts ko;
    struct rest_err err; /* status 0: decoded */
    char *problem;       /* a 400 of the names */
    void *bytes;         /* the object encoded, for apply to decode and admit */
    size_t bytes_len;
    char *obj_name, *gen; /* the object's name and generateName */
};

static void big_work(struct rjob *j)
{
    struct bigjob *b = RJOB_OWNER(j, struct bigjob, job);
    const struct kind *k = b->k;
    ProtobufCMessage *m = rest_body_decode(b->media, b->body, b->len, k->desc, k->kind,
                                           k->api_version, b->fields, &b->ko, &b->err);
    if (!m)
        return;
    Coracle__V1__ObjectMeta *meta = obj_meta(m);
    b->problem = b->create ? ns_problem(k, b->ns, meta) : name_problem(k, b->ns, b->name, meta);
    if (!b->problem) {
        b->obj_name = meta->name && *meta->name ? xstrdup(meta->name) : NULL;
        b->gen = meta->generatename && *meta->generatename ? xstrdup(meta->generatename) : NULL;
        b->bytes = obj_encode(m, &b->bytes_len);
    }
    obj_free(m);
}

static void big_free(struct bigjob *b)
{
    free(b->media);
    free(b->ns);
    free(b->name);
    free(b->body);
    kobj_opts_free(&b->ko);
    free(b->err.msg);
    free(b->problem);
    free(b->bytes);
    free(b->obj_name);
    free(b->gen);
    free(b);
}

/* Back on the loop: the names checked, authorize (a create), then the op with the bytes. */
static void big_create(struct wreq *w, struct bigjob *b)
{
    bool generated = !b->obj_name && b->gen;
    if (generated) {
        Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
        m.generatename = b->gen;
        api_gen_name(&m);
        b->obj_name = m.name;
    }
    free(w->name);
    w->name = b->obj_name ? xstrdup(b->obj_name) : NULL;
    if (authorize(w, &b->u, "create", generated ? NULL : b->obj_name, NULL) < 0)
        return;
    struct apply_op *o = apply_op_new(w->k, APPLY_CREATE, w->ns, b->obj_name);
    o->req = b->bytes;
    o->req_len = b->bytes_len;
    o->gen_tries = generated;
    b->bytes = NULL;
    submit(w, o);
}

/* The worker's outcome, answered or carried on (the client still there). */
static void big_go_on(struct wreq *w, struct bigjob *b)
{
    if (b->err.status) {
        answer_err(w, &b->err);
        b->err.msg = NULL;
        return;
    }
    char *problem = b->problem;
    b->problem = NULL;
    if (bad_request(w, problem) < 0)
        return;
    add_warnings(w->r, &b->ko);
    if (b->create) {
        big_create(w, b);
        return;
    }
    struct apply_op *o = apply_op_new(w->k, w->sub ? APPLY_STATUS : APPLY_UPDATE, w->ns, w->name);
    o->req = b->bytes;
    o->req_len = b->bytes_len;
    b->bytes = NULL;
    submit(w, o);
}

static void big_done(struct rjob *j, bool cancelled)
{
    struct bigjob *b = RJOB_OWNER(j, struct bigjob, job);
    struct wreq *w = b->w;
    w->job = NULL;
    w->pending--;
    if (w->r && !cancelled)
        big_go_on(w, b);
    big_free(b);
    wreq_release(w);
}

/* A create or update whose body is big: decoded in the worker. Returns false if it is small. */
static bool big_body(struct wreq *w, const struct auth_user *u, bool create)
{
    size_t len;
    const uint8_t *body = h2s_req_body(w->r, &len);
    /* a CSR's requester is set on the loop */
    if (len <= BODY_INLINE_MAX || api_escalation_checked(w->rs->cfg.api, w->k) || w->k == &kind_csr)
        return false;
    struct bigjob *b = xcalloc(1, sizeof(*b));
    b->w = w;
    b->k = w->k;
    if (u)
        b->u = *u;
    b->create = create;
    b->media = media_type(w->r);
    b->ns = xstrdup(w->ns ? w->ns : "");
    b->name = xstrdup(w->name ? w->name : "");
    b->body = xmemdup(body, len);
    b->len = len;
    b->fields = w->opts.fields;
    b->job.work = big_work;
    b->job.done = big_done;
    w->job = &b->job;
    w->pending++;
    rpool_submit(w->rs->cfg.reads, &b->job);
    return true;
}

/* ---- create, update, bind ---- */

/* A virtual kind's create: authorized as any create, answered at once (review.h). */
static void do_review(struct wreq *w, const struct auth_user *u)
{
    ProtobufCMessage *obj = decode_body(w, w->k->desc, w->k->kind, w->k->api_version);
    if (!obj)
        return;
    char *err = NULL;
    int code = 0;
    if (create_ns(w, obj_meta(obj)) == 0 && authorize(w, u, "create", NULL, NULL) == 0 &&
        (code = review_answer(w->rs->cfg.auth, w->rs->cfg.st, u, w->k, w->ns, obj, &err)) == 0) {
        size_t n;
        void *out = obj_encode(obj, &n);
        answer_object(w, out, n);
        free(out);
    } else if (code) {
        answer_grpc(w, code, err);
    }
    free(err);
    obj_free(obj);
}

static void do_create(struct wreq *w, const struct auth_user *u)
{
    if (kind_virtual(w->k)) {
        do_review(w, u);
        return;
    }
    if (big_body(w, u, true))
        return;
    ProtobufCMessage *obj = decode_body(w, w->k->desc, w->k->kind, w->k->api_version);
    if (!obj)
        return;
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    int generated = 0;
    if (create_ns(w, m) < 0)
        goto out;
    if ((!m->name || !*m->name) && m->generatename && *m->generatename) {
        api_gen_name(m);
        generated = 1;
    }
    free(w->name);
    w->name = m->name && *m->name ? xstrdup(m->name) : NULL;
    /* admitted here, and its managedFields recorded in submit: for a REST create the commit
     * thread is the busier one (doc/DESIGN.md, "REST creates: work off the commit thread") */
    if (authorize(w, u, "create", generated ? NULL : m->name, NULL) < 0 ||
        requester(w, u, obj) < 0 || admit(w, obj, false) < 0)
        goto out;
    struct apply_op *o = apply_op_new(w->k, APPLY_CREATE, m->namespace_, m->name);
    o->obj = obj;
    o->gen_tries = generated;
    submit(w, o);
    return;
out:
    obj_free(obj);
}

static void scale_try(struct wreq *w);

static void do_update(struct wreq *w)
{
    bool status = w->sub != NULL;
    if (w->sub && !strcmp(w->sub, "scale")) {
        scale_try(w);
        return;
    }
    if (big_body(w, NULL, false))
        return;
    ProtobufCMessage *obj = decode_body(w, w->k->desc, w->k->kind, w->k->api_version);
    if (!obj)
        return;
    if (check_name(w, obj_meta(obj)) < 0 || admit(w, obj, status) < 0) {
        obj_free(obj);
        return;
    }
    struct apply_op *o = apply_op_new(w->k, status ? APPLY_STATUS : APPLY_UPDATE, w->ns, w->name);
    o->obj = obj;
    submit(w, o);
}

static void do_bind(struct wreq *w)
{
    Coracle__V1__Binding *b =
        (void *)decode_body(w, &coracle__v1__binding__descriptor, "Binding", "v1");
    if (!b)
        return;
    if (!b->metadata) {
        b->metadata = xmalloc(sizeof(*b->metadata));
        coracle__v1__object_meta__init(b->metadata);
    }
    if (!b->metadata->name || !*b->metadata->name)
        obj_set_str(&b->metadata->name, w->name);
    char *msg;
    if (check_name(w, b->metadata) < 0) {
        obj_free(&b->base);
        return;
    }
    if (api_bind_validate(b, &msg) < 0) {
        answer_invalid_kind(w, msg);
        free(msg);
        obj_free(&b->base);
        return;
    }
    struct apply_op *o = apply_op_new(w->k, APPLY_BIND, w->ns, w->name);
    o->node = xstrdup(b->target->name);
    if (b->metadata->uid && *b->metadata->uid)
        o->pre_uid = xstrdup(b->metadata->uid);
    obj_free(&b->base);
    submit(w, o);
}

/* ---- patch ---- */

struct live {
    const struct kind *k;
    char *json;
    char *rv;
    ProtobufCMessage *m; /* server-side apply: the object itself */
};

static void live_cb(const void *val, size_t len, void *arg)
{
    struct live *l = arg;
    ProtobufCMessage *m = obj_decode(l->k->desc, val, len);
    if (!m)
        return;
    const char *rv = obj_meta(m)->resourceversion;
    l->rv = xstrdup(rv ? rv : "");
    l->json = kobj_emit(l->k, m, KOBJ_FMT_JSON_COMPACT);
    obj_free(m);
}

/*
 * One attempt of a patch: the live object as JSON, the patch on it, the
 * result parsed as the kind, admitted, and written with the live
 * resourceVersion as precondition (unless the patch set one), so a
 * concurrent write makes it a Conflict, which op_answer retries.
 */
static void patch_try(struct wreq *w)
{
    struct live l = {.k = w->k};
    int rc = read_object(w->rs->cfg.st, w->k, w->k->namespaced ? w->ns : "", w->name, live_cb, &l);
    if (rc == STORE_ENOTFOUND) {
        answer_statusf(w, 404, "NotFound", "%s \"%s\" not found", w->k->group_resource, w->name);
        return;
    }
    if (rc != 0 || !l.json) {
        answer_status(w, rc ? 503 : 500, rc ? "ServiceUnavailable" : "InternalError",
                      rc ? store_strerror(rc) : "undecodable stored object");
        goto out;
    }
    size_t plen, blen;
    const char *body = (const char *)h2s_req_body(w->r, &blen);
    int st = 0;
    char *err = NULL;
    char *patched =
        kpatch_apply(w->ptype, w->k->desc, l.json, strlen(l.json), body, blen, &plen, &st, &err);
    if (!patched) {
        answer_status(w, st ? st : 400, reason_of(st), err ? err : "the patch does not apply");
        free(err);
        goto out;
    }
    /* warnings once, not again on a retry */
    enum kobj_fields f = w->opts.fields;
    if (w->tries > 0 && f == KOBJ_FIELDS_WARN)
        w->opts.fields = KOBJ_FIELDS_IGNORE;
    ProtobufCMessage *obj =
        decode(w, REST_JSON, patched, plen, w->k->desc, w->k->kind, w->k->api_version);
    w->opts.fields = f;
    free(patched);
    if (!obj)
        goto out;
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    bool status = w->sub != NULL;
    if (check_name(w, m) < 0 || admit(w, obj, status) < 0) {
        obj_free(obj);
        goto out;
    }
    if (!w->names_rv)
        obj_set_str(&m->resourceversion, l.rv);
    struct apply_op *o = apply_op_new(w->k, status ? APPLY_STATUS : APPLY_UPDATE, w->ns, w->name);
    o->obj = obj;
    submit(w, o);
out:
    free(l.json);
    free(l.rv);
}

/* ---- server-side apply ---- */

static void live_msg_cb(const void *val, size_t len, void *arg)
{
    struct live *l = arg;
    l->m = obj_decode(l->k->desc, val, len);
}

/* kssa_apply's refusal as Kubernetes answers it. */
static void answer_kssa_err(struct wreq *w, const struct kssa_err *e)
{
    if (e->code == 409) {
        char *j = kjson_apply_conflict(e);
        answer_json(w, 409, j, strlen(j));
        free(j);
    } else {
        answer_status(w, e->code, e->code == 400 ? "BadRequest" : "InternalError", e->message);
    }
}

/*
 * One attempt of a server-side apply (application/apply-patch+yaml, the
 * body JSON or YAML): the live object (if any) and the applied
 * configuration merged by kssa_apply, which records the manager's fields
 * or answers 409 for fields other managers own; then admitted as an update
 * with the live resourceVersion as precondition (a Conflict retries, as a
 * patch does), or as a create (201) when there is no live object.
 */
static void apply_try(struct wreq *w)
{
    static const char *const reset_main[] = {"status", NULL};
    static const char *const reset_status[] = {"spec", "metadata.deletionTimestamp",
                                               "metadata.ownerReferences", NULL};
    struct live l = {.k = w->k};
    ProtobufCMessage *cfg = NULL, *out = NULL;
    int rc =
        read_object(w->rs->cfg.st, w->k, w->k->namespaced ? w->ns : "", w->name, live_msg_cb, &l);
    if (rc && rc != STORE_ENOTFOUND) {
        answer_status(w, 503, "ServiceUnavailable", store_strerror(rc));
        return;
    }
    if (rc == 0 && !l.m) {
        answer_status(w, 500, "InternalError", "undecodable stored object");
        return;
    }
    bool status = w->sub != NULL;
    if (!l.m && status) {
        answer_statusf(w, 404, "NotFound", "%s \"%s\" not found", w->k->group_resource, w->name);
        return;
    }
    size_t blen;
    const char *body = (const char *)h2s_req_body(w->r, &blen);
    /* warnings once, not again on a retry */
    enum kobj_fields f = w->opts.fields;
    if (w->tries > 0 && f == KOBJ_FIELDS_WARN)
        w->opts.fields = KOBJ_FIELDS_IGNORE;
    cfg = decode(w, REST_YAML, body, blen, w->k->desc, w->k->kind, w->k->api_version);
    w->opts.fields = f;
    if (!cfg || check_name(w, obj_meta(cfg)) < 0)
        goto out;
    const char *crv = obj_meta(cfg)->resourceversion;
    w->names_rv = crv && *crv;
    struct kssa_opts ko = {w->k->api_version, w->sub, status ? reset_status : reset_main};
    struct kssa_err e;
    if (kssa_apply(l.m, cfg, w->opts.field_manager, w->force, &ko, now_ns() / 1000000000, &out,
                   &e) < 0) {
        answer_kssa_err(w, &e);
        kssa_err_free(&e);
        goto out;
    }
    if (admit(w, out, status) < 0)
        goto out;
    if (l.m && !w->names_rv)
        obj_set_str(&obj_meta(out)->resourceversion, obj_meta(l.m)->resourceversion);
    enum apply_verb v = !l.m ? APPLY_CREATE : status ? APPLY_STATUS : APPLY_UPDATE;
    struct apply_op *o = apply_op_new(w->k, v, w->ns, w->name);
    w->ok_status = l.m ? 200 : 201;
    o->obj = out;
    o->managed = 1;
    out = NULL;
    submit(w, o);
out:
    obj_free(cfg);
    obj_free(out);
    obj_free(l.m);
}

static void do_patch(struct wreq *w)
{
    char *mt = media_type(w->r);
    int t = kpatch_type_of(mt);
    bool scale = w->sub && !strcmp(w->sub, "scale");
    if (apply_patch(w->r) && scale) {
        answer_status(w, 415, "UnsupportedMediaType",
                      "the body of the request was in an unknown format - accepted media types "
                      "include: application/json-patch+json, application/merge-patch+json, "
                      "application/strategic-merge-patch+json");
    } else if (apply_patch(w->r)) {
        w->apply = true;
        apply_try(w);
    } else if (t < 0) {
        answer_status(w, 415, "UnsupportedMediaType",
                      "the body of the request was in an unknown format - accepted media types "
                      "include: application/json-patch+json, application/merge-patch+json, "
                      "application/strategic-merge-patch+json, " MEDIA_APPLY);
    } else {
        size_t blen;
        const char *body = (const char *)h2s_req_body(w->r, &blen);
        w->ptype = (enum kpatch_type)t;
        /* a patch that names a resourceVersion is a precondition: no retries */
        w->names_rv = memmem(body, blen, "resourceVersion", 15) != NULL;
        if (scale)
            scale_try(w);
        else
            patch_try(w);
    }
    free(mt);
}

/* ---- scale ---- */

/*
 * One attempt of a write of NAME/scale: the Scale (the body, or for a
 * PATCH the live object's Scale patched) gives the live object its
 * spec.replicas, and that is an update with the live resourceVersion as
 * precondition (unless the Scale names one), retried on a Conflict as a
 * patch is.
 */
static void scale_try(struct wreq *w)
{
    struct live l = {.k = w->k};
    Coracle__V1__Scale *sc = NULL;
    char *patched = NULL, *mt = NULL;
    int rc =
        read_object(w->rs->cfg.st, w->k, w->k->namespaced ? w->ns : "", w->name, live_msg_cb, &l);
    if (rc == STORE_ENOTFOUND) {
        answer_statusf(w, 404, "NotFound", "%s \"%s\" not found", w->k->resource, w->name);
        return;
    }
    if (rc != 0 || !l.m) {
        answer_status(w, rc ? 503 : 500, rc ? "ServiceUnavailable" : "InternalError",
                      rc ? store_strerror(rc) : "undecodable stored object");
        goto out;
    }
    size_t blen;
    const char *body = (const char *)h2s_req_body(w->r, &blen);
    if (w->verb == RV_PATCH) {
        char *cur = rest_scale_json(w->k, l.m), *perr = NULL;
        int st = 0;
        patched = kpatch_apply(w->ptype, &coracle__v1__scale__descriptor, cur, strlen(cur), body,
                               blen, &blen, &st, &perr);
        free(cur);
        if (!patched) {
            answer_status(w, st ? st : 400, reason_of(st),
                          perr ? perr : "the patch does not apply");
            free(perr);
            goto out;
        }
        body = patched;
        mt = xstrdup(REST_JSON);
    } else {
        mt = media_type(w->r);
    }
    /* warnings once, not again on a retry */
    enum kobj_fields f = w->opts.fields;
    if (w->tries > 0 && f == KOBJ_FIELDS_WARN)
        w->opts.fields = KOBJ_FIELDS_IGNORE;
    sc = (void *)decode(w, mt, body, blen, &coracle__v1__scale__descriptor, "Scale",
                        "autoscaling/v1");
    w->opts.fields = f;
    if (!sc)
        goto out;
    if (!sc->metadata) {
        sc->metadata = xmalloc(sizeof(*sc->metadata));
        coracle__v1__object_meta__init(sc->metadata);
    }
    if (check_name(w, sc->metadata) < 0)
        goto out;
    int32_t replicas = sc->spec && sc->spec->has_replicas ? sc->spec->replicas : 0;
    if (replicas < 0) {
        char *m = xasprintf("Scale.autoscaling \"%s\" is invalid: spec.replicas: Invalid value: "
                            "%d: must be greater than or equal to 0",
                            w->name, replicas);
        answer_invalid(w, "autoscaling", "Scale", w->name, m);
        free(m);
        goto out;
    }
    const char *srv = sc->metadata->resourceversion;
    if (srv && *srv) {
        w->names_rv = true;
        obj_set_str(&obj_meta(l.m)->resourceversion, srv);
    }
    if (rest_scale_set(w->k, l.m, replicas) < 0) {
        answer_status(w, 500, "InternalError", "the object has no spec");
        goto out;
    }
    if (admit(w, l.m, false) < 0)
        goto out;
    struct apply_op *o = apply_op_new(w->k, APPLY_UPDATE, w->ns, w->name);
    o->obj = l.m;
    l.m = NULL;
    submit(w, o);
out:
    if (sc)
        obj_free(&sc->base);
    obj_free(l.m);
    free(patched);
    free(mt);
}

/* ---- delete, deletecollection ---- */

/*
 * DeleteOptions (body or query) into the op's fields. Returns 0, or -1
 * after answering. propagationPolicy and orphanDependents become the
 * finalizers the garbage collector acts on (apply.h).
 */
static int delete_options(struct wreq *w, const struct rquery *q, struct apply_op *o)
{
    size_t len;
    const uint8_t *body = h2s_req_body(w->r, &len);
    char *mt = media_type(w->r);
    struct rest_delete_opts d;
    struct rest_err e;
    int r = rest_delete_opts_parse(mt, body, len, q, &d, &e);
    free(mt);
    if (r < 0) {
        answer_err(w, &e);
        return -1;
    }
    o->has_grace = d.has_grace;
    o->grace = d.grace;
    o->gc = d.gc;
    o->pre_uid = d.pre_uid;
    o->pre_rv = d.pre_rv;
    d.pre_uid = d.pre_rv = NULL;
    if (d.dry_run)
        w->opts.dry_run = true;
    rest_delete_opts_free(&d);
    return 0;
}

static void copy_delete_options(struct apply_op *dst, const struct apply_op *src)
{
    dst->has_grace = src->has_grace;
    dst->grace = src->grace;
    dst->gc = src->gc;
    dst->pre_uid = src->pre_uid ? xstrdup(src->pre_uid) : NULL;
    dst->pre_rv = src->pre_rv ? xstrdup(src->pre_rv) : NULL;
}

static void do_delete(struct wreq *w, const struct rquery *q)
{
    struct apply_op *o = apply_op_new(w->k, APPLY_DELETE, w->ns, w->name);
    if (delete_options(w, q, o) < 0) {
        apply_op_free(o);
        return;
    }
    submit(w, o);
}

/* deletecollection's answer once every delete is done: a List of what was deleted. */
static void collection_check(struct wreq *w)
{
    if (!w->r || w->pending || w->list)
        return;
    if (w->fail_msg) {
        answer_grpc(w, w->fail_code, w->fail_msg);
        return;
    }
    size_t n;
    char *j = kjson_list(w->k, (const uint8_t *)w->items.p, w->items.len, &n);
    if (j)
        answer_json(w, 200, j, n);
    else
        answer_status(w, 500, "InternalError", "undecodable stored object");
    free(j);
}

static int list_item_delete(struct wreq *w, const uint8_t *item, size_t len)
{
    char *name, *gen, *ns;
    if (wire_meta_names(item, len, &name, &gen, &ns) < 0)
        return -1;
    struct apply_op *o = apply_op_new(w->k, APPLY_DELETE, ns, name);
    copy_delete_options(o, w->tmpl);
    free(name);
    free(gen);
    free(ns);
    submit(w, o);
    return 0;
}

/* The List of what to delete is read: one delete op per item (ListResponse: items as field 2). */
static void collection_listed(void *owner, void *owner2, int code, const char *msg,
                              const uint8_t *out, size_t len)
{
    struct wreq *w = owner;
    w->list = NULL;
    if (code != GRPC_OK) {
        if (w->r)
            answer_grpc(w, code, msg);
        wreq_release(w);
        return;
    }
    const uint8_t *lm;
    size_t lml;
    if (wire_find(out, len, 1, &lm, &lml) == 1)
        buf_field(&w->items, 1, lm, lml);
    w->pending++; /* held while the ops are submitted (dry runs answer at once) */
    const uint8_t *p = out, *end = out + len;
    uint64_t key, l;
    while (p < end && w->r && pb_varint_get(&p, end, &key) == 0) {
        if ((key & 7) != 2 || pb_varint_get(&p, end, &l) < 0 || l > (uint64_t)(end - p))
            break;
        if (key >> 3 == 2 && list_item_delete(w, p, (size_t)l) < 0)
            break;
        p += l;
    }
    w->pending--;
    collection_check(w);
    wreq_release(w);
}

static void do_delete_collection(struct wreq *w, const struct rquery *q)
{
    w->tmpl = apply_op_new(w->k, APPLY_DELETE, w->ns, "");
    if (delete_options(w, q, w->tmpl) < 0)
        return;
    Coracle__V1__ListRequest *lr = xmalloc(sizeof(*lr));
    coracle__v1__list_request__init(lr);
    const char *ls = rest_query_get(q, "labelSelector"), *fs = rest_query_get(q, "fieldSelector");
    lr->namespace_ = w->ns ? xstrdup(w->ns) : NULL;
    lr->labelselector = ls ? xstrdup(ls) : NULL;
    lr->fieldselector = fs ? xstrdup(fs) : NULL;
    size_t len = coracle__v1__list_request__get_packed_size(lr);
    w->list =
        read_list_start(w->rs->cfg.st, w->rs->cfg.reads, w->k, lr, len, collection_listed, w, NULL);
}

/* ---- the ops' owner ---- */

static bool is_scale(const struct wreq *w)
{
    return w->sub && !strcmp(w->sub, "scale");
}

static void op_answer(struct apply_op *o, int code, const char *msg, const void *val, size_t len)
{
    struct wreq *w = o->owner;
    w->pending--;
    if (w->verb == RV_DELETECOLLECTION) {
        if (code == GRPC_OK)
            buf_field(&w->items, 2, val ? val : "", val ? len : 0);
        else if (code != GRPC_NOT_FOUND && !w->fail_msg) {
            w->fail_code = code; /* the first failure answers (one gone meanwhile is fine) */
            w->fail_msg = xstrdup(msg ? msg : "");
        }
        collection_check(w);
    } else if (w->r && (w->verb == RV_PATCH || is_scale(w)) && !w->names_rv &&
               w->tries + 1 < PATCH_TRIES &&
               ((code == GRPC_ABORTED && msg && strstr(msg, "has been modified")) ||
                (code == GRPC_ALREADY_EXISTS && w->apply))) {
        /* the object changed (or an apply's create lost a race): again on the new one */
        w->tries++;
        if (w->apply)
            apply_try(w);
        else if (is_scale(w))
            scale_try(w);
        else
            patch_try(w);
    } else if (w->r) {
        add_warning_headers(w->r, o->warnings, o->n_warnings); /* Pod Security's */
        if (code == GRPC_OK && o->json)
            answer_text(w, o->json, o->json_len); /* encoded ahead (apply_pre_json) */
        else if (code == GRPC_OK)
            answer_object(w, val, len);
        else
            answer_grpc(w, code, msg);
    }
    wreq_release(w);
}

static const struct apply_owner wreq_owner = {op_answer, NULL};

/* ---- dispatch ---- */

/* Whether k has a status subresource: a "status" message field, as apply's UpdateStatus needs. */
static bool has_status(const struct kind *k)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(k->desc, "status");
    return f && f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED;
}

bool rest_write_sub(const struct kind *k, const char *sub)
{
    return (!strcmp(sub, "status") && has_status(k)) ||
           (!strcmp(sub, "approval") && k == &kind_csr) ||
           (!strcmp(sub, "binding") && api_has_verb(k, API_BIND)) ||
           (!strcmp(sub, "scale") && kind_has_scale(k));
}

/*
 * Which write (verb, Kubernetes' verb for authorization) method m is on rq;
 * RV_OTHER if none: *nf says whether that is a 404 (an unknown
 * subresource) rather than a 405.
 */
static enum rverb classify(const char *m, const struct rreq *rq, const char **verb, bool *nf)
{
    *nf = rq->sub && !rest_write_sub(rq->k, rq->sub);
    bool status =
        rq->sub &&
        (!strcmp(rq->sub, "status") || !strcmp(rq->sub, "scale") || !strcmp(rq->sub, "approval")) &&
        !*nf;
    bool binding = rq->sub && !strcmp(rq->sub, "binding") && !*nf;
    bool ns_ok = !rq->k->namespaced || rq->ns; /* not the all-namespaces path */
    if (*nf || !ns_ok)
        return RV_OTHER;
    if (kind_virtual(rq->k) && (strcmp(m, "POST") || rq->name || rq->sub))
        return RV_OTHER; /* created only */
    if (!strcmp(m, "POST") && ((!rq->name && !rq->sub) || binding))
        return *verb = "create", RV_CREATE;
    if (!strcmp(m, "PUT") && rq->name && (!rq->sub || status))
        return *verb = "update", RV_UPDATE;
    if (!strcmp(m, "PATCH") && rq->name && (!rq->sub || status))
        return *verb = "patch", RV_PATCH;
    if (!strcmp(m, "DELETE") && !rq->sub)
        return *verb = rq->name ? "delete" : "deletecollection",
               rq->name ? RV_DELETE : RV_DELETECOLLECTION;
    return RV_OTHER;
}

void rest_write(rest_t *rs, h2s_req_t *r, const struct auth_user *u, struct rreq *rq,
                const struct rquery *q)
{
    const char *verb = NULL;
    bool nf;
    enum rverb v = classify(h2s_req_method(r), rq, &verb, &nf);
    rest_set_what(r, v, rq);
    if (v == RV_OTHER) {
        if (nf)
            rest_not_found_path(rs, r);
        else
            rest_answer_status(rs, r, 405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource",
                               NULL, NULL);
        return;
    }
    struct wreq *w = xcalloc(1, sizeof(*w));
    w->user = *u;
    w->rs = rs;
    w->r = r;
    w->k = rq->k;
    w->verb = v;
    w->sub = !rq->sub                       ? NULL
             : !strcmp(rq->sub, "status")   ? "status"
             : !strcmp(rq->sub, "scale")    ? "scale"
             : !strcmp(rq->sub, "approval") ? "approval"
                                            : "binding";
    w->ns = rq->k->namespaced && rq->ns ? xstrdup(rq->ns) : NULL;
    w->name = rq->name ? xstrdup(rq->name) : NULL;
    w->ok_status = v == RV_CREATE ? 201 : 200;
    h2s_req_on_close(r, wreq_closed, w);
    w->pending++; /* held: a dry run answers before api_submit returns */
    /* a create is authorized once decoded, with the object's name, as the gRPC API does */
    bool create = v == RV_CREATE && !rq->name;
    if (parse_opts(w, q) == 0 &&
        (create ||
         authorize(w, u, verb, w->name,
                   v == RV_DELETECOLLECTION ? rest_query_get(q, "fieldSelector") : NULL) == 0)) {
        switch (v) {
        case RV_CREATE:
            if (create)
                do_create(w, u);
            else
                do_bind(w);
            break;
        case RV_UPDATE:
            do_update(w);
            break;
        case RV_PATCH:
            do_patch(w);
            break;
        case RV_DELETE:
            do_delete(w, q);
            break;
        default:
            do_delete_collection(w, q);
        }
    }
    w->pending--;
    if (v == RV_DELETECOLLECTION)
        collection_check(w);
    wreq_release(w);
}
