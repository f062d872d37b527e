/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_bulk.c - the table of recent bodies (scan/bulk.c): a
 * newsletter (1 sender, 2,000 recipients in 50 domains, one body
 * personalised) against an outbreak (5 senders, 40 domains each, the same
 * body) against unrelated bodies and a CMS's stock notice (many senders,
 * one domain each); counts leave with the window; a message noted again
 * under a sub-identity is not counted twice; senders past the tracked
 * ones are still counted; a flood of unique bodies evicts one-offs, not a
 * body seen twice, and never grows the table. */
#include <stdio.h>
#include <string.h>
#include "bulk.h"
#include "keyhash.h"
#include "test.h"

#define NS 1000000000ULL
#define MIN (60 * NS)
#define T0 (1000 * 3600 * NS)

static const char *const words[] = {
	"account", "after", "again", "agree", "answer", "apple", "around", "basket", "before",
	"better", "bicycle", "bridge", "bright", "button", "camera", "candle", "carpet", "castle",
	"change", "cheese", "circle", "coffee", "copper", "corner", "cotton", "country", "dinner",
	"doctor", "dragon", "engine", "evening", "family", "father", "finger", "flower", "forest",
	"friend", "garden", "ginger", "golden", "guitar", "hammer", "harbor", "honey", "island",
	"jacket", "kettle", "ladder", "lemon", "letter", "listen", "little", "market", "meadow",
	"mirror", "monkey", "morning", "mother", "museum", "needle", "number", "orange", "packet",
	"paper", "parrot", "pencil", "pepper", "picture", "pillow", "planet", "pocket", "potato",
	"rabbit", "record", "river", "rocket", "saddle", "school", "silver", "simple", "sister",
	"spring", "square", "summer", "sunset", "table", "teacher", "ticket", "tomato", "travel",
	"turtle", "valley", "velvet", "village", "violin", "walnut", "window", "winter", "yellow",
};

/* A body of 80 words drawn by a generator seeded with `seed`. */
static void word_salad(char *buf, size_t len, uint64_t seed)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < 80 && used < len; i++) {
		seed = sg_mix64(seed + 1);
		used += (size_t)snprintf(buf + used, len - used, "%s ",
					 words[seed % (sizeof(words) / sizeof(words[0]))]);
	}
}

/* The mailing body 7 with the recipient's name and tracking link. */
static void mailing(struct sg_fingerprint *fp, uint32_t recipient)
{
	char body[2048], *p;
	struct sg_fingerprint_ctx ctx;

	word_salad(body, 1500, 7);
	p = body + strlen(body);
	snprintf(p, sizeof(body) - (size_t)(p - body),
		 " dear reader%c%c, see https://t.example.com/c/%u?u=%u", 'a' + recipient % 26,
		 'a' + recipient / 26 % 26, recipient * 7919, recipient);
	sg_fingerprint_begin(&ctx);
	sg_fingerprint_feed(&ctx, body, strlen(body));
	sg_fingerprint_end(&ctx, fp);
}

static void salad(struct sg_fingerprint *fp, uint64_t seed)
{
	char body[1600];
	struct sg_fingerprint_ctx ctx;

	word_salad(body, sizeof(body), seed);
	sg_fingerprint_begin(&ctx);
	sg_fingerprint_feed(&ctx, body, strlen(body));
	sg_fingerprint_end(&ctx, fp);
}

static uint64_t domain(uint32_t d)
{
	return sg_mix64(0xd0 + d) | 1;
}

static uint64_t sender(uint32_t s)
{
	return sg_mix64(0x5e4d + s);
}

static int send(struct sg_bulk *t, const struct sg_fingerprint *fp, uint64_t now, uint32_t s,
		uint32_t d, struct sg_bulk_ref *ref)
{
	uint64_t dom = domain(d);
	struct sg_bulk_message m = { .sender = sender(s), .domains = &dom, .n_domains = 1,
				     .rcpts = 1, .count_message = 1 };

	return sg_bulk_note(t, fp, now, &m, ref);
}

static struct sg_bulk *table(uint32_t capacity)
{
	struct sg_bulk_limits l;

	sg_bulk_limits_default(&l);
	l.capacity = capacity;
	return sg_bulk_new(&l);
}

