/*
 * cmd_rollout: `coraclectl scale` and `coraclectl rollout
 * status|history|undo|restart|pause|resume`, as kubectl's: the same
 * messages, read from the same status fields and annotations
 * (deployment.kubernetes.io/revision on ReplicaSets, the Progressing
 * condition's ProgressDeadlineExceeded), written as the same updates
 * (undo copies the old ReplicaSet's template back; restart stamps
 * kubectl.kubernetes.io/restartedAt on the template).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "ctl.h"
#include "grpc.h"
#include "pb.h"

#define REVISION_ANNOTATION "deployment.kubernetes.io/revision"
#define CHANGE_CAUSE_ANNOTATION "kubernetes.io/change-cause"

/* "deployment.apps/web" (kubectl's resource/name; "pod/x" for core kinds) into buf. */
static const char *ref_name(char *buf, size_t n, const struct kind *k, const char *name)
{
    const char *slash = strchr(k->api_version, '/');
    if (slash)
        snprintf(buf, n, "%s.%.*s/%s", k->singular, (int)(slash - k->api_version), k->api_version,
                 name);
    else
        snprintf(buf, n, "%s/%s", k->singular, name);
    return buf;
}

/* TYPE NAME or TYPE/NAME from pos[0..]: the kind, the name. -1 after printing why. */
int ctl_target(const struct ctl_strv *pos, const char *verb, const struct kind *const *allowed,
               const struct kind **k, const char **name)
{
    char type[128];
    if (pos->n == 1 && strchr(pos->v[0], '/')) {
        const char *sl = strchr(pos->v[0], '/');
        snprintf(type, sizeof(type), "%.*s", (int)(sl - pos->v[0]), pos->v[0]);
        *name = sl + 1;
    } else if (pos->n == 2) {
        snprintf(type, sizeof(type), "%s", pos->v[0]);
        *name = pos->v[1];
    } else {
        fprintf(stderr,
                "error: required resource not specified\nSee 'coraclectl %s -h' for "
                "help and examples\n",
                verb);
        return -1;
    }
    char *dot = strchr(type, '.'); /* deployments.apps */
    if (dot)
        *dot = '\0';
    *k = kind_lookup(type);
    if (!*k) {
        fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", type);
        return -1;
    }
    for (size_t i = 0; allowed[i]; i++)
        if (allowed[i] == *k)
            return 0;
    fprintf(stderr, "error: no %s has been implemented for {%s %s}\n", verb,
            strchr((*k)->api_version, '/') ? (*k)->api_version : "",
            (*k)->kind); /* kubectl's wording */
    return -1;
}

ProtobufCMessage *ctl_get_obj(struct ctl_client *c, const struct kind *k, const char *name)
{
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.namespace_ = (char *)ctl_namespace();
    req.name = (char *)name;
    ProtobufCMessage *obj;
    char *err;
    int code = ctl_call(c, k, "Get", &req.base, k->desc, &obj, &err);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return NULL;
    }
    return obj;
}

