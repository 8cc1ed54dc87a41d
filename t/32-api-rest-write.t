#!/usr/bin/python3
# The Kubernetes REST API's write verbs, through the gRPC API's pipeline:
# create (201, AlreadyExists, generateName, the path's namespace), update
# (Conflict on a stale resourceVersion, NotFound), pods/status,
# pods/binding, delete (DeleteOptions, graceful, preconditions),
# deletecollection, dryRun, fieldValidation (Strict, Warn's Warning
# headers, Ignore), JSON, YAML and protobuf bodies, Status errors with
# Kubernetes' reasons and texts, over HTTP/2 (h2c) and HTTP/1.1; writes
# seen by gRPC and REST watches both ways; then over TLS (h2 by ALPN) the
# policy's 403 and stock kubectl 1.32 with its default validation: create
# twice, an unknown field refused, replace, delete waiting for the
# graceful end, delete -l. (kubectl label and annotate
# send merge patches: they are tested once the patch library is in.)
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta

SRC = ctest.SRC
t = ctest.Tap()
c = ctest.Cluster(t)
if not shutil.which("curl"):
    t.skip_all("curl not installed")
api = c.start_apiserver("--max-request-bytes", "262144")
pb = c.pb
base = "http://" + c.api_addr
PODS = "/api/v1/namespaces/default/pods"
JSON = ["-H", "Content-Type: application/json"]


def curl(method, path, data=None, h2=True, args=(), url=None, headers=False):
    """One request with curl; returns (status, parsed JSON body or text[, headers])."""
    argv = ["curl", "-s", "--max-time", "10", "-X", method, "-w", "\n%{http_code}"]
    if h2:
        argv.append("--http2-prior-knowledge")
    hfile = os.path.join(c.dir, "headers")
    if headers:
        argv += ["-D", hfile]
    if data is not None:
        argv += ["--data-binary", "@-"]
    p = subprocess.run(argv + list(args) + [url or base + path], capture_output=True,
                       input=data.encode() if isinstance(data, str) else data)
    body, _, code = p.stdout.decode(errors="replace").rpartition("\n")
    try:
        body = json.loads(body)
    except ValueError:
        pass
    if headers:
        with open(hfile) as f:
            return int(code or 0), body, f.read().lower()
    return int(code or 0), body


def pod_json(name, ns=None, image="busybox", labels=None, extra=None):
    m = {"name": name}
    if ns:
        m["namespace"] = ns
    if labels:
        m["labels"] = labels
    o = {"apiVersion": "v1", "kind": "Pod", "metadata": m,
         "spec": {"containers": [{"name": "c", "image": image}]}}
    o.update(extra or {})
    return json.dumps(o)


def status_is(r, code, reason, msg=None):
    return (r[0] == code and isinstance(r[1], dict) and r[1].get("kind") == "Status"
            and r[1].get("reason") == reason and r[1].get("code") == code
            and (msg is None or r[1].get("message") == msg))


def get(name, ns="default"):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace=ns, name=name))[0]


def gw_until(pred, n=50):
    """The gRPC watch's next event pred accepts (of at most n)."""
    for _ in range(n):
        ev = next(gw)
        if pred(ev):
            return ev
    return None


class Watch:
    """curl -N on a REST watch URL; its JSON lines as they come (a reader
    thread: select() on the pipe would miss lines already buffered)."""

    def __init__(self, path):
        self.p = subprocess.Popen(["curl", "-s", "-N", "--max-time", "60", base + path],
                                  stdout=subprocess.PIPE, text=True)
        self.q = queue.Queue()
        threading.Thread(target=lambda: [self.q.put(json.loads(l)) for l in self.p.stdout],
                         daemon=True).start()
        c.on_teardown(self.stop)

    def next(self, timeout=10):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self):
        self.p.kill()
        self.p.wait()


# ---- watches of both APIs, from now ----
rv = api.call("Pods", "List", pb.ListRequest(namespace="default")).metadata.resourceVersion
gw = api.stream("Pods", "Watch", pb.ListRequest(namespace="default", resourceVersion=rv))
c.on_teardown(gw.cancel)
rw = Watch(PODS + "?watch=1&resourceVersion=" + rv)
time.sleep(0.3)

