/*
 * testobj.h: one Kubernetes object from YAML, for unit tests that build
 * their fixtures as a user would write them (exits the test if it does not
 * parse: the fixture is wrong).
 */
#ifndef CORACLE_TESTOBJ_H
#define CORACLE_TESTOBJ_H

#include <stdlib.h>
#include <string.h>

#include "kobj.h"
#include "tap.h"

static ProtobufCMessage *obj(const char *yaml)
{
    struct kobjs o = {0};
    char *err = NULL;
    if (kobj_parse("test.yaml", yaml, strlen(yaml), &o, &err) < 0 || o.n != 1) {
        diag("cannot parse test object: %s", err ? err : "?");
        exit(1);
    }
    ProtobufCMessage *m = o.v[0].msg;
    o.v[0].msg = NULL;
    free(o.v[0].where);
    free(o.v);
    return m;
}

#endif
