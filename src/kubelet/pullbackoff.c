/*
 * pullbackoff: the kubelet's image pull back-off, as Kubernetes' image
 * manager (pkg/kubelet/images/image_manager.go) keeps it: a failed pull
 * starts a window (10 s, doubling to 300 s: the kubelet's backOffPeriod
 * and MaxContainerBackOff, which crash loops use too, so here
 * --crashloop-backoff-base/max) in which the image is not pulled again and
 * the container waits in ImagePullBackOff. Keyed by the image reference
 * normalised ("nginx" and "docker.io/library/nginx:latest" are one), so
 * every container of every pod naming it shares one back-off; a success
 * resets it.
 */
#include "config.h"
#include "backoff.h"
#include "klet.h"
#include "util.h"

#include <stdlib.h>

#define NS 1000000000LL

static backoff_t *table(struct klet *k)
{
    if (!k->pull_backoff)
        k->pull_backoff = backoff_new(k->cfg.crashloop_base * NS, k->cfg.crashloop_max * NS);
    return k->pull_backoff;
}

int64_t klet_pull_backoff(struct klet *k, const char *image)
{
    char *key = klet_img_normalise(image);
    int64_t w = backoff_wait(table(k), key, mono_ns());
    free(key);
    return w;
}

int64_t klet_pull_failed(struct klet *k, const char *image, int64_t started)
{
    char *key = klet_img_normalise(image);
    backoff_t *b = table(k);
    int64_t now = mono_ns(), w;
    /* A pull that ran alongside one already counted is the same failure. */
    if (backoff_last(b, key) >= started && backoff_last(b, key) != 0)
        w = backoff_wait(b, key, now);
    else
        w = backoff_next(b, key, now);
    backoff_gc(b, now);
    free(key);
    return w;
}

void klet_pull_succeeded(struct klet *k, const char *image)
{
    if (!k->pull_backoff)
        return;
    char *key = klet_img_normalise(image);
    backoff_reset(k->pull_backoff, key);
    free(key);
}
