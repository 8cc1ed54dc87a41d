/*
 * The Job controller, as Kubernetes' (pkg/controller/job): runs a Job's
 * pods to completion. min(parallelism, completions - succeeded) pods are
 * kept active; failed pods are replaced after a back-off (10 s doubling
 * to 10 min, from the last failure) until more than backoffLimit have
 * failed (for restartPolicy OnFailure: until the container restarts of
 * the active pods reach it); activeDeadlineSeconds bounds the time since
 * startTime; suspend deletes the active pods and stops the clock. The
 * status carries active, ready, terminating, succeeded, failed,
 * startTime, completionTime and the conditions Kubernetes 1.31 writes:
 * SuccessCriteriaMet then Complete, FailureTarget then Failed (reasons
 * BackoffLimitExceeded, DeadlineExceeded), the final one once no pod of
 * the Job is still terminating. A finished Job is left alone, its pods
 * with it.
 *
 * Counting: this apiserver has no object finalizers yet, so the pods
 * carry no batch.kubernetes.io/job-tracking finalizer and the counts come
 * from the pods that exist (Kubernetes' tracking counts each pod once,
 * even after it is gone). A count is the larger of the status's and the
 * pods': it never goes down when a finished pod is deleted, but a pod
 * that finishes after such a deletion goes uncounted.
 *
 * The decision is job_plan, a function of the Job, its pods and the time
 * now; job_sync carries it out. Only NonIndexed completion is done.
 */
#include "config.h"

#include "controllers.h"
#include "job.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define BURST 500             /* creates or deletes a sync, as MaxPodCreateDeletePerSync */
#define POD_BACKOFF_S 10      /* DefaultJobPodFailureBackOff */
#define POD_BACKOFF_MAX_S 600 /* MaxJobPodFailureBackOff */
#define DEFAULT_BACKOFF_LIMIT 6

/* The labels Kubernetes gives a Job's pods (its API defaulting puts them in the template). */
static const char *const job_labels[][2] = {
    {"batch.kubernetes.io/controller-uid", "uid"},
    {"batch.kubernetes.io/job-name", "name"},
    {"controller-uid", "uid"},
    {"job-name", "name"},
};
#define N_JOB_LABELS (sizeof(job_labels) / sizeof(job_labels[0]))

const Coracle__V1__JobCondition *job_condition(const Coracle__V1__Job *job, const char *type)
{
    if (!job->status)
        return NULL;
    for (size_t i = 0; i < job->status->n_conditions; i++) {
        const Coracle__V1__JobCondition *c = job->status->conditions[i];
        if (c->type && !strcmp(c->type, type))
            return c;
    }
    return NULL;
}

static bool cond_true(const Coracle__V1__JobCondition *c)
{
    return c && c->status && !strcmp(c->status, "True");
}

bool job_finished(const Coracle__V1__Job *job, const char **type, int64_t *at_s)
{
    static const char *const final[] = {"Complete", "Failed"};
    for (size_t i = 0; i < 2; i++) {
        const Coracle__V1__JobCondition *c = job_condition(job, final[i]);
        if (!cond_true(c))
            continue;
        if (type)
            *type = final[i];
        if (at_s)
            *at_s = c->lasttransitiontime ? c->lasttransitiontime->seconds : 0;
        return true;
    }
    return false;
}

/* ------------------------------------------------------------------ plan */

/* An event the sync records. */
struct job_event {
    const char *type, *reason, *message;
};

/*
 * What a sync does, decided by job_plan. Everything in it is borrowed
 * from the Job, its pods or the plan itself, valid until control returns
 * to the loop; job_plan_free frees what the plan allocated.
 */
struct job_plan {
    Coracle__V1__JobStatus st;    /* the status the Job should have */
    bool write_status;            /* st differs from the Job's */
    int create;                   /* pods to create */
    const Coracle__V1__Pod **del; /* pods to delete */
    size_t n_del;
    struct job_event ev[2];
    size_t n_ev;
    int64_t requeue_ms; /* sync again after this long (0: no need) */
    /* storage for st */
    Coracle__V1__JobCondition **conds;
    Coracle__V1__JobCondition cond_pool[3];
    size_t n_pool;
    Coracle__V1__Time now;
};

