/*
 * columns: the columns Kubernetes shows for each kind (printers.go in
 * kubernetes/kubernetes) and the cells of one object: kubectl's derived
 * STATUS, READY and RESTARTS of a pod, a node's STATUS and ROLES, ages as
 * duration.HumanDuration. One implementation for both sides: coraclectl
 * prints these cells as its `get` tables, and the apiserver serves them as
 * a meta.k8s.io/v1 Table (what stock kubectl asks for with
 * Accept: application/json;as=Table;v=v1;g=meta.k8s.io).
 *
 * Everything takes "now" as a parameter, so tests give a fixed one.
 */
#ifndef CORACLE_COLUMNS_H
#define CORACLE_COLUMNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "coracle.pb-c.h"
#include "kinds.h"

/* ---------------------------------------------------------------- columns */

/* One column, as a Table's columnDefinitions has it. */
struct cols_def {
    const char *name;        /* "Nominated Node"; kubectl's header is it in upper case */
    const char *type;        /* "string" or "integer" (OpenAPI types) */
    const char *format;      /* "name" for the object's name column, else "" */
    const char *description; /* what the column shows */
    int priority;            /* 0: always shown; 1: only with -o wide */
};

/* Most columns a kind has (daemon sets: 11). */
#define COLS_MAX 11

/*
 * The columns of kind k (a kind without columns of its own gets Name and
 * Age). Returns a static array of *n (<= COLS_MAX) definitions.
 */
const struct cols_def *cols_defs(const struct kind *k, size_t *n);

/*
 * One object's cells, one per column of its kind, in cols_defs order. As in
 * Kubernetes, a cell is text, except the few that are numbers (an event's
 * Count): str NULL means the cell is the integer num.
 */
struct cols_cell {
    char *str; /* malloc'd */
    int64_t num;
};
struct cols_row {
    size_t n;
    struct cols_cell cell[COLS_MAX];
};
/* Fills *row for obj (a message of kind k); free with cols_row_free. */
void cols_row(const struct kind *k, const ProtobufCMessage *obj, int64_t now_ns,
              struct cols_row *row);
void cols_row_free(struct cols_row *row);

/* ----------------------------------------------- the derivations behind them */

/*
 * A label selector as Kubernetes writes it (LabelSelectorAsSelector's
 * String: "app=web,tier in (a,b),!canary", requirements sorted by key): a
 * Scale's status.selector, the SELECTOR column. "" for none or an empty
 * one. malloc'd.
 */
char *cols_label_selector(const Coracle__V1__LabelSelector *s);

/* duration.HumanDuration of d nanoseconds ("45s", "3m12s", "2h5m", "3d4h"). */
void cols_human_duration(char *buf, size_t n, int64_t d_ns);
/* translateTimestampSince: the age of t at now_ns; "<unknown>" for an unset time. */
void cols_age(char *buf, size_t n, const Coracle__V1__Time *t, int64_t now_ns);

/* printPod's derivation of STATUS, READY and RESTARTS. */
struct cols_pod_summary {
    char status[128];
    int ready, total, restarts;
    int64_t last_restart_sec; /* 0 if none */
};
void cols_pod_summary(const Coracle__V1__Pod *pod, struct cols_pod_summary *s);
/* The RESTARTS cell: "0", "3 (2m ago)". */
void cols_pod_restarts(char *buf, size_t n, const struct cols_pod_summary *s, int64_t now_ns);
/* The node STATUS cell: "Ready", "NotReady,SchedulingDisabled", "Unknown". */
void cols_node_status(char *buf, size_t n, const Coracle__V1__Node *node);
/* ROLES: from node-role.kubernetes.io/<role> and kubernetes.io/role labels;
 * "<none>" if none. malloc'd. */
char *cols_node_roles(const Coracle__V1__Node *node);

/* ------------------------------------------------------------ the Table */

/* What a row carries as "object" (the request's ?includeObject=). */
enum cols_include {
    COLS_INCLUDE_METADATA, /* PartialObjectMetadata: the default */
    COLS_INCLUDE_NONE,     /* no object */
    COLS_INCLUDE_OBJECT,   /* the whole object, written by object_fn */
};

/*
 * Writes obj (a message of kind k) to f as the JSON the API serves for it
 * (apiVersion and kind included), for COLS_INCLUDE_OBJECT.
 */
typedef void (*cols_object_fn)(FILE *f, const struct kind *k, const ProtobufCMessage *obj,
                               void *arg);

struct cols_table_opts {
    int64_t now_ns; /* the ages are computed against it */
    /* Leave columnDefinitions out ("null"): a watch's events after the first,
     * as the apiserver sends them (the client keeps the first ones). */
    bool no_headers;
    enum cols_include include;
    cols_object_fn object_fn; /* required for COLS_INCLUDE_OBJECT */
    void *object_arg;
    /* The Table's ListMeta: each NULL or "" is left out. A list passes the
     * list's; a get of one object its metadata.resourceVersion (which
     * cols_table_one does). */
    const char *resource_version;
    const char *continue_token;
    int64_t remaining_item_count; /* left out unless > 0 */
};

/*
 * The meta.k8s.io/v1 Table of objs[0..n) (messages of kind k): every column
 * (priority 1 too: the client drops what it does not show), one row per
 * object in order, compact JSON: the answer to a list. Returns the malloc'd
 * text (NUL-terminated; *len its length if len is not NULL); the caller
 * frees it.
 */
char *cols_table(const struct kind *k, ProtobufCMessage *const *objs, size_t n,
                 const struct cols_table_opts *o, size_t *len);
/*
 * The Table of one object: its row, and its resourceVersion as the Table's
 * (o's ListMeta is ignored), as the apiserver answers a get of one object
 * and sends each watch event's object (no_headers after the first event).
 */
char *cols_table_one(const struct kind *k, const ProtobufCMessage *obj,
                     const struct cols_table_opts *o, size_t *len);

#endif
