#!/usr/bin/python3
# A CronJob on a real one-minute schedule ("*/1 * * * *"), without a
# kubelet: at the next minute the controller manager makes the Job
# "<cronjob>-<minutes since the epoch>", owned by the CronJob, with the
# template's labels and the scheduled-timestamp annotation, and lists it in
# status.active with lastScheduleTime; the Job controller gives it its pod;
# the test marks the pod Succeeded, and the CronJob sees the Job complete
# (out of active, lastSuccessfulTime). At most one minute of waiting; the
# rest of the schedule logic is t/unit/test_cronjob's, on a fake clock.
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
c.start_controller_manager("--leader-elect=false")

tmpl = pb.JobTemplateSpec(
    metadata=pb.ObjectMeta(labels={"team": "night"}),
    spec=pb.JobSpec(template=pb.PodTemplateSpec(spec=pb.PodSpec(
        restartPolicy="OnFailure", containers=[pb.Container(name="c", image="busybox")]))))
cj = api.call("CronJobs", "Create", pb.CronJob(metadata=meta("tick", "default"),
                                               spec=pb.CronJobSpec(schedule="*/1 * * * *", jobTemplate=tmpl)))


def get_cj():
    return api.call("CronJobs", "Get", pb.GetRequest(namespace="default", name="tick"))


def jobs():
    return api.call("Jobs", "List", pb.ListRequest(namespace="default")).items


def reasons():
    return [(e.reason, e.message, e.source.component) for e in api.call("Events", "List", pb.ListRequest(namespace="default")).items
            if e.involvedObject.kind == "CronJob" and e.involvedObject.name == "tick"]


created = time.time()
t.ok(c.wait_for(lambda: jobs(), timeout=75), "a Job is made at the next minute")
waited = time.time() - created
js = jobs()
t.is_(len(js), 1, "one Job")
j = js[0]
minute = int(j.metadata.name.rsplit("-", 1)[1])
t.ok(j.metadata.name == "tick-%d" % minute and abs(minute * 60 - created) <= 61,
     "named tick-<scheduled minute since the epoch>: %s (%.0f s after the CronJob)" % (j.metadata.name, waited))
stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minute * 60))
t.is_(j.metadata.annotations.get("batch.kubernetes.io/cronjob-scheduled-timestamp"), stamp,
      "annotation batch.kubernetes.io/cronjob-scheduled-timestamp in RFC 3339")
ref = j.metadata.ownerReferences[0] if j.metadata.ownerReferences else None
t.ok(ref and ref.kind == "CronJob" and ref.apiVersion == "batch/v1" and ref.name == "tick" and ref.uid == cj.metadata.uid
     and ref.controller, "owned by the CronJob as its controller")
t.is_(j.metadata.labels.get("team"), "night", "the template's labels")
t.ok(c.wait_for(lambda: [a.name for a in get_cj().status.active] == [j.metadata.name]),
     "status.active lists it")
s = get_cj().status
t.is_(s.lastScheduleTime.seconds, minute * 60, "lastScheduleTime: the scheduled minute")
t.ok(("SuccessfulCreate", "Created job " + j.metadata.name, "cronjob-controller") in reasons(),
     "event SuccessfulCreate from cronjob-controller")

# the Job's pod, made by the Job controller, succeeds
pods = c.wait_for(lambda: [p for p in api.call("Pods", "List", pb.ListRequest(namespace="default")).items
                           if p.metadata.labels.get("job-name") == j.metadata.name])
t.ok(pods, "the Job controller made its pod")
p = pods[0]
p.status.phase = "Succeeded"
api.call("Pods", "UpdateStatus", p)
t.ok(c.wait_for(lambda: not get_cj().status.active and get_cj().status.HasField("lastSuccessfulTime")),
     "the Job completes: out of active, lastSuccessfulTime set")
job = api.call("Jobs", "Get", pb.GetRequest(namespace="default", name=j.metadata.name))
t.is_(get_cj().status.lastSuccessfulTime.seconds, job.status.completionTime.seconds,
      "lastSuccessfulTime is the Job's completionTime")
t.ok([r for r in reasons() if r[0] == "SawCompletedJob"], "event SawCompletedJob")

t.ok(not [r for r in reasons() if r[0] in ("UnexpectedJob", "MissingJob", "FailedCreate")],
     "no UnexpectedJob, MissingJob or FailedCreate: each sync saw the controller's own writes")

c.teardown()
t.done()
