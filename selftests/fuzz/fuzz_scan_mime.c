/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz_scan_mime.c - libFuzzer target for the streaming MIME parser
 * (scan/mime.h), which reads every message a VM sends. Besides "no crash,
 * no read outside" (ASan, UBSan), it checks the parser's promises: the same
 * message parsed whole and sliced (random slices, or byte by byte) gives
 * the same events: the same text, headers, parts and anomalies (where);
 * memory stays within sg_mime_memory_bound; every part begun ends, none
 * deeper than the nesting limit, none past the parts limit. The input's
 * first two bytes choose the limits (Postfix's, or small ones so that
 * short inputs reach them), whether raw() is there, and the slicing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mime.h"
#include "mime_decode.h"

struct transcript {
	char *p;
	size_t len, cap;
	char *anomalies;
	size_t anomalies_len, anomalies_cap;
	unsigned int open;		/* parts begun, not ended */
	unsigned int max_depth, max_index;
	int broken;			/* a promise broken inside a callback */
};

static void check(int ok)
{
	if (!ok)
		abort();
}

static void add(char **p, size_t *len, size_t *cap, const void *d, size_t n)
{
	if (*len + n > *cap) {
		*cap = (*len + n) * 2 + 64;
		*p = realloc(*p, *cap);
		check(*p != NULL);
	}
	if (n)
		memcpy(*p + *len, d, n);
	*len += n;
}

static void add_event(struct transcript *t, const void *d, size_t n)
{
	add(&t->p, &t->len, &t->cap, d, n);
}

static void add_number(struct transcript *t, uint64_t v)
{
	add_event(t, &v, sizeof(v));
}

/* Text and raw bytes go in as they come: chunks coalesce, so where the
 * input was cut cannot show; a tag marks each change of part or kind. */
static char last_kind;
static unsigned int last_part;

static void content(struct transcript *t, char kind, const struct sg_mime_part *p,
		    const char *d, size_t n)
{
	if (kind != last_kind || p->index != last_part) {
		add_event(t, &kind, 1);
		add_number(t, p->index);
		last_kind = kind;
		last_part = p->index;
	}
	add_event(t, d, n);
}

static void on_text(void *ctx, const struct sg_mime_part *p, const char *d, size_t n)
{
	if (!p->is_text)
		((struct transcript *)ctx)->broken = 1;
	content(ctx, 'T', p, d, n);
}

static void on_raw(void *ctx, const struct sg_mime_part *p, const char *d, size_t n)
{
	content(ctx, 'R', p, d, n);
}

static void event(struct transcript *t, char kind, unsigned int part)
{
	last_kind = kind;
	add_event(t, &kind, 1);
	add_number(t, part);
}

static void on_header(void *ctx, const struct sg_mime_part *p, const struct sg_mime_header *h)
{
	struct transcript *t = ctx;

	event(t, 'H', p->index);
	add_number(t, h->name_len);
	add_event(t, h->name, h->name_len);
	add_number(t, h->value_len);
	add_event(t, h->value, h->value_len);
	add_number(t, h->decoded_len);
	add_event(t, h->decoded, h->decoded_len);
	add_number(t, (uint64_t)h->truncated);
	if (h->decoded_len > h->value_len || !h->name_len)
		t->broken = 1;
}

static void on_begin(void *ctx, const struct sg_mime_part *p)
{
	struct transcript *t = ctx;

	event(t, 'B', p->index);
	add_number(t, p->depth);
	add_event(t, p->type, strlen(p->type));
	add_event(t, p->subtype, strlen(p->subtype));
	add_number(t, p->filename_len);
	add_event(t, p->filename, p->filename_len);
	add_number(t, (uint64_t)(p->encoding | p->attachment << 4 | p->is_text << 5 |
				 p->is_multipart << 6 | p->is_message << 7));
	if (p->filename_len > SG_MIME_FILENAME_MAX || p->filename[p->filename_len])
		t->broken = 1;
	t->open++;
	if (p->depth > t->max_depth)
		t->max_depth = p->depth;
	if (p->index > t->max_index)
		t->max_index = p->index;
}

