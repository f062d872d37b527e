/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * smtp_hold.c - holds many SMTP sessions open at once, to measure what each
 * one costs whatever sits between the client and the server (smtpguard's
 * proxy, the kernel's socket memory). Opens COUNT sessions with
 * non-blocking connects, at most PARALLEL being set up at a time (so that
 * the server's SYN and accept backlogs are not overrun), reads each
 * greeting (220), sends EHLO (250), and then holds them all.
 *
 *   idle (default): the sessions sit after EHLO.
 *   active (-a):    each also sends MAIL FROM, RCPT TO, DATA and SIZE bytes
 *                   of a message, and stays in the middle of DATA, so that
 *                   a relay in between holds a session with its buffers used.
 *
 * Once every session is established or has failed it prints
 *   held=N failed=M
 * (failures by reason on stderr), then holds until SIGTERM or SIGINT, or
 * EOF on stdin (when stdin is a pipe or a terminal), or for -t SECONDS.
 * Then it ends each session with QUIT (an active one first ends its message
 * with "."), waits a little for the replies, closes everything and prints
 *   dropped=D quit_ok=Q
 * where dropped counts held sessions the server ended while they were held.
 * Exit status: 0 when every session was held to the end, 1 when some
 * failed or were dropped (or on an error), 2 for bad arguments.
 *
 * Usage:
 *   smtp_hold [-a] [-n COUNT] [-p PARALLEL] [-s SIZE] [-t SECONDS]
 *             [-w SECONDS] [-m MAXFAIL] ADDR[:PORT]
 *     -n COUNT     sessions (default 100)
 *     -a           active sessions: stay mid-DATA
 *     -s SIZE      bytes of message an active session sends (default 4096)
 *     -p PARALLEL  sessions being set up at a time (default 256)
 *     -t SECONDS   hold this long, instead of until a signal or stdin EOF
 *     -w SECONDS   how long a session waits for a connect or a reply while
 *                  it is set up (default 30)
 *     -m MAXFAIL   stop opening sessions after MAXFAIL failures (default 0:
 *                  open them all)
 *   e.g. in the lab:
 *     lab_exec vm1 build/bench/smtp_hold -n 10000 -t 30 198.51.100.25:25
 *
 * It raises RLIMIT_NOFILE as far as it can (root may raise the hard limit)
 * and refuses to start when COUNT sessions cannot fit.
 *
 * Build (libc only):
 *   cc -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
 *      bench/smtp_hold.c -o build/bench/smtp_hold
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_NAME		"smtp_hold"
#define CLIENT_USAGE \
	"usage: smtp_hold [-a] [-n COUNT] [-p PARALLEL] [-s SIZE] [-t SECONDS] [-w SECONDS] " \
	"[-m MAXFAIL] ADDR[:PORT]"
#include "smtp_client.h"

#define DEFAULT_COUNT		100
#define DEFAULT_PARALLEL	256
#define DEFAULT_ACTIVE_SIZE	4096
#define DEFAULT_WAIT_S		30
#define MAX_COUNT		1000000UL
#define MAX_PARALLEL		10000UL
#define MAX_ACTIVE_SIZE		(16UL << 20)
#define MAX_SECONDS		(30UL * 86400)
#define QUIT_WAIT_MS		10000	/* for the replies to QUIT, all sessions together */
#define SPARE_FDS		16	/* stdio, epoll, signalfd, and some slack */
#define REPLY_LINE_MAX		512	/* RFC 5321's limit for a reply line */
#define DETAIL_LEN		200
#define MAX_EVENTS		256
#define TICK_MS			200	/* how often set-up deadlines are checked */

#define HELO_NAME		"smtp-hold.example.org"
#define MAIL_FROM		"hold@example.org"
#define RCPT_TO			"sink@example.net"

#define EV_STOP_SIGNAL		((uint64_t)-1)	/* epoll data of the signalfd */
#define EV_STDIN		((uint64_t)-2)	/* and of stdin */

struct options {
	unsigned long count;
	unsigned long parallel;
	unsigned long active_size;
	unsigned long hold_s;		/* 0: until a signal or stdin EOF */
	unsigned long wait_s;
	unsigned long max_fail;		/* 0: no limit */
	int active;
	const char *server;
};

/* A reply a session waits for, and what it sends once it has it. */
struct step {
	const char *name;
	int want;
	const char *then_send;		/* NULL: nothing */
	size_t then_len;
};

struct script {
	struct step steps[6];
	int n;
};

enum session_state {
	S_UNUSED = 0,
	S_CONNECTING,
	S_SETUP,		/* runs the set-up script */
	S_HELD,
	S_CLOSING,		/* runs the closing script */
	S_DONE,
};

struct hold_session {
	int fd;
	enum session_state state;
	int step;
	uint32_t armed;		/* epoll events registered */
	const char *out;	/* still to send: a script's text */
	size_t out_len;
	uint64_t deadline_ms;
	size_t in_len;
	char in[REPLY_LINE_MAX];
};

enum fail_reason {
	FAIL_REFUSED,
	FAIL_CONNECT_TIMEOUT,
	FAIL_CONNECT_ERROR,
	FAIL_RESET,
	FAIL_CLOSED,
	FAIL_GREETING_TIMEOUT,
	FAIL_BAD_GREETING,
	FAIL_REPLY_TIMEOUT,
	FAIL_BAD_REPLY,
	FAIL_ABORTED,
	FAIL_REASONS,
};

static const char *const fail_names[FAIL_REASONS] = {
	[FAIL_REFUSED] = "connect_refused",
	[FAIL_CONNECT_TIMEOUT] = "connect_timeout",
	[FAIL_CONNECT_ERROR] = "connect_error",
	[FAIL_RESET] = "reset",
	[FAIL_CLOSED] = "closed_by_server",
	[FAIL_GREETING_TIMEOUT] = "greeting_timeout",
	[FAIL_BAD_GREETING] = "bad_greeting",
	[FAIL_REPLY_TIMEOUT] = "reply_timeout",
	[FAIL_BAD_REPLY] = "bad_reply",
	[FAIL_ABORTED] = "aborted",
};

/* Failures counted by reason; the first of each kind kept as an example. */
struct tally {
	unsigned long total;
	unsigned long count[FAIL_REASONS];
	char first[FAIL_REASONS][DETAIL_LEN];
};

struct holder {
	const struct options *o;
	struct smtp_target target;
	struct script setup, closing;
	char *body;			/* an active session's partial message */
	const char *quit_text;
	int epfd, sigfd;
	struct hold_session *s;		/* o->count of them */
	unsigned long started, setting_up, held, quit_ok;
	struct tally failed;		/* while being set up */
	struct tally dropped;		/* while held */
	int stop;			/* a signal came */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	int opt;

	*o = (struct options){ .count = DEFAULT_COUNT, .parallel = DEFAULT_PARALLEL,
			       .active_size = DEFAULT_ACTIVE_SIZE, .wait_s = DEFAULT_WAIT_S };
	opterr = 0;
	while ((opt = getopt(argc, argv, ":an:p:s:t:w:m:")) != -1) {
		switch (opt) {
		case 'a':
			o->active = 1;
			break;
		case 'n':
			o->count = number_option(opt, optarg, 0, 1, MAX_COUNT, "a count");
			break;
		case 'p':
			o->parallel = number_option(opt, optarg, 0, 1, MAX_PARALLEL, "a count");
			break;
		case 's':
			o->active_size = number_option(opt, optarg, 1, 0, MAX_ACTIVE_SIZE,
						       "a size in bytes (k, m allowed)");
			break;
		case 't':
			o->hold_s = number_option(opt, optarg, 0, 1, MAX_SECONDS, "seconds");
			break;
		case 'w':
			o->wait_s = number_option(opt, optarg, 0, 1, MAX_SECONDS, "seconds");
			break;
		case 'm':
			o->max_fail = number_option(opt, optarg, 0, 0, MAX_COUNT, "a count");
			break;
		default:
			option_error(opt);
		}
	}
	o->server = server_argument(argc, argv);
}

/* Each session is one descriptor: raise the soft limit to fit them all,
 * and the hard one too when that is what it takes (root can). */
static int raise_fd_limit(unsigned long sessions)
{
	rlim_t need = (rlim_t)sessions + SPARE_FDS;
	struct rlimit rl;
	int hard_errno = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		fprintf(stderr, "smtp_hold: getrlimit(RLIMIT_NOFILE): %s\n", strerror(errno));
		return -1;
	}
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need) {
		struct rlimit more = { need, need };

		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return 0;
		hard_errno = errno;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= need)
		return 0;
	getrlimit(RLIMIT_NOFILE, &rl);
	fprintf(stderr, "smtp_hold: %lu sessions need %llu file descriptors, but RLIMIT_NOFILE "
		"allows %llu (hard limit %llu%s%s); raise it (ulimit -n, as root) or lower -n\n",
		sessions, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
		(unsigned long long)rl.rlim_max, hard_errno ? ", raising it: " : "",
		hard_errno ? strerror(hard_errno) : "");
	return -1;
}

