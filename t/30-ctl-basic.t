#!/usr/bin/python3
# coraclectl end to end against a real apiserver: version, apply/create
# (created/unchanged/configured, last-applied, nothing sent when a document is
# bad), get (tables, -o yaml|json|name, -A, -l, errors), describe, delete
# (--wait through a watch), logs/exec errors, the server choice (flag, env,
# config file) and the unreachable-server message.
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta, simple_pod

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb
SEED = os.path.join(ctest.SRC, "t", "data", "ctl")


def ctl(*args, stdin=None):
    return c.ctl(*args, stdin=stdin)


def write(name, text):
    p = os.path.join(c.dir, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def pods(ns="default"):
    return sorted(p.metadata.name for p in api.call("Pods", "List", pb.ListRequest(namespace=ns)).items)


# ---- version ----
rc, out, err = ctl("version")
t.is_(rc, 0, "version exits 0")
t.like(out, "Client Version: v", "client version")
t.like(out, "Server: %s (reachable)" % c.api_addr, "server reachable")

# ---- apply the seed manifests ----
rc, out, err = ctl("apply", "-f", os.path.join(SEED, "single-container-pod.yaml"))
t.is_((rc, out, err), (0, "pod/nginx created\n", ""), "apply creates")
rc, out, err = ctl("apply", "-f", os.path.join(SEED, "single-container-pod.yaml"))
t.is_((rc, out), (0, "pod/nginx unchanged\n"), "apply again: unchanged")
live = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="nginx"))
ann = dict(live.metadata.annotations).get("kubectl.kubernetes.io/last-applied-configuration", "")
t.is_(json.loads(ann)["spec"]["containers"][0]["image"], "nginx:1.14.2", "last-applied annotation stored")
rv = live.metadata.resourceVersion
rc, out, err = ctl("apply", "-f", os.path.join(SEED, "single-container-pod.yaml"))
t.is_(api.call("Pods", "Get", pb.GetRequest(namespace="default", name="nginx")).metadata.resourceVersion,
      rv, "unchanged: no write")
with open(os.path.join(SEED, "single-container-pod.yaml")) as f:
    seed_single = f.read()
p2 = write("p2.yaml", seed_single.replace("nginx:1.14.2", "nginx:1.15"))
rc, out, err = ctl("apply", "-f", p2)
t.is_((rc, out, err), (0, "pod/nginx configured\n", ""), "changed image: configured")
live = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="nginx"))
t.is_(live.spec.containers[0].image, "nginx:1.15", "image updated")
t.is_(live.spec.restartPolicy, "Always", "server defaults kept by the merge")
# a change the server refuses (pod spec is immutable but for images)
p3 = write("p3.yaml", seed_single.replace("containerPort: 80", "containerPort: 81"))
rc, out, err = ctl("apply", "-f", p3)
t.is_(rc, 1, "immutable field: exit 1")
t.like(err, 'Error from server (Invalid): Pod "nginx" is invalid', "immutable field: server's Invalid error")

rc, out, err = ctl("apply", "-f", os.path.join(SEED, "shared-volume-pod.yaml"))
t.is_((rc, out), (0, "pod/mc1 created\n"), "shared-volume pod created")
mc1 = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="mc1"))
t.is_([x.name for x in mc1.spec.containers], ["1st", "2nd"], "container names 1st/2nd")
t.ok(mc1.spec.volumes[0].volumeSource.HasField("emptyDir"), "emptyDir volume")
t.like(mc1.spec.containers[1].args[0], "echo \"Container 2 write $(date +%F_%H-%M-%S)\">> /share-volume/index.html;",
       "folded multi-line argument")

# create on an existing object fails like kubectl
rc, out, err = ctl("create", "-f", os.path.join(SEED, "shared-volume-pod.yaml"))
t.is_((rc, err), (1, 'Error from server (AlreadyExists): pods "mc1" already exists\n'), "create: AlreadyExists")

