/*
 * svcalloc: the addresses Services are given, as kube-apiserver's
 * allocators: a cluster IP from --service-cluster-ip-range and node ports
 * from --service-node-port-range, automatic or as requested, freed when the
 * Service lets them go.
 *
 * Each address held is a record of its own in the store (an IPAddress whose
 * parentRef names the Service: key "ipaddresses//<ip>", or
 * "servicenodeports//<port>"), created only where the key is absent: the
 * store's single-key compare-and-swap (LMDB's write transaction, etcd's
 * transaction on the key's revision) makes the record the lock, so no
 * address is handed out twice, across restarts and across apiservers on one
 * etcd. See doc/DESIGN.md, "Service addresses".
 *
 * Loop thread only.
 */
#ifndef CORACLE_SVCALLOC_H
#define CORACLE_SVCALLOC_H

#include <stdint.h>

#include "coracle.pb-c.h"
#include "store.h"

typedef struct svcalloc svcalloc_t;

/* The ranges, parsed by svcalloc_parse_* */
struct svcalloc_config {
    uint32_t net;  /* the cluster IP range's first address, host order */
    int prefix;    /* its prefix length, 8..30 */
    int port_base; /* the node port range, inclusive */
    int port_last;
};

/* "10.96.0.0/12" into cfg; 0, or -1 with *err (malloc'd) */
int svcalloc_parse_cidr(struct svcalloc_config *cfg, const char *s, char **err);
/* "30000-32767" into cfg; 0, or -1 with *err (malloc'd) */
int svcalloc_parse_ports(struct svcalloc_config *cfg, const char *s, char **err);
/* The range's first usable IP (the `kubernetes` Service's), "10.96.0.1", in buf. */
void svcalloc_first_ip(const struct svcalloc_config *cfg, char buf[16]);

/* st must outlive the allocator; cfg is copied. */
svcalloc_t *svcalloc_new(store_t *st, const struct svcalloc_config *cfg);
/* Call after store_close (no claim in flight). */
void svcalloc_free(svcalloc_t *al);

/* The records one Service write took (owned by the op that writes it). */
struct svc_claim;

/*
 * Takes what svc (defaulted, valid) needs and old (the stored Service, or
 * NULL for a create) does not hold: a clusterIP unless ExternalName or
 * headless, a nodePort per port for NodePort and LoadBalancer Services;
 * values already set are requested ones. Fills them into svc (borrowed
 * until done). done runs once, later: code 0 (GRPC_OK) with the claim, or a
 * gRPC code and Kubernetes' message (`failed to allocate IP ...: provided
 * IP is already allocated`) with nothing held; msg is valid during the call.
 */
typedef void (*svcalloc_done_fn)(void *arg, int code, const char *msg, struct svc_claim *c);
void svcalloc_claim(svcalloc_t *al, Coracle__V1__Service *svc, const Coracle__V1__Service *old,
                    svcalloc_done_fn done, void *arg);

/*
 * After a Service write: written (ok) frees the records prev (the bytes
 * before, or NULL) held that val (the bytes after, NULL for a delete) does
 * not; not written frees the claim's records. c may be NULL; it is freed.
 * then(arg) runs once the records are free (at once when there are none),
 * as kube-apiserver answers a delete only once its addresses are released.
 */
void svcalloc_settle(svcalloc_t *al, struct svc_claim *c, int ok, const void *prev, size_t prev_len,
                     const void *val, size_t val_len, void (*then)(void *arg), void *arg);

/* Frees c's records, as a failed write does (c freed; NULL ok). */
void svcalloc_drop(svcalloc_t *al, struct svc_claim *c);

#endif
