/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mime_headers.c - the MIME parser's header sections (see mime.h): lines
 * gathered into whole headers (a header is complete when the next line
 * does not continue it), each unfolded and handed on with its encoded-words
 * decoded, the Content-* ones read into the part; the section ended by a
 * blank line, a boundary, or a line that is no header (which is then the
 * body's first line).
 *
 * A header is held whole up to the header limit, its line breaks with it,
 * so that lines that turn out not to be headers can go on to the body as
 * they came. Past the limit a header is cut and the rest skipped; a line
 * that is no header is never cut: what was held goes to the body and the
 * rest of the line streams after it.
 */
#include <string.h>
#include <strings.h>
#include "mime_state.h"

enum name_result {
	NAME_NOT = 0,		/* not a header */
	NAME_PARTIAL,		/* a name, no colon yet */
	NAME_HEADER,		/* name *WSP ':' */
};

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Reads a header's name from s[0..n) (its lines, breaks included): field
 * name characters, folds inside it removed with their whitespace, then
 * optional whitespace and ':'. *colon: where the colon is; *folded: a fold
 * split the name. */
static enum name_result parse_name(const char *s, size_t n, size_t *colon, int *folded)
{
	size_t i = 0, name = 0;
	int space = 0, after_fold = 0;

	*folded = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c == ':') {
			if (!name)
				return NAME_NOT;
			*colon = i;
			return NAME_HEADER;
		}
		if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
			i++;
			continue;
		}
		if (c == '\n') {
			if (i + 1 == n)
				break;	/* the last line's own break */
			for (i++; i < n && is_wsp(s[i]); i++)
				;
			after_fold = 1;
			continue;
		}
		if (is_wsp((char)c)) {
			if (!name)
				return NAME_NOT;
			space = 1;
			i++;
			continue;
		}
		if (c <= ' ' || c >= 0x7f || space)
			return NAME_NOT;
		if (after_fold)
			*folded = 1;
		name++;
		i++;
	}
	return name ? NAME_PARTIAL : NAME_NOT;
}

static int append(struct sg_mime *m, const char *p, size_t n)
{
	if (sg_mime_reserve(m, &m->line, &m->line_cap, m->line_len + n, m->lim.header))
		return -1;
	if (n)
		memcpy(m->line + m->line_len, p, n);
	m->line_len += n;
	return 0;
}

/* A Content-* header read into the top part; the first of each counts. */
static void read_content_field(struct sg_mime *m, const char *name, size_t name_len,
			       char *value, size_t value_len)
{
	struct mime_frame *f = sg_mime_top(m);
	const char *boundary;
	size_t boundary_len;
	unsigned int which;

	if (name_len == 12 && !strncasecmp(name, "content-type", 12))
		which = SEEN_TYPE;
	else if (name_len == 25 && !strncasecmp(name, "content-transfer-encoding", 25))
		which = SEEN_ENCODING;
	else if (name_len == 19 && !strncasecmp(name, "content-disposition", 19))
		which = SEEN_DISPOSITION;
	else
		return;
	if (f->seen & which) {
		sg_mime_anomaly(m, SG_MIME_ANOM_DUPLICATE_HEADER, m->hdr_off);
		return;
	}
	f->seen |= which;
	/* scratch for a file name: never longer than the value */
	if (sg_mime_reserve(m, &m->dec, &m->dec_cap, value_len + 1, m->lim.header + 1))
		return;
	if (which == SEEN_ENCODING) {
		f->part.encoding = sg_mime_transfer_encoding(value, value_len);
		if (f->part.encoding == SG_MIME_ENCODING_UNKNOWN)
			sg_mime_anomaly(m, SG_MIME_ANOM_UNKNOWN_ENCODING, m->hdr_off);
		return;
	}
	if (which == SEEN_DISPOSITION) {
		sg_mime_content_disposition(value, value_len, m->dec, &f->part, &f->fields);
	} else {
		sg_mime_content_type(value, value_len, m->dec, &f->part, &f->fields, &boundary,
				     &boundary_len);
		if (boundary && boundary_len > m->lim.boundary) {
			f->bound_state = BOUND_TOO_LONG;
		} else if (boundary && boundary_len) {
			if (sg_mime_reserve(m, &m->bounds, &m->bounds_cap, f->bound_off + boundary_len,
					    (m->lim.nesting + 1) * m->lim.boundary))
				return;
			memcpy(m->bounds + f->bound_off, boundary, boundary_len);
			f->bound_len = boundary_len;
			m->bounds_len = f->bound_off + boundary_len;
			f->bound_state = BOUND_OK;
		}
	}
	if (f->fields.filename_long)
		sg_mime_anomaly(m, SG_MIME_ANOM_LONG_FILENAME, m->hdr_off);
}

