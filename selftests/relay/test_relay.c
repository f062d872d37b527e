/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_relay.c - the relay (proxy/session.c and the relay files) driven by
 * scripted SMTP dialogues, below the e2e tests: no namespaces, no daemon,
 * milliseconds a dialogue. Postfix's .in/.ref files and OpenSMTPD's
 * smtpscript are the models: the dialogue is the test.
 *
 *   test_relay DIR [NAME...]
 *
 * runs the checks of the events file (proxy/events.c, below: "events" as a
 * NAME runs them alone), then every DIR/ *.dialogue (sorted; or only the
 * NAMEs given). Each one gets a worker of its own (rig.h) and sessions in
 * it, as listener.c would hand them over, whose two sockets are
 * socketpairs: the test holds the other ends, the VMs' and the MXs', and
 * plays every peer in one thread, pumping the worker's event loop between
 * steps until what a step waits for happens (or its timeout passes: only a
 * failing step ever waits that long).
 *
 * Every check prints "PASS FILE:LINE STEP" or "FAIL FILE:LINE STEP: why"
 * (test.h); a failed step ends its dialogue (later ones would cascade).
 * After the last step, each dialogue checks that its peers had read every
 * byte they were sent, that every session ends once its peers close, and
 * that every engine state begun was released exactly once.
 *
 * The grammar (also in selftests/relay/README). One step a line; blank
 * lines and lines starting with '#' are ignored. SIDE is vm or mx.
 *
 * Set-up, before the first step:
 *   config KEY = VALUE      a smtpguard.conf setting (sg_config_set)
 *   patterns RULE           a line of the scan_patterns file ("body REGEX")
 *   engine answer VERDICT ["REASON"]          answers at once
 *   engine wait DURATION VERDICT ["REASON"]   answers from a loop timer
 *   engine wait inline VERDICT ["REASON"]     answers from within its verdict call
 *   engine wait never                         never answers (scan_timeout applies)
 *   engine fail                               its verdict fails
 *   engine fail-begin                         its begin fails
 *   engine body-match TEXT VERDICT ["REASON"] VERDICT once a body line
 *                                             contains TEXT, else accept; at once
 *       (VERDICT: accept, reject or tempfail; engines judge after the
 *       patterns, in the order given)
 *   tls_mode passthrough|strip                the session's policy (no terminate)
 * Anywhere:
 *   timeout DURATION        how long the following steps wait (default 2s)
 *   include FILE            the steps of DIR/FILE (a *.steps file: a common start)
 *   repeat N STEP           STEP N times over, one check ("repeat 63 mx< NOOP")
 * Peers:
 *   SIDE> TEXT              SIDE sends TEXT and CRLF ("SIDE>" alone: an empty line)
 *   SIDE>> RAW              SIDE sends RAW, C escapes (\r \n \t \0 \\ \xHH), no CRLF
 *   SIDE blob N [WORD]      SIDE sends N bytes of body lines (WORD repeated), CRLF-ended
 *   SIDE line N [PREFIX]    SIDE sends one line of N bytes, CRLF included: PREFIX
 *                           (C escapes: "NOOP\x20") and then x's
 *   SIDE repeat N RAW       SIDE sends RAW (escapes) N times over, in one write
 *   SIDE< PATTERN           the next line SIDE receives, which must end in CRLF,
 *                           matches the fnmatch(3) glob PATTERN ("[" and "\" are
 *                           special: "\[" for a bracket)
 *   SIDE<< RAW              the next bytes SIDE receives are exactly RAW (escapes)
 *   SIDE< ...               lines SIDE receives may be skipped until its next
 *                           expectation matches (a body the dialogue does not
 *                           spell out; before "closed", whatever came first)
 *   SIDE< nothing [DURATION]   no byte, and no close, within DURATION (100ms)
 *   SIDE< closed            SIDE reads an end (EOF or ECONNRESET), nothing before it
 *   SIDE shutdown           SIDE half-closes (shutdown SHUT_WR), reading on: a
 *                           TCP FIN (the relay reads an end, EPOLLRDHUP)
 *   SIDE close              SIDE reads what it was sent, then closes: on AF_UNIX
 *                           the relay sees its end and a hang-up (EPOLLHUP), as
 *                           of a peer gone for good; what SIDE had not checked
 *                           is an error, as at the dialogue's end
 *   SIDE reset              SIDE closes with bytes unread (SO_LINGER 0): on AF_UNIX
 *                           that is what makes the relay's read fail with
 *                           ECONNRESET, so it waits for an unread byte first
 * Sessions:
 *   session NAME [from ADDRESS]   the steps after it act on session NAME,
 *                           opened if new (from 192.0.2.10 unless ADDRESS,
 *                           IPv4 or IPv6, port 40000 and up), admitted or
 *                           refused at its sender's limit as accept_sessions
 *                           does (refused: no MX). Until the first one, the
 *                           steps act on "main", opened at the first step.
 * The relay:
 *   wait DURATION           the loop runs DURATION
 *   tick DURATION           the worker's tick runs as if DURATION had passed (its
 *                           deadlines: idle, session, dot reply, drain grace);
 *                           needs the worker_expire hook (README)
 *   stop                    worker_stop_sessions: the loop runs within it until
 *                           the dots' replies came or shutdown_timeout passed;
 *                           every session has ended after
 *   after DURATION SIDE> TEXT | SIDE>> RAW   SIDE sends from a timer on the
 *                           worker's loop, DURATION from now (during a stop)
 *   session ended | alive   the relay has ended the current session (it left
 *                           the worker), or not (after what was ready has run)
 *   event TYPE[#N] KEY=GLOB...   the last (or the N-th, from 1) events line of
 *                           TYPE (message, session) has fields KEY whose values
 *                           (a JSON string unquoted, or a number as written)
 *                           match GLOB; KEY="GLOB WITH BLANKS"
 *   events TYPE COUNT       exactly COUNT lines of TYPE were written (the writer
 *                           thread's lag is waited for)
 *   engines begun=N released=M   the test engines' states so far
 * Words reserved after "SIDE<": nothing, closed, "..." ("[c]losed" matches
 * a line "closed").
 *
 * After each step that sends, the loop runs what became ready, so that
 * each step reaches the relay before the next: a batch is one step (>>).
 * A side's received bytes are read only by the steps that check them:
 * what a peer has not read is still in its socket, as on a real network.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "events.h"
#include "log.h"
#include "parse.h"
#include "worker.h"
#include "rig.h"
#include "test.h"


#define MS			1000000ULL
#define STEP_TIMEOUT_NS		(2000 * MS)
#define NOTHING_NS		(100 * MS)
#define TEARDOWN_NS		(3000 * MS)
#define PUMP_SLICE_NS		(20 * MS)
#define EVENTS_GRACE_NS		(20 * MS)	/* the events writer thread's lag */
#define SETTLE_LIMIT		10000	/* loop rounds with work: more is a busy loop */
#define WHY_LEN			2048
#define STATE_MAGIC		0x5e551011u

/* ---------------------------------------------------------------- engines */

enum engine_kind {
	ENG_ANSWER,		/* its verdict at once */
	ENG_WAIT,		/* its verdict from a timer, delay_ns later */
	ENG_WAIT_INLINE,	/* sg_scan_engine_done within its verdict call */
	ENG_WAIT_NEVER,
	ENG_FAIL,		/* SG_ENGINE_ERROR from its verdict */
	ENG_FAIL_BEGIN,		/* SG_ENGINE_ERROR from its begin */
	ENG_BODY_MATCH,		/* its verdict once a body line contains match */
	ENG__COUNT
};

struct run;

struct engine_cfg {
	enum engine_kind kind;
	uint64_t delay_ns;
	struct sg_verdict verdict;
	char match[256];
	struct run *run;
};

/* One message's state of a test engine. */
struct engine_state {
	uint32_t magic;
	const struct engine_cfg *cfg;
	struct sg_timer timer;	/* ENG_WAIT: the answer */
	struct sg_scan *scan;
	struct sg_loop *loop;
	int matched;
};

/* ------------------------------------------------------------------ a run */

/* The test's end of one of the session's sockets: a peer. */
struct peer {
	const char *name;	/* "VM", "MX" */
	int fd;			/* -1 once the test closed it */
	char *buf;		/* received, not yet checked */
	size_t len, cap;
	int eof;		/* it read an end */
	int err;		/* the end was this error (ECONNRESET) */
	int skip;		/* "SIDE< ...": lines may be skipped */
};

/* One of the dialogue's sessions, as the VM and the MX see it. */
struct conn {
	char name[32];		/* "main": the one a dialogue gets without a "session" step */
	char vm_ip[64];
	struct session *s;	/* NULL once it ended */
	int ended;
	int admitted;		/* under its sender's session limit: it has an MX */
	struct peer peer[2];	/* SIDE_VM, SIDE_MX */
};

/* A send a peer makes from a timer on the worker's loop: "after". */
struct later {
	struct sg_timer timer;
	struct run *r;
	struct conn *c;
	int side;
	char *data;
	size_t len;
};

#define MAX_CONNS	8
#define MAX_LATER	8

struct run {
	const char *file;	/* the dialogue's name, for the checks */
	int lineno;
	const char *inc;	/* the file an "include" runs, or NULL */
	int inc_line;
	int reported;		/* a failed step's FAIL line is out */
	struct sg_config cfg;
	struct engine_cfg engines[SG_MAX_ENGINES];
	int n_engines;
	char patterns[8192];	/* the scan_patterns file's text */
	int tls_mode;
	uint64_t timeout_ns;
	int started;		/* the worker is up: no set-up lines any more */
	struct rig rig;		/* the worker, its proxy and events file */
	struct conn conn[MAX_CONNS];
	int n_conns;
	struct conn *c;		/* the session the steps act on */
	struct later later[MAX_LATER];
	int n_later;
	char later_why[256];	/* a send from a timer failed: the next step says so */
	int begun, released, bad_release;
	char why[WHY_LEN];	/* a failed step's reason */
};

static int fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* Bytes as a dialogue would write them: printable, escapes for the rest,
 * cut at max. */
static const char *show(const char *p, size_t n, size_t max, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 8 < outlen; i++) {
		unsigned char c = (unsigned char)p[i];

		if (i == max) {
			o += (size_t)snprintf(out + o, outlen - o, "...(%zu bytes)", n);
			break;
		}
		if (c == '\r')
			o += (size_t)snprintf(out + o, outlen - o, "\\r");
		else if (c == '\n')
			o += (size_t)snprintf(out + o, outlen - o, "\\n");
		else if (c == '\t')
			o += (size_t)snprintf(out + o, outlen - o, "\\t");
		else if (c == '\\')
			o += (size_t)snprintf(out + o, outlen - o, "\\\\");
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

/* ---------------------------------------------------- the test engines */

static void engine_answer(struct sg_timer *t)
{
	struct engine_state *st = t->ctx;

	sg_scan_engine_done(st->scan, &st->cfg->verdict);
}

static int engine_begin(const void *config, const struct sg_envelope *env, void **state)
{
	const struct engine_cfg *cfg = config;
	struct engine_state *st;

	(void)env;
	if (cfg->kind == ENG_FAIL_BEGIN)
		return SG_ENGINE_ERROR;
	st = calloc(1, sizeof(*st));
	if (!st)
		return SG_ENGINE_ERROR;
	st->magic = STATE_MAGIC;
	st->cfg = cfg;
	sg_timer_init(&st->timer, engine_answer, st);
	cfg->run->begun++;
	*state = st;
	return SG_ENGINE_DONE;
}

static int engine_line(void *state, const void *config, const char *line, size_t len,
		       int in_body)
{
	const struct engine_cfg *cfg = config;
	struct engine_state *st = state;

	(void)len;
	if (cfg->kind != ENG_BODY_MATCH)
		return 0;	/* the others read on, as a content scanner would */
	if (in_body && strstr(line, cfg->match))
		st->matched = 1;
	return st->matched;
}

static int engine_verdict(void *state, const void *config, struct sg_scan *scan,
			  struct sg_verdict *v)
{
	const struct engine_cfg *cfg = config;
	struct engine_state *st = state;

	st->scan = scan;
	st->loop = scan->host.loop;
	switch (cfg->kind) {
	case ENG_ANSWER:
		*v = cfg->verdict;
		return SG_ENGINE_DONE;
	case ENG_BODY_MATCH:
		*v = cfg->verdict;
		if (!st->matched)
			v->kind = SG_ACCEPT;
		return SG_ENGINE_DONE;
	case ENG_WAIT:
		if (!st->loop || sg_loop_timer_in(st->loop, &st->timer, cfg->delay_ns))
			return SG_ENGINE_ERROR;
		return SG_ENGINE_WAIT;
	case ENG_WAIT_INLINE:
		sg_scan_engine_done(scan, &cfg->verdict);
		return SG_ENGINE_WAIT;
	case ENG_WAIT_NEVER:
		return SG_ENGINE_WAIT;
	default:
		return SG_ENGINE_ERROR;
	}
}

static void engine_release(void *state, const void *config)
{
	const struct engine_cfg *cfg = config;
	struct engine_state *st = state;

	if (!st || st->magic != STATE_MAGIC) {
		cfg->run->bad_release++;
		return;
	}
	if (st->loop)
		sg_loop_timer_cancel(st->loop, &st->timer);
	st->magic = 0;
	cfg->run->released++;
	free(st);
}

#define TEST_ENGINE(n) { .name = n, .begin = engine_begin, .line = engine_line, \
			 .verdict = engine_verdict, .release = engine_release }
static const struct sg_engine test_engines[ENG__COUNT] = {
	[ENG_ANSWER] = TEST_ENGINE("answer"),
	[ENG_WAIT] = TEST_ENGINE("wait"),
	[ENG_WAIT_INLINE] = TEST_ENGINE("wait-inline"),
	[ENG_WAIT_NEVER] = TEST_ENGINE("wait-never"),
	[ENG_FAIL] = TEST_ENGINE("fail"),
	[ENG_FAIL_BEGIN] = TEST_ENGINE("fail-begin"),
	[ENG_BODY_MATCH] = TEST_ENGINE("body-match"),
};

/* ------------------------------------------------------ the event loop */

/* Sessions that have left the worker have ended (their memory may be a
 * spare now, never touched again); called after anything that runs the
 * loop, and before a new session takes a spare. */
static void note_end(struct run *r)
{
	for (int i = 0; i < r->n_conns; i++) {
		struct conn *c = &r->conn[i];

		if (!c->ended && !rig_live(&r->rig, c->s)) {
			c->ended = 1;
			c->s = NULL;
		}
	}
	session_reap(&r->rig.w);
}

static int pump(struct run *r, uint64_t max_wait_ns)
{
	int n = sg_loop_run_once(r->rig.w.loop, max_wait_ns);

	note_end(r);
	return n;
}

/* Runs what is ready now (sockets, timers due), until nothing is. -1: the
 * relay kept its loop busy with nothing to show for it. */
static int settle(struct run *r)
{
	for (int i = 0; i < SETTLE_LIMIT; i++)
		if (pump(r, 0) <= 0)
			return 0;
	return fail(r, "the loop still had work after %d rounds: the relay keeps waking "
		    "itself (a busy loop)", SETTLE_LIMIT);
}

static void pump_for(struct run *r, uint64_t ns)
{
	uint64_t deadline = sg_now_ns() + ns;

	for (uint64_t now = sg_now_ns(); now < deadline; now = sg_now_ns())
		pump(r, deadline - now < PUMP_SLICE_NS ? deadline - now : PUMP_SLICE_NS);
	settle(r);
}

static const char *mode_name(enum relay_mode m)
{
	static const char *const names[] = { "COMMANDS", "WAIT", "AUTH_LINE", "BODY", "VERDICT",
					     "TUNNEL", "REFUSED" };

	return (unsigned)m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

/* The relay's state, for a failure's reason. */
static void relay_state(struct run *r, char *out, size_t len)
{
	const struct session *s = r->c ? r->c->s : NULL;

	if (!s) {
		snprintf(out, len, "[the session%s%s has ended]", r->n_conns > 1 ? " " : "",
			 r->n_conns > 1 ? r->c->name : "");
		return;
	}
	snprintf(out, len, "[relay%s%s: mode %s, %d replies owed, vm_in %zu mx_out %zu mx_in %zu "
		 "vm_out %zu bytes%s%s%s%s%s]", r->n_conns > 1 ? " of " : "",
		 r->n_conns > 1 ? r->c->name : "", mode_name(s->mode), s->pend_count, s->vm_in.len,
		 s->mx_out.len, s->mx_in.len, s->vm_out.len, s->vm_eof ? ", VM ended" : "",
		 s->mx_eof ? ", MX ended" : "", s->mx_gone ? ", upstream aborted" : "",
		 s->draining ? ", draining" : "", s->close_after_flush ? ", closing" : "");
}

/* ------------------------------------------------------------ the peers */

/* What the socket has now, into the peer's buffer. */
static void peer_fill(struct peer *p)
{
	while (p->fd >= 0 && !p->eof) {
		ssize_t n;

		if (p->cap - p->len < 4096) {
			size_t cap = p->cap ? 2 * p->cap : 16384;
			char *b = realloc(p->buf, cap);

			if (!b)
				abort();
			p->buf = b;
			p->cap = cap;
		}
		n = read(p->fd, p->buf + p->len, p->cap - p->len);
		if (n > 0) {
			p->len += (size_t)n;
		} else if (n == 0) {
			p->eof = 1;
		} else if (errno == EAGAIN) {
			return;
		} else if (errno != EINTR) {
			p->eof = 1;
			p->err = errno;
		}
	}
}

static void peer_consume(struct peer *p, size_t n)
{
	memmove(p->buf, p->buf + n, p->len - n);
	p->len -= n;
}

/* A step on a side that has no socket: why. */
static int no_socket(struct run *r, int side)
{
	if (side == SIDE_MX && !r->c->admitted)
		return fail(r, "the session was refused at its sender's session limit: it has no MX");
	return fail(r, "the %s's socket is closed (by the dialogue)", r->c->peer[side].name);
}

static int peer_send(struct run *r, int side, const char *data, size_t len)
{
	struct peer *p = &r->c->peer[side];
	uint64_t deadline = sg_now_ns() + r->timeout_ns;
	size_t off = 0;

	if (p->fd < 0)
		return no_socket(r, side);
	while (off < len) {
		ssize_t n = send(p->fd, data + off, len - off, MSG_NOSIGNAL);
		char st[300];

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			relay_state(r, st, sizeof(st));
			return fail(r, "the %s could not send (%zu of %zu bytes sent): %s %s", p->name,
				    off, len, strerror(errno), st);
		}
		if (sg_now_ns() > deadline) {
			relay_state(r, st, sizeof(st));
			return fail(r, "the %s's socket stayed full (%zu of %zu bytes sent) %s",
				    p->name, off, len, st);
		}
		pump(r, PUMP_SLICE_NS);
	}
	return settle(r);
}

/* The step's reason when a side got something else: what it got, and
 * where the relay stands. */
static int fail_got(struct run *r, int side, const char *want, const char *got, size_t n)
{
	struct peer *p = &r->c->peer[side];
	char g[600], st[300];

	relay_state(r, st, sizeof(st));
	if (n)
		show(got, n, 300, g, sizeof(g));
	if (n)
		return fail(r, "the %s got \"%s\"%s, want %s %s", p->name, g,
			    p->eof ? (p->err ? ", then a reset" : ", then an end") : "", want, st);
	if (p->eof)
		return fail(r, "the %s's connection %s, want %s %s", p->name,
			    p->err ? "was reset" : "ended", want, st);
	return fail(r, "the %s got nothing within %llums, want %s %s", p->name,
		    (unsigned long long)(r->timeout_ns / MS), want, st);
}

/* SIDE< PATTERN */
static int expect_line(struct run *r, int side, const char *pattern)
{
	struct peer *p = &r->c->peer[side];
	uint64_t deadline = sg_now_ns() + r->timeout_ns;
	char want[600];

	snprintf(want, sizeof(want), "a line matching \"%s\"", pattern);
	if (p->fd < 0)
		return no_socket(r, side);
	for (;;) {
		char *lf;

		peer_fill(p);
		while ((lf = memchr(p->buf, '\n', p->len)) != NULL) {
			size_t n = (size_t)(lf - p->buf) + 1;
			char *line = strndup(p->buf, n);
			int crlf = n >= 2 && line[n - 2] == '\r';
			int match;

			line[n - (crlf ? 2 : 1)] = '\0';
			match = crlf && strlen(line) == n - 2 && fnmatch(pattern, line, 0) == 0;
			free(line);
			if (match) {
				peer_consume(p, n);
				p->skip = 0;
				return 1;
			}
			if (!p->skip)
				return fail_got(r, side, want, p->buf, n);
			peer_consume(p, n);
		}
		if (p->eof || sg_now_ns() > deadline)
			return fail_got(r, side, want, p->buf, p->len);
		pump(r, PUMP_SLICE_NS);
	}
}

/* SIDE<< RAW */
static int expect_raw(struct run *r, int side, const char *raw, size_t n)
{
	struct peer *p = &r->c->peer[side];
	uint64_t deadline = sg_now_ns() + r->timeout_ns;
	char want[600], w[500];

	snprintf(want, sizeof(want), "\"%s\"", show(raw, n, 200, w, sizeof(w)));
	if (p->fd < 0)
		return no_socket(r, side);
	for (;;) {
		peer_fill(p);
		if (p->skip) {
			char *at = memmem(p->buf, p->len, raw, n);

			if (at) {
				peer_consume(p, (size_t)(at - p->buf));
				p->skip = 0;
			} else if (p->len > n) {
				peer_consume(p, p->len - n);	/* it may begin in the rest */
			}
		}
		if (!p->skip && p->len >= n) {
			if (memcmp(p->buf, raw, n))
				return fail_got(r, side, want, p->buf, p->len);
			peer_consume(p, n);
			return 1;
		}
		if (!p->skip && memcmp(p->buf, raw, p->len))
			return fail_got(r, side, want, p->buf, p->len);
		if (p->eof || sg_now_ns() > deadline)
			return fail_got(r, side, want, p->buf, p->len);
		pump(r, PUMP_SLICE_NS);
	}
}

/* SIDE< nothing [DURATION] */
static int expect_nothing(struct run *r, int side, uint64_t ns)
{
	struct peer *p = &r->c->peer[side];
	char want[64];

	if (p->fd < 0)
		return no_socket(r, side);
	if (p->skip) {
		settle(r);
		peer_fill(p);
		p->len = 0;
		p->skip = 0;
	}
	pump_for(r, ns);
	peer_fill(p);
	if (!p->len && !p->eof)
		return 1;
	snprintf(want, sizeof(want), "nothing for %llums", (unsigned long long)(ns / MS));
	return fail_got(r, side, want, p->buf, p->len);
}

/* SIDE< closed */
static int expect_closed(struct run *r, int side)
{
	struct peer *p = &r->c->peer[side];
	uint64_t deadline = sg_now_ns() + r->timeout_ns;

	if (p->fd < 0)
		return no_socket(r, side);
	for (;;) {
		peer_fill(p);
		if (p->skip)
			p->len = 0;
		if (p->len)
			return fail_got(r, side, "the connection's end", p->buf, p->len);
		if (p->eof) {
			p->skip = 0;
			return 1;
		}
		if (sg_now_ns() > deadline)
			return fail_got(r, side, "the connection's end", p->buf, p->len);
		pump(r, PUMP_SLICE_NS);
	}
}

/* What a peer received and no step checked: an error, as a golden file's
 * surplus line is. */
static int peer_unchecked(struct run *r, int side)
{
	struct peer *p = &r->c->peer[side];
	char g[600];

	peer_fill(p);
	if (p->skip || !p->len)
		return 0;
	return fail(r, "the %s got \"%s\", which no step checked", p->name,
		    show(p->buf, p->len, 300, g, sizeof(g)));
}

static void peer_close(struct peer *p)
{
	if (p->fd < 0)
		return;
	close(p->fd);
	p->fd = -1;
}

/* SIDE close: a FIN (nothing left unread, or AF_UNIX would reset). */
static int side_close(struct run *r, int side)
{
	struct peer *p = &r->c->peer[side];

	if (p->fd < 0)
		return no_socket(r, side);
	settle(r);
	if (peer_unchecked(r, side))
		return -1;
	shutdown(p->fd, SHUT_WR);
	peer_close(p);
	p->len = 0;
	return settle(r);
}

/* SIDE reset: closed with a byte unread, which AF_UNIX turns into
 * ECONNRESET at the relay's next read (as a TCP RST would). */
static int side_reset(struct run *r, int side)
{
	struct peer *p = &r->c->peer[side];
	struct linger hard = { .l_onoff = 1, .l_linger = 0 };
	uint64_t deadline = sg_now_ns() + r->timeout_ns;
	int unread = 0;

	if (p->fd < 0)
		return no_socket(r, side);
	while (ioctl(p->fd, FIONREAD, &unread) == 0 && unread == 0) {
		if (sg_now_ns() > deadline)
			return fail(r, "the %s had no unread byte to reset with (an AF_UNIX close "
				    "is a reset only with bytes unread): send it something first",
				    p->name);
		pump(r, PUMP_SLICE_NS);
	}
	setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
	peer_close(p);
	p->len = 0;
	return settle(r);
}

/* ------------------------------------------------------------ the events */

/* The value of "key": in a JSON line, unquoted (escapes undone), or a
 * number or literal as written; NULL when the line has no such key. */
static char *json_field(const char *line, const char *key, char *out, size_t len)
{
	char needle[1100];
	const char *p;
	size_t o = 0;

	snprintf(needle, sizeof(needle), "\"%s\":", key);
	p = strstr(line, needle);
	if (!p)
		return NULL;
	p += strlen(needle);
	if (*p != '"') {
		size_t n = strcspn(p, ",}");

		snprintf(out, len, "%.*s", (int)n, p);
		return out;
	}
	for (p++; *p && *p != '"' && o + 5 < len; p++) {
		if (*p != '\\') {
			out[o++] = *p;
			continue;
		}
		p++;
		switch (*p) {
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u': {
			unsigned int c = 0;

			if (sscanf(p + 1, "%4x", &c) != 1)
				return NULL;
			p += 4;
			if (c < 0x80) {
				out[o++] = (char)c;
			} else if (c < 0x800) {
				out[o++] = (char)(0xc0 | c >> 6);
				out[o++] = (char)(0x80 | (c & 0x3f));
			} else {
				out[o++] = (char)(0xe0 | c >> 12);
				out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
				out[o++] = (char)(0x80 | (c & 0x3f));
			}
			break;
		}
		case '\0':
			return NULL;
		default:
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return out;
}

/* The events file's lines of type ("message", "session"): how many, and
 * the nth (1-based; 0: the last) into line. */
static int events_of(struct run *r, const char *type, int nth, char *line, size_t len)
{
	char buf[8192], prefix[64];
	int count = 0;
	FILE *f = fopen(r->rig.events_path, "r");

	if (!f)
		return 0;
	snprintf(prefix, sizeof(prefix), "{\"event\":\"%s\"", type);
	line[0] = '\0';
	while (fgets(buf, sizeof(buf), f)) {
		if (strncmp(buf, prefix, strlen(prefix)))
			continue;
		count++;
		if (nth == 0 || nth == count) {
			buf[strcspn(buf, "\n")] = '\0';
			snprintf(line, len, "%s", buf);
		}
	}
	fclose(f);
	return count;
}

/* ---------------------------------------------------- parsing the lines */

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The next word, or "quoted words", into out; NULL at the line's end. */
static const char *next_token(const char *p, char *out, size_t len)
{
	size_t o = 0;

	p = skip_blanks(p);
	if (!*p)
		return NULL;
	while (*p && *p != ' ' && *p != '\t') {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (o + 1 < len)
					out[o++] = *p;
			if (*p)
				p++;
			continue;
		}
		if (o + 1 < len)
			out[o++] = *p;
		p++;
	}
	out[o] = '\0';
	return p;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* C escapes (\r \n \t \0 \\ \" \xHH) into out; its length, or -1. */
static long unescape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (const char *p = in; *p; p++) {
		char c = *p;

		if (o + 1 >= len)
			return -1;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 'r': c = '\r'; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case '0': c = '\0'; break;
			case '\\': c = '\\'; break;
			case '"': c = '"'; break;
			case 'x':
				if (hex(p[1]) < 0 || hex(p[2]) < 0)
					return -1;	/* two digits, always */
				c = (char)(hex(p[1]) * 16 + hex(p[2]));
				p += 2;
				break;
			default:
				return -1;
			}
		}
		out[o++] = c;
	}
	return (long)o;
}

static int duration(struct run *r, const char *text, uint64_t *ns)
{
	char err[256];

	if (sg_parse_duration(text, ns, err, sizeof(err)))
		return fail(r, "syntax: %s", err);
	return 0;
}

static int parse_verdict(struct run *r, const char *p, struct sg_verdict *v)
{
	char word[64], reason[SG_REASON_LEN];

	p = next_token(p, word, sizeof(word));
	if (!p)
		return fail(r, "syntax: a verdict (accept, reject, tempfail) is missing");
	if (!strcmp(word, "accept"))
		v->kind = SG_ACCEPT;
	else if (!strcmp(word, "reject"))
		v->kind = SG_REJECT;
	else if (!strcmp(word, "tempfail"))
		v->kind = SG_TEMPFAIL;
	else
		return fail(r, "syntax: '%s' is not a verdict (accept, reject, tempfail)", word);
	snprintf(v->reason, sizeof(v->reason), "%s", v->kind == SG_ACCEPT ? "clean" :
		 v->kind == SG_REJECT ? "refused by the test engine" :
		 "deferred by the test engine");
	if (next_token(p, reason, sizeof(reason)))
		snprintf(v->reason, sizeof(v->reason), "%s", reason);
	return 0;
}

/* engine KIND ARGS */
static int parse_engine(struct run *r, const char *p)
{
	char kind[64], arg[256];
	struct engine_cfg *e;

	if (r->n_engines == SG_MAX_ENGINES)
		return fail(r, "syntax: more engines than SG_MAX_ENGINES (%d)", SG_MAX_ENGINES);
	e = &r->engines[r->n_engines];
	memset(e, 0, sizeof(*e));
	e->run = r;
	p = next_token(p, kind, sizeof(kind));
	if (!p)
		return fail(r, "syntax: engine answer|wait|fail|fail-begin|body-match ...");
	if (!strcmp(kind, "answer")) {
		e->kind = ENG_ANSWER;
		if (parse_verdict(r, p, &e->verdict))
			return -1;
	} else if (!strcmp(kind, "wait")) {
		p = next_token(p, arg, sizeof(arg));
		if (!p)
			return fail(r, "syntax: engine wait DURATION|inline|never [VERDICT]");
		if (!strcmp(arg, "never")) {
			e->kind = ENG_WAIT_NEVER;
		} else {
			e->kind = strcmp(arg, "inline") ? ENG_WAIT : ENG_WAIT_INLINE;
			if (e->kind == ENG_WAIT && duration(r, arg, &e->delay_ns))
				return -1;
			if (parse_verdict(r, p, &e->verdict))
				return -1;
		}
	} else if (!strcmp(kind, "fail")) {
		e->kind = ENG_FAIL;
	} else if (!strcmp(kind, "fail-begin")) {
		e->kind = ENG_FAIL_BEGIN;
	} else if (!strcmp(kind, "body-match")) {
		e->kind = ENG_BODY_MATCH;
		p = next_token(p, e->match, sizeof(e->match));
		if (!p)
			return fail(r, "syntax: engine body-match TEXT VERDICT [REASON]");
		if (parse_verdict(r, p, &e->verdict))
			return -1;
	} else {
		return fail(r, "syntax: unknown engine '%s' (answer, wait, fail, fail-begin, "
			    "body-match)", kind);
	}
	r->n_engines++;
	return 0;
}

/* ------------------------------------------------------------ the session */

/* The worker, as the dialogue's set-up lines made it: its configuration,
 * pattern rules and engines. */
static int start_rig(struct run *r)
{
	char err[512];

	r->started = 1;
	if (rig_start(&r->rig, &r->cfg, r->patterns, r->file, err, sizeof(err)))
		return fail(r, "%s", err);
	for (int i = 0; i < r->n_engines; i++)
		sg_scanner_add(&r->rig.proxy.generation->scanner, &test_engines[r->engines[i].kind],
			       &r->engines[i]);
	return 0;
}

/* A new session, the current one: from vm_ip (port 40000 and up, one a
 * session) to the MX, admitted as listener.c's accept_sessions would
 * (the MX's greeting is its first reply owed), or refused at its sender's
 * session limit (it has no MX then). */
static int open_conn(struct run *r, const char *name, const char *vm_ip)
{
	struct conn *c;
	char err[512];
	int fds[2], ret;

	if (!r->started && start_rig(r))
		return -1;
	if (r->n_conns == MAX_CONNS)
		return fail(r, "syntax: more than %d sessions in one dialogue", MAX_CONNS);
	note_end(r);	/* before session_alloc takes an ended one's memory */
	c = &r->conn[r->n_conns];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->vm_ip, sizeof(c->vm_ip), "%s", vm_ip);
	c->peer[SIDE_VM] = (struct peer){ .name = "VM", .fd = -1 };
	c->peer[SIDE_MX] = (struct peer){ .name = "MX", .fd = -1 };
	ret = rig_session(&r->rig, vm_ip, 40000 + r->n_conns, r->tls_mode, fds, &c->s, err,
			  sizeof(err));
	if (ret < 0)
		return fail(r, "%s", err);
	r->n_conns++;
	r->c = c;
	c->admitted = ret == 0;
	c->peer[SIDE_VM].fd = fds[SIDE_VM];
	c->peer[SIDE_MX].fd = fds[SIDE_MX];
	note_end(r);
	return settle(r);
}

