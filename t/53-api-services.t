#!/usr/bin/python3
# Services in the apiserver: kube-apiserver's defaults and validation
# messages (gRPC and kubectl), cluster IPs from --service-cluster-ip-range
# and node ports from --service-node-port-range (unique, requested,
# refused, exhausted, freed and reused, kept across a restart, never
# handed out twice by two apiservers on one etcd), and the `kubernetes`
# Service with its EndpointSlice.
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta

t = ctest.Tap()
c = ctest.Cluster(t)
RANGE = "10.0.0.0/29"  # .2 to .6 for Services, .1 the kubernetes Service's
ARGS = ("--service-cluster-ip-range", RANGE, "--service-node-port-range", "30000-30003",
        "--endpoint-reconciler-type", "lease")
api = c.start_apiserver(*ARGS)
pb = c.pb


def tryc(cl, service, method, req):
    """The response, or the ApiError."""
    r, e = cl.try_call(service, method, req)
    return e or r


def svc(name, ports=None, ns="default", **spec):
    if ports is None:
        ports = [pb.ServicePort(port=80)]
    return pb.Service(metadata=meta(name, ns), spec=pb.ServiceSpec(ports=ports, **spec))


def create(s):
    return tryc(api, "Services", "Create", s)


def get(name, ns="default"):
    return api.call("Services", "Get", pb.GetRequest(namespace=ns, name=name))


def delete(name, ns="default"):
    api.call("Services", "Delete", pb.DeleteRequest(namespace=ns, name=name))


def err_of(r):
    return r.message if isinstance(r, ctest.ApiError) else "created"


# ---- the kubernetes Service ----
# the Service's address is taken first, so its slice may be written before it: wait for both
t.ok(c.wait_for(lambda: not any(isinstance(tryc(api, kind, "Get", pb.GetRequest(namespace="default",
                                                                                name="kubernetes")),
                                           ctest.ApiError) for kind in ("EndpointSlices", "Services"))),
     "the kubernetes Service and EndpointSlice appear")
k = get("kubernetes")
port = int(c.api_addr.rsplit(":", 1)[1])
t.ok(k.spec.clusterIP == "10.0.0.1" and list(k.spec.clusterIPs) == ["10.0.0.1"] and len(k.spec.ports) == 1
     and k.spec.ports[0].name == "https" and k.spec.ports[0].port == 443
     and k.spec.ports[0].targetPort.intVal == port and k.metadata.labels["component"] == "apiserver",
     "kubernetes Service: the range's first IP, 443 https -> the secure port (%s)" % k.spec)
es = api.call("EndpointSlices", "Get", pb.GetRequest(namespace="default", name="kubernetes"))
t.ok(es.addressType == "IPv4" and [list(e.addresses) for e in es.endpoints] == [["127.0.0.1"]]
     and es.ports[0].port == port and es.metadata.labels["kubernetes.io/service-name"] == "kubernetes",
     "its EndpointSlice lists this apiserver's address and port")

# ---- defaults ----
s = create(svc("a", selector={"app": "a"}, ports=[pb.ServicePort(port=80)]))
sp = s.spec
t.ok(sp.type == "ClusterIP" and sp.sessionAffinity == "None" and sp.ports[0].protocol == "TCP"
     and sp.ports[0].targetPort.intVal == 80 and sp.ipFamilyPolicy == "SingleStack"
     and list(sp.ipFamilies) == ["IPv4"] and sp.internalTrafficPolicy == "Cluster"
     and not sp.externalTrafficPolicy, "defaults: ClusterIP, None, TCP, targetPort = port, SingleStack IPv4")
t.ok(sp.clusterIP.startswith("10.0.0.") and list(sp.clusterIPs) == [sp.clusterIP]
     and sp.clusterIP not in ("10.0.0.0", "10.0.0.1", "10.0.0.7"), "a cluster IP from the range (%s)" % sp.clusterIP)
s = create(svc("aff", sessionAffinity="ClientIP", type="NodePort", clusterIP="None", ports=[pb.ServicePort(port=80)]))
t.like(err_of(s), "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services",
       "headless NodePort refused")
s = create(svc("aff", sessionAffinity="ClientIP", type="NodePort"))
t.ok(s.spec.sessionAffinityConfig.clientIP.timeoutSeconds == 10800 and s.spec.externalTrafficPolicy == "Cluster"
     and 30000 <= s.spec.ports[0].nodePort <= 30003,
     "ClientIP: timeout 10800; NodePort: externalTrafficPolicy Cluster and a node port (%d)" % s.spec.ports[0].nodePort)
