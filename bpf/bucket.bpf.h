/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * bucket.bpf.h - a sender's connection bucket (GCRA) in src_state, and the
 * shared per-interface bucket when that table is full, as global functions
 * of the classifier (sg_bucket_lockfree, sg_bucket_locked), verified once
 * apart from the classifier's many paths: inline, the TC program exceeds
 * the verifier's budget. A program calls the one its lf_ok allows, so the
 * *_locked programs hold no lock-free code. Included by classify.bpf.h,
 * after sg_count and source_check.bpf.h (sg_iface).
 */
#ifndef SMTPGUARD_BUCKET_BPF_H
#define SMTPGUARD_BUCKET_BPF_H

#include "maps.bpf.h"

enum sg_rate_result {
	SG_RATE_OK = 0,
	SG_RATE_OVER,
	SG_RATE_PENALISED,
	SG_RATE_NO_STATE,	/* no room for its state in either table */
};

/* Set by the loader before load (lib/probe.h): 1 where the kernel has BPF
 * cmpxchg (5.12) and bpf_ktime_get_coarse_ns (5.11), for the lock-free
 * bucket; 0 for the spin-locked one. The verifier prunes the branch not
 * taken, but kernels before 5.12 reject a cmpxchg anywhere in a program's
 * instructions before they verify it ("BPF_STX uses reserved fields" on
 * 5.10): there the loader loads the *_locked programs instead, built with
 * lf_ok = 0 so that they hold no lock-free code at all. */
const volatile __u8 sg_lockfree_bucket = 0;

/* lf_ok: a compile-time constant of each program; the flag is read anew at
 * each use, as the verifier prunes best that way */
#define SG_LOCKFREE(lf_ok) ((lf_ok) && sg_lockfree_bucket)

static __always_inline __u64 sg_now(int lf_ok)
{
	/* the coarse clock (one tick, 1-10 ms, behind) costs a fraction of
	 * bpf_ktime_get_ns; the bucket's error stays below one tick's worth of
	 * tokens, and does not add up over time */
	return SG_LOCKFREE(lf_ok) ? bpf_ktime_get_coarse_ns() : bpf_ktime_get_ns();
}

/* GCRA (a token bucket kept as one timestamp): a SYN is allowed while the
 * next theoretical arrival time stays within burst * interval of now. */
static __always_inline int sg_gcra(__u64 tat_now, const struct sg_rate_class *rc,
				   __u64 now, __u64 *tat_next)
{
	__u64 burst = rc->conn_burst ? rc->conn_burst : 1;
	__u64 tat = (tat_now > now ? tat_now : now) + rc->conn_interval_ns;

	if (tat - now > burst * rc->conn_interval_ns)
		return SG_RATE_OVER;
	*tat_next = tat;
	return SG_RATE_OK;
}

/* Lock-free: the bucket moves by compare-and-swap (bounded retries; a SYN
 * that keeps losing the race to others of the same source is refused, as
 * the bucket is being drained), counters by atomic adds. */
static __always_inline int sg_rate_check_lockfree(struct sg_src_state *st,
						  const struct sg_rate_class *rc,
						  __u32 class_id, __u64 now)
{
	int result = SG_RATE_OK;

	__sync_fetch_and_add(&st->syns, 1);
	st->last_seen_ns = now;
	if (st->rate_class != class_id) {
		/* the operator moved the sender to another class: the debt was
		 * counted in the old class's intervals; the new bucket starts full */
		st->rate_class = class_id;
		st->tat_ns = 0;
	}
	if (st->penalty_until_ns > now) {
		result = SG_RATE_PENALISED;
	} else if (rc && rc->conn_interval_ns) {
		result = SG_RATE_OVER;
		#pragma unroll
		for (int i = 0; i < 4; i++) {
			__u64 old = st->tat_ns, tat;

			if (sg_gcra(old, rc, now, &tat) != SG_RATE_OK)
				break;
			if (__sync_val_compare_and_swap(&st->tat_ns, old, tat) == old) {
				result = SG_RATE_OK;
				break;
			}
		}
	}
	if (result != SG_RATE_OK)
		__sync_fetch_and_add(&st->syn_drops, 1);
	return result;
}

static __always_inline int sg_rate_check_locked(struct sg_src_state *st,
						const struct sg_rate_class *rc,
						__u32 class_id, __u64 now)
{
	int result = SG_RATE_OK;
	__u64 tat;

	bpf_spin_lock(&st->lock);
	st->syns++;
	st->last_seen_ns = now;
	if (st->rate_class != class_id) {
		st->rate_class = class_id;	/* see sg_rate_check_lockfree */
		st->tat_ns = 0;
	}
	if (st->penalty_until_ns > now) {
		result = SG_RATE_PENALISED;
	} else if (rc && rc->conn_interval_ns) {
		result = sg_gcra(st->tat_ns, rc, now, &tat);
		if (result == SG_RATE_OK)
			st->tat_ns = tat;
	}
	if (result != SG_RATE_OK)
		st->syn_drops++;
	bpf_spin_unlock(&st->lock);
	return result;
}

static __always_inline int sg_rate_check(struct sg_src_state *st,
					 const struct sg_rate_class *rc,
					 __u32 class_id, __u64 now, int lf_ok)
{
	if (SG_LOCKFREE(lf_ok))
		return sg_rate_check_lockfree(st, rc, class_id, now);
	return sg_rate_check_locked(st, rc, class_id, now);
}

