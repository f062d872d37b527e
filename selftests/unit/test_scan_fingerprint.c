/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_fingerprint.c - body fingerprints (scan/fingerprint.c): the
 * same mailing with other names, numbers, tracking links and addresses is
 * near-identical, unrelated bodies are not; the normalisation rules one by
 * one; feeding in chunks of any size gives the same signature; hostile
 * bodies (a megabyte-long word, an endless host, binary noise) end in
 * bounded memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fingerprint.h"
#include "keyhash.h"
#include "test.h"

static const char mailing[] =
	"Dear %s,\n\nThank you for being a loyal customer of Acme Outdoor Supplies. This month "
	"we are celebrating our %dth anniversary, and we have prepared a selection of offers "
	"just for you. Our new collection of hiking boots, waterproof jackets and lightweight "
	"tents has arrived in stores and online. As a member of our club you get early access "
	"to the sale, which starts on %s and runs for one week only.\n\nYour member number is "
	"%s. Show it at the till or enter it at checkout to receive your discount. Browse the "
	"collection here: <a href=\"https://click.news.acme-outdoor.example/track/%s?u=%s\">"
	"our new collection</a>\n\nWe also invite you to our workshop on basic mountain "
	"navigation, held every Saturday morning in our flagship store. Places are limited, "
	"so please book early by replying to this message or calling %s.\n\nIf you no longer "
	"wish to receive these emails, write to %s or unsubscribe at any time: "
	"https://list.acme-outdoor.example/unsub?e=%s\n\nKind regards,\nThe Acme Outdoor team\n";

static const char unrelated_a[] =
	"Hi Tom, the minutes of yesterday's planning meeting are attached. We agreed to move "
	"the release of the billing module to the second week of the quarter so that the "
	"migration scripts can be reviewed by the database team first. Please check that your "
	"action items are listed correctly and tell me by Friday if anything is missing. The "
	"next meeting is in the small room on the third floor, bring the draft of the budget.";

static const char unrelated_b[] =
	"URGENT: your mailbox storage is almost full and incoming messages will be rejected "
	"unless you verify your account within twenty four hours. Log in with your password "
	"through the secure portal below to keep your messages and avoid permanent deletion "
	"of your data. This is an automated notice from the administrator, do not reply.";

static void fingerprint_in_chunks(const char *text, size_t len, size_t chunk,
				  struct sg_fingerprint *fp)
{
	struct sg_fingerprint_ctx ctx;

	sg_fingerprint_begin(&ctx);
	for (size_t off = 0; off < len; off += chunk)
		sg_fingerprint_feed(&ctx, text + off, len - off < chunk ? len - off : chunk);
	sg_fingerprint_end(&ctx, fp);
}

static void fingerprint(const char *text, struct sg_fingerprint *fp)
{
	fingerprint_in_chunks(text, strlen(text), strlen(text) + 1, fp);
}

static void personalised(char *buf, size_t len, const char *name, int n, const char *date,
			 const char *member, const char *token, const char *phone, const char *email)
{
	snprintf(buf, len, mailing, name, n, date, member, token, member, phone, email, email);
}

