/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* bulk.c - the table of recent bodies, found again by banded LSH over
 * their min-hash signatures (see bulk.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "bulk.h"
#include "hll.h"
#include "keyhash.h"
#include "lru.h"

#define BANDS 16
#define ROWS (SG_FP_BINS / BANDS)
#define DOMAINS_P 6		/* all senders' recipient domains: 13% */
#define SENDERS_P 5		/* distinct senders: exact-ish to ~16, 18% past */
#define SENDER_DOMAINS_P 5	/* one sender's domains past SENDER_DOMAINS_EXACT */
/* One sender's domains are counted exactly up to this many a half: the
 * spreading threshold (10 by default) sits where a 32-register sketch is
 * least sure (12 domains read as under 10 one time in 15). Kept as 16-bit
 * hashes: two of 16 domains share one 0.2% of the time, a count one low. */
#define SENDER_DOMAINS_EXACT 16
#define MAX_CAPACITY (1u << 24)

enum segment { SEG_FREE, SEG_PROBATION, SEG_PROTECTED };

/* Counts per half window live at [half & 1]: the current half and the
 * one before. */
struct sender_slot {
	uint64_t sender;
	uint32_t half;		/* the newest half it counted in; 0: never */
	uint32_t messages[2];
	float domains_est;	/* of both halves, as of their last change */
	uint8_t n_exact[2];	/* domains listed in exact[h]; SENDER_DOMAINS_EXACT + 1: more */
	uint16_t exact[2][SENDER_DOMAINS_EXACT];
	uint8_t domains[2][SG_HLL_BYTES(SENDER_DOMAINS_P)];
};

struct entry {
	struct sg_fingerprint first;	/* the first body's: the others are compared to it */
	uint32_t generation;		/* 0: free */
	uint32_t half;
	struct sg_lru_link link;
	uint8_t segment;
	uint32_t messages[2], rcpts[2];
	float domains_est, senders_est;	/* of both halves, as of their last change */
	uint64_t digest;
	uint8_t domains[2][SG_HLL_BYTES(DOMAINS_P)];
	uint8_t senders[2][SG_HLL_BYTES(SENDERS_P)];
	struct sender_slot slot[SG_BULK_SENDER_SLOTS];
};

/* A band's index is a set-associative array: a band hash picks a set,
 * whose ways each name an entry (live while its generation matches). */
#define WAYS 2

struct way {
	uint32_t entry;		/* + 1; 0: empty */
	uint32_t generation;	/* the entry's when it was put here */
	uint32_t tag;		/* the band hash's top half */
};

struct set {
	struct way way[WAYS];
};

struct sg_bulk {
	pthread_mutex_t lock;
	struct sg_bulk_limits limits;
	uint64_t half_ns;
	struct entry *entries;
	struct set *index;	/* BANDS arrays of `sets` */
	uint32_t sets;		/* a power of two */
	struct sg_lru probation, protected, free;
	struct sg_lru_space space;
	uint32_t generation;
	uint64_t evictions;
};

void sg_bulk_limits_default(struct sg_bulk_limits *l)
{
	l->capacity = 8192;
	l->window_ns = 3600ULL * 1000000000ULL;
	l->min_similarity = 60;
	l->min_shingles = 8;
}

struct sg_bulk *sg_bulk_new(const struct sg_bulk_limits *l)
{
	struct sg_bulk *t;

	if (!l->capacity || l->capacity > MAX_CAPACITY || l->window_ns < 2000000000ULL)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->limits = *l;
	t->half_ns = l->window_ns / 2;
	t->sets = 1;
	while (t->sets < l->capacity)
		t->sets <<= 1;
	t->entries = calloc(l->capacity, sizeof(*t->entries));
	t->index = calloc((size_t)BANDS * t->sets, sizeof(*t->index));
	if (!t->entries || !t->index || pthread_mutex_init(&t->lock, NULL)) {
		free(t->entries);
		free(t->index);
		free(t);
		return NULL;
	}
	t->space = (struct sg_lru_space){ (char *)t->entries, sizeof(struct entry),
					  offsetof(struct entry, link) };
	sg_lru_init(&t->probation);
	sg_lru_init(&t->protected);
	sg_lru_init(&t->free);
	for (uint32_t i = l->capacity; i-- > 0;)
		sg_lru_push_head(&t->space, &t->free, i);
	return t;
}

void sg_bulk_free(struct sg_bulk *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->entries);
	free(t->index);
	free(t);
}

