/*
 * leader: leader election through a coordination.k8s.io Lease, as
 * client-go's leaderelection package does it, so that of several copies of
 * a daemon (coracle-scheduler) exactly one works at a time and another
 * takes over when it goes.
 *
 * Each candidate has an identity ("<hostname>_<uuid>", as Kubernetes'
 * components use). The Lease (e.g. kube-system/coracle-scheduler) records
 * the holder, leaseDurationSeconds, acquireTime, renewTime and
 * leaseTransitions (counted up on each change of holder). Every write is
 * an Update carrying the resourceVersion that was read: of two candidates
 * racing, one wins and the other gets a Conflict.
 *
 * A candidate tries every retry period (with jitter, 1 to 2.2 times) until
 * it holds the Lease. It creates a missing Lease and takes one whose
 * holder is empty; a held Lease it takes only once it has seen the same
 * record unchanged for leaseDurationSeconds on its own clock (client-go's
 * observedTime: clocks of different machines are never compared). The
 * leader renews every retry period; when a renewal due has not succeeded
 * within the renew deadline, or the Lease shows another holder, it stops leading
 * (on_stopped) and tries no more: the daemon is expected to exit, as
 * kube-scheduler does, and to be restarted. leader_release gives the
 * Lease up on a clean shutdown (holder emptied, leaseDurationSeconds 1)
 * so a standby takes over at its next try.
 *
 * Logs as client-go does ("attempting to acquire leader lease NS/NAME...",
 * "successfully acquired lease NS/NAME", "failed to renew lease NS/NAME:
 * ..."), and writes the "<identity> became leader" event (reason
 * LeaderElection, on the Lease) Kubernetes writes.
 *
 * Runs on the caller's loop through a gcl_t; not thread-safe.
 */
#ifndef CORACLE_LEADER_H
#define CORACLE_LEADER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>

#include "gcl.h"

#include <protobuf-c/protobuf-c.h>

typedef struct leader leader_t;

struct leader_cfg {
    const char *ns;                /* the Lease's namespace ("kube-system") */
    const char *name;              /* its name: the component ("coracle-scheduler") */
    const char *identity;          /* NULL: "<hostname>_<uuid v4>" */
    const char *component;         /* the events' source component; NULL: name */
    int lease_duration_ms;         /* how long a standby waits on an unchanged record (15000) */
    int renew_deadline_ms;         /* the leader gives up after so long without a renewal (10000) */
    int retry_period_ms;           /* between tries and renewals (2000) */
    void (*on_started)(void *arg); /* this candidate became the leader */
    void (*on_stopped)(void *arg); /* it stopped leading (not after leader_release) */
    void *arg;
};

/*
 * Validates and copies cfg (the strings too). Returns NULL and *err
 * (malloc'd) when the durations do not satisfy lease duration > renew
 * deadline > 1.2 x retry period (client-go's rule) or a name is missing.
 * g is borrowed and must outlive the elector; a gcl_t of its own keeps
 * renewals clear of the daemon's other traffic. Does nothing until
 * leader_start.
 */
leader_t *leader_new(struct event_base *base, gcl_t *g, const struct leader_cfg *cfg, char **err);
/* Logs "attempting to acquire..." and makes the first try from the loop. */
void leader_start(leader_t *l);
/*
 * An elector that reaches the Leases other than as a client over gRPC: the
 * apiserver elects among its peers through its own store. call starts a
 * Leases method ("Get" with a GetRequest, "Create" or "Update" with a
 * Lease) and calls done once, maybe before returning: code GRPC_OK and the
 * Lease's bytes, or a gRPC code and message (both valid during the call);
 * it returns a handle for cancel, or NULL if done already ran. cancel
 * forgets a call (done never runs). event creates an Event, fire and
 * forget (req valid during the call). The same rules as leader_new
 * otherwise; io is copied, io->arg borrowed. leader_release starts its
 * Update through call and returns: the caller lets that call finish
 * (its done may run after leader_free) before it stops.
 */
