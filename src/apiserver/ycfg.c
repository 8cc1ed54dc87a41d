/*
 * ycfg: strict reading of configuration files from libyaml's document
 * tree. See ycfg.h.
 */
#include "config.h"
#include "ycfg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ycfg_fail(struct ycfg *c, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
    if (c->err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    const char *sep = path && *path ? ": " : "";
    if (n)
        c->err = xasprintf("%s:%zu: %s%s%s", c->name, n->start_mark.line + 1, path ? path : "", sep,
                           msg);
    else
        c->err = xasprintf("%s: %s%s%s", c->name, path ? path : "", sep, msg);
    free(msg);
    return -1;
}

/* Node idx of the document, or NULL (err set) when it was seen before: an alias. */
static yaml_node_t *node_at(struct ycfg *c, int idx, const yaml_node_t *parent, const char *path)
{
    yaml_node_t *n = yaml_document_get_node(c->doc, idx);
    if (!n) {
        ycfg_fail(c, parent, path, "no such node");
        return NULL;
    }
    size_t i = (size_t)(n - c->doc->nodes.start);
    if (c->seen[i]) {
        ycfg_fail(c, n, path, "YAML aliases are not supported");
        return NULL;
    }
    c->seen[i] = 1;
    return n;
}

const char *ycfg_kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE    ? "a mapping"
           : n->type == YAML_SEQUENCE_NODE ? "a list"
                                           : "a scalar";
}

const char *ycfg_str(struct ycfg *c, const yaml_node_t *n, const char *path)
{
    if (n->type != YAML_SCALAR_NODE) {
        ycfg_fail(c, n, path, "expected a string, got %s", ycfg_kind(n));
        return NULL;
    }
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
        ycfg_fail(c, n, path, "a NUL byte in a string");
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

bool ycfg_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

void ycfg_path_sub(char *out, const char *path, const char *field)
{
    snprintf(out, YCFG_PATH_LEN, "%s%s%s", path, *path ? "." : "", field);
}

void ycfg_path_idx(char *out, const char *path, size_t i)
{
    snprintf(out, YCFG_PATH_LEN, "%s[%zu]", path, i);
}

int ycfg_pairs(struct ycfg *c, yaml_node_t *n, const char *path, ycfg_pair_fn fn, void *arg)
{
    if (n->type != YAML_MAPPING_NODE)
        return ycfg_fail(c, n, path, "expected a mapping, got %s", ycfg_kind(n));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key, n, path), *v;
        const char *key = k ? ycfg_str(c, k, path) : NULL;
        if (!key)
            return -1;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
            if (k2 && k2->type == YAML_SCALAR_NODE &&
                !strcmp((const char *)k2->data.scalar.value, key))
                return ycfg_fail(c, k, path, "duplicate field \"%s\"", key);
        }
        char sub[YCFG_PATH_LEN];
        ycfg_path_sub(sub, path, key);
        if (!(v = node_at(c, p->value, k, sub)) || fn(c, key, v, sub, arg))
            return -1;
    }
    return 0;
}

size_t ycfg_len(const yaml_node_t *n)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

int ycfg_items(struct ycfg *c, yaml_node_t *n, const char *path, int flags, ycfg_item_fn fn,
               void *arg)
{
    if (n->type != YAML_SEQUENCE_NODE)
        return ycfg_fail(c, n, path, "expected a list, got %s", ycfg_kind(n));
    if ((flags & YCFG_NONEMPTY) && !ycfg_len(n))
        return ycfg_fail(c, n, path, "at least one is required");
    size_t i = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        char sub[YCFG_PATH_LEN];
        ycfg_path_idx(sub, path, i);
        yaml_node_t *v = node_at(c, *it, n, sub);
        if (!v || fn(c, v, sub, i, arg))
            return -1;
    }
    return 0;
}

static int walk_doc(struct ycfg *c, yaml_document_t *doc, ycfg_root_fn root, void *arg)
{
    yaml_node_t *r = yaml_document_get_root_node(doc);
    if (!r)
        return ycfg_fail(c, NULL, NULL, "empty file");
    c->doc = doc;
    c->seen = xcalloc((size_t)(doc->nodes.top - doc->nodes.start), 1);
    c->seen[r - doc->nodes.start] = 1;
    int rc = root(c, r, arg);
    free(c->seen);
    c->seen = NULL;
    c->doc = NULL;
    return rc;
}

int ycfg_parse(struct ycfg *c, const char *buf, size_t len, ycfg_root_fn root, void *arg)
{
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p))
        fatal("yaml_parser_initialize");
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int rc = -1;
    if (!yaml_parser_load(&p, &doc)) {
        c->err = xasprintf("%s:%zu: %s%s%s", c->name, p.problem_mark.line + 1,
                           p.problem ? p.problem : "invalid YAML", p.context ? " " : "",
                           p.context ? p.context : "");
    } else {
        rc = walk_doc(c, &doc, root, arg);
        yaml_document_delete(&doc);
        /* one document: a second one would be ignored by mistake */
        if (!rc && yaml_parser_load(&p, &doc)) {
            yaml_node_t *more = yaml_document_get_root_node(&doc);
            if (more)
                rc = ycfg_fail(c, more, NULL,
                               "a second document (the file holds one configuration)");
            yaml_document_delete(&doc);
        }
    }
    yaml_parser_delete(&p);
    return c->err ? -1 : rc;
}

int ycfg_read(const char *path, char **buf, size_t *len, char **err)
{
    FILE *f = fopen(path, "re");
    *buf = NULL;
    *len = 0;
    if (!f) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return -1;
    }
    char *b = xmalloc(YCFG_MAX_FILE + 1);
    size_t n = fread(b, 1, YCFG_MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > YCFG_MAX_FILE) {
        *err = bad ? xasprintf("%s: read error", path)
                   : xasprintf("%s: larger than %u bytes", path, YCFG_MAX_FILE);
        explicit_bzero(b, n < YCFG_MAX_FILE ? n : YCFG_MAX_FILE); /* it may hold keys */
        free(b);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}
