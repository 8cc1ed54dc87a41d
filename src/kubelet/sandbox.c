/*
 * sandbox: the pod's shared namespaces, held for its life without a pause
 * process. A forked child unshares network, IPC and UTS, sets the pod's
 * hostname, brings lo up and bind-mounts its /proc/self/ns/{net,ipc,uts}
 * onto files in <pod dir>/ns; the child then exits and the bind mounts keep
 * the namespaces alive. Each container joins them by path in config.json
 * (runc: no "hostname" in joiners, no /dev/mqueue mount). Also writes the
 * pod's /etc/hosts and /etc/hostname for bind mounts (dns.c its
 * /etc/resolv.conf).
 * With shareProcessNamespace also a PID namespace, held by a pause process
 * (a namespace without its first process is dead), that containers join.
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(content, f);
    return fclose(f) == 0 ? 0 : -1;
}

static int lo_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
    return rc;
}

static const char *const ns_names[] = {"net", "ipc", "uts"};

bool klet_sandbox_exists(const char *dir, bool hostnet)
{
    for (size_t i = 0; i < ARRAY_SIZE(ns_names); i++) {
        if (hostnet && i != 1)
            continue;
        char *p = xasprintf("%s/ns/%s", dir, ns_names[i]);
        /* A live bind mount of nsfs shows as a file with st_dev of nsfs, not of our fs. */
        struct stat a, b;
        char *nsdir = xasprintf("%s/ns", dir);
        bool mounted = stat(p, &a) == 0 && stat(nsdir, &b) == 0 && a.st_dev != b.st_dev;
        free(p);
        free(nsdir);
        if (!mounted)
            return false;
    }
    return true;
}

/*
 * shareProcessNamespace: the pod's PID namespace needs a first process that
 * lives as long as the pod (its end would end the namespace), as Kubernetes'
 * pause container. Forked in the new namespace, it closes what it inherited
 * and sleeps; SIGCHLD ignored reaps the orphans it adopts.
 */
static void pause_forever(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
    }
    if (close_range(3, ~0U, 0) < 0)
        for (int i = 3; i < 4096; i++)
            close(i);
    prctl(PR_SET_NAME, "pause", 0, 0, 0);
    signal(SIGCHLD, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    for (;;)
        pause();
}

/* In the sandbox helper: a new PID namespace held by a pause process, its namespace
 * bind-mounted on <nsdir>/pid and its pid in <nsdir>/pause.pid. */
static int pidns_create(const char *nsdir)
{
    if (unshare(CLONE_NEWPID) < 0)
        return -1;
    pid_t gc = fork();
    if (gc < 0)
        return -1;
    if (gc == 0)
        pause_forever();
    char src[64], dst[4096], pidf[4096], txt[32];
    snprintf(src, sizeof src, "/proc/%d/ns/pid", (int)gc);
    snprintf(dst, sizeof dst, "%s/pid", nsdir);
    snprintf(pidf, sizeof pidf, "%s/pause.pid", nsdir);
    snprintf(txt, sizeof txt, "%d\n", (int)gc);
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0 || write_file(pidf, txt) < 0) {
        kill(gc, SIGKILL);
        return -1;
    }
    return 0;
}

/* Ends the pause process of <dir>/ns/pid if it is still the one holding that namespace (a
 * recycled pid is left alone). */
