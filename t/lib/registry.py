"""A real registry for tests and benchmarks: Debian's docker-registry
(distribution 2.8) on loopback with TLS (a CA made here) and htpasswd
auth, images pushed with skopeo; a TCP proxy that cuts each connection
after so many bytes (the interrupted uplink); a small API client to
upload blobs and manifests the way a broken registry would serve them.
Everything lives in one temporary directory; stop() removes what was
started."""
import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
IMAGES = os.environ.get("CORACLE_IMAGE_CACHE", "/var/cache/coracle/images")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def tar_of(files):
    """The bytes of an uncompressed tar holding files {name: bytes}, in that order."""
    import io, tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def available():
    """None if a registry can be run here, else why not."""
    for tool in (REGISTRY, shutil.which("skopeo"), shutil.which("htpasswd"), shutil.which("openssl")):
        if not tool or not os.path.exists(tool):
            return "docker-registry, skopeo, htpasswd (apache2-utils) and openssl are needed"
    return None


class Registry:
    def __init__(self, dir, user="coracle", password="s3cret-pw"):
        self.dir = dir
        self.user, self.password = user, password
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.proc = None
        os.makedirs(dir, exist_ok=True)
        self._certs()
        with open(os.path.join(dir, "htpasswd"), "w") as f:
            out = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True,
                                 text=True, check=True).stdout
            f.write(out.strip() + "\n")
        self.storage = os.path.join(dir, "storage")
        cfg = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": self.storage}},
            "http": {"addr": self.addr, "tls": {"certificate": self.crt, "key": self.key}},
            "auth": {"htpasswd": {"realm": "coracle-test", "path": os.path.join(dir, "htpasswd")}},
        }
        self.cfg = os.path.join(dir, "config.yml")
        with open(self.cfg, "w") as f:
            json.dump(cfg, f)  # YAML is a superset of JSON

    def _certs(self):
        d = self.dir
        self.ca = os.path.join(d, "ca.crt")
        self.crt = os.path.join(d, "server.crt")
        self.key = os.path.join(d, "server.key")
        cakey = os.path.join(d, "ca.key")
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run = lambda *a: subprocess.run(list(a), capture_output=True, check=True)
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", cakey, "-out", self.ca, "-days", "2", "-subj", "/CN=coracle test CA")
        csr = os.path.join(d, "server.csr")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", self.key, "-out", csr, "-subj", "/CN=127.0.0.1")
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", cakey,
            "-CAcreateserial", "-out", self.crt, "-days", "2", "-extfile", ext)
        # skopeo's --dest-cert-dir wants *.crt CAs in a directory
        self.certdir = os.path.join(d, "certs.d")
        os.makedirs(self.certdir, exist_ok=True)
        shutil.copy(self.ca, os.path.join(self.certdir, "ca.crt"))

    def start(self, timeout=30):
        self.log = open(os.path.join(self.dir, "registry.log"), "w")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                st, _, _ = self.request("GET", "/v2/")
                if st in (200, 401):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("docker-registry did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def push_archive(self, archive, name, timeout=300):
        """skopeo copy of a docker-archive (path or path:ref) to name ("library/nginx:1.14.2")."""
        r = subprocess.run(["skopeo", "copy", "--quiet", "--dest-creds",
                            "%s:%s" % (self.user, self.password), "--dest-cert-dir", self.certdir,
                            "docker-archive:" + archive, "docker://%s/%s" % (self.addr, name)],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("skopeo copy %s: %s" % (name, r.stderr.strip()))

    # ---- the distribution API, for content skopeo would not make

    def request(self, method, path, body=None, headers=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        h = dict(headers or {})
        tok = base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()
        h["Authorization"] = "Basic " + tok
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def put_blob(self, repo, data):
        dg = "sha256:" + hashlib.sha256(data).hexdigest()
        st, h, _ = self.request("POST", "/v2/%s/blobs/uploads/" % repo)
        loc = h.get("Location") or h.get("location")
        if st != 202 or not loc:
            raise RuntimeError("blob upload: %d" % st)
        if loc.startswith("http"):
            loc = "/" + loc.split("/", 3)[3]
        sep = "&" if "?" in loc else "?"
        st, _, body = self.request("PUT", loc + sep + "digest=" + dg, body=data,
                                   headers={"Content-Type": "application/octet-stream"})
        if st != 201:
            raise RuntimeError("blob put: %d %s" % (st, body[:200]))
        return {"digest": dg, "size": len(data)}

    def put_manifest(self, repo, ref, doc, media_type):
        data = json.dumps(doc).encode()
        st, _, body = self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=data,
                                   headers={"Content-Type": media_type})
        if st != 201:
            raise RuntimeError("manifest put: %d %s" % (st, body[:300]))
        return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                "size": len(data)}

    def get_manifest(self, repo, ref):
        st, h, body = self.request("GET", "/v2/%s/manifests/%s" % (repo, ref), headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                      "application/vnd.oci.image.manifest.v1+json"})
        if st != 200:
            raise RuntimeError("manifest get %s:%s: %d" % (repo, ref, st))
        return json.loads(body), "sha256:" + hashlib.sha256(body).hexdigest(), len(body)

    def blob_path(self, digest):
        hx = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256", hx[:2],
                            hx, "data")

    def put_image(self, repo, tag, files, zstd=False):
        """An image of one gzip (or zstd) layer holding files {name: bytes}; returns its
        manifest."""
        import gzip
        tar = tar_of(files)
        if zstd:
            blob = subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True,
                                  check=True).stdout
        else:
            blob = gzip.compress(tar, compresslevel=1)
        layer = self.put_blob(repo, blob)
        layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+" + ("zstd" if zstd else "gzip")
        cfg = self.put_blob(repo, json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers",
                       "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]}}).encode())
        cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
        m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
             "config": cfg, "layers": [layer]}
        self.put_manifest(repo, tag, m, m["mediaType"])
        return m

    def put_layered(self, repo, tag, tars):
        """An image of gzip layers made from tars (uncompressed tar bytes, bottom first),
        compressed without a timestamp so that equal tars give equal blobs; its manifest."""
        import gzip
        layers = []
        for t in tars:
            ld = self.put_blob(repo, gzip.compress(t, compresslevel=1, mtime=0))
            ld["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
            layers.append(ld)
        cfg = self.put_blob(repo, json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"], "Labels": {"tag": tag}},
            "rootfs": {"type": "layers",
                       "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]}}).encode())
        cfg["mediaType"] = "application/vnd.oci.image.config.v1+json"
        m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
             "config": cfg, "layers": layers}
        self.put_manifest(repo, tag, m, m["mediaType"])
        return m

    def image_size(self, repo, ref):
        m, _, n = self.get_manifest(repo, ref)
        return m["config"]["size"] + sum(l["size"] for l in m["layers"])

    def dockerconfig(self, host=None, password=None):
        """A .dockerconfigjson document for this registry."""
        auth = base64.b64encode(("%s:%s" % (self.user, password or self.password)).encode()).decode()
        return json.dumps({"auths": {host or self.addr: {"auth": auth}}})

    def hosts_dir(self, dir, endpoint=None, registries=("docker.io",)):
        """containerd-style hosts.toml files mapping registries to this one (or to endpoint,
        a proxy in front of it); the upstream is the registry itself, never the Internet."""
        for reg in registries:
            d = os.path.join(dir, reg)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "hosts.toml"), "w") as f:
                f.write('server = "https://%s"\nca = "%s"\n\n' % (self.addr, self.ca))
                f.write('[host."https://%s"]\n  capabilities = ["pull", "resolve"]\n  ca = "%s"\n'
                        % (endpoint or self.addr, self.ca))
        return dir


