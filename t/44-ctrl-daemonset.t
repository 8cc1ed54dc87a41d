#!/usr/bin/python3
# The DaemonSet controller of coracle-controller-manager with a real
# scheduler, Node objects made over gRPC (their pods made Ready by the test,
# as a kubelet would) and one real kubelet running its pod with runc: a pod
# per node, placed through a required node affinity on the node's name;
# nodeSelector limits them; a node added gets its pod, one relabelled out,
# tainted NoExecute or deleted loses it; a NoSchedule taint keeps pods off
# unless tolerated (a pod already there stays, misscheduled); a cordoned
# node keeps its pod, as in Kubernetes; a failed pod is replaced, an orphan
# adopted; a template change rolls through with maxUnavailable 1, with
# maxSurge 1, or waits for deletions (OnDelete); the status counts nodes as
# Kubernetes does and stock kubectl's `rollout status` reads it; events as
# Kubernetes' controller writes them.
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet
import kubectls
import schedutil

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "44-ctrl-daemonset")
pb = c.pb
# the Node objects have no kubelet to renew their leases: never Unknown here
api = c.start_apiserver("--node-monitor-grace", "3600")
c.start_scheduler()
c.start_controller_manager("--leader-elect=false")
c.start_kubelet("kn", root_dir=root)
FAKE = {"n1": {"tier": "a"}, "n2": {"tier": "a"}, "n3": {"tier": "b"}}
for n, labels in FAKE.items():
    api.call("Nodes", "Create", schedutil.node(n, labels=labels))
t.ok(c.wait_for(lambda: [x for x in (api.try_call("Nodes", "Get", pb.GetRequest(name="kn"))[0] or
                                      pb.Node()).status.conditions if x.type == "Ready" and x.status == "True"],
                timeout=ctest.DEADLINE), "the kubelet's node kn is Ready")


def now_time():
    return pb.Time(seconds=int(time.time()))


# ---- the pretend kubelet of the Node objects: their pods become Running and Ready
fake_ready = threading.Event()
fake_ready.set()
stop = threading.Event()


def is_fake(node):
    return node.startswith("n")


def make_ready():
    for p in api.call("Pods", "List", pb.ListRequest(namespace="default")).items:
        if not is_fake(p.spec.nodeName) or p.metadata.HasField("deletionTimestamp") or ready(p):
            continue
        p.status.phase = "Running"
        del p.status.conditions[:]
        for typ in ("PodScheduled", "Initialized", "ContainersReady", "Ready"):
            p.status.conditions.add(type=typ, status="True", lastTransitionTime=now_time())
        api.try_call("Pods", "UpdateStatus", p)


def pretend_kubelet():
    while not stop.is_set():
        if fake_ready.is_set():
            try:
                make_ready()
            except Exception:
                pass
        time.sleep(0.1)


threading.Thread(target=pretend_kubelet, daemon=True).start()
c.on_teardown(stop.set)


def ready(p):
    return any(x.type == "Ready" and x.status == "True" for x in p.status.conditions)


def ds_obj(name, node_selector=None, tolerations=(), strategy=None, cpu=None):
    labels = {"app": name}
    ctr = pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                       command=["sh", "-c", "sleep 3600"])
    if cpu:
        ctr.resources.requests["cpu"].string = cpu
    spec = pb.PodSpec(containers=[ctr], terminationGracePeriodSeconds=0)
    for k, v in (node_selector or {}).items():
        spec.nodeSelector[k] = v
    for key, op, effect in tolerations:
        spec.tolerations.add(key=key, operator=op, effect=effect)
    ds = pb.DaemonSet(metadata=ctest.meta(name, "default"),
                      spec=pb.DaemonSetSpec(selector=pb.LabelSelector(matchLabels=labels),
                                            template=pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels=labels),
                                                                        spec=spec)))
    if strategy:
        ds.spec.updateStrategy.CopyFrom(strategy)
    return api.call("DaemonSets", "Create", ds)


def get_ds(name):
    return api.call("DaemonSets", "Get", pb.GetRequest(namespace="default", name=name))


def update_ds(name, fn):
    for _ in range(20):
        d = get_ds(name)
        fn(d)
        r, err = api.try_call("DaemonSets", "Update", d)
        if err is None:
            return r
        time.sleep(0.1)
    raise RuntimeError("DaemonSet %s: update kept conflicting" % name)


