/*
 * podref: the ConfigMaps and Secrets a pod's spec refers to (volumes,
 * env valueFrom, envFrom, of its containers and init containers), as
 * Kubernetes' VisitPodConfigmapNames and VisitPodSecretNames find them.
 * The kubelet watches what its pods use; the apiserver's node restriction
 * lets a node read only what the pods bound to it use.
 */
#ifndef CORACLE_PODREF_H
#define CORACLE_PODREF_H

#include <stdbool.h>

#include "coracle.pb-c.h"

enum podref_kind {
    PODREF_CONFIGMAP,
    PODREF_SECRET,
};

/*
 * Calls fn(kind, name, arg) for each reference of spec, in spec order; a
 * name may come more than once. Stops early and returns fn's value when it
 * is non-zero; 0 after the last. name is borrowed from spec.
 */
int podref_each(const Coracle__V1__PodSpec *spec,
                int (*fn)(enum podref_kind kind, const char *name, void *arg), void *arg);

/* Does spec refer to the ConfigMap (or Secret) name? */
bool podref_uses(const Coracle__V1__PodSpec *spec, enum podref_kind kind, const char *name);

#endif
