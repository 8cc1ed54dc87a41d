#!/usr/bin/python3
# Registry pulls by coracle-kubelet: Debian's docker-registry on loopback
# with TLS (a CA made here) and htpasswd auth, the seed's images pushed
# with skopeo, a hosts.toml that maps docker.io to it through a proxy
# that cuts every connection after 8 MiB. The seed's demo A (nginx:1.14.2
# and progrium/busybox) runs with its images pulled: resumed ranges, every
# digest right, at most 110% of the image's bytes through the proxy,
# Kubernetes' events. Then wrong credentials, a missing tag, a tampered
# blob and an index without linux/amd64: each its reason in the pod's
# status and events, no password anywhere, nothing half-imported. Two
# images on one base layer: the second fetches only its own layer.
import base64, gzip, hashlib, json, os, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import registry

t = ctest.Tap()
ctest.need_root(t)
why = registry.available()
tars = {n: os.path.join(registry.IMAGES, n + ".tar") for n in ("nginx", "busybox")}
missing = [p for p in tars.values() if not os.path.exists(p)]
if why or missing or not os.path.exists("/usr/sbin/runc"):
    t.skip_all(why or "image tarballs not built (contrib/images/all.sh): " + " ".join(missing))
c = ctest.Cluster(t, "45-image-pull")
pb = c.pb
reg = registry.Registry(os.path.join(c.dir, "registry"))
c.on_teardown(reg.stop)
reg.start()
t0 = time.time()
reg.push_archive(tars["nginx"], "library/nginx:1.14.2")
reg.push_archive(tars["busybox"], "progrium/busybox:latest")
reg.push_archive(tars["busybox"], "armonly/img:base")
t.ok(True, "registry up, seed images pushed with skopeo (%.1f s)" % (time.time() - t0))

# A tampered layer: a blob uploaded (so the registry knows its digest), then changed on disk.
tar = registry.tar_of({"junk": os.urandom(200000)})
layer = gzip.compress(tar)
ld = reg.put_blob("tampered/img", layer)
diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
cfg = reg.put_blob("tampered/img", json.dumps({
    "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/junk"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode())
cfg["mediaType"] = "application/vnd.docker.container.image.v1+json"
reg.put_manifest("tampered/img", "1", {
    "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": cfg, "layers": [dict(ld, mediaType="application/vnd.docker.image.rootfs.diff.tar.gzip")]},
    "application/vnd.docker.distribution.manifest.v2+json")
with open(reg.blob_path(ld["digest"]), "r+b") as f:
    f.seek(1000)
    f.write(b"\0" * 64)
# An index with only linux/arm64.
_, bdigest, bsize = reg.get_manifest("armonly/img", "base")
reg.put_manifest("armonly/img", "1", {
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                   "digest": bdigest, "size": bsize, "platform": {"os": "linux", "architecture": "arm64"}}]},
    "application/vnd.oci.image.index.v1+json")

proxy = registry.CutProxy(reg.port, cut=8 << 20)
c.on_teardown(proxy.stop)
hosts = reg.hosts_dir(os.path.join(c.dir, "certs.d"), endpoint=proxy.addr)

root = os.path.join(c.dir, "kroot")
runc_root = os.path.join(root, "runc")
c.on_teardown(lambda: ctest.node_cleanup(root, runc_root))
api = c.start_apiserver()
for name, pw in (("regcred", None), ("badcred", "wrong-password")):
    api.call("Secrets", "Create", pb.Secret(
        metadata=ctest.meta(name, "default"), type="kubernetes.io/dockerconfigjson",
        data={".dockerconfigjson": reg.dockerconfig("https://index.docker.io/v1/", pw).encode()}))
k = c.start_kubelet("node1", "--healthz-listen", "", "--registry-pulls=true",
                    "--registry-config-dir", hosts, root_dir=root)
node = c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE)
if not t.ok(node is not None, "kubelet up, no image in its store"):
    t.done()
    sys.exit(1)


def get(name):
    return api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def wait_pod(name, pred, timeout=2 * ctest.DEADLINE):
    return c.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(get(name)), timeout=timeout)


def events(name):
    evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
    return [(e.reason, e.message) for e in sorted(evs, key=lambda e: int(e.metadata.resourceVersion))
            if e.involvedObject.name == name]


def pod(name, containers, secret="regcred"):
    api.call("Pods", "Create", pb.Pod(metadata=ctest.meta(name, "default"), spec=pb.PodSpec(
        nodeName="node1", terminationGracePeriodSeconds=1, containers=containers,
        imagePullSecrets=[pb.LocalObjectReference(name=secret)])))


# ---- the seed's demo A, its images pulled through the cutting proxy
t0 = time.time()
pod("web", [pb.Container(name="nginx-1", image="nginx:1.14.2", ports=[pb.ContainerPort(containerPort=80)]),
            pb.Container(name="busybox", image="progrium/busybox", args=["sleep", "1000000"])])
