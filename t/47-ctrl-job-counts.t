#!/usr/bin/python3
# The Job controller's counting, without a kubelet: the test writes the
# pods' phases itself (UpdateStatus). completions and parallelism bound
# the active pods, which carry the Job's labels and owner reference;
# status counts active, ready, succeeded, failed; SuccessCriteriaMet then
# Complete with completionTime; backoffLimit 0 fails at the first failed
# pod (FailureTarget, Failed, BackoffLimitExceeded); activeDeadlineSeconds
# ends a Job with DeadlineExceeded; suspend deletes the active pods and
# resuming makes them again; lowering parallelism deletes the surplus;
# ttlSecondsAfterFinished deletes a finished Job.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb
cm = c.start_controller_manager("--leader-elect=false")


def job_obj(name, **spec):
    tmpl = pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels={"app": name}),
                              spec=pb.PodSpec(restartPolicy=spec.pop("restartPolicy", "Never"),
                                              containers=[pb.Container(name="c", image="busybox")]))
    return pb.Job(metadata=meta(name, "default"), spec=pb.JobSpec(template=tmpl, **spec))


def get_job(name):
    return api.try_call("Jobs", "Get", pb.GetRequest(namespace="default", name=name))[0]


def pods_of(job, active_only=True):
    out = []
    for p in api.call("Pods", "List", pb.ListRequest(namespace="default")).items:
        refs = [o for o in p.metadata.ownerReferences if o.controller]
        if not refs or refs[0].uid != job.metadata.uid:
            continue
        if active_only and p.status.phase in ("Succeeded", "Failed"):
            continue
        out.append(p)
    return sorted(out, key=lambda p: p.metadata.name)


def set_phase(pod, phase, ready=False):
    def mutate(p):
        p.status.phase = phase
        del p.status.conditions[:]
        if ready:
            p.status.conditions.add(type="Ready", status="True")
    api.update("Pods", "default", pod.metadata.name, mutate, method="UpdateStatus")


def cond(job, typ):
    for x in job.status.conditions:
        if x.type == typ:
            return x
    return None


def events(name):
    return [(e.type, e.reason, e.message, e.source.component)
            for e in api.call("Events", "List", pb.ListRequest(namespace="default")).items
            if e.involvedObject.kind == "Job" and e.involvedObject.name == name]


# completions 5, parallelism 2
job = api.call("Jobs", "Create", job_obj("par", completions=5, parallelism=2))
t.ok(c.wait_for(lambda: len(pods_of(job)) == 2), "parallelism 2: two pods")
ps = pods_of(job)
p0 = ps[0]
ref = p0.metadata.ownerReferences[0]
t.ok(ref.kind == "Job" and ref.apiVersion == "batch/v1" and ref.name == "par" and ref.controller
     and ref.blockOwnerDeletion, "owned by the Job as its controller")
lab = p0.metadata.labels
t.ok(lab["app"] == "par" and lab["job-name"] == "par" and lab["batch.kubernetes.io/job-name"] == "par"
     and lab["controller-uid"] == job.metadata.uid and lab["batch.kubernetes.io/controller-uid"] == job.metadata.uid,
     "pods carry the template's labels and the Job's generated ones")
t.ok(p0.metadata.name.startswith("par-") and p0.spec.restartPolicy == "Never", "named par-<random>, the template's spec")
t.ok(c.wait_for(lambda: get_job("par").status.active == 2 and get_job("par").status.HasField("startTime")),
     "status: active 2, startTime set")
set_phase(ps[1], "Running", ready=True)
t.ok(c.wait_for(lambda: get_job("par").status.ready == 1), "status: ready 1")
set_phase(ps[0], "Succeeded")
t.ok(c.wait_for(lambda: get_job("par").status.succeeded == 1 and len(pods_of(job)) == 2),
     "one succeeded: a new pod keeps two active")
for _ in range(4):
    for p in pods_of(job):
        if get_job("par").status.succeeded < 5:
            set_phase(p, "Succeeded")
    c.wait_for(lambda: get_job("par").status.active == len(pods_of(job)))
t.ok(c.wait_for(lambda: cond(get_job("par"), "Complete") is not None), "Complete after 5 successes")
j = get_job("par")
t.is_((j.status.succeeded, j.status.failed, j.status.active), (5, 0, 0), "succeeded 5, failed 0, active 0")
t.is_(len(pods_of(job, active_only=False)), 5, "five pods made in all, never more than parallelism at once")
sc, cp = cond(j, "SuccessCriteriaMet"), cond(j, "Complete")
t.ok(sc and sc.status == "True" and sc.reason == "CompletionsReached" and cp.status == "True"
     and cp.reason == "CompletionsReached" and cp.message == "Reached expected number of succeeded pods",
     "conditions SuccessCriteriaMet and Complete, reason CompletionsReached")
