/*
 * json: a small, strict, bounded JSON (RFC 8259) parser into a read-only
 * tree, plus a string quoter for writing JSON. Made for the image store
 * (docker manifest.json, OCI index.json, image configs), usable by anyone
 * who reads JSON of unknown origin: it refuses what RFC 8259 refuses
 * (comments, trailing commas, leading zeros, bare control characters,
 * invalid UTF-8, lone surrogates, text after the value) and stops at the
 * limits it is given (input size, nesting depth), naming line and column.
 *
 * Objects keep their members in document order; json_get() returns the LAST
 * member of a name, as Go's encoding/json (the writer of most container
 * JSON) does with duplicates.
 */
#ifndef CORACLE_JSON_H
#define CORACLE_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum json_type {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
};

typedef struct json json_t;
struct json {
    enum json_type type;
    /* JSON_STRING: the decoded bytes, NUL-terminated (\u0000 is refused, so
     * strlen(str) == len). JSON_NUMBER: the number's text as written. */
    char *str;
    size_t len;
    double num; /* JSON_NUMBER */
    /* JSON_ARRAY / JSON_OBJECT: n children; in an object, keys[i] is the
     * (decoded, NUL-terminated) name of kids[i]. */
    size_t n;
    json_t **kids;
    char **keys;
};

struct json_limits {
    size_t max_bytes; /* input larger than this is refused; 0: JSON_DEFAULT_MAX_BYTES */
    int max_depth;    /* arrays/objects nested deeper are refused; 0: JSON_DEFAULT_MAX_DEPTH */
    size_t max_nodes; /* more values than this in total are refused; 0: JSON_DEFAULT_MAX_NODES */
};
#define JSON_DEFAULT_MAX_BYTES (16u << 20)
#define JSON_DEFAULT_MAX_DEPTH 64
#define JSON_DEFAULT_MAX_NODES (1u << 20)

/*
 * Parses buf[0..len) (need not be NUL-terminated). lim may be NULL for the
 * defaults. On success returns 0 and *out is a tree the caller frees with
 * json_free(). On failure returns -1, *out is NULL and, if err is not NULL,
 * *err is a malloc'd message like "line 3 column 7: expected ',' or '}'".
 */
int json_parse(const char *buf, size_t len, const struct json_limits *lim, json_t **out,
               char **err);

/* Reads a whole file (at most the limit's max_bytes) and parses it. Errors
 * name the file: "FILE: line 1 column 2: ...". */
int json_parse_file(const char *path, const struct json_limits *lim, json_t **out, char **err);

void json_free(json_t *v);

/*
 * Accessors. All accept NULL (and return NULL/the fallback), so lookups
 * chain: json_str(json_get(json_get(cfg, "config"), "User")). Returned
 * pointers borrow from the tree and live until json_free() of its root.
 */
json_t *json_get(const json_t *obj, const char *key); /* NULL unless obj is an object with key */
json_t *json_at(const json_t *arr, size_t i);         /* NULL unless arr is an array, i < n */
const char *json_str(const json_t *v);                /* NULL unless v is a string */
int json_is(const json_t *v, enum json_type t);
/* *out = the number if v is a number that is an integer in int64 range. */
int json_int64(const json_t *v, int64_t *out); /* 0 or -1 */

/*
 * Writes s as a JSON string literal (quotes included, control characters,
 * '"' and '\\' escaped; other bytes as they are, so s should be UTF-8).
 */
void json_write_str(FILE *f, const char *s);
/* The same into a malloc'd string. */
char *json_quote(const char *s);

/*
 * UTF-8 as this parser accepts it, for writers that must produce what it
 * reads. json_utf8_len: the length (1-4) of the valid sequence at s[0..n)
 * (n >= 1), or 0 if it is invalid (overlong, surrogate, above U+10FFFF,
 * truncated). json_utf8_encode: writes code point cp (<= 0x10FFFF) to
 * out[0..4) and returns its length.
 */
size_t json_utf8_len(const char *s, size_t n);
size_t json_utf8_encode(char *out, unsigned cp);

#endif
