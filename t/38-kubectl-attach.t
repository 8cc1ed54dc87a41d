#!/usr/bin/python3
# pods/attach with stdin and terminals, driven by stock kubectl (1.32 over
# WebSocket, 1.20 over SPDY/3.1, each when the machine has it) against an
# apiserver and a real kubelet running busybox: attach -i to a container
# that keeps its stdin open (a round trip, twice: the stdin stays open),
# stdinOnce (the container's stdin ends with the first session's), attach
# to a terminal (-t: the window size reaches it, one output stream),
# -t to a container without one (kubectl's warning), `kubectl run -i --rm`
# (a pod created with stdin, attached, deleted), an attach after the
# kubelet restarted (the container's monitor kept its stdin), the new
# Container fields in kubectl explain, and coraclectl attach.
# Needs root, runc and busybox-static (skipped otherwise).
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet
import kubectls

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "38-kubectl-attach")
pb = c.pb
api = c.start_apiserver()
kubelet = c.start_kubelet("node1", root_dir=root)
t.ok(c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE),
     "node registered")
base = "http://" + c.api_addr


def pod(name, command, restart="Always", **flags):
    """A busybox pod on node1 whose container c runs command, with stdin/stdinOnce/tty flags."""
    extra = "".join("    %s: true\n" % k for k, v in flags.items() if v)
    y = ("apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  nodeName: node1\n"
         "  terminationGracePeriodSeconds: 1\n  restartPolicy: %s\n  containers:\n  - name: c\n"
         "    image: progrium/busybox\n    imagePullPolicy: IfNotPresent\n    command: %s\n%s"
         % (name, restart, command, extra))
    rc, out, err = c.ctl("apply", "-f", "-", stdin=y)
    t.is_(rc, 0, "pod %s created (%s)" % (name, err.strip()))


def running(name):
    p, _ = api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))
    return p and p.status.phase == "Running" and all(s.ready for s in p.status.containerStatuses)


def gone(name):
    p, err = api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))
    return p is None


pod("echo", "[sh, -c, 'while read l; do echo \"got $l\"; done']", stdin=True)
pod("plain", "[sh, -c, 'while true; do sleep 0.2; [ -f /tmp/more ] && echo more && rm /tmp/more; done']")
t.ok(c.wait_for(lambda: running("echo") and running("plain"), timeout=ctest.DEADLINE), "pods running")

home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv["HOME"] = home


class Proc:
    """A kubectl (or any) process whose stdout is collected by a thread."""

    def __init__(self, argv, env=kenv):
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        c.on_teardown(lambda: self.p.poll() is None and self.p.kill())
        self.out = b""
        self.th = threading.Thread(target=self._read, daemon=True)
        self.th.start()

    def _read(self):
        for chunk in iter(lambda: self.p.stdout.read1(4096), b""):
            self.out += chunk

    def send(self, data):
        self.p.stdin.write(data.encode())
        self.p.stdin.flush()

    def wait_out(self, text):
        return c.wait_for(lambda: text.encode() in self.out, timeout=ctest.DEADLINE)

    def finish(self, kill=False):
        if kill:
            self.p.kill()
        try:
            self.p.wait(timeout=ctest.DEADLINE)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.th.join(5)
        err = self.p.stderr.read().decode(errors="replace")
        return self.p.returncode, self.out.decode(errors="replace"), err


