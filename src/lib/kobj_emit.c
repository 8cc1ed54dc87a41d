/*
 * kobj_emit: protobuf-c messages -> YAML or JSON, for kobj_emit and
 * kobj_emit_list (see kobj.c for the whole module). One walker (emit_*)
 * visits the fields in proto order and calls a few primitives (em_open,
 * em_close, em_scalar, em_key), each with a YAML side (libyaml's emitter,
 * quoting what a YAML reader would take for another type) and a JSON side
 * (written here, pretty or compact): another output format is another side
 * of these primitives.
 */
#include "config.h"
#include "kobj_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "json.h"
#include "pb.h"
#include "util.h"

/* ------------------------------------------------------ pb -> text */

struct em {
    enum kobj_fmt fmt;
    yaml_emitter_t ye;
    struct buf out;
    int depth;
    int first[KOBJ_MAX_DEPTH * 2 + 8];
    int after_key;
};

static int em_write(void *data, unsigned char *buf, size_t size)
{
    struct em *e = data;
    buf_add(&e->out, buf, size);
    return 1;
}

static void ye_emit(struct em *e, yaml_event_t *ev)
{
    if (!yaml_emitter_emit(&e->ye, ev))
        fatal("yaml emitter: %s", e->ye.problem ? e->ye.problem : "failed");
}

static void json_pre(struct em *e)
{
    if (e->after_key) {
        e->after_key = 0;
        return;
    }
    if (e->depth > 0) {
        if (!e->first[e->depth])
            buf_puts(&e->out, ",");
        e->first[e->depth] = 0;
        if (e->fmt == KOBJ_FMT_JSON)
            buf_printf(&e->out, "\n%*s", e->depth * 4, "");
    }
}

/*
 * The bytes that stand for themselves in a JSON string: printable ASCII but
 * '"', '\\' and, as Go's encoding/json escapes them, '<', '>' and '&'.
 * A table, because every byte of every string of every answer is looked up.
 */
static const unsigned char json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* The escaped form of s[i], which is not plain; returns the bytes of s it took. */
static size_t json_escape(struct buf *b, const char *s, size_t i, size_t len)
{
    unsigned char ch = (unsigned char)s[i];
    switch (ch) {
    case '"':
        buf_puts(b, "\\\"");
        return 1;
    case '\\':
        buf_puts(b, "\\\\");
        return 1;
    case '\n':
        buf_puts(b, "\\n");
        return 1;
    case '\t':
        buf_puts(b, "\\t");
        return 1;
    case '\r':
        buf_puts(b, "\\r");
        return 1;
    }
    if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
        /* as Go's encoding/json does */
        static const char hex[] = "0123456789abcdef";
        char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
        buf_add(b, u, sizeof(u));
        return 1;
    }
    /* Protobuf strings are not checked for UTF-8 (an annotation can hold
     * any bytes): as Go's encoding/json, each bad byte becomes U+FFFD, so
     * the JSON stays valid for -o jsonpath's json_parse and for readers. */
    size_t k = json_utf8_len(s + i, len - i);
    if (k) {
        buf_add(b, &s[i], k);
        return k;
    }
    buf_puts(b, "\\ufffd");
    return 1;
}

/*
 * Whether the 8 bytes of x are all plain (json_plain), in a few word
 * operations instead of a lookup each: no byte of 0x80 or more, none
 * below 0x20, none of '"' '&' (0x22, 0x26: one bit apart), '<' '>' (0x3c,
 * 0x3e) or '\\'. (v - 0x01..) & ~v has a byte's top bit set for some
 * byte exactly when v has a zero byte; (x - 0x20..) & ~x for a byte
 * below 0x20.
 */
static inline int plain8(uint64_t x)
{
    const uint64_t one = 0x0101010101010101ull;
    uint64_t q = (x & ~(one * 0x04)) ^ (one * 0x22), a = (x & ~(one * 0x02)) ^ (one * 0x3c),
             bs = x ^ (one * 0x5c);
    uint64_t hit =
        ((q - one) & ~q) | ((a - one) & ~a) | ((bs - one) & ~bs) | ((x - one * 0x20) & ~x) | x;
    return !(hit & (one * 0x80));
}

