#!/usr/bin/python3
# The generic object lifecycle, as Kubernetes' generic registry has it, for
# every kind: metadata.finalizers hold a deleted object (deletionTimestamp,
# MODIFIED) until an update removes the last of them (DELETED); no new
# finalizers once it is being deleted; propagationPolicy and
# orphanDependents put the garbage collector's finalizers (Foreground:
# foregroundDeletion, Orphan: orphan) or delete at once (Background);
# the kind's default (Orphan for Jobs), preconditions and dryRun;
# metadata.generation (1 on create, bumped by a spec change and by the
# deletion mark, never by a status update); ownerReferences and
# finalizers validated with Kubernetes' texts; a namespace waits for its
# held content. Over gRPC, then stock kubectl 1.32
# (delete --wait=false, --cascade=foreground|orphan, patch), on the store
# CORACLE_TEST_STORE names.
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import kubectls
from ctest import meta, simple_pod

t = ctest.Tap()
c = ctest.Cluster(t)
c.implicit_namespaces = False
api = c.start_apiserver()
pb = c.pb
SC = ctest.grpc.StatusCode
HOLD = "example.com/hold"


def err(service, method, req):
    _, e = api.try_call(service, method, req)
    return (e.code, e.message) if e else (SC.OK, None)


def cm(name, ns="default", finalizers=(), **kw):
    return pb.ConfigMap(metadata=meta(name, ns, finalizers=list(finalizers), **kw), data={"a": "b"})


def get_cm(name, ns="default"):
    o, e = api.try_call("ConfigMaps", "Get", pb.GetRequest(namespace=ns, name=name))
    return o


def delete(service, name, ns="default", **kw):
    return api.try_call(service, "Delete", pb.DeleteRequest(namespace=ns, name=name, **kw))


def next_event(w):
    ev = next(w)
    return ev.type, ev.object


# ---- finalizers hold a deleted object ----
w = api.stream("ConfigMaps", "Watch", pb.ListRequest(namespace="default", fieldSelector="metadata.name=f1"))
f1 = api.call("ConfigMaps", "Create", cm("f1", finalizers=[HOLD]))
t.is_((list(f1.metadata.finalizers), f1.metadata.generation), ([HOLD], 1), "created with its finalizer, generation 1")
t.is_(next_event(w)[0], "ADDED", "watch: ADDED")
d, e = delete("ConfigMaps", "f1")
t.ok(e is None and d.metadata.HasField("deletionTimestamp") and d.metadata.deletionGracePeriodSeconds == 0,
     "delete: answered with deletionTimestamp and grace 0 (%s)" % e)
t.is_(d.metadata.generation, 2, "the deletion mark bumps the generation")
typ, o = next_event(w)
t.ok(typ == "MODIFIED" and o.metadata.HasField("deletionTimestamp"), "watch: MODIFIED with the deletionTimestamp")
g = get_cm("f1")
t.ok(g is not None and list(g.metadata.finalizers) == [HOLD], "the object stays while its finalizer does")
d2, _ = delete("ConfigMaps", "f1")
t.is_(d2.metadata.resourceVersion, g.metadata.resourceVersion, "a repeated delete changes nothing")
g.metadata.finalizers.append("example.com/other")
t.is_(err("ConfigMaps", "Update", g),
      (SC.INVALID_ARGUMENT, 'ConfigMap "f1" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
       'added if the object is being deleted, found new finalizers []string{"example.com/other"}'),
      "no finalizer may be added once it is being deleted")
g = get_cm("f1")
g.metadata.labels["still"] = "here"
u = api.call("ConfigMaps", "Update", g)
t.ok(u.metadata.labels["still"] == "here" and u.metadata.HasField("deletionTimestamp"),
     "other updates go on, the deletion mark kept")
