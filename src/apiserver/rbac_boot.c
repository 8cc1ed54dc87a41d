/*
 * rbac_boot: the default ClusterRoles and ClusterRoleBindings, created
 * and reconciled at start as kube-apiserver's rbac/bootstrap-roles hook
 * does (plugin/pkg/auth/authorizer/rbac/bootstrappolicy and
 * pkg/registry/rbac/reconciliation). See rbac.h.
 *
 * The objects are Kubernetes' own, as 1.32 ships them (rules naming
 * resources coracle does not serve stay: they are harmless and keep the
 * roles comparable; system:kube-scheduler does not delete pods, as
 * coracle's scheduler does not preempt), plus
 * three of coracle's: its scheduler's, controller manager's and nodes'
 * grants, which conf/policy held before and which Kubernetes spreads over
 * the per-controller service accounts and the Node authorizer. With them
 * a cluster runs on RBAC objects alone.
 */
#include "config.h"
#include "kobj.h"
#include "obj.h"
#include "rbac.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define READ "[get, list, watch]"
#define WRITE "[create, delete, deletecollection, patch, update]"
#define RW "[create, delete, deletecollection, get, list, patch, update, watch]"
#define EVENTS                                                                                     \
    "{apiGroups: [\"\", events.k8s.io], resources: [events], verbs: [create, patch, update]}"

