/*
 * cmd_apply: `coraclectl apply -f` and `create -f`. Every input (files,
 * directories, stdin) is parsed first; if any document is bad nothing is
 * sent. apply keeps kubectl's last-applied-configuration annotation: the
 * same manifest again is "unchanged" (no write); a changed one is merged
 * onto the live object (fields the manifest sets replace the live ones,
 * fields it dropped since the last apply are removed, server fields stay)
 * and written with the live resourceVersion, retrying on conflicts.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"
#include "ctl.h"
#include "grpc.h"
#include "output.h"
#include "kobj.h"

#define LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

static const char apply_help[] =
    "Apply a configuration to a resource by file name or stdin. The resource is created if it\n"
    "doesn't exist yet; otherwise the fields the manifest sets are updated. JSON and YAML are\n"
    "accepted, several documents per file, and `kind: List`.\n"
    "\n"
    "Examples:\n"
    "  coraclectl apply -f pod.yaml\n"
    "  cat pod.yaml | coraclectl apply -f -\n"
    "  coraclectl apply -f manifests/\n"
    "\n"
    "Options:\n"
    "  -f, --filename=[]: Files or directories (not recursive) to use, or - for stdin.\n"
    "  -n, --namespace='': Namespace for objects that do not name one (default \"default\").\n"
    "\n"
    "Usage:\n"
    "  coraclectl apply -f FILENAME [options]\n";

static const char create_help[] =
    "Create a resource from a file or from stdin. Fails if the object exists already.\n"
    "\n"
    "Examples:\n"
    "  coraclectl create -f pod.yaml\n"
    "\n"
    "Options:\n"
    "  -f, --filename=[]: Files or directories (not recursive) to use, or - for stdin.\n"
    "  -n, --namespace='': Namespace for objects that do not name one (default \"default\").\n"
    "      --save-config=false: Store the manifest in the last-applied annotation.\n"
    "\n"
    "Usage:\n"
    "  coraclectl create -f FILENAME [options]\n";

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_suffix(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && !strcmp(s + a - b, sfx);
}

static int parse_one(const char *path, struct kobjs *objs)
{
    size_t len;
    char *buf = ctl_read_file(path, &len);
    if (!buf) {
        fprintf(stderr, "error: the path \"%s\" cannot be read: %s\n", path, strerror(errno));
        return -1;
    }
    char *err;
    int rc = kobj_parse(strcmp(path, "-") ? path : "STDIN", buf, len, objs, &err);
    if (rc < 0) {
        fprintf(stderr, "error: %s\n", err);
        free(err);
    }
    free(buf);
    return rc;
}

/* Parses everything named by -f; returns -1 (errors printed) if anything is bad. */
static int parse_inputs(const struct ctl_strv *files, struct kobjs *objs)
{
    int rc = 0;
    for (size_t i = 0; i < files->n; i++) {
        const char *p = files->v[i];
        struct stat st;
        if (strcmp(p, "-") && stat(p, &st) < 0) {
            fprintf(stderr, "error: the path \"%s\" does not exist\n", p);
            rc = -1;
            continue;
        }
        if (strcmp(p, "-") && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(p);
            if (!d) {
                fprintf(stderr, "error: the path \"%s\" cannot be read: %s\n", p, strerror(errno));
                rc = -1;
                continue;
            }
            char **names = NULL;
            size_t n = 0;
            struct dirent *de;
            while ((de = readdir(d))) {
                if (de->d_name[0] == '.' ||
                    !(has_suffix(de->d_name, ".yaml") || has_suffix(de->d_name, ".yml") ||
                      has_suffix(de->d_name, ".json")))
                    continue;
                names = xrealloc(names, (n + 1) * sizeof(*names));
                names[n++] = xasprintf("%s%s%s", p, has_suffix(p, "/") ? "" : "/", de->d_name);
            }
            closedir(d);
            qsort(names, n, sizeof(*names), cmp_name);
            for (size_t j = 0; j < n; j++) {
                if (parse_one(names[j], objs) < 0)
                    rc = -1;
                free(names[j]);
            }
            free(names);
            continue;
        }
        if (parse_one(p, objs) < 0)
            rc = -1;
    }
    return rc;
}

/* ---------------------------------------------------------- merge */

