#!/usr/bin/python3
# A node joins with a bootstrap token and renews its certificate: coraclectl
# token create|list|delete; a kubelet given only --server, --token and
# --ca-cert-hash pins the CA, sends its CSR, gets it approved (csrapproving)
# and signed (csrsigning), registers its Node and runs a pod (runc); a
# second start needs no token; a wrong CA hash, an expired token and a CSR
# for another node's name are refused with messages saying which; the
# tokencleaner deletes the expired token; with one-minute certificates the
# kubelet renews its own, the pod keeps running and no call fails.
import base64, os, re, shutil, signal, socket, ssl, stat, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import grpc

import klet

SRC = ctest.SRC
t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "52-kubelet-join")
pb = c.pb
pki = os.path.join(c.dir, "pki")
port = ctest.free_port()
addr = "127.0.0.1:%d" % port
c.certs(pki, "-n", "n1", "-s", addr, "--days", "20")  # due for renewal: within 90 days
policy = os.path.join(c.dir, "policy")
shutil.copy(os.path.join(SRC, "conf", "policy"), policy)
api = c.start("apiserver", [c.bin("coracle-apiserver"), "--listen", addr,
                            "--data-dir", os.path.join(c.dir, "data"),
                            "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                            "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                            "--client-ca-file", os.path.join(pki, "ca.crt"),
                            "--authorization-policy-file", policy] + c.store_args())
c.api_addr = addr


def rd(*p):
    with open(os.path.join(*p), "rb") as f:
        return f.read()


def https_get(path):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as ss:
            ss.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
            data = b""
            while True:
                b = ss.recv(65536)
                if not b:
                    break
                data += b
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body.decode()


def ready():
    try:
        return https_get("/readyz")[0] == 200
    except OSError:
        return False


if not c.wait_for(ready, timeout=ctest.DEADLINE):
    t.bail("apiserver not ready:\n" + api.tail())

# ---- the control plane's certificates: expiry as a metric, a warning 30 days before, renew


def expiry_metrics():
    st, body = https_get("/metrics")
    return {m.group(1) + " " + m.group(2): int(m.group(3)) for m in re.finditer(
        r'^coracle_certificate_expiration_timestamp_seconds\{file="[^"]*/(\w+\.crt)",subject="/CN=([\w-]+)"\} (\d+)$',
        body, re.M)}


exp0 = expiry_metrics()
t.ok(set(exp0) == {"apiserver.crt coracle-apiserver", "apiserver.crt coracle-ca", "ca.crt coracle-ca"}
     and 19 * 86400 < exp0["apiserver.crt coracle-apiserver"] - time.time() < 21 * 86400,
     "/metrics: coracle_certificate_expiration_timestamp_seconds of the serving chain and client CA: %s" % exp0)
t.ok(re.search(r"warn: certificate /CN=coracle-apiserver in \S+apiserver.crt expires in (19|20) days", api.tail(20)),
     "the apiserver warns of a certificate expiring within 30 days")
ca0 = rd(pki, "ca.crt")
r = subprocess.run([os.path.join(SRC, "contrib", "certs"), "renew", "-d", pki], capture_output=True, text=True)
t.ok(r.returncode == 0 and "renewed %s/apiserver.crt" % pki in r.stdout and "renewed %s/kubelet-n1.crt" % pki in r.stdout
     and "ca.crt" not in r.stdout and rd(pki, "ca.crt") == ca0, "contrib/certs renew: what expires within 90 days, the CA kept")
r2 = subprocess.run([os.path.join(SRC, "contrib", "certs"), "renew", "-d", pki], capture_output=True, text=True)
t.ok(r2.returncode == 0 and "renewed" not in r2.stdout, "renew again: nothing due")
v = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(pki, "ca.crt"), os.path.join(pki, "admin.crt")],
                   capture_output=True, text=True)
t.ok(v.returncode == 0, "a renewed certificate verifies against the same CA")
api.proc.send_signal(signal.SIGHUP)
exp1 = c.wait_for(lambda: (lambda e: e if e.get("apiserver.crt coracle-apiserver", 0) > time.time() + 300 * 86400 else None)(expiry_metrics()),
                  timeout=ctest.DEADLINE)