/* The defaults, as YAML (labels and the autoupdate annotation are added by defaults_parse). */
static const char defaults_yaml[] =
    /* ---- ClusterRoles ---- */
    "kind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: cluster-admin}\n"
    "rules:\n"
    "- {apiGroups: ['*'], resources: ['*'], verbs: ['*']}\n"
    "- {nonResourceURLs: ['*'], verbs: ['*']}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:discovery}\n"
    "rules:\n"
    "- {nonResourceURLs: [/api, /api/*, /apis, /apis/*, /healthz, /livez, /openapi, /openapi/*,"
    " /readyz, /version, /version/], verbs: [get]}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:basic-user}\n"
    "rules:\n"
    "- {apiGroups: [authorization.k8s.io], resources: [selfsubjectaccessreviews,"
    " selfsubjectrulesreviews], verbs: [create]}\n"
    "- {apiGroups: [authentication.k8s.io], resources: [selfsubjectreviews], verbs: [create]}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:public-info-viewer}\n"
    "rules:\n"
    "- {nonResourceURLs: [/healthz, /livez, /readyz, /version, /version/], verbs: [get]}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: admin}\n"
    "aggregationRule:\n"
    "  clusterRoleSelectors:\n"
    "  - matchLabels: {rbac.authorization.k8s.io/aggregate-to-admin: 'true'}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: edit, labels: {rbac.authorization.k8s.io/aggregate-to-admin: 'true'}}\n"
    "aggregationRule:\n"
    "  clusterRoleSelectors:\n"
    "  - matchLabels: {rbac.authorization.k8s.io/aggregate-to-edit: 'true'}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: view, labels: {rbac.authorization.k8s.io/aggregate-to-edit: 'true'}}\n"
    "aggregationRule:\n"
    "  clusterRoleSelectors:\n"
    "  - matchLabels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:aggregate-to-admin,"
    " labels: {rbac.authorization.k8s.io/aggregate-to-admin: 'true'}}\n"
    "rules:\n"
    "- {apiGroups: [authorization.k8s.io], resources: [localsubjectaccessreviews],"
    " verbs: [create]}\n"
    "- {apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings, roles], verbs: " RW "}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:aggregate-to-edit,"
    " labels: {rbac.authorization.k8s.io/aggregate-to-edit: 'true'}}\n"
    "rules:\n"
    "- {apiGroups: [''], resources: [pods/attach, pods/exec, pods/portforward, pods/proxy, secrets,"
    " services/proxy], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [serviceaccounts], verbs: [impersonate]}\n"
    "- {apiGroups: [''], resources: [pods, pods/attach, pods/exec, pods/portforward, pods/proxy],"
    " verbs: " WRITE "}\n"
    "- {apiGroups: [''], resources: [pods/eviction], verbs: [create]}\n"
    "- {apiGroups: [''], resources: [configmaps, events, persistentvolumeclaims,"
    " replicationcontrollers, replicationcontrollers/scale, secrets, serviceaccounts, services,"
    " services/proxy], verbs: " WRITE "}\n"
    "- {apiGroups: [''], resources: [serviceaccounts/token], verbs: [create]}\n"
    "- {apiGroups: [apps], resources: [daemonsets, deployments, deployments/rollback,"
    " deployments/scale, replicasets, replicasets/scale, statefulsets, statefulsets/scale],"
    " verbs: " WRITE "}\n"
    "- {apiGroups: [autoscaling], resources: [horizontalpodautoscalers], verbs: " WRITE "}\n"
    "- {apiGroups: [batch], resources: [cronjobs, jobs], verbs: " WRITE "}\n"
    "- {apiGroups: [policy], resources: [poddisruptionbudgets], verbs: " WRITE "}\n"
    "- {apiGroups: [networking.k8s.io], resources: [ingresses, networkpolicies], verbs: " WRITE
    "}\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: " WRITE "}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:aggregate-to-view,"
    " labels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}}\n"
    "rules:\n"
    "- {apiGroups: [''], resources: [configmaps, endpoints, persistentvolumeclaims,"
    " persistentvolumeclaims/status, pods, replicationcontrollers, replicationcontrollers/scale,"
    " serviceaccounts, services, services/status], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [bindings, events, limitranges, namespaces/status, pods/log,"
    " pods/status, replicationcontrollers/status, resourcequotas, resourcequotas/status],"
    " verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [namespaces], verbs: " READ "}\n"
    "- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: " READ "}\n"
    "- {apiGroups: [apps], resources: [controllerrevisions, daemonsets, daemonsets/status,"
    " deployments, deployments/scale, deployments/status, replicasets, replicasets/scale,"
    " replicasets/status, statefulsets, statefulsets/scale, statefulsets/status], verbs: " READ
    "}\n"
    "- {apiGroups: [autoscaling], resources: [horizontalpodautoscalers,"
    " horizontalpodautoscalers/status], verbs: " READ "}\n"
    "- {apiGroups: [batch], resources: [cronjobs, cronjobs/status, jobs, jobs/status], verbs: " READ
    "}\n"
    "- {apiGroups: [policy], resources: [poddisruptionbudgets, poddisruptionbudgets/status],"
    " verbs: " READ "}\n"
    "- {apiGroups: [networking.k8s.io], resources: [ingresses, ingresses/status,"
    " networkpolicies], verbs: " READ "}\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: " READ "}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:node-proxier}\n"
    "rules:\n"
    "- {apiGroups: [''], resources: [endpoints, services], verbs: [list, watch]}\n"
    "- {apiGroups: [''], resources: [nodes], verbs: " READ "}\n"
    "- " EVENTS "\n"
    "- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch]}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:kube-scheduler}\n"
    "rules:\n"
    "- " EVENTS "\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [create]}\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [kube-scheduler],"
    " verbs: [get, update]}\n"
    "- {apiGroups: [''], resources: [nodes], verbs: " READ "}\n"
    /* Kubernetes' role also deletes pods, for preemption: coracle's scheduler does not
     * preempt, and least privilege keeps it from deleting */
    "- {apiGroups: [''], resources: [pods], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [bindings, pods/binding], verbs: [create]}\n"
    "- {apiGroups: [''], resources: [pods/status], verbs: [patch, update]}\n"
    "- {apiGroups: [''], resources: [replicationcontrollers, services], verbs: " READ "}\n"
    "- {apiGroups: [apps, extensions], resources: [replicasets], verbs: " READ "}\n"
    "- {apiGroups: [apps], resources: [statefulsets], verbs: " READ "}\n"
    "- {apiGroups: [policy], resources: [poddisruptionbudgets], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [persistentvolumeclaims, persistentvolumes], verbs: " READ "}\n"
    "- {apiGroups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}\n"
    "- {apiGroups: [authorization.k8s.io], resources: [subjectaccessreviews], verbs: [create]}\n"
    "- {apiGroups: [storage.k8s.io], resources: [csidrivers, csinodes, csistoragecapacities],"
    " verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [namespaces], verbs: " READ "}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:kube-controller-manager}\n"
    "rules:\n"
    "- " EVENTS "\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [create]}\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases],"
    " resourceNames: [kube-controller-manager], verbs: [get, update]}\n"
    "- {apiGroups: [''], resources: [secrets, serviceaccounts], verbs: [create]}\n"
    "- {apiGroups: [''], resources: [secrets], verbs: [delete]}\n"
    "- {apiGroups: [''], resources: [configmaps, namespaces, secrets, serviceaccounts],"
    " verbs: [get]}\n"
    "- {apiGroups: [''], resources: [secrets, serviceaccounts], verbs: [update]}\n"
    "- {apiGroups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}\n"
    "- {apiGroups: [authorization.k8s.io], resources: [subjectaccessreviews], verbs: [create]}\n"
    "- {apiGroups: ['*'], resources: ['*'], verbs: [list, watch]}\n"
    "- {apiGroups: [''], resources: [serviceaccounts/token], verbs: [create]}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:node}\n"
    "rules:\n"
    "- {apiGroups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}\n"
    "- {apiGroups: [authorization.k8s.io], resources: [localsubjectaccessreviews,"
    " subjectaccessreviews], verbs: [create]}\n"
    "- {apiGroups: [''], resources: [services], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [nodes], verbs: [create, get, list, watch]}\n"
    "- {apiGroups: [''], resources: [nodes/status], verbs: [patch, update]}\n"
    "- {apiGroups: [''], resources: [nodes], verbs: [patch, update]}\n"
    "- " EVENTS "\n"
    "- {apiGroups: [''], resources: [pods], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [pods], verbs: [create, delete]}\n"
    "- {apiGroups: [''], resources: [pods/status], verbs: [patch, update]}\n"
    "- {apiGroups: [''], resources: [pods/eviction], verbs: [create]}\n"
    "- {apiGroups: [''], resources: [configmaps, secrets], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [persistentvolumeclaims, persistentvolumes], verbs: [get]}\n"
    "- {apiGroups: [''], resources: [endpoints], verbs: [get]}\n"
    "- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests],"
    " verbs: [create, get, list, watch]}\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases],"
    " verbs: [create, delete, get, patch, update]}\n"
    "- {apiGroups: [storage.k8s.io], resources: [volumeattachments], verbs: [get]}\n"
    "- {apiGroups: [''], resources: [serviceaccounts/token], verbs: [create]}\n"
    "- {apiGroups: [storage.k8s.io], resources: [csidrivers], verbs: " READ "}\n"
    "- {apiGroups: [node.k8s.io], resources: [runtimeclasses], verbs: " READ "}\n"
    /* coracle's daemons, what conf/policy grants them (Leases under their own names) */
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:coracle:scheduler}\n"
    "rules:\n"
    "- {apiGroups: [''], resources: [nodes, pods], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [pods/binding], verbs: [create]}\n"
    "- {apiGroups: [''], resources: [pods/status], verbs: [update]}\n"
    "- {apiGroups: [''], resources: [events], verbs: [create, update]}\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [create, get, update]}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:coracle:controller-manager}\n"
    "rules:\n"
    "- {apiGroups: [''], resources: [configmaps, namespaces, nodes, pods, secrets,"
    " serviceaccounts], verbs: " READ "}\n"
    "- {apiGroups: [apps], resources: [daemonsets, deployments, replicasets], verbs: " READ "}\n"
    "- {apiGroups: [batch], resources: [cronjobs, jobs], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [configmaps, pods, secrets, serviceaccounts],"
    " verbs: [create, delete, update]}\n"
    "- {apiGroups: [apps], resources: [daemonsets, deployments, replicasets],"
    " verbs: [create, delete, update]}\n"
    "- {apiGroups: [batch], resources: [cronjobs, jobs], verbs: [create, delete, update]}\n"
    "- {apiGroups: [apps], resources: [daemonsets/status, deployments/status,"
    " replicasets/status], verbs: [update]}\n"
    "- {apiGroups: [batch], resources: [cronjobs/status, jobs/status], verbs: [update]}\n"
    "- {apiGroups: [''], resources: [events], verbs: [create, update]}\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [create, get, update]}\n"
    /* each Node's spec.podCIDR (the node IPAM, as Kubernetes' node-controller role) */
    "- {apiGroups: [''], resources: [nodes], verbs: [update]}\n"
    /* the EndpointSlice controller */
    "- {apiGroups: [''], resources: [services], verbs: " READ "}\n"
    "- {apiGroups: [discovery.k8s.io], resources: [endpointslices],"
    " verbs: [create, delete, get, list, update, watch]}\n"
    /* the ClusterRole aggregation (Kubernetes' clusterrole-aggregation-controller's role) */
    "- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles],"
    " verbs: [escalate, get, list, patch, update, watch]}\n"
    /* csrapproving, csrsigning and the bootstrap token cleaner */
    "- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests],"
    " verbs: " READ "}\n"
    "- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests/approval,"
    " certificatesigningrequests/status], verbs: [update]}\n"
    "- {apiGroups: [''], resources: [secrets], verbs: [delete]}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:coracle:node}\n"
    "rules:\n"
    "- {apiGroups: [''], resources: [nodes], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [nodes, nodes/status], verbs: [create, delete, update]}\n"
    "- {apiGroups: [coordination.k8s.io], resources: [leases], verbs: [create, get, update]}\n"
    "- {apiGroups: [''], resources: [pods], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [pods/status], verbs: [update]}\n"
    "- {apiGroups: [''], resources: [pods], verbs: [delete]}\n"
    "- {apiGroups: [''], resources: [events], verbs: [create, update]}\n"
    "- {apiGroups: [''], resources: [configmaps, secrets], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [serviceaccounts/token], verbs: [create]}\n"
    /* the service proxy and DNS, in every namespace, as kube-proxy reads them */
    "- {apiGroups: [''], resources: [services], verbs: " READ "}\n"
    "- {apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: " READ "}\n"
    /* NetworkPolicy enforcement: the policies and the namespaces' labels they select */
    "- {apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: " READ "}\n"
    "- {apiGroups: [''], resources: [namespaces], verbs: " READ "}\n"
    /* its client certificate's renewal */
    "- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests],"
    " verbs: [create, get, list, watch]}\n"
    /* a joining kubelet's bootstrap token asks for its certificate (Kubernetes' role) */
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:node-bootstrapper}\n"
    "rules:\n"
    "- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests],"
    " verbs: [create, get, list, watch]}\n"
    "---\nkind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:service-account-issuer-discovery}\n"
    "rules:\n"
    "- {nonResourceURLs: [/.well-known/openid-configuration, /.well-known/openid-configuration/,"
    " /openid/v1/jwks, /openid/v1/jwks/], verbs: [get]}\n"
    /* ---- ClusterRoleBindings ---- */
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: cluster-admin}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:masters}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:discovery}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:discovery}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:basic-user}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:basic-user}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:public-info-viewer}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
    " name: system:public-info-viewer}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:authenticated}\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:unauthenticated}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:service-account-issuer-discovery}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
    " name: system:service-account-issuer-discovery}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:serviceaccounts}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:node-proxier}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node-proxier}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:kube-proxy}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:kube-scheduler}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
    " name: system:kube-scheduler}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:kube-scheduler}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:kube-controller-manager}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
    " name: system:kube-controller-manager}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:kube-controller-manager}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:node}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:node-bootstrapper}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
    " name: system:node-bootstrapper}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:bootstrappers}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:coracle:scheduler}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
    " name: system:coracle:scheduler}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:kube-scheduler}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:coracle:controller-manager}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
    " name: system:coracle:controller-manager}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:kube-controller-manager}\n"
    "---\nkind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n"
    "metadata: {name: system:coracle:node}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:coracle:node}\n"
    "subjects:\n"
    "- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:nodes}\n";

