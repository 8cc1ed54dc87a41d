#!/usr/bin/python3
# Pods that outlive the link. The kubelet runs in a network namespace made
# here and reaches the apiserver over a veth pair (as t/80-fault-netns.t);
# `ip link set DEV down` cuts it. With the link down, a container that dies
# is restarted, and so is one that fails its liveness probe (neither needs
# the apiserver). Then the node "reboots" (the kubelet, every monitor and
# container killed, every mount under its root gone) and the kubelet,
# started again with the link still down, runs its pods again from its
# local record, ConfigMap and Secret included. The control plane meanwhile
# deletes one pod and creates another. When the link returns: statuses
# converge with the restart counts Kubernetes shows (the kill, the probe
# failure and the reboot count one each; the reboot's lastState is exit
# 255, Unknown), nothing is started twice, the deleted pod is stopped, the
# new one starts, logs and exec work again. A pod force-deleted while the
# kubelet is down leaves its record at the next start. Namespaces, veths,
# runc containers and mounts are removed at exit, also on failure.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet
import faultutil as fu

t = ctest.Tap()
ctest.need_root(t)
for f in ("/usr/sbin/runc", "/bin/busybox", "/usr/sbin/ip", "/usr/bin/nsenter"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)
c = ctest.Cluster(t, "51-kubelet-offline")
pb = c.pb
tag = "ko%d" % (os.getpid() % 100000)
ns, host_if, node_if = tag, tag + "h", tag + "n"
net = "10.214.%d" % (os.getpid() % 250)
host_ip, node_ip = net + ".1", net + ".2"
root = os.path.join(c.dir, "n1")
rr = os.path.join(root, "runc")


def cleanup():
    klet.reboot(root, rr)
    fu.sh("ip link del %s 2>/dev/null; ip netns del %s 2>/dev/null" % (host_if, ns))


fu.always(cleanup, c)
fu.sh("ip netns add %s" % ns, check=True)
fu.sh("ip link add %s type veth peer name %s" % (host_if, node_if), check=True)
fu.sh("ip link set %s netns %s" % (node_if, ns), check=True)
fu.sh("ip addr add %s/30 dev %s && ip link set %s up" % (host_ip, host_if, host_if), check=True)
fu.sh("ip -n %s addr add %s/30 dev %s && ip -n %s link set %s up && ip -n %s link set lo up"
      % (ns, node_ip, node_if, ns, node_if, ns), check=True)

port = ctest.free_port()
pki = os.path.join(c.dir, "pki")
c.certs(pki, "-s", "%s:%d" % (host_ip, port), "-n", "n1", "--san", host_ip)
klet.import_busybox(t, root)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write("tok-admin,admin,1,\"system:masters\"\n")
api = c.start_apiserver("--listen", "%s:%d" % (host_ip, port), "--insecure-loopback",
                        "--client-ca-file", os.path.join(pki, "ca.crt"), "--token-auth-file", tokens,
                        "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                        "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                        "--node-monitor-grace", "12")
api.channel = fu.with_token(api.channel, "tok-admin")


def start_kubelet():
    return c.start("kubelet-n1", ["nsenter", "--net=/run/netns/" + ns, c.bin("coracle-kubelet"),
                                  "--config", os.path.join(pki, "kubelet-n1.conf"), "--node-name", "n1",
                                  "--root-dir", root, "--healthz-listen", "", "--node-status-update-period", "2",
                                  "--crashloop-backoff-base", "1"])


def link(up):
    fu.sh("ip link set %s %s" % (host_if, "up" if up else "down"), check=True)


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def wait_pod(name, pred, timeout=ctest.DEADLINE):
    return c.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(get(name)), timeout=timeout, interval=0.3)


def cs0(p):
    return p.status.containerStatuses[0] if p and p.status.containerStatuses else None


def running(p):
    return p.status.phase == "Running" and cs0(p) and cs0(p).state.running.startedAt.seconds > 0


def runc_running():
    r = subprocess.run(["runc", "--root", rr, "list"], capture_output=True, text=True)
    return sorted(l.split()[0] for l in r.stdout.splitlines()[1:] if l.split()[2:3] == ["running"])


def running_of(uid):
    """The running containers of the pod uid, from their records on the node."""
    out = []
    for cid in runc_running():
        try:
            if open(os.path.join(root, "containers", cid, "meta")).readline().strip() == uid:
                out.append(cid)
        except OSError:
            pass
    return out


