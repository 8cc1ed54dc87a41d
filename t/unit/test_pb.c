/*
 * test_pb: pb_encode writes exactly protobuf_c_message_pack's bytes, and
 * pb_decode reads exactly what protobuf_c_message_unpack reads, for random
 * messages of every type reachable from coracle.proto's top-level messages
 * (every field present or absent, empty strings, negative and large
 * numbers, repeated fields of 0-3 elements, unknown fields), and for those
 * bytes mutated (flipped, cut, spliced): the same answer, NULL or not.
 */
#include "config.h"
#include "tap.h"

#include "coracle.pb-c.h"
#include "pb.h"
#include "rndmsg.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static int same_as_protobuf_c(const ProtobufCMessage *m, const char *what)
{
    size_t want_len = protobuf_c_message_get_packed_size(m), len;
    uint8_t *want = xmalloc(want_len + 1);
    protobuf_c_message_pack(m, want);
    uint8_t *got = pb_encode(m, &len);
    int same = len == want_len && !memcmp(got, want, len);
    if (!same)
        diag("%s: pb_encode gave %zu bytes, protobuf-c %zu", what, len, want_len);
    size_t slen;
    const uint8_t *s = pb_encode_scratch(m, &slen);
    same = same && slen == len && !memcmp(s, want, len);
    free(got);
    free(want);
    return same;
}

/* 1 if protobuf-c reads back its own packing of m. */
static int pbc_rereads(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = xmalloc(n + 1);
    protobuf_c_message_pack(m, b);
    ProtobufCMessage *r = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
    free(b);
    if (r)
        protobuf_c_message_free_unpacked(r, NULL);
    return r != NULL;
}

/*
 * Decodes b both ways; 1 if the answers are the same (both NULL, or packing
 * equal), or if pb_decode refused what protobuf-c took but cannot read back.
 */
static int same_decode(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t n)
{
    ProtobufCMessage *want = protobuf_c_message_unpack(d, NULL, n, b);
    ProtobufCMessage *got = pb_decode(d, b, n);
    int same;
    if (!want || !got) {
        same = (!want && !got) || (want && !pbc_rereads(want));
    } else {
        size_t wl = protobuf_c_message_get_packed_size(want);
        size_t gl = protobuf_c_message_get_packed_size(got);
        uint8_t *wb = xmalloc(wl + 1), *gb = xmalloc(gl + 1);
        protobuf_c_message_pack(want, wb);
        protobuf_c_message_pack(got, gb);
        same = wl == gl && !memcmp(wb, gb, wl);
        free(wb);
        free(gb);
    }
    if (want)
        protobuf_c_message_free_unpacked(want, NULL);
    if (got)
        protobuf_c_message_free_unpacked(got, NULL);
    return same;
}

static void test_decode(const ProtobufCMessageDescriptor *const *roots, size_t nroots)
{
    for (size_t r = 0; r < nroots; r++) {
        int same = 0, n = 300, msame = 0, mn = 0, accepted = 0;
        unsigned long fb = 0;
        for (int i = 0; i < n; i++) {
            ProtobufCMessage *m = rnd_msg(roots[r], 0);
            size_t len = protobuf_c_message_get_packed_size(m), cap = 2 * len + 64;
            uint8_t *b = xmalloc(cap);
            protobuf_c_message_pack(m, b);
            protobuf_c_message_free_unpacked(m, NULL);
            unsigned long f0 = pb_decode_fallbacks();
            same += same_decode(roots[r], b, len);
            fb += pb_decode_fallbacks() - f0;
            for (int j = 0; j < 10; j++) {
                size_t ml = len;
                for (int k = 1 + (int)(rnd() % 3); k > 0; k--)
                    ml = mutate(b, ml, cap);
                ProtobufCMessage *t = protobuf_c_message_unpack(roots[r], NULL, ml, b);
                accepted += t != NULL;
                if (t)
                    protobuf_c_message_free_unpacked(t, NULL);
                msame += same_decode(roots[r], b, ml);
                mn++;
            }
            free(b);
        }
        ok(same == n && fb == 0, "%s: %d of %d random messages decode the same, %lu by protobuf-c",
           roots[r]->name, same, n, fb);
        ok(msame == mn, "%s: %d of %d mutated ones the same (%d accepted)", roots[r]->name, msame,
           mn, accepted);
    }
}

