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

static inline void add_shingle(struct sg_fingerprint *fp, uint64_t h)
{
	uint32_t bin = (uint32_t)(h >> 58), v = (uint32_t)h, old = fp->bins[bin];

	/* a new minimum is rare once a body is under way, but not at its
	 * start: written every time, it costs no mispredicted branch */
	fp->bins[bin] = v < old ? v : old;
	fp->shingles += fp->shingles != UINT32_MAX;
}

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* Three words' hashes, already mixed: rotated apart so that their order
 * counts, mixed once more together. */
static inline uint64_t shingle_of(uint64_t a, uint64_t b, uint64_t c)
{
	return sg_mix64(rotl(a, 42) ^ rotl(b, 21) ^ c);
}

/* A normalised word, by its hash: the shingle it completes goes in. */
static inline void emit_word(struct sg_fingerprint_ctx *ctx, uint64_t h)
{
	h = sg_mix64(h);
	if (ctx->words >= SG_FP_SHINGLE_WORDS - 1)
		add_shingle(&ctx->fp, shingle_of(ctx->recent[0], ctx->recent[1], h));
	ctx->recent[0] = ctx->recent[1];
	ctx->recent[1] = h;
	ctx->words += ctx->words != UINT32_MAX;
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

/* "u:" and the host's last two labels; "u:#" for an address literal (h
 * lowercased). */
static uint64_t host_hash(const char *h, uint32_t n)
{
	uint32_t start, dots = 0, letters = 0;
	uint64_t hash;

	while (n && (h[n - 1] == '.' || h[n - 1] == '-'))
		n--;
	for (start = n; start > 0; start--) {
		if (h[start - 1] == '.' && ++dots == 2)
			break;
	}
	for (uint32_t i = start; i < n; i++)
		letters += !(h[i] >= '0' && h[i] <= '9') && h[i] != '.' && h[i] != '-';
	if (!letters)
		return hash_bytes("u:#", 3);
	hash = hash_bytes("u:", 2);
	for (uint32_t i = start; i < n; i++)
		hash = (hash ^ (unsigned char)h[i]) * FNV_PRIME;
	return hash;
}

static void emit_host(struct sg_fingerprint_ctx *ctx)
{
	emit_word(ctx, host_hash(ctx->host, ctx->host_len));
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

static inline void word_byte(struct sg_fingerprint_ctx *ctx, unsigned char c)
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

/*
 * The fast path: plain words, the most of any text, without the byte
 * machine. The text is read in windows of 64 bytes: which bytes are word
 * bytes, digits, or a separator end_word looks at (':', '.', '@'), as bit
 * masks, and the bytes lowercased, 16 at a time. From the masks come the
 * bits of the words' first bytes and of the bytes that end them, taken
 * in pairs: a word is hashed whole, from 8 or 16 bytes loaded at once,
 * and emitted as end_word would. The hashes of a window's words are made
 * first and emitted after: each word's hash is a chain of dependent
 * multiplications, and made apart the chains of several words run side
 * by side in the CPU. A word that end_word would treat otherwise (one
 * followed by '@', "http" or "https" by ':', "www" by '.') or that the
 * text's end cuts is left to the byte machine, from its first byte: the
 * result is the same, whatever the chunks.
 */

/* the hash of the word "#" that stands for any word with a digit */
#define NUMBER_HASH ((FNV_OFFSET ^ '#') * FNV_PRIME)
#define WINDOW 64
#define BATCH 64		/* word hashes made before they are emitted */

struct window {
	uint64_t word;		/* bit k: byte k is a word byte */
	uint64_t digit;		/* an ASCII digit */
	uint64_t special;	/* ':', '.' or '@' */
	/* the bytes lowercased, and room for a word's last 16-byte load
	 * (bytes past the word are hashed but not kept) */
	unsigned char low[WINDOW + 16];
};

#ifdef __SSE2__
#include <emmintrin.h>

/* Each range test is one signed compare, after an add that moves the
 * range to the bottom of the signed bytes; >= 0x80 is the sign bit. */
static inline void window_load(struct window *w, const unsigned char *b)
{
	uint64_t word = 0, digit = 0, special = 0;

	for (int k = 0; k < WINDOW; k += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(b + k));
		__m128i d = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(0x50)), _mm_set1_epi8(-118));
		__m128i up = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(0x3f)), _mm_set1_epi8(-102));
		__m128i letter = _mm_cmplt_epi8(
			_mm_add_epi8(_mm_or_si128(v, _mm_set1_epi8(0x20)), _mm_set1_epi8(0x1f)),
			_mm_set1_epi8(-102));
		__m128i sp = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(':')),
						       _mm_cmpeq_epi8(v, _mm_set1_epi8('.'))),
					  _mm_cmpeq_epi8(v, _mm_set1_epi8('@')));

		_mm_storeu_si128((__m128i *)(w->low + k),
				 _mm_add_epi8(v, _mm_and_si128(up, _mm_set1_epi8(0x20))));
		word |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(d, letter), v)) << k;
		digit |= (uint64_t)(unsigned)_mm_movemask_epi8(d) << k;
		special |= (uint64_t)(unsigned)_mm_movemask_epi8(sp) << k;
	}
	w->word = word;
	w->digit = digit;
	w->special = special;
}
#else
static inline void window_load(struct window *w, const unsigned char *b)
{
	w->word = w->digit = w->special = 0;
	for (int k = 0; k < WINDOW; k++) {
		w->low[k] = lower(b[k]);
		w->word |= (uint64_t)is_word_byte(b[k]) << k;
		w->digit |= (uint64_t)(b[k] >= '0' && b[k] <= '9') << k;
		w->special |= (uint64_t)(b[k] == ':' || b[k] == '.' || b[k] == '@') << k;
	}
}
#endif

