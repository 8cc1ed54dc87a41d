/*
 * fuzz_sel: label and field selector parsing (src/lib/sel.h), then matching
 * the parsed selector against a label set taken from the same input.
 * Input: selector text, optionally "\n" then "key=value" lines for labels.
 */
#include "config.h"
#include "fuzz.h"
#include "sel.h"

#include <stdlib.h>
#include <string.h>

struct kv {
    char *text;
};

static const char *get(void *arg, const char *key)
{
    struct kv *kv = arg;
    size_t kl = strlen(key);
    for (char *l = kv->text; l && *l;) {
        char *nl = strchr(l, '\n');
        size_t ll = nl ? (size_t)(nl - l) : strlen(l);
        if (ll > kl && strncmp(l, key, kl) == 0 && l[kl] == '=') {
            static char v[256];
            size_t vl = ll - kl - 1 < sizeof(v) - 1 ? ll - kl - 1 : sizeof(v) - 1;
            memcpy(v, l + kl + 1, vl);
            v[vl] = '\0';
            return v;
        }
        l = nl ? nl + 1 : NULL;
    }
    return NULL;
}

int fuzz_sel_one(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    char *nl = strchr(s, '\n');
    struct kv kv = {NULL};
    if (nl) {
        *nl = '\0';
        kv.text = nl + 1;
    }
    sel_t *sel = NULL;
    char *err = NULL;
    if (sel_parse_labels(s, &sel, &err) == 0) {
        sel_empty(sel);
        sel_match(sel, get, &kv);
        sel_required_value(sel, "app");
        sel_free(sel);
    } else {
        free(err);
    }
    err = NULL;
    sel = NULL;
    if (sel_parse_fields(s, &sel, &err) == 0) {
        sel_match(sel, get, &kv);
        sel_required_value(sel, "spec.nodeName");
        sel_free(sel);
    } else {
        free(err);
    }
    free(s);
    return 0;
}

FUZZ_ENTRY(fuzz_sel_one)
