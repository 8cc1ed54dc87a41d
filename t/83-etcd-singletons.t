#!/usr/bin/python3
"""Node lifecycle and event expiry run on one apiserver of several.

Two apiservers A and B on one etcd. Each work runs on the holder of its
Lease in kube-system (node-lifecycle-controller,
coracle-apiserver-event-ttl; client-go's semantics, 15 s): one apiserver
marks a silent node Unknown and its pods not Ready, the other does not;
one expires events. The holder is killed: the other takes the Lease once
it ran out and does the work from then on. The killed one, started again
on its address, is the same candidate and stands by. The holder then
stops cleanly (SIGTERM): it gives its Leases up (client-go's
ReleaseOnCancel), and the other takes them at its next try, not 15 s on.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest  # noqa: E402
import etcdutil  # noqa: E402
from ctest import meta, simple_pod  # noqa: E402

t = ctest.Tap()
why = etcdutil.available()
if why:
    t.skip_all(why)
pb = ctest.pb
c = ctest.Cluster(t, "83-etcd-singletons")
ec = etcdutil.EtcdCluster(c, members=1)
NL, EV = "node-lifecycle-controller", "coracle-apiserver-event-ttl"


class Api:
    def __init__(self, name):
        self.name = name
        self.addr = "127.0.0.1:%d" % ctest.free_port()

    def start(self):
        self.d = c.start("apiserver-" + self.name, [
            c.bin("coracle-apiserver"), "--listen", self.addr,
            "--data-dir", os.path.join(c.dir, "api-" + self.name), "--storage-backend", "etcd3",
            "--etcd-servers", ",".join(ec.endpoints), "--node-monitor-grace", "2", "--event-ttl", "2"])
        c.wait_ready(self.addr, self.d)
        self.cl = ctest.Client(self.addr)
        c.clients.append(self.cl)

    def log(self):
        with open(self.d.log_path, errors="replace") as f:
            return f.read()


A, B = Api("A"), Api("B")
A.start()
B.start()
APIS = {A.addr: A, B.addr: B}


def holder(name, via):
    l, _ = via.cl.try_call("Leases", "Get", pb.GetRequest(namespace="kube-system", name=name))
    m = l and re.search(r"_(127\.0\.0\.1:\d+)$", l.spec.holderIdentity)
    return APIS.get(m.group(1)) if m else None


h = c.wait_for(lambda: holder(NL, B), timeout=30)
he = c.wait_for(lambda: holder(EV, B), timeout=30)
t.ok(h and he, "the Leases are held: %s by %s, %s by %s" % (NL, h and h.name, EV, he and he.name))


def ready(n):
    r = [x for x in n.status.conditions if x.type == "Ready"]
    return r[0].status if r else None


def silent_node(name, via):
    """A node whose kubelet stopped, with a pod Ready on it; waits for both marks."""
    via.cl.call("Leases", "Create", pb.Lease(metadata=meta(name, "kube-node-lease"),
                                             spec=pb.LeaseSpec(holderIdentity=name, leaseDurationSeconds=2)))
    via.cl.call("Nodes", "Create", pb.Node(metadata=meta(name), status=pb.NodeStatus(conditions=[
        pb.NodeCondition(type="Ready", status="True", reason="KubeletReady")])))
    p = via.cl.call("Pods", "Create", simple_pod("p-" + name, nodeName=name))
    p.status.conditions.add(type="Ready", status="True")
    via.cl.call("Pods", "UpdateStatus", p)
    node = c.wait_for(lambda: ready(via.cl.call("Nodes", "Get", pb.GetRequest(name=name))) == "Unknown",
                      timeout=60)
    pod = c.wait_for(lambda: ready(via.cl.call("Pods", "Get", pb.GetRequest(name="p-" + name))) == "False",
                     timeout=60)
    return node and pod


def marked_by(name):
    return [a.name for a in (A, B) if "node %s: no lease renewal" % name in a.log()]


t.ok(silent_node("n1", B), "a silent node goes Unknown, its pod not Ready")
t.is_(marked_by("n1"), [h.name], "marked by the holder of %s only" % NL)
now = int(time.time())
B.cl.call("Events", "Create", pb.Event(metadata=meta("old", "default"), involvedObject=pb.ObjectReference(
    kind="Pod", name="old"), reason="R", message="old", lastTimestamp=pb.Time(seconds=now - 60), count=1))
t.ok(c.wait_for(lambda: B.cl.try_call("Events", "Get", pb.GetRequest(name="old"))[1] is not None, timeout=30),
     "an event past the TTL is deleted")

# ---- the holder dies: the other takes over once the Lease ran out ----
other = B if h is A else A
t0 = time.time()
h.d.kill()
got = c.wait_for(lambda: holder(NL, other) is other and holder(EV, other) is other, timeout=60)
took = time.time() - t0
t.ok(got and took > 10, "%s killed: %s holds both Leases after %.1f s (not before the 15 s Lease ran out, "
     "seen from its last renewal)" % (h.name, other.name, took))
t.ok("node lifecycle: running on this apiserver" in other.log(), "and runs node lifecycle")
t.ok(silent_node("n2", other), "a node silent since is marked")
t.ok("node n2: no lease renewal" in other.log(), "by %s" % other.name)

# ---- the killed one, on its address again, is the same candidate ----
h.start()
time.sleep(5)
t.ok(holder(NL, h) is other, "%s started again stands by: %s keeps the Lease" % (h.name, other.name))

# ---- a holder that stops (SIGTERM) gives its Leases up: the other takes them at its next try ----
t0 = time.time()
other.d.stop()
got = c.wait_for(lambda: holder(NL, h) is h and holder(EV, h) is h, timeout=60)
took = time.time() - t0
t.ok(got and took < 10, "%s stopped: %s holds both Leases after %.1f s (well before the 15 s Lease "
     "would run out)" % (other.name, h.name, took))
t.ok("released lease kube-system/%s" % NL in other.log() and "released lease kube-system/%s" % EV in other.log(),
     "%s released them on its way out" % other.name)

# ---- requests waiting for the replica to reach their resourceVersion when it stops ----
# (a write and a gRPC and a REST list from the future: held up to 3 s, longer than the
# 2 s drain; under the sanitizers LeakSanitizer would name what was left)
future = str(int(h.cl.call("Pods", "List", pb.ListRequest(namespace="default")).metadata.resourceVersion)
             + 1000000)
pod = h.cl.call("Pods", "Get", pb.GetRequest(namespace="default", name="p-n2"))
pod.metadata.resourceVersion = future
held = [h.cl.channel.unary_unary("/coracle.v1.Pods/Update", request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=pb.Pod.FromString).future(pod, timeout=ctest.DEADLINE),
        h.cl.channel.unary_unary("/coracle.v1.Pods/List", request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=pb.PodList.FromString).future(
            pb.ListRequest(namespace="default", resourceVersion=future), timeout=ctest.DEADLINE)]
curl = subprocess.Popen(["curl", "-s", "--max-time", "20", "http://%s/api/v1/pods?resourceVersion=%s" % (h.addr, future)],
                        stdout=subprocess.DEVNULL)
c.on_teardown(curl.kill)
time.sleep(0.5)
rc = h.d.stop()
for f in held:
    f.exception()  # answered or cut: either way done
curl.wait()
leaks = [ln for ln in h.log().splitlines() if "Sanitizer" in ln]
t.ok(rc == 0 and not leaks, "stopped with a write and two lists waiting: exit %s, clean (%s)" % (rc, leaks[:3]))
t.done()
