/*
 * fuzz_pb: what the apiserver does with a request body before storing it:
 * protobuf decode of each kind's object, then defaults and validation
 * (src/apiserver/admit.h), and Pod Security's checks of a pod and of a
 * namespace's labels (psa.h) at every level and a few versions. The first
 * byte picks the kind. Differential as
 * well: pb_decode must answer what protobuf-c answers (NULL or the same
 * message), and pb_encode must pack what protobuf-c packs; a difference
 * aborts, as a crash would.
 */
#include "config.h"
#include "admit.h"
#include "fuzz.h"
#include "kinds.h"
#include "pb.h"
#include "psa.h"

#include <stdlib.h>
#include <string.h>

/* protobuf-c's packing of ref against pb_encode's of got; aborts if they differ. */
static void same_bytes(const ProtobufCMessage *ref, const ProtobufCMessage *got)
{
    size_t n = protobuf_c_message_get_packed_size(ref), gl;
    uint8_t *b = malloc(n + 1);
    if (!b)
        abort();
    protobuf_c_message_pack(ref, b);
    const uint8_t *p = pb_encode_scratch(got, &gl);
    if (gl != n || memcmp(p, b, n))
        abort();
    free(b);
}

/* Pod Security on a pod's spec, or a namespace's labels. */
static void pod_security(const struct kind *k, const ProtobufCMessage *m)
{
    static const int minors[] = {0, 19, 22, 35, PSA_LATEST};
    const Coracle__V1__ObjectMeta *meta = kind_meta(m);
    if (k == &kind_namespace && meta) {
        struct psa_lv priv = {PSA_PRIVILEGED, PSA_LATEST};
        struct psa_policy def = {priv, priv, priv}, p;
        char *errs = NULL;
        psa_policy_of(meta->labels, meta->n_labels, &def, &p, &errs);
        free(errs);
    }
    if (k != &kind_pod || !((const Coracle__V1__Pod *)m)->spec)
        return;
    for (int l = PSA_BASELINE; l <= PSA_RESTRICTED; l++)
        for (size_t v = 0; v < sizeof(minors) / sizeof(minors[0]); v++) {
            struct psa_lv lv = {(enum psa_level)l, minors[v]};
            char *reasons = NULL;
            free(psa_evaluate(&lv, meta, ((const Coracle__V1__Pod *)m)->spec, &reasons));
            free(reasons);
        }
}

int fuzz_pb_one(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nk = 0;
    while (kinds_all[nk])
        nk++;
    const struct kind *k = kinds_all[data[0] % nk];
    ProtobufCMessage *m = protobuf_c_message_unpack(k->desc, NULL, size - 1, data + 1);
    ProtobufCMessage *mine = pb_decode(k->desc, data + 1, size - 1);
    if (mine && !m)
        abort();
    if (!mine) {
        /* refused by pb_decode alone: only what protobuf-c cannot read back (field 0) */
        if (m) {
            size_t n = protobuf_c_message_get_packed_size(m);
            uint8_t *b = malloc(n + 1);
            if (!b)
                abort();
            protobuf_c_message_pack(m, b);
            ProtobufCMessage *r = protobuf_c_message_unpack(k->desc, NULL, n, b);
            free(b);
            if (r)
                abort();
            protobuf_c_message_free_unpacked(m, NULL);
        }
        return 0;
    }
    same_bytes(m, m);    /* the encoder */
    same_bytes(m, mine); /* the decoder */
    protobuf_c_message_free_unpacked(mine, NULL);
    char *msg = NULL;
    if (admit_validate(k, m, &msg) != 0)
        free(msg);
    msg = NULL;
    admit_defaults(k, m);
    same_bytes(m, m);
    if (admit_validate(k, m, &msg) != 0)
        free(msg);
    pod_security(k, m);
    if (k == &kind_pod) {
        const Coracle__V1__Pod *p = (const Coracle__V1__Pod *)m;
        msg = NULL;
        if (admit_pod_update(p, p, &msg) != 0)
            free(msg);
        if (p->spec)
            admit_pod_qos(p->spec);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

FUZZ_ENTRY(fuzz_pb_one)
