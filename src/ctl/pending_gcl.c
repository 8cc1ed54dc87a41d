/*
 * pending_gcl: stand-ins for the gRPC client while src/lib/gcl.c is still
 * being written. In libctlpending.a, linked after libcoracle.a: the linker
 * only takes this file when libcoracle.a does not define gcl_new, and the
 * definitions are weak besides. gcl_new fails, so every verb that needs the
 * server says so.
 */
#include "config.h"
#include "gcl.h"
#include "util.h"

#define WEAK __attribute__((weak))

gcl_t *gcl_new(struct event_base *base, const char *addr, const struct gcl_opts *opts) WEAK;
void gcl_free(gcl_t *g) WEAK;
const char *gcl_addr(const gcl_t *g) WEAK;
gcl_call_t *gcl_call(gcl_t *g, const char *path, const ProtobufCMessage *req, gcl_msg_fn on_msg,
                     gcl_done_fn on_done, void *arg, int timeout_ms) WEAK;
gcl_call_t *gcl_call_bidi(gcl_t *g, const char *path, gcl_msg_fn on_msg, gcl_done_fn on_done,
                          void *arg) WEAK;
int gcl_call_send(gcl_call_t *c, const ProtobufCMessage *m) WEAK;
void gcl_call_close_send(gcl_call_t *c) WEAK;
void gcl_call_cancel(gcl_call_t *c) WEAK;
int gcl_unary_sync(gcl_t *g, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                   char **errmsg) WEAK;

gcl_t *gcl_new(struct event_base *base, const char *addr, const struct gcl_opts *opts)
{
    (void)base;
    (void)opts;
    log_err("cannot connect to %s: this build has no gRPC client yet (src/lib/gcl.c)", addr);
    return NULL;
}
void gcl_free(gcl_t *g)
{
    (void)g;
}
const char *gcl_addr(const gcl_t *g)
{
    (void)g;
    return "";
}
gcl_call_t *gcl_call(gcl_t *g, const char *path, const ProtobufCMessage *req, gcl_msg_fn on_msg,
                     gcl_done_fn on_done, void *arg, int timeout_ms)
{
    (void)g, (void)path, (void)req, (void)on_msg, (void)on_done, (void)arg, (void)timeout_ms;
    fatal("gcl_call: no gRPC client in this build");
}
gcl_call_t *gcl_call_bidi(gcl_t *g, const char *path, gcl_msg_fn on_msg, gcl_done_fn on_done,
                          void *arg)
{
    (void)g, (void)path, (void)on_msg, (void)on_done, (void)arg;
    fatal("gcl_call_bidi: no gRPC client in this build");
}
int gcl_call_send(gcl_call_t *c, const ProtobufCMessage *m)
{
    (void)c, (void)m;
    return -1;
}
void gcl_call_close_send(gcl_call_t *c)
{
    (void)c;
}
void gcl_call_cancel(gcl_call_t *c)
{
    (void)c;
}
int gcl_unary_sync(gcl_t *g, const char *path, const ProtobufCMessage *req,
                   const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                   char **errmsg)
{
    (void)g, (void)path, (void)req, (void)resp_desc, (void)resp;
    *errmsg = xstrdup("no gRPC client in this build");
    return 14;
}
