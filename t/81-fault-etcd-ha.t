#!/usr/bin/python3
"""High availability on etcd, under faults, as etcd's robustness tests do.

Three etcd members on loopback (TLS between clients and members), two
apiservers A and B on them, two schedulers (leader election, an 8 s Lease)
and one kubelet, each with --server A,B; the seed's three pods run.
Writer threads write pods (create, update, delete; the scheduler binds
them to a node without kubelet), node status, leases and events through
A and B in turn and record every acknowledged write with its
resourceVersion; gRPC watchers of the four kinds on A and on B and a REST
JSON watcher of pods on A record every event; `etcdctl watch` on the
whole prefix is the oracle. Faults, one at a time, writes going on:
SIGKILL of the etcd leader, of a follower, of the active scheduler, of
apiserver A (restarted with one etcd member only), then that member
killed while B writes and etcd is compacted past A's revision: A rebuilds
its replica, its watchers are ended and resume or re-list, and every
pod list A serves meanwhile is etcd's state at its revision (a replica
being reloaded must not be served half-loaded). After each fault a checkpoint:
every acknowledged write is in etcd's history at its revision, nothing
unacknowledged applied, lists through A and B equal etcd's range at their
revision, every watcher's events are exactly etcd's (in order, no gap, no
duplicate, across failovers), bookmarks never go back, no pod bound
twice; a client losing A is answered again within 2 s (plus one idle
call). Everything is stopped and removed at exit, also on failure.
"""
import base64
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import grpc  # noqa: E402
import ctest  # noqa: E402
import etcdutil  # noqa: E402
import seed  # noqa: E402
import schedutil  # noqa: E402

t = ctest.Tap()
ctest.need_root(t)
why = etcdutil.available()
if why:
    t.skip_all(why)
if not os.path.exists("/usr/sbin/runc"):
    t.skip_all("needs runc")
pb = ctest.pb
c = ctest.Cluster(t, "81-fault-etcd-ha")
ec = etcdutil.EtcdCluster(c, members=3, tls=True)
TLS = ["--etcd-cafile", ec.ca, "--etcd-certfile", ec.client_cert, "--etcd-keyfile", ec.client_key]
KINDS = ("Pods", "Nodes", "Leases", "Events")
ETCD_RES = {"pods": "Pods", "minions": "Nodes", "leases": "Leases", "events": "Events"}
REST = {"Pods": "/api/v1/pods", "Nodes": "/api/v1/nodes", "Events": "/api/v1/events",
        "Leases": "/apis/coordination.k8s.io/v1/leases"}
NS = "ha"
DEFINITE = (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ABORTED,
            grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT)
stats = {"faults": 0, "writes": 0, "events": 0, "cycles": 0, "failover": 0.0, "pause": 0.0,
         "takeover": 0.0, "restarts": 0}


def etcd_res(kind):
    return [r for r, k in ETCD_RES.items() if k == kind][0]


def local_key(ekey):
    """/registry/pods/ns/name -> ("Pods", "ns/name"), or None for a key of no kind."""
    parts = ekey.split("/", 3)
    if len(parts) < 4 or parts[2] not in ETCD_RES:
        return None
    return ETCD_RES[parts[2]], parts[3]


def okey(o):
    m = o.metadata
    return "%s/%s" % (m.namespace, m.name) if m.namespace else m.name


# ---- apiservers ----

class Api:
    def __init__(self, name):
        self.name = name
        self.addr = "127.0.0.1:%d" % ctest.free_port()
        self.data = os.path.join(c.dir, "api-" + name)
        self.d = None
        self.cl = None

    def start(self, members):
        self.members = members
        self.d = c.start("apiserver-" + self.name, [
            c.bin("coracle-apiserver"), "--listen", self.addr, "--data-dir", self.data,
            "--storage-backend", "etcd3", "--etcd-servers", ",".join(ec.endpoints[i] for i in members),
            "--etcd-compaction-interval", "0", "--bookmark-interval", "1"] + TLS)
        c.wait_ready(self.addr, self.d)
        self.cl = ctest.Client(self.addr)
        c.clients.append(self.cl)

    def log(self):
        with open(self.d.log_path, errors="replace") as f:
            return f.read()


A, B = Api("A"), Api("B")
A.start(range(3))
B.start(range(3))
APIS = [A, B]
SERVERS = "%s,%s" % (A.addr, B.addr)
t.ok(A.d.alive() and B.d.alive(), "apiservers A (%s) and B (%s) on a 3-member etcd over TLS" % (A.addr, B.addr))


def ctl(server, *args, **kw):
    return c.ctl("--server", server, *args, server=False, **kw)


def rest_get(api, path, timeout=10):
    status, body = ctest.http_get(api.addr, path, timeout=timeout)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


# ---- the node, the schedulers, the seed ----

root = os.path.join(c.dir, "node1")
c.on_teardown(lambda: ctest.node_cleanup(root))
for img in ("nginx", "busybox", "debian"):
    p = subprocess.run(["bash", os.path.join(ctest.SRC, "contrib", "images", img + ".sh")],
                       capture_output=True, text=True)
    path = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    if p.returncode or not os.path.exists(path):
        t.bail("contrib/images/%s.sh failed:\n%s" % (img, p.stderr[-2000:]))
    rc, out, err = c.ctl("image", "import", path, "--image-dir", os.path.join(root, "images"), timeout=300)
    if rc:
        t.bail("image import %s: %s" % (img, err))

