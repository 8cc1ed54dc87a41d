/*
 * kssa_walk: structured-merge-diff's typed package over protobuf-c
 * messages: an object's field set, the comparison of two objects, the merge
 * of an applied config into an object, the removal of a set's items, all
 * driven by the descriptors (kssa.h says how they map to Kubernetes'
 * schema). Fields Kubernetes inlines (Probe.handler, Volume.volumeSource)
 * are walked as fields of their parent, as their JSON has them, and
 * metadata.managedFields is never walked: it is what these walks compute.
 */
#include "config.h"
#include "kssa_int.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "kmeta.h"
#include "kobj.h"
#include "pb.h"
#include "util.h"

/* ----------------------------------------------------------- the types */

/* What a field or element holds, as the schema Kubernetes generates says. */
enum tk {
    TK_SCALAR, /* a leaf: scalars, and Quantity, IntOrString, Time, FieldsV1 */
    TK_ATOMIC, /* a list, map or struct owned whole */
    TK_STRUCT, /* a message: its fields are granular */
    TK_MAP,    /* map<>: its keys are granular */
    TK_LIST,   /* a list of kmeta type "map" (items by keys) or "set" (by value) */
};

static int is_special(const ProtobufCMessageDescriptor *d)
{
    return d == &coracle__v1__quantity__descriptor ||
           d == &coracle__v1__int_or_string__descriptor || d == &coracle__v1__time__descriptor ||
           d == &coracle__v1__micro_time__descriptor || d == &coracle__v1__fields_v1__descriptor;
}

static int is_msg(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_MESSAGE && !is_special(f->descriptor);
}

static int is_map_field(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
           kobj_desc_is_map_entry(f->descriptor);
}

/* A map<> field's entry key and value fields. */
static const ProtobufCFieldDescriptor *map_kf(const ProtobufCFieldDescriptor *f)
{
    return &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[0];
}

static const ProtobufCFieldDescriptor *map_vf(const ProtobufCFieldDescriptor *f)
{
    return &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[1];
}

static int atomic_marked(const struct kmeta *km)
{
    return km && km->map_type && !strcmp(km->map_type, "atomic");
}

/* The kind of field f of message owner. */
/* kmeta_lookup, remembered by field for the walk (every write walks the same fields). */
/*
 * kmeta entries by field descriptor, for the process: descriptors and
 * kmeta's table are static, so an answer never changes, and every write
 * asks for the same few dozen fields (a scan of kmeta's table each time
 * cost a create more than the rest of the walk). Slots are published with
 * a compare-and-swap and never change after, so threads read them without
 * a lock; a full table falls back to the scan.
 */
#define KM_SLOTS 2048
struct km_slot {
    const ProtobufCFieldDescriptor *f;
    const struct kmeta *km;
};
static struct km_slot *km_slots[KM_SLOTS];

static const struct kmeta *km_of(const ProtobufCMessageDescriptor *owner,
                                 const ProtobufCFieldDescriptor *f)
{
    size_t h = ((uintptr_t)f >> 4) % KM_SLOTS;
    for (size_t i = 0; i < KM_SLOTS / 8; i++, h = (h + 1) % KM_SLOTS) {
        struct km_slot *s = __atomic_load_n(&km_slots[h], __ATOMIC_ACQUIRE);
        if (!s) {
            struct km_slot *n = xmalloc(sizeof(*n));
            n->f = f;
            n->km = kmeta_lookup(owner, f->name);
            if (__atomic_compare_exchange_n(&km_slots[h], &s, n, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                return n->km;
            free(n); /* another thread took the slot: s is its entry */
        }
        if (s->f == f)
            return s->km;
    }
    return kmeta_lookup(owner, f->name);
}

static enum tk field_kind(const ProtobufCMessageDescriptor *owner,
                          const ProtobufCFieldDescriptor *f)
{
    const struct kmeta *km = km_of(owner, f);
    if (is_map_field(f))
        return atomic_marked(km) ? TK_ATOMIC : TK_MAP;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!km || !km->list_type)
            return TK_ATOMIC;
        if (!strcmp(km->list_type, "map") && km->map_keys[0] && is_msg(f))
            return TK_LIST;
        if (!strcmp(km->list_type, "set") && f->type != PROTOBUF_C_TYPE_MESSAGE)
            return TK_LIST;
        return TK_ATOMIC;
    }
    if (is_msg(f))
        return atomic_marked(km) ? TK_ATOMIC : TK_STRUCT;
    return TK_SCALAR;
}

/* A list item or a map's value: a struct or a leaf. */
static enum tk elem_kind(const ProtobufCFieldDescriptor *f)
{
    return is_msg(f) ? TK_STRUCT : TK_SCALAR;
}

/* ----------------------------------------------------- message access */

static int is_managed_fields(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
    return d == &coracle__v1__object_meta__descriptor && f->id == 17;
}

/* One JSON field of a struct: f, in the message itself or in the inlined field via. */
struct slot {
    const ProtobufCFieldDescriptor *f, *via;
    const ProtobufCMessageDescriptor *owner; /* the message f belongs to */
    enum tk kind;                            /* field_kind(owner, f) */
    /* kobj_field_is_set(holder, f) without the call: the count, pointer or has_
     * flag at that offset is not zero (wide: 8 bytes, else 4); always: set */
    unsigned set_at;
    unsigned char wide, always;
    /* TK_LIST: a list of scalars by value (set), or items by their keys' fields */
    unsigned char by_value;
    const ProtobufCFieldDescriptor *keyf[KMETA_MAX_KEYS]; /* NULL: no such field */
};

/* A struct's fields in JSON: its own, and those of its inlined fields in their place. */
/* Where a slot's presence is (slot's set_at and wide), packed for walk_shape's loop. */
struct probe {
    uint32_t at, wide;
};

struct slots {
    const ProtobufCMessageDescriptor *d;
    size_t n;
    /* a bit per slot, 64 a word: the structs, maps and lists (walk_shape goes into them) */
    uint64_t *nest;
    /* every slot is the struct's own and has a presence to test: probe[] says where */
    int plain;
    struct probe *probe;
    struct slot s[];
};

static struct slot slot_make(const ProtobufCMessageDescriptor *owner,
                             const ProtobufCFieldDescriptor *f, const ProtobufCFieldDescriptor *via)
{
    struct slot s = {f, via, owner, field_kind(owner, f), 0, 0, 0, 0, {NULL}};
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        s.set_at = f->quantifier_offset;
        s.wide = 1;
    } else if (kobj_is_ptr_type(f->type)) {
        s.set_at = f->offset;
        s.wide = 1;
    } else if (f->quantifier_offset) {
        s.set_at = f->quantifier_offset;
    } else {
        s.always = 1;
    }
    if (s.kind != TK_LIST)
        return s;
    const struct kmeta *km = km_of(owner, f);
    s.by_value = !strcmp(km->list_type, "set");
    for (size_t k = 0; !s.by_value && k < KMETA_MAX_KEYS && km->map_keys[k]; k++)
        s.keyf[k] = protobuf_c_message_descriptor_get_field_by_name(f->descriptor, km->map_keys[k]);
    return s;
}

