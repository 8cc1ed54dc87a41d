#!/usr/bin/python3
# Observability: /metrics of the apiserver (on its API port) and of the
# scheduler and controller manager (on their healthz-listen ports) parse as Prometheus text (0.0.4)
# over HTTP/1.1 and HTTP/2, and move when load runs; /healthz and /readyz
# answer; the kubelet's endpoint too when it can run here (root, runc).
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest
import klet
import opsutil
import schedutil

t = ctest.Tap()
c = ctest.Cluster(t)
pb = ctest.pb


def scrape(addr, name, h2=False):
    st, body = (opsutil.h2_get if h2 else ctest.http_get)(addr, "/metrics")
    if st != 200:
        t.ok(False, "%s: /metrics over %s answers 200 (%s %s)" % (name, "h2" if h2 else "HTTP/1.1", st, body[:200]))
        return {}, {}
    try:
        return opsutil.parse_prom(body)
    except ValueError as e:
        t.ok(False, "%s: /metrics parses: %s" % (name, e))
        return {}, {}


# ---- apiserver ----
api = c.start_apiserver()
s0, ty0 = scrape(c.api_addr, "apiserver")
t.ok(len(s0) > 0, "apiserver: /metrics over HTTP/1.1 parses (%d samples)" % len(s0))
s0h2, _ = scrape(c.api_addr, "apiserver", h2=True)
t.ok(len(s0h2) > 0, "apiserver: /metrics over HTTP/2 parses (%d samples)" % len(s0h2))
for fam in ("coracle_apiserver_requests_total", "coracle_apiserver_inflight_requests",
            "coracle_apiserver_watchers", "coracle_apiserver_watch_events_sent_total",
            "coracle_store_revision", "coracle_store_compacted_revision"):
    t.ok(fam in ty0, "apiserver: family %s has a TYPE" % fam)
hists = sorted(f for f, tp in ty0.items() if tp == "histogram")
t.ok(any("request" in f and "seconds" in f for f in hists),
     "apiserver: a request latency histogram (%s)" % hists)
t.ok(any("fsync" in f for f in hists), "apiserver: an fsync latency histogram")
t.ok(any("batch" in f for f in hists), "apiserver: a commit batch size histogram")

# load: a watch, creates, gets, a conflict
watch = api.stream("Pods", "Watch", pb.ListRequest(namespace="default"))
N = 30
for i in range(N):
    api.call("Pods", "Create", ctest.simple_pod("m%d" % i))
for i in range(5):
    api.call("Pods", "Get", pb.GetRequest(namespace="default", name="m%d" % i))
_, err = api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name="absent"))
got = 0
for ev in watch:
    got += 1
    if got >= N:
        break
s1, _ = scrape(c.api_addr, "apiserver")
creates = opsutil.total(s1, "coracle_apiserver_requests_total", method="/coracle.v1.Pods/Create")
t.ok(creates >= N, "apiserver: Create counted (%s)" % creates)
t.ok(opsutil.total(s1, "coracle_apiserver_requests_total", method="/coracle.v1.Pods/Get", code="NotFound") +
     opsutil.total(s1, "coracle_apiserver_requests_total", method="/coracle.v1.Pods/Get", code="NOT_FOUND") >= 1,
     "apiserver: NotFound counted by code")
rev0 = opsutil.value(s0, "coracle_store_revision") or 0
rev1 = opsutil.value(s1, "coracle_store_revision") or 0
t.ok(rev1 >= rev0 + N, "apiserver: store revision moved (%s -> %s)" % (rev0, rev1))
t.ok((opsutil.value(s1, "coracle_apiserver_watchers") or 0) >= 1, "apiserver: the open watch is counted")
t.ok((opsutil.value(s1, "coracle_apiserver_watch_events_sent_total") or 0) >= N,
     "apiserver: watch events sent counted")
lat = [f for f in hists if "request" in f and "seconds" in f]
if lat:
    cnt = opsutil.total(s1, lat[0] + "_count")
    t.ok(cnt >= N + 5, "apiserver: %s_count moved (%s)" % (lat[0], cnt))
else:
    t.skip("no request latency histogram")
fs = [f for f in hists if "fsync" in f]
if fs:
    t.ok(opsutil.total(s1, fs[0] + "_count") > opsutil.total(s0, fs[0] + "_count"),
         "apiserver: %s moved" % fs[0])
