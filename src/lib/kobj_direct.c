/*
 * kobj_direct: JSON straight into a protobuf-c message, for
 * kobj_parse_msg_opts (the REST API's creates and updates). The general
 * path reads the text into kobj's tree (kobj_json.c) and maps the tree
 * onto the message (kobj_parse.c): two passes, a node per value, and
 * about 22,000 instructions of a small pod's 112,000 per REST create
 * (doc/DESIGN.md). This reader walks the text once, looking each key up
 * in the descriptor and writing the value into its field.
 *
 * It takes only what the general path takes without a word: one strict
 * JSON object whose keys all name fields, no key twice, every value of
 * its field's type and in range. On anything else (an unknown or
 * duplicate field, a wrong type, a bad quantity, escapes in a key, YAML,
 * several documents, deep nesting) it gives up, frees what it made, and
 * the general path reads the same bytes again and says what is wrong in
 * the words it always has, or warns. So the fast path has no messages
 * of its own to keep in step. t/fuzz/fuzz_kobj_json.c checks that
 * whatever it takes, the general path takes too, into an equal message.
 * A top-level part (a spec) whose text came lately is not read again but
 * copied from what it read into (seen_parts).
 */
#include "config.h"
#include "kobj_int.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "qty.h"
#include "util.h"

/* Nesting of JSON containers taken (the general path's limit is KOBJ_MAX_DEPTH). */
#define DIRECT_MAX_DEPTH 32
/* Keys per object compared for duplicates; an object with more goes the general way. */
#define DIRECT_MAX_KEYS 32

struct jd {
    const char *p, *end;
    int depth;
};

/* An object's keys so far, for duplicates: a key is compared only with those of its bit. */
struct jkeys {
    struct {
        const char *s;
        size_t n;
    } v[DIRECT_MAX_KEYS];
    size_t n;
    uint64_t bits;
};

