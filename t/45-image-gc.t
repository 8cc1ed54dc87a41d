#!/usr/bin/python3
# Image garbage collection and the image pull back-off, end to end with the
# apiserver, a kubelet and runc. The node's image store is a small tmpfs the
# test mounts (removed at teardown, also on failure) holding the seed's
# busybox image and five images the test builds (docker-archive tarballs of
# a few MiB each), with their last-used times recorded in the store:
#   - thresholds chosen from the tmpfs' real usage so that exactly the three
#     least recently used images must go: they go, never-used first, oldest
#     use next, in that order; the image a running pod uses never goes;
#   - after a restart with thresholds nothing can satisfy, the Node gets
#     FreeDiskSpaceFailed with Kubernetes' words and the bytes that were
#     eligible, then ImageGCFailed when it fails again;
#   - two pods naming one missing image share its back-off (base 1 s, cap
#     4 s): Failed, Error: ErrImagePull, BackOff "Back-off pulling image",
#     Error: ImagePullBackOff in that order, waiting reason ImagePullBackOff,
#     and no more pulls than one back-off schedule allows in the time seen.
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest  # noqa: E402

import klet  # noqa: E402

t = ctest.Tap()
ctest.need_root(t)
if not os.path.exists("/usr/sbin/runc") or not os.path.exists("/bin/busybox"):
    t.skip_all("needs runc and busybox-static")
c = ctest.Cluster(t, "45-image-gc")
pb = c.pb
root = os.path.join(c.dir, "kroot")
store = os.path.join(root, "images")
os.makedirs(store)
c.on_teardown(lambda: ctest.node_cleanup(root))  # unmounts the tmpfs too
r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "coracle-45-gc", store],
                   capture_output=True, text=True)
if r.returncode != 0:
    t.skip_all("cannot mount a tmpfs: " + r.stderr.strip())
MiB = 1 << 20


def make_image(tag, size, created):
    """A docker-archive with one layer holding size bytes; returns (path, image hex)."""
    return klet.make_image(c.dir, tag, size, created)


def ctl(*args):
    return c.ctl(*args, server=False)


def present(hexid):
    return os.path.isdir(os.path.join(store, "images", hexid))


def size_of(hexid):
    with open(os.path.join(store, "images", hexid, "meta.json")) as f:
        return json.load(f)["size"]


# ---- the store: busybox (which a pod runs) and e (never used), a, b, c, d (used in that order)
busybox_tar = None
for _ in range(3):
    r = subprocess.run([os.path.join(ctest.SRC, "contrib/images/busybox.sh")], capture_output=True, text=True)
    if r.returncode == 0 and os.path.exists(r.stdout.strip()):
        busybox_tar = r.stdout.strip()
        break
if not busybox_tar:
    t.bail("contrib/images/busybox.sh failed: " + r.stderr.strip()[-300:])
imgs = {}
for i, (name, mib) in enumerate((("e", 3), ("a", 5), ("b", 5), ("c", 5), ("d", 5))):
    imgs[name] = make_image("gc/%s:1" % name, mib * MiB, "2026-01-0%dT00:00:00Z" % (i + 1))
rc, out, err = ctl("image", "import", busybox_tar, *[p for p, _ in imgs.values()], "--image-dir", store)
t.is_(rc, 0, "busybox and five images imported into the tmpfs store" + ("" if rc == 0 else ": " + err))
hexes = {n: h for n, (_, h) in imgs.items()}
now = time.time_ns()
for age, name in ((400, "a"), (300, "b"), (200, "c"), (100, "d")):
    with open(os.path.join(store, "images", hexes[name], "last-used"), "w") as f:
        f.write("%d\n" % (now - age * 10**9))
sizes = {n: size_of(h) for n, h in hexes.items()}

# Thresholds from the filesystem as it is: over high, and wanting more than e + a
# but no more than e + a + b (half of b's size of margin either way).
st = os.statvfs(store)
cap, avail = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
usage = 100 - avail * 100 // cap
target = sizes["e"] + sizes["a"] + sizes["b"] // 2
low = 100 - round((target + avail) * 100 / cap)
high = usage - 3
to_free = cap * (100 - low) // 100 - avail
t.ok(0 < low < high <= usage and sizes["e"] + sizes["a"] < to_free <= sizes["e"] + sizes["a"] + sizes["b"],
     "usage %d%%: high %d%%, low %d%% want %d bytes freed" % (usage, high, low, to_free))

