#!/usr/bin/python3
# The OpenAPI documents and aggregated discovery: /openapi/v2 as JSON and
# as gnostic's protobuf (ETag, 304), the /openapi/v3 index and its
# group-versions (hash, immutable caching, redirect from an old hash),
# APIGroupDiscoveryList for kubectl's Accept; then stock kubectl reading
# them: 1.32's explain (v3) and api-resources (aggregated discovery), its
# create sending fieldValidation=Strict once the documents say it may,
# and 1.20's explain over the v2 protobuf (Debian's kubernetes-client,
# when the package can be had).
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import kubectls

t = ctest.Tap()
c = ctest.Cluster(t)
if not shutil.which("curl"):
    t.skip_all("curl not installed")
c.start_apiserver()
base = "http://" + c.api_addr
PB = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
AGG = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def fetch(path, *headers):
    """GET path; returns (status, {header: value} in lower case, body bytes)."""
    hdr = os.path.join(c.dir, "headers")
    argv = ["curl", "-s", "--max-time", "10", "-D", hdr, "-o", "-"]
    for h in headers:
        argv += ["-H", h]
    p = subprocess.run(argv + [base + path], capture_output=True)
    code, hs = 0, {}
    with open(hdr) as f:
        for line in f:
            if line.startswith("HTTP/"):
                code = int(line.split()[1])
            elif ":" in line:
                k, v = line.split(":", 1)
                hs[k.strip().lower()] = v.strip()
    return code, hs, p.stdout


# ---- /openapi/v2 ----
code, hs, body = fetch("/openapi/v2")
try:
    v2 = json.loads(body)
except ValueError:
    v2 = {}
t.ok(code == 200 and hs.get("content-type") == "application/json" and v2.get("swagger") == "2.0",
     "/openapi/v2: Swagger 2.0 JSON (%d %s)" % (code, hs.get("content-type")))
defs = v2.get("definitions", {})
t.ok(all(n in defs for n in ("io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.PodSpec",
                             "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                             "io.k8s.api.coordination.v1.Lease",
                             "io.k8s.apimachinery.pkg.api.resource.Quantity")),
     "definitions named as Kubernetes names them")
etag = hs.get("etag", "")
code, hs, pb = fetch("/openapi/v2", "Accept: " + PB)
t.ok(code == 200 and hs.get("content-type") == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
     and pb[:5] == b"\x0a\x032.0", "kubectl's Accept: the protobuf, a Content-Type that parses (%s)"
     % hs.get("content-type"))
if shutil.which("protoc"):
    p = subprocess.run(["protoc", "--decode_raw"], input=pb, capture_output=True)
    t.ok(p.returncode == 0 and b'"io.k8s.api.core.v1.Container"' in p.stdout
         and b'"x-kubernetes-group-version-kind"' in p.stdout,
         "the protobuf decodes (protoc --decode_raw): definitions, vendor extensions")
else:
    t.skip("protoc not installed")
t.ok(etag.startswith('"') and len(etag) == 130 and hs.get("etag") == etag,
     "an ETag, the same for both forms (%s...)" % etag[:12])
code, hs, body = fetch("/openapi/v2", "Accept: " + PB, "If-None-Match: " + etag)
t.ok(code == 304 and body == b"", "If-None-Match: 304 (%d)" % code)
code, hs, body = fetch("/openapi/v2", "Accept: text/html")
t.ok(code == 406, "Accept text/html: 406 (%d)" % code)

# ---- /openapi/v3 ----
code, hs, body = fetch("/openapi/v3")
index = json.loads(body) if code == 200 else {}
code2, _, body2 = fetch("/openapi/v3")
paths = index.get("paths", {})
t.ok(sorted(paths) == ["api/v1", "apis/apps/v1", "apis/authentication.k8s.io/v1", "apis/authorization.k8s.io/v1",
                      "apis/batch/v1", "apis/certificates.k8s.io/v1", "apis/coordination.k8s.io/v1",
                      "apis/discovery.k8s.io/v1", "apis/networking.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1"] and body == body2,
     "/openapi/v3: each group-version, the same twice (%s)" % sorted(paths))
