/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * shared_sync.c - one round with the shared store (see shared.h): the
 * per-sender maps walked (src_state's SYNs, src_feedback's messages,
 * penalties and ladder steps), the deltas summed per group and the local
 * changes of penalty and step sent in one EVALSHA; the reply's senders
 * (penalised or on the ladder on any host) and groups (over a shared
 * limit) written into src_state and src_feedback. A round is in flight at
 * most; its counts are taken as sent only when its reply came, so a
 * failed round's deltas go with the next one.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "parse.h"
#include "pstats.h"
#include "shared_internal.h"
#include "shared_script.h"

struct group_delta {
	char name[SG_SHARED_NAME_LEN];
	uint64_t syns, msgs;
};

struct over_group {
	char name[SG_SHARED_NAME_LEN];
	uint64_t left_ms;
};

/* The request's arguments, in one growing buffer. */
struct args {
	char *buf;
	size_t len, cap;
	size_t *off;		/* each argument's start in buf */
	size_t n, max;
};

static int args_add(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int args_add(struct args *a, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (a->n == a->max) {
		size_t max = a->max ? a->max * 2 : 64;
		size_t *off = realloc(a->off, max * sizeof(*off));

		if (!off)
			return -1;
		a->off = off;
		a->max = max;
	}
	for (;;) {
		va_start(ap, fmt);
		w = vsnprintf(a->buf + a->len, a->cap - a->len, fmt, ap);
		va_end(ap);
		if (w < 0)
			return -1;
		if (a->len + (size_t)w + 1 <= a->cap)
			break;
		size_t cap = a->cap ? a->cap * 2 : 4096;
		while (cap < a->len + (size_t)w + 1)
			cap *= 2;
		char *buf = realloc(a->buf, cap);

		if (!buf)
			return -1;
		a->buf = buf;
		a->cap = cap;
	}
	a->off[a->n++] = a->len;
	a->len += (size_t)w + 1;
	return 0;
}

static void args_free(struct args *a)
{
	free(a->buf);
	free(a->off);
}

static int differs(uint64_t a, uint64_t b)
{
	if (!a != !b)
		return 1;
	return (a > b ? a - b : b - a) > SG_SHARED_SLACK_NS;
}

static uint64_t left_ms(uint64_t until, uint64_t now)
{
	return until > now ? (until - now + 999999) / 1000000 : 0;
}

/* The group a sender's counts are shared in: its tenant's ("tenant:NAME",
 * a name of [A-Za-z0-9._-]), else its prefix's (shared_prefix_v4/v6). */
static void group_name(const struct sg_shared *s, const struct sg_src_key *key, char *buf,
		       size_t len)
{
	char tenant[SG_TENANT_NAME_LEN];

	if (s->tenants && *s->tenants &&
	    sg_tenant_of_key(s->maps, *s->tenants, key, tenant, sizeof(tenant)) == 1) {
		snprintf(buf, len, "tenant:%s", tenant);
		return;
	}
	sg_shared_group_name(key, (int)s->cfg.shared_prefix_v4, (int)s->cfg.shared_prefix_v6,
			     buf, len);
}

static int cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct group_delta *)a)->name, ((const struct group_delta *)b)->name);
}

static int cmp_over(const void *a, const void *b)
{
	return strcmp(((const struct over_group *)a)->name, ((const struct over_group *)b)->name);
}

/* A sender's local penalty and step, as the maps hold them now. */
struct local {
	uint64_t syns, msgs, pen_until, step_until, released_ns;
	uint8_t step;
};

static int read_local(const struct sg_shared *s, const struct sg_src_key *key, uint64_t now,
		      struct local *l)
{
	struct sg_src_state st;
	struct sg_src_feedback fb;

