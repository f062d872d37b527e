/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_scan_mime.c - the streaming MIME parser (scan/mime.h) on the mail a
 * spammer writes: each rule on a message of its own, and every message fed
 * whole, byte by byte, cut in two at every point (small ones) and in random
 * slices, which must all give the same events (headers, parts, text,
 * anomalies and where). Then what the events say: headers unfolded and
 * decoded, base64 and quoted-printable bodies decoded, nested parts and
 * their file names, a message inside, the limits (nesting, header size,
 * boundary length, parts), a body with no blank line, a long line, a NUL.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mime.h"
#include "mime_decode.h"
#include "test.h"

#define MAX_PARTS 1100
#define MAX_HEADERS 512

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_fmt(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *tmp;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	buf_add(b, tmp, (size_t)n);
	free(tmp);
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

struct header_seen {
	unsigned int part;
	struct buf name, value, decoded;
	int truncated;
};

/* What the parser told, in a canonical transcript (text coalesced however
 * it came in chunks) and by part. */
struct record {
	struct buf log;			/* headers, parts, text: in order */
	struct buf anomaly_log;		/* anomalies: in order, apart from the text
					 * (a decoder tells one after its slice) */
	struct buf pending;		/* text or raw not yet in the log */
	char pending_kind;
	unsigned int pending_part;
	struct buf text;		/* every text() byte */
	struct buf part_text[MAX_PARTS];	/* text() and raw() by part index */
	struct sg_mime_part parts[MAX_PARTS];	/* as at part_end */
	int began[MAX_PARTS], ended[MAX_PARTS];
	unsigned int nparts;		/* highest index + 1 */
	struct header_seen headers[MAX_HEADERS];
	unsigned int nheaders;
	uint32_t anomalies;		/* told */
	uint64_t anomaly_offset[SG_MIME_ANOM_COUNT];	/* the first one's */
	unsigned int max_depth;
	int order_ok;			/* begin before end, ends innermost first */
	size_t max_memory;
};

static void flush_pending(struct record *r)
{
	if (!r->pending.len)
		return;
	buf_fmt(&r->log, "%c%u:%zu:", r->pending_kind, r->pending_part, r->pending.len);
	buf_add(&r->log, r->pending.p, r->pending.len);
	buf_str(&r->log, "\n");
	r->pending.len = 0;
}

static void on_content(struct record *r, char kind, const struct sg_mime_part *p,
		       const char *d, size_t n)
{
	if (r->pending.len && (r->pending_kind != kind || r->pending_part != p->index))
		flush_pending(r);
	r->pending_kind = kind;
	r->pending_part = p->index;
	buf_add(&r->pending, d, n);
	if (p->index < MAX_PARTS)
		buf_add(&r->part_text[p->index], d, n);
	if (kind == 'T')
		buf_add(&r->text, d, n);
}

static void on_text(void *ctx, const struct sg_mime_part *p, const char *d, size_t n)
{
	on_content(ctx, 'T', p, d, n);
}

static void on_raw(void *ctx, const struct sg_mime_part *p, const char *d, size_t n)
{
	on_content(ctx, 'R', p, d, n);
}

static void on_header(void *ctx, const struct sg_mime_part *p, const struct sg_mime_header *h)
{
	struct record *r = ctx;

	flush_pending(r);
	buf_fmt(&r->log, "H%u %zu:", p->index, h->name_len);
	buf_add(&r->log, h->name, h->name_len);
	buf_fmt(&r->log, " %zu:", h->value_len);
	buf_add(&r->log, h->value, h->value_len);
	buf_fmt(&r->log, " %zu:", h->decoded_len);
	buf_add(&r->log, h->decoded, h->decoded_len);
	buf_fmt(&r->log, " t%d\n", h->truncated);
	if (r->nheaders < MAX_HEADERS) {
		struct header_seen *s = &r->headers[r->nheaders++];

		s->part = p->index;
		buf_add(&s->name, h->name, h->name_len);
		buf_add(&s->value, h->value, h->value_len);
		buf_add(&s->decoded, h->decoded, h->decoded_len);
		s->truncated = h->truncated;
	}
}

static void on_begin(void *ctx, const struct sg_mime_part *p)
{
	struct record *r = ctx;

	flush_pending(r);
	buf_fmt(&r->log, "B%u d%u %s/%s enc%d att%d text%d mp%d msg%d name%zu:", p->index, p->depth,
		p->type, p->subtype, p->encoding, p->attachment, p->is_text, p->is_multipart,
		p->is_message, p->filename_len);
	buf_add(&r->log, p->filename, p->filename_len);
	buf_str(&r->log, "\n");
	if (p->depth > r->max_depth)
		r->max_depth = p->depth;
	if (p->index < MAX_PARTS) {
		if (r->began[p->index])
			r->order_ok = 0;
		r->began[p->index] = 1;
		if (p->index + 1 > r->nparts)
			r->nparts = p->index + 1;
	}
}

static void on_end(void *ctx, const struct sg_mime_part *p)
{
	struct record *r = ctx;

	flush_pending(r);
	buf_fmt(&r->log, "E%u bytes%llu dec%llu an%x\n", p->index, (unsigned long long)p->bytes,
		(unsigned long long)p->decoded_bytes, p->anomalies);
	if (p->index < MAX_PARTS) {
		if (!r->began[p->index] || r->ended[p->index])
			r->order_ok = 0;
		r->ended[p->index] = 1;
		r->parts[p->index] = *p;
	}
}

static void on_anomaly(void *ctx, enum sg_mime_anomaly code, const struct sg_mime_where *w)
{
	struct record *r = ctx;

	buf_fmt(&r->anomaly_log, "A%u %s @%llu\n", w->part->index, sg_mime_anomaly_name(code),
		(unsigned long long)w->offset);
	if (!(r->anomalies & (1u << code)))
		r->anomaly_offset[code] = w->offset;
	r->anomalies |= 1u << code;
}

static const struct sg_mime_callbacks record_cb = {
	.header = on_header, .part_begin = on_begin, .part_end = on_end,
	.text = on_text, .raw = on_raw, .anomaly = on_anomaly,
};

static void record_free(struct record *r)
{
	buf_free(&r->log);
	buf_free(&r->anomaly_log);
	buf_free(&r->pending);
	buf_free(&r->text);
	for (unsigned int i = 0; i < MAX_PARTS; i++)
		buf_free(&r->part_text[i]);
	for (unsigned int i = 0; i < r->nheaders; i++) {
		buf_free(&r->headers[i].name);
		buf_free(&r->headers[i].value);
		buf_free(&r->headers[i].decoded);
	}
	free(r);
}

/* How a message is cut: whole, in two at a point, byte by byte, or in
 * random slices (seeded). */
enum cut { WHOLE, TWO, BYTES, RANDOM };

static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return rng_state >> 33;
}