void kobj_json_str(struct buf *b, const char *s, size_t len)
{
    /* the common case, nothing to escape: one reservation, one copy */
    char *w = buf_reserve(b, len + 2);
    size_t i = 0;
    uint64_t x;
    if (len >= 8) {
        while (i + 8 <= len && (memcpy(&x, s + i, 8), plain8(x)))
            i += 8;
        /* a tail under 8 bytes: the last 8, which overlap what was scanned */
        if (i < len && i + 8 > len && (memcpy(&x, s + len - 8, 8), plain8(x)))
            i = len;
    } else if (len >= 4) {
        /* the first 4 bytes and the last 4 (overlapping) as one word */
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + len - 4, 4);
        if (plain8(lo | (uint64_t)hi << 32))
            i = len;
    }
    while (i < len && json_plain[(unsigned char)s[i]])
        i++;
    w[0] = '"';
    memcpy(w + 1, s, i);
    if (i == len) {
        w[len + 1] = '"';
        buf_commit(b, len + 2);
        return;
    }
    buf_commit(b, i + 1);
    while (i < len) {
        /* runs of plain bytes in one copy */
        size_t run = i;
        while (run < len && json_plain[(unsigned char)s[run]])
            run++;
        buf_add(b, s + i, run - i);
        if (run < len)
            run += json_escape(b, s, run, len);
        i = run;
    }
    buf_puts(b, "\"");
}

static void em_open(struct em *e, int map)
{
    if (e->fmt == KOBJ_FMT_YAML) {
        yaml_event_t ev;
        if (map)
            yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
        else
            yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        ye_emit(e, &ev);
        return;
    }
    json_pre(e);
    buf_puts(&e->out, map ? "{" : "[");
    e->depth++;
    if ((size_t)e->depth >= ARRAY_SIZE(e->first))
        fatal("kobj_emit: nesting too deep");
    e->first[e->depth] = 1;
}

static void em_close(struct em *e, int map)
{
    if (e->fmt == KOBJ_FMT_YAML) {
        yaml_event_t ev;
        if (map)
            yaml_mapping_end_event_initialize(&ev);
        else
            yaml_sequence_end_event_initialize(&ev);
        ye_emit(e, &ev);
        return;
    }
    int empty = e->first[e->depth];
    e->depth--;
    if (!empty && e->fmt == KOBJ_FMT_JSON)
        buf_printf(&e->out, "\n%*s", e->depth * 4, "");
    buf_puts(&e->out, map ? "}" : "]");
}

/* Must this string be quoted in YAML to stay a string? (YAML 1.1 and 1.2 readers.) */
static int yaml_ambiguous(const char *s)
{
    static const char *const b11[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
                                      "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
    if (kobj_resolve(s) != R_STR)
        return 1;
    for (size_t i = 0; i < ARRAY_SIZE(b11); i++)
        if (!strcmp(s, b11[i]))
            return 1;
    /* YAML 1.1 ints/floats with '_' or sexagesimal ':' */
    const char *d = s + (*s == '-' || *s == '+');
    if (*d >= '0' && *d <= '9' && kobj_all_in(d, "0123456789_:.eE+-"))
        return 1;
    return 0;
}

/*
 * s with every byte that starts no valid UTF-8 sequence replaced by U+FFFD
 * (malloc'd, length in *n), or NULL if s is valid: libyaml refuses invalid
 * UTF-8 (and says so in misleading words), and the JSON writer makes the
 * same replacement, as Go does.
 */
static char *utf8_fixed(const char *s, size_t len, size_t *n)
{
    size_t i = 0;
    while (i < len) {
        size_t k = (unsigned char)s[i] < 0x80 ? 1 : json_utf8_len(s + i, len - i);
        if (!k)
            break;
        i += k;
    }
    if (i == len)
        return NULL;
    char *out = xmalloc(len * 3 + 1), *w = out;
    for (i = 0; i < len;) {
        size_t k = (unsigned char)s[i] < 0x80 ? 1 : json_utf8_len(s + i, len - i);
        if (k) {
            memcpy(w, s + i, k);
            w += k;
            i += k;
        } else {
            w += json_utf8_encode(w, 0xFFFD);
            i++;
        }
    }
    *w = 0;
    *n = (size_t)(w - out);
    return out;
}

static void em_scalar(struct em *e, const char *s, size_t len, int is_str, int force_quote)
{
    if (e->fmt == KOBJ_FMT_YAML) {
        size_t fl = 0;
        char *fixed = is_str ? utf8_fixed(s, len, &fl) : NULL;
        if (fixed) {
            em_scalar(e, fixed, fl, is_str, force_quote);
            free(fixed);
            return;
        }
        yaml_event_t ev;
        yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
        int plain_ok = 1;
        if (!is_str)
            style = YAML_PLAIN_SCALAR_STYLE;
        else if (force_quote || yaml_ambiguous(s)) {
            style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
            plain_ok = 0;
        } else if (memchr(s, '\n', len))
            style = YAML_LITERAL_SCALAR_STYLE;
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)len, plain_ok, 1,
                                     style);
        ye_emit(e, &ev);
        return;
    }
    json_pre(e);
    if (is_str)
        kobj_json_str(&e->out, s, len);
    else
        buf_add(&e->out, s, len);
}

static void em_str(struct em *e, const char *s)
{
    em_scalar(e, s, strlen(s), 1, 0);
}

static void em_lit(struct em *e, const char *s)
{
    em_scalar(e, s, strlen(s), 0, 0);
}