static int is_scalar_msg(const ProtobufCMessageDescriptor *d)
{
    return d == &coracle__v1__quantity__descriptor ||
           d == &coracle__v1__int_or_string__descriptor || d == &coracle__v1__time__descriptor ||
           d == &coracle__v1__micro_time__descriptor;
}

/*
 * The merge key of a list element, as Kubernetes' strategic merge keys
 * them: containerPort for ports, mountPath for volume mounts, else name.
 * Written into buf; NULL when the element has none.
 */
static const char *elem_key(const ProtobufCMessage *m, char *buf, size_t n)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &coracle__v1__container_port__descriptor) {
        const Coracle__V1__ContainerPort *p = (const Coracle__V1__ContainerPort *)m;
        if (!p->has_containerport)
            return NULL;
        snprintf(buf, n, "%d", p->containerport);
        return buf;
    }
    if (d == &coracle__v1__volume_mount__descriptor)
        return ((const Coracle__V1__VolumeMount *)m)->mountpath;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, "name");
    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return *(char *const *)((const char *)m + f->offset);
}

static int same_key(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    char ba[32], bb[32];
    const char *ka = elem_key(a, ba, sizeof(ba)), *kb = elem_key(b, bb, sizeof(bb));
    return ka && kb && !strcmp(ka, kb);
}

static void merge_msg(ProtobufCMessage *live, ProtobufCMessage *want, const ProtobufCMessage *last);

/*
 * Lists of keyed elements (containers, volumes, env, ports, mounts) merge
 * element by element: the result is the manifest's list, in its order, each
 * element merged onto the live one with the same key. Returns -1 (nothing
 * done) if a manifest element has no key.
 */
static int merge_keyed_list(ProtobufCMessage *live, ProtobufCMessage *want,
                            const ProtobufCMessage *last, const ProtobufCFieldDescriptor *f)
{
    char *lb = (char *)live, *wb = (char *)want, kbuf[32];
    size_t nl = *(size_t *)(lb + f->quantifier_offset), nw = *(size_t *)(wb + f->quantifier_offset);
    ProtobufCMessage **la = *(ProtobufCMessage ***)(lb + f->offset);
    ProtobufCMessage **wa = *(ProtobufCMessage ***)(wb + f->offset);
    for (size_t i = 0; i < nw; i++)
        if (!elem_key(wa[i], kbuf, sizeof(kbuf)))
            return -1;
    size_t nlast = last ? *(const size_t *)((const char *)last + f->quantifier_offset) : 0;
    ProtobufCMessage *const *lasta =
        last ? *(ProtobufCMessage *const *const *)((const char *)last + f->offset) : NULL;
    for (size_t i = 0; i < nw; i++) {
        for (size_t j = 0; j < nl; j++) {
            if (!la[j] || !same_key(la[j], wa[i]))
                continue;
            const ProtobufCMessage *lastel = NULL;
            for (size_t k = 0; k < nlast; k++)
                if (same_key(lasta[k], wa[i]))
                    lastel = lasta[k];
            merge_msg(la[j], wa[i], lastel);
            protobuf_c_message_free_unpacked(wa[i], NULL);
            wa[i] = la[j];
            la[j] = NULL;
            break;
        }
    }
    /* the live elements the manifest no longer has are dropped */
    for (size_t j = 0; j < nl; j++)
        if (la[j])
            protobuf_c_message_free_unpacked(la[j], NULL);
    free(la);
    *(size_t *)(lb + f->quantifier_offset) = 0;
    *(ProtobufCMessage ***)(lb + f->offset) = NULL;
    kobj_field_move(live, want, f);
    return 0;
}

static void merge_msg(ProtobufCMessage *live, ProtobufCMessage *want, const ProtobufCMessage *last)
{
    const ProtobufCMessageDescriptor *d = live->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        int in_want = kobj_field_is_set(want, f), in_last = last && kobj_field_is_set(last, f);
        if (!in_want) {
            if (in_last)
                kobj_field_clear(live, f);
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && !is_scalar_msg(f->descriptor) &&
            kobj_field_is_set(live, f)) {
            if (f->label != PROTOBUF_C_LABEL_REPEATED) {
                merge_msg(*(ProtobufCMessage **)((char *)live + f->offset),
                          *(ProtobufCMessage **)((char *)want + f->offset),
                          in_last ? *(ProtobufCMessage *const *)((const char *)last + f->offset)
                                  : NULL);
                continue;
            }
            if (!kobj_desc_is_map_entry(f->descriptor) &&
                merge_keyed_list(live, want, in_last ? last : NULL, f) == 0)
                continue;
        }
        kobj_field_move(live, want, f);
    }
}