static int update_obj(struct ctl_client *c, const struct kind *k, const ProtobufCMessage *obj)
{
    ProtobufCMessage *resp;
    char *err;
    int code = ctl_call(c, k, "Update", obj, k->desc, &resp, &err);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return -1;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

static const char *annotation(const Coracle__V1__ObjectMeta *m, const char *key)
{
    for (size_t i = 0; m && i < m->n_annotations; i++)
        if (!strcmp(m->annotations[i]->key, key))
            return m->annotations[i]->value;
    return NULL;
}

/* Sets key=value in the annotations of m (value borrowed until m is packed or freed). */
static void set_annotation(Coracle__V1__ObjectMeta *m, const char *key, char *value)
{
    for (size_t i = 0; i < m->n_annotations; i++)
        if (!strcmp(m->annotations[i]->key, key)) {
            free(m->annotations[i]->value);
            m->annotations[i]->value = value;
            return;
        }
    Coracle__V1__ObjectMeta__AnnotationsEntry *e = xmalloc(sizeof(*e));
    coracle__v1__object_meta__annotations_entry__init(e);
    e->key = xstrdup(key);
    e->value = value;
    m->annotations = xrealloc(m->annotations, (m->n_annotations + 1) * sizeof(*m->annotations));
    m->annotations[m->n_annotations++] = e;
}

/* ------------------------------------------------------------------ scale */

static const char scale_help[] =
    "Set a new size for a deployment or replica set.\n"
    "\n"
    "Examples:\n"
    "  coraclectl scale --replicas=3 deployment/web\n"
    "  coraclectl scale --current-replicas=2 --replicas=3 rs web\n"
    "\n"
    "Options:\n"
    "      --current-replicas=-1: Precondition for the current size: scale only if it is this.\n"
    "      --replicas=0: The new desired number of replicas. Required.\n"
    "      --resource-version='': Precondition for the resource version.\n"
    "\n"
    "Usage:\n"
    "  coraclectl scale [--resource-version=version] [--current-replicas=count] "
    "--replicas=COUNT (TYPE NAME | TYPE/NAME) [options]\n";

int ctl_cmd_scale(int argc, char **argv)
{
    long long replicas = -1, current = -1;
    bool replicas_set = false, help = false;
    const char *rv = NULL;
    struct ctl_flag flags[] = {
        {"replicas", 0, CTL_FLAG_INT, &replicas, &replicas_set},
        {"current-replicas", 0, CTL_FLAG_INT, &current, NULL},
        {"resource-version", 0, CTL_FLAG_STR, &rv, NULL},
        {"help", 'h', CTL_FLAG_BOOL, &help, NULL},
    };
    struct ctl_strv pos = {0};
    int dd;
    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, &dd) < 0)
        return 1;
    if (help) {
        fputs(scale_help, stdout);
        free(pos.v);
        return 0;
    }
    int rc = 1;
    const struct kind *k;
    const char *name;
    static const struct kind *const scalable[] = {&kind_deployment, &kind_replicaset, NULL};
    if (!replicas_set || replicas < 0) {
        fprintf(stderr, "error: The --replicas=COUNT flag is required, and COUNT must be greater "
                        "than or equal to 0\n");
        free(pos.v);
        return 1;
    }
    if (ctl_target(&pos, "scale", scalable, &k, &name) < 0) {
        free(pos.v);
        return 1;
    }
    struct ctl_client c;
    if (ctl_client_open(&c) < 0) {
        free(pos.v);
        return 1;
    }
    ProtobufCMessage *obj = ctl_get_obj(&c, k, name);
    if (obj) {
        /* DeploymentSpec and ReplicaSetSpec both begin { base; has_replicas; replicas } */
        int32_t *want, have;
        if (k == &kind_deployment) {
            Coracle__V1__Deployment *d = (Coracle__V1__Deployment *)obj;
            if (!d->spec) {
                d->spec = xmalloc(sizeof(*d->spec));
                coracle__v1__deployment_spec__init(d->spec);
            }
            have = d->spec->has_replicas ? d->spec->replicas : 1;
            d->spec->has_replicas = 1;
            want = &d->spec->replicas;
        } else {
            Coracle__V1__ReplicaSet *r = (Coracle__V1__ReplicaSet *)obj;
            if (!r->spec) {
                r->spec = xmalloc(sizeof(*r->spec));
                coracle__v1__replica_set_spec__init(r->spec);
            }
            have = r->spec->has_replicas ? r->spec->replicas : 1;
            r->spec->has_replicas = 1;
            want = &r->spec->replicas;
        }
        char ref[320];
        Coracle__V1__ObjectMeta *m = kind_meta(obj);
        if (current >= 0 && current != have) {
            fprintf(stderr, "error: Expected replicas to be %lld, was %d\n", current, have);
        } else if (rv && *rv && strcmp(rv, m->resourceversion ? m->resourceversion : "")) {
            fprintf(stderr, "error: Expected resource version to be %s, was %s\n", rv,
                    m->resourceversion ? m->resourceversion : "");
        } else {
            *want = (int32_t)replicas;
            if (update_obj(&c, k, obj) == 0) {
                printf("%s scaled\n", ref_name(ref, sizeof(ref), k, name));
                rc = 0;
            }
        }
        protobuf_c_message_free_unpacked(obj, NULL);
    }
    ctl_client_close(&c);
    free(pos.v);
    return rc;
}

