/*
 * read: Get and List, answered from store read snapshots without decoding
 * what need not be decoded: Get copies the stored bytes (already the
 * encoded object) into the reply; List concatenates stored items as field 2
 * entries and appends the ListMeta (field 1; protobuf accepts fields in any
 * order), decoding an item only when a selector needs it.
 *
 * limit/continue: the token carries the list's revision and the last key.
 * A continued page is read as of that revision, as Kubernetes does with
 * etcd: the current objects after the key are merged with the state at the
 * token's revision rebuilt from the store log (the first change of each key
 * after it carries its previous bytes). A token older than the compacted
 * log is OUT_OF_RANGE, like Kubernetes' 410 Expired.
 */
#include "config.h"
#include "api.h"
#include "grpc.h"
#include "obj.h"
#include "sel.h"
#include "util.h"
#include "wire.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- continue token ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const uint8_t *d, size_t n)
{
    char *o = xmalloc(n / 3 * 4 + 5), *p = o;
    size_t i;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *p++ = b64[v >> 18];
        *p++ = b64[v >> 12 & 63];
        *p++ = b64[v >> 6 & 63];
        *p++ = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
        *p++ = b64[v >> 18];
        *p++ = b64[v >> 12 & 63];
        if (i + 1 < n)
            *p++ = b64[v >> 6 & 63];
    }
    *p = 0;
    return o;
}

static int b64_decode(const char *s, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    if (n % 4 == 1)
        return -1;
    uint8_t *o = xmalloc(n / 4 * 3 + 3);
    size_t j = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *q = strchr(b64, s[i]);
        if (!q || !s[i]) {
            free(o);
            return -1;
        }
        acc = acc << 6 | (uint32_t)(q - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[j++] = (uint8_t)(acc >> bits);
        }
    }
    *out = o;
    *out_len = j;
    return 0;
}

char *read_token_encode(uint64_t rev, const char *key, size_t key_len)
{
    char *raw = xasprintf("c1:%" PRIu64 ":%.*s", rev, (int)key_len, key);
    char *t = b64_encode((const uint8_t *)raw, strlen(raw));
    free(raw);
    return t;
}

int read_token_decode(const char *tok, uint64_t *rev, char **key)
{
    uint8_t *raw;
    size_t n;
    if (!tok || b64_decode(tok, &raw, &n) < 0)
        return -1;
    int r = -1;
    if (n < 5 || memcmp(raw, "c1:", 3) || memchr(raw, 0, n))
        goto out;
    size_t i = 3;
    uint64_t v = 0;
    if (raw[i] < '0' || raw[i] > '9')
        goto out;
    while (i < n && raw[i] >= '0' && raw[i] <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            goto out;
        v = v * 10 + (uint64_t)(raw[i++] - '0');
    }
    if (i >= n || raw[i] != ':' || v == 0)
        goto out;
    i++;
    *rev = v;
    *key = xstrndup((const char *)raw + i, n - i);
    r = 0;
out:
    free(raw);
    return r;
}

/* ---- Get ---- */

void read_get(struct api_route *rt, store_t *st, h2s_call_t *c, const uint8_t *msg, size_t len)
{
    const struct kind *k = rt->k;
    Coracle__V1__GetRequest *req =
        (void *)obj_decode(&coracle__v1__get_request__descriptor, msg, len);
    if (!req) {
        api_fail(rt, c, GRPC_INVALID_ARGUMENT, "failed to decode GetRequest: invalid protobuf");
        return;
    }
    if (!req->name || !*req->name) {
        api_fail(rt, c, GRPC_INVALID_ARGUMENT, "resource name may not be empty");
        goto out;
    }
    const char *ns = req->namespace_ && *req->namespace_ ? req->namespace_ : "default";
    char *key = kind_key(k, ns, req->name);
    store_rtxn_t *t;
    int r = store_read_begin(st, &t);
    if (r < 0) {
        api_fail(rt, c, GRPC_UNAVAILABLE, store_strerror(r));
        free(key);
        goto out;
    }
    const void *val;
    size_t vlen;
    r = store_get(t, key, strlen(key), &val, &vlen);
    if (r == 0)
        api_reply(rt, c, val, vlen);
    else if (r == STORE_ENOTFOUND)
        api_failf(rt, c, GRPC_NOT_FOUND, "%s \"%s\" not found", k->resource, req->name);
    else
        api_fail(rt, c, GRPC_INTERNAL, store_strerror(r));
    store_read_end(t);
    free(key);
out:
    obj_free(&req->base);
}

