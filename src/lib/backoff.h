/*
 * backoff: per-key exponential back-off, as Kubernetes' flowcontrol.Backoff
 * (k8s.io/client-go/util/flowcontrol/backoff.go) without jitter, which the
 * kubelet uses for image pulls: a failure at t starts a window of base ns,
 * each failure while the key is remembered doubles it up to max; a key is
 * forgotten when nothing happened to it for 2 * max (it is "stable"), or
 * by backoff_reset.
 *
 * Times are whatever clock the caller uses consistently (mono_ns()). Keys
 * are copied. Not thread-safe: one thread (the event loop).
 */
#ifndef CORACLE_BACKOFF_H
#define CORACLE_BACKOFF_H

#include <stdint.h>

typedef struct backoff backoff_t;

/* A table with windows of base ns doubling to max ns. Free with backoff_free. */
backoff_t *backoff_new(int64_t base, int64_t max);
void backoff_free(backoff_t *b);
/* Records a failure of key at now; returns the new window (ns). */
int64_t backoff_next(backoff_t *b, const char *key, int64_t now);
/* ns left of key's window at now (IsInBackOffSinceUpdate: now - last failure < window),
 * or 0 when key may be tried. */
int64_t backoff_wait(const backoff_t *b, const char *key, int64_t now);
/* When key's last failure was recorded, or 0 when it has none. */
int64_t backoff_last(const backoff_t *b, const char *key);
/* Forgets key (a success). */
void backoff_reset(backoff_t *b, const char *key);
/* Forgets every key that has been stable at now (no failure for 2 * max). */
void backoff_gc(backoff_t *b, int64_t now);

#endif
