/*
 * sdnotify: sd_notify(3) over the $NOTIFY_SOCKET datagram socket. Written
 * directly (a dozen lines) so the daemons need no libsystemd at run time.
 * See sdnotify.h.
 */
#include "config.h"
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * systemd's variables, taken out of the environment before main() runs so
 * that no child inherits them: runc, given NOTIFY_SOCKET, would proxy it
 * into the container and make `runc start` wait for the container's own
 * READY=1; coracle-monitor and hooks must not ping our watchdog either.
 */
static char *sdn_socket, *sdn_wd_usec, *sdn_wd_pid;

__attribute__((constructor)) static void sdn_capture(void)
{
    static const struct {
        const char *name;
        char **dst;
    } vars[] = {{"NOTIFY_SOCKET", &sdn_socket},
                {"WATCHDOG_USEC", &sdn_wd_usec},
                {"WATCHDOG_PID", &sdn_wd_pid}};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i].name);
        if (v) {
            *vars[i].dst = strdup(v);
            unsetenv(vars[i].name);
        }
    }
}

/* The captured value, else the environment's (set later, as tests do). */
static const char *sdn_var(const char *captured, const char *name)
{
    return captured ? captured : getenv(name);
}

int sdn_send(const char *msg)
{
    const char *path = sdn_var(sdn_socket, "NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t plen = strlen(path);
    if (plen >= sizeof(sa.sun_path) || (path[0] != '/' && path[0] != '@'))
        return -EINVAL;
    memcpy(sa.sun_path, path, plen);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
    /* Never block the loop on a reader that does not read (a full queue drops the message). */
    ssize_t n =
        sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, salen);
    int rc = n < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int sdn_ready(const char *status)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "READY=1\nSTATUS=%s\nMAINPID=%ld", status ? status : "ready",
             (long)getpid());
    return sdn_send(buf);
}

int sdn_statusf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int off = snprintf(buf, sizeof(buf), "STATUS=");
    vsnprintf(buf + off, sizeof(buf) - (size_t)off, fmt, ap);
    va_end(ap);
    return sdn_send(buf);
}

int sdn_stopping(void)
{
    return sdn_send("STOPPING=1\nSTATUS=stopping");
}

int sdn_reloading(void)
{
    return sdn_send("RELOADING=1\nSTATUS=reloading configuration");
}

int sdn_reloaded(void)
{
    return sdn_send("READY=1\nSTATUS=configuration reloaded");
}

static void sdn_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    sdn_send("WATCHDOG=1");
}

struct event *sdn_watchdog_start(struct event_base *base)
{
    const char *usec = sdn_var(sdn_wd_usec, "WATCHDOG_USEC");
    const char *pid = sdn_var(sdn_wd_pid, "WATCHDOG_PID");
    if (!usec || !sdn_var(sdn_socket, "NOTIFY_SOCKET"))
        return NULL;
    if (pid && strtol(pid, NULL, 10) != (long)getpid())
        return NULL;
    long long us = strtoll(usec, NULL, 10);
    if (us <= 0)
        return NULL;
    us /= 2;
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
    struct event *ev = event_new(base, -1, EV_PERSIST, sdn_watchdog_cb, NULL);
    event_add(ev, &tv);
    sdn_send("WATCHDOG=1");
    return ev;
}

struct sdn_status {
    struct event *ev;
    sdn_status_fn fn;
    void *arg;
    char last[256];
};

static void sdn_status_cb(evutil_socket_t fd, short what, void *arg)
{
    struct sdn_status *st = arg;
    char buf[256] = "";
    st->fn(buf, sizeof(buf), st->arg);
    if (!buf[0] || !strcmp(buf, st->last))
        return;
    if (sdn_statusf("%s", buf) == 0)
        memcpy(st->last, buf, sizeof(buf));
}

sdn_status_t *sdn_status_start(struct event_base *base, int period_s, sdn_status_fn fn, void *arg)
{
    if (!sdn_var(sdn_socket, "NOTIFY_SOCKET") || period_s <= 0)
        return NULL;
    struct sdn_status *st = xcalloc(1, sizeof(*st));
    st->fn = fn;
    st->arg = arg;
    st->ev = event_new(base, -1, EV_PERSIST, sdn_status_cb, st);
    struct timeval tv = {period_s, 0};
    event_add(st->ev, &tv);
    return st;
}

void sdn_status_free(sdn_status_t *st)
{
    if (!st)
        return;
    event_free(st->ev);
    free(st);
}
