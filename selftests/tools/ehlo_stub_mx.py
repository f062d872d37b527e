#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# ehlo_stub_mx.py - an MX that only greets and answers EHLO with the
# keywords it is given (an MX offering what Postfix does not: BURL,
# BINARYMIME), so a test can see which keywords a relay in between lets
# through. Every other command gets "502 5.5.1 stub", QUIT "221". Serves
# connections one after another until killed. Standard library only.
#
#   ehlo_stub_mx.py ADDR PORT KEYWORD...   (a keyword with spaces: quote it,
#                                           e.g. "BURL imap")
import socket
import sys


def serve(conn, keywords):
    conn.sendall(b"220 stub.example.net ESMTP stub\r\n")
    rfile = conn.makefile("rb")
    while True:
        line = rfile.readline(4096)
        if not line:
            return
        verb = line.strip().split(b" ", 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            lines = ["stub.example.net"] + keywords
            out = "".join("250%s%s\r\n" % ("-" if i < len(lines) - 1 else " ", k)
                          for i, k in enumerate(lines))
            conn.sendall(out.encode())
        elif verb == b"QUIT":
            conn.sendall(b"221 2.0.0 bye\r\n")
            return
        else:
            conn.sendall(b"502 5.5.1 stub\r\n")


def main(argv):
    if len(argv) < 2:
        sys.stderr.write("usage: ehlo_stub_mx.py ADDR PORT KEYWORD...\n")
        return 2
    family = socket.AF_INET6 if ":" in argv[0] else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((argv[0], int(argv[1])))
    lsock.listen(16)
    while True:
        conn, _ = lsock.accept()
        conn.settimeout(30)
        try:
            serve(conn, argv[2:])
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
