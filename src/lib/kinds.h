/*
 * kinds: the table of API kinds (Pod, Node, Event, Lease, Namespace, ConfigMap,
 * Secret, ServiceAccount, ReplicaSet, Deployment, DaemonSet, Job, CronJob,
 * ClusterRoleBinding, ClusterRole, RoleBinding, Role,
 * CertificateSigningRequest, NetworkPolicy, and the access reviews, which are virtual:
 * created, never stored)
 * that generic code
 * (the apiserver's handlers, the store keys, coraclectl's verbs) walks
 * instead of naming each kind. Every object message has ObjectMeta as field
 * 1 ("metadata"); every list has ListMeta as field 1 and the items as field
 * 2; every watch event has type (1) and object (2).
 */
#ifndef CORACLE_KINDS_H
#define CORACLE_KINDS_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "coracle.pb-c.h"

struct kind {
    const char *kind;        /* "Pod" */
    const char *api_version; /* "v1" or "coordination.k8s.io/v1" */
    const char *resource;    /* "pods": store key prefix, RBAC resource, kubectl name */
    const char *singular;    /* "pod" */
    const char *short_name;  /* "po", or NULL */
    const char *service;     /* "coracle.v1.Pods": gRPC paths are /<service>/<Method> */
    bool namespaced;
    const ProtobufCMessageDescriptor *desc;       /* the object */
    const ProtobufCMessageDescriptor *list_desc;  /* PodList */
    const ProtobufCMessageDescriptor *event_desc; /* PodWatchEvent */
    /* "pods", "deployments.apps": the group-qualified resource Kubernetes'
     * messages name (`deployments.apps "x" not found`) */
    const char *group_resource;
};

extern const struct kind kind_pod, kind_node, kind_event, kind_lease;
extern const struct kind kind_namespace, kind_configmap, kind_secret, kind_serviceaccount;
extern const struct kind kind_service, kind_endpointslice;
extern const struct kind kind_replicaset, kind_deployment, kind_daemonset, kind_job, kind_cronjob;
extern const struct kind kind_clusterrolebinding, kind_clusterrole, kind_rolebinding, kind_role;
extern const struct kind kind_selfsubjectreview, kind_localsubjectaccessreview;
extern const struct kind kind_selfsubjectaccessreview, kind_selfsubjectrulesreview;
extern const struct kind kind_subjectaccessreview;
extern const struct kind kind_csr;
extern const struct kind kind_networkpolicy;
/* NULL-terminated list of all kinds, KINDS_N of them (checked in kinds.c). */
#define KINDS_N 26
extern const struct kind *const kinds_all[KINDS_N + 1];

/* Kinds stored but not served (no REST, gRPC, discovery or OpenAPI): the
 * allocation records of Services' cluster IPs and node ports. kind_by_key
 * finds them; kinds_all does not hold them. */
extern const struct kind kind_ipaddress, kind_nodeportalloc;
extern const struct kind *const kinds_internal[];

/* "Deployment.apps", "Pod": the group-qualified kind Kubernetes' Invalid messages name, into out.
 */
const char *kind_qualified(const struct kind *k, char *out, size_t n);

/* By kind ("Pod"), resource ("pods"), singular ("pod") or short name ("po"),
 * case-insensitive for the kind. NULL if none. */
const struct kind *kind_lookup(const char *name);
/*
 * Whether k is virtual: never stored, its only verb is create, answered at
 * once from the request (the access reviews). Such a kind has no list and
 * no watch event (list_desc and event_desc are NULL); generic code that
 * reads, watches or stores objects passes it over.
 */
bool kind_virtual(const struct kind *k);
/* Whether k has Kubernetes' scale subresource (an autoscaling/v1 Scale of spec.replicas). */
bool kind_has_scale(const struct kind *k);
/* By the object's descriptor. NULL if none. */
const struct kind *kind_by_desc(const ProtobufCMessageDescriptor *d);
/* By store key ("pods/default/nginx" -> kind_pod; kinds_internal too). NULL if none. */
const struct kind *kind_by_key(const char *key, size_t keylen);

/* The object's ObjectMeta (field 1), or NULL if unset. */
Coracle__V1__ObjectMeta *kind_meta(const ProtobufCMessage *obj);
/* Sets field 1 (takes ownership of meta; frees with the object). */
void kind_set_meta(ProtobufCMessage *obj, Coracle__V1__ObjectMeta *meta);

/*
 * Store key for an object: "<resource>/<namespace>/<name>" ("" namespace
 * for cluster-scoped kinds). malloc'd.
 */
char *kind_key(const struct kind *k, const char *ns, const char *name);

#endif
