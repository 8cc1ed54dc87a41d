/*
 * kobj_int: what the files of kobj (kobj.c, kobj_parse.c, kobj_emit.c;
 * kobj.c says which does what) share. Not for other modules: use kobj.h.
 */
#ifndef CORACLE_KOBJ_INT_H
#define CORACLE_KOBJ_INT_H

#include "kobj.h"

#include <stddef.h>

enum res { R_NULL, R_BOOL, R_INT, R_FLOAT, R_STR };

/* 1 if s is not empty and every byte of it is in set. */
int kobj_all_in(const char *s, const char *set);
/* YAML 1.2 core schema resolution of a plain scalar. */
enum res kobj_resolve(const char *s);

#endif