def update_node(name, fn, method="Update"):
    for _ in range(20):
        n = api.call("Nodes", "Get", pb.GetRequest(name=name))
        fn(n)
        r, err = api.try_call("Nodes", method, n)
        if err is None:
            return r
        time.sleep(0.1)
    raise RuntimeError("node %s: update kept conflicting" % name)


def pods_of(name, live=True):
    d = get_ds(name)
    out = []
    for p in api.call("Pods", "List", pb.ListRequest(namespace="default")).items:
        refs = [o for o in p.metadata.ownerReferences if o.controller]
        if refs and refs[0].uid == d.metadata.uid and not (live and p.metadata.HasField("deletionTimestamp")):
            out.append(p)
    return out


def target(p):
    if p.spec.nodeName:
        return p.spec.nodeName
    for term in p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms:
        for f in term.matchFields:
            if f.key == "metadata.name" and f.operator == "In":
                return f.values[0]
    return None


def nodes_of(name, bound=True):
    """The nodes the DaemonSet's pods are on (bound: by the scheduler)."""
    return sorted(p.spec.nodeName if bound else target(p) for p in pods_of(name)
                  if not bound or p.spec.nodeName)


def status_is(name, **want):
    st = get_ds(name).status
    got = {k: getattr(st, k) for k in want}
    return got == want or None


def wait_status(name, **want):
    ok = c.wait_for(lambda: status_is(name, **want), timeout=ctest.DEADLINE)
    if not ok:
        t.diag("status of %s: %s" % (name, get_ds(name).status))
    return ok


def events(name, reason):
    return [e for e in api.call("Events", "List", pb.ListRequest(namespace="default")).items
            if e.involvedObject.kind == "DaemonSet" and e.involvedObject.name == name and e.reason == reason]


ALL4 = ["kn", "n1", "n2", "n3"]

# ---- a pod per node
every = ds_obj("every", strategy=pb.DaemonSetUpdateStrategy(
    type="RollingUpdate", rollingUpdate=pb.RollingUpdateDaemonSet(maxUnavailable=pb.IntOrString(type=0, intVal=1))))
t.ok(c.wait_for(lambda: nodes_of("every") == ALL4, timeout=ctest.DEADLINE),
     "a pod on each of the 4 nodes, bound by the scheduler (%s)" % nodes_of("every"))
ps = pods_of("every")
ref = ps[0].metadata.ownerReferences[0] if ps else pb.OwnerReference()
t.ok(ref.kind == "DaemonSet" and ref.apiVersion == "apps/v1" and ref.name == "every" and ref.controller
     and ref.blockOwnerDeletion, "each owned by the DaemonSet as its controller")
t.ok(all(p.metadata.name.startswith("every-") for p in ps), "named every-<random>")
t.ok(all(target(p) == p.spec.nodeName and len(p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
                                               .nodeSelectorTerms) == 1 for p in ps),
     "each with a required node affinity: matchFields metadata.name In [its node]")
hashes = {p.metadata.labels.get("controller-revision-hash") for p in ps}
t.ok(len(hashes) == 1 and re.fullmatch(r"[bcdfghjklmnpqrstvwxz2456789]{1,10}", hashes.pop() or ""),
     "one controller-revision-hash label, in SafeEncodeString's alphabet")
tols = {(x.key, x.operator, x.effect) for x in ps[0].spec.tolerations} if ps else set()
t.is_(sorted(tols), sorted([("node.kubernetes.io/not-ready", "Exists", "NoExecute"),
                            ("node.kubernetes.io/unreachable", "Exists", "NoExecute"),
                            ("node.kubernetes.io/disk-pressure", "Exists", "NoSchedule"),
                            ("node.kubernetes.io/memory-pressure", "Exists", "NoSchedule"),
                            ("node.kubernetes.io/pid-pressure", "Exists", "NoSchedule"),
                            ("node.kubernetes.io/unschedulable", "Exists", "NoSchedule")]),
      "the daemon tolerations Kubernetes adds (no network-unavailable without hostNetwork)")
real = [p for p in pods_of("every") if p.spec.nodeName == "kn"]
t.ok(real and c.wait_for(lambda: [p for p in pods_of("every") if p.spec.nodeName == "kn" and ready(p)
                                  and p.status.phase == "Running"], timeout=ctest.DEADLINE),
     "the pod on the kubelet's node runs (runc) and is Ready")
