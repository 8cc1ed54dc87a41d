/*
 * kpatch_strategic: Kubernetes' strategic merge patch (apimachinery's
 * util/strategicpatch, as the apiserver applies it: parallel deletion
 * lists merged, unmatched nulls ignored), driven by protobuf-c descriptors
 * and kmeta.h instead of Go struct tags.
 *
 * Objects merge key by key; null deletes; a list whose field has patch
 * strategy "merge" merges: lists of objects by their merge key (a patch
 * item updates the live item with the same key, new items are appended),
 * lists of scalars as sets; every other list, and any value whose type
 * changes, is replaced. Directives:
 *   {"$patch": "replace"}        in an object: the object is the patch's, not merged
 *   {"$patch": "delete"}         in an object: it becomes {}; in a list item: the
 *                                live items with its merge key go
 *   {"$patch": "replace"}        as a list item: the list is the patch's other items
 *   "$retainKeys": [k...]        keys of the live object not listed go
 *   "$setElementOrder/f": [...]  the order of list f's items after the merge
 *   "$deleteFromPrimitiveList/f" scalars to take out of list f
 * The order of a merged list: the patch's items in patch (or
 * $setElementOrder) order, the live-only items in live order, interleaved
 * where the live order says so (normalizeElementOrder in Kubernetes).
 *
 * Kubernetes finds items with nested loops; here every list merge indexes
 * items by the compact JSON of their merge key (or of the scalar) in a
 * hash, and orders them with a sort: O(n log n) for lists of any length.
 *
 * Where it differs, on purpose: values new to the live object go through
 * the merge too (so directives inside them are applied and dropped instead
 * of reaching the decoder); a deletion list for a list the object lacks is
 * ignored (Kubernetes would store the deletion list as the list); errors
 * Kubernetes leaves as plain Go errors (an HTTP 500) are 422 here.
 */
#include "config.h"
#include "kmeta.h"
#include "kobj.h"
#include "kpatch_int.h"
#include "smap.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DIRECTIVE "$patch"
#define RETAIN_KEYS "$retainKeys"
#define SET_ORDER "$setElementOrder"
#define DELETE_LIST "$deleteFromPrimitiveList"

/* What the descriptors say about a JSON object. */
struct ktype {
    const ProtobufCMessageDescriptor *d; /* its message (map: its values' message), or NULL */
    int map;                             /* a map<> field: keys are data, not fields */
};

/* What they say about one key of it. */
struct kfield {
    struct ktype sub; /* the value's type (a list's: its items') */
    int merge;        /* patch strategy merge (lists) */
    int replace;      /* patch strategy replace (objects) */
    const char *key;  /* merge key of a list of objects */
};

static void field_of(struct ktype t, const char *k, struct kfield *f)
{
    memset(f, 0, sizeof(*f));
    if (!t.d)
        return;
    if (t.map) {
        f->sub.d = t.d;
        return;
    }
    const ProtobufCFieldDescriptor *owner = NULL;
    const ProtobufCFieldDescriptor *fd = kobj_lookup(t.d, k, &owner);
    if (!fd)
        return;
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessageDescriptor *md = fd->descriptor;
        if (kobj_desc_is_map_entry(md)) {
            const ProtobufCFieldDescriptor *vf =
                protobuf_c_message_descriptor_get_field_by_name(md, "value");
            f->sub.map = 1;
            f->sub.d = vf && vf->type == PROTOBUF_C_TYPE_MESSAGE ? vf->descriptor : NULL;
        } else {
            f->sub.d = md;
        }
    }
    const struct kmeta *m = kmeta_lookup(owner ? owner->descriptor : t.d, k);
    if (!m)
        return;
    f->key = m->merge_key;
    if (m->strategy) {
        /* "merge", "replace", "retainKeys" or two of them joined by ',' */
        const char *s = m->strategy;
        while (*s) {
            size_t n = strcspn(s, ",");
            if (n == 5 && !strncmp(s, "merge", 5))
                f->merge = 1;
            else if (n == 7 && !strncmp(s, "replace", 7))
                f->replace = 1;
            s += n + (s[n] == ',');
        }
    }
}

/* A directive key "<prefix>/<field>": the field, or NULL if the key is not of that form. */
static const char *directive_field(const char *k, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(k, prefix, n) || k[n] != '/')
        return NULL;
    return k + n + 1;
}

