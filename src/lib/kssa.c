/*
 * kssa: server-side apply and managedFields (see kssa.h), as
 * structured-merge-diff's merge.Updater and apiserver's fieldmanager chain
 * (managed fields decoded and encoded, "before-first-apply", stripped
 * metadata, manager identifiers, update times, at most 10 Update entries,
 * kubectl's last-applied annotation) do it.
 *
 * The files, sharing kssa_int.h:
 *   kssa.c       managers and their entries, apply and update (this file);
 *   kssa_set.c   path elements and field sets: order, algebra, FieldsV1;
 *   kssa_walk.c  the walks over messages: field sets of objects, compare,
 *                merge, removal.
 */
#include "config.h"
#include "kssa_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "kinds.h"
#include "kobj.h"
#include "pb.h"
#include "util.h"

#define LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"
#define MAX_UPDATE_MANAGERS 10

/* One manager's entry: fieldpath.VersionedSet plus its identity and time. */
struct mgr {
    char *id; /* BuildManagerIdentifier's JSON: the key managers are told apart by */
    const char *manager, *operation, *subresource;
    const char *api_version; /* the set's version */
    struct set *set;
    int has_time;
    int64_t time;
    struct set *decoded; /* the set as read; while set is still it, raw is its FieldsV1 */
    const uint8_t *raw;
    size_t raw_len;
};

struct mgrs {
    struct mgr *v;
    size_t n, cap;
};

/* What an operation works with. */
struct ctx {
    struct arena a;
    struct walk w;
    const ProtobufCMessageDescriptor *d;
    const char *api_version;
    const char *subresource; /* the endpoint's, or NULL */
    struct set *reset;       /* the endpoint's reset fields */
    struct set *strip;       /* metadata no manager owns */
};

/* ------------------------------------------------------------ managers */

/* BuildManagerIdentifier: the entry's JSON without time, fields, and (Apply) apiVersion. */
static char *mgr_id(struct arena *a, const char *manager, const char *op, const char *api_version,
                    const char *sub)
{
    struct buf b = {0};
    buf_puts(&b, "{");
    const char *names[] = {"manager", "operation", "apiVersion", "subresource"};
    const char *vals[] = {manager, op, strcmp(op, "Apply") ? api_version : NULL, sub};
    int first = 1;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (!vals[i] || !*vals[i])
            continue;
        buf_puts(&b, first ? "\"" : ",\""); /* no printf: every write names its manager */
        buf_puts(&b, names[i]);
        buf_puts(&b, "\":");
        kobj_json_str(&b, vals[i], strlen(vals[i]));
        first = 0;
    }
    buf_puts(&b, "}");
    char *s = arena_strdup(a, b.p);
    buf_free(&b);
    return s;
}

static struct mgr *mgr_find(struct mgrs *ms, const char *id)
{
    for (size_t i = 0; i < ms->n; i++)
        if (!strcmp(ms->v[i].id, id))
            return &ms->v[i];
    return NULL;
}

static struct mgr *mgr_put(struct ctx *x, struct mgrs *ms, const char *manager, const char *op,
                           const char *sub)
{
    char *id = mgr_id(&x->a, manager, op, x->api_version, sub);
    struct mgr *m = mgr_find(ms, id);
    if (!m) {
        m = XPUSH(ms->v, ms->n, ms->cap);
        memset(m, 0, sizeof(*m));
        m->id = id;
        m->manager = arena_strdup(&x->a, manager);
        m->operation = arena_strdup(&x->a, op);
        m->subresource = sub && *sub ? arena_strdup(&x->a, sub) : NULL;
        m->set = set_new(&x->a);
    }
    m->api_version = x->api_version;
    return m;
}

static void mgr_del(struct mgrs *ms, struct mgr *m)
{
    size_t i = (size_t)(m - ms->v);
    memmove(&ms->v[i], &ms->v[i + 1], (ms->n - i - 1) * sizeof(*m));
    ms->n--;
}

static void mgrs_drop_empty(struct mgrs *ms)
{
    for (size_t i = ms->n; i-- > 0;)
        if (set_empty(ms->v[i].set))
            mgr_del(ms, &ms->v[i]);
}

/*
 * DecodeManagedFields: entries -> managers. An entry of another apiVersion
 * is dropped (its version cannot be converted; Kubernetes drops it on the
 * next write too). Returns 0, or -1 with *err (malloc'd).
 */
