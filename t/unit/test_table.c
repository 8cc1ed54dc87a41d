/*
 * test_table: the meta.k8s.io/v1 Table of columns.c against a fixed "now":
 * pods in every STATUS coraclectl derives, nodes, events and leases. The
 * JSON parses (json.c, strict RFC 8259); the column definitions have
 * Kubernetes' names, types and priorities; the cells are what coraclectl
 * prints for the same objects (its `get` and `get -o wide` rows, cell by
 * cell); rows carry PartialObjectMetadata; one object, a watch event's
 * header-less form, empty lists and the ?includeObject= choices.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "columns.h"
#include "ctl.h"
#include "json.h"
#include "print.h"
#include "tap.h"
#include "testobj.h"
#include "kobj.h"

/* 2026-11-28T12:00:00Z */
#define NOW (1795867200LL * 1000000000LL)

/* A pod "p" created at 11:57 whose spec and status are rest. */
static ProtobufCMessage *pod(const char *rest)
{
    char *y = xasprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: ns1\n"
                        "  uid: 0b9c5c1e-1111-4222-8333-944455556666\n"
                        "  resourceVersion: \"42\"\n"
                        "  creationTimestamp: \"2026-11-28T11:57:00Z\"\n%s",
                        rest);
    ProtobufCMessage *m = obj(y);
    free(y);
    return m;
}

/* Parses a Table's JSON, failing the test run if it does not parse. */
static json_t *parse(const char *text, size_t len, const char *what)
{
    json_t *v = NULL;
    char *err = NULL;
    int rc = json_parse(text, len, NULL, &v, &err);
    if (!ok(rc == 0, "%s: the Table parses as JSON", what)) {
        diag("%s\n%s", err ? err : "?", text);
        exit(1);
    }
    free(err);
    return v;
}

static json_t *table_of(const struct kind *k, ProtobufCMessage **objs, size_t n,
                        const struct cols_table_opts *o, const char *what)
{
    size_t len;
    char *text = cols_table(k, objs, n, o, &len);
    ok(len == strlen(text), "%s: length returned", what);
    json_t *v = parse(text, len, what);
    free(text);
    return v;
}

/* One cell as coraclectl prints it (numbers in decimal). */
static void cell_text(struct buf *b, const json_t *c)
{
    if (json_is(c, JSON_STRING))
        buf_puts(b, c->str);
    else
        buf_add(b, c->str, c->len); /* a number as written */
}

/*
 * The cells of row i of table t that coraclectl shows (all, or the
 * priority 0 ones), tab-separated: what ctl_print_row writes for the object
 * before the tabwriter aligns it.
 */
static char *shown_cells(const json_t *t, size_t i, bool wide)
{
    const json_t *defs = json_get(t, "columnDefinitions");
    const json_t *cells = json_get(json_at(json_get(t, "rows"), i), "cells");
    struct buf b = {0};
    const char *sep = "";
    for (size_t j = 0; j < defs->n; j++) {
        int64_t prio = -1;
        json_int64(json_get(json_at(defs, j), "priority"), &prio);
        if (prio != 0 && !wide)
            continue;
        buf_puts(&b, sep);
        cell_text(&b, json_at(cells, j));
        sep = "\t";
    }
    buf_puts(&b, "\n");
    return buf_take(&b);
}

static char *ctl_row(const struct kind *k, const ProtobufCMessage *m, bool wide)
{
    struct ctl_tw tw;
    struct ctl_print_opts po = {.wide = wide, .now_ns = NOW};
    ctl_tw_init(&tw, 6, 3, false);
    ctl_print_row(&tw, k, m, &po);
    char *s = xstrdup(tw.text.p);
    ctl_tw_free(&tw);
    return s;
}

/* Row i's cells equal coraclectl's row for m, with and without -o wide. */
static void same_as_ctl(const json_t *t, size_t i, const struct kind *k, const ProtobufCMessage *m,
                        const char *what)
{
    for (int wide = 0; wide <= 1; wide++) {
        char *want = ctl_row(k, m, wide), *got = shown_cells(t, i, wide);
        char name[160];
        snprintf(name, sizeof(name), "%s: cells are coraclectl's%s row", what,
                 wide ? " -o wide" : "");
        is_str(got, want, name);
        free(want);
        free(got);
    }
}

