/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* hll.c - HyperLogLog sketches of 4-bit registers (see hll.h). */
#include <math.h>
#include "hll.h"

static inline unsigned reg_get(const uint8_t *regs, uint32_t i)
{
	return (regs[i >> 1] >> ((i & 1) * 4)) & 0xf;
}

static inline void reg_set(uint8_t *regs, uint32_t i, unsigned v)
{
	unsigned shift = (i & 1) * 4;

	regs[i >> 1] = (uint8_t)((regs[i >> 1] & ~(0xf << shift)) | (v << shift));
}

int sg_hll_add(uint8_t *regs, unsigned p, uint64_t hash)
{
	uint32_t i = (uint32_t)(hash >> (64 - p));
	uint64_t rest = hash << p;
	unsigned rank = rest ? (unsigned)__builtin_clzll(rest) + 1 : SG_HLL_RANK_MAX;

	if (rank > SG_HLL_RANK_MAX)
		rank = SG_HLL_RANK_MAX;
	if (reg_get(regs, i) >= rank)
		return 0;
	reg_set(regs, i, rank);
	return 1;
}

void sg_hll_merge(uint8_t *dst, const uint8_t *src, unsigned p)
{
	for (size_t b = 0; b < SG_HLL_BYTES(p); b++) {
		unsigned lo = dst[b] & 0xf, hi = dst[b] >> 4;
		unsigned slo = src[b] & 0xf, shi = src[b] >> 4;

		dst[b] = (uint8_t)((lo > slo ? lo : slo) | (hi > shi ? hi : shi) << 4);
	}
}

/* Ertl's sigma and tau series (2017, algorithm 6), summed until the
 * terms no longer change the sum: both converge within ~60 terms. */
static double ertl_sigma(double x)
{
	double y = 1, z = x, prev;

	if (x >= 1)
		return INFINITY;
	do {
		x *= x;
		prev = z;
		z += x * y;
		y += y;
	} while (z != prev);
	return z;
}

static double ertl_tau(double x)
{
	double y = 1, z = 1 - x, prev;

	if (x <= 0 || x >= 1)
		return 0;
	do {
		x = sqrt(x);
		prev = z;
		y *= 0.5;
		z -= (1 - x) * (1 - x) * y;
	} while (z != prev);
	return z / 3;
}

double sg_hll_estimate(const uint8_t *regs, unsigned p)
{
	/* a rank of q + 1 means "q + 1 or more": the cap */
	const unsigned q = SG_HLL_RANK_MAX - 1;
	const double m = (double)(1u << p);
	uint32_t hist[SG_HLL_RANK_MAX + 1] = { 0 };
	double z;

	for (size_t b = 0; b < SG_HLL_BYTES(p); b++) {
		hist[regs[b] & 0xf]++;
		hist[regs[b] >> 4]++;
	}
	if (hist[0] == (1u << p))
		return 0;
	z = hist[q + 1] ? m * ertl_tau(1 - hist[q + 1] / m) : 0;
	for (unsigned k = q; k >= 1; k--)
		z = 0.5 * (z + hist[k]);
	z += m * ertl_sigma(hist[0] / m);
	return m * m / (2 * M_LN2) / z;
}

double sg_hll_error(unsigned p)
{
	return 1.04 / sqrt((double)(1u << p));
}
