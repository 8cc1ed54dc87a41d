/*
 * fuzz_kobj_json: kobj's JSON reader (src/lib/kobj_json.c) on arbitrary
 * bytes, against the YAML reader it stands in for. kobj_parse reads input
 * that looks like JSON with kobj_json and the same bytes after a "---"
 * line only with libyaml, so the two readers are compared on every input:
 * where libyaml takes it, the JSON path must give the same objects; where
 * both fail with the same message, at the same line (one less: the
 * "---") and column. The JSON reader may take what libyaml refuses
 * (surrogate pairs, DEL and C1 controls in strings), and NEL, LS and PS
 * inside strings are line breaks that YAML folds: inputs holding those
 * are not compared.
 *
 * The same input is also read straight into messages (kobj_direct.c, the
 * fast path of kobj_parse_msg_opts) of a few types: whatever it takes,
 * the general path must take too, without a warning, into an equal
 * message with the same apiVersion and kind.
 */
#include "config.h"
#include "fuzz.h"
#include "kobj_int.h"
#include "pb.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "name:LINE:COL: rest" -> LINE, COL and rest; -1 if not so. */
static int err_place(const char *e, long *line, long *col, const char **rest)
{
    const char *p = strchr(e, ':');
    char *end;
    if (!p)
        return -1;
    *line = strtol(p + 1, &end, 10);
    if (*end != ':')
        return -1;
    *col = strtol(end + 1, &end, 10);
    if (*end != ':')
        return -1;
    *rest = end;
    return 0;
}

static int has_yaml_breaks(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if ((d[i] == 0xc2 && d[i + 1] == 0x85) ||
            (d[i] == 0xe2 && i + 2 < n && d[i + 1] == 0x80 && (d[i + 2] & 0xfe) == 0xa8))
            return 1;
    return 0;
}

/* json_took: kobj_json read the input (else both paths were libyaml's, and its marks). */
static void compare(const uint8_t *data, size_t size, int json_took)
{
    struct kobjs a = {0}, b = {0};
    char *ea = NULL, *eb = NULL;
    char *y = xmalloc(size + 4);
    memcpy(y, "---\n", 4);
    memcpy(y + 4, data, size);
    int ra = kobj_parse("f", (const char *)data, size, &a, &ea);
    int rb = kobj_parse("f", y, size + 4, &b, &eb);
    if (rb == 0 && ra != 0) {
        fprintf(stderr, "the JSON path refused what YAML takes: %s\n", ea);
        abort();
    }
    if (ra == 0 && rb == 0) {
        if (a.n != b.n)
            abort();
        for (size_t i = 0; i < a.n; i++)
            if (a.v[i].kind != b.v[i].kind || !pb_equal(a.v[i].msg, b.v[i].msg)) {
                fprintf(stderr, "object %zu differs between the JSON and the YAML path\n", i);
                abort();
            }
    }
    long la, ca, lb, cb;
    const char *ta, *tb;
    if (json_took && ra < 0 && rb < 0 && err_place(ea, &la, &ca, &ta) == 0 &&
        err_place(eb, &lb, &cb, &tb) == 0 && !strcmp(ta, tb) && (la != lb - 1 || ca != cb)) {
        fprintf(stderr, "same error, another place:\n  json: %s\n  yaml: %s\n", ea, eb);
        abort();
    }
    free(ea);
    free(eb);
    kobjs_free(&a);
    kobjs_free(&b);
    free(y);
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/*
 * The fast path against the general one, for message type d. Read three
 * times: a top-level part seen twice is kept with its message, so the
 * third read copies what the second read (kobj_direct.c, seen_parts),
 * and the three must be one message.
 */
static void compare_direct(const uint8_t *data, size_t size, const ProtobufCMessageDescriptor *d)
{
    struct kobj_opts oa = {KOBJ_FIELDS_WARN, NULL, 0, NULL, NULL};
    struct kobj_opts ob = {KOBJ_FIELDS_WARN, NULL, 0, NULL, NULL};
    ProtobufCMessage *a = kobj_json_direct((const char *)data, size, d, &oa);
    for (int i = 0; i < 2; i++) {
        struct kobj_opts oc = {KOBJ_FIELDS_WARN, NULL, 0, NULL, NULL};
        ProtobufCMessage *c = kobj_json_direct((const char *)data, size, d, &oc);
        if (!a != !c || (a && (!pb_equal(a, c) || !same_str(oa.api_version, oc.api_version) ||
                               !same_str(oa.kind, oc.kind)))) {
            fprintf(stderr, "the direct reader read one text two ways (%s)\n", d->name);
            abort();
        }
        if (c)
            protobuf_c_message_free_unpacked(c, NULL);
        kobj_opts_free(&oc);
    }
    if (!a) {
        if (oa.api_version || oa.kind || oa.n_warnings)
            abort(); /* o untouched when it gives up */
        return;
    }
    char *err = NULL;
    ProtobufCMessage *b = kobj_parse_msg_tree("f", (const char *)data, size, d, &ob, &err);
    if (!b || ob.n_warnings || !pb_equal(a, b) || !same_str(oa.api_version, ob.api_version) ||
        !same_str(oa.kind, ob.kind)) {
        fprintf(stderr, "the direct reader and the tree disagree (%s): %s\n", d->name,
                err ? err
                : b ? "another message"
                    : "?");
        abort();
    }
    protobuf_c_message_free_unpacked(a, NULL);
    protobuf_c_message_free_unpacked(b, NULL);
    kobj_opts_free(&oa);
    kobj_opts_free(&ob);
    free(err);
}

int fuzz_kobj_json_one(const uint8_t *data, size_t size)
{
    static const ProtobufCMessageDescriptor *const types[] = {
        &coracle__v1__pod__descriptor,
        &coracle__v1__deployment__descriptor,
        &coracle__v1__service__descriptor,
        &coracle__v1__object_meta__descriptor,
    };
    for (size_t i = 0; i < ARRAY_SIZE(types); i++)
        compare_direct(data, size, types[i]);
    struct ynode *t;
    int took = kobj_json_load((const char *)data, size, &t) == 0;
    if (took)
        kobj_ynode_free(t);
    if (kobj_json_looks((const char *)data, size) && !has_yaml_breaks(data, size))
        compare(data, size, took);
    return 0;
}

FUZZ_ENTRY(fuzz_kobj_json_one)
