/*
 * secctx: what a pod's securityContext and its containers' ask of the
 * node, turned into what runtime_runc.c writes (struct klet_sec), the
 * way Kubernetes' kubelet and containerd's CRI plugin do it together:
 * the container's settings over the pod's; capabilities added to and
 * dropped from the default set ("ALL" first, then each name, with or
 * without CAP_); privileged: every capability, the host's devices, no
 * masked or read-only /proc paths, writable /sys, no seccomp; the
 * process's user and groups (runAsUser, runAsGroup, the image's user,
 * its /etc/group memberships, supplementalGroups, fsGroup); runAsNonRoot
 * checked against what the process would run as; no_new_privs when
 * allowPrivilegeEscalation is false; the seccomp profile; sysctls.
 * Whether the node runs the pod at all is admit.c's; fsGroup's ownership
 * of volumes is volumes.c's.
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Every capability by number (CAP_CHOWN = 0 ...). */
static const char *const cap_names[] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};

const char *const *klet_default_caps(size_t *n)
{
    static const char *const caps[] = {
        "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
        "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
        "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
        "CAP_KILL",    "CAP_AUDIT_WRITE",
    };
    *n = ARRAY_SIZE(caps);
    return caps;
}

/* The capabilities this kubelet holds (CapEff), which "ALL" and privileged grant, as
 * containerd's cap.Current(): a runtime cannot hand out what it lacks (runc fails with
 * "unable to apply caps"). */
static uint64_t caps_current(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long v = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static ssize_t strv_find(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i], s))
            return (ssize_t)i;
    return -1;
}

static void cap_add(struct klet_sec *s, const char *name)
{
    char *c = xasprintf("CAP_%s", name);
    if (strv_find(s->caps, s->ncaps, c) >= 0) {
        free(c);
        return;
    }
    s->caps = xrealloc(s->caps, (s->ncaps + 1) * sizeof *s->caps);
    s->caps[s->ncaps++] = c;
}

static void cap_del(struct klet_sec *s, const char *name)
{
    char *c = xasprintf("CAP_%s", name);
    ssize_t i = strv_find(s->caps, s->ncaps, c);
    free(c);
    if (i < 0)
        return;
    free(s->caps[i]);
    memmove(&s->caps[i], &s->caps[i + 1], (s->ncaps - i - 1) * sizeof *s->caps);
    s->ncaps--;
}

static void caps_all(struct klet_sec *s)
{
    uint64_t cur = caps_current();
    for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
        if (cur & (1ULL << i))
            cap_add(s, cap_names[i]);
}

static void caps_clear(struct klet_sec *s)
{
    for (size_t i = 0; i < s->ncaps; i++)
        free(s->caps[i]);
    s->ncaps = 0;
}

/* A capability name as the spec has it ("net_admin", "CAP_NET_ADMIN") without CAP_, upper
 * case. malloc'd. */
static char *cap_norm(const char *name)
{
    char *u = xstrdup(!strncasecmp(name, "CAP_", 4) ? name + 4 : name);
    for (char *p = u; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p -= 'a' - 'A';
    return u;
}

static bool names_all(char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcasecmp(v[i], "ALL"))
            return true;
    return false;
}

/* containerd's WithCapabilities: add ALL, drop ALL, then each added, then each dropped. */
static void caps_build(struct klet_sec *s, const Coracle__V1__Capabilities *c)
{
    size_t nd;
    const char *const *def = klet_default_caps(&nd);
    for (size_t i = 0; i < nd; i++)
        cap_add(s, def[i] + 4);
    if (!c)
        return;
    if (names_all(c->add, c->n_add))
        caps_all(s);
    if (names_all(c->drop, c->n_drop))
        caps_clear(s);
    for (size_t i = 0; i < c->n_add; i++) {
        if (strcasecmp(c->add[i], "ALL")) {
            char *n = cap_norm(c->add[i]);
            cap_add(s, n);
            free(n);
        }
    }
    for (size_t i = 0; i < c->n_drop; i++) {
        if (strcasecmp(c->drop[i], "ALL")) {
            char *n = cap_norm(c->drop[i]);
            cap_del(s, n);
            free(n);
        }
    }
}

