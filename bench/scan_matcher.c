/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * scan_matcher.c - the content rules' body matcher, measured: the engine's
 * (Hyperscan, streaming mode, through matcher.h exactly as a message is
 * matched) against the candidate it was chosen over (PCRE2, a JIT-compiled
 * regex a rule, streamed with partial matching; its code lives here only,
 * marked "CANDIDATE B"). For 10, 100 and 1,000 rules on a 1 KiB and a
 * 100 KiB body it reports throughput (MB/s), time a message (ns), the state
 * a message holds, the compile time and the compiled size, and checks that
 * both find the same rules in the same bodies. Also: the URL host
 * extractor's own throughput (urls.h).
 *
 *   build/bench/scan_matcher [--duration D]	(D: time a measurement, 300ms;
 *						the fastest of 3 rounds is reported)
 *
 * The rules are what operators write: words (\bword\b), phrases with \s+,
 * URL-ish patterns, case-insensitive alternations; every one a "flag" rule
 * so nothing stops a message early (the whole body is always matched, the
 * worst case). The body is English-like text with URLs, in lines of about
 * 70 bytes, given in 4 KiB chunks (a text part decoded as it streams).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "matcher.h"
#include "parse.h"
#include "urls.h"

#define CHUNK 4096
#define RETAIN_MAX 65536	/* PCRE2: a partial match kept at most this long */
#define ROUNDS 3		/* a measurement's rounds: the fastest is reported (a busy machine) */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A made-up word of 6 to 9 letters, for rules that never match by chance. */
static void made_up_word(char *w)
{
	int n = 6 + (int)(next_random() % 4);

	for (int i = 0; i < n; i++)
		w[i] = (char)('a' + next_random() % 26);
	w[n] = '\0';
}

/* Rule k: its pattern and flags, as a rules-file line would hold them. */
static void make_rule(int k, char *pattern, size_t len, int *caseless)
{
	char w[16], w2[16];

	made_up_word(w);
	made_up_word(w2);
	*caseless = 0;
	switch (k % 10) {
	case 0: case 1: case 2: case 3:	/* a word */
		snprintf(pattern, len, "\\b%s\\b", w);
		break;
	case 4: case 5:			/* a phrase */
		snprintf(pattern, len, "claim\\s+your\\s+%s\\s+%s", w, w2);
		*caseless = 1;
		break;
	case 6: case 7:			/* URL-ish */
		snprintf(pattern, len, "https?:\\/\\/[a-z0-9.-]*%s\\.(ru|cn|tk|top)\\/", w);
		*caseless = 1;
		break;
	default:			/* an alternation */
		snprintf(pattern, len, "(urgent|immediate|final)\\s+(%s|%s)\\s+(notice|action)",
			 w, w2);
		*caseless = 1;
	}
}

static const char *const vocabulary[] = {
	"the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for",
	"on", "are", "as", "with", "his", "they", "at", "be", "this", "have", "from",
	"or", "one", "had", "by", "word", "but", "not", "what", "all", "were", "we",
	"when", "your", "can", "said", "there", "use", "an", "each", "which", "she",
	"do", "how", "their", "if", "will", "up", "other", "about", "out", "many",
	"then", "them", "these", "so", "some", "her", "would", "make", "like", "him",
	"into", "time", "has", "look", "two", "more", "write", "go", "see", "number",
	"meeting", "invoice", "attached", "please", "regards", "thanks", "Monday",
	"urgent", "final", "notice", "claim", "your", "prize", "account", "review",
};

/* Text that rule k matches (rules 0..9 are the same whatever their
 * number: the words come from the same sequence). */
static void phrase_for_rule(int k, char *buf, size_t len)
{
	char w[16], w2[16];

	rng = 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i <= k; i++) {
		made_up_word(w);
		made_up_word(w2);
	}
	switch (k % 10) {
	case 0: case 1: case 2: case 3:
		snprintf(buf, len, "%s", w);
		break;
	case 4: case 5:
		snprintf(buf, len, "Claim your\n%s  %s", w, w2);
		break;
	case 6: case 7:
		snprintf(buf, len, "http://mail.%s.ru/x", w);
		break;
	default:
		snprintf(buf, len, "FINAL %s action", w2);
	}
}

