/*
 * apply: the apiserver's write verbs as store ops, decided on the commit
 * thread inside the write transaction. See apply.h.
 */
#include "config.h"
#include "apply.h"
#include "admit.h"
#include "events.h"
#include "grpc.h"
#include "kjson.h"
#include "kssa.h"
#include "nslife.h"
#include "obj.h"
#include "util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int apply_fn(struct store_op *sop, const void *cur, size_t cur_len, uint64_t rev, void **out,
                    size_t *out_len, int *del);

struct apply_op *apply_op_new(const struct kind *k, enum apply_verb verb, const char *ns,
                              const char *name)
{
    struct apply_op *o = xcalloc(1, sizeof(*o));
    o->k = k;
    o->verb = verb;
    o->ns = xstrdup(k->namespaced && ns ? ns : "");
    o->name = xstrdup(name ? name : "");
    o->op.key = kind_key(k, o->ns, o->name);
    o->op.key_len = strlen(o->op.key);
    o->op.apply = apply_fn;
    return o;
}

void apply_op_free(struct apply_op *o)
{
    if (!o)
        return;
    free(o->op.key);
    free(o->ns);
    free(o->name);
    obj_free(o->obj);
    free(o->pre_uid);
    free(o->pre_rv);
    free(o->node);
    free(o->msg);
    free(o->res);
    free(o->req);
    free(o->manager);
    free(o->user);
    psa_req_free(o->psa);
    for (size_t i = 0; i < o->n_warnings; i++)
        free(o->warnings[i]);
    free(o->warnings);
    free(o->json);
    free(o);
}

static void prepare_json(struct store_op *sop)
{
    struct apply_op *o = (struct apply_op *)sop;
    free(o->json);
    o->json = kjson_object(o->k, sop->val_ ? sop->val_ : "", sop->val_len_);
    o->json_len = o->json ? strlen(o->json) : 0;
}

void apply_pre_json(struct apply_op *o)
{
    o->op.prepare = prepare_json;
}

char *apply_conflict_msg(const struct kind *k, const char *name, const char *why)
{
    return xasprintf("Operation cannot be fulfilled on %s \"%s\": %s", k->group_resource, name,
                     why);
}

#define MODIFIED_MSG                                                                               \
    "the object has been modified; please apply your changes to the latest version and try again"

static int fail(struct apply_op *o, int code, char *msg)
{
    o->code = code;
    o->msg = msg;
    return APPLY_EFAIL;
}

/*
 * Pod Security on the admitted object (old: the stored one of an update):
 * refused with 403, or warnings for the client; audit violations are logged
 * (there is no audit log to annotate).
 */
static int pod_security(struct apply_op *o, const ProtobufCMessage *old)
{
    char *msg = NULL, *audit = NULL;
    for (size_t i = 0; i < o->n_warnings; i++) /* idempotent, should apply run again */
        free(o->warnings[i]);
    o->n_warnings = 0;
    int r = psa_admit(o->psa, o->k, old, o->obj, &msg, &o->warnings, &o->n_warnings, &audit);
    if (audit)
        log_info("%s \"%s/%s\" by %s: pod-security.kubernetes.io/audit-violations: %s",
                 o->k->group_resource, o->ns ? o->ns : "", o->name, o->user ? o->user : "", audit);
    if (o->psa && o->psa->pol_err)
        log_info("%s \"%s/%s\": pod-security.kubernetes.io/error: Failed to parse policy: %s",
                 o->k->group_resource, o->ns ? o->ns : "", o->name, o->psa->pol_err);
    free(audit);
    return r < 0 ? fail(o, GRPC_PERMISSION_DENIED, msg) : 0;
}

static int not_found(struct apply_op *o)
{
    return fail(o, GRPC_NOT_FOUND, xasprintf("%s \"%s\" not found", o->k->group_resource, o->name));
}

static int conflict(struct apply_op *o, const char *why)
{
    return fail(o, GRPC_ABORTED, apply_conflict_msg(o->k, o->name, why));
}

static ProtobufCMessage *decode_cur(struct apply_op *o, const void *cur, size_t len)
{
    ProtobufCMessage *c = obj_decode(o->k->desc, cur, len);
    if (!c)
        fail(o, GRPC_INTERNAL, xasprintf("stored %s \"%s\" does not decode", o->k->kind, o->name));
    return c;
}

/* Sets metadata.resourceVersion to rev and encodes into *out. */
static int write_obj(ProtobufCMessage *m, uint64_t rev, void **out, size_t *out_len)
{
    Coracle__V1__ObjectMeta *meta = obj_meta(m);
    free(meta->resourceversion);
    meta->resourceversion = xu64str(rev);
    *out = obj_encode(m, out_len);
    return 0;
}