# ---- create ----
for h2, proto in ((True, "h2"), (False, "HTTP/1.1")):
    name = "a-" + ("h2" if h2 else "h1")
    r = curl("POST", PODS, pod_json(name, labels={"app": "a"}), h2, JSON)
    t.ok(r[0] == 201 and r[1].get("kind") == "Pod" and r[1]["metadata"]["name"] == name
         and r[1]["metadata"].get("uid") and r[1]["metadata"]["resourceVersion"].isdigit()
         and r[1]["status"]["phase"] == "Pending", "%s: create: 201 and the stored pod" % proto)
    r = curl("POST", PODS, pod_json(name), h2, JSON)
    t.ok(status_is(r, 409, "AlreadyExists", 'pods "%s" already exists' % name)
         and r[1].get("details") == {"name": name, "kind": "pods"},
         "%s: again: 409 AlreadyExists (%s)" % (proto, r[1]))
ev = next(gw)
t.ok(ev.type == "ADDED" and ev.object.metadata.name == "a-h2", "a REST create is seen by a gRPC watch")
ev = rw.next()
t.ok(ev and ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "a-h2",
     "and by a REST watch")
rw.next()
api.call("Pods", "Create", pb.Pod(metadata=meta("g", "default", labels={"app": "a"}),
                                  spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")])))
ev = rw.next()
t.ok(ev and ev["type"] == "ADDED" and ev["object"]["metadata"]["name"] == "g",
     "a gRPC create is seen by a REST watch (%s)" % ev)
rw.stop()

r = curl("POST", PODS, json.dumps({"metadata": {"generateName": "gen-"},
                                   "spec": {"containers": [{"name": "c", "image": "i"}]}}), args=JSON)
t.ok(r[0] == 201 and r[1]["metadata"]["name"].startswith("gen-") and len(r[1]["metadata"]["name"]) == 9
     and get(r[1]["metadata"]["name"]), "generateName: a name made, stored; no apiVersion/kind needed")
r = curl("POST", "/api/v1/namespaces/other/pods", pod_json("p"), args=JSON)
t.ok(r[0] == 201 and r[1]["metadata"]["namespace"] == "other" and get("p", "other"),
     "the path's namespace fills an empty one")
r = curl("POST", PODS, pod_json("p", ns="other"), args=JSON)
t.ok(status_is(r, 400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                     "sent on the request"), "a different namespace: 400")
r = curl("POST", PODS, json.dumps({"apiVersion": "v2", "kind": "Pod", "metadata": {"name": "v"}}), args=JSON)
t.ok(status_is(r, 400, "BadRequest", "the API version in the data (v2) does not match the expected API "
                                     "version (v1)"), "a wrong apiVersion: 400 (%s)" % r[1])
r = curl("POST", PODS, json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "v"}}), args=JSON)
t.ok(status_is(r, 400, "BadRequest") and "cannot be handled as a Pod" in r[1]["message"],
     "a Node posted as a pod: 400 (%s)" % r[1].get("message"))