static const struct sg_mime_callbacks *parse_cb = &record_cb;

static struct record *parse(const char *msg, size_t len, const struct sg_mime_limits *lim,
			    enum cut cut, size_t arg)
{
	struct record *r = calloc(1, sizeof(*r));
	struct sg_mime *m;
	size_t off = 0, bound = sg_mime_memory_bound(lim);

	r->order_ok = 1;
	m = sg_mime_new(parse_cb, r, lim);
	if (!m)
		abort();
	rng_state = arg;
	while (off < len) {
		size_t n = len - off;

		if (cut == TWO && off < arg)
			n = arg - off;
		else if (cut == BYTES)
			n = 1;
		else if (cut == RANDOM)
			n = 1 + rng() % (rng() % 4 ? 64 : 8192);
		if (n > len - off)
			n = len - off;
		sg_mime_feed(m, msg + off, n);
		off += n;
		if (sg_mime_memory(m) > r->max_memory)
			r->max_memory = sg_mime_memory(m);
	}
	sg_mime_end(m);
	flush_pending(r);
	buf_str(&r->log, "anomalies:\n");
	buf_add(&r->log, r->anomaly_log.p ? r->anomaly_log.p : "", r->anomaly_log.len);
	if (r->max_memory > bound)
		r->order_ok = 0;
	for (unsigned int i = 0; i < r->nparts; i++)
		if (r->began[i] != r->ended[i])
			r->order_ok = 0;
	sg_mime_free(m);
	return r;
}

/* The message parsed whole, then cut every way: the same transcript each
 * time. Returns the whole parse. */
static struct record *parse_all_ways(const char *name, const char *msg, size_t len,
				     const struct sg_mime_limits *lim)
{
	struct record *whole = parse(msg, len, lim, WHOLE, 0), *r;
	char check[200], where[120] = "";
	int same = 1;

	for (size_t cut = 1; cut < len && len <= 4096 && same; cut++) {
		r = parse(msg, len, lim, TWO, cut);
		if (r->log.len != whole->log.len || memcmp(r->log.p, whole->log.p, r->log.len)) {
			snprintf(where, sizeof(where), "cut in two at %zu", cut);
			printf("# cut:\n%.2000s\n", r->log.p);
			same = 0;
		}
		record_free(r);
	}
	if (same) {
		r = parse(msg, len, lim, BYTES, 0);
		if (r->log.len != whole->log.len || memcmp(r->log.p, whole->log.p, r->log.len)) {
			snprintf(where, sizeof(where), "fed byte by byte");
			same = 0;
		}
		record_free(r);
	}
	for (unsigned int seed = 1; seed <= 24 && same; seed++) {
		r = parse(msg, len, lim, RANDOM, seed);
		if (r->log.len != whole->log.len || memcmp(r->log.p, whole->log.p, r->log.len)) {
			snprintf(where, sizeof(where), "random slices, seed %u", seed);
			same = 0;
		}
		record_free(r);
	}
	snprintf(check, sizeof(check), "%s: same events however it is sliced", name);
	if (!same)
		printf("# %s differs when %s; whole:\n%.2000s\n", name, where, whole->log.p);
	ASSERT_TRUE(same, check);
	snprintf(check, sizeof(check), "%s: parts begun and ended in order, memory within bound", name);
	ASSERT_TRUE(whole->order_ok, check);
	return whole;
}

static const char *header_value(struct record *r, unsigned int part, const char *name,
				int decoded)
{
	for (unsigned int i = 0; i < r->nheaders; i++)
		if (r->headers[i].part == part && !strcmp(r->headers[i].name.p, name))
			return decoded ? r->headers[i].decoded.p : r->headers[i].value.p;
	return NULL;
}

static const char *text_of(struct record *r, unsigned int part)
{
	return r->part_text[part].p ? r->part_text[part].p : "";
}

/* ASSERT_TRUE for a condition too long to quote: the check's name says it. */
#define CHECK(cond, name) ({ int holds_ = !!(cond); ASSERT_TRUE(holds_, name); })

static int told(struct record *r, enum sg_mime_anomaly code)
{
	return !!(r->anomalies & (1u << code));
}

/* "\n" lines written with CRLF. */
static char *crlf(const char *s, size_t *len)
{
	struct buf b = { 0 };

	for (; *s; s++) {
		if (*s == '\n')
			buf_add(&b, "\r", 1);
		buf_add(&b, s, 1);
	}
	*len = b.len;
	return b.p;
}

