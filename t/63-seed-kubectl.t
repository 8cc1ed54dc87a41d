#!/usr/bin/python3
# The seed tutorial with stock kubectl instead of coraclectl: the three
# manifests, unchanged, against a real one-node cluster. kubectl 1.32 (the
# Google Cloud SDK's, WebSocket exec) and 1.20 (Debian's kubernetes-client,
# SPDY exec), each when the machine has it: apply (created, unchanged,
# configured), create twice (AlreadyExists), get in kubectl's forms (-o
# wide/-A/-w/yaml/json/name/jsonpath, po,no), describe with its events,
# logs, exec into the shared network namespace and the shared volume,
# label, annotate, the three patch types, server-side apply and its
# conflict, delete waiting for the graceful end, explain. Output lines are
# checked, not only exit codes.
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import kubectls
import seed

t = ctest.Tap()
binaries = [b for b in (kubectls.kubectl_132(), kubectls.kubectl_120()) if b]
if not binaries:
    t.skip_all("no stock kubectl on this machine")
s = seed.Seed(t, "63-seed-kubectl", ["nginx", "busybox", "debian"])
c = s.c
base = "http://" + c.api_addr
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv["HOME"] = home


def edited(name, old, new):
    """A copy of a seed manifest with one text replaced."""
    with open(seed.manifest(name)) as f:
        text = f.read()
    assert old in text
    path = os.path.join(c.dir, "edited-" + name)
    with open(path, "w") as f:
        f.write(text.replace(old, new))
    return path


def row(table, name):
    return seed.row_of(table, name) or []


