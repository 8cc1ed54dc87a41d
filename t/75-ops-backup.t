#!/usr/bin/python3
# Backup and restore of the apiserver's LMDB store with coracle-backup:
# an online backup taken while writes go on is consistent (exactly the
# objects committed up to its revision), a quiescent one restored into a new
# apiserver gives every object (same uid, resourceVersion) and the same
# revision; --restore refuses while the apiserver has the store open; the
# manual restore (copy to data.mdb) works too.
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest
import schedutil

t = ctest.Tap()
c = ctest.Cluster(t)
pb = ctest.pb
BK = c.bin("coracle-backup")
KINDS = ("Pods", "Nodes", "Events", "Leases")


def backup(*args):
    p = subprocess.run([BK] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def inspect(path):
    rc, out, err = backup("--inspect", path)
    if rc != 0:
        return None
    return {k: int(v) for k, v in (l.split() for l in out.splitlines())}


def snapshot(api):
    """{kind: {(ns, name): (uid, resourceVersion)}} and the revision of the Pods list."""
    state, rev = {}, None
    for k in KINDS:
        lst = api.call(k, "List", pb.ListRequest())
        if k == "Pods":
            rev = int(lst.metadata.resourceVersion)
        state[k] = {(o.metadata.namespace, o.metadata.name): (o.metadata.uid, o.metadata.resourceVersion)
                    for o in lst.items}
    return state, rev


data = os.path.join(c.dir, "data")
api = c.start_apiserver(data_dir=data)
api_daemon = c.api

# some of every kind, with updates and deletes
for ns in ("default", "team-a", "team-b"):
    for i in range(20):
        api.call("Pods", "Create", ctest.simple_pod("p%d" % i, ns=ns))
for i in range(3):
    api.call("Nodes", "Create", schedutil.node("node%d" % i))
    api.call("Leases", "Create", pb.Lease(metadata=ctest.meta("node%d" % i, "kube-node-lease"),
                                          spec=pb.LeaseSpec(holderIdentity="node%d" % i,
                                                            leaseDurationSeconds=40)))
for i in range(5):
    api.call("Events", "Create", pb.Event(metadata=ctest.meta("ev%d" % i, "default"),
                                          involvedObject=pb.ObjectReference(kind="Pod", namespace="default",
                                                                            name="p%d" % i),
                                          reason="Testing", message="event %d" % i, type="Normal"))
for i in range(5):
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="team-b", name="p%d" % i))
api.call("Pods", "Bind", pb.Binding(metadata=ctest.meta("p0", "default"),
                                     target=pb.ObjectReference(kind="Node", name="node0")))

# ---- an online backup while a writer creates pods ----
created = {}  # name -> resourceVersion
stop = threading.Event()
werr = []


def writer():
    i = 0
    while not stop.is_set():
        try:
            p = api.call("Pods", "Create", ctest.simple_pod("w%d" % i, ns="load"))
            created[p.metadata.name] = int(p.metadata.resourceVersion)
        except Exception as e:
            werr.append(e)
            return
        i += 1


th = threading.Thread(target=writer)
th.start()
time.sleep(0.3)
online = os.path.join(c.dir, "online.mdb")
rc, out, err = backup("--data-dir", data, "--out", online)
time.sleep(0.2)
stop.set()
th.join()
t.is_(rc, 0, "online backup exits 0 (%s)" % (out.strip() or err.strip()))
t.ok(not werr, "the writer never failed during the backup (%s)" % werr[:1])
t.ok("revision" in out and "objects" in out, "backup prints revision and objects")
t.ok(not os.path.exists(online + ".tmp"), "no .tmp left behind")
oi = inspect(online)
t.ok(oi is not None, "the online backup opens (%s)" % oi)
R = oi["revision"] if oi else 0
before = [n for n, rv in created.items() if rv <= R]
after = [n for n, rv in created.items() if rv > R]
t.ok(len(before) > 0 and len(after) > 0,
     "writes went on during the backup (%d before, %d after revision %d)" % (len(before), len(after), R))

