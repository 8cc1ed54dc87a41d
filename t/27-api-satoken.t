#!/usr/bin/python3
# coracle-apiserver end to end: ServiceAccount tokens. TokenRequest over
# REST (and stock kubectl's `create token`) and gRPC; the token
# authenticates as the ServiceAccount, within the policy's grants; forged,
# expired, wrong-audience and wrong-algorithm tokens refused; a token stops
# working when its bound pod or its ServiceAccount is gone; the OpenID
# discovery documents verify it (python's cryptography); node restriction;
# the ServiceAccount admission plugin's defaults and injected volume, as
# kube-apiserver writes them.
import base64
import json
import os
import shutil
import subprocess
import sys
import ssl
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod
import grpc

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
except ImportError:
    ec = None

t = ctest.Tap()
c = ctest.Cluster(t)
c.implicit_namespaces = False  # the default ServiceAccount is made with its namespace
pb = c.pb
SRC = ctest.SRC
ISSUER = "https://kubernetes.default.svc.cluster.local"

pki = os.path.join(c.dir, "pki")
port = ctest.free_port()
addr = "127.0.0.1:%d" % port
c.certs(pki, "-n", "n1", "-s", addr)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write('admintoken,admin,1,"system:masters"\n')
    f.write('n1token,system:node:n1,2,"system:nodes"\n')
policy = os.path.join(c.dir, "policy")
shutil.copy(os.path.join(SRC, "conf", "policy"), policy)
with open(policy, "a") as f:
    f.write("role pod-reader get,list,watch pods default\n")
    f.write("bind pod-reader user:system:serviceaccount:default:default,group:system:serviceaccounts:team\n")
# TLS: kubectl sends no bearer token over cleartext
daemon = c.start("apiserver", [c.bin("coracle-apiserver"), "--listen", addr,
                               "--data-dir", os.path.join(c.dir, "data"),
                               "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                               "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                               "--client-ca-file", os.path.join(pki, "ca.crt"),
                               "--token-auth-file", tokens, "--authorization-policy-file", policy,
                               "--service-account-issuer", ISSUER,
                               "--service-account-key-file", os.path.join(pki, "sa.pub"),
                               "--service-account-signing-key-file", os.path.join(pki, "sa.key"),
                               "--service-account-max-token-expiration", "2h"])
c.api = daemon
base = "https://" + addr
tls_ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
with open(os.path.join(pki, "ca.crt"), "rb") as f:
    channel = grpc.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=f.read()))


