#!/usr/bin/python3
# The workload kinds' API semantics (no controller runs here: only the
# API): Kubernetes' defaults for ReplicaSets, Deployments, DaemonSets, Jobs
# (the generated selector and labels) and CronJobs and their pod
# templates; validation with Kubernetes' messages; selectors immutable;
# updates keep the status, status updates keep the spec; the scale
# subresource; the columns; describe. Over gRPC, coraclectl and stock kubectl
# (1.32), on the store CORACLE_TEST_STORE names.
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
import kubectls
from ctest import meta

t = ctest.Tap()
c = ctest.Cluster(t)
api = c.start_apiserver()
pb = c.pb
SC = ctest.grpc.StatusCode


def err(service, method, req):
    _, e = api.try_call(service, method, req)
    return (e.code, e.message) if e else (SC.OK, None)


def template(labels, restart=None, image="nginx"):
    spec = pb.PodSpec(containers=[pb.Container(name="c", image=image)])
    if restart:
        spec.restartPolicy = restart
    return pb.PodTemplateSpec(metadata=pb.ObjectMeta(labels=labels), spec=spec)


def selector(**labels):
    return pb.LabelSelector(matchLabels=labels)


def get(service, name):
    return api.call(service, "Get", pb.GetRequest(namespace="default", name=name))


# ---- defaults ----
api.call("Deployments", "Create", pb.Deployment(metadata=meta("d1"), spec=pb.DeploymentSpec(
    selector=selector(app="d1"), template=template({"app": "d1"}))))
d = get("Deployments", "d1")
ru = d.spec.strategy.rollingUpdate
t.ok(d.spec.HasField("replicas") and d.spec.replicas == 1 and d.spec.strategy.type == "RollingUpdate"
     and ru.maxUnavailable.strVal == "25%" and ru.maxSurge.strVal == "25%"
     and d.spec.revisionHistoryLimit == 10 and d.spec.progressDeadlineSeconds == 600,
     "Deployment: replicas 1, RollingUpdate 25%/25%, revisionHistoryLimit 10, progressDeadlineSeconds 600")
ps = d.spec.template.spec
t.ok(ps.restartPolicy == "Always" and ps.dnsPolicy == "ClusterFirst" and ps.schedulerName == "default-scheduler"
     and ps.terminationGracePeriodSeconds == 30 and ps.containers[0].imagePullPolicy == "Always"
     and ps.containers[0].terminationMessagePath == "/dev/termination-log",
     "the template's pod spec has the pods' defaults")
t.ok(d.metadata.generation == 1 and d.HasField("status") and not d.status.HasField("replicas"),
     "generation 1, an empty status")
api.call("ReplicaSets", "Create", pb.ReplicaSet(metadata=meta("r1"), spec=pb.ReplicaSetSpec(
    selector=selector(app="r1"), template=template({"app": "r1"}))))
r = get("ReplicaSets", "r1")
t.ok(r.spec.HasField("replicas") and r.spec.replicas == 1 and r.spec.template.spec.restartPolicy == "Always",
     "ReplicaSet: replicas 1, template defaults")
api.call("DaemonSets", "Create", pb.DaemonSet(metadata=meta("ds1"), spec=pb.DaemonSetSpec(
    selector=selector(app="ds1"), template=template({"app": "ds1"}))))
ds = get("DaemonSets", "ds1")
us = ds.spec.updateStrategy
t.ok(us.type == "RollingUpdate" and us.rollingUpdate.maxUnavailable.intVal == 1
     and us.rollingUpdate.maxUnavailable.type == 0 and us.rollingUpdate.maxSurge.HasField("intVal")
     and us.rollingUpdate.maxSurge.intVal == 0 and ds.spec.revisionHistoryLimit == 10,
     "DaemonSet: RollingUpdate maxUnavailable 1 maxSurge 0, revisionHistoryLimit 10")
api.call("Jobs", "Create", pb.Job(metadata=meta("j1"), spec=pb.JobSpec(
    template=template({}, restart="Never", image="busybox"))))
