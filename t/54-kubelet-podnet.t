#!/usr/bin/python3
# Pod IPs by default. The controller manager's node IPAM (--allocate-node-
# cidrs) gives each Node its own spec.podCIDR, refuses to hand out a range
# twice, says CIDRNotAvailable when the cluster range is full and frees a
# deleted Node's range; the apiserver refuses to change a range once set.
# A kubelet without any CNI config (--pod-network bridge) then gives its
# pods IPs from its Node's range: shown in status and `get po -o wide`,
# the seed's multi-container pod answers on its IP from another pod,
# hostPort answers on the node's address, and once the pods and the
# kubelet are gone nothing it made is left.
#
# The kubelet runs in a network namespace of the test's own with a veth to
# the root namespace: its bridge, veths and iptables rules never touch the
# machine's network. Names carry this run's pid; namespaces of runs that
# died are removed at the start.
import os, random, re, subprocess, sys, time, urllib.request
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet
import seed

t = ctest.Tap()
ctest.need_root(t)
for f in ("/usr/sbin/runc", "/usr/bin/nsenter", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local",
          "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "/usr/sbin/iptables"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)


def sh(*argv):
    return subprocess.run(list(argv), capture_output=True, text=True)


def sweep_dead_runs():
    """Namespaces t54-PID-TAG of runs whose process is gone: deleting one also
    deletes its veth pair."""
    for l in sh("ip", "netns", "list").stdout.splitlines():
        m = re.match(r"(t54-(\d+)-\w+)", l)
        if m and not os.path.exists("/proc/%s" % m.group(2)):
            sh("ip", "netns", "del", m.group(1))


sweep_dead_runs()
tag = "%x" % random.randrange(0x1000, 0xffff)
ns = "t54-%d-%s" % (os.getpid(), tag)
veth_root, veth_node = "t54%sr" % tag, "t54%sn" % tag
sub = random.randrange(1, 250)
host_addr, node_addr = "172.31.%d.1" % sub, "172.31.%d.2" % sub
cluster_cidr = "10.%d.0.0/23" % random.randrange(200, 250)   # two node ranges of /24

c = ctest.Cluster(t, "54-kubelet-podnet")
pb = c.pb
root = os.path.join(c.dir, "node1")
runc_root = os.path.join(root, "runc")


def cleanup():
    ctest.node_cleanup(root, runc_root)
    sh("ip", "netns", "del", ns)
    sh("ip", "link", "del", veth_root)


c.on_teardown(cleanup)
for argv in (["ip", "netns", "add", ns],
             ["ip", "link", "add", veth_root, "type", "veth", "peer", "name", veth_node, "netns", ns],
             ["ip", "addr", "add", host_addr + "/30", "dev", veth_root],
             ["ip", "link", "set", veth_root, "up"],
             ["ip", "-n", ns, "addr", "add", node_addr + "/30", "dev", veth_node],
             ["ip", "-n", ns, "link", "set", veth_node, "up"],
             ["ip", "-n", ns, "link", "set", "lo", "up"]):
    r = sh(*argv)
    if r.returncode:
        t.bail("%s: %s" % (" ".join(argv), r.stderr))

sock = os.path.join(c.dir, "api.sock")
api = c.start_apiserver("--listen", "unix:" + sock)
c.start_scheduler()
c.start_controller_manager("--leader-elect=false", "--allocate-node-cidrs", "--cluster-cidr",
                           cluster_cidr, "--node-cidr-mask-size", "24")
base = cluster_cidr.split("/")[0].rsplit(".", 2)[0]
ranges = {base + ".0.0/24", base + ".1.0/24"}


def node(name):
    return api.try_call("Nodes", "Get", pb.GetRequest(name=name))[0]


def cidrs(name):
    n = node(name)
    return list(n.spec.podCIDRs) if n else None


# ---- node IPAM
for n in ("n1", "n2"):
    api.call("Nodes", "Create", pb.Node(metadata=ctest.meta(n)))
got = c.wait_for(lambda: (lambda a, b: (a, b) if a and b else None)(cidrs("n1"), cidrs("n2")),
                 timeout=ctest.DEADLINE)
t.ok(got and {got[0][0], got[1][0]} == ranges and len(got[0]) == len(got[1]) == 1,
     "two nodes, two distinct ranges from --cluster-cidr: %s" % (got,))
n1 = node("n1")
t.is_(n1.spec.podCIDR if n1 else "", got[0][0] if got else None, "spec.podCIDR is podCIDRs[0]")
n1.spec.podCIDR = base + ".7.0/24"
del n1.spec.podCIDRs[:]
n1.spec.podCIDRs.append(base + ".7.0/24")
_, e = api.try_call("Nodes", "Update", n1)
msg = e.message if e else ""
t.ok("spec.podCIDRs: Forbidden: node updates may not change podCIDR except "
     "from \"\" to valid" in (msg or ""), "changing a podCIDR is refused: %s" % msg)

api.call("Nodes", "Create", pb.Node(metadata=ctest.meta("n3")))


def event(reason, name):
    l = api.call("Events", "List", pb.ListRequest(namespace="default"))
    return [e for e in l.items if e.reason == reason and e.involvedObject.name == name]


evs = c.wait_for(lambda: event("CIDRNotAvailable", "n3"), timeout=ctest.DEADLINE)
t.ok(evs and evs[0].message == "Node n3 status is now: CIDRNotAvailable" and evs[0].type == "Normal",
     "cluster range full: event CIDRNotAvailable on n3")
t.is_(cidrs("n3"), [], "n3 has no range")
old1 = got[0][0] if got else ""
api.call("Nodes", "Delete", pb.DeleteRequest(name="n1"))
t.is_(c.wait_for(lambda: cidrs("n3"), timeout=ctest.DEADLINE), [old1], "n1's range is freed and goes to n3")
for n in ("n2", "n3"):
    api.call("Nodes", "Delete", pb.DeleteRequest(name=n))

# ---- a kubelet with no CNI config, in its own network namespace
images = os.path.join(root, "images")
for img in ("nginx", "busybox"):
    p = sh("bash", os.path.join(ctest.SRC, "contrib", "images", img + ".sh"))
    path = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    rc, out, err = c.ctl("image", "import", path, "--image-dir", images, timeout=300)
    if rc:
        t.bail("image import %s: %s" % (img, err))
k = c.start("kubelet-node1", ["nsenter", "--net=/var/run/netns/" + ns, c.bin("coracle-kubelet"),
                              "--server", "unix:" + sock, "--node-name", "node1", "--root-dir", root,
                              "--pod-network", "bridge", "--healthz-listen", ""])
range1 = c.wait_for(lambda: cidrs("node1"), timeout=ctest.DEADLINE)
t.ok(range1 and range1[0] in ranges, "the kubelet's node gets a range: %s" % (range1,))
prefix = range1[0].rsplit(".", 1)[0] + "." if range1 else "?"


def pod(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def running(name):
    p = pod(name)
    return p if p and p.status.phase == "Running" and all(s.ready for s in p.status.containerStatuses) else None


rc, out, err = c.ctl("apply", "-f", seed.manifest("multiple-container-pod.yaml"))
t.is_((rc, out + err), (0, "pod/nginx created\n"), "apply the seed's multiple-container-pod.yaml")
hp = 20000 + random.randrange(0, 10000)
api.call("Pods", "Create", pb.Pod(metadata=ctest.meta("client", "default"), spec=pb.PodSpec(
    terminationGracePeriodSeconds=1, containers=[
        pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                     command=["sh", "-c", "mkdir /www; echo hostport ok > /www/index.html; "
                              "exec httpd -f -p 8080 -h /www"],
                     ports=[pb.ContainerPort(containerPort=8080, hostPort=hp)])])))
api.call("Pods", "Create", pb.Pod(metadata=ctest.meta("hostnet", "default"), spec=pb.PodSpec(
    hostNetwork=True, terminationGracePeriodSeconds=1, containers=[
        pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                     command=["sleep", "1000000"])])))
