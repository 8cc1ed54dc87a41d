#!/usr/bin/python3
# NetworkPolicy: the kind (validation messages, kubectl get/describe netpol)
# and its enforcement by a kubelet (--network-policy) in a network namespace
# of the test's own, its pods on a CNI bridge inside it and a client
# namespace behind a veth. Default-deny ingress blocks; allows by pod
# selector (a named port, also through a ClusterIP), namespace selector,
# ipBlock and port; egress deny and allow (a named port); a new peer pod
# gets through as one set element, other rules untouched; deleting the
# policies restores access; the tables are gone when the kubelet stops.
# The namespaces (and every bridge, veth and rule in them) are removed at
# the end, also when the test fails.
import json, os, random, subprocess, sys
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet

t = ctest.Tap()
ctest.need_root(t)
for f in ("/usr/sbin/runc", "/bin/busybox", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local",
          "/usr/sbin/nft", "/usr/bin/nsenter", "/usr/bin/curl"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)
c = ctest.Cluster(t, "59-net-policy")
pb = c.pb
tag = "%d" % os.getpid()  # unique among runs at the same time; names a crashed run's leftovers
node_ns, cli_ns = "cnpn" + tag, "cnpc" + tag
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
# namespaces a run killed before its cleanup left behind (its pid is gone)
for line in sh("ip", "netns", "list").stdout.splitlines():
    name = line.split()[0] if line.split() else ""
    if name[:4] in ("cnpn", "cnpc") and name[4:].isdigit() and not os.path.exists("/proc/" + name[4:]):
        sh("ip", "netns", "del", name)
sock = os.path.join(c.dir, "api.sock")
api = c.start_apiserver("--listen", "unix:" + sock)

# ---- the kind: validation as kube-apiserver words it, kubectl get/describe ----


def policy(name, ns="default", **spec):
    return pb.NetworkPolicy(metadata=ctest.meta(name, ns), spec=pb.NetworkPolicySpec(**spec))


def sel(**labels):
    return pb.LabelSelector(matchLabels=labels)


bad = policy("bad", podSelector=sel(), policyTypes=["Ingress", "Sideways"], ingress=[
    pb.NetworkPolicyIngressRule(
        ports=[pb.NetworkPolicyPort(protocol="ICMP", port=pb.IntOrString(type=0, intVal=80), endPort=70),
               pb.NetworkPolicyPort(port=pb.IntOrString(type=1, strVal="http"), endPort=90)],
        **{"from": [pb.NetworkPolicyPeer(),
                    pb.NetworkPolicyPeer(podSelector=sel(), ipBlock=pb.IPBlock(cidr="10.0.0.0/8")),
                    pb.NetworkPolicyPeer(ipBlock=pb.IPBlock(cidr="10.0.0.0/8", **{"except": ["11.0.0.0/16", "10.0.0.0/8"]}))]})])
_, err = api.try_call("NetworkPolicies", "Create", bad)
msg = str(err)
want = ['spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
        "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`",
        "spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
        "spec.ingress[0].from[0]: Required value: must specify a peer",
        "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
        'spec.ingress[0].from[2].ipBlock.except[0]: Invalid value: "11.0.0.0/16": must be a strict subset of `cidr`',
        'spec.ingress[0].from[2].ipBlock.except[1]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`',
        'spec.policyTypes[1]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"']
t.ok(err is not None and 'NetworkPolicy.networking.k8s.io "bad" is invalid: [' in msg
     and all(w in msg for w in want), "validation: kube-apiserver's messages and paths (%s)" % msg)
got = api.call("NetworkPolicies", "Create", policy("eg", podSelector=sel(app="x"), egress=[
    pb.NetworkPolicyEgressRule(ports=[pb.NetworkPolicyPort(port=pb.IntOrString(type=0, intVal=53))])]))
t.ok(list(got.spec.policyTypes) == ["Ingress", "Egress"] and got.spec.egress[0].ports[0].protocol == "TCP",
     "defaults: policyTypes Ingress and Egress, protocol TCP (%s)" % list(got.spec.policyTypes))
kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if not os.access(kubectl, os.X_OK):
    t.skip("kubectl 1.32 not installed", 2)
else:
    home = os.path.join(c.dir, "khome")
    os.makedirs(home)
    kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    kenv["HOME"] = home

    def kc(*args):
        p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache")]
                           + list(args), env=kenv, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr
    rc, out, err = kc("get", "netpol")
    lines = out.splitlines()
    t.ok(rc == 0 and lines and lines[0].split() == ["NAME", "POD-SELECTOR", "AGE"]
         and lines[1].split()[:2] == ["eg", "app=x"], "kubectl get netpol: NAME POD-SELECTOR AGE (%r %r)" % (out, err))
    rc, out, err = kc("describe", "netpol", "eg")
    t.ok(rc == 0 and "PodSelector:     app=x" in out and "Policy Types: Ingress, Egress" in out
         and "To Port: 53/TCP" in out, "kubectl describe netpol (%r %r)" % (out, err))
api.call("NetworkPolicies", "Delete", pb.DeleteRequest(namespace="default", name="eg"))

# ---- enforcement ----
for ns in (node_ns, cli_ns):
    sh("ip", "netns", "add", ns, check=True)
    sh("ip", "-n", ns, "link", "set", "lo", "up", check=True)
sh("ip", "link", "add", "cnpa" + tag, "netns", node_ns, "type", "veth", "peer", "cnpb" + tag,
   "netns", cli_ns, check=True)
sh("ip", "-n", node_ns, "addr", "add", node_ip + "/30", "dev", "cnpa" + tag, check=True)
sh("ip", "-n", cli_ns, "addr", "add", cli_ip + "/30", "dev", "cnpb" + tag, check=True)
sh("ip", "-n", node_ns, "link", "set", "cnpa" + tag, "up", check=True)
sh("ip", "-n", cli_ns, "link", "set", "cnpb" + tag, "up", check=True)
sh("ip", "-n", cli_ns, "route", "add", "default", "via", node_ip, check=True)
sh("ip", "netns", "exec", node_ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", check=True)

klet.import_busybox(t, root)
confdir = os.path.join(c.dir, "cni")
os.makedirs(confdir)
subnet = "10.251.%d" % net
json.dump({"cniVersion": "1.0.0", "name": "coracle-test", "plugins": [
    {"type": "bridge", "bridge": "cnpbr" + tag, "isGateway": True, "ipMasq": False,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet + ".0/24"}]],
              "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": os.path.join(c.dir, "ipam")}}]},
    open(os.path.join(confdir, "10-test.conflist"), "w"))
kargv = ["nsenter", "--net=/run/netns/" + node_ns, c.bin("coracle-kubelet"), "--server",
         "unix:" + sock, "--node-name", "node1", "--root-dir", root, "--healthz-listen", "",
         "--network-policy", "--proxy-mode", "nftables", "--cni-conf-dir", confdir]
k = c.start("kubelet-node1", kargv)

api.call("Namespaces", "Create", pb.Namespace(metadata=pb.ObjectMeta(name="other", labels={"team": "x"})))
HTTPD = "mkdir /www; echo %s > /www/index.html; httpd -p 9090 -h /www; exec httpd -f -p 8080 -h /www"


def pod(name, ns="default", **labels):
    api.call("Pods", "Create", pb.Pod(metadata=pb.ObjectMeta(name=name, namespace=ns, labels=labels), spec=pb.PodSpec(
        nodeName="node1", terminationGracePeriodSeconds=1, containers=[
            pb.Container(name="web", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                         ports=[pb.ContainerPort(name="http", containerPort=8080, protocol="TCP")],
                         command=["sh", "-c", HTTPD % name])])))


def running(name, ns="default"):
    p = api.try_call("Pods", "Get", pb.GetRequest(namespace=ns, name=name))[0]
    return p if p and p.status.phase == "Running" and p.status.podIP else None


pod("web", app="web")
pod("a", role="client")
pod("b", app="b")
pod("c", "other")

