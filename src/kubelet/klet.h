/*
 * klet: the internal interfaces of coracle-kubelet, one section per file.
 * main.c builds a struct klet (config, event loop, API connection) and
 * starts node.c (Node + Lease), watch.c (the pod informer with
 * spec.nodeName=<node>), tunnel.c (logs/exec over the stream the kubelet
 * opens; pods.c resolves its targets) and runs the loop. pods.c is the
 * per-pod state machine; it drives runtime_runc.c (config.json and the
 * short runc verbs), admit.c (whether this node runs the pod at all),
 * secctx.c (what securityContext asks: user, groups, capabilities,
 * seccomp through seccomp.c, sysctls),
 * monitor.c (the per-container coracle-monitor, its sync
 * pipe and exit files), sandbox.c (the pod's namespaces, /etc/hosts),
 * dns.c (resolv.conf, the cluster DNS), cni.c (the pod network; podnet.c writes the built-in one
 * from the Node's podCIDR), volumes.c (emptyDir, hostPath),
 * cfgvol.c (configMap and secret volumes, through atomic_writer.c), refs.c
 * (the ConfigMaps and Secrets the pods use, each watched), envvars.c (a
 * container's env: valueFrom, envFrom, $(VAR)),
 * imgref.c (the local image store), probes.c (startup/liveness/readiness),
 * status.c (PodStatus, pure) and events.c (the event recorder); proc.c runs
 * child processes without blocking; metrics.c is what the operator sees
 * (/metrics, /readyz, STATUS=). Everything runs on one libevent loop.
 *
 * State: every file's state is a member of struct klet (or of a pod or
 * container it holds), handed to each function; no file keeps any of its
 * own. Ownership: strings in these structs are malloc'd and owned by the
 * struct that holds them unless a comment says otherwise.
 */
#ifndef CORACLE_KLET_H
#define CORACLE_KLET_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "buf.h"
#include "coracle.pb-c.h"
#include "gcl.h"
#include "obs.h"
#include "podref.h"

/* ------------------------------------------------------------ config (main.c) */
struct klet_cfg {
    char *server;
    char *node_name;
    char *root_dir;
    char *runtime;   /* runc binary */
    char *image_dir; /* local image store (shared with `coraclectl image import`) */
    char *monitor;   /* coracle-monitor binary; default: next to the kubelet, then LIBEXECDIR */
    char *cni_conf_dir;
    char *pod_network;  /* --pod-network: none, bridge, host-gw, vxlan; NULL: by --pod-cidr */
    char *cluster_cidr; /* --cluster-cidr: pods' traffic leaving it is masqueraded (netmasq.c) */
    char *pod_cidr;     /* --pod-cidr: the range when the Node has no spec.podCIDR */
    char *bridge;       /* --bridge: the built-in network's bridge (cni0) */
    long long crashloop_base;     /* seconds, Kubernetes: 10 */
    long long crashloop_max;      /* seconds, Kubernetes: 300 */
    long long log_max_size;       /* bytes before a container log rotates */
    long long node_status_period; /* seconds */
    long long node_status_report; /* seconds: an unchanged status is posted this often */
    int allow_privileged;         /* --allow-privileged: privileged containers may run */
    int seccomp_default;          /* --seccomp-default: RuntimeDefault when a pod names none */
    char *allowed_unsafe_sysctls; /* --allowed-unsafe-sysctls: comma list of names or "x.*" */
    char *node_ip;                /* --node-ip: the InternalIP (NULL: the first up IPv4 address) */
    char *pod_network_mode;       /* --pod-network-mode (deprecated): host-gw, vxlan */
    long long vxlan_vni;          /* --vxlan-vni (1) */
    long long vxlan_port;         /* --vxlan-port (8472) */
    char *proxy_mode;             /* --proxy-mode: nftables or none */
    int masquerade_all;           /* --masquerade-all: SNAT all ClusterIP traffic (proxy.c) */
    char *cluster_dns;            /* --cluster-dns: comma list of the pods' nameservers (dns.c) */
    char *cluster_domain;         /* --cluster-domain (cluster.local) */
    char *resolv_conf;            /* --resolv-conf: the node's resolver config ("": none) */
    int network_policy;           /* --network-policy: enforce NetworkPolicies (netpol.c) */
    long long image_gc_high;      /* --image-gc-high-threshold: percent (85; 100: GC off) */
    long long image_gc_low;       /* --image-gc-low-threshold: percent (80) */
    int registry_pulls;           /* --registry-pulls: missing images come from registries */
    char *registry_config_dir;    /* --registry-config-dir: <registry>/hosts.toml (oci.h) */
    char *image_credentials_file; /* --image-credentials-file: a docker config.json */
    int endpoint_port; /* daemonEndpoints.kubeletEndpoint.Port: --healthz-listen's (0: none) */
};

/* Image garbage collection (imggc.c). */
struct klet_imggc {
    struct event *ev; /* the next run; NULL when GC is off */
    pid_t pid;        /* the child collecting, 0 when none */
    bool failed;      /* the last run failed (a second failure in a row: ImageGCFailed) */
    int64_t began;    /* now_ns() at start: --image-maximum-gc-age waits that long */
    int64_t min_age, max_age, period;    /* ns, from the duration flags */
    uint64_t removed_age, removed_space; /* images removed, for /metrics */
};

/* Pod start latency for /metrics (metrics.c). */
struct klet_pstart {
    int64_t since_ns; /* the sampler's start: pods older than it (adopted) are not counted */
    struct obs_hist hist;
    char **seen; /* uids already observed or skipped */
    size_t nseen;
    struct event *ev; /* the 1 s sampler */
};

/* An inotify watch descriptor and the container whose exit file it watches (monitor.c). */
struct klet_wd {
    int wd;
    struct klet_ctr *c;
};

