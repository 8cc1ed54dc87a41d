#!/usr/bin/python3
# The seed tutorial's demos on coracle-kubelet with the real images (nginx,
# debian, progrium/busybox from contrib/images): demo A, nginx and busybox
# in one pod, busybox reaches nginx on localhost:80 ("Welcome to nginx!");
# demo B, nginx serves the file a debian container writes into a shared
# emptyDir. Events as the seed's describe shows them (Pulling/Pulled for the
# untagged "nginx", "already present" for nginx:1.14.2). Needs the cached
# image tarballs (contrib/images/all.sh builds them once, with debootstrap);
# skipped without them.
import os, shutil, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest

t = ctest.Tap()
ctest.need_root(t)
cache = os.environ.get("CORACLE_IMAGE_CACHE", "/var/cache/coracle/images")
tars = {n: os.path.join(cache, n + ".tar") for n in ("nginx", "debian", "busybox")}
missing = [p for p in tars.values() if not os.path.exists(p)]
if missing or not os.path.exists("/usr/sbin/runc"):
    t.skip_all("image tarballs not built (run contrib/images/all.sh): " + " ".join(missing))
c = ctest.Cluster(t, "50-kubelet-seed")
pb = c.pb
root = os.path.join(c.dir, "kroot")
runc_root = os.path.join(root, "runc")


c.on_teardown(lambda: ctest.node_cleanup(root, runc_root))
os.makedirs(os.path.join(root, "images", "import"))
for n, p in tars.items():
    os.symlink(p, os.path.join(root, "images", "import", n + ".tar"))
api = c.start_apiserver()
t0 = time.time()
k = c.start_kubelet("node1", "--healthz-listen", "", root_dir=root)
node = c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=5 * ctest.DEADLINE)
t.ok(node is not None, "kubelet up with the seed images imported (%.1f s)" % (time.time() - t0))
c.start_scheduler()  # the seed's flow: no nodeName in the pods, the scheduler binds them


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def wait_pod(name, pred, timeout=2 * ctest.DEADLINE):
    return c.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(get(name)), timeout=timeout)


def all_ready(p):
    return p.status.phase == "Running" and p.status.containerStatuses and all(s.ready for s in p.status.containerStatuses)


def cid(p, name):
    return [s.containerID[7:] for s in p.status.containerStatuses if s.name == name][0]


def events(name):
    evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
    return [(e.reason, e.message) for e in sorted(evs, key=lambda e: int(e.metadata.resourceVersion))
            if e.involvedObject.name == name]


# ---- demo A: manifests/multiple-container-pod.yaml (imagePullPolicy as the apiserver defaults it)
api.call("Pods", "Create", pb.Pod(metadata=ctest.meta("nginx", "default"), spec=pb.PodSpec(terminationGracePeriodSeconds=2, containers=[
    pb.Container(name="nginx-1", image="nginx:1.14.2", ports=[pb.ContainerPort(containerPort=80)]),
    pb.Container(name="busybox", image="progrium/busybox", args=["sleep", "1000000"])])))
p = wait_pod("nginx", all_ready)
t.ok(p is not None and len(p.status.containerStatuses) == 2 and p.spec.nodeName == "node1",
     "demo A: scheduled to node1, 2/2 Running")
if p:
    end = time.time() + ctest.DEADLINE
    while True:
        r = subprocess.run(["runc", "--root", runc_root, "exec", cid(p, "busybox"), "curl", "http://localhost:80"],
                           capture_output=True, text=True, timeout=10)
        body = r.stdout
        if "Welcome to nginx!" in body or time.time() > end:
            break
        time.sleep(0.2)
    t.like(body, "<title>Welcome to nginx!</title>", "demo A: busybox curls nginx on localhost:80")
ev = events("nginx")
t.ok(('Pulled', 'Container image "nginx:1.14.2" already present on machine') in ev, "Pulled: already present")
t.ok(('Scheduled', 'Successfully assigned default/nginx to node1') in ev, "Scheduled by the scheduler")
t.ok(('Started', 'Started container nginx-1') in ev and ('Started', 'Started container busybox') in ev, "Started both")

# ---- demo B: manifests/shared-volume-pod.yaml
api.call("Pods", "Create", pb.Pod(metadata=ctest.meta("mc1", "default"), spec=pb.PodSpec(
    terminationGracePeriodSeconds=2,  # the shell loop ignores TERM as pid 1
    containers=[pb.Container(name="1st", image="nginx", volumeMounts=[pb.VolumeMount(name="html", mountPath="/usr/share/nginx/html")]),
                pb.Container(name="2nd", image="debian", volumeMounts=[pb.VolumeMount(name="html", mountPath="/share-volume")],
                             command=["/bin/sh", "-c"],
                             args=["while true; do mkdir -p /share-volume/; echo \"Container 2 write $(date +%F_%H-%M-%S)\">> "
                                   "/share-volume/index.html; sleep 10000; done"])],
    volumes=[pb.Volume(name="html", volumeSource=pb.VolumeSource(emptyDir=pb.EmptyDirVolumeSource()))])))
p = wait_pod("mc1", all_ready)
t.ok(p is not None, "demo B: 2/2 Running")
if p:
    netns = os.path.join(root, "pods", p.metadata.uid, "ns", "net")
    end = time.time() + ctest.DEADLINE
    while True:
        r = subprocess.run(["nsenter", "--net=" + netns, "curl", "-s", "http://127.0.0.1:80/"],
                           capture_output=True, text=True, timeout=10)
        body = r.stdout
        if body.startswith("Container 2 write ") or time.time() > end:
            break
        time.sleep(0.2)
    t.ok(body.startswith("Container 2 write "), "demo B: nginx serves what debian wrote: %r" % body[:40])
ev = events("mc1")
seq = [r for r, m in ev if r in ("Pulling", "Pulled", "Created", "Started")]
t.is_(seq, ["Pulling", "Pulled", "Created", "Started"] * 2, "demo B events in the seed's order")
t.ok(('Pulling', 'Pulling image "nginx"') in ev and ('Pulling', 'Pulling image "debian"') in ev, "Pulling image \"nginx\"")
t.ok(any(r == "Pulled" and m.startswith('Successfully pulled image "nginx" in ') for r, m in ev), "Successfully pulled image \"nginx\"")
t.ok(("Created", "Created container 1st") in ev and ("Started", "Started container 2nd") in ev, "Created/Started 1st and 2nd")

for n in ("nginx", "mc1"):
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
t.ok(c.wait_for(lambda: get("nginx") is None and get("mc1") is None, timeout=ctest.DEADLINE), "both deleted (grace 2 s)")
klog = open(k.log_path).read()
t.ok("pod default/nginx: container nginx-1 exited with 0" in klog,
     "nginx stopped gracefully by the image's StopSignal (SIGQUIT): exit 0, not 137")
r = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True, text=True)
t.is_(r.stdout.strip(), "", "no containers left")
t.is_([l for l in open("/proc/mounts") if (" " + root + "/") in l], [], "no mounts left")
t.done()
