#!/usr/bin/python3
# coracle-kubelet and the configuration of its pods, with the real
# apiserver (tokens and the shipped policy: the kubelet is a node identity)
# and runc: configMap and secret volumes (items, modes, the ..data symlink
# swap, secrets on tmpfs, optional ones empty, mounted read-only); env from
# every source (fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef,
# envFrom with a prefix, invalid names skipped with an event, $(VAR) in
# values and in args); a ConfigMap update reaching the mounted file through
# the watch; a missing ConfigMap holding the container with
# CreateContainerConfigError until it is created; and node restriction of
# Secrets.
import os, stat, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import grpc

import klet

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "50-kubelet-config")
pb = c.pb
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write('admintoken,admin,1,"system:masters"\n')
    f.write('n1token,system:node:node1,2,"system:nodes"\n')
with open(os.path.join(c.dir, "node1.token"), "w") as f:
    f.write("n1token\n")
api = c.start_apiserver("--token-auth-file", tokens, "--authorization-policy-file",
                        os.path.join(ctest.SRC, "conf", "policy"))
k = c.start_kubelet("node1", "--healthz-listen", "", "--token-file", os.path.join(c.dir, "node1.token"),
                    root_dir=root)


def call(svc, method, req, tok="admintoken"):
    """(response, None) or (None, (code, details)), as user tok."""
    fn = api.channel.unary_unary("/coracle.v1.%s/%s" % (svc, method), request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=api._resp_type(svc, method).FromString)
    try:
        return fn(req, timeout=ctest.DEADLINE, metadata=[("authorization", "Bearer " + tok)]), None
    except grpc.RpcError as e:
        return None, (e.code(), e.details())


def get(name):
    return call("Pods", "Get", pb.GetRequest(namespace="default", name=name))[0]


def wait_pod(name, pred, timeout=ctest.DEADLINE):
    return c.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(get(name)), timeout=timeout)


def events(name):
    evs = call("Events", "List", pb.ListRequest(namespace="default"))[0].items
    return [(e.type, e.reason, e.message) for e in evs if e.involvedObject.name == name]


def cs0(p):
    return p.status.containerStatuses[0] if p and p.status.containerStatuses else None


def running(p):
    return p.status.phase == "Running" and cs0(p) and cs0(p).state.running.startedAt.seconds > 0