r = curl("POST", PODS, pod_json("bad", image=""), args=JSON)
t.ok(status_is(r, 422, "Invalid", 'Pod "bad" is invalid: spec.containers[0].image: Required value')
     and r[1]["details"] == {"name": "bad", "kind": "Pod", "causes": [
         {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"}]},
     "an invalid pod: 422 Invalid with its cause (%s)" % r[1])
r = curl("POST", PODS, '{"metadata": {"name": ', args=JSON)
t.ok(status_is(r, 400, "BadRequest") and r[1]["message"].startswith('Pod in version "v1" cannot be handled '
                                                                     'as a Pod: '),
     "malformed JSON: 400 (%s)" % r[1].get("message"))
r = curl("POST", PODS, pod_json("t"), args=["-H", "Content-Type: text/plain"])
t.ok(status_is(r, 415, "UnsupportedMediaType",
               "the body of the request was in an unknown format - accepted media types include: "
               "application/json, application/yaml, application/vnd.kubernetes.protobuf"),
     "an unknown content type: 415")
r = curl("POST", PODS, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: y\nspec:\n  containers:\n"
         "  - {name: c, image: busybox}\n", args=["-H", "Content-Type: application/yaml"])
t.ok(r[0] == 201 and r[1]["metadata"]["name"] == "y", "a YAML body")
r = curl("POST", PODS, pod_json("big", extra={"metadata": {"name": "big", "annotations": {"a": "x" * 300000}}}),
         args=JSON)
t.is_(r[0], 413, "a body over --max-request-bytes: 413")


# bodies over 64 KiB are decoded off the loop: the same answers
labels = {"k%05d" % i: "v" for i in range(8000)}
r = curl("POST", PODS + "?fieldValidation=Strict", pod_json("huge", labels=labels), args=JSON)
t.ok(r[0] == 201 and len(r[1]["metadata"]["labels"]) == 8000 and get("huge"), "a big create: 201")
r = curl("POST", PODS, pod_json("huge", labels=labels), args=JSON)
t.ok(status_is(r, 409, "AlreadyExists"), "a big create again: 409")
o = curl("GET", PODS + "/huge")[1]
o["metadata"]["labels"]["new"] = "1"
r = curl("PUT", PODS + "/huge", json.dumps(o), args=JSON)
t.ok(r[0] == 200 and r[1]["metadata"]["labels"]["new"] == "1", "a big update: 200")
r = curl("PUT", PODS + "/huge", json.dumps(o), args=JSON)
t.ok(status_is(r, 409, "Conflict"), "a big stale update: 409")
r = curl("POST", PODS, pod_json("huge2", ns="other", labels=labels), args=JSON)
t.ok(status_is(r, 400, "BadRequest"), "a big body in another namespace: 400")
r = curl("POST", PODS + "?fieldValidation=Strict", pod_json("huge3", image="", labels=dict(labels, **{"x": "y"}),
                                                            extra={"bogus": 1}), args=JSON)
t.ok(status_is(r, 400, "BadRequest") and 'unknown field "bogus"' in r[1]["message"], "a big body, Strict: 400")
r = curl("POST", PODS, pod_json("huge3", image="", labels=labels), args=JSON)
t.ok(status_is(r, 422, "Invalid") and r[1]["details"]["causes"][0]["field"] == "spec.containers[0].image",
     "a big invalid pod: 422 with its cause")

# protobuf: "k8s\0" + runtime.Unknown{typeMeta{apiVersion, kind}, raw}
def field(n, b):
    v, out = len(b), b""
    while v >= 0x80:
        out += bytes([v & 0x7f | 0x80])
        v >>= 7
    return bytes([n << 3 | 2]) + out + bytes([v]) + b


raw = pb.Pod(metadata=meta("pbpod"), spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")]))
env = b"k8s\x00" + field(1, field(1, b"v1") + field(2, b"Pod")) + field(2, raw.SerializeToString())
r = curl("POST", PODS, env, args=["-H", "Content-Type: application/vnd.kubernetes.protobuf"])
t.ok(r[0] == 201 and r[1]["metadata"]["name"] == "pbpod" and get("pbpod"), "a protobuf body: 201 (%s)" % r[0])
r = curl("POST", PODS, b"k8s\x00\xff", args=["-H", "Content-Type: application/vnd.kubernetes.protobuf"])
t.ok(status_is(r, 400, "BadRequest"), "a malformed protobuf envelope: 400")
# Go's protobuf (client-go) writes every non-pointer field, zeros too; its JSON omits the
# omitempty ones. Both bodies must store the same object: the zeros of values with
# omitempty unset, a pointer's zero (terminationGracePeriodSeconds) and a value's
# without omitempty (containerPort) kept.
probe = dict(initialDelaySeconds=0, timeoutSeconds=0, periodSeconds=0, successThreshold=0, failureThreshold=0)
gz = pb.Pod(metadata=meta("pbzero"),
            spec=pb.PodSpec(hostNetwork=False, hostPID=False, hostIPC=False, terminationGracePeriodSeconds=0,
                            containers=[pb.Container(
                                name="c", image="busybox", stdin=False, stdinOnce=False, tty=False,
                                ports=[pb.ContainerPort(containerPort=80, hostPort=0, protocol="TCP")],
                                volumeMounts=[pb.VolumeMount(name="v", mountPath="/v", readOnly=False)],
                                readinessProbe=pb.Probe(handler=pb.ProbeHandler(
                                    tcpSocket=pb.TCPSocketAction(port=pb.IntOrString(type=0, intVal=80))),
                                    **probe))],
                            volumes=[pb.Volume(name="v", volumeSource=pb.VolumeSource(
                                emptyDir=pb.EmptyDirVolumeSource()))]))
env = b"k8s\x00" + field(1, field(1, b"v1") + field(2, b"Pod")) + field(2, gz.SerializeToString())
r = curl("POST", PODS, env, args=["-H", "Content-Type: application/vnd.kubernetes.protobuf"])
jz = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jsonzero"},
      "spec": {"terminationGracePeriodSeconds": 0, "volumes": [{"name": "v", "emptyDir": {}}],
               "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                               "volumeMounts": [{"name": "v", "mountPath": "/v"}],
                               "readinessProbe": {"tcpSocket": {"port": 80}}}]}}
r2 = curl("POST", PODS, json.dumps(jz), args=JSON)
sp, sj = curl("GET", PODS + "/pbzero")[1].get("spec", {}), curl("GET", PODS + "/jsonzero")[1].get("spec", {})
t.ok(r[0] == 201 and r2[0] == 201 and sp == sj,
     "a protobuf body with Go's zeros stores what its JSON does (%s | %s)" % (sp, sj))
t.ok("hostNetwork" not in sp and "stdin" not in sp.get("containers", [{}])[0]
     and "hostPort" not in sp.get("containers", [{}])[0].get("ports", [{}])[0]
     and sp.get("terminationGracePeriodSeconds") == 0
     and sp.get("containers", [{}])[0].get("ports", [{}])[0].get("containerPort") == 80,
     "omitempty values' zeros unset; a pointer's zero and containerPort kept")

# ---- fieldValidation ----
odd = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fv", "foo": 1},
                  "spec": {"bar": 2, "containers": [{"name": "c", "image": "i"}]}})
