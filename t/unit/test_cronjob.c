/*
 * Unit tests for the CronJob controller's decision (cj_plan in
 * src/controller/cronjob.c) on a fake clock: when a Job is due and its
 * name, the wait until the next time, concurrencyPolicy Allow, Forbid and
 * Replace, startingDeadlineSeconds, suspend, the history limits (the
 * oldest finished Jobs go), status.active against the Jobs that exist,
 * lastSuccessfulTime, time zones (UTC, a named one, the manager's local
 * time) and the warnings for a bad schedule, an unknown time zone and too
 * many missed times.
 */
#include "config.h"
#include "tap.h"

#include <unistd.h>

#include "../../src/controller/cronjob.c"

/* A minute boundary: 2026-12-07T12:00:00Z. */
#define T0 1796644800

/* ----------------------------------------------------------- fixtures */

struct fake_job {
    Coracle__V1__Job job;
    Coracle__V1__ObjectMeta meta;
    Coracle__V1__JobStatus st;
    Coracle__V1__JobCondition cond, *conds[1];
    Coracle__V1__Time start, done;
    char uid[64];
};

/* A Job named name (uid "u-name"), started at start_s (0: not), finished as "Complete" or "Failed"
 * at done_s (NULL: running). */
static void fake_job(struct fake_job *f, const char *name, int64_t start_s, const char *finished,
                     int64_t done_s)
{
    memset(f, 0, sizeof(*f));
    f->job = (Coracle__V1__Job)CORACLE__V1__JOB__INIT;
    f->meta = (Coracle__V1__ObjectMeta)CORACLE__V1__OBJECT_META__INIT;
    f->st = (Coracle__V1__JobStatus)CORACLE__V1__JOB_STATUS__INIT;
    f->meta.name = (char *)name;
    f->meta.namespace_ = "default";
    snprintf(f->uid, sizeof(f->uid), "u-%s", name);
    f->meta.uid = f->uid;
    f->job.metadata = &f->meta;
    f->job.status = &f->st;
    if (start_s) {
        f->start = (Coracle__V1__Time)CORACLE__V1__TIME__INIT;
        f->start.seconds = start_s;
        f->st.starttime = &f->start;
    }
    if (finished) {
        f->cond = (Coracle__V1__JobCondition)CORACLE__V1__JOB_CONDITION__INIT;
        f->done = (Coracle__V1__Time)CORACLE__V1__TIME__INIT;
        f->done.seconds = done_s;
        f->cond.type = (char *)finished;
        f->cond.status = "True";
        f->cond.lasttransitiontime = &f->done;
        f->conds[0] = &f->cond;
        f->st.conditions = f->conds;
        f->st.n_conditions = 1;
        if (!strcmp(finished, "Complete"))
            f->st.completiontime = &f->done;
    }
}

struct fake_cj {
    Coracle__V1__CronJob cj;
    Coracle__V1__ObjectMeta meta;
    Coracle__V1__CronJobSpec spec;
    Coracle__V1__CronJobStatus st;
    Coracle__V1__Time created, last;
    Coracle__V1__ObjectReference refs[8], *active[8];
};

static void fake_cj(struct fake_cj *f, const char *schedule, int64_t created_s)
{
    memset(f, 0, sizeof(*f));
    f->cj = (Coracle__V1__CronJob)CORACLE__V1__CRON_JOB__INIT;
    f->meta = (Coracle__V1__ObjectMeta)CORACLE__V1__OBJECT_META__INIT;
    f->spec = (Coracle__V1__CronJobSpec)CORACLE__V1__CRON_JOB_SPEC__INIT;
    f->st = (Coracle__V1__CronJobStatus)CORACLE__V1__CRON_JOB_STATUS__INIT;
    f->created = (Coracle__V1__Time)CORACLE__V1__TIME__INIT;
    f->created.seconds = created_s;
    f->meta.name = "cj";
    f->meta.namespace_ = "default";
    f->meta.uid = "u-cj";
    f->meta.creationtimestamp = &f->created;
    f->spec.schedule = (char *)schedule;
    f->spec.timezone = "UTC";
    f->cj.metadata = &f->meta;
    f->cj.spec = &f->spec;
    f->cj.status = &f->st;
    f->st.active = f->active;
}

static void set_last(struct fake_cj *f, int64_t s)
{
    f->last = (Coracle__V1__Time)CORACLE__V1__TIME__INIT;
    f->last.seconds = s;
    f->st.lastscheduletime = &f->last;
}

