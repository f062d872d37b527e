/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mime.c - the MIME parser's API (see mime.h) and its part stack: a part
 * opened, its header section ended (what it is decided: a multipart taken
 * apart, a message inside, or content, and where that content goes), its
 * content decoded and handed on, the part closed. The header sections are
 * read in mime_headers.c, the body lines in mime_body.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "mime_state.h"

static const struct {
	const char *name;
	const char *text;
} anomaly_info[SG_MIME_ANOM_COUNT] = {
	[SG_MIME_ANOM_NESTING_LIMIT] = { "nesting-limit",
		"MIME nesting over the limit: the part is scanned as text" },
	[SG_MIME_ANOM_HEADER_LIMIT] = { "header-limit",
		"a header over the size limit: delivered truncated, the rest skipped" },
	[SG_MIME_ANOM_BOUNDARY_LIMIT] = { "boundary-limit",
		"a multipart boundary over the length limit: refused, the part scanned as text" },
	[SG_MIME_ANOM_PARTS_LIMIT] = { "parts-limit",
		"more MIME parts than the limit: the rest of the message is scanned as text" },
	[SG_MIME_ANOM_BAD_BASE64] = { "bad-base64",
		"base64 with bytes outside the alphabet (skipped), data after the padding, "
		"or a cut quartet" },
	[SG_MIME_ANOM_BAD_QP] = { "bad-quoted-printable",
		"an invalid quoted-printable escape, passed through as it is" },
	[SG_MIME_ANOM_HEADER_NUL] = { "header-nul", "a NUL byte in a header" },
	[SG_MIME_ANOM_NO_BLANK_LINE] = { "no-blank-line",
		"a header section ended without a blank line" },
	[SG_MIME_ANOM_UNTERMINATED] = { "unterminated-multipart",
		"a multipart without its closing boundary" },
	[SG_MIME_ANOM_HEADER_8BIT] = { "header-8bit", "8-bit bytes in a header" },
	[SG_MIME_ANOM_NO_BOUNDARY] = { "no-boundary",
		"a multipart without a boundary: the part is scanned as text" },
	[SG_MIME_ANOM_BOUNDARY_LOOKALIKE] = { "boundary-lookalike",
		"a line that starts with a boundary but is not one (some readers split there)" },
	[SG_MIME_ANOM_CONTAINER_ENCODING] = { "container-encoding",
		"a multipart or message encoded in base64 or quoted-printable: decoded and "
		"scanned as text" },
	[SG_MIME_ANOM_UNKNOWN_ENCODING] = { "unknown-encoding",
		"an unknown Content-Transfer-Encoding: the content is taken as it is" },
	[SG_MIME_ANOM_DUPLICATE_HEADER] = { "duplicate-content-header",
		"a repeated Content-Type, -Transfer-Encoding or -Disposition: the first one counts" },
	[SG_MIME_ANOM_FOLDED_NAME] = { "folded-header-name",
		"a header name split by folding" },
	[SG_MIME_ANOM_LONG_FILENAME] = { "long-filename",
		"a file name over the length limit: its start and end kept" },
};

const char *sg_mime_anomaly_name(enum sg_mime_anomaly code)
{
	return (unsigned int)code < SG_MIME_ANOM_COUNT ? anomaly_info[code].name : "unknown";
}

const char *sg_mime_anomaly_text(enum sg_mime_anomaly code)
{
	return (unsigned int)code < SG_MIME_ANOM_COUNT ? anomaly_info[code].text : "unknown anomaly";
}

uint64_t sg_mime_anomaly_count(const struct sg_mime *m, enum sg_mime_anomaly code)
{
	return (unsigned int)code < SG_MIME_ANOM_COUNT ? m->counts[code] : 0;
}

/* Counted always; told once a part, so that no input makes a callback a byte. */
void sg_mime_anomaly(struct sg_mime *m, enum sg_mime_anomaly code, uint64_t offset)
{
	struct mime_frame *f = sg_mime_top(m);
	struct sg_mime_where where = { .offset = offset, .part = &f->part };

	m->counts[code]++;
	if (f->part.anomalies & (1u << code))
		return;
	f->part.anomalies |= 1u << code;
	if (m->cb.anomaly)
		m->cb.anomaly(m->ctx, code, &where);
}

/* Grows *buf to hold need bytes (doubling, never past max). -1, and the
 * parser stops, if memory is short or need passes max (a bug). */
