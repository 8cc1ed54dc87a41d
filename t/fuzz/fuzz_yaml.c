/*
 * fuzz_yaml: coraclectl's YAML/JSON-to-protobuf mapper (src/ctl/yaml_pb.h)
 * on arbitrary manifests (YAML bombs, deep nesting, aliases, bad scalars);
 * what parses is emitted back as YAML and JSON.
 */
#include "config.h"
#include "fuzz.h"
#include "yaml_pb.h"

#include <stdlib.h>

int fuzz_yaml_one(const uint8_t *data, size_t size)
{
    struct ctl_objs objs = {0};
    char *err = NULL;
    if (ctl_yaml_parse("fuzz.yaml", (const char *)data, size, &objs, &err) == 0) {
        for (size_t i = 0; i < objs.n; i++) {
            free(ctl_emit(objs.v[i].kind, objs.v[i].msg, CTL_FMT_YAML));
            free(ctl_emit(objs.v[i].kind, objs.v[i].msg, CTL_FMT_JSON));
        }
        ctl_objs_free(&objs);
    } else {
        free(err);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_yaml_one)
