/*
 * kpatch_dup: the checks of a patch's text that json.c's strict parser
 * makes (RFC 8259 exactly, bounded depth and size) and the duplicate keys
 * it keeps, for kpatch.c; a file of its own because json.h's names clash
 * with json-c's.
 */
#include "config.h"
#include "buf.h"
#include "json.h"
#include "kpatch.h"
#include "smap.h"
#include "util.h"

#include <string.h>

int kpatch_check_strict(const char *buf, size_t len, char **err);

static const struct json_limits limits = {
    .max_bytes = KPATCH_MAX_BYTES,
    .max_depth = KPATCH_MAX_DEPTH,
};

/* 0 if buf is one JSON value within the limits, else -1 with *err (malloc'd). */
int kpatch_check_strict(const char *buf, size_t len, char **err)
{
    json_t *v = NULL;
    if (json_parse(buf, len, &limits, &v, err) < 0)
        return -1;
    json_free(v);
    return 0;
}

/* Appends the path step of key k (or index i when k is NULL) to path. */
static void step(struct buf *path, const char *k, size_t i)
{
    if (k)
        buf_printf(path, "%s%s", path->len ? "." : "", k);
    else
        buf_printf(path, "[%zu]", i);
}

/* The first key v (an object) holds twice, or NULL; a hash for the long objects. */
static const char *dup_in(const json_t *v)
{
    if (v->n <= 16) {
        for (size_t i = 1; i < v->n; i++)
            for (size_t j = 0; j < i; j++)
                if (!strcmp(v->keys[i], v->keys[j]))
                    return v->keys[i];
        return NULL;
    }
    smap_t *seen = smap_new();
    const char *dup = NULL;
    for (size_t i = 0; i < v->n && !dup; i++)
        if (smap_put(seen, v->keys[i], (void *)v->keys[i]))
            dup = v->keys[i];
    smap_free(seen, NULL);
    return dup;
}

/* Depth-first: the path (in path) of the first duplicate key. 1 found, 0 not. */
static int find_dup(const json_t *v, struct buf *path)
{
    if (v->type != JSON_OBJECT && v->type != JSON_ARRAY)
        return 0;
    size_t at = path->len;
    if (v->type == JSON_OBJECT) {
        const char *d = dup_in(v);
        if (d) {
            step(path, d, 0);
            return 1;
        }
    }
    for (size_t i = 0; i < v->n; i++) {
        step(path, v->type == JSON_OBJECT ? v->keys[i] : NULL, i);
        if (find_dup(v->kids[i], path))
            return 1;
        path->len = at;
        if (path->p)
            path->p[at] = '\0';
    }
    return 0;
}

char *kpatch_duplicate(const char *buf, size_t len)
{
    json_t *v = NULL;
    if (json_parse(buf, len, &limits, &v, NULL) < 0)
        return NULL;
    struct buf path = {0};
    char *msg = NULL;
    if (find_dup(v, &path))
        msg = xasprintf("duplicate field \"%s\"", path.p);
    buf_free(&path);
    json_free(v);
    return msg;
}