# The renew deadline stays above the write stall an etcd leader change causes (a request
# caught in the election waits for etcd's own timeout: about 4 s here).
LEASE_S = 8
LEASE = ["--leader-elect-lease-duration", "%ds" % LEASE_S, "--leader-elect-renew-deadline", "6s",
         "--leader-elect-retry-period", "1s"]
scheds = {}


def start_scheduler(i):
    log = os.path.join(c.dir, "scheduler-%d.log" % i)
    mark = len(open(log, errors="replace").read()) if os.path.exists(log) else 0  # a restart appends to it
    d = c.start("scheduler-%d" % i, [c.bin("coracle-scheduler"), "--server", SERVERS, "--healthz-listen", ""]
                + LEASE)
    d.ident = c.wait_for(lambda: (lambda m: m and m.group(1))(re.search(
        r"leader election: lease kube-system/coracle-scheduler, identity (\S+)", daemon_log(d)[mark:])),
        timeout=ctest.DEADLINE)
    scheds[i] = d


def ts(t):
    return t.seconds + t.nanos / 1e9


def daemon_log(d):
    with open(d.log_path, errors="replace") as f:
        return f.read()


def holder(api=B):
    l, _ = api.cl.try_call("Leases", "Get", pb.GetRequest(namespace="kube-system", name="coracle-scheduler"),
                           timeout=5)
    return l.spec.holderIdentity if l else None


start_scheduler(1)
start_scheduler(2)
kubelet = c.start("kubelet-node1", [c.bin("coracle-kubelet"), "--server", SERVERS, "--node-name", "node1",
                                    "--root-dir", root])
for f, ns in (("single-container-pod.yaml", "default"), ("shared-volume-pod.yaml", "default"),
              ("multiple-container-pod.yaml", "seed")):
    rc, out, err = ctl(SERVERS, "apply", "-n", ns, "-f", seed.manifest(f))
    t.is_((rc, err), (0, ""), "coraclectl --server A,B apply -n %s -f %s" % (ns, f))
SEED = (("default", "nginx"), ("default", "mc1"), ("seed", "nginx"))


def running_on(api, ns, name):
    p, _ = api.cl.try_call("Pods", "Get", pb.GetRequest(namespace=ns, name=name), timeout=5)
    return p is not None and p.status.phase == "Running" and p.spec.nodeName == "node1"


for api in APIS:
    t.ok(c.wait_for(lambda: all(running_on(api, ns, n) for ns, n in SEED), timeout=2 * ctest.DEADLINE),
         "the seed's pods are Running on node1, seen through %s" % api.name)
for api in APIS:
    rc, out, err = ctl(api.addr, "exec", "-n", "seed", "nginx", "-c", "busybox", "--", "echo", "via", api.name)
    rc2, _, err2 = ctl(api.addr, "logs", "mc1", "-c", "1st")
    t.ok(rc == 0 and out == "via %s\n" % api.name and rc2 == 0,
         "coraclectl exec and logs through %s (the kubelet's tunnel to it)" % api.name)
    if rc or rc2:
        t.diag(err + err2)
T_IDLE = 0.0
for _ in range(3):
    t0 = time.time()
    ctl(SERVERS, "get", "pods", "-n", NS)
    T_IDLE = max(T_IDLE, time.time() - t0)

# A node without kubelet that the writers' pods go to (tainted, so the seed stays on node1).
ghost = schedutil.node("ghost", pods="1000", labels={"ha": "ghost"}, taints=[("ha", "ghost", "NoSchedule")])
B.cl.call("Nodes", "Create", ghost)


def wpod(name, node=None):
    p = ctest.simple_pod(name, ns=NS, image="progrium/busybox")
    p.spec.nodeSelector["ha"] = "ghost"
    p.spec.tolerations.add(key="ha", operator="Equal", value="ghost", effect="NoSchedule")
    p.metadata.labels["v"] = "0"
    if node:
        p.spec.nodeName = node
    return p


def lease(ns, name, holder_id="ha"):
    l = pb.Lease(metadata=ctest.meta(name, ns))
    l.spec.holderIdentity = holder_id
    l.spec.leaseDurationSeconds = 40
    l.spec.renewTime.seconds = int(time.time())
    return l


def event(name, i):
    e = pb.Event(metadata=ctest.meta(name, NS))
    e.involvedObject.kind = "Pod"
    e.involvedObject.namespace = NS
    e.involvedObject.name = name
    e.reason = "HA"
    e.message = "write %d" % i
    e.type = "Normal"
    e.count = 1
    return e


B.cl.call("Leases", "Create", lease("kube-node-lease", "ghost"))
B.cl.call("Pods", "Create", wpod("mark", node="ghost"))
B.cl.call("Leases", "Create", lease(NS, "mark"))
B.cl.call("Events", "Create", event("mark", 0))


# ---- the oracle: etcd's own watch of the whole prefix ----