/* English-like text with a URL now and then, lines of about 70 bytes,
 * and the text of rules 0..9 spread over it. */
static char *make_body(size_t size)
{
	char *b = malloc(size + 128), phrase[80];
	size_t n = 0, line = 0;
	int next_phrase = 0;

	for (uint64_t seed = 0x1234567; n < size; ) {
		const char *w;
		char url[80];

		if (next_phrase < 10 && n >= size * (size_t)(next_phrase + 1) / 11) {
			phrase_for_rule(next_phrase++, phrase, sizeof(phrase));
			w = phrase;
			rng = seed;
		} else {
			w = vocabulary[next_random() % (sizeof(vocabulary) / sizeof(*vocabulary))];
			seed = rng;
		}
		if (w != phrase && next_random() % 40 == 0) {
			snprintf(url, sizeof(url), "https://www.example%u.com/path?id=%u",
				 (unsigned)(next_random() % 100), (unsigned)(next_random() % 1000));
			w = url;
		}
		seed = rng;
		n += (size_t)sprintf(b + n, "%s", w);
		line += strlen(w);
		if (line > 70) {
			b[n++] = '\n';
			line = 0;
		} else {
			b[n++] = ' ';
		}
	}
	return b;	/* size bytes count; the rest is slack */
}

static int write_rules(const char *path, int nrules)
{
	FILE *f = fopen(path, "w");
	char pattern[256];
	int caseless;

	if (!f)
		return -1;
	rng = 0x9e3779b97f4a7c15ULL;
	for (int k = 0; k < nrules; k++) {
		make_rule(k, pattern, sizeof(pattern), &caseless);
		fprintf(f, "rule-%d body /%s/%s flag\n", k, pattern, caseless ? "i" : "");
	}
	return fclose(f);
}

struct result {
	double mb_s, ns_msg, compile_ms;
	size_t state_bytes, db_bytes;
	unsigned int hits;
};

/* --- Candidate A, the engine: Hyperscan through matcher.h ------------- */

static unsigned int hyperscan_message(const struct sg_rules *rules, const char *body, size_t n)
{
	struct sg_match_stream *ms = sg_match_begin(rules);
	unsigned int hits;

	for (size_t off = 0; off < n; off += CHUNK)
		sg_match_body(ms, body + off, n - off < CHUNK ? n - off : CHUNK);
	sg_match_body_end(ms);
	hits = sg_match_result(ms)->flagged_count;
	sg_match_end(ms);
	return hits;
}

static int run_hyperscan(int nrules, const char *body, size_t n, double seconds,
			 struct result *res)
{
	char path[] = "/tmp/sg-bench-rules-XXXXXX", err[512];
	struct sg_matcher_stats st;
	struct sg_rules *rules;
	double t0, t, elapsed;
	long msgs = 0;
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	close(fd);
	write_rules(path, nrules);
	t0 = now_s();
	rules = sg_rules_load(path, err, sizeof(err));
	t = now_s();
	unlink(path);
	if (!rules) {
		fprintf(stderr, "scan_matcher: %s\n", err);
		return -1;
	}
	res->compile_ms = (t - t0) * 1e3;
	sg_matcher_stats(rules, &st);
	res->db_bytes = st.database_total;
	res->state_bytes = st.message_bytes;
	res->hits = hyperscan_message(rules, body, n);
	res->ns_msg = 1e18;
	for (int round = 0; round < ROUNDS; round++) {
		msgs = 0;
		t0 = now_s();
		do {
			hyperscan_message(rules, body, n);
			msgs++;
			elapsed = now_s() - t0;
		} while (elapsed < seconds / ROUNDS || msgs < 3);
		if (elapsed * 1e9 / (double)msgs < res->ns_msg)
			res->ns_msg = elapsed * 1e9 / (double)msgs;
	}
	res->mb_s = (double)n / res->ns_msg * 1e3;
	sg_rules_free(rules);
	return 0;
}