static struct slots *slots_make(const ProtobufCMessageDescriptor *d)
{
    size_t cap = d->n_fields;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (kobj_is_inlined(d, &d->fields[i]))
            cap += ((const ProtobufCMessageDescriptor *)d->fields[i].descriptor)->n_fields;
    size_t words = cap / 64 + 1;
    struct slots *t = xmalloc(sizeof(*t) + cap * sizeof(t->s[0]) + words * sizeof(uint64_t) +
                              cap * sizeof(struct probe));
    t->d = d;
    t->n = 0;
    t->nest = (uint64_t *)&t->s[cap]; /* after the slots, in the same block */
    memset(t->nest, 0, words * sizeof(uint64_t));
    t->probe = (struct probe *)&t->nest[words];
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (is_managed_fields(d, f))
            continue;
        if (!kobj_is_inlined(d, f)) {
            t->s[t->n++] = slot_make(d, f, NULL);
            continue;
        }
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        for (unsigned j = 0; j < sd->n_fields; j++)
            t->s[t->n++] = slot_make(sd, &sd->fields[j], f);
    }
    t->plain = 1;
    for (size_t i = 0; i < t->n; i++) {
        if (t->s[i].kind == TK_STRUCT || t->s[i].kind == TK_MAP || t->s[i].kind == TK_LIST)
            t->nest[i / 64] |= 1ull << (i % 64);
        t->probe[i] = (struct probe){t->s[i].set_at, t->s[i].wide};
        if (t->s[i].via || t->s[i].always)
            t->plain = 0;
    }
    return t;
}

/*
 * d's slots, made once for the process: every walk of every write goes
 * through the same few structs, and listing their fields (asking each
 * whether it is inlined, and its kind) cost more than visiting the few
 * that are set. Published with a compare-and-swap as km_of's entries, and
 * never changed after; the table holds every message type there is.
 */
#define SLOT_TABLES 512
static struct slots *slot_tables[SLOT_TABLES];

static const struct slots *slots(const ProtobufCMessageDescriptor *d)
{
    size_t h = ((uintptr_t)d >> 4) % SLOT_TABLES;
    for (size_t i = 0; i < SLOT_TABLES; i++, h = (h + 1) % SLOT_TABLES) {
        struct slots *t = __atomic_load_n(&slot_tables[h], __ATOMIC_ACQUIRE);
        if (!t) {
            struct slots *n = slots_make(d);
            if (__atomic_compare_exchange_n(&slot_tables[h], &t, n, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                return n;
            free(n); /* another thread took the slot: t is its entry */
        }
        if (t->d == d)
            return t;
    }
    fatal("kssa: more message types than %d", SLOT_TABLES);
}

/* The message holding s's field in m (m, or its inlined part), or NULL. */
static const ProtobufCMessage *holder(const ProtobufCMessage *m, const struct slot *s)
{
    if (!m || !s->via)
        return m;
    return *(ProtobufCMessage *const *)((const char *)m + s->via->offset);
}

static ProtobufCMessage *holder_mut(ProtobufCMessage *m, const struct slot *s)
{
    if (!s->via)
        return m;
    ProtobufCMessage **p = (ProtobufCMessage **)((char *)m + s->via->offset);
    if (!*p)
        *p = kobj_msg_new(s->via->descriptor);
    return *p;
}

static int present(const ProtobufCMessage *c, const ProtobufCFieldDescriptor *f)
{
    return c && kobj_field_is_set(c, f);
}

/* present(c, s->f) for c the holder of s's field, from what slot_make found */
static int slot_set(const ProtobufCMessage *c, const struct slot *s)
{
    if (!c)
        return 0;
    if (s->always)
        return 1;
    const char *at = (const char *)c + s->set_at;
    if (s->wide) { /* a size_t or a pointer: one load either way */
        uintptr_t v;
        memcpy(&v, at, sizeof(v));
        return v != 0;
    }
    protobuf_c_boolean b;
    memcpy(&b, at, sizeof(b));
    return b != 0;
}
_Static_assert(sizeof(size_t) == sizeof(uintptr_t), "a count loads as a pointer does");

static ProtobufCMessage *sub_msg(const ProtobufCMessage *c, const ProtobufCFieldDescriptor *f)
{
    return c ? *(ProtobufCMessage *const *)((const char *)c + f->offset) : NULL;
}

static size_t count(const ProtobufCMessage *c, const ProtobufCFieldDescriptor *f)
{
    return c ? *(const size_t *)((const char *)c + f->quantifier_offset) : 0;
}

static char *elems(const ProtobufCMessage *c, const ProtobufCFieldDescriptor *f)
{
    return *(char *const *)((const char *)c + f->offset);
}

/* A struct with no field (JSON {}): NULL counts as empty too. */
static int struct_empty(const ProtobufCMessage *m)
{
    if (!m)
        return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!kobj_field_is_set(m, f) || is_managed_fields(d, f))
            continue;
        if (!kobj_is_inlined(d, f) || !struct_empty(sub_msg(m, f)))
            return 0;
    }
    return 1;
}

/* The path element of a struct's field: its JSON name, which lives as long as the descriptor. */
static struct pe pe_name(const ProtobufCFieldDescriptor *f)
{
    struct pe p = {.k = PE_FIELD, .name = f->name};
    return p;
}

/* ----------------------------------------------- equality and copies */

static int elem_eq(const ProtobufCFieldDescriptor *f, const void *x, const void *y)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *a = *(char *const *)x, *b = *(char *const *)y;
        return !strcmp(a ? a : "", b ? b : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *a = x, *b = y;
        return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return pb_equal(*(ProtobufCMessage *const *)x, *(ProtobufCMessage *const *)y);
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)x == *(const float *)y;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)x == *(const double *)y;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)x == !*(const protobuf_c_boolean *)y;
    default:
        return !memcmp(x, y, kobj_elem_size(f));
    }
}

/* Field f, present in both a and b, has the same value. */
static int field_eq(const ProtobufCMessage *a, const ProtobufCMessage *b,
                    const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return elem_eq(f, (const char *)a + f->offset, (const char *)b + f->offset);
    size_t n = count(a, f), es = kobj_elem_size(f);
    if (n != count(b, f))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!elem_eq(f, elems(a, f) + i * es, elems(b, f) + i * es))
            return 0;
    return 1;
}

static void elem_copy(const ProtobufCFieldDescriptor *f, void *dst, const void *src)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)src;
        *(char **)dst = s ? xstrdup(s) : NULL;
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *s = src;
        ProtobufCBinaryData *d = dst;
        d->len = s->len;
        d->data = s->len ? xmemdup(s->data, s->len) : NULL;
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *s = *(ProtobufCMessage *const *)src;
        *(ProtobufCMessage **)dst = s ? pb_clone(s) : NULL;
        break;
    }
    default:
        memcpy(dst, src, kobj_elem_size(f));
    }
}