static void test_headers_unfolded(void)
{
	size_t len;
	char *msg = crlf("Subject: Buy cheap\n pills\n\tnow\n"
			 "Subj\n ect: hidden name\n"
			 "X-Obsolete : spaced colon\n"
			 "To:\n   folded@example.net\n"
			 "\n"
			 "body\n", &len);
	struct record *r = parse_all_ways("folded headers", msg, len, NULL);

	ASSERT_STREQ(header_value(r, 0, "Subject", 0), "Buy cheap pills\tnow",
		     "folded headers: a folded value arrives whole, its whitespace kept");
	ASSERT_STREQ(header_value(r, 0, "Subject", 1), "Buy cheap pills\tnow",
		     "folded headers: without encoded-words the decoded value is the value");
	CHECK(r->nheaders >= 2 && !strcmp(r->headers[1].name.p, "Subject") &&
		    !strcmp(r->headers[1].value.p, "hidden name"),
		    "folded headers: Subj + fold + ect is the header Subject");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_FOLDED_NAME), "folded headers: a folded name is flagged");
	ASSERT_STREQ(header_value(r, 0, "X-Obsolete", 0), "spaced colon",
		     "folded headers: 'name :' (obsolete form) is a header");
	ASSERT_STREQ(header_value(r, 0, "To", 0), "folded@example.net",
		     "folded headers: a value that starts on the next line");
	ASSERT_STREQ(r->text.p, "body\r\n", "folded headers: the body after the blank line");
	ASSERT_TRUE(!told(r, SG_MIME_ANOM_NO_BLANK_LINE),
		    "folded headers: no anomaly for the blank line");
	record_free(r);
	free(msg);
}

static void test_encoded_words(void)
{
	size_t len;
	char *msg = crlf("Subject: =?utf-8?B?VmlhZ3Jh?= =?UTF-8?q?_cheap=21?=\n"
			 "X-Glued: V=?utf-8?Q?i?=agra and =?x?q?a?= x =?x?b?Yg==?=\n"
			 "X-Folded: =?utf-8?Q?fol?=\n =?utf-8?Q?ded?=\n"
			 "X-Broken: =?utf-8?Q?no end and =?utf-8?X?bad?=\n"
			 "\n"
			 "x\n", &len);
	struct record *r = parse_all_ways("encoded-words", msg, len, NULL);

	ASSERT_STREQ(header_value(r, 0, "Subject", 1), "Viagra cheap!",
		     "encoded-words: B and Q words decoded, the space between them dropped");
	ASSERT_STREQ(header_value(r, 0, "Subject", 0), "=?utf-8?B?VmlhZ3Jh?= =?UTF-8?q?_cheap=21?=",
		     "encoded-words: the value itself as sent");
	ASSERT_STREQ(header_value(r, 0, "X-Glued", 1), "Viagra and a x b",
		     "encoded-words: a word glued to text decoded (readers do)");
	ASSERT_STREQ(header_value(r, 0, "X-Folded", 1), "folded",
		     "encoded-words: words across a fold join");
	ASSERT_STREQ(header_value(r, 0, "X-Broken", 1), "=?utf-8?Q?no end and =?utf-8?X?bad?=",
		     "encoded-words: malformed words left as they are");
	record_free(r);
	free(msg);
}

static void test_base64_body(void)
{
	size_t len;
	char *msg = crlf("Content-Type: text/plain\n"
			 "Content-Transfer-Encoding: BASE64\n"
			 "\n"
			 "SGVsbG8s\n"
			 " IHdv cmxk\n"
			 "IQ==\n", &len);
	struct record *r = parse_all_ways("base64 body", msg, len, NULL);

	ASSERT_STREQ(r->text.p, "Hello, world!", "base64 body: decoded across lines and spaces");
	ASSERT_TRUE(!told(r, SG_MIME_ANOM_BAD_BASE64), "base64 body: clean, no anomaly");
	ASSERT_EQ(r->parts[0].encoding, SG_MIME_BASE64, "base64 body: the encoding, any case");
	record_free(r);
	free(msg);

	msg = crlf("Content-Transfer-Encoding: base64\n\nSGVs*bG8=\nSGk=\n", &len);
	r = parse_all_ways("bad base64", msg, len, NULL);
	ASSERT_STREQ(r->text.p, "Hello",
		     "bad base64: a byte outside the alphabet skipped, the rest decoded");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_BAD_BASE64), "bad base64: flagged");
	ASSERT_EQ(r->anomaly_offset[SG_MIME_ANOM_BAD_BASE64], strchr(msg, '*') - msg,
		  "bad base64: where the bad byte is");
	record_free(r);
	free(msg);
}

static void test_qp_body(void)
{
	size_t len;
	char *msg = crlf("Content-Transfer-Encoding: quoted-printable\n"
			 "\n"
			 "soft=\n"
			 "break =3D =3d caf=C3=A9 pad= \t\n"
			 "ded\n"
			 "bad =ZZ and =4, end\n", &len);
	struct record *r = parse_all_ways("quoted-printable body", msg, len, NULL);

	ASSERT_STREQ(r->text.p, "softbreak = = caf\xc3\xa9 padded\r\nbad =ZZ and =4, end\r\n",
		     "quoted-printable body: soft breaks joined, =XX either case, bad escapes literal");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_BAD_QP), "quoted-printable body: a bad escape flagged");
	record_free(r);
	free(msg);

	/* bare LF soft breaks, a soft break right before a boundary */
	static const char lf[] = "Content-Type: multipart/mixed; boundary=q\n\n--q\n"
				 "Content-Transfer-Encoding: quoted-printable\n\n"
				 "lf=\nsoft=\n--q--\n";
	r = parse_all_ways("quoted-printable, LF", lf, sizeof(lf) - 1, NULL);
	ASSERT_STREQ(text_of(r, 1), "lfsoft", "quoted-printable, LF: =LF joins, a last '=' is dropped");
	ASSERT_TRUE(!told(r, SG_MIME_ANOM_BAD_QP), "quoted-printable, LF: nothing bad");
	record_free(r);
}

