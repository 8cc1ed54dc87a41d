#!/usr/bin/python3
# Cluster DNS answered by the kubelet (--cluster-dns): a kubelet in a
# network namespace of the test's own, its pods on the built-in bridge
# network, Services and EndpointSlices written over gRPC. A pod resolves
# <svc>.<ns>.svc.cluster.local, and the short <svc> and <svc>.<ns> through
# its search path (busybox nslookup); the responder, asked directly with
# drill: SRV for a named port, a headless Service's ready endpoints and
# their hostnames, PTR of ClusterIPs and endpoints with a hostname, pod A
# records, ExternalName as CNAME, NXDOMAIN with the
# zone's SOA, other names forwarded to an upstream the test runs on
# loopback inside the namespace (TCP when its UDP answer is truncated);
# garbage on both sockets changes nothing. resolv.conf for each dnsPolicy.
# The namespace (and so every bridge, veth, device and rule in it) is
# removed at the end, also when the test fails.
import os, random, re, socket, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet

t = ctest.Tap()
ctest.need_root(t)
for f in ("/usr/sbin/runc", "/bin/busybox", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local",
          "/usr/bin/nsenter", "/usr/bin/drill"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)
c = ctest.Cluster(t, "57-net-dns")
pb = c.pb
tag = "%05d" % random.randrange(100000)
node_ns, bridge = "cdns" + tag, "cdnsbr" + tag
root = os.path.join(c.dir, "kroot")
runc_root = os.path.join(root, "runc")
net = random.randrange(1, 250)
pod_cidr = "10.251.%d.0/24" % net
dns_ip = "169.254.20.10"


def sh(*argv, check=False, timeout=60):
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=timeout)


def cleanup():
    ctest.node_cleanup(root, runc_root)
    sh("ip", "netns", "del", node_ns)


c.on_teardown(cleanup)
sh("ip", "netns", "add", node_ns, check=True)
sh("ip", "-n", node_ns, "link", "set", "lo", "up", check=True)
klet.import_busybox(t, root)

resolv = os.path.join(c.dir, "node-resolv.conf")
open(resolv, "w").write("nameserver 127.0.0.1\nsearch example.org\noptions timeout:2\n")
up = c.start("fakedns", ["ip", "netns", "exec", node_ns, "/usr/bin/python3",
                         os.path.join(ctest.SRC, "t", "lib", "fakedns.py"), "127.0.0.1"])
sock = os.path.join(c.dir, "api.sock")
api = c.start_apiserver("--listen", "unix:" + sock)
k = c.start("kubelet-node1", [
    "nsenter", "--net=/run/netns/" + node_ns, c.bin("coracle-kubelet"), "--server", "unix:" + sock,
    "--node-name", "node1", "--root-dir", root, "--healthz-listen", "", "--pod-network", "bridge",
    "--pod-cidr", pod_cidr, "--bridge", bridge, "--cluster-dns", dns_ip, "--resolv-conf", resolv])


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def pod(name, **spec):
    api.call("Pods", "Create", pb.Pod(metadata=ctest.meta(name, "default"), spec=pb.PodSpec(
        nodeName="node1", terminationGracePeriodSeconds=1, containers=[
            pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                         command=["sleep", "3600"])], **spec)))


def running(name):
    return c.wait_for(lambda: (lambda p: p if p and p.status.phase == "Running" else None)(get(name)),
                      timeout=2 * ctest.DEADLINE)


pod("client")
pod("web-0", hostname="web-0", subdomain="hl")
cl, w0 = running("client"), running("web-0")
t.ok(cl and w0 and cl.status.podIP and w0.status.podIP, "pods Running with IPs")
if not (cl and w0 and cl.status.podIP):
    t.bail("pods did not start:\n" + k.tail())
cid = cl.status.containerStatuses[0].containerID[7:]
w0ip = w0.status.podIP


def service(name, vip, ports, **spec):
    api.call("Services", "Create", pb.Service(metadata=ctest.meta(name, "default"), spec=pb.ServiceSpec(
        clusterIP=vip, clusterIPs=[vip] if vip and vip != "None" else [], ports=[
            pb.ServicePort(name=n, protocol=pr, port=p, targetPort=pb.IntOrString(type=0, intVal=8080))
            for n, pr, p in ports], **spec)))


