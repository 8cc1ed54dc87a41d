/*
 * cmd_image: `coraclectl image import|ls|rm`, the operator's hands on the
 * node's local image store (src/lib/image.h). Air-gapped nodes get their
 * images this way (or through the kubelet's drop-in folder): `image import`
 * takes docker-archive tarballs (`docker save`) and OCI layouts, `image ls`
 * prints what `crictl images` prints, `image rm` untags/deletes as `docker
 * rmi` does, `image prune` removes what no container uses as `crictl rmi
 * --prune` does. Progress goes to stderr (one updating line on a terminal,
 * plain lines otherwise); results to stdout.
 */
#include "config.h"

#include "cmd_image.h"
#include "ctl.h"
#include "image.h"
#include "image_gc.h"
#include "oci.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: coraclectl image import FILE... [--tag NAME] [--image-dir DIR]\n"
    "       coraclectl image ls [-q] [--image-dir DIR]\n"
    "       coraclectl image rm NAME|ID... [--force] [--image-dir DIR]\n"
    "       coraclectl image prune [--root-dir DIR] [--image-dir DIR]\n"
    "       coraclectl image pull NAME... [--registry-config-dir DIR] [--credentials FILE]\n"
    "                             [--image-dir DIR]\n"
    "\n"
    "Manage this node's local image store (default: $CORACLE_IMAGE_DIR, else " IMG_DEFAULT_DIR
    ").\n"
    "  import   import docker-archive tarballs (`docker save`, .tar or .tar.gz) or OCI\n"
    "           image layouts (directory or tarball); --tag adds a name\n"
    "  ls       list images: IMAGE TAG IMAGE ID SIZE; -q prints only ids\n"
    "  rm       remove a name (the image goes with its last name) or an image by id;\n"
    "           --force removes it even while a container uses it\n"
    "  prune    remove every image no container uses (also `rm --prune`, as crictl);\n"
    "           the kubelet's containers are read from --root-dir (default: the\n"
    "           image directory's parent when it is <root-dir>/images)\n"
    "  pull     fetch images from their registries (mirrors from the hosts.toml files under\n"
    "           --registry-config-dir, default " OCI_HOSTS_DIR "; credentials from a docker\n"
    "           config.json, --credentials); an interrupted pull resumes\n";

struct opts {
    const char *dir, *tag, *root, *hosts, *creds;
    int quiet, force, prune;
    char **args;
    int nargs;
};

static int parse(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->args = xcalloc((size_t)argc + 1, sizeof(char *));
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        const char *val = NULL;
        if (!strcmp(a, "--")) {
            while (++i < argc)
                o->args[o->nargs++] = argv[i];
            break;
        }
        if (!strncmp(a, "--image-dir", 11) && (a[11] == '\0' || a[11] == '='))
            dst = &o->dir;
        else if (!strncmp(a, "--tag", 5) && (a[5] == '\0' || a[5] == '='))
            dst = &o->tag;
        else if (!strncmp(a, "--root-dir", 10) && (a[10] == '\0' || a[10] == '='))
            dst = &o->root;
        else if (!strncmp(a, "--registry-config-dir", 21) && (a[21] == '\0' || a[21] == '='))
            dst = &o->hosts;
        else if (!strncmp(a, "--credentials", 13) && (a[13] == '\0' || a[13] == '='))
            dst = &o->creds;
        if (dst) {
            const char *eq = strchr(a, '=');
            if (eq) {
                val = eq + 1;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "coraclectl image: %s needs a value\n", a);
                return -1;
            }
            *dst = val;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--force")) {
            o->force = 1;
        } else if (!strcmp(a, "--prune")) {
            o->prune = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            exit(0);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "coraclectl image: unknown option '%s'\n%s", a, usage);
            return -1;
        } else {
            o->args[o->nargs++] = argv[i];
        }
    }
    if (!o->dir)
        o->dir = getenv("CORACLE_IMAGE_DIR");
    if (!o->dir || !*o->dir)
        o->dir = IMG_DEFAULT_DIR;
    return 0;
}

/* ---- import ---- */

struct show {
    const char *file;
    int tty, existed;
    int last_layer;
    enum img_phase last_phase;
    int64_t last_ns;
};