static void add_step(struct script *sc, const char *name, int want, const char *then_send,
		     size_t then_len)
{
	sc->steps[sc->n++] = (struct step){ name, want, then_send, then_len };
}

#define TEXT(s) s, sizeof(s) - 1

/* The partial message of an active session: headers, then lines of text,
 * about size bytes in all (*len exactly), ending with a CRLF so that the
 * "." sent at the end ends the message. */
static char *build_partial_message(size_t size, size_t *len)
{
	static const char headers[] = MESSAGE_HEADERS(MAIL_FROM, RCPT_TO, "smtp_hold");
	size_t hlen = sizeof(headers) - 1;
	char *m;

	if (size < hlen)
		size = hlen;
	if (size - hlen == 1)
		size++;		/* no room for a line of one byte: a CRLF instead */
	m = malloc(size);
	if (!m)
		return NULL;
	memcpy(m, headers, hlen);
	fill_text_lines(m + hlen, size - hlen, 1);
	*len = size;
	return m;
}

static int build_scripts(struct holder *h)
{
	size_t body_len;

	add_step(&h->setup, "greeting", 220, TEXT("EHLO " HELO_NAME "\r\n"));
	if (!h->o->active) {
		add_step(&h->setup, "EHLO", 250, NULL, 0);
		add_step(&h->closing, "QUIT", 221, NULL, 0);
		h->quit_text = "QUIT\r\n";
		return 0;
	}
	h->body = build_partial_message(h->o->active_size, &body_len);
	if (!h->body)
		return -1;
	add_step(&h->setup, "EHLO", 250, TEXT("MAIL FROM:<" MAIL_FROM ">\r\n"));
	add_step(&h->setup, "MAIL FROM", 250, TEXT("RCPT TO:<" RCPT_TO ">\r\n"));
	add_step(&h->setup, "RCPT TO", 250, TEXT("DATA\r\n"));
	add_step(&h->setup, "DATA", 354, h->body, body_len);
	/* the message is ended (and thrown away by a sink) before QUIT */
	add_step(&h->closing, "end of data", 250, NULL, 0);
	add_step(&h->closing, "QUIT", 221, NULL, 0);
	h->quit_text = ".\r\nQUIT\r\n";
	return 0;
}