/* ---------------------------------------------------------------- rollout */

static const char rollout_help[] =
    "Manage the rollout of one or many resources.\n"
    "\n"
    "Valid resource types include: deployments, daemonsets (status only).\n"
    "\n"
    "Available Commands:\n"
    "  history     View rollout history\n"
    "  pause       Mark the provided resource as paused\n"
    "  restart     Restart a resource\n"
    "  resume      Resume a paused resource\n"
    "  status      Show the status of the rollout\n"
    "  undo        Undo a previous rollout\n"
    "\n"
    "Examples:\n"
    "  coraclectl rollout status deployment/web\n"
    "  coraclectl rollout undo deployment/web --to-revision=1\n"
    "\n"
    "Options:\n"
    "      --timeout=0s: (status) How long to wait; 0 waits forever.\n"
    "      --to-revision=0: (undo) The revision to roll back to; 0: the previous one.\n"
    "  -w, --watch=true: (status) Watch the status until the rollout ends.\n"
    "\n"
    "Usage:\n"
    "  coraclectl rollout SUBCOMMAND (TYPE NAME | TYPE/NAME) [options]\n";

/*
 * kubectl's status viewers: the message for obj's current status, *done
 * when the rollout finished; -1 (message printed as an error) when it
 * cannot finish (progress deadline exceeded, not a rolling update).
 */
static int status_text(const struct kind *k, const ProtobufCMessage *obj, char *buf, size_t n,
                       bool *done)
{
    const Coracle__V1__ObjectMeta *m = kind_meta(obj);
    int64_t gen = m && m->has_generation ? m->generation : 0;
    *done = false;
    if (k == &kind_deployment) {
        const Coracle__V1__Deployment *d = (const Coracle__V1__Deployment *)obj;
        static const Coracle__V1__DeploymentStatus none = CORACLE__V1__DEPLOYMENT_STATUS__INIT;
        const Coracle__V1__DeploymentStatus *st = d->status ? d->status : &none;
        if (gen > st->observedgeneration) {
            snprintf(buf, n, "Waiting for deployment spec update to be observed...\n");
            return 0;
        }
        for (size_t i = 0; i < st->n_conditions; i++) {
            const Coracle__V1__DeploymentCondition *c = st->conditions[i];
            if (c->type && !strcmp(c->type, "Progressing") && c->reason &&
                !strcmp(c->reason, "ProgressDeadlineExceeded")) {
                snprintf(buf, n, "deployment \"%s\" exceeded its progress deadline", m->name);
                return -1;
            }
        }
        int32_t want = d->spec && d->spec->has_replicas ? d->spec->replicas : 1;
        if (st->updatedreplicas < want)
            snprintf(buf, n,
                     "Waiting for deployment \"%s\" rollout to finish: %d out of %d new replicas "
                     "have been updated...\n",
                     m->name, st->updatedreplicas, want);
        else if (st->replicas > st->updatedreplicas)
            snprintf(buf, n,
                     "Waiting for deployment \"%s\" rollout to finish: %d old replicas are "
                     "pending termination...\n",
                     m->name, st->replicas - st->updatedreplicas);
        else if (st->availablereplicas < st->updatedreplicas)
            snprintf(buf, n,
                     "Waiting for deployment \"%s\" rollout to finish: %d of %d updated replicas "
                     "are available...\n",
                     m->name, st->availablereplicas, st->updatedreplicas);
        else {
            snprintf(buf, n, "deployment \"%s\" successfully rolled out\n", m->name);
            *done = true;
        }
        return 0;
    }
    const Coracle__V1__DaemonSet *ds = (const Coracle__V1__DaemonSet *)obj;
    static const Coracle__V1__DaemonSetStatus none = CORACLE__V1__DAEMON_SET_STATUS__INIT;
    const Coracle__V1__DaemonSetStatus *st = ds->status ? ds->status : &none;
    const char *type = ds->spec && ds->spec->updatestrategy && ds->spec->updatestrategy->type
                           ? ds->spec->updatestrategy->type
                           : "RollingUpdate";
    if (strcmp(type, "RollingUpdate")) {
        snprintf(buf, n, "rollout status is only available for RollingUpdate strategy type");
        return -1;
    }
    if (gen > st->observedgeneration)
        snprintf(buf, n, "Waiting for daemon set spec update to be observed...\n");
    else if (st->updatednumberscheduled < st->desirednumberscheduled)
        snprintf(buf, n,
                 "Waiting for daemon set \"%s\" rollout to finish: %d out of %d new pods have "
                 "been updated...\n",
                 m->name, st->updatednumberscheduled, st->desirednumberscheduled);
    else if (st->numberavailable < st->desirednumberscheduled)
        snprintf(buf, n,
                 "Waiting for daemon set \"%s\" rollout to finish: %d of %d updated pods are "
                 "available...\n",
                 m->name, st->numberavailable, st->desirednumberscheduled);
    else {
        snprintf(buf, n, "daemon set \"%s\" successfully rolled out\n", m->name);
        *done = true;
    }
    return 0;
}