class CutProxy:
    """TCP proxy 127.0.0.1:port -> target that closes a connection once it has
    carried `cut` bytes towards the client (0: never). Counts the bytes."""

    def __init__(self, target_port, cut=0, rate=0):
        self.target = target_port
        self.cut = cut
        self.rate = rate  # bytes/s towards the client per connection (0: unlimited)
        self.down = 0
        self.cuts = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                s = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            threading.Thread(target=self._pump, args=(c, s, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(s, c, True), daemon=True).start()

    def _pump(self, src, dst, down):
        carried = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if down and self.cut and carried + len(data) >= self.cut:
                    data = data[:self.cut - carried]
                    dst.sendall(data)
                    with self.lock:
                        self.down += len(data)
                        self.cuts += 1
                    break
                dst.sendall(data)
                carried += len(data)
                if down and self.rate:
                    time.sleep(len(data) / self.rate)
                if down:
                    with self.lock:
                        self.down += len(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def stop(self):
        self.running = False
        self.sock.close()


class TokenFront:
    """An HTTPS front for a Registry that speaks the Bearer token flow as Docker
    Hub does: /v2/ answers 401 with WWW-Authenticate: Bearer realm=.../token;
    /token takes the registry's Basic credentials and hands out a token; with
    the token, requests are passed to the registry (with its Basic auth)."""

    def __init__(self, reg):
        import http.server
        self.reg = reg
        self.token = base64.b64encode(os.urandom(18)).decode()
        self.tokens_issued = 0
        front = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, st, body=b"", headers=None):
                self.send_response(st)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                auth = self.headers.get("Authorization", "")
                if self.path.startswith("/token"):
                    want = "Basic " + base64.b64encode(
                        ("%s:%s" % (reg.user, reg.password)).encode()).decode()
                    if auth != want or "scope=repository" not in self.path:
                        return self._send(401, b'{"details":"bad credentials"}')
                    front.tokens_issued += 1
                    return self._send(200, json.dumps({"token": front.token}).encode(),
                                      {"Content-Type": "application/json"})
                if auth != "Bearer " + front.token:
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {
                        "WWW-Authenticate": 'Bearer realm="https://%s/token",service="%s",'
                                            'scope="repository:x:pull"' % (front.addr, front.addr)})
                h = {k: v for k, v in self.headers.items() if k.lower() == "accept"}
                if self.headers.get("Range"):
                    h["Range"] = self.headers["Range"]
                st, rh, body = reg.request("GET", self.path, headers=h)
                keep = {k: v for k, v in rh.items() if k.lower() in (
                    "content-type", "docker-content-digest", "content-range")}
                self._send(st, body, keep)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(reg.crt, reg.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.addr = "127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