static void test_newsletter(void)
{
	struct sg_bulk *t = table(1024);
	struct sg_bulk_ref ref, first = { 0, 0 };
	struct sg_bulk_view v;
	struct sg_fingerprint fp;
	int one_entry = 1;
	uint64_t last = 0;

	for (uint32_t i = 0; i < 2000; i++) {
		last = T0 + i * NS / 10;	/* 10 a second */
		mailing(&fp, i);
		send(t, &fp, last, 1, i % 50, &ref);
		if (!i)
			first = ref;
		one_entry &= ref.entry == first.entry && ref.generation == first.generation;
	}
	ASSERT_TRUE(one_entry, "newsletter: 2,000 personalised copies share one entry");
	sg_bulk_view(t, ref, sender(1), last, 10, &v);
	printf("# newsletter: %u messages, %u domains, %u senders, %u spreading; its sender: %u "
	       "messages to %u domains\n", v.messages, v.domains, v.senders, v.spreading_senders,
	       v.sender_messages, v.sender_domains);
	ASSERT_EQ(v.messages, 2000, "newsletter: 2,000 messages");
	ASSERT_EQ(v.rcpts, 2000, "newsletter: 2,000 recipients");
	ASSERT_EQ(v.senders, 1, "newsletter: 1 sender");
	ASSERT_EQ(v.spreading_senders, 1, "newsletter: that sender spreads it (>= 10 domains)");
	ASSERT_TRUE(v.domains >= 40 && v.domains <= 60, "newsletter: about 50 domains (+-20%)");
	ASSERT_TRUE(v.sender_tracked && v.sender_messages == 2000,
		    "newsletter: its sender's own count is 2,000");
	ASSERT_TRUE(v.sender_domains >= 35 && v.sender_domains <= 65,
		    "newsletter: its sender's own domains about 50 (+-30%)");
	sg_bulk_view(t, ref, sender(1), last + 20 * MIN, 10, &v);
	ASSERT_EQ(v.messages, 2000, "newsletter: 20 minutes later all still counted");
	sg_bulk_view(t, ref, sender(1), last + 61 * MIN, 10, &v);
	ASSERT_EQ(v.messages, 0, "newsletter: an hour later its counts have left the window");
	ASSERT_EQ(v.domains, 0, "newsletter: and its domains");
	sg_bulk_free(t);
}

static void outbreak(int same_domains)
{
	struct sg_bulk *t = table(1024);
	struct sg_bulk_ref ref;
	struct sg_bulk_view v;
	struct sg_fingerprint fp;
	int found;

	for (uint32_t j = 0; j < 40; j++)
		for (uint32_t s = 0; s < 5; s++) {
			mailing(&fp, s * 40 + j);
			send(t, &fp, T0 + (s * 40 + j) * NS, 100 + s,
			     same_domains ? j : 1000 * s + j, &ref);
		}
	found = !sg_bulk_view(t, ref, sender(100), T0 + 200 * NS, 10, &v);
	printf("# outbreak (%s domains): %u messages, %u domains, %u senders, %u spreading\n",
	       same_domains ? "the same" : "other", v.messages, v.domains, v.senders,
	       v.spreading_senders);
	ASSERT_TRUE(found, same_domains ? "outbreak to the same 40 domains: one entry"
					: "outbreak to 40 domains each: one entry");
	ASSERT_EQ(v.senders, 5, same_domains ? "outbreak to the same 40 domains: 5 senders"
					     : "outbreak to 40 domains each: 5 senders");
	ASSERT_EQ(v.spreading_senders, 5, same_domains ?
		  "outbreak to the same 40 domains: all 5 spreading it" :
		  "outbreak to 40 domains each: all 5 spreading it");
	if (same_domains)
		ASSERT_TRUE(v.domains >= 30 && v.domains <= 50,
			    "outbreak to the same 40 domains: about 40 domains in all");
	else
		ASSERT_TRUE(v.domains >= 150 && v.domains <= 250,
			    "outbreak to 40 domains each: about 200 domains in all");
	ASSERT_EQ(v.sender_messages, 40, "outbreak: each sender's own count is 40");
	sg_bulk_free(t);
}

static void test_unrelated(void)
{
	struct sg_bulk *t = table(1024);
	struct sg_bulk_ref refs[100];
	struct sg_bulk_view v;
	struct sg_fingerprint fp;
	int distinct = 1, alone = 1;

	for (uint32_t i = 0; i < 100; i++) {
		salad(&fp, 1000 + i);
		send(t, &fp, T0 + i * NS, 1, i, &refs[i]);
	}
	for (uint32_t i = 0; i < 100; i++) {
		for (uint32_t j = 0; j < i; j++)
			distinct &= refs[i].entry != refs[j].entry;
		sg_bulk_view(t, refs[i], sender(1), T0 + 100 * NS, 10, &v);
		alone &= v.messages == 1 && v.spreading_senders == 0;
	}
	ASSERT_TRUE(distinct, "unrelated: 100 unrelated bodies have 100 entries");
	ASSERT_TRUE(alone, "unrelated: each counts 1 message and nobody spreading it");
	sg_bulk_free(t);
}

