/*
 * The CronJob controller, as Kubernetes' (pkg/controller/cronjob, its
 * v2): at each time spec.schedule names, a Job from spec.jobTemplate,
 * named "<cronjob>-<scheduled time in minutes since the epoch>" (the name
 * is the lock that keeps a time from running twice) and annotated with
 * batch.kubernetes.io/cronjob-scheduled-timestamp. A time missed by more
 * than startingDeadlineSeconds is skipped (MissSchedule);
 * concurrencyPolicy Forbid skips a time while a Job runs, Replace deletes
 * the running ones first; suspend stops new runs; finished Jobs beyond
 * successfulJobsHistoryLimit (3) and failedJobsHistoryLimit (1) are
 * deleted, oldest first. Status: active (references to the running
 * Jobs), lastScheduleTime, lastSuccessfulTime.
 *
 * The next time is waited for with ctrl_enqueue_after: nothing polls.
 * Schedules are read in the controller's local time, or in the zone
 * spec.timeZone names, from the system's time zone database (cron_next
 * reads local time: the process's TZ is that zone for the computation);
 * a zone the database lacks is refused (UnknownTimeZone). The history
 * limits are applied with
 * Kubernetes' defaults when the CronJob does not say, so that the
 * controller does not depend on the apiserver's defaulting.
 *
 * The decision is cj_plan, a function of the CronJob, its Jobs and the
 * time now (unit-tested with a fake clock); cj_sync carries it out.
 */
#include "config.h"

#include "controllers.h"
#include "cron.h"
#include "grpc.h"
#include "job.h"
#include "smap.h"
#include "util.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef ZONEINFO_DIR
#define ZONEINFO_DIR "/usr/share/zoneinfo" /* the system's time zone database */
#endif
#define SCHEDULED_ANNOTATION "batch.kubernetes.io/cronjob-scheduled-timestamp"
#define NEXT_DELTA_MS 100 /* past the scheduled second, as nextScheduleDelta */
#define MANY_MISSED 100
#define DEFAULT_SUCCESSFUL_LIMIT 3
#define DEFAULT_FAILED_LIMIT 1

struct cj_event {
    const char *type, *reason;
    char *message; /* malloc'd */
};

/*
 * What a sync does, decided by cj_plan. Pointers are borrowed from the
 * CronJob, its Jobs or the plan, valid until control returns to the loop;
 * cj_plan_free frees what the plan allocated.
 */
struct cj_plan {
    Coracle__V1__CronJobStatus st; /* the status to have (before a create) */
    bool write_status;
    bool create;         /* a Job for scheduled_s */
    int64_t scheduled_s; /* the time it is for */
    char stamp[40];      /* scheduled_s in RFC 3339, in the CronJob's time zone */
    bool replace;        /* the Jobs deleted are the running ones (Replace) */
    const Coracle__V1__Job **del;
    size_t n_del;
    struct cj_event *ev; /* malloc'd */
    size_t n_ev, cap_ev;
    int64_t requeue_ms; /* sync again after this long (0: no need) */
    /* storage for st */
    Coracle__V1__ObjectReference **active;
    Coracle__V1__Time last_success;
};

