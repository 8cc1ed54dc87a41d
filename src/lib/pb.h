/*
 * pb: protobuf encoding over protobuf-c's descriptors, in one pass.
 *
 * protobuf_c_message_pack needs every length-delimited field's size before
 * its bytes: it calls get_packed_size for the whole message, then again for
 * each sub-message as it packs it, and again one level down, so a field at
 * depth d is sized d + 1 times (a pod's quantities sit at depth 5). pb
 * writes the message back to front instead: a sub-message's bytes first,
 * then its length (known by then), then its tag. One walk, no sizes.
 *
 * The bytes are exactly protobuf_c_message_pack's (field order, unknown
 * fields last, NULL strings as empty, the same varints): t/unit/test_pb
 * compares the two on random messages of every type in coracle.proto.
 * Messages with oneof, packed or proto3 (unlabelled) fields are handed to
 * protobuf-c whole; coracle.proto has none.
 */
#ifndef CORACLE_PB_H
#define CORACLE_PB_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Encodes m. Returns a pointer to its *len bytes in this thread's scratch
 * buffer: valid until the thread's next pb_encode_scratch or pb_encode, and
 * owned by pb (freed when the thread exits).
 */
const uint8_t *pb_encode_scratch(const ProtobufCMessage *m, size_t *len);

/* Encodes m into a new malloc'd buffer (the caller frees it); *len its size. */
void *pb_encode(const ProtobufCMessage *m, size_t *len);

/*
 * Decodes len bytes at buf as a message of type d, exactly as
 * protobuf_c_message_unpack(d, NULL, len, buf) would, and faster: one pass
 * over the bytes, the field found from the previous one, repeated fields
 * grown in place. Free the result with protobuf_c_message_free_unpacked.
 * Anything off the common path (bytes that do not parse, a singular
 * message given twice, repeated scalars, message types with required,
 * oneof or proto3 fields, wire types that do not match) goes to protobuf-c
 * whole, so its answer, NULL included, is protobuf-c's. One exception: a
 * field numbered 0 is refused (NULL), where protobuf-c takes it in a
 * two-byte tag and then cannot read its own packing of the result back.
 */
ProtobufCMessage *pb_decode(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len);
/* How many of this thread's pb_decode calls protobuf-c answered (tests). */
unsigned long pb_decode_fallbacks(void);

/* The size of one element of a repeated field's array, as protobuf-c lays it out. */
size_t pb_elt_size(ProtobufCType t);

/* A deep copy of m (encoded, then decoded by protobuf-c); free with
 * protobuf_c_message_free_unpacked. Aborts if it does not decode. */
ProtobufCMessage *pb_clone(const ProtobufCMessage *m);

/* True if a and b encode to the same bytes (NULL equals only NULL). */
int pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

#endif
