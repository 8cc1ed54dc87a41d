#!/usr/bin/python3
# Server-side apply and metadata.managedFields, end to end: stock kubectl
# 1.32 (apply --server-side creating, again as a no-op, its Apply entry;
# the migration from client-side apply; another manager's conflict printed
# with the field, --force-conflicts; a field dropped from the applied
# configuration removed; kubectl label's Update entry), none recorded for
# coraclectl and gRPC writes, and with curl
# a YAML body, 422 without fieldManager, the 409's causes, dryRun, a
# status subresource apply.
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import simple_pod

t = ctest.Tap()
c = ctest.Cluster(t)
if not shutil.which("curl"):
    t.skip_all("curl not installed")
api = c.start_apiserver()
base = "http://" + c.api_addr
PODS = "/api/v1/namespaces/default/pods"
APPLY = ["-H", "Content-Type: application/apply-patch+yaml"]


def curl(method, path, data=None, args=()):
    """One request with curl (h2c); returns (status, parsed JSON body or text)."""
    argv = ["curl", "-s", "--max-time", "10", "--http2-prior-knowledge", "-X", method,
            "-w", "\n%{http_code}"]
    if data is not None:
        argv += ["--data-binary", "@-"]
    p = subprocess.run(argv + list(args) + [base + path], capture_output=True,
                       input=data.encode() if data is not None else None)
    body, _, code = p.stdout.decode(errors="replace").rpartition("\n")
    try:
        body = json.loads(body)
    except ValueError:
        pass
    return int(code or 0), body


def pod(name):
    return curl("GET", PODS + "/" + name)[1]


def managers(o):
    """{(manager, operation, subresource): fieldsV1} of an object's managedFields."""
    return {(e.get("manager"), e.get("operation"), e.get("subresource", "")): e.get("fieldsV1")
            for e in o.get("metadata", {}).get("managedFields", [])}


def owns(o, manager, op, *path, sub=""):
    f = managers(o).get((manager, op, sub))
    for p in path:
        if not isinstance(f, dict) or p not in f:
            return False
        f = f[p]
    return True


IMAGE = ("f:spec", "f:containers", 'k:{"name":"main"}', "f:image")


def manifest(name, image="busybox", labels=True):
    m = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n" % name
    if labels:
        m += "  labels:\n    app: %s\n" % name
    return m + "spec:\n  containers:\n  - name: main\n    image: %s\n" % image


# ---- curl: the wire ----
r = curl("PATCH", PODS + "/a", manifest("a"), APPLY)
t.ok(r[0] == 422 and r[1].get("reason") == "Invalid" and r[1].get("message") ==
     'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply '
     'patch', "apply without fieldManager: 422 (%r)" % (r,))
r = curl("PATCH", PODS + "/a?fieldManager=mgr&dryRun=All", manifest("a"), APPLY)
t.ok(r[0] == 201 and owns(r[1], "mgr", "Apply", *IMAGE) and curl("GET", PODS + "/a")[0] == 404,
     "dryRun: the would-be object with its Apply entry, nothing stored (%r)" % r[0])
r = curl("PATCH", PODS + "/a?fieldManager=mgr", manifest("a"), APPLY)
t.ok(r[0] == 201 and r[1]["metadata"].get("uid") and owns(r[1], "mgr", "Apply", *IMAGE)
     and not owns(r[1], "mgr", "Apply", "f:status"),
     "a YAML body creates (201), recorded as mgr's Apply entry (%r)" % r[0])
rv = r[1]["metadata"]["resourceVersion"]
r = curl("PATCH", PODS + "/a?fieldManager=mgr", json.dumps(
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"app": "a"}},
     "spec": {"containers": [{"name": "main", "image": "busybox"}]}}), APPLY)
t.ok(r[0] == 200 and r[1]["metadata"]["resourceVersion"] == rv,
     "the same configuration as JSON: no change, no new resourceVersion")
r = curl("PATCH", PODS + "/a?fieldManager=other", manifest("a", "busybox:2"), APPLY)
t.ok(r[0] == 409 and r[1].get("reason") == "Conflict"
     and r[1].get("message") == 'Apply failed with 1 conflict: conflict with "mgr": '
     '.spec.containers[name="main"].image'
     and r[1].get("details", {}).get("causes") == [
         {"reason": "FieldManagerConflict", "message": 'conflict with "mgr"',
          "field": '.spec.containers[name="main"].image'}],
     "another manager changing the image: 409 with the field as its cause (%r)" % (r,))
r = curl("PATCH", PODS + "/a?fieldManager=other&force=true&dryRun=All", manifest("a", "busybox:2"),
         APPLY)
t.ok(r[0] == 200 and pod("a")["spec"]["containers"][0]["image"] == "busybox",
     "force with dryRun: nothing stored")
r = curl("PATCH", PODS + "/a?fieldManager=other&force=true", manifest("a", "busybox:2"), APPLY)
t.ok(r[0] == 200 and r[1]["spec"]["containers"][0]["image"] == "busybox:2"
     and owns(r[1], "other", "Apply", *IMAGE) and not owns(r[1], "mgr", "Apply", *IMAGE),
     "force=true takes the image over")
r = curl("PATCH", PODS + "/a/status?fieldManager=st", "apiVersion: v1\nkind: Pod\nmetadata:\n"
         "  name: a\nstatus:\n  message: hello\n", APPLY)
