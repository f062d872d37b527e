/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * rules.h - the content engine's rules: the file an operator writes
 * (docs/content-rules.md), loaded into rules compiled for the matcher
 * (matcher.h). One rule a line:
 *
 *	NAME  TARGET  /PATTERN/FLAGS  [ACTION]	# comment
 *	NAME  url-host  file:PATH     [ACTION]
 *
 * TARGET: header, header:Name, body, url-host, attachment-name,
 * attachment-type. FLAGS: i, m, s. ACTION: reject (the default), tempfail,
 * flag. A loaded file is read-only: every thread may match with it at once,
 * for as long as the configuration generation that loaded it lives.
 *
 * Errors say where (PATH:LINE:COLUMN), which rule, what is wrong and how to
 * fix it; a pattern is quoted in them (for the operator), never in a reply
 * to a sender (a rule is named there by its name).
 */
#ifndef SMTPGUARD_RULES_H
#define SMTPGUARD_RULES_H

#include <stddef.h>

#define SG_RULES_MAX 10000		/* rules a file */
#define SG_RULE_NAME_MAX 64
#define SG_RULE_PATTERN_MAX 1024	/* bytes between the slashes */
#define SG_RULE_HEADER_NAME_MAX 76	/* header:Name's name */
#define SG_RULES_HOSTLISTS_MAX 64	/* file: lists a rules file */
#define SG_RULES_LINE_MAX 4096
#define SG_RULES_FILE_MAX (64ULL << 20)

enum sg_rule_target {
	SG_TARGET_HEADER,		/* "header": every header as "Name: value" */
	SG_TARGET_HEADER_NAMED,		/* "header:Name": the value of the headers so named */
	SG_TARGET_BODY,			/* the decoded text of the text parts */
	SG_TARGET_URL_HOST,		/* the hosts of the URLs in that text */
	SG_TARGET_ATTACHMENT_NAME,	/* a part's file name */
	SG_TARGET_ATTACHMENT_TYPE,	/* a part's content type, "type/subtype" */
	SG_TARGET_COUNT
};

enum sg_rule_action {
	SG_RULE_REJECT,			/* 550: refused */
	SG_RULE_TEMPFAIL,		/* 451: the sender's MTA tries again later */
	SG_RULE_FLAG,			/* counted as a signal; the message is not refused */
};

/* pattern flags */
#define SG_RULE_CASELESS	1u	/* i */
#define SG_RULE_MULTILINE	2u	/* m: ^ and $ at line breaks too */
#define SG_RULE_DOTALL		4u	/* s: '.' matches a line break too */

struct sg_hostlist;

struct sg_rule {
	char name[SG_RULE_NAME_MAX + 1];
	enum sg_rule_target target;
	enum sg_rule_action action;
	unsigned int flags;
	char *pattern;			/* between the slashes, NUL-terminated; NULL: a host list */
	char *header;			/* header:Name's name, NUL-terminated; NULL otherwise */
	size_t header_len;
	struct sg_hostlist *hosts;	/* url-host file:PATH */
	unsigned int line;		/* in the file */
	unsigned int column;		/* of the pattern's opening '/' (or of file:) */
};

struct sg_rules;

/* Reads, checks and compiles the rules of path. NULL with err (see above)
 * when anything in it is wrong: then nothing of it is used. */
struct sg_rules *sg_rules_load(const char *path, char *err, size_t errlen);
void sg_rules_free(struct sg_rules *rules);
unsigned int sg_rules_count(const struct sg_rules *rules);
/* Rule i (0 .. count-1), in the file's order. */
const struct sg_rule *sg_rules_rule(const struct sg_rules *rules, unsigned int i);
const char *sg_rules_path(const struct sg_rules *rules);
/* The rules of one target. */
unsigned int sg_rules_count_target(const struct sg_rules *rules, enum sg_rule_target t);

const char *sg_rule_target_name(enum sg_rule_target t);
const char *sg_rule_action_name(enum sg_rule_action a);

/* "PATH:LINE:COLUMN: rule 'NAME': " followed by the message, into err
 * (column 0: none). For the matcher's compile errors. */
void sg_rules_error(const struct sg_rules *rules, const struct sg_rule *rule,
		    unsigned int column, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* The rule's pattern as the operator wrote it, "/PATTERN/FLAGS", cut at
 * about 60 bytes with "...", bytes outside printable ASCII as \xHH. */
void sg_rule_pattern_quote(const struct sg_rule *rule, char *buf, size_t len);

#endif