#define AUTOUPDATE "rbac.authorization.kubernetes.io/autoupdate"

/* Sets key to value in a labels or annotations map (d: its entry type) unless present. */
static bool map_add(void ***v, size_t *n, const ProtobufCMessageDescriptor *d, const char *key,
                    const char *value)
{
    for (size_t i = 0; i < *n; i++) {
        Coracle__V1__ObjectMeta__LabelsEntry *e = (*v)[i];
        if (e->key && !strcmp(e->key, key))
            return false;
    }
    Coracle__V1__ObjectMeta__LabelsEntry *e = xcalloc(1, d->sizeof_message);
    d->message_init((ProtobufCMessage *)e);
    e->key = xstrdup(key);
    e->value = xstrdup(value);
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = e;
    return true;
}

_Static_assert(sizeof(Coracle__V1__ObjectMeta__LabelsEntry) ==
                   sizeof(Coracle__V1__ObjectMeta__AnnotationsEntry),
               "map entries");

static bool label_add(Coracle__V1__ObjectMeta *m, const char *key, const char *value)
{
    return map_add((void ***)&m->labels, &m->n_labels,
                   &coracle__v1__object_meta__labels_entry__descriptor, key, value);
}

static bool annotation_add(Coracle__V1__ObjectMeta *m, const char *key, const char *value)
{
    return map_add((void ***)&m->annotations, &m->n_annotations,
                   &coracle__v1__object_meta__annotations_entry__descriptor, key, value);
}