/* The word that end_word would not emit as a word: see above. */
static inline int word_is_special(const unsigned char *low, size_t len, unsigned char sep)
{
	if (sep == '@')
		return 1;
	if (sep == ':' && (len == 4 || len == 5))
		return !memcmp(low, "https", len);
	if (sep == '.' && len == 3)
		return !memcmp(low, "www", 3);
	return 0;
}

/* The first step from FNV_OFFSET, by the byte: a load for a multiply. */
#define FIRST(c) ((FNV_OFFSET ^ (uint64_t)(c)) * FNV_PRIME)
#define FIRST4(c) FIRST(c), FIRST((c) + 1), FIRST((c) + 2), FIRST((c) + 3)
#define FIRST16(c) FIRST4(c), FIRST4((c) + 4), FIRST4((c) + 8), FIRST4((c) + 12)
#define FIRST64(c) FIRST16(c), FIRST16((c) + 16), FIRST16((c) + 32), FIRST16((c) + 48)
static const uint64_t fnv_first[256] = { FIRST64(0), FIRST64(64), FIRST64(128), FIRST64(192) };
#undef FIRST
#undef FIRST4
#undef FIRST16
#undef FIRST64

/* FNV-1a of 1..8 bytes at low, as hash_bytes, from h: all 8 are hashed
 * and the hash after len of them is kept. No branch on the length, which
 * no predictor knows (written as a loop that keeps h while k < len, it
 * becomes one: the compiler stops at len), and unrolled by hand, as -O2
 * does not. */
#define FNV_STEP(k) after[k] = (after[(k) - 1] ^ low[k]) * FNV_PRIME
static inline uint64_t fnv8(uint64_t h, const unsigned char *low, size_t len)
{
	uint64_t after[8];

	after[0] = (h ^ low[0]) * FNV_PRIME;
	FNV_STEP(1); FNV_STEP(2); FNV_STEP(3);
	FNV_STEP(4); FNV_STEP(5); FNV_STEP(6); FNV_STEP(7);
	return after[len - 1];
}

/* The same from FNV_OFFSET. */
static inline uint64_t fnv8_first(const unsigned char *low, size_t len)
{
	uint64_t after[8];

	after[0] = fnv_first[low[0]];
	FNV_STEP(1); FNV_STEP(2); FNV_STEP(3);
	FNV_STEP(4); FNV_STEP(5); FNV_STEP(6); FNV_STEP(7);
	return after[len - 1];
}
#undef FNV_STEP

/* Any word, from the text as it came. */
static uint64_t long_word_hash(const unsigned char *s, size_t len)
{
	uint64_t h = FNV_OFFSET;

	for (size_t k = 0; k < len; k++)
		h = (h ^ lower(s[k])) * FNV_PRIME;
	return h;
}

/* emit_word for each of n hashes: its counts added once at the end, the
 * last words in registers (the compiler cannot tell the bins' stores from
 * them). */
