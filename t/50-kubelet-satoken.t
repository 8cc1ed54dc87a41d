#!/usr/bin/python3
# coracle-kubelet and ServiceAccount tokens, with the real apiserver (TLS,
# tokens, the shipped policy plus a grant), the root CA publisher and runc:
# the admission plugin's kube-api-access volume is projected at
# /var/run/secrets/kubernetes.io/serviceaccount (token bound to the pod,
# ca.crt, namespace), KUBERNETES_SERVICE_HOST/PORT name the apiserver, and a
# client with in-cluster configuration (t/incluster.c, built statically here
# and mounted into a busybox pod) lists pods in its namespace and is refused
# outside it; the token is refreshed (a short
# --service-account-max-token-expiration) and stops working once the pod is
# deleted; a downwardAPI volume holds the pod's labels.
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import grpc

import klet

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "50-kubelet-satoken")
c.implicit_namespaces = False
pb = c.pb
SRC = ctest.SRC
bindir = os.path.join(c.dir, "bin")
os.makedirs(bindir)
r = subprocess.run(["cc", "-static", "-O2", "-o", os.path.join(bindir, "incluster"),
                    os.path.join(SRC, "t", "incluster.c"), "-lssl", "-lcrypto", "-lpthread", "-ldl"],
                   capture_output=True, text=True)
if r.returncode != 0:
    t.skip_all("cannot build t/incluster.c statically (libssl.a, libc.a): " + r.stderr[-300:])

pki = os.path.join(c.dir, "pki")
port = ctest.free_port()
addr = "127.0.0.1:%d" % port
c.certs(pki, "-n", "node1", "-s", addr)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write('admintoken,admin,1,"system:masters"\n')
    f.write('n1token,system:node:node1,2,"system:nodes"\n')
with open(os.path.join(c.dir, "node1.token"), "w") as f:
    f.write("n1token\n")
policy = os.path.join(c.dir, "policy")
shutil.copy(os.path.join(SRC, "conf", "policy"), policy)
with open(policy, "a") as f:
    f.write("role pod-reader get,list,watch pods default\n")
    f.write("bind pod-reader user:system:serviceaccount:default:default\n")
ca = os.path.join(pki, "ca.crt")
api_d = c.start("apiserver", [c.bin("coracle-apiserver"), "--listen", addr,
                              "--data-dir", os.path.join(c.dir, "data"),
                              "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                              "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                              "--client-ca-file", ca,
                              "--token-auth-file", tokens, "--authorization-policy-file", policy,
                              "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                              "--service-account-key-file", os.path.join(pki, "sa.pub"),
                              "--service-account-signing-key-file", os.path.join(pki, "sa.key"),
                              "--service-account-max-token-expiration", "20s"])
c.api = api_d
c.api_addr = addr
base = "https://" + addr
tls_ctx = ssl.create_default_context(cafile=ca)
with open(ca, "rb") as f:
    channel = grpc.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=f.read()))


def rest(path, tok):
    req = urllib.request.Request(base + path, headers={"Authorization": "Bearer " + tok})
    try:
        with urllib.request.urlopen(req, timeout=ctest.DEADLINE, context=tls_ctx) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


if not c.wait_for(lambda: rest("/readyz", "") == 200 or not api_d.alive(), timeout=ctest.DEADLINE, interval=0.1) \
        or not api_d.alive():
    t.bail("apiserver not ready:\n" + api_d.tail())


def call(svc, method, req, tok="admintoken"):
    name = {"List": "List", "Watch": "WatchEvent"}.get(method, "")
    fn = channel.unary_unary("/coracle.v1.%s/%s" % (svc, method), request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=getattr(pb, svc[:-1] + name).FromString)
    try:
        return fn(req, timeout=ctest.DEADLINE, metadata=[("authorization", "Bearer " + tok)]), None
    except grpc.RpcError as e:
        return None, (e.code(), e.details())


c.start("controller-manager", [c.bin("coracle-controller-manager"), "--server", addr, "--healthz-listen", "",
                               "--leader-elect=false", "--controllers", "root-ca-cert-publisher",
                               "--certificate-authority", ca,
                               "--client-certificate", os.path.join(pki, "controller-manager.crt"),
                               "--client-key", os.path.join(pki, "controller-manager.key")])
k = c.start_kubelet("node1", "--healthz-listen", "", "--server", addr, "--certificate-authority", ca,
                    "--token-file", os.path.join(c.dir, "node1.token"), root_dir=root)
t.ok(c.wait_for(lambda: call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE),
     "the kubelet registers over TLS")
c.wait_for(lambda: call("ServiceAccounts", "Get", pb.GetRequest(namespace="default", name="default"))[0])

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
script = ("env > /out/env; cat %s/token > /out/token; cat %s/ca.crt > /out/ca.crt; "
          "cat %s/namespace > /out/namespace; cat /etc/podinfo/labels > /out/labels; "
          "/opt/bin/incluster /api/v1/namespaces/NS/pods /api/v1/namespaces/kube-system/pods > /out/result 2>&1; "
          "exec sleep 3600") % (SA, SA, SA)
