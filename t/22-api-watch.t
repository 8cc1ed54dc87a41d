#!/usr/bin/python3
# coracle-apiserver end to end: watch. Replay + live with no gap and no
# duplicate across reconnects, current state as ADDED, selector transitions
# (ADDED/DELETED when an object starts/stops matching), compaction
# (OUT_OF_RANGE), bookmarks, timeoutSeconds, and a watcher that never reads
# being cut off with RESOURCE_EXHAUSTED while the server's memory stays bounded.
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod
import grpc

t = ctest.Tap()
c = ctest.Cluster(t)
# under the sanitizers (CI), freed memory must not sit in ASan's quarantine, or
# the memory bound below would measure ASan rather than the server
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0"]))
api = c.start_apiserver("--compact-keep", "40", "--bookmark-interval", "1", "--watch-queue-bytes", "262144")
pb = c.pb


def take(it, n, timeout=ctest.DEADLINE):
    """n events from a watch iterator (with a deadline)."""
    out = []
    box = {}
    def run():
        try:
            for _ in range(n):
                out.append(next(it))
        except Exception as e:
            box["e"] = e
    th = threading.Thread(target=run)
    th.start()
    th.join(timeout)
    if th.is_alive():
        it.cancel()
        th.join()
    return out


def kinds(evs):
    return [(e.type, e.object.metadata.name) for e in evs]


# ---- list then watch from the list's revision ----
api.call("Pods", "Create", simple_pod("pre", ns="w"))
l = api.call("Pods", "List", pb.ListRequest(namespace="w"))
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="w", resourceVersion=l.metadata.resourceVersion))
a = api.call("Pods", "Create", simple_pod("a", ns="w"))
a.metadata.labels["x"] = "1"
a = api.call("Pods", "Update", a)
api.call("Pods", "Create", simple_pod("other", ns="elsewhere"))
api.call("Pods", "Delete", pb.DeleteRequest(namespace="w", name="a"))
evs = take(w, 3)
t.is_(kinds(evs), [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")], "list+watch: ADDED, MODIFIED, DELETED in order, other namespaces filtered")
t.is_(evs[1].object.metadata.labels["x"], "1", "MODIFIED carries the new object")
revs = [int(e.object.metadata.resourceVersion) for e in evs]
t.ok(revs == sorted(revs) and len(set(revs)) == 3, "strictly increasing revisions %r" % revs)
w.cancel()

# ---- unset resourceVersion: current state as ADDED, then live ----
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="w"))
api.call("Pods", "Create", simple_pod("b", ns="w"))
t.is_(kinds(take(w, 2)), [("ADDED", "pre"), ("ADDED", "b")], "current state as ADDED, then live")
w.cancel()

# ---- resume across a reconnect: no gap, no duplicate ----
l = api.call("Pods", "List", pb.ListRequest(namespace="r"))
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="r", resourceVersion=l.metadata.resourceVersion))
for i in range(6):
    api.call("Pods", "Create", simple_pod("r%d" % i, ns="r"))
first = take(w, 3)
w.cancel()
last = first[-1].object.metadata.resourceVersion
for i in range(6, 10):
    api.call("Pods", "Create", simple_pod("r%d" % i, ns="r"))
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="r", resourceVersion=last))
rest = take(w, 7)
names = [e.object.metadata.name for e in first + rest]
t.is_(names, ["r%d" % i for i in range(10)], "resume from the last revision seen: every event exactly once")
more = take(w, 1, timeout=0.5)
t.is_(more, [], "and nothing more")
w.cancel()

# ---- selectors: start/stop matching ----
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="s", labelSelector="app=web"))
s1 = api.call("Pods", "Create", simple_pod("s1", ns="s"))
s1.metadata.labels["app"] = "web"
s1 = api.call("Pods", "Update", s1)
s1.metadata.labels["tier"] = "x"
s1 = api.call("Pods", "Update", s1)
s1.metadata.labels["app"] = "db"
s1 = api.call("Pods", "Update", s1)
evs = take(w, 3)
t.is_(kinds(evs), [("ADDED", "s1"), ("MODIFIED", "s1"), ("DELETED", "s1")], "label selector: starts matching ADDED, stops matching DELETED")
t.is_(evs[2].object.metadata.resourceVersion, s1.metadata.resourceVersion, "that DELETED carries the change's revision")
w.cancel()
# kubelet-style: spec.nodeName
w = api.stream("Pods", "Watch", pb.ListRequest(fieldSelector="spec.nodeName=n1"))
api.call("Pods", "Create", simple_pod("k1", ns="s"))
api.call("Pods", "Create", simple_pod("k2", ns="s", nodeName="n2"))
api.call("Pods", "Bind", pb.Binding(metadata=meta("k1", "s"), target=pb.ObjectReference(kind="Node", name="n1")))
t.is_(kinds(take(w, 1)), [("ADDED", "k1")], "spec.nodeName=n1 watch sees only its pod, when bound")
w.cancel()
it = api.stream("Pods", "Watch", pb.ListRequest(fieldSelector="spec.containers=x"))
try:
    next(it)
    t.ok(False, "unsupported field in watch")