static void emit_words(struct sg_fingerprint_ctx *ctx, const uint64_t *hs, size_t n)
{
	uint64_t r0 = ctx->recent[0], r1 = ctx->recent[1], completing, shingles, words;
	uint32_t *bins = ctx->fp.bins;
	size_t i = 0;

	/* a body's first words complete no shingle */
	for (; i < n && ctx->words < SG_FP_SHINGLE_WORDS - 1; i++) {
		r0 = r1;
		r1 = sg_mix64(hs[i]);
		ctx->words++;
	}
	completing = n - i;
	for (; i < n; i++) {
		uint64_t h = sg_mix64(hs[i]), sh = shingle_of(r0, r1, h);
		uint32_t bin = (uint32_t)(sh >> 58), v = (uint32_t)sh, old = bins[bin];

		bins[bin] = v < old ? v : old;	/* as add_shingle */
		r0 = r1;
		r1 = h;
	}
	ctx->recent[0] = r0;
	ctx->recent[1] = r1;
	/* both counts saturate */
	shingles = ctx->fp.shingles + completing;
	words = ctx->words + completing;
	ctx->fp.shingles = shingles < UINT32_MAX ? (uint32_t)shingles : UINT32_MAX;
	ctx->words = words < UINT32_MAX ? (uint32_t)words : UINT32_MAX;
}

/*
 * What the word [s, e) starts, e being ':' after "http" or "https", '.'
 * after "www", or '@' (word_is_special), taken here if it ends before
 * end, as the byte machine would take it (FP_SCHEME, FP_HOST, FP_URL_REST,
 * FP_MAIL_DOMAIN): the n words made before it are emitted, then what it
 * is, and the byte after it is returned (one between words). A host
 * longer than kept here, or what the end cuts, is left to the byte
 * machine: NULL, nothing emitted. Mailings are full of links: without
 * this, each would cost the fast path its window.
 */
static const unsigned char *special_run(struct sg_fingerprint_ctx *ctx, const unsigned char *s,
					const unsigned char *e, const unsigned char *end,
					const uint64_t *hs, size_t n)
{
	const unsigned char *q = e + 1, *h, *he, *r;
	char host[64];

	if (*e == '@') {
		for (r = q; r < end && is_host_byte(*r); r++)
			;
		if (r == end)
			return NULL;
		emit_words(ctx, hs, n);
		emit_text(ctx, "@");	/* the address's name is dropped */
		return r;
	}
	if (*e == ':') {
		if (end - q < 2)
			return NULL;
		if (q[0] != '/' || q[1] != '/') {
			/* "http:" was only a word; a '/' after it is taken */
			emit_words(ctx, hs, n);
			emit_word(ctx, long_word_hash(s, (size_t)(e - s)));
			return q[0] == '/' ? q + 1 : q;
		}
		h = q + 2;
	} else {
		h = q;		/* "www." is not the host's */
	}
	for (he = h; he < end && he - h < (ptrdiff_t)sizeof(host) && is_host_byte(*he); he++)
		host[he - h] = (char)lower(*he);
	if (he == end || is_host_byte(*he))
		return NULL;
	/* the path, the query and the fragment are dropped */
	for (r = he; r < end && !ends_url(*r); r++)
		;
	if (r == end)
		return NULL;
	emit_words(ctx, hs, n);
	emit_word(ctx, host_hash(host, (uint32_t)(he - h)));
	return r;
}

/* From p, between words: plain words emitted. Returns end, or the first
 * byte of a word left to the byte machine (the state still FP_BETWEEN). */
static const unsigned char *words_run(struct sg_fingerprint_ctx *ctx, const unsigned char *p,
				      const unsigned char *end)
{
	struct window w;
	uint64_t hs[BATCH];
	size_t nh = 0;
	const unsigned char *stop = end;

	memset(w.low + WINDOW, 0, sizeof(w.low) - WINDOW);
window:
	while (p < end) {
		size_t avail = (size_t)(end - p);
		uint64_t starts, ends, digit_ends;

		if (avail >= WINDOW) {
			window_load(&w, p);
		} else {
			/* the text's last bytes; what is past them counts
			 * as separators */
			unsigned char last[WINDOW] = { 0 };

			memcpy(last, p, avail);
			window_load(&w, last);
		}
		/* a window starts between words (at p, or at a word's first
		 * byte), so starts and ends alternate, a start first */
		starts = w.word & ~(w.word << 1);
		ends = ~w.word & (w.word << 1);
		/* the ends of the words with a digit: a word's bits plus its
		 * digits' carry out into the byte after it, only if it has
		 * one (what a word carries stops at that byte, not a word's) */
		digit_ends = (w.word + w.digit) & ~w.word;
		if (avail < WINDOW)
			ends &= (1ULL << avail) - 1;	/* the text's end is none */
		while (ends) {
			unsigned s = (unsigned)__builtin_ctzll(starts), e = (unsigned)__builtin_ctzll(ends);
			size_t len = e - s;
			uint64_t h;

			starts &= starts - 1;
			ends &= ends - 1;
			if (((w.special >> e) & 1) && word_is_special(w.low + s, len, p[e])) {
				const unsigned char *next = special_run(ctx, p + s, p + e, end, hs, nh);

				if (!next) {
					stop = p + s;
					goto out;
				}
				nh = 0;
				p = next;
				goto window;
			}
			if (len <= 8)
				h = fnv8_first(w.low + s, len);
			else if (len <= 16)
				h = fnv8(fnv8_first(w.low + s, 8), w.low + s + 8, len - 8);
			else
				h = long_word_hash(p + s, len);
			hs[nh++] = (digit_ends >> e) & 1 ? NUMBER_HASH : h;
			if (nh == BATCH) {
				emit_words(ctx, hs, nh);
				nh = 0;
			}
		}
		if (starts) {
			/* a word goes on past the window */
			unsigned s = (unsigned)__builtin_ctzll(starts);

			if (avail <= WINDOW || !s) {
				/* cut by the text's end, or a window long: the
				 * byte machine's */
				stop = p + s;
				goto out;
			}
			p += s;		/* the next window from the word on */
		} else {
			p += avail < WINDOW ? avail : WINDOW;
		}
	}
out:
	emit_words(ctx, hs, nh);
	return stop;
}