static void plan_event(struct cj_plan *pl, const char *type, const char *reason, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
static void plan_event(struct cj_plan *pl, const char *type, const char *reason, const char *fmt,
                       ...)
{
    va_list ap;
    pl->ev = xgrow(pl->ev, &pl->cap_ev, pl->n_ev + 1, sizeof(*pl->ev));
    va_start(ap, fmt);
    pl->ev[pl->n_ev++] = (struct cj_event){type, reason, xvasprintf(fmt, ap)};
    va_end(ap);
}

static void cj_plan_free(struct cj_plan *pl)
{
    for (size_t i = 0; i < pl->n_ev; i++)
        free(pl->ev[i].message);
    free(pl->ev);
    free(pl->active);
    free(pl->del);
}

/* Whether spec.timeZone names UTC. */
static bool zone_utc(const char *tz)
{
    static const char *const utc[] = {
        "UTC",  "Etc/UTC",   "Etc/UCT",   "UCT",       "Etc/GMT",       "GMT",  "Etc/GMT0",
        "GMT0", "Etc/GMT+0", "Etc/GMT-0", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"};
    for (size_t i = 0; i < sizeof(utc) / sizeof(utc[0]); i++)
        if (!strcmp(tz, utc[i]))
            return true;
    return false;
}

/* Whether tz names a zone of the system's time zone database, as Go's LoadLocation finds them. */
static bool zone_known(const char *tz)
{
    if (!*tz || *tz == '/' || strstr(tz, "..") || !strcmp(tz, "Local"))
        return false;
    char *path = xconcat(ZONEINFO_DIR "/", tz, NULL);
    struct stat st;
    bool ok = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    free(path);
    return ok;
}

/*
 * The process's TZ set to a zone for a while: cron_next and localtime_r
 * then read local time as that zone's. The manager has one thread, and
 * nothing else runs between zone_enter and zone_leave.
 */
struct zone_swap {
    char *old; /* TZ before, or NULL if unset */
};

static void zone_enter(const char *tz, struct zone_swap *z)
{
    const char *old = getenv("TZ");
    z->old = old ? xstrdup(old) : NULL;
    setenv("TZ", tz, 1);
    tzset();
}

static void zone_leave(struct zone_swap *z)
{
    if (z->old)
        setenv("TZ", z->old, 1);
    else
        unsetenv("TZ");
    tzset();
    free(z->old);
}

/* t in RFC 3339 as Go writes it: in UTC ("Z"), or in local time with its offset. */
static void rfc3339(int64_t t, bool utc, char buf[40])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (utc)
        gmtime_r(&tt, &tm);
    else
        localtime_r(&tt, &tm);
    size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    long off = utc ? 0 : tm.tm_gmtoff;
    if (!off)
        snprintf(buf + n, 40 - n, "Z");
    else
        snprintf(buf + n, 40 - n, "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
                 labs(off) % 3600 / 60);
}

static int active_index(const struct cj_plan *pl, const char *uid)
{
    for (size_t i = 0; i < pl->st.n_active; i++)
        if (pl->st.active[i]->uid && uid && !strcmp(pl->st.active[i]->uid, uid))
            return (int)i;
    return -1;
}

static void active_remove(struct cj_plan *pl, const char *uid)
{
    int i = active_index(pl, uid);
    if (i < 0)
        return;
    memmove(&pl->st.active[i], &pl->st.active[i + 1],
            (pl->st.n_active - (size_t)i - 1) * sizeof(*pl->st.active));
    pl->st.n_active--;
    pl->write_status = true;
}

static const char *job_name(const Coracle__V1__Job *j)
{
    return j->metadata && j->metadata->name ? j->metadata->name : "";
}

static int64_t start_of(const Coracle__V1__Job *j)
{
    return j->status && j->status->starttime ? j->status->starttime->seconds : INT64_MAX;
}

/* Kubernetes' byJobStartTime: the oldest start first, no start last, then by name. */
static int by_start(const void *pa, const void *pb)
{
    const Coracle__V1__Job *a = *(const Coracle__V1__Job *const *)pa;
    const Coracle__V1__Job *b = *(const Coracle__V1__Job *const *)pb;
    if (start_of(a) != start_of(b))
        return start_of(a) < start_of(b) ? -1 : 1;
    return strcmp(job_name(a), job_name(b));
}

static void plan_delete(struct cj_plan *pl, const Coracle__V1__Job *j)
{
    for (size_t i = 0; i < pl->n_del; i++)
        if (pl->del[i] == j)
            return;
    pl->del[pl->n_del++] = j;
    active_remove(pl, j->metadata ? j->metadata->uid : NULL);
    plan_event(pl, "Normal", "SuccessfulDelete", "Deleted job %s", job_name(j));
}

/* Kubernetes' cleanupFinishedJobs: the oldest finished Jobs beyond each history limit go. */
static void cleanup_history(struct cj_plan *pl, const Coracle__V1__CronJobSpec *spec,
                            const Coracle__V1__Job **jobs, size_t n)
{
    const Coracle__V1__Job **ok = xmalloc((n ? n : 1) * sizeof(*ok));
    const Coracle__V1__Job **failed = xmalloc((n ? n : 1) * sizeof(*failed));
    size_t n_ok = 0, n_failed = 0;
    for (size_t i = 0; i < n; i++) {
        const char *type;
        if (!job_finished(jobs[i], &type, NULL))
            continue;
        if (!strcmp(type, "Complete"))
            ok[n_ok++] = jobs[i];
        else
            failed[n_failed++] = jobs[i];
    }
    int32_t keep_ok = spec->has_successfuljobshistorylimit ? spec->successfuljobshistorylimit
                                                           : DEFAULT_SUCCESSFUL_LIMIT;
    int32_t keep_failed =
        spec->has_failedjobshistorylimit ? spec->failedjobshistorylimit : DEFAULT_FAILED_LIMIT;
    qsort(ok, n_ok, sizeof(*ok), by_start);
    qsort(failed, n_failed, sizeof(*failed), by_start);
    for (size_t i = 0; keep_ok >= 0 && i + (size_t)keep_ok < n_ok; i++)
        plan_delete(pl, ok[i]);
    for (size_t i = 0; keep_failed >= 0 && i + (size_t)keep_failed < n_failed; i++)
        plan_delete(pl, failed[i]);
    free(ok);
    free(failed);
}

/* The Jobs against status.active, as the start of Kubernetes' syncCronJob. */
static void reconcile_active(struct cj_plan *pl, const Coracle__V1__CronJob *cj,
                             const Coracle__V1__Job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__Job *j = jobs[i];
        const char *uid = j->metadata ? j->metadata->uid : NULL;
        bool found = active_index(pl, uid) >= 0;
        const char *type;
        bool finished = job_finished(j, &type, NULL);
        if (!found && !finished) {
            plan_event(pl, "Warning", "UnexpectedJob",
                       "Saw a job that the controller did not create or forgot: %s", job_name(j));
        } else if (found && finished) {
            active_remove(pl, uid);
            plan_event(pl, "Normal", "SawCompletedJob", "Saw completed job: %s, condition: %s",
                       job_name(j), type);
        }
        const Coracle__V1__Time *done = j->status ? j->status->completiontime : NULL;
        if (finished && !strcmp(type, "Complete") && done &&
            (!pl->st.lastsuccessfultime || done->seconds > pl->st.lastsuccessfultime->seconds)) {
            pl->last_success = *done;
            pl->st.lastsuccessfultime = &pl->last_success;
            pl->write_status = true;
        }
    }
    /* references to Jobs that are gone */
    for (size_t i = 0; i < pl->st.n_active;) {
        const Coracle__V1__ObjectReference *r = pl->st.active[i];
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = jobs[k]->metadata && jobs[k]->metadata->uid && r->uid &&
                    !strcmp(jobs[k]->metadata->uid, r->uid);
        if (found) {
            i++;
            continue;
        }
        plan_event(pl, "Normal", "MissingJob", "Active job went missing: %s",
                   r->name ? r->name : "");
        active_remove(pl, r->uid);
    }
}

