/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fields.h - header fields in a block of text: "Name: value" lines, a
 * value continued on lines that start with a space or a tab (RFC 5322
 * §2.2.3), up to a blank line or the end. What an ARF report holds twice
 * outside MIME's own headers: its machine-readable part
 * (message/feedback-report, RFC 5965 §3) and a text/rfc822-headers part.
 *
 * Bounded: a field's unfolded value is cut at SG_FIELD_VALUE_MAX bytes (and
 * said so); a name is at most SG_FIELD_NAME_MAX printable bytes. Errors
 * name the line (from 1) and what is wrong with it.
 */
#ifndef SMTPGUARD_FIELDS_H
#define SMTPGUARD_FIELDS_H

#include <stddef.h>

#define SG_FIELD_NAME_MAX 76
#define SG_FIELD_VALUE_MAX 4096

/* Called for each field, its value unfolded (the line breaks of the folds
 * removed, leading and trailing whitespace trimmed) and NUL-terminated;
 * line: where the field starts. Returns 0 to go on, -1 to stop (the error
 * it wrote to err is then the parse's). */
typedef int (*sg_field_fn)(void *ctx, const char *name, const char *value, int line,
			   char *err, size_t errlen);

/* Walks text[0..n): 0 when it ended (at its end or a blank line), -1 with
 * the reason (and the line) in err. strict: a line that is no field (no
 * colon, an empty or unprintable name, a NUL byte) is an error; otherwise
 * it ends the fields as a blank line would (headers a receiver cut short).
 * *lines, when not NULL: the lines read. */
int sg_fields_parse(const char *text, size_t n, int strict, sg_field_fn fn, void *ctx,
		    int *lines, char *err, size_t errlen);

#endif
