#!/usr/bin/python3
# The audit log: Kubernetes' audit policy (levels, users, verbs,
# resources, namespaces, nonResourceURLs, omitStages) deciding which
# gRPC and REST requests become audit.k8s.io/v1 Events, one JSON line
# each; events for allowed and refused calls; a Secret's data never in
# the log; rotation by size with the backups kept as --audit-log-maxbackup
# says; a bad policy refused at start; --audit-log-path - (stdout).
import base64
import glob
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta
import grpc

t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write('admintoken,admin,1,"system:masters"\nbobtoken,bob,2\nquiettoken,quiet,3,"system:masters"\n')
policy = os.path.join(c.dir, "policy")
with open(policy, "w") as f:
    f.write("role reader get,list pods\nbind reader user:bob\n")
audit_policy = os.path.join(c.dir, "audit-policy.yaml")
with open(audit_policy, "w") as f:
    f.write("""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: [quiet]
- level: None
  nonResourceURLs: [/version, /healthz*]
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: RequestResponse
  verbs: [create]
  resources: [{group: "", resources: [configmaps]}]
  namespaces: [default]
- level: Metadata
  omitStages: [ResponseComplete]
  resources: [{group: apps}]
- level: Metadata
""")
log = os.path.join(c.dir, "audit", "audit.log")
os.makedirs(os.path.dirname(log))
api = c.start_apiserver("--token-auth-file", tokens, "--authorization-policy-file", policy,
                        "--audit-policy-file", audit_policy, "--audit-log-path", log,
                        "--audit-log-maxsize", "1", "--audit-log-maxbackup", "2")
base = "http://" + c.api_addr


def call(tok, svc, method, req):
    rt = api._resp_type(svc, method)
    fn = api.channel.unary_unary("/coracle.v1.%s/%s" % (svc, method), request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=rt.FromString)
    try:
        return fn(req, timeout=ctest.DEADLINE, metadata=[("authorization", "Bearer " + tok)]), None
    except grpc.RpcError as e:
        return None, (e.code(), e.details())


