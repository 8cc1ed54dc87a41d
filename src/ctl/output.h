/*
 * output: what get, apply and describe share about naming resources on the
 * command line ("pods", "po/nginx") and printing objects in the -o formats.
 */
#ifndef CORACLE_CTL_OUTPUT_H
#define CORACLE_CTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "jsonpath.h"
#include "kinds.h"
#include "print.h"

/*
 * "pods", "po", "pod/nginx", "Pod": the kind (and, after a '/', *name
 * pointing into arg). Prints kubectl's error and returns NULL if unknown.
 */
const struct kind *ctl_resolve(const char *arg, const char **name);

/* How kubectl names objects of k in its messages, -o name and tables of
 * several kinds: "pod", "deployment.apps", "lease.coordination.k8s.io".
 * By value: ctl_kind_label(k).s lives to the end of the expression. */
struct ctl_kind_label {
    char s[96];
};
struct ctl_kind_label ctl_kind_label(const struct kind *k);

/* -o formats. */
enum ctl_out {
    CTL_OUT_TABLE,
    CTL_OUT_WIDE,
    CTL_OUT_YAML,
    CTL_OUT_JSON,
    CTL_OUT_NAME,
    CTL_OUT_JSONPATH, /* jsonpath=, jsonpath-as-json=, jsonpath-file= */
    CTL_OUT_COLUMNS,  /* custom-columns=HEADER:EXPR,... */
};

/* A parsed -o: the format and, for templates, what they need. */
struct ctl_output {
    enum ctl_out fmt;
    bool allow_missing; /* --allow-missing-template-keys (default true) */
    bool as_json;       /* jsonpath-as-json */
    char *tmpl;         /* jsonpath: the template as given, for messages */
    struct ctl_jp *jp;  /* jsonpath */
    char **headers;     /* custom-columns: ncols headers and expressions */
    struct ctl_jp **cols;
    size_t ncols;
};

/*
 * Parses -o (NULL or "" is the table). Fills *out (release with
 * ctl_output_free); prints kubectl's error and returns -1 if the format is
 * unknown or its template does not parse (then nothing needs freeing).
 */
int ctl_parse_output(const char *o, struct ctl_output *out);
void ctl_output_free(struct ctl_output *out);

/* Items of any list message (all are { ListMeta metadata = 1; repeated items = 2 }). */
ProtobufCMessage **ctl_list_items(ProtobufCMessage *list, size_t *n);

/*
 * Prints objects in the format: a table (with header unless no_headers),
 * a List (as_list) or the one object for yaml/json/jsonpath, or kind/name
 * lines. Writes to stdout. Returns 0, or -1 when a template fails on the
 * objects (kubectl's error printed on stderr, nothing on stdout).
 */
int ctl_print_objs(const struct kind *k, ProtobufCMessage *const *objs, size_t n, bool as_list,
                   const struct ctl_output *o, const struct ctl_print_opts *po);

/*
 * custom-columns, for callers that keep one table across calls (get -w):
 * the header line, and one row for obj. The row returns 0, or -1 with the
 * error printed.
 */
void ctl_print_columns_header(struct ctl_tw *tw, const struct ctl_output *o);
int ctl_print_columns_row(struct ctl_tw *tw, const struct kind *k, const ProtobufCMessage *obj,
                          const struct ctl_output *o);

/* `No resources found in default namespace.` on stderr. */
void ctl_print_none(const struct kind *k, const char *ns);

/* Reads a file ("-" = stdin) whole. Returns a malloc'd buffer or NULL (errno). */
char *ctl_read_file(const char *path, size_t *len);

#endif
