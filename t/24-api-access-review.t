#!/usr/bin/python3
# Access reviews: `kubectl auth can-i` and `coraclectl auth can-i` agree
# with what the real call gets (kubectl get/create/delete, or the raw
# path), for a table of users with different grants from the policy file:
# resources, subresources, names, namespaces, node restriction,
# non-resource URLs. Then can-i --list (coraclectl prints kubectl's table),
# auth whoami for a certificate user and a token user, SubjectAccessReview
# for a user allowed to create them and refused to one who is not,
# LocalSubjectAccessReview's namespace check, and the reviews over gRPC.
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import grpc

SRC = ctest.SRC
t = ctest.Tap()
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if not os.access(KUBECTL, os.X_OK):
    t.skip_all("kubectl 1.32 not installed")
c = ctest.Cluster(t)
pb = c.pb
port = ctest.free_port()
addr = "127.0.0.1:%d" % port
pki = os.path.join(c.dir, "pki")
c.certs(pki, "-n", "n1", "-s", addr)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write('tok-bob,bob,1001,"team-a"\ntok-vic,vic,1002,"viewers"\ntok-rita,rita,1003\n')
policy = os.path.join(c.dir, "policy")
shutil.copy(os.path.join(SRC, "conf", "policy"), policy)
with open(policy, "a") as f:
    f.write("role dev get,list,create,delete pods default\n"
            "role dev get pods/log default\n"
            "role dev get,update deployments.apps/scale default\n"
            "bind dev user:bob\n"
            "bind view group:viewers\n"
            "role reviewer create subjectaccessreviews,localsubjectaccessreviews\n"
            "bind reviewer user:rita\n")
api_d = c.start("apiserver-tls", [c.bin("coracle-apiserver"), "--listen", addr,
                                  "--data-dir", os.path.join(c.dir, "data"),
                                  "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                                  "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                                  "--client-ca-file", os.path.join(pki, "ca.crt"),
                                  "--token-auth-file", tokens, "--authorization-policy-file", policy])
home = os.path.join(c.dir, "home")
os.makedirs(home)
ca = os.path.join(pki, "ca.crt")


def kubeconfig(user, token):
    path = os.path.join(c.dir, user + ".kubeconfig")
    with open(path, "w") as f:
        f.write("apiVersion: v1\nkind: Config\n"
                "clusters: [{name: c, cluster: {server: \"https://%s\", certificate-authority: %s}}]\n"
                "users: [{name: u, user: {token: %s}}]\n"
                "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n" % (addr, ca, token))
    return path


KC = {"admin": os.path.join(pki, "admin.kubeconfig"), "n1": os.path.join(pki, "kubelet-n1.kubeconfig"),
      "bob": kubeconfig("bob", "tok-bob"), "vic": kubeconfig("vic", "tok-vic"),
      "rita": kubeconfig("rita", "tok-rita")}
# coraclectl's identity flags for each user
CTL = {"admin": ["--client-certificate", os.path.join(pki, "admin.crt"), "--client-key", os.path.join(pki, "admin.key")],
       "n1": ["--client-certificate", os.path.join(pki, "kubelet-n1.crt"),
              "--client-key", os.path.join(pki, "kubelet-n1.key")],
       "bob": ["--token", "tok-bob"], "vic": ["--token", "tok-vic"], "rita": ["--token", "tok-rita"]}
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv["HOME"] = home


def kubectl(user, *args, stdin=None):
    p = subprocess.run([KUBECTL, "--kubeconfig", KC[user], "--cache-dir", os.path.join(home, "cache")] + list(args),
                       env=kenv, input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def ctl(user, *args):
    return c.ctl("--server", "https://" + addr, "--certificate-authority", ca, *(CTL[user] + list(args)),
                 server=False)


if not c.wait_for(lambda: ctest.http_get(addr, "/readyz")[0] is not None or not api_d.alive(), timeout=5):
    pass
if not c.wait_for(lambda: kubectl("admin", "get", "--raw", "/readyz")[0] == 0, timeout=ctest.DEADLINE, interval=0.2):
    t.bail("TLS apiserver not ready:\n" + api_d.tail())

rc, _, err = kubectl("admin", "apply", "-f", "-", stdin="""
apiVersion: v1
kind: Pod
metadata: {name: p1}
spec: {nodeName: n1, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: p2}
spec: {nodeName: n2, containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d1}
spec:
  selector: {matchLabels: {app: d}}
  template:
    metadata: {labels: {app: d}}
    spec: {containers: [{name: c, image: busybox}]}
""")
if rc != 0:
    t.bail("admin apply: " + err)

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: new, namespace: %s}\nspec: {containers: [{name: c, image: busybox}]}\n"