/*
 * Kubernetes' mostRecentScheduleTime: the latest time the schedule fires
 * in (earliest, now], or -1; *missed how many times it fired there.
 */
static int64_t most_recent(const struct cron_sched *s, bool utc, int64_t earliest, int64_t now,
                           int64_t *missed)
{
    *missed = 0;
    int64_t t1 = cron_next(s, earliest, utc);
    if (t1 < 0 || t1 > now)
        return -1;
    int64_t t2 = cron_next(s, t1, utc);
    if (t2 < 0 || t2 > now) {
        *missed = 1;
        return t1;
    }
    /* many: jump near now by the period, then walk (as Kubernetes approximates it) */
    int64_t period = t2 - t1;
    *missed = (now - t1) / period + 1;
    int64_t recent = -1;
    for (int64_t t = cron_next(s, t1 + (*missed - 2) * period, utc); t >= 0 && t <= now;
         t = cron_next(s, t, utc))
        recent = t;
    if (recent < 0) /* an irregular schedule the jump overshot: the long walk */
        for (int64_t t = t2; t >= 0 && t <= now; t = cron_next(s, t, utc))
            recent = t;
    return recent;
}

/* The Job for scheduled time t: "<cronjob>-<t in minutes since the epoch>", as getJobName. */
static char *job_name_for(const Coracle__V1__CronJob *cj, int64_t t)
{
    return xasprintf("%s-%lld", cj->metadata->name, (long long)(t / 60));
}

/* RFC 1123 with a numeric zone, in UTC, as Go's time.RFC1123Z: "Mon, 07 Dec 2026 12:30:00 +0000".
 */