/* session NAME [from ADDRESS]: to the session NAME, opened if new. */
static int step_session(struct run *r, const char *p)
{
	char name[64], word[64], ip[64] = "192.0.2.10";
	int from = 0;

	p = next_token(p, name, sizeof(name));
	if (!p)
		return fail(r, "syntax: session NAME [from ADDRESS] | session ended | session alive");
	if ((p = next_token(p, word, sizeof(word))) != NULL) {
		if (strcmp(word, "from") || !(p = next_token(p, ip, sizeof(ip))) ||
		    next_token(p, word, sizeof(word)))
			return fail(r, "syntax: session NAME [from ADDRESS]");
		from = 1;
	}
	for (int i = 0; i < r->n_conns; i++) {
		if (strcmp(r->conn[i].name, name))
			continue;
		if (from && strcmp(r->conn[i].vm_ip, ip))
			return fail(r, "syntax: session %s is from %s already", name,
				    r->conn[i].vm_ip);
		r->c = &r->conn[i];
		return 0;
	}
	if (strlen(name) >= sizeof(r->conn[0].name))
		return fail(r, "syntax: a session's name is at most %zu characters",
			    sizeof(r->conn[0].name) - 1);
	return open_conn(r, name, ip);
}

/* A send from a timer (see "after"). */
static void later_send(struct sg_timer *t)
{
	struct later *l = t->ctx;
	struct peer *p = &l->c->peer[l->side];
	ssize_t n = p->fd < 0 ? -1 : send(p->fd, l->data, l->len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n != (ssize_t)l->len && !l->r->later_why[0])
		snprintf(l->r->later_why, sizeof(l->r->later_why), "the %s's send from a timer "
			 "(after) failed: %s", p->name, p->fd < 0 ? "its socket is closed" :
			 n < 0 ? strerror(errno) : "its socket was full");
	free(l->data);
	l->data = NULL;
}

