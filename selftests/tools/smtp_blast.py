#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#
# smtp_blast.py - a load generator that plays one sender (a VM's MTA or a
# spam bot in it) for smtpguard's scenario tests (selftests/e2e/
# test_scenario.sh). Python's standard library only, raw sockets, so that
# it runs inside a VM's namespace (lab_exec VM python3 smtp_blast.py ...).
#
#   smtp_blast.py --server IP [--port 25] --count N --rate MSGS_PER_S
#                 --rcpts-per-msg K|LO-HI --domains D --unknown-pct P
#                 --msgs-per-session M (--body-file F | --random-bodies)
#                 --from ADDR --log FILE [--max-seconds S] [--timeout S]
#                 [--connect-timeout S] [--max-concurrency C] [--seed S]
#                 [--token T] [--subject S] [--helo NAME]
#
# The plan, fixed at start (the same arguments and --seed give the same
# plan): message j (0..N-1) is due at start + j / RATE, with K recipients
# (or LO..HI drawn at random). Recipients are numbered across the whole
# run, i = 0, 1, 2, ...: recipient i is userNNN@dMMM.example with domain
# MMM = i mod D and user NNN = i div D, so N*K recipients over D domains
# are all distinct while N*K <= D*1000 (a newsletter to its subscribers,
# each once); exactly P% of them, spread evenly, are unknownNNN@dMMM.example
# instead (an address list full of dead addresses).
#
# Sending: a dispatcher hands each message, when it is due, to a session
# thread that is idle, or starts one (at most --max-concurrency): so the
# rate holds even while connections hang (a VM whose SYNs the kernel
# drops). A session connects, reads the greeting, says EHLO, sends up to
# M messages in lockstep (MAIL, RCPT each, DATA, body, dot; RSET after a
# refused MAIL or when no recipient was taken) and QUITs. Every socket
# operation has a timeout; after --max-seconds nothing more is sent,
# what was not sent is logged "skipped", and the run ends within
# --timeout more at most.
#
# The log (JSON lines), one line per message, written when its outcome is
# known:
#   {"msg": j, "t_due": .., "t": .., "t_end": .., "session": S,
#    "outcome": O, "stage": STAGE, "code": NNN, "reply": "...",
#    "rcpts": K, "rcpts_accepted": n, "rcpts_refused": n,
#    "rcpts_unknown_sent": n, "accepted": ["addr", ...]}
#   t: when the message was begun (wall clock, seconds since the epoch; for
#      the first message of a session, before its connect), t_end: when
#      its outcome was known; t_due: when it was due.
#   outcome: accepted (2xx to the dot), tempfail (a 4xx at any stage),
#     rejected (a 5xx at MAIL, DATA or the dot, or every recipient refused),
#     refused (connection refused: an RST to the SYN), reset (connection
#     reset), timeout (no answer within the timeout: at "connect", a
#     dropped SYN), closed (the server closed the connection), error
#     (anything else: no route...), skipped (never sent: --max-seconds).
#   stage: connect, greeting, ehlo, mail, rcpt, data, dot, or none.
# and at the end one summary line, also printed on stdout:
#   {"summary": {...}} with the counts of each outcome, of recipients sent,
#   accepted and refused, sessions connected, connections that failed, the
#   first message's t, the first failed connection's t, the last accepted
#   message's t, the elapsed time.
# Exit status: 0 when the run was carried out (whatever the server said),
# 2 for bad arguments.
import argparse
import json
import os
import queue
import random
import socket
import sys
import threading
import time

WORDS = ("account invoice payment update verify password bank urgent offer "
         "free winner prize click here now limited time secure login "
         "transfer confirm details customer service delivery package "
         "pharmacy discount bitcoin wallet refund claim notice final "
         "reminder document shared review attached").split()


class Plan:
    """Which recipients each message has, fixed at start."""

    def __init__(self, a):
        rng = random.Random(a.seed)
        self.msgs = []
        i = 0
        for _ in range(a.count):
            k = rng.randint(a.rcpts_lo, a.rcpts_hi)
            rcpts = []
            for _ in range(k):
                dom = i % a.domains
                num = i // a.domains
                # exactly P% unknown, spread evenly over the run
                unknown = (i + 1) * a.unknown_pct // 100 > i * a.unknown_pct // 100
                local = ("unknown%03d" if unknown else "user%03d") % num
                rcpts.append(("%s@d%03d.%s" % (local, dom, a.domain_suffix), unknown))
                i += 1
            self.msgs.append(rcpts)


class SmtpError(Exception):
    def __init__(self, outcome, stage, code=0, reply=""):
        super().__init__(outcome)
        self.outcome, self.stage, self.code, self.reply = outcome, stage, code, reply


