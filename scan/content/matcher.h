/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * matcher.h - the content rules (rules.h) compiled into one Hyperscan
 * database per target, and a message matched against them as it streams.
 *
 * Why Hyperscan: measured against PCRE2 (a JIT-compiled regex a rule, the
 * body streamed with PCRE2_PARTIAL_HARD over a window of the text the
 * rules may still need) by bench/scan_matcher.c: body rules of words,
 * phrases with \s+, URL-ish patterns and case-insensitive alternations,
 * all "flag" so every byte is matched, text in 4 KiB chunks; the fastest
 * of 3 rounds, best of 4 runs, on a shared 2-vCPU Xeon VM:
 *
 *                 Hyperscan (this engine)           PCRE2 JIT, a regex a rule
 *   rules  body   MB/s  us/msg  state  compile      MB/s   us/msg  state   compile
 *      10    1K    691     1.5   647 B    7 ms       323      3.2  68 KiB   0.4 ms
 *      10  100K   2402    42.6                       185      553
 *     100    1K    558     1.8   699 B   67 ms        22       48  69 KiB     2 ms
 *     100  100K   1447    70.8                        13    7,862
 *    1000    1K    467     2.2  1130 B  790 ms       0.7    1,545  76 KiB    16 ms
 *    1000  100K   1377    74.4                       1.2   88,010
 *
 * (state: a message's, at its start; Hyperscan's body stream is 61, 105
 * and 433 B of it, the rest the struct and a bit a rule. PCRE2's: a
 * 64 KiB window, a 4 KiB chunk, 8 B a rule.) Compiled: 24 KB, 168 KB and
 * 1.0 MB against PCRE2's 35 KB, 347 KB and 3.5 MB with JIT; scratch a
 * thread 4.8, 6.9 and 18 KB. 10,000 rules: 21 s to compile (167 MB at
 * its peak), 10 MB compiled, 127 KB of scratch, 4.3 KB of stream.
 *
 * So: one pass matches every rule, and the time hardly grows with them
 * (1.5 to 2.2 us a 1 KiB message from 10 to 1,000 rules), where PCRE2's
 * is rules x bytes (100 times slower at 100 rules, 1,000 times at
 * 1,000). Streaming is native: a few hundred bytes of state a message
 * and a match across any chunks, where PCRE2 must keep the text of every
 * partial match (bounded, and a match longer than the bound is missed).
 * And the time is linear in the text, which a sender chooses; a
 * backtracking regex can be made slow by it (a match limit then misses
 * matches). The price: compiling (a reload's, paid while the old rules
 * serve: 0.8 s for 1,000 rules against 16 ms), and no back-references,
 * look-arounds, atomic groups and the like. Those are refused when the
 * rules load, with where and why, rather than run by PCRE2 for the rules
 * that use them: that would bring its window, its CPU and its
 * backtracking back for exactly those rules, and a second way to match.
 * PCRE2 remains in the loader only, to check each pattern's syntax and
 * say at which offset it is wrong (rules_check.c).
 *
 * Thread model. sg_rules_load compiles the databases (on the thread that
 * loads the configuration); they are read-only, shared by every worker
 * thread, and live as long as the rules (the configuration generation that
 * loaded them: a reload builds new ones, and sessions in flight keep the
 * old ones until they end; two generations' rules may be matched at once).
 * Hyperscan's scratch space must not be shared by threads running at once:
 * each thread has its own, thread-local, grown (hs_alloc_scratch) to fit
 * every database it has matched with, freed when the thread exits (a
 * pthread key's destructor) or by sg_match_thread_release. A message's
 * state (struct sg_match_stream, its Hyperscan body stream and its set of
 * URL hosts looked at) is allocated by sg_match_begin and freed by
 * sg_match_end, on the thread that matches it; scan/ starts no thread.
 * It is bounded: the struct (about 600 bytes), a bit a rule, the body
 * stream (hs_stream_size: 4.3 KB for 10,000 rules), and at most 16 KiB
 * for the URL hosts' hashes (sg_matcher_stats tells all three).
 *
 * A message is matched in any order of calls: its headers, its text parts'
 * decoded text (each part a stream of its own: sg_match_body chunk by
 * chunk, then sg_match_body_end, which matches what can only match at the
 * part's end ($, \z) and resets the stream, so no pattern spans two
 * parts), the hosts of the URLs found in that text (found by the matcher
 * itself as the text streams, or given with sg_match_url_host), and its
 * parts' file names and types. Every call takes pointer and length: NUL
 * and any other byte are matched like the rest.
 *
 * The first reject or tempfail rule that matches decides (in the order the
 * message is given), and nothing more is matched; flag rules that matched
 * before are kept as signals. A rule hits at most once a message.
 */
#ifndef SMTPGUARD_MATCHER_H
#define SMTPGUARD_MATCHER_H

#include <stddef.h>
#include "rules.h"

#define SG_MATCH_FLAGGED_MAX 16		/* flag rules named in a result (all are counted) */
#define SG_MATCH_URL_HOSTS_MAX 1000	/* distinct URL hosts looked at a message */

/* A message's outcome so far. Rules are pointed to: valid while the rules
 * are. */
struct sg_rule_hit {
	const struct sg_rule *decided;	/* the first reject/tempfail rule matched, or NULL */
	const struct sg_rule *flagged[SG_MATCH_FLAGGED_MAX];	/* flag rules matched, first ones */
	unsigned int flagged_count;	/* all flag rules matched (may pass the array) */
	unsigned long url_hosts;	/* distinct URL hosts looked at */
	unsigned long url_hosts_over;	/* URL hosts found past SG_MATCH_URL_HOSTS_MAX (each
					 * time one is found): not looked at */
	unsigned long url_hosts_unusable;	/* too long or malformed: not looked at */
	int failed;			/* the matcher failed (memory): judge by the failure action */
};

/* The outcome of a sg_match_* call. */
enum {
	SG_MATCH_FAILED = -1,		/* out of memory: see sg_rule_hit.failed */
	SG_MATCH_GO_ON = 0,
	SG_MATCH_DECIDED = 1,		/* a reject/tempfail rule matched: feed no more */
};

struct sg_match_stream;

/* A message begins; NULL when out of memory. rules must outlive it. */
struct sg_match_stream *sg_match_begin(const struct sg_rules *rules);
/* One header, unfolded: "header" rules see "name: value", "header:Name"
 * rules (name compared without case) the value. */
int sg_match_header(struct sg_match_stream *ms, const char *name, size_t nlen,
		    const char *value, size_t vlen);
/* A chunk of a text part's decoded text (any size, any split). */
int sg_match_body(struct sg_match_stream *ms, const char *data, size_t n);
/* That text part has ended. */
int sg_match_body_end(struct sg_match_stream *ms);
/* A host to judge by the url-host rules (lowercased, trailing dots
 * dropped; each distinct host once a message, at most
 * SG_MATCH_URL_HOSTS_MAX of them). The text's URLs are looked at without
 * it. */
int sg_match_url_host(struct sg_match_stream *ms, const char *host, size_t n);
/* A part's file name (name NULL: it has none) and content type, the type
 * compared without case. */
int sg_match_attachment(struct sg_match_stream *ms, const char *name, size_t nlen,
			const char *type, size_t tlen);
const struct sg_rule_hit *sg_match_result(const struct sg_match_stream *ms);
/* The message is over: its state is freed. NULL is fine. */
void sg_match_end(struct sg_match_stream *ms);

/* The calling thread's scratch is freed (a worker that ends calls it, or
 * lets the thread's exit do it). */
void sg_match_thread_release(void);

/* What the compiled rules cost. */
struct sg_matcher_stats {
	size_t database_bytes[SG_TARGET_COUNT];	/* 0: no rule of that target */
	size_t database_total;
	size_t stream_bytes;		/* Hyperscan's body stream state, a message */
	size_t message_bytes;		/* a message's whole state at its start */
	size_t message_bytes_max;	/* and at most (its URL host set full) */
	size_t scratch_bytes;		/* the calling thread's scratch, grown for these rules */
	size_t hostlist_bytes;		/* the url-host lists */
	size_t hostlist_hosts;
	double compile_ms;
};
/* 0, or -1 when this thread's scratch cannot be grown (memory). */
int sg_matcher_stats(const struct sg_rules *rules, struct sg_matcher_stats *st);

/* The rules' compiled form, built and freed by the rules (rules.c). */
struct sg_matcher;
struct sg_matcher *sg_matcher_build(const struct sg_rules *rules, char *err, size_t errlen);
void sg_matcher_free(struct sg_matcher *m);
const struct sg_matcher *sg_rules_matcher(const struct sg_rules *rules);

#endif
