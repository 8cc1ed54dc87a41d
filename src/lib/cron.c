/*
 * cron: parsing CronJob schedules and finding when they fire. See cron.h.
 * The grammar and the error texts are robfig/cron v3's (what Kubernetes'
 * CronJob validation and controller use): a field is a comma-separated
 * list of ranges, a range "*", "?", "N", "N-M", each with an optional
 * "/step" ("N/step" meaning "N-max/step").
 */
#include "config.h"
#include "cron.h"
#include "util.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct bounds {
    unsigned min, max;
    const char *const *names; /* names[i] is min + i, or NULL */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct bounds b_minute = {0, 59, NULL}, b_hour = {0, 23, NULL}, b_dom = {1, 31, NULL},
                           b_month = {1, 12, month_names}, b_dow = {0, 6, dow_names};

/* The star bit of a field, kept apart from the values (bit 63 is never a value). */
#define STAR_BIT (UINT64_C(1) << 63)

/* Go's strconv.Atoi of s (n bytes): 0, or -1 with its error text (malloc'd). */
static int atoi_go(const char *s, size_t n, long *v, char **why)
{
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n) {
        *why = xasprintf("strconv.Atoi: parsing \"%.*s\": invalid syntax", (int)n, s);
        return -1;
    }
    long r = 0;
    int over = 0;
    for (; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            *why = xasprintf("strconv.Atoi: parsing \"%.*s\": invalid syntax", (int)n, s);
            return -1;
        }
        if (r > (LONG_MAX - 9) / 10)
            over = 1;
        else
            r = r * 10 + (s[i] - '0');
    }
    if (over) {
        *why = xasprintf("strconv.Atoi: parsing \"%.*s\": value out of range", (int)n, s);
        return -1;
    }
    *v = neg ? -r : r;
    return 0;
}

/* mustParseInt: a non-negative number, s of n bytes. */
static int parse_int(const char *s, size_t n, unsigned *v, char **err)
{
    long l;
    char *why = NULL;
    if (atoi_go(s, n, &l, &why) < 0) {
        *err = xasprintf("failed to parse int from %.*s: %s", (int)n, s, why);
        free(why);
        return -1;
    }
    if (l < 0) {
        *err = xasprintf("negative number (%ld) not allowed: %.*s", l, (int)n, s);
        return -1;
    }
    *v = l > 1000 ? 1000 : (unsigned)l; /* beyond every maximum either way */
    return 0;
}

static int parse_int_or_name(const char *s, size_t n, const struct bounds *b, unsigned *v,
                             char **err)
{
    for (size_t i = 0; b->names && b->names[i]; i++)
        if (strlen(b->names[i]) == n && !strncasecmp(s, b->names[i], n)) {
            *v = b->min + (unsigned)i;
            return 0;
        }
    return parse_int(s, n, v, err);
}

static size_t count_char(const char *s, size_t n, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

/* getRange: the bits of one range expr (n bytes) into *bits. */
static int parse_range(const char *expr, size_t n, const struct bounds *b, uint64_t *bits,
                       char **err)
{
    const char *slash = memchr(expr, '/', n);
    size_t rn = slash ? (size_t)(slash - expr) : n; /* the range part */
    size_t hyphens = count_char(expr, rn, '-');
    const char *hy = memchr(expr, '-', rn);
    size_t lown = hy ? (size_t)(hy - expr) : rn;
    unsigned start, end, step = 1;
    uint64_t extra = 0;
    if (lown == 1 && (expr[0] == '*' || expr[0] == '?')) {
        start = b->min;
        end = b->max;
        extra = STAR_BIT;
    } else {
        if (parse_int_or_name(expr, lown, b, &start, err) < 0)
            return -1;
        if (hyphens == 0) {
            end = start;
        } else if (hyphens == 1) {
            if (parse_int_or_name(hy + 1, rn - lown - 1, b, &end, err) < 0)
                return -1;
        } else {
            *err = xasprintf("too many hyphens: %.*s", (int)n, expr);
            return -1;
        }
    }
    if (slash) {
        if (count_char(expr, n, '/') > 1) {
            *err = xasprintf("too many slashes: %.*s", (int)n, expr);
            return -1;
        }
        if (parse_int(slash + 1, n - rn - 1, &step, err) < 0)
            return -1;
        if (hyphens == 0)
            end = b->max;
        if (step > 1)
            extra = 0;
    }
    if (start < b->min) {
        *err = xasprintf("beginning of range (%u) below minimum (%u): %.*s", start, b->min, (int)n,
                         expr);
        return -1;
    }
    if (end > b->max) {
        *err = xasprintf("end of range (%u) above maximum (%u): %.*s", end, b->max, (int)n, expr);
        return -1;
    }
    if (start > end) {
        *err = xasprintf("beginning of range (%u) beyond end of range (%u): %.*s", start, end,
                         (int)n, expr);
        return -1;
    }
    if (step == 0) {
        *err = xasprintf("step of range should be a positive number: %.*s", (int)n, expr);
        return -1;
    }
    for (unsigned i = start; i <= end; i += step)
        *bits |= UINT64_C(1) << i;
    *bits |= extra;
    return 0;
}

/* getField: a comma-separated list of ranges (empty items skipped, as strings.FieldsFunc). */
static int parse_field(const char *f, size_t n, const struct bounds *b, uint64_t *bits, char **err)
{
    *bits = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && f[j] != ',')
            j++;
        if (j > i && parse_range(f + i, j - i, b, bits, err) < 0)
            return -1;
        i = j + 1;
    }
    return 0;
}