static const char *annotation(const Coracle__V1__ObjectMeta *m, const char *key)
{
    for (size_t i = 0; m && i < m->n_annotations; i++)
        if (m->annotations[i]->key && !strcmp(m->annotations[i]->key, key))
            return m->annotations[i]->value ? m->annotations[i]->value : "";
    return NULL;
}

/* Merges the default's labels and annotations into m; true if anything was added. */
static bool merge_meta(Coracle__V1__ObjectMeta *m, const Coracle__V1__ObjectMeta *d)
{
    bool changed = false;
    for (size_t i = 0; i < d->n_labels; i++)
        changed |= label_add(m, d->labels[i]->key, d->labels[i]->value);
    for (size_t i = 0; i < d->n_annotations; i++)
        changed |= annotation_add(m, d->annotations[i]->key, d->annotations[i]->value);
    return changed;
}

/* The defaults, parsed once per call (at start and on the retries only). */
static int defaults_parse(struct kobjs *out)
{
    char *err = NULL;
    memset(out, 0, sizeof(*out));
    if (kobj_parse("rbac-defaults", defaults_yaml, sizeof(defaults_yaml) - 1, out, &err) < 0) {
        log_err("rbac: the default roles do not parse: %s", err);
        free(err);
        return -1;
    }
    for (size_t i = 0; i < out->n; i++) {
        Coracle__V1__ObjectMeta *m = obj_meta(out->v[i].msg);
        label_add(m, "kubernetes.io/bootstrapping", "rbac-defaults");
        annotation_add(m, AUTOUPDATE, "true");
    }
    return 0;
}