size_t sg_bulk_bytes(const struct sg_bulk *t)
{
	return sizeof(*t) + (size_t)t->limits.capacity * sizeof(struct entry) +
	       (size_t)BANDS * t->sets * sizeof(struct set);
}

static uint64_t band_hash(const uint32_t *sig, uint32_t band)
{
	uint64_t h = sg_mix64(band + 1);

	for (uint32_t r = 0; r < ROWS; r++)
		h = sg_mix64(h ^ sig[band * ROWS + r]);
	return h;
}

static struct set *set_of(struct sg_bulk *t, uint32_t band, uint64_t h)
{
	return &t->index[(size_t)band * t->sets + (h & (t->sets - 1))];
}

static int way_live(const struct sg_bulk *t, const struct way *w)
{
	return w->entry && t->entries[w->entry - 1].generation == w->generation;
}

/* Which entry keeps its place in a full set: a protected one over one on
 * probation, then the one counted more lately. */
static uint64_t rank(const struct entry *e)
{
	return (uint64_t)(e->segment == SEG_PROTECTED) << 32 | e->half;
}

/* The ways an entry takes in its bands' sets: a free or dead way, else
 * the lowest-ranked one if it ranks no higher. A body on probation never
 * pushes a protected one out of the index, so a flood of one-off bodies
 * cannot make the bulk being counted unfindable. */
static void index_entry(struct sg_bulk *t, uint32_t e)
{
	const struct entry *n = &t->entries[e];

	for (uint32_t b = 0; b < BANDS; b++) {
		uint64_t h = band_hash(n->first.bins, b);
		struct set *set = set_of(t, b, h);
		struct way *pick = NULL;

		for (int w = 0; w < WAYS && !pick; w++) {
			struct way *k = &set->way[w];

			if (!way_live(t, k) || k->entry == e + 1)
				pick = k;
		}
		for (int w = 0; w < WAYS && !pick; w++) {
			struct way *k = &set->way[w], *other = &set->way[(w + 1) % WAYS];

			if (rank(&t->entries[k->entry - 1]) <= rank(n) &&
			    rank(&t->entries[k->entry - 1]) <= rank(&t->entries[other->entry - 1]))
				pick = k;
		}
		if (pick)
			*pick = (struct way){ e + 1, n->generation, (uint32_t)(h >> 32) };
	}
}

/* The entry most like fp among those sharing a band with it; SG_LRU_NONE
 * if none is similar enough. */
static uint32_t lookup(struct sg_bulk *t, const struct sg_fingerprint *fp)
{
	uint32_t seen[BANDS * WAYS], n_seen = 0, best = SG_LRU_NONE;
	unsigned best_sim = 0;

	for (uint32_t b = 0; b < BANDS; b++) {
		uint64_t h = band_hash(fp->bins, b);
		struct set *set = set_of(t, b, h);

		for (int w = 0; w < WAYS; w++) {
			struct way *k = &set->way[w];
			uint32_t e, i;
			unsigned sim;

			if (!way_live(t, k) || k->tag != (uint32_t)(h >> 32))
				continue;
			e = k->entry - 1;
			for (i = 0; i < n_seen && seen[i] != e; i++)
				;
			if (i < n_seen)
				continue;
			seen[n_seen++] = e;
			sim = sg_fingerprint_similarity(&t->entries[e].first, fp);
			if (sim >= t->limits.min_similarity && sim > best_sim) {
				best = e;
				best_sim = sim;
			}
		}
	}
	return best;
}

/* Moves counts kept per half window on to half `now_half`: the half two
 * back is forgotten, and everything once idle for a whole window. */
