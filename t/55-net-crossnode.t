#!/usr/bin/python3
# Pods on different nodes reach each other by IP: three kubelets, each in a
# network namespace of its own (t/lib/netlab.py), route the other nodes' pod
# ranges from their Nodes' spec.podCIDR and InternalIP. Twice: VXLAN mode
# with the nodes on two subnets joined by a router namespace, and host-gw
# mode on one subnet (where a peer off the subnet is refused). Deleting a
# Node removes its routes on the others; a kubelet's shutdown removes all
# it made; the lab leaves no namespace, interface or route behind.
import os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import netlab

t = ctest.Tap()
ctest.need_root(t)
for f in ("/usr/sbin/runc", "/bin/busybox", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/bin/nsenter"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)
RTPROT = "157"


def web_pod(api, pb, name, node):
    api.call("Pods", "Create", pb.Pod(metadata=ctest.meta(name, "default"), spec=pb.PodSpec(
        nodeName=node, terminationGracePeriodSeconds=1, containers=[
            pb.Container(name="web", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                         command=["sh", "-c", "mkdir /www; echo I am %s > /www/index.html; "
                                  "exec httpd -f -p 8080 -h /www" % name])])))


def routes(lab, n):
    """node n's routes made by the kubelet: {destination: line}"""
    out = netlab.ip("-n", lab.ns(n), "-4", "route", "show", "proto", RTPROT, check=False)
    return {l.split()[0]: l for l in out.splitlines() if l.strip()}


def scenario(mode, subnets):
    c = ctest.Cluster(t, "55-net-crossnode-" + mode)
    pb = c.pb
    lab = netlab.Lab(t, c, nodes=3, subnets=subnets, mtu=1450 if mode == "vxlan" else None)
    api = c.start_apiserver("--listen", "unix:" + lab.api_socket())
    lab.start_kubelets("--pod-network", mode)
    lab.set_pod_cidrs(api)
    a, b, cc = lab.nodes
    want = {n: sorted(lab.pod_cidr[m] for m in lab.nodes if m != n) for n in lab.nodes}
    got = c.wait_for(lambda: all(sorted(routes(lab, n)) == want[n] for n in lab.nodes), timeout=ctest.DEADLINE)
    t.ok(got, "%s: every node routes the other two ranges: %s" % (mode, {n: sorted(routes(lab, n)) for n in lab.nodes}))
    r = routes(lab, a).get(lab.pod_cidr[cc], "")
    if mode == "vxlan":
        t.like(r, "dev coracle.1", "vxlan: the route to C's range goes through coracle.1: %s" % r)
        link = netlab.ip("-n", lab.ns(a), "-d", "link", "show", "coracle.1", check=False)
        t.like(link, "mtu 1450", "vxlan: device MTU 50 below the link's")
        t.like(link, "vxlan id 1 ", "vxlan: VNI 1")
        t.like(link, "dstport 8472", "vxlan: port 8472")
        fdb = netlab.ip("-n", lab.ns(a), "neigh", "show", "dev", "coracle.1", check=False)
        t.ok(fdb.count("PERMANENT") == 2, "vxlan: a permanent neighbour per peer")
    else:
        t.like(r, "via %s dev eth0" % lab.addr[cc], "host-gw: C's range via its InternalIP: %s" % r)

    for n, node in (("pa", a), ("pc", cc)):
        web_pod(api, pb, n, node)

    def running(name):
        p = api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]
        return p if p is not None and p.status.phase == "Running" and p.status.podIP else None
    pa = c.wait_for(lambda: running("pa"), timeout=ctest.DEADLINE)
    pc = c.wait_for(lambda: running("pc"), timeout=ctest.DEADLINE)
    t.ok(pa and pc, "%s: pods on A and C Running" % mode)
    ipc = pc.status.podIP if pc else "0.0.0.0"
    t.ok(ipc.startswith(lab.pod_cidr[cc].rsplit(".", 1)[0] + "."), "%s: C's pod IP %s is in C's range" % (mode, ipc))
    cid = pa.status.containerStatuses[0].containerID[7:] if pa else ""
    out = err = ""
    for _ in range(20):  # the first packets may wait for ARP/forwarding to settle
        try:  # (this busybox's wget has no -T)
            r = subprocess.run(["runc", "--root", os.path.join(lab.roots[a], "runc"), "exec", cid, "wget",
                                "-qO-", "http://%s:8080/" % ipc], capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            continue
        out, err = r.stdout, r.stderr
        if out:
            break
        time.sleep(0.2)
    t.is_(out, "I am pc\n", "%s: a pod on A reaches a pod on C by IP" % mode) or t.diag(err)

    # cut C: its kubelet goes (removing what it made), its Node is deleted
    lab.kubelets[cc].stop()
    t.is_(routes(lab, cc), {}, "%s: C's kubelet removed its routes at shutdown" % mode)
    if mode == "vxlan":
        t.is_(netlab.ip("-n", lab.ns(cc), "link", "show", "coracle.1", check=False), "",
              "vxlan: C's kubelet removed its device at shutdown")
    api.call("Nodes", "Delete", pb.DeleteRequest(name=cc))
    gone = c.wait_for(lambda: all(lab.pod_cidr[cc] not in routes(lab, n) for n in (a, b)), timeout=ctest.DEADLINE)
    t.ok(gone, "%s: C's range no longer routed on A and B once its Node is deleted" % mode)
    t.ok(lab.pod_cidr[b] in routes(lab, a), "%s: B's range still routed on A" % mode)
    if mode == "vxlan":
        t.ok(netlab.ip("-n", lab.ns(a), "neigh", "show", "dev", "coracle.1", check=False).count("PERMANENT") == 1,
             "vxlan: C's neighbour entry removed on A")

    # restart A's kubelet (killed, in vxlan mode: what it made stays): it reconciles (idempotent)
    if mode == "vxlan":
        netlab.ip("-n", lab.ns(a), "route", "add", "10.244.77.0/24", "dev", "coracle.1", "proto", RTPROT)
        lab.kubelets[a].kill()
    else:
        lab.kubelets[a].stop()
    lab.start_kubelet(a, "--pod-network", mode)
    t.ok(c.wait_for(lambda: sorted(routes(lab, a)) == [lab.pod_cidr[b]], timeout=ctest.DEADLINE),
         "%s: a restarted kubelet routes B again, not C (nor a stale route)" % mode)
    if mode == "host-gw":
        # a peer off the subnet is refused, with a message naming it
        api.call("Nodes", "Create", pb.Node(metadata=ctest.meta("far"),
                                             spec=pb.NodeSpec(podCIDR="10.244.99.0/24"),
                                             status=pb.NodeStatus(addresses=[pb.NodeAddress(type="InternalIP", address="192.0.2.7")])))
        t.ok(c.wait_for(lambda: "not on a directly connected subnet" in open(lab.kubelets[a].log_path).read(),
                        timeout=ctest.DEADLINE), "host-gw: a node off the subnet is refused with a clear message")
        t.ok("10.244.99.0/24" not in routes(lab, a), "host-gw: and not routed")
        evs = c.wait_for(lambda: [e for e in api.call("Events", "List", pb.ListRequest(namespace="default")).items
                                  if e.reason == "PodNetworkPeerUnreachable" and e.involvedObject.kind == "Node"
                                  and e.involvedObject.name == a and "node far" in e.message], timeout=ctest.DEADLINE)
        t.ok(evs, "host-gw: and a Warning event on node A says so: %s" % (evs[0].message if evs else None))

    for n in ("pa", "pc"):
        api.try_call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
    for n in (a, b):
        lab.kubelets[n].stop()
    t.ok(all(routes(lab, n) == {} for n in lab.nodes), "%s: no route of ours left after the kubelets stop" % mode)
    if mode == "vxlan":
        # --cleanup removes what an earlier run left (a kubelet killed with SIGKILL), nothing else
        cl = lab.ns("c")
        netlab.ip("-n", cl, "route", "add", "10.77.0.0/24", "via", "172.30.0.1", "proto", RTPROT)
        netlab.ip("-n", cl, "route", "add", "10.78.0.0/24", "via", "172.30.0.1")
        netlab.ip("-n", cl, "link", "add", "coracle.1", "type", "vxlan", "id", "1", "dstport", "8472")
        r = subprocess.run(["nsenter", "--net=/var/run/netns/" + cl, c.bin("coracle-kubelet"), "--cleanup"],
                           capture_output=True, text=True)
        left = netlab.ip("-n", cl, "route", check=False)
        t.ok(r.returncode == 0 and "10.77.0.0" not in left and "10.78.0.0/24" in left
             and netlab.ip("-n", cl, "link", "show", "coracle.1", check=False) == "",
             "--cleanup removes the routes of protocol %s and the device, and only those" % RTPROT)
    c.teardown()
    t.is_(lab.leftovers(), [], "%s: every namespace of the lab is gone" % mode)


scenario("vxlan", 2)
scenario("host-gw", 1)
t.done()
