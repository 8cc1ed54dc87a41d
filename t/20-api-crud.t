#!/usr/bin/python3
# coracle-apiserver end to end: create/get/list/update/updateStatus/delete
# with Kubernetes' semantics and error texts, selectors, paging, events
# counting, and bad input (the daemon keeps serving and stores nothing).
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod
import grpc

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb
OK = None


def err(service, method, req):
    _, e = api.try_call(service, method, req)
    return (e.code, e.message) if e else (OK, None)


# ---- create / get ----
p = api.call("Pods", "Create", simple_pod("web", labels=None) if False else simple_pod("web"))
t.ok(len(p.metadata.uid) == 36, "uid is a UUID")
t.ok(p.metadata.resourceVersion.isdigit(), "resourceVersion is decimal: " + p.metadata.resourceVersion)
t.is_(p.metadata.generation, 1, "generation 1")
t.ok(p.metadata.creationTimestamp.seconds > 0, "creationTimestamp set")
t.is_(p.status.phase, "Pending", "phase Pending")
t.is_(p.spec.restartPolicy, "Always", "restartPolicy defaulted")
t.is_(p.spec.terminationGracePeriodSeconds, 30, "grace defaulted")
t.is_(p.spec.schedulerName, "default-scheduler", "schedulerName defaulted")
t.is_(p.spec.containers[0].imagePullPolicy, "Always", "imagePullPolicy Always for untagged")
g = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="web"))
t.is_(g, p, "Get returns the created object byte for byte")
g2 = api.call("Pods", "Get", pb.GetRequest(name="web"))
t.is_(g2.metadata.name, "web", "namespace defaults to default on Get")

t.is_(err("Pods", "Create", simple_pod("web")),
      (grpc.StatusCode.ALREADY_EXISTS, 'pods "web" already exists'), "already exists")
t.is_(err("Pods", "Get", pb.GetRequest(namespace="default", name="nope")),
      (grpc.StatusCode.NOT_FOUND, 'pods "nope" not found'), "not found")
t.is_(err("Pods", "Delete", pb.DeleteRequest(namespace="default", name="nope")),
      (grpc.StatusCode.NOT_FOUND, 'pods "nope" not found'), "delete not found")
t.is_(err("Nodes", "Get", pb.GetRequest(name="n9")),
      (grpc.StatusCode.NOT_FOUND, 'nodes "n9" not found'), "node not found")

# generateName
gp = simple_pod("")
gp.metadata.ClearField("name")
gp.metadata.generateName = "job-"
gp = api.call("Pods", "Create", gp)
t.ok(gp.metadata.name.startswith("job-") and len(gp.metadata.name) == 9, "generateName: " + gp.metadata.name)

# ---- update ----
upd = pb.Pod()
upd.CopyFrom(p)
upd.spec.containers[0].image = "busybox:1.36"
upd.metadata.labels["app"] = "web"
upd.status.phase = "Running"  # ignored by Update
u = api.call("Pods", "Update", upd)
t.ok(int(u.metadata.resourceVersion) > int(p.metadata.resourceVersion), "update bumps resourceVersion")
t.is_(u.spec.containers[0].image, "busybox:1.36", "image updated")
t.is_(u.metadata.labels["app"], "web", "labels updated")
t.is_(u.status.phase, "Pending", "Update ignores status")
t.is_(u.metadata.generation, 2, "generation bumped on spec change")
t.is_(u.metadata.uid, p.metadata.uid, "uid kept")

# stale resourceVersion
t.is_(err("Pods", "Update", upd),
      (grpc.StatusCode.ABORTED, 'Operation cannot be fulfilled on pods "web": the object has been modified; please apply your changes to the latest version and try again'),
      "stale resourceVersion is a conflict")
# no resourceVersion: unconditional
upd.metadata.ClearField("resourceVersion")
upd.metadata.labels["tier"] = "front"
u2 = api.call("Pods", "Update", upd)
t.is_(u2.metadata.labels["tier"], "front", "update without resourceVersion is unconditional")
t.is_(u2.metadata.generation, 2, "labels only: generation unchanged")
# no-op update: no new revision
u3 = api.call("Pods", "Update", u2)
t.is_(u3.metadata.resourceVersion, u2.metadata.resourceVersion, "no-op update writes nothing")
u4 = pb.Pod()
u4.CopyFrom(u2)
u4.metadata.ClearField("labels")
for k in sorted(u2.metadata.labels, reverse=True):
    u4.metadata.labels[k] = u2.metadata.labels[k]