static int roll_halves(uint32_t *half, uint32_t now_half, void (*clear)(void *, int), void *obj)
{
	if (*half >= now_half)
		return 0;	/* the same half, or a late worker's clock: the newest */
	if (*half + 1 == now_half) {
		clear(obj, now_half & 1);
	} else {
		clear(obj, 0);
		clear(obj, 1);
	}
	*half = now_half;
	return 1;
}

static void clear_entry_half(void *obj, int h)
{
	struct entry *e = obj;

	e->messages[h] = e->rcpts[h] = 0;
	memset(e->domains[h], 0, sizeof(e->domains[h]));
	memset(e->senders[h], 0, sizeof(e->senders[h]));
}

static void clear_slot_half(void *obj, int h)
{
	struct sender_slot *s = obj;

	s->messages[h] = 0;
	s->n_exact[h] = 0;
	memset(s->domains[h], 0, sizeof(s->domains[h]));
}

static uint32_t now_half_of(const struct sg_bulk *t, uint64_t now)
{
	/* + 2: a real half is never 0 or 1, so "two halves back" exists */
	return (uint32_t)(now / t->half_ns) + 2;
}

static double estimate2(const uint8_t *h0, const uint8_t *h1, unsigned p)
{
	uint8_t both[SG_HLL_BYTES(DOMAINS_P)];

	memcpy(both, h0, SG_HLL_BYTES(p));
	sg_hll_merge(both, h1, p);
	return sg_hll_estimate(both, p);
}

static void refresh_entry(struct entry *e)
{
	e->domains_est = (float)estimate2(e->domains[0], e->domains[1], DOMAINS_P);
	e->senders_est = (float)estimate2(e->senders[0], e->senders[1], SENDERS_P);
}

/* The domains half h holds in its list (n_exact says one more past it). */
static unsigned exact_listed(const struct sender_slot *s, int h)
{
	return s->n_exact[h] < SENDER_DOMAINS_EXACT ? s->n_exact[h] : SENDER_DOMAINS_EXACT;
}

static int exact_has(const struct sender_slot *s, int h, uint16_t tag)
{
	for (unsigned i = 0; i < exact_listed(s, h); i++) {
		if (s->exact[h][i] == tag)
			return 1;
	}
	return 0;
}

/* Returns 1 if the half's count changed (a new domain, or the first past
 * the list). */
static int exact_add(struct sender_slot *s, int h, uint64_t hash)
{
	/* bits the sketch hardly reads (it takes the top ones; a domain's
	 * hash has its lowest bit set) */
	uint16_t tag = (uint16_t)(hash >> 16);

	if (s->n_exact[h] > SENDER_DOMAINS_EXACT || exact_has(s, h, tag))
		return 0;
	if (s->n_exact[h] < SENDER_DOMAINS_EXACT)
		s->exact[h][s->n_exact[h]] = tag;
	s->n_exact[h]++;
	return 1;
}

/* The sender's domains over both halves: the union of the two lists,
 * exact while neither half ran past its list; past that, at least one
 * more than a list holds, and the sketch's estimate if higher. */
static void refresh_slot(struct sender_slot *s)
{
	unsigned listed = exact_listed(s, 0);
	double count;

	for (unsigned i = 0; i < exact_listed(s, 1); i++)
		listed += !exact_has(s, 0, s->exact[1][i]);
	count = listed;
	if (s->n_exact[0] > SENDER_DOMAINS_EXACT || s->n_exact[1] > SENDER_DOMAINS_EXACT) {
		double sketch = estimate2(s->domains[0], s->domains[1], SENDER_DOMAINS_P);

		if (count < SENDER_DOMAINS_EXACT + 1)
			count = SENDER_DOMAINS_EXACT + 1;
		if (sketch > count)
			count = sketch;
	}
	s->domains_est = (float)count;
}

/* Brings an entry's halves to now; returns the half it now counts in
 * (its own if a late clock asks for an older one). */
