"""ctest: the harness of coracle's end-to-end tests (t/NN-name.t in Python).

It prints TAP for prove, makes a temporary directory per test, starts the
real daemons from the build directory on free loopback ports, talks to the
apiserver through a stock gRPC client (grpcio, with message classes that
protoc generates from proto/ at test time), runs coraclectl, and cleans up
every process and file it made, also when the test fails or is killed.

    import ctest
    t = ctest.Tap()
    c = ctest.Cluster(t)
    api = c.start_apiserver()
    pod = c.pb.Pod(metadata=c.pb.ObjectMeta(name="a"), spec=...)
    created = api.call("Pods", "Create", pod)
    t.is_(created.metadata.name, "a", "created")
    t.done()
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import grpc

# coraclectl in tests never reads the user's config (~/.config/coracle/config,
# e.g. the admin identity contrib/cluster writes there): an empty one, unless
# a test sets CORACLE_CONFIG (or removes it) in its own environment.
os.environ["CORACLE_CONFIG"] = os.devnull

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("CORACLE_SRC") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("CORACLE_BUILD") or SRC

# How long a call or a daemon may take before the test gives up on it. These
# bound a hang, nothing else: what a check needs to see happen in time, it
# checks itself. CI's machine may be several times slower than a developer's,
# and runs everything under the sanitizers beside another script: generous.
DEADLINE = 60
# the store the apiservers tests start use: lmdb (default) or etcd3
STORE = os.environ.get("CORACLE_TEST_STORE", "lmdb")


def _load_pb():
    """Generates coracle_pb2 from proto/ into the build dir (once) and imports it."""
    out = os.path.join(BUILD, "t", "py")
    os.makedirs(out, exist_ok=True)
    proto = os.path.join(SRC, "proto", "coracle.proto")
    gen = os.path.join(out, "coracle_pb2.py")
    if not os.path.exists(gen) or os.path.getmtime(gen) < os.path.getmtime(proto):
        tmp = tempfile.mkdtemp(dir=out)
        subprocess.check_call(["protoc", "--python_out=" + tmp, "-I", os.path.dirname(proto), proto])
        os.replace(os.path.join(tmp, "coracle_pb2.py"), gen)
        shutil.rmtree(tmp, ignore_errors=True)
    sys.path.insert(0, out)
    import coracle_pb2
    return coracle_pb2


pb = _load_pb()


class Tap:
    """TAP producer. Every check prints one line; done() prints the plan and
    exits 1 if anything failed. An exception in the test is reported as a
    failed check, never swallowed."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self._done = False
        sys.stdout.reconfigure(line_buffering=True)
        # CORACLE_TAP_LOG=DIR: a copy of the TAP stream in DIR/SCRIPT.log, so
        # that contrib/test-all can show a failure's diagnostics after prove's
        # (quiet) run.
        self._log = None
        logdir = os.environ.get("CORACLE_TAP_LOG")
        if logdir:
            os.makedirs(logdir, exist_ok=True)
            name = os.path.basename(sys.argv[0]) + ".log"
            self._log = open(os.path.join(logdir, name), "w", buffering=1)
        prev_hook = sys.excepthook

        def hook(tp, val, tb):
            self.ok(False, "unexpected exception: %s: %s" % (tp.__name__, val))
            for line in traceback.format_exception(tp, val, tb):
                for l in line.rstrip().split("\n"):
                    self.diag(l)
            self.done()
        sys.excepthook = hook
        self._prev_hook = prev_hook

    def _out(self, line):
        print(line)
        if self._log:
            self._log.write(line + "\n")

    def ok(self, cond, name):
        self.n += 1
        self._out("%sok %d - %s" % ("" if cond else "not ", self.n, name.replace("\n", " ")))
        if not cond:
            self.failed += 1
            frame = traceback.extract_stack()[-3] if len(traceback.extract_stack()) >= 3 else None
            if frame:
                self.diag("  Failed at %s line %d" % (os.path.basename(frame.filename), frame.lineno))
        return bool(cond)

    def is_(self, got, expected, name):
        r = self.ok(got == expected, name)
        if not r:
            self.diag("     got: %r" % (got,))
            self.diag("expected: %r" % (expected,))
        return r

    def like(self, got, sub, name):
        r = self.ok(got is not None and sub in got, name)
        if not r:
            self.diag("     got: %r" % (got,))
            self.diag("expected to contain: %r" % (sub,))
        return r

    def skip(self, why, count=1):
        for _ in range(count):
            self.n += 1
            self._out("ok %d # skip %s" % (self.n, why))

    def diag(self, msg):
        for line in str(msg).split("\n"):
            self._out("# " + line)

    def bail(self, why):
        self._out("Bail out! " + why)
        sys.exit(255)

    def skip_all(self, why):
        self._out("1..0 # SKIP " + why)
        self._done = True
        sys.exit(0)

    def done(self):
        if not self._done:
            self._done = True
            self._out("1..%d" % self.n)
        sys.exit(1 if self.failed else 0)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(addr, path, timeout=10.0):
    """HTTP/1.1 GET to host:port; returns (status, body) or (None, error text)."""
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, addr)).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return None, str(e)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ")[1])
    except (IndexError, ValueError):
        return None, data.decode(errors="replace")
    return status, body.decode(errors="replace")


