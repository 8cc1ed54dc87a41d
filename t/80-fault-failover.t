#!/usr/bin/python3
"""Clients with several apiserver addresses (--server a,b,c) on one apiserver
and its one store, so that every resume is honest:
- a dead address (nothing listening) listed first: coraclectl (flag and
  config file), the scheduler and the kubelet all work through the next one;
  with every address dead coraclectl names the last one it tried;
- an apiserver address that dies under running clients: a TCP relay in front
  of the apiserver is "apiserver A", the apiserver's own port "B". When the
  relay dies (connections reset, port closed) the scheduler binds a new pod
  within 2 s through B, its watches resume from their resourceVersion (no
  re-list), its Lease stays held, the kubelet starts the pod and its tunnel
  follows (coraclectl logs works);
- the apiserver SIGKILLed and restarted on the same data dir: everyone comes
  back and resumes.
Several apiservers sharing one store (resume across servers) need etcd and are
tested there. Needs root, runc and busybox-static (the kubelet)."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest  # noqa: E402
import klet  # noqa: E402

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "80-fault-failover")
pb = c.pb
api = c.start_apiserver()
B = c.api_addr
data = os.path.join(c.dir, "data")


def dead_addr():
    return "127.0.0.1:%d" % ctest.free_port()


class Relay:
    """A TCP relay to the apiserver: kill() resets every connection and closes the port."""

    def __init__(self, backend):
        self.backend = backend.rsplit(":", 1)
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.addr = "127.0.0.1:%d" % self.ls.getsockname()[1]
        self.socks, self.accepted, self.lock = [], 0, threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
                b = socket.create_connection((self.backend[0], int(self.backend[1])))
            except OSError:
                return
            with self.lock:
                self.socks += [s, b]
                self.accepted += 1
            for x, y in ((s, b), (b, s)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(x, y):
        try:
            while True:
                d = x.recv(65536)
                if not d:
                    break
                y.sendall(d)
            y.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def kill(self):
        self.ls.shutdown(socket.SHUT_RDWR)
        self.ls.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass


def ctl(server, *args, **kw):
    return c.ctl("--server", server, *args, server=False, **kw)


# ---- a dead address first ----
LIST = dead_addr() + "," + B
t0 = time.time()
rc, out, err = ctl(LIST, "get", "nodes")
t.ok(rc == 0 and time.time() - t0 < 2, "coraclectl --server DEAD,B get nodes works (%.2f s)" % (time.time() - t0))
kc = os.path.join(c.dir, "kubeconfig")
with open(kc, "w") as f:
    f.write("server = %s\n" % LIST)
rc, out, err = c.ctl("--kubeconfig", kc, "get", "nodes", server=False)
t.is_((rc, err), (0, "No resources found\n"), "and `server = DEAD,B` in the config file")
D1, D2 = dead_addr(), dead_addr()
rc, out, err = ctl(D1 + "," + D2, "get", "pods")
t.is_((rc, err.strip()), (1, "The connection to the server %s was refused - did you specify the right host "
                              "or port?" % D2), "every address dead: the error names the last one tried")

relay = Relay(B)
A = relay.addr
SERVERS = "%s,%s,%s" % (A, dead_addr(), B)  # A first, then a dead one, then B
sched = c.start("scheduler", [c.bin("coracle-scheduler"), "--server", SERVERS, "--healthz-listen", "",
                              "--leader-elect-lease-duration", "8s", "--leader-elect-renew-deadline", "5s",
                              "--leader-elect-retry-period", "1s"])
kubelet = c.start("kubelet-node1", [c.bin("coracle-kubelet"), "--server", SERVERS, "--node-name", "node1",
                                    "--root-dir", root])
t.ok(c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE),
     "kubelet --server A,DEAD,B registers its node")

POD = """apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: progrium/busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo hello from %s; exec sleep 1000"]
"""


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def bound(name):
    p = get(name)
    return p and p.spec.nodeName


def running(name):
    p = get(name)
    return p and p.status.phase == "Running"


def logs_ok(name, server):
    rc, out, err = ctl(server, "logs", name, timeout=20)
    return rc == 0 and "hello from %s" % name in out


def slog(d):
    with open(d.log_path, errors="replace") as f:
        return f.read()


def lease_renew(ns, name):
    l, _ = api.try_call("Leases", "Get", pb.GetRequest(namespace=ns, name=name))
    return l.spec.renewTime.seconds + l.spec.renewTime.nanos / 1e9 if l else 0


rc, out, err = ctl(LIST, "apply", "-f", "-", stdin=POD % ("p1", "p1"))
t.is_((rc, out), (0, "pod/p1 created\n"), "coraclectl apply through DEAD,B")
t.ok(c.wait_for(lambda: bound("p1"), timeout=ctest.DEADLINE), "the scheduler binds p1")
t.ok(c.wait_for(lambda: running("p1"), timeout=ctest.DEADLINE), "the kubelet runs p1")
t.ok(c.wait_for(lambda: logs_ok("p1", LIST), timeout=ctest.DEADLINE), "coraclectl logs p1 (the kubelet's tunnel)")
t.ok(relay.accepted >= 3, "scheduler and kubelet talk through A, the first address (%d connections)"
     % relay.accepted)

# ---- A dies under them, B is up: the same store, so watches resume ----
sched_mark = len(slog(sched))
l0 = lease_renew("kube-system", "coracle-scheduler")
relay.kill()
t0 = time.time()
api.call("Pods", "Create", pb.Pod(metadata=pb.ObjectMeta(name="p2", namespace="default"),
                                  spec=pb.PodSpec(containers=[pb.Container(
                                      name="main", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                                      command=["sh", "-c", "echo hello from p2; exec sleep 1000"])],
                                      terminationGracePeriodSeconds=1)))
got = c.wait_for(lambda: bound("p2"), timeout=ctest.DEADLINE, interval=0.02)
took = time.time() - t0
t.ok(got and took < 2.0, "A gone: the scheduler binds a new pod through B within 2 s (%.2f s)" % took)
t.diag("FIGURES failover: bound_after_loss=%.3fs" % took)
t.ok(c.wait_for(lambda: running("p2"), timeout=ctest.DEADLINE), "the kubelet runs it")
t.ok(c.wait_for(lambda: logs_ok("p2", B) and logs_ok("p1", B), timeout=ctest.DEADLINE),
     "coraclectl logs: the tunnel followed the kubelet to B")
after = slog(sched)[sched_mark:]
t.ok("resuming from" in after and "re-listing" not in after,
     "the scheduler's watches resumed from their resourceVersion, without a re-list")
t.ok(c.wait_for(lambda: lease_renew("kube-system", "coracle-scheduler") > l0 + 1.5, timeout=ctest.DEADLINE),
     "its Lease is renewed through B")
n0 = lease_renew("kube-node-lease", "node1")
t.ok(c.wait_for(lambda: lease_renew("kube-node-lease", "node1") > n0, timeout=ctest.DEADLINE),
     "the kubelet's node Lease too")

# ---- the apiserver SIGKILLed and restarted on its data dir ----
c.api.kill()
time.sleep(1.0)
api = c.start_apiserver(data_dir=data)
t0 = time.time()
ok = c.wait_for(lambda: api.try_call("Pods", "Create", pb.Pod(
    metadata=pb.ObjectMeta(name="p3", namespace="default"),
    spec=pb.PodSpec(containers=[pb.Container(name="main", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                                             command=["sh", "-c", "echo hello from p3; exec sleep 1000"])],
                    terminationGracePeriodSeconds=1)))[0], timeout=ctest.DEADLINE)
t.ok(ok and c.wait_for(lambda: running("p3"), timeout=ctest.DEADLINE),
     "apiserver restarted: p3 bound and running (%.1f s)" % (time.time() - t0))
t.ok(c.wait_for(lambda: logs_ok("p3", LIST), timeout=ctest.DEADLINE), "coraclectl logs p3 through DEAD,B")
t.ok(sched.alive() and kubelet.alive() and "leaderelection lost" not in slog(sched),
     "scheduler (still the leader) and kubelet alive")

for n in ("p1", "p2", "p3"):
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
t.ok(c.wait_for(lambda: not any(get(n) for n in ("p1", "p2", "p3")), timeout=2 * ctest.DEADLINE),
     "pods deleted")
t.done()
