/* Unit tests for the kubelet's PodStatus computation (src/kubelet/status.c):
 * phase under each restartPolicy, conditions, container states with
 * lastState/restartCount, CrashLoopBackOff, OOMKilled, init containers. */
#include "config.h"
#include "tap.h"

#include "klet.h"
#include "util.h"

#define NS 1000000000LL

static Coracle__V1__Container specs[2], ispecs[1];
static Coracle__V1__Container *specp[2] = {&specs[0], &specs[1]};
static Coracle__V1__Container *ispecp[1] = {&ispecs[0]};
static Coracle__V1__PodSpec spec;
static Coracle__V1__Pod pod;
static struct klet_ctr ctrs[2], inits[1];
static struct klet_pod p;

static void setup(const char *policy, size_t nctr, size_t ninit)
{
    coracle__v1__pod_spec__init(&spec);
    coracle__v1__pod__init(&pod);
    for (int i = 0; i < 2; i++) {
        coracle__v1__container__init(&specs[i]);
        specs[i].name = i ? "sidecar" : "web";
        specs[i].image = "busybox";
    }
    coracle__v1__container__init(&ispecs[0]);
    ispecs[0].name = "setup";
    ispecs[0].image = "busybox";
    spec.containers = specp;
    spec.n_containers = nctr;
    spec.initcontainers = ispecp;
    spec.n_initcontainers = ninit;
    spec.restartpolicy = (char *)policy;
    pod.spec = &spec;
    memset(&p, 0, sizeof p);
    memset(ctrs, 0, sizeof ctrs);
    memset(inits, 0, sizeof inits);
    p.pod = &pod;
    p.uid = "u1";
    p.ns = "default";
    p.name = "pod1";
    p.ctrs = ctrs;
    p.nctr = nctr;
    p.inits = inits;
    p.ninit = ninit;
    p.start_ns = 1000 * NS;
    for (size_t i = 0; i < 2; i++) {
        ctrs[i] = (struct klet_ctr){.pod = &p, .idx = i, .name = specs[i].name, .image = "busybox"};
    }
    inits[0] = (struct klet_ctr){.pod = &p, .init = true, .name = "setup", .image = "busybox"};
}

static void run(struct klet_ctr *c, const char *id)
{
    c->state = KC_RUNNING;
    snprintf(c->id, sizeof c->id, "%s", id);
    c->started_ns = 1001 * NS;
    c->ready = true;
}

static void exited(struct klet_ctr *c, int code, bool oom)
{
    c->state = KC_EXITED;
    c->ready = false;
    c->term = (struct klet_term){.valid = true,
                                 .exit_code = code,
                                 .oom = oom,
                                 .started_ns = 1001 * NS,
                                 .finished_ns = 1002 * NS};
    snprintf(c->term.id, sizeof c->term.id, "%s", c->id);
}

static const Coracle__V1__PodCondition *cond(const Coracle__V1__PodStatus *s, const char *t)
{
    for (size_t i = 0; i < s->n_conditions; i++)
        if (!strcmp(s->conditions[i]->type, t))
            return s->conditions[i];
    return NULL;
}

static void test_creating(void)
{
    setup("Always", 1, 0);
    ctrs[0].state = KC_CREATING;
    ctrs[0].wait_reason = "ContainerCreating";
    Coracle__V1__PodStatus *s = klet_status_compute(&p, NULL, "10.0.0.5", 2000 * NS);
    is_str(s->phase, "Pending", "creating: Pending");
    is_str(s->containerstatuses[0]->state->waiting->reason, "ContainerCreating",
           "waiting ContainerCreating");
    ok(!s->containerstatuses[0]->ready, "not ready");
    is_str(s->hostip, "10.0.0.5", "hostIP");
    ok(s->starttime && s->starttime->seconds == 1000, "startTime");
    is_str(cond(s, "Ready")->status, "False", "Ready False");
    is_str(cond(s, "Ready")->reason, "ContainersNotReady", "reason ContainersNotReady");
    is_str(cond(s, "Ready")->message, "containers with unready status: [web]", "message");
    is_str(cond(s, "PodScheduled")->status, "True", "PodScheduled True");
    is_str(s->qosclass, "BestEffort", "qosClass BestEffort");
    klet_status_free(s);
}

