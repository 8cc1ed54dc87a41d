"""faultutil: what the fault-injection tests (t/80-fault-*.t, contrib/soak) share.

- Writer: a load thread doing creates, updates, binds and deletes of its own
  pods and keeping a model of every acknowledged write (name -> revision,
  label, node). A call that fails with a transport error (the apiserver was
  killed under it) is "uncertain": resolve() later decides from the server
  whether it was applied, and fails if it was half-applied.
- history(): every change after a revision, read back through Watch on all
  kinds, to check that revisions are contiguous and each appears once.
- Resumer: a watcher that reconnects after each crash from the last
  revision it saw; its events must be exactly the history, once each.
- tmpfs(), netns helpers: mounts and namespaces torn down at exit, also on
  failure.
"""
import atexit
import os
import random
import subprocess
import threading
import time

import grpc

import ctest
from ctest import pb

# Transport-level outcomes: the call may or may not have been applied.
UNCERTAIN = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
             grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
KINDS = ("Pods", "Nodes", "Events", "Leases")


def env_int(name, default):
    try:
        return int(os.environ.get(name, ""))
    except ValueError:
        return default


def pod(name, ns, label):
    return pb.Pod(metadata=pb.ObjectMeta(name=name, namespace=ns, labels={"v": label}),
                  spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox:1")]))


class Writer:
    """Mixed writes on pods "<prefix>-<i>" of namespace ns, owned by this
    thread alone, so its model is exact. state[name] = (rv, label, node) of
    the last acknowledged write; acked = [(rv, type, name)] in call order
    (for DELETED the revision the object had: Delete answers the object as
    it was, so its deletion revision is only known from the history)."""

    def __init__(self, t, addr, ns, prefix, seed, node="n1"):
        self.t, self.addr, self.ns, self.prefix, self.node = t, addr, ns, prefix, node
        self.rnd = random.Random(seed)
        self.state = {}
        self.acked = []
        self.uncertain = None  # (op, name, before, intended)
        self.errors = []       # unexpected answers (a model mismatch = a bug)
        self.i = 0
        self.throttle = 0.0    # pause after each write, seconds
        self.stop_ev = threading.Event()
        self.cl = None

    def start(self, addr=None):
        """Starts a load thread on addr (one per cycle)."""
        self.addr = addr or self.addr
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def join(self, timeout=None):
        self.th.join(timeout)

    def stop(self):
        self.stop_ev.set()

    def _call(self, method, req, op, name, before, intended):
        try:
            return self.cl.call("Pods", method, req, timeout=ctest.DEADLINE / 2)
        except ctest.ApiError as e:
            if e.code in UNCERTAIN:
                self.uncertain = (op, name, before, intended)
                self.last_unc, self.last_unc_err = (op, name), str(e)
            else:
                self.errors.append("%s %s: %s" % (op, name, e))
            return None

    def run(self):
        self.cl = ctest.Client(self.addr)
        try:
            while not self.stop_ev.is_set() and self.uncertain is None and len(self.errors) < 5:
                self.step()
                if self.throttle:
                    time.sleep(self.throttle)
        finally:
            self.cl.close()

    def step(self):
        r = self.rnd.random()
        names = list(self.state)
        if not names or r < 0.35:
            name = "%s-%d" % (self.prefix, self.i)
            self.i += 1
            lab = "c%d" % self.rnd.randrange(1 << 30)
            p = self._call("Create", pod(name, self.ns, lab), "create", name, None, (lab, ""))
            if p is not None:
                rv = int(p.metadata.resourceVersion)
                self.state[name] = (rv, lab, "")
                self.acked.append((rv, "ADDED", name))
            return
        name = self.rnd.choice(names)
        rv, lab, node = self.state[name]
        if r < 0.65:
            nlab = "u%d" % self.rnd.randrange(1 << 30)
            req = pod(name, self.ns, nlab)
            req.metadata.resourceVersion = str(rv)
            if node:
                req.spec.nodeName = node
            p = self._call("Update", req, "update", name, (rv, lab, node), (nlab, node))
            if p is not None:
                nrv = int(p.metadata.resourceVersion)
                self.state[name] = (nrv, nlab, node)
                self.acked.append((nrv, "MODIFIED", name))
        elif r < 0.8 and not node:
            b = pb.Binding(metadata=pb.ObjectMeta(name=name, namespace=self.ns),
                           target=pb.ObjectReference(kind="Node", name=self.node))
            p = self._call("Bind", b, "bind", name, (rv, lab, node), (lab, self.node))
            if p is not None:
                nrv = int(p.metadata.resourceVersion)
                self.state[name] = (nrv, lab, self.node)
                self.acked.append((nrv, "MODIFIED", name))
        else:
            req = pb.DeleteRequest(namespace=self.ns, name=name, gracePeriodSeconds=0)
            p = self._call("Delete", req, "delete", name, (rv, lab, node), None)
            if p is not None:
                del self.state[name]
                self.acked.append((int(p.metadata.resourceVersion), "DELETED", name))

    def resolve(self, cl):
        """After a restart: decides the uncertain op from the server. Returns
        "applied", "not applied", None (nothing uncertain) or an error text."""
        if self.uncertain is None:
            return None
        op, name, before, intended = self.uncertain
        self.uncertain = None
        got, err = cl.try_call("Pods", "Get", pb.GetRequest(namespace=self.ns, name=name))
        if err is not None and err.code != grpc.StatusCode.NOT_FOUND:
            return "Get %s: %s" % (name, err)
        now = None if got is None else (int(got.metadata.resourceVersion),
                                        got.metadata.labels.get("v", ""), got.spec.nodeName)
        if now is not None and before is not None and now == before:
            return "not applied"
        if now is None and before is None:
            return "not applied"
        if op == "delete" and now is None:
            del self.state[name]
            self.acked.append((before[0], "DELETED", name))
            return "applied"
        if op != "delete" and now is not None and (now[1], now[2]) == intended and \
                (before is None or now[0] > before[0]):
            self.state[name] = now
            self.acked.append((now[0], "ADDED" if op == "create" else "MODIFIED", name))
            return "applied"
        return "half-applied %s of %s: before %r, intended %r, now %r" % (op, name, before, intended, now)


def check_state(cl, ns, writers):
    """Compares the namespace with the writers' models. Returns (checked, problems)."""
    lst = cl.call("Pods", "List", pb.ListRequest(namespace=ns), timeout=30)
    have = {p.metadata.name: (int(p.metadata.resourceVersion), p.metadata.labels.get("v", ""),
                              p.spec.nodeName) for p in lst.items}
    want = {}
    for w in writers:
        want.update(w.state)
    probs = []
    for n, s in want.items():
        if have.get(n) != s:
            probs.append("%s: acknowledged %r, stored %r" % (n, s, have.get(n)))
    for n in have:
        if n not in want:
            probs.append("%s: stored %r but never acknowledged (or acknowledged deleted)" % (n, have[n]))
    return len(want), probs, int(lst.metadata.resourceVersion)


def history(addr, from_rev, to_rev, timeout=ctest.DEADLINE):
    """Every change in (from_rev, to_rev] (from_rev >= 1: Watch from "0" is
    the current state) through Watch on every kind:
    a list of (rev, kind, type, namespace, name) as received (duplicates kept)."""
    got = []
    lock = threading.Lock()
    have = set()
    done = threading.Event()
    cl = ctest.Client(addr)
    streams = []

    def rd(kind):
        s = cl.stream(kind, "Watch", pb.ListRequest(resourceVersion=str(from_rev)), timeout=timeout)
        streams.append(s)
        try:
            for e in s:
                if e.type == "BOOKMARK":
                    continue
                rv = int(e.object.metadata.resourceVersion)
                with lock:
                    if rv <= to_rev:
                        got.append((rv, kind, e.type, e.object.metadata.namespace, e.object.metadata.name))
                        have.add(rv)
                    if len(have) >= to_rev - from_rev:
                        done.set()
        except grpc.RpcError:
            pass
    ths = [threading.Thread(target=rd, args=(k,), daemon=True) for k in KINDS]
    [x.start() for x in ths]
    if to_rev > from_rev:
        done.wait(timeout)
    else:
        time.sleep(0.2)
    time.sleep(0.1)  # let a duplicate, if any, arrive
    for s in streams:
        s.cancel()
    [x.join(5) for x in ths]
    cl.close()
    with lock:
        return sorted(got)


def check_history(h, from_rev, to_rev):
    """Problems with a history: gaps and duplicates."""
    revs = [x[0] for x in h]
    probs = []
    dups = sorted({r for r in revs if revs.count(r) > 1}) if len(set(revs)) != len(revs) else []
    if dups:
        probs.append("revisions seen more than once: %s" % dups[:20])
    gaps = sorted(set(range(from_rev + 1, to_rev + 1)) - set(revs))
    if gaps:
        probs.append("%d revisions missing in (%d, %d]: %s" % (len(gaps), from_rev, to_rev, gaps[:20]))
    return probs


class Resumer(threading.Thread):
    """A watcher on one namespace that, whenever its stream breaks, connects
    again (fresh channel, backoff) from the last revision it saw."""

    def __init__(self, addr, ns, from_rev):
        super().__init__(daemon=True)
        self.addr, self.ns, self.last = addr, ns, from_rev
        self.events = []  # (rev, type, name)
        self.reconnects = 0
        self.errors = []
        self.stop_ev = threading.Event()
        self.stream = None

    def run(self):
        backoff = 0.05
        while not self.stop_ev.is_set():
            cl = ctest.Client(self.addr)
            try:
                self.stream = cl.stream("Pods", "Watch", pb.ListRequest(namespace=self.ns,
                                                                          resourceVersion=str(self.last)))
                for e in self.stream:
                    backoff = 0.05
                    if e.type == "BOOKMARK":
                        continue
                    if e.type == "ERROR":
                        self.errors.append("ERROR event at %d" % self.last)
                        break
                    rv = int(e.object.metadata.resourceVersion)
                    self.events.append((rv, e.type, e.object.metadata.name))
                    self.last = rv
            except grpc.RpcError as e:
                if e.code() not in UNCERTAIN:
                    self.errors.append("watch from %d: %s %s" % (self.last, e.code(), e.details()))
            finally:
                cl.close()
            if self.stop_ev.is_set():
                break
            self.reconnects += 1
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def stop(self):
        self.stop_ev.set()
        if self.stream is not None:
            self.stream.cancel()


def sh(cmd, check=False):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError("%s: %s" % (cmd, r.stderr.strip()))
    return r


def always(fn, c=None):
    """Runs fn at exit, before the Cluster's teardown (atexit is LIFO) so a
    teardown that fails half-way (stdout gone) cannot skip it. With c, the
    cluster's daemons are stopped first (a kubelet would restart what fn
    removes)."""
    def run():
        if c is not None:
            for d in reversed(c.daemons):
                _quiet(lambda: d.stop(timeout=5))
        fn()
    atexit.register(lambda: _quiet(run))


def _quiet(fn):
    try:
        fn()
    except Exception:
        pass


def tmpfs(c, path, size):
    """Mounts a tmpfs of size at path; unmounted at exit, also on failure."""
    os.makedirs(path, exist_ok=True)
    sh("mount -t tmpfs -o size=%s coracle-fault %s" % (size, path), check=True)
    always(lambda: sh("umount -l %s" % path))


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    return int(l.split()[1])
    except OSError:
        pass
    return None


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return 0.0
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))]


