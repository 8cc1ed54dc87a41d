#!/usr/bin/python3
"""The hollow kubelet (contrib/bench/hollow-kubelet) against a real apiserver
and scheduler: 50 simulated nodes register Ready Nodes and Leases, each
watches its pods through the spec.nodeName index, 300 pods go through
Pending/ContainerCreating to Running with the kubelet's events, every Lease
is renewed, and deleting the pods ends with their objects gone (the hollow
kubelet's grace-0 Delete after the terminal status)."""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest  # noqa: E402
import schedutil as su  # noqa: E402

NODES, PODS = 50, 300

t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
hollow_bin = c.bin(os.path.join("contrib", "bench", "hollow-kubelet"))
if not os.access(hollow_bin, os.X_OK):
    t.skip_all("contrib/bench/hollow-kubelet not built")
api = c.start_apiserver()
c.start_scheduler()
hollow = c.start("hollow-kubelet", [hollow_bin, "--server", c.api_addr, "--nodes", str(NODES),
                                    "--connections", "2", "--prefix", "hollow-",
                                    "--start-delay-ms", "100", "--stop-delay-ms", "50"])


def log_text():
    with open(hollow.log_path, errors="replace") as f:
        return f.read()


t.ok(c.wait_for(lambda: "hollow-kubelet: ready" in log_text(), timeout=60),
     "the hollow kubelet registered %d nodes and watches their pods" % NODES)

nodes = api.call("Nodes", "List", pb.ListRequest()).items
t.is_(len(nodes), NODES, "%d Nodes" % NODES)


def ready(n):
    return any(x.type == "Ready" and x.status == "True" and x.reason == "KubeletReady"
               for x in n.status.conditions)


t.is_(sum(1 for n in nodes if ready(n)), NODES, "every Node Ready (KubeletReady)")
n0 = nodes[0]
t.ok(n0.status.capacity["pods"].string == "110" and n0.status.allocatable["cpu"].string
     and n0.status.nodeInfo.kubeletVersion and
     sorted(a.type for a in n0.status.addresses) == ["Hostname", "InternalIP"] and
     len(n0.status.conditions) == 4, "a Node has the kubelet's shape")

leases = api.call("Leases", "List", pb.ListRequest(namespace="kube-node-lease")).items
t.is_(len(leases), NODES, "one Lease a node in kube-node-lease")
renewed0 = {l.metadata.name: (l.spec.renewTime.seconds, l.spec.renewTime.nanos) for l in leases}


def metric(name):
    status, body = ctest.http_get(c.api_addr, "/metrics")
    m = re.search(r'^%s (\d+)' % name, body or "", re.M) if status == 200 else None
    return int(m.group(1)) if m else None


t.is_(metric("coracle_apiserver_watchers_node_indexed"), NODES,
      "each node's pod watch is found through the apiserver's node index")

for i in range(PODS):
    p = su.pod("fleet-%03d" % i, cpu="10m", mem="16Mi")
    api.call("Pods", "Create", p)


def pods():
    return api.call("Pods", "List", pb.ListRequest(namespace="default")).items


def all_running():
    ps = pods()
    ok = [p for p in ps if p.status.phase == "Running" and p.status.podIP and
          p.status.containerStatuses and p.status.containerStatuses[0].ready and
          any(x.type == "Ready" and x.status == "True" for x in p.status.conditions)]
    return ps if len(ok) == PODS else None


ps = c.wait_for(all_running, timeout=60, interval=0.2)
t.ok(ps, "%d pods Running and Ready" % PODS)
ps = ps or pods()
t.ok(len({p.spec.nodeName for p in ps}) > NODES // 2, "spread over the nodes (%d of them)"
     % len({p.spec.nodeName for p in ps}))
t.ok(all(p.status.podIP.startswith("10.") and p.status.hostIP for p in ps), "podIP and hostIP set")

evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
reasons = {}
for e in evs:
    if e.involvedObject.name == "fleet-000":
        reasons.setdefault(e.reason, e.source.component)
t.is_(sorted(r for r in reasons if r in ("Scheduled", "Pulled", "Created", "Started")),
      ["Created", "Pulled", "Scheduled", "Started"], "a pod's events: Scheduled, Pulled, Created, Started")
t.is_(reasons.get("Started"), "kubelet", "the kubelet's events come from component kubelet")


def all_renewed():
    ls = api.call("Leases", "List", pb.ListRequest(namespace="kube-node-lease")).items
    return all((l.spec.renewTime.seconds, l.spec.renewTime.nanos) > renewed0[l.metadata.name]
               for l in ls)


t.ok(c.wait_for(all_renewed, timeout=40, interval=0.5), "every Lease renewed (10 s period)")

# deletion: grace period default; the hollow kubelet stops, reports and deletes
for p in ps:
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=p.metadata.name))
t.ok(c.wait_for(lambda: not pods(), timeout=60, interval=0.2), "every pod deleted and gone")
evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
t.ok(any(e.reason == "Killing" and e.involvedObject.name == "fleet-000" for e in evs),
     "Killing event on deletion")

# the client's own latencies, by verb and resource, on SIGUSR1
os.kill(hollow.proc.pid, signal.SIGUSR1)
t.ok(c.wait_for(lambda: '"update leases"' in log_text(), timeout=10),
     "SIGUSR1 prints the hollow kubelet's call latencies")
t.ok(hollow.alive(), "the hollow kubelet is still running")
t.is_(hollow.stop(), 0, "the hollow kubelet exits 0 on SIGTERM")
t.done()