u4 = api.call("Pods", "Update", u4)
t.is_(u4.metadata.resourceVersion, u2.metadata.resourceVersion, "map order does not matter: still a no-op")

# immutable spec
bad = pb.Pod()
bad.CopyFrom(u2)
bad.spec.restartPolicy = "Never"
code, msg = err("Pods", "Update", bad)
t.is_(code, grpc.StatusCode.INVALID_ARGUMENT, "spec change is invalid")
t.like(msg, 'Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`', "forbidden text")
t.is_(err("Pods", "Update", simple_pod("ghost")),
      (grpc.StatusCode.NOT_FOUND, 'pods "ghost" not found'), "update of a missing pod")

# ---- update status ----
st = pb.Pod()
st.CopyFrom(u2)
st.status.phase = "Running"
st.status.podIP = "10.0.0.5"
st.spec.containers[0].image = "ignored:1"
st.metadata.labels["ignored"] = "yes"
s = api.call("Pods", "UpdateStatus", st)
t.is_(s.status.phase, "Running", "UpdateStatus sets status")
t.is_(s.spec.containers[0].image, "busybox:1.36", "UpdateStatus ignores spec")
t.ok("ignored" not in s.metadata.labels, "UpdateStatus ignores metadata")
t.is_(err("Pods", "UpdateStatus", st)[0], grpc.StatusCode.ABORTED, "UpdateStatus with stale version: conflict")

# ---- validation ----
code, msg = err("Pods", "Create", simple_pod("x", containers=[pb.Container(name="a"), pb.Container(image="i"), pb.Container(name="a", image="i")]))
t.is_((code, msg), (grpc.StatusCode.INVALID_ARGUMENT,
      'Pod "x" is invalid: [spec.containers[0].image: Required value, spec.containers[1].name: Required value, spec.containers[2].name: Duplicate value: "a"]'),
      "every field error listed")
code, msg = err("Pods", "Create", simple_pod("web", containers=[pb.Container(name="a")]))
t.is_((code, msg), (grpc.StatusCode.INVALID_ARGUMENT,
      'Pod "web" is invalid: spec.containers[0].image: Required value'),
      "an invalid object under a taken name: INVALID_ARGUMENT, not ALREADY_EXISTS")
code, msg = err("Pods", "Create", simple_pod("Bad_Name"))
t.is_(code, grpc.StatusCode.INVALID_ARGUMENT, "bad name")
t.like(msg, 'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of', "bad name text")
t.is_(err("Pods", "Create", simple_pod("ok1", containers=[pb.Container(name="1st", image="i")]))[0], OK, "container name 1st is valid")
code, msg = err("Pods", "Create", simple_pod("p", containers=[pb.Container(name="c", image="i", ports=[pb.ContainerPort(containerPort=70000)])]))
t.like(msg, "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive", "port range")
q = simple_pod("q", containers=[pb.Container(name="c", image="i", resources=pb.ResourceRequirements(limits={"cpu": pb.Quantity(string="lots")}))])
code, msg = err("Pods", "Create", q)
t.like(msg, 'spec.containers[0].resources.limits[cpu]: Invalid value: "lots"', "bad quantity")
code, msg = err("Pods", "Create", simple_pod("v", containers=[pb.Container(name="c", image="i", volumeMounts=[pb.VolumeMount(name="data", mountPath="/d")])]))
t.like(msg, 'spec.containers[0].volumeMounts[0].name: Not found: "data"', "mount of a missing volume")
code, msg = err("Pods", "Create", simple_pod("ns1", ns="Bad.NS"))
t.like(msg, 'metadata.namespace: Invalid value: "Bad.NS": a lowercase RFC 1123 label', "namespace is a DNS label")
lp = simple_pod("lab")
lp.metadata.labels["-x"] = "y"
t.like(err("Pods", "Create", lp)[1], 'metadata.labels: Invalid value: "-x": name part must consist', "label key syntax")
lp = simple_pod("rp", restartPolicy="Sometimes")
t.like(err("Pods", "Create", lp)[1], 'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"', "restartPolicy enum")

