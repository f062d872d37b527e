/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * match.h - which message of the events file (proxy/events.c) an abuse
 * report (arf.h) is about, and how sure that is. Each message event that
 * reached the MX (verdict accept, the MX's reply to the dot not a 4xx or
 * 5xx) is weighed on what it shares with the report:
 *
 *   exact      its Message-ID, or an smtpguard reference id the report
 *              quotes, and the source agrees (or the report names none)
 *   strong     its body fingerprint, the source and the time agree
 *   probable   the source and the time agree, and the recipient's domain
 *              (Original-Rcpt-To, else To) or the envelope sender
 *              (Original-Mail-From) too
 *   body       the body fingerprint and the time agree, the source unknown
 *   conflict   its Message-ID agrees but the report's source does not (a
 *              Message-ID reused or forged elsewhere)
 *   weak       the source and the time alone
 *
 * The source is the report's Source-IP, else the addresses in brackets of
 * the original's Received headers. The time is Arrival-Date, else the
 * date of the topmost Received header, within window seconds of the
 * event; else the original's Date (the sender's clock), within six
 * windows. The best level wins; among equals, the nearest in time. Below
 * exact, several messages at the best level make the match ambiguous,
 * which is said (and a complaint is then not confirmed against anyone).
 * The session the message went in is the session event of the same
 * source address and port and MX that ended at or after it.
 */
#ifndef SMTPGUARD_MATCH_H
#define SMTPGUARD_MATCH_H

#include <stdint.h>
#include <stdio.h>
#include "arf.h"

#define SG_MATCH_LINE_MAX 16384		/* longer event lines are skipped */
#define SG_MATCH_WINDOW_DEFAULT 600	/* seconds around the report's time */

enum sg_match_level {
	SG_MATCH_NONE = 0,
	SG_MATCH_WEAK,
	SG_MATCH_CONFLICT,
	SG_MATCH_BODY,
	SG_MATCH_PROBABLE,
	SG_MATCH_STRONG,
	SG_MATCH_EXACT,
};

struct sg_match {
	enum sg_match_level level;
	char why[320];			/* what agreed (and what did not) */
	unsigned int equals;		/* other messages at the same level */
	int64_t time_ms;		/* the event's time */
	int64_t delta_s;		/* event time - the report's time (when known) */
	char time[40];
	char source[80];		/* "address:port": the VM and its session's port */
	char vm[64];			/* the address alone */
	char mx[80];
	char ref[SG_ARF_REF_LEN];
	char tenant[128];		/* the event's "tenant", when it has one */
	char line[SG_MATCH_LINE_MAX];	/* the message event, as written */
	char session[SG_MATCH_LINE_MAX];	/* its session's event, or "" */
};

const char *sg_match_level_name(enum sg_match_level level);
/* The level, by name; -1 when it is none. */
int sg_match_level_from_name(const char *name);

/* Reads events from its start. 0 with *best (its level above none), 1
 * when no message fits at all, -1 with err when it cannot be read. */
int sg_match_report(const struct sg_arf *arf, FILE *events, unsigned int window_s,
		    struct sg_match *best, char *err, size_t errlen);

#endif
