/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * rules_check.c - a rules file's names and pattern syntax (see
 * rules_check.h). PCRE2 checks the syntax only (the matcher is Hyperscan,
 * matcher.h says why): it names the offset of an error, which becomes the
 * column in the file, and it refuses what no matcher of ours runs (UTF
 * mode, \C) and back-references by name.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rules_check.h"

void sg_quote_bytes(const char *s, size_t n, size_t max, char *buf, size_t len)
{
	size_t o = 0;

	if (!len)
		return;
	for (size_t i = 0; i < n && o + 8 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i == max) {
			o += (size_t)snprintf(buf + o, len - o, "...");
			break;
		}
		if (c >= 0x20 && c < 0x7f)
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
	}
	buf[o < len ? o : len - 1] = '\0';
}

void sg_rule_pattern_quote(const struct sg_rule *r, char *buf, size_t len)
{
	char q[300];

	if (!r->pattern) {
		snprintf(buf, len, "(a host list)");
		return;
	}
	sg_quote_bytes(r->pattern, strlen(r->pattern), 60, q, sizeof(q));
	snprintf(buf, len, "/%s/%s%s%s", q, r->flags & SG_RULE_CASELESS ? "i" : "",
		 r->flags & SG_RULE_MULTILINE ? "m" : "", r->flags & SG_RULE_DOTALL ? "s" : "");
}

static int by_name_then_line(const void *a, const void *b, void *rules)
{
	const struct sg_rule *ra = sg_rules_rule(rules, *(const unsigned int *)a);
	const struct sg_rule *rb = sg_rules_rule(rules, *(const unsigned int *)b);
	int c = strcmp(ra->name, rb->name);

	return c ? c : (ra->line > rb->line) - (ra->line < rb->line);
}

int sg_rules_check_names(const struct sg_rules *rules, char *err, size_t errlen)
{
	unsigned int n = sg_rules_count(rules), *order, head = 0, repeat = 0, first = 0;

	if (n < 2)
		return 0;
	order = malloc(n * sizeof(*order));
	if (!order) {
		snprintf(err, errlen, "%s: out of memory", sg_rules_path(rules));
		return -1;
	}
	for (unsigned int i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), by_name_then_line, (void *)rules);
	/* a name's rules in a row, by line: the first defines it, the others
	 * repeat it; the repeat earliest in the file is the one named */
	for (unsigned int i = 1; i < n; i++) {
		const struct sg_rule *h = sg_rules_rule(rules, order[head]);
		const struct sg_rule *r = sg_rules_rule(rules, order[i]);

		if (strcmp(h->name, r->name) != 0) {
			head = i;
			continue;
		}
		if (!repeat || r->line < sg_rules_rule(rules, repeat - 1)->line) {
			repeat = order[i] + 1;
			first = h->line;
		}
	}
	free(order);
	if (repeat)
		sg_rules_error(rules, sg_rules_rule(rules, repeat - 1), 0, err, errlen,
			       "the name is taken by the rule on line %u; rule names must be "
			       "unique", first);
	return repeat ? -1 : 0;
}

static int check_pattern(const struct sg_rules *rules, const struct sg_rule *r, char *err,
			 size_t errlen)
{
	uint32_t options = PCRE2_NEVER_UTF | PCRE2_NEVER_UCP | PCRE2_NEVER_BACKSLASH_C;
	char q[400], why[256];
	PCRE2_SIZE offset;
	uint32_t backrefs = 0;
	pcre2_code *code;
	int code_err;

	if (r->flags & SG_RULE_CASELESS)
		options |= PCRE2_CASELESS;
	if (r->flags & SG_RULE_MULTILINE)
		options |= PCRE2_MULTILINE;
	if (r->flags & SG_RULE_DOTALL)
		options |= PCRE2_DOTALL;
	code = pcre2_compile((PCRE2_SPTR)r->pattern, strlen(r->pattern), options, &code_err,
			     &offset, NULL);
	sg_rule_pattern_quote(r, q, sizeof(q));
	if (!code) {
		pcre2_get_error_message(code_err, (PCRE2_UCHAR *)why, sizeof(why));
		sg_rules_error(rules, r, r->column + 1 + (unsigned int)offset, err, errlen,
			       "pattern %s does not compile: %s at offset %zu", q, why,
			       (size_t)offset);
		return -1;
	}
	pcre2_pattern_info(code, PCRE2_INFO_BACKREFMAX, &backrefs);
	pcre2_code_free(code);
	if (backrefs) {
		sg_rules_error(rules, r, r->column, err, errlen, "pattern %s refers back to a "
			       "group (\\%u); the matcher cannot, so write what it stands for "
			       "(an alternation or a class)", q, backrefs);
		return -1;
	}
	return 0;
}

int sg_rules_check_patterns(const struct sg_rules *rules, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < sg_rules_count(rules); i++) {
		const struct sg_rule *r = sg_rules_rule(rules, i);

		if (r->pattern && check_pattern(rules, r, err, errlen) < 0)
			return -1;
	}
	return 0;
}
