/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mime_body.c - the MIME parser's body lines (see mime.h): content handed
 * on in place, as many whole lines at once as the slice holds, and
 * boundaries found at line starts.
 *
 * Only a line that starts with '-' while a multipart is open can be a
 * boundary, and only its first hold_max bytes are held (in the line buffer
 * when it spans slices, else read in place); a longer line is content and
 * streams on. A content line's break is held until the next line's first
 * byte shows that no boundary follows (the break before a boundary is the
 * boundary's), and a slice's last CR until the next byte shows whether it
 * starts a CRLF: so the content handed on is the same however the message
 * is sliced.
 */
#include <string.h>
#include "mime_state.h"

static int is_pad(char c)
{
	return c == ' ' || c == '\t';
}

/* Is line[0..len) (its break removed) a boundary of an open multipart,
 * innermost first: "--" boundary ["--"] and up to SG_MIME_BOUNDARY_PAD_MAX
 * spaces or tabs? With whole 0, only the start of a longer line is there:
 * it is none, but may start like one. A line that starts like a boundary
 * and is none is flagged. */
int sg_mime_is_boundary(struct sg_mime *m, const char *line, size_t len, int whole,
			unsigned int *depth, int *close)
{
	int lookalike = 0;

	if (m->gave_up || !m->open_bounds || len < 2 || line[0] != '-' || line[1] != '-')
		return 0;
	for (unsigned int j = m->top + 1; j-- > 0;) {
		const struct mime_frame *f = &m->frames[j];
		const char *rest;
		size_t rest_len, k;
		int closing;

		if (f->kind != FRAME_MULTIPART || f->closed)
			continue;
		if (len - 2 < f->bound_len || memcmp(line + 2, m->bounds + f->bound_off, f->bound_len))
			continue;
		lookalike = 1;
		if (!whole)
			continue;
		rest = line + 2 + f->bound_len;
		rest_len = len - 2 - f->bound_len;
		closing = rest_len >= 2 && rest[0] == '-' && rest[1] == '-';
		k = closing ? 2 : 0;
		if (rest_len - k > SG_MIME_BOUNDARY_PAD_MAX)
			continue;
		while (k < rest_len && is_pad(rest[k]))
			k++;
		if (k < rest_len)
			continue;
		*depth = j;
		*close = closing;
		return 1;
	}
	if (lookalike)
		sg_mime_anomaly(m, SG_MIME_ANOM_BOUNDARY_LOOKALIKE, m->line_off);
	return 0;
}

/* A boundary of the multipart at depth came (the line at m->line_off, brk
 * its break's length): the parts inside it end; its next part begins, or
 * its epilogue. line is read only past the parts limit, where it is text. */
void sg_mime_boundary(struct sg_mime *m, unsigned int depth, int close, const char *line,
		      size_t len, unsigned int brk)
{
	uint64_t line_off = m->line_off;
	uint64_t end = m->pend_break ? m->pend_off : line_off;

	m->pend_break = 0;
	/* a part whose header section the boundary cut short begins and ends */
	sg_mime_end_all_headers(m, line_off);
	while (m->top > depth && !m->failed)
		sg_mime_close_part(m, end);
	if (m->failed)
		return;
	m->line_mode = LINE_START;
	if (close && !m->gave_up) {
		sg_mime_top(m)->closed = 1;
		m->open_bounds--;
		m->state = ST_BODY;
		return;
	}
	if (!m->gave_up && sg_mime_open_part(m))
		return;
	if (m->failed)
		return;
	sg_mime_give_up(m, line_off);
	sg_mime_deliver(m, line, len, line_off);
	if (brk) {
		m->pend_break = brk;
		m->pend_off = line_off + len;
	}
}

/* A held line ended (has_break: by its LF, else by the message's end). */
static void line_end(struct sg_mime *m, const char *line, size_t len, int has_break)
{
	unsigned int brk = 0, depth;
	int close;

	if (has_break) {
		brk = 1;
		if (len && line[len - 1] == '\r') {
			len--;
			brk = 2;
		}
	}
	m->line_len = 0;
	m->line_mode = LINE_START;
	if (sg_mime_is_boundary(m, line, len, 1, &depth, &close)) {
		sg_mime_boundary(m, depth, close, line, len, brk);
		return;
	}
	sg_mime_deliver_break(m);
	sg_mime_deliver(m, line, len, m->line_off);
	if (brk) {
		m->pend_break = brk;
		m->pend_off = m->line_off + len;
	}
}

static int hold(struct sg_mime *m, const char *p, size_t n)
{
	if (sg_mime_reserve(m, &m->line, &m->line_cap, m->line_len + n, m->lim.header))
		return -1;
	memcpy(m->line + m->line_len, p, n);
	m->line_len += n;
	return 0;
}

/* A line that may be a boundary: held (or read in place) up to hold_max
 * bytes; a longer one is content, and the rest of it streams on. */
static size_t held_line(struct sg_mime *m, const char *p, size_t n)
{
	size_t room = m->hold_max - m->line_len, look = n < room + 1 ? n : room + 1;
	const char *nl = memchr(p, '\n', look);
	unsigned int depth;
	int close;

	if (nl) {
		size_t e = (size_t)(nl - p);

		if (!m->line_len) {
			line_end(m, p, e, 1);
		} else if (!hold(m, p, e)) {
			line_end(m, m->line, m->line_len, 1);
		}
		return e + 1;
	}
	if (n <= room) {
		hold(m, p, n);
		return n;
	}
	if (m->line_len) {
		if (hold(m, p, room))
			return room;
		p = m->line;
	}
	sg_mime_is_boundary(m, p, m->hold_max, 0, &depth, &close);
	sg_mime_deliver_break(m);
	sg_mime_deliver(m, p, m->hold_max, m->line_off);
	m->line_len = 0;
	m->line_mode = LINE_CONTENT;
	return room;
}

/* The first LF in p[0..n) followed by '-', or NULL. p[0] starts no line
 * here: the line start before it was looked at already. */
static const char *line_starting_with_dash(const char *p, size_t n)
{
	const char *q = p + 1, *end = p + n;

	while (q < end && (q = memchr(q, '-', (size_t)(end - q)))) {
		if (q[-1] == '\n')
			return q - 1;
		q++;
	}
	return NULL;
}

/* Content from p: as many whole lines at once as are plainly content (the
 * next one does not start with '-'), up to the slice's end. */
static size_t content_lines(struct sg_mime *m, const char *p, size_t n, uint64_t off)
{
	const char *dash;
	size_t e;
	unsigned int brk;

	if (m->cr_held) {
		m->cr_held = 0;
		if (p[0] == '\n') {
			m->pend_break = 2;
			m->pend_off = m->cr_off;
			m->line_mode = LINE_START;
			return 1;
		}
		sg_mime_deliver(m, "\r", 1, m->cr_off);
	}
	/* only a line that starts with '-' needs looking at, and the last
	 * break of the slice (what follows it is not here yet); '-' is never
	 * in base64 and seldom in text, so it is what is searched for */
	dash = line_starting_with_dash(p, n);
	if (dash) {
		e = (size_t)(dash - p);
	} else if (p[n - 1] == '\n') {
		e = n - 1;
	} else {
		size_t end = n;

		if (p[n - 1] == '\r') {
			end--;
			m->cr_held = 1;
			m->cr_off = off + end;
		}
		sg_mime_deliver(m, p, end, off);
		return n;
	}
	brk = e > 0 && p[e - 1] == '\r' ? 2 : 1;
	sg_mime_deliver(m, p, e + 1 - brk, off);
	m->pend_break = brk;
	m->pend_off = off + e + 1 - brk;
	m->line_mode = LINE_START;
	return e + 1;
}

size_t sg_mime_body_feed(struct sg_mime *m, const char *d, size_t n)
{
	size_t i = 0;

	if (m->gave_up || !m->open_bounds) {
		/* no boundary can come (any more): what is held, and the rest, is content */
		sg_mime_deliver_break(m);
		if (m->line_mode == LINE_HELD) {
			sg_mime_deliver(m, m->line, m->line_len, m->line_off);
			m->line_len = 0;
		}
		if (m->cr_held) {
			m->cr_held = 0;
			sg_mime_deliver(m, "\r", 1, m->cr_off);
		}
		sg_mime_deliver(m, d, n, m->offset);
		m->line_mode = LINE_CONTENT;
		return n;
	}
	while (i < n && m->state == ST_BODY && !m->failed) {
		switch (m->line_mode) {
		case LINE_START:
			m->line_off = m->offset + i;
			if (d[i] == '-') {
				m->line_mode = LINE_HELD;
				m->line_len = 0;
				break;
			}
			sg_mime_deliver_break(m);
			m->line_mode = LINE_CONTENT;
			break;
		case LINE_CONTENT:
			i += content_lines(m, d + i, n - i, m->offset + i);
			break;
		case LINE_HELD:
			i += held_line(m, d + i, n - i);
			break;
		case LINE_HEADER:
			m->line_mode = LINE_CONTENT;	/* cannot be: a header line in a body */
			break;
		}
	}
	return i;
}

void sg_mime_body_eof(struct sg_mime *m)
{
	if (m->line_mode == LINE_HELD)
		line_end(m, m->line, m->line_len, 0);
	if (m->state != ST_BODY)
		return;
	if (m->cr_held) {
		m->cr_held = 0;
		sg_mime_deliver(m, "\r", 1, m->cr_off);
	}
	sg_mime_deliver_break(m);
}
