/* Unit tests for src/lib/qty.c: Kubernetes quantity parsing and canonical formatting. */
#include "config.h"
#include "tap.h"

#include "qty.h"

#include <stdint.h>

static void good(const char *s, int64_t want)
{
    int64_t v = -12345;
    char *err = NULL;
    int rc = qty_parse(s, &v, &err);
    ok(rc == 0 && v == want, "parse '%s' = %lldm", s, (long long)want);
    if (rc != 0 || v != want)
        diag("rc %d value %lld err %s", rc, (long long)v, err ? err : "(none)");
    free(err);
}

static void bad(const char *s, const char *want_err)
{
    int64_t v = 0;
    char *err = NULL;
    int rc = qty_parse(s, &v, &err);
    ok(rc == -1, "parse '%s' fails", s);
    is_str(err, want_err, "  its error");
    free(err);
}

static void fmt(int64_t milli, int binary, const char *want)
{
    char buf[64], name[96];
    qty_format(buf, sizeof buf, milli, binary);
    /* a name of its own: gcc -O1 takes want for possibly NULL once is_str tests it */
    snprintf(name, sizeof name, "%lld milli formats as %s", (long long)milli, want);
    is_str(buf, want, name);
}

#define E_FMT                                                                                      \
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
#define E_SUF "unable to parse quantity's suffix"
#define E_NUM "unable to parse numeric part of quantity"
#define E_NEG "must be greater than or equal to 0"
#define E_BIG "quantity too large: must be at most 9223372036854775807m"

int main(void)
{
    good("0", 0);
    good("+0", 0);
    good("000", 0);
    good("1", 1000);
    good("100m", 100);
    good("0.5", 500);
    good(".5", 500);
    good("5.", 5000);
    good("1.5", 1500);
    good("2.25k", 2250000);
    good("128Mi", 134217728000LL);
    good("1Ki", 1024000);
    good("1Gi", 1073741824000LL);
    good("1.5Gi", 1610612736000LL);
    good("1G", 1000000000000LL);
    good("1M", 1000000000LL);
    good("1T", 1000000000000000LL);
    good("1P", 1000000000000000000LL);
    good("2e3", 2000000);
    good("2E3", 2000000);
    good("1e-3", 1);
    good("1e+3", 1000000);
    good("1n", 1); /* rounds up to 1m, like MilliValue() */
    good("1u", 1);
    good("1500u", 2);
    good("1000000n", 1);
    good("0.0001", 1);
    good("1e-400", 1);
    good("8Pi", 9007199254740992000LL);
    good("007", 7000);
    good("-0", 0);
    good("9223372036854775807m", INT64_MAX);
    good("0.000000000000000000000000000000000000000001Ki", 1);

    bad("", E_FMT);
    bad("1.2.3", E_FMT);
    bad("10Mb", E_FMT);
    bad("abc", E_FMT);
    bad("1 ", E_FMT);
    bad(" 1", E_FMT);
    bad("10K", E_SUF);
    bad("10Mi5", E_SUF);
    bad("1e", E_SUF);
    bad("1mm", E_SUF);
    bad("1e3.5", E_FMT);
    bad(".", E_NUM);
    bad("-1", E_NEG);
    bad("-100m", E_NEG);
    bad("1e400", E_BIG);
    bad("9223372036854775808m", E_BIG);
    bad("1Ei", E_BIG);
    bad("1E", E_BIG);
    bad("100000000000000000000000000000000000000000000", E_BIG);

    int64_t v;
    ok(qty_parse("1x", &v, NULL) == -1, "NULL err pointer is allowed");

    is_int(qty_value(100), 1, "qty_value rounds 100m up to 1");
    is_int(qty_value(1000), 1, "qty_value 1");
    is_int(qty_value(1024000), 1024, "qty_value 1Ki");
    is_int(qty_value(0), 0, "qty_value 0");

    fmt(0, 0, "0");
    fmt(100, 0, "100m");
    fmt(1000, 0, "1");
    fmt(2000, 0, "2");
    fmt(1500, 0, "1500m");
    fmt(1500000, 0, "1500");
    fmt(1500000000000LL, 0, "1500M");
    fmt(1000000000000LL, 0, "1G");
    fmt(134217728000LL, 1, "128Mi");
    fmt(1073741824000LL, 1, "1Gi");
    fmt(1024000, 1, "1Ki");
    fmt(1536000, 1, "1536");
    fmt(1000000, 1, "1k"); /* under 1024: decimal, as Kubernetes */
    fmt(500, 1, "500m");
    fmt(1610612736000LL, 1, "1536Mi");
    fmt(-100, 0, "-100m");

    /* round trips */
    const char *rt[] = {"100m", "2", "128Mi", "1Gi", "1500M", "3k", "7Ti"};
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        char buf[64];
        int64_t m;
        qty_parse(rt[i], &m, NULL);
        qty_format(buf, sizeof buf, m, strchr(rt[i], 'i') != NULL);
        is_str(buf, rt[i], "round trip");
    }
    return done_testing();
}
