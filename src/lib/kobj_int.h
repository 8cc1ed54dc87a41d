/*
 * kobj_int: what the files of kobj (kobj.c, kobj_parse.c, kobj_json.c,
 * kobj_emit.c; kobj.c says which does what) share. Not for other modules:
 * use kobj.h.
 */
#ifndef CORACLE_KOBJ_INT_H
#define CORACLE_KOBJ_INT_H

#include "arena.h"
#include "kobj.h"

#include <stddef.h>
#include <stdint.h>

enum res { R_NULL, R_BOOL, R_INT, R_FLOAT, R_STR };

/* 1 if s is not empty and every byte of it is in set. */
int kobj_all_in(const char *s, const char *set);
/* YAML 1.2 core schema resolution of a plain scalar. */
enum res kobj_resolve(const char *s);

/*
 * The tree a document is read into before it is mapped onto a message
 * (kobj_parse.c). libyaml's events build it, or kobj_json.c for JSON; the
 * mapper sees no difference.
 */
enum ynode_type { YN_SCALAR, YN_SEQ, YN_MAP };

struct ynode {
    enum ynode_type type;
    int line, col; /* 1-based; col counts characters, as libyaml's marks do. 0 in a JSON tree: */
    size_t off;    /* ... where the node starts in the text (kobj_json_pos finds its line) */
    char *val;     /* scalar text, NUL-terminated (may hold NULs of its own: len) */
    size_t len;
    int plain;           /* plain and untagged: YAML's implicit typing applies */
    struct ynode **kids; /* seq: items; map: key, value, key, value... */
    size_t n, cap;
    struct arena *arena; /* the root of a tree built in an arena (kobj_json.c): it holds all */
};

/* Frees n and everything under it (NULL is fine); a tree in an arena, from its root only. */
void kobj_ynode_free(struct ynode *n);
/* Appends k to p's kids; p owns it from then on. */
void kobj_ynode_add(struct ynode *p, struct ynode *k);

/*
 * Does buf look like JSON: is its first byte after white space '{' or '['?
 * Then kobj_parse tries kobj_json_load before libyaml.
 */
int kobj_json_looks(const char *buf, size_t len);
/*
 * Reads buf, one JSON text (RFC 8259, strictly; containers nested at most
 * KOBJ_MAX_DEPTH deep), into *root: the tree libyaml's events would build
 * for it (strings not plain, numbers and literals plain, the same line and
 * column on every node), all of it in one arena that *root holds (free it
 * with kobj_ynode_free(*root); add nothing to it). Returns 0, or -1 with nothing allocated when buf
 * is not such a text: the caller then reads it as YAML (JSON that is not
 * strict, YAML flow style, several documents), whose messages say what is
 * wrong.
 */
int kobj_json_load(const char *buf, size_t len, struct ynode **root);
/*
 * The line and column (1-based, as libyaml counts them) of byte off of buf:
 * where a node of a JSON tree starts. Counted only when a message needs it.
 */
void kobj_json_pos(const char *buf, size_t off, int *line, int *col);

/*
 * A new Time or MicroTime (d) of sec and nanos as the readers make it:
 * MicroTime keeps microseconds, Time whole seconds.
 */
ProtobufCMessage *kobj_time_new(const ProtobufCMessageDescriptor *d, int64_t sec, int32_t nanos);
/* Bytes a JSON string's scan need not stop at: printable ASCII but '"' and '\\'. */
extern const unsigned char kobj_json_plain[256];
/*
 * The JSON number (RFC 8259) at p (before end): where it ends, *whole set
 * if it is an integer (no fraction, no exponent); NULL if there is none.
 * Both readers scan numbers with it.
 */
const char *kobj_json_number(const char *p, const char *end, int *whole);
/*
 * The JSON escape at p (its backslash; end: the text's end) decoded into
 * out (4 bytes at most): its length, 0 if it is not a valid escape (a
 * lone surrogate included); *used: the bytes of text it took.
 */
size_t kobj_json_unescape(const char *p, const char *end, char out[4], size_t *used);

/*
 * kobj_parse_msg_opts's fast path (kobj_direct.c): buf, one JSON object,
 * read straight into a new message of type desc, with no tree. Returns the
 * message (o's api_version and kind set as kobj_parse_msg_opts sets them),
 * or NULL, with nothing allocated and o untouched, for anything but a
 * document the general path takes without an error or a warning (an
 * unknown or duplicate field, a wrong type, a value out of range, not
 * strict JSON, ...): the caller then reads buf the general way.
 */
ProtobufCMessage *kobj_json_direct(const char *buf, size_t len,
                                   const ProtobufCMessageDescriptor *desc, struct kobj_opts *o);
/* kobj_parse_msg_opts the general way only: the text into kobj's tree, the tree mapped. */
ProtobufCMessage *kobj_parse_msg_tree(const char *name, const char *buf, size_t len,
                                      const ProtobufCMessageDescriptor *desc, struct kobj_opts *o,
                                      char **err);

#endif