/* --- CANDIDATE B (benchmark only, not in the engine): PCRE2 ------------
 * A JIT-compiled regex a rule, over a window of the part's text: each chunk
 * is appended to the window (one copy a chunk, whatever the rules), and
 * every rule that has not matched yet is matched from where it stopped,
 * with PCRE2_PARTIAL_HARD: a match that reaches the window's end is
 * reported partial, and the rule resumes at the partial match's start
 * next time (so a match across chunks is found). The window keeps what the
 * rules may still need (from the earliest resume point, less the patterns'
 * look-behind, for \b); at the part's end each rule with a partial match is
 * matched once more without PARTIAL_HARD ($, \z). Its limits, which the
 * engine does not have: the window is bounded (RETAIN_MAX: "a.*b" with the
 * s flag would keep everything from the first "a"; past the bound the
 * partial match is dropped, and a match missed), the CPU is rules x bytes
 * (every rule reads every byte), and a backtracking regex can be made slow
 * by the text (the match limit bounds it, and then a match is missed). */

struct pcre2_rules {
	pcre2_code **code;
	uint32_t *lookbehind;
	int n;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	size_t code_bytes;
};

struct pcre2_message {
	char *window;		/* the part's text from base on */
	size_t base, end;	/* stream offsets of the window's first byte and its end */
	size_t *resume;		/* a rule's next start (stream offset); SIZE_MAX: matched */
	size_t dropped;		/* partial matches dropped at the window's bound */
};

static int pcre2_compile_rules(struct pcre2_rules *pr, int nrules)
{
	char pattern[256];
	int caseless;

	pr->code = calloc((size_t)nrules, sizeof(*pr->code));
	pr->lookbehind = calloc((size_t)nrules, sizeof(*pr->lookbehind));
	pr->n = nrules;
	pr->md = pcre2_match_data_create(1, NULL);
	pr->mctx = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(pr->mctx, 1000000);
	rng = 0x9e3779b97f4a7c15ULL;
	for (int k = 0; k < nrules; k++) {
		size_t size = 0, jit = 0;
		PCRE2_SIZE off;
		int e;

		make_rule(k, pattern, sizeof(pattern), &caseless);
		pr->code[k] = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
					    (caseless ? PCRE2_CASELESS : 0) | PCRE2_NEVER_UTF, &e,
					    &off, NULL);
		if (!pr->code[k] ||
		    pcre2_jit_compile(pr->code[k], PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD))
			return -1;
		pcre2_pattern_info(pr->code[k], PCRE2_INFO_MAXLOOKBEHIND, &pr->lookbehind[k]);
		pcre2_pattern_info(pr->code[k], PCRE2_INFO_SIZE, &size);
		pcre2_pattern_info(pr->code[k], PCRE2_INFO_JITSIZE, &jit);
		pr->code_bytes += size + jit;
	}
	return 0;
}

static void pcre2_free_rules(struct pcre2_rules *pr)
{
	for (int k = 0; k < pr->n; k++)
		pcre2_code_free(pr->code[k]);
	free(pr->code);
	free(pr->lookbehind);
	pcre2_match_data_free(pr->md);
	pcre2_match_context_free(pr->mctx);
}

