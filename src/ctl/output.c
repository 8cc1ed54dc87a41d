/*
 * output: resource names on the command line and the -o formats. See output.h.
 */
#include "config.h"
#include "output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "yaml_pb.h"

const struct kind *ctl_resolve(const char *arg, const char **name)
{
    char type[128];
    const char *slash = strchr(arg, '/');
    size_t tl = slash ? (size_t)(slash - arg) : strlen(arg);
    if (name)
        *name = slash ? slash + 1 : NULL;
    snprintf(type, sizeof(type), "%.*s", (int)(tl < sizeof(type) ? tl : sizeof(type) - 1), arg);
    /* kubectl also takes kind.group forms like "leases.coordination.k8s.io" */
    char *dot = strchr(type, '.');
    if (dot && !strcmp(dot, ".coordination.k8s.io"))
        *dot = '\0';
    const struct kind *k = kind_lookup(type);
    if (!k)
        fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", type);
    return k;
}

int ctl_parse_output(const char *o, enum ctl_out *out)
{
    if (!o || !*o)
        *out = CTL_OUT_TABLE;
    else if (!strcmp(o, "wide"))
        *out = CTL_OUT_WIDE;
    else if (!strcmp(o, "yaml"))
        *out = CTL_OUT_YAML;
    else if (!strcmp(o, "json"))
        *out = CTL_OUT_JSON;
    else if (!strcmp(o, "name"))
        *out = CTL_OUT_NAME;
    else {
        fprintf(stderr,
                "error: unable to match a printer suitable for the output format \"%s\", allowed "
                "formats are: json,name,wide,yaml\n",
                o);
        return -1;
    }
    return 0;
}

ProtobufCMessage **ctl_list_items(ProtobufCMessage *list, size_t *n)
{
    Coracle__V1__PodList *l = (Coracle__V1__PodList *)list;
    *n = l->n_items;
    return (ProtobufCMessage **)l->items;
}

void ctl_print_objs(const struct kind *k, ProtobufCMessage *const *objs, size_t n, enum ctl_out fmt,
                    const struct ctl_print_opts *po)
{
    char *s = NULL;
    switch (fmt) {
    case CTL_OUT_TABLE:
    case CTL_OUT_WIDE: {
        struct ctl_tw tw;
        struct ctl_buf out = {0};
        struct ctl_print_opts o = *po;
        o.wide = fmt == CTL_OUT_WIDE;
        ctl_tw_init(&tw, 6, 3, false);
        ctl_print_header(&tw, k, &o);
        for (size_t i = 0; i < n; i++)
            ctl_print_row(&tw, k, objs[i], &o);
        ctl_tw_flush(&tw, &out);
        ctl_tw_free(&tw);
        s = ctl_buf_take(&out);
        break;
    }
    case CTL_OUT_YAML:
    case CTL_OUT_JSON: {
        enum ctl_fmt f = fmt == CTL_OUT_YAML ? CTL_FMT_YAML : CTL_FMT_JSON;
        s = n == 1 ? ctl_emit(k, objs[0], f) : ctl_emit_list(k, objs, n, f);
        break;
    }
    case CTL_OUT_NAME: {
        struct ctl_buf b = {0};
        for (size_t i = 0; i < n; i++) {
            const Coracle__V1__ObjectMeta *md = kind_meta(objs[i]);
            ctl_buf_printf(&b, "%s/%s\n", k->singular, md && md->name ? md->name : "");
        }
        s = ctl_buf_take(&b);
        break;
    }
    }
    fputs(s, stdout);
    fflush(stdout);
    free(s);
}

void ctl_print_none(const struct kind *k, const char *ns)
{
    if (k->namespaced && ns)
        fprintf(stderr, "No resources found in %s namespace.\n", ns);
    else
        fprintf(stderr, "No resources found\n");
}

char *ctl_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    struct ctl_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ctl_buf_add(&b, chunk, n);
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        ctl_buf_free(&b);
        errno = EIO;
        return NULL;
    }
    *len = b.len;
    return ctl_buf_take(&b);
}
