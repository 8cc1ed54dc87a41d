/*
 * test_obs: the Prometheus histogram writer, the log-level reload of
 * SIGHUP, the config path choice, and the sd_notify datagrams (sent to a
 * socket of ours, never blocking when nobody reads).
 */
#include "config.h"

#include "obs.h"
#include "sdnotify.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char *write_file(const char *dir, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static void test_hist(void)
{
    static const double b[] = {0.1, 1, 10};
    struct obs_hist h;
    obs_hist_init(&h, b, 3);
    obs_hist_observe(&h, 0.05);
    obs_hist_observe(&h, 0.1); /* le is inclusive */
    obs_hist_observe(&h, 5);
    obs_hist_observe(&h, 100);
    char *buf = NULL;
    size_t sz = 0;
    FILE *f = open_memstream(&buf, &sz);
    obs_hist_write(f, "x_seconds", "m=\"a\"", &h);
    fclose(f);
    is_str(buf,
           "x_seconds_bucket{m=\"a\",le=\"0.1\"} 2\n"
           "x_seconds_bucket{m=\"a\",le=\"1\"} 2\n"
           "x_seconds_bucket{m=\"a\",le=\"10\"} 3\n"
           "x_seconds_bucket{m=\"a\",le=\"+Inf\"} 4\n"
           "x_seconds_sum{m=\"a\"} 105.15\n"
           "x_seconds_count{m=\"a\"} 4\n",
           "histogram: cumulative buckets, +Inf, sum, count, labels");
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &sz);
    obs_hist_write(f, "y", NULL, &h);
    fclose(f);
    ok(strstr(buf, "y_bucket{le=\"+Inf\"} 4\ny_sum 105.15\ny_count 4\n") != NULL,
       "histogram without labels");
    free(buf);
    obs_hist_observe_n(&h, 0.5, 3); /* a batch: three observations of 0.5 */
    buf = NULL;
    f = open_memstream(&buf, &sz);
    obs_hist_write(f, "z", NULL, &h);
    fclose(f);
    is_str(buf,
           "z_bucket{le=\"0.1\"} 2\nz_bucket{le=\"1\"} 5\nz_bucket{le=\"10\"} 6\n"
           "z_bucket{le=\"+Inf\"} 7\nz_sum 106.65\nz_count 7\n",
           "observe_n counts a batch as count observations of v");
    free(buf);
    obs_hist_free(&h);
}

static void test_reload(const char *dir)
{
    char *err = NULL;
    log_set_level(LOG_LVL_INFO);
    char *p = write_file(dir, "a.conf", "# c\nserver = x\n log-level = \"debug\" # comment\n");
    is_int(obs_reload_log_level(p, &err), 1, "log-level read");
    ok(log_enabled(LOG_LVL_DEBUG), "level is debug");
    free(p);
    p = write_file(dir, "b.conf", "log-level = debug\nlog-level = warn\n");
    is_int(obs_reload_log_level(p, &err), 1, "the last log-level wins");
    ok(log_enabled(LOG_LVL_WARN) && !log_enabled(LOG_LVL_INFO), "level is warn");
    free(p);
    p = write_file(dir, "c.conf", "#log-level = debug\nserver = y\n");
    is_int(obs_reload_log_level(p, &err), 0, "no log-level: 0");
    ok(!log_enabled(LOG_LVL_INFO), "level unchanged");
    free(p);
    p = write_file(dir, "d.conf", "log-level = loud\n");
    is_int(obs_reload_log_level(p, &err), -1, "bad level: -1");
    ok(err && strstr(err, "d.conf:1") && strstr(err, "loud"), "error names file, line, value: %s",
       err ? err : "");
    free(err);
    err = NULL;
    ok(!log_enabled(LOG_LVL_INFO), "level unchanged after a bad file");
    is_int(obs_reload_log_level("/nonexistent/x.conf", &err), -1, "missing file: -1");
    free(err);
    free(p);
    log_set_level(LOG_LVL_INFO);

    char *def = write_file(dir, "def.conf", "");
    char *argv1[] = {"prog", "--server", "x", NULL};
    is_str(obs_config_path(3, argv1, def), def, "no --config: the default if readable");
    is_str(obs_config_path(3, argv1, "/nonexistent/def.conf"), NULL, "unreadable default: none");
    char *argv2[] = {"prog", "--config", "/etc/x.conf", NULL};
    is_str(obs_config_path(3, argv2, def), "/etc/x.conf", "--config FILE");
    char *argv3[] = {"prog", "--config=/etc/y.conf", NULL};
    is_str(obs_config_path(2, argv3, def), "/etc/y.conf", "--config=FILE");
    free(def);
}