def rest(tok, method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=body and json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json",
                                          "User-Agent": "audit-test/1"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def events():
    out = []
    for p in sorted(glob.glob(os.path.join(os.path.dirname(log), "*"))):
        with open(p) as f:
            out += [json.loads(l) for l in f if l.strip()]
    return out


def find(pred, count=1, timeout=10):
    """The events matching pred, once count of them are there (the log is flushed in batches)."""
    deadline = time.time() + timeout
    while True:
        ev = [e for e in events() if pred(e)]
        if len(ev) >= count or time.time() > deadline:
            return ev
        time.sleep(0.05)


SECRET = "s3cr3t-value-never-logged"
b64 = base64.b64encode(SECRET.encode()).decode()
r, e = call("admintoken", "Secrets", "Create", pb.Secret(metadata=meta("s1"), data={"k": SECRET.encode()}))
t.is_(e, None, "admin creates a Secret over gRPC")
st = rest("admintoken", "POST", "/api/v1/namespaces/default/secrets",
          {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2"}, "data": {"k": b64},
           "stringData": {"j": SECRET}})
t.is_(st, 201, "and one over REST")
ev = find(lambda e: e.get("objectRef", {}).get("resource") == "secrets" and e["verb"] == "create", 2)
t.ok(len(ev) == 2 and all(e["level"] == "Metadata" and e["stage"] == "ResponseComplete" for e in ev)
     and {e["objectRef"].get("name") for e in ev} == {"s1", "s2"},
     "both creates logged at Metadata, ResponseComplete, with the Secret's name (%s)" % ev)
st = rest("admintoken", "GET", "/api/v1/namespaces/default/secrets/s2")
find(lambda e: e.get("objectRef", {}).get("name") == "s2" and e["verb"] == "get")
text = "".join(open(p).read() for p in glob.glob(os.path.join(os.path.dirname(log), "*")))
t.ok(SECRET not in text and b64 not in text and '"data"' not in text,
     "the Secret's data is nowhere in the log, nor in its base64")

# an allowed REST list, and its event's fields
st = rest("admintoken", "GET", "/api/v1/namespaces/default/pods?limit=5")
ev = find(lambda e: e.get("requestURI") == "/api/v1/namespaces/default/pods?limit=5")
e0 = ev[0] if ev else {}
t.ok(e0.get("kind") == "Event" and e0.get("apiVersion") == "audit.k8s.io/v1" and e0.get("verb") == "list"
     and e0.get("user", {}).get("username") == "admin" and "system:masters" in e0.get("user", {}).get("groups", [])
     and e0.get("sourceIPs") == ["127.0.0.1"] and e0.get("userAgent") == "audit-test/1"
     and e0.get("objectRef") == {"resource": "pods", "namespace": "default", "apiVersion": "v1"}
     and e0.get("responseStatus", {}).get("code") == 200
     and re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", e0.get("auditID", ""))
     and e0.get("requestReceivedTimestamp", "") <= e0.get("stageTimestamp", ""),
     "REST list: kind, verb, user, sourceIPs, userAgent, objectRef, code, auditID, timestamps (%s)" % e0)

# refused calls, both APIs
r, e = call("bobtoken", "ConfigMaps", "Get", pb.GetRequest(name="x", namespace="default"))
t.is_(e and e[0], grpc.StatusCode.PERMISSION_DENIED, "bob may not get configmaps (gRPC)")
ev = find(lambda e: e.get("user", {}).get("username") == "bob" and e.get("objectRef", {}).get("resource") == "configmaps")
t.ok(len(ev) == 1 and ev[0]["responseStatus"]["code"] == 403 and ev[0]["responseStatus"].get("reason") == "Forbidden"
     and ev[0]["annotations"]["authorization.k8s.io/decision"] == "forbid" and ev[0]["objectRef"].get("name") == "x"
     and ev[0]["requestURI"] == "/coracle.v1.ConfigMaps/Get" and ev[0]["verb"] == "get",
     "its event: 403 Forbidden, decision forbid, the object named (%s)" % ev)
st = rest("bobtoken", "DELETE", "/api/v1/namespaces/default/pods/p")
ev = find(lambda e: e.get("user", {}).get("username") == "bob" and e["verb"] == "delete")
t.ok(st == 403 and len(ev) == 1 and ev[0]["responseStatus"]["code"] == 403
     and ev[0]["objectRef"] == {"resource": "pods", "namespace": "default", "name": "p", "apiVersion": "v1"},
     "a refused REST delete: 403 and its event (%s)" % ev)
r, e = call("bobtoken", "Pods", "List", pb.ListRequest(namespace="default"))
ev = find(lambda e: e.get("user", {}).get("username") == "bob" and e["verb"] == "list")
t.ok(e is None and len(ev) == 1 and ev[0]["responseStatus"]["code"] == 200
     and ev[0]["annotations"]["authorization.k8s.io/decision"] == "allow", "an allowed gRPC list: 200, allow")

# levels: users None, nonResourceURLs None, a namespaced rule, omitStages
call("quiettoken", "Pods", "List", pb.ListRequest())
rest("quiettoken", "GET", "/api/v1/pods")
rest("admintoken", "GET", "/version")
rest("admintoken", "GET", "/apis")
call("admintoken", "ConfigMaps", "Create", pb.ConfigMap(metadata=meta("c1"), data={"a": "b"}))
call("admintoken", "ConfigMaps", "Create", pb.ConfigMap(metadata=meta("c2", ns="kube-system"), data={"a": "b"}))
call("admintoken", "Deployments", "List", pb.ListRequest())
rest("admintoken", "GET", "/apis/apps/v1/deployments")
ev = find(lambda e: e.get("requestURI") == "/apis")
t.ok(len(ev) == 1 and ev[0]["verb"] == "get" and "objectRef" not in ev[0] and ev[0]["level"] == "Metadata",
     "non-resource /apis: logged, verb get, no objectRef")
evs = events()
t.ok(not [e for e in evs if e["user"].get("username") == "quiet"], "user quiet: level None, no event")
t.ok(not [e for e in evs if e["requestURI"] == "/version"], "nonResourceURLs /version: level None")
cm = {e["objectRef"]["name"]: e["level"] for e in evs if e.get("objectRef", {}).get("resource") == "configmaps"
      and e["verb"] == "create"}
t.is_(cm, {"c1": "RequestResponse", "c2": "Metadata"}, "configmap creates: default by the namespaced rule, "
      "kube-system by the catch-all")
t.ok(not [e for e in evs if e.get("objectRef", {}).get("apiGroup") == "apps"],
     "apps: omitStages ResponseComplete, no event (gRPC and REST)")

# rotation: past 1 MB the log is renamed audit-<time>.log; two backups kept
get = api.channel.unary_unary("/coracle.v1.Pods/Get", request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=pb.Pod.FromString)
n, seen = 0, set()
while len(seen) < 3 and n < 20000:  # three rotations: the first backup is gone by then
    try:
        get(pb.GetRequest(name="missing-%d" % n, namespace="default"), timeout=ctest.DEADLINE,
            metadata=[("authorization", "Bearer admintoken")])
    except grpc.RpcError:
        pass
    n += 1
    if n % 500 == 0:
        time.sleep(0.3)  # a flush (every 200 ms)
        seen |= set(glob.glob(os.path.join(os.path.dirname(log), "audit-*.log")))
time.sleep(0.5)
backups = sorted(glob.glob(os.path.join(os.path.dirname(log), "audit-*.log")))
names_ok = all(re.match(r"audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$", os.path.basename(b)) for b in backups)
t.ok(len(seen) >= 3 and len(backups) == 2 and names_ok, "after %d calls, 3 rotations: 2 backups kept (--audit-log-maxbackup 2), "
     "lumberjack's names (%s)" % (n, [os.path.basename(b) for b in backups]))
sizes = [os.path.getsize(b) for b in backups]
t.ok(all(s <= 1 << 20 for s in sizes) and os.path.getsize(log) <= 1 << 20 and all(s > 1 << 19 for s in sizes),
     "each file at most 1 MB, backups more than half full (a batch at a time) (%s, %d)" % (sizes, os.path.getsize(log)))
t.ok(oct(os.stat(log).st_mode & 0o777) == "0o600", "the log is 0600")
lines = [l for b in backups + [log] for l in open(b)]
t.ok(all(l.endswith("}\n") and json.loads(l)["kind"] == "Event" for l in lines), "every line a whole Event")

# a bad policy is refused at start, naming the field
bad = os.path.join(c.dir, "bad.yaml")
with open(bad, "w") as f:
    f.write("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n")
p = subprocess.run([c.bin("coracle-apiserver"), "--listen", "127.0.0.1:%d" % ctest.free_port(),
                    "--data-dir", os.path.join(c.dir, "d2"), "--audit-policy-file", bad,
                    "--audit-log-path", os.path.join(c.dir, "a2.log")], capture_output=True, text=True, timeout=60)
t.ok(p.returncode != 0 and "rules[0].level: Unsupported value" in p.stderr,
     "a level not in None/Metadata/Request/RequestResponse: refused at start (%s)" % p.stderr.strip()[-200:])

# --audit-log-path -: stdout
port2 = ctest.free_port()
d2 = c.start("apiserver-stdout", [c.bin("coracle-apiserver"), "--listen", "127.0.0.1:%d" % port2,
                                  "--data-dir", os.path.join(c.dir, "d3"), "--audit-policy-file", audit_policy,
                                  "--audit-log-path", "-"])
c.wait_ready("127.0.0.1:%d" % port2, d2)
ctest.http_get("127.0.0.1:%d" % port2, "/api/v1/namespaces")
t.ok(c.wait_for(lambda: '"requestURI":"/api/v1/namespaces"' in open(d2.log_path).read(), timeout=10),
     "--audit-log-path -: the events on stdout")
t.done()
