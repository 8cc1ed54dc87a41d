#!/usr/bin/python3
# The Deployment controller without a kubelet: the test plays the node
# (binds the pods to a Node object and writes their Ready status through
# UpdateStatus, when and for which pods it chooses). A rolling update
# within maxSurge 1 / maxUnavailable 0 watched step by step; the
# ReplicaSets' names, labels and annotations; scaling mid-rollout spread
# in proportion; paused (scaling works, no rollout) and resumed;
# Recreate (the new ReplicaSet only once the old pods are gone);
# revisionHistoryLimit; ProgressDeadlineExceeded; an empty selector
# refused; stock kubectl's rollout status, history and undo.
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import kubectls
from ctest import meta

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb
cm = c.start_controller_manager("--leader-elect=false")
api.call("Nodes", "Create", pb.Node(metadata=meta("n1")))


class FakeNode:
    """Binds every pod to n1 and marks the ones ready() accepts Running and Ready;
    pods being deleted go at once unless hold_deletes."""

    def __init__(self):
        self.cl = ctest.Client(c.api_addr)
        self.ready = lambda p: True
        self.hold_deletes = False
        self.stop = False
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def step(self):
        for p in self.cl.call("Pods", "List", pb.ListRequest(namespace="default")).items:
            md = p.metadata
            if md.HasField("deletionTimestamp"):
                if not self.hold_deletes:
                    self.cl.try_call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=md.name,
                                                                         gracePeriodSeconds=0))
                continue
            if not p.spec.nodeName:
                self.cl.try_call("Pods", "Bind", pb.Binding(metadata=meta(md.name, "default"),
                                                             target=pb.ObjectReference(kind="Node", name="n1")))
                continue
            if p.status.phase != "Running" and self.ready(p):
                p.status.phase = "Running"
                del p.status.conditions[:]
                p.status.conditions.add(type="Ready", status="True",
                                        lastTransitionTime=pb.Time(seconds=int(time.time())))
                self.cl.try_call("Pods", "UpdateStatus", p)

    def run(self):
        while not self.stop:
            try:
                self.step()
            except Exception:
                pass
            time.sleep(0.05)


node = FakeNode()
c.on_teardown(lambda: setattr(node, "stop", True))


def tmpl(app, image):
    return pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels={"app": app}),
                              spec=pb.PodSpec(containers=[pb.Container(name="c", image=image)]))


def deployment(name, replicas, image="nginx:1", **spec):
    return pb.Deployment(metadata=meta(name, "default"),
                         spec=pb.DeploymentSpec(replicas=replicas, selector=pb.LabelSelector(matchLabels={"app": name}),
                                                template=tmpl(name, image), **spec))


def get(name):
    return api.call("Deployments", "Get", pb.GetRequest(namespace="default", name=name))


def update(name, fn):
    for _ in range(20):
        d = get(name)
        fn(d)
        _, e = api.try_call("Deployments", "Update", d)
        if e is None:
            return
    raise RuntimeError("update %s kept conflicting" % name)


def rss(d):
    uid = get(d).metadata.uid
    return sorted([r for r in api.call("ReplicaSets", "List", pb.ListRequest(namespace="default")).items
                   if any(o.controller and o.uid == uid for o in r.metadata.ownerReferences)],
                  key=lambda r: int(r.metadata.annotations.get("deployment.kubernetes.io/revision", "0")))


def pods(app):
    return [p for p in api.call("Pods", "List", pb.ListRequest(namespace="default")).items
            if p.metadata.labels.get("app") == app and not p.metadata.HasField("deletionTimestamp")]


def cond(d, type_):
    for x in d.status.conditions:
        if x.type == type_:
            return x
    return None


def complete(name, replicas):
    d = get(name)
    p = cond(d, "Progressing")
    return (d.status.observedGeneration == d.metadata.generation and d.status.updatedReplicas == replicas
            and d.status.replicas == replicas and d.status.availableReplicas == replicas
            and p is not None and p.reason == "NewReplicaSetAvailable")


def events(reason):
    return [e.message for e in sorted(api.call("Events", "List", pb.ListRequest(namespace="default")).items,
                                      key=lambda e: int(e.metadata.resourceVersion)) if e.reason == reason]


# ---- a Deployment of 3 comes up
ru = pb.DeploymentStrategy(type="RollingUpdate", rollingUpdate=pb.RollingUpdateDeployment(
    maxSurge=pb.IntOrString(type=0, intVal=1), maxUnavailable=pb.IntOrString(type=0, intVal=0)))