/* ---- List ---- */

struct ovr {
    char *key;
    uint64_t rev;
    void *val; /* NULL: absent at the list revision */
    size_t len;
};

struct lctx {
    const struct kind *k;
    sel_t *ls, *fs;
    int64_t limit;
    struct wire_buf out;
    int64_t count;
    char *last_key;
    size_t last_len;
    bool more;
    const char *prefix;
    size_t plen;
    const char *after; /* continue: keys <= this were listed */
    struct ovr *ov;
    size_t nov, iov;
};

/* Adds one object to the page. Returns nonzero to stop. */
static int emit(struct lctx *x, const char *key, size_t klen, const void *val, size_t vlen)
{
    if (x->ls || x->fs) {
        ProtobufCMessage *o = obj_decode(x->k->desc, val, vlen);
        struct obj_fields_arg fa = {x->k, o};
        bool m = o && (!x->ls || sel_match(x->ls, obj_label_get, o)) &&
                 (!x->fs || sel_match(x->fs, obj_field_get, &fa));
        obj_free(o);
        if (!m)
            return 0;
    }
    if (x->limit > 0 && x->count == x->limit) {
        x->more = true;
        return 1;
    }
    wire_buf_field(&x->out, 2, val, vlen);
    x->count++;
    free(x->last_key);
    x->last_key = xstrndup(key, klen);
    x->last_len = klen;
    return 0;
}

static int keycmp(const char *a, size_t al, const char *b)
{
    size_t bl = strlen(b);
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

/* Emits the overrides with keys below key (all of them if key is NULL). */
static int flush_ovr(struct lctx *x, const char *key, size_t klen)
{
    while (x->iov < x->nov && (!key || keycmp(key, klen, x->ov[x->iov].key) > 0)) {
        struct ovr *o = &x->ov[x->iov++];
        if (o->val && emit(x, o->key, strlen(o->key), o->val, o->len))
            return 1;
    }
    return 0;
}

static int scan_cb(const char *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    struct lctx *x = arg;
    if (x->nov) {
        if (flush_ovr(x, key, klen))
            return 1;
        if (x->iov < x->nov && keycmp(key, klen, x->ov[x->iov].key) == 0) {
            struct ovr *o = &x->ov[x->iov++];
            return o->val ? emit(x, key, klen, o->val, o->len) : 0;
        }
    }
    return emit(x, key, klen, val, vlen);
}

/* Collects, for keys in the listed range, the first change after the list revision. */
static int log_cb(const struct store_change *ch, void *arg)
{
    struct lctx *x = arg;
    if (ch->key_len < x->plen || memcmp(ch->key, x->prefix, x->plen))
        return 0;
    if (keycmp(ch->key, ch->key_len, x->after) <= 0)
        return 0;
    x->ov = xrealloc(x->ov, (x->nov + 1) * sizeof(*x->ov));
    struct ovr *o = &x->ov[x->nov++];
    o->key = xstrndup(ch->key, ch->key_len);
    o->rev = ch->rev;
    o->val = ch->prev ? xmemdup(ch->prev, ch->prev_len) : NULL;
    o->len = ch->prev_len;
    return 0;
}

static int ovr_cmp(const void *a, const void *b)
{
    const struct ovr *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->rev < y->rev ? -1 : x->rev > y->rev);
}

/* Sorts by key then revision and keeps the first change of each key. */
static void ovr_settle(struct lctx *x)
{
    qsort(x->ov, x->nov, sizeof(*x->ov), ovr_cmp);
    size_t j = 0;
    for (size_t i = 0; i < x->nov; i++) {
        if (j && !strcmp(x->ov[j - 1].key, x->ov[i].key)) {
            free(x->ov[i].key);
            free(x->ov[i].val);
            continue;
        }
        x->ov[j++] = x->ov[i];
    }
    x->nov = j;
}

#define CONTINUE_TOO_OLD                                                                           \
    "The provided continue parameter is too old to display a consistent list result. You can "     \
    "start a new list without the continue parameter, or use the continue token in this "          \
    "response to retrieve the remainder of the results. Continuing with the provided token "       \
    "results in an inconsistent list - objects that were created, modified, or deleted between "   \
    "the time the first chunk was returned and now may show up in the list."

