/*
 * coracle-monitor: the parent of one container. The kubelet starts it per
 * container; it detaches (double fork, setsid) and becomes a child
 * subreaper, runs `runc create` then `runc start` with the container's
 * stdout/stderr on pipes, writes what the container prints to the CRI log
 * file (rotated by size), and when the container's init exits writes
 * "<exitcode> <signal> <finished_ns> <oomkilled>" to <state>/exit (atomically,
 * by rename). Because the monitor, not the kubelet, is the container's
 * parent, containers outlive a kubelet restart and exit codes are never lost.
 *
 * With --stdin the container's stdin is a pipe the monitor keeps open;
 * with --tty the container runs on a terminal whose master runc hands
 * over on a console socket, and its output (one stream) is read from
 * there. Attach sessions (monitor_io.c) write to that stdin and get a copy
 * of the output on <state>/attach.
 *
 * Progress goes to the kubelet on --sync-fd as lines:
 *   "C <pid>"        created (runc create succeeded)
 *   "S <ns>"         started at <ns> (realtime)
 *   "E <message>"    failed (nothing runs; the kubelet cleans up)
 * Files in --state: monitor.pid, pid (container), started, exit, runc.log,
 * attach (the socket), console (the console socket, while starting).
 *
 * A small program of its own, not one of daemon.c's daemons: no event
 * loop, no configuration file, no systemd, nothing linked from
 * libcoracle.a. Its file-level statics are true process singletons: the
 * options (read-only once parsed), the one sync pipe and the one
 * container's log file.
 */
#include "config.h"
#include "monitor_int.h"
#include "attach_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 16384

struct stream {
    const char *name; /* "stdout" / "stderr" */
    int fd;
    char buf[LINE_MAX_BYTES];
    size_t len;
};

static const char *o_runtime = "runc", *o_root, *o_id, *o_bundle, *o_state, *o_log, *o_memcg;
static long long o_log_max = 10 * 1024 * 1024;
static int o_sync = -1;
static bool o_stdin, o_stdin_once, o_tty;
static int log_fd = -1;
static long long log_size;

static int64_t mon_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sync_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sync_msg(const char *fmt, ...)
{
    if (o_sync < 0)
        return;
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof buf - 2)
        n = sizeof buf - 2;
    for (int i = 0; i < n; i++)
        if (buf[i] == '\n')
            buf[i] = ' ';
    buf[n++] = '\n';
    ssize_t w = write(o_sync, buf, n);
    (void)w;
}

static char *path_in_state(const char *name)
{
    size_t n = strlen(o_state) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s", o_state, name);
    return p;
}

static void write_file_atomic(const char *name, const char *content)
{
    char *p = path_in_state(name);
    size_t n = strlen(p) + 5;
    char *tmp = malloc(n);
    if (!tmp)
        abort();
    snprintf(tmp, n, "%s.tmp", p);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, content, strlen(content));
        (void)w;
        fsync(fd);
        close(fd);
        rename(tmp, p);
    }
    free(tmp);
    free(p);
}

/* runc --log writes JSON lines; the last "msg" at level error says why. */
static void runc_error(char *out, size_t n)
{
    snprintf(out, n, "runc failed");
    char *p = path_in_state("runc.log");
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"level\":\"error\""))
            continue;
        char *m = strstr(line, "\"msg\":\"");
        if (!m)
            continue;
        m += 7;
        size_t j = 0;
        for (; *m && *m != '"' && j + 1 < n; m++) {
            if (*m == '\\' && m[1])
                m++;
            out[j++] = *m;
        }
        out[j] = 0;
    }
    fclose(f);
}

static pid_t run_runc(char **argv, int in_fd, int out_fd, int err_fd)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int devnull = open("/dev/null", O_RDWR);
    dup2(in_fd >= 0 ? in_fd : devnull, 0);
    dup2(out_fd >= 0 ? out_fd : devnull, 1);
    dup2(err_fd >= 0 ? err_fd : devnull, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(o_runtime, argv);
    _exit(127);
}