def all_running():
    ps = {n: running(n, "other" if n == "c" else "default") for n in ("web", "a", "b", "c")}
    return ps if all(ps.values()) else None


pods = c.wait_for(all_running, timeout=2 * ctest.DEADLINE) or {}
t.ok(pods, "pods web, a, b (default) and c (other) Running with IPs")
if not pods:
    t.bail("pods did not start:\n" + k.tail())
ip = {n: p.status.podIP for n, p in pods.items()}
cid = {n: p.status.containerStatuses[0].containerID[7:] for n, p in pods.items()}


def fetch(src, dst, port=8080):
    """src (a pod name or 'client') fetches dst's page: its name, or 'ERR'."""
    url = "http://%s:%d/" % (ip.get(dst, dst), port)
    if src == "client":
        argv = ["ip", "netns", "exec", cli_ns, "curl", "-s", "-m", "2", url]
    else:
        argv = ["runc", "--root", runc_root, "exec", cid[src], "timeout", "2", "wget", "-qO-", url]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    return r.stdout.strip() or "ERR"


def nft(*what):
    return sh("ip", "netns", "exec", node_ns, "nft", *what).stdout


def table():
    return nft("list", "table", "inet", "coracle-netpol")


def applied(*subs):
    return c.wait_for(lambda: all(s in table() for s in subs), timeout=ctest.DEADLINE)


t.ok(fetch("a", "web") == "web" and fetch("client", "web") == "web", "no policy: everything reaches web")

# default deny of ingress to web
api.call("NetworkPolicies", "Create", policy("deny", podSelector=sel(app="web"), policyTypes=["Ingress"]))
t.ok(applied("%s : jump ingress-default/web" % ip["web"]), "web's address leads to its ingress chain")
t.ok(fetch("a", "web") == "ERR" and fetch("client", "web") == "ERR", "default deny: a pod and the client are blocked")
t.ok(fetch("web", "a") == "a", "web itself still reaches out (ingress only)")

# allow by pod selector on the named port http (8080); 9090 stays closed
api.call("NetworkPolicies", "Create", policy("from-clients", podSelector=sel(app="web"), ingress=[
    pb.NetworkPolicyIngressRule(ports=[pb.NetworkPolicyPort(port=pb.IntOrString(type=1, strVal="http"))],
                                **{"from": [pb.NetworkPolicyPeer(podSelector=sel(role="client"))]})]))
t.ok(applied("default/from-clients/ingress/0/pods", "dport 8080"), "the rule is in web's chain")
t.ok(fetch("a", "web") == "web", "allowed by pod selector on the named port")
t.ok(fetch("a", "web", 9090) == "ERR" and fetch("b", "web") == "ERR", "another port, another pod: blocked")

# through a ClusterIP: the policy sees the traffic after the proxy's DNAT, on pod IPs
vip = "10.96.%d.10" % net
api.call("Services", "Create", pb.Service(metadata=ctest.meta("web", "default"), spec=pb.ServiceSpec(
    type="ClusterIP", clusterIP=vip, clusterIPs=[vip], selector={"app": "web"}, ports=[
        pb.ServicePort(name="http", protocol="TCP", port=80, targetPort=pb.IntOrString(type=0, intVal=8080))])))
m = ctest.meta("web-x", "default")
m.labels["kubernetes.io/service-name"] = "web"
api.call("EndpointSlices", "Create", pb.EndpointSlice(
    metadata=m, addressType="IPv4", ports=[pb.EndpointPort(name="http", protocol="TCP", port=8080)],
    endpoints=[pb.Endpoint(addresses=[ip["web"]], nodeName="node1", conditions=pb.EndpointConditions(ready=True))]))
c.wait_for(lambda: vip in nft("list", "table", "ip", "coracle-proxy"), timeout=ctest.DEADLINE)
t.ok(fetch("a", vip, 80) == "web" and fetch("b", vip, 80) == "ERR",
     "through the ClusterIP: the allowed pod passes, the other is blocked")

