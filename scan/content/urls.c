/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * urls.c - the streaming URL host extractor (see urls.h): a byte-at-a-time
 * state machine, so that where a chunk ends never matters. Most text holds
 * no URL, and running the machine on its every byte cost more than all
 * the rest of the scan: text that can start nothing is skipped 32 bytes a
 * round (find_start), its last 8 bytes remembered, and a host's name is
 * taken in a tight loop (host_run); both do exactly what the machine
 * would, which sg_url_extract's callers cannot tell apart.
 */
#include <string.h>
#include "urls.h"

enum { IN_TEXT, AFTER_SCHEME, IN_AUTHORITY };
enum { HOST_COLLECTING, HOST_ENDED, HOST_INVALID };

/* the last bytes, newest lowest: "http:" is 'h' 't' 't' 'p' ':' */
#define RECENT_HTTP  0x687474703aULL		/* "http:" */
#define RECENT_HTTPS 0x68747470733aULL		/* "https:" */
#define RECENT_WWW   0x7777772eULL		/* "www." */

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* What ends an authority in a browser, in text or in an attribute. */
static int ends_authority(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return 1;
	switch (c) {
	case '/': case '?': case '#': case '\\': case '"': case '<': case '>':
	case '`': case '{': case '}': case '|': case '^':
		return 1;
	}
	return 0;
}

/* A byte a host name is made of (lowercased; >= 0x80: an IDN's bytes). */
static int is_host_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.' || c >= 0x80;
}

/* Before "www.": a byte of a longer name (so "awww.x" or "a.www.x" is no URL). */
static int continues_name(unsigned char c)
{
	return is_host_byte(c) && c < 0x80;
}

static void host_reset(struct sg_url_extractor *ex)
{
	ex->host_len = 0;
	ex->host_state = HOST_COLLECTING;
	ex->in_brackets = 0;
	ex->escape = 0;
	ex->overlong = 0;
	ex->split_at = 0;
}

void sg_url_extract_init(struct sg_url_extractor *ex, sg_url_host_fn on_host, void *ctx)
{
	memset(ex, 0, sizeof(*ex));
	ex->on_host = on_host;
	ex->ctx = ctx;
	ex->state = IN_TEXT;
}

/* IDNA maps these to '.', so browsers do: U+3002, U+FF0E, U+FF61. */
static size_t map_unicode_dots(char *host, size_t len)
{
	size_t i = 0, o;

	/* most hosts have no byte that could start one: nothing moves */
	while (i < len && (unsigned char)host[i] < 0xe3)
		i++;
	for (o = i; i < len; i++) {
		const unsigned char *u = (const unsigned char *)host + i;

		if (i + 2 < len && ((u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x82) ||
				    (u[0] == 0xef && u[1] == 0xbc && u[2] == 0x8e) ||
				    (u[0] == 0xef && u[1] == 0xbd && u[2] == 0xa1))) {
			host[o++] = '.';
			i += 2;
		} else {
			host[o++] = host[i];
		}
	}
	return o;
}

/* A host is given: its dots mapped, trailing ones dropped, if it is not
 * too long. */
static void give_host(struct sg_url_extractor *ex, char *host, size_t len)
{
	len = map_unicode_dots(host, len);
	while (len && host[len - 1] == '.')
		len--;
	if (len > SG_HOST_MAX) {
		ex->overlong_hosts++;
		return;
	}
	if (!len)
		return;
	ex->hosts++;
	ex->on_host(ex->ctx, host, len);
}

static void host_append(struct sg_url_extractor *ex, unsigned char c)
{
	if (ex->split_at && !ex->overlong) {
		char before[sizeof(ex->host)];

		memcpy(before, ex->host, ex->split_at);
		give_host(ex, before, ex->split_at);
		ex->split_at = 0;
	}
	if (ex->host_len == sizeof(ex->host)) {	/* room for a trailing dot */
		ex->overlong = 1;	/* may still be userinfo: an '@' would start over */
		return;
	}
	ex->host[ex->host_len++] = (char)c;
}

