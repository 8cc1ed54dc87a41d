#!/usr/bin/python3
# coraclectl scale and rollout status|history|undo|restart|pause|resume, as
# kubectl's: their messages read from the status fields a controller writes
# (written here by the test through UpdateStatus, so each step is exact) and
# the ReplicaSets' revision annotations, their updates checked in the store.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb


def template(image, labels):
    return pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels=labels),
                              spec=pb.PodSpec(containers=[pb.Container(name="c", image=image)]))


def get(svc, name):
    return api.call(svc, "Get", pb.GetRequest(namespace="default", name=name))


labels = {"app": "web"}
d = api.call("Deployments", "Create", pb.Deployment(
    metadata=meta("web", "default", annotations={"deployment.kubernetes.io/revision": "2"}),
    spec=pb.DeploymentSpec(replicas=3, selector=pb.LabelSelector(matchLabels=labels),
                           template=template("nginx:2", labels))))


def rs(name, image, rev, cause=None):
    ann = {"deployment.kubernetes.io/revision": str(rev)}
    if cause:
        ann["kubernetes.io/change-cause"] = cause
    lab = dict(labels, **{"pod-template-hash": name.split("-")[1]})
    owner = pb.OwnerReference(apiVersion="apps/v1", kind="Deployment", name="web", uid=d.metadata.uid,
                              controller=True, blockOwnerDeletion=True)
    return api.call("ReplicaSets", "Create", pb.ReplicaSet(
        metadata=meta(name, "default", annotations=ann, labels=lab, ownerReferences=[owner]),
        spec=pb.ReplicaSetSpec(replicas=0, selector=pb.LabelSelector(matchLabels=lab), template=template(image, lab))))


rs("web-aaa", "nginx:1", 1, "first")
rs("web-bbb", "nginx:2", 2)
rs("other-ccc", "nginx:9", 7)  # not the Deployment's: no owner reference to it
api.call("ReplicaSets", "Update", (lambda r: (r.metadata.ClearField("ownerReferences"), r)[1])(get("ReplicaSets", "other-ccc")))

# ---- scale ----
rc, out, err = c.ctl("scale", "deploy/web", "--replicas=5")
t.is_((rc, out), (0, "deployment.apps/web scaled\n"), "scale deploy/web --replicas=5")
t.is_(get("Deployments", "web").spec.replicas, 5, "spec.replicas is 5")
rc, out, err = c.ctl("scale", "deployment", "web", "--current-replicas=2", "--replicas=1")
t.is_((rc, err), (1, "error: Expected replicas to be 2, was 5\n"), "--current-replicas is a precondition")
rc, out, err = c.ctl("scale", "rs", "web-aaa", "--replicas=2")
t.is_((rc, out), (0, "replicaset.apps/web-aaa scaled\n"), "scale rs NAME")
rc, out, err = c.ctl("scale", "pod/x", "--replicas=2")
t.ok(rc == 1 and "no scale has been implemented" in err, "a pod cannot be scaled (%s)" % err.strip())
rc, out, err = c.ctl("scale", "deploy/web")
t.ok(rc == 1 and "--replicas=COUNT flag is required" in err, "--replicas is required")
rc, out, err = c.ctl("scale", "deploy/nope", "--replicas=1")
t.is_((rc, err.strip()), (1, 'Error from server (NotFound): deployments.apps "nope" not found'),
      "a missing deployment: NotFound")

# ---- status, step by step ----


def set_status(gen, **st):
    o = get("Deployments", "web")
    o.status.CopyFrom(pb.DeploymentStatus(observedGeneration=gen, **st))
    api.call("Deployments", "UpdateStatus", o)


gen = get("Deployments", "web").metadata.generation
rc, out, err = c.ctl("rollout", "status", "deploy/web", "--watch=false")
t.is_((rc, out), (0, "Waiting for deployment spec update to be observed...\n"), "status: generation not observed")
set_status(gen, replicas=5, updatedReplicas=2)
rc, out, err = c.ctl("rollout", "status", "deploy/web", "--watch=false")
t.is_(out, 'Waiting for deployment "web" rollout to finish: 2 out of 5 new replicas have been updated...\n',
      "status: new replicas being updated")
