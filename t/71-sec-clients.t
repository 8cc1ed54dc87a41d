#!/usr/bin/python3
# The clients of an authenticated apiserver (TLS, client CA, static tokens,
# conf/policy), with certificates from contrib/certs: coraclectl's
# kubeconfig habits (--kubeconfig, CORACLE_CONFIG, ~/.config/coracle/config
# with paths relative to it, --certificate-authority/--client-certificate/
# --client-key/--token flags, https:// servers, get --raw and -w over TLS)
# and kubectl's texts for TLS, 401 and 403 failures; coracle-scheduler
# binding a pod with its certificate (and not without one). Node
# restriction of kubelet certificates is t/70-sec-tls.t's.
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest

SRC = ctest.SRC
t = ctest.Tap()
c = ctest.Cluster(t)
port = ctest.free_port()
port2 = ctest.free_port()
addr = "127.0.0.1:%d" % port
pki = os.path.join(c.dir, "pki")
other = os.path.join(c.dir, "other")
for d in (pki, other):
    c.certs(d, "-n", "n1", "-s", addr)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write("tok-bob,bob,1001\ntok-carl,carl,1002\n")
policy = os.path.join(c.dir, "policy")
shutil.copy(os.path.join(SRC, "conf", "policy"), policy)
with open(policy, "a") as f:
    f.write("bind view user:bob\n")
api = c.start("apiserver", [c.bin("coracle-apiserver"), "--listen", addr,
                            # a second address its certificate does not name
                            "--listen", "127.0.0.2:%d" % port2,
                            "--data-dir", os.path.join(c.dir, "data"),
                            "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                            "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                            "--client-ca-file", os.path.join(pki, "ca.crt"),
                            "--token-auth-file", tokens, "--authorization-policy-file", policy])


def https_ready():
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as ss:
                ss.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return ss.recv(100).startswith(b"HTTP/1.1 200")
    except OSError:
        if not api.alive():
            t.bail("apiserver exited:\n" + api.tail())
        return False


if not c.wait_for(https_ready, timeout=ctest.DEADLINE, interval=0.1):
    t.bail("apiserver not ready over TLS:\n" + api.tail())

# coraclectl with a clean environment: no config but what each test gives
home = os.path.join(c.dir, "home")
os.makedirs(home)
base_env = {k: v for k, v in os.environ.items() if not k.startswith("CORACLE_")}
base_env["HOME"] = home