static void set_annotation(Coracle__V1__ObjectMeta *md, const char *key, const char *value)
{
    for (size_t i = 0; i < md->n_annotations; i++)
        if (md->annotations[i]->key && !strcmp(md->annotations[i]->key, key)) {
            free(md->annotations[i]->value);
            md->annotations[i]->value = xstrdup(value);
            return;
        }
    Coracle__V1__ObjectMeta__AnnotationsEntry *e = xmalloc(sizeof(*e));
    coracle__v1__object_meta__annotations_entry__init(e);
    e->key = xstrdup(key);
    e->value = xstrdup(value);
    md->annotations = xrealloc(md->annotations, (md->n_annotations + 1) * sizeof(*md->annotations));
    md->annotations[md->n_annotations++] = e;
}

static const char *get_annotation(const Coracle__V1__ObjectMeta *md, const char *key)
{
    for (size_t i = 0; md && i < md->n_annotations; i++)
        if (md->annotations[i]->key && !strcmp(md->annotations[i]->key, key))
            return md->annotations[i]->value ? md->annotations[i]->value : "";
    return NULL;
}

static void drop_annotation(Coracle__V1__ObjectMeta *md, const char *key)
{
    for (size_t i = 0; i < md->n_annotations; i++)
        if (md->annotations[i]->key && !strcmp(md->annotations[i]->key, key)) {
            protobuf_c_message_free_unpacked(&md->annotations[i]->base, NULL);
            memmove(&md->annotations[i], &md->annotations[i + 1],
                    (md->n_annotations - i - 1) * sizeof(*md->annotations));
            md->n_annotations--;
            if (!md->n_annotations) {
                free(md->annotations);
                md->annotations = NULL;
            }
            return;
        }
}

/*
 * The live object updated from the manifest: labels and annotations from
 * the manifest (plus the last-applied one), the rest of metadata kept, the
 * other top-level fields (spec) merged. want is consumed.
 */
static void apply_merge(ProtobufCMessage *live, ProtobufCMessage *want, const char *applied,
                        const ProtobufCMessage *last)
{
    Coracle__V1__ObjectMeta *lm = kind_meta(live), *wm = kind_meta(want);
    const Coracle__V1__ObjectMeta *pm = last ? kind_meta(last) : NULL;
    const ProtobufCMessageDescriptor *md = &coracle__v1__object_meta__descriptor;
    const ProtobufCFieldDescriptor *fl = protobuf_c_message_descriptor_get_field_by_name(md,
                                                                                         "labels"),
                                   *fa = protobuf_c_message_descriptor_get_field_by_name(
                                       md, "annotations");
    if (!lm) {
        lm = xmalloc(sizeof(*lm));
        coracle__v1__object_meta__init(lm);
        kind_set_meta(live, lm);
    }
    if (wm) {
        if (wm->n_labels || (pm && pm->n_labels))
            kobj_field_move(&lm->base, &wm->base, fl);
        /* annotations the manifest sets replace, those it dropped since last time go */
        for (size_t i = 0; pm && i < pm->n_annotations; i++)
            if (pm->annotations[i]->key && !get_annotation(wm, pm->annotations[i]->key))
                drop_annotation(lm, pm->annotations[i]->key);
        for (size_t i = 0; i < wm->n_annotations; i++)
            set_annotation(lm, wm->annotations[i]->key, wm->annotations[i]->value);
    } else {
        Coracle__V1__ObjectMeta empty = CORACLE__V1__OBJECT_META__INIT;
        if (pm && pm->n_labels)
            kobj_field_move(&lm->base, &empty.base, fl);
        (void)fa;
    }
    set_annotation(lm, LAST_APPLIED, applied);
    const ProtobufCMessageDescriptor *d = live->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!strcmp(f->name, "metadata") || !strcmp(f->name, "status"))
            continue;
        int in_want = kobj_field_is_set(want, f), in_last = last && kobj_field_is_set(last, f);
        if (!in_want) {
            if (in_last)
                kobj_field_clear(live, f);
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
            kobj_field_is_set(live, f))
            merge_msg(*(ProtobufCMessage **)((char *)live + f->offset),
                      *(ProtobufCMessage **)((char *)want + f->offset),
                      in_last ? *(ProtobufCMessage *const *)((const char *)last + f->offset)
                              : NULL);
        else
            kobj_field_move(live, want, f);
    }
}

