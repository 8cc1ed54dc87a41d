/*
 * Unit tests for the Job controller's decision (job_plan in
 * src/controller/job.c) on a fake clock: the pods wanted for completions
 * and parallelism and for a work queue, the pod back-off after failures
 * (10 s, then 20 s, from the last failure, reset by a success),
 * backoffLimit over failed pods and over container restarts for
 * OnFailure, activeDeadlineSeconds and the wait for it, the final
 * condition held while a pod terminates, counts that never go down, and
 * expectations holding creates back.
 */
#include "config.h"
#include "tap.h"

#include "../../src/controller/job.c"

#define T0 1796644800

struct fake_pod {
    Coracle__V1__Pod pod;
    Coracle__V1__ObjectMeta meta;
    Coracle__V1__PodStatus st;
    Coracle__V1__ContainerStatus cs, *css[1];
    Coracle__V1__ContainerState state;
    Coracle__V1__ContainerStateTerminated term;
    Coracle__V1__Time fin, del;
};

/* A pod in phase ("" pending), finished at fin_s when finished, with restarts. */
static const Coracle__V1__Pod *fake_pod(struct fake_pod *f, const char *phase, int64_t fin_s,
                                        int restarts)
{
    memset(f, 0, sizeof(*f));
    f->pod = (Coracle__V1__Pod)CORACLE__V1__POD__INIT;
    f->meta = (Coracle__V1__ObjectMeta)CORACLE__V1__OBJECT_META__INIT;
    f->st = (Coracle__V1__PodStatus)CORACLE__V1__POD_STATUS__INIT;
    f->cs = (Coracle__V1__ContainerStatus)CORACLE__V1__CONTAINER_STATUS__INIT;
    f->state = (Coracle__V1__ContainerState)CORACLE__V1__CONTAINER_STATE__INIT;
    f->term = (Coracle__V1__ContainerStateTerminated)CORACLE__V1__CONTAINER_STATE_TERMINATED__INIT;
    f->fin = (Coracle__V1__Time)CORACLE__V1__TIME__INIT;
    f->meta.name = "p";
    f->pod.metadata = &f->meta;
    f->pod.status = &f->st;
    f->st.phase = (char *)phase;
    f->cs.restartcount = restarts;
    f->cs.state = &f->state;
    f->css[0] = &f->cs;
    f->st.containerstatuses = f->css;
    f->st.n_containerstatuses = 1;
    if (fin_s) {
        f->fin.seconds = fin_s;
        f->term.finishedat = &f->fin;
        f->state.terminated = &f->term;
    }
    return &f->pod;
}

static void terminating(struct fake_pod *f)
{
    f->del = (Coracle__V1__Time)CORACLE__V1__TIME__INIT;
    f->meta.deletiontimestamp = &f->del;
}

struct fake_job {
    Coracle__V1__Job job;
    Coracle__V1__ObjectMeta meta;
    Coracle__V1__JobSpec spec;
    Coracle__V1__JobStatus st;
    Coracle__V1__PodTemplateSpec tmpl;
    Coracle__V1__PodSpec ps;
    Coracle__V1__Time start;
};

static void fake_job(struct fake_job *f, int64_t start_s)
{
    memset(f, 0, sizeof(*f));
    f->job = (Coracle__V1__Job)CORACLE__V1__JOB__INIT;
    f->meta = (Coracle__V1__ObjectMeta)CORACLE__V1__OBJECT_META__INIT;
    f->spec = (Coracle__V1__JobSpec)CORACLE__V1__JOB_SPEC__INIT;
    f->st = (Coracle__V1__JobStatus)CORACLE__V1__JOB_STATUS__INIT;
    f->tmpl = (Coracle__V1__PodTemplateSpec)CORACLE__V1__POD_TEMPLATE_SPEC__INIT;
    f->ps = (Coracle__V1__PodSpec)CORACLE__V1__POD_SPEC__INIT;
    f->meta.name = "j";
    f->ps.restartpolicy = "Never";
    f->tmpl.spec = &f->ps;
    f->spec.template_ = &f->tmpl;
    f->job.metadata = &f->meta;
    f->job.spec = &f->spec;
    f->job.status = &f->st;
    if (start_s) {
        f->start = (Coracle__V1__Time)CORACLE__V1__TIME__INIT;
        f->start.seconds = start_s;
        f->st.starttime = &f->start;
    }
}

