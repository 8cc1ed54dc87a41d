#!/usr/bin/python3
# Disk full under the apiserver: its data directory on an 8 MiB tmpfs (made
# here, unmounted at exit even on failure). Writes fill it until they fail
# with RESOURCE_EXHAUSTED and a message saying the store is full; reads,
# lists, a watch already open and a new watch keep working; a SIGKILL
# while full loses nothing acknowledged; once space is freed writes succeed
# again and the open watch sees them. (Map growth and MDB_MAP_FULL with a
# small map are tested at the store level, t/unit/test_store: the
# apiserver's map starts at 1 GiB.)
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import faultutil as fu
import grpc

t = ctest.Tap()
ctest.need_root(t)
c = ctest.Cluster(t, "80-fault-disk")
pb = c.pb
disk = os.path.join(c.dir, "disk")
fu.tmpfs(c, disk, "8m")
filler = os.path.join(disk, "filler")
with open(filler, "wb") as f:
    f.write(b"\0" * (2 << 20))
data = os.path.join(disk, "data")
api = c.start_apiserver(data_dir=data)

api.call("Pods", "Create", fu.pod("marker", "other", "m"))  # a watch from "0" would be a snapshot
rv0 = int(api.call("Pods", "List", pb.ListRequest()).metadata.resourceVersion)
seen = []
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="d", resourceVersion=str(rv0)))


def watcher():
    try:
        for e in w:
            seen.append((e.type, e.object.metadata.name))
    except grpc.RpcError:
        pass


wt = threading.Thread(target=watcher, daemon=True)
wt.start()


def big(name, kb=100):
    p = fu.pod(name, "d", "x")
    p.metadata.annotations["blob"] = ("%s-" % name) * (kb * 1024 // (len(name) + 1))
    return p


acked, err = [], None
for i in range(400):
    r, e = api.try_call("Pods", "Create", big("p%d" % i))
    if e is not None:
        err = e
        break
    acked.append("p%d" % i)
t.ok(err is not None and err.code == grpc.StatusCode.RESOURCE_EXHAUSTED,
     "writes fill the disk, then fail with RESOURCE_EXHAUSTED (%d x 100 KiB written; %s)" % (len(acked), err))
t.like(err.message if err else None, "full", "the message says the store is full")
t.like(err.message if err else None, "no space left on the disk of the data directory", "and why: the disk")
t.diag("message: %r" % (err.message if err else None))
t.ok(c.api.alive(), "the apiserver keeps running")
r2, e2 = api.try_call("Pods", "Create", fu.pod("small", "d", "x"))
t.ok(e2 is not None and e2.code == grpc.StatusCode.RESOURCE_EXHAUSTED or r2 is not None,
     "a small write: RESOURCE_EXHAUSTED or stored (%s)" % e2)
if r2 is not None:
    acked.append("small")

# reads and watches keep working
g, ge = api.try_call("Pods", "Get", pb.GetRequest(namespace="d", name=acked[0] if acked else "p0"))
t.ok(g is not None, "Get works while full")
lst, le = api.try_call("Pods", "List", pb.ListRequest(namespace="d"))
t.ok(lst is not None and sorted(p.metadata.name for p in lst.items) == sorted(acked),
     "List works while full: every acknowledged pod (%d)" % len(acked))
t.ok(c.wait_for(lambda: len(seen) >= len(acked), timeout=ctest.DEADLINE) and [n for _, n in seen] == acked,
     "the open watch got every acknowledged create (%d)" % len(seen))
w2 = api.stream("Pods", "Watch", pb.ListRequest(namespace="d", resourceVersion=str(rv0)), timeout=ctest.DEADLINE)
got2 = []
try:
    for e in w2:
        got2.append(e.object.metadata.name)
        if len(got2) >= len(acked):
            break
except grpc.RpcError as e:
    t.diag("new watch: %s" % e)
w2.cancel()
t.is_(got2, acked, "a new watch from an old revision works while full")
t.is_(ctest.http_get(c.api_addr, "/healthz")[0], 200, "/healthz still 200")

# SIGKILL while full: nothing acknowledged lost
c.api.kill()
w.cancel()
api = c.start_apiserver(data_dir=data)
lst = api.call("Pods", "List", pb.ListRequest(namespace="d"))
t.is_(sorted(p.metadata.name for p in lst.items), sorted(acked), "SIGKILL while full, restart on the full disk: every acknowledged write there")
r3, e3 = api.try_call("Pods", "Create", big("still-full"))
t.ok(e3 is not None and e3.code == grpc.StatusCode.RESOURCE_EXHAUSTED, "still full after the restart: RESOURCE_EXHAUSTED")
seen2 = []
rv1 = int(lst.metadata.resourceVersion)
w3 = api.stream("Pods", "Watch", pb.ListRequest(namespace="d", resourceVersion=str(rv1)))


def watcher3():
    try:
        for e in w3:
            seen2.append((e.type, e.object.metadata.name))
    except grpc.RpcError:
        pass


threading.Thread(target=watcher3, daemon=True).start()

# free space: writes succeed again
os.unlink(filler)
ok_after = []
for i in range(5):
    r, e = api.try_call("Pods", "Create", big("after%d" % i))
    if r is not None:
        ok_after.append("after%d" % i)
    else:
        t.diag("after free: %s" % e)
t.is_(len(ok_after), 5, "space freed: writes succeed again")
d, de = api.try_call("Pods", "Delete", pb.DeleteRequest(namespace="d", name=acked[0], gracePeriodSeconds=0))
t.ok(d is not None, "deletes work again (%s)" % de)
t.ok(c.wait_for(lambda: [n for _, n in seen2] == ok_after + [acked[0]], timeout=ctest.DEADLINE),
     "a watch opened while full sees the new writes")
t.diag("FIGURES disk: written_until_full=%d KiB acked=%d" % (len(acked) * 100, len(acked)))
w3.cancel()
t.is_(c.api.stop(), 0, "SIGTERM: exit 0")
t.done()