def rexec(cid, *cmd):
    r = subprocess.run(["runc", "--root", rr, "exec", cid] + list(cmd), capture_output=True, text=True)
    return r.stdout


def ctl(*args):
    return c.ctl("--token", "tok-admin", *args)


def node_ready():
    n = api.try_call("Nodes", "Get", pb.GetRequest(name="n1"))[0]
    return [x.status for x in n.status.conditions if x.type == "Ready"][0] if n else None


def pod(name, cmd, policy="Always", **extra):
    return pb.Pod(metadata=ctest.meta(name, "default"), spec=pb.PodSpec(
        nodeName="n1", restartPolicy=policy, terminationGracePeriodSeconds=1,
        containers=[pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                                 command=["sh", "-c", cmd], **extra.pop("ctr", {}))], **extra))


LOOP = "trap 'exit 0' TERM; echo up; while true; do sleep 0.2; done"
kubelet = start_kubelet()
t.ok(c.wait_for(lambda: node_ready() == "True", timeout=ctest.DEADLINE), "the kubelet in its namespace registers: n1 Ready")
api.call("ConfigMaps", "Create", pb.ConfigMap(metadata=ctest.meta("cfg", "default"), data={"msg": "hello"}))
api.call("Secrets", "Create", pb.Secret(metadata=ctest.meta("sec", "default"), data={"pw": b"s3cret"}))
web = pod("web", 'trap "exit 0" TERM; touch /tmp/ok; echo "up $MSG"; while true; do sleep 0.2; done',
          ctr={"livenessProbe": pb.Probe(handler=pb.ProbeHandler(exec=pb.ExecAction(command=["cat", "/tmp/ok"])),
                                         periodSeconds=1, failureThreshold=1),
               "env": [pb.EnvVar(name="MSG", valueFrom=pb.EnvVarSource(configMapKeyRef=pb.ConfigMapKeySelector(
              localObjectReference=pb.LocalObjectReference(name="cfg"), key="msg")))],
               "volumeMounts": [pb.VolumeMount(name="sec", mountPath="/etc/sec")]},
          volumes=[pb.Volume(name="sec", volumeSource=pb.VolumeSource(secret=pb.SecretVolumeSource(secretName="sec")))])
for p in (web, pod("doomed", LOOP), pod("once", "echo done", "OnFailure")):
    api.call("Pods", "Create", p)
t.ok(wait_pod("web", running) and wait_pod("doomed", running), "web and doomed Running")
p = wait_pod("once", lambda p: p.status.phase == "Succeeded")
t.ok(p, "once Succeeded")
uid = {n: get(n).metadata.uid for n in ("web", "doomed", "once")}
uid["newbie"] = "none"
web0 = cs0(get("web")).containerID[7:]

rec = os.path.join(root, "record")
t.ok(os.path.exists(os.path.join(rec, "pods", uid["web"] + ".pb")) and os.path.exists(os.path.join(rec, "complete")),
     "the pods are in the node's record")
sec = os.path.join(rec, "secrets", "default_sec.pb")
t.ok(os.path.exists(sec) and os.stat(sec).st_mode & 0o777 == 0o600 and os.path.exists(os.path.join(rec, "configmaps", "default_cfg.pb")),
     "the Secret (0600) and the ConfigMap are recorded")
st = os.stat(os.path.join(rec, "pods", uid["web"] + ".pb"))
time.sleep(3)  # several node status and lease rounds
st2 = os.stat(os.path.join(rec, "pods", uid["web"] + ".pb"))
t.ok(st2.st_mtime_ns == st.st_mtime_ns and st2.st_ino == st.st_ino, "idle: the record is not rewritten")

# ---- cut the link; the kubelet keeps restarting what dies
link(False)
t0 = time.time()
subprocess.run(["runc", "--root", rr, "kill", web0, "KILL"])
web1 = c.wait_for(lambda: (lambda r: r[0] if r and r[0] != web0 else None)(running_of(uid["web"])), timeout=ctest.DEADLINE)
t.ok(web1, "link down: web's killed container is restarted (%.1f s)" % (time.time() - t0))
t0 = time.time()
rexec(web1, "rm", "/tmp/ok")
web2 = c.wait_for(lambda: (lambda r: r[0] if r and r[0] != web1 else None)(running_of(uid["web"])), timeout=ctest.DEADLINE)
t.ok(web2, "and its liveness probe still restarts it when it fails (%.1f s)" % (time.time() - t0))

