#!/usr/bin/python3
# Namespaces, ConfigMaps, Secrets and ServiceAccounts, kinds of the table
# with Kubernetes' semantics: the system namespaces exist from the start,
# each with its ServiceAccount default; a create into a missing namespace
# is NotFound, into a Terminating one Forbidden; deleting a namespace
# deletes its content, then the namespace. A Secret's stringData is folded
# into data, its type defaults to Opaque and stays; immutable ConfigMaps
# and Secrets keep their data. Over gRPC, coraclectl and stock kubectl
# (1.32), on the store CORACLE_TEST_STORE names.
import base64
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import kubectls
from ctest import meta, simple_pod

t = ctest.Tap()
c = ctest.Cluster(t)
c.implicit_namespaces = False
api = c.start_apiserver()
pb = c.pb
SC = ctest.grpc.StatusCode
SYSTEM = ["default", "kube-node-lease", "kube-public", "kube-system"]


def err(service, method, req):
    _, e = api.try_call(service, method, req)
    return (e.code, e.message) if e else (SC.OK, None)


def names(service, ns=None):
    return sorted(o.metadata.name for o in api.call(service, "List", pb.ListRequest(namespace=ns)).items)


# ---- the system namespaces and their service accounts ----
t.is_(err("Pods", "Create", simple_pod("early")), (SC.OK, None),
      "default takes objects from the first moment (the seed tutorial's namespace)")
t.ok(c.wait_for(lambda: names("Namespaces") == SYSTEM, timeout=ctest.DEADLINE),
     "default, kube-node-lease, kube-public, kube-system exist from the start (%s)" % names("Namespaces"))
t.is_(sorted(set(n.status.phase for n in api.call("Namespaces", "List", pb.ListRequest()).items)), ["Active"],
      "they are Active")
t.ok(c.wait_for(lambda: sorted((s.metadata.namespace, s.metadata.name)
                               for s in api.call("ServiceAccounts", "List", pb.ListRequest()).items)
                == [(n, "default") for n in SYSTEM], timeout=ctest.DEADLINE),
     "each has the ServiceAccount default")
t.is_(err("Namespaces", "Delete", pb.DeleteRequest(name="default")),
      (SC.PERMISSION_DENIED, 'namespaces "default" is forbidden: this namespace may not be deleted'),
      "default may not be deleted")

# ---- a missing namespace ----
t.is_(err("ConfigMaps", "Create", pb.ConfigMap(metadata=meta("c", "nope"))),
      (SC.NOT_FOUND, 'namespaces "nope" not found'), "a ConfigMap into a missing namespace: NotFound")
t.is_(err("Pods", "Create", simple_pod("p", ns="nope")), (SC.NOT_FOUND, 'namespaces "nope" not found'),
      "a pod into a missing namespace: NotFound")
t.is_(err("Namespaces", "Create", pb.Namespace(metadata=meta("Bad_NS")))[0], SC.INVALID_ARGUMENT,
      "a namespace's name is a DNS label")

# ---- Namespace CRUD ----
ns = api.call("Namespaces", "Create", pb.Namespace(metadata=meta("x", labels={"team": "a"})))
t.is_((ns.metadata.name, ns.metadata.namespace, ns.status.phase), ("x", "", "Active"),
      "Namespace created: cluster-scoped, Active")
t.is_(api.call("Namespaces", "Get", pb.GetRequest(name="x")).metadata.labels["team"], "a", "Namespace get")
ns.metadata.labels["team"] = "b"
ns.status.phase = "Terminating"
u = api.call("Namespaces", "Update", ns)
t.is_((u.metadata.labels["team"], u.status.phase), ("b", "Active"), "Namespace update: status is kept")
t.ok(c.wait_for(lambda: names("ServiceAccounts", "x") == ["default"], timeout=ctest.DEADLINE),
     "the new namespace gets the ServiceAccount default")

# ---- ConfigMap CRUD, immutable ----
cm = api.call("ConfigMaps", "Create", pb.ConfigMap(metadata=meta("c", "x"), data={"a": "b"},
                                                  binaryData={"bin": b"\x00\xff"}))
t.is_((dict(cm.data), dict(cm.binaryData)), ({"a": "b"}, {"bin": b"\x00\xff"}), "ConfigMap created")
cm.data["a"] = "c"
t.is_(dict(api.call("ConfigMaps", "Update", cm).data), {"a": "c"}, "ConfigMap updated")
t.is_(err("ConfigMaps", "Create", pb.ConfigMap(metadata=meta("bad", "x"), data={"a b": "c"}))[1],
      "ConfigMap \"bad\" is invalid: data[a b]: Invalid value: \"a b\": a valid config key must consist of "
      "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used "
      "for validation is '[-._a-zA-Z0-9]+')", "a ConfigMap key is checked")
