#!/usr/bin/python3
# Secrets encrypted at rest (--encryption-provider-config, Kubernetes'
# EncryptionConfiguration): with aesgcm first, then aescbc and identity, a
# Secret created over gRPC and with stock kubectl (1.32) reads back the
# same through get, list, REST and watch (replayed from the log, and
# live), while its value is nowhere in the LMDB data file (a ConfigMap's,
# not encrypted, is: the grep works) and the stored value names aesgcm and
# its key; Python's AES-GCM opens it (the store key, or on etcd the etcd
# key, as additional data), and on etcd a value it sealed reads. Restarted with a new key first, the old objects still read;
# `kubectl replace` of them moves them to the new key, unchanged. Without
# the old key, an object still under it gives a clear error of its own and
# the apiserver goes on; a key of the right name but other bytes likewise.
# Bad config files fail the start naming file, line and field. On
# CORACLE_TEST_STORE=etcd3 the values in etcd are the sealed ones too
# (etcdctl shows k8s:enc:aesgcm:v1:<key>:) and etcd's files hold no secret.
import base64
import json
import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import etcdutil
import kubectls
from ctest import meta

t = ctest.Tap()
c = ctest.Cluster(t)
pb = c.pb
SC = ctest.grpc.StatusCode
ETCD = ctest.STORE == "etcd3"
DATA = os.path.join(c.dir, "data")
MDB_DIR = os.path.join(DATA, "etcd-cache") if ETCD else DATA

SECRET1 = b"grpc-secret-" + base64.b16encode(os.urandom(8))
SECRET2 = "kubectl-secret-" + base64.b16encode(os.urandom(8)).decode()
SECRET3 = b"left-behind-" + base64.b16encode(os.urandom(8))
MARKER = "configmap-marker-" + base64.b16encode(os.urandom(8)).decode()
K1, K2, C1 = (base64.b64encode(os.urandom(n)).decode() for n in (32, 16, 24))