def real(user, action):
    """What the real call gets: True if authorized (anything but Forbidden)."""
    kind, args = action[0], action[1:]
    if kind == "create":
        rc, out, err = kubectl(user, "create", "--dry-run=server", "-f", "-", stdin=POD % args[0])
    elif kind == "raw":
        rc, out, err = kubectl(user, "get", "--raw", args[0])
    else:
        rc, out, err = kubectl(user, *args)
    forbidden = "Forbidden" in err or "forbidden" in err
    return not forbidden, (out + err).strip()[:160]


# user, can-i arguments, the real call
CASES = [
    ("bob", ["get", "pods"], ["kubectl", "get", "pods"]),
    ("bob", ["list", "pods", "-n", "kube-system"], ["kubectl", "get", "pods", "-n", "kube-system"]),
    ("bob", ["get", "pods/p1"], ["kubectl", "get", "pod", "p1"]),
    ("bob", ["create", "pods"], ["create", "default"]),
    ("bob", ["create", "pods", "-n", "kube-system"], ["create", "kube-system"]),
    ("bob", ["delete", "pods/nope"], ["kubectl", "delete", "pod", "nope", "--dry-run=server"]),
    ("bob", ["get", "pods", "--subresource", "log"], ["raw", "/api/v1/namespaces/default/pods/p1/log"]),
    ("bob", ["get", "deployments.apps/d1", "--subresource", "scale"],
     ["raw", "/apis/apps/v1/namespaces/default/deployments/d1/scale"]),
    ("bob", ["get", "deployments/d1"], ["kubectl", "get", "deployment", "d1"]),
    ("bob", ["get", "nodes", "-A"], ["kubectl", "get", "nodes"]),
    ("bob", ["get", "secrets"], ["kubectl", "get", "secrets"]),
    ("vic", ["get", "secrets"], ["kubectl", "get", "secrets"]),
    ("vic", ["list", "replicasets.apps", "-A"], ["kubectl", "get", "rs", "-A"]),
    ("vic", ["delete", "pods/p1"], ["kubectl", "delete", "pod", "p1", "--dry-run=server"]),
    ("vic", ["get", "pods", "--subresource", "log"], ["raw", "/api/v1/namespaces/default/pods/p1/log"]),
    ("rita", ["get", "pods"], ["kubectl", "get", "pods"]),
    ("n1", ["get", "pods/p1"], ["kubectl", "get", "pod", "p1"]),
    ("n1", ["get", "pods/p2"], ["kubectl", "get", "pod", "p2"]),
    ("n1", ["delete", "pods/p2"], ["kubectl", "delete", "pod", "p2", "--dry-run=server"]),
    ("admin", ["delete", "nodes/n9", "-A"], ["kubectl", "delete", "node", "n9", "--dry-run=server"]),
    ("bob", ["get", "/version"], ["raw", "/version"]),
    ("bob", ["get", "/apis/apps/v1"], ["raw", "/apis/apps/v1"]),
    ("bob", ["get", "/openapi/v2"], ["raw", "/openapi/v2"]),
]
for user, args, action in CASES:
    krc, kout, kerr = kubectl(user, "auth", "can-i", *args)
    crc, cout, cerr = ctl(user, "auth", "can-i", *args)
    allowed, what = real(user, action if action[0] != "kubectl" else ["kubectl"] + action[1:])
    want = "yes" if allowed else "no"
    name = "%s can-i %s: kubectl %s (%d), coraclectl %s (%d), the call %s" % (
        user, " ".join(args), kout.strip(), krc, cout.strip(), crc, want)
    t.ok(kout.strip() == want and krc == (0 if allowed else 1) and cout.strip() == want and crc == krc,
         name + ("" if kout.strip() == want == cout.strip() else " [%s | %s | %s]" % (kerr.strip(), cerr.strip(), what)))

# non-resource: a verb the server refuses, a path the policy does not open
rc1, out1, _ = kubectl("bob", "auth", "can-i", "post", "/version")
rc2, out2, _ = ctl("bob", "auth", "can-i", "post", "/version")
p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, "-X", "POST",
                    "-H", "Authorization: Bearer tok-bob", "https://%s/version" % addr],
                   capture_output=True, text=True)