/* after DURATION SIDE> TEXT | SIDE>> RAW: SIDE sends it from a timer on the
 * worker's loop, DURATION from now: whatever runs the loop then (a "stop",
 * a "wait", a step that waits) has it sent meanwhile. */
static int step_after(struct run *r, const char *p)
{
	char when[32], raw[4096];
	struct later *l;
	uint64_t ns;
	long n;
	int side;

	p = next_token(p, when, sizeof(when));
	if (!p)
		return fail(r, "syntax: after DURATION SIDE> TEXT | SIDE>> RAW");
	if (duration(r, when, &ns))
		return -1;
	p = skip_blanks(p);
	if (strncmp(p, "vm>", 3) && strncmp(p, "mx>", 3))
		return fail(r, "syntax: after DURATION SIDE> TEXT | SIDE>> RAW");
	side = p[0] == 'v' ? SIDE_VM : SIDE_MX;
	if (p[3] == '>') {
		p += 4;
		if (*p == ' ')
			p++;
		n = unescape(p, raw, sizeof(raw));
		if (n <= 0)
			return fail(r, "syntax: nothing to send, or a bad escape");
	} else {
		p += 3;
		if (*p == ' ')
			p++;
		n = snprintf(raw, sizeof(raw), "%s\r\n", p);
		if (n >= (long)sizeof(raw))
			return fail(r, "syntax: too long");
	}
	if (r->n_later == MAX_LATER)
		return fail(r, "syntax: more than %d sends from a timer in one dialogue", MAX_LATER);
	l = &r->later[r->n_later++];
	*l = (struct later){ .r = r, .c = r->c, .side = side, .len = (size_t)n };
	l->data = malloc((size_t)n);
	if (!l->data)
		return fail(r, "out of memory");
	memcpy(l->data, raw, (size_t)n);
	sg_timer_init(&l->timer, later_send, l);
	if (sg_loop_timer_in(r->rig.w.loop, &l->timer, ns))
		return fail(r, "sg_loop_timer_in: %s", strerror(errno));
	return 0;
}

