/*
 * fuzz_kobj_pb: an object's JSON straight from its protobuf bytes
 * (kobj_emit_pb_buf, what every JSON answer and watch event is written
 * with) on arbitrary bytes, against decoding them with pb_decode and
 * writing the message: the same answer (undecodable, or the same text) in
 * compact and pretty JSON. The first byte picks the kind, as fuzz_pb's
 * inputs do; a difference aborts, as a crash would.
 */
#include "config.h"
#include "buf.h"
#include "fuzz.h"
#include "kinds.h"
#include "kobj.h"
#include "pb.h"

#include <stdlib.h>
#include <string.h>

static void same_json(const struct kind *k, const uint8_t *b, size_t n, enum kobj_fmt fmt)
{
    struct buf got = {0}, want = {0};
    int rc = kobj_emit_pb_buf(&got, k, b, n, fmt);
    ProtobufCMessage *m = pb_decode(k->desc, b, n);
    if (m)
        kobj_emit_buf(&want, k, m, fmt);
    if ((rc == 0) != (m != NULL) || got.len != want.len ||
        (got.len && memcmp(got.p, want.p, got.len)))
        abort();
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    buf_free(&got);
    buf_free(&want);
}

int fuzz_kobj_pb_one(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nk = 0;
    while (kinds_all[nk])
        nk++;
    const struct kind *k = kinds_all[data[0] % nk];
    same_json(k, data + 1, size - 1, KOBJ_FMT_JSON_COMPACT);
    same_json(k, data + 1, size - 1, KOBJ_FMT_JSON);
    return 0;
}

FUZZ_ENTRY(fuzz_kobj_pb_one)
