#!/usr/bin/python3
# The garbage collector of coracle-controller-manager, over gRPC and stock
# kubectl 1.32: a deleted ReplicaSet's pods go (Background); an object
# with two owners lives while one does (the dead one's reference goes);
# an object created after its owner is gone is collected, as is one whose
# reference names another uid than the object of that name has, and the
# dependents of an owner deleted while no manager ran; an owner of a kind
# nobody can look up keeps its dependents. With the apiserver's
# propagationPolicy: Orphan leaves the pods without the reference,
# Foreground deletes the dependents first, then the owner (a Deployment:
# its pods, its ReplicaSet, then itself). The pods stay unscheduled: no
# scheduler runs here.
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import kubectls
from ctest import meta, simple_pod

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb
cm = c.start_controller_manager("--leader-elect=false")
NS = "default"


def rs_obj(name, replicas):
    labels = {"app": name}
    tmpl = pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels=labels),
                              spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")]))
    return pb.ReplicaSet(metadata=meta(name, NS),
                         spec=pb.ReplicaSetSpec(replicas=replicas, selector=pb.LabelSelector(matchLabels=labels),
                                                template=tmpl))


def pods():
    return api.call("Pods", "List", pb.ListRequest(namespace=NS)).items


def pods_owned_by(uid):
    return [p for p in pods() if any(o.uid == uid for o in p.metadata.ownerReferences)]


def get(service, name):
    r, e = api.try_call(service, "Get", pb.GetRequest(namespace=NS, name=name))
    return r


def ref(kind, api_version, obj, **kw):
    return pb.OwnerReference(kind=kind, apiVersion=api_version, name=obj.metadata.name, uid=obj.metadata.uid, **kw)


def owned_pod(name, *refs):
    p = simple_pod(name)
    p.metadata.ownerReferences.extend(refs)
    return api.call("Pods", "Create", p)


def configmap(name):
    return api.call("ConfigMaps", "Create", pb.ConfigMap(metadata=meta(name, NS), data={"k": "v"}))


def delete(service, name, **kw):
    return api.call(service, "Delete", pb.DeleteRequest(namespace=NS, name=name, **kw))


# ---- Background: a deleted ReplicaSet's pods go ----
rs = api.call("ReplicaSets", "Create", rs_obj("web", 3))
t.ok(c.wait_for(lambda: len(pods_owned_by(rs.metadata.uid)) == 3), "a ReplicaSet with its 3 pods")
delete("ReplicaSets", "web")
t.ok(c.wait_for(lambda: not pods_owned_by(rs.metadata.uid)), "deleted: its pods are collected")

# ---- two owners: the object lives while one does ----
a, b = configmap("owner-a"), configmap("owner-b")
owned_pod("shared", ref("ConfigMap", "v1", a), ref("ConfigMap", "v1", b))
delete("ConfigMaps", "owner-a")
t.ok(c.wait_for(lambda: [o.name for o in get("Pods", "shared").metadata.ownerReferences] == ["owner-b"]),
     "one of two owners deleted: the object stays, without the dead owner's reference")
delete("ConfigMaps", "owner-b")
t.ok(c.wait_for(lambda: get("Pods", "shared") is None), "the other deleted too: collected")

# ---- an object made after its owner is gone is collected ----
late = configmap("late-owner")
delete("ConfigMaps", "late-owner")
owned_pod("orphan-at-birth", ref("ConfigMap", "v1", late))
t.ok(c.wait_for(lambda: get("Pods", "orphan-at-birth") is None), "an object whose owner was already gone is collected")

# a reference by a name whose object has another uid: that owner is gone too
configmap("renamed")
owned_pod("wrong-uid", pb.OwnerReference(kind="ConfigMap", apiVersion="v1", name="renamed",
                                         uid="00000000-0000-0000-0000-000000000001"))
# an owner nobody can look up (a kind the apiserver does not serve): kept
owned_pod("unknown-kind", pb.OwnerReference(kind="Widget", apiVersion="example.com/v1", name="w",
                                            uid="00000000-0000-0000-0000-000000000002"))
# one that lives beside them
keep = configmap("keeper")
owned_pod("kept", ref("ConfigMap", "v1", keep))
t.ok(c.wait_for(lambda: get("Pods", "wrong-uid") is None), "a reference whose uid is not the named object's: collected")
t.ok(get("Pods", "kept") is not None and get("Pods", "unknown-kind") is not None,
     "an object whose owner lives stays, as does one whose owner's kind is unknown")

