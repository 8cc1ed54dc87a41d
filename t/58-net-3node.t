#!/usr/bin/python3
# Three nodes end to end: an apiserver, scheduler and controller manager
# (node IPAM from --cluster-cidr) on this machine, three kubelets each in a
# network namespace of its own (t/lib/netlab.py), nodes A and B on one test
# subnet and C on another, routed by a fourth namespace; the kubelets give
# pods their built-in network (--pod-network vxlan: bridge + VXLAN between
# nodes, --cluster-cidr: no NAT between pods) and program Services
# (--proxy-mode nftables) and answer DNS (--cluster-dns). A pod on A reaches
# a pod on C by IP, and C sees the client pod's own address; by ClusterIP;
# by the Service's name and short name; a NodePort answers a client
# namespace that is not a node; deleting a backend pod, then cutting a node
# (its kubelet frozen, its link to the switch down) moves traffic to the
# other backends within the node grace; after the pods and the kubelets go,
# no route, interface or nftables table they made is left, and the lab's
# namespaces are removed (also when the test fails).
import os, random, re, signal, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import netlab

t = ctest.Tap()
ctest.need_root(t)
for f in ("/usr/sbin/runc", "/bin/busybox", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local",
          "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "/usr/sbin/nft", "/usr/bin/nsenter", "/usr/bin/curl"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)
CLUSTER_CIDR = "10.244.0.0/16"
GRACE = 15  # --node-monitor-grace: above the kubelets' 10 s Lease renewal
RTPROT = "157"

c = ctest.Cluster(t, "58-net-3node")
pb = c.pb
lab = netlab.Lab(t, c, nodes=3, subnets=2, cni=False)
A, B, C = lab.nodes  # A, B on subnet 0; C on subnet 1
api = c.start_apiserver("--listen", "unix:" + lab.api_socket(), "--node-monitor-grace", str(GRACE))
c.start_scheduler("--leader-elect=false")
c.start_controller_manager("--leader-elect=false", "--allocate-node-cidrs", "--cluster-cidr", CLUSTER_CIDR,
                           "--node-cidr-mask-size", "24")
KARGS = ("--pod-network", "vxlan", "--cluster-cidr", CLUSTER_CIDR, "--proxy-mode", "nftables",
         "--cluster-dns", "169.254.20.10")
lab.start_kubelets(*KARGS)


def node_cidr(n):
    o = api.try_call("Nodes", "Get", pb.GetRequest(name=n))[0]
    return o.spec.podCIDR if o and o.spec.podCIDR else None


def routes(n):
    out = netlab.ip("-n", lab.ns(n), "-4", "route", "show", "proto", RTPROT, check=False)
    return sorted(l.split()[0] for l in out.splitlines() if l.strip())


def nft(n, *what):
    return lab.run(n, ["nft", "list"] + list(what)).stdout


cidr = {n: c.wait_for(lambda n=n: node_cidr(n), timeout=ctest.DEADLINE) for n in lab.nodes}
t.ok(all(cidr.values()) and len(set(cidr.values())) == 3, "node IPAM gives the three Nodes a range each: %s" % cidr)
want = {n: sorted(cidr[m] for m in lab.nodes if m != n) for n in lab.nodes}
t.ok(c.wait_for(lambda: all(routes(n) == want[n] for n in lab.nodes), timeout=ctest.DEADLINE),
     "every node routes the other two ranges over VXLAN: %s" % {n: routes(n) for n in lab.nodes})
t.ok(c.wait_for(lambda: all("ip daddr %s return" % CLUSTER_CIDR in nft(n, "table", "ip", "coracle-net")
                            for n in lab.nodes), timeout=ctest.DEADLINE),
     "each node masquerades only what leaves the cluster CIDR (table ip coracle-net)")

# backends: httpd answering its name, and its client's address through a CGI
WEB = ("mkdir -p /www/cgi-bin; echo %s > /www/index.html; echo '#!/bin/sh' > /www/cgi-bin/ip; "
       "echo 'echo Content-Type: text/plain; echo; echo $REMOTE_ADDR' >> /www/cgi-bin/ip; "
       "chmod +x /www/cgi-bin/ip; exec httpd -f -p 8080 -h /www")


def pod(name, node, cmd, labels=None):
    m = ctest.meta(name, "default")
    for k, v in (labels or {}).items():
        m.labels[k] = v
    api.call("Pods", "Create", pb.Pod(metadata=m, spec=pb.PodSpec(
        nodeName=node, terminationGracePeriodSeconds=1, containers=[
            pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                         command=["sh", "-c", cmd])])))


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def running(name):
    p = get(name)
    return p if p is not None and p.status.phase == "Running" and p.status.podIP else None


