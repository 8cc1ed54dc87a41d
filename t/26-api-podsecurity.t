#!/usr/bin/python3
# Pod Security admission end to end: a user the policy file allows only
# `create pods` in one namespace cannot mount the host's root or use the
# host's network or PID namespace under the baseline default, with
# Kubernetes' messages through gRPC, REST (curl, stock kubectl 1.32) and
# coraclectl; restricted, privileged and warn-only namespaces (labels);
# warnings on workload templates (REST Warning header, gRPC trailer
# "warning"); exemptions by user, namespace and runtime class; a Namespace's
# invalid labels refused and a tighter enforce level warning about the pods
# already there. Runs on the store CORACLE_TEST_STORE names.
import json
import os
import shutil
import subprocess
import sys

SRC = os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "t", "lib"))
import ctest
from ctest import meta
import grpc
import kubectls

t = ctest.Tap()
c = ctest.Cluster(t)
c.implicit_namespaces = False
pb = c.pb

port = ctest.free_port()
addr = "127.0.0.1:%d" % port
pki = os.path.join(c.dir, "pki")
c.certs(pki, "-s", addr)
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write('admintoken,admin,1,"system:masters"\n')
    f.write("devtoken,dev,2\n")
    f.write("citoken,ci,3\n")
policy = os.path.join(c.dir, "policy")
shutil.copy(os.path.join(SRC, "conf", "policy"), policy)
with open(policy, "a") as f:
    f.write("role podmaker create pods team\nbind podmaker user:dev,user:ci\n")
sock = os.path.join(c.dir, "api.sock")
c.api_addr = "unix:" + sock
apid = c.start("apiserver", [c.bin("coracle-apiserver"), "--listen", addr, "--listen", c.api_addr,
                             "--data-dir", os.path.join(c.dir, "data"),
                             "--tls-cert-file", os.path.join(pki, "apiserver.crt"),
                             "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
                             "--token-auth-file", tokens, "--authorization-policy-file", policy,
                             "--pod-security-default", "baseline",
                             "--pod-security-exempt-usernames", "ci",
                             "--pod-security-exempt-namespaces", "kube-system",
                             "--pod-security-exempt-runtime-classes", "kata"] + c.store_args())
api = ctest.Client(c.api_addr)
c.clients.append(api)
https = "https://" + addr
CACERT = os.path.join(pki, "ca.crt")


def ready():
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", CACERT,
                        https + "/readyz"], capture_output=True, text=True)
    return p.stdout == "200"


if not c.wait_for(ready, timeout=ctest.DEADLINE, interval=0.1):
    t.bail("apiserver not ready:\n" + apid.tail())


def call(tok, svc, method, req):
    """A unary call as the token's user: (response, error (code, text), warnings)."""
    rt = api._resp_type(svc, method)
    fn = api.channel.unary_unary("/coracle.v1.%s/%s" % (svc, method),
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=rt.FromString)
    md = [("authorization", "Bearer " + tok)]
    try:
        r, cl = fn.with_call(req, timeout=ctest.DEADLINE, metadata=md)
        return r, None, [v for k, v in cl.trailing_metadata() or () if k == "warning"]
    except grpc.RpcError as e:
        return None, (e.code(), e.details()), [v for k, v in e.trailing_metadata() or ()
                                              if k == "warning"]


def curl(tok, method, path, body=None, ctype="application/json"):
    """(status, Status or object JSON, [Warning header values])"""
    hdrs = os.path.join(c.dir, "hdrs")
    args = ["curl", "-s", "-D", hdrs, "--cacert", CACERT, "-X", method,
            "-H", "Authorization: Bearer " + tok]
    if body is not None:
        args += ["-H", "Content-Type: " + ctype, "--data-binary", json.dumps(body)]
    p = subprocess.run(args + [https + path], capture_output=True, text=True)
    with open(hdrs) as f:
        lines = f.read().splitlines()
    status = int(lines[0].split()[1]) if lines else 0
    warns = [ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("warning:")]
    return status, (json.loads(p.stdout) if p.stdout else None), warns


def pod(name, ns, **spec):
    cs = spec.pop("containers", None) or [pb.Container(name="c", image="busybox")]
    return pb.Pod(metadata=meta(name, ns), spec=pb.PodSpec(containers=cs, **spec))


def hostroot():
    return [pb.Volume(name="root", volumeSource=pb.VolumeSource(hostPath=pb.HostPathVolumeSource(path="/")))]


def namespace(name, labels):
    r, e, w = call("admintoken", "Namespaces", "Create",
                   pb.Namespace(metadata=meta(name, labels=labels)))
    if e:
        t.diag("namespace %s: %s" % (name, e))
    return w