void read_list(struct api_route *rt, store_t *st, h2s_call_t *c, const uint8_t *msg, size_t len)
{
    const struct kind *k = rt->k;
    Coracle__V1__ListRequest *req =
        (void *)obj_decode(&coracle__v1__list_request__descriptor, msg, len);
    if (!req) {
        api_fail(rt, c, GRPC_INVALID_ARGUMENT, "failed to decode ListRequest: invalid protobuf");
        return;
    }
    struct lctx x = {.k = k};
    char *err = NULL, *prefix = NULL, *after = NULL;
    store_rtxn_t *t = NULL;
    if (sel_parse_labels(req->labelselector, &x.ls, &err) < 0 ||
        obj_check_field_selector(k, req->fieldselector, &err) < 0 ||
        sel_parse_fields(req->fieldselector, &x.fs, &err) < 0) {
        api_fail(rt, c, GRPC_INVALID_ARGUMENT, err);
        goto out;
    }
    if (sel_empty(x.ls)) {
        sel_free(x.ls);
        x.ls = NULL;
    }
    if (sel_empty(x.fs)) {
        sel_free(x.fs);
        x.fs = NULL;
    }
    if (req->has_limit && req->limit < 0) {
        api_failf(rt, c, GRPC_INVALID_ARGUMENT,
                  "limit: Invalid value: %" PRId64 ": must be greater than or equal to 0",
                  req->limit);
        goto out;
    }
    x.limit = req->has_limit ? req->limit : 0;
    const char *ns = k->namespaced && req->namespace_ && *req->namespace_ ? req->namespace_ : NULL;
    prefix = ns ? xasprintf("%s/%s/", k->resource, ns) : xasprintf("%s/", k->resource);
    x.prefix = prefix;
    x.plen = strlen(prefix);
    uint64_t list_rev = 0;
    if (req->continue_ && *req->continue_) {
        if (read_token_decode(req->continue_, &list_rev, &after) < 0 ||
            strncmp(after, prefix, x.plen)) {
            api_fail(rt, c, GRPC_INVALID_ARGUMENT,
                     "continue key is not valid: the token is malformed or for another list");
            goto out;
        }
        x.after = after;
    }
    int r = store_read_begin(st, &t);
    if (r < 0) {
        api_fail(rt, c, GRPC_UNAVAILABLE, store_strerror(r));
        goto out;
    }
    uint64_t snap = store_rtxn_rev(t);
    if (list_rev && list_rev < snap) {
        r = store_log_scan(t, list_rev, log_cb, &x);
        if (r == STORE_ECOMPACTED || list_rev < store_compacted(st)) {
            api_fail(rt, c, GRPC_OUT_OF_RANGE, CONTINUE_TOO_OLD);
            goto out;
        }
        if (r < 0) {
            api_fail(rt, c, GRPC_INTERNAL, store_strerror(r));
            goto out;
        }
        ovr_settle(&x);
    }
    if (!list_rev || list_rev > snap)
        list_rev = snap;
    r = store_scan(t, prefix, x.plen, after, after ? strlen(after) : 0, scan_cb, &x);
    if (r < 0) {
        api_fail(rt, c, GRPC_INTERNAL, store_strerror(r));
        goto out;
    }
    if (!x.more)
        flush_ovr(&x, NULL, 0);
    Coracle__V1__ListMeta lm = CORACLE__V1__LIST_META__INIT;
    char rvs[24];
    snprintf(rvs, sizeof(rvs), "%" PRIu64, list_rev);
    lm.resourceversion = rvs;
    char *tok = NULL;
    if (x.more) {
        tok = read_token_encode(list_rev, x.last_key, x.last_len);
        lm.continue_ = tok;
    }
    size_t ml;
    void *mb = obj_encode(&lm.base, &ml);
    wire_buf_field(&x.out, 1, mb, ml);
    free(mb);
    free(tok);
    api_reply(rt, c, x.out.p ? x.out.p : (uint8_t *)"", x.out.len);
out:
    if (t)
        store_read_end(t);
    for (size_t i = 0; i < x.nov; i++) {
        free(x.ov[i].key);
        free(x.ov[i].val);
    }
    free(x.ov);
    wire_buf_free(&x.out);
    free(x.last_key);
    sel_free(x.ls);
    sel_free(x.fs);
    free(err);
    free(prefix);
    free(after);
    obj_free(&req->base);
}
