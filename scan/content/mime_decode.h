/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mime_decode.h - the MIME parser's decoders (mime.h), apart from its
 * state machine so that each can be tested and fuzzed alone: streaming
 * base64 and quoted-printable (state kept across calls, so that where a
 * slice or a line ends never matters), RFC 2047 encoded-words and RFC 2231
 * percent-encoding (whole values, in place).
 *
 * The streaming decoders write through struct sg_mime_out, a bounded
 * buffer its owner empties when full: output never needs more memory than
 * that buffer, however long the input.
 */
#ifndef SMTPGUARD_MIME_DECODE_H
#define SMTPGUARD_MIME_DECODE_H

#include <stddef.h>
#include <stdint.h>

#define SG_MIME_QP_PAD_MAX 64	/* spaces after '=' still read as a soft break */
#define SG_MIME_NO_ERROR ((size_t)-1)

struct sg_mime_out {
	char *buf;
	size_t len, cap;
	void (*flush)(struct sg_mime_out *o);	/* hands buf on, sets len to 0 */
};

static inline void sg_mime_out_byte(struct sg_mime_out *o, unsigned char c)
{
	if (o->len == o->cap)
		o->flush(o);
	o->buf[o->len++] = (char)c;
}

void sg_mime_out_bytes(struct sg_mime_out *o, const char *p, size_t n);

struct sg_mime_b64 {
	uint32_t acc;		/* sextets not yet written */
	unsigned int count;	/* how many: 0..3 */
	int padded;		/* '=' came: the data is over */
};

/* Decodes n bytes; whitespace is skipped, other bytes outside the alphabet
 * and anything but '=' and whitespace after the padding are skipped too
 * and returned: the index of the first one, or SG_MIME_NO_ERROR. */
size_t sg_mime_b64_feed(struct sg_mime_b64 *st, const char *in, size_t n,
			struct sg_mime_out *o);
/* The end of the data: a quartet cut short writes what it holds; nonzero
 * if it was cut short (a malformed end). The state is reset. */
int sg_mime_b64_end(struct sg_mime_b64 *st, struct sg_mime_out *o);

struct sg_mime_qp {
	int state;
	unsigned char hex1;	/* the first digit of "=X" */
	unsigned int pad_len;	/* spaces and tabs after '=' */
	char pad[SG_MIME_QP_PAD_MAX];
};

/* Decodes n bytes of quoted-printable: "=XX" in either case, soft line
 * breaks ("=" then optional spaces or tabs, then CRLF or LF) removed, hard
 * line breaks and everything else as sent. An invalid escape goes out
 * literally; the index of the first byte that showed one is returned, or
 * SG_MIME_NO_ERROR. */
size_t sg_mime_qp_feed(struct sg_mime_qp *st, const char *in, size_t n, struct sg_mime_out *o);
/* The end of the data: a lone '=' (a soft break whose line break went to
 * the boundary) is dropped; an escape cut short goes out literally and
 * returns nonzero. The state is reset. */
int sg_mime_qp_end(struct sg_mime_qp *st, struct sg_mime_out *o);

/* RFC 2047: every encoded-word (=?charset?B?...?= or ?Q?, either case) in
 * in[0..n) decoded to bytes, wherever it stands (readers decode words
 * glued to text too), the whitespace between two adjacent words dropped,
 * all else copied. out may be in (decoding never grows); out has room for
 * n bytes. Returns the length written; *words (if not NULL) the words
 * decoded. */
size_t sg_mime_decode_words(const char *in, size_t n, char *out, unsigned int *words);

/* RFC 2231 percent-decoding: "%XX" to a byte, anything else as it is. out
 * may be in. Returns the length written. */
size_t sg_mime_percent_decode(const char *in, size_t n, char *out);

/* The value of a hex digit, or -1. */
int sg_mime_hex(unsigned char c);

#endif
