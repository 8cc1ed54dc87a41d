/*
 * The garbage collector, as Kubernetes' (pkg/controller/garbagecollector):
 * deletes the objects whose owners (metadata.ownerReferences) are all
 * gone, and does its part of the two deletions that wait on dependents:
 * Foreground (the owner carries the `foregroundDeletion` finalizer: its
 * dependents are deleted first, and the finalizer goes once no dependent
 * with blockOwnerDeletion is left) and Orphan (the `orphan` finalizer:
 * the dependents' references to the owner are removed, then the
 * finalizer).
 *
 * A graph of every object of every kind but Events and Leases, keyed by
 * uid, is kept from the shared informers: each node lists its owners'
 * uids and holds its dependents. An owner referenced before it is seen
 * (or never seen) is a virtual node, checked with a Get: gone, its
 * dependents are looked at again. The queue's keys are uids. A sync of
 * an object reads its owner references from the cache and sorts them:
 * solid (the owner is cached, or a Get found it), dangling (its deletion
 * was seen, or a Get found nothing or another uid) or waiting (the owner
 * is being deleted in the foreground). No solid owner: the object is
 * deleted, with preconditions on its uid and resourceVersion so that a
 * cache behind the apiserver (a reference removed meanwhile) never
 * deletes what should live. A solid owner beside dangling ones: the
 * dangling references are removed. Nothing is deleted on an owner whose
 * absence was not confirmed: a cache that has not seen an owner yet is
 * no proof of its absence.
 */
#include "config.h"

#include "controllers.h"
#include "grpc.h"
#include "smap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define FIN_ORPHAN "orphan"
#define FIN_FOREGROUND "foregroundDeletion"

struct gedge;

/*
 * An object, or an owner known only by references to it: virtual (not
 * seen yet, or never) or gone (deleted, or confirmed absent by a Get),
 * kept while dependents still name it. Freed when neither observed nor
 * named.
 */
struct gnode {
    const char *uid;          /* gc->nodes' own copy of its key */
    struct gedge *owners;     /* the links to its owners, through next_owner */
    struct gedge *deps;       /* the links from its dependents, through prev/next */
    bool observed;            /* seen through an informer, not deleted since */
    bool gone;                /* its absence is known */
    bool deleting_dependents; /* deletionTimestamp and the foregroundDeletion finalizer */
    bool as_referenced;       /* named by a reference: kind and apiVersion follow name */
    bool moved;               /* ns and name in an allocation of their own (free(ns)) */
    const struct kind *k;     /* as observed, or referenced (NULL: outside the table) */
    const char *ns, *name;    /* ns "" for cluster-scoped objects; in id, or moved */
    char id[];                /* ns, name (NUL-ended), then a reference's kind and apiVersion */
};

/* A dependent's link to one of its owners, in both their lists. */
struct gedge {
    struct gnode *owner, *dep;
    struct gedge *prev, *next; /* owner->deps */
    struct gedge *next_owner;  /* dep->owners */
};

struct gc {
    cm_t *cm;
    ctrl_t *c;
    smap_t *nodes; /* uid -> struct gnode */
    uint64_t deletes, ref_removals, lookups;
};

/* ------------------------------------------------------------ identities */

static const char *s_or_empty(const char *s)
{
    return s ? s : "";
}

/* The group of an apiVersion: "apps" of "apps/v1", "" of "v1". */
static size_t group_len(const char *api_version)
{
    const char *slash = strchr(api_version, '/');
    return slash ? (size_t)(slash - api_version) : 0;
}

static bool same_group(const char *a, const char *b)
{
    size_t la = group_len(a), lb = group_len(b);
    return la == lb && !memcmp(a, b, la);
}

/* The kind of the table a reference names (its kind, and apiVersion's group), or NULL. */
static const struct kind *ref_kind(const char *api_version, const char *kind)
{
    const struct kind *k = kind_lookup(s_or_empty(kind));
    if (!k || strcmp(k->kind, s_or_empty(kind)) ||
        !same_group(k->api_version, s_or_empty(api_version)))
        return NULL;
    return k;
}

/* The namespace an owner named by a reference of an object in ns lives in. */
static const char *owner_ns(const Coracle__V1__OwnerReference *r, const char *ns)
{
    const struct kind *k = ref_kind(r->apiversion, r->kind);
    return k && !k->namespaced ? "" : ns;
}

/* An owner's coordinates: the same object by every field a reference has. */
static char *coords(const Coracle__V1__OwnerReference *r, const char *ns)
{
    const char *av = s_or_empty(r->apiversion);
    char group[128];
    snprintf(group, sizeof(group), "%.*s", (int)group_len(av), av);
    return xconcat(s_or_empty(r->uid), "|", group, "|", s_or_empty(r->kind), "|", owner_ns(r, ns),
                   "|", s_or_empty(r->name), NULL);
}