w = subprocess.Popen([c.bin("coraclectl"), "--server", c.api_addr, "rollout", "status", "deployment/web"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
time.sleep(0.5)
set_status(gen, replicas=6, updatedReplicas=5)
set_status(gen, replicas=5, updatedReplicas=5, availableReplicas=4)
set_status(gen, replicas=5, updatedReplicas=5, availableReplicas=5)
try:
    out, err = w.communicate(timeout=ctest.DEADLINE)
except subprocess.TimeoutExpired:
    w.kill()
    out, err = w.communicate()
t.is_(out.splitlines(), [
    'Waiting for deployment "web" rollout to finish: 2 out of 5 new replicas have been updated...',
    'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
    'Waiting for deployment "web" rollout to finish: 4 of 5 updated replicas are available...',
    'deployment "web" successfully rolled out'], "status -w follows the watch to the end")
t.is_(w.returncode, 0, "and exits 0")
o = get("Deployments", "web")
o.status.conditions.append(pb.DeploymentCondition(type="Progressing", status="False",
                                                  reason="ProgressDeadlineExceeded"))
api.call("Deployments", "UpdateStatus", o)
rc, out, err = c.ctl("rollout", "status", "deploy/web")
t.is_((rc, err), (1, 'error: deployment "web" exceeded its progress deadline\n'), "a deadline exceeded fails")
set_status(gen + 5)
rc, out, err = c.ctl("rollout", "status", "deploy/web", "--timeout=1s")
t.is_((rc, err), (1, "error: timed out waiting for the condition\n"), "--timeout")

# ---- history, undo ----
rc, out, err = c.ctl("rollout", "history", "deploy/web")
t.is_(out, "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         first\n2         <none>\n\n",
      "history: the Deployment's ReplicaSets by revision, with their change-cause")
rc, out, err = c.ctl("rollout", "undo", "deploy/web")
t.is_((rc, out), (0, "deployment.apps/web rolled back\n"), "undo")
tm = get("Deployments", "web").spec.template
t.ok(tm.spec.containers[0].image == "nginx:1" and "pod-template-hash" not in tm.metadata.labels,
     "the template is revision 1's, without pod-template-hash")
rc, out, err = c.ctl("rollout", "undo", "deploy/web", "--to-revision=1")
t.is_(out, "deployment.apps/web skipped rollback (current template already matches revision 1)\n",
      "undo to the template it has: skipped")
rc, out, err = c.ctl("rollout", "undo", "deploy/web", "--to-revision=9")
t.is_((rc, err), (1, "error: unable to find specified revision 9 in history\n"), "an unknown revision")

# ---- pause, resume, restart ----
rc, out, err = c.ctl("rollout", "pause", "deploy/web")
t.ok(out == "deployment.apps/web paused\n" and get("Deployments", "web").spec.paused, "pause")
rc, out, err = c.ctl("rollout", "pause", "deploy/web")
t.is_((rc, err), (1, 'error: deployments.apps "web" is already paused\n'), "pause twice")
rc, out, err = c.ctl("rollout", "undo", "deploy/web")
t.ok(rc == 1 and "cannot rollback a paused deployment" in err, "no undo while paused")
rc, out, err = c.ctl("rollout", "resume", "deploy/web")
t.ok(out == "deployment.apps/web resumed\n" and not get("Deployments", "web").spec.paused, "resume")
rc, out, err = c.ctl("rollout", "restart", "deploy/web")
ann = get("Deployments", "web").spec.template.metadata.annotations
t.ok(out == "deployment.apps/web restarted\n" and ann.get("kubectl.kubernetes.io/restartedAt", "").endswith("Z"),
     "restart stamps kubectl.kubernetes.io/restartedAt on the template")
rc, out, err = c.ctl("rollout", "frobnicate", "deploy/web")
t.ok(rc == 1 and 'unknown command "frobnicate"' in err, "an unknown subcommand")

# ---- daemon sets: status ----
api.call("DaemonSets", "Create", pb.DaemonSet(
    metadata=meta("agent", "default"),
    spec=pb.DaemonSetSpec(selector=pb.LabelSelector(matchLabels={"app": "agent"}),
                          template=template("busybox", {"app": "agent"}))))
o = get("DaemonSets", "agent")
o.status.CopyFrom(pb.DaemonSetStatus(observedGeneration=o.metadata.generation, desiredNumberScheduled=3,
                                     updatedNumberScheduled=3, numberAvailable=2))
api.call("DaemonSets", "UpdateStatus", o)
rc, out, err = c.ctl("rollout", "status", "ds/agent", "--watch=false")
t.is_(out, 'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...\n',
      "daemon set status")
c.teardown()
t.done()