j = get("Jobs", "j1")
uid = j.metadata.uid
t.ok(j.spec.parallelism == 1 and j.spec.completions == 1 and j.spec.backoffLimit == 6
     and j.spec.completionMode == "NonIndexed" and j.spec.HasField("suspend") and not j.spec.suspend
     and j.spec.podReplacementPolicy == "TerminatingOrFailed" and not j.spec.HasField("manualSelector"),
     "Job: parallelism 1, completions 1, backoffLimit 6, NonIndexed, suspend false, TerminatingOrFailed")
want = {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
        "batch.kubernetes.io/job-name": "j1", "job-name": "j1"}
t.ok(dict(j.spec.selector.matchLabels) == {"batch.kubernetes.io/controller-uid": uid}
     and dict(j.spec.template.metadata.labels) == want and dict(j.metadata.labels) == want,
     "Job: the generated selector (its uid) and the template's (and Job's) labels")
api.call("Jobs", "Create", pb.Job(metadata=meta("j2"), spec=pb.JobSpec(
    parallelism=3, template=template({}, restart="OnFailure", image="busybox"))))
j2 = get("Jobs", "j2")
t.ok(j2.spec.parallelism == 3 and not j2.spec.HasField("completions"),
     "Job: parallelism given, completions stays unset")
api.call("CronJobs", "Create", pb.CronJob(metadata=meta("cj1"), spec=pb.CronJobSpec(
    schedule="*/5 * * * *", jobTemplate=pb.JobTemplateSpec(spec=pb.JobSpec(
        template=template({}, restart="OnFailure", image="busybox"))))))
cj = get("CronJobs", "cj1")
t.ok(cj.spec.concurrencyPolicy == "Allow" and cj.spec.HasField("suspend") and not cj.spec.suspend
     and cj.spec.successfulJobsHistoryLimit == 3 and cj.spec.failedJobsHistoryLimit == 1
     and not cj.spec.jobTemplate.spec.HasField("backoffLimit")
     and cj.spec.jobTemplate.spec.template.spec.dnsPolicy == "ClusterFirst",
     "CronJob: Allow, suspend false, history limits 3 and 1; its template's pods defaulted")

# ---- validation ----
INV = SC.INVALID_ARGUMENT


def dep(name, sel=None, labels=None, **spec):
    return pb.Deployment(metadata=meta(name), spec=pb.DeploymentSpec(
        selector=sel, template=template(labels if labels is not None else {"app": name},
                                        restart=spec.pop("restart", None)), **spec))


t.is_(err("Deployments", "Create", dep("v1")),
      (INV, 'Deployment.apps "v1" is invalid: spec.selector: Required value'), "a Deployment without a selector")
t.is_(err("Deployments", "Create", dep("v2", selector(app="x"))),
      (INV, 'Deployment.apps "v2" is invalid: spec.template.metadata.labels: Invalid value: '
            'map[string]string{"app":"v2"}: `selector` does not match template `labels`'),
      "a selector that does not match the template's labels")
t.is_(err("Deployments", "Create", dep("v3", selector(app="v3"), replicas=-1)),
      (INV, 'Deployment.apps "v3" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'),
      "negative replicas")
t.is_(err("Deployments", "Create", dep("v4", selector(app="v4"), restart="Never")),
      (INV, 'Deployment.apps "v4" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Never": '
            'supported values: "Always"'), "a Deployment's pods always restart")
zero = pb.IntOrString(type=0, intVal=0)
t.is_(err("Deployments", "Create", dep("v5", selector(app="v5"), strategy=pb.DeploymentStrategy(
    type="RollingUpdate", rollingUpdate=pb.RollingUpdateDeployment(maxSurge=zero, maxUnavailable=zero)))),
      (INV, 'Deployment.apps "v5" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: '
            'intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0'),
      "maxSurge and maxUnavailable both 0")
t.is_(err("Deployments", "Create", dep("v6", selector(app="v6"), strategy=pb.DeploymentStrategy(
    type="RollingUpdate", rollingUpdate=pb.RollingUpdateDeployment(maxSurge=pb.IntOrString(type=1, strVal="x%"))))),
      (INV, 'Deployment.apps "v6" is invalid: spec.strategy.rollingUpdate.maxSurge: Invalid value: '
            'intstr.IntOrString{Type:1, IntVal:0, StrVal:"x%"}: a valid percent string must be a numeric string '
            "followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"),
      "a percentage that is not one")