static void tally_add(struct tally *t, enum fail_reason why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void tally_add(struct tally *t, enum fail_reason why, const char *fmt, ...)
{
	va_list ap;

	t->total++;
	if (t->count[why]++)
		return;
	va_start(ap, fmt);
	vsnprintf(t->first[why], sizeof(t->first[why]), fmt, ap);
	va_end(ap);
}

static void tally_print(const struct tally *t, const char *what)
{
	for (int i = 0; i < FAIL_REASONS; i++)
		if (t->count[i])
			fprintf(stderr, "smtp_hold: %s: %s=%lu (first: %s)\n", what, fail_names[i],
				t->count[i], t->first[i]);
}

static void session_close(struct holder *h, struct hold_session *s)
{
	if (s->fd >= 0) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
	}
	s->fd = -1;
	s->state = S_DONE;
}

/* A session that could not be set up, or that the server ended while held. */
static void session_fail(struct holder *h, struct hold_session *s, enum fail_reason why,
			 const char *detail)
{
	if (s->state == S_HELD)
		tally_add(&h->dropped, why, "%s", detail);
	else if (s->state == S_CONNECTING || s->state == S_SETUP)
		tally_add(&h->failed, why, "%s", detail);
	if (s->state == S_CONNECTING || s->state == S_SETUP)
		h->setting_up--;
	session_close(h, s);
}

