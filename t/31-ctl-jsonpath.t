#!/usr/bin/python3
# coraclectl get -o jsonpath=... and -o custom-columns=... against a real
# apiserver, compared with what kubectl prints for the same objects: single
# objects and the List, the -o spellings, range/filters/slices, missing keys,
# kubectl's parse and execution errors, jsonpath-as-json and -file,
# custom-columns tables (<none>, several values, --no-headers), and -w.
import json
import os
import subprocess
import sys

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


def jp(tmpl, *args):
    return ctl("get", *args, "-o", "jsonpath=" + tmpl)


# ---- objects: nginx from the seed manifest, web-1 running on n1, web-2 pending ----
rc, out, err = ctl("apply", "-f", os.path.join(SEED, "single-container-pod.yaml"))
t.is_(rc, 0, "seed pod applied")
api.call("Pods", "Create", simple_pod("web-1", containers=[pb.Container(name="c", image="busybox"),
                                                          pb.Container(name="side", image="nginx:1.15")],
                                      nodeName="n1"))
w1 = api.call("Pods", "Get", pb.GetRequest(namespace="default", name="web-1"))
w1.metadata.labels["app"] = "web"
w1 = api.call("Pods", "Update", w1)
w1.status.phase = "Running"
w1.status.podIP = "10.0.0.5"
w1.status.conditions.add(type="Initialized", status="True")
w1.status.conditions.add(type="Ready", status="True")
api.call("Pods", "UpdateStatus", w1)
p2 = simple_pod("web-2")
p2.metadata.labels["app"] = "web"
api.call("Pods", "Create", p2)
rc, out, err = ctl("get", "pods", "-o", "json")
lst = json.loads(out)
names = [p["metadata"]["name"] for p in lst["items"]]
t.is_(names, ["nginx", "web-1", "web-2"], "three pods")
pods = {p["metadata"]["name"]: p for p in lst["items"]}

# ---- one object ----
t.is_(jp("{.status.phase}", "pod", "web-1"), (0, "Running", ""), "{.status.phase}: raw, no newline")
t.is_(ctl("get", "pod", "web-1", "-ojsonpath={.status.podIP}"), (0, "10.0.0.5", ""), "-ojsonpath=")
t.is_(ctl("get", "po/web-1", "--output=jsonpath={.metadata.name}"), (0, "web-1", ""),
      "--output=jsonpath= and TYPE/NAME")
t.is_(ctl("get", "pod", "web-1", "-o", "jsonpath='{.metadata.name}'")[1], "'web-1'",
      "quotes the shell left in are text, as in kubectl")
t.is_(jp("{.metadata.labels}", "pod", "web-1")[1], '{"app":"web"}', "a map as compact JSON")
t.is_(jp('{.status.conditions[?(@.type=="Ready")].status}', "pod", "web-1")[1], "True",
      "filter on the Ready condition")
t.is_(jp("{.spec.containers[*].image}", "pod", "web-1")[1], "busybox nginx:1.15",
      "several results joined by a space")
t.is_(jp("{.spec.containers[-1].name}", "pod", "web-1")[1], "side", "[-1]")
t.is_(jp("{.metadata.creationTimestamp}", "pod", "web-1")[1], pods["web-1"]["metadata"]["creationTimestamp"],
      "timestamps as -o json has them (RFC 3339)")
t.is_(jp("{.spec.containers[0].ports[0].containerPort}", "pod", "nginx")[1], "80", "numbers as text")
t.is_(jp("{.kind}/{.apiVersion} {.metadata.namespace}", "pod", "nginx")[1], "Pod/v1 default",
      "text between actions")
t.is_(jp("{.spec.nodeName}", "pod", "web-2"), (0, "", ""), "a missing key prints nothing")
t.is_(jp("{.status}", "pod", "web-1")[1], json.dumps(pods["web-1"]["status"], separators=(",", ":"), sort_keys=True),
      "an object: the -o json value, compact, keys sorted")

# ---- the List ----
t.is_(jp("{.items[*].metadata.name}", "pods"), (0, "nginx web-1 web-2", ""), "{.items[*].metadata.name}")
want = "".join("%s\t%s\n" % (p["metadata"]["name"], p.get("status", {}).get("podIP", "")) for p in lst["items"])
t.is_(jp('{range .items[*]}{.metadata.name}{"\\t"}{.status.podIP}{"\\n"}{end}', "pods"), (0, want, ""),
      "range with tabs and newlines (kubectl's example)")