/* What the pods say. */
struct pod_counts {
    int32_t active, ready, terminating, succeeded, failed;
    int32_t restarts;            /* container restarts of the active pods */
    int32_t fails_after_success; /* failed pods that finished after the last success */
    int64_t last_fail_s;         /* when the last failed pod finished */
};

static const char *phase_of(const Coracle__V1__Pod *p)
{
    return p->status && p->status->phase ? p->status->phase : "";
}

/* When a finished pod finished, as Kubernetes' getFinishedTime guesses it. */
static int64_t finished_at(const Coracle__V1__Pod *p, int64_t now_s)
{
    int64_t at = 0;
    const Coracle__V1__PodStatus *s = p->status;
    for (size_t i = 0; s && i < s->n_containerstatuses; i++) {
        const Coracle__V1__ContainerState *st = s->containerstatuses[i]->state;
        if (st && st->terminated && st->terminated->finishedat &&
            st->terminated->finishedat->seconds > at)
            at = st->terminated->finishedat->seconds;
    }
    for (size_t i = 0; !at && s && i < s->n_conditions; i++) {
        const Coracle__V1__PodCondition *c = s->conditions[i];
        if (c->type && !strcmp(c->type, "Ready") && c->status && !strcmp(c->status, "False") &&
            c->lasttransitiontime)
            at = c->lasttransitiontime->seconds;
    }
    if (!at && p->metadata && p->metadata->deletiontimestamp)
        at = p->metadata->deletiontimestamp->seconds;
    return at ? at : now_s;
}

static int32_t restarts_of(const Coracle__V1__Pod *p)
{
    int32_t n = 0;
    const Coracle__V1__PodStatus *s = p->status;
    for (size_t i = 0; s && i < s->n_containerstatuses; i++)
        n += s->containerstatuses[i]->restartcount;
    for (size_t i = 0; s && i < s->n_initcontainerstatuses; i++)
        n += s->initcontainerstatuses[i]->restartcount;
    return n;
}

/* Counts pods[] and moves the active ones to its front (their number in c->active). */
static void count_pods(const Coracle__V1__Pod **pods, size_t n, int64_t now_s, struct pod_counts *c)
{
    int64_t last_success = 0;
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        const char *ph = phase_of(pods[i]);
        if (!strcmp(ph, "Succeeded")) {
            c->succeeded++;
            int64_t at = finished_at(pods[i], now_s);
            if (at > last_success)
                last_success = at;
        } else if (!strcmp(ph, "Failed")) {
            c->failed++;
        } else if (pods[i]->metadata && pods[i]->metadata->deletiontimestamp) {
            c->terminating++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const Coracle__V1__Pod *p = pods[i];
        if (!strcmp(phase_of(p), "Failed")) {
            int64_t at = finished_at(p, now_s);
            if (at > c->last_fail_s)
                c->last_fail_s = at;
            if (at > last_success)
                c->fails_after_success++;
        }
        if (!cm_pod_active(p))
            continue;
        pods[c->active++] = p;
        c->restarts += restarts_of(p);
        if (cm_pod_ready(p))
            c->ready++;
    }
}

static void plan_event(struct job_plan *pl, const char *type, const char *reason,
                       const char *message)
{
    if (pl->n_ev < sizeof(pl->ev) / sizeof(pl->ev[0]))
        pl->ev[pl->n_ev++] = (struct job_event){type, reason, message};
}

static int cond_index(const struct job_plan *pl, const char *type)
{
    for (size_t i = 0; i < pl->st.n_conditions; i++)
        if (pl->st.conditions[i]->type && !strcmp(pl->st.conditions[i]->type, type))
            return (int)i;
    return -1;
}