/* dst's field f becomes a copy of src's. */
static void field_copy(ProtobufCMessage *dst, const ProtobufCMessage *src,
                       const ProtobufCFieldDescriptor *f)
{
    kobj_field_clear(dst, f);
    char *d = (char *)dst;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = count(src, f), es = kobj_elem_size(f);
        char *arr = xcalloc(n ? n : 1, es);
        for (size_t i = 0; i < n; i++)
            elem_copy(f, arr + i * es, elems(src, f) + i * es);
        *(char **)(d + f->offset) = arr;
        *(size_t *)(d + f->quantifier_offset) = n;
        return;
    }
    elem_copy(f, d + f->offset, (const char *)src + f->offset);
    if (!kobj_is_ptr_type(f->type) && f->quantifier_offset)
        *(protobuf_c_boolean *)(d + f->quantifier_offset) = 1;
}

/* ----------------------------------------------------- path elements */

static void path_push(struct walk *w, const struct pe *p)
{
    if (w->depth >= KSSA_MAX_DEPTH)
        fatal("kssa: objects nest deeper than %d", KSSA_MAX_DEPTH);
    w->path[w->depth++] = *p;
}

static void push(struct walk *w, const struct pe *p)
{
    path_push(w, p);
}

static void pop(struct walk *w)
{
    w->depth--;
}

static void insert_here(struct walk *w, struct set *s)
{
    set_insert(w->a, s, w->path, w->depth);
}

/* The path so far as Kubernetes prints it, malloc'd: ".spec.containers". */
static char *path_str(const struct walk *w)
{
    struct buf b = {0};
    for (size_t i = 0; i < w->depth; i++)
        pe_string(&b, &w->path[i]);
    buf_puts(&b, "");
    return buf_take(&b);
}

static void werr(struct walk *w, const char *fmt, ...) PRINTF(2, 3);
static void werr(struct walk *w, const char *fmt, ...)
{
    if (w->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap), *p = path_str(w);
    va_end(ap);
    w->err = *p ? xasprintf("%s: %s", p, msg) : xstrdup(msg);
    free(p);
    free(msg);
}

/* A scalar element as a path element's value (its JSON value). */
static void scalar_sval(struct arena *a, const ProtobufCFieldDescriptor *f, const void *slot,
                        struct sval *v)
{
    memset(v, 0, sizeof(*v));
    v->t = SV_INT;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        v->i = *(const int32_t *)slot;
        return;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        v->i = *(const uint32_t *)slot;
        return;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        v->i = *(const int64_t *)slot;
        return;
    case PROTOBUF_C_TYPE_FLOAT:
        v->t = SV_FLOAT;
        v->f = *(const float *)slot;
        return;
    case PROTOBUF_C_TYPE_DOUBLE:
        v->t = SV_FLOAT;
        v->f = *(const double *)slot;
        return;
    case PROTOBUF_C_TYPE_BOOL:
        v->t = SV_BOOL;
        v->i = *(const protobuf_c_boolean *)slot != 0;
        return;
    default:
        break;
    }
    v->t = SV_STR;
    const char *s = "";
    char tbuf[64];
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        s = *(char *const *)slot ? *(char *const *)slot : "";
    } else if (f->type == PROTOBUF_C_TYPE_ENUM) {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)slot);
        s = ev ? ev->name : "";
    } else if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(ProtobufCMessage *const *)slot) {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)slot;
        if (m->descriptor == &coracle__v1__quantity__descriptor) {
            s = ((const Coracle__V1__Quantity *)m)->string;
        } else if (m->descriptor == &coracle__v1__int_or_string__descriptor) {
            const Coracle__V1__IntOrString *is = (const void *)m;
            if (is->type != 1) {
                v->t = SV_INT;
                v->i = is->intval;
                return;
            }
            s = is->strval;
        } else if (m->descriptor == &coracle__v1__time__descriptor ||
                   m->descriptor == &coracle__v1__micro_time__descriptor) {
            const Coracle__V1__Time *t = (const void *)m;
            kobj_fmt_rfc3339(tbuf, sizeof(tbuf), t->seconds, t->nanos,
                             m->descriptor == &coracle__v1__micro_time__descriptor);
            s = tbuf;
        }
    } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
        const ProtobufCBinaryData *bd = slot;
        char *c = arena_alloc(a, bd->len + 1);
        if (bd->len)
            memcpy(c, bd->data, bd->len);
        v->s = c;
        v->len = bd->len;
        return;
    }
    v->s = arena_strdup(a, s ? s : "");
    v->len = strlen(v->s);
}

/* Key fields an item may leave out, with the default Kubernetes' schema gives them. */
static const struct {
    const char *key, *def;
} key_defaults[] = {{"protocol", "TCP"}};

static int cmp_kv_name(const void *x, const void *y)
{
    return strcmp(((const struct kv *)x)->name, ((const struct kv *)y)->name);
}

/*
 * The path element of item i (at slot) of list field f of owner: by its
 * keys, or its value. Returns 0, or -1 (w->err set) for an item without a
 * key in a strict walk; other walks then name the item by its index.
 */
static int item_pe(struct walk *w, const ProtobufCMessageDescriptor *owner,
                   const ProtobufCFieldDescriptor *f, const void *slot, size_t i, struct pe *out)
{
    const struct kmeta *km = km_of(owner, f);
    memset(out, 0, sizeof(*out));
    if (!strcmp(km->list_type, "set")) {
        out->k = PE_VALUE;
        scalar_sval(w->a, f, slot, &out->v);
        return 0;
    }
    const ProtobufCMessage *e = *(ProtobufCMessage *const *)slot;
    size_t nk = 0;
    while (nk < KMETA_MAX_KEYS && km->map_keys[nk])
        nk++;
    out->k = PE_KEY;
    out->nkeys = nk;
    out->keys = arena_alloc(w->a, nk * sizeof(*out->keys));
    for (size_t k = 0; k < nk; k++) {
        const char *name = km->map_keys[k];
        const ProtobufCFieldDescriptor *kf =
            e ? protobuf_c_message_descriptor_get_field_by_name(e->descriptor, name) : NULL;
        out->keys[k].name = name;
        if (kf && present(e, kf)) {
            scalar_sval(w->a, kf, (const char *)e + kf->offset, &out->keys[k].v);
            continue;
        }
        const char *def = NULL;
        for (size_t d = 0; d < ARRAY_SIZE(key_defaults); d++)
            if (!strcmp(key_defaults[d].key, name))
                def = key_defaults[d].def;
        if (def) {
            out->keys[k].v = (struct sval){.t = SV_STR, .s = def, .len = strlen(def)};
            continue;
        }
        if (w->strict) {
            werr(w,
                 "element %zu: associative list with keys has an element that omits key field "
                 "\"%s\" (and doesn't have default value)",
                 i, name);
            return -1;
        }
        memset(out, 0, sizeof(*out));
        out->k = PE_INDEX;
        out->idx = (int64_t)i;
        return 0;
    }
    qsort(out->keys, nk, sizeof(*out->keys), cmp_kv_name);
    return 0;
}