hl = create(svc("hl", clusterIP="None", ports=[]))
t.ok(hl.spec.clusterIP == "None" and list(hl.spec.clusterIPs) == ["None"], "headless: no IP taken, no port needed")
en = create(svc("ext", type="ExternalName", externalName="example.com", ports=[]))
t.ok(en.spec.externalName == "example.com" and not en.spec.clusterIP and not en.spec.ipFamilies,
     "ExternalName: no cluster IP, no families")

# ---- validation ----
cases = [
    (svc("v1", ports=[]), 'Service "v1" is invalid: spec.ports: Required value'),
    (svc("v2", ports=[pb.ServicePort(port=80), pb.ServicePort(port=81)]),
     "spec.ports[0].name: Required value"),
    (svc("v3", ports=[pb.ServicePort(name="a", port=80), pb.ServicePort(name="a", port=81)]),
     'spec.ports[1].name: Duplicate value: "a"'),
    (svc("v4", ports=[pb.ServicePort(port=70000)]),
     "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"),
    (svc("v5", ports=[pb.ServicePort(port=80, protocol="HTTP")]),
     'spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
    (svc("v6", ports=[pb.ServicePort(port=80, targetPort=pb.IntOrString(type=1, strVal="Web_1"))]),
     'spec.ports[0].targetPort: Invalid value: "Web_1": must contain only alpha-numeric characters'),
    (svc("v7", selector={"app": "a b"}), 'spec.selector: Invalid value: "a b"'),
    (svc("v8", type="Magic"), 'spec.type: Unsupported value: "Magic"'),
    (svc("v9", type="ExternalName", ports=[]), "spec.externalName: Required value"),
    (svc("v10", type="ExternalName", externalName="x.com", clusterIP="10.0.0.3"),
     "spec.clusterIPs: Forbidden: may not be set for ExternalName services"),
    (svc("v11", clusterIP="bogus"), 'spec.clusterIPs[0]: Invalid value: "bogus": must be a valid IP address'),
    (svc("v12", ports=[pb.ServicePort(port=80, nodePort=30001)]),
     "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"),
    (svc("v13", sessionAffinity="Sticky"), 'spec.sessionAffinity: Unsupported value: "Sticky"'),
    (svc("v14", externalTrafficPolicy="Local"),
     "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set when `type` is 'NodePort' or "
     "'LoadBalancer'"),
]
for obj, want in cases:
    r = create(obj)
    t.ok(isinstance(r, ctest.ApiError) and r.code.name == "INVALID_ARGUMENT" and want in r.message,
         "invalid %s: %s (%s)" % (obj.metadata.name, want, err_of(r)))

# ---- allocation ----
ips = {get("a").spec.clusterIP, get("aff").spec.clusterIP}
for n in ("b", "c", "d"):
    r = create(svc(n))
    ips.add(r.spec.clusterIP if not isinstance(r, ctest.ApiError) else r.message)
t.is_(sorted(ips), ["10.0.0.%d" % i for i in range(2, 7)], "five Services, the five free IPs, each once")
r = create(svc("e"))
t.ok(isinstance(r, ctest.ApiError) and r.code.name == "INTERNAL"
     and r.message == "Internal error occurred: failed to allocate a serviceIP: range is full",
     "the range exhausted: %s" % err_of(r))
r = create(svc("twice", clusterIP="10.0.0.3"))
t.is_(err_of(r), 'Service "twice" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.3"}: '
      "failed to allocate IP 10.0.0.3: provided IP is already allocated", "a requested IP in use: refused")
r = create(svc("far", clusterIP="10.9.0.3"))
t.is_(err_of(r), 'Service "far" is invalid: spec.clusterIPs: Invalid value: []string{"10.9.0.3"}: '
      "failed to allocate IP 10.9.0.3: the provided IP (10.9.0.3) is not in the valid range. "
      "The range of valid IPs is 10.0.0.0/29", "a requested IP outside the range: refused")
gone = get("c").spec.clusterIP
delete("c")
r = create(svc("again", clusterIP=gone))
t.ok(not isinstance(r, ctest.ApiError) and r.spec.clusterIP == gone, "a deleted Service's IP is free again (%s)" % gone)

delete("d")  # a free IP: the node port checks come after it
np = get("aff").spec.ports[0].nodePort
r = create(svc("np2", type="NodePort", ports=[pb.ServicePort(port=80, nodePort=np)]))
t.ok(isinstance(r, ctest.ApiError) and "spec.ports[0].nodePort: Invalid value: %d: provided port is already "
     "allocated" % np in r.message, "a requested node port in use: refused (%s)" % err_of(r))
r = create(svc("np3", type="NodePort", ports=[pb.ServicePort(port=80, nodePort=80)]))
t.ok(isinstance(r, ctest.ApiError) and "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the "
     "valid range. The range of valid ports is 30000-30003" in r.message, "a node port outside the range: refused")

# updates: the clusterIP stays; NodePort <-> ClusterIP takes and frees node ports
r = tryc(api, "Services", "Update", get("a").__class__(metadata=get("a").metadata, spec=pb.ServiceSpec(
    ports=[pb.ServicePort(port=80)], selector={"app": "a"}, clusterIP="10.0.0.6" if get("a").spec.clusterIP != "10.0.0.6"
    else "10.0.0.5")))
t.ok(isinstance(r, ctest.ApiError) and "spec.clusterIPs[0]: Invalid value:" in r.message and "field is immutable"
     in r.message, "clusterIP is immutable (%s)" % err_of(r))
a = get("a")
a.spec.ClearField("clusterIP")
a.spec.ClearField("clusterIPs")
a.spec.ports[0].port = 81
r = tryc(api, "Services", "Update", a)
t.ok(not isinstance(r, ctest.ApiError) and r.spec.clusterIP == get("a").spec.clusterIP and r.spec.clusterIP,
     "an update leaving clusterIP out keeps it")


def to_type(name, typ, clear=False):
    s = get(name)
    s.spec.type = typ
    if clear:
        for p in s.spec.ports:
            p.nodePort = 0
        s.spec.ClearField("externalTrafficPolicy")
    return tryc(api, "Services", "Update", s)


r = to_type("a", "NodePort")
got = r.spec.ports[0].nodePort if not isinstance(r, ctest.ApiError) else 0
t.ok(30000 <= got <= 30003 and got != np, "ClusterIP -> NodePort: a node port taken (%d, %s)" % (got, err_of(r)))
r = to_type("a", "ClusterIP", clear=True)
t.ok(not isinstance(r, ctest.ApiError) and r.spec.ports[0].nodePort == 0, "NodePort -> ClusterIP (%s)" % err_of(r))
r = create(svc("np4", type="NodePort", ports=[pb.ServicePort(port=80, nodePort=got)]))
t.ok(not isinstance(r, ctest.ApiError) and r.spec.ports[0].nodePort == got,
     "the node port it let go is free again (%s)" % err_of(r))
delete("np4")

# ---- a restart keeps what is held ----
before = {s.metadata.name: s.spec.clusterIP for s in api.call("Services", "List", pb.ListRequest()).items}
c.api.stop()
api = c.start_apiserver(*ARGS)
taken = [ip for ip in before.values() if ip.startswith("10.0.0.")]
refused = [err_of(create(svc("r%d" % i, clusterIP=ip))) for i, ip in enumerate(taken)]
t.ok(all("provided IP is already allocated" in m for m in refused) and len(taken) == 5,
     "after a restart every held IP is still held (%d)" % len(taken))
r = create(svc("rnew"))
t.ok(not isinstance(r, ctest.ApiError) and r.spec.clusterIP not in taken, "and a new Service gets the free one (%s)"
     % err_of(r))

# ---- coraclectl expose ----
delete("rnew")
rc, out, err = c.ctl("expose", "service", "a", "--port", "90", "--target-port", "http", "--name", "a2")
a2 = tryc(api, "Services", "Get", pb.GetRequest(namespace="default", name="a2"))
t.ok(rc == 0 and out.strip() == "service/a2 exposed" and not isinstance(a2, ctest.ApiError)
     and dict(a2.spec.selector) == {"app": "a"} and a2.spec.ports[0].port == 90
     and a2.spec.ports[0].targetPort.strVal == "http", "coraclectl expose svc a --port 90 (%r %r)" % (out, err))
rc, out, err = c.ctl("expose", "service", "a", "--name", "a3")
t.ok(rc != 0 and "couldn't find port via --port flag or introspection" in err, "expose without --port (%r)" % err)
delete("a2")

# ---- kubectl ----
kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv["HOME"] = home


def kc(*args):
    p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache")]
                       + list(args), env=kenv, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


if not os.access(kubectl, os.X_OK):
    t.skip("kubectl 1.32 not installed", 6)
else:
    delete("b")
    rc, out, err = kc("create", "service", "nodeport", "kn", "--tcp=8080:80")
    t.ok(rc == 0 and "service/kn created" in out, "kubectl create service nodeport (%r %r)" % (out, err))
    rc, out, err = kc("get", "svc", "kn")
    head, row = (out.splitlines() + ["", ""])[:2]
    kn = get("kn")
    t.ok(head.split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
         and row.split()[:5] == ["kn", "NodePort", kn.spec.clusterIP, "<none>",
                                 "8080:%d/TCP" % kn.spec.ports[0].nodePort],
         "kubectl get svc: the columns (%r)" % out)
    rc, out, err = kc("get", "svc", "kn", "-o", "wide")
    t.ok(out.splitlines()[0].split()[-1] == "SELECTOR" and out.splitlines()[1].split()[-1] == "app=kn",
         "kubectl get svc -o wide: SELECTOR (%r)" % out)
    rc, out, err = kc("create", "service", "clusterip", "kc", "--tcp=80:80", "--clusterip=" + kn.spec.clusterIP)
    t.ok(rc != 0 and 'Service "kc" is invalid: spec.clusterIPs: Invalid value: []string{"%s"}: failed to allocate '
         "IP %s: provided IP is already allocated" % (kn.spec.clusterIP, kn.spec.clusterIP) in err,
         "kubectl: a taken IP, the Invalid message (%r)" % err)
    rc, out, err = kc("create", "service", "clusterip", "k2", "--tcp=80:80,81:81")
    t.ok(rc != 0 and "range is full" in err or rc == 0, "kubectl create service with two ports (%r)" % err)
    rc, out, err = kc("get", "endpointslices")
    t.ok(out.splitlines()[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
         and out.splitlines()[1].split()[:4] == ["kubernetes", "IPv4", str(port), "127.0.0.1"],
         "kubectl get endpointslices: the columns (%r)" % out)

# ---- two apiservers on one etcd ----
import etcdutil

why = etcdutil.available()
if why:
    t.skip(why, 4)
else:
    ec = etcdutil.EtcdCluster(c, members=1, name="etcd-alloc")
    addrs, daemons = [], []
    for i in range(2):
        a = "127.0.0.1:%d" % ctest.free_port()
        d = c.start("apiserver-e%d" % i, [c.bin("coracle-apiserver"), "--listen", a, "--data-dir",
                                          os.path.join(c.dir, "data-e%d" % i), "--storage-backend", "etcd3",
                                          "--etcd-servers", ",".join(ec.endpoints),
                                          "--service-cluster-ip-range", "10.1.0.0/28",
                                          "--service-node-port-range", "31000-31009",
                                          "--endpoint-reconciler-type", "lease",
                                          "--advertise-address", "127.0.0.%d" % (i + 2)])
        c.wait_ready(a, d)
        addrs.append(a)
        daemons.append(d)
    clients = [ctest.Client(a) for a in addrs]
    got, errs = [], []
    lock = threading.Lock()

    def make(i):
        cl = clients[i % 2]
        for j in range(8):
            r = tryc(cl, "Services", "Create", svc("e%d-%d" % (i, j), type="NodePort"))
            with lock:
                if isinstance(r, ctest.ApiError):
                    errs.append(r.message)
                else:
                    got.append((r.spec.clusterIP, r.spec.ports[0].nodePort))

    threads = [threading.Thread(target=make, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ips = [g[0] for g in got]
    ports = [g[1] for g in got]
    t.ok(len(got) == 10 and len(set(ports)) == 10 and len(set(ips)) == 10,
         "two apiservers, 32 NodePort creates: the 10 node ports each given once (%d made, %r)"
         % (len(got), sorted(set(errs))))
    t.ok(len(errs) == 22 and all("range is full" in e for e in errs),
         "the rest: range is full (%r)" % sorted(set(errs)))

    def kube_eps(cl):
        r = tryc(cl, "EndpointSlices", "Get", pb.GetRequest(namespace="default", name="kubernetes"))
        return [] if isinstance(r, ctest.ApiError) else sorted(e.addresses[0] for e in r.endpoints)

    t.ok(c.wait_for(lambda: kube_eps(clients[0]) == ["127.0.0.2", "127.0.0.3"], timeout=30),
         "both apiservers in the kubernetes EndpointSlice (%s)" % kube_eps(clients[0]))
    daemons[1].stop()
    t.ok(c.wait_for(lambda: kube_eps(clients[0]) == ["127.0.0.2"], timeout=60),
         "one stopped: it drops out once its Lease is stale (%s)" % kube_eps(clients[0]))
    for cl in clients:
        cl.close()

t.done()