pn = c.wait_for(lambda: running("nginx"), timeout=2 * ctest.DEADLINE)
pc = c.wait_for(lambda: running("client"), timeout=ctest.DEADLINE)
ph = c.wait_for(lambda: running("hostnet"), timeout=ctest.DEADLINE)
t.ok(pn and pc and ph, "the seed pod, a client and a hostNetwork pod are Running")
ipn, ipc = (pn.status.podIP if pn else ""), (pc.status.podIP if pc else "")
t.ok(ipn.startswith(prefix) and ipc.startswith(prefix) and ipn != ipc,
     "pod IPs from the node's range: %s %s" % (ipn, ipc))
t.ok(pn and [x.ip for x in pn.status.podIPs] == [ipn], "status.podIPs")
t.ok(pn and pn.status.hostIP == node_addr and [x.ip for x in pn.status.hostIPs] == [node_addr],
     "status.hostIP and hostIPs: the node's InternalIP %s" % (pn.status.hostIP if pn else None))
t.ok(ph and ph.status.podIP == node_addr, "a hostNetwork pod's IP is the node's")
rc, out, err = c.ctl("get", "po", "-o", "wide")
row = seed.row_of(out, "nginx")
t.ok(row and ipn in row and out.splitlines()[0].split()[5] == "IP", "get po -o wide shows the IP:\n" + out)