/* A list's items with their path elements, sorted by element (then position). */
struct item {
    struct pe pe;
    size_t i;
    int side; /* compare: 0 old, 1 new */
};

static int cmp_item(const void *x, const void *y)
{
    const struct item *a = x, *b = y;
    int r = pe_cmp(&a->pe, &b->pe);
    if (r)
        return r;
    if (a->side != b->side)
        return a->side - b->side;
    return (a->i > b->i) - (a->i < b->i);
}

/* Appends the items of c's list f (side) to v; -1 on a strict error. */
static int list_items(struct walk *w, const ProtobufCMessageDescriptor *owner,
                      const ProtobufCFieldDescriptor *f, const ProtobufCMessage *c, int side,
                      struct item *v, size_t *n)
{
    size_t cnt = count(c, f), es = kobj_elem_size(f);
    for (size_t i = 0; i < cnt; i++) {
        v[*n].i = i;
        v[*n].side = side;
        if (item_pe(w, owner, f, elems(c, f) + i * es, i, &v[*n].pe) < 0)
            return -1;
        (*n)++;
    }
    return 0;
}

/* --------------------------------------------------------- field sets */

static void fs_struct(struct walk *w, struct set *s, const ProtobufCMessage *m);

static void fs_elem(struct walk *w, struct set *s, const ProtobufCFieldDescriptor *f,
                    const void *slot)
{
    if (elem_kind(f) == TK_STRUCT)
        fs_struct(w, s, *(ProtobufCMessage *const *)slot);
    insert_here(w, s);
}

static void fs_map(struct walk *w, struct set *s, const ProtobufCMessage *c,
                   const ProtobufCFieldDescriptor *f)
{
    const ProtobufCFieldDescriptor *vf = map_vf(f);
    ProtobufCMessage *const *ents = (ProtobufCMessage *const *)elems(c, f);
    for (size_t i = 0; i < count(c, f); i++) {
        const char *key = *(char *const *)((const char *)ents[i] + map_kf(f)->offset);
        struct pe p = pe_field(w->a, key);
        push(w, &p);
        fs_elem(w, s, vf, (const char *)ents[i] + vf->offset);
        pop(w);
    }
}

static void fs_list(struct walk *w, struct set *s, const ProtobufCMessageDescriptor *owner,
                    const ProtobufCMessage *c, const ProtobufCFieldDescriptor *f)
{
    size_t n = 0, cnt = count(c, f), es = kobj_elem_size(f);
    struct item *v = xmalloc((cnt + 1) * sizeof(*v));
    if (list_items(w, owner, f, c, 0, v, &n) < 0)
        goto out;
    qsort(v, n, sizeof(*v), cmp_item);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && !pe_cmp(&v[i].pe, &v[j].pe))
            j++;
        push(w, &v[i].pe);
        if (j - i > 1)
            insert_here(w, s); /* duplicates: the element, nothing below */
        else
            fs_elem(w, s, f, elems(c, f) + v[i].i * es);
        pop(w);
        i = j;
    }
out:
    free(v);
}

static void fs_field(struct walk *w, struct set *s, const struct slot *sl,
                     const ProtobufCMessage *c)
{
    switch (sl->kind) {
    case TK_SCALAR:
    case TK_ATOMIC:
        insert_here(w, s);
        break;
    case TK_STRUCT: {
        const ProtobufCMessage *sub = sub_msg(c, sl->f);
        if (struct_empty(sub))
            insert_here(w, s);
        else
            fs_struct(w, s, sub);
        break;
    }
    case TK_MAP:
        fs_map(w, s, c, sl->f);
        break;
    case TK_LIST:
        fs_list(w, s, sl->owner, c, sl->f);
        break;
    }
}

static void fs_struct(struct walk *w, struct set *s, const ProtobufCMessage *m)
{
    if (!m)
        return;
    const struct slots *t = slots(m->descriptor);
    const struct slot *sl = t->s;
    size_t n = t->n;
    for (size_t i = 0; i < n && !w->err; i++) {
        const ProtobufCMessage *c = holder(m, &sl[i]);
        if (!slot_set(c, &sl[i]))
            continue;
        struct pe p = pe_name(sl[i].f);
        push(w, &p);
        fs_field(w, s, &sl[i], c);
        pop(w);
    }
}

struct set *walk_fieldset(struct walk *w, const ProtobufCMessage *m)
{
    struct set *s = set_new(w->a);
    fs_struct(w, s, m);
    return s;
}

/* ------------------------------------------------------------ shapes */

/*
 * walk_shape's digest: two 64-bit multiply-xor-shift hashes, a word at a
 * time, of a serialization of everything fs_struct reads of a message and
 * nothing else: which of a struct's slots are set (a word of bits per 64
 * slots, then the structs, maps and lists among them, in slot order), a
 * map's count and keys, a list's count and, per item, its key fields as
 * they are held (or a set's values). Leaf values are not read. The
 * serialization reads back by the types alone, so two messages of one
 * type with one digest have one field set, but for a 2^-128 chance; it
 * tells apart more than field sets do (an item's key given or defaulted,
 * items' order), which costs a cache a miss, never a wrong answer.
 */
struct digest {
    uint64_t h[2];
};

static void dg_word(struct digest *g, uint64_t v)
{
    g->h[0] = (g->h[0] ^ v) * 0x100000001b3ull;
    g->h[0] ^= g->h[0] >> 29;
    g->h[1] = (g->h[1] ^ v) * 0x9e3779b97f4a7c15ull;
    g->h[1] ^= g->h[1] >> 31;
}

static void dg_bytes(struct digest *g, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v;
    dg_word(g, len);
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&v, p, 8);
        dg_word(g, v);
    }
    v = 0;
    memcpy(&v, p, len);
    dg_word(g, v);
}

/* A scalar as it is held (a set's value, an item's key field). */
static void dg_scalar(struct digest *g, const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        if (s)
            dg_bytes(g, s, strlen(s));
        else
            dg_word(g, UINT64_MAX); /* no length is that long */
        return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = slot;
        dg_bytes(g, b->data, b->len);
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE: { /* a Quantity, an IntOrString, a Time: by its bytes */
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)slot;
        if (!m) {
            dg_word(g, UINT64_MAX);
            return;
        }
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *b = xmalloc(n + 1);
        protobuf_c_message_pack(m, b);
        dg_bytes(g, b, n);
        free(b);
        return;
    }
    default: {
        uint64_t v = 0;
        memcpy(&v, slot, kobj_elem_size(f));
        dg_word(g, v);
    }
    }
}

static void dg_struct(struct digest *g, const ProtobufCMessage *m);

/* A map's value or a list's item: a struct's shape (absent: a 0 first), a leaf's nothing. */
static void dg_elem(struct digest *g, const ProtobufCFieldDescriptor *f, const void *slot)
{
    if (elem_kind(f) != TK_STRUCT)
        return;
    const ProtobufCMessage *m = *(ProtobufCMessage *const *)slot;
    dg_word(g, m != NULL);
    if (m)
        dg_struct(g, m);
}