/* A map's key of len bytes. */
static void em_key_n(struct em *e, const char *k, size_t len)
{
    if (e->fmt == KOBJ_FMT_YAML) {
        em_scalar(e, k, len, 1, 0);
        return;
    }
    json_pre(e);
    kobj_json_str(&e->out, k, len);
    buf_puts(&e->out, e->fmt == KOBJ_FMT_JSON ? ": " : ":");
    e->after_key = 1;
}

static void em_key(struct em *e, const char *k)
{
    em_key_n(e, k, strlen(k));
}

/*
 * A field's name as a key. Proto field names are identifiers, plain in
 * JSON: copied between the quotes as they are, with no escaping pass
 * (every field of every answer has one).
 */
static void em_field_key_n(struct em *e, const char *name, size_t n)
{
    if (e->fmt == KOBJ_FMT_YAML) {
        em_str(e, name);
        return;
    }
    json_pre(e);
    char *w = buf_reserve(&e->out, n + 4);
    w[0] = '"';
    memcpy(w + 1, name, n);
    w[n + 1] = '"';
    w[n + 2] = ':';
    w[n + 3] = ' '; /* kept by pretty JSON only */
    buf_commit(&e->out, n + (e->fmt == KOBJ_FMT_JSON ? 4 : 3));
    e->after_key = 1;
}

static void em_field_key(struct em *e, const char *name)
{
    em_field_key_n(e, name, strlen(name));
}

/* v in decimal, as printf's %PRIu64 (with a '-' before it if neg). */
static void em_uint(struct em *e, uint64_t v, int neg)
{
    char num[24], *w = num + sizeof(num);
    do {
        *--w = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        *--w = '-';
    em_scalar(e, w, (size_t)(num + sizeof(num) - w), 0, 0);
}

static void em_int(struct em *e, int64_t v)
{
    em_uint(e, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0);
}

static void emit_msg(struct em *e, const ProtobufCMessage *m);

static void b64(struct buf *b, const uint8_t *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char o[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        buf_add(b, o, 4);
    }
}

static void emit_value(struct em *e, const ProtobufCFieldDescriptor *f, const void *slot)
{
    char num[64];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        em_int(e, *(const int32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        em_uint(e, *(const uint32_t *)slot, 0);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        em_int(e, *(const int64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        em_uint(e, *(const uint64_t *)slot, 0);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        snprintf(num, sizeof(num), "%.9g", (double)*(const float *)slot);
        em_lit(e, num);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        snprintf(num, sizeof(num), "%.17g", *(const double *)slot);
        em_lit(e, num);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        em_lit(e, *(const protobuf_c_boolean *)slot ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)slot);
        if (v)
            em_str(e, v->name);
        else {
            em_int(e, *(const int *)slot);
        }
        break;
    }
    case PROTOBUF_C_TYPE_STRING:
        em_str(e, *(char *const *)slot ? *(char *const *)slot : "");
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = slot;
        struct buf b = {0};
        b64(&b, bd->data, bd->len);
        char *s = buf_take(&b);
        em_str(e, s);
        free(s);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        if (sub)
            emit_msg(e, sub);
        else
            em_lit(e, "null");
        break;
    }
    }
}

static void emit_fields(struct em *e, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!kobj_field_is_set(m, f))
            continue;
        if (kobj_is_inlined(d, f)) {
            emit_fields(e, *(ProtobufCMessage *const *)(base + f->offset));
            continue;
        }
        em_field_key(e, f->name);
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            emit_value(e, f, base + f->offset);
            continue;
        }
        size_t n = *(const size_t *)(base + f->quantifier_offset), es = kobj_elem_size(f);
        const char *arr = *(char *const *)(base + f->offset);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && kobj_desc_is_map_entry(f->descriptor)) {
            const ProtobufCMessageDescriptor *ed = f->descriptor;
            em_open(e, 1);
            for (size_t j = 0; j < n; j++) {
                const char *ent = *(char *const *)(arr + j * es);
                const char *key = *(char *const *)(ent + ed->fields[0].offset);
                em_key(e, key ? key : "");
                if (kobj_field_is_set((const ProtobufCMessage *)ent, &ed->fields[1]))
                    emit_value(e, &ed->fields[1], ent + ed->fields[1].offset);
                else
                    em_str(e, "");
            }
            em_close(e, 1);
            continue;
        }
        em_open(e, 0);
        for (size_t j = 0; j < n; j++)
            emit_value(e, f, arr + j * es);
        em_close(e, 0);
    }
}

