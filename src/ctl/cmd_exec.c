/*
 * cmd_exec: `coraclectl exec [-i] [-t] [-c C] POD -- CMD...` over the bidi
 * call /coracle.v1.Pods/Exec: the first ExecInput carries the ExecRequest,
 * then stdin bytes and terminal sizes; ExecOutput brings stdout/stderr and,
 * last, the exit code, which becomes ours. With -t the local terminal is
 * put in raw mode and restored on every way out. `coraclectl attach [-i]
 * [-t] [-c C] POD` is the same call with the request's attach flag and no
 * command: the container's output from now on (and its stdin, if it keeps
 * one), until it ends.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "grpc.h"

/* (exec and attach take the same flags) */
#define EXEC_OPTIONS                                                                               \
    "Options:\n"                                                                                   \
    "  -c, --container='': Container name. If omitted, the first container in the pod.\n"          \
    "  -i, --stdin=false: Pass stdin to the container.\n"                                          \
    "  -t, --tty=false: Stdin is a TTY.\n"                                                         \
    "  -n, --namespace='': The namespace (default \"default\").\n"                                 \
    "\n"

static const char exec_help[] =
    "Execute a command in a container.\n"
    "\n"
    "Examples:\n"
    "  # Get output from running 'date' in the first container of pod nginx\n"
    "  coraclectl exec nginx -- date\n"
    "\n"
    "  # Open an interactive shell in container busybox of pod nginx\n"
    "  coraclectl exec -it nginx -c busybox -- sh\n"
    "\n" EXEC_OPTIONS "Usage:\n"
    "  coraclectl exec (POD | TYPE/NAME) [-c CONTAINER] [flags] -- COMMAND [args...]\n";

static const char attach_help[] =
    "Attach to a process that is already running inside an existing container.\n"
    "\n"
    "Examples:\n"
    "  # Get output from running pod mypod\n"
    "  coraclectl attach mypod\n"
    "\n"
    "  # Send stdin to container c of pod mypod (its spec says stdin: true)\n"
    "  coraclectl attach -i mypod -c c\n"
    "\n" EXEC_OPTIONS "Usage:\n"
    "  coraclectl attach (POD | TYPE/NAME) [-c CONTAINER] [flags]\n";

static struct termios saved_tio;
static int tio_saved, saved_flags = -1;

/* Puts stdin back as it was (terminal mode, blocking): the shell shares it. */
static void tty_restore(void)
{
    if (tio_saved) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_tio);
        tio_saved = 0;
    }
    if (saved_flags >= 0) {
        fcntl(STDIN_FILENO, F_SETFL, saved_flags);
        saved_flags = -1;
    }
}

static int tty_raw(void)
{
    struct termios t;
    if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
        return -1;
    tio_saved = 1;
    atexit(tty_restore);
    t = saved_tio;
    cfmakeraw(&t);
    return tcsetattr(STDIN_FILENO, TCSADRAIN, &t);
}

struct exec_state {
    struct ctl_client *c;
    gcl_call_t *call;
    struct event *in_ev, *winch_ev;
    int code, exit_code, have_exit;
    char *msg;
};

static void send_input(struct exec_state *s, Coracle__V1__ExecInput *in)
{
    if (s->call && gcl_call_send(s->call, &in->base) < 0)
        log_debug("exec: send failed");
}

static void send_size(struct exec_state *s)
{
    struct winsize ws;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
        return;
    Coracle__V1__TerminalSize sz = CORACLE__V1__TERMINAL_SIZE__INIT;
    sz.has_width = sz.has_height = 1;
    sz.width = ws.ws_col;
    sz.height = ws.ws_row;
    Coracle__V1__ExecInput in = CORACLE__V1__EXEC_INPUT__INIT;
    in.resize = &sz;
    send_input(s, &in);
}

static void stdin_closed(struct exec_state *s)
{
    Coracle__V1__ExecInput in = CORACLE__V1__EXEC_INPUT__INIT;
    in.has_stdinclosed = 1;
    in.stdinclosed = 1;
    send_input(s, &in);
    if (s->call)
        gcl_call_close_send(s->call);
}

static void send_stdin(struct exec_state *s, const void *data, size_t n)
{
    Coracle__V1__ExecInput in = CORACLE__V1__EXEC_INPUT__INIT;
    in.has_stdin = 1;
    in.stdin.data = (uint8_t *)data;
    in.stdin.len = n;
    send_input(s, &in);
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
    struct exec_state *s = arg;
    char buf[16384];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        event_del(s->in_ev);
        stdin_closed(s);
        return;
    }
    send_stdin(s, buf, (size_t)n);
}

static void winch_cb(evutil_socket_t fd, short what, void *arg)
{
    send_size(arg);
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void exec_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    struct exec_state *s = arg;
    Coracle__V1__ExecOutput *out = coracle__v1__exec_output__unpack(NULL, len, msg);
    if (!out)
        return;
    if (out->has_stdout)
        write_all(STDOUT_FILENO, out->stdout.data, out->stdout.len);
    if (out->has_stderr)
        write_all(STDERR_FILENO, out->stderr.data, out->stderr.len);
    if (out->has_exitcode) {
        s->have_exit = 1;
        s->exit_code = out->exitcode;
    }
    coracle__v1__exec_output__free_unpacked(out, NULL);
}

static void exec_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct exec_state *s = arg;
    s->call = NULL;
    s->code = code;
    s->msg = xstrdup(message ? message : "");
    event_base_loopbreak(s->c->base);
}

