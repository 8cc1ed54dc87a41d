#!/usr/bin/python3
# The Node's status.images and status.daemonEndpoints, as Kubernetes'
# kubelet fills them: the node's store holds the seed's busybox and 52
# small images the test builds (sizes 1 to 52 KiB); the Node lists the 50
# largest, largest first, each with its names and sizeBytes; the kubelet's
# endpoint port is that of its own HTTP server (--healthz-listen). An
# image imported later shows up at the next status update. Read back
# over REST JSON and with stock kubectl (get node -o yaml) when there.
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest  # noqa: E402
import klet  # noqa: E402
import kubectls  # noqa: E402

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "45-image-status")
store = os.path.join(root, "images")
KiB = 1024
N = 52


def make_image(tag, size):
    return klet.make_image(c.dir, tag, size)[0]


tars = [make_image("st/i%02d:1" % i, i * KiB) for i in range(1, N + 1)]
rc, out, err = c.ctl("image", "import", *tars, "--image-dir", store, server=False)
t.is_(rc, 0, "%d images imported (%s)" % (N, err.strip()[-200:]))
api = c.start_apiserver()
port = ctest.free_port()
c.start_kubelet("node1", "--healthz-listen", "127.0.0.1:%d" % port, "--node-status-update-period", "1",
                root_dir=root)


def node():
    st, body = ctest.http_get(c.api_addr, "/api/v1/nodes/node1")
    return json.loads(body) if st == 200 else None


n = c.wait_for(lambda: (lambda n: n if n and len(n["status"].get("images", [])) == 50 else None)(node()),
               timeout=ctest.DEADLINE)
imgs = (n or node() or {"status": {}})["status"].get("images", [])
sizes = [i.get("sizeBytes", 0) for i in imgs]
t.ok(len(imgs) == 50 and sizes == sorted(sizes, reverse=True) and all(sizes),
     "50 images of %d, largest first, each with sizeBytes (%s...)" % (N + 1, sizes[:4]))
t.ok(imgs and "docker.io/progrium/busybox:latest" in imgs[0]["names"], "busybox first (%s)" % (imgs[:1],))
t.is_([i["names"] for i in imgs[1:]], [["docker.io/st/i%02d:1" % i] for i in range(N, 3, -1)],
      "then i52 down to i04; i01 to i03, the smallest, left out")
ep = (n or {}).get("status", {}).get("daemonEndpoints")
t.is_(ep, {"kubeletEndpoint": {"Port": port}}, "daemonEndpoints: the kubelet's port")

# a bigger image imported now: first at the next status update
big = make_image("st/big:1", 4 << 20)
rc, _, err = c.ctl("image", "import", big, "--image-dir", store, server=False)
n = c.wait_for(lambda: (lambda n: n if n and n["status"]["images"][0]["names"] == ["docker.io/st/big:1"] else None)(node()),
               timeout=ctest.DEADLINE)
t.ok(rc == 0 and n and len(n["status"]["images"]) == 50 and n["status"]["images"][-1]["names"] == ["docker.io/st/i05:1"],
     "an image imported later: listed first, i04 drops out")

kubectl = kubectls.kubectl_132()
if not kubectl:
    t.skip("kubectl 1.32 not installed")
    t.done()
home = os.path.join(c.dir, "khome")
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home)
p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache"),
                    "get", "node", "node1", "-o", "yaml"], env=kenv, capture_output=True, text=True, timeout=120)
t.ok(p.returncode == 0 and "  - docker.io/st/big:1\n    sizeBytes: 4194304\n" in p.stdout
     and "    kubeletEndpoint:\n      Port: %d\n" % port in p.stdout,
     "kubectl get node -o yaml shows them (%s)" % p.stderr.strip()[-200:])
t.done()
