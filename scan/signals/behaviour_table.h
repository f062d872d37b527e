/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * behaviour_table.h - inside the behaviour store (behaviour.h): the
 * fixed-capacity table of senders and their sub-identities, in shards.
 *
 * A shard is a slice of one preallocated array of struct sg_sender, with
 * hash chains (32-bit indices) and two recency lists (lru.h): probation
 * (seen in one slot so far) and protected (seen in two or more, at most
 * 3/4 of the shard). A sender key's shard is picked by its hash; its
 * sub-identities live in the same shard, hashed with the parent's hash
 * mixed in, listed from the parent (first_child, next_sibling), so one
 * lock covers a sender and all its sub-identities. Entries never used yet
 * are taken from a high-water mark, so the pages of an empty table are
 * not touched. Every function here but the key ones is called with the
 * shard's lock held.
 */
#ifndef SMTPGUARD_SCAN_BEHAVIOUR_TABLE_H
#define SMTPGUARD_SCAN_BEHAVIOUR_TABLE_H

#include <pthread.h>
#include <stdint.h>
#include "behaviour.h"
#include "bulk.h"
#include "keyhash.h"
#include "lru.h"
#include "window.h"

_Static_assert(8 <= SG_WCOUNTS_MAX, "a sender's counts fit one sg_wcounts");

#define SG_RCPT_DOMAINS_P 6
#define SG_TLS_MX_P 6
#define SG_MAIL_FROM_P 5
#define SG_GREETINGS_P 5
#define SG_NO_ENTRY SG_LRU_NONE

/* A sender's counts over the window (window.h, sg_wcounts). */
enum sg_count {
	SG_COUNT_MESSAGES,
	SG_COUNT_RCPTS,
	SG_COUNT_RCPT_REPLIES,
	SG_COUNT_RCPT_UNKNOWN,
	SG_COUNT_POLICY,
	SG_COUNT_TLS_SESSIONS,
	SG_COUNT_TLS_KIB,
	SG_COUNT_TLS_MS,
	SG_COUNT_N
};

/* Its distinct counts (window.h, sg_wdistinct). */
enum sg_distinct {
	SG_DISTINCT_RCPT_DOMAINS,
	SG_DISTINCT_MAIL_FROM,
	SG_DISTINCT_TLS_MX,
	SG_DISTINCT_TLS_GREETINGS,
	SG_DISTINCT_N
};

/* The values with a usual (window.h, sg_baseline). */
enum sg_usual {
	SG_USUAL_MESSAGES,
	SG_USUAL_RCPTS,
	SG_USUAL_RCPT_DOMAINS,
	SG_USUAL_BURST,
	SG_USUAL_TLS_SESSIONS,
	SG_USUAL_TLS_MX,
	SG_USUAL_COUNT
};

struct sg_sender {
	/* who */
	uint64_t hash;
	struct sg_lru_link link;
	uint32_t chain;			/* next in its hash bucket */
	uint32_t parent;		/* SG_NO_ENTRY: a sender key */
	uint32_t first_child, next_sibling;
	uint8_t n_children;
	uint8_t segment;
	uint8_t key_len;
	uint8_t key[SG_BEHAVIOUR_KEY_MAX];
	/* when */
	uint64_t first_seen, last_seen;
	uint64_t first_slot;		/* promoted once seen in another slot */
	uint64_t touched_slot;		/* when it last moved to the head of its list */
	uint64_t clock;			/* the newest slot its windows hold */
	uint32_t day;			/* the UTC day its usual's peaks are of */
	uint16_t days_folded;
	/* what: first what every assessment reads, together */
	float distinct[SG_DISTINCT_N];	/* the estimates, as of the last change */
	struct sg_decayed burst;
	struct sg_baseline usual[SG_USUAL_COUNT];
	struct sg_bulk_ref bulk;	/* its last body */
	struct sg_wcounts counts;	/* SG_COUNT_*, their totals first */
	uint8_t rcpt_domains[SG_WDISTINCT_BYTES(SG_RCPT_DOMAINS_P)];
	uint8_t tls_mx[SG_WDISTINCT_BYTES(SG_TLS_MX_P)];
	uint8_t mail_from_domains[SG_WDISTINCT_BYTES(SG_MAIL_FROM_P)];
	uint8_t tls_greetings[SG_WDISTINCT_BYTES(SG_GREETINGS_P)];
};

struct sg_shard {
	pthread_mutex_t lock;
	struct sg_sender *s;		/* capacity entries */
	uint32_t *buckets;		/* bucket_mask + 1 chain heads */
	uint32_t bucket_mask;
	uint32_t capacity;
	uint32_t unused;		/* entries from here on were never used */
	struct sg_lru probation, protected, free;
	struct sg_lru_space space;
	uint64_t evictions, recycled;
} __attribute__((aligned(64)));

struct sg_table {
	struct sg_shard *shards;
	uint32_t n_shards;
	uint32_t max_subs;
	struct sg_hash_key key;
	struct sg_sender *all;
	uint32_t *all_buckets;
	size_t bytes;
};

/* A key as stored: up to SG_BEHAVIOUR_KEY_MAX bytes (see behaviour.h). */
struct sg_key {
	uint8_t len;
	uint8_t bytes[SG_BEHAVIOUR_KEY_MAX];
};

/* An id made ready before any lock is taken. */
struct sg_resolved {
	struct sg_key key, parent;
	int is_sub;
	uint64_t hash;			/* of the key (with its parent's mixed in) */
	uint64_t top_hash;		/* of the sender key: the shard, the bulk table's sender */
	struct sg_shard *shard;
};

int sg_table_init(struct sg_table *t, uint32_t capacity, uint32_t shards, uint32_t max_subs,
		  const uint64_t hash_key[2]);
void sg_table_destroy(struct sg_table *t);

/* Canonical keys and hashes, no lock: -1 if the id is unusable. */
int sg_table_prepare(const struct sg_table *t, const struct sg_behaviour_id *id,
		     struct sg_resolved *r);

/* With r->shard locked: the entry of the id, or SG_NO_ENTRY. With
 * create, a missing parent and key are added (evicting if need be), a
 * new one dated now; fresh reports whether the key's entry is new. */
uint32_t sg_table_resolve(struct sg_table *t, const struct sg_resolved *r, int create,
			  uint64_t now, uint64_t slot, int *fresh);
/* The entry was active in slot: the most recent of its list (once a
 * slot: moving it touches its neighbours' cache lines, and an order
 * finer than a slot buys nothing), promoted once active in two slots. */
void sg_table_touch(struct sg_shard *sh, uint32_t i, uint64_t slot);
/* Frees an entry, and a sender key's sub-identities with it. */
void sg_table_remove(struct sg_shard *sh, uint32_t i);

#endif
