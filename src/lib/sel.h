/*
 * sel: Kubernetes label selectors (=, ==, !=, in, notin, exists, !exists:
 * "app=web,tier!=db,env in (a,b),!legacy") and field selectors (=, ==, !=
 * only: "spec.nodeName=node1,status.phase!=Running"). Parsed once, matched
 * many times (the watch hub matches every event against every watcher).
 */
#ifndef CORACLE_SEL_H
#define CORACLE_SEL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sel sel_t;

/*
 * Parses a label selector; "" or NULL gives a selector matching
 * everything. Returns 0 and *out (caller frees with sel_free), or -1 and
 * *err (malloc'd) naming the problem and its position, as Kubernetes does:
 * `unable to parse requirement: ...`.
 */
int sel_parse_labels(const char *s, sel_t **out, char **err);
/* Same for field selectors; only =, ==, != are allowed. */
int sel_parse_fields(const char *s, sel_t **out, char **err);
void sel_free(sel_t *s);

/* True if the selector has no requirements. NULL counts as empty. */
bool sel_empty(const sel_t *s);

/*
 * Matches: get(arg, key) returns the value for key or NULL if absent.
 * NULL selector matches everything.
 */
typedef const char *(*sel_get_fn)(void *arg, const char *key);
bool sel_match(const sel_t *s, sel_get_fn get, void *arg);

/* How many requirements (terms) the selector has; 0 for NULL. */
size_t sel_count(const sel_t *s);

/*
 * The same against labels sorted by key (strcmp order, each key once): one
 * merge, O(terms + labels), for selectors or label sets too big for lookups
 * one by one (requirements are kept sorted by key). Every value is set ("" for
 * a label without one).
 */
struct sel_label {
    const char *key, *value;
};
bool sel_match_sorted(const sel_t *s, const struct sel_label *l, size_t n);

/* The value a selector requires for key with "=" / "==", or NULL (e.g. to
 * find spec.nodeName=X for an index). Owned by the selector. */
const char *sel_required_value(const sel_t *s, const char *key);

#endif
