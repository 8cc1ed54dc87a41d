#!/usr/bin/python3
# coraclectl logs and exec end to end: apiserver + a real kubelet running a
# busybox pod under runc; logs (--tail, -f, -c), exec (stdout, stderr, the
# remote exit code, -i with stdin), and describe/get of a running pod.
# Needs root, runc and busybox-static (skipped otherwise).
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet

t = ctest.Tap()
ctest.need_root(t)
if not os.path.exists("/usr/sbin/runc") or not os.path.exists("/bin/busybox"):
    t.skip_all("needs runc and busybox-static")
c = ctest.Cluster(t, "30-ctl-logs-exec")
pb = c.pb
root = os.path.join(c.dir, "kroot")
runc_root = os.path.join(root, "runc")


c.on_teardown(lambda: ctest.node_cleanup(root, runc_root))
klet.import_busybox(t, root)
api = c.start_apiserver()
c.start_kubelet("node1", root_dir=root)
t.ok(c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE), "node registered")

manifest = """apiVersion: v1
kind: Pod
metadata:
  name: talk
spec:
  nodeName: node1
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: progrium/busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo hello; echo world; while true; do sleep 0.2; [ -f /tmp/more ] && echo more && rm /tmp/more; done"]
  - name: side
    image: progrium/busybox
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo from-side; exec sleep 1000"]
"""
rc, out, err = c.ctl("apply", "-f", "-", stdin=manifest)
t.is_((rc, out), (0, "pod/talk created\n"), "apply")


def running():
    p, _ = api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name="talk"))
    return p and p.status.phase == "Running" and all(s.ready for s in p.status.containerStatuses) and \
        len(p.status.containerStatuses) == 2


t.ok(c.wait_for(running, timeout=ctest.DEADLINE), "pod running")
rc, out, err = c.ctl("get", "po", "talk")
t.is_(out.splitlines()[1].split()[:3], ["talk", "2/2", "Running"], "get po: 2/2 Running")

# ---- logs ----
got = c.wait_for(lambda: (lambda r: r[1] if r[1] == "hello\nworld\n" else None)(c.ctl("logs", "talk")), timeout=ctest.DEADLINE)
t.is_(got, "hello\nworld\n", "logs")
rc, out, err = c.ctl("logs", "talk")
t.is_(err, 'Defaulted container "main" out of: main, side\n', "logs: default container named")
rc, out, err = c.ctl("logs", "--tail", "1", "talk", "-c", "main")
t.is_((rc, out), (0, "world\n"), "logs --tail 1")
rc, out, err = c.ctl("logs", "po/talk", "-c", "side")
t.is_((rc, out), (0, "from-side\n"), "logs -c")
f = subprocess.Popen([c.bin("coraclectl"), "--server", c.api_addr, "logs", "-f", "talk", "-c", "main"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
c.on_teardown(lambda: f.poll() is None and f.kill())
buf = []
th = threading.Thread(target=lambda: buf.extend(iter(f.stdout.readline, "")), daemon=True)
th.start()
# the new line is written once -f has printed what was there (it follows by then)
c.wait_for(lambda: len(buf) >= 2, timeout=ctest.DEADLINE)
rc, out, err = c.ctl("exec", "talk", "-c", "main", "--", "touch", "/tmp/more")
t.is_(rc, 0, "exec touch")
c.wait_for(lambda: len(buf) >= 3, timeout=ctest.DEADLINE)
time.sleep(0.5)  # anything more would show up now
f.terminate()
th.join(5)
t.is_("".join(buf), "hello\nworld\nmore\n", "logs -f follows new output")

# ---- exec ----
rc, out, err = c.ctl("exec", "talk", "--", "echo", "hi")
t.is_((rc, out), (0, "hi\n"), "exec: stdout")
rc, out, err = c.ctl("exec", "talk", "-c", "side", "--", "sh", "-c", "echo oops >&2; exit 3")
t.is_(rc, 3, "exec: the remote exit code")
t.is_(err, "oops\ncommand terminated with exit code 3\n", "exec: stderr and kubectl's message")
rc, out, err = c.ctl("exec", "-i", "talk", "--", "sh", "-c", "tr a-z A-Z")
t.is_((rc, out), (0, ""), "exec -i with empty stdin")
p = subprocess.run([c.bin("coraclectl"), "--server", c.api_addr, "exec", "-i", "talk", "--", "tr", "a-z", "A-Z"],
                   input="some input\n" * 1000, capture_output=True, text=True, timeout=30)
big = (p.returncode, p.stdout) == (0, "SOME INPUT\n" * 1000)
big_len = len(p.stdout)
p = subprocess.run(["bash", "-c", "(printf 'first line\\nsecond\\n'; sleep 2) | %s --server %s exec -i talk -- head -n 1"
                    % (c.bin("coraclectl"), c.api_addr)], capture_output=True, text=True, timeout=30)
t.is_((p.returncode, p.stdout), (0, "first line\n"), "exec -i: stdin through a pipe")
if not t.ok(big, "exec -i: all of stdin, then end of input"):
    t.diag("got %d of %d bytes" % (big_len, 11000))
# -it on a terminal: the remote side gets a tty of our window size; ours is restored after
import fcntl
import struct
import termios
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))
before = termios.tcgetattr(slave)
p = subprocess.run([c.bin("coraclectl"), "--server", c.api_addr, "exec", "-it", "talk", "--", "sh", "-c",
                    "sleep 1; stty size; tty; exit 4"], stdin=slave, capture_output=True, text=True, timeout=30)
t.is_(p.returncode, 4, "exec -it: exit code")
t.like(p.stdout, "40 132", "exec -it: the window size reached the remote tty")
t.like(p.stdout, "/dev/", "exec -it: stdin is a tty there")
t.is_(termios.tcgetattr(slave), before, "exec -it: terminal settings restored")
os.close(master)
os.close(slave)
rc, out, err = c.ctl("exec", "talk", "--", "no-such-command")
t.ok(rc != 0, "exec of a missing command fails (%d): %s" % (rc, err.strip()))

# ---- describe a running pod ----
rc, out, err = c.ctl("describe", "pod", "talk")
t.like(out, "Node:         node1/", "describe: node")
t.like(out, "    State:          Running\n", "describe: state Running")
t.ok(re.search(r"\nEvents:\n  Type +Reason +Age +From +Message\n  ---- +------ +---- +---- +-------\n", out),
     "describe: events table")
ev = [l.split(None, 4)[4] for l in out.split("Events:\n", 1)[-1].splitlines()[2:]]
t.ok(ev.index("Created container main") < ev.index("Started container main"), "describe: events in order: %s" % ev)

rc, out, err = c.ctl("delete", "pod", "talk")
t.is_((rc, out), (0, 'pod "talk" deleted\n'), "delete (waits for the kubelet)")
t.ok(api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name="talk"))[0] is None, "gone when delete returns")
t.done()
