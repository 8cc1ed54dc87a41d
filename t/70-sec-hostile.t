#!/usr/bin/python3
# Hostile input to a running coracle-apiserver and to coraclectl (doc/security.md,
# "Limits against hostile clients");
# the transport-level cases (malformed and truncated HTTP/2 frames, truncated
# and oversized gRPC frames, oversized headers on h2s alone) are in
# t/unit/test_h2.c, t/26-h2-garbage.t and t/unit/test_tls.c, and invalid
# protobuf to every method in t/20-api-crud.t. Here: 10,000 labels, names of
# every invalid shape, selectors of absurd size, an oversized header block,
# YAML bombs (aliases, deep nesting) in coraclectl. After each the daemon
# must answer cleanly and still serve.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import simple_pod
import grpc

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb
INVALID = grpc.StatusCode.INVALID_ARGUMENT

# ---- 10,000 labels ----
p = simple_pod("many-labels")
for i in range(10000):
    p.metadata.labels["k%05d" % i] = "v%d" % i
got, e = api.try_call("Pods", "Create", p)
t.ok(e is None or e.code in (INVALID, grpc.StatusCode.RESOURCE_EXHAUSTED),
     "10,000 labels: stored or refused cleanly (%s)" % (e.code if e else "stored"))
if e is None:
    g = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="many-labels"))
    t.is_(len(g.metadata.labels), 10000, "all 10,000 labels read back")
    lst = api.call("Pods", "List", pb.ListRequest(namespace="default", labelSelector="k09999=v9999"))
    t.is_([x.metadata.name for x in lst.items], ["many-labels"], "selector on the 10,000th label")
else:
    t.ok(True, "skip: refused")
    t.ok(True, "skip: refused")
sel = ",".join("k%05d=v%d" % (i, i) for i in range(10000))
lst, e = api.try_call("Pods", "List", pb.ListRequest(namespace="default", labelSelector=sel))
t.ok(e is None or e.code == INVALID, "a 10,000-term label selector: answered (%s)" % (e.code if e else "ok"))
lst, e = api.try_call("Pods", "List", pb.ListRequest(namespace="default", labelSelector="a in (" + "x," * 50000 + "y)"))
t.ok(e is None or e.code == INVALID, "a 50,000-value set selector: answered")
lst, e = api.try_call("Pods", "List", pb.ListRequest(namespace="default", labelSelector="((((((((((" * 1000))
t.is_(e.code if e else None, INVALID, "garbage selector: INVALID_ARGUMENT")
lst, e = api.try_call("Pods", "List", pb.ListRequest(namespace="default", fieldSelector="spec.nodeName in (a,b)"))
t.is_(e.code if e else None, INVALID, "set operator in a field selector: INVALID_ARGUMENT")

# ---- names of every invalid shape ----
bad_names = ["", "UPPER", "-lead", "trail-", "a..b", "a_b", "a b", "a/b", "..", ".", "a" * 254,
             "\u00f1and\u00fa", "a\tb", "a\nb", "a%2fb", "*", "a:b", "-", ".a"]
for n in bad_names:
    q = simple_pod("x")
    q.metadata.name = n
    _, e = api.try_call("Pods", "Create", q)
    t.ok(e is not None and e.code == INVALID and "metadata.name" in e.message,
         "pod name %r: INVALID_ARGUMENT naming metadata.name (%s)" % (n[:20], e.message[:100] if e else "stored!"))
for ns in ["UPPER", "a.b", "a" * 64, "-x", "a/b", ".."]:
    q = simple_pod("x", ns=ns)
    _, e = api.try_call("Pods", "Create", q)
    t.ok(e is not None and e.code == INVALID and "metadata.namespace" in e.message,
         "namespace %r: INVALID_ARGUMENT (%s)" % (ns[:20], e.message[:100] if e else "stored!"))
for n in ["a/../../nodes//n1", "../x", "a\x00b"]:
    _, e = api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=n))
    t.ok(e is not None and e.code in (grpc.StatusCode.NOT_FOUND, INVALID),
         "Get %r: NOT_FOUND or INVALID_ARGUMENT, no other key reached" % n)
node = pb.Node(metadata=pb.ObjectMeta(name="Bad_Node"))
_, e = api.try_call("Nodes", "Create", node)
t.ok(e is not None and e.code == INVALID, "invalid node name refused")
lst = api.call("Pods", "List", pb.ListRequest())
t.ok(all(x.metadata.name in ("many-labels",) for x in lst.items), "nothing invalid was stored")

# ---- an oversized header block ----
_, e = None, None
try:
    fn = api.channel.unary_unary("/coracle.v1.Pods/Get", request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=pb.Pod.FromString)
    fn(pb.GetRequest(namespace="default", name="x"), metadata=[("x-big", "a" * 40000)], timeout=ctest.DEADLINE)
    code = grpc.StatusCode.OK
except grpc.RpcError as ex:
    code = ex.code()
t.ok(code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE),
     "a 40 KB header block is refused (%s)" % code)
t.ok(c.api.alive() and ctest.http_get(c.api_addr, "/healthz")[0] == 200, "apiserver alive after hostile requests")

# ---- YAML bombs in coraclectl ----
bombs = {
    "alias bomb": "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                  "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
    "alias in a pod": "apiVersion: v1\nkind: Pod\nmetadata: &m {name: x}\nspec:\n  containers: [{name: c, image: busybox}]\n"
                      "  nodeSelector: *m\n",
    "deep nesting": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: deep\n  labels: " + "[" * 100000 + "]" * 100000 + "\n",
    "deep mappings": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: deep\n" + "".join("  " * i + "a%d:\n" % i for i in range(2, 300)),
    "a huge scalar": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + "a" * (4 << 20) + "\n",
    "binary garbage": "".join(chr(x) for x in range(1, 256)) * 10,
}
for what, text in bombs.items():
    t0 = time.time()
    rc, out, err = c.ctl("apply", "-f", "-", stdin=text, timeout=60)
    dt = time.time() - t0
    t.ok(rc != 0 and err.strip() != "" and "Traceback" not in err and rc < 128,
         "coraclectl refuses %s with an error (rc %d, %.1fs): %s" % (what, rc, dt, err.strip().splitlines()[0][:100] if err.strip() else ""))
    t.ok(dt < 20, "%s: refused in bounded time (%.1fs)" % (what, dt))
lst = api.call("Pods", "List", pb.ListRequest())
t.ok(all(x.metadata.name == "many-labels" for x in lst.items), "no bomb created anything")
t.done()
