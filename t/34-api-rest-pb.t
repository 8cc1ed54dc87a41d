#!/usr/bin/python3
# The REST API in Kubernetes' protobuf (application/vnd.kubernetes.protobuf):
# get, list and watch frames, byte for byte against the gRPC answers (the
# envelope's raw is the gRPC Get's bytes); the same object over gRPC, REST
# JSON and REST protobuf; Status errors in protobuf for protobuf-only
# clients; WatchList (sendInitialEvents, the initial-events-end bookmark,
# Kubernetes' refusals) in JSON and protobuf; Table watches (columns on the
# first event only). Over h2c (curl --http2-prior-knowledge) and HTTP/1.1;
# then stock kubectl (1.32) describe, which asks for protobuf.
import json
import os
import select
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod

t = ctest.Tap()
c = ctest.Cluster(t)
if not shutil.which("curl"):
    t.skip_all("curl not installed")
api = c.start_apiserver("--compact-keep", "20", "--bookmark-interval", "1")
pb = c.pb
base = "http://" + c.api_addr
PB = "application/vnd.kubernetes.protobuf"
TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")


def curl(path, accept=None, h2=True):
    """GET with curl; returns (HTTP status, content-type, body bytes)."""
    argv = ["curl", "-s", "--max-time", "10", "-o", "-", "-D", "/dev/stderr"]
    if h2:
        argv.append("--http2-prior-knowledge")
    if accept:
        argv += ["-H", "Accept: " + accept]
    p = subprocess.run(argv + [base + path], capture_output=True)
    code, ctype = 0, ""
    for line in p.stderr.decode("latin-1").splitlines():
        if line.startswith("HTTP/"):
            code = int(line.split()[1])
        elif line.lower().startswith("content-type:"):
            ctype = line.split(":", 1)[1].strip()
    return code, ctype, p.stdout


def fields(b):
    """A protobuf message's fields: [(number, value)] (bytes or int)."""
    out, i = [], 0

    def varint():
        nonlocal i
        v = s = 0
        while True:
            x = b[i]
            i += 1
            v |= (x & 0x7f) << s
            s += 7
            if not x & 0x80:
                return v
    while i < len(b):
        tag = varint()
        wt = tag & 7
        if wt == 0:
            out.append((tag >> 3, varint()))
        elif wt == 2:
            n = varint()
            out.append((tag >> 3, b[i:i + n]))
            i += n
        else:
            raise ValueError("wire type %d" % wt)
    return out


def field(b, n):
    v = [x for f, x in fields(b) if f == n]
    return v[-1] if v else None


def unenvelope(b):
    """k8s\\0 + runtime.Unknown -> (apiVersion, kind, raw, [(number, value)])."""
    if b[:4] != b"k8s\x00":
        return None, None, None, []
    u = fields(b[4:])
    tm = field(b[4:], 1) or b""
    return (field(tm, 1) or b"").decode(), (field(tm, 2) or b"").decode(), field(b[4:], 2), u


def grpc_raw(service, method, req):
    """A unary gRPC call's answer as its bytes."""
    fn = api.channel.unary_unary("/coracle.v1.%s/%s" % (service, method),
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=lambda b: b)
    return fn(req, timeout=ctest.DEADLINE)


class Stream:
    """curl -N on a watch URL: bytes as they come."""

    def __init__(self, path, accept=None, h2=True):
        argv = ["curl", "-s", "-N", "--max-time", "60"] + (["--http2-prior-knowledge"] if h2 else [])
        if accept:
            argv += ["-H", "Accept: " + accept]
        self.p = subprocess.Popen(argv + [base + path], stdout=subprocess.PIPE)
        self.buf = b""
        c.on_teardown(self.stop)

    def need(self, n, timeout=15):
        end = time.time() + timeout
        while len(self.buf) < n and time.time() < end:
            if select.select([self.p.stdout], [], [], max(0, end - time.time()))[0]:
                d = os.read(self.p.stdout.fileno(), 65536)
                if not d:
                    break
                self.buf += d
        if len(self.buf) < n:
            return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        """A protobuf watch frame: (type, apiVersion, kind, raw), or None."""
        h = self.need(4)
        body = self.need(int.from_bytes(h, "big")) if h else None
        if body is None:
            return None
        ev = field(body, 2) or b""
        av, kind, raw, _ = unenvelope(field(ev, 1) or b"")
        return (field(body, 1) or b"").decode(), av, kind, raw

    def line(self, timeout=15):
        """A JSON watch line, decoded, or None."""
        end = time.time() + timeout
        while b"\n" not in self.buf and time.time() < end:
            if not select.select([self.p.stdout], [], [], max(0, end - time.time()))[0]:
                break
            d = os.read(self.p.stdout.fileno(), 65536)
            if not d:
                break
            self.buf += d
        if b"\n" not in self.buf:
            return None
        ln, _, self.buf = self.buf.partition(b"\n")
        return json.loads(ln)

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


