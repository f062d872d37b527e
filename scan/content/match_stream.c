/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * match_stream.c - one message matched against the compiled content rules
 * (see matcher.h): its state, each target's call into Hyperscan, the URL
 * hosts found in its text, and the rules that hit.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "hostlist.h"
#include "matcher_db.h"
#include "urls.h"

#define SEEN_SLOTS_MAX 2048	/* > 2 * SG_MATCH_URL_HOSTS_MAX: a load of at most 1/2 */

struct sg_match_stream {
	const struct sg_rules *rules;
	const struct sg_matcher *m;
	hs_stream_t *body;		/* the text part streaming now */
	struct sg_rule_hit result;
	const char *header;		/* the header being matched, for header:Name rules */
	size_t header_len;
	struct sg_url_extractor urls;
	unsigned long url_hosts_unusable;	/* given to sg_match_url_host */
	uint64_t *seen;			/* hashes of the hosts looked at (0: a free slot) */
	unsigned int seen_slots;
	unsigned char hit[];		/* a bit a rule: it has hit this message */
};

size_t sg_match_state_bytes(const struct sg_matcher *m, int at_most)
{
	size_t n = sizeof(struct sg_match_stream) + (m->nrules + 7) / 8 + m->stream_bytes;

	if (at_most && m->has_url_rules)
		n += SEEN_SLOTS_MAX * sizeof(uint64_t);
	return n;
}

/* A rule matched: 1 when this decides the message (the first reject or
 * tempfail rule), else 0. */
static int record_hit(struct sg_match_stream *ms, unsigned int id)
{
	const struct sg_rule *r = sg_rules_rule(ms->rules, id);

	if (ms->result.decided)
		return 1;
	if (ms->hit[id / 8] & (1u << (id % 8)))
		return 0;
	ms->hit[id / 8] |= (unsigned char)(1u << (id % 8));
	if (r->action != SG_RULE_FLAG) {
		ms->result.decided = r;
		return 1;
	}
	if (ms->result.flagged_count < SG_MATCH_FLAGGED_MAX)
		ms->result.flagged[ms->result.flagged_count] = r;
	ms->result.flagged_count++;
	return 0;
}

/* Hyperscan's match callback: nonzero stops the scan. */
static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
		    unsigned int flags, void *ctx)
{
	struct sg_match_stream *ms = ctx;
	const struct sg_rule *r = sg_rules_rule(ms->rules, id);

	(void)from;
	(void)to;
	(void)flags;
	/* one database holds every header:Name rule: the name decides */
	if (r->target == SG_TARGET_HEADER_NAMED &&
	    (r->header_len != ms->header_len || strncasecmp(r->header, ms->header, r->header_len)))
		return 0;
	return record_hit(ms, id);
}

static int scan_outcome(struct sg_match_stream *ms, hs_error_t rc)
{
	if (rc == HS_SUCCESS || rc == HS_SCAN_TERMINATED)
		return ms->result.decided ? SG_MATCH_DECIDED : SG_MATCH_GO_ON;
	ms->result.failed = 1;
	return SG_MATCH_FAILED;
}

/* Where every call starts: the outcome if it is known already, else the
 * thread's scratch in *scratch. */
static int call_start(struct sg_match_stream *ms, hs_scratch_t **scratch)
{
	if (ms->result.decided)
		return SG_MATCH_DECIDED;
	if (ms->result.failed)
		return SG_MATCH_FAILED;
	if (sg_matcher_scratch(ms->m, scratch) < 0) {
		ms->result.failed = 1;
		return SG_MATCH_FAILED;
	}
	return SG_MATCH_GO_ON;
}

static void on_url_host(void *ctx, const char *host, size_t len)
{
	sg_match_url_host(ctx, host, len);
}

struct sg_match_stream *sg_match_begin(const struct sg_rules *rules)
{
	const struct sg_matcher *m = sg_rules_matcher(rules);
	struct sg_match_stream *ms;
	hs_scratch_t *scratch;

	if (sg_matcher_scratch(m, &scratch) < 0)
		return NULL;
	ms = calloc(1, sizeof(*ms) + (m->nrules + 7) / 8);
	if (!ms)
		return NULL;
	ms->rules = rules;
	ms->m = m;
	if (m->db[SG_TARGET_BODY] &&
	    hs_open_stream(m->db[SG_TARGET_BODY], 0, &ms->body) != HS_SUCCESS) {
		free(ms);
		return NULL;
	}
	sg_url_extract_init(&ms->urls, on_url_host, ms);
	return ms;
}

