#!/usr/bin/python3
# A stock informer, @kubernetes/client-node's ListWatch (t/js/informer.mjs,
# pinned by t/js/package-lock.json; contrib/install-deps runs npm ci), on a
# TLS apiserver with the kubeconfig contrib/certs writes: it sees the adds,
# updates and deletes made over gRPC, re-watches without a relist when the
# server ends its watch (timeoutSeconds), and relists after 410 Expired
# (its resourceVersion compacted away). LISTs are counted in /metrics.
import os
import re
import select
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import grpc
from ctest import meta, simple_pod

t = ctest.Tap()
JS = os.path.abspath(os.path.join(ctest.SRC, "t", "js"))
node = shutil.which("node")
if not node:
    t.skip_all("node not installed")
if not os.path.isdir(os.path.join(JS, "node_modules", "@kubernetes", "client-node")):
    t.skip_all("t/js/node_modules absent (contrib/install-deps runs npm ci there)")
chk = subprocess.run([node, os.path.join(JS, "informer.mjs"), "--check"], capture_output=True, text=True)
if chk.returncode != 0:
    t.skip_all("@kubernetes/client-node does not load on this node: " + chk.stderr.strip()[-200:])
if not shutil.which("curl"):
    t.skip_all("curl not installed")

c = ctest.Cluster(t)
pb = c.pb
port = ctest.free_port()
addr = "127.0.0.1:%d" % port
pki = os.path.join(c.dir, "pki")
c.certs(pki, "-n", "n1", "-s", addr)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write('tok-admin,admin,1000,"system:masters"\n')
sock = os.path.join(c.dir, "api.sock")
api = c.start("apiserver", [c.bin("coracle-apiserver"), "--listen", addr, "--listen", "unix:" + sock,
                            "--data-dir", os.path.join(c.dir, "data"), "--compact-keep", "10",
                            "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                            "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                            "--client-ca-file", os.path.join(pki, "ca.crt"), "--token-auth-file", tokens])
admin = ["--cacert", os.path.join(pki, "ca.crt"), "--cert", os.path.join(pki, "admin.crt"),
         "--key", os.path.join(pki, "admin.key")]


def metrics():
    p = subprocess.run(["curl", "-s", "--max-time", "10"] + admin + ["https://%s/metrics" % addr],
                       capture_output=True, text=True)
    return p.stdout


def ready():
    if not api.alive():
        t.bail("apiserver exited:\n" + api.tail())
    return "coracle_apiserver" in metrics()


if not c.wait_for(ready, timeout=ctest.DEADLINE, interval=0.1):
    t.bail("apiserver not ready:\n" + api.tail())

# gRPC over the unix socket, with a bearer token
channel = grpc.insecure_channel("unix:" + sock)
c.on_teardown(channel.close)
AUTH = [("authorization", "Bearer tok-admin")]


def call(method, req, resp=pb.Pod):
    fn = channel.unary_unary("/coracle.v1.Pods/" + method, request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=resp.FromString)
    return fn(req, timeout=ctest.DEADLINE, metadata=AUTH)


def lists():
    """LISTs the apiserver answered 200 over REST."""
    m = re.search(r'coracle_apiserver_rest_requests_total\{verb="list",code="200"\} (\d+)', metrics())
    return int(m.group(1)) if m else 0


class Informer:
    def __init__(self):
        self.p = subprocess.Popen([node, os.path.join(JS, "informer.mjs"), os.path.join(pki, "admin.kubeconfig"),
                                   "default", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  cwd=c.dir)
        c.on_teardown(self.stop)
        self.buf = b""
        self.lines = []

    def read(self, timeout):
        if select.select([self.p.stdout], [], [], timeout)[0]:
            d = os.read(self.p.stdout.fileno(), 65536)
            if not d:
                return False
            self.buf += d
            while b"\n" in self.buf:
                ln, _, self.buf = self.buf.partition(b"\n")
                self.lines.append(ln.decode())
        return True

    def wait(self, fn, timeout=ctest.DEADLINE):
        """Reads until fn(lines) holds; returns whether it did."""
        end = time.time() + timeout
        while not fn(self.lines):
            if time.time() > end or not self.read(min(1, max(0, end - time.time()))):
                return fn(self.lines)
        return True

    def events(self):
        return [ln for ln in self.lines if ln != "CONNECT"]

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


call("Create", pb.Pod(metadata=meta("a", "default"), spec=pb.PodSpec(containers=[pb.Container(name="c", image="busybox")])))
inf = Informer()
t.ok(inf.wait(lambda ls: "ADD a" in ls), "the informer lists: ADD a (%s)" % inf.lines)

call("Create", simple_pod("b"))
t.ok(inf.wait(lambda ls: "ADD b" in ls), "a pod created over gRPC: ADD b")
p = call("Get", pb.GetRequest(namespace="default", name="b"))
p.metadata.labels["x"] = "1"
call("Update", p)
t.ok(inf.wait(lambda ls: 'UPDATE b {"x":"1"}' in ls), "updated over gRPC: UPDATE b with its label")
call("Delete", pb.DeleteRequest(namespace="default", name="b", gracePeriodSeconds=0))
t.ok(inf.wait(lambda ls: "DELETE b" in ls), "deleted over gRPC: DELETE b")

# the server ends each watch after 1 s (timeoutSeconds): re-watches, no relist
n = inf.lines.count("CONNECT")
t.ok(inf.wait(lambda ls: ls.count("CONNECT") >= n + 2), "the server ended its watch twice; it watched again")
call("Create", simple_pod("c"))
t.ok(inf.wait(lambda ls: "ADD c" in ls), "then ADD c, from the next watch")
t.is_(lists(), 1, "one LIST: the server-closed watches were resumed, not relisted")

# 410: its resourceVersion compacted away (--compact-keep 10) by writes it does not watch
for i in range(12):
    call("Create", simple_pod("o%d" % i, ns="other"))
t.ok(inf.wait(lambda ls: lists() >= 2), "after 410 Expired the informer relists (%d LISTs)" % lists())
call("Create", simple_pod("d"))
t.ok(inf.wait(lambda ls: "ADD d" in ls), "and goes on: ADD d")
inf.stop()
t.is_(inf.events(), ["ADD a", "ADD b", 'UPDATE b {"x":"1"}', "DELETE b", "ADD c", "ADD d"],
      "exactly the events made, each once: no error, no replay after the relist")
err = inf.p.stderr.read().decode()
t.is_(err, "", "nothing on the informer's stderr")
t.done()