static void add_active(struct fake_cj *f, const struct fake_job *j)
{
    Coracle__V1__ObjectReference *r = &f->refs[f->st.n_active];
    *r = (Coracle__V1__ObjectReference)CORACLE__V1__OBJECT_REFERENCE__INIT;
    r->kind = "Job";
    r->name = j->meta.name;
    r->uid = j->meta.uid;
    f->active[f->st.n_active++] = r;
}

static bool has_event(const struct cj_plan *pl, const char *reason, const char *message)
{
    for (size_t i = 0; i < pl->n_ev; i++)
        if (!strcmp(pl->ev[i].reason, reason) && (!message || !strcmp(pl->ev[i].message, message)))
            return true;
    return false;
}

static bool deletes(const struct cj_plan *pl, const char *name)
{
    for (size_t i = 0; i < pl->n_del; i++)
        if (!strcmp(pl->del[i]->metadata->name, name))
            return true;
    return false;
}

/* -------------------------------------------------------------- tests */

static void test_schedule(void)
{
    struct fake_cj f;
    struct cj_plan pl;
    fake_cj(&f, "*/1 * * * *", T0);
    ok(cj_plan(&f.cj, NULL, 0, T0 + 30, &pl), "a CronJob is planned");
    ok(!pl.create && !pl.write_status, "30 s after its creation: nothing due yet");
    is_int(pl.requeue_ms, 30 * 1000 + 100, "synced again at the next minute, 100 ms past");
    cj_plan_free(&pl);

    cj_plan(&f.cj, NULL, 0, T0 + 61, &pl);
    ok(pl.create && pl.scheduled_s == T0 + 60, "61 s after: the Job for minute 1");
    is_int(pl.requeue_ms, 59 * 1000 + 100, "then waits for minute 2");
    ok(pl.write_status, "the status is written (after the create)");
    cj_plan_free(&pl);

    char *name = job_name_for(&f.cj, T0 + 60);
    is_str(name, "cj-29944081", "its name: <cronjob>-<minutes since the epoch>");
    free(name);

    set_last(&f, T0 + 60);
    cj_plan(&f.cj, NULL, 0, T0 + 90, &pl);
    ok(!pl.create, "lastScheduleTime minute 1: nothing more before minute 2");
    cj_plan_free(&pl);

    /* several missed minutes: only the most recent runs */
    cj_plan(&f.cj, NULL, 0, T0 + 60 * 5 + 10, &pl);
    ok(pl.create && pl.scheduled_s == T0 + 300, "four minutes missed: the latest (minute 5) runs");
    ok(!has_event(&pl, "TooManyMissedTimes", NULL), "no warning for a few");
    cj_plan_free(&pl);

    /* startingDeadlineSeconds: a time older than the deadline is not run */
    f.spec.has_startingdeadlineseconds = 1;
    f.spec.startingdeadlineseconds = 10;
    cj_plan(&f.cj, NULL, 0, T0 + 60 * 5 + 20, &pl);
    ok(!pl.create, "startingDeadlineSeconds 10: minute 5 is 20 s late, not run");
    cj_plan_free(&pl);
    cj_plan(&f.cj, NULL, 0, T0 + 60 * 5 + 5, &pl);
    ok(pl.create && pl.scheduled_s == T0 + 300, "5 s late: run");
    cj_plan_free(&pl);
    f.spec.has_startingdeadlineseconds = 0;

    /* suspend */
    f.spec.has_suspend = f.spec.suspend = 1;
    cj_plan(&f.cj, NULL, 0, T0 + 60 * 5 + 5, &pl);
    ok(!pl.create && !pl.requeue_ms, "suspended: nothing run, nothing waited for");
    cj_plan_free(&pl);
    f.spec.has_suspend = f.spec.suspend = 0;

    /* a long outage: too many missed times is said, and the latest runs */
    fake_cj(&f, "* * * * *", T0 - 200 * 60);
    cj_plan(&f.cj, NULL, 0, T0 + 1, &pl);
    ok(pl.create && pl.scheduled_s == T0, "200 minutes missed: the latest runs");
    ok(has_event(&pl, "TooManyMissedTimes", NULL), "warning TooManyMissedTimes");
    cj_plan_free(&pl);

    /* an hourly schedule */
    fake_cj(&f, "@hourly", T0 + 1);
    cj_plan(&f.cj, NULL, 0, T0 + 2, &pl);
    is_int(pl.requeue_ms, (3600 - 2) * 1000 + 100, "@hourly: waits for the next hour");
    cj_plan_free(&pl);
}

