#!/usr/bin/python3
"""gcl against a stock server: Debian's grpcio serves generic handlers and
t/gclcall (one gcl call per run) talks to it. Prints TAP."""
import os
import subprocess
import sys
import time
from concurrent import futures

import grpc

BUILD = os.environ.get("CORACLE_BUILD") or os.getcwd()
n = 0
failed = 0


def ok(cond, name):
    global n, failed
    n += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, name), flush=True)
    if not cond:
        failed += 1


def echo(req, ctx):
    return req


def stream(req, ctx):
    for i in range(int(req)):
        yield b"msg-%d" % i


def error(req, ctx):
    code, _, msg = req.decode().partition(" ")
    ctx.abort(grpc.StatusCode.INVALID_ARGUMENT if code == "3" else grpc.StatusCode.NOT_FOUND, msg)


def slow(req, ctx):
    time.sleep(2)
    return req


def bidi(reqs, ctx):
    for r in reqs:
        yield r


ident = dict(request_deserializer=None, response_serializer=None)
handlers = grpc.method_handlers_generic_handler("test.Echo", {
    "Echo": grpc.unary_unary_rpc_method_handler(echo),
    "Stream": grpc.unary_stream_rpc_method_handler(stream),
    "Error": grpc.unary_unary_rpc_method_handler(error),
    "Slow": grpc.unary_unary_rpc_method_handler(slow),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handlers,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()


def call(path, req, *extra):
    out = subprocess.run([os.path.join(BUILD, "t", "gclcall"), "127.0.0.1:%d" % port, path, req]
                         + list(extra), capture_output=True, timeout=120)
    return out.stdout.decode().rstrip("\n").split(" ", 4)


try:
    r = call("/test.Echo/Echo", "hello")
    ok(r == ["0", "1", "hello", "hello", ""], "unary echo: %s" % r)
    r = call("/test.Echo/Stream", "1000")
    ok(r == ["0", "1000", "msg-0", "msg-999", ""], "1000 streamed messages: %s" % r[:4])
    r = call("/test.Echo/Error", "3 bad thing: ünï 100%")
    ok(r == ["3", "0", "-", "-", "bad thing: ünï 100%"], "status and message: %s" % r)
    r = call("/test.Echo/Nope", "x")
    ok(r[0] == "12", "unknown method -> UNIMPLEMENTED: %s" % r)
    r = call("/test.Echo/Slow", "x", "300")
    ok(r[0] == "4", "deadline -> DEADLINE_EXCEEDED: %s" % r)
    r = call("/test.Echo/Bidi", "m", "0", "bidi")
    ok(r[:4] == ["0", "3", "m", "m"], "bidi: %s" % r)
    r = call("/test.Echo/Echo", "@3000000")
    ok(r[:2] == ["0", "1"] and len(r[2]) == 3000000, "3 MB message echoed")
    r = call("/test.Echo/Echo", "@5000000")
    ok(r[0] == "8", "request over grpcio's 4 MiB default -> RESOURCE_EXHAUSTED (%s)" % r[0])
finally:
    server.stop(0)
r = call("/test.Echo/Echo", "hello")
ok(r[0] == "14" and ("127.0.0.1:%d" % port) in r[4], "server gone -> UNAVAILABLE: %s" % r)
print("1..%d" % n)
sys.exit(1 if failed else 0)