def endpoints(name, eps, ports):
    """eps: [(ip, ready, hostname)]"""
    m = ctest.meta(name + "-x", "default")
    m.labels["kubernetes.io/service-name"] = name
    api.call("EndpointSlices", "Create", pb.EndpointSlice(
        metadata=m, addressType="IPv4",
        ports=[pb.EndpointPort(name=n, protocol=pr, port=p) for n, pr, p in ports],
        endpoints=[pb.Endpoint(addresses=[a], conditions=pb.EndpointConditions(ready=r),
                               **({"hostname": h} if h else {})) for a, r, h in eps]))


vip = "10.96.%d.10" % net
service("web", vip, [("http", "TCP", 80), ("metrics", "UDP", 9100)], type="ClusterIP")
service("hl", "None", [("http", "TCP", 80)], type="ClusterIP")
other = "10.251.%d.200" % net
endpoints("hl", [(w0ip, True, "web-0"), (other, True, None), ("10.251.%d.201" % net, False, None)],
          [("http", "TCP", 8080)])
service("ext", "", [], type="ExternalName", externalName="ext.example")


def drill(name, typ="A", tcp=False):
    """(rcode, answer records, authority records); records are (name, ttl, type, data)."""
    r = sh("ip", "netns", "exec", node_ns, "drill", *(["-t"] if tcp else []), "@" + dns_ip, name, typ,
           timeout=30)
    m = re.search(r"rcode: (\w+)", r.stdout)
    sections, cur = {}, None
    for line in r.stdout.splitlines():
        s = re.match(r";; (\w+) SECTION:", line)
        if s:
            cur = sections.setdefault(s.group(1), [])
        elif line.startswith(";;") or not line.strip():
            cur = None
        elif cur is not None:
            f = line.split(None, 4)
            cur.append((f[0], int(f[1]), f[3], f[4] if len(f) > 4 else ""))
    return (m.group(1) if m else r.stdout + r.stderr, sections.get("ANSWER", []),
            sections.get("AUTHORITY", []))


ok = c.wait_for(lambda: drill("web.default.svc.cluster.local")[0] == "NOERROR", timeout=ctest.DEADLINE)
rc, an, _ = drill("web.default.svc.cluster.local")
t.is_((rc, an), ("NOERROR", [("web.default.svc.cluster.local.", 5, "A", vip)]),
      "A <svc>.<ns>.svc.cluster.local: the ClusterIP, TTL 5")


