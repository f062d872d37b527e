/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * behaviour.h - what each sender has been doing lately, and whether that
 * looks like a compromised VM or a spammer: the in-daemon store of
 * behaviour signals per sender and their assessment.
 *
 * A sender is an opaque key of up to SG_BEHAVIOUR_KEY_MAX bytes built by
 * the caller (the kernel's sender key: an IPv4 address or an IPv6 /64
 * with the interface), or a sub-identity inside one (its MAIL FROM
 * domain, an X-PHP-Originating-Script, an authenticated user): the caller
 * notes each message under the sender key and again under every
 * sub-identity it found, naming the sender key as the parent. Longer keys
 * are kept as their first 56 bytes and a keyed hash of the whole. Time is
 * the caller's, in nanoseconds (CLOCK_MONOTONIC or REALTIME, one of them
 * always); nothing here reads a clock.
 *
 * Signals, over the last hour (window.h: 12 slots of slot_ns, 5 minutes by
 * default, so the last 55 to 60 minutes), each in the report:
 *   messages, recipients; distinct recipient domains (HyperLogLog, p=6:
 *   13% standard error); a burst rate (messages of about the last minute,
 *   decayed with tau = 60 s); distinct MAIL FROM domains (p=5: 18%);
 *   RCPT replies and those the MX called unknown users (5.1.x, or a 5xx
 *   whose text says so), as a ratio judged from a minimum count; the MX's
 *   5.7.x policy refusals at any stage; the sessions passed through in TLS
 *   (unread): sessions, distinct MX addresses (p=6), distinct MX greeting
 *   names (p=5), bytes, mean duration; the body's bulk (bulk.h): how many
 *   domains and senders the same body reached, and how many of those
 *   senders spread it.
 *
 * The sender's usual (window.h, sg_baseline): for messages, recipients,
 * recipient domains, the burst rate and TLS sessions and MXes, each UTC
 * day's busiest hour, folded into a moving average with weight
 * baseline_alpha (1/8: a week-old day still weighs 40% as much as
 * yesterday), idle days as zero. Warm-up: the first (partial) day's peak
 * starts it, the first full day's raises it to the busier of the two; it
 * is used once two days have folded, i.e. from the end of the first full
 * UTC day after the sender was first seen (24 to 48 hours). Until then a
 * sender is judged by the absolute limits alone; and while it is new
 * (first seen less than new_sender_ns ago, 24 h) by new_sender_pct of them.
 *
 * Bounded: a table of `capacity` senders and sub-identities, allocated
 * once (sg_behaviour_stats: 1,940 bytes a sender with its index, of which
 * 1,248 are the four sliding HyperLogLogs and 448 the counts; its pages
 * are touched only as the table fills), in `shards` shards, each with
 * its own mutex, hash chains and recency lists. A full shard evicts its least recently active sender
 * seen in one slot only (probation) before any seen in two slots or more
 * (protected, at most 3/4 of the shard): a VM cycling through addresses
 * pushes out one-off keys, not the state of the senders being watched. A
 * sender key holds at most max_subs sub-identities (32); a new one past
 * that takes over the slot of its least recently active one, so a VM
 * cycling MAIL FROM domains only churns its own sub-identities, while
 * its sender key still counts every message. A sub-identity lives in its
 * parent's shard and goes when its parent does. A sender evicted and seen
 * again starts anew: new, its usual cold, so judged more strictly.
 *
 * Cost: a note is O(1) plus O(recipient domains), with one keyed hash
 * each, outside the lock; under the lock, the counting touches a few
 * cache lines of the sender (more once a slot, when its windows move on
 * and a merged sketch is rebuilt), and distinct counts are estimated only
 * when a sketch changes. An assessment reads totals and cached estimates.
 * Nothing is allocated after sg_behaviour_new. scan/ creates no threads:
 * the proxy's workers call in, each note taking one shard's lock and,
 * for a body, the bulk table's, one after the other, never both.
 */
#ifndef SMTPGUARD_SCAN_BEHAVIOUR_H
#define SMTPGUARD_SCAN_BEHAVIOUR_H