static void show_progress(const struct img_progress *p, void *arg)
{
    struct show *sh = arg;
    char a[16], b[16];
    if (p->phase == IMG_PH_EXISTS)
        sh->existed = 1;
    if (p->phase == IMG_PH_COMMIT || p->phase == IMG_PH_EXISTS) {
        if (sh->tty)
            fprintf(stderr, "\r\033[K");
        return;
    }
    img_human_size(p->done, a);
    img_human_size(p->total, b);
    if (sh->tty) {
        int64_t now = mono_ns();
        if (p->done != 0 && p->done != p->total && now - sh->last_ns < 100000000)
            return;
        sh->last_ns = now;
        if (p->phase == IMG_PH_READ)
            fprintf(stderr, "\r\033[K%s: reading %s / %s", sh->file, a, b);
        else
            fprintf(stderr, "\r\033[K%s: layer %d/%d %s / %s", sh->file, p->layer, p->layers, a, b);
        fflush(stderr);
        return;
    }
    /* Plain lines: one when a phase or layer starts. */
    if (p->done == 0 && (p->phase != sh->last_phase || p->layer != sh->last_layer)) {
        if (p->phase == IMG_PH_READ)
            fprintf(stderr, "%s: reading %s\n", sh->file, b);
        else
            fprintf(stderr, "%s: layer %d/%d, %s\n", sh->file, p->layer, p->layers, b);
        sh->last_phase = p->phase;
        sh->last_layer = p->layer;
    }
}

static int do_import(img_store_t *s, struct opts *o)
{
    int rc = 0;
    if (o->nargs == 0) {
        fprintf(stderr, "coraclectl image import: which file? \n%s", usage);
        return 2;
    }
    for (int i = 0; i < o->nargs; i++) {
        struct show sh = {.file = o->args[i], .tty = isatty(2), .last_phase = -1, .last_layer = -1};
        struct img_import_opts io = {.tag = o->tag, .progress = show_progress, .arg = &sh};
        img_t **imgs;
        size_t n;
        char *err = NULL;
        if (img_import(s, o->args[i], &io, &imgs, &n, &err) < 0) {
            if (sh.tty)
                fprintf(stderr, "\r\033[K");
            fprintf(stderr, "coraclectl image import: %s\n", err ? err : "failed");
            free(err);
            rc = 1;
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            char sid[13], sz[16];
            printf("imported ");
            for (size_t j = 0; j < imgs[k]->n_names; j++) {
                char *f = img_ref_familiar(imgs[k]->names[j]);
                printf("%s%s", j ? ", " : "", f);
                free(f);
            }
            if (!imgs[k]->n_names)
                printf("<none>");
            printf(" (sha256:%s, %s%s)\n", img_short_id(imgs[k]->id, sid),
                   img_human_size(imgs[k]->size, sz), sh.existed ? ", already present" : "");
        }
        fflush(stdout);
        img_list_free(imgs, n);
    }
    return rc;
}

/* ---- pull ---- */

/* One row per layer: on a terminal the rows are redrawn in place (at most ten times a
 * second), otherwise a line is printed when a layer changes state. */
struct pshow {
    int tty, layers;
    int64_t last_ns;
    int drawn; /* rows on screen */
    struct {
        enum oci_layer_state st;
        char id[13];
        uint64_t done, total;
    } * l;
};

static const char *state_word(enum oci_layer_state st)
{
    switch (st) {
    case OCI_L_WAITING:
        return "Waiting";
    case OCI_L_FETCHING:
        return "Downloading";
    case OCI_L_RESUMING:
        return "Resuming";
    case OCI_L_DONE:
        return "Download complete";
    case OCI_L_EXISTS:
        return "Already exists";
    case OCI_L_UNPACKING:
        return "Extracting";
    case OCI_L_COMPLETE:
        return "Pull complete";
    }
    return "";
}