static void test_running_two(void)
{
    setup("Always", 2, 0);
    run(&ctrs[0], "aaa");
    run(&ctrs[1], "bbb");
    Coracle__V1__PodStatus *s = klet_status_compute(&p, NULL, "10.0.0.5", 2000 * NS);
    is_str(s->phase, "Running", "two running: Running");
    is_str(cond(s, "Ready")->status, "True", "Ready True");
    is_str(cond(s, "ContainersReady")->status, "True", "ContainersReady True");
    is_str(cond(s, "Initialized")->status, "True", "Initialized True");
    is_str(s->containerstatuses[1]->containerid, "runc://bbb", "containerID runc://");
    ok(s->containerstatuses[0]->state->running->startedat->seconds == 1001, "startedAt");
    ok(s->containerstatuses[0]->ready && s->containerstatuses[0]->started, "ready, started");
    ctrs[0].startup_pending = true;
    Coracle__V1__PodStatus *sp = klet_status_compute(&p, NULL, NULL, 2000 * NS);
    ok(!sp->containerstatuses[0]->started && !sp->containerstatuses[0]->ready,
       "startup probe pending: started=false, ready=false");
    is_str(cond(sp, "Ready")->status, "False", "pod not Ready while a startup probe is pending");
    klet_status_free(sp);
    ctrs[0].startup_pending = false;
    /* transition time kept while the condition does not change */
    Coracle__V1__PodStatus *s2 = klet_status_compute(&p, s, "10.0.0.5", 3000 * NS);
    ok(cond(s2, "Ready")->lasttransitiontime->seconds == 2000, "lastTransitionTime kept");
    ctrs[1].ready = false;
    Coracle__V1__PodStatus *s3 = klet_status_compute(&p, s2, "10.0.0.5", 4000 * NS);
    ok(cond(s3, "Ready")->lasttransitiontime->seconds == 4000, "lastTransitionTime on change");
    is_str(cond(s3, "Ready")->message, "containers with unready status: [sidecar]",
           "unready sidecar named");
    klet_status_free(s);
    klet_status_free(s2);
    klet_status_free(s3);
}

static void test_policies(void)
{
    setup("Never", 1, 0);
    run(&ctrs[0], "a");
    exited(&ctrs[0], 0, false);
    Coracle__V1__PodStatus *s = klet_status_compute(&p, NULL, NULL, 2000 * NS);
    is_str(s->phase, "Succeeded", "Never + exit 0: Succeeded");
    is_str(s->containerstatuses[0]->state->terminated->reason, "Completed", "Completed");
    is_str(cond(s, "Ready")->reason, "PodCompleted", "Ready reason PodCompleted");
    ok(!klet_should_restart(&p, &ctrs[0]), "Never: no restart");
    klet_status_free(s);

    setup("Never", 1, 0);
    run(&ctrs[0], "a");
    exited(&ctrs[0], 3, false);
    s = klet_status_compute(&p, NULL, NULL, 2000 * NS);
    is_str(s->phase, "Failed", "Never + exit 3: Failed");
    ok(s->containerstatuses[0]->state->terminated->exitcode == 3, "exitCode 3");
    is_str(s->containerstatuses[0]->state->terminated->reason, "Error", "reason Error");
    klet_status_free(s);

    setup("OnFailure", 1, 0);
    run(&ctrs[0], "a");
    exited(&ctrs[0], 1, false);
    ok(klet_should_restart(&p, &ctrs[0]), "OnFailure + exit 1: restart");
    is_str(klet_status_phase(&p), "Running", "OnFailure, failed, restarting: Running");
    exited(&ctrs[0], 0, false);
    ok(!klet_should_restart(&p, &ctrs[0]), "OnFailure + exit 0: no restart");
    is_str(klet_status_phase(&p), "Succeeded", "OnFailure + 0: Succeeded");

    setup("Always", 1, 0);
    run(&ctrs[0], "a");
    exited(&ctrs[0], 0, false);
    ok(klet_should_restart(&p, &ctrs[0]), "Always: restart even after 0");
    is_str(klet_status_phase(&p), "Running", "Always, exited: Running");
}

