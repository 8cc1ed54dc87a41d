#!/usr/bin/python3
# coracle-apiserver end to end: the global watch memory budget
# (--watch-memory-limit). Watchers that never read, each far below the
# per-watcher cap (--watch-queue-bytes), together pass the budget (each
# holds its own copy of the initial state, then live events shared by all):
# the queues stuck longest are ended (RESOURCE_EXHAUSTED) and their unsent events
# freed at once, so the server's memory stays near the budget however many
# stalled clients there are, while a watcher that reads gets every event.
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import simple_pod
import grpc

t = ctest.Tap()
c = ctest.Cluster(t)
# freed memory must not sit in ASan's quarantine (CI builds with the sanitizers)
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0"]))
LIMIT = 16 << 20
NSTALL = 40
N = 600
NINIT = 100
BLOB = 32768
api = c.start_apiserver("--watch-queue-bytes", str(64 << 20), "--watch-memory-limit", str(LIMIT))
pb = c.pb
pid = c.api.proc.pid


def rss_anon():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def metric(name):
    for l in (ctest.http_get(c.api_addr, "/metrics")[1] or "").splitlines():
        if l.startswith(name + " "):
            return float(l.split()[1])
    return None


def lit(name, value):
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


hdrs = b"".join(lit(k, v) for k, v in [(":method", "POST"), (":scheme", "http"), (":path", "/coracle.v1.Pods/Watch"),
                                       (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers")])
req = pb.ListRequest(namespace="big").SerializeToString()
for i in range(NINIT):
    bp = simple_pod("init%d" % i, ns="big")
    bp.metadata.annotations["blob"] = "y" * BLOB
    api.call("Pods", "Create", bp)
before = rss_anon()
stalled = []
for i in range(NSTALL):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", int(c.api_addr.rsplit(":", 1)[1])))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 4, 1, hdrs) +
              frame(0, 1, 1, b"\x00" + struct.pack(">I", len(req)) + req))
    stalled.append(s)
c.on_teardown(lambda: [s.close() for s in stalled])
t.ok(c.wait_for(lambda: (metric("coracle_apiserver_watch_slow_ended_total") or 0) >= NSTALL // 2,
                  timeout=ctest.DEADLINE),
     "%d stalled watchers opened, their initial state (%d KiB each) passed the budget: %s ended"
     % (NSTALL, NINIT * BLOB >> 10, metric("coracle_apiserver_watch_slow_ended_total")))
peak = rss_anon()

fast = api.stream("Pods", "Watch", pb.ListRequest(namespace="big"))
got = []


def reader():
    try:
        for e in fast:
            got.append(e.object.metadata.name)
    except grpc.RpcError:
        pass


th = threading.Thread(target=reader)
th.start()
for i in range(N):
    bp = simple_pod("big%d" % i, ns="big")
    bp.metadata.annotations["blob"] = "x" * BLOB
    api.call("Pods", "Create", bp)
    if i % 10 == 0:
        peak = max(peak, rss_anon())
peak = max(peak, rss_anon())
cut = metric("coracle_apiserver_watch_slow_ended_total")
unbudgeted = (NSTALL * NINIT + N) * BLOB >> 20
t.diag("%d stalled watchers x %d KiB initial state + %d KiB of shared events = %d MiB unbudgeted; budget %d MiB; "
       "RssAnon grew %d MiB at peak" % (NSTALL, NINIT * BLOB >> 10, N * BLOB >> 10, unbudgeted, LIMIT >> 20,
                                         (peak - before) >> 20))
t.is_(cut, float(NSTALL), "every stalled watcher was ended by the budget (each stayed far below its own cap)")
t.ok(peak - before < 40 << 20, "server anonymous memory grew %d MiB (budget %d MiB), not the %d MiB the queues would hold"
     % ((peak - before) >> 20, LIMIT >> 20, unbudgeted))
c.wait_for(lambda: len(got) >= NINIT + N, timeout=ctest.DEADLINE)
t.is_(len(got), NINIT + N, "a watcher that reads got every event (initial state and live)")
t.is_(metric("coracle_apiserver_watchers"), 1.0, "only the reading watcher is left")
fast.cancel()
th.join()
t.ok(c.api.alive(), "server alive")
t.done()
