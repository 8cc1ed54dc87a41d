#!/usr/bin/python3
# The ReplicaSet controller of coracle-controller-manager, watch-driven:
# a ReplicaSet gets its pods (owned, from its template), a deleted pod is
# replaced, scaling down deletes the pending ones first, a matching orphan
# is adopted and a pod whose labels change is released; status counts
# them. The pods stay unscheduled: no scheduler runs here.
import os
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb
cm = c.start_controller_manager("--leader-elect=false")


def rs_obj(name, replicas, labels=None):
    labels = labels or {"app": name}
    tmpl = pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels=labels),
                              spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")]))
    return pb.ReplicaSet(metadata=meta(name, "default"),
                         spec=pb.ReplicaSetSpec(replicas=replicas, selector=pb.LabelSelector(matchLabels=labels),
                                                template=tmpl))


def pods_of(rs):
    out = []
    for p in api.call("Pods", "List", pb.ListRequest(namespace="default")).items:
        refs = [o for o in p.metadata.ownerReferences if o.controller]
        if refs and refs[0].uid == rs.metadata.uid and not p.metadata.HasField("deletionTimestamp"):
            out.append(p)
    return out


def get_rs(name):
    return api.call("ReplicaSets", "Get", pb.GetRequest(namespace="default", name=name))


def scale(name, n):
    api.update("ReplicaSets", "default", name, lambda r: setattr(r.spec, "replicas", n))


rs = api.call("ReplicaSets", "Create", rs_obj("web", 3))
t.ok(c.wait_for(lambda: len(pods_of(rs)) == 3), "3 pods made for replicas: 3")
ps = pods_of(rs)
ref = ps[0].metadata.ownerReferences[0]
t.ok(ref.kind == "ReplicaSet" and ref.apiVersion == "apps/v1" and ref.name == "web" and ref.controller
     and ref.blockOwnerDeletion, "each owned by the ReplicaSet as its controller")
t.ok(all(p.metadata.name.startswith("web-") and p.metadata.labels["app"] == "web" for p in ps),
     "named web-<random>, with the template's labels")
t.ok(c.wait_for(lambda: get_rs("web").status.replicas == 3 and get_rs("web").status.observedGeneration
                == get_rs("web").metadata.generation),
     "status: replicas 3, observedGeneration the generation")
time_before = len(api.call("Pods", "List", pb.ListRequest(namespace="default")).items)
t.is_(time_before, 3, "no pod more than asked (expectations)")

# a deleted pod is replaced
victim = ps[0].metadata.name
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=victim, gracePeriodSeconds=0))
t.ok(c.wait_for(lambda: len(pods_of(rs)) == 3 and victim not in [p.metadata.name for p in pods_of(rs)]),
     "a deleted pod is replaced")

# scale down, then up
scale("web", 1)
t.ok(c.wait_for(lambda: len(pods_of(rs)) == 1), "scaled to 1: two deleted")
scale("web", 4)
t.ok(c.wait_for(lambda: len(pods_of(rs)) == 4), "scaled to 4")
t.ok(c.wait_for(lambda: get_rs("web").status.replicas == 4), "status follows: 4")

# an orphan with matching labels is adopted (and counted: one fewer made).
# It is on a node, so while the ReplicaSet still wants 4 and holds 5, the
# pod it deletes is one of its unscheduled ones, never the orphan.
orphan = simple_pod("stray", nodeName="elsewhere")
orphan.metadata.labels["app"] = "web"
api.call("Pods", "Create", orphan)
scale("web", 5)
t.ok(c.wait_for(lambda: "stray" in [p.metadata.name for p in pods_of(rs)]), "a matching orphan is adopted")
t.ok(c.wait_for(lambda: len(pods_of(rs)) == 5 and "stray" in [p.metadata.name for p in pods_of(rs)]
                and get_rs("web").status.replicas == 5), "5 with the adopted one, status 5")
t.is_(len(api.call("Pods", "List", pb.ListRequest(namespace="default")).items), 5, "and not one more")

# a pod relabelled out of the selector is released and replaced
p = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="stray"))
p.metadata.labels["app"] = "other"
api.call("Pods", "Update", p)
t.ok(c.wait_for(lambda: not any(o.controller for o in api.call(
    "Pods", "Get", pb.GetRequest(namespace="default", name="stray")).metadata.ownerReferences)),
    "a pod relabelled away is released (its owner reference goes)")
t.ok(c.wait_for(lambda: len(pods_of(rs)) == 5 and "stray" not in [p.metadata.name for p in pods_of(rs)]),
     "and replaced")

# restart: a new manager counts what exists, makes nothing twice
cm.stop()
cm = c.start_controller_manager("--leader-elect=false")
scale("web", 6)
t.ok(c.wait_for(lambda: len(pods_of(rs)) == 6), "after a restart: scaled to 6")
t.ok(c.wait_for(lambda: get_rs("web").status.replicas == 6), "status 6")
t.is_(len(pods_of(rs)), 6, "nothing made twice")
ev = [e for e in api.call("Events", "List", pb.ListRequest(namespace="default")).items
      if e.involvedObject.kind == "ReplicaSet" and e.reason == "SuccessfulCreate"]
t.ok(ev and ev[0].source.component == "replicaset-controller", "SuccessfulCreate events from replicaset-controller")

c.teardown()
t.done()
