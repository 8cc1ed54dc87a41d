#!/usr/bin/python3
"""coracle-controller-manager's leader election through the Lease
kube-system/coracle-controller-manager: of two managers exactly one acts
(the Lease names it, only its syncs count, /metrics says so), the standby
keeps its caches warm; SIGKILL the leader in the middle of a scale-up and
the standby takes over once the Lease went unrenewed, finishing the work
with no pod made twice. Shortened durations (6 s lease, 4 s deadline, 1 s
retry) keep it quick; margins are generous for a slow machine."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest  # noqa: E402
import opsutil  # noqa: E402

LE = ["--leader-elect-lease-duration", "6s", "--leader-elect-renew-deadline", "4s",
      "--leader-elect-retry-period", "1s"]

t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
api = c.start_apiserver()


def start(name):
    port = ctest.free_port()
    d = c.start(name, [c.bin("coracle-controller-manager"), "--server", c.api_addr, "--healthz-listen",
                       "127.0.0.1:%d" % port] + LE)
    d.health = "127.0.0.1:%d" % port
    d.ident = c.wait_for(lambda: identity(d), timeout=ctest.DEADLINE)
    return d


def identity(d):
    with open(d.log_path, errors="replace") as f:
        m = re.search(r"leader election: lease kube-system/coracle-controller-manager, identity (\S+)", f.read())
    return m.group(1) if m else None


def holder():
    l, _ = api.try_call("Leases", "Get", pb.GetRequest(namespace="kube-system", name="coracle-controller-manager"))
    return l.spec.holderIdentity if l else None


def syncs(d):
    st, body = ctest.http_get(d.health, "/metrics")
    if st != 200:
        return None
    s, _ = opsutil.parse_prom(body)
    return s.get(("workqueue_adds_total", frozenset({"name": "replicaset"}.items())), 0)


def pods():
    return [p for p in api.call("Pods", "List", pb.ListRequest(namespace="default")).items
            if not p.metadata.HasField("deletionTimestamp")]


a = start("cm-a")
t.ok(c.wait_for(lambda: holder() == a.ident, timeout=ctest.DEADLINE), "the first manager takes the Lease")
b = start("cm-b")
labels = {"app": "le"}
api.call("ReplicaSets", "Create", pb.ReplicaSet(
    metadata=ctest.meta("le", "default"),
    spec=pb.ReplicaSetSpec(replicas=3, selector=pb.LabelSelector(matchLabels=labels),
                           template=pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels=labels), spec=pb.PodSpec(
                               containers=[pb.Container(name="c", image="busybox")])))))
t.ok(c.wait_for(lambda: len(pods()) == 3, timeout=ctest.DEADLINE), "the leader makes the 3 pods")
t.ok(c.wait_for(lambda: syncs(b) == 0 and (syncs(a) or 0) > 0, timeout=ctest.DEADLINE),
     "only the leader syncs; the standby's queue is idle (a %s, b %s)" % (syncs(a), syncs(b)))
t.is_(holder(), a.ident, "the Lease still names the first")

# SIGKILL the leader right after asking for more: the standby finishes it
api.update("ReplicaSets", "default", "le", lambda r: setattr(r.spec, "replicas", 40))
a.stop(signal.SIGKILL)
t.ok(c.wait_for(lambda: holder() == b.ident, timeout=ctest.DEADLINE), "the standby takes the Lease over")
t.ok(c.wait_for(lambda: len(pods()) == 40, timeout=ctest.DEADLINE), "and finishes the scale-up: 40 pods")
t.ok(c.wait_for(lambda: api.call("ReplicaSets", "Get", pb.GetRequest(
    namespace="default", name="le")).status.replicas == 40, timeout=ctest.DEADLINE), "status 40")
t.is_(len(pods()), 40, "no pod made twice")
t.is_(b.stop(), 0, "the new leader exits 0 on SIGTERM")
c.teardown()
t.done()