static void test_crashloop(void)
{
    setup("Always", 1, 0);
    run(&ctrs[0], "second");
    ctrs[0].restarts = 2;
    ctrs[0].last = (struct klet_term){.valid = true,
                                      .exit_code = 1,
                                      .started_ns = 900 * NS,
                                      .finished_ns = 950 * NS,
                                      .id = "first"};
    exited(&ctrs[0], 1, false);
    ctrs[0].wait_reason = "CrashLoopBackOff";
    ctrs[0].wait_msg = "back-off 20s restarting failed container=web pod=pod1_default(u1)";
    Coracle__V1__PodStatus *s = klet_status_compute(&p, NULL, NULL, 2000 * NS);
    const Coracle__V1__ContainerStatus *cs = s->containerstatuses[0];
    is_str(cs->state->waiting->reason, "CrashLoopBackOff", "waiting CrashLoopBackOff");
    ok(cs->laststate && cs->laststate->terminated && cs->laststate->terminated->exitcode == 1 &&
           cs->laststate->terminated->finishedat->seconds == 1002,
       "lastState = the latest crash");
    ok(cs->restartcount == 2, "restartCount 2");
    is_str(s->phase, "Running", "crash-looping under Always: Running");
    klet_status_free(s);

    setup("Always", 1, 0);
    run(&ctrs[0], "x");
    exited(&ctrs[0], 137, true);
    s = klet_status_compute(&p, NULL, NULL, 2000 * NS);
    is_str(s->containerstatuses[0]->state->terminated->reason, "OOMKilled", "OOMKilled");
    ok(s->containerstatuses[0]->state->terminated->exitcode == 137, "exit 137");
    klet_status_free(s);
}

static void test_init(void)
{
    setup("Always", 1, 1);
    run(&inits[0], "i1");
    Coracle__V1__PodStatus *s = klet_status_compute(&p, NULL, NULL, 2000 * NS);
    is_str(s->phase, "Pending", "init running: Pending");
    is_str(cond(s, "Initialized")->status, "False", "Initialized False");
    is_str(cond(s, "Initialized")->message, "containers with incomplete status: [setup]",
           "Initialized message");
    is_str(s->containerstatuses[0]->state->waiting->reason, "PodInitializing", "PodInitializing");
    ok(s->n_initcontainerstatuses == 1 && s->initcontainerstatuses[0]->state->running,
       "init container status running");
    klet_status_free(s);

    exited(&inits[0], 0, false);
    run(&ctrs[0], "c1");
    s = klet_status_compute(&p, NULL, NULL, 2000 * NS);
    is_str(s->phase, "Running", "init done, main running: Running");
    is_str(cond(s, "Initialized")->status, "True", "Initialized True");
    is_str(s->initcontainerstatuses[0]->state->terminated->reason, "Completed", "init Completed");
    klet_status_free(s);

    setup("Never", 1, 1);
    run(&inits[0], "i1");
    exited(&inits[0], 2, false);
    is_str(klet_status_phase(&p), "Failed", "init failed under Never: Failed");
    setup("Always", 1, 1);
    run(&inits[0], "i1");
    exited(&inits[0], 2, false);
    is_str(klet_status_phase(&p), "Pending", "init failed under Always: Pending (retries)");
}

int main(void)
{
    test_creating();
    test_running_two();
    test_policies();
    test_crashloop();
    test_init();
    done_testing();
}
