/*
 * watch: the watch hub, the store's change listener. Every committed change
 * is matched against the interested watchers (indexed by kind, and pod
 * watchers by their spec.nodeName=X field selector, so a kubelet's watch
 * costs nothing for other nodes' pods), decoded at most once (only if some
 * watcher has selectors), and framed once per event type into an rbuf
 * shared by every matching stream. Watch(N) replays the store's log after
 * N, then goes live; the watcher's last sent revision removes the overlap.
 * N newer than the store's revision waits for it (events up to N are not
 * sent). N older than the compacted log is OUT_OF_RANGE.
 * REST watchers (watch_start_rest) get the same events as JSON lines or
 * Kubernetes' protobuf frames.
 * A watcher whose unsent bytes pass the cap is ended with
 * RESOURCE_EXHAUSTED; memory stays bounded however slow the client is.
 * A global budget bounds the sum: when the memory held by unsent events
 * (the frames still queued anywhere, counted once however many streams
 * share them, plus the queues' slots, plus changes not yet fanned out)
 * passes memory_limit, the watchers whose queues (at least 64 KiB) have
 * not moved for longest, the biggest first among those stuck as long,
 * are ended the same way until the total is back under 7/8 of it.
 * An ended watcher's unsent messages are freed at once (h2s_call_abort).
 * Loop thread only.
 */
#ifndef CORACLE_WATCH_H
#define CORACLE_WATCH_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "h2s.h"
#include "kinds.h"
#include "rpool.h"
#include "store.h"

typedef struct watch_hub watch_hub_t;

struct watch_config {
    size_t queue_bytes;      /* per-watcher cap on unsent bytes (default 16 MiB) */
    int bookmark_interval_s; /* BOOKMARK period for watchers that allow them (default 60) */
    size_t memory_limit;     /* cap on the memory all watches' unsent events hold (256 MiB) */
    h2s_t *srv;              /* its queues' own memory counts too (h2s_stats.queue_mem) */
    rpool_t *pool;           /* reads a big initial state off the loop */
};

watch_hub_t *watch_hub_new(struct event_base *base, store_t *st, const struct watch_config *cfg);
/* Ends every watch with OK (clean end of stream) and frees the hub. */
void watch_hub_free(watch_hub_t *h);
/* Ends every watch with OK; the hub stays usable (shutdown step). */
void watch_hub_end_all(watch_hub_t *h);

/* The store listener: call for each committed change, in order. */
void watch_on_change(watch_hub_t *h, const struct store_change *ch);

/*
 * Starts a watch on call for kind k with the request req (a decoded
 * ListRequest). Answers errors itself (INVALID_ARGUMENT, OUT_OF_RANGE).
 * on_end(arg, code) runs once when the call ends (code -1: the client
 * went away).
 */
void watch_start(watch_hub_t *h, h2s_call_t *call, const struct kind *k,
                 const Coracle__V1__ListRequest *req, void (*on_end)(void *arg, int code),
                 void *arg);

/* A REST watch's encoding of events. */
enum watch_enc {
    WATCH_JSON,     /* JSON lines {"type":...,"object":...} */
    WATCH_TABLE,    /* the same, each object the meta.k8s.io/v1 Table of the event's object */
    WATCH_PROTOBUF, /* Kubernetes' protobuf frames (kpb.h) */
};

struct watch_rest_opts {
    enum watch_enc enc;
    bool pb_errors; /* a Status answered before the first event is protobuf (not JSON) */
    /*
     * WatchList (sendInitialEvents=true): without a resourceVersion to start
     * from, the initial state ends with a BOOKMARK (if the request allows
     * them) annotated k8s.io/initial-events-end: "true", at its revision.
     */
    bool initial_end;
};

/*
 * The same for a REST request (r), encoded as o says: each event made
 * once per change and format for all REST watchers, as the gRPC frames
 * are. A Table watcher's first event carries the column definitions, the
 * later ones not (as Kubernetes sends them): both forms are shared.
 * Errors before the first event are Status answers (400...); Expired (a
 * resourceVersion older than the log) and later errors are an ERROR
 * event, then the end of the stream.
 */
void watch_start_rest(watch_hub_t *h, h2s_req_t *r, const struct watch_rest_opts *o,
                      const struct kind *k, const Coracle__V1__ListRequest *req,
                      void (*on_end)(void *arg, int code), void *arg);

struct watch_stats {
    uint64_t watchers, events_sent, bytes_queued_max, cut_slow;
    uint64_t cut_budget; /* of cut_slow: ended by the global memory budget */
    uint64_t held;       /* bytes unsent events hold now (what the budget counts) */
    uint64_t pending;    /* changes waiting to be fanned out */
    /* of watchers: pod watchers reached through the spec.nodeName index (a change
     * costs them nothing unless it is their node's) */
    uint64_t by_node;
};
void watch_get_stats(const watch_hub_t *h, struct watch_stats *out);

#endif
