/*
 * kobj: Kubernetes objects as YAML/JSON <-> protobuf-c messages by
 * walking descriptors. See kobj.h. Parsing reads libyaml's events into a
 * small tree of nodes (with their marks), refusing aliases and deep
 * nesting, then maps the tree onto the message type strictly. Emitting
 * walks the message in field order and drives libyaml's emitter (YAML) or
 * writes JSON itself.
 *
 * The files, sharing kobj_int.h:
 *   kobj.c           what both directions use: YAML's implicit typing of
 *                    plain scalars, the descriptor helpers (fields inlined
 *                    as Kubernetes does, element sizes, kobj_field_*) and
 *                    RFC 3339 times (this file);
 *   kobj_parse.c     YAML/JSON -> protobuf: kobj_parse*;
 *   kobj_json.c      JSON -> kobj_parse's tree, faster than libyaml for it;
 *   kobj_direct.c    JSON -> protobuf with no tree, when nothing in it is wrong;
 *   kobj_emit.c      protobuf -> YAML and JSON: kobj_emit*.
 */
#include "config.h"
#include "kobj_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pb.h"
#include "util.h"

/* ----------------------------------------------------- implicit typing */

int kobj_all_in(const char *s, const char *set)
{
    if (!*s)
        return 0;
    return strspn(s, set) == strlen(s);
}

/* YAML 1.2 core schema resolution of a plain scalar. */
enum res kobj_resolve(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE"};
    /* the common case first, without the spellings' compares (none starts with a digit):
     * a decimal integer (a JSON body's ports, counts, seconds) */
    if (*s >= '0' && *s <= '9') {
        const char *p = s;
        while (*p >= '0' && *p <= '9')
            p++;
        if (!*p)
            return R_INT;
    }
    for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
        if (!strcmp(s, nulls[i]))
            return R_NULL;
    for (size_t i = 0; i < ARRAY_SIZE(bools); i++)
        if (!strcmp(s, bools[i]))
            return R_BOOL;
    const char *d = s + (*s == '-' || *s == '+');
    if (kobj_all_in(d, "0123456789"))
        return R_INT;
    if ((!strncmp(s, "0x", 2) && kobj_all_in(s + 2, "0123456789abcdefABCDEF")) ||
        (!strncmp(s, "0o", 2) && kobj_all_in(s + 2, "01234567")))
        return R_INT;
    if (!strcmp(d, ".inf") || !strcmp(d, ".Inf") || !strcmp(d, ".INF") || !strcmp(s, ".nan") ||
        !strcmp(s, ".NaN") || !strcmp(s, ".NAN"))
        return R_FLOAT;
    /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
    const char *p = d;
    size_t ip = strspn(p, "0123456789");
    p += ip;
    size_t fp = 0;
    if (*p == '.') {
        p++;
        fp = strspn(p, "0123456789");
        p += fp;
    } else if (!ip)
        return R_STR;
    if (!ip && !fp)
        return R_STR;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        size_t ep = strspn(p, "0123456789");
        if (!ep)
            return R_STR;
        p += ep;
    }
    return *p ? R_STR : R_FLOAT;
}

/* ----------------------------------------------- descriptor helpers */

/* Fields Kubernetes inlines into their parent in YAML/JSON. */
static const struct {
    const ProtobufCMessageDescriptor *desc;
    const char *field;
} inlined[] = {
    {&coracle__v1__probe__descriptor, "handler"},
    {&coracle__v1__volume__descriptor, "volumeSource"},
    {&coracle__v1__config_map_volume_source__descriptor, "localObjectReference"},
    {&coracle__v1__config_map_key_selector__descriptor, "localObjectReference"},
    {&coracle__v1__secret_key_selector__descriptor, "localObjectReference"},
    {&coracle__v1__config_map_env_source__descriptor, "localObjectReference"},
    {&coracle__v1__secret_env_source__descriptor, "localObjectReference"},
    {&coracle__v1__config_map_projection__descriptor, "localObjectReference"},
    {&coracle__v1__secret_projection__descriptor, "localObjectReference"},
};