t.ok(wait_status("every", desiredNumberScheduled=4, currentNumberScheduled=4, numberReady=4,
                 numberAvailable=4, updatedNumberScheduled=4, numberMisscheduled=0, numberUnavailable=0),
     "status: 4 desired, current, ready, available, updated; none misscheduled or unavailable")
d = get_ds("every")
t.is_(d.status.observedGeneration, d.metadata.generation, "observedGeneration is the generation")
t.is_(len(pods_of("every", live=False)), 4, "no pod more than one a node (expectations)")
ev = events("every", "SuccessfulCreate")
t.ok(len(ev) == 4 and ev[0].source.component == "daemonset-controller" and ev[0].type == "Normal"
     and ev[0].message.startswith("Created pod: every-"), "SuccessfulCreate events from daemonset-controller")

kubectl = kubectls.kubectl_132()
khome = os.path.join(c.dir, "khome")
os.makedirs(khome)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv["HOME"] = khome


def kubectl_run(*args, timeout=90):
    p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(khome, "cache")]
                       + list(args), env=kenv, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


if kubectl:
    rc, out, err = kubectl_run("rollout", "status", "ds/every", "--watch=false")
    t.is_((rc, out), (0, 'daemon set "every" successfully rolled out\n'), "kubectl rollout status: rolled out (%s)" % err)
else:
    t.skip("kubectl 1.32 not installed")

# ---- nodeSelector; nodes added, relabelled, deleted
ds_obj("tier-a", node_selector={"tier": "a"})
t.ok(c.wait_for(lambda: nodes_of("tier-a") == ["n1", "n2"]), "nodeSelector tier=a: pods on n1 and n2 only")
api.call("Nodes", "Create", schedutil.node("n4", labels={"tier": "a"}))
t.ok(c.wait_for(lambda: nodes_of("tier-a") == ["n1", "n2", "n4"] and "n4" in nodes_of("every")),
     "a node added gets its pods")
t.ok(wait_status("tier-a", desiredNumberScheduled=3, currentNumberScheduled=3, numberReady=3),
     "status follows: 3 desired, 3 ready")
update_node("n4", lambda n: n.metadata.labels.__setitem__("tier", "b"))
t.ok(c.wait_for(lambda: nodes_of("tier-a") == ["n1", "n2"]), "relabelled out of the selector: its pod goes")
t.ok("n4" in nodes_of("every"), "the DaemonSet that still selects it keeps its pod")
api.call("Nodes", "Delete", pb.DeleteRequest(name="n4"))
t.ok(c.wait_for(lambda: nodes_of("every") == ALL4 and len(pods_of("every", live=False)) == 4),
     "a node deleted: its pod goes")
ev = events("every", "SuccessfulDelete")
t.ok(ev and ev[0].message.startswith("Deleted pod: every-"), "SuccessfulDelete events")

# ---- taints and tolerations
api.call("Nodes", "Create", schedutil.node("n5", labels={"tier": "b"}, taints=[("dedicated", "infra", "NoSchedule")]))
ds_obj("tolerant", node_selector={"tier": "b"}, tolerations=[("dedicated", "Exists", "NoSchedule")])
t.ok(c.wait_for(lambda: nodes_of("tolerant") == ["n3", "n5"]), "a tolerated taint: the pod goes there too")
t.ok(wait_status("every", desiredNumberScheduled=4) and "n5" not in nodes_of("every", bound=False),
     "an untolerated NoSchedule taint: no pod")
update_node("n3", lambda n: n.spec.taints.add(key="maint", value="1", effect="NoSchedule"))
t.ok(wait_status("every", desiredNumberScheduled=3, currentNumberScheduled=3, numberMisscheduled=1),
     "NoSchedule taint on a node with a pod: it stays, counted misscheduled")
t.ok("n3" in nodes_of("every"), "the pod is still there")
update_node("n3", lambda n: n.spec.taints.add(key="evict", effect="NoExecute"))
t.ok(c.wait_for(lambda: "n3" not in nodes_of("every") and "n3" not in nodes_of("tolerant")),
     "untolerated NoExecute taint: the pods go")
t.ok(wait_status("every", desiredNumberScheduled=3, numberMisscheduled=0), "none misscheduled then")
update_node("n3", lambda n: n.spec.ClearField("taints"))
t.ok(c.wait_for(lambda: nodes_of("every") == ALL4 and nodes_of("tolerant") == ["n3", "n5"]),
     "taints removed: the pods come back")