int sg_mime_reserve(struct sg_mime *m, char **buf, size_t *cap, size_t need, size_t max)
{
	size_t want;
	char *p;

	if (need <= *cap)
		return 0;
	if (need > max) {
		m->failed = 1;
		return -1;
	}
	want = *cap ? *cap * 2 : 1024;
	if (want < need)
		want = need;
	if (want > max)
		want = max;
	p = realloc(*buf, want);
	if (!p) {
		m->failed = 1;
		return -1;
	}
	*buf = p;
	*cap = want;
	return 0;
}

static void limits_from(struct sg_mime_limits *l, size_t *hold_max, const struct sg_mime_limits *in)
{
	l->nesting = in && in->nesting && in->nesting < SG_MIME_NESTING_MAX ? in->nesting
									  : SG_MIME_NESTING_MAX;
	l->boundary = in && in->boundary && in->boundary < SG_MIME_BOUNDARY_MAX ? in->boundary
										 : SG_MIME_BOUNDARY_MAX;
	l->header = in && in->header && in->header < SG_MIME_HEADER_MAX ? in->header
									: SG_MIME_HEADER_MAX;
	l->parts = in && in->parts && in->parts < SG_MIME_PARTS_MAX ? in->parts : SG_MIME_PARTS_MAX;
	/* "--" boundary "--" padding CR: a boundary line is read whole */
	*hold_max = 2 + l->boundary + 2 + SG_MIME_BOUNDARY_PAD_MAX + 1;
	if (l->header < *hold_max)
		l->header = *hold_max;
}

size_t sg_mime_memory_bound(const struct sg_mime_limits *limits)
{
	struct sg_mime_limits l;
	size_t hold_max;

	limits_from(&l, &hold_max, limits);
	return sizeof(struct sg_mime) + 2 * l.header + 1 + (l.nesting + 1) * l.boundary +
	       (l.nesting + 1) * sizeof(struct mime_frame);
}

size_t sg_mime_memory(const struct sg_mime *m)
{
	return sizeof(*m) + m->line_cap + m->dec_cap + m->bounds_cap +
	       m->frames_cap * sizeof(struct mime_frame);
}

/* Decoded bytes go on to the part they came from (the top one). */
static void out_flush(struct sg_mime_out *o)
{
	struct sg_mime *m = (struct sg_mime *)((char *)o - offsetof(struct sg_mime, out));
	struct mime_frame *f = sg_mime_top(m);

	if (o->len) {
		f->part.decoded_bytes += o->len;
		if (f->sink == SINK_TEXT && m->cb.text)
			m->cb.text(m->ctx, &f->part, o->buf, o->len);
		else if (f->sink == SINK_RAW && m->cb.raw)
			m->cb.raw(m->ctx, &f->part, o->buf, o->len);
	}
	o->len = 0;
}

static void frame_init(struct sg_mime *m, struct mime_frame *f, unsigned int depth, int digest)
{
	memset(f, 0, sizeof(*f));
	f->part.depth = depth;
	strcpy(f->part.type, digest ? "message" : "text");
	strcpy(f->part.subtype, digest ? "rfc822" : "plain");
	f->in_headers = 1;
	f->bound_off = m->bounds_len;
}

struct sg_mime *sg_mime_new(const struct sg_mime_callbacks *cb, void *ctx,
			    const struct sg_mime_limits *limits)
{
	struct sg_mime *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	if (cb)
		m->cb = *cb;
	m->ctx = ctx;
	limits_from(&m->lim, &m->hold_max, limits);
	m->frames_cap = 4;
	m->frames = malloc(m->frames_cap * sizeof(*m->frames));
	if (!m->frames) {
		free(m);
		return NULL;
	}
	frame_init(m, &m->frames[0], 0, 0);
	m->out.buf = m->out_buf;
	m->out.cap = sizeof(m->out_buf);
	m->out.flush = out_flush;
	return m;
}

void sg_mime_free(struct sg_mime *m)
{
	if (!m)
		return;
	free(m->frames);
	free(m->bounds);
	free(m->line);
	free(m->dec);
	free(m);
}

/* A part of the top one begins (after a boundary, or a message/rfc822's
 * message): 0 past the parts limit. */
int sg_mime_open_part(struct sg_mime *m)
{
	struct mime_frame *parent;
	int digest;

	if (m->parts >= m->lim.parts)
		return 0;
	if (m->top + 2 > m->frames_cap) {
		unsigned int cap = m->frames_cap * 2;
		struct mime_frame *f;

		if (cap > m->lim.nesting + 1)
			cap = m->lim.nesting + 1;
		f = m->top + 2 <= cap ? realloc(m->frames, cap * sizeof(*f)) : NULL;
		if (!f) {
			m->failed = 1;
			return 0;
		}
		m->frames = f;
		m->frames_cap = cap;
	}
	parent = sg_mime_top(m);
	digest = parent->kind == FRAME_MULTIPART && parent->digest;
	m->top++;
	frame_init(m, sg_mime_top(m), m->top, digest);
	sg_mime_top(m)->part.index = ++m->parts;
	m->state = ST_HEADERS;
	m->line_mode = LINE_START;
	m->hdr_kind = HDR_NONE;
	m->hdr_truncated = 0;
	m->line_len = 0;
	return 1;
}

