"""seed: what the seed tutorial's end-to-end tests (t/6x-seed-*.t) share.

A one-node cluster (apiserver, scheduler, kubelet "node1") in a temporary
directory, the seed's images imported into the kubelet's store through
`coraclectl image import` as a user would, and coraclectl driven exactly as
the tutorial types it. Images come from contrib/images (cached tarballs;
contrib/test-all builds them before the suite runs).
"""
import os
import re
import subprocess
import time

import ctest

SEED = os.path.join(ctest.SRC, "contrib", "examples")
SHARED_SEED = os.path.join(os.path.dirname(ctest.SRC), "shared", "seed", "manifests")
CACHE = os.environ.get("CORACLE_IMAGE_CACHE", "/var/cache/coracle/images")


def manifest(name):
    return os.path.join(SEED, name)


class Seed:
    def __init__(self, t, name, images):
        self.t = t
        ctest.need_root(t)
        if not os.path.exists("/usr/sbin/runc"):
            t.skip_all("runc not installed")
        tars = {}
        for img in images:
            script = os.path.join(ctest.SRC, "contrib", "images", img + ".sh")
            p = subprocess.run(["bash", script], capture_output=True, text=True)
            path = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
            if p.returncode != 0 or not os.path.exists(path):
                t.bail("contrib/images/%s.sh failed:\n%s" % (img, p.stderr[-2000:]))
            tars[img] = path
        self.c = c = ctest.Cluster(t, name)
        self.root = os.path.join(c.dir, "node1")
        self.runc_root = os.path.join(self.root, "runc")
        c.on_teardown(self.cleanup)
        self.api = c.start_apiserver()
        for img, path in tars.items():
            rc, out, err = c.ctl("image", "import", path, "--image-dir", os.path.join(self.root, "images"),
                                 timeout=300)
            t.ok(rc == 0 and "imported" in out + err, "coraclectl image import %s" % os.path.basename(path))
            if rc:
                t.diag(err)
        c.start_scheduler()
        c.start_kubelet("node1", root_dir=self.root)
        node = c.wait_for(lambda: "Ready" in c.ctl("get", "no", "node1")[1], timeout=ctest.DEADLINE)
        t.ok(node, "node1 registered and Ready")

    def cleanup(self):
        """Whatever a failed test left: containers, mounts, namespaces."""
        ctest.node_cleanup(self.root, self.runc_root)

    def watch(self):
        """Starts `coraclectl get po -w`; returns a Watch collecting its lines."""
        return Watch(self.c)

    def leftovers(self):
        """Containers and mounts of the node still there."""
        p = subprocess.run(["runc", "--root", self.runc_root, "list", "-q"], capture_output=True, text=True)
        ids = p.stdout.split()
        with open("/proc/mounts") as f:
            mounts = [l.split()[1] for l in f if (" " + self.root + "/") in l]
        return ids, mounts


class Watch:
    def __init__(self, c):
        self.lines = []
        self.p = subprocess.Popen([c.bin("coraclectl"), "--server", c.api_addr, "get", "po", "-w"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        c.on_teardown(self.stop)
        import threading
        self.th = threading.Thread(target=self._read, daemon=True)
        self.th.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait()

    def rows(self, name):
        """(READY, STATUS) of each row printed for pod name, in order."""
        out = []
        for l in self.lines:
            f = l.split()
            if len(f) >= 3 and f[0] == name:
                out.append((f[1], f[2]))
        return out

    def wait(self, name, ready, status, timeout=2 * ctest.DEADLINE):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if (ready, status) in self.rows(name):
                return True
            time.sleep(0.05)
        return False


def row_of(table, name):
    for l in table.splitlines():
        f = l.split()
        if f and f[0] == name:
            return f
    return None


def event_reasons(describe_out):
    """The Events table of `describe` as (reason, from, message) tuples."""
    evs = []
    seen = False
    for l in describe_out.splitlines():
        if l.startswith("Events:"):
            seen = True
            continue
        if not seen or not l.strip() or l.strip().startswith("Type") or l.strip().startswith("----"):
            continue
        f = re.split(r"\s{2,}", l.strip())
        if len(f) >= 5:
            evs.append((f[1], f[3], f[4]))
    return evs
