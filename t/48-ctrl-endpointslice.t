#!/usr/bin/python3
# The EndpointSlice controller of coracle-controller-manager: a Service's
# slices follow the pods it selects (IP given, Ready changing, deleted,
# terminating), named target ports resolve per pod, more than
# --max-endpoints-per-slice endpoints split into several slices with few
# writes, publishNotReadyAddresses, a Service without endpoints keeps one
# empty slice. Pods are made over gRPC and their status written by the
# test (no kubelet); a node whose Lease stops being renewed has its pods
# dropped from the ready endpoints within the node grace. Last, end to end
# (root, runc, CNI plugins): a real scheduler and kubelet run a Deployment's
# pods on a CNI bridge of the test's own, and the slice lists their IPs.
import json
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver("--node-monitor-grace", "3")
pb = c.pb
cm = c.start_controller_manager("--leader-elect=false")
NS = "default"


def mkpod(name, ip, ready=True, labels=None, ports=None, finalizers=None, node="ghost"):
    """A pod bound to a node nobody runs (no scheduler or kubelet takes it), its status as given."""
    m = meta(name, NS, labels=labels or {"app": "web"})
    if finalizers:
        m.finalizers.extend(finalizers)
    p = api.call("Pods", "Create", pb.Pod(metadata=m, spec=pb.PodSpec(nodeName=node, containers=[
        pb.Container(name="c", image="busybox", ports=ports or [pb.ContainerPort(name="http", containerPort=8080)])])))
    if ip:
        set_status(p, ip, ready)
    return p


def set_status(p, ip, ready):
    p = api.call("Pods", "Get", pb.GetRequest(namespace=NS, name=p.metadata.name))
    p.status.podIP = ip
    p.status.phase = "Running"
    del p.status.conditions[:]
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    return api.call("Pods", "UpdateStatus", p)


def mksvc(name, selector, **spec):
    ports = spec.pop("ports", [pb.ServicePort(name="http", port=80, targetPort=pb.IntOrString(type=1, strVal="http"))])
    return api.call("Services", "Create", pb.Service(metadata=meta(name, NS, labels={"team": "a"}),
                                                     spec=pb.ServiceSpec(selector=selector, ports=ports, **spec)))


def slices(svc):
    return [s for s in api.call("EndpointSlices", "List", pb.ListRequest(namespace=NS)).items
            if s.metadata.labels.get("kubernetes.io/service-name") == svc]


def eps(svc):
    """address -> (ready, serving, terminating, ports) over all the Service's slices"""
    out = {}
    for s in slices(svc):
        for e in s.endpoints:
            out[e.addresses[0]] = (e.conditions.ready, e.conditions.serving, e.conditions.terminating,
                                   tuple(p.port for p in s.ports))
    return out


def settle(svc, fn):
    return c.wait_for(lambda: fn(eps(svc)), timeout=30)