static inline void ws(struct jd *j)
{
    /* most calls find a byte that is no white space: one compare says so */
    while (j->p < j->end && (unsigned char)*j->p <= ' ' &&
           (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

/* Is the next byte (after white space) c? Then it is taken. */
static inline int take(struct jd *j, char c)
{
    ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return 1;
    }
    return 0;
}

/* The word w (true, false, null) at j->p: taken, 1; else 0. */
static inline int word(struct jd *j, const char *w, size_t n)
{
    ws(j);
    if (j->p < j->end && *j->p == *w && (size_t)(j->end - j->p) >= n && !memcmp(j->p, w, n)) {
        j->p += n;
        return 1;
    }
    return 0;
}

/*
 * An object's next key at j->p, unescaped, into *s and *n; 0, or -1 if it
 * is not such a key or is one of seen's (added to them).
 */
static int key(struct jd *j, struct jkeys *seen, const char **s, size_t *n)
{
    ws(j);
    if (j->p >= j->end || *j->p != '"')
        return -1;
    const char *k = ++j->p;
    while (j->p < j->end && kobj_json_plain[(unsigned char)*j->p])
        j->p++;
    if (j->p >= j->end || *j->p != '"')
        return -1;
    *s = k;
    *n = (size_t)(j->p - k);
    j->p++;
    if (!take(j, ':') || seen->n == DIRECT_MAX_KEYS)
        return -1;
    uint64_t bit = 1ull << ((*n * 7 + (*n ? (unsigned char)k[*n - 1] : 0)) & 63);
    if (seen->bits & bit)
        for (size_t i = 0; i < seen->n; i++)
            if (seen->v[i].n == *n && !memcmp(seen->v[i].s, k, *n))
                return -1;
    seen->bits |= bit;
    seen->v[seen->n].s = k;
    seen->v[seen->n++].n = *n;
    return 0;
}

/*
 * kobj_lookup of the key k..n in d, remembered per thread: a create looks
 * up some thirty keys, each a binary search of its descriptor's names.
 * Only keys that name a field are remembered.
 */
static const ProtobufCFieldDescriptor *lookup(const ProtobufCMessageDescriptor *d, const char *k,
                                              size_t n, const ProtobufCFieldDescriptor **owner)
{
    static __thread struct {
        const ProtobufCMessageDescriptor *d;
        const ProtobufCFieldDescriptor *f, *owner;
        char name[40];
    } memo[256];
    if (n >= sizeof(memo[0].name))
        return NULL;
    uint64_t h = (uint64_t)(uintptr_t)d * 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
    unsigned at = (unsigned)(h >> 56);
    if (memo[at].d == d && !memcmp(memo[at].name, k, n) && !memo[at].name[n]) {
        *owner = memo[at].owner;
        return memo[at].f;
    }
    char name[sizeof(memo[0].name)];
    memcpy(name, k, n);
    name[n] = 0;
    const ProtobufCFieldDescriptor *f = kobj_lookup(d, name, owner);
    if (f) {
        memo[at].d = d;
        memo[at].f = f;
        memo[at].owner = *owner;
        memcpy(memo[at].name, name, n + 1);
    }
    return f;
}

/*
 * The string at j->p (after white space), decoded: malloc'd, or NULL if
 * there is no valid string there or it holds a NUL (the general path
 * refuses or cuts those: it says which).
 */
static char *string(struct jd *j)
{
    ws(j);
    if (j->p >= j->end || *j->p != '"')
        return NULL;
    const char *s = ++j->p;
    while (j->p < j->end && kobj_json_plain[(unsigned char)*j->p])
        j->p++;
    if (j->p < j->end && *j->p == '"') /* nothing to decode: most strings */
        return xstrndup(s, (size_t)(j->p++ - s));
    /* escapes take no more bytes decoded than written; \u0000 is refused */
    char *out = xmalloc((size_t)(j->end - s) + 1), *w = out;
    j->p = s;
    while (j->p < j->end && *j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        size_t k;
        if (c == '\\') {
            size_t used;
            if (!(k = kobj_json_unescape(j->p, j->end, w, &used)) || (k == 1 && !*w))
                goto bad;
            w += k;
            j->p += used;
            continue;
        }
        if (c < 0x20)
            goto bad;
        k = c < 0x80 ? 1 : json_utf8_len(j->p, (size_t)(j->end - j->p));
        if (!k)
            goto bad;
        memcpy(w, j->p, k);
        w += k;
        j->p += k;
    }
    if (j->p >= j->end)
        goto bad;
    j->p++;
    *w = 0;
    return out;
bad:
    free(out);
    return NULL;
}

/*
 * The number at j->p (after white space): its text in *s..*n, *whole set
 * if it is an integer (no fraction, no exponent). 0, or -1 if it is none.
 */
static int number(struct jd *j, const char **s, size_t *n, int *whole)
{
    ws(j);
    const char *p = kobj_json_number(j->p, j->end, whole);
    if (!p)
        return -1;
    *s = j->p;
    *n = (size_t)(p - j->p);
    j->p = p;
    return 0;
}

/* An integer within lo..hi at j->p: 0 with *v, or -1. */
static int integer(struct jd *j, int64_t lo, int64_t hi, int64_t *v)
{
    const char *s;
    size_t n;
    int whole;
    if (number(j, &s, &n, &whole) < 0 || !whole)
        return -1;
    int neg = *s == '-';
    uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t i = neg; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (u > (lim - d) / 10)
            return -1;
        u = u * 10 + d;
    }
    int64_t x = neg ? (u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u) : (int64_t)u;
    if (x < lo || x > hi)
        return -1;
    *v = x;
    return 0;
}

/* One scalar value of a field that is not a message into slot. */
static int scalar(struct jd *j, const ProtobufCFieldDescriptor *f, void *slot)
{
    int64_t v;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (integer(j, INT32_MIN, INT32_MAX, &v) < 0)
            return -1;
        *(int32_t *)slot = (int32_t)v;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (integer(j, 0, UINT32_MAX, &v) < 0)
            return -1;
        *(uint32_t *)slot = (uint32_t)v;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (integer(j, INT64_MIN, INT64_MAX, &v) < 0)
            return -1;
        *(int64_t *)slot = v;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (integer(j, 0, INT64_MAX, &v) < 0)
            return -1;
        *(uint64_t *)slot = (uint64_t)v;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (word(j, "true", 4))
            *(protobuf_c_boolean *)slot = 1;
        else if (word(j, "false", 5))
            *(protobuf_c_boolean *)slot = 0;
        else
            return -1;
        return 0;
    case PROTOBUF_C_TYPE_ENUM: {
        char *s = string(j);
        const ProtobufCEnumValue *ev =
            s ? protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, s) : NULL;
        free(s);
        if (!ev)
            return -1;
        *(int *)slot = ev->value;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING:
        return (*(char **)slot = string(j)) ? 0 : -1;
    default: /* floats, bytes: rare; the general path reads them */
        return -1;
    }
}

