#!/usr/bin/python3
# coracle-apiserver end to end: RBAC objects (rbac.authorization.k8s.io/v1)
# evaluated by the authorizer with Kubernetes' rules, over gRPC, REST and a
# stock kubectl: grants and revocations take effect on the next call (no
# restart), resourceNames, subresources, nonResourceURLs, ServiceAccount
# subjects, escalation prevention (escalate, bind), roleRef immutability,
# the default roles created at start and reconciled after edits.
# CORACLE_TEST_STORE=etcd3 runs it on etcd.
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest
from ctest import meta
import grpc

t = ctest.Tap()
c = ctest.Cluster(t)
c.implicit_namespaces = False
pb = c.pb
tokens = os.path.join(c.dir, "tokens.csv")
with open(tokens, "w") as f:
    f.write('admintoken,admin,1,"system:masters"\n')
    f.write('bobtoken,bob,2\n')
    f.write('caroltoken,carol,3,"devs"\n')
    f.write('robottoken,system:serviceaccount:team:robot,4,"system:serviceaccounts,system:serviceaccounts:team"\n')
# gRPC and curl over a unix socket (cleartext); kubectl over TLS, where it sends tokens
pki = os.path.join(c.dir, "pki")
tls_addr = "127.0.0.1:%d" % ctest.free_port()
c.certs(pki, "-s", tls_addr)
sock = os.path.join(c.dir, "api.sock")
API_ARGS = ["--listen", "unix:" + sock, "--listen", tls_addr, "--data-dir", os.path.join(c.dir, "data"),
            "--tls-cert-file", os.path.join(pki, "apiserver.crt"), "--tls-private-key-file", os.path.join(pki, "apiserver.key"),
            "--client-ca-file", os.path.join(pki, "ca.crt"),
            "--token-auth-file", tokens, "--authorization-mode", "Node,RBAC"]
RBAC = "rbac.authorization.k8s.io"


def curl(*args):
    p = subprocess.run(["curl", "-s", "--unix-socket", sock] + list(args), capture_output=True, text=True)
    return p.stdout


def start_api():
    c.api = c.start("apiserver", [c.bin("coracle-apiserver")] + API_ARGS + c.store_args())
    if not c.wait_for(lambda: curl("-o", "/dev/null", "-w", "%{http_code}", "http://x/readyz") == "200" or not c.api.alive(),
                      timeout=ctest.DEADLINE) or not c.api.alive():
        t.bail("apiserver not ready:\n" + c.api.tail())
    cl = ctest.Client("unix:" + sock)
    c.clients.append(cl)
    return cl


api = start_api()


def call(tok, svc, method, req):
    rt = api._resp_type(svc, method)
    fn = api.channel.unary_unary("/coracle.v1.%s/%s" % (svc, method), request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=rt.FromString)
    try:
        return fn(req, timeout=ctest.DEADLINE, metadata=[("authorization", "Bearer " + tok)]), None
    except grpc.RpcError as e:
        return None, (e.code(), e.details())


def admin(svc, method, req):
    r, e = call("admintoken", svc, method, req)
    if e:
        t.diag("admin %s/%s: %s" % (svc, method, e))
    return r


def denied(e):
    return bool(e) and e[0] == grpc.StatusCode.PERMISSION_DENIED


def rule(verbs, resources=(), groups=("",), names=(), urls=()):
    if urls:
        return pb.PolicyRule(verbs=list(verbs), nonResourceURLs=list(urls))
    return pb.PolicyRule(verbs=list(verbs), apiGroups=list(groups), resources=list(resources),
                         resourceNames=list(names))


def ref(kind, name):
    return pb.RoleRef(apiGroup=RBAC, kind=kind, name=name)


def user(name):
    return pb.Subject(kind="User", apiGroup=RBAC, name=name)


def http(tok, path):
    return curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer " + tok, "http://x" + path)


def http_body(tok, path):
    return curl("-H", "Authorization: Bearer " + tok, "http://x" + path)


for ns in ("team", "other"):
    admin("Namespaces", "Create", pb.Namespace(metadata=meta(ns)))

