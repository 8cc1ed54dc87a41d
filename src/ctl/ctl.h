/*
 * ctl: what the pieces of coraclectl share: the command-line flag parser
 * every verb uses (kubectl's habits: flags anywhere, --flag=value, combined
 * short bools, `--` ends flags), the global options (server, namespace,
 * credentials) and the verbs' entry points. Output is built in a struct
 * buf (buf.h).
 */
#ifndef CORACLE_CTL_H
#define CORACLE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "kinds.h"
#include "util.h"

/* Flags. */
enum ctl_flag_type {
    CTL_FLAG_BOOL, /* bool *; --x, --x=true|false */
    CTL_FLAG_STR,  /* const char **; points into argv */
    CTL_FLAG_INT,  /* long long *; *set_flag (if not NULL) becomes true */
    CTL_FLAG_LIST, /* struct ctl_strv *: each occurrence appends */
};
struct ctl_strv {
    const char **v;
    size_t n;
};
struct ctl_flag {
    const char *name; /* long name without "--" */
    char short_name;  /* 0 if none */
    enum ctl_flag_type type;
    void *dst;
    bool *set; /* optional: set to true when the flag is given */
};

/* Options every verb takes (kubectl's names). */
struct ctl_global {
    const char *server;                /* --server, CORACLE_SERVER, config, default */
    const char *namespace;             /* -n/--namespace; NULL = not given ("default") */
    const char *token;                 /* --token, CORACLE_TOKEN, config */
    const char *kubeconfig;            /* --kubeconfig, CORACLE_CONFIG, ~/.config/coracle/config */
    const char *certificate_authority; /* --certificate-authority, config */
    const char *client_certificate;    /* --client-certificate, config */
    const char *client_key;            /* --client-key, config */
    bool help;
};
extern struct ctl_global ctl_g;
/*
 * How many arguments a global flag with a value occupies at arg: 2 for
 * "--server X" or "-n X", 1 for "--server=X", 0 if arg is not one (for the
 * dispatcher and the verbs that skip the global flags).
 */
int ctl_global_flag_args(const char *arg);

/*
 * Parses argv[1..argc) against flags plus the global flags. Positional
 * arguments go to *pos (malloc'd array, pointers into argv); everything after
 * `--` too, with *dashdash set to the index in *pos where they start (-1 if
 * no `--`). On a bad flag prints `error: ...` and returns -1.
 */
int ctl_parse_flags(int argc, char **argv, const struct ctl_flag *flags, size_t nflags,
                    struct ctl_strv *pos, int *dashdash);
/* The namespace to use: -n, else "default". */
const char *ctl_namespace(void);

/* The verbs: each returns the process exit code. */
int ctl_cmd_apply(int argc, char **argv);
int ctl_cmd_create(int argc, char **argv);
int ctl_cmd_get(int argc, char **argv);
int ctl_cmd_describe(int argc, char **argv);
int ctl_cmd_delete(int argc, char **argv);
int ctl_cmd_logs(int argc, char **argv);
int ctl_cmd_exec(int argc, char **argv);
int ctl_cmd_attach(int argc, char **argv);
int ctl_cmd_version(int argc, char **argv);
int ctl_cmd_auth(int argc, char **argv);
int ctl_cmd_scale(int argc, char **argv);
int ctl_cmd_rollout(int argc, char **argv);
/* create role|clusterrole|rolebinding|clusterrolebinding NAME --verb ... (cmd_create_rbac.c) */
int ctl_create_rbac(int argc, char **argv);
int ctl_cmd_token(int argc, char **argv);
int ctl_cmd_certificate(int argc, char **argv);
int ctl_cmd_expose(int argc, char **argv);

struct ctl_client;
/*
 * The object a verb acts on, from "TYPE NAME" or "TYPE/NAME" in pos, among
 * allowed (NULL-terminated): 0 with *k and *name (pointing into pos), or -1
 * with kubectl's error printed. (cmd_rollout.c)
 */
int ctl_target(const struct ctl_strv *pos, const char *verb, const struct kind *const *allowed,
               const struct kind **k, const char **name);
/* Gets name of kind k in the namespace (-n): the object, or NULL with the error printed. */
ProtobufCMessage *ctl_get_obj(struct ctl_client *c, const struct kind *k, const char *name);

/* Dispatch over the verbs table; main() is just this. */
int ctl_main(int argc, char **argv);

#endif