def run_kubectl(kubectl, ver):
    """The checks with one kubectl; returns the number of tests it ran."""
    argv0 = [kubectl, "--server", base, "--cache-dir", os.path.join(home, ver)]

    def k(*args, stdin=None):
        p = subprocess.run(argv0 + list(args), env=kenv, capture_output=True, text=True, timeout=120,
                           input=stdin)
        return p.returncode, p.stdout, p.stderr

    # attach -i: a round trip; the stdin stays open for the next session
    for i in (1, 2):
        a = Proc(argv0 + ["attach", "-i", "echo"])
        time.sleep(1)  # (what is sent before the session is open waits in kubectl)
        a.send("hello %d\n" % i)
        t.ok(a.wait_out("got hello %d\n" % i), "%s: attach -i, session %d: a round trip" % (ver, i))
        a.finish(kill=True)

    # stdinOnce: the container's stdin ends with the first session's; the container ends, so does attach
    name = "once" + ver.replace(".", "")
    pod(name, "[sh, -c, 'while read l; do echo \"got $l\"; done; echo stdin-ended']", restart="Never",
        stdin=True, stdinOnce=True)
    c.wait_for(lambda: running(name), timeout=ctest.DEADLINE)
    rc, out, err = k("attach", "-i", name, stdin="a\nb\n")
    t.is_((rc, out), (0, "got a\ngot b\nstdin-ended\n"), "%s: stdinOnce: EOF after the session (%s)" % (ver, err.strip()))

    # attach -t to a container without a terminal: kubectl's warning, then the output
    a = Proc(argv0 + ["attach", "-t", "plain"])
    time.sleep(1)
    k("exec", "plain", "--", "touch", "/tmp/more")
    t.ok(a.wait_out("more\n"), "%s: attach -t to a container without a terminal: its output" % ver)
    rc, out, err = a.finish(kill=True)
    t.like(err, "Unable to use a TTY - container c did not allocate one", "%s: ...and kubectl's warning" % ver)

    # a terminal: the window size reaches it
    name = "tty" + ver.replace(".", "")
    pod(name, "[sh]", stdin=True, tty=True)
    c.wait_for(lambda: running(name), timeout=ctest.DEADLINE)
    cmd = " ".join(["'%s'" % x for x in argv0]) + " attach -it " + name
    s = Proc(["script", "-qec", "stty rows 33 cols 121; " + cmd, "/dev/null"])
    time.sleep(2)
    s.send("stty size; tty\n")
    got = s.wait_out("33 121")
    s.send("exit\n")
    rc, out, err = s.finish()
    t.ok(got, "%s: attach -it: the window size reached the terminal (%r)" % (ver, out[-300:]))
    t.like(out, "/dev/pts/", "%s: attach -it: the container's stdin is a terminal" % ver)

    # kubectl run -i --rm: created with stdin, attached, deleted
    name = "run" + ver.replace(".", "")
    rc, out, err = k("run", "-i", "--rm", "--restart=Never", "--image=progrium/busybox",
                     "--image-pull-policy=IfNotPresent", "--overrides", '{"spec":{"nodeName":"node1"}}',
                     name, "--", "sh", "-c", "read a; echo got $a", stdin="hi\n")
    t.ok(rc == 0 and "got hi" in out, "%s: run -i --rm: a round trip (%d %r %r)" % (ver, rc, out, err[-300:]))
    t.ok(c.wait_for(lambda: gone(name), timeout=ctest.DEADLINE), "%s: run --rm: the pod is deleted" % ver)
    return 11


kubectl_list = [(kubectls.kubectl_132(), "1.32"), (kubectls.kubectl_120(), "1.20")]
for kc, ver in kubectl_list:
    if kc:
        run_kubectl(kc, ver)
    else:
        t.skip("kubectl %s not on this machine" % ver, 11)

# ---- coraclectl attach ----
a = Proc([c.bin("coraclectl"), "--server", c.api_addr, "attach", "-i", "echo"])
time.sleep(1)
a.send("from ctl\n")
t.ok(a.wait_out("got from ctl\n"), "coraclectl attach -i: a round trip")
a.finish(kill=True)
pod("oncectl", "[sh, -c, 'while read l; do echo \"got $l\"; done; echo stdin-ended']", restart="Never",
    stdin=True, stdinOnce=True)
c.wait_for(lambda: running("oncectl"), timeout=ctest.DEADLINE)
rc, out, err = c.ctl("attach", "-i", "oncectl", stdin="x\n")
t.is_((rc, out), (0, "got x\nstdin-ended\n"), "coraclectl attach -i: stdinOnce ends the container (%s)" % err.strip())
rc, out, err = c.ctl("attach", "echo", "extra")
t.ok(rc != 0 and "expected POD" in err, "coraclectl attach: one pod only (%s)" % err.strip())
rc, out, err = c.ctl("attach", "nope")
t.ok(rc != 0 and 'pods "nope" not found' in err, "coraclectl attach: a missing pod (%s)" % err.strip())

# ---- the monitor keeps the stdin and the socket across a kubelet restart ----
t.is_(kubelet.stop(), 0, "kubelet stopped")
kubelet = c.start_kubelet("node1", root_dir=root)
k132 = kubectls.kubectl_132()
argv = [k132, "--server", base, "--cache-dir", os.path.join(home, "1.32")] if k132 else \
    [c.bin("coraclectl"), "--server", c.api_addr]


def round_trip():
    a = Proc(argv + ["attach", "-i", "echo"])
    time.sleep(1)
    a.send("again\n")
    ok = a.wait_out("got again\n")
    a.finish(kill=True)
    return ok


t.ok(c.wait_for(round_trip, timeout=ctest.DEADLINE), "attach -i after a kubelet restart: a round trip")

# ---- the fields in the API's description ----
if k132:
    p = subprocess.run(argv + ["explain", "pod.spec.containers.stdinOnce"], env=kenv, capture_output=True,
                       text=True, timeout=60)
    t.ok(p.returncode == 0 and "stdinOnce" in p.stdout and "<boolean>" in p.stdout
         and "single attach" in p.stdout, "1.32 explain pod.spec.containers.stdinOnce (%r)" % (p.stdout + p.stderr)[:300])
else:
    t.skip("kubectl 1.32 not on this machine")
t.ok(c.api.alive(), "apiserver alive")
t.done()