/* A parsed JSON value through the primitives (FieldsV1's embedded object). */
static void emit_json(struct em *e, const json_t *v)
{
    switch (v->type) {
    case JSON_NULL:
        em_lit(e, "null");
        break;
    case JSON_FALSE:
        em_lit(e, "false");
        break;
    case JSON_TRUE:
        em_lit(e, "true");
        break;
    case JSON_NUMBER:
        em_lit(e, v->str);
        break;
    case JSON_STRING:
        em_scalar(e, v->str, v->len, 1, 0);
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        em_open(e, v->type == JSON_OBJECT);
        for (size_t i = 0; i < v->n; i++) {
            if (v->type == JSON_OBJECT)
                em_key(e, v->keys[i]);
            emit_json(e, v->kids[i]);
        }
        em_close(e, v->type == JSON_OBJECT);
        break;
    }
}

/* FieldsV1 is its JSON object; bytes that are not JSON (only a gRPC client can store them) as null.
 */
static void emit_fields_v1(struct em *e, const Coracle__V1__FieldsV1 *fv)
{
    /* The apiserver's answers: the stored bytes as they are. Admission lets
     * only a JSON object in, and kssa writes compact JSON: parsing and
     * writing it again was a third of a REST create's answer. */
    if (e->fmt == KOBJ_FMT_JSON_COMPACT && fv->has_raw && fv->raw.len) {
        em_scalar(e, (const char *)fv->raw.data, fv->raw.len, 0, 0);
        return;
    }
    json_t *v = NULL;
    struct json_limits lim = {0, KOBJ_MAX_DEPTH, 0};
    if (!fv->has_raw || json_parse((const char *)fv->raw.data, fv->raw.len, &lim, &v, NULL) < 0) {
        em_lit(e, "null");
        return;
    }
    emit_json(e, v);
    json_free(v);
}

/* IntOrString: its string when its type says so (1), else its number. */
static void em_int_or_string(struct em *e, int64_t type, int32_t intval, const char *str,
                             size_t len)
{
    if (type == 1)
        em_scalar(e, str ? str : "", str ? len : 0, 1, 0);
    else
        em_int(e, intval);
}

/* Time (micro: MicroTime) in RFC 3339, quoted in YAML too. */
static void em_time(struct em *e, int64_t sec, int32_t nanos, int micro)
{
    /* an object's times, and those of objects written in one burst, are mostly one second:
     * the last one written is remembered per thread (a date costs some 250 instructions) */
    static __thread struct {
        int64_t sec;
        int32_t nanos;
        int micro, set;
        char text[64];
        size_t n;
    } last;
    if (!last.set || last.sec != sec || last.micro != micro || (micro && last.nanos != nanos)) {
        kobj_fmt_rfc3339(last.text, sizeof(last.text), sec, nanos, micro);
        last.n = strlen(last.text);
        last.sec = sec;
        last.nanos = nanos;
        last.micro = micro;
        last.set = 1;
    }
    em_scalar(e, last.text, last.n, 1, 1);
}

static void emit_msg(struct em *e, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &coracle__v1__fields_v1__descriptor) {
        emit_fields_v1(e, (const Coracle__V1__FieldsV1 *)m);
        return;
    }
    if (d == &coracle__v1__quantity__descriptor) {
        const Coracle__V1__Quantity *q = (const Coracle__V1__Quantity *)m;
        em_str(e, q->string ? q->string : "0");
        return;
    }
    if (d == &coracle__v1__int_or_string__descriptor) {
        const Coracle__V1__IntOrString *is = (const Coracle__V1__IntOrString *)m;
        em_int_or_string(e, is->type, is->intval, is->strval, is->strval ? strlen(is->strval) : 0);
        return;
    }
    if (d == &coracle__v1__time__descriptor || d == &coracle__v1__micro_time__descriptor) {
        const Coracle__V1__Time *t = (const Coracle__V1__Time *)m;
        em_time(e, t->seconds, t->nanos, d == &coracle__v1__micro_time__descriptor);
        return;
    }
    em_open(e, 1);
    emit_fields(e, m);
    em_close(e, 1);
}

/* An object's mapping opened, with its apiVersion and kind (k may be NULL: none). */
static void emit_obj_open(struct em *e, const struct kind *k)
{
    em_open(e, 1);
    if (k) {
        em_key(e, "apiVersion");
        em_str(e, k->api_version);
        em_key(e, "kind");
        em_str(e, k->kind);
    }
}

static void emit_obj(struct em *e, const struct kind *k, const ProtobufCMessage *m)
{
    emit_obj_open(e, k);
    emit_fields(e, m);
    em_close(e, 1);
}

/* ------------------------------------------- protobuf bytes -> JSON */

/*
 * An object's JSON straight from its protobuf bytes, without the message
 * (decoding it and freeing it again was half of a REST create's answer,
 * and every JSON get, list and watch event pays the same). It writes what
 * emit_obj writes for the message pb_decode makes of the bytes, through
 * the same primitives: the fields present in descriptor order. Bytes as
 * coracle's encoder writes them (fields in that order, each singular one
 * once) are walked; on anything else (a field out of order or given
 * twice, a type pb_decode leaves to protobuf-c or with defaults, bytes
 * that do not parse) the walk gives up and kobj_emit_pb_buf decodes
 * instead, so the output is always the message's.
 */

