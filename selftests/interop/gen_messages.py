#!/usr/bin/python3
"""gen_messages.py - writes the interoperability matrix's test messages.

Usage: gen_messages.py OUTDIR [--big]

For each message NAME it writes OUTDIR/NAME.lf and OUTDIR/NAME.crlf: the
message without its first header, the X-Interop-Id line that the harness
(selftests/interop/run.sh) puts in front of every delivery. That line is
always ID_LINE_CRLF (80) octets long in CRLF form, so the offsets below
hold on the wire (in the DATA stream, before the sender's dot-stuffing).
.lf is what a local submission (sendmail, PHP's mail()) gets and what an
MX's Maildir stores; .crlf is what an SMTP client library sends as it is.
OUTDIR/NAME.env says the envelope: "FROM TO".
--big adds the 50 MiB message.
"""
import os
import random
import sys

ID_LINE_CRLF = 80           # "X-Interop-Id: " + 64 octets + CRLF
FROM = "sender@example.org"
TO = "u@example.net"
UTF8_FROM = "jörg@example.org"
UTF8_TO = "üser@example.net"


def headers(name, frm=FROM, to=TO, extra=()):
    h = [f"From: {frm}", f"To: {to}", f"Subject: interop {name}",
         "Date: Thu, 03 Dec 2026 12:00:00 +0000",
         f"Message-ID: <{name}.interop@example.org>", "MIME-Version: 1.0"]
    h += list(extra)
    return [x.encode() for x in h]


def text_lines(rng, n, width=76):
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 +-"
    return [bytes(rng.choice(alphabet) for _ in range(width)) for _ in range(n)]


def filler_lines(total, seed):
    """Lines of 76 octets (78 with CRLF) adding up to about TOTAL octets."""
    rng = random.Random(seed)
    base = text_lines(rng, 509)         # repeat a block: fast for 50 MiB
    out, size, i = [], 0, 0
    while size + 78 <= total:
        line = base[i % len(base)]
        out.append(b"%08d " % i + line[9:])
        size += 78
        i += 1
    return out


def msg_plain1k():
    rng = random.Random(1)
    return headers("plain1k"), text_lines(rng, 12)


def msg_dots():
    body = [b"Lines that begin with dots, each must arrive as written:",
            b".", b"..", b"...", b".text after one dot", b"..two dots then text",
            b". a dot and a space", b" .", b"x.", b".\t", b"",
            b".", b"", b"the last line is plain"]
    return headers("dots"), body


def msg_line998():
    body = [b"the next line is exactly 998 octets:",
            (b"0123456789" * 100)[:998],
            b"and the one after it 997:", (b"abcdefghij" * 100)[:997], b"end"]
    return headers("line998"), body


def msg_utf8():
    text = ("Grüße aus Köln, ĉiuĵaŭde, Ελληνικά, русский, 日本語の本文, emoji 🙂\n"
            "8-bit octets in every line: ä ö ü ß é è ñ ø å\n") * 8
    return (headers("utf8", extra=["Content-Type: text/plain; charset=utf-8",
                                   "Content-Transfer-Encoding: 8bit"]),
            [x.encode() for x in text.rstrip("\n").split("\n")])


def msg_octets():
    """Every octet value but NUL, CR and LF (which 8BITMIME does not allow
    bare), C0 controls, DEL and all of 0x80-0xFF, in lines of varied
    length: the bytes of a binary attachment sent as 8bit."""
    rng = random.Random(8)
    octets = bytes(b for b in range(1, 256) if b not in (10, 13))
    body = [octets, octets[::-1]]
    for _ in range(64):
        n = rng.randint(1, 998)
        line = bytes(rng.choice(octets) for _ in range(n))
        body.append(b"x" + line[1:] if line[:1] == b"." else line)
    return (headers("octets", extra=["Content-Type: application/octet-stream",
                                     "Content-Transfer-Encoding: 8bit"]), body)


def msg_empty():
    return headers("empty"), None       # headers, the blank line, nothing


def msg_big(name, size, seed):
    h = headers(name)
    hsize = ID_LINE_CRLF + sum(len(x) + 2 for x in h) + 2
    return h, filler_lines(size - hsize, seed)


def msg_boundary():
    """CRLF split across 16384 (CR at 16383, LF at 16384), a line "." right
    at 32768, CRLF ending exactly at 65536 and a "." line beginning there,
    the same around 131072: octet offsets of the message in CRLF form."""
    h = headers("boundary")
    pos = ID_LINE_CRLF + sum(len(x) + 2 for x in h) + 2
    body = []

    def fill_to(target):   # lines until a line ends so that its LF is at TARGET-1
        nonlocal pos
        while target - pos > 200:
            body.append(b"f" * 76)
            pos += 78
        n = target - pos - 2
        body.append(b"g" * n)
        pos += n + 2

    fill_to(16385)                      # CR at 16383, LF at 16384
    fill_to(32768)                      # the next line begins at 32768
    body.append(b".")
    pos += 3
    body.append(b".. dot-stuffed right after a chunk edge")
    pos += len(body[-1]) + 2
    fill_to(65536)                      # CRLF ends at 65536
    body.append(b".")
    pos += 3
    fill_to(131071)                     # CR at 131069.. LF at 131070; next line at 131071
    body.append(b"a line across 131072")
    pos += len(body[-1]) + 2
    body.append(b"end")
    return h, body


def msg_smtputf8():
    return (headers("smtputf8", UTF8_FROM, UTF8_TO,
                    ["Content-Type: text/plain; charset=utf-8",
                     "Content-Transfer-Encoding: 8bit"]),
            [b"An SMTPUTF8 message: envelope and header addresses with UTF-8 local parts.",
             "Jörg an Üser.".encode()])


def write(outdir, name, h, body, frm=FROM, to=TO):
    for ext, eol in (("lf", b"\n"), ("crlf", b"\r\n")):
        with open(os.path.join(outdir, f"{name}.{ext}"), "wb") as f:
            f.write(eol.join(h) + eol + eol)
            if body is not None:
                f.write(eol.join(body) + eol)
    with open(os.path.join(outdir, f"{name}.env"), "w", encoding="utf-8") as f:
        f.write(f"{frm} {to}\n")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: gen_messages.py OUTDIR [--big]")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    write(outdir, "plain1k", *msg_plain1k())
    write(outdir, "dots", *msg_dots())
    write(outdir, "line998", *msg_line998())
    write(outdir, "utf8", *msg_utf8())
    write(outdir, "octets", *msg_octets())
    write(outdir, "empty", *msg_empty())
    write(outdir, "boundary", *msg_boundary())
    write(outdir, "big5m", *msg_big("big5m", 5 * 1024 * 1024, 5))
    write(outdir, "smtputf8", *msg_smtputf8(), UTF8_FROM, UTF8_TO)
    if "--big" in sys.argv[2:]:
        write(outdir, "big50m", *msg_big("big50m", 50 * 1024 * 1024, 50))


if __name__ == "__main__":
    main()
