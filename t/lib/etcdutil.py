"""etcdutil: real etcd clusters for tests (Debian's etcd-server, 3.4).

    import ctest, etcdutil
    c = ctest.Cluster(t)
    ec = etcdutil.EtcdCluster(c, members=3, tls=True)
    ec.endpoints          # ["https://127.0.0.1:P", ...], clients' view
    ec.ctl("put", "k", "v")
    i = ec.leader(); ec.kill(i); ec.restart(i)

Members run as ctest Daemons (killed at teardown, also on failure) with
their data under the test's temporary directory, on free loopback ports,
with short raft timers (heartbeat 50 ms, election 500 ms) so a cluster
starts and elects in about a second. With tls=True clients talk to the
members over TLS with certificates from contrib/certs (the CA the other
tests use; the members' certificate is the apiserver's, which carries
127.0.0.1) and must present a client certificate (admin's): ec.ca,
ec.client_cert, ec.client_key. Peers talk in cleartext.

With netns=True each member runs in a network namespace of its own, on a
bridge made for the test (10.214.X.0/24, the host at .1), so that
isolate(i) can cut one member off from the others and from clients
(its veth down) and heal(i) bring it back; the namespaces, veths and the
bridge are removed at exit, also on failure.
"""
import atexit
import json
import os
import queue
import subprocess
import threading
import time

import ctest

HEARTBEAT_MS = 50
ELECTION_MS = 500


def available():
    """Why etcd cannot run here, or None."""
    for f in ("/usr/bin/etcd", "/usr/bin/etcdctl"):
        if not os.access(f, os.X_OK):
            return "needs " + f
    return None


