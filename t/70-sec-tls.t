#!/usr/bin/python3
# coracle-apiserver with TLS, client certificates, static tokens and the
# shipped authorization policy (doc/security.md, "Authorization"), with certificates from
# contrib/certs: who may do what (scheduler, nodes, admin, a token user),
# Kubernetes' denial texts, node restriction (a node writing another node's
# pods), certificates from another CA, an expired certificate, cleartext against TLS, SIGHUP reload,
# the refusal to serve cleartext or unauthenticated on non-loopback
# addresses, --insecure-loopback, unix sockets, the per-user watch cap.
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import simple_pod
import grpc

SRC = os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
pki = os.path.join(c.dir, "pki")
other = os.path.join(c.dir, "other")
for d in (pki, other):
    c.certs(d, "-n", "n1", "-n", "n2")
t.ok(os.path.exists(os.path.join(pki, "kubelet-n2.conf")), "contrib/certs wrote certificates and client configs")
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write("tok-bob,bob,1001\ntok-ops,olga,1002,\"ops,system:masters\"\n")
policy = os.path.join(c.dir, "policy")
shutil.copy(os.path.join(SRC, "conf", "policy"), policy)
port = ctest.free_port()
insecure_port = ctest.free_port()
sock = os.path.join(c.dir, "api.sock")
addr = "127.0.0.1:%d" % port
api = c.start("apiserver", [c.bin("coracle-apiserver"), "--listen", addr, "--listen", "unix:" + sock,
                            "--data-dir", os.path.join(c.dir, "data"),
                            "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                            "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                            "--client-ca-file", os.path.join(pki, "ca.crt"),
                            "--token-auth-file", tokens, "--authorization-policy-file", policy,
                            "--max-watches-per-user", "3"])


def rd(*p):
    with open(os.path.join(*p), "rb") as f:
        return f.read()


def client(who=None, token=None, ca=pki, target=addr, base=pki):
    cl = ctest.Client.__new__(ctest.Client)
    cl.addr = target
    if target.startswith("unix:"):
        ch = grpc.insecure_channel("unix://" + target[5:])
    else:
        creds = grpc.ssl_channel_credentials(
            root_certificates=rd(ca, "ca.crt"),
            private_key=rd(base, who + ".key") if who else None,
            certificate_chain=rd(base, who + ".crt") if who else None)
        ch = grpc.secure_channel(target, creds)
    if token:
        ch = grpc.intercept_channel(ch, TokenInterceptor(token))
    cl.channel = ch
    c.clients.append(cl)
    return cl


class TokenInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, token):
        self.md = [("authorization", "Bearer " + token)]

    def _add(self, details):
        return details._replace(metadata=list(details.metadata or []) + self.md)

    def intercept_unary_unary(self, cont, details, req):
        return cont(self._add(details), req)

    def intercept_unary_stream(self, cont, details, req):
        return cont(self._add(details), req)


def https_get(path):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as ss:
            ss.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
            data = b""
            while True:
                b = ss.recv(65536)
                if not b:
                    break
                data += b
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


deadline = time.time() + ctest.DEADLINE
while time.time() < deadline:
    try:
        if https_get("/readyz")[0] == 200:
            break
    except OSError:
        pass
    if not api.alive():
        t.bail("apiserver exited:\n" + api.tail())
    time.sleep(0.1)
t.is_(https_get("/healthz"), (200, "ok"), "/healthz over TLS needs no credentials")


def code_of(cl, svc, method, req):
    _, e = cl.try_call(svc, method, req)
    return (e.code, e.message) if e else (grpc.StatusCode.OK, "")


admin = client("admin")
sched = client("scheduler")
n1 = client("kubelet-n1")
n2 = client("kubelet-n2")
anon = client()
bob = client(token="tok-bob")

p = admin.call("Pods", "Create", simple_pod("web"))
t.ok(p.metadata.uid, "admin (O=system:masters) creates a pod")
t.is_(code_of(anon, "Pods", "List", pb.ListRequest()), (grpc.StatusCode.UNAUTHENTICATED, "Unauthorized"),
      "no certificate, no token: UNAUTHENTICATED")