static bool has_finalizer(const Coracle__V1__ObjectMeta *m, const char *f)
{
    for (size_t i = 0; m && i < m->n_finalizers; i++)
        if (!strcmp(m->finalizers[i], f))
            return true;
    return false;
}

/* Being deleted and holding finalizer f. */
static bool deleting_with(const ProtobufCMessage *obj, const char *f)
{
    const Coracle__V1__ObjectMeta *m = obj ? kind_meta(obj) : NULL;
    return m && m->deletiontimestamp && has_finalizer(m, f);
}

/* ----------------------------------------------------------------- graph */

/* The kind and apiVersion n is known by (a reference's, or its kind's). */
static const char *node_kind(const struct gnode *n)
{
    return n->as_referenced ? n->name + strlen(n->name) + 1 : n->k->kind;
}

static const char *node_api_version(const struct gnode *n)
{
    const char *kind = node_kind(n);
    return n->as_referenced ? kind + strlen(kind) + 1 : n->k->api_version;
}

/* Whether reference r (of an object in ns) names node o: uid, kind, group, name, namespace. */
static bool ref_names(const Coracle__V1__OwnerReference *r, const char *ns, const struct gnode *o)
{
    return !strcmp(s_or_empty(r->uid), o->uid) && !strcmp(s_or_empty(r->kind), node_kind(o)) &&
           !strcmp(s_or_empty(r->name), o->name) &&
           same_group(s_or_empty(r->apiversion), node_api_version(o)) &&
           !strcmp(owner_ns(r, ns), o->ns);
}

/*
 * A new node in gc->nodes: an object of kind k named ns/name (ref NULL),
 * or the owner that reference ref names (k: its kind in the table, or
 * NULL). One allocation holds the node and its names: the graph has a
 * node per object.
 */
static struct gnode *node_new(struct gc *gc, const char *uid, const struct kind *k, const char *ns,
                              const char *name, const Coracle__V1__OwnerReference *ref)
{
    const char *kind = ref ? s_or_empty(ref->kind) : "";
    const char *api_version = ref ? s_or_empty(ref->apiversion) : "";
    size_t ln = strlen(ns) + 1, lm = strlen(name) + 1;
    size_t lk = ref ? strlen(kind) + 1 : 0, la = ref ? strlen(api_version) + 1 : 0;
    struct gnode *n = xcalloc(1, sizeof(*n) + ln + lm + lk + la);
    n->k = k;
    n->ns = memcpy(n->id, ns, ln);
    n->name = memcpy(n->id + ln, name, lm);
    if (ref) {
        n->as_referenced = true;
        memcpy(n->id + ln + lm, kind, lk);
        memcpy(n->id + ln + lm + lk, api_version, la);
    }
    smap_put(gc->nodes, uid, n);
    n->uid = smap_key(gc->nodes, uid);
    return n;
}

/* A virtual node seen at last: named as the object is. */
static void set_observed_identity(struct gnode *n, const struct kind *k,
                                  const Coracle__V1__ObjectMeta *m)
{
    const char *ns = k->namespaced ? s_or_empty(m->namespace_) : "", *name = s_or_empty(m->name);
    n->k = k;
    n->as_referenced = false;
    if (!strcmp(ns, n->ns) && !strcmp(name, n->name))
        return;
    size_t ln = strlen(ns) + 1, lm = strlen(name) + 1;
    char *p = xmalloc(ln + lm);
    memcpy(p, ns, ln);
    memcpy(p + ln, name, lm);
    if (n->moved)
        free((char *)n->ns);
    n->ns = p;
    n->name = p + ln;
    n->moved = true;
}

/* The cached object of an observed node (NULL if gone or replaced). */
static const ProtobufCMessage *node_object(const struct gc *gc, const struct gnode *n)
{
    const ProtobufCMessage *obj = n->k ? cm_get(gc->cm, n->k, n->ns, n->name) : NULL;
    return obj && !strcmp(cm_uid(obj), n->uid) ? obj : NULL;
}

/* Frees n, its links to owners already gone. */
static void node_free(void *v)
{
    struct gnode *n = v;
    if (n->moved)
        free((char *)n->ns);
    free(n);
}

static void node_drop(struct gc *gc, struct gnode *n)
{
    node_free(smap_del(gc->nodes, n->uid));
}

static void enqueue_dependents(struct gc *gc, const struct gnode *n)
{
    for (const struct gedge *e = n->deps; e; e = e->next)
        ctrl_enqueue(gc->c, e->dep->uid);
}

