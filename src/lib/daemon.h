/*
 * daemon: what coracle-apiserver, coracle-scheduler and coracle-kubelet
 * share around their one event loop, so the three behave alike under
 * systemd and by hand:
 *
 *  - SIGPIPE ignored (a peer that closed must not kill the process);
 *  - SIGTERM and SIGINT stop: STOPPING=1, /readyz answers 503, the
 *    daemon's stop hook runs once, and the loop ends when its drained hook
 *    says the accepted work is done (at most DAEMON_DRAIN_MS later), at
 *    once without one. A second signal while stopping is ignored;
 *  - SIGHUP reloads: RELOADING=1, log-level re-read from the configuration
 *    file (other keys apply at the next start), the daemon's reload hook
 *    (the apiserver's token and policy files), READY=1;
 *  - READY=1 with STATUS= from the describe hook once the loop runs,
 *    STATUS= every 10 s when it changed, WATCHDOG=1 at half
 *    $WATCHDOG_USEC (sdnotify.h);
 *  - optionally /healthz, /readyz and /metrics on an address of their own
 *    (obs.h);
 *  - reading a bearer-token file (--token-file).
 *
 * Everything runs on the caller's loop; nothing is process-wide but the
 * signal dispositions the kernel keeps per process.
 */
#ifndef CORACLE_DAEMON_H
#define CORACLE_DAEMON_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>

#include "sdnotify.h"

/* How long a stop waits for the drained hook before the loop ends anyway. */
#define DAEMON_DRAIN_MS 2000

typedef struct daemon daemon_t;

/* The daemon's own parts. Every hook may be NULL; each gets arg. */
struct daemon_ops {
    /* STATUS= for `systemctl status` ("3 pods, 4 containers running"). */
    sdn_status_fn describe;
    /* SIGHUP, after the log-level: re-read what else may change while running. */
    void (*reload)(void *arg);
    /* SIGTERM/SIGINT, once: stop taking new work. */
    void (*stop)(void *arg);
    /* After stop, polled every 10 ms: true once the work taken is finished. */
    bool (*drained)(void *arg);
    /* The health endpoint: /readyz answers 200 while ready (NULL: while not stopping). */
    bool (*ready)(void *arg);
    /* The health endpoint's /metrics: the Prometheus text of the daemon's metrics. */
    void (*metrics)(FILE *f, void *arg);
    void *arg;
};

/*
 * Ignores SIGPIPE and handles SIGTERM, SIGINT and SIGHUP on base. config
 * is the configuration file SIGHUP re-reads (obs_config_path), or NULL;
 * it is borrowed and must outlive the daemon (argv or a static string).
 * ops is copied. Returns the daemon (daemon_free).
 */
daemon_t *daemon_new(struct event_base *base, const char *config, const struct daemon_ops *ops);

/*
 * Serves /healthz, /readyz, /metrics on addr ("host:port" or
 * "unix:/path"). An empty addr turns the endpoint off (returns -1 quietly);
 * one that cannot be listened on is logged and returns -1: a daemon's work
 * matters more than its health endpoint. 0 when serving.
 */
int daemon_serve_health(daemon_t *d, const char *addr);

/*
 * Runs the loop: starts the watchdog pings, sends READY=1 (STATUS= from
 * the describe hook, else status), keeps STATUS= current, and returns once
 * a stop has drained. The daemon's objects are still alive; free them, then
 * the daemon.
 */
void daemon_run(daemon_t *d, const char *status);

/* Frees the signal events and the health endpoint. NULL is a no-op. */
void daemon_free(daemon_t *d);

/*
 * Reads a bearer-token file as Kubernetes reads --token-file and a
 * kubeconfig's tokenFile: the whole file, surrounding whitespace trimmed.
 * Returns 0 and *token (malloc'd, the caller's), or -1 and *err (malloc'd,
 * naming the file) when it cannot be read, is empty, or the token holds a
 * control character (a header cannot carry it).
 */
int daemon_read_token(const char *path, char **token, char **err);

#endif