# ---- the defaults ----
lst = admin("ClusterRoles", "List", pb.ListRequest())
names = {r.metadata.name for r in lst.items} if lst else set()
want = {"cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
        "system:public-info-viewer", "system:node-proxier", "system:kube-scheduler",
        "system:kube-controller-manager", "system:node"}
t.ok(want <= names, "the default ClusterRoles exist (%s)" % sorted(want - names))
lst = admin("ClusterRoleBindings", "List", pb.ListRequest())
crbs = {b.metadata.name: b for b in lst.items} if lst else {}
t.ok("cluster-admin" in crbs and [s.name for s in crbs["cluster-admin"].subjects] == ["system:masters"]
     and crbs.get("system:discovery") and crbs["system:discovery"].subjects[0].name == "system:authenticated",
     "cluster-admin bound to system:masters, system:discovery to system:authenticated")
ca = [r for r in (admin("ClusterRoles", "List", pb.ListRequest()).items) if r.metadata.name == "cluster-admin"][0]
t.ok(ca.metadata.annotations.get("rbac.authorization.kubernetes.io/autoupdate") == "true"
     and ca.metadata.labels.get("kubernetes.io/bootstrapping") == "rbac-defaults",
     "autoupdate annotation and bootstrapping label")

# ---- no grants: Forbidden ----
r, e = call("bobtoken", "Pods", "List", pb.ListRequest(namespace="team"))
t.ok(denied(e), "bob, no grants: PERMISSION_DENIED")
t.is_(e and e[1], 'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "team"',
      "Kubernetes' text")
t.is_(http("bobtoken", "/api/v1/namespaces/team/pods"), "403", "REST: 403")
t.is_(http("bobtoken", "/api"), "200", "discovery: system:discovery for every authenticated user")
t.is_(http("bobtoken", "/version"), "200", "/version too")

# ---- Role + RoleBinding over gRPC: the next call ----
admin("Roles", "Create", pb.Role(metadata=meta("pod-reader", "team"), rules=[rule(["get", "list", "watch"], ["pods"])]))
admin("RoleBindings", "Create", pb.RoleBinding(metadata=meta("bob-reads", "team"), roleRef=ref("Role", "pod-reader"),
                                                subjects=[user("bob")]))
r, e = call("bobtoken", "Pods", "List", pb.ListRequest(namespace="team"))
t.ok(not e, "RoleBinding made: bob lists pods in team at the next call (%s)" % (e,))
r, e = call("bobtoken", "Pods", "List", pb.ListRequest(namespace="other"))
t.ok(denied(e), "but not in namespace other")
r, e = call("bobtoken", "Pods", "List", pb.ListRequest())
t.ok(denied(e), "nor across all namespaces")
r, e = call("bobtoken", "Pods", "Create", ctest.simple_pod("p", "team"))
t.ok(denied(e), "nor create")
t.is_(http("bobtoken", "/api/v1/namespaces/team/pods"), "200", "REST agrees")
admin("RoleBindings", "Delete", pb.DeleteRequest(namespace="team", name="bob-reads"))
r, e = call("bobtoken", "Pods", "List", pb.ListRequest(namespace="team"))
t.ok(denied(e), "RoleBinding deleted: refused at the next call")

# ---- ClusterRole + ClusterRoleBinding to a group ----
admin("ClusterRoles", "Create", pb.ClusterRole(metadata=meta("node-reader"), rules=[rule(["get", "list"], ["nodes"])]))
r, e = call("caroltoken", "Nodes", "List", pb.ListRequest())
t.ok(denied(e), "carol (group devs) may not list nodes")
admin("ClusterRoleBindings", "Create", pb.ClusterRoleBinding(
    metadata=meta("devs-read-nodes"), roleRef=ref("ClusterRole", "node-reader"),
    subjects=[pb.Subject(kind="Group", apiGroup=RBAC, name="devs")]))
r, e = call("caroltoken", "Nodes", "List", pb.ListRequest())
t.ok(not e, "ClusterRoleBinding to group devs: carol lists nodes (%s)" % (e,))
r, e = call("caroltoken", "Nodes", "Delete", pb.DeleteRequest(name="x"))
t.ok(denied(e), "but may not delete one")