# ---- owners deleted while no manager runs: collected once one starts ----
# (stopped in the middle of making 300 pods: its open writes end first)
rs = api.call("ReplicaSets", "Create", rs_obj("while-down", 300))
t.ok(c.wait_for(lambda: len(pods_owned_by(rs.metadata.uid)) >= 20, interval=0.005), "a ReplicaSet making its pods")
t.is_(cm.stop(), 0, "the manager stopped in the middle of its writes exits cleanly")
delete("ReplicaSets", "while-down")
cm = c.start_controller_manager("--leader-elect=false")
t.ok(c.wait_for(lambda: not pods_owned_by(rs.metadata.uid)),
     "its owner deleted while the manager was down: the pods are collected after its start")

# ---- Orphan and Foreground: the apiserver's propagationPolicy ----
rs = api.call("ReplicaSets", "Create", rs_obj("orphans", 2))
t.ok(c.wait_for(lambda: len(pods_owned_by(rs.metadata.uid)) == 2), "a ReplicaSet with 2 pods")
names = sorted(p.metadata.name for p in pods_owned_by(rs.metadata.uid))
delete("ReplicaSets", "orphans", propagationPolicy="Orphan")
t.ok(c.wait_for(lambda: get("ReplicaSets", "orphans") is None and all(
    get("Pods", n) is not None and not get("Pods", n).metadata.ownerReferences for n in names)),
     "Orphan: the owner goes, its pods stay without the reference")
for n in names:
    delete("Pods", n)

# Foreground: every dependent's deletion comes before the owner's
rs = api.call("ReplicaSets", "Create", rs_obj("fg", 3))
t.ok(c.wait_for(lambda: len(pods_owned_by(rs.metadata.uid)) == 3), "a ReplicaSet with 3 pods")
watch_rs = api.stream("ReplicaSets", "Watch", pb.ListRequest(namespace=NS, resourceVersion=rs.metadata.resourceVersion))
watch_pods = api.stream("Pods", "Watch", pb.ListRequest(namespace=NS, resourceVersion=rs.metadata.resourceVersion))
delete("ReplicaSets", "fg", propagationPolicy="Foreground")
rs_gone = None
for ev in watch_rs:
    if ev.type == "DELETED" and ev.object.metadata.uid == rs.metadata.uid:
        rs_gone = int(ev.object.metadata.resourceVersion)
        break
watch_rs.cancel()
pod_gone = []
for ev in watch_pods:
    if ev.type == "DELETED" and any(o.uid == rs.metadata.uid for o in ev.object.metadata.ownerReferences):
        pod_gone.append(int(ev.object.metadata.resourceVersion))
    if len(pod_gone) == 3:
        break
watch_pods.cancel()
t.ok(rs_gone and len(pod_gone) == 3 and max(pod_gone) < rs_gone,
     "Foreground: the 3 pods are deleted before the ReplicaSet (%s < %s)" % (pod_gone, rs_gone))