static void link_nodes(struct gnode *dep, struct gnode *owner)
{
    struct gedge *e = xcalloc(1, sizeof(*e));
    e->owner = owner;
    e->dep = dep;
    e->next = owner->deps;
    if (owner->deps)
        owner->deps->prev = e;
    owner->deps = e;
    e->next_owner = dep->owners;
    dep->owners = e;
}

/* Removes link e; an owner neither observed nor named any more goes. */
static void unlink_nodes(struct gc *gc, struct gedge *e)
{
    struct gnode *o = e->owner, *d = e->dep;
    if (e->prev)
        e->prev->next = e->next;
    else
        o->deps = e->next;
    if (e->next)
        e->next->prev = e->prev;
    struct gedge **pp = &d->owners;
    while (*pp != e)
        pp = &(*pp)->next_owner;
    *pp = e->next_owner;
    free(e);
    if (!o->deps && !o->observed)
        node_drop(gc, o);
}

static struct gedge *link_to(const struct gnode *n, const char *uid)
{
    for (struct gedge *e = n->owners; e; e = e->next_owner)
        if (!strcmp(e->owner->uid, uid))
            return e;
    return NULL;
}

/*
 * Makes n a dependent of the owner reference r names, a virtual node if
 * the owner is not in the graph (enqueued: a Get tells whether it exists).
 */
static void link_owner(struct gc *gc, struct gnode *n, const Coracle__V1__OwnerReference *r)
{
    const char *uid = s_or_empty(r->uid);
    struct gnode *o = smap_get(gc->nodes, uid);
    if (!o) {
        o = node_new(gc, uid, ref_kind(r->apiversion, r->kind), owner_ns(r, n->ns),
                     s_or_empty(r->name), r);
        ctrl_enqueue(gc->c, uid);
    } else if (o->gone || (o->observed && !ref_names(r, n->ns, o))) {
        /* an owner already gone, or a uid named by other coordinates: check it */
        ctrl_enqueue(gc->c, n->uid);
    }
    link_nodes(n, o);
    if (o->deleting_dependents)
        ctrl_enqueue(gc->c, uid); /* a new dependent may block it */
}

static bool lists_uid(const Coracle__V1__ObjectMeta *m, const char *uid)
{
    for (size_t i = 0; i < m->n_ownerreferences; i++)
        if (!strcmp(s_or_empty(m->ownerreferences[i]->uid), uid))
            return true;
    return false;
}

/* Whether the references differ in an owner or in blockOwnerDeletion. */
static bool refs_changed(const Coracle__V1__ObjectMeta *a, const Coracle__V1__ObjectMeta *b)
{
    if (a->n_ownerreferences != b->n_ownerreferences)
        return true;
    for (size_t i = 0; i < a->n_ownerreferences; i++) {
        const Coracle__V1__OwnerReference *x = a->ownerreferences[i], *y = b->ownerreferences[i];
        if (strcmp(s_or_empty(x->uid), s_or_empty(y->uid)) ||
            (x->has_blockownerdeletion && x->blockownerdeletion) !=
                (y->has_blockownerdeletion && y->blockownerdeletion))
            return true;
    }
    return false;
}

/* Owners waiting on their dependents look again when references to them change. */
static void wake_owners(struct gc *gc, const struct gnode *n)
{
    for (const struct gedge *e = n->owners; e; e = e->next_owner)
        if (e->owner->deleting_dependents)
            ctrl_enqueue(gc->c, e->owner->uid);
}

/* The owner references of n become those of m: links added and dropped. */
static void relink(struct gc *gc, struct gnode *n, const Coracle__V1__ObjectMeta *m)
{
    for (struct gedge *e = n->owners, *next; e; e = next) {
        next = e->next_owner;
        if (!lists_uid(m, e->owner->uid))
            unlink_nodes(gc, e);
    }
    for (size_t i = 0; i < m->n_ownerreferences; i++) {
        const Coracle__V1__OwnerReference *r = m->ownerreferences[i];
        if (r->uid && *r->uid && !link_to(n, r->uid))
            link_owner(gc, n, r);
    }
}

/*
 * A virtual owner turned real: its dependents that name it by other
 * coordinates (kind, name, namespace) look at their references again.
 */
static void recheck_misnamed(struct gc *gc, const struct gnode *n)
{
    for (const struct gedge *e = n->deps; e; e = e->next) {
        const ProtobufCMessage *obj = node_object(gc, e->dep);
        const Coracle__V1__ObjectMeta *m = obj ? kind_meta(obj) : NULL;
        for (size_t i = 0; m && i < m->n_ownerreferences; i++)
            if (!strcmp(s_or_empty(m->ownerreferences[i]->uid), n->uid) &&
                !ref_names(m->ownerreferences[i], e->dep->ns, n)) {
                ctrl_enqueue(gc->c, e->dep->uid);
                break;
            }
    }
}