static bool same_subject(const Coracle__V1__Subject *a, const Coracle__V1__Subject *b)
{
    return !strcmp(a->kind ? a->kind : "", b->kind ? b->kind : "") &&
           !strcmp(a->name ? a->name : "", b->name ? b->name : "") &&
           !strcmp(a->namespace_ ? a->namespace_ : "", b->namespace_ ? b->namespace_ : "");
}

/* Appends a copy of each message of add (n) missing from *v (equal per eq, or obj_equal). */
static bool union_msgs(void ***v, size_t *nv, void *const *add, size_t n,
                       bool (*eq)(const void *a, const void *b))
{
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < *nv && !found; j++)
            found = eq ? eq((*v)[j], add[i]) : obj_equal((*v)[j], add[i]);
        if (found)
            continue;
        *v = xrealloc(*v, (*nv + 1) * sizeof(**v));
        (*v)[(*nv)++] = obj_clone(add[i]);
        changed = true;
    }
    return changed;
}

static bool subject_eq(const void *a, const void *b)
{
    return same_subject(a, b);
}

/* The reconciled role (a clone of cur), or NULL if cur needs nothing. */
static ProtobufCMessage *reconcile_role(const Coracle__V1__ClusterRole *cur,
                                        const Coracle__V1__ClusterRole *def)
{
    Coracle__V1__ClusterRole *r = (Coracle__V1__ClusterRole *)obj_clone(&cur->base);
    bool changed = merge_meta(r->metadata, def->metadata);
    if (def->aggregationrule) {
        /* the aggregation controller owns the rules: only the selectors are ours */
        if (!r->aggregationrule) {
            r->aggregationrule = (void *)obj_clone(&def->aggregationrule->base);
            changed = true;
        } else {
            changed |= union_msgs((void ***)&r->aggregationrule->clusterroleselectors,
                                  &r->aggregationrule->n_clusterroleselectors,
                                  (void *const *)def->aggregationrule->clusterroleselectors,
                                  def->aggregationrule->n_clusterroleselectors, NULL);
        }
    } else {
        for (size_t i = 0; i < def->n_rules; i++) {
            if (rbac_rules_cover(r->rules, r->n_rules, def->rules[i]))
                continue;
            r->rules = xrealloc(r->rules, (r->n_rules + 1) * sizeof(*r->rules));
            r->rules[r->n_rules++] = (void *)obj_clone(&def->rules[i]->base);
            changed = true;
        }
    }
    if (changed)
        return &r->base;
    obj_free(&r->base);
    return NULL;
}