static void rfc1123z(int64_t t, char buf[40])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    snprintf(buf, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * When schedule s fires, read in UTC (utc) or local time: the most recent
 * time due, and the wait for the next, as the end of Kubernetes'
 * syncCronJob.
 */
static void plan_times(struct cj_plan *pl, const Coracle__V1__CronJob *cj,
                       const struct cron_sched *sched, bool utc, int64_t now_s)
{
    const Coracle__V1__CronJobSpec *spec = cj->spec;
    const Coracle__V1__ObjectMeta *m = cj->metadata;
    int64_t earliest = m->creationtimestamp ? m->creationtimestamp->seconds : now_s;
    if (pl->st.lastscheduletime)
        earliest = pl->st.lastscheduletime->seconds;
    int64_t next = cron_next(sched, earliest > now_s ? earliest : now_s, utc);
    if (next >= 0)
        pl->requeue_ms = (next - now_s) * 1000 + NEXT_DELTA_MS;
    if (spec->has_startingdeadlineseconds && now_s - spec->startingdeadlineseconds > earliest)
        earliest = now_s - spec->startingdeadlineseconds;
    int64_t missed;
    int64_t t = most_recent(sched, utc, earliest, now_s, &missed);
    if (t < 0)
        return;
    if (missed > MANY_MISSED)
        plan_event(pl, "Warning", "TooManyMissedTimes",
                   "too many missed start times: %lld. Set or decrease "
                   ".spec.startingDeadlineSeconds or check clock skew",
                   (long long)missed);
    if (spec->has_startingdeadlineseconds && t + spec->startingdeadlineseconds < now_s) {
        char when[40];
        rfc1123z(t, when);
        plan_event(pl, "Warning", "MissSchedule", "Missed scheduled time to start a job: %s", when);
        return;
    }
    char *name = job_name_for(cj, t);
    bool running = false;
    for (size_t i = 0; i < pl->st.n_active; i++)
        running |= pl->st.active[i]->name && !strcmp(pl->st.active[i]->name, name);
    free(name);
    if (running || (pl->st.lastscheduletime && pl->st.lastscheduletime->seconds == t))
        return; /* this time is done or running already */
    const char *policy = spec->concurrencypolicy ? spec->concurrencypolicy : "Allow";
    if (!strcmp(policy, "Forbid") && pl->st.n_active > 0) {
        plan_event(pl, "Normal", "JobAlreadyActive",
                   "Not starting job because prior execution is running and concurrency "
                   "policy is Forbid");
        return;
    }
    pl->replace = !strcmp(policy, "Replace") && pl->st.n_active > 0;
    pl->create = true;
    pl->scheduled_s = t;
    /* Kubernetes writes it in the zone timeZone names, UTC without one */
    rfc3339(t, utc || !spec->timezone, pl->stamp);
}

/* The schedule part of Kubernetes' syncCronJob, once the Jobs are reconciled. */
static void plan_schedule(struct cj_plan *pl, const Coracle__V1__CronJob *cj, int64_t now_s)
{
    const Coracle__V1__CronJobSpec *spec = cj->spec;
    const char *tz = spec->timezone;
    bool utc = tz && zone_utc(tz);
    if (tz && !utc && !zone_known(tz)) {
        plan_event(pl, "Warning", "UnknownTimeZone",
                   "invalid timeZone: \"%s\": unknown time zone %s", tz, tz);
        return;
    }
    if (spec->has_suspend && spec->suspend)
        return;
    struct cron_sched s;
    char *err = NULL;
    if (cron_parse(spec->schedule ? spec->schedule : "", &s, &err) < 0) {
        plan_event(pl, "Warning", "UnparseableSchedule", "unparseable schedule: \"%s\" : %s",
                   spec->schedule ? spec->schedule : "", err);
        free(err);
        return;
    }
    if (tz && !utc) {
        struct zone_swap z;
        zone_enter(tz, &z);
        plan_times(pl, cj, &s, false, now_s);
        zone_leave(&z);
    } else {
        plan_times(pl, cj, &s, utc, now_s);
    }
}

/*
 * Decides a sync of cj at now_s from its Jobs (jobs[], those it controls),
 * as Kubernetes' sync: history cleanup, the Jobs against status.active,
 * then the schedule. Returns false for a CronJob it cannot read (no
 * metadata or spec; *pl untouched).
 */
static bool cj_plan(const Coracle__V1__CronJob *cj, const Coracle__V1__Job **jobs, size_t n,
                    int64_t now_s, struct cj_plan *pl)
{
    static const Coracle__V1__CronJobStatus no_status = CORACLE__V1__CRON_JOB_STATUS__INIT;
    if (!cj->metadata || !cj->metadata->name || !cj->spec)
        return false;
    const Coracle__V1__CronJobStatus *old = cj->status ? cj->status : &no_status;
    memset(pl, 0, sizeof(*pl));
    pl->st = *old;
    pl->active = xmalloc((old->n_active + 1) * sizeof(*pl->active));
    if (old->n_active)
        memcpy(pl->active, old->active, old->n_active * sizeof(*pl->active));
    pl->st.active = pl->active;
    pl->del = xmalloc((n + old->n_active + 1) * sizeof(*pl->del));

    cleanup_history(pl, cj->spec, jobs, n);
    reconcile_active(pl, cj, jobs, n);
    if (cj->metadata->deletiontimestamp)
        return true;
    plan_schedule(pl, cj, now_s);
    if (pl->replace) {
        for (size_t i = 0; i < n; i++)
            if (jobs[i]->metadata && active_index(pl, jobs[i]->metadata->uid) >= 0)
                plan_delete(pl, jobs[i]);
    }
    if (pl->create)
        pl->write_status = true; /* after the create, with its reference */
    return true;
}

/* ------------------------------------------------------------- handlers */

/* Per CronJob key, the resourceVersion of the last status this controller wrote. */
struct cj_state {
    smap_t *written;
};

static void cj_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    ctrl_t *c = arg;
    struct cj_state *st = ctrl_state(c);
    char *key = cm_key(obj);
    cm_expect_forget(c, key);
    smap_del(st->written, key);
    free(key);
}

