#!/usr/bin/python3
"""coracle-scheduler end to end: each filter's rejection and its
FailedScheduling message (Kubernetes' texts), the Scheduled event, the
PodScheduled=False condition, and a pending pod placed as soon as a fitting
node appears. Real apiserver and scheduler, Node objects without kubelets."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest  # noqa: E402
import schedutil as su  # noqa: E402

t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
api = c.start_apiserver()
sched = c.start_scheduler("--backoff-initial", "200ms", "--backoff-max", "1s")

api.call("Nodes", "Create", su.node("n1", cpu="1", mem="2Gi", pods="3", labels={"zone": "a"}))
api.call("Nodes", "Create", su.node("n2", cpu="4", mem="8Gi", labels={"zone": "b"},
                                    taints=[("dedicated", "gpu", "NoSchedule")]))
api.call("Nodes", "Create", su.node("n3", cpu="4", mem="8Gi", labels={"zone": "b"},
                                    unschedulable=True))

TAINT = "1 node(s) had untolerated taint {dedicated: gpu}"
UNSCHED = "1 node(s) were unschedulable"


def msg(*reasons, n=3):
    return "0/%d nodes are available: %s." % (n, ", ".join(reasons))


# 1. a pod that fits: bound, Scheduled event with Kubernetes' text
api.call("Pods", "Create", su.pod("fits", cpu="500m", node_selector={"zone": "a"}))
t.is_(su.wait_bound(c, api, "fits"), "n1", "pod bound to the only node that fits")
ev = su.wait_event(c, api, "fits", "Scheduled")
t.ok(ev is not None, "Scheduled event written")
if ev:
    t.is_(ev.message, "Successfully assigned default/fits to n1", "Scheduled message")
    t.is_(ev.type, "Normal", "Scheduled type")
    t.is_(ev.source.component, "default-scheduler", "source.component")
    t.is_(ev.reportingComponent, "default-scheduler", "reportingComponent")
    t.is_((ev.involvedObject.kind, ev.involvedObject.namespace, ev.involvedObject.name),
          ("Pod", "default", "fits"), "involvedObject")
    t.ok(ev.involvedObject.uid == su.get_pod(api, "fits").metadata.uid, "involvedObject uid")
    t.ok(ev.metadata.name.startswith("fits.") and len(ev.metadata.name) == len("fits.") + 16,
         "event name <pod>.<16 hex>: " + ev.metadata.name)
    t.is_(ev.count, 1, "count 1")
    t.ok(ev.firstTimestamp.seconds > 0 and ev.lastTimestamp.seconds > 0, "timestamps set")
p = su.get_pod(api, "fits")
cond = su.scheduled_condition(p)
t.ok(cond is not None and cond.status == "True", "PodScheduled=True after Bind")

# 2. NodeResourcesFit: cpu and memory
api.call("Pods", "Create", su.pod("cpu", cpu="2"))
want = msg("1 Insufficient cpu", TAINT, UNSCHED)
t.is_(su.wait_failed_message(c, api, "cpu", want), want, "Insufficient cpu message")
ev = su.wait_event(c, api, "cpu", "FailedScheduling")
t.is_(ev.type if ev else None, "Warning", "FailedScheduling is a Warning")
p = su.get_pod(api, "cpu")
cond = su.scheduled_condition(p)
t.ok(cond is not None and cond.status == "False" and cond.reason == "Unschedulable",
     "PodScheduled=False reason Unschedulable")
t.is_(cond.message if cond else None, want, "condition message = event message")
t.ok(not p.spec.nodeName, "unschedulable pod not bound")

api.call("Pods", "Create", su.pod("mem", mem="3Gi"))
want = msg("1 Insufficient memory", TAINT, UNSCHED)
t.is_(su.wait_failed_message(c, api, "mem", want), want, "Insufficient memory message")

# 3. NodeAffinity: nodeSelector and required node affinity
AFF = "1 node(s) didn't match Pod's node affinity/selector"
api.call("Pods", "Create", su.pod("sel", node_selector={"zone": "c"}))
want = msg(AFF, TAINT, UNSCHED)
t.is_(su.wait_failed_message(c, api, "sel", want), want, "nodeSelector message")
api.call("Pods", "Create", su.pod("aff", affinity_in=("zone", ["x", "y"])))
t.is_(su.wait_failed_message(c, api, "aff", want), want, "required node affinity message")
api.call("Pods", "Create", su.pod("aff-ok", affinity_in=("zone", ["x", "a"])))
t.is_(su.wait_bound(c, api, "aff-ok"), "n1", "affinity In matching n1 binds there")

# 4. TaintToleration: tolerating the taint opens n2
api.call("Pods", "Create", su.pod("tol", cpu="2",
                                  tolerations=[("dedicated", "Equal", "gpu", "NoSchedule")]))
t.is_(su.wait_bound(c, api, "tol"), "n2", "tolerating pod bound to the tainted node")

# 5. NodePorts (n1 now holds fits and aff-ok: 2 of its 3 pods)
api.call("Pods", "Create", su.pod("port1", node_selector={"zone": "a"}, host_port=8080))
t.is_(su.wait_bound(c, api, "port1"), "n1", "first hostPort 8080 pod bound")
api.call("Pods", "Create", su.pod("port2", host_port=8080, node_selector={"zone": "a"}))
want = msg("1 Too many pods", TAINT, UNSCHED)
# n1 is full now (3 pods): "Too many pods" comes from NodeResourcesFit, after NodePorts
api.call("Pods", "Create", su.pod("toomany", node_selector={"zone": "a"}))
t.is_(su.wait_failed_message(c, api, "toomany", want), want, "Too many pods message")
want_port = msg("1 node(s) didn't have free ports for the requested pod ports", TAINT, UNSCHED)
t.is_(su.wait_failed_message(c, api, "port2", want_port), want_port, "NodePorts message")

# 6. node Ready: a not-ready node is tainted node.kubernetes.io/not-ready
api.call("Nodes", "Create", su.node("n4", cpu="8", mem="16Gi", labels={"zone": "d"},
                                    ready="False"))
api.call("Pods", "Create", su.pod("ready", node_selector={"zone": "d"}))
want = msg(AFF, TAINT, "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
           UNSCHED, n=4)
t.is_(su.wait_failed_message(c, api, "ready", want), want, "not-ready node message")

# 7. the pending pod is placed as soon as a fitting node registers / becomes ready
n4 = api.call("Nodes", "Get", pb.GetRequest(name="n4"))
n4.status.conditions[0].status = "True"
api.call("Nodes", "UpdateStatus", n4)
t.is_(su.wait_bound(c, api, "ready", timeout=ctest.DEADLINE), "n4", "pod placed once its node is Ready")
api.call("Nodes", "Create", su.node("n5", cpu="8", mem="16Gi", labels={"zone": "c"}))
t.is_(su.wait_bound(c, api, "sel", timeout=ctest.DEADLINE), "n5", "pod placed once a matching node registers")
t.is_(su.wait_bound(c, api, "cpu", timeout=ctest.DEADLINE) in ("n4", "n5"), True,
      "the cpu-hungry pod finds room on the new nodes")

# 8. a pod for another scheduler is left alone; a pod with nodeName is not touched
api.call("Pods", "Create", su.pod("other", scheduler="my-scheduler"))
api.call("Pods", "Create", su.pod("fixed"))
t.ok(su.wait_bound(c, api, "fixed") is not None, "control pod bound")
t.ok(su.node_of(api, "other") is None, "pod of another scheduler stays unbound")
t.ok(not su.events_for(api, "other"), "and gets no events from us")

t.ok(sched.alive(), "scheduler still running")
t.done()