t.ok(out1.strip() == out2.strip() == "no" and rc1 == rc2 == 1 and p.stdout == "403",
     "post /version: no, no, and the call 403 (%s %s %s)" % (out1.strip(), out2.strip(), p.stdout))
rc1, out1, _ = kubectl("admin", "auth", "can-i", "post", "/anything")
rc2, out2, _ = ctl("admin", "auth", "can-i", "post", "/anything")
t.ok(out1.strip() == out2.strip() == "yes", "a master may do anything, non-resource URLs too")

# --list: the rules in a namespace, the same table from both
for user, ns in (("bob", "default"), ("bob", "kube-system"), ("vic", "default"), ("admin", "default")):
    rc1, out1, err1 = kubectl(user, "auth", "can-i", "--list", "-n", ns)
    rc2, out2, err2 = ctl(user, "auth", "can-i", "--list", "-n", ns)
    t.ok(rc1 == rc2 == 0 and out1 == out2 and out1.startswith("Resources "),
         "%s can-i --list -n %s: coraclectl prints kubectl's table%s" % (
             user, ns, "" if out1 == out2 else " [%r | %r %s]" % (out1, out2, err2)))
def rows(out):
    return {l.split()[0]: l.split("[")[-1].rstrip("]").split() for l in out.splitlines()[1:] if l[:1] not in ("", " ")}


rc, out, _ = kubectl("bob", "auth", "can-i", "--list")
r = rows(out)
t.ok(r.get("pods") == ["get", "list", "create", "delete"] and r.get("deployments.apps/scale") == ["get", "update"]
     and r.get("selfsubjectaccessreviews.authorization.k8s.io") == ["create"],
     "bob's --list in default: his role, the self reviews (%s)" % r)
rc, out, _ = kubectl("bob", "auth", "can-i", "--list", "-n", "kube-system")
r = rows(out)
t.ok("pods" not in r and "deployments.apps/scale" not in r and "selfsubjectreviews.authentication.k8s.io" in r,
     "bob's --list in kube-system: not his role's rules (default only) (%s)" % r)
rc, out, _ = kubectl("vic", "auth", "can-i", "--list", "-n", "kube-system")
r = rows(out)
t.ok(r.get("nodes") == ["get", "list", "watch"] and r.get("pods") == ["get", "list", "watch"]
     and r.get("pods/log") == ["get"], "vic's --list in kube-system: the view role (%s)" % r)
rc, out, err = kubectl("n1", "auth", "can-i", "--list")
t.ok(rc == 0 and "incomplete" in err, "a node's list is incomplete (node restriction) (%r)" % err.strip())

# whoami: a certificate user, a token user
rc, out, _ = kubectl("n1", "auth", "whoami", "-o", "json")
ui = json.loads(out).get("status", {}).get("userInfo", {}) if rc == 0 else {}
t.ok(ui.get("username") == "system:node:n1" and ui.get("groups") == ["system:nodes", "system:authenticated"]
     and "uid" not in ui, "whoami, certificate: CN, O groups, system:authenticated (%s)" % ui)
rc, out, _ = kubectl("bob", "auth", "whoami")
rc2, out2, _ = ctl("bob", "auth", "whoami")
t.ok(rc == rc2 == 0 and out == out2 and "Username    bob" in out and "UID         1001" in out
     and "Groups      [team-a system:authenticated]" in out,
     "whoami, token: username, uid, groups; coraclectl prints the same (%r %r)" % (out, out2))

# SubjectAccessReview: needs create on subjectaccessreviews. (kubectl's
# validation of a kind without PATCH asks for CRDs, which coracle does not
# serve: --validate=false.)
SAR = json.dumps({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": "bob", "resourceAttributes": {"verb": "create", "resource": "pods",
                                                                 "namespace": "default"}}})
rc, out, err = kubectl("rita", "create", "--validate=false", "-o", "json", "-f", "-", stdin=SAR)
st = json.loads(out).get("status", {}) if rc == 0 else {}
t.ok(st.get("allowed") is True, "rita (create subjectaccessreviews) asks for bob: allowed (%s %s)" % (st, err.strip()))
rc, out, err = kubectl("bob", "create", "--validate=false", "-o", "json", "-f", "-", stdin=SAR)
t.ok(rc != 0 and "Forbidden" in err and 'cannot create resource "subjectaccessreviews" in API group '
     '"authorization.k8s.io"' in err, "bob may not create a SubjectAccessReview (%s)" % err.strip())
