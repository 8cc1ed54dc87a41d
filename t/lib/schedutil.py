"""schedutil: helpers shared by the scheduler's end-to-end tests (t/40-sched-*.t):
Node objects without kubelets, pods with requests, waiting for bindings and
reading the scheduler's events. Built on ctest."""
import time

import ctest

pb = ctest.pb


def node(name, cpu="2", mem="4Gi", pods="110", labels=None, taints=(), ready="True",
         unschedulable=False):
    n = pb.Node(metadata=ctest.meta(name))
    for k, v in (labels or {}).items():
        n.metadata.labels[k] = v
    for k, v in (("cpu", cpu), ("memory", mem), ("pods", pods)):
        n.status.capacity[k].string = v
        n.status.allocatable[k].string = v
    if ready is not None:
        n.status.conditions.add(type="Ready", status=ready, reason="KubeletReady")
    for key, value, effect in taints:
        t = n.spec.taints.add(key=key, effect=effect)
        if value is not None:
            t.value = value
    if unschedulable:
        n.spec.unschedulable = True
    return n


def pod(name, cpu=None, mem=None, ns="default", node_selector=None, host_port=None,
        tolerations=(), affinity_in=None, scheduler=None):
    p = ctest.simple_pod(name, ns=ns)
    c = p.spec.containers[0]
    if cpu:
        c.resources.requests["cpu"].string = cpu
    if mem:
        c.resources.requests["memory"].string = mem
    for k, v in (node_selector or {}).items():
        p.spec.nodeSelector[k] = v
    if host_port:
        c.ports.add(containerPort=80, hostPort=host_port)
    for key, op, value, effect in tolerations:
        t = p.spec.tolerations.add(key=key, operator=op)
        if value is not None:
            t.value = value
        if effect is not None:
            t.effect = effect
    if affinity_in:
        key, values = affinity_in
        term = p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution \
            .nodeSelectorTerms.add()
        term.matchExpressions.add(key=key, operator="In", values=values)
    if scheduler:
        p.spec.schedulerName = scheduler
    return p


def get_pod(api, name, ns="default"):
    r, err = api.try_call("Pods", "Get", pb.GetRequest(namespace=ns, name=name))
    return r


def node_of(api, name, ns="default"):
    p = get_pod(api, name, ns)
    return p.spec.nodeName if p is not None and p.spec.nodeName else None


def wait_bound(c, api, name, timeout=ctest.DEADLINE, ns="default"):
    return c.wait_for(lambda: node_of(api, name, ns), timeout=timeout)


def events_for(api, name, reason=None, ns="default"):
    lst = api.call("Events", "List", pb.ListRequest(namespace=ns))
    return [e for e in lst.items
            if e.involvedObject.name == name and (reason is None or e.reason == reason)]


def wait_event(c, api, name, reason, timeout=ctest.DEADLINE, ns="default"):
    def f():
        ev = events_for(api, name, reason, ns)
        return ev[-1] if ev else None
    return c.wait_for(f, timeout=timeout, interval=0.1)


def wait_failed_message(c, api, name, want, timeout=ctest.DEADLINE, ns="default"):
    """Waits until some FailedScheduling event of pod name says want; returns the
    last message seen."""
    seen = [None]

    def f():
        for e in events_for(api, name, "FailedScheduling", ns):
            seen[0] = e.message
            if e.message == want:
                return True
        return False
    c.wait_for(f, timeout=timeout, interval=0.1)
    return seen[0]


def scheduled_condition(p):
    for cond in p.status.conditions:
        if cond.type == "PodScheduled":
            return cond
    return None


def create_many(api, pods, timeout=60):
    """Creates the pods concurrently (many calls in flight); returns the errors."""
    fn = api.channel.unary_unary("/coracle.v1.Pods/Create",
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=pb.Pod.FromString)
    futs = [fn.future(p, timeout=timeout) for p in pods]
    errs = []
    for f in futs:
        try:
            f.result()
        except Exception as e:  # grpc.RpcError
            errs.append(e)
    return errs


def list_pods(api, ns=""):
    return list(api.call("Pods", "List", pb.ListRequest(namespace=ns), timeout=30).items)


def quantity_milli(s):
    """Parses the few quantity forms the tests use ("100m", "2", "1Gi")."""
    for suf, mul in (("Ki", 1024), ("Mi", 1024 ** 2), ("Gi", 1024 ** 3)):
        if s.endswith(suf):
            return int(s[:-2]) * mul * 1000
    if s.endswith("m"):
        return int(s[:-1])
    return int(float(s) * 1000)


def sleep_until(pred, timeout, interval=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def call_retry(api, service, method, req, timeout=ctest.DEADLINE):
    """A unary call retried while the channel reconnects (UNAVAILABLE) after a
    daemon restart; grpcio shares subchannels between channels to one target."""
    end = time.time() + timeout
    while True:
        r, err = api.try_call(service, method, req)
        if err is None:
            return r
        if err.code.name != "UNAVAILABLE" or time.time() > end:
            raise err
        time.sleep(0.1)