struct status_watch {
    const struct kind *k;
    const char *name;
    char last[512];
    int rc;
    struct event *timer;
};

/* One step: prints the message when it changed; nonzero when the watch may stop. */
static int status_step(struct status_watch *s, const ProtobufCMessage *obj)
{
    char msg[512];
    bool done;
    if (status_text(s->k, obj, msg, sizeof(msg), &done) < 0) {
        fprintf(stderr, "error: %s\n", msg);
        s->rc = 1;
        return 1;
    }
    if (strcmp(msg, s->last)) {
        fputs(msg, stdout);
        fflush(stdout);
        snprintf(s->last, sizeof(s->last), "%s", msg);
    }
    if (done)
        s->rc = 0;
    return done;
}

static int status_on_event(struct ctl_watch *w, const char *type, ProtobufCMessage *obj, void *arg)
{
    struct status_watch *s = arg;
    if (!strcmp(type, "DELETED")) {
        fprintf(stderr, "error: object has been deleted\n");
        s->rc = 1;
        return 1;
    }
    return status_step(s, obj);
}

static void status_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct ctl_watch *w = arg;
    struct status_watch *s = w->arg;
    fprintf(stderr, "error: timed out waiting for the condition\n");
    s->rc = 1;
    w->stop = 1;
    event_base_loopbreak(w->c->base);
}

