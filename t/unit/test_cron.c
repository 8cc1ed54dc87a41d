/* Unit tests for src/lib/cron.c: CronJob schedules, their errors and next times. */
#include "config.h"
#include "tap.h"

#include "cron.h"

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static void bad(const char *spec, const char *want)
{
    struct cron_sched s;
    char *err = NULL;
    ok(cron_parse(spec, &s, &err) == -1, "'%s' refused", spec);
    is_str(err, want, "  its error");
    free(err);
}

/* A UTC time from its parts. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    return (int64_t)timegm(&tm);
}

static void next(const char *spec, int64_t from, int64_t want)
{
    struct cron_sched s;
    char *err = NULL;
    int rc = cron_parse(spec, &s, &err);
    int64_t got = rc == 0 ? cron_next(&s, from, true) : -2;
    ok(got == want, "'%s' after %lld: %lld", spec, (long long)from, (long long)want);
    if (got != want)
        diag("got %lld (%s)", (long long)got, err ? err : "parsed");
    free(err);
}

int main(void)
{
    int64_t t0 = utc(2026, 12, 7, 12, 14) + 30; /* Monday 2026-12-07 12:14:30 */
    next("* * * * *", t0, utc(2026, 12, 7, 12, 15));
    next("* * * * *", utc(2026, 12, 7, 12, 15), utc(2026, 12, 7, 12, 16));
    next("*/15 * * * *", t0, utc(2026, 12, 7, 12, 15));
    next("0 * * * *", t0, utc(2026, 12, 7, 13, 0));
    next("@hourly", t0, utc(2026, 12, 7, 13, 0));
    next("@daily", t0, utc(2026, 12, 8, 0, 0));
    next("@midnight", t0, utc(2026, 12, 8, 0, 0));
    next("@weekly", t0, utc(2026, 12, 13, 0, 0));
    next("@monthly", t0, utc(2027, 1, 1, 0, 0));
    next("@yearly", t0, utc(2027, 1, 1, 0, 0));
    next("@annually", t0, utc(2027, 1, 1, 0, 0));
    next("@every 1h30m", t0, t0 + 5400);
    next("30 2 * * 1-5", t0, utc(2026, 12, 8, 2, 30));
    next("30 2 * * SAT,sun", t0, utc(2026, 12, 12, 2, 30));
    next("0 0 1 JAN-mar *", t0, utc(2027, 1, 1, 0, 0));
    next("5/20 * * * *", t0, utc(2026, 12, 7, 12, 25));
    next("10-40/10 8 * * ?", t0, utc(2026, 12, 8, 8, 10));
    /* both day fields restricted: either matches (the 13th, or a Friday) */
    next("0 0 13 * 5", t0, utc(2026, 12, 11, 0, 0));
    /* one day field starred: both must match (Friday the 13th) */
    next("0 0 13 * *", t0, utc(2026, 12, 13, 0, 0));
    next("0 0 29 2 *", t0, utc(2028, 2, 29, 0, 0));
    next("0 0 30 2 *", t0, -1);
    next(" 1  2\t3 4 * ", t0, utc(2027, 4, 3, 2, 1));
    next("CRON_TZ=UTC 0 0 * * *", t0, utc(2026, 12, 8, 0, 0));

    bad("", "empty spec string");
    bad("bad", "expected exactly 5 fields, found 1: [bad]");
    bad("* * * *  * *", "expected exactly 5 fields, found 6: [* * * * * *]");
    bad("60 * * * *", "end of range (60) above maximum (59): 60");
    bad("* 0-24 * * *", "end of range (24) above maximum (23): 0-24");
    bad("* * 0 * *", "beginning of range (0) below minimum (1): 0");
    bad("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1");
    bad("x * * * *", "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax");
    bad("-1 * * * *", "failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax");
    bad("1-2-3 * * * *", "too many hyphens: 1-2-3");
    bad("*/2/3 * * * *", "too many slashes: */2/3");
    bad("*/0 * * * *", "step of range should be a positive number: */0");
    bad("* * * * 7", "end of range (7) above maximum (6): 7");
    bad("* * * foo *",
        "failed to parse int from foo: strconv.Atoi: parsing \"foo\": invalid syntax");
    bad("@often", "unrecognized descriptor: @often");
    bad("@every 5", "failed to parse duration @every 5: time: missing unit in duration \"5\"");
    bad("@every 5y", "failed to parse duration @every 5y: time: unknown unit \"y\" in duration "
                     "\"5y\"");
    return done_testing();
}
