/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_scan_milter.c - the milter client engine (scan/milter.c,
 * scan/milter_message.c) against fake milters: a unix socket in a temporary
 * directory, accepted and served from the engine's own event loop, each
 * packet the MTA sends decoded here (with a parser of the test's own, not
 * the codec under test) and answered by a script chosen per case.
 *
 * The dialogue is the test: what a good milter is sent for a message, in
 * order (optneg, connect, helo, mail, each recipient, data, each header
 * framed and unfolded as Postfix sends it, the body unstuffed, the end);
 * the next message on the same connection; what each final reply means
 * (reject, tempfail, discard, a reply code and its text made safe);
 * accept and reject at connect for the whole session; progress restarting
 * the timer; quarantine and header changes recorded, never applied; skip;
 * every fault (nobody listening, silence, a hang-up, a lying length, an
 * unknown or unasked or out-of-order reply, a reply code that is no
 * refusal) giving milter_default_action, counted, logged, and never a
 * stuck scan; a slow reader holding the body back and letting it go; a
 * message let go mid-body, with an abort before the next one and a late
 * reply owed to the first never taken for the second. Besides: a milter
 * that answers no header (NR_*) and wants their leading space, a VM on
 * IPv6, a header longer than a milter command may carry, accept in reply
 * to a body chunk.
 *
 * The engine's own words (its log lines) are caught from stderr for the
 * faults; every check is one PASS/FAIL line; no case may take 5 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "loop.h"
#include "milter.h"
#include "milter_proto.h"	/* its flag names alone: the test decodes on its own */
#include "parse.h"
#include "scanner.h"
#include "test.h"

#define MS 1000000ULL
#define CONNECT_TIMEOUT_NS (300 * MS)
#define COMMAND_TIMEOUT_NS (300 * MS)
#define CONTENT_TIMEOUT_NS (400 * MS)
#define CASE_LIMIT_NS (5000 * MS)	/* no scan may take longer: it is stuck */
#define PROGRESS_EVERY_NS (100 * MS)

static char tmpdir[64];