/* ------------------------------------------------------------ users and groups */

static void gid_add(struct klet_sec *s, uint32_t g)
{
    for (size_t i = 0; i < s->ngids; i++)
        if (s->gids[i] == g)
            return;
    s->gids = xrealloc(s->gids, (s->ngids + 1) * sizeof *s->gids);
    s->gids[s->ngids++] = g;
}

/* The user name of uid in the rootfs' /etc/passwd (and its group into *gid), malloc'd or
 * NULL. */
static char *passwd_name(const char *rootfs, uint32_t uid, uint32_t *gid)
{
    char *path = xasprintf("%s/etc/passwd", rootfs);
    FILE *f = fopen(path, "r");
    free(path);
    char line[1024], *name = NULL;
    while (!name && f && fgets(line, sizeof line, f)) {
        char *save = NULL, *fl[4] = {0};
        int n = 0;
        for (char *t = strtok_r(line, ":\n", &save); t && n < 4; t = strtok_r(NULL, ":\n", &save))
            fl[n++] = t;
        if (n >= 4 && strtoul(fl[2], NULL, 10) == uid) {
            name = xstrdup(fl[0]);
            if (gid)
                *gid = (uint32_t)strtoul(fl[3], NULL, 10);
        }
    }
    if (f)
        fclose(f);
    return name;
}

/* The groups of /etc/group that list user as a member. */
static void group_members(struct klet_sec *s, const char *rootfs, const char *user)
{
    char *path = xasprintf("%s/etc/group", rootfs);
    FILE *f = fopen(path, "r");
    free(path);
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *fl[4] = {0}, *p = line;
        int n = 0;
        for (; n < 4 && p; n++) {
            fl[n] = p;
            p = strchr(p, ':');
            if (p)
                *p++ = 0;
        }
        if (n < 4 || !*fl[2])
            continue;
        char *save = NULL;
        for (char *m = strtok_r(fl[3], ",", &save); m; m = strtok_r(NULL, ",", &save))
            if (!strcmp(m, user))
                gid_add(s, (uint32_t)strtoul(fl[2], NULL, 10));
    }
    if (f)
        fclose(f);
}

