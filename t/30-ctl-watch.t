#!/usr/bin/python3
# coraclectl get -w against a real apiserver: the list, then one row per
# change in order (create, modify, delete), --watch-only, resuming across an
# apiserver restart from the last resourceVersion seen, and re-listing when
# that revision has been compacted away (OUT_OF_RANGE).
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import simple_pod

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver("--compact-keep", "5")
pb = c.pb


def Watcher(*args):
    return c.ctl_watch(*args, env={"CORACLE_LOG_LEVEL": "debug"})


def objs(text):
    """The JSON objects printed one after the other."""
    dec, i, r = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return r
        try:
            o, i = dec.raw_decode(text, i)
        except ValueError:
            return r
        r.append(o)


api.call("Pods", "Create", simple_pod("before"))

# ---- table: list, then one row per change ----
w = Watcher("pods", "-w")
t.ok(w.wait(lambda s: "before" in s), "lists first")
api.call("Pods", "Create", simple_pod("w1", image="busybox:1"))
live = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="w1"))
live.spec.containers[0].image = "busybox:2"
api.call("Pods", "Update", live)
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="w1"))
t.ok(w.wait(lambda s: s.count("\nw1 ") == 3), "three rows for w1 (added, modified, deleted)")
lines = w.text().splitlines()
t.is_(lines[0].split(), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "one header")
t.is_(sum(1 for l in lines if l.startswith("NAME")), 1, "the header is printed once")
w.stop()

# ---- a list of more than one page (500), then the watch ----
for i in range(1200):
    api.call("Pods", "Create", simple_pod("b%04d" % i, ns="bulkw"))
w = Watcher("po", "-n", "bulkw", "-w", "-o", "name")
t.ok(w.wait(lambda s: s.count("\n") >= 1200), "the list comes in pages")
api.call("Pods", "Create", simple_pod("after", ns="bulkw"))
t.ok(w.wait(lambda s: "pod/after\n" in s), "then the watch")
t.is_(w.text().split(), ["pod/b%04d" % i for i in range(1200)] + ["pod/after"], "all items once, in order")
w.stop()

# ---- -o json: the objects in order ----
api.call("Pods", "Create", simple_pod("w2", image="busybox:1"))
w = Watcher("po", "w2", "-w", "-o", "json")
t.ok(w.wait(lambda s: len(objs(s)) >= 1), "the named pod is listed first")
live = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="w2"))
live.spec.containers[0].image = "busybox:2"
api.call("Pods", "Update", live)
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="w2"))
t.ok(w.wait(lambda s: len(objs(s)) >= 3), "three events as JSON")
o = objs(w.text())
t.is_([x["spec"]["containers"][0]["image"] for x in o], ["busybox:1", "busybox:2", "busybox:2"],
      "list, modify, delete in order")
rvs = [int(x["metadata"]["resourceVersion"]) for x in o]
t.ok(rvs == sorted(rvs), "resourceVersions increase: %s" % rvs)
t.ok(all(x["metadata"]["name"] == "w2" for x in o), "only the named pod")
w.stop()

# ---- --watch-only, then resume across an apiserver restart ----
w = Watcher("po", "--watch-only", "-o", "name")
# it prints nothing until something changes: poke until the watch is up
for i in range(100):
    api.call("Pods", "Create", simple_pod("probe%d" % i))
    if w.wait(lambda s: "pod/probe" in s, timeout=0.3):
        break
t.ok("pod/before" not in w.text(), "--watch-only does not list")
api.call("Pods", "Create", simple_pod("w3"))
t.ok(w.wait(lambda s: "pod/w3\n" in s), "--watch-only sees a create")
c.api.stop()
# History enough for the resume: on etcd the apiservers' own election Leases
# (given up at stop, taken at start) add revisions, and with 5 kept w3's
# could be compacted away, making this a re-list (the next part's case).
api = c.start_apiserver("--compact-keep", "100")
api.call("Pods", "Create", simple_pod("w4"))
t.ok(w.wait(lambda s: "pod/w4\n" in s), "resumed after the apiserver restarted")
t.is_(w.text().count("pod/w3\n"), 1, "no replay of what was already seen")
t.ok(w.p.poll() is None, "still watching")

# ---- OUT_OF_RANGE: the last revision seen was compacted away -> re-list ----
c.api.stop()
time.sleep(3)  # let coraclectl's reconnect backoff grow
api = c.start_apiserver("--compact-keep", "5")
for i in range(12):
    api.call("Pods", "Create", simple_pod("gap%d" % i))
t.ok(w.wait(lambda s: all(("pod/gap%d\n" % i) in s for i in range(12))),
     "changes made while it was away are all shown (re-listed or replayed)")
api.call("Pods", "Create", simple_pod("w5"))
t.ok(w.wait(lambda s: "pod/w5\n" in s), "and it keeps watching")
err = w.stop()
t.ok("listing again" in err, "the watch was re-listed after OUT_OF_RANGE")
t.ok("rror" not in err, "no error printed: " + err)
t.done()