static bool has_cond(const struct job_plan *pl, const char *type, const char *reason)
{
    for (size_t i = 0; i < pl->st.n_conditions; i++) {
        const Coracle__V1__JobCondition *c = pl->st.conditions[i];
        if (!strcmp(c->type, type) && !strcmp(c->status, "True") &&
            (!reason || (c->reason && !strcmp(c->reason, reason))))
            return true;
    }
    return false;
}

static void test_counts(void)
{
    struct fake_job f;
    struct fake_pod fp[4];
    const Coracle__V1__Pod *pods[4];
    struct job_plan pl;

    fake_job(&f, 0);
    f.spec.has_completions = f.spec.has_parallelism = 1;
    f.spec.completions = 5;
    f.spec.parallelism = 2;
    ok(job_plan(&f.job, NULL, 0, T0, true, &pl), "a Job is planned");
    is_int(pl.create, 2, "completions 5, parallelism 2: two pods");
    ok(pl.write_status && pl.st.starttime && pl.st.starttime->seconds == T0,
       "startTime set on the first sync");
    is_int(pl.st.active, 2, "active counts the pods being made");
    job_plan_free(&pl);

    ok(job_plan(&f.job, NULL, 0, T0, false, &pl) && pl.create == 0,
       "expectations not met: nothing made");
    job_plan_free(&pl);

    pods[0] = fake_pod(&fp[0], "Succeeded", T0 + 1, 0);
    pods[1] = fake_pod(&fp[1], "Succeeded", T0 + 2, 0);
    pods[2] = fake_pod(&fp[2], "Succeeded", T0 + 3, 0);
    pods[3] = fake_pod(&fp[3], "Running", 0, 0);
    job_plan(&f.job, pods, 4, T0 + 5, true, &pl);
    ok(pl.create == 1 && pl.st.succeeded == 3 && pl.st.active == 2,
       "3 succeeded, 1 running: one more (min(2, 5 - 3) active)");
    job_plan_free(&pl);

    pods[0] = fake_pod(&fp[0], "Succeeded", T0 + 1, 0);
    pods[1] = fake_pod(&fp[1], "Succeeded", T0 + 2, 0);
    pods[2] = fake_pod(&fp[2], "Running", 0, 0);
    pods[3] = fake_pod(&fp[3], "Running", 0, 0);
    f.st.succeeded = 4; /* counted before two succeeded pods were deleted */
    job_plan(&f.job, pods, 4, T0 + 5, true, &pl);
    ok(pl.st.succeeded == 4 && pl.n_del == 1 && pl.create == 0,
       "succeeded never goes down; one of two running is surplus (5 - 4 = 1)");
    job_plan_free(&pl);
    f.st.succeeded = 0;

    /* a work queue: no completions, parallelism 3 */
    fake_job(&f, T0);
    f.spec.has_parallelism = 1;
    f.spec.parallelism = 3;
    pods[0] = fake_pod(&fp[0], "Succeeded", T0 + 1, 0);
    pods[1] = fake_pod(&fp[1], "Running", 0, 0);
    job_plan(&f.job, pods, 2, T0 + 5, true, &pl);
    ok(pl.create == 0 && !has_cond(&pl, "Complete", NULL),
       "work queue: after a success, nothing new; not complete while one runs");
    job_plan_free(&pl);
    pods[1] = fake_pod(&fp[1], "Succeeded", T0 + 6, 0);
    job_plan(&f.job, pods, 2, T0 + 7, true, &pl);
    ok(has_cond(&pl, "SuccessCriteriaMet", "CompletionsReached") &&
           has_cond(&pl, "Complete", "CompletionsReached") && pl.st.completiontime,
       "work queue: complete when every pod has ended and one succeeded");
    job_plan_free(&pl);
}

