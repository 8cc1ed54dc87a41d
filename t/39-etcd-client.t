#!/usr/bin/python3
# The etcd client (src/lib/etcd.c) against real etcd 3.4 members, through
# t/etcdcall (one client driven line by line). One member: KV round trips,
# txn branches, prefix ranges with limit, compaction and a watch from a
# compacted revision, a watch replaying history with prev_kv, progress
# requests, etcd_free from inside callbacks, a member answering garbage on
# the watch stream, and round trips per second. Three members over TLS: the member in use is killed with -9
# while a watch is open, etcdctl keeps writing and the client keeps reading:
# the watch delivers every revision once and in order, every read succeeds.
# Then every member down: UNAVAILABLE naming the endpoints, within the
# deadline.
import os
import subprocess
import sys
import time
from concurrent import futures

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import etcdutil

t = ctest.Tap()
why = etcdutil.available()
if why:
    t.skip_all(why)
c = ctest.Cluster(t, "39-etcd-client")


# ---------------------------------------------------------------- one member
e1 = etcdutil.EtcdCluster(c, members=1, name="one")
cl = etcdutil.EtcdCall(c, e1.endpoints, name="one")
t.is_(cl.cmd("put a 1"), "put 2", "put: the txn's revision")
r = cl.cmd("get a").split(" ")
t.is_(r, ["kvs", "2", "0", "1", "a=1@2"], "get: value, mod revision, count")
t.like(cl.cmd("get nothing"), "kvs 2 0 0", "get of a missing key: no kvs")
t.is_(cl.cmd("cas a 2 b"), "txn 1 3 0 a=1@2", "txn compare true: success branch (put with prev_kv)")
t.is_(cl.cmd("cas a 2 c"), "txn 0 3 0 a=b@3", "txn compare false: failure branch (range), no write")
for i in range(5):
    cl.cmd("put p/%d v%d" % (i, i))
t.is_(cl.cmd("prefix p/ 2"), "kvs 8 1 5 p/0=v0@4 p/1=v1@5", "prefix range with limit 2: more, count 5")
t.is_(cl.cmd("prefix p/ 0").split(" ")[2:4], ["0", "5"], "prefix range without limit: all 5")
t.is_(cl.cmd("del p/0"), "del 9 1 p/0=v0@4", "delete one key: deleted 1 with its prev_kv")
t.is_(cl.cmd("delprefix p/").split(" ")[:3], ["del", "10", "4"], "delete a prefix: 4 more")
t.like(cl.cmd("get a 1"), "kvs 10 0 0", "get at an old revision")
st = cl.cmd("status").split(" ")
t.ok(st[0] == "status" and st[1] == "10" and st[2] == st[3], "status: revision 10, a member that leads: %s" % st)

# watch from now, then events; progress request
t.is_(cl.cmd("watch now w* 0 0"), "watching now", "watch from now")
cl.cmd("put w1 x")
got = cl.wait("ev", "now")
t.is_(got and got[0][2:], ["11", "PUT", "w1", "x", "11", "-"], "the put after it arrives")
t.is_(cl.cmd("progress now"), "progress-sent", "progress request sent")
got = cl.wait("progress", "now")
t.is_(got and got[0][2], "11", "progress notification: revision 11")
t.is_(cl.cmd("cancel now"), "cancelled", "watch cancelled")
cl.cmd("put w2 y")

# history replayed with prev_kv, in order
t.is_(cl.cmd("watch hist a* 2 1"), "watching hist", "watch a* from revision 2 with prev_kv")
got = cl.wait("ev", "hist", lambda ls: ls if len(ls) >= 2 else None)
t.is_([l[3:] for l in (got or [])], [["PUT", "a", "1", "2", "-"], ["PUT", "a", "b", "3", "1"]],
      "replayed in order, prev_kv of the second")
cl.cmd("put a z")
got = cl.wait("ev", "hist", lambda ls: ls if len(ls) >= 3 else None)
t.is_(got and got[2][3:], ["PUT", "a", "z", "13", "b"], "then the live event")
t.is_(cl.lines("ev", "now"), [l for l in cl.lines("ev", "now") if l[4] == "w1"],
      "the cancelled watch got nothing more")

# compaction
t.is_(cl.cmd("compact 12"), "compacted 13", "compact at 12")
t.like(cl.cmd("get a 5"), "err 11 etcdserver: mvcc: required revision has been compacted",
       "get at a compacted revision: OUT_OF_RANGE with etcd's text")
t.is_(cl.cmd("watch old a 3 0"), "watching old", "watch from compacted revision 3")
got = cl.wait("ended", "old")
t.is_(got and got[0][2:4], ["11", "12"], "ended: OUT_OF_RANGE, compact_revision 12")
t.like(got and " ".join(got[0][4:]), "compacted", "with etcd's text")

# etcd_free from inside callbacks (then a new client)
t.is_(cl.cmd("reopen-in-cb"), "reopen-done 0", "etcd_free and etcd_new inside a Range's callback")
t.like(cl.cmd("get a"), "a=z@13", "the new client works")
cl.cmd("watch r r* 0 0")
cl.cmd("reopen-on-event r")
e1.put("r1", "x")  # not through cl: its request would go with the client
t.ok(cl.wait("reopened", "r", timeout=10), "etcd_free and etcd_new inside a watch's events callback")
t.like(cl.cmd("get a"), "a=z@13", "the new client works")

