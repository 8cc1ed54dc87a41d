/*
 * qty: Kubernetes resource quantities ("100m", "0.5", "128Mi", "1G", "2e3").
 * Values are held as int64 milli-units (1 = 1000, "100m" = 100,
 * "128Mi" = 134217728000), which covers cpu and memory of any real node.
 */
#ifndef CORACLE_QTY_H
#define CORACLE_QTY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses s. Returns 0 and *milli, or -1 with *err (malloc'd, may be NULL
 * if err is NULL) saying what is wrong, in Kubernetes' words: "quantities
 * must match the regular expression
 * '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'". Negative values and
 * values past int64 milli-units are errors.
 */
int qty_parse(const char *s, int64_t *milli, char **err);

/* Whole units, rounded up (cpu "100m" -> 1; memory "1Ki" -> 1024). */
int64_t qty_value(int64_t milli);

/* Formats canonically into buf ("100m", "2", "128Mi", "1Gi", "1500M"). */
void qty_format(char *buf, size_t n, int64_t milli, int binary);

#endif