class Conn:
    """One SMTP client connection, lockstep, every operation bounded."""

    def __init__(self, a):
        self.a = a
        self.sock = None
        self.buf = b""

    def connect(self):
        a = self.a
        try:
            self.sock = socket.create_connection((a.server, a.port), timeout=a.connect_timeout)
        except ConnectionRefusedError as e:
            raise SmtpError("refused", "connect", 0, str(e))
        except ConnectionResetError as e:
            raise SmtpError("reset", "connect", 0, str(e))
        except socket.timeout:
            raise SmtpError("timeout", "connect", 0, "no answer to the SYN in %.1f s" %
                            a.connect_timeout)
        except OSError as e:
            raise SmtpError("error", "connect", 0, str(e))
        self.sock.settimeout(a.timeout)

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def send(self, data, stage):
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise SmtpError("timeout", stage, 0, "send timed out")
        except (ConnectionResetError, BrokenPipeError) as e:
            raise SmtpError("reset", stage, 0, str(e))
        except OSError as e:
            raise SmtpError("error", stage, 0, str(e))

    def line(self, stage):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise SmtpError("timeout", stage, 0, "no reply in %.1f s" % self.a.timeout)
            except ConnectionResetError as e:
                raise SmtpError("reset", stage, 0, str(e))
            except OSError as e:
                raise SmtpError("error", stage, 0, str(e))
            if not chunk:
                raise SmtpError("closed", stage, 0, "connection closed by the server")
            self.buf += chunk
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self, stage):
        """(code, text of the last line)"""
        while True:
            ln = self.line(stage)
            if len(ln) < 3 or not ln[:3].isdigit():
                raise SmtpError("error", stage, 0, "not an SMTP reply: %r" % ln[:80])
            if len(ln) == 3 or ln[3] != "-":
                code = int(ln[:3])
                if code == 421:
                    # the server is closing the session: a tempfail, and the end
                    raise SmtpError("tempfail", stage, code, ln)
                return code, ln

    def cmd(self, text, stage):
        self.send(text.encode() + b"\r\n", stage)
        return self.reply(stage)


def message_bytes(a, j, rcpts, body_template):
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    to = rcpts[0][0] if len(rcpts) == 1 else "undisclosed-recipients:;"
    if a.random_bodies:
        rng = random.Random("%s-%d" % (a.seed, j))
        paras = []
        for _ in range(rng.randint(2, 5)):
            paras.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 60))))
        paras.append("http://%s.%s.example/%08x" % (rng.choice(WORDS), rng.choice(WORDS),
                                                     rng.getrandbits(32)))
        body = "\n\n".join(paras) + "\n"
        subject = "%s %s %d" % (rng.choice(WORDS), rng.choice(WORDS), rng.randint(1, 99999))
    else:
        body = body_template
        subject = a.subject
    head = ("From: <%s>\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%s.%d.%d@%s>\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            "X-Blast-Token: %s\nX-Blast-Seq: %d\n\n") % (
        a.mail_from, to, subject, now, a.token, j, os.getpid(), a.helo, a.token, j)
    text = head + body
    lines = []
    for ln in text.replace("\r\n", "\n").split("\n"):
        lines.append("." + ln if ln.startswith(".") else ln)   # dot-stuffing
    if lines and lines[-1] == "":
        lines.pop()
    return ("\r\n".join(lines) + "\r\n.\r\n").encode("utf-8")