static void test_same_mailing_other_names(void)
{
	char a[4096], b[4096], c[4096];
	struct sg_fingerprint fa, fb, fc, fu, fv;

	personalised(a, sizeof(a), "John Smith", 25, "12 May", "AC-77812", "x8Fq2LpZ",
		     "+44 20 7946 0018", "john.smith@example.com");
	personalised(b, sizeof(b), "Maria Garcia", 26, "3 June", "AC-10293", "Qz71kPmw",
		     "+34 91 123 4567", "mgarcia@mail.example.org");
	personalised(c, sizeof(c), "Li", 1, "1 January", "9", "a", "0", "li@example.net");
	fingerprint(a, &fa);
	fingerprint(b, &fb);
	fingerprint(c, &fc);
	fingerprint(unrelated_a, &fu);
	fingerprint(unrelated_b, &fv);
	printf("# similarity: mailing to two people %u%%, to a third %u%%, mailing vs a memo %u%%, "
	       "memo vs phishing %u%%\n", sg_fingerprint_similarity(&fa, &fb),
	       sg_fingerprint_similarity(&fa, &fc), sg_fingerprint_similarity(&fa, &fu),
	       sg_fingerprint_similarity(&fu, &fv));
	ASSERT_TRUE(fa.shingles > 100, "fingerprint: a 150-word body has over 100 shingles");
	ASSERT_TRUE(sg_fingerprint_similarity(&fa, &fb) >= 85,
		    "fingerprint: the same mailing with other names, numbers and links is >= 85% alike");
	ASSERT_TRUE(sg_fingerprint_similarity(&fa, &fc) >= 85,
		    "fingerprint: and with a one-word name and short numbers");
	ASSERT_TRUE(sg_fingerprint_similarity(&fa, &fu) <= 15,
		    "fingerprint: the mailing and an unrelated memo are <= 15% alike");
	ASSERT_TRUE(sg_fingerprint_similarity(&fu, &fv) <= 15,
		    "fingerprint: a memo and a phishing text are <= 15% alike");
	ASSERT_EQ(sg_fingerprint_similarity(&fa, &fa), 100, "fingerprint: a body is 100% itself");
}

static void same(const char *x, const char *y, const char *name)
{
	struct sg_fingerprint fx, fy;

	fingerprint(x, &fx);
	fingerprint(y, &fy);
	ASSERT_EQ(sg_fingerprint_digest(&fx), sg_fingerprint_digest(&fy), name);
}

static void differ(const char *x, const char *y, const char *name)
{
	struct sg_fingerprint fx, fy;

	fingerprint(x, &fx);
	fingerprint(y, &fy);
	ASSERT_NEQ(sg_fingerprint_digest(&fx), sg_fingerprint_digest(&fy), name);
}

static void test_normalisation(void)
{
	same("Hello,   WORLD!\r\n\tHow are   you?", "hello world how are you",
	     "normalise: case, punctuation and whitespace do not count");
	same("order 12345 shipped on 2024-05-01, total 99.95 EUR",
	     "order 7 shipped on 1999-12-31, total 1234.00 EUR",
	     "normalise: numbers, dates and amounts are all '#'");
	same("your code is A7F3K9 today", "your code is ZZ12 today",
	     "normalise: a word with a digit in it is '#'");
	same("click https://t.news.example.com/a/b?c=1&d=2#x now",
	     "click http://www.example.com/zzz now",
	     "normalise: a URL is its host's last two labels");
	same("see www.example.com/path?id=1, thanks", "see https://example.com, thanks",
	     "normalise: 'www.' starts a URL; a comma after it ends its path at a space");
	same("go to http://192.0.2.7/x now", "go to https://203.0.113.9:8080/y now",
	     "normalise: an address literal host is 'u:#'");
	same("write to jdoe@example.com today", "write to mary@mail.example.org today",
	     "normalise: an e-mail address is '@'");
	same("an <b>offer</b> for you", "an b offer b for you",
	     "normalise: markup's brackets separate words, its names are words");
	differ("click https://example.com now", "click https://example.org now",
	       "normalise: URLs to other domains differ");
	differ("meet me at the station", "meet me at the airport",
	       "normalise: other words differ");
	same("see http: the word", "see http the word",
	     "normalise: 'http:' not followed by // is only a word");
}

static void test_short_and_empty(void)
{
	struct sg_fingerprint f, g;

	fingerprint("", &f);
	ASSERT_EQ(f.shingles, 0, "fingerprint: an empty body has no shingles");
	fingerprint(" \r\n\t ,;!? ", &g);
	ASSERT_EQ(g.shingles, 0, "fingerprint: punctuation and spaces alone have none");
	ASSERT_EQ(sg_fingerprint_similarity(&f, &g), 0, "fingerprint: empty bodies are not alike");
	fingerprint("Hi there", &f);
	ASSERT_EQ(f.shingles, 1, "fingerprint: two words make one shingle");
	fingerprint("hi there", &g);
	ASSERT_EQ(sg_fingerprint_similarity(&f, &g), 100, "fingerprint: and it is found again");
}

