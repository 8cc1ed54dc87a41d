/*
 * events: what the apiserver does for Events beyond storing them: an
 * in-memory index of stored events by Kubernetes' correlation key (source
 * component/host, involvedObject kind/namespace/name/fieldPath/uid/
 * apiVersion, type, reason, message; and the event's namespace) so that a
 * repeat raises the existing event's count instead of adding one (rebuilt
 * from the store at start, kept current from committed changes), and the
 * TTL timer that deletes events whose lastTimestamp is older than
 * event-ttl. Loop thread only.
 */
#ifndef CORACLE_EVENTS_H
#define CORACLE_EVENTS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "kinds.h"
#include "store.h"

typedef struct events events_t;

/* expire(arg, ns, name) is called for each event past the TTL (it submits the delete). */
events_t *events_new(struct event_base *base, store_t *st, int64_t ttl_s,
                     void (*expire)(void *arg, const char *ns, const char *name), void *arg);
void events_free(events_t *e);
/* Stops the expiry timer (shutdown: the store closes next); the index stays usable. */
void events_stop(events_t *e);
void events_on_change(events_t *e, const struct store_change *ch);
/*
 * The name of a stored event that ev may repeat (the same correlation key's
 * hash), or NULL. Valid until the next change. Check with events_repeats
 * before counting ev on it.
 */
const char *events_find(events_t *e, const Coracle__V1__Event *ev);
/* Whether ev repeats stored: the same correlation key. */
bool events_repeats(const Coracle__V1__Event *stored, const Coracle__V1__Event *ev);

#endif