backends = {"wa": A, "wb": B, "wc": C}
for name, node in backends.items():
    pod(name, node, WEB % name, {"app": "web"})
pod("client", A, "exec sleep 3600")
pods = {n: c.wait_for(lambda n=n: running(n), timeout=2 * ctest.DEADLINE) for n in list(backends) + ["client"]}
t.ok(all(pods.values()), "pods on A, B and C Running with IPs: %s" % {n: p.status.podIP for n, p in pods.items() if p})
if not all(pods.values()):
    t.bail("pods did not start:\n" + "\n".join(k.tail(10) for k in lab.kubelets.values()))
ip = {n: p.status.podIP for n, p in pods.items()}
cid = pods["client"].status.containerStatuses[0].containerID[7:]


def from_client(url, n=1):
    """url fetched n times from the client pod on A: the answers ('ERR' for a failure)."""
    # (this busybox's wget crashes with -T: the subprocess' timeout bounds it)
    cmd = "for i in $(seq %d); do wget -qO- %s 2>/dev/null || echo ERR; done" % (n, url)
    try:
        r = subprocess.run(["runc", "--root", os.path.join(lab.roots[A], "runc"), "exec", cid, "sh", "-c", cmd],
                           capture_output=True, text=True, timeout=5 * n + 20)
    except subprocess.TimeoutExpired:
        return ["TIMEOUT"]
    return r.stdout.split()


def settle(url, ok):
    """Retries url until an answer passes ok (the first packets may wait for ARP); the last answers."""
    got = []
    for _ in range(20):
        got = from_client(url)
        if got and ok(got[0]):
            break
        time.sleep(0.3)
    return got


# ---- by pod IP, across subnets, without NAT
got = settle("http://%s:8080/" % ip["wc"], lambda a: a == "wc")
t.is_(got, ["wc"], "a pod on A reaches a pod on C by IP")
got = [a.replace("[::ffff:", "").rstrip("]") for a in from_client("http://%s:8080/cgi-bin/ip" % ip["wc"])]
t.is_(got, [ip["client"]], "the pod on C sees the client pod's own IP (no NAT between pods)")

# ---- the overlay's fast path: the tunnel outside conntrack
t.ok(all("udp dport 8472 notrack" in nft(n, "table", "ip", "coracle-vxlan") for n in lab.nodes),
     "each node keeps its VXLAN packets out of conntrack (table ip coracle-vxlan)")

# ---- by ClusterIP
api.call("Services", "Create", pb.Service(metadata=ctest.meta("web", "default"), spec=pb.ServiceSpec(
    type="NodePort", selector={"app": "web"}, ports=[pb.ServicePort(
        name="http", protocol="TCP", port=80, targetPort=pb.IntOrString(type=0, intVal=8080))])))
svc = api.call("Services", "Get", pb.GetRequest(namespace="default", name="web"))
vip, node_port = svc.spec.clusterIP, svc.spec.ports[0].nodePort


def chain_eps(n):
    """The backends' IPs in node n's service chain of web (None before it exists)."""
    text = nft(n, "chain", "ip", "coracle-proxy", "service-default/web/tcp/http")
    return sorted(a for a, b in ip.items() if a in backends and re.search(r"\b%s( \. |:)8080\b" % re.escape(b), text)) \
        if text else None


