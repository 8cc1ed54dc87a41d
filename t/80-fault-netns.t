#!/usr/bin/python3
# A node cut off from the apiserver. The kubelet runs in a network
# namespace made here, reaching the apiserver over a veth pair with a
# private /30 (host end 10.213.X.1, node end .2; nothing else is routed).
# The apiserver serves that address over TLS (certificates from
# contrib/certs) and loopback in cleartext for the test's client. The link
# is cut with `ip link set DEV down`: the node's Lease stops, after the
# (short) --node-monitor-grace the node goes Ready=Unknown and its pod
# Ready=False, while its container keeps running. When the link heals,
# node and pod become Ready again with the same container, no restart.
# The namespace and the veths are removed at exit, also on failure.
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
c = ctest.Cluster(t, "80-fault-netns")
pb = c.pb
GRACE = 12
tag = "cf%d" % (os.getpid() % 100000)
ns, host_if, node_if = tag, tag + "h", tag + "n"
net = "10.213.%d" % (os.getpid() % 250)
host_ip, node_ip = net + ".1", net + ".2"
root = os.path.join(c.dir, "n1")
rr = os.path.join(root, "runc")


def cleanup():
    ctest.node_cleanup(root, rr)
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
                        "--node-monitor-grace", str(GRACE))
api.channel = fu.with_token(api.channel, "tok-admin")
kubelet = c.start("kubelet-n1", ["nsenter", "--net=/run/netns/" + ns, c.bin("coracle-kubelet"),
                                 "--config", os.path.join(pki, "kubelet-n1.conf"), "--node-name", "n1",
                                 "--root-dir", root, "--healthz-listen", "", "--node-status-update-period", "2"])


def node_ready():
    n = api.try_call("Nodes", "Get", pb.GetRequest(name="n1"))[0]
    return [x.status for x in n.status.conditions if x.type == "Ready"][0] if n else None


def pod():
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name="p"))[0]


def pod_ready(p):
    r = [x.status for x in p.status.conditions if x.type == "Ready"] if p else []
    return r[0] if r else None


def cs0(p):
    return p.status.containerStatuses[0] if p and p.status.containerStatuses else None


def running():
    r = subprocess.run(["runc", "--root", rr, "list"], capture_output=True, text=True)
    return [l.split()[0] for l in r.stdout.splitlines()[1:] if l.split()[2:3] == ["running"]]


t.ok(c.wait_for(lambda: node_ready() == "True", timeout=ctest.DEADLINE), "the kubelet in its network namespace registers over TLS: n1 Ready")
api.call("Pods", "Create", pb.Pod(metadata=ctest.meta("p", "default"), spec=pb.PodSpec(
    nodeName="n1", terminationGracePeriodSeconds=1,
    containers=[pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                             command=["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"])])))
p = c.wait_for(lambda: (lambda p: p if pod_ready(p) == "True" else None)(pod()), timeout=ctest.DEADLINE)
t.ok(p, "pod p Running and Ready")
cid = cs0(p).containerID if p else None

# ---- cut the link ----
fu.sh("ip link set %s down" % host_if, check=True)
t0 = time.time()
t.ok(c.wait_for(lambda: node_ready() == "Unknown", timeout=GRACE + ctest.DEADLINE, interval=0.3),
     "link down: node Ready=Unknown after %.1f s (grace %d s)" % (time.time() - t0, GRACE))
t.ok(c.wait_for(lambda: pod_ready(pod()) == "False", timeout=ctest.DEADLINE), "its pod Ready=False")
t.ok(cid and cid[7:] in running() and kubelet.alive(), "the container keeps running, the kubelet too")
cut_for = time.time() - t0
time.sleep(2)

# ---- heal ----
fu.sh("ip link set %s up" % host_if, check=True)
t0 = time.time()
t.ok(c.wait_for(lambda: node_ready() == "True", timeout=ctest.DEADLINE, interval=0.3),
     "link up: node Ready=True again after %.1f s" % (time.time() - t0))
p = c.wait_for(lambda: (lambda p: p if pod_ready(p) == "True" else None)(pod()), timeout=ctest.DEADLINE, interval=0.3)
t.ok(p, "pod Ready=True again after %.1f s" % (time.time() - t0))
t.ok(p and cs0(p).containerID == cid and cs0(p).restartCount == 0 and p.status.phase == "Running",
     "same container, restartCount 0, Running")
t.is_(running(), [cid[7:]] if cid else [], "runc: that one container only")
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="p"))
t.ok(c.wait_for(lambda: pod() is None, timeout=ctest.DEADLINE), "deleting the pod still works through the healed link")
t.diag("FIGURES netns: partition=%.1fs grace=%d" % (cut_for, GRACE))
t.done()
