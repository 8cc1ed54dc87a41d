/*
 * metrics: Prometheus histograms. See metrics.h.
 */
#include "config.h"
#include "metrics.h"

#include <inttypes.h>
#include <string.h>

const double metrics_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t metrics_latency_n = sizeof(metrics_latency_bounds) / sizeof(double);
const double metrics_batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 10000};
const size_t metrics_batch_n = sizeof(metrics_batch_bounds) / sizeof(double);

void metrics_hist_init(struct metrics_hist *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n = n < 23 ? n : 23;
}

void metrics_hist_observe(struct metrics_hist *h, double v, uint64_t count)
{
    size_t i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    h->counts[i] += count;
    h->sum += v * (double)count;
    h->count += count;
}

void metrics_hist_print(FILE *f, const char *name, const char *labels, const struct metrics_hist *h)
{
    const char *sep = labels && *labels ? "," : "";
    labels = labels ? labels : "";
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += h->counts[i];
        fprintf(f, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep, h->bounds[i], cum);
    }
    cum += h->counts[h->n];
    fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, cum);
    if (*labels) {
        fprintf(f, "%s_sum{%s} %.9g\n", name, labels, h->sum);
        fprintf(f, "%s_count{%s} %" PRIu64 "\n", name, labels, h->count);
    } else {
        fprintf(f, "%s_sum %.9g\n%s_count %" PRIu64 "\n", name, h->sum, name, h->count);
    }
}