t.is_(err("Deployments", "Create", dep("v7", selector(app="v7"), strategy=pb.DeploymentStrategy(
    type="RollingUpdate", rollingUpdate=pb.RollingUpdateDeployment(maxUnavailable=pb.IntOrString(type=1, strVal="150%"))))),
      (INV, 'Deployment.apps "v7" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: '
            'intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: must not be greater than 100%'),
      "a percentage over 100%")
t.is_(err("DaemonSets", "Create", pb.DaemonSet(metadata=meta("v8"), spec=pb.DaemonSetSpec(
    selector=pb.LabelSelector(), template=template({"app": "v8"})))),
      (INV, 'DaemonSet.apps "v8" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
            'map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is '
            'invalid for daemonset'), "an empty DaemonSet selector")
t.is_(err("ReplicaSets", "Create", pb.ReplicaSet(metadata=meta("v9"), spec=pb.ReplicaSetSpec(
    selector=pb.LabelSelector(matchExpressions=[pb.LabelSelectorRequirement(key="app", operator="In")]),
    template=template({"app": "v9"})))),
      (INV, 'ReplicaSet.apps "v9" is invalid: [spec.selector.matchExpressions[0].values: Required value: must be '
            "specified when `operator` is 'In' or 'NotIn', spec.template.metadata.labels: Invalid value: "
            'map[string]string{"app":"v9"}: `selector` does not match template `labels`]'),
      "a selector requirement without values")
t.is_(err("Jobs", "Create", pb.Job(metadata=meta("v10"), spec=pb.JobSpec(template=template({})))),
      (INV, 'Job.batch "v10" is invalid: spec.template.spec.restartPolicy: Required value: valid values: '
            '"OnFailure", "Never"'), "a Job's pods never restart Always")
t.is_(err("Jobs", "Create", pb.Job(metadata=meta("v11"), spec=pb.JobSpec(
    manualSelector=True, template=template({"a": "b"}, restart="Never")))),
      (INV, 'Job.batch "v11" is invalid: spec.selector: Required value'), "manualSelector without a selector")


def cron(name, schedule, **spec):
    return pb.CronJob(metadata=meta(name), spec=pb.CronJobSpec(schedule=schedule, jobTemplate=pb.JobTemplateSpec(
        spec=pb.JobSpec(template=template({}, restart="Never"))), **spec))


t.is_(err("CronJobs", "Create", cron("v12", "bad")),
      (INV, 'CronJob.batch "v12" is invalid: spec.schedule: Invalid value: "bad": expected exactly 5 fields, found 1: [bad]'),
      "a schedule that is not one")
t.is_(err("CronJobs", "Create", cron("v13", "61 * * * *")),
      (INV, 'CronJob.batch "v13" is invalid: spec.schedule: Invalid value: "61 * * * *": end of range (61) above '
            'maximum (59): 61'), "a minute out of range")
t.is_(err("CronJobs", "Create", cron("v14", "CRON_TZ=UTC 0 0 * * *")),
      (INV, 'CronJob.batch "v14" is invalid: spec.schedule: Invalid value: "CRON_TZ=UTC 0 0 * * *": cannot use TZ '
            'or CRON_TZ in schedule, use timeZone field instead'), "a time zone in the schedule")
t.is_(err("CronJobs", "Create", cron("v15", "@hourly", timeZone="Mars/Olympus")),
      (INV, 'CronJob.batch "v15" is invalid: spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone '
            'Mars/Olympus'), "an unknown time zone")
t.is_(err("CronJobs", "Create", cron("v16", "@daily", concurrencyPolicy="Sometimes")),
      (INV, 'CronJob.batch "v16" is invalid: spec.concurrencyPolicy: Unsupported value: "Sometimes": supported '
            'values: "Allow", "Forbid", "Replace"'), "a concurrency policy that is not one")