def ready():
    if not daemon.alive():
        t.bail("apiserver exited:\n" + daemon.tail())
    try:
        with urllib.request.urlopen(base + "/readyz", context=tls_ctx, timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


if not c.wait_for(ready, timeout=ctest.DEADLINE, interval=0.1):
    t.bail("apiserver not ready:\n" + daemon.tail())


def resp_type(svc, method):
    name = {"List": "List", "Watch": "WatchEvent"}.get(method, "")
    return getattr(pb, "TokenRequest" if method == "CreateToken" else svc[:-1] + name)


def gtry(svc, method, req, tok="admintoken"):
    """A unary gRPC call as tok's user: (response, None) or (None, ctest.ApiError)."""
    fn = channel.unary_unary("/coracle.v1.%s/%s" % (svc, method),
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=resp_type(svc, method).FromString)
    try:
        return fn(req, timeout=ctest.DEADLINE, metadata=[("authorization", "Bearer " + tok)] if tok else []), None
    except grpc.RpcError as e:
        return None, ctest.ApiError(e.code(), e.details())


def gcall(svc, method, req, tok="admintoken"):
    r, e = gtry(svc, method, req, tok)
    if e:
        raise e
    return r


if not c.wait_for(lambda: gtry("ServiceAccounts", "Get", pb.GetRequest(namespace="default", name="default"))[0]):
    t.bail("the default ServiceAccount was not created")


def rest(method, path, body=None, tok="admintoken"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if tok:
        req.add_header("Authorization", "Bearer " + tok)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=ctest.DEADLINE, context=tls_ctx) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


def token_request(sa, ns="default", tok="admintoken", **spec):
    return rest("POST", "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (ns, sa),
                {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                 "metadata": {"creationTimestamp": None}, "spec": spec}, tok)


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def claims_of(tok):
    return json.loads(b64d(tok.split(".")[1]))


def list_pods(tok, ns="default"):
    return rest("GET", "/api/v1/namespaces/%s/pods" % ns, tok=tok)[0]


# ---- TokenRequest over REST ----
code, tr = token_request("default")
t.is_(code, 201, "POST serviceaccounts/default/token: 201 (%s)" % (tr if code != 201 else ""))
tok = tr.get("status", {}).get("token", "") if code == 201 else ""
t.ok(tr.get("kind") == "TokenRequest" and tr.get("apiVersion") == "authentication.k8s.io/v1"
     and tr.get("metadata", {}).get("name") == "default" and tr.get("spec", {}).get("audiences") == [ISSUER]
     and tr["spec"].get("expirationSeconds") == 3600 and tr.get("status", {}).get("expirationTimestamp"),
     "the TokenRequest answered: audiences defaulted to the issuer, 3600 s, expirationTimestamp (%s)"
     % {k: v for k, v in tr.items() if k != "status"})
cl = claims_of(tok) if tok.count(".") == 2 else {}
sa = gcall("ServiceAccounts", "Get", pb.GetRequest(namespace="default", name="default"))
t.ok(cl.get("iss") == ISSUER and cl.get("sub") == "system:serviceaccount:default:default"
     and cl.get("aud") == [ISSUER] and cl.get("exp", 0) - cl.get("iat", 0) == 3600
     and cl.get("nbf") == cl.get("iat") and len(cl.get("jti", "")) == 36
     and cl.get("kubernetes.io") == {"namespace": "default",
                                     "serviceaccount": {"name": "default", "uid": sa.metadata.uid}},
     "the claims as Kubernetes writes them (%s)" % cl)
hdr = json.loads(b64d(tok.split(".")[0])) if tok else {}
t.ok(hdr.get("alg") == "ES256" and hdr.get("kid"), "header: ES256 and the key's kid (%s)" % hdr)

code, st = token_request("default", expirationSeconds=60)
t.ok(code == 422 and st.get("reason") == "Invalid" and st.get("message") ==
     'TokenRequest.authentication.k8s.io "default" is invalid: spec.expirationSeconds: Invalid value: 60: '
     "may not specify a duration less than 10 minutes", "expirationSeconds 60: 422 Invalid (%s)" % st)
code, st = token_request("default", expirationSeconds=3 * 3600, audiences=["vault"])
t.ok(code == 201 and st["spec"]["expirationSeconds"] == 7200 and st["spec"]["audiences"] == ["vault"],
     "3 h asked, --service-account-max-token-expiration 2h given; audience kept (%s)" % st.get("spec"))
vault_tok = st["status"]["token"] if code == 201 else ""
code, st = token_request("nobody")
t.ok(code == 404 and st.get("message") == 'serviceaccounts "nobody" not found',
     "a missing ServiceAccount: 404 (%s)" % st)

# ---- the token authenticates as the ServiceAccount, within the policy ----
t.is_(list_pods(tok), 200, "the token lists pods in default (the policy's grant)")
code, st = rest("GET", "/api/v1/namespaces/kube-system/pods", tok=tok)
t.ok(code == 403 and 'User "system:serviceaccount:default:default" cannot list resource "pods"' in
     st.get("message", ""), "and is refused in kube-system (%s)" % st.get("message"))
r, e = gtry("Pods", "List", pb.ListRequest(namespace="default"), tok=tok)
t.ok(r is not None, "and over gRPC too (%s)" % e)
t.is_(list_pods(vault_tok), 401, "a token for another audience: 401")

# ---- TokenRequest over gRPC ----
gr = gcall("ServiceAccounts", "CreateToken", pb.TokenRequest(metadata=meta("default", "default"),
                                                           spec=pb.TokenRequestSpec(expirationSeconds=1200)))
t.ok(gr.status.token and gr.spec.expirationSeconds == 1200 and
     gr.status.expirationTimestamp.seconds - int(time.time()) in range(1100, 1300),
     "ServiceAccounts/CreateToken over gRPC: 20 min")
t.is_(list_pods(gr.status.token), 200, "its token authenticates")
r, e = gtry("ServiceAccounts", "CreateToken", pb.TokenRequest(metadata=meta("default", "default")), tok=None)
t.is_(e and e.code, grpc.StatusCode.UNAUTHENTICATED, "gRPC CreateToken without identity: UNAUTHENTICATED")
r, e = gtry("ServiceAccounts", "CreateToken", pb.TokenRequest(metadata=meta("ghost", "default")))
t.ok(e and e.code == grpc.StatusCode.NOT_FOUND and e.message == 'serviceaccounts "ghost" not found',
     "gRPC CreateToken for a missing ServiceAccount: NOT_FOUND (%s)" % e)

# ---- stock kubectl: create token ----
kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if os.access(kubectl, os.X_OK):
    home = os.path.join(c.dir, "khome")
    os.makedirs(home)
    kcfg = os.path.join(pki, "admin.kubeconfig")  # contrib/certs' (client certificate)
    kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    kenv.update(HOME=home, KUBECONFIG=kcfg)
    p = subprocess.run([kubectl, "create", "token", "default", "--duration", "30m", "--audience", ISSUER],
                       env=kenv, capture_output=True, text=True, timeout=60)
    ktok = p.stdout.strip()
    kc = claims_of(ktok) if ktok.count(".") == 2 else {}
    t.ok(p.returncode == 0 and kc.get("exp", 0) - kc.get("iat", 0) == 1800,
         "kubectl create token default --duration 30m (%r)" % p.stderr)
    t.is_(list_pods(ktok), 200, "kubectl's token authenticates")
else:
    t.skip("kubectl 1.32 not installed", 2)

# ---- the discovery documents verify the token ----
code, oidc = rest("GET", "/.well-known/openid-configuration")
t.ok(code == 200 and oidc == {"issuer": ISSUER, "jwks_uri": ISSUER + "/openid/v1/jwks",
                              "response_types_supported": ["id_token"],
                              "subject_types_supported": ["public"],
                              "id_token_signing_alg_values_supported": ["ES256"]},
     "/.well-known/openid-configuration (%s)" % oidc)
code, jwks = rest("GET", "/openid/v1/jwks")
keys = jwks.get("keys", []) if code == 200 else []
t.ok(len(keys) == 1 and keys[0].get("kid") == hdr.get("kid") and keys[0].get("kty") == "EC"
     and keys[0].get("crv") == "P-256" and keys[0].get("use") == "sig" and keys[0].get("alg") == "ES256",
     "/openid/v1/jwks: the key, its kid the token's (%s)" % jwks)
with open(os.path.join(pki, "sa.key"), "rb") as f:
    sa_priv = serialization.load_pem_private_key(f.read(), None) if ec else None
if ec and keys:
    k = keys[0]
    pub = ec.EllipticCurvePublicNumbers(int.from_bytes(b64d(k["x"]), "big"), int.from_bytes(b64d(k["y"]), "big"),
                                        ec.SECP256R1()).public_key()
    h, p_, s = tok.split(".")
    sig = b64d(s)
    try:
        pub.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                   (h + "." + p_).encode(), ec.ECDSA(hashes.SHA256()))
        ok = True
    except Exception:
        ok = False
    t.ok(ok, "python's cryptography verifies the token with the JWKS key")
