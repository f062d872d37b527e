/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* patterns.c - the built-in pattern engine (see scanner.h): header
 * and body rules, POSIX extended regular expressions, case-insensitive. */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "scanner.h"

#define SG_MAX_PATTERNS 1024

struct rule {
	int body;		/* 0: header lines, 1: body lines */
	regex_t re;
	int line;		/* in the file: the reason names it, never the pattern */
};

struct sg_patterns {
	struct rule rules[SG_MAX_PATTERNS];
	int n;
	int body_rules;		/* none: body lines need not be assembled */
};

struct sg_patterns *sg_patterns_load(const char *path, char *err, size_t errlen)
{
	struct sg_patterns *p = calloc(1, sizeof(*p));
	char line[4096];
	int lineno = 0;
	FILE *f;

	if (!p) {
		snprintf(err, errlen, "out of memory loading %s", path);
		return NULL;
	}
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open scan_patterns file %s: %s", path, strerror(errno));
		free(p);
		return NULL;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = line, *re;
		struct rule *r;
		int rc;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		while (isspace((unsigned char)*s))
			s++;
		if (!*s || *s == '#')
			continue;
		if (p->n == SG_MAX_PATTERNS) {
			snprintf(err, errlen, "%s, line %d: more than %d rules", path, lineno,
				 SG_MAX_PATTERNS);
			goto fail;
		}
		r = &p->rules[p->n];
		if (!strncmp(s, "header", 6) && isspace((unsigned char)s[6])) {
			r->body = 0;
			re = s + 6;
		} else if (!strncmp(s, "body", 4) && isspace((unsigned char)s[4])) {
			r->body = 1;
			re = s + 4;
		} else {
			snprintf(err, errlen, "%s, line %d: a rule is 'header REGEX' or 'body REGEX', "
				 "not '%.40s'", path, lineno, s);
			goto fail;
		}
		while (isspace((unsigned char)*re))
			re++;
		if (!*re) {
			snprintf(err, errlen, "%s, line %d: the rule has no pattern", path, lineno);
			goto fail;
		}
		rc = regcomp(&r->re, re, REG_EXTENDED | REG_ICASE | REG_NOSUB);
		if (rc) {
			char msg[128];

			regerror(rc, &r->re, msg, sizeof(msg));
			snprintf(err, errlen, "%s, line %d: pattern '%.60s': %s", path, lineno, re, msg);
			goto fail;
		}
		r->line = lineno;
		p->body_rules += r->body;
		p->n++;
	}
	fclose(f);
	return p;
fail:
	fclose(f);
	sg_patterns_free(p);
	return NULL;
}

void sg_patterns_free(struct sg_patterns *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		regfree(&p->rules[i].re);
	free(p);
}

int sg_patterns_count(const struct sg_patterns *p)
{
	return p ? p->n : 0;
}

/* A message's state: the first rule that matched. */
struct pattern_state {
	int matched;		/* rule number (1-based), or 0 */
};

static int pattern_begin(const void *config, struct sg_scan *scan, const struct sg_envelope *env,
			 void **session, void **state)
{
	(void)scan;
	(void)session;
	(void)config;
	(void)env;
	*state = calloc(1, sizeof(struct pattern_state));
	return *state ? SG_ENGINE_DONE : SG_ENGINE_ERROR;
}

static int pattern_line(void *state, const void *config, const char *line, size_t len,
			int in_body)
{
	const struct sg_patterns *p = config;
	struct pattern_state *st = state;

	(void)len;
	/* no body rule: the body's lines need not even be assembled */
	if (in_body && !p->body_rules)
		return 1;
	for (int i = 0; i < p->n; i++)
		if (p->rules[i].body == in_body && regexec(&p->rules[i].re, line, 0, NULL, 0) == 0) {
			st->matched = i + 1;
			return 1;
		}
	return 0;
}

/* The reply names the rule by its line, not its pattern: a sender trying
 * variations must not be told what to avoid. */
static int pattern_verdict(void *state, const void *config, struct sg_scan *scan,
			   struct sg_verdict *v)
{
	const struct sg_patterns *p = config;
	const struct pattern_state *st = state;
	const struct rule *r;

	(void)scan;
	if (!st->matched) {
		v->kind = SG_ACCEPT;
		return SG_ENGINE_DONE;
	}
	r = &p->rules[st->matched - 1];
	v->kind = SG_REJECT;
	snprintf(v->reason, sizeof(v->reason), "matches the %s rule on line %d",
		 r->body ? "body" : "header", r->line);
	return SG_ENGINE_DONE;
}

static void pattern_release(void *state, const void *config)
{
	(void)config;
	free(state);
}

const struct sg_engine sg_pattern_engine = {
	.name = "patterns",
	.begin = pattern_begin,
	.line = pattern_line,
	.verdict = pattern_verdict,
	.release = pattern_release,
};
