/*
 * cmd_version: `coraclectl version`: the client's version, and the server
 * it would talk to and whether it answers (there is no version call in the
 * API: a cheap List of nodes tells reachability).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "ctl.h"
#include "grpc.h"

static const char version_help[] =
    "Print the client version, and the server address and whether it is reachable.\n"
    "\n"
    "Options:\n"
    "      --client=false: Only print the client version.\n"
    "\n"
    "Usage:\n"
    "  coraclectl version [options]\n";

int ctl_cmd_version(int argc, char **argv)
{
    bool client_only = false;
    const struct ctl_flag flags[] = {
        {"client", 0, CTL_FLAG_BOOL, &client_only, NULL},
    };
    struct ctl_strv pos;
    struct ctl_client c;
    if (ctl_parse_flags(argc, argv, flags, ARRAY_SIZE(flags), &pos, NULL) < 0)
        return 1;
    free(pos.v);
    if (ctl_g.help) {
        fputs(version_help, stdout);
        return 0;
    }
    printf("Client Version: v%s\n", PACKAGE_VERSION);
    fflush(stdout);
    if (client_only)
        return 0;
    if (ctl_client_open(&c) < 0)
        return 1;
    Coracle__V1__ListRequest req = CORACLE__V1__LIST_REQUEST__INIT;
    req.has_limit = 1;
    req.limit = 1;
    ProtobufCMessage *resp;
    char *err;
    int code = ctl_call(&c, &kind_node, "List", &req.base, kind_node.list_desc, &resp, &err);
    int rc = 0;
    if (code == GRPC_OK) {
        protobuf_c_message_free_unpacked(resp, NULL);
        printf("Server: %s (reachable)\n", c.addr);
    } else if (code == GRPC_UNAVAILABLE || code == GRPC_DEADLINE_EXCEEDED) {
        printf("Server: %s (not reachable)\n", c.addr);
        fflush(stdout);
        ctl_print_error(&c, code, err);
        rc = 1;
    } else {
        /* it answered, if only with an error (e.g. not allowed to list nodes) */
        printf("Server: %s (reachable: %s)\n", c.addr, grpc_code_name(code));
    }
    free(err);
    ctl_client_close(&c);
    return rc;
}
