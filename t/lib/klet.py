"""klet: the start the kubelet's end-to-end tests share.

A cluster in a temporary directory whose node root (kroot) has the busybox
image from contrib/images in its drop-in folder, and whose containers and
mounts are removed at teardown, also when the test fails.
"""
import glob
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time

import ctest


def busybox_node(t, name):
    """Returns (cluster, root, runc_root); skips the test without root, runc or busybox-static."""
    ctest.need_root(t)
    if not os.path.exists("/usr/sbin/runc") or not os.path.exists("/bin/busybox"):
        t.skip_all("needs runc and busybox-static")
    c = ctest.Cluster(t, name)
    root = os.path.join(c.dir, "kroot")
    runc_root = os.path.join(root, "runc")
    c.on_teardown(lambda: ctest.node_cleanup(root, runc_root))
    import_busybox(t, root)
    return c, root, runc_root


def import_busybox(t, *roots):
    """Puts the busybox image in each node root's drop-in folder (ROOT/images/import),
    which the kubelet imports at start. The tarball comes from contrib/images (cached
    under /var/cache/coracle/images); retried: the script has been seen to fail now
    and then (SIGPIPE, 141). Bails out if it cannot be had."""
    for _ in range(3):
        r = subprocess.run([os.path.join(ctest.SRC, "contrib/images/busybox.sh")], capture_output=True, text=True)
        if r.returncode == 0 and os.path.exists(r.stdout.strip()):
            break
        time.sleep(0.5)
    else:
        t.bail("contrib/images/busybox.sh failed (%d): %s" % (r.returncode, r.stderr.strip()[-300:]))
    for root in roots:
        os.makedirs(os.path.join(root, "images", "import"), exist_ok=True)
        shutil.copy(r.stdout.strip(), os.path.join(root, "images", "import", "busybox.tar"))


def make_image(dirname, tag, size, created=None):
    """A docker-archive in dirname with one layer holding size random bytes in
    /filler; returns (its path, the image's hex id)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as lt:
        ti = tarfile.TarInfo("filler")
        ti.size = size
        lt.addfile(ti, io.BytesIO(os.urandom(size)))
    lb = layer.getvalue()
    diff = hashlib.sha256(lb).hexdigest()
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/filler"]},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]}}
    if created:
        cfg["created"] = created
    cfg = json.dumps(cfg).encode()
    hexid = hashlib.sha256(cfg).hexdigest()
    man = json.dumps([{"Config": hexid + ".json", "RepoTags": [tag], "Layers": [diff + "/layer.tar"]}]).encode()
    path = os.path.join(dirname, tag.replace("/", "_").replace(":", "_") + ".tar")
    with tarfile.open(path, "w") as tf:
        for name, data in ((hexid + ".json", cfg), (diff + "/layer.tar", lb), ("manifest.json", man)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path, hexid


def monitors(root):
    """The pids of the coracle-monitor processes of the node under root."""
    pids = []
    for f in glob.glob(os.path.join(root, "containers", "*", "monitor.pid")):
        try:
            pid = int(open(f).read().split()[0])
            if open("/proc/%d/comm" % pid).read().startswith("coracle-monito"):
                pids.append(pid)
        except (OSError, ValueError, IndexError):
            pass
    return pids


def reboot(root, runc_root=None):
    """What a reboot does to the node under root (its kubelet stopped first):
    every monitor and container SIGKILLed, so no exit is recorded, and every
    mount below root (the pods' namespaces, secret volumes) gone."""
    for pid in monitors(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    ctest.node_cleanup(root, runc_root)
