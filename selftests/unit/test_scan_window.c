/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_window.c - the sliding windows, decayed rates and baselines
 * (scan/window.c), alone and as a sender's in the store: a count stays
 * for 55 to 60 minutes and then leaves, at slot boundaries; distinct
 * counts slide the same way; a jump in time empties everything at once;
 * the burst rate tells a burst from a trickle; the usual warms up over a
 * sender's first full day and tracks a change of volume. */
#include <math.h>
#include <string.h>
#include "behaviour.h"
#include "keyhash.h"
#include "window.h"
#include "test.h"

#define NS 1000000000ULL
#define MIN (60 * NS)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static void test_count_slides(void)
{
	struct sg_wcounts c;

	memset(&c, 0, sizeof(c));
	sg_wcounts_add(&c, 100, 0, 5);
	sg_wcounts_add(&c, 100, 3, 1);
	sg_wcounts_expire(&c, 100, 101);
	sg_wcounts_add(&c, 101, 0, 2);
	ASSERT_EQ(sg_wcounts_total(&c, 0), 7, "window: counts of two slots add up");
	ASSERT_EQ(sg_wcounts_total(&c, 3), 1, "window: each count apart");
	sg_wcounts_expire(&c, 101, 111);
	ASSERT_EQ(sg_wcounts_total(&c, 0), 7, "window: 11 slots later both are still in");
	sg_wcounts_expire(&c, 111, 112);
	ASSERT_EQ(sg_wcounts_total(&c, 0), 2, "window: at the 12th slot the first leaves");
	ASSERT_EQ(sg_wcounts_total(&c, 3), 0, "window: with every count of its slot");
	sg_wcounts_expire(&c, 112, 113);
	ASSERT_EQ(sg_wcounts_total(&c, 0), 0, "window: then the second");
	sg_wcounts_add(&c, 113, 1, 9);
	sg_wcounts_expire(&c, 113, 113 + 1000000000ULL);
	ASSERT_EQ(sg_wcounts_total(&c, 1), 0, "window: a jump of a billion slots empties it (in 12 steps)");
	sg_wcounts_expire(&c, 50, 40);
	ASSERT_EQ(sg_wcounts_total(&c, 1), 0, "window: a clock going back clears nothing");
	sg_wcounts_add(&c, 5, 2, UINT32_MAX);
	sg_wcounts_add(&c, 5, 2, 10);
	ASSERT_EQ(sg_wcounts_total(&c, 2), UINT32_MAX, "window: a slot's count saturates, never wraps");
	sg_wcounts_expire(&c, 5, 17);
	ASSERT_EQ(sg_wcounts_total(&c, 2), 0, "window: and its total comes back to 0 when it leaves");
}

static void test_distinct_slides(void)
{
	uint8_t w[SG_WDISTINCT_BYTES(6)] = { 0 };

	for (uint64_t i = 0; i < 20; i++)
		sg_wdistinct_add(w, 6, 200, sg_mix64(i + 1));
	sg_wdistinct_expire(w, 6, 200, 201);
	for (uint64_t i = 100; i < 110; i++)
		sg_wdistinct_add(w, 6, 201, sg_mix64(i + 1));
	ASSERT_TRUE(fabs(sg_wdistinct_estimate(w, 6) - 30) <= 3,
		    "distinct window: 20 things then 10 more read as 30");
	sg_wdistinct_expire(w, 6, 201, 212);
	ASSERT_TRUE(fabs(sg_wdistinct_estimate(w, 6) - 10) <= 1,
		    "distinct window: once the first slot leaves, 10 remain");
	sg_wdistinct_expire(w, 6, 212, 300);
	ASSERT_EQ(sg_wdistinct_estimate(w, 6), 0, "distinct window: all gone a window later");
}

static void test_burst_rate(void)
{
	struct sg_decayed burst = { 0, 0 }, trickle = { 0, 0 };
	const uint64_t tau = 60 * NS;

	for (int i = 0; i < 100; i++)
		sg_decayed_add(&burst, 1000 * NS + (uint64_t)i * NS / 10, tau, 1);	/* 10 a second */
	for (int i = 0; i < 100; i++)
		sg_decayed_add(&trickle, 1000 * NS + (uint64_t)i * 36 * NS, tau, 1);	/* 100 an hour */
	ASSERT_TRUE(sg_decayed_get(&burst, 1010 * NS, tau) > 90,
		    "burst: 100 messages in 10 s read as over 90 a minute");
	ASSERT_TRUE(sg_decayed_get(&trickle, 1000 * NS + 99 * 36 * NS, tau) < 3,
		    "burst: 100 messages over an hour read as under 3 a minute");
	ASSERT_TRUE(sg_decayed_get(&burst, 1010 * NS + 10 * MIN, tau) < 0.01,
		    "burst: 10 minutes later it has died down");
	sg_decayed_add(&burst, 5 * NS, tau, 1);
	ASSERT_TRUE(sg_decayed_get(&burst, 1010 * NS, tau) > 90,
		    "burst: a late clock adds to it, does not rewind it");
}

