/*
 * kpatch_stub: kpatch.h's interface without the patch algorithms: it knows
 * the three content types and answers every patch 415, so the REST API's
 * PATCH path (rest_write.c) is complete up to the patch itself. Replaced
 * by kpatch.c.
 */
#include "config.h"
#include "kpatch.h"
#include "util.h"

#include <string.h>

int kpatch_type_of(const char *content_type)
{
    static const char *const types[] = {"application/json-patch+json",
                                        "application/merge-patch+json",
                                        "application/strategic-merge-patch+json"};
    if (!content_type)
        return -1;
    size_t n = strcspn(content_type, ";");
    while (n && content_type[n - 1] == ' ')
        n--;
    for (size_t i = 0; i < ARRAY_SIZE(types); i++)
        if (strlen(types[i]) == n && !strncasecmp(content_type, types[i], n))
            return (int)i;
    return -1;
}

char *kpatch_apply(enum kpatch_type t, const ProtobufCMessageDescriptor *desc, const char *doc,
                   size_t doc_len, const char *patch, size_t patch_len, size_t *out_len,
                   int *status, char **err)
{
    *status = 415;
    *err = xstrdup("patches are not applied by this server yet");
    return NULL;
}