static bool str_eq(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

/*
 * Kubernetes' ensureJobConditionStatus: the condition of this type gets
 * status, reason and message (a new transition time when any differs); an
 * absent one is added unless status is False. Returns whether st changed.
 */
static bool ensure_cond(struct job_plan *pl, const char *type, const char *status,
                        const char *reason, const char *message)
{
    int i = cond_index(pl, type);
    if (i >= 0) {
        const Coracle__V1__JobCondition *c = pl->st.conditions[i];
        if (str_eq(c->status, status) && str_eq(c->reason, reason) && str_eq(c->message, message))
            return false;
    } else if (!strcmp(status, "False")) {
        return false;
    }
    if (pl->n_pool == sizeof(pl->cond_pool) / sizeof(pl->cond_pool[0]))
        fatal("job: more condition changes than a sync makes");
    Coracle__V1__JobCondition *c = &pl->cond_pool[pl->n_pool++];
    *c = (Coracle__V1__JobCondition)CORACLE__V1__JOB_CONDITION__INIT;
    c->type = (char *)type;
    c->status = (char *)status;
    c->reason = (char *)reason;
    c->message = (char *)message;
    c->lastprobetime = &pl->now;
    c->lasttransitiontime = &pl->now;
    if (i >= 0)
        pl->st.conditions[i] = c;
    else
        pl->st.conditions[pl->st.n_conditions++] = c;
    return true;
}

/* Kubernetes' pastBackoffLimitOnFailure: container restarts count for OnFailure pods. */
static bool past_limit_on_failure(const Coracle__V1__JobSpec *spec, const struct pod_counts *c,
                                  int32_t limit)
{
    const Coracle__V1__PodSpec *ps = spec->template_ ? spec->template_->spec : NULL;
    if (!ps || !ps->restartpolicy || strcmp(ps->restartpolicy, "OnFailure"))
        return false;
    return limit == 0 ? c->restarts > 0 : c->restarts >= limit;
}

/* Seconds until a replacement pod may be made (0: now), from the failures since the last success.
 */
static int64_t backoff_left(const struct pod_counts *c, int64_t now_s)
{
    if (!c->fails_after_success)
        return 0;
    int64_t d = POD_BACKOFF_S;
    for (int32_t i = 1; i < c->fails_after_success && d < POD_BACKOFF_MAX_S; i++)
        d *= 2;
    if (d > POD_BACKOFF_MAX_S)
        d = POD_BACKOFF_MAX_S;
    int64_t left = c->last_fail_s + d - now_s;
    return left > 0 ? left : 0;
}

static void plan_delete(struct job_plan *pl, const Coracle__V1__Pod **pods, size_t n,
                        struct pod_counts *c)
{
    if (n > BURST)
        n = BURST;
    for (size_t i = 0; i < n; i++) {
        pl->del[pl->n_del++] = pods[i];
        if (cm_pod_ready(pods[i]))
            c->ready--;
    }
    c->active -= (int32_t)n;
    c->terminating += (int32_t)n;
}

/* Kubernetes' manageJob: deletes what is too many, creates what is missing. */
static void manage(struct job_plan *pl, const Coracle__V1__JobSpec *spec,
                   const Coracle__V1__Pod **active, struct pod_counts *c, int64_t now_s)
{
    if (spec->has_suspend && spec->suspend) {
        plan_delete(pl, active, (size_t)c->active, c);
        return;
    }
    int32_t parallelism = spec->has_parallelism ? spec->parallelism : 1;
    int32_t want;
    if (!spec->has_completions && spec->has_parallelism) {
        want = c->succeeded > 0 ? c->active : parallelism; /* a work queue */
    } else {
        int32_t completions = spec->has_completions ? spec->completions : 1;
        want = completions - c->succeeded;
        if (want > parallelism)
            want = parallelism;
        if (want < 0)
            want = 0;
    }
    if (c->active > want) {
        qsort(active, (size_t)c->active, sizeof(*active), cm_pod_delete_order);
        plan_delete(pl, active, (size_t)(c->active - want), c);
        return;
    }
    int32_t diff = want - c->active;
    if (diff <= 0)
        return;
    int64_t left = backoff_left(c, now_s);
    if (left > 0) {
        pl->requeue_ms = left * 1000;
        return;
    }
    pl->create = diff > BURST ? BURST : diff;
    c->active += pl->create;
}

static void set_requeue(struct job_plan *pl, int64_t ms)
{
    if (ms > 0 && (!pl->requeue_ms || ms < pl->requeue_ms))
        pl->requeue_ms = ms;
}

static bool time_eq(const Coracle__V1__Time *a, const Coracle__V1__Time *b)
{
    if (!a || !b)
        return a == b;
    return a->seconds == b->seconds;
}

/*
 * Decides a sync of job at now_s from its pods (pods[], reordered: the
 * active ones first), as Kubernetes' syncJob. satisfied: the cache has
 * seen the sync's earlier creates and deletes (expectations). Returns
 * false for a finished Job (nothing to do; *pl untouched).
 */
static bool job_plan(const Coracle__V1__Job *job, const Coracle__V1__Pod **pods, size_t n,
                     int64_t now_s, bool satisfied, struct job_plan *pl)
{
    static const Coracle__V1__JobSpec no_spec = CORACLE__V1__JOB_SPEC__INIT;
    static const Coracle__V1__JobStatus no_status = CORACLE__V1__JOB_STATUS__INIT;
    if (job_finished(job, NULL, NULL))
        return false;
    const Coracle__V1__JobSpec *spec = job->spec ? job->spec : &no_spec;
    const Coracle__V1__JobStatus *old = job->status ? job->status : &no_status;
    bool suspended = spec->has_suspend && spec->suspend;
    bool deleting = job->metadata && job->metadata->deletiontimestamp;
    int32_t limit = spec->has_backofflimit ? spec->backofflimit : DEFAULT_BACKOFF_LIMIT;

    memset(pl, 0, sizeof(*pl));
    pl->now = (Coracle__V1__Time)CORACLE__V1__TIME__INIT;
    pl->now.has_seconds = 1;
    pl->now.seconds = now_s;
    pl->st = *old;
    pl->conds = xmalloc((old->n_conditions + 3) * sizeof(*pl->conds));
    if (old->n_conditions)
        memcpy(pl->conds, old->conditions, old->n_conditions * sizeof(*pl->conds));
    pl->st.conditions = pl->conds;
    pl->del = xmalloc((n ? n : 1) * sizeof(*pl->del));
    bool conds_changed = false;

    struct pod_counts c;
    count_pods(pods, n, now_s, &c);
    if (old->succeeded > c.succeeded)
        c.succeeded = old->succeeded;
    if (old->failed > c.failed)
        c.failed = old->failed;
    if (!old->starttime && !suspended)
        pl->st.starttime = &pl->now;
    int64_t start_s = pl->st.starttime ? pl->st.starttime->seconds : now_s;

    /* finished already in an earlier sync, or now: the condition to end with */
    const char *final = NULL, *reason = NULL, *message = NULL;
    const Coracle__V1__JobCondition *target = job_condition(job, "SuccessCriteriaMet");
    if (cond_true(target)) {
        final = "Complete";
    } else if (cond_true(target = job_condition(job, "FailureTarget"))) {
        final = "Failed";
        reason = target->reason;
        message = target->message;
    } else if (c.failed > limit || past_limit_on_failure(spec, &c, limit)) {
        final = "Failed";
        reason = "BackoffLimitExceeded";
        message = "Job has reached the specified backoff limit";
    } else if (spec->has_activedeadlineseconds && !suspended &&
               now_s - start_s >= spec->activedeadlineseconds) {
        final = "Failed";
        reason = "DeadlineExceeded";
        message = "Job was active longer than specified deadline";
    } else if (spec->has_activedeadlineseconds && !suspended) {
        set_requeue(pl, (start_s + spec->activedeadlineseconds - now_s) * 1000);
    }
    if (final) {
        plan_delete(pl, pods, (size_t)c.active, &c);
        if (!satisfied)
            final = NULL; /* the cache may not hold every pod yet */
    } else {
        bool managed = satisfied && !deleting;
        if (managed)
            manage(pl, spec, pods, &c, now_s);
        bool complete =
            !spec->has_completions && spec->has_parallelism
                ? c.succeeded > 0 && c.active == 0
                : c.succeeded >= (spec->has_completions ? spec->completions : 1) && c.active == 0;
        if (complete) {
            final = "Complete";
        } else if (managed && suspended) {
            if (ensure_cond(pl, "Suspended", "True", "JobSuspended", "Job suspended")) {
                conds_changed = true;
                plan_event(pl, "Normal", "Suspended", "Job suspended");
            }
        } else if (managed) {
            if (ensure_cond(pl, "Suspended", "False", "JobResumed", "Job resumed")) {
                conds_changed = true;
                plan_event(pl, "Normal", "Resumed", "Job resumed");
                pl->st.starttime = &pl->now; /* the deadline counts from the resume */
            }
        }
    }
    if (final && !strcmp(final, "Complete")) {
        reason = "CompletionsReached";
        message = "Reached expected number of succeeded pods";
        conds_changed |= ensure_cond(pl, "SuccessCriteriaMet", "True", reason, message);
    } else if (final) {
        conds_changed |= ensure_cond(pl, "FailureTarget", "True", reason, message);
    }
    /* the final condition once no pod of the Job is left terminating */
    if (final && c.terminating == 0 && ensure_cond(pl, final, "True", reason, message)) {
        conds_changed = true;
        if (!strcmp(final, "Complete")) {
            pl->st.completiontime = &pl->now;
            plan_event(pl, "Normal", "Completed", "Job completed");
        } else {
            plan_event(pl, "Warning", reason, message);
        }
    }

    pl->st.has_active = pl->st.has_ready = pl->st.has_terminating = 1;
    pl->st.has_succeeded = pl->st.has_failed = 1;
    pl->st.active = c.active;
    pl->st.ready = c.ready;
    pl->st.terminating = c.terminating;
    pl->st.succeeded = c.succeeded;
    pl->st.failed = c.failed;
    pl->write_status = conds_changed || !job->status || pl->st.active != old->active ||
                       pl->st.ready != old->ready || !old->has_ready ||
                       pl->st.terminating != old->terminating || !old->has_terminating ||
                       pl->st.succeeded != old->succeeded || pl->st.failed != old->failed ||
                       !time_eq(pl->st.starttime, old->starttime) ||
                       !time_eq(pl->st.completiontime, old->completiontime);
    return true;
}

static void job_plan_free(struct job_plan *pl)
{
    free(pl->conds);
    free(pl->del);
}

/* ------------------------------------------------------------- handlers */

static void job_delete(inf_t *inf, const ProtobufCMessage *obj, void *arg)
{
    char *key = cm_key(obj);
    cm_expect_forget(arg, key);
    free(key);
}

static void *job_setup(cm_t *cm, ctrl_t *c)
{
    struct inf_handlers jh = {ctrl_enqueue_added, ctrl_enqueue_updated, job_delete, NULL, c};
    cm_on(cm, &kind_job, &jh);
    cm_on_owned(cm, c, &kind_pod, &kind_job);
    return NULL;
}

/* ------------------------------------------------------------------ sync */

static const Coracle__V1__Job *cached_job(struct cm_batch *b)
{
    char *ns = xstrdup(cm_batch_key(b)), *name = strchr(ns, '/');
    *name++ = '\0';
    const ProtobufCMessage *j = cm_get(ctrl_cm(cm_batch_ctrl(b)), &kind_job, ns, name);
    free(ns);
    return (const Coracle__V1__Job *)j;
}

static void status_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    cm_batch_end(arg, code, message, "update status");
}