r = curl("POST", PODS + "?fieldValidation=Strict", odd, args=JSON)
t.ok(status_is(r, 400, "BadRequest", 'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
                                     'unknown field "metadata.foo", unknown field "spec.bar"'),
     "Strict: unknown fields refused, each named (%s)" % r[1])
code, body, hdrs = curl("POST", PODS, odd, args=JSON, headers=True)
t.ok(code == 201 and 'warning: 299 - "unknown field \\"metadata.foo\\""' in hdrs
     and 'warning: 299 - "unknown field \\"spec.bar\\""' in hdrs,
     "Warn (the default): created, a Warning header per unknown field")
code, body, hdrs = curl("POST", PODS + "?fieldValidation=Ignore", odd.replace('"fv"', '"fi"'), False, JSON,
                        headers=True)
t.ok(code == 201 and "warning" not in hdrs, "Ignore: created, no warnings")
r = curl("POST", PODS + "?fieldValidation=Loose", pod_json("fl"), args=JSON)
t.ok(status_is(r, 422, "Invalid") and r[1]["details"]["kind"] == "CreateOptions"
     and 'fieldValidation: Unsupported value: "Loose"' in r[1]["message"], "a bad fieldValidation: 422")
r = curl("POST", PODS + "?fieldManager=" + "m" * 129, pod_json("fm"), args=JSON)
t.ok(status_is(r, 422, "Invalid") and "fieldManager: Too long: may not be more than 128 bytes" in r[1]["message"],
     "fieldManager over 128 bytes: 422")
r = curl("POST", PODS + "?fieldManager=%01x", pod_json("fm"), args=JSON)
t.ok(status_is(r, 422, "Invalid") and "invalid character U+0001 (at position 0)" in r[1]["message"],
     "an unprintable fieldManager: 422")

# ---- dryRun ----
r = curl("POST", PODS + "?dryRun=All&fieldManager=kubectl-create", pod_json("dry"), args=JSON)
t.ok(r[0] == 201 and r[1]["metadata"]["name"] == "dry" and r[1]["metadata"].get("uid")
     and not r[1]["metadata"].get("resourceVersion") and get("dry") is None,
     "dryRun create: 201 with the object, nothing stored")
