/* fuzz_mergepatch: kpatch's merge patch (RFC 7386); see fuzz_patch.c. */
#include "config.h"
#include "fuzz.h"
#include "kpatch.h"

int fuzz_mergepatch_one(const uint8_t *data, size_t size)
{
    return fuzz_patch_run(KPATCH_MERGE, data, size);
}

FUZZ_ENTRY(fuzz_mergepatch_one)
