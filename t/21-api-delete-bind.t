#!/usr/bin/python3
# coracle-apiserver end to end: graceful deletion of bound pods (MODIFIED
# with deletionTimestamp, then DELETED on the kubelet's grace-0 delete) and
# Bind: compare-and-set on spec.nodeName, exactly one of concurrent binders wins.
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod
import grpc

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb


def binding(name, node, ns="default"):
    return pb.Binding(metadata=meta(name, ns), target=pb.ObjectReference(kind="Node", name=node))


# ---- bind ----
api.call("Pods", "Create", simple_pod("b1"))
w = api.stream("Pods", "Watch", pb.ListRequest(namespace="default", fieldSelector="spec.nodeName=n1"))
b = api.call("Pods", "Bind", binding("b1", "n1"))
t.is_(b.spec.nodeName, "n1", "Bind sets spec.nodeName")
cond = [x for x in b.status.conditions if x.type == "PodScheduled"]
t.ok(cond and cond[0].status == "True", "PodScheduled=True")
ev = next(w)
t.is_((ev.type, ev.object.metadata.name), ("ADDED", "b1"), "a kubelet-style watch (spec.nodeName=n1) sees the bound pod as ADDED")
_, e = api.try_call("Pods", "Bind", binding("b1", "n2"))
t.is_((e.code, e.message), (grpc.StatusCode.ABORTED, 'Operation cannot be fulfilled on pods/binding "b1": pod b1 is already assigned to node "n1"'), "second bind conflicts")
_, e = api.try_call("Pods", "Bind", binding("nope", "n1"))
t.is_((e.code, e.message), (grpc.StatusCode.NOT_FOUND, 'pods "nope" not found'), "bind of a missing pod")
_, e = api.try_call("Pods", "Bind", pb.Binding(metadata=meta("b1", "default")))
t.is_(e.code, grpc.StatusCode.INVALID_ARGUMENT, "bind without a target")

# concurrent binders: exactly one wins
ok_count = 0
bad_rounds = []
for round_ in range(5):
    name = "race-%d" % round_
    api.call("Pods", "Create", simple_pod(name))
    results = []
    clients = [ctest.Client(c.api_addr) for _ in range(4)]
    def binder(cl, node):
        try:
            _, e = cl.try_call("Pods", "Bind", binding(name, node))
            results.append((node, e.code if e else None, e.message if e else None))
        except Exception as x:  # reported, never lost in the thread
            results.append((node, "exception", repr(x)))
    th = [threading.Thread(target=binder, args=(clients[i], "node-%d" % i)) for i in range(4)]
    [x.start() for x in th]
    [x.join() for x in th]
    [cl.close() for cl in clients]
    winners = [n for n, code, _ in results if code is None]
    losers = [code for n, code, _ in results if code is not None]
    final = api.call("Pods", "Get", pb.GetRequest(name=name))
    if len(results) == 4 and len(winners) == 1 and all(x == grpc.StatusCode.ABORTED for x in losers) and final.spec.nodeName == winners[0]:
        ok_count += 1
    else:
        bad_rounds.append("round %d: %r, final %s" % (round_, results, final.spec.nodeName))
t.is_(ok_count, 5, "4 concurrent binders x 5 rounds: exactly one wins each time, the rest conflict")
for line in bad_rounds:
    t.diag(line)

