#!/usr/bin/python3
# The Deployment controller end to end: apiserver, scheduler, a real
# kubelet running the seed's nginx image in runc, the controller manager,
# and stock kubectl 1.32 over the REST API. A Deployment of 3 comes up
# (kubectl rollout status), a deleted pod is replaced, `kubectl set image`
# rolls out within maxSurge 1 / maxUnavailable 0 (the pods watched
# throughout: never more than 4, never fewer than 3 ready), `kubectl
# rollout undo` goes back to the first ReplicaSet, scaling to 0 and back,
# and a controller manager killed -9 mid-rollout and restarted finishes
# it with no pod made twice. Needs root, runc and the cached seed images.
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import kubectls
from ctest import meta

t = ctest.Tap()
ctest.need_root(t)
cache = os.environ.get("CORACLE_IMAGE_CACHE", "/var/cache/coracle/images")
tar = os.path.join(cache, "nginx.tar")
kubectl = kubectls.kubectl_132()
if not os.path.exists(tar) or not os.path.exists("/usr/sbin/runc"):
    t.skip_all("the nginx seed image is not built (contrib/images/all.sh), or no runc")
if not kubectl:
    t.skip_all("kubectl 1.32 not installed")
c = ctest.Cluster(t, "43-ctrl-deployment")
pb = c.pb
root = os.path.join(c.dir, "kroot")
runc_root = os.path.join(root, "runc")
c.on_teardown(lambda: ctest.node_cleanup(root, runc_root))
os.makedirs(os.path.join(root, "images", "import"))
os.symlink(tar, os.path.join(root, "images", "import", "nginx.tar"))
api = c.start_apiserver()
c.start_kubelet("node1", "--healthz-listen", "", root_dir=root)
t.ok(c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=5 * ctest.DEADLINE),
     "kubelet up with nginx imported")
c.start_scheduler()
cm = c.start_controller_manager("--leader-elect=false")

home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv["HOME"] = home


def k(*args, stdin=None, timeout=120):
    p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache")] + list(args),
                       env=kenv, capture_output=True, text=True, timeout=timeout, input=stdin)
    return p.returncode, p.stdout, p.stderr


def all_pods():
    return api.call("Pods", "List", pb.ListRequest(namespace="default")).items


def live(ps):
    return [p for p in ps if not p.metadata.HasField("deletionTimestamp") and p.status.phase not in ("Succeeded", "Failed")]


def ready(p):
    return any(x.type == "Ready" and x.status == "True" for x in p.status.conditions)


def get():
    return api.call("Deployments", "Get", pb.GetRequest(namespace="default", name="web"))


def rss():
    uid = get().metadata.uid
    return sorted([r for r in api.call("ReplicaSets", "List", pb.ListRequest(namespace="default")).items
                   if any(o.controller and o.uid == uid for o in r.metadata.ownerReferences)],
                  key=lambda r: int(r.metadata.annotations.get("deployment.kubernetes.io/revision", "0")))


def images():
    return sorted(p.spec.containers[0].image for p in live(all_pods()))


class Watcher:
    """Lists the pods over and over: the most live ones and the fewest ready ones seen."""

    def __init__(self):
        self.cl = ctest.Client(c.api_addr)
        self.most, self.fewest, self.stop = 0, 99, False
        self.owned = {}  # ReplicaSet name: the uids of every pod seen of it
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        while not self.stop:
            every = self.cl.call("Pods", "List", pb.ListRequest(namespace="default")).items
            for p in every:
                for o in p.metadata.ownerReferences:
                    self.owned.setdefault(o.name, set()).add(p.metadata.uid)
            ps = live(every)
            self.most = max(self.most, len(ps))
            self.fewest = min(self.fewest, sum(1 for p in ps if ready(p)))
            time.sleep(0.02)

    def end(self):
        self.stop = True
        self.th.join()
        return self.most, self.fewest


manifest = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: nginx
        image: nginx:1.14.2
        imagePullPolicy: IfNotPresent
