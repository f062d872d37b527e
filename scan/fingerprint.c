/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* fingerprint.c - a body's min-hash signature over normalised word
 * 3-grams, fed as the text streams (see fingerprint.h). */
#include <string.h>
#include "fingerprint.h"
#include "keyhash.h"

#define BIN_EMPTY UINT32_MAX
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

enum fp_state {
	FP_BETWEEN,		/* between words */
	FP_WORD,		/* in a word */
	FP_SCHEME,		/* after "http:" or "https:", reading "//" */
	FP_HOST,		/* in a URL's host */
	FP_URL_REST,		/* in a URL's path, query or fragment: dropped */
	FP_MAIL_DOMAIN,		/* in an e-mail address's domain: dropped */
};

static inline int is_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

static inline int is_host_byte(unsigned char c)
{
	return is_word_byte(c) || c == '.' || c == '-' || c == '_';
}

/* where a URL's path ends: at a space or at what quotes or encloses it */
static inline int ends_url(unsigned char c)
{
	return c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == ')' ||
	       c == ']' || c == 0x7f;
}

static inline unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = FNV_OFFSET;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
	return h;
}

static void add_shingle(struct sg_fingerprint *fp, uint64_t h)
{
	uint32_t bin = (uint32_t)(h >> 58), v = (uint32_t)h;

	if (v < fp->bins[bin])
		fp->bins[bin] = v;
	if (fp->shingles != UINT32_MAX)
		fp->shingles++;
}

static inline uint64_t shingle_of(uint64_t a, uint64_t b, uint64_t c)
{
	return sg_mix64(sg_mix64(sg_mix64(a) ^ b) ^ c);
}

/* A normalised word, by its hash: the shingle it completes goes in. */
static void emit_word(struct sg_fingerprint_ctx *ctx, uint64_t h)
{
	h = sg_mix64(h);
	if (ctx->words >= SG_FP_SHINGLE_WORDS - 1)
		add_shingle(&ctx->fp, shingle_of(ctx->recent[0], ctx->recent[1], h));
	ctx->recent[0] = ctx->recent[1];
	ctx->recent[1] = h;
	if (ctx->words != UINT32_MAX)
		ctx->words++;
}

static void emit_text(struct sg_fingerprint_ctx *ctx, const char *s)
{
	emit_word(ctx, hash_bytes(s, strlen(s)));
}

static int word_is(const struct sg_fingerprint_ctx *ctx, const char *w)
{
	size_t n = strlen(w);

	return ctx->word_len == n && !memcmp(ctx->word_head, w, n);
}

static void host_add(struct sg_fingerprint_ctx *ctx, unsigned char c)
{
	if (ctx->host_len == SG_FP_HOST_TAIL) {
		/* keep the tail: the labels that matter are the last */
		memmove(ctx->host, ctx->host + SG_FP_HOST_TAIL / 2, SG_FP_HOST_TAIL / 2);
		ctx->host_len = SG_FP_HOST_TAIL / 2;
	}
	ctx->host[ctx->host_len++] = (char)lower(c);
}

/* "u:" and the host's last two labels; "u:#" for an address literal. */
static void emit_host(struct sg_fingerprint_ctx *ctx)
{
	const char *h = ctx->host;
	uint32_t n = ctx->host_len, start, dots = 0, letters = 0;
	uint64_t hash;

	while (n && (h[n - 1] == '.' || h[n - 1] == '-'))
		n--;
	for (start = n; start > 0; start--) {
		if (h[start - 1] == '.' && ++dots == 2)
			break;
	}
	for (uint32_t i = start; i < n; i++)
		letters += !(h[i] >= '0' && h[i] <= '9') && h[i] != '.' && h[i] != '-';
	if (!letters) {
		emit_text(ctx, "u:#");
		return;
	}
	hash = hash_bytes("u:", 2);
	for (uint32_t i = start; i < n; i++)
		hash = (hash ^ (unsigned char)h[i]) * FNV_PRIME;
	emit_word(ctx, hash);
}

/* A word ends at c: what it was decides what comes next. */
static enum fp_state end_word(struct sg_fingerprint_ctx *ctx, unsigned char c)
{
	if (c == '@')
		return FP_MAIL_DOMAIN;
	if (c == ':' && (word_is(ctx, "http") || word_is(ctx, "https"))) {
		ctx->slashes = 0;
		return FP_SCHEME;
	}
	if (c == '.' && word_is(ctx, "www")) {
		ctx->host_len = 0;
		return FP_HOST;
	}
	emit_word(ctx, ctx->word_has_digit ? hash_bytes("#", 1) : ctx->word_hash);
	return FP_BETWEEN;
}

static void start_word(struct sg_fingerprint_ctx *ctx, unsigned char c)
{
	c = lower(c);
	ctx->word_hash = (FNV_OFFSET ^ c) * FNV_PRIME;
	ctx->word_len = 1;
	ctx->word_head[0] = (char)c;
	ctx->word_has_digit = c >= '0' && c <= '9';
}