class Blast:
    def __init__(self, a):
        self.a = a
        self.plan = Plan(a)
        self.body = ""
        if a.body_file:
            with open(a.body_file, encoding="utf-8", errors="replace") as f:
                self.body = f.read()
        self.jobs = queue.Queue()
        self.lock = threading.Lock()
        self.idle = 0
        self.threads = []
        self.sessions = 0
        self.stop = threading.Event()
        self.deadline = 0.0
        self.log = open(a.log, "w", encoding="utf-8")
        self.counts = {}
        self.stats = dict(rcpts_sent=0, rcpts_accepted=0, rcpts_refused=0,
                          rcpts_tempfailed=0, sessions=0, connections_failed=0,
                          first_t=None, first_conn_fail_t=None, last_accepted_t=None,
                          first_tempfail_t=None)

    # ------------------------------------------------------------ records

    def record(self, rec):
        line = json.dumps(rec, separators=(",", ":"))
        with self.lock:
            self.log.write(line + "\n")
            self.log.flush()
            o = rec["outcome"]
            self.counts[o] = self.counts.get(o, 0) + 1
            s = self.stats
            if o != "skipped":
                if s["first_t"] is None or rec["t"] < s["first_t"]:
                    s["first_t"] = rec["t"]
            if rec["stage"] == "connect" and o != "skipped":
                s["connections_failed"] += 1
                if s["first_conn_fail_t"] is None or rec["t"] < s["first_conn_fail_t"]:
                    s["first_conn_fail_t"] = rec["t"]
            if o == "tempfail" and (s["first_tempfail_t"] is None or
                                    rec["t"] < s["first_tempfail_t"]):
                s["first_tempfail_t"] = rec["t"]
            if o == "accepted":
                if s["last_accepted_t"] is None or rec["t"] > s["last_accepted_t"]:
                    s["last_accepted_t"] = rec["t"]
            s["rcpts_sent"] += rec.get("rcpts_sent", 0)
            s["rcpts_accepted"] += rec.get("rcpts_accepted", 0)
            s["rcpts_refused"] += rec.get("rcpts_refused", 0)
            s["rcpts_tempfailed"] += rec.get("rcpts_tempfailed", 0)

    def base(self, j, t_due, t, session):
        rcpts = self.plan.msgs[j]
        return {"msg": j, "t_due": round(t_due, 4), "t": round(t, 4), "t_end": None,
                "session": session, "outcome": None, "stage": "none", "code": 0,
                "reply": "", "rcpts": len(rcpts),
                "rcpts_unknown_planned": sum(1 for _, u in rcpts if u),
                "rcpts_sent": 0, "rcpts_accepted": 0, "rcpts_refused": 0,
                "rcpts_tempfailed": 0, "accepted": []}

    # ------------------------------------------------------------ sessions

    def one_message(self, c, rec, j):
        a = self.a
        rcpts = self.plan.msgs[j]
        rec["t_mail"] = round(time.time(), 4)
        code, text = c.cmd("MAIL FROM:<%s>" % a.mail_from, "mail")
        if code >= 300:
            rec.update(outcome="tempfail" if code < 500 else "rejected", stage="mail",
                       code=code, reply=text)
            c.cmd("RSET", "mail")
            return
        last = (0, "")
        for addr, _unknown in rcpts:
            code, text = c.cmd("RCPT TO:<%s>" % addr, "rcpt")
            rec["rcpts_sent"] += 1
            if 200 <= code < 300:
                rec["rcpts_accepted"] += 1
                rec["accepted"].append(addr)
            elif code >= 500:
                rec["rcpts_refused"] += 1
                last = (code, text)
            else:
                rec["rcpts_tempfailed"] += 1
                last = (code, text)
        if not rec["rcpts_accepted"]:
            code, text = last
            rec.update(outcome="tempfail" if code < 500 else "rejected", stage="rcpt",
                       code=code, reply=text)
            c.cmd("RSET", "rcpt")
            return
        code, text = c.cmd("DATA", "data")
        if code != 354:
            rec.update(outcome="tempfail" if code < 500 else "rejected", stage="data",
                       code=code, reply=text)
            if code >= 300:
                c.cmd("RSET", "data")
            return
        c.send(message_bytes(a, j, rcpts, self.body), "dot")
        code, text = c.reply("dot")
        if 200 <= code < 300:
            rec.update(outcome="accepted", stage="dot", code=code, reply=text)
        else:
            rec.update(outcome="tempfail" if code < 500 else "rejected", stage="dot",
                       code=code, reply=text)

    def next_job(self):
        """The next message due, or None: after an idle spell with the
        session open, or at the end."""
        with self.lock:
            self.idle += 1
        try:
            while True:
                if self.stop.is_set():
                    return None
                try:
                    return self.jobs.get(timeout=0.2)
                except queue.Empty:
                    continue
        finally:
            with self.lock:
                self.idle -= 1

    def session_thread(self):
        a = self.a
        while True:
            job = self.next_job()
            if job is None:
                return
            with self.lock:
                self.sessions += 1
                sid = self.sessions
            c = Conn(a)
            done = 0
            try:
                while job is not None:
                    j, t_due = job
                    rec = self.base(j, t_due, time.time(), sid)
                    try:
                        if c.sock is None:
                            c.connect()
                            with self.lock:
                                self.stats["sessions"] += 1
                            code, text = c.reply("greeting")
                            if code != 220:
                                raise SmtpError("tempfail" if code < 500 else "rejected",
                                                "greeting", code, text)
                            code, text = c.cmd("EHLO %s" % a.helo, "ehlo")
                            if code != 250:
                                raise SmtpError("tempfail" if code < 500 else "rejected",
                                                "ehlo", code, text)
                        self.one_message(c, rec, j)
                    except SmtpError as e:
                        if rec["outcome"] is None:
                            rec.update(outcome=e.outcome, stage=e.stage, code=e.code,
                                       reply=e.reply)
                        c.close()
                    rec["t_end"] = round(time.time(), 4)
                    self.record(rec)
                    done += 1
                    if c.sock is None or done >= a.msgs_per_session or self.stop.is_set():
                        break
                    # keep the session for the next message, if one comes soon
                    job = self.next_job()
            finally:
                if c.sock is not None:
                    try:
                        c.sock.settimeout(min(a.timeout, 2.0))
                        c.cmd("QUIT", "none")
                    except SmtpError:
                        pass
                    c.close()

    def spawn_if_needed(self):
        with self.lock:
            need = self.idle == 0 and len(self.threads) < self.a.max_concurrency
        if need:
            t = threading.Thread(target=self.session_thread, daemon=True)
            t.start()
            with self.lock:
                self.threads.append(t)

    # ------------------------------------------------------------ the run

    def run(self):
        a = self.a
        t0 = time.time()
        self.deadline = t0 + a.max_seconds
        j = 0
        while j < a.count:
            due = t0 + j / a.rate
            now = time.time()
            if due >= self.deadline or now >= self.deadline:
                break
            if due > now:
                time.sleep(due - now)
            self.spawn_if_needed()
            self.jobs.put((j, due))
            j += 1
        # let the queued ones go until the deadline, then stop
        while time.time() < self.deadline and (not self.jobs.empty() or self.busy()):
            if not self.jobs.empty():
                self.spawn_if_needed()
            time.sleep(0.05)
        self.stop.set()
        # what never left the queue, and what was never due in time
        while True:
            try:
                jj, due = self.jobs.get_nowait()
            except queue.Empty:
                break
            r = self.base(jj, due, time.time(), 0)
            r.update(outcome="skipped", t_end=r["t"])
            self.record(r)
        for jj in range(j, a.count):
            r = self.base(jj, t0 + jj / a.rate, time.time(), 0)
            r.update(outcome="skipped", t_end=r["t"])
            self.record(r)
        end_by = time.time() + a.timeout + a.connect_timeout + 2
        for t in list(self.threads):
            t.join(max(0.0, end_by - time.time()))
        hung = sum(1 for t in self.threads if t.is_alive())
        s = dict(self.stats)
        s.update(outcomes=dict(self.counts), messages=a.count, rate=a.rate,
                 elapsed=round(time.time() - t0, 3), t_start=round(t0, 4),
                 threads=len(self.threads), threads_hung=hung)
        with self.lock:
            self.log.write(json.dumps({"summary": s}, separators=(",", ":")) + "\n")
            self.log.flush()
            self.log.close()
        print(json.dumps({"summary": s}, separators=(",", ":")))
        sys.stdout.flush()
        return 0

    def busy(self):
        with self.lock:
            return self.idle < len([t for t in self.threads if t.is_alive()])