/* An object added or changed (old: its previous state, or NULL). */
static void observe(struct gc *gc, const struct kind *k, const ProtobufCMessage *old,
                    const ProtobufCMessage *obj)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj), *om = old ? kind_meta(old) : NULL;
    if (!m || !m->uid || !*m->uid)
        return;
    struct gnode *n = smap_get(gc->nodes, m->uid);
    if (!n) {
        n = node_new(gc, m->uid, k, k->namespaced ? s_or_empty(m->namespace_) : "",
                     s_or_empty(m->name), NULL);
        n->observed = true;
        relink(gc, n, m);
    } else {
        if (!n->observed) {
            set_observed_identity(n, k, m);
            n->observed = true;
            n->gone = false;
            recheck_misnamed(gc, n);
        }
        if (!om || refs_changed(om, m)) {
            wake_owners(gc, n);
            relink(gc, n, m);
        }
    }
    n->deleting_dependents = deleting_with(obj, FIN_FOREGROUND);
    if (deleting_with(obj, FIN_ORPHAN) && !deleting_with(old, FIN_ORPHAN)) {
        ctrl_enqueue(gc->c, n->uid);
    } else if (n->deleting_dependents && !deleting_with(old, FIN_FOREGROUND)) {
        enqueue_dependents(gc, n);
        ctrl_enqueue(gc->c, n->uid);
    }
}

/*
 * n is gone (deleted, or confirmed absent): it depends on nothing any
 * more, and stays as a tombstone while dependents name it; they look at
 * their owners again.
 */
static void forget(struct gc *gc, struct gnode *n)
{
    wake_owners(gc, n);
    while (n->owners)
        unlink_nodes(gc, n->owners);
    n->deleting_dependents = false;
    if (!n->deps) {
        node_drop(gc, n);
        return;
    }
    n->observed = false;
    n->gone = true;
    enqueue_dependents(gc, n);
}

static void on_add(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    observe(arg, inf_kind(inf), NULL, obj);
}

static void on_update(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *obj,
                      void *arg)
{
    observe(arg, inf_kind(inf), old, obj);
}

static void on_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    struct gc *gc = arg;
    struct gnode *n = smap_get(gc->nodes, cm_uid(obj));
    if (n && n->observed)
        forget(gc, n);
}

static void *gc_setup(cm_t *cm, ctrl_t *c)
{
    struct gc *gc = xcalloc(1, sizeof(*gc));
    gc->cm = cm;
    gc->c = c;
    gc->nodes = smap_new();
    struct inf_handlers h = {on_add, on_update, on_delete, NULL, gc};
    /* not Events (never owned, and the busiest kind) nor Leases (heartbeats; the
     * controller manager may read only its own) */
    for (size_t i = 0; kinds_all[i]; i++)
        if (kinds_all[i] != &kind_event && kinds_all[i] != &kind_lease &&
            !kind_virtual(kinds_all[i]))
            cm_on(cm, kinds_all[i], &h);
    return gc;
}

static int free_links(const char *key, void *val, void *arg)
{
    struct gnode *n = val;
    for (struct gedge *e = n->owners, *next; e; e = next) {
        next = e->next_owner;
        free(e);
    }
    return 0;
}

static void gc_free(void *state)
{
    struct gc *gc = state;
    if (!gc)
        return;
    smap_each(gc->nodes, free_links, gc);
    smap_free(gc->nodes, node_free);
    free(gc);
}

static void gc_metrics(FILE *f, void *state)
{
    struct gc *gc = state;
    fprintf(f,
            "# HELP coracle_gc_graph_nodes Objects and virtual owners in the garbage "
            "collector's graph.\n"
            "# TYPE coracle_gc_graph_nodes gauge\n"
            "coracle_gc_graph_nodes %zu\n"
            "# HELP coracle_gc_deletes_total Objects the garbage collector deleted.\n"
            "# TYPE coracle_gc_deletes_total counter\n"
            "coracle_gc_deletes_total %llu\n"
            "# HELP coracle_gc_reference_removals_total Owner references the garbage "
            "collector removed (dead owners, orphaning).\n"
            "# TYPE coracle_gc_reference_removals_total counter\n"
            "coracle_gc_reference_removals_total %llu\n"
            "# HELP coracle_gc_owner_lookups_total Gets confirming an owner's absence.\n"
            "# TYPE coracle_gc_owner_lookups_total counter\n"
            "coracle_gc_owner_lookups_total %llu\n",
            smap_count(gc->nodes), (unsigned long long)gc->deletes,
            (unsigned long long)gc->ref_removals, (unsigned long long)gc->lookups);
}

/* ------------------------------------------------------------------ sync */