/* One byte of the host part (after percent-decoding). */
static void host_byte(struct sg_url_extractor *ex, unsigned char c)
{
	c = lower(c);
	if (ex->in_brackets) {
		if (c == ']') {
			ex->in_brackets = 0;
			ex->host_state = HOST_ENDED;
		} else if (hex_value(c) >= 0 || c == ':' || c == '.') {
			host_append(ex, c);
		} else {
			ex->host_state = HOST_INVALID;
		}
	} else if (c == '[' && ex->host_len == 0) {
		ex->in_brackets = 1;
	} else if (is_host_byte(c)) {
		host_append(ex, c);
	} else {
		ex->host_state = HOST_ENDED;	/* a ':' port, or text after the host */
	}
}

/* The URL has ended: its host, if it has a good one, is given. */
static void url_end(struct sg_url_extractor *ex)
{
	ex->state = IN_TEXT;
	if (ex->in_brackets || ex->host_state == HOST_INVALID) {
		ex->invalid_hosts++;
		return;
	}
	if (ex->overlong) {
		ex->overlong_hosts++;
		return;
	}
	give_host(ex, ex->host, ex->host_len);
}

static void authority_byte(struct sg_url_extractor *ex, unsigned char c)
{
	int v;

	if (ex->quote && (c == '\t' || c == '\r' || c == '\n')) {
		/* in an attribute's value browsers drop them, but text that
		 * only follows a quote ends there: should the host go on,
		 * what came before the break is given too */
		if (ex->host_state == HOST_COLLECTING && ex->host_len && !ex->escape &&
		    !ex->in_brackets && !ex->split_at)
			ex->split_at = ex->host_len;
		return;
	}
	if (ends_authority(c) || (ex->quote && c == ex->quote)) {
		url_end(ex);
		return;
	}
	if (c == '@') {
		host_reset(ex);	/* what came before was userinfo */
		return;
	}
	if (ex->host_state != HOST_COLLECTING)
		return;		/* an '@' may yet come */
	if (ex->escape) {
		v = hex_value(c);
		if (v < 0) {
			ex->host_state = HOST_INVALID;
			return;
		}
		ex->escape_value = (unsigned char)(ex->escape_value << 4 | v);
		if (++ex->escape == 3) {
			ex->escape = 0;
			host_byte(ex, ex->escape_value);
		}
		return;
	}
	if (c == '%') {
		ex->escape = 1;
		ex->escape_value = 0;
		return;
	}
	host_byte(ex, c);
}

/* The quote just before the last n bytes, or 0. */
static unsigned char quote_before(const struct sg_url_extractor *ex, unsigned int n)
{
	unsigned char c = (unsigned char)(ex->recent >> (8 * n));

	return c == '"' || c == '\'' ? c : 0;
}

/* One byte of text, after character references are decoded. */
static void text_byte(struct sg_url_extractor *ex, unsigned char c)
{
	ex->recent = ex->recent << 8 | lower(c);
	switch (ex->state) {
	case AFTER_SCHEME:
		if (c == '/' || c == '\\') {
			ex->slashes = 1;
			return;
		}
		if (ex->slashes) {
			ex->state = IN_AUTHORITY;
			host_reset(ex);
			authority_byte(ex, c);
			return;
		}
		ex->state = IN_TEXT;
		break;
	case IN_AUTHORITY:
		authority_byte(ex, c);
		/* past its host, an authority may still hold an '@', or be
		 * text with the next URL in it: "http://a.example,http://b..." */
		if (ex->state != IN_AUTHORITY || ex->host_state == HOST_COLLECTING)
			return;
		break;
	}
	if (c == ':' && ((ex->recent & 0xffffffffffULL) == RECENT_HTTP ||
			 (ex->recent & 0xffffffffffffULL) == RECENT_HTTPS)) {
		int https = (ex->recent & 0xffffffffffffULL) == RECENT_HTTPS;

		if (ex->state == IN_AUTHORITY)
			url_end(ex);
		ex->state = AFTER_SCHEME;
		ex->slashes = 0;
		ex->quote = quote_before(ex, https ? 6 : 5);
	} else if (c == '.' && (ex->recent & 0xffffffffULL) == RECENT_WWW &&
		   !continues_name((unsigned char)(ex->recent >> 32))) {
		if (ex->state == IN_AUTHORITY)
			url_end(ex);
		ex->state = IN_AUTHORITY;
		host_reset(ex);
		ex->quote = quote_before(ex, 4);
		memcpy(ex->host, "www.", 4);
		ex->host_len = 4;
	}
}