/* A command line's arguments: 0, or 1 after saying what is wrong. */
static int exec_args(const struct ctl_strv *pos, int dashdash, bool attach)
{
    if (attach && pos->n != 1) {
        fprintf(stderr,
                pos->n ? "error: expected POD, TYPE/NAME, or TYPE NAME, saw %zu arguments\n"
                       : "error: at least 1 argument is required for attach\n",
                pos->n);
        return 1;
    }
    if (attach)
        return 0;
    if (pos->n < 1 || dashdash == 0) {
        fprintf(stderr, "error: pod or type/name must be specified\n");
        return 1;
    }
    if (pos->n < 2) {
        fprintf(stderr, "error: you must specify at least one command for the container\n");
        return 1;
    }
    return 0;
}

static int exec_run(int argc, char **argv, bool attach)
{
    const char *container = NULL;
    bool use_stdin = false, tty = false;
    const struct ctl_flag flags[] = {
        {"container", 'c', CTL_FLAG_STR, &container, NULL},
        {"stdin", 'i', CTL_FLAG_BOOL, &use_stdin, NULL},
        {"tty", 't', CTL_FLAG_BOOL, &tty, NULL},
    };
    struct ctl_strv pos;
    struct ctl_client c;
    char *pod = NULL, *cname = NULL;
    int dashdash, rc = 1;

    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, &dashdash) < 0)
        return 1;
    if (ctl_g.help) {
        fputs(attach ? attach_help : exec_help, stdout);
        free(pos.v);
        return 0;
    }
    if (exec_args(&pos, dashdash, attach)) {
        free(pos.v);
        return 1;
    }
    if (tty && !use_stdin) {
        fprintf(stderr, "Unable to use a TTY - input is not attached (use -i)\n");
        tty = false;
    }
    if (tty && !isatty(STDIN_FILENO)) {
        fprintf(stderr, "Unable to use a TTY - input is not a terminal or the right kind of "
                        "file\n");
        tty = false;
    }
    if (ctl_client_open(&c) < 0) {
        free(pos.v);
        return 1;
    }
    if (ctl_pod_container(&c, pos.v[0], container, &pod, &cname) < 0)
        goto out;

    struct exec_state s = {.c = &c, .code = -1};
    Coracle__V1__ExecRequest req = CORACLE__V1__EXEC_REQUEST__INIT;
    req.namespace_ = (char *)ctl_namespace();
    req.name = pod;
    req.container = cname;
    req.n_command = pos.n - 1;
    req.command = (char **)(pos.v + 1);
    req.has_attach = req.attach = attach;
    req.has_stdin = req.has_tty = 1;
    req.stdin = use_stdin;
    req.tty = tty;
    Coracle__V1__ExecInput first = CORACLE__V1__EXEC_INPUT__INIT;
    first.request = &req;
    /* The first message carries the terminal size, so the remote command
     * never starts with a wrong one. */
    struct winsize ws0;
    Coracle__V1__TerminalSize sz0 = CORACLE__V1__TERMINAL_SIZE__INIT;
    if (tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws0) == 0) {
        sz0.has_width = sz0.has_height = 1;
        sz0.width = ws0.ws_col;
        sz0.height = ws0.ws_row;
        first.resize = &sz0;
    }
    s.call = gcl_call_bidi(c.g, "/coracle.v1.Pods/Exec", exec_msg, exec_done, &s);
    send_input(&s, &first);
    if (tty) {
        s.winch_ev = evsignal_new(c.base, SIGWINCH, winch_cb, &s);
        event_add(s.winch_ev, NULL);
        if (tty_raw() < 0)
            fprintf(stderr, "warning: cannot put the terminal in raw mode: %s\n", strerror(errno));
    }
    if (use_stdin) {
        struct stat st;
        if (fstat(STDIN_FILENO, &st) == 0 &&
            (S_ISREG(st.st_mode) || (S_ISCHR(st.st_mode) && !isatty(STDIN_FILENO)))) {
            /* epoll takes neither regular files nor /dev/null: send it all at once */
            char buf[16384];
            ssize_t n;
            while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
                send_stdin(&s, buf, (size_t)n);
            stdin_closed(&s);
        } else {
            saved_flags = fcntl(STDIN_FILENO, F_GETFL);
            if (saved_flags >= 0) {
                atexit(tty_restore);
                fcntl(STDIN_FILENO, F_SETFL, saved_flags | O_NONBLOCK);
            }
            s.in_ev = event_new(c.base, STDIN_FILENO, EV_READ | EV_PERSIST, stdin_cb, &s);
            event_add(s.in_ev, NULL);
        }
    } else
        stdin_closed(&s);
    if (s.code < 0)
        event_base_dispatch(c.base);
    tty_restore();
    if (s.in_ev)
        event_free(s.in_ev);
    if (s.winch_ev)
        event_free(s.winch_ev);
    if (s.code == GRPC_OK) {
        rc = s.have_exit ? s.exit_code : 0;
        if (rc)
            fprintf(stderr, "command terminated with exit code %d\n", rc);
    } else if (s.code == GRPC_UNIMPLEMENTED)
        fprintf(stderr, "error: the server does not support exec yet (%s)\n",
                s.msg && *s.msg ? s.msg : "UNIMPLEMENTED");
    else
        ctl_print_error(&c, s.code, s.msg);
    free(s.msg);
out:
    free(pod);
    free(cname);
    ctl_client_close(&c);
    free(pos.v);
    return rc;
}

int ctl_cmd_exec(int argc, char **argv)
{
    return exec_run(argc, argv, false);
}

int ctl_cmd_attach(int argc, char **argv)
{
    return exec_run(argc, argv, true);
}
