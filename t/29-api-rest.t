#!/usr/bin/python3
# The Kubernetes REST API's read path, beside gRPC on the same port:
# discovery made from the kinds table, get/list/watch in JSON over HTTP/2
# (curl --http2-prior-knowledge, h2c) and HTTP/1.1 (curl), Status errors
# with Kubernetes' reasons and codes, the same object over gRPC and REST,
# Tables for kubectl's Accept; then over TLS with client certificates and
# tokens (401, 403, the watch cap, ALPN h2) and stock kubectl (1.32)
# reading pods and nodes in the server's columns, -w included.
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod

SRC = ctest.SRC
t = ctest.Tap()
c = ctest.Cluster(t)
if not shutil.which("curl"):
    t.skip_all("curl not installed")
api = c.start_apiserver("--compact-keep", "20")
pb = c.pb
base = "http://" + c.api_addr


def curl(path, h2=True, args=(), url=None):
    """GET (or args' method) with curl; returns (HTTP status, body text)."""
    argv = ["curl", "-s", "--max-time", "10", "-w", "\n%{http_code}"]
    if h2:
        argv.append("--http2-prior-knowledge")
    p = subprocess.run(argv + list(args) + [url or base + path], capture_output=True, text=True)
    body, _, code = p.stdout.rpartition("\n")
    return int(code or 0), body


def get_json(path, h2=True):
    code, body = curl(path, h2)
    try:
        return code, json.loads(body)
    except ValueError:
        return code, {"unparsed": body}


PROTOS = ((True, "h2"), (False, "HTTP/1.1"))