static uint32_t roll_entry(struct entry *e, uint32_t now_half)
{
	if (roll_halves(&e->half, now_half, clear_entry_half, e))
		refresh_entry(e);
	for (int i = 0; i < SG_BULK_SENDER_SLOTS; i++) {
		if (e->slot[i].half &&
		    roll_halves(&e->slot[i].half, e->half, clear_slot_half, &e->slot[i]))
			refresh_slot(&e->slot[i]);
	}
	return e->half;
}

static int slot_live(const struct sender_slot *s, uint32_t now_half)
{
	return s->half && s->half + 1 >= now_half;
}

static struct sender_slot *find_slot(struct entry *e, uint64_t sender, uint32_t now_half,
				     int claim)
{
	struct sender_slot *spare = NULL;

	for (int i = 0; i < SG_BULK_SENDER_SLOTS; i++) {
		struct sender_slot *s = &e->slot[i];

		if (s->half && s->sender == sender && slot_live(s, now_half))
			return s;
		if (!spare && !slot_live(s, now_half))
			spare = s;
	}
	/* live slots are never taken over: a crowd of late senders must not
	 * erase the counts of the first ones */
	if (!claim || !spare)
		return NULL;
	memset(spare, 0, sizeof(*spare));
	spare->sender = sender;
	spare->half = now_half;
	return spare;
}

static uint32_t u32_of(double v)
{
	return v >= UINT32_MAX ? UINT32_MAX : (uint32_t)(v + 0.5);
}

static void view_of(struct entry *e, uint64_t sender, uint32_t now_half,
		    uint32_t spread_domains, struct sg_bulk_view *v)
{
	struct sender_slot *mine;

	memset(v, 0, sizeof(*v));
	now_half = roll_entry(e, now_half);
	v->messages = e->messages[0] + e->messages[1];
	v->rcpts = e->rcpts[0] + e->rcpts[1];
	v->domains = u32_of(e->domains_est);
	v->senders = u32_of(e->senders_est);
	for (int i = 0; i < SG_BULK_SENDER_SLOTS; i++) {
		struct sender_slot *s = &e->slot[i];

		if (slot_live(s, now_half) && s->domains_est >= spread_domains)
			v->spreading_senders++;
	}
	mine = find_slot(e, sender, now_half, 0);
	if (mine) {
		v->sender_tracked = 1;
		v->sender_messages = mine->messages[0] + mine->messages[1];
		v->sender_domains = u32_of(mine->domains_est);
	}
	v->digest = e->digest;
}

static uint32_t take_entry(struct sg_bulk *t)
{
	uint32_t e = t->free.tail;

	if (e != SG_LRU_NONE) {
		sg_lru_remove(&t->space, &t->free, e);
		return e;
	}
	e = t->probation.tail != SG_LRU_NONE ? t->probation.tail : t->protected.tail;
	sg_lru_remove(&t->space, t->entries[e].segment == SEG_PROBATION ? &t->probation :
			&t->protected, e);
	t->evictions++;
	return e;
}

static uint32_t add_entry(struct sg_bulk *t, const struct sg_fingerprint *fp, uint32_t now_half)
{
	uint32_t e = take_entry(t);
	struct entry *n = &t->entries[e];

	memset(n, 0, sizeof(*n));
	n->first = *fp;
	n->digest = sg_fingerprint_digest(fp);
	if (++t->generation == 0)
		t->generation = 1;
	n->generation = t->generation;
	n->half = now_half;
	n->segment = SEG_PROBATION;
	sg_lru_push_head(&t->space, &t->probation, e);
	index_entry(t, e);
	return e;
}

/* Seen again: a body on probation is protected from now on (the
 * protected list, when full, hands its oldest back to probation). */