# ---- bad input: malformed protobuf, oversized; nothing stored, still serving ----
def raw_call(path, payload):
    fn = api.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    try:
        fn(payload, timeout=ctest.DEADLINE)
        return None, None
    except grpc.RpcError as e:
        return e.code(), e.details()

rev0 = api.call("Pods", "List", pb.ListRequest()).metadata.resourceVersion
code, msg = raw_call("/coracle.v1.Pods/Create", b"\xff\xff\xff\xff")
t.is_(code, grpc.StatusCode.INVALID_ARGUMENT, "malformed protobuf is INVALID_ARGUMENT")
t.like(msg, "failed to decode Pod: ", "decode error names the type")
# a field numbered 0 (tag 0x85 0x00) in a container: refused on Create and
# Update alike (protobuf-c would take it, store bytes nobody can read back,
# and an Update's copy of the spec aborted the apiserver)
spec_zero = pb.Pod(metadata=pb.ObjectMeta(name="web", namespace="default")).SerializeToString() + \
    b"\x12\x0e\x12\x0c\x0a\x01c\x12\x01i\x85\x00\x01\x02\x03\x04"
for method in ("Create", "Update"):
    code, msg = raw_call("/coracle.v1.Pods/" + method, spec_zero)
    t.is_(code, grpc.StatusCode.INVALID_ARGUMENT, "field number 0 on %s: INVALID_ARGUMENT" % method)
t.ok(api.call("Pods", "Get", pb.GetRequest(name="web")).metadata.name == "web",
     "and the apiserver still serves")
code, msg = raw_call("/coracle.v1.Pods/Create", b"\x0a\x05\x0a\x03ab")  # truncated metadata
t.like(msg, "failed to decode Pod: ", "truncated message")
code, msg = raw_call("/coracle.v1.Pods/Get", b"\x12")
t.is_(code, grpc.StatusCode.INVALID_ARGUMENT, "malformed GetRequest")
code, msg = raw_call("/coracle.v1.Pods/Create", b"\x0a" + b"\xfe\xff\xff\xff\x0f" + b"x" * 100)
t.is_(code, grpc.StatusCode.INVALID_ARGUMENT, "length past the end")
big = simple_pod("big")
big.metadata.annotations["a"] = "x" * (2 << 20)
code, msg = err("Pods", "Create", big)
t.is_(code, grpc.StatusCode.RESOURCE_EXHAUSTED, "oversized request refused (%s)" % msg)
code, msg = raw_call("/coracle.v1.Pods/Nope", b"")
t.is_(code, grpc.StatusCode.UNIMPLEMENTED, "unknown method")
# garbage on a raw TCP connection
s = socket.create_connection(c.api_addr.rsplit(":", 1)[0:1][0:1] and ("127.0.0.1", int(c.api_addr.rsplit(":", 1)[1])))
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(4096))
s.close()
# random bytes to every method
import random
rnd = random.Random(42)
codes = set()
for svc in ("Pods", "Nodes", "Events", "Leases"):
    for m in ("Create", "Get", "List", "Update", "UpdateStatus", "Delete", "Bind"):
        if m == "Bind" and svc != "Pods":
            continue
        for i in range(15):
            payload = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 64)))
            code, _ = raw_call("/coracle.v1.%s/%s" % (svc, m), payload)
            codes.add(code)
t.ok(codes <= {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, None}, "random bytes to every method: clean errors %r" % sorted(str(x) for x in codes))
t.is_(api.call("Pods", "List", pb.ListRequest()).metadata.resourceVersion, rev0, "bad input stored nothing")
t.ok(c.api.alive(), "daemon alive after bad input")
t.is_(ctest.http_get(c.api_addr, "/healthz"), (200, "ok"), "healthz")
t.is_(ctest.http_get(c.api_addr, "/readyz"), (200, "ok"), "readyz")

# ---- selectors ----
for i in range(6):
    sp = simple_pod("sel-%d" % i, ns="sel")
    sp.metadata.labels["app"] = "a" if i % 2 else "b"
    sp.metadata.labels["idx"] = str(i)
    if i < 2:
        sp.spec.nodeName = "n1"
    api.call("Pods", "Create", sp)