typedef void (*leader_io_done_fn)(void *arg, int code, const char *msg, const void *lease,
                                  size_t len);
struct leader_io {
    void *(*call)(void *io_arg, const char *method, const ProtobufCMessage *req,
                  leader_io_done_fn done, void *arg);
    void (*cancel)(void *io_arg, void *call);
    void (*event)(void *io_arg, const ProtobufCMessage *ev);
    void *io_arg;
};
leader_t *leader_new_io(struct event_base *base, const struct leader_io *io,
                        const struct leader_cfg *cfg, char **err);

/*
 * If leading: stops renewing and gives the Lease up, running the loop for
 * at most timeout_ms (call it after the daemon's loop ended and its work
 * stopped). Returns 0 when released or not leading, -1 (logged) if the
 * apiserver did not take it; the Lease then expires as after a crash.
 * on_stopped does not run. (An io elector's release only starts here,
 * timeout_ms unused: see leader_new_io.)
 */
int leader_release(leader_t *l, int timeout_ms);
/* Cancels the open call and the timers and frees. NULL is a no-op. */
void leader_free(leader_t *l);

bool leader_is_leader(const leader_t *l);
/* This candidate's identity; valid while l lives. */
const char *leader_identity(const leader_t *l);
/* The holder last seen on the Lease ("" if none or not read yet); valid until the loop runs. */
const char *leader_holder(const leader_t *l);
/* leader_election_master_status{name="NAME"} (client-go's metric) for /metrics. */
void leader_metrics_write(FILE *f, const leader_t *l);

/*
 * The --leader-elect* flags of a daemon that elects (kube-scheduler's and
 * kube-controller-manager's names and defaults): LEADER_CFG_OPTS(f, WHO,
 * NAME) expands to their six cfg_opt entries, WHO saying who elects
 * ("schedulers") and NAME the default Lease name, both string literals.
 */
struct leader_flags {
    int elect;                      /* --leader-elect (default true) */
    char *duration, *renew, *retry; /* Go durations: 15s, 10s, 2s */
    char *name, *ns;                /* the Lease: NAME, kube-system */
};
#define LEADER_FLAGS_INIT(NAME)                                                                    \
    {                                                                                              \
        1, "15s", "10s", "2s", NAME, "kube-system"                                                 \
    }
#define LEADER_CFG_OPTS(f, WHO, NAME)                                                              \
    {"leader-elect", CFG_BOOL, &(f).elect, NULL,                                                   \
     "of several " WHO ", only the holder of a Lease acts (default true)"},                        \
        {"leader-elect-lease-duration", CFG_STR, &(f).duration, "DURATION",                        \
         "how long a standby waits on an unrenewed Lease before taking it (default 15s)"},         \
        {"leader-elect-renew-deadline", CFG_STR, &(f).renew, "DURATION",                           \
         "the leader exits when it could not renew for this long (default 10s)"},                  \
        {"leader-elect-retry-period", CFG_STR, &(f).retry, "DURATION",                             \
         "between tries to acquire or renew (default 2s)"},                                        \
        {"leader-elect-resource-name", CFG_STR, &(f).name, "NAME",                                 \
         "the Lease's name (default " NAME ")"},                                                   \
    {                                                                                              \
        "leader-elect-resource-namespace", CFG_STR, &(f).ns, "NAMESPACE",                          \
            "the Lease's namespace (default kube-system)"                                          \
    }

/*
 * The elector the flags ask for (NULL when --leader-elect is false), on a
 * connection of its own to server (*eg; renewals stay clear of the
 * daemon's other calls) made from o with user_agent "<ua> leader-election".
 * component names the events' source. Exits the program with status 2 and
 * a message naming the flag when a duration is bad or they do not fit
 * together (prog: the program's name).
 */
leader_t *leader_from_flags(struct event_base *base, const char *prog, const char *server,
                            struct gcl_opts o, const char *ua, const struct leader_flags *f,
                            const char *component, void (*on_started)(void *),
                            void (*on_stopped)(void *), void *arg, gcl_t **eg);

#endif