sar = json.loads(SAR)
sar["spec"]["resourceAttributes"]["namespace"] = "kube-system"
rc, out, err = kubectl("rita", "create", "--validate=false", "-o", "json", "-f", "-", stdin=json.dumps(sar))
st = json.loads(out).get("status", {}) if rc == 0 else {}
t.ok(st.get("allowed") is False, "and for bob in kube-system: not allowed (%s)" % st)
sar["spec"] = {"user": "vic", "groups": ["viewers", "system:authenticated"], "nonResourceAttributes": {"path": "/version", "verb": "get"}}
rc, out, err = kubectl("rita", "create", "--validate=false", "-o", "json", "-f", "-", stdin=json.dumps(sar))
st = json.loads(out).get("status", {}) if rc == 0 else {}
t.ok(st.get("allowed") is True, "nonResourceAttributes get /version: allowed (%s %s)" % (st, err.strip()))
sar["spec"] = {"resourceAttributes": {"verb": "get", "resource": "pods"}}
rc, out, err = kubectl("rita", "create", "--validate=false", "-f", "-", stdin=json.dumps(sar))
t.ok(rc != 0 and "is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified" in err,
     "no user and no group: Invalid (%s)" % err.strip())
lsar = {"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
        "metadata": {"namespace": "default"},
        "spec": {"user": "bob", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "kube-system"}}}
rc, out, err = kubectl("rita", "create", "--validate=false", "-f", "-", stdin=json.dumps(lsar))
t.ok(rc != 0 and "spec.resourceAttributes.namespace must match namespace: default" in err,
     "LocalSubjectAccessReview in another namespace: BadRequest (%s)" % err.strip())
lsar["spec"]["resourceAttributes"]["namespace"] = "default"
rc, out, err = kubectl("rita", "create", "--validate=false", "-o", "json", "-f", "-", stdin=json.dumps(lsar))
st = json.loads(out).get("status", {}) if rc == 0 else {}
t.ok(st.get("allowed") is True, "LocalSubjectAccessReview in its namespace: allowed (%s %s)" % (st, err.strip()))
rc, out, err = kubectl("admin", "get", "selfsubjectaccessreviews")
t.ok(rc != 0 and "MethodNotAllowed" in err, "a review cannot be listed: MethodNotAllowed (%s)" % err.strip())

# the same over gRPC
ch = grpc.secure_channel(addr, grpc.ssl_channel_credentials(open(ca, "rb").read()))


def grpc_call(svc, req, resp, tok):
    fn = ch.unary_unary("/coracle.v1.%s/Create" % svc, request_serializer=lambda m: m.SerializeToString(),
                        response_deserializer=resp.FromString)
    try:
        return fn(req, timeout=ctest.DEADLINE, metadata=[("authorization", "Bearer " + tok)]), None
    except grpc.RpcError as e:
        return None, (e.code(), e.details())


r, e = grpc_call("SelfSubjectAccessReviews", pb.SelfSubjectAccessReview(spec=pb.SelfSubjectAccessReviewSpec(
    resourceAttributes=pb.ResourceAttributes(verb="delete", resource="pods", namespace="default"))),
    pb.SelfSubjectAccessReview, "tok-bob")
t.ok(e is None and r.status.allowed, "gRPC SelfSubjectAccessReviews/Create: bob may delete pods in default (%s)" % (e,))
r, e = grpc_call("SubjectAccessReviews", pb.SubjectAccessReview(spec=pb.SubjectAccessReviewSpec(
    user="bob", resourceAttributes=pb.ResourceAttributes(verb="get", resource="secrets", namespace="default"))),
    pb.SubjectAccessReview, "tok-bob")
t.ok(e and e[0] == grpc.StatusCode.PERMISSION_DENIED, "gRPC SubjectAccessReviews/Create by bob: PERMISSION_DENIED")
r, e = grpc_call("SelfSubjectReviews", pb.SelfSubjectReview(), pb.SelfSubjectReview, "tok-vic")
t.ok(e is None and r.status.userInfo.username == "vic" and r.status.userInfo.uid == "1002",
     "gRPC SelfSubjectReviews/Create: vic, uid 1002 (%s)" % (e,))
ch.close()
t.done()