# ---- objects, made over gRPC ----
api.call("Pods", "Create", pb.Pod(metadata=meta("web", "default", labels={"app": "web"}),
                                  spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")])))
api.call("Pods", "Create", simple_pod("db"))
api.call("Leases", "Create", pb.Lease(metadata=meta("n1", "kube-node-lease")))

# ---- get: the same object three ways ----
graw = grpc_raw("Pods", "Get", pb.GetRequest(namespace="default", name="web"))
for h2, proto in ((True, "h2"), (False, "HTTP/1.1")):
    code, ctype, body = curl("/api/v1/namespaces/default/pods/web", PB, h2)
    av, kind, raw, u = unenvelope(body)
    t.ok(code == 200 and ctype == PB, "%s: protobuf get: 200 %s" % (proto, ctype))
    t.ok(av == "v1" and kind == "Pod" and [f for f, _ in u] == [1, 2, 3, 4]
         and field(body[4:], 3) == b"" and field(body[4:], 4) == b"",
         "%s: the envelope: typeMeta {v1, Pod}, raw, empty contentEncoding and contentType" % proto)
    t.ok(raw == graw, "%s: the raw is byte-identical to the gRPC Get answer (%d bytes)" % (proto, len(graw)))
obj = pb.Pod.FromString(raw)
code, _, body = curl("/api/v1/namespaces/default/pods/web")
j = json.loads(body)
t.ok(j["metadata"]["uid"] == obj.metadata.uid and j["metadata"]["resourceVersion"] == obj.metadata.resourceVersion
     and j["metadata"]["labels"] == dict(obj.metadata.labels)
     and j["metadata"]["creationTimestamp"] and obj.metadata.creationTimestamp.seconds
     and j["spec"]["containers"][0]["image"] == obj.spec.containers[0].image,
     "REST JSON and REST protobuf: the same object (uid, resourceVersion, labels, image)")
rc, out, _ = c.ctl("get", "po", "web", "-o", "json")
t.is_(j, json.loads(out) if rc == 0 else None, "and the same as gRPC's (coraclectl -o json)")
code, ctype, body = curl("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", PB)
av, kind, raw, _ = unenvelope(body)
t.ok(av == "coordination.k8s.io/v1" and kind == "Lease"
     and raw == grpc_raw("Leases", "Get", pb.GetRequest(namespace="kube-node-lease", name="n1")),
     "a lease: its group's apiVersion, the gRPC bytes")
code, ctype, body = curl("/api/v1/namespaces/default/pods/web", PB + ", application/json")
t.ok(ctype == PB and unenvelope(body)[1] == "Pod", "Accept: protobuf, json: protobuf (the first acceptable)")
code, ctype, body = curl("/api/v1/namespaces/default/pods/web", "application/json;q=0.5, " + PB)
t.ok(ctype == PB, "a lower q for JSON: protobuf")
code, ctype, body = curl("/api/v1/namespaces/default/pods/web", "*/*")
t.ok(ctype == "application/json" and json.loads(body)["kind"] == "Pod", "*/*: JSON")

# ---- list ----
code, ctype, body = curl("/api/v1/namespaces/default/pods", PB)
av, kind, raw, _ = unenvelope(body)
lst = pb.PodList.FromString(raw or b"")
glist = api.call("Pods", "List", pb.ListRequest(namespace="default"))
t.ok(code == 200 and ctype == PB and av == "v1" and kind == "PodList", "protobuf list: a PodList envelope")
t.ok(sorted(i.metadata.name for i in lst.items) == ["db", "web"]
     and [i.SerializeToString() for i in lst.items] == [i.SerializeToString() for i in glist.items]
     and lst.metadata.resourceVersion.isdigit(), "its items are the gRPC List's, ListMeta's resourceVersion")
list_rv = lst.metadata.resourceVersion
code, ctype, body = curl("/api/v1/pods?limit=1", PB)
lst = pb.PodList.FromString(unenvelope(body)[2] or b"")
t.ok(len(lst.items) == 1 and lst.metadata.resourceVersion == list_rv and getattr(lst.metadata, "continue"),
     "limit=1: one item and a continue token")

# ---- errors ----
code, ctype, body = curl("/api/v1/namespaces/default/pods/x", PB)
av, kind, raw, _ = unenvelope(body)
st = raw or b""
t.ok(code == 404 and ctype == PB and av == "v1" and kind == "Status"
     and field(st, 4) == b"NotFound" and field(st, 3) == b'pods "x" not found' and field(st, 6) == 404
     and field(field(st, 5) or b"", 1) == b"x", "a protobuf-only client: the Status in protobuf")
code, ctype, body = curl("/api/v1/namespaces/default/pods/x", PB + ", application/json")
t.ok(code == 404 and ctype == "application/json" and json.loads(body)["reason"] == "NotFound",
     "a client that takes JSON too: the Status in JSON")


# ---- watch in protobuf ----
def create_get(name):
    api.call("Pods", "Create", simple_pod(name))
    return grpc_raw("Pods", "Get", pb.GetRequest(namespace="default", name=name))


for h2, proto in ((True, "h2"), (False, "HTTP/1.1")):
    w = Stream("/api/v1/namespaces/default/pods?watch=1&resourceVersion=%s" % list_rv, PB, h2)
    time.sleep(0.3)
    name = "pb-" + ("h2" if h2 else "h1")
    want = create_get(name)
    f = w.frame()
    t.ok(f and f[:3] == ("ADDED", "v1", "Pod") and f[3] == want,
         "%s: a protobuf watch frame: ADDED, the envelope, the gRPC bytes" % proto)
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=name, gracePeriodSeconds=0))
    f = w.frame()
    t.ok(f and f[0] == "DELETED" and pb.Pod.FromString(f[3]).metadata.name == name, "%s: DELETED" % proto)
    list_rv = pb.PodList.FromString(unenvelope(curl("/api/v1/pods", PB)[2])[2]).metadata.resourceVersion
    w.stop()
