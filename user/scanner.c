/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* scanner.c - the built-in pattern scanner (see scanner.h). */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "scanner.h"

#define SG_MAX_PATTERNS 1024

struct rule {
	int body;		/* 0: header lines, 1: body lines */
	regex_t re;
	char text[128];		/* for the reason */
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
		snprintf(r->text, sizeof(r->text), "%s %s", r->body ? "body" : "header", re);
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

void sg_scan_begin(struct sg_scan *scan, const struct sg_patterns *patterns)
{
	memset(scan, 0, sizeof(*scan));
	scan->patterns = patterns;
}

static void judge_line(struct sg_scan *scan)
{
	const struct sg_patterns *p = scan->patterns;

	scan->line[scan->line_len] = '\0';
	if (!scan->in_body && scan->line_len == 0) {
		scan->in_body = 1;	/* the blank line between headers and body */
		return;
	}
	if (!scan->in_body && !scan->message_id[0] && strncasecmp(scan->line, "Message-ID:", 11) == 0) {
		const char *v = scan->line + 11;

		while (*v == ' ' || *v == '\t')
			v++;
		snprintf(scan->message_id, sizeof(scan->message_id), "%s", v);
	}
	for (int i = 0; p && !scan->matched && i < p->n; i++)
		if (p->rules[i].body == scan->in_body &&
		    regexec(&p->rules[i].re, scan->line, 0, NULL, 0) == 0)
			scan->matched = i + 1;
}

/* Body lines are only looked at while a body rule could still match. */
static int body_needs_lines(const struct sg_scan *scan)
{
	return scan->patterns && scan->patterns->body_rules && !scan->matched;
}

static void line_append(struct sg_scan *scan, const char *data, size_t n)
{
	size_t room = SG_SCAN_LINE_MAX - scan->line_len;

	if (n > room) {
		n = room;
		scan->line_overflow = 1;
	}
	memcpy(scan->line + scan->line_len, data, n);
	scan->line_len += n;
}

void sg_scan_feed(struct sg_scan *scan, const char *data, size_t n)
{
	const char *p = data, *end = data + n;

	scan->bytes += n;
	while (p < end) {
		const char *lf;

		if (scan->in_body && !body_needs_lines(scan))
			return;
		lf = memchr(p, '\n', (size_t)(end - p));
		line_append(scan, p, (size_t)((lf ? lf : end) - p));
		if (!lf)
			return;
		if (scan->line_len && scan->line[scan->line_len - 1] == '\r' && !scan->line_overflow)
			scan->line_len--;
		judge_line(scan);
		scan->line_len = 0;
		scan->line_overflow = 0;
		p = lf + 1;
	}
}

enum sg_verdict_kind sg_scan_verdict(struct sg_scan *scan, char *reason, size_t len)
{
	if (scan->line_len)
		judge_line(scan);	/* a last line without its break */
	if (scan->matched) {
		snprintf(reason, len, "matches %s", scan->patterns->rules[scan->matched - 1].text);
		return SG_REJECT;
	}
	snprintf(reason, len, "clean");
	return SG_ACCEPT;
}