static void test_backoff(void)
{
    struct fake_job f;
    struct fake_pod fp[3];
    const Coracle__V1__Pod *pods[3];
    struct job_plan pl;
    fake_job(&f, T0);

    pods[0] = fake_pod(&fp[0], "Failed", T0 + 10, 0);
    job_plan(&f.job, pods, 1, T0 + 12, true, &pl);
    ok(pl.create == 0 && pl.requeue_ms == 8000, "1 failure: no pod for 10 s, synced again then");
    ok(pl.write_status && pl.st.failed == 1, "failed 1");
    job_plan_free(&pl);
    job_plan(&f.job, pods, 1, T0 + 20, true, &pl);
    is_int(pl.create, 1, "10 s after the failure: a new pod");
    job_plan_free(&pl);

    pods[1] = fake_pod(&fp[1], "Failed", T0 + 30, 0);
    job_plan(&f.job, pods, 2, T0 + 45, true, &pl);
    ok(pl.create == 0 && pl.requeue_ms == 5000, "2 failures: 20 s from the last one");
    job_plan_free(&pl);

    pods[2] = fake_pod(&fp[2], "Succeeded", T0 + 31, 0);
    f.spec.has_completions = 1;
    f.spec.completions = 2;
    job_plan(&f.job, pods, 3, T0 + 32, true, &pl);
    is_int(pl.create, 1, "a success after them resets the back-off");
    job_plan_free(&pl);

    /* backoffLimit */
    f.spec.has_completions = 0;
    f.spec.has_backofflimit = 1;
    f.spec.backofflimit = 1;
    job_plan(&f.job, pods, 2, T0 + 45, true, &pl);
    ok(has_cond(&pl, "FailureTarget", "BackoffLimitExceeded") &&
           has_cond(&pl, "Failed", "BackoffLimitExceeded"),
       "backoffLimit 1, 2 failed: FailureTarget and Failed");
    ok(pl.n_ev == 1 && !strcmp(pl.ev[0].reason, "BackoffLimitExceeded") &&
           !strcmp(pl.ev[0].type, "Warning"),
       "event BackoffLimitExceeded");
    ok(!pl.st.completiontime, "no completionTime for a failed Job");
    job_plan_free(&pl);

    /* a pod still terminating holds the final condition back */
    pods[2] = fake_pod(&fp[2], "Running", 0, 0);
    terminating(&fp[2]);
    job_plan(&f.job, pods, 3, T0 + 45, true, &pl);
    ok(has_cond(&pl, "FailureTarget", NULL) && !has_cond(&pl, "Failed", NULL) &&
           pl.st.terminating == 1,
       "one pod terminating: FailureTarget only, terminating 1");
    job_plan_free(&pl);

    /* OnFailure: the container restarts count */
    fake_job(&f, T0);
    f.ps.restartpolicy = "OnFailure";
    f.spec.has_backofflimit = 1;
    f.spec.backofflimit = 3;
    pods[0] = fake_pod(&fp[0], "Running", 0, 2);
    job_plan(&f.job, pods, 1, T0 + 5, true, &pl);
    ok(!has_cond(&pl, "FailureTarget", NULL), "OnFailure: 2 restarts of 3 allowed");
    job_plan_free(&pl);
    pods[0] = fake_pod(&fp[0], "Running", 0, 3);
    job_plan(&f.job, pods, 1, T0 + 5, true, &pl);
    ok(has_cond(&pl, "FailureTarget", "BackoffLimitExceeded") && pl.n_del == 1,
       "3 restarts: BackoffLimitExceeded, the pod deleted");
    job_plan_free(&pl);
}

static void test_deadline(void)
{
    struct fake_job f;
    struct fake_pod fp[1];
    const Coracle__V1__Pod *pods[1];
    struct job_plan pl;
    fake_job(&f, T0);
    f.spec.has_activedeadlineseconds = 1;
    f.spec.activedeadlineseconds = 30;
    pods[0] = fake_pod(&fp[0], "Running", 0, 0);
    job_plan(&f.job, pods, 1, T0 + 10, true, &pl);
    ok(pl.requeue_ms == 20000 && !has_cond(&pl, "FailureTarget", NULL),
       "activeDeadlineSeconds 30, 10 s in: synced again in 20 s");
    job_plan_free(&pl);
    job_plan(&f.job, pods, 1, T0 + 30, true, &pl);
    ok(has_cond(&pl, "FailureTarget", "DeadlineExceeded") && pl.n_del == 1 && pl.st.active == 0 &&
           pl.st.terminating == 1 && !has_cond(&pl, "Failed", NULL),
       "at 30 s: FailureTarget DeadlineExceeded, the pod deleted, Failed once it is gone");
    job_plan_free(&pl);
    job_plan(&f.job, NULL, 0, T0 + 31, true, &pl);
    ok(has_cond(&pl, "Failed", "DeadlineExceeded"), "the pod gone: Failed, DeadlineExceeded");
    job_plan_free(&pl);

    f.spec.has_suspend = f.spec.suspend = 1;
    job_plan(&f.job, pods, 1, T0 + 40, true, &pl);
    ok(!has_cond(&pl, "FailureTarget", NULL) && pl.n_del == 1 && has_cond(&pl, "Suspended", NULL),
       "suspended: the clock stops, the pod goes, condition Suspended");
    job_plan_free(&pl);
}

int main(void)
{
    test_counts();
    test_backoff();
    test_deadline();
    return done_testing();
}