t.ok(exp1, "after SIGHUP the metric shows the renewed certificate: %s" % exp1)

cl = ctest.Client.__new__(ctest.Client)
cl.addr = addr
cl.channel = grpc.secure_channel(addr, grpc.ssl_channel_credentials(
    root_certificates=rd(pki, "ca.crt"), private_key=rd(pki, "admin.key"),
    certificate_chain=rd(pki, "admin.crt")))
c.clients.append(cl)
admin_conf = os.path.join(pki, "admin.conf")


def ctl(*args):
    return c.ctl("--kubeconfig", admin_conf, *args, server=False)


def start_cm(controllers):
    return c.start("controller-manager", [
        c.bin("coracle-controller-manager"), "--config", os.path.join(pki, "controller-manager.conf"),
        "--healthz-listen", "", "--leader-elect=false", "--controllers", controllers,
        "--cluster-signing-cert-file", os.path.join(pki, "ca.crt"),
        "--cluster-signing-key-file", os.path.join(pki, "ca.key"),
        "--cluster-signing-duration", "1m"])


cm = start_cm("csrapproving,csrsigning")

# ---- coraclectl token create / list
rc, out, err = ctl("token", "create", "--ttl", "1h", "--description", "join test")
t.is_(rc, 0, "token create: %s" % err.strip())
lines = out.strip().splitlines()
token = lines[0] if lines else ""
t.ok(re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", token), "token <6>.<16>: %s" % token)
m = re.fullmatch(r"coracle-kubelet --server https://(\S+) --token (\S+) --ca-cert-hash (sha256:[0-9a-f]{64})",
                 lines[1] if len(lines) > 1 else "")
t.ok(m and m.group(1) == addr and m.group(2) == token, "the join command: %s" % (lines[1:] or ""))
cahash = m.group(3) if m else ""
spki = subprocess.run("openssl x509 -pubkey -noout -in %s | openssl pkey -pubin -outform der | sha256sum"
                      % os.path.join(pki, "ca.crt"), shell=True, capture_output=True, text=True).stdout.split()[0]
t.is_(cahash, "sha256:" + spki, "--ca-cert-hash is the SHA-256 of the CA's DER SubjectPublicKeyInfo")
tid = token.split(".")[0]
sec = cl.call("Secrets", "Get", pb.GetRequest(namespace="kube-system", name="bootstrap-token-" + tid))
t.ok(sec.type == "bootstrap.kubernetes.io/token" and sec.data["token-secret"] == token.split(".")[1].encode()
     and sec.data["usage-bootstrap-authentication"] == b"true" and sec.data["description"] == b"join test",
     "a Secret bootstrap-token-<id> of type bootstrap.kubernetes.io/token in kube-system")
rc, out, _ = ctl("token", "list")
t.ok(rc == 0 and out.startswith("TOKEN\tTTL\tEXPIRES\tUSAGES\tDESCRIPTION\tEXTRA GROUPS") and token in out
     and "authentication,signing" in out and "join test" in out, "token list with kubeadm's columns:\n" + out)

kroot = root


def kubelet(*extra, name="kubelet-joined", hz=""):
    return c.start(name, [c.bin("coracle-kubelet"), "--server", "https://" + addr, "--node-name", "joined",
                          "--root-dir", kroot, "--healthz-listen", hz] + list(extra))


refused = [0]


def run_kubelet_fails(*extra):
    """A kubelet that must exit: (exit code, its log)."""
    refused[0] += 1
    d = kubelet(*extra, name="kubelet-refused-%d" % refused[0])
    deadline = time.time() + ctest.DEADLINE
    while d.alive() and time.time() < deadline:
        time.sleep(0.1)
    code = d.proc.returncode
    if d.alive():
        d.kill()
    c.daemons.remove(d)
    return code, d.tail(10)


# ---- refusals
code, log = run_kubelet_fails("--token", token, "--ca-cert-hash", "sha256:" + "0" * 64)
t.ok(code not in (0, None) and "presents no CA with --ca-cert-hash sha256:" + "0" * 64 in log,
     "a wrong CA hash is refused, saying so:\n" + log)
t.ok(not os.path.exists(os.path.join(kroot, "pki", "kubelet-client-current.pem")), "nothing stored")

expired = "abcdef.0123456789abcdef"
cl.call("Secrets", "Create", pb.Secret(
    metadata=ctest.meta("bootstrap-token-abcdef", "kube-system"), type="bootstrap.kubernetes.io/token",
    data={"token-id": b"abcdef", "token-secret": b"0123456789abcdef", "expiration": b"2020-01-01T00:00:00Z",
          "usage-bootstrap-authentication": b"true"}))
code, log = run_kubelet_fails("--token", expired, "--ca-cert-hash", cahash)
t.ok(code not in (0, None) and 'bootstrap token "abcdef" has expired' in log,
     "an expired token is refused, saying so:\n" + log)
code, log = run_kubelet_fails("--token", "zzzzzz.0123456789abcdef", "--ca-cert-hash", cahash)
t.ok(code not in (0, None) and 'bootstrap token "zzzzzz" was not found' in log,
     "an unknown (deleted, used up) token is refused, saying so:\n" + log)

rc, _, err = ctl("token", "create", "--groups", "admins")
t.ok(rc != 0 and "each group must start with system:bootstrappers:" in err, "token create --groups checked: " + err.strip())
rc, out, _ = ctl("token", "create", "--usages", "signing")
signing_only = out.split()[0] if rc == 0 and out else ""
code, log = run_kubelet_fails("--token", signing_only, "--ca-cert-hash", cahash)
t.ok(code not in (0, None) and "is not marked usage-bootstrap-authentication=true" in log,
     "a token not for authentication is refused, saying so:\n" + log)

# ---- the join
k = kubelet("--token", token, "--ca-cert-hash", cahash)
node = c.wait_for(lambda: cl.try_call("Nodes", "Get", pb.GetRequest(name="joined"))[0], timeout=ctest.DEADLINE)
t.ok(node is not None, "the joined kubelet registered its Node")
pem = os.path.join(kroot, "pki", "kubelet-client-current.pem")
t.ok(os.path.exists(pem) and stat.S_IMODE(os.stat(pem).st_mode) == 0o600, "key and certificate kept 0600")
subj = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", pem], capture_output=True, text=True).stdout
t.ok("system:nodes" in subj and "system:node:joined" in subj, "certificate for system:node:joined: " + subj.strip())
rc, out, _ = ctl("get", "csr")
t.ok(rc == 0 and re.search(r"^NAME\s+AGE\s+SIGNERNAME\s+REQUESTOR\s+REQUESTEDDURATION\s+CONDITION", out, re.M)
     and re.search(r"^node-csr-\S+\s+\S+\s+kubernetes.io/kube-apiserver-client-kubelet\s+system:bootstrap:%s\s+<none>\s+Approved,Issued" % tid,
                   out, re.M), "get csr: approved and issued for the token's user:\n" + out)

pod = pb.Pod(metadata=ctest.meta("joined-pod", "default"),
             spec=pb.PodSpec(nodeName="joined", terminationGracePeriodSeconds=1, containers=[
                 pb.Container(name="c", image="progrium/busybox", command=["sh", "-c", "sleep 3600"])]))
cl.call("Pods", "Create", pod)


def pod_status():
    p, _ = cl.try_call("Pods", "Get", pb.GetRequest(namespace="default", name="joined-pod"))
    return p.status if p else None


st = c.wait_for(lambda: (lambda s: s if s and s.phase == "Running" else None)(pod_status()), timeout=ctest.DEADLINE)
t.ok(st is not None, "the joined node runs a pod")
started = st.containerStatuses[0].state.running.startedAt.seconds if st and st.containerStatuses else None

# ---- a node asks for another node's name with its own certificate
other = os.path.join(c.dir, "other")
os.makedirs(other)
subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", os.path.join(other, "k"), "-out", os.path.join(other, "csr"),
                "-subj", "/O=system:nodes/CN=system:node:other"], check=True, capture_output=True)