# ---- objects, made over gRPC ----
api.call("Pods", "Create", pb.Pod(metadata=meta("web", "default", labels={"app": "web"}),
                                  spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")])))
api.call("Pods", "Create", pb.Pod(metadata=meta("db", "default", labels={"app": "db"}),
                                  spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")])))
api.call("Pods", "Create", simple_pod("other", ns="kube-system"))
api.call("Nodes", "Create", pb.Node(metadata=meta("n1")))
api.call("Leases", "Create", pb.Lease(metadata=meta("n1", "kube-node-lease")))

# ---- discovery ----
for h2, proto in PROTOS:
    code, d = get_json("/api", h2)
    t.ok(code == 200 and d.get("kind") == "APIVersions" and d.get("versions") == ["v1"],
         "%s: /api is APIVersions [v1]" % proto)
code, d = get_json("/api/v1")
res = {r["name"]: r for r in d.get("resources", [])}
t.is_(sorted(res), ["configmaps", "events", "namespaces", "namespaces/status", "nodes", "nodes/status", "pods",
                   "pods/attach", "pods/binding", "pods/exec", "pods/log", "pods/status", "secrets",
                   "serviceaccounts", "services", "services/status"],
      "/api/v1 lists the core kinds and their subresources")
t.ok(res.get("pods", {}).get("namespaced") is True and res["pods"]["kind"] == "Pod"
     and res["pods"]["singularName"] == "pod" and res["pods"]["shortNames"] == ["po"],
     "pods: namespaced, kind, singularName, shortNames")
t.ok(res.get("nodes", {}).get("namespaced") is False, "nodes are cluster-scoped")
t.is_(sorted(res.get("pods", {}).get("verbs", [])),
      ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"], "verbs served")
code, d = get_json("/apis")
t.ok(d.get("kind") == "APIGroupList" and [g["name"] for g in d.get("groups", [])] == [
    "apps", "authentication.k8s.io", "authorization.k8s.io", "batch", "certificates.k8s.io", "networking.k8s.io", "rbac.authorization.k8s.io", "coordination.k8s.io", "discovery.k8s.io"],
     "/apis: the apps, authentication, authorization, batch, certificates, networking, rbac, coordination and discovery groups (%s)"
     % [g.get("name") for g in d.get("groups", [])])
code, d = get_json("/apis/coordination.k8s.io")
t.ok(d.get("kind") == "APIGroup" and d.get("preferredVersion", {}).get("groupVersion") == "coordination.k8s.io/v1",
     "/apis/coordination.k8s.io: APIGroup, preferred v1")
code, d = get_json("/apis/coordination.k8s.io/v1")
t.ok(d.get("groupVersion") == "coordination.k8s.io/v1" and [r["name"] for r in d["resources"]] == ["leases"],
     "/apis/coordination.k8s.io/v1: leases")
code, d = get_json("/version", False)
t.ok(code == 200 and d.get("major") == "1" and d.get("minor") == "32"
     and d.get("gitVersion", "").startswith("v1.32."), "/version: 1.32")
for h2, proto in PROTOS:
    t.is_(curl("/healthz", h2), (200, "ok"), "%s: /healthz still served" % proto)

# ---- get ----
for h2, proto in PROTOS:
    code, o = get_json("/api/v1/namespaces/default/pods/web", h2)
    t.ok(code == 200 and o.get("kind") == "Pod" and o.get("apiVersion") == "v1"
         and o["metadata"]["name"] == "web", "%s: get pod" % proto)
g = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="web"))
t.ok(o["metadata"]["uid"] == g.metadata.uid and o["metadata"]["resourceVersion"] == g.metadata.resourceVersion
     and o["spec"]["containers"][0]["image"] == "busybox", "REST get: the gRPC object's uid, rv, spec")
rc, out, _ = c.ctl("get", "po", "web", "-o", "json")
t.is_(o, json.loads(out) if rc == 0 else None, "the same object over gRPC (coraclectl -o json) and REST")
code, o = get_json("/api/v1/nodes/n1")
t.ok(code == 200 and o.get("kind") == "Node" and o["metadata"]["name"] == "n1", "get a cluster-scoped node")
code, o = get_json("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1")
t.ok(code == 200 and o.get("kind") == "Lease" and o.get("apiVersion") == "coordination.k8s.io/v1",
     "get a lease in its group")
code, o = get_json("/api/v1/namespaces/default/pods/web/status")
t.ok(code == 200 and o.get("kind") == "Pod", "pods/status reads the pod")

# ---- list ----
for h2, proto in PROTOS:
    code, l = get_json("/api/v1/pods", h2)
    t.ok(code == 200 and l.get("kind") == "PodList" and l.get("apiVersion") == "v1"
         and sorted(i["metadata"]["name"] for i in l["items"]) == ["db", "other", "web"]
         and l["metadata"]["resourceVersion"].isdigit(), "%s: list pods in all namespaces" % proto)
code, l = get_json("/api/v1/namespaces/default/pods")
t.is_(sorted(i["metadata"]["name"] for i in l.get("items", [])), ["db", "web"], "list one namespace")
code, l = get_json("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")
t.is_([i["metadata"]["name"] for i in l.get("items", [])], ["web"], "labelSelector")
code, l = get_json("/api/v1/pods?fieldSelector=metadata.namespace%3Dkube-system")
t.is_([i["metadata"]["name"] for i in l.get("items", [])], ["other"], "fieldSelector")
code, l = get_json("/api/v1/pods?limit=2")
t.ok(len(l.get("items", [])) == 2 and l["metadata"].get("continue"), "limit=2: two items and a continue token")
code, l2 = get_json("/api/v1/pods?limit=2&continue=" + l["metadata"].get("continue", ""))
t.ok(len(l2.get("items", [])) == 1 and not l2["metadata"].get("continue")
     and l2["metadata"]["resourceVersion"] == l["metadata"]["resourceVersion"],
     "continue: the rest, at the first page's revision")
code, l = get_json("/api/v1/nodes")
t.ok(l.get("kind") == "NodeList" and [i["metadata"]["name"] for i in l["items"]] == ["n1"], "list nodes")
list_rv = get_json("/api/v1/pods")[1]["metadata"]["resourceVersion"]

# ---- Table (kubectl get's Accept) ----
TABLE_ACCEPT = ("Accept: application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-D", "-", "-H", TABLE_ACCEPT,
                    base + "/api/v1/namespaces/default/pods?limit=500"], capture_output=True, text=True)
head, _, body = p.stdout.partition("\n\n")  # (text mode: CRLF read as LF)
tb = json.loads(body) if body.startswith("{") else {}
t.ok("content-type: application/json;as=table;v=v1;g=meta.k8s.io" in head.lower(),
     "Table answer's content-type")
cols = [d["name"] for d in tb.get("columnDefinitions", [])]
t.ok(tb.get("kind") == "Table" and cols[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
     and sorted(r["cells"][0] for r in tb.get("rows", [])) == ["db", "web"]
     and tb["rows"][0]["object"]["kind"] == "PartialObjectMetadata",
     "list as a Table: pod columns, a row a pod, PartialObjectMetadata (%s)" % cols)
code, body = curl("/api/v1/namespaces/default/pods/web", args=["-H", TABLE_ACCEPT])
tb = json.loads(body) if body.startswith("{") else {}
t.ok(tb.get("kind") == "Table" and [r["cells"][0] for r in tb.get("rows", [])] == ["web"],
     "get one pod as a Table")
code, body = curl("/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1", args=["-H", TABLE_ACCEPT])
ev = json.loads(body.splitlines()[0]) if body.startswith("{") else {}
t.ok(ev.get("type") == "ADDED" and ev.get("object", {}).get("kind") == "Table"
     and ev["object"]["rows"][0]["cells"][0] in ("db", "web"), "watch with Table: each event's object a Table")
code, body = curl("/api/v1/pods?includeObject=Bogus", args=["-H", TABLE_ACCEPT])
t.is_(code, 400, "a bad includeObject: 400")

# ---- Status errors ----
code, s = get_json("/api/v1/namespaces/default/pods/x")
t.ok(code == 404 and s.get("kind") == "Status" and s.get("reason") == "NotFound" and s.get("code") == 404
     and s.get("message") == 'pods "x" not found' and s.get("details") == {"name": "x", "kind": "pods"},
     "missing pod: 404 NotFound Status")
code, s = get_json("/api/v1/namespaces/default/widgets")
t.ok(code == 404 and s.get("reason") == "NotFound", "unknown resource: 404 NotFound")
code, s = get_json("/api/v1/pods?labelSelector=a%3D%3D%3Db")
t.ok(code == 400 and s.get("reason") == "BadRequest", "bad label selector: 400 BadRequest")
code, body = curl("/api/v1/namespaces/default/pods", args=["-X", "PUT", "-d", "{}"])
s = json.loads(body) if body.startswith("{") else {}
t.ok(code == 405 and s.get("reason") == "MethodNotAllowed" and s.get("code") == 405,
     "PUT on a collection: 405 MethodNotAllowed Status")
code, body = curl("/api/v1/namespaces/default/pods/web", args=["-X", "POST", "-d", "{}"])
t.is_(code, 405, "POST on an object: 405")
code, s = get_json("/api/v1/pods?watch=1&sendInitialEvents=true")
t.ok(code == 422 and s.get("reason") == "Invalid",
     "sendInitialEvents without resourceVersionMatch=NotOlderThan: 422, as Kubernetes")
code, s = get_json("/api/v1/pods?watch=1&resourceVersion=x")
t.ok(code == 400 and s.get("reason") == "BadRequest", "watch with a bad resourceVersion: 400")

code, m = curl("/metrics", False)
t.ok('coracle_apiserver_rest_requests_total{verb="get",code="404"} ' in m
     and 'coracle_apiserver_rest_requests_total{verb="list",code="200"} ' in m,
     "/metrics counts REST answers by verb and status")


# ---- watch ----
class Watch:
    """curl -N on a watch URL; lines of JSON as they come."""

    def __init__(self, path, h2=True):
        argv = ["curl", "-s", "-N", "--max-time", "30"] + (["--http2-prior-knowledge"] if h2 else [])
        self.p = subprocess.Popen(argv + [base + path], stdout=subprocess.PIPE, text=True)
        self.lines = []

    def next(self, timeout=10):
        import select
        if select.select([self.p.stdout], [], [], timeout)[0]:
            line = self.p.stdout.readline()
            if line:
                self.lines.append(line)
                return json.loads(line)
        return None

    def stop(self):
        self.p.kill()
        self.p.wait()


for h2, proto in PROTOS:
    w = Watch("/api/v1/namespaces/default/pods?watch=true&resourceVersion=%s" % list_rv, h2)
    c.on_teardown(w.stop)
    time.sleep(0.3)
    name = "new-" + ("h2" if h2 else "h1")
    api.call("Pods", "Create", simple_pod(name))
    ev = w.next()
    t.ok(ev and ev["type"] == "ADDED" and ev["object"]["kind"] == "Pod"
         and ev["object"]["metadata"]["name"] == name, "%s: watch from the list's RV: ADDED %s" % (proto, name))
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=name, gracePeriodSeconds=0))
    seen = [w.next() for _ in range(2)]
    t.ok(any(e and e["type"] == "DELETED" and e["object"]["metadata"]["name"] == name for e in seen),
         "%s: DELETED %s" % (proto, name))
    list_rv = get_json("/api/v1/pods")[1]["metadata"]["resourceVersion"]
    w.stop()

w = Watch("/api/v1/nodes?watch=1")
ev = w.next()
t.ok(ev and ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "n1",
     "watch without resourceVersion: the current state as ADDED")
w.stop()
t0 = time.time()
code, body = curl("/api/v1/nodes?watch=1&resourceVersion=%s&timeoutSeconds=1" % list_rv)
t.ok(code == 200 and time.time() - t0 < 5, "timeoutSeconds=1 ends the stream cleanly")
w = Watch("/api/v1/namespaces/default/pods/web?watch=true")
ev = w.next()
t.ok(ev and ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "web",
     "watch one pod by its path (the name as a field selector)")
w.stop()

# Expired: a resourceVersion older than the compacted log is an ERROR event with 410
for i in range(40):
    api.call("Pods", "Update", api.call("Pods", "Get", pb.GetRequest(namespace="default", name="web")))
    p = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="web"))
    p.metadata.labels["n"] = str(i)
    api.call("Pods", "Update", p)