static int has_prefix(const char *k, const char *prefix)
{
    return !strncmp(k, prefix, strlen(prefix));
}

static int err_no_merge_key(struct kp *c, json_object *m, const char *key)
{
    char *v = kp_gofmt(m);
    kp_fail(c, 422, "map: %s does not contain declared merge key: %s", v, key);
    free(v);
    return -1;
}

static int err_bad_patch_type(struct kp *c, json_object *dir, json_object *m)
{
    char *v = kp_gofmt(m), *d = kp_gofmt(dir);
    kp_fail(c, 422, "unknown patch type: %s in map: %s", d, v);
    free(v);
    free(d);
    return -1;
}

static int err_bad_arg_type(struct kp *c, json_object *actual)
{
    return kp_fail(c, 422, "expected a []interface {}, but received a %s", kp_gotype(actual));
}

/* The hash key of an item: the compact JSON of its merge key's value (or of itself). */
static const char *item_key(json_object *item, const char *merge_key)
{
    if (!merge_key)
        return kp_text(item);
    json_object *v;
    if (!json_object_is_type(item, json_type_object) ||
        !json_object_object_get_ex(item, merge_key, &v))
        return NULL;
    return kp_text(v);
}

/* ------------------------------------------------------------ ordering */

/* A list being built: references, owned. */
struct items {
    json_object **v;
    size_t n, cap;
};

static void items_push(struct items *l, json_object *v)
{
    *XPUSH(l->v, l->n, l->cap) = v;
}