with open(os.path.join(other, "csr.yaml"), "w") as f:
    f.write("apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: steal\n"
            "spec:\n  signerName: kubernetes.io/kube-apiserver-client-kubelet\n  usages: [digital signature, client auth]\n"
            "  request: %s\n" % base64.b64encode(rd(other, "csr")).decode())
rc, out, err = c.ctl("--server", addr, "--certificate-authority", os.path.join(pki, "ca.crt"),
                     "--client-certificate", pem, "--client-key", pem, "apply", "-f", os.path.join(other, "csr.yaml"),
                     server=False)
t.ok(rc != 0 and 'node "joined" may only request a client certificate for its own name' in err
     and "not system:node:other" in err, "a CSR for another node's name is refused, saying so: " + err.strip())

# ---- a second start needs no token
k.stop()
hz = "127.0.0.1:%d" % ctest.free_port()
k = kubelet(hz=hz)
t.ok(c.wait_for(lambda: k.tail(200).count("node joined: server") == 2, timeout=ctest.DEADLINE) is not None
     and k.alive() and "joined: client certificate" not in k.tail(10), "the kubelet starts again with no token")
ttl = c.wait_for(lambda: re.search(r"^coracle_kubelet_certificate_manager_client_ttl_seconds (-?\d+)$",
                                  ctest.http_get(hz, "/metrics")[1] or "", re.M), timeout=ctest.DEADLINE)