class Oracle:
    """`etcdctl watch --prefix /registry/` from a revision: evs = [(rev, kind, key, PUT|DELETE, version)]."""

    def __init__(self, rev):
        self.start = rev
        self.evs = []
        self.by_rev = {}
        self.last = rev - 1
        self.restarts = 0
        self.p = None
        self.run()
        c.on_teardown(lambda: self.p.poll() is None and (self.p.kill(), self.p.wait()))

    def run(self):
        """(Re)starts the watch after the last revision seen. etcdctl's watch has been seen to
        stall for good after its member was killed and restarted: then it is started again."""
        if self.p is not None:
            self.restarts += 1
            self.p.kill()
            self.p.wait()
        argv = ["etcdctl", "--endpoints", ",".join(ec.endpoints), "--cacert", ec.ca, "--cert", ec.client_cert,
                "--key", ec.client_key, "watch", "--prefix", "/registry/", "--rev", str(self.last + 1), "-w", "json"]
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(os.path.join(c.dir, "oracle.log"), "a"),
                                  env=dict(os.environ, ETCDCTL_API="3"), text=True)
        threading.Thread(target=self._read, args=(self.p,), daemon=True).start()

    def _read(self, p):
        for line in p.stdout:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            for ev in r.get("Events") or []:
                kv = ev["kv"]
                lk = local_key(base64.b64decode(kv["key"]).decode())
                rev = int(kv["mod_revision"])
                if rev <= self.last:
                    continue  # a stream restarted from its last revision
                e = (rev, lk[0] if lk else None, lk[1] if lk else None,
                     "DELETE" if ev.get("type") == 1 else "PUT", int(kv.get("version", 0)))
                self.evs.append(e)
                self.by_rev[rev] = e
                self.last = max(self.last, rev)


def etcd_rev():
    return int(json.loads(ec.ctl("get", "health-probe", "-w", "json"))["header"]["revision"])


def etcd_range(prefix, rev):
    """{local key: mod_revision} of etcd's range at rev."""
    out = json.loads(ec.ctl("get", "--prefix", prefix, "--rev", str(rev), "-w", "json", "--keys-only"))
    return {local_key(base64.b64decode(kv["key"]).decode())[1]: int(kv["mod_revision"]) for kv in out.get("kvs", [])}


oracle = Oracle(etcd_rev() + 1)


# ---- watchers ----

class Seg:
    """One list and the events after it: items {key: rv} at rv `start`, evs [(rv, type, key, nodeName)]."""

    def __init__(self, start, items):
        self.start, self.items, self.evs = start, items, []
        self.verified = False


class Watcher(threading.Thread):
    """Watches one kind from its home apiserver; on a broken stream resumes from the last
    resourceVersion (on the other apiserver if its own is unreachable), on 410 re-lists."""

    def __init__(self, kind, home, rest=False):
        super().__init__(daemon=True)
        self.kind, self.home, self.rest = kind, home, rest
        self.name = "%s %s%s" % (kind, APIS[home].name, " (REST JSON)" if rest else "")
        self.cur = home
        self.segs = []
        self.last = 0
        self.ends = []      # (time, apiserver, why)
        self.relists = 0
        self.bm_back = []   # bookmarks that went back
        self.bookmarks = 0
        self.order = []     # events not after the previous one
        self.stream = None
        self.stopping = False

    def run(self):
        need_list = True
        while not self.stopping:
            api = APIS[self.cur]
            try:
                if need_list:
                    start, items = self.list(api)
                    self.segs.append(Seg(start, items))
                    self.last = start
                    need_list = False
                for typ, key, rv, node in self.watch(api):
                    if typ == "BOOKMARK":
                        self.bookmarks += 1
                        if rv < self.last:
                            self.bm_back.append((self.last, rv))
                    elif rv <= self.last:
                        self.order.append((self.last, rv, key))
                    else:
                        self.segs[-1].evs.append((rv, typ, key, node))
                    self.last = max(self.last, rv)
                self.ends.append((time.time(), api.name, "end"))
            except Gone:
                self.ends.append((time.time(), api.name, "410"))
                self.relists += 1
                need_list = True
            except (grpc.RpcError, ctest.ApiError, OSError, http.client.HTTPException, ValueError) as e:
                if self.stopping:
                    return
                code = e.code() if isinstance(e, grpc.RpcError) else getattr(e, "code", None)
                self.ends.append((time.time(), api.name, str(code or e)))
                if code != grpc.StatusCode.CANCELLED:
                    self.cur = 1 - self.cur
                time.sleep(0.05)

    def list(self, api):
        if self.rest:
            status, body = rest_get(api, REST["Pods"])
            if status != 200:
                raise OSError("list: %s %s" % (status, body))
            items = {"%s/%s" % (o["metadata"]["namespace"], o["metadata"]["name"]) : int(o["metadata"]["resourceVersion"])
                     for o in body["items"]}
            return int(body["metadata"]["resourceVersion"]), items
        lst = api.cl.call(self.kind, "List", pb.ListRequest(), timeout=10)
        return int(lst.metadata.resourceVersion), {okey(o): int(o.metadata.resourceVersion) for o in lst.items}

    def watch(self, api):
        if self.rest:
            yield from self.watch_rest(api)
            return
        self.stream = api.cl.stream(self.kind, "Watch", pb.ListRequest(resourceVersion=str(self.last),
                                                                        allowWatchBookmarks=True))
        try:
            for ev in self.stream:
                node = ev.object.spec.nodeName if self.kind == "Pods" else None
                yield ev.type, okey(ev.object), int(ev.object.metadata.resourceVersion or 0), node
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.OUT_OF_RANGE:
                raise Gone()
            raise

    def watch_rest(self, api):
        host, port = api.addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.stream = conn
        try:
            conn.request("GET", REST["Pods"] + "?watch=1&allowWatchBookmarks=true&resourceVersion=%d" % self.last)
            r = conn.getresponse()
            if r.status == 410:
                raise Gone()
            if r.status != 200:
                raise OSError("watch: %d" % r.status)
            for line in r:
                ev = json.loads(line)
                o = ev["object"]
                if ev["type"] == "ERROR":
                    if o.get("code") == 410:
                        raise Gone()
                    raise OSError("ERROR %s" % o)
                m = o["metadata"]
                key = "%s/%s" % (m.get("namespace", ""), m.get("name", ""))
                yield ev["type"], key, int(m["resourceVersion"]), o.get("spec", {}).get("nodeName", "")
        finally:
            conn.close()

    def rehome(self):
        """Back to its own apiserver: the stream is cut and resumed there."""
        self.cur = self.home
        self.cut()

    def cut(self):
        s = self.stream
        if s is None:
            return
        if self.rest:
            try:
                s.sock and s.sock.shutdown(2)
            except OSError:
                pass
        else:
            s.cancel()

    def stop(self):
        self.stopping = True
        self.cut()

    def evs(self):
        return [e for s in self.segs for e in s.evs]