static void *cj_setup(cm_t *cm, ctrl_t *c)
{
    struct inf_handlers ch = {ctrl_enqueue_added, ctrl_enqueue_updated, cj_delete, NULL, c};
    cm_on(cm, &kind_cronjob, &ch);
    cm_on_owned(cm, c, &kind_job, &kind_cronjob);
    struct cj_state *st = xcalloc(1, sizeof(*st));
    st->written = smap_new();
    return st;
}

static void cj_free(void *state)
{
    struct cj_state *st = state;
    if (!st)
        return;
    smap_free(st->written, NULL);
    free(st);
}

/* ------------------------------------------------------------------ sync */

/*
 * A create in flight: the CronJob with the status the plan decided,
 * packed (the cache's objects may be gone when the create answers); the
 * Job's reference and lastScheduleTime are added to it then.
 */
struct cj_create {
    struct cm_batch *b;
    uint8_t *upd;
    size_t len;
    int64_t scheduled_s;
    char *name;
};

static const Coracle__V1__CronJob *cached_cronjob(const struct cm_batch *b)
{
    char *ns = xstrdup(cm_batch_key(b)), *name = strchr(ns, '/');
    *name++ = '\0';
    const ProtobufCMessage *o = cm_get(ctrl_cm(cm_batch_ctrl(b)), &kind_cronjob, ns, name);
    free(ns);
    return (const Coracle__V1__CronJob *)o;
}

static void status_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct cm_batch *b = arg;
    if (code == 0 && resp) {
        struct cj_state *st = ctrl_state(cm_batch_ctrl(b));
        smap_put(st->written, cm_batch_key(b), (void *)(uintptr_t)inf_obj_revision(resp));
    }
    cm_batch_end(b, code, message, "update status");
}

static void write_status(struct cm_batch *b, const Coracle__V1__CronJob *cj,
                         const Coracle__V1__CronJobStatus *st)
{
    Coracle__V1__CronJob upd = *cj;
    upd.status = (Coracle__V1__CronJobStatus *)st;
    cm_batch_add(b);
    cm_call(ctrl_cm(cm_batch_ctrl(b)), &kind_cronjob, "UpdateStatus", &upd.base, status_done, b);
}

static void job_deleted(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct cm_batch *b = arg;
    if (code != 0)
        cm_observed(cm_batch_ctrl(b), cm_batch_key(b), 0, 1);
    cm_batch_end(b, code, message, "delete job");
}