p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-D", "-", "-o", "/dev/null", "-H", "Accept: " + PB,
                    base + "/api/v1/pods?watch=1&timeoutSeconds=1"], capture_output=True, text=True)
t.like(p.stdout.lower(), "content-type: application/vnd.kubernetes.protobuf;stream=watch",
       "the watch answer's content-type")
w = Stream("/api/v1/namespaces/default/pods?watch=1&resourceVersion=%s&allowWatchBookmarks=true" % list_rv, PB)
f = w.frame()
t.ok(f and f[0] == "BOOKMARK" and f[2] == "Pod" and pb.Pod.FromString(f[3]).metadata.resourceVersion.isdigit(),
     "a protobuf BOOKMARK: a Pod with its resourceVersion")
w.stop()

# ---- WatchList ----
WL = "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
for rv in ("", "&resourceVersion=" + list_rv, "&resourceVersion=0"):
    w = Stream("/api/v1/namespaces/default/pods?" + WL + rv)
    evs = [w.line(), w.line(), w.line()]
    t.ok([e and e["type"] for e in evs] == ["ADDED", "ADDED", "BOOKMARK"]
         and sorted(e["object"]["metadata"]["name"] for e in evs[:2]) == ["db", "web"],
         "WatchList%s: the state as ADDED, then a BOOKMARK (%s)" % (rv, [e and e["type"] for e in evs]))
    bm = evs[2]["object"] if evs[2] else {}
    t.ok(bm.get("kind") == "Pod" and bm["metadata"].get("annotations") == {"k8s.io/initial-events-end": "true"}
         and int(bm["metadata"]["resourceVersion"]) >= int(list_rv),
         "the bookmark: k8s.io/initial-events-end, a resourceVersion at least as fresh (%s)" % bm)
    if rv == "":
        api.call("Pods", "Create", simple_pod("live"))
        e = w.line()
        while e and e["type"] == "BOOKMARK":  # the periodic ones (--bookmark-interval 1)
            e = w.line()
        t.ok(e and e["type"] == "ADDED" and e["object"]["metadata"]["name"] == "live", "then live events")
        api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="live", gracePeriodSeconds=0))
    w.stop()
w = Stream("/api/v1/namespaces/default/pods?watch=1&resourceVersion=0&allowWatchBookmarks=true")
evs = [w.line(), w.line(), w.line()]
t.ok([e and e["type"] for e in evs] == ["ADDED", "ADDED", "BOOKMARK"]
     and evs[2]["object"]["metadata"].get("annotations") == {"k8s.io/initial-events-end": "true"},
     "a watch from 0 with bookmarks is a WatchList, as Kubernetes defaults it")
w.stop()
w = Stream("/api/v1/namespaces/default/pods?" + WL, PB)
fs = [w.frame() for _ in range(3)]
t.ok([f and f[0] for f in fs] == ["ADDED", "ADDED", "BOOKMARK"]
     and dict(pb.Pod.FromString(fs[2][3]).metadata.annotations)
     == {"k8s.io/initial-events-end": "true"}, "WatchList over protobuf: the same, the bookmark annotated")
w.stop()
w = Stream("/api/v1/namespaces/default/pods?watch=1&sendInitialEvents=false&resourceVersionMatch=NotOlderThan")
time.sleep(0.3)
api.call("Pods", "Create", simple_pod("later"))
e = w.line()
t.ok(e and e["type"] == "ADDED" and e["object"]["metadata"]["name"] == "later",
     "sendInitialEvents=false without a resourceVersion: from now on, no initial state")