struct pod_case {
    const char *status, *ready, *restarts, *rest;
};

#define C1 "spec:\n  containers:\n  - name: a\n"
#define C2 "spec:\n  containers:\n  - name: a\n  - name: b\n"
#define I2 "spec:\n  initContainers:\n  - name: i1\n  - name: i2\n  containers:\n  - name: a\n"
#define GONE "  deletionTimestamp: \"2026-11-28T11:59:30Z\"\n"
#define CS(state) "  containerStatuses:\n  - name: a\n    state:\n      " state "\n"
#define ICS(state) "  initContainerStatuses:\n  - name: i1\n    state:\n      " state "\n"

/* Every way printPod (and so coraclectl) arrives at a STATUS. The metadata
 * lines (GONE) come first: pod() appends to metadata. */
static const struct pod_case pods[] = {
    {"Pending", "0/1", "0", C1 "status:\n  phase: Pending\n"},
    {"", "0/1", "0", C1},
    {"Running", "1/1", "0",
     C1 "status:\n  phase: Running\n  containerStatuses:\n  - name: a\n    ready: true\n"
        "    state:\n      running: {}\n"},
    {"ContainerCreating", "0/1", "0",
     C1 "status:\n  phase: Pending\n" CS("waiting:\n        reason: ContainerCreating")},
    {"CrashLoopBackOff", "0/1", "5 (90s ago)",
     C1 "status:\n  phase: Running\n  containerStatuses:\n  - name: a\n    restartCount: 5\n"
        "    state:\n      waiting:\n        reason: CrashLoopBackOff\n    lastState:\n"
        "      terminated:\n        exitCode: 1\n        finishedAt: \"2026-11-28T11:58:30Z\"\n"},
    {"Completed", "0/1", "0",
     C1 "status:\n  phase: Succeeded\n" CS("terminated:\n        exitCode: 0\n"
                                           "        reason: Completed")},
    {"Error", "0/1", "0",
     C1 "status:\n  phase: Failed\n" CS("terminated:\n        exitCode: 1\n        reason: Error")},
    {"ExitCode:3", "0/1", "0",
     C1 "status:\n  phase: Failed\n" CS("terminated:\n        exitCode: 3")},
    {"Signal:9", "0/1", "0",
     C1 "status:\n  phase: Failed\n" CS("terminated:\n        exitCode: 137\n        signal: 9")},
    {"Init:0/2", "0/1", "0",
     I2 "status:\n  phase: Pending\n" ICS("waiting:\n        reason: PodInitializing")},
    {"Init:1/2", "0/1", "0",
     I2 "status:\n  phase: Pending\n  initContainerStatuses:\n  - name: i1\n    state:\n"
        "      terminated:\n        exitCode: 0\n  - name: i2\n    state:\n      running: {}\n"},
    {"Init:Error", "0/1", "0",
     I2 "status:\n  phase: Pending\n" ICS("terminated:\n        exitCode: 1\n"
                                          "        reason: Error")},
    {"Init:ExitCode:2", "0/1", "0",
     I2 "status:\n  phase: Pending\n" ICS("terminated:\n        exitCode: 2")},
    {"Init:Signal:15", "0/1", "0",
     I2 "status:\n  phase: Pending\n" ICS("terminated:\n        exitCode: 1\n        signal: 15")},
    {"Init:ImagePullBackOff", "0/1", "0",
     I2 "status:\n  phase: Pending\n" ICS("waiting:\n        reason: ImagePullBackOff")},
    {"Terminating", "0/1", "0", GONE C1 "status:\n  phase: Running\n"},
    {"Unknown", "0/1", "0", GONE C1 "status:\n  phase: Running\n  reason: NodeLost\n"},
    {"Evicted", "0/1", "0", C1 "status:\n  phase: Failed\n  reason: Evicted\n"},
    {"SchedulingGated", "0/1", "0",
     C1 "status:\n  phase: Pending\n  conditions:\n  - type: PodScheduled\n"
        "    status: \"False\"\n    reason: SchedulingGated\n"},
    {"NotReady", "1/2", "0",
     C2 "status:\n  phase: Running\n  conditions:\n  - type: Ready\n    status: \"False\"\n"
        "  containerStatuses:\n  - name: a\n    state:\n      terminated:\n        exitCode: 0\n"
        "        reason: Completed\n  - name: b\n    ready: true\n    state:\n      running: {}\n"},
};

