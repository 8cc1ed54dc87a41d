/*
 * tunnel (kubelet side): serves log and exec sessions over the
 * NodeTunnel.Connect stream. See tunnel.h.
 *
 * An attach session is a connection to the container monitor's attach
 * socket: the apiserver's stdin, window sizes and end of stdin become
 * frames there, the monitor's output frames become stdout/stderr, and the
 * socket's end (the container ended) ends the session.
 *
 * Each exec session is a `runc exec` child: with pipes for stdin, stdout
 * and stderr, or with a pseudo-terminal (runc sees a terminal on its stdin
 * and relays it into the container's own console). Its exit is seen through
 * a pidfd, and the exit code is sent only once both output streams reached
 * EOF, so no output is lost. Each log session reads a CRI log file and, when
 * following, watches it with inotify.
 */
#include "config.h"
#include "tunnel.h"
#include "attach_wire.h"
#include "buf.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "coracle.pb-c.h"
#include "grpc.h"
#include "util.h"

#define KTUN_CHUNK (32u << 10)
#define KTUN_BACKOFF_MIN_MS 200
#define KTUN_BACKOFF_MAX_MS 10000

enum ksess_kind { KSESS_EXEC, KSESS_LOG, KSESS_ATTACH };

struct ksess {
    uint64_t id;
    enum ksess_kind kind;
    struct ktun *t;
    struct ksess *next;
    /* exec */
    pid_t pid;
    int pidfd;
    struct event *exit_ev;
    int exited, status;
    int tty;
    struct bufferevent *in;  /* stdin (pipe), the pty master or the attach socket (both ways) */
    struct bufferevent *out; /* stdout pipe */
    struct bufferevent *err; /* stderr pipe */
    int out_eof, err_eof;
    /* log */
    int fd;
    int ino;
    struct event *ino_ev;
    char *path;
    off_t off;
    struct buf partial; /* read from the file, not yet decoded (a line cut at the end) */
    struct ktun_cri_opts copts;
    char *ns, *pod, *ctr;   /* following: whose end ends the session */
    struct event *check_ev; /* following: is the container still the one running? */
};

struct ktun {
    struct event_base *base;
    gcl_t *g;
    char *node;
    char *runc;
    ktun_resolve_fn resolve;
    void *arg;
    gcl_call_t *call;
    struct event *retry;
    int backoff_ms;
    int64_t since_ns; /* when the current stream was opened (mono_ns) */
    int in_connect, failed_in_connect;
    struct ksess *sessions;
};

static void ktun_connect(struct ktun *t);

static void ktun_send(struct ktun *t, Coracle__V1__TunnelFrame *f)
{
    if (!t->call)
        return;
    gcl_call_send(t->call, &f->base);
}

static void ktun_send_bytes(struct ksess *s, int is_err, const void *data, size_t len)
{
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.has_session = 1;
    f.session = s->id;
    if (is_err) {
        f.has_stderr = 1;
        f.stderr.data = (uint8_t *)data;
        f.stderr.len = len;
    } else {
        f.has_stdout = 1;
        f.stdout.data = (uint8_t *)data;
        f.stdout.len = len;
    }
    ktun_send(s->t, &f);
}

static void ktun_send_error(struct ktun *t, uint64_t id, int code, const char *msg)
{
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.has_session = 1;
    f.session = id;
    f.error = (char *)msg;
    f.has_errorcode = 1;
    f.errorcode = code;
    ktun_send(t, &f);
}

static void ktun_target_free(struct ktun_target *tg)
{
    free(tg->runc_root);
    free(tg->container_id);
    free(tg->log_path);
    free(tg->state_dir);
}