/* The Node's registration and its Lease (node.c). */
struct klet_node {
    struct event *status_ev, *lease_ev;
    Coracle__V1__Lease *lease; /* last seen, owned */
    bool registered;
    bool lease_busy;           /* one Lease call at a time ... */
    int lease_step;            /* ... and which it is: Get, Update or Create */
    int64_t ready_since;       /* the Ready condition's lastTransitionTime */
    Coracle__V1__Node *server; /* the Node as the apiserver last answered it, owned */
    bool status_busy;          /* a status Get or UpdateStatus is in flight */
    int64_t status_posted;     /* now_ns() of the last UpdateStatus sent */
    int lease_fails;           /* renewals failed in a row (the retry's back-off) */
    int status_fails;          /* registrations or status updates failed in a row */
};

/* The built-in pod network (bridgenet.c); dir NULL when it is off. */
struct klet_net {
    bool builtin;         /* --pod-network asks for it (unless --cni-conf-dir) */
    char *dir;            /* <root-dir>/net.d: the conflist written */
    char *ipam_dir;       /* host-local's dataDir */
    char *cidr;           /* the range in use; NULL: pods wait */
    struct inf *node_inf; /* this node's Node, for spec.podCIDR */
};

struct klet_pod;
struct kpx;
struct kdns;
struct klet_proc;
struct klet_ref;
struct klet_tok;
struct img_store;
/* Another node whose pod range this node routes (podnet.c). Addresses in network order. */
struct klet_peer {
    char *name;   /* the Node's name */
    uint32_t net; /* its pod range (spec.podCIDRs[0] or spec.podCIDR) */
    int plen;
    uint32_t ip;    /* its InternalIP */
    bool installed; /* its route (and VXLAN entries) are in the kernel */
};

enum { KLET_PODNET_NONE, KLET_PODNET_HOST_GW, KLET_PODNET_VXLAN };

/* The routes to other nodes' pods (podnet.c). */
struct klet_podnet {
    int mode;    /* KLET_PODNET_* from --pod-network (klet_podnet_config) */
    int ifindex; /* the VXLAN device */
    int pod_mtu; /* vxlan: the pods' MTU (the device's); 0: the default */
    uint32_t own_net;
    int own_plen;
    struct klet_peer *peers;
    size_t npeers;
    struct inf *inf; /* the Node informer */
};

struct klet {
    struct klet_cfg cfg;
    struct event_base *base;
    gcl_t *api;
    char *runc_root; /* <root-dir>/runc: runc --root */
    char *host_ip;
    int64_t last_event_ns;    /* the newest event's time: names and times strictly increase */
    struct img_store *images; /* imgref.c: cfg.image_dir, opened at the first lookup */
    int inotify_fd;
    struct event *inotify_ev;
    struct klet_wd *wds; /* monitor.c: the containers' state dirs being watched */
    size_t nwds;
    struct event *sigchld_ev;
    struct klet_proc *procs; /* proc.c: children not yet reaped and reported */
    struct klet_pod **pods;
    size_t npods;
    bool synced;              /* first pod list seen: orphans may be cleaned */
    bool offline;             /* running from the record: the apiserver's pod list not in yet */
    struct event *offline_ev; /* watch.c: when to stop waiting for the first pod list */
    struct inf *pod_inf;      /* watch.c: this node's pods */
    bool no_seccomp;          /* the runtime has no seccomp support (main.c checks at start) */
    struct klet_ref **refs;   /* refs.c: the ConfigMaps and Secrets the pods use */
    size_t nrefs;
    struct klet_node node;
    struct klet_net net;
    struct klet_pstart pstart;
    struct klet_podnet podnet;
    struct klet_rot *rot; /* certs.c: the client certificate's renewal, or NULL */
    struct kpx *proxy;    /* proxy.c: the Service proxy; NULL with --proxy-mode none */
    struct knp *netpol;   /* netpol.c: NetworkPolicy rules; NULL without --network-policy */
    struct klet_imggc imggc;
    struct backoff *pull_backoff; /* pullbackoff.c: per image, made at the first failure */
    struct kdns *dns;             /* dns.c: the cluster DNS; NULL without --cluster-dns */
    bool dns_warned;              /* dns.c: MissingClusterDNS recorded */
    /* services.c: Services and EndpointSlices of all namespaces (proxy and DNS); NULL when
     * neither is on. svc_serial: the time of the last change (the DNS zone's SOA serial). */
    struct inf *svc_inf, *slice_inf;
    uint32_t svc_serial;
    struct klet_pull *pulls; /* pull.c: registry pulls in flight */
};

/* ------------------------------------------------------------ services.c */
/* Starts the Service and EndpointSlice informers (once; before the proxy and the DNS). */
void klet_services_start(struct klet *k);
void klet_services_stop(struct klet *k);

/* ------------------------------------------------------------ proc.c */
/* Runs processes without blocking the loop; SIGCHLD reaps them. */
typedef void (*klet_proc_fn)(int status, const char *out, size_t len, void *arg);
void klet_proc_init(struct klet *k);
/* Spawns argv (argv[0] = path); out/err captured (up to 64 KiB). timeout_ms > 0
 * kills with SIGKILL after it. cb may be NULL. Returns the pid or -1. */
pid_t klet_proc_spawn(struct klet *k, char *const argv[], int timeout_ms, klet_proc_fn cb,
                      void *arg);
/* Forks and runs fn(arg) in the child, its stdout captured; exit code = fn's return. */
pid_t klet_proc_fork(struct klet *k, int (*fn)(void *), void *fnarg, int timeout_ms,
                     klet_proc_fn cb, void *arg);
/* Forgets every pending callback that carries arg (the owner is going away). */
void klet_proc_forget(struct klet *k, void *arg);
/* Runs argv to completion (blocking; for short runc verbs). Returns the wait status;
 * *out (malloc'd, may be NULL) gets stdout+stderr. */
int klet_proc_run(char *const argv[], char **out);