def run(kubectl):
    ver = "1.32" if kubectl == kubectls.KUBECTL_132 else "1.20"
    argv0 = [kubectl, "--server", base, "--cache-dir", os.path.join(home, ver)]

    def k(*args, stdin=None, timeout=120):
        p = subprocess.run(argv0 + list(args), env=kenv, capture_output=True, text=True, timeout=timeout,
                           input=stdin)
        return p.returncode, p.stdout, p.stderr

    def wait_row(name, ready, status):
        return c.wait_for(lambda: row(k("get", "po", name)[1], name)[1:3] == [ready, status],
                          timeout=2 * ctest.DEADLINE, interval=0.3)

    single = seed.manifest("single-container-pod.yaml")
    multi = seed.manifest("multiple-container-pod.yaml")
    shared = seed.manifest("shared-volume-pod.yaml")

    # ---- 1.3: a pod, applied ----
    w = subprocess.Popen(argv0 + ["get", "po", "-w"], env=kenv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    c.on_teardown(lambda: w.poll() is None and w.kill())
    wlines = []
    threading.Thread(target=lambda: wlines.extend(iter(w.stdout.readline, "")), daemon=True).start()
    rc, out, err = k("apply", "-f", single)
    t.is_((rc, out, err), (0, "pod/nginx created\n", ""), "%s: apply -f single-container-pod.yaml" % ver)
    t.ok(wait_row("nginx", "1/1", "Running"), "%s: nginx reaches 1/1 Running" % ver)
    rc, out, err = k("apply", "-f", single)
    t.is_((rc, out), (0, "pod/nginx unchanged\n"), "%s: apply again: unchanged" % ver)
    rc, out, err = k("create", "-f", single)
    t.ok(rc != 0 and 'Error from server (AlreadyExists): error when creating "%s": pods "nginx" already exists'
         % single in err, "%s: create -f again: AlreadyExists (%r)" % (ver, err.strip()))
    c.wait_for(lambda: any(" Running " in l for l in wlines), timeout=ctest.DEADLINE)
    w.kill()
    w.wait()
    rows = [l.split()[:3] for l in wlines if l.startswith("nginx ")]
    t.ok(["nginx", "1/1", "Running"] in rows and rows.index(["nginx", "1/1", "Running"]) > 0,
         "%s: get po -w: a row per change, ending Running (%s)" % (ver, rows))

    # ---- get, in kubectl's forms ----
    rc, out, err = k("get", "po")
    t.is_(out.splitlines()[0].split() if out else [], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
          "%s: get po: the columns" % ver)
    t.is_(row(out, "nginx")[:4], ["nginx", "1/1", "Running", "0"], "%s: get po: nginx 1/1 Running 0" % ver)
    rc, out, err = k("get", "po", "-o", "wide")
    head = out.splitlines()[0].split() if out else []
    r = row(out, "nginx")
    t.ok(head[:8] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED"]
         and len(r) > 6 and r[6] == "node1", "%s: get po -o wide: IP and NODE columns, on node1 (%s)" % (ver, r))
    rc, out, err = k("get", "po", "-A")
    t.ok(out.split()[:2] == ["NAMESPACE", "NAME"] and "default" in (out.splitlines()[1:2] or [""])[0],
         "%s: get po -A: the NAMESPACE column" % ver)
    rc, out, err = k("get", "po", "nginx", "-o", "json")
    o = json.loads(out) if rc == 0 else {}
    t.ok(o.get("kind") == "Pod" and o["spec"]["containers"][0]["image"] == "nginx:1.14.2"
         and o["status"]["phase"] == "Running", "%s: get -o json" % ver)
    rc, out, err = k("get", "po", "nginx", "-o", "yaml")
    t.ok(rc == 0 and "\n  name: nginx\n" in out and "phase: Running" in out, "%s: get -o yaml" % ver)
    t.is_(k("get", "po", "-o", "name")[1], "pod/nginx\n", "%s: get -o name" % ver)
    t.is_(k("get", "po", "nginx", "-o", "jsonpath={.spec.containers[0].image} {.spec.nodeName}")[1],
          "nginx:1.14.2 node1", "%s: get -o jsonpath" % ver)
    rc, out, err = k("get", "po,no")
    t.ok(rc == 0 and re.search(r"^pod/nginx\s+1/1\s+Running", out, re.M)
         and re.search(r"^node/node1\s+Ready", out, re.M), "%s: get po,no: kind/name rows (%r)" % (ver, out))

    # ---- describe ----
    rc, out, err = k("describe", "pod", "nginx")
    evs = seed.event_reasons(out)
    t.is_([e[0] for e in evs], ["Scheduled", "Pulled", "Created", "Started"], "%s: describe: the events" % ver)
    t.ok(re.search(r"^Node:\s+node1/", out, re.M) and re.search(r"^Status:\s+Running", out, re.M),
         "%s: describe: Node and Status" % ver)

    # ---- label, annotate, patch (three types), apply after an edit ----
    t.is_(k("label", "pod", "nginx", "tier=web")[:2], (0, "pod/nginx labeled\n"), "%s: label" % ver)
    t.is_(k("annotate", "pod", "nginx", "note=seed")[:2], (0, "pod/nginx annotated\n"), "%s: annotate" % ver)
    t.is_(k("patch", "pod", "nginx", "-p", '{"metadata":{"labels":{"smp":"yes"}}}')[:2],
          (0, "pod/nginx patched\n"), "%s: patch (strategic merge)" % ver)
    t.is_(k("patch", "pod", "nginx", "--type", "merge", "-p", '{"metadata":{"labels":{"merge":"yes"}}}')[:2],
          (0, "pod/nginx patched\n"), "%s: patch --type merge" % ver)
    t.is_(k("patch", "pod", "nginx", "--type", "json",
            "-p", '[{"op":"add","path":"/metadata/labels/json","value":"yes"}]')[:2],
          (0, "pod/nginx patched\n"), "%s: patch --type json" % ver)
    rc, out, err = k("patch", "pod", "nginx", "--type", "json", "-p", '[{"op":"test","path":"/metadata/name","value":"x"}]')
    t.ok(rc != 0 and "The request is invalid" in err,
         "%s: a JSON patch whose test fails: refused as Invalid (%r)" % (ver, err.strip()))
    labels = json.loads(k("get", "po", "nginx", "-o", "jsonpath={.metadata.labels}")[1] or "{}")
    t.is_(labels, {"tier": "web", "smp": "yes", "merge": "yes", "json": "yes"}, "%s: every label landed" % ver)
    t.is_(k("get", "po", "nginx", "-o", "jsonpath={.metadata.annotations.note}")[1], "seed",
          "%s: the annotation landed" % ver)
    rc, out, err = k("apply", "-f", edited("single-container-pod.yaml", "  name: nginx\n",
                                           "  name: nginx\n  labels:\n    edited: \"yes\"\n"))
    t.is_((rc, out), (0, "pod/nginx configured\n"), "%s: apply after an edit: configured (%r)" % (ver, err))
    t.is_(k("get", "po", "nginx", "-o", "jsonpath={.metadata.labels.edited}")[1], "yes",
          "%s: the edit landed" % ver)

    # ---- delete, waiting for the graceful end ----
    rc, out, err = k("delete", "pod", "nginx", timeout=300)
    t.is_((rc, out), (0, 'pod "nginx" deleted\n'), "%s: delete pod nginx" % ver)
    rc, out, err = k("get", "po")
    t.is_(out + err, "No resources found in default namespace.\n", "%s: deleted when delete returns" % ver)

    # ---- 1.7 demo A: two containers share the network namespace ----
    rc, out, err = k("apply", "-f", multi)
    t.is_((rc, out), (0, "pod/nginx created\n"), "%s: apply -f multiple-container-pod.yaml" % ver)
    t.ok(wait_row("nginx", "2/2", "Running"), "%s: nginx reaches 2/2 Running" % ver)
    page = c.wait_for(lambda: (lambda r: r[1] if "Welcome to nginx!" in r[1] else None)(
        k("exec", "nginx", "-c", "busybox", "--", "wget", "-qO-", "http://localhost:80")),
        timeout=ctest.DEADLINE, interval=0.5)
    t.ok(page, "%s: exec -c busybox -- wget localhost:80: nginx's welcome page" % ver)
    rc, out, err = k("exec", "-i", "nginx", "-c", "busybox", "--", "sh", "-c", "read x; echo got $x; exit 3",
                     stdin="input\n")
    t.ok(rc == 3 and out == "got input\n" and "command terminated with exit code 3" in err,
         "%s: exec -i: stdin, exit code 3 (%d %r %r)" % (ver, rc, out, err.strip()))

    # ---- 1.7 demo B: the shared volume ----
    rc, out, err = k("apply", "-f", shared)
    t.is_((rc, out), (0, "pod/mc1 created\n"), "%s: apply -f shared-volume-pod.yaml" % ver)
    t.ok(wait_row("mc1", "2/2", "Running"), "%s: mc1 reaches 2/2 Running" % ver)
    html = c.wait_for(lambda: (lambda r: r[1] if "Container 2 write" in r[1] else None)(
        k("exec", "mc1", "-c", "1st", "--", "cat", "/usr/share/nginx/html/index.html")),
        timeout=ctest.DEADLINE, interval=0.5)
    t.ok(html, "%s: 1st serves what 2nd wrote into the shared volume" % ver)
    rc, out, err = k("logs", "mc1", "-c", "2nd")
    t.is_((rc, out), (0, ""), "%s: logs -c 2nd (it writes to the volume, not stdout)" % ver)

    rc, out, err = k("delete", "-f", multi, "-f", shared, timeout=300)
    t.ok(rc == 0 and 'pod "nginx" deleted' in out and 'pod "mc1" deleted' in out,
         "%s: delete -f both manifests (%r %r)" % (ver, out, err))
    return ver


done = [run(b) for b in binaries]
t.diag("kubectl versions run: %s" % done)

# ---- what only the newer kubectl has: server-side apply, explain over OpenAPI v3 ----
kubectl = kubectls.kubectl_132()
if kubectl:
    argv0 = [kubectl, "--server", base, "--cache-dir", os.path.join(home, "1.32")]

    def k(*args, stdin=None):
        p = subprocess.run(argv0 + list(args), env=kenv, capture_output=True, text=True, timeout=120, input=stdin)
        return p.returncode, p.stdout, p.stderr

    single = seed.manifest("single-container-pod.yaml")
    rc, out, err = k("apply", "--server-side", "-f", single)
    t.is_((rc, out), (0, "pod/nginx serverside-applied\n"), "1.32: apply --server-side: serverside-applied (%r)" % err)
    mf = json.loads(k("get", "po", "nginx", "-o", "jsonpath={.metadata.managedFields}")[1] or "[]")
    t.ok(any(m.get("manager") == "kubectl" and m.get("operation") == "Apply" for m in mf),
         "1.32: managedFields: kubectl's Apply entry")
    other = edited("single-container-pod.yaml", "image: nginx:1.14.2", "image: nginx:latest")
    rc, out, err = k("apply", "--server-side", "--field-manager", "other", "-f", other)
    t.ok(rc != 0 and "conflict" in err.lower() and '.spec.containers[name="nginx"].image' in err,
         "1.32: another manager's apply: the conflict, named (%r)" % err.strip()[:300])
    rc, out, err = k("apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", other)
    t.is_((rc, out), (0, "pod/nginx serverside-applied\n"), "1.32: --force-conflicts takes the field")
    rc, out, err = k("delete", "pod", "nginx", "--wait=false")
    t.is_(rc, 0, "1.32: delete --wait=false")
    rc, out, err = k("explain", "pod.spec.containers")
    t.ok(rc == 0 and "KIND:" in out and "Pod" in out and re.search(r"^\s+image\s+<string>", out, re.M),
         "1.32: explain pod.spec.containers (%r)" % out[:200])
t.done()
