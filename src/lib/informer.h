/*
 * informer: a local, watch-maintained cache of one kind of object, the way
 * Kubernetes' client-go informers work (doc/DESIGN.md, "resourceVersion"). The scheduler uses it
 * for pods and nodes; the kubelet for its own pods (field selector
 * spec.nodeName=<node>).
 *
 * An informer lists (paging with limit/continue), then watches from the
 * list's resourceVersion with bookmarks. When the stream ends or the
 * connection drops it resumes from the last revision it saw (objects or
 * bookmarks); when the apiserver answers OUT_OF_RANGE ("too old resource
 * version") it lists again and reports the difference to what it held
 * (on_delete for vanished objects, on_update for changed ones, on_add for new
 * ones), so consumers stay consistent without ever seeing a gap. While the
 * apiserver is away it retries with exponential backoff and jitter (200 ms
 * doubling to 10 s), resetting after a success. Nothing polls.
 *
 * Runs on the caller's libevent loop through a gcl_t (shared with other
 * users); not thread-safe.
 *
 * Ownership: the informer's cache owns every object it holds (unpacked
 * protobuf-c messages of the kind's descriptor). Objects handed to callbacks
 * or returned by accessors stay valid only until control returns to the event
 * loop (for callbacks: until the callback returns; `old` in on_update and the
 * object in on_delete are freed right after). Keep a key ("ns/name") and look
 * it up again, or take a deep copy with inf_copy(). Callbacks must not free
 * the informer; they may call any accessor and start gcl calls.
 */
#ifndef CORACLE_INFORMER_H
#define CORACLE_INFORMER_H

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gcl.h"
#include "kinds.h"

typedef struct inf inf_t;

struct inf_handlers {
    /* A new object (also for each object of the initial list, before on_synced). */
    void (*on_add)(inf_t *inf, const ProtobufCMessage *obj, void *arg);
    /* A changed object: old is the cached version, new_obj replaces it. */
    void (*on_update)(inf_t *inf, const ProtobufCMessage *old, const ProtobufCMessage *new_obj,
                      void *arg);
    /* A deleted object (the last state seen: the watch's DELETED object, or the
     * cached version when a re-list finds it gone). */
    void (*on_delete)(inf_t *inf, const ProtobufCMessage *obj, void *arg);
    /* Once, after the initial list has been delivered through on_add. */
    void (*on_synced)(inf_t *inf, void *arg);
    void *arg;
};

struct inf_opts {
    const char *ns;             /* NULL or "": all namespaces */
    const char *label_selector; /* NULL: none ("app=web,tier!=db") */
    const char *field_selector; /* NULL: none ("spec.nodeName=node1") */
    int page_size;              /* List limit; 0 = 500 */
    int backoff_initial_ms;     /* 0 = 200 */
    int backoff_max_ms;         /* 0 = 10000 */
    /* Keep each object in one allocation (pb_compact): less memory for big
     * caches; the objects must then never be changed or freed by callers. */
    bool compact;
    /* Called on each object as it arrives, before it is cached and handed to
     * the handlers (client-go's SetTransform): may drop what the consumer
     * never reads, so that a big cache holds less. NULL: none. */
    void (*transform)(ProtobufCMessage *obj);
};

/*
 * Creates an informer for kind k over connection g (not owned; must outlive
 * the informer). Strings in opts are copied; h is copied. Does nothing until
 * inf_start.
 */
inf_t *inf_new(struct event_base *base, gcl_t *g, const struct kind *k, const struct inf_opts *opts,
               const struct inf_handlers *h);
/* Starts listing (from the event loop: callbacks run later, never inside). */
void inf_start(inf_t *inf);
/* Cancels the open call and timers and frees the cache (no callbacks). */
void inf_free(inf_t *inf);

const struct kind *inf_kind(const inf_t *inf);
/* True once the initial list has been delivered. */
bool inf_synced(const inf_t *inf);
/* Number of cached objects. */
size_t inf_count(const inf_t *inf);
/* The last revision seen (list, object or bookmark); 0 before the first list. */
uint64_t inf_revision(const inf_t *inf);
/* The cached object or NULL; ns is ignored for cluster-scoped kinds. */
const ProtobufCMessage *inf_get(const inf_t *inf, const char *ns, const char *name);
/* Looks up by key "ns/name" (cluster-scoped: "name"). */
const ProtobufCMessage *inf_get_key(const inf_t *inf, const char *key);
/* Calls fn for every cached object, in no particular order. fn must not
 * change the informer. Stops early (and returns that value) if fn returns
 * non-zero. */
int inf_foreach(const inf_t *inf, int (*fn)(const ProtobufCMessage *obj, void *arg), void *arg);

/* Counters for logs and tests. */
struct inf_stats {
    uint64_t lists;   /* completed lists (initial + re-lists) */
    uint64_t watches; /* watch calls started */
    uint64_t events;  /* watch events applied (incl. bookmarks) */
    uint64_t relists; /* re-lists caused by OUT_OF_RANGE or ERROR events */
    uint64_t retries; /* backoff waits */
};
void inf_get_stats(const inf_t *inf, struct inf_stats *st);

/* The cache key of an object: "ns/name" or "name" (malloc'd). */
char *inf_key_of(const ProtobufCMessage *obj);
/* A deep copy of obj (free with protobuf_c_message_free_unpacked(copy, NULL)). */
ProtobufCMessage *inf_copy(const ProtobufCMessage *obj);
/* metadata.resourceVersion as a number (0 if absent or not a number). */
uint64_t inf_obj_revision(const ProtobufCMessage *obj);

#endif
