/*
 * output: resource names on the command line and the -o formats. See output.h.
 */
#include "config.h"
#include "output.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"
#include "kobj.h"

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
    const struct kind *k = NULL;
    if (dot) {
        *dot = '\0';
        k = kind_lookup(type);
        const char *gs = k ? strchr(k->api_version, '/') : NULL;
        if (k && (!gs || strlen(dot + 1) != (size_t)(gs - k->api_version) ||
                  strncmp(dot + 1, k->api_version, (size_t)(gs - k->api_version))))
            k = NULL;
        *dot = '.';
    } else {
        k = kind_lookup(type);
    }
    if (!k)
        fprintf(stderr, "error: the server doesn't have a resource type \"%s\"\n", type);
    return k;
}

struct ctl_kind_label ctl_kind_label(const struct kind *k)
{
    struct ctl_kind_label l;
    const char *slash = strchr(k->api_version, '/');
    if (slash)
        snprintf(l.s, sizeof(l.s), "%s.%.*s", k->singular, (int)(slash - k->api_version),
                 k->api_version);
    else
        snprintf(l.s, sizeof(l.s), "%s", k->singular);
    return l;
}

static int output_err(const char *fmt, ...) PRINTF(1, 2);
static int output_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    return -1;
}

/* custom-columns=NAME:.metadata.name,NODE:.spec.nodeName */
static int parse_columns(const char *spec, struct ctl_output *out)
{
    int rc = 0;
    /* strings.Split: an empty part is a bad spec too */
    for (const char *p = spec;; p++) {
        size_t n = strcspn(p, ",");
        char *part = xstrndup(p, n), *colon = strchr(part, ':'), *tmpl = NULL, *err = NULL;
        struct ctl_jp *jp = NULL;
        if (!colon) {
            rc = output_err(
                "unexpected custom-columns spec: %s, expected <header>:<json-path-expr>\n", part);
        } else {
            *colon = '\0';
            if (ctl_jp_relaxed(colon + 1, &tmpl, &err) < 0 || ctl_jp_parse(tmpl, &jp, &err) < 0)
                rc = output_err("%s\n", err);
        }
        free(err);
        free(tmpl);
        if (rc < 0) {
            free(part);
            break;
        }
        out->headers = xrealloc(out->headers, (out->ncols + 1) * sizeof(*out->headers));
        out->cols = xrealloc(out->cols, (out->ncols + 1) * sizeof(*out->cols));
        out->headers[out->ncols] = part;
        out->cols[out->ncols++] = jp;
        p += n;
        if (!*p)
            break;
    }
    return rc;
}

int ctl_parse_output(const char *o, struct ctl_output *out)
{
    memset(out, 0, sizeof(*out));
    out->allow_missing = true;
    const char *eq = o ? strchr(o, '=') : NULL;
    size_t nl = eq ? (size_t)(eq - o) : o ? strlen(o) : 0;
    const char *val = eq ? eq + 1 : "";
    if (!o || !*o)
        out->fmt = CTL_OUT_TABLE;
    else if (!strcmp(o, "wide"))
        out->fmt = CTL_OUT_WIDE;
    else if (!strcmp(o, "yaml"))
        out->fmt = CTL_OUT_YAML;
    else if (!strcmp(o, "json"))
        out->fmt = CTL_OUT_JSON;
    else if (!strcmp(o, "name"))
        out->fmt = CTL_OUT_NAME;
    else if ((nl == 8 && !strncmp(o, "jsonpath", nl)) ||
             (nl == 16 && !strncmp(o, "jsonpath-as-json", nl)) ||
             (nl == 13 && !strncmp(o, "jsonpath-file", nl))) {
        out->fmt = CTL_OUT_JSONPATH;
        out->as_json = nl == 16;
        if (!*val)
            return output_err("template format specified but no template given\n");
        if (nl == 13) {
            size_t len;
            out->tmpl = ctl_read_file(val, &len);
            if (!out->tmpl) {
                /* Go's os.ReadFile error: "open F: no such file or directory" */
                char why[256];
                snprintf(why, sizeof(why), "%s", strerror(errno));
                if (why[0] >= 'A' && why[0] <= 'Z')
                    why[0] = (char)(why[0] - 'A' + 'a');
                return output_err("error reading --template %s, open %s: %s\n", val, val, why);
            }
        } else
            out->tmpl = xstrdup(val);
        char *err = NULL;
        if (ctl_jp_parse(out->tmpl, &out->jp, &err) < 0) {
            output_err("error parsing jsonpath %s, %s\n", out->tmpl, err);
            free(err);
            ctl_output_free(out);
            return -1;
        }
    } else if (nl == 14 && !strncmp(o, "custom-columns", nl)) {
        out->fmt = CTL_OUT_COLUMNS;
        if (!*val)
            return output_err("custom-columns format specified but no custom columns given\n");
        if (parse_columns(val, out) < 0) {
            ctl_output_free(out);
            return -1;
        }
    } else {
        return output_err("unable to match a printer suitable for the output format \"%s\", "
                          "allowed formats are: "
                          "custom-columns,json,jsonpath,jsonpath-as-json,jsonpath-file,name,wide,"
                          "yaml\n",
                          o);
    }
    return 0;
}

