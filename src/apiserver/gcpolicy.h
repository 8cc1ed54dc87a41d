/*
 * gcpolicy: a delete's propagationPolicy (Kubernetes' DeleteOptions), read
 * from what a client sent (gRPC's DeleteRequest, the REST API's
 * DeleteOptions) and each kind's default. apply.c turns it into the
 * finalizers the garbage collector (in the controller manager) acts on:
 * `orphan` (orphan the dependents, then remove it) or `foregroundDeletion`
 * (delete the dependents first, then remove it); Background deletes at once
 * and leaves the dependents to be collected. Pure functions.
 */
#ifndef CORACLE_GCPOLICY_H
#define CORACLE_GCPOLICY_H

#include <stdbool.h>

#include "kinds.h"

enum gcpolicy {
    GCPOLICY_DEFAULT, /* unset: the object's own orphan or foregroundDeletion
                       * finalizer, else the kind's default (gcpolicy_default) */
    GCPOLICY_ORPHAN,
    GCPOLICY_BACKGROUND,
    GCPOLICY_FOREGROUND,
};

/*
 * The policy that propagationPolicy ("Orphan", "Background", "Foreground";
 * NULL or "": GCPOLICY_DEFAULT) and orphanDependents (the deprecated bool;
 * has_orphan: whether it was sent) ask for, into *out. Returns 0, or -1
 * with *msg (malloc'd) as Kubernetes' ValidateDeleteOptions says it, the
 * text after `DeleteOptions "x" is invalid: `.
 */
int gcpolicy_parse(const char *policy, bool has_orphan, bool orphan, enum gcpolicy *out,
                   char **msg);

/* The kind's DefaultGarbageCollectionPolicy: GCPOLICY_ORPHAN or GCPOLICY_BACKGROUND. */
enum gcpolicy gcpolicy_default(const struct kind *k);

#endif