cid = pc.status.containerStatuses[0].containerID[7:] if pc else ""
r = sh("runc", "--root", runc_root, "exec", cid, "wget", "-qO-", "http://%s:80/" % ipn)
t.ok("Welcome to nginx!" in r.stdout, "the client pod reaches the seed pod's nginx by its IP")
r = sh("runc", "--root", runc_root, "exec", cid, "wget", "-qO-", "http://%s:8080/" % ipc)
t.is_(r.stdout, "hostport ok\n", "a pod reaches itself by its IP (hairpin)")
try:
    body = urllib.request.urlopen("http://%s:%d/" % (node_addr, hp), timeout=10).read().decode()
except Exception as e:
    body = str(e)
t.is_(body, "hostport ok\n", "hostPort %d answers on the node address" % hp)
conf = os.path.join(root, "net.d", "10-coracle.conflist")
t.ok(os.path.exists(conf) and range1 and range1[0] in open(conf).read(), "the conflist names the node's range")

# a kubelet stopped while pods run leaves their network alone, and a new one adopts it
k.stop()
links = [l.split(":")[1].strip().split("@")[0] for l in sh("ip", "-n", ns, "-o", "link").stdout.splitlines()]
t.ok("cni0" in links and len(links) == 5, "kubelet stopped with pods running: the bridge and their two veths stay: %s" % links)
k = c.start("kubelet-node1b", ["nsenter", "--net=/var/run/netns/" + ns, c.bin("coracle-kubelet"),
                               "--server", "unix:" + sock, "--node-name", "node1", "--root-dir", root,
                               "--pod-network", "bridge", "--healthz-listen", ""])
time.sleep(2)
t.is_(pod("nginx").status.podIP, ipn, "after a kubelet restart the pod keeps its IP")

for n in ("nginx", "client", "hostnet"):
    api.try_call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
t.ok(c.wait_for(lambda: not any(pod(n) for n in ("nginx", "client", "hostnet")), timeout=2 * ctest.DEADLINE),
     "pods deleted")
ipam = os.path.join(root, "cni", "networks", "coracle")
t.is_([f for f in os.listdir(ipam) if f[0].isdigit()] if os.path.isdir(ipam) else [], [], "host-local holds no IP")
links = [l.split(":")[1].strip().split("@")[0] for l in sh("ip", "-n", ns, "-o", "link").stdout.splitlines()]
t.is_(sorted(links), sorted(["lo", "cni0", veth_node]), "with the kubelet up: the bridge stays, no pod veth")
nat = sh("ip", "netns", "exec", ns, "iptables-save", "-t", "nat").stdout
t.is_(re.findall(r"-A POSTROUTING -s .*|.*-j CNI-DN-.*", nat), [], "no per-pod masquerade or hostPort rule")
k.stop()
links = [l.split(":")[1].strip().split("@")[0] for l in sh("ip", "-n", ns, "-o", "link").stdout.splitlines()]
t.is_(sorted(links), sorted(["lo", veth_node]), "kubelet stopped: its bridge is gone")
t.is_([l for l in open("/proc/mounts") if (" " + root + "/") in l], [], "no mounts left")
t.done()