static void promote(struct sg_bulk *t, uint32_t e)
{
	struct entry *n = &t->entries[e];

	if (n->segment == SEG_PROTECTED) {
		sg_lru_touch(&t->space, &t->protected, e);
		return;
	}
	sg_lru_remove(&t->space, &t->probation, e);
	if (t->protected.count >= t->limits.capacity / 4 * 3 && t->protected.tail != SG_LRU_NONE) {
		uint32_t old = t->protected.tail;

		sg_lru_remove(&t->space, &t->protected, old);
		t->entries[old].segment = SEG_PROBATION;
		sg_lru_push_head(&t->space, &t->probation, old);
	}
	n->segment = SEG_PROTECTED;
	sg_lru_push_head(&t->space, &t->protected, e);
}

static void count(struct entry *e, const struct sg_bulk_message *m, uint32_t now_half)
{
	int h = now_half & 1, grew = 0, mine_grew = 0;
	struct sender_slot *mine = find_slot(e, m->sender, now_half, 1);

	if (m->count_message) {
		e->messages[h]++;
		e->rcpts[h] = e->rcpts[h] > UINT32_MAX - m->rcpts ? UINT32_MAX
								  : e->rcpts[h] + m->rcpts;
		if (mine)
			mine->messages[h]++;
	}
	grew |= sg_hll_add(e->senders[h], SENDERS_P, m->sender);
	for (size_t i = 0; i < m->n_domains; i++) {
		grew |= sg_hll_add(e->domains[h], DOMAINS_P, m->domains[i]);
		if (mine) {
			mine_grew |= exact_add(mine, h, m->domains[i]);
			mine_grew |= sg_hll_add(mine->domains[h], SENDER_DOMAINS_P, m->domains[i]);
		}
	}
	/* estimates only when a register grew: rarely, once a body's
	 * recipients repeat */
	if (grew)
		refresh_entry(e);
	if (mine_grew)
		refresh_slot(mine);
}

int sg_bulk_note(struct sg_bulk *t, const struct sg_fingerprint *fp, uint64_t now,
		 const struct sg_bulk_message *m, struct sg_bulk_ref *ref)
{
	uint32_t now_half = now_half_of(t, now), e;

	ref->entry = 0;
	ref->generation = 0;
	if (!fp->shingles || fp->shingles < t->limits.min_shingles)
		return -1;
	pthread_mutex_lock(&t->lock);
	e = lookup(t, fp);
	if (e == SG_LRU_NONE) {
		e = add_entry(t, fp, now_half);
	} else {
		promote(t, e);
		index_entry(t, e);	/* its ways may have been taken since */
		now_half = roll_entry(&t->entries[e], now_half);
	}
	count(&t->entries[e], m, now_half);
	ref->entry = e;
	ref->generation = t->entries[e].generation;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int sg_bulk_view(struct sg_bulk *t, struct sg_bulk_ref ref, uint64_t sender, uint64_t now,
		 uint32_t spread_domains, struct sg_bulk_view *v)
{
	int rc = -1;

	memset(v, 0, sizeof(*v));
	if (!ref.generation || ref.entry >= t->limits.capacity)
		return -1;
	pthread_mutex_lock(&t->lock);
	if (t->entries[ref.entry].generation == ref.generation) {
		view_of(&t->entries[ref.entry], sender, now_half_of(t, now), spread_domains, v);
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int sg_bulk_find(struct sg_bulk *t, const struct sg_fingerprint *fp, uint64_t sender,
		 uint64_t now, uint32_t spread_domains, struct sg_bulk_view *v)
{
	uint32_t e;

	memset(v, 0, sizeof(*v));
	if (!fp->shingles)
		return -1;
	pthread_mutex_lock(&t->lock);
	e = lookup(t, fp);
	if (e != SG_LRU_NONE)
		view_of(&t->entries[e], sender, now_half_of(t, now), spread_domains, v);
	pthread_mutex_unlock(&t->lock);
	return e == SG_LRU_NONE ? -1 : 0;
}

void sg_bulk_stats(struct sg_bulk *t, struct sg_bulk_stats *st)
{
	pthread_mutex_lock(&t->lock);
	st->capacity = t->limits.capacity;
	st->entries = t->probation.count + t->protected.count;
	st->protected_entries = t->protected.count;
	st->evictions = t->evictions;
	pthread_mutex_unlock(&t->lock);
}