typ, _ = next_event(w)
t.is_(typ, "MODIFIED", "watch: MODIFIED")
del u.metadata.finalizers[:]
u2, e = api.try_call("ConfigMaps", "Update", u)
t.ok(e is None and list(u2.metadata.finalizers) == [], "the update removing the last finalizer answers the object (%s)" % e)
t.ok(get_cm("f1") is None, "and the object is gone")
typ, o = next_event(w)
t.ok(typ == "DELETED" and o.metadata.name == "f1", "watch: DELETED")
w.cancel()

# ---- propagationPolicy, orphanDependents ----
for name in ("fg", "or", "od", "bg", "dr", "pre"):
    api.call("ConfigMaps", "Create", cm(name))
d, _ = delete("ConfigMaps", "fg", propagationPolicy="Foreground")
t.ok(list(d.metadata.finalizers) == ["foregroundDeletion"] and d.metadata.HasField("deletionTimestamp"),
     "Foreground: the foregroundDeletion finalizer and deletionTimestamp")
d, _ = delete("ConfigMaps", "or", propagationPolicy="Orphan")
t.ok(list(d.metadata.finalizers) == ["orphan"] and d.metadata.HasField("deletionTimestamp"),
     "Orphan: the orphan finalizer")
d, _ = delete("ConfigMaps", "od", orphanDependents=True)
t.is_(list(d.metadata.finalizers), ["orphan"], "orphanDependents: true is Orphan")
d, _ = delete("ConfigMaps", "fg", propagationPolicy="Orphan")
t.is_(list(d.metadata.finalizers), ["orphan"], "a second delete may change the policy's finalizer")
d, e = delete("ConfigMaps", "od")
t.ok(e is None and get_cm("od") is not None, "no policy: the object's own finalizer stands")
d, e = delete("ConfigMaps", "od", orphanDependents=False)
t.ok(e is None and get_cm("od") is None, "orphanDependents: false takes the orphan finalizer off: gone")
d, e = delete("ConfigMaps", "bg", propagationPolicy="Background")
t.ok(e is None and get_cm("bg") is None, "Background: gone at once")
_, e = delete("ConfigMaps", "dr", propagationPolicy="Sideways")
t.is_((e.code, e.message), (SC.INVALID_ARGUMENT,
      'DeleteOptions "dr" is invalid: propagationPolicy: Unsupported value: "Sideways": supported values: '
      '"Foreground", "Background", "Orphan", "nil"'), "an unknown policy is refused")
_, e = delete("ConfigMaps", "dr", propagationPolicy="Orphan", orphanDependents=True)
t.is_((e.code, e.message), (SC.INVALID_ARGUMENT,
      'DeleteOptions "dr" is invalid: propagationPolicy: Invalid value: "Orphan": orphanDependents and '
      'deletionPropagation cannot be both set'), "policy and orphanDependents together are refused")
d, e = delete("ConfigMaps", "dr", dryRun=["All"], propagationPolicy="Foreground")
t.ok(e is None and list(d.metadata.finalizers) == ["foregroundDeletion"] and list(get_cm("dr").metadata.finalizers) == [],
     "dryRun: the answer as if, nothing written")
d, e = delete("ConfigMaps", "dr", dryRun=["All"])
t.ok(e is None and get_cm("dr") is not None, "dryRun of a plain delete: still there")
p = get_cm("pre")
_, e = delete("ConfigMaps", "pre", preconditions=pb.Preconditions(resourceVersion="1"))
t.is_(e.code if e else None, SC.ABORTED, "a stale resourceVersion precondition conflicts")
d, e = delete("ConfigMaps", "pre", preconditions=pb.Preconditions(uid=p.metadata.uid,
                                                                   resourceVersion=p.metadata.resourceVersion))
t.ok(e is None and get_cm("pre") is None, "matching preconditions: deleted")

# the kind's default: batch/v1 Jobs orphan their pods unless told otherwise
api.call("Jobs", "Create", pb.Job(metadata=meta("j1", "default"), spec=pb.JobSpec(template=pb.PodTemplateSpec(
    spec=pb.PodSpec(restartPolicy="Never", containers=[pb.Container(name="c", image="busybox")])))))