static void draw(struct pshow *sh)
{
    if (sh->drawn)
        fprintf(stderr, "\033[%dA", sh->drawn);
    for (int i = 0; i < sh->layers; i++) {
        char a[16], b[16], bar[52];
        int w = 50, fill = sh->l[i].total ? (int)(sh->l[i].done * (uint64_t)w / sh->l[i].total) : 0;
        memset(bar, ' ', (size_t)w);
        memset(bar, '=', (size_t)fill);
        if (fill < w && fill > 0)
            bar[fill] = '>';
        bar[w] = 0;
        fprintf(stderr, "\r\033[K%s: %-17s", sh->l[i].id, state_word(sh->l[i].st));
        if (sh->l[i].st == OCI_L_FETCHING || sh->l[i].st == OCI_L_RESUMING ||
            sh->l[i].st == OCI_L_UNPACKING)
            fprintf(stderr, " [%s] %s/%s", bar, img_human_size(sh->l[i].done, a),
                    img_human_size(sh->l[i].total, b));
        fputc('\n', stderr);
    }
    sh->drawn = sh->layers;
    fflush(stderr);
}

static void pull_progress(const struct oci_progress *p, void *arg)
{
    struct pshow *sh = arg;
    if (p->layers > sh->layers) {
        sh->l = xrealloc(sh->l, (size_t)p->layers * sizeof *sh->l);
        memset(sh->l + sh->layers, 0, (size_t)(p->layers - sh->layers) * sizeof *sh->l);
        sh->layers = p->layers;
    }
    if (p->layer < 0 || p->layer >= sh->layers)
        return;
    int changed = 1;
    if (p->state == OCI_L_COMPLETE) {
        for (int i = 0; i < sh->layers; i++)
            sh->l[i].st = OCI_L_COMPLETE;
    } else {
        changed = sh->l[p->layer].st != p->state;
        sh->l[p->layer].st = p->state;
        sh->l[p->layer].done = p->done;
        sh->l[p->layer].total = p->total;
        if (p->digest)
            snprintf(sh->l[p->layer].id, sizeof sh->l[p->layer].id, "%.12s", p->digest + 7);
    }
    if (sh->tty) {
        int64_t now = mono_ns();
        if (!changed && now - sh->last_ns < 100000000)
            return;
        sh->last_ns = now;
        draw(sh);
    } else if (changed && p->state != OCI_L_COMPLETE && p->state != OCI_L_UNPACKING) {
        char b[16];
        if (p->state == OCI_L_RESUMING)
            fprintf(stderr, "%s: Resuming at %llu of %s\n", sh->l[p->layer].id,
                    (unsigned long long)p->done, img_human_size(p->total, b));
        else
            fprintf(stderr, "%s: %s %s\n", sh->l[p->layer].id, state_word(p->state),
                    img_human_size(p->total, b));
    }
}

/* A file's bytes (the credentials), malloc'd; NULL if it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = xmalloc(1u << 20);
    *len = fread(buf, 1, (1u << 20) - 1, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static int do_pull(img_store_t *s, struct opts *o)
{
    int rc = 0;
    size_t clen = 0;
    char *creds = NULL;
    if (o->nargs == 0) {
        fprintf(stderr, "coraclectl image pull: which image?\n%s", usage);
        return 2;
    }
    if (o->creds && !(creds = slurp(o->creds, &clen))) {
        fprintf(stderr, "coraclectl image pull: %s: %s\n", o->creds, strerror(errno));
        return 1;
    }
    const char *auths[1] = {creds};
    for (int i = 0; i < o->nargs; i++) {
        struct pshow sh = {.tty = isatty(2)};
        struct oci_pull_opts po = {
            .hosts_dir = o->hosts ? o->hosts : OCI_HOSTS_DIR,
            .auths = auths,
            .auth_lens = &clen,
            .n_auths = creds ? 1 : 0,
            .progress = pull_progress,
            .arg = &sh,
        };
        struct oci_result r;
        int64_t t0 = mono_ns();
        if (oci_pull(s, o->args[i], &po, &r) < 0) {
            fprintf(stderr, "coraclectl image pull: %s\n", r.msg ? r.msg : "failed");
            rc = 1;
        } else {
            char *norm = NULL, sz[16];
            img_ref_normalize(o->args[i], &norm, NULL);
            printf("pulled %s (%s, %s in %.1fs, %d layers fetched, %d present, %d resumed)\n",
                   norm ? norm : o->args[i], r.id, img_human_size(r.size, sz),
                   (double)(mono_ns() - t0) / 1e9, r.layers_fetched, r.layers_present, r.resumed);
            printf("Digest: %s\n", r.digest);
            free(norm);
        }
        fflush(stdout);
        oci_result_free(&r);
        free(sh.l);
    }
    free(creds);
    return rc;
}

/* ---- ls ---- */