static void ksess_free(struct ksess *s)
{
    for (struct ksess **p = &s->t->sessions; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    if (s->pid > 0 && !s->exited) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    if (s->exit_ev)
        event_free(s->exit_ev);
    if (s->pidfd >= 0)
        close(s->pidfd);
    if (s->in)
        bufferevent_free(s->in);
    if (s->out)
        bufferevent_free(s->out);
    if (s->err)
        bufferevent_free(s->err);
    if (s->ino_ev)
        event_free(s->ino_ev);
    if (s->ino >= 0)
        close(s->ino);
    if (s->fd >= 0)
        close(s->fd);
    if (s->check_ev)
        event_free(s->check_ev);
    free(s->ns);
    free(s->pod);
    free(s->ctr);
    free(s->path);
    buf_free(&s->partial);
    free(s);
}

static struct ksess *ksess_new(struct ktun *t, uint64_t id, enum ksess_kind kind)
{
    struct ksess *s = xcalloc(1, sizeof(*s));
    s->id = id;
    s->kind = kind;
    s->t = t;
    s->pidfd = s->fd = s->ino = -1;
    s->next = t->sessions;
    t->sessions = s;
    return s;
}

/* ---- exec ---- */

static void kexec_maybe_done(struct ksess *s)
{
    if (!s->exited || !s->out_eof || !s->err_eof)
        return;
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.has_session = 1;
    f.session = s->id;
    f.has_exitcode = 1;
    if (WIFEXITED(s->status))
        f.exitcode = WEXITSTATUS(s->status);
    else if (WIFSIGNALED(s->status))
        f.exitcode = 128 + WTERMSIG(s->status);
    ktun_send(s->t, &f);
    ksess_free(s);
}

static void kexec_read(struct bufferevent *bev, void *arg)
{
    struct ksess *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int is_err = bev == s->err;
    uint8_t buf[KTUN_CHUNK];
    size_t n;
    while ((n = evbuffer_remove(in, buf, sizeof(buf))) > 0 && n != (size_t)-1)
        ktun_send_bytes(s, is_err, buf, n);
}

static void kexec_event(struct bufferevent *bev, short what, void *arg)
{
    struct ksess *s = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    kexec_read(bev, s);
    bufferevent_disable(bev, EV_READ);
    if (bev == s->err)
        s->err_eof = 1;
    else
        s->out_eof = 1;
    if (s->tty)
        s->err_eof = 1;
    kexec_maybe_done(s);
}

static void kexec_stdin_drained(struct bufferevent *bev, void *arg)
{
    struct ksess *s = arg;
    bufferevent_free(s->in);
    s->in = NULL;
}

static void kexec_stdin_event(struct bufferevent *bev, short what, void *arg)
{
    /* The process closed its stdin (EPIPE): drop what it will never read. */
    kexec_stdin_drained(bev, arg);
}

static void kexec_exit(evutil_socket_t fd, short what, void *arg)
{
    struct ksess *s = arg;
    if (waitpid(s->pid, &s->status, WNOHANG) != s->pid)
        return;
    s->exited = 1;
    event_del(s->exit_ev);
    kexec_maybe_done(s);
}

static void ktun_set_winsize(struct ksess *s, const Coracle__V1__TerminalSize *sz)
{
    if (!s->tty || !sz || !s->in)
        return;
    struct winsize ws = {.ws_row = sz->height, .ws_col = sz->width};
    ioctl(bufferevent_getfd(s->in), TIOCSWINSZ, &ws);
}

static void kexec_start(struct ktun *t, const Coracle__V1__TunnelFrame *f)
{
    Coracle__V1__ExecRequest *req = f->exec;
    struct ktun_target tg = {0};
    char *err = NULL;
    int code = t->resolve(t->arg, req->namespace_, req->name, req->container, 0, &tg, &err);
    if (code == 0 && !tg.running) {
        code = GRPC_FAILED_PRECONDITION;
        err = xasprintf("container %s is not running", req->container);
    }
    if (code) {
        ktun_send_error(t, f->session, code, err ? err : "cannot exec");
        goto out;
    }
    struct ksess *s = ksess_new(t, f->session, KSESS_EXEC);
    s->tty = req->has_tty && req->tty;
    int master = -1, inp[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, slave = -1;
    if (s->tty) {
        /* the size before the fork: runc copies it into the container's console at its start,
         * and a SIGWINCH before runc handles it would be lost */
        struct winsize ws = {0};
        if (f->resize) {
            ws.ws_row = (unsigned short)f->resize->height;
            ws.ws_col = (unsigned short)f->resize->width;
        }
        if (openpty(&master, &slave, NULL, NULL, f->resize ? &ws : NULL) < 0) {
            ktun_send_error(t, f->session, GRPC_INTERNAL, "openpty failed");
            ksess_free(s);
            goto out;
        }
    } else if (pipe2(inp, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0 ||
               pipe2(errp, O_CLOEXEC) < 0) {
        ktun_send_error(t, f->session, GRPC_INTERNAL, "pipe failed");
        ksess_free(s);
        goto out;
    }
    size_t argc = 0;
    char **argv = xcalloc(req->n_command + 10, sizeof(char *));
    argv[argc++] = t->runc;
    argv[argc++] = "--root";
    argv[argc++] = tg.runc_root;
    argv[argc++] = "exec";
    if (s->tty) {
        argv[argc++] = "--tty";
        argv[argc++] = "--env";
        argv[argc++] = "TERM=xterm";
    }
    argv[argc++] = tg.container_id;
    for (size_t i = 0; i < req->n_command; i++)
        argv[argc++] = req->command[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        setsid();
        if (s->tty) {
            ioctl(slave, TIOCSCTTY, 0);
            dup2(slave, 0);
            dup2(slave, 1);
            dup2(slave, 2);
        } else {
            if (req->has_stdin && req->stdin) {
                dup2(inp[0], 0);
            } else {
                int nul = open("/dev/null", O_RDONLY);
                dup2(nul, 0);
            }
            dup2(outp[1], 1);
            dup2(errp[1], 2);
        }
        execvp(argv[0], argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    if (pid < 0) {
        ktun_send_error(t, f->session, GRPC_INTERNAL, "fork failed");
        ksess_free(s);
        goto out;
    }
    s->pid = pid;
    struct event_base *base = t->base;
    if (s->tty) {
        close(slave);
        evutil_make_socket_nonblocking(master);
        fcntl(master, F_SETFD, FD_CLOEXEC);
        s->in = bufferevent_socket_new(base, master, BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(s->in, kexec_read, NULL, kexec_event, s);
        bufferevent_enable(s->in, EV_READ | EV_WRITE);
        s->out = NULL;
        s->err_eof = 1;
    } else {
        close(inp[0]);
        close(outp[1]);
        close(errp[1]);
        evutil_make_socket_nonblocking(inp[1]);
        evutil_make_socket_nonblocking(outp[0]);
        evutil_make_socket_nonblocking(errp[0]);
        s->in = bufferevent_socket_new(base, inp[1], BEV_OPT_CLOSE_ON_FREE);
        s->out = bufferevent_socket_new(base, outp[0], BEV_OPT_CLOSE_ON_FREE);
        s->err = bufferevent_socket_new(base, errp[0], BEV_OPT_CLOSE_ON_FREE);
        bufferevent_setcb(s->out, kexec_read, NULL, kexec_event, s);
        bufferevent_setcb(s->err, kexec_read, NULL, kexec_event, s);
        bufferevent_enable(s->out, EV_READ);
        bufferevent_enable(s->err, EV_READ);
        bufferevent_enable(s->in, EV_WRITE);
        if (!(req->has_stdin && req->stdin)) {
            bufferevent_free(s->in);
            s->in = NULL;
        }
    }
    s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (s->pidfd >= 0) {
        s->exit_ev = event_new(base, s->pidfd, EV_READ | EV_PERSIST, kexec_exit, s);
        event_add(s->exit_ev, NULL);
    }
    if (f->has_stdin && s->in)
        bufferevent_write(s->in, f->stdin.data, f->stdin.len);
out:
    free(err);
    ktun_target_free(&tg);
}

/* ---- logs ---- */

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A CRI time ("2026-12-07T06:35:01.123456789Z") in ns since the epoch, or -1. */
static int64_t cri_time_ns(const char *p, size_t n)
{
    struct tm tm = {0};
    char b[40];
    if (n >= sizeof(b))
        return -1;
    memcpy(b, p, n);
    b[n] = '\0';
    const char *rest = strptime(b, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    int64_t frac = 0, scale = 1000000000;
    if (*rest == '.')
        for (rest++; *rest >= '0' && *rest <= '9'; rest++)
            if (scale > 1) {
                scale /= 10;
                frac += (*rest - '0') * scale;
            }
    if (*rest != 'Z')
        return -1;
    return (int64_t)timegm(&tm) * 1000000000 + frac;
}

/* A CRI time as Kubernetes prints it (RFC3339Nano: no trailing zeros in the fraction). */
static size_t cri_time_put(char *o, const char *ts, size_t n)
{
    const char *dot = memchr(ts, '.', n);
    if (!dot || n < 2 || ts[n - 1] != 'Z') {
        memcpy(o, ts, n);
        return n;
    }
    size_t end = n - 1; /* before the Z */
    while (end > (size_t)(dot - ts) + 1 && ts[end - 1] == '0')
        end--;
    if (end == (size_t)(dot - ts) + 1)
        end--; /* all zeros: no fraction at all */
    memcpy(o, ts, end);
    o[end] = 'Z';
    return end + 1;
}

size_t ktun_cri_decode_opts(const char *buf, size_t len, const struct ktun_cri_opts *opts,
                            char **out, size_t *out_len)
{
    size_t used = 0;
    char *o = xmalloc(2 * len + 1); /* a timestamp per line at most doubles a line */
    size_t ol = 0;
    while (used < len) {
        const char *line = buf + used;
        const char *nl = memchr(line, '\n', len - used);
        if (!nl)
            break;
        size_t ll = (size_t)(nl - line);
        /* TIMESTAMP STREAM TAG CONTENT */
        const char *p = line, *end = nl;
        int fields = 0;
        const char *field[3] = {NULL, NULL, NULL};
        while (p < end && fields < 3) {
            const char *sp = memchr(p, ' ', (size_t)(end - p));
            if (!sp) {
                p = end;
                break;
            }
            field[fields++] = p;
            p = sp + 1;
        }
        const char *tag = field[2];
        used += ll + 1;
        /* a CRI line: the stream is stdout or stderr, the tag P or F */
        if (fields == 3 && (!strncmp(field[1], "stdout ", 7) || !strncmp(field[1], "stderr ", 7)) &&
            (!strncmp(tag, "P ", 2) || !strncmp(tag, "F ", 2))) {
            const char *ts_end = memchr(line, ' ', ll);
            size_t tsl = (size_t)(ts_end - line);
            if (opts && opts->since_ns && cri_time_ns(line, tsl) < opts->since_ns)
                continue;
            if (opts && opts->timestamps) {
                ol += cri_time_put(o + ol, line, tsl);
                o[ol++] = ' ';
            }
            memcpy(o + ol, p, (size_t)(end - p));
            ol += (size_t)(end - p);
            if (!tag || *tag != 'P')
                o[ol++] = '\n';
        } else {
            /* Not CRI: pass the line through. */
            memcpy(o + ol, line, ll);
            ol += ll;
            o[ol++] = '\n';
        }
    }
    *out = o;
    *out_len = ol;
    return used;
}

size_t ktun_cri_decode(const char *buf, size_t len, char **out, size_t *out_len)
{
    return ktun_cri_decode_opts(buf, len, NULL, out, out_len);
}

/* Reads what is new in the file and sends the decoded content. */
static void klog_pump(struct ksess *s)
{
    for (;;) {
        ssize_t n = pread(s->fd, buf_reserve(&s->partial, KTUN_CHUNK), KTUN_CHUNK, s->off);
        if (n <= 0)
            break;
        s->off += n;
        buf_commit(&s->partial, (size_t)n);
        char *o;
        size_t ol;
        size_t used = ktun_cri_decode_opts(s->partial.p, s->partial.len, &s->copts, &o, &ol);
        if (ol)
            ktun_send_bytes(s, 0, o, ol);
        free(o);
        buf_consume(&s->partial, used);
    }
}

/* The session is over for the apiserver (and forgotten). */
static void ksess_end(struct ksess *s)
{
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.has_session = 1;
    f.session = s->id;
    f.has_end = 1;
    f.end = 1;
    ktun_send(s->t, &f);
    ksess_free(s);
}

static void klog_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct ksess *s = arg;
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n = read(fd, buf, sizeof(buf));
    int reopen = 0;
    for (ssize_t i = 0; i < n;) {
        struct inotify_event *ev = (struct inotify_event *)(buf + i);
        if (ev->mask & (IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED))
            reopen = 1;
        i += (ssize_t)sizeof(*ev) + ev->len;
    }
    klog_pump(s);
    if (reopen) {
        /* Rotated or removed: follow the new file at the same path, if any. */
        close(s->fd);
        s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
        s->off = 0;
        if (s->fd < 0) {
            ksess_end(s);
            return;
        }
        inotify_add_watch(s->ino, s->path, IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF);
        klog_pump(s);
    }
}

/* The offset where the last n lines of the file start. */
static off_t klog_tail_offset(int fd, int64_t n)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (n < 0 || size <= 0)
        return 0;
    if (n == 0)
        return size;
    char buf[8192];
    off_t pos = size;
    int64_t lines = 0;
    int first = 1;
    while (pos > 0) {
        size_t want = pos > (off_t)sizeof(buf) ? sizeof(buf) : (size_t)pos;
        pos -= (off_t)want;
        if (pread(fd, buf, want, pos) != (ssize_t)want)
            return 0;
        for (size_t i = want; i-- > 0;) {
            if (buf[i] == '\n') {
                if (first && pos + (off_t)i == size - 1) {
                    first = 0;
                    continue;
                }
                if (++lines == n)
                    return pos + (off_t)i + 1;
            }
            first = 0;
        }
    }
    return 0;
}

/*
 * Following: once a second, whether the container instance whose log
 * this is still runs; when it ended (or restarted: a new log file) what
 * is left is sent and the session ends, as kubectl logs -f does. (Each
 * check also reads what inotify might not have told: a log file created
 * after the session started.)
 */
static void klog_check(evutil_socket_t fd, short what, void *arg)
{
    struct ksess *s = arg;
    struct ktun_target tg = {0};
    char *err = NULL;
    int code = s->t->resolve(s->t->arg, s->ns, s->pod, s->ctr, 0, &tg, &err);
    int ended = code || !tg.running || strcmp(tg.log_path, s->path);
    free(err);
    ktun_target_free(&tg);
    if (s->fd < 0) {
        /* followed before the container wrote its log file: from its start, once there */
        s->fd = open(s->path, O_RDONLY | O_CLOEXEC);
        if (s->fd >= 0 && s->ino >= 0)
            inotify_add_watch(s->ino, s->path, IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF);
    }
    if (s->fd >= 0)
        klog_pump(s);
    if (ended)
        ksess_end(s);
}

static void klog_start(struct ktun *t, const Coracle__V1__TunnelFrame *f)
{
    Coracle__V1__PodLogRequest *req = f->log;
    struct ktun_target tg = {0};
    char *err = NULL;
    int code = t->resolve(t->arg, req->namespace_, req->name, req->container,
                          req->has_previous && req->previous, &tg, &err);
    if (code) {
        ktun_send_error(t, f->session, code, err ? err : "cannot read logs");
        goto out;
    }
    int fd = open(tg.log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* Created but not yet written: nothing to show, unless following. */
        if (!(req->has_follow && req->follow)) {
            Coracle__V1__TunnelFrame e = CORACLE__V1__TUNNEL_FRAME__INIT;
            e.has_session = 1;
            e.session = f->session;
            e.has_end = 1;
            e.end = 1;
            ktun_send(t, &e);
            goto out;
        }
    }
    struct ksess *s = ksess_new(t, f->session, KSESS_LOG);
    s->fd = fd;
    s->path = xstrdup(tg.log_path);
    s->copts.timestamps = req->has_timestamps && req->timestamps;
    if (req->has_sinceunixnano && req->sinceunixnano > 0)
        s->copts.since_ns = req->sinceunixnano;
    if (req->has_sinceseconds && req->sinceseconds > 0)
        s->copts.since_ns = realtime_ns() - req->sinceseconds * 1000000000;
    ktun_send_bytes(s, 0, "", 0); /* accepted: the client may answer its caller now */
    if (fd >= 0)
        s->off = klog_tail_offset(fd, req->has_taillines ? req->taillines : -1);
    if (fd >= 0)
        klog_pump(s);
    int follow = req->has_follow && req->follow;
    if (!follow || (req->has_previous && req->previous) || !tg.running) {
        ksess_end(s);
        goto out;
    }
    s->ns = xstrdup(req->namespace_ ? req->namespace_ : "default");
    s->pod = xstrdup(req->name ? req->name : "");
    s->ctr = xstrdup(req->container ? req->container : "");
    s->check_ev = event_new(t->base, -1, EV_PERSIST, klog_check, s);
    struct timeval sec = {1, 0};
    event_add(s->check_ev, &sec);
    s->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->ino >= 0) {
        inotify_add_watch(s->ino, s->path, IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF);
        s->ino_ev = event_new(t->base, s->ino, EV_READ | EV_PERSIST, klog_inotify, s);
        event_add(s->ino_ev, NULL);
    }
out:
    free(err);
    ktun_target_free(&tg);
}

/* ---- attach ---- */

/* A frame to the monitor (data cut to the frame's maximum). */
static void katt_send(struct ksess *s, char type, const void *data, size_t len)
{
    const uint8_t *p = data;
    do {
        size_t n = len > ATTACH_WIRE_MAX ? ATTACH_WIRE_MAX : len;
        uint8_t hdr[ATTACH_WIRE_HDR];
        attach_wire_hdr(hdr, type, (uint32_t)n);
        bufferevent_write(s->in, hdr, sizeof hdr);
        if (n)
            bufferevent_write(s->in, p, n);
        p += n;
        len -= n;
    } while (len);
}

static void katt_resize(struct ksess *s, const Coracle__V1__TerminalSize *sz)
{
    uint8_t ws[4] = {(uint8_t)(sz->height >> 8), (uint8_t)sz->height, (uint8_t)(sz->width >> 8),
                     (uint8_t)sz->width};
    katt_send(s, 'w', ws, sizeof ws);
}

/* What the apiserver sent for an open attach session. */
static void katt_input(struct ksess *s, const Coracle__V1__TunnelFrame *f)
{
    if (f->has_stdin && f->stdin.len)
        katt_send(s, 'i', f->stdin.data, f->stdin.len);
    if (f->resize)
        katt_resize(s, f->resize);
    if (f->has_stdinclosed && f->stdinclosed)
        katt_send(s, 'c', NULL, 0);
}

/* The monitor's output frames, each to the apiserver as it is complete. */
static void katt_read(struct bufferevent *bev, void *arg)
{
    struct ksess *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    uint8_t hdr[ATTACH_WIRE_HDR];
    while (evbuffer_copyout(in, hdr, sizeof hdr) == (ssize_t)sizeof hdr) {
        uint32_t len = attach_wire_len(hdr);
        if (len > ATTACH_WIRE_MAX) {
            ksess_end(s); /* not a monitor speaking */
            return;
        }
        if (evbuffer_get_length(in) < sizeof hdr + len)
            return;
        evbuffer_drain(in, sizeof hdr);
        const uint8_t *p = evbuffer_pullup(in, len);
        if (hdr[0] == 'o' || hdr[0] == 'e')
            ktun_send_bytes(s, hdr[0] == 'e', p, len);
        evbuffer_drain(in, len);
    }
}

static void katt_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        ksess_end(arg); /* the container ended (its monitor closed the socket) */
}

/* A connection to the attach socket in state_dir, or -1 with errno. */
static int katt_connect(const char *state_dir)
{
    int dirfd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -1;
    struct sockaddr_un sa;
    socklen_t sl = attach_wire_addr(&sa, dirfd, ATTACH_WIRE_SOCK);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sl) < 0) {
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    int e = errno;
    close(dirfd);
    errno = e;
    return fd;
}

static void katt_start(struct ktun *t, const Coracle__V1__TunnelFrame *f)
{
    Coracle__V1__ExecRequest *req = f->exec;
    struct ktun_target tg = {0};
    char *err = NULL;
    int code = t->resolve(t->arg, req->namespace_, req->name, req->container, 0, &tg, &err);
    int fd = -1;
    const char *cname = req->container ? req->container : "";
    if (code == 0 && (!tg.running || !tg.state_dir)) {
        code = GRPC_FAILED_PRECONDITION;
        err = xasprintf("container %s is not running", cname);
    } else if (code == 0 && (fd = katt_connect(tg.state_dir)) < 0) {
        code = GRPC_UNAVAILABLE;
        err = xasprintf("cannot attach to container %s: its monitor does not answer (%s)", cname,
                        strerror(errno));
    }
    if (code) {
        ktun_send_error(t, f->session, code, err ? err : "cannot attach");
        goto out;
    }
    struct ksess *s = ksess_new(t, f->session, KSESS_ATTACH);
    s->tty = tg.tty;
    s->in = bufferevent_socket_new(t->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(s->in, katt_read, NULL, katt_event, s);
    bufferevent_enable(s->in, EV_READ | EV_WRITE);
    /* stdin asked of a container that keeps none: ignored, as Kubernetes' runtimes do */
    uint8_t flags = req->has_stdin && req->stdin && tg.stdin ? ATTACH_WIRE_STDIN : 0;
    katt_send(s, 'h', &flags, 1);
    katt_input(s, f);
out:
    free(err);
    ktun_target_free(&tg);
}

/* ---- the stream ---- */

static struct ksess *ktun_find(struct ktun *t, uint64_t id)
{
    for (struct ksess *s = t->sessions; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static void ktun_on_msg(gcl_call_t *c, const uint8_t *msg, size_t len, void *arg)
{
    struct ktun *t = arg;
    Coracle__V1__TunnelFrame *f = coracle__v1__tunnel_frame__unpack(NULL, len, msg);
    if (!f) {
        log_warn("tunnel: undecodable frame (%zu bytes) ignored", len);
        return;
    }
    t->backoff_ms = KTUN_BACKOFF_MIN_MS;
    if (f->exec && f->exec->has_attach && f->exec->attach) {
        katt_start(t, f);
    } else if (f->exec) {
        kexec_start(t, f);
    } else if (f->log) {
        klog_start(t, f);
    } else if (f->has_session) {
        struct ksess *s = ktun_find(t, f->session);
        if (s && f->has_end && f->end) {
            ksess_free(s);
        } else if (s && s->kind == KSESS_ATTACH) {
            katt_input(s, f);
        } else if (s && s->kind == KSESS_EXEC) {
            if (f->has_stdin && s->in)
                bufferevent_write(s->in, f->stdin.data, f->stdin.len);
            if (f->resize)
                ktun_set_winsize(s, f->resize);
            if (f->has_stdinclosed && f->stdinclosed && s->in) {
                if (s->tty) {
                    bufferevent_write(s->in, "\x04", 1);
                } else if (evbuffer_get_length(bufferevent_get_output(s->in)) == 0) {
                    bufferevent_free(s->in);
                    s->in = NULL;
                } else {
                    /* Close once what is queued has reached the process. */
                    bufferevent_setcb(s->in, NULL, kexec_stdin_drained, kexec_stdin_event, s);
                }
            }
        }
    }
    coracle__v1__tunnel_frame__free_unpacked(f, NULL);
}

static void ktun_retry(evutil_socket_t fd, short what, void *arg)
{
    ktun_connect(arg);
}

static void ktun_on_done(gcl_call_t *c, int code, const char *message, void *arg)
{
    struct ktun *t = arg;
    t->call = NULL;
    if (t->in_connect)
        t->failed_in_connect = 1;
    while (t->sessions)
        ksess_free(t->sessions);
    /* A stream that lasted worked: its end starts a new outage, retried from the shortest wait
     * (the server says nothing until a session comes, so a message cannot tell). */
    if (mono_ns() - t->since_ns > (int64_t)KTUN_BACKOFF_MAX_MS * 1000000)
        t->backoff_ms = KTUN_BACKOFF_MIN_MS;
    /* jitter, 80-100 %: the nodes behind one flaky uplink do not all come back in step */
    int d = t->backoff_ms - (int)(random() % (t->backoff_ms / 5 + 1));
    if (code != GRPC_CANCELLED)
        log_warn("tunnel: stream to %s ended (%s: %s); reconnecting in %d ms", gcl_addr(t->g),
                 grpc_code_name(code), message, d);
    if (!t->retry)
        return;
    struct timeval tv = {d / 1000, (d % 1000) * 1000};
    event_add(t->retry, &tv);
    t->backoff_ms *= 2;
    if (t->backoff_ms > KTUN_BACKOFF_MAX_MS)
        t->backoff_ms = KTUN_BACKOFF_MAX_MS;
}

static void ktun_connect(struct ktun *t)
{
    t->in_connect = 1;
    t->failed_in_connect = 0;
    t->since_ns = mono_ns();
    gcl_call_t *c =
        gcl_call_bidi(t->g, "/coracle.v1.NodeTunnel/Connect", ktun_on_msg, ktun_on_done, t);
    t->in_connect = 0;
    if (t->failed_in_connect)
        return;
    t->call = c;
    Coracle__V1__TunnelFrame f = CORACLE__V1__TUNNEL_FRAME__INIT;
    f.node = t->node;
    ktun_send(t, &f);
}

ktun_t *ktun_start(struct event_base *base, gcl_t *g, const struct ktun_opts *opts)
{
    struct ktun *t = xcalloc(1, sizeof(*t));
    t->base = base;
    t->g = g;
    t->node = xstrdup(opts->node);
    t->runc = xstrdup(opts->runc ? opts->runc : "runc");
    t->resolve = opts->resolve;
    t->arg = opts->arg;
    t->backoff_ms = KTUN_BACKOFF_MIN_MS;
    t->retry = evtimer_new(base, ktun_retry, t);
    ktun_connect(t);
    return t;
}

void ktun_free(ktun_t *t)
{
    event_free(t->retry);
    t->retry = NULL;
    while (t->sessions)
        ksess_free(t->sessions);
    if (t->call)
        gcl_call_cancel(t->call);
    free(t->node);
    free(t->runc);
    free(t);
}