def nslookup(name):
    r = subprocess.run(["runc", "--root", runc_root, "exec", cid, "nslookup", name],
                       capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


for name in ("web.default.svc.cluster.local", "web"):
    out = nslookup(name)
    t.ok(re.search(r"Address:?\s+%s\b" % re.escape(vip), out),
         "a pod resolves %s with nslookup (%s)" % (name, out.strip().replace("\n", " | ")))
# busybox nslookup tries the search path only for names without dots; the C library's resolver
# (ping's) follows ndots:5 as applications do
for name in ("web.default", "web"):
    r = subprocess.run(["runc", "--root", runc_root, "exec", cid, "ping", "-c1", "-W1", name],
                       capture_output=True, text=True, timeout=30)
    t.like(r.stdout, "PING %s (%s)" % (name, vip), "a pod's resolver finds %s through the search path" % name)
r = subprocess.run(["runc", "--root", runc_root, "exec", cid, "ping", "-c1", "-W1", "ext"],
                   capture_output=True, text=True, timeout=30)
t.like(r.stdout, "PING ext (203.0.113.7)", "a pod's resolver follows an ExternalName to its address")

rc, an, _ = drill("_http._tcp.web.default.svc.cluster.local", "SRV")
t.is_(an, [("_http._tcp.web.default.svc.cluster.local.", 5, "SRV", "0 100 80 web.default.svc.cluster.local.")],
      "SRV of a named port: priority 0, weight 100, the port, the Service's name")
rc, an, _ = drill("_metrics._udp.web.default.svc.cluster.local", "SRV")
t.is_([a[4 - 1] for a in an], ["0 100 9100 web.default.svc.cluster.local."], "SRV of a UDP port")
rc, an, auth = drill("_metrics._tcp.web.default.svc.cluster.local", "SRV")
t.is_((rc, an), ("NXDOMAIN", []), "no SRV for a port over the other protocol")

rc, an, _ = drill("hl.default.svc.cluster.local")
t.is_(sorted(a[3] for a in an), sorted([w0ip, other]), "headless: A records of the ready endpoints")
rc, an, _ = drill("web-0.hl.default.svc.cluster.local")
t.is_([a[3] for a in an], [w0ip], "headless: <hostname>.<svc> of an endpoint with a hostname")
rc, an, _ = drill("10-251-%d-200.hl.default.svc.cluster.local" % net)
t.is_([a[3] for a in an], [other], "headless: the dashed address of one without")
rc, an, _ = drill("_http._tcp.hl.default.svc.cluster.local", "SRV")
t.is_(sorted(a[3] for a in an), sorted(["0 50 8080 web-0.hl.default.svc.cluster.local.",
                                        "0 50 8080 10-251-%d-200.hl.default.svc.cluster.local." % net]),
      "headless SRV: one per ready endpoint, weights 100/n, the endpoint's port")



def rev(ip):
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


rc, an, _ = drill(rev(vip), "PTR")
t.is_((rc, an), ("NOERROR", [(rev(vip) + ".", 5, "PTR", "web.default.svc.cluster.local.")]),
      "PTR of a ClusterIP: <svc>.<ns>.svc.cluster.local")
rc, an, _ = drill(rev(w0ip), "PTR")
t.is_((rc, [a[3] for a in an]), ("NOERROR", ["web-0.hl.default.svc.cluster.local."]),
      "PTR of a ready endpoint with a hostname: <hostname>.<svc>.<ns>.svc.cluster.local")
rc, an, auth = drill(rev(other), "PTR")
t.is_((rc, an, auth), ("NXDOMAIN", [], []),
      "PTR of an endpoint without a hostname: forwarded (the node's nameserver's NXDOMAIN)")
out = nslookup(vip)
t.ok("web.default.svc.cluster.local" in out,
     "a pod looks a ClusterIP up by address (%s)" % out.strip().replace("\n", " | "))

rc, an, _ = drill("10-251-%d-77.default.pod.cluster.local" % net)
t.is_([a[3] for a in an], ["10.251.%d.77" % net], "pod A record <a-b-c-d>.<ns>.pod.cluster.local")
rc, an, _ = drill("ext.default.svc.cluster.local", "CNAME")
t.is_(an, [("ext.default.svc.cluster.local.", 5, "CNAME", "ext.example.")], "ExternalName: a CNAME")
rc, an, _ = drill("ext.default.svc.cluster.local")
t.is_([(a[2], a[3]) for a in an], [("CNAME", "ext.example."), ("A", "203.0.113.7")],
      "ExternalName, A: the CNAME, then the target's address from the node's nameserver")

rc, an, auth = drill("nosuch.default.svc.cluster.local")
t.ok(rc == "NXDOMAIN" and not an and len(auth) == 1 and auth[0][2] == "SOA"
     and auth[0][3].startswith("ns.dns.cluster.local. hostmaster.cluster.local. ")
     and auth[0][3].endswith(" 7200 1800 86400 5"),
     "NXDOMAIN with the zone's SOA in the authority section (%s)" % (auth,))
rc, an, auth = drill("web.default.svc.cluster.local", "AAAA")
t.ok(rc == "NOERROR" and not an and auth and auth[0][2] == "SOA", "NODATA (AAAA of a Service) with the SOA")

rc, an, _ = drill("foo.example")
t.is_((rc, [a[3] for a in an]), ("NOERROR", ["203.0.113.7"]), "other names go to the node's nameserver")
rc, an, _ = drill("big.example")
t.is_((rc, [a[3] for a in an]), ("NOERROR", ["203.0.113.8"]), "a truncated upstream answer is asked again over TCP")
rc, an, _ = drill("nothing.invalid")
t.is_(rc, "NXDOMAIN", "the upstream's NXDOMAIN comes back as it is")
rc, an, _ = drill("web.default.svc.cluster.local", tcp=True)
t.is_([a[3] for a in an], [vip], "the responder answers over TCP too")
out = nslookup("foo.example")
t.ok("203.0.113.7" in out, "a pod resolves an outside name (%s)" % out.strip().replace("\n", " | "))

# garbage on both sockets: the responder keeps answering
garbage = r'''
import os, socket
for i in range(300):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(os.urandom(i % 40 + (12 if i % 3 else 0)), ("DNSIP", 53))
    u.close()
for i in range(20):
    s = socket.create_connection(("DNSIP", 53), timeout=5)
    s.sendall(os.urandom(i * 37 + 1) if i % 2 else b"\xff\xff" + os.urandom(100))
    s.close()
'''.replace("DNSIP", dns_ip)
r = sh("ip", "netns", "exec", node_ns, "/usr/bin/python3", "-c", garbage)
rc, an, _ = drill("web.default.svc.cluster.local")
t.ok(r.returncode == 0 and k.alive() and [a[3] for a in an] == [vip],
     "random bytes over UDP and TCP: still answering (%s)" % r.stderr.strip()[-200:])

# dnsPolicy None needs a dnsConfig with a nameserver; the resolver's limits hold
for spec, want in (({"dnsPolicy": "None"}, "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"),
                   ({"dnsConfig": pb.PodDNSConfig(nameservers=["1.1.1.1", "1.0.0.1", "8.8.8.8", "9.9.9.9", "x"])},
                    "must not have more than 3 nameservers")):
    _, err = api.try_call("Pods", "Create", pb.Pod(metadata=ctest.meta("bad", "default"), spec=pb.PodSpec(
        nodeName="node1", containers=[pb.Container(name="c", image="progrium/busybox")], **spec)))
    t.like(str(err), want, "refused: %s" % want)

# resolv.conf for each dnsPolicy
pod("dflt", dnsPolicy="Default")
pod("none", dnsPolicy="None", dnsConfig=pb.PodDNSConfig(
    nameservers=["192.0.2.53"], searches=["my.dns.search.suffix"],
    options=[pb.PodDNSConfigOption(name="ndots", value="2"), pb.PodDNSConfigOption(name="edns0")]))
pod("merged", dnsConfig=pb.PodDNSConfig(
    nameservers=["192.0.2.54"], searches=["extra.example"],
    options=[pb.PodDNSConfigOption(name="ndots", value="2")]))
pod("hostcf", hostNetwork=True)
pod("hostcfh", hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
cluster_search = "search default.svc.cluster.local svc.cluster.local cluster.local example.org\n"
want = {
    "client": cluster_search + "nameserver %s\noptions ndots:5\n" % dns_ip,
    "dflt": "search example.org\nnameserver 127.0.0.1\noptions timeout:2\n",
    "none": "search my.dns.search.suffix\nnameserver 192.0.2.53\noptions ndots:2 edns0\n",
    "merged": cluster_search.rstrip("\n") + " extra.example\nnameserver %s\nnameserver 192.0.2.54\n"
              "options ndots:2\n" % dns_ip,
    "hostcf": "search example.org\nnameserver 127.0.0.1\noptions timeout:2\n",
    "hostcfh": cluster_search + "nameserver %s\noptions ndots:5\n" % dns_ip,
}
for name, text in want.items():
    p = running(name)
    got = open(os.path.join(root, "pods", p.metadata.uid, "resolv.conf")).read() if p else None
    t.is_(got, text, "resolv.conf of dnsPolicy %s%s" % (p.spec.dnsPolicy if p else "?",
                                                        " (hostNetwork)" if p and p.spec.hostNetwork else
                                                        " with dnsConfig" if p and p.spec.HasField("dnsConfig") else ""))
out = subprocess.run(["runc", "--root", runc_root, "exec", cid, "cat", "/etc/resolv.conf"],
                     capture_output=True, text=True, timeout=30).stdout
t.is_(out, want["client"], "the container sees it as /etc/resolv.conf")

addrs = sh("ip", "-n", node_ns, "-br", "addr").stdout
t.ok(re.search(r"^(coracle-dns|lo)\s.*\b%s/32\b" % re.escape(dns_ip), addrs, re.M),
     "the address is on the device coracle-dns (lo without a dummy driver)")
k.stop()
t.ok(dns_ip not in sh("ip", "-n", node_ns, "-br", "addr").stdout
     and sh("ip", "-n", node_ns, "link", "show", "coracle-dns").returncode != 0,
     "the address (and coracle-dns) are gone when the kubelet stops")
# --cleanup removes what a kubelet that died left
sh("ip", "-n", node_ns, "addr", "add", dns_ip + "/32", "dev", "lo", check=True)
r = sh("nsenter", "--net=/run/netns/" + node_ns, c.bin("coracle-kubelet"), "--cleanup",
       "--cluster-dns", dns_ip, "--root-dir", root)
t.ok(r.returncode == 0 and dns_ip not in sh("ip", "-n", node_ns, "-br", "addr").stdout,
     "--cleanup removes the --cluster-dns address (%s)" % r.stderr.strip()[-200:])
t.done()
