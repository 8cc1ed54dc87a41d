/*
 * kmeta: the list and patch markers of Kubernetes' types.go (1.32) for
 * the fields proto/ has. See kmeta.h.
 */
#include "config.h"
#include "kmeta.h"

#include <string.h>

#define P "coracle.v1."

/* Alphabetical by message, then field. */
const struct kmeta kmeta_all[] = {
    /* core/v1 */
    {P "Capabilities", "add", NULL, NULL, "atomic", {NULL}, NULL},
    {P "Capabilities", "drop", NULL, NULL, "atomic", {NULL}, NULL},
    {P "ConfigMapVolumeSource", "items", NULL, NULL, "atomic", {NULL}, NULL},
    {P "Container", "args", NULL, NULL, "atomic", {NULL}, NULL},
    {P "Container", "command", NULL, NULL, "atomic", {NULL}, NULL},
    {P "Container", "env", "merge", "name", "map", {"name"}, NULL},
    {P "Container", "envFrom", NULL, NULL, "atomic", {NULL}, NULL},
    {P "Container", "ports", "merge", "containerPort", "map", {"containerPort", "protocol"}, NULL},
    {P "Container", "volumeMounts", "merge", "mountPath", "map", {"mountPath"}, NULL},
    {P "ContainerImage", "names", NULL, NULL, "atomic", {NULL}, NULL},
    /* ObjectFieldSelector, ResourceFieldSelector and the key selectors are
     * +structType=atomic: owned and replaced whole where they are used */
    {P "EnvVarSource", "configMapKeyRef", NULL, NULL, NULL, {NULL}, "atomic"},
    {P "EnvVarSource", "fieldRef", NULL, NULL, NULL, {NULL}, "atomic"},
    {P "EnvVarSource", "resourceFieldRef", NULL, NULL, NULL, {NULL}, "atomic"},
    {P "EnvVarSource", "secretKeyRef", NULL, NULL, NULL, {NULL}, "atomic"},
    {P "ExecAction", "command", NULL, NULL, "atomic", {NULL}, NULL},
    {P "HTTPGetAction", "httpHeaders", NULL, NULL, "atomic", {NULL}, NULL},
    {P "NodeSelector", "nodeSelectorTerms", NULL, NULL, "atomic", {NULL}, NULL},
    {P "NodeSelectorRequirement", "values", NULL, NULL, "atomic", {NULL}, NULL},
    {P "NodeSelectorTerm", "matchExpressions", NULL, NULL, "atomic", {NULL}, NULL},
    {P "NodeSelectorTerm", "matchFields", NULL, NULL, "atomic", {NULL}, NULL},
    {P "NodeSpec", "podCIDRs", "merge", NULL, "set", {NULL}, NULL},
    {P "NodeSpec", "taints", NULL, NULL, "atomic", {NULL}, NULL},
    {P "NodeStatus", "addresses", "merge", "type", "map", {"type"}, NULL},
    {P "NodeStatus", "conditions", "merge", "type", "map", {"type"}, NULL},
    {P "NodeStatus", "images", NULL, NULL, "atomic", {NULL}, NULL},
    {P "PodSpec", "containers", "merge", "name", "map", {"name"}, NULL},
    {P "PodSpec", "initContainers", "merge", "name", "map", {"name"}, NULL},
    {P "PodSpec", "imagePullSecrets", "merge", "name", "map", {"name"}, NULL},
    {P "PodSpec", "nodeSelector", NULL, NULL, NULL, {NULL}, "atomic"},
    {P "PodSpec", "tolerations", NULL, NULL, "atomic", {NULL}, NULL},
    {P "PodSpec", "volumes", "merge,retainKeys", "name", "map", {"name"}, NULL},
    {P "PodSecurityContext", "supplementalGroups", NULL, NULL, "atomic", {NULL}, NULL},
    {P "PodSecurityContext", "sysctls", NULL, NULL, "atomic", {NULL}, NULL},
    {P "PodStatus", "conditions", "merge", "type", "map", {"type"}, NULL},
    {P "PodStatus", "containerStatuses", NULL, NULL, "atomic", {NULL}, NULL},
    {P "PodStatus", "initContainerStatuses", NULL, NULL, "atomic", {NULL}, NULL},
    {P "PodStatus", "podIPs", "merge", "ip", "map", {"ip"}, NULL},
    {P "SecretVolumeSource", "items", NULL, NULL, "atomic", {NULL}, NULL},
    /* meta/v1 */
    {P "ObjectMeta", "finalizers", "merge", NULL, "set", {NULL}, NULL},
    {P "ObjectMeta", "ownerReferences", "merge", "uid", "map", {"uid"}, NULL},
    {NULL, NULL, NULL, NULL, NULL, {NULL}, NULL},
};

const struct kmeta *kmeta_lookup(const ProtobufCMessageDescriptor *d, const char *field)
{
    for (const struct kmeta *m = kmeta_all; m->msg; m++)
        if (!strcmp(m->field, field) && !strcmp(m->msg, d->name)) /* fields differ sooner */
            return m;
    return NULL;
}
