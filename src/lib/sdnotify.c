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

int sdn_send(const char *msg)
{
    const char *path = getenv("NOTIFY_SOCKET");
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
    (void)fd;
    (void)what;
    (void)arg;
    sdn_send("WATCHDOG=1");
}

struct event *sdn_watchdog_start(struct event_base *base)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    if (!usec || !getenv("NOTIFY_SOCKET"))
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