/* The image's user: a numeric uid, or a name (*uid stays unset). */
static bool image_uid(const char *user, int64_t *uid)
{
    if (!user || !*user) {
        *uid = 0;
        return true;
    }
    size_t n = strcspn(user, ":");
    if (n == 0) {
        *uid = 0;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (user[i] < '0' || user[i] > '9')
            return false;
    *uid = strtoll(user, NULL, 10);
    return true;
}

/* Kubernetes' format.Pod: name_namespace(uid). */
static char *pod_desc(const Coracle__V1__Pod *pod)
{
    const Coracle__V1__ObjectMeta *m = pod->metadata;
    return xasprintf("%s_%s(%s)", m && m->name ? m->name : "",
                     m && m->namespace_ ? m->namespace_ : "", m && m->uid ? m->uid : "");
}

/* The container's effective settings: its own over the pod's. */
struct eff {
    bool has_uid, has_gid, has_nonroot, nonroot;
    int64_t uid, gid;
    const Coracle__V1__SeccompProfile *seccomp;
};

static struct eff effective(const Coracle__V1__PodSecurityContext *ps,
                            const Coracle__V1__SecurityContext *cs)
{
    struct eff e = {0};
    if (ps) {
        e.has_uid = ps->has_runasuser, e.uid = ps->runasuser;
        e.has_gid = ps->has_runasgroup, e.gid = ps->runasgroup;
        e.has_nonroot = ps->has_runasnonroot, e.nonroot = ps->runasnonroot;
        e.seccomp = ps->seccompprofile;
    }
    if (cs) {
        if (cs->has_runasuser)
            e.has_uid = true, e.uid = cs->runasuser;
        if (cs->has_runasgroup)
            e.has_gid = true, e.gid = cs->runasgroup;
        if (cs->has_runasnonroot)
            e.has_nonroot = true, e.nonroot = cs->runasnonroot;
        if (cs->seccompprofile)
            e.seccomp = cs->seccompprofile;
    }
    return e;
}

/* Kubernetes' verifyRunAsNonRoot. 0, or -1 with *err. */
static int check_nonroot(const struct klet_sec_in *in, const struct eff *e, char **err)
{
    if (!e->has_nonroot || !e->nonroot)
        return 0;
    char *pd = pod_desc(in->pod);
    const char *cn = in->ctr->name ? in->ctr->name : "";
    int64_t uid;
    if (e->has_uid) {
        if (e->uid == 0)
            *err = xasprintf("container's runAsUser breaks non-root policy (pod: \"%s\", "
                             "container: %s)",
                             pd, cn);
    } else if (!image_uid(in->image_user, &uid)) {
        size_t n = strcspn(in->image_user, ":");
        *err = xasprintf("container has runAsNonRoot and image has non-numeric user (%.*s), "
                         "cannot verify user is non-root (pod: \"%s\", container: %s)",
                         (int)n, in->image_user, pd, cn);
    } else if (uid == 0) {
        *err = xasprintf("container has runAsNonRoot and image will run as root (pod: \"%s\", "
                         "container: %s)",
                         pd, cn);
    }
    free(pd);
    return *err ? -1 : 0;
}

/* uid, gid and the supplementary groups, as containerd's WithUser and WithAdditionalGIDs
 * then WithSupplementalGroups. */
static int users_build(const struct klet_sec_in *in, const struct eff *e,
                       const Coracle__V1__PodSecurityContext *ps, struct klet_sec *s, char **err)
{
    char *name = NULL;
    if (e->has_uid) {
        s->uid = (uint32_t)e->uid;
        s->gid = 0;
        name = passwd_name(in->rootfs, s->uid, &s->gid);
    } else {
        if (klet_resolve_user(in->rootfs, in->image_user, &s->uid, &s->gid, err) < 0)
            return -1;
        name = passwd_name(in->rootfs, s->uid, NULL);
    }
    if (e->has_gid)
        s->gid = (uint32_t)e->gid;
    gid_add(s, s->gid);
    /* supplementalGroupsPolicy Strict: only the groups the pod names */
    bool strict =
        ps && ps->supplementalgroupspolicy && !strcmp(ps->supplementalgroupspolicy, "Strict");
    if (name && !strict)
        group_members(s, in->rootfs, name);
    free(name);
    for (size_t i = 0; ps && i < ps->n_supplementalgroups; i++)
        gid_add(s, (uint32_t)ps->supplementalgroups[i]);
    if (ps && ps->has_fsgroup)
        gid_add(s, (uint32_t)ps->fsgroup);
    return 0;
}

/* ------------------------------------------------------------ seccomp, devices, sysctls */

/* Kubernetes' choice of profile: the container's, the pod's, else RuntimeDefault with
 * --seccomp-default, else Unconfined. A privileged container runs unconfined (containerd). */
static int seccomp_build(const struct klet_sec_in *in, const struct eff *e, struct klet_sec *s,
                         char **err)
{
    const char *type = e->seccomp && e->seccomp->type ? e->seccomp->type : NULL;
    if (!type)
        type = in->seccomp_default ? "RuntimeDefault" : "Unconfined";
    if (s->privileged || !strcmp(type, "Unconfined"))
        return 0;
    if (in->no_seccomp) {
        *err = xasprintf("seccomp profile %s requested but the runtime has no seccomp support "
                         "(runc built without libseccomp)",
                         type);
        return -1;
    }
    if (!strcmp(type, "RuntimeDefault")) {
        s->seccomp = klet_seccomp_default(s->caps, s->ncaps);
        return 0;
    }
    if (strcmp(type, "Localhost")) {
        *err = xasprintf("unsupported seccomp profile type \"%s\"", type);
        return -1;
    }
    const char *lp = e->seccomp->localhostprofile;
    if (!lp || !*lp || strstr(lp, "..") || lp[0] == '/') {
        *err = xasprintf("invalid localhostProfile \"%s\"", lp ? lp : "");
        return -1;
    }
    char *path = xasprintf("%s/%s", in->seccomp_root, lp), *cerr = NULL;
    int rc = 0;
    if (access(path, R_OK) < 0) {
        *err = xasprintf("cannot load seccomp profile \"%s\": %s", path, strerror(errno));
        rc = -1;
    } else if (klet_seccomp_localhost(path, s->caps, s->ncaps, &s->seccomp, &cerr) < 0) {
        *err = xasprintf("decoding seccomp profile failed: %s", cerr);
        rc = -1;
    }
    free(cerr);
    free(path);
    return rc;
}

/* containerd's HostDevices: every device node under /dev but pts, shm, fd, mqueue and the
 * console. */
static void devices_scan(struct klet_sec *s, const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *n = de->d_name;
        if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "console"))
            continue;
        char *p = xasprintf("%s/%s", dir, n);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            static const char *const skip[] = {"pts",  "shm",         "fd",   "mqueue",
                                               ".lxc", ".lxd-mounts", ".udev"};
            bool sk = false;
            for (size_t i = 0; i < ARRAY_SIZE(skip); i++)
                sk = sk || !strcmp(n, skip[i]);
            if (!sk)
                devices_scan(s, p);
        } else if (lstat(p, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
            s->devs = xrealloc(s->devs, (s->ndevs + 1) * sizeof *s->devs);
            s->devs[s->ndevs++] = (struct klet_dev){
                .path = p,
                .type = S_ISCHR(st.st_mode) ? 'c' : 'b',
                .major = major(st.st_rdev),
                .minor = minor(st.st_rdev),
                .mode = st.st_mode & 07777,
                .uid = st.st_uid,
                .gid = st.st_gid,
            };
            p = NULL;
        }
        free(p);
    }
    if (d)
        closedir(d);
}

