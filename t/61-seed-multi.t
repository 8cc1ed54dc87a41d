#!/usr/bin/python3
# The seed tutorial, 1.7 demo A: multiple-container-pod.yaml, unchanged. nginx
# and busybox share the pod's network namespace: `get po` shows 2/2 Running,
# and in `coraclectl exec -it nginx -c busybox -- sh` (a real terminal),
# `curl http://localhost:80` prints nginx's "Welcome to nginx!" page.
import os, pty, select, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import seed

t = ctest.Tap()
s = seed.Seed(t, "61-seed-multi", ["nginx", "busybox"])
c = s.c
w = s.watch()
rc, out, err = c.ctl("apply", "-f", seed.manifest("multiple-container-pod.yaml"))
t.is_((rc, out), (0, "pod/nginx created\n"), "apply -f multiple-container-pod.yaml")
t.ok(w.wait("nginx", "2/2", "Running"), "get po -w: nginx reaches 2/2 Running")
rc, out, err = c.ctl("get", "po", "-o", "wide")
row = seed.row_of(out, "nginx")
t.ok(row and row[1:3] == ["2/2", "Running"] and "node1" in row, "get po -o wide: 2/2 Running on node1")

# exec -it, on a pseudo-terminal as a user's shell would have.
master, slave = os.openpty()
p = subprocess.Popen([c.bin("coraclectl"), "--server", c.api_addr, "exec", "-it", "nginx", "-c", "busybox", "--", "sh"],
                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
os.close(slave)
c.on_teardown(lambda: p.poll() is None and p.kill())


def read_until(fd, want, timeout=ctest.DEADLINE):
    buf = b""
    deadline = time.time() + timeout
    while want not in buf and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
    return buf


prompt = read_until(master, b"# ")
t.ok(b"# " in prompt, "exec -it: a shell prompt from busybox")
os.write(master, b"curl http://localhost:80\r")
page = read_until(master, b"</html>")
t.like(page.decode(errors="replace"), "Welcome to nginx!", "curl http://localhost:80 from busybox: nginx's welcome page")
os.write(master, b"exit 7\r")
try:
    rc = p.wait(timeout=ctest.DEADLINE)
except subprocess.TimeoutExpired:
    rc = None
t.is_(rc, 7, "exit from the shell ends exec with its exit code")
os.close(master)

rc, out, err = c.ctl("logs", "nginx", "-c", "nginx-1")
t.like(out, "GET / HTTP/1.1", "logs nginx -c nginx-1: nginx logged the request")
rc, out, err = c.ctl("delete", "pod", "nginx", timeout=30 + 2 * ctest.DEADLINE)  # sleep as PID 1 ignores TERM: the 30 s grace runs out
t.is_((rc, out), (0, 'pod "nginx" deleted\n'), "delete pod nginx")
t.ok(c.wait_for(lambda: any(st == "Terminating" for _, st in w.rows("nginx")), timeout=ctest.DEADLINE), "get po -w: Terminating")
rc, out, err = c.ctl("get", "po", "nginx")
t.is_((rc, err), (1, 'Error from server (NotFound): pods "nginx" not found\n'), "get po nginx: gone")
ids, mounts = c.wait_for(lambda: (lambda l: l if not l[0] and not l[1] else None)(s.leftovers()), timeout=ctest.DEADLINE) or s.leftovers()
t.is_((ids, mounts), ([], []), "nothing left on the node: no container, no mount")
t.done()
