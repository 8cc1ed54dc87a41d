#!/usr/bin/python3
# coracle-backup between LMDB and etcd: an apiserver on LMDB with pods,
# nodes, leases and events (labels, status, a binding, managedFields from
# REST writes) is exported, while it serves, to a real etcd over TLS;
# etcdctl shows the objects under /registry in Kubernetes' protobuf
# envelope without resourceVersion; an apiserver on --storage-backend
# etcd3 serves every object with the same bytes (REST and gRPC) apart from
# resourceVersion. An export again finds the same objects there; one
# changed in etcd is reported and left, and --overwrite replaces it. Then
# etcd -> a new LMDB directory and an apiserver on it: the same objects,
# resourceVersions kept, the revision etcd's. A directory with a store is
# refused; an etcd that is down is reported naming its endpoints.
import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import etcdutil
import schedutil

t = ctest.Tap()
why = etcdutil.available()
if why:
    t.skip_all(why)
c = ctest.Cluster(t, "75-ops-backup-etcd")
pb = ctest.pb
BK = c.bin("coracle-backup")
ec = etcdutil.EtcdCluster(c, members=1, tls=True, name="target")  # not store_args()'s "etcd"
TLS = ["--etcd-cafile", ec.ca, "--etcd-certfile", ec.client_cert, "--etcd-keyfile", ec.client_key]
ETCD = ["--etcd-servers", ",".join(ec.endpoints)] + TLS
KINDS = {"Pods": "/api/v1/pods", "Nodes": "/api/v1/nodes", "Events": "/api/v1/events",
         "Leases": "/apis/coordination.k8s.io/v1/leases"}