#include <stddef.h>
#include <stdint.h>
#include "bulk.h"
#include "fingerprint.h"

#define SG_BEHAVIOUR_KEY_MAX 64
#define SG_BEHAVIOUR_DOMAINS_MAX 1024	/* recipient domains read from one message */
#define SG_BEHAVIOUR_REASON_LEN 144

/* The store's shape, fixed at sg_behaviour_new. */
struct sg_behaviour_limits {
	uint32_t capacity;	/* senders and sub-identities held; default 65,536 */
	uint32_t shards;	/* a power of two; default 64 */
	uint32_t max_subs;	/* sub-identities per sender key, 1..255; default 32 */
	uint64_t slot_ns;	/* the window is 12 slots; default 5 min */
	uint64_t burst_tau_ns;	/* the burst rate's time constant; default 60 s */
	float baseline_alpha;	/* weight of a new day in the usual; default 0.125 */
	uint64_t hash_key[2];	/* keys and domains are hashed under it; 0, 0: random */
	struct sg_bulk_limits bulk;	/* the table of bodies (bulk.h) */
};

void sg_behaviour_limits_default(struct sg_behaviour_limits *l);

/*
 * What counts as odd, filled by the caller from its config; 0 disables a
 * limit. Every limit is "more than this", over the last hour unless said.
 * sg_behaviour_thresholds_default gives these, chosen so that (the
 * scenarios of selftests/unit/test_scan_behaviour.c):
 *  - an honest small business (20 messages an hour, 15 domains, 1 unknown
 *    recipient in 40) stays at 0, new or not;
 *  - a newsletter at 10 messages a second to 2,000 subscribers in 400
 *    domains with 1% unknown stays at 0 once its usual includes its
 *    campaigns (its usual raises the limits to 3x its busiest hour); its
 *    first campaign, as a new sender, reaches 1 (volume alone never makes
 *    2);
 *  - a compromised host sending 1,000 messages in 60 s to as many domains,
 *    30% of them unknown, reaches 2 within its first 4 seconds (50 RCPT
 *    replies, 30% unknown: three times the limit), new or long known.
 */
struct sg_behaviour_thresholds {
	/* volume: odd, never abusive on its own */
	uint32_t messages;		/* 1,000 */
	uint32_t rcpts;			/* 2,000 */
	uint32_t rcpt_domains;		/* 200 */
	uint32_t burst;			/* messages in about the last minute: 120 */
	uint32_t mail_from_domains;	/* 20 */
	uint32_t tls_sessions;		/* sessions passed through in TLS: 600 */
	uint32_t tls_mx;		/* distinct MX addresses they reached: 100 */
	uint32_t tls_greetings;		/* distinct MX greeting names: 100 */
	uint32_t over_usual;		/* messages, x the usual busiest hour: 10 */
	uint32_t over_usual_min;	/* messages before that is judged: 50 */
	uint32_t usual_headroom;	/* a warm sender's volume limits rise to this x its usual: 3 */
	/* the MX's word */
	uint32_t unknown_pct;		/* recipients unknown at the MX, percent: 10 */
	uint32_t unknown_min_rcpts;	/* RCPT replies before the ratio is judged: 50 */
	uint32_t policy_refusals;	/* 5.7.x refusals: 10 */
	/* the same body from several senders */
	uint32_t outbreak_senders;	/* senders each spreading it: 2 */
	uint32_t spread_domains;	/* domains for a sender to count as spreading it: 10 */
	/* how strict */
	uint64_t new_sender_ns;		/* first seen less than this ago: 24 h */
	uint32_t new_sender_pct;	/* its count limits, percent of the above: 50 */
	uint32_t abusive_factor;	/* x a limit is a strong sign: 2 */
};

void sg_behaviour_thresholds_default(struct sg_behaviour_thresholds *t);

/* Who: a sender key, or a sub-identity (key) within a sender key (parent). */
struct sg_behaviour_id {
	const void *key;
	size_t key_len;		/* 1 or more; past SG_BEHAVIOUR_KEY_MAX, see above */
	const void *parent;	/* NULL: key is a sender key */
	size_t parent_len;
};

