/*
 * kobj_json: JSON -> kobj's document tree (struct ynode, kobj_int.h), for
 * kobj_parse. API clients send JSON (kubectl, client-go, the REST API's
 * creates and updates); libyaml reads it too, as YAML flow style, but
 * through its scanner's token queue and one event per token, several
 * times slower than this reader (doc/DESIGN.md has the figures). The tree
 * is the one libyaml's events build, node for node: strings are scalars
 * that are not plain (no implicit typing, as quoted YAML), numbers and
 * true/false/null plain scalars with their text, and every node carries
 * its offset, from which kobj_json_pos counts libyaml's line and column
 * (columns count characters, and NEL, LS and PS end lines as in YAML)
 * when a message needs them, so the mapper's checks and messages (field
 * path, duplicate keys, types) are the same whichever reader ran.
 *
 * Strict RFC 8259, one text, containers nested at most KOBJ_MAX_DEPTH
 * deep. Anything else is not refused here: kobj_json_load says no and
 * kobj_parse reads the bytes as YAML, which either takes them (JSON with
 * YAML's liberties, several documents) or names the problem in the words
 * it always has.
 */
#include "config.h"
#include "kobj_int.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "util.h"

struct jr {
    const char *start, *p, *end;
    int depth;
    struct buf sb;   /* a string with escapes, decoded */
    struct arena a;  /* the tree: nodes, their strings and kids arrays */
    struct buf kids; /* the open containers' kids so far (struct ynode *), innermost last */
};

/*
 * Counts lines and characters up to off as libyaml does: CR LF, CR, LF,
 * NEL (C2 85), LS and PS (E2 80 A8/A9) end a line; UTF-8 continuation
 * bytes are no characters.
 */
void kobj_json_pos(const char *buf, size_t off, int *out_line, int *out_col)
{
    const unsigned char *s = (const unsigned char *)buf, *e = s + off;
    int line = 1, col = 1;
    while (s < e) {
        unsigned char c = *s;
        if (c >= 0x20 && c < 0x80) {
            const unsigned char *r = s + 1;
            while (r < e && (unsigned char)(*r - 0x20) < 0x60)
                r++;
            col += (int)(r - s);
            s = r;
        } else if (c == '\n' || c == '\r') {
            s += c == '\r' && s + 1 < e && s[1] == '\n' ? 2 : 1;
            line++;
            col = 1;
        } else if (c == 0xc2 && s + 1 < e && s[1] == 0x85) {
            s += 2;
            line++;
            col = 1;
        } else if (c == 0xe2 && s + 2 < e && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9)) {
            s += 3;
            line++;
            col = 1;
        } else {
            col += (c & 0xc0) != 0x80;
            s++;
        }
    }
    *out_line = line;
    *out_col = col;
}

/*
 * A new node of type t starting at at; a kid of the innermost open
 * container unless it is the root. A container's kids gather on j->kids
 * and move into an array of their exact number when it closes.
 */
static struct ynode *node(struct jr *j, enum ynode_type t, const char *at, int root)
{
    struct ynode *n = arena_alloc(&j->a, sizeof(*n));
    n->type = t;
    n->off = (size_t)(at - j->start);
    if (!root)
        buf_add(&j->kids, &n, sizeof(n));
    return n;
}

/* Container n closes: its kids, gathered on j->kids from byte from, move into its own array. */
static void kids_take(struct jr *j, struct ynode *n, size_t from)
{
    size_t bytes = j->kids.len - from;
    n->n = n->cap = bytes / sizeof(*n->kids);
    if (n->n)
        n->kids = memcpy(arena_alloc(&j->a, bytes), j->kids.p + from, bytes);
    j->kids.len = from;
}

static void skip_ws(struct jr *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;
        if (d == 16)
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

size_t kobj_json_unescape(const char *p, const char *end, char out[4], size_t *used)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (end - p < 2)
        return 0;
    char c = p[1];
    const char *k = c ? strchr(from, c) : NULL;
    if (k) {
        *out = to[k - from];
        *used = 2;
        return 1;
    }
    unsigned cp, lo;
    if (c != 'u' || end - p < 6 || hex4(p + 2, &cp) < 0)
        return 0;
    *used = 6;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return 0; /* a lone low surrogate */
    if (cp >= 0xd800 && cp <= 0xdbff) {
        p += 6;
        if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) < 0 || lo < 0xdc00 ||
            lo > 0xdfff)
            return 0;
        *used = 12;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    return json_utf8_encode(out, cp);
}

/* One escape after the backslash at j->p, decoded onto j->sb. */
static int escape(struct jr *j)
{
    char u[4];
    size_t used, n = kobj_json_unescape(j->p, j->end, u, &used);
    if (!n)
        return -1;
    buf_add(&j->sb, u, n);
    j->p += used;
    return 0;
}

const unsigned char kobj_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/*
 * The string at j->p (its opening quote) as a scalar under parent. Most
 * have no escape: their bytes are copied once, straight from the input.
 */