static void test_chunking(void)
{
	char body[4096];
	struct sg_fingerprint whole, part;
	static const size_t chunks[] = { 1, 2, 3, 7, 64, 1000 };
	int all_same = 1;
	size_t len;

	personalised(body, sizeof(body), "John Smith", 25, "12 May", "AC-77812", "x8Fq2LpZ",
		     "+44 20 7946 0018", "john.smith@example.com");
	len = strlen(body);
	fingerprint(body, &whole);
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		fingerprint_in_chunks(body, len, chunks[i], &part);
		all_same &= !memcmp(&whole, &part, sizeof(whole));
	}
	ASSERT_TRUE(all_same, "fingerprint: chunks of 1, 2, 3, 7, 64 and 1000 bytes give the same signature");
	/* chunks of random sizes */
	srand(7);
	{
		struct sg_fingerprint_ctx ctx;
		size_t off = 0;

		sg_fingerprint_begin(&ctx);
		while (off < len) {
			size_t n = (size_t)(rand() % 40);

			if (n > len - off)
				n = len - off;
			sg_fingerprint_feed(&ctx, body + off, n);
			off += n;
		}
		sg_fingerprint_end(&ctx, &part);
	}
	ASSERT_TRUE(!memcmp(&whole, &part, sizeof(whole)),
		    "fingerprint: chunks of random sizes (0 included) give the same signature");
}

static void test_hostile(void)
{
	const size_t big = 1 << 20;
	char *text = malloc(big);
	struct sg_fingerprint f;

	if (!ASSERT_TRUE(text != NULL, "hostile: buffer"))
		return;
	ASSERT_TRUE(sizeof(struct sg_fingerprint_ctx) <= 512,
		    "fingerprint: a message's state is at most 512 bytes");
	memset(text, 'a', big);
	fingerprint_in_chunks(text, big, 4096, &f);
	ASSERT_EQ(f.shingles, 1, "hostile: a 1 MiB word is one word");
	memcpy(text, "http://", 7);
	for (size_t i = 7; i + 1 < big; i += 2)
		memcpy(text + i, "a.", 2);
	fingerprint_in_chunks(text, big, 4096, &f);
	ASSERT_EQ(f.shingles, 1, "hostile: a URL with a 1 MiB host is one word");
	srand(11);
	for (size_t i = 0; i < big; i++)
		text[i] = (char)(rand() & 0xff);
	fingerprint_in_chunks(text, big, 1500, &f);
	ASSERT_TRUE(f.shingles > 1000, "hostile: 1 MiB of noise is read to its end");
	for (size_t i = 0; i < big; i++)
		text[i] = "@:/.w h"[i % 7];
	fingerprint_in_chunks(text, big, 333, &f);
	ASSERT_TRUE(1, "hostile: a body of separators and URL starts ends");
	free(text);
}

/*
 * The reference: the fingerprint as it was before its fast path (the
 * byte-at-a-time machine of scan/fingerprint.c, every byte through one
 * switch), kept here so that the fast one can be held to the same
 * signature for every text, whatever its chunks.
 */
enum { R_BETWEEN, R_WORD, R_SCHEME, R_HOST, R_URL_REST, R_MAIL_DOMAIN };

struct ref_fp {
	struct sg_fingerprint fp;
	uint64_t recent[2], word_hash;
	uint32_t words, word_len, host_len;
	int state, word_has_digit, slashes;
	char word_head[6], host[SG_FP_HOST_TAIL];
};

#define R_OFFSET 0xcbf29ce484222325ULL
#define R_PRIME 0x100000001b3ULL

static int r_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

static int r_host_byte(unsigned char c)
{
	return r_word_byte(c) || c == '.' || c == '-' || c == '_';
}