static void test_pods(void)
{
    size_t n = ARRAY_SIZE(pods);
    ProtobufCMessage **objs = xcalloc(n, sizeof(*objs));
    for (size_t i = 0; i < n; i++)
        objs[i] = pod(pods[i].rest);
    struct cols_table_opts o = {.now_ns = NOW, .resource_version = "77", .continue_token = "abc"};
    json_t *t = table_of(&kind_pod, objs, n, &o, "pods");

    is_str(json_str(json_get(t, "kind")), "Table", "kind");
    is_str(json_str(json_get(t, "apiVersion")), "meta.k8s.io/v1", "apiVersion");
    is_str(json_str(json_get(json_get(t, "metadata"), "resourceVersion")), "77",
           "metadata.resourceVersion: the list's");
    is_str(json_str(json_get(json_get(t, "metadata"), "continue")), "abc", "metadata.continue");
    ok(!json_get(json_get(t, "metadata"), "remainingItemCount"), "no remainingItemCount");

    static const struct {
        const char *name, *type, *format;
        int64_t priority;
    } want[] = {
        {"Name", "string", "name", 0},
        {"Ready", "string", "", 0},
        {"Status", "string", "", 0},
        {"Restarts", "string", "", 0},
        {"Age", "string", "", 0},
        {"IP", "string", "", 1},
        {"Node", "string", "", 1},
        {"Nominated Node", "string", "", 1},
        {"Readiness Gates", "string", "", 1},
    };
    const json_t *defs = json_get(t, "columnDefinitions");
    is_int(defs ? defs->n : 0, ARRAY_SIZE(want), "pods: 9 columns");
    for (size_t i = 0; defs && i < defs->n && i < ARRAY_SIZE(want); i++) {
        const json_t *d = json_at(defs, i);
        int64_t prio = -1;
        char what[96];
        snprintf(what, sizeof(what), "pod column %zu: %s", i, want[i].name);
        is_str(json_str(json_get(d, "name")), want[i].name, what);
        is_str(json_str(json_get(d, "type")), want[i].type, what);
        is_str(json_str(json_get(d, "format")), want[i].format, what);
        ok(json_int64(json_get(d, "priority"), &prio) == 0 && prio == want[i].priority,
           "%s: priority %" PRId64, what, want[i].priority);
        ok(json_str(json_get(d, "description")) && *json_str(json_get(d, "description")),
           "%s: described", what);
    }

    const json_t *rows = json_get(t, "rows");
    is_int(rows ? rows->n : 0, n, "a row per pod");
    for (size_t i = 0; rows && i < n; i++) {
        const json_t *cells = json_get(json_at(rows, i), "cells");
        char what[96];
        snprintf(what, sizeof(what), "pod %s", *pods[i].status ? pods[i].status : "(no status)");
        static const char *const col[] = {"Name", "Ready", "Status", "Restarts", "Age"};
        const char *cell[] = {"p", pods[i].ready, pods[i].status, pods[i].restarts, "3m"};
        ok(cells && cells->n == 9, "%s: 9 cells", what);
        for (size_t j = 0; j < ARRAY_SIZE(cell); j++) {
            char name[128];
            snprintf(name, sizeof(name), "%s: %s", what, col[j]);
            is_str(json_str(json_at(cells, j)), cell[j], name);
        }
        same_as_ctl(t, i, &kind_pod, objs[i], what);
        /* a pod that ran to its end is marked so (kubectl may hide it) */
        const json_t *cond = json_get(json_at(rows, i), "conditions");
        const char *phase = ((Coracle__V1__Pod *)objs[i])->status
                                ? ((Coracle__V1__Pod *)objs[i])->status->phase
                                : NULL;
        bool ended = phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
        ok(ended ? json_str(json_get(json_at(cond, 0), "type")) &&
                       !strcmp(json_str(json_get(json_at(cond, 0), "type")), "Completed") &&
                       !strcmp(json_str(json_get(json_at(cond, 0), "reason")), phase)
                 : cond == NULL,
           "%s: row conditions", what);
    }

    /* the object: PartialObjectMetadata with the whole metadata */
    const json_t *po = json_get(json_at(rows, 0), "object");
    is_str(json_str(json_get(po, "kind")), "PartialObjectMetadata", "row object kind");
    is_str(json_str(json_get(po, "apiVersion")), "meta.k8s.io/v1", "row object apiVersion");
    const json_t *md = json_get(po, "metadata");
    is_str(json_str(json_get(md, "name")), "p", "metadata.name");
    is_str(json_str(json_get(md, "namespace")), "ns1", "metadata.namespace");
    is_str(json_str(json_get(md, "uid")), "0b9c5c1e-1111-4222-8333-944455556666", "metadata.uid");
    is_str(json_str(json_get(md, "resourceVersion")), "42", "metadata.resourceVersion");
    is_str(json_str(json_get(md, "creationTimestamp")), "2026-11-28T11:57:00Z",
           "metadata.creationTimestamp: RFC 3339");
    ok(!json_get(md, "deletionTimestamp"), "no deletionTimestamp when unset");
    is_str(json_str(json_get(json_get(json_get(json_at(rows, 15), "object"), "metadata"),
                             "deletionTimestamp")),
           "2026-11-28T11:59:30Z", "metadata.deletionTimestamp when set");
    json_free(t);
    for (size_t i = 0; i < n; i++)
        protobuf_c_message_free_unpacked(objs[i], NULL);
    free(objs);
}