static void session_arm(struct holder *h, struct hold_session *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = (uint64_t)(s - h->s) };

	if (events == s->armed)
		return;
	epoll_ctl(h->epfd, EPOLL_CTL_MOD, s->fd, &ev);
	s->armed = events;
}

static enum fail_reason connect_reason(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return FAIL_REFUSED;
	case ETIMEDOUT:
		return FAIL_CONNECT_TIMEOUT;
	case ECONNRESET:
		return FAIL_RESET;
	default:
		return FAIL_CONNECT_ERROR;
	}
}

static void session_start(struct holder *h, struct hold_session *s)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = (uint64_t)(s - h->s) };
	char detail[DETAIL_LEN];

	s->state = S_CONNECTING;
	h->setting_up++;
	h->started++;
	s->deadline_ms = now_ms() + h->o->wait_s * 1000;
	s->fd = socket(h->target.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		snprintf(detail, sizeof(detail), "socket: %s", strerror(errno));
		session_fail(h, s, FAIL_CONNECT_ERROR, detail);
		return;
	}
	if (connect(s->fd, (struct sockaddr *)&h->target.addr, h->target.addr_len) &&
	    errno != EINPROGRESS) {
		snprintf(detail, sizeof(detail), "connect: %s", strerror(errno));
		session_fail(h, s, connect_reason(errno), detail);
		return;
	}
	/* even a connect that is done at once reports itself writable */
	epoll_ctl(h->epfd, EPOLL_CTL_ADD, s->fd, &ev);
	s->armed = EPOLLOUT;
}

static const struct script *session_script(const struct holder *h, const struct hold_session *s)
{
	return s->state == S_CLOSING ? &h->closing : &h->setup;
}

/* Set up, and nothing left to send: the session is held. */
static void session_check_held(struct holder *h, struct hold_session *s)
{
	if (s->state != S_SETUP || s->step < h->setup.n || s->out_len)
		return;
	s->state = S_HELD;
	h->setting_up--;
	h->held++;
	session_arm(h, s, EPOLLIN | EPOLLRDHUP);
}

static void session_flush(struct holder *h, struct hold_session *s)
{
	char detail[DETAIL_LEN];

	while (s->out_len) {
		ssize_t n = send(s->fd, s->out, s->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			snprintf(detail, sizeof(detail), "sending: %s", strerror(errno));
			session_fail(h, s, errno == ECONNRESET || errno == EPIPE ? FAIL_RESET :
					   FAIL_CONNECT_ERROR, detail);
			return;
		}
		s->out += n;
		s->out_len -= (size_t)n;
	}
	session_arm(h, s, EPOLLIN | EPOLLRDHUP | (s->out_len ? EPOLLOUT : 0));
	session_check_held(h, s);
}