def parse_args(argv):
    p = argparse.ArgumentParser(description="SMTP load generator playing one sender")
    p.add_argument("--server", required=True)
    p.add_argument("--port", type=int, default=25)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--rate", type=float, required=True, help="messages per second")
    p.add_argument("--rcpts-per-msg", default="1", help="K, or LO-HI drawn at random")
    p.add_argument("--domains", type=int, default=1)
    p.add_argument("--domain-suffix", default="example")
    p.add_argument("--unknown-pct", type=int, default=0)
    p.add_argument("--msgs-per-session", type=int, default=10)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--body-file")
    g.add_argument("--random-bodies", action="store_true")
    p.add_argument("--subject", default="News")
    p.add_argument("--from", dest="mail_from", required=True)
    p.add_argument("--helo", default=socket.gethostname() or "blast.example")
    p.add_argument("--log", required=True)
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--timeout", type=float, default=10.0, help="each reply, each send")
    p.add_argument("--connect-timeout", type=float, default=2.0)
    p.add_argument("--max-concurrency", type=int, default=32)
    p.add_argument("--seed", default="1")
    p.add_argument("--token", default="blast")
    a = p.parse_args(argv)
    try:
        if "-" in a.rcpts_per_msg:
            lo, hi = a.rcpts_per_msg.split("-", 1)
            a.rcpts_lo, a.rcpts_hi = int(lo), int(hi)
        else:
            a.rcpts_lo = a.rcpts_hi = int(a.rcpts_per_msg)
    except ValueError:
        p.error("--rcpts-per-msg: K or LO-HI, e.g. 10 or 1-3")
    if not 1 <= a.rcpts_lo <= a.rcpts_hi <= 1000:
        p.error("--rcpts-per-msg: 1 <= LO <= HI <= 1000")
    if a.count < 1 or a.rate <= 0 or a.domains < 1 or not 0 <= a.unknown_pct <= 100:
        p.error("--count >= 1, --rate > 0, --domains >= 1, 0 <= --unknown-pct <= 100")
    if a.msgs_per_session < 1 or a.max_concurrency < 1 or a.max_seconds <= 0:
        p.error("--msgs-per-session, --max-concurrency >= 1; --max-seconds > 0")
    if a.timeout <= 0 or a.connect_timeout <= 0:
        p.error("--timeout and --connect-timeout > 0")
    return a


def main(argv):
    a = parse_args(argv)
    return Blast(a).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
