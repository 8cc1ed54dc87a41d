#!/usr/bin/python3
# coracle-kubelet end to end with the real apiserver and runc: the Node and
# its Lease; a pod of two containers that talk over localhost and share an
# emptyDir; hostname, /etc/hosts, CRI logs, events; graceful delete that
# honours the grace period; and nothing left behind (runc, mounts, netns,
# cgroups, dirs).
import os, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest

import klet

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "50-kubelet-pod")
pb = c.pb
api = c.start_apiserver()
hz = "127.0.0.1:%d" % ctest.free_port()
k = c.start_kubelet("node1", "--crashloop-backoff-base", "1", "--healthz-listen", hz, root_dir=root)


def get(name):
    p, err = api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))
    return p


def wait_pod(name, pred, timeout=ctest.DEADLINE):
    return c.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(get(name)), timeout=timeout)


def events(name):
    evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
    return [(e.reason, e.message) for e in evs if e.involvedObject.name == name]


# ---- Node and Lease
node = c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE)
t.ok(node is not None, "node registered")
labels = dict(node.metadata.labels) if node else {}
t.is_(labels.get("kubernetes.io/hostname"), "node1", "label kubernetes.io/hostname")
t.is_(labels.get("kubernetes.io/os"), "linux", "label kubernetes.io/os")
t.ok("kubernetes.io/arch" in labels, "label kubernetes.io/arch")
cap = {e: node.status.capacity[e].string for e in node.status.capacity} if node else {}
t.is_(cap.get("pods"), "110", "capacity pods 110")
t.ok(cap.get("cpu", "0") == str(os.cpu_count()), "capacity cpu = %s" % cap.get("cpu"))
t.ok(cap.get("memory", "").endswith("Ki") and "ephemeral-storage" in cap, "capacity memory, ephemeral-storage")
ready = [x for x in node.status.conditions if x.type == "Ready"] if node else []
t.ok(ready and ready[0].status == "True" and ready[0].reason == "KubeletReady" and
     ready[0].message == "kubelet is posting ready status", "Ready True KubeletReady")
t.ok(node and node.status.nodeInfo.containerRuntimeVersion == "runc://1.1.5",
     "containerRuntimeVersion %s" % (node.status.nodeInfo.containerRuntimeVersion if node else None))
t.ok(node and {a.type for a in node.status.addresses} >= {"InternalIP", "Hostname"}, "addresses")
lease = c.wait_for(lambda: api.try_call("Leases", "Get", pb.GetRequest(namespace="kube-node-lease", name="node1"))[0], timeout=ctest.DEADLINE)
t.ok(lease and lease.spec.holderIdentity == "node1" and lease.spec.leaseDurationSeconds == 40 and
     lease.spec.renewTime.seconds > 0, "lease kube-node-lease/node1 held by node1, 40 s")

st, body = ctest.http_get(hz, "/healthz")
t.is_(st, 200, "kubelet /healthz")
t.ok(c.wait_for(lambda: ctest.http_get(hz, "/readyz")[0] == 200, timeout=ctest.DEADLINE), "kubelet /readyz once its pods are synced")

# ---- two containers over localhost + a shared emptyDir
web = pb.Container(name="web", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                   command=["sh", "-c", "echo hello; echo oops >&2; mkdir -p /www; echo hi-from-web > /www/index.html;"
                            " echo shared > /data/file; exec httpd -f -p 8080 -h /www"],
                   volumeMounts=[pb.VolumeMount(name="shared", mountPath="/data")])
client = pb.Container(name="client", image="progrium/busybox",
                      command=["sh", "-c", "while true; do wget -qO- http://localhost:8080/ > /tmp/got 2>/dev/null &&"
                               " cp /tmp/got /data/got; sleep 0.2; done"],
                      volumeMounts=[pb.VolumeMount(name="shared", mountPath="/data")])
pod = pb.Pod(metadata=ctest.meta("duo", "default"),
             spec=pb.PodSpec(nodeName="node1", containers=[web, client], terminationGracePeriodSeconds=2,
                             volumes=[pb.Volume(name="shared", volumeSource=pb.VolumeSource(emptyDir=pb.EmptyDirVolumeSource()))]))
t0 = time.time()
api.call("Pods", "Create", pod)
p = wait_pod("duo", lambda p: p.status.phase == "Running" and len(p.status.containerStatuses) == 2
             and all(s.ready for s in p.status.containerStatuses))