t.ok(ttl and 0 < int(ttl.group(1)) <= 60, "kubelet /metrics: the client certificate's TTL (%s s)" % (ttl.group(1) if ttl else None))
lease0 = cl.call("Leases", "Get", pb.GetRequest(namespace="kube-node-lease", name="joined")).spec.renewTime.seconds

# ---- rotation: one-minute certificates, renewed at 70-90 % of their life


def refused_calls():
    """gRPC calls the apiserver refused (UNAUTHENTICATED, PERMISSION_DENIED), from its /metrics."""
    return sum(int(m.group(1)) for m in re.finditer(
        r'^coracle_apiserver_requests_total\{method="[^"]*",code="(?:UNAUTHENTICATED|PERMISSION_DENIED)"\} (\d+)$',
        https_get("/metrics")[1], re.M))


refused0 = refused_calls()
t.ok(refused0 > 0, "the metric counts refusals (the ones above: %d)" % refused0)
serial0 = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", pem], capture_output=True, text=True).stdout
rotated = c.wait_for(lambda: "rotated the client certificate" in k.tail(200), timeout=120, interval=0.5)
t.ok(rotated, "the kubelet renewed its certificate:\n" + k.tail(8))
serial1 = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", pem], capture_output=True, text=True).stdout
t.ok(serial0 != serial1 and serial1, "the certificate on disk changed (%s -> %s)" % (serial0.strip(), serial1.strip()))
rc, out, _ = ctl("get", "csr")
t.ok(re.search(r"\s+system:node:joined\s+<none>\s+Approved,Issued", out),
     "the renewal was approved as the node's own:\n" + out)
# the new certificate carries the next heartbeats
t.ok(c.wait_for(lambda: cl.call("Leases", "Get", pb.GetRequest(namespace="kube-node-lease", name="joined"))
                .spec.renewTime.seconds > lease0 + 10, timeout=ctest.DEADLINE), "the Lease is still renewed")
st = pod_status()
t.ok(st and st.phase == "Running" and st.containerStatuses[0].restartCount == 0 and
     st.containerStatuses[0].state.running.startedAt.seconds == started, "the pod kept running, not restarted")
t.ok(not re.search(r"UNAUTHENTICATED|PERMISSION_DENIED|Unauthorized|renewal failed", k.tail(400)),
     "no call of the kubelet failed")
t.is_(refused_calls(), refused0, "the apiserver refused no call meanwhile (its metrics)")

# ---- anything else waits for an administrator: kubectl (REST /approval) and coraclectl