/* Decodes "&#58;" and "&#x3a;" (semicolon optional, as browsers allow) to
 * the ASCII byte they stand for; anything else passes as it came. */
static void ref_flush(struct sg_url_extractor *ex)
{
	for (unsigned i = 0; i < ex->ref_len; i++)
		text_byte(ex, (unsigned char)ex->ref[i]);
	ex->ref_len = 0;
}

static int ref_value(const struct sg_url_extractor *ex)
{
	int hex = ex->ref_len > 2 && (ex->ref[2] == 'x' || ex->ref[2] == 'X');
	unsigned i = hex ? 3 : 2;
	int v = 0;

	if (i >= ex->ref_len)
		return -1;
	for (; i < ex->ref_len; i++)
		v = v * (hex ? 16 : 10) + hex_value((unsigned char)ex->ref[i]);
	return v > 0 && v < 0x80 ? v : -1;
}

static void ref_byte(struct sg_url_extractor *ex, unsigned char c)
{
	int hex, v;

	if (!ex->ref_len) {
		if (c == '&')
			ex->ref[ex->ref_len++] = '&';
		else
			text_byte(ex, c);
		return;
	}
	if (ex->ref_len == 1) {
		if (c == '#') {
			ex->ref[ex->ref_len++] = '#';
			return;
		}
	} else {
		hex = ex->ref_len > 2 && (ex->ref[2] == 'x' || ex->ref[2] == 'X');
		if (ex->ref_len == 2 && (c == 'x' || c == 'X')) {
			ex->ref[ex->ref_len++] = (char)c;
			return;
		}
		if ((hex ? hex_value(c) >= 0 : (c >= '0' && c <= '9')) &&
		    ex->ref_len < sizeof(ex->ref) - 4) {
			/* leading zeros, which browsers skip, take no room */
			if (ex->ref_len == 3 + hex && ex->ref[ex->ref_len - 1] == '0')
				ex->ref_len--;
			ex->ref[ex->ref_len++] = (char)c;
			return;
		}
		v = ref_value(ex);
		if (v >= 0) {
			ex->ref_len = 0;
			text_byte(ex, (unsigned char)v);
			if (c == ';')
				return;
			ref_byte(ex, c);
			return;
		}
	}
	ref_flush(ex);
	ref_byte(ex, c);
}

/* In text, only these bytes can start anything: a character reference,
 * a scheme's ':', the '.' of "www.". */
static int starts_something(unsigned char c)
{
	return c == '&' || c == ':' || c == '.';
}

/* Eight bytes lowercased at once (ASCII A-Z only, as lower() does): a
 * byte's low 7 bits plus 0x3f carry into its top bit from 'A' up, plus
 * 0x25 from '[' up; neither sum leaves the byte. */
static inline uint64_t lower8(uint64_t x)
{
	const uint64_t low7 = 0x7f7f7f7f7f7f7f7fULL, top = 0x8080808080808080ULL;
	uint64_t h = x & low7;
	uint64_t upper = (h + 0x3f3f3f3f3f3f3f3fULL) & ~(h + 0x2525252525252525ULL) & ~x & top;

	return x | upper >> 2;
}

/* Text that starts nothing: only its last 8 bytes are remembered. */
static void skip_text(struct sg_url_extractor *ex, const unsigned char *p, size_t n)
{
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (n >= 8) {
		uint64_t x;

		/* read little-endian, the newest byte is the highest: swapped,
		 * it is the lowest, as recent keeps them */
		memcpy(&x, p + n - 8, 8);
		ex->recent = lower8(__builtin_bswap64(x));
		return;
	}
#else
	if (n >= 8) {
		p += n - 8;
		n = 8;
	}
#endif
	for (size_t i = 0; i < n; i++)
		ex->recent = ex->recent << 8 | lower(p[i]);
}