class ApiError(Exception):
    def __init__(self, code, message):
        super().__init__("%s: %s" % (code.name, message))
        self.code = code
        self.message = message


class Client:
    """A stock grpcio client for the coracle.v1 services."""

    RESP = {("Pods", "Log"): "LogChunk"}

    def __init__(self, addr):
        self.addr = addr
        target = addr[5:] if addr.startswith("unix:") else addr
        if addr.startswith("unix:"):
            target = "unix://" + addr[5:]
        # A channel of its own: grpcio shares connections between channels to
        # the same target by default, and a new Client after an apiserver
        # restart must not inherit the old, broken connection.
        self.channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])

    def close(self):
        self.channel.close()

    def _resp_type(self, service, method):
        # every kind's service is its kind in the plural: Pods, ConfigMaps, NetworkPolicies
        kind = service[:-3] + "y" if service.endswith("ies") else service[:-1]
        name = self.RESP.get((service, method)) or kind + {"List": "List", "Watch": "WatchEvent"}.get(method, "")
        return getattr(pb, name)

    def call(self, service, method, req, timeout=DEADLINE):
        """Unary call; returns the response or raises ApiError."""
        rt = self._resp_type(service, method)
        fn = self.channel.unary_unary("/coracle.v1.%s/%s" % (service, method),
                                      request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=rt.FromString)
        try:
            return fn(req, timeout=timeout)
        except grpc.RpcError as e:
            raise ApiError(e.code(), e.details())

    def try_call(self, service, method, req, timeout=DEADLINE):
        """Unary call; returns (response, None) or (None, ApiError)."""
        try:
            return self.call(service, method, req, timeout), None
        except ApiError as e:
            return None, e

    def update(self, service, ns, name, mutate, method="Update"):
        """Get, mutate(obj), Update: retried while a controller's write comes
        first (ABORTED), as kubectl's edits are. Returns the updated object."""
        for _ in range(100):
            obj = self.call(service, "Get", pb.GetRequest(namespace=ns, name=name))
            mutate(obj)
            r, e = self.try_call(service, method, obj)
            if not e:
                return r
            if e.code != grpc.StatusCode.ABORTED:
                raise e
        raise ApiError(grpc.StatusCode.ABORTED, "%s %s/%s: conflicts without end" % (service, ns, name))

    def stream(self, service, method, req, timeout=None):
        """Server-streaming call; returns the grpcio iterator (cancel() it when done)."""
        rt = self._resp_type(service, method)
        fn = self.channel.unary_stream("/coracle.v1.%s/%s" % (service, method),
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=rt.FromString)
        return fn(req, timeout=timeout)