static void session_connected(struct holder *h, struct hold_session *s)
{
	char detail[DETAIL_LEN];
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (err) {
		snprintf(detail, sizeof(detail), "connect: %s", strerror(err));
		session_fail(h, s, connect_reason(err), detail);
		return;
	}
	s->state = S_SETUP;
	s->step = 0;
	s->deadline_ms = now_ms() + h->o->wait_s * 1000;
	session_arm(h, s, EPOLLIN | EPOLLRDHUP);
}

/* A whole reply line: checks the code when it ends the reply, and goes on
 * to the next step. Returns -1 when the session ended. */
static int session_reply_line(struct holder *h, struct hold_session *s, const char *line)
{
	const struct script *sc = session_script(h, s);
	const struct step *st;
	char detail[DETAIL_LEN];
	int code;

	if (s->state == S_HELD) {
		snprintf(detail, sizeof(detail), "while held, the server sent: %.150s", line);
		session_fail(h, s, FAIL_BAD_REPLY, detail);
		return -1;
	}
	if (s->step >= sc->n)
		return 0;	/* more than the script waits for: not ours to judge */
	st = &sc->steps[s->step];
	if (strlen(line) < 3 || line[0] < '1' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
	    (line[3] && line[3] != ' ' && line[3] != '-')) {
		snprintf(detail, sizeof(detail), "%s: malformed reply: %.150s", st->name, line);
		goto bad;
	}
	if (line[3] == '-')
		return 0;
	code = atoi(line);
	if (code != st->want) {
		snprintf(detail, sizeof(detail), "%s: expected %d: %.150s", st->name, st->want,
			 line);
		goto bad;
	}
	s->step++;
	if (s->state == S_CLOSING) {
		if (s->step == sc->n) {
			h->quit_ok++;
			session_close(h, s);
			return -1;
		}
		return 0;
	}
	s->deadline_ms = now_ms() + h->o->wait_s * 1000;
	if (st->then_send) {
		s->out = st->then_send;
		s->out_len = st->then_len;
		session_flush(h, s);
		if (s->state == S_DONE)
			return -1;
	}
	session_check_held(h, s);
	return 0;
bad:
	if (s->state == S_CLOSING)
		session_close(h, s);
	else
		session_fail(h, s, s->step == 0 ? FAIL_BAD_GREETING : FAIL_BAD_REPLY, detail);
	return -1;
}

static void session_eof(struct holder *h, struct hold_session *s, int err)
{
	const struct script *sc = session_script(h, s);
	const char *waiting = s->state == S_HELD ? "while held" :
			      s->step < sc->n ? sc->steps[s->step].name : "after set-up";
	char detail[DETAIL_LEN];

	if (s->state == S_CLOSING) {
		session_close(h, s);
		return;
	}
	if (err)
		snprintf(detail, sizeof(detail), "%s: %s", waiting, strerror(err));
	else
		snprintf(detail, sizeof(detail), "%s: the server closed the connection", waiting);
	session_fail(h, s, err == ECONNRESET ? FAIL_RESET : FAIL_CLOSED, detail);
}

/* Reads what the server sent and acts on each whole line. */
static void session_read(struct holder *h, struct hold_session *s)
{
	for (;;) {
		ssize_t n = recv(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len, 0);
		char *start, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			session_eof(h, s, n < 0 ? errno : 0);
			return;
		}
		s->in_len += (size_t)n;
		start = s->in;
		while ((nl = memchr(start, '\n', s->in_len - (size_t)(start - s->in)))) {
			*nl = '\0';
			if (nl > start && nl[-1] == '\r')
				nl[-1] = '\0';
			if (session_reply_line(h, s, start))
				return;
			start = nl + 1;
		}
		s->in_len -= (size_t)(start - s->in);
		memmove(s->in, start, s->in_len);
		if (s->in_len == sizeof(s->in)) {
			if (s->state == S_CLOSING)
				session_close(h, s);
			else
				session_fail(h, s, FAIL_BAD_REPLY, "a reply line over 512 bytes");
			return;
		}
	}
}

