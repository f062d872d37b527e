#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# bdat_send.py - one message sent with CHUNKING (RFC 3030), as Exim or
# Exchange send: EHLO, MAIL, RCPT (pipelined when offered), then the
# message's bytes in BDAT chunks of --chunk bytes, the last one with LAST
# (or --split-at: chunks cut at those offsets, so a test can put a CRLF
# across a chunk's end). Python's standard library only, so it runs inside
# a VM's namespace. Every line it sends and gets is printed ("> ", "< "),
# the chunks' bytes as "> [N octets]". For benchmarks: --data sends the
# same message by DATA instead (dot-stuffed), --count N sends it N times
# (a session each, nothing printed but a last line "TIMES ms ms ...": each
# session's time from the connect to the reply to its message).
#
#   bdat_send.py --server IP [--port 25] --from A --to B [--to C]
#                --file MESSAGE (--chunk N | --split-at O1,O2,...)
#                [--helo NAME] [--timeout S] [--require-chunking]
#                [--data] [--count N]
#
# Exit 0: the reply to the last chunk was 2xx; 1: it was not (or a reply
# before it ended the attempt); 2: CHUNKING not offered with
# --require-chunking; 3: a connection or protocol error.
import argparse
import socket
import sys
import time

QUIET = False


def say(text):
    if not QUIET:
        print(text, flush=True)


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        say("< " + text)
        lines.append(text)
        if len(text) < 4 or text[3] != "-":
            return int(text[:3]), lines


def stuffed(body):
    # RFC 5321 4.5.2: a line that begins with a dot gets another; the body
    # ends with CRLF before the final dot
    out = body.replace(b"\r\n.", b"\r\n..")
    if out.startswith(b"."):
        out = b"." + out
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out + b".\r\n"


def main():
    global QUIET
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--from", dest="sender", required=True)
    ap.add_argument("--to", action="append", required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--chunk", type=int, default=0)
    ap.add_argument("--split-at", default="")
    ap.add_argument("--helo", default="vm.example.org")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--require-chunking", action="store_true")
    ap.add_argument("--data", action="store_true")
    ap.add_argument("--count", type=int, default=0)
    a = ap.parse_args()
    if a.count > 0:
        QUIET = True
        times = []
        for _ in range(a.count):
            t0 = time.monotonic()
            rc = send(a)
            if rc != 0:
                print("# session %d failed (%d)" % (len(times) + 1, rc), flush=True)
                return rc
            times.append((time.monotonic() - t0) * 1000)
        print("TIMES " + " ".join("%.2f" % t for t in times), flush=True)
        return 0
    return send(a)


def send(a):
    with open(a.file, "rb") as fh:
        body = fh.read()
    if a.split_at:
        cuts = sorted({int(x) for x in a.split_at.split(",") if x} | {0, len(body)})
    elif a.chunk > 0:
        cuts = list(range(0, len(body), a.chunk)) + [len(body)]
    else:
        cuts = [0, len(body)]
    chunks = [body[cuts[i]:cuts[i + 1]] for i in range(len(cuts) - 1)] or [b""]

    try:
        sock = socket.create_connection((a.server, a.port), timeout=a.timeout)
        f = sock.makefile("rb")
        code, _ = read_reply(f)
        if code != 220:
            return 1

        def command(line):
            say("> " + line)
            sock.sendall(line.encode("utf-8") + b"\r\n")

        command("EHLO " + a.helo)
        code, lines = read_reply(f)
        keywords = {l[4:].split(" ")[0].upper() for l in lines[1:]}
        if code != 250:
            return 1
        if "CHUNKING" not in keywords and not a.data:
            say("# CHUNKING not offered")
            if a.require_chunking:
                return 2
        mail_params = " SMTPUTF8" if any(ord(c) > 127 for c in a.sender + "".join(a.to)) else ""
        command("MAIL FROM:<%s>%s" % (a.sender, mail_params))
        if read_reply(f)[0] != 250:
            return 1
        accepted = 0
        for rcpt in a.to:
            command("RCPT TO:<%s>" % rcpt)
            if read_reply(f)[0] in (250, 251):
                accepted += 1
        if not accepted:
            return 1
        if a.data:
            command("DATA")
            if read_reply(f)[0] != 354:
                return 1
            sock.sendall(stuffed(body))
            say("> [message, %d octets, and the dot]" % len(body))
            code, _ = read_reply(f)
            if code // 100 != 2:
                return 1
            chunks = []
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            line = "BDAT %d%s" % (len(chunk), " LAST" if last else "")
            say("> %s [%d octets]" % (line, len(chunk)))
            sock.sendall(line.encode() + b"\r\n" + chunk)
            code, _ = read_reply(f)
            if code // 100 != 2:
                return 1
        command("QUIT")
        try:
            read_reply(f)
        except (ConnectionError, OSError):
            pass
        return 0
    except (ConnectionError, OSError, ValueError) as e:
        say("# error: %s" % e)
        return 3


if __name__ == "__main__":
    sys.exit(main())
