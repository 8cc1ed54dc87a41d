/*
 * Unit tests of the image store (src/lib/image*.c) and the JSON parser
 * (src/lib/json.c): reference normalisation, strict JSON with its limits,
 * imports of a docker-archive and an OCI layout that the test builds with
 * tar in a temp dir (two layers, whiteouts, an opaque directory), lookup,
 * list, remove, in-use refusal, corrupt archives (clear error, store
 * unchanged) and the drop-in folder.
 */
#include "config.h"
#include "tap.h"

#include "image.h"
#include "json.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[256];

#define S(x) ((x) ? (x) : "(null)")

static void test_refs(void)
{
    static const struct {
        const char *in, *out;
    } good[] = {
        {"nginx", "docker.io/library/nginx:latest"},
        {"nginx:latest", "docker.io/library/nginx:latest"},
        {"docker.io/library/nginx:latest", "docker.io/library/nginx:latest"},
        {"nginx:1.14.2", "docker.io/library/nginx:1.14.2"},
        {"docker.io/library/nginx:1.14.2", "docker.io/library/nginx:1.14.2"},
        {"index.docker.io/library/nginx", "docker.io/library/nginx:latest"},
        {"docker.io/nginx", "docker.io/library/nginx:latest"},
        {"progrium/busybox", "docker.io/progrium/busybox:latest"},
        {"docker.io/progrium/busybox:latest", "docker.io/progrium/busybox:latest"},
        {"localhost/foo", "localhost/foo:latest"},
        {"localhost:5000/a/b:v1.0-rc_1", "localhost:5000/a/b:v1.0-rc_1"},
        {"quay.io/coreos/etcd:v3.4", "quay.io/coreos/etcd:v3.4"},
        {"a.b-c.d:443/x/y/z", "a.b-c.d:443/x/y/z:latest"},
        {"foo_bar__baz-qux--x.y", "docker.io/library/foo_bar__baz-qux--x.y:latest"},
        {"localhost:5000", "docker.io/library/localhost:5000"},
        {"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "docker.io/library/nginx@sha256:"
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"nginx:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "docker.io/library/nginx:1@sha256:"
         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
    };
    static const char *bad[] = {
        "",
        "Nginx",
        "nginx:",
        ":tag",
        "a//b",
        "/nginx",
        "nginx/",
        "-nginx",
        "nginx.",
        "ng inx",
        "nginx:-x",
        "nginx:a/b",
        "nginx@sha256:abc",
        "nginx@md5:0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "docker.io/Library/nginx",
        "foo___bar",
        "exa_mple.com/x",
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        char *out = NULL, *err = NULL;
        int rc = img_ref_normalize(good[i].in, &out, &err);
        ok(rc == 0 && out && !strcmp(out, good[i].out), "normalise %s -> %s", good[i].in,
           good[i].out);
        if (rc != 0 || strcmp(out, good[i].out))
            diag("got rc %d out '%s' err '%s'", rc, out ? out : "", err ? err : "");
        free(out);
        free(err);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *out = NULL, *err = NULL;
        int rc = img_ref_normalize(bad[i], &out, &err);
        ok(rc == -EINVAL && !out && err && strstr(err, "invalid reference format"),
           "refuse \"%s\": %s", bad[i], err ? err : "(accepted!)");
        free(out);
        free(err);
    }
    char *f = img_ref_familiar("docker.io/library/nginx:1.14.2");
    is_str(f, "nginx:1.14.2", "familiar docker.io/library/nginx:1.14.2");
    free(f);
    f = img_ref_familiar("docker.io/progrium/busybox:latest");
    is_str(f, "progrium/busybox:latest", "familiar docker.io/progrium/busybox:latest");
    free(f);
    f = img_ref_familiar("quay.io/x/y:1");
    is_str(f, "quay.io/x/y:1", "familiar keeps other registries");
    free(f);
    char *repo, *tag;
    img_ref_split("localhost:5000/a/b:v1", &repo, &tag);
    ok(!strcmp(repo, "localhost:5000/a/b") && !strcmp(tag, "v1"), "split %s %s", repo, tag);
    free(repo);
    free(tag);
    char b[16];
    is_str(img_human_size(12897485, b), "12.3 MiB", "human size");
    is_str(img_human_size(512, b), "512 B", "human size bytes");
}

static int parse_ok(const char *s, json_t **v)
{
    char *err = NULL;
    int rc = json_parse(s, strlen(s), NULL, v, &err);
    if (rc < 0)
        diag("unexpected error: %s", err);
    free(err);
    return rc == 0;
}

static void test_json(void)
{
    json_t *v;
    const char *doc =
        " {\"a\": [1, -2.5e3, 0, true, false, null], \"s\": \"x\\\"\\\\\\/\\b\\f\\n\\r\\t"
        "\\u00e9\\ud83d\\ude00\", \"o\": {}, \"e\": [], \"d\": 1, \"d\": 2,"
        " \"u\": \"h\xc3\xa9\"}\n";
    ok(parse_ok(doc, &v), "parse a document with every kind of value");
    if (v) {
        const json_t *a = json_get(v, "a");
        int64_t i;
        ok(json_is(a, JSON_ARRAY) && a->n == 6, "array of 6");
        ok(json_int64(json_at(a, 0), &i) == 0 && i == 1, "integer 1");
        ok(json_at(a, 1)->num == -2500.0, "-2.5e3 = -2500");
        ok(json_int64(json_at(a, 1), &i) == 0 && i == -2500, "-2.5e3 as int64");
        ok(json_is(json_at(a, 3), JSON_TRUE) && json_is(json_at(a, 5), JSON_NULL), "true, null");
        ok(json_at(a, 6) == NULL, "json_at past the end is NULL");
        is_str(json_str(json_get(v, "s")), "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80",
               "escapes and a surrogate pair decode to UTF-8");
        is_str(json_str(json_get(v, "u")), "h\xc3\xa9", "raw UTF-8 kept");
        ok(json_int64(json_get(v, "d"), &i) == 0 && i == 2, "duplicate key: last wins");
        ok(json_get(v, "missing") == NULL && json_str(json_get(json_get(v, "o"), "x")) == NULL,
           "missing keys chain to NULL");
        json_free(v);
    }
    static const struct {
        const char *doc, *why;
    } bad[] = {
        {"", "expected a value"},
        {"[1,]", "trailing comma"},
        {"{\"a\":1,}", "trailing comma"},
        {"01", "leading zero"},
        {"1.", "digit after '.'"},
        {"-", "expected a digit"},
        {"1e", "exponent"},
        {"[1 2]", "expected ',' or ']'"},
        {"{\"a\" 1}", "expected ':'"},
        {"{a:1}", "member name"},
        {"\"abc", "unterminated"},
        {"\"a\tb\"", "control character"},
        {"\"\\x\"", "bad escape"},
        {"\"\\u12\"", "truncated \\u escape"},
        {"\"\\u12zz\"", "hex digit"},
        {"\"\\ud800\"", "surrogate"},
        {"\"\\udc00\"", "lone low surrogate"},
        {"\"\\u0000\"", "\\u0000"},
        {"\"\xff\"", "UTF-8"},
        {"\"\xc0\xaf\"", "UTF-8"},
        {"\"\xed\xa0\x80\"", "UTF-8"},
        {"// c\n1", "expected a value"},
        {"{} {}", "after the value"},
        {"NaN", "expected a value"},
        {"tru", "expected a value"},
        {"[1,\n  x]", "line 2 column 3"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *err = NULL;
        v = NULL;
        int rc = json_parse(bad[i].doc, strlen(bad[i].doc), NULL, &v, &err);
        char shown[32];
        snprintf(shown, sizeof(shown), "%s", bad[i].doc);
        for (char *c = shown; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = ' ';
        ok(rc == -1 && !v && err && strstr(err, bad[i].why), "refuse '%s': %s", shown,
           err ? err : "(accepted!)");
        if (!(err && strstr(err, bad[i].why)))
            diag("expected an error mentioning: %s", bad[i].why);
        free(err);
        json_free(v);
    }
    /* Limits. */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    struct json_limits lim = {.max_depth = 64};
    char *err = NULL;
    int rc = json_parse(deep, 200, &lim, &v, &err);
    ok(rc == -1 && strstr(S(err), "nested deeper than 64"), "depth 100 refused at limit 64: %s",
       S(err));
    free(err);
    lim.max_depth = 100;
    ok(json_parse(deep, 200, &lim, &v, NULL) == 0, "depth 100 accepted at limit 100");
    json_free(v);
    lim = (struct json_limits){.max_bytes = 10};
    rc = json_parse("[1,2,3,4,5,6]", 13, &lim, &v, &err);
    ok(rc == -1 && strstr(S(err), "limit of 10"), "size limit: %s", S(err));
    free(err);
    lim = (struct json_limits){.max_nodes = 5};
    rc = json_parse("[1,2,3,4,5,6]", 13, &lim, &v, &err);
    ok(rc == -1 && strstr(S(err), "more than 5"), "node limit: %s", S(err));
    free(err);
    char *q = json_quote("a\"b\\c\n\x01");
    is_str(q, "\"a\\\"b\\\\c\\n\\u0001\"", "json_quote escapes");
    ok(json_parse(q, strlen(q), NULL, &v, NULL) == 0 && !strcmp(json_str(v), "a\"b\\c\n\x01"),
       "json_quote round-trips");
    json_free(v);
    free(q);
}

/* Builds the test archives with tar, in the shell. */
static const char build_sh[] =
    "set -e\n"
    "cd \"$1\"\n"
    "mkdir -p l1/etc l1/d l1/bin l1/keep l2/etc l2/d l2/keep\n"
    "echo a > l1/etc/a; echo b > l1/etc/b; echo x > l1/d/x; echo y > l1/d/y\n"
    "printf '#!/bin/sh\\necho hi\\n' > l1/bin/tool; chmod 755 l1/bin/tool\n"
    "echo k > l1/keep/k; ln -s /etc/b l1/link; ln l1/etc/b l1/etc/b2\n"
    ": > l2/etc/.wh.a; : > l2/d/.wh..wh..opq; echo z > l2/d/z; echo c > l2/c\n"
    ": > l2/.wh.link; echo new > l2/keep/k2\n"
    /* type changes and a whited-out directory */
    "mkdir -p l1/swap l1/gone/sub l2/f2d; echo s > l1/swap/s; echo g > l1/gone/sub/g; echo f > "
    "l1/f2d\n"
    "ln -s /etc l2/swap; echo in > l2/f2d/in; : > l2/.wh.gone; chmod 1777 l2/f2d\n"
    "tar --numeric-owner -C l1 -cf layer1.tar etc d bin keep link swap gone f2d\n"
    "tar --numeric-owner -C l2 -cf layer2.tar .\n"
    "d1=$(sha256sum layer1.tar | cut -d' ' -f1); d2=$(sha256sum layer2.tar | cut -d' ' -f1)\n"
    "cfg() { printf "
    "'{\"architecture\":\"%s\",\"os\":\"linux\",\"created\":\"2024-01-02T03:04:05.5Z\","
    "\"config\":{\"Entrypoint\":[\"/bin/tool\"],\"Cmd\":[\"-v\",\"x y\"],"
    "\"Env\":[\"PATH=/bin\",\"A=1\"],\"WorkingDir\":\"/d\",\"User\":\"33:33\","
    "\"Labels\":{\"org.opencontainers.image.description\":\"%s\"},\"ExposedPorts\":{\"80/"
    "tcp\":{}}},"
    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\",\"sha256:%s\"]}}' \"$2\" \"$1\" "
    "$d1 $d2; }\n"
    "arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)\n"
    /* docker-archive */
    "mkdir -p da/l1 da/l2\n"
    "cfg docker $arch > da/config.json; c=$(sha256sum da/config.json | cut -d' ' -f1)\n"
    "mv da/config.json da/$c.json; cp layer1.tar da/l1/layer.tar; cp layer2.tar da/l2/layer.tar\n"
    "printf '[{\"Config\":\"%s.json\",\"RepoTags\":[\"test:1\",\"docker.io/library/test:one\"],"
    "\"Layers\":[\"l1/layer.tar\",\"l2/layer.tar\"]}]' $c > da/manifest.json\n"
    "echo $c > docker.id\n"
    "tar -C da -cf docker.tar .\n"
    "tar -C da -czf docker.tar.gz .\n"
    /* corrupt: layer 2 truncated (and so its diff_id differs) */
    "mkdir -p bad/l1 bad/l2; cp layer1.tar bad/l1/layer.tar; head -c 3000 layer2.tar > "
    "bad/l2/layer.tar\n"
    "cfg bad $arch > bad/config.json; b=$(sha256sum bad/config.json | cut -d' ' -f1)\n"
    "mv bad/config.json bad/$b.json; sed \"s/$c/$b/\" da/manifest.json > bad/manifest.json\n"
    "tar -C bad -cf corrupt.tar .\n"
    /* a valid tar that is not the layer the config names */
    "cp layer1.tar bad/l2/layer.tar; tar -C bad -cf diffid.tar .\n"
    /* a manifest pointing outside the archive */
    "sed 's|l1/layer.tar|../../../../../../etc/passwd|' bad/manifest.json > m; mv m "
    "bad/manifest.json\n"
    "tar -C bad -cf escape.tar .\n"
    /* corrupt: a config whose name is not its digest */
    "cp -a da bad2; sed -i 's/docker/dockex/' bad2/$c.json; tar -C bad2 -cf badcfg.tar .\n"
    /* OCI layout, gzip layers */
    "mkdir -p oci/blobs/sha256; echo '{\"imageLayoutVersion\":\"1.0.0\"}' > oci/oci-layout\n"
    "gzip -9n < layer1.tar > g1; gzip -9n < layer2.tar > g2\n"
    "g1=$(sha256sum g1 | cut -d' ' -f1); g2=$(sha256sum g2 | cut -d' ' -f1)\n"
    "mv g1 oci/blobs/sha256/$g1; mv g2 oci/blobs/sha256/$g2\n"
    "cfg oci $arch > oc; oc=$(sha256sum oc | cut -d' ' -f1); mv oc oci/blobs/sha256/$oc\n"
    "echo $oc > oci.id\n"
    "s1=$(stat -c %s oci/blobs/sha256/$g1); s2=$(stat -c %s oci/blobs/sha256/$g2)\n"
    "printf '{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/"
    "vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\",\"size\":1},"
    "\"layers\":[{\"mediaType\":\"application/"
    "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:%s\",\"size\":%s},"
    "{\"mediaType\":\"application/"
    "vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:%s\",\"size\":%s}]}' "
    "$oc $g1 $s1 $g2 $s2 > m; m=$(sha256sum m | cut -d' ' -f1); mv m oci/blobs/sha256/$m\n"
    "printf "
    "'{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/"
    "vnd.oci.image.manifest.v1+json\","
    "\"digest\":\"sha256:%s\",\"size\":1,\"annotations\":{\"org.opencontainers.image.ref.name\":"
    "\"oci-test:2\"},"
    "\"platform\":{\"architecture\":\"%s\",\"os\":\"linux\"}}]}' $m $arch > oci/index.json\n"
    "tar -C oci -cf oci.tar .\n"
    "echo 'not a tar' > junk.tar\n";

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[256] = "";
    if (!f)
        return xstrdup("");
    if (!fgets(buf, sizeof(buf), f))
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return xstrdup(buf);
}

static int exists(const char *dir, const char *rel)
{
    struct stat st;
    char *p = xasprintf("%s/%s", dir, rel);
    int r = lstat(p, &st) == 0;
    free(p);
    return r;
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *de;
    if (!d)
        return -1;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

struct prog_count {
    int read, layer, commit, exists;
};

static void count_progress(const struct img_progress *p, void *arg)
{
    struct prog_count *c = arg;
    if (p->phase == IMG_PH_READ)
        c->read++;
    else if (p->phase == IMG_PH_LAYER)
        c->layer++;
    else if (p->phase == IMG_PH_COMMIT)
        c->commit++;
    else
        c->exists++;
}

static void check_rootfs(const char *rootfs, const char *what)
{
    ok(exists(rootfs, "etc/b") && !exists(rootfs, "etc/a"), "%s: whiteout .wh.a removed etc/a",
       what);
    ok(!exists(rootfs, "etc/.wh.a") && !exists(rootfs, ".wh.link") &&
           !exists(rootfs, "d/.wh..wh..opq"),
       "%s: no whiteout files in the rootfs", what);
    ok(exists(rootfs, "d/z") && !exists(rootfs, "d/x") && !exists(rootfs, "d/y"),
       "%s: opaque d/ holds only the upper layer's z", what);
    ok(exists(rootfs, "keep/k") && exists(rootfs, "keep/k2"), "%s: plain dirs merge", what);
    ok(exists(rootfs, "c") && !exists(rootfs, "link"), "%s: new file added, symlink whited out",
       what);
    ok(!exists(rootfs, "gone"), "%s: a whited-out directory goes with its tree", what);
    struct stat ls;
    char *sw = xasprintf("%s/swap", rootfs), *fd = xasprintf("%s/f2d", rootfs);
    ok(lstat(sw, &ls) == 0 && S_ISLNK(ls.st_mode), "%s: a directory replaced by a symlink", what);
    ok(lstat(fd, &ls) == 0 && S_ISDIR(ls.st_mode) && (ls.st_mode & 07777) == 01777 &&
           exists(rootfs, "f2d/in"),
       "%s: a file replaced by a directory, its mode 1777 kept", what);
    free(sw);
    free(fd);
    struct stat st, st2;
    char *p = xasprintf("%s/bin/tool", rootfs), *q = xasprintf("%s/etc/b2", rootfs),
         *r = xasprintf("%s/etc/b", rootfs);
    ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0755, "%s: modes kept", what);
    ok(stat(q, &st) == 0 && stat(r, &st2) == 0 && st.st_ino == st2.st_ino && st.st_nlink == 2,
       "%s: hard link kept", what);
    free(p);
    free(q);
    free(r);
}

static void test_store(void)
{
    char *sh = xasprintf("%s/build.sh", tmp), *cmd, *err = NULL;
    FILE *f = fopen(sh, "w");
    fputs(build_sh, f);
    fclose(f);
    char *srcdir = xasprintf("%s/src", tmp);
    mkdir(srcdir, 0755);
    cmd = xasprintf("sh %s %s", sh, srcdir);
    if (system(cmd) != 0) {
        ok(0, "build the test archives (%s)", cmd);
        return;
    }
    free(cmd);
    char *p = xasprintf("%s/docker.id", srcdir);
    char *docker_id = slurp(p);
    free(p);
    p = xasprintf("%s/oci.id", srcdir);
    char *oci_id = slurp(p);
    free(p);

    char *dir = xasprintf("%s/store", tmp);
    img_store_t *s;
    int rc = img_store_open(dir, 0, &s, &err);
    ok(rc == -ENOENT && err, "a missing store is ENOENT: %s", S(err));
    free(err);
    err = NULL;
    ok(img_store_open(dir, IMG_STORE_CREATE, &s, &err) == 0, "create the store");

    /* docker-archive, as a gzip'd tarball */
    struct prog_count pc = {0};
    struct img_import_opts io = {.progress = count_progress, .arg = &pc};
    img_t **imgs = NULL;
    size_t n = 0;
    p = xasprintf("%s/docker.tar.gz", srcdir);
    rc = img_import(s, p, &io, &imgs, &n, &err);
    ok(rc == 0 && n == 1, "import a docker-archive .tar.gz (%s)", err ? err : "ok");
    free(p);
    free(err);
    err = NULL;
    ok(pc.read >= 2 && pc.layer >= 4 && pc.commit == 1 && pc.exists == 0,
       "progress: read %d, layer %d, commit %d", pc.read, pc.layer, pc.commit);
    if (n == 1) {
        img_t *im = imgs[0];
        char *want = xasprintf("sha256:%s", docker_id);
        is_str(im->id, want, "id is the config's sha256");
        free(want);
        ok(im->n_names == 2 && !strcmp(im->names[0], "docker.io/library/test:1") &&
               !strcmp(im->names[1], "docker.io/library/test:one"),
           "both RepoTags named, normalised");
        ok(im->layers == 2 && im->size > 0, "2 layers, size %llu", (unsigned long long)im->size);
        check_rootfs(im->rootfs, "docker");
    }
    img_list_free(imgs, n);

    /* lookup by every form */
    img_t *im = NULL;
    const char *forms[] = {"test:1", "docker.io/library/test:1", "test:one",
                           "index.docker.io/library/test:one"};
    for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
        ok(img_lookup(s, forms[i], &im, NULL) == 0 && !strcmp(im->id + 7, docker_id), "lookup %s",
           forms[i]);
        img_free(im);
        im = NULL;
    }
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "%.10s", docker_id);
    ok(img_lookup(s, prefix, &im, NULL) == 0, "lookup by id prefix %s", prefix);
    img_free(im);
    p = xasprintf("sha256:%s", docker_id);
    ok(img_lookup(s, p, &im, NULL) == 0 && im->n_names == 2, "lookup by sha256:id");
    free(p);
    if (im) {
        struct img_config *c = &im->cfg;
        ok(c->n_entrypoint == 1 && !strcmp(c->entrypoint[0], "/bin/tool"), "Entrypoint");
        ok(c->n_cmd == 2 && !strcmp(c->cmd[1], "x y"), "Cmd");
        ok(c->n_env == 2 && !strcmp(c->env[1], "A=1"), "Env");
        is_str(c->workdir, "/d", "WorkingDir");
        is_str(c->user, "33:33", "User");
        ok(c->n_labels == 1 && !strcmp(c->label_values[0], "docker"), "Labels");
        ok(c->n_exposed_ports == 1 && !strcmp(c->exposed_ports[0], "80/tcp"), "ExposedPorts");
        ok(im->created == 1704164645, "created parsed (%lld)", (long long)im->created);
        ok(c->stop_signal == NULL, "absent StopSignal is NULL");
    }
    img_free(im);
    im = NULL;
    rc = img_lookup(s, "test:2", &im, &err);
    ok(rc == -ENOENT && !im && strstr(S(err), "not found"), "unknown tag: ENOENT, %s", S(err));
    free(err);
    err = NULL;
    rc = img_lookup(s, "Test", &im, &err);
    ok(rc == -EINVAL && err, "bad reference: EINVAL, %s", S(err));
    free(err);
    err = NULL;

    /* OCI layout, as a directory */
    p = xasprintf("%s/oci", srcdir);
    rc = img_import(s, p, NULL, &imgs, &n, &err);
    ok(rc == 0 && n == 1, "import an OCI layout directory (%s)", err ? err : "ok");
    free(p);
    free(err);
    err = NULL;
    if (rc == 0 && n == 1) {
        ok(!strcmp(imgs[0]->id + 7, oci_id), "OCI id is its config digest");
        ok(imgs[0]->n_names == 1 && !strcmp(imgs[0]->names[0], "docker.io/library/oci-test:2"),
           "OCI ref.name annotation names it");
        check_rootfs(imgs[0]->rootfs, "oci");
    }
    img_list_free(imgs, n);

    /* list */
    ok(img_list(s, &imgs, &n) == 0 && n == 2, "list: 2 images");
    if (n == 2)
        ok(!strcmp(imgs[0]->names[0], "docker.io/library/oci-test:2") &&
               !strcmp(imgs[1]->names[0], "docker.io/library/test:1"),
           "list sorted by name");
    img_list_free(imgs, n);

    /* corrupt archives: clear errors, store unchanged */
    char *images_dir = xasprintf("%s/images", dir), *names_dir = xasprintf("%s/names", dir),
         *tmp_dir = xasprintf("%s/tmp", dir);
    int ni = count_entries(images_dir), nn = count_entries(names_dir);
    static const struct {
        const char *file, *why;
    } corrupt[] = {
        {"corrupt.tar", "layer 2 (l2/layer.tar)"},
        {"diffid.tar", "does not match the config's diff_id"},
        {"escape.tar", "points outside it"},
        {"badcfg.tar", "is corrupt"},
        {"junk.tar", "cannot unpack"},
        {"missing.tar", "No such file"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(corrupt); i++) {
        p = xasprintf("%s/%s", srcdir, corrupt[i].file);
        rc = img_import(s, p, NULL, &imgs, &n, &err);
        ok(rc < 0 && err && strstr(err, corrupt[i].why), "%s refused: %s", corrupt[i].file,
           err ? err : "(accepted!)");
        ok(count_entries(images_dir) == ni && count_entries(names_dir) == nn &&
               count_entries(tmp_dir) == 0,
           "%s: store unchanged, nothing left in tmp/", corrupt[i].file);
        free(p);
        free(err);
        err = NULL;
    }

    /* re-import with an extra name: no unpacking, a new name */
    memset(&pc, 0, sizeof(pc));
    struct img_import_opts tag = {.tag = "extra:1", .progress = count_progress, .arg = &pc};
    p = xasprintf("%s/docker.tar", srcdir);
    ok(img_import(s, p, &tag, NULL, NULL, &err) == 0 && pc.exists == 1 && pc.layer == 0,
       "re-import: already present, only names added");
    free(p);
    ok(img_lookup(s, "extra:1", &im, NULL) == 0 && im->n_names == 3, "--tag name added");
    img_free(im);
    im = NULL;

    /* remove */
    char removed[72];
    ok(img_remove(s, "extra:1", 0, removed, NULL) == 0 && removed[0] == '\0',
       "rm of one of several names only untags");
    ok(img_lookup(s, "test:1", &im, NULL) == 0 && im->n_names == 2, "image still there");
    if (im && geteuid() == 0) {
        /* In use: an overlay with the rootfs as lowerdir, as the kubelet mounts it. */
        char *up = xasprintf("%s/up", tmp), *wk = xasprintf("%s/wk", tmp),
             *mnt = xasprintf("%s/mnt", tmp);
        mkdir(up, 0755);
        mkdir(wk, 0755);
        mkdir(mnt, 0755);
        char *o = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", im->rootfs, up, wk);
        if (mount("overlay", mnt, "overlay", 0, o) == 0) {
            err = NULL;
            ok(img_remove(s, "test:1", 0, NULL, NULL) == 0, "untag test:1 while mounted");
            rc = img_remove(s, "test:one", 0, NULL, &err);
            ok(rc == -EBUSY && strstr(S(err), "in use"),
               "rm of the last name of a mounted image: EBUSY, %s", S(err));
            free(err);
            err = NULL;
            img_t *still = NULL;
            ok(img_lookup(s, "test:one", &still, NULL) == 0, "refused rm left the name");
            img_free(still);
            umount2(mnt, MNT_DETACH);
        } else {
            ok(1, "# SKIP overlay mount failed: %s", strerror(errno));
        }
        free(up);
        free(wk);
        free(mnt);
        free(o);
    }
    img_free(im);
    im = NULL;
    rc = img_remove(s, "test:one", 0, removed, &err);
    ok(rc == 0 && !strcmp(removed + 7, docker_id), "rm of the last name deletes the image (%s)",
       err ? err : removed);
    free(err);
    err = NULL;
    ok(img_lookup(s, "test:1", &im, NULL) == -ENOENT, "gone: test:1");
    ok(img_lookup(s, docker_id, &im, NULL) == -ENOENT, "gone: its id");
    ok(count_entries(images_dir) == 1 && count_entries(tmp_dir) == 0, "its directory is gone");
    snprintf(prefix, sizeof(prefix), "%.6s", oci_id);
    ok(img_remove(s, prefix, 0, removed, NULL) == 0 && !strcmp(removed + 7, oci_id),
       "rm by id prefix");
    ok(count_entries(images_dir) == 0 && count_entries(names_dir) == 0, "store empty");
    rc = img_remove(s, "nothing:here", 0, NULL, &err);
    ok(rc == -ENOENT && err, "rm unknown: %s", S(err));
    free(err);
    err = NULL;

    /* drop-in folder */
    cmd = xasprintf("cp %s/docker.tar %s/oci.tar %s/import/", srcdir, srcdir, dir);
    ok(system(cmd) == 0, "copy archives into import/");
    free(cmd);
    ok(img_import_dropin(s) == 2, "drop-in imports both");
    ok(img_import_dropin(s) == 0, "drop-in remembers what it imported");
    ok(img_lookup(s, "test:1", &im, NULL) == 0, "drop-in image found");
    img_free(im);
    ok(img_lookup(s, "oci-test:2", &im, NULL) == 0, "drop-in OCI image found");
    img_free(im);

    img_store_close(s);
    free(images_dir);
    free(names_dir);
    free(tmp_dir);
    free(dir);
    free(docker_id);
    free(oci_id);
    free(srcdir);
    free(sh);
}

int main(void)
{
    log_init("test_image");
    log_set_level(LOG_LVL_WARN);
    snprintf(tmp, sizeof(tmp), "%s/test_image.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) {
        printf("Bail out! mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    test_refs();
    test_json();
    test_store();
    char *cmd = xasprintf("rm -rf %s", tmp);
    if (system(cmd) != 0)
        diag("could not remove %s", tmp);
    free(cmd);
    return done_testing();
}
