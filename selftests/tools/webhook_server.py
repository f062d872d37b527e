#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# webhook_server.py - a real HTTP(S) server (Python's http.server) for the
# webhook sender's tests (selftests/unit/test_proxy_webhook.c). It records
# every request it is sent, and answers 200, or misbehaves as told for the
# first N requests, as an operator's endpoint may:
#
#   webhook_server.py --listen 127.0.0.1:0 --log FILE [--port-file FILE]
#                     [--answer MODE] [--first N] [--fail-first N]
#                     [--stall] [--close] [--tls-cert PEM --tls-key PEM]
#
#   --listen ADDR:PORT   where to listen ([::1]:PORT for IPv6; port 0: a
#                        free one, written to --port-file once listening)
#   --answer MODE        what the first N requests get (the rest get 200):
#       200, 500         that status, no body
#       stall            nothing, ever: the connection stays open until the
#                        client closes it
#       close            the connection closed without a word
#       garbage          a line that is not HTTP, then closed
#       drip             "HTTP/1.1 200 OK\r\n", a byte every 200 ms
#       interim          "100 Continue", then 204 (a success)
#       huge-headers     a 200 status line, then 1 MiB of header (a success
#                        for a client that reads the status line only)
#       huge-interim     "100 Continue", then 1 MiB of header that never ends
#   --first N            how many requests get MODE (default: all of them)
#   --fail-first N       the same as --answer 500 --first N
#   --stall, --close     the same as --answer stall / close, for all
#
# The log has one record a request, in the order they came, written when
# its body has been read (before it is answered):
#   request SEQ T_NS ANSWER METHOD PATH
#   header NAME: VALUE            (each, as received)
#   body LEN
#   <LEN bytes, exactly as received>
#   end
# T_NS is CLOCK_MONOTONIC in ns (time.monotonic_ns, the clock of smtpguard's
# sg_now_ns), so a test can measure the spacing of retries.
import argparse
import http.server
import os
import socket
import ssl
import sys
import threading
import time

MAX_BODY = 16 << 20
MODES = ("200", "500", "stall", "close", "garbage", "drip", "interim", "huge-headers",
         "huge-interim")


def parse_args():
    p = argparse.ArgumentParser(description="HTTP server recording webhook requests")
    p.add_argument("--listen", required=True, help="ADDR:PORT, [V6ADDR]:PORT; port 0: any")
    p.add_argument("--log", required=True, help="file the requests are recorded in")
    p.add_argument("--port-file", help="file the port is written to once listening")
    p.add_argument("--answer", choices=MODES, default="200")
    p.add_argument("--first", type=int, default=-1, help="requests that get --answer (-1: all)")
    p.add_argument("--fail-first", type=int, metavar="N")
    p.add_argument("--stall", action="store_true")
    p.add_argument("--close", action="store_true")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    a = p.parse_args()
    if a.fail_first is not None:
        a.answer, a.first = "500", a.fail_first
    if a.stall:
        a.answer, a.first = "stall", -1
    if a.close:
        a.answer, a.first = "close", -1
    host, sep, port = a.listen.rpartition(":")
    if not sep or not port.isdigit():
        p.error("--listen wants ADDR:PORT")
    a.host, a.port = host.strip("[]"), int(port)
    return a


ARGS = parse_args()
LOCK = threading.Lock()
SEQ = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webhook_server"

    def log_message(self, fmt, *args):
        pass  # the record is the log

    def handle_any(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = 0
        length = max(0, min(length, MAX_BODY))
        body = self.rfile.read(length) if length else b""
        with LOCK:
            SEQ[0] += 1
            seq = SEQ[0]
            mode = ARGS.answer if ARGS.first < 0 or seq <= ARGS.first else "200"
            rec = [("request %d %d %s %s %s\n" % (seq, time.monotonic_ns(), mode,
                                                 self.command, self.path)).encode("latin-1")]
            for name, value in self.headers.items():
                rec.append(("header %s: %s\n" % (name, value)).encode("latin-1", "replace"))
            rec.append(b"body %d\n" % len(body))
            rec.append(body + b"\nend\n")
            with open(ARGS.log, "ab") as f:
                f.write(b"".join(rec))
        self.close_connection = True
        try:
            self.answer(mode)
        except OSError:
            pass  # the client went away: that is its business

    do_POST = do_GET = do_PUT = handle_any

    def raw(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def answer(self, mode):
        if mode in ("200", "500"):
            self.send_response(int(mode))
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
        elif mode == "stall":
            # never a byte: wait for the client to give up and close
            self.connection.settimeout(None)
            while self.connection.recv(4096):
                pass
        elif mode == "close":
            self.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "garbage":
            self.raw(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
        elif mode == "drip":
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                self.raw(bytes([b]))
                time.sleep(0.2)
        elif mode == "interim":
            self.raw(b"HTTP/1.1 100 Continue\r\nX-Note: wait\r\n\r\n"
                     b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        elif mode == "huge-headers":
            self.raw(b"HTTP/1.1 200 OK\r\nX-Junk: " + b"j" * (1 << 20) + b"\r\n\r\n")
        elif mode == "huge-interim":
            self.raw(b"HTTP/1.1 100 Continue\r\nX-Junk: " + b"j" * (1 << 20))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET6 if ":" in ARGS.host else socket.AF_INET


def main():
    server = Server((ARGS.host, ARGS.port), Handler)
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    if ARGS.port_file:
        tmp = ARGS.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % server.server_address[1])
        os.rename(tmp, ARGS.port_file)  # whole, or not there
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
