/*
 * wire: byte-level protobuf helpers for the apiserver's hot paths, where
 * decoding and re-encoding whole objects would waste the work LMDB already
 * did: a top-level field finder, patching metadata.resourceVersion inside
 * encoded bytes, and building framed watch events (type + object) once for
 * many streams. Varints are pb's (pb.h); output of unknown size goes into a
 * struct buf (buf.h), whose writers include protobuf's.
 */
#ifndef CORACLE_WIRE_H
#define CORACLE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/*
 * Finds the last top-level length-delimited field number f in buf.
 * Returns 1 and *val and *vlen (pointing into buf), 0 if absent, -1 if malformed.
 */
int wire_find(const void *buf, size_t len, uint32_t f, const uint8_t **val, size_t *vlen);

/*
 * A copy of an encoded object (metadata as field 1) whose
 * metadata.resourceVersion (field 6) is set to rev. malloc'd; *out_len.
 * Fields stay in protobuf-c's order (metadata first, 6 between 5 and 7), so
 * the copy of a packed object is byte-equal to packing it with the revision
 * set. rev 0 leaves the field out (objects as etcd keeps them). Returns
 * NULL if buf is malformed.
 */
void *wire_set_rv(const void *buf, size_t len, uint64_t rev, size_t *out_len);
/* metadata.resourceVersion of an encoded object (metadata as field 1), 0 if absent or not a number.
 */
uint64_t wire_get_rv(const void *buf, size_t len);

/*
 * The metadata names of an encoded object (metadata as field 1): name (1),
 * generateName (2) and namespace (3), as a protobuf decoder reads them (the
 * last of repeated fields wins; text up to a NUL). malloc'd copies, NULL if
 * absent. Returns 0, or -1 if buf is malformed (nothing set).
 */
int wire_meta_names(const void *buf, size_t len, char **name, char **generate_name, char **ns);

/*
 * A whole gRPC-framed watch event message {1: type, 2: object} in an rbuf
 * (refs = 1), ready for h2s_call_send_framed.
 */
rbuf_t *wire_watch_frame(const char *type, const void *obj, size_t len);
/* A framed BOOKMARK event: object = {metadata{resourceVersion: rev}}. */
rbuf_t *wire_bookmark_frame(uint64_t rev);

#endif