/* ------------------------------------------------------------ imgref.c */
/* The image's rootfs and config, as the image store gives them. */
struct klet_img {
    char *ref;    /* normalised "name:tag" */
    char *id;     /* "sha256:..." or a stable local id */
    char *rootfs; /* read-only directory */
    char **entrypoint;
    size_t n_entrypoint;
    char **cmd;
    size_t n_cmd;
    char **env;
    size_t n_env;
    char *workdir;
    char *user;        /* "uid[:gid]" or "name[:group]", NULL: root */
    char *stop_signal; /* "SIGQUIT", NULL: SIGTERM */
};
/* ref in the image store under k->cfg.image_dir. 0, or -1 with *err (malloc'd) saying what is
 * missing and how to import it. */
int klet_img_lookup(struct klet *k, const char *ref, struct klet_img *out, char **err);
void klet_img_free(struct klet_img *img);
/* "nginx" -> "nginx:latest", "docker.io/library/nginx:1.14.2" -> "nginx:1.14.2". malloc'd. */
char *klet_img_normalise(const char *ref);
/* Records in the store that a container starts with the image id now (what image GC's
 * least-recently-used order reads). Logged, not fatal, when it cannot. */
void klet_img_mark_used(struct klet *k, const char *id);
/*
 * The Node's status.images as Kubernetes' kubelet lists them: the largest
 * KLET_STATUS_MAX_IMAGES images first, each with its names, digests
 * before tags, at most KLET_STATUS_MAX_NAMES. Returns *n of them
 * (malloc'd, free with klet_img_status_free); none when the store cannot
 * be read.
 */
#define KLET_STATUS_MAX_IMAGES 50 /* the kubelet's nodeStatusMaxImages */
#define KLET_STATUS_MAX_NAMES 5   /* MaxNamesPerImageInNodeStatus */
Coracle__V1__ContainerImage **klet_img_status(struct klet *k, size_t *n);
void klet_img_status_free(Coracle__V1__ContainerImage **v, size_t n);

/* ------------------------------------------------------------ pullbackoff.c */
/* The per-image pull back-off (Kubernetes' image manager): the pull path asks
 * klet_pull_backoff before pulling image; > 0 is the ns left of its window: do not pull, the
 * container waits with reason ImagePullBackOff, message Back-off pulling image "x". After a
 * pull, klet_pull_failed (started: mono_ns() when that pull began; a failure already counted
 * since then is not counted twice; returns the window's ns left) or klet_pull_succeeded. */
int64_t klet_pull_backoff(struct klet *k, const char *image);
int64_t klet_pull_failed(struct klet *k, const char *image, int64_t started);
void klet_pull_succeeded(struct klet *k, const char *image);

/* ------------------------------------------------------------ imggc.c */
/* Starts image garbage collection (at once, then every period); nothing when it is off. */
void klet_imggc_start(struct klet *k);
void klet_imggc_stop(struct klet *k);

/* ------------------------------------------------------------ pull.c */
/* What a registry pull gave a container: the one interface between pulling and the
 * kubelet's events, waiting reasons and back-off. */
struct klet_pull_outcome {
    int rc;             /* 0: the image is in the store; -1: the pull failed */
    const char *code;   /* static: oci_code_str(), "not found", "unauthorized", ... */
    char *msg;          /* failure: the registry's words, no credentials */
    int64_t pull_ns;    /* the pull itself */
    int64_t wait_ns;    /* since this container asked (queued behind another pull included) */
    uint64_t size;      /* the image's bytes as its manifest says */
    int64_t started_ns; /* mono_ns() when the pull began (the back-off counts one failure a pull) */
};
struct klet_pull;
/* Pulls image for c (--registry-pulls) on a worker thread; containers asking for the same
 * image share one pull. 1: running, klet_pod_ctr_pulled(c) follows with c->pulled set;
 * 0: it could not start, c->pulled holds the failure. */
int klet_pull_image(struct klet_ctr *c, const char *image);
void klet_pull_outcome_free(struct klet_pull_outcome *o);
/* Is one of p's imagePullSecrets not listed yet? (refs.c kicks the pod when it is.) A missing
 * one is no reason to wait: the pull goes on without it, as Kubernetes'. */
bool klet_pull_secrets_pending(const struct klet_pod *p);

/* ------------------------------------------------------------ runtime_runc.c */
struct klet_mount {
    const char *dst, *src, *type;
    const char *opts; /* comma separated */
};
struct klet_sec;
/* Everything config.json says; borrowed pointers. */
struct klet_oci {
    char **args;
    size_t nargs;
    char **env;
    size_t nenv;
    const char *cwd;
    uint32_t uid, gid;
    const char *rootfs;
    const char *hostname; /* only for a container that owns its UTS namespace */
    const char *netns;    /* namespace paths to join; NULL = the host's (not listed) */
    const char *ipcns;
    const char *utsns;
    bool host_pid;     /* hostPID: no pid namespace of its own */
    const char *pidns; /* shareProcessNamespace: the pod's pid namespace to join */
    const char *cgroups_path;
    int64_t mem_limit; /* bytes; 0 = none */
    int64_t cpu_quota; /* us per cpu_period; 0 = none */
    int64_t cpu_period;
    uint64_t cpu_shares; /* 0 = default */
    const struct klet_mount *mounts;
    size_t nmounts;
    bool terminal; /* tty: the process runs on a terminal (its master goes to the monitor) */
    /* user, groups, capabilities, seccomp, sysctls, devices (secctx.c); NULL: root with the
     * default capabilities, no seccomp. uid/gid above are used only without it. */
    const struct klet_sec *sec;
};
/* The OCI runtime spec (config.json) as JSON. malloc'd. */
char *klet_oci_config(const struct klet_oci *o);
/* Kubernetes' rules: command replaces Entrypoint, args replace Cmd. NULL-terminated,
 * malloc'd (free with klet_strv_free). -1 with *err if nothing to run. */
