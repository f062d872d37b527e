/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mime.h - a bounded streaming MIME parser for hostile mail: the content
 * engine's view of a message as it streams to the MX.
 *
 * The caller feeds the message's bytes after SMTP dot-unstuffing (the final
 * dot never comes), lines ended by CRLF or a bare LF, in slices of any size
 * (sg_mime_feed), then calls sg_mime_end. The parser calls back, in message
 * order:
 *
 *   header()      each header of the message, of every part, of every
 *                 message/rfc822 inside, whole and unfolded (see below);
 *   part_begin()  once a part's header section has ended: its type, transfer
 *                 encoding and file name are known. The message itself is
 *                 the part of depth 0 and index 0. A part's header() calls
 *                 come before its part_begin (with depth and index already
 *                 set, the rest provisional);
 *   text()        the decoded content (base64, quoted-printable) of a text
 *                 part, in chunks, line breaks as sent, NUL and 8-bit bytes
 *                 as bytes; lines are never cut, however long;
 *   raw()         the same for a part that is not text (optional: hashing).
 *                 Without it such a part is counted, not decoded, so its
 *                 encoding is not checked (bad-base64 is then told of text
 *                 only) and its decoded_bytes stay 0;
 *   part_end()    the part is over: its byte counts are final;
 *   anomaly()     what the parser had to give up on or found suspicious.
 *
 * Every callback is optional. Pointers handed to a callback (the part, the
 * header, the data) are valid during that call only; a callback must not
 * call back into the parser. Every API is pointer and length.
 *
 * Rules (Postfix's where it has one, RFC 2045/2046 otherwise):
 *  - Headers: a header is "name *WSP : value" with a name of printable
 *    ASCII but ':'; continuation lines start with SP or HTAB. A folded
 *    value is delivered whole, its line breaks removed and its whitespace
 *    kept ("Buy cheap\r\n pills" reads "Buy cheap pills", as a reader shows
 *    it); inside a name, the fold and its whitespace are removed, so that
 *    "Subj\r\n ect: x" is the header Subject (flagged SG_MIME_ANOM_FOLDED_NAME).
 *    The value also comes with RFC 2047 encoded-words decoded to bytes
 *    (charsets are not converted): struct sg_mime_header's decoded pair.
 *  - A line that is neither a header nor a continuation ends the header
 *    section and is the body's first line (Postfix: "a body line with no
 *    blank line before it starts the body"), flagged SG_MIME_ANOM_NO_BLANK_LINE.
 *  - Content-Type defaults to text/plain, and to message/rfc822 inside a
 *    multipart/digest. The first Content-Type, -Transfer-Encoding and
 *    -Disposition of a part count (a repeated one is flagged).
 *  - Boundaries: a line "--" boundary, optionally "--" (the close), and at
 *    most SG_MIME_BOUNDARY_PAD_MAX spaces or tabs, nothing else, is a
 *    boundary of the innermost open multipart that has it; an outer one
 *    closes the inner parts. The line break before a boundary belongs to the
 *    boundary, not to the part. A line that starts like a boundary but is
 *    not one is content, flagged SG_MIME_ANOM_BOUNDARY_LOOKALIKE (readers
 *    that match a boundary as a prefix, as Postfix does, would split there).
 *  - What the parser cannot take apart is scanned rather than hidden: a
 *    multipart or message/rfc822 over the nesting limit, a multipart without
 *    a usable boundary, or one encoded in base64 or quoted-printable has its
 *    content delivered to text() (decoded when encoded), with is_text set
 *    and the anomaly said; past the parts limit, the rest of the message
 *    goes to text() as it is.
 *
 * Limits (struct sg_mime_limits, each clamped to its default as a maximum;
 * the header limit is at least a boundary line's length):
 * nesting 100 (Postfix's mime_nesting_limit), a header 102,400 bytes
 * (header_size_limit: the rest is skipped, the header delivered truncated),
 * a boundary 2,048 bytes (mime_boundary_length_limit: a longer one is
 * refused), 1,000 parts. Lines are not limited; memory is: header lines are
 * held up to the header limit, body lines only when they start with '-'
 * and a boundary is open, and then only as much as a boundary line can be
 * (2 + boundary + 2 + SG_MIME_BOUNDARY_PAD_MAX + 1 bytes).
 *
 * Memory: one struct sg_mime (4.6 KiB, a 4 KiB decode buffer included)
 * and what it grows to as the message asks, at most, with the default
 * limits: the header buffer and its decoded copy (2 x 102,400 bytes), the
 * boundary stack (101 x 2,048) and the part stack (101 frames of 584
 * bytes): 475,257 bytes (464 KiB) on x86-64, which sg_mime_memory_bound()
 * computes for any limits. A plain message takes 8 KiB. Time is linear in
 * the input: each byte is looked at a bounded number of times, except that
 * a line starting with "--" is compared with each open boundary (at most
 * the nesting limit of them), and no callback is made per byte.
 */
#ifndef SMTPGUARD_MIME_H
#define SMTPGUARD_MIME_H

#include <stddef.h>
#include <stdint.h>

#define SG_MIME_NESTING_MAX	100	/* deepest part: the message is depth 0 */
#define SG_MIME_HEADER_MAX	102400	/* bytes of one header, folds included */
#define SG_MIME_BOUNDARY_MAX	2048	/* bytes of a boundary parameter */
#define SG_MIME_PARTS_MAX	1000	/* parts besides the message itself */
#define SG_MIME_BOUNDARY_PAD_MAX 256	/* spaces and tabs after a boundary */
#define SG_MIME_TOKEN_MAX	63	/* type, subtype, charset: longer is cut */
#define SG_MIME_FILENAME_MAX	255	/* longer keeps its start and its last 64 bytes */

struct sg_mime_limits {
	unsigned int nesting;	/* 0: the default; each at most its default */
	size_t header;
	size_t boundary;
	unsigned int parts;
};

enum sg_mime_encoding {
	SG_MIME_7BIT = 0,	/* the default */
	SG_MIME_8BIT,
	SG_MIME_BINARY,
	SG_MIME_BASE64,
	SG_MIME_QUOTED_PRINTABLE,
	SG_MIME_ENCODING_UNKNOWN,	/* passed as it is (SG_MIME_ANOM_UNKNOWN_ENCODING) */
};

struct sg_mime_part {
	unsigned int depth;	/* 0: the message; a part of a multipart or the
				 * message inside a message/rfc822: one more */
	unsigned int index;	/* 0: the message; then 1, 2, ... in message order */
	char type[SG_MIME_TOKEN_MAX + 1];	/* lowercased: "text" */
	char subtype[SG_MIME_TOKEN_MAX + 1];	/* lowercased: "plain" */
	char charset[SG_MIME_TOKEN_MAX + 1];	/* lowercased, "" if none */
	enum sg_mime_encoding encoding;
	/* Content-Disposition's filename (RFC 2231 filename*= and its
	 * continuations first), else Content-Type's name; quoted or not,
	 * percent- and RFC 2047-decoded to bytes. NUL-terminated, but may hold
	 * NUL: use filename_len. */
	char filename[SG_MIME_FILENAME_MAX + 1];
	size_t filename_len;
	int attachment;		/* Content-Disposition: attachment, or a file name
				 * without Content-Disposition: inline */
	int is_text;		/* its content goes to text(): text/any, or content
				 * the parser scans as text rather than parse */
	int is_multipart;	/* its parts follow (a multipart taken apart) */
	int is_message;		/* a message/rfc822 taken apart: one part follows */
	uint64_t bytes;		/* its body as sent (encoded), from after its header
				 * section to the line break before its end:
				 * final at part_end */
	uint64_t decoded_bytes;	/* what went to text() or raw() for it */
	uint32_t anomalies;	/* 1u << enum sg_mime_anomaly, for those seen in it */
};

struct sg_mime_header {
	const char *name;	/* as sent (case kept), without folds */
	size_t name_len;
	const char *value;	/* unfolded, leading whitespace removed */
	size_t value_len;
	const char *decoded;	/* value with RFC 2047 encoded-words decoded (the
				 * same pointer as value when it has none) */
	size_t decoded_len;
	int truncated;		/* over the header limit: the rest was skipped */
};

enum sg_mime_anomaly {
	SG_MIME_ANOM_NESTING_LIMIT = 0,
	SG_MIME_ANOM_HEADER_LIMIT,
	SG_MIME_ANOM_BOUNDARY_LIMIT,
	SG_MIME_ANOM_PARTS_LIMIT,
	SG_MIME_ANOM_BAD_BASE64,
	SG_MIME_ANOM_BAD_QP,
	SG_MIME_ANOM_HEADER_NUL,
	SG_MIME_ANOM_NO_BLANK_LINE,
	SG_MIME_ANOM_UNTERMINATED,
	SG_MIME_ANOM_HEADER_8BIT,
	SG_MIME_ANOM_NO_BOUNDARY,
	SG_MIME_ANOM_BOUNDARY_LOOKALIKE,
	SG_MIME_ANOM_CONTAINER_ENCODING,
	SG_MIME_ANOM_UNKNOWN_ENCODING,
	SG_MIME_ANOM_DUPLICATE_HEADER,
	SG_MIME_ANOM_FOLDED_NAME,
	SG_MIME_ANOM_LONG_FILENAME,
	SG_MIME_ANOM_COUNT
};

/* Where an anomaly was found. */
struct sg_mime_where {
	uint64_t offset;	/* in the message, from its first byte */
	const struct sg_mime_part *part;	/* the part it concerns */
};

struct sg_mime_callbacks {
	void (*header)(void *ctx, const struct sg_mime_part *part,
		       const struct sg_mime_header *header);
	void (*part_begin)(void *ctx, const struct sg_mime_part *part);
	void (*part_end)(void *ctx, const struct sg_mime_part *part);
	void (*text)(void *ctx, const struct sg_mime_part *part, const char *data, size_t n);
	void (*raw)(void *ctx, const struct sg_mime_part *part, const char *data, size_t n);
	/* Called the first time each anomaly is found in a part (so never
	 * once a byte, whatever the input); sg_mime_anomaly_count has them all. */
	void (*anomaly)(void *ctx, enum sg_mime_anomaly code, const struct sg_mime_where *where);
};

struct sg_mime;

/* A parser for one message; limits may be NULL (the defaults). NULL when
 * memory is short. The callbacks are copied; ctx is passed to each. */
struct sg_mime *sg_mime_new(const struct sg_mime_callbacks *cb, void *ctx,
			    const struct sg_mime_limits *limits);
/* The next n bytes of the message. 0, or -1 once the parser could not get
 * memory: it then ignores the rest (the engine should fail the message). */
int sg_mime_feed(struct sg_mime *m, const char *data, size_t n);
/* The message has ended: the last line, the open parts (part_end for each,
 * innermost first). Feeding after it is ignored. 0 or -1 as sg_mime_feed. */
int sg_mime_end(struct sg_mime *m);
void sg_mime_free(struct sg_mime *m);

/* How often an anomaly was found in the whole message so far. */
uint64_t sg_mime_anomaly_count(const struct sg_mime *m, enum sg_mime_anomaly code);
/* "nesting-limit", and a short sentence for the log. */
const char *sg_mime_anomaly_name(enum sg_mime_anomaly code);
const char *sg_mime_anomaly_text(enum sg_mime_anomaly code);
/* The bytes the parser holds now, and the most it may ever hold. */
size_t sg_mime_memory(const struct sg_mime *m);
size_t sg_mime_memory_bound(const struct sg_mime_limits *limits);

#endif
