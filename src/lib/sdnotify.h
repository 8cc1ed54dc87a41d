/*
 * sdnotify: the systemd service notification protocol (sd_notify(3)) for
 * Type=notify units: READY=1 once serving, STATUS= lines, STOPPING=1,
 * RELOADING=1, and WATCHDOG=1 pings sent from the event loop itself, so a
 * stuck loop stops pinging and systemd restarts the daemon. Without
 * $NOTIFY_SOCKET every call is a no-op.
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

#endif
