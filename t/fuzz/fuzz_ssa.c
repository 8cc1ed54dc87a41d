/*
 * fuzz_ssa: server-side apply (src/lib/kssa.h) on arbitrary pairs of pods:
 * the input is the live object, a line "---", then the applied config
 * (either may be YAML or JSON; a live part that does not parse means a
 * create). The live object's managedFields carry arbitrary field sets
 * into the FieldsV1 decoder. Apply with and without force, as kubectl
 * (last-applied handling) and as another manager, then the same objects
 * as an update and a create; a create's entry through the cache by shape
 * (a miss, then a hit) must be the general path's, and two objects of one
 * shape digest must have one entry. An input without the separator is FieldsV1
 * bytes as a gRPC client may store them: what reads as a field set must
 * write back to bytes that read as the same set.
 */
#include "config.h"
#include "fuzz.h"
#include "kobj.h"
#include "buf.h"
#include "kssa_int.h"
#include "pb.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* FieldsV1 bytes: read, write, read again, write again: the same bytes. */
static void fields_v1(const uint8_t *data, size_t size)
{
    struct arena a = {0};
    char *err = NULL;
    struct set *s = set_from_v1(&a, data, size, &err);
    if (s) {
        struct buf b1 = {0}, b2 = {0};
        set_to_json(&b1, s);
        struct set *s2 = set_from_v1(&a, b1.p, b1.len, &err);
        if (!s2)
            fatal("fuzz_ssa: %s does not read back: %s", b1.p, err);
        set_to_json(&b2, s2);
        if (b1.len != b2.len || memcmp(b1.p, b2.p, b1.len))
            fatal("fuzz_ssa: %s wrote back as %s", b1.p, b2.p);
        buf_free(&b1);
        buf_free(&b2);
    }
    free(err);
    arena_free(&a);
}

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

/* The FieldsV1 bytes of m's create entry (cached or not), malloc'd ("" if none). */
static char *create_entry(const ProtobufCMessage *m, int cached)
{
    static const char *const reset[] = {"status", NULL};
    struct kssa_opts o = {"v1", NULL, reset};
    ProtobufCMessage *c = pb_clone(m);
    Coracle__V1__ObjectMeta *meta = kind_meta(c);
    for (size_t i = 0; meta && i < meta->n_managedfields; i++)
        protobuf_c_message_free_unpacked(&meta->managedfields[i]->base, NULL);
    if (meta)
        meta->n_managedfields = 0;
    if (cached)
        kssa_update(NULL, c, "fuzz-create", &o, 1800000000);
    else
        kssa_update_general(NULL, c, "fuzz-create", &o, 1800000000);
    meta = kind_meta(c);
    const ProtobufCBinaryData *raw =
        meta && meta->n_managedfields && meta->managedfields[0]->fieldsv1
            ? &meta->managedfields[0]->fieldsv1->raw
            : NULL;
    char *s = raw ? xstrndup((const char *)raw->data, raw->len) : xstrdup("");
    protobuf_c_message_free_unpacked(c, NULL);
    return s;
}

static void create_by_shape(const ProtobufCMessage *live, const ProtobufCMessage *config)
{
    char *want = create_entry(config, 0);
    for (int i = 0; i < 2; i++) {
        char *got = create_entry(config, 1);
        if (strcmp(got, want))
            fatal("fuzz_ssa: the cache by shape made %s, the general path %s", got, want);
        free(got);
    }
    uint64_t a[2], b[2];
    walk_shape(config, a);
    if (live && live->descriptor == config->descriptor) {
        walk_shape(live, b);
        char *other = create_entry(live, 0);
        if (a[0] == b[0] && a[1] == b[1] && strcmp(other, want))
            fatal("fuzz_ssa: one shape digest, entries %s and %s", want, other);
        free(other);
    }
    free(want);
}

int fuzz_ssa_one(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data, *sep = NULL;
    for (size_t i = 0; i + 4 <= size && !sep; i++)
        if (!memcmp(s + i, "---\n", 4) && (i == 0 || s[i - 1] == '\n'))
            sep = s + i;
    if (!sep) {
        fields_v1(data, size);
        return 0;
    }
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
        create_by_shape(live, config);
        protobuf_c_message_free_unpacked(config, NULL);
    }
    if (live)
        protobuf_c_message_free_unpacked(live, NULL);
    return 0;
}

FUZZ_ENTRY(fuzz_ssa_one)
