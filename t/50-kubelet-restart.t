#!/usr/bin/python3
# coracle-kubelet restarts while pods run: containers live on under their
# monitors, the new kubelet re-adopts them (same container, 0 restarts, no
# new Started event), exits that happened while it was away are reported,
# a deletion requested meanwhile is carried out, and containers of pods
# force-deleted meanwhile are removed as orphans. Nothing is left after.
import os, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest

import klet

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "50-kubelet-restart")
pb = c.pb
api = c.start_apiserver()
k = c.start_kubelet("node1", "--healthz-listen", "", "--crashloop-backoff-base", "1", root_dir=root)


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def wait_pod(name, pred, timeout=ctest.DEADLINE):
    return c.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(get(name)), timeout=timeout)


def events(name, reason):
    evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
    return sum(max(e.count, 1) for e in evs if e.involvedObject.name == name and e.reason == reason)


def create(name, cmd, policy="Always", grace=1):
    api.call("Pods", "Create", pb.Pod(metadata=ctest.meta(name, "default"), spec=pb.PodSpec(
        nodeName="node1", restartPolicy=policy, terminationGracePeriodSeconds=grace,
        containers=[pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                                 command=["sh", "-c", cmd])])))


def cs0(p):
    return p.status.containerStatuses[0] if p and p.status.containerStatuses else None


def running_ids():
    r = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True, text=True)
    return set(r.stdout.split())


create("keep", "trap 'exit 0' TERM; echo started; while true; do sleep 0.1; done")
create("keep2", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
create("ending", "sleep 2; echo done; exit 5", "Never")
create("orphan", "sleep 1000", "Always")
for n in ("keep", "keep2", "ending", "orphan"):
    t.ok(wait_pod(n, lambda p: p.status.phase == "Running") is not None, "%s Running" % n)
ids = {n: cs0(get(n)).containerID for n in ("keep", "keep2", "ending", "orphan")}

# ---- SIGTERM the kubelet; containers keep running
t.ok(k.stop() == 0, "kubelet exits 0 on SIGTERM")
time.sleep(0.2)
t.ok({i[7:] for i in ids.values()} <= running_ids(), "all containers still run without the kubelet")
# meanwhile: graceful delete of keep2, force delete of orphan; ending exits (5)
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="keep2"))
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="orphan", gracePeriodSeconds=0))
t.ok(get("orphan") is None, "orphan force-deleted in the API")
time.sleep(2.5)

k = c.start_kubelet("node1", "--healthz-listen", "", "--crashloop-backoff-base", "1", root_dir=root)
p = wait_pod("ending", lambda p: p.status.phase == "Failed", timeout=ctest.DEADLINE)
t.ok(p and cs0(p).state.terminated.exitCode == 5, "exit while the kubelet was away reported: Failed, exit 5")
p = get("keep")
t.ok(p and p.status.phase == "Running" and cs0(p).containerID == ids["keep"] and cs0(p).restartCount == 0,
     "keep re-adopted: same container, restartCount 0")
t.is_(events("keep", "Started"), 1, "no second Started event")
t.ok(c.wait_for(lambda: get("keep2") is None, timeout=ctest.DEADLINE), "keep2's deletion carried out after restart")
t.ok(c.wait_for(lambda: ids["orphan"][7:] not in running_ids(), timeout=ctest.DEADLINE), "orphan container removed")

# ---- SIGKILL the kubelet: same
k.kill()
time.sleep(0.2)
k = c.start_kubelet("node1", "--healthz-listen", "", "--crashloop-backoff-base", "1", root_dir=root)
time.sleep(1.0)
p = get("keep")
t.ok(p and p.status.phase == "Running" and cs0(p).containerID == ids["keep"] and cs0(p).restartCount == 0,
     "after SIGKILL too: same container, 0 restarts")
# the re-adopted container's exit is still seen (inotify on its exit file)
subprocess.run(["runc", "--root", runc_root, "kill", ids["keep"][7:], "TERM"])
p = wait_pod("keep", lambda p: cs0(p).restartCount == 1 and cs0(p).lastState.terminated.exitCode == 0, timeout=ctest.DEADLINE)
t.ok(p is not None, "exit of a re-adopted container noticed and restarted (restartCount 1)")
p = wait_pod("keep", lambda p: cs0(p).state.running.startedAt.seconds > 0 and cs0(p).restartCount == 1, timeout=ctest.DEADLINE)
cur = cs0(p).containerID if p else None
k.stop()
k = c.start_kubelet("node1", "--healthz-listen", "", "--crashloop-backoff-base", "1", root_dir=root)
time.sleep(1.0)
p = get("keep")
t.ok(p and cs0(p).containerID == cur and cs0(p).restartCount == 1 and cs0(p).lastState.terminated.exitCode == 0
     and cs0(p).lastState.terminated.containerID == ids["keep"], "restart count and lastState survive a kubelet restart")
log = os.path.join(root, "pods", p.metadata.uid if p else "x", "logs", "c", "0.log")
t.ok(os.path.exists(log) and " stdout F started" in open(log).read(), "first attempt's log kept across restarts")

# ---- the apiserver restarts: the kubelet's watch resumes, deletes still reach it
c.api.stop()
time.sleep(0.5)
api = c.start_apiserver(data_dir=os.path.join(c.dir, "data"))
late = pb.Pod(metadata=ctest.meta("late", "default"), spec=pb.PodSpec(
    nodeName="node1", terminationGracePeriodSeconds=1,
    containers=[pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent", command=["sleep", "1000"])]))
# grpcio may hand us its broken pooled connection once: retry UNAVAILABLE
t.ok(c.wait_for(lambda: api.try_call("Pods", "Create", late)[0], timeout=ctest.DEADLINE), "late pod created")
t.ok(wait_pod("late", lambda p: p.status.phase == "Running", timeout=ctest.DEADLINE) is not None,
     "after an apiserver restart the kubelet sees new pods")
for n in ("keep", "ending", "late"):
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
t.ok(c.wait_for(lambda: not api.call("Pods", "List", pb.ListRequest(namespace="default")).items, timeout=ctest.DEADLINE),
     "all pods deleted")
time.sleep(0.2)
t.is_(running_ids(), set(), "no runc containers left")
t.is_([l for l in open("/proc/mounts") if (" " + root + "/") in l], [], "no mounts left")
t.is_(os.listdir(os.path.join(root, "pods")) + os.listdir(os.path.join(root, "containers")), [], "no dirs left")
t.done()
