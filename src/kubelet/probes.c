/*
 * probes: liveness and readiness probes of a running container, on timers
 * (initialDelaySeconds, then every periodSeconds). exec runs `runc exec`;
 * httpGet and tcpSocket run in a forked child that joins the pod's network
 * namespace (setns on <pod dir>/ns/net) and connects there, so a probe sees
 * what a peer container would. successThreshold/failureThreshold as in
 * Kubernetes; each failure is an Unhealthy event; the verdict goes to
 * pods.c (readiness: ready flag; liveness: restart).
 */
#include "config.h"
#include "klet.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PR_EXEC, PR_HTTP, PR_TCP };

enum { PT_LIVENESS, PT_READINESS, PT_STARTUP };
static const char *const pt_names[] = {"Liveness", "Readiness", "Startup"};

struct klet_probe {
    struct klet_ctr *c;
    int type;
    bool liveness; /* liveness or startup: failing means a restart */
    int kind;
    char **cmd;
    char *path, *host, *scheme, *netns;
    int port;
    int timeout, period, success_th, failure_th;
    int successes, failures;
    bool running;
    bool verdict_ok;
    struct event *timer;
};

static void probe_schedule(struct klet_probe *pr, int seconds);
static void probes_after_startup(struct klet_ctr *c);

static int resolve_port(const Coracle__V1__Container *s, const Coracle__V1__IntOrString *p)
{
    if (!p)
        return 0;
    if (p->has_type && p->type == 1 && p->strval) {
        for (size_t i = 0; i < s->n_ports; i++)
            if (s->ports[i]->name && !strcmp(s->ports[i]->name, p->strval))
                return s->ports[i]->containerport;
        return atoi(p->strval);
    }
    return p->intval;
}

/* In the child: connect (and GET) inside the pod's network namespace. */
static int net_probe(void *arg)
{
    struct klet_probe *pr = arg;
    if (pr->netns) {
        int fd = open(pr->netns, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
            printf("cannot enter the pod network namespace: %s", strerror(errno));
            return 1;
        }
        close(fd);
    }
    const char *host = pr->host && *pr->host ? pr->host : "127.0.0.1";
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(pr->port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        printf("dial tcp: lookup %s: not an IPv4 address", host);
        return 1;
    }
    char target[300];
    snprintf(target, sizeof target, "%s:%d", host, pr->port);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {pr->timeout, 0};
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (pr->kind == PR_HTTP)
            printf("Get \"http://%s%s\": dial tcp %s: connect: %s", target,
                   pr->path ? pr->path : "/", target, strerror(errno));
        else
            printf("dial tcp %s: connect: %s", target, strerror(errno));
        return 1;
    }
    if (pr->kind == PR_TCP)
        return 0;
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kube-probe/1.28\r\n"
                     "Accept: */*\r\nConnection: close\r\n\r\n",
                     pr->path && *pr->path ? pr->path : "/", target);
    if (write(s, req, n) != n) {
        printf("Get \"http://%s%s\": write: %s", target, pr->path ? pr->path : "/",
               strerror(errno));
        return 1;
    }
    char resp[256];
    ssize_t r = read(s, resp, sizeof resp - 1);
    if (r <= 0) {
        printf("Get \"http://%s%s\": %s", target, pr->path ? pr->path : "/",
               r == 0 ? "EOF"
                      : "context deadline exceeded (Client.Timeout exceeded while "
                        "awaiting headers)");
        return 1;
    }
    resp[r] = 0;
    int code = 0;
    if (sscanf(resp, "HTTP/%*s %d", &code) != 1) {
        printf("malformed HTTP response");
        return 1;
    }
    if (code >= 200 && code < 400)
        return 0;
    printf("HTTP probe failed with statuscode: %d", code);
    return 1;
}

static void probe_result(int status, const char *out, size_t len, void *arg)
{
    struct klet_probe *pr = arg;
    struct klet_ctr *c = pr->c;
    pr->running = false;
    bool okay = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (okay) {
        pr->failures = 0;
        if (pr->type == PT_STARTUP) {
            /* Started: liveness and readiness take over (this probe is freed). */
            probes_after_startup(c);
            return;
        }
        if (++pr->successes >= pr->success_th && !pr->verdict_ok) {
            pr->verdict_ok = true;
            klet_pod_ctr_probe(c, pr->liveness, true, NULL);
        }
    } else {
        char *msg;
        if (WIFSIGNALED(status))
            msg = xasprintf("command timed out");
        else if (pr->kind == PR_EXEC)
            msg = xasprintf("%s", out && *out ? out : "");
        else
            msg = xstrdup(out ? out : "");
        size_t ml = strlen(msg);
        while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == ' '))
            msg[--ml] = 0;
        if (pr->kind == PR_EXEC && !*msg && WIFEXITED(status)) {
            free(msg);
            msg = xasprintf("command exited with %d", WEXITSTATUS(status));
        }
        klet_event(c->pod->k, c->pod, c, "Warning", "Unhealthy", "%s probe failed: %s",
                   pt_names[pr->type], msg);
        pr->successes = 0;
        if (++pr->failures >= pr->failure_th) {
            pr->verdict_ok = false;
            if (pr->liveness)
                pr->failures = 0;
            klet_pod_ctr_probe(c, pr->liveness, false, msg);
        }
        free(msg);
    }
}

