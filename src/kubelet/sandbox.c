/*
 * sandbox: the pod's shared namespaces, held for its life without a pause
 * process. A forked child unshares network, IPC and UTS, sets the pod's
 * hostname, brings lo up and bind-mounts its /proc/self/ns/{net,ipc,uts}
 * onto files in <pod dir>/ns; the child then exits and the bind mounts keep
 * the namespaces alive. Each container joins them by path in config.json
 * (runc: no "hostname" in joiners, no /dev/mqueue mount). Also writes the
 * pod's /etc/hosts, /etc/resolv.conf and /etc/hostname for bind mounts.
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
#include <sys/mount.h>
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

int klet_sandbox_create(const char *dir, const char *hostname, bool hostnet, const char *pod_ip,
                        char **err)
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
    /* Like the kubelet on systemd-resolved hosts: the stub at 127.0.0.53 is unreachable from a
     * pod's network namespace, the upstream list is not. */
    FILE *f = hostnet ? NULL : fopen("/run/systemd/resolve/resolv.conf", "r");
    if (!f)
        f = fopen("/etc/resolv.conf", "r");
    char buf[8192];
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[len] = 0;
    p = xasprintf("%s/resolv.conf", dir);
    write_file(p, buf);
    free(p);
}

void klet_sandbox_destroy(const char *dir)
{
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
