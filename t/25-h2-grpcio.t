#!/usr/bin/python3
"""Stock-client compatibility of h2s: Debian's grpcio talks to t/h2echo (an
h2s echo server) over TCP and a unix socket. Prints TAP."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import concurrent.futures

import grpc

BUILD = os.environ.get("CORACLE_BUILD") or os.getcwd()
# Deadlines bound a hang only: CI's machine may be several times slower, and
# this client reads a message in some 100 us of Python (the server is not what
# takes the time: 200,000 messages take 20 s here on a busy machine).
DEADLINE = 60
n = 0
failed = 0


def ok(cond, name):
    global n, failed
    n += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, name), flush=True)
    if not cond:
        failed += 1


def ident(b):
    return b


tmp = tempfile.mkdtemp(prefix="h2grpcio.")
sock = os.path.join(tmp, "s.sock")
proc = subprocess.Popen([os.path.join(BUILD, "t", "h2echo"), "127.0.0.1:0", "unix:" + sock],
                        stdout=subprocess.PIPE)
try:
    line = proc.stdout.readline().decode()
    port = int(line.split()[1])
    ok(port > 0, "h2echo listening on %d" % port)

    for target in ("127.0.0.1:%d" % port, "unix:" + sock):
        ch = grpc.insecure_channel(target)
        echo = ch.unary_unary("/test.Echo/Echo", request_serializer=ident,
                              response_deserializer=ident)
        ok(echo(b"hello", timeout=DEADLINE) == b"hello", "%s: unary echo" % target)
        ok(echo(b"", timeout=DEADLINE) == b"", "%s: empty message" % target)
        big = os.urandom(1 << 20)
        ok(echo(big, timeout=DEADLINE) == big, "%s: 1 MiB message" % target)

        stream = ch.unary_stream("/test.Echo/Stream", request_serializer=ident,
                                 response_deserializer=ident)
        got = list(stream(b"500", timeout=DEADLINE))
        ok(got == [b"msg-%d" % i for i in range(500)], "%s: 500 streamed messages in order"
           % target)

        err = ch.unary_unary("/test.Echo/Error", request_serializer=ident,
                             response_deserializer=ident)
        msg = 'Pod "x" is invalid: ünïcödé 100% ~'
        try:
            err(("3 " + msg).encode(), timeout=DEADLINE)
            ok(False, "error raised")
        except grpc.RpcError as e:
            ok(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "%s: status code" % target)
            ok(e.details() == msg, "%s: non-ASCII/percent message round trip (%r)"
               % (target, e.details()))

        unk = ch.unary_unary("/x/y", request_serializer=ident, response_deserializer=ident)
        try:
            unk(b"", timeout=DEADLINE)
            ok(False, "unknown method raised")
        except grpc.RpcError as e:
            ok(e.code() == grpc.StatusCode.UNIMPLEMENTED and e.details() == "unknown method /x/y",
               "%s: unknown method -> UNIMPLEMENTED (%s)" % (target, e.details()))

        try:
            echo(b"x" * (2 << 20), timeout=DEADLINE)
            ok(False, "oversize raised")
        except grpc.RpcError as e:
            ok(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in e.details(),
               "%s: 2 MiB request -> RESOURCE_EXHAUSTED (%s)" % (target, e.details()))
        ok(echo(b"again", timeout=DEADLINE) == b"again", "%s: channel fine afterwards" % target)

        bidi = ch.stream_stream("/test.Echo/Bidi", request_serializer=ident,
                                response_deserializer=ident)
        reqs = [b"m%d" % i for i in range(100)]
        ok(list(bidi(iter(reqs), timeout=DEADLINE)) == reqs, "%s: bidi echo of 100 messages" % target)

        futs = [echo.future(b"f%d" % i, timeout=DEADLINE) for i in range(300)]
        ok(all(f.result() == b"f%d" % i for i, f in enumerate(futs)),
           "%s: 300 concurrent unary calls" % target)

        # a slow reader: the server queues, pauses and resumes through flow control
        it = stream(b"200000", timeout=10 * DEADLINE)
        first = next(it)
        time.sleep(1)
        rest = sum(1 for _ in it)
        ok(first == b"msg-0" and rest == 199999, "%s: slow reader gets all 200000 messages"
           % target)

        # cancel a stream midway; the server must keep serving
        it = stream(b"100000", timeout=DEADLINE)
        first = next(it)
        it.cancel()
        ok(first == b"msg-0", "%s: cancelled a long stream" % target)
        ok(echo(b"alive", timeout=DEADLINE) == b"alive", "%s: still serving after cancel" % target)
        ch.close()

    ok(proc.poll() is None, "server survived everything")
    proc.send_signal(signal.SIGTERM)
    ok(proc.wait(timeout=DEADLINE) == 0, "server exits cleanly on SIGTERM")
    ok(not os.path.exists(sock), "unix socket removed")
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)
print("1..%d" % n)
sys.exit(1 if failed else 0)
