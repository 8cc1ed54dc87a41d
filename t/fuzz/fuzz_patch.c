/*
 * fuzz_patch: what the three PATCH fuzz targets (fuzz_jsonpatch,
 * fuzz_mergepatch, fuzz_smpatch) share. An input is a document and a
 * patch: the bytes up to the first newline are the document (a pod's JSON
 * for the seeds), the rest the patch. Whatever kpatch_apply answers must
 * be consistent: a result is valid JSON that patches again (an empty merge
 * patch gives it back unchanged), a failure has a status and a message.
 */
#include "config.h"
#include "coracle.pb-c.h"
#include "fuzz.h"
#include "kpatch.h"

#include <stdlib.h>
#include <string.h>

int fuzz_patch_run(int type, const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t doc_len = nl ? (size_t)(nl - s) : size;
    const char *patch = nl ? nl + 1 : "";
    size_t patch_len = nl ? size - doc_len - 1 : 0;
    size_t out_len = 0;
    int status = 0;
    char *err = NULL;
    char *out = kpatch_apply((enum kpatch_type)type, &coracle__v1__pod__descriptor, s, doc_len,
                             patch, patch_len, &out_len, &status, &err);
    if (!out) {
        if ((status != 400 && status != 413 && status != 422) || !err)
            abort(); /* every failure is one of the documented three, with a message */
        free(err);
        return 0;
    }
    if (strlen(out) != out_len)
        abort();
    if (out[0] == '{') {
        size_t again_len = 0;
        char *again =
            kpatch_apply(KPATCH_MERGE, NULL, out, out_len, "{}", 2, &again_len, &status, &err);
        if (!again || again_len != out_len || memcmp(again, out, out_len))
            abort(); /* the result must read back as the same document */
        free(again);
    }
    free(kpatch_duplicate(patch, patch_len));
    free(out);
    return 0;
}
