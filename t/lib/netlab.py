"""netlab: a network lab of namespaces for multi-node tests and benchmarks.

    lab = netlab.Lab(t, cluster, nodes=3, subnets=2)
    lab.start_kubelets("--pod-network", "vxlan")
    lab.ns("n0")             # the namespace name of node n0, for `ip -n`
    lab.run("n0", ["ip", "route"])  # runs a command inside a node's namespace

Layout (every name carries a per-lab tag, `cnl<pid>x<random>`, so labs of
parallel tests never meet; nothing is made in the machine's own namespace):

  <tag>-sw   the "switch": one bridge per subnet (br0, br1, ...)
  <tag>-n<i> node i: eth0 on bridge br<s> with 172.30.<s>.<10+i>/24 (s: its
             subnet; nodes are spread over the subnets in order, the first
             ones on subnet 0); with several subnets a default route via the
             router; pod range 10.244.<i>.0/24 (its Node's spec.podCIDR and
             its CNI bridge+host-local config, bridge cni0 inside the node)
  <tag>-r    the router (subnets > 1): 172.30.<s>.1 on each bridge, forwarding
  <tag>-c    a client that is not a node: 172.30.0.250 on subnet 0

The apiserver listens on a unix socket as well (network namespaces share the
file system), which is how the kubelets inside the namespaces reach it.

Teardown (registered with the cluster, so it also runs when the test fails
or is killed by SIGTERM): the kubelets stop (Cluster), their containers and
mounts go (ctest.node_cleanup), then every namespace of the lab is deleted,
which removes every interface, route and neighbour in it. A lab whose test
died by SIGKILL is swept by the next lab: namespaces named cnl<pid>x... whose
pid no longer runs are deleted at start.
"""
import json
import os
import random
import re
import subprocess

import ctest
import klet

PREFIX = "cnl"


def ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def sweep_stale():
    """Deletes the namespaces of labs whose process is gone (killed before its teardown)."""
    for line in ip("netns", "list", check=False).splitlines():
        m = re.match(r"(%s(\d+)x\w+-\w+)" % PREFIX, line)
        if m and not os.path.exists("/proc/%s" % m.group(2)):
            ip("netns", "del", m.group(1), check=False)