# ---- aggregated ClusterRoles: the controller manager, as system:kube-controller-manager ----
# (its certificate: the default roles must be all it needs)
c.start("controller-manager", [c.bin("coracle-controller-manager"), "--config", os.path.join(pki, "controller-manager.conf"),
                               "--leader-elect=false", "--healthz-listen", ""])
# the scheduler too, as system:kube-scheduler: a pod gets bound with only the default roles
import schedutil as su  # noqa: E402
c.start("scheduler", [c.bin("coracle-scheduler"), "--config", os.path.join(pki, "scheduler.conf"), "--leader-elect=false"])
admin("Nodes", "Create", su.node("sn1"))
admin("Pods", "Create", su.pod("to-bind", ns="team"))
t.ok(c.wait_for(lambda: (admin("Pods", "Get", pb.GetRequest(namespace="team", name="to-bind")).spec.nodeName == "sn1"),
                timeout=60), "the scheduler binds a pod, with only the default roles")
admin("RoleBindings", "Create", pb.RoleBinding(metadata=meta("carol-view", "team"), roleRef=ref("ClusterRole", "view"),
                                                subjects=[user("carol")]))
t.ok(c.wait_for(lambda: not call("caroltoken", "ConfigMaps", "List", pb.ListRequest(namespace="team"))[1], timeout=60),
     "RoleBinding to ClusterRole view, aggregated from system:aggregate-to-view: carol lists configmaps in team")
r, e = call("caroltoken", "ConfigMaps", "List", pb.ListRequest(namespace="other"))
t.ok(denied(e), "not in other")


def view_has(res):
    v = admin("ClusterRoles", "Get", pb.GetRequest(name="view"))
    return v and any(res in r.resources for r in v.rules)


