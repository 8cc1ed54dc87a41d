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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "buf.h"
#include "json.h"
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

void kobj_json_str(struct buf *b, const char *s, size_t len)
{
    /* the common case, nothing to escape: one reservation, one copy */
    char *w = buf_reserve(b, len + 2);
    size_t i = 0;
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

static void em_key(struct em *e, const char *k)
{
    if (e->fmt == KOBJ_FMT_YAML) {
        em_str(e, k);
        return;
    }
    json_pre(e);
    kobj_json_str(&e->out, k, strlen(k));
    buf_puts(&e->out, e->fmt == KOBJ_FMT_JSON ? ": " : ":");
    e->after_key = 1;
}

/*
 * A field's name as a key. Proto field names are identifiers, plain in
 * JSON: copied between the quotes as they are, with no escaping pass
 * (every field of every answer has one).
 */
static void em_field_key(struct em *e, const char *name)
{
    if (e->fmt == KOBJ_FMT_YAML) {
        em_str(e, name);
        return;
    }
    json_pre(e);
    size_t n = strlen(name), sep = e->fmt == KOBJ_FMT_JSON ? 2 : 1;
    char *w = buf_reserve(&e->out, n + 2 + sep);
    w[0] = '"';
    memcpy(w + 1, name, n);
    memcpy(w + 1 + n, "\": ", 1 + sep);
    buf_commit(&e->out, n + 2 + sep);
    e->after_key = 1;
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

static void emit_msg(struct em *e, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    char buf[64];
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
        if (is->type == 1)
            em_str(e, is->strval ? is->strval : "");
        else {
            em_int(e, is->intval);
        }
        return;
    }
    if (d == &coracle__v1__time__descriptor || d == &coracle__v1__micro_time__descriptor) {
        const Coracle__V1__Time *t = (const Coracle__V1__Time *)m;
        kobj_fmt_rfc3339(buf, sizeof(buf), t->seconds, t->nanos,
                         d == &coracle__v1__micro_time__descriptor);
        em_scalar(e, buf, strlen(buf), 1, 1);
        return;
    }
    em_open(e, 1);
    emit_fields(e, m);
    em_close(e, 1);
}

static void emit_obj(struct em *e, const struct kind *k, const ProtobufCMessage *m)
{
    em_open(e, 1);
    if (k) {
        em_key(e, "apiVersion");
        em_str(e, k->api_version);
        em_key(e, "kind");
        em_str(e, k->kind);
    }
    emit_fields(e, m);
    em_close(e, 1);
}

static void em_begin(struct em *e, enum kobj_fmt fmt)
{
    memset(e, 0, sizeof(*e));
    e->fmt = fmt;
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
        emit_obj(&e, k, items[i]);
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
