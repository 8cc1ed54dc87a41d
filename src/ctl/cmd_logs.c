/*
 * cmd_logs: `coraclectl logs [-f] [-c C] [--previous] [--tail N] POD`:
 * the server stream /coracle.v1.Pods/Log of LogChunk copied to stdout.
 * Also the container choice exec shares: -c, else the first container
 * (saying so when the pod has several, as kubectl does).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "ctl.h"
#include "grpc.h"
#include "output.h"

static const char logs_help[] =
    "Print the logs for a container in a pod. If the pod has only one container, the container\n"
    "name is optional; otherwise the first container is used.\n"
    "\n"
    "Examples:\n"
    "  coraclectl logs nginx\n"
    "  coraclectl logs -f -c busybox nginx\n"
    "  coraclectl logs --tail=20 po/nginx\n"
    "\n"
    "Options:\n"
    "  -c, --container='': Print the logs of this container.\n"
    "  -f, --follow=false: Specify if the logs should be streamed.\n"
    "  -p, --previous=false: Print the logs of the previous instance of the container.\n"
    "      --tail=-1: Lines of recent log file to display; -1 shows all.\n"
    "  -n, --namespace='': The namespace (default \"default\").\n"
    "\n"
    "Usage:\n"
    "  coraclectl logs [-f] [-p] POD [-c CONTAINER] [options]\n";

/* "nginx", "pod/nginx", "po/nginx": the pod's name, or NULL (error printed). */
static const char *pod_arg(const char *arg)
{
    const char *slash = strchr(arg, '/');
    if (!slash)
        return arg;
    const char *name;
    const struct kind *k = ctl_resolve(arg, &name);
    if (!k)
        return NULL;
    if (k != &kind_pod) {
        fprintf(stderr, "error: cannot attach to %s: only pods have containers\n", k->resource);
        return NULL;
    }
    return name;
}

/* kubectl's kubectl.kubernetes.io/default-container annotation, if it names a container. */
static const char *default_container(const Coracle__V1__Pod *p)
{
    const Coracle__V1__ObjectMeta *md = p->metadata;
    for (size_t i = 0; md && i < md->n_annotations; i++) {
        const char *k = md->annotations[i]->key, *v = md->annotations[i]->value;
        if (!k || !v || strcmp(k, "kubectl.kubernetes.io/default-container"))
            continue;
        for (size_t j = 0; p->spec && j < p->spec->n_containers; j++)
            if (p->spec->containers[j]->name && !strcmp(p->spec->containers[j]->name, v))
                return v;
    }
    return NULL;
}

int ctl_pod_container(struct ctl_client *c, const char *arg, const char *want, char **pod,
                      char **container)
{
    const char *name = pod_arg(arg);
    if (!name)
        return -1;
    Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
    req.namespace_ = (char *)ctl_namespace();
    req.name = (char *)name;
    ProtobufCMessage *obj;
    char *err;
    int code = ctl_call(c, &kind_pod, "Get", &req.base, kind_pod.desc, &obj, &err);
    if (code != GRPC_OK) {
        ctl_print_error(c, code, err);
        free(err);
        return -1;
    }
    Coracle__V1__Pod *p = (Coracle__V1__Pod *)obj;
    size_t n = p->spec ? p->spec->n_containers : 0;
    const char *dflt;
    int rc = 0;
    if (want) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            found |= p->spec->containers[i]->name && !strcmp(p->spec->containers[i]->name, want);
        for (size_t i = 0; p->spec && i < p->spec->n_initcontainers; i++)
            found |=
                p->spec->initcontainers[i]->name && !strcmp(p->spec->initcontainers[i]->name, want);
        if (!found) {
            fprintf(stderr,
                    "Error from server (BadRequest): container %s is not valid for pod %s\n", want,
                    name);
            rc = -1;
        } else
            *container = xstrdup(want);
    } else if ((dflt = default_container(p))) {
        *container = xstrdup(dflt);
    } else if (!n || !p->spec->containers[0]->name) {
        fprintf(stderr, "error: pod %s has no containers\n", name);
        rc = -1;
    } else {
        *container = xstrdup(p->spec->containers[0]->name);
        if (n > 1) {
            fprintf(stderr, "Defaulted container \"%s\" out of: ", *container);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "%s%s", i ? ", " : "",
                        p->spec->containers[i]->name ? p->spec->containers[i]->name : "");
            fprintf(stderr, "\n");
        }
    }
    if (rc == 0)
        *pod = xstrdup(name);
    protobuf_c_message_free_unpacked(obj, NULL);
    return rc;
}