static const char nested_msg[] =
	"From: a@example.org\n"
	"Subject: nested\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\n"
	"\n"
	"preamble is not shown\n"
	"--outer\n"
	"Content-Type: multipart/alternative; boundary=inner\n"
	"\n"
	"--inner\n"
	"Content-Type: text/plain; charset=UTF-8\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"plain caf=C3=A9 text=\n"
	" joined\n"
	"--inner\n"
	"Content-Type: text/html; charset=\"us-ascii\"\n"
	"\n"
	"<p>html text</p>\n"
	"--inner--\n"
	"--outer\n"
	"Content-Type: application/pdf\n"
	"Content-Disposition: attachment; filename=\"report one.pdf\"\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"JVBERi0xLjQK\n"
	"--outer\n"
	"Content-Type: application/octet-stream; name=plain.exe\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"TVqQAAMAAAAEAAAA\n"
	"--outer\n"
	"Content-Type: application/vnd.ms-excel\n"
	"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC%20rates.xls\n"
	"\n"
	"raw bytes\n"
	"--outer\n"
	"Content-Type: text/plain\n"
	"Content-Disposition: attachment;\n"
	" filename*1=\"name\";\n"
	" filename*0*=utf-8''long%20;\n"
	" filename*2*=%2Etxt\n"
	"\n"
	"attached text\n"
	"--outer\n"
	"Content-Type: image/png; name=\"=?utf-8?B?cGljdHVyZS5wbmc=?=\"\n"
	"Content-Disposition: inline\n"
	"\n"
	"iVBORw0KGgo=\n"
	"--outer--\n"
	"epilogue is not shown\n";

static void check_nested(const char *what, struct record *r)
{
	char name[160], want[200];
	const struct sg_mime_part *p = r->parts;

#define NAMED(s) (snprintf(name, sizeof(name), "%s: %s", what, s), name)
	ASSERT_EQ(r->nparts, 9, NAMED("nine parts, the message included"));
	ASSERT_TRUE(p[0].is_multipart && !strcmp(p[0].subtype, "mixed"),
		    NAMED("the message is multipart/mixed"));
	ASSERT_TRUE(p[1].is_multipart && p[1].depth == 1 && !strcmp(p[1].subtype, "alternative"),
		    NAMED("multipart/alternative at depth 1"));
	CHECK(p[2].depth == 2 && p[2].is_text && !strcmp(p[2].charset, "utf-8") &&
		    p[2].encoding == SG_MIME_QUOTED_PRINTABLE,
		    NAMED("text/plain at depth 2, its charset"));
	ASSERT_STREQ(text_of(r, 2), "plain caf\xc3\xa9 text joined",
		     NAMED("the plain part decoded, the break before the boundary not its own"));
	ASSERT_TRUE(p[3].is_text && !strcmp(p[3].subtype, "html"), NAMED("text/html"));
	ASSERT_STREQ(text_of(r, 3), "<p>html text</p>", NAMED("the html part's text"));
	ASSERT_TRUE(p[4].attachment && !p[4].is_text && !strcmp(p[4].filename, "report one.pdf"),
		    NAMED("quoted filename= of an attachment"));
	ASSERT_STREQ(text_of(r, 4), "%PDF-1.4\n", NAMED("an attachment's decoded bytes go to raw()"));
	ASSERT_TRUE(p[5].attachment && !strcmp(p[5].filename, "plain.exe"),
		    NAMED("unquoted Content-Type name=, no disposition: an attachment"));
	CHECK(p[6].attachment && p[6].filename_len == 13 &&
		    !memcmp(p[6].filename, "\xe2\x82\xac rates.xls", 13),
		    NAMED("RFC 2231 filename*= with charset, percent-decoded"));
	ASSERT_STREQ(p[7].filename, "long name.txt", NAMED("RFC 2231 continuations, out of order"));
	ASSERT_TRUE(p[7].attachment && p[7].is_text, NAMED("a text attachment is text"));
	snprintf(want, sizeof(want), "attached text");
	ASSERT_STREQ(text_of(r, 7), want, NAMED("the text attachment's text"));
	ASSERT_TRUE(!p[8].attachment && !strcmp(p[8].filename, "picture.png"),
		    NAMED("an encoded-word name=, inline: named, not an attachment"));
	ASSERT_TRUE(!strstr(r->text.p, "preamble") && !strstr(r->text.p, "epilogue"),
		    NAMED("preamble and epilogue are not text"));
	ASSERT_EQ(r->anomalies, 0, NAMED("no anomaly"));
	ASSERT_EQ(p[4].bytes, 12, NAMED("a part's byte count: its body, the last break not its own"));
	ASSERT_EQ(p[4].decoded_bytes, 9, NAMED("its decoded bytes"));
#undef NAMED
}

static void test_nested(void)
{
	size_t len;
	char *msg = crlf(nested_msg, &len);
	struct record *r = parse_all_ways("nested, CRLF", msg, len, NULL);

	check_nested("nested, CRLF", r);
	record_free(r);
	free(msg);
	r = parse_all_ways("nested, LF", nested_msg, sizeof(nested_msg) - 1, NULL);
	check_nested("nested, LF", r);
	record_free(r);

	/* nobody reads attachments: counted, not decoded; the text the same */
	struct sg_mime_callbacks no_raw = record_cb;
	no_raw.raw = NULL;
	parse_cb = &no_raw;
	r = parse_all_ways("nested, no raw()", nested_msg, sizeof(nested_msg) - 1, NULL);
	parse_cb = &record_cb;
	ASSERT_STREQ(r->text.p, "plain caf\xc3\xa9 text joined<p>html text</p>attached text",
		     "nested, no raw(): the same text");
	CHECK(r->parts[4].bytes == 12 && r->parts[4].decoded_bytes == 0 && !r->part_text[4].len,
	      "nested, no raw(): an attachment counted, not decoded");
	record_free(r);
}