"""
rc, out, e = k("apply", "-f", "-", stdin=manifest)
t.is_((rc, out.strip()), (0, "deployment.apps/web created"), "kubectl apply: created (%s)" % e)
rc, out, e = k("rollout", "status", "deploy/web", "--timeout=90s")
t.ok(rc == 0 and 'deployment "web" successfully rolled out' in out, "kubectl rollout status (%s%s)" % (out, e))
ps = live(all_pods())
t.ok(len(ps) == 3 and all(ready(p) and p.spec.nodeName == "node1" for p in ps), "3 pods Running and Ready on node1")
first = rss()[0].metadata.name

# ---- a deleted pod is replaced
victim = ps[0].metadata.name
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=victim))
t.ok(c.wait_for(lambda: (lambda l: len(l) == 3 and victim not in [p.metadata.name for p in l] and all(map(ready, l)))(
    live(all_pods())), timeout=60), "a deleted pod is replaced")

# ---- kubectl set image: one pod at a time
w = Watcher()
rc, out, e = k("set", "image", "deploy/web", "nginx=nginx")
t.is_((rc, out.strip()), (0, "deployment.apps/web image updated"), "kubectl set image (%s)" % e)
rc, out, e = k("rollout", "status", "deploy/web", "--timeout=90s")
t.ok(rc == 0 and 'successfully rolled out' in out, "rollout to nginx finished (%s%s)" % (out[-300:], e))
most, fewest = w.end()
t.ok(most <= 4 and fewest >= 3, "never more than 4 pods, never fewer than 3 ready (most %d, fewest %d)" % (most, fewest))
t.is_(images(), ["nginx"] * 3, "3 pods of the new template")
r = rss()
t.ok(len(r) == 2 and r[0].spec.replicas == 0 and r[1].spec.replicas == 3, "old ReplicaSet at 0, new one at 3 (%s)"
     % [(x.metadata.name, x.spec.replicas) for x in r])
second = r[1].metadata.name
rc, out, e = k("rollout", "history", "deploy/web")
t.ok(rc == 0 and [l.split()[0] for l in out.splitlines()[2:] if l.strip()] == ["1", "2"],
     "kubectl rollout history: 1 2 (%s%s)" % (out, e))

# ---- kubectl rollout undo: back to the first ReplicaSet
rc, out, e = k("rollout", "undo", "deploy/web")
t.is_((rc, out.strip()), (0, "deployment.apps/web rolled back"), "kubectl rollout undo (%s)" % e)
rc, out, e = k("rollout", "status", "deploy/web", "--timeout=90s")
t.ok(rc == 0 and 'successfully rolled out' in out, "rolled back (%s%s)" % (out[-300:], e))
r = {x.metadata.name: x for x in rss()}
t.ok(len(r) == 2 and r[first].spec.replicas == 3 and r[second].spec.replicas == 0 and
     r[first].metadata.annotations["deployment.kubernetes.io/revision"] == "3",
     "the first ReplicaSet is back at 3, as revision 3 (%s)"
     % [(x.metadata.name, x.spec.replicas, dict(x.metadata.annotations)) for x in r.values()])
t.is_(images(), ["nginx:1.14.2"] * 3, "3 pods of the first template")

# ---- scale to 0 and back
scale_url = "http://%s/apis/apps/v1/namespaces/default/deployments/web/scale" % c.api_addr
try:
    has_scale = urllib.request.urlopen(scale_url, timeout=10).status == 200
except Exception:
    has_scale = False


def scale(n):
    if has_scale:
        return k("scale", "deploy/web", "--replicas=%d" % n)
    return k("patch", "deploy/web", "-p", json.dumps({"spec": {"replicas": n}}))


if not has_scale:
    t.diag("no scale subresource: spec.replicas patched instead of kubectl scale")
rc, out, e = scale(0)
t.ok(rc == 0, "scaled to 0 (%s%s)" % (out, e))
t.ok(c.wait_for(lambda: not all_pods() and get().status.replicas == 0, timeout=60), "no pod left, status replicas 0")
rc, out, e = scale(3)
t.ok(rc == 0, "scaled to 3 (%s%s)" % (out, e))
rc, out, e = k("rollout", "status", "deploy/web", "--timeout=90s")
t.ok(rc == 0 and 'successfully rolled out' in out and len(live(all_pods())) == 3, "3 again (%s%s)" % (out[-300:], e))
t.is_(len(rss()), 2, "no new ReplicaSet for scaling")

# ---- the controller manager killed -9 mid-rollout
w = Watcher()
rc, out, e = k("set", "image", "deploy/web", "nginx=nginx:latest")
t.ok(c.wait_for(lambda: any(x.spec.replicas >= 1 and x.metadata.name not in (first, second) for x in rss()), timeout=60),
     "rollout to nginx:latest started")
cm.kill()
cm.proc.wait()
t.ok(not cm.alive(), "controller manager killed -9 mid-rollout")
# What the dead one had sent is still carried out by the apiserver; a
# successor listing before that lands would count a pod short (leader
# election's lease is what keeps that window closed in a real cluster).
time.sleep(1)
cm = c.start_controller_manager("--leader-elect=false")
rc, out, e = k("rollout", "status", "deploy/web", "--timeout=90s")
t.ok(rc == 0 and 'successfully rolled out' in out, "the restarted one finishes it (%s%s)" % (out[-300:], e))
most, fewest = w.end()
t.ok(most <= 4 and fewest >= 3, "still never more than 4, never fewer than 3 ready (most %d, fewest %d)" % (most, fewest))
ps = live(all_pods())
t.is_(images(), ["nginx:latest"] * 3, "3 pods of the new template")
r = rss()
t.ok(len(r) == 3 and sorted(x.spec.replicas for x in r) == [0, 0, 3] and
     all(x.status.replicas == x.spec.replicas for x in r), "3 ReplicaSets, only the newest with replicas")
newest = r[-1].metadata.name
dels = [e for e in api.call("Events", "List", pb.ListRequest(namespace="default")).items
        if e.reason == "SuccessfulDelete" and e.involvedObject.name == newest]
t.ok(len(w.owned.get(newest, ())) == 3 and not dels,
     "the new ReplicaSet made exactly 3 pods, none deleted (no duplicate): %s" % sorted(w.owned.get(newest, ())))
if len(w.owned.get(newest, ())) != 3 or dels:
    for e in sorted(api.call("Events", "List", pb.ListRequest(namespace="default")).items,
                    key=lambda e: int(e.metadata.resourceVersion)):
        if e.involvedObject.kind in ("ReplicaSet", "Deployment"):
            t.diag("%s %s %s: %s" % (e.metadata.resourceVersion, e.involvedObject.name, e.reason, e.message))
d = get()
t.ok(d.status.updatedReplicas == 3 and d.status.availableReplicas == 3 and d.status.unavailableReplicas == 0
     and d.metadata.annotations["deployment.kubernetes.io/revision"] == "4", "status: 3 updated, 3 available, revision 4")
sc = [e.message for e in api.call("Events", "List", pb.ListRequest(namespace="default")).items
      if e.reason == "ScalingReplicaSet" and e.source.component == "deployment-controller"]
t.ok("Scaled up replica set %s from 0 to 3" % first in sc and "Scaled up replica set %s from 0 to 1" % second in sc
     and "Scaled down replica set %s from 3 to 2" % first in sc, "ScalingReplicaSet events from deployment-controller")

rc, out, e = k("delete", "deploy/web")
t.ok(rc == 0, "kubectl delete deploy (%s%s)" % (out, e))
# no garbage collector here: the ReplicaSets and pods go by hand
for x in api.call("ReplicaSets", "List", pb.ListRequest(namespace="default")).items:
    api.try_call("ReplicaSets", "Delete", pb.DeleteRequest(namespace="default", name=x.metadata.name))
for p in all_pods():
    api.try_call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=p.metadata.name))
t.ok(c.wait_for(lambda: not all_pods(), timeout=60), "pods gone")
t.ok(c.wait_for(lambda: subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True,
                                       text=True).stdout.strip() == "", timeout=30), "no containers left")
c.teardown()
t.done()