/* Appends a chunk, first dropping what no rule needs any more. */
static void pcre2_window_append(const struct pcre2_rules *pr, struct pcre2_message *pm,
				const char *chunk, size_t n)
{
	size_t keep_from = pm->end;

	for (int k = 0; k < pr->n; k++)
		if (pm->resume[k] != SIZE_MAX) {
			size_t from = pm->resume[k] > pr->lookbehind[k] ?
				      pm->resume[k] - pr->lookbehind[k] : 0;

			if (from < keep_from)
				keep_from = from;
		}
	if (pm->end - keep_from > RETAIN_MAX) {
		keep_from = pm->end - RETAIN_MAX;
		for (int k = 0; k < pr->n; k++)
			if (pm->resume[k] != SIZE_MAX && pm->resume[k] < keep_from) {
				pm->resume[k] = keep_from;	/* its partial match is lost */
				pm->dropped++;
			}
	}
	if (keep_from > pm->base) {
		memmove(pm->window, pm->window + (keep_from - pm->base), pm->end - keep_from);
		pm->base = keep_from;
	}
	memcpy(pm->window + (pm->end - pm->base), chunk, n);
	pm->end += n;
}

static void pcre2_match_window(const struct pcre2_rules *pr, struct pcre2_message *pm, int final)
{
	uint32_t options = (final ? 0 : PCRE2_PARTIAL_HARD) | (pm->base ? PCRE2_NOTBOL : 0);
	size_t len = pm->end - pm->base;

	for (int k = 0; k < pr->n; k++) {
		PCRE2_SIZE *ov;
		int rc;

		if (pm->resume[k] == SIZE_MAX || (final && pm->resume[k] == pm->end))
			continue;
		rc = pcre2_jit_match(pr->code[k], (PCRE2_SPTR)pm->window, len,
				     pm->resume[k] - pm->base, options, pr->md, pr->mctx);
		ov = pcre2_get_ovector_pointer(pr->md);
		if (rc >= 0)
			pm->resume[k] = SIZE_MAX;
		else if (rc == PCRE2_ERROR_PARTIAL)
			pm->resume[k] = pm->base + ov[0];
		else
			pm->resume[k] = pm->end;
	}
}

static unsigned int pcre2_message(const struct pcre2_rules *pr, const char *body, size_t n,
				  size_t *window_max)
{
	struct pcre2_message pm = { 0 };
	unsigned int hits = 0;

	pm.window = malloc(RETAIN_MAX + CHUNK);
	pm.resume = calloc((size_t)pr->n, sizeof(*pm.resume));
	for (size_t off = 0; off < n; off += CHUNK) {
		pcre2_window_append(pr, &pm, body + off, n - off < CHUNK ? n - off : CHUNK);
		pcre2_match_window(pr, &pm, 0);
		if (pm.end - pm.base > *window_max)
			*window_max = pm.end - pm.base;
	}
	pcre2_match_window(pr, &pm, 1);	/* the part's end */
	for (int k = 0; k < pr->n; k++)
		hits += pm.resume[k] == SIZE_MAX;
	free(pm.window);
	free(pm.resume);
	return hits;
}

static int run_pcre2(int nrules, const char *body, size_t n, double seconds, struct result *res)
{
	struct pcre2_rules pr = { 0 };
	size_t window_max = 0;
	double t0, elapsed;
	long msgs = 0;

	t0 = now_s();
	if (pcre2_compile_rules(&pr, nrules) < 0) {
		fprintf(stderr, "scan_matcher: a PCRE2 rule does not compile\n");
		return -1;
	}
	res->compile_ms = (now_s() - t0) * 1e3;
	res->db_bytes = pr.code_bytes;
	res->hits = pcre2_message(&pr, body, n, &window_max);
	res->ns_msg = 1e18;
	for (int round = 0; round < ROUNDS; round++) {
		msgs = 0;
		t0 = now_s();
		do {
			pcre2_message(&pr, body, n, &window_max);
			msgs++;
			elapsed = now_s() - t0;
		} while (elapsed < seconds / ROUNDS || msgs < 3);
		if (elapsed * 1e9 / (double)msgs < res->ns_msg)
			res->ns_msg = elapsed * 1e9 / (double)msgs;
	}
	/* a resume point a rule, and the window (allocated at its bound; the
	 * most it held is window_max) */
	res->state_bytes = (size_t)nrules * sizeof(size_t) + RETAIN_MAX + CHUNK;
	res->mb_s = (double)n / res->ns_msg * 1e3;
	pcre2_free_rules(&pr);
	return 0;
}