void sg_match_end(struct sg_match_stream *ms)
{
	if (!ms)
		return;
	if (ms->body)
		hs_close_stream(ms->body, NULL, NULL, NULL);	/* no scratch: nothing reported */
	free(ms->seen);
	free(ms);
}

const struct sg_rule_hit *sg_match_result(const struct sg_match_stream *ms)
{
	return &ms->result;
}

int sg_match_header(struct sg_match_stream *ms, const char *name, size_t nlen,
		    const char *value, size_t vlen)
{
	const hs_database_t *any = ms->m->db[SG_TARGET_HEADER];
	const hs_database_t *named = ms->m->db[SG_TARGET_HEADER_NAMED];
	hs_scratch_t *scratch;
	int rc = call_start(ms, &scratch);

	if (rc != SG_MATCH_GO_ON)
		return rc;
	/* Hyperscan takes unsigned int lengths; a header is far shorter */
	if (nlen > UINT_MAX / 4)
		nlen = UINT_MAX / 4;
	if (vlen > UINT_MAX / 4)
		vlen = UINT_MAX / 4;
	if (!name)
		name = "", nlen = 0;
	if (!value)
		value = "", vlen = 0;
	if (any) {
		const char *parts[3] = { name, ": ", value };
		unsigned int lens[3] = { (unsigned int)nlen, 2, (unsigned int)vlen };

		rc = scan_outcome(ms, hs_scan_vector(any, parts, lens, 3, 0, scratch, on_match, ms));
		if (rc != SG_MATCH_GO_ON)
			return rc;
	}
	if (named) {
		ms->header = name;
		ms->header_len = nlen;
		rc = scan_outcome(ms, hs_scan(named, value, (unsigned int)vlen, 0, scratch,
					      on_match, ms));
		ms->header = NULL;
	}
	return rc;
}

static void count_unusable_hosts(struct sg_match_stream *ms)
{
	ms->result.url_hosts_unusable = ms->url_hosts_unusable + ms->urls.overlong_hosts +
					ms->urls.invalid_hosts;
}

int sg_match_body(struct sg_match_stream *ms, const char *data, size_t n)
{
	hs_scratch_t *scratch;
	int rc = call_start(ms, &scratch);

	if (rc != SG_MATCH_GO_ON || !n)
		return rc;	/* (Hyperscan refuses a NULL buffer, even empty) */
	for (size_t off = 0; ms->body && off < n && rc == SG_MATCH_GO_ON;) {
		unsigned int piece = n - off > (1u << 30) ? 1u << 30 : (unsigned int)(n - off);

		rc = scan_outcome(ms, hs_scan_stream(ms->body, data + off, piece, 0, scratch,
						     on_match, ms));
		off += piece;
	}
	if (rc == SG_MATCH_GO_ON && ms->m->has_url_rules) {
		sg_url_extract(&ms->urls, data, n);
		count_unusable_hosts(ms);
		rc = ms->result.failed ? SG_MATCH_FAILED :
		     ms->result.decided ? SG_MATCH_DECIDED : SG_MATCH_GO_ON;
	}
	return rc;
}

int sg_match_body_end(struct sg_match_stream *ms)
{
	hs_scratch_t *scratch;
	int rc = call_start(ms, &scratch);

	if (rc != SG_MATCH_GO_ON)
		return rc;
	/* what matches only at the part's end ($, \z), then a fresh stream
	 * for the next part, in the same memory */
	if (ms->body)
		rc = scan_outcome(ms, hs_reset_stream(ms->body, 0, scratch, on_match, ms));
	if (rc == SG_MATCH_GO_ON && ms->m->has_url_rules) {
		sg_url_extract_end(&ms->urls);
		count_unusable_hosts(ms);
		rc = ms->result.failed ? SG_MATCH_FAILED :
		     ms->result.decided ? SG_MATCH_DECIDED : SG_MATCH_GO_ON;
	}
	return rc;
}

/* Whether a host's hash (never 0) is in the message's set. */
static int seen_has(const struct sg_match_stream *ms, uint64_t h)
{
	unsigned int mask = ms->seen_slots - 1;

	if (!ms->seen)
		return 0;
	for (unsigned int i = (unsigned int)h & mask; ms->seen[i]; i = (i + 1) & mask)
		if (ms->seen[i] == h)
			return 1;
	return 0;
}

