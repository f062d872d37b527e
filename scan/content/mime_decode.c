/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * mime_decode.c - the MIME parser's decoders (see mime_decode.h): base64
 * and quoted-printable as streams, RFC 2047 words and RFC 2231 percents as
 * whole values. Lenient where readers are (a spammer writes for what a
 * reader shows), and each malformation reported, never fatal.
 */
#include <string.h>
#include "mime_decode.h"

/* A byte's class in base64: its sextet + 1, or one of these. */
enum { B64_BAD = 0, B64_PAD = 65, B64_SPACE = 66 };

static const unsigned char b64_class[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
	['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
	['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
	['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
	['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
	['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
	['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
	['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
	['='] = B64_PAD, [' '] = B64_SPACE, ['\t'] = B64_SPACE, ['\r'] = B64_SPACE, ['\n'] = B64_SPACE,
};

int sg_mime_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void sg_mime_out_bytes(struct sg_mime_out *o, const char *p, size_t n)
{
	while (n) {
		size_t room = o->cap - o->len;

		if (!room) {
			o->flush(o);
			continue;
		}
		if (room > n)
			room = n;
		memcpy(o->buf + o->len, p, room);
		o->len += room;
		p += room;
		n -= room;
	}
}

static void b64_write3(struct sg_mime_out *o, uint32_t v)
{
	if (o->cap - o->len < 3)
		o->flush(o);
	o->buf[o->len] = (char)(v >> 16);
	o->buf[o->len + 1] = (char)(v >> 8);
	o->buf[o->len + 2] = (char)v;
	o->len += 3;
}

/* What a quartet cut short by '=' or by the end holds: 2 sextets are a
 * byte, 3 are two. */
static void b64_write_partial(struct sg_mime_b64 *st, struct sg_mime_out *o)
{
	if (st->count == 2) {
		sg_mime_out_byte(o, (unsigned char)(st->acc >> 4));
	} else if (st->count == 3) {
		sg_mime_out_byte(o, (unsigned char)(st->acc >> 10));
		sg_mime_out_byte(o, (unsigned char)(st->acc >> 2));
	}
}

size_t sg_mime_b64_feed(struct sg_mime_b64 *st, const char *in, size_t n, struct sg_mime_out *o)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t bad = SG_MIME_NO_ERROR, i = 0;

	while (i < n) {
		unsigned int c;

		if (st->padded) {
			for (; i < n && bad == SG_MIME_NO_ERROR; i++)
				if (b64_class[p[i]] != B64_PAD && b64_class[p[i]] != B64_SPACE)
					bad = i;
			break;
		}
		/* whole quartets straight into the output while the input is clean */
		while (st->count == 0 && n - i >= 4) {
			size_t quartets = (n - i) / 4, room = (o->cap - o->len) / 3, q;
			char *w;

			if (!room) {
				o->flush(o);
				continue;
			}
			if (quartets > room)
				quartets = room;
			w = o->buf + o->len;
			for (q = 0; q < quartets; q++, i += 4, w += 3) {
				unsigned int a = b64_class[p[i]] - 1u, b = b64_class[p[i + 1]] - 1u;
				unsigned int d = b64_class[p[i + 2]] - 1u, e = b64_class[p[i + 3]] - 1u;
				uint32_t v = (a << 18) | (b << 12) | (d << 6) | e;

				if ((a | b | d | e) > 63)
					break;
				w[0] = (char)(v >> 16);
				w[1] = (char)(v >> 8);
				w[2] = (char)v;
			}
			o->len = (size_t)(w - o->buf);
			if (q < quartets)
				break;	/* a byte that is not data: one at a time */
		}
		if (i == n)
			break;
		c = b64_class[p[i]];
		if (c >= 1 && c <= 64) {
			st->acc = (st->acc << 6) | (c - 1);
			if (++st->count == 4) {
				b64_write3(o, st->acc);
				st->count = 0;
				st->acc = 0;
			}
		} else if (c == B64_PAD) {
			if (st->count < 2 && bad == SG_MIME_NO_ERROR)
				bad = i;
			b64_write_partial(st, o);
			st->padded = 1;
			st->count = 0;
			st->acc = 0;
		} else if (c == B64_BAD && bad == SG_MIME_NO_ERROR) {
			bad = i;
		}
		i++;
	}
	return bad;
}

int sg_mime_b64_end(struct sg_mime_b64 *st, struct sg_mime_out *o)
{
	int cut = st->count != 0;

	b64_write_partial(st, o);
	memset(st, 0, sizeof(*st));
	return cut;
}

enum { QP_TEXT = 0, QP_EQ, QP_HEX, QP_PAD, QP_EQ_CR };

/* An escape that turned out invalid goes out as it came. */
static void qp_literal(struct sg_mime_qp *st, struct sg_mime_out *o)
{
	sg_mime_out_byte(o, '=');
	if (st->state == QP_HEX)
		sg_mime_out_byte(o, st->hex1);
	if (st->state == QP_PAD || st->state == QP_EQ_CR)
		sg_mime_out_bytes(o, st->pad, st->pad_len);
	if (st->state == QP_EQ_CR)
		sg_mime_out_byte(o, '\r');
	st->state = QP_TEXT;
	st->pad_len = 0;
}

size_t sg_mime_qp_feed(struct sg_mime_qp *st, const char *in, size_t n, struct sg_mime_out *o)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t bad = SG_MIME_NO_ERROR, i = 0;

	while (i < n) {
		unsigned char c = p[i];

		switch (st->state) {
		case QP_TEXT: {
			const char *eq = memchr(in + i, '=', n - i);
			size_t end = eq ? (size_t)(eq - in) : n;

			sg_mime_out_bytes(o, in + i, end - i);
			if (!eq)
				return bad;
			st->state = QP_EQ;
			i = end + 1;
			continue;
		}
		case QP_EQ:
			if (sg_mime_hex(c) >= 0) {
				st->hex1 = c;
				st->state = QP_HEX;
				i++;
				continue;
			}
			if (c == ' ' || c == '\t') {
				st->pad[0] = (char)c;
				st->pad_len = 1;
				st->state = QP_PAD;
				i++;
				continue;
			}
			break;
		case QP_HEX:
			if (sg_mime_hex(c) >= 0) {
				sg_mime_out_byte(o, (unsigned char)(sg_mime_hex(st->hex1) << 4 |
								   sg_mime_hex(c)));
				st->state = QP_TEXT;
				i++;
				continue;
			}
			break;
		case QP_PAD:
			if ((c == ' ' || c == '\t') && st->pad_len < SG_MIME_QP_PAD_MAX) {
				st->pad[st->pad_len++] = (char)c;
				i++;
				continue;
			}
			break;
		case QP_EQ_CR:
			if (c == '\n') {	/* "=" [pad] CRLF: a soft break */
				st->state = QP_TEXT;
				st->pad_len = 0;
				i++;
				continue;
			}
			break;
		}
		if (st->state == QP_EQ || st->state == QP_PAD) {
			if (c == '\n') {	/* "=" [pad] LF: a soft break */
				st->state = QP_TEXT;
				st->pad_len = 0;
				i++;
				continue;
			}
			if (c == '\r') {
				st->state = QP_EQ_CR;
				i++;
				continue;
			}
		}
		if (bad == SG_MIME_NO_ERROR)
			bad = i;
		qp_literal(st, o);	/* and c is read again as text */
	}
	return bad;
}

int sg_mime_qp_end(struct sg_mime_qp *st, struct sg_mime_out *o)
{
	int cut = st->state == QP_HEX || st->state == QP_EQ_CR;

	if (cut)
		qp_literal(st, o);
	memset(st, 0, sizeof(*st));
	return cut;
}

static size_t decode_b_text(const char *in, size_t n, char *out)
{
	uint32_t acc = 0;
	unsigned int count = 0;
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned int c = b64_class[(unsigned char)in[i]];

		if (c == B64_PAD)
			break;
		if (c < 1 || c > 64)
			continue;
		acc = (acc << 6) | (c - 1);
		if (++count == 4) {
			out[o++] = (char)(acc >> 16);
			out[o++] = (char)(acc >> 8);
			out[o++] = (char)acc;
			count = 0;
			acc = 0;
		}
	}
	if (count == 2) {
		out[o++] = (char)(acc >> 4);
	} else if (count == 3) {
		out[o++] = (char)(acc >> 10);
		out[o++] = (char)(acc >> 2);
	}
	return o;
}

static size_t decode_q_text(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '_') {
			out[o++] = ' ';
		} else if (in[i] == '=' && i + 2 < n && sg_mime_hex((unsigned char)in[i + 1]) >= 0 &&
			   sg_mime_hex((unsigned char)in[i + 2]) >= 0) {
			out[o++] = (char)(sg_mime_hex((unsigned char)in[i + 1]) << 4 |
					  sg_mime_hex((unsigned char)in[i + 2]));
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	return o;
}

/* An encoded-word at in[i] ("=?" already seen): its charset ends at the
 * first '?', space or control, its text at the first '?', which must be
 * followed by '='. Each scan stops at a '?', so no byte is scanned more
 * than a few times however the words overlap. */
static int parse_word(const char *in, size_t n, size_t i, char *enc, size_t *text,
		      size_t *text_len)
{
	size_t j = i + 2, t;
	const char *q;

	while (j < n && in[j] != '?' && (unsigned char)in[j] > ' ' && in[j] != 0x7f)
		j++;
	if (j == i + 2 || j + 2 >= n || in[j] != '?' || in[j + 2] != '?')
		return 0;
	*enc = in[j + 1];
	if (*enc != 'B' && *enc != 'b' && *enc != 'Q' && *enc != 'q')
		return 0;
	t = j + 3;
	q = memchr(in + t, '?', n - t);
	if (!q || (size_t)(q - in) + 1 >= n || q[1] != '=')
		return 0;
	*text = t;
	*text_len = (size_t)(q - in) - t;
	return 1;
}

size_t sg_mime_decode_words(const char *in, size_t n, char *out, unsigned int *words)
{
	size_t i = 0, o = 0, after_word = SG_MIME_NO_ERROR;
	unsigned int count = 0;

	while (i < n) {
		char enc, c;
		size_t text, text_len;

		if (in[i] == '=' && i + 1 < n && in[i + 1] == '?' &&
		    parse_word(in, n, i, &enc, &text, &text_len)) {
			if (after_word != SG_MIME_NO_ERROR)
				o = after_word;	/* only whitespace since the last word */
			if (enc == 'B' || enc == 'b')
				o += decode_b_text(in + text, text_len, out + o);
			else
				o += decode_q_text(in + text, text_len, out + o);
			after_word = o;
			i = text + text_len + 2;
			count++;
			continue;
		}
		c = in[i++];
		out[o++] = c;
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			after_word = SG_MIME_NO_ERROR;
	}
	if (words)
		*words = count;
	return o;
}

size_t sg_mime_percent_decode(const char *in, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i] == '%' && i + 2 < n && sg_mime_hex((unsigned char)in[i + 1]) >= 0 &&
		    sg_mime_hex((unsigned char)in[i + 2]) >= 0) {
			out[o++] = (char)(sg_mime_hex((unsigned char)in[i + 1]) << 4 |
					  sg_mime_hex((unsigned char)in[i + 2]));
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	return o;
}