struct sg_behaviour;

/* NULL if the limits make no sense or memory is short. */
struct sg_behaviour *sg_behaviour_new(const struct sg_behaviour_limits *l);
/* Bodies shared with other hosts: at each assessment of a sender whose
 * last body is in the bulk table, fn is given the body's view (this
 * host's counts) to publish, and returns the other hosts' spreading
 * senders of it, which the outbreak signal adds to this host's. Set once,
 * before the store is used; fn must be thread-safe and must not block. */
typedef uint32_t (*sg_bulk_share_fn)(void *ctx, const struct sg_bulk_view *v, uint64_t now);
void sg_behaviour_share_bulk(struct sg_behaviour *b, sg_bulk_share_fn fn, void *ctx);
void sg_behaviour_free(struct sg_behaviour *b);

/* A message the MX took (after its final reply), or that was tried. */
struct sg_behaviour_message {
	uint32_t rcpts;
	const char *const *rcpt_domains;	/* one per recipient, repeats welcome */
	size_t n_rcpt_domains;			/* the first SG_BEHAVIOUR_DOMAINS_MAX are read */
	const char *mail_from_domain;		/* NULL or "": the null sender */
	const struct sg_fingerprint *fingerprint;	/* NULL: the body was not read */
};

/* Every note returns 0, or -1 if the id is unusable (an empty key, or a
 * parent that is itself empty). */
int sg_behaviour_note_message(struct sg_behaviour *b, const struct sg_behaviour_id *id,
			      uint64_t now, const struct sg_behaviour_message *m);

enum sg_reply_stage {
	SG_REPLY_MAIL,
	SG_REPLY_RCPT,		/* counted as a recipient tried, and judged for "unknown" */
	SG_REPLY_DATA,		/* to DATA or to the final dot */
};

/* An MX's reply: code (e.g. 550), its enhanced status code ("5.1.1",
 * NULL if none was given: then read from the start of text), its text. */
int sg_behaviour_note_reply(struct sg_behaviour *b, const struct sg_behaviour_id *id,
			    uint64_t now, enum sg_reply_stage stage, int code,
			    const char *enhanced, const char *text);

enum sg_reply_kind {
	SG_REPLY_OTHER,
	SG_REPLY_UNKNOWN_USER,	/* 5.1.x, or a 5xx that says "user unknown" and the like */
	SG_REPLY_POLICY,	/* 5.7.x */
};

enum sg_reply_kind sg_behaviour_classify_reply(int code, const char *enhanced, const char *text);

/* A session passed through in TLS, unread, once it ended. */
struct sg_behaviour_tls {
	const void *mx_addr;	/* the MX's address as the caller holds it (4 or 16 bytes) */
	size_t mx_addr_len;
	const char *greeting;	/* the name in its 220 greeting; NULL if none */
	uint64_t bytes;		/* both ways */
	uint64_t duration_ns;
};

int sg_behaviour_note_tls_session(struct sg_behaviour *b, const struct sg_behaviour_id *id,
				  uint64_t now, const struct sg_behaviour_tls *s);

enum sg_signal {
	/* volume */
	SG_SIGNAL_MESSAGES,
	SG_SIGNAL_RCPTS,
	SG_SIGNAL_RCPT_DOMAINS,
	SG_SIGNAL_BURST,
	SG_SIGNAL_MAIL_FROM_DOMAINS,
	SG_SIGNAL_TLS_SESSIONS,
	SG_SIGNAL_TLS_MX,
	SG_SIGNAL_TLS_GREETINGS,
	SG_SIGNAL_OVER_USUAL,
	/* the MX's word */
	SG_SIGNAL_UNKNOWN_RCPTS,
	SG_SIGNAL_POLICY_REFUSALS,
	/* bulk */
	SG_SIGNAL_OUTBREAK,
	SG_SIGNAL_COUNT
};

/* "rcpt_domains" and so on, for logs and config. */
const char *sg_signal_name(enum sg_signal s);