else:
    t.skip("no fsync histogram")
watch.cancel()
st, body = ctest.http_get(c.api_addr, "/healthz")
t.is_(st, 200, "apiserver: /healthz 200")
st, body = ctest.http_get(c.api_addr, "/nonexistent")
t.is_(st, 404, "apiserver: unknown path 404")

# coraclectl get --raw
rc, out, err = c.ctl("get", "--raw", "/metrics")
try:
    rs, _ = opsutil.parse_prom(out)
except ValueError as e:
    rs = {}
    t.diag(str(e))
t.ok(rc == 0 and opsutil.value(rs, "coracle_store_revision") is not None,
     "coraclectl get --raw /metrics prints parseable metrics (%s)" % err.strip())
rc, out, err = c.ctl("get", "--raw", "/healthz")
t.ok(rc == 0 and out.strip() == "ok", "coraclectl get --raw /healthz: ok")
rc, out, err = c.ctl("get", "--raw", "/nope")
t.ok(rc == 1 and "NotFound" in err, "coraclectl get --raw /nope: NotFound (%s)" % err.strip())

# ---- scheduler ----
hz = "127.0.0.1:%d" % ctest.free_port()
sched = c.start_scheduler("--healthz-listen", hz)
t.ok(c.wait_for(lambda: ctest.http_get(hz, "/healthz")[0] == 200, timeout=ctest.DEADLINE), "scheduler: /healthz 200")
t.is_(ctest.http_get(hz, "/readyz")[0], 200, "scheduler: /readyz 200")
st, body = opsutil.h2_get(hz, "/healthz")
t.ok(st == 200 and body == "ok", "scheduler: /healthz over HTTP/2 (%s %r)" % (st, body[:60]))
ss0, sty = scrape(hz, "scheduler")
for fam in ("coracle_scheduler_schedule_attempts_total", "coracle_scheduler_nodes",
            "coracle_scheduler_pending_pods", "coracle_scheduler_binds_inflight",
            "coracle_scheduler_scheduling_algorithm_duration_seconds",
            "coracle_scheduler_e2e_scheduling_duration_seconds"):
    t.ok(fam in sty, "scheduler: family %s" % fam)
api.call("Nodes", "Create", schedutil.node("n1"))
# the pods created above (no node then) get scheduled now
bound = c.wait_for(lambda: all(schedutil.node_of(api, "m%d" % i) for i in range(N)), timeout=ctest.DEADLINE)
t.ok(bound, "scheduler: the %d pods got bound" % N)
ss1, _ = scrape(hz, "scheduler")
sch = opsutil.value(ss1, "coracle_scheduler_schedule_attempts_total", result="scheduled") or 0
t.ok(sch >= N, "scheduler: scheduled attempts moved (%s)" % sch)
t.is_(opsutil.value(ss1, "coracle_scheduler_nodes"), 1.0, "scheduler: 1 node known")
t.ok((opsutil.value(ss1, "coracle_scheduler_scheduling_algorithm_duration_seconds_count") or 0) >= N,
     "scheduler: algorithm latency histogram counts the attempts")
t.ok((opsutil.value(ss1, "coracle_scheduler_e2e_scheduling_duration_seconds_count") or 0) >= N,
     "scheduler: e2e latency histogram counts the binds")
t.is_(opsutil.value(ss1, "coracle_scheduler_pending_pods", queue="active"), 0.0,
      "scheduler: active queue empty once all are bound")
sh2, _ = scrape(hz, "scheduler", h2=True)
t.ok(len(sh2) > 0, "scheduler: /metrics over HTTP/2 parses")
t.is_(sched.stop(), 0, "scheduler: exits 0")

# ---- controller manager: a ReplicaSet moves its work queue's counters ----
chz = "127.0.0.1:%d" % ctest.free_port()
cmgr = c.start("controller-manager", [c.bin("coracle-controller-manager"), "--server", c.api_addr,
                                      "--healthz-listen", chz])
t.ok(c.wait_for(lambda: ctest.http_get(chz, "/healthz")[0] == 200, timeout=ctest.DEADLINE),
     "controller manager: /healthz 200")