	memset(l, 0, sizeof(*l));
	if (sg_source_read(s->maps, key, &st))
		return -1;
	/* the connections it made: a refused SYN (a penalised sender retrying)
	 * neither counts against its group nor lengthens the group's penalty */
	l->syns = st.syns >= st.syn_drops ? st.syns - st.syn_drops : 0;
	l->pen_until = st.penalty_until_ns > now ? st.penalty_until_ns : 0;
	if (bpf_map_lookup_elem(s->maps->src_feedback, key, &fb) == 0) {
		l->msgs = fb.msgs + fb.rejects + fb.tempfails;
		l->step = fb.ladder_step < SG_LADDER__COUNT ? fb.ladder_step : 0;
		l->step_until = l->step ? fb.ladder_until_ns : 0;
		l->released_ns = fb.released_ns;
	}
	return 0;
}

void shared_sync_baseline(struct sg_shared *s)
{
	struct sg_src_key key, prev;
	uint64_t now = sg_now_ns();
	int have = 0;

	while (bpf_map_get_next_key(s->maps->src_state, have ? &prev : NULL, &key) == 0) {
		struct sg_shared_sender *e;
		struct local l;
		int created;

		prev = key;
		have = 1;
		if (read_local(s, &key, now, &l))
			continue;
		e = sg_shared_table_get(&s->table, &key, &created);
		if (!e)
			break;
		e->syns_sent = l.syns;
		e->msgs_sent = l.msgs;
	}
	s->baselined = 1;
	s->last_ok_ns = now;
	/* the penalties and steps already here go with the first round */
	s->push_all = 1;
}

/* Writes a sender's shared penalty and step into the local maps. */
static void apply_sender(struct sg_shared *s, const struct sg_src_key *key, uint64_t pen_until,
			 uint8_t step, uint64_t step_until, uint64_t now)
{
	struct sg_src_state st;
	struct sg_src_feedback fb;
	char err[SG_ERR_LEN], name[SG_SHARED_NAME_LEN];
	int have_st = sg_source_read(s->maps, key, &st) == 0;

	sg_shared_sender_name(key, name, sizeof(name));
	if (!have_st || differs(st.penalty_until_ns > now ? st.penalty_until_ns : 0, pen_until)) {
		if (sg_source_set_penalty(s->maps, key, pen_until, err, sizeof(err)))
			sg_warn("redis: sender %s: the shared penalty was not set: %s", name, err);
	}
	if (bpf_map_lookup_elem(s->maps->src_feedback, key, &fb))
		memset(&fb, 0, sizeof(fb));
	if (fb.ladder_step != step || differs(fb.ladder_until_ns, step_until)) {
		if (fb.ladder_step != step) {
			fb.ladder_since_ns = now;
			if (step == SG_LADDER_REFUSED)
				fb.ladder_refused_ns = now;
			if (step)
				snprintf(fb.ladder_reason, sizeof(fb.ladder_reason),
					 "set on another host (shared through redis)");
		}
		fb.ladder_step = step;
		fb.ladder_until_ns = step_until;
		if (!fb.last_ns)
			fb.last_ns = now;
		if (bpf_map_update_elem(s->maps->src_feedback, key, &fb, BPF_ANY))
			sg_warn("redis: sender %s: the shared ladder step was not set: %s", name,
				strerror(errno));
	}
	sg_pstat_add(SG_PSTAT_REDIS_APPLIED, 1);
	sg_info("redis: sender %s: %s from the shared store (penalty %llus, step %s)", name,
		pen_until || step ? "penalty and step" : "released", (unsigned long long)left_ms(pen_until, now) / 1000,
		step == SG_LADDER_REFUSED ? "refuse" : step == SG_LADDER_TEMPFAIL ? "tempfail" :
		step == SG_LADDER_FLAGGED ? "flag" : "normal");
}

static uint64_t reply_uint(const redisReply *r)
{
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer > 0 ? (uint64_t)r->integer : 0;
	if (r->type == REDIS_REPLY_STRING)
		return strtoull(r->str, NULL, 10);
	return 0;
}

/* The reply's senders: mirrored into the maps; the ones the store no
 * longer holds (released, or lapsed) cleared here too, unless the store is
 * new (restarted empty: the hosts are putting their state back). */