else:
    t.skip("python3 cryptography not installed", 1)


# ---- hostile tokens ----
def sign(header, claims, key=sa_priv):
    si = b64e(json.dumps(header).encode()) + "." + b64e(json.dumps(claims).encode())
    if key is None:
        return si + "."
    r, s = decode_dss_signature(key.sign(si.encode(), ec.ECDSA(hashes.SHA256())))
    return si + "." + b64e(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


if ec:
    now = int(time.time())
    good = dict(cl, iat=now, nbf=now, exp=now + 600)
    t.is_(list_pods(sign(hdr, good)), 200, "a token the test signs with the key is taken (the signer works)")
    t.is_(list_pods(sign(hdr, dict(good, exp=now - 120, iat=now - 800, nbf=now - 800))), 401,
          "expired (2 min ago, beyond the 60 s leeway): 401")
    t.is_(list_pods(sign(hdr, dict(good, nbf=now + 600))), 401, "not yet valid: 401")
    t.is_(list_pods(sign(hdr, dict(good, aud=["other"]))), 401, "wrong audience: 401")
    t.is_(list_pods(sign(hdr, dict(good, iss="https://evil"))), 401, "another issuer: 401")
    t.is_(list_pods(sign(dict(hdr, kid="nope"), good)), 401, "a kid that is not the key's: 401")
    t.is_(list_pods(sign({"alg": "none"}, good, key=None)), 401, "alg none, no signature: 401")
    t.is_(list_pods(sign({"alg": "none", "kid": hdr["kid"]}, good)), 401, "alg none with a valid signature: 401")
    import hmac
    import hashlib
    pub_pem = open(os.path.join(pki, "sa.pub"), "rb").read()
    si = b64e(json.dumps({"alg": "HS256", "kid": hdr["kid"]}).encode()) + "." + b64e(json.dumps(good).encode())
    hs = si + "." + b64e(hmac.new(pub_pem, si.encode(), hashlib.sha256).digest())
    t.is_(list_pods(hs), 401, "HS256 keyed with the public key: 401")
    forged = dict(good, sub="system:serviceaccount:kube-system:default",
                  **{"kubernetes.io": dict(good["kubernetes.io"], namespace="kube-system")})
    h, _, s = tok.split(".")
    t.is_(list_pods(h + "." + b64e(json.dumps(forged).encode()) + "." + s), 401,
          "claims changed under the signature: 401")
    other = ec.generate_private_key(ec.SECP256R1())
    t.is_(list_pods(sign(hdr, good, key=other)), 401, "signed by another key: 401")
else:
    t.skip("python3 cryptography not installed", 11)
t.is_(list_pods("a.b.c"), 401, "garbage in three parts: 401")
t.ok(gcall("Pods", "List", pb.ListRequest()) is not None and daemon.alive(), "the apiserver still serves")

# ---- bound tokens: invalid once the pod or the ServiceAccount is gone ----
gcall("Pods", "Create", simple_pod("bound"))
pod = gcall("Pods", "Get", pb.GetRequest(namespace="default", name="bound"))
ref = {"kind": "Pod", "apiVersion": "v1", "name": "bound", "uid": pod.metadata.uid}
code, st = token_request("default", boundObjectRef=ref)
ptok = st["status"]["token"] if code == 201 else ""
pc = claims_of(ptok) if ptok else {}
t.is_(pc.get("kubernetes.io", {}).get("pod"), {"name": "bound", "uid": pod.metadata.uid},
      "a token bound to a pod names it in its claims")
t.is_(list_pods(ptok), 200, "and authenticates while the pod exists")
code, st = token_request("default", boundObjectRef=dict(ref, uid="0000"))
t.ok(code == 409 and "does not match the UID in record" in st.get("message", ""), "a stale uid: 409 (%s)" % st)
code, st = token_request("default", boundObjectRef=dict(ref, kind="ConfigMap"))
t.ok(code == 400 and st.get("message") == "cannot bind token to object of type /v1, Kind=ConfigMap",
     "binding to a ConfigMap: 400 (%s)" % st)
gcall("Pods", "Delete", pb.DeleteRequest(namespace="default", name="bound"))
t.ok(c.wait_for(lambda: list_pods(ptok) == 401), "the pod deleted: its token is refused")
t.is_(list_pods(tok), 200, "an unbound token of the same ServiceAccount still works")

gcall("ServiceAccounts", "Create", pb.ServiceAccount(metadata=meta("robot", "default")))
code, st = token_request("robot")
rtok = st["status"]["token"] if code == 201 else ""
t.is_(list_pods(rtok), 403, "robot's token authenticates (403: no grant, not 401)")
gcall("ServiceAccounts", "Delete", pb.DeleteRequest(namespace="default", name="robot"))
t.ok(c.wait_for(lambda: list_pods(rtok) == 401), "the ServiceAccount deleted: its token is refused")
gcall("ServiceAccounts", "Create", pb.ServiceAccount(metadata=meta("robot", "default")))
t.is_(list_pods(rtok), 401, "recreated under the same name (another uid): still refused")

# ---- node restriction ----
gcall("Pods", "Create", simple_pod("on-n1", nodeName="n1"))
gcall("Pods", "Create", simple_pod("on-n2", nodeName="n2"))
p1 = gcall("Pods", "Get", pb.GetRequest(namespace="default", name="on-n1"))
p2 = gcall("Pods", "Get", pb.GetRequest(namespace="default", name="on-n2"))
code, st = token_request("default", tok="n1token")
t.ok(code == 403 and "node requested token not bound to a pod" in st.get("message", ""),
     "a node's unbound TokenRequest: 403 (%s)" % st.get("message"))
code, st = token_request("default", tok="n1token",
                         boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "on-n1", "uid": p1.metadata.uid})