api.call("Deployments", "Create", deployment("web", 3, strategy=ru))
t.ok(c.wait_for(lambda: complete("web", 3)), "web: 3 replicas updated and available, Progressing complete")
d = get("web")
r = rss("web")
t.is_(len(r), 1, "one ReplicaSet")
rs1 = r[0]
h = rs1.metadata.labels.get("pod-template-hash", "")
t.ok(len(h) >= 6 and all(ch in "bcdfghjklmnpqrstvwxz2456789" for ch in h) and rs1.metadata.name == "web-" + h,
     "named web-<pod-template-hash> (%s)" % rs1.metadata.name)
t.ok(rs1.spec.selector.matchLabels["pod-template-hash"] == h and
     rs1.spec.template.metadata.labels["pod-template-hash"] == h,
     "the hash in the ReplicaSet's selector and template")
t.ok(all(p.metadata.labels["pod-template-hash"] == h for p in pods("web")), "and on its pods")
a = rs1.metadata.annotations
t.is_((a["deployment.kubernetes.io/revision"], a["deployment.kubernetes.io/desired-replicas"],
       a["deployment.kubernetes.io/max-replicas"]), ("1", "3", "4"), "revision 1, desired-replicas 3, max-replicas 4")
ref = rs1.metadata.ownerReferences[0]
t.ok(ref.kind == "Deployment" and ref.apiVersion == "apps/v1" and ref.uid == d.metadata.uid and ref.controller,
     "owned by the Deployment")
t.is_(d.metadata.annotations.get("deployment.kubernetes.io/revision"), "1", "the Deployment's revision 1")
av = cond(d, "Available")
t.ok(av and (av.status, av.reason, av.message) == ("True", "MinimumReplicasAvailable",
                                                   "Deployment has minimum availability."), "Available True")
pr = cond(d, "Progressing")
t.is_(pr.message, 'ReplicaSet "%s" has successfully progressed.' % rs1.metadata.name, "Progressing's message")
t.ok(events("ScalingReplicaSet")[:1] == ["Scaled up replica set %s from 0 to 3" % rs1.metadata.name],
     "event: Scaled up replica set %s from 0 to 3" % rs1.metadata.name)

# ---- a new image rolls out within maxSurge 1 / maxUnavailable 0, one pod at a time
seen = {"max": 0, "min_ready": 99}
stop = False


def watch_counts():
    cl = ctest.Client(c.api_addr)
    while not stop:
        ps = [p for p in cl.call("Pods", "List", pb.ListRequest(namespace="default")).items
              if p.metadata.labels.get("app") == "web" and not p.metadata.HasField("deletionTimestamp")]
        seen["max"] = max(seen["max"], len(ps))
        seen["min_ready"] = min(seen["min_ready"], sum(1 for p in ps if p.status.phase == "Running"))
        time.sleep(0.02)


w = threading.Thread(target=watch_counts, daemon=True)
w.start()
update("web", lambda d: setattr(d.spec.template.spec.containers[0], "image", "nginx:2"))
t.ok(c.wait_for(lambda: complete("web", 3) and len(rss("web")) == 2), "nginx:2 rolled out")
stop = True
w.join()
t.ok(seen["max"] <= 4 and seen["min_ready"] >= 3, "never more than 4 pods, never fewer than 3 ready (%s)" % seen)
r = rss("web")
t.ok(r[0].spec.replicas == 0 and r[1].spec.replicas == 3 and r[1].metadata.annotations[
    "deployment.kubernetes.io/revision"] == "2", "old ReplicaSet at 0, the new one revision 2 at 3")
t.is_(get("web").metadata.annotations.get("deployment.kubernetes.io/revision"), "2", "the Deployment's revision 2")
rs2 = r[1]
t.ok(all(p.spec.containers[0].image == "nginx:2" for p in pods("web")), "every pod runs nginx:2")
ev = events("ScalingReplicaSet")
t.ok("Scaled down replica set %s from 3 to 2" % rs1.metadata.name in ev and
     "Scaled up replica set %s from 1 to 2" % rs2.metadata.name in ev, "events: scaled up and down one by one")

# ---- scaling mid-rollout is spread in proportion (new pods never ready meanwhile)
node.ready = lambda p: p.spec.containers[0].image != "nginx:3"
update("web", lambda d: (setattr(d.spec.template.spec.containers[0], "image", "nginx:3"),
                         setattr(d.spec, "replicas", 5)))
