/*
 * admit: the admission stage of the request pipeline: defaults (as
 * Kubernetes' SetDefaults_*) and validation (as Kubernetes' validation
 * package, with its exact field-error texts) for each kind. Pure functions:
 * they run on the loop thread (create/update requests) and on the store's
 * commit thread (checks against the current object), so they touch only
 * their arguments.
 */
#ifndef CORACLE_ADMIT_H
#define CORACLE_ADMIT_H

#include <protobuf-c/protobuf-c.h>

#include "kinds.h"

/* Fills defaults into obj (an object of kind k), in place. */
void admit_defaults(const struct kind *k, ProtobufCMessage *obj);

/*
 * Validates obj; returns 0, or -1 with *msg (malloc'd) as Kubernetes says
 * it: `Pod "x" is invalid: spec.containers[0].image: Required value`, or
 * with several errors `Pod "x" is invalid: [a, b]`.
 */
int admit_validate(const struct kind *k, const ProtobufCMessage *obj, char **msg);

/*
 * Checks an update of a pod's spec against the stored pod (Kubernetes'
 * ValidatePodUpdate: only images, activeDeadlineSeconds and tolerations
 * additions may change). Returns 0 or -1 with *msg.
 */
int admit_pod_update(const Coracle__V1__Pod *old, const Coracle__V1__Pod *upd, char **msg);

/*
 * Checks an update of any kind against the stored object (Kubernetes'
 * Validate*Update): no new finalizers on an object being deleted, a pod's
 * spec (admit_pod_update), an immutable
 * ConfigMap's or Secret's data, a Secret's type. Returns 0 or -1 with *msg
 * (malloc'd).
 */
int admit_update(const struct kind *k, const ProtobufCMessage *old, const ProtobufCMessage *upd,
                 char **msg);

/*
 * The server-set parts of a new object (Kubernetes' PrepareForCreate): a
 * pod's status (Pending, its QoS class), a namespace's (Active).
 */
void admit_prepare_create(const struct kind *k, ProtobufCMessage *obj);

/*
 * A CertificateSigningRequest's create by user (in groups, NULL-terminated):
 * spec.username and spec.groups become the requester's, the status is
 * emptied. A node (system:node:NAME in system:nodes) asking the kubelet
 * client signer for another name is refused: -1 with *msg (malloc'd,
 * for PERMISSION_DENIED). Else 0.
 */
int admit_csr_create(ProtobufCMessage *obj, const char *user, const char *const *groups,
                     char **msg);

/*
 * A status write (the /status or /approval subresource) of a
 * CertificateSigningRequest against the stored one: Approved and Denied
 * exclusive, neither they nor Failed removed, the certificate set only
 * once approved and never changed after. 0, or -1 with *msg (malloc'd,
 * INVALID_ARGUMENT).
 */
int admit_csr_status(const ProtobufCMessage *cur, const ProtobufCMessage *upd, char **msg);

/* The longest field manager name Kubernetes takes, in bytes */
#define FIELD_MANAGER_MAX 128

/*
 * ValidateFieldManager: NULL if s may name a field manager (the fieldManager
 * parameter, managedFields[].manager), else the error after the field path,
 * malloc'd: "Too long: may not be more than 128 bytes".
 */
char *admit_field_manager(const char *s);

/* Kubernetes' DNS-1123 checks; return NULL or the reason (static text). */
const char *admit_dns1123_subdomain(const char *s);
const char *admit_dns1123_label(const char *s);

/* Pod QoS class ("Guaranteed", "Burstable", "BestEffort") from the spec's resources. */
const char *admit_pod_qos(const Coracle__V1__PodSpec *spec);

#endif