/* --------------------------------------------------------------- the steps */

/* Set-up lines; 1 when line was one. */
static int setup_line(struct run *r, const char *line, int *err)
{
	char e[512];

	*err = 0;
	if (!strncmp(line, "config ", 7)) {
		if (sg_config_set(&r->cfg, line + 7, r->file, r->lineno, e, sizeof(e)))
			*err = fail(r, "%s", e);
	} else if (!strncmp(line, "patterns ", 9)) {
		size_t n = strlen(r->patterns);

		snprintf(r->patterns + n, sizeof(r->patterns) - n, "%s\n", line + 9);
	} else if (!strncmp(line, "engine ", 7)) {
		*err = parse_engine(r, line + 7);
	} else if (!strncmp(line, "tls_mode ", 9)) {
		const char *m = skip_blanks(line + 9);

		if (!strcmp(m, "passthrough"))
			r->tls_mode = SG_TLS_PASSTHROUGH;
		else if (!strcmp(m, "strip"))
			r->tls_mode = SG_TLS_STRIP;
		else
			*err = fail(r, "syntax: tls_mode passthrough|strip (terminate needs TLS "
				    "contexts this test does not make)");
	} else {
		return 0;
	}
	if (!*err && r->started)
		*err = fail(r, "syntax: set-up lines (config, patterns, engine, tls_mode) come "
			    "before the first step");
	return 1;
}