im = api.call("ConfigMaps", "Create", pb.ConfigMap(metadata=meta("im", "x"), data={"a": "b"}, immutable=True))
im.data["a"] = "c"
t.is_(err("ConfigMaps", "Update", im),
      (SC.INVALID_ARGUMENT, "ConfigMap \"im\" is invalid: data: Forbidden: field is immutable when `immutable` is set"),
      "an immutable ConfigMap keeps its data")
im.data["a"] = "b"
im.metadata.labels["l"] = "v"
t.is_(api.call("ConfigMaps", "Update", im).metadata.labels["l"], "v", "its metadata may change")
api.call("ConfigMaps", "Delete", pb.DeleteRequest(namespace="x", name="im"))
t.is_(names("ConfigMaps", "x"), ["c"], "ConfigMap deleted")

# ---- Secret: stringData, type, immutable ----
s = api.call("Secrets", "Create", pb.Secret(metadata=meta("s", "x"), data={"k": b"v", "pw": b"old"},
                                            stringData={"pw": "hunter2"}))
t.is_((dict(s.data), dict(s.stringData), s.type), ({"k": b"v", "pw": b"hunter2"}, {}, "Opaque"),
      "Secret: stringData folded into data and not stored, type Opaque")
s.type = "bootstrap.kubernetes.io/token"
t.is_(err("Secrets", "Update", s),
      (SC.INVALID_ARGUMENT,
       'Secret "s" is invalid: type: Invalid value: "bootstrap.kubernetes.io/token": field is immutable'),
      "a Secret's type may not change")
s = api.call("Secrets", "Get", pb.GetRequest(namespace="x", name="s"))
s.immutable = True
s = api.call("Secrets", "Update", s)
s.stringData["k"] = "w"
t.is_(err("Secrets", "Update", s),
      (SC.INVALID_ARGUMENT, "Secret \"s\" is invalid: data: Forbidden: field is immutable when `immutable` is set"),
      "an immutable Secret keeps its data, stringData included")
t.is_(err("Secrets", "Create", pb.Secret(metadata=meta("tls", "x"), type="kubernetes.io/tls",
                                         data={"tls.crt": b"c"})),
      (SC.INVALID_ARGUMENT, 'Secret "tls" is invalid: data[tls.key]: Required value'),
      "a kubernetes.io/tls Secret needs tls.crt and tls.key")
api.call("Secrets", "Create", pb.Secret(metadata=meta("tls", "x"), type="kubernetes.io/tls",
                                        data={"tls.crt": b"c", "tls.key": b"k"}))
code, msg = err("Secrets", "Create", pb.Secret(metadata=meta("reg", "x"), type="kubernetes.io/dockerconfigjson",
                                               stringData={".dockerconfigjson": "{\"auths\": hunter3"}))
t.ok(code == SC.INVALID_ARGUMENT and msg.startswith(
    'Secret "reg" is invalid: data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": ')
     and "hunter3" not in msg, "a dockerconfigjson Secret must hold JSON, and the message keeps it secret (%s)" % msg)
t.is_(err("Secrets", "Create", pb.Secret(metadata=meta("ba", "x"), type="kubernetes.io/basic-auth")),
      (SC.INVALID_ARGUMENT, 'Secret "ba" is invalid: [data[username]: Required value, data[password]: Required value]'),
      "basic-auth needs a username or a password")
api.call("Secrets", "Create", pb.Secret(metadata=meta("reg", "x"), type="kubernetes.io/dockerconfigjson",
                                        stringData={".dockerconfigjson": '{"auths": {}}'}))
t.is_([o.metadata.name for o in api.call("Secrets", "List", pb.ListRequest(
    namespace="x", fieldSelector="type=kubernetes.io/tls")).items], ["tls"], "secrets by fieldSelector type")
t.is_(len(api.call("Namespaces", "List", pb.ListRequest(fieldSelector="status.phase=Active")).items), 5,
      "namespaces by fieldSelector status.phase")
log = open(os.path.join(c.dir, "apiserver.log"), errors="replace").read()
t.ok("hunter2" not in log, "the Secret's value is not in the log")

# ---- ServiceAccount ----
sa = api.call("ServiceAccounts", "Create", pb.ServiceAccount(
    metadata=meta("robot", "x"), secrets=[pb.ObjectReference(name="s")],
    imagePullSecrets=[pb.LocalObjectReference(name="reg")], automountServiceAccountToken=False))
t.is_((sa.secrets[0].name, sa.imagePullSecrets[0].name, sa.HasField("automountServiceAccountToken")),
      ("s", "reg", True), "ServiceAccount created")