static int object(struct jd *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                  int toplevel, char **api_version, char **kind);

/*
 * A value of message type d at j->p into *out (NULL for null), for the
 * caller to put in its place: an object, or one of the message types
 * that are scalars in JSON. 0, or -1 with nothing made.
 */
static int message(struct jd *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
    *out = NULL;
    if (word(j, "null", 4))
        return 0;
    if (d == &coracle__v1__quantity__descriptor) {
        const char *s;
        size_t n;
        int whole;
        char *text = j->p < j->end && *j->p == '"'    ? string(j)
                     : number(j, &s, &n, &whole) == 0 ? xstrndup(s, n)
                                                      : NULL;
        int64_t milli;
        char *why = NULL;
        if (!text || qty_parse(text, &milli, &why) < 0) {
            free(why);
            free(text);
            return -1;
        }
        Coracle__V1__Quantity *q = (Coracle__V1__Quantity *)kobj_msg_new(d);
        q->string = text;
        *out = &q->base;
        return 0;
    }
    if (d == &coracle__v1__int_or_string__descriptor) {
        Coracle__V1__IntOrString *is = (Coracle__V1__IntOrString *)kobj_msg_new(d);
        is->has_type = 1;
        int64_t v;
        if (j->p < j->end && *j->p == '"') {
            is->type = 1;
            is->strval = string(j);
        } else if (integer(j, INT32_MIN, INT32_MAX, &v) == 0) {
            is->has_intval = 1;
            is->intval = (int32_t)v;
        }
        if (is->type == 1 ? !is->strval : !is->has_intval) {
            protobuf_c_message_free_unpacked(&is->base, NULL);
            return -1;
        }
        *out = &is->base;
        return 0;
    }
    if (d == &coracle__v1__time__descriptor || d == &coracle__v1__micro_time__descriptor) {
        char *text = string(j);
        int64_t sec;
        int32_t ns;
        int bad = !text || kobj_parse_rfc3339(text, &sec, &ns) < 0;
        free(text);
        if (bad)
            return -1;
        *out = kobj_time_new(d, sec, ns);
        return 0;
    }
    if (d == &coracle__v1__fields_v1__descriptor)
        return -1; /* its JSON is rewritten: the general path does that */
    ProtobufCMessage *m = kobj_msg_new(d);
    if (object(j, d, m, 0, NULL, NULL) < 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return -1;
    }
    *out = m;
    return 0;
}

/* Room for one more element in a repeated field of m (elements of es bytes): its slot. */
static void *grow(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, size_t es, size_t *cap)
{
    size_t *n = (size_t *)((char *)m + f->quantifier_offset);
    char **arr = (char **)((char *)m + f->offset);
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *arr = xrealloc(*arr, *cap * es);
    }
    memset(*arr + *n * es, 0, es);
    return *arr + *n * es;
}

/* A map field's object at j->p (after its '{'): entries key -> value, none null. */
static int map_entries(struct jd *j, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    size_t *n = (size_t *)((char *)m + f->quantifier_offset), cap = 4, kn;
    struct jkeys seen;
    const char *k;
    seen.n = 0;
    seen.bits = 0;
    *(ProtobufCMessage ***)((char *)m + f->offset) = xcalloc(cap, sizeof(ProtobufCMessage *));
    if (take(j, '}'))
        return 0;
    do {
        if (key(j, &seen, &k, &kn) < 0 || word(j, "null", 4))
            return -1;
        ProtobufCMessage **slot = grow(m, f, sizeof(*slot), &cap);
        ProtobufCMessage *e = kobj_msg_new(ed);
        *slot = e;
        (*n)++;
        *(char **)((char *)e + ed->fields[0].offset) = xstrndup(k, kn);
        const ProtobufCFieldDescriptor *vf = &ed->fields[1];
        if (vf->type == PROTOBUF_C_TYPE_MESSAGE) {
            ProtobufCMessage *sub;
            if (message(j, vf->descriptor, &sub) < 0)
                return -1;
            *(ProtobufCMessage **)((char *)e + vf->offset) = sub;
        } else if (vf->label == PROTOBUF_C_LABEL_REPEATED ||
                   scalar(j, vf, (char *)e + vf->offset) < 0) {
            return -1;
        } else if (!kobj_is_ptr_type(vf->type) && vf->quantifier_offset) {
            *(protobuf_c_boolean *)((char *)e + vf->quantifier_offset) = 1;
        }
    } while (take(j, ','));
    return take(j, '}') ? 0 : -1;
}

