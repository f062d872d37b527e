/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * peers.c - the test's ends of a session's sockets, the VM and the MX,
 * and the steps a SIDE takes: it sends (">", ">>", blob, line, repeat),
 * expects ("<", "<<", "< ...", "< nothing", "< closed"), half-closes,
 * closes or resets. A side's received bytes are read only by the steps
 * that check them; what a peer got and no step checked is an error
 * (peer_unchecked), as a golden file's surplus line is.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include "relay_test.h"

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

/* ------------------------------------------------------------ the peers */

/* What the socket has now, into the peer's buffer. */
void peer_fill(struct peer *p)
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
	if (r->hold) {
		r->hold = 0;
		return 0;	/* the relay reads it when the loop next runs */
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
int peer_unchecked(struct run *r, int side)
{
	struct peer *p = &r->c->peer[side];
	char g[600];

	peer_fill(p);
	if (p->skip || !p->len)
		return 0;
	return fail(r, "the %s got \"%s\", which no step checked", p->name,
		    show(p->buf, p->len, 300, g, sizeof(g)));
}

void peer_close(struct peer *p)
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
int step_side(struct run *r, int side, const char *p)
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