r = curl("POST", PODS + "?dryRun=All", pod_json("a-h2"), args=JSON)
t.ok(status_is(r, 409, "AlreadyExists"), "dryRun create of a taken name: 409")
r = curl("DELETE", PODS + "/a-h1?dryRun=All")
t.ok(r[0] == 200 and r[1]["metadata"]["name"] == "a-h1" and get("a-h1"), "dryRun delete: 200, still there")
r = curl("POST", PODS + "?dryRun=Some", pod_json("dry"), args=JSON)
t.ok(status_is(r, 422, "Invalid") and "dryRun: Unsupported value" in r[1]["message"], "dryRun=Some: 422")

# ---- update ----
cur = curl("GET", PODS + "/a-h2")[1]
cur["metadata"]["labels"]["v"] = "2"
cur["spec"]["containers"][0]["image"] = "busybox:2"
r = curl("PUT", PODS + "/a-h2", json.dumps(cur), args=JSON)
t.ok(r[0] == 200 and r[1]["metadata"]["labels"]["v"] == "2"
     and int(r[1]["metadata"]["resourceVersion"]) > int(cur["metadata"]["resourceVersion"])
     and get("a-h2").spec.containers[0].image == "busybox:2", "update with the current resourceVersion: 200")
ev = gw_until(lambda e: e.type == "MODIFIED" and e.object.metadata.name == "a-h2")
t.ok(ev and ev.object.metadata.name == "a-h2" and ev.object.metadata.labels["v"] == "2",
     "a REST update is seen by a gRPC watch")
r = curl("PUT", PODS + "/a-h2", json.dumps(cur), False, JSON)
t.ok(status_is(r, 409, "Conflict", 'Operation cannot be fulfilled on pods "a-h2": the object has been modified; '
                                   'please apply your changes to the latest version and try again'),
     "a stale resourceVersion: 409 Conflict")
r = curl("PUT", PODS + "/nope", pod_json("nope"), args=JSON)
t.ok(status_is(r, 404, "NotFound", 'pods "nope" not found'), "update of a missing pod: 404")
r = curl("PUT", PODS + "/a-h1", pod_json("a-h2"), args=JSON)
t.ok(status_is(r, 400, "BadRequest", "the name of the object (a-h2) does not match the name on the URL (a-h1)"),
     "a name other than the path's: 400")
r = curl("PUT", PODS + "/a-h1/status", json.dumps({"metadata": {"name": "a-h1"},
                                                  "status": {"phase": "Running", "podIP": "10.0.0.9"}}), args=JSON)
t.ok(r[0] == 200 and r[1]["status"]["phase"] == "Running" and get("a-h1").status.podIP == "10.0.0.9"
     and get("a-h1").spec.containers[0].image == "busybox", "pods/status: the status alone")
r = curl("POST", PODS + "/a-h1/binding", json.dumps({"apiVersion": "v1", "kind": "Binding",
                                                     "metadata": {"name": "a-h1"},
                                                     "target": {"kind": "Node", "name": "n1"}}), args=JSON)
t.ok(r[0] == 201 and r[1] == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201} and get("a-h1").spec.nodeName == "n1",
     "pods/binding: 201 Status Success, bound")
r = curl("POST", PODS + "/a-h1/binding", json.dumps({"target": {"kind": "Node", "name": "n2"}}), args=JSON)
t.ok(status_is(r, 409, "Conflict") and 'already assigned to node "n1"' in r[1]["message"], "bound again: 409")
r = curl("POST", "/api/v1/nodes/n1/binding", "{}", args=JSON)
t.is_(r[0], 404, "nodes have no binding: 404")
r = curl("PATCH", PODS + "/a-h1", "{}", args=["-H", "Content-Type: application/apply-patch+yaml"])
t.ok(r[0] == 422 and r[1].get("reason") == "Invalid" and "fieldManager: Required value" in
     r[1].get("message", ""), "server-side apply without fieldManager: 422 (t/36 tests the rest)")
r = curl("PATCH", PODS + "/a-h1", "{}", args=["-H", "Content-Type: text/plain"])
t.ok(status_is(r, 415, "UnsupportedMediaType") and "application/merge-patch+json" in r[1]["message"],
     "an unknown patch type: 415 naming the patch types")
r = curl("PATCH", PODS + "/nope", "{}", args=["-H", "Content-Type: application/merge-patch+json"])
t.ok(r[0] in (404, 415), "a patch of a missing pod: 404 (415 without the patch library)")