static void apply_senders(struct sg_shared *s, const redisReply *list, int store_new,
			  uint64_t now)
{
	for (size_t i = 0; i + 3 < list->elements; i += 4) {
		const redisReply *m = list->element[i];
		struct sg_shared_sender *e;
		struct sg_src_key key;
		uint64_t pen, step_until;
		uint8_t step;
		int created;

		if (m->type != REDIS_REPLY_STRING || sg_shared_sender_parse(m->str, &key))
			continue;
		pen = reply_uint(list->element[i + 1]);
		step = (uint8_t)reply_uint(list->element[i + 2]);
		step_until = reply_uint(list->element[i + 3]);
		if (step >= SG_LADDER__COUNT)
			continue;
		pen = pen ? now + pen * 1000000ULL : 0;
		step_until = step_until ? now + step_until * 1000000ULL : 0;
		e = sg_shared_table_get(&s->table, &key, &created);
		if (!e) {
			sg_pstat_add(SG_PSTAT_REDIS_UNTRACKED, 1);
			continue;
		}
		if (created) {
			/* a sender new here: what the maps count of it is not ours to send */
			struct local l;

			if (read_local(s, &key, now, &l) == 0) {
				e->syns_sent = l.syns;
				e->msgs_sent = l.msgs;
			}
			e->seen = s->round;
		}
		e->in_store = 1;
		e->seen = s->round;
		if (created || e->step != step || differs(e->pen_until_ns > now ? e->pen_until_ns : 0, pen) ||
		    differs(e->step_until_ns, step_until))
			apply_sender(s, &key, pen, step, step_until, now);
		e->pen_until_ns = pen;
		e->step = step;
		e->step_until_ns = step_until;
		e->syns_now = e->syns_sent;
		e->msgs_now = e->msgs_sent;
		e->returned = 1;
	}
	for (size_t i = 0; i < s->table.cap; i++) {
		struct sg_shared_sender *e = &s->table.slots[i];

		if (!e->used)
			continue;
		if (e->returned) {
			e->returned = 0;
			continue;
		}
		if (!e->in_store || store_new)
			continue;
		/* the store no longer holds it: released or lapsed on every host */
		e->in_store = 0;
		if (e->pen_until_ns > now || e->step)
			apply_sender(s, &e->key, 0, 0, 0, now);
		e->pen_until_ns = 0;
		e->step = 0;
		e->step_until_ns = 0;
	}
}

/* Groups over a shared limit: every local sender of one is refused in the
 * kernel until the group's penalty ends. */
static void apply_over(struct sg_shared *s, const redisReply *list, uint64_t now)
{
	size_t n = list->elements / 2, k = 0;
	struct over_group *over;

	if (!n)
		return;
	over = calloc(n, sizeof(*over));
	if (!over)
		return;
	for (size_t i = 0; i + 1 < list->elements; i += 2) {
		if (list->element[i]->type != REDIS_REPLY_STRING ||
		    strlen(list->element[i]->str) >= SG_SHARED_NAME_LEN)
			continue;
		snprintf(over[k].name, sizeof(over[k].name), "%s", list->element[i]->str);
		over[k++].left_ms = reply_uint(list->element[i + 1]);
	}
	qsort(over, k, sizeof(*over), cmp_over);
	for (size_t i = 0; i < s->table.cap && k; i++) {
		struct sg_shared_sender *e = &s->table.slots[i];
		struct over_group probe, *o;
		struct sg_src_state st;
		char err[SG_ERR_LEN], name[SG_SHARED_NAME_LEN];
		uint64_t until;

		if (!e->used)
			continue;
		group_name(s, &e->key, probe.name, sizeof(probe.name));
		o = bsearch(&probe, over, k, sizeof(*over), cmp_over);
		if (!o)
			continue;
		until = now + o->left_ms * 1000000ULL;
		if (sg_source_read(s->maps, &e->key, &st) ||
		    st.penalty_until_ns + SG_SHARED_SLACK_NS >= until)
			continue;
		sg_shared_sender_name(&e->key, name, sizeof(name));
		if (sg_source_set_penalty(s->maps, &e->key, until, err, sizeof(err))) {
			sg_warn("redis: sender %s: the shared limit's penalty was not set: %s", name,
				err);
			continue;
		}
		/* the group's penalty, not the sender's own: not sent back as one */
		e->pen_until_ns = until;
		sg_pstat_add(SG_PSTAT_REDIS_APPLIED, 1);
		sg_info("redis: sender %s: its group %s is over a shared limit across hosts "
			"(shared_conn_rate/shared_msg_rate): refused in the kernel for %llus",
			name, o->name, (unsigned long long)o->left_ms / 1000);
	}
	free(over);
}

