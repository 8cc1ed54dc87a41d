/*
 * status: the PodStatus the kubelet reports, computed from its container
 * records alone (no I/O), the way Kubernetes' kubelet does it: phase from
 * the container states and restartPolicy (getPhase), the conditions
 * Initialized, Ready, ContainersReady and PodScheduled (lastTransitionTime
 * kept while a condition does not change), containerStatuses and
 * initContainerStatuses with state/lastState/restartCount/ready/started,
 * hostIP, podIP, startTime and qosClass. The result is built from plain
 * allocations tracked by a small arena that klet_status_free releases.
 */
#include "config.h"
#include "klet.h"
#include "qty.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS 1000000000LL

/* Every allocation of one status, freed together. The arena pointer hides in a
 * wrapper around the status message. */
struct arena_status {
    Coracle__V1__PodStatus st; /* first: the pointer handed out is this */
    void **ptrs;
    size_t n, cap;
};

static void *ar_keep(struct arena_status *a, void *p)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->ptrs = xrealloc(a->ptrs, a->cap * sizeof *a->ptrs);
    }
    a->ptrs[a->n++] = p;
    return p;
}

static void *ar_alloc(struct arena_status *a, size_t n)
{
    return ar_keep(a, xcalloc(1, n));
}

static char *ar_str(struct arena_status *a, const char *s)
{
    return s ? ar_keep(a, xstrdup(s)) : NULL;
}

void klet_status_free(Coracle__V1__PodStatus *s)
{
    if (!s)
        return;
    struct arena_status *a = (struct arena_status *)s;
    for (size_t i = 0; i < a->n; i++)
        free(a->ptrs[i]);
    free(a->ptrs);
    free(a);
}