static int nochange(struct apply_op *o, const void *cur, size_t len)
{
    o->res = xmemdup(cur, len);
    o->res_len = len;
    return 0;
}

/* Writes m unless it equals the stored object: no change, no new revision. */
static int write_if_changed(struct apply_op *o, ProtobufCMessage *m, const void *cur,
                            size_t cur_len, uint64_t rev, void **out, size_t *out_len)
{
    ProtobufCMessage *stored = obj_decode(o->k->desc, cur, cur_len);
    bool same = stored && obj_equal(m, stored);
    obj_free(stored);
    return same ? nochange(o, cur, cur_len) : write_obj(m, rev, out, out_len);
}

/* The object's sub-message field by name ("spec", "status"), or NULL if the kind has none. */
static ProtobufCMessage **msg_field(ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return (ProtobufCMessage **)((char *)m + f->offset);
}

static void swap_field(ProtobufCMessage *a, ProtobufCMessage *b, const char *name)
{
    ProtobufCMessage **fa = msg_field(a, name), **fb = msg_field(b, name);
    if (!fa || !fb)
        return;
    ProtobufCMessage *t = *fa;
    *fa = *fb;
    *fb = t;
}

static void swap_managed_fields(Coracle__V1__ObjectMeta *a, Coracle__V1__ObjectMeta *b)
{
    Coracle__V1__ManagedFieldsEntry **t = a->managedfields;
    size_t n = a->n_managedfields;
    a->managedfields = b->managedfields;
    a->n_managedfields = b->n_managedfields;
    b->managedfields = t;
    b->n_managedfields = n;
}

static void take_time(Coracle__V1__Time **dst, Coracle__V1__Time **src)
{
    if (*dst)
        obj_free(&(*dst)->base);
    *dst = *src;
    *src = NULL;
}

/* Copies the server-owned metadata of the stored object c into the new object n. */
static void keep_server_meta(Coracle__V1__ObjectMeta *nm, Coracle__V1__ObjectMeta *cm)
{
    obj_set_str(&nm->uid, cm->uid);
    obj_set_str(&nm->name, cm->name);
    obj_set_str(&nm->namespace_, cm->namespace_);
    obj_set_str(&nm->selflink, NULL);
    obj_set_str(&nm->generatename, cm->generatename);
    take_time(&nm->creationtimestamp, &cm->creationtimestamp);
    take_time(&nm->deletiontimestamp, &cm->deletiontimestamp);
    nm->has_deletiongraceperiodseconds = cm->has_deletiongraceperiodseconds;
    nm->deletiongraceperiodseconds = cm->deletiongraceperiodseconds;
    nm->has_generation = cm->has_generation;
    nm->generation = cm->generation;
}

static int check_rv(struct apply_op *o, const Coracle__V1__ObjectMeta *nm,
                    const Coracle__V1__ObjectMeta *cm)
{
    if (nm->resourceversion && *nm->resourceversion &&
        (!cm->resourceversion || strcmp(nm->resourceversion, cm->resourceversion)))
        return conflict(o, MODIFIED_MSG);
    if (nm->uid && *nm->uid && cm->uid && strcmp(nm->uid, cm->uid)) {
        char *why = xasprintf("Precondition failed: UID in precondition: %s, UID in object meta: "
                              "%s",
                              nm->uid, cm->uid);
        int r = conflict(o, why);
        free(why);
        return r;
    }
    return 0;
}

/*
 * metadata.managedFields: what a write (old -> nw; old NULL for a create)
 * changed becomes o->manager's, as Kubernetes' fieldmanager records every
 * create, update and subresource update. sub: "status" or NULL; the fields
 * the endpoint resets are nobody's.
 */
static void record_manager(const struct apply_op *o, const ProtobufCMessage *old,
                           ProtobufCMessage *nw, const char *sub)
{
    static const char *const reset_main[] = {"status", NULL};
    static const char *const reset_status[] = {"spec", "metadata.deletionTimestamp",
                                               "metadata.ownerReferences", NULL};
    if (!o->manager)
        return;
    struct kssa_opts ko = {o->k->api_version, sub, sub ? reset_status : reset_main};
    kssa_update(old, nw, o->manager, &ko, now_ns() / 1000000000);
}

void apply_record_create(struct apply_op *o)
{
    if (o->verb != APPLY_CREATE || !o->obj || !o->manager || o->k == &kind_job)
        return;
    record_manager(o, NULL, o->obj, NULL);
    o->recorded = 1;
}