int main(int argc, char **argv)
{
    /* another seed (a longer hunt: for s in $(seq 100); do test_pb $s; done) */
    if (argc > 1)
        rng ^= strtoull(argv[1], NULL, 10) * 0x2545f4914f6cdd1dull;
    const ProtobufCMessageDescriptor *roots[] = {
        &coracle__v1__pod__descriptor,
        &coracle__v1__pod_list__descriptor,
        &coracle__v1__node__descriptor,
        &coracle__v1__node_list__descriptor,
        &coracle__v1__event__descriptor,
        &coracle__v1__event_list__descriptor,
        &coracle__v1__lease__descriptor,
        &coracle__v1__lease_list__descriptor,
        &coracle__v1__binding__descriptor,
        &coracle__v1__get_request__descriptor,
        &coracle__v1__list_request__descriptor,
        &coracle__v1__delete_request__descriptor,
        &coracle__v1__pod_watch_event__descriptor,
        &coracle__v1__node_watch_event__descriptor,
        &coracle__v1__event_watch_event__descriptor,
        &coracle__v1__lease_watch_event__descriptor,
        &coracle__v1__pod_log_request__descriptor,
        &coracle__v1__log_chunk__descriptor,
        &coracle__v1__exec_request__descriptor,
        &coracle__v1__exec_input__descriptor,
        &coracle__v1__exec_output__descriptor,
        &coracle__v1__tunnel_frame__descriptor,
    };
    size_t nroots = sizeof(roots) / sizeof(roots[0]);

    /* the empty message of each type */
    int good = 0;
    for (size_t r = 0; r < nroots; r++) {
        ProtobufCMessage *m = xmalloc(roots[r]->sizeof_message);
        roots[r]->message_init(m);
        good += same_as_protobuf_c(m, roots[r]->name);
        free(m);
    }
    is_int(good, nroots, "empty messages: the same bytes");

    /* random ones, 300 of each type */
    for (size_t r = 0; r < nroots; r++) {
        int same = 0, n = 300;
        size_t bytes = 0;
        for (int i = 0; i < n; i++) {
            ProtobufCMessage *m = rnd_msg(roots[r], 0);
            bytes += protobuf_c_message_get_packed_size(m);
            same += same_as_protobuf_c(m, roots[r]->name);
            protobuf_c_message_free_unpacked(m, NULL);
        }
        ok(same == n, "%s: %d of %d random messages (%zu bytes) the same", roots[r]->name, same, n,
           bytes);
    }

    /* unknown fields (a newer client's) are kept, after the known ones */
    int same = 0, n = 200, unknown = 0;
    for (int i = 0; i < n; i++) {
        ProtobufCMessage *m = rnd_msg(&coracle__v1__pod__descriptor, 0);
        size_t len = protobuf_c_message_get_packed_size(m);
        uint8_t *b = xmalloc(len + 64);
        protobuf_c_message_pack(m, b);
        protobuf_c_message_free_unpacked(m, NULL);
        /* field 1000 varint, 1001 length-delimited "xyz", 1002 fixed32, 1003 fixed64 */
        static const uint8_t extra[] = {0xc0, 0x3e, 0x96, 0x01, 0xca, 0x3e, 3, 'x',  'y',
                                        'z',  0xd5, 0x3e, 1,    2,    3,    4, 0xd9, 0x3e,
                                        1,    2,    3,    4,    5,    6,    7, 8};
        memcpy(b + len, extra, sizeof(extra));
        m = protobuf_c_message_unpack(&coracle__v1__pod__descriptor, NULL, len + sizeof(extra), b);
        free(b);
        if (!m)
            continue;
        unknown += m->n_unknown_fields == 4;
        same += same_as_protobuf_c(m, "pod with unknown fields");
        protobuf_c_message_free_unpacked(m, NULL);
    }
    ok(same == n && unknown == n, "unknown fields: %d of %d the same (%d with all 4 kept)", same, n,
       unknown);

    test_decode(roots, nroots);

    /* pb_compact: one block that encodes to the same bytes, freed with free() */
    for (size_t r = 0; r < nroots; r++) {
        int csame = 0, cn = 100;
        for (int i = 0; i < cn; i++) {
            ProtobufCMessage *m = rnd_msg(roots[r], 0);
            ProtobufCMessage *c = pb_compact(m);
            csame += pb_equal(m, c);
            protobuf_c_message_free_unpacked(m, NULL);
            free(c);
        }
        ok(csame == cn, "%s: %d of %d compact copies encode the same", roots[r]->name, csame, cn);
    }
    {
        static const uint8_t withunknown[] = {0x0a, 0x05, 0x0a, 0x03, 'w', 'e', 'b',
                                              0xca, 0x3e, 3,    'x',  'y', 'z'};
        ProtobufCMessage *m = protobuf_c_message_unpack(&coracle__v1__pod__descriptor, NULL,
                                                        sizeof(withunknown), withunknown);
        ProtobufCMessage *c = pb_compact(m);
        size_t len;
        const uint8_t *b = pb_encode_scratch(c, &len);
        ok(c->n_unknown_fields == 1 && len == sizeof(withunknown) && !memcmp(b, withunknown, len),
           "a compact copy keeps unknown fields");
        protobuf_c_message_free_unpacked(m, NULL);
        free(c);
    }

    /* unknown fields and a message given twice (merged) decode the same */
    static const uint8_t twice[] = {0x0a, 0x05, 0x0a, 0x03, 'w', 'e', 'b', 0x0a, 0x09, 0x1a, 0x07,
                                    'd',  'e',  'f',  'a',  'u', 'l', 't', 0xc0, 0x3e, 0x01};
    ok(same_decode(&coracle__v1__pod__descriptor, twice, sizeof(twice)),
       "metadata given twice: merged as protobuf-c merges it");

    /* field number 0, spelled in two bytes: protobuf-c takes it and cannot read back its packing */
    static const uint8_t zero[] = {0x85, 0x00, 1, 2, 3, 4};
    ProtobufCMessage *z =
        protobuf_c_message_unpack(&coracle__v1__pod__descriptor, NULL, sizeof(zero), zero);
    ok(z && !pbc_rereads(z) && !pb_decode(&coracle__v1__pod__descriptor, zero, sizeof(zero)),
       "field number 0: protobuf-c takes it and cannot read it back; pb_decode refuses it");
    if (z)
        protobuf_c_message_free_unpacked(z, NULL);

    /* a message larger than the scratch buffer's first size grows it, the same bytes */
    Coracle__V1__LogChunk big = CORACLE__V1__LOG_CHUNK__INIT;
    size_t blen = 1 << 20;
    big.data.data = xmalloc(blen);
    memset(big.data.data, 'q', blen);
    big.data.len = blen;
    big.has_data = 1;
    ok(same_as_protobuf_c(&big.base, "1 MiB log chunk"), "1 MiB bytes field: the same bytes");
    free(big.data.data);
    return done_testing();
}