static void test_message_inside(void)
{
	size_t len;
	char *msg = crlf("Subject: outer\n"
			 "Content-Type: multipart/mixed; boundary=b\n"
			 "\n"
			 "--b\n"
			 "Content-Type: text/plain\n"
			 "\n"
			 "see attached\n"
			 "--b\n"
			 "Content-Type: message/rfc822\n"
			 "\n"
			 "From: inner@example.org\n"
			 "Subject: =?iso-8859-1?Q?inner_subj?=\n"
			 "\n"
			 "inner body text\n"
			 "--b--\n", &len);
	struct record *r = parse_all_ways("message/rfc822", msg, len, NULL);

	ASSERT_EQ(r->nparts, 4, "message/rfc822: the message, two parts, the message inside");
	ASSERT_TRUE(r->parts[2].is_message && r->parts[2].depth == 1, "message/rfc822: taken apart");
	ASSERT_EQ(r->parts[3].depth, 2, "message/rfc822: the message inside is one deeper");
	ASSERT_STREQ(header_value(r, 3, "Subject", 1), "inner subj",
		     "message/rfc822: the inner message's headers, decoded");
	ASSERT_STREQ(text_of(r, 3), "inner body text", "message/rfc822: the inner body is text");
	ASSERT_STREQ(r->text.p, "see attachedinner body text", "message/rfc822: all text, in order");
	record_free(r);
	free(msg);

	static const char digest[] = "Content-Type: multipart/digest; boundary=d\n\n--d\n\n"
				     "Subject: in a digest\n\ndigest body\n--d--\n";
	r = parse_all_ways("multipart/digest", digest, sizeof(digest) - 1, NULL);
	CHECK(r->nparts == 3 && !strcmp(r->parts[1].type, "message") &&
		    !strcmp(r->parts[1].subtype, "rfc822") && r->parts[1].is_message,
		    "multipart/digest: a part without Content-Type is message/rfc822");
	ASSERT_STREQ(header_value(r, 2, "Subject", 0), "in a digest",
		     "multipart/digest: the message inside's headers");
	ASSERT_STREQ(text_of(r, 2), "digest body", "multipart/digest: its body");
	record_free(r);
}

static void test_nesting_limit(void)
{
	struct buf b = { 0 };
	struct record *r;

	for (int i = 0; i <= 100; i++)
		buf_fmt(&b, "Content-Type: multipart/mixed; boundary=\"n%d\"\r\n\r\n--n%d\r\n", i, i);
	buf_str(&b, "Content-Type: text/plain\r\n\r\ndeep text\r\n");
	for (int i = 100; i >= 0; i--)
		buf_fmt(&b, "--n%d--\r\n", i);
	r = parse_all_ways("101 nested multiparts", b.p, b.len, NULL);
	ASSERT_TRUE(told(r, SG_MIME_ANOM_NESTING_LIMIT), "101 nested multiparts: the nesting anomaly");
	ASSERT_EQ(r->max_depth, 100, "101 nested multiparts: no part deeper than 100");
	ASSERT_EQ(r->nparts, 101, "101 nested multiparts: parts at depths 0 to 100");
	CHECK(r->parts[100].is_text && strstr(text_of(r, 100), "deep text") &&
		    strstr(text_of(r, 100), "--n100\r\nContent-Type: text/plain"),
		    "101 nested multiparts: the refused one is scanned as text, not hidden");
	ASSERT_TRUE(!told(r, SG_MIME_ANOM_UNTERMINATED), "101 nested multiparts: the others close");
	record_free(r);
	buf_free(&b);
}

static void test_header_limit(void)
{
	struct buf b = { 0 };
	struct record *r;
	const char *v;

	buf_str(&b, "X-Big: ");
	for (int i = 0; i < 200 * 1024 / 64; i++)
		buf_str(&b, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	buf_str(&b, "\r\n continued past the limit\r\nSubject: after\r\n\r\nbody\r\n");
	r = parse_all_ways("200 KiB header", b.p, b.len, NULL);
	v = header_value(r, 0, "X-Big", 0);
	ASSERT_TRUE(v && strlen(v) < SG_MIME_HEADER_MAX && strlen(v) > SG_MIME_HEADER_MAX - 100,
		    "200 KiB header: delivered cut at the limit");
	ASSERT_TRUE(r->headers[0].truncated, "200 KiB header: marked truncated");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_HEADER_LIMIT), "200 KiB header: flagged");
	ASSERT_STREQ(header_value(r, 0, "Subject", 0), "after", "200 KiB header: the next header whole");
	ASSERT_STREQ(r->text.p, "body\r\n", "200 KiB header: the body after it");
	record_free(r);

	/* a 200 KiB line that is no header: the body's first line, whole */
	b.len = 0;
	buf_str(&b, "Subject: x\r\n");
	for (int i = 0; i < 200 * 1024 / 64; i++)
		buf_str(&b, "0123456789 bcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	buf_str(&b, "\r\nnext\r\n");
	r = parse_all_ways("200 KiB body line in headers", b.p, b.len, NULL);
	ASSERT_EQ(r->text.len, 200 * 1024 + 8, "200 KiB body line in headers: delivered whole, not cut");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_NO_BLANK_LINE) && !told(r, SG_MIME_ANOM_HEADER_LIMIT),
		    "200 KiB body line in headers: no blank line, no header limit");
	record_free(r);
	buf_free(&b);
}