/* A repeated field's array at j->p (after its '['): no null in it. */
static int items(struct jd *j, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    size_t es = kobj_elem_size(f), *n = (size_t *)((char *)m + f->quantifier_offset), cap = 4;
    *(void **)((char *)m + f->offset) = xcalloc(cap, es);
    if (take(j, ']'))
        return 0;
    do {
        void *slot = grow(m, f, es, &cap);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (message(j, f->descriptor, (ProtobufCMessage **)slot) < 0 ||
                !*(ProtobufCMessage **)slot)
                return -1;
        } else if (scalar(j, f, slot) < 0) {
            return -1;
        }
        (*n)++;
    } while (take(j, ','));
    return take(j, ']') ? 0 : -1;
}

/* The value at j->p into field f of m. */
static int field(struct jd *j, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    char *base = (char *)m;
    if (word(j, "null", 4))
        return 0;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        int map = f->type == PROTOBUF_C_TYPE_MESSAGE && kobj_desc_is_map_entry(f->descriptor);
        if (!take(j, map ? '{' : '[') || ++j->depth > DIRECT_MAX_DEPTH)
            return -1;
        int rc = map ? map_entries(j, m, f) : items(j, m, f);
        j->depth--;
        return rc;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return message(j, f->descriptor, (ProtobufCMessage **)(base + f->offset));
    if (scalar(j, f, base + f->offset) < 0)
        return -1;
    if (!kobj_is_ptr_type(f->type) && f->quantifier_offset)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    return 0;
}

/*
 * Deep copies of the messages the reader makes: every part malloc'd on its
 * own (protobuf_c_message_free_unpacked frees it), defaults shared with
 * the descriptor as message_init leaves them, an array kept (empty or not)
 * where there is one; the reader makes no unknown fields. A message's
 * copy is its bytes, then a step for each part it holds (string,
 * sub-message, array), a sub-message's or an array's own steps after its
 * step and closed by STEP_END. Copying by them visits only the parts
 * there are, not every field of every descriptor (a pod's spec has
 * fifty).
 */
enum { STEP_END, STEP_STR, STEP_MSG, STEP_ARR, STEP_BYTES };
struct step {
    unsigned kind;
    unsigned off; /* the part's offset in its message, or in its array */
    size_t bytes; /* the part's own: a string's with its NUL, a message's, an array's */
};
struct steps {
    struct step *v;
    size_t n, cap;
};

static void step_add(struct steps *s, unsigned kind, size_t off, size_t bytes)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = (struct step){kind, (unsigned)off, bytes};
}

/* The steps of copying m onto s. */
static void steps_of(struct steps *s, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        int ptr = f->label == PROTOBUF_C_LABEL_REPEATED || kobj_is_ptr_type(f->type);
        const void *at = ptr ? *(void *const *)(base + f->offset) : NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset), es = kobj_elem_size(f);
            if (!at)
                continue;
            step_add(s, STEP_ARR, f->offset, (n ? n : 1) * es);
            for (size_t k = 0; k < n && kobj_is_ptr_type(f->type); k++) {
                const void *e = *(void *const *)((const char *)at + k * es);
                if (f->type == PROTOBUF_C_TYPE_STRING) {
                    step_add(s, STEP_STR, k * es, strlen(e) + 1);
                } else {
                    step_add(s, STEP_MSG, k * es,
                             ((const ProtobufCMessageDescriptor *)f->descriptor)->sizeof_message);
                    steps_of(s, e);
                }
            }
            step_add(s, STEP_END, 0, 0);
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            if (at && at != f->default_value)
                step_add(s, STEP_STR, f->offset, strlen(at) + 1);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (at) {
                step_add(s, STEP_MSG, f->offset,
                         ((const ProtobufCMessageDescriptor *)f->descriptor)->sizeof_message);
                steps_of(s, at);
            }
        } else if (f->type == PROTOBUF_C_TYPE_BYTES) {
            const ProtobufCBinaryData *b = (const ProtobufCBinaryData *)(base + f->offset);
            const ProtobufCBinaryData *def = f->default_value;
            if (b->data && (!def || b->data != def->data))
                step_add(s, STEP_BYTES, f->offset, 0);
        }
    }
    step_add(s, STEP_END, 0, 0);
}