int klet_ctr_argv(const Coracle__V1__Container *c, const struct klet_img *img, char ***argv,
                  size_t *n, char **err);
/* Image Env, then PATH if missing, HOSTNAME, then the container's env (overrides). */
char **klet_ctr_env(const Coracle__V1__Container *c, const struct klet_img *img,
                    const char *hostname, size_t *n);
/* Sets name=value in the NULL-terminated "NAME=value" list (*v, *n): an existing entry is
 * replaced in place, a new one appended. value NULL: "". */
void klet_env_set(char ***v, size_t *n, const char *name, const char *value);
void klet_strv_free(char **v);
/* The image's User ("uid", "uid:gid", "name", "name:group") against the rootfs' /etc/passwd and
 * /etc/group. 0, or -1 with *err (malloc'd). */
int klet_resolve_user(const char *rootfs, const char *user, uint32_t *uid, uint32_t *gid,
                      char **err);
/* Resource limits from the container spec into o (memory/cpu). */
void klet_ctr_resources(const Coracle__V1__Container *c, struct klet_oci *o);
/* Was runc built with libseccomp (its --version says)? Without, seccomp profiles cannot be
 * applied. Blocking: for the start. */
bool klet_runc_has_seccomp(const struct klet *k);
int klet_runc_kill(const struct klet *k, const char *id, const char *sig);
int klet_runc_delete(const struct klet *k, const char *id);
/* runc state: 1 running/created, 0 stopped or unknown. */
int klet_runc_alive(const struct klet *k, const char *id);

/* ------------------------------------------------------------ secctx.c */
/* A host device node for a privileged container (linux.devices). */
struct klet_dev {
    char *path;
    char type; /* 'c' or 'b' */
    uint32_t major, minor, mode, uid, gid;
};
/* What a container runs with, from the pod's and the container's securityContext. */
struct klet_sec {
    uint32_t uid, gid;
    uint32_t *gids; /* additionalGids: the primary group first */
    size_t ngids;
    char **caps; /* "CAP_X": the bounding, effective and permitted sets */
    size_t ncaps;
    bool privileged;    /* all devices, writable /sys, no masked paths */
    bool no_new_privs;  /* allowPrivilegeEscalation: false */
    bool readonly_root; /* readOnlyRootFilesystem */
    bool unmasked;      /* procMount Unmasked (or privileged): no masked/read-only /proc paths */
    char *seccomp;      /* linux.seccomp as JSON; NULL: unconfined */
    struct {
        char *name, *value;
    } * sysctls; /* the pod's, "/" separators as "." */
    size_t nsysctls;
    struct klet_dev *devs; /* privileged: the host's /dev */
    size_t ndevs;
};
/* What klet_sec_build reads (borrowed). */
struct klet_sec_in {
    const Coracle__V1__Pod *pod;
    const Coracle__V1__Container *ctr;
    const char *rootfs;       /* the image's: /etc/passwd and /etc/group */
    const char *image_user;   /* the image config's User, NULL: root */
    const char *seccomp_root; /* Localhost profiles: <root-dir>/seccomp */
    bool seccomp_default;     /* --seccomp-default */
    bool no_seccomp;          /* the runtime cannot apply a profile: asking for one fails */
};
enum {
    KSEC_CONFIG = -1, /* CreateContainerConfigError (runAsNonRoot) */
    KSEC_CREATE = -2, /* CreateContainerError (a user not in passwd, a bad seccomp profile) */
};
/* Fills *out (release with klet_sec_free). 0, or KSEC_CONFIG/KSEC_CREATE with *err
 * (malloc'd, Kubernetes' message); nothing to free then. */
int klet_sec_build(const struct klet_sec_in *in, struct klet_sec *out, char **err);
void klet_sec_free(struct klet_sec *s);
/* Docker's / containerd's default capability set ("CAP_X"; runc spec's is too small: nginx
 * cannot chown). Static. */
const char *const *klet_default_caps(size_t *n);

/* ------------------------------------------------------------ admit.c */
/* May this node run the pod at all? 0, or -1 with *reason (static: AppArmor, Forbidden,
 * SysctlForbidden) and *msg (malloc'd, Kubernetes' words): an AppArmor profile asked of a
 * host without AppArmor (apparmor false), a privileged container without --allow-privileged,
 * a sysctl neither safe nor in unsafe (comma list of names and "prefix*") or in a namespace
 * the pod shares with the host. */
int klet_admit_pod(const Coracle__V1__Pod *pod, bool allow_privileged, const char *unsafe,
                   bool apparmor, const char **reason, char **msg);
/* Is AppArmor enabled on this host (/sys/module/apparmor/parameters/enabled)? */
bool klet_apparmor_enabled(void);
/* --allowed-unsafe-sysctls: each name or "prefix*" must be namespaced (ipc, net), as
 * Kubernetes' kubelet checks at start. 0, or -1 with *err (malloc'd). */
int klet_admit_unsafe_check(const char *unsafe, char **err);
/* A sysctl name with Kubernetes' "/" separators (kernel/shm_rmid_forced) as ".". malloc'd. */
char *klet_sysctl_name(const char *name);

/* ------------------------------------------------------------ seccomp.c */
/* coracle's RuntimeDefault profile for a container holding caps ("CAP_X") as linux.seccomp
 * JSON. malloc'd. */
char *klet_seccomp_default(char *const *caps, size_t ncaps);
/* A profile file in Docker's format (defaultAction, archMap or architectures, syscalls with
 * includes/excludes) as linux.seccomp JSON for caps, in *out (malloc'd). 0, or -1 with *err
 * (malloc'd). */
int klet_seccomp_localhost(const char *path, char *const *caps, size_t ncaps, char **out,
                           char **err);

/* ------------------------------------------------------------ sandbox.c */
/* Creates <dir>/ns/{net,ipc,uts} as bind-mounted namespace files (net/uts skipped for
 * hostNetwork), sets the hostname and brings lo up; writes hosts, hostname.
 * share_pid (shareProcessNamespace): also <dir>/ns/pid, held by a pause process. */
