/*
 * proc: child processes of the kubelet without blocking its loop. A libevent
 * SIGCHLD event reaps the children started here (waitpid on each); a child started
 * here has its output collected through a pipe and its callback run once it
 * has exited. Timeouts (probes) are timers, not polling. klet_proc_run is
 * the blocking exception for short runc verbs (kill, delete, state).
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_MAX 65536

/* A child being run; on struct klet's procs list until its callback has run. */
struct klet_proc {
    struct klet_proc *next;
    struct klet *k;
    pid_t pid;
    int fd;
    struct event *rd, *to;
    char *out;
    size_t len;
    klet_proc_fn cb;
    void *arg;
    bool exited;
    int status;
};

static void proc_finish(struct klet_proc *p)
{
    for (struct klet_proc **pp = &p->k->procs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (p->rd)
        event_free(p->rd);
    if (p->to)
        event_free(p->to);
    if (p->fd >= 0) {
        /* whatever is still buffered in the pipe */
        for (;;) {
            if (p->len >= OUT_MAX)
                break;
            ssize_t n = read(p->fd, p->out + p->len, OUT_MAX - p->len);
            if (n <= 0)
                break;
            p->len += n;
        }
        close(p->fd);
    }
    p->out[p->len] = 0;
    if (p->cb)
        p->cb(p->status, p->out, p->len, p->arg);
    free(p->out);
    free(p);
}

static void proc_read(evutil_socket_t fd, short what, void *arg)
{
    struct klet_proc *p = arg;
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n > 0) {
        size_t room = OUT_MAX - p->len;
        size_t c = (size_t)n < room ? (size_t)n : room;
        memcpy(p->out + p->len, tmp, c);
        p->len += c;
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    event_del(p->rd);
    close(p->fd);
    p->fd = -1;
    if (p->exited)
        proc_finish(p);
}

static void proc_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct klet_proc *p = arg;
    kill(p->pid, SIGKILL);
}

static void proc_sigchld(evutil_socket_t fd, short what, void *arg)
{
    struct klet *k = arg;
    /* Only our own children: tunnel.c reaps its exec sessions through pidfds. */
    bool again = true;
    while (again) {
        again = false;
        for (struct klet_proc *p = k->procs; p; p = p->next) {
            int st;
            if (waitpid(p->pid, &st, WNOHANG) != p->pid)
                continue;
            p->exited = true;
            p->status = st;
            /* Do not wait for EOF: a daemonized grandchild may hold the pipe. */
            proc_finish(p);
            again = true; /* the list changed */
            break;
        }
    }
}

void klet_proc_init(struct klet *k)
{
    k->sigchld_ev = evsignal_new(k->base, SIGCHLD, proc_sigchld, k);
    event_add(k->sigchld_ev, NULL);
}

static pid_t proc_start(struct klet *k, char *const argv[], int (*fn)(void *), void *fnarg,
                        int timeout_ms, klet_proc_fn cb, void *arg)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (fn) {
            int rc = fn(fnarg);
            fflush(stdout);
            _exit(rc);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    struct klet_proc *p = xcalloc(1, sizeof *p);
    p->k = k;
    p->pid = pid;
    p->fd = pfd[0];
    p->out = xmalloc(OUT_MAX + 1);
    p->cb = cb;
    p->arg = arg;
    fcntl(p->fd, F_SETFL, O_NONBLOCK);
    p->rd = event_new(k->base, p->fd, EV_READ | EV_PERSIST, proc_read, p);
    event_add(p->rd, NULL);
    if (timeout_ms > 0) {
        p->to = evtimer_new(k->base, proc_timeout, p);
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        event_add(p->to, &tv);
    }
    p->next = k->procs;
    k->procs = p;
    return pid;
}

pid_t klet_proc_spawn(struct klet *k, char *const argv[], int timeout_ms, klet_proc_fn cb,
                      void *arg)
{
    return proc_start(k, argv, NULL, NULL, timeout_ms, cb, arg);
}

pid_t klet_proc_fork(struct klet *k, int (*fn)(void *), void *fnarg, int timeout_ms,
                     klet_proc_fn cb, void *arg)
{
    return proc_start(k, NULL, fn, fnarg, timeout_ms, cb, arg);
}

void klet_proc_forget(struct klet *k, void *arg)
{
    for (struct klet_proc *p = k->procs; p; p = p->next)
        if (p->arg == arg)
            p->cb = NULL;
}

int klet_proc_run(char *const argv[], char **out)
{
    int pfd[2];
    if (out)
        *out = NULL;
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    char *buf = xmalloc(OUT_MAX + 1);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(pfd[0], buf + len, OUT_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += n;
        if (len >= OUT_MAX)
            break;
    }
    close(pfd[0]);
    buf[len] = 0;
    int st = -1;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (out)
        *out = buf;
    else
        free(buf);
    return st;
}
