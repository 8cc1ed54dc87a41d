/*
 * metrics: the kubelet as its operator sees it. /readyz (the first pod
 * list is in), /metrics (pods and containers by state, restarts, pod start
 * latency, images garbage collected) and the STATUS= line of `systemctl status`, read from struct
 * klet; the pod start latency is sampled once a second.
 */
#include "config.h"
#include "certs.h"
#include "klet.h"
#include "obs.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool klet_ready(void *arg)
{
    const struct klet *k = arg;
    return k->synced;
}

/*
 * Pod start latency (Kubernetes' kubelet_pod_start_duration_seconds): from
 * the kubelet first seeing a pod to all its containers running, observed
 * once per pod by a 1 s sampler (and at each scrape). Pods older than this
 * kubelet (adopted after a restart) are not counted.
 */
static bool pstart_seen(const struct klet_pstart *ps, const char *uid)
{
    for (size_t i = 0; i < ps->nseen; i++)
        if (!strcmp(ps->seen[i], uid))
            return true;
    return false;
}

static void pstart_sample(evutil_socket_t fd, short what, void *arg)
{
    struct klet *k = arg;
    struct klet_pstart *ps = &k->pstart;
    for (size_t i = 0; i < ps->nseen;) { /* forget pods that are gone */
        bool here = false;
        for (size_t j = 0; j < k->npods && !here; j++)
            here = !strcmp(k->pods[j]->uid, ps->seen[i]);
        if (here) {
            i++;
            continue;
        }
        free(ps->seen[i]);
        ps->seen[i] = ps->seen[--ps->nseen];
    }
    for (size_t j = 0; j < k->npods; j++) {
        const struct klet_pod *p = k->pods[j];
        if (p->nctr == 0 || pstart_seen(ps, p->uid))
            continue;
        bool all = true;
        int64_t last = 0;
        for (size_t c = 0; c < p->nctr && all; c++) {
            all = p->ctrs[c].state == KC_RUNNING;
            if (p->ctrs[c].started_ns > last)
                last = p->ctrs[c].started_ns;
        }
        if (!all)
            continue;
        if (p->start_ns >= ps->since_ns) {
            double sec = (double)(last - p->start_ns) / 1e9;
            obs_hist_observe(&ps->hist, sec < 0 ? 0 : sec);
        }
        ps->seen = xrealloc(ps->seen, (ps->nseen + 1) * sizeof(*ps->seen));
        ps->seen[ps->nseen++] = xstrdup(p->uid);
    }
}

void klet_describe(char *buf, size_t len, void *arg)
{
    const struct klet *k = arg;
    size_t running = 0;
    for (size_t i = 0; i < k->npods; i++)
        for (size_t j = 0; j < k->pods[i]->nctr; j++)
            running += k->pods[i]->ctrs[j].state == KC_RUNNING;
    snprintf(buf, len, "node %s: %zu pods, %zu containers running%s", k->cfg.node_name, k->npods,
             running, k->offline ? " (from the local record: the apiserver is out of reach)" : "");
}

void klet_metrics_write(FILE *f, void *arg)
{
    struct klet *k = arg;
    static const char *const states[] = {"waiting", "creating", "running", "exited"};
    uint64_t n[4] = {0};
    uint64_t restarts = 0;
    for (size_t i = 0; i < k->npods; i++) {
        const struct klet_pod *p = k->pods[i];
        for (size_t j = 0; j < p->ninit + p->nctr; j++) {
            const struct klet_ctr *c = j < p->ninit ? &p->inits[j] : &p->ctrs[j - p->ninit];
            n[c->state]++;
            restarts += c->restarts;
        }
    }
    fprintf(f,
            "# HELP coracle_kubelet_pods Pods this kubelet runs.\n"
            "# TYPE coracle_kubelet_pods gauge\ncoracle_kubelet_pods %zu\n",
            k->npods);
    fprintf(f, "# HELP coracle_kubelet_containers Containers by state.\n"
               "# TYPE coracle_kubelet_containers gauge\n");
    for (size_t i = 0; i < 4; i++)
        fprintf(f, "coracle_kubelet_containers{state=\"%s\"} %llu\n", states[i],
                (unsigned long long)n[i]);
    fprintf(f,
            "# HELP coracle_kubelet_container_restarts Sum of restartCount over containers.\n"
            "# TYPE coracle_kubelet_container_restarts gauge\n"
            "coracle_kubelet_container_restarts %llu\n",
            (unsigned long long)restarts);
    size_t running_pods = 0;
    for (size_t i = 0; i < k->npods; i++) {
        const struct klet_pod *p = k->pods[i];
        size_t run = 0;
        for (size_t j = 0; j < p->nctr; j++)
            run += p->ctrs[j].state == KC_RUNNING;
        running_pods += p->nctr && run == p->nctr;
    }
    fprintf(f,
            "# HELP coracle_kubelet_running_pods Pods whose containers all run.\n"
            "# TYPE coracle_kubelet_running_pods gauge\ncoracle_kubelet_running_pods %zu\n"
            "# HELP coracle_kubelet_running_containers Containers running.\n"
            "# TYPE coracle_kubelet_running_containers gauge\n"
            "coracle_kubelet_running_containers %llu\n",
            running_pods, (unsigned long long)n[KC_RUNNING]);
    pstart_sample(-1, 0, arg);
    fprintf(f, "# HELP coracle_kubelet_pod_start_duration_seconds From the kubelet first seeing "
               "a pod to all its containers running.\n"
               "# TYPE coracle_kubelet_pod_start_duration_seconds histogram\n");
    obs_hist_write(f, "coracle_kubelet_pod_start_duration_seconds", NULL, &k->pstart.hist);
    fprintf(f,
            "# HELP coracle_kubelet_image_garbage_collected_total Images removed by image "
            "garbage collection, by reason (Kubernetes' kubelet_image_garbage_collected_total).\n"
            "# TYPE coracle_kubelet_image_garbage_collected_total counter\n"
            "coracle_kubelet_image_garbage_collected_total{reason=\"age\"} %llu\n"
            "coracle_kubelet_image_garbage_collected_total{reason=\"space\"} %llu\n",
            (unsigned long long)k->imggc.removed_age, (unsigned long long)k->imggc.removed_space);
    if (k->rot)
        klet_certs_metrics(f, k->rot);
}

void klet_metrics_start(struct klet *k)
{
    struct klet_pstart *ps = &k->pstart;
    ps->since_ns = now_ns();
    obs_hist_init(&ps->hist, obs_latency_buckets, obs_latency_nbuckets);
    ps->ev = event_new(k->base, -1, EV_PERSIST, pstart_sample, k);
    struct timeval sec = {1, 0};
    event_add(ps->ev, &sec);
}

void klet_metrics_stop(struct klet *k)
{
    struct klet_pstart *ps = &k->pstart;
    if (ps->ev)
        event_free(ps->ev);
    obs_hist_free(&ps->hist);
    for (size_t i = 0; i < ps->nseen; i++)
        free(ps->seen[i]);
    free(ps->seen);
    memset(ps, 0, sizeof(*ps));
}