# by namespace selector and by ipBlock (the client's /30, a part excepted)
api.call("NetworkPolicies", "Create", policy("from-team", podSelector=sel(app="web"), ingress=[
    pb.NetworkPolicyIngressRule(**{"from": [pb.NetworkPolicyPeer(namespaceSelector=sel(team="x"))]}),
    pb.NetworkPolicyIngressRule(ports=[pb.NetworkPolicyPort(protocol="TCP", port=pb.IntOrString(type=0, intVal=8000), endPort=8080)],
                                **{"from": [pb.NetworkPolicyPeer(ipBlock=pb.IPBlock(cidr="192.168.%d.%d/30" % (net, link),
                                                                                    **{"except": ["192.168.%d.%d/32" % (net, link + 3)]}))]})]))
applied("default/from-team/ingress/1/cidrs", "dport 8000-8080")
t.ok(fetch("c", "web") == "web", "allowed by namespace selector (a pod of namespace other)")
t.ok(fetch("client", "web") == "web" and fetch("client", "web", 9090) == "ERR",
     "allowed by ipBlock on a port range; another port blocked")
t.ok("192.168.%d.%d-192.168.%d.%d" % (net, link, net, link + 2) in table(), "the except is cut out of the interval set")

# a new peer pod: one element added, no chain rewritten
before = nft("list", "chain", "inet", "coracle-netpol", "ingress-default/web")
pod("a2", role="client")
p = c.wait_for(lambda: running("a2"), timeout=2 * ctest.DEADLINE)
ip["a2"], cid["a2"] = p.status.podIP, p.status.containerStatuses[0].containerID[7:]
t.ok(c.wait_for(lambda: ip["a2"] in nft("list", "set", "inet", "coracle-netpol", "default/from-clients/ingress/0/pods"),
                timeout=ctest.DEADLINE), "the new peer's IP is an element of the rule's set")
t.ok(fetch("a2", "web") == "web", "the new peer gets through")
t.is_(nft("list", "chain", "inet", "coracle-netpol", "ingress-default/web"), before, "web's chain is untouched")

# egress: b may not send anywhere, then only to clients on 8080
api.call("NetworkPolicies", "Create", policy("b-out", podSelector=sel(app="b"), policyTypes=["Egress"]))
applied("%s : jump egress-default/b" % ip["b"])
t.ok(fetch("b", "a") == "ERR", "egress deny: b reaches nobody")
api.call("NetworkPolicies", "Create", policy("b-to-clients", podSelector=sel(app="b"), policyTypes=["Egress"], egress=[
    pb.NetworkPolicyEgressRule(ports=[pb.NetworkPolicyPort(port=pb.IntOrString(type=1, strVal="http"))],
                               to=[pb.NetworkPolicyPeer(podSelector=sel(role="client"))])]))
t.ok(c.wait_for(lambda: "%s . tcp . 8080" % ip["a"] in nft("list", "set", "inet", "coracle-netpol",
                                                           "default/b-to-clients/egress/0/port0"), timeout=ctest.DEADLINE),
     "egress named port: the set holds each peer's address, protocol and port")
t.ok(fetch("b", "a") == "a" and fetch("b", "a", 9090) == "ERR" and fetch("b", "c") == "ERR",
     "egress allow: b reaches a client on its named port only")

# every policy deleted: access is back, the maps are empty
for n in ("deny", "from-clients", "from-team", "b-out", "b-to-clients"):
    api.call("NetworkPolicies", "Delete", pb.DeleteRequest(namespace="default", name=n))
t.ok(c.wait_for(lambda: "jump" not in nft("list", "map", "inet", "coracle-netpol", "ingress-pods")
                and "jump" not in nft("list", "map", "inet", "coracle-netpol", "egress-pods"), timeout=ctest.DEADLINE),
     "no policy: no pod is isolated")
t.ok(fetch("b", "web") == "web" and fetch("client", "web", 9090) == "web", "deleting the policies restores access")

k.stop()
tables = nft("list", "tables")
t.ok("coracle-netpol" not in tables and "coracle-proxy" not in tables, "the tables are removed at shutdown (%r)" % tables)
t.done()