def config(name, rules):
    """Writes an EncryptionConfiguration: rules is [(resources, [(provider, [(key, secret)])])]."""
    lines = ["apiVersion: apiserver.config.k8s.io/v1", "kind: EncryptionConfiguration", "resources:"]
    for res, provs in rules:
        lines.append("  - resources: [%s]" % ", ".join(res))
        lines.append("    providers:")
        for p, keys in provs:
            if p == "identity":
                lines.append("      - identity: {}")
                continue
            lines += ["      - %s:" % p, "          keys:"]
            for kn, ks in keys:
                lines += ["            - name: %s" % kn, "              secret: %s" % ks]
    path = os.path.join(c.dir, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start(cfg):
    global api
    if getattr(c, "api", None) and c.api.alive():
        c.api.stop()
    api = c.start_apiserver("--encryption-provider-config", cfg)
    return api


def err(service, method, req):
    _, e = api.try_call(service, method, req)
    return (e.code, e.message) if e else (SC.OK, None)


def get_secret(name):
    return api.call("Secrets", "Get", pb.GetRequest(namespace="default", name=name))


def rest(path):
    try:
        with urllib.request.urlopen("http://%s%s" % (c.api_addr, path), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def grep_count(needle, paths):
    """grep -c of needle in the files under paths (a data file or a directory)."""
    n = 0
    for p in paths:
        files = [p] if os.path.isfile(p) else [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs]
        for f in files:
            r = subprocess.run(["grep", "-c", "-a", "-F", needle, f], capture_output=True, text=True)
            n += int(r.stdout.strip() or 0)
    return n


def stored(key, ec=None, data=DATA):
    """The stored value of a store key ("secrets/default/x"): from etcd on etcd3 (or
    from ec), else from the LMDB store in data (mdb_dump)."""
    if ETCD or ec:
        out = (ec or c.etcd).ctl("get", "-w", "json", "/registry/" + key)
        kvs = json.loads(out).get("kvs", [])
        return base64.b64decode(kvs[0]["value"]) if kvs else None
    out = subprocess.run(["mdb_dump", "-s", "objects", data], capture_output=True, text=True).stdout
    lines = out.split("\n")
    body = lines[lines.index("HEADER=END") + 1:]
    for i in range(0, len(body) - 1, 2):
        if bytes.fromhex(body[i].strip()) == key.encode():
            return bytes.fromhex(body[i + 1].strip())
    return None


def aesgcm_open(secret, value, ad):
    """What any AES-GCM reads of a value in Kubernetes' form: prefix, nonce, ciphertext+tag."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    body = value[value.index(b":", len(b"k8s:enc:aesgcm:v1:")) + 1:]
    return AESGCM(base64.b64decode(secret)).decrypt(body[:12], body[12:], ad)


kubectl = kubectls.kubectl_132()
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home)


def k(*args, stdin=None):
    p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache")]
                       + list(args), env=kenv, capture_output=True, text=True, timeout=120, input=stdin)
    return p.returncode, p.stdout, p.stderr


GCM1 = ("aesgcm", [("k1", K1)])
CBC = ("aescbc", [("c1", C1)])
cfg1 = config("enc1.yaml", [(["secrets"], [GCM1, CBC, ("identity", [])])])

# ---- aesgcm first: everything reads back, nothing is stored in the clear ----
start(cfg1)
api.call("ConfigMaps", "Create", pb.ConfigMap(metadata=meta("cm", "default"), data={"m": MARKER}))
before = api.call("Secrets", "List", pb.ListRequest(namespace="default")).metadata.resourceVersion
s1 = api.call("Secrets", "Create", pb.Secret(metadata=meta("s-grpc", "default"), data={"password": SECRET1}))
t.is_(dict(s1.data), {"password": SECRET1}, "gRPC create answers the Secret")
t.is_(dict(get_secret("s-grpc").data), {"password": SECRET1}, "gRPC get reads it back")
api.call("Secrets", "Create", pb.Secret(metadata=meta("s-left", "default"), data={"v": SECRET3}))
if kubectl:
    rc, out, e = k("create", "secret", "generic", "s-kubectl", "--from-literal=token=" + SECRET2)
    t.is_((rc, out.strip()), (0, "secret/s-kubectl created"), "kubectl create secret generic (%s)" % e)
    rc, out, e = k("get", "secret", "s-kubectl", "-o", "jsonpath={.data.token}")
    t.is_(base64.b64decode(out).decode(), SECRET2, "kubectl get reads it back (%s)" % e)
else:
    t.skip("kubectl 1.32 not installed", 2)
    api.call("Secrets", "Create", pb.Secret(metadata=meta("s-kubectl", "default"),
                                            stringData={"token": SECRET2}))
lst = api.call("Secrets", "List", pb.ListRequest(namespace="default"))
t.is_(sorted((s.metadata.name, dict(s.data)) for s in lst.items),
      [("s-grpc", {"password": SECRET1}), ("s-kubectl", {"token": SECRET2.encode()}), ("s-left", {"v": SECRET3})],
      "gRPC list reads them all")
code, body = rest("/api/v1/namespaces/default/secrets/s-grpc")
t.is_((code, base64.b64decode(body["data"]["password"]) if code == 200 else body), (200, SECRET1),
      "REST get reads it")
code, body = rest("/api/v1/secrets?limit=1")
t.is_((code, len(body.get("items", [])) if code == 200 else body), (200, 1), "a REST list's first page")
w = api.stream("Secrets", "Watch", pb.ListRequest(namespace="default", resourceVersion=before))
ev = [next(w) for _ in range(3)]
t.is_([(e.type, e.object.metadata.name, dict(e.object.data)) for e in ev],
      [("ADDED", "s-grpc", {"password": SECRET1}), ("ADDED", "s-left", {"v": SECRET3}),
       ("ADDED", "s-kubectl", {"token": SECRET2.encode()})],
      "a watch replays them from the log")
s1 = get_secret("s-grpc")
s1.data["more"] = b"x"
api.call("Secrets", "Update", s1)
e = next(w)
t.is_((e.type, dict(e.object.data)), ("MODIFIED", {"password": SECRET1, "more": b"x"}), "and sees an update live")
w.cancel()
mdb = os.path.join(MDB_DIR, "data.mdb")
t.is_([grep_count(s, [mdb]) for s in (SECRET1.decode(), SECRET2, SECRET3.decode())], [0, 0, 0],
      "grep -c finds no Secret's value in the LMDB data file")
t.ok(grep_count(MARKER, [mdb]) > 0, "but finds the ConfigMap's (not encrypted)")
t.ok(stored("secrets/default/s-grpc").startswith(b"k8s:enc:aesgcm:v1:k1:"),
     "the stored value names aesgcm and key k1")
t.ok(stored("configmaps/default/cm").startswith(b"k8s\x00" if ETCD else b"\n"), "a ConfigMap is stored plain")
ad = b"/registry/secrets/default/s-grpc" if ETCD else b"secrets/default/s-grpc"
plain = aesgcm_open(K1, stored("secrets/default/s-grpc"), ad)
if ETCD:
    t.ok(plain.startswith(b"k8s\x00") and SECRET1 in plain,
         "another AES-GCM opens it with the etcd key as additional data: Kubernetes' envelope")
    # a value sealed elsewhere (as kube-apiserver would) is read: the same object, a new nonce
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    nonce = os.urandom(12)
    mine = b"k8s:enc:aesgcm:v1:k1:" + nonce + AESGCM(base64.b64decode(K1)).encrypt(nonce, plain, ad)
    r = subprocess.run(["etcdctl", "--endpoints", c.etcd.endpoints[0], "put", ad.decode()],
                       input=mine, capture_output=True, env=dict(os.environ, ETCDCTL_API="3"))
    t.ok(r.returncode == 0 and stored("secrets/default/s-grpc") == mine and
         c.wait_for(lambda: get_secret("s-grpc").metadata.resourceVersion != s1.metadata.resourceVersion
                    and dict(get_secret("s-grpc").data) == dict(s1.data), timeout=ctest.DEADLINE),
         "a value sealed by another implementation, put into etcd, reads (%s)" % r.stderr)
else:
    t.is_(dict(pb.Secret.FromString(plain).data), dict(s1.data),
          "another AES-GCM opens it with the store key as additional data: the Secret")
    t.skip("not on etcd", 1)
if ETCD:
    t.is_([grep_count(s, [c.etcd.dir]) for s in (SECRET1.decode(), SECRET2, SECRET3.decode())], [0, 0, 0],
          "etcd's files hold no Secret's value either")
else:
    t.skip("not on etcd", 1)

# ---- coracle-backup between LMDB and etcd opens and seals again ----
if ETCD or etcdutil.available():
    t.skip("on LMDB with etcd installed", 5)
else:
    ec = etcdutil.EtcdCluster(c, members=1, name="target")
    BK = [c.bin("coracle-backup"), "--etcd-servers", ec.endpoints[0]]
    r = subprocess.run(BK + ["--to-etcd", "--data-dir", DATA], capture_output=True, text=True, timeout=60)
    t.ok(r.returncode == 1 and "coracle-backup: secrets/default/s-grpc: encrypted at rest: give the "
         "apiserver's --encryption-provider-config; not copied" in r.stderr and
         stored("configmaps/default/cm", ec), "--to-etcd without the config: the Secrets are named, not copied")
    for i in range(2):
        r = subprocess.run(BK + ["--to-etcd", "--data-dir", DATA, "--encryption-provider-config", cfg1],
                           capture_output=True, text=True, timeout=60)
        t.ok(r.returncode == 0 and not r.stderr, "--to-etcd with it%s (%s%s)"
             % (" again: the same objects are there" if i else "", r.stdout, r.stderr))
    v = stored("secrets/default/s-grpc", ec)
    t.ok(v.startswith(b"k8s:enc:aesgcm:v1:k1:") and
         aesgcm_open(K1, v, b"/registry/secrets/default/s-grpc").startswith(b"k8s\x00"),
         "in etcd sealed as an apiserver on etcd seals it (the etcd key authenticated)")
    nd = os.path.join(c.dir, "from-etcd")
    r = subprocess.run(BK + ["--from-etcd", "--encryption-provider-config", cfg1, nd],
                       capture_output=True, text=True, timeout=60)
    v = stored("secrets/default/s-grpc", data=nd) or b""
    t.ok(r.returncode == 0 and grep_count(SECRET1.decode(), [nd]) == 0 and
         dict(pb.Secret.FromString(aesgcm_open(K1, v, b"secrets/default/s-grpc")).data) == dict(s1.data),
         "--from-etcd into a new store: sealed there under the store key (%s%s)" % (r.stdout, r.stderr))

# ---- rotation: a new key first, the objects rewritten, the old key dropped ----
GCM21 = ("aesgcm", [("k2", K2), ("k1", K1)])
start(config("enc2.yaml", [(["secrets"], [GCM21, CBC, ("identity", [])])]))
t.is_((dict(get_secret("s-grpc").data), dict(get_secret("s-kubectl").data)),
      ({"password": SECRET1, "more": b"x"}, {"token": SECRET2.encode()}),
      "after a restart with a new key first, the old objects read")
rv = get_secret("s-kubectl").metadata.resourceVersion
if kubectl:
    rc, out, e = k("get", "secret", "s-grpc", "s-kubectl", "-o", "json")
    rc2, out2, e2 = k("replace", "-f", "-", stdin=out)
    t.is_((rc, rc2), (0, 0), "kubectl get -o json | kubectl replace -f - (%s%s)" % (e, e2))
else:
    t.skip("kubectl 1.32 not installed", 1)
    for n in ("s-grpc", "s-kubectl"):
        api.call("Secrets", "Update", get_secret(n))
t.ok(all(stored("secrets/default/" + n).startswith(b"k8s:enc:aesgcm:v1:k2:") for n in ("s-grpc", "s-kubectl")),
     "the rewrite moved them to k2")
t.ok(stored("secrets/default/s-left").startswith(b"k8s:enc:aesgcm:v1:k1:"), "the one not rewritten is under k1")
t.is_(dict(get_secret("s-kubectl").data), {"token": SECRET2.encode()}, "unchanged by the rewrite")
api.call("Secrets", "Create", pb.Secret(metadata=meta("s-new", "default"), data={"n": b"1"}))
t.ok(stored("secrets/default/s-new").startswith(b"k8s:enc:aesgcm:v1:k2:"), "a new Secret goes under k2")

# ---- the old key gone: its objects fail alone, clearly ----
start(config("enc3.yaml", [(["secrets"], [("aesgcm", [("k2", K2)]), ("identity", [])])]))
t.is_(dict(get_secret("s-grpc").data), {"password": SECRET1, "more": b"x"}, "without k1, the rewritten ones read")
code, msg = err("Secrets", "Get", pb.GetRequest(namespace="default", name="s-left"))
t.ok(code == SC.INTERNAL and "cannot be decrypted" in msg, "one still under k1: an error of its own (%s)" % msg)
code, body = rest("/api/v1/namespaces/default/secrets/s-left")
t.is_(code, 500, "REST: 500 (%s)" % body)
s = pb.Secret(metadata=meta("s-left", "default"), data={"v": b"new"})
code, msg = err("Secrets", "Update", s)
t.ok(code != SC.OK, "an update of it fails, not decided on a value it cannot read (%s)" % msg)
t.is_(err("Secrets", "List", pb.ListRequest(namespace="default"))[0], SC.INTERNAL,
      "a list that meets it fails, as kube-apiserver's")
t.is_(err("ConfigMaps", "Get", pb.GetRequest(namespace="default", name="cm"))[0], SC.OK,
      "the apiserver goes on serving")
log = open(os.path.join(c.dir, "apiserver.log"), errors="replace").read()
t.ok("secrets/default/s-left" in log and 'aesgcm key "k1"' in log and "encryption config does not have" in log,
     "its log names the object and the missing key")

start(config("enc4.yaml", [(["secrets"], [("aesgcm", [("k2", base64.b64encode(os.urandom(16)).decode())]),
                                          ("identity", [])])]))
code, msg = err("Secrets", "Get", pb.GetRequest(namespace="default", name="s-grpc"))
t.ok(code == SC.INTERNAL, "a key of the right name and other bytes: an error (%s)" % msg)
log = open(os.path.join(c.dir, "apiserver.log"), errors="replace").read()
t.ok('aesgcm key "k2" does not open the value' in log, "which the log explains")
c.api.stop()
api = c.start_apiserver()
code, msg = err("Secrets", "Get", pb.GetRequest(namespace="default", name="s-grpc"))
t.ok(code == SC.INTERNAL, "without a config, an encrypted value is an error, not bytes (%s)" % msg)
log = open(os.path.join(c.dir, "apiserver.log"), errors="replace").read()
t.ok("the encryption config does not name its resource" in log or
     "encrypted, but the encryption config does not name its resource" in log, "which the log explains")
t.is_([log.count(s) for s in (SECRET1.decode(), SECRET2, SECRET3.decode())], [0, 0, 0],
      "no Secret's value in the apiserver's log")
c.api.stop()

# ---- bad config files fail the start, naming file, line and field ----
BAD = [
    ("apiVersion: v1\nkind: EncryptionConfiguration\nresources: []\n",
     ':1: apiVersion: "v1": expected apiserver.config.k8s.io/v1'),
    ("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
     "  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys:\n"
     "            - name: k\n              secret: c2hvcnQ=\n",
     ":9: resources[0].providers[0].aesgcm.keys[0].secret: secret is 5 bytes; AES needs 16, 24 or 32"),
    ("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
     "  - resources: [secrets]\n    providers:\n      - kms: {name: x}\n",
     ":6: resources[0].providers[0].kms: provider kms is not supported"),
    ("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
     "  - resources: [widgets]\n    providers:\n      - identity: {}\n",
     ':4: resources[0].resources[0]: no resource "widgets" in this apiserver'),
    ('{"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",\n'
     ' "resources": [{"resources": ["secrets"],\n  "providers": [{"aescbc": {"keys": [{"name": "k"}]}}]}]}\n',
     ":3: resources[0].providers[0].aescbc.keys[0]: a key needs a secret"),
]
for i, (text, want) in enumerate(BAD):
    path = os.path.join(c.dir, "bad%d.yaml" % i)
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([c.bin("coracle-apiserver"), "--listen", "127.0.0.1:%d" % ctest.free_port(),
                        "--data-dir", os.path.join(c.dir, "bad-data"), "--encryption-provider-config", path],
                       capture_output=True, text=True, timeout=30)
    t.ok(p.returncode != 0 and (path + want) in p.stderr,
         "bad config %d refused: %s (%s)" % (i, want, p.stderr.strip()[-300:]))
t.done()
