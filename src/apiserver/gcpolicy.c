/*
 * gcpolicy: a delete's propagationPolicy. See gcpolicy.h.
 */
#include "config.h"
#include "gcpolicy.h"
#include "util.h"

#include <string.h>

int gcpolicy_parse(const char *policy, bool has_orphan, bool orphan, enum gcpolicy *out, char **msg)
{
    *msg = NULL;
    *out = GCPOLICY_DEFAULT;
    if (policy && *policy) {
        if (!strcmp(policy, "Orphan"))
            *out = GCPOLICY_ORPHAN;
        else if (!strcmp(policy, "Background"))
            *out = GCPOLICY_BACKGROUND;
        else if (!strcmp(policy, "Foreground"))
            *out = GCPOLICY_FOREGROUND;
        else
            *msg = xasprintf("propagationPolicy: Unsupported value: \"%s\": supported values: "
                             "\"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                             policy);
        if (!*msg && has_orphan)
            *msg = xasprintf("propagationPolicy: Invalid value: \"%s\": orphanDependents and "
                             "deletionPropagation cannot be both set",
                             policy);
        return *msg ? -1 : 0;
    }
    /* orphanDependents false overrides the object's orphan finalizer, as Background does */
    if (has_orphan)
        *out = orphan ? GCPOLICY_ORPHAN : GCPOLICY_BACKGROUND;
    return 0;
}

/*
 * batch/v1 Jobs orphan their pods unless told otherwise, for the clients
 * written before the garbage collector (Kubernetes' job strategy); every
 * other kind deletes its dependents in the background.
 */
enum gcpolicy gcpolicy_default(const struct kind *k)
{
    return !strcmp(k->kind, "Job") && !strcmp(k->api_version, "batch/v1") ? GCPOLICY_ORPHAN
                                                                          : GCPOLICY_BACKGROUND;
}