/* Go's time.ParseDuration, whole seconds kept (what cron.Every keeps). */
static int go_duration(const char *s, int64_t *secs, char **why)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1},   {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
                 {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!strcmp(p, "0")) {
        *secs = 0;
        return 0;
    }
    if (!*p)
        goto invalid;
    double total = 0;
    while (*p) {
        const char *num = p;
        double v = 0, frac = 0, scale = 1;
        while (isdigit((unsigned char)*p))
            v = v * 10 + (*p++ - '0');
        int digits = p > num;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) {
                scale /= 10;
                frac += (*p++ - '0') * scale;
                digits = 1;
            }
        }
        if (!digits)
            goto invalid;
        const char *u = p;
        while (*p && *p != '.' && !isdigit((unsigned char)*p))
            p++;
        if (p == u) {
            *why = xasprintf("time: missing unit in duration \"%s\"", s);
            return -1;
        }
        size_t un = (size_t)(p - u), k;
        for (k = 0; k < ARRAY_SIZE(units); k++)
            if (strlen(units[k].unit) == un && !memcmp(units[k].unit, u, un))
                break;
        if (k == ARRAY_SIZE(units)) {
            *why = xasprintf("time: unknown unit \"%.*s\" in duration \"%s\"", (int)un, u, s);
            return -1;
        }
        total += (v + frac) * units[k].ns;
        if (total > 9.2e18)
            goto invalid;
    }
    *secs = (int64_t)(total / 1e9) * (neg ? -1 : 1);
    return 0;
invalid:
    *why = xasprintf("time: invalid duration \"%s\"", s);
    return -1;
}