class Gone(Exception):
    pass


watchers = [Watcher(k, h) for h in (0, 1) for k in KINDS] + [Watcher("Pods", 0, rest=True)]
for w in watchers:
    w.start()
    c.on_teardown(w.stop)
t.ok(c.wait_for(lambda: all(w.segs for w in watchers), timeout=ctest.DEADLINE),
     "%d watchers listed and watching (gRPC: 4 kinds on A and on B; REST JSON: pods on A)" % len(watchers))


label_log = {}  # (pod key, revision) -> whether its labels changed there


# B's gRPC pod watcher also keeps each event's labels, to tell the writers' relabels from
# the scheduler's bindings and the kubelet's status
class LabelWatcher(Watcher):
    def watch(self, api):
        self.stream = api.cl.stream("Pods", "Watch", pb.ListRequest(namespace=NS, resourceVersion=str(self.last),
                                                                    allowWatchBookmarks=True))
        prev = getattr(self, "prev", {})
        self.prev = prev
        try:
            for ev in self.stream:
                k = okey(ev.object)
                rv = int(ev.object.metadata.resourceVersion or 0)
                if ev.type in ("ADDED", "MODIFIED", "DELETED"):
                    lab = dict(ev.object.metadata.labels)
                    label_log[(k, rv)] = ev.type != "MODIFIED" or prev.get(k) != lab
                    prev[k] = lab
                yield ev.type, k, rv, ev.object.spec.nodeName
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.OUT_OF_RANGE:
                raise Gone()
            raise


lw = LabelWatcher("Pods", 1)
lw.name = "Pods in ha on B (labels)"
lw.start()
c.on_teardown(lw.stop)
c.wait_for(lambda: lw.segs, timeout=ctest.DEADLINE)


# ---- writers ----

class Writer(threading.Thread):
    """Writes of its kinds through A and B in turn. acks: (kind, key, op, rv) of every
    acknowledged write (a delete: the revision the object had); amb: {key: n} of writes
    whose outcome the client cannot know (no answer); oks: times of answers."""

    def __init__(self, wid, step):
        super().__init__(daemon=True)
        self.wid, self.step_fn = wid, step
        self.acks, self.amb, self.oks, self.errors = [], {}, [], []
        self.n = 0
        self.down = [0.0, 0.0]
        self.pause = threading.Event()
        self.idle = threading.Event()
        self.stopping = False
        self.state = {}

    def run(self):
        while not self.stopping:
            if self.pause.is_set():
                self.idle.set()
                time.sleep(0.02)
                continue
            self.idle.clear()
            self.step_fn(self)
            self.n += 1
            time.sleep(0.01)
        self.idle.set()

    def api(self):
        i = self.n % 2
        now = time.time()
        if self.down[i] > now and self.down[1 - i] <= now:
            i = 1 - i
        return APIS[i], i

    def call(self, svc, method, req, kind=None, key=None, op=None):
        """The answer, or None. Records the write (kind set) as acknowledged or unknown."""
        api, i = self.api()
        try:
            r = api.cl.call(svc, method, req, timeout=8)
        except ctest.ApiError as e:
            if e.code in DEFINITE:
                if (e.code == grpc.StatusCode.ALREADY_EXISTS and op == "create" and kind != "Leases"
                        and not self.amb.get(key)):
                    self.errors.append("%s %s: %s" % (op, key, e))
                return None
            self.down[i] = time.time() + 1.0
            if kind:
                self.amb[key] = self.amb.get(key, 0) + 1
            return None
        self.oks.append(time.time())
        if kind:
            self.acks.append((kind, key, op, int(r.metadata.resourceVersion)))
        return r


def step_pods(w):
    """Create, relabel, delete (at once) pods p<n>; the scheduler binds them to ghost."""
    alive = w.state.setdefault("alive", [])
    name = "p%d" % w.n
    if w.call("Pods", "Create", wpod(name), "Pods", NS + "/" + name, "create"):
        alive.append(name)
    if alive:
        victim = alive[w.n % len(alive)]
        p = w.call("Pods", "Get", pb.GetRequest(namespace=NS, name=victim))
        if p:
            p.metadata.labels["v"] = str(w.n + 1)  # never the "0" of a create: a no-op update keeps its revision
            w.call("Pods", "Update", p, "Pods", NS + "/" + victim, "update")
    if len(alive) > 6:
        victim = alive.pop(0)
        w.call("Pods", "Delete", pb.DeleteRequest(namespace=NS, name=victim, gracePeriodSeconds=0),
               "Pods", NS + "/" + victim, "delete")