t.is_(code, 201, "a node gets a token bound to its own pod")
code, st = token_request("default", tok="n1token",
                         boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "on-n2", "uid": p2.metadata.uid})
t.ok(code == 403 and "scheduled on a different node" in st.get("message", ""),
     "but not to another node's pod (%s)" % st.get("message"))

# ---- ServiceAccount admission ----
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
code, p = rest("POST", "/api/v1/namespaces/default/pods",
               {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "adm"},
                "spec": {"initContainers": [{"name": "i", "image": "busybox"}],
                         "containers": [{"name": "a", "image": "busybox"},
                                        {"name": "b", "image": "busybox",
                                         "volumeMounts": [{"name": "x", "mountPath": MOUNT}]}],
                         "volumes": [{"name": "x", "emptyDir": {}}]}})
spec = p.get("spec", {}) if code == 201 else {}
t.ok(spec.get("serviceAccountName") == "default" and spec.get("serviceAccount") == "default",
     "serviceAccountName defaulted to default, serviceAccount kept equal")
vols = [v for v in spec.get("volumes", []) if v["name"].startswith("kube-api-access-")]
vname = vols[0]["name"] if vols else ""
t.ok(len(vols) == 1 and len(vname) == len("kube-api-access-") + 5, "one kube-api-access-XXXXX volume (%s)" % vname)
t.is_(vols[0] if vols else None,
      {"name": vname, "projected": {"sources": [
          {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
          {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
          {"downwardAPI": {"items": [{"path": "namespace",
                                      "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}],
          "defaultMode": 420}},
      "the volume as kube-apiserver injects it")
want = {"name": vname, "readOnly": True, "mountPath": MOUNT}
cs = {x["name"]: x.get("volumeMounts", []) for x in spec.get("initContainers", []) + spec.get("containers", [])}
t.ok(cs.get("i") == [want] and cs.get("a") == [want] and cs.get("b") == [{"name": "x", "mountPath": MOUNT}],
     "mounted read-only in every container but the one with its own mount there (%s)" % cs)
code, st = rest("POST", "/api/v1/namespaces/default/pods",
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nosa"},
                 "spec": {"serviceAccountName": "ghost", "containers": [{"name": "a", "image": "busybox"}]}})
t.ok(code == 403 and st.get("message") == 'pods "nosa" is forbidden: error looking up service account '
     'default/ghost: serviceaccount "ghost" not found', "a missing ServiceAccount: Kubernetes' 403 (%s)" % st)
r, e = gtry("Pods", "Create", simple_pod("nosa", serviceAccountName="ghost"))
t.ok(e and e.code == grpc.StatusCode.PERMISSION_DENIED, "and over gRPC: PERMISSION_DENIED")
r, e = gtry("Pods", "Create", simple_pod("noauto", automountServiceAccountToken=False))
t.ok(r and not r.spec.volumes and not r.spec.containers[0].volumeMounts, "automountServiceAccountToken false: no volume")
gcall("ServiceAccounts", "Create", pb.ServiceAccount(metadata=meta("quiet", "default"),
                                                        automountServiceAccountToken=False))
r, e = gtry("Pods", "Create", simple_pod("q1", serviceAccountName="quiet"))
t.ok(r and not r.spec.volumes, "the ServiceAccount's automount false: no volume")
r, e = gtry("Pods", "Create", simple_pod("q2", serviceAccountName="quiet", automountServiceAccountToken=True))
t.ok(r and len(r.spec.volumes) == 1 and r.spec.volumes[0].volumeSource.projected.sources[0]
     .serviceAccountToken.path == "token", "the pod's automount true wins over the ServiceAccount's false")
r, e = gtry("Pods", "Create", simple_pod("old", serviceAccount="quiet"))
t.ok(r and r.spec.serviceAccountName == "quiet", "the deprecated serviceAccount alias names the ServiceAccount")

# ---- kube-root-ca.crt in every namespace (the root CA publisher) ----
with open(os.path.join(pki, "ca.crt")) as f:
    ca_pem = f.read()
c.start("controller-manager", [c.bin("coracle-controller-manager"), "--server", addr, "--healthz-listen", "",
                               "--leader-elect=false", "--controllers", "root-ca-cert-publisher",
                               "--certificate-authority", os.path.join(pki, "ca.crt"),
                               "--client-certificate", os.path.join(pki, "controller-manager.crt"),
                               "--client-key", os.path.join(pki, "controller-manager.key"),
                               "--root-ca-file", os.path.join(pki, "ca.crt")])


def root_ca(ns):
    r, e = gtry("ConfigMaps", "Get", pb.GetRequest(namespace=ns, name="kube-root-ca.crt"))
    return r


t.ok(c.wait_for(lambda: root_ca("default") and root_ca("kube-system")),
     "kube-root-ca.crt published in the namespaces")
cm = root_ca("default")
t.ok(cm and dict(cm.data) == {"ca.crt": ca_pem} and dict(cm.metadata.annotations).get(
    "kubernetes.io/description", "").startswith("Contains a CA bundle that can be used to verify the kube-apiserver"),
     "its ca.crt is --root-ca-file, with Kubernetes' description")
gcall("Namespaces", "Create", pb.Namespace(metadata=meta("team")))
t.ok(c.wait_for(lambda: root_ca("team")), "and in a new namespace")
cm = root_ca("team")
cm.data["ca.crt"] = "tampered"
cm.data["extra"] = "x"
gtry("ConfigMaps", "Update", cm)
t.ok(c.wait_for(lambda: root_ca("team") and dict(root_ca("team").data) == {"ca.crt": ca_pem}),
     "a changed one is put back")
gcall("ConfigMaps", "Delete", pb.DeleteRequest(namespace="team", name="kube-root-ca.crt"))
t.ok(c.wait_for(lambda: root_ca("team") and dict(root_ca("team").data) == {"ca.crt": ca_pem}),
     "a deleted one is made again")

t.done()