static void session_event(struct holder *h, struct hold_session *s, uint32_t events)
{
	if (s->state == S_CONNECTING) {
		session_connected(h, s);
		return;
	}
	if (s->state == S_DONE || s->state == S_UNUSED)
		return;
	if (events & EPOLLOUT)
		session_flush(h, s);
	if (s->state != S_DONE && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		session_read(h, s);
}

/* Sessions that waited too long for a connect or a reply while being set up. */
static void expire_setups(struct holder *h, int abort_all)
{
	uint64_t now = now_ms();

	for (unsigned long i = 0; i < h->started && h->setting_up; i++) {
		struct hold_session *s = &h->s[i];
		char detail[DETAIL_LEN];

		if (s->state != S_CONNECTING && s->state != S_SETUP)
			continue;
		if (abort_all) {
			session_fail(h, s, FAIL_ABORTED, "stopped by a signal while being set up");
		} else if (now >= s->deadline_ms) {
			const char *step = s->state == S_CONNECTING ? "connect" :
					   s->step < h->setup.n ? h->setup.steps[s->step].name :
					   "sending the message";

			snprintf(detail, sizeof(detail), "%s: nothing within %lu s", step,
				 h->o->wait_s);
			session_fail(h, s, s->state == S_CONNECTING ? FAIL_CONNECT_TIMEOUT :
					   s->step == 0 ? FAIL_GREETING_TIMEOUT :
					   FAIL_REPLY_TIMEOUT, detail);
		}
	}
}

/* Returns 1 when the signalfd or stdin asks to stop. */
static int control_event(struct holder *h, uint64_t which)
{
	if (which == EV_STOP_SIGNAL) {
		struct signalfd_siginfo si;

		if (read(h->sigfd, &si, sizeof(si)) > 0)
			h->stop = 1;
		return 1;
	}
	{
		char buf[512];
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			epoll_ctl(h->epfd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
			return 1;
		}
	}
	return 0;
}

/* One round of events; returns 1 when a control event asks to stop. */
static int poll_once(struct holder *h, int timeout_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int n = epoll_wait(h->epfd, ev, MAX_EVENTS, timeout_ms), stop = 0;

	if (n < 0 && errno != EINTR) {
		fprintf(stderr, "smtp_hold: epoll_wait: %s\n", strerror(errno));
		h->stop = 1;
		return 1;
	}
	for (int i = 0; i < n; i++) {
		uint64_t which = ev[i].data.u64;

		if (which == EV_STOP_SIGNAL || which == EV_STDIN)
			stop |= control_event(h, which);
		else
			session_event(h, &h->s[which], ev[i].events);
	}
	return stop;
}

static int too_many_failures(const struct holder *h)
{
	return h->o->max_fail && h->failed.total >= h->o->max_fail;
}

/* Opens the sessions, a window of PARALLEL at a time, until each is held
 * or has failed (or a signal came). */
static void open_sessions(struct holder *h)
{
	uint64_t next_tick = now_ms() + TICK_MS;

	for (;;) {
		while (!h->stop && !too_many_failures(h) && h->started < h->o->count &&
		       h->setting_up < h->o->parallel)
			session_start(h, &h->s[h->started]);
		if (h->setting_up == 0 &&
		    (h->stop || too_many_failures(h) || h->started == h->o->count))
			break;
		poll_once(h, TICK_MS);
		if (h->stop) {
			expire_setups(h, 1);
			break;
		}
		if (now_ms() >= next_tick) {
			expire_setups(h, 0);
			next_tick = now_ms() + TICK_MS;
		}
	}
}

/* stdin as a stop button: only when it can be polled (a pipe, a terminal);
 * /dev/null or a file would end the hold at once. */
static int watch_stdin(struct holder *h)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_STDIN };

	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev)) {
		fprintf(stderr, "smtp_hold: stdin is not a pipe or a terminal (%s): holding until "
			"SIGTERM or SIGINT\n", strerror(errno));
		return -1;
	}
	return 0;
}

