/*
 * fuzz_cron: CronJob schedule parsing (src/lib/cron.h), and the next
 * times of what parsed: each later than the one before, or -1.
 */
#include "config.h"
#include "cron.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

int fuzz_cron_one(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    struct cron_sched cs;
    char *err = NULL;
    if (cron_parse(s, &cs, &err) == 0) {
        int64_t t = 1796646870; /* 2026-12-07 */
        for (int i = 0; i < 3 && t >= 0; i++) {
            int64_t n = cron_next(&cs, t, true);
            if (n != -1 && n <= t)
                abort(); /* time went backwards */
            t = n;
        }
    } else if (!err) {
        abort(); /* a refusal always says why */
    }
    free(err);
    free(s);
    return 0;
}

FUZZ_ENTRY(fuzz_cron_one)
