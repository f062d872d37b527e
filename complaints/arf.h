/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * arf.h - an abuse report in the Abuse Reporting Format (RFC 5965), as the
 * receivers' feedback loops send them: a multipart/report with
 * report-type=feedback-report of three parts,
 *
 *   1. a human-readable text part (ignored but for our reference ids);
 *   2. message/feedback-report, the machine-readable fields: Feedback-Type,
 *      User-Agent, Version (required), Source-IP, Arrival-Date,
 *      Original-Mail-From, Original-Rcpt-To, Reported-Domain,
 *      Authentication-Results, Reporting-MTA ...;
 *   3. the message complained of: message/rfc822 (headers and body, as
 *      most loops send it) or text/rfc822-headers (headers only), or none.
 *
 * From the third part: Message-ID, Date, From, To, Subject, the addresses
 * in brackets of its Received headers (the receiver's own names the VM's
 * address: the proxy is transparent) and the first one's date, any
 * smtpguard reference id in a header value, and, from a whole message,
 * its body's fingerprint digest computed as the content engine computes
 * it for the message event (scan/signals/fingerprint.h), so a report whose
 * Message-ID was redacted still finds its message.
 *
 * The report is taken apart by the content engine's MIME parser
 * (scan/content/mime.h: bounded, written for hostile input); the
 * feedback-report and rfc822-headers texts by fields.h. Sizes are bounded
 * (SG_ARF_*_MAX); bad input gets an error naming what is wrong and where.
 */
#ifndef SMTPGUARD_ARF_H
#define SMTPGUARD_ARF_H

#include <stddef.h>
#include <stdint.h>

#define SG_ARF_REPORT_MAX	(16u << 20)	/* bytes of a report; more is refused */
#define SG_ARF_FIELDS_MAX	65536		/* bytes of the feedback-report part */
#define SG_ARF_HEADERS_MAX	262144		/* bytes of a text/rfc822-headers part read */
#define SG_ARF_RECEIVED_MAX	8		/* bracketed addresses kept from Received */
#define SG_ARF_REFS_MAX		4		/* smtpguard reference ids kept */
#define SG_ARF_REF_LEN		24

enum sg_arf_original {
	SG_ARF_ORIGINAL_NONE = 0,	/* the report has no third part */
	SG_ARF_ORIGINAL_HEADERS,	/* text/rfc822-headers */
	SG_ARF_ORIGINAL_MESSAGE,	/* message/rfc822: headers and body */
};

struct sg_arf {
	/* the machine-readable part */
	char feedback_type[64];		/* abuse, fraud, virus, other, not-spam, ... */
	char user_agent[256];
	char version[16];
	char source_ip[64];		/* as valid text (brackets removed), or "" */
	char arrival_date[128];		/* as written */
	int64_t arrival;		/* seconds since the epoch, when has_arrival */
	int has_arrival;
	char mail_from[512];		/* Original-Mail-From, angle brackets removed */
	char rcpt_to[512];		/* the first Original-Rcpt-To, brackets removed */
	unsigned int n_rcpt_to;
	char reported_domain[256];
	char reporting_mta[256];
	char auth_results[1024];
	/* the message complained of */
	enum sg_arf_original original;
	char message_id[512];		/* "" when absent or redacted */
	char date[128];
	int64_t date_epoch;
	int has_date;
	char from[512], to[512], subject[512];
	char received_ip[SG_ARF_RECEIVED_MAX][64];	/* topmost first */
	unsigned int n_received_ip;
	int64_t received_epoch;		/* the date of the topmost Received */
	int has_received_date;
	uint64_t body_fp;		/* its body's fingerprint digest, when has_body_fp */
	int has_body_fp;
	char refs[SG_ARF_REFS_MAX][SG_ARF_REF_LEN];	/* "SG..." found in it */
	unsigned int n_refs;
	/* what was odd but not fatal, "; "-separated */
	char notes[512];
};

/* Parses report[0..n) into *arf: 0, or -1 with the reason in err ("the
 * feedback-report part, line 3: ..."). */
int sg_arf_parse(const char *report, size_t n, struct sg_arf *arf, char *err, size_t errlen);

/* The first smtpguard reference id ("SG" and 16 upper-case hex digits, as
 * proxy/relay_data.c makes them) in s[0..n), copied to out (len >=
 * SG_ARF_REF_LEN); the position after it, or NULL when there is none. */
const char *sg_arf_find_ref(const char *s, size_t n, char *out);

#endif
