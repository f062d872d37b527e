/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ladder.c - the response ladder: where each sender stands, kept in its
 * src_feedback entry (so smtpguardctl shows it and the classifier steers
 * by it), and how it moves.
 *
 *   normal -> flagged -> tempfail -> refused
 *
 * Up: what the behaviour signals say (sg_ladder_note: suspicious is at
 * least flagged; abusive climbs one step, no sooner than ladder_dwell after
 * the last, so each step is taken and seen), or the scanner's escalation
 * (feedback.c: straight to refused). Never past the top step the sender's
 * rate class allows. Down: each step lapses one step down (flagged after
 * suspect_duration, tempfail after ladder_tempfail, refused when its
 * penalty ends), or `smtpguardctl release` puts the sender back to normal.
 * A complaint the operator confirmed (`smtpguardctl complaint --confirm`)
 * climbs one step at the sender's next message (take_complaints).
 * The penalty grows with the refusals before it (ladder_penalties), which
 * are forgotten after ladder_forget. Every move is an event, told to the
 * events file and to the webhooks.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "events.h"
#include "feedback_internal.h"
#include "ladder.h"
#include "log.h"
#include "parse.h"
#include "pstats.h"
#include "tenancy.h"

static const char *const step_names[SG_LADDER__COUNT] = {
	[SG_LADDER_NORMAL] = "normal", [SG_LADDER_FLAGGED] = "flagged",
	[SG_LADDER_TEMPFAIL] = "tempfail", [SG_LADDER_REFUSED] = "refused",
};

const char *sg_ladder_step_name(int step)
{
	return step >= 0 && step < SG_LADDER__COUNT ? step_names[step] : "?";
}

/* The top step the sender's rate class lets the ladder reach. */
static enum sg_ladder_step top_step(const struct sg_feedback *fb, const struct sg_src_key *key)
{
	struct sg_rate_class rc;
	struct sg_src_state st;
	uint32_t slot = SG_DEFAULT_RATE_CLASS;

	if (sg_source_read(fb->maps, key, &st) == 0)
		slot = st.rate_class;
	feedback_class(fb, slot, &rc);
	return rc.ladder_top < SG_LADDER__COUNT ? (enum sg_ladder_step)rc.ladder_top :
						 SG_LADDER_REFUSED;
}

/* A move, told: the events file and the webhooks get the same line. */
static void tell(struct sg_feedback *fb, const struct sg_src_key *key,
		 const struct sg_src_feedback *e, enum sg_ladder_step from, const char *why,
		 uint64_t now, uint64_t penalty_ns)
{
	struct sg_ladder_event ev = {
		.from = sg_ladder_step_name(from),
		.to = sg_ladder_step_name(e->ladder_step),
		.reason = why,
		.until = e->ladder_until_ns > now ?
			 time(NULL) + (time_t)((e->ladder_until_ns - now) / 1000000000ULL) : 0,
		.penalty_s = penalty_ns / 1000000000ULL,
		.refusals = e->penalties,
	};
	char who[64], line[1024], tenant[SG_TENANT_NAME_LEN];
	size_t n;

	sg_format_source(key, 0, who, sizeof(who));
	ev.source = who;
	ev.tenant = sg_tenancy_sender(fb->tenancy, key, tenant, sizeof(tenant)) ? tenant : NULL;
	n = sg_event_ladder(&ev, line, sizeof(line));
	if (n && fb->stepped)
		fb->stepped(fb->stepped_ctx, line, n);
	if (e->ladder_step > from)
		sg_warn("ladder: %s %s -> %s: %s%s", who, ev.from, ev.to, why,
			penalty_ns ? " (its connections refused in the kernel)" : "");
	else
		sg_info("ladder: %s %s -> %s: %s", who, ev.from, ev.to, why);
}

static void set_step(struct sg_feedback *fb, const struct sg_src_key *key,
		     struct sg_src_feedback *e, enum sg_ladder_step step, const char *why,
		     uint64_t now)
{
	enum sg_ladder_step from = (enum sg_ladder_step)e->ladder_step;
	uint64_t penalty = 0;
	char err[SG_ERR_LEN];

	e->ladder_step = (uint8_t)step;
	e->ladder_since_ns = now;
	snprintf(e->ladder_reason, sizeof(e->ladder_reason), "%s", why);
	switch (step) {
	case SG_LADDER_NORMAL:
		e->ladder_until_ns = 0;
		break;
	case SG_LADDER_FLAGGED:
		e->ladder_until_ns = now + fb->suspect_duration_ns;
		break;
	case SG_LADDER_TEMPFAIL:
		e->ladder_until_ns = now + fb->tempfail_ns;
		break;
	case SG_LADDER_REFUSED:
		if (e->ladder_refused_ns && now - e->ladder_refused_ns > fb->forget_ns)
			e->penalties = 0;	/* an old refusal no longer counts */
		penalty = fb->penalties.ns[e->penalties < (uint32_t)fb->penalties.n ?
					   e->penalties : (uint32_t)fb->penalties.n - 1];
		e->penalties++;
		e->ladder_refused_ns = now;
		e->ladder_until_ns = now + penalty;
		if (sg_source_set_penalty(fb->maps, key, e->ladder_until_ns, err, sizeof(err)))
			sg_warn("ladder: the kernel's penalty was not set: %s", err);
		break;
	default:
		break;
	}
	/* flagged and above: every flow to the proxy (steer_mode suspect) */
	if (step >= SG_LADDER_FLAGGED && e->suspect_until_ns < e->ladder_until_ns)
		e->suspect_until_ns = e->ladder_until_ns;
	if (step > from)
		sg_pstat_add(SG_PSTAT_LADDER_FLAGGED + (enum sg_pstat)(step - SG_LADDER_FLAGGED), 1);
	tell(fb, key, e, from, why, now, penalty);
}

