/*
 * kobj: Kubernetes objects (and any message): the one generic mapper between YAML/JSON and
 * protobuf-c messages. It walks protobuf-c's descriptors, so a field added to proto/ needs no code
 * here: YAML keys are the proto field names (camelCase already), maps,
 * repeated fields, scalars by type. A few message types are scalars in YAML
 * (Quantity "100m", IntOrString 80 / "http", Time / MicroTime RFC 3339;
 * FieldsV1 is the JSON object its bytes hold) and a
 * few fields are inlined as Kubernetes does (Probe.handler,
 * Volume.volumeSource). apiVersion/kind choose the kind (kinds.h).
 *
 * Parsing is strict: unknown fields, wrong types, bad quantities, duplicate
 * keys are errors naming file:line:column and the field path
 * (kobj_parse_msg_opts can drop unknown and duplicate fields instead, as
 * Kubernetes' fieldValidation Warn and Ignore do). Aliases are
 * refused and nesting is limited, so no YAML bomb gets through.
 */
#ifndef CORACLE_KOBJ_H
#define CORACLE_KOBJ_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "kinds.h"

#define KOBJ_MAX_DEPTH 64

/* One object read from a manifest. */
struct kobj {
    const struct kind *kind;
    ProtobufCMessage *msg; /* owned */
    char *where;           /* "pod.yaml:3" (start of its document), owned */
};

struct kobjs {
    struct kobj *v;
    size_t n;
};

/*
 * Parses every document of buf (a multi-document YAML or JSON stream; a
 * `kind: List` document contributes its items) and appends the objects to
 * *out. name is the file name used in messages. Returns 0, or -1 with *err
 * (malloc'd) "name:line:col: path: problem"; on error nothing is appended.
 * Empty documents are skipped.
 */
int kobj_parse(const char *name, const char *buf, size_t len, struct kobjs *out, char **err);
void kobjs_free(struct kobjs *objs);

/*
 * Parses one message of type desc from a YAML/JSON mapping (no apiVersion or
 * kind keys): for the last-applied annotation and tests. Returns the message
 * (free with protobuf_c_message_free_unpacked(m, NULL)) or NULL with *err.
 */
ProtobufCMessage *kobj_parse_msg(const char *name, const char *buf, size_t len,
                                 const ProtobufCMessageDescriptor *desc, char **err);

/* What kobj_parse_msg_opts does with unknown and duplicate fields (Kubernetes' fieldValidation). */
enum kobj_fields {
    KOBJ_FIELDS_STRICT, /* errors, as kobj_parse and kobj_parse_msg */
    KOBJ_FIELDS_WARN,   /* unknown ones dropped, of duplicates the last kept; each named */
    KOBJ_FIELDS_IGNORE, /* the same, silently */
};
struct kobj_opts {
    enum kobj_fields fields; /* in */
    /* OUT (KOBJ_FIELDS_WARN): `unknown field "spec.foo"`, `duplicate field "metadata.name"`,
     * in document order of the mappings (malloc'd; kobj_opts_free) */
    char **warnings;
    size_t n_warnings;
    /* OUT: the top-level apiVersion and kind when they are strings, else NULL (malloc'd) */
    char *api_version, *kind;
};
/*
 * kobj_parse_msg with o (may be NULL: strict). The message has every field
 * the document names but the dropped ones; on error, *err as
 * kobj_parse_msg's. o's OUT fields hold what was seen either way: free
 * them with kobj_opts_free.
 */
ProtobufCMessage *kobj_parse_msg_opts(const char *name, const char *buf, size_t len,
                                      const ProtobufCMessageDescriptor *desc, struct kobj_opts *o,
                                      char **err);
void kobj_opts_free(struct kobj_opts *o);

/* Output formats of kobj_emit. */
enum kobj_fmt {
    KOBJ_FMT_YAML,
    KOBJ_FMT_JSON,         /* pretty, 4-space indent, as kubectl -o json */
    KOBJ_FMT_JSON_COMPACT, /* one line: the last-applied annotation */
};

/*
 * Writes the object (apiVersion and kind first, then the fields in proto
 * order) in fmt. Returns a malloc'd string ending in a newline (except
 * compact JSON). k may be NULL for a bare message.
 */
char *kobj_emit(const struct kind *k, const ProtobufCMessage *msg, enum kobj_fmt fmt);
/* The same appended to out (no copy: the REST answers write lists and objects in place). */
struct buf;
void kobj_emit_buf(struct buf *out, const struct kind *k, const ProtobufCMessage *msg,
                   enum kobj_fmt fmt);
/*
 * The object of kind k whose protobuf bytes are bytes..len, in fmt,
 * appended to out: what kobj_emit_buf writes for the message pb_decode
 * makes of them, without decoding them when they are as coracle encodes
 * (the JSON formats). Returns 0, or -1 with out as it was if they do not
 * decode.
 */
int kobj_emit_pb_buf(struct buf *out, const struct kind *k, const void *bytes, size_t len,
                     enum kobj_fmt fmt);
/* A list of objects as kubectl prints one: kind List with items (k NULL: of several kinds,
 * each item's own). */
char *kobj_emit_list(const struct kind *k, ProtobufCMessage *const *items, size_t n,
                     enum kobj_fmt fmt);

/* s (len bytes) as a JSON string, quoted and escaped (invalid UTF-8 as U+FFFD), onto b. */
void kobj_json_str(struct buf *b, const char *s, size_t len);

/* "2026-11-28T06:35:04Z" into buf (at least 32 bytes); micro adds ".123456". */
void kobj_fmt_rfc3339(char *buf, size_t n, int64_t sec, int32_t nanos, int micro);
/* The reverse; returns 0 or -1. */
int kobj_parse_rfc3339(const char *s, int64_t *sec, int32_t *nanos);

/*
 * Generic field helpers over descriptors (apply's merge uses them).
 * kobj_field_is_set: present (has_ flag, non-NULL pointer, non-empty repeated).
 * kobj_field_clear: frees the field's value and makes it absent.
 * kobj_field_move: clears dst's field, then moves src's value into dst (src's
 * field becomes absent).
 */
int kobj_field_is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);
void kobj_field_clear(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);
void kobj_field_move(ProtobufCMessage *dst, ProtobufCMessage *src,
                     const ProtobufCFieldDescriptor *f);
/* Is f of d inlined into its parent in YAML/JSON (as Kubernetes does)? */
int kobj_is_inlined(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f);
/* Is d a map entry (key = 1, value = 2) generated for a map<> field? */
int kobj_desc_is_map_entry(const ProtobufCMessageDescriptor *d);
/*
 * The field of d that YAML/JSON key names: one of d's own, or one of a
 * field Kubernetes inlines into d (Volume's volumeSource), *owner then
 * being that field (else NULL). NULL if there is none.
 */
const ProtobufCFieldDescriptor *kobj_lookup(const ProtobufCMessageDescriptor *d, const char *key,
                                            const ProtobufCFieldDescriptor **owner);
/* Deep copy through pack/unpack. Free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *kobj_msg_dup(const ProtobufCMessage *m);
/* Strings and messages: a pointer in the message, NULL when absent. */
int kobj_is_ptr_type(ProtobufCType t);
/* Bytes one element of f takes in the message (or in its repeated array). */
size_t kobj_elem_size(const ProtobufCFieldDescriptor *f);
/* A new message of type d, initialised. Free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *kobj_msg_new(const ProtobufCMessageDescriptor *d);
/* Frees one element of f at slot and zeroes the slot. */
void kobj_elem_free(const ProtobufCFieldDescriptor *f, void *slot);

#endif