d, e = delete("Jobs", "j1")
t.ok(e is None and list(d.metadata.finalizers) == ["orphan"], "a Job's default policy: Orphan (%s)" % e)
d, e = delete("Jobs", "j1", propagationPolicy="Background")
t.ok(e is None and api.try_call("Jobs", "Get", pb.GetRequest(name="j1"))[0] is None,
     "Background takes the orphan finalizer off: gone")

# ---- pods: graceful deletion with finalizers ----
def held_pod(name):
    return pb.Pod(metadata=meta(name, "default", finalizers=[HOLD]),
                  spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")]))


api.call("Pods", "Create", held_pod("up"))
d, _ = delete("Pods", "up")
t.ok(d.metadata.HasField("deletionTimestamp") and d.metadata.deletionGracePeriodSeconds == 0,
     "an unbound pod with a finalizer: marked with grace 0")
d.ClearField("status")
del d.metadata.finalizers[:]
api.call("Pods", "Update", d)
_, e = api.try_call("Pods", "Get", pb.GetRequest(name="up"))
t.is_(e.code if e else None, SC.NOT_FOUND, "its finalizer removed: gone")
api.call("Pods", "Create", held_pod("bp"))
api.call("Pods", "Bind", pb.Binding(metadata=meta("bp", "default"), target=pb.ObjectReference(kind="Node", name="n1")))
d, _ = delete("Pods", "bp")
t.is_((d.metadata.deletionGracePeriodSeconds, d.metadata.generation), (30, 2),
      "a bound pod with a finalizer: graceful as ever (grace 30, generation bumped)")
d, _ = delete("Pods", "bp", gracePeriodSeconds=0)
t.ok(d.metadata.deletionGracePeriodSeconds == 0 and list(d.metadata.finalizers) == [HOLD],
     "the kubelet's grace-0 delete: held by the finalizer")
del d.metadata.finalizers[:]
api.call("Pods", "Update", d)
_, e = api.try_call("Pods", "Get", pb.GetRequest(name="bp"))
t.is_(e.code if e else None, SC.NOT_FOUND, "finalizer removed after the grace-0 delete: gone")

# ---- generation, status ----
p = api.call("Pods", "Create", simple_pod("gen"))
p.metadata.labels["x"] = "y"
p = api.call("Pods", "Update", p)
t.is_(p.metadata.generation, 1, "a metadata change leaves the generation")
p.spec.containers[0].image = "busybox:1.36"
p = api.call("Pods", "Update", p)
t.is_(p.metadata.generation, 2, "a spec change bumps it")
p.status.phase = "Running"
p.spec.containers[0].image = "nginx"
s = api.call("Pods", "UpdateStatus", p)
t.is_((s.metadata.generation, s.status.phase, s.spec.containers[0].image), (2, "Running", "busybox:1.36"),
      "UpdateStatus: status only, generation kept")
s.status.phase = "Failed"
s.metadata.labels["z"] = "1"
u = api.call("Pods", "Update", s)
t.is_((u.status.phase, u.metadata.labels["z"], u.metadata.generation), ("Running", "1", 2),
      "Update: never the status")
f = api.call("ConfigMaps", "Create", cm("gcm"))
f.data["a"] = "c"
t.is_(api.call("ConfigMaps", "Update", f).metadata.generation, 1, "a kind without a spec keeps generation 1")

# ---- ownerReferences, finalizers validation ----
OR = pb.OwnerReference
t.is_(err("ConfigMaps", "Create", cm("o1", ownerReferences=[OR(apiVersion="v1", kind="Pod", name="p")])),
      (SC.INVALID_ARGUMENT, 'ConfigMap "o1" is invalid: metadata.ownerReferences[0].uid: Required value: must not be empty'),
      "an owner reference needs a uid")
t.is_(err("ConfigMaps", "Create", cm("o1", ownerReferences=[OR(uid="u")])),
      (SC.INVALID_ARGUMENT, 'ConfigMap "o1" is invalid: [metadata.ownerReferences[0].apiVersion: Required value: must not '
       'be empty, metadata.ownerReferences[0].kind: Required value: must not be empty, '
       'metadata.ownerReferences[0].name: Required value: must not be empty]'),
      "apiVersion, kind and name too")
t.is_(err("ConfigMaps", "Create", cm("o1", ownerReferences=[OR(apiVersion="a/b/c", kind="K", name="n", uid="u")])),
      (SC.INVALID_ARGUMENT, 'ConfigMap "o1" is invalid: metadata.ownerReferences[0].apiVersion: Invalid value: "a/b/c": '
       'must be <group>/<version> or <version>'), "apiVersion is <group>/<version> or <version>")
t.is_(err("ConfigMaps", "Create", cm("o1", ownerReferences=[OR(apiVersion="v1", kind="Event", name="e", uid="u")])),
      (SC.INVALID_ARGUMENT, 'ConfigMap "o1" is invalid: metadata.ownerReferences[0]: Invalid value: '
       '{"apiVersion":"v1","kind":"Event","name":"e","uid":"u"}: /v1, Kind=Event is disallowed from being an owner'),
      "an Event may not own")
two = [OR(apiVersion="apps/v1", kind="ReplicaSet", name="a", uid="1", controller=True),
       OR(apiVersion="apps/v1", kind="ReplicaSet", name="b", uid="2", controller=True)]
t.is_(err("ConfigMaps", "Create", cm("o1", ownerReferences=two)),
      (SC.INVALID_ARGUMENT, 'ConfigMap "o1" is invalid: metadata.ownerReferences: Invalid value: '
       '[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"a","uid":"1","controller":true},'
       '{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"b","uid":"2","controller":true}]: Only one reference can '
       'have Controller set to true. Found "true" in references for ReplicaSet/a and ReplicaSet/b'),
      "at most one controller")
o = api.call("ConfigMaps", "Create", cm("o1", ownerReferences=[
    OR(apiVersion="apps/v1", kind="ReplicaSet", name="a", uid="1", controller=True, blockOwnerDeletion=True),
    OR(apiVersion="v1", kind="Pod", name="b", uid="2")]))
r = o.metadata.ownerReferences
t.ok(len(r) == 2 and r[0].blockOwnerDeletion and r[0].controller and not r[1].HasField("controller"),
     "valid owner references are stored, blockOwnerDeletion with them")
t.is_(err("ConfigMaps", "Create", cm("o2", finalizers=["orphan", "foregroundDeletion"])),
      (SC.INVALID_ARGUMENT, 'ConfigMap "o2" is invalid: metadata.finalizers: Invalid value: '
       '["orphan","foregroundDeletion"]: finalizer orphan and foregroundDeletion cannot be both set'),
      "orphan and foregroundDeletion together are refused")
t.like(err("ConfigMaps", "Create", cm("o2", finalizers=["a b"]))[1] or "",
       'ConfigMap "o2" is invalid: metadata.finalizers: Invalid value: "a b": name part must consist of',
       "a finalizer is a qualified name")

# ---- a namespace waits for its held content ----
api.call("Namespaces", "Create", pb.Namespace(metadata=meta("lf")))
api.call("ConfigMaps", "Create", cm("held", "lf", finalizers=[HOLD]))
api.call("ConfigMaps", "Create", cm("free", "lf"))
api.call("Namespaces", "Delete", pb.DeleteRequest(name="lf"))
t.ok(c.wait_for(lambda: (get_cm("held", "lf") or pb.ConfigMap()).metadata.HasField("deletionTimestamp")
                and get_cm("free", "lf") is None, timeout=ctest.DEADLINE),
     "in a Terminating namespace, a held object is marked, the rest deleted")
# the namespace lifecycle steps every second: several steps later it is still held
def ns_steps():
    n, _ = api.try_call("Namespaces", "Get", pb.GetRequest(name="lf"))
    return n is not None and n.status.phase == "Terminating"


t.ok(all(ns_steps() for _ in range(3)) and not c.wait_for(lambda: not ns_steps(), timeout=3),
     "the namespace stays Terminating while the object is held")
h = get_cm("held", "lf")
del h.metadata.finalizers[:]
api.call("ConfigMaps", "Update", h)
t.ok(c.wait_for(lambda: api.try_call("Namespaces", "Get", pb.GetRequest(name="lf"))[0] is None,
                timeout=ctest.DEADLINE), "its finalizer removed, the namespace goes")

# ---- stock kubectl ----
kubectl = kubectls.kubectl_132()
if not kubectl:
    t.skip("kubectl 1.32 not installed", 11)
    t.done()
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home)


