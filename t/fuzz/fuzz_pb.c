/*
 * fuzz_pb: what the apiserver does with a request body before storing it:
 * protobuf decode of each kind's object, then defaults and validation
 * (src/apiserver/admit.h). The first byte picks the kind.
 */
#include "config.h"
#include "admit.h"
#include "fuzz.h"
#include "kinds.h"

#include <stdlib.h>

int fuzz_pb_one(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t nk = 0;
    while (kinds_all[nk])
        nk++;
    const struct kind *k = kinds_all[data[0] % nk];
    ProtobufCMessage *m = protobuf_c_message_unpack(k->desc, NULL, size - 1, data + 1);
    if (!m)
        return 0;
    char *msg = NULL;
    if (admit_validate(k, m, &msg) != 0)
        free(msg);
    msg = NULL;
    admit_defaults(k, m);
    if (admit_validate(k, m, &msg) != 0)
        free(msg);
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
