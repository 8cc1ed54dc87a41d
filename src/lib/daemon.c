/*
 * daemon: signals, systemd notification, the health endpoint and the
 * token file of the three daemons, one way for all. See daemon.h.
 */
#include "config.h"
#include "daemon.h"

#include "obs.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX (64 * 1024) /* a token file beyond this is not a token */

struct daemon {
    struct event_base *base;
    const char *config; /* borrowed, may be NULL */
    struct daemon_ops ops;
    struct event *sigterm, *sigint, *sighup;
    bool stopping;       /* a stop signal came: later ones are ignored */
    struct event *drain; /* after a stop: polls ops.drained */
    int64_t drain_deadline;
    obs_t *obs; /* NULL: no health endpoint */
};

/* SIGHUP: log-level from the configuration file; a bad file changes nothing. */
static void reload_log_level(const char *path)
{
    static const char *const names[] = {"", "", "", "error", "warn", "notice", "info", "debug"};
    if (!path) {
        log_notice("SIGHUP: no config file; log-level unchanged");
        return;
    }
    char *err = NULL;
    int rc = obs_reload_log_level(path, &err);
    if (rc < 0) {
        log_err("SIGHUP: %s; keeping the current log-level", err);
        free(err);
    } else if (rc == 0) {
        log_notice("SIGHUP: %s sets no log-level; level unchanged", path);
    } else {
        int lvl = LOG_LVL_DEBUG;
        while (lvl > LOG_LVL_ERR && !log_enabled((enum log_level)lvl))
            lvl--;
        log_notice("SIGHUP: reloaded %s: log-level %s (other keys apply at restart)", path,
                   names[lvl]);
    }
}

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    daemon_t *d = arg;
    sdn_reloading();
    reload_log_level(d->config);
    if (d->ops.reload)
        d->ops.reload(d->ops.arg);
    sdn_reloaded();
}

/* After a stop: ends the loop once the daemon has drained, or at the deadline. */
static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    daemon_t *d = arg;
    if (d->ops.drained(d->ops.arg) || mono_ns() > d->drain_deadline)
        event_base_loopbreak(d->base);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    daemon_t *d = arg;
    if (d->stopping)
        return;
    d->stopping = true;
    log_info("signal %d (%s): stopping", (int)sig, strsignal((int)sig));
    sdn_stopping();
    obs_set_stopping(d->obs);
    if (d->ops.stop)
        d->ops.stop(d->ops.arg);
    if (!d->ops.drained) {
        event_base_loopbreak(d->base);
        return;
    }
    d->drain_deadline = mono_ns() + DAEMON_DRAIN_MS * 1000000LL;
    d->drain = event_new(d->base, -1, EV_PERSIST, drain_cb, d);
    struct timeval tv = {0, 10000};
    event_add(d->drain, &tv);
}

daemon_t *daemon_new(struct event_base *base, const char *config, const struct daemon_ops *ops)
{
    daemon_t *d = xcalloc(1, sizeof(*d));
    d->base = base;
    d->config = config;
    if (ops)
        d->ops = *ops;
    sigpipe_ignore();
    d->sigterm = evsignal_new(base, SIGTERM, on_stop, d);
    d->sigint = evsignal_new(base, SIGINT, on_stop, d);
    d->sighup = evsignal_new(base, SIGHUP, on_reload, d);
    evsignal_add(d->sigterm, NULL);
    evsignal_add(d->sigint, NULL);
    evsignal_add(d->sighup, NULL);
    return d;
}

int daemon_serve_health(daemon_t *d, const char *addr)
{
    if (!addr || !*addr)
        return -1;
    struct obs_ops oo = {.ready = d->ops.ready, .metrics = d->ops.metrics, .arg = d->ops.arg};
    char *err = NULL;
    d->obs = obs_start(d->base, addr, &oo, &err);
    if (!d->obs) {
        log_warn("healthz-listen: %s; serving no /healthz, /readyz, /metrics", err);
        free(err);
        return -1;
    }
    log_info("serving /healthz, /readyz, /metrics on %s", addr);
    return 0;
}

void daemon_run(daemon_t *d, const char *status)
{
    struct event *wd = sdn_watchdog_start(d->base);
    char buf[256] = "";
    if (d->ops.describe)
        d->ops.describe(buf, sizeof(buf), d->ops.arg);
    sdn_ready(buf[0] ? buf : status);
    sdn_status_t *st =
        d->ops.describe ? sdn_status_start(d->base, 10, d->ops.describe, d->ops.arg) : NULL;
    event_base_dispatch(d->base);
    sdn_status_free(st);
    if (wd)
        event_free(wd);
}

void daemon_free(daemon_t *d)
{
    if (!d)
        return;
    obs_free(d->obs);
    if (d->drain)
        event_free(d->drain);
    event_free(d->sigterm);
    event_free(d->sigint);
    event_free(d->sighup);
    free(d);
}

/* ---- token files ---- */

int daemon_read_token(const char *path, char **token, char **err)
{
    *token = NULL;
    *err = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = xasprintf("token-file %s: %s", path, strerror(errno));
        return -1;
    }
    /* one read past the limit tells a file too large from one just large */
    char *buf = xmalloc(TOKEN_MAX + 1);
    errno = 0;
    size_t n = fread(buf, 1, TOKEN_MAX + 1, f);
    int e = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (e || n > TOKEN_MAX) {
        *err = xasprintf("token-file %s: %s", path, e ? strerror(e) : "larger than 64 KiB");
        free(buf);
        return -1;
    }
    size_t start = 0;
    while (start < n && isspace((unsigned char)buf[start]))
        start++;
    while (n > start && isspace((unsigned char)buf[n - 1]))
        n--;
    for (size_t i = start; i < n; i++) {
        if (iscntrl((unsigned char)buf[i])) {
            *err = xasprintf("token-file %s: a control character inside the token (the file "
                             "holds one token on one line)",
                             path);
            free(buf);
            return -1;
        }
    }
    if (n == start) {
        *err = xasprintf("token-file %s: empty", path);
        free(buf);
        return -1;
    }
    *token = xstrndup(buf + start, n - start);
    free(buf);
    return 0;
}