/* ---- the garbage collector's finalizers, deletion marks ---- */

/* Kubernetes' standard finalizers (metav1.FinalizerOrphanDependents, FinalizerDeleteDependents) */
#define FIN_ORPHAN "orphan"
#define FIN_FOREGROUND "foregroundDeletion"

static bool has_finalizer(const Coracle__V1__ObjectMeta *m, const char *f)
{
    for (size_t i = 0; i < m->n_finalizers; i++)
        if (m->finalizers[i] && !strcmp(m->finalizers[i], f))
            return true;
    return false;
}

/*
 * The policy a delete applies: the request's, else the first of the
 * object's orphan and foregroundDeletion finalizers (validation keeps
 * them from being both there), else the kind's default.
 */
static enum gcpolicy gc_policy(const struct apply_op *o, const Coracle__V1__ObjectMeta *m)
{
    if (o->gc != GCPOLICY_DEFAULT)
        return o->gc;
    for (size_t i = 0; i < m->n_finalizers; i++) {
        const char *f = m->finalizers[i] ? m->finalizers[i] : "";
        if (!strcmp(f, FIN_ORPHAN))
            return GCPOLICY_ORPHAN;
        if (!strcmp(f, FIN_FOREGROUND))
            return GCPOLICY_FOREGROUND;
    }
    return gcpolicy_default(o->k);
}

/*
 * Leaves on the object the garbage collector's finalizer the delete's
 * policy asks for, and not the other (Kubernetes'
 * deletionFinalizersForGarbageCollection); the list is left as it is when
 * that already holds.
 */
static void gc_finalizers(const struct apply_op *o, Coracle__V1__ObjectMeta *m)
{
    enum gcpolicy gc = gc_policy(o, m);
    bool orphan = gc == GCPOLICY_ORPHAN, fg = gc == GCPOLICY_FOREGROUND;
    if (has_finalizer(m, FIN_ORPHAN) == orphan && has_finalizer(m, FIN_FOREGROUND) == fg)
        return;
    size_t n = 0;
    for (size_t i = 0; i < m->n_finalizers; i++) {
        char *f = m->finalizers[i];
        if (f && (!strcmp(f, FIN_ORPHAN) || !strcmp(f, FIN_FOREGROUND)))
            free(f);
        else
            m->finalizers[n++] = f;
    }
    m->finalizers = xrealloc(m->finalizers, (n + 1) * sizeof(*m->finalizers));
    if (orphan || fg)
        m->finalizers[n++] = xstrdup(orphan ? FIN_ORPHAN : FIN_FOREGROUND);
    m->n_finalizers = n;
}

/*
 * An object whose finalizers hold it marked as being deleted (Kubernetes'
 * markAsDeleting): deletionTimestamp now, or kept if earlier, grace 0,
 * and the generation bumped the first time, so that controllers see the
 * change of intent.
 */
static void mark_deleting(Coracle__V1__ObjectMeta *m)
{
    int64_t now = now_ns();
    if (!m->deletiontimestamp && m->has_generation && m->generation > 0)
        m->generation++;
    if (!m->deletiontimestamp || obj_time_ns(m->deletiontimestamp) > now) {
        if (m->deletiontimestamp)
            obj_free(&m->deletiontimestamp->base);
        m->deletiontimestamp = obj_time(now);
    }
    m->has_deletiongraceperiodseconds = 1;
    m->deletiongraceperiodseconds = 0;
}

/*
 * Whether an update leaving the object with nm's finalizers deletes it
 * (Kubernetes' ShouldDeleteDuringUpdate): the last finalizer is gone from
 * an object marked for deletion with no grace period left. A namespace
 * waits for its content instead (nslife.c removes it).
 */
static bool update_deletes(const struct apply_op *o, const Coracle__V1__ObjectMeta *nm,
                           const Coracle__V1__ObjectMeta *cm)
{
    return o->k != &kind_namespace && !nm->n_finalizers && cm->deletiontimestamp &&
           (!cm->has_deletiongraceperiodseconds || cm->deletiongraceperiodseconds == 0);
}

/* ---- create ---- */

/* Admission's defaults and validation of obj: 0, or APPLY_EFAIL (o's code and msg set). */
static int admit_obj(struct apply_op *o, ProtobufCMessage *obj)
{
    char *msg = NULL;
    admit_defaults(o->k, obj);
    if (admit_validate(o->k, obj, &msg) != 0)
        return fail(o, GRPC_INVALID_ARGUMENT, msg);
    return 0;
}