def meta(name, ns=None, **kw):
    m = pb.ObjectMeta(name=name, **kw)
    if ns is not None:
        m.namespace = ns
    return m


def simple_pod(name, ns="default", image="busybox", containers=None, **spec):
    cs = containers or [pb.Container(name="c", image=image)]
    return pb.Pod(metadata=meta(name, ns), spec=pb.PodSpec(containers=cs, **spec))


class Daemon:
    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=DEADLINE):
        """Stops the daemon; returns its exit status (None if it had to be killed)."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        try:
            self.proc.send_signal(sig)
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def kill(self):
        return self.stop(signal.SIGKILL)

    def tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


class Cluster:
    """A temporary directory and the daemons a test starts in it. Everything is
    torn down at exit, also on failure or SIGTERM from prove."""

    def __init__(self, tap, name=None):
        self.t = tap
        self.pb = pb
        self.dir = tempfile.mkdtemp(prefix="coracle-%s-" % (name or os.path.basename(sys.argv[0])))
        self.daemons = []
        self.cleanups = []
        self.api_addr = None
        self.etcd = None
        self.clients = []
        # The scripts written before namespaces were objects create into
        # namespaces they never made: their apiservers take every namespace
        # as existing (--implicit-namespaces). A script that tests
        # namespaces sets this False before starting its apiserver.
        self.implicit_namespaces = True
        atexit.register(self.teardown)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
        signal.signal(signal.SIGINT, lambda *a: sys.exit(1))

    def bin(self, name):
        path = os.path.join(BUILD, name)
        if name.startswith("t/") and not os.path.exists(path):
            # a test program only `make check` builds: made now, so that one
            # script runs alone after a plain `make`
            subprocess.run(["make", "-s", "-C", BUILD, name], stdout=subprocess.DEVNULL, check=False)
        return path

    def on_teardown(self, fn):
        self.cleanups.append(fn)

    def teardown(self):
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        failed = self.t.failed > 0
        for d in reversed(self.daemons):
            if failed:
                self.t.diag("--- last lines of %s log ---\n%s" % (d.name, d.tail()))
            d.stop(timeout=5)
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:
                self.t.diag("cleanup failed: %s" % e)
        if os.environ.get("CORACLE_KEEP_TMP") and failed:
            self.t.diag("kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, name, argv, env=None):
        if self.implicit_namespaces and os.path.basename(argv[0]) == "coracle-apiserver":
            argv = argv[:1] + ["--implicit-namespaces"] + argv[1:]
        d = Daemon(name, argv, os.path.join(self.dir, name + ".log"), env=env)
        self.daemons.append(d)
        return d

    def certs(self, d, *args):
        """contrib/certs -d D ARGS...: a CA, certificates and client configs in d;
        bails out if it fails."""
        r = subprocess.run([os.path.join(SRC, "contrib", "certs"), "-d", d] + list(args),
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.t.bail("contrib/certs failed: " + r.stderr)

    def store_args(self):
        """The apiserver's store flags: none for LMDB, or (CORACLE_TEST_STORE=etcd3)
        a one-member etcd of this test's own, started on first use."""
        if STORE != "etcd3":
            return []
        if self.etcd is None:
            import etcdutil
            why = etcdutil.available()
            if why:
                self.t.bail("CORACLE_TEST_STORE=etcd3: " + why)
            self.etcd = etcdutil.EtcdCluster(self, members=1)
        return ["--storage-backend", "etcd3", "--etcd-servers", ",".join(self.etcd.endpoints)]

    def start_apiserver(self, *extra, data_dir=None, port=None, wait=True):
        """Starts coracle-apiserver on a free port, on the store CORACLE_TEST_STORE
        names (lmdb, the default, or etcd3); returns a Client."""
        port = port or (int(self.api_addr.rsplit(":", 1)[1]) if self.api_addr else free_port())
        self.api_addr = "127.0.0.1:%d" % port
        data_dir = data_dir or os.path.join(self.dir, "data")
        self.api = self.start("apiserver", [self.bin("coracle-apiserver"), "--listen", self.api_addr,
                                            "--data-dir", data_dir] + self.store_args() + list(extra))
        if wait:
            self.wait_ready(self.api_addr, self.api)
        c = Client(self.api_addr)
        self.clients.append(c)
        return c

    def wait_ready(self, addr, daemon, timeout=DEADLINE):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, _ = http_get(addr, "/readyz", timeout=5)
            if status == 200:
                return True
            if not daemon.alive():
                self.t.bail("%s exited at start (status %s):\n%s" % (daemon.name, daemon.proc.returncode, daemon.tail()))
            time.sleep(0.05)
        self.t.bail("%s not ready on %s after %ds:\n%s" % (daemon.name, addr, timeout, daemon.tail()))

    def start_scheduler(self, *extra):
        return self.start("scheduler", [self.bin("coracle-scheduler"), "--server", self.api_addr] + list(extra))

    def start_controller_manager(self, *extra):
        return self.start("controller-manager", [self.bin("coracle-controller-manager"), "--server", self.api_addr,
                                                 "--healthz-listen", ""] + list(extra))

    def start_kubelet(self, node, *extra, root_dir=None):
        root_dir = root_dir or os.path.join(self.dir, "kubelet-" + node)
        return self.start("kubelet-" + node, [self.bin("coracle-kubelet"), "--server", self.api_addr,
                                              "--node-name", node, "--root-dir", root_dir] + list(extra))

    def ctl(self, *args, stdin=None, timeout=2 * DEADLINE, server=True):
        """Runs coraclectl; returns (exit code, stdout, stderr)."""
        argv = [self.bin("coraclectl")]
        if server and self.api_addr:
            argv += ["--server", self.api_addr]
        argv += list(args)
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ctl_watch(self, *args, env=None):
        """Starts `coraclectl --server ADDR get ARGS...` (a -w watch) in the
        background; returns a CtlWatch collecting its stdout, stopped at
        teardown."""
        return CtlWatch(self, list(args), env)

    def wait_for(self, fn, timeout=30, interval=0.05):
        """Calls fn until it returns a true value (returned) or timeout (returns None)."""
        deadline = time.time() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.time() > deadline:
                return None
            time.sleep(interval)