static int wait_ended(struct run *r, uint64_t ns)
{
	uint64_t deadline = sg_now_ns() + ns;

	settle(r);
	while (!r->c->ended && sg_now_ns() < deadline)
		pump(r, PUMP_SLICE_NS);
	return r->c->ended;
}

/* Every session has ended, or ns passed. */
static int wait_all_ended(struct run *r, uint64_t ns)
{
	uint64_t deadline = sg_now_ns() + ns;

	settle(r);
	while (r->rig.w.sessions && sg_now_ns() < deadline)
		pump(r, PUMP_SLICE_NS);
	return !r->rig.w.sessions;
}

/* event TYPE[#N] KEY=GLOB... : until it holds, or the timeout. */
static int step_event(struct run *r, const char *p)
{
	char type[64], line[8192], tok[1024], *hash;
	uint64_t deadline = sg_now_ns() + r->timeout_ns;
	int nth = 0;

	p = next_token(p, type, sizeof(type));
	if (!p)
		return fail(r, "syntax: event TYPE[#N] KEY=GLOB...");
	hash = strchr(type, '#');
	if (hash) {
		*hash = '\0';
		nth = atoi(hash + 1);
		if (nth < 1)
			return fail(r, "syntax: event TYPE#N counts from 1");
	}
	settle(r);
	for (;;) {
		int count = events_of(r, type, nth, line, sizeof(line));
		const char *q = p;
		char bad[1400] = "";

		if (count && (!nth || count >= nth)) {
			while ((q = next_token(q, tok, sizeof(tok))) != NULL) {
				char *eq = strchr(tok, '='), value[1024];

				if (!eq)
					return fail(r, "syntax: '%s' is not KEY=GLOB", tok);
				*eq = '\0';
				if (!json_field(line, tok, value, sizeof(value))) {
					snprintf(bad, sizeof(bad), "no field \"%.60s\"", tok);
					break;
				}
				if (fnmatch(eq + 1, value, 0)) {
					snprintf(bad, sizeof(bad), "%.60s is \"%.500s\", want \"%.500s\"",
						 tok, value, eq + 1);
					break;
				}
			}
			if (!bad[0])
				return 1;
		} else {
			snprintf(bad, sizeof(bad), "%d %s event(s) written", count, type);
		}
		if (sg_now_ns() > deadline)
			return fail(r, "%s; the line: %s", bad, line[0] ? line : "(none)");
		pump(r, PUMP_SLICE_NS);
	}
}

/* events TYPE COUNT: the writer thread writes the lines a moment after
 * they are made, so fewer are waited for (up to the timeout), and a count
 * reached is read again a little later for a line still on its way. */
static int step_events(struct run *r, const char *p)
{
	char type[64], n[32], line[8192];
	uint64_t deadline = sg_now_ns() + r->timeout_ns;
	int count, want;

	p = next_token(p, type, sizeof(type));
	if (!p || !next_token(p, n, sizeof(n)))
		return fail(r, "syntax: events TYPE COUNT");
	want = atoi(n);
	if (settle(r))
		return -1;
	while ((count = events_of(r, type, 0, line, sizeof(line))) < want &&
	       sg_now_ns() < deadline)
		pump(r, PUMP_SLICE_NS);
	if (count == want) {
		pump_for(r, EVENTS_GRACE_NS);
		count = events_of(r, type, 0, line, sizeof(line));
	}
	if (count != want)
		return fail(r, "%d %s event(s) written, want %s; the last: %s", count, type, n,
			    line[0] ? line : "(none)");
	return 1;
}

/* engines begun=N released=M */
static int step_engines(struct run *r, const char *p)
{
	char tok[64];
	int want_begun = -1, want_released = -1;

	while ((p = next_token(p, tok, sizeof(tok))) != NULL) {
		if (!strncmp(tok, "begun=", 6))
			want_begun = atoi(tok + 6);
		else if (!strncmp(tok, "released=", 9))
			want_released = atoi(tok + 9);
		else
			return fail(r, "syntax: engines begun=N released=M");
	}
	if (settle(r))
		return -1;
	if ((want_begun >= 0 && r->begun != want_begun) ||
	    (want_released >= 0 && r->released != want_released))
		return fail(r, "%d engine states begun, %d released", r->begun, r->released);
	return 1;
}

/* SIDE blob N [WORD]: N bytes of body lines, CRLF-ended. */
static int step_blob(struct run *r, int side, const char *p)
{
	char n_text[32], word[64] = "x";
	size_t n, i = 0, col = 0, wlen;
	char *buf;
	int ret;

	p = next_token(p, n_text, sizeof(n_text));
	if (!p || atol(n_text) < 2)
		return fail(r, "syntax: %s blob N [WORD] (N >= 2)", side == SIDE_VM ? "vm" : "mx");
	next_token(p, word, sizeof(word));
	n = (size_t)atol(n_text);
	wlen = strlen(word);
	buf = malloc(n);
	if (!buf)
		return fail(r, "out of memory");
	while (i + 2 < n) {
		if (col == 76 && i + 4 <= n) {
			buf[i++] = '\r';
			buf[i++] = '\n';
			col = 0;
			continue;
		}
		buf[i] = word[col % wlen];
		if (col == 0 && buf[i] == '.')
			buf[i] = 'x';	/* never a dot line */
		i++;
		col++;
	}
	buf[n - 2] = '\r';
	buf[n - 1] = '\n';
	ret = peer_send(r, side, buf, n);
	free(buf);
	return ret;
}