/*
 * One sync in flight: the writes or Gets it waits for. A step with
 * several calls of its own (every dependent's update, every owner's Get)
 * is a child: the parent holds one pending for it, and `then` resumes the
 * parent when the child's last call is back.
 */
struct gsync {
    struct gc *gc;
    char *key; /* the node's uid */
    int pending;
    int errors;
    char *why;
    smap_t *seen; /* coordinates -> verdict, from this sync's Gets */
    struct gsync *parent;
    void (*then)(struct gsync *child);
};

enum verdict { V_NONE, V_SOLID, V_DANGLING, V_WAITING, V_LOOKUP, V_UNKNOWN };

static struct gsync *gsync_new(struct gc *gc, const char *key)
{
    struct gsync *s = xcalloc(1, sizeof(*s));
    s->gc = gc;
    s->key = xstrdup(key);
    s->pending = 1;
    return s;
}

/* A child of s, resumed through then; s holds one pending for it. */
static struct gsync *gsync_child(struct gsync *s, void (*then)(struct gsync *child))
{
    struct gsync *child = gsync_new(s->gc, s->key);
    child->parent = s;
    child->then = then;
    s->pending++;
    return child;
}

static void gsync_fail(struct gsync *s, const char *fmt, const char *message)
{
    s->errors++;
    if (!s->why)
        s->why = xasprintf(fmt, message ? message : "failed");
}

static void gsync_finish(struct gsync *s)
{
    if (--s->pending > 0)
        return;
    if (s->then)
        s->then(s);
    else
        ctrl_done(s->gc->c, s->key, s->errors == 0, s->why);
    smap_free(s->seen, NULL);
    free(s->why);
    free(s->key);
    free(s);
}

static void write_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct gsync *s = arg;
    if (code != GRPC_OK && code != GRPC_NOT_FOUND)
        gsync_fail(s, "%s", message);
    gsync_finish(s);
}

/*
 * Deletes obj (kind k), preconditions its uid and, when rv, its
 * resourceVersion (the state the decision was made on).
 */
static void delete_object(struct gsync *s, const struct kind *k, const ProtobufCMessage *obj,
                          bool rv, const char *policy)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    Coracle__V1__DeleteRequest req = CORACLE__V1__DELETE_REQUEST__INIT;
    Coracle__V1__Preconditions pre = CORACLE__V1__PRECONDITIONS__INIT;
    req.namespace_ = m->namespace_;
    req.name = m->name;
    pre.uid = m->uid;
    if (rv)
        pre.resourceversion = m->resourceversion;
    req.preconditions = &pre;
    req.propagationpolicy = (char *)policy;
    log_debug("garbage collector: deleting %s %s/%s (propagation %s)", k->kind,
              s_or_empty(m->namespace_), s_or_empty(m->name), policy);
    s->gc->deletes++;
    s->pending++;
    cm_call(s->gc->cm, k, "Delete", &req.base, write_done, s);
}

/* Writes obj's copy, changed (kind k): Update, preconditioned on the cached resourceVersion. */
static void update_object(struct gsync *s, const struct kind *k, const ProtobufCMessage *copy)
{
    s->pending++;
    cm_call(s->gc->cm, k, "Update", copy, write_done, s);
}

/* Removes from a copy's metadata the references whose uid drop() picks. */
static void drop_refs(Coracle__V1__ObjectMeta *m, bool (*drop)(const char *uid, void *arg),
                      void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_ownerreferences; i++) {
        Coracle__V1__OwnerReference *r = m->ownerreferences[i];
        if (drop(s_or_empty(r->uid), arg))
            protobuf_c_message_free_unpacked(&r->base, NULL);
        else
            m->ownerreferences[n++] = r;
    }
    m->n_ownerreferences = n;
}

static void drop_finalizer(Coracle__V1__ObjectMeta *m, const char *f)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_finalizers; i++) {
        if (!strcmp(m->finalizers[i], f))
            free(m->finalizers[i]);
        else
            m->finalizers[n++] = m->finalizers[i];
    }
    m->n_finalizers = n;
}

/* Removes finalizer f from the cached obj (an Update: a conflict retries). */
static void remove_finalizer(struct gsync *s, const struct kind *k, const ProtobufCMessage *obj,
                             const char *f)
{
    ProtobufCMessage *copy = inf_copy(obj);
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    log_info("garbage collector: removing the %s finalizer of %s %s/%s", f, k->kind,
             s_or_empty(m->namespace_), s_or_empty(m->name));
    drop_finalizer(kind_meta(copy), f);
    update_object(s, k, copy);
    protobuf_c_message_free_unpacked(copy, NULL);
}

static bool is_uid(const char *uid, void *arg)
{
    return !strcmp(uid, arg);
}