static void test_stock_notice(void)
{
	struct sg_bulk *t = table(1024);
	struct sg_bulk_ref ref;
	struct sg_bulk_view v;
	struct sg_fingerprint fp;

	/* a CMS's "a new user registered" to each site's own admin */
	salad(&fp, 42);
	for (uint32_t s = 0; s < 30; s++)
		send(t, &fp, T0 + s * NS, 200 + s, 500 + s, &ref);
	sg_bulk_view(t, ref, sender(200), T0 + 30 * NS, 10, &v);
	ASSERT_TRUE(v.senders >= 24 && v.senders <= 36, "stock notice: about 30 senders");
	ASSERT_EQ(v.spreading_senders, 0, "stock notice: none of them spreading it");
	sg_bulk_free(t);
}

static void test_sub_identity_not_counted_twice(void)
{
	struct sg_bulk *t = table(64);
	struct sg_bulk_ref ref;
	struct sg_bulk_view v;
	struct sg_fingerprint fp;
	uint64_t dom = domain(1);
	struct sg_bulk_message again = { .sender = sender(1), .domains = &dom, .n_domains = 1,
					 .rcpts = 1, .count_message = 0 };

	salad(&fp, 9);
	send(t, &fp, T0, 1, 1, &ref);
	sg_bulk_note(t, &fp, T0, &again, &ref);
	sg_bulk_view(t, ref, sender(1), T0, 10, &v);
	ASSERT_EQ(v.messages, 1, "sub-identity: a message noted again is counted once");
	ASSERT_EQ(v.senders, 1, "sub-identity: and its sender once");
	sg_bulk_free(t);
}

static void test_more_senders_than_slots(void)
{
	struct sg_bulk *t = table(64);
	struct sg_bulk_ref ref;
	struct sg_bulk_view v;
	struct sg_fingerprint fp;

	salad(&fp, 10);
	for (uint32_t s = 0; s < 12; s++)
		for (uint32_t d = 0; d < 20; d++)
			send(t, &fp, T0 + (s * 20 + d) * NS, 300 + s, s * 100 + d, &ref);
	sg_bulk_view(t, ref, sender(311), T0 + 300 * NS, 10, &v);
	ASSERT_EQ(v.spreading_senders, SG_BULK_SENDER_SLOTS,
		  "12 senders: the first 8 keep their slots, all spreading");
	ASSERT_TRUE(v.senders >= 10 && v.senders <= 14, "12 senders: all 12 counted as senders");
	ASSERT_EQ(v.sender_tracked, 0, "12 senders: the 12th has no slot of its own");
	sg_bulk_free(t);
}

/* A sender's domains near the spreading threshold are counted exactly:
 * in 2,000 tries, each a new sender with its own domains, one to 10
 * domains spreads the body (a 32-register sketch alone missed 38% of
 * them), one to 9 never does; 6 domains in one half window and 6 in the
 * next, 2 of them the same, make 10; 40 domains read as about 40. */
static uint32_t sender_domains_after(uint32_t try, uint32_t n_first, uint32_t n_second,
				     uint32_t shared, uint32_t *spreading)
{
	struct sg_bulk *t = table(16);
	struct sg_bulk_ref ref;
	struct sg_bulk_view v = { 0 };
	struct sg_fingerprint fp;
	uint32_t s = 1000 + try, d0 = try * 100;

	salad(&fp, 20);
	for (uint32_t d = 0; d < n_first; d++)
		send(t, &fp, T0 + d * NS, s, d0 + d, &ref);
	/* the next half window: 30 minutes on */
	for (uint32_t d = 0; d < n_second; d++)
		send(t, &fp, T0 + 31 * MIN + d * NS, s, d0 + n_first - shared + d, &ref);
	sg_bulk_view(t, ref, sender(s), T0 + 32 * MIN, 10, &v);
	*spreading = v.spreading_senders;
	sg_bulk_free(t);
	return v.sender_domains;
}

