#!/usr/bin/python3
# Daemons coming and going, for real (runc, busybox):
# - the kubelet is SIGKILLed while it starts pods (aimed at the moment a
#   container is being created or a pod sandbox set up), several times
#   (CORACLE_FAULT_KUBELET_KILLS, default 4), and restarted: no duplicate
#   container (runc list), the exit code of a pod that ended meanwhile is
#   reported, no restart counted, status converges;
# - the apiserver is SIGKILLed and restarted under a running scheduler and
#   two kubelets: they reconnect and resume their watches (new pods get
#   scheduled and started), running pods keep their containers, no pod is
#   scheduled twice (one Scheduled event each, no bind conflict).
# Nothing is left on the nodes afterwards.
import os
import random
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet
import faultutil as fu

t = ctest.Tap()
ctest.need_root(t)
if not os.path.exists("/usr/sbin/runc") or not os.path.exists("/bin/busybox"):
    t.skip_all("needs runc and busybox-static")
c = ctest.Cluster(t, "80-fault-daemons")
pb = c.pb
KILLS = fu.env_int("CORACLE_FAULT_KUBELET_KILLS", 4)
rnd = random.Random(fu.env_int("CORACLE_FAULT_SEED", int(time.time())))
roots = {n: os.path.join(c.dir, n) for n in ("node1", "node2")}


def runc_ids(node, status=None):
    r = subprocess.run(["runc", "--root", os.path.join(roots[node], "runc"), "list"], capture_output=True, text=True)
    out = []
    for l in r.stdout.splitlines()[1:]:
        f = l.split()
        if f and (status is None or f[2] == status):
            out.append(f[0])
    return out


def cleanup():
    for root in roots.values():
        ctest.node_cleanup(root)


fu.always(cleanup, c)
klet.import_busybox(t, *roots.values())

api = c.start_apiserver()
KARGS = ("--healthz-listen", "", "--crashloop-backoff-base", "1")
kl = {n: c.start_kubelet(n, *KARGS, root_dir=roots[n]) for n in roots}


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def pods():
    r, e = api.try_call("Pods", "List", pb.ListRequest(namespace="default"))
    return {p.metadata.name: p for p in r.items} if r else {}


def events(reason):
    r, e = api.try_call("Events", "List", pb.ListRequest(namespace="default"))
    out = {}
    for ev in (r.items if r else []):
        if ev.reason == reason:
            out[ev.involvedObject.name] = out.get(ev.involvedObject.name, 0) + max(ev.count, 1)
    return out


def cs0(p):
    return p.status.containerStatuses[0] if p and p.status.containerStatuses else None


def mkpod(name, cmd, node=None, policy="Always"):
    spec = pb.PodSpec(restartPolicy=policy, terminationGracePeriodSeconds=1,
                      containers=[pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                                               command=["sh", "-c", cmd])])
    if node:
        spec.nodeName = node
    return pb.Pod(metadata=ctest.meta(name, "default"), spec=spec)


LONG = "trap 'exit 0' TERM; while true; do sleep 0.2; done"
t.ok(c.wait_for(lambda: len(api.call("Nodes", "List", pb.ListRequest()).items) == 2, timeout=ctest.DEADLINE), "two nodes registered")

# ---- the kubelet SIGKILLed while it starts pods ----
def files(*p):
    try:
        return set(os.listdir(os.path.join(*p)))
    except OSError:
        return set()


def starting():
    """A container being created (its monitor runs, no "started" yet) or a pod sandbox being
    set up (namespaces there, /etc/hosts not yet)."""
    d = os.path.join(roots["node1"], "containers")
    for cid in files(d):
        f = files(d, cid)
        if "monitor.pid" in f and "started" not in f and "exit" not in f:
            return "container"
    d = os.path.join(roots["node1"], "pods")
    for uid in files(d):
        f = files(d, uid)
        if "ns" in f and "hosts" not in f:
            return "sandbox"
    return None


made = []
hits = 0
kinds = []
for k in range(KILLS):
    batch = ["k%d-%d" % (k, i) for i in range(3)]
    for n in batch:
        api.call("Pods", "Create", mkpod(n, LONG, "node1"))
    api.call("Pods", "Create", mkpod("end%d" % k, "sleep 1; exit 7", "node1", "Never"))
    made += batch + ["end%d" % k]
    # kill it while a container is being created or a sandbox set up, or at a random point if
    # that moment is missed
    hit = c.wait_for(starting, timeout=rnd.uniform(0.3, 1.5), interval=0.005)
    kl["node1"].kill()
    hits += bool(hit)
    kinds.append(hit or "random")
    time.sleep(0 if k % 2 == 0 else rnd.uniform(0.0, 1.5))
    kl["node1"] = c.start_kubelet("node1", *KARGS, root_dir=roots["node1"])