/* --- the URL extractor alone ------------------------------------------- */

static void count_host(void *ctx, const char *host, size_t len)
{
	(void)host;
	(void)len;
	(*(unsigned long *)ctx)++;
}

static void run_urls(const char *body, size_t n, double seconds)
{
	struct sg_url_extractor ex;
	unsigned long hosts = 0;
	double t0 = now_s(), elapsed;
	long msgs = 0;

	do {
		sg_url_extract_init(&ex, count_host, &hosts);
		for (size_t off = 0; off < n; off += CHUNK)
			sg_url_extract(&ex, body + off, n - off < CHUNK ? n - off : CHUNK);
		sg_url_extract_end(&ex);
		msgs++;
		elapsed = now_s() - t0;
	} while (elapsed < seconds || msgs < 3);
	printf("BENCH scan_matcher url-extractor body=%zu MB/s=%.0f ns/msg=%.0f hosts/msg=%lu "
	       "state=%zu\n", n, (double)n * (double)msgs / elapsed / 1e6,
	       elapsed * 1e9 / (double)msgs, hosts / (unsigned long)msgs, sizeof(ex));
}

int main(int argc, char **argv)
{
	static const int rule_counts[] = { 10, 100, 1000 };
	static const size_t body_sizes[] = { 1024, 100 * 1024 };
	double seconds = 0.3;
	char *bodies[2];

	for (int i = 1; i < argc; i++) {
		char err[160] = "";
		uint64_t ns;

		if (strcmp(argv[i], "--duration") || i + 1 >= argc) {
			fprintf(stderr, "scan_matcher: %s '%s'\nusage: scan_matcher "
				"[--duration D (a measurement's time: 300ms, 2s; default 300ms)]\n",
				strcmp(argv[i], "--duration") ? "unknown argument" : "no value after",
				argv[i]);
			return 2;
		}
		if (sg_parse_duration(argv[++i], &ns, err, sizeof(err)) || ns < 1000000ULL) {
			fprintf(stderr, "scan_matcher: --duration: %s\n",
				err[0] ? err : "at least 1ms");
			return 2;
		}
		seconds = (double)ns / 1e9;
	}
	for (int b = 0; b < 2; b++)
		bodies[b] = make_body(body_sizes[b]);
	printf("%-9s %6s %7s %9s %12s %12s %11s %12s %5s\n", "engine", "rules", "body",
	       "MB/s", "ns/message", "state B/msg", "compile ms", "db bytes", "hits");
	for (int r = 0; r < 3; r++)
		for (int b = 0; b < 2; b++) {
			struct result hs = { 0 }, pc = { 0 };

			if (run_hyperscan(rule_counts[r], bodies[b], body_sizes[b], seconds, &hs) < 0 ||
			    run_pcre2(rule_counts[r], bodies[b], body_sizes[b], seconds, &pc) < 0)
				return 1;
			printf("%-9s %6d %6zuK %9.1f %12.0f %12zu %11.1f %12zu %5u\n", "hyperscan",
			       rule_counts[r], body_sizes[b] / 1024, hs.mb_s, hs.ns_msg,
			       hs.state_bytes, hs.compile_ms, hs.db_bytes, hs.hits);
			printf("%-9s %6d %6zuK %9.1f %12.0f %12zu %11.1f %12zu %5u%s\n", "pcre2",
			       rule_counts[r], body_sizes[b] / 1024, pc.mb_s, pc.ns_msg,
			       pc.state_bytes, pc.compile_ms, pc.db_bytes, pc.hits,
			       pc.hits == hs.hits ? "" : "  DIFFERENT RULES MATCHED");
		}
	for (int b = 0; b < 2; b++)
		run_urls(bodies[b], body_sizes[b], seconds);
	for (int b = 0; b < 2; b++)
		free(bodies[b]);
	sg_match_thread_release();
	return 0;
}
