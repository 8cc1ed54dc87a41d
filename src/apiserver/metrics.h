/*
 * metrics: Prometheus histograms for the apiserver's /metrics (request
 * latency by method, store commit batch size and fsync latency). A
 * histogram is a fixed set of upper bounds with cumulative counts, a sum
 * and a count, written in the text format 0.0.4. Loop thread only.
 */
#ifndef CORACLE_METRICS_H
#define CORACLE_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct metrics_hist {
    const double *bounds; /* ascending upper bounds (+Inf implied) */
    size_t n;
    uint64_t counts[24]; /* per bucket (not cumulative); [n] is +Inf */
    double sum;
    uint64_t count;
};

/* Request latency bounds (seconds), batch size bounds, fsync bounds (seconds). */
extern const double metrics_latency_bounds[];
extern const size_t metrics_latency_n;
extern const double metrics_batch_bounds[];
extern const size_t metrics_batch_n;

void metrics_hist_init(struct metrics_hist *h, const double *bounds, size_t n);
/* Adds one observation (or count of them, each of value v). */
void metrics_hist_observe(struct metrics_hist *h, double v, uint64_t count);
/*
 * Writes the samples of h as family name with the extra labels (e.g.
 * "method=\"/x\"", or NULL). The # TYPE line is the caller's, once per family.
 */
void metrics_hist_print(FILE *f, const char *name, const char *labels,
                        const struct metrics_hist *h);

#endif
