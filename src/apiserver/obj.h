/*
 * obj: small helpers over the API's protobuf-c objects that the apiserver's
 * handlers, admission and watch hub share: decoding and encoding by kind,
 * ObjectMeta access, timestamps, and the field paths that field selectors
 * name (metadata.name, spec.nodeName, ...). Everything here is pure and
 * thread-safe (store apply functions run on the commit thread).
 */
#ifndef CORACLE_OBJ_H
#define CORACLE_OBJ_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kinds.h"
#include "sel.h"

/* Decodes an object of kind k (or any message of descriptor d). NULL on malformed bytes.
 * Free with obj_free. */
ProtobufCMessage *obj_decode(const ProtobufCMessageDescriptor *d, const void *buf, size_t len);
void obj_free(ProtobufCMessage *m);
/* Encodes m; returns malloc'd bytes and *len. */
void *obj_encode(const ProtobufCMessage *m, size_t *len);
/* Deep copy via encode/decode. */
ProtobufCMessage *obj_clone(const ProtobufCMessage *m);
/* True if a and b encode to the same bytes (NULL == NULL). */
bool obj_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

/*
 * Puts m in canonical form, recursively: map entries sorted by key, so that
 * equal objects encode to equal bytes whatever order a client sent its maps
 * in (no-op updates are detected by comparing encodings).
 */
void obj_normalize(ProtobufCMessage *m);
/*
 * What Go's generated protobuf writes for fields at their zero value, as
 * Kubernetes' clients send them (every non-pointer string, even "", every
 * non-pointer number and bool, and a zero metav1.Time as an empty
 * message), made absent again, as JSON's omitempty has them: strings ""
 * outside map entries, empty times, and the zeros of the numbers and bools
 * proto/ marks +omitzero (values with omitempty in Kubernetes' Go types;
 * a pointer's zero, or a value's without omitempty, stays set).
 */
void obj_clear_go_zero(ProtobufCMessage *m);
/* The fields marked +omitzero in proto/ (message short name, field name), ending with
 * {NULL, NULL}; generated from proto/coracle.proto by protodoc.awk. */
struct obj_omitzero {
    const char *msg, *field;
};
extern const struct obj_omitzero obj_omitzero[];

/* The object's metadata, created empty if unset. */
Coracle__V1__ObjectMeta *obj_meta(ProtobufCMessage *m);
/* Replaces *field by a copy of v (NULL clears). */
void obj_set_str(char **field, const char *v);
/* A new Time / MicroTime for ns since the epoch (malloc'd). */
Coracle__V1__Time *obj_time(int64_t ns);
Coracle__V1__MicroTime *obj_microtime(int64_t ns);
/* Nanoseconds of a Time (0 if NULL). */
int64_t obj_time_ns(const Coracle__V1__Time *t);
int64_t obj_microtime_ns(const Coracle__V1__MicroTime *t);

/* The value of label key, or NULL. */
const char *obj_label(const Coracle__V1__ObjectMeta *m, const char *key);
/* sel_get_fn over an object's labels (arg: the ProtobufCMessage). */
const char *obj_label_get(void *obj, const char *key);
/*
 * Whether obj's labels meet s: lookups one by one for small cases, one merge
 * of the sorted labels with the selector's sorted terms for big ones (a
 * selector of n terms against m labels costs O(n + m), not O(n x m)).
 */
bool obj_match_labels(const sel_t *s, const ProtobufCMessage *obj);

/*
 * Field selector support. obj_field_supported says whether a kind answers
 * to a field path (Kubernetes' field label conversion); obj_field_get is a
 * sel_get_fn over a struct obj_fields_arg.
 */
bool obj_field_supported(const struct kind *k, const char *path);
struct obj_fields_arg {
    const struct kind *k;
    const ProtobufCMessage *obj;
};
const char *obj_field_get(void *arg, const char *path);
/*
 * Checks every key of a field selector string against the kind; returns 0,
 * or -1 with *err (malloc'd) `field label not supported: x`.
 */
int obj_check_field_selector(const struct kind *k, const char *fs, char **err);

/* The pod's spec.nodeName ("" if unset). */
const char *obj_pod_node(const ProtobufCMessage *pod);

#endif