url = paths.get("api/v1", {}).get("serverRelativeURL", "")
h = url.partition("?hash=")[2]
code, hs, body = fetch(url)
doc = json.loads(body) if code == 200 else {}
t.ok(code == 200 and hs.get("cache-control") == "public, immutable" and "expires" in hs
     and hs.get("etag") == '"%s"' % h and doc.get("openapi", "").startswith("3."),
     "the api/v1 document at its hash: immutable (%d %s)" % (code, hs.get("cache-control")))
code, hs, _ = fetch("/openapi/v3/api/v1?hash=0123")
t.ok(code == 301 and hs.get("location") == url, "an old hash: 301 to the current URL (%d %s)"
     % (code, hs.get("location")))
code, hs, _ = fetch("/openapi/v3/api/v1")
t.ok(code == 200 and "cache-control" not in hs, "without a hash: no immutable caching")
code, _, _ = fetch("/openapi/v3/apis/policy/v1")
t.is_(code, 404, "a group-version not served: 404")
op = doc.get("paths", {}).get("/api/v1/namespaces/{namespace}/pods/{name}", {}).get("patch", {})
t.ok(op.get("x-kubernetes-group-version-kind", {}).get("kind") == "Pod"
     and "fieldValidation" in [p.get("name") for p in op.get("parameters", [])],
     "PATCH pods: tagged Pod, takes fieldValidation")

# ---- aggregated discovery ----
kubectl_accept = ("Accept: " + AGG + ",application/json;g=apidiscovery.k8s.io;v=v2beta1;"
                  "as=APIGroupDiscoveryList,application/json")
code, hs, body = fetch("/api", kubectl_accept)
d = json.loads(body) if code == 200 else {}
t.ok(hs.get("content-type") == AGG and d.get("kind") == "APIGroupDiscoveryList",
     "/api for kubectl's Accept: APIGroupDiscoveryList (%s)" % hs.get("content-type"))
res = {r["resource"]: r for g in d.get("items", []) for v in g["versions"] for r in v["resources"]}
pods = res.get("pods", {})
t.ok(pods.get("responseKind") == {"group": "", "version": "v1", "kind": "Pod"}
     and pods.get("scope") == "Namespaced" and pods.get("shortNames") == ["po"]
     and "deletecollection" in pods.get("verbs", [])
     and {"status", "log", "exec", "attach", "binding"} <= {s["subresource"] for s in pods.get("subresources", [])},
     "pods: responseKind, scope, short name, verbs, subresources")
t.ok(res.get("nodes", {}).get("scope") == "Cluster", "nodes: Cluster")
code, hs, body = fetch("/apis", kubectl_accept)
d = json.loads(body) if code == 200 else {}
t.ok([g["metadata"]["name"] for g in d.get("items", [])] == [
    "apps", "authentication.k8s.io", "authorization.k8s.io", "batch", "certificates.k8s.io", "networking.k8s.io", "rbac.authorization.k8s.io", "coordination.k8s.io", "discovery.k8s.io"],
     "/apis: the apps, authentication, authorization, batch, certificates, networking, rbac, coordination and discovery groups")
code, hs, body = fetch("/api", "Accept: application/json, */*")
t.ok(hs.get("content-type") == "application/json" and json.loads(body).get("kind") == "APIVersions",
     "kubectl 1.20's Accept: APIVersions, as before")

# ---- kubectl ----
kubeconfig = os.path.join(c.dir, "kubeconfig")
with open(kubeconfig, "w") as f:
    f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            "clusters: [{name: c, cluster: {server: \"%s\"}}]\n"
            "users: [{name: u, user: {}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\n" % base)
pod_yaml = os.path.join(c.dir, "pod.yaml")
with open(pod_yaml, "w") as f:
    f.write("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox}]\n")


