#!/usr/bin/python3
"""coracle-scheduler's leader election through the Lease kube-system/coracle-scheduler,
two and then three schedulers on one apiserver: exactly one leads (the Lease
names it, only it binds, /metrics says so), the standby keeps its caches and
binds nothing; SIGKILL the leader and the standby takes over once the Lease
went unrenewed for leaseDurationSeconds (not before), SIGTERM releases the
Lease and the next standby takes over at its next try; leaseTransitions counts
the changes of holder, each new leader writes "<identity> became leader", and
no pod is bound twice; a leader that cannot renew within the renew deadline
exits ("leaderelection lost"), as kube-scheduler does. Shortened durations (8 s lease, 5 s deadline, 1 s
retry) keep it quick; margins are generous for a slow machine."""
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest  # noqa: E402
import schedutil as su  # noqa: E402

LEASE_S, RETRY_S = 8, 1
LE = ["--leader-elect-lease-duration", "%ds" % LEASE_S, "--leader-elect-renew-deadline", "5s",
      "--leader-elect-retry-period", "%ds" % RETRY_S]

t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
api = c.start_apiserver()
api.call("Nodes", "Create", su.node("n1", cpu="8", mem="16Gi"))


def start(name):
    port = ctest.free_port()
    d = c.start(name, [c.bin("coracle-scheduler"), "--server", c.api_addr, "--healthz-listen",
                       "127.0.0.1:%d" % port, "--backoff-initial", "200ms", "--backoff-max", "1s"] + LE)
    d.health = "127.0.0.1:%d" % port
    d.ident = c.wait_for(lambda: identity(d), timeout=ctest.DEADLINE)
    return d


def log(d):
    with open(d.log_path, errors="replace") as f:
        return f.read()


def identity(d):
    m = re.search(r"leader election: lease kube-system/coracle-scheduler, identity (\S+)", log(d))
    return m.group(1) if m else None


def lease():
    l, _ = api.try_call("Leases", "Get", pb.GetRequest(namespace="kube-system", name="coracle-scheduler"))
    return l


def holder():
    l = lease()
    return l.spec.holderIdentity if l else None


def metric(d, name):
    status, body = ctest.http_get(d.health, "/metrics")
    if status != 200:
        return None
    m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    return float(m.group(1)) if m else None


MASTER = 'leader_election_master_status{name="coracle-scheduler"}'
BOUND = 'coracle_scheduler_schedule_attempts_total{result="scheduled"}'


def scheduled_events():
    evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
    n = {}
    for e in evs:
        if e.reason == "Scheduled":
            n[e.involvedObject.name] = n.get(e.involvedObject.name, 0) + e.count
    return n


def create(names):
    for n in names:
        api.call("Pods", "Create", su.pod(n, cpu="10m"))


def all_bound(names):
    return c.wait_for(lambda: all(su.node_of(api, n) for n in names), timeout=ctest.DEADLINE)


# ---- two schedulers: one leads ----
a, b = start("sched-a"), start("sched-b")
t.ok(a.ident and b.ident and a.ident != b.ident and re.match(r"^[^_]+_[0-9a-f-]{36}$", a.ident),
     "identities are hostname_uuid (%s, %s)" % (a.ident, b.ident))
h = c.wait_for(lambda: holder() in (a.ident, b.ident) and holder(), timeout=ctest.DEADLINE)
t.ok(h, "the Lease kube-system/coracle-scheduler names one of them")
leader, standby = (a, b) if h == a.ident else (b, a)
l0 = lease()
t.ok(l0 and l0.spec.leaseDurationSeconds == LEASE_S and l0.spec.leaseTransitions == 0
     and l0.spec.acquireTime.seconds > 0 and l0.spec.renewTime.seconds > 0,
     "leaseDurationSeconds %d, acquireTime and renewTime set, no transition yet" % LEASE_S)
t.ok("successfully acquired lease kube-system/coracle-scheduler" in log(leader)
     and "attempting to acquire leader lease kube-system/coracle-scheduler..." in log(leader),
     "the leader logs as client-go does")
t.ok(c.wait_for(lambda: lease() and lease().spec.renewTime.seconds > l0.spec.renewTime.seconds + 1,
                timeout=ctest.DEADLINE), "the leader renews")

first = ["p%d" % i for i in range(6)]
create(first)
t.ok(all_bound(first), "6 pods bound")
t.ok(c.wait_for(lambda: metric(leader, MASTER) == 1 and metric(standby, MASTER) == 0
                and metric(leader, BOUND) == 6, timeout=ctest.DEADLINE),
     "/metrics: the leader is master and bound all 6, the standby is not")
