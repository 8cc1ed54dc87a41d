#!/usr/bin/python3
# The seed tutorial, 1.7 demo B: shared-volume-pod.yaml, unchanged. Container
# 1st (nginx) serves the emptyDir that container 2nd (debian) writes
# "Container 2 write <date>" into; `describe pod mc1` lists Scheduled (from
# default-scheduler), then per container Pulling/Pulled, Created, Started
# (from kubelet); deleting the pod removes the emptyDir with it.
import os, re, subprocess, sys, json
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import seed

t = ctest.Tap()
s = seed.Seed(t, "62-seed-shared-volume", ["nginx", "debian"])
c = s.c
w = s.watch()
rc, out, err = c.ctl("apply", "-f", seed.manifest("shared-volume-pod.yaml"))
t.is_((rc, out), (0, "pod/mc1 created\n"), "apply -f shared-volume-pod.yaml")
t.ok(w.wait("mc1", "2/2", "Running"), "get po -w: mc1 reaches 2/2 Running")

# Fetch / from nginx inside the pod (bash's /dev/tcp in the debian container:
# the pod shares one network namespace).
fetch = ("exec 3<>/dev/tcp/127.0.0.1/80; printf 'GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3; cat <&3")
body = c.wait_for(lambda: (lambda r: r[1] if "Container 2 write" in r[1] else None)(
    c.ctl("exec", "mc1", "-c", "2nd", "--", "bash", "-c", fetch)), timeout=ctest.DEADLINE) or ""
t.ok(re.search(r"HTTP/1\.1 200 OK", body), "nginx in mc1 answers GET /")
t.ok(re.search(r"^Container 2 write \d{4}-\d\d-\d\d_\d\d-\d\d-\d\d$", body, re.M),
     "GET / returns the lines container 2nd wrote into the emptyDir")

rc, out, err = c.ctl("describe", "pod", "mc1")
evs = seed.event_reasons(out)
reasons = [e[0] for e in evs]
t.is_(reasons, ["Scheduled", "Pulling", "Pulled", "Created", "Started", "Pulling", "Pulled", "Created", "Started"],
      "describe pod mc1: the events in the seed's order")
t.ok(evs and evs[0][1] == "default-scheduler" and evs[0][2] == "Successfully assigned default/mc1 to node1",
     "Scheduled from default-scheduler: Successfully assigned default/mc1 to node1")
t.ok(all(e[1] == "kubelet" for e in evs[1:]), "the rest from kubelet")
msgs = [e[2] for e in evs[1:]]
t.is_([m for m in msgs if m.startswith("Pulling")], ['Pulling image "nginx"', 'Pulling image "debian"'], "Pulling messages")
t.ok([m for m in msgs if m.startswith("Created")] == ["Created container 1st", "Created container 2nd"] and
     [m for m in msgs if m.startswith("Started")] == ["Started container 1st", "Started container 2nd"],
     "Created/Started container 1st, then 2nd")

rc, out, err = c.ctl("get", "po", "mc1", "-o", "json")
uid = json.loads(out)["metadata"]["uid"] if rc == 0 else "?"
pod_dirs = [os.path.join(dp, d) for dp, ds, _ in os.walk(s.root) for d in ds if d == uid]
t.ok(pod_dirs, "the pod has a directory on the node (its emptyDir lives there)")
rc, out, err = c.ctl("delete", "pod", "mc1", timeout=30 + 2 * ctest.DEADLINE)  # sh as PID 1 ignores TERM: the 30 s grace runs out
t.is_((rc, out), (0, 'pod "mc1" deleted\n'), "delete pod mc1")
t.ok(c.wait_for(lambda: any(st == "Terminating" for _, st in w.rows("mc1")), timeout=ctest.DEADLINE), "get po -w: Terminating")
rc, out, err = c.ctl("get", "po")
t.is_(out + err, "No resources found in default namespace.\n", "get po: gone")
t.ok(pod_dirs and not any(os.path.exists(d) for d in pod_dirs), "the pod's directory and emptyDir are gone")
ids, mounts = c.wait_for(lambda: (lambda l: l if not l[0] and not l[1] else None)(s.leftovers()), timeout=ctest.DEADLINE) or s.leftovers()
t.is_((ids, mounts), ([], []), "nothing left on the node: no container, no mount")
t.done()
