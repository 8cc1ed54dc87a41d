/*
 * kinds: the table of API kinds. See kinds.h.
 */
#include "config.h"
#include "kinds.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const struct kind kind_pod = {
    "Pod",
    "v1",
    "pods",
    "pod",
    "po",
    "coracle.v1.Pods",
    true,
    &coracle__v1__pod__descriptor,
    &coracle__v1__pod_list__descriptor,
    &coracle__v1__pod_watch_event__descriptor,
    "pods",
};
const struct kind kind_node = {
    "Node",
    "v1",
    "nodes",
    "node",
    "no",
    "coracle.v1.Nodes",
    false,
    &coracle__v1__node__descriptor,
    &coracle__v1__node_list__descriptor,
    &coracle__v1__node_watch_event__descriptor,
    "nodes",
};
const struct kind kind_event = {
    "Event",
    "v1",
    "events",
    "event",
    "ev",
    "coracle.v1.Events",
    true,
    &coracle__v1__event__descriptor,
    &coracle__v1__event_list__descriptor,
    &coracle__v1__event_watch_event__descriptor,
    "events",
};
const struct kind kind_lease = {
    "Lease",
    "coordination.k8s.io/v1",
    "leases",
    "lease",
    NULL,
    "coracle.v1.Leases",
    true,
    &coracle__v1__lease__descriptor,
    &coracle__v1__lease_list__descriptor,
    &coracle__v1__lease_watch_event__descriptor,
    "leases.coordination.k8s.io",
};
const struct kind kind_namespace = {
    "Namespace",
    "v1",
    "namespaces",
    "namespace",
    "ns",
    "coracle.v1.Namespaces",
    false,
    &coracle__v1__namespace__descriptor,
    &coracle__v1__namespace_list__descriptor,
    &coracle__v1__namespace_watch_event__descriptor,
    "namespaces",
};
const struct kind kind_configmap = {
    "ConfigMap",
    "v1",
    "configmaps",
    "configmap",
    "cm",
    "coracle.v1.ConfigMaps",
    true,
    &coracle__v1__config_map__descriptor,
    &coracle__v1__config_map_list__descriptor,
    &coracle__v1__config_map_watch_event__descriptor,
    "configmaps",
};
const struct kind kind_secret = {
    "Secret",
    "v1",
    "secrets",
    "secret",
    NULL,
    "coracle.v1.Secrets",
    true,
    &coracle__v1__secret__descriptor,
    &coracle__v1__secret_list__descriptor,
    &coracle__v1__secret_watch_event__descriptor,
    "secrets",
};
const struct kind kind_serviceaccount = {
    "ServiceAccount",
    "v1",
    "serviceaccounts",
    "serviceaccount",
    "sa",
    "coracle.v1.ServiceAccounts",
    true,
    &coracle__v1__service_account__descriptor,
    &coracle__v1__service_account_list__descriptor,
    &coracle__v1__service_account_watch_event__descriptor,
    "serviceaccounts",
};

const struct kind kind_service = {
    "Service",
    "v1",
    "services",
    "service",
    "svc",
    "coracle.v1.Services",
    true,
    &coracle__v1__service__descriptor,
    &coracle__v1__service_list__descriptor,
    &coracle__v1__service_watch_event__descriptor,
    "services",
};

