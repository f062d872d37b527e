/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* window.c - sliding-window counts, distinct counts, decayed rates and
 * moving baselines (see window.h). */
#include <math.h>
#include <string.h>
#include "window.h"

/* How many slots leave when the clock moves from `from` to `to`: the
 * positions (from + 1..n) % SG_WINDOW_SLOTS; never more than the ring. */
static uint32_t slots_leaving(uint64_t from, uint64_t to)
{
	if (to <= from)
		return 0;
	return to - from < SG_WINDOW_SLOTS ? to - from : SG_WINDOW_SLOTS;
}

void sg_wcounts_add(struct sg_wcounts *c, uint64_t now_slot, unsigned which, uint32_t n)
{
	uint32_t *v = &c->slot[now_slot % SG_WINDOW_SLOTS][which];

	if (n > UINT32_MAX - *v)
		n = UINT32_MAX - *v;
	*v += n;
	c->total[which] += n;
}

void sg_wcounts_expire(struct sg_wcounts *c, uint64_t from, uint64_t to)
{
	uint32_t n = slots_leaving(from, to);

	for (uint32_t i = 1; i <= n; i++) {
		uint32_t *row = c->slot[(from + i) % SG_WINDOW_SLOTS];

		for (int k = 0; k < SG_WCOUNTS_MAX; k++)
			c->total[k] -= row[k];
		memset(row, 0, sizeof(c->slot[0]));
	}
}

static inline uint8_t *wd_slot(uint8_t *w, unsigned p, uint32_t pos)
{
	return w + (size_t)pos * SG_HLL_BYTES(p);
}

static inline uint8_t *wd_merged(uint8_t *w, unsigned p)
{
	return wd_slot(w, p, SG_WINDOW_SLOTS);
}

int sg_wdistinct_add(uint8_t *w, unsigned p, uint64_t now_slot, uint64_t hash)
{
	sg_hll_add(wd_slot(w, p, now_slot % SG_WINDOW_SLOTS), p, hash);
	return sg_hll_add(wd_merged(w, p), p, hash);
}

double sg_wdistinct_estimate(const uint8_t *w, unsigned p)
{
	return sg_hll_estimate(w + (size_t)SG_WINDOW_SLOTS * SG_HLL_BYTES(p), p);
}

static int is_empty(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

int sg_wdistinct_expire(uint8_t *w, unsigned p, uint64_t from, uint64_t to)
{
	uint8_t *merged = wd_merged(w, p);
	uint32_t n = slots_leaving(from, to);
	int left = 0;

	for (uint32_t i = 1; i <= n; i++) {
		uint8_t *slot = wd_slot(w, p, (from + i) % SG_WINDOW_SLOTS);

		if (!is_empty(slot, SG_HLL_BYTES(p))) {
			memset(slot, 0, SG_HLL_BYTES(p));
			left = 1;
		}
	}
	if (!left)
		return 0;
	/* a merge cannot forget: rebuild it from the slots still in */
	memset(merged, 0, SG_HLL_BYTES(p));
	for (uint32_t s = 0; s < SG_WINDOW_SLOTS; s++)
		sg_hll_merge(merged, wd_slot(w, p, s), p);
	return 1;
}

static float decayed(const struct sg_decayed *r, uint64_t now, uint64_t tau_ns)
{
	if (now <= r->t || r->value == 0)
		return r->value;
	return r->value * expf(-(float)((double)(now - r->t) / (double)tau_ns));
}

void sg_decayed_add(struct sg_decayed *r, uint64_t now, uint64_t tau_ns, float n)
{
	r->value = decayed(r, now, tau_ns) + n;
	if (now > r->t)
		r->t = now;
}

float sg_decayed_get(const struct sg_decayed *r, uint64_t now, uint64_t tau_ns)
{
	return decayed(r, now, tau_ns);
}

void sg_baseline_fold(struct sg_baseline *b, uint32_t days, uint32_t folded_before, float alpha)
{
	float keep = 1 - alpha, peak = (float)b->today_peak;

	if (!days)
		return;
	if (folded_before == 0)
		b->usual = peak;
	else if (folded_before == 1)
		b->usual = peak > b->usual ? peak : b->usual;
	else
		b->usual = alpha * peak + keep * b->usual;
	/* the idle days after it, as zeros */
	if (days > 1)
		b->usual *= powf(keep, (float)(days - 1 < 1000 ? days - 1 : 1000));
	b->today_peak = 0;
}