# stdin, multi-doc, one bad document: nothing is sent
before = pods()
bad = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: ok-one\nspec:\n  containers:\n  - name: c\n    image: i\n"
       "---\n"
       "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad-one\nspec:\n  containers:\n  - name: c\n"
       "    ports:\n    - containerPort: http\n")
rc, out, err = ctl("apply", "-f", "-", stdin=bad)
t.is_(rc, 1, "bad document: exit 1")
t.is_(err, 'error: STDIN:18:22: spec.containers[0].ports[0].containerPort: expected integer, got "http"\n',
      "bad document: file:line:col and path")
t.is_(pods(), before, "bad document: nothing sent")
bad2 = write("bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  contaners: []\n")
rc, out, err = ctl("apply", "-f", bad2)
t.is_(err, 'error: %s:6:3: spec.contaners: unknown field "contaners"\n' % bad2, "unknown field error")
two = ("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: l1\n"
       "    labels: {app: web}\n  spec:\n    containers:\n    - name: c\n      image: busybox\n"
       "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: l2\n    namespace: other\n  spec:\n"
       "    containers:\n    - name: c\n      image: busybox\n")
rc, out, err = ctl("apply", "-f", "-", stdin=two)
t.is_((rc, out), (0, "pod/l1 created\npod/l2 created\n"), "kind: List from stdin")
d = os.path.join(c.dir, "dir")
os.makedirs(d)
write("dir/a.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: d1\nspec:\n  containers:\n  - name: c\n    image: busybox\n")
write("dir/b.json", json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "d2"},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
write("dir/README", "not a manifest")
rc, out, err = ctl("apply", "-f", d)
t.is_((rc, out), (0, "pod/d1 created\npod/d2 created\n"), "apply -f DIR (yaml and json)")
rc, out, err = ctl("apply", "-n", "kube-system", "-f", os.path.join(d, "a.yaml"))
t.is_(rc, 0, "apply -n NS")
t.ok(api.try_call("Pods", "Get", pb.GetRequest(namespace="kube-system", name="d1"))[0] is not None, "created in -n namespace")
rc, out, err = ctl("apply", "-n", "kube-system", "-f", "-", stdin=two)
t.like(err, 'the namespace from the provided object "other" does not match the namespace "kube-system"',
       "namespace mismatch refused")

# ---- get ----
rc, out, err = ctl("get", "pods")
lines = out.splitlines()
t.is_(rc, 0, "get pods")
t.like(lines[0], "NAME", "header")
t.ok(lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "get po columns")
t.ok(any(l.split()[:4] == ["mc1", "0/2", "Pending", "0"] for l in lines), "mc1 row")
t.is_(lines[0].index("READY"), max(len(l.split()[0]) for l in lines) + 3, "column padding 3 as kubectl")
rc, out2, err = ctl("get", "po", "-o", "wide")
t.ok(out2.splitlines()[0].split()[5:] == ["IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"], "-o wide columns")
rc, out, err = ctl("get", "po", "-A")
t.ok(out.splitlines()[0].startswith("NAMESPACE"), "-A adds NAMESPACE")
t.ok(any(l.split()[:2] == ["other", "l2"] for l in out.splitlines()), "-A lists other namespaces")
rc, out, err = ctl("get", "po", "-l", "app=web", "-o", "name")
t.is_((rc, out), (0, "pod/l1\n"), "-l selector, -o name")
rc, out, err = ctl("get", "po", "l1", "--show-labels")
t.is_(out.splitlines()[0].split()[-1], "LABELS", "--show-labels header")
t.is_(out.splitlines()[1].split()[-1], "app=web", "--show-labels value")
rc, out, err = ctl("get", "po", "nginx", "-o", "yaml")
t.like(out, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nginx\n", "-o yaml starts like kubectl")
t.like(out, "    image: nginx:1.15\n", "-o yaml content")
rc2, out2, err2 = ctl("apply", "-f", "-", stdin=out)
t.is_(rc2, 0, "-o yaml output applies back: " + err2.strip())
rc, out, err = ctl("get", "po", "nginx", "mc1", "-o", "json")
j = json.loads(out)
t.is_((j["kind"], [i["metadata"]["name"] for i in j["items"]]), ("List", ["nginx", "mc1"]), "-o json list")
rc, out, err = ctl("get", "pod/nope")
t.is_((rc, out, err), (1, "", 'Error from server (NotFound): pods "nope" not found\n'), "NotFound")
rc, out, err = ctl("get", "po", "-n", "empty")
t.is_((rc, err), (0, "No resources found in empty namespace.\n"), "no resources")
rc, out, err = ctl("get", "foos")
t.is_((rc, err), (1, 'error: the server doesn\'t have a resource type "foos"\n'), "unknown type")
rc, out, err = ctl("get", "po", "-o", "xml")
t.is_(rc, 1, "bad -o")

# big lists come in pages of 500 (kubectl's chunking): all of them, once
for i in range(1100):
    api.call("Pods", "Create", simple_pod("bulk-%04d" % i, ns="bulk"))
rc, out, err = ctl("get", "po", "-n", "bulk", "-o", "name")
t.is_(out.split(), ["pod/bulk-%04d" % i for i in range(1100)], "1100 pods through 3 pages")

# nodes, events, leases
node = pb.Node(metadata=meta("edge-1", labels={"node-role.kubernetes.io/worker": ""}),
               status=pb.NodeStatus(conditions=[pb.NodeCondition(type="Ready", status="True")],
                                    nodeInfo=pb.NodeSystemInfo(kubeletVersion="v0.1.0")))
api.call("Nodes", "Create", node)
rc, out, err = ctl("get", "no")
t.is_(out.splitlines()[0].split(), ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], "get no header")
t.is_(out.splitlines()[1].split()[:3] + out.splitlines()[1].split()[4:], ["edge-1", "Ready", "worker", "v0.1.0"],
      "get no row")
