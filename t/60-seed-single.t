#!/usr/bin/python3
# The seed tutorial, 1.3: single-container-pod.yaml, unchanged, through
# coraclectl as a user types it: `apply -f` prints `pod/nginx created`, the
# watch shows `0/1 ContainerCreating` then `1/1 Running`, `get po` shows it,
# and `delete pod nginx` takes it through Terminating to gone, leaving
# nothing on the node.
import os, sys
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import seed

t = ctest.Tap()
s = seed.Seed(t, "60-seed-single", ["nginx"])
c = s.c
w = s.watch()
rc, out, err = c.ctl("apply", "-f", seed.manifest("single-container-pod.yaml"))
t.is_((rc, out), (0, "pod/nginx created\n"), "apply -f single-container-pod.yaml")
t.ok(w.wait("nginx", "1/1", "Running"), "get po -w: nginx reaches 1/1 Running")
rows = w.rows("nginx")
t.ok(("0/1", "ContainerCreating") in rows and rows.index(("0/1", "ContainerCreating")) < rows.index(("1/1", "Running")),
     "get po -w: 0/1 ContainerCreating before 1/1 Running")
t.diag("watch rows: %s" % rows)
rc, out, err = c.ctl("get", "po")
t.is_(out.splitlines()[0].split(), ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "get po: kubectl's columns")
t.is_(seed.row_of(out, "nginx")[:4], ["nginx", "1/1", "Running", "0"], "get po: nginx 1/1 Running 0 restarts")
rc, out, err = c.ctl("apply", "-f", seed.manifest("single-container-pod.yaml"))
t.is_((rc, out), (0, "pod/nginx unchanged\n"), "apply again: unchanged")
rc, out, err = c.ctl("describe", "pod", "nginx")
evs = seed.event_reasons(out)
t.is_([e[0] for e in evs], ["Scheduled", "Pulled", "Created", "Started"], "describe: the events in order")
t.ok(evs and evs[0][1] == "default-scheduler" and "Successfully assigned default/nginx to node1" in evs[0][2],
     "describe: Scheduled from default-scheduler")
t.ok(len(evs) > 1 and 'Container image "nginx:1.14.2" already present on machine' in evs[1][2],
     "describe: the tagged image is already present")
rc, out, err = c.ctl("delete", "pod", "nginx")
t.is_((rc, out), (0, 'pod "nginx" deleted\n'), "delete pod nginx")
t.ok(c.wait_for(lambda: any(st == "Terminating" for _, st in w.rows("nginx")), timeout=ctest.DEADLINE),
     "get po -w: Terminating")
rc, out, err = c.ctl("get", "po")
t.is_((rc, out + err), (0, "No resources found in default namespace.\n"), "get po: gone")
ids, mounts = c.wait_for(lambda: (lambda l: l if not l[0] and not l[1] else None)(s.leftovers()), timeout=ctest.DEADLINE) or s.leftovers()
t.is_((ids, mounts), ([], []), "nothing left on the node: no container, no mount")
t.done()
