#!/usr/bin/python3
# coracle-apiserver end to end: the pipeline's authenticate and authorize
# stages wired to auth.c: bearer tokens, the policy file, node restriction
# (a kubelet touches only its own Node/Lease and its own pods), the watch cap,
# TLS with client certificates (contrib/certs), and cleartext refused on a
# non-loopback address.
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod
import grpc

t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write('admintoken,admin,1,"system:masters"\n')
    f.write('n1token,system:node:n1,2,"system:nodes"\n')
    f.write('bobtoken,bob,3\n')
policy = os.path.join(os.environ.get("CORACLE_SRC", ""), "conf", "policy")
api = c.start_apiserver("--token-auth-file", tokens, "--authorization-policy-file", policy,
                        "--max-watches-per-user", "2")


def as_user(tok):
    return [("authorization", "Bearer " + tok)] if tok else []


def call(tok, svc, method, req):
    rt = api._resp_type(svc, method)
    fn = api.channel.unary_unary("/coracle.v1.%s/%s" % (svc, method), request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=rt.FromString)
    try:
        return fn(req, timeout=ctest.DEADLINE, metadata=as_user(tok)), None
    except grpc.RpcError as e:
        return None, (e.code(), e.details())


r, e = call(None, "Pods", "List", pb.ListRequest())
t.is_(e, (grpc.StatusCode.UNAUTHENTICATED, "Unauthorized"), "no identity: UNAUTHENTICATED")
r, e = call("wrong", "Pods", "List", pb.ListRequest())
t.is_(e and e[0], grpc.StatusCode.UNAUTHENTICATED, "a bad token: UNAUTHENTICATED")
r, e = call("admintoken", "Pods", "Create", simple_pod("p1", nodeName="n1"))
t.is_(e, None, "system:masters may create")
call("admintoken", "Pods", "Create", simple_pod("p2", nodeName="n2"))
call("admintoken", "Nodes", "Create", pb.Node(metadata=meta("n2")))
r, e = call("bobtoken", "Pods", "Get", pb.GetRequest(name="p1"))
t.is_(e and e[0], grpc.StatusCode.PERMISSION_DENIED, "bob has no role: PERMISSION_DENIED")
t.like(e and e[1], 'User "bob" cannot get resource "pods"', "Kubernetes' forbidden text (%s)" % (e and e[1]))

# node restriction
r, e = call("n1token", "Nodes", "Create", pb.Node(metadata=meta("n1")))
t.is_(e, None, "a kubelet registers its own Node")
r, e = call("n1token", "Nodes", "Update", pb.Node(metadata=meta("n2")))
t.is_(e and e[0], grpc.StatusCode.PERMISSION_DENIED, "but may not modify another node's")


# The names authorized are the names stored. Metadata given twice decodes
# as the two merged (the later name wins); the apiserver reads the names
# off the wire the same way before authorizing, then checks the decoded
# object against them.
class Raw:
    def __init__(self, b):
        self.b = b

    def SerializeToString(self):
        return self.b


twice = pb.Node(metadata=meta("n1")).SerializeToString() + \
    pb.Node(metadata=meta("n9")).SerializeToString()
r, e = call("n1token", "Nodes", "Create", Raw(twice))
t.is_(e and e[0], grpc.StatusCode.PERMISSION_DENIED,
      "metadata given twice (n1, then n9): node n1 may not create n9")
r, e = call("admintoken", "Nodes", "Get", pb.GetRequest(name="n9"))
t.is_(e and e[0], grpc.StatusCode.NOT_FOUND, "and there is no node n9")
twice = simple_pod("q1").SerializeToString() + pb.Pod(metadata=meta("q2")).SerializeToString()
r, e = call("admintoken", "Pods", "Create", Raw(twice))
t.ok(r is not None and r.metadata.name == "q2" and r.spec.containers[0].name,
     "a pod given twice is created merged, under the later name: %s" % (e,))
r, e = call("n1token", "Pods", "Get", pb.GetRequest(name="p1"))
t.is_(e, None, "reads its own pod")
r, e = call("n1token", "Pods", "Get", pb.GetRequest(name="p2"))
t.is_(e and e[0], grpc.StatusCode.PERMISSION_DENIED, "not another node's pod")
p1 = call("admintoken", "Pods", "Get", pb.GetRequest(name="p1"))[0]
p1.status.phase = "Running"
r, e = call("n1token", "Pods", "UpdateStatus", p1)
t.is_((e, r and r.status.phase), (None, "Running"), "updates its pod's status")
r, e = call("n1token", "Pods", "Update", p1)
t.is_(e and e[0], grpc.StatusCode.PERMISSION_DENIED, "but not its spec")
r, e = call("n1token", "Pods", "List", pb.ListRequest())
t.is_(e and e[0], grpc.StatusCode.PERMISSION_DENIED, "list without spec.nodeName=n1: denied")
r, e = call("n1token", "Pods", "List", pb.ListRequest(fieldSelector="spec.nodeName=n1"))
t.is_((e, r and [x.metadata.name for x in r.items]), (None, ["p1"]), "list with spec.nodeName=n1")