static void hold_sessions(struct holder *h)
{
	uint64_t until = h->o->hold_s ? now_ms() + h->o->hold_s * 1000 : 0;

	if (h->stop || h->held == 0)
		return;		/* nothing to hold */
	if (!until)
		watch_stdin(h);
	for (;;) {
		int timeout = 1000;

		if (until) {
			uint64_t now = now_ms();

			if (now >= until)
				return;
			if (until - now < 1000)
				timeout = (int)(until - now);
		}
		if (poll_once(h, timeout))
			return;
	}
}

/* QUIT on every held session, then the replies, for QUIT_WAIT_MS at most. */
static void close_sessions(struct holder *h)
{
	uint64_t until = now_ms() + QUIT_WAIT_MS;
	unsigned long closing = 0;

	for (unsigned long i = 0; i < h->started; i++) {
		struct hold_session *s = &h->s[i];

		if (s->state != S_HELD)
			continue;
		s->state = S_CLOSING;
		s->step = 0;
		s->out = h->quit_text;
		s->out_len = strlen(h->quit_text);
		session_flush(h, s);
		closing++;
	}
	while (closing) {
		uint64_t now = now_ms();

		if (now >= until)
			break;
		poll_once(h, (int)(until - now < 1000 ? until - now : 1000));
		closing = 0;
		for (unsigned long i = 0; i < h->started; i++)
			closing += h->s[i].state == S_CLOSING;
	}
	for (unsigned long i = 0; i < h->started; i++)
		if (h->s[i].fd >= 0)
			session_close(h, &h->s[i]);
}

/* SIGTERM and SIGINT arrive through a descriptor, so the loop sees them
 * between events; SIGPIPE is not wanted at all (MSG_NOSIGNAL covers it). */
static int setup_control(struct holder *h)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EV_STOP_SIGNAL };
	sigset_t mask;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -1;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	h->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (h->epfd < 0 || h->sigfd < 0 || epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->sigfd, &ev))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct holder h = { .o = &o, .epfd = -1, .sigfd = -1 };
	char err[512];
	int status = 1;

	parse_options(argc, argv, &o);
	if (resolve_target(o.server, &h.target, err, sizeof(err)))
		usage_error("%s", err);
	if (raise_fd_limit(o.count))
		goto cleanup;
	h.s = calloc(o.count, sizeof(*h.s));
	if (!h.s || build_scripts(&h)) {
		fprintf(stderr, "smtp_hold: out of memory for %lu sessions\n", o.count);
		goto cleanup;
	}
	for (unsigned long i = 0; i < o.count; i++)
		h.s[i].fd = -1;
	if (setup_control(&h)) {
		fprintf(stderr, "smtp_hold: epoll or signalfd: %s\n", strerror(errno));
		goto cleanup;
	}
	open_sessions(&h);
	printf("held=%lu failed=%lu\n", h.held, h.failed.total);
	fflush(stdout);
	tally_print(&h.failed, "failed");
	if (too_many_failures(&h) && h.started < o.count)
		fprintf(stderr, "smtp_hold: stopped after %lu failures; %lu sessions not tried\n",
			h.failed.total, o.count - h.started);
	hold_sessions(&h);
	close_sessions(&h);
	printf("dropped=%lu quit_ok=%lu\n", h.dropped.total, h.quit_ok);
	tally_print(&h.dropped, "dropped while held");
	status = h.failed.total || h.dropped.total ? 1 : 0;
cleanup:
	if (h.sigfd >= 0)
		close(h.sigfd);
	if (h.epfd >= 0)
		close(h.epfd);
	free(h.body);
	free(h.s);
	return status;
}