t.is_(jp("{.kind} {.apiVersion} {.metadata}", "pods")[1], 'List v1 {"resourceVersion":""}',
      "the List object kubectl builds")
t.is_(jp("{.items[-1].metadata.name} {.items[0:2].metadata.name}", "pods")[1], "web-2 nginx web-1",
      "index and slice")
t.is_(jp('{.items[?(@.spec.nodeName=="n1")].metadata.name}', "pods")[1], "web-1", "filter on the list")
t.is_(jp("{.items[?(@.status.podIP)].metadata.name}", "pods")[1], "web-1", "exists filter")
t.is_(jp("{.items[*].metadata.name}", "pods", "-l", "app=web")[1], "web-1 web-2", "with -l")
t.is_(jp("{.kind} {.items[*].metadata.name}", "pod", "web-1", "web-2")[1], "List web-1 web-2",
      "two names: a List, as kubectl")
t.is_(jp("{.items[*].metadata.name}", "po", "-n", "empty"), (0, "", ""),
      "no pods: empty output, no 'No resources found' (kubectl)")
t.is_(jp("{..image}", "pod", "web-1")[1], "busybox nginx:1.15", "recursive descent")

# ---- jsonpath-as-json, jsonpath-file ----
rc, out, err = ctl("get", "pods", "-o", "jsonpath-as-json={.items[*].metadata.name}")
t.is_((rc, out), (0, '[\n    "nginx",\n    "web-1",\n    "web-2"\n]\n'), "jsonpath-as-json")
tf = os.path.join(c.dir, "tmpl.txt")
with open(tf, "w") as f:
    f.write('{range .items[*]}{.metadata.name}{"\\n"}{end}')
t.is_(ctl("get", "pods", "-o", "jsonpath-file=" + tf), (0, "nginx\nweb-1\nweb-2\n", ""), "jsonpath-file")
t.is_(ctl("get", "pods", "-o", "jsonpath-file=/nonexistent"),
      (1, "", "error: error reading --template /nonexistent, open /nonexistent: no such file or directory\n"),
      "jsonpath-file: a missing file")

# ---- errors ----
t.is_(jp("{.metadata.name", "pod", "web-1"), (1, "", "error: error parsing jsonpath {.metadata.name, unclosed action\n"),
      "parse error: kubectl's message, exit 1")
t.is_(jp("{.a[x]}", "pods")[2], "error: error parsing jsonpath {.a[x]}, invalid array index x\n",
      "bad index")
t.is_(ctl("get", "pods", "-o", "jsonpath"), (1, "", "error: template format specified but no template given\n"),
      "jsonpath without a template")
rc, out, err = jp("{.items[7]}", "pods")
t.is_((rc, out), (1, ""), "execution error: exit 1, nothing on stdout")
t.like(err, 'error: error executing jsonpath "{.items[7]}": Error executing template: array index out of bounds: '
       'index 7, length 3. Printing more information for debugging the template:\n\ttemplate was:\n\t\t{.items[7]}\n',
       "execution error: kubectl's message")
rc, out, err = ctl("get", "pod", "web-2", "--allow-missing-template-keys=false", "-o", "jsonpath={.spec.nodeName}")
t.is_(rc, 1, "--allow-missing-template-keys=false: a missing key fails")
t.like(err, 'error: error executing jsonpath "{.spec.nodeName}": Error executing template: nodeName is not found.',
       "  with kubectl's message")
t.is_(jp("{hello}", "pods")[0], 1, "unknown identifier fails at execution")
rc, out, err = ctl("get", "po", "-o", "xml")
t.is_((rc, err), (1, 'error: unable to match a printer suitable for the output format "xml", allowed formats are: '
                     'custom-columns,json,jsonpath,jsonpath-as-json,jsonpath-file,name,wide,yaml\n'),
      "unknown format lists the new ones")