struct logs_state {
    struct ctl_client *c;
    int code;
    char *msg;
};

static void logs_msg(gcl_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    Coracle__V1__LogChunk *ch = coracle__v1__log_chunk__unpack(NULL, len, msg);
    if (!ch)
        return;
    size_t off = 0;
    while (ch->has_data && off < ch->data.len) {
        ssize_t w = write(STDOUT_FILENO, ch->data.data + off, ch->data.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    coracle__v1__log_chunk__free_unpacked(ch, NULL);
}

static void logs_done(gcl_call_t *call, int code, const char *message, void *arg)
{
    struct logs_state *s = arg;
    s->code = code;
    s->msg = xstrdup(message ? message : "");
    event_base_loopbreak(s->c->base);
}

int ctl_cmd_logs(int argc, char **argv)
{
    const char *container = NULL;
    bool follow = false, previous = false;
    long long tail = -1;
    const struct ctl_flag flags[] = {
        {"container", 'c', CTL_FLAG_STR, &container, NULL},
        {"follow", 'f', CTL_FLAG_BOOL, &follow, NULL},
        {"previous", 'p', CTL_FLAG_BOOL, &previous, NULL},
        {"tail", 0, CTL_FLAG_INT, &tail, NULL},
    };
    struct ctl_strv pos;
    struct ctl_client c;
    char *pod = NULL, *cname = NULL;
    int rc = 1;

    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        return 1;
    if (ctl_g.help) {
        fputs(logs_help, stdout);
        free(pos.v);
        return 0;
    }
    if (pos.n != 1 && !(pos.n == 2 && !container)) {
        fprintf(stderr, "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\n"
                        "POD or TYPE/NAME is a required argument for the logs command\n");
        free(pos.v);
        return 1;
    }
    if (pos.n == 2)
        container = pos.v[1]; /* kubectl's `logs POD CONTAINER` */
    if (ctl_client_open(&c) < 0) {
        free(pos.v);
        return 1;
    }
    if (ctl_pod_container(&c, pos.v[0], container, &pod, &cname) < 0)
        goto out;
    Coracle__V1__PodLogRequest req = CORACLE__V1__POD_LOG_REQUEST__INIT;
    req.namespace_ = (char *)ctl_namespace();
    req.name = pod;
    req.container = cname;
    req.has_follow = follow;
    req.follow = follow;
    req.has_previous = previous;
    req.previous = previous;
    if (tail >= 0) {
        req.has_taillines = 1;
        req.taillines = tail;
    }
    struct logs_state s = {&c, -1, NULL};
    gcl_call(c.g, "/coracle.v1.Pods/Log", &req.base, logs_msg, logs_done, &s, 0);
    if (s.code < 0)
        event_base_dispatch(c.base);
    if (s.code == GRPC_OK)
        rc = 0;
    else if (s.code == GRPC_UNIMPLEMENTED)
        fprintf(stderr, "error: the server does not serve container logs yet (%s)\n",
                s.msg && *s.msg ? s.msg : "UNIMPLEMENTED");
    else
        ctl_print_error(&c, s.code, s.msg);
    free(s.msg);
out:
    free(pod);
    free(cname);
    ctl_client_close(&c);
    free(pos.v);
    return rc;
}