static int is_encoded(enum sg_mime_encoding e)
{
	return e == SG_MIME_BASE64 || e == SG_MIME_QUOTED_PRINTABLE;
}

/* What a part is taken apart as. One whose headers say it holds parts
 * but that cannot be taken apart is *refused (the anomaly told): a leaf
 * whose content is scanned as text rather than hidden. */
static enum mime_frame_kind frame_kind(struct sg_mime *m, struct mime_frame *f,
				       uint64_t offset, int *refused)
{
	const struct sg_mime_part *p = &f->part;
	int multipart = !strcmp(p->type, "multipart");
	enum sg_mime_anomaly why;

	*refused = 0;
	if (!multipart && !(!strcmp(p->type, "message") &&
			    (!strcmp(p->subtype, "rfc822") || !strcmp(p->subtype, "global"))))
		return FRAME_LEAF;
	if (multipart && f->bound_state != BOUND_OK)
		why = f->bound_state == BOUND_TOO_LONG ? SG_MIME_ANOM_BOUNDARY_LIMIT
						       : SG_MIME_ANOM_NO_BOUNDARY;
	else if (is_encoded(p->encoding))
		why = SG_MIME_ANOM_CONTAINER_ENCODING;
	else if (p->depth >= m->lim.nesting)
		why = SG_MIME_ANOM_NESTING_LIMIT;
	else
		return multipart ? FRAME_MULTIPART : FRAME_MESSAGE;
	sg_mime_anomaly(m, why, offset);
	*refused = 1;
	return FRAME_LEAF;
}

static void start_content(struct sg_mime *m, struct mime_frame *f)
{
	f->sink = f->part.is_text ? SINK_TEXT : m->cb.raw ? SINK_RAW : SINK_COUNT;
	memset(&m->b64, 0, sizeof(m->b64));
	memset(&m->qp, 0, sizeof(m->qp));
}

/* The top part's header section is over (a blank line when blank; else
 * another line, a boundary or the end): what the part is decides what its
 * body is. */
void sg_mime_end_headers(struct sg_mime *m, uint64_t body_offset, int blank)
{
	struct mime_frame *f = sg_mime_top(m);
	struct sg_mime_part *p = &f->part;
	int refused;

	if (!blank)
		sg_mime_anomaly(m, SG_MIME_ANOM_NO_BLANK_LINE, body_offset);
	f->in_headers = 0;
	f->body_start = body_offset;
	f->kind = frame_kind(m, f, body_offset, &refused);
	p->is_text = !strcmp(p->type, "text") || refused;
	p->is_multipart = f->kind == FRAME_MULTIPART;
	p->is_message = f->kind == FRAME_MESSAGE;
	p->attachment = f->fields.disposition == SG_MIME_DISP_ATTACHMENT ||
			f->fields.disposition == SG_MIME_DISP_OTHER ||
			(p->filename_len && f->fields.disposition != SG_MIME_DISP_INLINE);
	f->decode = is_encoded(p->encoding) ? p->encoding : SG_MIME_7BIT;
	if (f->kind == FRAME_MULTIPART) {
		f->digest = !strcmp(p->subtype, "digest");
		m->open_bounds++;
		if (sg_mime_reserve(m, &m->line, &m->line_cap, m->hold_max, m->lim.header))
			return;
	} else {
		m->bounds_len = f->bound_off;	/* a boundary it will not use */
	}
	if (m->cb.part_begin)
		m->cb.part_begin(m->ctx, p);
	m->state = ST_BODY;
	m->line_mode = LINE_START;
	m->line_len = 0;
	m->hdr_kind = HDR_NONE;
	if (f->kind == FRAME_MESSAGE) {
		if (!sg_mime_open_part(m) && !m->failed)
			sg_mime_give_up(m, body_offset);
	} else if (f->kind == FRAME_LEAF) {
		start_content(m, f);
	}
}

/* A line that ends a header section ends those of the messages it opens
 * too: what is not a header for one is not for the next. */
void sg_mime_end_all_headers(struct sg_mime *m, uint64_t body_offset)
{
	while (m->state == ST_HEADERS && !m->failed)
		sg_mime_end_headers(m, body_offset, 0);
}

/* Past the parts limit: the top part's content, and the rest of the
 * message with it, is text as it comes; no boundary is looked for. */
