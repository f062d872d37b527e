/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * feedback.h - what the proxy tells the kernel about each sender: counts of
 * messages, recipients, refusals and MX 5xx replies (the src_feedback map,
 * read by `smtpguardctl show` and `top`), the message and recipient rates
 * of the sender's rate class, the escalation rule that turns repeated
 * refusals into a penalty the classifier enforces, and the suspect flag
 * that keeps a sender's flows on the proxy in steer mode suspect.
 */
#ifndef SMTPGUARD_FEEDBACK_H
#define SMTPGUARD_FEEDBACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "config.h"
#include "pinned.h"

enum sg_feedback_event {
	SG_FB_DELIVERED,	/* the MX accepted a message */
	SG_FB_REJECTED,		/* smtpguard refused one (5xx): counts towards escalation */
	SG_FB_REJECTED_ALLOWED,	/* the same, from a sender the ladder allows: counted alone */
	SG_FB_TOO_LARGE,	/* refused for its size (552): counted, but not abuse */
	SG_FB_TEMPFAILED,	/* smtpguard deferred one (451) */
	SG_FB_MX_5XX,		/* the MX refused a sender, recipient or message */
	SG_FB_SESSION_REFUSED,	/* a session over its rate class's session limit */
};

struct sg_feedback;

/* maps must outlive it. A NULL feedback (the relay's tests) counts nothing
 * and limits nothing. */
struct sg_feedback *sg_feedback_new(const struct sg_maps *maps, const struct sg_config *cfg);
void sg_feedback_free(struct sg_feedback *fb);
struct sg_tenancy;
/* The senders' tenants (proxy/tenancy.h), named in the ladder's events. */
void sg_feedback_set_tenancy(struct sg_feedback *fb, struct sg_tenancy *t);
/* The escalation and suspect settings from cfg (at start and reload). */
void sg_feedback_configure(struct sg_feedback *fb, const struct sg_config *cfg);
/* Takes one message of nrcpts recipients from the sender's message and
 * recipient buckets (of its rate class); -1 (nothing taken) with the reason
 * when either is empty: the message is to be deferred (451 4.7.1). */
int sg_feedback_charge(struct sg_feedback *fb, const struct sockaddr_storage *vm,
		       uint32_t rate_class, uint32_t nrcpts, char *reason, size_t len);
/* Would the sender's message bucket take one message now? Takes nothing:
 * asked at MAIL FROM, so that a sender over its rate is deferred before its
 * body goes to the MX; -1 with the reason when it would not. */
int sg_feedback_check_message(struct sg_feedback *fb, const struct sockaddr_storage *vm,
			      uint32_t rate_class, char *reason, size_t len);
/* GCRA (the message and recipient buckets, per sender and per tenant):
 * can cost tokens be taken from a bucket of burst tokens, one earned every
 * interval (0: no limit)? *new_tat is where tat moves when they can. */
int sg_bucket_fits(uint64_t tat, uint64_t now, uint64_t interval, uint32_t burst,
		   uint32_t cost, uint64_t *new_tat);
void sg_feedback_note(struct sg_feedback *fb, const struct sockaddr_storage *vm,
		      enum sg_feedback_event ev, uint32_t nrcpts);
/* The sender's key as the classifier makes it, and the session limit of
 * its rate class (0: none; also without feedback). */
/* An IPv6 session from a bridge port: the classifier keyed its sender by
 * the port too, and noted the flow (flow_sender). The port goes into vm's
 * sin6_scope_id, which the sender's key is then made with (a global
 * address's scope is never used by the kernel; the upstream connection
 * binds a copy without it). Nothing for other sessions, or without fb. */
void sg_feedback_port(struct sg_feedback *fb, struct sockaddr_storage *vm,
		      const struct sockaddr_storage *mx);
void sg_feedback_sender(struct sg_feedback *fb, const struct sockaddr_storage *vm,
			uint32_t rate_class, struct sg_src_key *key, uint32_t *max_sessions);
/* A session ended: tls when it was encrypted after STARTTLS, inspected
 * unless it was passed through. */
void sg_feedback_session(struct sg_feedback *fb, const struct sockaddr_storage *vm, int tls,
			 int inspected);

#endif
