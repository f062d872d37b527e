/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * feedback_internal.h - what feedback.c (counts, rates, escalation) and
 * ladder.c (the response ladder) share: the feedback object, and its
 * per-sender entry in the src_feedback map, read and written under its
 * lock. Not for use outside those two files.
 */
#ifndef SMTPGUARD_FEEDBACK_INTERNAL_H
#define SMTPGUARD_FEEDBACK_INTERNAL_H

#include <pthread.h>
#include "feedback.h"

struct sg_feedback {
	const struct sg_maps *maps;
	/* the running configuration's, copied under the lock (a reload
	 * changes them while the workers read them) */
	uint32_t escalation_rejects;
	uint64_t escalation_window_ns;
	uint64_t suspect_duration_ns;
	struct sg_penalties penalties;
	uint64_t dwell_ns, tempfail_ns, forget_ns;
	/* a step taken: told to the events file and the webhooks (ladder.c) */
	void (*stepped)(void *ctx, const char *json, size_t len);
	void *stepped_ctx;
	struct sg_tenancy *tenancy;	/* the senders' tenants, for the events */
	/* the workers' read-modify-writes of one sender's entry must not
	 * interleave; a message is rare next to this lock's cost */
	pthread_mutex_t lock;
};

/* The sender's key as the classifier makes it. */
void feedback_sender_key(const struct sg_feedback *fb, const struct sockaddr_storage *vm,
			 struct sg_src_key *key);
/* The rate class in slot (the default class when it is gone). */
void feedback_class(const struct sg_feedback *fb, uint32_t slot, struct sg_rate_class *rc);
/* Its name, fit for a reply. */
void feedback_class_label(const struct sg_rate_class *rc, char *out, size_t len);
/* The sender's entry (zero when it has none), and back. With the lock. */
void feedback_entry_read(const struct sg_feedback *fb, const struct sg_src_key *key,
			 struct sg_src_feedback *e);
void feedback_entry_write(const struct sg_feedback *fb, const struct sg_src_key *key,
			  const struct sg_src_feedback *e);

/* ladder.c: moves the entry's step up to target (at once), its rate
 * class's top step allowing; the step's timer, the kernel's penalty and
 * the suspect flag set, the event told. With the lock; the caller writes
 * the entry. */
void ladder_climb(struct sg_feedback *fb, const struct sg_src_key *key,
		  struct sg_src_feedback *e, enum sg_ladder_step target, const char *why,
		  uint64_t now);

#endif