def step_status(w):
    """The ghost node's status and Lease, and leases l<n> created, renewed, deleted."""
    n = w.call("Nodes", "Get", pb.GetRequest(name="ghost"))
    if n:
        for cond in n.status.conditions:
            if cond.type == "Ready":
                cond.lastHeartbeatTime.seconds = int(time.time())
                cond.message = "write %d" % w.n
        w.call("Nodes", "UpdateStatus", n, "Nodes", "ghost", "status")
    l = w.call("Leases", "Get", pb.GetRequest(namespace="kube-node-lease", name="ghost"))
    if l:
        l.spec.renewTime.seconds = int(time.time())
        l.spec.renewTime.nanos = w.n
        w.call("Leases", "Update", l, "Leases", "kube-node-lease/ghost", "update")
    name = "l%d" % (w.n % 5)
    l = w.call("Leases", "Get", pb.GetRequest(namespace=NS, name=name))
    if l is None:
        w.call("Leases", "Create", lease(NS, name), "Leases", NS + "/" + name, "create")
    elif w.n % 3 == 0:
        w.call("Leases", "Delete", pb.DeleteRequest(namespace=NS, name=name), "Leases", NS + "/" + name, "delete")
    else:
        l.spec.renewTime.nanos = w.n
        w.call("Leases", "Update", l, "Leases", NS + "/" + name, "update")


def step_events(w):
    """Events e<n> created, their count raised, some deleted."""
    name = "e%d" % w.n
    w.call("Events", "Create", event(name, w.n), "Events", NS + "/" + name, "create")
    if w.n % 2 and w.n > 2:
        old = "e%d" % (w.n - 2)
        e = w.call("Events", "Get", pb.GetRequest(namespace=NS, name=old))
        if e:
            e.count += 1
            w.call("Events", "Update", e, "Events", NS + "/" + old, "update")
    if w.n % 5 == 0 and w.n > 5:
        old = "e%d" % (w.n - 5)
        w.call("Events", "Delete", pb.DeleteRequest(namespace=NS, name=old), "Events", NS + "/" + old, "delete")


writers = [Writer(0, step_pods), Writer(1, step_status), Writer(2, step_events)]
for w in writers:
    w.start()
    c.on_teardown(lambda w=w: setattr(w, "stopping", True))
marks = Writer(3, None)  # the checkpoints' own writes, through B


# ---- checkpoints ----

OWNED = re.compile(r"^(ha/(p\d+|l\d+|e\d+|mark)|kube-node-lease/ghost|ghost)$")


def mark_all():
    """One write of every kind through B; returns {kind: revision}."""
    marks.n = 1
    out = {}
    n = B.cl.call("Nodes", "Get", pb.GetRequest(name="ghost"))
    n.status.conditions[0].message = "mark %d" % stats["cycles"]
    p = B.cl.call("Pods", "Get", pb.GetRequest(namespace=NS, name="mark"))
    p.metadata.labels["v"] = "mark%d" % stats["cycles"]
    l = B.cl.call("Leases", "Get", pb.GetRequest(namespace=NS, name="mark"))
    l.spec.renewTime.seconds = int(time.time())
    e = B.cl.call("Events", "Get", pb.GetRequest(namespace=NS, name="mark"))
    e.count += 1
    for kind, method, o in (("Nodes", "UpdateStatus", n), ("Pods", "Update", p), ("Leases", "Update", l),
                            ("Events", "Update", e)):
        r = marks.call(kind, method, o, kind, okey(o), "update")
        if r is None:
            t.bail("checkpoint: %s %s through B failed" % (method, kind))
        out[kind] = int(r.metadata.resourceVersion)
    return out


def supervise(what):
    """Restarts a scheduler that exited (a leader that could not renew in time exits, as
    kube-scheduler does, and its supervisor starts it again)."""
    for i, d in list(scheds.items()):
        if not d.alive():
            stats["restarts"] += 1
            t.diag("%s: scheduler-%d exited (%s); restarted" % (what, i, daemon_log(d).strip().splitlines()[-1]))
            start_scheduler(i)


def checkpoint(what):
    stats["cycles"] += 1
    supervise(what)
    for w in writers:
        w.pause.set()
    for w in writers:
        w.idle.wait(30)
    m = mark_all()
    top = max(m.values())
    if not c.wait_for(lambda: oracle.last >= top, timeout=10):
        t.diag("%s: etcdctl watch stalled at %d; started again" % (what, oracle.last))
        oracle.run()
    caught = c.wait_for(lambda: oracle.last >= top and all(w.last >= m[w.kind] for w in watchers + [lw]),
                        timeout=ctest.DEADLINE)
    t.ok(caught, "%s: the oracle and every watcher reached the checkpoint's writes (%d)" % (what, top))
    if not caught:
        for w in watchers:
            t.diag("  %s: last %d, mark %d, ends %s" % (w.name, w.last, m[w.kind], w.ends[-3:]))
    check_acks(what)
    check_lists(what)
    check_watchers(what, top)
    for w in writers:
        w.pause.clear()


