#!/usr/bin/python3
# The kubelet's Service proxy (nftables): a kubelet in a network namespace
# of the test's own (its pods on a CNI bridge inside it), Services and
# EndpointSlices written over gRPC. A pod reaches a ClusterIP; traffic
# spreads; ClientIP affinity sticks; a NodePort answers from a client
# namespace that is not a node; removing an endpoint moves traffic at the
# update; externalTrafficPolicy Local; headless gets no rules; no ready
# endpoint rejects; the table is gone when the kubelet stops. The
# namespaces (and so every bridge, veth and rule in them) are removed at
# the end, also when the test fails.
import json, os, random, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet

t = ctest.Tap()
ctest.need_root(t)
for f in ("/usr/sbin/runc", "/bin/busybox", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local",
          "/usr/sbin/nft", "/usr/bin/nsenter", "/usr/bin/curl"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)
c = ctest.Cluster(t, "56-net-services")
pb = c.pb
tag = "%05d" % random.randrange(100000)
node_ns, cli_ns = "cpxn" + tag, "cpxc" + tag
root = os.path.join(c.dir, "kroot")
runc_root = os.path.join(root, "runc")
net = random.randrange(1, 250)
link = random.randrange(1, 60) * 4  # a /30 between the node and the client namespace
node_ip, cli_ip = "192.168.%d.%d" % (net, link + 1), "192.168.%d.%d" % (net, link + 2)


def sh(*argv, check=False):
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def cleanup():
    ctest.node_cleanup(root, runc_root)
    for ns in (cli_ns, node_ns):
        sh("ip", "netns", "del", ns)


c.on_teardown(cleanup)
for ns in (node_ns, cli_ns):
    sh("ip", "netns", "add", ns, check=True)
    sh("ip", "-n", ns, "link", "set", "lo", "up", check=True)
sh("ip", "link", "add", "cpxa" + tag, "netns", node_ns, "type", "veth", "peer", "cpxb" + tag,
   "netns", cli_ns, check=True)
sh("ip", "-n", node_ns, "addr", "add", node_ip + "/30", "dev", "cpxa" + tag, check=True)
sh("ip", "-n", cli_ns, "addr", "add", cli_ip + "/30", "dev", "cpxb" + tag, check=True)
sh("ip", "-n", node_ns, "link", "set", "cpxa" + tag, "up", check=True)
sh("ip", "-n", cli_ns, "link", "set", "cpxb" + tag, "up", check=True)
sh("ip", "-n", cli_ns, "route", "add", "default", "via", node_ip, check=True)
sh("ip", "netns", "exec", node_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)

klet.import_busybox(t, root)
confdir = os.path.join(c.dir, "cni")
os.makedirs(confdir)
json.dump({"cniVersion": "1.0.0", "name": "coracle-test", "plugins": [
    {"type": "bridge", "bridge": "cpxbr" + tag, "isGateway": True, "ipMasq": False, "hairpinMode": True,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.252.%d.0/24" % net}]],
              "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": os.path.join(c.dir, "ipam")}}]},
    open(os.path.join(confdir, "10-test.conflist"), "w"))
sock = os.path.join(c.dir, "api.sock")
api = c.start_apiserver("--listen", "unix:" + sock)
kargv = ["nsenter", "--net=/run/netns/" + node_ns, c.bin("coracle-kubelet"), "--server",
         "unix:" + sock, "--node-name", "node1", "--root-dir", root, "--healthz-listen", "",
         "--proxy-mode", "nftables", "--cni-conf-dir", confdir]
k = c.start("kubelet-node1", kargv)


def nft_json(*what):
    r = sh("ip", "netns", "exec", node_ns, "nft", "-j", "list", *what)
    return json.loads(r.stdout) if r.returncode == 0 else None


def nft_text():
    return sh("ip", "netns", "exec", node_ns, "nft", "list", "table", "ip", "coracle-proxy").stdout


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


names = ("a", "b", "c")
for n in names:
    api.call("Pods", "Create", pb.Pod(metadata=ctest.meta(n, "default"), spec=pb.PodSpec(
        nodeName="node1", terminationGracePeriodSeconds=1, containers=[
            pb.Container(name="web", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                         command=["sh", "-c", "mkdir /www; echo %s > /www/index.html; exec httpd -f -p 8080 -h /www" % n])])))
