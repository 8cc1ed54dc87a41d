#!/usr/bin/python3
# The store's write-ahead log (DATA-DIR/wal) under crashes. Commits are made
# durable by the log alone: the map (data.mdb) is synced only at checkpoints
# (copied to snap.mdb) and at a clean stop, so after a machine crash it may
# be torn. Here every SIGKILL is followed by tearing the map the way such a
# crash may (every third page overwritten with junk), with a small log
# (--wal-size 64 KiB) so that checkpoints run all the time and some are
# cut by the kill. After each restart: every acknowledged write is there
# with its revision, nothing unacknowledged is half there, the history has
# every revision once (the checks of t/80-fault-crash). Then: a torn record
# after the last one is ignored; a corrupt record in the middle stops the
# start with the file and offset; a checkpoint's copy left half written is
# harmless; coracle-backup refuses a map that may be torn and --restore
# over such a directory wins over its old log; with --map-dir the map is
# rebuilt after it is gone (a reboot of its tmpfs).
# CORACLE_FAULT_CYCLES (default 12), CORACLE_FAULT_SEED.
import os
import random
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import faultutil as fu

t = ctest.Tap()
if ctest.STORE != "lmdb":
    t.skip_all("the write-ahead log is the LMDB store's (CORACLE_TEST_STORE=%s)" % ctest.STORE)
c = ctest.Cluster(t, "80-fault-wal")
pb = c.pb
N = fu.env_int("CORACLE_FAULT_CYCLES", 12)
NW = 4
seed = fu.env_int("CORACLE_FAULT_SEED", int(time.time()))
rnd = random.Random(seed)
t.diag("seed %d (CORACLE_FAULT_SEED), %d cycles" % (seed, N))
NS = "f"
data = os.path.join(c.dir, "data")
WAL = os.path.join(data, "wal")
APIOPTS = ("--compact-keep", "5000000", "--wal-size", str(64 << 10))
BK = c.bin("coracle-backup")


def tear_map():
    """What a machine crash may leave of a map that was never synced: junk pages."""
    path = os.path.join(data, "data.mdb")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        for off in range(0, size, 3 * 4096):
            f.seek(off)
            f.write(b"\xa5" * 4096)


def wal_records():
    """[(offset, length)] of the log's records of the current epoch (no checksums: the test
    only needs where they are)."""
    with open(WAL, "rb") as f:
        b = f.read()
    epoch = struct.unpack_from("<Q", b, 16)[0]
    out, off = [], 4096
    while off + 16 <= len(b):
        ln, _, ep = struct.unpack_from("<IIQ", b, off)
        if ln < 44 or ep != epoch or off + ln > len(b):
            break
        out.append((off, ln))
        off += ln
    return out


