/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mime_state.h - the MIME parser's state (mime.h), shared by its files:
 * mime.c (the API, the part stack, where content goes), mime_headers.c
 * (header sections) and mime_body.c (body lines and boundaries). Not for
 * use outside them.
 *
 * The part stack holds one frame a depth: frames[d] is the open part of
 * depth d, frames[top] the one the input is in. Boundaries live in one
 * buffer used as a stack beside it (a frame's at bound_off). The line
 * buffer holds a header section's current header, or in a body, the start
 * of a line that may be a boundary; never both.
 */
#ifndef SMTPGUARD_MIME_STATE_H
#define SMTPGUARD_MIME_STATE_H

#include <stddef.h>
#include <stdint.h>
#include "mime.h"
#include "mime_decode.h"
#include "mime_fields.h"

#define SG_MIME_OUT_SIZE 4096	/* decoded bytes handed on at a time */

enum mime_frame_kind {
	FRAME_LEAF = 0,		/* content: text, raw, or nothing */
	FRAME_MULTIPART,	/* parts between boundaries */
	FRAME_MESSAGE,		/* one part: the message inside */
};

/* Where a part's content goes. */
enum mime_sink {
	SINK_NONE = 0,		/* a multipart's preamble and epilogue */
	SINK_TEXT,
	SINK_RAW,
	SINK_COUNT,		/* not text, and no raw(): counted, not decoded */
};

enum mime_boundary_state {
	BOUND_NONE = 0,
	BOUND_OK,
	BOUND_TOO_LONG,
};

/* Which Content-* headers a part has had (a repeat is flagged). */
enum {
	SEEN_TYPE = 1,
	SEEN_ENCODING = 2,
	SEEN_DISPOSITION = 4,
};

struct mime_frame {
	struct sg_mime_part part;
	struct sg_mime_fields fields;
	enum mime_frame_kind kind;
	enum mime_sink sink;
	enum mime_boundary_state bound_state;
	enum sg_mime_encoding decode;	/* base64, quoted-printable, or 7bit: as it is */
	int in_headers;
	int digest;		/* multipart/digest: parts default to message/rfc822 */
	int closed;		/* its closing boundary came: the epilogue */
	unsigned int seen;	/* SEEN_* */
	size_t bound_off, bound_len;	/* in sg_mime.bounds */
	uint64_t body_start;
};

enum mime_state {
	ST_HEADERS = 0,
	ST_BODY,
};

enum mime_line_mode {
	LINE_START = 0,		/* the next byte starts a line */
	LINE_HEADER,		/* in a header section's line */
	LINE_CONTENT,		/* in a body line that is content */
	LINE_HELD,		/* in a body line that may be a boundary */
};

/* What the line buffer holds in a header section. */
enum mime_header_kind {
	HDR_NONE = 0,
	HDR_HEADER,		/* "name:" came: a header, maybe continued */
	HDR_CANDIDATE,		/* name characters without ':' yet: a header only
				 * if a continuation brings the colon */
};

struct sg_mime {
	struct sg_mime_callbacks cb;
	void *ctx;
	struct sg_mime_limits lim;
	size_t hold_max;	/* the longest line that can be a boundary, CR included */

	struct mime_frame *frames;
	unsigned int top, frames_cap;
	char *bounds;
	size_t bounds_len, bounds_cap;
	char *line;
	size_t line_len, line_cap;
	char *dec;		/* decoded header values, file names */
	size_t dec_cap;

	enum mime_state state;
	enum mime_line_mode line_mode;
	uint64_t offset;	/* of the first byte of the slice being read */
	uint64_t line_off;	/* where the current line started */
	unsigned int open_bounds;	/* multiparts whose boundary is looked for */
	unsigned int parts;	/* parts begun besides the message */
	int gave_up;		/* past the parts limit: no more boundaries */

	/* the header section's current header */
	enum mime_header_kind hdr_kind;
	int hdr_truncated;	/* over the limit: its rest is skipped */
	int line_is_continuation;
	uint64_t hdr_off;

	/* a body's line break, held until the next line shows it is not a
	 * boundary's (the break before a boundary belongs to it) */
	unsigned int pend_break;	/* 0, 1 (LF) or 2 (CRLF) */
	uint64_t pend_off;
	int cr_held;		/* a slice ended in CR: it may start a CRLF */
	uint64_t cr_off;

	struct sg_mime_b64 b64;
	struct sg_mime_qp qp;
	struct sg_mime_out out;
	char out_buf[SG_MIME_OUT_SIZE];

	uint64_t counts[SG_MIME_ANOM_COUNT];
	int failed;		/* out of memory: the rest is ignored */
	int ended;
};

static inline struct mime_frame *sg_mime_top(struct sg_mime *m)
{
	return &m->frames[m->top];
}

/* mime.c */
void sg_mime_anomaly(struct sg_mime *m, enum sg_mime_anomaly code, uint64_t offset);
int sg_mime_reserve(struct sg_mime *m, char **buf, size_t *cap, size_t need, size_t max);
void sg_mime_deliver(struct sg_mime *m, const char *p, size_t n, uint64_t offset);
void sg_mime_deliver_break(struct sg_mime *m);
void sg_mime_end_headers(struct sg_mime *m, uint64_t body_offset, int blank);
void sg_mime_end_all_headers(struct sg_mime *m, uint64_t body_offset);
int sg_mime_open_part(struct sg_mime *m);
void sg_mime_close_part(struct sg_mime *m, uint64_t end_offset);
void sg_mime_give_up(struct sg_mime *m, uint64_t offset);

/* mime_headers.c */
size_t sg_mime_header_feed(struct sg_mime *m, const char *d, size_t n);
void sg_mime_header_eof(struct sg_mime *m);

/* mime_body.c */
size_t sg_mime_body_feed(struct sg_mime *m, const char *d, size_t n);
void sg_mime_body_eof(struct sg_mime *m);
int sg_mime_is_boundary(struct sg_mime *m, const char *line, size_t len, int whole,
			unsigned int *depth, int *close);
void sg_mime_boundary(struct sg_mime *m, unsigned int depth, int close, const char *line,
		      size_t len, unsigned int brk);

#endif