static int r_ends_url(unsigned char c)
{
	return c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == ')' ||
	       c == ']' || c == 0x7f;
}

static unsigned char r_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static uint64_t r_hash(const char *s, size_t n)
{
	uint64_t h = R_OFFSET;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * R_PRIME;
	return h;
}

static uint64_t r_rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t r_shingle(uint64_t a, uint64_t b, uint64_t c)
{
	return sg_mix64(r_rotl(a, 42) ^ r_rotl(b, 21) ^ c);
}

static void r_add(struct ref_fp *r, uint64_t h)
{
	uint32_t bin = (uint32_t)(h >> 58);

	if ((uint32_t)h < r->fp.bins[bin])
		r->fp.bins[bin] = (uint32_t)h;
	if (r->fp.shingles != UINT32_MAX)
		r->fp.shingles++;
}

static void r_emit(struct ref_fp *r, uint64_t h)
{
	h = sg_mix64(h);
	if (r->words >= 2)
		r_add(r, r_shingle(r->recent[0], r->recent[1], h));
	r->recent[0] = r->recent[1];
	r->recent[1] = h;
	if (r->words != UINT32_MAX)
		r->words++;
}

static int r_word_is(const struct ref_fp *r, const char *w)
{
	return r->word_len == strlen(w) && !memcmp(r->word_head, w, strlen(w));
}

static void r_emit_host(struct ref_fp *r)
{
	const char *h = r->host;
	uint32_t n = r->host_len, start, dots = 0, letters = 0;
	uint64_t hash;

	while (n && (h[n - 1] == '.' || h[n - 1] == '-'))
		n--;
	for (start = n; start > 0; start--)
		if (h[start - 1] == '.' && ++dots == 2)
			break;
	for (uint32_t i = start; i < n; i++)
		letters += !(h[i] >= '0' && h[i] <= '9') && h[i] != '.' && h[i] != '-';
	if (!letters) {
		r_emit(r, r_hash("u:#", 3));
		return;
	}
	hash = r_hash("u:", 2);
	for (uint32_t i = start; i < n; i++)
		hash = (hash ^ (unsigned char)h[i]) * R_PRIME;
	r_emit(r, hash);
}

static void r_byte(struct ref_fp *r, unsigned char c)
{
	for (;;) {
		switch (r->state) {
		case R_BETWEEN:
			if (r_word_byte(c)) {
				c = r_lower(c);
				r->word_hash = (R_OFFSET ^ c) * R_PRIME;
				r->word_len = 1;
				r->word_head[0] = (char)c;
				r->word_has_digit = c >= '0' && c <= '9';
				r->state = R_WORD;
			}
			return;
		case R_WORD:
			if (r_word_byte(c)) {
				c = r_lower(c);
				r->word_hash = (r->word_hash ^ c) * R_PRIME;
				if (r->word_len < sizeof(r->word_head))
					r->word_head[r->word_len] = (char)c;
				if (r->word_len != UINT32_MAX)
					r->word_len++;
				r->word_has_digit |= c >= '0' && c <= '9';
				return;
			}
			if (c == '@') {
				r->state = R_MAIL_DOMAIN;
				return;
			}
			if (c == ':' && (r_word_is(r, "http") || r_word_is(r, "https"))) {
				r->slashes = 0;
				r->state = R_SCHEME;
				return;
			}
			if (c == '.' && r_word_is(r, "www")) {
				r->host_len = 0;
				r->state = R_HOST;
				return;
			}
			r_emit(r, r->word_has_digit ? r_hash("#", 1) : r->word_hash);
			r->state = R_BETWEEN;
			continue;
		case R_SCHEME:
			if (c == '/' && r->slashes < 2) {
				if (++r->slashes == 2) {
					r->host_len = 0;
					r->state = R_HOST;
				}
				return;
			}
			r_emit(r, r->word_hash);
			r->state = R_BETWEEN;
			continue;
		case R_HOST:
			if (r_host_byte(c)) {
				if (r->host_len == SG_FP_HOST_TAIL) {
					memmove(r->host, r->host + SG_FP_HOST_TAIL / 2, SG_FP_HOST_TAIL / 2);
					r->host_len = SG_FP_HOST_TAIL / 2;
				}
				r->host[r->host_len++] = (char)r_lower(c);
				return;
			}
			r_emit_host(r);
			r->state = r_ends_url(c) ? R_BETWEEN : R_URL_REST;
			if (r->state == R_URL_REST)
				return;
			continue;
		case R_URL_REST:
			if (!r_ends_url(c))
				return;
			r->state = R_BETWEEN;
			continue;
		case R_MAIL_DOMAIN:
			if (r_host_byte(c))
				return;
			r_emit(r, r_hash("@", 1));
			r->state = R_BETWEEN;
			continue;
		}
	}
}

