/*
 * jsonpath: kubectl's JSONPath templates, for `get -o jsonpath=...` and
 * `-o custom-columns=...`. It follows client-go's util/jsonpath: text
 * outside {} is copied; inside: .field (\. escapes a dot), .* and [*],
 * [n] [-1] [start:end:step], unions [a,b] and ['a.b'], filters
 * [?(@.x=="y")] with == != < > <= >= (or just [?(@.x)]: exists), ..
 * recursive descent, @ and $, "string" literals with Go escapes, numbers,
 * true/false, {range EXPR}...{end}. The results of one {} are joined by a
 * space; strings print raw, numbers and bools as text, maps and lists as
 * compact JSON with sorted keys (Go's json.Marshal).
 *
 * Templates are evaluated on a json_t tree (src/lib/json.h) that the caller
 * reads with ctl_jp_parse_json from what kobj_emit writes, so names and value
 * formats are exactly those of -o json.
 */
#ifndef CORACLE_CTL_JSONPATH_H
#define CORACLE_CTL_JSONPATH_H

#include <stddef.h>

#include "ctl.h"
#include "json.h"

/* Nesting deeper than this is refused by ctl_jp_parse_json. */
#define CTL_JP_MAX_DEPTH 512

/*
 * Parses one JSON text with json_parse, bounded only in nesting (a List of
 * thousands of objects is tens of MB), and sorts every object's members by
 * key, as Go visits and prints maps; ctl_jp_exec and ctl_jp_cell need that
 * order. Returns 0 and *out (free with json_free), or -1 and *err (malloc'd,
 * json_parse's "line L column C: problem").
 */
int ctl_jp_parse_json(const char *text, size_t len, json_t **out, char **err);

/* A parsed template; immutable, so one parse serves every object. */
struct ctl_jp;

/*
 * Parses a template. Returns 0 and *out (free with ctl_jp_free), or -1 and
 * *err (malloc'd) with client-go's message ("unclosed action", "unterminated
 * array", ...), which the caller wraps as kubectl does.
 */
int ctl_jp_parse(const char *tmpl, struct ctl_jp **out, char **err);
void ctl_jp_free(struct ctl_jp *jp);

/* ctl_jp_exec flags. */
enum {
    CTL_JP_ALLOW_MISSING = 1, /* a missing key gives no result, not "x is not found" */
    CTL_JP_AS_JSON = 2,       /* -o jsonpath-as-json: each {}'s results as an indented JSON list */
};

/*
 * Evaluates jp on root (from ctl_jp_parse_json) and appends the text to out. Returns 0, or -1 with
 * *err (malloc'd, client-go's message, e.g. "array index out of bounds:
 * index 5, length 2"); on error nothing is appended.
 */
int ctl_jp_exec(const struct ctl_jp *jp, const json_t *root, int flags, struct buf *out,
                char **err);

/*
 * One custom-columns cell: the results of jp on root as Go's %v prints them,
 * joined by ",", or "<none>" if there are none (missing keys are allowed).
 * Appends to out; returns 0 or -1 with *err as ctl_jp_exec.
 */
int ctl_jp_cell(const struct ctl_jp *jp, const json_t *root, struct buf *out, char **err);

/*
 * kubectl's RelaxedJSONPathExpression for custom-columns: "a.b", ".a.b",
 * "{a.b}" and "{.a.b}" all become "{.a.b}" (malloc'd in *tmpl; "" stays "").
 * Returns 0, or -1 with *err (malloc'd).
 */
int ctl_jp_relaxed(const char *expr, char **tmpl, char **err);

/* Appends s as Go's %q quotes it (for kubectl's `error executing jsonpath "..."`). */
void ctl_jp_go_quote(struct buf *b, const char *s);

#endif