static int parse_descriptor(const char *spec, struct cron_sched *s, char **err)
{
    uint64_t all_dom = 0xfffffffeu, all_month = 0x1ffeu, all_dow = 0x7fu;
    memset(s, 0, sizeof(*s));
    s->minute = 1;
    s->hour = 1;
    s->dom = all_dom;
    s->month = all_month;
    s->dow = (uint32_t)all_dow;
    s->dom_star = s->dow_star = true;
    if (!strcmp(spec, "@yearly") || !strcmp(spec, "@annually")) {
        s->dom = 1u << 1;
        s->month = 1u << 1;
        s->dom_star = false;
    } else if (!strcmp(spec, "@monthly")) {
        s->dom = 1u << 1;
        s->dom_star = false;
    } else if (!strcmp(spec, "@weekly")) {
        s->dow = 1;
        s->dow_star = false;
    } else if (!strcmp(spec, "@daily") || !strcmp(spec, "@midnight")) {
        /* as initialized */
    } else if (!strcmp(spec, "@hourly")) {
        s->hour = 0xffffffu;
    } else if (!strncmp(spec, "@every ", 7)) {
        char *why = NULL;
        int64_t d;
        if (go_duration(spec + 7, &d, &why) < 0) {
            *err = xasprintf("failed to parse duration %s: %s", spec, why);
            free(why);
            return -1;
        }
        s->every = d < 1 ? 1 : d;
    } else {
        *err = xasprintf("unrecognized descriptor: %s", spec);
        return -1;
    }
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int cron_parse(const char *spec, struct cron_sched *out, char **err)
{
    *err = NULL;
    if (!*spec) {
        *err = xstrdup("empty spec string");
        return -1;
    }
    /* a time zone prefix: robfig/cron takes it; Kubernetes refuses it apart */
    if (!strncmp(spec, "TZ=", 3) || !strncmp(spec, "CRON_TZ=", 8)) {
        while (*spec && !is_space(*spec))
            spec++;
        while (is_space(*spec))
            spec++;
    }
    if (spec[0] == '@')
        return parse_descriptor(spec, out, err);
    const char *f[5];
    size_t fl[5], n = 0;
    char *all = xstrdup(""); /* the fields as Go prints a []string, for the error */
    for (const char *p = spec; *p;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        const char *st = p;
        while (*p && !is_space(*p))
            p++;
        if (n < 5) {
            f[n] = st;
            fl[n] = (size_t)(p - st);
        }
        char *t = xasprintf("%s%s%.*s", all, n ? " " : "", (int)(p - st), st);
        free(all);
        all = t;
        n++;
    }
    if (n != 5) {
        *err = xasprintf("expected exactly 5 fields, found %zu: [%s]", n, all);
        free(all);
        return -1;
    }
    free(all);
    const struct bounds *b[5] = {&b_minute, &b_hour, &b_dom, &b_month, &b_dow};
    uint64_t bits[5];
    for (size_t i = 0; i < 5; i++)
        if (parse_field(f[i], fl[i], b[i], &bits[i], err) < 0)
            return -1;
    memset(out, 0, sizeof(*out));
    out->minute = bits[0] & ~STAR_BIT;
    out->hour = (uint32_t)bits[1];
    out->dom = (uint32_t)bits[2];
    out->month = (uint32_t)bits[3];
    out->dow = (uint32_t)bits[4];
    out->dom_star = (bits[2] & STAR_BIT) != 0;
    out->dow_star = (bits[4] & STAR_BIT) != 0;
    return 0;
}

/* ---- when next ---- */

static void to_tm(int64_t t, bool utc, struct tm *tm)
{
    time_t tt = (time_t)t;
    if (utc)
        gmtime_r(&tt, tm);
    else
        localtime_r(&tt, tm);
}

static int64_t from_tm(struct tm *tm, bool utc)
{
    if (utc)
        return (int64_t)timegm(tm);
    tm->tm_isdst = -1;
    return (int64_t)mktime(tm);
}

static bool day_matches(const struct cron_sched *s, const struct tm *tm)
{
    bool d = (s->dom >> tm->tm_mday) & 1, w = (s->dow >> tm->tm_wday) & 1;
    return s->dom_star || s->dow_star ? d && w : d || w;
}

int64_t cron_next(const struct cron_sched *s, int64_t t, bool utc)
{
    if (s->every)
        return t + s->every;
    struct tm tm;
    int64_t c = (t >= 0 ? t / 60 : (t - 59) / 60) * 60 + 60; /* the next whole minute */
    to_tm(c, utc, &tm);
    int ylimit = tm.tm_year + 5;
    /* each step moves to the next month, day, hour or minute: a bounded walk */
    for (int steps = 0; steps < 20000 && tm.tm_year <= ylimit; steps++) {
        if (!((s->month >> (tm.tm_mon + 1)) & 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = 0;
        } else if (!day_matches(s, &tm)) {
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = 0;
        } else if (!((s->hour >> tm.tm_hour) & 1)) {
            tm.tm_hour++;
            tm.tm_min = 0;
        } else if (!((s->minute >> tm.tm_min) & 1)) {
            tm.tm_min++;
        } else {
            return c;
        }
        tm.tm_sec = 0;
        int64_t nc = from_tm(&tm, utc);
        if (nc <= c) /* a local clock going back: never walk backwards */
            nc = c + 60;
        c = nc;
        to_tm(c, utc, &tm);
    }
    return -1;
}