def check_acked(h, acked, ns):
    """Acknowledged writes missing from a history. Returns the problems."""
    mine = {}
    for rv, kind, ty, hns, name in h:
        if kind == "Pods" and hns == ns:
            mine.setdefault(name, []).append((rv, ty))
    probs = []
    for rv, ty, name in acked:
        evs = mine.get(name, [])
        if ty == "DELETED":
            ok = any(t2 == "DELETED" and r2 > rv for r2, t2 in evs)
        else:
            ok = (rv, ty) in evs
        if not ok:
            probs.append("acknowledged %s %s at %d not in the history (%r)" % (ty, name, rv, evs))
    return probs


class _Token(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, token):
        self.md = [("authorization", "Bearer " + token)]

    def _add(self, d):
        return d._replace(metadata=list(d.metadata or []) + self.md)

    def intercept_unary_unary(self, cont, d, req):
        return cont(self._add(d), req)

    def intercept_unary_stream(self, cont, d, req):
        return cont(self._add(d), req)


def with_token(channel, token):
    """channel sending "authorization: Bearer token" on every call."""
    return grpc.intercept_channel(channel, _Token(token))


# ---- hostile clients: raw HTTP/2 on plain sockets (run as a separate
# process: `faultutil.py swarm|storm|midframe ...`, so they do not share a GIL
# with the client whose latency is measured) ----

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2frame(ftype, flags, sid, payload):
    n = len(payload)
    return bytes([n >> 16, (n >> 8) & 255, n & 255, ftype, flags]) + sid.to_bytes(4, "big") + payload