/* SIDE line N [PREFIX]: one line of N bytes with its CRLF. */
static int step_line(struct run *r, int side, const char *p)
{
	char n_text[32], prefix[1024];
	long n, k = 0;
	char *buf;
	int ret;

	p = next_token(p, n_text, sizeof(n_text));
	n = p ? atol(n_text) : 0;
	if (n < 2 || n > 1 << 20)
		return fail(r, "syntax: %s line N [PREFIX] (2 <= N <= 1M)", side == SIDE_VM ? "vm" : "mx");
	if (*p == ' ')
		p++;
	k = unescape(p, prefix, sizeof(prefix));
	if (k < 0 || k > n - 2)
		return fail(r, "syntax: a bad escape in the prefix, or one longer than N - 2");
	buf = malloc((size_t)n);
	if (!buf)
		return fail(r, "out of memory");
	memcpy(buf, prefix, (size_t)k);
	memset(buf + k, 'x', (size_t)(n - 2 - k));
	buf[n - 2] = '\r';
	buf[n - 1] = '\n';
	ret = peer_send(r, side, buf, (size_t)n);
	free(buf);
	return ret;
}

/* SIDE repeat N RAW: RAW, N times over, in one write. */
static int step_repeat_send(struct run *r, int side, const char *p)
{
	char n_text[32], raw[4096];
	long n, k;
	char *buf;
	int ret;

	p = next_token(p, n_text, sizeof(n_text));
	n = p ? atol(n_text) : 0;
	if (n < 1 || n > 100000)
		return fail(r, "syntax: %s repeat N RAW (1 <= N <= 100000)",
			    side == SIDE_VM ? "vm" : "mx");
	k = unescape(skip_blanks(p), raw, sizeof(raw));
	if (k <= 0)
		return fail(r, "syntax: nothing to repeat, or a bad escape");
	buf = malloc((size_t)(n * k));
	if (!buf)
		return fail(r, "out of memory");
	for (long i = 0; i < n; i++)
		memcpy(buf + i * k, raw, (size_t)k);
	ret = peer_send(r, side, buf, (size_t)(n * k));
	free(buf);
	return ret;
}

/* A side's step: "vm> ...", "mx< ...", "vm close"... */
static int step_side(struct run *r, int side, const char *p)
{
	char raw[65536], word[64];
	long n;

	if (!strncmp(p, ">>", 2) || !strncmp(p, "<<", 2)) {
		int send = p[0] == '>';

		p += 2;
		if (*p == ' ')
			p++;
		n = unescape(p, raw, sizeof(raw));
		if (n < 0)
			return fail(r, "syntax: a bad escape (\\r \\n \\t \\0 \\\\ \\xHH) or too long");
		if (send)
			return peer_send(r, side, raw, (size_t)n);
		return n ? expect_raw(r, side, raw, (size_t)n) :
			   fail(r, "syntax: nothing to expect");
	}
	if (*p == '>') {
		p++;
		if (*p == ' ')
			p++;
		snprintf(raw, sizeof(raw), "%s\r\n", p);
		return peer_send(r, side, raw, strlen(raw));
	}
	if (*p == '<') {
		uint64_t ns = NOTHING_NS;

		p++;
		if (*p == ' ')
			p++;
		if (!strcmp(p, "closed"))
			return expect_closed(r, side);
		if (!strcmp(p, "...")) {
			r->c->peer[side].skip = 1;
			return 0;
		}
		if (!strcmp(p, "nothing") || !strncmp(p, "nothing ", 8)) {
			if (p[7] && duration(r, skip_blanks(p + 7), &ns))
				return -1;
			return expect_nothing(r, side, ns);
		}
		return expect_line(r, side, p);
	}
	p = next_token(p, word, sizeof(word));
	if (!p)
		return fail(r, "syntax: SIDE> SIDE>> SIDE< SIDE<< SIDE close|shutdown|reset|blob|line");
	if (!strcmp(word, "close"))
		return side_close(r, side);
	if (!strcmp(word, "reset"))
		return side_reset(r, side);
	if (!strcmp(word, "shutdown")) {
		if (r->c->peer[side].fd < 0)
			return no_socket(r, side);
		shutdown(r->c->peer[side].fd, SHUT_WR);
		return settle(r);
	}
	if (!strcmp(word, "blob"))
		return step_blob(r, side, p);
	if (!strcmp(word, "line"))
		return step_line(r, side, p);
	if (!strcmp(word, "repeat"))
		return step_repeat_send(r, side, p);
	return fail(r, "syntax: unknown step '%s'", word);
}

/* One step: 1 a check that held, 0 an action done, -1 a failure (r->why). */
static int run_step(struct run *r, const char *line)
{
	char word[64];
	const char *p;
	int err;

	if (!strncmp(line, "timeout ", 8))
		return duration(r, skip_blanks(line + 8), &r->timeout_ns);
	if (setup_line(r, line, &err))
		return err;
	if (r->later_why[0]) {
		fail(r, "%s", r->later_why);
		r->later_why[0] = '\0';
		return -1;
	}
	p = next_token(line, word, sizeof(word));
	if (!strcmp(word, "session") && strcmp(skip_blanks(p), "ended") &&
	    strcmp(skip_blanks(p), "alive"))
		return step_session(r, p);
	/* the dialogue's steps act on one session until it opens others */
	if (!r->n_conns && open_conn(r, "main", "192.0.2.10"))
		return -1;
	if (!strncmp(line, "repeat ", 7)) {
		/* repeat N STEP: one check however many times it runs */
		char n_text[32], why[WHY_LEN];
		long n;
		int ret = 0;

		p = next_token(line + 7, n_text, sizeof(n_text));
		n = p ? atol(n_text) : 0;
		p = p ? skip_blanks(p) : "";
		if (n < 1 || !*p || !strncmp(p, "repeat ", 7) || setup_line(r, p, &err))
			return fail(r, "syntax: repeat N STEP (N >= 1, a step, not a set-up line)");
		for (long i = 0; i < n; i++) {
			int one = run_step(r, p);

			if (one < 0) {
				snprintf(why, sizeof(why), "%s", r->why);
				return fail(r, "repetition %ld of %ld: %s", i + 1, n, why);
			}
			ret |= one;
		}
		return ret;
	}
	if (!strncmp(line, "vm", 2) && strchr("<> ", line[2]))
		return step_side(r, SIDE_VM, line + 2);
	if (!strncmp(line, "mx", 2) && strchr("<> ", line[2]))
		return step_side(r, SIDE_MX, line + 2);
	if (!strcmp(word, "wait")) {
		uint64_t ns;

		if (duration(r, skip_blanks(p), &ns))
			return -1;
		pump_for(r, ns);
		return 0;
	}
	if (!strcmp(word, "session")) {
		char st[300];

		p = skip_blanks(p);
		if (!strcmp(p, "ended")) {
			if (wait_ended(r, r->timeout_ns))
				return 1;
			relay_state(r, st, sizeof(st));
			return fail(r, "the session is still running after %llums %s",
				    (unsigned long long)(r->timeout_ns / MS), st);
		}
		if (!strcmp(p, "alive")) {
			if (settle(r))
				return -1;
			return r->c->ended ? fail(r, "the session has ended") : 1;
		}
		return fail(r, "syntax: session ended|alive");
	}
	if (!strcmp(word, "tick")) {
		uint64_t ns;

		if (duration(r, skip_blanks(p), &ns))
			return -1;
		worker_expire(&r->rig.w, sg_now_ns() + ns);
		note_end(r);
		return settle(r);
	}
	if (!strcmp(word, "after"))
		return step_after(r, p);
	if (!strcmp(word, "stop")) {
		/* the loop runs within, until the owed replies came or
		 * shutdown_timeout passed; every session has ended after */
		worker_stop_sessions(&r->rig.w);
		note_end(r);
		return settle(r);
	}
	if (!strcmp(word, "event"))
		return step_event(r, p);
	if (!strcmp(word, "events"))
		return step_events(r, p);
	if (!strcmp(word, "engines"))
		return step_engines(r, p);
	return fail(r, "syntax: unknown step '%s'", word);
}

/* ----------------------------------------------------------- a dialogue */

