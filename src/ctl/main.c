/*
 * coraclectl: the user's CLI, kubectl's habits. main() only dispatches to
 * the verbs (cmd_*.c, in libctl.a); each verb parses its own flags.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_image.h"
#include "ctl.h"
#include "util.h"

static const struct verb {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} verbs[] = {
    {"apply", ctl_cmd_apply, "Apply a configuration to a resource by file name or stdin"},
    {"create", ctl_cmd_create, "Create a resource from a file or from stdin"},
    {"get", ctl_cmd_get, "Display one or many resources"},
    {"describe", ctl_cmd_describe, "Show details of a specific resource"},
    {"delete", ctl_cmd_delete, "Delete resources by file names, stdin, or by type and names"},
    {"scale", ctl_cmd_scale, "Set a new size for a deployment or replica set"},
    {"rollout", ctl_cmd_rollout, "Manage the rollout of a deployment or daemon set"},
    {"expose", ctl_cmd_expose,
     "Take a deployment, replica set, pod or service and expose it as a new Service"},
    {"logs", ctl_cmd_logs, "Print the logs for a container in a pod"},
    {"exec", ctl_cmd_exec, "Execute a command in a container"},
    {"attach", ctl_cmd_attach, "Attach to a running container"},
    {"certificate", ctl_cmd_certificate, "Modify certificate resources (approve, deny)"},
    {"token", ctl_cmd_token, "Manage bootstrap tokens (create, list, delete)"},
    {"image", ctl_cmd_image, "Manage the node's local images (import, pull, ls, rm)"},
    {"auth", ctl_cmd_auth, "Inspect authorization"},
    {"version", ctl_cmd_version, "Print the client and server version information"},
};

static void usage(FILE *f)
{
    fprintf(f, "coraclectl controls the coracle cluster manager.\n\nCommands:\n");
    for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
        fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].help);
    fprintf(f,
            "\nOptions (every command):\n"
            "  -s, --server='': The address of the apiserver: host:port, https://host:port or\n"
            "      unix:/path; else $CORACLE_SERVER, else `server =` in the config file, else\n"
            "      127.0.0.1:6443. A comma list names several: one is used, the next when it\n"
            "      fails.\n"
            "      --certificate-authority='': Path to a cert file for the certificate authority;\n"
            "      set (or an https:// server): TLS, the server's certificate must name its host.\n"
            "      --client-certificate='': Path to a client certificate file for TLS.\n"
            "      --client-key='': Path to a client key file for TLS.\n"
            "      --token='': Bearer token for authentication to the API server (else\n"
            "      $CORACLE_TOKEN).\n"
            "      --kubeconfig='': Path to the config file (else $CORACLE_CONFIG, else\n"
            "      ~/.config/coracle/config): `key = value` lines with the keys server,\n"
            "      certificate-authority, client-certificate, client-key, token (flags win;\n"
            "      relative paths are relative to the file). contrib/certs writes admin.conf.\n"
            "  -n, --namespace='': The namespace (default \"default\").\n"
            "\nUsage:\n  coraclectl [command] [options]\n\n"
            "Use \"coraclectl <command> --help\" for more information about a command.\n");
}

int ctl_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("coraclectl %s\n", PACKAGE_VERSION);
        return 0;
    }
    /* global flags may come before the verb: `coraclectl --server X get po` */
    int v = 1;
    while (v < argc && argv[v][0] == '-' && strcmp(argv[v], "--")) {
        int n = ctl_global_flag_args(argv[v]);
        v += n ? n : 1;
    }
    if (v >= argc) {
        usage(stderr);
        return 1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(verbs); i++) {
        if (strcmp(argv[v], verbs[i].name))
            continue;
        char **nargv = xcalloc((size_t)argc + 1, sizeof(*nargv));
        int n = 0;
        nargv[n++] = argv[v];
        for (int j = 1; j < argc; j++)
            if (j != v)
                nargv[n++] = argv[j];
        int rc = verbs[i].fn(n, nargv);
        free(nargv);
        return rc;
    }
    fprintf(stderr,
            "error: unknown command \"%s\" for \"coraclectl\"\nRun 'coraclectl --help' for "
            "usage.\n",
            argv[v]);
    return 1;
}

int main(int argc, char **argv)
{
    log_init("coraclectl");
    const char *lvl = getenv("CORACLE_LOG_LEVEL");
    if (lvl && log_level_parse(lvl) > 0)
        log_set_level((enum log_level)log_level_parse(lvl));
    return ctl_main(argc, argv);
}
