#!/usr/bin/python3
# coracle-apiserver end to end: durability across a crash (SIGKILL during
# concurrent writes: every acknowledged write is there after restart, and a
# watcher resumes from its last revision with no gap and no duplicate), the
# event TTL, and the node lifecycle (lease not renewed -> node Unknown, its
# pods not Ready).
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod
import grpc

t = ctest.Tap()
c = ctest.Cluster(t)
opts = ("--event-ttl", "2", "--node-monitor-grace", "2")
api = c.start_apiserver(*opts)
pb = c.pb

# ---- crash during concurrent writes ----
rv0 = api.call("Pods", "List", pb.ListRequest()).metadata.resourceVersion
seen1 = []
watch_done = threading.Event()
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="d", resourceVersion=rv0))
def watcher():
    try:
        for e in w:
            seen1.append((e.type, e.object.metadata.name, int(e.object.metadata.resourceVersion)))
    except grpc.RpcError:
        pass
    watch_done.set()
wt = threading.Thread(target=watcher)
wt.start()

acked = []
lock = threading.Lock()
stop = threading.Event()
def writer(k):
    cl = ctest.Client(c.api_addr)
    i = 0
    while not stop.is_set():
        name = "w%d-%d" % (k, i)
        r, e = cl.try_call("Pods", "Create", simple_pod(name, ns="d"))
        if r is not None:
            with lock:
                acked.append(name)
        elif e.code == grpc.StatusCode.UNAVAILABLE:
            break
        i += 1
    cl.close()
ws = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
[x.start() for x in ws]
c.wait_for(lambda: len(acked) >= 150, timeout=ctest.DEADLINE)
c.api.kill()
stop.set()
[x.join() for x in ws]
watch_done.wait(ctest.DEADLINE)
t.ok(len(acked) >= 150, "%d creates acknowledged before SIGKILL" % len(acked))

api = c.start_apiserver(*opts)
names = {p.metadata.name for p in api.call("Pods", "List", pb.ListRequest(namespace="d")).items}
missing = [n for n in acked if n not in names]
t.is_(missing, [], "every acknowledged write survived the crash (%d stored)" % len(names))

last = seen1[-1][2] if seen1 else int(rv0)
w2 = api.stream("Pods", "Watch", pb.ListRequest(namespace="d", resourceVersion=str(last)))
seen2 = []
def watcher2():
    try:
        for e in w2:
            seen2.append((e.type, e.object.metadata.name, int(e.object.metadata.resourceVersion)))
    except grpc.RpcError:
        pass
wt2 = threading.Thread(target=watcher2)
wt2.start()
c.wait_for(lambda: len(seen1) + len(seen2) >= len(names), timeout=ctest.DEADLINE)
w2.cancel()
wt.join()
wt2.join()
all_names = [n for _, n, _ in seen1 + seen2]
t.is_(sorted(all_names), sorted(names), "watch before + resumed watch after restart: every object once (%d + %d events)" % (len(seen1), len(seen2)))
revs = [r for _, _, r in seen1 + seen2]
t.ok(revs == sorted(revs) and len(set(revs)) == len(revs), "revisions strictly increasing across the restart")
t.ok(all(ty == "ADDED" for ty, _, _ in seen1 + seen2), "all ADDED")

# ---- event TTL ----
now = int(time.time())
def ev(name, when):
    return pb.Event(metadata=meta(name, "default"), involvedObject=pb.ObjectReference(kind="Pod", name=name),
                    reason="R", message=name, lastTimestamp=pb.Time(seconds=when), count=1)
api.call("Events", "Create", ev("old", now - 60))
api.call("Events", "Create", ev("fresh", now + 60))
gone = c.wait_for(lambda: api.try_call("Events", "Get", pb.GetRequest(name="old"))[1] is not None, timeout=30)
t.ok(gone, "an event past the TTL is deleted")
t.ok(api.try_call("Events", "Get", pb.GetRequest(name="fresh"))[0] is not None, "a fresh event stays")

# ---- node lifecycle ----
# the lease first: a node the monitor finds with no lease seen counts from
# the apiserver's start, which may be more than the grace ago by now
lease = api.call("Leases", "Create", pb.Lease(metadata=meta("n1", "kube-node-lease"), spec=pb.LeaseSpec(holderIdentity="n1", leaseDurationSeconds=2)))
node = pb.Node(metadata=meta("n1"), status=pb.NodeStatus(conditions=[pb.NodeCondition(type="Ready", status="True", reason="KubeletReady")]))
api.call("Nodes", "Create", node)
pod = api.call("Pods", "Create", simple_pod("np", nodeName="n1"))
pod.status.conditions.add(type="Ready", status="True")
api.call("Pods", "UpdateStatus", pod)
def ready(n):
    return [x for x in n.status.conditions if x.type == "Ready"][0]
t_end = time.time() + 3
while time.time() < t_end:  # the kubelet renews its lease
    lease.spec.renewTime.seconds = int(time.time())
    lease = api.call("Leases", "Update", lease)
    time.sleep(0.4)
t.is_(ready(api.call("Nodes", "Get", pb.GetRequest(name="n1"))).status, "True", "renewed lease: node stays Ready")
t0 = time.time()
n = c.wait_for(lambda: (lambda n: n if ready(n).status == "Unknown" else None)(api.call("Nodes", "Get", pb.GetRequest(name="n1"))), timeout=30)
t.ok(n is not None, "lease not renewed: node Ready=Unknown after %.1f s" % (time.time() - t0))
if n:
    r = ready(n)
    t.is_((r.reason, r.message), ("NodeStatusUnknown", "Kubelet stopped posting node status."), "Kubernetes' reason and message")
p = c.wait_for(lambda: (lambda p: p if [x for x in p.status.conditions if x.type == "Ready"][0].status == "False" else None)(api.call("Pods", "Get", pb.GetRequest(name="np"))), timeout=30)
t.ok(p is not None, "its pods become Ready=False")
# ---- SIGTERM with writes in flight: each answered OK is durable ----
futs = []
fn = api.channel.unary_unary("/coracle.v1.Pods/Create", request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=pb.Pod.FromString)
for i in range(500):
    futs.append(("t%d" % i, fn.future(simple_pod("t%d" % i, ns="term"), timeout=ctest.DEADLINE)))
t0 = time.time()
rc = c.api.stop()
t.is_(rc, 0, "SIGTERM with calls in flight: exit 0 (%.2f s)" % (time.time() - t0))
okd, other = [], set()
for name, f in futs:
    try:
        f.result()
        okd.append(name)
    except grpc.RpcError as e:
        other.add(e.code())
t.ok(other <= {grpc.StatusCode.UNAVAILABLE}, "the rest: UNAVAILABLE (%d answered OK, %r)" % (len(okd), sorted(str(x) for x in other)))
api = c.start_apiserver(*opts)
have = {p.metadata.name for p in api.call("Pods", "List", pb.ListRequest(namespace="term")).items}
t.is_([n for n in okd if n not in have], [], "every create answered OK before the exit is stored")
t.is_(c.api.stop(), 0, "SIGTERM: exit 0")
t.done()