/* "phase 0" twice, then "phase 1" for good. */
static void describe(char *buf, size_t len, void *arg)
{
    int *calls = arg;
    snprintf(buf, len, "phase %d", (*calls)++ >= 2);
}

static void test_notify(const char *dir)
{
    char *path = xasprintf("%s/notify.sock", dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ok(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind the notify socket");
    unsetenv("NOTIFY_SOCKET");
    is_int(sdn_ready("x"), 0, "no NOTIFY_SOCKET: no-op");
    setenv("NOTIFY_SOCKET", path, 1);
    is_int(sdn_ready("serving"), 0, "READY sent");
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = '\0';
    ok(!strncmp(buf, "READY=1\nSTATUS=serving\nMAINPID=", 31), "READY=1, STATUS, MAINPID");
    sdn_statusf("%d pods", 3);
    n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    buf[n > 0 ? n : 0] = '\0';
    is_str(buf, "STATUS=3 pods", "STATUS= formatted");
    /* nobody reads: the queue fills and sends fail fast instead of blocking */
    int64_t t0 = mono_ns();
    int last = 0;
    for (int i = 0; i < 1000; i++)
        last = sdn_send("WATCHDOG=1");
    ok(mono_ns() - t0 < 2000000000LL, "1000 sends to a full queue do not block");
    is_int(last, -EAGAIN, "a full queue gives -EAGAIN");
    while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ; /* empty the queue */

    /* periodic STATUS=: sent when it changes, not repeated */
    struct event_base *base = event_base_new();
    int calls = 0;
    sdn_status_t *st = sdn_status_start(base, 1, describe, &calls);
    ok(st != NULL, "status timer started");
    struct timeval tv = {3, 300000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    ok(calls >= 3, "describe called every second (%d)", calls);
    int got = 0;
    while ((n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
        buf[n] = '\0';
        if (!strncmp(buf, "STATUS=", 7))
            got++;
    }
    is_int(got, 2, "two distinct STATUS= lines sent, repeats suppressed");
    sdn_status_free(st);
    event_base_free(base);

    /* a program started with NOTIFY_SOCKET keeps it for itself, out of its environment */
    int pfd[2];
    if (pipe(pfd) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            dup2(pfd[1], 1);
            setenv("WATCHDOG_USEC", "1000000", 1);
            execl("/proc/self/exe", "test_obs", "--child", (char *)NULL);
            _exit(127);
        }
        close(pfd[1]);
        char out[128] = "";
        ssize_t r = read(pfd[0], out, sizeof(out) - 1);
        out[r > 0 ? r : 0] = '\0';
        close(pfd[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        is_str(out, "env clean", "the child's environment lost NOTIFY_SOCKET and WATCHDOG_USEC");
        n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        buf[n > 0 ? n : 0] = '\0';
        ok(!strncmp(buf, "READY=1\nSTATUS=child\n", 21), "... and still notifies through it");
    }
    unsetenv("WATCHDOG_USEC");

    setenv("NOTIFY_SOCKET", "relative/path", 1);
    is_int(sdn_send("READY=1"), -EINVAL, "a relative NOTIFY_SOCKET is refused");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path);
    free(path);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--child")) {
        printf("env %s", getenv("NOTIFY_SOCKET") || getenv("WATCHDOG_USEC") ? "dirty" : "clean");
        fflush(stdout);
        sdn_ready("child");
        return 0;
    }
    char tmpl[] = "/tmp/test_obs.XXXXXX";
    char *dir = mkdtemp(tmpl);
    test_hist();
    test_reload(dir);
    test_notify(dir);
    char *cmd = xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0)
        diag("cleanup of %s failed", dir);
    free(cmd);
    return done_testing();
}