/* The parts of dst, a copy of src's bytes, copied by the steps at s: the step after theirs. */
static const struct step *steps_run(const struct step *s, const char *src, char *dst)
{
    for (;; s++) {
        if (s->kind == STEP_END)
            return s + 1;
        void **at = (void **)(dst + s->off);
        const void *from = *(void *const *)(src + s->off);
        switch (s->kind) {
        case STEP_STR:
            *at = memcpy(xmalloc(s->bytes), from, s->bytes);
            break;
        case STEP_MSG:
        case STEP_ARR:
            *at = memcpy(xmalloc(s->bytes), from, s->bytes);
            s = steps_run(s + 1, from, *at) - 1;
            break;
        default: { /* STEP_BYTES */
            ProtobufCBinaryData *b = (ProtobufCBinaryData *)at;
            uint8_t *p = xmalloc(b->len ? b->len : 1);
            memcpy(p, b->data, b->len);
            b->data = p;
        }
        }
    }
}

/* A copy of m, whose steps are s. */
static ProtobufCMessage *steps_copy(const struct steps *s, const ProtobufCMessage *m)
{
    size_t n = m->descriptor->sizeof_message;
    char *c = memcpy(xmalloc(n), m, n);
    steps_run(s->v, (const char *)m, c);
    return (ProtobufCMessage *)c;
}

/*
 * The top-level parts of bodies read lately (a pod's spec, a deployment's),
 * by field and text. Replicas made from one template are created with one
 * spec byte for byte (a controller's, a client's manifests): reading it
 * was most of a body's instructions, copying what it read is a fraction.
 * A text seen once is kept alone; seen again, with the message it reads
 * into, which later bodies get a copy of. A JSON value ends itself, so the
 * text at hand is the kept one when it starts with all of its bytes. What
 * the reader makes of a part depends on its text and field only: the
 * depth it starts at is the same for every top-level part. Entries go as
 * kobj_emit's parts do: the least used (hits halve at each new entry), of
 * those the oldest.
 */
#define SEEN 8
#define SEEN_MIN 64 /* shorter parts are read about as fast as they are copied */
#define SEEN_MAX (16 * 1024)
static struct {
    pthread_mutex_t mu;
    struct seen {
        const ProtobufCFieldDescriptor *f;
        char *text; /* malloc'd, cap bytes */
        size_t n, cap;
        ProtobufCMessage *m; /* what text reads into, once it came again; NULL before */
        struct steps steps;  /* of copying m */
        unsigned hits;
        unsigned long put;
    } e[SEEN];
    unsigned long puts;
} seen_parts = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The kept entry of field f whose text starts at p (before end), or NULL; under mu. */
static struct seen *seen_find(const ProtobufCFieldDescriptor *f, const char *p, const char *end)
{
    for (size_t i = 0; i < SEEN; i++) {
        struct seen *e = &seen_parts.e[i];
        if (e->f == f && e->n <= (size_t)(end - p) && !memcmp(e->text, p, e->n))
            return e;
    }
    return NULL;
}

/*
 * Keeps the text of f at p..n, and m (if not NULL: a copy) as what it
 * reads into. A text seen for the first time (m NULL) is put without a
 * search: were another thread's put of it to come between, the two
 * entries would be one text, the first found, the other aging out.
 */
