/*
 * pods: the kubelet's per-pod state machine. The informer (watch.c) hands
 * in pod objects; a sync (deferred to the next loop turn, so bursts of
 * events make one pass) makes the node match the spec: the sandbox and
 * volumes once, init containers in order, then the containers, restarts
 * under restartPolicy with Kubernetes' crash-loop back-off, graceful
 * termination on deletionTimestamp (TERM, grace, KILL), teardown that
 * leaves nothing behind, and status through UpdateStatus when it really
 * changed. Container progress comes back from monitor.c (sync pipe, exit
 * file) and probes.c. On start, klet_pods_synced re-adopts containers that
 * kept running under their monitors while the kubelet was away.
 *
 * Every pod the apiserver hands in is kept in the durable record
 * (record.c) until it leaves the node. When the apiserver is out of reach
 * at start, klet_pods_from_record runs the recorded pods instead (after a
 * reboot: their containers start again); restarts, probes and back-off
 * need nothing from the apiserver, and statuses wait for it. Its first
 * list then replaces the recorded objects (nothing restarts), and the
 * recorded pods it lacks were deleted meanwhile: klet_pods_reconcile
 * stops them.
 *
 * A container's files: <root>/containers/<id>/{meta,bundle/,upper/,work/,
 * started,exit,...}; the pod's: <root>/pods/<uid>/{ns/,volumes/,hosts,
 * resolv.conf,hostname,logs/<container>/<restart>.log}.
 */
#include "config.h"
#include "dns.h"
#include "klet.h"
#include "kinds.h"
#include "tunnel.h"
#include "pb.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS 1000000000LL

static void pod_sync(struct klet_pod *p);
static void pod_free(struct klet_pod *p);

/* ------------------------------------------------------------------ helpers */

static Coracle__V1__Pod *pod_copy(const Coracle__V1__Pod *pod)
{
    return (Coracle__V1__Pod *)pb_clone(&pod->base);
}

static const Coracle__V1__Container *ctr_spec(const struct klet_ctr *c)
{
    const Coracle__V1__PodSpec *s = c->pod->pod->spec;
    return c->init ? s->initcontainers[c->idx] : s->containers[c->idx];
}

static char *ctr_dir(const struct klet *k, const char *id)
{
    return xasprintf("%s/containers/%s", k->cfg.root_dir, id);
}

static void set_wait(struct klet_ctr *c, const char *reason, const char *msg)
{
    free(c->wait_reason);
    free(c->wait_msg);
    c->wait_reason = reason ? xstrdup(reason) : NULL;
    c->wait_msg = msg ? xstrdup(msg) : NULL;
}

static const char *restart_policy(const struct klet_pod *p)
{
    const char *r = p->pod->spec->restartpolicy;
    return r && *r ? r : "Always";
}

static int64_t grace_seconds(const struct klet_pod *p)
{
    const Coracle__V1__ObjectMeta *m = p->pod->metadata;
    if (m->has_deletiongraceperiodseconds)
        return m->deletiongraceperiodseconds;
    if (p->pod->spec->has_terminationgraceperiodseconds)
        return p->pod->spec->terminationgraceperiodseconds;
    return 30;
}

static bool ctr_active(const struct klet_ctr *c)
{
    return c->state == KC_RUNNING || c->state == KC_CREATING;
}