/*
 * Where text needs the state machine again. In text, with no character
 * reference open, a byte only shifts into recent unless it is '&', the
 * ':' of "http:" or "https:", or the '.' of "www.". Those are found here
 * from the bytes themselves, two bytes back: "tp:", "ps:", "ww." (any
 * case) or any '&'; what this lets through is checked exactly by
 * text_byte against recent. Looking back is only right where the two
 * bytes before were plain text fed in this same run (not decoded from a
 * reference, not the previous chunk's): the caller starts at the run's
 * third byte.
 */
static inline int maybe_starts(const unsigned char *q)
{
	unsigned char c = q[0], b1 = q[-1] | 0x20, b2 = q[-2] | 0x20;

	return c == '&' || (c == ':' && ((b1 == 'p' && b2 == 't') || (b1 == 's' && b2 == 'p'))) ||
	       (c == '.' && b1 == 'w' && b2 == 'w');
}

#ifdef __SSE2__
#include <emmintrin.h>

/*
 * The bytes of the 16 at p that may start something, as a mask: as
 * maybe_starts, with fewer operations a byte. The two bytes before are
 * taken by their sum, which a capital makes 0x20 less (two of them 0x40
 * less): "tp", "ps" and "ww" sum to 0xe4, 0xe3 and 0xee in lowercase, to
 * 0xa3..0xee in any case, and ORing in 0x60 brings each back to its
 * lowercase sum. So no URL is missed; the few other pairs with those
 * sums before a ':' or '.' ("ie.", "to:") go to text_byte, which tells
 * them apart. An '&' can be passed over when the next byte is seen and
 * is not '#': ref_byte would give it to text_byte as it is.
 */
static inline unsigned starts16(const unsigned char *p)
{
	__m128i c = _mm_loadu_si128((const __m128i *)p);
	__m128i next = _mm_loadu_si128((const __m128i *)(p + 1));
	__m128i pair = _mm_or_si128(_mm_add_epi8(_mm_loadu_si128((const __m128i *)(p - 1)),
						 _mm_loadu_si128((const __m128i *)(p - 2))),
				    _mm_set1_epi8(0x60));
	__m128i scheme = _mm_or_si128(_mm_cmpeq_epi8(pair, _mm_set1_epi8((char)('t' + 'p'))),
				      _mm_cmpeq_epi8(pair, _mm_set1_epi8((char)('p' + 's'))));
	__m128i www = _mm_cmpeq_epi8(pair, _mm_set1_epi8((char)('w' + 'w')));
	__m128i hit = _mm_or_si128(
		_mm_and_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('&')),
			      _mm_cmpeq_epi8(next, _mm_set1_epi8('#'))),
		_mm_or_si128(_mm_and_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8(':')), scheme),
			     _mm_and_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('.')), www)));

	return (unsigned)_mm_movemask_epi8(hit);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_FIND_START_AVX2 1

/* starts16 on 32 bytes, where the CPU has AVX2 (chosen at run time: the
 * build targets every x86-64); twice the bytes for the same operations.
 * 1 and *at the byte found, or 0 and *at where fewer than 33 are left. */
__attribute__((target("avx2"))) static int find_start_avx2(const unsigned char *p, size_t *at,
							   size_t n)
{
	size_t i = *at;

	for (; i + 33 <= n; i += 32) {
		__m256i c = _mm256_loadu_si256((const __m256i *)(p + i));
		__m256i next = _mm256_loadu_si256((const __m256i *)(p + i + 1));
		__m256i pair = _mm256_or_si256(
			_mm256_add_epi8(_mm256_loadu_si256((const __m256i *)(p + i - 1)),
					_mm256_loadu_si256((const __m256i *)(p + i - 2))),
			_mm256_set1_epi8(0x60));
		__m256i scheme = _mm256_or_si256(
			_mm256_cmpeq_epi8(pair, _mm256_set1_epi8((char)('t' + 'p'))),
			_mm256_cmpeq_epi8(pair, _mm256_set1_epi8((char)('p' + 's'))));
		__m256i www = _mm256_cmpeq_epi8(pair, _mm256_set1_epi8((char)('w' + 'w')));
		__m256i hit = _mm256_or_si256(
			_mm256_and_si256(_mm256_cmpeq_epi8(c, _mm256_set1_epi8('&')),
					 _mm256_cmpeq_epi8(next, _mm256_set1_epi8('#'))),
			_mm256_or_si256(
				_mm256_and_si256(_mm256_cmpeq_epi8(c, _mm256_set1_epi8(':')), scheme),
				_mm256_and_si256(_mm256_cmpeq_epi8(c, _mm256_set1_epi8('.')), www)));
		unsigned mask = (unsigned)_mm256_movemask_epi8(hit);

		if (mask) {
			*at = i + (size_t)__builtin_ctz(mask);
			return 1;
		}
	}
	*at = i;
	return 0;
}
#endif