labels = {"app": "m"}
api.call("ReplicaSets", "Create", pb.ReplicaSet(
    metadata=ctest.meta("m", "default"),
    spec=pb.ReplicaSetSpec(replicas=2, selector=pb.LabelSelector(matchLabels=labels),
                           template=pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels=labels), spec=pb.PodSpec(
                               containers=[pb.Container(name="c", image="busybox")])))))
t.ok(c.wait_for(lambda: scrape(chz, "controller manager")[0].get(
    ("workqueue_adds_total", frozenset({"name": "replicaset"}.items())), 0) >= 1, timeout=ctest.DEADLINE),
     "controller manager: the replicaset queue counts its syncs (after winning the Lease)")
cs, cty = scrape(chz, "controller manager")
for fam in ("workqueue_depth", "workqueue_retries_total", "coracle_controller_api_writes_total",
            "leader_election_master_status"):
    t.ok(fam in cty, "controller manager: family %s" % fam)
t.ok((opsutil.value(cs, "coracle_controller_api_writes_total") or 0) >= 2,
     "controller manager: its writes counted")
t.is_(cs.get(("leader_election_master_status", frozenset({"name": "coracle-controller-manager"}.items()))),
      1.0, "controller manager: leads")
t.is_(cmgr.stop(), 0, "controller manager: exits 0")

# ---- kubelet: a pod started moves its metrics ----
runc = "/usr/sbin/runc"
help_text = os.popen("%s --help" % c.bin("coracle-kubelet")).read()
if os.geteuid() != 0 or not os.access(runc, os.X_OK) or not os.path.exists("/bin/busybox") \
        or "healthz-listen" not in help_text:
    t.skip("kubelet: needs root, runc, busybox-static and healthz-listen", 8)
else:
    root = os.path.join(c.dir, "kroot")
    runc_root = os.path.join(root, "runc")

    c.on_teardown(lambda: ctest.node_cleanup(root, runc_root))
    klet.import_busybox(t, root)
    khz = "127.0.0.1:%d" % ctest.free_port()
    k = c.start_kubelet("kn1", "--healthz-listen", khz, root_dir=root)
    t.ok(c.wait_for(lambda: ctest.http_get(khz, "/healthz")[0] == 200, timeout=ctest.DEADLINE), "kubelet: /healthz 200")
    t.ok(c.wait_for(lambda: ctest.http_get(khz, "/readyz")[0] == 200, timeout=ctest.DEADLINE), "kubelet: /readyz 200 once synced")
    ks0, kty = scrape(khz, "kubelet")
    t.ok(any(tp == "histogram" and "start" in f for f, tp in kty.items()), "kubelet: pod start latency histogram")
    pod = ctest.simple_pod("kp", containers=[pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent", command=["sleep", "300"])])
    pod.spec.nodeName = "kn1"
    pod.spec.terminationGracePeriodSeconds = 1
    api.call("Pods", "Create", pod)

    def running():
        p = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="kp"))
        return p.status.phase == "Running"

    t.ok(c.wait_for(running, timeout=60), "kubelet: the pod runs")
    ks1, _ = scrape(khz, "kubelet")
    t.ok((opsutil.value(ks1, "coracle_kubelet_running_containers") or 0) >= 1,
         "kubelet: running containers moved (%s)" % opsutil.value(ks1, "coracle_kubelet_running_containers"))
    cnt0 = opsutil.value(ks0, "coracle_kubelet_pod_start_duration_seconds_count") or 0
    cnt1 = opsutil.value(ks1, "coracle_kubelet_pod_start_duration_seconds_count") or 0
    t.ok(cnt1 == cnt0 + 1, "kubelet: pod start latency observed once (%s -> %s)" % (cnt0, cnt1))
    tot = opsutil.value(ks1, "coracle_kubelet_pod_start_duration_seconds_sum") or 0
    t.ok(0 < tot < 60, "kubelet: pod start latency plausible (%.3f s)" % tot)
    st, body = opsutil.h2_get(khz, "/metrics")
    t.ok(st == 200 and "coracle_kubelet_pods" in body, "kubelet: /metrics over HTTP/2")
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="kp"))
    gone = c.wait_for(lambda: api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name="kp"))[0] is None,
                      timeout=30)
    if not gone:
        t.diag("pod kp not gone after 30 s")
    k.stop()
t.done()