static void ctr_timer_cancel(struct klet_ctr *c)
{
    if (c->timer) {
        event_free(c->timer);
        c->timer = NULL;
    }
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* ------------------------------------------------------------------ teardown of one container */

/* After the container ended: runc delete (cgroup), unmount and drop its rootfs; keep the dir
 * with meta/started/exit for lastState. */
static void ctr_release(struct klet *k, const char *id)
{
    if (!id[0])
        return;
    klet_runc_delete(k, id);
    char *d = ctr_dir(k, id);
    char *b = xasprintf("%s/bundle", d);
    klet_umount_tree(b);
    klet_rmtree(b);
    free(b);
    b = xasprintf("%s/upper", d);
    klet_rmtree(b);
    free(b);
    b = xasprintf("%s/work", d);
    klet_rmtree(b);
    free(b);
    free(d);
}

static void ctr_remove_dir(struct klet *k, const char *id)
{
    if (!id[0])
        return;
    char *d = ctr_dir(k, id);
    klet_umount_tree(d);
    klet_rmtree(d);
    free(d);
}

/* ------------------------------------------------------------------ starting a container */

static void ctr_timer_fire(evutil_socket_t fd, short what, void *arg);

static void ctr_timer_set(struct klet_ctr *c, int64_t delay_ns)
{
    ctr_timer_cancel(c);
    c->timer = evtimer_new(c->pod->k->base, ctr_timer_fire, c);
    if (delay_ns < 0)
        delay_ns = 0;
    struct timeval tv = {delay_ns / NS, (delay_ns % NS) / 1000};
    event_add(c->timer, &tv);
}

static int64_t backoff_for(const struct klet *k, int n)
{
    int64_t s = k->cfg.crashloop_base;
    for (int i = 1; i < n && s < k->cfg.crashloop_max; i++)
        s *= 2;
    return s > k->cfg.crashloop_max ? k->cfg.crashloop_max : s;
}

static void fmt_ms(char *buf, size_t n, int64_t ns)
{
    int64_t ms = (ns + 999999) / 1000000;
    if (ms < 1000)
        snprintf(buf, n, "%lldms", (long long)(ms ? ms : 1));
    else
        snprintf(buf, n, "%.3fs", ms / 1000.0);
}

static bool pull_always(const Coracle__V1__Container *s)
{
    if (s->imagepullpolicy)
        return !strcmp(s->imagepullpolicy, "Always");
    const char *img = s->image ? s->image : "";
    const char *slash = strrchr(img, '/');
    const char *colon = strrchr(slash ? slash : img, ':');
    return !colon || !strcmp(colon, ":latest");
}

/* A pull that began at started (mono_ns) failed: the image's back-off grows. */
static void pull_failed(struct klet_ctr *c, const char *image, const char *err, int64_t started)
{
    struct klet_pod *p = c->pod;
    int64_t wait = klet_pull_failed(p->k, image, started);
    klet_event(p->k, p, c, "Warning", "Failed", "Failed to pull image \"%s\": %s", image, err);
    klet_event(p->k, p, c, "Warning", "Failed", "Error: ErrImagePull");
    set_wait(c, "ErrImagePull", err);
    c->pull_failures++;
    /* Shown as ErrImagePull for a moment, then ImagePullBackOff until the retry. */
    ctr_timer_set(c, wait / 2 < NS ? wait / 2 : NS);
}

/* The image is in its pull back-off for wait ns more: Kubernetes' ErrImagePullBackOff. */
static void pull_backoff(struct klet_ctr *c, const char *image, int64_t wait)
{
    struct klet_pod *p = c->pod;
    char *msg = xasprintf("Back-off pulling image \"%s\"", image);
    if (!c->wait_reason || strcmp(c->wait_reason, "ImagePullBackOff")) {
        klet_event(p->k, p, c, "Normal", "BackOff", "%s", msg);
        klet_event(p->k, p, c, "Warning", "Failed", "Error: ImagePullBackOff");
    }
    set_wait(c, "ImagePullBackOff", msg);
    free(msg);
    ctr_timer_set(c, wait);
}

/*
 * What prepare_and_start makes for one container: paths, argv and env,
 * the mounts, the namespaces to join and config.json. Everything is owned
 * here and released by build_free whether the start worked or not; the
 * container's files on disk are ctr_release's and ctr_remove_dir's.
 */
struct ctr_build {
    char **argv, **env;
    size_t nargv, nenv;
    char *cdir, *bundle, *rootfs, *upper, *work; /* <root>/containers/<id>/... */
    struct klet_mount *mounts;
    char **srcs; /* the mounts' sources */
    size_t nmounts;
    char *netns, *ipcns, *utsns; /* namespace files to join; NULL: the host's */
    char *pidns;                 /* shareProcessNamespace: the pod's; NULL: its own */
    char *cgroup;
    char *json; /* config.json */
    char *logpath;
};

static void build_free(struct ctr_build *b)
{
    klet_strv_free(b->argv);
    klet_strv_free(b->env);
    free(b->cdir);
    free(b->bundle);
    free(b->rootfs);
    free(b->upper);
    free(b->work);
    for (size_t i = 0; i < b->nmounts; i++)
        free(b->srcs[i]);
    free(b->srcs);
    free(b->mounts);
    free(b->netns);
    free(b->ipcns);
    free(b->utsns);
    free(b->pidns);
    free(b->cgroup);
    free(b->json);
    free(b->logpath);
}

/* shareProcessNamespace (hostPID wins: the API refuses both) */
static bool share_pid(const Coracle__V1__PodSpec *spec)
{
    return spec->has_shareprocessnamespace && spec->shareprocessnamespace &&
           !(spec->has_hostpid && spec->hostpid);
}

/* The container's directories and its meta file (what re-adoption reads back; image GC
 * and `coraclectl image prune` read its sixth line, the image id: image_gc.c). */
static int build_dirs(struct ctr_build *b, struct klet_ctr *c, const Coracle__V1__Container *s,
                      const struct klet_img *img, char **err)
{
    struct klet_pod *p = c->pod;
    b->cdir = ctr_dir(p->k, c->id);
    b->bundle = xasprintf("%s/bundle", b->cdir);
    b->rootfs = xasprintf("%s/rootfs", b->bundle);
    b->upper = xasprintf("%s/upper", b->cdir);
    b->work = xasprintf("%s/work", b->cdir);
    if (mkdir(b->cdir, 0700) < 0 || mkdir(b->bundle, 0700) < 0 || mkdir(b->rootfs, 0755) < 0 ||
        mkdir(b->upper, 0755) < 0 || mkdir(b->work, 0700) < 0) {
        *err = xasprintf("mkdir %s: %s", b->cdir, strerror(errno));
        return -1;
    }
    char *meta =
        xasprintf("%s\n%s\n%d\n%d\n%s\n%s\n%s\n", p->uid, c->name, c->init ? 1 : 0, c->restarts,
                  s->image ? s->image : "", img->id, img->stop_signal ? img->stop_signal : "");
    char *mp = xasprintf("%s/meta", b->cdir);
    write_text(mp, meta);
    free(mp);
    free(meta);
    return 0;
}

/* The image's read-only rootfs under an overlay of the container's own. */
static int build_rootfs(struct ctr_build *b, const struct klet_ctr *c, const struct klet_img *img,
                        char **err)
{
    char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", img->rootfs, b->upper, b->work);
    int mrc = mount("overlay", b->rootfs, "overlay", 0, opts);
    free(opts);
    if (mrc < 0) {
        *err = xasprintf("mount overlay rootfs for %s: %s", c->name, strerror(errno));
        return -1;
    }
    return 0;
}

static void add_mount(struct ctr_build *b, const char *dst, char *src, const char *opts)
{
    b->srcs[b->nmounts] = src;
    b->mounts[b->nmounts] = (struct klet_mount){dst, src, "bind", opts};
    b->nmounts++;
}

/* /etc files of the pod, then the volume mounts. */
static int build_mounts(struct ctr_build *b, const struct klet_pod *p,
                        const Coracle__V1__Container *s, char **err)
{
    b->mounts = xcalloc(3 + s->n_volumemounts, sizeof *b->mounts);
    b->srcs = xcalloc(3 + s->n_volumemounts, sizeof *b->srcs);
    static const char *const etc[][2] = {{"/etc/hosts", "hosts"},
                                         {"/etc/resolv.conf", "resolv.conf"},
                                         {"/etc/hostname", "hostname"}};
    for (size_t i = 0; i < 3; i++)
        add_mount(b, etc[i][0], xasprintf("%s/%s", p->dir, etc[i][1]), "rbind,rprivate");
    for (size_t i = 0; i < s->n_volumemounts; i++) {
        const Coracle__V1__VolumeMount *vm = s->volumemounts[i];
        char *src = vm->name ? klet_volume_path(p->dir, p->pod->spec, vm->name) : NULL;
        if (!src || !vm->mountpath) {
            *err = xasprintf("volumeMounts[%zu]: volume \"%s\" not found", i,
                             vm->name ? vm->name : "");
            free(src);
            return -1;
        }
        if (vm->subpath && *vm->subpath) {
            char *sp = xasprintf("%s/%s", src, vm->subpath);
            free(src);
            src = sp;
            mkdir(src, 0777);
        }
        /* configMap and secret volumes are always read-only, as in Kubernetes */
        bool ro =
            (vm->has_readonly && vm->readonly) || klet_volume_projected(p->pod->spec, vm->name);
        add_mount(b, vm->mountpath, src, ro ? "rbind,rprivate,ro" : "rbind,rprivate");
    }
    return 0;
}

/* config.json from the image, the spec and what build_* made, in the bundle. */
static int build_config(struct ctr_build *b, const struct klet_ctr *c,
                        const Coracle__V1__Container *s, const struct klet_img *img,
                        const struct klet_sec *sec, char **err)
{
    const Coracle__V1__PodSpec *spec = c->pod->pod->spec;
    const char *dir = c->pod->dir;
    bool hostnet = spec->has_hostnetwork && spec->hostnetwork;
    bool hostipc = spec->has_hostipc && spec->hostipc;
    b->netns = hostnet ? NULL : xasprintf("%s/ns/net", dir);
    b->utsns = hostnet ? NULL : xasprintf("%s/ns/uts", dir);
    b->ipcns = hostipc ? NULL : xasprintf("%s/ns/ipc", dir);
    b->pidns = share_pid(spec) ? xasprintf("%s/ns/pid", dir) : NULL;
    b->cgroup = xasprintf("/coracle/%s", c->id);
    struct klet_oci o = {
        .sec = sec,
        .args = b->argv,
        .nargs = b->nargv,
        .env = b->env,
        .nenv = b->nenv,
        .cwd = s->workingdir && *s->workingdir ? s->workingdir : img->workdir,
        .rootfs = b->rootfs,
        .netns = b->netns,
        .ipcns = b->ipcns,
        .utsns = b->utsns,
        .host_pid = spec->has_hostpid && spec->hostpid,
        .pidns = b->pidns,
        .cgroups_path = b->cgroup,
        .mounts = b->mounts,
        .nmounts = b->nmounts,
        .terminal = s->has_tty && s->tty,
    };
    klet_ctr_resources(s, &o);
    b->json = klet_oci_config(&o);
    char *cfgpath = xasprintf("%s/config.json", b->bundle);
    write_text(cfgpath, b->json);
    free(cfgpath);
    return 0;
}

/* <pod>/logs/<container>/<restarts>.log, its directories made. */
static void build_log(struct ctr_build *b, const struct klet_ctr *c)
{
    const char *dir = c->pod->dir;
    char *logs = xasprintf("%s/logs", dir);
    mkdir(logs, 0755);
    free(logs);
    char *logdir = xasprintf("%s/logs/%s", dir, c->name);
    mkdir(logdir, 0755);
    b->logpath = xasprintf("%s/%d.log", logdir, c->restarts);
    free(logdir);
}

/* A fresh runc id: a UUID v4 without its dashes. */
static void new_ctr_id(char id[40])
{
    char uuid[37];
    uuid_v4(uuid);
    size_t j = 0;
    for (size_t i = 0; uuid[i] && j < 32; i++)
        if (uuid[i] != '-')
            id[j++] = uuid[i];
    id[j] = 0;
}

/* Kubernetes' ExpandContainerCommandAndArgs: $(VAR) in command and args from the container's
 * env. A NULL-terminated copy of v (free with klet_strv_free). */
static char **expand_all(char *const *v, size_t n, char *const *env, size_t nenv)
{
    char **out = xcalloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = klet_env_expand(v[i], env, nenv);
    return out;
}

/* argv (command and args expanded) and env: the image's, then the container's own (cenv,
 * "NAME=value", from klet_env_build). */
static int build_process(struct ctr_build *b, const struct klet_pod *p,
                         const Coracle__V1__Container *s, const struct klet_img *img,
                         char *const *cenv, size_t ncenv, char **err)
{
    Coracle__V1__Container x = *s;
    x.command = expand_all(s->command, s->n_command, cenv, ncenv);
    x.args = expand_all(s->args, s->n_args, cenv, ncenv);
    x.n_env = 0;
    int rc = klet_ctr_argv(&x, img, &b->argv, &b->nargv, err);
    klet_strv_free(x.command);
    klet_strv_free(x.args);
    if (rc < 0)
        return -1;
    b->env = klet_ctr_env(&x, img, p->name, &b->nenv);
    klet_service_env(p->k, p->pod->spec, &b->env, &b->nenv);
    for (size_t i = 0; i < ncenv; i++) {
        char *name = xstrndup(cenv[i], strcspn(cenv[i], "="));
        klet_env_set(&b->env, &b->nenv, name,
                     cenv[i] + strlen(name) + (cenv[i][strlen(name)] != 0));
        free(name);
    }
    return 0;
}

static int prepare_and_start(struct klet_ctr *c, const Coracle__V1__Container *s,
                             struct klet_img *img, const struct klet_sec *sec, char *const *cenv,
                             size_t ncenv, char **err)
{
    struct klet_pod *p = c->pod;
    struct klet *k = p->k;
    struct ctr_build b = {0};
    int rc = -1;

    if (build_process(&b, p, s, img, cenv, ncenv, err) < 0)
        goto out;
    new_ctr_id(c->id);
    if (build_dirs(&b, c, s, img, err) < 0 || build_rootfs(&b, c, img, err) < 0 ||
        build_mounts(&b, p, s, err) < 0 || build_config(&b, c, s, img, sec, err) < 0)
        goto out;
    build_log(&b, c);

    c->state = KC_CREATING;
    set_wait(c, "ContainerCreating", NULL);
    free(c->image_id);
    c->image_id = xstrdup(img->id);
    free(c->stop_signal);
    c->stop_signal = img->stop_signal ? xstrdup(img->stop_signal) : NULL;
    klet_monitor_watch(k, c, b.cdir);
    if (klet_monitor_start(k, c, s, b.cdir, b.logpath, err) < 0) {
        klet_monitor_unwatch(k, c);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0 && c->id[0]) {
        ctr_release(k, c->id);
        ctr_remove_dir(k, c->id);
        c->id[0] = 0;
        c->state = KC_WAITING;
    }
    build_free(&b);
    return rc;
}

/* The container's user, groups, capabilities and seccomp profile (secctx.c). */
static int ctr_security(const struct klet_ctr *c, const Coracle__V1__Container *s,
                        const struct klet_img *img, struct klet_sec *out, char **err)
{
    struct klet *k = c->pod->k;
    char *root = xasprintf("%s/seccomp", k->cfg.root_dir);
    struct klet_sec_in in = {
        .pod = c->pod->pod,
        .ctr = s,
        .rootfs = img->rootfs,
        .image_user = img->user,
        .seccomp_root = root,
        .seccomp_default = k->cfg.seccomp_default,
        .no_seccomp = k->no_seccomp,
    };
    int rc = klet_sec_build(&in, out, err);
    free(root);
    return rc;
}

static void ctr_start(struct klet_ctr *c)
{
    struct klet_pod *p = c->pod;
    struct klet *k = p->k;
    const Coracle__V1__Container *s = ctr_spec(c);
    const char *image = s->image ? s->image : "";
    bool always = pull_always(s);
    ctr_timer_cancel(c);
    /* The env's ConfigMaps and Secrets: an object not listed yet is waited for quietly, one
     * missing holds the container (refs.c kicks the pod when it changes); the same error
     * again says nothing new. */
    char **cenv = NULL, *cerr = NULL;
    size_t ncenv = 0;
    int crc = klet_env_build(c, s, &cenv, &ncenv, &cerr);
    if (crc == 1)
        return;
    if (crc < 0 && c->wait_reason && !strcmp(c->wait_reason, "CreateContainerConfigError") &&
        c->wait_msg && !strcmp(c->wait_msg, cerr)) {
        free(cerr);
        return;
    }
    int64_t wait;
    struct klet_img img;
    char *err = NULL;
    int have = 0; /* img loaded already */
    bool never = s->imagepullpolicy && !strcmp(s->imagepullpolicy, "Never");
    if (k->cfg.registry_pulls && !never && !c->pulled) {
        if (c->pull_key || klet_pull_secrets_pending(p)) {
            /* a pull is on its way (pull.c starts the container again), or its credentials
             * are not listed yet (refs.c kicks the pod) */
            klet_strv_free(cenv);
            free(cerr);
            return;
        }
        if (!always && klet_img_lookup(k, image, &img, &err) == 0) {
            have = 1;
        } else if ((wait = klet_pull_backoff(k, image)) > 0) {
            free(err);
            pull_backoff(c, image, wait);
            klet_strv_free(cenv);
            free(cerr);
            return;
        } else {
            free(err);
            err = NULL;
            klet_event(k, p, c, "Normal", "Pulling", "Pulling image \"%s\"", image);
            if (klet_pull_image(c, image) == 1) {
                klet_strv_free(cenv);
                free(cerr);
                return;
            }
        }
    } else if (always && !k->cfg.registry_pulls) {
        klet_event(k, p, c, "Normal", "Pulling", "Pulling image \"%s\"", image);
    }
    struct klet_pull_outcome *pulled = c->pulled;
    c->pulled = NULL;
    if (pulled && pulled->rc < 0) {
        pull_failed(c, image, pulled->msg ? pulled->msg : pulled->code, pulled->started_ns);
        klet_pull_outcome_free(pulled);
        klet_strv_free(cenv);
        free(cerr);
        return;
    }
    int64_t t0 = mono_ns();
    if (!have && klet_img_lookup(k, image, &img, &err) < 0) {
        if (s->imagepullpolicy && !strcmp(s->imagepullpolicy, "Never")) {
            /* Kubernetes' ErrImageNeverPull: no pulling, no back-off events. */
            char *msg =
                xasprintf("Container image \"%s\" is not present with pull policy of Never", image);
            if (!c->wait_reason || strcmp(c->wait_reason, "ErrImageNeverPull"))
                klet_event(k, p, c, "Warning", "ErrImageNeverPull", "%s", msg);
            set_wait(c, "ErrImageNeverPull", msg);
            free(msg);
            ctr_timer_set(c, backoff_for(k, ++c->pull_failures) * NS);
        } else if ((wait = klet_pull_backoff(k, image)) > 0) {
            pull_backoff(c, image, wait);
        } else {
            pull_failed(c, image, err, t0);
        }
        free(err);
        klet_strv_free(cenv);
        free(cerr);
        klet_pull_outcome_free(pulled);
        return;
    }
    c->pull_failures = 0;
    klet_pull_succeeded(k, image);
    klet_img_mark_used(k, img.id);
    /* The security context needs the image's user: runAsNonRoot is checked against it. */
    struct klet_sec sec = {0};
    int src = crc < 0 ? 0 : ctr_security(c, s, &img, &sec, &cerr);
    if (src == KSEC_CONFIG) {
        crc = -1;
        if (c->wait_reason && !strcmp(c->wait_reason, "CreateContainerConfigError") &&
            c->wait_msg && !strcmp(c->wait_msg, cerr)) {
            free(cerr);
            klet_strv_free(cenv);
            klet_img_free(&img);
            klet_pull_outcome_free(pulled);
            return; /* said already */
        }
    }
    if (pulled) {
        /* Kubernetes' words (kubelet images/image_manager.go) */
        char d[32], w[32];
        fmt_ms(d, sizeof d, pulled->pull_ns);
        fmt_ms(w, sizeof w, pulled->wait_ns);
        klet_event(k, p, c, "Normal", "Pulled",
                   "Successfully pulled image \"%s\" in %s (%s including waiting). Image size: "
                   "%llu bytes.",
                   image, d, w, (unsigned long long)pulled->size);
    } else if (always && !k->cfg.registry_pulls) {
        char d[32];
        fmt_ms(d, sizeof d, mono_ns() - t0);
        klet_event(k, p, c, "Normal", "Pulled",
                   "Successfully pulled image \"%s\" in %s (%s including waiting)", image, d, d);
    } else {
        klet_event(k, p, c, "Normal", "Pulled", "Container image \"%s\" already present on machine",
                   image);
    }
    if (crc < 0) {
        /* Kubernetes' CreateContainerConfigError: no back-off, the object's watch retries */
        klet_event(k, p, c, "Warning", "Failed", "Error: %s", cerr);
        set_wait(c, "CreateContainerConfigError", cerr);
    } else if (src < 0 || prepare_and_start(c, s, &img, &sec, cenv, ncenv, &err) < 0) {
        if (src < 0) {
            err = cerr;
            cerr = NULL;
        }
        klet_event(k, p, c, "Warning", "Failed", "Error: %s", err);
        set_wait(c, "CreateContainerError", err);
        free(err);
        ctr_timer_set(c, backoff_for(k, 1) * NS);
    }
    klet_sec_free(&sec);
    klet_strv_free(cenv);
    free(cerr);
    klet_img_free(&img);
    klet_pull_outcome_free(pulled);
}

void klet_pod_ctr_pulled(struct klet_ctr *c)
{
    struct klet_pod *p = c->pod;
    if (p->deleting || p->gone || c->state != KC_WAITING) {
        klet_pull_outcome_free(c->pulled);
        c->pulled = NULL;
        return;
    }
    ctr_start(c);
    klet_pod_kick(p);
}

/* Crash-loop back-off as Kubernetes' kubelet: the first restart is at once and arms a
 * window of base seconds from the crash; a crash inside it waits the window out, and each
 * restart doubles it up to the cap; ten minutes of running resets it. */
static void ctr_restart(struct klet_ctr *c)
{
    struct klet_pod *p = c->pod;
    struct klet *k = p->k;
    int64_t now = now_ns();
    if (c->term.valid && c->term.finished_ns - c->term.started_ns > 600 * NS)
        c->backoff_s = 0;
    if (c->backoff_s > 0 && now - c->term.finished_ns < c->backoff_s * NS) {
        if (!c->wait_reason || strcmp(c->wait_reason, "CrashLoopBackOff")) {
            char *msg = xasprintf("back-off %llds restarting failed container=%s pod=%s_%s(%s)",
                                  (long long)c->backoff_s, c->name, p->name, p->ns, p->uid);
            set_wait(c, "CrashLoopBackOff", msg);
            free(msg);
            klet_event(k, p, c, "Warning", "BackOff",
                       "Back-off restarting failed container %s in pod %s_%s(%s)", c->name, p->name,
                       p->ns, p->uid);
        }
        if (!c->timer)
            ctr_timer_set(c, c->backoff_s * NS - (now - c->term.finished_ns));
        return;
    }
    c->backoff_s = c->backoff_s ? (c->backoff_s * 2 > k->cfg.crashloop_max ? k->cfg.crashloop_max
                                                                           : c->backoff_s * 2)
                                : k->cfg.crashloop_base;
    /* The previous dead container goes; this one becomes lastState. */
    if (c->last.valid && strcmp(c->last.id, c->term.id))
        ctr_remove_dir(k, c->last.id);
    c->last = c->term;
    c->term.valid = false;
    c->restarts++;
    c->id[0] = 0;
    c->state = KC_WAITING;
    set_wait(c, NULL, NULL);
    ctr_start(c);
}

static void ctr_timer_fire(evutil_socket_t fd, short what, void *arg)
{
    struct klet_ctr *c = arg;
    struct klet_pod *p = c->pod;
    event_free(c->timer);
    c->timer = NULL;
    if (p->deleting || p->gone)
        return;
    if (c->killing && ctr_active(c)) {
        klet_runc_kill(p->k, c->id, "KILL");
        return;
    }
    if (c->state == KC_EXITED)
        ctr_restart(c);
    else if (c->state == KC_WAITING)
        ctr_start(c);
    klet_pod_kick(p);
}

/* ------------------------------------------------------------------ monitor callbacks */

void klet_pod_ctr_created(struct klet_ctr *c, int pid)
{
    klet_event(c->pod->k, c->pod, c, "Normal", "Created", "Created container %s", c->name);
}

void klet_pod_ctr_started(struct klet_ctr *c, int64_t started_ns)
{
    if (c->state != KC_CREATING)
        return;
    c->state = KC_RUNNING;
    c->started_ns = started_ns;
    c->ever_started = true;
    c->ready = false;
    set_wait(c, NULL, NULL);
    klet_event(c->pod->k, c->pod, c, "Normal", "Started", "Started container %s", c->name);
    if (c->killing || c->pod->deleting || c->pod->gone) {
        /* Stopped while it was being created (a KILL then may have found nothing to kill). */
        klet_runc_kill(c->pod->k, c->id, "KILL");
        klet_pod_kick(c->pod);
        return;
    }
    klet_probes_start(c);
    klet_pod_kick(c->pod);
}

void klet_pod_ctr_failed(struct klet_ctr *c, const char *msg)
{
    struct klet_pod *p = c->pod;
    struct klet *k = p->k;
    if (c->state != KC_CREATING)
        return;
    klet_monitor_unwatch(k, c);
    klet_event(k, p, c, "Warning", "Failed", "Error: %s", msg);
    ctr_release(k, c->id);
    ctr_remove_dir(k, c->id);
    c->id[0] = 0;
    c->state = KC_WAITING;
    set_wait(c, "RunContainerError", msg);
    if (!p->deleting && !p->gone)
        ctr_timer_set(c, backoff_for(k, ++c->pull_failures) * NS);
    klet_pod_kick(p);
}

static int64_t read_started(const char *cdir)
{
    char *p = xasprintf("%s/started", cdir);
    FILE *f = fopen(p, "r");
    free(p);
    long long v = 0;
    if (f) {
        if (fscanf(f, "%lld", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

void klet_pod_ctr_exited(struct klet_ctr *c)
{
    struct klet_pod *p = c->pod;
    struct klet *k = p->k;
    if (c->state != KC_RUNNING && c->state != KC_CREATING)
        return;
    char *cdir = ctr_dir(k, c->id);
    int code = 0, sig = 0, oom = 0;
    int64_t fin = 0;
    if (klet_monitor_read_exit(cdir, &code, &sig, &fin, &oom) < 0) {
        free(cdir);
        return;
    }
    klet_monitor_unwatch(k, c);
    klet_probes_stop(c);
    ctr_timer_cancel(c);
    c->term = (struct klet_term){.valid = true,
                                 .exit_code = code,
                                 .signal = sig,
                                 .oom = oom != 0,
                                 .started_ns = c->started_ns ? c->started_ns : read_started(cdir),
                                 .finished_ns = fin};
    snprintf(c->term.id, sizeof c->term.id, "%s", c->id);
    free(cdir);
    c->state = KC_EXITED;
    c->ever_started = true;
    c->ready = false;
    c->killing = false;
    set_wait(c, NULL, NULL);
    ctr_release(k, c->id);
    log_info("pod %s/%s: container %s exited with %d%s", p->ns, p->name, c->name, code,
             oom ? " (OOMKilled)" : "");
    klet_pod_kick(p);
}

void klet_pod_ctr_probe(struct klet_ctr *c, bool liveness, bool okay, const char *msg)
{
    struct klet_pod *p = c->pod;
    if (c->state != KC_RUNNING)
        return;
    if (!liveness) {
        if (c->ready != okay) {
            c->ready = okay;
            klet_pod_kick(p);
        }
        return;
    }
    if (okay || c->killing)
        return;
    klet_event(p->k, p, c, "Normal", "Killing", "Container %s failed %s probe, will be restarted",
               c->name, c->startup_pending ? "startup" : "liveness");
    c->killing = true;
    klet_runc_kill(p->k, c->id, c->stop_signal ? c->stop_signal : "TERM");
    /* KILL when the grace period is over and TERM was not enough. */
    const Coracle__V1__Probe *pr = ctr_spec(c)->livenessprobe;
    int64_t g = pr && pr->has_terminationgraceperiodseconds ? pr->terminationgraceperiodseconds
                                                            : grace_seconds(p);
    ctr_timer_set(c, g * NS);
    klet_pod_kick(p);
}

/* ------------------------------------------------------------------ status */

static void status_send(struct klet_pod *p);

static void status_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct klet_pod *p = arg;
    p->status_inflight = false;
    p->refs--;
    if (code != 0) {
        log_warn("pod %s/%s: UpdateStatus: %s", p->ns, p->name, message);
        free(p->sent);
        p->sent = NULL;
        p->sent_len = 0;
        if (!p->gone && !p->torn_down && code != 5 /* NOT_FOUND: the pod is gone */) {
            /* the apiserver may be away: sync again, backing off (1 s doubling to 8 s, jittered)
             * so that a node cut off for long does not keep every pod spinning */
            int64_t ms = klet_backoff_ms(++p->status_fails, 1000, 8000);
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            event_add(p->retry_ev, &tv);
        }
    } else {
        p->status_fails = 0;
    }
    if (p->gone && p->refs == 0 && p->torn_down) {
        pod_free(p);
        return;
    }
    if (p->status_again) {
        p->status_again = false;
        status_send(p);
    }
}

static void status_send(struct klet_pod *p)
{
    if (p->gone)
        return;
    if (p->status_inflight) {
        p->status_again = true;
        return;
    }
    struct klet *k = p->k;
    Coracle__V1__PodStatus *old = NULL;
    if (p->sent)
        old = coracle__v1__pod_status__unpack(NULL, p->sent_len, p->sent);
    Coracle__V1__PodStatus *st =
        klet_status_compute(p, old ? old : p->pod->status, k->host_ip, now_ns());
    if (old)
        coracle__v1__pod_status__free_unpacked(old, NULL);
    size_t n;
    uint8_t *buf = pb_encode(&st->base, &n);
    if (p->sent && p->sent_len == n && !memcmp(p->sent, buf, n)) {
        free(buf);
        klet_status_free(st);
        return;
    }
    free(p->sent);
    p->sent = buf;
    p->sent_len = n;
    Coracle__V1__ObjectMeta meta = CORACLE__V1__OBJECT_META__INIT;
    meta.name = p->name;
    meta.namespace_ = p->ns;
    meta.uid = p->uid;
    Coracle__V1__Pod pod = CORACLE__V1__POD__INIT;
    pod.metadata = &meta;
    pod.status = st;
    p->status_inflight = true;
    p->refs++;
    gcl_call(k->api, "/coracle.v1.Pods/UpdateStatus", &pod.base, NULL, status_done, p, 10000);
    klet_status_free(st);
}

/* ------------------------------------------------------------------ termination */

static void kill_timer_fire(evutil_socket_t fd, short what, void *arg)
{
    struct klet_pod *p = arg;
    for (size_t i = 0; i < p->ninit + p->nctr; i++) {
        struct klet_ctr *c = i < p->ninit ? &p->inits[i] : &p->ctrs[i - p->ninit];
        if (ctr_active(c) && c->id[0])
            klet_runc_kill(p->k, c->id, "KILL");
    }
}

static void pod_teardown(struct klet_pod *p)
{
    struct klet *k = p->k;
    for (size_t i = 0; i < p->ninit + p->nctr; i++) {
        struct klet_ctr *c = i < p->ninit ? &p->inits[i] : &p->ctrs[i - p->ninit];
        ctr_timer_cancel(c);
        klet_probes_stop(c);
        klet_monitor_unwatch(k, c);
        if (c->id[0]) {
            ctr_release(k, c->id);
            ctr_remove_dir(k, c->id);
        }
        if (c->term.valid)
            ctr_remove_dir(k, c->term.id);
        if (c->last.valid)
            ctr_remove_dir(k, c->last.id);
    }
    klet_cni_del(k, p->dir, p->uid);
    klet_sandbox_destroy(p->dir);
    klet_volumes_teardown(p->dir);
    klet_umount_tree(p->dir);
    klet_rmtree(p->dir);
    p->torn_down = true;
    log_info("pod %s/%s: torn down", p->ns, p->name);
}

static void delete_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct klet_pod *p = arg;
    p->refs--;
    if (code != 0 && code != 5 /* NOT_FOUND */) {
        log_warn("pod %s/%s: Delete: %s", p->ns, p->name, message);
        p->delete_sent = false;
        struct timeval tv = {1, 0};
        event_add(p->retry_ev, &tv);
    }
    if (p->gone && p->refs == 0)
        pod_free(p);
}

/* Returns true while containers are still stopping. */
static bool pod_stop(struct klet_pod *p, bool graceful)
{
    struct klet *k = p->k;
    bool active = false;
    for (size_t i = 0; i < p->ninit + p->nctr; i++) {
        struct klet_ctr *c = i < p->ninit ? &p->inits[i] : &p->ctrs[i - p->ninit];
        ctr_timer_cancel(c);
        if (!ctr_active(c)) {
            if (c->state == KC_WAITING)
                set_wait(c, NULL, NULL);
            continue;
        }
        active = true;
        if (c->killing)
            continue;
        c->killing = true;
        if (graceful)
            klet_event(k, p, c, "Normal", "Killing", "Stopping container %s", c->name);
        klet_probes_stop(c);
        if (c->state == KC_CREATING || !graceful)
            klet_runc_kill(k, c->id, "KILL");
        else /* the image's StopSignal (nginx: SIGQUIT, a graceful stop), else TERM */
            klet_runc_kill(k, c->id, c->stop_signal ? c->stop_signal : "TERM");
    }
    if (active && !p->kill_ev) {
        int64_t g = graceful ? grace_seconds(p) : 0;
        p->kill_ev = evtimer_new(k->base, kill_timer_fire, p);
        struct timeval tv = {g, 0};
        event_add(p->kill_ev, &tv);
    }
    return active;
}

/* ------------------------------------------------------------------ the sync */

static bool init_done(const struct klet_ctr *c)
{
    return c->state == KC_EXITED && c->term.exit_code == 0;
}

/* A pod the API already reports finished that this kubelet never ran (its records are gone):
 * nothing to start again. */
static bool pod_finished_elsewhere(const struct klet_pod *p)
{
    const Coracle__V1__PodStatus *st = p->pod->status;
    if (!st || !st->phase || (strcmp(st->phase, "Succeeded") && strcmp(st->phase, "Failed")))
        return false;
    for (size_t i = 0; i < p->ninit + p->nctr; i++) {
        const struct klet_ctr *c = i < p->ninit ? &p->inits[i] : &p->ctrs[i - p->ninit];
        if (c->state != KC_WAITING || c->term.valid || c->last.valid || c->timer)
            return false;
    }
    return true;
}

static void pod_sync_running(struct klet_pod *p)
{
    struct klet *k = p->k;
    if (!p->sandbox_ready) {
        char *err = NULL;
        bool hostnet = p->pod->spec->has_hostnetwork && p->pod->spec->hostnetwork;
        mkdir(p->dir, 0755);
        char *meta = xasprintf("%s/meta", p->dir);
        char *txt = xasprintf("%s\n%s\n%s\n", p->uid, p->ns, p->name);
        write_text(meta, txt);
        free(meta);
        free(txt);
        const char *hn =
            p->pod->spec->hostname && *p->pod->spec->hostname ? p->pod->spec->hostname : p->name;
        if (!hostnet && klet_bridgenet_waiting(k)) {
            /* kicked again once the range is known */
            const char *why = "network is not ready: the node has no pod range yet "
                              "(spec.podCIDR or --pod-cidr)";
            if (!p->sandbox_err || strcmp(p->sandbox_err, why))
                klet_event(k, p, NULL, "Warning", "NetworkNotReady", "%s", why);
            free(p->sandbox_err);
            p->sandbox_err = xstrdup(why);
            return;
        }
        int rc = klet_sandbox_create(p->dir, hn, hostnet, share_pid(p->pod->spec),
                                     hostnet ? k->host_ip : NULL, &err);
        if (rc == 0 && !hostnet && klet_cni_dir(k)) {
            free(p->pod_ip);
            p->pod_ip = NULL;
            rc = klet_cni_add(k, p->dir, p->pod, &p->pod_ip, &err);
            if (rc < 0) {
                klet_cni_del(k, p->dir, p->uid);
                klet_sandbox_destroy(p->dir);
            } else {
                klet_sandbox_files(p->dir, hn, hostnet, p->pod_ip);
            }
        }
        if (rc == 0) {
            klet_dns_pod_files(k, p, p->dir);
            rc = klet_volumes_setup(p->dir, p->pod->spec, &err);
        }
        if (rc < 0) {
            if (!p->sandbox_err || strcmp(p->sandbox_err, err))
                klet_event(k, p, NULL, "Warning", "FailedCreatePodSandBox",
                           "Failed to create pod sandbox: %s", err);
            free(p->sandbox_err);
            p->sandbox_err = err;
            struct timeval tv = {5, 0};
            event_add(p->retry_ev, &tv);
            return;
        }
        free(p->sandbox_err);
        p->sandbox_err = NULL;
        p->sandbox_ready = true;
        /* namespaces, CNI, /etc files and volumes all done: say so for a restarted kubelet */
        char *mark = xasprintf("%s/sandbox-ready", p->dir);
        write_text(mark, "1\n");
        free(mark);
    }
    /* configMap and secret volumes: (re)written when their object changed; containers wait
     * until each has been written once */
    if (klet_cfgvols_sync(p) != 0 || klet_projvols_sync(p) != 0)
        return;
    const char *policy = restart_policy(p);
    for (size_t i = 0; i < p->ninit; i++) {
        struct klet_ctr *c = &p->inits[i];
        if (init_done(c))
            continue;
        if (ctr_active(c) || c->timer)
            return;
        if (c->state == KC_EXITED) {
            if (!strcmp(policy, "Never"))
                return; /* the pod failed */
            ctr_restart(c);
            return;
        }
        ctr_start(c);
        return;
    }
    /* One container at a time, in spec order, as Kubernetes' SyncPod does: the next one is
     * pulled, created and started once the one before has started (events read in order). */
    for (size_t i = 0; i < p->nctr; i++)
        if (p->ctrs[i].state == KC_CREATING)
            return;
    for (size_t i = 0; i < p->nctr; i++) {
        struct klet_ctr *c = &p->ctrs[i];
        if (ctr_active(c) || c->timer)
            continue;
        if (c->state == KC_WAITING)
            ctr_start(c);
        else if (c->state == KC_EXITED && klet_should_restart(p, c))
            ctr_restart(c);
        if (c->state == KC_CREATING)
            return;
    }
}

/* The grace-0 Delete that removes the object once everything is stopped and cleaned. */
static void send_delete(struct klet_pod *p)
{
    if (p->delete_sent || p->gone)
        return;
    p->delete_sent = true;
    Coracle__V1__Preconditions pre = CORACLE__V1__PRECONDITIONS__INIT;
    pre.uid = p->uid;
    Coracle__V1__DeleteRequest req = CORACLE__V1__DELETE_REQUEST__INIT;
    req.namespace_ = p->ns;
    req.name = p->name;
    req.has_graceperiodseconds = 1;
    req.graceperiodseconds = 0;
    req.preconditions = &pre;
    p->refs++;
    gcl_call(p->k->api, "/coracle.v1.Pods/Delete", &req.base, NULL, delete_done, p, 10000);
}

static void pod_sync(struct klet_pod *p)
{
    if (p->torn_down) {
        if (p->deleting)
            send_delete(p); /* a retry after a failed Delete */
        return;
    }
    if (p->gone) {
        if (pod_stop(p, false))
            return;
        pod_teardown(p);
        if (p->refs == 0)
            pod_free(p);
        return;
    }
    if (p->deleting) {
        if (pod_stop(p, true)) {
            status_send(p);
            return;
        }
        /* Everything stopped: final status, clean up, then the grace-0 delete. */
        status_send(p);
        pod_teardown(p);
        send_delete(p);
        return;
    }
    if (pod_finished_elsewhere(p))
        return;
    if (!p->reject_reason)
        pod_sync_running(p);
    status_send(p);
}

static void pod_sync_cb(evutil_socket_t fd, short what, void *arg)
{
    pod_sync(arg);
}

void klet_pod_kick(struct klet_pod *p)
{
    if (!p->k->synced || p->torn_down)
        return;
    event_active(p->sync_ev, EV_TIMEOUT, 0);
}

/* ------------------------------------------------------------------ the pod table */

static void ctrs_init(struct klet_pod *p, struct klet_ctr **arr, size_t *n,
                      Coracle__V1__Container **specs, size_t nspec, bool init)
{
    *arr = xcalloc(nspec ? nspec : 1, sizeof **arr);
    *n = nspec;
    for (size_t i = 0; i < nspec; i++) {
        struct klet_ctr *c = &(*arr)[i];
        c->pod = p;
        c->init = init;
        c->idx = i;
        c->name = xstrdup(specs[i]->name ? specs[i]->name : "");
        c->image = xstrdup(specs[i]->image ? specs[i]->image : "");
        c->sync_fd = -1;
        c->wd = -1;
    }
}

static struct klet_pod *pod_find(struct klet *k, const char *uid)
{
    for (size_t i = 0; i < k->npods; i++)
        if (!strcmp(k->pods[i]->uid, uid))
            return k->pods[i];
    return NULL;
}

static void ctr_free(struct klet_ctr *c)
{
    ctr_timer_cancel(c);
    free(c->name);
    free(c->image);
    free(c->image_id);
    free(c->stop_signal);
    free(c->wait_reason);
    free(c->wait_msg);
    free(c->pull_key);
    klet_pull_outcome_free(c->pulled);
}

static void pod_free(struct klet_pod *p)
{
    struct klet *k = p->k;
    for (size_t i = 0; i < k->npods; i++) {
        if (k->pods[i] == p) {
            k->pods[i] = k->pods[--k->npods];
            break;
        }
    }
    klet_proc_forget(k, p);
    klet_refs_release(p);
    klet_cfgvols_free(p);
    free(p->reject_msg);
    klet_projvols_free(p);
    for (size_t i = 0; i < p->ninit; i++)
        ctr_free(&p->inits[i]);
    for (size_t i = 0; i < p->nctr; i++)
        ctr_free(&p->ctrs[i]);
    free(p->inits);
    free(p->ctrs);
    if (p->sync_ev)
        event_free(p->sync_ev);
    if (p->kill_ev)
        event_free(p->kill_ev);
    if (p->retry_ev)
        event_free(p->retry_ev);
    free(p->pod_ip);
    coracle__v1__pod__free_unpacked(p->pod, NULL);
    free(p->ns);
    free(p->name);
    free(p->dir);
    free(p->sent);
    free(p->sandbox_err);
    klet_record_pod_forget(k, p->uid);
    free(p->uid);
    free(p);
}

static const char *ready_of(const Coracle__V1__PodStatus *st)
{
    for (size_t i = 0; st && i < st->n_conditions; i++)
        if (st->conditions[i]->type && !strcmp(st->conditions[i]->type, "Ready"))
            return st->conditions[i]->status ? st->conditions[i]->status : "";
    return NULL;
}

/*
 * The API's status says another Ready than the one this kubelet last posted
 * (the apiserver's node lifecycle marks pods not Ready while their node is
 * cut off): forget what was sent, so the next sync posts the status again.
 */
static void status_check_api(struct klet_pod *p, const Coracle__V1__Pod *pod)
{
    if (!p->sent || p->status_inflight)
        return;
    Coracle__V1__PodStatus *sent = coracle__v1__pod_status__unpack(NULL, p->sent_len, p->sent);
    const char *mine = ready_of(sent), *api = ready_of(pod->status);
    if (!sent || (mine && (!api || strcmp(mine, api)))) {
        log_info("pod %s/%s: the API says Ready=%s, this node Ready=%s: posting the status again",
                 p->ns, p->name, api ? api : "(none)", mine ? mine : "?");
        free(p->sent);
        p->sent = NULL;
        p->sent_len = 0;
    }
    if (sent)
        coracle__v1__pod_status__free_unpacked(sent, NULL);
}

/* Kubernetes' admission on the node: a pod this node will not run fails at once (a Warning
 * event, phase Failed with the reason). One the API already reports finished was decided. */
static void pod_admit(struct klet_pod *p, const Coracle__V1__Pod *pod)
{
    struct klet *k = p->k;
    const char *reason = NULL;
    char *msg = NULL;
    if (klet_admit_pod(pod, k->cfg.allow_privileged, k->cfg.allowed_unsafe_sysctls,
                       klet_apparmor_enabled(), &reason, &msg) == 0)
        return;
    p->reject_reason = reason;
    p->reject_msg = msg;
    if (pod_finished_elsewhere(p))
        return;
    klet_event(k, p, NULL, "Warning", reason, "%s", msg);
    log_info("pod %s/%s rejected: %s", p->ns, p->name, msg);
}

static struct klet_pod *pod_upsert(struct klet *k, const Coracle__V1__Pod *pod)
{
    const Coracle__V1__ObjectMeta *m = pod->metadata;
    if (!m || !m->uid || !m->name || !pod->spec)
        return NULL;
    struct klet_pod *p = pod_find(k, m->uid);
    if (!p) {
        /* A pod that already finished and that we never ran: nothing to do. */
        p = xcalloc(1, sizeof *p);
        p->k = k;
        p->uid = xstrdup(m->uid);
        p->ns = xstrdup(m->namespace_ ? m->namespace_ : "default");
        p->name = xstrdup(m->name);
        p->dir = xasprintf("%s/pods/%s", k->cfg.root_dir, p->uid);
        p->pod = pod_copy(pod);
        p->start_ns = now_ns();
        if (pod->status && pod->status->starttime && pod->status->starttime->has_seconds)
            p->start_ns = pod->status->starttime->seconds * NS;
        ctrs_init(p, &p->inits, &p->ninit, p->pod->spec->initcontainers,
                  p->pod->spec->n_initcontainers, true);
        ctrs_init(p, &p->ctrs, &p->nctr, p->pod->spec->containers, p->pod->spec->n_containers,
                  false);
        p->sync_ev = event_new(k->base, -1, 0, pod_sync_cb, p);
        p->retry_ev = evtimer_new(k->base, pod_sync_cb, p);
        k->pods = xrealloc(k->pods, (k->npods + 1) * sizeof *k->pods);
        k->pods[k->npods++] = p;
        klet_refs_hold(p);
        log_info("pod %s/%s (%s) assigned to this node", p->ns, p->name, p->uid);
        pod_admit(p, pod);
    } else {
        Coracle__V1__Pod *copy = pod_copy(pod);
        coracle__v1__pod__free_unpacked(p->pod, NULL);
        p->pod = copy;
        status_check_api(p, pod);
        /* ctr->idx stays valid: the spec's containers cannot change. */
    }
    if (m->deletiontimestamp && !p->deleting) {
        p->deleting = true;
        log_info("pod %s/%s: deletion requested (grace %llds)", p->ns, p->name,
                 (long long)grace_seconds(p));
    }
    klet_pod_kick(p);
    return p;
}

void klet_pods_upsert(struct klet *k, const Coracle__V1__Pod *pod)
{
    struct klet_pod *p = pod_upsert(k, pod);
    if (!p)
        return;
    p->recorded = false;
    klet_record_pod(k, pod);
}

bool klet_pods_from_record(struct klet *k)
{
    if (!klet_record_complete(k)) {
        log_warn("no complete local record of this node's pods yet: waiting for the apiserver");
        return false;
    }
    Coracle__V1__Pod **pods;
    size_t n = klet_record_pods(k, &pods), started = 0;
    for (size_t i = 0; i < n; i++) {
        const char *node = pods[i]->spec->nodename;
        struct klet_pod *p = NULL;
        if (node && !strcmp(node, k->cfg.node_name) && !pod_find(k, pods[i]->metadata->uid))
            p = pod_upsert(k, pods[i]); /* (a root dir reused under another node name: not ours) */
        if (p) {
            p->recorded = true;
            started++;
        }
        coracle__v1__pod__free_unpacked(pods[i], NULL);
    }
    free(pods);
    log_warn("the apiserver is out of reach: running %zu pods from the local record", started);
    k->offline = true;
    klet_pods_synced(k);
    return true;
}

void klet_pods_reconcile(struct klet *k)
{
    k->offline = false;
    /* pod_free changes k->pods: collect first */
    struct klet_pod **gone = xcalloc(k->npods + 1, sizeof *gone);
    size_t n = 0;
    for (size_t i = 0; i < k->npods; i++)
        if (k->pods[i]->recorded)
            gone[n++] = k->pods[i];
    for (size_t i = 0; i < n; i++) {
        log_info("pod %s/%s (%s) was deleted while the apiserver was out of reach: stopping it",
                 gone[i]->ns, gone[i]->name, gone[i]->uid);
        klet_pods_deleted(k, gone[i]->pod);
    }
    free(gone);
}

void klet_pods_deleted(struct klet *k, const Coracle__V1__Pod *pod)
{
    if (!pod->metadata || !pod->metadata->uid)
        return;
    struct klet_pod *p = pod_find(k, pod->metadata->uid);
    if (!p)
        return;
    p->gone = true;
    if (p->torn_down) {
        if (p->refs == 0)
            pod_free(p);
        return;
    }
    klet_pod_kick(p);
}

/* ------------------------------------------------------------------ re-adoption */

struct ctr_meta {
    char uid[64], name[256], image[1024], image_id[128], stop_signal[32];
    int init, attempt;
};

static void copy_str(char *dst, size_t n, const char *src)
{
    size_t l = strlen(src);
    if (l >= n)
        l = n - 1;
    memcpy(dst, src, l);
    dst[l] = 0;
}

static int read_meta(const char *cdir, struct ctr_meta *m)
{
    char *p = xasprintf("%s/meta", cdir);
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return -1;
    memset(m, 0, sizeof *m);
    char line[1200];
    int ok = 0;
    for (int i = 0; i < 7 && fgets(line, sizeof line, f); i++) {
        line[strcspn(line, "\n")] = 0;
        switch (i) {
        case 0:
            copy_str(m->uid, sizeof m->uid, line);
            break;
        case 1:
            copy_str(m->name, sizeof m->name, line);
            break;
        case 2:
            m->init = atoi(line);
            break;
        case 3:
            m->attempt = atoi(line);
            break;
        case 4:
            copy_str(m->image, sizeof m->image, line);
            break;
        case 5:
            copy_str(m->image_id, sizeof m->image_id, line);
            ok = 1;
            break;
        case 6:
            copy_str(m->stop_signal, sizeof m->stop_signal, line);
            break;
        }
    }
    fclose(f);
    return ok ? 0 : -1;
}

static struct klet_ctr *ctr_by_name(struct klet_pod *p, const char *name, bool init)
{
    struct klet_ctr *arr = init ? p->inits : p->ctrs;
    size_t n = init ? p->ninit : p->nctr;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(arr[i].name, name))
            return &arr[i];
    return NULL;
}

static bool file_exists(const char *dir, const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    bool r = access(p, F_OK) == 0;
    free(p);
    return r;
}

/* The pid in <cdir>/monitor.pid if that process is alive and a coracle-monitor, else 0. */
static int monitor_alive(const char *cdir)
{
    char *p = xasprintf("%s/monitor.pid", cdir);
    FILE *f = fopen(p, "r");
    free(p);
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    if (pid <= 0 || kill(pid, 0) < 0)
        return 0;
    char comm[64] = "";
    p = xasprintf("/proc/%d/comm", pid);
    f = fopen(p, "r");
    free(p);
    if (f) {
        if (!fgets(comm, sizeof comm, f))
            comm[0] = 0;
        fclose(f);
    }
    return strncmp(comm, "coracle-monito", 14) ? 0 : pid;
}

/*
 * A container neither started nor exited whose monitor still runs is being
 * created right now: this kubelet was restarted between spawning the
 * monitor and its "started". Wait (at most 10 s) for the monitor to start
 * it or give up, instead of taking it for dead, which lost its exit code
 * (255) and counted a restart (t/80-fault-daemons.t).
 */
static void wait_starting(const char *cdir)
{
    if (file_exists(cdir, "started") || file_exists(cdir, "exit") || !monitor_alive(cdir))
        return;
    log_info("container %s: being started by its monitor; waiting for it", cdir);
    for (int i = 0; i < 500 && monitor_alive(cdir); i++) {
        if (file_exists(cdir, "started") || file_exists(cdir, "exit"))
            return;
        usleep(20000);
    }
}

static void adopt(struct klet *k, struct klet_ctr *c, const char *id, const struct ctr_meta *m)
{
    char *cdir = ctr_dir(k, id);
    wait_starting(cdir);
    if (!file_exists(cdir, "started") && !file_exists(cdir, "exit") && !monitor_alive(cdir)) {
        /* The kubelet died before this attempt ran (no monitor, or it gave up): no attempt
         * happened, no restart to count; the sync creates the container afresh. */
        log_info("pod %s/%s: container %s (%s) never started; discarding it", c->pod->ns,
                 c->pod->name, c->name, id);
        klet_runc_kill(k, id, "KILL");
        ctr_release(k, id);
        ctr_remove_dir(k, id);
        free(cdir);
        return;
    }
    int code, sig, oom;
    int64_t fin;
    bool exited = klet_monitor_read_exit(cdir, &code, &sig, &fin, &oom) == 0;
    int64_t started = read_started(cdir);
    struct klet_term t = {.valid = true,
                          .exit_code = exited ? code : 255,
                          .signal = exited ? sig : 0,
                          .oom = exited && oom,
                          .unknown = !exited,
                          .started_ns = started,
                          .finished_ns = exited ? fin : now_ns()};
    snprintf(t.id, sizeof t.id, "%s", id);
    if (c->id[0] || c->term.valid) {
        /* Records come in ascending attempts: the one adopted so far becomes lastState. */
        if (c->last.valid)
            ctr_remove_dir(k, c->last.id);
        if (c->term.valid)
            c->last = c->term;
        c->term.valid = false;
        c->id[0] = 0;
    }
    c->restarts = m->attempt;
    c->ever_started = started > 0;
    c->started_ns = started;
    free(c->image_id);
    c->image_id = xstrdup(m->image_id);
    free(c->stop_signal);
    c->stop_signal = m->stop_signal[0] ? xstrdup(m->stop_signal) : NULL;
    if (!exited && started && klet_runc_alive(k, id)) {
        snprintf(c->id, sizeof c->id, "%s", id);
        c->state = KC_RUNNING;
        klet_monitor_watch(k, c, cdir);
        if (c->state == KC_RUNNING)
            klet_probes_start(c);
        log_info("pod %s/%s: re-adopted running container %s (%s)", c->pod->ns, c->pod->name,
                 c->name, id);
    } else {
        c->term = t;
        c->state = KC_EXITED;
        ctr_release(k, id);
    }
    free(cdir);
}

void klet_pods_synced(struct klet *k)
{
    char *cdir = xasprintf("%s/containers", k->cfg.root_dir);
    DIR *d = opendir(cdir);
    if (d) {
        struct dirent *e;
        char **ids = NULL;
        size_t n = 0;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            ids = xrealloc(ids, (n + 1) * sizeof *ids);
            ids[n++] = xstrdup(e->d_name);
        }
        closedir(d);
        struct ctr_meta *metas = xcalloc(n ? n : 1, sizeof *metas);
        for (size_t i = 0; i < n; i++) {
            char *dd = ctr_dir(k, ids[i]);
            if (read_meta(dd, &metas[i]) < 0)
                metas[i].attempt = -1;
            free(dd);
        }
        /* Ascending attempts, so that for each container the newest record ends up current
         * and the one before it lastState. */
        size_t *order = xcalloc(n ? n : 1, sizeof *order);
        for (size_t i = 0; i < n; i++) {
            size_t j = i;
            while (j > 0 && metas[order[j - 1]].attempt > metas[i].attempt) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = i;
        }
        for (size_t oi = 0; oi < n; oi++) {
            size_t i = order[oi];
            struct ctr_meta *m = &metas[i];
            struct klet_pod *p = m->attempt >= 0 ? pod_find(k, m->uid) : NULL;
            struct klet_ctr *c = p ? ctr_by_name(p, m->name, m->init) : NULL;
            if (!c) {
                log_info("removing orphaned container %s", ids[i]);
                klet_runc_kill(k, ids[i], "KILL");
                ctr_release(k, ids[i]);
                ctr_remove_dir(k, ids[i]);
                continue;
            }
            adopt(k, c, ids[i], m);
        }
        free(order);
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
        free(metas);
    }
    free(cdir);
    /* Pod dirs of pods that are gone. */
    char *pdir = xasprintf("%s/pods", k->cfg.root_dir);
    d = opendir(pdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            struct klet_pod *p = pod_find(k, e->d_name);
            char *dir = xasprintf("%s/%s", pdir, e->d_name);
            if (!p) {
                log_info("removing orphaned pod dir %s", dir);
                klet_cni_del(k, dir, e->d_name);
                klet_sandbox_destroy(dir);
                klet_volumes_teardown(dir);
                klet_umount_tree(dir);
                klet_rmtree(dir);
            } else {
                bool hostnet = p->pod->spec->has_hostnetwork && p->pod->spec->hostnetwork;
                char *mark = xasprintf("%s/sandbox-ready", dir);
                bool done = access(mark, F_OK) == 0;
                free(mark);
                p->sandbox_ready = klet_sandbox_exists(dir, hostnet) && done;
                if (!done && klet_sandbox_exists(dir, hostnet)) {
                    /* The previous kubelet died setting it up (namespaces there, /etc/hosts or
                     * volumes maybe not: runc create would fail for ever): start over. */
                    log_info("pod %s/%s: sandbox half set up; setting it up again", p->ns, p->name);
                    klet_cni_del(k, dir, e->d_name);
                    klet_sandbox_destroy(dir);
                } else if (done && !klet_sandbox_exists(dir, hostnet)) {
                    /* Its namespaces went with a reboot: give its address back to the network
                     * before the sync sets it up again (host-local refuses a second address to
                     * the same pod). The plugins' DEL tolerates a namespace path that does not
                     * exist, not one that is a plain file: remove the files first. */
                    log_info("pod %s/%s: sandbox gone (the node rebooted); setting it up again",
                             p->ns, p->name);
                    klet_sandbox_destroy(dir);
                    klet_cni_del(k, dir, e->d_name);
                }
                if (p->sandbox_ready && !hostnet)
                    p->pod_ip = klet_cni_ip(dir);
            }
            free(dir);
        }
        closedir(d);
    }
    free(pdir);
    k->synced = true;
    for (size_t i = 0; i < k->npods; i++)
        klet_pod_kick(k->pods[i]);
}

