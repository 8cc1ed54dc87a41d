/*
 * podfield: the values env valueFrom reads out of a pod (fieldRef,
 * resourceFieldRef), as Kubernetes computes them. Pure functions.
 */
#ifndef CORACLE_PODFIELD_H
#define CORACLE_PODFIELD_H

#include <stdint.h>

#include "coracle.pb-c.h"

/*
 * fieldRef: the pod's field path (metadata.name, metadata.namespace,
 * metadata.uid, metadata.labels['k'], metadata.annotations['k'],
 * metadata.labels, metadata.annotations, spec.nodeName,
 * spec.serviceAccountName, status.podIP, status.hostIP) into *out
 * (malloc'd); pod_ip and host_ip (may be NULL: "") are the node's view.
 * 0, or -1 with *err (malloc'd, Kubernetes' words).
 */
int podfield_get(const Coracle__V1__Pod *pod, const char *path, const char *pod_ip,
                 const char *host_ip, char **out, char **err);

/*
 * resourceFieldRef of container c: resource limits.cpu, limits.memory,
 * requests.cpu or requests.memory over divisor (NULL or "": "1"), rounded
 * up as Kubernetes does, into *out (malloc'd). Requests left out are the
 * limits; limits left out are the node's allocatable: node_cpu_milli
 * (milli-cores) and node_mem (bytes), 0 when unknown. 0, or -1 with *err.
 */
int podfield_resource(const Coracle__V1__Container *c, const char *resource, const char *divisor,
                      int64_t node_cpu_milli, int64_t node_mem, char **out, char **err);

#endif
