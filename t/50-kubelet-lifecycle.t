#!/usr/bin/python3
# coracle-kubelet lifecycle with the real apiserver and runc: each
# restartPolicy with restart counts and CrashLoopBackOff (back-off base 1 s),
# init containers in order, OOMKilled under a memory limit, a missing image
# (ErrImagePull / ImagePullBackOff), liveness and readiness probes; and
# nothing left after the pods are deleted.
import os, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest

import klet

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "50-kubelet-lifecycle")
pb = c.pb
api = c.start_apiserver()
k = c.start_kubelet("node1", "--healthz-listen", "", "--crashloop-backoff-base", "1", "--crashloop-backoff-max", "4",
                    "--container-log-max-size", "4096", root_dir=root)
c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE)


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def wait_pod(name, pred, timeout=ctest.DEADLINE):
    return c.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(get(name)), timeout=timeout)


def events(name):
    evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
    return [(e.reason, e.message) for e in evs if e.involvedObject.name == name]


def ctr(name, cmd, **kw):
    return pb.Container(name=name, image="progrium/busybox", imagePullPolicy="IfNotPresent",
                        command=["sh", "-c", cmd], **kw)


def create(name, containers, policy="Always", **spec):
    api.call("Pods", "Create", pb.Pod(metadata=ctest.meta(name, "default"),
                                      spec=pb.PodSpec(nodeName="node1", restartPolicy=policy,
                                                      terminationGracePeriodSeconds=1,
                                                      containers=containers, **spec)))


def cs0(p):
    return p.status.containerStatuses[0] if p and p.status.containerStatuses else None


create("never", [ctr("c", "echo bye; exit 3")], "Never")
create("onfail", [ctr("c", "echo attempt; sleep 0.2; exit 1")], "OnFailure")
create("always", [ctr("c", "sleep 0.2; exit 0")], "Always")
create("done", [ctr("c", "exit 0")], "OnFailure")
create("init", [ctr("main", "cat /work/order; exec sleep 1000", volumeMounts=[pb.VolumeMount(name="w", mountPath="/work")])],
       "Always", initContainers=[ctr("first", "sleep 0.3; echo first >> /work/order", volumeMounts=[pb.VolumeMount(name="w", mountPath="/work")]),
                                 ctr("second", "echo second >> /work/order", volumeMounts=[pb.VolumeMount(name="w", mountPath="/work")])],
       volumes=[pb.Volume(name="w", volumeSource=pb.VolumeSource(emptyDir=pb.EmptyDirVolumeSource(medium="Memory", sizeLimit=pb.Quantity(string="1Mi"))))])
create("initfail", [ctr("main", "sleep 1000")], "Never", initContainers=[ctr("setup", "exit 7")])
create("oom", [ctr("c", "dd if=/dev/zero of=/dev/null bs=64M count=1", resources=pb.ResourceRequirements(
    limits={"memory": pb.Quantity(string="16Mi")}))], "Never")
create("noimage", [pb.Container(name="c", image="nosuch:1.0")], "Always")
create("never-pull", [pb.Container(name="c", image="nosuch:2.0", imagePullPolicy="Never")], "Always")
create("chatty", [ctr("c", "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done; exec sleep 1000")], "Always")
create("live", [ctr("c", "touch /tmp/ok; sleep 1; rm /tmp/ok; exec sleep 1000",
                    livenessProbe=pb.Probe(handler=pb.ProbeHandler(exec=pb.ExecAction(command=["cat", "/tmp/ok"])),
                                           periodSeconds=1, failureThreshold=1))], "Always")
create("startup", [ctr("c", "exec sleep 1000",
                       startupProbe=pb.Probe(handler=pb.ProbeHandler(exec=pb.ExecAction(command=["cat", "/tmp/up"])),
                                             periodSeconds=1, failureThreshold=1000))], "Always")
create("ready", [ctr("web", "mkdir /www; echo hi > /www/index.html; exec httpd -f -p 8080 -h /www",
                     readinessProbe=pb.Probe(handler=pb.ProbeHandler(httpGet=pb.HTTPGetAction(path="/index.html", port=pb.IntOrString(type=0, intVal=8080))),
                                             periodSeconds=1)),
                 ctr("web2", "mkdir /www; exec httpd -f -p 8081 -h /www",
                     readinessProbe=pb.Probe(handler=pb.ProbeHandler(httpGet=pb.HTTPGetAction(path="/missing", port=pb.IntOrString(type=0, intVal=8081))),
                                             periodSeconds=1)),
                 ctr("tcp", "exec nc -ll -p 9090 -e true",
                     readinessProbe=pb.Probe(handler=pb.ProbeHandler(tcpSocket=pb.TCPSocketAction(port=pb.IntOrString(type=0, intVal=9090))),
                                             periodSeconds=1))], "Always")

