/*
 * kpatch: Kubernetes' patches on an object's JSON text: JSON patch (RFC
 * 6902), merge patch (RFC 7386) and strategic merge patch (kmeta's merge
 * keys and strategies).
 */
#ifndef CORACLE_KPATCH_H
#define CORACLE_KPATCH_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

enum kpatch_type { KPATCH_JSON, KPATCH_MERGE, KPATCH_STRATEGIC };
/* "application/json-patch+json" -> KPATCH_JSON ...; -1 if not one of the three (parameters after
 * ';' ignored) */
int kpatch_type_of(const char *content_type);
/*
 * Applies patch to doc (an object's JSON text; desc its message type, for strategic merge's
 * metadata from kmeta). Returns the patched JSON text (malloc'd, *out_len), or NULL with
 * *status (400 malformed patch, 422 a patch that does not apply, 413 too big, as Kubernetes
 * answers) and *err (malloc'd message in Kubernetes' wording).
 */
char *kpatch_apply(enum kpatch_type t, const ProtobufCMessageDescriptor *desc, const char *doc,
                   size_t doc_len, const char *patch, size_t patch_len, size_t *out_len,
                   int *status, char **err);

#endif