int klet_sandbox_create(const char *dir, const char *hostname, bool hostnet, bool share_pid,
                        const char *pod_ip, char **err);
bool klet_sandbox_exists(const char *dir, bool hostnet);
/* (Re)writes <dir>/{hosts,hostname} for the containers' bind mounts (resolv.conf: dns.c). */
void klet_sandbox_files(const char *dir, const char *hostname, bool hostnet, const char *pod_ip);

/* ------------------------------------------------------------ cni.c */
/* Runs the CNI network (first config in klet_cni_dir) for the pod's netns, its hostPorts as
 * portMappings; *ip (malloc'd) is the pod IP. -1 with *err. */
int klet_cni_add(struct klet *k, const char *pod_dir, const Coracle__V1__Pod *pod, char **ip,
                 char **err);
/* DEL in reverse order, if ADD was done (a saved result exists). */
void klet_cni_del(const struct klet *k, const char *pod_dir, const char *uid);
/* The pod IP from the saved ADD result, or NULL. malloc'd. */
char *klet_cni_ip(const char *pod_dir);

/* ------------------------------------------------------------ bridgenet.c */
/* The CNI config dir in use: --cni-conf-dir, else the built-in network's, else NULL (loopback
 * only). Borrowed from k. */
const char *klet_cni_dir(const struct klet *k);
/* Turns the built-in network on (per --pod-network, --pod-cidr, unless --cni-conf-dir) and
 * watches the Node for its spec.podCIDR. 0, or -1 with *err (malloc'd) for bad flags. */
int klet_bridgenet_start(struct klet *k, char **err);
/* The built-in network has no range yet: pods with a network of their own must wait. */
bool klet_bridgenet_waiting(const struct klet *k);
/* Before a CNI ADD: notes whether the bridge is about to be created by us. */
void klet_bridgenet_before_add(struct klet *k);
/* At shutdown: stops the watch; deletes the bridge if we created it and nothing uses it. */
void klet_bridgenet_stop(struct klet *k);

/* ------------------------------------------------------------ netmasq.c */
/* The table ip coracle-net masquerading what leaves the cluster's pod range (cluster; NULL or
 * "": range) from the node's range: appended to b (a transaction replacing the table). */
void klet_masq_script(struct buf *b, const char *range, const char *cluster);
/* Installs (replaces) that table. 0, or -1 with *err (malloc'd). */
int klet_masq_apply(const char *range, const char *cluster, char **err);
/* Removes the table if present. 0, or -1 with *err (malloc'd). */
int klet_masq_remove(char **err);
/* Unmounts and removes everything klet_sandbox_create made. */
void klet_sandbox_destroy(const char *dir);

/* ------------------------------------------------------------ volumes.c */
/* Makes the pod's volumes under <dir>/volumes. -1 with *err. */
int klet_volumes_setup(const char *dir, const Coracle__V1__PodSpec *spec, char **err);
/* The host path behind volume name, malloc'd, or NULL if unknown. */
char *klet_volume_path(const char *dir, const Coracle__V1__PodSpec *spec, const char *name);
void klet_volumes_teardown(const char *dir);
/* Is a configMap, secret, projected or downwardAPI volume (mounted read-only into containers, as
 * Kubernetes does)? */
bool klet_volume_projected(const Coracle__V1__PodSpec *spec, const char *name);
/* Is something mounted at path (/proc/self/mountinfo)? */
bool klet_mounted_at(const char *path);
/* umount -l everything mounted at or below path (reading /proc/self/mountinfo). */
void klet_umount_tree(const char *path);
/* rm -rf (does not cross mount points: unmount first). */
int klet_rmtree(const char *path);
/* fsGroup: path and everything below it get group gid, g+rw (g+r when readonly) and setgid
 * directories, as Kubernetes' SetVolumeOwnership. -1 if path cannot be read. */
int klet_fsgroup_apply(const char *path, uint32_t gid, bool readonly);
/* The pod's fsGroup (if any) on a volume's directory: klet_fsgroup_apply, skipped under
 * fsGroupChangePolicy OnRootMismatch when the root already has the group and modes. */
void klet_fsgroup_volume(const char *path, const Coracle__V1__PodSecurityContext *ps,
                         bool readonly);

/* ------------------------------------------------------------ refs.c */
/* What the informer of a referenced ConfigMap or Secret knows. */
enum klet_ref_state {
    KREF_PENDING, /* not listed yet: wait (the pods are kicked once it is) */
    KREF_MISSING, /* listed: there is no such object */
    KREF_FOUND,
};
/* A key and its bytes (borrowed from the object) */
struct klet_kv {
    const char *key;
    const uint8_t *data;
    size_t len;
};
/* Starts (or shares) an informer for each ConfigMap and Secret p's spec refers to; the pods
 * using one are kicked whenever it changes. klet_refs_release undoes it (before p goes). */
void klet_refs_hold(struct klet_pod *p);
void klet_refs_release(struct klet_pod *p);
/* The object (ConfigMap or Secret) name of p's namespace as the informer has it: *obj is
 * borrowed until control returns to the loop. */
enum klet_ref_state klet_ref_get(const struct klet_pod *p, enum podref_kind kind, const char *name,
                                 const ProtobufCMessage **obj);
/* Kubernetes' message for a missing object: configmap "x" not found. malloc'd. */
char *klet_ref_missing(enum podref_kind kind, const char *name);
/* The object's data (and a ConfigMap's binaryData when binary) as *out (malloc'd array; the
 * keys and bytes are borrowed from obj). Returns the count. */
size_t klet_ref_data(const ProtobufCMessage *obj, enum podref_kind kind, bool binary,
                     struct klet_kv **out);