void ladder_climb(struct sg_feedback *fb, const struct sg_src_key *key,
		  struct sg_src_feedback *e, enum sg_ladder_step target, const char *why,
		  uint64_t now)
{
	enum sg_ladder_step top = top_step(fb, key);

	if (target > top)
		target = top;
	if (target <= (enum sg_ladder_step)e->ladder_step)
		return;
	set_step(fb, key, e, target, why, now);
}

/* Steps whose time is up fall one step (a refused sender is flagged for a
 * while, not trusted at once). With the lock; 1 when the entry changed. */
static int lapse(struct sg_feedback *fb, const struct sg_src_key *key,
		 struct sg_src_feedback *e, uint64_t now)
{
	int changed = 0;

	while (e->ladder_step != SG_LADDER_NORMAL && e->ladder_until_ns &&
	       now >= e->ladder_until_ns) {
		enum sg_ladder_step down = (enum sg_ladder_step)(e->ladder_step - 1);
		char why[SG_LADDER_REASON_LEN];

		snprintf(why, sizeof(why), "the %s step lapsed", sg_ladder_step_name(e->ladder_step));
		if (e->ladder_step == SG_LADDER_REFUSED)
			down = SG_LADDER_FLAGGED;
		set_step(fb, key, e, down, why, e->ladder_until_ns);
		changed = 1;
	}
	return changed;
}

/* Complaints confirmed since the ladder last looked (`smtpguardctl
 * complaint --confirm` counts them in the entry): each climbs one step at
 * once, as an abusive judgment does but without the dwell (each is a
 * report a receiver's user made, confirmed by the operator). With the
 * lock; 1 when the entry changed. */
static int take_complaints(struct sg_feedback *fb, const struct sg_src_key *key,
			   struct sg_src_feedback *e, uint64_t now)
{
	char why[SG_LADDER_REASON_LEN];

	if (e->complaints_applied == e->complaints)
		return 0;
	if (e->complaints_applied > e->complaints)
		e->complaints_applied = e->complaints;	/* a count someone reset */
	while (e->complaints_applied < e->complaints) {
		e->complaints_applied++;
		if (e->ladder_step >= SG_LADDER_REFUSED)
			continue;
		snprintf(why, sizeof(why), "abuse complaint confirmed (%u so far)",
			 e->complaints_applied);
		ladder_climb(fb, key, e, (enum sg_ladder_step)(e->ladder_step + 1), why, now);
	}
	return 1;
}

int sg_ladder_note(struct sg_feedback *fb, const struct sockaddr_storage *vm, int level,
		   const char *reasons, uint64_t now, int *forget)
{
	struct sg_src_feedback e;
	struct sg_src_key key;
	enum sg_ladder_step step;
	int changed;

	*forget = 0;
	if (!fb)
		return SG_LADDER_NORMAL;
	feedback_sender_key(fb, vm, &key);
	pthread_mutex_lock(&fb->lock);
	feedback_entry_read(fb, &key, &e);
	changed = lapse(fb, &key, &e, now);
	changed |= take_complaints(fb, &key, &e, now);
	step = (enum sg_ladder_step)e.ladder_step;
	if (e.release_pending) {
		/* what it did before the release counts no more */
		e.release_pending = 0;
		changed = 1;
		*forget = 1;
	} else if (level >= 1 && step < SG_LADDER_FLAGGED) {
		ladder_climb(fb, &key, &e, SG_LADDER_FLAGGED, reasons, now);
	} else if (level >= 2 && step < SG_LADDER_REFUSED &&
		   now - e.ladder_since_ns >= fb->dwell_ns) {
		ladder_climb(fb, &key, &e, (enum sg_ladder_step)(step + 1), reasons, now);
	}
	if (changed || e.ladder_step != step) {
		e.last_ns = now;
		feedback_entry_write(fb, &key, &e);
	}
	step = (enum sg_ladder_step)e.ladder_step;
	pthread_mutex_unlock(&fb->lock);
	return step;
}

int sg_ladder_check(struct sg_feedback *fb, const struct sockaddr_storage *vm, char *reason,
		    size_t len)
{
	struct sg_src_feedback e;
	struct sg_src_key key;
	uint64_t now = sg_now_ns();
	int held;

	if (!fb)
		return 0;
	feedback_sender_key(fb, vm, &key);
	pthread_mutex_lock(&fb->lock);
	feedback_entry_read(fb, &key, &e);
	if (lapse(fb, &key, &e, now) | take_complaints(fb, &key, &e, now))
		feedback_entry_write(fb, &key, &e);
	pthread_mutex_unlock(&fb->lock);
	held = e.ladder_step >= SG_LADDER_TEMPFAIL;
	if (held) {
		uint64_t left = e.ladder_until_ns > now ? (e.ladder_until_ns - now) / 1000000000ULL : 0;

		snprintf(reason, len, "sending suspended for %llu min: %s",
			 (unsigned long long)(left + 59) / 60, e.ladder_reason);
	}
	return held ? -1 : 0;
}

void sg_ladder_on_step(struct sg_feedback *fb, void (*fn)(void *ctx, const char *json, size_t len),
		       void *ctx)
{
	pthread_mutex_lock(&fb->lock);
	fb->stepped = fn;
	fb->stepped_ctx = ctx;
	pthread_mutex_unlock(&fb->lock);
}