w = Watch("/api/v1/pods?watch=1&resourceVersion=1")
ev = w.next()
t.ok(ev and ev["type"] == "ERROR" and ev["object"].get("kind") == "Status"
     and ev["object"].get("reason") == "Expired" and ev["object"].get("code") == 410,
     "too old resourceVersion: ERROR event, Expired 410")
w.stop()

# ---- TLS: client certificates, tokens, the policy; kubectl ----
port = ctest.free_port()
addr = "127.0.0.1:%d" % port
pki = os.path.join(c.dir, "pki")
c.certs(pki, "-n", "n1", "-s", addr)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write("tok-bob,bob,1001\ntok-carl,carl,1002\n")
policy = os.path.join(c.dir, "policy")
shutil.copy(os.path.join(SRC, "conf", "policy"), policy)
with open(policy, "a") as f:
    f.write("bind view user:bob\n")
tls = c.start("apiserver-tls", [c.bin("coracle-apiserver"), "--listen", addr,
                                "--data-dir", os.path.join(c.dir, "data-tls"),
                                "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                                "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                                "--client-ca-file", os.path.join(pki, "ca.crt"),
                                "--token-auth-file", tokens, "--authorization-policy-file", policy,
                                "--max-watches-per-user", "2"])
https = "https://" + addr
cacert = ["--cacert", os.path.join(pki, "ca.crt")]
admin = cacert + ["--cert", os.path.join(pki, "admin.crt"), "--key", os.path.join(pki, "admin.key")]