ev = pb.Event(metadata=meta("nginx.1", "default"),
              involvedObject=pb.ObjectReference(kind="Pod", name="nginx", namespace="default"),
              reason="BackOff", message="Back-off restarting failed container", type="Warning", count=4,
              source=pb.EventSource(component="kubelet"),
              # ages of 10 minutes to 3 hours show whole minutes only (kubectl's
              # HumanDuration), so the row stays the same for a minute however slow
              # the machine (3 minutes showed seconds: "3m1s" once under load)
              firstTimestamp=pb.Time(seconds=int(time.time()) - 2400),
              lastTimestamp=pb.Time(seconds=int(time.time()) - 1200))
api.call("Events", "Create", ev)
rc, out, err = ctl("get", "ev")
t.is_(out.splitlines()[0].split(), ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], "get ev header")
t.like(out, "Warning   BackOff   pod/nginx   Back-off restarting failed container", "get ev row")
rc, out, err = ctl("get", "leases", "-A")
t.is_(rc, 0, "get leases -A")

# ---- describe ----
rc, out, err = ctl("describe", "pod", "nginx")
t.is_(rc, 0, "describe pod")
t.like(out, "Name:         nginx\nNamespace:    default\n", "describe header aligned")
t.like(out, "Containers:\n  nginx:\n    Image:        nginx:1.15\n", "describe containers")
t.like(out, "Events:\n  Type     Reason   Age                From     Message\n", "events table")
t.like(out, "  Warning  BackOff  20m (x4 over 40m)  kubelet  Back-off restarting failed container\n",
       "repeated event Age")
rc, out, err = ctl("describe", "po/mc1")
t.like(out, "Events:          <none>", "no events")
t.like(out, "    Type:        EmptyDir (a temporary directory that shares a pod's lifetime)", "volume")
rc, out, err = ctl("describe", "node", "edge-1")
t.like(out, "Name:               edge-1\nRoles:              worker\n", "describe node")
rc, out, err = ctl("describe", "pods", "-l", "app=web")
t.ok(rc == 0 and out.startswith("Name:         l1\n") and out.count("\nName:") == 0, "describe -l")
rc, out, err = ctl("describe", "pods", "-n", "bulk")
t.is_(out.count("Name:  "), 1100, "describe TYPE without a name: all of them")
rc, out, err = ctl("describe", "pod", "nope")
t.is_((rc, err), (1, 'Error from server (NotFound): pods "nope" not found\n'), "describe NotFound")