const struct klet_kv *klet_kv_find(const struct klet_kv *v, size_t n, const char *key);
/* What r refers to (the strings are r's). */
void klet_ref_key(const struct klet_ref *r, enum podref_kind *kind, const char **ns,
                  const char **name);

/* ------------------------------------------------------------ record.c */
/* The durable record under <root-dir>/record of the pods bound to this node and the ConfigMaps
 * and Secrets they use: what starts them again when the apiserver is out of reach. Writes are
 * atomic, skipped when nothing changed, and only logged when they fail. */
/* Records pod (its metadata and spec; borrowed). */
void klet_record_pod(struct klet *k, const Coracle__V1__Pod *pod);
/* The pod left this node: its record goes. */
void klet_record_pod_forget(struct klet *k, const char *uid);
/* Every recorded pod as *out (malloc'd array of unpacked Pods the caller frees with
 * coracle__v1__pod__free_unpacked, then the array). Returns the count. */
size_t klet_record_pods(struct klet *k, Coracle__V1__Pod ***out);
/* Records a ConfigMap or Secret as listed (obj borrowed). */
void klet_record_ref(struct klet *k, enum podref_kind kind, const ProtobufCMessage *obj);
void klet_record_ref_forget(struct klet *k, enum podref_kind kind, const char *ns,
                            const char *name);
/* The recorded object, unpacked (the caller frees it with protobuf_c_message_free_unpacked), or
 * NULL. */
ProtobufCMessage *klet_record_ref_load(struct klet *k, enum podref_kind kind, const char *ns,
                                       const char *name);
/* Has a whole pod list been recorded once? Only then may the record stand in for the API. */
bool klet_record_complete(const struct klet *k);
void klet_record_set_complete(struct klet *k);
/* Drops what the pods in k->pods and the references in k->refs do not hold (their pods were
 * deleted while this kubelet was down), and temp files a crash left. */
void klet_record_prune(struct klet *k);

/* ------------------------------------------------------------ atomic_writer.c */
/* One file of a volume's payload (borrowed pointers). */
struct klet_file {
    const char *path; /* relative, no ".." */
    const uint8_t *data;
    size_t len;
    int mode;
};
/* Makes dir hold exactly files, as Kubernetes' AtomicWriter: a new ..<timestamp> directory,
 * ..data swapped to it by a rename, user-visible symlinks through ..data. Nothing is written
 * when dir already holds the same payload. 0, or -1 with *err (malloc'd). */
int klet_atomic_write(const char *dir, const struct klet_file *files, size_t n, char **err);

/* ------------------------------------------------------------ cfgvol.c */
/* Writes p's configMap and secret volumes whose object changed since the last write (a
 * FailedMount event for one that cannot be). 0 when each has been written at least once;
 * 1 while one waits for its object to be listed; -1 while one cannot be written at all (the
 * containers wait). */
int klet_cfgvols_sync(struct klet_pod *p);
/* Forgets what was written (the pod goes). */
void klet_cfgvols_free(struct klet_pod *p);

/* ------------------------------------------------------------ projvol.c */
/* Writes p's projected and downwardAPI volumes (ServiceAccount tokens fetched and refreshed);
 * the same results as klet_cfgvols_sync. */
int klet_projvols_sync(struct klet_pod *p);
/* Forgets the tokens and what was written (the pod goes). */
void klet_projvols_free(struct klet_pod *p);

/* ------------------------------------------------------------ envvars.c */
/* KUBERNETES_SERVICE_HOST/PORT (and, unless enableServiceLinks is false, the
 * KUBERNETES_PORT* docker-link family) for the apiserver the kubelet uses, set in the
 * NULL-terminated "NAME=value" list (*v, *n). Nothing for a unix socket. */
void klet_service_env(const struct klet *k, const Coracle__V1__PodSpec *spec, char ***v, size_t *n);
struct klet_ctr;
/* The container's own variables (envFrom, then env with valueFrom and $(VAR)), as a
 * NULL-terminated "NAME=value" list *out (free with klet_strv_free). 0; 1 while an object
 * it needs is not listed yet (nothing in *out); -1 with *err (malloc'd, Kubernetes' words:
 * configmap "x" not found) when a reference that is not optional is missing. */
int klet_env_build(struct klet_ctr *c, const Coracle__V1__Container *s, char ***out, size_t *n,
                   char **err);
/* Kubernetes' $(VAR) expansion of in against env ("NAME=value", n entries): an undefined VAR
 * stays as written, $$ is $. malloc'd. */
char *klet_env_expand(const char *in, char *const *env, size_t n);
/* Kubernetes' IsEnvVarName. */
bool klet_env_name_ok(const char *name);

/* ------------------------------------------------------------ monitor.c */
struct klet_ctr;
/* Starts coracle-monitor for a prepared container dir (s: the container's spec, for its stdin
 * and tty); progress arrives through klet_pod_ctr_created/started/failed, the exit through
 * klet_pod_ctr_exited. */
int klet_monitor_start(struct klet *k, struct klet_ctr *c, const Coracle__V1__Container *s,
                       const char *cdir, const char *logpath, char **err);
void klet_monitor_init(struct klet *k);
/* Watches <cdir>/exit; calls klet_pod_ctr_exited when it appears (maybe at once). */
void klet_monitor_watch(struct klet *k, struct klet_ctr *c, const char *cdir);
void klet_monitor_unwatch(struct klet *k, struct klet_ctr *c);
/* Reads <cdir>/exit. 0 if present. */
int klet_monitor_read_exit(const char *cdir, int *code, int *sig, int64_t *finished, int *oom);