static bool in_active(const Coracle__V1__CronJobStatus *st, const char *uid)
{
    for (size_t i = 0; st && i < st->n_active; i++)
        if (st->active[i]->uid && !strcmp(st->active[i]->uid, uid))
            return true;
    return false;
}

static void created(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct cj_create *x = arg;
    struct cm_batch *b = x->b;
    ctrl_t *c = cm_batch_ctrl(b);
    const Coracle__V1__CronJob *cj = cached_cronjob(b);
    Coracle__V1__CronJob *upd = coracle__v1__cron_job__unpack(NULL, x->len, x->upd);
    const Coracle__V1__Job *job = (const Coracle__V1__Job *)resp;
    if (code != 0)
        cm_observed(c, cm_batch_key(b), 1, 0); /* it will never be seen */
    if (code == GRPC_ALREADY_EXISTS && upd) {  /* made before, its status not written */
        job = (const Coracle__V1__Job *)cm_get(ctrl_cm(c), &kind_job, upd->metadata->namespace_,
                                               x->name);
        const Coracle__V1__OwnerReference *o = job ? cm_controller_of(&job->base) : NULL;
        if (!o || strcmp(o->uid, cm_uid(&upd->base)) || in_active(upd->status, cm_uid(&job->base)))
            job = NULL;
        code = 0;
    } else if (code != 0 && cj) {
        ctrl_event(c, &kind_cronjob, &cj->base, "Warning", "FailedCreate", "Error creating job: %s",
                   message);
    } else if (code == 0 && cj && job) {
        ctrl_event(c, &kind_cronjob, &cj->base, "Normal", "SuccessfulCreate", "Created job %s",
                   job->metadata->name);
    }
    if (upd && upd->status && job && job->metadata) {
        Coracle__V1__CronJobStatus *st = upd->status;
        Coracle__V1__ObjectReference ref = CORACLE__V1__OBJECT_REFERENCE__INIT;
        Coracle__V1__Time at = CORACLE__V1__TIME__INIT;
        Coracle__V1__ObjectReference **was = st->active;
        Coracle__V1__Time *was_at = st->lastscheduletime;
        size_t n = st->n_active;
        ref.kind = (char *)kind_job.kind;
        ref.apiversion = (char *)kind_job.api_version;
        ref.namespace_ = job->metadata->namespace_;
        ref.name = job->metadata->name;
        ref.uid = job->metadata->uid;
        ref.resourceversion = job->metadata->resourceversion;
        st->active = xmalloc((n + 1) * sizeof(*st->active));
        if (n)
            memcpy(st->active, was, n * sizeof(*st->active));
        st->active[st->n_active++] = &ref;
        at.has_seconds = 1;
        at.seconds = x->scheduled_s;
        st->lastscheduletime = &at;
        write_status(b, upd, st);
        free(st->active);
        st->active = was; /* the unpacked message frees its own */
        st->n_active = n;
        st->lastscheduletime = was_at;
    } else if (upd && upd->status) {
        write_status(b, upd, upd->status); /* what the sync changed besides */
    }
    cm_batch_end(b, code, message, "create job");
    if (upd)
        coracle__v1__cron_job__free_unpacked(upd, NULL);
    free(x->upd);
    free(x->name);
    free(x);
}

