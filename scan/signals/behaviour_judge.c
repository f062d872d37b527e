/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* behaviour_judge.c - a sender's values against the thresholds: the
 * findings, each with its reason, and the level (see behaviour.h). Pure:
 * no store, no lock. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "behaviour.h"

#define NS 1000000000ULL

enum family { FAMILY_VOLUME, FAMILY_MX, FAMILY_OUTBREAK, FAMILY_COUNT };

static const char *const signal_names[SG_SIGNAL_COUNT] = {
	[SG_SIGNAL_MESSAGES] = "messages",
	[SG_SIGNAL_RCPTS] = "rcpts",
	[SG_SIGNAL_RCPT_DOMAINS] = "rcpt_domains",
	[SG_SIGNAL_BURST] = "burst",
	[SG_SIGNAL_MAIL_FROM_DOMAINS] = "mail_from_domains",
	[SG_SIGNAL_TLS_SESSIONS] = "tls_sessions",
	[SG_SIGNAL_TLS_MX] = "tls_mx",
	[SG_SIGNAL_TLS_GREETINGS] = "tls_greetings",
	[SG_SIGNAL_OVER_USUAL] = "over_usual",
	[SG_SIGNAL_UNKNOWN_RCPTS] = "unknown_rcpts",
	[SG_SIGNAL_POLICY_REFUSALS] = "policy_refusals",
	[SG_SIGNAL_OUTBREAK] = "outbreak",
};

const char *sg_signal_name(enum sg_signal s)
{
	return (unsigned)s < SG_SIGNAL_COUNT ? signal_names[s] : "unknown";
}

static enum family family_of(enum sg_signal s)
{
	if (s == SG_SIGNAL_UNKNOWN_RCPTS || s == SG_SIGNAL_POLICY_REFUSALS)
		return FAMILY_MX;
	if (s == SG_SIGNAL_OUTBREAK)
		return FAMILY_OUTBREAK;
	return FAMILY_VOLUME;
}

void sg_behaviour_thresholds_default(struct sg_behaviour_thresholds *t)
{
	*t = (struct sg_behaviour_thresholds){
		.messages = 1000,
		.rcpts = 2000,
		.rcpt_domains = 200,
		.burst = 120,
		.mail_from_domains = 20,
		.tls_sessions = 600,
		.tls_mx = 100,
		.tls_greetings = 100,
		.over_usual = 10,
		.over_usual_min = 50,
		.usual_headroom = 3,
		.unknown_pct = 10,
		.unknown_min_rcpts = 50,
		.policy_refusals = 10,
		.outbreak_senders = 2,
		.spread_domains = 10,
		.new_sender_ns = 24 * 3600 * NS,
		.new_sender_pct = 50,
		.abusive_factor = 2,
	};
}

/* How a limit came to apply. */
struct limit {
	uint32_t base, applied;
	enum { AS_SET, AS_NEW_SENDER, AS_RAISED } how;
};

/* A count's limit for this sender: scaled for a new one, raised to
 * usual_headroom x its usual once that is warm (never lowered by it). */
static struct limit count_limit(const struct sg_behaviour_values *v,
				const struct sg_behaviour_thresholds *t, uint32_t base,
				int scales, uint32_t usual)
{
	struct limit l = { base, base, AS_SET };

	if (!base)
		return l;
	if (scales && v->new_sender && t->new_sender_pct) {
		uint64_t s = (uint64_t)base * t->new_sender_pct / 100;

		l.applied = s < 1 ? 1 : s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
		l.how = AS_NEW_SENDER;
	}
	if (v->usual_warm && t->usual_headroom && usual) {
		uint64_t raised = (uint64_t)usual * t->usual_headroom;

		if (raised > l.applied) {
			l.applied = raised > UINT32_MAX ? UINT32_MAX : (uint32_t)raised;
			l.how = AS_RAISED;
		}
	}
	return l;
}

static const char *limit_text(const struct limit *l, char *buf, size_t len)
{
	switch (l->how) {
	case AS_NEW_SENDER:
		snprintf(buf, len, "limit %u, new sender: %u", l->base, l->applied);
		break;
	case AS_RAISED:
		snprintf(buf, len, "limit %u, raised to %u by its usual", l->base, l->applied);
		break;
	default:
		snprintf(buf, len, "limit %u", l->applied);
	}
	return buf;
}