# ---- cordon and drain: the daemon pod tolerates unschedulable, as in Kubernetes
update_node("n1", lambda n: setattr(n.spec, "unschedulable", True))
old = [p.metadata.name for p in pods_of("every") if p.spec.nodeName == "n1"]
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=old[0] if old else "x"))
t.ok(c.wait_for(lambda: [p for p in pods_of("every") if p.spec.nodeName == "n1" and p.metadata.name not in old]),
     "cordoned and drained: the daemon pod is made again and bound there")
update_node("n1", lambda n: setattr(n.spec, "unschedulable", False))

# ---- a failed daemon pod is deleted and made again
fake_ready.clear()
victim = [p.metadata.name for p in pods_of("every") if p.spec.nodeName == "n2"]
for _ in range(20):
    p = api.call("Pods", "Get", pb.GetRequest(namespace="default", name=victim[0]))
    p.status.phase = "Failed"
    if api.try_call("Pods", "UpdateStatus", p)[1] is None:
        break
t.ok(c.wait_for(lambda: [p for p in pods_of("every") if p.spec.nodeName == "n2" and p.metadata.name != victim[0]]),
     "a failed daemon pod is replaced")
ev = events("every", "FailedDaemonPod")
t.ok(ev and ev[0].type == "Warning" and ev[0].message ==
     "Found failed daemon pod default/%s on node n2, will try to kill it" % victim[0], "FailedDaemonPod event")
fake_ready.set()

# ---- a node not Ready gets none until it is
api.call("Nodes", "Create", schedutil.node("n6", ready="False"))
time.sleep(0.5)
t.ok("n6" not in nodes_of("every", bound=False), "a node not Ready: no pod (not-ready NoSchedule)")
update_node("n6", lambda n: [x.__setattr__("status", "True") for x in n.status.conditions if x.type == "Ready"],
            "UpdateStatus")
t.ok(c.wait_for(lambda: "n6" in nodes_of("every")), "Ready: it gets its pod")
api.call("Nodes", "Delete", pb.DeleteRequest(name="n6"))
t.ok(c.wait_for(lambda: nodes_of("every") == ALL4), "deleted again")

# ---- rolling update, maxUnavailable 1
t.ok(wait_status("every", desiredNumberScheduled=4, numberAvailable=4, updatedNumberScheduled=4),
     "all available before the update")
fake_ready.clear()
hash0 = pods_of("every")[0].metadata.labels["controller-revision-hash"]
update_ds("every", lambda d: d.spec.template.spec.containers[0].env.add(name="V", value="2"))


def unavailable_nodes():
    ok = {p.spec.nodeName for p in pods_of("every") if ready(p)}
    return len([n for n in ALL4 if n not in ok])


def new_pods():
    return [p for p in pods_of("every") if p.metadata.labels["controller-revision-hash"] != hash0]


# pods on the Node objects stay unready now: the rollout waits on the first of them
t.ok(c.wait_for(lambda: [p for p in new_pods() if is_fake(p.spec.nodeName)]), "an old pod replaced by a new one")
time.sleep(1)
t.ok(len([p for p in new_pods() if not ready(p)]) == 1 and unavailable_nodes() == 1,
     "and no more while the new one is not available (maxUnavailable 1)")
if kubectl:
    rc, out, err = kubectl_run("rollout", "status", "ds/every", "--watch=false")
    t.like(out, 'Waiting for daemon set "every" rollout to finish: ', "kubectl rollout status: waiting (%s%s)" % (out, err))
else:
    t.skip("kubectl 1.32 not installed")