/* ------------------------------------------------------------ status.c */
/* A container's current state as status.c needs it. */
enum klet_cstate {
    KC_WAITING = 0, /* not created yet, or backing off */
    KC_CREATING,
    KC_RUNNING,
    KC_EXITED,
};
struct klet_term {
    bool valid;
    int exit_code;
    int signal;
    bool oom;
    bool unknown; /* its end was not seen (the node rebooted): exit code 255, reason Unknown */
    int64_t started_ns, finished_ns;
    char id[40];
};
struct klet_probe;
struct klet_ctr {
    struct klet_pod *pod;
    bool init;
    size_t idx;
    char *name;
    char id[40]; /* current runc id, "" if none */
    enum klet_cstate state;
    char *wait_reason; /* KC_WAITING: ContainerCreating, CrashLoopBackOff, ErrImagePull, ... */
    char *wait_msg;
    int restarts;
    int64_t started_ns;
    struct klet_term term; /* KC_EXITED */
    struct klet_term last; /* lastState */
    bool ready;
    bool startup_pending; /* a startupProbe has not succeeded yet: started=false */
    bool ever_started;
    /* crash-loop back-off (Kubernetes' kubelet backoff per container) */
    int64_t backoff_s;
    int64_t backoff_since_ns; /* finishedAt that started the current back-off window */
    struct event *timer;      /* back-off / start retry */
    /* monitor sync pipe */
    int sync_fd;
    struct event *sync_ev;
    char sync_buf[512];
    size_t sync_len;
    int wd;      /* inotify watch, -1 */
    char *image; /* as in the spec */
    char *image_id;
    char *stop_signal; /* the image's StopSignal, NULL: TERM */
    int pull_failures;
    char *pull_key;                   /* pull.c: the image a pull is fetching for it */
    int64_t pull_asked_ns;            /* when it asked */
    struct klet_pull_outcome *pulled; /* the outcome, until ctr_start takes it */
    struct klet_probe *liveness, *readiness;
    bool killing;
};

struct klet_pod {
    struct klet *k;
    char *uid, *ns, *name;
    Coracle__V1__Pod *pod; /* latest object from the API (owned, unpacked) */
    char *dir;             /* <root>/pods/<uid> */
    bool sandbox_ready;
    struct klet_ctr *inits;
    size_t ninit;
    struct klet_ctr *ctrs;
    size_t nctr;
    int64_t start_ns;
    bool deleting; /* deletionTimestamp seen: stopping */
    bool recorded; /* known from the record only: not (yet) in the apiserver's list */
    bool gone;     /* DELETED from the API: tear down without reporting */
    bool torn_down;
    bool delete_sent;
    int64_t kill_deadline_mono;
    struct event *sync_ev; /* deferred sync (one per loop turn) */
    struct event *kill_ev; /* grace period end */
    uint8_t *sent;         /* last status sent, packed */
    size_t sent_len;
    bool status_inflight, status_again;
    int status_fails; /* UpdateStatus failures in a row (the retry's back-off) */
    char *sandbox_err;
    char *pod_ip;              /* from CNI, NULL without */
    struct event *retry_ev;    /* sandbox retry */
    int refs;                  /* in-flight API calls holding the pod */
    char **vol_rv;             /* cfgvol.c: per spec volume, the resourceVersion written, or NULL */
    char *vol_err;             /* the last FailedMount message */
    const char *reject_reason; /* this node refused the pod (static): it stays Failed */
    char *reject_msg;
    bool *proj_done;        /* projvol.c: per spec volume, written at least once */
    struct klet_tok **toks; /* projvol.c: the ServiceAccount tokens its volumes hold */
    size_t ntoks;
    struct event *tok_ev; /* projvol.c: the next token refresh */
};

/* The pod's status from its containers. old: the status in the API object (conditions keep
 * their lastTransitionTime while unchanged). Returns a message built with protobuf-c
 * structs that klet_status_free releases. */
Coracle__V1__PodStatus *klet_status_compute(const struct klet_pod *p,
                                            const Coracle__V1__PodStatus *old, const char *host_ip,
                                            int64_t now);
void klet_status_free(Coracle__V1__PodStatus *s);
/* Phase alone (Pending, Running, Succeeded, Failed). */
const char *klet_status_phase(const struct klet_pod *p);
/* Will this exited container be started again under the pod's restartPolicy? */
bool klet_should_restart(const struct klet_pod *p, const struct klet_ctr *c);
/* "2026-11-28T06:35:04Z" */
void klet_fmt_time(char *buf, size_t n, int64_t ns);

/* ------------------------------------------------------------ netlink.c */
/* rtnetlink requests in the caller's network namespace. Addresses in network byte order.
 * Each returns 0, or -1 and *err (malloc'd). Deleting what is not there succeeds. */
#define KLET_RTPROT 157 /* rtm_protocol of the routes the kubelet makes (ours to delete) */
/* Adds (or replaces) / deletes the route dst/plen [via gw] [dev oif] [onlink]. */
int klet_nl_route(bool add, uint32_t dst, int plen, uint32_t gw, int oif, bool onlink, char **err);
/* The kernel's route to dst: OUT gw (0: directly connected), oif, local (an address of ours). */
int klet_nl_route_lookup(uint32_t dst, uint32_t *gw, int *oif, bool *local, char **err);
/* OUT *dst (malloc'd, the caller frees): the main table's routes of protocol KLET_RTPROT,
 * each {network, prefix length}; *n of them. */
int klet_nl_routes_ours(uint32_t (**dst)[2], size_t *n, char **err);
/* Creates the VXLAN device name (kept when it exists) and returns its *ifindex. link: the
 * lower device (0: none); mtu 0: the kernel's choice; no learning. */
int klet_nl_vxlan(const char *name, uint32_t vni, uint16_t port, uint32_t local, int link,
                  const uint8_t mac[6], int mtu, int *ifindex, char **err);
