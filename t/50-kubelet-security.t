#!/usr/bin/python3
# coracle-kubelet runs containers with exactly the securityContext asked,
# with the real apiserver and runc: runAsUser/runAsGroup/supplementalGroups
# and fsGroup (id, an emptyDir's group); capabilities dropped and added
# (CapEff), allowPrivilegeEscalation false (NoNewPrivs), seccomp
# RuntimeDefault (Seccomp: 2, unshare refused with EPERM) and a Localhost
# profile; readOnlyRootFilesystem; runAsNonRoot with a root image refused
# with Kubernetes' message; a privileged container sees the host's /dev and
# can mount; shareProcessNamespace; hostPID, hostIPC and hostNetwork share
# the host's namespaces; safe and allowed sysctls set, an unsafe one
# refused with SysctlForbidden; --allow-privileged=false refuses privileged
# pods; an AppArmor profile is refused on a host without AppArmor.
import json, os, subprocess, sys, time
sys.path.insert(0, os.path.join(os.environ.get("CORACLE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "t", "lib"))
import ctest

import klet

t = ctest.Tap()
c, root, runc_root = klet.busybox_node(t, "50-kubelet-security")
pb = c.pb
api = c.start_apiserver()
os.makedirs(os.path.join(root, "seccomp", "profiles"), exist_ok=True)
# a Localhost profile in Docker's format: everything allowed but mkdir/mkdirat
with open(os.path.join(root, "seccomp", "profiles", "no-mkdir.json"), "w") as f:
    json.dump({"defaultAction": "SCMP_ACT_ALLOW",
               "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                           {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}, f)
k = c.start_kubelet("node1", "--healthz-listen", "", "--allowed-unsafe-sysctls", "kernel.msg*", root_dir=root)
root2 = os.path.join(c.dir, "kroot2")
c.on_teardown(lambda: ctest.node_cleanup(root2, os.path.join(root2, "runc")))
k2 = c.start_kubelet("node2", "--healthz-listen", "", "--allow-privileged=false", root_dir=root2)


def get(name):
    p, err = api.try_call("Pods", "Get", pb.GetRequest(namespace="default", name=name))
    return p


def wait_pod(name, pred, timeout=ctest.DEADLINE):
    return c.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(get(name)), timeout=timeout)


def events(name):
    evs = api.call("Events", "List", pb.ListRequest(namespace="default")).items
    return [(e.type, e.reason, e.message) for e in evs if e.involvedObject.name == name]


def cs0(p):
    return p.status.containerStatuses[0] if p and p.status.containerStatuses else None


def running(p):
    return p.status.phase == "Running" and p.status.containerStatuses and \
        all(s.state.running.startedAt.seconds > 0 for s in p.status.containerStatuses)


DONE = "=done="


def output(p):
    """The container's log lines once its script printed DONE (a list; [] if it never did)."""
    logf = os.path.join(root, "pods", p.metadata.uid, "logs", p.spec.containers[-1].name, "0.log")
    ok = c.wait_for(lambda: os.path.exists(logf) and DONE in open(logf).read(), timeout=ctest.DEADLINE)
    if not ok:
        return []
    return [l.split(" ", 3)[3] for l in open(logf).read().splitlines() if l.count(" ") >= 3]


def status_fields(lines):
    return {l.split(":", 1)[0]: l.split(":", 1)[1].strip() for l in lines if ":" in l}


def sc(**kw):
    return pb.SecurityContext(**kw)


def mkpod(name, script, csc=None, psc=None, node="node1", volumes=(), mounts=(), **spec):
    ctr = pb.Container(name="app", image="progrium/busybox", imagePullPolicy="IfNotPresent",
                       command=["sh", "-c", script + "; echo " + DONE + "; exec sleep 3600"],
                       securityContext=csc, volumeMounts=list(mounts))
    return pb.Pod(metadata=ctest.meta(name, "default"),
                  spec=pb.PodSpec(nodeName=node, containers=[ctr], terminationGracePeriodSeconds=1,
                                  securityContext=psc, volumes=list(volumes), **spec))


c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name="node1"))[0], timeout=ctest.DEADLINE)
PROBE = ("id -u; id -G; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status;"
         " touch /rootfs-write 2>/dev/null && echo ROOT=rw || echo ROOT=ro;"
         " unshare -U true 2>&1 && echo UNSHARE=ok || echo UNSHARE=fail;"
         " mount -t tmpfs none /tmp 2>/dev/null && echo MOUNT=ok || echo MOUNT=fail;"
         " ls /dev | wc -l | sed 's/^ */DEVS=/'; echo PID1=$(cat /proc/1/comm)")
empty = pb.Volume(name="data", volumeSource=pb.VolumeSource(emptyDir=pb.EmptyDirVolumeSource()))
pods = {
    "plain": mkpod("plain", PROBE),
    "ids": mkpod("ids", PROBE + "; stat -c 'DATA=%g %a' /data; touch /data/f; stat -c 'FILE=%g' /data/f",
                 psc=pb.PodSecurityContext(runAsUser=1000, runAsGroup=3000, supplementalGroups=[4000], fsGroup=2000),
                 volumes=[empty], mounts=[pb.VolumeMount(name="data", mountPath="/data")]),
    "locked": mkpod("locked", PROBE,
                    csc=sc(capabilities=pb.Capabilities(drop=["ALL"], add=["NET_BIND_SERVICE"]),
                           allowPrivilegeEscalation=False, readOnlyRootFilesystem=True),
                    psc=pb.PodSecurityContext(seccompProfile=pb.SeccompProfile(type="RuntimeDefault"))),
    "seccomp-only": mkpod("seccomp-only", PROBE,
                          csc=sc(seccompProfile=pb.SeccompProfile(type="RuntimeDefault"))),
    "localhost": mkpod("localhost", "mkdir /tmp/d 2>&1 && echo MKDIR=ok || echo MKDIR=fail",
                       csc=sc(seccompProfile=pb.SeccompProfile(type="Localhost", localhostProfile="profiles/no-mkdir.json"))),
    "priv": mkpod("priv", PROBE, csc=sc(privileged=True)),
    "sysctls": mkpod("sysctls", "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start"
                     " /proc/sys/kernel/msgmax | sed 's/^/SYSCTL=/'",
                     psc=pb.PodSecurityContext(sysctls=[pb.Sysctl(name="kernel.shm_rmid_forced", value="1"),
                                                        pb.Sysctl(name="net.ipv4.ip_unprivileged_port_start", value="80"),
                                                        pb.Sysctl(name="kernel.msgmax", value="12345")])),
}
# shareProcessNamespace: the second container sees the first one's process and the pause
shared = mkpod("sharedpid", "until ps | grep -q '[s]leep 3601'; do sleep 0.1; done; echo SEEN;"
               " echo PID1=$(cat /proc/1/comm)", shareProcessNamespace=True)
shared.spec.containers.insert(0, pb.Container(name="first", image="progrium/busybox", command=["sleep", "3601"]))
pods["sharedpid"] = shared
NSPROBE = "for n in pid ipc net uts; do echo NS_$n=$(readlink /proc/self/ns/$n); done; echo PID1=$(cat /proc/1/comm)"
pods["hostns"] = mkpod("hostns", NSPROBE, hostPID=True, hostIPC=True, hostNetwork=True)
pods["podns"] = mkpod("podns", NSPROBE)
for p in pods.values():
    api.call("Pods", "Create", p)
# refused ones
api.call("Pods", "Create", mkpod("nonroot", "true", psc=pb.PodSecurityContext(runAsNonRoot=True)))
api.call("Pods", "Create", mkpod("unsafe", "true", psc=pb.PodSecurityContext(sysctls=[pb.Sysctl(name="kernel.sem", value="1 2 3 4")])))
api.call("Pods", "Create", mkpod("priv2", "true", csc=sc(privileged=True), node="node2"))
api.call("Pods", "Create", mkpod("armor", "true", csc=sc(appArmorProfile=pb.AppArmorProfile(type="RuntimeDefault"))))

out = {}
for name in pods:
    p = wait_pod(name, running)
    out[name] = status_fields(output(p)) if p else {}
    out[name]["lines"] = output(p) if p else []
    t.ok(p is not None and DONE in out[name]["lines"], "pod %s runs" % name)

plain, ids, locked, sonly, priv = out["plain"], out["ids"], out["locked"], out["seccomp-only"], out["priv"]
lines = ids["lines"]
t.is_(lines[:1], ["1000"], "runAsUser: id -u is 1000")
t.is_(sorted(lines[1].split()) if len(lines) > 1 else None, ["2000", "3000", "4000"],
      "runAsGroup, supplementalGroups and fsGroup: id -G")
t.ok("DATA=2000 2777" in lines, "the emptyDir is group fsGroup, g+rwx and setgid: %s" % [l for l in lines if l.startswith("DATA")])
t.ok("FILE=2000" in lines, "a file written there belongs to fsGroup")
t.ok(ids.get("CapEff") == "0000000000000000", "a non-root user has no effective capabilities (%s)" % ids.get("CapEff"))

t.is_(plain["lines"][:1], ["0"], "no securityContext: the image's user (root)")
t.is_(plain.get("CapEff"), "00000000a80425fb", "the default capability set")
t.ok(plain.get("NoNewPrivs") == "0" and plain.get("Seccomp") == "0", "no no_new_privs, no seccomp by default")
t.ok("ROOT=rw" in plain["lines"], "the root filesystem is writable by default")
unshare_works = "UNSHARE=ok" in plain["lines"]
t.ok(True, "unconfined: unshare -U %s" % ("works" if unshare_works else "fails (user namespaces off here)"))

t.is_(locked.get("CapEff"), "0000000000000400", "drop ALL + add NET_BIND_SERVICE: CapEff")
t.is_(locked.get("NoNewPrivs"), "1", "allowPrivilegeEscalation false: NoNewPrivs 1")
t.is_(locked.get("Seccomp"), "2", "pod seccompProfile RuntimeDefault: Seccomp 2 (filter)")
t.ok("ROOT=ro" in locked["lines"], "readOnlyRootFilesystem: writing / fails")
t.is_(sonly.get("Seccomp"), "2", "container RuntimeDefault: Seccomp 2")
r = subprocess.run(["runc", "--root", runc_root, "exec", cs0(get("locked")).containerID[7:], "cat", "/proc/self/status"],
                   capture_output=True, text=True)
ex = status_fields(r.stdout.splitlines())
t.ok(r.returncode == 0 and ex.get("Seccomp") == "2" and ex.get("NoNewPrivs") == "1" and
     ex.get("CapEff") == "0000000000000400", "exec into it runs under the same seccomp, no_new_privs and capabilities (%d %s)"
     % (r.returncode, r.stderr.strip()[-200:]))
t.is_(sonly.get("NoNewPrivs"), "0", "seccomp alone does not set no_new_privs")
t.ok("UNSHARE=fail" in sonly["lines"] and any("Operation not permitted" in l for l in sonly["lines"]),
     "RuntimeDefault: unshare fails with EPERM although root may (%s)" % [l for l in sonly["lines"] if "nshare" in l])
t.ok("MOUNT=fail" in sonly["lines"], "no mount without CAP_SYS_ADMIN")
t.ok("MKDIR=fail" in out["localhost"]["lines"] and any("Operation not permitted" in l for l in out["localhost"]["lines"]),
     "Localhost profile from <root-dir>/seccomp: mkdir refused (%s)" % out["localhost"]["lines"][:1])

own = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff:")][0]
t.is_(priv.get("CapEff"), own, "privileged: every capability the node has")
t.ok("MOUNT=ok" in priv["lines"], "privileged: mount works")
ndev = lambda d: int(([l[5:] for l in d["lines"] if l.startswith("DEVS=")] or ["0"])[0])
host_devs = len(os.listdir("/dev"))
t.ok(ndev(priv) > ndev(plain) + 10, "privileged sees the host's devices (%d entries, unprivileged %d, host %d)"
     % (ndev(priv), ndev(plain), host_devs))
t.ok(priv.get("Seccomp") == "0" and "ROOT=rw" in priv["lines"], "privileged: no seccomp")

t.is_([l for l in out["sysctls"]["lines"] if l.startswith("SYSCTL=")],
      ["SYSCTL=1", "SYSCTL=80", "SYSCTL=12345"], "safe sysctls and an allowed unsafe one set in the pod")

sp = get("sharedpid")
t.ok("SEEN" in out["sharedpid"]["lines"], "shareProcessNamespace: a container sees the other's processes")
t.ok("PID1=pause" in out["sharedpid"]["lines"], "PID 1 is the pod's pause process (%s)" % out["sharedpid"]["lines"][-3:])
t.ok("PID1=pause" not in plain["lines"] and plain["lines"], "without it, the container's own first process is PID 1")

host_ns = {n: os.readlink("/proc/self/ns/" + n) for n in ("pid", "ipc", "net", "uts")}
def nsof(name):
    return {n: ([l.split("=", 1)[1] for l in out[name]["lines"] if l.startswith("NS_%s=" % n)] or [None])[0]
            for n in host_ns}
t.is_(nsof("hostns"), host_ns, "hostPID, hostIPC, hostNetwork: the host's pid, ipc, net and uts namespaces")
t.ok(all(v != host_ns[n] for n, v in nsof("podns").items()), "without them: the pod's own (%s)" % nsof("podns"))

# ---- refusals
want = 'container has runAsNonRoot and image will run as root (pod: "nonroot_default(%s)", container: app)'
p = wait_pod("nonroot", lambda p: cs0(p) and cs0(p).state.waiting.reason == "CreateContainerConfigError")
t.ok(p is not None, "runAsNonRoot with a root image: CreateContainerConfigError")
if p:
    t.is_(cs0(p).state.waiting.message, want % p.metadata.uid, "with Kubernetes' message")
    t.ok(("Warning", "Failed", "Error: " + want % p.metadata.uid) in events("nonroot"), "and a Failed event")
    t.ok(p.status.phase == "Pending", "the pod stays Pending")
p = wait_pod("unsafe", lambda p: p.status.phase == "Failed")
t.ok(p is not None and p.status.reason == "SysctlForbidden", "an unsafe sysctl: the pod fails with SysctlForbidden")
t.is_(p.status.message if p else None, 'Pod was rejected: forbidden sysctl: "kernel.sem" not allowlisted', "its message")
t.ok(("Warning", "SysctlForbidden", 'forbidden sysctl: "kernel.sem" not allowlisted') in events("unsafe"), "and event")
p = wait_pod("priv2", lambda p: p.status.phase == "Failed")
t.ok(p is not None and p.status.reason == "Forbidden" and
     p.status.message == 'Pod was rejected: pod with UID "%s" specified privileged container, but is disallowed' % p.metadata.uid,
     "--allow-privileged=false: a privileged pod is refused (%s)" % (p.status.message if p else None))
t.ok(not os.path.exists(os.path.join(root2, "pods", p.metadata.uid if p else "x", "ns")), "and nothing was set up for it")

apparmor = open("/sys/module/apparmor/parameters/enabled").read().strip() == "Y" \
    if os.path.exists("/sys/module/apparmor/parameters/enabled") else False
if apparmor:
    t.skip("AppArmor is enabled here: the refusal needs a host without it")
else:
    p = wait_pod("armor", lambda p: p.status.phase == "Failed")
    t.ok(p is not None and p.status.reason == "AppArmor" and
         p.status.message == "Pod was rejected: Cannot enforce AppArmor: AppArmor is not enabled on the host",
         "an AppArmor profile on a host without AppArmor: refused (%s)" % (p.status.message if p else None))

# ---- cleanup: everything deleted and gone
for name in list(pods) + ["nonroot", "unsafe", "armor"]:
    api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name=name))
api.call("Pods", "Delete", pb.DeleteRequest(namespace="default", name="priv2"))
gone = c.wait_for(lambda: not api.call("Pods", "List", pb.ListRequest(namespace="default")).items, timeout=ctest.DEADLINE)
t.ok(gone, "every pod deleted")
pauses = subprocess.run(["pgrep", "-x", "pause"], capture_output=True, text=True).stdout.split()
t.ok(not [x for x in pauses if root in open("/proc/%s/cmdline" % x, errors="replace").read()] and
     not os.path.exists(os.path.join(root, "pods", sp.metadata.uid if sp else "x", "ns", "pid")),
     "the pause process and its namespace are gone with the pod")
t.ok(k.alive() and k2.alive(), "kubelets still running")
t.done()
