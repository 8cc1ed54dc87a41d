#!/usr/bin/python3
"""coracle-scheduler end to end: it keeps working across apiserver restarts
(informers resume from their last revision, with backoff while the apiserver
is away), and when its revision has been compacted meanwhile it re-lists and
applies the difference (a pod deleted while it was away frees its node)."""
import os
import signal
import sys
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest  # noqa: E402
import schedutil as su  # noqa: E402

t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
data = os.path.join(c.dir, "data")
api = c.start_apiserver("--compact-keep", "20", data_dir=data)
sched = c.start_scheduler("--backoff-initial", "200ms", "--backoff-max", "1s")

api.call("Nodes", "Create", su.node("n1", cpu="2", mem="4Gi"))
api.call("Pods", "Create", su.pod("p1", cpu="100m"))
t.is_(su.wait_bound(c, api, "p1"), "n1", "p1 bound")


def restart_apiserver():
    c.api.stop()
    return c.start_apiserver("--compact-keep", "20", data_dir=data)


# ---- 1. restart mid-stream: the scheduler resumes its watches
api = restart_apiserver()
su.call_retry(api, "Pods", "Create", su.pod("p2", cpu="100m"))
t0 = time.time()
t.is_(su.wait_bound(c, api, "p2", timeout=ctest.DEADLINE), "n1", "pod created after the restart is bound")
t.diag("bound %.2f s after the apiserver came back" % (time.time() - t0))
t.ok(sched.alive(), "scheduler survived the restart")

# a restart while pods are waiting: the pending one is placed after it
api.call("Pods", "Create", su.pod("big1", cpu="1500m"))
t.is_(su.wait_bound(c, api, "big1"), "n1", "big1 bound (1700m of 2000m used)")
api.call("Pods", "Create", su.pod("big2", cpu="1500m"))
want = "0/1 nodes are available: 1 Insufficient cpu."
t.is_(su.wait_failed_message(c, api, "big2", want), want, "big2 waits for room")

# ---- 2. away long enough to miss compacted history: re-list and diff
os.kill(sched.proc.pid, signal.SIGSTOP)
try:
    # restart first, so that nothing of what follows sits in the scheduler's socket
    api = restart_apiserver()
    su.call_retry(api, "Pods", "Delete", pb.DeleteRequest(namespace="default", name="big1",
                                                          gracePeriodSeconds=0))
    for i in range(30):  # churn past --compact-keep, ignored by our scheduler
        api.call("Pods", "Create", su.pod("churn%d" % i, scheduler="nobody"))
    for i in range(30):
        api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="churn%d" % i,
                                                    gracePeriodSeconds=0))
    # the old revisions are really gone: a watch from revision 1 is refused
    it = api.stream("Pods", "Watch", pb.ListRequest(resourceVersion="1"), timeout=ctest.DEADLINE)
    code = None
    try:
        for _ in it:
            pass
    except grpc.RpcError as e:
        code = e.code()
    t.is_(code, grpc.StatusCode.OUT_OF_RANGE, "history compacted (watch from 1 is OUT_OF_RANGE)")
finally:
    os.kill(sched.proc.pid, signal.SIGCONT)

t0 = time.time()
t.is_(su.wait_bound(c, api, "big2", timeout=ctest.DEADLINE), "n1",
      "big2 bound: the re-list reported big1's deletion and freed its cpu")
t.diag("bound %.2f s after the scheduler woke" % (time.time() - t0))
log = open(sched.log_path, errors="replace").read()
t.ok("informer pods: watch from" in log and "re-listing" in log,
     "the pod informer re-listed after OUT_OF_RANGE")
api.call("Pods", "Create", su.pod("p3", cpu="100m"))
t.is_(su.wait_bound(c, api, "p3"), "n1", "and keeps scheduling")
t.ok(sched.alive(), "scheduler still running")

# ---- 3. a scheduler started while the apiserver is down waits for it (backoff)
t.is_(sched.stop(), 0, "scheduler exits 0 on SIGTERM")
c.api.stop()
mark = os.path.getsize(sched.log_path)  # the new scheduler logs to the same file


def new_log():
    with open(sched.log_path, "rb") as f:
        f.seek(mark)
        return f.read().decode(errors="replace")


sched = c.start_scheduler("--backoff-initial", "200ms", "--backoff-max", "1s")
# the apiserver comes back once the scheduler has found it down (not after a
# fixed time: a slow machine may not have tried by then)
c.wait_for(lambda: "list failed: UNAVAILABLE" in new_log(), timeout=ctest.DEADLINE)
time.sleep(1.0)
t.ok(sched.alive(), "scheduler keeps running without an apiserver")
api = c.start_apiserver("--compact-keep", "20", data_dir=data)
su.call_retry(api, "Pods", "Create", su.pod("p4", cpu="100m"))
t.is_(su.wait_bound(c, api, "p4", timeout=ctest.DEADLINE), "n1", "pod bound once the apiserver is up")
t.ok("list failed: UNAVAILABLE" in new_log(), "the failed lists were logged")
t.done()
