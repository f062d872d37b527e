/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * shared_table.h - the senders the daemon's sync with the shared store
 * tracks (daemon/shared_sync.c): for each, the counts already sent (the
 * next delta is what the maps say minus these) and the penalty and ladder
 * step as last agreed with the store (a local change from them is sent; a
 * change in the store is written to the maps).
 *
 * Bounded: at most max senders (shared_senders_max); a sender beyond it is
 * refused (the caller counts it and leaves it local). Open addressing with
 * linear probing, at most three quarters full, the capacity doubling from
 * SG_SHARED_TABLE_MIN as senders come (a walk of the table costs what it
 * holds, not its bound); a get that makes an entry may move every entry.
 * Deletion shifts back, so no tombstones pile up under churn.
 */
#ifndef SMTPGUARD_SHARED_TABLE_H
#define SMTPGUARD_SHARED_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <smtpguard/maps.h>

#define SG_SHARED_TABLE_MIN 256

struct sg_shared_sender {
	struct sg_src_key key;
	uint64_t syns_sent;	/* src_state.syns as last sent */
	uint64_t msgs_sent;	/* msgs + rejects + tempfails as last sent */
	uint64_t syns_now;	/* what the round in flight sends */
	uint64_t msgs_now;
	uint64_t pen_until_ns;	/* the penalty as last agreed (CLOCK_MONOTONIC); 0: none */
	uint64_t step_until_ns;	/* the ladder step's end as last agreed */
	uint8_t step;		/* the ladder step as last agreed */
	uint8_t used;
	uint8_t in_store;	/* the store held a penalty or step for it at the last round */
	uint8_t sending;	/* its counts are in the round in flight */
	uint8_t returned;	/* the store returned it in the round being applied */
	uint32_t pad;
	uint32_t seen;		/* the round that last found it in the maps */
	uint64_t released_ns;	/* src_feedback.released_ns as last seen */
};

struct sg_shared_table {
	struct sg_shared_sender *slots;
	size_t cap;		/* a power of two */
	size_t max;
	size_t n;
};

/* -1 with errno (ENOMEM). */
int sg_shared_table_init(struct sg_shared_table *t, size_t max);
void sg_shared_table_free(struct sg_shared_table *t);
struct sg_shared_sender *sg_shared_table_find(struct sg_shared_table *t,
					      const struct sg_src_key *key);
/* The sender's entry, made (zeroed) when new; NULL when the table is full. */
struct sg_shared_sender *sg_shared_table_get(struct sg_shared_table *t,
					     const struct sg_src_key *key, int *created);
void sg_shared_table_remove(struct sg_shared_table *t, struct sg_shared_sender *s);

/* The delta of a count since it was last sent: a count lower than the one
 * sent (the entry was evicted and made again) is all new. */
static inline uint64_t sg_shared_delta(uint64_t now, uint64_t sent)
{
	return now >= sent ? now - sent : now;
}

#endif
