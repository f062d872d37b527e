/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* behaviour_reply.c - what an MX's refusal says of the sender: an unknown
 * user (a harvested or stale list), a policy refusal (spam, reputation),
 * or neither. Only permanent (5xx) replies count: 4xx are greylisting
 * and rate limits, which honest senders meet every day. */
#include <ctype.h>
#include <string.h>
#include "behaviour.h"

#define TEXT_READ 512	/* the phrases are near the start of a reply */

struct status {
	int class_, subject, detail;
};

/* An enhanced status code "c.sss.ddd" (RFC 3463) at s, after spaces. */
static int parse_status(const char *s, struct status *st)
{
	int *parts[3] = { &st->class_, &st->subject, &st->detail };

	if (!s)
		return -1;
	while (*s == ' ' || *s == '\t')
		s++;
	for (int p = 0; p < 3; p++) {
		int digits = 0, v = 0;

		while (isdigit((unsigned char)*s) && digits < 3) {
			v = v * 10 + (*s++ - '0');
			digits++;
		}
		if (!digits || (p == 0 && digits != 1) || (p < 2 && *s++ != '.'))
			return -1;
		*parts[p] = v;
	}
	return isdigit((unsigned char)*s) ? -1 : 0;
}

static int says(const char *lowered, const char *const *phrases)
{
	for (; *phrases; phrases++) {
		if (strstr(lowered, *phrases))
			return 1;
	}
	return 0;
}

enum sg_reply_kind sg_behaviour_classify_reply(int code, const char *enhanced, const char *text)
{
	static const char *const unknown[] = {
		"user unknown", "unknown user", "no such user", "unknown recipient",
		"recipient unknown", "no such recipient", "no such mailbox", "mailbox not found",
		"mailbox unknown", "unknown mailbox", "does not exist", "invalid recipient",
		"recipient not found", "user not found", NULL,
	};
	static const char *const policy[] = {
		"spam", "blocklist", "blacklist", "blocked", NULL,
	};
	char lowered[TEXT_READ + 1];
	struct status st;
	size_t n = 0;

	if (code < 500 || code > 599)
		return SG_REPLY_OTHER;
	if (!parse_status(enhanced && *enhanced ? enhanced : text, &st) && st.class_ == 5) {
		if (st.subject == 1)
			return SG_REPLY_UNKNOWN_USER;
		if (st.subject == 7)
			return SG_REPLY_POLICY;
		if (st.subject != 0)
			return SG_REPLY_OTHER;	/* it said what it was: a full mailbox, ... */
	}
	/* no code, or 5.0.0: what the text says */
	for (; text && text[n] && n < TEXT_READ; n++)
		lowered[n] = (char)tolower((unsigned char)text[n]);
	lowered[n] = '\0';
	if (says(lowered, unknown))
		return SG_REPLY_UNKNOWN_USER;
	if (says(lowered, policy))
		return SG_REPLY_POLICY;
	return SG_REPLY_OTHER;
}