p = wait_pod("web", lambda p: p.status.phase == "Running" and len(p.status.containerStatuses) == 2
             and all(s.ready for s in p.status.containerStatuses), timeout=3 * ctest.DEADLINE)
t.ok(p is not None, "demo A: 2/2 Running with pulled images (%.1f s)" % (time.time() - t0))
ev = events("web")
size = reg.image_size("library/nginx", "1.14.2") + reg.image_size("progrium/busybox", "latest")
t.ok(('Pulling', 'Pulling image "nginx:1.14.2"') in ev and ('Pulling', 'Pulling image "progrium/busybox"') in ev,
     "Pulling image events")
pulled = [m for r, m in ev if r == "Pulled" and m.startswith('Successfully pulled image "nginx:1.14.2" in ')]
t.ok(pulled and pulled[0].endswith(" including waiting). Image size: %d bytes." % reg.image_size("library/nginx", "1.14.2")),
     "Successfully pulled ... Image size: N bytes: %s" % (pulled[:1],))
t.ok(proxy.cuts >= 3, "the proxy cut %d connections" % proxy.cuts)
t.ok(proxy.down <= 1.10 * size, "bytes through the proxy %d <= 110%% of the images' %d (%.3f)"
     % (proxy.down, size, proxy.down / size))
klog = open(k.log_path).read()
t.ok(re.search(r"pulled docker.io/library/nginx:1.14.2 \(sha256:[0-9a-f]{64}\) in [0-9.]+s: 1 layers "
               r"fetched, 0 present, [1-9][0-9]* ranges resumed", klog),
     "the kubelet resumed the nginx layer with Range requests")
store = os.path.join(root, "images")
t.is_(sorted(os.listdir(os.path.join(store, "names"))),
      ["docker.io%2Flibrary%2Fnginx:1.14.2", "docker.io%2Fprogrium%2Fbusybox:latest"], "both named in the store")

# ---- failures: each its reason, nothing half-imported
proxy.cut = 0
cases = {
    "badcreds": ("nginx:other", "badcred", "401 Unauthorized"),
    "notag": ("nginx:nosuchtag", "regcred", 'docker.io/library/nginx:nosuchtag: not found'),
    "tampered": ("tampered/img:1", "regcred", "unexpected commit digest sha256:"),
    "armonly": ("armonly/img:1", "regcred", "no match for platform in manifest: not found"),
}
for name, (image, secret, _) in cases.items():
    pod(name, [pb.Container(name="c", image=image, imagePullPolicy="IfNotPresent")], secret)
for name, (image, secret, want) in cases.items():
    p = wait_pod(name, lambda p: p.status.containerStatuses and p.status.containerStatuses[0].state.waiting.reason
                 in ("ErrImagePull", "ImagePullBackOff") and want in events(name).__repr__(), timeout=ctest.DEADLINE)
    ev = events(name)
    fails = [m for r, m in ev if r == "Failed" and m.startswith('Failed to pull image "%s": ' % image)]
    t.ok(p is not None and fails and want in fails[0], "%s: ErrImagePull with %r: %s" % (name, want, fails[:1]))
    t.ok(("Failed", "Error: ErrImagePull") in ev, "%s: Error: ErrImagePull" % name)
    t.ok(not any(reg.password in m or "wrong-password" in m for r, m in ev), "%s: no password in events" % name)
p = wait_pod("notag", lambda p: p.status.containerStatuses[0].state.waiting.reason == "ImagePullBackOff", timeout=ctest.DEADLINE)
t.ok(p and p.status.containerStatuses[0].state.waiting.message == 'Back-off pulling image "nginx:nosuchtag"',
     "ImagePullBackOff: Back-off pulling image")
klog = open(k.log_path).read()
t.ok(reg.password not in klog and "wrong-password" not in klog and
     base64.b64encode(("%s:%s" % (reg.user, reg.password)).encode()).decode() not in klog, "no credentials in the kubelet's log")
t.is_(len(os.listdir(os.path.join(store, "images"))), 2, "only the two good images in the store")
t.is_(sorted(os.listdir(os.path.join(store, "tmp"))), ["pulls"], "no import left in tmp/")
t.is_([f for f in os.listdir(os.path.join(store, "tmp", "pulls", "sha256")) if f.startswith(ld["digest"][7:])], [],
      "the tampered blob is not kept")

# ---- a pull killed part way (a restart) continues from the bytes on disk
big = reg.put_image("restart/img", "1", {"blob": os.urandom(12 << 20)})
slow = registry.CutProxy(reg.port, rate=6 << 20)
c.on_teardown(slow.stop)
hosts2 = reg.hosts_dir(os.path.join(c.dir, "certs2.d"), endpoint=slow.addr)
store2 = os.path.join(c.dir, "store2")
cfgjson = os.path.join(c.dir, "config.json")
with open(cfgjson, "w") as f:
    f.write(reg.dockerconfig("docker.io"))
