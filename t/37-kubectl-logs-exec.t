#!/usr/bin/python3
# pods/log, pods/exec and pods/attach over the REST API, driven by stock
# kubectl against an apiserver and a real kubelet running busybox pods:
# kubectl 1.32 (exec over WebSocket, v5.channel.k8s.io) and kubectl 1.20
# (SPDY/3.1, v4.channel.k8s.io), each when the machine has it: logs (-c,
# --tail, -f ended by the container's end or by killing kubectl), exec
# (stdout, -i with piped stdin and an exit code, -it under a pty with the
# window size), attach; the log errors as Kubernetes words them; and
# hostile upgrades (garbage after a WebSocket or SPDY upgrade, upgrades
# that never send a frame) that end with a reason while the daemon serves;
# then over TLS (upgrades on ALPN http/1.1) with client certificates, a
# token and the policy (a viewer reads logs, may not exec).
# Needs root, runc and busybox-static (skipped otherwise).
import base64
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import urllib.error
import zlib

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import klet
import kubectls

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "37-kubectl-logs-exec")
pb = c.pb
# short stream timeouts so that the hostile cases need not wait long
api = c.start_apiserver("--stream-setup-timeout", "2", "--stream-idle-timeout", "3")
c.start_kubelet("node1", root_dir=root)
t.ok(c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE),
     "node registered")

manifest = """apiVersion: v1
kind: Pod
metadata:
  name: web
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
t.is_((rc, out), (0, "pod/web created\n"), "apply")


def running(name, n):
    p, _ = api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))
    return p and p.status.phase == "Running" and len(p.status.containerStatuses) == n and \
        all(s.ready for s in p.status.containerStatuses)


t.ok(c.wait_for(lambda: running("web", 2), timeout=ctest.DEADLINE), "pod running")
base = "http://" + c.api_addr
logs_url = base + "/api/v1/namespaces/default/pods/web/log"


def http(url, method="GET"):
    """(status, body text) of a plain request."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


c.wait_for(lambda: http(logs_url + "?container=main")[1] == "hello\nworld\n", timeout=ctest.DEADLINE)

# ---- pods/log over plain HTTP: parameters and errors ----
t.is_(http(logs_url + "?container=main"), (200, "hello\nworld\n"), "log: the container's output")
t.is_(http(logs_url + "?container=main&tailLines=1"), (200, "world\n"), "log: tailLines")
t.is_(http(logs_url + "?container=main&limitBytes=8"), (200, "hello\nwo"), "log: limitBytes")
code, body = http(logs_url + "?container=main&timestamps=true")
lines = body.splitlines()
t.ok(code == 200 and len(lines) == 2 and lines[0].endswith("Z hello") and lines[0][:2] == "20",
     "log: timestamps (%r)" % lines[:1])
t.is_(http(logs_url + "?container=main&sinceTime=2099-01-01T00:00:00Z"), (200, ""), "log: sinceTime in the future")
t.is_(http(logs_url + "?container=main&sinceSeconds=3600"), (200, "hello\nworld\n"), "log: sinceSeconds")
code, body = http(logs_url)
t.ok(code == 400 and "a container name must be specified for pod web, choose one of: [main side]" in body
     and '"reason":"BadRequest"' in body, "log: two containers and none named: 400 (%s)" % body.strip())
code, body = http(logs_url + "?container=x")
t.ok(code == 400 and "container x is not valid for pod web" in body, "log: unknown container: 400 (%s)" % body.strip())
code, body = http(base + "/api/v1/namespaces/default/pods/nope/log")
t.ok(code == 404 and 'pods \\"nope\\" not found' in body and '"reason":"NotFound"' in body,
     "log: a missing pod: 404 NotFound (%s)" % body.strip())
code, body = http(logs_url + "?container=main&previous=true")
t.ok(code == 400 and 'previous terminated container \\"main\\" in pod \\"web\\" not found' in body,
     "log: previous of a container never restarted: 400 (%s)" % body.strip())
code, body = http(logs_url + "?container=main&tailLines=-1")
t.ok(code == 422 and '"reason":"Invalid"' in body, "log: tailLines -1: 422 Invalid")
code, body = http(logs_url + "?container=main", method="POST")
t.is_(code, 405, "log: POST is 405")
code, body = http(base + "/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true&container=main")
t.ok(code == 400 and "Upgrade request required" in body, "exec without an upgrade: 400 (%s)" % body.strip())

