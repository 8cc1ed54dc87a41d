#!/usr/bin/python3
# The in-flight limits leave long-running requests out, as Kubernetes'
# max-in-flight filter does: with --max-requests-inflight N, N+1 REST
# watches sent at once, each with the initial state of a few hundred pods
# to send, are all accepted, none 429, and a Get beside them is served;
# the gauges (apiserver_current_inflight_requests by request_kind, and
# coracle_apiserver_inflight_requests, which counted gRPC watches) keep
# their idle values while the watches, REST and gRPC, stay open. (A
# request held before its answer begins, as a watch whose initial state
# is read in the worker, is checked in t/unit/test_h2.c.)
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import opsutil
from ctest import simple_pod

N = 2
NPODS = 400
t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver("--max-requests-inflight", str(N), "--max-mutating-requests-inflight", str(N))
pb = c.pb
host, port = c.api_addr.rsplit(":", 1)


def gauges():
    """(readOnly, mutating, coracle_apiserver_inflight_requests, watchers), or None if /metrics fails."""
    st, body = ctest.http_get(c.api_addr, "/metrics")
    if st != 200:
        t.diag("/metrics: %s %s" % (st, body[:200]))
        return None
    s, _ = opsutil.parse_prom(body)
    return (opsutil.value(s, "apiserver_current_inflight_requests", request_kind="readOnly"),
            opsutil.value(s, "apiserver_current_inflight_requests", request_kind="mutating"),
            opsutil.value(s, "coracle_apiserver_inflight_requests"),
            opsutil.value(s, "coracle_apiserver_watchers"))


class RestWatch:
    """An HTTP/1.1 watch on its own connection; its status line and JSON lines as they come."""

    def __init__(self):
        self.s = socket.create_connection((host, int(port)), timeout=ctest.DEADLINE)
        self.buf = b""
        c.on_teardown(self.s.close)

    def send(self):
        self.s.sendall(("GET /api/v1/namespaces/default/pods?watch=1 HTTP/1.1\r\nHost: %s\r\n\r\n"
                        % c.api_addr).encode())

    def _read(self, until, timeout):
        end = time.time() + timeout
        while not until() and time.time() < end:
            if select.select([self.s], [], [], max(0, end - time.time()))[0]:
                d = self.s.recv(65536)
                if not d:
                    break
                self.buf += d
        return until()

    def status(self, timeout):
        """The answer's HTTP status, or None if none came within timeout."""
        if not self._read(lambda: b"\r\n" in self.buf, timeout):
            return None
        return int(self.buf.split(b" ", 2)[1])

    def has_event(self, name, timeout):
        return self._read(lambda: ('"name":"%s"' % name).encode() in self.buf.replace(b" ", b""), timeout)


for i in range(NPODS):
    api.call("Pods", "Create", simple_pod("p%03d" % i))
idle = gauges()
t.ok(idle is not None and idle[1] == 0 and idle[0] is not None and idle[0] <= 1,
     "idle: the gauges by request_kind (readOnly counts the scrape itself) (%s)" % (idle,))

rest = [RestWatch() for _ in range(N + 1)]
for w in rest:
    w.send()
st, body = ctest.http_get(c.api_addr, "/api/v1/namespaces/default/pods/p000")
t.is_(st, 200, "a Get beside %d REST watches over --max-requests-inflight %d is served" % (N + 1, N))
sts = [w.status(ctest.DEADLINE) for w in rest]
t.is_(sts, [200] * (N + 1), "none refused (no 429)")
grpc_w = [api.stream("Pods", "Watch", pb.ListRequest(namespace="default")) for _ in range(N)]
t.ok(c.wait_for(lambda: (gauges() or (0, 0, 0, 0))[3] == 2 * N + 1, timeout=ctest.DEADLINE),
     "and %d gRPC watches: all open" % N)
g = gauges()
t.ok(g is not None and g[:3] == idle[:3],
     "the gauges keep their idle values with the watches open (%s, idle %s)" % (g, idle))

api.call("Pods", "Create", simple_pod("new"))
t.ok(all(w.has_event("new", ctest.DEADLINE) for w in rest), "every REST watch sees a new pod")
got = [next((e.object.metadata.name for _, e in zip(range(NPODS + 2), w) if e.object.metadata.name == "new"), None)
       for w in grpc_w]
t.ok(got == ["new"] * N, "the gRPC watches too (%s)" % got)
g = gauges()
t.ok(g is not None and g[:3] == idle[:3], "the gauges at their idle values again (%s)" % (g,))
for w in grpc_w:
    w.cancel()
t.done()