# the control plane carries on without the node
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="doomed"))
api.call("Pods", "Create", pod("newbie", LOOP))

# ---- "reboot": the kubelet, monitors and containers killed, mounts gone
kubelet.kill()
klet.reboot(root, rr)
t.is_(runc_running(), [], "reboot: nothing runs on the node")
t0 = time.time()
kubelet = start_kubelet()
w = c.wait_for(lambda: (lambda r: r if len(r) == 1 else None)(running_of(uid["web"])), timeout=ctest.DEADLINE)
t.ok(w, "link still down: web runs again from the record (%.1f s)" % (time.time() - t0))
t.ok(c.wait_for(lambda: len(running_of(uid["doomed"])) == 1, timeout=ctest.DEADLINE), "doomed too (its deletion is not known here)")
t.ok(w and "hello" in rexec(w[0], "sh", "-c", "echo $MSG") and rexec(w[0], "cat", "/etc/sec/pw") == "s3cret",
     "its ConfigMap value and Secret volume come from the record")
time.sleep(1.5)
t.is_(running_of(uid["once"]), [], "once, finished, is not run again")
t.ok("s3cret" not in open(kubelet.log_path).read(), "the Secret's bytes are not in the kubelet's log")

# ---- the link returns
link(True)
t0 = time.time()
p = wait_pod("web", lambda p: running(p) and cs0(p).restartCount == 3, timeout=2 * ctest.DEADLINE)
t.ok(p, "link up: web Running, restartCount 3 (a kill, a probe, a reboot) after %.1f s" % (time.time() - t0))
lt = cs0(p).lastState.terminated if p else None
t.ok(lt and lt.exitCode == 255 and lt.reason == "Unknown", "its lastState: exit 255, Unknown, as after a reboot")
t.ok(p and cs0(p).containerID[7:] == w[0], "the running container is the one started offline (not restarted)")
t.ok(c.wait_for(lambda: get("doomed") is None, timeout=ctest.DEADLINE), "doomed, deleted meanwhile, is gone")
t.ok(c.wait_for(lambda: not running_of(uid["doomed"]), timeout=ctest.DEADLINE), "and its container stopped")
p = wait_pod("newbie", running)
t.ok(p, "newbie, created meanwhile, Running")
uid["newbie"] = p.metadata.uid if p else "none"
p = get("once")
t.ok(p and p.status.phase == "Succeeded" and cs0(p).restartCount == 0, "once still Succeeded, restartCount 0")
t.ok(c.wait_for(lambda: node_ready() == "True", timeout=ctest.DEADLINE), "n1 Ready")
t.is_(len(runc_running()), 2, "no duplicates: two containers run (web, newbie)")
t.ok(not os.path.exists(os.path.join(rec, "pods", uid["doomed"] + ".pb")), "doomed left the record")
got = c.wait_for(lambda: (lambda r: r[1] if r[0] == 0 and "up hello" in r[1] else None)(ctl("logs", "web")), timeout=ctest.DEADLINE)
t.ok(got, "logs work again through the tunnel")
rc, out, err = ctl("exec", "web", "--", "cat", "/etc/sec/pw")
t.is_((rc, out), (0, "s3cret"), "exec works again")

# ---- a pod force-deleted while the kubelet is down leaves the record at its next start
kubelet.stop()
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="newbie", gracePeriodSeconds=0))
kubelet = start_kubelet()
t.ok(c.wait_for(lambda: not os.path.exists(os.path.join(rec, "pods", uid["newbie"] + ".pb"))
                and not running_of(uid["newbie"]), timeout=ctest.DEADLINE),
     "newbie, force-deleted while the kubelet was down: container removed, record dropped")
t.ok(len(running_of(uid["web"])) == 1 and running_of(uid["web"])[0] == w[0], "web untouched by that restart")
for n in ("web", "once"):
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
t.ok(c.wait_for(lambda: not api.call("Pods", "List", pb.ListRequest(namespace="default")).items, timeout=ctest.DEADLINE),
     "all pods deleted")
t.ok(c.wait_for(lambda: not runc_running(), timeout=ctest.DEADLINE), "no runc containers left")
t.ok(c.wait_for(lambda: not os.listdir(os.path.join(rec, "pods")) and not os.listdir(os.path.join(rec, "secrets")),
                timeout=ctest.DEADLINE), "the record is empty again")
t.done()