/* "FILE:LINE STEP", or "FILE:LINE>INCLUDED:LINE STEP" for an included step. */
static void check_name(char *out, size_t len, const struct run *r, const char *step)
{
	if (r->inc)
		snprintf(out, len, "%s:%d>%s:%d %.100s", r->file, r->lineno, r->inc, r->inc_line,
			 step);
	else
		snprintf(out, len, "%s:%d %.100s", r->file, r->lineno, step);
}

/* Every peer closes; every session must end, its engines let go. */
static void teardown(struct run *r, int failed)
{
	char name[256], why[WHY_LEN];
	int many = r->n_conns > 1;

	if (r->n_conns && !failed) {
		int unchecked = 0;

		snprintf(name, sizeof(name), "%s: every byte the peers got was checked", r->file);
		settle(r);
		for (int i = 0; i < r->n_conns && !unchecked; i++) {
			r->c = &r->conn[i];
			unchecked = peer_unchecked(r, SIDE_VM) || peer_unchecked(r, SIDE_MX);
			if (unchecked && many) {
				snprintf(why, sizeof(why), "%s", r->why);
				fail(r, "session %s: %s", r->c->name, why);
			}
		}
		test_report(!unchecked, name, unchecked ? r->why : "");
	}
	if (r->rig.w.loop) {
		snprintf(name, sizeof(name), "%s: %s", r->file, many ?
			 "every session ends once its peers close" :
			 "the session ends once both peers close");
		for (int i = 0; i < r->n_conns; i++) {
			for (int side = SIDE_VM; side <= SIDE_MX; side++) {
				struct peer *p = &r->conn[i].peer[side];

				peer_fill(p);	/* a FIN, not a reset */
				if (p->fd >= 0)
					shutdown(p->fd, SHUT_WR);
				peer_close(p);
			}
		}
		if (!r->n_conns) {
			/* the set-up failed before a session was made */
		} else if (wait_all_ended(r, TEARDOWN_NS)) {
			if (!failed)
				test_report(true, name, "");
		} else {
			for (int i = 0; i < r->n_conns; i++)
				if (!r->conn[i].ended)
					r->c = &r->conn[i];
			relay_state(r, why, sizeof(why));
			test_report(false, name, why);
			while (r->rig.w.sessions)
				session_free(&r->rig.w, r->rig.w.sessions);
			note_end(r);
		}
		snprintf(name, sizeof(name), "%s: every engine state released once (%d begun)",
			 r->file, r->begun);
		snprintf(why, sizeof(why), "%d begun, %d released, %d releases of a state not "
			 "live", r->begun, r->released, r->bad_release);
		if (r->n_engines)
			test_report(r->begun == r->released && !r->bad_release, name, why);
	}
	rig_stop(&r->rig);	/* what did not end is ended here */
	for (int i = 0; i < r->n_later; i++)
		free(r->later[i].data);
	for (int i = 0; i < r->n_conns; i++)
		for (int side = SIDE_VM; side <= SIDE_MX; side++)
			free(r->conn[i].peer[side].buf);
}

/* The steps of dir/file (the dialogue, or a file it includes); -1 once
 * one failed. */
static int run_lines(struct run *r, const char *dir, const char *file, int depth)
{
	char path[1024], text[8192], name[300];
	int *lineno = depth ? &r->inc_line : &r->lineno;
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f)
		return fail(r, "cannot open %s: %s", path, strerror(errno));
	*lineno = 0;
	while (ret >= 0 && fgets(text, sizeof(text), f)) {
		const char *line;

		++*lineno;
		text[strcspn(text, "\n")] = '\0';
		line = skip_blanks(text);
		if (!*line || *line == '#')
			continue;
		if (!strncmp(line, "include ", 8)) {
			const char *inc = skip_blanks(line + 8);

			if (depth) {
				ret = fail(r, "syntax: an included file includes no other");
			} else {
				r->inc = inc;
				ret = run_lines(r, dir, inc, 1);
				r->inc = NULL;
			}
			check_name(name, sizeof(name), r, line);
			if (ret < 0 && !r->reported)	/* it could not be opened */
				test_report(false, name, r->why);
			continue;
		}
		ret = run_step(r, line);
		check_name(name, sizeof(name), r, line);
		if (ret < 0) {
			test_report(false, name, r->why);
			r->reported = 1;
		} else if (ret > 0) {
			test_report(true, name, "");
		}
	}
	fclose(f);
	return ret < 0 ? -1 : 0;
}

static void run_dialogue(const char *dir, const char *file)
{
	char program[300];
	struct run *r = calloc(1, sizeof(*r));
	int failed;

	if (!r)
		abort();
	r->file = file;
	r->timeout_ns = STEP_TIMEOUT_NS;
	r->tls_mode = SG_TLS_PASSTHROUGH;
	sg_config_defaults(&r->cfg);
	/* the relay's log lines say which dialogue they belong to */
	snprintf(program, sizeof(program), "test_relay %s", file);
	sg_log_init(program);
	failed = run_lines(r, dir, file, 0) < 0;
	if (!failed && !r->started) {
		test_report(false, file, "the dialogue has no step");
		failed = 1;
	}
	teardown(r, failed);
	free(r);
}

/* ------------------------------------------------------- the events file */

/*
 * proxy/events.c, apart from any dialogue ("test_relay DIR events" runs it
 * alone): the file is created 0640 whatever the umask, never opened through
 * a link, nor when it is a FIFO or a directory; a line written reads back
 * whole; a writer that cannot keep up never blocks the workers' calls.
 */
#define EVENTS_CALLS		100000
#define EVENTS_CALLS_MAX_NS	(1000 * MS)	/* all of them, with the writer stuck */
#define EVENTS_CLOSE_MAX_NS	(2000 * MS)	/* a stop gives a stuck file that long */
#define EVENTS_FIFO_MAX_NS	(500 * MS)

static const struct sg_message_event events_sample = {
	.source = "192.0.2.10:40000", .mx = "198.51.100.25:25", .helo = "vm1.example.org",
	.mail_from = "alice@example.org", .rcpts = 2, .rcpt_domains = "example.net,example.com",
	.size = 1234, .message_id = "<1@vm1.example.org>", .ref = "SG0000000000000000",
	.verdict = "accept", .reason = "clean", .mx_reply = "250 2.0.0 Ok: queued as 4F2A1",
};

static mode_t mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) ? (mode_t)-1 : st.st_mode & 07777;
}

/* The file's text (NUL-terminated) into buf. */
static size_t read_text(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return n;
}

static void events_modes(const char *dir)
{
	char path[300], name[200], why[200];
	mode_t old = umask(0);
	int fd;

	snprintf(path, sizeof(path), "%s/created.log", dir);
	snprintf(why, sizeof(why), "sg_events_open failed");
	if (sg_events_open(path) == 0)
		snprintf(why, sizeof(why), "its mode is %04o", (unsigned)mode_of(path));
	sg_events_close();
	test_report(mode_of(path) == 0640, "events: a new file is created 0640 under umask 0", why);

	snprintf(path, sizeof(path), "%s/existing.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0666);
	if (fd >= 0)
		close(fd);
	snprintf(why, sizeof(why), "sg_events_open failed");
	if (sg_events_open(path) == 0)
		snprintf(why, sizeof(why), "its mode is %04o", (unsigned)mode_of(path));
	sg_events_close();
	snprintf(name, sizeof(name), "events: an existing file of mode 0666 is made 0640");
	test_report(mode_of(path) == 0640, name, why);
	umask(old);
}

static void events_refusals(const char *dir)
{
	char path[300], target[300], why[200];
	int reader, ret;

	/* a link to a file, and one to a file that is not there */
	snprintf(target, sizeof(target), "%s/target.log", dir);
	snprintf(path, sizeof(path), "%s/link.log", dir);
	close(open(target, O_WRONLY | O_CREAT | O_EXCL, 0600));
	if (symlink(target, path))
		perror("symlink");
	ret = sg_events_open(path);
	if (!ret) {
		sg_event_message(&events_sample);
		sg_events_close();
	}
	{
		struct stat st;
		long long size = stat(target, &st) ? -1 : (long long)st.st_size;

		snprintf(why, sizeof(why), "sg_events_open returned %d; the link's target has %lld "
			 "bytes", ret, size);
		test_report(ret == -1 && size == 0, "events: a symbolic link to a file is refused",
			    why);
	}
	snprintf(target, sizeof(target), "%s/nowhere.log", dir);
	snprintf(path, sizeof(path), "%s/dangling.log", dir);
	if (symlink(target, path))
		perror("symlink");
	ret = sg_events_open(path);
	if (!ret)
		sg_events_close();
	snprintf(why, sizeof(why), "sg_events_open returned %d; the link's target %s", ret,
		 mode_of(target) == (mode_t)-1 ? "was not made" : "was made");
	test_report(ret == -1 && mode_of(target) == (mode_t)-1,
		    "events: a symbolic link to nowhere is refused, its target not made", why);

	ret = sg_events_open(dir);
	if (!ret)
		sg_events_close();
	snprintf(why, sizeof(why), "sg_events_open returned %d", ret);
	test_report(ret == -1, "events: a directory is refused", why);

	snprintf(path, sizeof(path), "%s/fifo", dir);
	if (mkfifo(path, 0600))
		perror("mkfifo");
	reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ret = sg_events_open(path);
	if (!ret)
		sg_events_close();
	if (reader >= 0)
		close(reader);
	snprintf(why, sizeof(why), "sg_events_open returned %d", ret);
	test_report(ret == -1, "events: a FIFO (with a reader) is refused", why);
}

/* A FIFO nobody reads: open(2) for writing waits for a reader, so it is
 * tried in a child, given EVENTS_FIFO_MAX_NS. */
static void events_fifo_no_reader(const char *dir)
{
	char path[300], why[200];
	uint64_t deadline = sg_now_ns() + EVENTS_FIFO_MAX_NS;
	int status = 0, done = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/fifo", dir);
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(sg_events_open(path) == -1 ? 0 : 1);
	while (pid > 0 && !(done = waitpid(pid, &status, WNOHANG) == pid) && sg_now_ns() < deadline)
		usleep(10000);
	if (pid > 0 && !done) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		snprintf(why, sizeof(why), "sg_events_open had not returned after %llu ms: open(2) "
			 "waits for a reader (no O_NONBLOCK)",
			 (unsigned long long)(EVENTS_FIFO_MAX_NS / MS));
	} else {
		snprintf(why, sizeof(why), "the child exited %d", WIFEXITED(status) ?
			 WEXITSTATUS(status) : -1);
	}
	test_report(done && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "events: a FIFO with no reader is refused at once, not waited on", why);
}

