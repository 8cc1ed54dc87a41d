#!/usr/bin/python3
# Jobs end to end: apiserver, scheduler, controller manager and a kubelet
# running busybox with runc. A Job whose command fails twice then succeeds
# (it counts its attempts in a hostPath file) ends as Kubernetes reports
# it: failed 2, succeeded 1, Complete, its three pods kept, the pod back-off
# between the attempts; a Job failing more than backoffLimit ends Failed
# with BackoffLimitExceeded; stock kubectl reads them (get job, wait
# --for=condition=complete); ttlSecondsAfterFinished deletes a finished Job.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet
import kubectls

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "47-ctrl-job")
pb = c.pb
api = c.start_apiserver()
c.start_scheduler()
c.start_kubelet("node1", "--healthz-listen", "", root_dir=root)
c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE)
c.start_controller_manager("--leader-elect=false")
data = os.path.join(c.dir, "jobdata")
os.makedirs(data)


def job_obj(name, cmd, **spec):
    ctr = pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                       command=["sh", "-c", cmd], volumeMounts=[pb.VolumeMount(name="d", mountPath="/data")])
    vol = pb.Volume(name="d", volumeSource=pb.VolumeSource(hostPath=pb.HostPathVolumeSource(path=data)))
    tmpl = pb.PodTemplateSpec(spec=pb.PodSpec(restartPolicy="Never", terminationGracePeriodSeconds=1,
                                              containers=[ctr], volumes=[vol]))
    return pb.Job(metadata=ctest.meta(name, "default"), spec=pb.JobSpec(template=tmpl, **spec))


def get_job(name):
    return api.try_call("Jobs", "Get", pb.GetRequest(namespace="default", name=name))[0]


def cond(job, typ):
    return next((x for x in job.status.conditions if x.type == typ and x.status == "True"), None) if job else None


def pods_of(name):
    return [p for p in api.call("Pods", "List", pb.ListRequest(namespace="default")).items
            if p.metadata.labels.get("job-name") == name]


def reasons(name):
    return [e.reason for e in api.call("Events", "List", pb.ListRequest(namespace="default")).items
            if e.involvedObject.kind == "Job" and e.involvedObject.name == name]


# the three Jobs run side by side: the back-offs overlap
flaky = ('n=$(cat /data/flaky 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/flaky; '
         'date +%s >> /data/flaky.times; [ $n -ge 3 ]')
api.call("Jobs", "Create", job_obj("flaky", flaky))
api.call("Jobs", "Create", job_obj("doomed", "exit 1", backoffLimit=1))
api.call("Jobs", "Create", job_obj("quick", "echo done", ttlSecondsAfterFinished=5))

t.ok(c.wait_for(lambda: cond(get_job("quick"), "Complete"), timeout=60), "quick: Complete")
j = get_job("quick")
t.is_((j.status.succeeded, j.status.failed, j.status.active), (1, 0, 0), "quick: succeeded 1")
kubectl = kubectls.kubectl_132() or kubectls.kubectl_120()
if kubectl:
    kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    kenv["HOME"] = c.dir
    argv = [kubectl, "--server", "http://" + c.api_addr, "--cache-dir", os.path.join(c.dir, "kcache")]
    r = subprocess.run(argv + ["wait", "--for=condition=complete", "job/quick", "--timeout=30s"],
                       env=kenv, capture_output=True, text=True, timeout=60)
    t.is_((r.returncode, r.stdout.strip()), (0, "job.batch/quick condition met"), "kubectl wait --for=condition=complete")
    r = subprocess.run(argv + ["get", "job", "quick"], env=kenv, capture_output=True, text=True, timeout=60)
    lines = r.stdout.splitlines()
    t.ok(r.returncode == 0 and len(lines) == 2 and lines[0].split()[:3] == ["NAME", "STATUS", "COMPLETIONS"]
         and lines[1].split()[:3] == ["quick", "Complete", "1/1"],
         "kubectl get job: %r" % (lines[1] if len(lines) > 1 else r.stderr.strip()))
else:
    t.skip("no stock kubectl on this machine", 2)
t.ok(c.wait_for(lambda: get_job("quick") is None, timeout=30), "quick: deleted ttlSecondsAfterFinished after it finished")

t.ok(c.wait_for(lambda: cond(get_job("doomed"), "Failed"), timeout=60), "doomed: Failed")
j = get_job("doomed")
t.is_((j.status.failed, j.status.succeeded, j.status.active), (2, 0, 0), "doomed: failed 2 with backoffLimit 1")
t.is_((cond(j, "Failed").reason, cond(j, "FailureTarget").reason), ("BackoffLimitExceeded",) * 2,
      "doomed: FailureTarget and Failed, reason BackoffLimitExceeded")
t.ok("BackoffLimitExceeded" in reasons("doomed"), "doomed: event BackoffLimitExceeded")
t.is_(len(pods_of("doomed")), 2, "doomed: its two failed pods stay")

t.ok(c.wait_for(lambda: cond(get_job("flaky"), "Complete"), timeout=90), "flaky: Complete on the third attempt")
j = get_job("flaky")
t.is_((j.status.failed, j.status.succeeded, j.status.active, j.status.ready), (2, 1, 0, 0),
      "flaky: failed 2, succeeded 1, as Kubernetes reports it")
t.ok(cond(j, "SuccessCriteriaMet") and j.status.HasField("completionTime"), "flaky: SuccessCriteriaMet, completionTime")
ps = pods_of("flaky")
t.is_(sorted(p.status.phase for p in ps), ["Failed", "Failed", "Succeeded"], "flaky: its three pods stay, two Failed")
with open(os.path.join(data, "flaky.times")) as f:
    times = [int(x) for x in f.read().split()]
t.ok(len(times) == 3 and times[1] - times[0] >= 9 and times[2] - times[1] >= 19,
     "flaky: the attempts 10 s then 20 s apart at least (pod back-off): %s" % times)
ev = reasons("flaky")
t.ok(ev.count("SuccessfulCreate") == 3 and "Completed" in ev, "flaky: 3 SuccessfulCreate, Completed")

c.teardown()
t.done()
