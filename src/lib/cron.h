/*
 * cron: CronJob schedules as Kubernetes reads them (robfig/cron's
 * ParseStandard): five fields "minute hour day-of-month month day-of-week"
 * with lists, ranges, steps, `*` and `?`, month and weekday names
 * (case-insensitive), and the descriptors @yearly, @annually, @monthly,
 * @weekly, @daily, @midnight, @hourly and @every <duration>. The apiserver
 * validates spec.schedule with cron_parse; the controller manager asks
 * cron_next when a schedule fires next. Pure functions of their arguments.
 */
#ifndef CORACLE_CRON_H
#define CORACLE_CRON_H

#include <stdbool.h>
#include <stdint.h>

struct cron_sched {
    uint64_t minute; /* bit n: minute n fires (0-59) */
    uint32_t hour;   /* 0-23 */
    uint32_t dom;    /* 1-31 */
    uint32_t month;  /* 1-12 */
    uint32_t dow;    /* 0-6, Sunday 0 */
    /* a day field that is `*` or `?` (no step): the day matches when both
     * fields do; else when either does, as cron has it */
    bool dom_star, dow_star;
    int64_t every; /* @every: its period in seconds (>= 1); 0 for a field spec */
};

/*
 * Parses spec into *out. Returns 0, or -1 with *err (malloc'd) in
 * robfig/cron's words, which Kubernetes shows after the schedule:
 * "expected exactly 5 fields, found 1: [bad]".
 */
int cron_parse(const char *spec, struct cron_sched *out, char **err);

/*
 * The first time after t (Unix seconds) that s fires, read in UTC (utc) or
 * in the process's local time zone. -1 when it never fires within the next
 * five years (February 30th).
 */
int64_t cron_next(const struct cron_sched *s, int64_t t, bool utc);

#endif