/* As Docker's units.HumanSizeWithPrecision(size, 3), which crictl prints. */
static void decimal_size(uint64_t b, char buf[16])
{
    static const char *u[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1000 && i < 5) {
        v /= 1000;
        i++;
    }
    snprintf(buf, 16, "%.3g%s", v, u[i]);
}

static int do_ls(img_store_t *s, struct opts *o)
{
    img_t **imgs;
    size_t n;
    int rc = img_list(s, &imgs, &n);
    if (rc < 0) {
        fprintf(stderr, "coraclectl image ls: %s: %s\n", img_store_dir(s), strerror(-rc));
        return 1;
    }
    if (o->quiet) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", imgs[i]->id);
        img_list_free(imgs, n);
        return 0;
    }
    /* Rows: one per name, "<none>" for unnamed images. */
    size_t rows = 0;
    for (size_t i = 0; i < n; i++)
        rows += imgs[i]->n_names ? imgs[i]->n_names : 1;
    char *(*cell)[4] = xcalloc(rows + 1, sizeof(*cell));
    cell[0][0] = xstrdup("IMAGE");
    cell[0][1] = xstrdup("TAG");
    cell[0][2] = xstrdup("IMAGE ID");
    cell[0][3] = xstrdup("SIZE");
    size_t r = 1;
    for (size_t i = 0; i < n; i++) {
        char sz[16];
        decimal_size(imgs[i]->size, sz);
        for (size_t j = 0; j < (imgs[i]->n_names ? imgs[i]->n_names : 1); j++, r++) {
            if (imgs[i]->n_names) {
                img_ref_split(imgs[i]->names[j], &cell[r][0], &cell[r][1]);
            } else {
                cell[r][0] = xstrdup("<none>");
                cell[r][1] = xstrdup("<none>");
            }
            cell[r][2] = xstrndup(imgs[i]->id + 7, 13);
            cell[r][3] = xstrdup(sz);
        }
    }
    /* crictl's tabwriter: minimum width 20, padding 3. */
    int w[3] = {20, 20, 20};
    for (size_t k = 0; k < rows + 1; k++)
        for (int c = 0; c < 3; c++)
            if ((int)strlen(cell[k][c]) + 3 > w[c])
                w[c] = (int)strlen(cell[k][c]) + 3;
    for (size_t k = 0; k < rows + 1; k++) {
        printf("%-*s%-*s%-*s%s\n", w[0], cell[k][0], w[1], cell[k][1], w[2], cell[k][2],
               cell[k][3]);
        for (int c = 0; c < 4; c++)
            free(cell[k][c]);
    }
    free(cell);
    img_list_free(imgs, n);
    return 0;
}

/* ---- rm ---- */

static int do_rm(img_store_t *s, struct opts *o)
{
    int rc = 0;
    if (o->nargs == 0) {
        fprintf(stderr, "coraclectl image rm: which image?\n%s", usage);
        return 2;
    }
    for (int i = 0; i < o->nargs; i++) {
        const char *ref = o->args[i];
        img_t *img = NULL;
        char *err = NULL, *norm = NULL, removed[72];
        if (img_lookup(s, ref, &img, &err) < 0) {
            fprintf(stderr, "coraclectl image rm: %s\n", err ? err : "not found");
            free(err);
            rc = 1;
            continue;
        }
        int by_name = 0;
        if (img_ref_normalize(ref, &norm, NULL) == 0)
            for (size_t j = 0; j < img->n_names; j++)
                by_name |= !strcmp(img->names[j], norm);
        if (img_remove(s, ref, o->force ? IMG_RM_FORCE : 0, removed, &err) < 0) {
            fprintf(stderr, "coraclectl image rm: %s\n", err ? err : "failed");
            free(err);
            rc = 1;
        } else {
            for (size_t j = 0; j < img->n_names; j++) {
                if (by_name && strcmp(img->names[j], norm) != 0)
                    continue;
                char *f = img_ref_familiar(img->names[j]);
                printf("Untagged: %s\n", f);
                free(f);
            }
            if (removed[0])
                printf("Deleted: %s\n", removed);
        }
        free(norm);
        img_free(img);
    }
    return rc;
}

/* ---- prune ---- */