t.is_(metric(standby, BOUND), 0.0, "the standby bound nothing")
t.ok("successfully acquired" not in log(standby) and h == holder(), "and never held the Lease")
ev = [e for e in api.call("Events", "List", pb.ListRequest(namespace="kube-system")).items
      if e.reason == "LeaderElection"]
t.ok(any(e.message == "%s became leader" % leader.ident and e.involvedObject.kind == "Lease"
         and e.involvedObject.name == "coracle-scheduler" for e in ev),
     "event LeaderElection on the Lease: <identity> became leader")

# ---- SIGKILL the leader: the standby takes over after the lease duration ----
leader.kill()
t0 = time.time()
got = c.wait_for(lambda: holder() == standby.ident, timeout=LEASE_S + 3 * RETRY_S + 30, interval=0.1)
took = time.time() - t0
t.ok(got, "after a SIGKILL the standby holds the Lease (%.1f s)" % took)
# it last saw the record change at most one renewal (1 s) before the kill
t.ok(took >= LEASE_S - RETRY_S - 0.5, "not before the record went unrenewed for the lease duration "
     "(%.1f s >= %.1f s)" % (took, LEASE_S - RETRY_S - 0.5))
t.ok(took <= LEASE_S + 2.2 * RETRY_S + 20, "within the lease duration and a margin")
t.is_(lease().spec.leaseTransitions, 1, "leaseTransitions 1")
second = ["q%d" % i for i in range(4)]
create(second)
t.ok(all_bound(second), "the new leader binds new pods")
new = standby
t.ok(c.wait_for(lambda: metric(new, MASTER) == 1 and metric(new, BOUND) == 4, timeout=ctest.DEADLINE),
     "and says so in /metrics (4 bound)")

# ---- SIGTERM releases: a third scheduler takes over at its next try ----
third = start("sched-c")
time.sleep(2 * RETRY_S)  # it has read the Lease and found it held
t.is_(holder(), new.ident, "the third waits as standby")
t1 = time.time()
t.is_(new.stop(), 0, "the leader exits 0 on SIGTERM")
t.ok("released lease kube-system/coracle-scheduler" in log(new), "after releasing the Lease")
got = c.wait_for(lambda: holder() == third.ident, timeout=ctest.DEADLINE, interval=0.1)
took = time.time() - t1
t.ok(got and took < LEASE_S - 1, "the standby takes over at its next try (%.1f s, the lease would "
     "have run %d s)" % (took, LEASE_S))
t.is_(lease().spec.leaseTransitions, 2, "leaseTransitions 2")
third_pods = ["r%d" % i for i in range(3)]
create(third_pods)
t.ok(all_bound(third_pods), "the third binds new pods")

# ---- no pod bound twice ----
allp = first + second + third_pods
t.ok(c.wait_for(lambda: all(scheduled_events().get(n) for n in allp), timeout=ctest.DEADLINE),
     "a Scheduled event for every pod")
t.is_({n: scheduled_events().get(n, 0) for n in allp}, {n: 1 for n in allp},
      "exactly one Scheduled event per pod: none bound twice")
conflicts = [ln for d in (a, b, third) for ln in log(d).splitlines() if re.search(r"binding .*(ABORTED|already)", ln)]
t.is_(conflicts, [], "no bind conflict in any scheduler's log")
t.ok(third.alive(), "the third still runs")
t.ok("leaderelection lost" not in log(a) + log(b) + log(third), "no leader lost its lease")

# ---- a leader that cannot renew within the deadline (5 s) exits ----
os.kill(c.api.proc.pid, signal.SIGSTOP)
t2 = time.time()
try:
    gone = c.wait_for(lambda: not third.alive(), timeout=5 + 30)
finally:
    os.kill(c.api.proc.pid, signal.SIGCONT)
t.ok(gone and third.proc.returncode == 1, "apiserver frozen: the leader exits 1 (after %.1f s)" % (time.time() - t2))
t.ok("failed to renew lease kube-system/coracle-scheduler" in log(third) and "leaderelection lost" in log(third),
     "logging 'failed to renew lease' and 'leaderelection lost'")

# ---- --leader-elect=false: no Lease needed ----
lone = c.start("sched-lone", [c.bin("coracle-scheduler"), "--server", c.api_addr, "--healthz-listen", "",
                              "--leader-elect=false"])
create(["s0"])
t.ok(all_bound(["s0"]), "with --leader-elect=false it schedules at once, the Lease unheld")
t.ok("attempting to acquire" not in log(lone), "and does not try to hold it")
t.done()