/* ------------------------------------------------------------------ logs and exec (tunnel.c) */

int klet_pods_resolve(void *arg, const char *ns, const char *pod, const char *container,
                      int previous, struct ktun_target *out, char **err)
{
    struct klet *k = arg;
    struct klet_pod *p = NULL;
    for (size_t i = 0; i < k->npods; i++) {
        struct klet_pod *q = k->pods[i];
        if (!strcmp(q->ns, ns ? ns : "default") && !strcmp(q->name, pod) && !q->torn_down)
            p = q;
    }
    if (!p) {
        *err = xasprintf("pods \"%s\" not found", pod);
        return 5; /* NOT_FOUND */
    }
    struct klet_ctr *c = NULL;
    if (!container || !*container) {
        /* kubectl's default: the first container */
        if (!p->nctr) {
            *err = xasprintf("pod %s has no containers", pod);
            return 3;
        }
        c = &p->ctrs[0];
    } else {
        c = ctr_by_name(p, container, false);
        if (!c)
            c = ctr_by_name(p, container, true);
    }
    if (!c) {
        *err = xasprintf("container %s is not valid for pod %s", container, pod);
        return 3;
    }
    int attempt = c->restarts;
    if (previous) {
        if (!c->last.valid && !(c->state == KC_EXITED && c->wait_reason)) {
            *err = xasprintf("previous terminated container \"%s\" in pod \"%s\" not found",
                             c->name, pod);
            return 5;
        }
        /* In a back-off the exited attempt is the previous one and keeps its number. */
        attempt = c->state == KC_EXITED && c->wait_reason ? c->restarts : c->restarts - 1;
    } else if (!c->ever_started && c->state != KC_RUNNING) {
        *err = xasprintf("container \"%s\" in pod \"%s\" is waiting to start: %s", c->name, pod,
                         c->wait_reason ? c->wait_reason : "ContainerCreating");
        return 3;
    }
    memset(out, 0, sizeof *out);
    out->runc_root = xstrdup(k->runc_root);
    out->container_id = xstrdup(c->id[0] ? c->id : c->term.valid ? c->term.id : "");
    out->log_path = xasprintf("%s/logs/%s/%d.log", p->dir, c->name, attempt < 0 ? 0 : attempt);
    out->running = c->state == KC_RUNNING;
    out->state_dir = c->id[0] ? ctr_dir(k, c->id) : NULL;
    const Coracle__V1__Container *s = ctr_spec(c);
    out->stdin = s->has_stdin && s->stdin;
    out->tty = s->has_tty && s->tty;
    return 0;
}