/* ------------------------------------------------------------ verbs */

static int apply_one(struct ctl_client *c, struct kobj *o, bool create, bool save_config)
{
    const struct kind *k = o->kind;
    Coracle__V1__ObjectMeta *md = kind_meta(o->msg);
    if (!md) {
        md = xmalloc(sizeof(*md));
        coracle__v1__object_meta__init(md);
        kind_set_meta(o->msg, md);
    }
    if (k->namespaced) {
        if (md->namespace_ && *md->namespace_ && ctl_g.namespace && *ctl_g.namespace &&
            strcmp(md->namespace_, ctl_g.namespace)) {
            fprintf(stderr,
                    "error: the namespace from the provided object \"%s\" does not match the "
                    "namespace \"%s\". You must pass '--namespace=%s' to perform this "
                    "operation.\n",
                    md->namespace_, ctl_g.namespace, md->namespace_);
            return 1;
        }
    }
    if ((!md->name || !*md->name) && (!md->generatename || !*md->generatename || !create)) {
        fprintf(stderr, "error: %s: resource name may not be empty\n", o->where);
        return 1;
    }
    /* the manifest as given (without our own annotation) is the last-applied value */
    drop_annotation(md, LAST_APPLIED);
    char *applied = kobj_emit(k, o->msg, KOBJ_FMT_JSON_COMPACT);
    if (k->namespaced && (!md->namespace_ || !*md->namespace_)) {
        free(md->namespace_);
        md->namespace_ = xstrdup(ctl_namespace());
    }
    const char *ns = k->namespaced ? md->namespace_ : "";
    int rc = 1;
    char *err = NULL;
    ProtobufCMessage *live = NULL, *resp = NULL;

    for (int attempt = 0; attempt < 5; attempt++) {
        int code = GRPC_NOT_FOUND;
        if (!create) {
            Coracle__V1__GetRequest req = CORACLE__V1__GET_REQUEST__INIT;
            req.namespace_ = (char *)ns;
            req.name = md->name;
            code = ctl_call(c, k, "Get", &req.base, k->desc, &live, &err);
        }
        if (code == GRPC_NOT_FOUND) {
            free(err);
            err = NULL;
            if (!create || save_config)
                set_annotation(md, LAST_APPLIED, applied);
            code = ctl_call(c, k, "Create", o->msg, k->desc, &resp, &err);
            if (code == GRPC_ALREADY_EXISTS && !create)
                goto retry;
            if (code != GRPC_OK)
                goto fail;
            const Coracle__V1__ObjectMeta *rm = kind_meta(resp);
            printf("%s/%s created\n", ctl_kind_label(k).s, rm && rm->name ? rm->name : md->name);
            rc = 0;
            goto out;
        }
        if (code != GRPC_OK)
            goto fail;
        const char *prev = get_annotation(kind_meta(live), LAST_APPLIED);
        if (prev && !strcmp(prev, applied)) {
            printf("%s/%s unchanged\n", ctl_kind_label(k).s, md->name);
            rc = 0;
            goto out;
        }
        if (!prev && attempt == 0)
            fprintf(stderr,
                    "Warning: resource %s/%s is missing the %s annotation which is required by "
                    "coraclectl apply. coraclectl apply should only be used on resources created "
                    "declaratively by either coraclectl create --save-config or coraclectl apply. "
                    "The missing annotation will be patched automatically.\n",
                    k->resource, md->name, LAST_APPLIED);
        ProtobufCMessage *last = NULL;
        if (prev) {
            char *perr = NULL;
            last = kobj_parse_msg(LAST_APPLIED, prev, strlen(prev), k->desc, &perr);
            free(perr); /* an unreadable annotation: merge as if there was none */
        }
        ProtobufCMessage *want = kobj_msg_dup(o->msg);
        drop_annotation(kind_meta(want), LAST_APPLIED);
        apply_merge(live, want, applied, last);
        protobuf_c_message_free_unpacked(want, NULL);
        if (last)
            protobuf_c_message_free_unpacked(last, NULL);
        code = ctl_call(c, k, "Update", live, k->desc, &resp, &err);
        if (code == GRPC_ABORTED)
            goto retry;
        if (code != GRPC_OK)
            goto fail;
        printf("%s/%s configured\n", ctl_kind_label(k).s, md->name);
        rc = 0;
        goto out;
    retry:
        free(err);
        err = NULL;
        if (live)
            protobuf_c_message_free_unpacked(live, NULL);
        live = NULL;
        continue;
    fail:
        if (code == GRPC_ALREADY_EXISTS || code == GRPC_NOT_FOUND ||
            code == GRPC_INVALID_ARGUMENT || code == GRPC_ABORTED || code == GRPC_UNAVAILABLE ||
            code == GRPC_FAILED_PRECONDITION || code == GRPC_UNAUTHENTICATED)
            ctl_print_error(c, code, err);
        else if (code == GRPC_PERMISSION_DENIED) {
            /* kubectl: Error from server (Forbidden): error when creating "pod.yaml": ... */
            const char *colon = strrchr(o->where, ':');
            int flen = colon ? (int)(colon - o->where) : (int)strlen(o->where);
            fprintf(stderr, "Error from server (Forbidden): error when %s \"%.*s\": %s\n",
                    create ? "creating" : "applying", flen, o->where, err ? err : "");
        } else {
            fprintf(stderr, "error: when %s %s/%s (%s): ", create ? "creating" : "applying",
                    k->singular, md->name, o->where);
            fflush(stderr);
            ctl_print_error(c, code, err);
        }
        goto out;
    }
    ctl_print_error(c, GRPC_ABORTED, err ? err : "too many conflicts, giving up");
out:
    free(err);
    free(applied);
    if (live)
        protobuf_c_message_free_unpacked(live, NULL);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

static int apply_or_create(int argc, char **argv, bool create)
{
    struct ctl_strv files = {0}, pos;
    bool save_config = false;
    const struct ctl_flag flags[] = {
        {"filename", 'f', CTL_FLAG_LIST, &files, NULL},
        {"save-config", 0, CTL_FLAG_BOOL, &save_config, NULL},
    };
    struct kobjs objs = {0};
    struct ctl_client c;
    int rc = 1;

    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        goto out_free;
    if (ctl_g.help) {
        fputs(create ? create_help : apply_help, stdout);
        rc = 0;
        goto out_free;
    }
    if (!files.n) {
        fprintf(stderr, "error: must specify one of -f and -k\n");
        goto out_free;
    }
    if (pos.n) {
        fprintf(stderr, "error: unexpected arguments: %s\nSee 'coraclectl %s -h' for help.\n",
                pos.v[0], create ? "create" : "apply");
        goto out_free;
    }
    if (parse_inputs(&files, &objs) < 0)
        goto out_free; /* nothing was sent */
    if (!objs.n) {
        fprintf(stderr, "error: no objects passed to %s\n", create ? "create" : "apply");
        goto out_free;
    }
    if (ctl_client_open(&c) < 0)
        goto out_free;
    rc = 0;
    for (size_t i = 0; i < objs.n; i++) {
        if (apply_one(&c, &objs.v[i], create, save_config))
            rc = 1;
    }
    ctl_client_close(&c);
out_free:
    kobjs_free(&objs);
    free(files.v);
    free(pos.v);
    return rc;
}

int ctl_cmd_apply(int argc, char **argv)
{
    return apply_or_create(argc, argv, false);
}

int ctl_cmd_create(int argc, char **argv)
{
    /* create role|clusterrole|rolebinding|clusterrolebinding NAME: from flags */
    for (int i = 1; i < argc; i++) {
        int g = ctl_global_flag_args(argv[i]);
        if (g) {
            i += g - 1;
            continue;
        }
        if (argv[i][0] == '-')
            continue;
        const struct kind *k = kind_lookup(argv[i]);
        if (k == &kind_role || k == &kind_clusterrole || k == &kind_rolebinding ||
            k == &kind_clusterrolebinding)
            return ctl_create_rbac(argc, argv);
        break;
    }
    return apply_or_create(argc, argv, true);
}
