/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* shared_table.c - the sync's bounded table of senders (see shared_table.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "shared_table.h"

static uint64_t hash_key(const struct sg_src_key *k)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */
	const uint8_t *p = (const uint8_t *)k;

	for (size_t i = 0; i < sizeof(*k); i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

int sg_shared_table_init(struct sg_shared_table *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	/* small at first: a scan of the table costs its capacity, not its senders */
	t->cap = SG_SHARED_TABLE_MIN;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	if (!t->slots) {
		errno = ENOMEM;
		return -1;
	}
	t->max = max;
	return 0;
}

static size_t probe(const struct sg_shared_table *t, const struct sg_src_key *key, int *found);

/* Doubles the capacity (every entry moves: pointers into the table do not
 * survive a get that makes an entry). -1 when out of memory. */
static int grow(struct sg_shared_table *t)
{
	struct sg_shared_table bigger = *t;

	bigger.cap = t->cap * 2;
	bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
	if (!bigger.slots)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		int found;

		if (t->slots[i].used)
			bigger.slots[probe(&bigger, &t->slots[i].key, &found)] = t->slots[i];
	}
	free(t->slots);
	*t = bigger;
	return 0;
}

void sg_shared_table_free(struct sg_shared_table *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static size_t probe(const struct sg_shared_table *t, const struct sg_src_key *key, int *found)
{
	size_t i = hash_key(key) & (t->cap - 1);

	while (t->slots[i].used) {
		if (memcmp(&t->slots[i].key, key, sizeof(*key)) == 0) {
			*found = 1;
			return i;
		}
		i = (i + 1) & (t->cap - 1);
	}
	*found = 0;
	return i;
}

struct sg_shared_sender *sg_shared_table_find(struct sg_shared_table *t,
					      const struct sg_src_key *key)
{
	int found;
	size_t i;

	if (!t->slots)
		return NULL;
	i = probe(t, key, &found);
	return found ? &t->slots[i] : NULL;
}

struct sg_shared_sender *sg_shared_table_get(struct sg_shared_table *t,
					     const struct sg_src_key *key, int *created)
{
	int found;
	size_t i;

	*created = 0;
	if (!t->slots)
		return NULL;
	i = probe(t, key, &found);
	if (found)
		return &t->slots[i];
	if (t->n >= t->max)
		return NULL;
	/* at most three quarters full */
	if ((t->n + 1) * 4 > t->cap * 3) {
		if (grow(t))
			return NULL;
		i = probe(t, key, &found);
	}
	memset(&t->slots[i], 0, sizeof(t->slots[i]));
	t->slots[i].key = *key;
	t->slots[i].used = 1;
	t->n++;
	*created = 1;
	return &t->slots[i];
}

void sg_shared_table_remove(struct sg_shared_table *t, struct sg_shared_sender *s)
{
	size_t i = (size_t)(s - t->slots), j = i;

	if (!s->used)
		return;
	s->used = 0;
	t->n--;
	/* shift back the run after it, so every entry stays reachable from its home */
	for (;;) {
		size_t home;

		j = (j + 1) & (t->cap - 1);
		if (!t->slots[j].used)
			break;
		home = hash_key(&t->slots[j].key) & (t->cap - 1);
		/* j's entry may move to i when its home is not in (i, j] (cyclically) */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			t->slots[i] = t->slots[j];
			t->slots[j].used = 0;
			i = j;
		}
	}
}