class EtcdCluster:
    def __init__(self, c, members=1, tls=False, netns=False, name="etcd", wait=True):
        self.c = c
        self.t = c.t
        self.n = members
        self.tls = tls
        self.name = name
        self.netns = netns
        self.dir = os.path.join(c.dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.daemons = [None] * members
        self.ns = [None] * members
        if netns:
            self._make_netns()
            self.hosts = [self.net + ".%d" % (i + 2) for i in range(members)]
            self.client_ports = [2379] * members
            self.peer_ports = [2380] * members
        else:
            self.hosts = ["127.0.0.1"] * members
            self.client_ports = [ctest.free_port() for _ in range(members)]
            self.peer_ports = [ctest.free_port() for _ in range(members)]
        scheme = "https" if tls else "http"
        self.endpoints = ["%s://%s:%d" % (scheme, h, p) for h, p in zip(self.hosts, self.client_ports)]
        self.peers = ["http://%s:%d" % (h, p) for h, p in zip(self.hosts, self.peer_ports)]
        self.names = ["%s-%d" % (name, i) for i in range(members)]
        if tls:
            pki = os.path.join(self.dir, "pki")
            sans = []
            for h in set(self.hosts):
                sans += ["--san", h]
            c.certs(pki, "-n", "n1", *sans)
            self.ca = os.path.join(pki, "ca.crt")
            self.server_cert = os.path.join(pki, "apiserver.crt")
            self.server_key = os.path.join(pki, "apiserver.key")
            self.client_cert = os.path.join(pki, "admin.crt")
            self.client_key = os.path.join(pki, "admin.key")
        for i in range(members):
            self.start(i, new=True)
        if wait:
            self.wait_healthy()

    # ---- members ----

    def argv(self, i, new):
        listen = self.endpoints[i]
        a = ["etcd", "--name", self.names[i], "--data-dir", os.path.join(self.dir, self.names[i]),
             "--listen-client-urls", listen, "--advertise-client-urls", listen,
             "--listen-peer-urls", self.peers[i], "--initial-advertise-peer-urls", self.peers[i],
             "--initial-cluster", ",".join("%s=%s" % x for x in zip(self.names, self.peers)),
             "--initial-cluster-state", "new" if new else "existing",
             "--initial-cluster-token", "%s-%d" % (self.name, os.getpid()),
             "--heartbeat-interval", str(HEARTBEAT_MS), "--election-timeout", str(ELECTION_MS)]
        if self.tls:
            a += ["--cert-file", self.server_cert, "--key-file", self.server_key,
                  "--client-cert-auth", "--trusted-ca-file", self.ca]
        if self.netns:
            a = ["nsenter", "--net=/run/netns/" + self.ns[i]] + a
        return a

    def start(self, i, new=False):
        """Starts member i (again, after kill: its data dir is kept, so it rejoins)."""
        d = self.c.start(self.names[i], self.argv(i, new))
        self.daemons[i] = d
        return d

    def kill(self, i):
        """kill -9 of member i."""
        self.daemons[i].kill()

    def restart(self, i, wait=True):
        if self.daemons[i].alive():
            self.kill(i)
        self.start(i)
        if wait:
            self.wait_healthy([i])

    def alive(self, i):
        return self.daemons[i].alive()

    # ---- etcdctl ----

    def ctl(self, *args, endpoints=None, timeout=ctest.DEADLINE, check=True):
        """etcdctl ARGS against endpoints (indexes; default every member alive); returns
        stdout, or raises RuntimeError when it fails and check is set."""
        idx = endpoints if endpoints is not None else [i for i in range(self.n) if self.alive(i)]
        argv = ["etcdctl", "--endpoints", ",".join(self.endpoints[i] for i in idx),
                "--command-timeout", "%ds" % max(1, int(timeout))]
        if self.tls:
            argv += ["--cacert", self.ca, "--cert", self.client_cert, "--key", self.client_key]
        env = dict(os.environ, ETCDCTL_API="3")
        r = subprocess.run(argv + list(args), capture_output=True, text=True, env=env,
                           timeout=timeout + 10)
        if check and r.returncode:
            raise RuntimeError("etcdctl %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout if check else r

    def put(self, key, value, endpoints=None):
        """One put through etcdctl; returns its revision."""
        out = self.ctl("put", "-w", "json", key, value, endpoints=endpoints)
        return int(json.loads(out)["header"]["revision"])

    def status(self, i):
        """etcdctl endpoint status of member i as a dict (Status of the JSON), or None."""
        r = self.ctl("endpoint", "status", "-w", "json", endpoints=[i], timeout=5, check=False)
        if r.returncode:
            return None
        try:
            return json.loads(r.stdout)[0]["Status"]
        except (ValueError, KeyError, IndexError):
            return None

    def leader(self, timeout=ctest.DEADLINE):
        """The index of the member that leads (waits for one); None if none in time."""
        def find():
            for i in range(self.n):
                if not self.alive(i):
                    continue
                st = self.status(i)
                if st and st.get("leader") and st["leader"] == st["header"]["member_id"]:
                    return i + 1
            return None
        i = self.c.wait_for(find, timeout=timeout, interval=0.1)
        return i - 1 if i else None

    def wait_healthy(self, members=None, timeout=ctest.DEADLINE):
        """Waits until every member given (default all) answers a linearizable read."""
        members = list(range(self.n)) if members is None else members
        deadline = time.time() + timeout
        for i in members:
            while True:
                r = self.ctl("get", "health-probe", endpoints=[i], timeout=2, check=False)
                if r.returncode == 0:
                    break
                if not self.alive(i):
                    self.t.bail("%s exited at start:\n%s" % (self.names[i], self.daemons[i].tail()))
                if time.time() > deadline:
                    self.t.bail("%s not healthy after %ds:\n%s" % (self.names[i], timeout,
                                                                   self.daemons[i].tail()))
                time.sleep(0.05)

    # ---- network namespaces ----

    def _make_netns(self):
        tag = "e%d" % (os.getpid() % 100000)
        self.br = tag + "b"
        self.net = "10.214.%d" % (os.getpid() % 250)
        self.veths = ["%sh%d" % (tag, i) for i in range(self.n)]
        self.ns = ["%sn%d" % (tag, i) for i in range(self.n)]

        def cleanup():
            for v in self.veths:
                _sh("ip link del %s 2>/dev/null" % v)
            for ns in self.ns:
                _sh("ip netns del %s 2>/dev/null" % ns)
            _sh("ip link del %s 2>/dev/null" % self.br)
        # run before the Cluster's teardown (atexit is LIFO), after the members are gone
        atexit.register(lambda: (self._stop_all(), cleanup()))
        _sh("ip link add %s type bridge && ip addr add %s.1/24 dev %s && ip link set %s up"
            % (self.br, self.net, self.br, self.br), check=True)
        for i in range(self.n):
            ns, host_if, ns_if = self.ns[i], self.veths[i], "%sm" % self.veths[i]
            _sh("ip netns add %s" % ns, check=True)
            _sh("ip link add %s type veth peer name %s" % (host_if, ns_if), check=True)
            _sh("ip link set %s netns %s" % (ns_if, ns), check=True)
            _sh("ip link set %s master %s && ip link set %s up" % (host_if, self.br, host_if),
                check=True)
            _sh("ip -n %s addr add %s.%d/24 dev %s && ip -n %s link set %s up && ip -n %s link set lo up"
                % (ns, self.net, i + 2, ns_if, ns, ns_if, ns), check=True)

    def _stop_all(self):
        for d in self.daemons:
            if d is not None:
                d.stop(timeout=5)

    def isolate(self, i):
        """Cuts member i off from the other members and every client (netns=True)."""
        _sh("ip link set %s down" % self.veths[i], check=True)

    def heal(self, i):
        _sh("ip link set %s up" % self.veths[i], check=True)


class EtcdCall:
    """A running t/etcdcall (the etcd client driven line by line, see its
    header): cmd() sends one command and returns its answer line; what the
    watches print is collected apart (lines(), wait()). Closed at teardown."""

    ASYNC = ("ev", "progress", "ended", "reopened")

    def __init__(self, c, endpoints, ec=None, timeout_ms=None, name="etcdcall"):
        self.c = c
        argv = [c.bin("t/etcdcall")]
        if ec is not None and ec.tls:
            argv += ["-c", ec.ca, "-C", ec.client_cert, "-K", ec.client_key]
        if timeout_ms:
            argv += ["-t", str(timeout_ms)]
        argv.append(",".join(endpoints))
        self.log = open(os.path.join(c.dir, name + ".log"), "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                  text=True, bufsize=1)
        self.answers = queue.Queue()
        self.lock = threading.Lock()
        self.watch_lines = []
        threading.Thread(target=self._read, daemon=True).start()
        c.on_teardown(self.close)

    def _read(self):
        for line in self.p.stdout:
            line = line.rstrip("\n")
            if line.split(" ", 1)[0] in self.ASYNC:
                with self.lock:
                    self.watch_lines.append(line.split(" "))
            else:
                self.answers.put(line)
        self.answers.put(None)

    def cmd(self, line, timeout=ctest.DEADLINE):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        try:
            a = self.answers.get(timeout=timeout)
        except queue.Empty:
            return "timeout"
        return a if a is not None else "exited %s" % self.p.poll()

    def lines(self, kind, wid):
        with self.lock:
            return [l for l in self.watch_lines if l[0] == kind and l[1] == wid]

    def wait(self, kind, wid, fn=lambda ls: ls, timeout=ctest.DEADLINE):
        return self.c.wait_for(lambda: fn(self.lines(kind, wid)), timeout=timeout)

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


class Writer:
    """etcdctl puts of PREFIX0..PREFIX6 one after the other on a thread
    until stop(); targets (member indexes, None: every member alive) may be
    changed meanwhile. A failed put is counted in errors and the loop goes
    on."""

    def __init__(self, ec, prefix, targets=None):
        self.ec = ec
        self.prefix = prefix
        self.targets = targets
        self.errors = []
        self.n = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.ec.put("%s%d" % (self.prefix, self.n % 7), str(self.n),
                            endpoints=None if self.targets is None else list(self.targets))
            except RuntimeError as e:
                self.errors.append(str(e))
                time.sleep(0.1)
            self.n += 1

    def stop(self):
        self._stop.set()
        self._th.join()
        return self


def _sh(cmd, check=False):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError("%s: %s" % (cmd, r.stderr.strip()))
    return r