static void test_concurrency(void)
{
    struct fake_cj f;
    struct fake_job j[2];
    const Coracle__V1__Job *jobs[2] = {&j[0].job, &j[1].job};
    struct cj_plan pl;
    fake_cj(&f, "*/1 * * * *", T0);
    set_last(&f, T0 + 60);
    fake_job(&j[0], "cj-29944081", T0 + 60, NULL, 0);
    add_active(&f, &j[0]);

    cj_plan(&f.cj, jobs, 1, T0 + 121, &pl);
    ok(pl.create && pl.scheduled_s == T0 + 120 && !pl.n_del,
       "Allow: minute 2 runs beside the running one");
    cj_plan_free(&pl);

    f.spec.concurrencypolicy = "Forbid";
    cj_plan(&f.cj, jobs, 1, T0 + 121, &pl);
    ok(!pl.create && !pl.n_del, "Forbid: minute 2 skipped while one runs");
    ok(has_event(&pl, "JobAlreadyActive",
                 "Not starting job because prior execution is running and concurrency policy is "
                 "Forbid"),
       "event JobAlreadyActive");
    is_int(pl.requeue_ms, 59 * 1000 + 100, "and waits for minute 3");
    cj_plan_free(&pl);

    f.spec.concurrencypolicy = "Replace";
    cj_plan(&f.cj, jobs, 1, T0 + 121, &pl);
    ok(pl.create && pl.scheduled_s == T0 + 120, "Replace: minute 2 runs");
    ok(pl.n_del == 1 && deletes(&pl, "cj-29944081"), "the running one is deleted");
    ok(pl.st.n_active == 0, "and leaves status.active");
    ok(has_event(&pl, "SuccessfulDelete", "Deleted job cj-29944081"), "event SuccessfulDelete");
    cj_plan_free(&pl);

    /* the running Job finishes: out of active, lastSuccessfulTime */
    fake_job(&j[0], "cj-29944081", T0 + 60, "Complete", T0 + 70);
    f.spec.concurrencypolicy = "Forbid";
    cj_plan(&f.cj, jobs, 1, T0 + 121, &pl);
    ok(pl.st.n_active == 0 && pl.st.lastsuccessfultime &&
           pl.st.lastsuccessfultime->seconds == T0 + 70,
       "a finished Job leaves active; lastSuccessfulTime is its completionTime");
    ok(has_event(&pl, "SawCompletedJob", "Saw completed job: cj-29944081, condition: Complete"),
       "event SawCompletedJob");
    ok(pl.create, "Forbid: nothing runs now, minute 2 does");
    cj_plan_free(&pl);

    /* a Job in active that is gone; one running that is not in active */
    fake_cj(&f, "*/1 * * * *", T0);
    set_last(&f, T0 + 60);
    fake_job(&j[0], "gone", T0, NULL, 0);
    add_active(&f, &j[0]);
    fake_job(&j[1], "stray", T0, NULL, 0);
    cj_plan(&f.cj, jobs + 1, 1, T0 + 90, &pl);
    ok(pl.st.n_active == 0 && pl.write_status, "a Job gone leaves active");
    ok(has_event(&pl, "MissingJob", "Active job went missing: gone"), "event MissingJob");
    ok(has_event(&pl, "UnexpectedJob",
                 "Saw a job that the controller did not create or forgot: stray"),
       "event UnexpectedJob for one running outside active");
    cj_plan_free(&pl);
}