/*
 * An object sent as bytes (o->req: a create, or a big update or status
 * update, see api.c), its key made from the names the loop read off the
 * wire (wire_meta_names) and, for a generated name, o->name: decodes,
 * applies admission's defaults and validation (for UpdateStatus only the
 * canonical form and the default namespace, as the loop does), and checks
 * that the decoded object has the key's namespace and name. Sets o->obj, or
 * fails with what the loop would have answered.
 */
static int wire_decode(struct apply_op *o, bool status)
{
    ProtobufCMessage *obj = obj_decode(o->k->desc, o->req, o->req_len);
    if (!obj)
        return fail(o, GRPC_INVALID_ARGUMENT,
                    xasprintf("failed to decode %s: invalid protobuf wire data (%zu bytes)",
                              o->k->kind, o->req_len));
    Coracle__V1__ObjectMeta *m = obj_meta(obj);
    if (o->gen_tries)
        obj_set_str(&m->name, o->name);
    if (status) {
        obj_normalize(obj);
        if (o->k->namespaced && (!m->namespace_ || !*m->namespace_))
            obj_set_str(&m->namespace_, "default");
    } else if (admit_obj(o, obj)) {
        obj_free(obj);
        return APPLY_EFAIL;
    }
    if (strcmp(m->name ? m->name : "", o->name) ||
        (o->k->namespaced && strcmp(m->namespace_ ? m->namespace_ : "", o->ns))) {
        obj_free(obj);
        return fail(o, GRPC_INVALID_ARGUMENT,
                    xasprintf("%s: metadata.name and metadata.namespace do not decode the same "
                              "way twice",
                              o->k->kind));
    }
    o->obj = obj;
    return 0;
}

static int apply_create(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev,
                        void **out, size_t *out_len)
{
    /* validation first, as when the loop decoded: an invalid object is
     * INVALID_ARGUMENT even where its name is taken */
    if (!o->obj && o->req) {
        int r = wire_decode(o, false);
        if (r)
            return r;
    }
    /* validating admission comes before the store says the name is taken */
    if (o->psa && pod_security(o, NULL))
        return APPLY_EFAIL;
    if (cur)
        return fail(o, GRPC_ALREADY_EXISTS,
                    xasprintf("%s \"%s\" already exists", o->k->group_resource, o->name));
    ProtobufCMessage *m = o->obj;
    Coracle__V1__ObjectMeta *meta = obj_meta(m);
    char uid[37];
    uuid_v4(uid);
    obj_set_str(&meta->uid, uid);
    obj_set_str(&meta->selflink, NULL);
    if (meta->creationtimestamp)
        obj_free(&meta->creationtimestamp->base);
    meta->creationtimestamp = obj_time(now_ns());
    if (meta->deletiontimestamp)
        obj_free(&meta->deletiontimestamp->base);
    meta->deletiontimestamp = NULL;
    meta->has_deletiongraceperiodseconds = 0;
    meta->has_generation = 1;
    meta->generation = 1;
    admit_prepare_create(o->k, m);
    if (!o->recorded)
        record_manager(o, NULL, m, NULL);
    return write_obj(m, rev, out, out_len);
}

/* ---- update / status ---- */

static int apply_update(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev,
                        void **out, size_t *out_len, int *del)
{
    if (!o->obj && o->req) { /* validation first, as on the loop */
        int r = wire_decode(o, false);
        if (r)
            return r;
    }
    if (!cur)
        return not_found(o);
    ProtobufCMessage *c = decode_cur(o, cur, cur_len);
    if (!c)
        return APPLY_EFAIL;
    ProtobufCMessage *n = o->obj;
    Coracle__V1__ObjectMeta *nm = obj_meta(n), *cm = obj_meta(c);
    int r = check_rv(o, nm, cm);
    if (r)
        goto out;
    if (admit_update(o->k, c, n, &o->msg) < 0) {
        o->code = GRPC_INVALID_ARGUMENT;
        r = APPLY_EFAIL;
        goto out;
    }
    if (o->psa && (r = pod_security(o, c)))
        goto out;
    /* status only through UpdateStatus */
    swap_field(n, c, "status");
    ProtobufCMessage **ns = msg_field(n, "spec"), **cs = msg_field(c, "spec");
    bool spec_changed = ns && cs && !obj_equal(*ns, *cs);
    /* before keep_server_meta moves c's timestamps, as Kubernetes' fieldmanager
     * sees the request's object before the server-set metadata */
    record_manager(o, c, n, NULL);
    bool deletes = update_deletes(o, nm, cm);
    keep_server_meta(nm, cm);
    if (spec_changed) {
        nm->has_generation = 1;
        nm->generation++;
    }
    if (deletes) {
        /* the answer is the object as updated; watchers see the stored one go */
        obj_set_str(&nm->resourceversion, cm->resourceversion);
        free(o->res);
        o->res = obj_encode(n, &o->res_len);
        *del = 1;
        goto out;
    }
    /* unchanged (resourceVersion aside): no write, no new revision */
    obj_set_str(&nm->resourceversion, cm->resourceversion);
    r = write_if_changed(o, n, cur, cur_len, rev, out, out_len);
out:
    obj_free(c);
    return r;
}

