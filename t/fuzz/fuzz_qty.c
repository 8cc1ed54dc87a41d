/*
 * fuzz_qty: quantity parsing (src/lib/qty.h) and formatting of what
 * parsed; a formatted value must parse back to the same number.
 */
#include "config.h"
#include "fuzz.h"
#include "qty.h"

#include <stdlib.h>
#include <string.h>

int fuzz_qty_one(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t m = 0;
    char *err = NULL;
    if (qty_parse(s, &m, &err) == 0) {
        char buf[64];
        qty_value(m);
        for (int bin = 0; bin < 2; bin++) {
            qty_format(buf, sizeof(buf), m, bin);
            int64_t m2 = 0;
            char *e2 = NULL;
            if (qty_parse(buf, &m2, &e2) != 0 || m2 != m)
                abort(); /* format/parse round trip broken */
            free(e2);
        }
    } else {
        free(err);
    }
    free(s);
    return 0;
}

FUZZ_ENTRY(fuzz_qty_one)
