/*
 * fuzz_yaml: the YAML/JSON-to-protobuf mapper (src/lib/kobj.h)
 * on arbitrary manifests (YAML bombs, deep nesting, aliases, bad scalars);
 * what parses is emitted back as YAML and JSON.
 */
#include "config.h"
#include "fuzz.h"
#include "kobj.h"

#include <stdlib.h>

int fuzz_yaml_one(const uint8_t *data, size_t size)
{
    struct kobjs objs = {0};
    char *err = NULL;
    if (kobj_parse("fuzz.yaml", (const char *)data, size, &objs, &err) == 0) {
        for (size_t i = 0; i < objs.n; i++) {
            free(kobj_emit(objs.v[i].kind, objs.v[i].msg, KOBJ_FMT_YAML));
            free(kobj_emit(objs.v[i].kind, objs.v[i].msg, KOBJ_FMT_JSON));
        }
        kobjs_free(&objs);
    } else {
        free(err);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_yaml_one)