api = c.start_apiserver()


def create(name, image, cmd=None):
    ctr = pb.Container(name="c", image=image, imagePullPolicy="IfNotPresent")
    if cmd:
        ctr.command.extend(["sh", "-c", cmd])
    api.call("Pods", "Create", pb.Pod(metadata=ctest.meta(name, "default"),
                                      spec=pb.PodSpec(nodeName="node1", terminationGracePeriodSeconds=1,
                                                      containers=[ctr])))


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def events(kind, name):
    evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
    return sorted([e for e in evs if e.involvedObject.kind == kind and e.involvedObject.name == name],
                  key=lambda e: e.metadata.name)


create("runner", "progrium/busybox", "exec sleep 1000")
k = c.start_kubelet("node1", "--healthz-listen", "", "--image-gc-high-threshold", str(high),
                    "--image-gc-low-threshold", str(low), "--image-minimum-gc-age", "0s", root_dir=root)
gone = c.wait_for(lambda: not any(present(hexes[n]) for n in "eab"), timeout=ctest.DEADLINE)
t.ok(gone, "over the high threshold: e (never used), a, b (least recently used) removed")
t.ok(present(hexes["c"]) and present(hexes["d"]), "c and d (used more recently) kept")


def removed():
    """The images the kubelet's log says it removed, in order (the line
    follows the removal, so a reader may be ahead of it)."""
    log = open(os.path.join(c.dir, "kubelet-node1.log"), errors="replace").read()
    return re.findall(r"image garbage collection: removed gc/(\w):1 ", log)


order = c.wait_for(lambda: (lambda o: o if len(o) >= 3 else None)(removed()), timeout=ctest.DEADLINE) or removed()
t.is_(order, ["e", "a", "b"], "removed in least-recently-used order")
p = c.wait_for(lambda: (lambda p: p if p and p.status.phase == "Running" else None)(get("runner")),
               timeout=ctest.DEADLINE)
t.ok(p is not None, "the pod using busybox runs")
rc, out, _ = ctl("image", "ls", "--image-dir", store)
t.like(out, "docker.io/progrium/busybox", "busybox (in use) kept")
bb = [d for d in os.listdir(os.path.join(store, "images")) if d not in hexes.values()]
lu = os.path.join(store, "images", bb[0] if bb else "x", "last-used")
t.ok(os.path.exists(lu) and int(open(lu).read()) >= now, "the container's start recorded busybox's last use")

# ---- nothing can satisfy high 1%, low 0%: c and d go, then FreeDiskSpaceFailed; again: ImageGCFailed
k.stop()
eligible = sizes["c"] + sizes["d"]
health = "127.0.0.1:%d" % ctest.free_port()
k = c.start_kubelet("node1", "--healthz-listen", health, "--image-gc-high-threshold", "1",
                    "--image-gc-low-threshold", "0", "--image-minimum-gc-age", "0s", "--image-gc-period", "1s",
                    "--crashloop-backoff-base", "1", "--crashloop-backoff-max", "4", root_dir=root)
create("nopull", "gc/missing:1")
create("nopull2", "gc/missing:1")
pat = re.compile(r"^Failed to garbage collect required amount of images\. Attempted to free (\d+) bytes, "
                 r"but only found (\d+) bytes eligible to free\.$")


def node_events():
    return [(e.type, e.reason, e.message) for e in events("Node", "node1")]


ev = c.wait_for(lambda: (lambda v: v if any(r == "ImageGCFailed" for _, r, _ in v) else None)(node_events()),
                timeout=ctest.DEADLINE)
ev = ev or node_events()
fails = [pat.match(m) for ty, r, m in ev if r == "FreeDiskSpaceFailed" and ty == "Warning"]
t.ok(fails and all(fails), "FreeDiskSpaceFailed warnings in Kubernetes' words: %s" % [m for _, r, m in ev][:3])
t.ok(fails and fails[0] and int(fails[0].group(2)) == eligible and int(fails[0].group(1)) > eligible,
     "first run: only c and d (%d bytes) were eligible" % eligible)