int kobj_is_inlined(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) /* every field read and written asks: most are not */
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(inlined); i++)
        if (inlined[i].desc == d && !strcmp(inlined[i].field, f->name))
            return 1;
    return 0;
}

int kobj_is_ptr_type(ProtobufCType t)
{
    return t == PROTOBUF_C_TYPE_STRING || t == PROTOBUF_C_TYPE_MESSAGE;
}

size_t kobj_elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 8;
}

int kobj_desc_is_map_entry(const ProtobufCMessageDescriptor *d)
{
    if (d->n_fields != 2) /* most are not: no strlen for them */
        return 0;
    size_t nl = strlen(d->name);
    return nl > 5 && !strcmp(d->name + nl - 5, "Entry") && d->fields[0].id == 1 &&
           !strcmp(d->fields[0].name, "key") && d->fields[1].id == 2 &&
           !strcmp(d->fields[1].name, "value");
}

ProtobufCMessage *kobj_msg_new(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = xcalloc(1, d->sizeof_message);
    d->message_init(m);
    return m;
}

void kobj_elem_free(const ProtobufCFieldDescriptor *f, void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char *s = *(char **)slot;
        if (s && s != (const char *)f->default_value)
            free(s);
        *(char **)slot = NULL;
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        if (*(ProtobufCMessage **)slot)
            protobuf_c_message_free_unpacked(*(ProtobufCMessage **)slot, NULL);
        *(ProtobufCMessage **)slot = NULL;
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = slot;
        free(b->data);
        b->data = NULL;
        b->len = 0;
        break;
    }
    default:
        memset(slot, 0, kobj_elem_size(f));
    }
}

int kobj_field_is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) > 0;
    if (kobj_is_ptr_type(f->type))
        return *(void *const *)(base + f->offset) != NULL;
    if (f->quantifier_offset)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    return 1;
}

void kobj_field_clear(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    char *base = (char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t *n = (size_t *)(base + f->quantifier_offset);
        char **arr = (char **)(base + f->offset);
        size_t es = kobj_elem_size(f);
        for (size_t i = 0; i < *n; i++)
            kobj_elem_free(f, *arr + i * es);
        free(*arr);
        *arr = NULL;
        *n = 0;
        return;
    }
    kobj_elem_free(f, base + f->offset);
    if (!kobj_is_ptr_type(f->type) && f->quantifier_offset)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 0;
}

void kobj_field_move(ProtobufCMessage *dst, ProtobufCMessage *src,
                     const ProtobufCFieldDescriptor *f)
{
    char *d = (char *)dst, *s = (char *)src;
    kobj_field_clear(dst, f);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        memcpy(d + f->offset, s + f->offset, sizeof(void *));
        memcpy(d + f->quantifier_offset, s + f->quantifier_offset, sizeof(size_t));
        memset(s + f->offset, 0, sizeof(void *));
        memset(s + f->quantifier_offset, 0, sizeof(size_t));
        return;
    }
    memcpy(d + f->offset, s + f->offset, kobj_elem_size(f));
    memset(s + f->offset, 0, kobj_elem_size(f));
    if (!kobj_is_ptr_type(f->type) && f->quantifier_offset) {
        memcpy(d + f->quantifier_offset, s + f->quantifier_offset, sizeof(protobuf_c_boolean));
        memset(s + f->quantifier_offset, 0, sizeof(protobuf_c_boolean));
    }
}

ProtobufCMessage *kobj_msg_dup(const ProtobufCMessage *m)
{
    return pb_clone(m);
}