/* One field's value as the wire has it. */
struct wv {
    unsigned wire;
    uint64_t v;       /* a varint's value */
    const uint8_t *p; /* a fixed value's bytes, or the length-delimited payload */
    size_t n;
};

/* Types walked: those pb_decode decodes itself (remembered per thread), and no field defaulted. */
static int wire_type_ok(const ProtobufCMessageDescriptor *d)
{
    /* by address: descriptors lie 96 to 256 bytes apart, a prime spreads them */
    static __thread const ProtobufCMessageDescriptor *known[251];
    unsigned h = (unsigned)(((uintptr_t)d >> 3) % 251);
    if (known[h] == d)
        return 1;
    if (!pb_plain_type(d))
        return 0;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].default_value)
            return 0;
    known[h] = d;
    return 1;
}

/* The field at *pp (before end), checked as pb_decode checks it: its number and value. */
static int wire_next(const uint8_t **pp, const uint8_t *end, uint32_t *id, struct wv *w)
{
    const uint8_t *p = *pp;
    uint64_t key, n;
    if (*p < 0x80) /* a field numbered below 16: a one-byte tag */
        key = *p++;
    else if (pb_varint_get(&p, end, &key) < 0 || p - *pp > 5 || key >> 32)
        return -1;
    if (!(key >> 3))
        return -1;
    *id = (uint32_t)(key >> 3);
    w->wire = (unsigned)(key & 7);
    w->p = p;
    w->n = 0;
    switch (w->wire) {
    case PROTOBUF_C_WIRE_TYPE_VARINT:
        if (pb_varint_get(&p, end, &w->v) < 0)
            return -1;
        break;
    case PROTOBUF_C_WIRE_TYPE_64BIT:
    case PROTOBUF_C_WIRE_TYPE_32BIT:
        w->n = w->wire == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
        if ((size_t)(end - p) < w->n)
            return -1;
        p += w->n;
        break;
    case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED: {
        const uint8_t *at = p;
        /* a length as protobuf-c takes it: at most 5 bytes and INT32_MAX, inside end */
        if (pb_varint_get(&p, end, &n) < 0 || p - at > 5 || n > INT32_MAX ||
            n > (uint64_t)(end - p))
            return -1;
        w->p = p;
        w->n = (size_t)n;
        p += n;
        break;
    }
    default:
        return -1;
    }
    *pp = p;
    return 0;
}

/* The wire type a field of type t has (unpacked). */
static unsigned wire_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return PROTOBUF_C_WIRE_TYPE_32BIT;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return PROTOBUF_C_WIRE_TYPE_64BIT;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
    default:
        return PROTOBUF_C_WIRE_TYPE_VARINT;
    }
}

/* A string's length as the decoded C string has it: up to a NUL it holds. */
static size_t wire_strlen(const struct wv *w)
{
    const void *z = memchr(w->p, 0, w->n);
    return z ? (size_t)((const uint8_t *)z - w->p) : w->n;
}

/*
 * The last value of each of fields 1 to 4 of a small message (Time,
 * Quantity, IntOrString, FieldsV1) into v, with has[i] set for those
 * present (v[0], has[0] unused). -1 if the bytes do not parse or a
 * field's wire type is not its type's.
 */
static int wire_small(const ProtobufCMessageDescriptor *d, const struct wv *m, struct wv v[5],
                      int has[5])
{
    const uint8_t *p = m->p, *end = m->p + m->n;
    unsigned hint = 0;
    memset(has, 0, 5 * sizeof(*has));
    while (p < end) {
        uint32_t id;
        struct wv w;
        if (wire_next(&p, end, &id, &w) < 0)
            return -1;
        const ProtobufCFieldDescriptor *f = pb_field_by_id(d, id, &hint);
        if (!f || id > 4)
            continue;
        if (w.wire != wire_of(f->type) || f->type == PROTOBUF_C_TYPE_MESSAGE)
            return -1;
        v[id] = w;
        has[id] = 1;
    }
    return 0;
}

