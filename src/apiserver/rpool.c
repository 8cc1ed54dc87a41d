/*
 * rpool: see rpool.h. Two queues under one mutex: todo (the loop pushes,
 * the worker pops, a condition variable wakes it) and done (the worker
 * pushes, the loop takes all of it when an eventfd says there is some).
 */
#include "config.h"
#include "rpool.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct rpool {
    pthread_t thread;
    bool started, stop; /* stop: under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rjob *todo, *todo_tail; /* mu */
    struct rjob *done, *done_tail; /* mu */
    int efd;                       /* the worker's wake-up call to the loop */
    struct event *ev;
};

static void push(struct rjob **head, struct rjob **tail, struct rjob *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

/*
 * Below the loop and the commit thread: on a machine of two cores the
 * worker's bulk work would otherwise take the CPU the loop needs to answer
 * (a nice value is per thread on Linux).
 */
#define WORKER_NICE 10

static void *worker(void *arg)
{
    rpool_t *p = arg;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WORKER_NICE) < 0)
        log_warn("read worker: setpriority: %s", strerror(errno));
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->todo && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        struct rjob *j = p->todo;
        if (!j)
            break;
        p->todo = j->next;
        if (!p->todo)
            p->todo_tail = NULL;
        pthread_mutex_unlock(&p->mu);
        j->deadline = INT64_MAX;
        if (!rjob_cancelled(j))
            j->work(j);
        pthread_mutex_lock(&p->mu);
        bool wake = !p->done;
        push(&p->done, &p->done_tail, j);
        if (wake) {
            uint64_t one = 1;
            if (write(p->efd, &one, sizeof(one)) < 0)
                log_err("read worker: eventfd write: %s", strerror(errno));
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Runs the done callbacks of what the worker finished (loop thread). */
static void collect(rpool_t *p)
{
    pthread_mutex_lock(&p->mu);
    struct rjob *j = p->done;
    p->done = p->done_tail = NULL;
    pthread_mutex_unlock(&p->mu);
    while (j) {
        struct rjob *next = j->next;
        j->done(j, rjob_cancelled(j));
        j = next;
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        log_err("read worker: eventfd read: %s", strerror(errno));
    collect(arg);
}

rpool_t *rpool_new(struct event_base *base)
{
    rpool_t *p = xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        log_err("read worker: eventfd: %s", strerror(errno));
        abort();
    }
    p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, wake_cb, p);
    event_add(p->ev, NULL);
    return p;
}

void rpool_submit(rpool_t *p, struct rjob *j)
{
    atomic_init(&j->cancelled, false);
    if (!p->started) {
        int e = pthread_create(&p->thread, NULL, worker, p);
        if (e) {
            log_err("read worker: pthread_create: %s", strerror(e));
            abort();
        }
        p->started = true;
    }
    pthread_mutex_lock(&p->mu);
    push(&p->todo, &p->todo_tail, j);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void rjob_cancel(struct rjob *j)
{
    atomic_store(&j->cancelled, true);
}

bool rjob_cancelled(struct rjob *j)
{
    return atomic_load_explicit(&j->cancelled, memory_order_relaxed);
}

bool rjob_past(struct rjob *j)
{
    return rjob_cancelled(j) || (j->deadline != INT64_MAX && mono_ns() >= j->deadline);
}

void rpool_end(rpool_t *p)
{
    if (!p)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        p->started = false;
        p->stop = false;
    }
    collect(p);
}

void rpool_free(rpool_t *p)
{
    if (!p)
        return;
    rpool_end(p);
    event_free(p->ev);
    close(p->efd);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
