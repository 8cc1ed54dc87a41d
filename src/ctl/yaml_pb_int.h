/*
 * yaml_pb_int: what the files of yaml_pb (yaml_pb.c, yaml_pb_parse.c,
 * yaml_pb_emit.c; yaml_pb.c says which does what) share. Not for other
 * modules: use yaml_pb.h.
 */
#ifndef CORACLE_CTL_YAML_PB_INT_H
#define CORACLE_CTL_YAML_PB_INT_H

#include "yaml_pb.h"

#include <stddef.h>

enum res { R_NULL, R_BOOL, R_INT, R_FLOAT, R_STR };

/* 1 if s is not empty and every byte of it is in set. */
int ypb_all_in(const char *s, const char *set);
/* YAML 1.2 core schema resolution of a plain scalar. */
enum res ypb_resolve(const char *s);

/* Is f of d inlined into its parent in YAML/JSON (as Kubernetes does)? */
int ypb_is_inlined(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f);
/* Strings and messages: a pointer in the message, NULL when absent. */
int ypb_is_ptr_type(ProtobufCType t);
/* Bytes one element of f takes in the message (or in its repeated array). */
size_t ypb_elem_size(const ProtobufCFieldDescriptor *f);
/* A new message of type d, initialised. Free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *ypb_msg_new(const ProtobufCMessageDescriptor *d);
/* Frees one element of f at slot and zeroes the slot. */
void ypb_elem_free(const ProtobufCFieldDescriptor *f, void *slot);
/* Finds key in d, or in one of d's inlined fields (then *owner is that field). */
const ProtobufCFieldDescriptor *ypb_lookup(const ProtobufCMessageDescriptor *d, const char *key,
                                           const ProtobufCFieldDescriptor **owner);

#endif