/* A bulk body in bulk_shared, as a round reads it. */
struct bulk_row {
	__u64 digest;
	__u64 last_seen_ns;
	__u32 spreading, senders;
};

static int cmp_bulk_oldest(const void *a, const void *b)
{
	const struct bulk_row *x = a, *y = b;

	return x->last_seen_ns < y->last_seen_ns ? -1 : x->last_seen_ns > y->last_seen_ns;
}

static int cmp_bulk_newest(const void *a, const void *b)
{
	return cmp_bulk_oldest(b, a);
}

/* The round's bulk arguments: this host's counts changed since the last
 * round answered (the oldest first, SG_SHARED_BULK_MAX at most: the rest
 * go with the next rounds), then the bodies seen in the window whose
 * other hosts' counts it asks (the newest first, as many at most). */
static int bulk_args(struct sg_shared *s, struct args *a, uint64_t now)
{
	struct bulk_row *rows = NULL;
	size_t n = 0, nsend = 0, nask;
	__u64 key, next;
	int first = 1, fd = s->maps->bulk_shared;

	if (!s->host_id[0]) {
		char name[SG_SHARED_HOST_ID_LEN] = "";

		gethostname(name, sizeof(name) - 1);
		sg_shared_host_id(name, s->cfg.bpffs_root, s->host_id, sizeof(s->host_id));
	}
	s->bulk_sending_ns = s->bulk_sent_ns;
	if (fd >= 0) {
		rows = malloc(SG_MAX_BULK_SHARED * sizeof(*rows));
		if (!rows)
			return -1;
		while (n < SG_MAX_BULK_SHARED &&
		       !bpf_map_get_next_key(fd, first ? NULL : &key, &next)) {
			struct sg_bulk_shared e;

			first = 0;
			key = next;
			if (bpf_map_lookup_elem(fd, &key, &e) ||
			    e.last_seen_ns + SG_SHARED_BULK_TTL_MS * 1000000ULL < now)
				continue;
			rows[n].digest = key;
			rows[n].last_seen_ns = e.last_seen_ns;
			rows[n].spreading = e.local_spreading;
			rows[n++].senders = e.local_senders;
		}
		qsort(rows, n, sizeof(*rows), cmp_bulk_oldest);
	}
	if (args_add(a, "%s", s->host_id))
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (rows[i].last_seen_ns > s->bulk_sent_ns)
			nsend++;
	if (nsend > SG_SHARED_BULK_MAX)
		nsend = SG_SHARED_BULK_MAX;
	if (args_add(a, "%zu", nsend))
		goto fail;
	for (size_t i = 0, k = 0; i < n && k < nsend; i++) {
		if (rows[i].last_seen_ns <= s->bulk_sent_ns)
			continue;
		if (args_add(a, "%016llx", (unsigned long long)rows[i].digest) ||
		    args_add(a, "%u:%u", rows[i].spreading, rows[i].senders))
			goto fail;
		s->bulk_sending_ns = rows[i].last_seen_ns;
		k++;
	}
	qsort(rows, n, sizeof(*rows), cmp_bulk_newest);
	nask = n < SG_SHARED_BULK_MAX ? n : SG_SHARED_BULK_MAX;
	if (args_add(a, "%zu", nask))
		goto fail;
	for (size_t i = 0; i < nask; i++)
		if (args_add(a, "%016llx", (unsigned long long)rows[i].digest))
			goto fail;
	free(rows);
	return 0;
fail:
	free(rows);
	return -1;
}

