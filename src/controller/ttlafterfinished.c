/*
 * The TTL-after-finished controller, as Kubernetes' (pkg/controller/
 * ttlafterfinished): a Job with spec.ttlSecondsAfterFinished is deleted
 * that many seconds after it finished (the lastTransitionTime of its
 * Complete or Failed condition), its pods with it (propagation
 * Background: the garbage collector takes them). A Job not yet due is
 * synced again when it is (ctrl_enqueue_after); nothing polls.
 *
 * Kubernetes reads the Job again from the apiserver before deleting it,
 * in case its TTL changed; here the cache is the watch's, and the delete
 * carries the Job's uid as a precondition.
 */
#include "config.h"

#include "controllers.h"
#include "grpc.h"
#include "job.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Milliseconds until job should go (<= 0: now), or false if it is not for this controller. */
static bool ttl_left(const Coracle__V1__Job *job, int64_t now_ms, int64_t *left_ms)
{
    int64_t at_s;
    if (!job->metadata || job->metadata->deletiontimestamp || !job->spec ||
        !job->spec->has_ttlsecondsafterfinished || !job_finished(job, NULL, &at_s) || !at_s)
        return false;
    *left_ms = (at_s + job->spec->ttlsecondsafterfinished) * 1000 - now_ms;
    return true;
}

static void *ttl_setup(cm_t *cm, ctrl_t *c)
{
    struct inf_handlers h = {ctrl_enqueue_added, ctrl_enqueue_updated, NULL, NULL, c};
    cm_on(cm, &kind_job, &h);
    return NULL;
}

struct ttl_del {
    ctrl_t *c;
    char *key;
};

static void deleted(int code, const char *message, const ProtobufCMessage *resp, void *arg)
{
    struct ttl_del *d = arg;
    bool ok = code == GRPC_OK || code == GRPC_NOT_FOUND; /* gone already */
    if (ok)
        log_info("%s: deleted %s, finished and past its ttlSecondsAfterFinished", ctrl_name(d->c),
                 d->key);
    ctrl_done(d->c, d->key, ok, message);
    free(d->key);
    free(d);
}

static void ttl_sync(ctrl_t *c, const char *key, void *state)
{
    char *ns = xstrdup(key), *name = strchr(ns, '/');
    *name++ = '\0';
    const Coracle__V1__Job *job = (const Coracle__V1__Job *)cm_get(ctrl_cm(c), &kind_job, ns, name);
    int64_t left;
    if (!job || !ttl_left(job, now_ns() / 1000000, &left)) {
        ctrl_done(c, key, true, NULL);
    } else if (left > 0) {
        ctrl_enqueue_after(c, key, left);
        ctrl_done(c, key, true, NULL);
    } else {
        struct ttl_del *d = xcalloc(1, sizeof(*d));
        d->c = c;
        d->key = xstrdup(key);
        cm_delete(ctrl_cm(c), &kind_job, ns, name, cm_uid(&job->base), "Background", deleted, d);
    }
    free(ns);
}

const struct ctrl_def ctrl_ttlafterfinished = {
    .name = "ttl-after-finished",
    .workers = 5,
    .setup = ttl_setup,
    .sync = ttl_sync,
};
