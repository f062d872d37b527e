#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# smtp_dialogue.py - plays a scripted SMTP client session byte for byte, for
# tests that need exact control over what goes on the wire (pipelined
# commands in one write, ESMTP parameters, UTF-8 addresses) and a plain
# transcript of what came back. Python's standard library only, raw
# sockets, so it runs inside a VM's namespace (lab_exec VM python3 ...).
#
#   smtp_dialogue.py [--timeout S] HOST PORT SCRIPT
#
# SCRIPT is a file (UTF-8), one step a line; blank lines and lines starting
# with '#' are skipped:
#   send LINE     queue LINE (CRLF added); nothing is written yet
#   data FILE     queue FILE as a message body: LF or CRLF line ends sent as
#                 CRLF, lines starting with '.' dot-stuffed, then ".\r\n";
#                 skipped ("-- data not sent") unless the last reply was 354
#   bdat FILE N   queue FILE as a message body in BDAT chunks (RFC 3030) of N
#                 bytes: LF line ends sent as CRLF, nothing stuffed, the
#                 last chunk "BDAT n LAST"; one reply for each chunk
#   flush         write everything queued in ONE send() call, then read one
#                 reply for each queued item, in order
#   cmd LINE      send LINE, then flush (one command, one reply)
#   wait          read one more reply without sending (the greeting is read
#                 before the script starts, without a step)
#
# The transcript goes to stdout: "-> LINE" for each line written ("-> <data
# N bytes>" for a body), "<- LINE" for each reply line as received (CRLF
# removed), so the last line of each reply is the one matching
# '^<- [0-9]{3} '. Exit status: 0 the script ran to its end (whatever the
# codes were), 1 the connection failed, closed or timed out early (the
# transcript so far is printed), 2 a usage error.
import socket
import sys


def usage():
    sys.stderr.write("usage: smtp_dialogue.py [--timeout S] HOST PORT SCRIPT\n")
    sys.exit(2)


def read_reply(rfile):
    """One reply, all its lines; raises EOFError if the peer closes."""
    while True:
        line = rfile.readline(4096)
        if not line:
            raise EOFError("connection closed by the server")
        text = line.rstrip(b"\r\n").decode("utf-8", "replace")
        print("<- " + text, flush=True)
        if len(text) < 4 or text[3] != "-":
            return text


def body_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for line in lines:
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.startswith(b"."):
            line = b"." + line
        out.append(line + b"\r\n")
    out.append(b".\r\n")
    return b"".join(out)


def bdat_chunks(path, size):
    """[(bytes, what to print)], one a BDAT chunk; the last one is LAST."""
    with open(path, "rb") as f:
        raw = f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    pieces = [raw[i:i + size] for i in range(0, len(raw), size)] or [b""]
    out = []
    for i, piece in enumerate(pieces):
        cmd = "BDAT %d%s" % (len(piece), " LAST" if i == len(pieces) - 1 else "")
        out.append((cmd.encode() + b"\r\n" + piece, cmd))
    return out


def main(argv):
    timeout = 10.0
    if len(argv) >= 2 and argv[0] == "--timeout":
        timeout = float(argv[1])
        argv = argv[2:]
    if len(argv) != 3:
        usage()
    host, port, script = argv[0], int(argv[1]), argv[2]
    with open(script, "rb") as f:
        steps = [l.rstrip(b"\r\n") for l in f.read().split(b"\n")]

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        print("*** connect to %s port %d: %s" % (host, port, e), flush=True)
        return 1
    sock.settimeout(timeout)
    rfile = sock.makefile("rb")
    queued = []  # (bytes, what to print)
    last = ""
    try:
        last = read_reply(rfile)
        for step in steps:
            if not step.strip() or step.startswith(b"#"):
                continue
            verb, _, arg = step.partition(b" ")
            verb = verb.decode()
            if verb in ("send", "cmd"):
                queued.append((arg + b"\r\n", arg.decode("utf-8", "replace")))
            elif verb == "data":
                if not last.startswith("354"):
                    print("-- data not sent (the last reply was not 354)", flush=True)
                    continue
                body = body_bytes(arg.decode())
                queued.append((body, "<data %d bytes>" % len(body)))
            elif verb == "bdat":
                path, _, size = arg.decode().partition(" ")
                queued.extend(bdat_chunks(path, int(size)))
            elif verb not in ("flush", "wait"):
                sys.stderr.write("smtp_dialogue.py: unknown step: %r\n" % step)
                return 2
            if verb in ("cmd", "flush"):
                for _, shown in queued:
                    print("-> " + shown, flush=True)
                sock.sendall(b"".join(b for b, _ in queued))
                n = len(queued)
                queued = []
                for _ in range(n):
                    last = read_reply(rfile)
            elif verb == "wait":
                last = read_reply(rfile)
    except (OSError, EOFError) as e:
        print("*** %s" % e, flush=True)
        return 1
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