def check_acks(what):
    """Every acknowledged write is in etcd's history at its revision; no other write to the
    writers' keys applied unless its client got no answer (or the scheduler/kubelet wrote)."""
    evs = list(oracle.evs)
    revs = [e[0] for e in evs]
    t.is_(revs, list(range(oracle.start, oracle.start + len(revs))),
          "%s: the oracle saw every revision from %d once, in order" % (what, oracle.start))
    bad, n = [], 0
    by_key = {}
    for e in evs:
        by_key.setdefault((e[1], e[2]), []).append(e)
    matched = set()
    for w in writers + [marks]:
        for kind, key, op, rv in list(w.acks):
            n += 1
            if op == "delete":
                d = [e for e in by_key.get((kind, key), []) if e[3] == "DELETE" and e[0] >= rv]
                if not d:
                    bad.append((kind, key, op, rv))
                else:
                    matched.add(d[0][0])
            else:
                e = oracle.by_rev.get(rv)
                if not e or e[1:4] != (kind, key, "PUT") or (op == "create") != (e[4] == 1):
                    bad.append((kind, key, op, rv, e))
                matched.add(rv)
    stats["writes"] = n
    t.ok(not bad, "%s: %d acknowledged writes, each in etcd's history at its revision" % (what, n))
    for b in bad[:5]:
        t.diag("  missing: %s" % (b,))
    amb = {}
    for w in writers:
        for k, v in w.amb.items():
            amb[k] = amb.get(k, 0) + v
    # writes of others on the writers' keys: the scheduler's bindings and status of the pods
    unexplained = []
    for (kind, key), es in by_key.items():
        if key is None or not OWNED.match(key):
            continue
        extra = [e for e in es if e[0] not in matched]
        if kind == "Pods":
            extra = [e for e in extra if e[3] == "DELETE" or e[4] == 1 or label_changed(key, e[0])]
        if len(extra) > amb.get(key, 0):
            unexplained.append((key, [e[0] for e in extra], amb.get(key, 0)))
    t.ok(not unexplained, "%s: no unacknowledged write applied (%d writes without an answer)"
         % (what, sum(amb.values())))
    for u in unexplained[:5]:
        t.diag("  key %s: revisions %s not acknowledged, %d unanswered" % u)
    errs = [e for w in writers for e in w.errors]
    t.ok(not errs, "%s: no write answered against the writers' model" % what)
    for e in errs[:5]:
        t.diag("  " + e)


def label_changed(key, rev):
    """Whether the pod's labels changed at rev (only the writers relabel), from B's pod watch."""
    return label_log.get((key, rev), True)


def check_lists(what):
    """Lists of every kind through A and B equal etcd's range at the list's revision."""
    bad = []
    for api in APIS:
        if not api.d.alive():
            continue
        for kind in KINDS:
            status, body = rest_get(api, REST[kind])
            if status != 200:
                bad.append((api.name, kind, status))
                continue
            rv = int(body["metadata"]["resourceVersion"])
            got = {("%s/%s" % (o["metadata"]["namespace"], o["metadata"]["name"]) if o["metadata"].get("namespace")
                    else o["metadata"]["name"]): int(o["metadata"]["resourceVersion"]) for o in body["items"]}
            want = etcd_range("/registry/%s/" % etcd_res(kind), rv)
            if got != want:
                bad.append((api.name, kind, rv) + list_diff(got, want))
    t.ok(not bad, "%s: lists of the 4 kinds through A and B equal etcd's range at their revision" % what)
    for b in bad[:4]:
        t.diag("  %s" % (b,))


def list_diff(got, want):
    """What a list has that etcd's range has not, and the other way (a few of each)."""
    g, w = set(got.items()), set(want.items())
    return ("%d listed, %d in etcd" % (len(got), len(want)), "only listed: %s" % sorted(g - w)[:3],
            "only in etcd: %s" % sorted(w - g)[:3])


def check_watchers(what, upto):
    """Each watcher's events are etcd's for its kind: every revision after its list, once, in order."""
    total, bad = 0, []
    by_kind = {}
    for e in oracle.evs:
        if e[0] <= upto and e[1]:
            by_kind.setdefault(e[1], []).append(e)
    for w in watchers:
        segs = list(w.segs)
        for i, s in enumerate(segs):
            if not s.verified:
                want = etcd_range("/registry/%s/" % etcd_res(w.kind), s.start)
                if s.items != want:
                    bad.append((w.name, "list at %d" % s.start) + list_diff(s.items, want))
                s.verified = True
            end = segs[i + 1].start if i + 1 < len(segs) else upto
            got = [(rv, typ, key) for rv, typ, key, _ in s.evs if rv <= end]
            exp = [(e[0], "DELETED" if e[3] == "DELETE" else "ADDED" if e[4] == 1 else "MODIFIED", e[2])
                   for e in by_kind.get(w.kind, []) if s.start < e[0] <= end]
            if i + 1 < len(segs):
                # cut short by a re-list: what it had was right, the list carries the rest
                exp = exp[:len(got)]
            if got != exp:
                j = next((k for k in range(min(len(got), len(exp))) if got[k] != exp[k]), min(len(got), len(exp)))
                bad.append((w.name, "from %d" % s.start, "got %s" % (got[j:j + 3],), "want %s" % (exp[j:j + 3],)))
            total += len(got)
        if w.order:
            bad.append((w.name, "out of order", w.order[:3]))
        if w.bm_back:
            bad.append((w.name, "bookmark back", w.bm_back[:3]))
    stats["events"] = total
    t.ok(not bad, "%s: %d watch events, each watcher's exactly etcd's (in order, no gap, no duplicate)"
         % (what, total))
    for b in bad[:6]:
        t.diag("  %s" % (b,))
    # no pod bound twice: once set, a pod's nodeName never changes
    twice = []
    for w in watchers:
        if w.kind != "Pods":
            continue
        node = {}
        for rv, typ, key, n in w.evs():
            if node.get(key) and n and n != node[key]:
                twice.append((w.name, key, node[key], n, rv))
            if typ == "DELETED":
                node.pop(key, None)
            elif n:
                node[key] = n
    t.ok(not twice, "%s: no pod's nodeName changed once set" % what)
    for x in twice[:3]:
        t.diag("  %s" % (x,))