const struct kind kind_replicaset = {
    "ReplicaSet",
    "apps/v1",
    "replicasets",
    "replicaset",
    "rs",
    "coracle.v1.ReplicaSets",
    true,
    &coracle__v1__replica_set__descriptor,
    &coracle__v1__replica_set_list__descriptor,
    &coracle__v1__replica_set_watch_event__descriptor,
    "replicasets.apps",
};
const struct kind kind_deployment = {
    "Deployment",
    "apps/v1",
    "deployments",
    "deployment",
    "deploy",
    "coracle.v1.Deployments",
    true,
    &coracle__v1__deployment__descriptor,
    &coracle__v1__deployment_list__descriptor,
    &coracle__v1__deployment_watch_event__descriptor,
    "deployments.apps",
};
const struct kind kind_daemonset = {
    "DaemonSet",
    "apps/v1",
    "daemonsets",
    "daemonset",
    "ds",
    "coracle.v1.DaemonSets",
    true,
    &coracle__v1__daemon_set__descriptor,
    &coracle__v1__daemon_set_list__descriptor,
    &coracle__v1__daemon_set_watch_event__descriptor,
    "daemonsets.apps",
};
const struct kind kind_job = {
    "Job",
    "batch/v1",
    "jobs",
    "job",
    NULL,
    "coracle.v1.Jobs",
    true,
    &coracle__v1__job__descriptor,
    &coracle__v1__job_list__descriptor,
    &coracle__v1__job_watch_event__descriptor,
    "jobs.batch",
};
const struct kind kind_cronjob = {
    "CronJob",
    "batch/v1",
    "cronjobs",
    "cronjob",
    "cj",
    "coracle.v1.CronJobs",
    true,
    &coracle__v1__cron_job__descriptor,
    &coracle__v1__cron_job_list__descriptor,
    &coracle__v1__cron_job_watch_event__descriptor,
    "cronjobs.batch",
};
const struct kind kind_endpointslice = {
    "EndpointSlice",
    "discovery.k8s.io/v1",
    "endpointslices",
    "endpointslice",
    NULL,
    "coracle.v1.EndpointSlices",
    true,
    &coracle__v1__endpoint_slice__descriptor,
    &coracle__v1__endpoint_slice_list__descriptor,
    &coracle__v1__endpoint_slice_watch_event__descriptor,
    "endpointslices.discovery.k8s.io",
};

const struct kind kind_clusterrolebinding = {
    "ClusterRoleBinding",
    "rbac.authorization.k8s.io/v1",
    "clusterrolebindings",
    "clusterrolebinding",
    NULL,
    "coracle.v1.ClusterRoleBindings",
    false,
    &coracle__v1__cluster_role_binding__descriptor,
    &coracle__v1__cluster_role_binding_list__descriptor,
    &coracle__v1__cluster_role_binding_watch_event__descriptor,
    "clusterrolebindings.rbac.authorization.k8s.io",
};
const struct kind kind_clusterrole = {
    "ClusterRole",
    "rbac.authorization.k8s.io/v1",
    "clusterroles",
    "clusterrole",
    NULL,
    "coracle.v1.ClusterRoles",
    false,
    &coracle__v1__cluster_role__descriptor,
    &coracle__v1__cluster_role_list__descriptor,
    &coracle__v1__cluster_role_watch_event__descriptor,
    "clusterroles.rbac.authorization.k8s.io",
};
const struct kind kind_rolebinding = {
    "RoleBinding",
    "rbac.authorization.k8s.io/v1",
    "rolebindings",
    "rolebinding",
    NULL,
    "coracle.v1.RoleBindings",
    true,
    &coracle__v1__role_binding__descriptor,
    &coracle__v1__role_binding_list__descriptor,
    &coracle__v1__role_binding_watch_event__descriptor,
    "rolebindings.rbac.authorization.k8s.io",
};
const struct kind kind_role = {
    "Role",
    "rbac.authorization.k8s.io/v1",
    "roles",
    "role",
    NULL,
    "coracle.v1.Roles",
    true,
    &coracle__v1__role__descriptor,
    &coracle__v1__role_list__descriptor,
    &coracle__v1__role_watch_event__descriptor,
    "roles.rbac.authorization.k8s.io",
};