static int apply_status(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev,
                        void **out, size_t *out_len, int *del)
{
    if (!o->obj && o->req) {
        int r = wire_decode(o, true);
        if (r)
            return r;
    }
    if (!msg_field(o->obj, "status"))
        return apply_update(o, cur, cur_len, rev, out, out_len, del);
    if (!cur)
        return not_found(o);
    ProtobufCMessage *c = decode_cur(o, cur, cur_len);
    if (!c)
        return APPLY_EFAIL;
    ProtobufCMessage *old = NULL;
    int r = check_rv(o, obj_meta(o->obj), obj_meta(c));
    if (r)
        goto out;
    if (o->manager && !(old = decode_cur(o, cur, cur_len))) {
        r = APPLY_EFAIL;
        goto out;
    }
    char *why = NULL;
    if (o->k == &kind_csr && admit_csr_status(c, o->obj, &why) < 0) {
        r = fail(o, GRPC_INVALID_ARGUMENT, why);
        goto out;
    }
    swap_field(c, o->obj, "status");
    if (old)
        record_manager(o, old, c, "status");
    if (o->managed)
        swap_managed_fields(obj_meta(c), obj_meta(o->obj));
    r = write_if_changed(o, c, cur, cur_len, rev, out, out_len);
out:
    obj_free(old);
    obj_free(c);
    return r;
}

/* ---- delete ---- */

/*
 * Deleting a namespace marks it (deletionTimestamp, phase Terminating) and
 * writes it; the namespace lifecycle (nslife.c) then deletes its content
 * and finally the namespace itself (APPLY_NS_REMOVE). Marked already: no
 * change, as Kubernetes answers a repeated delete.
 */
static int namespace_terminate(struct apply_op *o, ProtobufCMessage *c, const void *cur,
                               size_t cur_len, uint64_t rev, void **out, size_t *out_len)
{
    Coracle__V1__Namespace *n = (void *)c;
    Coracle__V1__ObjectMeta *cm = obj_meta(c);
    if (nslife_undeletable(o->name))
        return fail(o, GRPC_PERMISSION_DENIED,
                    xasprintf("namespaces \"%s\" is forbidden: this namespace may not be deleted",
                              o->name));
    if (cm->deletiontimestamp)
        return nochange(o, cur, cur_len);
    gc_finalizers(o, cm);
    cm->deletiontimestamp = obj_time(now_ns());
    cm->has_deletiongraceperiodseconds = 1;
    cm->deletiongraceperiodseconds = 0;
    if (!n->status) {
        n->status = xmalloc(sizeof(*n->status));
        coracle__v1__namespace_status__init(n->status);
    }
    obj_set_str(&n->status->phase, "Terminating");
    return write_obj(c, rev, out, out_len);
}

/* The end of a namespace's deletion: gone if still marked (and still o->pre_uid's) and no
 * finalizer holds it (nslife tries again while it is Terminating). */
static int apply_ns_remove(struct apply_op *o, const void *cur, size_t cur_len, int *del)
{
    if (!cur)
        return 0;
    ProtobufCMessage *c = obj_decode(o->k->desc, cur, cur_len);
    if (!c)
        return 0;
    const Coracle__V1__ObjectMeta *cm = kind_meta(c);
    if (cm && cm->deletiontimestamp && !cm->n_finalizers &&
        (!o->pre_uid || (cm->uid && !strcmp(cm->uid, o->pre_uid))))
        *del = 1;
    obj_free(c);
    return 0;
}

/*
 * A pod's graceful deletion (Kubernetes' BeforeDelete with the pod
 * strategy): a bound pod still running gets deletionTimestamp now + its
 * grace period, and its kubelet stops it and deletes it again with grace
 * 0. Returns 1 if the pod is to be written so marked, 0 if the delete goes
 * on as for any kind (no grace, or a deletion already at grace 0), -1 if a
 * deletion pending with no longer a grace period leaves it as it is.
 */
