#!/usr/bin/python3
"""Two apiservers while the etcd member they use is cut off.

Three etcd members, each in a network namespace of its own on a bridge
(t/lib/etcdutil.py, netns=True); apiservers A and B on the host, both
using member 0 first. Two writers create and update pods through A and B
in turn and record every acknowledged write with its resourceVersion; a
gRPC watcher of pods on A and one on B record every event. Member 0 loses
its link (veth down: no FIN, no RST, its connections go silent), then
gets it back. Writes go on through both apiservers; afterwards every
acknowledged write is in etcd at its revision, both apiservers list
exactly etcd's pods, and each watcher saw every write once, in order,
nothing it was not sent (no duplicate, no gap). The namespaces, veths and
the bridge are removed at exit, also on failure.
"""
import base64
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest  # noqa: E402
import etcdutil  # noqa: E402
from ctest import simple_pod  # noqa: E402

t = ctest.Tap()
ctest.need_root(t)
why = etcdutil.available()
if why:
    t.skip_all(why)
for f in ("/usr/sbin/ip", "/usr/bin/nsenter"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)
pb = ctest.pb
NS = "cut"
c = ctest.Cluster(t, "84-fault-etcd-ha-netns")
ec = etcdutil.EtcdCluster(c, members=3, netns=True)


class Api:
    def __init__(self, name):
        self.name = name
        self.addr = "127.0.0.1:%d" % ctest.free_port()
        self.d = c.start("apiserver-" + name, [
            c.bin("coracle-apiserver"), "--listen", self.addr,
            "--data-dir", os.path.join(c.dir, "api-" + name), "--storage-backend", "etcd3",
            "--etcd-servers", ",".join(ec.endpoints), "--etcd-compaction-interval", "0",
            "--bookmark-interval", "1"])
        c.wait_ready(self.addr, self.d)
        self.cl = ctest.Client(self.addr)
        c.clients.append(self.cl)


A, B = Api("A"), Api("B")
rev0 = int(B.cl.call("Pods", "List", pb.ListRequest(namespace=NS)).metadata.resourceVersion)


class Watcher(threading.Thread):
    """Pods in NS through api from rev0: events = [(rv, type, name)]; resumes after an end."""

    def __init__(self, api):
        super().__init__(daemon=True)
        self.api, self.events, self.ends, self.stopping, self.s = api, [], 0, False, None
        self.start()

    def run(self):
        rv = rev0
        while not self.stopping:
            self.s = self.api.cl.stream("Pods", "Watch", pb.ListRequest(namespace=NS, resourceVersion=str(rv)))
            try:
                for ev in self.s:
                    r = int(ev.object.metadata.resourceVersion)
                    if ev.type == "BOOKMARK":
                        continue
                    self.events.append((r, ev.type, ev.object.metadata.name))
                    rv = r
            except Exception:
                pass
            if not self.stopping:
                self.ends += 1
                time.sleep(0.2)

    def stop(self):
        self.stopping = True
        if self.s:
            self.s.cancel()


class Writer(threading.Thread):
    """Creates p<w>-<n> and updates it once, through A and B in turn: acks = {(name, rv)}."""

    def __init__(self, w):
        super().__init__(daemon=True)
        self.w, self.acks, self.unknown, self.oks, self.stopping = w, set(), 0, [], False
        self.uncertain = set()  # pods whose last write got no answer
        self.errors = []
        self.start()

    def run(self):
        n = 0
        while not self.stopping:
            api = (A, B)[(n + self.w) % 2]
            name = "p%d-%d" % (self.w, n)
            p, e = api.cl.try_call("Pods", "Create", simple_pod(name, ns=NS), timeout=30)
            if p:
                self.acks.add((name, int(p.metadata.resourceVersion)))
                p.metadata.labels["v"] = "2"
                api = (A, B)[(n + self.w + 1) % 2]
                u, e = api.cl.try_call("Pods", "Update", p, timeout=30)
                if u:
                    self.acks.add((name, int(u.metadata.resourceVersion)))
                else:
                    self.uncertain.add(name)
            if e:
                self.unknown += 1
                self.errors.append(str(e)[:160])
            else:
                self.oks.append(time.time())
            n += 1


watchers = [Watcher(A), Watcher(B)]
writers = [Writer(0), Writer(1)]
time.sleep(2)
t0 = time.time()
ec.isolate(0)
t.diag("member 0 (%s) cut off" % ec.endpoints[0])
time.sleep(8)
during = sum(1 for w in writers for x in w.oks if x > t0 + 4)
ec.heal(0)
time.sleep(2)
for w in writers:
    w.stopping = True
for w in writers:
    w.join(60)
acks = set().union(*(w.acks for w in writers))
for e in sorted(set(x for w in writers for x in w.errors))[:5]:
    t.diag("error: %s" % e)
t.ok(during > 0, "writes went on through A and B while member 0 was cut off (%d in its last 4 s)" % during)
t.is_(sum(w.unknown for w in writers), 0, "no call failed: a member cut off costs a retry, not an error")
# etcd's pods, from a member that never left
out = ec.ctl("get", "--prefix", "/registry/pods/%s/" % NS, "-w", "json", endpoints=[1])
kvs = json.loads(out).get("kvs", [])
etcd_pods = {base64.b64decode(kv["key"]).decode().rsplit("/", 1)[1]: int(kv["mod_revision"]) for kv in kvs}
top = max(etcd_pods.values())
latest = {}
for name, rv in acks:
    latest[name] = max(rv, latest.get(name, 0))
uncertain = set().union(*(w.uncertain for w in writers))
lost = {n: rv for n, rv in latest.items() if etcd_pods.get(n) != rv and not
        (n in uncertain and etcd_pods.get(n, 0) > rv)}
t.ok(acks and not lost, "%d acknowledged writes (%d calls without an answer); each pod in etcd at the revision of "
     "its last acknowledged write (%d not: %s)" % (len(acks), sum(w.unknown for w in writers), len(lost),
                                                    sorted(lost.items())[:3]))
for api in (A, B):
    got = c.wait_for(lambda: (lambda l: l if int(l.metadata.resourceVersion) >= top else None)(
        api.cl.call("Pods", "List", pb.ListRequest(namespace=NS))), timeout=30)
    mine = {p.metadata.name: int(p.metadata.resourceVersion) for p in got.items} if got else None
    t.ok(mine == etcd_pods, "%s lists exactly etcd's %d pods" % (api.name, len(etcd_pods)))
for w in watchers:
    c.wait_for(lambda: w.events and w.events[-1][0] >= top, timeout=30)
    w.stop()
for w, api in zip(watchers, (A, B)):
    revs = [e[0] for e in w.events]
    dup = len(revs) - len(set(revs))
    t.ok(revs == sorted(set(revs)), "watcher on %s: %d events in order, none twice (%d twice)"
         % (api.name, len(revs), dup))
    seen = {(e[2], e[0]) for e in w.events}
    t.ok(acks <= seen, "... every acknowledged write among them (%d missing)" % len(acks - seen))
t.done()