def ctl(*args, env=None, stdin=None):
    e = dict(base_env, **(env or {}))
    p = subprocess.run([c.bin("coraclectl")] + list(args), env=e, input=stdin, capture_output=True,
                       text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def P(*x):
    return os.path.join(pki, *x)


admin = ["--kubeconfig", P("admin.conf")]
POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n  - name: a\n    image: busybox\n"

# ---- the admin certificate (CN admin, O system:masters) ----
t.is_(ctl(*admin, "apply", "-f", "-", stdin=POD % "web"), (0, "pod/web created\n", ""),
      "--kubeconfig admin.conf: apply over TLS with the admin certificate")
t.is_(ctl(*admin, "get", "po", "web", "-o", "name")[:2], (0, "pod/web\n"), "... and get")
t.is_(ctl("get", "po", "web", "-o", "name", env={"CORACLE_CONFIG": P("admin.conf")})[:2], (0, "pod/web\n"),
      "CORACLE_CONFIG names the config file")
# ~/.config/coracle/config with paths relative to it (kubeconfig's rule)
cfgdir = os.path.join(home, ".config", "coracle")
os.makedirs(os.path.join(cfgdir, "certs"))
for f in ("ca.crt", "admin.crt", "admin.key"):
    shutil.copy(P(f), os.path.join(cfgdir, "certs", f))
with open(os.path.join(cfgdir, "config"), "w") as f:
    f.write("server = https://localhost:%d\ncertificate-authority = certs/ca.crt\n"
            "client-certificate = certs/admin.crt\nclient-key = certs/admin.key\n" % port)
t.is_(ctl("get", "po", "web", "-o", "name")[:2], (0, "pod/web\n"),
      "~/.config/coracle/config: https://localhost, relative paths, the certificate names localhost")
os.rename(os.path.join(cfgdir, "config"), os.path.join(cfgdir, "config.off"))
t.is_(ctl("--server", "https://127.0.0.1:%d" % port, "--certificate-authority", P("ca.crt"),
          "--client-certificate", P("admin.crt"), "--client-key", P("admin.key"), "get", "po", "web", "-o", "name")[:2],
      (0, "pod/web\n"), "the same from flags alone")
t.is_(ctl(*admin, "get", "--raw", "/healthz")[:2], (0, "ok\n"), "get --raw /healthz over TLS")
rc, out, err = ctl(*admin, "get", "--raw", "/metrics")
t.ok(rc == 0 and "coracle_" in out, "get --raw /metrics over TLS (%s)" % err.strip())
rc, out, err = ctl(*admin, "version")
t.like(out, "Server: 127.0.0.1:%d (reachable)" % port, "version: reachable over TLS")

# get -w over TLS: the list, then a change
w = subprocess.Popen([c.bin("coraclectl")] + admin + ["get", "po", "-w"], env=base_env, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
guard = threading.Timer(ctest.DEADLINE, w.kill)  # a hung watch fails the test instead of hanging it
guard.start()
try:
    head = w.stdout.readline()
    row = w.stdout.readline()
    ctl(*admin, "apply", "-f", "-", stdin=POD % "web2")
    row2 = w.stdout.readline()
    t.ok(head.startswith("NAME") and row.startswith("web ") and row2.startswith("web2 "),
         "get -w over TLS: list then watch (%r %r %r)" % (head, row, row2))
finally:
    guard.cancel()
    w.kill()
    w.wait()

# ---- failures in kubectl's words ----
t.is_(ctl("--server", addr, "--certificate-authority", P("ca.crt"), "get", "po"),
      (1, "", "error: You must be logged in to the server (Unauthorized)\n"),
      "TLS without a certificate or token: kubectl's Unauthorized")
t.is_(ctl("--server", addr, "--certificate-authority", P("ca.crt"), "--token", "nope", "get", "po")[2],
      "error: You must be logged in to the server (Unauthorized)\n", "an unknown token: Unauthorized")
t.is_(ctl(*admin, "--certificate-authority", os.path.join(other, "ca.crt"), "get", "po"),
      (1, "", "Unable to connect to the server: x509: certificate signed by unknown authority\n"),
      "a CA that did not sign the server's certificate: unknown authority")
t.is_(ctl(*admin, "--certificate-authority", os.path.join(other, "ca.crt"), "get", "--raw", "/healthz")[2],
      "Unable to connect to the server: x509: certificate signed by unknown authority\n",
      "... also for get --raw")
t.is_(ctl(*admin, "--client-certificate", os.path.join(other, "admin.crt"), "--client-key",
          os.path.join(other, "admin.key"), "get", "po")[2],
      "Unable to connect to the server: remote error: tls: unknown certificate authority\n",
      "a client certificate from another CA: the server's alert")
rc, out, err = ctl("--server", "127.0.0.2:%d" % port2, "--certificate-authority", P("ca.crt"),
                   "--token", "tok-bob", "get", "po")
t.ok(rc == 1 and err.startswith("Unable to connect to the server: x509: certificate is valid for 127.0.0.1, ")
     and err.endswith(", not 127.0.0.2\n"), "an address the certificate does not name (%s)" % err.strip())
rc, out, err = ctl("--server", addr, "get", "po")
t.ok(rc == 1 and err.startswith("Unable to connect to the server %s" % addr) and "want TLS?" in err,
     "cleartext to the TLS port: no connection, a hint (%s)" % err.strip())
free = ctest.free_port()
t.is_(ctl(*admin, "--server", "127.0.0.1:%d" % free, "get", "po")[2],
      "The connection to the server 127.0.0.1:%d was refused - did you specify the right host or port?\n" % free,
      "TLS client, nothing listening: refused, as without TLS")
rc, out, err = ctl("--kubeconfig", os.path.join(c.dir, "nope.conf"), "get", "po")
t.ok(rc == 1 and "error: stat %s: No such file or directory" % os.path.join(c.dir, "nope.conf") in err,
     "--kubeconfig naming no file: an error (%s)" % err.strip())
rc, out, err = ctl("--server", addr, "--client-certificate", P("admin.crt"), "--client-key", P("admin.key"), "get", "po")
t.ok(rc == 1 and "certificate-authority" in err, "a client certificate without a CA: told (%s)" % err.strip())
rc, out, err = ctl(*admin, "--certificate-authority", os.path.join(c.dir, "missing.crt"), "get", "po")
t.ok(rc == 1 and "missing.crt" in err, "an unreadable CA file is named (%s)" % err.strip())

# ---- bob: a token with the view role ----
bob = ["--server", addr, "--certificate-authority", P("ca.crt"), "--token", "tok-bob"]
t.is_(ctl(*bob, "get", "po", "web", "-o", "name")[:2], (0, "pod/web\n"), "bob (view) may read")
t.is_(ctl("--server", addr, "--certificate-authority", P("ca.crt"), "get", "po", "web", "-o", "name",
          env={"CORACLE_TOKEN": "tok-bob"})[:2], (0, "pod/web\n"), "the token from CORACLE_TOKEN")
t.is_(ctl(*bob, "create", "-f", "-", stdin=POD % "x"),
      (1, "", 'Error from server (Forbidden): error when creating "STDIN": pods "x" is forbidden: User "bob" '
              'cannot create resource "pods" in API group "" in the namespace "default"\n'),
      "bob may not create: kubectl's Forbidden text")
rc, out, err = ctl(*bob, "delete", "po", "web")
t.ok(rc == 1 and 'Error from server (Forbidden): pods "web" is forbidden: User "bob" cannot delete resource "pods"' in err,
     "bob may not delete (%s)" % err.strip())
t.is_(ctl(*admin, "get", "po", "x")[2], 'Error from server (NotFound): pods "x" not found\n', "... nothing was created")
t.is_(ctl("--server", addr, "--certificate-authority", P("ca.crt"), "--token", "tok-carl", "get", "po", "web"),
      (1, "", 'Error from server (Forbidden): pods "web" is forbidden: User "carl" cannot get resource "pods" '
              'in API group "" in the namespace "default"\n'), "carl (no role) may not even get")

# ---- the scheduler ----
NODE = ("apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nstatus:\n"
        "  capacity: {cpu: \"4\", memory: 8Gi, pods: \"110\"}\n"
        "  allocatable: {cpu: \"4\", memory: 8Gi, pods: \"110\"}\n"
        "  conditions: [{type: Ready, status: \"True\"}]\n")
t.is_(ctl(*admin, "apply", "-f", "-", stdin=NODE)[:2], (0, "node/n1 created\n"), "a Node n1 (no kubelet)")
ctl(*admin, "delete", "po", "web", "web2", "--grace-period", "0")
ctl(*admin, "apply", "-f", "-", stdin=POD % "sched-me")


def node_of(name):
    rc, out, _ = ctl(*admin, "get", "po", name, "-o", "json")
    return json.loads(out).get("spec", {}).get("nodeName") if rc == 0 else None


nocert = c.start("scheduler-nocert", [c.bin("coracle-scheduler"), "--server", addr, "--healthz-listen", "",
                                      "--certificate-authority", P("ca.crt")])
c.wait_for(lambda: "Unauthorized" in nocert.tail(), timeout=ctest.DEADLINE)
t.like(nocert.tail(), "Unauthorized", "a scheduler without its certificate is refused")
t.is_(node_of("sched-me"), None, "... and binds nothing")
nocert.stop()
sched = c.start("scheduler", [c.bin("coracle-scheduler"), "--config", P("scheduler.conf"), "--healthz-listen", ""])
t.is_(c.wait_for(lambda: node_of("sched-me"), timeout=ctest.DEADLINE), "n1",
      "coracle-scheduler with scheduler.conf (CN system:kube-scheduler) binds the pod over TLS")
rc, out, err = ctl(*admin, "get", "ev", "--field-selector", "involvedObject.name=sched-me")
t.like(out, "Successfully assigned default/sched-me to n1", "... and posts its Scheduled event")
t.like(sched.tail(), "(TLS)", "the scheduler says it speaks TLS")
t.ok(api.alive() and sched.alive(), "apiserver and scheduler alive")
t.done()