class CtlWatch:
    """A running `coraclectl get ... -w` and the text it printed so far."""

    def __init__(self, cluster, args, env=None):
        self.c = cluster
        self.p = subprocess.Popen([cluster.bin("coraclectl"), "--server", cluster.api_addr, "get"] + args,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, **(env or {})))
        self.out = ""
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        cluster.on_teardown(self.stop)

    def _read(self):
        for ch in iter(lambda: self.p.stdout.read(1), ""):
            with self.lock:
                self.out += ch

    def text(self):
        with self.lock:
            return self.out

    def wait(self, fn, timeout=DEADLINE):
        """Waits until fn(text so far) is true; returns its value or None."""
        return self.c.wait_for(lambda: fn(self.text()), timeout=timeout)

    def stop(self):
        """Ends it (if still running); returns what it wrote to stderr."""
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(5)
        return self.p.stderr.read()


def node_cleanup(root, runc_root=None):
    """What a kubelet under root left (it was stopped first): its runc
    containers, the pause processes of shared PID namespaces, then every
    mount below root."""
    runc_root = runc_root or os.path.join(root, "runc")
    subprocess.run("for id in $(runc --root %s list -q 2>/dev/null); do runc --root %s kill $id KILL;"
                   " runc --root %s delete -f $id; done 2>/dev/null;"
                   " for f in %s/pods/*/ns/pause.pid; do p=$(cat $f);"
                   " [ \"$(cat /proc/$p/comm)\" = pause ] && kill -9 $p; done 2>/dev/null;"
                   " grep -F ' %s/' /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l"
                   % (runc_root, runc_root, runc_root, root, root), shell=True)


def need_root(tap):
    if os.geteuid() != 0:
        tap.skip_all("needs root")
