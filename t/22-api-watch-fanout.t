#!/usr/bin/python3
# coracle-apiserver end to end: a change goes to thousands of watch streams
# in slices (watch.c: 100 us each, the loop polling between them), and the
# changes that arrive meanwhile wait their turn. watch-bench (contrib/bench)
# opens 3,000 watchers, 500 per HTTP/2 connection, and creates 1,000 pods
# with 100 in flight: every watcher must get every create exactly once and
# in revision order (watch-bench counts a resourceVersion not above the
# watcher's previous one as disorder), none may be ended, and the server's
# count of events sent must be exactly watchers x writes.
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest

t = ctest.Tap()
NW, NWRITES = 3000, 1000
wb = os.path.join(ctest.BUILD, "contrib", "bench", "watch-bench")
if not os.access(wb, os.X_OK):
    t.skip_all("no %s (make builds it)" % wb)
c = ctest.Cluster(t)
api = c.start_apiserver("--max-watches-per-user", str(NW + 100))
pb = c.pb


def metric(name):
    for l in (ctest.http_get(c.api_addr, "/metrics")[1] or "").splitlines():
        if l.startswith(name + " "):
            return float(l.split()[1])
    return None


pod = os.path.join(c.dir, "pod.bin")
with open(pod, "wb") as f:
    f.write(ctest.simple_pod("tmpl", ns="wbench").SerializeToString())
sent0 = metric("coracle_apiserver_watch_events_sent_total")
r = subprocess.run([wb, "--target", "coracle", "--addr", c.api_addr, "--pod", pod, "--watchers", str(NW),
                    "--per-conn", "500", "--rate", "0", "--writes", str(NWRITES), "--inflight", "100",
                    "--max-time", "120"], capture_output=True, text=True, timeout=300)
t.is_(r.returncode, 0, "watch-bench ran (%s)" % (r.stderr.strip()[-300:] or "no errors"))
kv = dict(tok.partition("=")[::2] for tok in (r.stdout.strip().splitlines() or [""])[-1].split())
t.diag("watch-bench: " + " ".join("%s=%s" % (k, kv.get(k)) for k in
                                  ("deliveries", "missing", "stray", "disorder", "ended", "write_errors",
                                   "deliveries_per_s", "lat_p99_us")))
t.is_(kv.get("deliveries"), str(NW * NWRITES), "%d watchers x %d creates delivered" % (NW, NWRITES))
t.is_(kv.get("missing"), "0", "none missing")
t.is_(kv.get("disorder"), "0", "each watcher saw each revision once, in order")
t.is_(kv.get("stray"), "0", "no stray events")
t.is_(kv.get("ended"), "0", "no watch ended by the server")
t.is_(kv.get("write_errors"), "0", "every create succeeded")
# the sync write (seq 0) goes to every watcher too
sent = metric("coracle_apiserver_watch_events_sent_total") - (sent0 or 0)
t.is_(sent, float(NW * (NWRITES + 1)), "the server sent exactly watchers x (writes + 1) events")
t.ok(c.wait_for(lambda: metric("coracle_apiserver_watch_pending_changes") == 0, timeout=10),
     "no change left waiting to be fanned out")
t.ok(c.api.alive(), "server alive")
t.done()