static void test_baseline_fold(void)
{
	struct sg_baseline b = { 0, 0 };

	sg_baseline_observe(&b, 40);	/* the first, partial day */
	sg_baseline_fold(&b, 1, 0, 0.125f);
	ASSERT_EQ((int)b.usual, 40, "usual: the first day's peak starts it");
	sg_baseline_observe(&b, 100);
	sg_baseline_observe(&b, 60);
	sg_baseline_fold(&b, 1, 1, 0.125f);
	ASSERT_EQ((int)b.usual, 100, "usual: the first full day raises it to the busier day's peak");
	for (int d = 0; d < 10; d++) {
		sg_baseline_observe(&b, 200);
		sg_baseline_fold(&b, 1, 2 + (uint32_t)d, 0.125f);
	}
	/* 200 - 100 x 0.875^10 */
	ASSERT_TRUE(fabsf(b.usual - 173.7f) < 0.5f, "usual: ten days at 200 bring 100 to 174");
	sg_baseline_fold(&b, 40, 12, 0.125f);
	/* 174 x 0.875^40 */
	ASSERT_TRUE(b.usual < 1, "usual: 40 idle days bring it near 0");
}

static const char *const one_domain[] = { "example.org" };

static void note(struct sg_behaviour *b, const char *key, uint64_t now)
{
	struct sg_behaviour_id id = { key, strlen(key), NULL, 0 };
	struct sg_behaviour_message m = { .rcpts = 1, .rcpt_domains = one_domain,
					  .n_rcpt_domains = 1, .mail_from_domain = "shop.example" };

	sg_behaviour_note_message(b, &id, now, &m);
}

static struct sg_behaviour_values values(struct sg_behaviour *b, const char *key, uint64_t now)
{
	struct sg_behaviour_id id = { key, strlen(key), NULL, 0 };
	struct sg_behaviour_thresholds t;
	struct sg_behaviour_report r;

	sg_behaviour_thresholds_default(&t);
	sg_behaviour_assess(b, &id, now, &t, &r);
	return r.values;
}

static void test_store_window(void)
{
	struct sg_behaviour_limits l;
	struct sg_behaviour *b;
	/* a slot's start (5-minute slots), ten days into the clock, + 10 s */
	const uint64_t slot0 = 10 * DAY + 60 * 5 * MIN, t0 = slot0 + 10 * NS;

	sg_behaviour_limits_default(&l);
	l.capacity = 1024;
	l.shards = 4;
	b = sg_behaviour_new(&l);
	if (!ASSERT_TRUE(b != NULL, "store: created"))
		return;
	note(b, "192.0.2.1", t0);
	ASSERT_EQ(values(b, "192.0.2.1", t0).messages, 1, "store window: a message is counted");
	ASSERT_EQ(values(b, "192.0.2.1", slot0 + 55 * MIN - 1).messages, 1,
		  "store window: still counted just before 55 minutes into the window");
	ASSERT_EQ(values(b, "192.0.2.1", slot0 + 60 * MIN - 1).messages, 1,
		  "store window: still counted at the last ns of its 12th slot");
	ASSERT_EQ(values(b, "192.0.2.1", slot0 + 60 * MIN).messages, 0,
		  "store window: gone at the slot boundary an hour after its slot began");
	ASSERT_EQ(values(b, "192.0.2.1", slot0 + 60 * MIN).rcpt_domains, 0,
		  "store window: its recipient domain too");
	ASSERT_EQ(values(b, "192.0.2.1", slot0 + 60 * MIN).mail_from_domains, 0,
		  "store window: and its MAIL FROM domain");
	note(b, "192.0.2.1", slot0 + 2 * HOUR);
	ASSERT_EQ(values(b, "192.0.2.1", slot0 + 2 * HOUR).messages, 1,
		  "store window: a message after an idle hour counts alone");
	note(b, "192.0.2.1", slot0 + 2 * HOUR - 3 * MIN);
	ASSERT_EQ(values(b, "192.0.2.1", slot0 + 2 * HOUR).messages, 2,
		  "store window: a message with a late clock counts in the current slot");
	sg_behaviour_free(b);
}

