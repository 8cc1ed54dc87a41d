#!/usr/bin/python3
"""contrib/bench/sched-bench keeps working: a small run (50 hollow nodes, 500
pods) must bind every pod and print its figures. The full run (1,000 nodes,
10,000 pods) is for humans: contrib/bench/sched-bench."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import ctest  # noqa: E402

t = ctest.Tap()
script = os.path.join(ctest.SRC, "contrib", "bench", "sched-bench")
env = dict(os.environ, CORACLE_BUILD=ctest.BUILD)
p = subprocess.run([script, "--nodes", "50", "--pods", "500", "--timeout", "60"],
                   capture_output=True, text=True, timeout=120, env=env)
t.is_(p.returncode, 0, "sched-bench exits 0")
t.like(p.stdout, "nodes 50, pods 500, bound 500, create errors 0", "every pod bound")
t.like(p.stdout, "create-to-bind latency", "latency reported")
t.like(p.stdout, "pods/s", "throughput reported")
if p.returncode != 0:
    t.diag(p.stdout + p.stderr)
for line in p.stdout.splitlines():
    if "pods/s" in line or "latency" in line:
        t.diag(line)
t.done()
