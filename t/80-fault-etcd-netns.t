#!/usr/bin/python3
# The etcd client when the member it uses is cut off. Three etcd members,
# each in a network namespace of its own on a bridge (t/lib/etcdutil.py);
# t/etcdcall on the host holds a watch and reads in a loop while etcdctl
# writes. The member in use loses its link (its veth down): no FIN, no RST,
# its connections just go silent, so the client learns it from its
# keepalive PING (2 s + 2 s) and moves to another member. The watch still
# delivers every revision once and in order, every read succeeds (within
# its 8 s deadline), and the member catches up once the link is back.
# Namespaces, veths and the bridge are removed at exit, also on failure.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import etcdutil

t = ctest.Tap()
ctest.need_root(t)
why = etcdutil.available()
if why:
    t.skip_all(why)
for f in ("/usr/sbin/ip", "/usr/bin/nsenter"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)
c = ctest.Cluster(t, "80-fault-etcd-netns")
ec = etcdutil.EtcdCluster(c, members=3, netns=True)
cl = etcdutil.EtcdCall(c, ec.endpoints, timeout_ms=8000)
rev0 = int(cl.cmd("put f/start x").split(" ")[1])
t.ok(rev0 > 0, "three members in their namespaces: put at %d" % rev0)
t.is_(cl.cmd("watch f f* %d 0" % (rev0 + 1)), "watching f", "watch f/ from %d" % (rev0 + 1))
t.is_(cl.cmd("loop-start"), "looping", "a Range loop runs")

w = etcdutil.Writer(ec, "f/", targets=list(range(3)))
time.sleep(1)
ep = cl.cmd("endpoint").split(" ")[1]
victim = ec.endpoints.index(ep)
leader = ec.leader(timeout=10)
w.targets = [i for i in range(3) if i != victim]
ec.isolate(victim)
t0 = time.time()
t.diag("cut off %s (member %d%s)" % (ep, victim, ", the leader" if victim == leader else ""))
moved = c.wait_for(lambda: cl.cmd("endpoint") != "endpoint " + ep, timeout=20, interval=0.2)
t.ok(moved, "the client moved to another member after %.1f s" % (time.time() - t0))
time.sleep(1)
w.stop()
last = max(int(ec.status(i)["header"]["revision"]) for i in w.targets)
t.ok(last > rev0 + 10, "etcdctl wrote on: revision %d -> %d (%d put errors, retried)"
     % (rev0, last, len(w.errors)))
cl.wait("ev", "f", lambda ls: ls if ls and int(ls[-1][6]) >= last else None, timeout=20)
revs = [int(l[6]) for l in cl.lines("ev", "f")]
t.is_(revs, list(range(rev0 + 1, last + 1)), "the watch delivered revisions %d..%d once each, in order"
      % (rev0 + 1, last))
t.ok(not cl.lines("ended", "f"), "the watch did not end")
lp = cl.cmd("loop-stop").split(" ", 3)
t.ok(lp[0] == "loop" and int(lp[1]) > 0 and lp[2] == "0",
     "every Range of the loop succeeded (%s ok, %s failed, last error %s)" % tuple(lp[1:4]))

ec.heal(victim)
t0 = time.time()
caught_up = c.wait_for(lambda: int((ec.status(victim) or {}).get("header", {}).get("revision", 0)) == last,
                       timeout=30, interval=0.2)
t.ok(caught_up, "link back: the member caught up to %d after %.1f s" % (last, time.time() - t0))
t.is_(cl.close(), 0, "etcdcall exits cleanly")
t.done()