w.stop()

code, _, body = curl("/api/v1/pods?watch=1&sendInitialEvents=true")
s = json.loads(body)
t.ok(code == 422 and s.get("reason") == "Invalid" and s.get("message") ==
     'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires '
     'setting resourceVersionMatch to NotOlderThan'
     and s["details"]["causes"] == [{"reason": "FieldValueForbidden", "field": "resourceVersionMatch",
                                     "message": "Forbidden: sendInitialEvents requires setting "
                                                "resourceVersionMatch to NotOlderThan"}],
     "sendInitialEvents without resourceVersionMatch: 422, Kubernetes' message and cause")
code, _, body = curl("/api/v1/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=Exact")
s = json.loads(body)
t.is_(s.get("message"), 'ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: Forbidden: '
      'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, resourceVersionMatch: '
      'Unsupported value: "Exact": supported values: "NotOlderThan"]', "resourceVersionMatch=Exact: both errors")
code, _, body = curl("/api/v1/pods?watch=1&resourceVersionMatch=NotOlderThan")
t.ok(code == 422 and "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
     in json.loads(body).get("message", ""), "resourceVersionMatch alone on a watch: 422")
code, _, body = curl("/api/v1/pods?sendInitialEvents=true")
t.ok(code == 422 and "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"
     in json.loads(body).get("message", ""), "sendInitialEvents on a list: 422")
code, _, body = curl("/api/v1/pods?" + WL + "&resourceVersion=999999")
s = json.loads(body)
t.ok(code == 504 and s.get("reason") == "Timeout" and s.get("message", "").startswith(
    "Too large resource version: 999999, current: "), "WatchList from a future resourceVersion: 504 (%s)" % s)

# ---- Table watch: the columns on the first event only ----
w = Stream("/api/v1/namespaces/default/pods?watch=1", TABLE_ACCEPT)
evs = [w.line() for _ in range(3)]
t.ok(all(e and e["object"]["kind"] == "Table" for e in evs)
     and [len(e["object"].get("columnDefinitions") or []) > 0 for e in evs] == [True, False, False],
     "a Table watch: columnDefinitions in the first event, none after")
w.stop()

# ---- Expired in protobuf: an ERROR frame with a Status ----
for i in range(30):
    p = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="web"))
    p.metadata.labels["n"] = str(i)
    api.call("Pods", "Update", p)
w = Stream("/api/v1/pods?watch=1&resourceVersion=1", PB)
f = w.frame()
t.ok(f and f[0] == "ERROR" and f[2] == "Status" and field(f[3], 4) == b"Expired" and field(f[3], 6) == 410,
     "too old resourceVersion over protobuf: an ERROR frame, Status Expired 410")
w.stop()
code, ctype, body = curl("/api/v1/pods?watch=1&resourceVersion=x", PB)
t.ok(code == 400 and ctype == PB and field(unenvelope(body)[2] or b"", 4) == b"BadRequest",
     "a bad resourceVersion, protobuf only: a 400 Status in protobuf")

# ---- a stock client that asks for protobuf: kubectl describe (pod, then its events) ----
kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if not os.access(kubectl, os.X_OK):
    t.skip("kubectl 1.32 not installed", 2)
    t.done()
kc = os.path.join(c.dir, "kubeconfig")
with open(kc, "w") as f:
    f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"%s\"}\n"
            "contexts:\n- name: c\n  context: {cluster: c}\ncurrent-context: c\n" % base)
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home, KUBECONFIG=kc)
uid = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="web")).metadata.uid
ts = int(time.time())
api.call("Events", "Create", pb.Event(
    metadata=meta("web.1", "default"), reason="Scheduled", message="Successfully assigned default/web to n1",
    involvedObject=pb.ObjectReference(kind="Pod", namespace="default", name="web", uid=uid),
    source=pb.EventSource(component="coracle-scheduler"), type="Normal", count=1,
    firstTimestamp=pb.Time(seconds=ts), lastTimestamp=pb.Time(seconds=ts)))
p = subprocess.run([kubectl, "describe", "pod", "web", "-v=8"], env=kenv, capture_output=True, text=True,
                   timeout=60)
t.ok(p.stderr.count("Content-Type: application/vnd.kubernetes.protobuf") == 2,
     "kubectl describe: the pod and the events answered in protobuf")
lines = [ln.split() for ln in p.stdout.splitlines()]
t.ok(p.returncode == 0 and ["Name:", "web"] in lines and ["Labels:", "app=web"] in lines
     and ["Image:", "busybox"] in lines and lines[-1][:2] == ["Normal", "Scheduled"]
     and " ".join(lines[-1]).endswith("coracle-scheduler Successfully assigned default/web to n1"),
     "and prints them: name, labels, image, the event (%r)" % p.stdout[-300:])
t.done()