/* Finds key in d, or in one of d's inlined fields (then *owner is that field). */
const ProtobufCFieldDescriptor *kobj_lookup(const ProtobufCMessageDescriptor *d, const char *key,
                                            const ProtobufCFieldDescriptor **owner)
{
    *owner = NULL;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f && !kobj_is_inlined(d, f))
        return f;
    for (size_t i = 0; i < ARRAY_SIZE(inlined); i++) {
        if (inlined[i].desc != d)
            continue;
        const ProtobufCFieldDescriptor *of =
            protobuf_c_message_descriptor_get_field_by_name(d, inlined[i].field);
        const ProtobufCFieldDescriptor *sf =
            protobuf_c_message_descriptor_get_field_by_name(of->descriptor, key);
        if (sf) {
            *owner = of;
            return sf;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ time */

/* n (< 10^digits) in decimal, zero-padded to digits, at w. */
static char *put_digits(char *w, unsigned n, int digits)
{
    for (int i = digits - 1; i >= 0; i--, n /= 10)
        w[i] = (char)('0' + n % 10);
    return w + digits;
}

/*
 * Every object has timestamps and every answer writes them: years 1000 to
 * 9999 (four digits, as %Y writes them) are done by hand from the days
 * since 1970 (the civil-from-days algorithm), others by gmtime and strftime.
 */
void kobj_fmt_rfc3339(char *buf, size_t n, int64_t sec, int32_t nanos, int micro)
{
    const int64_t lo = -30610224000LL, hi = 253402300800LL; /* 1000-01-01, 10000-01-01 */
    char s[48], *w = s;
    if (sec >= lo && sec < hi) {
        int64_t days = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
        unsigned sod = (unsigned)(sec - days * 86400);
        int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
        unsigned doe = (unsigned)(z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
        unsigned y = (unsigned)(yoe + era * 400 + (m <= 2));
        w = put_digits(w, y, 4);
        *w++ = '-';
        w = put_digits(w, m, 2);
        *w++ = '-';
        w = put_digits(w, d, 2);
        *w++ = 'T';
        w = put_digits(w, sod / 3600, 2);
        *w++ = ':';
        w = put_digits(w, sod / 60 % 60, 2);
        *w++ = ':';
        w = put_digits(w, sod % 60, 2);
        *w = 0;
    } else {
        time_t t = (time_t)sec;
        struct tm tm = {0};
        gmtime_r(&t, &tm);
        strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
        w = s + strlen(s);
    }
    if (micro && nanos >= 0 && nanos < 1000000000) {
        *w++ = '.';
        w = put_digits(w, (unsigned)nanos / 1000, 6);
    } else if (micro) {
        w += snprintf(w, sizeof(s) - (size_t)(w - s), ".%06d", nanos / 1000);
    }
    *w++ = 'Z';
    size_t l = (size_t)(w - s) < n ? (size_t)(w - s) : n - 1;
    memcpy(buf, s, l);
    buf[l] = 0;
}

ProtobufCMessage *kobj_time_new(const ProtobufCMessageDescriptor *d, int64_t sec, int32_t nanos)
{
    /* Time and MicroTime have the same layout: seconds = 1, nanos = 2. */
    Coracle__V1__Time *t = (Coracle__V1__Time *)kobj_msg_new(d);
    t->has_seconds = 1;
    t->seconds = sec;
    if (nanos && d == &coracle__v1__micro_time__descriptor) {
        t->has_nanos = 1;
        t->nanos = nanos - nanos % 1000;
    }
    return &t->base;
}

int kobj_parse_rfc3339(const char *s, int64_t *sec, int32_t *nanos)
{
    int y, mo, d, h, mi, se, used = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &used) != 6 ||
        used != 19)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    const char *p = s + used;
    int32_t ns = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                ns = ns * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (!digits)
            return -1;
        for (; digits < 9; digits++)
            ns *= 10;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int oh, om, u = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &u) != 2 || u != 5)
            return -1;
        off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else
        return -1;
    if (*p)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    *sec = (int64_t)timegm(&tm) - off;
    *nanos = ns;
    return 0;
}