static void dg_map(struct digest *g, const ProtobufCMessage *c, const ProtobufCFieldDescriptor *f)
{
    const ProtobufCFieldDescriptor *kf = map_kf(f), *vf = map_vf(f);
    ProtobufCMessage *const *ents = (ProtobufCMessage *const *)elems(c, f);
    size_t n = count(c, f);
    dg_word(g, n);
    for (size_t i = 0; i < n; i++) {
        dg_scalar(g, kf, (const char *)ents[i] + kf->offset);
        dg_elem(g, vf, (const char *)ents[i] + vf->offset);
    }
}

static void dg_list(struct digest *g, const ProtobufCMessage *c, const struct slot *s)
{
    const ProtobufCFieldDescriptor *f = s->f;
    size_t n = count(c, f), es = kobj_elem_size(f);
    const char *v = elems(c, f);
    dg_word(g, n);
    for (size_t i = 0; i < n; i++) {
        const char *slot = v + i * es;
        if (s->by_value) {
            dg_scalar(g, f, slot);
            continue;
        }
        const ProtobufCMessage *e = *(ProtobufCMessage *const *)slot;
        for (size_t k = 0; k < KMETA_MAX_KEYS; k++) {
            const ProtobufCFieldDescriptor *kf = s->keyf[k];
            int has = kf && present(e, kf);
            dg_word(g, (uint64_t)has);
            if (has)
                dg_scalar(g, kf, (const char *)e + kf->offset);
        }
        dg_elem(g, f, slot);
    }
}

/* Which of slots [at, end) of m are set, a bit each from at's. */
static uint64_t set_bits(const struct slots *t, const ProtobufCMessage *m, size_t at, size_t end)
{
    uint64_t bits = 0;
    if (!t->plain) {
        for (size_t i = at; i < end; i++)
            bits |= (uint64_t)slot_set(holder(m, &t->s[i]), &t->s[i]) << (i - at);
        return bits;
    }
    /* most structs: no inlined field, no call, a load and a test a field */
    const char *b = (const char *)m;
    for (size_t i = at; i < end; i++) {
        const char *p = b + t->probe[i].at;
        uintptr_t w;
        protobuf_c_boolean v;
        int set;
        if (t->probe[i].wide) {
            memcpy(&w, p, sizeof(w));
            set = w != 0;
        } else {
            memcpy(&v, p, sizeof(v));
            set = v != 0;
        }
        bits |= (uint64_t)set << (i - at);
    }
    return bits;
}

static void dg_struct(struct digest *g, const ProtobufCMessage *m)
{
    const struct slots *t = slots(m->descriptor);
    for (size_t at = 0; at < t->n; at += 64) {
        size_t end = t->n - at > 64 ? at + 64 : t->n;
        uint64_t bits = set_bits(t, m, at, end);
        dg_word(g, bits);
        for (uint64_t nest = bits & t->nest[at / 64]; nest; nest &= nest - 1) {
            const struct slot *s = &t->s[at + (size_t)__builtin_ctzll(nest)];
            const ProtobufCMessage *c = holder(m, s);
            if (s->kind == TK_STRUCT)
                dg_struct(g, sub_msg(c, s->f));
            else if (s->kind == TK_MAP)
                dg_map(g, c, s->f);
            else
                dg_list(g, c, s);
        }
    }
}

void walk_shape(const ProtobufCMessage *m, uint64_t out[2])
{
    struct digest g = {{0xcbf29ce484222325ull, 0x84222325cbf29ce4ull}};
    dg_word(&g, (uint64_t)(uintptr_t)m->descriptor);
    dg_struct(&g, m);
    out[0] = g.h[0];
    out[1] = g.h[1];
}

/* --------------------------------------------------------- comparison */

static void cmp_leaf(struct walk *w, struct cmp *r, int has_l, int has_r, int eq)
{
    if (!has_l)
        insert_here(w, r->added);
    else if (!has_r)
        insert_here(w, r->removed);
    else if (!eq)
        insert_here(w, r->modified);
}

static void cmp_struct(struct walk *w, struct cmp *r, const ProtobufCMessage *l,
                       const ProtobufCMessage *rt);

/* A struct value (NULL: absent) on each side; at least one present. */
static void cmp_structval(struct walk *w, struct cmp *r, const ProtobufCMessage *l,
                          const ProtobufCMessage *rt)
{
    if (struct_empty(l) && struct_empty(rt)) {
        cmp_leaf(w, r, l != NULL, rt != NULL, 1);
        return;
    }
    cmp_struct(w, r, l, rt);
    cmp_leaf(w, r, l != NULL, rt != NULL, 1);
}

/* An element (list item or map value) on each side (NULL slot: absent). */
static void cmp_elem(struct walk *w, struct cmp *r, const ProtobufCFieldDescriptor *f,
                     const void *ls, const void *rs)
{
    if (elem_kind(f) == TK_STRUCT)
        cmp_structval(w, r, ls ? *(ProtobufCMessage *const *)ls : NULL,
                      rs ? *(ProtobufCMessage *const *)rs : NULL);
    else
        cmp_leaf(w, r, ls != NULL, rs != NULL, ls && rs && elem_eq(f, ls, rs));
}

struct kent {
    const char *key;
    const char *ent; /* the entry message */
    int side;
};

static int cmp_kent(const void *x, const void *y)
{
    const struct kent *a = x, *b = y;
    int r = strcmp(a->key, b->key);
    return r ? r : a->side - b->side;
}

static size_t map_entries(const ProtobufCMessage *c, const ProtobufCFieldDescriptor *f, int side,
                          struct kent *v, size_t n)
{
    ProtobufCMessage *const *ents = c ? (ProtobufCMessage *const *)elems(c, f) : NULL;
    for (size_t i = 0; i < count(c, f); i++) {
        v[n].ent = (const char *)ents[i];
        v[n].key = *(char *const *)(v[n].ent + map_kf(f)->offset);
        if (!v[n].key)
            v[n].key = "";
        v[n++].side = side;
    }
    return n;
}

static void cmp_map(struct walk *w, struct cmp *r, const ProtobufCMessage *lc,
                    const ProtobufCMessage *rc, const ProtobufCFieldDescriptor *f)
{
    const ProtobufCFieldDescriptor *vf = map_vf(f);
    struct kent *v = xmalloc((count(lc, f) + count(rc, f) + 1) * sizeof(*v));
    size_t n = map_entries(lc, f, 0, v, 0);
    n = map_entries(rc, f, 1, v, n);
    qsort(v, n, sizeof(*v), cmp_kent);
    for (size_t i = 0; i < n;) {
        const char *ls = NULL, *rs = NULL;
        size_t j = i;
        for (; j < n && !strcmp(v[j].key, v[i].key); j++)
            *(v[j].side ? &rs : &ls) = v[j].ent + vf->offset;
        struct pe p = pe_field(w->a, v[i].key);
        push(w, &p);
        cmp_elem(w, r, vf, ls, rs);
        pop(w);
        i = j;
    }
    free(v);
}

