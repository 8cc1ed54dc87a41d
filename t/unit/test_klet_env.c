/* Unit tests for the pure parts of a container's configuration: $(VAR)
 * expansion (src/kubelet/envvars.c), fieldRef and resourceFieldRef
 * (src/lib/podfield.c) and the
 * atomic writer's layout and swap (src/kubelet/atomic_writer.c). */
#include "config.h"
#include "tap.h"

#include "klet.h"
#include "podfield.h"
#include "util.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void expand(const char *in, const char *want)
{
    char *const env[] = {"A=apple", "B=$(A)", "EMPTY=", NULL};
    char *got = klet_env_expand(in, env, 3);
    is_str(got, want, in);
    free(got);
}

static void test_expand(void)
{
    /* the cases of Kubernetes' expansion_test.go */
    expand("$(A)", "apple");
    expand("x$(A)y$(A)", "xappleyapple");
    expand("$(B)", "$(A)"); /* values are not expanded again */
    expand("$(EMPTY)", "");
    expand("$(UNDEF)", "$(UNDEF)");
    expand("$$(A)", "$(A)");
    expand("$$$(A)", "$apple");
    expand("$$$$(A)", "$$(A)");
    expand("$(A", "$(A");
    expand("$A", "$A");
    expand("a$", "a$");
    expand("$", "$");
    expand("$()", "$()");
    expand("$($(A))", "$($(A))");
    expand("", "");
}

static Coracle__V1__ObjectMeta__LabelsEntry *entry(const char *k, const char *v)
{
    Coracle__V1__ObjectMeta__LabelsEntry *e = xmalloc(sizeof *e);
    coracle__v1__object_meta__labels_entry__init(e);
    e->key = (char *)k;
    e->value = (char *)v;
    return e;
}

static void field(const Coracle__V1__Pod *pod, const char *path, const char *want)
{
    char *out = NULL, *err = NULL;
    int rc = podfield_get(pod, path, "10.1.2.3", "192.0.2.1", &out, &err);
    if (want)
        ok(rc == 0 && out && !strcmp(out, want), "fieldRef %s (%s)", path, err ? err : "");
    else
        ok(rc < 0 && err, "fieldRef %s refused: %s", path, err ? err : "-");
    free(out);
    free(err);
}

static void test_field(void)
{
    Coracle__V1__ObjectMeta m = CORACLE__V1__OBJECT_META__INIT;
    m.name = "web-1";
    m.namespace_ = "prod";
    m.uid = "u-1";
    Coracle__V1__ObjectMeta__LabelsEntry *labels[] = {entry("tier", "front"), entry("app", "web")};
    m.labels = labels;
    m.n_labels = 2;
    Coracle__V1__ObjectMeta__AnnotationsEntry *ann[] = {
        (Coracle__V1__ObjectMeta__AnnotationsEntry *)entry("note", "say \"hi\"\n")};
    m.annotations = ann;
    m.n_annotations = 1;
    Coracle__V1__PodSpec sp = CORACLE__V1__POD_SPEC__INIT;
    sp.nodename = "n1";
    sp.serviceaccountname = "builder";
    Coracle__V1__Pod pod = CORACLE__V1__POD__INIT;
    pod.metadata = &m;
    pod.spec = &sp;
    field(&pod, "metadata.name", "web-1");
    field(&pod, "metadata.namespace", "prod");
    field(&pod, "metadata.uid", "u-1");
    field(&pod, "metadata.labels['app']", "web");
    field(&pod, "metadata.labels['none']", "");
    field(&pod, "metadata.annotations['note']", "say \"hi\"\n");
    field(&pod, "metadata.labels", "app=\"web\"\ntier=\"front\"");
    field(&pod, "metadata.annotations", "note=\"say \\\"hi\\\"\\n\"");
    field(&pod, "spec.nodeName", "n1");
    field(&pod, "spec.serviceAccountName", "builder");
    field(&pod, "status.podIP", "10.1.2.3");
    field(&pod, "status.hostIP", "192.0.2.1");
    field(&pod, "metadata.generateName", NULL);
    field(&pod, "metadata.name['x']", NULL);
    free(labels[0]);
    free(labels[1]);
    free(ann[0]);
}

static void resource(const Coracle__V1__Container *c, const char *res, const char *div,
                     const char *want)
{
    char *out = NULL, *err = NULL;
    int rc = podfield_resource(c, res, div, 4000, 8LL << 30, &out, &err);
    if (want)
        ok(rc == 0 && out && !strcmp(out, want), "%s / %s = %s (%s)", res, div ? div : "1",
           out ? out : "-", err ? err : "");
    else
        ok(rc < 0 && err, "%s refused: %s", res, err ? err : "-");
    free(out);
    free(err);
}