def _lit(name, value):
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def watch_request(host, sid, ns, service="Pods"):
    """HEADERS + DATA(END_STREAM) of a gRPC Watch call on stream sid."""
    hb = (_lit(b":method", b"POST") + _lit(b":scheme", b"http") +
          _lit(b":path", ("/coracle.v1.%s/Watch" % service).encode()) + _lit(b":authority", host.encode()) +
          _lit(b"content-type", b"application/grpc") + _lit(b"te", b"trailers"))
    msg = pb.ListRequest(namespace=ns, resourceVersion="0").SerializeToString()
    body = b"\x00" + len(msg).to_bytes(4, "big") + msg
    return h2frame(1, 4, sid, hb) + h2frame(0, 1, sid, body)


def _connect(addr, rcvbuf=0):
    import socket
    host, port = addr.rsplit(":", 1)
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window scale
    s.settimeout(10)
    s.connect((host.strip("[]"), int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def swarm(addr, nread, per_conn, nstall, ns):
    """nread watch streams on connections that read everything (a window of
    2^31-1, PING and SETTINGS answered), nstall on connections of one stream
    each that never read. Prints READY, then "STAT <streams with data> <bytes>"
    every second, until stdin closes. It stands in for clients on other
    machines, so it runs as SCHED_IDLE: parsing every event of 9,000 streams
    in Python must not take the CPU from the client whose latency is measured."""
    import selectors
    import sys
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    big = (1 << 31) - 1
    conns = []
    for i in range(0, nread, per_conn):
        s = _connect(addr)
        out = PREFACE + h2frame(4, 0, 0, (4).to_bytes(2, "big") + big.to_bytes(4, "big")) + \
            h2frame(8, 0, 0, (big - 65535).to_bytes(4, "big"))
        for k in range(min(per_conn, nread - i)):
            out += watch_request(addr, 1 + 2 * k, ns)
        s.sendall(out)
        s.setblocking(False)
        conns.append([s, b""])
    stalled = []
    for i in range(nstall):
        # A small receive buffer: the window closes after a few KiB, as any full
        # buffer's would. With a big one, each change would reach all 1,000 kernels
        # and leave a delayed ACK behind: their timers fire 40 ms later, all at
        # once, in softirq on the CPU that sent the data (over loopback the
        # receiving side runs there), that is the apiserver's.
        s = _connect(addr, rcvbuf=4096)
        s.sendall(PREFACE + h2frame(4, 0, 0, b"") + watch_request(addr, 1, ns))
        stalled.append(s)
    sel = selectors.DefaultSelector()
    for cn in conns:
        sel.register(cn[0], selectors.EVENT_READ, cn)
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    print("READY %d %d" % (nread, nstall), flush=True)
    with_data = set()
    total = 0
    last = time.time()
    while True:
        for key, _ in sel.select(0.5):
            cn = key.data
            if cn is None:
                if not sys.stdin.readline():
                    return
                continue
            try:
                # 64 KiB at most: a bigger buffer is mmap()ed, and shrinking it to
                # what came is an mremap() (0.3 ms seen under perf trace) that this
                # kernel does not preempt, holding up the measured client's CPU
                d = cn[0].recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                sel.unregister(cn[0])
                continue
            buf = cn[1] + d if cn[1] else d
            # frames walked by offset: slicing the buffer per frame would copy it
            # quadratically and make this reader, not the server, the busy one
            off, end = 0, len(buf)
            while end - off >= 9:
                n = int.from_bytes(buf[off:off + 3], "big")
                if end - off < 9 + n:
                    break
                ft, fl = buf[off + 3], buf[off + 4]
                if ft == 0:
                    with_data.add((id(cn), int.from_bytes(buf[off + 5:off + 9], "big") & 0x7fffffff))
                    total += n
                elif ft == 4 and not fl & 1:
                    cn[0].setblocking(True)
                    cn[0].sendall(h2frame(4, 1, 0, b""))
                    cn[0].setblocking(False)
                elif ft == 6 and not fl & 1:
                    cn[0].setblocking(True)
                    cn[0].sendall(h2frame(6, 1, 0, buf[off + 9:off + 9 + n]))
                    cn[0].setblocking(False)
                off += 9 + n
            cn[1] = buf[off:]
        if time.time() - last >= 1:
            last = time.time()
            print("STAT %d %d" % (len(with_data), total), flush=True)


def storm(addr, seconds, max_conns):
    """Connects and resets (SO_LINGER 0) as fast as it can, for seconds or
    max_conns connections; every other one sends half a preface first.
    Prints the count and the rate."""
    import socket
    import struct
    host, port = addr.rsplit(":", 1)
    t0 = time.time()
    n = 0
    while time.time() - t0 < seconds and n < max_conns:
        s = socket.socket()
        try:
            s.connect((host, int(port)))
            if n % 2:
                s.send(PREFACE[:10])
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        s.close()
        n += 1
    dt = time.time() - t0
    print("STORM %d %.2f %.0f" % (n, dt, n / dt), flush=True)


def midframe(addr, n, hold):
    """n connections that stop in the middle of a frame (a HEADERS frame
    header promising more bytes, or a gRPC message cut short), held for hold
    seconds."""
    ss = []
    for i in range(n):
        s = _connect(addr)
        if i % 2:
            s.sendall(PREFACE + h2frame(4, 0, 0, b"") + h2frame(1, 4, 1, b"\x00" * 50)[:20])
        else:
            req = watch_request(addr, 1, "x")
            hdr_len = 9 + int.from_bytes(req[:3], "big")
            data = h2frame(0, 0, 1, b"\x00\x00\x00\x10\x00" + b"\x0a\x02")  # promises 4096 bytes
            s.sendall(PREFACE + h2frame(4, 0, 0, b"") + req[:hdr_len] + data)
        ss.append(s)
    print("MIDFRAME %d" % n, flush=True)
    time.sleep(hold)


if __name__ == "__main__":
    import sys
    a = sys.argv
    if a[1] == "swarm":
        swarm(a[2], int(a[3]), int(a[4]), int(a[5]), a[6])
    elif a[1] == "storm":
        storm(a[2], float(a[3]), int(a[4]))
    elif a[1] == "midframe":
        midframe(a[2], int(a[3]), float(a[4]))


def check_unacked(h, acked, ns):
    """Changes in the history that no acknowledged (or resolved) write explains."""
    known = set((rv, ty, name) for rv, ty, name in acked if ty != "DELETED")
    dels = {}
    for rv, ty, name in acked:
        if ty == "DELETED":
            dels.setdefault(name, []).append(rv)
    probs = []
    for rv, kind, ty, hns, name in h:
        if kind != "Pods" or hns != ns:
            continue
        if ty == "DELETED":
            ok = any(r < rv for r in dels.get(name, []))
        else:
            ok = (rv, ty, name) in known
        if not ok:
            probs.append("%s %s at %d: no acknowledged write made it" % (ty, name, rv))
    return probs


def todo_ok(t, cond, name, why):
    """A check of a known, reported problem: printed as TAP TODO (prove does
    not fail on it) unless CORACLE_STRICT=1, where it counts as a failure."""
    if os.environ.get("CORACLE_STRICT"):
        return t.ok(cond, name)
    t.n += 1
    t._out("%sok %d - %s # TODO %s" % ("" if cond else "not ", t.n, name, why))
    return cond
