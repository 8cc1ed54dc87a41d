/*
 * kpatch_int.h: what kpatch.c (entry, limits, merge patch), kpatch_json.c
 * (JSON patch) and kpatch_strategic.c (strategic merge patch) share.
 * json-c's names clash with json.h's: a file includes one or the other,
 * never both.
 */
#ifndef CORACLE_KPATCH_INT_H
#define CORACLE_KPATCH_INT_H

#include "kpatch.h"

#include <json-c/json.h>
#include <stddef.h>

/* One kpatch_apply call: the first error, and the work done so far. */
struct kp {
    int status; /* 0 until the first error */
    char *err;  /* malloc'd */
    size_t work;
};

/* Records the first error (later ones are dropped) and returns -1. */
int kp_fail(struct kp *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Counts n units of work; past KPATCH_MAX_WORK fails with 413 and returns -1. */
int kp_charge(struct kp *c, size_t n);
/*
 * v as Go's fmt prints an interface{} holding it (%v): map[k:v] with keys
 * sorted, [a b], strings bare, <nil>: Kubernetes' messages quote values so.
 * Malloc'd, cut at about 1 KiB.
 */
char *kp_gofmt(json_object *v);
/* v's type as Go names it in mergepatch's messages ("map[string]interface {}", "string"). */
const char *kp_gotype(json_object *v);
/* v's compact JSON text, owned by v until v changes (a hash key for scalars). */
const char *kp_text(json_object *v);

/* v's JSON type as Go's encoding/json names it in "cannot unmarshal" messages ("object"). */
const char *kp_gojson(json_object *v);

/* JSON patch: patch (any JSON value, checked here) applied to *doc. */
int kp_json_patch(struct kp *c, json_object **doc, json_object *patch);
/* Strategic merge patch of patch (an object) into *doc (an object). */
int kp_strategic(struct kp *c, json_object **doc, json_object *patch,
                 const ProtobufCMessageDescriptor *desc);

#endif