static void finding(struct sg_behaviour_report *r, enum sg_signal s, uint32_t value,
		    uint32_t limit, uint64_t strong_at, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Records a finding if value passes limit (0: no limit); strong from
 * strong_at on. */
static void finding(struct sg_behaviour_report *r, enum sg_signal s, uint32_t value,
		    uint32_t limit, uint64_t strong_at, const char *fmt, ...)
{
	struct sg_behaviour_finding *f;
	va_list ap;

	if (!limit || value <= limit || r->n_findings >= SG_SIGNAL_COUNT)
		return;
	f = &r->findings[r->n_findings++];
	f->signal = s;
	f->value = value;
	f->limit = limit;
	f->strong = value >= strong_at;
	va_start(ap, fmt);
	vsnprintf(f->reason, sizeof(f->reason), fmt, ap);
	va_end(ap);
}

/* abusive_factor x limit; never, with no factor */
static uint64_t strong_at(const struct sg_behaviour_thresholds *t, uint32_t limit)
{
	return t->abusive_factor ? (uint64_t)limit * t->abusive_factor : UINT64_MAX;
}

static void judge_count(struct sg_behaviour_report *r, const struct sg_behaviour_values *v,
			const struct sg_behaviour_thresholds *t, enum sg_signal s,
			uint32_t value, uint32_t base, int scales, uint32_t usual, const char *what)
{
	struct limit l = count_limit(v, t, base, scales, usual);
	char lt[64];

	finding(r, s, value, l.applied, strong_at(t, l.applied), "%u %s (%s)", value, what,
		limit_text(&l, lt, sizeof(lt)));
}

static void judge_volume(struct sg_behaviour_report *r, const struct sg_behaviour_values *v,
			 const struct sg_behaviour_thresholds *t)
{
	judge_count(r, v, t, SG_SIGNAL_MESSAGES, v->messages, t->messages, 1, v->usual_messages,
		    "messages in the last hour");
	judge_count(r, v, t, SG_SIGNAL_RCPTS, v->rcpts, t->rcpts, 1, v->usual_rcpts,
		    "recipients in the last hour");
	judge_count(r, v, t, SG_SIGNAL_RCPT_DOMAINS, v->rcpt_domains, t->rcpt_domains, 1,
		    v->usual_rcpt_domains, "recipient domains in the last hour");
	judge_count(r, v, t, SG_SIGNAL_BURST, v->burst, t->burst, 1, v->usual_burst,
		    "messages in about the last minute");
	judge_count(r, v, t, SG_SIGNAL_MAIL_FROM_DOMAINS, v->mail_from_domains,
		    t->mail_from_domains, 1, 0, "MAIL FROM domains in the last hour");
	judge_count(r, v, t, SG_SIGNAL_TLS_SESSIONS, v->tls_sessions, t->tls_sessions, 1,
		    v->usual_tls_sessions, "TLS sessions passed through in the last hour");
	judge_count(r, v, t, SG_SIGNAL_TLS_MX, v->tls_mx, t->tls_mx, 1, v->usual_tls_mx,
		    "distinct MX addresses reached in TLS in the last hour");
	judge_count(r, v, t, SG_SIGNAL_TLS_GREETINGS, v->tls_greetings, t->tls_greetings, 1, 0,
		    "distinct MX greeting names in the last hour");
	if (v->usual_warm && t->over_usual && v->messages >= t->over_usual_min) {
		uint32_t usual = v->usual_messages ? v->usual_messages : 1;

		finding(r, SG_SIGNAL_OVER_USUAL, v->messages / usual, t->over_usual,
			strong_at(t, t->over_usual), "%u messages in the last hour, %ux its usual busiest hour of %u (limit %ux)",
			v->messages, v->messages / usual, v->usual_messages, t->over_usual);
	}
}

static void judge_mx(struct sg_behaviour_report *r, const struct sg_behaviour_values *v,
		     const struct sg_behaviour_thresholds *t)
{
	if (t->unknown_pct && v->rcpt_replies >= t->unknown_min_rcpts && v->rcpt_replies)
		finding(r, SG_SIGNAL_UNKNOWN_RCPTS, v->unknown_pct, t->unknown_pct,
			strong_at(t, t->unknown_pct), "%u%% of %u recipients unknown at the MX (limit %u%%)", v->unknown_pct,
			v->rcpt_replies, t->unknown_pct);
	judge_count(r, v, t, SG_SIGNAL_POLICY_REFUSALS, v->policy_refusals, t->policy_refusals, 1,
		    0, "policy refusals (5.7.x) from MXes in the last hour");
}

static void judge_outbreak(struct sg_behaviour_report *r, const struct sg_behaviour_values *v,
			   const struct sg_behaviour_thresholds *t)
{
	if (!v->bulk_known || !t->outbreak_senders)
		return;
	uint32_t spreading = v->bulk.spreading_senders + v->bulk.shared_spreading_senders;

	if (!v->bulk.shared_spreading_senders) {
		finding(r, SG_SIGNAL_OUTBREAK, spreading, t->outbreak_senders,
			strong_at(t, t->outbreak_senders), "the same body from %u senders to %u or more "
			"domains each (%u domains in all) in the last hour (limit %u senders)",
			spreading, t->spread_domains, v->bulk.domains, t->outbreak_senders);
		return;
	}
	finding(r, SG_SIGNAL_OUTBREAK, spreading, t->outbreak_senders,
		strong_at(t, t->outbreak_senders), "the same body from %u senders (%u here, %u on "
		"other hosts) to %u or more domains each (%u domains in all here) in the last "
		"hour (limit %u senders)", spreading, v->bulk.spreading_senders,
		v->bulk.shared_spreading_senders, t->spread_domains, v->bulk.domains,
		t->outbreak_senders);
}

void sg_behaviour_judge(const struct sg_behaviour_values *v,
			const struct sg_behaviour_thresholds *t, struct sg_behaviour_report *r)
{
	static const int weight[FAMILY_COUNT][2] = {
		[FAMILY_VOLUME] = { 1, 2 },
		[FAMILY_MX] = { 1, 3 },
		[FAMILY_OUTBREAK] = { 1, 2 },
	};
	int family[FAMILY_COUNT] = { 0 }, sum = 0;

	r->values = *v;
	r->n_findings = 0;
	judge_volume(r, v, t);
	judge_mx(r, v, t);
	judge_outbreak(r, v, t);
	for (int i = 0; i < r->n_findings; i++) {
		enum family f = family_of(r->findings[i].signal);
		int w = weight[f][r->findings[i].strong ? 1 : 0];

		if (w > family[f])
			family[f] = w;
	}
	for (int f = 0; f < FAMILY_COUNT; f++)
		sum += family[f];
	r->level = sum == 0 ? 0 : sum >= 3 ? 2 : 1;
}

/* snprintf that keeps counting past the end of buf */
struct out {
	char *buf;
	size_t len, used;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->used < o->len ? o->buf + o->used : NULL,
		      o->used < o->len ? o->len - o->used : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

int sg_behaviour_report_format(const struct sg_behaviour_report *r, char *buf, size_t len)
{
	static const char *const level_names[] = { "normal", "suspicious", "abusive" };
	const struct sg_behaviour_values *v = &r->values;
	struct out o = { buf, len, 0 };

	if (len)
		buf[0] = '\0';
	if (!r->known) {
		put(&o, "not seen lately\n");
		return (int)o.used;
	}
	put(&o, "level %d (%s)\n", r->level, level_names[r->level < 0 || r->level > 2 ? 0 : r->level]);
	put(&o, "last hour: %u messages, %u recipients, %u recipient domains, %u MAIL FROM "
		"domains; %u messages in about the last minute\n", v->messages, v->rcpts,
	    v->rcpt_domains, v->mail_from_domains, v->burst);
	put(&o, "MX replies: %u to RCPT, %u unknown (%u%%); %u policy refusals\n",
	    v->rcpt_replies, v->rcpt_unknown, v->unknown_pct, v->policy_refusals);
	put(&o, "TLS passed through: %u sessions, %u MX addresses, %u greeting names, %llu bytes, "
		"%u ms on average\n", v->tls_sessions, v->tls_mx, v->tls_greetings,
	    (unsigned long long)v->tls_bytes, v->tls_mean_ms);
	put(&o, "first seen %llu s ago%s; ", (unsigned long long)(v->age_ns / NS),
	    v->new_sender ? " (new)" : "");
	if (v->usual_warm)
		put(&o, "usual busiest hour: %u messages, %u recipients, %u domains, %u a minute, "
			"%u TLS sessions to %u MXes\n", v->usual_messages, v->usual_rcpts,
		    v->usual_rcpt_domains, v->usual_burst, v->usual_tls_sessions, v->usual_tls_mx);
	else
		put(&o, "usual: still warming up\n");
	if (v->bulk_known)
		put(&o, "its last body: %u messages, %u recipient domains, %u senders (%u spreading "
			"it); from this sender %u messages to %u domains\n", v->bulk.messages,
		    v->bulk.domains, v->bulk.senders, v->bulk.spreading_senders,
		    v->bulk.sender_messages, v->bulk.sender_domains);
	if (v->subs)
		put(&o, "sub-identities: %u\n", v->subs);
	for (int i = 0; i < r->n_findings; i++)
		put(&o, "%s: %s%s\n", sg_signal_name(r->findings[i].signal), r->findings[i].reason,
		    r->findings[i].strong ? " [strong]" : "");
	return (int)o.used;
}
