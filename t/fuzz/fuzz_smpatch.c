/* fuzz_smpatch: kpatch's strategic merge patch, on a pod; see fuzz_patch.c. */
#include "config.h"
#include "fuzz.h"
#include "kpatch.h"

int fuzz_smpatch_one(const uint8_t *data, size_t size)
{
    return fuzz_patch_run(KPATCH_STRATEGIC, data, size);
}

FUZZ_ENTRY(fuzz_smpatch_one)
