/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* behaviour.c - the behaviour store: notes of messages, MX replies and
 * TLS sessions counted per sender, and a sender's values read for the
 * judgment (see behaviour.h; the table in behaviour_table.c, the judgment
 * in behaviour_judge.c). */
#include <stdlib.h>
#include <string.h>
#include "behaviour.h"
#include "behaviour_table.h"

#define NS 1000000000ULL
#define DAY_NS (86400ULL * NS)
#define DOMAIN_MAX 255

struct sg_behaviour {
	struct sg_behaviour_limits limits;
	struct sg_table table;
	struct sg_bulk *bulk;	/* NULL: bodies are not tracked */
	sg_bulk_share_fn share;	/* NULL: bodies are not shared between hosts */
	void *share_ctx;
};

void sg_behaviour_share_bulk(struct sg_behaviour *b, sg_bulk_share_fn fn, void *ctx)
{
	b->share = fn;
	b->share_ctx = ctx;
}

void sg_behaviour_limits_default(struct sg_behaviour_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->capacity = 65536;
	l->shards = 64;
	l->max_subs = 32;
	l->slot_ns = 300 * NS;
	l->burst_tau_ns = 60 * NS;
	l->baseline_alpha = 0.125f;
	sg_bulk_limits_default(&l->bulk);
}

struct sg_behaviour *sg_behaviour_new(const struct sg_behaviour_limits *l)
{
	struct sg_behaviour *b;

	if (l->slot_ns < 1000 || !l->burst_tau_ns || !(l->baseline_alpha > 0) ||
	    l->baseline_alpha > 1)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->limits = *l;
	if (sg_table_init(&b->table, l->capacity, l->shards, l->max_subs, l->hash_key)) {
		free(b);
		return NULL;
	}
	if (l->bulk.capacity) {
		b->bulk = sg_bulk_new(&l->bulk);
		if (!b->bulk) {
			sg_table_destroy(&b->table);
			free(b);
			return NULL;
		}
	}
	return b;
}

void sg_behaviour_free(struct sg_behaviour *b)
{
	if (!b)
		return;
	sg_bulk_free(b->bulk);
	sg_table_destroy(&b->table);
	free(b);
}

/* A domain's hash, case and a final dot aside; 0 for none. */
static uint64_t domain_hash(const struct sg_behaviour *b, const char *d)
{
	char low[DOMAIN_MAX];
	size_t n = 0;

	if (!d)
		return 0;
	for (; d[n] && n < DOMAIN_MAX; n++)
		low[n] = (char)(d[n] >= 'A' && d[n] <= 'Z' ? d[n] + ('a' - 'A') : d[n]);
	while (n && low[n - 1] == '.')
		n--;
	return n ? sg_keyhash(&b->table.key, low, n) | 1 : 0;
}

static uint64_t slot_of(const struct sg_behaviour *b, uint64_t now)
{
	return now / b->limits.slot_ns;
}

static const unsigned distinct_p[SG_DISTINCT_N] = {
	[SG_DISTINCT_RCPT_DOMAINS] = SG_RCPT_DOMAINS_P,
	[SG_DISTINCT_MAIL_FROM] = SG_MAIL_FROM_P,
	[SG_DISTINCT_TLS_MX] = SG_TLS_MX_P,
	[SG_DISTINCT_TLS_GREETINGS] = SG_GREETINGS_P,
};

static uint8_t *sketch(struct sg_sender *e, enum sg_distinct d)
{
	switch (d) {
	case SG_DISTINCT_RCPT_DOMAINS:
		return e->rcpt_domains;
	case SG_DISTINCT_MAIL_FROM:
		return e->mail_from_domains;
	case SG_DISTINCT_TLS_MX:
		return e->tls_mx;
	default:
		return e->tls_greetings;
	}
}

/* A thing into a distinct count; its estimate follows when it changed. */
static void add_distinct(struct sg_sender *e, enum sg_distinct d, uint64_t hash)
{
	uint8_t *w = sketch(e, d);

	if (sg_wdistinct_add(w, distinct_p[d], e->clock, hash))
		e->distinct[d] = (float)sg_wdistinct_estimate(w, distinct_p[d]);
}

static uint32_t u32_of(double v)
{
	return v >= UINT32_MAX ? UINT32_MAX : (uint32_t)(v + 0.5);
}