/* Two lists' items element by element, duplicates as typed.Compare treats them. */
static void cmp_list(struct walk *w, struct cmp *r, const ProtobufCMessageDescriptor *owner,
                     const ProtobufCMessage *lc, const ProtobufCMessage *rc,
                     const ProtobufCFieldDescriptor *f)
{
    size_t n = 0, es = kobj_elem_size(f);
    struct item *v = xmalloc((count(lc, f) + count(rc, f) + 1) * sizeof(*v));
    if (lc)
        list_items(w, owner, f, lc, 0, v, &n);
    if (rc)
        list_items(w, owner, f, rc, 1, v, &n);
    qsort(v, n, sizeof(*v), cmp_item);
    for (size_t i = 0; i < n;) {
        size_t j = i, nl = 0, nr = 0, fl = 0, fr = 0;
        for (; j < n && !pe_cmp(&v[i].pe, &v[j].pe); j++) {
            if (v[j].side) {
                if (!nr++)
                    fr = j;
            } else if (!nl++) {
                fl = j;
            }
        }
        const void *ls = nl ? elems(lc, f) + v[fl].i * es : NULL;
        const void *rs = nr ? elems(rc, f) + v[fr].i * es : NULL;
        push(w, &v[i].pe);
        if (nl <= 1 && nr <= 1) {
            cmp_elem(w, r, f, ls, rs);
        } else if (nl >= 2 && nr >= 2) {
            int eq = nl == nr;
            for (size_t k = 0; eq && k < nl; k++)
                eq = elem_eq(f, elems(lc, f) + v[fl + k].i * es, elems(rc, f) + v[fr + k].i * es);
            if (!eq)
                insert_here(w, r->modified);
        } else if (nl >= 2) {
            if (nr)
                cmp_elem(w, r, f, NULL, rs);
            insert_here(w, r->removed);
        } else {
            if (nl)
                cmp_elem(w, r, f, ls, NULL);
            insert_here(w, r->added);
        }
        pop(w);
        i = j;
    }
    free(v);
}

static void cmp_field(struct walk *w, struct cmp *r, const struct slot *sl,
                      const ProtobufCMessage *lc, const ProtobufCMessage *rc)
{
    const ProtobufCFieldDescriptor *f = sl->f;
    switch (sl->kind) {
    case TK_SCALAR:
    case TK_ATOMIC:
        cmp_leaf(w, r, lc != NULL, rc != NULL, lc && rc && field_eq(lc, rc, f));
        return;
    case TK_STRUCT:
        cmp_structval(w, r, sub_msg(lc, f), sub_msg(rc, f));
        return;
    case TK_MAP:
        cmp_map(w, r, lc, rc, f);
        break;
    case TK_LIST:
        cmp_list(w, r, sl->owner, lc, rc, f);
        break;
    }
    cmp_leaf(w, r, lc != NULL, rc != NULL, 1);
}

static void cmp_struct(struct walk *w, struct cmp *r, const ProtobufCMessage *l,
                       const ProtobufCMessage *rt)
{
    const ProtobufCMessageDescriptor *d = l ? l->descriptor : rt->descriptor;
    const struct slots *t = slots(d);
    const struct slot *sl = t->s;
    size_t n = t->n;
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessage *lc = holder(l, &sl[i]), *rc = holder(rt, &sl[i]);
        int lp = present(lc, sl[i].f), rp = present(rc, sl[i].f);
        if (!lp && !rp)
            continue;
        struct pe p = pe_name(sl[i].f);
        push(w, &p);
        cmp_field(w, r, &sl[i], lp ? lc : NULL, rp ? rc : NULL);
        pop(w);
    }
}

struct cmp walk_compare(struct walk *w, const ProtobufCMessage *l, const ProtobufCMessage *r)
{
    struct cmp c = {set_new(w->a), set_new(w->a), set_new(w->a)};
    int strict = w->strict;
    w->strict = 0;
    cmp_struct(w, &c, l, r);
    w->strict = strict;
    return c;
}

int walk_equal(const ProtobufCMessage *l, const ProtobufCMessage *r)
{
    struct arena a = {0};
    struct walk w = {.a = &a};
    struct cmp c = walk_compare(&w, l, r);
    int eq = set_empty(c.removed) && set_empty(c.modified) && set_empty(c.added);
    arena_free(&a);
    return eq;
}

/* ---------------------------------------------------------------- merge */

static int mg_struct(struct walk *w, ProtobufCMessage *dst, const ProtobufCMessage *src);

/* A list item or map value: dst's element (slot) merged with src's. */
static int mg_elem(struct walk *w, const ProtobufCFieldDescriptor *f, void *dslot,
                   const void *sslot)
{
    ProtobufCMessage *d = elem_kind(f) == TK_STRUCT ? *(ProtobufCMessage **)dslot : NULL;
    if (!d) {
        kobj_elem_free(f, dslot);
        elem_copy(f, dslot, sslot);
        return 0;
    }
    const ProtobufCMessage *s = *(ProtobufCMessage *const *)sslot;
    if (!s || (struct_empty(d) && struct_empty(s))) {
        kobj_elem_free(f, dslot);
        elem_copy(f, dslot, sslot);
        return 0;
    }
    return mg_struct(w, d, s);
}

static int mg_map(struct walk *w, ProtobufCMessage *dc, const ProtobufCMessage *sc,
                  const ProtobufCFieldDescriptor *f)
{
    const ProtobufCFieldDescriptor *vf = map_vf(f);
    size_t nd = count(dc, f), ns = count(sc, f), n = 0;
    struct kent *v = xmalloc((nd + ns + 1) * sizeof(*v));
    n = map_entries(dc, f, 0, v, 0);
    qsort(v, n, sizeof(*v), cmp_kent);
    ProtobufCMessage **arr =
        xrealloc(*(ProtobufCMessage ***)((char *)dc + f->offset), (nd + ns + 1) * sizeof(*arr));
    *(ProtobufCMessage ***)((char *)dc + f->offset) = arr;
    int rc = 0;
    for (size_t i = 0; i < ns && rc == 0; i++) {
        const ProtobufCMessage *se = ((ProtobufCMessage *const *)elems(sc, f))[i];
        struct kent key = {*(char *const *)((const char *)se + map_kf(f)->offset), NULL, 0};
        if (!key.key)
            key.key = "";
        const struct kent *hit = bsearch(&key, v, n, sizeof(*v), cmp_kent);
        if (!hit) {
            arr[nd++] = pb_clone(se);
            *(size_t *)((char *)dc + f->quantifier_offset) = nd;
            continue;
        }
        struct pe p = pe_field(w->a, key.key);
        push(w, &p);
        rc = mg_elem(w, vf, (char *)hit->ent + vf->offset, (const char *)se + vf->offset);
        pop(w);
    }
    free(v);
    return rc;
}

/* The lhs items by element, for the merge: index of the first, or -1 if duplicated. */
static long observed(const struct item *v, size_t n, const struct pe *p)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = pe_cmp(&v[mid].pe, p);
        if (!r) {
            int dup = (mid > 0 && !pe_cmp(&v[mid - 1].pe, p)) ||
                      (mid + 1 < n && !pe_cmp(&v[mid + 1].pe, p));
            return dup ? -1 : (long)v[mid].i;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -2;
}

