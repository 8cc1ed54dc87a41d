/*
 * kssa_int: what the files of kssa share (kssa.c says which does what).
 * Not for other modules: use kssa.h.
 *
 * Field sets are structured-merge-diff's fieldpath.Set: members (path
 * elements owned here) and children (path elements with a subset below),
 * both sorted by pe_cmp. Everything of one operation (sets, path
 * elements, their strings) lives in one arena freed at its end, so the set
 * algebra shares subtrees freely: a set is never changed once another set
 * may point to it (only the walks that build a set insert into it).
 */
#ifndef CORACLE_KSSA_INT_H
#define CORACLE_KSSA_INT_H

#include "arena.h"
#include "kssa.h"

#include <stddef.h>
#include <stdint.h>

struct buf;

/* ---- values inside path elements: value.Value's scalars ---- */

enum svt { SV_FLOAT, SV_INT, SV_STR, SV_BOOL, SV_NULL }; /* value.Compare's order */
struct sval {
    enum svt t;
    int64_t i; /* SV_INT, SV_BOOL */
    double f;  /* SV_FLOAT */
    const char *s;
    size_t len; /* SV_STR */
};

/* ---- path elements ---- */

enum pek { PE_FIELD, PE_KEY, PE_VALUE, PE_INDEX }; /* PathElement.Compare's order */
struct kv {
    const char *name;
    struct sval v;
};
struct pe {
    enum pek k;
    const char *name; /* PE_FIELD */
    struct kv *keys;  /* PE_KEY, sorted by name */
    size_t nkeys;
    struct sval v; /* PE_VALUE */
    int64_t idx;   /* PE_INDEX */
};

int sval_cmp(const struct sval *a, const struct sval *b);
int pe_cmp(const struct pe *a, const struct pe *b);
struct pe pe_field(struct arena *a, const char *name);
/* "f:name", `k:{"name":"main"}`, `v:"x"`, "i:3": the serialized element onto b. */
void pe_serialize(struct buf *b, const struct pe *p);
/* ".name", `[name="main"]`, `[="x"]`, "[3]": PathElement.String(), onto b. */
void pe_string(struct buf *b, const struct pe *p);

/* ---- sets ---- */

struct snode;
struct set {
    struct pe *m; /* members */
    size_t nm, capm;
    struct snode *c; /* children */
    size_t nc, capc;
};
struct snode {
    struct pe pe;
    struct set *s;
};

struct set *set_new(struct arena *a);
/* Inserts the path p[0..n) (n >= 1) as a member; the parents become children only. */
void set_insert(struct arena *a, struct set *s, const struct pe *p, size_t n);
int set_empty(const struct set *s);
int set_has_member(const struct set *s, const struct pe *p);
/* The subset below child p, or NULL. */
struct set *set_child(const struct set *s, const struct pe *p);
/* Has the path p[0..n) as a member. */
int set_has(const struct set *s, const struct pe *p, size_t n);
struct set *set_union(struct arena *a, const struct set *x, const struct set *y);
struct set *set_intersect(struct arena *a, const struct set *x, const struct set *y);
struct set *set_diff(struct arena *a, const struct set *x, const struct set *y);
struct set *set_rdiff(struct arena *a, const struct set *x, const struct set *y);
/* Set.Iterate: each member's path, members before children, in order. */
typedef void (*set_iter_fn)(void *arg, const struct pe *path, size_t n);
void set_iterate(const struct set *s, set_iter_fn fn, void *arg);
/* FieldsV1: the set as structured-merge-diff's JSON, onto b. */
void set_to_json(struct buf *b, const struct set *s);
/* The reverse, from FieldsV1's bytes; NULL with *err (malloc'd) if they are not a field set. */
struct set *set_from_v1(struct arena *a, const void *data, size_t len, char **err);

/* kssa_update without the cache of creates' entries by shape (the reference it is tested against).
 */
void kssa_update_general(const ProtobufCMessage *old, ProtobufCMessage *nw, const char *manager,
                         const struct kssa_opts *o, int64_t now);

/* ---- walks over messages (kssa_walk.c) ---- */

#define KSSA_MAX_DEPTH 64

struct kmeta;

/* A walk's state: where it is (the path), what went wrong. */
struct walk {
    struct arena *a;
    char *err;  /* the first error (malloc'd): the config cannot be applied */
    int strict; /* list items without their keys are errors (a config), else
                 * they are told apart by index (a stored object) */
    struct pe path[KSSA_MAX_DEPTH];
    size_t depth;
};

/* Comparison of two objects, as typed.Comparison. */
struct cmp {
    struct set *removed, *modified, *added;
};

/* m's fields as a set (TypedValue.ToFieldSet). m's descriptor is the root type. */
struct set *walk_fieldset(struct walk *w, const ProtobufCMessage *m);
/*
 * A 128-bit digest of m's shape: of what walk_fieldset reads (the fields
 * present, list items' keys, map keys; no leaf values), so two objects
 * with one digest have the same field set (and the same fields added to an
 * empty object), but for a 2^-128 chance. Types count by address: digests
 * compare within one process only. Thread-safe; allocates nothing but
 * for a list item keyed by a message.
 */
void walk_shape(const ProtobufCMessage *m, uint64_t out[2]);
/* typed Compare; l and r of one type. */
struct cmp walk_compare(struct walk *w, const ProtobufCMessage *l, const ProtobufCMessage *r);
/* Merges src into dst in place (TypedValue.Merge, src wins): 0 or -1 with w->err. */
int walk_merge(struct walk *w, ProtobufCMessage *dst, const ProtobufCMessage *src);
/* Removes the set's items from m in place (TypedValue.RemoveItems). */
void walk_remove(struct walk *w, ProtobufCMessage *m, const struct set *s);
/* Set.EnsureNamedFieldsAreMembers for the type of d. */
struct set *walk_ensure_named(struct walk *w, const struct set *s,
                              const ProtobufCMessageDescriptor *d);
/* Are l and r equal, metadata.managedFields aside? */
int walk_equal(const ProtobufCMessage *l, const ProtobufCMessage *r);
/* An empty object of type d as Kubernetes' Go types have it: top-level structs present. */
ProtobufCMessage *walk_empty_object(const ProtobufCMessageDescriptor *d);

#endif