static void test_metadata(void)
{
    ProtobufCMessage *m =
        obj("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: default\n"
            "  uid: u-1\n  resourceVersion: \"9\"\n  generation: 2\n"
            "  creationTimestamp: \"2026-11-28T10:00:00Z\"\n"
            "  labels:\n    tier: \"front\\\"end\"\n    app: web\n"
            "  annotations:\n    note: \"tab\\there\"\n"
            "  ownerReferences:\n  - apiVersion: apps/v1\n    kind: ReplicaSet\n    name: web-1\n"
            "    uid: u-0\n    controller: true\n"
            "  finalizers:\n  - example.com/keep\n"
            "spec:\n  containers:\n  - name: a\n");
    struct cols_table_opts o = {.now_ns = NOW, .resource_version = "ignored"};
    size_t len;
    char *text = cols_table_one(&kind_pod, m, &o, &len);
    json_t *t = parse(text, len, "one pod");
    is_str(json_str(json_get(json_get(t, "metadata"), "resourceVersion")), "9",
           "one object: the Table's resourceVersion is the object's");
    is_int(json_get(t, "rows")->n, 1, "one object: one row");
    const json_t *md = json_get(json_get(json_at(json_get(t, "rows"), 0), "object"), "metadata");
    const json_t *labels = json_get(md, "labels");
    ok(labels && labels->n == 2 && !strcmp(labels->keys[0], "app") &&
           !strcmp(json_str(json_get(labels, "tier")), "front\"end"),
       "labels: sorted by key, escaped");
    is_str(json_str(json_get(json_get(md, "annotations"), "note")), "tab\there", "annotations");
    int64_t gen = 0;
    ok(json_int64(json_get(md, "generation"), &gen) == 0 && gen == 2, "generation");
    const json_t *owner = json_at(json_get(md, "ownerReferences"), 0);
    ok(owner && !strcmp(json_str(json_get(owner, "kind")), "ReplicaSet") &&
           json_is(json_get(owner, "controller"), JSON_TRUE) &&
           !json_get(owner, "blockOwnerDeletion"),
       "ownerReferences");
    is_str(json_str(json_at(json_get(md, "finalizers"), 0)), "example.com/keep", "finalizers");
    ok(strstr(text, "\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"u-1\","
                    "\"resourceVersion\":\"9\",\"generation\":2,") != NULL,
       "metadata members in Kubernetes' order");
    json_free(t);
    free(text);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void write_whole(FILE *f, const struct kind *k, const ProtobufCMessage *m, void *arg)
{
    const Coracle__V1__ObjectMeta *md = kind_meta(m);
    (*(int *)arg)++;
    fprintf(f, "{\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\"}}", k->kind, md->name);
}

static void test_forms(void)
{
    ProtobufCMessage *m = pod(C1 "status:\n  phase: Running\n");
    struct cols_table_opts o = {.now_ns = NOW, .no_headers = true};
    json_t *t = table_of(&kind_pod, &m, 1, &o, "watch event");
    ok(json_is(json_get(t, "columnDefinitions"), JSON_NULL),
       "watch event after the first: columnDefinitions null");
    is_int(json_get(json_at(json_get(t, "rows"), 0), "cells")->n, 9,
           "watch event after the first: all the cells");
    ok(json_get(t, "metadata") && json_get(t, "metadata")->n == 0, "no ListMeta: metadata {}");
    json_free(t);

    o = (struct cols_table_opts){.now_ns = NOW, .include = COLS_INCLUDE_NONE};
    t = table_of(&kind_pod, &m, 1, &o, "includeObject=None");
    ok(json_is(json_get(json_at(json_get(t, "rows"), 0), "object"), JSON_NULL),
       "includeObject=None: object null");
    json_free(t);

    int calls = 0;
    o = (struct cols_table_opts){.now_ns = NOW,
                                 .include = COLS_INCLUDE_OBJECT,
                                 .object_fn = write_whole,
                                 .object_arg = &calls};
    t = table_of(&kind_pod, &m, 1, &o, "includeObject=Object");
    is_str(json_str(json_get(json_get(json_at(json_get(t, "rows"), 0), "object"), "kind")), "Pod",
           "includeObject=Object: the callback's object");
    is_int(calls, 1, "includeObject=Object: one call a row");
    json_free(t);
    protobuf_c_message_free_unpacked(m, NULL);

    o = (struct cols_table_opts){.now_ns = NOW, .resource_version = "5", .remaining_item_count = 3};
    for (size_t i = 0; kinds_all[i]; i++) {
        char what[64];
        snprintf(what, sizeof(what), "empty %s list", kinds_all[i]->resource);
        t = table_of(kinds_all[i], NULL, 0, &o, what);
        size_t n;
        cols_defs(kinds_all[i], &n);
        ok(json_is(json_get(t, "rows"), JSON_ARRAY) && json_get(t, "rows")->n == 0 &&
               json_get(t, "columnDefinitions")->n == n,
           "%s: rows [] and the columns", what);
        int64_t rem = 0;
        ok(json_int64(json_get(json_get(t, "metadata"), "remainingItemCount"), &rem) == 0 &&
               rem == 3,
           "%s: remainingItemCount", what);
        json_free(t);
    }
}

/* The column names of table t, comma-separated, "*" after a priority 1 one. */
static char *col_names(const json_t *t)
{
    const json_t *defs = json_get(t, "columnDefinitions");
    struct buf b = {0};
    for (size_t i = 0; i < defs->n; i++) {
        int64_t prio = 0;
        json_int64(json_get(json_at(defs, i), "priority"), &prio);
        buf_printf(&b, "%s%s%s", i ? "," : "", json_str(json_get(json_at(defs, i), "name")),
                   prio ? "*" : "");
    }
    return buf_take(&b);
}

static void test_other_kinds(void)
{
    struct cols_table_opts o = {.now_ns = NOW};
    ProtobufCMessage *node =
        obj("apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n"
            "  labels:\n    node-role.kubernetes.io/control-plane: \"\"\n"
            "  creationTimestamp: \"2026-11-28T10:00:00Z\"\n"
            "spec:\n  unschedulable: true\nstatus:\n  conditions:\n  - type: Ready\n"
            "    status: \"True\"\n  addresses:\n  - type: InternalIP\n    address: 10.0.0.5\n"
            "  nodeInfo:\n    kubeletVersion: v1.32.0-coracle\n    osImage: Debian 12\n");
    json_t *t = table_of(&kind_node, &node, 1, &o, "nodes");
    char *names = col_names(t);
    is_str(names,
           "Name,Status,Roles,Age,Version,Internal-IP*,External-IP*,OS-Image*,Kernel-Version*,"
           "Container-Runtime*",
           "node columns and priorities");
    free(names);
    const json_t *cells = json_get(json_at(json_get(t, "rows"), 0), "cells");
    is_str(json_str(json_at(cells, 1)), "Ready,SchedulingDisabled", "node Status");
    is_str(json_str(json_at(cells, 2)), "control-plane", "node Roles");
    is_str(json_str(json_at(cells, 6)), "<none>", "node External-IP");
    same_as_ctl(t, 0, &kind_node, node, "node");
    json_free(t);
    protobuf_c_message_free_unpacked(node, NULL);

    ProtobufCMessage *ev = obj("apiVersion: v1\nkind: Event\nmetadata:\n  name: nginx.1\n"
                               "  namespace: default\ninvolvedObject:\n  kind: Pod\n"
                               "  name: nginx\n  fieldPath: spec.containers{a}\n"
                               "reason: BackOff\nmessage: \"  Back-off\\trestarting  \\n\"\n"
                               "source:\n  component: kubelet\n  host: n1\n"
                               "firstTimestamp: \"2026-11-28T11:50:00Z\"\n"
                               "lastTimestamp: \"2026-11-28T11:59:00Z\"\ncount: 7\n"
                               "type: Warning\n");
    t = table_of(&kind_event, &ev, 1, &o, "events");
    names = col_names(t);
    is_str(names,
           "Last Seen,Type,Reason,Object,Subobject*,Source*,Message,First Seen*,Count*,Name*",
           "event columns and priorities");
    free(names);
    cells = json_get(json_at(json_get(t, "rows"), 0), "cells");
    int64_t count = 0;
    ok(json_is(json_at(cells, 8), JSON_NUMBER) && json_int64(json_at(cells, 8), &count) == 0 &&
           count == 7,
       "event Count: an integer cell");
    is_str(json_str(json_at(cells, 3)), "pod/nginx", "event Object");
    is_str(json_str(json_at(cells, 5)), "kubelet, n1", "event Source");
    is_str(json_str(json_at(cells, 6)), "Back-off\trestarting", "event Message: trimmed");
    is_str(json_str(json_get(json_at(json_get(t, "columnDefinitions"), 9), "format")), "name",
           "event Name: format name");
    /* coraclectl's row has the tab as a space: a tab would split the cell */
    char *want = ctl_row(&kind_event, ev, true);
    ok(strstr(want, "\tBack-off restarting\t") != NULL, "coraclectl: message tab as a space");
    free(want);
    json_free(t);
    protobuf_c_message_free_unpacked(ev, NULL);

    ProtobufCMessage *lease = obj("apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n"
                                  "  name: n1\n  namespace: kube-node-lease\n"
                                  "  creationTimestamp: \"2026-11-28T11:00:00Z\"\nspec:\n"
                                  "  holderIdentity: n1\n");
    t = table_of(&kind_lease, &lease, 1, &o, "leases");
    names = col_names(t);
    is_str(names, "Name,Holder,Age", "lease columns");
    free(names);
    same_as_ctl(t, 0, &kind_lease, lease, "lease");
    json_free(t);
    protobuf_c_message_free_unpacked(lease, NULL);
}

int main(void)
{
    setenv("TZ", "UTC", 1);
    test_pods();
    test_metadata();
    test_forms();
    test_other_kinds();
    return done_testing();
}
