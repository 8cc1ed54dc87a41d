/*
 * Unit tests for src/apiserver/enc.c and enc_cfg.c: the EncryptionConfiguration
 * reader (resources, wildcards, providers, keys, and its messages) and the
 * transformer (Kubernetes' stored forms, checked against values another
 * AES implementation sealed; rotation's stale flag; failures).
 */
#include "config.h"
#include "tap.h"

#include "enc_cfg.c"

#include <stdint.h>

#define HEAD "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"
/* base64 of bytes 0..31 and of 0..15 */
#define KEY32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY16 "AAECAwQFBgcICQoLDA0ODw=="

static enc_t *parse(const char *text)
{
    enc_t *e = NULL;
    char *err = NULL;
    if (enc_parse("enc.yaml", text, strlen(text), &e, &err)) {
        diag("unexpected error: %s", err);
        free(err);
    }
    return e;
}

static void bad(const char *text, const char *want)
{
    enc_t *e = NULL;
    char *err = NULL;
    int rc = enc_parse("enc.yaml", text, strlen(text), &e, &err);
    ok(rc == -1 && !e && err && !strcmp(err, want), "refused: %s", want);
    if (!err || strcmp(err, want))
        diag("got: %s", err ? err : "(no error)");
    free(err);
}

static size_t unhex(const char *h, unsigned char *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2)
        out[n++] = (unsigned char)((h[0] <= '9' ? h[0] - '0' : h[0] - 'a' + 10) << 4 |
                                   (h[1] <= '9' ? h[1] - '0' : h[1] - 'a' + 10));
    return n;
}

/* enc_open of prefix + hex body; returns the plain text (malloc'd) or NULL with *err. */
static char *open_hex(const enc_rule_t *r, const char *ad, const char *prefix, const char *hex,
                      int *stale, char **err)
{
    unsigned char v[512];
    size_t pl = strlen(prefix);
    memcpy(v, prefix, pl);
    size_t n = pl + unhex(hex, v + pl);
    void *out;
    size_t len;
    if (enc_open(r, ad, strlen(ad), v, n, &out, &len, stale, err))
        return NULL;
    char *s = xstrndup(out, len);
    free(out);
    return s;
}

static void test_config(void)
{
    enc_t *e = parse(HEAD "resources:\n"
                          "  - resources: [secrets]\n"
                          "    providers:\n"
                          "      - aescbc: {keys: [{name: c, secret: " KEY16 "}]}\n"
                          "  - resources: ['*.', leases.coordination.k8s.io]\n"
                          "    providers:\n"
                          "      - aesgcm:\n"
                          "          keys:\n"
                          "            - name: g\n"
                          "              secret: " KEY32 "\n"
                          "      - identity: {}\n");
    ok(e != NULL, "a config with two rules parses");
    if (!e)
        return;
    const enc_rule_t *s = enc_rule_for_key(e, "secrets/default/x", 17);
    const enc_rule_t *p = enc_rule_for_key(e, "pods/default/x", 14);
    const enc_rule_t *l = enc_rule_for_key(e, "leases/kube-node-lease/n", 24);
    ok(s && s->prov[0].type == ENC_AESCBC && s->n_prov == 1 && !s->has_identity,
       "secrets: the first rule naming them (aescbc)");
    ok(p && p->prov[0].type == ENC_AESGCM && p->has_identity && p != s,
       "pods: '*.' (the core group)");
    ok(l == p, "leases: by name.group");
    ok(!enc_rule_for_key(e, "secretsx/default/x", 18) && !enc_rule_for_key(NULL, "pods/a/b", 8),
       "a longer resource name, or no config: not encrypted");
    char *d = enc_describe(e);
    ok(strstr(d, "secrets: aescbc") && strstr(d, "pods: aesgcm, identity") && !strstr(d, KEY32),
       "described without keys: %s", d);
    free(d);
    enc_free(e);

    e = parse("{\"apiVersion\": \"apiserver.config.k8s.io/v1\", \"kind\": "
              "\"EncryptionConfiguration\", \"resources\": [{\"resources\": [\"*.*\"], "
              "\"providers\": [{\"identity\": null}]}]}");
    ok(e && e->n_res == KINDS_N && enc_rule_for_key(e, "leases/a/b", 10),
       "JSON; '*.*' names every kind");
    enc_free(e);
    e = parse(HEAD "resources:\n  - resources: ['*.coordination.k8s.io']\n"
                   "    providers: [identity: {}]\n");
    ok(e && e->n_res == 1 && !strcmp(e->res[0].resource, "leases"), "'*.group'");
    enc_free(e);
}

