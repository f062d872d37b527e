/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * relay.c - the SMTP relay of one session (see session.h): commands from the
 * VM go to the MX as the VM batched them (PIPELINING), replies come back in
 * order, the MX's own words unless a limit or a verdict speaks; DATA streams
 * to the MX while the scanner reads it, and the final dot is withheld until
 * the verdict: a refused message is aborted upstream (the MX never gets the
 * dot, so never commits it) and the VM is told why, with a reference id.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "log.h"
#include "parse.h"
#include "events.h"
#include "session.h"
#include "tls.h"

enum { SIDE_VM = 0, SIDE_MX = 1 };

#define SG_STARTTLS_READY "220 2.0.0 smtpguard: ready to start TLS\r\n"

static size_t space(const struct sg_buf *b)
{
	return b->cap - b->len;
}

static void consume(struct sg_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* Callers check the room first; a miss would write past the session, so it
 * is cut, loudly, rather than trusted. */
static void append(struct sg_buf *b, const char *data, size_t n)
{
	if (n > space(b)) {
		sg_err("internal: %zu bytes for a buffer with room for %zu; cut", n, space(b));
		n = space(b);
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
}

/* Reads while there is room; *drained once the socket has nothing more for
 * now, so that the caller does not ask again before epoll says so. */
static ssize_t plain_read(struct session *s, int side, void *buf, size_t len)
{
	return read(s->fd[side], buf, len);
}

static ssize_t plain_write(struct session *s, int side, const void *buf, size_t len)
{
	return send(s->fd[side], buf, len, MSG_NOSIGNAL);
}

const struct sg_io_ops sg_io_plain = {
	.read = plain_read, .write = plain_write, .short_read_drains = 1,
};

/* OpenSSL's outcome of a read, write or handshake step as errno: EAGAIN
 * when it waits for the socket (tls_want_write says which way), EPROTO with
 * the reason kept in tls_error. */
static int tls_failed(struct session *s, int side, int ret)
{
	int saved = errno, e = SSL_get_error(s->ssl[side], ret);

	s->tls_want_write[side] = e == SSL_ERROR_WANT_WRITE;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		errno = EAGAIN;
		return -1;
	}
	/* no close_notify of ours after a fatal error (OpenSSL forbids it) */
	s->tls_fatal[side] = 1;
	if (e == SSL_ERROR_SYSCALL && saved) {
		snprintf(s->tls_error, sizeof(s->tls_error), "%s", strerror(saved));
		errno = saved;
		return -1;
	}
	if (e == SSL_ERROR_SYSCALL) {
		snprintf(s->tls_error, sizeof(s->tls_error), "the peer closed the connection");
	} else if (side == SIDE_MX && (SSL_get_verify_mode(s->ssl[side]) & SSL_VERIFY_PEER) &&
		   SSL_get_verify_result(s->ssl[side]) != X509_V_OK) {
		snprintf(s->tls_error, sizeof(s->tls_error), "certificate verification: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(s->ssl[side])));
	} else {
		sg_tls_error(s->tls_error, sizeof(s->tls_error), "TLS protocol error");
	}
	errno = EPROTO;
	return -1;
}

static ssize_t tls_read(struct session *s, int side, void *buf, size_t len)
{
	int n;

	ERR_clear_error();
	errno = 0;
	n = SSL_read(s->ssl[side], buf, len > 65536 ? 65536 : (int)len);
	if (n > 0) {
		s->tls_want_write[side] = 0;
		return n;
	}
	/* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare FIN */
	if (SSL_get_error(s->ssl[side], n) == SSL_ERROR_ZERO_RETURN) {
		s->tls_want_write[side] = 0;	/* nothing more to read, so none to retry */
		return 0;
	}
	return tls_failed(s, side, n);
}

static ssize_t tls_write(struct session *s, int side, const void *buf, size_t len)
{
	int n;

	ERR_clear_error();
	errno = 0;
	n = SSL_write(s->ssl[side], buf, len > 65536 ? 65536 : (int)len);
	if (n > 0) {
		s->tls_want_write[side] = 0;
		return n;
	}
	return tls_failed(s, side, n);
}

const struct sg_io_ops sg_io_tls = {
	.read = tls_read, .write = tls_write, .short_read_drains = 0,
};

static int read_into(struct session *s, int side, struct sg_buf *b, int *eof, int *drained)
{
	size_t before = b->len;

	while (!*eof && !*drained && space(b)) {
		ssize_t n = s->io[side]->read(s, side, b->data + b->len, space(b));

		if (n > 0) {
			/* a short read took all the socket had */
			*drained = s->io[side]->short_read_drains && (size_t)n < space(b);
			b->len += (size_t)n;
			s->read_bytes[side] += (uint64_t)n;
		} else if (n == 0) {
			*eof = 1;
		} else if (errno == EAGAIN) {
			*drained = 1;
		} else if (errno != EINTR) {
			/* what came before the error is relayed first (a reply
			 * the VM is owed); the error then ends the side. A plain
			 * MX that failed is an end the VM hears of (mx_lost). */
			if (side == SIDE_MX && s->io[side] == &sg_io_plain)
				s->mx_errno = errno;
			else if (b->len == before)
				return -1;
			*eof = 1;
		}
	}
	return 0;
}

static int write_from(struct session *s, int side, struct sg_buf *b)
{
	while (b->len) {
		ssize_t n = s->io[side]->write(s, side, b->data, b->len);

		if (n > 0) {
			consume(b, (size_t)n);
			s->written_bytes[side] += (uint64_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		else
			return -1;
	}
	return 0;
}

static struct pending *pending_push(struct session *s)
{
	struct pending *p = &s->pending[(s->pend_head + s->pend_count) % SG_MAX_PENDING];

	memset(p, 0, sizeof(*p));
	s->pend_count++;
	return p;
}

static struct pending *expect_reply(struct session *s, enum smtp_verb verb, int data_end)
{
	struct pending *p = pending_push(s);

	p->verb = verb;
	p->data_end = data_end;
	return p;
}

/* A reply of the relay's own, given to the VM in its turn. */
static void local_reply(struct session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void local_reply(struct session *s, const char *fmt, ...)
{
	struct pending *p = pending_push(s);
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(p->local, sizeof(p->local) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n > sizeof(p->local) - 3)
		n = (int)sizeof(p->local) - 3;
	memcpy(p->local + n, "\r\n", 3);
	p->has_local = 1;
}

static struct pending *pending_head(struct session *s)
{
	return s->pend_count ? &s->pending[s->pend_head] : NULL;
}

static void pending_pop(struct session *s)
{
	s->pend_head = (s->pend_head + 1) % SG_MAX_PENDING;
	s->pend_count--;
}

/* Local replies at the head of the queue go out as soon as it is their turn. */
static void emit_local_replies(struct session *s)
{
	struct pending *p;

	while ((p = pending_head(s)) && p->has_local && space(&s->vm_out) >= strlen(p->local)) {
		append(&s->vm_out, p->local, strlen(p->local));
		pending_pop(s);
	}
}

/* A message's reference id: the time, a random number drawn once a
 * process (so that a restart within the second, or another host, does not
 * hand out the same ids again), and a counter. */
static void new_reference(struct session *s)
{
	static atomic_uint counter, salt;
	unsigned int n = atomic_fetch_add(&counter, 1), r = atomic_load(&salt);

	if (!r) {
		unsigned int fresh = 0, none = 0;

		if (getrandom(&fresh, sizeof(fresh), 0) != sizeof(fresh))
			fresh = (unsigned int)getpid() ^ (unsigned int)sg_now_ns();
		fresh |= 1;
		if (!atomic_compare_exchange_strong(&salt, &none, fresh))
			fresh = none;	/* another worker drew first */
		r = fresh;
	}
	snprintf(s->ref, sizeof(s->ref), "SG%08lX%04X%04X", (unsigned long)time(NULL),
		 r & 0xffff, n & 0xffff);
}

/* The upstream goes away without the final dot: the MX discards the
 * transaction. Nothing more is sent to it. */
static void abort_upstream(struct session *s)
{
	if (s->mx_gone)
		return;
	if (s->fd[SIDE_MX] >= 0) {
		struct linger hard = { .l_onoff = 1, .l_linger = 0 };

		/* a reset, not a FIN: nothing the MX could take for an end */
		setsockopt(s->fd[SIDE_MX], SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
		if (s->ssl[SIDE_MX]) {
			SSL_free(s->ssl[SIDE_MX]);
			s->ssl[SIDE_MX] = NULL;
		}
		close(s->fd[SIDE_MX]);	/* also leaves the worker's epoll set */
		s->fd[SIDE_MX] = -1;
	}
	s->mx_gone = 1;
	s->mx_out.len = 0;
	s->mx_in.len = 0;
}

static void refuse_message(struct session *s, const char *code, const char *why)
{
	s->refused++;
	sg_event_message(s, code[0] == '4' ? "tempfail" : "reject", why, NULL);
	sg_feedback_note(s->feedback, &s->vm_addr,
			 code[0] == '4' ? SG_FB_TEMPFAILED :
			 strncmp(code, "552", 3) == 0 ? SG_FB_TOO_LARGE : SG_FB_REJECTED, 0);
	abort_upstream(s);
	local_reply(s, "%s smtpguard: message refused (%s); ref %s", code, why, s->ref);
	sg_info("session %s -> %s: message %s refused: %s", s->vm_name, s->mx_name, s->ref, why);
	s->mode = RELAY_REFUSED;
}

static void relay_reply(struct session *s, const struct smtp_reply *r)
{
	struct pending *p = pending_head(s);

	if (p && p->verb == SMTP_EHLO && r->code == 250) {
		/* STARTTLS last: hidden only under tls_mode strip */
		static const char *const hidden[] = { "CHUNKING", "BINARYMIME", "STARTTLS" };
		int strip = s->tls_mode == SG_TLS_STRIP;
		char tmp[SG_REPLY_BUF];
		size_t n;

		memcpy(tmp, s->mx_in.data, r->len);
		n = smtp_ehlo_remove(tmp, r->len, hidden, strip ? 3 : 2);
		if (strip && s->mx_starttls && !s->stripped) {
			s->stripped = 1;
			sg_warn("session %s -> %s: STARTTLS hidden from the VM (tls_mode strip): "
				"this session crosses the network in clear", s->vm_name, s->mx_name);
		}
		append(&s->vm_out, tmp, n);
	} else {
		append(&s->vm_out, s->mx_in.data, r->len);
	}
}

/* The host name in the MX's greeting ("220 mx.example.org ESMTP"): the SNI
 * and the name its certificate must hold (tls_mx_verify = verify). */
static void note_greeting(struct session *s, const char *reply)
{
	size_t n;

	s->greeted = 1;
	if (strlen(reply) < 5)
		return;
	reply += 4;
	n = strcspn(reply, " \r\n");
	if (n < sizeof(s->mx_host))
		snprintf(s->mx_host, sizeof(s->mx_host), "%.*s", (int)n, reply);
}

/* TLS records and tunnelled segments go out as they are written: Nagle's
 * wait for an ACK would stall a handshake's later flights. */
static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void begin_mx_handshake(struct session *s)
{
	snprintf(s->tls_cache_key, sizeof(s->tls_cache_key), "%s %.250s", s->mx_name, s->mx_host);
	nodelay(s->fd[SIDE_MX]);
	s->ssl[SIDE_MX] = sg_tls_client(s->tls, s->fd[SIDE_MX], s->mx_host, s->tls_cache_key);
	if (!s->ssl[SIDE_MX]) {
		sg_err("session %s -> %s: no TLS client context", s->vm_name, s->mx_name);
		relay_close(s, "421 4.7.0 smtpguard: TLS to the MX could not start; try again "
			    "later\r\n");
		return;
	}
	if (s->mx_in.len) {
		/* bytes after the MX's 220 and before TLS: injected, never trusted */
		sg_warn("session %s -> %s: %zu bytes after the MX's 220 to STARTTLS dropped",
			s->vm_name, s->mx_name, s->mx_in.len);
		s->mx_in.len = 0;
	}
	s->tls_phase = TLS_MX_HANDSHAKE;
	s->tls_deadline_ns = sg_now_ns() + s->cfg->tls_handshake_timeout_ns;
}

/* A message begins (its 354, or its deferral at MAIL FROM): the engines
 * are told its envelope. */
static void scan_begin(struct session *s)
{
	struct sg_envelope env = {
		.vm = s->vm_name,
		.helo = s->helo,
		.mail_from = s->mail_from,
		.rcpt_domains = s->rcpt_domains,
		.rcpts = s->rcpts_ok,
	};

	sg_scan_begin(&s->scan, s->scanner, &env);
}

static void after_reply(struct session *s, struct pending *p, int code, const char *reply)
{
	if (!s->greeted) {
		note_greeting(s, reply);
		return;
	}
	if (p->data_end) {
		char first[256];
		size_t n = strcspn(reply, "\r\n");

		snprintf(first, sizeof(first), "%.*s", (int)(n < sizeof(first) - 1 ? n :
							       sizeof(first) - 1), reply);
		sg_debug("session %s -> %s: message %s: the MX answered %s", s->vm_name, s->mx_name,
			s->ref, first);
		s->messages++;
		sg_event_message(s, "accept", "clean", first);
		/* the counts travel with the dot: a pipelined MAIL may have
		 * begun the next transaction already */
		if (code >= 200 && code < 300)
			sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_DELIVERED, p->rcpts);
		else if (code >= 500)
			sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_MX_5XX, 0);
		return;
	}
	if (code >= 500 && (p->verb == SMTP_MAIL || p->verb == SMTP_RCPT || p->verb == SMTP_DATA))
		sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_MX_5XX, 0);
	switch (p->verb) {
	case SMTP_RCPT:
		if (code >= 200 && code < 300)
			s->rcpts_ok++;
		break;
	case SMTP_DATA:
		if (code == 354) {
			s->mode = RELAY_BODY;
			s->body_started = 0;
			new_reference(s);
			scan_begin(s);
		} else {
			s->mode = RELAY_COMMANDS;
		}
		break;
	case SMTP_STARTTLS:
		if (code != 220)
			s->mode = RELAY_COMMANDS;
		else if (s->tls_mode == SG_TLS_TERMINATE)
			begin_mx_handshake(s);
		else
			s->mode = RELAY_TUNNEL;
		break;
	case SMTP_AUTH:
		s->mode = code == 334 ? RELAY_AUTH_LINE : RELAY_COMMANDS;
		break;
	case SMTP_QUIT:
		s->close_after_flush = 1;
		break;
	case SMTP_UNKNOWN:
		if (s->mode == RELAY_WAIT)
			s->mode = RELAY_COMMANDS;
		break;
	default:
		break;
	}
}

/* The MX's replies, in the order the VM's commands went out. */
static void process_mx(struct session *s)
{
	for (;;) {
		struct smtp_reply r;
		struct pending *p;
		enum smtp_reply_result res;

		emit_local_replies(s);
		if (!s->mx_in.len)
			return;
		if (s->mode == RELAY_TUNNEL || (s->tls_phase != TLS_NONE && s->tls_phase != TLS_ON))
			return;
		res = smtp_next_reply(s->mx_in.data, s->mx_in.len, s->cfg->smtp_line_limit, &r);
		if (res == SMTP_REPLY_NONE && !space(&s->mx_in))
			res = SMTP_REPLY_TOO_LONG;
		if (res == SMTP_REPLY_NONE && s->mx_eof)
			res = SMTP_REPLY_MALFORMED;	/* it ended mid-reply: no more will come */
		if (res == SMTP_REPLY_NONE)
			return;
		if (res != SMTP_REPLY_OK) {
			static const char msg[] = "421 4.3.0 smtpguard: the MX's reply was "
						  "malformed; try again later\r\n";

			sg_warn("session %s -> %s: the MX sent a %s reply; session ended", s->vm_name,
				s->mx_name, res == SMTP_REPLY_TOO_LONG ? "too long" : s->mx_eof ? "cut-off" : "malformed");
			abort_upstream(s);
			if (space(&s->vm_out) >= sizeof(msg) - 1)
				append(&s->vm_out, msg, sizeof(msg) - 1);
			s->close_after_flush = 1;
			return;
		}
		if (space(&s->vm_out) < r.len)
			return;	/* the VM is slow: wait */
		p = pending_head(s);
		if (p && p->has_local)
			return;	/* a reply of ours goes first, once vm_out has room */
		s->mx_said_bye = r.code == 221 || r.code == 421;
		if (!p) {
			/* unsolicited (a 421 as the MX shuts down): relay it */
			append(&s->vm_out, s->mx_in.data, r.len);
			consume(&s->mx_in, r.len);
			if (r.code == 421)
				s->close_after_flush = 1;
			continue;
		}
		if (r.code >= 300 && r.code < 400 &&
		    !(p->verb == SMTP_DATA && !p->data_end && r.code == 354) &&
		    !(p->verb == SMTP_AUTH && r.code == 334)) {
			/* the MX waits for more than the command the relay sent
			 * (it read a line as DATA that the relay did not, say):
			 * what follows would pass unread, so it all ends here */
			static const char msg[] = "421 4.3.0 smtpguard: the MX's reply did not "
						  "match the command; try again later\r\n";

			if (space(&s->vm_out) < sizeof(msg) - 1)
				return;
			sg_warn("session %s -> %s: the MX answered %d to %s: it reads the session "
				"differently from smtpguard; session ended", s->vm_name, s->mx_name,
				r.code, p->data_end ? "the end of data" : smtp_verb_name(p->verb));
			abort_upstream(s);
			append(&s->vm_out, msg, sizeof(msg) - 1);
			s->close_after_flush = 1;
			s->end = "mx_out_of_step";
			return;
		}
		if (p->verb == SMTP_EHLO && r.code == 250)
			s->mx_starttls = smtp_ehlo_has(s->mx_in.data, r.len, "STARTTLS");
		if (p->verb == SMTP_EHLO && r.code == 250 && s->tls_mode == SG_TLS_TERMINATE &&
		    s->tls_phase == TLS_NONE && !s->mx_starttls &&
		    s->cfg->tls_mx_without_starttls == SG_TLS_REQUIRE) {
			static const char msg[] = "421 4.7.0 smtpguard: the MX does not offer "
						  "STARTTLS, which this host requires; try again "
						  "later\r\n";

			if (space(&s->vm_out) < sizeof(msg) - 1)
				return;	/* the VM is slow: wait */
			sg_warn("session %s -> %s: the MX offers no STARTTLS and "
				"tls_mx_without_starttls = require: the VM is told to retry later",
				s->vm_name, s->mx_name);
			abort_upstream(s);
			pending_pop(s);
			append(&s->vm_out, msg, sizeof(msg) - 1);
			s->close_after_flush = 1;
			return;
		}
		if (p->verb == SMTP_STARTTLS && r.code == 220 && s->tls_mode == SG_TLS_TERMINATE &&
		    !sg_tls_can_terminate(s->tls)) {
			sg_err("session %s -> %s: terminate, but the certificate is gone (a reload "
			       "without tls_cert_file): this TLS session passes through", s->vm_name,
			       s->mx_name);
			s->tls_mode = SG_TLS_PASSTHROUGH;
		}
		/* terminate: the VM hears 220 once TLS to the MX holds */
		if (!(p->verb == SMTP_STARTTLS && r.code == 220 && s->tls_mode == SG_TLS_TERMINATE))
			relay_reply(s, &r);
		{
			struct pending done = *p;
			char first[256];
			size_t n = r.len < sizeof(first) - 1 ? r.len : sizeof(first) - 1;

			memcpy(first, s->mx_in.data, n);
			first[n] = '\0';
			consume(&s->mx_in, r.len);
			pending_pop(s);
			after_reply(s, &done, r.code, first);
		}
	}
}

/* Body bytes buf[0..n) to the MX; n is cut back so that a line break is
 * never sent apart from what follows it (see smtp_data_scan). */
static size_t send_body(struct session *s, size_t n)
{
	size_t room = space(&s->mx_out);

	if (n > room) {
		n = room;
		while (n && (s->vm_in.data[n - 1] == '\n' || s->vm_in.data[n - 1] == '\r'))
			n--;
	}
	if (!n)
		return 0;
	sg_scan_feed(&s->scan, s->vm_in.data, n);
	if (!s->mx_gone)
		append(&s->mx_out, s->vm_in.data, n);
	consume(&s->vm_in, n);
	s->body_started = 1;
	if (s->scan.bytes > s->cfg->smtp_message_size_limit && !s->mx_gone)
		abort_upstream(s);	/* the rest is read and dropped; 552 at the end */
	return n;
}

static void process_body(struct session *s)
{
	for (;;) {
		size_t body, sent;
		enum smtp_data_result r = smtp_data_scan(s->vm_in.data, s->vm_in.len,
							 !s->body_started, &body);
		char reason[200];

		sent = send_body(s, body);
		if (sent < body || r == SMTP_DATA_MORE)
			return;
		memcpy(s->msg_mail_from, s->mail_from, sizeof(s->msg_mail_from));
		memcpy(s->msg_rcpt_domains, s->rcpt_domains, sizeof(s->msg_rcpt_domains));
		s->msg_rcpts = s->rcpts_ok;
		if (r == SMTP_DATA_SMUGGLE) {
			refuse_message(s, "554 5.5.0", "a bare CR or LF next to the end-of-data dot");
			s->close_after_flush = 1;	/* the rest of the stream is not trusted */
			s->vm_in.len = 0;
			return;
		}
		/* the end: the dot is withheld until the verdict */
		if (!s->mx_gone && space(&s->mx_out) < 3)
			return;
		consume(&s->vm_in, 3);
		if (s->scan.bytes > s->cfg->smtp_message_size_limit) {
			snprintf(reason, sizeof(reason), "larger than the limit of %llu bytes",
				 (unsigned long long)s->cfg->smtp_message_size_limit);
			refuse_message(s, "552 5.3.4", reason);
			return;
		}
		switch (sg_scan_verdict(&s->scan, reason, sizeof(reason))) {
		case SG_ACCEPT:
			if (sg_feedback_charge(s->feedback, &s->vm_addr, s->policy.rate_class,
					       s->rcpts_ok, reason, sizeof(reason))) {
				refuse_message(s, "451 4.7.1", reason);
				return;
			}
			append(&s->mx_out, ".\r\n", 3);
			expect_reply(s, SMTP_DATA, 1)->rcpts = s->rcpts_ok;
			s->mode = RELAY_COMMANDS;
			return;
		case SG_REJECT:
			refuse_message(s, "550 5.7.1", reason);
			return;
		case SG_TEMPFAIL:
			refuse_message(s, "451 4.7.1", reason);
			return;
		}
	}
}

/* The SIZE= a MAIL FROM declares (RFC 1870), or 0. */
static unsigned long long declared_size(const char *line, size_t len)
{
	char buf[1024];
	const char *p;

	snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1),
		 line);
	/* the parameters follow the path: a quoted local part may hold anything */
	p = strchr(buf, '>');
	for (p = p ? p : buf; (p = strcasestr(p, "SIZE=")) != NULL; p += 5)
		if (p > buf && (p[-1] == ' ' || p[-1] == '\t'))
			return strtoull(p + 5, NULL, 10);
	return 0;
}

/*
 * A sender over its message rate is deferred at MAIL FROM, before its body
 * goes to the MX (which would otherwise see it cut off at every message);
 * the MAIL is not relayed, so the MX starts no transaction. Not while the
 * MX has yet to answer a dot: that message's event is still to be written.
 * The charge itself stays at the dot (sg_feedback_charge).
 */
static int over_message_rate(struct session *s)
{
	char reason[200];

	if (s->mx_gone || relay_awaiting_dot_reply(s) ||
	    !sg_feedback_check_message(s->feedback, &s->vm_addr, s->policy.rate_class, reason,
				       sizeof(reason)))
		return 0;
	new_reference(s);
	scan_begin(s);
	memcpy(s->msg_mail_from, s->mail_from, sizeof(s->msg_mail_from));
	s->msg_rcpt_domains[0] = '\0';
	s->msg_rcpts = 0;
	s->refused++;
	sg_event_message(s, "tempfail", reason, NULL);
	sg_feedback_note(s->feedback, &s->vm_addr, SG_FB_TEMPFAILED, 0);
	local_reply(s, "451 4.7.1 smtpguard: message refused (%s); ref %s", reason, s->ref);
	sg_info("session %s -> %s: message %s deferred at MAIL FROM: %s", s->vm_name, s->mx_name,
		s->ref, reason);
	return 1;
}

/* After a refused message the upstream is gone: the relay answers. */
static void refused_command(struct session *s, enum smtp_verb verb)
{
	switch (verb) {
	case SMTP_QUIT:
		local_reply(s, "221 2.0.0 Bye");
		s->close_after_flush = 1;
		break;
	case SMTP_NOOP:
		local_reply(s, "250 2.0.0 Ok");
		break;
	default:
		/* RSET too: a 250 would invite an MTA that caches connections
		 * to keep this one for its next message, which could only be
		 * refused (the MX's side is gone); a failed RSET makes it open a
		 * new connection instead */
		local_reply(s, "421 4.7.0 smtpguard: this session ended with a refused message; "
			    "reconnect to send others");
		s->close_after_flush = 1;
	}
}

/* The argument of a command line from skip (past a keyword such as
 * "FROM:", when it is there, and the blanks after it), without its CRLF,
 * into out. */
static void command_arg(const char *line, size_t len, size_t skip, const char *keyword,
			char *out, size_t outlen)
{
	size_t end = len, k = keyword ? strlen(keyword) : 0;

	while (end > skip && (line[end - 1] == '\n' || line[end - 1] == '\r'))
		end--;
	if (k && end - skip >= k && strncasecmp(line + skip, keyword, k) == 0)
		skip += k;
	while (skip < end && (line[skip] == ' ' || line[skip] == '\t'))
		skip++;
	snprintf(out, outlen, "%.*s", (int)(end - skip), line + skip);
}

/* Is domain already in the comma-separated list (whole names, any case)? */
static int domain_listed(const char *list, const char *domain)
{
	size_t n = strlen(domain);

	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && strncasecmp(p, domain, n) == 0)
			return 1;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

/* What the events say of the envelope: HELO name, sender, recipient domains. */
static void note_envelope(struct session *s, enum smtp_verb verb, const char *line, size_t len,
			  size_t arg_off)
{
	char arg[512], *at, *end;

	switch (verb) {
	case SMTP_HELO:
	case SMTP_EHLO:
		command_arg(line, len, arg_off, NULL, s->helo, sizeof(s->helo));
		break;
	case SMTP_MAIL:
		s->rcpts = 0;
		s->rcpts_ok = 0;
		s->rcpt_domains[0] = '\0';
		command_arg(line, len, arg_off, "FROM:", arg, sizeof(arg));
		end = strchr(arg, '>');
		if (arg[0] == '<' && end)
			*end = '\0';
		snprintf(s->mail_from, sizeof(s->mail_from), "%s", arg[0] == '<' ? arg + 1 : arg);
		break;
	case SMTP_RCPT:
		command_arg(line, len, arg_off, "TO:", arg, sizeof(arg));
		at = strrchr(arg, '@');
		if (!at)
			break;
		end = strpbrk(at, "> \t");
		if (end)
			*end = '\0';
		if (!domain_listed(s->rcpt_domains, at + 1) &&
		    strlen(s->rcpt_domains) + strlen(at + 1) + 2 < sizeof(s->rcpt_domains)) {
			if (s->rcpt_domains[0])
				strcat(s->rcpt_domains, ",");
			strcat(s->rcpt_domains, at + 1);
		}
		break;
	default:
		break;
	}
}

/* The VM's commands, relayed as it batched them. */
static void process_vm(struct session *s)
{
	while (!s->close_after_flush) {
		enum smtp_line_result res;
		enum smtp_verb verb;
		size_t len, arg_off;

		if (s->mode == RELAY_TUNNEL || (s->tls_phase != TLS_NONE && s->tls_phase != TLS_ON))
			return;
		if (s->mode == RELAY_BODY) {
			process_body(s);
			if (s->mode == RELAY_BODY)
				return;
			continue;
		}
		if (s->mode == RELAY_WAIT || !s->vm_in.len || s->pend_count >= SG_MAX_PENDING - 1)
			return;
		if (s->discard_line) {
			char *lf = memchr(s->vm_in.data, '\n', s->vm_in.len);

			consume(&s->vm_in, lf ? (size_t)(lf - s->vm_in.data) + 1 : s->vm_in.len);
			s->discard_line = !lf;
			continue;
		}
		res = smtp_next_line(s->vm_in.data, s->vm_in.len, s->cfg->smtp_line_limit, &len);
		if (res == SMTP_LINE_NONE)
			return;
		if (res == SMTP_LINE_TOO_LONG) {
			if (s->mode == RELAY_AUTH_LINE) {
				/* the MX waits for this SASL line: answered here, the
				 * VM's next line would go to it as the answer */
				local_reply(s, "421 4.7.0 smtpguard: authentication line too long "
					    "(the limit is %u bytes)", s->cfg->smtp_line_limit);
				s->close_after_flush = 1;
				return;
			}
			/* a command, as far as the limit on them goes */
			if (++s->commands > s->cfg->smtp_command_limit) {
				local_reply(s, "421 4.7.0 smtpguard: too many commands in one "
					    "session (%u)", s->cfg->smtp_command_limit);
				s->close_after_flush = 1;
				s->end = "command_limit";
				return;
			}
			local_reply(s, "500 5.5.2 smtpguard: line too long (the limit is %u bytes)",
				    s->cfg->smtp_line_limit);
			s->discard_line = 1;
			continue;
		}
		if (!s->mx_gone && space(&s->mx_out) < len)
			return;
		if (++s->commands > s->cfg->smtp_command_limit) {
			local_reply(s, "421 4.7.0 smtpguard: too many commands in one session (%u)",
				    s->cfg->smtp_command_limit);
			s->close_after_flush = 1;
			s->end = "command_limit";
			return;
		}
		if (s->mode == RELAY_AUTH_LINE) {
			append(&s->mx_out, s->vm_in.data, len);
			consume(&s->vm_in, len);
			expect_reply(s, SMTP_AUTH, 0);
			s->mode = RELAY_WAIT;
			continue;
		}
		verb = smtp_verb_of(s->vm_in.data, len, &arg_off);
		if (s->mode == RELAY_REFUSED) {
			consume(&s->vm_in, len);
			refused_command(s, verb);
			continue;
		}
		note_envelope(s, verb, s->vm_in.data, len, arg_off);
		if (verb == SMTP_MAIL && over_message_rate(s)) {
			consume(&s->vm_in, len);
			continue;
		}
		if (verb == SMTP_MAIL && declared_size(s->vm_in.data, len) >
					     s->cfg->smtp_message_size_limit) {
			/* declared too large (RFC 1870): refused before its body
			 * is sent, as the MX itself would */
			consume(&s->vm_in, len);
			local_reply(s, "552 5.3.4 smtpguard: message size exceeds the limit of %llu "
				    "bytes", (unsigned long long)s->cfg->smtp_message_size_limit);
			continue;
		}
		if (verb == SMTP_RCPT && ++s->rcpts > s->cfg->smtp_recipient_limit) {
			consume(&s->vm_in, len);
			local_reply(s, "452 4.5.3 smtpguard: too many recipients (the limit is %u)",
				    s->cfg->smtp_recipient_limit);
			continue;
		}
		if (verb == SMTP_STARTTLS && (s->tls_mode == SG_TLS_STRIP || s->tls_phase == TLS_ON)) {
			consume(&s->vm_in, len);
			local_reply(s, s->tls_phase == TLS_ON ? "503 5.5.1 smtpguard: TLS is already "
				    "active" : "454 4.7.0 smtpguard: TLS not available");
			continue;
		}
		if (verb == SMTP_BDAT) {
			/* CHUNKING is not offered; a chunk's bytes cannot be told
			 * from commands, so the session ends */
			consume(&s->vm_in, len);
			local_reply(s, "421 4.5.0 smtpguard: BDAT is not offered (use DATA); closing "
				    "the connection");
			s->close_after_flush = 1;
			return;
		}
		append(&s->mx_out, s->vm_in.data, len);
		consume(&s->vm_in, len);
		expect_reply(s, verb, 0);
		/* sync points: what follows depends on their reply; an unknown
		 * command too, so that nothing is sent past one the MX takes
		 * for more than the relay knows (after_reply's 3xx check) */
		if (verb == SMTP_DATA || verb == SMTP_STARTTLS || verb == SMTP_AUTH ||
		    verb == SMTP_UNKNOWN)
			s->mode = RELAY_WAIT;
	}
}

void session_clear(struct session *s)
{
	struct sg_buf *bufs[] = { &s->vm_in, &s->mx_out, &s->mx_in, &s->vm_out };
	size_t caps[] = { SG_BODY_BUF, SG_BODY_BUF, SG_REPLY_BUF, SG_REPLY_BUF }, off = 0;

	memset(s, 0, offsetof(struct session, pending));
	s->io[SIDE_VM] = s->io[SIDE_MX] = &sg_io_plain;
	for (int i = 0; i < 4; i++) {
		bufs[i]->len = 0;
		bufs[i]->cap = caps[i];
		bufs[i]->data = s->storage + off;
		off += caps[i];
	}
}

void relay_start(struct session *s)
{
	expect_reply(s, SMTP_UNKNOWN, 0);	/* the greeting */
	s->mode = RELAY_COMMANDS;
}

/*
 * An ended session waits for its peers to close first (briefly: then it
 * resets them). Whoever closes first keeps the 4-tuple in TIME_WAIT, and a
 * TIME_WAIT socket on the host would take the VM's later, unproxied flows
 * of the same 4-tuple: early demux attaches it to their packets and
 * ip_forward drops any packet that has a socket. The VM's connection
 * would stall for the 60 s of TIME_WAIT.
 */
/* Every reply the VM is owed went out, or can no longer come (the MX is
 * gone and only its replies remain). */
static int nothing_owed(struct session *s)
{
	struct pending *p = pending_head(s);

	return !p || (s->mx_gone && !p->has_local);
}

static void begin_drain(struct session *s)
{
	if (s->draining)
		return;
	s->draining = 1;
	s->drain_deadline_ns = sg_now_ns() + SG_DRAIN_GRACE_NS;
	s->vm_in.len = 0;
	s->mx_out.len = 0;
}

/*
 * Follows the lines a draining VM sends for a QUIT. An MTA told 421 often
 * says QUIT and waits for an answer; answered 221, it closes first (so no
 * TIME_WAIT of the proxied 4-tuple stays on the host) at once, instead of
 * at the drain's grace. The match: 0 at a line's start, 1-4 letters of
 * QUIT seen, 4 also through trailing blanks, -1 another line.
 */
static void drain_note_quit(struct session *s, const char *buf, size_t n)
{
	static const char quit[] = "quit";
	static const char bye[] = "221 2.0.0 smtpguard: closing the connection\r\n";
	int m = s->drain_quit_match;

	for (size_t i = 0; i < n && !s->drain_quit_answered; i++) {
		char c = buf[i];

		if (c == '\n') {
			if (m == 4 && s->mode != RELAY_TUNNEL && space(&s->vm_out) >= sizeof(bye) - 1) {
				append(&s->vm_out, bye, sizeof(bye) - 1);
				s->drain_quit_answered = 1;
			}
			m = 0;
		} else if (m >= 0 && m < 4) {
			m = (c | 0x20) == quit[m] ? m + 1 : -1;
		} else if (m == 4 && c != ' ' && c != '\r') {
			m = -1;
		}
	}
	s->drain_quit_match = m;
}

/* Reads and drops what a peer still sends, until it would block or ends. */
static int discard_input(struct session *s, int side, int *eof)
{
	char sink[4096];

	/* bounded: a peer that keeps sending must not hold the worker; the
	 * level-triggered epoll comes back for the rest */
	for (int i = 0; i < 16 && !*eof; i++) {
		ssize_t n = s->io[side]->read(s, side, sink, sizeof(sink));

		if (n > 0 && side == SIDE_VM)
			drain_note_quit(s, sink, (size_t)n);
		if (n == 0)
			*eof = 1;
		else if (n < 0 && errno == EAGAIN)
			return 0;
		else if (n < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

static enum relay_result drain(struct session *s)
{
	if (discard_input(s, SIDE_VM, &s->vm_eof) || write_from(s, SIDE_VM, &s->vm_out))
		return RELAY_END;
	if (!s->mx_gone && discard_input(s, SIDE_MX, &s->mx_eof))
		return RELAY_END;
	if (!s->vm_out.len && s->vm_eof && (s->mx_gone || s->mx_eof))
		return RELAY_END;
	return RELAY_CONTINUE;
}

void relay_close(struct session *s, const char *reply)
{
	size_t n = strlen(reply);

	abort_upstream(s);
	begin_drain(s);
	/* a tunnel's stream is the VM's TLS: no plaintext reply goes in it */
	if (s->mode != RELAY_TUNNEL && space(&s->vm_out) >= n)
		append(&s->vm_out, reply, n);
}

int relay_awaiting_dot_reply(const struct session *s)
{
	for (int i = 0; i < s->pend_count; i++)
		if (s->pending[(s->pend_head + i) % SG_MAX_PENDING].data_end)
			return 1;
	return 0;
}

int relay_in_handshake(const struct session *s)
{
	return !s->draining && s->tls_phase != TLS_NONE && s->tls_phase != TLS_ON;
}

/* Decrypted bytes OpenSSL holds: epoll cannot know of them. */
static int tls_pending(const struct session *s, int side)
{
	return s->ssl[side] && s->tls_phase == TLS_ON && SSL_has_pending(s->ssl[side]);
}

static void tls_failure_reply(struct session *s, const char *what)
{
	char reply[300];

	snprintf(reply, sizeof(reply), "421 4.7.0 smtpguard: TLS with the MX %s (%.120s); try "
		 "again later\r\n", what, s->tls_error);
	s->tls_phase = TLS_NONE;
	relay_close(s, reply);
}

static void tls_up(struct session *s)
{
	const char *sni = SSL_get_servername(s->ssl[SIDE_VM], TLSEXT_NAMETYPE_host_name);

	snprintf(s->vm_sni, sizeof(s->vm_sni), "%s", sni ? sni : "");
	s->tls_resumed = SSL_session_reused(s->ssl[SIDE_VM]);
	sg_tls_describe(s->ssl[SIDE_VM], s->tls_vm, sizeof(s->tls_vm));
	s->io[SIDE_VM] = s->io[SIDE_MX] = &sg_io_tls;
	s->tls_phase = TLS_ON;
	/* SMTP starts over: the VM says EHLO again (RFC 3207) */
	s->mode = RELAY_COMMANDS;
	s->helo[0] = '\0';
	sg_debug("session %s -> %s: TLS terminated: VM %s%s%s%s; MX %s%s (%s), certificate %s",
		 s->vm_name, s->mx_name, s->tls_vm, s->vm_sni[0] ? ", SNI " : "", s->vm_sni,
		 s->tls_resumed ? ", resumed" : "", s->tls_mx, s->mx_resumed ? ", resumed" : "",
		 s->mx_host[0] ? s->mx_host : "?",
		 s->mx_verified ? "verified" : "not verified (tls_mx_verify = none)");
}

/* One step of the handshakes (tls_mode terminate): the MX's first, then
 * the proxy's 220 to the VM, then the VM's. */
static enum relay_result tls_step(struct session *s)
{
	int ret;

	switch (s->tls_phase) {
	case TLS_MX_HANDSHAKE:
		ERR_clear_error();
		errno = 0;
		ret = SSL_connect(s->ssl[SIDE_MX]);
		if (ret != 1) {
			if (tls_failed(s, SIDE_MX, ret) && errno == EAGAIN)
				return RELAY_CONTINUE;
			sg_warn("session %s -> %s: TLS with the MX (%s) failed: %s; the VM is told "
				"to retry later", s->vm_name, s->mx_name,
				s->mx_host[0] ? s->mx_host : "no name in its greeting", s->tls_error);
			tls_failure_reply(s, "failed");
			return RELAY_CONTINUE;
		}
		/* the context's own mode: a reload may have changed the config */
		s->mx_verified = (SSL_get_verify_mode(s->ssl[SIDE_MX]) & SSL_VERIFY_PEER) &&
				 SSL_get_verify_result(s->ssl[SIDE_MX]) == X509_V_OK;
		s->mx_resumed = SSL_session_reused(s->ssl[SIDE_MX]);
		sg_tls_describe(s->ssl[SIDE_MX], s->tls_mx, sizeof(s->tls_mx));
		s->tls_phase = TLS_VM_GREETING;
		/* fall through */
	case TLS_VM_GREETING:
		/* replies owed before it go first; then the 220, alone */
		if (write_from(s, SIDE_VM, &s->vm_out))
			return RELAY_END;
		if (s->vm_out.len)
			return RELAY_CONTINUE;
		if (!s->tls_ready_sent) {
			s->tls_ready_sent = 1;
			append(&s->vm_out, SG_STARTTLS_READY, sizeof(SG_STARTTLS_READY) - 1);
			if (write_from(s, SIDE_VM, &s->vm_out))
				return RELAY_END;
			if (s->vm_out.len)
				return RELAY_CONTINUE;
		}
		if (s->vm_in.len) {
			/* sent after STARTTLS, before the 220: injected, never trusted */
			sg_warn("session %s -> %s: %zu bytes the VM sent after STARTTLS, before "
				"TLS, dropped", s->vm_name, s->mx_name, s->vm_in.len);
			s->vm_in.len = 0;
		}
		nodelay(s->fd[SIDE_VM]);
		s->ssl[SIDE_VM] = sg_tls_server(s->tls, s->fd[SIDE_VM]);
		if (!s->ssl[SIDE_VM]) {
			sg_err("session %s -> %s: no TLS server context", s->vm_name, s->mx_name);
			abort_upstream(s);
			return RELAY_END;
		}
		s->tls_phase = TLS_VM_HANDSHAKE;
		s->tls_deadline_ns = sg_now_ns() + s->cfg->tls_handshake_timeout_ns;
		/* fall through */
	case TLS_VM_HANDSHAKE:
		ERR_clear_error();
		errno = 0;
		ret = SSL_accept(s->ssl[SIDE_VM]);
		if (ret != 1) {
			if (tls_failed(s, SIDE_VM, ret) && errno == EAGAIN)
				return RELAY_CONTINUE;
			sg_warn("session %s -> %s: TLS with the VM failed: %s; session ended",
				s->vm_name, s->mx_name, s->tls_error);
			abort_upstream(s);
			return RELAY_END;
		}
		tls_up(s);
		return RELAY_CONTINUE;
	default:
		return RELAY_CONTINUE;
	}
}

int relay_tls_timeout(struct session *s)
{
	uint64_t secs = s->cfg->tls_handshake_timeout_ns / 1000000000ULL;

	if (s->tls_phase == TLS_MX_HANDSHAKE) {
		sg_warn("session %s -> %s: TLS handshake with the MX timed out after %llus; the "
			"VM is told to retry later", s->vm_name, s->mx_name, (unsigned long long)secs);
		snprintf(s->tls_error, sizeof(s->tls_error), "no answer within %llus",
			 (unsigned long long)secs);
		tls_failure_reply(s, "timed out");
		return 0;
	}
	sg_warn("session %s -> %s: TLS handshake with the VM timed out after %llus; session "
		"ended", s->vm_name, s->mx_name, (unsigned long long)secs);
	abort_upstream(s);
	return 1;
}

/*
 * The MX's side ended and all it said has reached the VM. Unless its last
 * word was a goodbye (221, 421), the VM hears why in SMTP, at once: a VM
 * mid-DATA or waiting for a reply would otherwise get only a closed
 * connection, after the drain's grace.
 */
static void mx_ended(struct session *s)
{
	char reply[200];

	if (s->mx_said_bye && !s->mx_errno) {
		begin_drain(s);
		return;
	}
	if (s->mx_errno) {
		snprintf(reply, sizeof(reply), "421 4.4.2 smtpguard: the connection to the MX "
			 "failed (%s); try again later\r\n", strerror(s->mx_errno));
		s->end = "mx_failed";
		snprintf(s->end_detail, sizeof(s->end_detail), "%s", strerror(s->mx_errno));
	} else {
		snprintf(reply, sizeof(reply), "421 4.4.2 smtpguard: the MX closed the "
			 "connection; try again later\r\n");
		s->end = "mx_closed";
	}
	sg_debug("session %s -> %s: %.*s", s->vm_name, s->mx_name, (int)strlen(reply) - 2, reply);
	relay_close(s, reply);
}

/* Passthrough after STARTTLS: what the relay still owes each side goes
 * first (the 220), then the tunnel moves the rest, opaque. */
static enum relay_result tunnel_step(struct session *s, int vm_ready, int mx_ready)
{
	/* before the 220 goes out: the sockmap mover needs both peers quiet */
	if (!s->tunnel_started && tunnel_start(s))
		return RELAY_END;
	if (write_from(s, SIDE_VM, &s->vm_out) || write_from(s, SIDE_MX, &s->mx_out))
		return RELAY_END;
	if (s->vm_out.len || s->mx_out.len)
		return RELAY_CONTINUE;
	return tunnel_run(s, vm_ready, mx_ready);
}

enum relay_result relay_run(struct session *s, int vm_ready, int mx_ready)
{
	/* OpenSSL may hold decrypted bytes, or wait to write before it reads */
	int vm_drained = !vm_ready && !tls_pending(s, SIDE_VM) && !s->tls_want_write[SIDE_VM];
	int mx_drained = !mx_ready && !tls_pending(s, SIDE_MX) && !s->tls_want_write[SIDE_MX];

	if (relay_in_handshake(s)) {
		if (tls_step(s) == RELAY_END)
			return RELAY_END;
		if (relay_in_handshake(s) || s->draining)
			return s->draining ? drain(s) : RELAY_CONTINUE;
		/* TLS is up: records may have come with the last flight */
		vm_drained = mx_drained = 0;
	}
	if (s->mode == RELAY_TUNNEL && !s->draining)
		return tunnel_step(s, vm_ready, mx_ready);
	for (int round = 0; round < 64 && !s->draining; round++) {
		size_t before = s->vm_in.len + s->mx_in.len + s->vm_out.len + s->mx_out.len;
		int vm_eof = s->vm_eof, mx_eof = s->mx_eof;

		if (read_into(s, SIDE_VM, &s->vm_in, &s->vm_eof, &vm_drained))
			return RELAY_END;
		if (!s->mx_gone && read_into(s, SIDE_MX, &s->mx_in, &s->mx_eof, &mx_drained))
			return RELAY_END;
		process_mx(s);
		process_vm(s);
		process_mx(s);	/* local replies queued by the VM's lines */
		/* STARTTLS was answered: the tunnel or the handshakes take over,
		 * before anything more is written (the sockmap mover puts the
		 * sockets in its map before the VM hears the 220) */
		if (s->mode == RELAY_TUNNEL || relay_in_handshake(s))
			return relay_run(s, 1, 1);
		if (write_from(s, SIDE_VM, &s->vm_out))
			return RELAY_END;
		if (!s->mx_gone && write_from(s, SIDE_MX, &s->mx_out)) {
			if (s->io[SIDE_MX] != &sg_io_plain)
				return RELAY_END;
			s->mx_errno = errno ? errno : EPIPE;
			s->mx_eof = 1;
			s->mx_out.len = 0;
		}
		if (s->close_after_flush && !s->vm_out.len && nothing_owed(s))
			begin_drain(s);
		/* the VM went away: mid-DATA the MX never sees the dot (the
		 * upstream is reset); otherwise once the MX has answered all */
		if (s->vm_eof && (s->mode == RELAY_BODY || (!s->mx_out.len && !s->pend_count)))
			return RELAY_END;
		if (s->mx_eof && !s->mx_gone && !s->mx_in.len && !s->vm_out.len)
			mx_ended(s);
		if (before == s->vm_in.len + s->mx_in.len + s->vm_out.len + s->mx_out.len &&
		    vm_eof == s->vm_eof && mx_eof == s->mx_eof)
			break;
	}
	return s->draining ? drain(s) : RELAY_CONTINUE;
}

static uint32_t handshake_interest(const struct session *s, int side)
{
	switch (s->tls_phase) {
	case TLS_MX_HANDSHAKE:
		return side == SIDE_MX ? EPOLLIN | (s->tls_want_write[SIDE_MX] ? EPOLLOUT : 0) : 0;
	case TLS_VM_GREETING:
		return side == SIDE_VM ? EPOLLOUT : 0;
	default:	/* TLS_VM_HANDSHAKE */
		return side == SIDE_VM ? EPOLLIN | (s->tls_want_write[SIDE_VM] ? EPOLLOUT : 0) : 0;
	}
}

uint32_t relay_interest(const struct session *s, int side)
{
	uint32_t ev = 0;

	if (relay_in_handshake(s))
		return s->fd[side] >= 0 ? handshake_interest(s, side) : 0;
	if (s->mode == RELAY_TUNNEL && !s->draining) {
		if (side == SIDE_VM && s->vm_out.len)
			return EPOLLOUT;
		if (side == SIDE_MX && s->mx_out.len)
			return EPOLLOUT;
		if (s->vm_out.len || s->mx_out.len)
			return 0;
		return tunnel_interest(s, side);
	}
	if (side == SIDE_VM) {
		if (!s->vm_eof && (s->draining || space(&s->vm_in)))
			ev |= EPOLLIN | EPOLLRDHUP;
		if (s->vm_out.len || s->tls_want_write[SIDE_VM])
			ev |= EPOLLOUT;
	} else if (!s->mx_gone) {
		if (!s->mx_eof && (s->draining || space(&s->mx_in)))
			ev |= EPOLLIN | EPOLLRDHUP;
		if ((s->mx_out.len || s->tls_want_write[SIDE_MX]) && !s->draining)
			ev |= EPOLLOUT;
	}
	return ev;
}