# ---- coraclectl ----
rc, out, _ = c.ctl("get", "ns")
t.is_([l.split()[:2] for l in out.splitlines()][:2], [["NAME", "STATUS"], ["default", "Active"]],
      "coraclectl get ns: NAME STATUS AGE")
rc, out, _ = c.ctl("get", "secret", "-n", "x")
t.is_([l.split()[:3] for l in out.splitlines()], [["NAME", "TYPE", "DATA"], ["reg", "kubernetes.io/dockerconfigjson", "1"],
                                                  ["s", "Opaque", "2"], ["tls", "kubernetes.io/tls", "2"]],
      "coraclectl get secret: NAME TYPE DATA AGE")
rc, out, _ = c.ctl("get", "cm", "-n", "x")
t.is_([l.split()[:2] for l in out.splitlines()], [["NAME", "DATA"], ["c", "2"]], "coraclectl get cm: NAME DATA AGE")
rc, out, _ = c.ctl("get", "sa", "-n", "x")
t.is_([l.split()[:2] for l in out.splitlines()], [["NAME", "SECRETS"], ["default", "0"], ["robot", "1"]],
      "coraclectl get sa: NAME SECRETS AGE")

# ---- deleting a namespace ----
api.call("Pods", "Create", simple_pod("p", ns="x"))
d = api.call("Namespaces", "Delete", pb.DeleteRequest(name="x"))
t.ok(d.status.phase == "Terminating" and d.metadata.HasField("deletionTimestamp"),
     "delete: the namespace is Terminating")
code, msg = err("ConfigMaps", "Create", pb.ConfigMap(metadata=meta("late", "x")))
t.ok((code, msg) == (SC.PERMISSION_DENIED, 'configmaps "late" is forbidden: unable to create new content in '
                     'namespace x because it is being terminated') or code == SC.NOT_FOUND,
     "nothing new goes into it (%s %s)" % (code, msg))
t.ok(c.wait_for(lambda: "x" not in names("Namespaces"), timeout=ctest.DEADLINE), "then it is gone")
t.is_([names(k, "x") for k in ("Pods", "ConfigMaps", "Secrets", "ServiceAccounts")], [[], [], [], []],
      "and everything that was in it")

# ---- stock kubectl ----
kubectl = kubectls.kubectl_132()
if not kubectl:
    t.skip("kubectl 1.32 not installed", 9)
    t.done()
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home)


def k(*args):
    p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache")]
                       + list(args), env=kenv, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def rows(out):
    return [l.split()[:-1] for l in out.splitlines()]  # without AGE


rc, out, e = k("create", "ns", "kx")
t.is_((rc, out.strip()), (0, "namespace/kx created"), "kubectl create ns (%s)" % e)
rc, out, e = k("get", "ns")
t.ok(["kx", "Active"] in rows(out) and rows(out)[0] == ["NAME", "STATUS"], "kubectl get ns (%s%s)" % (out, e))
f = os.path.join(c.dir, "conf.txt")
with open(f, "w") as fh:
    fh.write("line\n")
rc, out, e = k("create", "configmap", "c", "-n", "kx", "--from-literal=a=b", "--from-file=" + f)
t.is_((rc, out.strip()), (0, "configmap/c created"), "kubectl create configmap --from-literal --from-file (%s)" % e)
rc, out, e = k("create", "secret", "generic", "s", "-n", "kx", "--from-literal=pw=hunter2")
t.is_((rc, out.strip()), (0, "secret/s created"), "kubectl create secret generic (%s)" % e)
rc, out, e = k("get", "secret", "s", "-n", "kx", "-o", "jsonpath={.data.pw}")
t.is_(base64.b64decode(out), b"hunter2", "the Secret's data in base64 (%s)" % e)
t.ok(c.wait_for(lambda: names("ServiceAccounts", "kx") == ["default"], timeout=ctest.DEADLINE), "its default SA")
rc, out, e = k("get", "cm,secret,sa", "-n", "kx")
t.is_(rows(out), [["NAME", "DATA"], ["configmap/c", "2"], [],
                  ["NAME", "TYPE", "DATA"], ["secret/s", "Opaque", "1"], [],
                  ["NAME", "SECRETS"], ["serviceaccount/default", "0"]],
      "kubectl get cm,secret,sa: Kubernetes' columns (%s%s)" % (out, e))
rc, out, e = k("create", "configmap", "c", "-n", "nope", "--from-literal=a=b")
t.ok(rc != 0 and 'namespaces "nope" not found' in e, "kubectl create into a missing namespace (%s)" % e)
rc, out, e = k("delete", "ns", "kx")
t.ok(rc == 0 and "kx" not in names("Namespaces") and names("ConfigMaps", "kx") == [] and names("Secrets", "kx") == [],
     "kubectl delete ns waits until it and its content are gone (%s%s)" % (out, e))
t.done()