static int decode(struct ctx *x, const Coracle__V1__ObjectMeta *meta, struct mgrs *ms, char **err)
{
    ms->n = 0;
    for (size_t i = 0; meta && i < meta->n_managedfields; i++) {
        const Coracle__V1__ManagedFieldsEntry *e = meta->managedfields[i];
        const char *op = e->operation ? e->operation : "";
        if (strcmp(op, "Apply") && strcmp(op, "Update")) {
            *err = xstrdup("operation must be `Apply` or `Update`");
            return -1;
        }
        if (!e->apiversion || !*e->apiversion) {
            *err = xstrdup("apiVersion must not be empty");
            return -1;
        }
        if (!e->fieldstype || strcmp(e->fieldstype, "FieldsV1")) {
            *err = !e->fieldstype || !*e->fieldstype
                       ? xasprintf("missing fieldsType in managed fields entry %zu", i)
                       : xasprintf("invalid fieldsType \"%s\" in managed fields entry %zu",
                                   e->fieldstype, i);
            return -1;
        }
        struct set *s = set_new(&x->a);
        if (e->fieldsv1 && e->fieldsv1->has_raw) {
            char *serr = NULL;
            s = set_from_v1(&x->a, e->fieldsv1->raw.data, e->fieldsv1->raw.len, &serr);
            if (!s) {
                *err = xasprintf("error decoding set: %s", serr);
                free(serr);
                return -1;
            }
        }
        if (strcmp(e->apiversion, x->api_version))
            continue;
        struct mgr *m = mgr_put(x, ms, e->manager ? e->manager : "", op, e->subresource);
        m->set = m->decoded = s;
        m->raw = e->fieldsv1 && e->fieldsv1->has_raw ? e->fieldsv1->raw.data : NULL;
        m->raw_len = m->raw ? e->fieldsv1->raw.len : 0;
        m->has_time = e->time && e->time->has_seconds;
        m->time = m->has_time ? e->time->seconds : 0;
    }
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    const Coracle__V1__ManagedFieldsEntry *p = *(Coracle__V1__ManagedFieldsEntry *const *)a;
    const Coracle__V1__ManagedFieldsEntry *q = *(Coracle__V1__ManagedFieldsEntry *const *)b;
    int r = strcmp(p->operation, q->operation);
    if (r)
        return r;
    int64_t ps = p->time ? p->time->seconds : 0, qs = q->time ? q->time->seconds : 0;
    if (ps != qs)
        return ps < qs ? -1 : 1;
    if ((r = strcmp(p->manager, q->manager)))
        return r;
    if ((r = strcmp(p->apiversion, q->apiversion)))
        return r;
    return strcmp(p->subresource ? p->subresource : "", q->subresource ? q->subresource : "");
}

/* A manager's entry (m's set aside: raw is the caller's to fill), malloc'd. */
static Coracle__V1__ManagedFieldsEntry *entry_new(const struct mgr *m)
{
    Coracle__V1__ManagedFieldsEntry *e = xmalloc(sizeof(*e));
    coracle__v1__managed_fields_entry__init(e);
    e->manager = xstrdup(m->manager);
    e->operation = xstrdup(m->operation);
    e->apiversion = xstrdup(m->api_version);
    if (m->has_time) {
        e->time = xmalloc(sizeof(*e->time));
        coracle__v1__time__init(e->time);
        e->time->has_seconds = 1;
        e->time->seconds = m->time;
    }
    e->fieldstype = xstrdup("FieldsV1");
    e->fieldsv1 = xmalloc(sizeof(*e->fieldsv1));
    coracle__v1__fields_v1__init(e->fieldsv1);
    e->fieldsv1->has_raw = 1;
    e->subresource = m->subresource ? xstrdup(m->subresource) : NULL;
    return e;
}

/* encodeManagedFields into meta, sorted as Kubernetes sorts them. A set
 * unchanged since it was read keeps its bytes (they may be meta's own: the
 * old entries go last). */
static void encode(const struct mgrs *ms, Coracle__V1__ObjectMeta *meta)
{
    Coracle__V1__ManagedFieldsEntry **v = xcalloc(ms->n + 1, sizeof(*v));
    for (size_t i = 0; i < ms->n; i++) {
        const struct mgr *m = &ms->v[i];
        Coracle__V1__ManagedFieldsEntry *e = entry_new(m);
        if (m->raw && m->set == m->decoded) {
            e->fieldsv1->raw.len = m->raw_len;
            e->fieldsv1->raw.data = xmalloc(m->raw_len + 1);
            memcpy(e->fieldsv1->raw.data, m->raw, m->raw_len);
        } else {
            struct buf b = {0};
            set_to_json(&b, m->set);
            e->fieldsv1->raw.len = b.len;
            e->fieldsv1->raw.data = (uint8_t *)buf_take(&b);
        }
        v[i] = e;
    }
    qsort(v, ms->n, sizeof(*v), cmp_entry);
    for (size_t i = 0; i < meta->n_managedfields; i++)
        protobuf_c_message_free_unpacked(&meta->managedfields[i]->base, NULL);
    free(meta->managedfields);
    meta->managedfields = ms->n ? v : NULL;
    meta->n_managedfields = ms->n;
    if (!ms->n)
        free(v);
}

static int cmp_age(const void *a, const void *b)
{
    const struct mgr *p = *(struct mgr *const *)a, *q = *(struct mgr *const *)b;
    if (p->time != q->time)
        return p->time < q->time ? -1 : 1;
    return strcmp(p->id, q->id);
}