def user_csr(name, cn):
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", os.path.join(other, name + ".key"), "-out", os.path.join(other, name + ".csr"),
                    "-subj", "/CN=" + cn], check=True, capture_output=True)
    y = ("apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: %s\n"
         "spec:\n  signerName: kubernetes.io/kube-apiserver-client\n  expirationSeconds: 86400\n"
         "  usages: [client auth]\n  request: %s\n" % (name, base64.b64encode(rd(other, name + ".csr")).decode()))
    return c.ctl("--kubeconfig", admin_conf, "apply", "-f", "-", stdin=y, server=False)


def csr_get(name):
    return cl.try_call("CertificateSigningRequests", "Get", pb.GetRequest(name=name))[0]


rc, _, err = user_csr("alice", "alice")
t.is_(rc, 0, "a client certificate request for alice: " + err.strip())
time.sleep(1)
a = csr_get("alice")
t.ok(a and a.spec.username == "admin" and "system:masters" in a.spec.groups and not a.status.conditions,
     "the requester recorded, not approved by the controller")
rc, out, _ = ctl("get", "csr", "alice")
t.ok(re.search(r"^alice\s+\S+\s+kubernetes.io/kube-apiserver-client\s+admin\s+24h\s+Pending$", out, re.M),
     "get csr: Pending, 24h asked:\n" + out)
kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if os.access(kubectl, os.X_OK):
    home = os.path.join(c.dir, "khome")
    os.makedirs(home)
    kenv = {kk: v for kk, v in os.environ.items() if not kk.startswith("KUBE")}
    kenv.update(HOME=home, KUBECONFIG=os.path.join(pki, "admin.kubeconfig"))
    p = subprocess.run([kubectl, "certificate", "approve", "alice"], env=kenv, capture_output=True, text=True, timeout=60)
    t.ok(p.returncode == 0 and "certificatesigningrequest.certificates.k8s.io/alice approved" in p.stdout,
         "kubectl certificate approve over REST: %r %r" % (p.stdout, p.stderr))
else:
    rc, out, _ = ctl("certificate", "approve", "alice")
    t.ok(rc == 0, "kubectl 1.32 not installed: coraclectl certificate approve")
a = c.wait_for(lambda: (lambda x: x if x and x.status.certificate else None)(csr_get("alice")), timeout=ctest.DEADLINE)
t.ok(a and [x.type for x in a.status.conditions] == ["Approved"] and a.status.conditions[0].reason == "KubectlApprove"
     and b"BEGIN CERTIFICATE" in a.status.certificate, "approved by hand, then signed")
rc, _, err = ctl("certificate", "deny", "--force", "alice")
t.ok(rc != 0 and "Approved and Denied conditions are mutually exclusive" in err,
     "an approved request cannot be denied as well: " + err.strip())
a.status.certificate = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
_, e = cl.try_call("CertificateSigningRequests", "UpdateStatus", a)
t.ok(e and "updates may not modify existing certificate content" in e.message,
     "the issued certificate cannot be replaced: %s" % (e.message if e else None))
rc, _, err = user_csr("mallory", "mallory")
rc, out, _ = ctl("certificate", "deny", "mallory")
t.is_(out.strip(), "certificatesigningrequest.certificates.k8s.io/mallory denied", "coraclectl certificate deny")
time.sleep(1)
m = csr_get("mallory")
t.ok(m and [x.type for x in m.status.conditions] == ["Denied"] and not m.status.certificate, "denied: never signed")
rc, _, err = ctl("certificate", "approve", "mallory")
t.ok(rc != 0 and "already Denied" in err, "a denied request is not approved: " + err.strip())

# ---- the token cleaner deletes the expired token; token delete
cm.stop()
c.daemons.remove(cm)
cm = start_cm("tokencleaner")
t.ok(c.wait_for(lambda: cl.try_call("Secrets", "Get", pb.GetRequest(namespace="kube-system", name="bootstrap-token-abcdef"))[1]
                is not None, timeout=ctest.DEADLINE), "tokencleaner deleted the expired token")
rc, out, _ = ctl("token", "delete", token)
t.ok(rc == 0 and out.strip() == 'bootstrap token "%s" deleted' % tid, "token delete: " + out.strip())
t.ok(token not in ctl("token", "list")[1], "gone from token list")
cl.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="joined-pod"))
c.wait_for(lambda: pod_status() is None, timeout=ctest.DEADLINE)
t.done()