static void seen_put(const ProtobufCFieldDescriptor *f, const char *p, size_t n,
                     const ProtobufCMessage *m)
{
    pthread_mutex_lock(&seen_parts.mu);
    struct seen *e = m ? seen_find(f, p, p + n) : NULL;
    if (e && e->n != n)
        e = NULL; /* a shorter text this one starts with: not this part */
    if (!e) {
        e = &seen_parts.e[0];
        for (size_t i = 1; i < SEEN; i++) {
            struct seen *x = &seen_parts.e[i];
            if (x->hits < e->hits || (x->hits == e->hits && x->put < e->put))
                e = x;
        }
        for (size_t i = 0; i < SEEN; i++)
            seen_parts.e[i].hits /= 2;
        if (e->m)
            protobuf_c_message_free_unpacked(e->m, NULL);
        e->m = NULL;
        e->steps.n = 0;
        e->f = f;
        if (e->cap < n)
            e->text = xrealloc(e->text, e->cap = n);
        memcpy(e->text, p, n);
        e->n = n;
        e->hits = 0;
        e->put = ++seen_parts.puts;
    }
    if (m && !e->m) {
        steps_of(&e->steps, m);
        e->m = steps_copy(&e->steps, m);
    }
    pthread_mutex_unlock(&seen_parts.mu);
}

/*
 * A top-level field f of message type at j->p into *slot, through the
 * parts seen lately: a copy of what the same text read into before, or
 * read now (and kept).
 */
static int part(struct jd *j, const ProtobufCFieldDescriptor *f, ProtobufCMessage **slot)
{
    ws(j);
    const char *at = j->p;
    pthread_mutex_lock(&seen_parts.mu);
    struct seen *e = seen_find(f, at, j->end);
    int seen = e != NULL, hit = e && e->m;
    if (hit) {
        *slot = steps_copy(&e->steps, e->m);
        e->hits++;
        j->p += e->n;
    }
    pthread_mutex_unlock(&seen_parts.mu);
    if (hit)
        return 0;
    if (message(j, f->descriptor, slot) < 0)
        return -1;
    size_t n = (size_t)(j->p - at);
    if (*slot && n >= SEEN_MIN && n <= SEEN_MAX)
        seen_put(f, at, n, seen ? *slot : NULL);
    return 0;
}

/*
 * The object at j->p into m, of type d; at the top level, apiVersion and
 * kind (strings) go to *api_version and *kind (malloc'd) instead.
 */
static int object(struct jd *j, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                  int toplevel, char **api_version, char **kind)
{
    struct jkeys seen;
    const char *k;
    size_t kn;
    seen.n = 0;
    seen.bits = 0;
    if (!take(j, '{') || ++j->depth > DIRECT_MAX_DEPTH)
        return -1;
    if (take(j, '}')) {
        j->depth--;
        return 0;
    }
    do {
        if (key(j, &seen, &k, &kn) < 0)
            return -1;
        if (toplevel &&
            ((kn == 10 && !memcmp(k, "apiVersion", 10)) || (kn == 4 && !memcmp(k, "kind", 4)))) {
            char **dst = kn == 4 ? kind : api_version;
            if (!(*dst = string(j)))
                return -1;
            continue;
        }
        const ProtobufCFieldDescriptor *owner, *f = lookup(d, k, kn, &owner);
        if (!f)
            return -1;
        ProtobufCMessage *target = m;
        if (owner) {
            ProtobufCMessage **sp = (ProtobufCMessage **)((char *)m + owner->offset);
            if (!*sp)
                *sp = kobj_msg_new(owner->descriptor);
            target = *sp;
        }
        if (toplevel && !owner && f->label != PROTOBUF_C_LABEL_REPEATED &&
            f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (part(j, f, (ProtobufCMessage **)((char *)m + f->offset)) < 0)
                return -1;
            continue;
        }
        if (field(j, target, f) < 0)
            return -1;
    } while (take(j, ','));
    j->depth--;
    return take(j, '}') ? 0 : -1;
}

ProtobufCMessage *kobj_json_direct(const char *buf, size_t len,
                                   const ProtobufCMessageDescriptor *desc, struct kobj_opts *o)
{
    struct jd j = {buf, buf + len, 0};
    char *api_version = NULL, *kind = NULL;
    ProtobufCMessage *m = kobj_msg_new(desc);
    int rc = object(&j, desc, m, 1, &api_version, &kind);
    ws(&j);
    if (rc < 0 || j.p != j.end) {
        protobuf_c_message_free_unpacked(m, NULL);
        free(api_version);
        free(kind);
        return NULL;
    }
    if (o) {
        if (api_version) {
            free(o->api_version);
            o->api_version = api_version;
        }
        if (kind) {
            free(o->kind);
            o->kind = kind;
        }
    } else {
        free(api_version);
        free(kind);
    }
    return m;
}