def write_pause(t0, t1):
    """The longest any writer went without an answer between t0 and t1."""
    worst = 0.0
    for w in writers:
        ts = [t0] + [x for x in w.oks if t0 < x < t1] + [t1]
        worst = max(worst, max(b - a for a, b in zip(ts, ts[1:])))
    return worst


time.sleep(2)
checkpoint("no fault")

# ---- etcd: the leader, then a follower ----
for role in ("leader", "follower"):
    lead = ec.leader(timeout=10)
    victim = lead if role == "leader" else (lead + 1) % 3
    t0 = time.time()
    ec.kill(victim)
    stats["faults"] += 1
    time.sleep(2)
    ec.restart(victim)
    time.sleep(1)
    p = write_pause(t0, time.time())
    stats["pause"] = max(stats["pause"], p)
    t.diag("etcd %s (member %d) killed and restarted; longest write pause %.2f s" % (role, victim, p))
    checkpoint("etcd %s killed" % role)

# ---- the active scheduler ----
def fresh_holder():
    """The holder of the Lease if it is a running scheduler that renewed it lately."""
    l, _ = B.cl.try_call("Leases", "Get", pb.GetRequest(namespace="kube-system", name="coracle-scheduler"))
    ok = l and time.time() - ts(l.spec.renewTime) < 2 and \
        any(d.alive() and d.ident == l.spec.holderIdentity for d in scheds.values())
    return ok and l.spec.holderIdentity


h = c.wait_for(fresh_holder, timeout=ctest.DEADLINE)
active = [i for i, d in scheds.items() if d.ident == h][0]
standby = 3 - active
stale = []
for _ in range(6):
    l = B.cl.call("Leases", "Get", pb.GetRequest(namespace="kube-system", name="coracle-scheduler"))
    stale.append(time.time() - ts(l.spec.renewTime))
    time.sleep(0.25)
t.diag("the Lease's renewTime before the kill: %s s old" % " ".join("%.1f" % x for x in stale))
t0 = time.time()
scheds[active].kill()
stats["faults"] += 1
old = B.cl.call("Leases", "Get", pb.GetRequest(namespace="kube-system", name="coracle-scheduler"))
B.cl.call("Pods", "Create", wpod("after-sched"))
took = c.wait_for(lambda: holder() == scheds[standby].ident and time.time() - t0, timeout=ctest.DEADLINE, interval=0.1)
stats["takeover"] = took or 0
new = B.cl.call("Leases", "Get", pb.GetRequest(namespace="kube-system", name="coracle-scheduler"))
gap = ts(new.spec.acquireTime) - ts(old.spec.renewTime)
t.ok(took and old.spec.holderIdentity == h and gap >= LEASE_S - 0.1,
     "active scheduler killed: the standby holds the Lease after %.1f s, %.2f s after the last renewal "
     "(not before the %d s lease ran out)" % (took or -1, gap, LEASE_S))
bound = c.wait_for(lambda: (lambda p: p and p.spec.nodeName)(
    B.cl.try_call("Pods", "Get", pb.GetRequest(namespace=NS, name="after-sched"))[0]), timeout=ctest.DEADLINE)
t.is_(bound, "ghost", "and binds a new pod")
start_scheduler(active)
checkpoint("active scheduler killed")

# ---- apiserver A ----
before = {w.name: len(w.ends) for w in watchers}
t0 = time.time()
A.d.kill()
stats["faults"] += 1
rc, out, err = ctl(SERVERS, "get", "pods", "-n", NS)
t_ctl = time.time() - t0
B.cl.call("Pods", "Create", wpod("after-a"))
t_bind = c.wait_for(lambda: (lambda p: p and p.spec.nodeName and time.time() - t0)(
    B.cl.try_call("Pods", "Get", pb.GetRequest(namespace=NS, name="after-a"))[0]), timeout=ctest.DEADLINE, interval=0.02)
time.sleep(2)
t_writers = max(min([x for x in w.oks if x > t0] or [float("inf")]) - t0 for w in writers)
worst = max(t_ctl, t_writers, t_bind or float("inf"))
stats["failover"] = worst
BOUND = 2.0 + T_IDLE
t.ok(rc == 0 and worst < BOUND,
     "A killed: answered again through B within %.2f s: coraclectl %.2f s, writers %.2f s, a new pod bound "
     "by the scheduler %.2f s" % (BOUND, t_ctl, t_writers, t_bind or -1))
moved = [w.name for w in watchers if w.home == 0 and w.cur == 1]
t.is_(len(moved), 5, "A's 5 watchers resumed on B")
one = (ec.leader(timeout=10) + 1) % 3
A.start([one])
t.ok(c.wait_for(lambda: ctl(A.addr, "exec", "-n", "seed", "nginx", "-c", "busybox", "--", "true")[0] == 0,
                timeout=ctest.DEADLINE), "A restarted (on etcd member %d only): exec through A again" % one)
for w in watchers + [lw]:
    if w.home == 0:
        w.rehome()
time.sleep(1)
checkpoint("apiserver A killed")

# ---- A's etcd watch falls behind a compaction ----
BULK = 1500  # events, so that A's snapshot takes a few pages