t.is_(code_of(client(token="tok-nope"), "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.UNAUTHENTICATED,
      "unknown token: UNAUTHENTICATED")
t.is_(code_of(bob, "Pods", "Get", pb.GetRequest(namespace="default", name="web")),
      (grpc.StatusCode.PERMISSION_DENIED,
       'pods "web" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"'),
      "token user without a role: Kubernetes' denial text")
t.is_(code_of(client(token="tok-ops"), "Pods", "Get", pb.GetRequest(namespace="default", name="web"))[0],
      grpc.StatusCode.OK, "token user in system:masters may read")

# the scheduler's rights
t.is_(code_of(sched, "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.OK, "scheduler lists pods")
t.is_(code_of(sched, "Nodes", "List", pb.ListRequest())[0], grpc.StatusCode.OK, "scheduler lists nodes")
for name, node in (("on-n1", "n1"), ("on-n2", "n2")):
    admin.call("Pods", "Create", simple_pod(name))
    b = pb.Binding(metadata=pb.ObjectMeta(namespace="default", name=name), target=pb.ObjectReference(kind="Node", name=node))
    t.is_(code_of(sched, "Pods", "Bind", b)[0], grpc.StatusCode.OK, "scheduler binds %s to %s" % (name, node))
code, msg = code_of(sched, "Pods", "Delete", pb.DeleteRequest(namespace="default", name="web"))
t.is_(code, grpc.StatusCode.PERMISSION_DENIED, "scheduler may not delete pods")
t.like(msg, 'User "system:kube-scheduler" cannot delete resource "pods"', "denial names user, verb, resource")
t.is_(code_of(sched, "Pods", "Create", simple_pod("x"))[0], grpc.StatusCode.PERMISSION_DENIED,
      "scheduler may not create pods")

# node restriction
node = pb.Node(metadata=pb.ObjectMeta(name="n1"))
t.is_(code_of(n1, "Nodes", "Create", node)[0], grpc.StatusCode.OK, "n1 registers its Node")
code, msg = code_of(n1, "Nodes", "Create", pb.Node(metadata=pb.ObjectMeta(name="n2")))
t.is_(code, grpc.StatusCode.PERMISSION_DENIED, "n1 may not register n2")
t.like(msg, 'node "n1" can only modify its own Node', "... and is told why")
lease = pb.Lease(metadata=pb.ObjectMeta(name="n1", namespace="kube-node-lease"), spec=pb.LeaseSpec(holderIdentity="n1"))
t.is_(code_of(n1, "Leases", "Create", lease)[0], grpc.StatusCode.OK, "n1 creates its Lease")
lease2 = pb.Lease(metadata=pb.ObjectMeta(name="n2", namespace="kube-node-lease"), spec=pb.LeaseSpec(holderIdentity="n1"))
t.is_(code_of(n1, "Leases", "Create", lease2)[0], grpc.StatusCode.PERMISSION_DENIED, "n1 may not create n2's Lease")
code, msg = code_of(n1, "Pods", "List", pb.ListRequest())
t.is_(code, grpc.StatusCode.PERMISSION_DENIED, "n1 may not list all pods")
t.like(msg, "fieldSelector spec.nodeName=n1", "... only with its field selector")
lst = n1.call("Pods", "List", pb.ListRequest(fieldSelector="spec.nodeName=n1"))
t.is_([x.metadata.name for x in lst.items], ["on-n1"], "n1 lists its own pods")
t.is_(code_of(n1, "Pods", "Get", pb.GetRequest(namespace="default", name="on-n1"))[0], grpc.StatusCode.OK,
      "n1 reads its pod")
t.is_(code_of(n1, "Pods", "Get", pb.GetRequest(namespace="default", name="on-n2"))[0],
      grpc.StatusCode.PERMISSION_DENIED, "n1 may not read n2's pod")
mine = n1.call("Pods", "Get", pb.GetRequest(namespace="default", name="on-n1"))
mine.status.phase = "Running"
t.is_(code_of(n1, "Pods", "UpdateStatus", mine)[0], grpc.StatusCode.OK, "n1 updates its pod's status")
theirs = admin.call("Pods", "Get", pb.GetRequest(namespace="default", name="on-n2"))
theirs.status.phase = "Failed"
code, msg = code_of(n1, "Pods", "UpdateStatus", theirs)
t.is_(code, grpc.StatusCode.PERMISSION_DENIED, "n1 may not write n2's pod status")
t.like(msg, 'pods "on-n2" is forbidden: User "system:node:n1" cannot update resource "pods/status"', "denial text")
theirs.spec.nodeName = "n1"  # lying about the binding does not help
t.is_(code_of(n1, "Pods", "UpdateStatus", theirs)[0], grpc.StatusCode.PERMISSION_DENIED,
      "a forged spec.nodeName in the request does not help")
t.is_(code_of(n1, "Pods", "Delete", pb.DeleteRequest(namespace="default", name="on-n2", gracePeriodSeconds=0))[0],
      grpc.StatusCode.PERMISSION_DENIED, "n1 may not delete n2's pod")
t.is_(admin.call("Pods", "Get", pb.GetRequest(namespace="default", name="on-n2")).status.phase, "Pending",
      "n2's pod untouched")
ev = pb.Event(metadata=pb.ObjectMeta(name="e1", namespace="default"), reason="Started", message="m",
              involvedObject=pb.ObjectReference(kind="Pod", name="on-n1", namespace="default"))
t.is_(code_of(n1, "Events", "Create", ev)[0], grpc.StatusCode.OK, "n1 posts events")
w = n1.stream("Pods", "Watch", pb.ListRequest(fieldSelector="spec.nodeName=n1"))
first = next(w)
t.is_(first.object.metadata.name, "on-n1", "n1 watches its pods")
w.cancel()
w = n1.stream("Pods", "Watch", pb.ListRequest())
try:
    next(w)
    t.ok(False, "n1 watch without field selector refused")
except grpc.RpcError as e:
    t.is_(e.code(), grpc.StatusCode.PERMISSION_DENIED, "n1 watch without field selector refused")

# the per-user watch cap (3)
ws = [sched.stream("Nodes", "Watch", pb.ListRequest()) for _ in range(3)]
for x in ws:
    next(x)
w4 = sched.stream("Nodes", "Watch", pb.ListRequest())
try:
    next(w4)
    t.ok(False, "fourth watch of one user refused")
except grpc.RpcError as e:
    t.ok(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "too many" in e.details(),
         "fourth watch of one user refused (%s)" % e.details())
for x in ws:
    x.cancel()
time.sleep(0.3)
w5 = sched.stream("Nodes", "Watch", pb.ListRequest())
t.ok(next(w5) is not None, "after they end, the user may watch again")
w5.cancel()

# TLS failures
bad = client("admin", base=other)
t.is_(code_of(bad, "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.UNAVAILABLE,
      "client certificate from another CA: no connection")
wrongca = client("admin", ca=other)
t.is_(code_of(wrongca, "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.UNAVAILABLE,
      "server certificate not from the client's CA: no connection")
# An expired client certificate, signed by the cluster CA: refused at the handshake.
import datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
ca_key = serialization.load_pem_private_key(rd(pki, "ca.key"), password=None)
ca_cert = x509.load_pem_x509_certificate(rd(pki, "ca.crt"))
ekey = ec.generate_private_key(ec.SECP256R1())
past = datetime.datetime(2020, 1, 1)
ecert = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin"),
                                  x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")]))
         .issuer_name(ca_cert.subject).public_key(ekey.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(past).not_valid_after(past + datetime.timedelta(days=1))
         .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .sign(ca_key, hashes.SHA256()))
edir = os.path.join(c.dir, "expired")
os.makedirs(edir)
with open(os.path.join(edir, "admin.key"), "wb") as f:
    f.write(ekey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()))
with open(os.path.join(edir, "admin.crt"), "wb") as f:
    f.write(ecert.public_bytes(serialization.Encoding.PEM))
expired = client("admin", base=edir)
t.is_(code_of(expired, "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.UNAVAILABLE,
      "an expired client certificate from the cluster CA: no connection")
t.ok(api.alive(), "apiserver alive after the expired certificate")
clear = ctest.Client(addr)
c.clients.append(clear)
t.is_(code_of(clear, "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.UNAVAILABLE,
      "cleartext on the TLS port: no connection")
t.is_(ctest.http_get(addr, "/healthz")[0], None, "cleartext HTTP on the TLS port: no answer")

import re
m = re.search(r'coracle_http2_refused_total\{reason="tls_handshake"\} (\d+)', https_get("/metrics")[1])
t.ok(m and int(m.group(1)) >= 2, "failed handshakes counted in /metrics (%s)" % (m.group(1) if m else "absent"))

# unix socket: cleartext, authenticated by token
us = client(token="tok-ops", target="unix:" + sock)
t.is_(code_of(us, "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.OK, "unix socket: cleartext with a token")
t.is_(code_of(client(target="unix:" + sock), "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.UNAUTHENTICATED,
      "unix socket without credentials: UNAUTHENTICATED")

# SIGHUP reloads tokens and policy
with open(tokens, "a") as f:
    f.write("tok-carol,carol,1003\n")
with open(policy, "a") as f:
    f.write("bind view user:carol\n")
api.proc.send_signal(signal.SIGHUP)
carol = client(token="tok-carol")
ok = ctest.Cluster.wait_for(c, lambda: code_of(carol, "Pods", "List", pb.ListRequest())[0] == grpc.StatusCode.OK, timeout=ctest.DEADLINE)
t.ok(ok, "after SIGHUP a new token and binding work")
t.is_(code_of(carol, "Pods", "Delete", pb.DeleteRequest(namespace="default", name="web"))[0],
      grpc.StatusCode.PERMISSION_DENIED, "... with only the view role's rights")
with open(policy, "a") as f:
    f.write("bind nosuchrole user:carol\n")
api.proc.send_signal(signal.SIGHUP)
time.sleep(0.5)
t.is_(code_of(carol, "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.OK, "a broken policy on SIGHUP keeps the old one")
t.ok(api.alive(), "apiserver alive")
t.like(api.tail(200), "auth: denied: pods \"on-n2\" is forbidden", "denials are logged")


# startup refusals; 192.0.2.1 (TEST-NET-1) is on no interface here: had the
# server not refused the address, its bind would fail and nothing would listen


def start_fails(*args):
    r = subprocess.run([c.bin("coracle-apiserver"), "--data-dir", os.path.join(c.dir, "data-x")] + list(args),
                       capture_output=True, text=True, timeout=20)
    return r.returncode, r.stderr


rc, err = start_fails("--listen", "192.0.2.1:6443")
t.ok(rc != 0 and "refusing to serve cleartext on 192.0.2.1:6443" in err, "no TLS on a non-loopback address: refused (%s)" % err.strip()[-120:])
rc, err = start_fails("--listen", "192.0.2.1:6443", "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                      "--tls-private-key-file", os.path.join(pki, "apiserver.key"))
t.ok(rc != 0 and "without authentication" in err, "TLS without authentication on a non-loopback address: refused (%s)" % err.strip()[-120:])
rc, err = start_fails("--listen", "127.0.0.1:%d" % ctest.free_port(), "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                      "--tls-private-key-file", os.path.join(pki, "admin.key"))
t.ok(rc != 0 and "mismatch" in err, "mismatched key: refused with a reason")
rc, err = start_fails("--listen", "127.0.0.1:%d" % ctest.free_port(), "--authorization-policy-file", tokens)
t.ok(rc != 0 and "tokens.csv:1: unknown directive" in err, "broken policy at start: refused naming file and line")

# --insecure-loopback: cleartext on a loopback address next to TLS
api2 = c.start("apiserver2", [c.bin("coracle-apiserver"), "--listen", "127.0.0.1:%d" % insecure_port,
                              "--data-dir", os.path.join(c.dir, "data2"), "--insecure-loopback",
                              "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                              "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                              "--client-ca-file", os.path.join(pki, "ca.crt"), "--token-auth-file", tokens])
c.wait_ready("127.0.0.1:%d" % insecure_port, api2)
cl2 = ctest.Client("127.0.0.1:%d" % insecure_port)
c.clients.append(cl2)
cl2.channel = grpc.intercept_channel(cl2.channel, TokenInterceptor("tok-bob"))
t.is_(code_of(cl2, "Pods", "List", pb.ListRequest())[0], grpc.StatusCode.OK,
      "--insecure-loopback: cleartext with a token (no policy file: authenticated users allowed)")
t.done()