/* Creates the dummy device name (kept when it exists) and returns its *ifindex. */
int klet_nl_dummy(const char *name, int *ifindex, char **err);
int klet_nl_link_up(int ifindex, char **err);
int klet_nl_link_del(const char *name, char **err);
int klet_nl_addr(int ifindex, uint32_t ip, int plen, char **err);
/* Adds (or replaces) / deletes the address ip/plen on ifindex. */
int klet_nl_addr_set(bool add, int ifindex, uint32_t ip, int plen, char **err);
/* A permanent neighbour ip -> mac on ifindex. */
int klet_nl_neigh(bool add, int ifindex, uint32_t ip, const uint8_t mac[6], char **err);
/* A permanent FDB entry: frames to mac go to the VTEP at remote. */
int klet_nl_fdb(bool add, int ifindex, const uint8_t mac[6], uint32_t remote, char **err);
/* The link named name (or, name NULL, of index ifindex): when it is a veth, *peer is the index
 * of its other end, in the namespace that end lives in; else 0. */
int klet_nl_veth_peer(const char *name, int ifindex, int *peer, char **err);

/* ------------------------------------------------------------ offload.c */
/* The nftables script of table ip coracle-vxlan: UDP to port (the VXLAN port) not tracked. */
void klet_offload_notrack_script(struct buf *b, int port);
/* Replaces (klet_offload_notrack) or removes (idempotent) that table; 0 or -1 with *err. */
int klet_offload_notrack(int port, char **err);
int klet_offload_notrack_remove(char **err);

/* ------------------------------------------------------------ podnet.c */
/* Starts routing other nodes' pod ranges as cfg.pod_network_mode says (none: nothing).
 * -1 and *err (malloc'd) on a bad mode or when the VXLAN device cannot be made. */
int klet_podnet_start(struct klet *k, char **err);
/* Reads --pod-network (none, bridge, host-gw, vxlan) and the deprecated --pod-network-mode
 * into k->net.builtin and k->podnet.mode. 0, or -1 with *err (malloc'd). */
int klet_podnet_config(struct klet *k, char **err);
/* Stops the Node watch and removes every route, entry and device the pod network made. */
void klet_podnet_stop(struct klet *k);
/* Removes what any earlier run made (routes of KLET_RTPROT, the VXLAN device): --cleanup. */
void klet_podnet_cleanup(struct klet *k);
/* Pure helpers (unit-tested): "a.b.c.d/n" -> network and prefix; the VTEP MAC of a node IP;
 * a mode name -> KLET_PODNET_*. Each parser returns 0 or -1. */
int klet_podnet_parse_cidr(const char *s, uint32_t *net, int *plen);
void klet_podnet_mac(uint32_t ip, uint8_t mac[6]);
int klet_podnet_mode_parse(const char *s, int *mode);

/* ------------------------------------------------------------ events.c */
/* Records an event about the pod (fieldPath spec.containers{c} when c). Fire and forget. */
void klet_event(struct klet *k, const struct klet_pod *p, const struct klet_ctr *c,
                const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Records an event about this node (involvedObject kind Node). Fire and forget. */
void klet_event_node(struct klet *k, const char *type, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------ probes.c */
void klet_probes_start(struct klet_ctr *c);
void klet_probes_stop(struct klet_ctr *c);

/* ------------------------------------------------------------ node.c */
void klet_node_start(struct klet *k);
/* The wait before retry number fails (1, 2, ...): min_ms doubling to max_ms, less up to a fifth
 * of jitter. */
int64_t klet_backoff_ms(int fails, int64_t min_ms, int64_t max_ms);
/* Machine facts (also used by the unit tests). */
int64_t klet_node_mem_bytes(void);
int klet_node_cpus(void);
int64_t klet_node_disk_bytes(const char *path);

/* ------------------------------------------------------------ metrics.c */
/* The daemon_ops hooks (arg = struct klet): /readyz once the first pod list is in, /metrics,
 * STATUS=. */
bool klet_ready(void *arg);
void klet_metrics_write(FILE *f, void *arg);
void klet_describe(char *buf, size_t len, void *arg);
/* Starts sampling pod start latency (with the health endpoint); klet_metrics_stop frees it. */
void klet_metrics_start(struct klet *k);
void klet_metrics_stop(struct klet *k);

/* ------------------------------------------------------------ watch.c */
void klet_watch_start(struct klet *k);
/* Frees the pod informer (at exit, before the client goes). */
void klet_watch_stop(struct klet *k);

/* ------------------------------------------------------------ pods.c */
/* The apiserver said: pod added/modified (pod is borrowed) or deleted. */
void klet_pods_upsert(struct klet *k, const Coracle__V1__Pod *pod);
void klet_pods_deleted(struct klet *k, const Coracle__V1__Pod *pod);
/* The initial list is in: re-adopt what runs under root-dir, clean orphans, start syncing. */
void klet_pods_synced(struct klet *k);
/* The apiserver is out of reach at start: the pods of the record (record.c) stand in for its
 * list, then as klet_pods_synced. false (nothing done) without a complete record. */
bool klet_pods_from_record(struct klet *k);
/* The apiserver's first pod list after klet_pods_from_record is in: the recorded pods it does
 * not hold were deleted meanwhile and are stopped. */
void klet_pods_reconcile(struct klet *k);
/* From monitor.c */
void klet_pod_ctr_created(struct klet_ctr *c, int pid);
void klet_pod_ctr_started(struct klet_ctr *c, int64_t started_ns);
void klet_pod_ctr_failed(struct klet_ctr *c, const char *msg);
/* A registry pull this container waited for ended (c->pulled): start it, or report. */
void klet_pod_ctr_pulled(struct klet_ctr *c);
void klet_pod_ctr_exited(struct klet_ctr *c);
/* From probes.c */
void klet_pod_ctr_probe(struct klet_ctr *c, bool liveness, bool ok, const char *msg);
/* tunnel.c's resolver (ktun_resolve_fn; arg = struct klet): where ns/pod/container's runc
 * container and CRI log are. */
struct ktun_target;
int klet_pods_resolve(void *arg, const char *ns, const char *pod, const char *container,
                      int previous, struct ktun_target *out, char **err);
/* Schedules a sync of the pod on the next loop turn. */
void klet_pod_kick(struct klet_pod *p);

#endif
