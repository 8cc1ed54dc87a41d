/*
 * describe: kubectl describe's layout for pods and nodes, written through
 * the tabwriter (minwidth 0, padding 2) so that the column blocks line up
 * as kubectl's do, ending with the Events table.
 */
#ifndef CORACLE_CTL_DESCRIBE_H
#define CORACLE_CTL_DESCRIBE_H

#include <stddef.h>
#include <stdint.h>

#include "coracle.pb-c.h"
#include "ctl.h"
#include "kinds.h"

/*
 * Appends the description to out. events: those about the object (any
 * order; sorted here by last timestamp); NULL with n 0 prints "<none>".
 */
void ctl_describe_pod(struct buf *out, const Coracle__V1__Pod *pod,
                      Coracle__V1__Event *const *events, size_t nev, int64_t now_ns);
/* pods: the pods bound to the node (for "Non-terminated Pods"). */
void ctl_describe_node(struct buf *out, const Coracle__V1__Node *node,
                       const Coracle__V1__Lease *lease, Coracle__V1__Pod *const *pods, size_t npods,
                       Coracle__V1__Event *const *events, size_t nev, int64_t now_ns);

/*
 * A ReplicaSet, Deployment, DaemonSet, Job or CronJob (obj, of kind k), as
 * kubectl describes it. pods: those its selector selects ("Pods Status");
 * rss: for a Deployment, the ReplicaSets of its namespace (the ones it
 * controls are its old and new ones).
 */
void ctl_describe_workload(struct buf *out, const struct kind *k, const ProtobufCMessage *obj,
                           Coracle__V1__Pod *const *pods, size_t npods,
                           Coracle__V1__ReplicaSet *const *rss, size_t nrs,
                           Coracle__V1__Event *const *events, size_t nev, int64_t now_ns);

/* A Role, ClusterRole, RoleBinding or ClusterRoleBinding (obj, of kind k), as kubectl's
 * RoleDescriber and RoleBindingDescriber print them (the rules' table, roleRef, subjects). */
void ctl_describe_rbac(struct buf *out, const struct kind *k, const ProtobufCMessage *obj);

#endif