# ---- delete ----
r = curl("DELETE", PODS + "/a-h1", json.dumps({"preconditions": {"uid": "nope"}}), args=JSON)
t.ok(status_is(r, 409, "Conflict") and "Precondition failed: UID in precondition: nope" in r[1]["message"],
     "a failed precondition: 409")
r = curl("DELETE", PODS + "/a-h1", json.dumps({"propagationPolicy": "Sideways"}), args=JSON)
t.ok(status_is(r, 422, "Invalid") and r[1]["details"]["kind"] == "DeleteOptions", "a bad propagationPolicy: 422")
r = curl("DELETE", PODS + "/a-h1", json.dumps({"kind": "DeleteOptions", "apiVersion": "v1",
                                               "propagationPolicy": "Background"}), args=JSON)
t.ok(r[0] == 200 and r[1]["metadata"].get("deletionTimestamp") and r[1]["metadata"]["deletionGracePeriodSeconds"] == 30
     and get("a-h1"), "a bound pod: graceful, 200 with deletionTimestamp, still there")
r = curl("DELETE", PODS + "/a-h1?gracePeriodSeconds=0", h2=False)
t.ok(r[0] == 200 and r[1]["metadata"]["name"] == "a-h1" and get("a-h1") is None,
     "gracePeriodSeconds=0: gone, the object answered")
r = curl("DELETE", PODS + "/a-h1")
t.ok(status_is(r, 404, "NotFound", 'pods "a-h1" not found'), "delete of a missing pod: 404")
ev = gw_until(lambda e: e.type == "DELETED" and e.object.metadata.name == "a-h1")
t.ok(ev and ev.object.metadata.name == "a-h1", "a REST delete is seen by a gRPC watch")

# ---- deletecollection ----
api.call("Pods", "Create", pb.Pod(metadata=meta("o", "default", labels={"app": "other"}),
                                  spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")])))
r = curl("DELETE", PODS + "?labelSelector=app%3Da")
t.ok(r[0] == 200 and r[1].get("kind") == "PodList"
     and sorted(i["metadata"]["name"] for i in r[1]["items"]) == ["a-h2", "g"]
     and get("a-h2") is None and get("g") is None and get("o"),
     "deletecollection -l app=a: a PodList of what was deleted (%s)" % r[0])
r = curl("DELETE", PODS + "?fieldSelector=metadata.name%3Do&dryRun=All", h2=False)
t.ok(r[0] == 200 and [i["metadata"]["name"] for i in r[1]["items"]] == ["o"] and get("o"),
     "deletecollection dryRun: listed, not deleted")

code, m = curl("GET", "/metrics", h2=False)
t.ok('coracle_apiserver_rest_requests_total{verb="create",code="201"} ' in m
     and 'coracle_apiserver_rest_requests_total{verb="deletecollection",code="200"} ' in m,
     "/metrics counts the writes by verb and status")
r = curl("GET", PODS + "/o")
t.ok(r[0] == 200, "the server still serves")

# ---- TLS: the policy, HTTP/2 by ALPN, kubectl ----
port = ctest.free_port()
addr = "127.0.0.1:%d" % port
pki = os.path.join(c.dir, "pki")
c.certs(pki, "-s", addr)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write("tok-bob,bob,1001\n")
policy = os.path.join(c.dir, "policy")
shutil.copy(os.path.join(SRC, "conf", "policy"), policy)
with open(policy, "a") as f:
    f.write("bind view user:bob\n")
tls = c.start("apiserver-tls", [c.bin("coracle-apiserver"), "--listen", addr,
                                "--data-dir", os.path.join(c.dir, "data-tls"),
                                "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                                "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                                "--client-ca-file", os.path.join(pki, "ca.crt"),
                                "--token-auth-file", tokens, "--authorization-policy-file", policy])
https = "https://" + addr
cacert = ["--cacert", os.path.join(pki, "ca.crt")]
admin = cacert + ["--cert", os.path.join(pki, "admin.crt"), "--key", os.path.join(pki, "admin.key")]
if not c.wait_for(lambda: curl("GET", "", h2=False, args=cacert, url=https + "/readyz")[0] == 200,
                  timeout=ctest.DEADLINE, interval=0.1):
    t.bail("TLS apiserver not ready:\n" + tls.tail())
r = curl("POST", "", pod_json("b"), False, cacert + JSON + ["-H", "Authorization: Bearer tok-bob"],
         url=https + PODS)
t.ok(status_is(r, 403, "Forbidden") and 'User "bob" cannot create resource "pods"' in r[1]["message"],
     "a viewer may not create: 403 (%s)" % r[1].get("message"))
p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "-X", "POST",
                    "--data-binary", pod_json("tls")] + admin + JSON + [https + PODS],
                   capture_output=True, text=True)