/* The message types that are scalars in JSON, from their bytes as emit_msg writes them. */
static int wire_special(struct em *e, const ProtobufCMessageDescriptor *d, const struct wv *m)
{
    struct wv v[5];
    int has[5];
    if (wire_small(d, m, v, has) < 0)
        return -1;
    if (d == &coracle__v1__fields_v1__descriptor) {
        Coracle__V1__FieldsV1 fv = CORACLE__V1__FIELDS_V1__INIT;
        fv.has_raw = has[1];
        fv.raw.len = has[1] ? v[1].n : 0;
        fv.raw.data = has[1] && v[1].n ? (uint8_t *)v[1].p : NULL;
        emit_fields_v1(e, &fv);
    } else if (d == &coracle__v1__quantity__descriptor) {
        if (has[1])
            em_scalar(e, (const char *)v[1].p, wire_strlen(&v[1]), 1, 0);
        else
            em_str(e, "0");
    } else if (d == &coracle__v1__int_or_string__descriptor) {
        em_int_or_string(e, has[1] ? (int64_t)v[1].v : 0, has[2] ? (int32_t)v[2].v : 0,
                         has[3] ? (const char *)v[3].p : NULL, has[3] ? wire_strlen(&v[3]) : 0);
    } else {
        em_time(e, has[1] ? (int64_t)v[1].v : 0, has[2] ? (int32_t)v[2].v : 0,
                d == &coracle__v1__micro_time__descriptor);
    }
    return 0;
}

static int wire_fields(struct em *e, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                       size_t len);

/*
 * The compact JSON of objects' parts by their bytes, for the process. Pods
 * made from one template (a controller's, a client's manifests) store one
 * spec byte for byte, and every answer, list item and watch event wrote it
 * again: most of a created pod's answer. An object's message fields but
 * its metadata (which names it) are looked up by descriptor and bytes and,
 * when found, copied; else written and kept in place of the entry used
 * least lately (hits halve at every new entry), so parts that never repeat
 * (statuses) pass through one entry without pushing out those that do.
 * The entries of metadata.managedFields are kept the same way: every
 * object written through the REST API has one, and those of one manager
 * and one second (a client's creates) are byte for byte the same, most of
 * their bytes the fieldsV1 of one template. Compact JSON of a message
 * depends on its bytes only.
 */
#define PARTS 8
#define PART_MIN 16 /* smaller parts (a field or two) cost about what a lookup does */
#define PART_MAX (16 * 1024)
static struct {
    pthread_mutex_t mu;
    struct part {
        const ProtobufCMessageDescriptor *d;
        uint8_t *bytes; /* malloc'd */
        size_t n;
        char *json; /* malloc'd */
        size_t jn;
        unsigned hits;
        unsigned long put; /* when it was put (parts.puts then) */
    } e[PARTS];
    unsigned long puts;
} parts = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int part_memo(const struct em *e, const ProtobufCMessageDescriptor *d, const struct wv *w)
{
    if (e->fmt != KOBJ_FMT_JSON_COMPACT || w->n < PART_MIN || w->n > PART_MAX)
        return 0;
    return e->depth == 1 ? d != &coracle__v1__object_meta__descriptor
                         : d == &coracle__v1__managed_fields_entry__descriptor;
}

/* The part's JSON onto e's output if it is known: 1, else 0. */
static int part_get(struct em *e, const ProtobufCMessageDescriptor *d, const struct wv *w)
{
    int hit = 0;
    pthread_mutex_lock(&parts.mu);
    for (size_t i = 0; i < PARTS && !hit; i++) {
        struct part *p = &parts.e[i];
        if (p->d == d && p->n == w->n && !memcmp(p->bytes, w->p, w->n)) {
            buf_add(&e->out, p->json, p->jn);
            p->hits++;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&parts.mu);
    return hit;
}

static void part_put(const ProtobufCMessageDescriptor *d, const struct wv *w, const char *json,
                     size_t jn)
{
    pthread_mutex_lock(&parts.mu);
    /* of the least used, the one put first: the part just put is not the next to go, or
     * two new parts of one object (its spec, its managedFields entry) would take turns */
    struct part *p = &parts.e[0];
    for (size_t i = 1; i < PARTS; i++)
        if (parts.e[i].hits < p->hits || (parts.e[i].hits == p->hits && parts.e[i].put < p->put))
            p = &parts.e[i];
    for (size_t i = 0; i < PARTS; i++)
        parts.e[i].hits /= 2;
    p->d = d;
    p->bytes = xrealloc(p->bytes, w->n);
    memcpy(p->bytes, w->p, w->n);
    p->n = w->n;
    p->json = xrealloc(p->json, jn);
    memcpy(p->json, json, jn);
    p->jn = jn;
    p->hits = 0;
    p->put = ++parts.puts;
    pthread_mutex_unlock(&parts.mu);
}

/* A message's value: a mapping of its fields, or one of the scalar types. */
static int wire_msg(struct em *e, const ProtobufCMessageDescriptor *d, const struct wv *w)
{
    if (d == &coracle__v1__fields_v1__descriptor || d == &coracle__v1__quantity__descriptor ||
        d == &coracle__v1__int_or_string__descriptor || d == &coracle__v1__time__descriptor ||
        d == &coracle__v1__micro_time__descriptor)
        return wire_special(e, d, w);
    int memo = part_memo(e, d, w);
    size_t at = 0;
    if (memo) {
        json_pre(e); /* the separator before it stays out of the part */
        if (part_get(e, d, w))
            return 0;
        at = e->out.len;
        e->after_key = 1; /* written: em_open writes none again */
    }
    em_open(e, 1);
    if (wire_fields(e, d, w->p, w->n) < 0)
        return -1;
    em_close(e, 1);
    if (memo)
        part_put(d, w, e->out.p + at, e->out.len - at);
    return 0;
}

/* One value of field f (a message, or a scalar put in its C type and written by emit_value). */
static int wire_value(struct em *e, const ProtobufCFieldDescriptor *f, const struct wv *w)
{
    union {
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
        protobuf_c_boolean b;
        ProtobufCBinaryData bd;
    } slot;
    if (w->wire != wire_of(f->type))
        return -1;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return wire_msg(e, f->descriptor, w);
    case PROTOBUF_C_TYPE_STRING:
        em_scalar(e, (const char *)w->p, wire_strlen(w), 1, 0);
        return 0;
    case PROTOBUF_C_TYPE_BYTES:
        slot.bd.len = w->n;
        slot.bd.data = (uint8_t *)w->p;
        break;
    case PROTOBUF_C_TYPE_SINT32:
        slot.i32 = (int32_t)(((uint32_t)w->v >> 1) ^ -((uint32_t)w->v & 1));
        break;
    case PROTOBUF_C_TYPE_SINT64:
        slot.i64 = (int64_t)((w->v >> 1) ^ -(w->v & 1));
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        slot.u64 = w->v;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        slot.b = w->v != 0;
        break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_ENUM:
        slot.u32 = (uint32_t)w->v;
        break;
    default: /* fixed-size: the bytes as they are, as pb_decode copies them */
        memcpy(&slot, w->p, w->n);
    }
    emit_value(e, f, &slot);
    return 0;
}

