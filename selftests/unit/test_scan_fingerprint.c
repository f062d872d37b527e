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

int main(void)
{
	test_same_mailing_other_names();
	test_normalisation();
	test_short_and_empty();
	test_chunking();
	test_hostile();
	return test_exit_status();
}
