/*
 * output: what get, apply and describe share about naming resources on the
 * command line ("pods", "po/nginx") and printing objects in the -o formats.
 */
#ifndef CORACLE_CTL_OUTPUT_H
#define CORACLE_CTL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "kinds.h"
#include "print.h"

/*
 * "pods", "po", "pod/nginx", "Pod": the kind (and, after a '/', *name
 * pointing into arg). Prints kubectl's error and returns NULL if unknown.
 */
const struct kind *ctl_resolve(const char *arg, const char **name);

/* -o formats. */
enum ctl_out { CTL_OUT_TABLE, CTL_OUT_WIDE, CTL_OUT_YAML, CTL_OUT_JSON, CTL_OUT_NAME };
/* Parses -o; prints an error and returns -1 if unknown. */
int ctl_parse_output(const char *o, enum ctl_out *out);

/* Items of any list message (all are { ListMeta metadata = 1; repeated items = 2 }). */
ProtobufCMessage **ctl_list_items(ProtobufCMessage *list, size_t *n);

/*
 * Prints objects in the format: a table (with header unless no_headers),
 * one object or a List for yaml/json, or kind/name lines. Writes to stdout.
 */
void ctl_print_objs(const struct kind *k, ProtobufCMessage *const *objs, size_t n, enum ctl_out fmt,
                    const struct ctl_print_opts *po);

/* `No resources found in default namespace.` on stderr. */
void ctl_print_none(const struct kind *k, const char *ns);

/* Reads a file ("-" = stdin) whole. Returns a malloc'd buffer or NULL (errno). */
char *ctl_read_file(const char *path, size_t *len);

#endif