static int pod_graceful(const struct apply_op *o, Coracle__V1__Pod *p)
{
    Coracle__V1__ObjectMeta *cm = p->metadata;
    int64_t grace = o->has_grace ? o->grace
                    : p->spec && p->spec->has_terminationgraceperiodseconds
                        ? p->spec->terminationgraceperiodseconds
                        : 30;
    if (grace < 0)
        grace = 0;
    bool bound = p->spec && p->spec->nodename && *p->spec->nodename;
    const char *phase = p->status && p->status->phase ? p->status->phase : "";
    bool finished = !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed");
    if (!bound || finished || grace <= 0)
        return 0;
    if (cm->deletiontimestamp &&
        (!cm->has_deletiongraceperiodseconds || cm->deletiongraceperiodseconds == 0))
        return 0;
    if (cm->deletiontimestamp && cm->deletiongraceperiodseconds <= grace)
        return -1;
    if (!cm->deletiontimestamp) {
        cm->has_generation = 1;
        cm->generation++;
    } else {
        obj_free(&cm->deletiontimestamp->base);
    }
    cm->deletiontimestamp = obj_time(now_ns() + grace * 1000000000);
    cm->has_deletiongraceperiodseconds = 1;
    cm->deletiongraceperiodseconds = grace;
    return 1;
}

/*
 * Kubernetes' Store.Delete: the policy's finalizer put on (or taken off)
 * first; an object left with finalizers is marked (deletionTimestamp) and
 * written, to go once an update removes the last of them; a pod in its
 * grace period is written marked; anything else goes now.
 */
static int apply_delete(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev,
                        void **out, size_t *out_len, int *del)
{
    if (!cur)
        return not_found(o);
    ProtobufCMessage *c = decode_cur(o, cur, cur_len);
    if (!c)
        return APPLY_EFAIL;
    Coracle__V1__ObjectMeta *cm = obj_meta(c);
    int r = 0;
    if (o->pre_uid && (!cm->uid || strcmp(o->pre_uid, cm->uid))) {
        char *why = xasprintf("Precondition failed: UID in precondition: %s, UID in object meta: "
                              "%s",
                              o->pre_uid, cm->uid ? cm->uid : "");
        r = conflict(o, why);
        free(why);
        goto out;
    }
    if (o->pre_rv && (!cm->resourceversion || strcmp(o->pre_rv, cm->resourceversion))) {
        char *why = xasprintf("Precondition failed: ResourceVersion in precondition: %s, "
                              "ResourceVersion in object meta: %s",
                              o->pre_rv, cm->resourceversion ? cm->resourceversion : "");
        r = conflict(o, why);
        free(why);
        goto out;
    }
    if (o->k == &kind_namespace) {
        r = namespace_terminate(o, c, cur, cur_len, rev, out, out_len);
        goto out;
    }
    int graceful = o->k == &kind_pod ? pod_graceful(o, (void *)c) : 0;
    if (graceful < 0) {
        r = nochange(o, cur, cur_len);
        goto out;
    }
    gc_finalizers(o, cm);
    if (graceful) {
        r = write_obj(c, rev, out, out_len);
    } else if (cm->n_finalizers) {
        mark_deleting(cm);
        r = write_if_changed(o, c, cur, cur_len, rev, out, out_len);
    } else {
        *del = 1;
    }
out:
    obj_free(c);
    return r;
}

/* ---- bind ---- */

static Coracle__V1__PodCondition *pod_condition(Coracle__V1__PodStatus *st, const char *type,
                                                bool create)
{
    for (size_t i = 0; i < st->n_conditions; i++)
        if (st->conditions[i]->type && !strcmp(st->conditions[i]->type, type))
            return st->conditions[i];
    if (!create)
        return NULL;
    Coracle__V1__PodCondition *c = xmalloc(sizeof(*c));
    coracle__v1__pod_condition__init(c);
    c->type = xstrdup(type);
    st->conditions = xrealloc(st->conditions, (st->n_conditions + 1) * sizeof(*st->conditions));
    st->conditions[st->n_conditions++] = c;
    return c;
}

static void set_pod_condition(Coracle__V1__PodCondition *c, const char *status, const char *reason,
                              const char *message)
{
    if (!c->status || strcmp(c->status, status)) {
        if (c->lasttransitiontime)
            obj_free(&c->lasttransitiontime->base);
        c->lasttransitiontime = obj_time(now_ns());
    }
    obj_set_str(&c->status, status);
    obj_set_str(&c->reason, reason);
    obj_set_str(&c->message, message);
}