# Foreground through two levels: a Deployment, its ReplicaSet, their pods
d = api.call("Deployments", "Create", pb.Deployment(
    metadata=meta("dfg", NS), spec=pb.DeploymentSpec(
        replicas=2, selector=pb.LabelSelector(matchLabels={"app": "dfg"}),
        template=pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels={"app": "dfg"}),
                                    spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")])))))


def rs_of(uid):
    return [r for r in api.call("ReplicaSets", "List", pb.ListRequest(namespace=NS)).items
            if any(o.uid == uid for o in r.metadata.ownerReferences)]


t.ok(c.wait_for(lambda: rs_of(d.metadata.uid) and len(pods_owned_by(rs_of(d.metadata.uid)[0].metadata.uid)) == 2),
     "a Deployment with its ReplicaSet and 2 pods")
r = rs_of(d.metadata.uid)[0]
watches = {kind: api.stream(kind, "Watch", pb.ListRequest(namespace=NS, resourceVersion=d.metadata.resourceVersion))
           for kind in ("Deployments", "ReplicaSets", "Pods")}
delete("Deployments", "dfg", propagationPolicy="Foreground")


def deleted(kind, match, n):
    revs = []
    for ev in watches[kind]:
        if ev.type == "DELETED" and match(ev.object):
            revs.append(int(ev.object.metadata.resourceVersion))
            if len(revs) == n:
                break
    watches[kind].cancel()
    return revs


gone = {"Deployment": deleted("Deployments", lambda o: o.metadata.uid == d.metadata.uid, 1),
        "ReplicaSet": deleted("ReplicaSets", lambda o: o.metadata.uid == r.metadata.uid, 1),
        "Pods": deleted("Pods", lambda o: any(x.uid == r.metadata.uid for x in o.metadata.ownerReferences), 2)}
t.ok(len(gone["Pods"]) == 2 and max(gone["Pods"]) < gone["ReplicaSet"][0] < gone["Deployment"][0],
     "Foreground on a Deployment: its pods, then its ReplicaSet, then itself (%s)" % gone)

t.ok(get("Pods", "unknown-kind") is not None, "the object whose owner cannot be looked up is still there")

# ---- coraclectl delete --cascade, as kubectl's ----
rs = api.call("ReplicaSets", "Create", rs_obj("corphan", 2))
c.wait_for(lambda: len(pods_owned_by(rs.metadata.uid)) == 2)
names = sorted(p.metadata.name for p in pods_owned_by(rs.metadata.uid))
rc, out, e = c.ctl("delete", "rs", "corphan", "--cascade=orphan")
t.ok(rc == 0 and c.wait_for(lambda: get("ReplicaSets", "corphan") is None and all(
    get("Pods", n) is not None and not get("Pods", n).metadata.ownerReferences for n in names)),
     "coraclectl delete rs --cascade=orphan: the pods stay, without an owner (%s%s)" % (out, e))
rs = api.call("ReplicaSets", "Create", rs_obj("cfg", 2))
c.wait_for(lambda: len(pods_owned_by(rs.metadata.uid)) == 2)
rc, out, e = c.ctl("delete", "rs", "cfg", "--cascade=foreground")
t.ok(rc == 0 and get("ReplicaSets", "cfg") is None and not pods_owned_by(rs.metadata.uid),
     "coraclectl delete rs --cascade=foreground: once it returns, the pods are gone too (%s%s)" % (out, e))
rc, out, e = c.ctl("delete", "rs", "x", "--cascade=sideways")
t.is_((rc, e), (1, 'error: invalid cascade value (sideways). Must be "background", "foreground", or "orphan"\n'),
      "coraclectl delete --cascade: a bad value")

# ---- stock kubectl ----
kubectl = kubectls.kubectl_132()
if not kubectl:
    t.skip("kubectl 1.32 not installed", 4)
    c.teardown()
    t.done()
    sys.exit(0)
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home)


def k(*args):
    p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache")]
                       + list(args), env=kenv, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


rs = api.call("ReplicaSets", "Create", rs_obj("kbg", 2))
t.ok(c.wait_for(lambda: len(pods_owned_by(rs.metadata.uid)) == 2), "a ReplicaSet for kubectl")
rc, out, e = k("delete", "rs", "kbg")
t.ok(rc == 0 and c.wait_for(lambda: not pods_owned_by(rs.metadata.uid)),
     "kubectl delete rs: its pods are collected (%s%s)" % (out, e))
rs = api.call("ReplicaSets", "Create", rs_obj("korphan", 2))
c.wait_for(lambda: len(pods_owned_by(rs.metadata.uid)) == 2)
names = sorted(p.metadata.name for p in pods_owned_by(rs.metadata.uid))
rc, out, e = k("delete", "rs", "korphan", "--cascade=orphan")
t.ok(rc == 0 and c.wait_for(lambda: get("ReplicaSets", "korphan") is None and all(
    get("Pods", n) is not None and not get("Pods", n).metadata.ownerReferences for n in names)),
     "kubectl delete rs --cascade=orphan: the pods stay, without an owner (%s%s)" % (out, e))
rs = api.call("ReplicaSets", "Create", rs_obj("kfg", 2))
c.wait_for(lambda: len(pods_owned_by(rs.metadata.uid)) == 2)
rc, out, e = k("delete", "rs", "kfg", "--cascade=foreground")
t.ok(rc == 0 and get("ReplicaSets", "kfg") is None and not pods_owned_by(rs.metadata.uid),
     "kubectl delete rs --cascade=foreground: once it returns, the pods are gone too (%s%s)" % (out, e))

c.teardown()
t.done()