void sg_mime_give_up(struct sg_mime *m, uint64_t offset)
{
	struct mime_frame *f = sg_mime_top(m);

	sg_mime_anomaly(m, SG_MIME_ANOM_PARTS_LIMIT, offset);
	m->gave_up = 1;
	f->kind = FRAME_LEAF;
	f->part.is_text = 1;
	f->decode = SG_MIME_7BIT;
	f->sink = SINK_TEXT;
	m->state = ST_BODY;
	m->line_mode = LINE_START;
}

/* The top part ends at end_offset: its decoder's last bytes, its counts,
 * part_end, and the stack pops (unless it is the message itself). */
void sg_mime_close_part(struct sg_mime *m, uint64_t end_offset)
{
	struct mime_frame *f = sg_mime_top(m);

	if ((f->sink == SINK_TEXT || f->sink == SINK_RAW) && f->kind == FRAME_LEAF) {
		if (f->decode == SG_MIME_BASE64 && sg_mime_b64_end(&m->b64, &m->out))
			sg_mime_anomaly(m, SG_MIME_ANOM_BAD_BASE64, end_offset);
		if (f->decode == SG_MIME_QUOTED_PRINTABLE && sg_mime_qp_end(&m->qp, &m->out))
			sg_mime_anomaly(m, SG_MIME_ANOM_BAD_QP, end_offset);
	}
	out_flush(&m->out);
	f->part.bytes = end_offset > f->body_start ? end_offset - f->body_start : 0;
	if (f->kind == FRAME_MULTIPART && !f->closed) {
		sg_mime_anomaly(m, SG_MIME_ANOM_UNTERMINATED, end_offset);
		m->open_bounds--;
	}
	if (m->cb.part_end)
		m->cb.part_end(m->ctx, &f->part);
	m->bounds_len = f->bound_off;
	if (m->top)
		m->top--;
}

/* The top part's content: decoded and handed on, or only counted. */
void sg_mime_deliver(struct sg_mime *m, const char *p, size_t n, uint64_t offset)
{
	struct mime_frame *f = sg_mime_top(m);
	size_t bad;

	if (!n || f->sink == SINK_NONE || f->sink == SINK_COUNT)
		return;
	switch (f->decode) {
	case SG_MIME_BASE64:
		bad = sg_mime_b64_feed(&m->b64, p, n, &m->out);
		if (bad != SG_MIME_NO_ERROR)
			sg_mime_anomaly(m, SG_MIME_ANOM_BAD_BASE64, offset + bad);
		break;
	case SG_MIME_QUOTED_PRINTABLE:
		bad = sg_mime_qp_feed(&m->qp, p, n, &m->out);
		if (bad != SG_MIME_NO_ERROR)
			sg_mime_anomaly(m, SG_MIME_ANOM_BAD_QP, offset + bad);
		break;
	default:
		f->part.decoded_bytes += n;
		if (f->sink == SINK_TEXT && m->cb.text)
			m->cb.text(m->ctx, &f->part, p, n);
		else if (f->sink == SINK_RAW && m->cb.raw)
			m->cb.raw(m->ctx, &f->part, p, n);
		break;
	}
}

/* The held line break was content after all: the next line is not a boundary. */
void sg_mime_deliver_break(struct sg_mime *m)
{
	static const char crlf[] = "\r\n";

	if (m->pend_break) {
		sg_mime_deliver(m, crlf + (2 - m->pend_break), m->pend_break, m->pend_off);
		m->pend_break = 0;
	}
}

int sg_mime_feed(struct sg_mime *m, const char *data, size_t n)
{
	if (m->failed)
		return -1;
	if (m->ended)
		return 0;
	while (n && !m->failed) {
		size_t used = m->state == ST_HEADERS ? sg_mime_header_feed(m, data, n)
						     : sg_mime_body_feed(m, data, n);

		m->offset += used;
		data += used;
		n -= used;
	}
	if (!m->failed)
		out_flush(&m->out);
	return m->failed ? -1 : 0;
}

int sg_mime_end(struct sg_mime *m)
{
	int last;

	if (m->ended || m->failed)
		return m->failed ? -1 : 0;
	m->ended = 1;
	/* the last line, and what it opens, until a body holds nothing back */
	while (!m->failed) {
		if (m->state == ST_HEADERS) {
			sg_mime_header_eof(m);
		} else {
			sg_mime_body_eof(m);
			if (m->state == ST_BODY)
				break;
		}
	}
	if (m->failed)
		return -1;
	do {
		last = m->top == 0;
		sg_mime_close_part(m, m->offset);
	} while (!last);
	return 0;
}
