/*
 * loopchild.h: runs a client in a forked child while the test's event loop
 * serves (the server under test lives in the parent). For unit tests that
 * talk to h2s over real sockets.
 */
#ifndef CORACLE_LOOPCHILD_H
#define CORACLE_LOOPCHILD_H

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static void loop_child_tick(evutil_socket_t fd, short what, void *arg)
{
}

/*
 * Runs fn(arg) in a child (killed by alarm after 20 s) while base loops;
 * returns its exit code, 128 + signal if killed, 255 if it did not end in
 * 25 s.
 */
static inline int loop_child(struct event_base *base, int (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);
        _exit(fn(arg));
    }
    int status = 255, done = 0;
    int64_t end = mono_ns() + 25 * 1000000000LL;
    struct event *t = event_new(base, -1, EV_PERSIST, loop_child_tick, NULL);
    struct timeval tv = {0, 5000};
    event_add(t, &tv);
    while (!done && mono_ns() < end) {
        event_base_loop(base, EVLOOP_ONCE);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            done = 1;
            status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
    event_free(t);
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return status;
}

#endif