static void test_boundary_limit(void)
{
	struct buf b = { 0 }, bound = { 0 };
	struct record *r;

	for (int i = 0; i < 3 * 1024; i++)
		buf_add(&bound, "b", 1);
	buf_str(&b, "Content-Type: multipart/mixed; boundary=\"");
	buf_str(&b, bound.p);
	buf_str(&b, "\"\r\n\r\n--");
	buf_str(&b, bound.p);
	buf_str(&b, "\r\nContent-Type: text/plain\r\n\r\ninside\r\n--");
	buf_str(&b, bound.p);
	buf_str(&b, "--\r\n");
	r = parse_all_ways("3 KiB boundary", b.p, b.len, NULL);
	ASSERT_TRUE(told(r, SG_MIME_ANOM_BOUNDARY_LIMIT), "3 KiB boundary: refused, flagged");
	ASSERT_EQ(r->nparts, 1, "3 KiB boundary: no part split at it");
	CHECK(r->parts[0].is_text && strstr(r->text.p, "inside") &&
		    strstr(r->text.p, "Content-Type: text/plain"),
		    "3 KiB boundary: the multipart scanned as text");
	record_free(r);
	buf_free(&b);
	buf_free(&bound);
}

static void test_no_blank_line(void)
{
	size_t len;
	char *msg = crlf("Subject: x\nHello world, no blank line\nsecond line\n", &len);
	struct record *r = parse_all_ways("no blank line", msg, len, NULL);

	ASSERT_STREQ(r->text.p, "Hello world, no blank line\r\nsecond line\r\n",
		     "no blank line: the body still reaches text()");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_NO_BLANK_LINE), "no blank line: flagged");
	ASSERT_EQ(r->anomaly_offset[SG_MIME_ANOM_NO_BLANK_LINE], 12,
		  "no blank line: where the body starts");
	record_free(r);
	free(msg);

	msg = crlf("From: a\nSubj\nbody\n", &len);
	r = parse_all_ways("no blank line, a name alone", msg, len, NULL);
	ASSERT_STREQ(r->text.p, "Subj\r\nbody\r\n", "no blank line, a name alone: it is body, not lost");
	record_free(r);
	free(msg);

	static const char bare[] = "Just text, no headers at all";
	r = parse_all_ways("no headers", bare, sizeof(bare) - 1, NULL);
	ASSERT_STREQ(r->text.p, bare, "no headers: a message of body alone is text");
	record_free(r);
}

static void test_long_line(void)
{
	struct buf b = { 0 }, line = { 0 };
	struct record *r;

	for (int i = 0; i < 5000; i++)
		buf_add(&line, i == 0 ? "-" : "x", 1);
	memcpy(line.p + 4000, "viagra", 6);
	buf_fmt(&b, "Subject: long\r\n\r\n%s\r\nend\r\n", line.p);
	r = parse_all_ways("5000-byte line", b.p, b.len, NULL);
	ASSERT_TRUE(strstr(r->text.p, line.p) && r->text.len == 5000 + 7,
		    "5000-byte line: delivered whole, the word at 4000 in it");
	record_free(r);

	b.len = 0;
	buf_fmt(&b, "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n%s\r\n--b--\r\n",
		line.p);
	r = parse_all_ways("5000-byte line in a part", b.p, b.len, NULL);
	ASSERT_STREQ(text_of(r, 1), line.p,
		     "5000-byte line in a part: whole, though it starts like a boundary");
	record_free(r);
	buf_free(&b);
	buf_free(&line);
}

static void test_nul_in_body(void)
{
	static const char msg[] = "Subject: x\r\n\r\nbefore\0after\r\n";
	struct record *r = parse_all_ways("NUL in a text body", msg, sizeof(msg) - 1, NULL);

	ASSERT_TRUE(r->text.len == 14 && !memcmp(r->text.p, "before\0after\r\n", 14),
		    "NUL in a text body: delivered, nothing cut");
	record_free(r);

	static const char hdr[] = "Subject: a\0b\r\nX-8bit: caf\xc3\xa9\r\n\r\nx";
	r = parse_all_ways("NUL and 8-bit in headers", hdr, sizeof(hdr) - 1, NULL);
	ASSERT_TRUE(r->headers[0].value.len == 3 && told(r, SG_MIME_ANOM_HEADER_NUL),
		    "NUL in a header: kept, flagged");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_HEADER_8BIT), "8-bit in a header: flagged");
	record_free(r);
}