/* The held header, unfolded in place (name first, then value) and handed on. */
static void emit_header(struct sg_mime *m)
{
	char *s = m->line;
	size_t n = m->line_len, colon = 0, w = 0, i, value;
	struct sg_mime_header h = { 0 };
	int folded, nul = 0, eight = 0;

	if (parse_name(s, n, &colon, &folded) != NAME_HEADER)
		return;
	for (i = 0; i < colon; i++)
		if ((unsigned char)s[i] > ' ' && (unsigned char)s[i] < 0x7f)
			s[w++] = s[i];
	h.name_len = w;
	for (i = colon + 1; i < n && (is_wsp(s[i]) || s[i] == '\r' || s[i] == '\n'); i++)
		;
	value = w;
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n' || (c == '\r' && i + 1 < n && s[i + 1] == '\n'))
			continue;
		nul |= c == 0;
		eight |= c >= 0x80;
		s[w++] = (char)c;
	}
	h.name = s;
	h.value = s + value;
	h.value_len = w - value;
	h.decoded = h.value;
	h.decoded_len = h.value_len;
	h.truncated = m->hdr_truncated;
	if (folded)
		sg_mime_anomaly(m, SG_MIME_ANOM_FOLDED_NAME, m->hdr_off);
	if (nul)
		sg_mime_anomaly(m, SG_MIME_ANOM_HEADER_NUL, m->hdr_off);
	if (eight)
		sg_mime_anomaly(m, SG_MIME_ANOM_HEADER_8BIT, m->hdr_off);
	if (memmem(h.value, h.value_len, "=?", 2)) {
		if (sg_mime_reserve(m, &m->dec, &m->dec_cap, h.value_len + 1, m->lim.header + 1))
			return;
		h.decoded_len = sg_mime_decode_words(h.value, h.value_len, m->dec, NULL);
		h.decoded = m->dec;
	}
	if (m->cb.header)
		m->cb.header(m->ctx, &sg_mime_top(m)->part, &h);
	read_content_field(m, s, h.name_len, s + value, h.value_len);
}

/* The held lines go to the body as they came: they were no header. Their
 * last line break is held like any body line's. */
static void held_lines_to_body(struct sg_mime *m, int ends_line)
{
	size_t len = m->line_len;
	unsigned int brk = 0;

	if (ends_line && len && m->line[len - 1] == '\n')
		brk = len > 1 && m->line[len - 2] == '\r' ? 2 : 1;
	m->hdr_kind = HDR_NONE;
	m->line_len = 0;
	sg_mime_end_all_headers(m, m->hdr_off);
	sg_mime_deliver(m, m->line, len - brk, m->hdr_off);
	if (brk) {
		m->pend_break = brk;
		m->pend_off = m->hdr_off + len - brk;
	}
}

/* The held header is complete (the next line does not continue it): 1 if
 * it was a header; 0 if it was not, and went to the body. */
static int finish_held(struct sg_mime *m)
{
	size_t colon;
	int folded;

	if (m->hdr_kind == HDR_HEADER ||
	    parse_name(m->line, m->line_len, &colon, &folded) == NAME_HEADER) {
		emit_header(m);
		m->hdr_kind = HDR_NONE;
		m->line_len = 0;
		return 1;
	}
	held_lines_to_body(m, 1);
	return 0;
}