static void test_resource(void)
{
    Coracle__V1__Quantity mem = CORACLE__V1__QUANTITY__INIT, cpu = CORACLE__V1__QUANTITY__INIT,
                          rcpu = CORACLE__V1__QUANTITY__INIT;
    mem.string = "100M";
    cpu.string = "1500m";
    rcpu.string = "250m";
    Coracle__V1__ResourceRequirements__LimitsEntry lm =
        CORACLE__V1__RESOURCE_REQUIREMENTS__LIMITS_ENTRY__INIT;
    Coracle__V1__ResourceRequirements__LimitsEntry lc =
        CORACLE__V1__RESOURCE_REQUIREMENTS__LIMITS_ENTRY__INIT;
    Coracle__V1__ResourceRequirements__RequestsEntry rc =
        CORACLE__V1__RESOURCE_REQUIREMENTS__REQUESTS_ENTRY__INIT;
    lm.key = "memory";
    lm.value = &mem;
    lc.key = "cpu";
    lc.value = &cpu;
    rc.key = "cpu";
    rc.value = &rcpu;
    Coracle__V1__ResourceRequirements__LimitsEntry *lims[] = {&lm, &lc};
    Coracle__V1__ResourceRequirements__RequestsEntry *reqs[] = {&rc};
    Coracle__V1__ResourceRequirements r = CORACLE__V1__RESOURCE_REQUIREMENTS__INIT;
    r.limits = lims;
    r.n_limits = 2;
    r.requests = reqs;
    r.n_requests = 1;
    Coracle__V1__Container c = CORACLE__V1__CONTAINER__INIT;
    c.resources = &r;
    resource(&c, "limits.cpu", NULL, "2");     /* 1.5 cores rounded up */
    resource(&c, "limits.cpu", "1m", "1500");  /* in millicores */
    resource(&c, "limits.cpu", "100m", "15");  /* 1500m / 100m */
    resource(&c, "limits.cpu", "400m", "4");   /* 3.75 rounded up */
    resource(&c, "requests.cpu", NULL, "1");   /* 0.25 rounded up */
    resource(&c, "requests.cpu", "1m", "250"); /* */
    resource(&c, "limits.memory", NULL, "100000000");
    resource(&c, "limits.memory", "1Mi", "96"); /* 95.37 rounded up */
    resource(&c, "limits.memory", "1M", "100");
    resource(&c, "limits.memory", "1Gi", "1");
    resource(&c, "requests.memory", "1M", "100"); /* requests default to the limits */
    resource(&c, "limits.nvidia.com/gpu", NULL, NULL);
    resource(&c, "limits.cpu", "0", NULL);
    Coracle__V1__Container bare = CORACLE__V1__CONTAINER__INIT;
    resource(&bare, "limits.cpu", NULL, "4"); /* no limit: the node's allocatable */
    resource(&bare, "limits.memory", "1Gi", "8");
    resource(&bare, "requests.cpu", NULL, "0");
}

static void test_names(void)
{
    ok(klet_env_name_ok("A_B") && klet_env_name_ok("game.properties") &&
           klet_env_name_ok("my-var") && klet_env_name_ok("_x1"),
       "valid env names");
    ok(!klet_env_name_ok("1st") && !klet_env_name_ok("a b") && !klet_env_name_ok("") &&
           !klet_env_name_ok(".") && !klet_env_name_ok("..x") && !klet_env_name_ok("x=y"),
       "invalid env names");
}

static char *slurp(const char *dir, const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return NULL;
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return xstrdup(buf);
}

static int file_mode(const char *dir, const char *name)
{
    char *p = xasprintf("%s/%s", dir, name);
    struct stat sb;
    int m = stat(p, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
    free(p);
    return m;
}

static char *data_target(const char *dir)
{
    char *p = xasprintf("%s/..data", dir);
    char t[256];
    ssize_t n = readlink(p, t, sizeof t - 1);
    free(p);
    if (n < 0)
        return NULL;
    t[n] = 0;
    return xstrdup(t);
}

static void test_atomic(void)
{
    char tmpl[] = "/tmp/test_klet_env.XXXXXX";
    char *dir = mkdtemp(tmpl);
    char *err = NULL;
    const struct klet_file v1[] = {
        {"a", (const uint8_t *)"one", 3, 0644},
        {"sub/b", (const uint8_t *)"two", 3, 0600},
    };
    ok(klet_atomic_write(dir, v1, 2, &err) == 0, "first write (%s)", err ? err : "");
    char *t1 = data_target(dir);
    char *a = slurp(dir, "a"), *b = slurp(dir, "sub/b");
    ok(t1 && !strncmp(t1, "..", 2) && a && !strcmp(a, "one") && b && !strcmp(b, "two"),
       "files through ..data -> %s", t1 ? t1 : "-");
    ok(file_mode(dir, "a") == 0644 && file_mode(dir, "sub/b") == 0600, "modes as given");
    char *p = xasprintf("%s/a", dir);
    char lt[64] = "";
    ssize_t ln = readlink(p, lt, sizeof lt - 1);
    free(p);
    ok(ln > 0 && !strncmp(lt, "..data/a", (size_t)ln), "user-visible a is a symlink to ..data/a");
    free(a);
    free(b);

    ok(klet_atomic_write(dir, v1, 2, &err) == 0, "same payload again");
    char *t2 = data_target(dir);
    ok(t1 && t2 && !strcmp(t1, t2), "same payload: nothing rewritten");

    const struct klet_file v2[] = {{"a", (const uint8_t *)"uno", 3, 0644},
                                   {"c", (const uint8_t *)"", 0, 0444}};
    ok(klet_atomic_write(dir, v2, 2, &err) == 0, "second write");
    char *t3 = data_target(dir);
    a = slurp(dir, "a");
    char *old = t1 ? xasprintf("%s/%s", dir, t1) : xstrdup("/nonexistent");
    char *sub = xasprintf("%s/sub", dir);
    struct stat sb;
    ok(t3 && t1 && strcmp(t3, t1) && a && !strcmp(a, "uno") && access(old, F_OK) < 0 &&
           lstat(sub, &sb) < 0 && file_mode(dir, "c") == 0444,
       "update: new ..data, a changed, sub gone, c added, old directory removed");
    free(a);
    free(old);
    free(sub);
    const struct klet_file bad[] = {{"../escape", (const uint8_t *)"x", 1, 0644}};
    ok(klet_atomic_write(dir, bad, 1, &err) < 0 && err, "a path with .. is refused: %s",
       err ? err : "");
    free(err);
    free(t1);
    free(t2);
    free(t3);
    klet_rmtree(dir);
}

int main(void)
{
    test_expand();
    test_field();
    test_resource();
    test_names();
    test_atomic();
    done_testing();
}
