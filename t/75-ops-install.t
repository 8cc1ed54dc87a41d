#!/usr/bin/python3
# `make install DESTDIR=...` puts the programs, man pages, default configs,
# systemd units and the tmpfiles.d entry where the configured prefix says;
# the units pass `systemd-analyze verify`; every flag of each program is
# documented in its man page and every config key in its default config;
# `make uninstall` takes it all away again.
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest

t = ctest.Tap()
BUILD = ctest.BUILD
if not os.path.exists(os.path.join(BUILD, "Makefile")):
    t.skip_all("no Makefile in %s" % BUILD)
dest = tempfile.mkdtemp(prefix="coracle-install-")
import atexit
atexit.register(shutil.rmtree, dest, True)


# a clean environment for the sub-makes: under `make check` (and distcheck)
# MAKEFLAGS carries the parent's jobserver and overrides
MAKEENV = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR")}


def make(*args, **kw):
    return subprocess.run(["make", "-C", BUILD, "--no-print-directory"] + list(args),
                          capture_output=True, text=True, env=MAKEENV, **kw)


def makevar(name):
    p = make("-s", "-f", "Makefile", "-f", "-", "print-var", "V=" + name,
             input="print-var:\n\t@echo $($(V))\n")
    if p.returncode:
        t.diag("make print-var %s: %s" % (name, p.stderr.strip()[-300:]))
    lines = p.stdout.strip().splitlines()  # a Makefile regenerated on the way talks first
    return lines[-1].strip() if lines else ""


prefix = makevar("prefix")
bindir, sysconfdir, mandir = makevar("bindir"), makevar("sysconfdir"), makevar("mandir")
t.ok(prefix.startswith("/"), "configured prefix %s" % prefix)
p = make("install", "DESTDIR=" + dest)
t.is_(p.returncode, 0, "make install DESTDIR=... exits 0" + ("" if p.returncode == 0 else ": " + p.stderr[-500:]))


def D(path):
    return dest + path


PROGS = {"coracle-apiserver": 8, "coracle-scheduler": 8, "coracle-controller-manager": 8,
         "coracle-kubelet": 8, "coraclectl": 1, "coracle-backup": 8}
DAEMONS = ("coracle-apiserver", "coracle-scheduler", "coracle-controller-manager", "coracle-kubelet")
for prog, sec in PROGS.items():
    t.ok(os.access(D("%s/%s" % (bindir, prog)), os.X_OK), "%s installed in %s" % (prog, bindir))
    man = D("%s/man%d/%s.%d" % (mandir, sec, prog, sec))
    t.ok(os.path.exists(man), "man page %s.%d installed" % (prog, sec))
    if os.path.exists(man):
        r = subprocess.run(["man", "--warnings", "-l", man], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0", LC_ALL="C.UTF-8"))
        t.ok(r.returncode == 0 and not r.stderr.strip() and prog in r.stdout,
             "%s.%d renders without warnings%s" % (prog, sec, (": " + r.stderr.strip()[:300]) if r.stderr.strip() else ""))
    else:
        t.skip("no man page")

for daemon in DAEMONS:
    conf = D("%s/coracle/%s.conf" % (sysconfdir, daemon))
    t.ok(os.path.exists(conf), "%s.conf installed in %s/coracle" % (daemon, sysconfdir))
    unit = D("%s/lib/systemd/system/%s.service" % (prefix, daemon))
    t.ok(os.path.exists(unit), "%s.service installed" % daemon)
    text = open(unit).read() if os.path.exists(unit) else ""
    t.ok("ExecStart=%s/%s " % (bindir, daemon) in text and "Type=notify" in text and "WatchdogSec=" in text,
         "%s.service: ExecStart in %s, Type=notify, WatchdogSec" % (daemon, bindir))
    t.ok("%s/coracle/%s.conf" % (sysconfdir, daemon) in text, "%s.service reads %s/coracle/%s.conf" % (daemon, sysconfdir, daemon))

    # every flag of --help is a documented key of the default config and of the man page
    helptext = subprocess.run([os.path.join(BUILD, daemon), "--help"], capture_output=True, text=True).stdout
    keys = [k for k in re.findall(r"^\s+--([a-z0-9-]+)", helptext, re.M) if k not in ("config", "help", "version")]
    ctext = open(conf).read() if os.path.exists(conf) else ""
    # one-shot actions (kubelet --cleanup) are flags, not settings of a config file
    missing = [k for k in keys if k != "cleanup" and not re.search(r"^#?\s*%s\s*=" % re.escape(k), ctext, re.M)]
    t.ok(keys and not missing, "%s.conf documents every key (%d; missing %s)" % (daemon, len(keys), missing))
    mtext = open(D("%s/man8/%s.8" % (mandir, daemon))).read().replace("\\-", "-")
    mmissing = [k for k in keys if "--" + k not in mtext]
    t.ok(not mmissing, "%s(8) documents every flag (missing %s)" % (daemon, mmissing))

t.ok(os.path.exists(D("%s/lib/tmpfiles.d/coracle.conf" % prefix)), "tmpfiles.d/coracle.conf installed")

# systemd-analyze verify on the installed units (ExecStart pointed at the installed binaries)
sa = shutil.which("systemd-analyze")
if not sa:
    t.skip("systemd-analyze not installed (Debian package systemd)")
else:
    vdir = os.path.join(dest, "verify")
    os.makedirs(vdir)
    units = []
    for daemon in DAEMONS:
        text = open(D("%s/lib/systemd/system/%s.service" % (prefix, daemon))).read()
        text = re.sub(r"=([-+@:!]*)%s/" % re.escape(bindir), r"=\g<1>%s%s/" % (dest, bindir), text)
        u = os.path.join(vdir, daemon + ".service")
        with open(u, "w") as f:
            f.write(text)
        units.append(u)
    r = subprocess.run([sa, "verify", "--man=no"] + units, capture_output=True, text=True, cwd=vdir)
    t.ok(r.returncode == 0 and not r.stderr.strip(), "systemd-analyze verify passes on the four units%s"
         % ((": " + r.stderr.strip()[:500]) if r.stderr.strip() else ""))

p = make("uninstall", "DESTDIR=" + dest)
left = []
for root, dirs, files in os.walk(dest):
    if root.startswith(os.path.join(dest, "verify")):
        continue
    left += [os.path.join(root, f) for f in files]
t.ok(p.returncode == 0 and not left, "make uninstall removes every file (left: %s)" % left[:5])
t.done()
