/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* behaviour_table.c - the sender table of the behaviour store: keys,
 * shards, hash chains, eviction and the bound on sub-identities (see
 * behaviour_table.h). */
#include <stdlib.h>
#include <string.h>
#include "behaviour_table.h"

#define MAX_CAPACITY (1u << 26)
#define LONG_KEY_HEAD (SG_BEHAVIOUR_KEY_MAX - 8)

enum segment { SEG_FREE, SEG_PROBATION, SEG_PROTECTED };

int sg_table_init(struct sg_table *t, uint32_t capacity, uint32_t shards, uint32_t max_subs,
		  const uint64_t hash_key[2])
{
	uint32_t per_shard, buckets = 1;

	memset(t, 0, sizeof(*t));
	if (!shards || (shards & (shards - 1)) || capacity < shards || capacity > MAX_CAPACITY ||
	    !max_subs || max_subs > UINT8_MAX)
		return -1;
	per_shard = capacity / shards;
	while (buckets < per_shard)
		buckets <<= 1;
	t->n_shards = shards;
	t->max_subs = max_subs;
	if (hash_key[0] || hash_key[1])
		t->key = (struct sg_hash_key){ hash_key[0], hash_key[1] };
	else
		sg_hash_key_random(&t->key);
	t->shards = aligned_alloc(64, sizeof(*t->shards) * shards);
	t->all = calloc((size_t)per_shard * shards, sizeof(*t->all));
	t->all_buckets = malloc(sizeof(uint32_t) * buckets * shards);
	if (!t->shards || !t->all || !t->all_buckets)
		goto fail;
	memset(t->shards, 0, sizeof(*t->shards) * shards);
	memset(t->all_buckets, 0xff, sizeof(uint32_t) * buckets * shards);
	for (uint32_t i = 0; i < shards; i++) {
		struct sg_shard *sh = &t->shards[i];

		sh->s = t->all + (size_t)i * per_shard;
		sh->buckets = t->all_buckets + (size_t)i * buckets;
		sh->bucket_mask = buckets - 1;
		sh->capacity = per_shard;
		sh->space = (struct sg_lru_space){ (char *)sh->s, sizeof(struct sg_sender),
						   offsetof(struct sg_sender, link) };
		sg_lru_init(&sh->probation);
		sg_lru_init(&sh->protected);
		sg_lru_init(&sh->free);
		if (pthread_mutex_init(&sh->lock, NULL)) {
			while (i-- > 0)
				pthread_mutex_destroy(&t->shards[i].lock);
			goto fail;
		}
	}
	t->bytes = sizeof(*t->shards) * shards + sizeof(*t->all) * (size_t)per_shard * shards +
		   sizeof(uint32_t) * (size_t)buckets * shards;
	return 0;
fail:
	free(t->shards);
	free(t->all);
	free(t->all_buckets);
	memset(t, 0, sizeof(*t));
	return -1;
}

void sg_table_destroy(struct sg_table *t)
{
	for (uint32_t i = 0; i < t->n_shards; i++)
		pthread_mutex_destroy(&t->shards[i].lock);
	free(t->shards);
	free(t->all);
	free(t->all_buckets);
	memset(t, 0, sizeof(*t));
}

/* A key past SG_BEHAVIOUR_KEY_MAX is its head and a keyed hash of the
 * whole: distinct long keys stay distinct, and nobody without the hash
 * key can make one collide with a short one. */
static int canon_key(const struct sg_table *t, const void *key, size_t len, struct sg_key *k)
{
	if (!key || !len)
		return -1;
	if (len <= SG_BEHAVIOUR_KEY_MAX) {
		k->len = (uint8_t)len;
		memcpy(k->bytes, key, len);
	} else {
		uint64_t h = sg_keyhash(&t->key, key, len);

		k->len = SG_BEHAVIOUR_KEY_MAX;
		memcpy(k->bytes, key, LONG_KEY_HEAD);
		memcpy(k->bytes + LONG_KEY_HEAD, &h, sizeof(h));
	}
	return 0;
}