t.is_(err("CronJobs", "Create", cron("v17", "0 3 * * MON-FRI", timeZone="UTC")), (SC.OK, None),
      "a weekday schedule in UTC")

# ---- updates: selectors, status, spec ----
d = get("Deployments", "d1")
d.spec.selector.matchLabels["tier"] = "x"
d.spec.template.metadata.labels["tier"] = "x"
t.is_(err("Deployments", "Update", d),
      (INV, 'Deployment.apps "d1" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
            'map[string]string{"app":"d1", "tier":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
            'field is immutable'), "a Deployment's selector is immutable")
j = get("Jobs", "j1")
j.spec.selector.matchLabels["x"] = "y"
code, msg = err("Jobs", "Update", j)
t.ok(code == INV and "spec.selector: Invalid value" in msg and "field is immutable" in msg,
     "a Job's selector is immutable (%s)" % msg)
d = get("Deployments", "d1")
d.spec.replicas = 4
d.status.replicas = 9
d = api.call("Deployments", "Update", d)
t.ok(d.spec.replicas == 4 and d.status.replicas == 0 and d.metadata.generation == 2,
     "Update: the spec changes, the status does not, generation 2")
d.spec.replicas = 7
d.status.replicas = 3
d.status.observedGeneration = 2
d = api.call("Deployments", "UpdateStatus", d)
t.ok(d.spec.replicas == 4 and d.status.replicas == 3 and d.status.observedGeneration == 2
     and d.metadata.generation == 2, "UpdateStatus: the status changes, the spec does not")

# ---- coraclectl ----
rc, out, e = c.ctl("apply", "-f", "-", stdin="""apiVersion: apps/v1
kind: Deployment
metadata: {name: web2}
spec:
  replicas: 3
  selector: {matchLabels: {app: web2}}
  template:
    metadata: {labels: {app: web2}}
    spec:
      containers: [{name: nginx, image: nginx}]
""")
t.is_((rc, out.strip()), (0, "deployment.apps/web2 created"), "coraclectl apply a Deployment (%s)" % e)
rc, out, e = c.ctl("get", "deploy", "web2", "-o", "wide")
lines = out.splitlines()
t.ok(rc == 0 and lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                                      "SELECTOR"]
     and lines[1].split()[:4] == ["web2", "0/3", "0", "0"] and lines[1].split()[5:] == ["nginx", "nginx", "app=web2"],
     "coraclectl get deploy -o wide (%s%s)" % (out, e))
rc, out, e = c.ctl("get", "deploy,ds")
t.ok(rc == 0 and "deployment.apps/web2" in out and "daemonset.apps/ds1" in out and "\n\nNAME" in out,
     "coraclectl get deploy,ds: a table a kind (%s%s)" % (out, e))
rc, out, e = c.ctl("get", "cj", "cj1")
t.ok(rc == 0 and out.splitlines()[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST",
                                                 "SCHEDULE", "AGE"]
     and out.splitlines()[1].split()[:8] == ["cj1", "*/5", "*", "*", "*", "*", "<none>", "False"],
     "coraclectl get cj (%s%s)" % (out, e))

# ---- the scale subresource over REST ----
code, body = ctest.http_get(c.api_addr, "/apis/apps/v1/namespaces/default/deployments/web2/scale")
s = json.loads(body) if code == 200 else {}
t.ok(s.get("kind") == "Scale" and s.get("apiVersion") == "autoscaling/v1" and s["spec"]["replicas"] == 3
     and s["status"] == {"replicas": 0, "selector": "app=web2"} and s["metadata"]["name"] == "web2",
     "GET deployments/NAME/scale: an autoscaling/v1 Scale (%s %s)" % (code, body))
code, body = ctest.http_get(c.api_addr, "/apis/apps/v1/namespaces/default/daemonsets/ds1/scale")
t.is_(code, 404, "daemonsets have no scale")
code, body = ctest.http_get(c.api_addr, "/apis/apps/v1")
res = {r["name"]: r for r in json.loads(body)["resources"]} if code == 200 else {}
t.ok(res.get("deployments/scale", {}).get("group") == "autoscaling" and res["deployments/scale"]["kind"] == "Scale"
     and res["replicasets/scale"]["verbs"] == ["get", "patch", "update"],
     "discovery lists deployments/scale and replicasets/scale in autoscaling/v1")

