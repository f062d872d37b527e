/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * rules.c - the content rules file read, line by line, into rules (see
 * rules.h and docs/content-rules.md): each rule's syntax, name, target,
 * pattern, flags and action checked where it is written; then the names'
 * uniqueness, the patterns' syntax (rules_check.c), the host lists, and the
 * compiled matcher (matcher.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hostlist.h"
#include "matcher.h"
#include "rules.h"
#include "rules_check.h"
#include "textfile.h"

struct sg_rules {
	char *path;
	struct sg_rule *rule;
	unsigned int n, cap;
	unsigned int per_target[SG_TARGET_COUNT];
	unsigned int hostlists;
	struct sg_matcher *matcher;
};

static const char *const target_names[SG_TARGET_COUNT] = {
	[SG_TARGET_HEADER] = "header",
	[SG_TARGET_HEADER_NAMED] = "header:",
	[SG_TARGET_BODY] = "body",
	[SG_TARGET_URL_HOST] = "url-host",
	[SG_TARGET_ATTACHMENT_NAME] = "attachment-name",
	[SG_TARGET_ATTACHMENT_TYPE] = "attachment-type",
};

static const char *const action_names[] = {
	[SG_RULE_REJECT] = "reject",
	[SG_RULE_TEMPFAIL] = "tempfail",
	[SG_RULE_FLAG] = "flag",
};

const char *sg_rule_target_name(enum sg_rule_target t)
{
	return t < SG_TARGET_COUNT ? target_names[t] : "?";
}

const char *sg_rule_action_name(enum sg_rule_action a)
{
	return a <= SG_RULE_FLAG ? action_names[a] : "?";
}

/* A line being parsed: where it is, for the errors. */
struct cursor {
	const struct sg_rules *rules;
	unsigned long lineno;
	const char *s;
	size_t len, i;
	const char *rule;	/* its name, once read */
};

static void __attribute__((format(printf, 5, 6)))
cursor_error(const struct cursor *c, size_t at, char *err, size_t errlen, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	n = (size_t)snprintf(err, errlen, "%s:%lu:%zu: ", c->rules->path, c->lineno, at + 1);
	if (c->rule && n < errlen)
		n += (size_t)snprintf(err + n, errlen - n, "rule '%s': ", c->rule);
	if (n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

void sg_rules_error(const struct sg_rules *rules, const struct sg_rule *rule,
		    unsigned int column, char *err, size_t errlen, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	if (column)
		n = (size_t)snprintf(err, errlen, "%s:%u:%u: rule '%s': ", rules->path,
				     rule->line, column, rule->name);
	else
		n = (size_t)snprintf(err, errlen, "%s:%u: rule '%s': ", rules->path,
				     rule->line, rule->name);
	if (n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

static void skip_space(struct cursor *c)
{
	while (c->i < c->len && is_space(c->s[c->i]))
		c->i++;
}

/* The end of the token at c->i (white space or the line's end). */
static size_t token_end(const struct cursor *c)
{
	size_t j = c->i;

	while (j < c->len && !is_space(c->s[j]))
		j++;
	return j;
}

/* A token quoted in an error, cut short. */
static void quote_token(const char *s, size_t n, char *buf, size_t len)
{
	sg_quote_bytes(s, n, 40, buf, len);
}

static int is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '.' || ch == '-';
}

static int parse_name(struct cursor *c, struct sg_rule *r, char *err, size_t errlen)
{
	size_t end = token_end(c), n = end - c->i;
	char q[200];

	quote_token(c->s + c->i, n, q, sizeof(q));
	if (n > SG_RULE_NAME_MAX) {
		cursor_error(c, c->i, err, errlen, "the rule name '%s' is %zu characters; "
			     "at most %d", q, n, SG_RULE_NAME_MAX);
		return -1;
	}
	for (size_t j = c->i; j < end; j++)
		if (!is_name_char(c->s[j])) {
			cursor_error(c, j, err, errlen, "the rule name '%s' holds '%c'; a name "
				     "is letters, digits, '_', '.' and '-'", q,
				     c->s[j] > 0x20 && c->s[j] < 0x7f ? c->s[j] : '?');
			return -1;
		}
	memcpy(r->name, c->s + c->i, n);
	r->name[n] = '\0';
	c->rule = r->name;
	c->i = end;
	return 0;
}

/* An RFC 5322 field name: printable ASCII but ':'. */
static int is_field_name_char(char ch)
{
	return ch > 0x20 && ch < 0x7f && ch != ':';
}

static int parse_target(struct cursor *c, struct sg_rule *r, char *err, size_t errlen)
{
	size_t end = token_end(c), n = end - c->i;
	const char *t = c->s + c->i;
	char q[200];

	for (int k = 0; k < SG_TARGET_COUNT; k++)
		if (k != SG_TARGET_HEADER_NAMED && strlen(target_names[k]) == n &&
		    memcmp(target_names[k], t, n) == 0) {
			r->target = (enum sg_rule_target)k;
			c->i = end;
			return 0;
		}
	if (n >= 7 && memcmp(t, "header:", 7) == 0) {
		size_t hn = n - 7;

		if (!hn) {
			cursor_error(c, c->i, err, errlen, "header: names no header (write "
				     "header:NAME, say header:Subject)");
			return -1;
		}
		if (hn > SG_RULE_HEADER_NAME_MAX) {
			cursor_error(c, c->i + 7, err, errlen, "the header name is %zu "
				     "characters; at most %d", hn, SG_RULE_HEADER_NAME_MAX);
			return -1;
		}
		for (size_t j = 0; j < hn; j++)
			if (!is_field_name_char(t[7 + j])) {
				cursor_error(c, c->i + 7 + j, err, errlen, "a header name is "
					     "printable characters other than ':'");
				return -1;
			}
		r->target = SG_TARGET_HEADER_NAMED;
		r->header = strndup(t + 7, hn);
		r->header_len = hn;
		c->i = end;
		if (!r->header) {
			cursor_error(c, c->i, err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	quote_token(t, n, q, sizeof(q));
	cursor_error(c, c->i, err, errlen, "unknown target '%s' (targets: header, "
		     "header:NAME, body, url-host, attachment-name, attachment-type)", q);
	return -1;
}

static int parse_flags(struct cursor *c, struct sg_rule *r, char *err, size_t errlen)
{
	for (; c->i < c->len && !is_space(c->s[c->i]) && c->s[c->i] != '#'; c->i++) {
		char f = c->s[c->i];

		if (f == 'i')
			r->flags |= SG_RULE_CASELESS;
		else if (f == 'm')
			r->flags |= SG_RULE_MULTILINE;
		else if (f == 's')
			r->flags |= SG_RULE_DOTALL;
		else if (f == 'u') {
			cursor_error(c, c->i, err, errlen, "flag 'u' (UTF-8) is not supported: "
				     "patterns match bytes, and a UTF-8 mode would have to trust "
				     "a sender's text to be valid UTF-8; write the UTF-8 bytes "
				     "themselves");
			return -1;
		} else {
			cursor_error(c, c->i, err, errlen, "unknown flag '%c' (flags: i "
				     "caseless, m ^ and $ at line breaks, s '.' matches a line "
				     "break)", f > 0x20 && f < 0x7f ? f : '?');
			return -1;
		}
	}
	return 0;
}

static int parse_pattern(struct cursor *c, struct sg_rule *r, char *err, size_t errlen)
{
	size_t start = c->i, j = c->i + 1, n;

	r->column = (unsigned int)start + 1;
	while (j < c->len && c->s[j] != '/')
		j += c->s[j] == '\\' ? 2 : 1;
	if (j >= c->len) {
		cursor_error(c, start, err, errlen, "the pattern has no closing '/' (a '/' "
			     "inside a pattern is written '\\/')");
		return -1;
	}
	n = j - start - 1;
	if (!n) {
		cursor_error(c, start, err, errlen, "the pattern is empty");
		return -1;
	}
	if (n > SG_RULE_PATTERN_MAX) {
		cursor_error(c, start, err, errlen, "the pattern is %zu bytes; at most %d",
			     n, SG_RULE_PATTERN_MAX);
		return -1;
	}
	r->pattern = strndup(c->s + start + 1, n);
	if (!r->pattern) {
		cursor_error(c, start, err, errlen, "out of memory");
		return -1;
	}
	c->i = j + 1;
	return parse_flags(c, r, err, errlen);
}

/* "file:PATH", PATH relative to the rules file's directory unless absolute. */
static int parse_hostlist(struct cursor *c, struct sg_rule *r, char *err, size_t errlen)
{
	size_t start = c->i, end = token_end(c), n = end - start - 5;
	const char *p = c->s + start + 5, *slash = strrchr(c->rules->path, '/');
	size_t dir = *p != '/' && slash ? (size_t)(slash - c->rules->path) + 1 : 0;
	char path[4096], why[1024];

	r->column = (unsigned int)start + 1;
	if (r->target != SG_TARGET_URL_HOST) {
		cursor_error(c, start, err, errlen, "file: lists are for url-host rules; a "
			     "%s rule takes a /PATTERN/", sg_rule_target_name(r->target));
		return -1;
	}
	if (!n) {
		cursor_error(c, start, err, errlen, "file: names no file (write file:PATH)");
		return -1;
	}
	if (dir + n >= sizeof(path)) {
		cursor_error(c, start, err, errlen, "the list's path is too long");
		return -1;
	}
	if (c->rules->hostlists == SG_RULES_HOSTLISTS_MAX) {
		cursor_error(c, start, err, errlen, "more than %d host lists in one file; "
			     "merge some", SG_RULES_HOSTLISTS_MAX);
		return -1;
	}
	memcpy(path, c->rules->path, dir);
	memcpy(path + dir, p, n);
	path[dir + n] = '\0';
	r->hosts = sg_hostlist_load(path, why, sizeof(why));
	if (!r->hosts) {
		cursor_error(c, start, err, errlen, "host list: %s", why);
		return -1;
	}
	c->i = end;
	return 0;
}

static int parse_action(struct cursor *c, struct sg_rule *r, char *err, size_t errlen)
{
	size_t end = token_end(c), n = end - c->i;
	char q[200];

	r->action = SG_RULE_REJECT;
	if (c->i == c->len || c->s[c->i] == '#')
		return 0;
	for (int a = SG_RULE_REJECT; a <= SG_RULE_FLAG; a++)
		if (strlen(action_names[a]) == n && memcmp(action_names[a], c->s + c->i, n) == 0) {
			r->action = (enum sg_rule_action)a;
			c->i = end;
			skip_space(c);
			if (c->i < c->len && c->s[c->i] != '#') {
				quote_token(c->s + c->i, token_end(c) - c->i, q, sizeof(q));
				cursor_error(c, c->i, err, errlen, "unexpected '%s' after the action "
					     "(a comment starts with '#')", q);
				return -1;
			}
			return 0;
		}
	quote_token(c->s + c->i, n, q, sizeof(q));
	cursor_error(c, c->i, err, errlen, "unknown action '%s' (actions: reject, the "
		     "default; tempfail; flag)", q);
	return -1;
}

/* One line: 1 with a rule in *r, 0 for none (blank, comment), -1 with err. */
static int parse_line(struct cursor *c, struct sg_rule *r, char *err, size_t errlen)
{
	skip_space(c);
	if (c->i == c->len || c->s[c->i] == '#')
		return 0;
	if (parse_name(c, r, err, errlen) < 0)
		return -1;
	skip_space(c);
	if (c->i == c->len || c->s[c->i] == '#') {
		cursor_error(c, c->i, err, errlen, "no target; a rule is NAME TARGET "
			     "/PATTERN/FLAGS [ACTION]");
		return -1;
	}
	if (parse_target(c, r, err, errlen) < 0)
		return -1;
	skip_space(c);
	if (c->i == c->len || c->s[c->i] == '#') {
		cursor_error(c, c->i, err, errlen, "no pattern; write /PATTERN/FLAGS after "
			     "the target");
		return -1;
	}
	if (c->len - c->i >= 5 && memcmp(c->s + c->i, "file:", 5) == 0) {
		if (parse_hostlist(c, r, err, errlen) < 0)
			return -1;
	} else if (c->s[c->i] == '/') {
		if (parse_pattern(c, r, err, errlen) < 0)
			return -1;
	} else {
		char q[200];

		quote_token(c->s + c->i, token_end(c) - c->i, q, sizeof(q));
		cursor_error(c, c->i, err, errlen, "a pattern is written /PATTERN/FLAGS%s, "
			     "not '%s'", r->target == SG_TARGET_URL_HOST ? " or file:PATH" : "",
			     q);
		return -1;
	}
	skip_space(c);
	r->line = (unsigned int)c->lineno;
	return parse_action(c, r, err, errlen) < 0 ? -1 : 1;
}

static void rule_clear(struct sg_rule *r)
{
	free(r->pattern);
	free(r->header);
	sg_hostlist_free(r->hosts);
	memset(r, 0, sizeof(*r));
}

void sg_rules_free(struct sg_rules *rules)
{
	if (!rules)
		return;
	sg_matcher_free(rules->matcher);
	for (unsigned int i = 0; i < rules->n; i++)
		rule_clear(&rules->rule[i]);
	free(rules->rule);
	free(rules->path);
	free(rules);
}

/* Reads every line into rules->rule: 0, or -1 with err. */
static int read_rules(struct sg_rules *rules, char *err, size_t errlen)
{
	struct sg_textfile tf;
	struct sg_rule r;
	struct cursor c;
	char *line;
	size_t len;
	int rc;

	if (sg_textfile_open(&tf, rules->path, SG_RULES_LINE_MAX, SG_RULES_FILE_MAX, err,
			     errlen) < 0)
		return -1;
	while ((rc = sg_textfile_next(&tf, &line, &len, err, errlen)) > 0) {
		c = (struct cursor){ .rules = rules, .lineno = tf.lineno, .s = line, .len = len };
		if (tf.lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
			c.i = 3;	/* a UTF-8 byte order mark, as some editors write */
		memset(&r, 0, sizeof(r));
		rc = parse_line(&c, &r, err, errlen);
		if (rc < 0) {
			rule_clear(&r);
			break;
		}
		if (!rc)
			continue;
		if (rules->n == SG_RULES_MAX) {
			cursor_error(&c, 0, err, errlen, "more than %d rules in one file",
				     SG_RULES_MAX);
			rule_clear(&r);
			rc = -1;
			break;
		}
		if (rules->n == rules->cap) {
			unsigned int cap = rules->cap ? rules->cap * 2 : 64;
			struct sg_rule *more = realloc(rules->rule, cap * sizeof(*more));

			if (!more) {
				cursor_error(&c, 0, err, errlen, "out of memory");
				rule_clear(&r);
				rc = -1;
				break;
			}
			rules->rule = more;
			rules->cap = cap;
		}
		rules->hostlists += r.hosts != NULL;
		rules->per_target[r.target]++;
		rules->rule[rules->n++] = r;
	}
	sg_textfile_close(&tf);
	return rc < 0 ? -1 : 0;
}

struct sg_rules *sg_rules_load(const char *path, char *err, size_t errlen)
{
	struct sg_rules *rules = calloc(1, sizeof(*rules));

	if (!rules || !(rules->path = strdup(path))) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(rules);
		return NULL;
	}
	if (read_rules(rules, err, errlen) < 0 ||
	    sg_rules_check_names(rules, err, errlen) < 0 ||
	    sg_rules_check_patterns(rules, err, errlen) < 0 ||
	    !(rules->matcher = sg_matcher_build(rules, err, errlen))) {
		sg_rules_free(rules);
		return NULL;
	}
	return rules;
}

unsigned int sg_rules_count(const struct sg_rules *rules)
{
	return rules ? rules->n : 0;
}

const struct sg_rule *sg_rules_rule(const struct sg_rules *rules, unsigned int i)
{
	return i < rules->n ? &rules->rule[i] : NULL;
}

const char *sg_rules_path(const struct sg_rules *rules)
{
	return rules->path;
}

unsigned int sg_rules_count_target(const struct sg_rules *rules, enum sg_rule_target t)
{
	return rules && t < SG_TARGET_COUNT ? rules->per_target[t] : 0;
}

const struct sg_matcher *sg_rules_matcher(const struct sg_rules *rules)
{
	return rules->matcher;
}