static void events_line(const char *dir)
{
	static char text[16384];
	char path[300], value[300], why[400];
	size_t n;

	snprintf(path, sizeof(path), "%s/line.log", dir);
	if (sg_events_open(path)) {
		test_report(false, "events: a message line is written and reads back",
			    "sg_events_open failed");
		return;
	}
	sg_event_message(&events_sample);
	sg_events_close();	/* what is queued is written first */
	n = read_text(path, text, sizeof(text));
	snprintf(why, sizeof(why), "the file holds: %.300s", text);
	test_report(n > 2 && text[n - 1] == '\n' && !memchr(text, '\n', n - 1) &&
		    !strncmp(text, "{\"event\":\"message\"", 18) &&
		    json_field(text, "mail_from", value, sizeof(value)) &&
		    !strcmp(value, "alice@example.org") &&
		    json_field(text, "mx_reply", value, sizeof(value)) &&
		    !strcmp(value, "250 2.0.0 Ok: queued as 4F2A1") &&
		    json_field(text, "rcpts", value, sizeof(value)) && !strcmp(value, "2"),
		    "events: a message line is written and reads back", why);
}

static void *events_closer(void *arg)
{
	(void)arg;
	sg_events_close();
	return NULL;
}

/*
 * The events to "-" with stdout a pipe nobody reads: the writer thread
 * blocks in write(2) once the pipe is full, and the callers must not wait
 * for it. Nothing may be printed meanwhile (stdout is the pipe): the
 * results are reported once it is back.
 */
static void events_stuck_writer(void)
{
	uint64_t t0, calls_ns, close_ns = 0;
	size_t bytes = 0, lines = 0, bad = 0, line_len = 0;
	int pipe_fd[2], saved, in_pipe = -1, pipe_size, closed = 0;
	char why[400], name[200], buf[65536], first = 0, last = 0;
	pthread_t closer;
	struct timespec until;

	if (pipe2(pipe_fd, O_CLOEXEC)) {
		test_report(false, "events: a stuck writer", strerror(errno));
		return;
	}
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	dup2(pipe_fd[1], STDOUT_FILENO);
	close(pipe_fd[1]);
	if (sg_events_open("-")) {
		dup2(saved, STDOUT_FILENO);
		close(saved);
		close(pipe_fd[0]);
		test_report(false, "events: a stuck writer", "sg_events_open(\"-\") failed");
		return;
	}
	t0 = sg_now_ns();
	for (int i = 0; i < EVENTS_CALLS; i++)
		sg_event_message(&events_sample);
	calls_ns = sg_now_ns() - t0;
	usleep(50000);	/* the writer has filled the pipe, and waits */
	ioctl(pipe_fd[0], FIONREAD, &in_pipe);
	pipe_size = fcntl(pipe_fd[0], F_GETPIPE_SZ);

	/* the close, with the writer stuck; then the pipe is read, which
	 * lets a stuck writer go on (and a close waiting for it return) */
	t0 = sg_now_ns();
	pthread_create(&closer, NULL, events_closer, NULL);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += (long)EVENTS_CLOSE_MAX_NS;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	if (pthread_timedjoin_np(closer, NULL, &until) == 0) {
		closed = 1;
		close_ns = sg_now_ns() - t0;
	}
	fcntl(pipe_fd[0], F_SETFL, O_NONBLOCK);
	for (int joined = closed;;) {
		ssize_t n = read(pipe_fd[0], buf, sizeof(buf));

		if (n > 0) {
			/* whole lines: each begins with '{' and ends in "}\n" */
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] != '\n') {
					if (!line_len++)
						first = buf[i];
					last = buf[i];
					continue;
				}
				lines++;
				bad += first != '{' || last != '}';
				line_len = 0;
			}
			bytes += (size_t)n;
			continue;
		}
		if (joined)
			break;
		if (pthread_tryjoin_np(closer, NULL) == 0) {
			joined = 1;
			continue;	/* what the writer wrote before it ended */
		}
		usleep(1000);
	}
	close(pipe_fd[0]);
	dup2(saved, STDOUT_FILENO);
	close(saved);

	printf("# events: %d calls with the writer stuck took %llu ms; %zu lines (%zu bytes) "
	       "went through, the rest were dropped\n", EVENTS_CALLS,
	       (unsigned long long)(calls_ns / MS), lines, bytes);
	snprintf(name, sizeof(name), "events: %d lines made with the writer stuck take under "
		 "%llu ms (none waits for it)", EVENTS_CALLS,
		 (unsigned long long)(EVENTS_CALLS_MAX_NS / MS));
	snprintf(why, sizeof(why), "they took %llu ms", (unsigned long long)(calls_ns / MS));
	test_report(calls_ns < EVENTS_CALLS_MAX_NS, name, why);
	snprintf(why, sizeof(why), "%d bytes in a pipe of %d", in_pipe, pipe_size);
	test_report(in_pipe >= 0 && in_pipe <= pipe_size,
		    "events: the stuck pipe holds only what fit", why);
	snprintf(why, sizeof(why), "%zu lines of %d went through, %zu not whole, %s", lines,
		 EVENTS_CALLS, bad, line_len ? "the last one cut" : "the last one whole");
	test_report(lines > 0 && lines < EVENTS_CALLS && !bad && !line_len,
		    "events: the queue dropped what it could not hold, whole lines went through",
		    why);
	snprintf(why, sizeof(why), "sg_events_close had not returned after %llu ms: it joins the "
		 "writer thread, blocked in write(2) on the full pipe (it returned once the pipe "
		 "was read)", (unsigned long long)(EVENTS_CLOSE_MAX_NS / MS));
	if (closed)
		snprintf(why, sizeof(why), "it took %llu ms", (unsigned long long)(close_ns / MS));
	test_report(closed, "events: sg_events_close returns while the writer is stuck", why);
}

static void events_checks(void)
{
	char dir[] = "/tmp/sg-relay-events-test-XXXXXX";
	const char *names[] = { "created.log", "existing.log", "target.log", "link.log",
				"dangling.log", "fifo", "line.log" };

	sg_log_init("test_relay events");
	if (!mkdtemp(dir)) {
		test_report(false, "events: a temporary directory", strerror(errno));
		return;
	}
	events_modes(dir);
	events_refusals(dir);
	events_fifo_no_reader(dir);
	events_line(dir);
	events_stuck_writer();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[300];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static int is_dialogue(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 9 && !strcmp(d->d_name + n - 9, ".dialogue");
}

int main(int argc, char **argv)
{
	struct dirent **names;
	int n;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR [NAME.dialogue...]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 2) {
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "events"))
				events_checks();
			else
				run_dialogue(argv[1], argv[i]);
		}
		return test_exit_status();
	}
	events_checks();
	n = scandir(argv[1], &names, is_dialogue, alphasort);
	if (n < 0) {
		fprintf(stderr, "%s: cannot read %s: %s\n", argv[0], argv[1], strerror(errno));
		return 2;
	}
	if (n == 0)
		test_report(false, "dialogues", "no *.dialogue file in the directory");
	for (int i = 0; i < n; i++) {
		run_dialogue(argv[1], names[i]->d_name);
		free(names[i]);
	}
	free(names);
	printf("# %d dialogues: %d checks passed, %d failed\n", n, test_passes, test_failures);
	return test_exit_status();
}
