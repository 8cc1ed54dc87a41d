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

/* Strings and messages: a pointer in the message, NULL when absent. */
int kobj_is_ptr_type(ProtobufCType t);
/* Bytes one element of f takes in the message (or in its repeated array). */
size_t kobj_elem_size(const ProtobufCFieldDescriptor *f);
/* A new message of type d, initialised. Free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *kobj_msg_new(const ProtobufCMessageDescriptor *d);
/* Frees one element of f at slot and zeroes the slot. */
void kobj_elem_free(const ProtobufCFieldDescriptor *f, void *slot);

#endif