static void test_boundaries(void)
{
	size_t len;
	char *msg = crlf("Content-Type: multipart/mixed; boundary=b\n\n"
			 "--b\n\nfirst\n--b \t\n\nsecond\n--bx not a boundary\n--b--  \nafter\n", &len);
	struct record *r = parse_all_ways("boundary padding", msg, len, NULL);

	ASSERT_STREQ(text_of(r, 1), "first", "boundary padding: '--b' ends the first part");
	ASSERT_STREQ(text_of(r, 2), "second\r\n--bx not a boundary",
		     "boundary padding: '--b' + spaces and tabs is a boundary, '--bx' is not");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_BOUNDARY_LOOKALIKE), "boundary padding: the lookalike flagged");
	ASSERT_TRUE(!told(r, SG_MIME_ANOM_UNTERMINATED), "boundary padding: '--b--  ' closes");
	record_free(r);
	free(msg);

	msg = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
		   "no closing boundary\n", &len);
	r = parse_all_ways("missing closing boundary", msg, len, NULL);
	ASSERT_TRUE(told(r, SG_MIME_ANOM_UNTERMINATED), "missing closing boundary: flagged");
	ASSERT_STREQ(text_of(r, 1), "no closing boundary\r\n",
		     "missing closing boundary: the text still comes");
	record_free(r);
	free(msg);

	msg = crlf("Content-Type: multipart/mixed; boundary=out\n\n--out\n"
		   "Content-Type: multipart/alternative; boundary=in\n\n--in\n\ninner text\n"
		   "--out\n\nnext outer part\n--out--\n", &len);
	r = parse_all_ways("outer boundary closes inner", msg, len, NULL);
	ASSERT_STREQ(text_of(r, 2), "inner text",
		     "outer boundary closes inner: the inner part ends there");
	CHECK(r->nparts == 4 && r->parts[3].depth == 1 && !strcmp(text_of(r, 3), "next outer part"),
		    "outer boundary closes inner: the next part is the outer one's");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_UNTERMINATED),
		    "outer boundary closes inner: the inner flagged");
	record_free(r);
	free(msg);

	msg = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n"
		   "--b\n\nafter a part with no blank line\n--b--\n", &len);
	r = parse_all_ways("boundary in a header section", msg, len, NULL);
	ASSERT_TRUE(r->nparts == 3 && !strcmp(text_of(r, 2), "after a part with no blank line"),
		    "boundary in a header section: ends the part");
	record_free(r);
	free(msg);
}

static void test_parts_limit(void)
{
	struct sg_mime_limits lim = { .parts = 3 };
	struct buf b = { 0 };
	struct record *r;

	buf_str(&b, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (int i = 1; i <= 5; i++)
		buf_fmt(&b, "--p\r\nContent-Type: text/plain\r\n\r\npart%d\r\n", i);
	buf_str(&b, "--p--\r\n");
	r = parse_all_ways("too many parts", b.p, b.len, &lim);
	ASSERT_TRUE(told(r, SG_MIME_ANOM_PARTS_LIMIT), "too many parts: flagged");
	ASSERT_EQ(r->nparts, 4, "too many parts: no part past the limit");
	CHECK(strstr(r->text.p, "part3") &&
	      strstr(r->text.p, "--p\r\nContent-Type: text/plain\r\n\r\npart4") &&
		    strstr(r->text.p, "part5"), "too many parts: the rest is scanned as text");
	record_free(r);
	buf_free(&b);
}

static void test_container_encoding(void)
{
	/* base64 of "--i\r\n\r\nhidden words\r\n--i--\r\n" */
	static const char msg[] = "Content-Type: multipart/mixed; boundary=i\r\n"
				  "Content-Transfer-Encoding: base64\r\n\r\n"
				  "LS1pDQoNCmhpZGRlbiB3b3Jkcw0KLS1pLS0NCg==\r\n";
	struct record *r = parse_all_ways("encoded multipart", msg, sizeof(msg) - 1, NULL);

	ASSERT_TRUE(told(r, SG_MIME_ANOM_CONTAINER_ENCODING), "encoded multipart: flagged");
	ASSERT_TRUE(strstr(r->text.p, "hidden words") != NULL,
		    "encoded multipart: decoded and scanned as text");
	record_free(r);
}

static void test_duplicates(void)
{
	static const char msg[] = "Content-Type: text/plain\r\n"
				  "Content-Type: multipart/mixed; boundary=x\r\n"
				  "Content-Transfer-Encoding: x-uuencode\r\n\r\n--x\r\nbody\r\n";
	struct record *r = parse_all_ways("repeated Content-Type", msg, sizeof(msg) - 1, NULL);

	ASSERT_TRUE(told(r, SG_MIME_ANOM_DUPLICATE_HEADER) && r->parts[0].is_text,
		    "repeated Content-Type: the first counts, flagged");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_UNKNOWN_ENCODING) && !strcmp(r->text.p, "--x\r\nbody\r\n"),
		    "unknown encoding: flagged, passed as it is");
	record_free(r);
}

static void test_parameters(void)
{
	struct buf b = { 0 }, longname = { 0 };
	struct record *r;

	for (int i = 0; i < 300; i++)
		buf_add(&longname, "a", 1);
	buf_str(&longname, ".exe");
	buf_str(&b, "Content-Type: multipart/mixed (a (nested) comment); junk; boundary = \"z\"\r\n\r\n"
		    "--z\r\nContent-Type: text/plain (plain) ; junk ; charset = \"UTF-8\" (c)\r\n"
		    "Content-Disposition: attachment; filename=\"");
	buf_str(&b, longname.p);
	buf_str(&b, "\"\r\n\r\nx\r\n--z\r\nContent-Disposition: x-unknown;\r\n"
		    " filename*0=a; filename*0=b; filename*1=c\r\n\r\ny\r\n--z--\r\n");
	r = parse_all_ways("parameters", b.p, b.len, NULL);
	ASSERT_STREQ(r->parts[1].charset, "utf-8", "parameters: comments and junk around them skipped");
	CHECK(r->parts[1].filename_len == SG_MIME_FILENAME_MAX &&
	      !memcmp(r->parts[1].filename + SG_MIME_FILENAME_MAX - 8, "aaaa.exe", 8),
	      "parameters: a long file name cut, its extension kept");
	ASSERT_TRUE(told(r, SG_MIME_ANOM_LONG_FILENAME), "parameters: a long file name flagged");
	ASSERT_STREQ(r->parts[2].filename, "ac",
		     "parameters: a repeated continuation piece, the first counts");
	ASSERT_TRUE(r->parts[2].attachment, "parameters: an unknown disposition is an attachment");
	record_free(r);
	buf_free(&b);
	buf_free(&longname);
}