t.ok(c.wait_for(lambda: [x.spec.replicas for x in rss("web")] == [0, 5, 1]),
     "mid-rollout: new ReplicaSet at 1 (surge), the old one at 5")
update("web", lambda d: setattr(d.spec, "replicas", 10))
# allowed 10+1 = 11 over 6: old 5*11/6 = 9.17 -> 9, new 1*11/6 = 1.83 -> 2
t.ok(c.wait_for(lambda: [x.spec.replicas for x in rss("web")] == [0, 9, 2]),
     "scaled to 10 mid-rollout: 9 old, 2 new, in proportion (%s)" % [x.spec.replicas for x in rss("web")])
r = rss("web")
t.is_((r[1].metadata.annotations["deployment.kubernetes.io/desired-replicas"],
       r[2].metadata.annotations["deployment.kubernetes.io/max-replicas"]), ("10", "11"),
      "desired-replicas and max-replicas follow")
node.ready = lambda p: True
t.ok(c.wait_for(lambda: complete("web", 10), timeout=60), "then the rollout completes at 10")
update("web", lambda d: setattr(d.spec, "replicas", 3))
t.ok(c.wait_for(lambda: complete("web", 3) and len(pods("web")) == 3), "scaled back to 3")

# ---- kubectl: rollout status, history, undo
kubectl = kubectls.kubectl_132()
if not kubectl:
    t.skip("kubectl 1.32 not installed", 10)
else:
    home = os.path.join(c.dir, "khome")
    os.makedirs(home)
    kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    kenv["HOME"] = home

    def k(*args, timeout=60):
        p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache")]
                           + list(args), env=kenv, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    rc, out, e = k("rollout", "status", "deploy/web", "--timeout=60s")
    t.ok(rc == 0 and 'deployment "web" successfully rolled out' in out, "kubectl rollout status (%s%s)" % (out, e))
    rc, out, e = k("rollout", "history", "deploy/web")
    lines = [l.split()[0] for l in out.splitlines()[2:] if l.strip()]
    t.ok(rc == 0 and lines == ["1", "2", "3"], "kubectl rollout history: revisions 1 2 3 (%s%s)" % (out, e))
    rc, out, e = k("rollout", "undo", "deploy/web")
    t.ok(rc == 0 and "rolled back" in out, "kubectl rollout undo (%s%s)" % (out, e))
    t.ok(c.wait_for(lambda: complete("web", 3) and get("web").spec.template.spec.containers[0].image == "nginx:2"),
         "back to nginx:2")
    r = rss("web")
    back = [x for x in r if x.metadata.name == rs2.metadata.name]
    t.ok(back and back[0].spec.replicas == 3 and back[0].metadata.annotations["deployment.kubernetes.io/revision"]
         == "4" and back[0].metadata.annotations["deployment.kubernetes.io/revision-history"] == "2",
         "the revision-2 ReplicaSet is back at 3 as revision 4 (history 2), no new one (%s)"
         % [(x.metadata.name, x.spec.replicas, dict(x.metadata.annotations)) for x in r])
    rc, out, e = k("rollout", "status", "deploy/web", "--timeout=60s")
    t.ok(rc == 0 and 'successfully rolled out' in out, "kubectl rollout status after undo (%s%s)" % (out, e))

    # kubectl create sends protobuf (empty strings written, a field proto/ lacks);
    # undo sends the template back as JSON: still the same template
    rc, out, e = k("create", "deployment", "kc", "--image=nginx:1", "--replicas=1")
    t.ok(rc == 0 and c.wait_for(lambda: complete("kc", 1)), "kubectl create deployment (%s%s)" % (out, e))
    rc, out, e = k("rollout", "restart", "deploy/kc")
    t.ok(rc == 0 and c.wait_for(lambda: complete("kc", 1) and len(rss("kc")) == 2), "kubectl rollout restart (%s%s)" % (out, e))
    rc, out, e = k("rollout", "undo", "deploy/kc", "--to-revision=1")
    t.ok(rc == 0 and c.wait_for(lambda: complete("kc", 1) and rss("kc")[-1].metadata.annotations[
        "deployment.kubernetes.io/revision"] == "3"), "kubectl rollout undo --to-revision=1 (%s%s)" % (out, e))
    t.is_(len(rss("kc")), 2, "the first ReplicaSet taken again, no third one")