PSA = "pod-security.kubernetes.io/"
namespace("team", {})
RESTRICTED = ('allowPrivilegeEscalation != false (container "c" must set '
              'securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
              '(container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot '
              '!= true (pod or container "c" must set securityContext.runAsNonRoot=true), '
              'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type '
              'to "RuntimeDefault" or "Localhost")')

# ---- baseline by default, for a user who may only create pods in team ----
r, e, w = call("devtoken", "Pods", "Create", pod("root", "team", volumes=hostroot()))
t.is_(e, (grpc.StatusCode.PERMISSION_DENIED,
          'pods "root" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes '
          '(volume "root")'), "gRPC: hostPath / refused with Kubernetes' text")
r, e, w = call("devtoken", "Pods", "Create", pod("net", "team", hostNetwork=True))
t.is_(e and e[1], 'pods "net" is forbidden: violates PodSecurity "baseline:latest": host '
      'namespaces (hostNetwork=true)', "gRPC: hostNetwork refused")
r, e, w = call("devtoken", "Pods", "Create", pod("pid", "team", hostPID=True, volumes=hostroot()))
t.is_(e and e[1], 'pods "pid" is forbidden: violates PodSecurity "baseline:latest": host '
      'namespaces (hostPID=true), hostPath volumes (volume "root")',
      "gRPC: hostPID and hostPath: both violations, in Kubernetes' order")
r, e, w = call("devtoken", "Pods", "Create", pod("plain", "team"))
t.ok(e is None and w == [], "a plain pod passes baseline, no warning (%s %s)" % (e, w))
r, e, w = call("devtoken", "Pods", "Create", pod("other", "default"))
t.is_(e and e[0], grpc.StatusCode.PERMISSION_DENIED, "and dev may create only in team")
st, body, w = curl("devtoken", "POST", "/api/v1/namespaces/team/pods",
                   {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rest"},
                    "spec": {"hostPID": True, "containers": [{"name": "c", "image": "busybox"}]}})
t.ok(st == 403 and body["reason"] == "Forbidden" and body["details"] == {"name": "rest", "kind": "pods"}
     and body["message"] == 'pods "rest" is forbidden: violates PodSecurity "baseline:latest": '
     'host namespaces (hostPID=true)', "REST: 403 Forbidden Status (%s)" % (body,))

# ---- namespaces labelled restricted, privileged, warn-only ----
namespace("strict", {PSA + "enforce": "restricted"})
r, e, w = call("admintoken", "Pods", "Create", pod("asroot", "strict"))
t.is_(e, (grpc.StatusCode.PERMISSION_DENIED, 'pods "asroot" is forbidden: violates PodSecurity '
          '"restricted:latest": ' + RESTRICTED), "restricted: a pod running as root, every violation")
good = pod("good", "strict", securityContext=pb.PodSecurityContext(
    runAsNonRoot=True, seccompProfile=pb.SeccompProfile(type="RuntimeDefault")),
    containers=[pb.Container(name="c", image="busybox", securityContext=pb.SecurityContext(
        allowPrivilegeEscalation=False, capabilities=pb.Capabilities(drop=["ALL"])))])
r, e, w = call("admintoken", "Pods", "Create", good)
t.ok(e is None, "restricted: a compliant pod passes (%s)" % (e,))
namespace("old", {PSA + "enforce": "restricted", PSA + "enforce-version": "v1.21"})
r, e, w = call("admintoken", "Pods", "Create", pod("asroot", "old"))
t.like(e and e[1], 'violates PodSecurity "restricted:v1.21": allowPrivilegeEscalation',
       "a pinned version names itself")
t.ok(e and "capabilities" not in e[1], "and leaves out the checks that came later (%s)" % (e and e[1],))
namespace("priv", {PSA + "enforce": "privileged", PSA + "audit": "privileged",
                   PSA + "warn": "privileged"})
r, e, w = call("admintoken", "Pods", "Create", pod("rootpod", "priv", volumes=hostroot(), hostPID=True))
t.ok(e is None and w == [], "privileged: hostPath / and hostPID admitted (%s)" % (e,))
namespace("warnonly", {PSA + "enforce": "privileged", PSA + "warn": "restricted"})
r, e, w = call("admintoken", "Pods", "Create", pod("w", "warnonly"))
t.ok(e is None and w == ['would violate PodSecurity "restricted:latest": ' + RESTRICTED],
     "warn-only: admitted, the warning in the gRPC trailer (%s %s)" % (e, w))

# ---- workload templates: warned about, never refused ----
dep = pb.Deployment(metadata=meta("web", "team"), spec=pb.DeploymentSpec(
    selector=pb.LabelSelector(matchLabels={"app": "web"}),
    template=pb.PodTemplateSpec(metadata=meta(None, labels={"app": "web"}),
                                spec=pb.PodSpec(hostNetwork=True, containers=[
                                    pb.Container(name="c", image="busybox")]))))