def names(lst):
    return sorted(x.metadata.name for x in lst.items)
t.is_(names(api.call("Pods", "List", pb.ListRequest(namespace="sel", labelSelector="app=a"))), ["sel-1", "sel-3", "sel-5"], "label =")
t.is_(names(api.call("Pods", "List", pb.ListRequest(namespace="sel", labelSelector="app!=a,idx in (0,2,3)"))), ["sel-0", "sel-2"], "label != and in")
t.is_(names(api.call("Pods", "List", pb.ListRequest(namespace="sel", labelSelector="!app"))), [], "label !exists")
t.is_(names(api.call("Pods", "List", pb.ListRequest(namespace="sel", fieldSelector="spec.nodeName=n1"))), ["sel-0", "sel-1"], "field spec.nodeName")
t.is_(names(api.call("Pods", "List", pb.ListRequest(namespace="sel", fieldSelector="spec.nodeName="))), ["sel-2", "sel-3", "sel-4", "sel-5"], "field spec.nodeName= (unbound)")
t.is_(names(api.call("Pods", "List", pb.ListRequest(fieldSelector="metadata.namespace=sel,metadata.name=sel-4"))), ["sel-4"], "field metadata.name, all namespaces")
t.is_(names(api.call("Pods", "List", pb.ListRequest(namespace="sel", fieldSelector="status.phase=Pending,spec.nodeName!=n1", labelSelector="app=b"))), ["sel-2", "sel-4"], "labels and fields together")
t.is_(err("Pods", "List", pb.ListRequest(fieldSelector="spec.image=x")),
      (grpc.StatusCode.INVALID_ARGUMENT, "field label not supported: spec.image"), "unsupported field label")
code, msg = err("Pods", "List", pb.ListRequest(labelSelector="app in (a"))
t.is_(code, grpc.StatusCode.INVALID_ARGUMENT, "bad label selector")
t.like(msg, "unable to parse requirement", "label selector error text")

# ---- paging ----
for i in range(25):
    api.call("Pods", "Create", simple_pod("pg-%02d" % i, ns="pg"))
got, tok, rvs, pages = [], "", set(), 0
while True:
    l = api.call("Pods", "List", pb.ListRequest(namespace="pg", limit=10, **({"continue": tok} if tok else {})))
    got += [x.metadata.name for x in l.items]
    rvs.add(l.metadata.resourceVersion)
    pages += 1
    tok = getattr(l.metadata, "continue")
    if pages == 1:
        # changes between pages must not show: consistent snapshot at the first page's revision
        api.call("Pods", "Delete", pb.DeleteRequest(namespace="pg", name="pg-20"))
        api.call("Pods", "Create", simple_pod("pg-99", ns="pg"))
    if not tok:
        break
t.is_(pages, 3, "25 items in pages of 10: 3 pages")
t.is_(got, ["pg-%02d" % i for i in range(25)], "pages in key order, consistent with the first page's revision")
t.is_(len(rvs), 1, "every page answers the list revision")
l = api.call("Pods", "List", pb.ListRequest(namespace="pg", limit=100))
t.ok("pg-99" in names(l) and "pg-20" not in names(l), "a new list sees the changes")
t.is_(err("Pods", "List", pb.ListRequest(namespace="pg", limit=5, **{"continue": "garbage!"}))[0],
      grpc.StatusCode.INVALID_ARGUMENT, "bad continue token")

# ---- a List not older than its resourceVersion ----
# (on etcd a replica may trail a revision the client saw through another
# apiserver: the List waits for it; past 3 s, DEADLINE_EXCEEDED, REST's 504)
cur = int(l.metadata.resourceVersion)
held = {}
ht = threading.Thread(target=lambda: held.update(r=api.try_call(
    "Pods", "List", pb.ListRequest(namespace="pg", resourceVersion=str(cur + 1)), timeout=30)))
ht.start()
time.sleep(0.3)
t.ok(ht.is_alive(), "a List at the next resourceVersion waits for it")
api.call("Pods", "Create", simple_pod("pg-rv", ns="pg"))
ht.join(30)
hl = held.get("r", (None, None))[0]
t.ok(hl is not None and "pg-rv" in names(hl) and int(hl.metadata.resourceVersion) >= cur + 1,
     "... and answers once the store got there, with the write that made it")
