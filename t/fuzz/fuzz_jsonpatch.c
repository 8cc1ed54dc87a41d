/* fuzz_jsonpatch: kpatch's JSON patch (RFC 6902); see fuzz_patch.c. */
#include "config.h"
#include "fuzz.h"
#include "kpatch.h"

int fuzz_jsonpatch_one(const uint8_t *data, size_t size)
{
    return fuzz_patch_run(KPATCH_JSON, data, size);
}

FUZZ_ENTRY(fuzz_jsonpatch_one)