/* The Job for pl->scheduled_s, from the template, as Kubernetes' getJobFromTemplate2. */
static void create_job(struct cm_batch *b, const Coracle__V1__CronJob *cj, struct cj_plan *pl)
{
    const Coracle__V1__JobTemplateSpec *t = cj->spec->jobtemplate;
    const Coracle__V1__ObjectMeta *tm = t ? t->metadata : NULL;
    size_t na = tm ? tm->n_annotations : 0;
    Coracle__V1__ObjectMeta__AnnotationsEntry **ann = xmalloc((na + 1) * sizeof(*ann));
    Coracle__V1__ObjectMeta__AnnotationsEntry sched =
        CORACLE__V1__OBJECT_META__ANNOTATIONS_ENTRY__INIT;
    size_t n = 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(tm->annotations[i]->key, SCHEDULED_ANNOTATION))
            ann[n++] = tm->annotations[i];
    sched.key = SCHEDULED_ANNOTATION;
    sched.value = pl->stamp;
    ann[n++] = &sched;

    struct cj_create *x = xcalloc(1, sizeof(*x));
    Coracle__V1__CronJob upd = *cj;
    upd.status = &pl->st;
    x->b = b;
    x->len = protobuf_c_message_get_packed_size(&upd.base);
    x->upd = xmalloc(x->len ? x->len : 1);
    protobuf_c_message_pack(&upd.base, x->upd);
    x->scheduled_s = pl->scheduled_s;
    x->name = job_name_for(cj, pl->scheduled_s);
    Coracle__V1__Job job = CORACLE__V1__JOB__INIT;
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    Coracle__V1__OwnerReference ref = CORACLE__V1__OWNER_REFERENCE__INIT;
    Coracle__V1__OwnerReference *refs[1] = {&ref};
    meta.name = x->name;
    meta.namespace_ = cj->metadata->namespace_;
    if (tm) {
        meta.n_labels = tm->n_labels;
        meta.labels = tm->labels;
    }
    meta.n_annotations = n;
    meta.annotations = ann;
    ref.apiversion = (char *)kind_cronjob.api_version;
    ref.kind = (char *)kind_cronjob.kind;
    ref.name = cj->metadata->name;
    ref.uid = cj->metadata->uid;
    ref.has_controller = ref.controller = 1;
    ref.has_blockownerdeletion = ref.blockownerdeletion = 1;
    meta.n_ownerreferences = 1;
    meta.ownerreferences = refs;
    job.metadata = &meta;
    job.spec = t ? t->spec : NULL;
    cm_batch_add(b);
    cm_call(ctrl_cm(cm_batch_ctrl(b)), &kind_job, "Create", &job.base, created, x);
    free(ann);
}

static void cj_sync(ctrl_t *c, const char *key, void *state)
{
    struct cj_state *cs = state;
    cm_t *cm = ctrl_cm(c);
    char *ns = xstrdup(key), *name = strchr(ns, '/');
    *name++ = '\0';
    const Coracle__V1__CronJob *cj =
        (const Coracle__V1__CronJob *)cm_get(cm, &kind_cronjob, ns, name);
    uint64_t written = (uintptr_t)smap_get(cs->written, key);
    struct cj_plan pl;
    const Coracle__V1__Job **jobs = NULL;
    size_t n = 0;
    /* a cache behind this controller's own writes would repeat them: its update enqueues again */
    bool behind = cj && (inf_obj_revision(&cj->base) < written || !cm_satisfied(c, key));
    if (cj && !behind)
        jobs = (const Coracle__V1__Job **)cm_owned_list(cm, &kind_job, ns, cm_uid(&cj->base), &n);
    if (!cj || behind || !cj_plan(cj, jobs, n, now_ns() / 1000000000, &pl)) {
        if (!cj) {
            cm_expect_forget(c, key);
            smap_del(cs->written, key);
        }
        ctrl_done(c, key, true, NULL);
        free(jobs);
        free(ns);
        return;
    }
    struct cm_batch *b = cm_batch_new(c, key);
    if (pl.create || pl.n_del)
        cm_expect(c, key, pl.create, (int)pl.n_del);
    for (size_t i = 0; i < pl.n_del; i++) {
        const Coracle__V1__ObjectMeta *jm = pl.del[i]->metadata;
        cm_batch_add(b);
        cm_delete(cm, &kind_job, jm->namespace_, jm->name, jm->uid, "Background", job_deleted, b);
    }
    for (size_t i = 0; i < pl.n_ev; i++)
        ctrl_event(c, &kind_cronjob, &cj->base, pl.ev[i].type, pl.ev[i].reason, "%s",
                   pl.ev[i].message);
    if (pl.requeue_ms)
        ctrl_enqueue_after(c, key, pl.requeue_ms);
    if (pl.create)
        create_job(b, cj, &pl); /* the status is written when it answers */
    else if (pl.write_status)
        write_status(b, cj, &pl.st);
    cj_plan_free(&pl);
    free(jobs);
    free(ns);
    cm_batch_end(b, 0, NULL, NULL);
}

const struct ctrl_def ctrl_cronjob = {
    .name = "cronjob",
    .workers = 5,
    .setup = cj_setup,
    .sync = cj_sync,
    .free = cj_free,
};
