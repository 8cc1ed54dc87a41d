#!/usr/bin/python3
"""coracle-scheduler end to end: resources are released when a pod is
deleted or finishes, and 1,000 pods arriving at once on tight capacity are
never double-booked (the assume cache)."""
import collections
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest  # noqa: E402
import schedutil as su  # noqa: E402

t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
api = c.start_apiserver()
sched = c.start_scheduler("--backoff-initial", "200ms", "--backoff-max", "1s")

# ---- release on delete and on finish
api.call("Nodes", "Create", su.node("small", cpu="1", mem="1Gi", labels={"pool": "small"}))
sel = {"pool": "small"}
api.call("Pods", "Create", su.pod("a", cpu="600m", node_selector=sel))
t.is_(su.wait_bound(c, api, "a"), "small", "a bound")
api.call("Pods", "Create", su.pod("b", cpu="600m", node_selector=sel))
want = "0/1 nodes are available: 1 Insufficient cpu."
t.is_(su.wait_failed_message(c, api, "b", want), want, "b does not fit while a holds the cpu")


def failed_count(name):
    return sum(max(e.count, 1) for e in su.events_for(api, name, "FailedScheduling"))


# nothing polls: without a relevant change, b is not retried (backoff is 200 ms here)
n0 = failed_count("b")
time.sleep(1.5)
t.is_(failed_count("b"), n0, "an unschedulable pod waits for a relevant event, no retry loop")
t0 = time.time()
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="a", gracePeriodSeconds=0))
t.is_(su.wait_bound(c, api, "b", timeout=ctest.DEADLINE), "small", "b bound once a is deleted")
t.diag("b bound %.2f s after a's deletion" % (time.time() - t0))

api.call("Pods", "Create", su.pod("c", cpu="600m", node_selector=sel))
want = "0/1 nodes are available: 1 Insufficient cpu."
t.is_(su.wait_failed_message(c, api, "c", want), want, "c waits while b runs")
b = su.get_pod(api, "b")
b.status.phase = "Succeeded"
api.call("Pods", "UpdateStatus", b)
t.is_(su.wait_bound(c, api, "c", timeout=ctest.DEADLINE), "small", "c bound once b has finished")

# ---- 1,000 pods at once for 100 slots: 10 nodes x 1 cpu, pods of 100m
N_NODES, N_PODS, SLOTS = 10, 1000, 100
for i in range(N_NODES):
    api.call("Nodes", "Create", su.node("tight%d" % i, cpu="1", mem="64Gi", pods="500",
                                        labels={"pool": "tight"}))
pods = [su.pod("burst-%04d" % i, cpu="100m", node_selector={"pool": "tight"})
        for i in range(N_PODS)]
t0 = time.time()
errs = su.create_many(api, pods)
t.is_(len(errs), 0, "1000 pods created at once")
t.diag("created in %.2f s" % (time.time() - t0))


def bound():
    return [p for p in su.list_pods(api, "default")
            if p.metadata.name.startswith("burst-") and p.spec.nodeName]


got = c.wait_for(lambda: len(bound()) >= SLOTS, timeout=ctest.DEADLINE, interval=0.2)
t.diag("%d bound %.2f s after the first create" % (len(bound()), time.time() - t0))
time.sleep(1.0)  # anything extra would show up now
b = bound()
t.is_(len(b), SLOTS, "exactly as many pods bound as there is room for")
per_node = collections.Counter(p.spec.nodeName for p in b)
t.ok(all(v <= 10 for v in per_node.values()) and len(per_node) == N_NODES,
     "no node over its 1 cpu: %s" % sorted(per_node.values()))
# the rest is pending, with Kubernetes' message
name = next(p.metadata.name for p in su.list_pods(api, "default")
            if p.metadata.name.startswith("burst-") and not p.spec.nodeName)
want = "0/11 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, " \
       "10 Insufficient cpu."
t.is_(su.wait_failed_message(c, api, name, want, timeout=ctest.DEADLINE), want,
      "a pending burst pod says why")

# delete 5 bound pods: exactly 5 pending ones take their place
victims = [p.metadata.name for p in b[:5]]
for v in victims:
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=v, gracePeriodSeconds=0))
c.wait_for(lambda: len(bound()) >= SLOTS, timeout=ctest.DEADLINE, interval=0.2)
time.sleep(0.5)
b2 = bound()
t.is_(len(b2), SLOTS, "freed room refilled, never overbooked")
t.ok(not (set(victims) & {p.metadata.name for p in b2}), "the deleted pods are gone")
t.ok(sched.alive(), "scheduler still running")
t.done()
