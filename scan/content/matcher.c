/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * matcher.c - the content rules compiled into Hyperscan databases, one a
 * target, and each thread's scratch space for matching with them (see
 * matcher.h for why Hyperscan, and the thread model).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "hostlist.h"
#include "matcher_db.h"
#include "rules_check.h"

/* Which Hyperscan mode a target's rules are compiled for. */
static unsigned int target_mode(enum sg_rule_target t)
{
	if (t == SG_TARGET_BODY)
		return HS_MODE_STREAM;		/* chunks of any size, one state a part */
	if (t == SG_TARGET_HEADER)
		return HS_MODE_VECTORED;	/* "name" ": " "value", not copied */
	return HS_MODE_BLOCK;
}

static unsigned int rule_hs_flags(const struct sg_rule *r)
{
	unsigned int f = HS_FLAG_SINGLEMATCH;

	/* host names and content types have no case */
	if ((r->flags & SG_RULE_CASELESS) || r->target == SG_TARGET_URL_HOST ||
	    r->target == SG_TARGET_ATTACHMENT_TYPE)
		f |= HS_FLAG_CASELESS;
	if (r->flags & SG_RULE_MULTILINE)
		f |= HS_FLAG_MULTILINE;
	if (r->flags & SG_RULE_DOTALL)
		f |= HS_FLAG_DOTALL;
	return f;
}

/* Hyperscan's words turned into an operator's: where, what, and the fix. */
static void compile_error(const struct sg_rules *rules, const struct sg_rule *r,
			  const char *message, char *err, size_t errlen)
{
	const char *at = strstr(message, " at index ");
	unsigned int column = r->column;
	char q[400];

	if (at)
		column = r->column + 1 + (unsigned int)strtoul(at + 10, NULL, 10);
	sg_rule_pattern_quote(r, q, sizeof(q));
	if (strstr(message, "empty buffer"))
		sg_rules_error(rules, r, r->column, err, errlen, "pattern %s matches the empty "
			       "text, so it would match every message; make it need at least "
			       "one character", q);
	else if (strstr(message, "support"))
		sg_rules_error(rules, r, column, err, errlen, "pattern %s cannot be matched in "
			       "a stream: %s Rewrite it without back-references, look-arounds, "
			       "atomic groups, possessive quantifiers, conditionals, recursion, "
			       "\\K \\R \\G \\X or control verbs", q, message);
	else
		sg_rules_error(rules, r, column, err, errlen, "pattern %s cannot be compiled: "
			       "%s", q, message);
}

/* Compiles the pattern rules of target t into m->db[t]: 0, or -1 with err. */
static int build_target(struct sg_matcher *m, const struct sg_rules *rules,
			enum sg_rule_target t, char *err, size_t errlen)
{
	unsigned int n = sg_rules_count_target(rules, t), k = 0;
	const char **exprs = calloc(n ? n : 1, sizeof(*exprs));
	unsigned int *flags = calloc(n ? n : 1, sizeof(*flags));
	unsigned int *ids = calloc(n ? n : 1, sizeof(*ids));
	hs_compile_error_t *cerr = NULL;
	int rc = -1;

	if (!exprs || !flags || !ids) {
		snprintf(err, errlen, "%s: out of memory", sg_rules_path(rules));
		goto out;
	}
	for (unsigned int i = 0; i < sg_rules_count(rules); i++) {
		const struct sg_rule *r = sg_rules_rule(rules, i);

		if (r->target != t || !r->pattern)
			continue;
		exprs[k] = r->pattern;
		flags[k] = rule_hs_flags(r);
		ids[k++] = i;
	}
	if (!k) {
		rc = 0;
		goto out;
	}
	if (hs_compile_multi(exprs, flags, ids, k, target_mode(t), NULL, &m->db[t], &cerr) !=
	    HS_SUCCESS) {
		if (cerr && cerr->expression >= 0 && (unsigned int)cerr->expression < k)
			compile_error(rules, sg_rules_rule(rules, ids[cerr->expression]),
				      cerr->message, err, errlen);
		else
			snprintf(err, errlen, "%s: the %s rules cannot be compiled together: %s",
				 sg_rules_path(rules), sg_rule_target_name(t),
				 cerr ? cerr->message : "Hyperscan failed");
		hs_free_compile_error(cerr);
		m->db[t] = NULL;
		goto out;
	}
	hs_database_size(m->db[t], &m->db_bytes[t]);
	if (t == SG_TARGET_BODY)
		hs_stream_size(m->db[t], &m->stream_bytes);
	rc = 0;
out:
	free(exprs);
	free(flags);
	free(ids);
	return rc;
}