/* The header being held reached the limit with more to come on its line:
 * 1 if it is a header (cut, the rest skipped); 0 if it is no header, and
 * went to the body, whose line goes on. */
static int over_limit(struct sg_mime *m)
{
	unsigned int depth;
	size_t colon;
	int close, folded;

	if (!m->line_is_continuation)	/* too long for a boundary: a lookalike? */
		sg_mime_is_boundary(m, m->line, m->line_len, 0, &depth, &close);
	if (m->hdr_kind == HDR_HEADER ||
	    parse_name(m->line, m->line_len, &colon, &folded) == NAME_HEADER) {
		m->hdr_kind = HDR_HEADER;
		m->hdr_truncated = 1;
		sg_mime_anomaly(m, SG_MIME_ANOM_HEADER_LIMIT, m->hdr_off);
		return 1;
	}
	held_lines_to_body(m, 0);
	m->line_mode = LINE_CONTENT;
	return 0;
}

/* The current line has ended (has_break: with its LF; else at the end of
 * the message): what a line that does not continue a header is. */
static void line_done(struct sg_mime *m, int has_break)
{
	size_t len = m->line_len, colon;
	unsigned int brk = 0, depth;
	int close, folded;
	enum name_result r;

	m->line_mode = LINE_START;
	if (m->line_is_continuation || m->hdr_truncated)
		return;
	if (has_break) {
		len--;
		brk = 1;
		if (len && m->line[len - 1] == '\r') {
			len--;
			brk = 2;
		}
	}
	if (len == 0) {
		m->line_len = 0;
		sg_mime_end_headers(m, m->line_off + brk, 1);
		return;
	}
	if (sg_mime_is_boundary(m, m->line, len, 1, &depth, &close)) {
		m->line_len = 0;
		sg_mime_boundary(m, depth, close, m->line, len, brk);
		return;
	}
	r = parse_name(m->line, len, &colon, &folded);
	if (r == NAME_HEADER) {
		m->hdr_kind = HDR_HEADER;
	} else if (r == NAME_PARTIAL) {
		m->hdr_kind = HDR_CANDIDATE;
	} else {
		held_lines_to_body(m, has_break);	/* "a body line with no blank line before it" */
	}
}

size_t sg_mime_header_feed(struct sg_mime *m, const char *d, size_t n)
{
	const char *nl;
	size_t take, room;

	if (m->line_mode == LINE_START) {
		int continues = is_wsp(d[0]) && m->hdr_kind != HDR_NONE;

		if (!continues) {
			if (m->hdr_kind != HDR_NONE && !finish_held(m))
				return 0;	/* the body starts with this line */
			m->line_len = 0;
			m->hdr_truncated = 0;
			m->hdr_off = m->offset;
		}
		m->line_is_continuation = continues;
		m->line_off = m->offset;
		m->line_mode = LINE_HEADER;
	}
	nl = memchr(d, '\n', n);
	take = nl ? (size_t)(nl - d) + 1 : n;
	if (m->hdr_truncated) {
		if (nl)
			line_done(m, 1);
		return take;
	}
	room = m->lim.header - m->line_len;
	if (take > room) {
		if (append(m, d, room))
			return 0;
		if (!over_limit(m))
			return room;
		if (nl)
			line_done(m, 1);
		return take;
	}
	if (append(m, d, take))
		return 0;
	if (nl)
		line_done(m, 1);
	return take;
}

void sg_mime_header_eof(struct sg_mime *m)
{
	if (m->line_mode == LINE_HEADER)
		line_done(m, 0);
	if (m->state != ST_HEADERS)
		return;
	if (m->hdr_kind != HDR_NONE && !finish_held(m))
		return;
	sg_mime_end_all_headers(m, m->offset);
}
