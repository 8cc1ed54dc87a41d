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

/*
 * d's field numbered id, or NULL. protobuf-c lists a descriptor's fields by
 * number and encoded fields come in that order, so the search starts at
 * *hint (the previous match; 0 at first), which it updates.
 */
const ProtobufCFieldDescriptor *pb_field_by_id(const ProtobufCMessageDescriptor *d, uint32_t id,
                                               unsigned *hint);

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
/*
 * Whether pb_decode decodes messages of type d itself: no required, oneof,
 * packed or proto3 fields, fields listed by number. (Remembered per thread.)
 */
int pb_plain_type(const ProtobufCMessageDescriptor *d);
/* How many of this thread's pb_decode calls protobuf-c answered (tests). */
unsigned long pb_decode_fallbacks(void);

/* The size of one element of a repeated field's array, as protobuf-c lays it out. */
size_t pb_elt_size(ProtobufCType t);

/* A deep copy of m (encoded, then decoded by protobuf-c); free with
 * protobuf_c_message_free_unpacked. Aborts if it does not decode. */
ProtobufCMessage *pb_clone(const ProtobufCMessage *m);
/*
 * A deep copy of m in one allocation (its sub-messages, strings, bytes,
 * arrays and unknown fields laid out after it): free it with free(), never
 * protobuf_c_message_free_unpacked, and do not grow its arrays or replace
 * its strings in place. For caches that hold many objects for a long time
 * (the controller manager's informers): one block per object instead of one
 * per part saves the allocator's rounding and bookkeeping.
 */
ProtobufCMessage *pb_compact(const ProtobufCMessage *m);

/* True if a and b encode to the same bytes (NULL equals only NULL). */
int pb_equal(const ProtobufCMessage *a, const ProtobufCMessage *b);

/* ---- varints: the one implementation, for pb and everything writing protobuf by hand ---- */

#define PB_VARINT_MAX 10 /* bytes of the longest varint (a 64-bit value) */

/* The bytes v takes as a varint. */
static inline size_t pb_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v as a varint at p (room for PB_VARINT_MAX bytes); returns the bytes written. */
static inline size_t pb_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/*
 * Reads a varint of at most PB_VARINT_MAX bytes at *p (before end) into *v
 * and moves *p past it. Returns 0, or -1 (nothing moved) if it runs past
 * end or is longer.
 */
static inline int pb_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t r = 0;
    for (unsigned i = 0; i < PB_VARINT_MAX && q < end; i++) {
        uint8_t b = *q++;
        r |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *p = q;
            *v = r;
            return 0;
        }
    }
    return -1;
}

#endif