static void word_byte(struct sg_fingerprint_ctx *ctx, unsigned char c)
{
	c = lower(c);
	ctx->word_hash = (ctx->word_hash ^ c) * FNV_PRIME;
	if (ctx->word_len < sizeof(ctx->word_head))
		ctx->word_head[ctx->word_len] = (char)c;
	if (ctx->word_len != UINT32_MAX)
		ctx->word_len++;
	ctx->word_has_digit |= c >= '0' && c <= '9';
}

void sg_fingerprint_begin(struct sg_fingerprint_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	memset(ctx->fp.bins, 0xff, sizeof(ctx->fp.bins));
	ctx->state = FP_BETWEEN;
}

/* One byte through the normaliser. A byte that ends a state is looked at
 * again in the next (a loop of at most three rounds: each ends in
 * FP_BETWEEN, which consumes every byte). */
static void feed_byte(struct sg_fingerprint_ctx *ctx, unsigned char c)
{
	for (;;) {
		switch (ctx->state) {
		case FP_BETWEEN:
			if (is_word_byte(c)) {
				start_word(ctx, c);
				ctx->state = FP_WORD;
			}
			return;
		case FP_WORD:
			if (is_word_byte(c)) {
				word_byte(ctx, c);
				return;
			}
			ctx->state = end_word(ctx, c);
			if (ctx->state != FP_BETWEEN)
				return;	/* c was the '@', ':' or '.' that led there */
			continue;
		case FP_SCHEME:
			if (c == '/' && ctx->slashes < 2) {
				if (++ctx->slashes == 2) {
					ctx->host_len = 0;
					ctx->state = FP_HOST;
				}
				return;
			}
			/* "http:" was only a word */
			emit_word(ctx, ctx->word_hash);
			ctx->state = FP_BETWEEN;
			continue;
		case FP_HOST:
			if (is_host_byte(c)) {
				host_add(ctx, c);
				return;
			}
			emit_host(ctx);
			ctx->state = ends_url(c) ? FP_BETWEEN : FP_URL_REST;
			if (ctx->state == FP_URL_REST)
				return;
			continue;
		case FP_URL_REST:
			if (!ends_url(c))
				return;
			ctx->state = FP_BETWEEN;
			continue;
		case FP_MAIL_DOMAIN:
			if (is_host_byte(c))
				return;
			emit_text(ctx, "@");
			ctx->state = FP_BETWEEN;
			continue;
		default:
			ctx->state = FP_BETWEEN;
			return;
		}
	}
}

void sg_fingerprint_feed(struct sg_fingerprint_ctx *ctx, const char *text, size_t n)
{
	for (size_t i = 0; i < n; i++)
		feed_byte(ctx, (unsigned char)text[i]);
}

/* Empty bins take the next non-empty bin's value, mixed with how far it
 * is, so two bodies agree on a borrowed bin only where they agree on the
 * bin it came from. */
static void densify(struct sg_fingerprint *fp)
{
	uint32_t src[SG_FP_BINS];

	memcpy(src, fp->bins, sizeof(src));
	for (uint32_t j = 0; j < SG_FP_BINS; j++) {
		if (src[j] != BIN_EMPTY)
			continue;
		for (uint32_t d = 1; d < SG_FP_BINS; d++) {
			uint32_t v = src[(j + d) % SG_FP_BINS];

			if (v != BIN_EMPTY) {
				fp->bins[j] = (uint32_t)sg_mix64(((uint64_t)v << 8) | d);
				break;
			}
		}
	}
}

void sg_fingerprint_end(struct sg_fingerprint_ctx *ctx, struct sg_fingerprint *out)
{
	feed_byte(ctx, ' ');	/* ends a last word, host or address */
	if (ctx->words > 0 && ctx->words < SG_FP_SHINGLE_WORDS)
		add_shingle(&ctx->fp, shingle_of(0, ctx->words > 1 ? ctx->recent[0] : 0,
						 ctx->recent[1]));
	if (ctx->fp.shingles)
		densify(&ctx->fp);
	else
		memset(ctx->fp.bins, 0, sizeof(ctx->fp.bins));
	*out = ctx->fp;
}

unsigned sg_fingerprint_similarity(const struct sg_fingerprint *a, const struct sg_fingerprint *b)
{
	unsigned same = 0;

	if (!a->shingles || !b->shingles)
		return 0;
	for (uint32_t i = 0; i < SG_FP_BINS; i++)
		same += a->bins[i] == b->bins[i];
	return same * 100 / SG_FP_BINS;
}

uint64_t sg_fingerprint_digest(const struct sg_fingerprint *fp)
{
	uint64_t h = FNV_OFFSET;

	for (uint32_t i = 0; i < SG_FP_BINS; i++)
		h = sg_mix64(h ^ fp->bins[i]);
	return h;
}