/* The other hosts' counts of the bodies asked: into bulk_shared's shared
 * fields (the proxy's local ones left as they are). */
static void apply_bulk(struct sg_shared *s, const redisReply *list, uint64_t now)
{
	int fd = s->maps->bulk_shared;

	if (fd < 0)
		return;
	for (size_t i = 0; i + 2 < list->elements; i += 3) {
		const redisReply *d = list->element[i];
		struct sg_bulk_shared e;
		char *end;
		__u64 key;

		if (d->type != REDIS_REPLY_STRING)
			continue;
		key = strtoull(d->str, &end, 16);
		if (*end || bpf_map_lookup_elem(fd, &key, &e))
			continue;	/* evicted since: not made again */
		e.shared_spreading = (__u32)reply_uint(list->element[i + 1]);
		e.shared_senders = (__u32)reply_uint(list->element[i + 2]);
		e.shared_ns = now;
		bpf_map_update_elem(fd, &key, &e, BPF_EXIST);
	}
}

static void send_round(struct sg_shared *s);

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct sg_shared *s = priv;
	redisReply *reply = r;
	uint64_t now = sg_now_ns();
	int store_new;

	(void)ac;
	if (s->tearing || !reply)
		return;
	s->in_flight = 0;
	shared_conn_expect(s, 0);
	if (reply->type == REDIS_REPLY_ERROR) {
		if (strncmp(reply->str, "NOSCRIPT", 8) == 0) {
			s->push_all = 1;
			shared_conn_load_script(s);
			return;
		}
		char why[256];

		snprintf(why, sizeof(why), "the sync script failed: %.200s", reply->str);
		s->push_all = 1;
		shared_conn_failed(s, why, 1);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5 ||
	    reply->element[2]->type != REDIS_REPLY_ARRAY ||
	    reply->element[3]->type != REDIS_REPLY_ARRAY ||
	    reply->element[4]->type != REDIS_REPLY_ARRAY) {
		s->push_all = 1;
		shared_conn_failed(s, "the sync script's reply is not what this daemon sent it for "
				   "(another smtpguard version?)", 1);
		return;
	}
	sg_pstat_add(SG_PSTAT_REDIS_SYNCS, 1);
	s->last_ok_ns = s->sent_ns;
	/* the round's counts are in the store */
	for (size_t i = 0; i < s->table.cap; i++) {
		struct sg_shared_sender *e = &s->table.slots[i];

		if (e->used && e->sending) {
			e->syns_sent = e->syns_now;
			e->msgs_sent = e->msgs_now;
			e->sending = 0;
		}
	}
	/* a store younger than three rounds may still be getting the hosts' state back */
	store_new = reply_uint(reply->element[1]) < 3 * s->cfg.redis_sync_interval_ns / 1000000ULL;
	if (store_new && !s->push_all && reply_uint(reply->element[1]) < s->cfg.redis_sync_interval_ns / 1000000ULL)
		s->push_all = 1;
	apply_senders(s, reply->element[2], store_new, now);
	apply_over(s, reply->element[3], now);
	s->bulk_sent_ns = s->bulk_sending_ns;
	apply_bulk(s, reply->element[4], now);
	if (s->again) {
		s->again = 0;
		send_round(s);
	}
}

