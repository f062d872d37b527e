/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * bulk.h - bulk detection across senders: a bounded table of the bodies
 * sent lately (by fingerprint, fingerprint.h), each with, over the last
 * window, how many messages and recipients carried it, the distinct
 * recipient domains it went to and the distinct senders that sent it,
 * and per sender the messages and domains of that sender.
 *
 * What it tells apart:
 *  - a newsletter: one sender, the same body, many recipients: one entry,
 *    1 sender, its domains;
 *  - an outbreak: the same body from several senders each spreading it
 *    (several VMs of a botnet, or one spam kit on many hosts): 3 or more
 *    "spreading" senders, each to `spread_domains` domains or more;
 *  - a body many VMs send each to its own few domains (a CMS's stock
 *    notification): many senders, none spreading: not an outbreak.
 *
 * Near-duplicates share an entry by banded LSH: the 64 bins of a
 * signature are cut into 16 bands of 4; each band's hash picks a set of
 * its band's index (2 ways a set, a set per entry). A full set keeps a
 * body seen twice (protected) over a one-off and the more lately counted
 * of two alike; a way lost only costs a match that the other 15 bands
 * almost always still make. A body becomes a candidate of an entry
 * sharing one band with it (likely from Jaccard 0.6 up: 1 - (1 - J^4)^16
 * is 0.89 at 0.6, 0.99 at 0.7), and matches it if min_similarity percent
 * of all bins agree with the entry's first body.
 *
 * Counts are kept in two halves of the window (30 minutes each, by
 * default): a count covers the current half and the one before, so the
 * last 30 to 60 minutes. Each entry tracks up to SG_BULK_SENDER_SLOTS
 * senders by name (a slot idle for a whole window is reused); senders past
 * those are still counted among the distinct senders (a HyperLogLog). A
 * tracked sender's domains are counted exactly up to 16 a half (16-bit
 * hashes), then by a HyperLogLog: "spreading" is judged on an exact count
 * wherever spread_domains is usually set (a 32-register sketch alone read
 * 10 domains as under 10 in 38% of cases, and 9 as 10 or more in 29%).
 *
 * Bounded: `capacity` entries, all allocated at sg_bulk_new, about 1,820
 * bytes each with the index (sg_bulk_bytes). A full table evicts the
 * least recently matched body seen only once (probation) before any body
 * seen twice (protected, at most 3/4 of the table): a sender flooding
 * unique bodies churns the one-offs, not the bulk being counted.
 * Thread-safe: one mutex, held for a lookup (32 way reads, a few
 * 64-bin comparisons) and the counting; never while calling out.
 */
#ifndef SMTPGUARD_SCAN_BULK_H
#define SMTPGUARD_SCAN_BULK_H

#include <stddef.h>
#include <stdint.h>
#include "fingerprint.h"

#define SG_BULK_SENDER_SLOTS 8

struct sg_bulk_limits {
	uint32_t capacity;		/* bodies held; default 8,192 */
	uint64_t window_ns;		/* default 1 hour, counted in two halves */
	uint32_t min_similarity;	/* percent of equal bins; default 60 */
	uint32_t min_shingles;		/* shorter bodies are not tracked; default 8 */
};

void sg_bulk_limits_default(struct sg_bulk_limits *l);

struct sg_bulk;

/* NULL if the limits make no sense (capacity 0 or over 2^24, a window
 * under 2 seconds) or memory is short. */
struct sg_bulk *sg_bulk_new(const struct sg_bulk_limits *l);
void sg_bulk_free(struct sg_bulk *t);
/* The bytes the table holds (all of it allocated at sg_bulk_new). */
size_t sg_bulk_bytes(const struct sg_bulk *t);

/* Which entry a message went to: valid while its generation matches. */
struct sg_bulk_ref {
	uint32_t entry;
	uint32_t generation;	/* 0: none */
};

struct sg_bulk_message {
	uint64_t sender;		/* the sending VM, by its key's hash */
	const uint64_t *domains;	/* the recipient domains, hashed (keyhash.h) */
	size_t n_domains;
	uint32_t rcpts;
	/* 0: the same message noted again (under a sub-identity of the same
	 * sender): only the distinct sets learn from it, which it cannot
	 * inflate */
	int count_message;
};

/* A message with this body: found or added, and counted. 0 with *ref
 * set; -1 if the body is not tracked (empty, or fewer than min_shingles
 * shingles: too little text to call two bodies the same). */
int sg_bulk_note(struct sg_bulk *t, const struct sg_fingerprint *fp, uint64_t now,
		 const struct sg_bulk_message *m, struct sg_bulk_ref *ref);

/* An entry as seen by one sender, over the window. */
struct sg_bulk_view {
	uint32_t messages, rcpts;	/* all senders */
	uint32_t domains;		/* distinct recipient domains, all senders */
	uint32_t senders;		/* distinct senders */
	uint32_t spreading_senders;	/* tracked senders, each to >= spread_domains domains */
	int sender_tracked;		/* the sender asked about has a slot: */
	uint32_t sender_messages, sender_domains;	/* what it sent */
	uint64_t digest;		/* of the entry's first body (sg_fingerprint_digest) */
	/* other hosts' spreading senders of this body (the shared store,
	 * sg_behaviour_share_bulk); 0 from the table itself */
	uint32_t shared_spreading_senders;
};

/* Whether a body is worth telling other hosts about: 2 or more senders, or
 * one spreading it; a one-off of one sender is not (it would only churn
 * the shared map). */
static inline int sg_bulk_view_shareable(const struct sg_bulk_view *v)
{
	return v->senders >= 2 || v->spreading_senders >= 1;
}

/* 0 with *v; -1 if the entry has since been evicted or reused. */
int sg_bulk_view(struct sg_bulk *t, struct sg_bulk_ref ref, uint64_t sender, uint64_t now,
		 uint32_t spread_domains, struct sg_bulk_view *v);
/* The entry a body would match, without counting it: 0 with *v, -1 if
 * none. */
int sg_bulk_find(struct sg_bulk *t, const struct sg_fingerprint *fp, uint64_t sender,
		 uint64_t now, uint32_t spread_domains, struct sg_bulk_view *v);

struct sg_bulk_stats {
	uint32_t entries, capacity, protected_entries;
	uint64_t evictions;
};

void sg_bulk_stats(struct sg_bulk *t, struct sg_bulk_stats *st);

#endif