def k(*args, stdin=None):
    p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache")]
                       + list(args), env=kenv, capture_output=True, text=True, timeout=120, input=stdin)
    return p.returncode, p.stdout, p.stderr


def cm_doc(name, **m):
    md = {"name": name}
    md.update(m)
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"a": "b"}})


w = api.stream("ConfigMaps", "Watch", pb.ListRequest(namespace="default", fieldSelector="metadata.name=k1"))
rc, out, e = k("create", "-f", "-", stdin=cm_doc("k1", finalizers=[HOLD]))
t.is_((rc, out.strip()), (0, "configmap/k1 created"), "kubectl create with a finalizer (%s)" % e)
rc, out, e = k("delete", "cm", "k1", "--wait=false")
t.is_((rc, out.strip()), (0, 'configmap "k1" deleted'), "kubectl delete --wait=false (%s)" % e)
rc, out, e = k("get", "cm", "k1", "-o", "jsonpath={.metadata.deletionTimestamp} {.metadata.finalizers}")
t.ok(rc == 0 and out.split(" ", 1)[0].endswith("Z") and HOLD in out, "kubectl get: still there, with deletionTimestamp (%s%s)" % (out, e))
rc, out, e = k("patch", "cm", "k1", "--type=merge", "-p", '{"metadata":{"finalizers":["%s","x.io/new"]}}' % HOLD)
t.ok(rc != 0 and 'no new finalizers can be added if the object is being deleted, found new finalizers []string{"x.io/new"}' in e,
     "kubectl patch adding a finalizer: refused (%s)" % e)
