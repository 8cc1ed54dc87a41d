#!/usr/bin/python3
"""h2s survives hostile bytes: t/h2echo gets valid HTTP/2 gRPC requests
with random bytes flipped, cut or appended (fixed seed), random garbage,
and abrupt closes; after each batch a well-formed request must still be
answered. Prints TAP."""
import os
import random
import signal
import socket
import struct
import subprocess
import sys

BUILD = os.environ.get("CORACLE_BUILD") or os.getcwd()
n = 0
failed = 0


def ok(cond, name):
    global n, failed
    n += 1
    print("%sok %d - %s" % ("" if cond else "not ", n, name), flush=True)
    if not cond:
        failed += 1


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(typ, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">I", sid) + payload


def lit(name, value):
    # HPACK literal header field without indexing, new name, no Huffman
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def grpc_request(sid, path=b"/test.Echo/Echo", msg=b"hello", end=True):
    hdrs = (lit(b":method", b"POST") + lit(b":scheme", b"http") + lit(b":path", path) +
            lit(b":authority", b"x") + lit(b"content-type", b"application/grpc") +
            lit(b"te", b"trailers"))
    body = b"\x00" + struct.pack(">I", len(msg)) + msg
    return frame(1, 4, sid, hdrs) + frame(0, 1 if end else 0, sid, body)


def conversation():
    return (PREFACE + frame(4, 0, 0, b"") + grpc_request(1) + grpc_request(3, msg=b"x" * 100) +
            grpc_request(5, path=b"/test.Echo/Stream", msg=b"20"))


def exchange(port, data, timeout=10.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                break
            out += b
        return out
    except (BrokenPipeError, ConnectionResetError):
        return b""
    finally:
        s.close()


proc = subprocess.Popen([os.path.join(BUILD, "t", "h2echo"), "127.0.0.1:0"],
                        stdout=subprocess.PIPE)
try:
    port = int(proc.stdout.readline().split()[1])
    good = exchange(port, conversation())
    ok(b"hello" in good and b"msg-19" in good, "well-formed conversation answered")

    rnd = random.Random(1234)
    base = conversation()
    for batch in range(5):
        for i in range(100):
            d = bytearray(base)
            kind = rnd.randrange(4)
            if kind == 0:  # flip bytes after the preface
                for _ in range(rnd.randrange(1, 8)):
                    d[rnd.randrange(24, len(d))] = rnd.randrange(256)
            elif kind == 1:  # cut
                d = d[:rnd.randrange(len(d))]
            elif kind == 2:  # append junk
                d += bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
            else:  # pure garbage, sometimes starting like a request
                pre = rnd.choice([b"", b"GET ", b"PRI * HTTP/2.0\r\n", b"HEAD /"])
                d = pre + bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
            exchange(port, bytes(d), timeout=1.0)
        ok(proc.poll() is None and b"hello" in exchange(port, conversation()),
           "batch %d of 100 mangled inputs: server alive and answering" % batch)

    # many streams opened and reset at once (rapid reset): connection goes, server stays
    d = PREFACE + frame(4, 0, 0, b"")
    for sid in range(1, 4000, 2):
        d += grpc_request(sid, end=False)[:-0 or None] + frame(3, 0, sid, struct.pack(">I", 8))
    exchange(port, d, timeout=3.0)
    ok(proc.poll() is None and b"hello" in exchange(port, conversation()),
       "rapid reset flood: server alive and answering")

    # A client that sends 900 requests (4 KiB answers each), reads nothing
    # for a second (the server's output passes its high-water mark: it stops
    # reading), then reads: every answer must arrive. (A drained output must
    # wake the paused connection, whoever wrote it.)
    import threading
    import time
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", port))
    window = (1 << 31) - 1
    d = PREFACE + frame(4, 0, 0, struct.pack(">HI", 4, window)) + \
        frame(8, 0, 0, struct.pack(">I", window - 65535))
    for sid in range(1, 1800, 2):
        d += grpc_request(sid, msg=b"y" * 4096)
    sender = threading.Thread(target=lambda: s.sendall(d), daemon=True)
    sender.start()
    time.sleep(1.0)
    s.settimeout(60)
    buf, ended = b"", 0
    try:
        while ended < 900:
            b = s.recv(1 << 16)
            if not b:
                break
            buf += b
            while len(buf) >= 9:
                fl = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + fl:
                    break
                typ, flags = buf[3], buf[4]
                if typ == 1 and flags & 1:
                    ended += 1
                elif typ == 4 and not flags & 1:
                    s.sendall(frame(4, 1, 0, b""))
                buf = buf[9 + fl:]
    except socket.timeout:
        pass
    s.close()
    ok(ended == 900, "a client that reads nothing for a while, then reads, gets all 900 answers (%d)" % ended)
    proc.send_signal(signal.SIGTERM)
    ok(proc.wait(timeout=60) == 0, "clean exit")
finally:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
print("1..%d" % n)
sys.exit(1 if failed else 0)
