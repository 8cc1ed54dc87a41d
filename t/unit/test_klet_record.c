/* Unit tests for the kubelet's durable record (src/kubelet/record.c): what
 * a Pod keeps, no write when nothing changed, modes, load, forget, prune. */
#include "config.h"
#include "tap.h"

#include "klet.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct klet k;

static Coracle__V1__Pod *mk_pod(const char *uid, const char *rv, const char *phase)
{
    Coracle__V1__Pod *p = xcalloc(1, sizeof *p);
    coracle__v1__pod__init(p);
    p->metadata = xcalloc(1, sizeof *p->metadata);
    coracle__v1__object_meta__init(p->metadata);
    p->metadata->uid = xstrdup(uid);
    p->metadata->name = xstrdup("web");
    p->metadata->namespace_ = xstrdup("default");
    p->metadata->resourceversion = xstrdup(rv);
    p->spec = xcalloc(1, sizeof *p->spec);
    coracle__v1__pod_spec__init(p->spec);
    p->spec->nodename = xstrdup("n1");
    p->status = xcalloc(1, sizeof *p->status);
    coracle__v1__pod_status__init(p->status);
    p->status->phase = xstrdup(phase);
    return p;
}

static bool stat_of(const char *rel, struct stat *st)
{
    char *p = xasprintf("%s/record/%s", k.cfg.root_dir, rel);
    bool ok = stat(p, st) == 0;
    free(p);
    return ok;
}

int main(void)
{
    char tmpl[] = "/tmp/test_klet_record.XXXXXX";
    k.cfg.root_dir = mkdtemp(tmpl);
    if (!k.cfg.root_dir)
        return 1;

    ok(!klet_record_complete(&k), "a new root: no complete record");
    Coracle__V1__Pod *a = mk_pod("uid-a", "10", "Pending");
    klet_record_pod(&k, a);
    struct stat st1, st2;
    ok(stat_of("pods/uid-a.pb", &st1) && (st1.st_mode & 0777) == 0600, "pod recorded, 0600");
    ok(stat_of("pods", &st2) && (st2.st_mode & 0777) == 0700, "its directory 0700");

    /* a status write: another resourceVersion and phase, the same record */
    Coracle__V1__Pod *a2 = mk_pod("uid-a", "11", "Running");
    usleep(10000);
    klet_record_pod(&k, a2);
    ok(stat_of("pods/uid-a.pb", &st2) && st2.st_ino == st1.st_ino &&
           st2.st_mtim.tv_nsec == st1.st_mtim.tv_nsec && st2.st_mtim.tv_sec == st1.st_mtim.tv_sec,
       "a status change does not rewrite it");
    free(a2->spec->nodename);
    a2->spec->nodename = xstrdup("n2");
    klet_record_pod(&k, a2);
    ok(stat_of("pods/uid-a.pb", &st2) && st2.st_ino != st1.st_ino, "a spec change does");

    Coracle__V1__Pod **pods;
    size_t n = klet_record_pods(&k, &pods);
    ok(n == 1 && !strcmp(pods[0]->metadata->uid, "uid-a") && !strcmp(pods[0]->spec->nodename, "n2"),
       "loaded back");
    ok(n == 1 && !pods[0]->metadata->resourceversion && pods[0]->status && !pods[0]->status->phase,
       "without resourceVersion and phase");
    for (size_t i = 0; i < n; i++)
        coracle__v1__pod__free_unpacked(pods[i], NULL);
    free(pods);

    /* a Secret: 0600, loaded back whole */
    Coracle__V1__ObjectMeta sm = CORACLE__V1__OBJECT_META__INIT;
    sm.name = "sec";
    sm.namespace_ = "default";
    sm.resourceversion = "7";
    Coracle__V1__Secret__DataEntry de = CORACLE__V1__SECRET__DATA_ENTRY__INIT;
    de.key = "pw";
    de.has_value = 1;
    de.value.data = (uint8_t *)"s3cret";
    de.value.len = 6;
    Coracle__V1__Secret__DataEntry *dep = &de;
    Coracle__V1__Secret sec = CORACLE__V1__SECRET__INIT;
    sec.metadata = &sm;
    sec.data = &dep;
    sec.n_data = 1;
    klet_record_ref(&k, PODREF_SECRET, &sec.base);
    ok(stat_of("secrets/default_sec.pb", &st1) && (st1.st_mode & 0777) == 0600, "secret 0600");
    Coracle__V1__Secret *got =
        (Coracle__V1__Secret *)klet_record_ref_load(&k, PODREF_SECRET, "default", "sec");
    ok(got && got->n_data == 1 && got->data[0]->value.len == 6 &&
           !memcmp(got->data[0]->value.data, "s3cret", 6) &&
           !strcmp(got->metadata->resourceversion, "7"),
       "secret loaded back with its resourceVersion");
    if (got)
        protobuf_c_message_free_unpacked(&got->base, NULL);
    ok(!klet_record_ref_load(&k, PODREF_CONFIGMAP, "default", "sec"), "kinds kept apart");
    ok(!klet_record_ref_load(&k, PODREF_SECRET, "../x", "sec"), "a name with a slash is refused");

    /* complete, prune, forget */
    klet_record_set_complete(&k);
    ok(klet_record_complete(&k), "complete once set");
    char *tmp = xasprintf("%s/record/pods/uid-b.pb.tmp", k.cfg.root_dir);
    FILE *f = fopen(tmp, "w");
    if (f)
        fclose(f);
    Coracle__V1__Pod *b = mk_pod("uid-b", "1", "Running");
    klet_record_pod(&k, b);
    struct klet_pod pa = {.uid = "uid-a"};
    struct klet_pod *held[] = {&pa};
    k.pods = held;
    k.npods = 1;
    klet_record_prune(&k);
    ok(stat_of("pods/uid-a.pb", &st1) && !stat_of("pods/uid-b.pb", &st1) && access(tmp, F_OK) < 0,
       "prune keeps held pods only, drops temp files");
    ok(!stat_of("secrets/default_sec.pb", &st1), "and references no pod holds");
    klet_record_pod_forget(&k, "uid-a");
    ok(!stat_of("pods/uid-a.pb", &st1), "forgotten");
    k.pods = NULL;
    k.npods = 0;

    free(tmp);
    coracle__v1__pod__free_unpacked(a, NULL);
    coracle__v1__pod__free_unpacked(a2, NULL);
    coracle__v1__pod__free_unpacked(b, NULL);
    if (klet_rmtree(k.cfg.root_dir) < 0)
        diag("cleanup of %s failed", k.cfg.root_dir);
    return done_testing();
}