_, e = api.try_call("Pods", "List", pb.ListRequest(resourceVersion=str(cur + 1000000)), timeout=30)
t.ok(e is not None and e.code == grpc.StatusCode.DEADLINE_EXCEEDED and
     e.message.startswith("Too large resource version: %d, current: " % (cur + 1000000)),
     "a resourceVersion the store does not reach: DEADLINE_EXCEEDED, as REST's 504 (%s)" % e)

# ---- delete (unbound pod: at once) ----
d = api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=gp.metadata.name))
t.is_(d.metadata.name, gp.metadata.name, "delete returns the object")
t.is_(err("Pods", "Get", pb.GetRequest(name=gp.metadata.name))[0], grpc.StatusCode.NOT_FOUND, "unbound pod deleted at once")
t.is_(err("Pods", "Delete", pb.DeleteRequest(namespace="default", name="web", preconditions=pb.Preconditions(uid="nope")))[1],
      'Operation cannot be fulfilled on pods "web": Precondition failed: UID in precondition: nope, UID in object meta: %s' % p.metadata.uid,
      "uid precondition")

# ---- nodes, leases (cluster-scoped / other kinds) ----
n = api.call("Nodes", "Create", pb.Node(metadata=meta("node1"), status=pb.NodeStatus(capacity={"cpu": pb.Quantity(string="2")})))
t.is_(n.metadata.namespace, "", "nodes are cluster-scoped")
t.is_(n.status.capacity["cpu"].string, "2", "node status kept on create")
ns = pb.Node()
ns.CopyFrom(n)
ns.status.conditions.add(type="Ready", status="True")
n2 = api.call("Nodes", "UpdateStatus", ns)
t.is_(n2.status.conditions[0].status, "True", "node UpdateStatus")
le = api.call("Leases", "Create", pb.Lease(metadata=meta("node1", "kube-node-lease"), spec=pb.LeaseSpec(holderIdentity="node1")))
le.spec.renewTime.seconds = 123
le2 = api.call("Leases", "Update", le)
t.is_(le2.spec.renewTime.seconds, 123, "lease update")
t.is_(len(api.call("Nodes", "List", pb.ListRequest()).items), 1, "list nodes")

# ---- events: repeats raise count ----
def ev(name, reason="Pulled", message="pulled image"):
    return pb.Event(metadata=meta(name, "default"), involvedObject=pb.ObjectReference(kind="Pod", namespace="default", name="web", uid=p.metadata.uid),
                    reason=reason, message=message, source=pb.EventSource(component="kubelet", host="node1"), type="Normal", count=1,
                    firstTimestamp=pb.Time(seconds=1000), lastTimestamp=pb.Time(seconds=1000))
e1 = api.call("Events", "Create", ev("web.1"))
e2 = api.call("Events", "Create", ev("web.2"))
t.is_(e2.metadata.name, "web.1", "a repeat is folded into the existing event")
t.is_(e2.count, 2, "count raised")
e3 = api.call("Events", "Create", ev("web.3"))
t.is_(e3.count, 3, "count raised again")
e4 = api.call("Events", "Create", ev("web.4", reason="Started", message="started"))
t.is_((e4.metadata.name, e4.count), ("web.4", 1), "a different event is new")
t.is_(len(api.call("Events", "List", pb.ListRequest(namespace="default")).items), 2, "two events stored")
t.is_(len(api.call("Events", "List", pb.ListRequest(fieldSelector="involvedObject.name=web,reason=Started")).items), 1, "event field selectors")

# log/exec placeholders
code, msg = raw_call("/coracle.v1.Pods/Bind", b"")
t.is_(code, grpc.StatusCode.INVALID_ARGUMENT, "Bind without a name")

met = ctest.http_get(c.api_addr, "/metrics")[1]
t.like(met, 'coracle_apiserver_requests_total{method="/coracle.v1.Pods/Create",code="OK"}', "metrics by method and code")
t.like(met, "coracle_store_revision ", "metrics: store revision")
t.is_(c.api.stop(), 0, "SIGTERM: exit 0")
t.done()