void sg_fingerprint_feed(struct sg_fingerprint_ctx *ctx, const char *text, size_t n)
{
	const unsigned char *p = (const unsigned char *)text, *end = p + n;

	while (p < end) {
		/* between words, the fast path takes the plain ones whole;
		 * the other common runs go in tight loops: the rest of a word,
		 * a URL's host or path, an address's domain. The byte that
		 * ends a run goes through feed_byte, which knows what it
		 * starts */
		switch (ctx->state) {
		case FP_WORD: {
			uint64_t h = ctx->word_hash;
			uint32_t len = ctx->word_len;
			uint8_t digit = ctx->word_has_digit;

			while (p < end && is_word_byte(*p)) {
				unsigned char c = lower(*p++);

				h = (h ^ c) * FNV_PRIME;
				if (len < sizeof(ctx->word_head))
					ctx->word_head[len] = (char)c;
				len += len != UINT32_MAX;
				digit |= c >= '0' && c <= '9';
			}
			ctx->word_hash = h;
			ctx->word_len = len;
			ctx->word_has_digit = digit;
			break;
		}
		case FP_BETWEEN:
			p = words_run(ctx, p, end);
			break;
		case FP_URL_REST:
			while (p < end && !ends_url(*p))
				p++;
			break;
		case FP_HOST:
			while (p < end && is_host_byte(*p))
				host_add(ctx, *p++);
			break;
		case FP_MAIL_DOMAIN:
			while (p < end && is_host_byte(*p))
				p++;
			break;
		default:
			break;
		}
		if (p < end)
			feed_byte(ctx, *p++);
	}
}

_Static_assert(SG_FP_BINS == 64, "densify keeps the filled bins in a 64-bit mask");

/* Empty bins take the next non-empty bin's value, mixed with how far it
 * is, so two bodies agree on a borrowed bin only where they agree on the
 * bin it came from. The filled bins as a bit mask: turned so that the bin
 * after an empty one is bit 0, the lowest bit set is how far (called
 * with at least one bin filled; only filled bins are read). */
static void densify(struct sg_fingerprint *fp)
{
	uint64_t filled = 0, empty;

#ifdef __SSE2__
	for (uint32_t j = 0; j < SG_FP_BINS; j += 4) {
		__m128i v = _mm_loadu_si128((const __m128i *)(fp->bins + j));
		__m128i is_empty = _mm_cmpeq_epi32(v, _mm_set1_epi32(-1));

		filled |= (uint64_t)(~_mm_movemask_ps(_mm_castsi128_ps(is_empty)) & 0xf) << j;
	}
#else
	for (uint32_t j = 0; j < SG_FP_BINS; j++)
		filled |= (uint64_t)(fp->bins[j] != BIN_EMPTY) << j;
#endif
	for (empty = ~filled; empty; empty &= empty - 1) {
		uint32_t j = (uint32_t)__builtin_ctzll(empty), r = (j + 1) % SG_FP_BINS;
		uint64_t after = filled >> r | filled << ((SG_FP_BINS - r) % SG_FP_BINS);
		uint32_t d = (uint32_t)__builtin_ctzll(after) + 1;

		fp->bins[j] = (uint32_t)sg_mix64(((uint64_t)fp->bins[(j + d) % SG_FP_BINS] << 8) | d);
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