# a pod whose container waits (its image is not there): 400 in the kubelet's words
rc, out, err = c.ctl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Pod\nmetadata: {name: waiting}\nspec:\n"
                     "  nodeName: node1\n  containers: [{name: c, image: no-such-image, imagePullPolicy: Never}]\n")
code, body = c.wait_for(lambda: (lambda r: r if r[0] == 400 else None)(
    http(base + "/api/v1/namespaces/default/pods/waiting/log")), timeout=ctest.DEADLINE) or (0, "")
t.ok(code == 400 and 'container \\"c\\" in pod \\"waiting\\" is waiting to start' in body,
     "log: a container waiting to start: 400 (%s)" % body.strip())

# ---- stock kubectl ----
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv["HOME"] = home


def run_kubectl(kubectl):
    """The same checks with one kubectl; returns the number of tests it ran."""
    ver = "1.32" if kubectl == kubectls.KUBECTL_132 else "1.20"
    argv0 = [kubectl, "--server", base, "--cache-dir", os.path.join(home, ver)]

    def k(*args, stdin=None):
        p = subprocess.run(argv0 + list(args), env=kenv, capture_output=True, text=True, timeout=60,
                           input=stdin)
        return p.returncode, p.stdout, p.stderr

    main_log = http(logs_url + "?container=main")[1]  # (grows with "more" lines as the tests go)
    rc, out, err = k("logs", "web", "-c", "main")
    t.is_((rc, out), (0, main_log), "%s: logs -c main" % ver)
    rc, out, err = k("logs", "web", "-c", "side")
    t.is_((rc, out), (0, "from-side\n"), "%s: logs -c side" % ver)
    rc, out, err = k("logs", "--tail=1", "web", "-c", "main")
    t.is_((rc, out), (0, main_log.splitlines(True)[-1]), "%s: logs --tail=1" % ver)
    rc, out, err = k("logs", "web")
    if ver == "1.32":
        t.ok(rc == 0 and out == main_log and 'Defaulted container "main" out of: main, side' in err,
             "%s: logs without -c: the first container, named (%r)" % (ver, err.strip()))
    else:
        t.ok(rc != 0 and "a container name must be specified for pod web, choose one of: [main side]" in err,
             "%s: logs without -c: the server's error (%r)" % (ver, err.strip()))
    rc, out, err = k("logs", "web", "-c", "nope")
    t.ok(rc != 0 and "container nope is not valid for pod web" in err, "%s: logs -c nope (%r)" % (ver, err.strip()))

    # logs -f: follows new output; ended by killing kubectl
    f = subprocess.Popen(argv0 + ["logs", "-f", "web", "-c", "main"], env=kenv, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    c.on_teardown(lambda: f.poll() is None and f.kill())
    buf = []
    th = threading.Thread(target=lambda: buf.extend(iter(f.stdout.readline, "")), daemon=True)
    th.start()
    n = len(main_log.splitlines())
    c.wait_for(lambda: len(buf) >= n, timeout=ctest.DEADLINE)
    k("exec", "web", "-c", "main", "--", "touch", "/tmp/more")
    c.wait_for(lambda: len(buf) >= n + 1, timeout=ctest.DEADLINE)
    f.kill()
    f.wait()
    th.join(5)
    t.is_("".join(buf), main_log + "more\n", "%s: logs -f follows new output" % ver)

    # exec
    rc, out, err = k("exec", "web", "-c", "main", "--", "echo", "hi")
    t.is_((rc, out), (0, "hi\n"), "%s: exec echo hi" % ver)
    rc, out, err = k("exec", "-i", "web", "-c", "main", "--", "sh", "-c", "cat; echo done >&2; exit 3",
                     stdin="line one\nline two\n")
    t.is_((rc, out), (3, "line one\nline two\n"), "%s: exec -i: stdin through, exit code 3" % ver)
    t.like(err, "done\n", "%s: exec -i: stderr" % ver)
    t.like(err, "command terminated with exit code 3", "%s: exec -i: kubectl's message" % ver)
    big = "".join("line %d of the input\n" % i for i in range(5000))
    rc, out, err = k("exec", "-i", "web", "-c", "main", "--", "wc", "-l", stdin=big)
    t.is_((rc, out.strip()), (0, "5000"), "%s: exec -i: a big stdin, then its end" % ver)
    # -it on a pty (script): the remote side has a terminal of our size
    # (the sleep: runc exec -t sizes the container's console just after the process starts)
    cmd = " ".join(["'%s'" % a for a in argv0]) + " exec -it web -c main -- sh -c 'sleep 1; stty size; tty; exit 4'"
    # (script's stdin stays open: at its end script would type an EOF into the terminal)
    p = subprocess.Popen(["script", "-qec", "stty rows 33 cols 121; " + cmd, "/dev/null"], env=kenv,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    c.on_teardown(lambda: p.poll() is None and p.kill())
    p.stdout_text = p.stdout.read()
    p.wait(60)
    p.stdin.close()
    p.stdout = p.stdout_text
    t.like(p.stdout, "33 121", "%s: exec -it: the window size reached the remote tty (%r)" % (ver, p.stdout[-200:]))
    t.like(p.stdout, "/dev/pts/", "%s: exec -it: stdin is a tty there" % ver)
    t.ok(p.returncode == 4 or "exit code 4" in p.stdout, "%s: exec -it: exit code 4 (%d)" % (ver, p.returncode))
    rc, out, err = k("exec", "web", "-c", "nope", "--", "true")
    t.ok(rc != 0 and "container nope is not valid for pod web" in err, "%s: exec -c nope (%r)" % (ver, err.strip()))

    # attach: the container's output from now on
    a = subprocess.Popen(argv0 + ["attach", "web", "-c", "main"], env=kenv, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    c.on_teardown(lambda: a.poll() is None and a.kill())
    abuf = []
    ath = threading.Thread(target=lambda: abuf.extend(iter(a.stdout.readline, "")), daemon=True)
    ath.start()
    time.sleep(1)
    k("exec", "web", "-c", "main", "--", "touch", "/tmp/more")
    c.wait_for(lambda: "more\n" in abuf, timeout=ctest.DEADLINE)
    a.kill()
    a.wait()
    t.is_(abuf, ["more\n"], "%s: attach: the output from now on" % ver)
    return 20


kubectl_list = [kubectls.kubectl_132(), kubectls.kubectl_120()]
for kc, name in zip(kubectl_list, ("1.32", "1.20")):
    if kc:
        run_kubectl(kc)
    else:
        t.skip("kubectl %s not on this machine" % name, 20)

# logs -f ends when the container ends
rc, out, err = c.ctl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Pod\nmetadata: {name: short}\nspec:\n"
                     "  nodeName: node1\n  restartPolicy: Never\n  containers:\n  - name: c\n"
                     "    image: progrium/busybox\n    imagePullPolicy: IfNotPresent\n"
                     "    command: [sh, -c, 'echo first; sleep 3; echo last']\n")
c.wait_for(lambda: running("short", 1), timeout=ctest.DEADLINE)
t0 = time.time()
followers = [(name, subprocess.Popen([kc, "--server", base, "--cache-dir", os.path.join(home, name), "logs", "-f",
                                      "short"], env=kenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
             for kc, name in zip(kubectl_list, ("1.32", "1.20")) if kc]
code, body = http(base + "/api/v1/namespaces/default/pods/short/log?follow=true")
t.is_((code, body), (200, "first\nlast\n"), "log follow=true ends with the container (%.1fs)" % (time.time() - t0))
for name, f in followers:
    out, err = f.communicate(timeout=60)
    t.is_((f.returncode, out), (0, "first\nlast\n"), "%s: logs -f ends with the container" % name)
if len(followers) < 2:
    t.skip("a kubectl is not on this machine", 2 - len(followers))

# ---- hostile upgrades ----
host, port = c.api_addr.rsplit(":", 1)


def upgrade(kind, sub="exec?command=true&stdout=true"):
    s = socket.create_connection((host, int(port)), timeout=10)
    if kind == "ws":
        head = ("GET /api/v1/namespaces/default/pods/web/%s&container=main HTTP/1.1\r\nHost: x\r\n"
                "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"
                % (sub, base64.b64encode(os.urandom(16)).decode()))
    else:
        head = ("POST /api/v1/namespaces/default/pods/web/%s&container=main HTTP/1.1\r\nHost: x\r\n"
                "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                "Content-Length: 0\r\n\r\n" % sub)
    s.sendall(head.encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        d = s.recv(4096)
        if not d:
            break
        resp += d
    return s, resp


def read_all(s, limit=30):
    """What the server sends until it closes (or limit seconds): (bytes, seconds)."""
    t0 = time.time()
    data = b""
    s.settimeout(limit)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except (socket.timeout, ConnectionResetError):
        pass
    return data, time.time() - t0


s, resp = upgrade("ws", "exec?command=sleep&command=100&stdout=true")
t.like(resp.decode(errors="replace"), "HTTP/1.1 101 Switching Protocols", "WebSocket upgrade: 101")
s.sendall(b"\x82\x85garbage-not-a-masked-frame" * 3)
data, secs = read_all(s)
t.ok(b"\x88" in data and secs < 10, "WebSocket garbage: a close frame, the connection closed (%r)" % data[-20:])
s.close()
s, resp = upgrade("ws", "exec?command=sleep&command=100&stdout=true")
s.sendall(b"\x81\x81\x00\x00\x00\x00a")  # a masked text frame
data, secs = read_all(s)
t.ok(b"\x88" in data and b"\x03\xeb" in data, "WebSocket text frame: close 1003 (%r)" % data[-60:])
s.close()
s, resp = upgrade("ws", "exec?command=sleep&command=100&stdout=true")
big = struct.pack("!BBQ", 0x82, 0xff, 1 << 40) + b"\0\0\0\0" + b"\x01" * 65536
s.sendall(big)
data, secs = read_all(s)
t.ok(b"\x88" in data, "WebSocket frame of 1 TiB announced: closed (%r)" % data[-20:])
s.close()
s, resp = upgrade("ws", "exec?command=sleep&command=100&stdout=true")
data, secs = read_all(s)
t.ok(1.5 < secs < 20, "WebSocket: silence is closed after the idle timeout (%.1fs)" % secs)
s.close()
s, resp = upgrade("spdy")
t.like(resp.decode(errors="replace"), "HTTP/1.1 101 Switching Protocols", "SPDY upgrade: 101")
t.like(resp.decode(errors="replace").lower(), "x-stream-protocol-version: v4.channel.k8s.io", "SPDY: v4 chosen")
s.sendall(b"\x80\x03\x00\x01\x00\x00\x00\x0a" + b"\xff" * 10 + b"garbage" * 100)
data, secs = read_all(s)
t.ok(data[:4] == b"\x80\x03\x00\x07" and secs < 10, "SPDY garbage: GOAWAY, closed (%r)" % data[:16])
s.close()
s, resp = upgrade("spdy")
data, secs = read_all(s)
t.ok(1.5 < secs < 20, "SPDY: no streams opened: closed after the setup timeout (%.1fs)" % secs)
s.close()
s, resp = upgrade("spdy")
s.sendall(b"\x80\x03\x00\x01\x00\xff\xff\xff")  # a 16 MiB frame announced
data, secs = read_all(s)
t.ok(data[:4] == b"\x80\x03\x00\x07", "SPDY: an oversized frame: GOAWAY (%r)" % data[:16])
s.close()
# WebSocket v4 by hand: stdout on channel 1, the status on channel 3, a normal close
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(("GET /api/v1/namespaces/default/pods/web/exec?command=echo&command=hi&stdout=true&container=main "
           "HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n").encode())
data, secs = read_all(s)
s.close()
head, _, body = data.partition(b"\r\n\r\n")
t.ok(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head and b"Sec-WebSocket-Protocol: v4.channel.k8s.io" in head,
     "WebSocket: the RFC 6455 accept key, v4 chosen")
t.ok(body.startswith(b"\x82\x04\x01hi\n") and b"\x03{\"metadata\":{},\"status\":\"Success\"}" in body
     and body.endswith(b"\x88\x02\x03\xe8"), "WebSocket v4: stdout, the Success status, close 1000 (%r)" % body)

# the kubelet's refusal after the upgrade (a container waiting to start): a Failure status
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(("GET /api/v1/namespaces/default/pods/waiting/exec?command=true&stdout=true "
           "HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n").encode())
data, secs = read_all(s)
s.close()
t.ok(b'\x03{"kind":"Status"' in data and b'"status":"Failure"' in data
     and b'is waiting to start' in data and b'"code":400' in data,
     "exec into a container waiting to start: a Failure status on channel 3 (%r)" % data[-160:])

# SPDY by hand (header blocks through zlib with the SPDY/3 dictionary, taken from spdy.c)
with open(os.path.join(ctest.SRC, "src", "lib", "spdy.c")) as f:
    src = f.read()
lit = src[src.index("spdy_dict[] =") + len("spdy_dict[] ="):src.index(";", src.index("spdy_dict[] ="))]
spdy_dict = eval("b" + " b".join(l.strip() for l in lit.strip().splitlines()))


def syn(z, sid, stype):
    raw = struct.pack("!I", 1) + struct.pack("!I", 10) + b"streamtype" + struct.pack("!I", len(stype)) + stype
    blk = z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)
    return struct.pack("!HHI", 0x8003, 1, 10 + len(blk)) + struct.pack("!IIH", sid, 0, 0) + blk


def frames(data):
    """(type or 'data', stream id, flags, payload) of each frame."""
    out = []
    while len(data) >= 8:
        w0, w1 = struct.unpack("!II", data[:8])
        n = w1 & 0xffffff
        payload = data[8:8 + n]
        if w0 & 0x80000000:
            out.append((w0 & 0xffff, struct.unpack("!I", payload[:4])[0] & 0x7fffffff if len(payload) >= 4 else 0,
                        w1 >> 24, payload))
        else:
            out.append(("data", w0, w1 >> 24, payload))
        data = data[8 + n:]
    return out


t.is_(len(spdy_dict), 1423, "the SPDY/3 dictionary")
s, resp = upgrade("spdy", "exec?command=echo&command=hi&stdout=true&stderr=true")
z = zlib.compressobj(zdict=spdy_dict)
s.sendall(syn(z, 1, b"error") + syn(z, 3, b"stdout") + syn(z, 5, b"stderr") + syn(z, 7, b"bogus"))
data, secs = read_all(s)
s.close()
fr = frames(data)
t.ok([f[:2] for f in fr if f[0] == 2] == [(2, 1), (2, 3), (2, 5)], "SPDY: SYN_REPLY for each stream (%r)" % fr[:4])
t.ok((3, 7) in [f[:2] for f in fr], "SPDY: an unknown stream type is reset")
t.ok(("data", 3, 0, b"hi\n") in fr and ("data", 1, 1, b'{"metadata":{},"status":"Success"}') in fr
     and fr[-1][0] == 7, "SPDY: stdout, the Success status with FIN, GOAWAY")
s, resp = upgrade("spdy", "exec?command=sleep&command=100&stdout=true")
z = zlib.compressobj(zdict=spdy_dict)
s.sendall(b"".join(syn(z, 2 * i + 1, b"bogus") for i in range(20)))
data, secs = read_all(s)
s.close()
fr = frames(data)
t.ok(fr and fr[-1][0] == 7 and fr[-1][3][4:8] == b"\0\0\0\1", "SPDY: too many streams: GOAWAY PROTOCOL_ERROR")

# a client that reads nothing (nor sends): the server's side of its connection goes (the
# session ends at the output cap, 8 MiB, or at the stream's timeout, whichever comes first)
s, resp = upgrade("ws", "exec?command=sh&command=-c&command=yes%20|%20head%20-c%2050000000&stdout=true")
me = s.getsockname()[1]
t0 = time.time()
closed = c.wait_for(lambda: subprocess.run(["ss", "-tnH", "state", "established", "( dport = :%d )" % me],
                                           capture_output=True, text=True).stdout.strip() == "",
                    timeout=60, interval=0.5)
t.ok(closed, "a WebSocket client that reads nothing is cut (%.1fs)" % (time.time() - t0))
s.close()
t.is_(http(logs_url + "?container=side"), (200, "from-side\n"), "the daemon still serves")
t.ok(c.api.alive(), "apiserver alive")

# ---- over TLS (ALPN: h2 for the reads, http/1.1 for the upgrades), with the policy ----
port2 = ctest.free_port()
addr2 = "127.0.0.1:%d" % port2
pki = os.path.join(c.dir, "pki")
c.certs(pki, "-n", "node2", "-s", addr2)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write("tok-bob,bob,1001\n")
policy = os.path.join(c.dir, "policy")
with open(os.path.join(ctest.SRC, "conf", "policy")) as src, open(policy, "w") as dst:
    dst.write(src.read() + "bind view user:bob\n")
tls = c.start("apiserver-tls", [c.bin("coracle-apiserver"), "--listen", addr2,
                                "--data-dir", os.path.join(c.dir, "data-tls"),
                                "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                                "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                                "--client-ca-file", os.path.join(pki, "ca.crt"),
                                "--token-auth-file", tokens, "--authorization-policy-file", policy])
root2 = os.path.join(c.dir, "kroot2")
c.on_teardown(lambda: ctest.node_cleanup(root2, os.path.join(root2, "runc")))
klet.import_busybox(t, root2)
c.start("kubelet-node2", [c.bin("coracle-kubelet"), "--server", addr2, "--node-name", "node2",
                          "--root-dir", root2, "--healthz-listen", "",
                          "--certificate-authority", os.path.join(pki, "ca.crt"),
                          "--client-certificate", os.path.join(pki, "kubelet-node2.crt"),
                          "--client-key", os.path.join(pki, "kubelet-node2.key")])
admin = ["--server", "https://" + addr2, "--certificate-authority", os.path.join(pki, "ca.crt"),
         "--client-certificate", os.path.join(pki, "admin.crt"), "--client-key", os.path.join(pki, "admin.key")]


def ctl2(*args, stdin=None):
    return c.ctl(*(admin + list(args)), stdin=stdin, server=False)


c.wait_for(lambda: ctl2("get", "no", "node2")[0] == 0, timeout=ctest.DEADLINE)
rc, out, err = ctl2("apply", "-f", "-", stdin="apiVersion: v1\nkind: Pod\nmetadata: {name: tls}\nspec:\n"
                    "  nodeName: node2\n  containers:\n  - name: c\n    image: progrium/busybox\n"
                    "    imagePullPolicy: IfNotPresent\n    command: [sh, -c, 'echo over-tls; exec sleep 1000']\n")
t.is_(rc, 0, "TLS: pod created (%s)" % err.strip())
c.wait_for(lambda: "Running" in ctl2("get", "po", "tls")[1], timeout=ctest.DEADLINE)
for kc, name in zip(kubectl_list, ("1.32", "1.20")):
    if not kc:
        t.skip("kubectl %s not on this machine" % name, 4)
        continue
    env = dict(kenv, KUBECONFIG=os.path.join(pki, "admin.kubeconfig"))

    def k2(*args, stdin=None, env=env):
        p = subprocess.run([kc, "--cache-dir", os.path.join(home, "tls" + name)] + list(args), env=env,
                           capture_output=True, text=True, timeout=60, input=stdin)
        return p.returncode, p.stdout, p.stderr

    c.wait_for(lambda: k2("logs", "tls")[1] == "over-tls\n", timeout=ctest.DEADLINE)
    t.is_(k2("logs", "tls")[:2], (0, "over-tls\n"), "%s over TLS: logs" % name)
    rc, out, err = k2("exec", "-i", "tls", "--", "sh", "-c", "cat; exit 5", stdin="through tls\n")
    t.is_((rc, out), (5, "through tls\n"), "%s over TLS: exec -i, exit code 5 (%s)" % (name, err.strip()))
    bob = dict(kenv)
    bob_args = ["--server", "https://" + addr2, "--certificate-authority", os.path.join(pki, "ca.crt"),
                "--token", "tok-bob"]
    rc, out, err = k2(*(bob_args + ["logs", "tls"]), env=bob)
    t.is_((rc, out), (0, "over-tls\n"), "%s over TLS: a viewer may read logs" % name)
    rc, out, err = k2(*(bob_args + ["exec", "tls", "--", "true"]), env=bob)
    t.ok(rc != 0 and "forbidden" in err.lower() and "pods/exec" in err,
         "%s over TLS: a viewer may not exec (%s)" % (name, err.strip()))
t.done()