# ---- a Service before its pods: one empty slice ----
svc = mksvc("web", {"app": "web"})
t.ok(c.wait_for(lambda: len(slices("web")) == 1), "a Service with no pods: one slice")
s = slices("web")[0]
ref = s.metadata.ownerReferences[0] if s.metadata.ownerReferences else None
t.ok(s.metadata.name.startswith("web-") and s.addressType == "IPv4" and not s.endpoints
     and s.metadata.labels["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
     and s.metadata.labels["team"] == "a"
     and ref and ref.kind == "Service" and ref.name == "web" and ref.uid == svc.metadata.uid and ref.controller,
     "named web-<random>, managed-by, the Service's labels, owned by the Service (%s)" % s.metadata)

# ---- pods come ----
mkpod("p0", "10.2.0.1")
mkpod("p1", "10.2.0.2", ready=False)
mkpod("nope", None)  # no IP: not listed
mkpod("other", "10.2.0.9", labels={"app": "db"})
t.ok(settle("web", lambda e: set(e) == {"10.2.0.1", "10.2.0.2"}), "the pods with an IP the Service selects")
e = eps("web")
t.ok(e["10.2.0.1"] == (True, True, False, (8080,)) and e["10.2.0.2"] == (False, False, False, (8080,)),
     "ready / serving follow the pod's Ready; the named port resolved to 8080 (%s)" % e)
s = slices("web")
t.ok(len(s) == 1, "one slice still: the placeholder was reused (%d)" % len(s))
ep0 = [x for x in s[0].endpoints if x.addresses[0] == "10.2.0.1"][0]
t.ok(ep0.targetRef.kind == "Pod" and ep0.targetRef.name == "p0" and ep0.targetRef.namespace == NS and ep0.targetRef.uid,
     "targetRef: the pod")

# ---- Ready changes, delete ----
set_status(api.call("Pods", "Get", pb.GetRequest(namespace=NS, name="p1")), "10.2.0.2", True)
t.ok(settle("web", lambda e: e.get("10.2.0.2", (0,))[0] is True), "p1 turns Ready: ready")
set_status(api.call("Pods", "Get", pb.GetRequest(namespace=NS, name="p0")), "10.2.0.1", False)
t.ok(settle("web", lambda e: e.get("10.2.0.1", (1,))[0] is False), "p0 not Ready any more: not ready")
api.call("Pods", "Delete", pb.DeleteRequest(namespace=NS, name="p0", gracePeriodSeconds=0))
t.ok(settle("web", lambda e: set(e) == {"10.2.0.2"}), "p0 deleted: gone from the slice")

# ---- terminating: a pod held by a finalizer while it is deleted ----
mkpod("term", "10.2.0.3", finalizers=["example.com/hold"])
t.ok(settle("web", lambda e: "10.2.0.3" in e), "term listed")
api.call("Pods", "Delete", pb.DeleteRequest(namespace=NS, name="term", gracePeriodSeconds=0))
t.ok(settle("web", lambda e: e.get("10.2.0.3", (0, 0, 0))[:3] == (False, True, True)),
     "a terminating pod: ready false, serving true, terminating true (%s)" % (eps("web").get("10.2.0.3"),))
api.update("Pods", NS, "term", lambda p: p.metadata.ClearField("finalizers"))

# ---- named ports per pod ----
mkpod("alt", "10.2.0.4", ports=[pb.ContainerPort(name="http", containerPort=9090)])
t.ok(settle("web", lambda e: e.get("10.2.0.4", (0, 0, 0, ()))[3] == (9090,) and e.get("10.2.0.2", ())[3] == (8080,)),
     "a pod naming the port 9090: a slice of its own ports (%s)" % eps("web"))
t.ok(len(slices("web")) == 2, "two port sets, two slices")

# ---- publishNotReadyAddresses ----
mksvc("pub", {"app": "web"}, publishNotReadyAddresses=True, ports=[pb.ServicePort(port=80)])
mkpod("nr", "10.2.0.5", ready=False)
t.ok(settle("pub", lambda e: e.get("10.2.0.5", (0, 1))[:2] == (True, False)),
     "publishNotReadyAddresses: a not-ready pod is ready, not serving (%s)" % (eps("pub").get("10.2.0.5"),))
t.ok(settle("pub", lambda e: all(v[3] == (80,) for v in e.values()) and len(e) >= 3),
     "a numeric targetPort: the same port for every pod")

# ---- more than 100 endpoints ----
mksvc("big", {"app": "big"}, ports=[pb.ServicePort(port=80)])
for i in range(230):
    mkpod("b%03d" % i, "10.3.%d.%d" % (i // 200, i % 200 + 1), labels={"app": "big"})
t.ok(settle("big", lambda e: len(e) == 230), "230 pods: all listed (%d)" % len(eps("big")))
sizes = sorted(len(s.endpoints) for s in slices("big"))
t.ok(max(sizes) <= 100 and len(sizes) == 3 and sum(sizes) == 230,
     "at most 100 a slice, in 3 slices (%s)" % sizes)
before = {s.metadata.name: s.metadata.resourceVersion for s in slices("big")}
set_status(api.call("Pods", "Get", pb.GetRequest(namespace=NS, name="b007")), "10.3.0.8", False)
t.ok(settle("big", lambda e: e["10.3.0.8"][0] is False), "one pod not Ready")
after = {s.metadata.name: s.metadata.resourceVersion for s in slices("big")}
changed = [n for n in after if after[n] != before.get(n)]
t.ok(set(after) == set(before) and len(changed) == 1,
     "one pod's change rewrites one slice, in place (%s)" % changed)

# ---- a node that goes silent: its pods leave the ready endpoints ----
api.call("Nodes", "Create", pb.Node(metadata=meta("n1"), status=pb.NodeStatus(
    conditions=[pb.NodeCondition(type="Ready", status="True")])))
lease = api.call("Leases", "Create", pb.Lease(metadata=meta("n1", "kube-node-lease"),
                                              spec=pb.LeaseSpec(holderIdentity="n1", leaseDurationSeconds=3)))
renewing = threading.Event()
renewing.set()


def renew():
    i = 0
    while renewing.is_set():
        i += 1
        api.update("Leases", "kube-node-lease", "n1", lambda le: setattr(le.spec.renewTime, "seconds", i))
        time.sleep(0.5)


th = threading.Thread(target=renew, daemon=True)
th.start()
mkpod("onn1", "10.2.0.7", node="n1")
t.ok(settle("web", lambda e: e.get("10.2.0.7", (0,))[0] is True), "a pod on a live node: ready")
ep = [x for s in slices("web") for x in s.endpoints if x.addresses[0] == "10.2.0.7"][0]
t.is_(ep.nodeName, "n1", "nodeName: the pod's node")
renewing.clear()
th.join()
t.ok(settle("web", lambda e: e.get("10.2.0.7", (1,))[0] is False),
     "the node's Lease not renewed: its pod is not ready within the grace (%s)" % (eps("web").get("10.2.0.7"),))

# ---- a selector that stops matching, the Service deleted ----
api.update("Services", NS, "pub", lambda s: s.spec.selector.__setitem__("app", "none"))
t.ok(c.wait_for(lambda: len(slices("pub")) == 1 and not slices("pub")[0].endpoints),
     "the selector matches nothing: one empty slice")
api.call("Services", "Delete", pb.DeleteRequest(namespace=NS, name="pub"))
t.ok(c.wait_for(lambda: not slices("pub")), "the Service deleted: its slices go with it")

# ---- end to end: scheduler, kubelet, CNI ----
need = [f for f in ("/usr/sbin/runc", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local") if not os.path.exists(f)]
if os.geteuid() != 0 or need:
    t.skip("needs root and " + ", ".join(need or ["runc"]), 2)
    t.done()
import klet

root = os.path.join(c.dir, "kroot")
bridge = "ces%d" % random.randrange(10000, 99999)
net = random.randrange(1, 250)


def cleanup():
    ctest.node_cleanup(root, os.path.join(root, "runc"))
    subprocess.run(["ip", "link", "del", bridge], stderr=subprocess.DEVNULL)


c.on_teardown(cleanup)
# the kubelet renews its Lease every 10 s: the default grace from here on
c.api.stop()
api = c.start_apiserver()
klet.import_busybox(t, root)
confdir = os.path.join(c.dir, "cni")
os.makedirs(confdir)
json.dump({"cniVersion": "1.0.0", "name": "coracle-es", "plugins": [
    {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.252.%d.0/24" % net}]],
              "dataDir": os.path.join(c.dir, "ipam")}}]},
    open(os.path.join(confdir, "10-test.conflist"), "w"))
c.start_scheduler()
c.start_kubelet("node1", "--healthz-listen", "", "--cni-conf-dir", confdir, root_dir=root)
labels = {"app": "e2e"}
tmpl = pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels=labels), spec=pb.PodSpec(
    terminationGracePeriodSeconds=1, containers=[pb.Container(
        name="web", image="progrium/busybox", imagePullPolicy="IfNotPresent",
        command=["sh", "-c", "mkdir /www; exec httpd -f -p 8080 -h /www"],
        ports=[pb.ContainerPort(name="http", containerPort=8080)])]))
api.call("Deployments", "Create", pb.Deployment(metadata=meta("e2e", NS), spec=pb.DeploymentSpec(
    replicas=2, selector=pb.LabelSelector(matchLabels=labels), template=tmpl)))
mksvc("e2e", labels)


def running_ips():
    return sorted(p.status.podIP for p in api.call("Pods", "List", pb.ListRequest(namespace=NS)).items
                  if p.metadata.labels.get("app") == "e2e" and p.status.podIP and cm_ready(p))


def cm_ready(p):
    return any(x.type == "Ready" and x.status == "True" for x in p.status.conditions)


t.ok(c.wait_for(lambda: len(running_ips()) == 2, timeout=90), "the Deployment's 2 pods run with IPs (%s)"
     % running_ips())
ips = running_ips()
t.ok(settle("e2e", lambda e: sorted(e) == ips and all(v[0] and v[3] == (8080,) for v in e.values())),
     "the Service's slice lists both, ready, on port 8080 (%s)" % eps("e2e"))
api.call("Deployments", "Delete", pb.DeleteRequest(namespace=NS, name="e2e"))
c.wait_for(lambda: not [p for p in api.call("Pods", "List", pb.ListRequest(namespace=NS)).items
                        if p.metadata.labels.get("app") == "e2e"], timeout=60)
t.done()