void klet_fmt_time(char *buf, size_t n, int64_t ns)
{
    time_t s = ns / NS;
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static Coracle__V1__Time *mk_time(struct arena_status *a, int64_t ns)
{
    Coracle__V1__Time *t = ar_alloc(a, sizeof *t);
    coracle__v1__time__init(t);
    t->has_seconds = 1;
    t->seconds = ns / NS; /* Kubernetes' metav1.Time has second precision */
    return t;
}

bool klet_should_restart(const struct klet_pod *p, const struct klet_ctr *c)
{
    const char *r = p->pod->spec->restartpolicy;
    if (!r || !*r || !strcmp(r, "Always"))
        return true;
    if (!strcmp(r, "OnFailure"))
        return !c->term.valid || c->term.exit_code != 0;
    return false;
}

const char *klet_status_phase(const struct klet_pod *p)
{
    if (p->reject_reason)
        return "Failed";
    const char *policy = p->pod->spec->restartpolicy;
    if (!policy || !*policy)
        policy = "Always";
    for (size_t i = 0; i < p->ninit; i++) {
        const struct klet_ctr *c = &p->inits[i];
        if (c->state == KC_EXITED && c->term.exit_code == 0)
            continue;
        if (c->state == KC_EXITED && !strcmp(policy, "Never"))
            return "Failed";
        return "Pending";
    }
    int running = 0, waiting = 0, stopped = 0, succeeded = 0;
    for (size_t i = 0; i < p->nctr; i++) {
        const struct klet_ctr *c = &p->ctrs[i];
        switch (c->state) {
        case KC_RUNNING:
            running++;
            break;
        case KC_EXITED:
            stopped++;
            if (c->term.exit_code == 0)
                succeeded++;
            break;
        default:
            if (c->last.valid)
                stopped++;
            else
                waiting++;
        }
    }
    if (waiting > 0)
        return "Pending";
    if (running > 0)
        return "Running";
    if (stopped > 0) {
        if (!strcmp(policy, "Always"))
            return "Running";
        if (stopped == succeeded)
            return "Succeeded";
        if (!strcmp(policy, "OnFailure"))
            return "Running";
        return "Failed";
    }
    return "Pending";
}

static Coracle__V1__ContainerStateTerminated *mk_term(struct arena_status *a,
                                                      const struct klet_term *t)
{
    Coracle__V1__ContainerStateTerminated *x = ar_alloc(a, sizeof *x);
    coracle__v1__container_state_terminated__init(x);
    x->has_exitcode = 1;
    x->exitcode = t->exit_code;
    x->reason = ar_str(a, t->oom              ? "OOMKilled"
                          : t->unknown        ? "Unknown"
                          : t->exit_code == 0 ? "Completed"
                                              : "Error");
    if (t->started_ns)
        x->startedat = mk_time(a, t->started_ns);
    if (t->finished_ns)
        x->finishedat = mk_time(a, t->finished_ns);
    if (t->id[0])
        x->containerid = ar_keep(a, xasprintf("runc://%s", t->id));
    return x;
}

static Coracle__V1__ContainerState *mk_state(struct arena_status *a)
{
    Coracle__V1__ContainerState *s = ar_alloc(a, sizeof *s);
    coracle__v1__container_state__init(s);
    return s;
}

static Coracle__V1__ContainerStateWaiting *mk_wait(struct arena_status *a, const char *reason,
                                                   const char *msg)
{
    Coracle__V1__ContainerStateWaiting *w = ar_alloc(a, sizeof *w);
    coracle__v1__container_state_waiting__init(w);
    w->reason = ar_str(a, reason);
    w->message = ar_str(a, msg);
    return w;
}

static Coracle__V1__ContainerStatus *mk_cstatus(struct arena_status *a, const struct klet_ctr *c)
{
    Coracle__V1__ContainerStatus *cs = ar_alloc(a, sizeof *cs);
    coracle__v1__container_status__init(cs);
    cs->name = ar_str(a, c->name);
    cs->image = ar_str(a, c->image);
    cs->imageid = ar_str(a, c->image_id ? c->image_id : "");
    cs->has_restartcount = 1;
    cs->restartcount = c->restarts;
    cs->has_ready = 1;
    cs->ready = c->state == KC_RUNNING && c->ready && !c->startup_pending;
    cs->has_started = 1;
    cs->started = c->state == KC_RUNNING && !c->startup_pending;
    cs->state = mk_state(a);
    const struct klet_term *last = c->last.valid ? &c->last : NULL;
    const char *id = NULL;
    switch (c->state) {
    case KC_WAITING:
    case KC_CREATING:
        cs->state->waiting =
            mk_wait(a, c->wait_reason ? c->wait_reason : "ContainerCreating", c->wait_msg);
        break;
    case KC_RUNNING: {
        Coracle__V1__ContainerStateRunning *r = ar_alloc(a, sizeof *r);
        coracle__v1__container_state_running__init(r);
        r->startedat = mk_time(a, c->started_ns ? c->started_ns : now_ns());
        cs->state->running = r;
        id = c->id;
        break;
    }
    case KC_EXITED:
        if (c->wait_reason) {
            cs->state->waiting = mk_wait(a, c->wait_reason, c->wait_msg);
            last = &c->term;
        } else {
            cs->state->terminated = mk_term(a, &c->term);
        }
        id = c->term.id;
        break;
    }
    if (last) {
        cs->laststate = mk_state(a);
        cs->laststate->terminated = mk_term(a, last);
        if (!id)
            id = last->id;
    }
    if (id && *id)
        cs->containerid = ar_keep(a, xasprintf("runc://%s", id));
    return cs;
}

static const Coracle__V1__PodCondition *old_cond(const Coracle__V1__PodStatus *old,
                                                 const char *type)
{
    if (!old)
        return NULL;
    for (size_t i = 0; i < old->n_conditions; i++)
        if (old->conditions[i]->type && !strcmp(old->conditions[i]->type, type))
            return old->conditions[i];
    return NULL;
}

static Coracle__V1__PodCondition *mk_cond(struct arena_status *a, const Coracle__V1__PodStatus *old,
                                          const char *type, bool status, const char *reason,
                                          const char *msg, int64_t now)
{
    Coracle__V1__PodCondition *c = ar_alloc(a, sizeof *c);
    coracle__v1__pod_condition__init(c);
    c->type = ar_str(a, type);
    c->status = ar_str(a, status ? "True" : "False");
    c->reason = ar_str(a, reason);
    c->message = ar_str(a, msg);
    const Coracle__V1__PodCondition *o = old_cond(old, type);
    if (o && o->status && !strcmp(o->status, c->status) && o->lasttransitiontime) {
        c->lasttransitiontime = mk_time(a, o->lasttransitiontime->seconds * NS);
    } else {
        c->lasttransitiontime = mk_time(a, now);
    }
    return c;
}

/* "containers with unready status: [a b]" */
static char *names_msg(const char *what, const struct klet_ctr *arr, size_t n,
                       bool (*bad)(const struct klet_ctr *))
{
    char *s = NULL;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (!bad(&arr[i]))
            continue;
        char *t = xasprintf("%s%s%s", s ? s : "", cnt ? " " : "", arr[i].name);
        free(s);
        s = t;
        cnt++;
    }
    if (!cnt)
        return NULL;
    char *m = xasprintf("%s: [%s]", what, s);
    free(s);
    return m;
}

static bool not_ready(const struct klet_ctr *c)
{
    return !(c->state == KC_RUNNING && c->ready && !c->startup_pending);
}

static bool not_inited(const struct klet_ctr *c)
{
    return !(c->state == KC_EXITED && c->term.exit_code == 0);
}