static int rollout_status(struct ctl_client *c, const struct kind *k, const char *name, bool watch,
                          const char *timeout)
{
    int64_t tmo_ns = 0;
    if (timeout && parse_duration(timeout, &tmo_ns) < 0) {
        fprintf(stderr, "error: invalid argument \"%s\" for \"--timeout\" flag\n", timeout);
        return 1;
    }
    ProtobufCMessage *obj = ctl_get_obj(c, k, name);
    if (!obj)
        return 1;
    struct status_watch s = {.k = k, .name = name, .rc = 1};
    int stop = status_step(&s, obj);
    char *rv = xstrdup(kind_meta(obj)->resourceversion ? kind_meta(obj)->resourceversion : "0");
    protobuf_c_message_free_unpacked(obj, NULL);
    if (stop || !watch) {
        free(rv);
        return stop ? s.rc : 0;
    }
    char *fsel = xasprintf("metadata.name=%s", name);
    struct ctl_watch w = {.c = c,
                          .k = k,
                          .namespace_ = ctl_namespace(),
                          .field_selector = fsel,
                          .on_event = status_on_event,
                          .arg = &s};
    struct event *timer = NULL;
    if (tmo_ns > 0) {
        timer = evtimer_new(c->base, status_timeout, &w);
        struct timeval tv = {(time_t)(tmo_ns / 1000000000),
                             (suseconds_t)(tmo_ns % 1000000000) / 1000};
        evtimer_add(timer, &tv);
    }
    int wrc = ctl_watch_run(&w, rv);
    if (timer)
        event_free(timer);
    free(fsel);
    free(rv);
    return wrc ? wrc : s.rc;
}

/* The ReplicaSets a Deployment controls (their list holds them; free it). */
static int owned_sets(struct ctl_client *c, const Coracle__V1__Deployment *d,
                      Coracle__V1__ReplicaSetList **list, Coracle__V1__ReplicaSet ***out, size_t *n)
{
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.namespace_ = d->metadata->namespace_;
    ProtobufCMessage *resp;
    char *err;
    int code = ctl_list_all(c, &kind_replicaset, &req, &resp, &err);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return -1;
    }
    *list = (Coracle__V1__ReplicaSetList *)resp;
    *out = xcalloc((*list)->n_items + 1, sizeof(**out));
    *n = 0;
    for (size_t i = 0; i < (*list)->n_items; i++) {
        Coracle__V1__ReplicaSet *rs = (*list)->items[i];
        for (size_t j = 0; rs->metadata && j < rs->metadata->n_ownerreferences; j++) {
            const Coracle__V1__OwnerReference *o = rs->metadata->ownerreferences[j];
            if (o->has_controller && o->controller && o->uid && d->metadata->uid &&
                !strcmp(o->uid, d->metadata->uid)) {
                (*out)[(*n)++] = rs;
                break;
            }
        }
    }
    return 0;
}

static long revision_of(const Coracle__V1__ReplicaSet *rs)
{
    const char *r = annotation(rs->metadata, REVISION_ANNOTATION);
    return r ? strtol(r, NULL, 10) : 0;
}

static int by_revision(const void *a, const void *b)
{
    long ra = revision_of(*(Coracle__V1__ReplicaSet *const *)a);
    long rb = revision_of(*(Coracle__V1__ReplicaSet *const *)b);
    return ra < rb ? -1 : ra > rb;
}

static int rollout_history(struct ctl_client *c, const struct kind *k, const char *name)
{
    char ref[320];
    if (k != &kind_deployment) {
        fprintf(stderr, "error: no history viewer has been implemented for %s\n", k->kind);
        return 1;
    }
    Coracle__V1__Deployment *d = (Coracle__V1__Deployment *)ctl_get_obj(c, k, name);
    if (!d)
        return 1;
    Coracle__V1__ReplicaSetList *list;
    Coracle__V1__ReplicaSet **sets;
    size_t n;
    int rc = 1;
    if (owned_sets(c, d, &list, &sets, &n) == 0) {
        qsort(sets, n, sizeof(*sets), by_revision);
        printf("%s \n", ref_name(ref, sizeof(ref), k, name));
        printf("REVISION  CHANGE-CAUSE\n");
        for (size_t i = 0; i < n; i++) {
            long r = revision_of(sets[i]);
            if (r <= 0)
                continue;
            const char *cause = annotation(sets[i]->metadata, CHANGE_CAUSE_ANNOTATION);
            printf("%-9ld %s\n", r, cause ? cause : "<none>");
        }
        printf("\n");
        free(sets);
        protobuf_c_message_free_unpacked(&list->base, NULL);
        rc = 0;
    }
    protobuf_c_message_free_unpacked(&d->base, NULL);
    return rc;
}