static void pidns_destroy(const char *dir)
{
    char *pidf = xasprintf("%s/ns/pause.pid", dir), *nsf = xasprintf("%s/ns/pid", dir);
    FILE *f = fopen(pidf, "r");
    int pid = 0;
    if (f && fscanf(f, "%d", &pid) == 1 && pid > 1) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/%d/ns/pid", pid);
        struct stat a, b;
        if (stat(proc, &a) == 0 && stat(nsf, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            kill(pid, SIGKILL);
    }
    if (f)
        fclose(f);
    while (umount2(nsf, MNT_DETACH) == 0)
        ;
    unlink(nsf);
    unlink(pidf);
    free(pidf);
    free(nsf);
}

int klet_sandbox_create(const char *dir, const char *hostname, bool hostnet, bool share_pid,
                        const char *pod_ip, char **err)
{
    char *nsdir = xasprintf("%s/ns", dir);
    int rc = -1;
    if (mkdir(nsdir, 0700) < 0 && errno != EEXIST) {
        *err = xasprintf("mkdir %s: %s", nsdir, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < ARRAY_SIZE(ns_names); i++) {
        if (hostnet && i != 1)
            continue;
        char *p = xasprintf("%s/%s", nsdir, ns_names[i]);
        umount2(p, MNT_DETACH);
        int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        free(p);
    }
    if (share_pid) {
        char *p = xasprintf("%s/pid", nsdir);
        pidns_destroy(dir);
        int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        free(p);
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        *err = xasprintf("pipe: %s", strerror(errno));
        goto out;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        const char *what = "unshare";
        int flags = CLONE_NEWIPC | (hostnet ? 0 : CLONE_NEWNET | CLONE_NEWUTS);
        if (unshare(flags) < 0)
            goto fail;
        what = "sethostname";
        if (!hostnet && sethostname(hostname, strlen(hostname)) < 0)
            goto fail;
        what = "bring lo up";
        if (!hostnet && lo_up() < 0)
            goto fail;
        for (size_t i = 0; i < ARRAY_SIZE(ns_names); i++) {
            if (hostnet && i != 1)
                continue;
            char src[64], dst[4096];
            snprintf(src, sizeof src, "/proc/self/ns/%s", ns_names[i]);
            snprintf(dst, sizeof dst, "%s/%s", nsdir, ns_names[i]);
            what = "bind-mount a namespace";
            if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                goto fail;
        }
        what = "create the pod's PID namespace";
        if (share_pid && pidns_create(nsdir) < 0)
            goto fail;
        _exit(0);
    fail:;
        char msg[256];
        int n = snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
        ssize_t w = write(pfd[1], msg, n);
        (void)w;
        _exit(1);
    }
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        *err = xasprintf("fork: %s", strerror(errno));
        goto out;
    }
    char msg[256];
    ssize_t n = read(pfd[0], msg, sizeof msg - 1);
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (n > 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        msg[n > 0 ? n : 0] = 0;
        *err = xasprintf("pod sandbox: %s", n > 0 ? msg : "namespace helper failed");
        klet_sandbox_destroy(dir);
        goto out;
    }

    klet_sandbox_files(dir, hostname, hostnet, pod_ip);
    rc = 0;
out:
    free(nsdir);
    return rc;
}

void klet_sandbox_files(const char *dir, const char *hostname, bool hostnet, const char *pod_ip)
{
    char *hosts;
    if (hostnet) {
        FILE *f = fopen("/etc/hosts", "r");
        char buf[8192];
        size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f)
            fclose(f);
        buf[len] = 0;
        hosts = xstrdup(buf);
    } else {
        hosts = xasprintf("# Kubernetes-managed hosts file.\n"
                          "127.0.0.1\tlocalhost\n"
                          "::1\tlocalhost ip6-localhost ip6-loopback\n"
                          "fe00::0\tip6-localnet\n"
                          "fe00::0\tip6-mcastprefix\n"
                          "fe00::1\tip6-allnodes\n"
                          "fe00::2\tip6-allrouters\n"
                          "%s\t%s\n",
                          pod_ip && *pod_ip ? pod_ip : "127.0.1.1", hostname);
    }
    char *p = xasprintf("%s/hosts", dir);
    write_file(p, hosts);
    free(p);
    free(hosts);
    p = xasprintf("%s/hostname", dir);
    char *hn = xasprintf("%s\n", hostname);
    write_file(p, hn);
    free(hn);
    free(p);
}

void klet_sandbox_destroy(const char *dir)
{
    pidns_destroy(dir);
    for (size_t i = 0; i < ARRAY_SIZE(ns_names); i++) {
        char *p = xasprintf("%s/ns/%s", dir, ns_names[i]);
        while (umount2(p, MNT_DETACH) == 0)
            ;
        unlink(p);
        free(p);
    }
    char *p = xasprintf("%s/ns", dir);
    rmdir(p);
    free(p);
}