# the per-user watch cap (2)
def watch(tok):
    fn = api.channel.unary_stream("/coracle.v1.Pods/Watch", request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=pb.PodWatchEvent.FromString)
    return fn(pb.ListRequest(fieldSelector="spec.nodeName=n1", resourceVersion="999999"), metadata=as_user(tok))
ws = [watch("n1token"), watch("n1token")]
w3 = watch("n1token")
try:
    next(w3)
    t.ok(False, "a third watch is refused")
except grpc.RpcError as e:
    t.is_(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, "a third watch of the same user: RESOURCE_EXHAUSTED (%s)" % e.details())
for w in ws:
    w.cancel()

# cleartext on a non-loopback address is refused
p = subprocess.run([c.bin("coracle-apiserver"), "--listen", "0.0.0.0:%d" % ctest.free_port(), "--data-dir",
                    os.path.join(c.dir, "d2")], capture_output=True, text=True, timeout=10)
t.ok(p.returncode != 0 and "refusing to serve cleartext" in p.stderr, "cleartext on 0.0.0.0 refused: %s" % p.stderr.strip()[-100:])

# TLS with client certificates
pki = os.path.join(c.dir, "pki")
r = subprocess.run(["sh", os.path.join(os.environ.get("CORACLE_SRC", ""), "contrib", "certs"), "-d", pki, "-n", "n1"],
                   capture_output=True, text=True)
if r.returncode != 0:
    t.skip("contrib/certs failed: %s" % r.stderr[-200:], 3)
else:
    port = ctest.free_port()
    d = c.start("apiserver-tls", [c.bin("coracle-apiserver"), "--listen", "127.0.0.1:%d" % port, "--data-dir", os.path.join(c.dir, "d3"),
                                  "--tls-cert-file", os.path.join(pki, "apiserver.crt"), "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                                  "--client-ca-file", os.path.join(pki, "ca.crt"), "--authorization-policy-file", policy])
    rd = lambda n: open(os.path.join(pki, n), "rb").read()
    import time
    ok = c.wait_for(lambda: "ready" in d.tail(), timeout=ctest.DEADLINE)
    def tls_chan(crt, key):
        creds = grpc.ssl_channel_credentials(root_certificates=rd("ca.crt"), private_key=rd(key) if key else None,
                                             certificate_chain=rd(crt) if crt else None)
        return grpc.secure_channel("127.0.0.1:%d" % port, creds)
    ch = tls_chan("admin.crt", "admin.key")
    fn = ch.unary_unary("/coracle.v1.Nodes/Create", request_serializer=lambda m: m.SerializeToString(), response_deserializer=pb.Node.FromString)
    try:
        n = fn(pb.Node(metadata=meta("tn")), timeout=ctest.DEADLINE)
        t.is_(n.metadata.name, "tn", "TLS: the admin certificate (O=system:masters) may create")
    except grpc.RpcError as e:
        t.ok(False, "TLS admin create: %s %s" % (e.code(), e.details()))
    ch.close()
    ch = tls_chan("kubelet-n1.crt", "kubelet-n1.key")
    fn = ch.unary_unary("/coracle.v1.Nodes/Update", request_serializer=lambda m: m.SerializeToString(), response_deserializer=pb.Node.FromString)
    try:
        fn(pb.Node(metadata=meta("tn")), timeout=ctest.DEADLINE)
        t.ok(False, "TLS: kubelet n1 may not update node tn")
    except grpc.RpcError as e:
        t.is_(e.code(), grpc.StatusCode.PERMISSION_DENIED, "TLS: the kubelet certificate (CN=system:node:n1) may not update node tn")
    ch.close()
    ch = tls_chan(None, None)
    fn = ch.unary_unary("/coracle.v1.Nodes/List", request_serializer=lambda m: m.SerializeToString(), response_deserializer=pb.NodeList.FromString)
    try:
        fn(pb.ListRequest(), timeout=ctest.DEADLINE)
        t.ok(False, "TLS without a client certificate or token")
    except grpc.RpcError as e:
        t.is_(e.code(), grpc.StatusCode.UNAUTHENTICATED, "TLS without a client certificate or token: UNAUTHENTICATED")
    ch.close()
t.done()