struct sg_matcher *sg_matcher_build(const struct sg_rules *rules, char *err, size_t errlen)
{
	static unsigned long long serials;
	struct sg_matcher *m = calloc(1, sizeof(*m));
	unsigned int n = sg_rules_count(rules);
	struct timespec t0, t1;

	if (!m || !(m->list_rules = calloc(n ? n : 1, sizeof(*m->list_rules)))) {
		snprintf(err, errlen, "%s: out of memory", sg_rules_path(rules));
		free(m);
		return NULL;
	}
	if (hs_valid_platform() != HS_SUCCESS) {
		snprintf(err, errlen, "%s: this CPU lacks SSSE3, which the content rules' "
			 "matcher (Hyperscan) needs", sg_rules_path(rules));
		sg_matcher_free(m);
		return NULL;
	}
	m->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
	m->nrules = n;
	sg_hash_key_random(&m->host_key);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int t = 0; t < SG_TARGET_COUNT; t++)
		if (build_target(m, rules, (enum sg_rule_target)t, err, errlen) < 0) {
			sg_matcher_free(m);
			return NULL;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	m->compile_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	for (unsigned int i = 0; i < n; i++)
		if (sg_rules_rule(rules, i)->hosts)
			m->list_rules[m->nlists++] = i;
	m->has_url_rules = sg_rules_count_target(rules, SG_TARGET_URL_HOST) > 0;
	return m;
}

void sg_matcher_free(struct sg_matcher *m)
{
	if (!m)
		return;
	for (int t = 0; t < SG_TARGET_COUNT; t++)
		hs_free_database(m->db[t]);
	free(m->list_rules);
	free(m);
}

/* Each thread's scratch, and the matcher it was last grown for (serials
 * are never reused, unlike addresses); the key frees it at thread exit. */
static __thread hs_scratch_t *thread_scratch;
static __thread unsigned long long thread_scratch_serial;
static pthread_key_t scratch_key;
static pthread_once_t scratch_key_once = PTHREAD_ONCE_INIT;
static int scratch_key_made;

static void scratch_at_thread_exit(void *scratch)
{
	hs_free_scratch(scratch);
	thread_scratch = NULL;
	thread_scratch_serial = 0;
}

static void scratch_key_make(void)
{
	scratch_key_made = pthread_key_create(&scratch_key, scratch_at_thread_exit) == 0;
}

int sg_matcher_scratch(const struct sg_matcher *m, hs_scratch_t **scratch)
{
	if (thread_scratch_serial != m->serial) {
		int rc = 0;

		pthread_once(&scratch_key_once, scratch_key_make);
		/* grows (never shrinks) to fit each database: one scratch
		 * serves every generation of rules this thread matches with;
		 * a growth moves it, so the key learns where it is even when
		 * a later one fails */
		for (int t = 0; t < SG_TARGET_COUNT && !rc; t++)
			if (m->db[t] && hs_alloc_scratch(m->db[t], &thread_scratch) != HS_SUCCESS)
				rc = -1;
		if (scratch_key_made)
			pthread_setspecific(scratch_key, thread_scratch);
		if (rc < 0)
			return -1;
		thread_scratch_serial = m->serial;
	}
	*scratch = thread_scratch;
	return 0;
}

void sg_match_thread_release(void)
{
	if (!thread_scratch)
		return;
	if (scratch_key_made)
		pthread_setspecific(scratch_key, NULL);
	hs_free_scratch(thread_scratch);
	thread_scratch = NULL;
	thread_scratch_serial = 0;
}

int sg_matcher_stats(const struct sg_rules *rules, struct sg_matcher_stats *st)
{
	const struct sg_matcher *m = sg_rules_matcher(rules);
	hs_scratch_t *scratch;

	memset(st, 0, sizeof(*st));
	for (int t = 0; t < SG_TARGET_COUNT; t++) {
		st->database_bytes[t] = m->db_bytes[t];
		st->database_total += m->db_bytes[t];
	}
	st->stream_bytes = m->stream_bytes;
	st->message_bytes = sg_match_state_bytes(m, 0);
	st->message_bytes_max = sg_match_state_bytes(m, 1);
	for (unsigned int i = 0; i < m->nlists; i++) {
		const struct sg_hostlist *l = sg_rules_rule(rules, m->list_rules[i])->hosts;

		st->hostlist_bytes += sg_hostlist_memory(l);
		st->hostlist_hosts += sg_hostlist_count(l);
	}
	st->compile_ms = m->compile_ms;
	if (sg_matcher_scratch(m, &scratch) < 0)
		return -1;
	if (scratch)
		hs_scratch_size(scratch, &st->scratch_bytes);
	return 0;
}