/* The template's labels without pod-template-hash (what the Deployment had). */
static void drop_hash_label(Coracle__V1__PodTemplateSpec *t)
{
    Coracle__V1__ObjectMeta *m = t ? t->metadata : NULL;
    for (size_t i = 0; m && i < m->n_labels; i++)
        if (!strcmp(m->labels[i]->key, "pod-template-hash")) {
            protobuf_c_message_free_unpacked(&m->labels[i]->base, NULL);
            m->labels[i] = m->labels[--m->n_labels];
            return;
        }
}

static int rollout_undo(struct ctl_client *c, const struct kind *k, const char *name, long to)
{
    char ref[320];
    if (k != &kind_deployment) {
        fprintf(stderr, "error: no rollbacker has been implemented for %s\n", k->kind);
        return 1;
    }
    Coracle__V1__Deployment *d = (Coracle__V1__Deployment *)ctl_get_obj(c, k, name);
    if (!d)
        return 1;
    Coracle__V1__ReplicaSetList *list;
    Coracle__V1__ReplicaSet **sets;
    size_t n;
    int rc = 1;
    if (owned_sets(c, d, &list, &sets, &n) < 0) {
        protobuf_c_message_free_unpacked(&d->base, NULL);
        return 1;
    }
    const char *cur = annotation(d->metadata, REVISION_ANNOTATION);
    long current = cur ? strtol(cur, NULL, 10) : 0;
    Coracle__V1__ReplicaSet *pick = NULL;
    for (size_t i = 0; i < n; i++) {
        long r = revision_of(sets[i]);
        if (to > 0 ? r == to : (r < current && (!pick || r > revision_of(pick))))
            pick = sets[i];
    }
    if (d->spec && d->spec->paused) {
        fprintf(stderr, "error: you cannot rollback a paused deployment; resume it first with "
                        "'coraclectl rollout resume' and try again\n");
    } else if (!pick && to > 0) {
        fprintf(stderr, "error: unable to find specified revision %ld in history\n", to);
    } else if (!pick) {
        fprintf(stderr, "error: no rollout history found for deployment \"%s\"\n", name);
    } else if (!pick->spec || !pick->spec->template_) {
        fprintf(stderr, "error: revision %ld has no pod template\n", revision_of(pick));
    } else {
        Coracle__V1__PodTemplateSpec *t = pick->spec->template_;
        drop_hash_label(t);
        if (d->spec && pb_equal(&t->base, &d->spec->template_->base)) {
            printf("%s skipped rollback (current template already matches revision %ld)\n",
                   ref_name(ref, sizeof(ref), k, name), revision_of(pick));
            rc = 0;
        } else {
            if (!d->spec) {
                d->spec = xmalloc(sizeof(*d->spec));
                coracle__v1__deployment_spec__init(d->spec);
            }
            Coracle__V1__PodTemplateSpec *old = d->spec->template_;
            d->spec->template_ = t;
            pick->spec->template_ = old; /* freed with the list */
            if (update_obj(c, k, &d->base) == 0) {
                printf("%s rolled back\n", ref_name(ref, sizeof(ref), k, name));
                rc = 0;
            }
        }
    }
    free(sets);
    protobuf_c_message_free_unpacked(&list->base, NULL);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    return rc;
}