# ---- logs / exec: no kubelet runs these pods, so the server refuses; the CLI says so ----
def one_error_line(err):
    return err.count("\n") == 1 and (err.startswith("Error from server (") or err.startswith("error: "))


rc, out, err = ctl("logs", "mc1")
t.is_(rc, 1, "logs: exit 1 for a pod that does not run")
t.ok(one_error_line(err.split("\n", 1)[1]), "logs: one error line: " + err)
t.like(err, 'Defaulted container "1st" out of: 1st, 2nd', "logs: default container named")
dc = simple_pod("dc", containers=[pb.Container(name="x", image="i"), pb.Container(name="y", image="i")])
dc.metadata.annotations["kubectl.kubernetes.io/default-container"] = "y"
api.call("Pods", "Create", dc)
rc, out, err = ctl("logs", "dc")
t.ok(rc == 1 and "Defaulted" not in err, "logs: the default-container annotation is honoured")
rc, out, err = ctl("logs", "nope")
t.is_(err, 'Error from server (NotFound): pods "nope" not found\n', "logs: NotFound")
rc, out, err = ctl("exec", "mc1", "-c", "3rd", "--", "ls")
t.is_((rc, err), (1, "Error from server (BadRequest): container 3rd is not valid for pod mc1\n"), "exec: bad container")
rc, out, err = ctl("exec", "-i", "po/nginx", "--", "cat")
t.is_(rc, 1, "exec: exit 1 for a pod that does not run")
t.ok(one_error_line(err), "exec: one error line: " + err)
rc, out, err = ctl("exec", "nginx")
t.like(err, "you must specify at least one command", "exec: needs a command")
# -it on a terminal: raw mode while the call runs, restored afterwards
import termios
master, slave = os.openpty()
before = termios.tcgetattr(slave)
p = subprocess.run([c.bin("coraclectl"), "--server", c.api_addr, "exec", "-it", "po/nginx", "--", "sh"],
                   stdin=slave, capture_output=True, text=True, timeout=30)
t.is_(termios.tcgetattr(slave), before, "exec -it: terminal settings restored")
t.ok(p.returncode == 1 and one_error_line(p.stderr), "exec -it: the server's answer: " + p.stderr)
os.close(master)
os.close(slave)

# ---- delete ----
rc, out, err = ctl("delete", "pod", "d1")
t.is_((rc, out), (0, 'pod "d1" deleted\n'), "delete")
t.ok("d1" not in pods(), "gone")
rc, out, err = ctl("delete", "pod", "d1")
t.is_((rc, err), (1, 'Error from server (NotFound): pods "d1" not found\n'), "delete NotFound")
rc, out, err = ctl("delete", "pod", "d1", "--ignore-not-found")
t.is_(rc, 0, "--ignore-not-found")
rc, out, err = ctl("delete", "pods", "-n", "bulk", "-l", "nothing=here")
t.is_((rc, err), (0, "No resources found in bulk namespace.\n"), "delete -l: none")
rc, out, err = ctl("delete", "pods", "-n", "bulk", "--all")
t.is_((rc, out.count(" deleted\n")), (0, 1100), "delete --all")
t.is_(pods("bulk"), [], "delete --all: all gone")
rc, out, err = ctl("delete", "pods", "x", "--all")
t.is_(rc, 1, "delete NAME --all refused")
rc, out, err = ctl("delete", "-f", os.path.join(d, "b.json"))
t.is_((rc, out), (0, 'pod "d2" deleted\n'), "delete -f")

# graceful delete of a bound pod: --wait returns once the "kubelet" finishes it
api.call("Pods", "Create", simple_pod("bound", nodeName="edge-1"))
done = {}


def run_delete():
    done["r"] = c.ctl("delete", "pod", "bound")
    done["t"] = time.time()