static int apply_bind(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev, void **out,
                      size_t *out_len)
{
    if (!cur)
        return not_found(o);
    ProtobufCMessage *c = decode_cur(o, cur, cur_len);
    if (!c)
        return APPLY_EFAIL;
    Coracle__V1__Pod *p = (void *)c;
    Coracle__V1__ObjectMeta *cm = obj_meta(c);
    int r;
    char *why = NULL;
    if (o->pre_uid && (!cm->uid || strcmp(o->pre_uid, cm->uid)))
        why = xasprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s",
                        o->pre_uid, cm->uid ? cm->uid : "");
    else if (cm->deletiontimestamp)
        why = xasprintf("pod %s is being deleted, cannot be assigned to a host", o->name);
    else if (p->spec && p->spec->nodename && *p->spec->nodename)
        why = xasprintf("pod %s is already assigned to node \"%s\"", o->name, p->spec->nodename);
    if (why) {
        r = fail(
            o, GRPC_ABORTED,
            xasprintf("Operation cannot be fulfilled on pods/binding \"%s\": %s", o->name, why));
        free(why);
        goto out;
    }
    if (!p->spec) {
        p->spec = xmalloc(sizeof(*p->spec));
        coracle__v1__pod_spec__init(p->spec);
    }
    obj_set_str(&p->spec->nodename, o->node);
    if (!p->status) {
        p->status = xmalloc(sizeof(*p->status));
        coracle__v1__pod_status__init(p->status);
    }
    set_pod_condition(pod_condition(p->status, "PodScheduled", true), "True", NULL, NULL);
    r = write_obj(c, rev, out, out_len);
out:
    obj_free(c);
    return r;
}

/* ---- events ---- */

static int apply_event_bump(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev,
                            void **out, size_t *out_len)
{
    if (!cur)
        return APPLY_EGONE;
    ProtobufCMessage *c = decode_cur(o, cur, cur_len);
    if (!c)
        return APPLY_EFAIL;
    Coracle__V1__Event *e = (void *)c, *n = (void *)o->obj;
    if (!events_repeats(e, n)) {
        /* found by its key's hash only: another event, so a create after all */
        obj_free(c);
        return APPLY_EGONE;
    }
    int add = n->has_count && n->count > 1 ? n->count : 1;
    e->count = (e->has_count && e->count > 0 ? e->count : 1) + add;
    e->has_count = 1;
    if (n->lasttimestamp)
        take_time(&e->lasttimestamp, &n->lasttimestamp);
    else {
        if (e->lasttimestamp)
            obj_free(&e->lasttimestamp->base);
        e->lasttimestamp = obj_time(now_ns());
    }
    int r = write_obj(c, rev, out, out_len);
    obj_free(c);
    return r;
}

static int apply_event_expire(struct apply_op *o, const void *cur, size_t cur_len, int *del)
{
    if (!cur)
        return 0;
    ProtobufCMessage *c = decode_cur(o, cur, cur_len);
    if (!c)
        return 0; /* undecodable: leave it */
    Coracle__V1__Event *e = (void *)c;
    int64_t last = e->lasttimestamp ? obj_time_ns(e->lasttimestamp)
                   : e->eventtime   ? obj_microtime_ns(e->eventtime)
                   : e->metadata    ? obj_time_ns(e->metadata->creationtimestamp)
                                    : 0;
    if (now_ns() - last >= o->ttl_ns)
        *del = 1;
    obj_free(c);
    return 0;
}

/* ---- node lifecycle ---- */

static int apply_node_unknown(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev,
                              void **out, size_t *out_len)
{
    if (!cur)
        return 0;
    ProtobufCMessage *c = decode_cur(o, cur, cur_len);
    if (!c)
        return 0;
    Coracle__V1__Node *n = (void *)c;
    if (!n->status) {
        n->status = xmalloc(sizeof(*n->status));
        coracle__v1__node_status__init(n->status);
    }
    Coracle__V1__NodeStatus *st = n->status;
    Coracle__V1__NodeCondition *ready = NULL;
    for (size_t i = 0; i < st->n_conditions; i++)
        if (st->conditions[i]->type && !strcmp(st->conditions[i]->type, "Ready"))
            ready = st->conditions[i];
    int r = 0;
    if (ready && ready->status && !strcmp(ready->status, "Unknown"))
        goto out;
    int64_t now = now_ns();
    if (!ready) {
        ready = xmalloc(sizeof(*ready));
        coracle__v1__node_condition__init(ready);
        ready->type = xstrdup("Ready");
        ready->reason = xstrdup("NodeStatusNeverUpdated");
        ready->message = xstrdup("Kubelet never posted node status.");
        ready->status = xstrdup("Unknown");
        ready->lasttransitiontime = obj_time(now);
        st->conditions = xrealloc(st->conditions, (st->n_conditions + 1) * sizeof(void *));
        st->conditions[st->n_conditions++] = ready;
    }
    for (size_t i = 0; i < st->n_conditions; i++) {
        Coracle__V1__NodeCondition *nc = st->conditions[i];
        if (nc->status && !strcmp(nc->status, "Unknown"))
            continue;
        obj_set_str(&nc->status, "Unknown");
        obj_set_str(&nc->reason, "NodeStatusUnknown");
        obj_set_str(&nc->message, "Kubelet stopped posting node status.");
        if (nc->lasttransitiontime)
            obj_free(&nc->lasttransitiontime->base);
        nc->lasttransitiontime = obj_time(now);
    }
    r = write_obj(c, rev, out, out_len);
out:
    obj_free(c);
    return r;
}