admin("ClusterRoles", "Create", pb.ClusterRole(metadata=meta("widgets-view", labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
                                               rules=[rule(["get"], ["widgets"], groups=["example.com"])]))
t.ok(c.wait_for(lambda: view_has("widgets"), timeout=60), "a new role labelled aggregate-to-view: its rules join view")
t.ok(c.wait_for(lambda: any("widgets" in r.resources for r in admin("ClusterRoles", "Get", pb.GetRequest(name="admin")).rules),
                timeout=60), "and admin (view aggregates into edit, edit into admin)")
admin("ClusterRoles", "Delete", pb.DeleteRequest(name="widgets-view"))
t.ok(c.wait_for(lambda: not view_has("widgets"), timeout=60), "deleted: its rules leave view")
admin("ClusterRoles", "Create", pb.ClusterRole(metadata=meta("cr-maker"), rules=[rule(["create"], ["clusterroles"], groups=[RBAC])]))
admin("ClusterRoleBindings", "Create", pb.ClusterRoleBinding(metadata=meta("carol-cr-maker"), roleRef=ref("ClusterRole", "cr-maker"),
                                                              subjects=[user("carol")]))
r, e = call("caroltoken", "ClusterRoles", "Create", pb.ClusterRole(
    metadata=meta("mine-agg"), aggregationRule=pb.AggregationRule(clusterRoleSelectors=[pb.LabelSelector(matchLabels={"x": "y"})])))
t.is_(e and e[1], 'clusterroles.rbac.authorization.k8s.io "mine-agg" is forbidden: must have cluster-admin privileges to use '
      'the aggregationRule', "an aggregationRule needs every right")

# ---- resourceNames ----
for n in ("cm1", "cm2"):
    admin("ConfigMaps", "Create", pb.ConfigMap(metadata=meta(n, "other"), data={"k": "v"}))
admin("Roles", "Create", pb.Role(metadata=meta("cm1-only", "other"), rules=[rule(["get"], ["configmaps"], names=["cm1"])]))
admin("RoleBindings", "Create", pb.RoleBinding(metadata=meta("bob-cm1", "other"), roleRef=ref("Role", "cm1-only"),
                                                subjects=[user("bob")]))
r, e = call("bobtoken", "ConfigMaps", "Get", pb.GetRequest(namespace="other", name="cm1"))
t.ok(not e, "resourceNames [cm1]: get cm1 (%s)" % (e,))
r, e = call("bobtoken", "ConfigMaps", "Get", pb.GetRequest(namespace="other", name="cm2"))
t.ok(denied(e) and 'configmaps "cm2" is forbidden' in e[1], "but not cm2 (%s)" % (e,))
r, e = call("bobtoken", "ConfigMaps", "List", pb.ListRequest(namespace="other"))
t.ok(denied(e), "nor list")

# ---- subresources ----
admin("Pods", "Create", ctest.simple_pod("sp", "other"))
admin("Roles", "Create", pb.Role(metadata=meta("status-writer", "other"),
                                 rules=[rule(["get", "update"], ["pods/status"]), rule(["get"], ["pods"])]))
admin("RoleBindings", "Create", pb.RoleBinding(metadata=meta("bob-status", "other"), roleRef=ref("Role", "status-writer"),
                                                subjects=[user("bob")]))
# The scheduler running above may mark sp unschedulable between the Get and
# the update: retried on conflict, as client-go's RetryOnConflict does.
for _ in range(5):
    pod, e = call("bobtoken", "Pods", "Get", pb.GetRequest(namespace="other", name="sp"))
    r, e = call("bobtoken", "Pods", "UpdateStatus", pod)
    if not (e and "the object has been modified" in e[1]):
        break
t.ok(not e, "pods/status: UpdateStatus (%s)" % (e,))
r, e = call("bobtoken", "Pods", "Update", pod)
t.ok(denied(e), "but not the pod itself")
admin("ClusterRoles", "Create", pb.ClusterRole(metadata=meta("any-status"), rules=[rule(["update"], ["*/status"])]))
admin("ClusterRoleBindings", "Create", pb.ClusterRoleBinding(metadata=meta("carol-status"), roleRef=ref("ClusterRole", "any-status"),
                                                              subjects=[user("carol")]))
node = admin("Nodes", "Create", pb.Node(metadata=meta("n1")))
r, e = call("caroltoken", "Nodes", "UpdateStatus", node)
t.ok(not e, "*/status: carol updates a node's status (%s)" % (e,))
r, e = call("caroltoken", "Nodes", "Update", node)
t.ok(denied(e), "not the node")

# ---- ServiceAccount subjects ----
r, e = call("robottoken", "Secrets", "List", pb.ListRequest(namespace="team"))
t.ok(denied(e), "service account team:robot: no grants")
admin("Roles", "Create", pb.Role(metadata=meta("secret-reader", "team"), rules=[rule(["list"], ["secrets"])]))
admin("RoleBindings", "Create", pb.RoleBinding(metadata=meta("robot", "team"), roleRef=ref("Role", "secret-reader"),
                                                subjects=[pb.Subject(kind="ServiceAccount", name="robot")]))
r, e = call("robottoken", "Secrets", "List", pb.ListRequest(namespace="team"))
t.ok(not e, "a ServiceAccount subject (namespace: the binding's) (%s)" % (e,))

# ---- nonResourceURLs ----
admin("ClusterRoleBindings", "Delete", pb.DeleteRequest(name="system:discovery"))
t.is_(http("bobtoken", "/apis"), "403", "system:discovery unbound: /apis is 403")
body = http_body("bobtoken", "/api")
t.ok('forbidden: User \\"bob\\" cannot get path \\"/api\\"' in body, "Kubernetes' text (%s)" % body.strip())
t.is_(http("bobtoken", "/version"), "200", "/version: still system:public-info-viewer's")
admin("ClusterRoles", "Create", pb.ClusterRole(metadata=meta("apis-only"), rules=[rule(["get"], urls=["/apis/*", "/apis"])]))
admin("ClusterRoleBindings", "Create", pb.ClusterRoleBinding(metadata=meta("bob-apis"), roleRef=ref("ClusterRole", "apis-only"),
                                                              subjects=[user("bob")]))
t.is_((http("bobtoken", "/apis"), http("bobtoken", "/apis/apps/v1"), http("bobtoken", "/api")), ("200", "200", "403"),
      "nonResourceURLs /apis and /apis/*: /apis, /apis/apps/v1; not /api")
admin("ClusterRoleBindings", "Create", crbs["system:discovery"])
t.is_(http("bobtoken", "/api"), "200", "system:discovery bound again: /api")

# ---- escalation ----
admin("Roles", "Create", pb.Role(metadata=meta("role-maker", "team"),
                                 rules=[rule(["create", "update", "get"], ["roles", "rolebindings"], groups=[RBAC]),
                                        rule(["get", "list"], ["pods"])]))
admin("RoleBindings", "Create", pb.RoleBinding(metadata=meta("bob-makes-roles", "team"), roleRef=ref("Role", "role-maker"),
                                                subjects=[user("bob")]))
r, e = call("bobtoken", "Roles", "Create", pb.Role(metadata=meta("mine", "team"), rules=[rule(["get"], ["pods"])]))
t.ok(not e, "bob grants what he holds (get pods) (%s)" % (e,))
r, e = call("bobtoken", "Roles", "Create", pb.Role(metadata=meta("secrets", "team"), rules=[rule(["get"], ["secrets"])]))
t.ok(denied(e), "bob may not grant get secrets")
t.is_(e and e[1], 'roles.rbac.authorization.k8s.io "secrets" is forbidden: user "bob" (groups=["system:authenticated"]) '
      'is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}',
      "Kubernetes' message")
r, e = call("bobtoken", "RoleBindings", "Create", pb.RoleBinding(metadata=meta("bob-admin", "team"),
                                                                  roleRef=ref("ClusterRole", "cluster-admin"), subjects=[user("bob")]))
t.ok(denied(e) and "is attempting to grant RBAC permissions not currently held" in e[1],
     "nor bind himself to cluster-admin")
r, e = call("bobtoken", "RoleBindings", "Create", pb.RoleBinding(metadata=meta("bob-mine", "team"),
                                                                  roleRef=ref("Role", "mine"), subjects=[user("carol")]))
t.ok(not e, "but may bind a role whose rules he holds (%s)" % (e,))
code = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "Authorization: Bearer bobtoken",
            "-H", "Content-Type: application/json", "-X", "POST", "--data",
            json.dumps({"apiVersion": RBAC + "/v1", "kind": "Role", "metadata": {"name": "sec2"},
                        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}),
            "http://x/apis/%s/v1/namespaces/team/roles" % RBAC)
