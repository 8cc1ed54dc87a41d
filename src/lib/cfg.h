/*
 * cfg: configuration for the daemons. A config file holds `key = value`
 * lines ('#' starts a comment); every key is also a command-line flag of
 * the same name (`--data-dir DIR` or `--data-dir=DIR`), and flags override
 * the file. `--config FILE`, `--help`, `--version` and `--log-level` are
 * handled here for every program, so they behave the same everywhere.
 */
#ifndef CORACLE_CFG_H
#define CORACLE_CFG_H

#include <stddef.h>

enum cfg_type {
    CFG_STR,  /* char **: xstrdup'd; a value set earlier by cfg is freed, a default left alone */
    CFG_INT,  /* long long * */
    CFG_BOOL, /* int *: true/false/yes/no/1/0 */
    CFG_LIST, /* struct cfg_list *: each occurrence appends (e.g. --listen) */
};

struct cfg_list {
    char **v;
    size_t n;
};

struct cfg_opt {
    const char *key;
    enum cfg_type type;
    void *dst;
    const char *arg;  /* placeholder in --help, e.g. "ADDR" */
    const char *help; /* one line, including the default */
};

struct cfg_prog {
    const char *name;           /* "coracle-apiserver" */
    const char *about;          /* one line for --help */
    const char *default_config; /* read if it exists and no --config is given; may be NULL */
};

/* Sets key to value. Returns 0, or -1 with *err (malloc'd) naming the key and problem. */
int cfg_set(const struct cfg_opt *opts, size_t n, const char *key, const char *value, char **err);

/* Loads a config file. Returns 0, or -1 with *err as "FILE:LINE: problem". */
int cfg_load(const char *path, const struct cfg_opt *opts, size_t n, char **err);

/*
 * Parses argv: --config first (else prog->default_config if readable), then
 * every flag. Handles --help and --version (prints and exits 0) and
 * --log-level. On a bad flag prints a one-line error and exits 2. Returns
 * the index of the first non-flag argument.
 */
int cfg_main(int argc, char **argv, const struct cfg_opt *opts, size_t n,
             const struct cfg_prog *prog);

#endif