r, e, w = call("admintoken", "Deployments", "Create", dep)
t.ok(e is None and w == ['would violate PodSecurity "baseline:latest": host namespaces '
                         '(hostNetwork=true)'], "a Deployment's template: warned (%s %s)" % (e, w))
st, body, w = curl("admintoken", "POST", "/apis/batch/v1/namespaces/warnonly/cronjobs",
                   {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
                    "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox"}]}}}}}})
t.ok(st == 201 and len(w) == 1 and w[0].startswith('299 - "would violate PodSecurity '
                                                  '\\"restricted:latest\\": allowPrivilegeEscalation'),
     "a CronJob's job template: the REST Warning header (%s %s)" % (st, w))

# ---- exemptions ----
r, e, w = call("citoken", "Pods", "Create", pod("ci", "team", volumes=hostroot()))
t.ok(e is None, "an exempt user mounts the host's root (%s)" % (e,))
r, e, w = call("admintoken", "Pods", "Create", pod("sys", "kube-system", hostNetwork=True))
t.ok(e is None, "in an exempt namespace too (%s)" % (e,))
r, e, w = call("devtoken", "Pods", "Create", pod("kata", "team", runtimeClassName="kata", hostPID=True))
t.ok(e is None, "and with an exempt runtime class (%s)" % (e,))

# ---- namespaces: invalid labels, a tighter enforce level ----
r, e, w = call("admintoken", "Namespaces", "Create",
               pb.Namespace(metadata=meta("typo", labels={PSA + "enforce": "strict"})))
t.is_(e, (grpc.StatusCode.INVALID_ARGUMENT, 'Namespace "typo" is invalid: metadata.labels'
          '[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of '
          'privileged, baseline, restricted'), "an invalid level label is refused")
st, body, w = curl("admintoken", "PATCH", "/api/v1/namespaces/priv",
                   {"metadata": {"labels": {PSA + "enforce": "baseline"}}},
                   ctype="application/merge-patch+json")
t.ok(st == 200 and w == ['299 - "existing pods in namespace \\"priv\\" violate the new PodSecurity '
                         'enforce level \\"baseline:latest\\""',
                         '299 - "rootpod: host namespaces, hostPath volumes"'],
     "relabelling warns about the existing pods (%s %s)" % (st, w))
namespace("agg", {PSA + "enforce": "privileged", PSA + "warn": "privileged"})
for n in ("p3", "p1", "p2"):
    call("admintoken", "Pods", "Create", pod(n, "agg", hostPID=True))
call("admintoken", "Pods", "Create", pod("q", "agg", hostIPC=True, volumes=hostroot()))
r, e, w = call("admintoken", "Namespaces", "Update", pb.Namespace(
    metadata=meta("agg", labels={PSA + "enforce": "baseline", PSA + "warn": "privileged"})))
t.is_(w, ['existing pods in namespace "agg" violate the new PodSecurity enforce level '
          '"baseline:latest"', 'p1 (and 2 other pods): host namespaces',
          'q: host namespaces, hostPath volumes'],
      "pods with the same violations are counted under the first name (gRPC trailers)")
r, e, w = call("admintoken", "Pods", "Create", pod("rootpod2", "priv", volumes=hostroot()))
t.like(e and e[1], 'violates PodSecurity "baseline:latest": hostPath volumes',
       "and the new level is enforced from the next create")

# ---- an update: only image changes are checked ----
bad = pod("upd", "warnonly", hostPID=True)
call("admintoken", "Pods", "Create", bad)
r, e, w = call("admintoken", "Namespaces", "Update", pb.Namespace(
    metadata=meta("warnonly", labels={PSA + "enforce": "baseline"})))
cur = call("admintoken", "Pods", "Get", pb.GetRequest(namespace="warnonly", name="upd"))[0]
cur.metadata.labels["x"] = "y"
r, e, w = call("admintoken", "Pods", "Update", cur)
t.ok(e is None, "a labels-only update of a violating pod is not checked (%s)" % (e,))
cur = call("admintoken", "Pods", "Get", pb.GetRequest(namespace="warnonly", name="upd"))[0]
cur.spec.containers[0].image = "busybox:2"
r, e, w = call("admintoken", "Pods", "Update", cur)
t.like(e and e[1], 'pods "upd" is forbidden: violates PodSecurity "baseline:latest": host '
       'namespaces (hostPID=true)', "an image change is")

# ---- coraclectl and kubectl show the warnings and refusals ----
manifest = os.path.join(c.dir, "w.yaml")
with open(manifest, "w") as f:
    f.write("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ctlw\n  namespace: strict\nspec:\n"
            "  containers:\n  - name: c\n    image: busybox\n")