/* ---- orphan: the dependents let go of the owner, then its finalizer goes ---- */

/* Dependent d lets go of owner_uid (an update in s). */
static void orphan_one(struct gsync *s, const struct gnode *d, const char *owner_uid)
{
    const ProtobufCMessage *obj = node_object(s->gc, d);
    if (!obj || !lists_uid(kind_meta(obj), owner_uid))
        return;
    ProtobufCMessage *copy = inf_copy(obj);
    drop_refs(kind_meta(copy), is_uid, (void *)owner_uid);
    s->gc->ref_removals++;
    update_object(s, d->k, copy);
    protobuf_c_message_free_unpacked(copy, NULL);
}

/* Every dependent updated (or one failed): the owner's orphan finalizer goes. */
static void orphaned(struct gsync *deps)
{
    struct gsync *s = deps->parent;
    if (deps->errors) {
        gsync_fail(s, "orphaning dependents: %s", deps->why);
    } else {
        struct gnode *n = smap_get(s->gc->nodes, s->key);
        const ProtobufCMessage *obj = n ? node_object(s->gc, n) : NULL;
        if (obj && deleting_with(obj, FIN_ORPHAN)) {
            remove_finalizer(s, n->k, obj, FIN_ORPHAN);
            if (deleting_with(obj, FIN_FOREGROUND))
                ctrl_enqueue(s->gc->c, s->key); /* its foreground part next */
        }
    }
    gsync_finish(s);
}

static void orphan_dependents(struct gsync *s, const struct gnode *n)
{
    struct gsync *deps = gsync_child(s, orphaned);
    for (const struct gedge *e = n->deps; e; e = e->next)
        orphan_one(deps, e->dep, n->uid);
    gsync_finish(deps);
}

/* ---- foreground: the owner goes once no dependent blocks it ---- */

static bool blocks(const ProtobufCMessage *obj, const char *owner_uid)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    for (size_t i = 0; i < m->n_ownerreferences; i++) {
        const Coracle__V1__OwnerReference *r = m->ownerreferences[i];
        if (!strcmp(s_or_empty(r->uid), owner_uid) && r->has_blockownerdeletion &&
            r->blockownerdeletion)
            return true;
    }
    return false;
}

/*
 * The dependents that block n's deletion (blockOwnerDeletion) are
 * deleted first (enqueued: their owner waits, so they go); once none is
 * left, the finalizer goes.
 */
static void finish_foreground(struct gsync *s, const struct gnode *n, const ProtobufCMessage *obj)
{
    size_t blocking = 0;
    for (const struct gedge *e = n->deps; e; e = e->next) {
        const ProtobufCMessage *dep = node_object(s->gc, e->dep);
        if (!dep || !blocks(dep, n->uid))
            continue;
        blocking++;
        if (!e->dep->deleting_dependents)
            ctrl_enqueue(s->gc->c, e->dep->uid);
    }
    if (!blocking)
        remove_finalizer(s, n->k, obj, FIN_FOREGROUND);
}

/* ---- a dependent: are its owners there? ---- */

static enum verdict owner_state(const ProtobufCMessage *owner)
{
    return deleting_with(owner, FIN_FOREGROUND) ? V_WAITING : V_SOLID;
}

static enum verdict classify(struct gsync *s, const struct gnode *n,
                             const Coracle__V1__OwnerReference *r)
{
    struct gc *gc = s->gc;
    const struct kind *k = ref_kind(r->apiversion, r->kind);
    if (!k || (!*n->ns && k->namespaced))
        return V_UNKNOWN; /* nothing to look it up by: never collected on it */
    char *c = coords(r, n->ns);
    enum verdict v = s->seen ? (enum verdict)(uintptr_t)smap_get(s->seen, c) : V_NONE;
    free(c);
    if (v != V_NONE)
        return v;
    const struct gnode *o = smap_get(gc->nodes, s_or_empty(r->uid));
    if (o && ref_names(r, n->ns, o)) {
        if (o->gone)
            return V_DANGLING;
        const ProtobufCMessage *owner = o->observed ? node_object(gc, o) : NULL;
        if (owner)
            return owner_state(owner);
    }
    return V_LOOKUP;
}

struct lookup {
    struct gsync *s; /* the child holding the Gets */
    char *coords;
    char *uid;
};

static void decide(struct gsync *s);

/* The coordinates of node n, as coords() makes them of a reference. */
static char *node_coords(const struct gnode *n)
{
    Coracle__V1__OwnerReference r = CORACLE__V1__OWNER_REFERENCE__INIT;
    r.uid = (char *)n->uid;
    r.kind = (char *)node_kind(n);
    r.apiversion = (char *)node_api_version(n);
    r.name = (char *)n->name;
    return coords(&r, n->ns);
}

