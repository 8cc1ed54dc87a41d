/*
 * print: kubectl's human-readable output. A copy of Go's text/tabwriter
 * column algorithm (kubectl pads tables with it, and describe's layout
 * depends on its column blocks), and the rows of `get
 * pods|nodes|events|leases`: the columns and cells of columns.h (the ones
 * the apiserver's Table has), the columns -o wide adds, and kubectl's own
 * NAMESPACE and LABELS. Everything takes "now" as a parameter so tests give
 * a fixed one.
 */
#ifndef CORACLE_CTL_PRINT_H
#define CORACLE_CTL_PRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "columns.h"
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

/* coraclectl's names for the ages and derived cells of columns.h (describe
 * shows them too). */
#define ctl_human_duration cols_human_duration
#define ctl_age cols_age
#define ctl_pod_summary cols_pod_summary /* the struct and the function */
#define ctl_pod_restarts cols_pod_restarts
#define ctl_node_status cols_node_status
#define ctl_node_roles cols_node_roles

/* time.RFC1123Z in local time: "Sat, 28 Nov 2026 06:35:04 +0000". */
void ctl_fmt_rfc1123z(char *buf, size_t n, int64_t sec);

struct ctl_print_opts {
    bool wide, all_ns, no_headers, show_labels;
    const char *kind_prefix; /* names shown as "<kind_prefix>/<name>" (a table of several kinds) */
    int64_t now_ns;
};
/* The header line of kind's table into tw. */
void ctl_print_header(struct ctl_tw *tw, const struct kind *k, const struct ctl_print_opts *o);
/* One row for obj (a message of kind k) into tw. */
void ctl_print_row(struct ctl_tw *tw, const struct kind *k, const ProtobufCMessage *obj,
                   const struct ctl_print_opts *o);

#endif