/* Builds and sends a round. */
static void send_round(struct sg_shared *s)
{
	struct sg_src_key key, prev;
	struct group_delta *groups = NULL;
	struct args a = {};
	struct args pens = {};
	size_t ngroups = 0, npens = 0, gcap;
	uint64_t now = sg_now_ns();
	int have = 0, limits = s->cfg.shared_conn_interval_ns || s->cfg.shared_msg_interval_ns;
	int push_all = s->push_all;
	uint32_t untracked = 0;

	s->round++;
	s->push_all = 0;
	/* a group a sender at most: the senders tracked, and room for new ones */
	gcap = s->table.n + 1024 < s->table.max ? s->table.n + 1024 : s->table.max;
	if (limits && !(groups = calloc(gcap, sizeof(*groups))))
		goto fail;
	while (bpf_map_get_next_key(s->maps->src_state, have ? &prev : NULL, &key) == 0) {
		struct sg_shared_sender *e;
		struct local l;
		int created;

		prev = key;
		have = 1;
		if (read_local(s, &key, now, &l))
			continue;
		e = sg_shared_table_get(&s->table, &key, &created);
		if (!e) {
			untracked++;
			continue;
		}
		e->seen = s->round;
		e->syns_now = l.syns;
		e->msgs_now = l.msgs;
		e->sending = 1;
		if (limits) {
			uint64_t ds = sg_shared_delta(l.syns, e->syns_sent);
			uint64_t dm = sg_shared_delta(l.msgs, e->msgs_sent);

			if ((ds || dm) && ngroups == gcap) {
				/* no room this round: its counts go with the next */
				e->sending = 0;
			} else if (ds || dm) {
				group_name(s, &key, groups[ngroups].name, sizeof(groups[0].name));
				groups[ngroups].syns = ds;
				groups[ngroups++].msgs = dm;
			}
		}
		if (e->pen_until_ns && e->pen_until_ns <= now)
			e->pen_until_ns = 0;
		/* a step lower than the one agreed, neither released by the operator
		 * nor lapsed: the proxy rewrote the entry over the one the store's
		 * step was written into (both write src_feedback); written again */
		if (!push_all && e->in_store && l.step < e->step && l.released_ns == e->released_ns &&
		    (!e->step_until_ns || e->step_until_ns > now)) {
			apply_sender(s, &key, l.pen_until, e->step, e->step_until_ns, now);
			l.step = e->step;
			l.step_until = e->step_until_ns;
		}
		e->released_ns = l.released_ns;
		if (push_all ? (l.pen_until || l.step || e->in_store)
			     : (differs(l.pen_until, e->pen_until_ns) || l.step != e->step ||
				differs(l.step_until, e->step_until_ns))) {
			char name[SG_SHARED_NAME_LEN];

			sg_shared_sender_name(&key, name, sizeof(name));
			if (args_add(&pens, "%s", name) ||
			    args_add(&pens, "%llu", (unsigned long long)left_ms(l.pen_until, now)) ||
			    args_add(&pens, "%u", l.step) ||
			    args_add(&pens, "%llu", (unsigned long long)(l.step_until ?
					 (left_ms(l.step_until, now) ? left_ms(l.step_until, now) : 1) : 0)))
				goto fail;
			npens++;
			e->pen_until_ns = l.pen_until;
			e->step = l.step;
			e->step_until_ns = l.step_until;
		}
	}
	if (untracked)
		sg_pstat_add(SG_PSTAT_REDIS_UNTRACKED, untracked);
	/* senders gone from the maps that hold nothing shared are forgotten */
	for (size_t i = 0; i < s->table.cap; i++) {
		struct sg_shared_sender *e = &s->table.slots[i];

		while (e->used && e->seen != s->round && !e->in_store && !e->pen_until_ns && !e->step)
			sg_shared_table_remove(&s->table, e);
	}
	/* one line a group */
	qsort(groups, ngroups, sizeof(*groups), cmp_group);
	{
		size_t w = 0;

		for (size_t i = 0; i < ngroups; i++) {
			if (w && strcmp(groups[w - 1].name, groups[i].name) == 0) {
				groups[w - 1].syns += groups[i].syns;
				groups[w - 1].msgs += groups[i].msgs;
			} else {
				groups[w++] = groups[i];
			}
		}
		ngroups = w;
	}
	if (args_add(&a, "EVALSHA") || args_add(&a, "%s", s->sha) || args_add(&a, "0") ||
	    args_add(&a, "%llu", (unsigned long long)(s->cfg.shared_conn_interval_ns *
						      s->cfg.shared_conn_burst / 1000000ULL)) ||
	    args_add(&a, "%u", s->cfg.shared_conn_interval_ns ? s->cfg.shared_conn_burst : 0) ||
	    args_add(&a, "%llu", (unsigned long long)(s->cfg.shared_msg_interval_ns *
						      s->cfg.shared_msg_burst / 1000000ULL)) ||
	    args_add(&a, "%u", s->cfg.shared_msg_interval_ns ? s->cfg.shared_msg_burst : 0) ||
	    args_add(&a, "%llu", (unsigned long long)(s->cfg.shared_penalty_ns / 1000000ULL)) ||
	    args_add(&a, "%llu", (unsigned long long)(s->cfg.ladder_forget_ns / 1000000ULL)) ||
	    args_add(&a, "%d", SG_SHARED_RETURN_MAX) || args_add(&a, "%zu", ngroups) ||
	    args_add(&a, "%zu", npens) ||
	    args_add(&a, "%llu", (unsigned long long)((now - s->last_ok_ns) / 1000000ULL)))
		goto fail;
	for (size_t i = 0; i < ngroups; i++)
		if (args_add(&a, "%s", groups[i].name) ||
		    args_add(&a, "%llu", (unsigned long long)groups[i].syns) ||
		    args_add(&a, "%llu", (unsigned long long)groups[i].msgs))
			goto fail;
	for (size_t i = 0; i < pens.n; i++)
		if (args_add(&a, "%s", pens.buf + pens.off[i]))
			goto fail;
	if (bulk_args(s, &a, now))
		goto fail;
	{
		const char **argv = calloc(a.n, sizeof(*argv));
		size_t *lens = calloc(a.n, sizeof(*lens));
		int rc;

		if (!argv || !lens) {
			free(argv);
			free(lens);
			goto fail;
		}
		for (size_t i = 0; i < a.n; i++) {
			argv[i] = a.buf + a.off[i];
			lens[i] = strlen(argv[i]);
		}
		rc = redisAsyncCommandArgv(s->main.ac, on_reply, s, (int)a.n, argv, lens);
		free(argv);
		free(lens);
		if (rc != REDIS_OK)
			goto fail;
	}
	s->in_flight = 1;
	s->sent_ns = now;
	shared_conn_expect(s, 1);
	free(groups);
	args_free(&a);
	args_free(&pens);
	return;
fail:
	/* no memory, or hiredis refused the command: the next round sends it all */
	for (size_t i = 0; i < s->table.cap; i++)
		s->table.slots[i].sending = 0;
	s->push_all = 1;
	free(groups);
	args_free(&a);
	args_free(&pens);
	sg_pstat_add(SG_PSTAT_REDIS_ERRORS, 1);
}

void shared_sync_up(struct sg_shared *s)
{
	/* whatever this host holds goes to a store that may have lost it */
	s->push_all = 1;
	s->in_flight = 0;
	if (s->main.ac && s->script_loaded)
		send_round(s);
}

void shared_sync_tick(struct sg_timer *timer)
{
	struct sg_shared *s = timer->ctx;

	sg_loop_timer_in(s->loop, &s->tick, s->cfg.redis_sync_interval_ns);
	if (s->state == SG_REDIS_UP && s->main.ac && s->script_loaded && !s->sub.ac)
		shared_conn_subscribe(s);
	if (s->state == SG_REDIS_UP && s->main.ac && s->script_loaded && !s->in_flight)
		send_round(s);
}

void shared_sync_soon(struct sg_shared *s)
{
	if (s->state != SG_REDIS_UP || !s->main.ac || !s->script_loaded)
		return;
	if (s->in_flight)
		s->again = 1;
	else
		send_round(s);
}