/* restart, pause, resume: one update of the Deployment (restart: of a DaemonSet too). */
static int rollout_edit(struct ctl_client *c, const struct kind *k, const char *name,
                        const char *sub)
{
    char ref[320];
    bool restart = !strcmp(sub, "restart");
    if (k != &kind_deployment && !(restart && k == &kind_daemonset)) {
        fprintf(stderr, "error: %s is not supported for %s\n", sub, k->kind);
        return 1;
    }
    ProtobufCMessage *obj = ctl_get_obj(c, k, name);
    if (!obj)
        return 1;
    int rc = 1;
    if (restart) {
        Coracle__V1__PodTemplateSpec **tp = k == &kind_deployment
                                                ? &((Coracle__V1__Deployment *)obj)->spec->template_
                                                : &((Coracle__V1__DaemonSet *)obj)->spec->template_;
        if (!*tp) {
            *tp = xmalloc(sizeof(**tp));
            coracle__v1__pod_template_spec__init(*tp);
        }
        if (!(*tp)->metadata) {
            (*tp)->metadata = xmalloc(sizeof(*(*tp)->metadata));
            coracle__v1__object_meta__init((*tp)->metadata);
        }
        char ts[64];
        time_t now = time(NULL);
        struct tm tm;
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
        set_annotation((*tp)->metadata, "kubectl.kubernetes.io/restartedAt", xstrdup(ts));
        if (update_obj(c, k, obj) == 0) {
            printf("%s restarted\n", ref_name(ref, sizeof(ref), k, name));
            rc = 0;
        }
    } else {
        Coracle__V1__Deployment *d = (Coracle__V1__Deployment *)obj;
        bool pause = !strcmp(sub, "pause");
        if (!d->spec) {
            d->spec = xmalloc(sizeof(*d->spec));
            coracle__v1__deployment_spec__init(d->spec);
        }
        if ((bool)d->spec->paused == pause) {
            fprintf(stderr, "error: deployments.apps \"%s\" is %s\n", name,
                    pause ? "already paused" : "not paused");
        } else {
            d->spec->has_paused = 1;
            d->spec->paused = pause;
            if (update_obj(c, k, obj) == 0) {
                printf("%s %s\n", ref_name(ref, sizeof(ref), k, name),
                       pause ? "paused" : "resumed");
                rc = 0;
            }
        }
    }
    protobuf_c_message_free_unpacked(obj, NULL);
    return rc;
}

int ctl_cmd_rollout(int argc, char **argv)
{
    bool help = false, watch = true;
    long long to = 0;
    const char *timeout = NULL;
    struct ctl_flag flags[] = {
        {"watch", 'w', CTL_FLAG_BOOL, &watch, NULL},
        {"to-revision", 0, CTL_FLAG_INT, &to, NULL},
        {"timeout", 0, CTL_FLAG_STR, &timeout, NULL},
        {"help", 'h', CTL_FLAG_BOOL, &help, NULL},
    };
    struct ctl_strv pos = {0};
    int dd;
    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, &dd) < 0)
        return 1;
    if (help || pos.n == 0) {
        fputs(rollout_help, help ? stdout : stderr);
        free(pos.v);
        return help ? 0 : 1;
    }
    const char *sub = pos.v[0];
    static const char *const subs[] = {"status", "history", "undo", "restart", "pause", "resume"};
    bool known = false;
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
        known |= !strcmp(sub, subs[i]);
    if (!known) {
        fprintf(stderr, "error: unknown command \"%s\" for \"coraclectl rollout\"\n", sub);
        free(pos.v);
        return 1;
    }
    struct ctl_strv rest = {pos.v + 1, pos.n - 1};
    static const struct kind *const rollable[] = {&kind_deployment, &kind_daemonset, NULL};
    const struct kind *k;
    const char *name;
    if (ctl_target(&rest, "rollout", rollable, &k, &name) < 0) {
        free(pos.v);
        return 1;
    }
    struct ctl_client c;
    if (ctl_client_open(&c) < 0) {
        free(pos.v);
        return 1;
    }
    int rc;
    if (!strcmp(sub, "status"))
        rc = rollout_status(&c, k, name, watch, timeout);
    else if (!strcmp(sub, "history"))
        rc = rollout_history(&c, k, name);
    else if (!strcmp(sub, "undo"))
        rc = rollout_undo(&c, k, name, (long)to);
    else
        rc = rollout_edit(&c, k, name, sub);
    ctl_client_close(&c);
    free(pos.v);
    return rc;
}