pods = {n: c.wait_for(lambda n=n: (lambda p: p if p and p.status.phase == "Running" and p.status.podIP else None)(get(n)),
                      timeout=2 * ctest.DEADLINE) for n in names}
t.ok(all(pods.values()), "pods a, b, c Running with IPs")
if not all(pods.values()):
    t.bail("pods did not start:\n" + k.tail())
ip = {n: pods[n].status.podIP for n in names}
cid_a = pods["a"].status.containerStatuses[0].containerID[7:]


def from_a(url, n=1, timeout=3, cid=cid_a):
    """Fetches url n times from inside pod a (or container cid); the answers (or 'ERR')."""
    # (this busybox's wget crashes with -T: the subprocess' timeout bounds it)
    cmd = "for i in $(seq %d); do wget -qO- %s 2>/dev/null || echo ERR; done" % (n, url)
    try:
        r = subprocess.run(["runc", "--root", runc_root, "exec", cid, "sh", "-c", cmd],
                           capture_output=True, text=True, timeout=n * (timeout + 2) + 10)
    except subprocess.TimeoutExpired:
        return ["ERR"]
    return r.stdout.split()


def from_client(url, n=1, timeout=3):
    cmd = "for i in $(seq %d); do curl -s -m %d %s || echo ERR; done" % (n, timeout, url)
    r = subprocess.run(["ip", "netns", "exec", cli_ns, "sh", "-c", cmd], capture_output=True,
                       text=True, timeout=n * (timeout + 2) + 10)
    return r.stdout.split()


def service(name, vip, port, node_port=0, **spec):
    sp = pb.ServicePort(name="http", protocol="TCP", port=port,
                        targetPort=pb.IntOrString(type=0, intVal=8080))
    if node_port:
        sp.nodePort = node_port
    typ = "NodePort" if node_port else "ClusterIP"
    api.call("Services", "Create", pb.Service(metadata=ctest.meta(name, "default"), spec=pb.ServiceSpec(
        type=typ, clusterIP=vip, clusterIPs=[vip] if vip != "None" else [], ports=[sp],
        selector={"app": name}, **spec)))


def slice_of(name, eps):
    """eps: [(ip, ready, node)]"""
    m = ctest.meta(name + "-x", "default")
    m.labels["kubernetes.io/service-name"] = name
    return pb.EndpointSlice(metadata=m, addressType="IPv4",
                            ports=[pb.EndpointPort(name="http", protocol="TCP", port=8080)],
                            endpoints=[pb.Endpoint(addresses=[a], nodeName=nd,
                                                   conditions=pb.EndpointConditions(ready=r))
                                       for a, r, nd in eps])


def set_slice(name, eps):
    cur = api.try_call("EndpointSlices", "Get", pb.GetRequest(namespace="default", name=name + "-x"))[0]
    s = slice_of(name, eps)
    if cur is None:
        api.call("EndpointSlices", "Create", s)
    else:
        s.metadata.resourceVersion = cur.metadata.resourceVersion
        api.call("EndpointSlices", "Update", s)


def names_ep(text, addr):
    """Whether rules text sends traffic to addr:8080 (a DNAT map entry, a DNAT, an endpoint chain)."""
    return re.search(r"\b%s( \. |:|/)8080\b" % re.escape(addr), text) is not None


def has_element(key):
    return c.wait_for(lambda: key in nft_text(), timeout=ctest.DEADLINE)


vip = "10.96.%d.10" % net
service("web", vip, 80, node_port=30080)
set_slice("web", [(ip["b"], True, "node1"), (ip["c"], True, "node1")])
t.ok(has_element("%s . tcp . 80 : goto service-default/web/tcp/http" % vip),
     "the ClusterIP's element is in the service-ips map")
got = from_a("http://%s/" % vip, n=20)
t.ok(set(got) == {"b", "c"}, "a pod reaches the ClusterIP, spread over both endpoints: %s" % got)