t.is_(code, "403", "REST create of an escalating Role: 403")
admin("Roles", "Create", pb.Role(metadata=meta("escalator", "team"),
                                 rules=[rule(["escalate"], ["roles"], groups=[RBAC]),
                                        rule(["bind"], ["clusterroles"], groups=[RBAC], names=["edit"])]))
admin("RoleBindings", "Create", pb.RoleBinding(metadata=meta("bob-escalates", "team"), roleRef=ref("Role", "escalator"),
                                                subjects=[user("bob")]))
r, e = call("bobtoken", "Roles", "Create", pb.Role(metadata=meta("secrets", "team"), rules=[rule(["get"], ["secrets"])]))
t.ok(not e, "with escalate on roles: allowed (%s)" % (e,))
r, e = call("bobtoken", "RoleBindings", "Create", pb.RoleBinding(metadata=meta("carol-edit", "team"),
                                                                  roleRef=ref("ClusterRole", "edit"), subjects=[user("carol")]))
t.ok(not e, "with bind on clusterroles/edit: binds edit (%s)" % (e,))
r, e = call("bobtoken", "RoleBindings", "Create", pb.RoleBinding(metadata=meta("carol-proxier", "team"),
                                                                  roleRef=ref("ClusterRole", "system:node-proxier"),
                                                                  subjects=[user("carol")]))
t.ok(denied(e), "but not another role (resourceNames honoured)")