const struct kind kind_selfsubjectreview = {
    "SelfSubjectReview",
    "authentication.k8s.io/v1",
    "selfsubjectreviews",
    "selfsubjectreview",
    NULL,
    "coracle.v1.SelfSubjectReviews",
    false,
    &coracle__v1__self_subject_review__descriptor,
    NULL,
    NULL,
    "selfsubjectreviews.authentication.k8s.io",
};
const struct kind kind_localsubjectaccessreview = {
    "LocalSubjectAccessReview",
    "authorization.k8s.io/v1",
    "localsubjectaccessreviews",
    "localsubjectaccessreview",
    NULL,
    "coracle.v1.LocalSubjectAccessReviews",
    true,
    &coracle__v1__local_subject_access_review__descriptor,
    NULL,
    NULL,
    "localsubjectaccessreviews.authorization.k8s.io",
};
const struct kind kind_selfsubjectaccessreview = {
    "SelfSubjectAccessReview",
    "authorization.k8s.io/v1",
    "selfsubjectaccessreviews",
    "selfsubjectaccessreview",
    NULL,
    "coracle.v1.SelfSubjectAccessReviews",
    false,
    &coracle__v1__self_subject_access_review__descriptor,
    NULL,
    NULL,
    "selfsubjectaccessreviews.authorization.k8s.io",
};
const struct kind kind_selfsubjectrulesreview = {
    "SelfSubjectRulesReview",
    "authorization.k8s.io/v1",
    "selfsubjectrulesreviews",
    "selfsubjectrulesreview",
    NULL,
    "coracle.v1.SelfSubjectRulesReviews",
    false,
    &coracle__v1__self_subject_rules_review__descriptor,
    NULL,
    NULL,
    "selfsubjectrulesreviews.authorization.k8s.io",
};
const struct kind kind_subjectaccessreview = {
    "SubjectAccessReview",
    "authorization.k8s.io/v1",
    "subjectaccessreviews",
    "subjectaccessreview",
    NULL,
    "coracle.v1.SubjectAccessReviews",
    false,
    &coracle__v1__subject_access_review__descriptor,
    NULL,
    NULL,
    "subjectaccessreviews.authorization.k8s.io",
};
const struct kind kind_csr = {
    "CertificateSigningRequest",
    "certificates.k8s.io/v1",
    "certificatesigningrequests",
    "certificatesigningrequest",
    "csr",
    "coracle.v1.CertificateSigningRequests",
    false,
    &coracle__v1__certificate_signing_request__descriptor,
    &coracle__v1__certificate_signing_request_list__descriptor,
    &coracle__v1__certificate_signing_request_watch_event__descriptor,
    "certificatesigningrequests.certificates.k8s.io",
};

const struct kind kind_networkpolicy = {
    "NetworkPolicy",
    "networking.k8s.io/v1",
    "networkpolicies",
    "networkpolicy",
    "netpol",
    "coracle.v1.NetworkPolicies",
    true,
    &coracle__v1__network_policy__descriptor,
    &coracle__v1__network_policy_list__descriptor,
    &coracle__v1__network_policy_watch_event__descriptor,
    "networkpolicies.networking.k8s.io",
};

/* one line a kind, so that adding one touches one line */
/* clang-format off */
const struct kind *const kinds_all[] =
    {/* core, then the groups in the order kube-apiserver lists them */
     &kind_pod,
     &kind_node,
     &kind_event,
     &kind_namespace,
     &kind_configmap,
     &kind_secret,
     &kind_serviceaccount,
     &kind_service,
     &kind_replicaset,
     &kind_deployment,
     &kind_daemonset,
     &kind_selfsubjectreview,
     &kind_localsubjectaccessreview,
     &kind_selfsubjectaccessreview,
     &kind_selfsubjectrulesreview,
     &kind_subjectaccessreview,
     &kind_job,
     &kind_cronjob,
     &kind_csr,
     &kind_networkpolicy,
     &kind_clusterrolebinding,
     &kind_clusterrole,
     &kind_rolebinding,
     &kind_role,
     &kind_lease,
     &kind_endpointslice,
     NULL};
/* clang-format on */
_Static_assert(sizeof(kinds_all) / sizeof(kinds_all[0]) == KINDS_N + 1, "KINDS_N");

/*
 * Kinds the apiserver stores but does not serve: the allocation records of
 * Services' cluster IPs (one IPAddress per IP, at Kubernetes' etcd path
 * /registry/ipaddresses) and node ports (one per port).
 */
const struct kind kind_ipaddress = {
    "IPAddress",
    "networking.k8s.io/v1",
    "ipaddresses",
    "ipaddress",
    NULL,
    NULL,
    false,
    &coracle__v1__ipaddress__descriptor,
    &coracle__v1__ipaddress_list__descriptor,
    &coracle__v1__ipaddress_watch_event__descriptor,
    "ipaddresses.networking.k8s.io",
};
const struct kind kind_nodeportalloc = {
    "IPAddress",
    "networking.k8s.io/v1",
    "servicenodeports",
    "servicenodeport",
    NULL,
    NULL,
    false,
    &coracle__v1__ipaddress__descriptor,
    &coracle__v1__ipaddress_list__descriptor,
    &coracle__v1__ipaddress_watch_event__descriptor,
    "servicenodeports",
};
const struct kind *const kinds_internal[] = {&kind_ipaddress, &kind_nodeportalloc, NULL};