static void create_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct cm_batch *b = arg;
    ctrl_t *c = cm_batch_ctrl(b);
    const Coracle__V1__Job *job = cached_job(b);
    if (job && code == 0 && resp)
        ctrl_event(c, &kind_job, &job->base, "Normal", "SuccessfulCreate", "Created pod: %s",
                   kind_meta(resp)->name);
    else if (job && code != 0)
        ctrl_event(c, &kind_job, &job->base, "Warning", "FailedCreate", "Error creating: %s",
                   message);
    if (code != 0)
        cm_observed(c, cm_batch_key(b), 1, 0); /* it will never be seen */
    cm_batch_end(b, code, message, "create pod");
}

static void delete_done(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct cm_batch *b = arg;
    if (code != 0)
        cm_observed(cm_batch_ctrl(b), cm_batch_key(b), 0, 1);
    cm_batch_end(b, code, message, "delete pod");
}

/* Creates n pods from the template, with the labels Kubernetes gives a Job's pods. */
static void create_pods(struct cm_batch *b, const Coracle__V1__Job *job, int n)
{
    const Coracle__V1__PodTemplateSpec *t = job->spec ? job->spec->template_ : NULL;
    const Coracle__V1__ObjectMeta *tm = t ? t->metadata : NULL;
    size_t nl = tm ? tm->n_labels : 0;
    Coracle__V1__ObjectMeta__LabelsEntry extra[N_JOB_LABELS];
    Coracle__V1__ObjectMeta__LabelsEntry **labels = xmalloc((nl + N_JOB_LABELS) * sizeof(*labels));
    if (nl)
        memcpy(labels, tm->labels, nl * sizeof(*labels));
    size_t n_labels = nl;
    for (size_t i = 0; i < N_JOB_LABELS; i++) {
        bool have = false;
        for (size_t j = 0; j < nl && !have; j++)
            have = !strcmp(tm->labels[j]->key, job_labels[i][0]);
        if (have)
            continue;
        extra[i] =
            (Coracle__V1__ObjectMeta__LabelsEntry)CORACLE__V1__OBJECT_META__LABELS_ENTRY__INIT;
        extra[i].key = (char *)job_labels[i][0];
        extra[i].value =
            !strcmp(job_labels[i][1], "uid") ? job->metadata->uid : job->metadata->name;
        labels[n_labels++] = &extra[i];
    }
    char *gen = xconcat(job->metadata->name, "-", NULL);
    for (int i = 0; i < n; i++) {
        struct cm_pod_parts pp;
        cm_pod_from_template(&pp, t, &kind_job, &job->base, gen);
        pp.meta.labels = labels;
        pp.meta.n_labels = n_labels;
        cm_batch_add(b);
        cm_call(ctrl_cm(cm_batch_ctrl(b)), &kind_pod, "Create", &pp.pod.base, create_done, b);
    }
    free(gen);
    free(labels);
}

