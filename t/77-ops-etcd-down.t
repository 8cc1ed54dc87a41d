#!/usr/bin/python3
# coracle-apiserver on etcd when etcd goes away and comes back: writes fail
# UNAVAILABLE naming etcd (nothing half-written), reads and watches keep
# being served from the replica, /readyz says 503 with the reason once the
# apiserver's watch on etcd is gone, and everything works again (readyz
# 200, writes, the watch resuming with no gap) once etcd is back.
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import etcdutil
from ctest import simple_pod
import grpc

t = ctest.Tap()
why = etcdutil.available()
if why:
    t.skip_all(why)
c = ctest.Cluster(t, "77-ops-etcd-down")
ec = etcdutil.EtcdCluster(c, members=1, name="etcd-own")
api = c.start_apiserver("--storage-backend", "etcd3", "--etcd-servers", ec.endpoints[0])
pb = c.pb

status, body = ctest.http_get(c.api_addr, "/readyz")
t.is_((status, body.strip()), (200, "ok"), "etcd up: /readyz 200")
rv0 = api.call("Pods", "Create", simple_pod("before")).metadata.resourceVersion
seen = []
w = api.stream("Pods", "Watch", pb.ListRequest(resourceVersion=rv0))
def watcher():
    try:
        for e in w:
            seen.append((e.type, e.object.metadata.name, int(e.object.metadata.resourceVersion)))
    except grpc.RpcError:
        pass
wt = threading.Thread(target=watcher)
wt.start()

ec.kill(0)
r, e = api.try_call("Pods", "Create", simple_pod("during"), timeout=60)
t.ok(r is None and e.code == grpc.StatusCode.UNAVAILABLE and "etcd" in e.message,
     "etcd down: a create fails UNAVAILABLE, naming etcd (%s)" % (e and e.message))
g, e = api.try_call("Pods", "Get", pb.GetRequest(name="before"))
t.ok(g is not None and g.metadata.resourceVersion == rv0, "... reads are still served from the replica")
ready = c.wait_for(lambda: (lambda s: s if s[0] == 503 else None)(ctest.http_get(c.api_addr, "/readyz")),
                   timeout=60, interval=0.2)
t.ok(ready is not None and "etcd" in ready[1], "... and /readyz says 503 with why (%r)" % (ready,))

ec.restart(0)
ok = c.wait_for(lambda: ctest.http_get(c.api_addr, "/readyz")[0] == 200, timeout=60, interval=0.2)
t.ok(ok, "etcd back: /readyz 200 again")
p = c.wait_for(lambda: api.try_call("Pods", "Create", simple_pod("after"))[0], timeout=60, interval=0.2)
t.ok(p is not None, "... creates work again")
t.is_(api.try_call("Pods", "Get", pb.GetRequest(name="during"))[1].code, grpc.StatusCode.NOT_FOUND,
      "... and the failed create left nothing")
c.wait_for(lambda: any(n == "after" for _, n, _ in seen), timeout=30)
w.cancel()
wt.join()
t.is_([n for _, n, _ in seen], ["after"], "the watch from before the outage saw the new pod once, nothing lost")
t.done()