# ClientIP affinity
vip_aff = "10.96.%d.11" % net
service("sticky", vip_aff, 80, sessionAffinity="ClientIP",
        sessionAffinityConfig=pb.SessionAffinityConfig(clientIP=pb.ClientIPConfig(timeoutSeconds=60)))
set_slice("sticky", [(ip["b"], True, "node1"), (ip["c"], True, "node1")])
has_element("%s . tcp . 80 : goto service-default/sticky/tcp/http" % vip_aff)
got = from_a("http://%s/" % vip_aff, n=12)
t.ok(len(set(got)) == 1 and got[0] in ("b", "c"), "ClientIP affinity sticks to one endpoint: %s" % got)

# a Service only its ClusterIP leads to: endpoints in a shared map, changed element by element
vip_plain = "10.96.%d.14" % net
service("plain", vip_plain, 80)
set_slice("plain", [(ip["b"], True, "node1"), (ip["c"], True, "node1")])
t.ok(has_element("%s . 80 . 1 : %s . 8080" % (vip_plain, ip["c"])), "the endpoints are elements of a shared map")
got = from_a("http://%s/" % vip_plain, n=20)
t.ok(set(got) == {"b", "c"}, "a pod reaches it, spread over both endpoints: %s" % got)
set_slice("plain", [(ip["c"], True, "node1"), (ip["b"], True, "node1")])
t.ok(has_element("%s . 80 . 1 : %s . 8080" % (vip_plain, ip["b"])) and not names_ep(
    sh("ip", "netns", "exec", node_ns, "nft", "list", "chain", "ip", "coracle-proxy",
       "service-default/plain/tcp/http").stdout, ip["b"]), "endpoints swapped: elements changed, not the chain")
got = from_a("http://%s/" % vip_plain, n=20)
t.ok(set(got) == {"b", "c"}, "and traffic still reaches both: %s" % got)
# hairpin: an endpoint reaches the Service, itself included, over its own bridge (masqueraded
# in filter-forward), with pods on one bridge talking past netfilter as on a node without
# br_netfilter (when the module is loaded its switch is per namespace: off for this check only)
nf_key = "net.bridge.bridge-nf-call-iptables"
nf_was = sh("ip", "netns", "exec", node_ns, "sysctl", "-n", nf_key).stdout.strip()
sh("ip", "netns", "exec", node_ns, "sysctl", "-qw", nf_key + "=0")
cid_b = pods["b"].status.containerStatuses[0].containerID[7:]
got = from_a("http://%s/" % vip_plain, n=16, cid=cid_b)
if nf_was:
    sh("ip", "netns", "exec", node_ns, "sysctl", "-qw", "%s=%s" % (nf_key, nf_was))
t.ok(set(got) == {"b", "c"}, "an endpoint reaches its Service, itself and its neighbour: %s" % got)
# with br_netfilter on, the bridge itself sends a pod's DNATed request back out of the port it
# came in by: the CNI config's hairpinMode (as the built-in network's) lets it
if nf_was == "1":
    got = from_a("http://%s/" % vip_plain, n=16, cid=cid_b)
    t.ok(set(got) == {"b", "c"}, "with br_netfilter on too: %s" % got)
else:
    t.skip("br_netfilter is not loaded")

# NodePort from a client namespace that is not a node
got = from_client("http://%s:30080/" % node_ip, n=12)
t.ok(set(got) <= {"b", "c"} and len(got) == 12, "a NodePort answers from outside the node: %s" % got)

# an endpoint removed: traffic moves at the update
t0 = time.time()
set_slice("web", [(ip["b"], True, "node1"), (ip["c"], False, "node1")])
t.ok(c.wait_for(lambda: not names_ep(nft_text().split("service-default/web/tcp/http {")[1].split("\n\t}")[0], ip["c"])
                if "service-default/web/tcp/http {" in nft_text() else False, timeout=ctest.DEADLINE),
     "the not-ready endpoint left the service chain (%.0f ms)" % ((time.time() - t0) * 1000))
got = from_a("http://%s/" % vip, n=10)
t.is_(set(got), {"b"}, "traffic goes to the remaining endpoint only")

