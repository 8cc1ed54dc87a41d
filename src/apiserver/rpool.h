/*
 * rpool: the read worker. One thread, started with the first job, runs
 * jobs that would hold the event loop too long (a List over many objects
 * or with a huge selector, a watch's initial state) and hands each back to
 * the loop when done. A job reads from an LMDB snapshot the loop began (the
 * store is MDB_NOTLS, so a read transaction may be read on another thread)
 * and that the loop ends; the worker touches nothing else of the loop's.
 *
 * A job is one struct the caller embeds (struct rjob as a member) and owns.
 * Between rpool_submit and its done callback only the worker touches it,
 * but for rjob_cancel, which the loop may call at any time (the client went
 * away): work should look at rjob_cancelled between items and stop early.
 */
#ifndef CORACLE_RPOOL_H
#define CORACLE_RPOOL_H

#include <event2/event.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rpool rpool_t;

struct rjob {
    /*
     * Work that starts on the loop and may move on to the worker stops when
     * rjob_spent says so: past deadline (mono_ns(); the worker sets it to
     * INT64_MAX before work) or cancelled.
     */
    int64_t deadline;
    unsigned unchecked;           /* calls since the clock was last read */
    void (*work)(struct rjob *j); /* on the worker thread */
    /* on the loop, once work returned (or was skipped: cancelled before it began) */
    void (*done)(struct rjob *j, bool cancelled);
    /* private */
    struct rjob *next;
    atomic_bool cancelled;
};

/* The worker's queues, answering on base. The thread starts with the first job. */
rpool_t *rpool_new(struct event_base *base);
/* Queues j (loop thread). Its done runs on the loop later, never from inside this call. */
void rpool_submit(rpool_t *p, struct rjob *j);
/* Marks j cancelled (loop thread); its done still runs, with cancelled true. */
void rjob_cancel(struct rjob *j);
/* Whether j was cancelled (either thread). */
bool rjob_cancelled(struct rjob *j);
/*
 * Whether to stop here: j cancelled, or past its deadline. Counts one item
 * of work and reads the clock every `every` items (1 for costly ones).
 */
bool rjob_past(struct rjob *j); /* the cancellation and the clock, without counting */
static inline bool rjob_spent(struct rjob *j, unsigned every)
{
    if (++j->unchecked < every)
        return false; /* inline: a List calls this for every item */
    j->unchecked = 0;
    return rjob_past(j);
}
/* The struct of type `type` that embeds j as its member `member`. */
#define RJOB_OWNER(j, type, member) ((type *)(void *)((char *)(j)-offsetof(type, member)))
/*
 * Waits for the worker to finish what it has (cancelled jobs stop early)
 * and runs every done callback left, then stops the thread. For shutdown:
 * after every call was closed, before the store closes. rpool_free does it
 * too.
 */
void rpool_end(rpool_t *p);
void rpool_free(rpool_t *p);

#endif
