/*
 * json: strict, bounded RFC 8259 parser (recursive descent, depth-limited)
 * and a string quoter. See json.h for the contract.
 */
#include "config.h"

#include "json.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct parser {
    const char *buf;
    size_t len, pos;
    int depth, max_depth;
    size_t nodes, max_nodes;
    char *err;
};

static void perr(struct parser *p, const char *fmt, ...) PRINTF(2, 3);
static void perr(struct parser *p, const char *fmt, ...)
{
    if (p->err)
        return;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++) {
        if (p->buf[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    char *m = xvasprintf(fmt, ap);
    va_end(ap);
    p->err = xasprintf("line %zu column %zu: %s", line, col, m);
    free(m);
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len) {
        char c = p->buf[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* A printable description of the byte at pos, for errors. */
static const char *what(struct parser *p, char tmp[8])
{
    if (p->pos >= p->len)
        return "end of input";
    unsigned char c = (unsigned char)p->buf[p->pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(tmp, 8, "'%c'", c);
    else
        snprintf(tmp, 8, "0x%02x", c);
    return tmp;
}

static json_t *node(struct parser *p, enum json_type t)
{
    if (++p->nodes > p->max_nodes) {
        perr(p, "more than %zu values", p->max_nodes);
        return NULL;
    }
    json_t *v = xcalloc(1, sizeof(*v));
    v->type = t;
    return v;
}

static int hex4(struct parser *p, unsigned *out)
{
    unsigned v = 0;
    if (p->len - p->pos < 4) {
        perr(p, "truncated \\u escape");
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        char c = p->buf[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else {
            p->pos--;
            perr(p, "bad hex digit in \\u escape");
            return -1;
        }
    }
    *out = v;
    return 0;
}

size_t json_utf8_encode(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t json_utf8_len(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned c = s[0];
    size_t k;
    unsigned cp, min;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        k = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        k = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        k = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

/* Parses a string at pos (which is at the opening quote). */
static char *parse_string(struct parser *p, size_t *outlen)
{
    p->pos++; /* '"' */
    /* Decoded text is never longer than the source text. */
    size_t start = p->pos, cap = 16;
    while (start < p->len && p->buf[start] != '"') {
        start += p->buf[start] == '\\' ? 2 : 1;
        cap++;
    }
    char *o = xmalloc(cap + 4);
    size_t n = 0;
    for (;;) {
        if (p->pos >= p->len) {
            perr(p, "unterminated string");
            goto fail;
        }
        unsigned char c = (unsigned char)p->buf[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            perr(p, "control character 0x%02x in string", c);
            goto fail;
        }
        if (c != '\\') {
            size_t k = json_utf8_len(p->buf + p->pos, p->len - p->pos);
            if (k == 0) {
                perr(p, "invalid UTF-8 in string");
                goto fail;
            }
            memcpy(o + n, p->buf + p->pos, k);
            n += k;
            p->pos += k;
            continue;
        }
        p->pos++;
        if (p->pos >= p->len) {
            perr(p, "unterminated string");
            goto fail;
        }
        char e = p->buf[p->pos++];
        switch (e) {
        case '"':
        case '\\':
        case '/':
            o[n++] = e;
            break;
        case 'b':
            o[n++] = '\b';
            break;
        case 'f':
            o[n++] = '\f';
            break;
        case 'n':
            o[n++] = '\n';
            break;
        case 'r':
            o[n++] = '\r';
            break;
        case 't':
            o[n++] = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(p, &cp) < 0)
                goto fail;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                p->pos -= 6;
                perr(p, "lone low surrogate in \\u escape");
                goto fail;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (p->len - p->pos < 6 || p->buf[p->pos] != '\\' || p->buf[p->pos + 1] != 'u') {
                    perr(p, "high surrogate not followed by a low one");
                    goto fail;
                }
                p->pos += 2;
                if (hex4(p, &lo) < 0)
                    goto fail;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    perr(p, "high surrogate not followed by a low one");
                    goto fail;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) {
                perr(p, "\\u0000 in string is not supported");
                goto fail;
            }
            /* A \uXXXX (6 bytes) decodes to at most 3, a pair (12) to 4. */
            n += json_utf8_encode(o + n, cp);
            break;
        }
        default:
            p->pos--;
            perr(p, "bad escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
            goto fail;
        }
    }
    o[n] = '\0';
    *outlen = n;
    return o;
fail:
    free(o);
    return NULL;
}

static json_t *parse_value(struct parser *p);

static json_t *parse_number(struct parser *p)
{
    size_t s = p->pos;
    if (p->buf[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len || p->buf[p->pos] < '0' || p->buf[p->pos] > '9') {
        perr(p, "expected a digit");
        return NULL;
    }
    if (p->buf[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && p->buf[p->pos] >= '0' && p->buf[p->pos] <= '9') {
            perr(p, "leading zero in number");
            return NULL;
        }
    } else {
        while (p->pos < p->len && p->buf[p->pos] >= '0' && p->buf[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->len && p->buf[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || p->buf[p->pos] < '0' || p->buf[p->pos] > '9') {
            perr(p, "expected a digit after '.'");
            return NULL;
        }
        while (p->pos < p->len && p->buf[p->pos] >= '0' && p->buf[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->len && (p->buf[p->pos] == 'e' || p->buf[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->buf[p->pos] == '+' || p->buf[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || p->buf[p->pos] < '0' || p->buf[p->pos] > '9') {
            perr(p, "expected a digit in exponent");
            return NULL;
        }
        while (p->pos < p->len && p->buf[p->pos] >= '0' && p->buf[p->pos] <= '9')
            p->pos++;
    }
    json_t *v = node(p, JSON_NUMBER);
    if (!v)
        return NULL;
    v->str = xstrndup(p->buf + s, p->pos - s);
    v->len = p->pos - s;
    v->num = strtod(v->str, NULL);
    return v;
}

static int lit(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->buf + p->pos, word, n) != 0)
        return 0;
    p->pos += n;
    return 1;
}

static json_t *parse_container(struct parser *p, int is_obj)
{
    char tmp[8];
    char close = is_obj ? '}' : ']';
    if (++p->depth > p->max_depth) {
        perr(p, "nested deeper than %d", p->max_depth);
        return NULL;
    }
    json_t *v = node(p, is_obj ? JSON_OBJECT : JSON_ARRAY);
    if (!v)
        return NULL;
    size_t cap = 0;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->buf[p->pos] == close) {
        p->pos++;
        p->depth--;
        return v;
    }
    for (;;) {
        char *key = NULL;
        size_t klen;
        skip_ws(p);
        if (is_obj) {
            if (p->pos >= p->len || p->buf[p->pos] != '"') {
                perr(p, "expected a member name (a string), got %s", what(p, tmp));
                goto fail;
            }
            key = parse_string(p, &klen);
            if (!key)
                goto fail;
            skip_ws(p);
            if (p->pos >= p->len || p->buf[p->pos] != ':') {
                perr(p, "expected ':' after member name, got %s", what(p, tmp));
                free(key);
                goto fail;
            }
            p->pos++;
        }
        json_t *kid = parse_value(p);
        if (!kid) {
            free(key);
            goto fail;
        }
        if (v->n == cap) {
            cap = cap ? cap * 2 : 4;
            v->kids = xrealloc(v->kids, cap * sizeof(*v->kids));
            if (is_obj)
                v->keys = xrealloc(v->keys, cap * sizeof(*v->keys));
        }
        if (is_obj)
            v->keys[v->n] = key;
        v->kids[v->n++] = kid;
        skip_ws(p);
        if (p->pos < p->len && p->buf[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->buf[p->pos] == close) {
                perr(p, "trailing comma");
                goto fail;
            }
            continue;
        }
        if (p->pos < p->len && p->buf[p->pos] == close) {
            p->pos++;
            break;
        }
        perr(p, "expected ',' or '%c', got %s", close, what(p, tmp));
        goto fail;
    }
    p->depth--;
    return v;
fail:
    json_free(v);
    return NULL;
}

static json_t *parse_value(struct parser *p)
{
    char tmp[8];
    json_t *v;
    skip_ws(p);
    if (p->pos >= p->len) {
        perr(p, "expected a value, got end of input");
        return NULL;
    }
    switch (p->buf[p->pos]) {
    case '{':
        return parse_container(p, 1);
    case '[':
        return parse_container(p, 0);
    case '"': {
        size_t n;
        char *s = parse_string(p, &n);
        if (!s)
            return NULL;
        v = node(p, JSON_STRING);
        if (!v) {
            free(s);
            return NULL;
        }
        v->str = s;
        v->len = n;
        return v;
    }
    case 't':
        if (lit(p, "true"))
            return node(p, JSON_TRUE);
        break;
    case 'f':
        if (lit(p, "false"))
            return node(p, JSON_FALSE);
        break;
    case 'n':
        if (lit(p, "null"))
            return node(p, JSON_NULL);
        break;
    default:
        if (p->buf[p->pos] == '-' || (p->buf[p->pos] >= '0' && p->buf[p->pos] <= '9'))
            return parse_number(p);
        break;
    }
    perr(p, "expected a value, got %s", what(p, tmp));
    return NULL;
}

int json_parse(const char *buf, size_t len, const struct json_limits *lim, json_t **out, char **err)
{
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : JSON_DEFAULT_MAX_BYTES;
    struct parser p = {
        .buf = buf,
        .len = len,
        .max_depth = lim && lim->max_depth > 0 ? lim->max_depth : JSON_DEFAULT_MAX_DEPTH,
        .max_nodes = lim && lim->max_nodes ? lim->max_nodes : JSON_DEFAULT_MAX_NODES,
    };
    *out = NULL;
    if (len > max_bytes) {
        if (err)
            *err = xasprintf("%zu bytes is more than the limit of %zu", len, max_bytes);
        return -1;
    }
    json_t *v = parse_value(&p);
    if (v) {
        skip_ws(&p);
        if (p.pos < p.len) {
            char tmp[8];
            perr(&p, "unexpected %s after the value", what(&p, tmp));
            json_free(v);
            v = NULL;
        }
    }
    if (!v) {
        if (err)
            *err = p.err;
        else
            free(p.err);
        return -1;
    }
    *out = v;
    return 0;
}

int json_parse_file(const char *path, const struct json_limits *lim, json_t **out, char **err)
{
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : JSON_DEFAULT_MAX_BYTES;
    struct stat st;
    char *e = NULL;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err)
            *err = xasprintf("%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (err)
            *err = xasprintf("%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        if (err)
            *err = xasprintf("%s: %lld bytes is more than the limit of %zu", path,
                             (long long)st.st_size, max_bytes);
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = xmalloc(n + 1);
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (err)
                *err = xasprintf("%s: %s", path, r < 0 ? strerror(errno) : "file shrank");
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    int rc = json_parse(buf, n, lim, out, err ? &e : NULL);
    free(buf);
    if (rc < 0 && err) {
        *err = xasprintf("%s: %s", path, e);
        free(e);
    }
    return rc;
}

void json_free(json_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        json_free(v->kids[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->kids);
    free(v->keys);
    free(v->str);
    free(v);
}

json_t *json_get(const json_t *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT)
        return NULL;
    for (size_t i = obj->n; i-- > 0;)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->kids[i];
    return NULL;
}

json_t *json_at(const json_t *arr, size_t i)
{
    if (!arr || arr->type != JSON_ARRAY || i >= arr->n)
        return NULL;
    return arr->kids[i];
}

const char *json_str(const json_t *v)
{
    return v && v->type == JSON_STRING ? v->str : NULL;
}

int json_is(const json_t *v, enum json_type t)
{
    return v && v->type == t;
}

int json_int64(const json_t *v, int64_t *out)
{
    if (!v || v->type != JSON_NUMBER)
        return -1;
    errno = 0;
    char *end;
    long long x = strtoll(v->str, &end, 10);
    if (errno == 0 && *end == '\0') {
        *out = x;
        return 0;
    }
    /* 1e3, 12.0: integral values written another way. */
    if (v->num >= -9.2e18 && v->num <= 9.2e18 && v->num == (double)(int64_t)v->num) {
        *out = (int64_t)v->num;
        return 0;
    }
    return -1;
}

static size_t quote_into(char *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    o[n++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"':
            o[n++] = '\\';
            o[n++] = '"';
            break;
        case '\\':
            o[n++] = '\\';
            o[n++] = '\\';
            break;
        case '\n':
            o[n++] = '\\';
            o[n++] = 'n';
            break;
        case '\r':
            o[n++] = '\\';
            o[n++] = 'r';
            break;
        case '\t':
            o[n++] = '\\';
            o[n++] = 't';
            break;
        default:
            if (*c < 0x20) {
                memcpy(o + n, "\\u00", 4);
                n += 4;
                o[n++] = hex[*c >> 4];
                o[n++] = hex[*c & 15];
            } else {
                o[n++] = (char)*c;
            }
        }
    }
    o[n++] = '"';
    o[n] = '\0';
    return n;
}

char *json_quote(const char *s)
{
    char *o = xmalloc(strlen(s) * 6 + 3);
    quote_into(o, s);
    return o;
}

void json_write_str(FILE *f, const char *s)
{
    char *q = json_quote(s);
    fputs(q, f);
    free(q);
}