# ---- paused: scaling works, no rollout; resumed: it rolls out
update("web", lambda d: setattr(d.spec, "paused", True))
t.ok(c.wait_for(lambda: cond(get("web"), "Progressing").reason == "DeploymentPaused"),
     "paused: Progressing Unknown DeploymentPaused")
n_rs = len(rss("web"))
update("web", lambda d: setattr(d.spec.template.spec.containers[0], "image", "nginx:4"))
update("web", lambda d: setattr(d.spec, "replicas", 4))
t.ok(c.wait_for(lambda: len(pods("web")) == 4 and get("web").status.observedGeneration == get("web").metadata.generation),
     "paused: scaled to 4")
time.sleep(1)
t.ok(len(rss("web")) == n_rs and all(p.spec.containers[0].image != "nginx:4" for p in pods("web")),
     "paused: no new ReplicaSet for the new template")
update("web", lambda d: setattr(d.spec, "paused", False))
t.ok(c.wait_for(lambda: complete("web", 4) and all(p.spec.containers[0].image == "nginx:4" for p in pods("web"))),
     "resumed: nginx:4 rolled out")

# ---- the deprecated rollback annotation (rollbackTo): 0 is the revision before the newest
r = rss("web")
prev = r[-2]
want_image = prev.spec.template.spec.containers[0].image
update("web", lambda d: d.metadata.annotations.__setitem__("deprecated.deployment.rollback.to", "0"))
t.ok(c.wait_for(lambda: complete("web", 4) and get("web").spec.template.spec.containers[0].image == want_image
                and "deprecated.deployment.rollback.to" not in get("web").metadata.annotations),
     "rollback.to 0: back to %s, the annotation cleared" % want_image)
t.ok('Rolled back deployment "web" to revision %s' % prev.metadata.annotations["deployment.kubernetes.io/revision"]
     in events("DeploymentRollback"), "event DeploymentRollback")
t.ok(c.wait_for(lambda: len(rss("web")) == len(r) and
                [x.metadata.name for x in rss("web")][-1] == prev.metadata.name), "its ReplicaSet the newest again")
update("web", lambda d: d.metadata.annotations.__setitem__("deprecated.deployment.rollback.to", "99"))
t.ok(c.wait_for(lambda: "Unable to find the revision to rollback to." in events("DeploymentRollbackRevisionNotFound")
                and "deprecated.deployment.rollback.to" not in get("web").metadata.annotations),
     "rollback.to 99: DeploymentRollbackRevisionNotFound, the annotation cleared")

# ---- revisionHistoryLimit: the old ReplicaSets beyond it go
update("web", lambda d: setattr(d.spec, "revisionHistoryLimit", 1))
t.ok(c.wait_for(lambda: len(rss("web")) == 2), "revisionHistoryLimit 1: one old ReplicaSet kept")

# ---- Recreate: old ones to 0, their pods gone, then the new one
api.call("Deployments", "Create", deployment("rc", 2, strategy=pb.DeploymentStrategy(type="Recreate")))
t.ok(c.wait_for(lambda: complete("rc", 2)), "Recreate deployment of 2 up")
node.hold_deletes = True
update("rc", lambda d: setattr(d.spec.template.spec.containers[0], "image", "nginx:2"))
t.ok(c.wait_for(lambda: [x.spec.replicas for x in rss("rc")] == [0]), "Recreate: the old ReplicaSet scaled to 0")
t.ok(c.wait_for(lambda: len([p for p in api.call("Pods", "List", pb.ListRequest(namespace="default")).items
                             if p.metadata.labels.get("app") == "rc"]) == 2 and not pods("rc")),
     "its 2 pods terminating")
time.sleep(1.5)
t.is_(len(rss("rc")), 1, "no new ReplicaSet while the old pods terminate")
node.hold_deletes = False
t.ok(c.wait_for(lambda: complete("rc", 2) and len(rss("rc")) == 2), "once they are gone: the new one at 2")
t.ok(all(p.spec.containers[0].image == "nginx:2" for p in pods("rc")), "only new pods")

# ---- progress deadline
node.ready = lambda p: p.metadata.labels.get("app") != "slow"
api.call("Deployments", "Create", deployment("slow", 1, progressDeadlineSeconds=2))
t.ok(c.wait_for(lambda: (lambda x: x is not None and x.reason == "ProgressDeadlineExceeded" and x.status == "False")(
    cond(get("slow"), "Progressing")), timeout=30), "progressDeadlineSeconds 2: ProgressDeadlineExceeded")
