/*
 * imggc: image garbage collection on the node, as Kubernetes' kubelet runs
 * its image manager: at start (once the pods are known) and every
 * --image-gc-period (5 min, the kubelet's ImageGCPeriod), off the event
 * loop in a child process (deleting an image's rootfs takes a while). The
 * images in use are those of the containers on disk (whatever their state)
 * and those every pod on the node names (being pulled or created count);
 * src/lib/image_gc.c decides and deletes. When it cannot free enough, the
 * Node gets Kubernetes' FreeDiskSpaceFailed warning; a run failing right
 * after a failed one also ImageGCFailed. --image-gc-high-threshold 100
 * turns it off, as in Kubernetes.
 */
#include "config.h"
#include "image_gc.h"
#include "klet.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define NS 1000000000LL

/* What the child works from (a copy of the parent's memory). */
struct gc_job {
    const struct klet *k;
    char **refs;
    size_t nrefs, cap;
    int64_t now;
};

static void add_ref(struct gc_job *j, const char *ref)
{
    if (!ref || !*ref)
        return;
    if (j->nrefs == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 16;
        j->refs = xrealloc(j->refs, j->cap * sizeof(char *));
    }
    j->refs[j->nrefs++] = xstrdup(ref);
}

/* Every image a pod on the node names, and what its containers run. */
static void collect_refs(const struct klet *k, struct gc_job *j)
{
    for (size_t i = 0; i < k->npods; i++) {
        const struct klet_pod *p = k->pods[i];
        for (size_t n = 0; n < p->ninit + p->nctr; n++) {
            const struct klet_ctr *c = n < p->ninit ? &p->inits[n] : &p->ctrs[n - p->ninit];
            add_ref(j, c->image);
            add_ref(j, c->image_id);
        }
    }
}

/* In the child: collect, then say what happened on stdout, one fact a line. */
static int gc_child(void *arg)
{
    struct gc_job *j = arg;
    const struct klet *k = j->k;
    img_store_t *s = NULL;
    char *err = NULL, **ids = NULL;
    /* No IMG_STORE_CREATE: its clean-up of tmp/ is the kubelet's, at its own open. */
    if (img_store_open(k->cfg.image_dir, 0, &s, &err) < 0) {
        printf("error %s\n", err ? err : "cannot open the image store");
        return 1;
    }
    size_t nids = img_gc_kubelet_images(k->cfg.root_dir, &ids);
    for (size_t i = 0; i < nids; i++)
        add_ref(j, ids[i]);
    struct img_gc_policy pol = {(int)k->cfg.image_gc_high, (int)k->cfg.image_gc_low,
                                k->imggc.min_age, k->imggc.max_age};
    struct img_gc_result r;
    if (img_gc_run(s, &pol, j->refs, j->nrefs, j->now, k->imggc.began, &r, &err) < 0) {
        printf("error %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < r.nremoved; i++)
        printf("removed %s %" PRIu64 " %s %s\n", r.removed[i].id, r.removed[i].size,
               r.removed[i].why == IMG_GC_AGE ? "age" : "space",
               r.removed[i].name ? r.removed[i].name : "<none>");
    printf("usage %d %d %" PRId64 " %" PRId64 "\n", r.usage, r.over ? 1 : 0, r.to_free, r.freed);
    if (r.errors)
        printf("failed %s\n", r.errors);
    return 0;
}

static void gc_schedule(struct klet *k, int64_t delay);

/* The child's report: log it, raise the Node's events, and plan the next run. */
static void gc_done(int status, const char *out, size_t len, void *arg)
{
    struct klet *k = (struct klet *)((char *)arg - offsetof(struct klet, imggc));
    char *copy = xstrndup(out, len), *save = NULL, *fail = NULL;
    int usage = -1, over = 0;
    long long want = 0, freed = 0;
    k->imggc.pid = 0;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(l, "removed ", 8)) {
            char id[80], why[8], name[512];
            unsigned long long size;
            if (sscanf(l + 8, "%79s %llu %7s %511s", id, &size, why, name) != 4)
                continue;
            if (!strcmp(why, "age"))
                k->imggc.removed_age++;
            else
                k->imggc.removed_space++;
            log_info("image garbage collection: removed %s (%s, %llu bytes, %s)", name, id, size,
                     !strcmp(why, "age") ? "unused longer than the maximum age"
                                         : "to free disk space");
        } else if (!strncmp(l, "usage ", 6)) {
            sscanf(l + 6, "%d %d %lld %lld", &usage, &over, &want, &freed);
        } else if (!strncmp(l, "error ", 6) && !fail) {
            fail = xstrdup(l + 6);
        } else if (!strncmp(l, "failed ", 7) && !fail) {
            fail = over ? xasprintf("wanted to free %lld bytes, but freed %lld bytes space with "
                                    "errors in image deletion: %s",
                                    want, freed, l + 7)
                        : xasprintf("failed to garbage collect images: %s", l + 7);
        } else {
            log_debug("image garbage collection: %s", l);
        }
    }
    if (!fail && (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || usage < 0))
        fail = xstrdup("image garbage collection did not finish");
    if (!fail && over && freed < want) {
        fail = xasprintf("Failed to garbage collect required amount of images. Attempted to free "
                         "%lld bytes, but only found %lld bytes eligible to free.",
                         want, freed);
        klet_event_node(k, "Warning", "FreeDiskSpaceFailed", "%s", fail);
    }
    if (fail) {
        if (k->imggc.failed) {
            log_err("image garbage collection failed multiple times in a row: %s", fail);
            klet_event_node(k, "Warning", "ImageGCFailed", "%s", fail);
        } else {
            log_err("image garbage collection failed: %s", fail);
        }
    } else if (over) {
        log_info("image garbage collection: disk usage was %d%% (high threshold %lld%%), freed "
                 "%lld bytes",
                 usage, k->cfg.image_gc_high, freed);
    }
    k->imggc.failed = fail != NULL;
    free(fail);
    free(copy);
    gc_schedule(k, k->imggc.period);
}

static void gc_fire(evutil_socket_t fd, short what, void *arg)
{
    struct klet *k = arg;
    if (k->imggc.pid > 0)
        return; /* still at it: gc_done schedules the next */
    if (!k->synced && !k->offline) {
        gc_schedule(k, NS); /* the pods on the node are not known yet */
        return;
    }
    struct gc_job j = {.k = k, .now = now_ns()};
    collect_refs(k, &j);
    k->imggc.pid = klet_proc_fork(k, gc_child, &j, 30 * 60 * 1000, gc_done, &k->imggc);
    if (k->imggc.pid < 0) {
        k->imggc.pid = 0;
        log_err("image garbage collection: fork: %s", strerror(errno));
        gc_schedule(k, k->imggc.period);
    }
    for (size_t i = 0; i < j.nrefs; i++)
        free(j.refs[i]);
    free(j.refs);
}

static void gc_schedule(struct klet *k, int64_t delay)
{
    if (!k->imggc.ev)
        return;
    struct timeval tv = {delay / NS, (delay % NS) / 1000};
    event_add(k->imggc.ev, &tv);
}

void klet_imggc_start(struct klet *k)
{
    if (k->cfg.image_gc_high >= 100) {
        log_info("image garbage collection is off (--image-gc-high-threshold 100)");
        return;
    }
    k->imggc.began = now_ns();
    k->imggc.ev = evtimer_new(k->base, gc_fire, k);
    gc_schedule(k, 0);
}

void klet_imggc_stop(struct klet *k)
{
    if (k->imggc.ev)
        event_free(k->imggc.ev);
    k->imggc.ev = NULL;
    klet_proc_forget(k, &k->imggc);
}
