/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * window.h - what a sender did lately: counts and distinct counts over a
 * sliding window, a decayed per-minute rate, and its own usual volume.
 *
 * The window is SG_WINDOW_SLOTS slots of a fixed width (the store's
 * slot_ns, 5 minutes by default: the last hour). Slot s (now / width)
 * lives at ring position s % SG_WINDOW_SLOTS; the window is the current
 * slot and the 11 before it, so a thing counted leaves it between 55 and
 * 60 minutes later, and the window slides in steps of one slot (1/12 of
 * it). Every ring of one sender shares one clock (the newest slot it
 * holds): moving the clock from slot a to slot b empties the positions
 * of slots a+1..b (all of them once b - a >= SG_WINDOW_SLOTS), so a ring
 * never holds anything older than the window, and nothing loops longer
 * than the ring, however far time jumps.
 *
 *   sg_wcounts    up to 8 counts per slot (32 bits, saturating) and
 *                 their window totals: messages, recipients, replies.
 *                 Slot-major, so moving the window on clears one cache
 *                 line, and reading the totals reads one. 448 bytes.
 *   sg_wdistinct  a HyperLogLog per slot (hll.h) plus their running merge,
 *                 rebuilt when a slot leaves: a distinct count over the
 *                 window at the cost of one register update per thing.
 *                 13 sketches: 416 bytes at p=6, 208 at p=5.
 *   sg_decayed    an exponentially decayed count (time constant tau): with
 *                 tau = 60 s, the messages of about the last minute, to
 *                 tell a burst from the same number spread over an hour.
 *   sg_baseline   a sender's usual busiest hour: the peak of a value over
 *                 each day, folded into an exponentially weighted moving
 *                 average once the day is over (weight alpha), idle days
 *                 as zero.
 */
#ifndef SMTPGUARD_SCAN_WINDOW_H
#define SMTPGUARD_SCAN_WINDOW_H

#include <stddef.h>
#include <stdint.h>
#include "hll.h"

#define SG_WINDOW_SLOTS 12

#define SG_WCOUNTS_MAX 8

struct sg_wcounts {
	uint64_t total[SG_WCOUNTS_MAX];		/* of each count over the window */
	uint32_t slot[SG_WINDOW_SLOTS][SG_WCOUNTS_MAX];
};

/* Counts n of count `which` in slot now_slot (which must be the clock). */
void sg_wcounts_add(struct sg_wcounts *c, uint64_t now_slot, unsigned which, uint32_t n);

static inline uint64_t sg_wcounts_total(const struct sg_wcounts *c, unsigned which)
{
	return c->total[which];
}

/* The clock moves from slot `from` to slot `to`. */
void sg_wcounts_expire(struct sg_wcounts *c, uint64_t from, uint64_t to);

/* A sliding distinct count of precision p lives in SG_WDISTINCT_BYTES(p)
 * bytes: a sketch per slot, then the merge of all of them. */
#define SG_WDISTINCT_BYTES(p) ((SG_WINDOW_SLOTS + 1) * SG_HLL_BYTES(p))

/* Adds a thing by its hash to slot now_slot; 1 if the window's estimate
 * may have changed. */
int sg_wdistinct_add(uint8_t *w, unsigned p, uint64_t now_slot, uint64_t hash);
double sg_wdistinct_estimate(const uint8_t *w, unsigned p);
/* The clock moves on; 1 if a slot that held something left (the
 * estimate may have changed), 0 if only empty ones did (then the merge
 * is not rebuilt: a sketch a sender does not use costs nothing). */
int sg_wdistinct_expire(uint8_t *w, unsigned p, uint64_t from, uint64_t to);

struct sg_decayed {
	float value;		/* at time t */
	uint64_t t;
};

/* n more things at now. Times before t count as at t (workers' clocks
 * may interleave a little out of order). */
void sg_decayed_add(struct sg_decayed *r, uint64_t now, uint64_t tau_ns, float n);
float sg_decayed_get(const struct sg_decayed *r, uint64_t now, uint64_t tau_ns);

struct sg_baseline {
	float usual;		/* the moving average of daily peaks; valid once a day folded */
	uint32_t today_peak;	/* the highest value seen today */
};

/* A value seen now (today's peak follows it). */
static inline void sg_baseline_observe(struct sg_baseline *b, uint32_t value)
{
	if (value > b->today_peak)
		b->today_peak = value;
}

/* `days` days have ended (today among them; the rest idle, as zeros).
 * The first fold ever (folded_before 0) takes the day's peak as the
 * average, and the second the busier of the two: an average starting
 * from zero would call the sender's next days 10x its usual, and its
 * first day is only the part after it was first seen. */
void sg_baseline_fold(struct sg_baseline *b, uint32_t days, uint32_t folded_before, float alpha);

#endif
