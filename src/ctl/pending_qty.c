/*
 * pending_qty: a stand-in for qty_parse while src/lib/qty.c is still being
 * written. It lives in libctlpending.a, linked after libcoracle.a, so the
 * linker only takes it when libcoracle.a does not define qty_parse; the
 * definitions are weak besides. It checks the syntax only (*milli = 0).
 */
#include "config.h"
#include "qty.h"
#include "util.h"

#include <string.h>

int qty_parse(const char *s, int64_t *milli, char **err) __attribute__((weak));

int qty_parse(const char *s, int64_t *milli, char **err)
{
    static const char *const sfx[] = {"",  "n", "u", "m", "k", "M",  "G",  "T",  "P", "E",
                                      "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t nd = strspn(p, "0123456789.");
    int ok = nd > 0 && *s != '-';
    p += nd;
    if (ok && (*p == 'e' || *p == 'E') && p[1]) {
        const char *q = p + 1 + (p[1] == '+' || p[1] == '-');
        ok = *q && strspn(q, "0123456789") == strlen(q);
    } else if (ok) {
        ok = 0;
        for (size_t i = 0; i < ARRAY_SIZE(sfx); i++)
            if (!strcmp(p, sfx[i]))
                ok = 1;
    }
    if (milli)
        *milli = 0;
    if (!ok && err)
        *err = xstrdup("quantities must match the regular expression "
                       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
    return ok ? 0 : -1;
}