argv = [c.bin("coraclectl"), "image", "pull", "restart/img:1", "--image-dir", store2,
        "--registry-config-dir", hosts2, "--credentials", cfgjson]
partial = os.path.join(store2, "tmp", "pulls", "sha256", big["layers"][0]["digest"][7:] + ".partial")
first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
c.wait_for(lambda: os.path.exists(partial) and os.path.getsize(partial) > (4 << 20), timeout=ctest.DEADLINE)
first.kill()
first.wait()
had = os.path.getsize(partial) if os.path.exists(partial) else 0
r = subprocess.run(argv, capture_output=True, text=True, timeout=2 * ctest.DEADLINE)
t.ok(r.returncode == 0 and "pulled docker.io/restart/img:1" in r.stdout, "the pull after the kill completes")
t.ok(had > 0 and "Resuming at %d of" % had in r.stderr,
     "it resumed at the %d bytes the killed pull left: %s" % (had, r.stderr.strip().splitlines()[:2]))
layer = big["layers"][0]["size"] + big["config"]["size"]
t.ok(slow.down <= 1.10 * layer, "both runs fetched %d bytes of the %d-byte image (%.3f)" % (slow.down, layer, slow.down / layer))

# ---- two images on one base layer: the second fetches only its own layer; the base blob
# is kept while an image lists it, and goes with the last one (rm, prune)
base = registry.tar_of({"base": os.urandom(6 << 20)})
ma = reg.put_layered("shared/a", "1", [base, registry.tar_of({"a": b"a\n"})])
mb = reg.put_layered("shared/b", "1", [base, registry.tar_of({"b": os.urandom(300 << 10)})])
counter = registry.CutProxy(reg.port)
c.on_teardown(counter.stop)
hosts4 = reg.hosts_dir(os.path.join(c.dir, "certs4.d"), endpoint=counter.addr)
store3 = os.path.join(c.dir, "store3")


def pull3(ref):
    r = subprocess.run([c.bin("coraclectl"), "image", "pull", ref, "--image-dir", store3,
                        "--registry-config-dir", hosts4, "--credentials", cfgjson],
                       capture_output=True, text=True, timeout=2 * ctest.DEADLINE)
    return r.returncode == 0, r.stdout + r.stderr


okA, outA = pull3("shared/a:1")
before = counter.down
okB, outB = pull3("shared/b:1")
own = mb["layers"][1]["size"] + mb["config"]["size"]
t.ok(okA and okB and "1 layers fetched, 1 present" in outB,
     "the second image on the base layer: 1 layer fetched, 1 present: %s"
     % [l for l in outB.splitlines() if l.startswith("pulled")])
t.ok(counter.down - before <= own + (64 << 10),
     "bytes fetched for the second image %d: its own layer and config (%d) and manifests only, not "
     "the %d-byte base" % (counter.down - before, own, ma["layers"][0]["size"]))
kept = os.path.join(store3, "blobs", "sha256")
bhex = ma["layers"][0]["digest"][7:]
rootfs = [d for d in os.listdir(os.path.join(store3, "images"))
          if os.path.exists(os.path.join(store3, "images", d, "rootfs", "b"))]
t.ok(rootfs and os.path.exists(os.path.join(store3, "images", rootfs[0], "rootfs", "base")),
     "the second image's rootfs has the base layer's file")
r = subprocess.run([c.bin("coraclectl"), "image", "rm", "shared/a:1", "--image-dir", store3],
                   capture_output=True, text=True)
t.ok(r.returncode == 0 and os.path.exists(os.path.join(kept, bhex)),
     "removing the first image keeps the base blob the second lists")
r = subprocess.run([c.bin("coraclectl"), "image", "prune", "--image-dir", store3],
                   capture_output=True, text=True)
t.is_(sorted(os.listdir(kept)) if r.returncode == 0 else r.stderr, [], "prune: no blob left once no image lists it")

# ---- a Bearer token realm (as Docker Hub's) in front of the registry; a zstd layer
reg.put_image("zstd/img", "1", {"hello": b"zstd layer\n" * 1000}, zstd=True)
front = registry.TokenFront(reg)
c.on_teardown(front.stop)
hosts3 = reg.hosts_dir(os.path.join(c.dir, "certs3.d"), endpoint=front.addr)
r = subprocess.run([c.bin("coraclectl"), "image", "pull", "zstd/img:1", "--image-dir", store2,
                    "--registry-config-dir", hosts3, "--credentials", cfgjson],
                   capture_output=True, text=True, timeout=2 * ctest.DEADLINE)
t.ok(r.returncode == 0 and front.tokens_issued >= 1,
     "a Bearer token from the realm, a zstd layer: %s" % (r.stdout.strip() or r.stderr.strip()[-300:]))
imgs = [d for d in os.listdir(os.path.join(store2, "images"))
        if os.path.exists(os.path.join(store2, "images", d, "rootfs", "hello"))]
t.ok(imgs, "the zstd layer is unpacked")
t.done()