t.ok(p is not None, "pod Running with 2/2 ready (%.2f s)" % (time.time() - t0))
if p:
    cs = p.status.containerStatuses
    t.ok(all(s.containerID.startswith("runc://") and s.restartCount == 0 and s.started for s in cs),
         "containerID runc://, restartCount 0, started")
    t.ok(all(s.imageID.startswith("sha256:") for s in cs), "imageID")
    t.ok({x.type: x.status for x in p.status.conditions} ==
         {"Initialized": "True", "Ready": "True", "ContainersReady": "True", "PodScheduled": "True"},
         "conditions all True")
    t.ok(p.status.hostIP != "" and p.status.startTime.seconds > 0, "hostIP, startTime")
uid = p.metadata.uid if p else ""
pdir = os.path.join(root, "pods", uid)
got = c.wait_for(lambda: os.path.exists(os.path.join(pdir, "volumes/shared/got")) and
                 open(os.path.join(pdir, "volumes/shared/got")).read(), timeout=ctest.DEADLINE)
t.is_(got, "hi-from-web\n", "client reached web over localhost; both see the emptyDir")
t.is_(open(os.path.join(pdir, "volumes/shared/file")).read() if os.path.exists(os.path.join(pdir, "volumes/shared/file")) else None,
      "shared\n", "web's write is in the emptyDir on the host")
cid = p.status.containerStatuses[1].containerID[7:] if p else ""
r = subprocess.run(["runc", "--root", runc_root, "exec", cid, "sh", "-c", "hostname; cat /etc/hosts; cat /data/file"],
                   capture_output=True, text=True)
t.ok(r.stdout.startswith("duo\n"), "hostname is the pod name")
t.ok("127.0.0.1\tlocalhost" in r.stdout and "duo" in r.stdout.split("\n", 1)[1], "/etc/hosts has localhost and the pod")
t.ok(r.stdout.endswith("shared\n"), "client container reads web's file")
log = os.path.join(pdir, "logs", "web", "0.log")
lines = open(log).read().splitlines() if os.path.exists(log) else []
cri = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) F (.*)$")
t.ok(len(lines) == 2 and all(cri.match(l) for l in lines), "CRI log lines: %r" % lines)
t.ok([cri.match(l).group(1, 2) for l in lines if cri.match(l)] == [("stdout", "hello"), ("stderr", "oops")],
     "stdout and stderr kept apart")
ev = events("duo")
t.ok(("Pulled", 'Container image "progrium/busybox" already present on machine') in ev, "Pulled already present")
t.ok(("Pulling", 'Pulling image "progrium/busybox"') in ev, "Pulling for pull policy Always")
t.ok(any(r == "Pulled" and m.startswith('Successfully pulled image "progrium/busybox" in ') for r, m in ev),
     "Successfully pulled")
t.ok(("Created", "Created container web") in ev and ("Started", "Started container client") in ev,
     "Created, Started")

evs = sorted([e for e in api.call("Events", "List", pb.ListRequest(namespace="default")).items
              if e.involvedObject.name == "duo"], key=lambda e: int(e.metadata.resourceVersion))
seq = [(e.reason, e.involvedObject.fieldPath) for e in evs]
t.is_(seq[:6], [("Pulled", "spec.containers{web}"), ("Created", "spec.containers{web}"), ("Started", "spec.containers{web}"),
                ("Pulling", "spec.containers{client}"), ("Pulled", "spec.containers{client}"), ("Created", "spec.containers{client}")],
      "events in Kubernetes' order: one container after the other")
t.ok(all(e.source.component == "kubelet" and e.source.host == "node1" and re.match(r"^duo\.[0-9a-f]{16}$", e.metadata.name)
         for e in evs), "source kubelet/node1, names <pod>.<16 hex>")

# ---- logs and exec through the apiserver (the tunnel the kubelet opens)
rc, out, err = c.ctl("logs", "duo", "-c", "web")
t.ok(rc == 0 and out == "hello\noops\n", "coraclectl logs: %r %s" % (out, err.strip()))
rc, out, err = c.ctl("exec", "duo", "-c", "client", "--", "sh", "-c", "hostname; exit 3")
t.ok(out == "duo\n" and rc == 3, "coraclectl exec: output and exit code (%d %r %s)" % (rc, out, err.strip()))

st, body = ctest.http_get(hz, "/metrics")
body = body.decode() if isinstance(body, bytes) else body
t.ok(st == 200 and "coracle_kubelet_pods 1" in body and 'coracle_kubelet_containers{state="running"} 2' in body,
     "kubelet /metrics: 1 pod, 2 running containers")