# ---- roleRef is immutable ----
rb = admin("RoleBindings", "Get", pb.GetRequest(namespace="team", name="bob-mine"))
rb.roleRef.name = "pod-reader"
r, e = call("admintoken", "RoleBindings", "Update", rb)
t.ok(e and e[0] == grpc.StatusCode.INVALID_ARGUMENT and "cannot change roleRef" in e[1], "roleRef may not change (%s)" % (e,))

# ---- kubectl ----
kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
if os.access(kubectl, os.X_OK):
    home = os.path.join(c.dir, "khome")
    os.makedirs(home)
    kenv = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    kenv.update(HOME=home)

    def k(tok, *args):
        who = ["--client-certificate", os.path.join(pki, "admin.crt"), "--client-key", os.path.join(pki, "admin.key")] \
            if tok == "admintoken" else ["--token", tok]
        p = subprocess.run([kubectl, "--server", "https://" + tls_addr, "--certificate-authority", os.path.join(pki, "ca.crt"),
                            "--cache-dir", os.path.join(home, "cache")] + who + list(args),
                           env=kenv, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    rc, out, err = k("bobtoken", "get", "pods", "-n", "other")
    t.ok(rc != 0 and 'User "bob" cannot list resource "pods"' in err, "kubectl: bob may not list pods in other (%r)" % err.strip())
    rc, out, err = k("admintoken", "create", "role", "lister", "-n", "other", "--verb=list", "--resource=pods")
    rc2, out2, err2 = k("admintoken", "create", "rolebinding", "bob-lists", "-n", "other", "--role=lister", "--user=bob")
    t.ok(rc == 0 and rc2 == 0, "kubectl create role, create rolebinding (%r %r)" % (err.strip(), err2.strip()))
    rc, out, err = k("bobtoken", "get", "pods", "-n", "other")
    t.ok(rc == 0 and "sp" in out, "bob lists them at once (%r %r)" % (out, err))
    rc, out, err = k("bobtoken", "auth", "can-i", "--list", "-n", "other")
    rows = [l.split() for l in out.split("\n")[1:] if l.strip()]
    # pods list from the RoleBinding just made; /version from the default system:discovery binding
    t.ok(rc == 0 and any(r[0] == "pods" and "list" in " ".join(r[3:]) for r in rows)
         and any(r[0] == "[/version]" for r in rows) and "incomplete" not in err,
         "kubectl auth can-i --list shows the rules of RBAC bindings (%r %r)" % (out, err))
    rc, out, err = k("admintoken", "get", "role", "-n", "other")
    t.ok(rc == 0 and out.split("\n")[0].split() == ["NAME", "CREATED", "AT"] and "lister" in out,
         "kubectl get role: NAME CREATED AT (%r)" % out)
    rc, out, err = k("admintoken", "get", "rolebinding", "-n", "other")
    lines = out.split("\n")
    t.ok(rc == 0 and lines[0].split() == ["NAME", "ROLE", "AGE"] and any(l.split()[:2] == ["bob-lists", "Role/lister"] for l in lines),
         "kubectl get rolebinding: NAME ROLE AGE (%r)" % out)
    rc, out, err = k("admintoken", "get", "clusterrolebinding", "cluster-admin")
    t.ok(rc == 0 and out.split("\n")[1].split()[:2] == ["cluster-admin", "ClusterRole/cluster-admin"],
         "kubectl get clusterrolebinding (%r)" % out)
    rc, out, err = k("admintoken", "describe", "role", "lister", "-n", "other")
    t.ok(rc == 0 and "PolicyRule:" in out and "pods" in out and "[list]" in out, "kubectl describe role (%r %r)" % (out, err))
    rc, out, err = k("admintoken", "create", "clusterrole", "pod-getter", "--verb=get", "--resource=pods")
    rc2, out2, err2 = k("admintoken", "create", "clusterrolebinding", "carol-gets", "--clusterrole=pod-getter", "--group=devs")
    t.ok(rc == 0 and rc2 == 0, "kubectl create clusterrole, clusterrolebinding (%r %r)" % (err.strip(), err2.strip()))
    rc, out, err = k("caroltoken", "get", "pod", "sp", "-n", "other")
    t.ok(rc == 0, "carol gets the pod through her group (%r)" % err.strip())
    k("admintoken", "delete", "rolebinding", "bob-lists", "-n", "other")
    rc, out, err = k("bobtoken", "get", "pods", "-n", "other")
    t.ok(rc != 0, "kubectl delete rolebinding: refused again (%r)" % err.strip())
else:
    t.skip("kubectl 1.32 not installed", 11)

# ---- coraclectl: create role ... from flags; apply, get, delete from YAML ----
def ctl(tok, *args, stdin=None):
    return c.ctl("--server", "unix:" + sock, "--token", tok, *args, stdin=stdin, server=False)


rc, out, err = ctl("admintoken", "create", "role", "cm-reader", "-n", "other", "--verb=get,list",
                   "--resource=configmaps", "--resource=deployments.apps")
rc2, out2, err2 = ctl("admintoken", "create", "rolebinding", "bob-cm", "-n", "other", "--role=cm-reader", "--user=bob",
                      "--serviceaccount=team:robot")
t.ok(rc == 0 and rc2 == 0 and out.strip() == "role.rbac.authorization.k8s.io/cm-reader created",
     "coraclectl create role, create rolebinding (%r %r %r)" % (out, err, err2))
role = admin("Roles", "Get", pb.GetRequest(namespace="other", name="cm-reader"))
t.ok(role and [(list(r.apiGroups), list(r.resources), list(r.verbs)) for r in role.rules] ==
     [([""], ["configmaps"], ["get", "list"]), (["apps"], ["deployments"], ["get", "list"])],
     "one rule per API group, as kubectl makes them")
r, e = call("bobtoken", "ConfigMaps", "List", pb.ListRequest(namespace="other"))
r2, e2 = call("robottoken", "Deployments", "List", pb.ListRequest(namespace="other"))
t.ok(not e and not e2, "bob and team:robot list what it grants (%s %s)" % (e, e2))
rc, out, err = ctl("admintoken", "create", "clusterrolebinding", "x", "--role=nope")
t.ok(rc != 0 and "exactly one of clusterrole or role" in err, "a clusterrolebinding needs --clusterrole (%r)" % err)
rc, out, err = ctl("admintoken", "apply", "-f", "-", stdin="apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                   "metadata: {name: yaml-role}\nrules:\n- {apiGroups: [''], resources: [pods], verbs: [get]}\n")
t.ok(rc == 0 and "yaml-role" in out, "coraclectl apply -f of a ClusterRole (%r %r)" % (out, err))
rc, out, err = ctl("admintoken", "get", "rolebindings", "-n", "other")
t.ok(rc == 0 and out.split("\n")[0].split() == ["NAME", "ROLE", "AGE"] and "Role/cm-reader" in out,
     "coraclectl get rolebindings (%r)" % out)
rc, out, err = ctl("admintoken", "get", "clusterrole", "yaml-role")
t.ok(rc == 0 and out.split("\n")[0].split() == ["NAME", "CREATED", "AT"], "coraclectl get clusterrole (%r)" % out)
rc, out, err = ctl("admintoken", "describe", "role", "cm-reader", "-n", "other")
t.ok(rc == 0 and "PolicyRule:" in out and "deployments.apps" in out and "[get list]" in out,
     "coraclectl describe role: kubectl's rules table (%r %r)" % (out, err))
rc, out, err = ctl("admintoken", "describe", "rolebinding", "bob-cm", "-n", "other")
t.ok(rc == 0 and "Kind:  Role" in out and "ServiceAccount  robot  team" in out,
     "coraclectl describe rolebinding: role and subjects (%r %r)" % (out, err))
rc, out, err = ctl("admintoken", "delete", "clusterrole", "yaml-role")
t.ok(rc == 0 and admin("ClusterRoles", "List", pb.ListRequest()) and
     "yaml-role" not in [x.metadata.name for x in admin("ClusterRoles", "List", pb.ListRequest()).items],
     "coraclectl delete clusterrole (%r)" % err)
rc, out, err = ctl("bobtoken", "create", "role", "sneaky", "-n", "other", "--verb=get", "--resource=secrets")
t.ok(rc != 0 and "Forbidden" in err, "coraclectl as bob: Forbidden (%r)" % err.strip())

# ---- reconciliation at start ----
view = admin("ClusterRoles", "Get", pb.GetRequest(name="system:aggregate-to-view"))
del view.rules[:]
view.rules.extend([rule(["get"], ["pods"])])
admin("ClusterRoles", "Update", view)
pub = admin("ClusterRoles", "Get", pb.GetRequest(name="system:public-info-viewer"))
pub.metadata.annotations["rbac.authorization.kubernetes.io/autoupdate"] = "false"
del pub.rules[:]
pub.rules.extend([rule(["get"], urls=["/healthz"])])
admin("ClusterRoles", "Update", pub)
c.api.stop()
api = start_api()
view = admin("ClusterRoles", "Get", pb.GetRequest(name="system:aggregate-to-view"))
t.ok(view and len(view.rules) > 5 and view.rules[0].resources == ["pods"],
     "restart: an edited default role gets its rules back, the extra kept (%d rules)" % (len(view.rules) if view else 0))
pub = admin("ClusterRoles", "Get", pb.GetRequest(name="system:public-info-viewer"))
t.ok(pub and len(pub.rules) == 1, "autoupdate \"false\": left as edited")
t.ok(admin("ClusterRoleBindings", "Get", pb.GetRequest(name="system:discovery")) is not None,
     "a deleted default binding is made again")
t.is_(http("bobtoken", "/api"), "200", "and discovery works again")
r, e = call("bobtoken", "Roles", "Get", pb.GetRequest(namespace="team", name="mine"))
t.ok(not e, "the RBAC objects made before the restart authorize after it (%s)" % (e,))

# ---- etcd: a grant written through one apiserver counts on another ----
if ctest.STORE == "etcd3":
    sock2 = os.path.join(c.dir, "api2.sock")
    args2 = [a.replace(sock, sock2).replace(os.path.join(c.dir, "data"), os.path.join(c.dir, "data2")) for a in API_ARGS]
    args2[args2.index(tls_addr)] = "127.0.0.1:%d" % ctest.free_port()
    api2 = c.start("apiserver2", [c.bin("coracle-apiserver")] + args2 + c.store_args())
    ok2 = c.wait_for(lambda: subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", sock2,
                                              "http://x/readyz"], capture_output=True, text=True).stdout == "200")
    cl2 = ctest.Client("unix:" + sock2)
    c.clients.append(cl2)

    def call2(tok, svc, method, req):
        rt = cl2._resp_type(svc, method)
        fn = cl2.channel.unary_unary("/coracle.v1.%s/%s" % (svc, method), request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=rt.FromString)
        try:
            return fn(req, timeout=ctest.DEADLINE, metadata=[("authorization", "Bearer " + tok)]), None
        except grpc.RpcError as e:
            return None, (e.code(), e.details())

    t.ok(ok2 and denied(call2("caroltoken", "Secrets", "List", pb.ListRequest(namespace="other"))[1]),
         "second apiserver on the same etcd: carol may not list secrets in other")
    admin("Roles", "Create", pb.Role(metadata=meta("sec-lister", "other"), rules=[rule(["list"], ["secrets"])]))
    admin("RoleBindings", "Create", pb.RoleBinding(metadata=meta("carol-secrets", "other"), roleRef=ref("Role", "sec-lister"),
                                                    subjects=[user("carol")]))
    t.ok(c.wait_for(lambda: not call2("caroltoken", "Secrets", "List", pb.ListRequest(namespace="other"))[1], timeout=30),
         "granted through the first: the second allows it (its index follows etcd's watch)")
    admin("RoleBindings", "Delete", pb.DeleteRequest(namespace="other", name="carol-secrets"))
    t.ok(c.wait_for(lambda: denied(call2("caroltoken", "Secrets", "List", pb.ListRequest(namespace="other"))[1]), timeout=30),
         "revoked through the first: the second refuses")
else:
    t.skip("CORACLE_TEST_STORE is not etcd3: the two-apiserver check", 3)

t.done()
