/*
 * admit_int.h: what admit.c and admit_workload.c share. admit.c owns the
 * error list, the pod and label checks and the pod defaults; the workload
 * kinds (ReplicaSet, Deployment, DaemonSet, Job, CronJob) apply them to
 * their pod templates.
 */
#ifndef CORACLE_ADMIT_INT_H
#define CORACLE_ADMIT_INT_H

#include <stdarg.h>
#include <stdbool.h>

#include "admit.h"
#include "util.h"

/* Field errors in the order Kubernetes reports them, each malloc'd. */
struct errs {
    char **v;
    size_t n, cap;
};

/* 0 if e holds no error, else -1 and *msg: `Kind "name" is invalid: a` or `...: [a, b]` (e
 * emptied). */
int admit_errs_finish(struct errs *e, const struct kind *k, const char *name, char **msg);
/* One more error, as printf formats it. */
void admit_err(struct errs *e, const char *fmt, ...) PRINTF(2, 3);

/* A pod template's spec checked as a pod's, each error's path after prefix
 * ("spec.template." makes "spec.template.spec.containers: Required value"). */
void admit_pod_template_errs(struct errs *e, const char *prefix, const Coracle__V1__PodSpec *sp);
/* ValidateLabels of a map at path. */
void admit_label_errs(struct errs *e, const char *path,
                      Coracle__V1__ObjectMeta__LabelsEntry *const *l, size_t n);
/* A label key's or value's problem (static text), or NULL. */
const char *admit_label_key_err(const char *key);
const char *admit_label_value_err(const char *value);
/* ValidateLabelSelector of s at path (admit_workload.c). */
void admit_selector_errs(struct errs *e, const char *path, const Coracle__V1__LabelSelector *s);
/* IsValidPortName: an IANA service name's problem (static text), or NULL (admit_service.c). */
const char *admit_port_name_err(const char *s);
/* The defaults a pod's spec gets, on any pod spec (a template's too). */
void admit_pod_spec_defaults(Coracle__V1__PodSpec *sp);

/* ---- admit_workload.c: the workload kinds' hooks; other kinds are left alone ---- */

/* SetDefaults_* of the workload kinds and their templates' pod specs. */
void admit_workload_defaults(const struct kind *k, ProtobufCMessage *obj);
/* Validate* of the workload kinds. */
void admit_workload_validate(struct errs *e, const struct kind *k, const ProtobufCMessage *obj);
/* Validate*Update: what may not change (selectors). */
void admit_workload_update(struct errs *e, const struct kind *k, const ProtobufCMessage *old,
                           const ProtobufCMessage *upd);
/* PrepareForCreate of the workload kinds (the uid is set): an empty status;
 * a Job's generated selector and template labels unless spec.manualSelector. */
void admit_workload_prepare_create(const struct kind *k, ProtobufCMessage *obj);

/* ---- admit_rbac.c: the rbac.authorization.k8s.io kinds ---- */

/* Whether k is Role, ClusterRole, RoleBinding or ClusterRoleBinding. */
bool admit_rbac_kind(const struct kind *k);
/* ValidatePathSegmentName (RBAC's names: "system:node" is one): NULL or the reason. */
const char *admit_path_segment_name(const char *s);
/* ValidateRole, ValidateClusterRole, ValidateRoleBinding, ValidateClusterRoleBinding. */
void admit_rbac_validate(struct errs *e, const struct kind *k, const ProtobufCMessage *obj);
/* Validate*BindingUpdate: roleRef may not change. */
void admit_rbac_update(struct errs *e, const struct kind *k, const ProtobufCMessage *old,
                       const ProtobufCMessage *upd);

/* ---- admit_csr.c: CertificateSigningRequests ---- */

/* ValidateCertificateSigningRequestCreate, with the signer's rules for the request. */
void admit_csr_validate(struct errs *e, const Coracle__V1__CertificateSigningRequest *csr);
/* The spec may not change. */
void admit_csr_update(struct errs *e, const Coracle__V1__CertificateSigningRequest *old,
                      const Coracle__V1__CertificateSigningRequest *upd);

/* ---- admit_service.c: Services and EndpointSlices ---- */

/* SetDefaults_Service (type, affinity, ports' protocol and targetPort, the
 * traffic policies, one IPv4 family) and clusterIPs kept with clusterIP. */
void admit_service_defaults(Coracle__V1__Service *s);
void admit_service_validate(struct errs *e, const Coracle__V1__Service *s);
/* ValidateServiceUpdate: a given clusterIP stays. */
void admit_service_update(struct errs *e, const Coracle__V1__Service *old,
                          const Coracle__V1__Service *upd);
/* Ports' protocol TCP. */
void admit_endpointslice_defaults(Coracle__V1__EndpointSlice *s);
void admit_endpointslice_validate(struct errs *e, const Coracle__V1__EndpointSlice *s);
/* addressType stays. */
void admit_endpointslice_update(struct errs *e, const Coracle__V1__EndpointSlice *old,
                                const Coracle__V1__EndpointSlice *upd);

/* ---- admit_netpol.c: NetworkPolicies ---- */

/* SetDefaults_NetworkPolicy: ports' protocol TCP; policyTypes Ingress, and Egress when there
 * are egress rules. */
void admit_netpol_defaults(Coracle__V1__NetworkPolicy *np);
/* ValidateNetworkPolicySpec. */
void admit_netpol_validate(struct errs *e, const Coracle__V1__NetworkPolicy *np);

#endif