# restartPolicy Never, exit 3
p = wait_pod("never", lambda p: p.status.phase == "Failed")
s = cs0(p)
t.ok(p and s.state.terminated.exitCode == 3 and s.state.terminated.reason == "Error" and s.restartCount == 0,
     "Never + exit 3: Failed, terminated Error 3, no restart")
t.ok(s and s.state.terminated.finishedAt.seconds >= s.state.terminated.startedAt.seconds > 0, "startedAt/finishedAt")

# OnFailure exit 1: restarts with back-off; CrashLoopBackOff seen
seen_backoff = c.wait_for(lambda: (lambda s: s and s.state.waiting.reason == "CrashLoopBackOff" and s)(cs0(get("onfail"))), timeout=ctest.DEADLINE)
t.ok(seen_backoff, "OnFailure + exit 1: waiting CrashLoopBackOff")
if seen_backoff:
    t.like(seen_backoff.state.waiting.message, "restarting failed container=c pod=onfail_default(", "back-off message")
    t.ok(seen_backoff.lastState.terminated.exitCode == 1, "lastState terminated exitCode 1")
p = wait_pod("onfail", lambda p: cs0(p) and cs0(p).restartCount >= 3, timeout=ctest.DEADLINE)
t.ok(p is not None, "OnFailure restarts counted (%s)" % (cs0(get("onfail")).restartCount if get("onfail") else None))
t.is_(get("onfail").status.phase, "Running", "crash-looping OnFailure pod is Running (as Kubernetes)")
t.ok(any(r == "BackOff" and re.match(r"Back-off restarting failed container c in pod onfail_default\(.+\)$", m)
         for r, m in events("onfail")), "BackOff event text")

rc, out, err = c.ctl("logs", "--previous", "onfail")
t.ok(rc == 0 and out == "attempt\n", "coraclectl logs --previous: the last crashed attempt (%r %s)" % (out, err.strip()))
rc, out, err = c.ctl("logs", "--previous", "never")
t.ok(rc != 0 and 'previous terminated container "c" in pod "never" not found' in err,
     "no previous instance: Kubernetes' error (%s)" % err.strip())

# Always, exit 0: restarted too
p = wait_pod("always", lambda p: cs0(p) and cs0(p).restartCount >= 1)
t.ok(p is not None and p.status.phase == "Running", "Always + exit 0: restarted, Running")

# OnFailure, exit 0: Succeeded
p = wait_pod("done", lambda p: p.status.phase == "Succeeded")
t.ok(p and cs0(p).state.terminated.reason == "Completed" and cs0(p).restartCount == 0, "OnFailure + exit 0: Succeeded, Completed")
ev = events("done")
t.ok(("Created", "Created container c") in ev and ("Started", "Started container c") in ev,
     "an instant exit still has its Created and Started events")

# init containers in order, then main
p = wait_pod("init", lambda p: p.status.phase == "Running")
t.ok(p is not None, "init pod Running")
if p:
    ics = p.status.initContainerStatuses
    t.ok(len(ics) == 2 and all(x.state.terminated.reason == "Completed" for x in ics), "both init containers Completed")
    t.ok(ics[0].state.terminated.finishedAt.seconds <= ics[1].state.terminated.startedAt.seconds + 1, "in order")
    log = os.path.join(root, "pods", p.metadata.uid, "logs", "main", "0.log")
    txt = c.wait_for(lambda: os.path.exists(log) and open(log).read(), timeout=ctest.DEADLINE) or ""
    t.ok(txt.endswith("stdout F first\n") is False and " stdout F first\n" in txt and txt.endswith(" stdout F second\n"),
         "main saw first then second in the emptyDir (tmpfs)")
    t.ok(any(l.split()[2] == "tmpfs" and "/pods/%s/volumes/w " % p.metadata.uid in l for l in open("/proc/mounts")) or
         any("/volumes/w" in l and "tmpfs" in l for l in open("/proc/mounts")), "medium Memory is a tmpfs")
p = wait_pod("initfail", lambda p: p.status.phase == "Failed")
t.ok(p and p.status.initContainerStatuses[0].state.terminated.exitCode == 7 and
     p.status.containerStatuses[0].state.waiting.reason == "PodInitializing", "failed init under Never: Failed, main never ran")

# OOMKilled
p = wait_pod("oom", lambda p: p.status.phase == "Failed")
s = cs0(p)
t.ok(s and s.state.terminated.reason == "OOMKilled" and s.state.terminated.exitCode == 137,
     "memory limit 16Mi: OOMKilled, 137 (%s)" % (s.state.terminated if s else None))