static void reference(const char *text, size_t n, struct sg_fingerprint *out)
{
	struct ref_fp r;

	memset(&r, 0, sizeof(r));
	memset(r.fp.bins, 0xff, sizeof(r.fp.bins));
	for (size_t i = 0; i < n; i++)
		r_byte(&r, (unsigned char)text[i]);
	r_byte(&r, ' ');
	if (r.words > 0 && r.words < 3)
		r_add(&r, r_shingle(0, r.words > 1 ? r.recent[0] : 0, r.recent[1]));
	if (r.fp.shingles) {
		uint32_t src[SG_FP_BINS];

		memcpy(src, r.fp.bins, sizeof(src));
		for (uint32_t j = 0; j < SG_FP_BINS; j++) {
			if (src[j] != UINT32_MAX)
				continue;
			for (uint32_t d = 1; d < SG_FP_BINS; d++) {
				uint32_t v = src[(j + d) % SG_FP_BINS];

				if (v != UINT32_MAX) {
					r.fp.bins[j] = (uint32_t)sg_mix64(((uint64_t)v << 8) | d);
					break;
				}
			}
		}
	} else {
		memset(r.fp.bins, 0, sizeof(r.fp.bins));
	}
	*out = r.fp;
}

/* What mail text holds, and what the fast path must tell apart: words of
 * every length (1 to 8 bytes hashed at once, 9 to 16, longer, a window's
 * 64 and more), digits, capitals, UTF-8, URLs and their look-alikes,
 * hosts up to long ones, addresses, markup, punctuation. */
static const char *const pieces[] = {
	" ", "  ", "\n", "\r\n", "\t", ", ", ". ", "; ", "!", "?", "(", ")", "\"", "'", "<", ">",
	"[", "]", "-", "_", "/", "=", "&", "#", "%", "+", "*", ":", ".", "@", "\x7f", "\x01",
	"a", "I", "to", "the", "Offer", "OFFER", "customer", "abcdefgh", "abcdefghi",
	"loyalty", "subscription", "unsubscribe", "internationalisation",
	"pneumonoultramicroscopicsilicovolcanoconiosis",
	"antidisestablishmentarianismantidisestablishmentarianism",
	"12", "2024-05-01", "99.95", "A7F3K9", "x8Fq2LpZ", "ZZ12", "0",
	"b\xc3\xbc" "cher", "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88", "na\xc3\xafve", "\xff\xfe",
	"http", "HTTP", "https", "HtTpS", "www", "WWW", "wwww", "ww", "htt", "httpss",
	"http:", "https:", "http:/", "https://", "http://", "www.", "WWW.", "http:x",
	"https://click.news.example.com/t/8Xk2?u=9", "http://www.example.com/zzz",
	"www.example.com/path?id=1", "http://192.0.2.7/x", "https://203.0.113.9:8080/y",
	"https://example.org", "http://a.b.c.d.e.f.g.h.example.co.uk/", "http://",
	"https://xn--bcher-kva.example/", "http://[2001:db8::1]/", "www.-.-.",
	"http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example/",
	"jdoe@example.com", "mary@mail.example.org", "@", "a@b", "x@", "@@",
	"<a href=\"https://t.example.com/c/12?u=3\">link</a>", "<b>", "</b>", "&amp;",
};