static int apply_pod_notready(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev,
                              void **out, size_t *out_len)
{
    if (!cur)
        return 0;
    ProtobufCMessage *c = decode_cur(o, cur, cur_len);
    if (!c)
        return 0;
    Coracle__V1__Pod *p = (void *)c;
    int r = 0;
    if (!p->status || strcmp(obj_pod_node(c), o->node ? o->node : ""))
        goto out;
    Coracle__V1__PodCondition *rc = pod_condition(p->status, "Ready", false);
    if (!rc || (rc->status && !strcmp(rc->status, "False")))
        goto out;
    set_pod_condition(rc, "False", rc->reason, rc->message);
    r = write_obj(c, rev, out, out_len);
out:
    obj_free(c);
    return r;
}

static int apply_verb(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev, void **out,
                      size_t *out_len, int *del)
{
    switch (o->verb) {
    case APPLY_CREATE:
        return apply_create(o, cur, cur_len, rev, out, out_len);
    case APPLY_UPDATE:
        return apply_update(o, cur, cur_len, rev, out, out_len, del);
    case APPLY_STATUS:
        return apply_status(o, cur, cur_len, rev, out, out_len, del);
    case APPLY_DELETE:
        return apply_delete(o, cur, cur_len, rev, out, out_len, del);
    case APPLY_BIND:
        return apply_bind(o, cur, cur_len, rev, out, out_len);
    case APPLY_EVENT_BUMP:
        return apply_event_bump(o, cur, cur_len, rev, out, out_len);
    case APPLY_EVENT_EXPIRE:
        return apply_event_expire(o, cur, cur_len, del);
    case APPLY_NODE_UNKNOWN:
        return apply_node_unknown(o, cur, cur_len, rev, out, out_len);
    case APPLY_POD_NOTREADY:
        return apply_pod_notready(o, cur, cur_len, rev, out, out_len);
    case APPLY_NS_REMOVE:
        return apply_ns_remove(o, cur, cur_len, del);
    }
    return fail(o, GRPC_INTERNAL, xstrdup("unknown operation"));
}

/*
 * On a store with a remote writer (etcd) apply runs again, on the newer
 * value, when another apiserver wrote the key first. The verbs change the
 * request object in place (the status swapped in, server metadata set), so
 * each run works on a copy and the request stays as it came for the next;
 * a failure ends the op, and its copy then takes the request's place as on
 * the embedded store (op_done may resubmit it).
 */
static int apply_rerun(struct apply_op *o, const void *cur, size_t cur_len, uint64_t rev,
                       void **out, size_t *out_len, int *del)
{
    ProtobufCMessage *req = o->obj;
    o->obj = req ? obj_clone(req) : NULL; /* NULL: the verb decodes o->req */
    /* an earlier run's answer: this run decides afresh */
    free(o->res);
    o->res = NULL;
    o->res_len = 0;
    int r = apply_verb(o, cur, cur_len, rev, out, out_len, del);
    if (r) {
        obj_free(req);
        return r;
    }
    obj_free(o->obj);
    o->obj = req;
    return 0;
}

static int apply_fn(struct store_op *sop, const void *cur, size_t cur_len, uint64_t rev, void **out,
                    size_t *out_len, int *del)
{
    struct apply_op *o = (struct apply_op *)sop;
    if (sop->flags & STORE_OP_RERUN)
        return apply_rerun(o, cur, cur_len, rev, out, out_len, del);
    int r = apply_verb(o, cur, cur_len, rev, out, out_len, del);
    /*
     * Written: the request object is in *out and nobody needs it again (apply
     * runs once per op on this store; retries after a failure start from
     * o->obj, and they only follow failures). Freed here, on the commit
     * thread, it costs the loop thread nothing: a pod's free walks every
     * field of a dozen protobuf-c descriptors.
     */
    if (r == 0 && *out && o->obj) {
        obj_free(o->obj);
        o->obj = NULL;
    }
    return r;
}
