/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_hll.c - HyperLogLog sketches (scan/hll.c): the estimate of 10,
 * 1,000 and 100,000 distinct things within its stated error at the
 * precisions the store uses (p=5, p=6) and a finer one (p=10), over 40
 * sketches each (root mean square and worst case); repeats not counted;
 * the merge is the sketch of the union; the keyed hash (SipHash-2-4)
 * matches its reference vectors. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "hll.h"
#include "keyhash.h"
#include "test.h"

#define TRIALS 40

static const struct sg_hash_key test_key = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

static uint64_t thing(int trial, uint32_t i)
{
	char name[48];
	int n = snprintf(name, sizeof(name), "domain-%u.trial-%d.example", i, trial);

	return sg_keyhash(&test_key, name, (size_t)n);
}

static void check_error(unsigned p, uint32_t n)
{
	double sigma = sg_hll_error(p), sum_sq = 0, worst = 0, sum = 0;
	char name[128];

	for (int t = 0; t < TRIALS; t++) {
		uint8_t regs[SG_HLL_BYTES(10)] = { 0 };
		double rel;

		for (uint32_t i = 0; i < n; i++)
			sg_hll_add(regs, p, thing(t, i));
		rel = sg_hll_estimate(regs, p) / n - 1;
		sum += rel;
		sum_sq += rel * rel;
		if (fabs(rel) > worst)
			worst = fabs(rel);
	}
	printf("# p=%u n=%u: bias %+.3f, rms error %.3f, worst %.3f (stated %.3f)\n", p, n,
	       sum / TRIALS, sqrt(sum_sq / TRIALS), worst, sigma);
	snprintf(name, sizeof(name), "hll p=%u: rms error over %u distinct within 1.25x the stated %.3f",
		 p, n, sigma);
	ASSERT_TRUE(sqrt(sum_sq / TRIALS) <= 1.25 * sigma, name);
	snprintf(name, sizeof(name), "hll p=%u: every estimate of %u within 4 standard errors", p, n);
	ASSERT_TRUE(worst <= 4 * sigma, name);
	snprintf(name, sizeof(name), "hll p=%u: bias over %u distinct under half a standard error",
		 p, n);
	ASSERT_TRUE(fabs(sum / TRIALS) <= sigma / 2, name);
}

static void test_small_counts_nearly_exact(void)
{
	uint8_t regs[SG_HLL_BYTES(10)] = { 0 };

	ASSERT_EQ(sg_hll_estimate(regs, 10), 0, "hll: an empty sketch estimates 0");
	for (uint32_t i = 0; i < 10; i++)
		sg_hll_add(regs, 10, thing(0, i));
	ASSERT_TRUE(fabs(sg_hll_estimate(regs, 10) - 10) <= 1, "hll p=10: 10 distinct read as 10, give or take 1");
}

static void test_repeats_not_counted(void)
{
	uint8_t regs[SG_HLL_BYTES(6)] = { 0 };
	int grew = 0;

	for (uint32_t i = 0; i < 5; i++)
		sg_hll_add(regs, 6, thing(1, i));
	for (int r = 0; r < 1000; r++)
		grew |= sg_hll_add(regs, 6, thing(1, (uint32_t)r % 5));
	ASSERT_EQ(grew, 0, "hll: adding a thing again changes nothing");
	ASSERT_TRUE(fabs(sg_hll_estimate(regs, 6) - 5) < 1, "hll: 5 things added 1,005 times read as 5");
}

static void test_merge_is_union(void)
{
	uint8_t a[SG_HLL_BYTES(10)] = { 0 }, b[SG_HLL_BYTES(10)] = { 0 };
	uint8_t all[SG_HLL_BYTES(10)] = { 0 };

	for (uint32_t i = 0; i < 3000; i++) {
		sg_hll_add(i < 2000 ? a : b, 10, thing(2, i));
		if (i >= 1000 && i < 2000)	/* in both */
			sg_hll_add(b, 10, thing(2, i));
		sg_hll_add(all, 10, thing(2, i));
	}
	sg_hll_merge(a, b, 10);
	ASSERT_TRUE(!memcmp(a, all, sizeof(a)), "hll: merging two sketches gives the sketch of the union");
	ASSERT_TRUE(fabs(sg_hll_estimate(a, 10) / 3000 - 1) < 4 * sg_hll_error(10),
		    "hll: the union of 2,000 and 2,000 sharing 1,000 reads as 3,000");
}

static void test_rank_cap(void)
{
	uint8_t regs[SG_HLL_BYTES(4)] = { 0 };

	/* register 3 (the high half of byte 1), the rest all zeros: the
	 * longest run there is */
	sg_hll_add(regs, 4, 0x3000000000000000ULL);
	ASSERT_EQ(regs[1] >> 4, SG_HLL_RANK_MAX, "hll: the rank of an all-zero rest is capped at 15");
	ASSERT_TRUE(isfinite(sg_hll_estimate(regs, 4)), "hll: a capped register still estimates");
}

static void test_siphash_vectors(void)
{
	uint8_t msg[64];

	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	/* the reference implementation's vectors (key 00..0f, message 00..n-1) */
	ASSERT_EQ(sg_keyhash(&test_key, msg, 0), 0x726fdb47dd0e0e31ULL, "siphash-2-4: empty message");
	ASSERT_EQ(sg_keyhash(&test_key, msg, 8), 0x93f5f5799a932462ULL, "siphash-2-4: 8 bytes");
	ASSERT_EQ(sg_keyhash(&test_key, msg, 15), 0xa129ca6149be45e5ULL, "siphash-2-4: 15 bytes");
}

int main(void)
{
	static const unsigned precisions[] = { 5, 6, 10 };
	static const uint32_t counts[] = { 10, 1000, 100000 };

	test_siphash_vectors();
	for (size_t p = 0; p < sizeof(precisions) / sizeof(precisions[0]); p++)
		for (size_t n = 0; n < sizeof(counts) / sizeof(counts[0]); n++)
			check_error(precisions[p], counts[n]);
	test_small_counts_nearly_exact();
	test_repeats_not_counted();
	test_merge_is_union();
	test_rank_cap();
	return test_exit_status();
}