struct lmerge {
    const ProtobufCFieldDescriptor *f;
    size_t es;
    char *out; /* the merged elements */
    size_t nout;
    char *moved; /* out[i] is an lhs element moved there (not a copy) */
    char *larr;  /* dst's elements */
    char *used;  /* larr[i] was moved into out */
    const char *rarr;
};

/* Appends the merge of lhs item li (-1: none or duplicated) and rhs item ri (-1: none). */
static int lm_emit(struct walk *w, struct lmerge *m, long li, long ri)
{
    char *slot = m->out + m->nout * m->es;
    if (li >= 0) {
        memcpy(slot, m->larr + li * m->es, m->es);
        m->used[li] = 1;
        m->moved[m->nout++] = 1;
        return ri < 0 ? 0 : mg_elem(w, m->f, slot, m->rarr + ri * m->es);
    }
    elem_copy(m->f, slot, m->rarr + ri * m->es);
    m->nout++;
    return 0;
}

/* Duplicate items in a config are an error. sorted: the items by element. */
static int no_dups(struct walk *w, const struct item *sorted, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (!pe_cmp(&sorted[i].pe, &sorted[i - 1].pe)) {
            struct buf b = {0};
            pe_string(&b, &sorted[i].pe);
            buf_puts(&b, "");
            werr(w, "duplicate entries for key %s", b.p);
            buf_free(&b);
            return -1;
        }
    return 0;
}

/*
 * The order typed's visitListItems merges in: the config's order for the
 * items it has, the live order for the others, each shared item merged.
 * l/r: the items in list order, ls/rs: sorted.
 */
static int lm_run(struct walk *w, struct lmerge *m, const struct item *l, size_t nl,
                  const struct item *ls, const struct item *r, size_t nr, const struct item *rs)
{
    size_t *shared = xmalloc((nr + 1) * sizeof(*shared)), nsh = 0, sh = 0;
    char *merged = xcalloc(nr + 1, 1); /* rhs items already emitted, by rhs index */
    for (size_t i = 0; i < nr; i++)
        if (observed(ls, nl, &r[i].pe) != -2)
            shared[nsh++] = i;
    const struct pe *next = sh < nsh ? &r[shared[sh++]].pe : NULL;
    int rc = 0;
    for (size_t li = 0, ri = 0; rc == 0 && (li < nl || ri < nr);) {
        if (li < nl && ri < nr) {
            const struct pe *p = &l[li].pe;
            if (!pe_cmp(p, &r[ri].pe)) {
                merged[ri] = 1;
                push(w, p);
                rc = lm_emit(w, m, observed(ls, nl, p), (long)ri);
                pop(w);
                li++;
                ri++;
                next = sh < nsh ? &r[shared[sh++]].pe : NULL;
                continue;
            }
            if (observed(rs, nr, p) != -2 && next && pe_cmp(next, p)) {
                li++;
                continue;
            }
        }
        if (li < nl) {
            long at = observed(rs, nr, &l[li].pe);
            if (at == -2) {
                rc = lm_emit(w, m, (long)l[li].i, -1);
                li++;
                continue;
            }
            if (merged[at])
                li++;
        }
        if (ri < nr) {
            const struct pe *p = &r[ri].pe;
            merged[ri] = 1;
            push(w, p);
            rc = lm_emit(w, m, observed(ls, nl, p), (long)ri);
            pop(w);
            ri++;
            if (next && !pe_cmp(next, p))
                next = sh < nsh ? &r[shared[sh++]].pe : NULL;
        }
    }
    free(shared);
    free(merged);
    return rc;
}

static int mg_list(struct walk *w, const ProtobufCMessageDescriptor *owner, ProtobufCMessage *dc,
                   const ProtobufCMessage *sc, const ProtobufCFieldDescriptor *f)
{
    size_t nl = count(dc, f), nr = count(sc, f), es = kobj_elem_size(f), nli = 0, nri = 0;
    struct item *l = xmalloc((nl + 1) * sizeof(*l)), *r = xmalloc((nr + 1) * sizeof(*r));
    struct item *ls = xmalloc((nl + 1) * sizeof(*ls)), *rs = xmalloc((nr + 1) * sizeof(*rs));
    struct lmerge m = {f,
                       es,
                       xcalloc(nl + nr + 1, es),
                       0,
                       xcalloc(nl + nr + 1, 1),
                       nl ? elems(dc, f) : NULL,
                       xcalloc(nl + 1, 1),
                       elems(sc, f)};
    int rc = -1;
    if (list_items(w, owner, f, sc, 1, r, &nri) < 0)
        goto out;
    memcpy(rs, r, nri * sizeof(*rs));
    qsort(rs, nri, sizeof(*rs), cmp_item);
    if (no_dups(w, rs, nri) < 0)
        goto out;
    int strict = w->strict;
    w->strict = 0;
    if (nl)
        list_items(w, owner, f, dc, 0, l, &nli);
    w->strict = strict;
    memcpy(ls, l, nli * sizeof(*ls));
    qsort(ls, nli, sizeof(*ls), cmp_item);
    rc = lm_run(w, &m, l, nli, ls, r, nri, rs);
    if (rc == 0) {
        /* dst's items not carried over: duplicates the config replaced */
        for (size_t i = 0; i < nl; i++)
            if (!m.used[i])
                kobj_elem_free(f, m.larr + i * es);
        free(m.larr);
        *(char **)((char *)dc + f->offset) = m.out;
        *(size_t *)((char *)dc + f->quantifier_offset) = m.nout;
        m.out = NULL;
    }
out:
    if (m.out) { /* failed: dst keeps its elements, the copies go */
        for (size_t i = 0; i < m.nout; i++)
            if (!m.moved[i])
                kobj_elem_free(f, m.out + i * es);
        free(m.out);
    }
    free(m.moved);
    free(m.used);
    free(l);
    free(r);
    free(ls);
    free(rs);
    return rc;
}

static int mg_field(struct walk *w, const struct slot *sl, ProtobufCMessage *dc,
                    const ProtobufCMessage *sc)
{
    const ProtobufCFieldDescriptor *f = sl->f;
    switch (sl->kind) {
    case TK_SCALAR:
    case TK_ATOMIC:
        field_copy(dc, sc, f);
        return 0;
    case TK_STRUCT:
        return mg_elem(w, f, (char *)dc + f->offset, (const char *)sc + f->offset);
    case TK_MAP:
        if (!present(dc, f)) {
            field_copy(dc, sc, f);
            return 0;
        }
        return mg_map(w, dc, sc, f);
    case TK_LIST:
        return mg_list(w, sl->owner, dc, sc, f);
    }
    return 0;
}