static void test_message_ends(void)
{
	static const char cut_b64[] = "Content-Transfer-Encoding: base64\r\n\r\nSGVsbG8";
	static const char cut_qp[] = "Content-Transfer-Encoding: quoted-printable\r\n\r\nend =4";
	static const char open_line[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
					"--b\r\n\r\ntext\r\n--b--";
	static const char last_cr[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
				      "--b\r\n\r\ntext\r";
	static const char headers_only[] = "Subject: no body";
	struct sg_mime_limits one = { .parts = 1 };
	static const char inside[] = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
				     "Content-Type: message/rfc822\r\n\r\n"
				     "Subject: x\r\n\r\nbody\r\n--b--\r\n";
	struct record *r;

	r = parse_all_ways("base64 cut at the end", cut_b64, sizeof(cut_b64) - 1, NULL);
	CHECK(!strcmp(r->text.p, "Hello") && told(r, SG_MIME_ANOM_BAD_BASE64),
	      "base64 cut at the end: what it holds decoded, flagged");
	record_free(r);
	r = parse_all_ways("quoted-printable cut at the end", cut_qp, sizeof(cut_qp) - 1, NULL);
	CHECK(!strcmp(r->text.p, "end =4") && told(r, SG_MIME_ANOM_BAD_QP),
	      "quoted-printable cut at the end: the escape literal, flagged");
	record_free(r);
	r = parse_all_ways("closing boundary without its break", open_line, sizeof(open_line) - 1, NULL);
	CHECK(!strcmp(text_of(r, 1), "text") && !told(r, SG_MIME_ANOM_UNTERMINATED),
	      "closing boundary without its break: it still closes");
	record_free(r);
	r = parse_all_ways("a last CR", last_cr, sizeof(last_cr) - 1, NULL);
	ASSERT_STREQ(text_of(r, 1), "text\r", "a last CR: content, not lost");
	record_free(r);
	r = parse_all_ways("headers only", headers_only, sizeof(headers_only) - 1, NULL);
	CHECK(!strcmp(header_value(r, 0, "Subject", 0), "no body") && r->text.len == 0,
	      "headers only: the header, no text");
	record_free(r);
	r = parse_all_ways("parts limit at a message/rfc822", inside, sizeof(inside) - 1, &one);
	CHECK(told(r, SG_MIME_ANOM_PARTS_LIMIT) && r->parts[1].is_text &&
	      strstr(text_of(r, 1), "Subject: x\r\n\r\nbody"),
	      "parts limit at a message/rfc822: the message inside is scanned as text");
	record_free(r);
}

static void test_accessors(void)
{
	struct sg_mime *m = sg_mime_new(NULL, NULL, NULL);
	static const char msg[] = "Subject: a\0b\r\nX: c\0d\r\n\r\n";

	sg_mime_feed(m, msg, sizeof(msg) - 1);
	sg_mime_end(m);
	ASSERT_EQ(sg_mime_anomaly_count(m, SG_MIME_ANOM_HEADER_NUL), 2,
		  "accessors: every anomaly counted, though told once a part");
	ASSERT_EQ(sg_mime_feed(m, "more", 4), 0, "accessors: feeding after the end is ignored");
	ASSERT_CONTAINS(sg_mime_anomaly_text(SG_MIME_ANOM_HEADER_NUL), "NUL",
			"accessors: an anomaly's text");
	sg_mime_free(m);
}

static void test_decoders(void)
{
	char out[128];
	unsigned int words;
	size_t n;

	n = sg_mime_decode_words("a =?utf-8?q?x?=\t=?utf-8?b?eQ==?= b", 34, out, &words);
	ASSERT_TRUE(n == 6 && !memcmp(out, "a xy b", 6) && words == 2,
		    "decode_words: whitespace between adjacent words dropped");
	n = sg_mime_percent_decode("%41%4a%zz%", 10, out);
	ASSERT_TRUE(n == 6 && !memcmp(out, "AJ%zz%", 6),
		    "percent_decode: %XX either case, bad ones literal");
	ASSERT_STREQ(sg_mime_anomaly_name(SG_MIME_ANOM_NESTING_LIMIT), "nesting-limit", "anomaly names");
	for (int c = 0; c < SG_MIME_ANOM_COUNT; c++)
		if (!sg_mime_anomaly_name(c) || !strcmp(sg_mime_anomaly_name(c), "unknown"))
			ASSERT_TRUE(0, "every anomaly has a name");
}

static void test_memory(void)
{
	struct sg_mime *m = sg_mime_new(&record_cb, NULL, NULL);
	struct sg_mime_callbacks none = { 0 };
	static const char msg[] = "Subject: small\r\n\r\nhello\r\n";

	sg_mime_free(m);
	m = sg_mime_new(&none, NULL, NULL);
	sg_mime_feed(m, msg, sizeof(msg) - 1);
	sg_mime_end(m);
	ASSERT_TRUE(sg_mime_memory(m) < 8 * 1024, "memory: a plain message needs under 8 KiB");
	ASSERT_TRUE(sg_mime_memory_bound(NULL) < 480 * 1024, "memory: the worst case is under 480 KiB");
	printf("# memory: plain message %zu bytes, worst case %zu bytes\n", sg_mime_memory(m),
	       sg_mime_memory_bound(NULL));
	sg_mime_free(m);
}

int main(void)
{
	test_headers_unfolded();
	test_encoded_words();
	test_base64_body();
	test_qp_body();
	test_nested();
	test_message_inside();
	test_nesting_limit();
	test_header_limit();
	test_boundary_limit();
	test_no_blank_line();
	test_long_line();
	test_nul_in_body();
	test_boundaries();
	test_parts_limit();
	test_container_encoding();
	test_duplicates();
	test_parameters();
	test_message_ends();
	test_accessors();
	test_decoders();
	test_memory();
	return test_exit_status();
}