static const char *qos_class(const Coracle__V1__PodSpec *s)
{
    bool any = false, guaranteed = true;
    for (size_t i = 0; i < s->n_containers + s->n_initcontainers; i++) {
        const Coracle__V1__Container *c =
            i < s->n_containers ? s->containers[i] : s->initcontainers[i - s->n_containers];
        const Coracle__V1__ResourceRequirements *r = c->resources;
        if (!r || (!r->n_limits && !r->n_requests)) {
            guaranteed = false;
            continue;
        }
        any = true;
        static const char *const res[] = {"cpu", "memory"};
        for (size_t j = 0; j < 2; j++) {
            const char *lim = NULL, *req = NULL;
            for (size_t k = 0; k < r->n_limits; k++)
                if (!strcmp(r->limits[k]->key, res[j]) && r->limits[k]->value)
                    lim = r->limits[k]->value->string;
            for (size_t k = 0; k < r->n_requests; k++)
                if (!strcmp(r->requests[k]->key, res[j]) && r->requests[k]->value)
                    req = r->requests[k]->value->string;
            if (!lim) {
                guaranteed = false;
            } else if (req) {
                int64_t a = 0, b = 0;
                if (qty_parse(lim, &a, NULL) < 0 || qty_parse(req, &b, NULL) < 0 || a != b)
                    guaranteed = false;
            }
        }
    }
    return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

Coracle__V1__PodStatus *klet_status_compute(const struct klet_pod *p,
                                            const Coracle__V1__PodStatus *old, const char *host_ip,
                                            int64_t now)
{
    struct arena_status *a = xcalloc(1, sizeof *a);
    Coracle__V1__PodStatus *st = &a->st;
    coracle__v1__pod_status__init(st);
    const char *phase = klet_status_phase(p);
    st->phase = ar_str(a, phase);
    st->hostip = ar_str(a, host_ip);
    if (host_ip && *host_ip) {
        st->n_hostips = 1;
        st->hostips = ar_alloc(a, sizeof *st->hostips);
        st->hostips[0] = ar_alloc(a, sizeof **st->hostips);
        coracle__v1__host_ip__init(st->hostips[0]);
        st->hostips[0]->ip = ar_str(a, host_ip);
    }
    bool hostnet = p->pod->spec->has_hostnetwork && p->pod->spec->hostnetwork;
    const char *pod_ip = hostnet ? host_ip : p->pod_ip;
    if (pod_ip && *pod_ip) {
        st->podip = ar_str(a, pod_ip);
        st->n_podips = 1;
        st->podips = ar_alloc(a, sizeof *st->podips);
        st->podips[0] = ar_alloc(a, sizeof **st->podips);
        coracle__v1__pod_ip__init(st->podips[0]);
        st->podips[0]->ip = ar_str(a, pod_ip);
    }
    st->starttime = mk_time(a, p->start_ns);
    if (p->reject_reason) {
        /* Kubernetes' rejectPod */
        st->reason = ar_str(a, p->reject_reason);
        char *m = xasprintf("Pod was rejected: %s", p->reject_msg);
        st->message = ar_str(a, m);
        free(m);
    }
    st->qosclass = ar_str(a, qos_class(p->pod->spec));

    char *init_msg = names_msg("containers with incomplete status", p->inits, p->ninit, not_inited);
    char *ready_msg = names_msg("containers with unready status", p->ctrs, p->nctr, not_ready);
    bool terminal = !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed");
    bool inited = !init_msg;
    st->n_conditions = 4;
    st->conditions = ar_alloc(a, 4 * sizeof *st->conditions);
    st->conditions[0] = mk_cond(a, old, "Initialized", inited || (terminal && !init_msg),
                                inited ? NULL : "ContainersNotInitialized", init_msg, now);
    const char *nr_reason = terminal ? "PodCompleted" : "ContainersNotReady";
    bool ready = !ready_msg && !terminal;
    st->conditions[1] =
        mk_cond(a, old, "Ready", ready, ready ? NULL : nr_reason, ready ? NULL : ready_msg, now);
    st->conditions[2] = mk_cond(a, old, "ContainersReady", ready, ready ? NULL : nr_reason,
                                ready ? NULL : ready_msg, now);
    st->conditions[3] = mk_cond(a, old, "PodScheduled", true, NULL, NULL, now);
    if (terminal) {
        /* Kubernetes: a finished pod's Ready reason is PodCompleted, no message. */
        st->conditions[1]->message = NULL;
        st->conditions[2]->message = NULL;
    }
    free(init_msg);
    free(ready_msg);

    if (p->ninit) {
        st->n_initcontainerstatuses = p->ninit;
        st->initcontainerstatuses = ar_alloc(a, p->ninit * sizeof *st->initcontainerstatuses);
        for (size_t i = 0; i < p->ninit; i++) {
            st->initcontainerstatuses[i] = mk_cstatus(a, &p->inits[i]);
            /* A finished init container counts as ready. */
            if (p->inits[i].state == KC_EXITED && p->inits[i].term.exit_code == 0)
                st->initcontainerstatuses[i]->ready = 1;
        }
    }
    st->n_containerstatuses = p->nctr;
    st->containerstatuses = ar_alloc(a, (p->nctr ? p->nctr : 1) * sizeof *st->containerstatuses);
    for (size_t i = 0; i < p->nctr; i++) {
        const struct klet_ctr *c = &p->ctrs[i];
        st->containerstatuses[i] = mk_cstatus(a, c);
        /* Blocked behind init containers: Kubernetes says PodInitializing. */
        if (!inited && c->state == KC_WAITING && !c->wait_reason)
            st->containerstatuses[i]->state->waiting->reason = ar_str(a, "PodInitializing");
    }
    return st;
}