static int wait_for(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

static void log_open(void)
{
    log_fd = open(o_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat sb;
    log_size = (log_fd >= 0 && fstat(log_fd, &sb) == 0) ? sb.st_size : 0;
}

static void log_rotate(void)
{
    size_t n = strlen(o_log) + 3;
    char *old = malloc(n);
    if (!old)
        abort();
    snprintf(old, n, "%s.1", o_log);
    if (log_fd >= 0)
        close(log_fd);
    rename(o_log, old);
    free(old);
    log_open();
}

/* One CRI log line: "<RFC3339Nano> <stream> <P|F> <content>\n". */
static void log_line(const char *stream, const char *data, size_t len, int partial)
{
    if (log_fd < 0)
        return;
    int64_t ns = mon_now_ns();
    time_t sec = ns / 1000000000;
    struct tm tm;
    gmtime_r(&sec, &tm);
    char head[96];
    int h = snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ %s %c ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(ns % 1000000000), stream, partial ? 'P' : 'F');
    char *line = malloc(h + len + 1);
    if (!line)
        abort();
    memcpy(line, head, h);
    memcpy(line + h, data, len);
    line[h + len] = '\n';
    ssize_t w = write(log_fd, line, h + len + 1);
    free(line);
    if (w > 0)
        log_size += w;
    if (o_log_max > 0 && log_size >= o_log_max)
        log_rotate();
}

static void stream_flush(struct stream *s, int all)
{
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++) {
        if (s->buf[i] == '\n') {
            log_line(s->name, s->buf + start, i - start, 0);
            start = i + 1;
        }
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
    if (s->len == sizeof s->buf || (all && s->len)) {
        log_line(s->name, s->buf, s->len, !all);
        s->len = 0;
    }
}

/* Reads once; returns 0 on EOF or error, 1 if data or EAGAIN. */
static int stream_read(struct stream *s)
{
    if (s->fd < 0)
        return 0;
    ssize_t n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 1;
    if (n <= 0) {
        stream_flush(s, 1);
        close(s->fd);
        s->fd = -1;
        return 0;
    }
    mio_output(!strcmp(s->name, "stderr"), s->buf + s->len, (size_t)n);
    s->len += n;
    stream_flush(s, 0);
    return 1;
}

/* A listening unix socket at name in the state dir (open as dirfd), or -1. */
static int listen_in_state(int dirfd, const char *name)
{
    struct sockaddr_un sa;
    socklen_t sl = attach_wire_addr(&sa, dirfd, name);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    unlinkat(dirfd, name, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sl) < 0 || listen(fd, 8) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The terminal's master that runc sent on the console socket (SCM_RIGHTS), or -1. */
static int console_master(int csock)
{
    int conn = accept4(csock, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return -1;
    char name[4096];
    struct iovec iov = {name, sizeof name};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    int fd = -1;
    struct cmsghdr *cm;
    if (recvmsg(conn, &mh, MSG_CMSG_CLOEXEC) > 0 && (cm = CMSG_FIRSTHDR(&mh)) &&
        cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    close(conn);
    return fd;
}

/*
 * The container's stdio, as runc create will pass it: its stdin (-1:
 * /dev/null), output pipes, and, for a terminal, the console socket. The
 * attach socket starts listening here, before the container can print.
 * 0, or -1 after the sync message.
 */
struct mon_stdio {
    int in[2];          /* the stdin pipe (--stdin without --tty) */
    int out[2], err[2]; /* runc create's stdout, stderr (the container's without --tty) */
    int csock;          /* the console socket (--tty) */
    char console[64];
};

static int stdio_setup(struct mon_stdio *io)
{
    *io = (struct mon_stdio){{-1, -1}, {-1, -1}, {-1, -1}, -1, ""};
    int dirfd = open(o_state, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int lfd = dirfd >= 0 ? listen_in_state(dirfd, ATTACH_WIRE_SOCK) : -1;
    if (lfd < 0) {
        sync_msg("E attach socket in %s: %s", o_state, strerror(errno));
        return -1;
    }
    if (pipe2(io->out, O_CLOEXEC) < 0 || pipe2(io->err, O_CLOEXEC) < 0 ||
        (o_stdin && !o_tty && pipe2(io->in, O_CLOEXEC) < 0)) {
        sync_msg("E pipe: %s", strerror(errno));
        return -1;
    }
    if (o_tty) {
        io->csock = listen_in_state(dirfd, "console");
        if (io->csock < 0) {
            sync_msg("E console socket in %s: %s", o_state, strerror(errno));
            return -1;
        }
        /* (runc is another process: /proc/self would be its own) */
        snprintf(io->console, sizeof io->console, "/proc/%d/fd/%d/console", (int)getpid(), dirfd);
    }
    if (io->in[1] >= 0)
        fcntl(io->in[1], F_SETFL, O_NONBLOCK);
    mio_init(lfd, io->in[1], o_stdin_once);
    return 0;
}

static int oom_killed(void)
{
    if (!o_memcg)
        return 0;
    size_t n = strlen(o_memcg) + 32;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/memory.oom_control", o_memcg);
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return 0;
    char key[64];
    long long v;
    int oom = 0;
    while (fscanf(f, "%63s %lld", key, &v) == 2)
        if (!strcmp(key, "oom_kill") && v > 0)
            oom = 1;
    fclose(f);
    return oom;
}

static void usage(void)
{
    fprintf(stderr, "usage: coracle-monitor --runtime PATH --root DIR --id ID --bundle DIR "
                    "--state DIR --log FILE [--log-max BYTES] [--memcg DIR] [--sync-fd N] "
                    "[--stdin] [--stdin-once] [--tty]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"runtime", 1, 0, 'r'},    {"root", 1, 0, 'R'},    {"id", 1, 0, 'i'},
        {"bundle", 1, 0, 'b'},     {"state", 1, 0, 's'},   {"log", 1, 0, 'l'},
        {"log-max", 1, 0, 'm'},    {"memcg", 1, 0, 'c'},   {"sync-fd", 1, 0, 'y'},
        {"help", 0, 0, 'h'},       {"version", 0, 0, 'V'}, {"stdin", 0, 0, 'I'},
        {"stdin-once", 0, 0, 'O'}, {"tty", 0, 0, 'T'},     {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            o_runtime = optarg;
            break;
        case 'R':
            o_root = optarg;
            break;
        case 'i':
            o_id = optarg;
            break;
        case 'b':
            o_bundle = optarg;
            break;
        case 's':
            o_state = optarg;
            break;
        case 'l':
            o_log = optarg;
            break;
        case 'm':
            o_log_max = atoll(optarg);
            break;
        case 'c':
            o_memcg = optarg;
            break;
        case 'y':
            o_sync = atoi(optarg);
            break;
        case 'I':
            o_stdin = true;
            break;
        case 'O':
            o_stdin_once = true;
            break;
        case 'T':
            o_tty = true;
            break;
        case 'V':
            printf("coracle-monitor %s\n", PACKAGE_VERSION);
            return 0;
        default:
            usage();
        }
    }
    if (!o_root || !o_id || !o_bundle || !o_state || !o_log)
        usage();

    /* Detach: the kubelet reaps the first child at once; we are reparented. */
    pid_t p = fork();
    if (p < 0)
        return 1;
    if (p > 0)
        _exit(0);
    setsid();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (chdir("/") < 0)
        _exit(1);
    for (int fd = 3; fd < 1024; fd++)
        if (fd != o_sync)
            close(fd);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    if (devnull > 2)
        close(devnull);

    char buf[4096];
    snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    write_file_atomic("monitor.pid", buf);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);

    struct mon_stdio io;
    if (stdio_setup(&io) < 0)
        return 1;
    log_open();

    /* Static copies: error paths below exit without freeing. */
    static char runclog[4096], pidfile[4096];
    snprintf(runclog, sizeof runclog, "%s/runc.log", o_state);
    snprintf(pidfile, sizeof pidfile, "%s/pid", o_state);
    /* (room to put the console socket before the id) */
    char *cargv[16] = {"runc",         "--root", (char *)o_root, "--log",    runclog,
                       "--log-format", "json",   "create",       "--bundle", (char *)o_bundle,
                       "--pid-file",   pidfile,  (char *)o_id,   NULL};
    if (o_tty) {
        cargv[12] = "--console-socket"; /* a terminal: runc hands its master over there */
        cargv[13] = io.console;
        cargv[14] = (char *)o_id;
    }
    int st = wait_for(run_runc(cargv, io.in[0], io.out[1], io.err[1]));
    close(io.out[1]);
    close(io.err[1]);
    if (io.in[0] >= 0)
        close(io.in[0]);
    if (st != 0) {
        runc_error(buf, sizeof buf);
        sync_msg("E %s", buf);
        return 1;
    }
    if (o_tty) {
        /* one stream, from the terminal (runc's own pipes are of no more use) */
        int master = console_master(io.csock);
        close(io.csock);
        char *cs = path_in_state("console");
        unlink(cs);
        free(cs);
        if (master < 0) {
            sync_msg("E runc sent no terminal on the console socket");
            return 1;
        }
        fcntl(master, F_SETFL, O_NONBLOCK);
        close(io.out[0]);
        close(io.err[0]);
        io.out[0] = master;
        io.err[0] = -1;
        mio_init_terminal(master, o_stdin);
    }
    FILE *pf = fopen(pidfile, "r");
    int cpid = 0;
    if (!pf || fscanf(pf, "%d", &cpid) != 1 || cpid <= 0) {
        sync_msg("E cannot read container pid from %s", pidfile);
        return 1;
    }
    fclose(pf);
    sync_msg("C %d", cpid);

    char *sargv[] = {"runc",         "--root", (char *)o_root, "--log",      runclog,
                     "--log-format", "json",   "start",        (char *)o_id, NULL};
    st = wait_for(run_runc(sargv, -1, -1, -1));
    if (st != 0) {
        runc_error(buf, sizeof buf);
        sync_msg("E %s", buf);
        return 1;
    }
    int64_t started = mon_now_ns();
    snprintf(buf, sizeof buf, "%lld\n", (long long)started);
    write_file_atomic("started", buf);
    sync_msg("S %lld", (long long)started);
    if (o_sync >= 0) {
        close(o_sync);
        o_sync = -1;
    }

    struct stream so = {.name = "stdout", .fd = io.out[0]},
                  se = {.name = "stderr", .fd = io.err[0]};
    int exited = 0, status = 0;
    int64_t finished = 0, drain_deadline = 0;
    for (;;) {
        struct pollfd pfd[3 + MIO_POLL_MAX] = {
            {so.fd, POLLIN, 0}, {se.fd, POLLIN, 0}, {sfd, POLLIN, 0}};
        int nio = mio_pollfds(pfd + 3);
        int timeout = -1;
        if (exited) {
            if (so.fd < 0 && se.fd < 0)
                break;
            int64_t left = (drain_deadline - mon_now_ns()) / 1000000;
            if (left <= 0)
                break;
            timeout = (int)left;
        }
        int n = poll(pfd, 3 + nio, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0)
            mio_handle(pfd + 3, nio);
        if (pfd[0].revents)
            stream_read(&so);
        if (pfd[1].revents)
            stream_read(&se);
        if (pfd[2].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0)
                ;
            int wst;
            pid_t w;
            while ((w = waitpid(-1, &wst, WNOHANG)) > 0) {
                if (w == cpid && !exited) {
                    exited = 1;
                    status = wst;
                    finished = mon_now_ns();
                    /* Leftover writers (daemonized children) must not hold us. */
                    drain_deadline = finished + 500000000LL;
                    fcntl(so.fd, F_SETFL, O_NONBLOCK);
                    fcntl(se.fd, F_SETFL, O_NONBLOCK);
                }
            }
        }
    }
    stream_flush(&so, 1);
    stream_flush(&se, 1);
    mio_end();
    int code = 0, sig = 0;
    if (WIFEXITED(status)) {
        code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        sig = WTERMSIG(status);
        code = 128 + sig;
    }
    snprintf(buf, sizeof buf, "%d %d %lld %d\n", code, sig, (long long)finished, oom_killed());
    write_file_atomic("exit", buf);
    return 0;
}