fake_ready.set()
worst = [0]
if kubectl:
    k = subprocess.Popen([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(khome, "cache"),
                          "rollout", "status", "ds/every", "--timeout=90s"], env=kenv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    c.on_teardown(lambda: k.poll() is None and k.kill())
done = c.wait_for(lambda: (worst.__setitem__(0, max(worst[0], unavailable_nodes())) or
                           (len(new_pods()) == 4 and len(pods_of("every", live=False)) == 4 and
                            status_is("every", updatedNumberScheduled=4, numberAvailable=4))),
                  timeout=90, interval=0.1)
t.ok(done, "the update rolled through every node")
t.ok(worst[0] <= 1, "never more than 1 node without an available pod (%d)" % worst[0])
t.ok(c.wait_for(lambda: [p for p in new_pods() if p.spec.nodeName == "kn" and ready(p)]),
     "the kubelet runs the new pod")
if kubectl:
    out = k.communicate(timeout=90)[0]
    t.ok(out.endswith('daemon set "every" successfully rolled out\n') and "Waiting for daemon set" in out,
         "kubectl rollout status follows it to the end (%s)" % out.strip().replace("\n", " | "))
else:
    t.skip("kubectl 1.32 not installed")

# ---- OnDelete
update_ds("tier-a", lambda d: d.spec.updateStrategy.CopyFrom(pb.DaemonSetUpdateStrategy(type="OnDelete")))
before = sorted(p.metadata.name for p in pods_of("tier-a"))
update_ds("tier-a", lambda d: d.spec.template.spec.containers[0].env.add(name="V", value="2"))
t.ok(wait_status("tier-a", desiredNumberScheduled=2, updatedNumberScheduled=0),
     "OnDelete: the template changed, no pod updated")
t.is_(sorted(p.metadata.name for p in pods_of("tier-a")), before, "and none replaced")
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=before[0]))
t.ok(wait_status("tier-a", desiredNumberScheduled=2, currentNumberScheduled=2, updatedNumberScheduled=1),
     "a pod deleted comes back updated")

# ---- maxSurge 1: the new pod first, beside the old one
update_ds("tolerant", lambda d: d.spec.updateStrategy.CopyFrom(pb.DaemonSetUpdateStrategy(
    type="RollingUpdate", rollingUpdate=pb.RollingUpdateDaemonSet(
        maxUnavailable=pb.IntOrString(type=0, intVal=0), maxSurge=pb.IntOrString(type=0, intVal=1)))))
fake_ready.clear()
update_ds("tolerant", lambda d: d.spec.template.spec.containers[0].env.add(name="V", value="2"))


def per_node(name):
    out = {}
    for p in pods_of(name):
        out.setdefault(p.spec.nodeName or target(p), []).append(p)
    return out


t.ok(c.wait_for(lambda: [n for n, ps in per_node("tolerant").items() if len(ps) == 2]),
     "maxSurge 1: a new pod beside the old one")
time.sleep(1)
t.is_(sorted(len(ps) for ps in per_node("tolerant").values()), [1, 2], "on one node at a time")
fake_ready.set()
t.ok(c.wait_for(lambda: sorted(len(ps) for ps in per_node("tolerant").values()) == [1, 1] and
                status_is("tolerant", updatedNumberScheduled=2, numberAvailable=2)),
     "old pods go once the new ones are available")

# ---- a pod the scheduler cannot place
api.call("Nodes", "Create", schedutil.node("n7", cpu="100m", labels={"tier": "c"}))
ds_obj("hungry", node_selector={"tier": "c"}, cpu="1")
ev = c.wait_for(lambda: events("hungry", "FailedPlacement"), timeout=ctest.DEADLINE)
t.ok(ev and ev[0].type == "Warning" and ev[0].message.startswith('failed to place pod on "n7": 0/')
     and "Insufficient cpu" in ev[0].message, "FailedPlacement: %s" % (ev[0].message if ev else None))
t.ok(wait_status("hungry", desiredNumberScheduled=1, currentNumberScheduled=1, numberReady=0, numberUnavailable=1),
     "status: 1 desired, scheduled (as Kubernetes counts a pod for the node), none ready")

# ---- restart: a new manager makes nothing twice
cms = [d for d in c.daemons if d.name == "controller-manager"]
cms[-1].stop()
c.start_controller_manager("--leader-elect=false")
api.call("Nodes", "Create", schedutil.node("n8", labels={"tier": "a"}))
t.ok(c.wait_for(lambda: nodes_of("tier-a") == ["n1", "n2", "n8"]), "after a restart: a new node gets its pod")
t.ok(c.wait_for(lambda: nodes_of("every") == ["kn", "n1", "n2", "n3", "n7", "n8"]), "every: on n8 too")
t.is_(len(pods_of("every", live=False)), 6, "nothing made twice")

# ---- a matching orphan is adopted; two pods on its node: the newer goes
stray = ctest.simple_pod("stray", nodeName="n1", terminationGracePeriodSeconds=0)
stray.metadata.labels["app"] = "tier-a"
api.call("Pods", "Create", stray)
t.ok(c.wait_for(lambda: [e for e in events("tier-a", "SuccessfulDelete") if e.message == "Deleted pod: stray"]),
     "an orphan matching the selector is adopted, and on a node that has its pod, deleted")
t.is_(nodes_of("tier-a"), ["n1", "n2", "n8"], "one pod a node still")

c.teardown()
t.done()