def backup(*args, timeout=60):
    p = subprocess.run([BK] + list(args), capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def rest(addr, method, path, body=None, ctype="application/json"):
    req = urllib.request.Request("http://%s%s" % (addr, path), method=method,
                                 data=body.encode() if body is not None else None,
                                 headers={"Content-Type": ctype} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


# An apiserver on etcd elects one of several for node lifecycle and event
# expiry: those Leases and their LeaderElection events are its own, not copied.
OWN_LEASES = {"node-lifecycle-controller", "coracle-apiserver-event-ttl"}


def own_election(kind, o):
    if kind == "Leases":
        return o.metadata.namespace == "kube-system" and o.metadata.name in OWN_LEASES
    return (kind == "Events" and o.involvedObject.kind == "Lease"
            and o.involvedObject.name in OWN_LEASES)


def state(api, addr):
    """{kind: {(ns, name): (gRPC bytes, REST JSON)}}, resourceVersion left out, and the
    resourceVersions {(kind, ns, name): rv} and the Pods list's revision."""
    st, rvs, rev = {}, {}, None
    for k, path in KINDS.items():
        lst = api.call(k, "List", pb.ListRequest())
        if k == "Pods":
            rev = int(lst.metadata.resourceVersion)
        objs = {}
        for o in lst.items:
            if own_election(k, o):
                continue
            key = (o.metadata.namespace, o.metadata.name)
            rvs[(k,) + key] = o.metadata.resourceVersion
            o.metadata.ClearField("resourceVersion")
            objs[key] = [o.SerializeToString(deterministic=True), None]
        code, body = rest(addr, "GET", path)
        for o in body["items"] if code == 200 else []:
            m = o["metadata"]
            m.pop("resourceVersion", None)
            key = (m.get("namespace", ""), m["name"])
            if key in objs:
                objs[key][1] = json.dumps(o, sort_keys=True)
        st[k] = {key: tuple(v) for key, v in objs.items()}
    return st, rvs, rev


def fields(buf):
    """Top-level length-delimited protobuf fields: {number: bytes} (the last wins)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = varint(buf, i)
        if key & 7 == 2:
            n, i = varint(buf, i)
            out[key >> 3] = buf[i:i + n]
            i += n
        elif key & 7 == 0:
            _, i = varint(buf, i)
        else:
            raise ValueError("wire type %d" % (key & 7))
    return out


def varint(buf, i):
    v = s = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7f) << s
        s += 7
        if b < 0x80:
            return v, i


# ---- a single-node install: objects of every kind, some written through REST ----
data = os.path.join(c.dir, "data")
api = c.start_apiserver("--storage-backend", "lmdb", data_dir=data)
addr1 = c.api_addr
for ns in ("default", "team-a"):
    for i in range(15):
        p = ctest.simple_pod("p%d" % i, ns=ns)
        if i % 3 == 0:
            p.metadata.labels["app"] = "web%d" % i
        api.call("Pods", "Create", p)
for i in range(3):
    api.call("Nodes", "Create", schedutil.node("node%d" % i, labels={"zone": "z%d" % i}))
    api.call("Leases", "Create", pb.Lease(metadata=ctest.meta("node%d" % i, "kube-node-lease"),
                                          spec=pb.LeaseSpec(holderIdentity="node%d" % i,
                                                            leaseDurationSeconds=40)))
for i in range(4):
    api.call("Events", "Create", pb.Event(metadata=ctest.meta("ev%d" % i, "default"),
                                          involvedObject=pb.ObjectReference(kind="Pod", namespace="default",
                                                                            name="p%d" % i),
                                          reason="Testing", message="event %d" % i, type="Normal"))
for i in range(300):  # several Txns, some in flight together
    api.call("Pods", "Create", ctest.simple_pod("b%03d" % i, ns="bulk"))
api.call("Pods", "Delete", pb.DeleteRequest(namespace="team-a", name="p14"))
api.call("Pods", "Bind", pb.Binding(metadata=ctest.meta("p0", "default"),
                                     target=pb.ObjectReference(kind="Node", name="node0")))
r = rest(addr1, "POST", "/api/v1/namespaces/default/pods", json.dumps(
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rest", "labels": {"via": "rest"}},
     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
t.is_(r[0], 201, "a REST create")
r = rest(addr1, "PATCH", "/api/v1/namespaces/default/pods/applied?fieldManager=mgr",
         "apiVersion: v1\nkind: Pod\nmetadata:\n  name: applied\n  labels:\n    app: applied\n"
         "spec:\n  containers:\n  - name: main\n    image: busybox\n", "application/apply-patch+yaml")
t.is_(r[0], 201, "a server-side apply create")
r = rest(addr1, "PATCH", "/api/v1/namespaces/default/pods/applied/status?fieldManager=st",
         "apiVersion: v1\nkind: Pod\nmetadata:\n  name: applied\nstatus:\n  message: hello\n",
         "application/apply-patch+yaml")
t.ok(r[0] == 200 and len(r[1]["metadata"].get("managedFields", [])) == 2,
     "an apply to pods/status: two managedFields entries")
orig, orig_rvs, orig_rev = state(api, addr1)
n_objs = sum(len(v) for v in orig.values())
t.ok(all(v[1] for k in orig.values() for v in k.values()), "REST and gRPC read every object")

# ---- LMDB -> etcd, the apiserver serving meanwhile ----
t0 = time.time()
rc, out, err = backup("--to-etcd", *ETCD, data)
t.is_(rc, 0, "--to-etcd exits 0 (%s)" % (err.strip() or out.strip()))
m = re.match(r"copied (\d+) objects \((.*)\) from (\S+) \(revision (\d+)\) at revision (\d+)", out)
t.ok(m and int(m.group(1)) == n_objs and m.group(2) == "pods %d, nodes 3, events 4, leases 3"
     % len(orig["Pods"]) and int(m.group(4)) == orig_rev,
     "summary: every object, by kind, at the source's revision (%s)" % out.strip())
etcd_rev = int(m.group(5)) if m else 0

got = json.loads(ec.ctl("get", "--prefix", "/registry/pods/", "-w", "json"))
kvs = {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]) for kv in got.get("kvs", [])}
want = {"/registry/pods/%s/%s" % key for key in orig["Pods"]}
t.is_(sorted(kvs), sorted(want), "etcdctl get --prefix /registry/pods/: every pod's key")
good = 0
for key, v in kvs.items():
    ns, name = key.split("/")[3:5]
    env = fields(v[4:]) if v[:4] == b"k8s\x00" else {}
    tm = fields(env.get(1, b""))
    p = pb.Pod.FromString(env.get(2, b""))
    if (tm.get(1) == b"v1" and tm.get(2) == b"Pod" and not p.metadata.HasField("resourceVersion")
            and p.SerializeToString(deterministic=True) == orig["Pods"][(ns, name)][0]):
        good += 1
t.is_(good, len(want), "each value: k8s\\0 + runtime.Unknown{v1, Pod, the object}, no resourceVersion")
nodes = ec.ctl("get", "--prefix", "/registry/minions/", "--keys-only").split()
t.is_(sorted(nodes), ["/registry/minions/node%d" % i for i in range(3)], "nodes under minions")

# ---- an apiserver on etcd: the same objects ----
api2 = c.start_apiserver("--storage-backend", "etcd3", *ETCD, data_dir=os.path.join(c.dir, "data-e"),
                         port=ctest.free_port())
addr2 = c.api_addr
st2, rvs2, rev2 = state(api2, addr2)
for k in KINDS:
    t.ok(st2[k] == orig[k], "apiserver on etcd: every %s, REST and gRPC equal but for "
         "resourceVersion (%d)" % (k, len(orig[k])))
t.ok(all(int(rv) <= etcd_rev for rv in rvs2.values()) and rev2 >= etcd_rev,
     "resourceVersions are etcd's revisions (<= %d, list at %d)" % (etcd_rev, rev2))

# ---- again: the same objects are there; a changed one is reported and left ----
rc, out, err = backup("--to-etcd", *ETCD, data)
t.ok(rc == 0 and "copied 0 objects" in out and "%d were in etcd already, the same" % n_objs in out,
     "a second export: everything there already, the same (%s)" % out.strip())
p = api2.call("Pods", "Get", pb.GetRequest(namespace="team-a", name="p1"))
p.metadata.labels["changed"] = "yes"
api2.call("Pods", "Update", p)
rc, out, err = backup("--to-etcd", *ETCD, data)
t.ok(rc == 1 and re.search(r"pods/team-a/p1: /registry/pods/team-a/p1 exists in etcd \(created at "
                           r"revision \d+, modified at \d+\): left as it is", err)
     and "1 object was in etcd already" in err,
     "an object changed in etcd: reported by name and left (%s)" % err.strip())
t.is_(api2.call("Pods", "Get", pb.GetRequest(namespace="team-a", name="p1")).metadata.labels["changed"],
      "yes", "the changed object is left as it is")
rc, out, err = backup("--to-etcd", "--overwrite", *ETCD, data)
t.ok(rc == 0 and "copied 1 object (pods 1)" in out and "1 of them replaced" in out,
     "--overwrite replaces it (%s)" % (out.strip() or err.strip()))
t.ok(c.wait_for(lambda: "changed" not in api2.call("Pods", "Get", pb.GetRequest(
    namespace="team-a", name="p1")).metadata.labels, timeout=10), "the apiserver on etcd sees it replaced")

# ---- a backup file, to another prefix ----
bfile = os.path.join(c.dir, "b.mdb")
rc, out, err = backup("--data-dir", data, "--out", bfile)
t.is_(rc, 0, "a backup file (%s)" % (err.strip() or out.strip()))
rc, out, err = backup("--to-etcd", "--etcd-prefix", "/other", *ETCD, bfile)
t.ok(rc == 0 and out.startswith("copied %d objects" % n_objs), "--to-etcd of a backup file to "
     "--etcd-prefix /other (%s)" % (out.strip() or err.strip()))
t.is_(len(ec.ctl("get", "--prefix", "/other/", "--keys-only").split()), n_objs,
      "every object under /other/")

# ---- etcd -> a new LMDB directory ----
data3 = os.path.join(c.dir, "data3")
rc, out, err = backup("--from-etcd", *ETCD, data)
t.ok(rc == 1 and "holds a store already" in err, "--from-etcd into a directory with a store: refused (%s)"
     % err.strip())
own_n = sum(own_election(k, o) for k in ("Leases", "Events") for o in api2.call(k, "List", pb.ListRequest()).items)
rc, out, err = backup("--from-etcd", *ETCD, data3)
m = re.match(r"copied (\d+) objects \((.*)\) at revision (\d+) into", out)
t.ok(rc == 0 and m and int(m.group(1)) == n_objs + own_n, "--from-etcd: every object, and the %d of the "
     "etcd apiserver's elections (%s)" % (own_n, out.strip() or err.strip()))
rev3 = int(m.group(3)) if m else 0
api3 = c.start_apiserver("--storage-backend", "lmdb", data_dir=data3, port=ctest.free_port())
addr3 = c.api_addr
st3, rvs3, lrev3 = state(api3, addr3)
st2, rvs2, rev2 = state(api2, addr2)
for k in KINDS:
    t.ok(st3[k] == orig[k], "apiserver on the new LMDB store: every %s as the original but for "
         "resourceVersion (%d)" % (k, len(orig[k])))
t.ok(rvs3 == rvs2 and lrev3 == rev3, "resourceVersions kept from etcd, the store at etcd's revision %d"
     % rev3)
p = api3.call("Pods", "Create", ctest.simple_pod("after"))
t.is_(int(p.metadata.resourceVersion), rev3 + 1, "the next write continues at %d" % (rev3 + 1))

# ---- an etcd that is down ----
down = "http://127.0.0.1:%d" % ctest.free_port()
rc, out, err = backup("--to-etcd", "--etcd-servers", down, "--etcd-request-timeout", "1s", data)
t.ok(rc == 1 and down in err and "cannot read /registry/ from etcd" in err,
     "--to-etcd with etcd down: an error naming the endpoint (%s)" % err.strip())
data4 = os.path.join(c.dir, "data4")
rc, out, err = backup("--from-etcd", "--etcd-servers", down, "--etcd-request-timeout", "1s", data4)
t.ok(rc == 1 and down in err and not os.path.exists(os.path.join(data4, "data.mdb")),
     "--from-etcd with etcd down: an error naming the endpoint, no store left (%s)" % err.strip())
t.done()