static int mg_struct(struct walk *w, ProtobufCMessage *dst, const ProtobufCMessage *src)
{
    const struct slots *t = slots(src->descriptor);
    const struct slot *sl = t->s;
    size_t n = t->n;
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessage *sc = holder(src, &sl[i]);
        if (!present(sc, sl[i].f))
            continue;
        struct pe p = pe_name(sl[i].f);
        push(w, &p);
        int rc = mg_field(w, &sl[i], holder_mut(dst, &sl[i]), sc);
        pop(w);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int walk_merge(struct walk *w, ProtobufCMessage *dst, const ProtobufCMessage *src)
{
    return mg_struct(w, dst, src);
}

/* --------------------------------------------------------------- remove */

static void rm_struct(struct walk *w, ProtobufCMessage *m, const struct set *s);

/* Removes s's items from the element at slot; 1 if it is now an empty struct. */
static int rm_elem(struct walk *w, const ProtobufCFieldDescriptor *f, void *slot,
                   const struct set *s)
{
    if (elem_kind(f) != TK_STRUCT || !*(ProtobufCMessage **)slot)
        return 0;
    rm_struct(w, *(ProtobufCMessage **)slot, s);
    return struct_empty(*(ProtobufCMessage **)slot);
}

static void rm_map(struct walk *w, ProtobufCMessage *c, const ProtobufCFieldDescriptor *f,
                   const struct set *s)
{
    const ProtobufCFieldDescriptor *vf = map_vf(f);
    ProtobufCMessage **ents = *(ProtobufCMessage ***)((char *)c + f->offset);
    size_t *n = (size_t *)((char *)c + f->quantifier_offset), k = 0;
    for (size_t i = 0; i < *n; i++) {
        const char *key = *(char **)((char *)ents[i] + map_kf(f)->offset);
        struct pe p = pe_field(w->a, key ? key : "");
        const struct set *sub = set_child(s, &p);
        if (set_has_member(s, &p) ||
            (sub && !set_empty(sub) && rm_elem(w, vf, (char *)ents[i] + vf->offset, sub))) {
            protobuf_c_message_free_unpacked(ents[i], NULL);
            continue;
        }
        ents[k++] = ents[i];
    }
    *n = k;
}

static void rm_list(struct walk *w, const ProtobufCMessageDescriptor *owner, ProtobufCMessage *c,
                    const ProtobufCFieldDescriptor *f, const struct set *s)
{
    size_t *n = (size_t *)((char *)c + f->quantifier_offset), k = 0, es = kobj_elem_size(f);
    char *arr = *(char **)((char *)c + f->offset);
    int strict = w->strict;
    w->strict = 0;
    for (size_t i = 0; i < *n; i++) {
        struct pe p;
        item_pe(w, owner, f, arr + i * es, i, &p);
        if (set_has_member(s, &p)) {
            kobj_elem_free(f, arr + i * es);
            continue;
        }
        const struct set *sub = set_child(s, &p);
        if (sub && !set_empty(sub))
            rm_elem(w, f, arr + i * es, sub);
        if (k != i)
            memcpy(arr + k * es, arr + i * es, es);
        k++;
    }
    w->strict = strict;
    *n = k;
}

static void rm_field(struct walk *w, const struct slot *sl, ProtobufCMessage *c,
                     const struct set *s)
{
    const ProtobufCFieldDescriptor *f = sl->f;
    switch (sl->kind) {
    case TK_SCALAR:
        return;
    case TK_ATOMIC: /* as typed's removingWalker: an atomic value with items below goes */
        kobj_field_clear(c, f);
        return;
    case TK_STRUCT:
        if (rm_elem(w, f, (char *)c + f->offset, s))
            kobj_field_clear(c, f);
        return;
    case TK_MAP:
        rm_map(w, c, f, s);
        return;
    case TK_LIST:
        rm_list(w, sl->owner, c, f, s);
        return;
    }
}

static void rm_struct(struct walk *w, ProtobufCMessage *m, const struct set *s)
{
    const struct slots *t = slots(m->descriptor);
    const struct slot *sl = t->s;
    size_t n = t->n;
    for (size_t i = 0; i < n; i++) {
        ProtobufCMessage *c = (ProtobufCMessage *)holder(m, &sl[i]);
        if (!present(c, sl[i].f))
            continue;
        struct pe p = pe_name(sl[i].f);
        if (set_has_member(s, &p)) {
            kobj_field_clear(c, sl[i].f);
            continue;
        }
        const struct set *sub = set_child(s, &p);
        if (sub && !set_empty(sub))
            rm_field(w, &sl[i], c, sub);
    }
}

void walk_remove(struct walk *w, ProtobufCMessage *m, const struct set *s)
{
    rm_struct(w, m, s);
}

/* ------------------------------------------------ named fields, objects */

/* The shape of a value for EnsureNamedFieldsAreMembers: a struct (d), a map
 * or list (f), or nothing to look into. */
struct shape {
    const ProtobufCMessageDescriptor *d; /* struct */
    const ProtobufCFieldDescriptor *f;   /* map<> or repeated field */
};

static struct shape elem_shape(const ProtobufCFieldDescriptor *f)
{
    struct shape sh = {NULL, NULL};
    if (is_msg(f))
        sh.d = f->descriptor;
    return sh;
}

static struct shape field_shape(const ProtobufCFieldDescriptor *f)
{
    struct shape sh = {NULL, NULL};
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        sh.f = f;
    else if (is_msg(f))
        sh.d = f->descriptor;
    return sh;
}

static struct set *ensure(struct arena *a, const struct set *s, struct shape sh)
{
    struct set *o = set_new(a);
    o->capm = s->nm + s->nc + 1;
    o->m = arena_alloc(a, o->capm * sizeof(*o->m));
    if (s->nm)
        memcpy(o->m, s->m, s->nm * sizeof(*o->m));
    o->nm = s->nm;
    o->capc = s->nc + 1;
    o->c = arena_alloc(a, o->capc * sizeof(*o->c));
    for (size_t i = 0; i < s->nc; i++) {
        const struct pe *p = &s->c[i].pe;
        struct shape csh = {NULL, NULL};
        if (p->k == PE_FIELD && sh.d) {
            const ProtobufCFieldDescriptor *via, *f = kobj_lookup(sh.d, p->name, &via);
            if (f) {
                set_insert(a, o, p, 1);
                csh = field_shape(f);
            }
        } else if (p->k == PE_FIELD && sh.f && is_map_field(sh.f)) {
            csh = elem_shape(map_vf(sh.f));
        } else if (p->k == PE_KEY && sh.f && !is_map_field(sh.f)) {
            csh = elem_shape(sh.f);
        }
        o->c[o->nc].pe = *p;
        o->c[o->nc++].s = ensure(a, s->c[i].s, csh);
    }
    return o;
}

struct set *walk_ensure_named(struct walk *w, const struct set *s,
                              const ProtobufCMessageDescriptor *d)
{
    struct shape sh = {d, NULL};
    return ensure(w->a, s, sh);
}

ProtobufCMessage *walk_empty_object(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = kobj_msg_new(d);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label != PROTOBUF_C_LABEL_REPEATED && is_msg(f))
            *(ProtobufCMessage **)((char *)m + f->offset) = kobj_msg_new(f->descriptor);
    }
    return m;
}
