#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# mx_front.py - a misbehaving MX made of a real one (lab/mx_special.sh): a
# TCP relay in the MX's namespace, in front of the lab's Postfix, that
# passes every byte both ways unaltered and only changes when they go, or
# cuts the connection:
#
#   mx_front.py --listen ADDR [--listen ADDR...] --port 25 --upstream-port 2525
#               [--greet-delay S] [--reply-delay S]
#               [--drop-first-data N [--drop-how reset|close]] [--log FILE]
#
#   --listen ADDR        an address to listen on (IPv4 or IPv6, no brackets);
#                        a connection to ADDR:PORT goes to ADDR:UPSTREAM-PORT
#   --greet-delay S      the MX's greeting is held S seconds (a slow MX)
#   --reply-delay S      each later reply is held S seconds after it came or
#                        after the reply before it went, whichever is later
#                        (a tarpit: pipelined replies come S seconds apart).
#                        After the MX's 220 to STARTTLS the stream is TLS:
#                        each chunk then goes S seconds after it came.
#   --drop-first-data N  the first attempt of each message is cut after N
#                        bytes of its body (DATA or BDAT), or, when the body
#                        is shorter, just before its end (the dot, or the
#                        LAST chunk's last byte): the MX never sees the end,
#                        so never commits it. A message is known again by
#                        its Message-ID (else by a digest of its first N
#                        body bytes): its later attempts pass untouched.
#   --drop-how           reset (the default: an RST both ways) or close (a
#                        FIN both ways)
#   --log FILE           one line per connection and per decision:
#                        "connection FROM", "dropped KEY after N body bytes",
#                        "passed KEY"; "listening" once every --listen is up
#
# Only the Python standard library; asyncio, one process.
import argparse
import asyncio
import hashlib
import re
import socket
import struct
import sys
import time

MSGID_RE = re.compile(rb'(?im)^message-id:[ \t]*(<[^>\r\n]*>)')
HEADER_KEEP = 65536	# body bytes kept to find the Message-ID in
REPLY_MAX = 65536	# a "reply" longer than this goes on as it is


class Log:
    def __init__(self, path):
        self.f = open(path, 'a', buffering=1) if path else sys.stdout

    def say(self, *words):
        self.f.write(' '.join(str(w) for w in words) + '\n')
        self.f.flush()


class Message:
    """One message's body as it passes: its first bytes, and what was
    decided of it."""

    def __init__(self):
        self.seen = 0
        self.head = b''
        self.decided = None	# None, 'drop' or 'pass'
        self.key = None

    def feed(self, data):
        if len(self.head) < HEADER_KEEP:
            self.head += data[:HEADER_KEEP - len(self.head)]
        self.seen += len(data)

    def make_key(self, n):
        m = MSGID_RE.search(self.head)
        if m:
            return m.group(1).decode('utf-8', 'replace')
        return 'sha256:' + hashlib.sha256(self.head[:n]).hexdigest()[:16]


