/*
 * print: kubectl's human-readable output. A copy of Go's text/tabwriter
 * column algorithm (kubectl pads tables with it, and describe's layout
 * depends on its column blocks), Kubernetes' duration.HumanDuration for
 * ages, printPod's STATUS/READY/RESTARTS derivation, and the rows of
 * `get pods|nodes|events|leases`. Everything takes "now" as a parameter so
 * tests give a fixed one.
 */
#ifndef CORACLE_CTL_PRINT_H
#define CORACLE_CTL_PRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coracle.pb-c.h"
#include "ctl.h"
#include "kinds.h"

/*
 * Go's tabwriter: text is lines of cells; a cell ends at '\t', the last
 * cell of a line (after the last tab) is not part of a column. Columns are
 * aligned within blocks of consecutive lines that have that column.
 * remember: widths only grow across flushes (kubectl's RememberWidths, for
 * -w). get: minwidth 6, padding 3; describe: minwidth 0, padding 2.
 */
struct ctl_tw {
    int minwidth, padding;
    bool remember;
    struct buf text;
    size_t *widths; /* remembered */
    size_t nwidths;
};
void ctl_tw_init(struct ctl_tw *tw, int minwidth, int padding, bool remember);
void ctl_tw_printf(struct ctl_tw *tw, const char *fmt, ...) PRINTF(2, 3);
/* Formats what was written since the last flush and appends it to out. */
void ctl_tw_flush(struct ctl_tw *tw, struct buf *out);
void ctl_tw_free(struct ctl_tw *tw);

/* duration.HumanDuration of d nanoseconds ("45s", "3m12s", "2h5m", "3d4h"). */
void ctl_human_duration(char *buf, size_t n, int64_t d_ns);
/* translateTimestampSince: "<unknown>" for an unset time. */
void ctl_age(char *buf, size_t n, const Coracle__V1__Time *t, int64_t now_ns);
/* time.RFC1123Z in local time: "Sat, 28 Nov 2026 06:35:04 +0000". */
void ctl_fmt_rfc1123z(char *buf, size_t n, int64_t sec);

/* printPod's derivation. */
struct ctl_pod_summary {
    char status[128];
    int ready, total, restarts;
    int64_t last_restart_sec; /* 0 if none */
};
void ctl_pod_summary(const Coracle__V1__Pod *pod, struct ctl_pod_summary *s);
/* The RESTARTS cell: "0", "3 (2m ago)". */
void ctl_pod_restarts(char *buf, size_t n, const struct ctl_pod_summary *s, int64_t now_ns);
/* The node STATUS cell: "Ready", "NotReady,SchedulingDisabled", "Unknown". */
void ctl_node_status(char *buf, size_t n, const Coracle__V1__Node *node);
/* ROLES: from node-role.kubernetes.io/<role> and kubernetes.io/role labels; malloc'd. */
char *ctl_node_roles(const Coracle__V1__Node *node);

struct ctl_print_opts {
    bool wide, all_ns, no_headers, show_labels;
    int64_t now_ns;
};
/* The header line of kind's table into tw. */
void ctl_print_header(struct ctl_tw *tw, const struct kind *k, const struct ctl_print_opts *o);
/* One row for obj (a message of kind k) into tw. */
void ctl_print_row(struct ctl_tw *tw, const struct kind *k, const ProtobufCMessage *obj,
                   const struct ctl_print_opts *o);

/* Label map lookup; NULL if absent. */
const char *ctl_map_get(Coracle__V1__ObjectMeta__LabelsEntry **v, size_t n, const char *key);

#endif