out = os.path.join(c.dir, "out")
os.makedirs(out)
app = pb.Container(name="app", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                   command=["sh", "-c", script],
                   volumeMounts=[pb.VolumeMount(name="bin", mountPath="/opt/bin", readOnly=True),
                                 pb.VolumeMount(name="out", mountPath="/out"),
                                 pb.VolumeMount(name="podinfo", mountPath="/etc/podinfo")])
vols = [pb.Volume(name="bin", volumeSource=pb.VolumeSource(hostPath=pb.HostPathVolumeSource(path=bindir))),
        pb.Volume(name="out", volumeSource=pb.VolumeSource(hostPath=pb.HostPathVolumeSource(path=out))),
        pb.Volume(name="podinfo", volumeSource=pb.VolumeSource(downwardAPI=pb.DownwardAPIVolumeSource(
            items=[pb.DownwardAPIVolumeFile(path="labels", fieldRef=pb.ObjectFieldSelector(fieldPath="metadata.labels"))])))]
pod = pb.Pod(metadata=ctest.meta("client", "default", labels={"app": "client", "tier": "x"}),
             spec=pb.PodSpec(nodeName="node1", hostNetwork=True, terminationGracePeriodSeconds=1,
                             containers=[app], volumes=vols))
r, e = call("Pods", "Create", pod)
if e:
    t.bail("Pods.Create: %s" % (e,))


def cs0(p):
    return p.status.containerStatuses[0] if p and p.status.containerStatuses else None


def get():
    return call("Pods", "Get", pb.GetRequest(namespace="default", name="client"))[0]


p = c.wait_for(lambda: (lambda p: p if p and p.status.phase == "Running" else None)(get()), timeout=ctest.DEADLINE)
t.ok(p is not None, "the pod with the kube-api-access volume runs")
resf = os.path.join(out, "result")
c.wait_for(lambda: os.path.exists(resf) and open(resf).read().count("\n") >= 2, timeout=ctest.DEADLINE)
res = open(resf).read() if os.path.exists(resf) else ""
t.like(res, "200 /api/v1/namespaces/default/pods", "in-cluster client: lists pods in its namespace (%r)" % res)
t.like(res, "403 /api/v1/namespaces/kube-system/pods", "and is refused in kube-system")


def rd(name):
    pth = os.path.join(out, name)
    return open(pth).read() if os.path.exists(pth) else ""


tok = rd("token")
claims = {}
if tok.count(".") == 2:
    import base64
    seg = tok.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
kio = claims.get("kubernetes.io", {})
t.ok(kio.get("pod", {}).get("name") == "client" and kio.get("pod", {}).get("uid") == (p.metadata.uid if p else "-")
     and kio.get("node", {}).get("name") == "node1" and claims.get("exp", 0) - claims.get("iat", 0) == 20,
     "the token is bound to the pod and its node, 20 s (the max expiration) (%s)" % claims)
t.is_(rd("ca.crt"), open(ca).read(), "ca.crt is the cluster CA (kube-root-ca.crt)")
t.is_(rd("namespace"), "default", "namespace")
env = dict(l.split("=", 1) for l in rd("env").splitlines() if "=" in l)
t.ok(env.get("KUBERNETES_SERVICE_HOST") == "127.0.0.1" and env.get("KUBERNETES_SERVICE_PORT") == str(port)
     and env.get("KUBERNETES_PORT") == "tcp://127.0.0.1:%d" % port
     and env.get("KUBERNETES_PORT_%d_TCP_ADDR" % port) == "127.0.0.1",
     "KUBERNETES_SERVICE_HOST/PORT and KUBERNETES_PORT* name the apiserver (%s)" %
     {k: v for k, v in env.items() if k.startswith("KUBERNETES")})
t.is_(rd("labels"), 'app="client"\ntier="x"', "downwardAPI volume: the labels as Kubernetes writes them")

uid = p.metadata.uid if p else ""
vdir = [d for d in os.listdir(os.path.join(root, "pods", uid, "volumes")) if d.startswith("kube-api-access-")] if uid else []
tokf = os.path.join(root, "pods", uid, "volumes", vdir[0], "token") if vdir else "/nonexistent"
st = os.stat(tokf) if os.path.exists(tokf) else None
t.ok(st and (st.st_mode & 0o777) == 0o600, "the token file is 0600 (%s)" % (oct(st.st_mode) if st else None))
first = open(tokf).read() if st else ""
t.ok(c.wait_for(lambda: os.path.exists(tokf) and open(tokf).read() != first, timeout=ctest.DEADLINE),
     "the kubelet refreshes the token before it expires (80% of 20 s)")
newtok = open(tokf).read() if os.path.exists(tokf) else ""
t.is_(rest("/api/v1/namespaces/default/pods", newtok), 200, "the refreshed token works")
t.ok("Bearer" not in open(os.path.join(c.dir, "kubelet-node1.log")).read() and newtok[:40] not in
     open(os.path.join(c.dir, "kubelet-node1.log")).read(), "the kubelet's log holds no token")

call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="client"))
t.ok(c.wait_for(lambda: call("Pods", "Get", pb.GetRequest(namespace="default", name="client"))[0] is None,
                timeout=ctest.DEADLINE), "the pod is deleted")
t.is_(rest("/api/v1/namespaces/default/pods", newtok), 401, "its token no longer authenticates")
t.done()