void ctl_output_free(struct ctl_output *out)
{
    free(out->tmpl);
    ctl_jp_free(out->jp);
    for (size_t i = 0; i < out->ncols; i++) {
        free(out->headers[i]);
        ctl_jp_free(out->cols[i]);
    }
    free(out->headers);
    free(out->cols);
    memset(out, 0, sizeof(*out));
}

/* The object (or List) as -o json has it, as a tree for the templates. */
static json_t *output_tree(const struct kind *k, ProtobufCMessage *const *objs, size_t n,
                           bool as_list)
{
    char *json = as_list ? kobj_emit_list(k, objs, n, KOBJ_FMT_JSON_COMPACT)
                         : kobj_emit(k, objs[0], KOBJ_FMT_JSON_COMPACT);
    json_t *v = NULL;
    char *err = NULL;
    if (ctl_jp_parse_json(json, strlen(json), &v, &err) < 0)
        fatal("kobj_emit wrote JSON that does not parse: %s", err); /* a bug */
    free(json);
    return v;
}

/* kubectl's JSONPathPrinter: the template on the object, or its error. */
static int print_jsonpath(const struct kind *k, ProtobufCMessage *const *objs, size_t n,
                          bool as_list, const struct ctl_output *o)
{
    json_t *v = output_tree(k, objs, n, as_list);
    struct buf out = {0};
    char *err = NULL;
    int flags = (o->allow_missing ? CTL_JP_ALLOW_MISSING : 0) | (o->as_json ? CTL_JP_AS_JSON : 0);
    int rc = ctl_jp_exec(o->jp, v, flags, &out, &err);
    if (rc == 0) {
        if (out.len)
            fwrite(out.p, 1, out.len, stdout);
        fflush(stdout);
    } else {
        /* kubectl dumps the object as a Go value; the JSON says the same */
        struct buf msg = {0};
        char *json = as_list ? kobj_emit_list(k, objs, n, KOBJ_FMT_JSON_COMPACT)
                             : kobj_emit(k, objs[0], KOBJ_FMT_JSON_COMPACT);
        buf_puts(&msg, "error: error executing jsonpath ");
        ctl_jp_go_quote(&msg, o->tmpl);
        buf_printf(&msg,
                   ": Error executing template: %s. Printing more information for "
                   "debugging the template:\n\ttemplate was:\n\t\t%s\n\tobject given to "
                   "jsonpath engine was:\n\t\t%s\n\n\n",
                   err, o->tmpl, json);
        fputs(msg.p, stderr);
        buf_free(&msg);
        free(json);
        free(err);
    }
    buf_free(&out);
    json_free(v);
    return rc;
}