static void sysctls_build(const Coracle__V1__PodSecurityContext *ps, struct klet_sec *s)
{
    if (!ps || !ps->n_sysctls)
        return;
    s->sysctls = xcalloc(ps->n_sysctls, sizeof *s->sysctls);
    for (size_t i = 0; i < ps->n_sysctls; i++) {
        const Coracle__V1__Sysctl *x = ps->sysctls[i];
        if (!x->name)
            continue;
        s->sysctls[s->nsysctls].name = klet_sysctl_name(x->name);
        s->sysctls[s->nsysctls].value = xstrdup(x->value ? x->value : "");
        s->nsysctls++;
    }
}

int klet_sec_build(const struct klet_sec_in *in, struct klet_sec *s, char **err)
{
    memset(s, 0, sizeof *s);
    const Coracle__V1__PodSecurityContext *ps = in->pod->spec->securitycontext;
    const Coracle__V1__SecurityContext *cs = in->ctr->securitycontext;
    struct eff e = effective(ps, cs);
    if (check_nonroot(in, &e, err) < 0)
        return KSEC_CONFIG;
    if (users_build(in, &e, ps, s, err) < 0)
        return KSEC_CREATE;
    s->privileged = cs && cs->has_privileged && cs->privileged;
    if (s->privileged) {
        caps_all(s);
        devices_scan(s, "/dev");
    } else {
        caps_build(s, cs ? cs->capabilities : NULL);
    }
    /* Kubernetes' AddNoNewPrivileges: only an explicit allowPrivilegeEscalation: false. */
    s->no_new_privs = cs && cs->has_allowprivilegeescalation && !cs->allowprivilegeescalation;
    s->readonly_root = cs && cs->has_readonlyrootfilesystem && cs->readonlyrootfilesystem;
    s->unmasked = s->privileged || (cs && cs->procmount && !strcmp(cs->procmount, "Unmasked"));
    sysctls_build(ps, s);
    if (seccomp_build(in, &e, s, err) < 0) {
        klet_sec_free(s);
        return KSEC_CREATE;
    }
    return 0;
}

void klet_sec_free(struct klet_sec *s)
{
    caps_clear(s);
    free(s->caps);
    free(s->gids);
    free(s->seccomp);
    for (size_t i = 0; i < s->nsysctls; i++) {
        free(s->sysctls[i].name);
        free(s->sysctls[i].value);
    }
    free(s->sysctls);
    for (size_t i = 0; i < s->ndevs; i++)
        free(s->devs[i].path);
    free(s->devs);
    memset(s, 0, sizeof *s);
}
