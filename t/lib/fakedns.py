#!/usr/bin/python3
"""fakedns: a tiny upstream nameserver for tests (stdlib only), on ADDR
port 53, UDP and TCP:

  big.example        over UDP an empty answer with TC set; over TCP A 203.0.113.8
  *.example          A 203.0.113.7
  anything else      NXDOMAIN

usage: fakedns.py ADDR   (prints "ready" once both sockets listen)
"""
import socket
import struct
import sys
import threading


def qname(msg):
    """The question's name (lower case, no trailing dot) and where the question ends."""
    labels, i = [], 12
    while msg[i]:
        labels.append(msg[i + 1:i + 1 + msg[i]].decode("ascii", "replace").lower())
        i += 1 + msg[i]
    return ".".join(labels), i + 5


def answer(q, tcp):
    qid, flags = struct.unpack(">HH", q[:4])
    name, end = qname(q)
    head = lambda rcode, an, tc=0: struct.pack(">HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode | (tc << 9),
                                               1, an, 0, 0)
    question = q[12:end]
    if name == "big.example" and not tcp:
        return head(0, 0, tc=1) + question
    if name == "big.example" or name.endswith(".example"):
        ip = "203.0.113.8" if name == "big.example" else "203.0.113.7"
        rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 30, 4) + socket.inet_aton(ip)
        qtype = struct.unpack(">H", q[end - 4:end - 2])[0]
        return head(0, 1) + question + rr if qtype == 1 else head(0, 0) + question
    return head(3, 0) + question


def serve_udp(s):
    while True:
        q, peer = s.recvfrom(4096)
        try:
            s.sendto(answer(q, False), peer)
        except Exception:
            pass


def serve_tcp_conn(c):
    with c:
        while True:
            h = c.recv(2)
            if len(h) < 2:
                return
            n = struct.unpack(">H", h)[0]
            q = b""
            while len(q) < n:
                b = c.recv(n - len(q))
                if not b:
                    return
                q += b
            a = answer(q, True)
            c.sendall(struct.pack(">H", len(a)) + a)


def serve_tcp(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve_tcp_conn, args=(c,), daemon=True).start()


u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((sys.argv[1], 53))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((sys.argv[1], 53))
t.listen(16)
threading.Thread(target=serve_tcp, args=(t,), daemon=True).start()
print("ready", flush=True)
serve_udp(u)
