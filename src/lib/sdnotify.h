/*
 * sdnotify: the systemd service notification protocol (sd_notify(3)) for
 * Type=notify units: READY=1 once serving, STATUS= lines, STOPPING=1,
 * RELOADING=1, and WATCHDOG=1 pings sent from the event loop itself, so a
 * stuck loop stops pinging and systemd restarts the daemon. Without
 * $NOTIFY_SOCKET every call is a no-op. A program linking this file loses
 * $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID from its environment
 * before main() (kept here), so its children (runc, monitors) never see them.
 */
#ifndef CORACLE_SDNOTIFY_H
#define CORACLE_SDNOTIFY_H

#include <event2/event.h>

#include "util.h"

/* Sends one notification ("READY=1\nSTATUS=serving"). Returns 0, or -errno; 0 when not under
 * systemd. */
int sdn_send(const char *msg);
int sdn_ready(const char *status);
int sdn_statusf(const char *fmt, ...) PRINTF(1, 2);
int sdn_stopping(void);
int sdn_reloading(void);
/* After a reload: READY=1 again. */
int sdn_reloaded(void);

/*
 * If $WATCHDOG_USEC is set (and $WATCHDOG_PID is ours or unset), starts a
 * timer on base that sends WATCHDOG=1 every half interval. Returns the
 * timer (free with event_free) or NULL.
 */
struct event *sdn_watchdog_start(struct event_base *base);

/*
 * Under systemd, every period_s seconds calls fn to describe what the
 * daemon is doing ("3 pods, 4 containers running") and sends it as STATUS=
 * when it changed (`systemctl status` shows it). Returns NULL without
 * $NOTIFY_SOCKET. sdn_status_free(NULL) is a no-op.
 */
typedef struct sdn_status sdn_status_t;
typedef void (*sdn_status_fn)(char *buf, size_t len, void *arg);
sdn_status_t *sdn_status_start(struct event_base *base, int period_s, sdn_status_fn fn, void *arg);
void sdn_status_free(sdn_status_t *st);

#endif