t.is_(cond(get("slow"), "Progressing").message, 'ReplicaSet "%s" has timed out progressing.' % rss("slow")[0].metadata.name,
      "its message")
av = cond(get("slow"), "Available")
t.ok(av and av.status == "False" and av.reason == "MinimumReplicasUnavailable", "Available False")

# ---- minReadySeconds: ready pods count as available only after it
node.ready = lambda p: True
api.call("Deployments", "Create", deployment("mrs", 1, minReadySeconds=2))
t.ok(c.wait_for(lambda: get("mrs").status.readyReplicas == 1), "minReadySeconds 2: the pod ready")
t0 = time.time()
t.is_(get("mrs").status.availableReplicas, 0, "but not available yet")
t.ok(c.wait_for(lambda: complete("mrs", 1)), "available after minReadySeconds")
t.ok(time.time() - t0 >= 0.9, "not before (%.1f s)" % (time.time() - t0))
t.is_(rss("mrs")[0].spec.minReadySeconds, 2, "minReadySeconds passed to the ReplicaSet")

# ---- a hash collision: the name is taken by a ReplicaSet not ours, collisionCount goes up
api.call("Deployments", "Create", deployment("coll", 1))
t.ok(c.wait_for(lambda: len(rss("coll")) == 1), "coll: its ReplicaSet")
taken = rss("coll")[0].metadata.name
api.call("Deployments", "Delete", pb.DeleteRequest(namespace="default", name="coll"))
api.try_call("ReplicaSets", "Delete", pb.DeleteRequest(namespace="default", name=taken))  # or the collector did
t.ok(c.wait_for(lambda: api.try_call("ReplicaSets", "Get", pb.GetRequest(namespace="default", name=taken))[0] is None),
     "deployment and ReplicaSet deleted")
api.call("ReplicaSets", "Create", pb.ReplicaSet(metadata=meta(taken, "default"), spec=pb.ReplicaSetSpec(
    replicas=0, selector=pb.LabelSelector(matchLabels={"app": "other"}), template=tmpl("other", "nginx"))))
api.call("Deployments", "Create", deployment("coll", 1))
t.ok(c.wait_for(lambda: complete("coll", 1)), "the same template again: rolled out")
t.ok(get("coll").status.collisionCount == 1 and rss("coll")[0].metadata.name != taken,
     "under another name, collisionCount 1 (%s)" % rss("coll")[0].metadata.name)

# ---- an orphan ReplicaSet the selector matches is adopted (an old one: emptied); relabelled, released
api.call("ReplicaSets", "Create", pb.ReplicaSet(metadata=meta("stray", "default", labels={"app": "adp"}), spec=pb.ReplicaSetSpec(
    replicas=1, selector=pb.LabelSelector(matchLabels={"app": "adp"}), template=tmpl("adp", "busybox"))))
api.call("Deployments", "Create", deployment("adp", 1))


def stray():
    return api.call("ReplicaSets", "Get", pb.GetRequest(namespace="default", name="stray"))


t.ok(c.wait_for(lambda: [o.uid for o in stray().metadata.ownerReferences if o.controller] == [get("adp").metadata.uid]),
     "the orphan ReplicaSet adopted by the Deployment")
t.ok(c.wait_for(lambda: complete("adp", 1) and stray().spec.replicas == 0), "and scaled down as an old one")
r = stray()
r.metadata.labels["app"] = "gone"
api.call("ReplicaSets", "Update", r)
t.ok(c.wait_for(lambda: not any(o.controller for o in stray().metadata.ownerReferences)),
     "relabelled out of the selector: released")

# ---- a Deployment selecting everything: apps/v1 refuses it, as kube-apiserver does
_, e = api.try_call("Deployments", "Create", pb.Deployment(metadata=meta("all", "default"), spec=pb.DeploymentSpec(
    replicas=1, selector=pb.LabelSelector(), template=tmpl("all", "nginx"))))
t.ok(e is not None and "empty selector is invalid for deployment" in e.message,
     "a Deployment with an empty selector is refused (%s)" % e)
t.is_(api.try_call("Deployments", "Get", pb.GetRequest(namespace="default", name="all"))[0], None,
      "and nothing stored")
t.is_(cm.alive(), True, "controller manager still running")
t.is_(cm.stop(), 0, "and exits 0 (nothing leaked, under the sanitizers)")

c.teardown()
t.done()