class Connection:
    """One client's session: the client's stream read as SMTP (for the
    dropper: where a body starts and ends), the MX's as replies (for the
    delays), both passed on byte for byte."""

    def __init__(self, front, creader, cwriter):
        self.front = front
        self.creader, self.cwriter = creader, cwriter
        self.ureader = self.uwriter = None
        self.state = 'cmd'	# cmd, wait354, data, bdat, raw
        self.line = b''
        self.tail = b'\r\n'	# the last bytes of the body, for its end
        self.bdat_left = 0
        self.bdat_last = False
        self.msg = None
        self.cut = False

    # --- the client's stream (to the MX)

    def _decide(self):
        """The message's first attempt is cut, later ones pass."""
        f = self.front
        self.msg.key = self.msg.make_key(f.drop_after)
        if self.msg.key in f.seen:
            self.msg.decided = 'pass'
            f.log.say('passed', self.msg.key)
        else:
            f.seen.add(self.msg.key)
            self.msg.decided = 'drop'
            f.log.say('dropped', self.msg.key, 'after', self.msg.seen, 'body bytes')

    def _body(self, data, end_at):
        """Body bytes data, whose end (the dot line, the LAST chunk's last
        byte) starts at end_at (None: not in data). Returns how many of
        them go on before a cut, or None for all of them."""
        f = self.front
        if not f.drop_after or (self.msg and self.msg.decided == 'pass'):
            return None
        if self.msg is None:
            self.msg = Message()
        before = self.msg.seen
        upto = len(data) if end_at is None else end_at
        if before + upto >= f.drop_after:
            take = f.drop_after - before
            self.msg.feed(data[:take])
            self._decide()
            return take if self.msg.decided == 'drop' else None
        self.msg.feed(data[:upto])
        if end_at is not None:
            self._decide()
            return end_at if self.msg.decided == 'drop' else None
        return None

    def from_client(self, data):
        """What of data goes to the MX, and whether the connection is cut
        after it."""
        if not self.front.drop_after or self.state == 'raw':
            return data, False
        out = b''
        while data:
            if self.state == 'cmd' or self.state == 'wait354':
                # a client that sends after DATA without a 354 heard a refusal
                self.state = 'cmd'
                nl = data.find(b'\n')
                if nl < 0:
                    self.line += data
                    out += data
                    break
                line, data = self.line + data[:nl + 1], data[nl + 1:]
                out += line[len(self.line):]
                self.line = b''
                self._command(line)
                if self.state == 'wait354' and data:
                    self.state = 'cmd'	# it did not wait: a refusal came
            elif self.state == 'data':
                joined = self.tail + data
                at = joined.find(b'\r\n.\r\n')
                # the dot line's start in data (0 when its dot went in the
                # chunk before: the MX has not seen the end without its
                # CRLF), and the end of data's end
                end_at = None if at < 0 else max(0, at + 2 - len(self.tail))
                take = self._body(data, end_at)
                if take is not None:
                    return out + data[:take], True
                if end_at is None:
                    out += data
                    self.tail = joined[-4:]
                    break
                end = at + 5 - len(self.tail)
                out += data[:end]
                data = data[end:]
                self.state = 'cmd'
                self.msg = None
                self.tail = b'\r\n'
            elif self.state == 'bdat':
                n = min(self.bdat_left, len(data))
                last = self.bdat_last and n == self.bdat_left
                take = self._body(data[:n], n - 1 if last else None)
                if take is not None:
                    return out + data[:take], True
                out += data[:n]
                data = data[n:]
                self.bdat_left -= n
                if not self.bdat_left:
                    self.state = 'cmd'
                    if self.bdat_last:
                        self.msg = None
            else:
                out += data
                break
        return out, False

    def _command(self, line):
        words = line.strip().split()
        verb = words[0].upper() if words else b''
        if verb == b'DATA' and len(words) == 1:
            self.state = 'wait354'
            self.msg = None
            self.tail = b'\r\n'
        elif verb == b'BDAT' and len(words) >= 2 and words[1].isdigit():
            self.bdat_left = int(words[1])
            self.bdat_last = len(words) > 2 and words[2].upper() == b'LAST'
            self.state = 'bdat' if self.bdat_left else 'cmd'
            if self.bdat_left == 0 and self.bdat_last:
                self.msg = None
        elif verb in (b'RSET', b'MAIL'):
            self.msg = None

    # --- the MX's stream (to the client)

    @staticmethod
    def _take_reply(buf):
        """A whole reply from the front of buf, and the rest; or None."""
        pos = 0
        while True:
            nl = buf.find(b'\n', pos)
            if nl < 0:
                return None
            line = buf[pos:nl + 1]
            pos = nl + 1
            if len(line) < 4 or line[3:4] != b'-':
                return buf[:pos], buf[pos:]

    async def mx_to_client(self):
        f = self.front
        queue = asyncio.Queue()

        async def reader():
            buf, greeted, raw = b'', False, False
            while True:
                try:
                    data = await self.ureader.read(65536)
                except (ConnectionError, OSError):
                    data = b''
                now = time.monotonic()
                if not data:
                    if buf:
                        await queue.put((now, f.reply_delay, buf, False))
                    await queue.put(None)
                    return
                if raw:
                    await queue.put((now, f.reply_delay, data, True))
                    continue
                buf += data
                while True:
                    got = self._take_reply(buf)
                    if got is None:
                        if len(buf) > REPLY_MAX:
                            await queue.put((now, f.reply_delay, buf, False))
                            buf = b''
                        break
                    reply, buf = got
                    delay = f.reply_delay if greeted else f.greet_delay
                    tls = greeted and reply.startswith(b'220')
                    greeted = True
                    await queue.put((now, delay, reply, False))
                    if tls:	# the answer to STARTTLS: TLS from here on
                        raw = True
                        if buf:
                            await queue.put((now, f.reply_delay, buf, True))
                            buf = b''
                        break

        task = asyncio.ensure_future(reader())
        last = 0.0
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                came, delay, data, raw = item
                at = came + delay if raw else max(came, last) + delay
                wait = at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self.cut:
                    break
                if data.startswith(b'354') and self.state == 'wait354':
                    self.state = 'data'
                if data.startswith(b'220') and last and not raw and self.state == 'cmd':
                    self.state = 'raw'	# after STARTTLS: nothing more to read
                self.cwriter.write(data)
                await self.cwriter.drain()
                last = time.monotonic()
        except (ConnectionError, OSError):
            pass
        finally:
            task.cancel()
        if not self.cut:
            try:
                self.cwriter.write_eof()
            except (ConnectionError, OSError, RuntimeError):
                pass

    async def client_to_mx(self):
        try:
            while True:
                data = await self.creader.read(65536)
                if not data:
                    break
                out, cut = self.from_client(data)
                if out:
                    self.uwriter.write(out)
                    await self.uwriter.drain()
                if cut:
                    self.cut = True
                    self._cut()
                    return
        except (ConnectionError, OSError):
            pass
        if not self.cut:
            try:
                self.uwriter.write_eof()
            except (ConnectionError, OSError, RuntimeError):
                pass

    def _cut(self):
        for w in (self.cwriter, self.uwriter):
            sock = w.get_extra_info('socket')
            try:
                if self.front.drop_how == 'reset' and sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack('ii', 1, 0))
                    w.transport.abort()
                else:
                    w.close()
            except OSError:
                pass

    async def run(self):
        local = self.cwriter.get_extra_info('sockname')
        peer = self.cwriter.get_extra_info('peername')
        self.front.log.say('connection', peer[0], peer[1])
        try:
            self.ureader, self.uwriter = await asyncio.open_connection(
                local[0], self.front.upstream_port)
        except OSError as e:
            self.front.log.say('upstream', local[0], self.front.upstream_port, 'failed:', e)
            self.cwriter.close()
            return
        await asyncio.gather(self.client_to_mx(), self.mx_to_client())
        for w in (self.cwriter, self.uwriter):
            try:
                w.close()
            except OSError:
                pass