static size_t find_start(const unsigned char *p, size_t i, size_t n)
{
#ifdef HAVE_FIND_START_AVX2
	if (n - i >= 64 && __builtin_cpu_supports("avx2") && find_start_avx2(p, &i, n))
		return i;
#endif
	/* 32 bytes a round, each with the two before it (i >= 2) and
	 * the one after it */
	for (; i + 33 <= n; i += 32) {
		unsigned mask = starts16(p + i) | starts16(p + i + 16) << 16;

		if (mask)
			return i + (size_t)__builtin_ctz(mask);
	}
	for (; i + 17 <= n; i += 16) {
		unsigned mask = starts16(p + i);

		if (mask)
			return i + (size_t)__builtin_ctz(mask);
	}
	for (; i < n; i++)
		if (maybe_starts(p + i))
			return i;
	return n;
}
#else
static size_t find_start(const unsigned char *p, size_t i, size_t n)
{
	for (; i < n; i++)
		if (maybe_starts(p + i))
			return i;
	return n;
}
#endif

/* A byte that only goes on a host's name: what host_byte appends with
 * nothing else to do (not '%', '@', '[', ':' or what ends an authority). */
static const unsigned char plain_host[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1,
	['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, [0x80 ... 0xff] = 1,
};

/* The run of plain name bytes in a host being collected, as
 * ref_byte -> text_byte -> authority_byte -> host_byte -> host_append
 * would take them one by one (recent shifted, the name lowercased and
 * appended while there is room, overlong once there is not); returns how
 * many it took. */
static size_t host_run(struct sg_url_extractor *ex, const unsigned char *p, size_t n)
{
	size_t run = 0, take, i = 0;
	char *to = ex->host + ex->host_len;

	while (run < n && plain_host[p[run]])
		run++;
	take = sizeof(ex->host) - ex->host_len;
	if (take > run)
		take = run;
	for (; i + 8 <= take; i += 8) {
		uint64_t x;

		memcpy(&x, p + i, 8);
		x = lower8(x);
		memcpy(to + i, &x, 8);
	}
	for (; i < take; i++)
		to[i] = (char)lower(p[i]);
	ex->host_len += take;
	if (take < run)
		ex->overlong = 1;
	skip_text(ex, p, run);
	return run;
}

void sg_url_extract(struct sg_url_extractor *ex, const char *data, size_t n)
{
	const unsigned char *p = (const unsigned char *)data;

	for (size_t i = 0; i < n;) {
		if (ex->ref_len) {
			ref_byte(ex, p[i++]);
		} else if (ex->state == IN_TEXT) {
			size_t j = i;

			/* the run's first two bytes look back at what recent
			 * holds: only their own value can tell them apart */
			while (j < n && j < i + 2 && !starts_something(p[j]))
				j++;
			if (j == i + 2)
				j = find_start(p, j, n);
			skip_text(ex, p + i, j - i);
			i = j;
			if (i < n)
				ref_byte(ex, p[i++]);
		} else if (plain_host[p[i]] && ex->state == IN_AUTHORITY &&
			   ex->host_state == HOST_COLLECTING && !ex->escape && !ex->in_brackets &&
			   !ex->split_at) {
			i += host_run(ex, p + i, n - i);
		} else {
			ref_byte(ex, p[i++]);
		}
	}
}

void sg_url_extract_end(struct sg_url_extractor *ex)
{
	int v = ex->ref_len > 2 ? ref_value(ex) : -1;

	if (v >= 0) {
		ex->ref_len = 0;
		text_byte(ex, (unsigned char)v);
	}
	ref_flush(ex);
	if (ex->state == IN_AUTHORITY)
		url_end(ex);
	ex->state = IN_TEXT;
	ex->recent = 0;
}