const struct kind *kind_lookup(const char *name)
{
    for (size_t i = 0; kinds_all[i]; i++) {
        const struct kind *k = kinds_all[i];
        if (!strcasecmp(name, k->kind) || !strcmp(name, k->resource) ||
            !strcmp(name, k->singular) || (k->short_name && !strcmp(name, k->short_name)))
            return k;
    }
    return NULL;
}

bool kind_virtual(const struct kind *k)
{
    return !k->list_desc;
}

bool kind_has_scale(const struct kind *k)
{
    return k == &kind_deployment || k == &kind_replicaset;
}

const struct kind *kind_by_desc(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; kinds_all[i]; i++)
        if (kinds_all[i]->desc == d)
            return kinds_all[i];
    return NULL;
}

const struct kind *kind_by_key(const char *key, size_t keylen)
{
    for (size_t i = 0; kinds_all[i]; i++) {
        size_t rl = strlen(kinds_all[i]->resource);
        if (keylen > rl && key[rl] == '/' && !memcmp(key, kinds_all[i]->resource, rl))
            return kinds_all[i];
    }
    for (size_t i = 0; kinds_internal[i]; i++) {
        size_t rl = strlen(kinds_internal[i]->resource);
        if (keylen > rl && key[rl] == '/' && !memcmp(key, kinds_internal[i]->resource, rl))
            return kinds_internal[i];
    }
    return NULL;
}

/* Every kind's object struct is { base; ObjectMeta *metadata; ... }, checked here. */
_Static_assert(offsetof(Coracle__V1__Pod, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__Node, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__Event, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__Lease, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__Namespace, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__ConfigMap, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__Secret, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__ServiceAccount, metadata) == sizeof(ProtobufCMessage),
               "layout");
_Static_assert(offsetof(Coracle__V1__ReplicaSet, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__Deployment, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__DaemonSet, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__Job, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__CronJob, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__ClusterRoleBinding, metadata) == sizeof(ProtobufCMessage),
               "layout");
_Static_assert(offsetof(Coracle__V1__ClusterRole, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__RoleBinding, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__Role, metadata) == sizeof(ProtobufCMessage), "layout");
_Static_assert(offsetof(Coracle__V1__SelfSubjectReview, metadata) == sizeof(ProtobufCMessage),
               "layout");
_Static_assert(offsetof(Coracle__V1__LocalSubjectAccessReview, metadata) ==
                   sizeof(ProtobufCMessage),
               "layout");
_Static_assert(offsetof(Coracle__V1__SelfSubjectAccessReview, metadata) == sizeof(ProtobufCMessage),
               "layout");
_Static_assert(offsetof(Coracle__V1__SelfSubjectRulesReview, metadata) == sizeof(ProtobufCMessage),
               "layout");
_Static_assert(offsetof(Coracle__V1__SubjectAccessReview, metadata) == sizeof(ProtobufCMessage),
               "layout");
_Static_assert(offsetof(Coracle__V1__CertificateSigningRequest, metadata) ==
                   sizeof(ProtobufCMessage),
               "layout");

Coracle__V1__ObjectMeta *kind_meta(const ProtobufCMessage *obj)
{
    return ((const Coracle__V1__Pod *)obj)->metadata;
}

void kind_set_meta(ProtobufCMessage *obj, Coracle__V1__ObjectMeta *meta)
{
    ((Coracle__V1__Pod *)obj)->metadata = meta;
}

char *kind_key(const struct kind *k, const char *ns, const char *name)
{
    return xconcat(k->resource, "/", k->namespaced && ns ? ns : "", "/", name ? name : "", NULL);
}

const char *kind_qualified(const struct kind *k, char *out, size_t n)
{
    const char *sl = strchr(k->api_version, '/');
    if (sl)
        snprintf(out, n, "%s.%.*s", k->kind, (int)(sl - k->api_version), k->api_version);
    else
        snprintf(out, n, "%s", k->kind);
    return out;
}