# ---- graceful delete ----
p = api.call("Pods", "Get", pb.GetRequest(name="b1"))
d = api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="b1"))
t.ok(d.metadata.HasField("deletionTimestamp"), "bound pod: deletionTimestamp set")
t.is_(d.metadata.deletionGracePeriodSeconds, 30, "grace from spec.terminationGracePeriodSeconds")
t.ok(abs(d.metadata.deletionTimestamp.seconds - (p.metadata.creationTimestamp.seconds + 30)) < 10, "deletionTimestamp = now + grace")
ev = next(w)
t.is_((ev.type, ev.object.metadata.name), ("MODIFIED", "b1"), "watchers see MODIFIED")
t.ok(ev.object.metadata.HasField("deletionTimestamp"), "with the deletionTimestamp")
g = api.call("Pods", "Get", pb.GetRequest(name="b1"))
t.ok(g.metadata.HasField("deletionTimestamp"), "pod still there while terminating")
_, e = api.try_call("Pods", "Bind", binding("b1", "n3"))
t.is_(e.code, grpc.StatusCode.ABORTED, "terminating pod cannot be bound")
d2 = api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="b1"))
t.is_(d2.metadata.resourceVersion, d.metadata.resourceVersion, "a second graceful delete changes nothing")
d3 = api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="b1", gracePeriodSeconds=5))
t.is_(d3.metadata.deletionGracePeriodSeconds, 5, "a shorter grace period shortens it")
ev = next(w)
t.is_(ev.type, "MODIFIED", "shortening is a MODIFIED")
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="b1", gracePeriodSeconds=0))
ev = next(w)
t.is_((ev.type, ev.object.metadata.name), ("DELETED", "b1"), "grace 0 confirmation: DELETED")
t.ok(int(ev.object.metadata.resourceVersion) > int(d3.metadata.resourceVersion), "DELETED carries the deletion's revision")
t.is_(api.try_call("Pods", "Get", pb.GetRequest(name="b1"))[1].code, grpc.StatusCode.NOT_FOUND, "gone")

# request grace on a bound pod; finished pods and unbound pods go at once
api.call("Pods", "Create", simple_pod("g2", nodeName="n1"))
d = api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="g2", gracePeriodSeconds=7))
t.is_(d.metadata.deletionGracePeriodSeconds, 7, "request gracePeriodSeconds wins")
api.call("Pods", "Create", simple_pod("g3", nodeName="n1"))
g3 = api.call("Pods", "Get", pb.GetRequest(name="g3"))
g3.status.phase = "Succeeded"
api.call("Pods", "UpdateStatus", g3)
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="g3"))
t.is_(api.try_call("Pods", "Get", pb.GetRequest(name="g3"))[1].code, grpc.StatusCode.NOT_FOUND, "finished pod deleted at once")
api.call("Pods", "Create", simple_pod("g4"))
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="g4"))
t.is_(api.try_call("Pods", "Get", pb.GetRequest(name="g4"))[1].code, grpc.StatusCode.NOT_FOUND, "unbound pod deleted at once")
api.call("Pods", "Create", simple_pod("g5", nodeName="n1"))
g5 = api.call("Pods", "Get", pb.GetRequest(name="g5"))
_, e = api.try_call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="g5", gracePeriodSeconds=0, preconditions=pb.Preconditions(resourceVersion="1")))
t.is_((e.code, e.message), (grpc.StatusCode.ABORTED, 'Operation cannot be fulfilled on pods "g5": Precondition failed: ResourceVersion in precondition: 1, ResourceVersion in object meta: %s' % g5.metadata.resourceVersion), "resourceVersion precondition")
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="g5", gracePeriodSeconds=0, preconditions=pb.Preconditions(uid=g5.metadata.uid)))
t.is_(api.try_call("Pods", "Get", pb.GetRequest(name="g5"))[1].code, grpc.StatusCode.NOT_FOUND, "bound pod with grace 0: at once")
# other kinds: at once
api.call("Nodes", "Create", pb.Node(metadata=meta("nx")))
api.call("Nodes", "Delete", pb.DeleteRequest(name="nx"))
t.is_(api.try_call("Nodes", "Get", pb.GetRequest(name="nx"))[1].code, grpc.StatusCode.NOT_FOUND, "node deleted at once")
it = api.stream("Pods", "Log", pb.PodLogRequest(name="g2"))
try:
    next(it)
    t.ok(False, "Log answers")
except grpc.RpcError as e:
    t.is_((e.code(), e.details()), (grpc.StatusCode.UNAVAILABLE, 'no tunnel to node "n1": is its kubelet running and connected?'),
          "Log is relayed to the node's kubelet tunnel (none here)")
w.cancel()
t.done()