static void on_end(void *ctx, const struct sg_mime_part *p)
{
	struct transcript *t = ctx;

	event(t, 'E', p->index);
	add_number(t, p->bytes);
	add_number(t, p->decoded_bytes);
	add_number(t, p->anomalies);
	if (!t->open--)
		t->broken = 1;
}

static void on_anomaly(void *ctx, enum sg_mime_anomaly code, const struct sg_mime_where *w)
{
	struct transcript *t = ctx;
	uint64_t rec[3] = { code, w->offset, w->part->index };

	if ((unsigned int)code >= SG_MIME_ANOM_COUNT)
		t->broken = 1;
	add(&t->anomalies, &t->anomalies_len, &t->anomalies_cap, rec, sizeof(rec));
}

static const struct sg_mime_callbacks with_raw = {
	.header = on_header, .part_begin = on_begin, .part_end = on_end,
	.text = on_text, .raw = on_raw, .anomaly = on_anomaly,
};

/* without raw(), parts that are not text are counted, not decoded */
static const struct sg_mime_callbacks without_raw = {
	.header = on_header, .part_begin = on_begin, .part_end = on_end,
	.text = on_text, .anomaly = on_anomaly,
};

static const struct sg_mime_callbacks *callbacks;

static uint64_t rng_state;

static size_t next_slice(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return 1 + (rng_state >> 33) % ((rng_state >> 60) & 1 ? 300 : 7);
}

/* Parses data in slices: whole when slice is 0, byte by byte when 1,
 * random otherwise. */
static void parse(struct transcript *t, const char *data, size_t size,
		  const struct sg_mime_limits *lim, int slicing, uint64_t seed)
{
	struct sg_mime *m = sg_mime_new(callbacks, t, lim);
	size_t off = 0, bound = sg_mime_memory_bound(lim);

	check(m != NULL);
	last_kind = 0;
	rng_state = seed;
	while (off < size) {
		size_t n = slicing == 0 ? size - off : slicing == 1 ? 1 : next_slice();

		if (n > size - off)
			n = size - off;
		check(sg_mime_feed(m, data + off, n) == 0);
		check(sg_mime_memory(m) <= bound);
		off += n;
	}
	check(sg_mime_end(m) == 0);
	check(sg_mime_memory(m) <= bound);
	sg_mime_free(m);
	check(!t->broken && t->open == 0);
}

static int same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (!alen || !memcmp(a, b, alen));
}

static void transcript_free(struct transcript *t)
{
	free(t->p);
	free(t->anomalies);
}

/* The word decoder alone: it never grows its input, and decodes in place
 * as it does into another buffer. */
static void check_words(const char *data, size_t size)
{
	char *a = malloc(size + 1), *b = malloc(size + 1);
	size_t na, nb;

	check(a && b);
	memcpy(b, data, size);
	na = sg_mime_decode_words(data, size, a, NULL);
	nb = sg_mime_decode_words(b, size, b, NULL);
	check(na <= size && na == nb && !memcmp(a, b, na));
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *raw, size_t size)
{
	struct sg_mime_limits small = { .nesting = 3, .header = 300, .boundary = 8, .parts = 5 };
	const struct sg_mime_limits *lim;
	struct transcript whole = { 0 }, sliced = { 0 };
	const char *data = (const char *)raw + 2;
	int slicing;

	if (size < 2)
		return 0;
	lim = raw[0] & 1 ? &small : NULL;
	callbacks = raw[0] & 4 ? &without_raw : &with_raw;
	slicing = raw[1] % 8 == 0 ? 1 : 2;
	size -= 2;

	parse(&whole, data, size, lim, 0, 0);
	parse(&sliced, data, size, lim, slicing, raw[1] | (uint64_t)raw[0] << 8);
	check(same(whole.p, whole.len, sliced.p, sliced.len));
	check(same(whole.anomalies, whole.anomalies_len, sliced.anomalies, sliced.anomalies_len));
	check(whole.max_depth <= (lim ? lim->nesting : SG_MIME_NESTING_MAX));
	check(whole.max_index <= (lim ? lim->parts : SG_MIME_PARTS_MAX));
	transcript_free(&whole);
	transcript_free(&sliced);

	if (raw[0] & 2)
		check_words(data, size);
	return 0;
}