def kubectl(binary, home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update(HOME=home, KUBECONFIG=kubeconfig)
    p = subprocess.run([binary] + list(args), env=env, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


k132 = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if not os.access(k132, os.X_OK):
    t.skip("kubectl 1.32 not installed", 6)
else:
    home = os.path.join(c.dir, "home132")
    rc, out, err = kubectl(k132, home, "explain", "pod.spec.containers")
    lines = [l.strip() for l in out.splitlines()]
    t.ok(rc == 0 and "FIELD: containers <[]Container>" in out and "name\t<string> -required-" in lines
         and "image\t<string>" in lines and "Container image name." in lines
         and "ports\t<[]ContainerPort>" in lines,
         "1.32 explain pod.spec.containers: fields, types, descriptions (%r)" % (out[:300] + err))
    rc, out, err = kubectl(k132, home, "explain", "pod", "--recursive")
    t.ok(rc == 0 and "    containers\t<[]Container>" in out and "      image\t<string>" in out
         and "  metadata\t<ObjectMeta>" in out, "1.32 explain pod --recursive (%r)" % (out[:200] + err))
    rc, out, err = kubectl(k132, home, "explain", "lease.spec.holderIdentity")
    t.ok(rc == 0 and "GROUP:      coordination.k8s.io" in out and "holderIdentity" in out,
         "1.32 explain lease.spec.holderIdentity (%r)" % (out[:200] + err))
    home = os.path.join(c.dir, "home132b")
    rc, out, err = kubectl(k132, home, "api-resources", "-o", "wide", "-v=6")
    rows = {l.split()[0]: l.split() for l in out.splitlines()[1:] if l.strip()}
    verbs = "create,delete,deletecollection,get,list,patch,update,watch"
    t.ok(rc == 0 and rows.get("pods", [])[1:2] == ["po"] and rows.get("nodes", [])[1:2] == ["no"]
         and rows.get("events", [])[1:2] == ["ev"] and rows.get("leases", [])[1:2] == ["coordination.k8s.io/v1"]
         and all(verbs in r for r in rows.values() if "authorization.k8s.io/v1" not in r
                 and "authentication.k8s.io/v1" not in r)
         and rows.get("selfsubjectaccessreviews", [])[-1:] == ["create"],
         "1.32 api-resources: pods, nodes, events, leases, short names, verbs (%r)" % out)
    t.ok("/api/v1?" not in err and "/apis/coordination.k8s.io/v1?" not in err,
         "1.32 api-resources: from aggregated discovery alone")
    rc, out, err = kubectl(k132, home, "create", "-f", pod_yaml, "-v=6")
    post = [l for l in err.splitlines() if "POST " in l and "/pods?" in l]
    t.ok(post and "fieldValidation=Strict" in post[0] and "failed to download openapi" not in err,
         "1.32 create -f: validation left to the server, fieldValidation=Strict (%r)"
         % (post or err[-300:]))


k120 = kubectls.kubectl_120()
if not k120:
    t.skip("kubectl 1.20 (Debian's kubernetes-client) cannot be had", 2)
else:
    home = os.path.join(c.dir, "home120")
    rc, out, err = kubectl(k120, home, "explain", "pod.spec.containers", "-v=6")
    lines = [l.strip() for l in out.splitlines()]
    t.ok(rc == 0 and "RESOURCE: containers <[]Object>" in out and "name\t<string> -required-" in lines
         and "Container image name." in lines and "/openapi/v2?" in err,
         "1.20 explain pod.spec.containers over /openapi/v2 protobuf (%r)" % (out[:300] + err[-300:]))
    bad = os.path.join(c.dir, "bad.yaml")
    with open(bad, "w") as f:
        f.write("apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n"
                "  containers: [{name: c, image: busybox, bogus: 1}]\n")
    rc, out, err = kubectl(k120, home, "create", "-f", bad)
    t.ok(rc != 0 and 'unknown field "bogus" in io.k8s.api.core.v1.Container' in err,
         "1.20 create: client-side validation with the served schema (%r)" % err.strip())
t.done()