static uint32_t get_be32(const void *p)
{
	const unsigned char *b = p;

	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

/* ---- the fake milter ---- */

#define FAKE_PACKET_MAX (65535 + 64)	/* a body chunk and its command byte */
#define SCRIPT_MAX 1024

enum fake_later { LATER_NONE, LATER_PROGRESS, LATER_LATE, LATER_RESUME };

struct script_answer {
	char bytes[SCRIPT_MAX];
	size_t len;
	int set;
};

struct fake {
	struct sg_loop *loop;
	char path[108];
	int listen_fd, fd;
	struct sg_watch listen_watch, watch;
	struct sg_timer timer;
	char in[4 + FAKE_PACKET_MAX];
	size_t in_len;
	/*
	 * The script: per command letter, the packets it answers with (set
	 * and empty: silence); unset, its optneg reply to 'O' and continue to
	 * every command that wants a reply.
	 */
	struct script_answer answer[128];
	uint32_t actions, protocol;	/* its optneg reply */
	char close_on;			/* hangs up when first sent this */
	char pause_on;			/* reads and answers nothing for pause_ns after its first */
	uint64_t pause_ns;
	char late_on;			/* answers its first one late_ns late, with late[] */
	uint64_t late_ns;
	char late[SCRIPT_MAX];
	size_t late_len;
	int progress;			/* at eom: this many progress replies first */
	int paused, pause_done, late_done;
	enum fake_later later;
	char later_cmd;
	/* what it was sent */
	char log[16384];
	size_t log_len;
	char *body;
	size_t body_len, body_cap;
	int packets[256];
	int connections, hangups, bad;
};

static void fake_log(struct fake *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fake_log(struct fake *f, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (f->log_len + 1 >= sizeof(f->log))
		return;
	va_start(ap, fmt);
	n = vsnprintf(f->log + f->log_len, sizeof(f->log) - f->log_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		f->log_len += (size_t)n < sizeof(f->log) - f->log_len ? (size_t)n :
			      sizeof(f->log) - f->log_len - 1;
}

static void fake_log_clear(struct fake *f)
{
	f->log_len = 0;
	f->log[0] = '\0';
}

/* The next NUL-terminated string of a packet's data (or the rest, when the
 * NUL is missing: the log shows it). */
static const char *field(const char *d, size_t n, size_t *off, int *len)
{
	const char *s = d + *off;
	size_t left = n - *off, l = strnlen(s, left);

	*len = (int)l;
	*off += l < left ? l + 1 : l;
	return s;
}

static void log_escaped(struct fake *f, const char *s, int n)
{
	for (int i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			fake_log(f, "\\n");
		else if (c == '\t')
			fake_log(f, "\\t");
		else if (c < 0x20 || c >= 0x7f)
			fake_log(f, "\\x%02x", c);
		else
			fake_log(f, "%c", c);
	}
}

/* One line per packet: "mail <a@example.org>", "header Subject=hello". */
static void fake_log_packet(struct fake *f, char cmd, const char *d, size_t n)
{
	size_t off = 0;
	const char *s;
	int len;

	switch (cmd) {
	case 'O':
		fake_log(f, "optneg %u\n", n >= 4 ? get_be32(d) : 0);
		break;
	case 'D':
		fake_log(f, "macros %c\n", n ? d[0] : '?');
		break;
	case 'C':
		s = field(d, n, &off, &len);
		fake_log(f, "connect %.*s", len, s);
		if (off + 3 <= n) {
			fake_log(f, " %c %u", d[off], (unsigned)((unsigned char)d[off + 1] << 8 |
							       (unsigned char)d[off + 2]));
			off += 3;
			s = field(d, n, &off, &len);
			fake_log(f, " %.*s", len, s);
		}
		fake_log(f, "\n");
		break;
	case 'H':
		s = field(d, n, &off, &len);
		fake_log(f, "helo %.*s\n", len, s);
		break;
	case 'M':
	case 'R':
		fake_log(f, "%s", cmd == 'M' ? "mail" : "rcpt");
		while (off < n) {
			s = field(d, n, &off, &len);
			fake_log(f, " %.*s", len, s);
		}
		fake_log(f, "\n");
		break;
	case 'T':
		fake_log(f, "data\n");
		break;
	case 'L':
		s = field(d, n, &off, &len);
		fake_log(f, "header %.*s=", len, s);
		s = field(d, n, &off, &len);
		log_escaped(f, s, len);
		fake_log(f, "\n");
		break;
	case 'N':
		fake_log(f, "eoh\n");
		break;
	case 'B':
		fake_log(f, "body %zu\n", n);
		break;
	case 'E':
		fake_log(f, "eom\n");
		break;
	case 'A':
		fake_log(f, "abort\n");
		break;
	case 'Q':
		fake_log(f, "quit\n");
		break;
	default:
		fake_log(f, "?%02x\n", (unsigned char)cmd);
		break;
	}
}

static void fake_drop(struct fake *f)
{
	if (f->fd < 0)
		return;
	sg_loop_unwatch(f->loop, &f->watch);
	close(f->fd);
	sg_watch_closed(&f->watch);
	f->fd = -1;
	f->in_len = 0;
}

static void fake_send(struct fake *f, const void *p, size_t n)
{
	ssize_t w;

	if (f->fd < 0 || n == 0)
		return;
	w = send(f->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (w != (ssize_t)n && !(w < 0 && (errno == EPIPE || errno == ECONNRESET)))
		f->bad++;
}

/* Appends one packet (cmd, data) to out. */
static void packet_to(char *out, size_t *len, size_t cap, char cmd, const void *data, size_t n)
{
	if (*len + 5 + n > cap) {
		ASSERT_TRUE(0, "fake: a scripted answer fits");
		return;
	}
	put_be32(out + *len, (uint32_t)(n + 1));
	out[*len + 4] = cmd;
	if (n)
		memcpy(out + *len + 5, data, n);
	*len += 5 + n;
}

static void optneg_reply(struct fake *f, char *out, size_t *len, size_t cap)
{
	char d[12];

	put_be32(d, 6);
	put_be32(d + 4, f->actions);
	put_be32(d + 8, f->protocol);
	packet_to(out, len, cap, 'O', d, sizeof(d));
}

/* Its answer to cmd: the script's, or the well-behaved one. */
static void fake_answer(struct fake *f, char cmd)
{
	unsigned char c = (unsigned char)cmd;
	char out[64];
	size_t len = 0;

	if (c < 128 && f->answer[c].set) {
		fake_send(f, f->answer[c].bytes, f->answer[c].len);
		return;
	}
	if (cmd == 'O')
		optneg_reply(f, out, &len, sizeof(out));
	else if (cmd && strchr("CHMRTLNBE", cmd))
		packet_to(out, &len, sizeof(out), 'c', NULL, 0);
	fake_send(f, out, len);
}

static void fake_parse(struct fake *f);

static void fake_packet(struct fake *f, char cmd, const char *d, size_t n)
{
	f->packets[(unsigned char)cmd]++;
	fake_log_packet(f, cmd, d, n);
	if (cmd == 'B') {
		if (f->body_len + n > f->body_cap) {
			size_t cap = f->body_cap ? f->body_cap * 2 : 65536;
			char *grown;

			while (cap < f->body_len + n)
				cap *= 2;
			grown = realloc(f->body, cap);
			if (!grown) {
				f->bad++;
				return;
			}
			f->body = grown;
			f->body_cap = cap;
		}
		memcpy(f->body + f->body_len, d, n);
		f->body_len += n;
	}
	if (cmd == f->close_on) {
		fake_drop(f);
		return;
	}
	if (cmd == f->pause_on && !f->pause_done) {
		/* reads nothing more for a while: the engine's output backs up */
		f->pause_done = f->paused = 1;
		sg_loop_watch(f->loop, &f->watch, 0);
		f->later = LATER_RESUME;
		f->later_cmd = cmd;
		sg_loop_timer_in(f->loop, &f->timer, f->pause_ns);
		return;
	}
	if (cmd == f->late_on && !f->late_done) {
		f->late_done = 1;
		f->later = LATER_LATE;
		sg_loop_timer_in(f->loop, &f->timer, f->late_ns);
		return;
	}
	if (cmd == 'E' && f->progress > 0) {
		f->later = LATER_PROGRESS;
		sg_loop_timer_in(f->loop, &f->timer, PROGRESS_EVERY_NS);
		return;
	}
	fake_answer(f, cmd);
}

static void fake_parse(struct fake *f)
{
	size_t off = 0;

	while (f->fd >= 0 && !f->paused && f->in_len - off >= 4) {
		uint32_t len = get_be32(f->in + off);

		if (len == 0 || len > FAKE_PACKET_MAX) {
			f->bad++;	/* the engine sent what no milter takes */
			fake_drop(f);
			break;
		}
		if (f->in_len - off < 4 + (size_t)len)
			break;
		fake_packet(f, f->in[off + 4], f->in + off + 5, len - 1);
		off += 4 + len;
	}
	if (f->fd < 0) {
		f->in_len = 0;
		return;
	}
	memmove(f->in, f->in + off, f->in_len - off);
	f->in_len -= off;
}

static void fake_readable(struct sg_watch *w, uint32_t events)
{
	struct fake *f = w->ctx;

	(void)events;
	while (f->fd >= 0 && !f->paused) {
		ssize_t n = recv(f->fd, f->in + f->in_len, sizeof(f->in) - f->in_len, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			f->hangups++;	/* the engine closed its side */
			fake_drop(f);
			return;
		}
		f->in_len += (size_t)n;
		fake_parse(f);
	}
}

static void fake_later(struct sg_timer *t)
{
	struct fake *f = t->ctx;
	char p[5];
	size_t len = 0;

	switch (f->later) {
	case LATER_PROGRESS:
		packet_to(p, &len, sizeof(p), 'p', NULL, 0);
		fake_send(f, p, len);
		if (--f->progress > 0) {
			sg_loop_timer_in(f->loop, &f->timer, PROGRESS_EVERY_NS);
			return;
		}
		f->later = LATER_NONE;
		fake_answer(f, 'E');
		return;
	case LATER_LATE:
		f->later = LATER_NONE;
		fake_send(f, f->late, f->late_len);
		return;
	case LATER_RESUME:
		f->later = LATER_NONE;
		f->paused = 0;
		fake_answer(f, f->later_cmd);
		if (f->fd >= 0) {
			sg_loop_watch(f->loop, &f->watch, EPOLLIN);
			fake_parse(f);
		}
		return;
	case LATER_NONE:
		return;
	}
}

static void fake_accept(struct sg_watch *w, uint32_t events)
{
	struct fake *f = w->ctx;
	int fd = accept4(f->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)events;
	if (fd < 0)
		return;
	fake_drop(f);	/* a new connection: the engine let the last one go */
	f->fd = fd;
	f->connections++;
	f->paused = 0;
	sg_watch_init(&f->watch, fd, fake_readable, f);
	if (sg_loop_watch(f->loop, &f->watch, EPOLLIN) < 0)
		f->bad++;
}

/* listening 0: a stale socket file nobody listens on (connect refused). */
static int fake_start(struct fake *f, struct sg_loop *loop, const char *path, int listening)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	f->loop = loop;
	f->fd = -1;
	f->actions = SG_MILTER_SMFIF_ADDHDRS | SG_MILTER_SMFIF_CHGHDRS | SG_MILTER_SMFIF_QUARANTINE;
	f->protocol = 0;
	snprintf(f->path, sizeof(f->path), "%s", path);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	sg_timer_init(&f->timer, fake_later, f);
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -1;
	if (!listening) {
		close(f->listen_fd);
		f->listen_fd = -1;
		return 0;
	}
	if (listen(f->listen_fd, 16) < 0)
		return -1;
	sg_watch_init(&f->listen_watch, f->listen_fd, fake_accept, f);
	return sg_loop_watch(loop, &f->listen_watch, EPOLLIN);
}

static void fake_stop(struct fake *f)
{
	sg_loop_timer_cancel(f->loop, &f->timer);
	fake_drop(f);
	if (f->listen_fd >= 0) {
		sg_loop_unwatch(f->loop, &f->listen_watch);
		close(f->listen_fd);
		f->listen_fd = -1;
	}
	unlink(f->path);
	free(f->body);
	f->body = NULL;
}

/* ---- its script ---- */

/* On command `on`, it also answers the packet (cmd, data). */
static void script(struct fake *f, char on, char cmd, const void *data, size_t n)
{
	struct script_answer *a = &f->answer[(unsigned char)on];

	a->set = 1;
	packet_to(a->bytes, &a->len, sizeof(a->bytes), cmd, data, n);
}

/* A NUL-terminated string as the data ('y', 'q'). */
static void script_str(struct fake *f, char on, char cmd, const char *s)
{
	script(f, on, cmd, s, strlen(s) + 1);
}

/* Bytes as they are, framing and all (a lying length). */
static void script_raw(struct fake *f, char on, const void *bytes, size_t n)
{
	struct script_answer *a = &f->answer[(unsigned char)on];

	if (!ASSERT_TRUE(a->len + n <= sizeof(a->bytes), "fake: raw bytes fit its script"))
		return;
	a->set = 1;
	memcpy(a->bytes + a->len, bytes, n);
	a->len += n;
}

/* It answers nothing to `on`. */
static void script_silent(struct fake *f, char on)
{
	f->answer[(unsigned char)on].set = 1;
	f->answer[(unsigned char)on].len = 0;
}

static void script_clear(struct fake *f, char on)
{
	f->answer[(unsigned char)on].set = 0;
	f->answer[(unsigned char)on].len = 0;
}

/* ---- the engine's side: a session of the relay ---- */

struct rig {
	struct sg_loop *loop;
	struct fake fake;
	struct sg_milter_stats stats;
	struct sg_milter_config cfg;
	struct sg_scanner sc;
	void *sessions[SG_MAX_ENGINES];
	struct sg_scan scan;
	int woken;
	int held_seen, woken_after_hold;
	int held_while_paused;	/* held while the fake milter read nothing */
	uint64_t took_ns;	/* from the message's start to its verdict */
};

static void rig_wake(void *owner)
{
	((struct rig *)owner)->woken++;
}

static struct rig *rig_start(const char *name, enum sg_verdict_kind default_action, int listening)
{
	static int sockets;
	struct rig *r = calloc(1, sizeof(*r));
	char path[108], spec[128], err[256], label[160];

	if (!r)
		return NULL;
	r->loop = sg_loop_new();
	/* short: the spec is in every note, and notes are SG_NOTES_LEN */
	snprintf(path, sizeof(path), "%s/m%d.sock", tmpdir, ++sockets);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	snprintf(label, sizeof(label), "%s: the fake milter listens", name);
	if (!r->loop) {
		free(r);
		return NULL;
	}
	if (!ASSERT_EQ(fake_start(&r->fake, r->loop, path, listening), 0, label)) {
		fake_stop(&r->fake);
		sg_loop_free(r->loop);
		free(r);
		return NULL;
	}
	snprintf(label, sizeof(label), "%s: configured", name);
	ASSERT_EQ(sg_milter_config_init(&r->cfg, spec, CONNECT_TIMEOUT_NS, COMMAND_TIMEOUT_NS,
					CONTENT_TIMEOUT_NS, default_action, &r->stats, err,
					sizeof(err)), 0, label);
	r->sc.failure_action = SG_TEMPFAIL;
	sg_scanner_add(&r->sc, &sg_milter_engine, &r->cfg);
	return r;
}

static void rig_begin(struct rig *r, const struct sg_envelope *env)
{
	struct sg_scan_host host = {
		.loop = r->loop, .wake = rig_wake, .owner = r, .sessions = r->sessions,
	};

	r->held_seen = r->woken_after_hold = r->held_while_paused = 0;
	sg_scan_begin(&r->scan, &r->sc, env, &host);
}

/* Feeds the message in pieces as the relay does: never while the body is
 * held (the loop runs until it is let go); -1 when it stays held. */
static int rig_feed(struct rig *r, const char *p, size_t n, size_t piece, uint64_t deadline)
{
	for (size_t off = 0; off < n;) {
		size_t k = n - off < piece ? n - off : piece;

		if (sg_scan_held(&r->scan)) {
			int woken = r->woken;

			r->held_seen = 1;
			while (sg_scan_held(&r->scan) && sg_now_ns() < deadline) {
				if (r->fake.paused)
					r->held_while_paused = 1;
				sg_loop_run_once(r->loop, 10 * MS);
			}
			if (sg_scan_held(&r->scan))
				return -1;
			if (r->woken > woken)
				r->woken_after_hold = 1;
		}
		sg_scan_feed(&r->scan, p + off, k);
		off += k;
		if (off < n)
			sg_loop_run_once(r->loop, 0);
	}
	return 0;
}

/* Asks for the verdict, and again each time the host is woken, until it
 * comes; a scan still waiting at the deadline is stuck: ended, and its
 * verdict's kind 99. */
static int rig_verdict(struct rig *r, struct sg_verdict *v, uint64_t start)
{
	uint64_t deadline = start + CASE_LIMIT_NS;
	int step;

	for (;;) {
		int woken = r->woken;

		step = sg_scan_verdict(&r->scan, v);
		if (step != SG_ENGINE_WAIT)
			break;
		while (r->woken == woken && sg_now_ns() < deadline)
			sg_loop_run_once(r->loop, 10 * MS);
		if (r->woken == woken) {
			sg_scan_end(&r->scan);
			v->kind = (enum sg_verdict_kind)99;
			snprintf(v->reason, sizeof(v->reason), "stuck: no verdict within 5 s");
			break;
		}
	}
	r->took_ns = sg_now_ns() - start;
	return step;
}

static int rig_message(struct rig *r, const struct sg_envelope *env, const char *msg, size_t n,
		       size_t piece, struct sg_verdict *v)
{
	uint64_t start = sg_now_ns();

	rig_begin(r, env);
	if (rig_feed(r, msg, n, piece, start + CASE_LIMIT_NS) < 0) {
		sg_scan_end(&r->scan);
		v->kind = (enum sg_verdict_kind)99;
		snprintf(v->reason, sizeof(v->reason), "stuck: held for 5 s");
		return SG_ENGINE_WAIT;
	}
	return rig_verdict(r, v, start);
}

/* Runs the loop until cond(r) or ms have passed. */
static int rig_run_until(struct rig *r, int (*cond)(struct rig *r), uint64_t ms)
{
	uint64_t deadline = sg_now_ns() + ms * MS;

	while (!cond(r) && sg_now_ns() < deadline)
		sg_loop_run_once(r->loop, 5 * MS);
	return cond(r);
}

static int fake_hung_up(struct rig *r)
{
	return r->fake.fd < 0;
}

/* The session ends: its connection must close (the fake reads its end). */
static void rig_stop(struct rig *r, const char *name)
{
	char label[160];
	int connected;

	if (r->fake.paused) {	/* it reads again, to see the engine's end */
		sg_loop_timer_cancel(r->loop, &r->fake.timer);
		r->fake.paused = 0;
		sg_loop_watch(r->loop, &r->fake.watch, EPOLLIN);
	}
	connected = r->fake.fd >= 0;
	sg_scan_end(&r->scan);
	sg_scan_session_end(&r->sc, r->sessions);
	snprintf(label, sizeof(label), "%s: the session's end empties its slot", name);
	ASSERT_TRUE(r->sessions[0] == NULL, label);
	if (connected) {
		snprintf(label, sizeof(label), "%s: the connection is closed at the session's end",
			 name);
		ASSERT_TRUE(rig_run_until(r, fake_hung_up, 1000), label);
	}
	snprintf(label, sizeof(label), "%s: the fake milter was sent nothing it could not read",
		 name);
	ASSERT_EQ(r->fake.bad, 0, label);
	fake_stop(&r->fake);
	sg_loop_free(r->loop);
	free(r);
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int no_control_bytes(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

static uint64_t faults_total(const struct sg_milter_stats *s)
{
	uint64_t n = 0;

	for (int i = 0; i < SG_MILTER_FAULT__COUNT; i++)
		n += s->faults[i];
	return n;
}

/* ---- what the engine logs (stderr), caught for a case ---- */

static char log_file[128];
static int log_saved = -1;

static void log_catch(void)
{
	int fd = open(log_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	fflush(stderr);
	log_saved = dup(2);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
}

/* What was logged since log_catch, into out; also shown on stderr. */
static void log_release(char *out, size_t len)
{
	int fd;
	ssize_t n = 0;

	fflush(stderr);
	if (log_saved >= 0) {
		dup2(log_saved, 2);
		close(log_saved);
		log_saved = -1;
	}
	fd = open(log_file, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, out, len - 1);
		close(fd);
	}
	out[n > 0 ? n : 0] = '\0';
	fputs(out, stderr);
}

/* ---- the messages ---- */

static const struct sg_envelope env_two = {
	.vm = "192.0.2.11:4000", .vm_ip = "192.0.2.11", .vm_port = 4000, .helo = "vm.example",
	.mail_from = "a@example.org", .rcpt_domains = "example.net,example.com",
	.rcpt_addrs = "b@example.net\nc@example.com", .rcpts = 2, .ref = "Q1",
};

static const struct sg_envelope env_bounce = {
	.vm = "192.0.2.11:4000", .vm_ip = "192.0.2.11", .vm_port = 4000, .helo = "vm.example",
	.mail_from = "", .rcpt_domains = "example.net", .rcpt_addrs = "d@example.net",
	.rcpts = 1, .ref = "Q2",
};

/* As the relay feeds it: dot-stuffed, without the final ".\r\n". */
static const char msg_good[] =
	"Subject: hello\r\n"
	"X-Folded: one\r\n"
	"\ttwo\r\n"
	"X-Tight:value\r\n"
	"X-Two:  two\r\n"
	"To: <b@example.net>\r\n"
	"\r\n"
	"first line\r\n"
	"..a stuffed dot\r\n"
	"\r\n"
	"last\r\n";
static const char body_good[] = "first line\r\n.a stuffed dot\r\n\r\nlast\r\n";

static const char msg_small[] = "Subject: small\r\n\r\nhello\r\n";

#define S(x) x, sizeof(x) - 1	/* a literal's bytes */
#define Z(x) x, sizeof(x)	/* and its final NUL: a reply's strings */

/* The dialogue of msg_good from MAIL on, with the envelope's sender and
 * recipients as the milter sees them. */
static void dialogue_from_mail(char *out, size_t len, const char *mail, const char *rcpts)
{
	snprintf(out, len,
		 "macros M\n"
		 "mail %s\n"
		 "%s"
		 "macros T\n"
		 "data\n"
		 "header Subject=hello\n"
		 "header X-Folded=one\\n\\ttwo\n"
		 "header X-Tight=value\n"
		 "header X-Two= two\n"
		 "header To=<b@example.net>\n"
		 "macros N\n"
		 "eoh\n"
		 "body %zu\n"
		 "macros E\n"
		 "eom\n", mail, rcpts, sizeof(body_good) - 1);
}

#define BIG_HEAD "Subject: big\r\n\r\n"

/* A body of n bytes, lines of 64, one in eight beginning with a dot; and
 * the message as the relay feeds it (a header, the body dot-stuffed). */
static void make_body(size_t n, char **body, char **msg, size_t *msg_len)
{
	size_t b = 0, m = 0;
	static const char head[] = BIG_HEAD;

	*body = malloc(n);
	*msg = malloc(sizeof(head) + n + n / 64 + 64);
	if (!*body || !*msg) {
		free(*body);
		free(*msg);
		*body = *msg = NULL;
		return;
	}
	memcpy(*msg, head, sizeof(head) - 1);
	m = sizeof(head) - 1;
	for (size_t line = 0; b < n; line++) {
		char l[128];
		size_t k;

		snprintf(l, sizeof(l), "%s%06zu %s", line % 8 == 3 ? "." : "", line,
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
		k = strlen(l) > 62 ? 62 : strlen(l);
		l[k++] = '\r';
		l[k++] = '\n';
		if (k > n - b) {	/* the last line, cut to fit, still ends with CRLF */
			k = n - b;
			if (k >= 2) {
				l[k - 2] = '\r';
				l[k - 1] = '\n';
			}
		}
		memcpy(*body + b, l, k);
		b += k;
		if (l[0] == '.')
			(*msg)[m++] = '.';
		memcpy(*msg + m, l, k);
		m += k;
	}
	*msg_len = m;
}

/* ---- 1: a good milter ---- */

static void test_good(void)
{
	struct rig *r = rig_start("good", SG_TEMPFAIL, 1);
	struct sg_verdict v;
	char want[2048], mail_on[1024];

	if (!r)
		return;
	ASSERT_EQ(rig_message(r, &env_two, S(msg_good), sizeof(msg_good), &v), SG_ENGINE_DONE,
		  "good: the verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "good: continue at the end of the message accepts");
	ASSERT_STREQ(v.reason, "clean", "good: the reason is clean");
	ASSERT_STREQ(v.code, "", "good: no reply code");
	dialogue_from_mail(mail_on, sizeof(mail_on), "<a@example.org>",
			   "macros R\nrcpt <b@example.net>\nmacros R\nrcpt <c@example.com>\n");
	snprintf(want, sizeof(want),
		 "optneg 6\n"
		 "macros C\n"
		 "connect unknown 4 4000 192.0.2.11\n"
		 "helo vm.example\n"
		 "%s", mail_on);
	ASSERT_STREQ(r->fake.log, want, "good: the milter is sent the message as Postfix sends it");
	ASSERT_EQ(r->fake.body_len, sizeof(body_good) - 1, "good: the body's length, unstuffed");
	ASSERT_TRUE(r->fake.body_len == sizeof(body_good) - 1 &&
		    memcmp(r->fake.body, body_good, r->fake.body_len) == 0,
		    "good: the body's bytes, CRLFs kept, dot-stuffing undone");

	/* the second message of the session, fed in small pieces */
	fake_log_clear(&r->fake);
	r->fake.body_len = 0;
	ASSERT_EQ(rig_message(r, &env_bounce, S(msg_good), 7, &v), SG_ENGINE_DONE,
		  "good: the second message's verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "good: the second message is accepted");
	dialogue_from_mail(want, sizeof(want), "<>", "macros R\nrcpt <d@example.net>\n");
	ASSERT_STREQ(r->fake.log, want,
		     "good: the second message reuses the connection, from mail on "
		     "(null sender, one recipient)");
	ASSERT_TRUE(r->fake.body_len == sizeof(body_good) - 1 &&
		    memcmp(r->fake.body, body_good, r->fake.body_len) == 0,
		    "good: the second body, fed 7 bytes at a time, arrives whole");

	/* a third, of headers alone: no body chunk, the end all the same */
	fake_log_clear(&r->fake);
	ASSERT_EQ(rig_message(r, &env_two, S("Subject: only\r\n"), 64, &v), SG_ENGINE_DONE,
		  "good: a message of headers alone gets its verdict");
	ASSERT_EQ(v.kind, SG_ACCEPT, "good: a message of headers alone is accepted");
	ASSERT_STREQ(r->fake.log,
		     "macros M\nmail <a@example.org>\nmacros R\nrcpt <b@example.net>\n"
		     "macros R\nrcpt <c@example.com>\nmacros T\ndata\nheader Subject=only\n"
		     "macros N\neoh\nmacros E\neom\n",
		     "good: headers alone: the header, the end of the headers, the end");
	ASSERT_EQ(r->fake.connections, 1, "good: one connection for the session");
	ASSERT_EQ(r->stats.connections, 1, "good: stats count one connection");
	ASSERT_EQ(r->stats.messages, 3, "good: stats count three messages");
	ASSERT_EQ(r->stats.accepted, 3, "good: stats count three accepted");
	ASSERT_EQ(faults_total(&r->stats), 0, "good: no fault counted");

	/* the session ends between messages: a polite quit, then the close */
	fake_log_clear(&r->fake);
	sg_scan_session_end(&r->sc, r->sessions);
	ASSERT_TRUE(rig_run_until(r, fake_hung_up, 1000),
		    "good: the session's end closes the connection");
	ASSERT_STREQ(r->fake.log, "quit\n", "good: the milter is told quit first");
	rig_stop(r, "good");
}

/* A milter that answers no header, end of headers or body chunk (NR_*),
 * and wants the headers' leading space; a VM on IPv6. */
static void test_flags(void)
{
	static const struct sg_envelope env6 = {
		.vm = "[2001:db8::11]:4001", .vm_ip = "2001:db8::11", .vm_port = 4001,
		.helo = "vm6.example", .mail_from = "a@example.org", .rcpt_domains = "example.net",
		.rcpt_addrs = "b@example.net", .rcpts = 1, .ref = "Q3",
	};
	struct rig *r = rig_start("flags", SG_TEMPFAIL, 1);
	struct sg_verdict v;
	char want[2048];

	if (!r)
		return;
	r->fake.protocol = SG_MILTER_SMFIP_NR_HDR | SG_MILTER_SMFIP_NR_EOH |
			   SG_MILTER_SMFIP_NR_BODY | SG_MILTER_SMFIP_HDR_LEADSPC;
	script_silent(&r->fake, 'L');
	script_silent(&r->fake, 'N');
	script_silent(&r->fake, 'B');
	ASSERT_EQ(rig_message(r, &env6, S(msg_good), sizeof(msg_good), &v), SG_ENGINE_DONE,
		  "flags: the verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "flags: accepted");
	snprintf(want, sizeof(want),
		 "optneg 6\n"
		 "macros C\n"
		 "connect unknown 6 4001 2001:db8::11\n"
		 "helo vm6.example\n"
		 "macros M\n"
		 "mail <a@example.org>\n"
		 "macros R\n"
		 "rcpt <b@example.net>\n"
		 "macros T\n"
		 "data\n"
		 "header Subject= hello\n"
		 "header X-Folded= one\\n\\ttwo\n"
		 "header X-Tight=value\n"
		 "header X-Two=  two\n"
		 "header To= <b@example.net>\n"
		 "macros N\n"
		 "eoh\n"
		 "body %zu\n"
		 "macros E\n"
		 "eom\n", sizeof(body_good) - 1);
	ASSERT_STREQ(r->fake.log, want,
		     "flags: every command sent without awaiting what the milter will not answer; "
		     "the leading space kept; family 6");
	ASSERT_EQ(faults_total(&r->stats), 0, "flags: no fault counted");
	rig_stop(r, "flags");
}

/* A header longer than a milter command may be (64 KiB): 70 folded lines
 * of 998 bytes. Postfix's header_size_limit is 100 KiB; libmilter takes
 * 64 KiB a command. The milter must still judge the message. */
static void test_long_header(void)
{
	static const char head[] = "Subject: long\r\nX-Long: start\r\n";
	static const char tail[] = "\r\nbody\r\n";
	struct rig *r = rig_start("long header", SG_ACCEPT, 1);
	struct sg_verdict v;
	size_t n = sizeof(head) - 1 + 70 * 998 + sizeof(tail) - 1, off;
	char *msg = malloc(n);

	if (!r || !msg) {
		free(msg);
		if (r)
			rig_stop(r, "long header");
		return;
	}
	memcpy(msg, head, sizeof(head) - 1);
	off = sizeof(head) - 1;
	for (int i = 0; i < 70; i++) {
		msg[off] = '\t';
		memset(msg + off + 1, 'y', 995);
		memcpy(msg + off + 996, "\r\n", 2);
		off += 998;
	}
	memcpy(msg + off, tail, sizeof(tail) - 1);
	ASSERT_EQ(rig_message(r, &env_two, msg, n, 16384, &v), SG_ENGINE_DONE,
		  "long header: the verdict comes");
	ASSERT_EQ(faults_total(&r->stats), 0,
		  "long header: a 70 KB header is no milter fault (cut to what a command takes)");
	ASSERT_TRUE(v.kind == SG_ACCEPT && !r->scan.failed,
		    "long header: accepted by the milter, not by its default action");
	ASSERT_EQ(r->fake.packets['L'], 2, "long header: both headers sent");
	ASSERT_EQ(r->fake.packets['E'], 1, "long header: the milter saw the end of the message");
	ASSERT_TRUE(r->fake.body_len == 6 && memcmp(r->fake.body, "body\r\n", 6) == 0,
		    "long header: the body after it arrives");
	free(msg);
	rig_stop(r, "long header");
}

/* ---- 2: what the end's reply means ---- */

struct final_reply {
	const char *name;
	char cmd;
	const char *text;	/* 'y' */
	enum sg_verdict_kind kind;
	const char *code;
	const char *reason;	/* a fragment of it */
};

static void test_replies(void)
{
	static const struct final_reply replies[] = {
		{ "reject", 'r', NULL, SG_REJECT, "", "rejected" },
		{ "tempfail", 't', NULL, SG_TEMPFAIL, "", "deferred" },
		{ "discard", 'd', NULL, SG_REJECT, "", "discard" },
		{ "replycode 554", 'y', "554 5.7.1 Gtube pattern", SG_REJECT, "554 5.7.1",
		  "Gtube pattern" },
		{ "replycode 451", 'y', "451 4.7.1 Try again later", SG_TEMPFAIL, "451 4.7.1",
		  "Try again later" },
		{ "replycode without an enhanced code", 'y', "554 Go away", SG_REJECT, "554 5.7.1",
		  "Go away" },
		{ "replycode with %%", 'y', "550 5.7.1 100%% spam", SG_REJECT, "550 5.7.1",
		  "100% spam" },
		{ "replycode of two lines", 'y', "550-5.7.1 first line\r\n550 5.7.1 second line",
		  SG_REJECT, "550 5.7.1", "first line" },
		{ "replycode with a tab", 'y', "550 5.7.1 tab\there", SG_REJECT, "550 5.7.1",
		  "tab here" },
		/* refused by the decoder: a protocol fault, the default action */
		{ "replycode with a bare LF", 'y', "550 5.7.1 evil\nX-Injected: yes", SG_TEMPFAIL,
		  "", "bare LF" },
		{ "replycode with an escape", 'y', "550 5.7.1 evil\x1b[31m red", SG_TEMPFAIL, "",
		  "control character 0x1b" },
	};
	struct rig *r = rig_start("reply", SG_TEMPFAIL, 1);
	struct sg_verdict v;
	char label[200], by[128];

	if (!r)
		return;
	snprintf(by, sizeof(by), "milter %s", r->cfg.spec);
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		const struct final_reply *f = &replies[i];

		script_clear(&r->fake, 'E');
		if (f->text)
			script_str(&r->fake, 'E', f->cmd, f->text);
		else
			script(&r->fake, 'E', f->cmd, NULL, 0);
		snprintf(label, sizeof(label), "reply %s: the verdict comes", f->name);
		ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE, label);
		snprintf(label, sizeof(label), "reply %s: the verdict's kind", f->name);
		ASSERT_EQ(v.kind, f->kind, label);
		snprintf(label, sizeof(label), "reply %s: the verdict's code", f->name);
		ASSERT_STREQ(v.code, f->code, label);
		snprintf(label, sizeof(label), "reply %s: the reason says what it said", f->name);
		ASSERT_CONTAINS(v.reason, f->reason, label);
		snprintf(label, sizeof(label), "reply %s: the verdict names the milter (by)",
			 f->name);
		ASSERT_STREQ(v.by, by, label);
		snprintf(label, sizeof(label), "reply %s: the VM is not told the milter's address",
			 f->name);
		ASSERT_TRUE(!strstr(v.reason, r->cfg.spec), label);
		snprintf(label, sizeof(label), "reply %s: no CR, LF or control byte in the reason",
			 f->name);
		ASSERT_TRUE(no_control_bytes(v.reason), label);
	}
	ASSERT_EQ(r->stats.rejected, 7, "reply: stats count the rejects (discard among them)");
	ASSERT_EQ(r->stats.tempfailed, 2, "reply: stats count the tempfails");
	ASSERT_EQ(r->stats.discarded, 1, "reply: stats count the discard");
	ASSERT_EQ(r->stats.faults[SG_MILTER_FAULT_PROTOCOL], 2,
		  "reply: the replycodes the decoder refuses are protocol faults");
	ASSERT_EQ(r->fake.connections, 2,
		  "reply: a broken connection is replaced at the next message");
	rig_stop(r, "reply");
}

/* ---- 3: accept and reject at connect: the session's every message ---- */

static void test_session_verdicts(void)
{
	struct sg_verdict v;
	struct rig *r = rig_start("connect accept", SG_TEMPFAIL, 1);

	if (r) {
		script(&r->fake, 'C', 'a', NULL, 0);
		ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
			  "connect accept: the first verdict comes");
		ASSERT_EQ(v.kind, SG_ACCEPT, "connect accept: the first message is accepted");
		ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
			  "connect accept: the second verdict comes");
		ASSERT_EQ(v.kind, SG_ACCEPT, "connect accept: the second message is accepted");
		ASSERT_TRUE(r->took_ns < 100 * MS, "connect accept: the second at once");
		ASSERT_STREQ(r->fake.log, "optneg 6\nmacros C\nconnect unknown 4 4000 192.0.2.11\n",
			     "connect accept: no mail is ever sent");
		rig_stop(r, "connect accept");
	}
	r = rig_start("connect reject", SG_ACCEPT, 1);
	if (r) {
		script(&r->fake, 'C', 'r', NULL, 0);
		ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
			  "connect reject: the first verdict comes");
		ASSERT_EQ(v.kind, SG_REJECT, "connect reject: the first message is refused");
		ASSERT_CONTAINS(v.reason, "the session refused",
				"connect reject: the reason says so");
		ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
			  "connect reject: the second verdict comes");
		ASSERT_EQ(v.kind, SG_REJECT, "connect reject: the second message is refused");
		ASSERT_TRUE(r->took_ns < 100 * MS, "connect reject: the second at once");
		ASSERT_EQ(r->fake.packets['M'], 0, "connect reject: no mail is ever sent");
		rig_stop(r, "connect reject");
	}
}

/* Accept in reply to a body chunk: the message is accepted there, no more
 * of it goes, and the milter is told to forget it before the next. */
static void test_accept_mid_body(void)
{
	struct rig *r = rig_start("body accept", SG_TEMPFAIL, 1);
	struct sg_verdict v;
	char *body = NULL, *msg = NULL;
	size_t msg_len = 0;

	if (!r)
		return;
	make_body(100 * 1024, &body, &msg, &msg_len);
	script(&r->fake, 'B', 'a', NULL, 0);
	ASSERT_EQ(rig_message(r, &env_two, msg, msg_len, 16384, &v), SG_ENGINE_DONE,
		  "body accept: the verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "body accept: accepted");
	ASSERT_EQ(r->fake.packets['B'] * 10 + r->fake.packets['E'], 10,
		  "body accept: one body chunk, then nothing of the message");
	fake_log_clear(&r->fake);
	script_clear(&r->fake, 'B');
	ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
		  "body accept: the next message's verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "body accept: the next message accepted");
	ASSERT_TRUE(starts_with(r->fake.log, "abort\nmacros M\n"),
		    "body accept: abort before the next mail");
	free(body);
	free(msg);
	rig_stop(r, "body accept");
}

/* ---- 4: progress restarts the timer ---- */

static void test_progress(void)
{
	struct rig *r = rig_start("progress", SG_TEMPFAIL, 1);
	struct sg_verdict v;

	if (!r)
		return;
	r->fake.progress = 8;	/* 800 ms of progress, twice the content timeout */
	ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
		  "progress: the verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "progress: then continue accepts");
	ASSERT_STREQ(v.reason, "clean", "progress: the reason is clean");
	ASSERT_TRUE(r->took_ns >= 8 * PROGRESS_EVERY_NS,
		    "progress: waited past the content timeout for the final reply");
	ASSERT_EQ(faults_total(&r->stats), 0, "progress: no timeout counted");
	rig_stop(r, "progress");
}

/* ---- 5: quarantine and header changes, recorded ---- */

static void test_changes(void)
{
	struct rig *r = rig_start("changes", SG_TEMPFAIL, 1);
	struct sg_verdict v;

	if (!r)
		return;
	script_str(&r->fake, 'E', 'q', "spammy\x01" "score");
	script(&r->fake, 'E', 'h', Z("X-Spam\0yes"));
	script(&r->fake, 'E', 'm', Z("\0\0\0\1Subject\0[SPAM] hello"));
	script(&r->fake, 'E', 'm', Z("\0\0\0\1X-Old\0"));
	script(&r->fake, 'E', 'c', NULL, 0);
	ASSERT_EQ(rig_message(r, &env_two, S(msg_good), 64, &v), SG_ENGINE_DONE,
		  "changes: the verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "changes: then continue accepts");
	ASSERT_CONTAINS(r->scan.notes, r->cfg.spec, "changes: the notes name the milter");
	ASSERT_CONTAINS(r->scan.notes, "quarantine (spammy score)",
			"changes: the quarantine and its reason (made printable) noted");
	ASSERT_CONTAINS(r->scan.notes, "add header X-Spam: yes", "changes: the added header noted");
	ASSERT_CONTAINS(r->scan.notes, "change header Subject: [SPAM] hello",
			"changes: the changed header noted");
	ASSERT_CONTAINS(r->scan.notes, "delete header X-Old", "changes: the deleted header noted");
	ASSERT_EQ(r->scan.flagged, 1, "changes: the quarantine flags the message");
	ASSERT_EQ(r->stats.quarantined, 1, "changes: stats count the quarantine");
	ASSERT_EQ(faults_total(&r->stats), 0, "changes: no fault counted");
	rig_stop(r, "changes");
}

/* ---- 6: skip ---- */

static void test_skip(void)
{
	struct rig *r = rig_start("skip", SG_TEMPFAIL, 1);
	struct sg_verdict v;
	char *body = NULL, *msg = NULL;
	size_t msg_len = 0;
	const char *chunk;

	if (!r)
		return;
	make_body(200 * 1024, &body, &msg, &msg_len);
	if (!ASSERT_TRUE(body && msg, "skip: a 200 KiB message")) {
		rig_stop(r, "skip");
		return;
	}
	script(&r->fake, 'B', 's', NULL, 0);
	ASSERT_EQ(rig_message(r, &env_two, msg, msg_len, 16384, &v), SG_ENGINE_DONE,
		  "skip: the verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "skip: accepted");
	ASSERT_EQ(r->fake.packets['B'], 1, "skip: no body chunk after the skip");
	ASSERT_EQ(r->fake.packets['E'], 1, "skip: the end of the message is still sent");
	chunk = strstr(r->fake.log, "body ");
	ASSERT_TRUE(chunk && strstr(chunk, "\nmacros E\neom\n") == strchr(chunk, '\n'),
		    "skip: the end follows the skipped chunk");
	ASSERT_TRUE(r->fake.body_len > 0 && memcmp(r->fake.body, body, r->fake.body_len) == 0,
		    "skip: the chunk sent is the body's start");
	ASSERT_EQ(faults_total(&r->stats), 0, "skip: no fault counted");
	free(body);
	free(msg);
	rig_stop(r, "skip");
}

/* ---- 7: faults ---- */

struct fault_case {
	const char *name;
	enum sg_verdict_kind default_action;
	int listening;
	void (*script)(struct fake *f);
	enum sg_milter_fault fault;
	const char *why;		/* what the reason and the log say */
	uint64_t min_ns, max_ns;	/* when the verdict comes */
	size_t body_kib;		/* a body this big, its chunks sent while it streams */
	int holds;			/* the body is held, then let go */
};

static void script_no_optneg(struct fake *f)
{
	script_silent(f, 'O');
}

static void script_no_eom(struct fake *f)
{
	script_silent(f, 'E');
}

static void script_stops_reading(struct fake *f)
{
	f->pause_on = 'B';
	f->pause_ns = 10000 * MS;	/* past the case: it never reads again */
}

static void script_close_mid_body(struct fake *f)
{
	f->close_on = 'B';
}

static void script_length_zero(struct fake *f)
{
	script_raw(f, 'M', "\0\0\0\0", 4);
}

static void script_length_huge(struct fake *f)
{
	script_raw(f, 'M', "\x00\x4c\x4b\x40" "c", 5);	/* 5,000,000 */
}

static void script_unknown_letter(struct fake *f)
{
	script(f, 'H', 'Z', NULL, 0);
}

static void script_unsolicited(struct fake *f)
{
	char d[12];

	put_be32(d, 6);
	put_be32(d + 4, f->actions);
	put_be32(d + 8, 0);
	script(f, 'O', 'O', d, sizeof(d));
	script(f, 'O', 'c', NULL, 0);
}

static void script_change_at_rcpt(struct fake *f)
{
	script(f, 'R', 'h', Z("X-Early\0yes"));
}

static void script_replycode_250(struct fake *f)
{
	script_str(f, 'E', 'y', "250 2.0.0 ok");
}

static void script_skip_at_mail(struct fake *f)
{
	script(f, 'M', 's', NULL, 0);
}

static void script_optneg_extra_action(struct fake *f)
{
	char d[12];

	put_be32(d, 6);
	put_be32(d + 4, 0x400);	/* an action not offered */
	put_be32(d + 8, 0);
	script(f, 'O', 'O', d, sizeof(d));
}

static void test_fault(const struct fault_case *fc)
{
	struct rig *r;
	struct sg_verdict v;
	char label[200], logged[8192], fault_words[64], by[128];
	char *body = NULL, *msg = NULL;
	size_t msg_len = 0;
	int step;

	snprintf(label, sizeof(label), "fault %s", fc->name);
	r = rig_start(label, fc->default_action, fc->listening);
	if (!r)
		return;
	if (fc->script)
		fc->script(&r->fake);
	if (fc->body_kib)
		make_body(fc->body_kib * 1024, &body, &msg, &msg_len);
	log_catch();
	if (msg)
		step = rig_message(r, &env_two, msg, msg_len, 16384, &v);
	else
		step = rig_message(r, &env_two, S(msg_good), 64, &v);
	log_release(logged, sizeof(logged));
	snprintf(label, sizeof(label), "fault %s: the verdict comes (never a stuck scan)",
		 fc->name);
	ASSERT_EQ(step, SG_ENGINE_DONE, label);
	snprintf(label, sizeof(label), "fault %s: the verdict is the default action", fc->name);
	ASSERT_EQ(v.kind, fc->default_action, label);
	snprintf(label, sizeof(label), "fault %s: within its time (%llu..%llu ms)", fc->name,
		 (unsigned long long)(fc->min_ns / MS), (unsigned long long)(fc->max_ns / MS));
	ASSERT_TRUE(r->took_ns >= fc->min_ns && r->took_ns <= fc->max_ns, label);
	if (fc->default_action == SG_ACCEPT) {
		/* an accepted message's reason is the scanner's */
		snprintf(label, sizeof(label), "fault %s: accepted, the engine named as failed",
			 fc->name);
		ASSERT_STREQ(v.reason, "accepted: the milter engine failed", label);
	} else {
		snprintf(by, sizeof(by), "milter %s", r->cfg.spec);
		snprintf(label, sizeof(label), "fault %s: the verdict names the milter (by)",
			 fc->name);
		ASSERT_STREQ(v.by, by, label);
		snprintf(label, sizeof(label), "fault %s: the reason says what was wrong",
			 fc->name);
		ASSERT_CONTAINS(v.reason, fc->why, label);
		snprintf(label, sizeof(label), "fault %s: no control byte in the reason", fc->name);
		ASSERT_TRUE(no_control_bytes(v.reason), label);
	}
	snprintf(label, sizeof(label), "fault %s: the log line names the milter", fc->name);
	ASSERT_CONTAINS(logged, r->cfg.spec, label);
	snprintf(label, sizeof(label), "fault %s: the log line says what was wrong", fc->name);
	ASSERT_CONTAINS(logged, fc->why, label);
	snprintf(fault_words, sizeof(fault_words), "(%s fault)", sg_milter_fault_name(fc->fault));
	snprintf(label, sizeof(label), "fault %s: the log line names the fault %s", fc->name,
		 fault_words);
	ASSERT_CONTAINS(logged, fault_words, label);
	if (fc->fault == SG_MILTER_FAULT_TIMEOUT) {
		/* 300 ms is not "0s" */
		snprintf(label, sizeof(label), "fault %s: the log says how long it waited, not 0s",
			 fc->name);
		ASSERT_TRUE(!strstr(logged, "within 0s"), label);
	}
	if (fc->holds) {
		snprintf(label, sizeof(label), "fault %s: the body is held meanwhile", fc->name);
		ASSERT_EQ(r->held_while_paused, 1, label);
		snprintf(label, sizeof(label), "fault %s: and let go, the host woken", fc->name);
		ASSERT_EQ(r->woken_after_hold, 1, label);
	}
	snprintf(label, sizeof(label), "fault %s: counted as a %s fault", fc->name,
		 sg_milter_fault_name(fc->fault));
	ASSERT_EQ(r->stats.faults[fc->fault], 1, label);
	snprintf(label, sizeof(label), "fault %s: and as nothing else", fc->name);
	ASSERT_EQ(faults_total(&r->stats), 1, label);
	free(body);
	free(msg);
	snprintf(label, sizeof(label), "fault %s", fc->name);
	rig_stop(r, label);
}

static void test_faults(void)
{
	static const struct fault_case cases[] = {
		{ "nobody listening", SG_TEMPFAIL, 0, NULL, SG_MILTER_FAULT_CONNECT,
		  "cannot connect", 0, 100 * MS, 0, 0 },
		{ "no answer to optneg", SG_ACCEPT, 1, script_no_optneg, SG_MILTER_FAULT_TIMEOUT,
		  "no answer to the option negotiation", CONNECT_TIMEOUT_NS - 20 * MS,
		  CONNECT_TIMEOUT_NS + 1000 * MS, 0, 0 },
		{ "no answer to eom", SG_REJECT, 1, script_no_eom, SG_MILTER_FAULT_TIMEOUT,
		  "no reply to the end of the message", CONTENT_TIMEOUT_NS - 20 * MS,
		  CONTENT_TIMEOUT_NS + 1000 * MS, 0, 0 },
		{ "stops reading mid-body", SG_TEMPFAIL, 1, script_stops_reading,
		  SG_MILTER_FAULT_TIMEOUT, "no reply to a body chunk", CONTENT_TIMEOUT_NS - 20 * MS,
		  CONTENT_TIMEOUT_NS + 1000 * MS, 1024, 1 },
		{ "closes mid-body", SG_TEMPFAIL, 1, script_close_mid_body, SG_MILTER_FAULT_CLOSED,
		  "closed the connection", 0, 1000 * MS, 100, 0 },
		{ "length 0", SG_ACCEPT, 1, script_length_zero, SG_MILTER_FAULT_PROTOCOL,
		  "length 0", 0, 1000 * MS, 0, 0 },
		{ "length 5000000", SG_REJECT, 1, script_length_huge, SG_MILTER_FAULT_PROTOCOL,
		  "length 5000000", 0, 1000 * MS, 0, 0 },
		{ "unknown reply letter", SG_TEMPFAIL, 1, script_unknown_letter,
		  SG_MILTER_FAULT_PROTOCOL, "unknown reply 'Z'", 0, 1000 * MS, 0, 0 },
		{ "unsolicited continue", SG_ACCEPT, 1, script_unsolicited,
		  SG_MILTER_FAULT_PROTOCOL, "after its option negotiation, unasked", 0, 1000 * MS,
		  0, 0 },
		{ "header change at rcpt", SG_REJECT, 1, script_change_at_rcpt,
		  SG_MILTER_FAULT_PROTOCOL, "in reply to rcpt", 0, 1000 * MS, 0, 0 },
		{ "replycode 250", SG_TEMPFAIL, 1, script_replycode_250, SG_MILTER_FAULT_PROTOCOL,
		  "not a 4xx or 5xx reply", 0, 1000 * MS, 0, 0 },
		{ "skip at mail", SG_REJECT, 1, script_skip_at_mail, SG_MILTER_FAULT_PROTOCOL,
		  "skip in reply to mail", 0, 1000 * MS, 0, 0 },
		{ "optneg action not offered", SG_TEMPFAIL, 1, script_optneg_extra_action,
		  SG_MILTER_FAULT_NEGOTIATION, "not offered", 0, 1000 * MS, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_fault(&cases[i]);
}

/* A continue nobody asked for, after the end's reply: the message keeps
 * its verdict, the fault is counted, the next message opens a new
 * connection. */
static void test_extra_reply(void)
{
	struct rig *r = rig_start("extra reply", SG_TEMPFAIL, 1);
	struct sg_verdict v;
	char logged[4096];

	if (!r)
		return;
	script(&r->fake, 'E', 'c', NULL, 0);
	script(&r->fake, 'E', 'c', NULL, 0);
	log_catch();
	ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
		  "extra reply: the verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "extra reply: the message keeps its verdict");
	rig_run_until(r, fake_hung_up, 500);
	log_release(logged, sizeof(logged));
	ASSERT_EQ(r->stats.faults[SG_MILTER_FAULT_PROTOCOL], 1,
		  "extra reply: a reply when none was due is a protocol fault");
	ASSERT_CONTAINS(logged, "when no reply was due", "extra reply: logged as such");
	script_clear(&r->fake, 'E');
	ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
		  "extra reply: the next message's verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "extra reply: the next message is judged");
	ASSERT_EQ(r->fake.connections, 2, "extra reply: on a new connection");
	rig_stop(r, "extra reply");
}

/* ---- 8: a slow reader ---- */

static int fake_saw_eoh(struct rig *r)
{
	return r->fake.packets['N'] > 0;
}

static void test_slow_reader(void)
{
	struct rig *r = rig_start("slow", SG_TEMPFAIL, 1);
	struct sg_verdict v;
	char *body = NULL, *msg = NULL;
	size_t msg_len = 0, n = 1024 * 1024;
	uint64_t start;

	if (!r)
		return;
	make_body(n, &body, &msg, &msg_len);
	if (!ASSERT_TRUE(body && msg, "slow: a 1 MiB message")) {
		rig_stop(r, "slow");
		return;
	}
	r->fake.pause_on = 'B';
	r->fake.pause_ns = 150 * MS;	/* well within the content timeout */
	/* the headers first, the milter up to its body: what holds the body
	 * then is the milter's reading alone */
	start = sg_now_ns();
	rig_begin(r, &env_two);
	rig_feed(r, msg, sizeof(BIG_HEAD) - 1, 64, start + CASE_LIMIT_NS);
	ASSERT_TRUE(rig_run_until(r, fake_saw_eoh, 1000), "slow: the milter is sent the headers");
	ASSERT_EQ(sg_scan_held(&r->scan), 0, "slow: not held before the body");
	ASSERT_EQ(rig_feed(r, msg + sizeof(BIG_HEAD) - 1, msg_len - (sizeof(BIG_HEAD) - 1), 16384,
			   start + CASE_LIMIT_NS), 0,
		  "slow: the body is fed (never held for good)");
	ASSERT_EQ(rig_verdict(r, &v, start), SG_ENGINE_DONE, "slow: the verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "slow: accepted");
	ASSERT_EQ(r->held_while_paused, 1, "slow: the body is held while the milter reads nothing");
	ASSERT_EQ(r->woken_after_hold, 1, "slow: the host is woken when it is let go");
	ASSERT_EQ(r->fake.body_len, n, "slow: the whole body arrives");
	ASSERT_TRUE(r->fake.body_len == n && memcmp(r->fake.body, body, n) == 0,
		    "slow: the body arrives intact, unstuffed");
	ASSERT_EQ(faults_total(&r->stats), 0, "slow: no fault counted");
	free(body);
	free(msg);
	rig_stop(r, "slow");
}

/* ---- 9: a message let go before its verdict ---- */

static int body_chunks_before;

static int fake_saw_new_body(struct rig *r)
{
	return r->fake.packets['B'] > body_chunks_before;
}

static void test_release(void)
{
	static const char first_half[] = "Subject: cut\r\n\r\nthe start of a body\r\n";
	struct rig *r = rig_start("release", SG_TEMPFAIL, 1);
	struct sg_verdict v;
	char *body = NULL, *msg = NULL, want[2048], head[32];
	size_t msg_len = 0;

	if (!r)
		return;
	/* let go mid-body, as when another engine refused */
	rig_begin(r, &env_two);
	rig_feed(r, S(first_half), 64, sg_now_ns() + CASE_LIMIT_NS);
	ASSERT_TRUE(rig_run_until(r, fake_saw_eoh, 1000),
		    "release: the first message reaches its body");
	sg_scan_end(&r->scan);
	fake_log_clear(&r->fake);
	r->fake.body_len = 0;
	ASSERT_EQ(rig_message(r, &env_two, S(msg_good), 64, &v), SG_ENGINE_DONE,
		  "release: the next message's verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "release: the next message is accepted");
	dialogue_from_mail(want + 6, sizeof(want) - 6, "<a@example.org>",
			   "macros R\nrcpt <b@example.net>\nmacros R\nrcpt <c@example.com>\n");
	memcpy(want, "abort\n", 6);
	ASSERT_STREQ(r->fake.log, want, "release: the milter is sent abort before the next mail");
	ASSERT_EQ(r->fake.connections, 1, "release: on the same connection");

	/* let go while a reply to its body is owed; the reply, a reject,
	 * comes late, once the next message has begun */
	make_body(40 * 1024, &body, &msg, &msg_len);
	if (!ASSERT_TRUE(body && msg, "release: a 40 KiB message")) {
		rig_stop(r, "release");
		return;
	}
	r->fake.late_on = 'B';
	r->fake.late_ns = 200 * MS;
	r->fake.late_len = 0;
	packet_to(r->fake.late, &r->fake.late_len, sizeof(r->fake.late), 'r', NULL, 0);
	body_chunks_before = r->fake.packets['B'];
	rig_begin(r, &env_two);
	rig_feed(r, msg, msg_len, 16384, sg_now_ns() + CASE_LIMIT_NS);
	ASSERT_TRUE(rig_run_until(r, fake_saw_new_body, 1000),
		    "late reply: the first message's body chunk is sent");
	sg_scan_end(&r->scan);
	fake_log_clear(&r->fake);
	ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
		  "late reply: the next message is not left stuck behind the late reply");
	ASSERT_EQ(v.kind, SG_ACCEPT,
		  "late reply: the first message's reject is not the next one's");
	ASSERT_STREQ(v.reason, "clean", "late reply: the next message's own reason");
	ASSERT_TRUE(r->took_ns < CONTENT_TIMEOUT_NS + 200 * MS,
		    "late reply: the next message judged soon after the late reply");
	snprintf(head, sizeof(head), "%.20s", r->fake.log);
	ASSERT_STREQ(head, "abort\nmacros M\nmail ", "late reply: abort before the next mail");
	ASSERT_EQ(faults_total(&r->stats), 0, "late reply: no fault counted");
	free(body);
	free(msg);
	rig_stop(r, "late reply");

	/* let go before the milter even answered the negotiation: the next
	 * message is the first it hears of */
	static const char greeting_then_mail[] =
		"optneg 6\nmacros C\nconnect unknown 4 4000 192.0.2.11\nhelo vm.example\n"
		"macros M\nmail <a@example.org>\n";

	r = rig_start("early release", SG_TEMPFAIL, 1);
	if (!r)
		return;
	rig_begin(r, &env_two);
	rig_feed(r, S(msg_small), 64, sg_now_ns() + CASE_LIMIT_NS);
	sg_scan_end(&r->scan);
	ASSERT_EQ(rig_message(r, &env_two, S(msg_small), 64, &v), SG_ENGINE_DONE,
		  "early release: the next message's verdict comes");
	ASSERT_EQ(v.kind, SG_ACCEPT, "early release: the next message accepted");
	ASSERT_TRUE(starts_with(r->fake.log, greeting_then_mail),
		    "early release: connect and helo once, no abort, then the next mail");
	ASSERT_EQ(r->fake.packets['M'], 1, "early release: the message let go never reached mail");
	rig_stop(r, "early release");
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sgm-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		ASSERT_TRUE(0, "a temporary directory");
		return test_exit_status();
	}
	snprintf(log_file, sizeof(log_file), "%s/log", tmpdir);
	test_good();
	test_flags();
	test_long_header();
	test_replies();
	test_session_verdicts();
	test_accept_mid_body();
	test_progress();
	test_changes();
	test_skip();
	test_faults();
	test_extra_reply();
	test_slow_reader();
	test_release();
	unlink(log_file);
	ASSERT_EQ(rmdir(tmpdir), 0, "the temporary directory is left empty and removed");
	return test_exit_status();
}
