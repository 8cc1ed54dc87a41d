/*
 * monitor: the kubelet's side of coracle-monitor (monitor_main.c). Starts
 * one monitor per container with a sync pipe whose lines ("C pid",
 * "S started_ns", "E message") become Created/Started/failed in pods.c, and
 * watches each container's state dir with inotify for the "exit" file the
 * monitor renames into place when the container ends. No polling: the pipe
 * and the inotify fd are libevent read events.
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

static void sync_close(struct klet_ctr *c)
{
    if (c->sync_ev) {
        event_free(c->sync_ev);
        c->sync_ev = NULL;
    }
    if (c->sync_fd >= 0) {
        close(c->sync_fd);
        c->sync_fd = -1;
    }
}

/* Reads and handles what the monitor sent. 1 if bytes came (call again), 0 otherwise. */
static int sync_read_once(struct klet_ctr *c)
{
    if (c->sync_fd < 0)
        return 0;
    ssize_t n = read(c->sync_fd, c->sync_buf + c->sync_len, sizeof c->sync_buf - 1 - c->sync_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        bool started = c->state == KC_RUNNING;
        sync_close(c);
        if (!started && c->state == KC_CREATING)
            klet_pod_ctr_failed(c, "container monitor exited before the container started");
        return 0;
    }
    c->sync_len += n;
    char *nl;
    while ((nl = memchr(c->sync_buf, '\n', c->sync_len))) {
        *nl = 0;
        char *line = c->sync_buf;
        if (line[0] == 'C')
            klet_pod_ctr_created(c, atoi(line + 2));
        else if (line[0] == 'S')
            klet_pod_ctr_started(c, strtoll(line + 2, NULL, 10));
        else if (line[0] == 'E')
            klet_pod_ctr_failed(c, line + 2);
        size_t used = nl + 1 - c->sync_buf;
        memmove(c->sync_buf, nl + 1, c->sync_len - used);
        c->sync_len -= used;
        if (c->sync_fd < 0)
            return 0; /* the callback closed us */
    }
    if (c->sync_len == sizeof c->sync_buf - 1)
        c->sync_len = 0;
    return 1;
}

static void sync_read(evutil_socket_t fd, short what, void *arg)
{
    sync_read_once(arg);
}

/* The exit file is there. The monitor wrote "C" and "S" before it, but the loop may see the
 * inotify event first: take them from the pipe now, so Created/Started are never lost. */
static void notify_exited(struct klet_ctr *c)
{
    while (sync_read_once(c))
        ;
    klet_pod_ctr_exited(c);
}

static char *monitor_path(const struct klet *k)
{
    if (k->cfg.monitor && *k->cfg.monitor)
        return xstrdup(k->cfg.monitor);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            char *p = xasprintf("%s/coracle-monitor", self);
            if (access(p, X_OK) == 0)
                return p;
            free(p);
        }
    }
    return xstrdup(LIBEXECDIR "/coracle-monitor");
}

int klet_monitor_start(struct klet *k, struct klet_ctr *c, const Coracle__V1__Container *s,
                       const char *cdir, const char *logpath, char **err)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        *err = xasprintf("pipe: %s", strerror(errno));
        return -1;
    }
    char *mon = monitor_path(k);
    char *bundle = xasprintf("%s/bundle", cdir);
    char *memcg = xasprintf("/sys/fs/cgroup/memory/coracle/%s", c->id);
    char syncfd[16], logmax[32];
    pid_t pid = fork();
    if (pid < 0) {
        *err = xasprintf("fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        free(mon);
        free(bundle);
        free(memcg);
        return -1;
    }
    if (pid == 0) {
        /* The sync end must survive exec: move it off CLOEXEC. */
        int fd = dup(pfd[1]);
        snprintf(syncfd, sizeof syncfd, "%d", fd);
        snprintf(logmax, sizeof logmax, "%lld", k->cfg.log_max_size);
        /* room for the stdin and tty flags after the first NULL */
        char *argv[23] = {mon,          "--runtime", k->cfg.runtime,  "--root",    k->runc_root,
                          "--id",       c->id,       "--bundle",      bundle,      "--state",
                          (char *)cdir, "--log",     (char *)logpath, "--log-max", logmax,
                          "--memcg",    memcg,       "--sync-fd",     syncfd,      NULL};
        size_t n = 19;
        if (s->has_stdin && s->stdin)
            argv[n++] = "--stdin";
        if (s->has_stdinonce && s->stdinonce)
            argv[n++] = "--stdin-once";
        if (s->has_tty && s->tty)
            argv[n++] = "--tty";
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(mon, argv);
        dprintf(fd, "E cannot run %s: %s\n", mon, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    free(mon);
    free(bundle);
    free(memcg);
    /* The first child forks the monitor proper and exits at once: reap it here. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    c->sync_fd = pfd[0];
    c->sync_len = 0;
    fcntl(c->sync_fd, F_SETFL, O_NONBLOCK);
    c->sync_ev = event_new(k->base, c->sync_fd, EV_READ | EV_PERSIST, sync_read, c);
    event_add(c->sync_ev, NULL);
    return 0;
}

static void inotify_read(evutil_socket_t fd, short what, void *arg)
{
    const struct klet *k = arg;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            if (!ev->len || strcmp(ev->name, "exit"))
                continue;
            for (size_t i = 0; i < k->nwds; i++) {
                if (k->wds[i].wd == ev->wd && k->wds[i].c) {
                    notify_exited(k->wds[i].c);
                    break;
                }
            }
        }
    }
}

void klet_monitor_init(struct klet *k)
{
    k->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (k->inotify_fd < 0)
        fatal("inotify_init1: %s", strerror(errno));
    k->inotify_ev = event_new(k->base, k->inotify_fd, EV_READ | EV_PERSIST, inotify_read, k);
    event_add(k->inotify_ev, NULL);
}

void klet_monitor_watch(struct klet *k, struct klet_ctr *c, const char *cdir)
{
    klet_monitor_unwatch(k, c);
    c->wd = inotify_add_watch(k->inotify_fd, cdir, IN_MOVED_TO | IN_CLOSE_WRITE);
    if (c->wd < 0) {
        log_err("inotify_add_watch %s: %s", cdir, strerror(errno));
    } else {
        k->wds = xrealloc(k->wds, (k->nwds + 1) * sizeof *k->wds);
        k->wds[k->nwds++] = (struct klet_wd){c->wd, c};
    }
    /* The exit may already be there (re-adoption, or a very short container). */
    char *p = xasprintf("%s/exit", cdir);
    bool there = access(p, F_OK) == 0;
    free(p);
    if (there)
        notify_exited(c);
}

void klet_monitor_unwatch(struct klet *k, struct klet_ctr *c)
{
    sync_close(c);
    if (c->wd < 0)
        return;
    for (size_t i = 0; i < k->nwds; i++) {
        if (k->wds[i].c == c) {
            k->wds[i] = k->wds[--k->nwds];
            break;
        }
    }
    /* Another container may share the wd number only after this rm. */
    inotify_rm_watch(k->inotify_fd, c->wd);
    c->wd = -1;
}

int klet_monitor_read_exit(const char *cdir, int *code, int *sig, int64_t *finished, int *oom)
{
    char *p = xasprintf("%s/exit", cdir);
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return -1;
    long long fin = 0;
    int n = fscanf(f, "%d %d %lld %d", code, sig, &fin, oom);
    fclose(f);
    if (n != 4)
        return -1;
    *finished = fin;
    return 0;
}