void ctl_print_columns_header(struct ctl_tw *tw, const struct ctl_output *o)
{
    for (size_t i = 0; i < o->ncols; i++)
        ctl_tw_printf(tw, "%s%s", i ? "\t" : "", o->headers[i]);
    ctl_tw_printf(tw, "\n");
}

int ctl_print_columns_row(struct ctl_tw *tw, const struct kind *k, const ProtobufCMessage *obj,
                          const struct ctl_output *o)
{
    ProtobufCMessage *one = (ProtobufCMessage *)obj;
    json_t *v = output_tree(k, &one, 1, false);
    struct buf row = {0};
    int rc = 0;
    for (size_t i = 0; i < o->ncols && rc == 0; i++) {
        char *err = NULL;
        if (i)
            buf_puts(&row, "\t");
        if ((rc = ctl_jp_cell(o->cols[i], v, &row, &err)) < 0) {
            fprintf(stderr, "error: %s\n", err);
            free(err);
        }
    }
    if (rc == 0)
        ctl_tw_printf(tw, "%s\n", row.p ? row.p : "");
    buf_free(&row);
    json_free(v);
    return rc;
}

ProtobufCMessage **ctl_list_items(ProtobufCMessage *list, size_t *n)
{
    Coracle__V1__PodList *l = (Coracle__V1__PodList *)list;
    *n = l->n_items;
    return (ProtobufCMessage **)l->items;
}

int ctl_print_objs(const struct kind *k, ProtobufCMessage *const *objs, size_t n, bool as_list,
                   const struct ctl_output *o, const struct ctl_print_opts *po)
{
    char *s = NULL;
    int rc = 0;
    switch (o->fmt) {
    case CTL_OUT_TABLE:
    case CTL_OUT_WIDE: {
        struct ctl_tw tw;
        struct buf out = {0};
        struct ctl_print_opts opts = *po;
        opts.wide = o->fmt == CTL_OUT_WIDE;
        ctl_tw_init(&tw, 6, 3, false);
        ctl_print_header(&tw, k, &opts);
        for (size_t i = 0; i < n; i++)
            ctl_print_row(&tw, k, objs[i], &opts);
        ctl_tw_flush(&tw, &out);
        ctl_tw_free(&tw);
        s = buf_take(&out);
        break;
    }
    case CTL_OUT_COLUMNS: {
        /* kubectl's CustomColumnsPrinter: rows printed before an error stay */
        struct ctl_tw tw;
        struct buf out = {0};
        ctl_tw_init(&tw, 6, 3, false);
        if (!po->no_headers)
            ctl_print_columns_header(&tw, o);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = ctl_print_columns_row(&tw, k, objs[i], o);
        ctl_tw_flush(&tw, &out);
        ctl_tw_free(&tw);
        s = buf_take(&out);
        break;
    }
    case CTL_OUT_YAML:
    case CTL_OUT_JSON: {
        enum kobj_fmt f = o->fmt == CTL_OUT_YAML ? KOBJ_FMT_YAML : KOBJ_FMT_JSON;
        s = as_list ? kobj_emit_list(k, objs, n, f) : kobj_emit(k, objs[0], f);
        break;
    }
    case CTL_OUT_JSONPATH:
        return print_jsonpath(k, objs, n, as_list, o) < 0 ? -1 : 0;
    case CTL_OUT_NAME: {
        struct buf b = {0};
        struct ctl_kind_label kn = ctl_kind_label(k);
        for (size_t i = 0; i < n; i++) {
            const Coracle__V1__ObjectMeta *md = kind_meta(objs[i]);
            buf_printf(&b, "%s/%s\n", kn.s, md && md->name ? md->name : "");
        }
        s = buf_take(&b);
        break;
    }
    }
    fputs(s, stdout);
    fflush(stdout);
    free(s);
    return rc;
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
    struct buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        buf_free(&b);
        errno = EIO;
        return NULL;
    }
    *len = b.len;
    return buf_take(&b);
}