# ---- stock kubectl ----
kubectl = kubectls.kubectl_132()
if not kubectl:
    t.skip("kubectl 1.32 not installed", 15)
    t.done()
home = os.path.join(c.dir, "khome")
os.makedirs(home)
kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
kenv.update(HOME=home)


def k(*args):
    p = subprocess.run([kubectl, "-s", "http://" + c.api_addr, "--cache-dir", os.path.join(home, "cache")]
                       + list(args), env=kenv, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


rc, out, e = k("create", "deployment", "web", "--image=nginx", "--replicas=2")
t.is_((rc, out.strip()), (0, "deployment.apps/web created"), "kubectl create deployment (%s)" % e)
# kubectl sends protobuf: Go's zero values ("" strings, the zero Time) are not stored as set
tm = api.call("Deployments", "Get", pb.GetRequest(namespace="default", name="web")).spec.template.metadata
md = api.call("Deployments", "Get", pb.GetRequest(namespace="default", name="web")).metadata
t.ok(not tm.HasField("creationTimestamp") and not md.HasField("generateName") and not tm.HasField("name"),
     "a protobuf body's empty strings and zero times stay unset (%s)" % tm)
# ...and the zeros of Go's non-pointer omitempty numbers and bools
ds = api.call("Deployments", "Get", pb.GetRequest(namespace="default", name="web")).spec
c0 = ds.template.spec.containers[0]
t.ok(not ds.HasField("minReadySeconds") and not ds.HasField("paused") and not c0.HasField("tty")
     and not c0.HasField("stdin") and not ds.template.spec.HasField("hostNetwork"),
     "a protobuf body's zero values (minReadySeconds, paused, stdin, tty, hostNetwork) stay unset")
rc, out, e = k("create", "job", "once", "--image=busybox", "--", "true")
t.is_((rc, out.strip()), (0, "job.batch/once created"), "kubectl create job (%s)" % e)
rc, out, e = k("create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *")
t.is_((rc, out.strip()), (0, "cronjob.batch/tick created"), "kubectl create cronjob --schedule (%s)" % e)
rc, out, e = k("create", "cronjob", "bad", "--image=busybox", "--schedule=* * *")
t.ok(rc != 0 and 'spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]' in e,
     "kubectl create cronjob with a bad schedule: refused (%s)" % e.strip())
rc, out, e = k("get", "deploy,rs,ds,job,cj")
heads = [l.split() for l in out.splitlines() if l.startswith("NAME")]
t.is_(heads, [["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
              ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
              ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR", "AGE"],
              ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
              ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]],
      "kubectl get deploy,rs,ds,job,cj: Kubernetes' columns (%s)" % e)
row = [l.split() for l in out.splitlines() if l.startswith("deployment.apps/web ")]
jrow = [l.split() for l in out.splitlines() if l.startswith("job.batch/once ")]
t.ok(row and row[0][:4] == ["deployment.apps/web", "0/2", "0", "0"] and jrow
     and jrow[0][:3] == ["job.batch/once", "Running", "0/1"], "the rows (%s)" % out)
rc, out, e = k("scale", "deploy/web", "--replicas=5")
t.is_((rc, out.strip()), (0, "deployment.apps/web scaled"), "kubectl scale deploy/web --replicas=5 (%s)" % e)
w = get("Deployments", "web")
t.ok(w.spec.replicas == 5 and w.metadata.generation == 2, "spec.replicas is 5, generation 2")
for what in (("deploy", "web"), ("job", "once"), ("cj", "tick"), ("ds", "ds1"), ("rs", "r1")):
    rc, want, e = k("describe", *what)
    rc2, got, e2 = c.ctl("describe", *what)
    t.is_(got, want, "coraclectl describe %s %s: kubectl's text (%s%s)" % (what + (e, e2)))
t.done()