# ---- a quiescent backup: compacted, smaller than the live file ----
quiet = os.path.join(c.dir, "quiet.mdb")
rc, out, err = backup("--data-dir", data, "--out", quiet)
t.is_(rc, 0, "quiescent backup exits 0")
state, rev = snapshot(api)
qi = inspect(quiet) or {}
t.is_(qi.get("revision"), rev, "quiescent backup has the live revision %d" % rev)
t.ok(os.path.getsize(quiet) <= os.path.getsize(os.path.join(data, "data.mdb")),
     "backup is compacted (%d <= %d bytes)" % (os.path.getsize(quiet), os.path.getsize(os.path.join(data, "data.mdb"))))
rc, out, err = backup("--inspect", "-", "--data-dir", data)
t.ok(rc == 0 and ("revision %d" % rev) in out, "--inspect - reads the live store while serving")

# ---- --restore refuses while the apiserver holds the store ----
rc, out, err = backup("--data-dir", data, "--restore", quiet, "--force")
t.ok(rc != 0 and "in use by process %d" % api_daemon.proc.pid in err,
     "restore into a served data dir refused, naming the pid (%s)" % err.strip())
rc, out, err = backup("--data-dir", os.path.join(c.dir, "nope"), "--out", os.path.join(c.dir, "x.mdb"))
t.ok(rc == 1 and "data.mdb" in err, "backup of a missing store: clear error (%s)" % err.strip())
bad = os.path.join(c.dir, "garbage.mdb")
with open(bad, "wb") as f:
    f.write(b"not an lmdb file" * 512)
rc, out, err = backup("--data-dir", os.path.join(c.dir, "g"), "--restore", bad)
t.ok(rc == 1 and "garbage.mdb" in err, "restore of a garbage file refused (%s)" % err.strip())

# ---- restore the quiescent backup into a new apiserver ----
data2 = os.path.join(c.dir, "data2")
rc, out, err = backup("--data-dir", data2, "--restore", quiet)
t.is_(rc, 0, "restore into a new dir (%s)" % (out.strip() or err.strip()))
api2 = c.start_apiserver(data_dir=data2, port=ctest.free_port())
state2, rev2 = snapshot(api2)
t.is_(rev2, rev, "restored apiserver: same revision")
for k in KINDS:
    t.ok(state2[k] == state[k], "restored apiserver: every %s, same uid and resourceVersion (%d)" % (k, len(state[k])))
p0 = api2.call("Pods", "Get", pb.GetRequest(namespace="default", name="p0"))
t.is_(p0.spec.nodeName, "node0", "restored apiserver: the binding is there")
# and it keeps working: new writes continue the revision sequence
p = api2.call("Pods", "Create", ctest.simple_pod("after-restore"))
t.is_(int(p.metadata.resourceVersion), rev + 1, "restored apiserver: next write gets revision %d" % (rev + 1))

# ---- the online backup: exactly the objects up to its revision ----
data3 = os.path.join(c.dir, "data3")
os.makedirs(data3)
shutil.copyfile(online, os.path.join(data3, "data.mdb"))  # the manual restore
api3 = c.start_apiserver(data_dir=data3, port=ctest.free_port())
lst = api3.call("Pods", "List", pb.ListRequest(namespace="load"))
t.is_(int(lst.metadata.resourceVersion), R, "manual restore of the online backup: revision %d" % R)
names = sorted(p.metadata.name for p in lst.items)
t.ok(names == sorted(before), "online backup holds exactly the %d pods committed up to its revision (%d)"
     % (len(before), len(names)))

# ---- restore in place (stop, --restore --force, start) ----
t.is_(api_daemon.stop(), 0, "original apiserver stopped")
rc, out, err = backup("--data-dir", data, "--restore", quiet)
t.ok(rc != 0 and "--force" in err, "restore over an existing data.mdb needs --force")
rc, out, err = backup("--data-dir", data, "--restore", quiet, "--force")
t.is_(rc, 0, "restore in place after stopping the apiserver")
api4 = c.start_apiserver(data_dir=data, port=ctest.free_port())
state4, rev4 = snapshot(api4)
t.is_(rev4, rev, "in-place restore: the backup's revision")
t.ok(state4 == state, "in-place restore: every object of the backup, the load pods after it gone")
t.done()
