#!/usr/bin/python3
"""A short Lease holds across etcd leader elections.

Three etcd members, one apiserver on them, one scheduler with an 8 s
Lease renewed every second within a 6 s renew deadline. A write the
apiserver sends to a follower just as the leader dies is lost with the
leader; etcd answers it only after its own request timeout (5 s plus two
election timeouts), longer than the renew deadline. The apiserver's etcd
client gives each attempt a deadline of its own and sends the write to
another member instead. A probe updates a Lease through the apiserver
back to back (so a write is always under way), the etcd leader is killed
ROUNDS times (never the member the apiserver uses, so its write is the one
caught on a follower): every probe write succeeds well inside the renew
deadline, and the scheduler keeps its Lease (no "leaderelection lost", no
transition).
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest  # noqa: E402
import etcdutil  # noqa: E402

ROUNDS = 4
RENEW_DEADLINE_S = 6

t = ctest.Tap()
why = etcdutil.available()
if why:
    t.skip_all(why)
pb = ctest.pb
c = ctest.Cluster(t, "82-fault-etcd-lease")
ec = etcdutil.EtcdCluster(c, members=3)
addr = "127.0.0.1:%d" % ctest.free_port()
api_d = c.start("apiserver", [
    c.bin("coracle-apiserver"), "--listen", addr, "--data-dir", os.path.join(c.dir, "api"),
    "--storage-backend", "etcd3", "--etcd-servers", ",".join(ec.endpoints),
    "--etcd-compaction-interval", "0"])
c.wait_ready(addr, api_d)
api = ctest.Client(addr)
c.clients.append(api)


def log(d):
    with open(d.log_path, errors="replace") as f:
        return f.read()


def member_in_use():
    """The member the apiserver's etcd client uses: the first, or the last it moved to."""
    moves = re.findall(r"etcd: \S+ failed \(.*\); trying (\S+)", log(api_d))
    return ec.endpoints.index(moves[-1]) if moves else 0


sched = c.start("scheduler", [c.bin("coracle-scheduler"), "--server", addr, "--healthz-listen", "",
                              "--leader-elect-lease-duration", "8s",
                              "--leader-elect-renew-deadline", "%ds" % RENEW_DEADLINE_S,
                              "--leader-elect-retry-period", "1s"])
t.ok(c.wait_for(lambda: "successfully acquired lease kube-system/coracle-scheduler" in log(sched),
                timeout=ctest.DEADLINE), "the scheduler holds its Lease (8 s, renew deadline %d s)"
     % RENEW_DEADLINE_S)

probe = api.call("Leases", "Create", pb.Lease(metadata=ctest.meta("probe", "default"),
                                              spec=pb.LeaseSpec(holderIdentity="probe")))
lat = []  # (start, seconds, error)
stop = threading.Event()


def prober():
    l = probe
    while not stop.is_set():
        l.spec.leaseDurationSeconds = (l.spec.leaseDurationSeconds % 100) + 1
        t0 = time.time()
        r, e = api.try_call("Leases", "Update", l, timeout=30)
        lat.append((t0, time.time() - t0, e))
        if r:
            l = r
        else:
            l = api.try_call("Leases", "Get", pb.GetRequest(namespace="default", name="probe"))[0] or l


th = threading.Thread(target=prober, daemon=True)
th.start()
worst = []
for rnd in range(ROUNDS):
    leader = ec.leader(timeout=20)
    use = member_in_use()
    if leader == use:
        # the leader must be another member: move the leadership away first
        other = [i for i in range(3) if i not in (leader,)][0]
        ec.ctl("move-leader", "%x" % int(ec.status(other)["header"]["member_id"]), endpoints=[leader])
        leader = ec.leader(timeout=20)
    t0 = time.time()
    ec.kill(leader)
    ec.leader(timeout=20)
    time.sleep(1.5)
    ec.restart(leader)
    time.sleep(1)
    w = max([d for s, d, e in lat if s + d >= t0] or [0])  # writes under way at the kill too
    worst.append(w)
    t.diag("round %d: killed leader %d (apiserver on %d); slowest write %.2f s" % (rnd, leader, use, w))
stop.set()
th.join(30)
errs = [e for s, d, e in lat if e]
t.ok(not errs, "%d probe writes, none failed (%s)" % (len(lat), errs[:1]))
t.ok(max(worst) < RENEW_DEADLINE_S - 1, "every write answered within %.2f s over %d etcd leader "
     "elections (the renew deadline is %d s)" % (max(worst), ROUNDS, RENEW_DEADLINE_S))
l = api.call("Leases", "Get", pb.GetRequest(namespace="kube-system", name="coracle-scheduler"))
t.ok(sched.alive() and "leaderelection lost" not in log(sched) and l.spec.leaseTransitions == 0,
     "the scheduler kept its Lease throughout (alive, no \"leaderelection lost\", %d transitions)"
     % l.spec.leaseTransitions)
t.done()