/* A map's entry (its key, then its value; "" for either missing), as emit_fields writes it. */
static int wire_entry(struct em *e, const ProtobufCMessageDescriptor *ed, const struct wv *w)
{
    const uint8_t *p = w->p, *end = w->p + w->n;
    struct wv k = {0}, v = {0};
    int has_k = 0, has_v = 0;
    unsigned hint = 0;
    if (w->wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || !wire_type_ok(ed) ||
        ed->fields[0].type != PROTOBUF_C_TYPE_STRING)
        return -1;
    while (p < end) {
        uint32_t id;
        struct wv x;
        if (wire_next(&p, end, &id, &x) < 0)
            return -1;
        const ProtobufCFieldDescriptor *f = pb_field_by_id(ed, id, &hint);
        if (!f)
            continue;
        if (x.wire != wire_of(f->type) || (f->type == PROTOBUF_C_TYPE_MESSAGE && has_v && id == 2))
            return -1; /* a message value twice: protobuf-c merges the two */
        if (id == 1) {
            k = x;
            has_k = 1;
        } else {
            v = x;
            has_v = 1;
        }
    }
    em_key_n(e, has_k ? (const char *)k.p : "", has_k ? wire_strlen(&k) : 0);
    if (!has_v) {
        em_str(e, "");
        return 0;
    }
    return wire_value(e, &ed->fields[1], &v);
}

/*
 * The fields of a message of type d at p..len, into the open mapping; a
 * repeated field's values in one sequence (or mapping, for a map) that
 * closes when the next field comes.
 */
/*
 * What wire_fields asks of field id of d, once per thread (the same few
 * fields come in every object): the field, its name's length, whether it
 * is inlined, whether it is a map.
 */
struct fplan {
    const ProtobufCMessageDescriptor *d;
    uint32_t id;
    const ProtobufCFieldDescriptor *f; /* NULL: d has no field id */
    size_t nl;
    int inlined, map;
};

static const struct fplan *fplan_of(const ProtobufCMessageDescriptor *d, uint32_t id)
{
    static __thread struct fplan plans[512];
    struct fplan *pl = &plans[(((uintptr_t)d >> 4) * 31 + id) % 512];
    if (pl->d == d && pl->id == id)
        return pl;
    unsigned hint = 0;
    const ProtobufCFieldDescriptor *f = pb_field_by_id(d, id, &hint);
    pl->d = d;
    pl->id = id;
    pl->f = f;
    pl->nl = f ? strlen(f->name) : 0;
    pl->inlined = f && kobj_is_inlined(d, f);
    pl->map = f && f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE &&
              kobj_desc_is_map_entry(f->descriptor);
    return pl;
}