static void probe_tick(evutil_socket_t fd, short what, void *arg)
{
    struct klet_probe *pr = arg;
    struct klet_ctr *c = pr->c;
    struct klet *k = c->pod->k;
    probe_schedule(pr, pr->period);
    if (pr->running || c->state != KC_RUNNING)
        return;
    pr->running = true;
    pid_t pid;
    if (pr->kind == PR_EXEC) {
        size_t n = 0;
        while (pr->cmd[n])
            n++;
        char **argv = xcalloc(n + 7, sizeof *argv);
        size_t i = 0;
        argv[i++] = k->cfg.runtime;
        argv[i++] = "--root";
        argv[i++] = k->runc_root;
        argv[i++] = "exec";
        argv[i++] = c->id;
        for (size_t j = 0; j < n; j++)
            argv[i++] = pr->cmd[j];
        pid = klet_proc_spawn(k, argv, pr->timeout * 1000, probe_result, pr);
        free(argv);
    } else {
        pid = klet_proc_fork(k, net_probe, pr, pr->timeout * 1000 + 500, probe_result, pr);
    }
    if (pid < 0)
        pr->running = false;
}

static void probe_schedule(struct klet_probe *pr, int seconds)
{
    struct timeval tv = {seconds, 0};
    event_add(pr->timer, &tv);
}

static struct klet_probe *probe_new(struct klet_ctr *c, const Coracle__V1__Container *s,
                                    const Coracle__V1__Probe *p, int type)
{
    bool liveness = type != PT_READINESS;
    if (!p || !p->handler)
        return NULL;
    const Coracle__V1__ProbeHandler *h = p->handler;
    struct klet_probe *pr = xcalloc(1, sizeof *pr);
    pr->c = c;
    pr->type = type;
    pr->liveness = liveness;
    if (h->exec && h->exec->n_command) {
        pr->kind = PR_EXEC;
        pr->cmd = xcalloc(h->exec->n_command + 1, sizeof *pr->cmd);
        for (size_t i = 0; i < h->exec->n_command; i++)
            pr->cmd[i] = xstrdup(h->exec->command[i]);
    } else if (h->httpget) {
        pr->kind = PR_HTTP;
        pr->path = xstrdup(h->httpget->path ? h->httpget->path : "/");
        pr->host = h->httpget->host ? xstrdup(h->httpget->host) : NULL;
        pr->port = resolve_port(s, h->httpget->port);
    } else if (h->tcpsocket) {
        pr->kind = PR_TCP;
        pr->host = h->tcpsocket->host ? xstrdup(h->tcpsocket->host) : NULL;
        pr->port = resolve_port(s, h->tcpsocket->port);
    } else {
        free(pr);
        return NULL;
    }
    const Coracle__V1__PodSpec *ps = c->pod->pod->spec;
    if (!(ps->has_hostnetwork && ps->hostnetwork))
        pr->netns = xasprintf("%s/ns/net", c->pod->dir);
    pr->timeout = p->has_timeoutseconds && p->timeoutseconds > 0 ? p->timeoutseconds : 1;
    pr->period = p->has_periodseconds && p->periodseconds > 0 ? p->periodseconds : 10;
    pr->success_th = p->has_successthreshold && p->successthreshold > 0 ? p->successthreshold : 1;
    pr->failure_th = p->has_failurethreshold && p->failurethreshold > 0 ? p->failurethreshold : 3;
    /* Liveness starts as passing; readiness as not ready. */
    pr->verdict_ok = liveness;
    pr->timer = evtimer_new(c->pod->k->base, probe_tick, pr);
    probe_schedule(pr, p->has_initialdelayseconds ? p->initialdelayseconds : 0);
    return pr;
}

static const Coracle__V1__Container *probe_spec(const struct klet_ctr *c)
{
    const Coracle__V1__PodSpec *ps = c->pod->pod->spec;
    return c->init ? ps->initcontainers[c->idx] : ps->containers[c->idx];
}

static void probe_free(struct klet_probe *pr);

static void probes_after_startup(struct klet_ctr *c)
{
    const Coracle__V1__Container *s = probe_spec(c);
    struct klet_probe *st = c->liveness;
    c->startup_pending = false;
    c->liveness = probe_new(c, s, s->livenessprobe, PT_LIVENESS);
    c->readiness = probe_new(c, s, s->readinessprobe, PT_READINESS);
    c->ready = c->readiness == NULL;
    klet_pod_kick(c->pod);
    probe_free(st); /* last: we are inside its callback, which returns at once */
}

void klet_probes_start(struct klet_ctr *c)
{
    klet_probes_stop(c);
    const Coracle__V1__Container *s = probe_spec(c);
    c->startup_pending = false;
    if (c->init) {
        c->ready = false;
        return;
    }
    if (s->startupprobe && s->startupprobe->handler) {
        /* Until it succeeds only the startup probe runs, in the liveness slot: its failure
         * restarts the container the same way. */
        c->startup_pending = true;
        c->ready = false;
        c->liveness = probe_new(c, s, s->startupprobe, PT_STARTUP);
        return;
    }
    c->liveness = probe_new(c, s, s->livenessprobe, PT_LIVENESS);
    c->readiness = probe_new(c, s, s->readinessprobe, PT_READINESS);
    c->ready = c->readiness == NULL;
}

static void probe_free(struct klet_probe *pr)
{
    if (!pr)
        return;
    klet_proc_forget(pr->c->pod->k, pr);
    event_free(pr->timer);
    klet_strv_free(pr->cmd);
    free(pr->path);
    free(pr->host);
    free(pr->scheme);
    free(pr->netns);
    free(pr);
}

void klet_probes_stop(struct klet_ctr *c)
{
    probe_free(c->liveness);
    probe_free(c->readiness);
    c->liveness = c->readiness = NULL;
}