th = threading.Thread(target=run_delete)
th.start()
got = c.wait_for(lambda: api.call("Pods", "Get", pb.GetRequest(namespace="default", name="bound")).metadata.HasField("deletionTimestamp"), timeout=ctest.DEADLINE)
t.ok(got, "graceful delete marks deletionTimestamp")
time.sleep(0.5)
t.ok(th.is_alive(), "--wait: still waiting while the pod exists")
finish = time.time()
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="bound", gracePeriodSeconds=0))
th.join(ctest.DEADLINE)
t.ok(not th.is_alive() and done["r"][0] == 0 and done["t"] >= finish, "--wait returns after the pod is gone")
t.is_(done["r"][1], 'pod "bound" deleted\n', "delete output")
api.call("Pods", "Create", simple_pod("bound2", nodeName="edge-1"))
rc, out, err = ctl("delete", "pod", "bound2", "--force")
t.is_((rc, out), (0, 'pod "bound2" force deleted\n'), "--force")
t.like(err, "Immediate deletion does not wait", "--force warning")
t.ok("bound2" not in pods(), "--force: gone at once")

# ---- server choice ----
rc, out, err = c.ctl("--server", "127.0.0.1:%d" % ctest.free_port(), "get", "po", server=False)
t.like(err, "The connection to the server 127.0.0.1:", "refused: kubectl's text")
t.like(err, "was refused - did you specify the right host or port?", "refused: the hint")
t.is_(rc, 1, "refused: exit 1")
home = os.path.join(c.dir, "home")
os.makedirs(os.path.join(home, ".config", "coracle"))
with open(os.path.join(home, ".config", "coracle", "config"), "w") as f:
    f.write("# test\nserver = %s\n" % c.api_addr)
env = dict(os.environ, HOME=home)
env.pop("CORACLE_SERVER", None)
env.pop("CORACLE_CONFIG", None)
p = subprocess.run([c.bin("coraclectl"), "get", "po", "nginx", "-o", "name"], env=env, capture_output=True, text=True, timeout=30)
t.is_((p.returncode, p.stdout), (0, "pod/nginx\n"), "server from ~/.config/coracle/config")
env["CORACLE_SERVER"] = "127.0.0.1:1"
p = subprocess.run([c.bin("coraclectl"), "get", "po"], env=env, capture_output=True, text=True, timeout=30)
t.like(p.stderr, "127.0.0.1:1 was refused", "CORACLE_SERVER beats the config file")
p = subprocess.run([c.bin("coraclectl"), "--server", c.api_addr, "get", "po", "nginx", "-o", "name"], env=env,
                   capture_output=True, text=True, timeout=30)
t.is_(p.stdout, "pod/nginx\n", "--server beats CORACLE_SERVER")

# ---- bash completion ----
comp = os.path.join(ctest.SRC, "contrib", "completion", "coraclectl.bash")


def complete(words):
    script = ('source "%s"; COMP_WORDS=(%s); COMP_CWORD=%d; _coraclectl; echo "${COMPREPLY[*]}"'
              % (comp, " ".join("'%s'" % w for w in words), len(words) - 1))
    env = dict(os.environ, PATH=ctest.BUILD + ":" + os.environ["PATH"], CORACLE_SERVER=c.api_addr)
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=30).stdout.split()


t.is_(complete(["coraclectl", "de"]), ["describe", "delete"], "completion: verbs")
t.is_(complete(["coraclectl", "get", "n"]), ["nodes", "no", "namespaces", "ns"], "completion: types")
t.is_(complete(["coraclectl", "get", "pods", "mc"]), ["mc1"], "completion: names from the server")
t.is_(complete(["coraclectl", "get", "-o", "y"]), ["yaml"], "completion: -o")

# ---- help ----
for verb in ["apply", "create", "get", "describe", "delete", "logs", "exec", "version"]:
    rc, out, err = ctl(verb, "--help")
    t.ok(rc == 0 and "Usage:" in out, "%s --help" % verb)
rc, out, err = ctl("frobnicate")
t.is_(rc, 1, "unknown verb")
t.done()