rc, out, e = k("patch", "cm", "k1", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
t.is_((rc, out.strip()), (0, "configmap/k1 patched"), "kubectl patch removing the finalizer (%s)" % e)
rc, out, e = k("get", "cm", "k1")
t.ok(rc != 0 and 'configmaps "k1" not found' in e, "then it is gone (%s)" % e)
evs = [next_event(w)[0] for _ in range(3)]
t.is_(evs, ["ADDED", "MODIFIED", "DELETED"], "watch: ADDED, MODIFIED (deletionTimestamp), DELETED")
w.cancel()
for name in ("k2", "k3"):
    k("create", "-f", "-", stdin=cm_doc(name, finalizers=[HOLD]))
rc, out, e = k("delete", "cm", "k2", "--cascade=foreground", "--wait=false")
rc2, out2, e2 = k("get", "cm", "k2", "-o", "jsonpath={.metadata.finalizers}")
t.ok(rc == 0 and json.loads(out2 or "[]") == [HOLD, "foregroundDeletion"],
     "kubectl delete --cascade=foreground: the foregroundDeletion finalizer (%s%s%s)" % (e, out2, e2))
rc, out, e = k("delete", "cm", "k3", "--cascade=orphan", "--wait=false")
rc2, out2, e2 = k("get", "cm", "k3", "-o", "jsonpath={.metadata.finalizers}")
t.ok(rc == 0 and json.loads(out2 or "[]") == [HOLD, "orphan"],
     "kubectl delete --cascade=orphan: the orphan finalizer (%s%s%s)" % (e, out2, e2))
rc, out, e = k("create", "-f", "-", stdin=cm_doc("k4", ownerReferences=[{"apiVersion": "v1", "kind": "Pod", "name": "p"}]))
t.ok(rc != 0 and 'The ConfigMap "k4" is invalid: metadata.ownerReferences[0].uid: Required value: must not be empty' in e,
     "kubectl create: ownerReferences validated (%s)" % e)
t.done()