/* Adds a hash not in the set (growing it to keep its load at most 1/2):
 * 0, or -1 out of memory. */
static int seen_add(struct sg_match_stream *ms, uint64_t h)
{
	unsigned int mask;

	if ((ms->result.url_hosts + 1) * 2 > ms->seen_slots) {
		unsigned int slots = ms->seen_slots ? ms->seen_slots * 2 : 64;
		uint64_t *seen = calloc(slots, sizeof(*seen));

		if (!seen)
			return -1;
		for (unsigned int i = 0; i < ms->seen_slots; i++) {
			unsigned int j;

			if (!ms->seen[i])
				continue;
			for (j = (unsigned int)ms->seen[i] & (slots - 1); seen[j];
			     j = (j + 1) & (slots - 1))
				;
			seen[j] = ms->seen[i];
		}
		free(ms->seen);
		ms->seen = seen;
		ms->seen_slots = slots;
	}
	mask = ms->seen_slots - 1;
	for (unsigned int i = (unsigned int)h & mask;; i = (i + 1) & mask)
		if (!ms->seen[i]) {
			ms->seen[i] = h;
			return 0;
		}
}

int sg_match_url_host(struct sg_match_stream *ms, const char *host, size_t n)
{
	const struct sg_matcher *m = ms->m;
	hs_scratch_t *scratch;
	char norm[SG_HOST_MAX + 1];
	int rc = call_start(ms, &scratch), len;
	uint64_t h;

	if (rc != SG_MATCH_GO_ON || !m->has_url_rules)
		return rc;
	len = sg_host_normalize(host, n, norm);
	if (len < 0) {
		ms->url_hosts_unusable++;
		count_unusable_hosts(ms);
		return SG_MATCH_GO_ON;
	}
	h = sg_keyhash(&m->host_key, norm, (size_t)len);
	h = h ? h : 1;		/* 0 marks a free slot */
	if (seen_has(ms, h))
		return SG_MATCH_GO_ON;	/* each distinct host once */
	if (ms->result.url_hosts == SG_MATCH_URL_HOSTS_MAX) {
		ms->result.url_hosts_over++;
		return SG_MATCH_GO_ON;
	}
	if (seen_add(ms, h) < 0) {
		ms->result.failed = 1;
		return SG_MATCH_FAILED;
	}
	ms->result.url_hosts++;
	if (m->db[SG_TARGET_URL_HOST]) {
		rc = scan_outcome(ms, hs_scan(m->db[SG_TARGET_URL_HOST], norm, (unsigned int)len,
					      0, scratch, on_match, ms));
		if (rc != SG_MATCH_GO_ON)
			return rc;
	}
	for (unsigned int i = 0; i < m->nlists; i++) {
		unsigned int id = m->list_rules[i];

		if (ms->hit[id / 8] & (1u << (id % 8)))
			continue;
		if (sg_hostlist_match(sg_rules_rule(ms->rules, id)->hosts, norm, (size_t)len) &&
		    record_hit(ms, id))
			return SG_MATCH_DECIDED;
	}
	return SG_MATCH_GO_ON;
}

int sg_match_attachment(struct sg_match_stream *ms, const char *name, size_t nlen,
			const char *type, size_t tlen)
{
	const hs_database_t *names = ms->m->db[SG_TARGET_ATTACHMENT_NAME];
	const hs_database_t *types = ms->m->db[SG_TARGET_ATTACHMENT_TYPE];
	hs_scratch_t *scratch;
	int rc = call_start(ms, &scratch);

	if (rc != SG_MATCH_GO_ON)
		return rc;
	if (nlen > UINT_MAX / 4)
		nlen = UINT_MAX / 4;
	if (tlen > UINT_MAX / 4)
		tlen = UINT_MAX / 4;
	if (names && name)
		rc = scan_outcome(ms, hs_scan(names, name, (unsigned int)nlen, 0, scratch,
					      on_match, ms));
	if (rc == SG_MATCH_GO_ON && types && type)
		rc = scan_outcome(ms, hs_scan(types, type, (unsigned int)tlen, 0, scratch,
					      on_match, ms));
	return rc;
}