static void test_history(void)
{
    struct fake_cj f;
    struct fake_job j[9];
    const Coracle__V1__Job *jobs[9];
    struct cj_plan pl;
    fake_cj(&f, "*/1 * * * *", T0);
    set_last(&f, T0 + 600);
    /* five complete, started in a shuffled order; three failed; one running */
    static const int ok_start[5] = {300, 100, 500, 200, 400};
    char names[9][16];
    for (int i = 0; i < 5; i++) {
        snprintf(names[i], sizeof(names[i]), "ok%d", ok_start[i]);
        fake_job(&j[i], names[i], T0 + ok_start[i], "Complete", T0 + ok_start[i] + 5);
    }
    for (int i = 5; i < 8; i++) {
        snprintf(names[i], sizeof(names[i]), "bad%d", i);
        fake_job(&j[i], names[i], T0 + i * 10, "Failed", T0 + i * 10 + 5);
    }
    fake_job(&j[8], "running", T0 + 600, NULL, 0);
    add_active(&f, &j[8]);
    for (int i = 0; i < 9; i++)
        jobs[i] = &j[i].job;

    cj_plan(&f.cj, jobs, 9, T0 + 610, &pl);
    ok(pl.n_del == 4, "default limits (3 successful, 1 failed): 4 Jobs deleted");
    ok(deletes(&pl, "ok100") && deletes(&pl, "ok200") && !deletes(&pl, "ok300"),
       "the two oldest complete ones");
    ok(deletes(&pl, "bad5") && deletes(&pl, "bad6") && !deletes(&pl, "bad7"),
       "the two oldest failed ones");
    ok(!deletes(&pl, "running") && pl.st.n_active == 1, "the running one stays");
    ok(pl.st.lastsuccessfultime && pl.st.lastsuccessfultime->seconds == T0 + 505,
       "lastSuccessfulTime: the latest completion");
    cj_plan_free(&pl);

    f.spec.has_successfuljobshistorylimit = f.spec.has_failedjobshistorylimit = 1;
    f.spec.successfuljobshistorylimit = 0;
    f.spec.failedjobshistorylimit = 2;
    cj_plan(&f.cj, jobs, 9, T0 + 610, &pl);
    ok(pl.n_del == 6 && deletes(&pl, "ok500") && deletes(&pl, "bad5") && !deletes(&pl, "bad6"),
       "limits 0 and 2: every complete one, the oldest failed one");
    cj_plan_free(&pl);
}

static void test_refusals(void)
{
    struct fake_cj f;
    struct cj_plan pl;
    fake_cj(&f, "61 * * * *", T0);
    cj_plan(&f.cj, NULL, 0, T0 + 3600, &pl);
    ok(!pl.create && !pl.requeue_ms && has_event(&pl, "UnparseableSchedule", NULL),
       "a bad schedule: warning UnparseableSchedule, nothing run or waited for");
    cj_plan_free(&pl);

    fake_cj(&f, "* * * * *", T0);
    f.spec.timezone = "Mars/Olympus";
    cj_plan(&f.cj, NULL, 0, T0 + 3600, &pl);
    ok(!pl.create &&
           has_event(&pl, "UnknownTimeZone",
                     "invalid timeZone: \"Mars/Olympus\": unknown time zone Mars/Olympus"),
       "an unknown time zone: warning UnknownTimeZone");
    cj_plan_free(&pl);

    fake_cj(&f, "* * * * *", T0);
    f.spec.timezone = "Etc/UTC";
    cj_plan(&f.cj, NULL, 0, T0 + 61, &pl);
    ok(pl.create, "timeZone Etc/UTC is UTC");
    cj_plan_free(&pl);

    fake_cj(&f, "0 9 * * *", T0);
    f.spec.timezone = "America/New_York";
    if (access(ZONEINFO_DIR "/America/New_York", R_OK) == 0) {
        cj_plan(&f.cj, NULL, 0, T0, &pl);
        is_int(pl.requeue_ms, 2 * 3600 * 1000 + 100,
               "\"0 9 * * *\" in America/New_York: at 14:00 UTC in December");
        cj_plan_free(&pl);
        cj_plan(&f.cj, NULL, 0, T0 + 2 * 3600 + 1, &pl);
        ok(pl.create && pl.scheduled_s == T0 + 2 * 3600, "due then");
        is_str(pl.stamp, "2026-12-07T09:00:00-05:00", "its scheduled timestamp in that zone");
        cj_plan_free(&pl);
        ok(getenv("TZ") && !strcmp(getenv("TZ"), "UTC"), "TZ put back");
    } else {
        for (int i = 0; i < 4; i++)
            ok(1, "# skip no time zone database");
    }
    f.spec.timezone = NULL;
    cj_plan(&f.cj, NULL, 0, T0 + 21 * 3600 + 1, &pl);
    ok(pl.create && pl.scheduled_s == T0 + 21 * 3600 && !strcmp(pl.stamp, "2026-12-08T09:00:00Z"),
       "no timeZone: the manager's local time (here UTC), the timestamp in UTC");
    cj_plan_free(&pl);

    char buf[40];
    rfc1123z(T0 + 90, buf);
    is_str(buf, "Mon, 07 Dec 2026 12:01:30 +0000", "MissSchedule's time as Go's RFC1123Z");
}

int main(void)
{
    setenv("TZ", "UTC", 1); /* the manager's local time, for the CronJobs without timeZone */
    tzset();
    test_schedule();
    test_concurrency();
    test_history();
    test_refusals();
    return done_testing();
}
