/*
 * fuzz_ssa: server-side apply (src/lib/kssa.h) on arbitrary pairs of pods:
 * the input is the live object, a line "---", then the applied config
 * (either may be YAML or JSON; a live part that does not parse means a
 * create). The live object's managedFields carry arbitrary field sets
 * into the FieldsV1 decoder. Apply with and without force, as kubectl
 * (last-applied handling) and as another manager, then the same objects
 * as an update and a create.
 */
#include "config.h"
#include "fuzz.h"
#include "kobj.h"
#include "kssa.h"
#include "pb.h"

#include <stdlib.h>
#include <string.h>

static ProtobufCMessage *parse(const char *p, size_t n)
{
    char *err = NULL;
    ProtobufCMessage *m = kobj_parse_msg("fuzz", p, n, &coracle__v1__pod__descriptor, &err);
    free(err);
    return m;
}

static void apply(const ProtobufCMessage *live, const ProtobufCMessage *config, const char *who,
                  int force)
{
    static const char *const reset[] = {"status", NULL};
    struct kssa_opts o = {"v1", NULL, reset};
    struct kssa_err e;
    ProtobufCMessage *out = NULL;
    if (kssa_apply(live, config, who, force, &o, 1800000000, &out, &e) == 0) {
        free(kobj_emit(&kind_pod, out, KOBJ_FMT_JSON_COMPACT));
        protobuf_c_message_free_unpacked(out, NULL);
    } else {
        kssa_err_free(&e);
    }
}

int fuzz_ssa_one(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *sep = NULL;
    for (size_t i = 0; i + 4 <= size && !sep; i++)
        if (!memcmp(s + i, "---\n", 4) && (i == 0 || s[i - 1] == '\n'))
            sep = s + i;
    if (!sep)
        return 0;
    ProtobufCMessage *live = parse(s, (size_t)(sep - s));
    ProtobufCMessage *config = parse(sep + 4, size - (size_t)(sep + 4 - s));
    if (config) {
        apply(live, config, "fuzz", 0);
        apply(live, config, "kubectl", 0);
        apply(live, config, "fuzz", 1);
        struct kssa_opts o = {"v1", NULL, NULL};
        ProtobufCMessage *nw = pb_clone(config);
        kssa_update(live, nw, "fuzz-update", &o, 1800000000);
        protobuf_c_message_free_unpacked(nw, NULL);
        nw = pb_clone(config);
        kssa_update(NULL, nw, "fuzz-create", &o, 1800000000);
        protobuf_c_message_free_unpacked(nw, NULL);
        protobuf_c_message_free_unpacked(config, NULL);
    }
    if (live)
        protobuf_c_message_free_unpacked(live, NULL);
    return 0;
}

FUZZ_ENTRY(fuzz_ssa_one)