class Lab:
    def __init__(self, t, cluster, nodes=3, subnets=1, cni=True, mtu=None):
        """nodes node namespaces over subnets subnets (routed by a router
        namespace when > 1). cni: write each node a CNI config for its range
        (mtu: the pods' MTU, e.g. 1450 for VXLAN); without it the kubelets use
        their built-in network (--pod-network), ranges from the Nodes."""
        ctest.need_root(t)
        self.t, self.c = t, cluster
        self.tag = "%s%dx%04x" % (PREFIX, os.getpid(), random.randrange(1 << 16))
        self.nodes = ["n%d" % i for i in range(nodes)]
        self.subnets = subnets
        self.made = []
        self.cni = cni
        self.kubelets = {}
        self.roots = {}
        sweep_stale()
        cluster.on_teardown(self.teardown)
        per = -(-nodes // subnets)
        self.subnet_of = {n: i // per for i, n in enumerate(self.nodes)}
        self.addr = {n: "172.30.%d.%d" % (self.subnet_of[n], 10 + i) for i, n in enumerate(self.nodes)}
        self.pod_cidr = {n: "10.244.%d.0/24" % i for i, n in enumerate(self.nodes)}
        self._build()
        if cni:
            for n in self.nodes:
                self._cni(n, mtu)

    def ns(self, name):
        """The namespace of a lab member: a node name, "r", "c" or "sw"."""
        return "%s-%s" % (self.tag, name)

    def netns(self, name):
        """Adds a namespace to the lab (removed with the lab), lo up."""
        self._netns(name)

    def _netns(self, name):
        ip("netns", "add", self.ns(name))
        self.made.append(self.ns(name))
        ip("-n", self.ns(name), "link", "set", "lo", "up")

    def _plug(self, name, subnet, addr):
        """A veth from member name (eth<subnet>) to the switch's bridge br<subnet>."""
        sw, port = self.ns("sw"), "%s-%d" % (name, subnet)
        ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth%d" % subnet,
           "netns", self.ns(name))
        ip("-n", sw, "link", "set", port, "master", "br%d" % subnet, "up")
        ip("-n", self.ns(name), "addr", "add", addr + "/24", "dev", "eth%d" % subnet)
        ip("-n", self.ns(name), "link", "set", "eth%d" % subnet, "up")

    def _build(self):
        self._netns("sw")
        for s in range(self.subnets):
            ip("-n", self.ns("sw"), "link", "add", "br%d" % s, "type", "bridge")
            ip("-n", self.ns("sw"), "link", "set", "br%d" % s, "up")
        if self.subnets > 1:
            self._netns("r")
            for s in range(self.subnets):
                self._plug("r", s, "172.30.%d.1" % s)
            self.sysctl("r", "net.ipv4.ip_forward", "1")
        for n in self.nodes + ["c"]:
            self._netns(n)
            s = self.subnet_of.get(n, 0)
            self._plug(n, s, self.addr.get(n, "172.30.0.250"))
            if self.subnets > 1:
                ip("-n", self.ns(n), "route", "add", "default", "via", "172.30.%d.1" % s)

    def sysctl(self, name, key, value):
        self.run(name, ["sysctl", "-qw", "%s=%s" % (key, value)])

    def run(self, name, argv, **kw):
        """Runs argv inside member name's network namespace; returns CompletedProcess."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(["ip", "netns", "exec", self.ns(name)] + list(argv), **kw)

    def popen(self, name, argv, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.ns(name)] + list(argv), **kw)

    def _cni(self, n, mtu):
        d = os.path.join(self.c.dir, "cni-" + n)
        os.makedirs(d, exist_ok=True)
        br = {"type": "bridge", "bridge": "cni0", "isGateway": True, "isDefaultGateway": True, "ipMasq": False,
              "ipam": {"type": "host-local", "ranges": [[{"subnet": self.pod_cidr[n]}]],
                       "dataDir": os.path.join(self.c.dir, "ipam-" + n)}}
        if mtu:
            br["mtu"] = mtu
        json.dump({"cniVersion": "1.0.0", "name": "netlab", "plugins": [br]},
                  open(os.path.join(d, "10-netlab.conflist"), "w"))

    def api_socket(self):
        return os.path.join(self.c.dir, "api.sock")

    def start_kubelet(self, n, *extra):
        """Starts node n's kubelet inside its namespace (node name = n, --node-ip its
        address, the CNI config of its range if the lab has them); the apiserver must listen on
        unix:<api_socket()>. Its containers and mounts are removed at teardown."""
        root = self.roots.get(n)
        if root is None:
            root = self.roots[n] = os.path.join(self.c.dir, "kroot-" + n)
            klet.import_busybox(self.t, root)
            self.c.on_teardown(lambda: ctest.node_cleanup(root))
        argv = ["nsenter", "--net=/var/run/netns/" + self.ns(n), self.c.bin("coracle-kubelet"),
                "--server", "unix:" + self.api_socket(), "--node-name", n, "--root-dir", root,
                "--node-ip", self.addr[n], "--healthz-listen", ""] + list(extra)
        if self.cni:
            argv += ["--cni-conf-dir", os.path.join(self.c.dir, "cni-" + n)]
        self.kubelets[n] = self.c.start("kubelet-" + n, argv)
        return self.kubelets[n]

    def start_kubelets(self, *extra):
        for n in self.nodes:
            self.start_kubelet(n, *extra)

    def set_pod_cidrs(self, api):
        """Sets each Node's spec.podCIDR(s) to its range (once the kubelets registered them)."""
        pb = self.c.pb
        for n in self.nodes:
            if not self.c.wait_for(lambda: api.try_call("Nodes", "Get", pb.GetRequest(name=n))[0],
                                   timeout=ctest.DEADLINE):
                self.t.bail("Node %s not registered" % n)

            def put(o, n=n):
                o.spec.podCIDR = self.pod_cidr[n]
                del o.spec.podCIDRs[:]
                o.spec.podCIDRs.append(self.pod_cidr[n])
            api.update("Nodes", "", n, put)

    def teardown(self):
        """Deletes every namespace of the lab (idempotent). Kubelets must be stopped first."""
        for n in reversed(self.made):
            ip("netns", "del", n, check=False)
        self.made = []

    def leftovers(self):
        """The lab's namespaces still present (after teardown: none)."""
        return [l.split()[0] for l in ip("netns", "list", check=False).splitlines()
                if l.startswith(self.tag)]