static void test_spreading_threshold_exact(void)
{
	uint32_t at10 = 0, at9 = 0, exact10 = 0, exact9 = 0, spreading, n, lo = ~0u, hi = 0;
	uint32_t split_spreading;

	for (uint32_t try = 0; try < 2000; try++) {
		exact10 += sender_domains_after(try, 10, 0, 0, &spreading) == 10;
		at10 += spreading;
		exact9 += sender_domains_after(try, 9, 0, 0, &spreading) == 9;
		at9 += spreading;
	}
	printf("# threshold: 10 domains spread %u/2000 (%u read exactly), 9 domains %u/2000 "
	       "(%u exactly)\n", at10, exact10, at9, exact9);
	ASSERT_TRUE(at10 >= 1990, "threshold: a sender to 10 domains spreads the body (99.5%)");
	ASSERT_EQ(at9, 0, "threshold: a sender to 9 domains never does");
	ASSERT_TRUE(exact10 >= 1990 && exact9 >= 1990,
		    "threshold: 9 and 10 domains read exactly (99.5%; 16-bit hashes may meet)");
	n = sender_domains_after(7, 6, 6, 2, &split_spreading);
	ASSERT_EQ(n, 10, "threshold: 6 domains, then 6 in the next half (2 the same): 10");
	ASSERT_EQ(split_spreading, 1, "threshold: and the sender spreads the body");
	for (uint32_t try = 0; try < 200; try++) {
		n = sender_domains_after(try, 40, 0, 0, &spreading);
		lo = n < lo ? n : lo;
		hi = n > hi ? n : hi;
	}
	printf("# threshold: 40 domains read as %u to %u in 200 tries\n", lo, hi);
	ASSERT_TRUE(lo >= 17 && hi <= 80, "threshold: 40 domains read as more than the list holds");
	n = sender_domains_after(3, 17, 0, 0, &spreading);
	ASSERT_TRUE(n >= 17, "threshold: 17 domains, one past the list, read as 17 or more");
}

static void test_short_bodies_untracked(void)
{
	struct sg_bulk *t = table(64);
	struct sg_bulk_ref ref;
	struct sg_fingerprint_ctx ctx;
	struct sg_fingerprint fp;

	sg_fingerprint_begin(&ctx);
	sg_fingerprint_feed(&ctx, "thanks, see you", 15);
	sg_fingerprint_end(&ctx, &fp);
	ASSERT_EQ(send(t, &fp, T0, 1, 1, &ref), -1, "short body: 3 words are not tracked");
	ASSERT_EQ(ref.generation, 0, "short body: no entry given");
	sg_bulk_free(t);
}

static void test_flood_keeps_bulk(void)
{
	struct sg_bulk *t = table(64);
	size_t bytes = sg_bulk_bytes(t);
	struct sg_bulk_ref ref;
	struct sg_bulk_view v;
	struct sg_bulk_stats st;
	struct sg_fingerprint bulk, fp;

	mailing(&bulk, 1);
	send(t, &bulk, T0, 1, 1, &ref);
	mailing(&bulk, 2);
	send(t, &bulk, T0 + NS, 1, 2, &ref);
	for (uint32_t i = 0; i < 10000; i++) {
		salad(&fp, 50000 + i);
		send(t, &fp, T0 + 2 * NS + i * NS / 100, 66, i, &ref);
	}
	sg_bulk_stats(t, &st);
	ASSERT_TRUE(st.entries <= 64, "flood: 10,000 unique bodies leave at most 64 entries");
	ASSERT_TRUE(st.evictions >= 10000 - 64, "flood: the one-offs evicted one another");
	ASSERT_EQ(sg_bulk_bytes(t), bytes, "flood: the table did not grow");
	ASSERT_EQ(sg_bulk_find(t, &bulk, sender(1), T0 + 200 * NS, 10, &v), 0,
		  "flood: the body seen twice is still there");
	ASSERT_EQ(v.messages, 2, "flood: with its 2 messages");
	sg_bulk_free(t);
}

static void test_bad_limits(void)
{
	struct sg_bulk_limits l;

	sg_bulk_limits_default(&l);
	l.capacity = 0;
	ASSERT_TRUE(sg_bulk_new(&l) == NULL, "limits: a table of 0 bodies is refused");
	sg_bulk_limits_default(&l);
	l.window_ns = 1;
	ASSERT_TRUE(sg_bulk_new(&l) == NULL, "limits: a window of 1 ns is refused");
}

int main(void)
{
	test_newsletter();
	outbreak(0);
	outbreak(1);
	test_unrelated();
	test_stock_notice();
	test_sub_identity_not_counted_twice();
	test_more_senders_than_slots();
	test_spreading_threshold_exact();
	test_short_bodies_untracked();
	test_flood_keeps_bulk();
	test_bad_limits();
	return test_exit_status();
}