/* A refused SYN of a blocked source, counted in its state. */
static __always_inline void sg_count_refused(struct sg_src_state *st, __u64 now,
					     int lf_ok)
{
	if (SG_LOCKFREE(lf_ok)) {
		__sync_fetch_and_add(&st->syns, 1);
		__sync_fetch_and_add(&st->syn_drops, 1);
		st->last_seen_ns = now;
		return;
	}
	bpf_spin_lock(&st->lock);
	st->syns++;
	st->syn_drops++;
	st->last_seen_ns = now;
	bpf_spin_unlock(&st->lock);
}

/* The sender's state; when src_state is full, the shared bucket of its
 * class on the interface it came in on. */
static __always_inline struct sg_src_state *sg_source_state(const struct sg_src_key *key,
							    __u32 class_id, __u64 now,
							    __u32 ifindex,
							    const struct sg_settings *cfg)
{
	struct sg_overflow_key ok = { .ifindex = ifindex, .rate_class = class_id };
	struct sg_src_state *st = bpf_map_lookup_elem(&src_state, key);
	struct sg_iface_state *is;

	if (st)
		return st;
	/* an interface's share of the table: a flood of new addresses from one
	 * VM fills its own share, then its own overflow bucket */
	is = sg_iface(ifindex);
	if (is && (!cfg->source_state_max || is->sources < cfg->source_state_max)) {
		struct sg_src_state fresh = {};

		fresh.first_seen_ns = now;
		fresh.rate_class = class_id;
		fresh.ifindex = ifindex;
		/* EEXIST from a racing CPU is fine: the lookup below finds its entry */
		if (bpf_map_update_elem(&src_state, key, &fresh, BPF_NOEXIST) == 0)
			__sync_fetch_and_add(&is->sources, 1);
		st = bpf_map_lookup_elem(&src_state, key);
		if (st)
			return st;
	}
	sg_count(SG_STAT_STATE_FULL);
	st = bpf_map_lookup_elem(&overflow_state, &ok);
	if (st)
		return st;
	{
		struct sg_src_state fresh = {};

		fresh.first_seen_ns = now;
		fresh.rate_class = class_id;
		bpf_map_update_elem(&overflow_state, &ok, &fresh, BPF_NOEXIST);
	}
	/* NULL only if that table is full too: the caller refuses the SYN */
	return bpf_map_lookup_elem(&overflow_state, &ok);
}

/* flags of sg_bucket_*() (class_flags >> 16) */
#define SG_BUCKET_REFUSE	1	/* a blocked source's SYN: counted in its state, refused */
/* their result: enum sg_rate_result, or with SG_RATE_SOFT */
#define SG_RATE_SOFT		8	/* the sender has used steer_soft_percent of its burst */

/* Steer mode suspect: has the sender used steer_soft_percent of its
 * connection burst (its bucket's debt after this SYN)? */
static __always_inline int sg_bucket_soft(const struct sg_src_state *st,
					  const struct sg_rate_class *rc,
					  const struct sg_settings *cfg, __u64 now)
{
	__u64 tat, soft;

	if (!rc || !rc->conn_interval_ns || !cfg->steer_soft_percent)
		return 0;
	tat = *(volatile const __u64 *)&st->tat_ns;
	soft = (__u64)rc->conn_burst * rc->conn_interval_ns / 100 * cfg->steer_soft_percent;
	return tat > now && tat - now >= soft;
}

/* One SYN of the sender (src_hi, src_lo, key_ifindex: its sg_src_key)
 * through its bucket: class_flags is its policy's class (a class without a
 * name falls back to the default) and SG_BUCKET_* << 16, ifindex the
 * interface it came in on. */
static __always_inline int sg_bucket(__u64 src_hi, __u64 src_lo, __u32 ifindex,
				     __u32 key_ifindex, __u32 class_flags, int lf_ok)
{
	__u32 class_id = class_flags & 0xffff, flags = class_flags >> 16;
	struct sg_src_key key = {};
	const struct sg_settings *cfg;
	struct sg_rate_class *rc;
	struct sg_src_state *st;
	__u32 zero = 0;
	__u64 now;
	int result;

	((__u64 *)key.addr)[0] = src_hi;
	((__u64 *)key.addr)[1] = src_lo;
	key.ifindex = key_ifindex;
	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg)
		return SG_RATE_OK;
	now = sg_now(lf_ok);
	if (flags & SG_BUCKET_REFUSE) {
		st = sg_source_state(&key, class_id, now, ifindex, cfg);
		if (st)
			sg_count_refused(st, now, lf_ok);
		return SG_RATE_OVER;
	}
	rc = bpf_map_lookup_elem(&rate_classes, &class_id);
	if (!rc || !rc->name[0]) {
		class_id = SG_DEFAULT_RATE_CLASS;
		rc = bpf_map_lookup_elem(&rate_classes, &class_id);
	}
	st = sg_source_state(&key, class_id, now, ifindex, cfg);
	if (!st)
		return SG_RATE_NO_STATE;
	result = sg_rate_check(st, rc, class_id, now, lf_ok);
	if (result == SG_RATE_OK && cfg->steer_mode == SG_STEER_SUSPECT &&
	    sg_bucket_soft(st, rc, cfg, now))
		result |= SG_RATE_SOFT;
	return result;
}

__attribute__((noinline)) int sg_bucket_lockfree(__u64 src_hi, __u64 src_lo, __u32 ifindex,
						 __u32 key_ifindex, __u32 class_flags)
{
	return sg_bucket(src_hi, src_lo, ifindex, key_ifindex, class_flags, 1);
}

__attribute__((noinline)) int sg_bucket_locked(__u64 src_hi, __u64 src_lo, __u32 ifindex,
					       __u32 key_ifindex, __u32 class_flags)
{
	return sg_bucket(src_hi, src_lo, ifindex, key_ifindex, class_flags, 0);
}

#endif /* SMTPGUARD_BUCKET_BPF_H */
