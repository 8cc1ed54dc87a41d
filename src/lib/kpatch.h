/*
 * kpatch: the three PATCH formats of the Kubernetes API applied to an
 * object's JSON text: JSON patch (RFC 6902, as evanphx/json-patch v4 does
 * it for Kubernetes), JSON merge patch (RFC 7386) and strategic merge patch
 * (apimachinery's strategicpatch: lists merged by key as kmeta.h marks
 * them, the $patch, $retainKeys, $setElementOrder and
 * $deleteFromPrimitiveList directives).
 *
 * Pure: no I/O, no global state; calls on different inputs may run on
 * different threads at once. (json-c seeds its string hash once per
 * process, from getrandom(2), on the first object it builds.) The JSON
 * tree underneath is json-c's (see doc/DESIGN.md, "PATCH: JSON trees from
 * json-c"); nothing of it shows here.
 *
 * Limits, as Kubernetes sets them: a patch of at most KPATCH_MAX_BYTES, a
 * JSON patch of at most KPATCH_MAX_OPS operations whose copies add at most
 * KPATCH_MAX_COPY_BYTES; nesting at most KPATCH_MAX_DEPTH deep; a result of
 * at most KPATCH_MAX_RESULT bytes; and a bound on the work one patch may
 * cause (KPATCH_MAX_WORK node visits and element moves), so no patch costs
 * more than a few tens of milliseconds.
 *
 * Duplicate keys in an object keep the LAST value (as Go's encoding/json,
 * json.c and Kubernetes' non-strict decoding do); kpatch_duplicate() names
 * the first one for callers that refuse them (fieldValidation=Strict).
 */
#ifndef CORACLE_KPATCH_H
#define CORACLE_KPATCH_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

enum kpatch_type { KPATCH_JSON, KPATCH_MERGE, KPATCH_STRATEGIC };

#define KPATCH_MAX_BYTES (3u << 20)      /* a patch: Kubernetes' MaxRequestBodyBytes */
#define KPATCH_MAX_DOC (16u << 20)       /* the document patched */
#define KPATCH_MAX_RESULT (16u << 20)    /* the patched document */
#define KPATCH_MAX_OPS 10000             /* JSON patch operations (maxJSONPatchOperations) */
#define KPATCH_MAX_COPY_BYTES (3u << 20) /* JSONPatchMaxCopyBytes */
#define KPATCH_MAX_DEPTH 64              /* as KOBJ_MAX_DEPTH */
#define KPATCH_MAX_WORK (1u << 25)

/*
 * The patch type of a Content-Type: "application/json-patch+json" ->
 * KPATCH_JSON, "application/merge-patch+json" -> KPATCH_MERGE,
 * "application/strategic-merge-patch+json" -> KPATCH_STRATEGIC; -1 for
 * anything else (NULL too). Parameters after ';' are ignored, as
 * Kubernetes does; the type is compared ignoring case and surrounding
 * blanks (Kubernetes compares it exactly).
 */
int kpatch_type_of(const char *content_type);

/*
 * Applies patch[0..patch_len) of type t to doc[0..doc_len), the JSON text
 * of an object (neither need be NUL-terminated). desc is the object's
 * message type (coracle__v1__pod__descriptor): strategic merge finds each
 * field's list strategy and merge key through it (kmeta.h), descending into
 * nested messages by JSON key = proto field name; map<> fields are objects
 * merged key by key; messages that are scalars in JSON (Quantity,
 * IntOrString, Time) are replaced whole. desc may be NULL: then every
 * list is replaced whole, as for an unknown type. JSON and merge patches
 * ignore desc.
 *
 * Returns the patched JSON text (compact, keys in the document's order,
 * new keys after; malloc'd, NUL-terminated, its length in *out_len), or
 * NULL with:
 *   *status  400 the patch is malformed (not JSON, wrong shape, a bad
 *                directive), 422 a well-formed patch that does not apply
 *                (a missing path, a failed test, a list item without its
 *                merge key), 413 too big (see the limits above);
 *   *err     a malloc'd message in Kubernetes' wording ("add operation
 *            does not apply: doc is missing path: \"/a/b\": missing value").
 * A JSON patch's 422 is, in Kubernetes' Status, reason Invalid, message
 * "the server rejected our request due to an error in our request" and
 * *err as details.causes[0].message (type UnexpectedServerResponse).
 *
 * A merge patch that is not an object replaces the document (RFC 7386):
 * the result may then be an array or a scalar, which the caller's decoding
 * refuses.
 */
char *kpatch_apply(enum kpatch_type t, const ProtobufCMessageDescriptor *desc, const char *doc,
                   size_t doc_len, const char *patch, size_t patch_len, size_t *out_len,
                   int *status, char **err);

/*
 * For strict field validation: if the JSON text buf[0..len) is valid and
 * an object in it has a key twice, returns the first such key as a
 * malloc'd message in the wording of Kubernetes' strict decoding
 * ("duplicate field \"metadata.labels.app\""); NULL when there is none or
 * the text is not JSON (kpatch_apply reports that).
 */
char *kpatch_duplicate(const char *buf, size_t len);

#endif