static ProtobufCMessage *reconcile_binding(const Coracle__V1__ClusterRoleBinding *cur,
                                           const Coracle__V1__ClusterRoleBinding *def)
{
    Coracle__V1__ClusterRoleBinding *b = (Coracle__V1__ClusterRoleBinding *)obj_clone(&cur->base);
    bool changed = merge_meta(b->metadata, def->metadata);
    changed |= union_msgs((void ***)&b->subjects, &b->n_subjects, (void *const *)def->subjects,
                          def->n_subjects, subject_eq);
    if (changed)
        return &b->base;
    obj_free(&b->base);
    return NULL;
}

/* One default: created, reconciled or left; 1 if a write was made. */
static int reconcile_one(const rbac_t *rb, const struct rbac_boot_ops *ops, const struct kind *k,
                         ProtobufCMessage *def)
{
    const char *name = obj_meta(def)->name;
    const ProtobufCMessage *cur = k == &kind_clusterrole
                                      ? (const void *)rbac_cluster_role(rb, name)
                                      : (const void *)rbac_cluster_binding(rb, name);
    if (!cur) {
        ops->create(ops->arg, k, obj_clone(def));
        return 1;
    }
    const char *au = annotation(kind_meta(cur), AUTOUPDATE);
    if (au && !strcmp(au, "false"))
        return 0;
    ProtobufCMessage *upd = k == &kind_clusterrole
                                ? reconcile_role((const void *)cur, (void *)def)
                                : reconcile_binding((const void *)cur, (void *)def);
    if (!upd)
        return 0;
    log_info("rbac: reconciling %s %s", k->kind, name);
    ops->update(ops->arg, k, upd);
    return 1;
}

int rbac_boot_reconcile(const rbac_t *rb, const struct rbac_boot_ops *ops)
{
    struct kobjs defs;
    if (defaults_parse(&defs) < 0)
        return 0;
    int writes = 0;
    for (size_t i = 0; i < defs.n; i++)
        writes += reconcile_one(rb, ops, defs.v[i].kind, defs.v[i].msg);
    kobjs_free(&defs);
    return writes;
}