rc, out, err = c.ctl("--token", "admintoken", "apply", "-f", manifest)
t.ok(rc != 0 and 'pods "ctlw" is forbidden: violates PodSecurity "restricted:latest": ' in err,
     "coraclectl: the refusal (%r)" % err)
namespace("ctlwarn", {PSA + "enforce": "privileged", PSA + "warn": "baseline"})
with open(manifest, "w") as f:
    f.write("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ctlw\n  namespace: ctlwarn\nspec:\n"
            "  hostIPC: true\n  containers:\n  - name: c\n    image: busybox\n")
rc, out, err = c.ctl("--token", "admintoken", "apply", "-f", manifest)
t.ok(rc == 0 and err == 'Warning: would violate PodSecurity "baseline:latest": host namespaces '
     '(hostIPC=true)\n', "coraclectl prints the warning as kubectl does (%r %r)" % (out, err))


# ---- the same from Kubernetes' AdmissionConfiguration file ----
admcfg = os.path.join(c.dir, "admission.yaml")
with open(admcfg, "w") as f:
    f.write("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n"
            "- name: PodSecurity\n  path: podsecurity.yaml\n")
with open(os.path.join(c.dir, "podsecurity.yaml"), "w") as f:
    f.write("apiVersion: pod-security.admission.config.k8s.io/v1\nkind: PodSecurityConfiguration\n"
            "defaults: {enforce: restricted, enforce-version: v1.21}\n"
            "exemptions: {namespaces: [ops]}\n")
sock2 = "127.0.0.1:%d" % ctest.free_port()
api2d = c.start("apiserver2", [c.bin("coracle-apiserver"), "--listen", sock2, "--data-dir",
                               os.path.join(c.dir, "data2"), "--admission-control-config-file",
                               admcfg])
c.wait_ready(sock2, api2d)
api2 = ctest.Client(sock2)
c.clients.append(api2)
r, e = api2.try_call("Pods", "Create", pod("asroot", "default"))
t.like(e and e.message, 'pods "asroot" is forbidden: violates PodSecurity "restricted:v1.21": ',
       "--admission-control-config-file: its defaults (by path)")
api2.call("Namespaces", "Create", pb.Namespace(metadata=meta("ops")))
r, e = api2.try_call("Pods", "Create", pod("asroot", "ops"))
t.ok(e is None, "and its exemptions (%s)" % (e,))
bad = c.start("apiserver3", [c.bin("coracle-apiserver"), "--listen",
                             "unix:" + os.path.join(c.dir, "api3.sock"), "--data-dir",
                             os.path.join(c.dir, "data3"), "--admission-control-config-file",
                             admcfg, "--pod-security-default", "baseline"])
t.ok(bad.proc.wait(timeout=ctest.DEADLINE) != 0 and "configure Pod Security in one place" in
     bad.tail(), "with --pod-security-default too: the start stops (%s)" % bad.tail(1))


def finish():
    """The apiserver stops cleanly (under the sanitizers: no report, no leak)."""
    d = apid
    rc = d.stop()
    with open(d.log_path, errors="replace") as f:
        log = f.read()
    t.ok(rc == 0 and "Sanitizer" not in log and "runtime error" not in log,
         "the apiserver stops cleanly (%s)" % rc)
    t.done()


kubectl = kubectls.kubectl_132()
if not kubectl:
    t.skip("kubectl 1.32 not installed", 3)
    finish()
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home, KUBECONFIG=os.path.join(home, "none"))


def k(tok, *args):
    p = subprocess.run([kubectl, "--server", https, "--certificate-authority", CACERT,
                        "--token", tok] + list(args), env=kenv, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


with open(manifest, "w") as f:
    f.write("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kroot\nspec:\n  containers:\n"
            "  - name: c\n    image: busybox\n  volumes:\n  - name: root\n    hostPath: {path: /}\n")
rc, out, err = k("devtoken", "-n", "team", "create", "--validate=false", "-f", manifest)
t.is_(err.strip(), 'Error from server (Forbidden): error when creating "%s": pods "kroot" is '
      'forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "root")'
      % manifest, "kubectl create: Kubernetes' refusal")
rc, out, err = k("admintoken", "-n", "ctlwarn", "create", "--validate=false", "-f", manifest)
t.ok(rc == 0 and err.strip() == 'Warning: would violate PodSecurity "baseline:latest": hostPath '
     'volumes (volume "root")', "kubectl prints the warning (%r %r)" % (out, err))
rc, out, err = k("admintoken", "label", "--overwrite", "namespace", "ctlwarn", PSA + "enforce=baseline")
t.ok(rc == 0 and err == 'Warning: existing pods in namespace "ctlwarn" violate the new PodSecurity '
     'enforce level "baseline:latest"\nWarning: ctlw: host namespaces\n'
     'Warning: kroot: hostPath volumes\n',
     "kubectl label: the existing pods' warnings (%r %r)" % (out, err))
finish()