def cexec(p, *cmd):
    r = subprocess.run(["runc", "--root", runc_root, "exec", cs0(p).containerID[7:]] + list(cmd),
                       capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


c.wait_for(lambda: call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE)

cm = pb.ConfigMap(metadata=ctest.meta("cfg", "default"),
                  data={"k1": "v1", "game.properties": "lives=3\n", "1st": "one"})
call("ConfigMaps", "Create", cm)
call("Secrets", "Create", pb.Secret(metadata=ctest.meta("sec", "default"), data={"pw": b"s3cret", "user": b"admin"}))
call("Secrets", "Create", pb.Secret(metadata=ctest.meta("other", "default"), data={"x": b"not-yours"}))


def env(name, **vf):
    return pb.EnvVar(name=name, valueFrom=pb.EnvVarSource(**vf))


def field(path):
    return pb.ObjectFieldSelector(fieldPath=path)


def res(r, d=None):
    return pb.ResourceFieldSelector(resource=r, divisor=pb.Quantity(string=d) if d else None)


def vol(name, **src):
    return pb.Volume(name=name, volumeSource=pb.VolumeSource(**src))


app = pb.Container(
    name="app", image="progrium/busybox", imagePullPolicy="IfNotPresent",
    command=["sh", "-c", 'echo "ARG=$0"; env; exec sleep 3600', "$(CM_k1)"],
    resources=pb.ResourceRequirements(limits={"memory": pb.Quantity(string="64Mi"), "cpu": pb.Quantity(string="250m")},
                                      requests={"cpu": pb.Quantity(string="100m"), "memory": pb.Quantity(string="50M")}),
    envFrom=[pb.EnvFromSource(configMapRef=pb.ConfigMapEnvSource(localObjectReference=pb.LocalObjectReference(name="cfg"))),
             pb.EnvFromSource(prefix="CM_", configMapRef=pb.ConfigMapEnvSource(localObjectReference=pb.LocalObjectReference(name="cfg"))),
             pb.EnvFromSource(secretRef=pb.SecretEnvSource(localObjectReference=pb.LocalObjectReference(name="sec")))],
    env=[pb.EnvVar(name="LIT", value="lit"), pb.EnvVar(name="EXP", value="$(LIT)-$(CM_k1)"),
         pb.EnvVar(name="ESC", value="$$(LIT)"), pb.EnvVar(name="UNDEF", value="$(NOPE)"),
         env("POD", fieldRef=field("metadata.name")), env("PODNS", fieldRef=field("metadata.namespace")),
         env("PODUID", fieldRef=field("metadata.uid")), env("APP", fieldRef=field("metadata.labels['app']")),
         env("NOTE", fieldRef=field("metadata.annotations['note']")), env("NODE", fieldRef=field("spec.nodeName")),
         env("SA", fieldRef=field("spec.serviceAccountName")), env("PODIP", fieldRef=field("status.podIP")),
         env("HOSTIP", fieldRef=field("status.hostIP")),
         env("MEM_MI", resourceFieldRef=res("limits.memory", "1Mi")), env("CPU_M", resourceFieldRef=res("limits.cpu", "1m")),
         env("CPU_REQ", resourceFieldRef=res("requests.cpu")), env("MEM_REQ_MI", resourceFieldRef=res("requests.memory", "1Mi")),
         env("K1", configMapKeyRef=pb.ConfigMapKeySelector(localObjectReference=pb.LocalObjectReference(name="cfg"), key="k1")),
         env("PW", secretKeyRef=pb.SecretKeySelector(localObjectReference=pb.LocalObjectReference(name="sec"), key="pw")),
         env("OPT", configMapKeyRef=pb.ConfigMapKeySelector(localObjectReference=pb.LocalObjectReference(name="cfg"),
                                                            key="nope", optional=True))],
    volumeMounts=[pb.VolumeMount(name="all", mountPath="/etc/cfg"), pb.VolumeMount(name="items", mountPath="/etc/items"),
                  pb.VolumeMount(name="sec", mountPath="/etc/sec"), pb.VolumeMount(name="opt", mountPath="/etc/opt")])
pod = pb.Pod(metadata=ctest.meta("cfgpod", "default", labels={"app": "web"}, annotations={"note": "hi"}),
             spec=pb.PodSpec(nodeName="node1", serviceAccountName="default", terminationGracePeriodSeconds=1,
                             containers=[app], volumes=[
                 vol("all", configMap=pb.ConfigMapVolumeSource(localObjectReference=pb.LocalObjectReference(name="cfg"))),
                 vol("items", configMap=pb.ConfigMapVolumeSource(
                     localObjectReference=pb.LocalObjectReference(name="cfg"), defaultMode=0o640,
                     items=[pb.KeyToPath(key="game.properties", path="conf/game.properties", mode=0o600),
                            pb.KeyToPath(key="k1", path="renamed")])),
                 vol("sec", secret=pb.SecretVolumeSource(secretName="sec", defaultMode=0o400)),
                 vol("opt", configMap=pb.ConfigMapVolumeSource(localObjectReference=pb.LocalObjectReference(name="absent"),
                                                               optional=True))]))
t0 = time.time()
r, e = call("Pods", "Create", pod)
if e:
    t.bail("Pods.Create: %s" % (e,))
p = wait_pod("cfgpod", running)
t.ok(p is not None, "pod with configMap, secret and optional volumes and env from every source Running (%.2f s)" % (time.time() - t0))
uid = p.metadata.uid if p else ""
pdir = os.path.join(root, "pods", uid)
logf = os.path.join(pdir, "logs", "app", "0.log")
c.wait_for(lambda: os.path.exists(logf) and "HOSTNAME=" in open(logf).read(), timeout=ctest.DEADLINE)
lines = [l.split(" ", 3)[3] for l in open(logf).read().splitlines() if l.count(" ") >= 3] if os.path.exists(logf) else []
t.is_(dict(l.split("=", 1) for l in lines if "=" in l).get("ARG"), "v1", "$(VAR) expanded in args")
# the process's env as runc has it (a shell would drop names such as game.properties)
got = dict(l.split("=", 1) for l in cexec(p, "env")[1].splitlines() if "=" in l) if p else {}
want = {"LIT": "lit", "EXP": "lit-v1", "ESC": "$(LIT)", "UNDEF": "$(NOPE)", "POD": "cfgpod", "PODNS": "default",
        "PODUID": uid, "APP": "web", "NOTE": "hi", "NODE": "node1", "SA": "default", "PODIP": p.status.podIP if p else "?",
        "HOSTIP": p.status.hostIP if p else "?", "MEM_MI": "64", "CPU_M": "250", "CPU_REQ": "1", "MEM_REQ_MI": "48",
        "K1": "v1", "PW": "s3cret", "k1": "v1", "game.properties": "lives=3", "CM_k1": "v1", "CM_1st": "one",
        "pw": "s3cret", "user": "admin"}
t.is_({n: got.get(n) for n in want}, want, "env: values, $(VAR), fieldRef, resourceFieldRef rounded up, key refs, envFrom")
t.ok("OPT" not in got and "1st" not in got, "an optional missing key and an invalid envFrom name are left out")
t.ok(("Warning", "InvalidEnvironmentVariableNames", "Keys [1st] from the EnvFrom configMap default/cfg were skipped since "
      "they are considered invalid environment variable names.") in events("cfgpod"), "InvalidEnvironmentVariableNames event")


def vpath(*parts):
    return os.path.join(pdir, "volumes", *parts)


def mode(path):
    return oct(stat.S_IMODE(os.stat(path).st_mode))


data = os.readlink(vpath("all", "..data")) if os.path.islink(vpath("all", "..data")) else ""
t.ok(data.startswith("..20") and os.path.isdir(vpath("all", data)) and os.readlink(vpath("all", "k1")) == "..data/k1",
     "atomic writer layout: ..data -> %s, k1 -> ..data/k1" % data)
t.is_(sorted(os.listdir(vpath("all"))), sorted(["..data", data, "k1", "game.properties", "1st"]), "every key, nothing else")
t.is_((mode(vpath("all", "k1")), mode(vpath("items", "conf/game.properties")), mode(vpath("items", "renamed")),
       mode(vpath("sec", "pw"))), ("0o644", "0o600", "0o640", "0o400"), "modes: 0644 default, item mode, defaultMode")
t.is_(sorted(x for x in os.listdir(vpath("items")) if not x.startswith("..")), ["conf", "renamed"], "items select and rename keys")
t.ok(any(l.split()[1] == vpath("sec") and l.split()[2] == "tmpfs" for l in open("/proc/mounts")), "secret volume on tmpfs")
t.ok(not any(l.split()[1] == vpath("all") for l in open("/proc/mounts")), "configMap volume on disk")
t.is_([x for x in os.listdir(vpath("opt")) if not x.startswith("..")], [], "optional missing ConfigMap: an empty volume")
rc, out, err = cexec(p, "sh", "-c", "cat /etc/items/conf/game.properties /etc/sec/pw; echo; touch /etc/cfg/x")
t.ok(out == "lives=3\ns3cret\n" and rc != 0 and "Read-only" in err, "inside: items and secret read, volume read-only (%r %r)" % (out, err))
rc, out, err = c.ctl("--token", "admintoken", "describe", "pod", "cfgpod")
want = ["Environment Variables from:", "cfg\tConfigMap\tOptional: false", "cfg\tConfigMap with prefix 'CM_'\tOptional: false",
        "POD:\tcfgpod (v1:metadata.name)", "NODE:\t (v1:spec.nodeName)", "MEM_MI:\t64 (limits.memory)",
        "K1:\t<set to the key 'k1' of config map 'cfg'>\tOptional: false", "PW:\t<set to the key 'pw' in secret 'sec'>\tOptional: false",
        "Type:\tConfigMap (a volume populated by a ConfigMap)", "Type:\tSecret (a volume populated by a Secret)", "SecretName:\tsec"]
norm = [" ".join(l.split()) for l in out.splitlines()]
missing = [w for w in want if " ".join(w.replace("\t", " ").split()) not in norm]
t.ok(rc == 0 and not missing, "coraclectl describe: envFrom, valueFrom and the volumes as kubectl shows them (missing %s)" % missing)
klog = open(os.path.join(c.dir, "kubelet-node1.log")).read() if os.path.exists(os.path.join(c.dir, "kubelet-node1.log")) else ""
t.ok("s3cret" not in klog, "the secret's value is not in the kubelet's log")

# ---- an update reaches the mounted file (watch, then the ..data swap)
cm = call("ConfigMaps", "Get", pb.GetRequest(namespace="default", name="cfg"))[0]
cm.data["k1"] = "v2"
del cm.data["1st"]
t0 = time.time()
call("ConfigMaps", "Update", cm)
seen = c.wait_for(lambda: cexec(p, "cat", "/etc/cfg/k1")[1] == "v2", timeout=ctest.DEADLINE)
t.ok(seen, "ConfigMap update in the container's file after %.2f s" % (time.time() - t0))
t.ok(not os.path.lexists(vpath("all", "1st")) and not os.path.exists(vpath("all", data)),
     "a removed key's symlink and the old ..timestamp directory are gone")
t.is_(cexec(p, "cat", "/etc/items/renamed")[1], "v2", "items volume updated too")

# ---- a restarted kubelet re-adopts the pod: nothing rewritten, later updates still arrive
before = (os.readlink(vpath("all", "..data")), os.readlink(vpath("sec", "..data")))
k.stop()
k = c.start_kubelet("node1", "--healthz-listen", "", "--token-file", os.path.join(c.dir, "node1.token"),
                    root_dir=root)
cm = call("ConfigMaps", "Get", pb.GetRequest(namespace="default", name="cfg"))[0]
cm.data["k1"] = "v3"
call("ConfigMaps", "Update", cm)
t.ok(c.wait_for(lambda: cexec(p, "cat", "/etc/cfg/k1")[1] == "v3", timeout=ctest.DEADLINE),
     "after a kubelet restart, an update still reaches the file")
t.ok(os.readlink(vpath("sec", "..data")) == before[1] and os.readlink(vpath("all", "..data")) != before[0],
     "the unchanged secret volume was not rewritten")
t.is_(sum(1 for l in open("/proc/mounts") if l.split()[1] == vpath("sec")), 1, "its tmpfs mounted once")

# ---- a missing ConfigMap holds the container until it exists
late = pb.Container(name="c", image="progrium/busybox", imagePullPolicy="IfNotPresent", command=["sh", "-c", "echo $X; exec sleep 3600"],
                    env=[env("X", configMapKeyRef=pb.ConfigMapKeySelector(localObjectReference=pb.LocalObjectReference(name="late"), key="k"))])
call("Pods", "Create", pb.Pod(metadata=ctest.meta("waiter", "default"),
                              spec=pb.PodSpec(nodeName="node1", terminationGracePeriodSeconds=1, containers=[late])))
p2 = wait_pod("waiter", lambda p: cs0(p) and cs0(p).state.waiting.reason == "CreateContainerConfigError")
t.ok(p2 and p2.status.phase == "Pending" and cs0(p2).state.waiting.message == 'configmap "late" not found',
     "CreateContainerConfigError: %s" % (cs0(p2).state.waiting.message if p2 else None))
t.ok(c.wait_for(lambda: ("Warning", "Failed", 'Error: configmap "late" not found') in events("waiter"), timeout=ctest.DEADLINE),
     "Warning Failed event")
call("ConfigMaps", "Create", pb.ConfigMap(metadata=ctest.meta("late", "default"), data={"other": "x"}))
p2 = wait_pod("waiter", lambda p: cs0(p) and cs0(p).state.waiting.message == "couldn't find key k in ConfigMap default/late")
t.ok(p2 is not None, "a missing key: couldn't find key k in ConfigMap default/late")
t0 = time.time()
lm = call("ConfigMaps", "Get", pb.GetRequest(namespace="default", name="late"))[0]
lm.data["k"] = "finally"
call("ConfigMaps", "Update", lm)
p2 = wait_pod("waiter", running)
t.ok(p2 is not None, "Running once the key is there (%.2f s after the update, no polling)" % (time.time() - t0))
nf = sum(1 for e in events("waiter") if e[1] == "Failed")
t.is_(nf, 2, "one Failed event per distinct error")

# ---- node restriction: the kubelet's identity reads only what its pods use
r, e = call("Secrets", "Get", pb.GetRequest(namespace="default", name="other"), tok="n1token")
t.ok(e and e[0] == grpc.StatusCode.PERMISSION_DENIED and "no relationship found between node 'node1' and this object" in e[1],
     "a node is refused a Secret its pods do not use (%s)" % (e,))
r, e = call("Secrets", "Get", pb.GetRequest(namespace="default", name="sec"), tok="n1token")
t.ok(r is not None and r.data["pw"] == b"s3cret", "but may get one they use (%s)" % (e,))
r, e = call("Secrets", "List", pb.ListRequest(namespace="default"), tok="n1token")
t.ok(e and e[0] == grpc.StatusCode.PERMISSION_DENIED, "list of every Secret refused")
r, e = call("Secrets", "List", pb.ListRequest(namespace="default", fieldSelector="metadata.name=other"), tok="n1token")
t.ok(e and e[0] == grpc.StatusCode.PERMISSION_DENIED, "list of a Secret its pods do not use refused")
r, e = call("Secrets", "List", pb.ListRequest(namespace="default", fieldSelector="metadata.name=sec"), tok="n1token")
t.ok(r is not None and [s.metadata.name for s in r.items] == ["sec"], "list of one it uses by metadata.name (%s)" % (e,))
r, e = call("ConfigMaps", "Update", cm, tok="n1token")
t.ok(e and e[0] == grpc.StatusCode.PERMISSION_DENIED, "no writes")

# ---- teardown leaves no mount behind
for n in ("cfgpod", "waiter"):
    call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=n))
gone = c.wait_for(lambda: get("cfgpod") is None and get("waiter") is None, timeout=ctest.DEADLINE)
t.ok(gone and not any(" %s/" % os.path.join(root, "pods") in l for l in open("/proc/mounts")) and not os.path.exists(pdir),
     "pods deleted: volumes unmounted and removed")
t.done()
