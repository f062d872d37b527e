/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * hll.h - HyperLogLog: how many distinct things (recipient domains, MX
 * addresses) were seen, in a few dozen bytes, whatever their number.
 *
 * A sketch of precision p has m = 2^p registers of 4 bits (m/2 bytes,
 * packed two to a byte). A thing is hashed (64 bits, keyed: keyhash.h);
 * the top p bits pick a register, which keeps the largest "rank" seen: the
 * number of leading zeros of the rest, plus one, capped at 15. Sketches of
 * the same precision merge by taking each register's maximum, which is
 * the sketch of the union: a sliding window keeps one sketch per slot and
 * merges them (window.h).
 *
 * The estimate is Ertl's improved raw estimator ("New cardinality
 * estimation algorithms for HyperLogLog sketches", 2017), which is
 * unbiased from 0 up without the small-range switch of the original or
 * HLL++'s tables, and which knows the cap: a rank of 15 means "15 or
 * more". Its relative standard error is 1.04/sqrt(m): 26% at p=4 (8 bytes),
 * 18% at p=5 (16 bytes), 13% at p=6 (32 bytes), 3.3% at p=10 (512 bytes);
 * below about m/2 things the estimate is nearly exact (each thing lands
 * in a register of its own). The cap of 15 bounds the range to about
 * m * 2^13 things (500,000 at p=6), far past any limit judged here.
 */
#ifndef SMTPGUARD_SCAN_HLL_H
#define SMTPGUARD_SCAN_HLL_H

#include <stddef.h>
#include <stdint.h>

#define SG_HLL_MIN_P 4
#define SG_HLL_MAX_P 16
#define SG_HLL_RANK_MAX 15
/* bytes of a sketch of precision p */
#define SG_HLL_BYTES(p) ((size_t)1 << ((p) - 1))

/* Adds a thing by its hash. Returns 1 if a register grew (the estimate
 * may have changed), 0 if not. */
int sg_hll_add(uint8_t *regs, unsigned p, uint64_t hash);

/* dst becomes the sketch of the union of dst and src. */
void sg_hll_merge(uint8_t *dst, const uint8_t *src, unsigned p);

/* The estimated number of distinct things added. */
double sg_hll_estimate(const uint8_t *regs, unsigned p);

/* The relative standard error of precision p: 1.04/sqrt(2^p). */
double sg_hll_error(unsigned p);

#endif