static void job_sync(ctrl_t *c, const char *key, void *state)
{
    cm_t *cm = ctrl_cm(c);
    char *ns = xstrdup(key), *name = strchr(ns, '/');
    *name++ = '\0';
    const Coracle__V1__Job *job = (const Coracle__V1__Job *)cm_get(cm, &kind_job, ns, name);
    const Coracle__V1__Pod **pods = NULL;
    size_t n = 0;
    struct job_plan pl;
    if (job)
        pods = (const Coracle__V1__Pod **)cm_owned_list(cm, &kind_pod, ns, cm_uid(&job->base), &n);
    if (!job || !job->metadata ||
        !job_plan(job, pods, n, now_ns() / 1000000000, cm_satisfied(c, key), &pl)) {
        if (!job)
            cm_expect_forget(c, key);
        ctrl_done(c, key, true, NULL);
        free(pods);
        free(ns);
        return;
    }
    struct cm_batch *b = cm_batch_new(c, key);
    if (pl.create || pl.n_del)
        cm_expect(c, key, pl.create, (int)pl.n_del);
    for (size_t i = 0; i < pl.n_del; i++) {
        const Coracle__V1__ObjectMeta *pm = pl.del[i]->metadata;
        cm_batch_add(b);
        ctrl_event(c, &kind_job, &job->base, "Normal", "SuccessfulDelete", "Deleted pod: %s",
                   pm->name);
        cm_delete(cm, &kind_pod, pm->namespace_, pm->name, pm->uid, NULL, delete_done, b);
    }
    if (pl.create)
        create_pods(b, job, pl.create);
    if (pl.write_status) {
        Coracle__V1__Job upd = *job;
        upd.status = &pl.st;
        cm_batch_add(b);
        cm_call(cm, &kind_job, "UpdateStatus", &upd.base, status_done, b);
    }
    for (size_t i = 0; i < pl.n_ev; i++)
        ctrl_event(c, &kind_job, &job->base, pl.ev[i].type, pl.ev[i].reason, "%s",
                   pl.ev[i].message);
    if (pl.requeue_ms)
        ctrl_enqueue_after(c, key, pl.requeue_ms + 100);
    job_plan_free(&pl);
    free(pods);
    free(ns);
    cm_batch_end(b, 0, NULL, NULL);
}

const struct ctrl_def ctrl_job = {
    .name = "job",
    .workers = 5,
    .setup = job_setup,
    .sync = job_sync,
};
