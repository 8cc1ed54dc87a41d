#!/usr/bin/python3
# Images without a registry, offline: contrib/images/busybox.sh builds
# progrium/busybox:latest as a docker-archive (reproducibly), `coraclectl
# image import` puts it in a fresh store with progress, `image ls` lists it
# as crictl does, its rootfs runs (sh, the wget applet and the curl shim
# against a loopback HTTP server), an OCI layout of the same image (skopeo)
# imports as the same id, bad files fail cleanly, and `image rm` removes it.
# Uses coraclectl when it dispatches `image`, else t/img-tool (the same
# verb, src/ctl/cmd_image.c, on its own).
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("CORACLE_SRC") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("CORACLE_BUILD") or SRC
sys.path.insert(0, os.path.join(SRC, "t", "lib"))
import ctest  # noqa: E402

t = ctest.Tap()
tmp = tempfile.mkdtemp(prefix="coracle-45-image-")
procs = []


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)


def run(argv, env=None, timeout=120, input=None):
    e = dict(os.environ)
    e.pop("CORACLE_IMAGE_DIR", None)
    if env:
        e.update(env)
    return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout,
                          input=input)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


try:
    # ---- the CLI under test
    ctl = [os.path.join(BUILD, "coraclectl")]
    r = run(ctl + ["image", "--help"]) if os.path.exists(ctl[0]) else None
    if not r or r.returncode != 0 or "image import" not in r.stdout:
        ctl = [os.path.join(BUILD, "t", "img-tool")]
        t.diag("coraclectl does not dispatch `image` yet: testing the verb through t/img-tool")
    store = os.path.join(tmp, "store")

    def img(*args, **kw):
        return run(ctl + ["image"] + list(args) + ["--image-dir", store], **kw)

    # ---- build
    bb = os.path.join(tmp, "busybox.tar")
    r = run([os.path.join(SRC, "contrib", "images", "busybox.sh"), "-o", bb], timeout=60)
    t.ok(r.returncode == 0 and os.path.getsize(bb) > 1000000, "busybox.sh builds a tarball")
    if r.returncode != 0:
        t.diag(r.stderr)
        t.bail("busybox.sh failed")
    t.is_(r.stdout.strip(), bb, "busybox.sh prints the tarball's path")
    members = run(["tar", "-tf", bb]).stdout.split()
    t.ok("manifest.json" in members and any(m.endswith("/layer.tar") for m in members)
         and any(re.fullmatch(r"[0-9a-f]{64}\.json", m) for m in members),
         "docker-archive layout: manifest.json, <sha>.json, <id>/layer.tar")
    bb2 = os.path.join(tmp, "busybox2.tar")
    r = run([os.path.join(SRC, "contrib", "images", "busybox.sh"), "-f", "-o", bb2], timeout=60)
    t.ok(r.returncode == 0 and sha(bb) == sha(bb2), "the build is reproducible (same bytes)")
    if shutil.which("skopeo"):
        r = run(["skopeo", "inspect", "--config", "docker-archive:" + bb])
        t.ok(r.returncode == 0 and '"/bin/sh"' in r.stdout and "built by coracle contrib/images"
             in r.stdout, "skopeo reads it: Cmd /bin/sh, a description label")
    else:
        t.skip("skopeo not installed")

    # ---- import
    r = img("import", bb)
    m = re.fullmatch(r"imported progrium/busybox:latest \(sha256:([0-9a-f]{12}), [0-9.]+ MiB\)\n",
                     r.stdout)
    t.ok(r.returncode == 0 and m, "import prints: " + r.stdout.strip())
    if r.returncode != 0:
        t.diag(r.stderr)
    t.like(r.stderr, "layer 1/1", "progress lines on stderr (not a terminal)")
    short = m.group(1) if m else "?"
    r = img("import", bb)
    t.ok(r.returncode == 0 and "already present" in r.stdout, "a second import: already present")

    # ---- ls
    r = img("ls")
    lines = r.stdout.splitlines()
    t.ok(r.returncode == 0 and re.match(r"IMAGE +TAG +IMAGE ID +SIZE$", lines[0]),
         "ls header as crictl images")
    t.ok(len(lines) == 2 and re.match(r"docker\.io/progrium/busybox +latest +%s[0-9a-f] +[0-9.]+MB$"
                                      % short, lines[1]), "ls row: " + (lines[1] if len(lines) > 1 else ""))
    r = img("ls", "-q")
    t.ok(re.fullmatch(r"sha256:%s[0-9a-f]{52}\n" % short, r.stdout), "ls -q prints the id")
    ids = r.stdout.strip()
    r = run(ctl + ["image", "ls"], env={"CORACLE_IMAGE_DIR": store})
    t.ok("progrium/busybox" in r.stdout, "the store from $CORACLE_IMAGE_DIR")

    # ---- the rootfs
    rootfs = os.path.join(store, "images", ids[7:], "rootfs")
    t.ok(os.path.isfile(os.path.join(rootfs, "bin", "busybox"))
         and os.readlink(os.path.join(rootfs, "bin", "sh")) == "/bin/busybox",
         "rootfs: /bin/busybox and applet links")
    with open(os.path.join(rootfs, "etc", "passwd")) as f:
        t.ok(f.readline().startswith("root:x:0:0:"), "rootfs: /etc/passwd")
    if os.geteuid() == 0 and shutil.which("unshare"):
        r = run(["chroot", rootfs, "/bin/sh", "-c", "echo $((6*7))"])
        t.is_(r.stdout.strip(), "42", "sh runs in the rootfs")
        www = os.path.join(tmp, "www")
        os.mkdir(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("Welcome from the test\n")
        # A private network namespace: its own loopback, port 80 free.
        script = ("ip link set lo up; cd %s; /usr/bin/python3 -m http.server 80 --bind 127.0.0.1 "
                  ">/dev/null 2>&1 & p=$!; for i in $(seq 600); do chroot %s wget -qO- "
                  "http://127.0.0.1:80/ >/dev/null 2>&1 && break; sleep 0.1; done; "
                  "chroot %s curl http://localhost:80; chroot %s curl -s http://127.0.0.1:80/; "
                  "kill $p" % (www, rootfs, rootfs, rootfs))
        r = run(["unshare", "-n", "sh", "-c", script], timeout=120)
        t.is_(r.stdout, "Welcome from the test\n" * 2, "curl shim (busybox wget) fetches http://localhost:80")
    else:
        t.skip("needs root and unshare", 2)

    # ---- the same image as an OCI layout
    have_oci = False
    if shutil.which("skopeo"):
        oci = os.path.join(tmp, "oci")
        r = run(["skopeo", "copy", "docker-archive:" + bb, "oci:%s:progrium/busybox:oci" % oci])
        if r.returncode == 0:
            have_oci = True
            r = img("import", oci)
            m = re.match(r"imported progrium/busybox:oci \(sha256:([0-9a-f]{12}), ", r.stdout)
            t.ok(r.returncode == 0 and m, "an OCI layout (skopeo) of it imports: " + r.stdout.strip())
            # skopeo rewrites the config as an OCI one (so another id); the files are the same.
            oid = [i for i in img("ls", "-q").stdout.split() if m and i[7:19] == m.group(1)]
            orootfs = os.path.join(store, "images", oid[0][7:], "rootfs") if oid else tmp
            t.ok(oid and sha(os.path.join(orootfs, "bin", "busybox")) == sha("/bin/busybox")
                 and os.path.islink(os.path.join(orootfs, "usr", "bin", "wget")),
                 "its rootfs has the same busybox and applet links")
            ocitar = os.path.join(tmp, "oci.tar.gz")
            run(["tar", "-C", oci, "-czf", ocitar, "."])
            r = img("import", ocitar, "--tag", "bb-from-oci:1")
            t.ok(r.returncode == 0 and "bb-from-oci:1" in r.stdout, "an OCI .tar.gz with --tag")
        else:
            t.skip("skopeo copy failed: " + r.stderr.strip(), 3)
    else:
        t.skip("skopeo not installed", 3)

    # ---- bad input
    junk = os.path.join(tmp, "junk.tar")
    with open(junk, "w") as f:
        f.write("this is not an image\n")
    r = img("import", junk)
    t.ok(r.returncode == 1 and "junk.tar" in r.stderr and "cannot unpack" in r.stderr,
         "junk fails clearly: " + r.stderr.strip())
    r = img("import", os.path.join(tmp, "nope.tar"))
    t.ok(r.returncode == 1 and "No such file" in r.stderr, "a missing file: " + r.stderr.strip())
    t.ok(os.listdir(os.path.join(store, "tmp")) == [], "nothing left in the store's tmp/")
    r = img("rm", "nosuch")
    t.ok(r.returncode == 1 and "not found" in r.stderr, "rm unknown: " + r.stderr.strip())
    r = img("frob")
    t.ok(r.returncode == 2 and "unknown command" in r.stderr, "unknown subcommand: usage, exit 2")

    # ---- rm
    if have_oci:
        r = img("rm", "progrium/busybox:oci")
        t.ok(r.returncode == 0 and r.stdout == "Untagged: progrium/busybox:oci\n",
             "rm one of several names untags: " + r.stdout.strip())
        img("rm", "bb-from-oci:1")
    else:
        t.skip("no OCI names to remove")
    r = img("rm", "progrium/busybox")
    t.ok(r.returncode == 0 and "Untagged: progrium/busybox:latest" in r.stdout
         and "Deleted: " + ids in r.stdout, "rm the last name deletes: " + r.stdout.replace("\n", "; "))
    r = img("ls")
    t.is_(len(r.stdout.splitlines()), 1, "ls: empty")
    t.ok(os.listdir(os.path.join(store, "images")) == [], "images/ is empty")
finally:
    cleanup()
t.done()
