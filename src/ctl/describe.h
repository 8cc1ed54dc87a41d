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

#endif