def backup(*args):
    p = subprocess.run([BK] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def checkpoints():
    with open(c.api.log_path, "rb") as f:
        return f.read().count(b"store: checkpoint at revision")


api = c.start_apiserver(*APIOPTS, data_dir=data)
api.call("Pods", "Create", fu.pod("marker", "other", "m"))
rev0 = int(api.call("Pods", "List", pb.ListRequest()).metadata.resourceVersion)
writers = [fu.Writer(t, c.api_addr, NS, "w%d" % k, seed * 100 + k) for k in range(NW)]
bad = 0
for cycle in range(N):
    start_rev = int(api.call("Pods", "List", pb.ListRequest()).metadata.resourceVersion)
    before = [len(w.acked) for w in writers]
    for w in writers:
        w.start(c.api_addr)
    # Each cycle runs at least one checkpoint before the kill: the count of
    # writes that takes depends on how the commits group, not on time.
    ck0 = checkpoints()
    c.wait_for(lambda: sum(len(w.acked) for w in writers) - sum(before) >= 20 and checkpoints() > ck0,
               timeout=30)
    time.sleep(rnd.uniform(0.0, 0.8))
    c.api.kill()
    for w in writers:
        w.join(ctest.DEADLINE)
    tear_map()
    api = c.start_apiserver(*APIOPTS, data_dir=data)
    probs = []
    for w in writers:
        probs += w.errors
        w.errors = []
        r = w.resolve(api)
        if r not in (None, "applied", "not applied"):
            probs.append(r)
    n, p2, cur = fu.check_state(api, NS, writers)
    probs += p2
    h = fu.history(c.api_addr, start_rev, cur)
    probs += fu.check_history(h, start_rev, cur)
    new = [a for w, b in zip(writers, before) for a in w.acked[b:]]
    probs += fu.check_acked(h, new, NS) + fu.check_unacked(h, new, NS)
    if not t.ok(not probs, "cycle %d: SIGKILL, map torn, %d acknowledged writes all there, "
                "revisions %d..%d each once" % (cycle + 1, len(new), start_rev + 1, cur)):
        bad += 1
        for p in probs[:20]:
            t.diag(p)
        if bad >= 3:
            break
n_ckpt = checkpoints()
t.ok(n_ckpt >= N, "checkpoints ran during the load (%d)" % n_ckpt)
cur = int(api.call("Pods", "List", pb.ListRequest()).metadata.resourceVersion)
h = fu.history(c.api_addr, rev0, cur, timeout=3 * ctest.DEADLINE)
all_acked = [a for w in writers for a in w.acked]
probs = fu.check_history(h, rev0, cur) + fu.check_acked(h, all_acked, NS) + fu.check_unacked(h, all_acked, NS)
t.ok(not probs, "whole history %d..%d: every revision once, all %d acknowledged writes" % (rev0 + 1, cur, len(all_acked)))
for p in probs[:10]:
    t.diag(p)

# a torn tail: a record cut short after the last one (never acknowledged)
api.call("Pods", "Create", fu.pod("tail-1", "t", "a"))
want = sorted(p.metadata.name for p in api.call("Pods", "List", pb.ListRequest(namespace="t")).items)
rv_before = int(api.call("Pods", "List", pb.ListRequest()).metadata.resourceVersion)
c.api.kill()
recs = wal_records()
t.ok(recs, "the log holds records after a SIGKILL (%d)" % len(recs))
off, ln = recs[-1]
with open(WAL, "r+b") as f:
    f.seek(off)
    rec = f.read(ln)
    f.seek(off + ln)
    # the next record as a crash may leave it: its header and half its bytes
    f.write(rec[:8] + rec[8:16] + bytes(rnd.randrange(256) for _ in range(ln // 2)))
tear_map()
api = c.start_apiserver(*APIOPTS, data_dir=data)
got = sorted(p.metadata.name for p in api.call("Pods", "List", pb.ListRequest(namespace="t")).items)
rv = int(api.call("Pods", "List", pb.ListRequest()).metadata.resourceVersion)
t.ok(got == want and rv == rv_before, "a torn record after the last: ignored, state at %d as acknowledged" % rv)
t.like(open(c.api.log_path, "rb").read().decode("utf-8", "replace"), "torn record at offset %d ignored" % (off + ln),
       "the log says where the torn record was")
r = api.try_call("Pods", "Create", fu.pod("tail-2", "t", "a"))
t.ok(r[0] is not None, "writes go on after it")

# a checkpoint's copy cut short: a half-written snap.mdb.tmp is ignored
c.api.kill()
with open(os.path.join(data, "snap.mdb.tmp"), "wb") as f:
    f.write(b"\0" * 5000)
tear_map()
api = c.start_apiserver(*APIOPTS, data_dir=data)
got = api.try_call("Pods", "Get", pb.GetRequest(namespace="t", name="tail-2"))
t.ok(got[0] is not None, "a checkpoint cut short (half a copy left): nothing lost")

# coracle-backup refuses a map that may be torn, until an apiserver rebuilt it
api.call("Pods", "Create", fu.pod("tail-3", "t", "a"))
rc, out, err = backup("--data-dir", data, "--out", os.path.join(c.dir, "live.mdb"))
t.ok(rc == 0, "online backup while the apiserver runs (%s)" % err.strip())
c.api.kill()
rc, out, err = backup("--data-dir", data, "--out", os.path.join(c.dir, "torn.mdb"))
t.ok(rc != 0 and "not closed cleanly" in err and "start coracle-apiserver" in err,
     "backup of a crashed store refused: %s" % err.strip())

# --restore over the crashed directory: the restored store wins over the old log
rc, out, err = backup("--data-dir", data, "--restore", os.path.join(c.dir, "live.mdb"), "--force")
t.ok(rc == 0 and not os.path.exists(WAL), "restore over a crashed store drops its log (%s)" % err.strip())
api = c.start_apiserver(*APIOPTS, data_dir=data)
got = [api.try_call("Pods", "Get", pb.GetRequest(namespace="t", name=n))[0] is not None
       for n in ("tail-2", "tail-3")]
t.ok(got == [True, True], "the restored store is what the apiserver serves")

# a corrupt record in the middle: the start is refused, naming the file and offset
for i in range(5):
    api.call("Pods", "Create", fu.pod("mid-%d" % i, "t", "a"))
c.api.kill()
recs = wal_records()
off, ln = recs[len(recs) // 2]
with open(WAL, "r+b") as f:
    f.seek(off + 30)
    b = f.read(1)
    f.seek(off + 30)
    f.write(bytes([b[0] ^ 0xff]))
api = c.start_apiserver(*APIOPTS, data_dir=data, wait=False)
c.wait_for(lambda: not c.api.alive(), timeout=ctest.DEADLINE)
tail = c.api.tail()
t.ok(not c.api.alive() and WAL in tail and "offset %d" % off in tail and "corrupt" in tail,
     "a corrupt record in the middle: the apiserver refuses to start, naming %s and offset %d" % (WAL, off))

# --map-dir: the map in a directory of its own (a tmpfs in use), rebuilt at every start
data2, mapd = os.path.join(c.dir, "data2"), os.path.join(c.dir, "map")
MOPTS = ("--map-dir", mapd, "--wal-size", str(64 << 10))
api = c.start_apiserver(*MOPTS, data_dir=data2)
w = fu.Writer(t, c.api_addr, "m", "m", seed)
w.start(c.api_addr)
c.wait_for(lambda: len(w.acked) >= 200, timeout=30)
c.api.kill()
w.join(ctest.DEADLINE)
subprocess.run(["rm", "-rf", mapd])  # what a reboot leaves of a tmpfs
api = c.start_apiserver(*MOPTS, data_dir=data2)
r = w.resolve(api)
n, probs, cur = fu.check_state(api, "m", [w])
t.ok(not probs and r in (None, "applied", "not applied") and not os.path.exists(os.path.join(data2, "data.mdb")),
     "--map-dir: SIGKILL, the map gone: %d acknowledged writes, %d objects as acknowledged" % (len(w.acked), n))
for p in probs[:10]:
    t.diag(p)
c.api.stop()
subprocess.run(["rm", "-rf", mapd])
api = c.start_apiserver(*MOPTS, data_dir=data2)
n2, probs, cur2 = fu.check_state(api, "m", [w])
t.ok(not probs and cur2 == cur, "--map-dir: a clean stop, the map gone: the same %d objects at %d" % (n2, cur2))
t.done()