/* Every signal's current value. */
struct sg_behaviour_values {
	uint32_t messages, rcpts, rcpt_domains, burst, mail_from_domains;
	uint32_t rcpt_replies, rcpt_unknown, unknown_pct;
	uint32_t policy_refusals;
	uint32_t tls_sessions, tls_mx, tls_greetings, tls_mean_ms;
	uint64_t tls_bytes;
	uint64_t age_ns;	/* since first seen */
	int new_sender;
	int usual_warm;		/* the usual values below are in use */
	uint32_t usual_messages, usual_rcpts, usual_rcpt_domains, usual_burst;
	uint32_t usual_tls_sessions, usual_tls_mx;
	int bulk_known;		/* its last body is in the bulk table: */
	struct sg_bulk_view bulk;
	uint32_t subs;		/* a sender key's sub-identities */
};

struct sg_behaviour_finding {
	enum sg_signal signal;
	uint32_t value, limit;	/* the limit applied (new sender, raised by the usual) */
	int strong;		/* value >= abusive_factor x limit */
	char reason[SG_BEHAVIOUR_REASON_LEN];
};

/*
 * The level: 0 normal, 1 suspicious, 2 abusive. Findings fall in three
 * families, whose weights add up: volume (every count above, and over the
 * usual) weighs 1, or 2 if a finding is strong; the MX's word (unknown
 * recipients, policy refusals) 1, or 3 if strong; an outbreak 1, or 2 if
 * strong. 0 is no finding, 2 a sum of 3 or more, 1 anything between. So
 * volume alone, however big (a newsletter's first campaign), stays at 1;
 * the MX's strong word alone, or any two families of which one is
 * strong, make 2.
 */
struct sg_behaviour_report {
	int known;		/* 0: the store does not hold this id (then level 0) */
	int level;
	struct sg_behaviour_values values;
	int n_findings;
	struct sg_behaviour_finding findings[SG_SIGNAL_COUNT];
};

/* Fills *r; 0, or -1 if the id is unknown or unusable (r->known 0). */
int sg_behaviour_assess(struct sg_behaviour *b, const struct sg_behaviour_id *id, uint64_t now,
			const struct sg_behaviour_thresholds *t, struct sg_behaviour_report *r);

/* The judgment alone, from values (behaviour_judge.c). */
void sg_behaviour_judge(const struct sg_behaviour_values *v,
			const struct sg_behaviour_thresholds *t, struct sg_behaviour_report *r);

/* The report as lines of text for the operator ("level 2 (abusive)", the
 * values, each finding's reason); truncated to len. Returns the length
 * it needed, as snprintf. */
int sg_behaviour_report_format(const struct sg_behaviour_report *r, char *buf, size_t len);

/* A sender key's sub-identities, for the operator's show. */
struct sg_behaviour_sub {
	uint8_t key[SG_BEHAVIOUR_KEY_MAX];
	uint32_t key_len;
	int level;
	uint32_t messages;	/* in the last hour */
	uint64_t last_seen;
};

/* Up to max of them (max_subs is all there can be); how many, or -1 if
 * the sender key is unknown. */
int sg_behaviour_subs(struct sg_behaviour *b, const void *parent, size_t parent_len,
		      uint64_t now, const struct sg_behaviour_thresholds *t,
		      struct sg_behaviour_sub *out, int max);

/* Forgets an id (a sender key with its sub-identities); 0, or -1 if it
 * was not held. */
int sg_behaviour_release(struct sg_behaviour *b, const struct sg_behaviour_id *id);

struct sg_behaviour_stats {
	uint32_t capacity, held, protected_held;	/* senders and sub-identities */
	uint64_t evictions;		/* pushed out by a full shard */
	uint64_t subs_recycled;		/* a sub-identity past max_subs took over another */
	size_t bytes;			/* all of it, bulk table included */
	size_t bytes_per_sender;	/* of the sender table, index included */
	struct sg_bulk_stats bulk;
};

void sg_behaviour_stats(struct sg_behaviour *b, struct sg_behaviour_stats *st);

#endif