def bulk_events(n):
    """n events in namespace bulk through B, 64 calls in flight."""
    fn = B.cl.channel.unary_unary("/coracle.v1.Events/Create", request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=pb.Event.FromString)
    for i in range(0, n, 64):
        fs = []
        for j in range(i, min(n, i + 64)):
            e = event("bulk%d" % j, j)
            e.metadata.namespace = e.involvedObject.namespace = "bulk"
            fs.append(fn.future(e, timeout=30))
        for f in fs:
            f.result()


class Reader(threading.Thread):
    """Lists pods through api in a loop until stopped: lists = [(resourceVersion, {key: rv})]."""

    def __init__(self, api):
        super().__init__(daemon=True)
        self.api, self.lists, self.stopping = api, [], False
        self.start()

    def run(self):
        while not self.stopping:
            l, _ = self.api.cl.try_call("Pods", "List", pb.ListRequest(), timeout=5)
            if l:
                self.lists.append((int(l.metadata.resourceVersion),
                                   {okey(o): int(o.metadata.resourceVersion) for o in l.items}))
            else:
                time.sleep(0.01)


t.ok(c.wait_for(lambda: all(w.cur == 0 and w.ends and w.ends[-1][0] < time.time() - 0.5 for w in watchers if w.home == 0),
                timeout=ctest.DEADLINE), "A's watchers are back on A")
relists = sum(w.relists for w in watchers)
a_rev = int(A.cl.call("Pods", "List", pb.ListRequest(namespace="none")).metadata.resourceVersion)
ec.kill(one)
stats["faults"] += 1
t0 = time.time()
for i in range(10):
    B.cl.call("Events", "Create", event("gap%d" % i, i))
bulk_events(BULK)
time.sleep(max(0, t0 + 2 - time.time()))
rev = etcd_rev()
ec.ctl("compact", str(rev))
t.ok(rev > a_rev, "A's member killed; B wrote on (%d more events); etcd compacted at %d, past A's %d"
     % (BULK, rev, a_rev))
reader = Reader(A)
ec.restart(one)
t.ok(c.wait_for(lambda: "rebuilding the replica" in A.log(), timeout=ctest.DEADLINE),
     "A: etcd compacted its watch's revision: it rebuilds its replica")
c.wait_for(lambda: re.search(r"rebuilding the replica.*\n.*replica loaded from etcd", A.log()), timeout=ctest.DEADLINE)
time.sleep(0.5)
reader.stopping = True
reader.join()
ranges = {}
torn = []
for lrev, items in reader.lists:
    if lrev < rev:
        continue  # the replica before the rebuild: that far back etcd has no history now
    if lrev not in ranges:
        ranges[lrev] = etcd_range("/registry/pods/", lrev)
    if items != ranges[lrev]:
        torn.append((lrev,) + list_diff(items, ranges[lrev]))
n_after = sum(1 for lrev, _ in reader.lists if lrev >= rev)
t.ok(n_after and not torn, "%d pod lists through A during and after the rebuild: each etcd's state at its "
     "revision (%d not)" % (n_after, len(torn)))
for x in torn[:3]:
    t.diag("  list at %d: %s; %s; %s" % x)
got = c.wait_for(lambda: (lambda l: l and int(l.metadata.resourceVersion) >= rev and l)(
    A.cl.try_call("Events", "List", pb.ListRequest(namespace=NS), timeout=5)[0]), timeout=ctest.DEADLINE)
t.ok(got and all(("%s/gap%d" % (NS, i)) in [okey(o) for o in got.items] for i in range(10)),
     "A serves what B wrote meanwhile")
ended = c.wait_for(lambda: all(w.ends and w.ends[-1][0] > t0 for w in watchers if w.home == 0),
                   timeout=ctest.DEADLINE)
t.ok(ended, "A's 5 watchers were ended; they resumed or re-listed (%d re-lists)"
     % (sum(w.relists for w in watchers) - relists))
p = write_pause(t0, time.time())
t.diag("longest write pause while A had no etcd: %.2f s" % p)
time.sleep(1)
checkpoint("A's etcd watch compacted away")

# ---- the end: bindings and the scheduler's events ----
for w in writers:
    w.stopping = True
for w in writers:
    w.join(30)
evs = B.cl.call("Events", "List", pb.ListRequest(namespace=NS))
sched_evs = {}
for e in evs.items:
    if e.reason == "Scheduled":
        k = e.involvedObject.name
        sched_evs[k] = sched_evs.get(k, 0) + 1
bound = {}
for rv, typ, key, n in lw.evs():
    if n:
        bound[key] = n
twice = {k: v for k, v in sched_evs.items() if v > 1}
t.ok(bound and not twice, "%d pods bound; none has more than one Scheduled event (%d have one)"
     % (len(bound), sum(1 for v in sched_evs.values() if v == 1)))
for k, v in list(twice.items())[:5]:
    t.diag("  %s: %d Scheduled events" % (k, v))
t.ok(all(d.alive() for d in [A.d, B.d, kubelet] + list(scheds.values())), "apiservers, schedulers and kubelet alive")
t.diag("SUMMARY cycles=%d writes_verified=%d faults=%d failover_max=%.2fs (bound %.2fs) "
       "write_pause_max=%.2fs sched_takeover=%.1fs sched_restarts=%d events_checked=%d bookmarks=%d"
       % (stats["cycles"], stats["writes"], stats["faults"], stats["failover"], BOUND, stats["pause"],
          stats["takeover"], stats["restarts"], stats["events"], sum(w.bookmarks for w in watchers)))
for w in watchers + [lw]:
    w.stop()
t.done()