except grpc.RpcError as e:
    t.is_((e.code(), e.details()), (grpc.StatusCode.INVALID_ARGUMENT, "field label not supported: spec.containers"), "watch: unsupported field label")

# ---- future resourceVersion: waits for it ----
cur = int(api.call("Pods", "List", pb.ListRequest(limit=1)).metadata.resourceVersion)
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="f", resourceVersion=str(cur + 2)))
for i in range(4):
    api.call("Pods", "Create", simple_pod("f%d" % i, ns="f"))
t.is_(kinds(take(w, 2)), [("ADDED", "f2"), ("ADDED", "f3")], "a future resourceVersion: events after it only")
w.cancel()

# ---- bookmarks ----
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="bm", allowWatchBookmarks=True))
api.call("Nodes", "Create", pb.Node(metadata=meta("bm-node")))
evs = take(w, 1, timeout=5)
t.ok(evs and evs[0].type == "BOOKMARK", "idle watcher gets a BOOKMARK (interval 1 s)")
if evs:
    t.ok(int(evs[0].object.metadata.resourceVersion) >= 1 and not evs[0].object.metadata.name, "BOOKMARK carries only the revision (%s)" % evs[0].object.metadata.resourceVersion)
w.cancel()

# ---- timeoutSeconds ----
t0 = time.time()
it = api.stream("Pods", "Watch", pb.ListRequest(namespace="none", timeoutSeconds=1), timeout=ctest.DEADLINE)
n = 0
try:
    for _ in it:
        n += 1
    t.ok(0.8 < time.time() - t0 < 5, "timeoutSeconds ends the watch OK after ~1 s (%.1f s)" % (time.time() - t0))
except grpc.RpcError as e:
    t.ok(False, "timeoutSeconds ends OK, not %s" % e.code())

# ---- compaction: keep 40 revisions ----
old = api.call("Pods", "List", pb.ListRequest(namespace="c", limit=2))
for i in range(5):
    api.call("Pods", "Create", simple_pod("c%d" % i, ns="c"))
old = api.call("Pods", "List", pb.ListRequest(namespace="c", limit=2))
tok = getattr(old.metadata, "continue")
for i in range(60):
    api.call("Leases", "Create", pb.Lease(metadata=meta("l%d" % i, "c")))
it = api.stream("Pods", "Watch", pb.ListRequest(namespace="c", resourceVersion="3"))
try:
    next(it)
    t.ok(False, "watch from a compacted revision fails")
except grpc.RpcError as e:
    t.is_(e.code(), grpc.StatusCode.OUT_OF_RANGE, "watch from a compacted revision: OUT_OF_RANGE")
    t.like(e.details(), "too old resource version: 3 (", "Kubernetes' text: %s" % e.details())
_, e = api.try_call("Pods", "List", pb.ListRequest(namespace="c", limit=2, **{"continue": tok}))
t.is_(e.code if e else None, grpc.StatusCode.OUT_OF_RANGE, "continue from a compacted revision: OUT_OF_RANGE")
t.like(e.message if e else "", "The provided continue parameter is too old", "continue expired text")

# ---- a watcher that never reads: cut off, memory bounded ----
def rss_anon(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0

def hpack_lit(name, value):
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v

def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

slow = socket.socket()
slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
slow.connect(("127.0.0.1", int(c.api_addr.rsplit(":", 1)[1])))
hdrs = b"".join(hpack_lit(k, v) for k, v in [(":method", "POST"), (":scheme", "http"), (":path", "/coracle.v1.Pods/Watch"),
                                             (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers")])
req = pb.ListRequest(namespace="big").SerializeToString()
slow.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 4, 1, hdrs) +
             frame(0, 1, 1, b"\x00" + struct.pack(">I", len(req)) + req))
time.sleep(0.3)
fast = api.stream("Pods", "Watch", pb.ListRequest(namespace="big"))
got = []
def reader():
    try:
        for e in fast:
            got.append(e.object.metadata.name)
    except grpc.RpcError:
        pass
th = threading.Thread(target=reader)
th.start()
before = rss_anon(c.api.proc.pid)
N = 400
for i in range(N):
    bp = simple_pod("big%d" % i, ns="big")
    bp.metadata.annotations["blob"] = "x" * 32768
    api.call("Pods", "Create", bp)
after = rss_anon(c.api.proc.pid)
met = ctest.http_get(c.api_addr, "/metrics")[1]
t.like(met, "coracle_apiserver_watch_slow_ended_total 1\n", "the reader that never reads was ended (RESOURCE_EXHAUSTED)")
t.ok(after - before < 8 << 20, "server anonymous memory grew %d KiB for %d KiB of events" % ((after - before) >> 10, N * 32))
c.wait_for(lambda: len(got) >= N, timeout=ctest.DEADLINE)
t.is_(len(got), N, "a fast watcher on the same server got every event")
fast.cancel()
th.join()
slow.close()
t.ok(c.api.alive(), "server alive")
t.done()