int sg_table_prepare(const struct sg_table *t, const struct sg_behaviour_id *id,
		     struct sg_resolved *r)
{
	if (canon_key(t, id->key, id->key_len, &r->key))
		return -1;
	r->is_sub = id->parent != NULL;
	if (r->is_sub) {
		struct sg_hash_key child_key = t->key;

		if (canon_key(t, id->parent, id->parent_len, &r->parent))
			return -1;
		r->top_hash = sg_keyhash(&t->key, r->parent.bytes, r->parent.len);
		child_key.k0 ^= r->top_hash;
		r->hash = sg_keyhash(&child_key, r->key.bytes, r->key.len);
	} else {
		r->top_hash = r->hash = sg_keyhash(&t->key, r->key.bytes, r->key.len);
	}
	/* the top bits pick the shard, the low ones the bucket */
	r->shard = &t->shards[(r->top_hash >> 32) & (t->n_shards - 1)];
	return 0;
}

static uint32_t find(struct sg_shard *sh, uint64_t hash, const struct sg_key *k, uint32_t parent)
{
	for (uint32_t i = sh->buckets[hash & sh->bucket_mask]; i != SG_NO_ENTRY; i = sh->s[i].chain) {
		const struct sg_sender *e = &sh->s[i];

		if (e->hash == hash && e->parent == parent && e->key_len == k->len &&
		    !memcmp(e->key, k->bytes, k->len))
			return i;
	}
	return SG_NO_ENTRY;
}

static void unchain(struct sg_shard *sh, uint32_t i)
{
	uint32_t *link = &sh->buckets[sh->s[i].hash & sh->bucket_mask];

	while (*link != SG_NO_ENTRY && *link != i)
		link = &sh->s[*link].chain;
	if (*link == i)
		*link = sh->s[i].chain;
}

static struct sg_lru *list_of(struct sg_shard *sh, uint32_t i)
{
	return sh->s[i].segment == SEG_PROTECTED ? &sh->protected : &sh->probation;
}

/* One entry back to the free list; its parent forgets it. */
static void free_one(struct sg_shard *sh, uint32_t i)
{
	struct sg_sender *e = &sh->s[i];

	if (e->parent != SG_NO_ENTRY) {
		struct sg_sender *p = &sh->s[e->parent];
		uint32_t *link = &p->first_child;

		while (*link != SG_NO_ENTRY && *link != i)
			link = &sh->s[*link].next_sibling;
		if (*link == i) {
			*link = e->next_sibling;
			p->n_children--;
		}
	}
	unchain(sh, i);
	sg_lru_remove(&sh->space, list_of(sh, i), i);
	e->segment = SEG_FREE;
	e->parent = SG_NO_ENTRY;
	sg_lru_push_head(&sh->space, &sh->free, i);
}

void sg_table_remove(struct sg_shard *sh, uint32_t i)
{
	struct sg_sender *e = &sh->s[i];

	while (e->first_child != SG_NO_ENTRY)
		free_one(sh, e->first_child);
	free_one(sh, i);
}

/* The least recently active entry that is not `keep`: probation first. */
static uint32_t victim(struct sg_shard *sh, uint32_t keep)
{
	struct sg_lru *lists[2] = { &sh->probation, &sh->protected };

	for (int l = 0; l < 2; l++) {
		uint32_t i = lists[l]->tail;

		if (i == keep && i != SG_NO_ENTRY)
			i = sg_lru_link(&sh->space, i)->prev;
		if (i != SG_NO_ENTRY)
			return i;
	}
	return SG_NO_ENTRY;
}

/* A free entry: a freed one, one never used, or the least recently
 * active one's (never keep's). */
static uint32_t take(struct sg_shard *sh, uint32_t keep)
{
	uint32_t i = sh->free.head;

	if (i != SG_NO_ENTRY) {
		sg_lru_remove(&sh->space, &sh->free, i);
		return i;
	}
	if (sh->unused < sh->capacity)
		return sh->unused++;
	i = victim(sh, keep);
	if (i == SG_NO_ENTRY)
		return SG_NO_ENTRY;
	sg_table_remove(sh, i);
	sh->evictions++;
	i = sh->free.head;
	sg_lru_remove(&sh->space, &sh->free, i);
	return i;
}