static int string(struct jr *j)
{
    struct ynode *n = node(j, YN_SCALAR, j->p, 0);
    const char *s = ++j->p;
    int escaped = 0;
    buf_reset(&j->sb);
    for (;;) {
        const char *r = j->p;
        while (r < j->end && kobj_json_plain[(unsigned char)*r])
            r++;
        if (escaped)
            buf_add(&j->sb, j->p, (size_t)(r - j->p));
        j->p = r;
        if (j->p >= j->end)
            return -1;
        unsigned char c = (unsigned char)*j->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (!escaped) {
                buf_add(&j->sb, s, (size_t)(j->p - s));
                escaped = 1;
            }
            if (escape(j) < 0)
                return -1;
            continue;
        }
        size_t k = c < 0x80 ? 1 : json_utf8_len(j->p, (size_t)(j->end - j->p));
        if (!k)
            return -1;
        if (escaped)
            buf_add(&j->sb, j->p, k);
        j->p += k;
    }
    if (escaped) {
        n->len = j->sb.len;
        n->val = arena_strndup(&j->a, j->sb.p, n->len);
    } else {
        n->len = (size_t)(j->p - s);
        n->val = arena_strndup(&j->a, s, n->len);
    }
    j->p++;
    return 0;
}

static const char *digits(const char *p, const char *end)
{
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p;
}

const char *kobj_json_number(const char *p, const char *end, int *whole)
{
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        p = digits(p, end);
    else
        return NULL;
    *whole = 1;
    if (p < end && *p == '.') {
        const char *f = ++p;
        if ((p = digits(p, end)) == f)
            return NULL;
        *whole = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *x = p;
        if ((p = digits(p, end)) == x)
            return NULL;
        *whole = 0;
    }
    return p;
}

/* A number or true/false/null: a plain scalar holding its text. */
static int literal(struct jr *j)
{
    const char *s = j->p, *p = s, *end = j->end;
    static const char *const words[] = {"true", "false", "null"};
    int whole;
    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        size_t l = strlen(words[i]);
        if ((size_t)(end - p) >= l && !memcmp(p, words[i], l)) {
            p += l;
            goto done;
        }
    }
    if (!(p = kobj_json_number(p, end, &whole)))
        return -1;
done:
    /* what follows must end the token, as in YAML ("truex", "1x" are not these) */
    if (p < end && !strchr(" \t\r\n,]}", *p))
        return -1;
    struct ynode *n = node(j, YN_SCALAR, s, 0);
    n->plain = 1;
    n->len = (size_t)(p - s);
    n->val = arena_strndup(&j->a, s, n->len);
    j->p = p;
    return 0;
}

static int value(struct jr *j);

/* An object or array at j->p, its members or items under a new node (*root if root is not NULL). */
static int container(struct jr *j, struct ynode **root)
{
    int map = *j->p == '{';
    char close = map ? '}' : ']';
    if (j->depth >= KOBJ_MAX_DEPTH)
        return -1;
    struct ynode *n = node(j, map ? YN_MAP : YN_SEQ, j->p, root != NULL);
    size_t from = j->kids.len;
    if (root)
        *root = n;
    j->depth++;
    j->p++;
    skip_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        if (map) {
            if (j->p >= j->end || *j->p != '"' || string(j) < 0)
                return -1;
            skip_ws(j);
            if (j->p >= j->end || *j->p != ':')
                return -1;
            j->p++;
        }
        if (value(j) < 0)
            return -1;
        skip_ws(j);
        if (j->p >= j->end)
            return -1;
        if (*j->p == close)
            break;
        if (*j->p != ',')
            return -1;
        j->p++;
        skip_ws(j);
    }
    kids_take(j, n, from);
    j->p++;
    j->depth--;
    return 0;
}

/* Any value, a kid of the innermost open container. */
static int value(struct jr *j)
{
    skip_ws(j);
    if (j->p >= j->end)
        return -1;
    if (*j->p == '{' || *j->p == '[')
        return container(j, NULL);
    if (*j->p == '"')
        return string(j);
    return literal(j);
}

int kobj_json_looks(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t'))
        i++;
    return i < len && (buf[i] == '{' || buf[i] == '[');
}

int kobj_json_load(const char *buf, size_t len, struct ynode **root)
{
    struct jr j = {.start = buf, .p = buf, .end = buf + len};
    struct ynode *top = NULL;
    struct arena *held = arena_alloc(&j.a, sizeof(*held)); /* the root's: see kobj_ynode_free */
    skip_ws(&j);
    int rc = j.p < j.end && (*j.p == '{' || *j.p == '[') ? container(&j, &top) : -1;
    if (rc == 0) {
        skip_ws(&j);
        if (j.p != j.end)
            rc = -1; /* more after the text: several documents, or not JSON */
    }
    buf_free(&j.sb);
    buf_free(&j.kids);
    if (rc < 0) {
        arena_free(&j.a);
        return -1;
    }
    *held = j.a;
    top->arena = held;
    *root = top;
    return 0;
}