t.is_(p.stdout, "2 201", "the admin over TLS: HTTP/2 by ALPN, 201")

kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if not os.access(kubectl, os.X_OK):
    t.skip("kubectl 1.32 not installed", 7)
    t.done()
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home, KUBECONFIG=os.path.join(pki, "admin.kubeconfig"))


def k(*args, stdin=None):
    p = subprocess.run([kubectl] + list(args), env=kenv, capture_output=True, text=True, timeout=60,
                       input=stdin)
    return p.returncode, p.stdout, p.stderr


manifest = os.path.join(c.dir, "kx.yaml")
with open(manifest, "w") as f:
    f.write("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kx\n  labels: {app: kx}\nspec:\n"
            "  containers:\n  - name: c\n    image: busybox\n")
# default validation: kubectl reads /openapi/v3 and leaves it to the server (fieldValidation=Strict)
rc, out, err = k("create", "-f", manifest)
t.ok(rc == 0 and out.strip() == "pod/kx created", "kubectl create -f: created (%r %r)" % (out, err))
rc, out, err = k("create", "-f", manifest)
t.ok(rc == 1 and err.strip() == 'Error from server (AlreadyExists): error when creating "%s": pods "kx" '
     'already exists' % manifest, "kubectl create -f again: AlreadyExists (%r)" % err)
odd = os.path.join(c.dir, "odd.yaml")
with open(odd, "w") as f:
    f.write(open(manifest).read().replace("name: kx", "name: odd").replace("spec:\n", "spec:\n  foo: 1\n"))
rc, out, err = k("create", "-f", odd)
t.ok(rc == 1 and err.strip() == 'Error from server (BadRequest): error when creating "%s": Pod in version "v1" '
     'cannot be handled as a Pod: strict decoding error: unknown field "spec.foo"' % odd,
     "kubectl create of an unknown field: the server's strict decoding error (%r)" % err)
rc, out, err = k("get", "po", "kx", "-o", "json")
o = json.loads(out) if rc == 0 else {}
o.get("spec", {}).get("containers", [{}])[0]["image"] = "busybox:2"
rc, out, err = k("replace", "-f", "-", stdin=json.dumps(o))
t.ok(rc == 0 and out.strip() == "pod/kx replaced", "kubectl replace -f: replaced (%r %r)" % (out, err))
rc, out, err = k("get", "po", "kx", "-o", "jsonpath={.spec.containers[0].image}")
t.is_(out, "busybox:2", "the replaced image is stored")

# delete waits for the graceful end: bind the pod, delete it, then end it as a kubelet would
curl("POST", "", json.dumps({"target": {"name": "n1"}}), False, admin + JSON, url=https + PODS + "/kx/binding")
kd = subprocess.Popen([kubectl, "delete", "pod", "kx"], env=kenv, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True)
c.on_teardown(kd.kill)
graceful = c.wait_for(lambda: curl("GET", "", h2=False, args=admin, url=https + PODS + "/kx")[1]
                      .get("metadata", {}).get("deletionTimestamp"), timeout=30)
time.sleep(0.5)
waiting = kd.poll() is None
curl("DELETE", "", None, False, admin, url=https + PODS + "/kx?gracePeriodSeconds=0")
out, err = kd.communicate(timeout=60)
t.ok(graceful and waiting and kd.returncode == 0 and out.strip() == 'pod "kx" deleted',
     "kubectl delete pod: waits for the graceful end (%r %r %r)" % (waiting, out, err))

for n in ("l1", "l2"):
    k("create", "-f", "-", stdin=open(manifest).read().replace("name: kx", "name: " + n))
rc, out, err = k("delete", "pods", "-l", "app=kx")
t.ok(rc == 0 and sorted(out.split("\n")[:2]) == ['pod "l1" deleted', 'pod "l2" deleted'],
     "kubectl delete pods -l (%r %r)" % (out, err))