def tls_ready():
    if not tls.alive():
        t.bail("TLS apiserver exited:\n" + tls.tail())
    return curl("", h2=False, args=cacert, url=https + "/readyz")[0] == 200


if not c.wait_for(tls_ready, timeout=ctest.DEADLINE, interval=0.1):
    t.bail("TLS apiserver not ready:\n" + tls.tail())
code, body = curl("", h2=False, args=cacert, url=https + "/api/v1/pods")
s = json.loads(body) if body.startswith("{") else {}
t.ok(code == 401 and s.get("reason") == "Unauthorized" and s.get("code") == 401,
     "no certificate, no token: 401 Unauthorized Status")
code, body = curl("", h2=False, args=cacert + ["-H", "Authorization: Bearer tok-carl"],
                  url=https + "/api/v1/namespaces/default/pods/web")
s = json.loads(body) if body.startswith("{") else {}
t.ok(code == 403 and s.get("reason") == "Forbidden" and "carl" in s.get("message", ""),
     "a user the policy does not allow: 403 Forbidden Status (%s)" % s.get("message"))
code, body = curl("", h2=False, args=cacert + ["-H", "Authorization: Bearer tok-bob"],
                  url=https + "/api/v1/namespaces/default/pods")
t.ok(code == 200 and json.loads(body).get("kind") == "PodList", "a viewer's token lists pods")
bob = cacert + ["-H", "Authorization: Bearer tok-bob"]
watches = [subprocess.Popen(["curl", "-s", "-N", "--max-time", "30"] + bob + [https + "/api/v1/pods?watch=1"],
                            stdout=subprocess.DEVNULL) for _ in range(2)]
for wp in watches:
    c.on_teardown(wp.kill)
time.sleep(1)
code, body = curl("", h2=False, args=bob, url=https + "/api/v1/pods?watch=1")
s = json.loads(body) if body.startswith("{") else {}
t.ok(code == 429 and s.get("reason") == "TooManyRequests" and "bob" in s.get("message", ""),
     "a third watch over --max-watches-per-user 2: 429 TooManyRequests (%s)" % s.get("message"))