class Front:
    def __init__(self, args):
        self.greet_delay = args.greet_delay
        self.reply_delay = args.reply_delay
        self.drop_after = args.drop_first_data
        self.drop_how = args.drop_how
        self.upstream_port = args.upstream_port
        self.seen = set()
        self.log = Log(args.log)

    async def serve(self, addrs, port):
        servers = []
        for addr in addrs:
            fam = socket.AF_INET6 if ':' in addr else socket.AF_INET
            sock = socket.socket(fam, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.drop_after:
                # a small window: the client cannot have sent a short
                # message's end before the cut, however fast it is
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.bind((addr, port))
            sock.listen(128)
            servers.append(await asyncio.start_server(
                lambda r, w: Connection(self, r, w).run(), sock=sock))
        self.log.say('listening', ' '.join(addrs), port)
        await asyncio.gather(*(s.serve_forever() for s in servers))


def main():
    p = argparse.ArgumentParser(description='a slow or dropping MX in front of a real one')
    p.add_argument('--listen', action='append', required=True)
    p.add_argument('--port', type=int, default=25)
    p.add_argument('--upstream-port', type=int, required=True)
    p.add_argument('--greet-delay', type=float, default=0.0)
    p.add_argument('--reply-delay', type=float, default=0.0)
    p.add_argument('--drop-first-data', type=int, default=0, metavar='N')
    p.add_argument('--drop-how', choices=('reset', 'close'), default='reset')
    p.add_argument('--log')
    args = p.parse_args()
    try:
        asyncio.run(Front(args).serve(args.listen, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