static uint32_t total(const struct sg_sender *e, enum sg_count c)
{
	uint64_t t = sg_wcounts_total(&e->counts, c);

	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static void count(struct sg_sender *e, enum sg_count c, uint64_t n)
{
	sg_wcounts_add(&e->counts, e->clock, c, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
}

/* Moves a sender's windows and days on to now. */
static void roll(const struct sg_behaviour *b, struct sg_sender *e, uint64_t now)
{
	uint64_t slot = slot_of(b, now);
	uint32_t day = (uint32_t)(now / DAY_NS);

	if (slot > e->clock) {
		sg_wcounts_expire(&e->counts, e->clock, slot);
		for (int d = 0; d < SG_DISTINCT_N; d++) {
			uint8_t *w = sketch(e, d);

			if (sg_wdistinct_expire(w, distinct_p[d], e->clock, slot))
				e->distinct[d] = (float)sg_wdistinct_estimate(w, distinct_p[d]);
		}
		e->clock = slot;
	}
	if (day > e->day) {
		for (int u = 0; u < SG_USUAL_COUNT; u++)
			sg_baseline_fold(&e->usual[u], day - e->day, e->days_folded,
					 b->limits.baseline_alpha);
		if (e->days_folded < UINT16_MAX)
			e->days_folded++;
		e->day = day;
	}
	if (now > e->last_seen)
		e->last_seen = now;
}

/* The entry of a note, with r->shard locked: found or added, its
 * windows moved on, marked active. NULL if the shard cannot hold it. */
static struct sg_sender *open_for_note(struct sg_behaviour *b, const struct sg_resolved *r,
				       uint64_t now)
{
	uint64_t slot = slot_of(b, now);
	int fresh;
	uint32_t i = sg_table_resolve(&b->table, r, 1, now, slot, &fresh);

	if (i == SG_NO_ENTRY)
		return NULL;
	if (!fresh)
		sg_table_touch(r->shard, i, slot);
	roll(b, &r->shard->s[i], now);
	return &r->shard->s[i];
}

int sg_behaviour_note_message(struct sg_behaviour *b, const struct sg_behaviour_id *id,
			      uint64_t now, const struct sg_behaviour_message *m)
{
	uint64_t domains[SG_BEHAVIOUR_DOMAINS_MAX], from;
	size_t n = 0, asked = m->n_rcpt_domains;
	struct sg_bulk_ref ref = { 0, 0 };
	struct sg_resolved r;
	struct sg_sender *e;

	if (sg_table_prepare(&b->table, id, &r))
		return -1;
	if (asked > SG_BEHAVIOUR_DOMAINS_MAX)
		asked = SG_BEHAVIOUR_DOMAINS_MAX;
	for (size_t i = 0; i < asked && m->rcpt_domains; i++) {
		domains[n] = domain_hash(b, m->rcpt_domains[i]);
		n += domains[n] != 0;
	}
	from = domain_hash(b, m->mail_from_domain);
	if (m->fingerprint && b->bulk) {
		struct sg_bulk_message bm = {
			.sender = r.top_hash, .domains = domains, .n_domains = n,
			.rcpts = m->rcpts, .count_message = !r.is_sub,
		};

		sg_bulk_note(b->bulk, m->fingerprint, now, &bm, &ref);
	}
	pthread_mutex_lock(&r.shard->lock);
	e = open_for_note(b, &r, now);
	if (e) {
		count(e, SG_COUNT_MESSAGES, 1);
		count(e, SG_COUNT_RCPTS, m->rcpts);
		for (size_t i = 0; i < n; i++)
			add_distinct(e, SG_DISTINCT_RCPT_DOMAINS, domains[i]);
		if (from)
			add_distinct(e, SG_DISTINCT_MAIL_FROM, from);
		sg_decayed_add(&e->burst, now, b->limits.burst_tau_ns, 1);
		/* every note, changed or not: a new day's peak starts from 0 */
		sg_baseline_observe(&e->usual[SG_USUAL_MESSAGES], total(e, SG_COUNT_MESSAGES));
		sg_baseline_observe(&e->usual[SG_USUAL_RCPTS], total(e, SG_COUNT_RCPTS));
		sg_baseline_observe(&e->usual[SG_USUAL_RCPT_DOMAINS],
				    u32_of(e->distinct[SG_DISTINCT_RCPT_DOMAINS]));
		sg_baseline_observe(&e->usual[SG_USUAL_BURST],
				    u32_of(sg_decayed_get(&e->burst, now, b->limits.burst_tau_ns)));
		if (ref.generation)
			e->bulk = ref;
	}
	pthread_mutex_unlock(&r.shard->lock);
	return e ? 0 : -1;
}

int sg_behaviour_note_reply(struct sg_behaviour *b, const struct sg_behaviour_id *id,
			    uint64_t now, enum sg_reply_stage stage, int code,
			    const char *enhanced, const char *text)
{
	enum sg_reply_kind kind = sg_behaviour_classify_reply(code, enhanced, text);
	struct sg_resolved r;
	struct sg_sender *e;

	if (sg_table_prepare(&b->table, id, &r))
		return -1;
	pthread_mutex_lock(&r.shard->lock);
	e = open_for_note(b, &r, now);
	if (e) {
		if (stage == SG_REPLY_RCPT) {
			count(e, SG_COUNT_RCPT_REPLIES, 1);
			if (kind == SG_REPLY_UNKNOWN_USER)
				count(e, SG_COUNT_RCPT_UNKNOWN, 1);
		}
		if (kind == SG_REPLY_POLICY)
			count(e, SG_COUNT_POLICY, 1);
	}
	pthread_mutex_unlock(&r.shard->lock);
	return e ? 0 : -1;
}

int sg_behaviour_note_tls_session(struct sg_behaviour *b, const struct sg_behaviour_id *id,
				  uint64_t now, const struct sg_behaviour_tls *s)
{
	uint64_t mx = 0, greeting = domain_hash(b, s->greeting);
	uint64_t kib = s->bytes / 1024 + (s->bytes % 1024 != 0), ms = s->duration_ns / 1000000;
	struct sg_resolved r;
	struct sg_sender *e;

	if (sg_table_prepare(&b->table, id, &r))
		return -1;
	if (s->mx_addr && s->mx_addr_len)
		mx = sg_keyhash(&b->table.key, s->mx_addr, s->mx_addr_len) | 1;
	pthread_mutex_lock(&r.shard->lock);
	e = open_for_note(b, &r, now);
	if (e) {
		count(e, SG_COUNT_TLS_SESSIONS, 1);
		count(e, SG_COUNT_TLS_KIB, kib);
		count(e, SG_COUNT_TLS_MS, ms);
		if (greeting)
			add_distinct(e, SG_DISTINCT_TLS_GREETINGS, greeting);
		if (mx)
			add_distinct(e, SG_DISTINCT_TLS_MX, mx);
		sg_baseline_observe(&e->usual[SG_USUAL_TLS_SESSIONS], total(e, SG_COUNT_TLS_SESSIONS));
		sg_baseline_observe(&e->usual[SG_USUAL_TLS_MX], u32_of(e->distinct[SG_DISTINCT_TLS_MX]));
	}
	pthread_mutex_unlock(&r.shard->lock);
	return e ? 0 : -1;
}

/* A sender's values, with its shard locked and its windows moved on. */
static void values_of(const struct sg_behaviour *b, const struct sg_sender *e, uint64_t now,
		      struct sg_behaviour_values *v)
{
	uint32_t usual[SG_USUAL_COUNT];

	memset(v, 0, sizeof(*v));
	v->messages = total(e, SG_COUNT_MESSAGES);
	v->rcpts = total(e, SG_COUNT_RCPTS);
	v->rcpt_domains = u32_of(e->distinct[SG_DISTINCT_RCPT_DOMAINS]);
	v->burst = u32_of(sg_decayed_get(&e->burst, now, b->limits.burst_tau_ns));
	v->mail_from_domains = u32_of(e->distinct[SG_DISTINCT_MAIL_FROM]);
	v->rcpt_replies = total(e, SG_COUNT_RCPT_REPLIES);
	v->rcpt_unknown = total(e, SG_COUNT_RCPT_UNKNOWN);
	if (v->rcpt_replies)
		v->unknown_pct = (uint32_t)(((uint64_t)v->rcpt_unknown * 100 +
					     v->rcpt_replies / 2) / v->rcpt_replies);
	v->policy_refusals = total(e, SG_COUNT_POLICY);
	v->tls_sessions = total(e, SG_COUNT_TLS_SESSIONS);
	v->tls_mx = u32_of(e->distinct[SG_DISTINCT_TLS_MX]);
	v->tls_greetings = u32_of(e->distinct[SG_DISTINCT_TLS_GREETINGS]);
	v->tls_bytes = sg_wcounts_total(&e->counts, SG_COUNT_TLS_KIB) * 1024;
	if (v->tls_sessions)
		v->tls_mean_ms = (uint32_t)(sg_wcounts_total(&e->counts, SG_COUNT_TLS_MS) /
					    v->tls_sessions);
	v->age_ns = now > e->first_seen ? now - e->first_seen : 0;
	v->usual_warm = e->days_folded >= 2;
	for (int u = 0; u < SG_USUAL_COUNT; u++)
		usual[u] = u32_of(e->usual[u].usual);
	v->usual_messages = usual[SG_USUAL_MESSAGES];
	v->usual_rcpts = usual[SG_USUAL_RCPTS];
	v->usual_rcpt_domains = usual[SG_USUAL_RCPT_DOMAINS];
	v->usual_burst = usual[SG_USUAL_BURST];
	v->usual_tls_sessions = usual[SG_USUAL_TLS_SESSIONS];
	v->usual_tls_mx = usual[SG_USUAL_TLS_MX];
	v->subs = e->n_children;
}

int sg_behaviour_assess(struct sg_behaviour *b, const struct sg_behaviour_id *id, uint64_t now,
			const struct sg_behaviour_thresholds *t, struct sg_behaviour_report *rep)
{
	struct sg_behaviour_values v;
	struct sg_bulk_ref ref = { 0, 0 };
	struct sg_resolved r;
	uint32_t i = SG_NO_ENTRY;
	int fresh;

	memset(rep, 0, sizeof(*rep));
	if (sg_table_prepare(&b->table, id, &r))
		return -1;
	pthread_mutex_lock(&r.shard->lock);
	i = sg_table_resolve(&b->table, &r, 0, now, slot_of(b, now), &fresh);
	if (i != SG_NO_ENTRY) {
		roll(b, &r.shard->s[i], now);
		values_of(b, &r.shard->s[i], now, &v);
		ref = r.shard->s[i].bulk;
	}
	pthread_mutex_unlock(&r.shard->lock);
	if (i == SG_NO_ENTRY)
		return -1;
	v.new_sender = v.age_ns < t->new_sender_ns;
	if (ref.generation && b->bulk &&
	    !sg_bulk_view(b->bulk, ref, r.top_hash, now, t->spread_domains, &v.bulk)) {
		v.bulk_known = 1;
		if (b->share)
			v.bulk.shared_spreading_senders = b->share(b->share_ctx, &v.bulk, now);
	}
	sg_behaviour_judge(&v, t, rep);
	rep->known = 1;
	return 0;
}

int sg_behaviour_subs(struct sg_behaviour *b, const void *parent, size_t parent_len,
		      uint64_t now, const struct sg_behaviour_thresholds *t,
		      struct sg_behaviour_sub *out, int max)
{
	struct sg_behaviour_id pid = { .key = parent, .key_len = parent_len };
	struct sg_resolved r;
	uint32_t p;
	int n = 0, fresh;

	if (sg_table_prepare(&b->table, &pid, &r))
		return -1;
	/* the keys under the lock, then each judged as any id is */
	pthread_mutex_lock(&r.shard->lock);
	p = sg_table_resolve(&b->table, &r, 0, now, slot_of(b, now), &fresh);
	if (p != SG_NO_ENTRY) {
		for (uint32_t c = r.shard->s[p].first_child; c != SG_NO_ENTRY && n < max;
		     c = r.shard->s[c].next_sibling, n++) {
			memset(&out[n], 0, sizeof(out[n]));
			out[n].key_len = r.shard->s[c].key_len;
			memcpy(out[n].key, r.shard->s[c].key, out[n].key_len);
			out[n].last_seen = r.shard->s[c].last_seen;
		}
	}
	pthread_mutex_unlock(&r.shard->lock);
	if (p == SG_NO_ENTRY)
		return -1;
	for (int k = 0; k < n; k++) {
		struct sg_behaviour_id id = { out[k].key, out[k].key_len, r.key.bytes, r.key.len };
		struct sg_behaviour_report rep;

		if (!sg_behaviour_assess(b, &id, now, t, &rep)) {
			out[k].level = rep.level;
			out[k].messages = rep.values.messages;
		}
	}
	return n;
}

int sg_behaviour_release(struct sg_behaviour *b, const struct sg_behaviour_id *id)
{
	struct sg_resolved r;
	uint32_t i;
	int fresh;

	if (sg_table_prepare(&b->table, id, &r))
		return -1;
	pthread_mutex_lock(&r.shard->lock);
	i = sg_table_resolve(&b->table, &r, 0, 0, 0, &fresh);
	if (i != SG_NO_ENTRY)
		sg_table_remove(r.shard, i);
	pthread_mutex_unlock(&r.shard->lock);
	return i == SG_NO_ENTRY ? -1 : 0;
}

void sg_behaviour_stats(struct sg_behaviour *b, struct sg_behaviour_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (uint32_t i = 0; i < b->table.n_shards; i++) {
		struct sg_shard *sh = &b->table.shards[i];

		pthread_mutex_lock(&sh->lock);
		st->capacity += sh->capacity;
		st->held += sh->probation.count + sh->protected.count;
		st->protected_held += sh->protected.count;
		st->evictions += sh->evictions;
		st->subs_recycled += sh->recycled;
		pthread_mutex_unlock(&sh->lock);
	}
	st->bytes = sizeof(*b) + b->table.bytes;
	st->bytes_per_sender = st->capacity ? b->table.bytes / st->capacity : 0;
	if (b->bulk) {
		sg_bulk_stats(b->bulk, &st->bulk);
		st->bytes += sg_bulk_bytes(b->bulk);
	}
}