t.ok(r[0] == 200 and r[1]["status"].get("message") == "hello"
     and owns(r[1], "st", "Apply", "f:status", "f:message", sub="status")
     and owns(r[1], "other", "Apply", *IMAGE),
     "an apply to pods/status: the status subresource's entry (%r)" % (managers(r[1]),))
r = curl("PATCH", PODS + "/a?fieldManager=mgr", "kind: Pod\napiVersion: v1\nmetadata:\n  name: b\n",
         APPLY)
t.ok(r[0] == 400 and r[1].get("reason") == "BadRequest", "a name other than the path's: 400")
r = curl("PATCH", PODS + "/a?fieldManager=mgr", "{", APPLY)
t.ok(r[0] == 400 and r[1].get("reason") == "BadRequest", "a malformed body: 400")

# ---- gRPC and coraclectl: coracle's own API records no managers ----
p = api.call("Pods", "Create", simple_pod("g"))
t.is_(len(p.metadata.managedFields), 0, "a gRPC create records no managedFields")
rc, out, err = c.ctl("apply", "-f", "-", stdin=manifest("cc"))
o = pod("cc")
t.ok(rc == 0 and not o["metadata"].get("managedFields"),
     "coraclectl apply (gRPC): no managedFields (%r %r)" % (err, managers(o)))
r = curl("PATCH", PODS + "/cc?fieldManager=late", manifest("cc"), APPLY)
t.ok(r[0] == 200 and owns(r[1], "late", "Apply", *IMAGE),
     "an apply over a gRPC-written object: its fields taken by the applier (%r)" % (managers(r[1]),))

# ---- kubectl ----
kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if not os.access(kubectl, os.X_OK):
    t.skip("kubectl 1.32 not installed", 8)
    t.done()
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kc = os.path.join(c.dir, "kubeconfig")
with open(kc, "w") as f:
    f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: '%s'}\n"
            "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
            "users:\n- name: u\n  user: {}\n" % base)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home, KUBECONFIG=kc)


def k(*args, stdin=None):
    p = subprocess.run([kubectl, "--cache-dir", os.path.join(home, "cache")] + list(args), env=kenv,
                       capture_output=True, text=True, timeout=60, input=stdin)
    return p.returncode, p.stdout, p.stderr


def kfile(name, text):
    path = os.path.join(c.dir, name + ".yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


rc, out, err = k("apply", "--server-side", "-f", kfile("x", manifest("x")))
t.ok(rc == 0 and out.strip() == "pod/x serverside-applied",
     "kubectl apply --server-side: created (%r %r)" % (out, err))
rv = pod("x")["metadata"]["resourceVersion"]
rc, out, err = k("apply", "--server-side", "-f", kfile("x", manifest("x")))
o = pod("x")
t.ok(rc == 0 and out.strip() == "pod/x serverside-applied" and o["metadata"]["resourceVersion"] == rv
     and list(managers(o)) == [("kubectl", "Apply", "")] and owns(o, "kubectl", "Apply", *IMAGE),
     "again: a no-op; kubectl's Apply entry owns the image (%r)" % (managers(o),))

rc, out, err = k("apply", "--server-side", "--field-manager", "other", "-f",
                 kfile("x2", manifest("x", "busybox:2", False)))
t.ok(rc != 0 and 'Apply failed with 1 conflict: conflict with "kubectl": '
     '.spec.containers[name="main"].image' in err and pod("x")["metadata"]["resourceVersion"] == rv,
     "another field manager changing the image: the conflict, with the field (%r)" % err)
rc, out, err = k("apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f",
                 kfile("x2", manifest("x", "busybox:2", False)))
o = pod("x")
t.ok(rc == 0 and o["spec"]["containers"][0]["image"] == "busybox:2"
     and owns(o, "other", "Apply", *IMAGE) and not owns(o, "kubectl", "Apply", *IMAGE),
     "--force-conflicts takes it (%r %r)" % (err, managers(o)))

rc, out, err = k("apply", "--server-side", "-f", kfile("x3", manifest("x", "busybox:2", False)))
o = pod("x")
t.ok(rc == 0 and "labels" not in o["metadata"] and not owns(o, "kubectl", "Apply", "f:metadata"),
     "a label dropped from the applied configuration is removed (%r %r)" % (err, o["metadata"]))

rc, out, err = k("label", "pod", "x", "tier=web")
o = pod("x")
t.ok(rc == 0 and out.strip() == "pod/x labeled"
     and owns(o, "kubectl-label", "Update", "f:metadata", "f:labels", "f:tier"),
     "kubectl label: a kubectl-label Update entry (%r %r)" % (err, managers(o)))

# client-side apply, then server-side: kubectl's migration takes the fields over
y = kfile("y", manifest("yy"))
rc, out, err = k("apply", "-f", y)
o = pod("yy")
t.ok(rc == 0 and out.strip() == "pod/yy created"
     and owns(o, "kubectl-client-side-apply", "Update", *IMAGE),
     "kubectl apply: a kubectl-client-side-apply Update entry (%r %r)" % (err, managers(o)))
rc, out, err = k("apply", "--server-side", "-f", y)
o = pod("yy")
t.ok(rc == 0 and out.strip() == "pod/yy serverside-applied" and "Warning" not in err
     and owns(o, "kubectl", "Apply", *IMAGE)
     and ("kubectl-client-side-apply", "Update", "") not in managers(o),
     "apply --server-side after it: migrated to kubectl's Apply entry (%r %r)" % (err, managers(o)))

r = curl("GET", PODS + "/x")
t.ok(r[0] == 200, "the server still serves")
t.done()
