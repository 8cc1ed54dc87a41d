/*
 * cfg: config files and flags sharing one table of keys. See cfg.h.
 */
#include "config.h"
#include "cfg.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const struct cfg_opt *cfg_find(const struct cfg_opt *opts, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].key, key) == 0)
            return &opts[i];
    return NULL;
}

/*
 * The CFG_STR values cfg made. A key given twice (the file, then a flag)
 * replaces a value cfg made, which is freed, or a default, which may be a
 * literal and is left alone.
 */
static struct {
    char **v;
    size_t n, cap;
} owned;

static void set_str(char **dst, const char *value)
{
    char *s = xstrdup(value);
    for (size_t i = 0; *dst && i < owned.n; i++)
        if (owned.v[i] == *dst) {
            free(*dst);
            *dst = owned.v[i] = s;
            return;
        }
    if (owned.n == owned.cap) {
        owned.cap = owned.cap ? 2 * owned.cap : 16;
        owned.v = xrealloc(owned.v, owned.cap * sizeof(*owned.v));
    }
    *dst = owned.v[owned.n++] = s;
}

int cfg_set(const struct cfg_opt *opts, size_t n, const char *key, const char *value, char **err)
{
    if (!strcmp(key, "log-level")) {
        int lvl = log_level_parse(value);
        if (lvl < 0) {
            *err = xasprintf("log-level: unknown level \"%s\" (error, warn, info, debug)", value);
            return -1;
        }
        log_set_level(lvl);
        return 0;
    }
    const struct cfg_opt *o = cfg_find(opts, n, key);
    if (!o) {
        *err = xasprintf("unknown key \"%s\"", key);
        return -1;
    }
    switch (o->type) {
    case CFG_STR:
        set_str(o->dst, value);
        return 0;
    case CFG_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end) {
            *err = xasprintf("%s: expected an integer, got \"%s\"", key, value);
            return -1;
        }
        *(long long *)o->dst = v;
        return 0;
    }
    case CFG_BOOL:
        if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1")) {
            *(int *)o->dst = 1;
        } else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcmp(value, "0")) {
            *(int *)o->dst = 0;
        } else {
            *err = xasprintf("%s: expected true or false, got \"%s\"", key, value);
            return -1;
        }
        return 0;
    case CFG_LIST: {
        struct cfg_list *l = o->dst;
        l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
        l->v[l->n++] = xstrdup(value);
        return 0;
    }
    }
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int cfg_load(const char *path, const struct cfg_opt *opts, size_t n, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = xasprintf("%s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            *err = xasprintf("%s:%d: expected \"key = value\"", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        char *e2 = NULL;
        if (cfg_set(opts, n, key, val, &e2) < 0) {
            *err = xasprintf("%s:%d: %s", path, lineno, e2);
            free(e2);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static void cfg_usage(const struct cfg_opt *opts, size_t n, const struct cfg_prog *prog)
{
    printf("Usage: %s [--config FILE] [flags]\n%s\n\nFlags (each is also a config-file key):\n",
           prog->name, prog->about);
    printf("  --%-28s %s\n", "config FILE",
           prog->default_config ? prog->default_config : "config file to read first");
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof(left), "%s %s", opts[i].key, opts[i].arg ? opts[i].arg : "");
        printf("  --%-28s %s\n", left, opts[i].help);
    }
    printf("  --%-28s %s\n", "log-level LEVEL", "error, warn, info or debug (default info)");
    printf("  --%-28s %s\n", "help", "print this help");
    printf("  --%-28s %s\n", "version", "print the version");
}

int cfg_main(int argc, char **argv, const struct cfg_opt *opts, size_t n,
             const struct cfg_prog *prog)
{
    log_init(prog->name);
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cfg_usage(opts, n, prog);
            exit(0);
        }
        if (!strcmp(argv[i], "--version")) {
            printf("%s %s\n", prog->name, PACKAGE_VERSION);
            exit(0);
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    char *err = NULL;
    if (!config && prog->default_config && access(prog->default_config, R_OK) == 0)
        config = prog->default_config;
    if (config && cfg_load(config, opts, n, &err) < 0) {
        fprintf(stderr, "%s: %s\n", prog->name, err);
        exit(2);
    }
    int i;
    for (i = 1; i < argc; i++) {
        char *a = argv[i];
        if (a[0] != '-' || a[1] != '-')
            break;
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        char *key = a + 2, *val = NULL, *eq = strchr(key, '=');
        char keybuf[128];
        if (eq) {
            snprintf(keybuf, sizeof(keybuf), "%.*s", (int)(eq - key), key);
            key = keybuf;
            val = eq + 1;
        }
        const struct cfg_opt *o = cfg_find(opts, n, key);
        int is_known = o || !strcmp(key, "config") || !strcmp(key, "log-level");
        if (!is_known) {
            fprintf(stderr, "%s: unknown flag --%s (see --help)\n", prog->name, key);
            exit(2);
        }
        if (!val && o && o->type == CFG_BOOL) {
            val = "true";
        } else if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: flag --%s needs a value\n", prog->name, key);
                exit(2);
            }
            val = argv[++i];
        }
        if (!strcmp(key, "config"))
            continue;
        if (cfg_set(opts, n, key, val, &err) < 0) {
            fprintf(stderr, "%s: --%s\n", prog->name, err);
            exit(2);
        }
    }
    return i;
}