/* capManagersManager: the oldest Update entries merge into "ancient-changes". */
static void cap_updaters(struct ctx *x, struct mgrs *ms)
{
    size_t n = 0;
    struct mgr **up = xmalloc((ms->n + 1) * sizeof(*up));
    for (size_t i = 0; i < ms->n; i++)
        if (strcmp(ms->v[i].operation, "Apply"))
            up[n++] = &ms->v[i];
    if (n <= MAX_UPDATE_MANAGERS) {
        free(up);
        return;
    }
    qsort(up, n, sizeof(*up), cmp_age);
    /* work on ids: deleting entries moves the others */
    char **ids = xmalloc(n * sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = up[i]->id;
    free(up);
    const char *first = NULL;
    char *bucket = mgr_id(&x->a, "ancient-changes", "Update", x->api_version, NULL);
    for (size_t i = 0, len = n; i < n && len > MAX_UPDATE_MANAGERS; i++) {
        struct mgr *m = mgr_find(ms, ids[i]);
        if (!first) {
            first = ids[i];
            continue;
        }
        struct mgr *bk = mgr_find(ms, bucket);
        if (!bk) {
            struct mgr *f = mgr_find(ms, first);
            struct set *fs = f->set;
            int ht = f->has_time;
            int64_t t = f->time;
            mgr_del(ms, f);
            bk = mgr_put(x, ms, "ancient-changes", "Update", NULL);
            bk->set = fs;
            bk->has_time = ht;
            bk->time = t;
            m = mgr_find(ms, ids[i]);
        }
        struct set *s = set_union(&x->a, m->set, bk->set);
        int ht = m->has_time;
        int64_t t = m->time;
        mgr_del(ms, m);
        bk = mgr_find(ms, bucket);
        bk->set = s;
        bk->has_time = ht;
        bk->time = t;
        len--;
    }
    free(ids);
}

/* ------------------------------------------------------------- context */

static struct set *paths_set(struct ctx *x, const char *const *paths)
{
    struct set *s = set_new(&x->a);
    for (; paths && *paths; paths++) {
        struct pe p[16];
        size_t n = 0;
        char *dup = xstrdup(*paths), *save = NULL;
        for (char *t = strtok_r(dup, ".", &save); t && n < ARRAY_SIZE(p);
             t = strtok_r(NULL, ".", &save))
            p[n++] = pe_field(&x->a, t);
        if (n)
            set_insert(&x->a, s, p, n);
        free(dup);
    }
    return s;
}

/*
 * The sets of a NULL-terminated list of static paths (the stripped
 * metadata, an endpoint's reset fields), made once for the process: they
 * are only ever the second operand of a difference, never changed, so
 * every operation shares them (making them cost a create a fifth of its
 * managedFields work). The lists are told apart by address; at most
 * PATHS_SETS of them, then each operation makes its own.
 */
#define PATHS_SETS 16
static struct {
    pthread_mutex_t mu;
    struct arena a;
    const char *const *paths[PATHS_SETS];
    struct set *sets[PATHS_SETS];
    size_t n;
} shared_paths = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct set *paths_set_shared(struct ctx *x, const char *const *paths)
{
    struct set *s = NULL;
    pthread_mutex_lock(&shared_paths.mu);
    for (size_t i = 0; i < shared_paths.n && !s; i++)
        if (shared_paths.paths[i] == paths)
            s = shared_paths.sets[i];
    if (!s && shared_paths.n < PATHS_SETS) {
        struct ctx tmp = {.a = shared_paths.a}; /* paths_set allocates in the shared arena */
        s = paths_set(&tmp, paths);
        shared_paths.a = tmp.a;
        shared_paths.paths[shared_paths.n] = paths;
        shared_paths.sets[shared_paths.n++] = s;
    }
    pthread_mutex_unlock(&shared_paths.mu);
    return s ? s : paths_set(x, paths);
}

/* The version the endpoint's entries are of. */
static const char *api_version_of(const ProtobufCMessageDescriptor *d, const struct kssa_opts *o)
{
    const struct kind *k = o && o->api_version ? NULL : kind_by_desc(d);
    return o && o->api_version ? o->api_version : k ? k->api_version : "v1";
}

static void ctx_init(struct ctx *x, const ProtobufCMessageDescriptor *d, const struct kssa_opts *o)
{
    static const char *const strip[] = {
        "apiVersion",
        "kind",
        "metadata",
        "metadata.name",
        "metadata.namespace",
        "metadata.creationTimestamp",
        "metadata.selfLink",
        "metadata.uid",
        "metadata.clusterName",
        "metadata.generation",
        "metadata.managedFields",
        "metadata.resourceVersion",
        NULL,
    };
    memset(x, 0, sizeof(*x));
    x->w.a = &x->a;
    x->d = d;
    x->api_version = api_version_of(d, o);
    x->subresource = o && o->subresource && *o->subresource ? o->subresource : NULL;
    x->reset = paths_set_shared(x, o ? o->reset : NULL);
    x->strip = paths_set_shared(x, strip);
}

static void ctx_free(struct ctx *x)
{
    free(x->w.err);
    arena_free(&x->a);
}

/* ------------------------------------------------------------- updater */

/* Conflicts of one manager. */
struct conflict {
    const struct mgr *m; /* a copy of the manager */
    struct set *set;
};

struct conflicts {
    struct conflict *v;
    size_t n, cap;
};

/*
 * merge.Updater.update: the fields old -> nw changed leave the other
 * managers (modified or added: they conflict unless force), removed
 * fields leave everyone but workflow. Returns 0 and *c, or -1 with the
 * conflicts in *cf.
 */
static int update_core(struct ctx *x, const ProtobufCMessage *old, const ProtobufCMessage *nw,
                       struct mgrs *ms, const char *workflow, int force, struct cmp *c,
                       struct conflicts *cf)
{
    *c = walk_compare(&x->w, old, nw);
    c->removed = set_rdiff(&x->a, c->removed, x->reset);
    c->modified = set_rdiff(&x->a, c->modified, x->reset);
    c->added = set_rdiff(&x->a, c->added, x->reset);
    struct set *changed = set_union(&x->a, c->modified, c->added);
    for (size_t i = 0; i < ms->n; i++) {
        if (!strcmp(ms->v[i].id, workflow))
            continue;
        struct set *s = set_intersect(&x->a, ms->v[i].set, changed);
        if (set_empty(s))
            continue;
        struct mgr *copy = arena_alloc(&x->a, sizeof(*copy));
        *copy = ms->v[i];
        *XPUSH(cf->v, cf->n, cf->cap) = (struct conflict){copy, s};
    }
    if (!force && cf->n)
        return -1;
    for (size_t i = 0; i < ms->n; i++) {
        if (!strcmp(ms->v[i].id, workflow))
            continue;
        for (size_t j = 0; j < cf->n; j++)
            if (!strcmp(cf->v[j].m->id, ms->v[i].id))
                ms->v[i].set = set_diff(&x->a, ms->v[i].set, cf->v[j].set);
        if (!set_empty(set_intersect(&x->a, ms->v[i].set, c->removed)))
            ms->v[i].set = set_diff(&x->a, ms->v[i].set, c->removed);
    }
    mgrs_drop_empty(ms);
    return 0;
}

static struct set *fieldset(struct ctx *x, const ProtobufCMessage *m)
{
    return walk_fieldset(&x->w, m);
}

static struct set *ens(struct ctx *x, const struct set *s)
{
    return walk_ensure_named(&x->w, s, x->d);
}

static ProtobufCMessage *removed(struct ctx *x, const ProtobufCMessage *m, const struct set *s)
{
    ProtobufCMessage *c = pb_clone(m);
    walk_remove(&x->w, c, s);
    return c;
}

/*
 * merge.Updater.prune: removes from merged (taken) what manager applied
 * last time (last) and applies no more, unless a manager owns it.
 */
static ProtobufCMessage *prune(struct ctx *x, ProtobufCMessage *merged, const struct mgrs *ms,
                               const struct set *last)
{
    if (!last || set_empty(last))
        return merged;
    int strict = x->w.strict;
    x->w.strict = 0;
    ProtobufCMessage *pruned = removed(x, merged, ens(x, last));
    /* addBackOwnedItems */
    struct set *managed = set_new(&x->a);
    for (size_t i = 0; i < ms->n; i++)
        managed = set_union(&x->a, managed, ms->v[i].set);
    struct set *ms_set = ens(x, fieldset(x, merged)), *ps = ens(x, fieldset(x, pruned));
    protobuf_c_message_free_unpacked(pruned, NULL);
    pruned = removed(x, merged, set_diff(&x->a, ms_set, set_union(&x->a, ps, ens(x, managed))));
    /* addBackDanglingItems */
    ps = ens(x, fieldset(x, pruned));
    protobuf_c_message_free_unpacked(pruned, NULL);
    ProtobufCMessage *out =
        removed(x, merged, set_intersect(&x->a, set_diff(&x->a, ms_set, ps), ens(x, last)));
    protobuf_c_message_free_unpacked(merged, NULL);
    x->w.strict = strict;
    return out;
}

static Coracle__V1__ObjectMeta *meta_of(ProtobufCMessage *obj)
{
    Coracle__V1__ObjectMeta *m = kind_meta(obj);
    if (!m) {
        m = xmalloc(sizeof(*m));
        coracle__v1__object_meta__init(m);
        kind_set_meta(obj, m);
    }
    return m;
}

/* ----------------------------------------------------------------- apply */

static void err_set(struct kssa_err *e, int code, char *msg)
{
    memset(e, 0, sizeof(*e));
    e->code = code;
    e->message = msg;
}

void kssa_err_free(struct kssa_err *e)
{
    if (!e)
        return;
    free(e->message);
    for (size_t i = 0; i < e->ncauses; i++) {
        free(e->causes[i].message);
        free(e->causes[i].field);
    }
    free(e->causes);
    memset(e, 0, sizeof(*e));
}

/* printManager: `"kubectl"`, `"kubelet" with subresource "status" using v1`. */
static void print_manager(struct buf *b, const struct mgr *m)
{
    struct sval v = {.t = SV_STR, .s = m->manager, .len = strlen(m->manager)};
    struct pe p = {.k = PE_VALUE, .v = v};
    struct buf q = {0};
    pe_string(&q, &p); /* [="name"] */
    buf_add(b, q.p + 2, q.len - 3);
    buf_free(&q);
    if (m->subresource) {
        buf_puts(b, " with subresource ");
        v.s = m->subresource;
        v.len = strlen(v.s);
        p.v = v;
        pe_string(&q, &p);
        buf_add(b, q.p + 2, q.len - 3);
        buf_free(&q);
    }
    if (!strcmp(m->operation, "Update"))
        buf_printf(b, " using %s", m->api_version);
}

struct conflict_iter {
    struct kssa_err *e;
    struct buf *msg;
    const struct mgr *m;
    size_t cap;
};

static void on_conflict(void *arg, const struct pe *path, size_t n)
{
    struct conflict_iter *it = arg;
    struct buf f = {0}, who = {0};
    for (size_t i = 0; i < n; i++)
        pe_string(&f, &path[i]);
    buf_puts(&f, "");
    print_manager(&who, it->m);
    struct kssa_cause *c = XPUSH(it->e->causes, it->e->ncauses, it->cap);
    c->message = xasprintf("conflict with %s", who.p);
    c->field = buf_take(&f);
    buf_free(&who);
    if (it->msg)
        buf_printf(it->msg, "\n- %s", c->field);
}

static int cmp_conflict(const void *a, const void *b)
{
    return strcmp(((const struct conflict *)a)->m->id, ((const struct conflict *)b)->m->id);
}

/* NewConflictError: 409, a cause per field, managers in identifier order. */
static void conflict_err(struct conflicts *cf, struct kssa_err *e)
{
    memset(e, 0, sizeof(*e));
    e->code = 409;
    qsort(cf->v, cf->n, sizeof(*cf->v), cmp_conflict);
    struct buf groups = {0};
    struct conflict_iter it = {e, NULL, NULL, 0};
    for (size_t i = 0; i < cf->n; i++) {
        struct buf who = {0};
        print_manager(&who, cf->v[i].m);
        buf_printf(&groups, "%sconflicts with %s:", i ? "\n" : "", who.p);
        buf_free(&who);
        it.msg = &groups;
        it.m = cf->v[i].m;
        set_iterate(cf->v[i].set, on_conflict, &it);
    }
    if (e->ncauses == 1)
        e->message = xasprintf("Apply failed with 1 conflict: %s: %s", e->causes[0].message,
                               e->causes[0].field);
    else
        e->message = xasprintf("Apply failed with %zu conflicts: %s", e->ncauses, groups.p);
    buf_free(&groups);
}

static const char *annotation(const ProtobufCMessage *obj, const char *key)
{
    const Coracle__V1__ObjectMeta *m = obj ? kind_meta(obj) : NULL;
    for (size_t i = 0; m && i < m->n_annotations; i++)
        if (m->annotations[i]->key && !strcmp(m->annotations[i]->key, key))
            return m->annotations[i]->value ? m->annotations[i]->value : "";
    return NULL;
}

static void annotation_set(ProtobufCMessage *obj, const char *key, const char *val)
{
    Coracle__V1__ObjectMeta *m = meta_of(obj);
    for (size_t i = 0; i < m->n_annotations; i++)
        if (m->annotations[i]->key && !strcmp(m->annotations[i]->key, key)) {
            free(m->annotations[i]->value);
            m->annotations[i]->value = xstrdup(val);
            return;
        }
    m->annotations = xrealloc(m->annotations, (m->n_annotations + 1) * sizeof(*m->annotations));
    Coracle__V1__ObjectMeta__AnnotationsEntry *e = xmalloc(sizeof(*e));
    coracle__v1__object_meta__annotations_entry__init(e);
    e->key = xstrdup(key);
    e->value = xstrdup(val);
    m->annotations[m->n_annotations++] = e;
}

/*
 * lastAppliedManager: the fields kubectl's client-side apply annotation
 * holds with the live values: kubectl's server-side apply takes them
 * without a conflict. NULL if there is no (readable) annotation.
 */
static struct set *last_applied_fields(struct ctx *x, const ProtobufCMessage *live)
{
    const char *la = annotation(live, LAST_APPLIED);
    if (!la || !*la)
        return NULL;
    char *perr = NULL;
    ProtobufCMessage *obj = kobj_parse_msg(LAST_APPLIED, la, strlen(la), x->d, &perr);
    free(perr);
    if (!obj)
        return NULL;
    int strict = x->w.strict;
    x->w.strict = 0;
    struct set *s = fieldset(x, obj);
    struct cmp c = walk_compare(&x->w, obj, live);
    x->w.strict = strict;
    protobuf_c_message_free_unpacked(obj, NULL);
    s = set_diff(&x->a, s, c.modified);
    s = set_diff(&x->a, s, c.added);
    return set_diff(&x->a, s, c.removed);
}

/* The conflicts not in allowed; 1 if none is left. */
static int conflicts_allowed(struct ctx *x, struct conflicts *cf, const struct set *allowed)
{
    size_t left = 0;
    for (size_t i = 0; i < cf->n; i++) {
        cf->v[i].set = set_diff(&x->a, cf->v[i].set, allowed);
        if (!set_empty(cf->v[i].set))
            cf->v[left++] = cf->v[i];
    }
    cf->n = left;
    return left == 0;
}

/* structuredMergeManager.Apply and the managers around it; 0, or -1 with *err. */
static int apply_once(struct ctx *x, const ProtobufCMessage *live, const ProtobufCMessage *config,
                      const char *manager, int force, int64_t now, ProtobufCMessage **out,
                      struct conflicts *cf, struct kssa_err *err)
{
    struct mgrs ms = {0};
    char *derr = NULL;
    int rc = -1;
    *out = NULL;
    if (decode(x, kind_meta(live), &ms, &derr) < 0) {
        err_set(err, 500, xasprintf("failed to decode managed fields: %s", derr));
        free(derr);
        goto out;
    }
    struct cmp c;
    if (!ms.n) { /* skipNonAppliedManager: what is there belongs to "before-first-apply" */
        ProtobufCMessage *empty = walk_empty_object(x->d);
        update_core(x, empty, live, &ms, "", 1, &c, cf);
        protobuf_c_message_free_unpacked(empty, NULL);
        struct set *s = set_rdiff(&x->a, set_union(&x->a, c.modified, c.added), x->reset);
        s = set_diff(&x->a, s, x->strip);
        if (!set_empty(s)) {
            struct mgr *m = mgr_put(x, &ms, "before-first-apply", "Update", NULL);
            m->set = s;
            m->has_time = 1;
            m->time = now;
        }
    }
    ProtobufCMessage *merged = pb_clone(live);
    x->w.strict = 1;
    x->w.depth = 0;
    if (walk_merge(&x->w, merged, config) < 0) {
        protobuf_c_message_free_unpacked(merged, NULL);
        const struct kind *k = kind_by_desc(x->d);
        const Coracle__V1__ObjectMeta *cm = kind_meta(config);
        err_set(err, 400,
                xasprintf("failed to create typed patch object (%s/%s; %s%s, Kind=%s): %s",
                          cm && cm->namespace_ ? cm->namespace_ : "",
                          cm && cm->name ? cm->name : "", strchr(x->api_version, '/') ? "" : "/",
                          x->api_version, k ? k->kind : x->d->short_name, x->w.err));
        goto out;
    }
    /* an apply to a subresource is an entry of its own, as for updates */
    char *id = mgr_id(&x->a, manager, "Apply", x->api_version, x->subresource);
    struct mgr *self = mgr_find(&ms, id);
    struct set *last = self ? self->set : NULL;
    self = mgr_put(x, &ms, manager, "Apply", x->subresource);
    self->set = set_rdiff(&x->a, fieldset(x, config), x->reset);
    x->w.strict = 0;
    merged = prune(x, merged, &ms, last);
    cf->n = 0;
    if (update_core(x, live, merged, &ms, id, force, &c, cf) < 0) {
        protobuf_c_message_free_unpacked(merged, NULL);
        conflict_err(cf, err);
        goto out;
    }
    /* stripMetaManager, managedFieldsUpdater */
    if ((self = mgr_find(&ms, id))) {
        self->set = set_diff(&x->a, self->set, x->strip);
        if (set_empty(self->set))
            mgr_del(&ms, self);
        else if (!walk_equal(live, merged)) {
            self->has_time = 1;
            self->time = now;
        }
    }
    encode(&ms, meta_of(merged));
    *out = merged;
    rc = 0;
out:
    free(ms.v);
    return rc;
}

int kssa_apply(const ProtobufCMessage *live, const ProtobufCMessage *config, const char *manager,
               int force, const struct kssa_opts *o, int64_t now, ProtobufCMessage **out,
               struct kssa_err *err)
{
    struct ctx x;
    struct conflicts cf = {0};
    ctx_init(&x, config->descriptor, o);
    memset(err, 0, sizeof(*err));
    *out = NULL;
    ProtobufCMessage *empty = NULL;
    const Coracle__V1__ObjectMeta *cm = kind_meta(config);
    int rc = -1;
    if (cm && cm->n_managedfields) {
        err_set(err, 400, xstrdup("metadata.managedFields must be nil"));
        goto out;
    }
    if (!live) /* a create: what is stored is only what the config says */
        live = empty = kobj_msg_new(config->descriptor);
    rc = apply_once(&x, live, config, manager, force, now, out, &cf, err);
    if (rc < 0 && err->code == 409 && !strcmp(manager, "kubectl")) {
        /* lastAppliedManager: conflicts client-side apply explains are taken */
        struct set *allowed = last_applied_fields(&x, live);
        if (allowed && conflicts_allowed(&x, &cf, allowed)) {
            kssa_err_free(err);
            cf.n = 0;
            rc = apply_once(&x, live, config, manager, 1, now, out, &cf, err);
        } else if (allowed) {
            kssa_err_free(err);
            conflict_err(&cf, err);
        }
    }
    if (rc == 0 && !strcmp(manager, "kubectl") && annotation(live, LAST_APPLIED) &&
        *annotation(live, LAST_APPLIED)) {
        /* lastAppliedUpdater: the annotation follows what kubectl applies */
        ProtobufCMessage *c = pb_clone(config);
        Coracle__V1__ObjectMeta *m = kind_meta(c);
        for (size_t i = 0; m && i < m->n_annotations; i++)
            if (m->annotations[i]->key && !strcmp(m->annotations[i]->key, LAST_APPLIED)) {
                protobuf_c_message_free_unpacked(&m->annotations[i]->base, NULL);
                m->annotations[i--] = m->annotations[--m->n_annotations];
            }
        char *json = kobj_emit(kind_by_desc(x.d), c, KOBJ_FMT_JSON_COMPACT);
        annotation_set(*out, LAST_APPLIED, json);
        free(json);
        protobuf_c_message_free_unpacked(c, NULL);
    }
out:
    if (empty)
        protobuf_c_message_free_unpacked(empty, NULL);
    free(cf.v);
    ctx_free(&x);
    return rc;
}

/* ---------------------------------------------------------------- update */

/* isResetManagedFields: one entry with nothing in it. */
static int is_reset(const Coracle__V1__ObjectMeta *m)
{
    if (!m || m->n_managedfields != 1)
        return 0;
    const Coracle__V1__ManagedFieldsEntry *e = m->managedfields[0];
    return !e->manager && !e->operation && !e->apiversion && !e->time && !e->fieldstype &&
           !e->fieldsv1 && !e->subresource;
}

/* decodeLiveOrNew: the request's managedFields if usable, else the stored ones. */
static void decode_live_or_new(struct ctx *x, const ProtobufCMessage *old,
                               const ProtobufCMessage *nw, const struct kssa_opts *o,
                               struct mgrs *ms)
{
    char *err = NULL;
    const Coracle__V1__ObjectMeta *om = old ? kind_meta(old) : NULL, *nm = kind_meta(nw);
    if (!(o && o->subresource && *o->subresource)) {
        if (is_reset(nm)) {
            ms->n = 0;
            return;
        }
        if (decode(x, nm, ms, &err) == 0 && ms->n)
            return;
        free(err);
        err = NULL;
    }
    if (decode(x, om, ms, &err) < 0)
        ms->n = 0;
    free(err);
}

/*
 * What creates recorded, by the object's shape: a create's entry is every
 * field it sets (less reset and stripped ones), which depends only on the
 * shape (walk_shape), and creates come in runs of one shape (a controller's
 * pods, a client's objects). Comparing against an empty object and writing
 * FieldsV1 cost a pod create more than the rest of the apiserver's work
 * for it; the digest is a thirtieth of that, and a hit makes the entry
 * from the cached bytes without the operation's context. Keyed also by
 * the type and the endpoint's reset list (by address). 256 shapes, so a
 * cluster's many templates created in turn still hit (for the benchmark's
 * pod a miss is about 62k instructions, a hit 4.5k): a digest picks one of
 * 64 sets of 4, replaced round robin within the set.
 */
#define SHAPE_SETS 64
#define SHAPE_WAYS 4
struct shape_entry {
    const ProtobufCMessageDescriptor *d;
    const char *const *reset;
    uint64_t h[2];
    uint8_t *v1; /* FieldsV1, malloc'd */
    size_t len;
};
static struct {
    pthread_mutex_t mu;
    struct {
        struct shape_entry e[SHAPE_WAYS];
        unsigned next;
    } set[SHAPE_SETS];
} create_shapes = {.mu = PTHREAD_MUTEX_INITIALIZER};

static unsigned shape_set(const uint64_t h[2])
{
    return (unsigned)(h[0] % SHAPE_SETS);
}

/*
 * A create's entry by its shape, if the cache has it: nw's managedFields
 * become that one entry, as update_core and encode would make it. Returns
 * 1, or 0 (nw untouched) for a shape not seen yet.
 */
static int create_by_shape(ProtobufCMessage *nw, const char *manager, const struct kssa_opts *o,
                           int64_t now, const uint64_t h[2])
{
    const ProtobufCMessageDescriptor *d = nw->descriptor;
    const char *const *reset = o ? o->reset : NULL;
    uint8_t *v1 = NULL;
    size_t len = 0;
    pthread_mutex_lock(&create_shapes.mu);
    const struct shape_entry *set = create_shapes.set[shape_set(h)].e;
    for (size_t i = 0; i < SHAPE_WAYS && !v1; i++) {
        const struct shape_entry *e = &set[i];
        if (e->v1 && e->d == d && e->reset == reset && e->h[0] == h[0] && e->h[1] == h[1]) {
            len = e->len;
            v1 = xmalloc(len + 1);
            memcpy(v1, e->v1, len);
        }
    }
    pthread_mutex_unlock(&create_shapes.mu);
    if (!v1)
        return 0;
    const char *sub = o && o->subresource && *o->subresource ? o->subresource : NULL;
    struct mgr m = {.manager = manager && *manager ? manager : "unknown",
                    .operation = "Update",
                    .subresource = sub,
                    .api_version = api_version_of(d, o),
                    .has_time = 1,
                    .time = now};
    Coracle__V1__ManagedFieldsEntry *e = entry_new(&m);
    e->fieldsv1->raw.data = v1;
    e->fieldsv1->raw.len = len;
    Coracle__V1__ObjectMeta *meta = meta_of(nw);
    free(meta->managedfields); /* none, but the array may be there */
    meta->managedfields = xmalloc(sizeof(*meta->managedfields));
    meta->managedfields[0] = e;
    meta->n_managedfields = 1;
    return 1;
}

static void shape_put(const ProtobufCMessageDescriptor *d, const struct kssa_opts *o,
                      const uint64_t h[2], const Coracle__V1__ObjectMeta *m)
{
    if (m->n_managedfields != 1 || !m->managedfields[0]->fieldsv1)
        return;
    const ProtobufCBinaryData *raw = &m->managedfields[0]->fieldsv1->raw;
    pthread_mutex_lock(&create_shapes.mu);
    unsigned k = shape_set(h);
    struct shape_entry *e = &create_shapes.set[k].e[create_shapes.set[k].next++ % SHAPE_WAYS];
    free(e->v1);
    *e = (struct shape_entry){
        d, o ? o->reset : NULL, {h[0], h[1]}, xmemdup(raw->data, raw->len), raw->len};
    pthread_mutex_unlock(&create_shapes.mu);
}

void kssa_update_general(const ProtobufCMessage *old, ProtobufCMessage *nw, const char *manager,
                         const struct kssa_opts *o, int64_t now)
{
    struct ctx x;
    struct mgrs ms = {0};
    struct conflicts cf = {0};
    ctx_init(&x, nw->descriptor, o);
    decode_live_or_new(&x, old, nw, o, &ms);
    Coracle__V1__ObjectMeta *nm = meta_of(nw);
    const Coracle__V1__ObjectMeta *om = old ? kind_meta(old) : NULL;
    /* skipNonAppliedManager: an object that has none gets none, but at its creation */
    if (!ms.n && old && om && om->uid && *om->uid) {
        encode(&ms, nm);
        goto out;
    }
    ProtobufCMessage *empty = old ? NULL : walk_empty_object(nw->descriptor);
    struct cmp c;
    update_core(&x, old ? old : empty, nw, &ms, "", 1, &c, &cf);
    if (empty)
        protobuf_c_message_free_unpacked(empty, NULL);
    /* the fields this write changed ("current-operation"), then managedFieldsUpdater */
    struct set *s = set_union(&x.a, c.modified, c.added);
    s = set_diff(&x.a, set_rdiff(&x.a, s, x.reset), x.strip);
    if (!set_empty(s)) {
        const char *who = manager && *manager ? manager : "unknown";
        struct mgr *m = mgr_put(&x, &ms, who, "Update", o ? o->subresource : NULL);
        m->set = set_union(&x.a, s, m->set);
        m->has_time = 1;
        m->time = now;
    }
    cap_updaters(&x, &ms);
    encode(&ms, nm);
out:
    free(ms.v);
    free(cf.v);
    ctx_free(&x);
}

void kssa_update(const ProtobufCMessage *old, ProtobufCMessage *nw, const char *manager,
                 const struct kssa_opts *o, int64_t now)
{
    /* a create that brings no managedFields, so no manager but this one */
    const Coracle__V1__ObjectMeta *given = kind_meta(nw);
    if (old || (given && given->n_managedfields)) {
        kssa_update_general(old, nw, manager, o, now);
        return;
    }
    uint64_t shape[2];
    walk_shape(nw, shape);
    if (create_by_shape(nw, manager, o, now, shape))
        return;
    kssa_update_general(old, nw, manager, o, now);
    shape_put(nw->descriptor, o, shape, kind_meta(nw));
}