static void test_bad_configs(void)
{
    bad("", "enc.yaml: empty file");
    bad("[a", "enc.yaml:2: did not find expected ',' or ']' while parsing a flow sequence");
    bad("apiVersion: apiserver.config.k8s.io/v1\nkind: Foo\n",
        "enc.yaml:2: kind: \"Foo\": expected EncryptionConfiguration");
    bad(HEAD, "enc.yaml:1: resources: required");
    bad(HEAD "resources: []\n", "enc.yaml:3: resources: at least one is required");
    bad(HEAD "resources:\n  - resources: [secrets]\n",
        "enc.yaml:4: resources[0].providers: at least one is required");
    bad(HEAD "resources:\n  - resources: [Secrets]\n    providers: [identity: {}]\n",
        "enc.yaml:4: resources[0].resources[0]: resource name should not contain capital letters");
    bad(HEAD "resources:\n  - resources: ['*']\n    providers: [identity: {}]\n",
        "enc.yaml:4: resources[0].resources[0]: use '*.' to encrypt all the resources of the core "
        "API group or '*.*' to encrypt all resources");
    bad(HEAD "resources:\n  - resources: [secrets, secrets]\n    providers: [identity: {}]\n",
        "enc.yaml:4: resources[0].resources[1]: \"secrets\" is named twice");
    bad(HEAD "resources:\n  - resources: [leases]\n    providers: [identity: {}]\n",
        "enc.yaml:4: resources[0].resources[0]: no resource \"leases\" in this apiserver");
    bad(HEAD "resources:\n  - resources: [secrets]\n    providers: [{identity: {}, aesgcm: {}}]\n",
        "enc.yaml:5: resources[0].providers[0].aesgcm: one provider per item of providers");
    bad(HEAD "resources:\n  - resources: [secrets]\n    providers: [secretbox: {}]\n",
        "enc.yaml:5: resources[0].providers[0].secretbox: provider secretbox is not supported "
        "(aesgcm, aescbc and identity are)");
    bad(HEAD "resources:\n  - resources: [secrets]\n    providers: [aesgcm: {keys: []}]\n",
        "enc.yaml:5: resources[0].providers[0].aesgcm.keys: at least one is required");
    bad(HEAD "resources:\n  - resources: [secrets]\n    providers: [aesgcm: {}]\n",
        "enc.yaml:5: resources[0].providers[0].aesgcm: keys: at least one is required");
    bad(HEAD "resources:\n  - resources: [secrets]\n    providers:\n"
             "      - aesgcm: {keys: [{name: a, secret: 'AAECAwQFBgcICQoLDA0ODw'}]}\n",
        "enc.yaml:6: resources[0].providers[0].aesgcm.keys[0].secret: secrets must be base64 "
        "encoded");
    bad(HEAD "resources:\n  - resources: [secrets]\n    providers:\n"
             "      - aesgcm: {keys: [{name: a, secret: 'AAECAwQFBgcICQoLDA0ODx=='}]}\n",
        "enc.yaml:6: resources[0].providers[0].aesgcm.keys[0].secret: secrets must be base64 "
        "encoded");
    bad(HEAD "resources:\n  - resources: [secrets]\n    providers:\n"
             "      - aescbc: {keys: [{name: a, secret: " KEY16 "}, {name: a, secret: " KEY16
             "}]}\n",
        "enc.yaml:6: resources[0].providers[0].aescbc.keys[1]: a second key named \"a\"");
    bad(HEAD "resources:\n  - resources: [secrets]\n    providers:\n"
             "      - aescbc: {keys: [{name: a, secret: " KEY16 ", size: 1}]}\n",
        "enc.yaml:6: resources[0].providers[0].aescbc.keys[0].size: unknown field (a key has "
        "name and secret)");
    bad(HEAD "resources:\n  - &r {resources: [secrets], providers: [identity: {}]}\n  - *r\n",
        "enc.yaml:4: resources[1]: YAML aliases are not supported");
    bad(HEAD "resources:\n  - resources: [secrets]\n    providers: [identity: {}]\n---\nx: 1\n",
        "enc.yaml:7: a second document (the file holds one configuration)");
    bad(HEAD "kind: EncryptionConfiguration\n", "enc.yaml:3: duplicate field \"kind\"");
}