static int wire_fields(struct em *e, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                       size_t len)
{
    const uint8_t *end = p + len;
    const ProtobufCFieldDescriptor *last = NULL; /* the field before */
    int open = -1;                               /* last's sequence (0) or map (1) is open */
    if (!wire_type_ok(d))
        return -1;
    while (p < end) {
        uint32_t id;
        struct wv w;
        if (wire_next(&p, end, &id, &w) < 0)
            return -1;
        const struct fplan *pl = fplan_of(d, id);
        const ProtobufCFieldDescriptor *f = pl->f;
        if (!f)
            continue; /* pb_decode keeps it aside; emit_fields writes no unknown field */
        if ((last && f < last) || (f == last && f->label != PROTOBUF_C_LABEL_REPEATED))
            return -1;
        if (f != last && open >= 0) {
            em_close(e, open);
            open = -1;
        }
        int first = f != last;
        last = f;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            int map = pl->map;
            if (!kobj_is_ptr_type(f->type) && f->type != PROTOBUF_C_TYPE_BYTES)
                return -1; /* repeated scalars may come packed: protobuf-c's */
            if (first) {
                em_field_key_n(e, f->name, pl->nl);
                em_open(e, map);
                open = map;
            }
            if ((map ? wire_entry(e, f->descriptor, &w) : wire_value(e, f, &w)) < 0)
                return -1;
            continue;
        }
        if (pl->inlined) {
            if (w.wire != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED ||
                wire_fields(e, f->descriptor, w.p, w.n) < 0)
                return -1;
            continue;
        }
        em_field_key_n(e, f->name, pl->nl);
        if (wire_value(e, f, &w) < 0)
            return -1;
    }
    if (open >= 0)
        em_close(e, open);
    return 0;
}

static void em_begin(struct em *e, enum kobj_fmt fmt)
{
    /* not the whole of e: first[] is set by each em_open before it is read, ye by YAML's
     * start below, and every JSON answer begins here */
    e->fmt = fmt;
    memset(&e->out, 0, sizeof(e->out));
    e->depth = 0;
    e->first[0] = 0;
    e->after_key = 0;
    if (fmt != KOBJ_FMT_YAML)
        return;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&e->ye))
        fatal("yaml_emitter_initialize");
    yaml_emitter_set_output(&e->ye, em_write, e);
    yaml_emitter_set_width(&e->ye, -1);
    yaml_emitter_set_unicode(&e->ye, 1);
    yaml_emitter_set_indent(&e->ye, 2);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    ye_emit(e, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    ye_emit(e, &ev);
}

static void em_end(struct em *e)
{
    if (e->fmt == KOBJ_FMT_YAML) {
        yaml_event_t ev;
        yaml_document_end_event_initialize(&ev, 1);
        ye_emit(e, &ev);
        yaml_stream_end_event_initialize(&ev);
        ye_emit(e, &ev);
        yaml_emitter_delete(&e->ye);
    } else if (e->fmt == KOBJ_FMT_JSON)
        buf_puts(&e->out, "\n");
}

char *kobj_emit(const struct kind *k, const ProtobufCMessage *msg, enum kobj_fmt fmt)
{
    struct em e;
    em_begin(&e, fmt);
    emit_obj(&e, k, msg);
    em_end(&e);
    return buf_take(&e.out);
}

void kobj_emit_buf(struct buf *out, const struct kind *k, const ProtobufCMessage *msg,
                   enum kobj_fmt fmt)
{
    struct em e;
    em_begin(&e, fmt);
    e.out = *out; /* the walker writes straight into the caller's buffer */
    emit_obj(&e, k, msg);
    em_end(&e);
    *out = e.out;
}

char *kobj_emit_list(const struct kind *k, ProtobufCMessage *const *items, size_t n,
                     enum kobj_fmt fmt)
{
    struct em e;
    em_begin(&e, fmt);
    em_open(&e, 1);
    em_key(&e, "apiVersion");
    em_str(&e, "v1");
    em_key(&e, "items");
    em_open(&e, 0);
    for (size_t i = 0; i < n; i++)
        emit_obj(&e, k ? k : kind_by_desc(items[i]->descriptor), items[i]);
    em_close(&e, 0);
    em_key(&e, "kind");
    em_str(&e, "List");
    em_key(&e, "metadata");
    em_open(&e, 1);
    em_key(&e, "resourceVersion");
    em_str(&e, "");
    em_close(&e, 1);
    em_close(&e, 1);
    em_end(&e);
    return buf_take(&e.out);
}

int kobj_emit_pb_buf(struct buf *out, const struct kind *k, const void *bytes, size_t len,
                     enum kobj_fmt fmt)
{
    if (fmt != KOBJ_FMT_YAML) {
        struct em e;
        size_t at = out->len;
        em_begin(&e, fmt);
        e.out = *out;
        emit_obj_open(&e, k);
        int rc = wire_fields(&e, k->desc, bytes, len);
        if (rc == 0)
            em_close(&e, 1);
        em_end(&e);
        *out = e.out;
        if (rc == 0)
            return 0;
        out->len = at; /* what was written goes: the message says it again */
        out->p[at] = 0;
    }
    ProtobufCMessage *m = pb_decode(k->desc, bytes, len);
    if (!m)
        return -1;
    kobj_emit_buf(out, k, m, fmt);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