for wp in watches:
    wp.kill()
    wp.wait()
p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}"] + admin
                   + [https + "/api/v1/nodes"], capture_output=True, text=True)
t.is_(p.stdout, "2 200", "admin certificate over TLS: HTTP/2 by ALPN, 200")

kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if not os.access(kubectl, os.X_OK):
    t.skip("kubectl 1.32 not installed", 9)
    t.done()
home = os.path.join(c.dir, "khome")
os.makedirs(home)
# contrib/certs wrote a standard kubeconfig per identity beside the certificates
kubeconfig = os.path.join(pki, "admin.kubeconfig")
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home, KUBECONFIG=kubeconfig)


def k(*args):
    p = subprocess.run([kubectl] + list(args), env=kenv, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


# objects in the TLS apiserver, through its gRPC port with the admin certificate
rc, _, err = c.ctl("--server", https, "--certificate-authority", os.path.join(pki, "ca.crt"),
                   "--client-certificate", os.path.join(pki, "admin.crt"),
                   "--client-key", os.path.join(pki, "admin.key"), "apply", "-f", "-", server=False,
                   stdin="apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n"
                         "  containers: [{name: c, image: busybox}]\n---\n"
                         "apiVersion: v1\nkind: Pod\nmetadata: {name: dns, namespace: kube-system}\nspec:\n"
                         "  containers: [{name: c, image: busybox}]\n---\n"
                         "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n")
if rc != 0:
    t.bail("coraclectl apply over TLS failed: " + err)

rc, out, err = k("get", "po")
lines = out.splitlines()
t.ok(rc == 0 and lines and lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
     and [l.split()[:3] for l in lines[1:]] == [["web", "0/1", "Pending"]],
     "kubectl get po: the server's Table columns, web (%r %r)" % (out, err))
rc, out, err = k("get", "po", "-o", "wide")
t.ok(rc == 0 and out.split()[:9] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                     "NOMINATED", "NODE"], "kubectl get po -o wide: the wide columns (%r)" % out)
rc, out, err = k("get", "po", "-A")
rows = sorted(tuple(l.split()[:2]) for l in out.splitlines()[1:])
t.ok(rc == 0 and out.split()[0] == "NAMESPACE" and rows == [("default", "web"), ("kube-system", "dns")],
     "kubectl get po -A: both namespaces (%r)" % out)
rc, out, err = k("get", "po", "-o", "json")
j = json.loads(out) if rc == 0 else {}
t.ok(j.get("kind") == "List" and [i["metadata"]["name"] for i in j.get("items", [])] == ["web"]
     and j["items"][0]["kind"] == "Pod", "kubectl get po -o json")
rc, out, err = k("get", "po", "web", "-o", "yaml")
t.ok(rc == 0 and "kind: Pod\n" in out and "  name: web\n" in out and "image: busybox" in out,
     "kubectl get po web -o yaml")
rc, out, err = k("get", "no")
t.ok(rc == 0 and [l.split()[0] for l in out.splitlines()] == ["NAME", "n1"] and "STATUS" in out.split("\n")[0],
     "kubectl get no (%r)" % out)
rc, out, err = k("get", "po", "x")
t.ok(rc == 1 and 'Error from server (NotFound): pods "x" not found' in err,
     "kubectl: a missing pod is NotFound (%r)" % err.strip())
p = subprocess.Popen([kubectl, "get", "po", "-w"], env=kenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True)
c.on_teardown(lambda: p.kill())
first = p.stdout.readline()
second = p.stdout.readline()
rc, _, err = c.ctl("--server", https, "--certificate-authority", os.path.join(pki, "ca.crt"),
                   "--client-certificate", os.path.join(pki, "admin.crt"),
                   "--client-key", os.path.join(pki, "admin.key"), "apply", "-f", "-", server=False,
                   stdin="apiVersion: v1\nkind: Pod\nmetadata: {name: late}\nspec:\n"
                         "  containers: [{name: c, image: busybox}]\n")
third = p.stdout.readline()
p.kill()
p.wait()
t.ok(first.split()[:1] == ["NAME"] and second.split()[:1] == ["web"], "kubectl get po -w: the list (%r %r)"
     % (first, second))
t.ok(third.split()[:1] == ["late"], "kubectl get po -w: then the new pod from the watch (%r)" % third)
t.done()
