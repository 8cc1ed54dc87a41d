#!/usr/bin/python3
# coracle-kubelet with a CNI network (Debian's containernetworking-plugins:
# bridge + host-local): pods get an IP from the range, reach each other by
# pod IP, /etc/hosts names the pod IP, and deleting the pods releases the
# IPs and the veths. The bridge is the test's own (removed at the end).
import json, os, random, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet

t = ctest.Tap()
ctest.need_root(t)
for f in ("/usr/sbin/runc", "/bin/busybox", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local"):
    if not os.path.exists(f):
        t.skip_all("needs " + f)
c = ctest.Cluster(t, "50-kubelet-cni")
pb = c.pb
root = os.path.join(c.dir, "kroot")
runc_root = os.path.join(root, "runc")
bridge = "crt%d" % random.randrange(10000, 99999)
net = random.randrange(1, 250)


def cleanup():
    ctest.node_cleanup(root, runc_root)
    subprocess.run(["ip", "link", "del", bridge], stderr=subprocess.DEVNULL)


c.on_teardown(cleanup)
klet.import_busybox(t, root)
confdir = os.path.join(c.dir, "cni")
ipam = os.path.join(c.dir, "ipam")
os.makedirs(confdir)
json.dump({"cniVersion": "1.0.0", "name": "coracle-test", "plugins": [
    {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.251.%d.0/24" % net}]], "dataDir": ipam}}]},
    open(os.path.join(confdir, "10-test.conflist"), "w"))
api = c.start_apiserver()
k = c.start_kubelet("node1", "--healthz-listen", "", "--cni-conf-dir", confdir, root_dir=root)


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def wait_pod(name, pred, timeout=ctest.DEADLINE):
    return c.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(get(name)), timeout=timeout)


for n in ("a", "b"):
    api.call("Pods", "Create", pb.Pod(metadata=ctest.meta(n, "default"), spec=pb.PodSpec(
        nodeName="node1", terminationGracePeriodSeconds=1, containers=[
            pb.Container(name="web", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                         command=["sh", "-c", "mkdir /www; echo I am %s > /www/index.html; exec httpd -f -p 8080 -h /www" % n])])))
pa = wait_pod("a", lambda p: p.status.phase == "Running")
pbb = wait_pod("b", lambda p: p.status.phase == "Running")
t.ok(pa and pbb, "both pods Running")
ipa, ipb = (pa.status.podIP if pa else ""), (pbb.status.podIP if pbb else "")
t.ok(ipa.startswith("10.251.%d." % net) and ipb.startswith("10.251.%d." % net) and ipa != ipb,
     "pod IPs from the range: %s %s" % (ipa, ipb))
t.ok(pa and [x.ip for x in pa.status.podIPs] == [ipa], "podIPs")
cid = pa.status.containerStatuses[0].containerID[7:] if pa else ""
r = subprocess.run(["runc", "--root", runc_root, "exec", cid, "sh", "-c", "wget -qO- http://%s:8080/; cat /etc/hosts" % ipb],
                   capture_output=True, text=True, timeout=10)
t.ok(r.stdout.startswith("I am b\n"), "pod a reaches pod b by its IP: %r" % r.stdout[:20])
t.ok("%s\ta\n" % ipa in r.stdout, "/etc/hosts maps the pod IP to its name")
used = [f for f in os.listdir(os.path.join(ipam, "coracle-test")) if f.startswith("10.")]
t.is_(sorted(used), sorted([ipa, ipb]), "host-local holds both IPs")

# restart the kubelet: the pod IP survives (read back from the saved CNI result)
k.stop()
k = c.start_kubelet("node1", "--healthz-listen", "", "--cni-conf-dir", confdir, root_dir=root)
time.sleep(1)
t.is_(get("a").status.podIP, ipa, "pod IP unchanged after a kubelet restart")

# a reboot: kubelet, monitors and containers killed, mounts (the pods' namespaces) gone; the
# kubelet sets the network up again and host-local holds no address twice
k.kill()
klet.reboot(root, runc_root)
k = c.start_kubelet("node1", "--healthz-listen", "", "--cni-conf-dir", confdir, root_dir=root)
pa = wait_pod("a", lambda p: p.status.phase == "Running" and p.status.containerStatuses[0].restartCount == 1
              and p.status.containerStatuses[0].state.running.startedAt.seconds > 0)
pbb = wait_pod("b", lambda p: p.status.phase == "Running" and p.status.containerStatuses[0].restartCount == 1
               and p.status.containerStatuses[0].state.running.startedAt.seconds > 0)
t.ok(pa and pbb, "after a reboot both pods Running again (restartCount 1)")
ipa, ipb = (pa.status.podIP if pa else ""), (pbb.status.podIP if pbb else "")
used = [f for f in os.listdir(os.path.join(ipam, "coracle-test")) if f.startswith("10.")]
t.is_(sorted(used), sorted([ipa, ipb]), "host-local holds their two IPs, none leaked")
cid = pa.status.containerStatuses[0].containerID[7:] if pa else ""
r = c.wait_for(lambda: (lambda r: r if r.stdout.startswith("I am b\n") else None)(subprocess.run(
    ["runc", "--root", runc_root, "exec", cid, "wget", "-qO-", "http://%s:8080/" % ipb],
    capture_output=True, text=True, timeout=10)), timeout=ctest.DEADLINE)
t.ok(r, "pod a reaches pod b again")

for n in ("a", "b"):
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
t.ok(c.wait_for(lambda: get("a") is None and get("b") is None, timeout=ctest.DEADLINE), "pods deleted")
used = [f for f in os.listdir(os.path.join(ipam, "coracle-test")) if f.startswith("10.")]
t.is_(used, [], "IPs released (CNI DEL)")
links = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True).stdout
t.is_(links.strip(), "", "no veth left on the bridge")
t.is_([l for l in open("/proc/mounts") if (" " + root + "/") in l], [], "no mounts left")
t.done()