# ---- graceful delete: the grace period (2 s) is honoured, then KILL (the
# upper bound leaves CI's slow machine time to tear down, far below 30 s)
t0 = time.time()
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="duo"))
gone = c.wait_for(lambda: get("duo") is None, timeout=30)
el = time.time() - t0
t.ok(gone and 1.8 <= el < 10, "deleted after the 2 s grace (%.2f s): httpd as pid 1 ignores TERM" % el)
t.ok(("Killing", "Stopping container web") in events("duo"), "Killing event")

# a container that exits on TERM goes at once
quick = pb.Pod(metadata=ctest.meta("quick", "default"),
               spec=pb.PodSpec(nodeName="node1", terminationGracePeriodSeconds=30, containers=[
                   pb.Container(name="c", image="progrium/busybox",
                                command=["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"])]))
api.call("Pods", "Create", quick)
t.ok(wait_pod("quick", lambda p: p.status.phase == "Running") is not None, "quick Running")
t0 = time.time()
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="quick"))
gone = c.wait_for(lambda: get("quick") is None, timeout=30)
t.ok(gone and time.time() - t0 < 10, "TERM-handling container deleted at once (%.2f s of 30)" % (time.time() - t0))

# ---- hostNetwork: the node's network and UTS namespaces, podIP = hostIP
api.call("Pods", "Create", pb.Pod(metadata=ctest.meta("hostnet", "default"), spec=pb.PodSpec(
    nodeName="node1", hostNetwork=True, hostPID=True, hostIPC=True, terminationGracePeriodSeconds=1, containers=[
        pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                     command=["sh", "-c", "hostname; ls /sys/class/net | grep -c . ; cat /proc/1/comm; readlink /proc/self/ns/ipc; exec sleep 1000"])])))
p = wait_pod("hostnet", lambda p: p.status.phase == "Running")
t.ok(p and p.status.podIP == p.status.hostIP != "", "hostNetwork: podIP = hostIP (%s)" % (p.status.podIP if p else None))
log = os.path.join(root, "pods", p.metadata.uid if p else "x", "logs", "c", "0.log")
txt = c.wait_for(lambda: os.path.exists(log) and len(open(log).read().splitlines()) >= 4 and open(log).read(), timeout=ctest.DEADLINE) or ""
out = [l.split(" ", 3)[3] for l in txt.splitlines()]
t.ok(out[:1] == [os.uname().nodename], "hostNetwork: the node's hostname (%r)" % out[:1])
t.ok(len(out) > 1 and out[1] == str(len(os.listdir("/sys/class/net"))), "hostNetwork: sees the node's interfaces")
t.ok(len(out) > 2 and out[2] == open("/proc/1/comm").read().strip(), "hostPID: the node's pid 1 (%r)" % out[2:3])
t.ok(len(out) > 3 and out[3] == os.readlink("/proc/self/ns/ipc"), "hostIPC: the node's IPC namespace")
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="hostnet"))
t.ok(c.wait_for(lambda: get("hostnet") is None, timeout=ctest.DEADLINE), "hostnet pod deleted")

# ---- deleted while being created: nothing may survive
for i in range(5):
    api.call("Pods", "Create", pb.Pod(metadata=ctest.meta("racy%d" % i, "default"), spec=pb.PodSpec(
        nodeName="node1", terminationGracePeriodSeconds=1, containers=[
            pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent", command=["sleep", "1000"]),
            pb.Container(name="d", image="progrium/busybox", imagePullPolicy="IfNotPresent", command=["sleep", "1000"])])))
    time.sleep(0.01 * i)
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="racy%d" % i))
t.ok(c.wait_for(lambda: all(get("racy%d" % i) is None for i in range(5)), timeout=ctest.DEADLINE),
     "pods deleted while their containers were being created are gone")

# ---- nothing left behind
time.sleep(0.2)
r = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True, text=True)
t.is_(r.stdout.strip(), "", "no runc containers left")
mounts = [l for l in open("/proc/mounts") if (" " + root + "/") in l]
t.is_(mounts, [], "no mounts under the root dir (overlay, nsfs, emptyDir)")
t.is_(os.listdir(os.path.join(root, "pods")), [], "no pod dirs")
t.is_(os.listdir(os.path.join(root, "containers")), [], "no container dirs")
t.ok(not [d for d in (os.listdir("/sys/fs/cgroup/memory/coracle") if os.path.isdir("/sys/fs/cgroup/memory/coracle") else [])
          if d == cid], "no cgroup left")
t.ok(k.alive(), "kubelet still running")
t.done()
