/*
 * openapi_int: what the files of openapi (openapi.c the names, schemas and
 * documents; openapi_paths.c the paths and their operations) share: the
 * JSON writer both versions of the documents are written with. Not for
 * other modules: use openapi.h.
 */
#ifndef CORACLE_OPENAPI_INT_H
#define CORACLE_OPENAPI_INT_H

#include "buf.h"
#include "kobj.h"
#include "openapi.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define META "io.k8s.apimachinery.pkg.apis.meta.v1"
#define MAX_DEPTH 32
#define MAX_DEFS 512

/* Which document: Swagger 2.0 or OpenAPI 3.0. */
enum ver { V2, V3 };

struct gen {
    struct buf b;
    enum ver v;
    int depth;
    bool first[MAX_DEPTH];
    const ProtobufCMessageDescriptor *defs[MAX_DEFS]; /* definitions to write */
    size_t ndefs;
    char tmp[256];
};

/* The separator before a member or element, and its key (NULL in an array). */
static inline void w_key(struct gen *g, const char *key)
{
    if (!g->first[g->depth])
        buf_puts(&g->b, ",");
    g->first[g->depth] = false;
    if (key) {
        kobj_json_str(&g->b, key, strlen(key));
        buf_puts(&g->b, ":");
    }
}

static inline void w_open(struct gen *g, const char *key, char c)
{
    w_key(g, key);
    buf_add(&g->b, &c, 1);
    g->first[++g->depth] = true;
}

static inline void w_close(struct gen *g, char c)
{
    buf_add(&g->b, &c, 1);
    g->depth--;
}

static inline void w_str(struct gen *g, const char *key, const char *s)
{
    w_key(g, key);
    kobj_json_str(&g->b, s, strlen(s));
}

/* A literal (number, true, false) or a JSON text already made. */
static inline void w_raw(struct gen *g, const char *key, const char *raw)
{
    w_key(g, key);
    buf_puts(&g->b, raw);
}

static inline void w_strs(struct gen *g, const char *key, const char *const *v)
{
    w_open(g, key, '[');
    for (; *v; v++)
        w_str(g, NULL, *v);
    w_close(g, ']');
}

/* The "$ref" member naming definition name. */
static inline void w_ref_member(struct gen *g, const char *name)
{
    char ref[192];
    snprintf(ref, sizeof(ref), "%s%s", g->v == V2 ? "#/definitions/" : "#/components/schemas/",
             name);
    w_str(g, "$ref", ref);
}

/* {"$ref": ...} for message d, which becomes a definition. */
static inline void w_ref(struct gen *g, const char *key, const ProtobufCMessageDescriptor *d)
{
    w_open(g, key, '{');
    w_ref_member(g, oapi_name(d, g->tmp, sizeof(g->tmp)));
    w_close(g, '}');
}

/* {"group": .., "kind": .., "version": ..} of kind name in apiVersion av. */
static inline void w_gvk(struct gen *g, const char *key, const char *av, const char *kind)
{
    const char *slash = strchr(av, '/');
    w_open(g, key, '{');
    w_key(g, "group");
    kobj_json_str(&g->b, av, slash ? (size_t)(slash - av) : 0);
    w_str(g, "kind", kind);
    w_str(g, "version", slash ? slash + 1 : av);
    w_close(g, '}');
}

/* openapi_paths.c: the "paths" member, every path of the kinds of gv (all if NULL). */
void oapi_paths(struct gen *g, const char *gv);

#endif