# round trips on one connection
rb = cl.cmd("bench-range 2000", timeout=120).split(" ")
tb = cl.cmd("bench-txn 1000", timeout=120).split(" ")
ok = rb[0] == "bench" and tb[0] == "bench"
t.ok(ok, "round-trip loops: %s / %s" % (rb, tb))
if ok:
    t.diag("FIGURES etcd-client: range=%.0f/s txn=%.0f/s (one at a time, one connection, 1 member)"
           % (2000 / float(rb[3]), 1000 / float(tb[3])))
t.is_(cl.close(), 0, "etcdcall exits cleanly")

# ---------------------------------------------------------------- garbage on the watch stream
import grpc  # noqa: E402

seen = []


def bad_watch(reqs, ctx):
    for _ in reqs:
        seen.append(1)
        yield b"\x0a\x05ab"  # header: 5 bytes announced, 2 there


srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
srv.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("etcdserverpb.Watch", {
    "Watch": grpc.stream_stream_rpc_method_handler(bad_watch)}),))
bad_port = srv.add_insecure_port("127.0.0.1:0")
srv.start()
c.on_teardown(lambda: srv.stop(0))
cl = etcdutil.EtcdCall(c, ["http://127.0.0.1:%d" % bad_port] + e1.endpoints, name="garbage")
cl.cmd("watch g g* 0 0")
t.ok(c.wait_for(lambda: seen), "a member answers the watch with bytes that do not decode")
t.ok(c.wait_for(lambda: cl.cmd("endpoint") == "endpoint " + e1.endpoints[0], timeout=10),
     "the client moves on to the next endpoint")
time.sleep(0.3)
rev = e1.put("g1", "v")
got = cl.wait("ev", "g", timeout=10)
t.is_(got and got[0][2:5], [str(rev), "PUT", "g1"], "and the watch goes on there")
t.is_(cl.close(), 0, "etcdcall exits cleanly")
srv.stop(0)

# ---------------------------------------------------------------- three members, TLS, kill -9
e3 = etcdutil.EtcdCluster(c, members=3, tls=True, name="three")
TIMEOUT = 5000
cl = etcdutil.EtcdCall(c, e3.endpoints, ec=e3, timeout_ms=TIMEOUT, name="three")
rev0 = int(cl.cmd("put f/start x").split(" ")[1])
t.ok(rev0 > 0, "TLS with a client certificate: put at %d" % rev0)
t.is_(cl.cmd("watch f f* %d 0" % (rev0 + 1)), "watching f", "watch f/ from %d" % (rev0 + 1))
t.is_(cl.cmd("loop-start"), "looping", "a Range loop runs")

w = etcdutil.Writer(e3, "f/")
time.sleep(1)
ep = cl.cmd("endpoint").split(" ")[1]
victim = e3.endpoints.index(ep)
leader = e3.leader(timeout=10)
e3.kill(victim)
t.diag("killed %s (member %d%s)" % (ep, victim, ", the leader" if victim == leader else ""))
time.sleep(3)
w.stop()
last = None
for i in range(3):
    if i != victim:
        st = e3.status(i)
        if st:
            last = max(last or 0, int(st["header"]["revision"]))
t.ok(last and last > rev0 + 10, "etcdctl wrote on: revision %s -> %s (%d put errors, retried)"
     % (rev0, last, len(w.errors)))
got = cl.wait("ev", "f", lambda ls: ls if ls and int(ls[-1][6]) >= (last or 0) else None, timeout=20)
revs = [int(l[6]) for l in cl.lines("ev", "f")]
t.is_(revs, list(range(rev0 + 1, (last or 0) + 1)), "the watch delivered revisions %d..%s once each, in order"
      % (rev0 + 1, last))
t.ok(not cl.lines("ended", "f"), "the watch did not end")
lp = cl.cmd("loop-stop").split(" ", 3)
t.ok(lp[0] == "loop" and int(lp[1]) > 0 and lp[2] == "0",
     "every Range of the loop succeeded (%s ok, %s failed, last error %s)" % tuple(lp[1:4]))
ep2 = cl.cmd("endpoint").split(" ")[1]
t.ok(ep2 != ep, "the client uses %s now" % ep2)
e3.restart(victim)
t.like(cl.cmd("get f/start"), "f/start=x@%d" % rev0, "the killed member restarts and rejoins")

# every member down
for i in range(3):
    e3.kill(i)
t0 = time.time()
r = cl.cmd("get f/start")
el = time.time() - t0
t.like(r, "err 14 etcd: no endpoint answered within %d ms" % TIMEOUT, "all members down: UNAVAILABLE")
t.ok(all(u in r for u in e3.endpoints), "naming every endpoint: %s" % r)
t.ok(TIMEOUT / 1000 - 1 <= el <= TIMEOUT / 1000 + 1.5, "within the deadline (%.1f s)" % el)
got = cl.wait("ended", "f", timeout=TIMEOUT / 1000 + 5)
t.is_(got and got[0][2], "14", "the watch ended UNAVAILABLE: %s" % (got and " ".join(got[0][4:])))
t.is_(cl.close(), 0, "etcdcall exits cleanly")
t.done()