static size_t random_text(char *text, size_t cap, size_t want)
{
	size_t n = 0;

	while (n < want) {
		const char *p;
		size_t len;

		if (rand() % 16 == 0) {
			text[n++] = (char)(rand() & 0xff);
			if (n >= cap)
				break;
			continue;
		}
		p = pieces[(size_t)rand() % (sizeof(pieces) / sizeof(pieces[0]))];
		len = strlen(p);
		if (n + len > cap)
			break;
		memcpy(text + n, p, len);
		n += len;
	}
	return n;
}

static void test_reference(void)
{
	static char text[70000];
	char body[4096], name[128];
	struct sg_fingerprint want, got;
	int same = 1, chunked = 1;
	size_t n;

	/* the corpus: the mailing, the other texts here, random mixes of
	 * what mail holds, long and short */
	personalised(body, sizeof(body), "John Smith", 25, "12 May", "AC-77812", "x8Fq2LpZ",
		     "+44 20 7946 0018", "john.smith@example.com");
	reference(body, strlen(body), &want);
	fingerprint(body, &got);
	ASSERT_TRUE(!memcmp(&want, &got, sizeof(want)), "reference: the mailing's signature is the old one's");
	reference(unrelated_a, strlen(unrelated_a), &want);
	fingerprint(unrelated_a, &got);
	same &= !memcmp(&want, &got, sizeof(want));
	reference(unrelated_b, strlen(unrelated_b), &want);
	fingerprint(unrelated_b, &got);
	same &= !memcmp(&want, &got, sizeof(want));
	ASSERT_TRUE(same, "reference: the memo's and the phishing text's are too");
	srand(2024);
	for (int i = 0; i < 3000 && same && chunked; i++) {
		size_t want_len = i % 50 == 0 ? sizeof(text) - 1 : (size_t)rand() % (i % 3 ? 300 : 5000);

		n = random_text(text, sizeof(text), want_len);
		reference(text, n, &want);
		fingerprint_in_chunks(text, n, n ? n : 1, &got);
		if (memcmp(&want, &got, sizeof(want)) != 0) {
			printf("# text %d (%zu bytes) fed whole differs\n", i, n);
			same = 0;
		}
		fingerprint_in_chunks(text, n, 1 + (size_t)rand() % 100, &got);
		if (memcmp(&want, &got, sizeof(want)) != 0) {
			printf("# text %d (%zu bytes) fed in chunks differs\n", i, n);
			chunked = 0;
		}
	}
	ASSERT_TRUE(same, "reference: 3,000 texts of up to 70,000 bytes, fed whole: the old signatures");
	ASSERT_TRUE(chunked, "reference: and fed in chunks of 1 to 100 bytes");
	/* every length of a word at every place of a 64-byte window, before
	 * each separator the fast path looks at */
	same = 1;
	for (size_t len = 1; len <= 70 && same; len++) {
		for (size_t at = 0; at < 64 && same; at++) {
			static const char seps[] = " .:@/";

			for (size_t k = 0; k < sizeof(seps) - 1; k++) {
				n = 0;
				for (size_t i = 0; i < at; i++)
					text[n++] = i % 3 ? 'q' : ' ';
				for (size_t i = 0; i < len; i++)
					text[n++] = "wWwhttps7Xy"[(i + at) % 11];
				text[n++] = seps[k];
				n += (size_t)snprintf(text + n, 64, "//Host.example/p x www.y.z end");
				reference(text, n, &want);
				fingerprint_in_chunks(text, n, n, &got);
				same &= !memcmp(&want, &got, sizeof(want));
			}
		}
	}
	snprintf(name, sizeof(name), "reference: words of 1 to 70 bytes at every offset of a window");
	ASSERT_TRUE(same, name);
}

int main(void)
{
	test_same_mailing_other_names();
	test_normalisation();
	test_short_and_empty();
	test_chunking();
	test_hostile();
	test_reference();
	return test_exit_status();
}