static void test_store_usual_warms_up(void)
{
	struct sg_behaviour_limits l;
	struct sg_behaviour *b;
	const uint64_t day0 = 100 * DAY;
	struct sg_behaviour_values v;

	sg_behaviour_limits_default(&l);
	l.capacity = 1024;
	l.shards = 4;
	b = sg_behaviour_new(&l);
	if (!ASSERT_TRUE(b != NULL, "store: created"))
		return;
	/* first seen at 14:00, 20 messages an hour for 6 hours a day */
	for (int d = 0; d < 12; d++) {
		int per_hour = d < 5 ? 20 : 60;

		for (int h = d == 0 ? 14 : 8; h < (d == 0 ? 20 : 14); h++)
			for (int m = 0; m < per_hour; m++)
				note(b, "198.51.100.7", day0 + (uint64_t)d * DAY + (uint64_t)h * HOUR +
							(uint64_t)m * (HOUR / (uint64_t)per_hour));
		v = values(b, "198.51.100.7", day0 + (uint64_t)d * DAY + 15 * HOUR);
		if (d == 0) {
			ASSERT_EQ(v.usual_warm, 0, "usual: not in use on the first day");
			ASSERT_EQ(v.new_sender, 1, "usual: the sender is new on its first day");
		}
		if (d == 1) {
			ASSERT_EQ(v.usual_warm, 0, "usual: not in use on the first full day");
			ASSERT_EQ(v.new_sender, 0, "usual: a day after first seen, no longer new");
		}
		if (d == 2) {
			ASSERT_EQ(v.usual_warm, 1, "usual: in use once the first full day has ended");
			ASSERT_EQ(v.usual_messages, 20, "usual: 20 messages an hour at its busiest");
		}
		/* 60 - 40 x 0.875^6 */
		if (d == 11)
			ASSERT_TRUE(v.usual_messages >= 40 && v.usual_messages <= 44,
				    "usual: six days at 60 an hour bring it from 20 to 42");
	}
	sg_behaviour_free(b);
}

/* A sender around the clock to the same 15 domains, one a minute: each
 * domain is in several slots, so after the first hour its distinct count
 * never changes again, and its usual must not fade for that. */
static void test_store_usual_steady_domains(void)
{
	static const char *const domains[] = {
		"a.example", "b.example", "c.example", "d.example", "e.example", "f.example",
		"g.example", "h.example", "i.example", "j.example", "k.example", "l.example",
		"m.example", "n.example", "o.example",
	};
	struct sg_behaviour_limits l;
	struct sg_behaviour *b;
	struct sg_behaviour_id id = { "steady", 6, NULL, 0 };
	struct sg_behaviour_values v;

	sg_behaviour_limits_default(&l);
	l.capacity = 64;
	l.shards = 1;
	l.hash_key[0] = 1;
	b = sg_behaviour_new(&l);
	if (!ASSERT_TRUE(b != NULL, "store: created"))
		return;
	for (uint64_t i = 0; i < 6 * 24 * 60; i++) {	/* one a minute for 6 days */
		const char *to[1] = { domains[i % 15] };
		struct sg_behaviour_message m = { .rcpts = 1, .rcpt_domains = to, .n_rcpt_domains = 1 };

		sg_behaviour_note_message(b, &id, 300 * DAY + i * MIN, &m);
	}
	v = values(b, "steady", 300 * DAY + 6 * DAY - MIN);
	ASSERT_EQ(v.usual_warm, 1, "usual: warm after 6 days");
	ASSERT_TRUE(v.usual_rcpt_domains >= 12 && v.usual_rcpt_domains <= 18,
		    "usual: 15 domains every hour for 6 days stay its usual (it does not fade)");
	ASSERT_TRUE(v.usual_messages >= 59 && v.usual_messages <= 61,
		    "usual: 60 messages an hour, its usual");
	sg_behaviour_free(b);
}

int main(void)
{
	test_count_slides();
	test_distinct_slides();
	test_burst_rate();
	test_baseline_fold();
	test_store_window();
	test_store_usual_warms_up();
	test_store_usual_steady_domains();
	return test_exit_status();
}