/* The kubelet's root: --root-dir, else the store's parent when it is <root>/images. */
static char *kubelet_root(img_store_t *s, const struct opts *o)
{
    if (o->root)
        return xstrdup(o->root);
    const char *dir = img_store_dir(s);
    size_t n = strlen(dir);
    if (n > 7 && !strcmp(dir + n - 7, "/images"))
        return xstrndup(dir, n - 7);
    return NULL;
}

/* As `crictl rmi --prune`: every image no container uses goes; "Deleted: NAME" for each. */
static int do_prune(img_store_t *s, struct opts *o)
{
    img_t **imgs;
    size_t n;
    char *root = kubelet_root(s, o), **used = NULL;
    size_t nused = root ? img_gc_kubelet_images(root, &used) : 0;
    int rc = img_list(s, &imgs, &n);
    if (rc < 0) {
        fprintf(stderr, "coraclectl image prune: %s: %s\n", img_store_dir(s), strerror(-rc));
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int busy = 0;
        for (size_t u = 0; u < nused; u++)
            busy |= !strcmp(used[u], imgs[i]->id);
        char *err = NULL;
        int r = busy ? -EBUSY : img_remove(s, imgs[i]->id, 0, NULL, &err);
        if (r == -EBUSY) {
            free(err); /* in use: kept */
            continue;
        }
        if (r < 0) {
            fprintf(stderr, "coraclectl image prune: %s\n", err ? err : strerror(-r));
            free(err);
            rc = 1;
            continue;
        }
        for (size_t j = 0; j < imgs[i]->n_names; j++)
            printf("Deleted: %s\n", imgs[i]->names[j]);
        if (!imgs[i]->n_names)
            printf("Deleted: %s\n", imgs[i]->id);
    }
    img_list_free(imgs, n);
out:
    for (size_t u = 0; u < nused; u++)
        free(used[u]);
    free(used);
    free(root);
    return rc;
}

int ctl_cmd_image(int argc, char **argv)
{
    struct opts o;
    img_store_t *s = NULL;
    char *err = NULL;
    int rc;
    /* coraclectl's global flags (placed after the verb by its dispatcher)
     * mean nothing to the local image store: skip them. */
    while (argc > 1 && ctl_global_flag_args(argv[1])) {
        int skip = ctl_global_flag_args(argv[1]);
        if (skip > argc - 1)
            skip = argc - 1;
        memmove(argv + 1, argv + 1 + skip, (size_t)(argc - 1 - skip + 1) * sizeof(*argv));
        argc -= skip;
    }
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    int is_import = !strcmp(sub, "import") || !strcmp(sub, "load");
    int is_ls = !strcmp(sub, "ls") || !strcmp(sub, "list");
    int is_rm = !strcmp(sub, "rm") || !strcmp(sub, "rmi");
    int is_prune = !strcmp(sub, "prune");
    int is_pull = !strcmp(sub, "pull");
    if (!is_import && !is_ls && !is_rm && !is_prune && !is_pull) {
        fprintf(stderr, "coraclectl image: unknown command \"%s\"\n%s", sub, usage);
        return 2;
    }
    if (parse(argc, argv, &o) < 0) {
        free(o.args);
        return 2;
    }
    is_prune |= is_rm && o.prune;
    if ((is_ls || is_prune) && o.nargs) {
        fprintf(stderr, "coraclectl image %s: takes no arguments\n", is_ls ? "ls" : "prune");
        free(o.args);
        return 2;
    }
    rc = img_store_open(o.dir, is_import || is_pull ? IMG_STORE_CREATE : 0, &s, &err);
    if (rc < 0) {
        if (is_ls && rc == -ENOENT) {
            /* No store yet: nothing imported. */
            free(err);
            free(o.args);
            if (!o.quiet)
                printf("%-20s%-20s%-20s%s\n", "IMAGE", "TAG", "IMAGE ID", "SIZE");
            return 0;
        }
        fprintf(stderr, "coraclectl image %s: %s\n", sub, err ? err : strerror(-rc));
        free(err);
        free(o.args);
        return 1;
    }
    if (is_import)
        rc = do_import(s, &o);
    else if (is_pull)
        rc = do_pull(s, &o);
    else if (is_ls)
        rc = do_ls(s, &o);
    else if (is_prune)
        rc = do_prune(s, &o);
    else
        rc = do_rm(s, &o);
    img_store_close(s);
    free(o.args);
    return rc;
}