t.ok(j.status.HasField("completionTime") and j.status.completionTime.seconds >= j.status.startTime.seconds,
     "completionTime set")
ev = events("par")
t.ok(("Normal", "Completed", "Job completed", "job-controller") in ev, "event Completed from job-controller")
t.is_(len([e for e in ev if e[1] == "SuccessfulCreate"]), 5, "five SuccessfulCreate events")

# backoffLimit 0: the first failure fails the Job; ttlSecondsAfterFinished then deletes it
job = api.call("Jobs", "Create", job_obj("fail", backoffLimit=0, ttlSecondsAfterFinished=2))
t.ok(c.wait_for(lambda: len(pods_of(job)) == 1), "backoffLimit 0: one pod")
set_phase(pods_of(job)[0], "Failed")
t.ok(c.wait_for(lambda: cond(get_job("fail"), "Failed") is not None), "Failed after one failed pod")
j = get_job("fail")
ft, fl = cond(j, "FailureTarget"), cond(j, "Failed")
t.ok(ft and ft.reason == "BackoffLimitExceeded" and fl.reason == "BackoffLimitExceeded"
     and fl.message == "Job has reached the specified backoff limit", "FailureTarget and Failed: BackoffLimitExceeded")
t.is_((j.status.failed, j.status.active, len(pods_of(job))), (1, 0, 0), "failed 1, no pod made again")
t.ok(("Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit", "job-controller")
     in events("fail"), "event BackoffLimitExceeded")
t1 = time.time()
t.ok(c.wait_for(lambda: get_job("fail") is None, timeout=30), "ttlSecondsAfterFinished 2: the Job is deleted")
t.ok(time.time() - t1 >= 0.5, "not before its time (%.1f s after Failed was seen)" % (time.time() - t1))

# activeDeadlineSeconds
job = api.call("Jobs", "Create", job_obj("late", activeDeadlineSeconds=2, parallelism=2, completions=4))
t.ok(c.wait_for(lambda: len(pods_of(job)) == 2), "deadline Job: two pods")
t.ok(c.wait_for(lambda: cond(get_job("late"), "Failed") is not None, timeout=30), "Failed after its deadline")
j = get_job("late")
t.ok(cond(j, "Failed").reason == "DeadlineExceeded" and cond(j, "FailureTarget").reason == "DeadlineExceeded"
     and cond(j, "Failed").message == "Job was active longer than specified deadline", "reason DeadlineExceeded")
t.is_((len(pods_of(job)), j.status.active), (0, 0), "its active pods deleted")
t.ok(("Warning", "DeadlineExceeded", "Job was active longer than specified deadline", "job-controller")
     in events("late"), "event DeadlineExceeded")

# suspend, resume, parallelism lowered
job = api.call("Jobs", "Create", job_obj("sus", suspend=True, parallelism=3, completions=10))
t.ok(c.wait_for(lambda: cond(get_job("sus"), "Suspended") is not None), "created suspended: condition Suspended")
j = get_job("sus")
t.ok(cond(j, "Suspended").status == "True" and cond(j, "Suspended").reason == "JobSuspended"
     and not j.status.HasField("startTime") and len(pods_of(job)) == 0, "no pod, no startTime")
api.update("Jobs", "default", "sus", lambda j: setattr(j.spec, "suspend", False))
t.ok(c.wait_for(lambda: len(pods_of(job)) == 3), "resumed: three pods")
t.ok(c.wait_for(lambda: cond(get_job("sus"), "Suspended").status == "False"), "Suspended False")
j = get_job("sus")
t.ok(cond(j, "Suspended").reason == "JobResumed" and j.status.HasField("startTime"), "JobResumed, startTime set")
api.update("Jobs", "default", "sus", lambda j: setattr(j.spec, "parallelism", 1))
t.ok(c.wait_for(lambda: len(pods_of(job)) == 1 and get_job("sus").status.active == 1), "parallelism 1: two deleted")
api.update("Jobs", "default", "sus", lambda j: setattr(j.spec, "suspend", True))
t.ok(c.wait_for(lambda: len(pods_of(job)) == 0 and get_job("sus").status.active == 0), "suspended again: no pod")
ev = events("sus")
t.ok([e for e in ev if e[1] == "Suspended"] and [e for e in ev if e[1] == "Resumed"]
     and [e for e in ev if e[1] == "SuccessfulDelete"], "events Suspended, Resumed, SuccessfulDelete")
t.is_(cond(get_job("sus"), "Complete"), None, "a suspended Job is not complete")

c.teardown()
t.done()