static void test_transform(void)
{
    enc_t *e = parse(HEAD "resources:\n"
                          "  - resources: [secrets]\n"
                          "    providers:\n"
                          "      - aesgcm: {keys: [{name: new, secret: " KEY16
                          "}, {name: k, secret: " KEY32 "}]}\n"
                          "      - aescbc: {keys: [{name: c, secret: " KEY16 "}]}\n"
                          "  - resources: [configmaps]\n"
                          "    providers:\n"
                          "      - identity: {}\n"
                          "      - aesgcm: {keys: [{name: k, secret: " KEY32 "}]}\n");
    if (!e) {
        ok(0, "config for the transformer");
        return;
    }
    const enc_rule_t *r = enc_rule_for_key(e, "secrets/default/s", 17);
    const enc_rule_t *id = enc_rule_for_key(e, "configmaps/default/c", 20);
    const char *ad = "secrets/default/s";
    char *err = NULL;
    int stale = -1;

    /* values sealed by Python's cryptography (AESGCM; AES-CBC with PKCS#7) */
    char *s = open_hex(r, ad, "k8s:enc:aesgcm:v1:k:",
                       "6465666768696a6b6c6d6e6f207eb20a16c576ed5b012d8dae0a1d5279ad3084af6af2d"
                       "03b4170e3e7",
                       &stale, &err);
    ok(s && !strcmp(s, "hello, secret") && stale == 1,
       "aesgcm: another implementation's value opens (key k, not the first: stale)");
    free(s);
    s = open_hex(
        r, "secrets/default/t", "k8s:enc:aesgcm:v1:k:",
        "6465666768696a6b6c6d6e6f207eb20a16c576ed5b012d8dae0a1d5279ad3084af6af2d03b4170e3e7", NULL,
        &err);
    ok(!s && err && strstr(err, "aesgcm key \"k\" does not open the value"),
       "aesgcm: under another key it does not (%s)", err);
    free(err);
    err = NULL;
    s = open_hex(r, ad, "k8s:enc:aescbc:v1:c:",
                 "c8c9cacbcccdcecfd0d1d2d3d4d5d6d764511908b2c60b7ed8dd574bb21f3e02", &stale, &err);
    ok(s && !strcmp(s, "hello, secret") && stale == 1,
       "aescbc: another implementation's value opens");
    free(s);

    /* round trips */
    const char plain[] = "the secret bytes\0with a NUL";
    void *sealed, *out;
    size_t sl, ol;
    ok(enc_seal(r, ad, strlen(ad), plain, sizeof(plain), &sealed, &sl, &err) == 0 && sealed,
       "seal with the first key");
    const char *pfx = "k8s:enc:aesgcm:v1:new:";
    ok(sl == strlen(pfx) + 12 + sizeof(plain) + 16 && !memcmp(sealed, pfx, strlen(pfx)),
       "Kubernetes' form: prefix, nonce, ciphertext, tag");
    ok(!memmem(sealed, sl, "secret bytes", 12), "the plain text is not in it");
    ok(enc_open(r, ad, strlen(ad), sealed, sl, &out, &ol, &stale, &err) == 0 &&
           ol == sizeof(plain) && !memcmp(out, plain, ol) && stale == 0,
       "opens again, not stale");
    free(out);
    void *again;
    size_t al;
    enc_seal(r, ad, strlen(ad), plain, sizeof(plain), &again, &al, &err);
    ok(al == sl && memcmp(again, sealed, sl), "a fresh nonce each time");
    free(again);
    ((unsigned char *)sealed)[sl - 1] ^= 1;
    ok(enc_open(r, ad, strlen(ad), sealed, sl, &out, &ol, NULL, &err) == -1,
       "a changed byte is refused");
    free(err);
    err = NULL;
    ok(enc_open(r, ad, strlen(ad), sealed, strlen(pfx) + 5, &out, &ol, NULL, &err) == -1 &&
           strstr(err, "too short"),
       "a short value is refused");
    free(err);
    err = NULL;
    free(sealed);

    ok(enc_open(r, ad, strlen(ad), "k8s:enc:aesgcm:v1:gone:xxxxxxxxxxxxxxxxxxxxxxxxxxxx", 51, &out,
                &ol, NULL, &err) == -1 &&
           !strcmp(err, "the value was encrypted with aesgcm key \"gone\", which the encryption "
                        "config does not have"),
       "an unknown key is named: %s", err);
    free(err);
    err = NULL;
    ok(enc_open(r, ad, strlen(ad), "\n\003abc", 5, &out, &ol, NULL, &err) == -1 &&
           strstr(err, "identity is not among"),
       "a plain value without identity is refused");
    free(err);
    err = NULL;

    /* identity first: plain in, plain out; an encrypted value still opens, stale */
    ok(enc_seal(id, "c", 1, "abc", 3, &sealed, &sl, &err) == 0 && !sealed, "identity writes plain");
    ok(enc_open(id, "c", 1, "abc", 3, &out, &ol, &stale, &err) == 0 && !out && stale == 0,
       "and reads plain, not stale");
    const char *cad = "configmaps/default/c";
    enc_seal(r, cad, strlen(cad), "abc", 3, &sealed, &sl, &err);
    ok(enc_open(id, cad, strlen(cad), sealed, sl, &out, &ol, &stale, &err) == -1,
       "a value of another key name (new) is refused");
    free(err);
    err = NULL;
    free(sealed);
    enc_free(e);
}

static void test_b64(void)
{
    unsigned char b[8];
    ok(b64_decode("YWJj", b, sizeof(b)) == 3 && !memcmp(b, "abc", 3), "base64: abc");
    ok(b64_decode("YQ==", b, sizeof(b)) == 1 && b64_decode("YWI=", b, sizeof(b)) == 2,
       "base64: padding");
    ok(b64_decode("YQ", b, sizeof(b)) == -1 && b64_decode("Y===", b, sizeof(b)) == -1 &&
           b64_decode("YR==", b, sizeof(b)) == -1 && b64_decode("YQ==YQ==", b, sizeof(b)) == -1 &&
           b64_decode("YW Jj", b, sizeof(b)) == -1,
       "base64: strict, as Go's StdEncoding");
    ok(b64_decode("YWJjZGVmZ2hp", b, sizeof(b)) == -1, "base64: bounded by the room given");
}

int main(void)
{
    test_config();
    test_bad_configs();
    test_transform();
    test_b64();
    done_testing();
}