/* A Get found no owner at coords: the virtual node named so is gone, for every dependent. */
static void confirm_gone(struct gc *gc, const char *uid, const char *coords_)
{
    struct gnode *o = smap_get(gc->nodes, uid);
    if (!o || o->observed || o->gone)
        return;
    char *c = node_coords(o);
    if (!strcmp(c, coords_))
        forget(gc, o);
    free(c);
}

static void looked_up(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct lookup *l = arg;
    enum verdict v = V_LOOKUP;
    if (code == GRPC_NOT_FOUND || (code == GRPC_OK && resp && strcmp(cm_uid(resp), l->uid)))
        v = V_DANGLING;
    else if (code == GRPC_OK && resp)
        v = owner_state(resp);
    else
        gsync_fail(l->s, "looking up an owner: %s", message);
    if (v == V_DANGLING)
        confirm_gone(l->s->gc, l->uid, l->coords);
    smap_put(l->s->parent->seen, l->coords, (void *)(uintptr_t)v);
    gsync_finish(l->s);
    free(l->coords);
    free(l->uid);
    free(l);
}

/* Every Get back: the parent decides again on what they said. */
static void lookups_done(struct gsync *child)
{
    struct gsync *s = child->parent;
    if (child->errors) {
        gsync_fail(s, "%s", child->why);
        gsync_finish(s);
        return;
    }
    decide(s);
}

/* Starts a Get for the owner r names (unless one is out already), in child. */
static void lookup(struct gsync *child, const struct gnode *n, const Coracle__V1__OwnerReference *r)
{
    smap_t *seen = child->parent->seen;
    char *c = coords(r, n->ns);
    if (smap_get(seen, c)) {
        free(c);
        return;
    }
    smap_put(seen, c, (void *)(uintptr_t)V_LOOKUP);
    struct lookup *l = xcalloc(1, sizeof(*l));
    l->s = child;
    l->coords = c;
    l->uid = xstrdup(s_or_empty(r->uid));
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.namespace_ = (char *)owner_ns(r, n->ns);
    req.name = r->name;
    child->gc->lookups++;
    child->pending++;
    cm_call(child->gc->cm, ref_kind(r->apiversion, r->kind), "Get", &req.base, looked_up, l);
}

/* The references to drop: those of an owner dangling or waiting, by position. */
struct drop_set {
    const Coracle__V1__ObjectMeta *m;
    const enum verdict *v;
};

static bool drop_stale(const char *uid, void *arg)
{
    const struct drop_set *d = arg;
    for (size_t i = 0; i < d->m->n_ownerreferences; i++)
        if (!strcmp(s_or_empty(d->m->ownerreferences[i]->uid), uid))
            return d->v[i] == V_DANGLING || d->v[i] == V_WAITING;
    return false;
}

static bool any_dependent_deleting(const struct gnode *n);

static void unblocked(int code, const char *message, const ProtobufCMessage *resp, void *arg);

/*
 * The dependent's verdict on its cached references, as Kubernetes'
 * attemptToDeleteItem: a solid owner keeps it (dangling and waiting
 * references removed); owners waiting in the foreground and dependents of
 * its own: deleted in the foreground; else deleted as its own finalizers
 * ask (Background by default).
 */
