/*
 * flags: kubectl-style command-line parsing shared by every verb. Flags may
 * come anywhere among the arguments; `--` ends them (exec's command).
 * The global flags (--server, -n, --token, --kubeconfig,
 * --certificate-authority, --client-certificate, --client-key, -h) are
 * accepted by every verb.
 */
#include "config.h"
#include "ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl_global ctl_g;

static const struct ctl_flag global_flags[] = {
    {"server", 's', CTL_FLAG_STR, &ctl_g.server, NULL},
    {"namespace", 'n', CTL_FLAG_STR, &ctl_g.namespace, NULL},
    {"token", 0, CTL_FLAG_STR, &ctl_g.token, NULL},
    {"kubeconfig", 0, CTL_FLAG_STR, &ctl_g.kubeconfig, NULL},
    {"certificate-authority", 0, CTL_FLAG_STR, &ctl_g.certificate_authority, NULL},
    {"client-certificate", 0, CTL_FLAG_STR, &ctl_g.client_certificate, NULL},
    {"client-key", 0, CTL_FLAG_STR, &ctl_g.client_key, NULL},
    {"help", 'h', CTL_FLAG_BOOL, &ctl_g.help, NULL},
};

int ctl_global_flag_args(const char *arg)
{
    for (size_t i = 0; i < ARRAY_SIZE(global_flags); i++) {
        const struct ctl_flag *f = &global_flags[i];
        size_t n = strlen(f->name);
        if (f->type == CTL_FLAG_BOOL)
            continue;
        if (arg[0] == '-' && arg[1] == '-' && !strncmp(arg + 2, f->name, n) &&
            (arg[2 + n] == '=' || !arg[2 + n]))
            return arg[2 + n] == '=' ? 1 : 2;
        if (f->short_name && arg[0] == '-' && arg[1] == f->short_name && !arg[2])
            return 2;
    }
    return 0;
}

const char *ctl_namespace(void)
{
    return ctl_g.namespace && *ctl_g.namespace ? ctl_g.namespace : "default";
}

static const struct ctl_flag *find_long(const struct ctl_flag *flags, size_t n, const char *name,
                                        size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
            return &flags[i];
    for (size_t i = 0; i < ARRAY_SIZE(global_flags); i++)
        if (strlen(global_flags[i].name) == len && !strncmp(global_flags[i].name, name, len))
            return &global_flags[i];
    return NULL;
}

static const struct ctl_flag *find_short(const struct ctl_flag *flags, size_t n, char c)
{
    for (size_t i = 0; i < n; i++)
        if (flags[i].short_name == c)
            return &flags[i];
    for (size_t i = 0; i < ARRAY_SIZE(global_flags); i++)
        if (global_flags[i].short_name == c)
            return &global_flags[i];
    return NULL;
}

static int set_flag(const struct ctl_flag *f, const char *shown, const char *val)
{
    switch (f->type) {
    case CTL_FLAG_BOOL:
        if (!val || !strcmp(val, "true") || !strcmp(val, "1"))
            *(bool *)f->dst = true;
        else if (!strcmp(val, "false") || !strcmp(val, "0"))
            *(bool *)f->dst = false;
        else {
            fprintf(stderr,
                    "error: invalid argument \"%s\" for \"%s\" flag: must be true or false\n", val,
                    shown);
            return -1;
        }
        break;
    case CTL_FLAG_STR:
        *(const char **)f->dst = val;
        break;
    case CTL_FLAG_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (!*val || *end || errno) {
            fprintf(stderr, "error: invalid argument \"%s\" for \"%s\" flag: must be an integer\n",
                    val, shown);
            return -1;
        }
        *(long long *)f->dst = v;
        break;
    }
    case CTL_FLAG_LIST: {
        struct ctl_strv *l = f->dst;
        l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
        l->v[l->n++] = val;
        break;
    }
    }
    if (f->set)
        *f->set = true;
    return 0;
}

int ctl_parse_flags(int argc, char **argv, const struct ctl_flag *flags, size_t nflags,
                    struct ctl_strv *pos, int *dashdash)
{
    pos->v = xcalloc((size_t)argc + 1, sizeof(*pos->v));
    pos->n = 0;
    if (dashdash)
        *dashdash = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            if (dashdash)
                *dashdash = (int)pos->n;
            for (i++; i < argc; i++)
                pos->v[pos->n++] = argv[i];
            break;
        }
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const struct ctl_flag *f = find_long(flags, nflags, name, len);
            char shown[128];
            snprintf(shown, sizeof(shown), "--%.*s", (int)len, name);
            if (!f) {
                fprintf(stderr, "error: unknown flag: %s\nSee '%s --help' for usage.\n", shown,
                        argv[0]);
                return -1;
            }
            const char *val = eq ? eq + 1 : NULL;
            if (!val && f->type != CTL_FLAG_BOOL) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "error: flag needs an argument: %s\n", shown);
                    return -1;
                }
                val = argv[++i];
            }
            if (set_flag(f, shown, val) < 0)
                return -1;
            continue;
        }
        if (a[0] == '-' && a[1] && strcmp(a, "-") != 0) {
            /* -abc: bools combined; a value flag takes the rest or the next argument. */
            for (const char *p = a + 1; *p; p++) {
                const struct ctl_flag *f = find_short(flags, nflags, *p);
                char shown[4] = {'-', *p, 0, 0};
                if (!f) {
                    fprintf(stderr,
                            "error: unknown shorthand flag: '%c' in %s\nSee '%s --help' "
                            "for usage.\n",
                            *p, a, argv[0]);
                    return -1;
                }
                if (f->type == CTL_FLAG_BOOL) {
                    if (p[1] == '=') {
                        if (set_flag(f, shown, p + 2) < 0)
                            return -1;
                        break;
                    }
                    set_flag(f, shown, NULL);
                    continue;
                }
                const char *val = p[1] ? p + 1 + (p[1] == '=') : NULL;
                if (!val) {
                    if (i + 1 >= argc) {
                        fprintf(stderr, "error: flag needs an argument: '%c' in %s\n", *p, a);
                        return -1;
                    }
                    val = argv[++i];
                }
                if (set_flag(f, shown, val) < 0)
                    return -1;
                break;
            }
            continue;
        }
        pos->v[pos->n++] = a;
    }
    return 0;
}