def converged():
    ps = pods()
    for n in made:
        p = ps.get(n)
        want = "Failed" if n.startswith("end") else "Running"
        if not p or p.status.phase != want or not cs0(p):
            return False
        if want == "Running" and not (cs0(p).ready and cs0(p).containerID):
            return False
    return ps


ps = c.wait_for(converged, timeout=3 * ctest.DEADLINE, interval=0.3)
t.ok(ps, "%d SIGKILLs of the kubelet mid pod start (%d while a container or sandbox was being set up): all %d "
     "converge (Running / Failed)" % (KILLS, hits, len(made)))
t.diag("kill points: %s" % " ".join(kinds))
ps = ps or pods()
running = [n for n in made if not n.startswith("end")]
ids = {n: cs0(ps[n]).containerID[7:] if cs0(ps.get(n)) else None for n in running}
rids = runc_ids("node1", "running")
t.is_(sorted(rids), sorted(i for i in ids.values() if i), "runc list: exactly one running container per running pod, no duplicate")
t.is_(len(runc_ids("node1", "created")), 0, "no half-created container left")
codes = {n: cs0(ps[n]).state.terminated.exitCode for n in made if n.startswith("end") and cs0(ps.get(n))}
t.is_(codes, {"end%d" % k: 7 for k in range(KILLS)}, "exit codes of pods that ended meanwhile: all 7")
t.is_({n: cs0(ps[n]).restartCount for n in made if cs0(ps.get(n))}, {n: 0 for n in made}, "restart counts all 0")
st = events("Started")
# Events are best effort (as in Kubernetes): a kubelet killed between starting a container and
# posting its event does not post it after re-adopting it. Never two, though.
t.is_({n: st[n] for n in made if st.get(n, 0) > 1}, {}, "no pod has two Started events (%d of %d have one)"
      % (sum(1 for n in made if st.get(n)), len(made)))

# ---- the apiserver restarted under the scheduler and two kubelets ----
sched = c.start_scheduler()
for i in range(6):
    api.call("Pods", "Create", mkpod("s%d" % i, LONG))
sp = ["s%d" % i for i in range(6)]
ok = c.wait_for(lambda: all(p.status.phase == "Running" for n, p in pods().items() if n in sp) and len(
    [n for n in pods() if n in sp]) == 6, timeout=2 * ctest.DEADLINE, interval=0.3)
t.ok(ok, "scheduler: 6 pods scheduled and Running on two nodes")
before = {n: (p.spec.nodeName, cs0(p).containerID) for n, p in pods().items()}
c.api.kill()
time.sleep(1.5)  # the daemons see the connection drop and back off
api = c.start_apiserver()
t.ok(c.wait_for(lambda: api.try_call("Pods", "Create", mkpod("after0", LONG))[0], timeout=ctest.DEADLINE), "apiserver back; new pod created")
api.call("Pods", "Create", mkpod("after1", LONG))
sp += ["after0", "after1"]
ok = c.wait_for(lambda: all(get(n) and get(n).status.phase == "Running" for n in ("after0", "after1")),
                timeout=2 * ctest.DEADLINE, interval=0.3)
t.ok(ok, "after the restart the scheduler binds and the kubelets start new pods (watches resumed)")
now = pods()
t.is_({n: (now[n].spec.nodeName, cs0(now[n]).containerID) for n in before if n in now}, before,
      "every pod kept its node and its container")
t.ok(all(cs0(now[n]).restartCount == 0 for n in before if n in now and cs0(now[n])), "no restart counted")
sc = events("Scheduled")
t.is_({n: sc.get(n, 0) for n in sp}, {n: 1 for n in sp}, "one Scheduled event per pod")
conflicts = [l for l in open(sched.log_path, errors="replace") if re.search(r"binding .*(ABORTED|already)", l)]
t.is_(conflicts, [], "no bind conflict in the scheduler's log")
t.ok(sched.alive() and all(k.alive() for k in kl.values()), "scheduler and kubelets still running")
ids_all = {cs0(p).containerID[7:] for p in now.values() if cs0(p) and p.status.phase == "Running"}
t.is_(sorted(runc_ids("node1", "running") + runc_ids("node2", "running")), sorted(ids_all),
      "runc on both nodes: one container per running pod")

# ---- clean up through the API ----
for n in list(pods()):
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
t.ok(c.wait_for(lambda: not pods(), timeout=2 * ctest.DEADLINE, interval=0.3), "all pods deleted")
t.ok(c.wait_for(lambda: not runc_ids("node1") and not runc_ids("node2"), timeout=ctest.DEADLINE), "no runc container left")
t.diag("FIGURES daemons: kubelet_sigkills=%d apiserver_sigkills=1 pods=%d" % (KILLS, len(made) + len(sp)))
t.done()