t.ok(any(f and int(f.group(2)) == 0 for f in fails), "next run: nothing eligible")
t.ok(any(ty == "Warning" and r == "ImageGCFailed" and pat.match(m) for ty, r, m in ev),
     "failing again: ImageGCFailed")
t.ok(not present(hexes["c"]) and not present(hexes["d"]), "c and d removed")
status, body = ctest.http_get(health, "/metrics")
t.like(body or "", 'coracle_kubelet_image_garbage_collected_total{reason="space"} 2',
       "/metrics: two images removed for space")
rc, out, _ = ctl("image", "ls", "--image-dir", store)
t.like(out, "docker.io/progrium/busybox", "busybox, in use, never removed")
t.is_(get("runner").status.phase, "Running", "its pod still runs")

# ---- the pull back-off of a missing image, shared by the two pods naming it
msg = 'Back-off pulling image "gc/missing:1"'


def waiting(name):
    p = get(name)
    cs = p.status.containerStatuses if p else []
    return cs[0].state.waiting if cs and cs[0].state.HasField("waiting") else None


w = c.wait_for(lambda: (lambda w: w if w and w.reason == "ImagePullBackOff" else None)(waiting("nopull")),
               timeout=ctest.DEADLINE)
t.ok(w is not None and w.message == msg, "waiting: ImagePullBackOff, %s" % (w.message if w else None))
t0 = None


def pulls():
    """Failed pulls of the image, both pods together, and when the first was."""
    n, first = 0, None
    for pod in ("nopull", "nopull2"):
        for e in events("Pod", pod):
            if e.reason == "Failed" and e.message.startswith('Failed to pull image "gc/missing:1": '):
                n += max(e.count, 1)
                ts = e.firstTimestamp.seconds + e.firstTimestamp.nanos / 1e9
                first = ts if first is None else min(first, ts)
    return n, first


time.sleep(8)
n, first = pulls()
elapsed = time.time() - (first or time.time())
# failures at 0, then no sooner than 1, 3, 7, 11, ... seconds (windows 1, 2, 4, 4, ...)
allowed = 1 + sum(1 for s in (1, 3, 7, 11, 15, 19, 23, 27, 31, 35) if s <= elapsed)
t.ok(2 <= n <= allowed, "%d failed pulls in %.1fs across both pods: one shared back-off allows %d" % (n, elapsed, allowed))
seq = []
for e in events("Pod", "nopull"):
    key = (e.reason, e.message if not e.message.startswith("Failed to pull") else "Failed to pull")
    if key not in seq:
        seq.append(key)
want = [("Failed", "Failed to pull"), ("Failed", "Error: ErrImagePull"), ("BackOff", msg),
        ("Failed", "Error: ImagePullBackOff")]
t.ok([s for s in seq if s in want] == want or [s for s in seq if s in want] == want[2:] + want[:2],
     "events in order: Failed to pull, Error: ErrImagePull, BackOff, Error: ImagePullBackOff (%s)" % seq)
bo = [e for e in events("Pod", "nopull") if e.reason == "BackOff"]
t.ok(bo and bo[0].type == "Normal", "BackOff is a Normal event")

# ---- coraclectl image prune: busybox stays (its container is on the node)
rc, out, err = ctl("image", "prune", "--image-dir", store)
t.ok(rc == 0 and "busybox" not in out, "image prune keeps the image in use (%s)" % (out.strip() or err.strip()))
for name in ("runner", "nopull", "nopull2"):
    api.try_call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=name))
t.ok(c.wait_for(lambda: not os.listdir(os.path.join(root, "containers")), timeout=ctest.DEADLINE),
     "pods deleted: their containers are gone")
k.stop()
rc, out, err = ctl("image", "rm", "--prune", "--image-dir", store)
t.ok(rc == 0 and "Deleted: docker.io/progrium/busybox:latest" in out, "then rm --prune removes it: %s" % out.strip())
t.done()