# externalTrafficPolicy Local: only this node's endpoints, drop when none
service("local", "10.96.%d.12" % net, 80, node_port=30081, externalTrafficPolicy="Local")
set_slice("local", [(ip["c"], True, "node1"), ("10.252.%d.250" % net, True, "node2")])
has_element("tcp . 30081 : goto external-default/local/tcp/http")
got = from_client("http://%s:30081/" % node_ip, n=8)
t.is_(set(got), {"c"}, "policy Local: the NodePort goes to the local endpoint only")
set_slice("local", [("10.252.%d.250" % net, True, "node2")])
c.wait_for(lambda: not names_ep(sh("ip", "netns", "exec", node_ns, "nft", "list", "chain", "ip", "coracle-proxy",
                                   "external-default/local/tcp/http").stdout, ip["c"]), timeout=ctest.DEADLINE)
got = from_client("http://%s:30081/" % node_ip, n=1, timeout=2)
t.is_(got, ["ERR"], "policy Local without a local endpoint: no answer")

# headless: no rules
service("headless", "None", 80)
set_slice("headless", [(ip["b"], True, "node1")])
service("marker", "10.96.%d.13" % net, 80)  # applied after headless: its rules mark the sync
has_element("10.96.%d.13 . tcp . 80" % net)
t.ok("default/headless" not in nft_text(), "a headless Service has no rules")

# no ready endpoints: REJECT (refused at once, not a timeout)
t.ok("10.96.%d.13 . tcp . 80 : goto reject-chain" % net in nft_text(), "no endpoints: the reject map")
t0 = time.time()
r = subprocess.run(["runc", "--root", runc_root, "exec", cid_a, "wget", "-qO-", "http://10.96.%d.13/" % net],
                   capture_output=True, text=True, timeout=20)
t.ok(r.returncode != 0 and time.time() - t0 < 4, "no ready endpoint: the connection is refused (%s)" % r.stderr.strip())

# pods' in-cluster config (KUBERNETES_SERVICE_HOST/PORT) names the kubernetes Service once the
# proxy programs it
kvip = "10.96.%d.1" % net
api.call("Services", "Create", pb.Service(metadata=ctest.meta("kubernetes", "default"), spec=pb.ServiceSpec(
    type="ClusterIP", clusterIP=kvip, clusterIPs=[kvip], ports=[pb.ServicePort(
        name="https", protocol="TCP", port=443, targetPort=pb.IntOrString(type=0, intVal=6443))])))
has_element("%s . tcp . 443" % kvip)
api.call("Pods", "Create", pb.Pod(metadata=ctest.meta("envcheck", "default"), spec=pb.PodSpec(
    nodeName="node1", terminationGracePeriodSeconds=1, containers=[
        pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent", command=["sleep", "3600"])])))
ep = c.wait_for(lambda: (lambda p: p if p and p.status.phase == "Running" else None)(get("envcheck")),
                timeout=2 * ctest.DEADLINE)
env = subprocess.run(["runc", "--root", runc_root, "exec", ep.status.containerStatuses[0].containerID[7:], "env"],
                     capture_output=True, text=True, timeout=20).stdout if ep else ""
t.ok("KUBERNETES_SERVICE_HOST=%s\n" % kvip in env and "KUBERNETES_SERVICE_PORT=443\n" in env
     and "KUBERNETES_PORT=tcp://%s:443\n" % kvip in env,
     "a pod's KUBERNETES_SERVICE_HOST/PORT name the kubernetes Service (%s)"
     % [l for l in env.split("\n") if l.startswith("KUBERNETES_")])

# the Service deleted: its element and chains go
api.call("Services", "Delete", pb.DeleteRequest(namespace="default", name="web"))
t.ok(c.wait_for(lambda: "default/web/" not in nft_text(), timeout=ctest.DEADLINE), "a deleted Service's rules are gone")

# the kubelet stops: the table goes
k.stop()
tables = nft_json("tables") or {}
t.ok(not any(e.get("table", {}).get("name") == "coracle-proxy" for e in tables.get("nftables", [])),
     "the table is removed at shutdown")
t.done()
