/*
 * test_daemon: the daemons' shared skeleton. Token files read as
 * Kubernetes reads them (whole file, trimmed, empty refused); SIGHUP
 * re-reads log-level and runs the reload hook between RELOADING=1 and
 * READY=1; SIGTERM stops once, waits for the drained hook, and a second
 * signal while stopping is ignored; SIGPIPE is ignored.
 */
#include "config.h"

#include "daemon.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char *write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fwrite(text, 1, len, f);
    fclose(f);
    return p;
}

/* Reads path as a token file: the token, or "ERR: <message>" (malloc'd). */
static char *token_of(const char *path)
{
    char *tok = NULL, *err = NULL;
    if (daemon_read_token(path, &tok, &err) == 0)
        return tok;
    char *r = xasprintf("ERR: %s", err);
    free(err);
    return r;
}

static void check_token(const char *dir, const char *text, const char *want, const char *name)
{
    char *p = write_file(dir, "token", text, strlen(text));
    char *got = token_of(p);
    char *w = strncmp(want, "ERR: ", 5) ? xstrdup(want)
                                        : xasprintf("ERR: token-file %s: %s", p, want + 5);
    is_str(got, w, name);
    free(w);
    free(got);
    free(p);
}

static void test_token(const char *dir)
{
    check_token(dir, "abc123\n", "abc123", "a token and its newline");
    check_token(dir, "  \tabc123 \r\n\n", "abc123", "surrounding whitespace trimmed");
    check_token(dir, "abc123", "abc123", "no newline at the end");
    check_token(dir, "", "ERR: empty", "an empty file is an error naming it");
    check_token(dir, " \n\t\n", "ERR: empty", "whitespace alone is empty");
    check_token(dir, "abc\n123\n",
                "ERR: a control character inside the token (the file holds one token on one "
                "line)",
                "two lines: not one token");
    char *missing = xasprintf("%s/none", dir);
    char *got = token_of(missing);
    char *want = xasprintf("ERR: token-file %s: %s", missing, strerror(ENOENT));
    is_str(got, want, "a missing file is an error naming it");
    free(want);
    free(got);
    free(missing);
    size_t big = 64 * 1024 + 1;
    char *text = xmalloc(big);
    memset(text, 'a', big);
    char *p = write_file(dir, "big", text, big);
    got = token_of(p);
    ok(strstr(got, "larger than 64 KiB") != NULL, "a file beyond 64 KiB is refused (%s)", got);
    free(got);
    free(p);
    p = write_file(dir, "exact", text, big - 1);
    got = token_of(p);
    is_int(strlen(got), big - 1, "64 KiB exactly is read whole");
    free(got);
    free(p);
    free(text);
}

struct hooks {
    struct event_base *base;
    int reloads, stops, drained_polls, drain_after;
    int sent_second; /* a second SIGTERM went out while stopping */
};

static void h_reload(void *arg)
{
    struct hooks *h = arg;
    h->reloads++;
}

static void h_stop(void *arg)
{
    struct hooks *h = arg;
    h->stops++;
}

static bool h_drained(void *arg)
{
    struct hooks *h = arg;
    if (!h->sent_second) {
        h->sent_second = 1;
        raise(SIGTERM);
    }
    return ++h->drained_polls >= h->drain_after;
}

static void h_describe(char *buf, size_t len, void *arg)
{
    snprintf(buf, len, "all well");
}

/* Raises sig from inside the loop (libevent sees signals only while it runs). */
static void raise_cb(evutil_socket_t fd, short what, void *arg)
{
    raise(*(int *)arg);
}

/* The datagrams in the notify socket, joined by "|". */
static char *drain_notify(int fd)
{
    char *all = xstrdup("");
    char buf[512];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
        buf[n] = '\0';
        char *next = xasprintf("%s%s%s", all, *all ? "|" : "", buf);
        free(all);
        all = next;
    }
    return all;
}

static void test_signals(const char *dir)
{
    char *sock = xasprintf("%s/notify.sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    ok(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind the notify socket");
    setenv("NOTIFY_SOCKET", sock, 1);

    char *conf = write_file(dir, "d.conf", "log-level = debug\n", 18);
    log_set_level(LOG_LVL_INFO);
    struct hooks h = {.base = event_base_new(), .drain_after = 3};
    struct daemon_ops ops = {
        .describe = h_describe,
        .reload = h_reload,
        .stop = h_stop,
        .drained = h_drained,
        .arg = &h,
    };
    signal(SIGPIPE, SIG_DFL);
    daemon_t *d = daemon_new(h.base, conf, &ops);
    struct sigaction sa_pipe;
    sigaction(SIGPIPE, NULL, &sa_pipe);
    ok(sa_pipe.sa_handler == SIG_IGN, "SIGPIPE ignored");

    static int hup = SIGHUP, term = SIGTERM;
    struct timeval t1 = {0, 20000}, t2 = {0, 60000};
    event_base_once(h.base, -1, EV_TIMEOUT, raise_cb, &hup, &t1);
    event_base_once(h.base, -1, EV_TIMEOUT, raise_cb, &term, &t2);
    int64_t t0 = mono_ns();
    daemon_run(d, "fallback");
    ok(mono_ns() - t0 < (int64_t)DAEMON_DRAIN_MS * 1000000, "the loop ended once drained");
    is_int(h.reloads, 1, "SIGHUP ran the reload hook");
    ok(log_enabled(LOG_LVL_DEBUG), "SIGHUP re-read log-level from the config file");
    is_int(h.stops, 1, "SIGTERM ran the stop hook once (a second signal while stopping ignored)");
    is_int(h.drained_polls, 3, "the loop ran until the drained hook said so");
    char *got = drain_notify(fd);
    ok(!strncmp(got, "READY=1\nSTATUS=all well\nMAINPID=", 32),
       "READY=1 with STATUS= from the describe hook");
    ok(strstr(got, "|RELOADING=1\n") && strstr(strstr(got, "|RELOADING=1\n"), "|READY=1\n"),
       "RELOADING=1 then READY=1 on SIGHUP");
    ok(strstr(got, "|STOPPING=1\n") != NULL, "STOPPING=1 on SIGTERM");
    free(got);
    daemon_free(d);

    /* without a drained hook the loop ends at once */
    struct hooks h2 = {.base = h.base};
    struct daemon_ops ops2 = {.stop = h_stop, .arg = &h2};
    d = daemon_new(h.base, NULL, &ops2);
    event_base_once(h.base, -1, EV_TIMEOUT, raise_cb, &term, &t1);
    daemon_run(d, "plain");
    is_int(h2.stops, 1, "no drained hook: stopped at the first signal");
    got = drain_notify(fd);
    ok(!strncmp(got, "READY=1\nSTATUS=plain\n", 21), "no describe hook: STATUS= is the word given");
    free(got);
    daemon_free(d);
    event_base_free(h.base);

    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(sock);
    unlink(conf);
    free(conf);
    free(sock);
}

int main(void)
{
    log_init("test_daemon");
    char tmpl[] = "/tmp/test_daemon.XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    test_token(dir);
    test_signals(dir);
    char *cmd = xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    free(cmd);
    done_testing();
    return tap_failed != 0;
}