# ---- custom-columns ----
rc, out, err = ctl("get", "po", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName")
t.is_((rc, out, err), (0, "NAME    NODE\nnginx   <none>\nweb-1   n1\nweb-2   <none>\n", ""),
      "custom-columns: aligned, <none> for missing")
rc, out, err = ctl("get", "po", "--no-headers", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName")
t.is_(out, "nginx   <none>\nweb-1   n1\nweb-2   <none>\n", "custom-columns --no-headers")
rc, out, err = ctl("get", "po", "web-1", "-o",
                   "custom-columns=POD:metadata.name,IMAGES:{.spec.containers[*].image},LABELS:.metadata.labels,"
                   "READY:.status.conditions[?(@.type==\"Ready\")].status")
t.is_(out, "POD     IMAGES               LABELS         READY\nweb-1   busybox,nginx:1.15   map[app:web]   True\n",
      "custom-columns: relaxed paths, values joined by ',', maps as Go prints them, filters")
rc, out, err = ctl("get", "po", "-n", "empty", "-o", "custom-columns=NAME:.metadata.name")
t.is_((rc, out, err), (0, "NAME\n", ""), "custom-columns on no pods: the header only (kubectl)")
t.is_(ctl("get", "po", "-o", "custom-columns=NAME"),
      (1, "", "error: unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>\n"),
      "custom-columns: spec without ':'")
t.is_(ctl("get", "po", "-o", "custom-columns="),
      (1, "", "error: custom-columns format specified but no custom columns given\n"), "custom-columns: empty")
t.is_(ctl("get", "po", "-o", "custom-columns=A:{.a}}")[0], 1, "custom-columns: bad path")
rc, out, err = ctl("get", "po", "-o", "custom-columns=C:.spec.containers[3].name")
t.is_(rc, 1, "custom-columns: an execution error fails")
t.like(err, "error: array index out of bounds: index 3, length 1", "  with the jsonpath error")

# ---- nodes too ----
api.call("Nodes", "Create", pb.Node(metadata=meta("edge-1"),
                                    status=pb.NodeStatus(conditions=[pb.NodeCondition(type="Ready", status="True")])))
t.is_(jp('{.items[0].metadata.name}:{.items[0].status.conditions[?(@.type=="Ready")].status}', "no")[1],
      "edge-1:True", "nodes")


# ---- -w: the template on each object as it changes ----
Watcher = c.ctl_watch


wj = Watcher("pods", "-w", "-o", 'jsonpath={.metadata.name}:{.status.phase}{"\\n"}')
ww = Watcher("pods", "-w", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName")
want = "".join("%s:%s\n" % (n, pods[n].get("status", {}).get("phase", "")) for n in names)
if not t.ok(wj.wait(lambda s: s == want), "-w jsonpath: each listed object"):
    t.diag("got %r, want %r" % (wj.text(), want))
t.ok(ww.wait(lambda s: s == "NAME    NODE\nnginx   <none>\nweb-1   n1\nweb-2   <none>\n"),
     "-w custom-columns: header and rows")
api.call("Pods", "Create", simple_pod("web-3"))
t.ok(wj.wait(lambda s: s.startswith(want) and "\nweb-3:" in s), "-w jsonpath: a new pod")
t.ok(ww.wait(lambda s: s.endswith("web-2   <none>\nweb-3   <none>\n")), "-w custom-columns: a new row")
t.is_(wj.stop(), "", "-w jsonpath: nothing on stderr")
ww.stop()
wbad = Watcher("pods", "-w", "-o", "jsonpath={.spec.containers[3]}")
t.is_(wbad.p.wait(15), 1, "-w with a failing template exits 1")
t.like(wbad.stop(), "error: error executing jsonpath", "  with kubectl's message")

# ---- help, completion ----
rc, out, err = ctl("get", "--help")
t.like(out, "jsonpath=TEMPLATE", "get --help mentions jsonpath")
t.like(out, "custom-columns=", "get --help mentions custom-columns")
comp = os.path.join(ctest.SRC, "contrib", "completion", "coraclectl.bash")
script = ('source "%s"; COMP_WORDS=(coraclectl get -o j); COMP_CWORD=3; _coraclectl; echo "${COMPREPLY[*]}"'
          % comp)
out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30).stdout.split()
t.is_(out, ["json", "jsonpath=", "jsonpath-as-json=", "jsonpath-file="], "completion: -o j")
t.done()
