"""opsutil: helpers of the t/75-ops-*.t tests: a NOTIFY_SOCKET listener (what
systemd hears from a Type=notify daemon) and a Prometheus text-format parser.
"""
import os
import re
import socket
import subprocess
import threading
import time


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notify socket. A
    thread reads it (as systemd does) unless paused."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.msgs = []  # every datagram received, as a list of (key, value)
        self.lock = threading.Lock()
        self.paused = False
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped:
            if self.paused:
                time.sleep(0.02)
                continue
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = []
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields.append((k, v))
            with self.lock:
                self.msgs.append(fields)

    def close(self):
        self.stopped = True
        self.thread.join(2)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def env(self, watchdog_usec=None, **extra):
        e = dict(os.environ, NOTIFY_SOCKET=self.path)
        if watchdog_usec:
            e["WATCHDOG_USEC"] = str(watchdog_usec)
        e.update(extra)
        return e

    def mark(self):
        with self.lock:
            return len(self.msgs)

    def _find(self, key, value, after):
        with self.lock:
            for i in range(after, len(self.msgs)):
                for k, v in self.msgs[i]:
                    if k == key and (value is None or v == value):
                        return i
        return None

    def wait(self, key, value=None, timeout=10, after=0):
        """Waits for a message (index >= after) carrying key (=value); returns its index or None."""
        deadline = time.time() + timeout
        while True:
            i = self._find(key, value, after)
            if i is not None or time.time() > deadline:
                return i
            time.sleep(0.02)

    def collect(self, seconds):
        time.sleep(seconds)

    def count(self, key, value=None, after=0):
        with self.lock:
            return sum(1 for m in self.msgs[after:] for k, v in m
                       if k == key and (value is None or v == value))

    def values(self, key):
        with self.lock:
            return [v for m in self.msgs for k, v in m if k == key]


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prom(text):
    """Parses the Prometheus text format 0.0.4. Returns (samples, types):
    samples maps (name, frozenset(labels.items())) -> float; types maps a
    metric family to its TYPE. Raises ValueError naming the bad line."""
    samples, types, helps = {}, {}, {}
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise ValueError("line %d: bad TYPE: %r" % (n, line))
                if parts[2] in types:
                    raise ValueError("line %d: second TYPE for %s" % (n, parts[2]))
                types[parts[2]] = parts[3]
            elif len(parts) >= 3 and parts[1] == "HELP":
                helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("line %d: not a sample: %r" % (n, line))
        name, lbl, val = m.group(1), m.group(3) or "", m.group(4)
        labels = {}
        pos = 0
        while pos < len(lbl):
            lm = _LABEL.match(lbl, pos)
            if not lm:
                raise ValueError("line %d: bad labels: %r" % (n, line))
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        try:
            v = float(val)
        except ValueError:
            raise ValueError("line %d: bad value %r" % (n, val))
        key = (name, frozenset(labels.items()))
        if key in samples:
            raise ValueError("line %d: duplicate sample %r" % (n, line))
        samples[key] = v
    # histograms: cumulative buckets ending in +Inf equal to _count
    for fam, tp in types.items():
        if tp != "histogram":
            continue
        groups = {}
        for (name, lbls), v in samples.items():
            if name == fam + "_bucket":
                d = dict(lbls)
                le = d.pop("le", None)
                if le is None:
                    raise ValueError("%s_bucket without le" % fam)
                groups.setdefault(frozenset(d.items()), []).append((float(le), v))
        for g, buckets in groups.items():
            buckets.sort()
            prev = 0
            for le, v in buckets:
                if v < prev:
                    raise ValueError("%s: buckets not cumulative" % fam)
                prev = v
            if buckets[-1][0] != float("inf"):
                raise ValueError("%s: no +Inf bucket" % fam)
            cnt = samples.get((fam + "_count", g))
            if cnt is None or cnt != buckets[-1][1]:
                raise ValueError("%s: _count %s != +Inf bucket %s" % (fam, cnt, buckets[-1][1]))
    return samples, types


def value(samples, name, **labels):
    """The sample's value, or None."""
    return samples.get((name, frozenset(labels.items())))


def total(samples, name, **match):
    """Sum of every sample of name whose labels include match."""
    s = 0.0
    for (n, lbls), v in samples.items():
        if n == name and all(dict(lbls).get(k) == w for k, w in match.items()):
            s += v
    return s


def h2_get(addr, path, timeout=10):
    """GET over HTTP/2 with prior knowledge (curl); returns (status, body) or (None, error)."""
    try:
        p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-m", str(timeout),
                            "-w", "\n%{http_code} %{http_version}", "http://%s%s" % (addr, path)],
                           capture_output=True, text=True, timeout=timeout + 5)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    body, _, tail = p.stdout.rpartition("\n")
    try:
        code, ver = tail.split()
    except ValueError:
        return None, p.stdout + p.stderr
    if ver != "2":
        return None, "answered over HTTP/%s, not HTTP/2" % ver
    return int(code), body
