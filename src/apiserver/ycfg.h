/*
 * ycfg: strict reading of the apiserver's Kubernetes-style configuration
 * files (EncryptionConfiguration, AdmissionConfiguration) from libyaml's
 * document tree, YAML or JSON alike. Every node knows its line, so each
 * problem is told as "FILE:LINE: path.to[0].field: what". Strict as
 * kube-apiserver: aliases, duplicate keys, non-string keys and a second
 * document are refused; the callers refuse unknown fields.
 */
#ifndef CORACLE_YCFG_H
#define CORACLE_YCFG_H

#include "util.h"

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#define YCFG_PATH_LEN 160
#define YCFG_MAX_FILE (1u << 20)

struct ycfg {
    const char *name; /* the file, for messages */
    void *user;       /* the caller's */
    yaml_document_t *doc;
    unsigned char *seen; /* per node: visited (a second visit is an alias) */
    char *err;           /* the first problem, malloc'd */
};

/* Records "FILE:LINE: path: what" (the first problem only); returns -1. n may be NULL. */
int ycfg_fail(struct ycfg *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
    PRINTF(4, 5);

/* "a mapping", "a list" or "a scalar". */
const char *ycfg_kind(const yaml_node_t *n);

/* A scalar's text, or NULL (err set): not a scalar, or a NUL byte in it. */
const char *ycfg_str(struct ycfg *c, const yaml_node_t *n, const char *path);

/* A plain null scalar: empty, ~, null. */
bool ycfg_is_null(const yaml_node_t *n);

/* path + "." + field, and path + "[i]", into out[YCFG_PATH_LEN]. */
void ycfg_path_sub(char *out, const char *path, const char *field);
void ycfg_path_idx(char *out, const char *path, size_t i);

/* Mapping n's pairs in order: fn(c, key, value, the value's path, arg); stops at the first error.
 */
typedef int (*ycfg_pair_fn)(struct ycfg *c, const char *key, yaml_node_t *v, const char *path,
                            void *arg);
int ycfg_pairs(struct ycfg *c, yaml_node_t *n, const char *path, ycfg_pair_fn fn, void *arg);

/* List n's items: fn(c, item, its path, index, arg). YCFG_NONEMPTY refuses an empty list. */
#define YCFG_NONEMPTY 1
typedef int (*ycfg_item_fn)(struct ycfg *c, yaml_node_t *v, const char *path, size_t i, void *arg);
int ycfg_items(struct ycfg *c, yaml_node_t *n, const char *path, int flags, ycfg_item_fn fn,
               void *arg);

/* The items of list n. */
size_t ycfg_len(const yaml_node_t *n);

/*
 * Loads the one document of buf and calls root(c, its root node, arg).
 * 0, or -1 with c->err set (bad YAML, an empty file, a second document, or
 * what root said).
 */
typedef int (*ycfg_root_fn)(struct ycfg *c, yaml_node_t *root, void *arg);
int ycfg_parse(struct ycfg *c, const char *buf, size_t len, ycfg_root_fn root, void *arg);

/* Reads path whole (at most YCFG_MAX_FILE bytes) into *buf (malloc'd, *len bytes). */
int ycfg_read(const char *path, char **buf, size_t *len, char **err);

#endif
