/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * scanner.h - the verdict on a message, judged while it streams to the MX.
 * The relay feeds each message's lines (headers, then body, dot-stuffing
 * as sent) and asks for the verdict before the final dot goes out. This
 * built-in scanner matches a configurable list of header and body patterns
 * (POSIX extended regular expressions, case-insensitive); later engines
 * plug in behind the same calls.
 *
 * Pattern file (scan_patterns = FILE): one rule a line, "header REGEX" or
 * "body REGEX"; '#' comments and blank lines ignored.
 */
#ifndef SMTPGUARD_SCANNER_H
#define SMTPGUARD_SCANNER_H

#include <stddef.h>

#define SG_SCAN_LINE_MAX 998	/* RFC 5322's line limit: longer lines are judged by their start */

struct sg_patterns;

enum sg_verdict_kind {
	SG_ACCEPT = 0,
	SG_REJECT,		/* 550 5.7.1: never committed by the MX */
	SG_TEMPFAIL,		/* 451 4.7.1: the VM's MTA keeps it queued */
};

struct sg_scan {
	const struct sg_patterns *patterns;
	int in_body;
	char line[SG_SCAN_LINE_MAX + 1];
	size_t line_len;
	int line_overflow;
	int matched;		/* rule number (1-based) of the first match, or 0 */
	size_t bytes;
	char message_id[256];	/* the Message-ID header's value, for events and trace */
};

/* Loads the rules; NULL with err (file, line, what) on error. */
struct sg_patterns *sg_patterns_load(const char *path, char *err, size_t errlen);
void sg_patterns_free(struct sg_patterns *p);
int sg_patterns_count(const struct sg_patterns *p);

void sg_scan_begin(struct sg_scan *scan, const struct sg_patterns *patterns);
void sg_scan_feed(struct sg_scan *scan, const char *data, size_t n);
/* The verdict, and a short reason for the reply and the log. */
enum sg_verdict_kind sg_scan_verdict(struct sg_scan *scan, char *reason, size_t len);

#endif