# ---- reads not older than their resourceVersion ----
# (on etcd a replica may trail a revision the client saw through another
# apiserver: the read waits for it, then answers; past 3 s, 504 Timeout)
cur = int(curl("GET", PODS)[1]["metadata"]["resourceVersion"])
held = {}
def held_list():
    held["r"] = curl("GET", PODS + "?resourceVersion=%d" % (cur + 1))
ht = threading.Thread(target=held_list)
ht.start()
time.sleep(0.3)
t.ok(ht.is_alive(), "a list at the next resourceVersion waits for it")
curl("POST", PODS, pod_json("rvnext"), args=JSON)
ht.join(30)
hr = held.get("r", (0, {}))
t.ok(hr[0] == 200 and "rvnext" in [i["metadata"]["name"] for i in hr[1].get("items", [])]
     and int(hr[1]["metadata"]["resourceVersion"]) >= cur + 1,
     "... and answers once the store got there, with the write that made it")
r = curl("GET", PODS + "/rvnext?resourceVersion=%d" % (cur + 1000000))
t.ok(status_is(r, 504, "Timeout") and r[1]["message"].startswith("Too large resource version: %d, current: " % (cur + 1000000)),
     "a resourceVersion the store does not reach: 504 Timeout, as Kubernetes (%r)" % (r,))
# ---- concurrent creates and updates ----
# Their JSON answers are made while the batch is made durable, on a helper
# thread (store_op.prepare) when a batch holds more than one write: each must
# be the object as stored, as a later GET gives it.
import http.client


def burst(tag, n_threads=16, per=6):
    """n_threads clients on connections of their own: per creates each, then an update of
    each created pod. [(kind, answer, name)]."""
    out, lock = [], threading.Lock()

    def one(i):
        h = http.client.HTTPConnection(c.api_addr.split(":")[0], int(c.api_addr.split(":")[1]),
                                       timeout=30)
        got = []
        for j in range(per):
            h.request("POST", "/api/v1/namespaces/burst/pods", json.dumps(
                {"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"generateName": "%s-%d-" % (tag, i), "labels": {"n": str(j)}},
                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
                {"Content-Type": "application/json"})
            r = h.getresponse()
            got.append(("create", r.status, r.read()))
        for _, st, body in list(got):
            if st != 201:
                continue
            o = json.loads(body)
            o["metadata"]["labels"]["updated"] = "yes"
            h.request("PUT", "/api/v1/namespaces/burst/pods/" + o["metadata"]["name"],
                      json.dumps(o), {"Content-Type": "application/json"})
            r = h.getresponse()
            got.append(("update", r.status, r.read()))
        h.close()
        with lock:
            out.extend(got)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n_threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(60)
    return out


def batch_max():
    for l in (ctest.http_get(c.api_addr, "/metrics")[1] or "").splitlines():
        if l.startswith("coracle_store_batch_max "):
            return int(float(l.split()[1]))
    return 0


answers = []
for b in range(5):  # bounded: until some commit held more than one write
    answers += burst("b%d" % b)
    if batch_max() >= 2:
        break
bad, latest = [], {}
for kind, st, body in answers:
    o = json.loads(body) if st in (200, 201) else None
    if not o or not isinstance(o.get("metadata"), dict) or "name" not in o["metadata"]:
        bad.append((kind, st, body[:200]))
        continue
    latest[o["metadata"]["name"]] = o if kind == "update" else latest.get(o["metadata"]["name"], o)
for name, o in latest.items():
    # not older than the answer (on etcd a replica may trail the write it answered)
    r = curl("GET", "/api/v1/namespaces/burst/pods/%s?resourceVersion=%s" % (
        name, o["metadata"]["resourceVersion"]))
    if r[0] != 200 or r[1] != o:
        bad.append((name, r[0]))
t.ok(batch_max() >= 2 and len(answers) >= 16 * 12 and not bad and
     all(o["metadata"].get("labels", {}).get("updated") == "yes" for o in latest.values()),
     "%d concurrent creates and updates (commits of up to %d writes): each answer is the "
     "object as stored (%s)" % (len(answers), batch_max(), bad[:3]))

t.done()