static uint32_t add(struct sg_shard *sh, uint64_t hash, const struct sg_key *k, uint32_t parent,
		    uint64_t now, uint64_t slot)
{
	uint32_t i = take(sh, parent);
	struct sg_sender *e;

	if (i == SG_NO_ENTRY)
		return SG_NO_ENTRY;
	e = &sh->s[i];
	memset(e, 0, sizeof(*e));
	e->hash = hash;
	e->parent = parent;
	e->first_child = e->next_sibling = SG_NO_ENTRY;
	e->key_len = k->len;
	memcpy(e->key, k->bytes, k->len);
	e->first_seen = e->last_seen = now;
	e->first_slot = e->clock = e->touched_slot = slot;
	e->day = (uint32_t)(now / (86400ULL * 1000000000ULL));
	e->chain = sh->buckets[hash & sh->bucket_mask];
	sh->buckets[hash & sh->bucket_mask] = i;
	e->segment = SEG_PROBATION;
	sg_lru_push_head(&sh->space, &sh->probation, i);
	if (parent != SG_NO_ENTRY) {
		struct sg_sender *p = &sh->s[parent];

		e->next_sibling = p->first_child;
		p->first_child = i;
		p->n_children++;
	}
	return i;
}

/* A sender key at its bound: its least recently active sub-identity goes. */
static void make_room_for_sub(struct sg_table *t, struct sg_shard *sh, uint32_t parent)
{
	uint32_t oldest = SG_NO_ENTRY;

	if (sh->s[parent].n_children < t->max_subs)
		return;
	for (uint32_t c = sh->s[parent].first_child; c != SG_NO_ENTRY; c = sh->s[c].next_sibling) {
		if (oldest == SG_NO_ENTRY || sh->s[c].last_seen < sh->s[oldest].last_seen)
			oldest = c;
	}
	if (oldest != SG_NO_ENTRY) {
		free_one(sh, oldest);
		sh->recycled++;
	}
}

uint32_t sg_table_resolve(struct sg_table *t, const struct sg_resolved *r, int create,
			  uint64_t now, uint64_t slot, int *fresh)
{
	struct sg_shard *sh = r->shard;
	uint32_t parent = SG_NO_ENTRY, i;

	*fresh = 0;
	if (r->is_sub) {
		parent = find(sh, r->top_hash, &r->parent, SG_NO_ENTRY);
		if (parent == SG_NO_ENTRY) {
			if (!create)
				return SG_NO_ENTRY;
			parent = add(sh, r->top_hash, &r->parent, SG_NO_ENTRY, now, slot);
			if (parent == SG_NO_ENTRY)
				return SG_NO_ENTRY;
		}
		/* the parent is as active as its sub-identity: it must not be
		 * the one evicted to make room for it */
		if (create)
			sg_table_touch(sh, parent, slot);
	}
	i = find(sh, r->hash, &r->key, parent);
	if (i != SG_NO_ENTRY || !create)
		return i;
	if (parent != SG_NO_ENTRY)
		make_room_for_sub(t, sh, parent);
	i = add(sh, r->hash, &r->key, parent, now, slot);
	*fresh = i != SG_NO_ENTRY;
	return i;
}

void sg_table_touch(struct sg_shard *sh, uint32_t i, uint64_t slot)
{
	struct sg_sender *e = &sh->s[i];

	if (slot == e->touched_slot)
		return;
	e->touched_slot = slot;
	if (e->segment == SEG_PROTECTED) {
		sg_lru_touch(&sh->space, &sh->protected, i);
		return;
	}
	if (slot == e->first_slot) {
		sg_lru_touch(&sh->space, &sh->probation, i);
		return;
	}
	sg_lru_remove(&sh->space, &sh->probation, i);
	if (sh->protected.count >= sh->capacity / 4 * 3 && sh->protected.tail != SG_NO_ENTRY) {
		uint32_t old = sh->protected.tail;

		sg_lru_remove(&sh->space, &sh->protected, old);
		sh->s[old].segment = SEG_PROBATION;
		sg_lru_push_head(&sh->space, &sh->probation, old);
	}
	e->segment = SEG_PROTECTED;
	sg_lru_push_head(&sh->space, &sh->protected, i);
}