t.ok(c.wait_for(lambda: chain_eps(A) == ["wa", "wb", "wc"], timeout=ctest.DEADLINE),
     "A's proxy spreads the Service over the three backends: %s" % chain_eps(A))
got = from_client("http://%s/" % vip, n=30)
t.ok(set(got) == {"wa", "wb", "wc"}, "a pod on A reaches the pods on A, B and C by ClusterIP: %s" % got)

# ---- by DNS name: A's kubelet answers its pods (--cluster-dns), the name resolves to the ClusterIP
WEB = {"wa", "wb", "wc"}
got = settle("http://web.default.svc.cluster.local/", lambda a: a in WEB)
t.ok(got and got[0] in WEB, "a pod on A reaches the Service by its name: %s" % got)
got = from_client("http://web/", n=6)
t.ok(len(got) == 6 and set(got) <= WEB, "and by its short name, through the search path: %s" % got)

# ---- NodePort from a client namespace that is not a node
cmd = "for i in $(seq 12); do curl -s -m 3 http://%s:%d/ || echo ERR; done" % (lab.addr[A], node_port)
got = lab.run("c", ["sh", "-c", cmd], timeout=80).stdout.split()
t.ok(len(got) == 12 and set(got) <= {"wa", "wb", "wc"}, "NodePort %d on A answers a client outside the nodes: %s"
     % (node_port, got))

# ---- a backend pod killed: traffic moves to the rest
t0 = time.time()
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="wa"))
t.ok(c.wait_for(lambda: chain_eps(A) == ["wb", "wc"], timeout=ctest.DEADLINE),
     "the deleted pod leaves A's service chain (%.1f s)" % (time.time() - t0))
got = from_client("http://%s/" % vip, n=20)
t.ok(len(got) == 20 and set(got) <= {"wb", "wc"}, "traffic goes to the remaining backends: %s" % got)

# ---- a node cut (its kubelet frozen, its link down): its pods leave within the grace
t0 = time.time()
lab.kubelets[B].proc.send_signal(signal.SIGSTOP)
netlab.ip("-n", lab.ns("sw"), "link", "set", "%s-0" % B, "down")
try:
    gone = c.wait_for(lambda: chain_eps(A) == ["wc"], timeout=GRACE + 3 * ctest.DEADLINE)
    took = time.time() - t0
    t.ok(gone, "node B cut: its pod leaves A's service chain (%.1f s, grace %d s)" % (took, GRACE))
    got = from_client("http://%s/" % vip, n=10)
    t.is_(set(got), {"wc"}, "and traffic goes to the pod on C only")
finally:
    netlab.ip("-n", lab.ns("sw"), "link", "set", "%s-0" % B, "up", check=False)
    lab.kubelets[B].proc.send_signal(signal.SIGCONT)

# ---- everything deleted: nothing the kubelets made is left
api.call("Services", "Delete", pb.DeleteRequest(namespace="default", name="web"))
t.ok(c.wait_for(lambda: "default/web/" not in nft(A, "table", "ip", "coracle-proxy"), timeout=ctest.DEADLINE),
     "the deleted Service's rules are gone on A")
for n in ("wb", "wc", "client"):
    api.try_call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
t.ok(c.wait_for(lambda: not any(get(n) for n in ("wb", "wc", "client")), timeout=2 * ctest.DEADLINE),
     "pods deleted")
for n in lab.nodes:
    lab.kubelets[n].stop()
left = {}
for n in lab.nodes:
    links = [l.split(":")[1].strip().split("@")[0] for l in
             netlab.ip("-n", lab.ns(n), "-o", "link", check=False).splitlines()]
    tables = nft(n, "tables").split()
    left[n] = [x for x in links if x != "lo" and not x.startswith("eth")] + routes(n) + \
        [x for x in tables if x.startswith("coracle")]
t.is_(left, {n: [] for n in lab.nodes},
      "after delete and shutdown: no bridge, veth, VXLAN device, route or nftables table of the kubelets")
c.teardown()
t.is_(lab.leftovers(), [], "every namespace of the lab is gone")
t.done()