# missing image
p = wait_pod("noimage", lambda p: cs0(p) and cs0(p).state.waiting.reason in ("ErrImagePull", "ImagePullBackOff"))
t.ok(p is not None, "missing image: waiting %s" % (cs0(p).state.waiting.reason if p else None))
p = wait_pod("noimage", lambda p: cs0(p) and cs0(p).state.waiting.reason == "ImagePullBackOff", timeout=ctest.DEADLINE)
t.ok(p is not None and p.status.phase == "Pending", "then ImagePullBackOff, Pending")
ev = events("noimage")
t.ok(any(r == "Failed" and m.startswith('Failed to pull image "nosuch:1.0": ') and "coraclectl image import" in m for r, m in ev),
     "Failed event names the image and how to import it")
t.ok(("BackOff", 'Back-off pulling image "nosuch:1.0"') in ev, "BackOff pulling event")

p = wait_pod("never-pull", lambda p: cs0(p) and cs0(p).state.waiting.reason == "ErrImageNeverPull")
t.ok(p and cs0(p).state.waiting.message == 'Container image "nosuch:2.0" is not present with pull policy of Never',
     "pull policy Never: ErrImageNeverPull")

# log rotation by size (4096 bytes here)
p = wait_pod("chatty", lambda p: p.status.phase == "Running")
logdir = os.path.join(root, "pods", p.metadata.uid if p else "x", "logs", "c")
ok = c.wait_for(lambda: os.path.exists(os.path.join(logdir, "0.log.1")) and
                " stdout F line 299\n" in open(os.path.join(logdir, "0.log")).read(), timeout=ctest.DEADLINE)
t.ok(ok, "container log rotated by size (0.log.1), newest lines in 0.log")
t.ok(os.path.exists(os.path.join(logdir, "0.log")) and os.path.getsize(os.path.join(logdir, "0.log")) <= 4096 + 100,
     "0.log stays near the limit")

# liveness: fails after 1 s, container restarted
p = wait_pod("live", lambda p: cs0(p) and cs0(p).restartCount >= 1, timeout=ctest.DEADLINE)
t.ok(p is not None, "liveness failure restarts the container")
ev = events("live")
t.ok(any(r == "Unhealthy" and m.startswith("Liveness probe failed: ") for r, m in ev), "Unhealthy event")
t.ok(("Killing", "Container c failed liveness probe, will be restarted") in ev, "Killing event")

# startup probe: started=false (and not ready) until it passes, then started, no restart
p = wait_pod("startup", lambda p: cs0(p) and cs0(p).state.running.startedAt.seconds > 0, timeout=ctest.DEADLINE)
t.ok(p and not cs0(p).started and not cs0(p).ready, "startup probe pending: running, started=false, not ready")
if p:
    subprocess.run(["runc", "--root", runc_root, "exec", cs0(p).containerID[7:], "touch", "/tmp/up"])
p = wait_pod("startup", lambda p: cs0(p).started and cs0(p).ready, timeout=ctest.DEADLINE)
t.ok(p and cs0(p).restartCount == 0, "startup probe passed: started, ready, no restart")

# readiness: httpGet 200 ready, 404 not ready, tcpSocket ready
def rd(p):
    return {x.name: x.ready for x in p.status.containerStatuses}
p = wait_pod("ready", lambda p: rd(p).get("web") and rd(p).get("tcp"), timeout=ctest.DEADLINE)
t.ok(p is not None and rd(p).get("web2") is False, "readiness: httpGet 200 and tcpSocket ready, 404 not")
t.ok(p and {x.type: x.status for x in p.status.conditions}.get("Ready") == "False", "pod not Ready with one unready container")
t.ok(any(r == "Unhealthy" and m == "Readiness probe failed: HTTP probe failed with statuscode: 404" for r, m in events("ready")),
     "Readiness Unhealthy event with status code")

# delete everything; nothing is left
for n in ("never", "onfail", "always", "done", "init", "initfail", "oom", "noimage", "live", "ready",
          "never-pull", "chatty", "startup"):
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
left = c.wait_for(lambda: not api.call("Pods", "List", pb.ListRequest(namespace="default")).items, timeout=ctest.DEADLINE)
t.ok(left, "all pods deleted")
time.sleep(0.2)
r = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True, text=True)
t.is_(r.stdout.strip(), "", "no runc containers left")
t.is_([l for l in open("/proc/mounts") if (" " + root + "/") in l], [], "no mounts left")
t.is_(os.listdir(os.path.join(root, "pods")) + os.listdir(os.path.join(root, "containers")), [], "no dirs left")
t.ok(k.alive(), "kubelet alive")
t.done()