static void items_free(struct items *l)
{
    for (size_t i = 0; i < l->n; i++)
        json_object_put(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Position + 1 of each item's key in list (first occurrence); NULL on a missing merge key. */
static smap_t *index_of(struct kp *c, json_object *const *v, size_t n, const char *merge_key)
{
    smap_t *m = smap_new();
    for (size_t i = 0; i < n; i++) {
        const char *k = item_key(v[i], merge_key);
        if (!k) {
            smap_free(m, NULL);
            err_no_merge_key(c, v[i], merge_key);
            return NULL;
        }
        if (!smap_get(m, k))
            smap_put(m, k, (void *)(uintptr_t)(i + 1));
    }
    return m;
}

struct ranked {
    json_object *v;
    size_t rank, pos, live; /* live: position + 1 in the live list, 0 if not there */
};

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Orders merged (references, consumed) as Kubernetes' normalizeElementOrder
 * does: the items whose key is in order[] sorted by it, the others (live
 * only) sorted by live[]; then the two interleaved, a live-only item going
 * first when both it and the next patch item are in live[] and it comes
 * earlier there. Returns a new array, or NULL after an error.
 */
static json_object *normalize(struct kp *c, struct items *merged, json_object *const *order,
                              size_t n_order, json_object *const *live, size_t n_live,
                              const char *merge_key)
{
    json_object *out = NULL;
    struct ranked *pi = NULL, *si = NULL;
    size_t np = 0, ns = 0;
    smap_t *ho = NULL, *hl = NULL;
    if (kp_charge(c, merged->n + n_order + n_live) < 0)
        goto done;
    if (!(ho = index_of(c, order, n_order, merge_key)) ||
        !(hl = index_of(c, live, n_live, merge_key)))
        goto done;
    pi = xcalloc(merged->n + 1, sizeof(*pi));
    si = xcalloc(merged->n + 1, sizeof(*si));
    for (size_t i = 0; i < merged->n; i++) {
        const char *k = item_key(merged->v[i], merge_key);
        if (!k) {
            err_no_merge_key(c, merged->v[i], merge_key);
            goto done;
        }
        size_t o = (uintptr_t)smap_get(ho, k), l = (uintptr_t)smap_get(hl, k);
        if (o)
            pi[np++] = (struct ranked){merged->v[i], o, i, l};
        else
            si[ns++] = (struct ranked){merged->v[i], l ? l : SIZE_MAX, i, l};
    }
    qsort(pi, np, sizeof(*pi), cmp_ranked);
    qsort(si, ns, sizeof(*si), cmp_ranked);
    out = json_object_new_array_ext((int)merged->n);
    size_t i = 0, j = 0;
    while (i < ns || j < np) {
        int left = j >= np || (i < ns && si[i].live && pi[j].live && si[i].live < pi[j].live);
        json_object_array_add(out, json_object_get(left ? si[i++].v : pi[j++].v));
    }
done:
    free(pi);
    free(si);
    smap_free(ho, NULL);
    smap_free(hl, NULL);
    items_free(merged);
    return out;
}

/* ---------------------------------------------------------------- merge */

static int merge_map(struct kp *c, json_object *orig, json_object *patch, struct ktype t,
                     json_object **out);

/* The array's items as a C array (borrowed), *n their count. */
static json_object **arr(json_object *a, size_t *n)
{
    *n = a ? json_object_array_length(a) : 0;
    return *n ? (json_object **)json_object_get_array(a)->array : NULL;
}

/* All items of both lists of the same JSON type, not lists: Kubernetes' sliceElementType. */
static int element_type(struct kp *c, json_object *a, json_object *b, enum json_type *type)
{
    json_object *lists[2] = {a, b};
    int first = 1;
    *type = json_type_null;
    for (int l = 0; l < 2; l++) {
        size_t n;
        json_object **v = arr(lists[l], &n);
        for (size_t i = 0; i < n; i++) {
            enum json_type ti = json_object_get_type(v[i]);
            if (first && ti == json_type_array)
                return kp_fail(c, 422, "lists of lists are not supported");
            if (!first && ti != *type) {
                char *x = kp_gofmt(a), *y = kp_gofmt(b);
                kp_fail(c, 422, "list element types are not identical: [%s %s]", x, y);
                free(x);
                free(y);
                return -1;
            }
            *type = ti;
            first = 0;
        }
    }
    return 0;
}

/* A patch's list item or value new to the live object, with its directives applied. */
static int fresh(struct kp *c, json_object *pv, const struct kfield *f, json_object **out);

/*
 * The $patch items of a list of objects: deletions (their merge keys into
 * del), a replace (*replace), the other items into plain (borrowed).
 */
static int special_items(struct kp *c, json_object *pl, const char *merge_key, smap_t *del,
                         int *replace, struct items *plain)
{
    size_t n;
    json_object **v = arr(pl, &n);
    for (size_t i = 0; i < n; i++) {
        json_object *d;
        if (!json_object_object_get_ex(v[i], DIRECTIVE, &d)) {
            items_push(plain, json_object_get(v[i]));
            continue;
        }
        const char *s = json_object_is_type(d, json_type_string) ? json_object_get_string(d) : "";
        if (!strcmp(s, "delete")) {
            const char *k = item_key(v[i], merge_key);
            if (!k)
                return err_no_merge_key(c, v[i], merge_key);
            smap_put(del, k, (void *)1);
        } else if (!strcmp(s, "replace")) {
            *replace = 1;
        } else if (!strcmp(s, "merge")) {
            return kp_fail(c, 422, "merging lists cannot yet be specified in the patch");
        } else {
            return err_bad_patch_type(c, d, v[i]);
        }
    }
    return 0;
}

/* Merges a list of objects by merge key: into merged (references), live order into *live. */
static int merge_objects(struct kp *c, json_object *ol, json_object *pl, const struct kfield *f,
                         struct items *merged, struct items *plain, struct items *live)
{
    smap_t *del = smap_new(), *idx = NULL;
    int replace = 0, r = -1;
    if (special_items(c, pl, f->key, del, &replace, plain) < 0)
        goto done;
    size_t n;
    json_object **v = arr(ol, &n);
    if (replace) {
        /* The list is the patch's other items; nothing left to merge. */
        for (size_t i = 0; i < plain->n; i++) {
            json_object *item;
            if (merge_map(c, NULL, plain->v[i], f->sub, &item) < 0)
                goto done;
            items_push(live, item);
        }
        items_free(plain);
    } else {
        for (size_t i = 0; i < n; i++) {
            const char *k = item_key(v[i], f->key);
            if (!k || !smap_get(del, k))
                items_push(live, json_object_get(v[i]));
        }
    }
    for (size_t i = 0; i < live->n; i++)
        items_push(merged, json_object_get(live->v[i]));
    idx = smap_new();
    for (size_t i = 0; i < merged->n; i++) {
        const char *k = item_key(merged->v[i], f->key);
        if (k && !smap_get(idx, k))
            smap_put(idx, k, (void *)(uintptr_t)(i + 1));
    }
    for (size_t i = 0; i < plain->n; i++) {
        const char *k = item_key(plain->v[i], f->key);
        if (!k) {
            err_no_merge_key(c, plain->v[i], f->key);
            goto done;
        }
        size_t at = (uintptr_t)smap_get(idx, k);
        json_object *m;
        if (merge_map(c, at ? merged->v[at - 1] : NULL, plain->v[i], f->sub, &m) < 0)
            goto done;
        if (at) {
            json_object_put(merged->v[at - 1]);
            merged->v[at - 1] = m;
        } else {
            smap_put(idx, item_key(plain->v[i], f->key), (void *)(uintptr_t)(merged->n + 1));
            items_push(merged, m);
        }
    }
    r = 0;
done:
    smap_free(del, NULL);
    smap_free(idx, NULL);
    return r;
}

/*
 * Kubernetes' mergeSlice: merges the patch list pl into the live list ol
 * (either may be NULL) for a field with strategy merge. *out: a new array.
 */
static int merge_list(struct kp *c, json_object *ol, json_object *pl, const struct kfield *f,
                      json_object **out)
{
    size_t no, np;
    json_object **ov = arr(ol, &no), **pv = arr(pl, &np);
    enum json_type type;
    struct items merged = {0}, plain = {0}, live = {0};
    *out = NULL;
    if (no == 0 && np == 0) {
        *out = json_object_new_array();
        return 0;
    }
    if (kp_charge(c, no + np) < 0 || element_type(c, ol, pl, &type) < 0)
        return -1;
    if (type != json_type_object) {
        /* A set of scalars: live items, then the patch's new ones; duplicates go. */
        smap_t *seen = smap_new();
        json_object **lists[2] = {ov, pv};
        size_t ns[2] = {no, np};
        for (int l = 0; l < 2; l++)
            for (size_t i = 0; i < ns[l]; i++)
                if (!smap_put(seen, kp_text(lists[l][i]), (void *)1))
                    items_push(&merged, json_object_get(lists[l][i]));
        smap_free(seen, NULL);
        *out = normalize(c, &merged, pv, np, ov, no, NULL);
        return *out ? 0 : -1;
    }
    if (!f->key)
        return kp_fail(c, 422, "cannot merge lists without merge key for type struct");
    int r = merge_objects(c, ol, pl, f, &merged, &plain, &live);
    if (r == 0)
        *out = normalize(c, &merged, plain.v, plain.n, live.v, live.n, f->key);
    items_free(&merged);
    items_free(&plain);
    items_free(&live);
    return r < 0 || !*out ? -1 : 0;
}

static int fresh(struct kp *c, json_object *pv, const struct kfield *f, json_object **out)
{
    if (json_object_is_type(pv, json_type_object))
        return merge_map(c, NULL, pv, f->sub, out);
    if (json_object_is_type(pv, json_type_array) && f->merge)
        return merge_list(c, NULL, pv, f, out);
    *out = json_object_get(pv);
    return 0;
}

/* $retainKeys: every key the patch sets must be listed; live keys not listed go. */
static int retain_keys(struct kp *c, json_object *orig, json_object *patch, json_object *list)
{
    if (!json_object_is_type(list, json_type_array))
        return kp_fail(c, 400, "invalid patch format of retainKeys");
    smap_t *keep = smap_new();
    size_t n;
    json_object **v = arr(list, &n);
    for (size_t i = 0; i < n; i++)
        if (json_object_is_type(v[i], json_type_string))
            smap_put(keep, json_object_get_string(v[i]), (void *)1);
    int r = 0;
    json_object_object_foreach(patch, k, pv)
    {
        if (!pv || !strcmp(k, RETAIN_KEYS) || !strcmp(k, DIRECTIVE) || has_prefix(k, DELETE_LIST) ||
            has_prefix(k, SET_ORDER))
            continue;
        if (!smap_get(keep, k)) {
            r = kp_fail(c, 400, "invalid patch format of retainKeys");
            break;
        }
    }
    if (r == 0) {
        struct lh_entry *e = json_object_get_object(orig)->head, *next;
        for (; e; e = next) {
            next = e->next;
            if (!smap_get(keep, (const char *)lh_entry_k(e)))
                json_object_object_del(orig, (const char *)lh_entry_k(e));
        }
    }
    smap_free(keep, NULL);
    return r;
}

/* Do the patch's list items appear in the order $setElementOrder gives? */
static int check_order(struct kp *c, json_object *pl, json_object *order, const char *merge_key)
{
    size_t np, no, i = 0, j = 0;
    json_object **pv = arr(pl, &np), **ov = arr(order, &no);
    while (i < np && j < no) {
        json_object *d;
        if (json_object_is_type(pv[i], json_type_object) &&
            json_object_object_get_ex(pv[i], DIRECTIVE, &d)) {
            i++; /* deletions and other directives are not ordered */
            continue;
        }
        int eq;
        if (merge_key) {
            const char *a = item_key(pv[i], merge_key);
            if (!a)
                return err_no_merge_key(c, pv[i], merge_key);
            char *as = xstrdup(a);
            const char *b = item_key(ov[j], merge_key);
            eq = b && !strcmp(as, b);
            free(as);
            if (!b)
                return err_no_merge_key(c, ov[j], merge_key);
        } else {
            eq = json_object_equal(pv[i], ov[j]);
        }
        i += eq;
        j++;
    }
    while (i < np && json_object_is_type(pv[i], json_type_object) &&
           json_object_object_get_ex(pv[i], DIRECTIVE, NULL))
        i++;
    if (i < np) {
        char *a = kp_gofmt(pl), *b = kp_gofmt(order);
        kp_fail(c, 422, "The order in patch list:\n%s\n doesn't match %s list:\n%s\n", a, SET_ORDER,
                b);
        free(a);
        free(b);
        return -1;
    }
    return kp_charge(c, np + no);
}

/* One $setElementOrder/<field> of patch, applied to orig: merges the field's list and orders it. */
static int set_order(struct kp *c, json_object *orig, json_object *patch, const char *dk,
                     json_object *order, struct ktype t)
{
    const char *field = directive_field(dk, SET_ORDER);
    if (!field)
        return kp_fail(c, 400, "invalid patch format of setElementOrder list");
    if (!json_object_is_type(order, json_type_array))
        return err_bad_arg_type(c, order);
    json_object *ol = NULL, *pl = NULL;
    int has_o = json_object_object_get_ex(orig, field, &ol);
    int has_p = json_object_object_get_ex(patch, field, &pl);
    if (has_o && !json_object_is_type(ol, json_type_array))
        return err_bad_arg_type(c, ol);
    if (has_p && !json_object_is_type(pl, json_type_array))
        return err_bad_arg_type(c, pl);
    if (!has_o && !has_p)
        return 0;
    struct kfield f;
    field_of(t, field, &f);
    if (has_p && check_order(c, pl, order, f.key) < 0)
        return -1;
    json_object *merged = NULL;
    if (!has_p)
        merged = json_object_get(ol);
    else if (f.merge && merge_list(c, ol, pl, &f, &merged) < 0)
        return -1;
    else if (!f.merge)
        merged = json_object_get(pl);
    size_t n, no, nl;
    json_object **mv = arr(merged, &n), **ov = arr(order, &no), **lv = arr(ol, &nl);
    struct items items = {0};
    for (size_t i = 0; i < n; i++)
        items_push(&items, json_object_get(mv[i]));
    const char *key = n && json_object_is_type(mv[0], json_type_object) ? f.key : NULL;
    if (n && json_object_is_type(mv[0], json_type_object) && !key) {
        items_free(&items);
        json_object_put(merged);
        return kp_fail(c, 422, "cannot merge lists without merge key for type struct");
    }
    json_object *sorted = normalize(c, &items, ov, no, lv, nl, key);
    json_object_put(merged);
    if (!sorted)
        return -1;
    json_object_object_add(orig, field, sorted);
    return 0;
}

/* $deleteFromPrimitiveList/<field>: the listed scalars leave the live list. */
static int delete_list(struct kp *c, json_object *orig, const char *dk, json_object *pv)
{
    const char *field = directive_field(dk, DELETE_LIST);
    if (!field)
        return kp_fail(c, 400, "invalid patch format of primitive list");
    if (!pv) {
        json_object_object_del(orig, field);
        return 0;
    }
    if (!json_object_is_type(pv, json_type_array))
        return kp_fail(c, 400, "invalid patch format of primitive list");
    json_object *ol;
    if (!json_object_object_get_ex(orig, field, &ol))
        return 0;
    if (!json_object_is_type(ol, json_type_array))
        return err_bad_arg_type(c, ol);
    size_t nd, no;
    json_object **dv = arr(pv, &nd), **ov = arr(ol, &no);
    if (kp_charge(c, nd + no) < 0)
        return -1;
    smap_t *gone = smap_new();
    for (size_t i = 0; i < nd; i++)
        smap_put(gone, kp_text(dv[i]), (void *)1);
    json_object *kept = json_object_new_array();
    for (size_t i = 0; i < no; i++)
        if (!smap_get(gone, kp_text(ov[i])))
            json_object_array_add(kept, json_object_get(ov[i]));
    smap_free(gone, NULL);
    json_object_object_add(orig, field, kept);
    return 0;
}

/* One ordinary key k of the patch (value pv) merged into orig. */
static int merge_key(struct kp *c, json_object *orig, const char *k, json_object *pv,
                     struct ktype t)
{
    if (!pv) {
        json_object_object_del(orig, k);
        return 0;
    }
    struct kfield f;
    field_of(t, k, &f);
    json_object *ov = NULL, *m = NULL;
    int r;
    if (!json_object_object_get_ex(orig, k, &ov) ||
        json_object_get_type(ov) != json_object_get_type(pv))
        r = fresh(c, pv, &f, &m);
    else if (json_object_is_type(pv, json_type_object))
        r = f.replace ? fresh(c, pv, &f, &m) : merge_map(c, ov, pv, f.sub, &m);
    else if (json_object_is_type(pv, json_type_array))
        r = f.merge ? merge_list(c, ov, pv, &f, &m) : (m = json_object_get(pv), 0);
    else
        r = (m = json_object_get(pv), 0);
    if (r < 0)
        return -1;
    json_object_object_add(orig, k, m);
    return 0;
}

/* Is k a list field whose $setElementOrder the patch carries (so merged already)? */
static int ordered(json_object *patch, const char *k)
{
    char *dk = xconcat(SET_ORDER, "/", k, NULL);
    int r = json_object_object_get_ex(patch, dk, NULL);
    free(dk);
    return r;
}

/* Kubernetes' mergeMap. orig may be NULL (a new value); *out: a new reference. */
static int merge_map(struct kp *c, json_object *orig, json_object *patch, struct ktype t,
                     json_object **out)
{
    json_object *d;
    *out = NULL;
    if (kp_charge(c, 1) < 0)
        return -1;
    if (json_object_object_get_ex(patch, DIRECTIVE, &d)) {
        const char *s = json_object_is_type(d, json_type_string) ? json_object_get_string(d) : "";
        if (!strcmp(s, "delete")) {
            *out = json_object_new_object();
            return 0;
        }
        if (strcmp(s, "replace"))
            return err_bad_patch_type(c, d, patch);
        orig = NULL; /* the patch, without the directive, is the object */
    }
    json_object *o = orig ? json_object_get(orig) : json_object_new_object();
    json_object *rk;
    if (json_object_object_get_ex(patch, RETAIN_KEYS, &rk) && retain_keys(c, o, patch, rk) < 0)
        goto fail;
    json_object_object_foreach(patch, k1, v1)
    {
        if (has_prefix(k1, SET_ORDER) && set_order(c, o, patch, k1, v1, t) < 0)
            goto fail;
    }
    json_object_object_foreach(patch, k2, v2)
    {
        if (has_prefix(k2, DELETE_LIST) && delete_list(c, o, k2, v2) < 0)
            goto fail;
    }
    json_object_object_foreach(patch, k, pv)
    {
        if (!strcmp(k, DIRECTIVE) || !strcmp(k, RETAIN_KEYS) || has_prefix(k, SET_ORDER) ||
            has_prefix(k, DELETE_LIST) || ordered(patch, k))
            continue;
        if (merge_key(c, o, k, pv, t) < 0)
            goto fail;
    }
    *out = o;
    return 0;
fail:
    json_object_put(o);
    return -1;
}

int kp_strategic(struct kp *c, json_object **doc, json_object *patch,
                 const ProtobufCMessageDescriptor *desc)
{
    struct ktype t = {desc, 0};
    json_object *m;
    if (merge_map(c, *doc, patch, t, &m) < 0)
        return -1;
    json_object_put(*doc);
    *doc = m;
    return 0;
}