static void decide(struct gsync *s)
{
    struct gc *gc = s->gc;
    struct gnode *n = smap_get(gc->nodes, s->key);
    const ProtobufCMessage *obj = n && n->observed ? node_object(gc, n) : NULL;
    const Coracle__V1__ObjectMeta *m = obj ? kind_meta(obj) : NULL;
    if (!m || m->deletiontimestamp || !m->n_ownerreferences) {
        gsync_finish(s);
        return;
    }
    enum verdict *v = xcalloc(m->n_ownerreferences, sizeof(*v));
    size_t solid = 0, stale = 0, waiting = 0, looking = 0, unknown = 0;
    for (size_t i = 0; i < m->n_ownerreferences; i++) {
        v[i] = classify(s, n, m->ownerreferences[i]);
        solid += v[i] == V_SOLID;
        stale += v[i] == V_DANGLING || v[i] == V_WAITING;
        waiting += v[i] == V_WAITING;
        unknown += v[i] == V_UNKNOWN;
        looking += v[i] == V_LOOKUP;
    }
    const struct kind *k = n->k;
    if (looking) {
        struct gsync *child = gsync_child(s, lookups_done);
        if (!s->seen)
            s->seen = smap_new();
        for (size_t i = 0; i < m->n_ownerreferences; i++)
            if (v[i] == V_LOOKUP)
                lookup(child, n, m->ownerreferences[i]);
        gsync_finish(child);
        free(v);
        gsync_finish(s);
        return;
    }
    if (unknown) {
        /* an owner that cannot be looked up keeps it, as Kubernetes retries forever */
    } else if (solid) {
        if (stale) {
            ProtobufCMessage *copy = inf_copy(obj);
            struct drop_set d = {m, v};
            drop_refs(kind_meta(copy), drop_stale, &d);
            gc->ref_removals++;
            update_object(s, k, copy);
            protobuf_c_message_free_unpacked(copy, NULL);
        }
    } else if (waiting && n->deps) {
        if (any_dependent_deleting(n)) {
            /* a cycle of foreground deletions would wait forever: stop blocking owners */
            ProtobufCMessage *copy = inf_copy(obj);
            Coracle__V1__ObjectMeta *cm = kind_meta(copy);
            for (size_t i = 0; i < cm->n_ownerreferences; i++)
                if (cm->ownerreferences[i]->has_blockownerdeletion)
                    cm->ownerreferences[i]->blockownerdeletion = 0;
            s->pending++;
            cm_call(gc->cm, k, "Update", copy, unblocked, s);
            protobuf_c_message_free_unpacked(copy, NULL);
        } else {
            delete_object(s, k, obj, true, "Foreground");
        }
    } else {
        const char *policy = has_finalizer(m, FIN_ORPHAN)       ? "Orphan"
                             : has_finalizer(m, FIN_FOREGROUND) ? "Foreground"
                                                                : "Background";
        delete_object(s, k, obj, true, policy);
    }
    free(v);
    gsync_finish(s);
}

static bool any_dependent_deleting(const struct gnode *n)
{
    for (const struct gedge *e = n->deps; e; e = e->next)
        if (e->dep->deleting_dependents)
            return true;
    return false;
}

/* Its owner references no longer block: deleted in the foreground, on its uid alone. */
static void unblocked(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct gsync *s = arg;
    if (code == GRPC_OK && resp) {
        const struct kind *k = kind_by_desc(resp->descriptor);
        delete_object(s, k, resp, false, "Foreground");
    } else if (code != GRPC_NOT_FOUND) {
        gsync_fail(s, "unblocking owner references: %s", message);
    }
    gsync_finish(s);
}

/* ---- a virtual owner: does it exist? ---- */

static void virtual_checked(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct gsync *s = arg;
    struct gnode *n = smap_get(s->gc->nodes, s->key);
    if (!n || n->observed || n->gone) {
        /* seen meanwhile, gone with its last dependent, or known gone */
    } else if (code == GRPC_NOT_FOUND ||
               (code == GRPC_OK && resp && strcmp(cm_uid(resp), n->uid))) {
        forget(s->gc, n);
    } else if (code != GRPC_OK) {
        gsync_fail(s, "looking up an owner: %s", message);
    } else if (cm_informer(s->gc->cm, n->k)) {
        gsync_fail(s, "%s", "owner not yet observed"); /* the informer will see it: look again */
    }
    gsync_finish(s);
}

static void check_virtual(struct gsync *s, const struct gnode *n)
{
    const struct kind *k = n->k;
    if (!k) {
        log_info("garbage collector: owner %s %s/%s of an unknown kind (%s): its dependents stay",
                 node_kind(n), n->ns, n->name, node_api_version(n));
        gsync_finish(s);
        return;
    }
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.namespace_ = (char *)n->ns;
    req.name = (char *)n->name;
    s->gc->lookups++;
    cm_call(s->gc->cm, k, "Get", &req.base, virtual_checked, s);
}

static void gc_sync(ctrl_t *c, const char *key, void *state)
{
    struct gc *gc = state;
    struct gnode *n = smap_get(gc->nodes, key);
    if (!n) {
        ctrl_done(c, key, true, NULL);
        return;
    }
    if (n->gone) { /* its dependents were enqueued when it went */
        ctrl_done(c, key, true, NULL);
        return;
    }
    struct gsync *s = gsync_new(gc, key);
    if (!n->observed) {
        check_virtual(s, n);
        return;
    }
    const ProtobufCMessage *obj = node_object(gc, n);
    const Coracle__V1__ObjectMeta *m = obj ? kind_meta(obj) : NULL;
    if (m && m->deletiontimestamp) {
        if (has_finalizer(m, FIN_ORPHAN))
            orphan_dependents(s, n);
        else if (has_finalizer(m, FIN_FOREGROUND))
            finish_foreground(s, n, obj);
        gsync_finish(s);
        return;
    }
    decide(s);
}

const struct ctrl_def ctrl_garbagecollector = {
    .name = "garbagecollector",
    .workers = 20, /* --concurrent-gc-syncs */
    .setup = gc_setup,
    .sync = gc_sync,
    .free = gc_free,
    .metrics = gc_metrics,
};
