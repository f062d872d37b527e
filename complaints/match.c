/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* match.c - an abuse report's message in the events file (see match.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "eventline.h"
#include "match.h"

static const char *const level_names[] = {
	[SG_MATCH_NONE] = "none", [SG_MATCH_WEAK] = "weak", [SG_MATCH_CONFLICT] = "conflict",
	[SG_MATCH_BODY] = "body", [SG_MATCH_PROBABLE] = "probable",
	[SG_MATCH_STRONG] = "strong", [SG_MATCH_EXACT] = "exact",
};

const char *sg_match_level_name(enum sg_match_level level)
{
	return level <= SG_MATCH_EXACT ? level_names[level] : "?";
}

int sg_match_level_from_name(const char *name)
{
	for (int i = SG_MATCH_WEAK; i <= SG_MATCH_EXACT; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	return -1;
}

/* Two addresses in any of their spellings. */
static int same_address(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	int fa = strchr(a, ':') ? AF_INET6 : AF_INET, fb = strchr(b, ':') ? AF_INET6 : AF_INET;

	if (!a[0] || !b[0] || fa != fb)
		return 0;
	if (inet_pton(fa, a, x) != 1 || inet_pton(fb, b, y) != 1)
		return 0;
	return memcmp(x, y, fa == AF_INET ? 4 : 16) == 0;
}

static const char *domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at ? at + 1 : "";
}

/* Is domain one of the comma-separated list? */
static int in_list(const char *list, const char *domain)
{
	size_t n = strlen(domain);

	if (!n)
		return 0;
	for (const char *p = list; *p; ) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncasecmp(p, domain, n))
			return 1;
		p += len + (p[len] == ',');
	}
	return 0;
}

/* The recipient the report names: Original-Rcpt-To, else the original's To. */
static void report_rcpt_domain(const struct sg_arf *arf, char *out, size_t len)
{
	const char *d = domain_of(arf->rcpt_to);
	size_t n;

	if (!d[0]) {
		d = domain_of(arf->to);
		n = strcspn(d, "> ,;");
	} else {
		n = strlen(d);
	}
	snprintf(out, len, "%.*s", (int)n, d);
}

struct report_view {
	const struct sg_arf *arf;
	int64_t t;		/* the report's time, seconds; when has_t */
	int has_t;
	int64_t window;
	const char *t_from;	/* "Arrival-Date", ... */
	char rcpt_domain[256];
};

static enum sg_match_level weigh(const struct report_view *rv, const char *line, char *why,
				 size_t len, int64_t *delta)
{
	const struct sg_arf *arf = rv->arf;
	char mid[600], ref[64], src[80], vm[64], dom[600], from[600], fp[32], t[40];
	int id = 0, by_ref = 0, source = 0, source_known = 0, in_time = 0, rcpt = 0,
	    sender = 0, body = 0;
	int64_t ms;

	sg_event_field(line, "message_id", mid, sizeof(mid));
	sg_event_field(line, "ref", ref, sizeof(ref));
	sg_event_field(line, "source", src, sizeof(src));
	sg_event_field(line, "rcpt_domains", dom, sizeof(dom));
	sg_event_field(line, "mail_from", from, sizeof(from));
	sg_event_address(src, vm, sizeof(vm));
	id = arf->message_id[0] && sg_same_message_id(mid, arf->message_id);
	for (unsigned int i = 0; i < arf->n_refs; i++)
		by_ref |= ref[0] && !strcmp(ref, arf->refs[i]);
	if (arf->source_ip[0]) {
		source_known = 1;
		source = same_address(vm, arf->source_ip);
	} else {
		source_known = arf->n_received_ip > 0;
		for (unsigned int i = 0; i < arf->n_received_ip; i++)
			source |= same_address(vm, arf->received_ip[i]);
	}
	*delta = INT64_MAX;
	sg_event_field(line, "time", t, sizeof(t));
	if (rv->has_t && sg_event_time_ms(t, &ms) == 0) {
		*delta = ms / 1000 - rv->t;
		in_time = *delta <= rv->window && *delta >= -rv->window;
	}
	rcpt = in_list(dom, rv->rcpt_domain);
	sender = arf->mail_from[0] && !strcasecmp(from, arf->mail_from);
	if (arf->has_body_fp && sg_event_field(line, "body_fp", fp, sizeof(fp)) == 0) {
		char mine[24];

		snprintf(mine, sizeof(mine), "%016" PRIx64, arf->body_fp);
		body = !strcasecmp(fp, mine);
	}
	snprintf(why, len, "%s%s%s%s%s%s%s%s",
		 id ? "Message-ID, " : "", by_ref ? "reference id, " : "",
		 body ? "body fingerprint, " : "",
		 source ? "source address, " : source_known ? "NOT the source address, " : "",
		 in_time ? "time, " : "", rcpt ? "recipient domain, " : "",
		 sender ? "envelope sender, " : "", "");
	if (strlen(why) >= 2)
		why[strlen(why) - 2] = '\0';
	if ((id || by_ref) && (source || !source_known))
		return SG_MATCH_EXACT;
	if (body && source && in_time)
		return SG_MATCH_STRONG;
	if (source && in_time && (rcpt || sender))
		return SG_MATCH_PROBABLE;
	if (body && in_time && !source_known)
		return SG_MATCH_BODY;
	if (id || by_ref)
		return SG_MATCH_CONFLICT;
	if (source && in_time)
		return SG_MATCH_WEAK;
	return SG_MATCH_NONE;
}

/* Did this message reach the receiver? The MX took its dot. */
static int delivered(const char *line)
{
	char verdict[16], reply[8];

	if (sg_event_field(line, "verdict", verdict, sizeof(verdict)) || strcmp(verdict, "accept"))
		return 0;
	sg_event_field(line, "mx_reply", reply, sizeof(reply));
	return reply[0] != '4' && reply[0] != '5';
}

/* A line of events into line; 0 at the end; lines too long are skipped. */
static int next_line(FILE *f, char *line, size_t len)
{
	while (fgets(line, (int)len, f)) {
		size_t n = strlen(line);

		if (n && line[n - 1] == '\n') {
			line[n - 1] = '\0';
			return 1;
		}
		if (feof(f))
			return 1;
		/* overlong: its rest goes */
		for (int c; (c = fgetc(f)) != EOF && c != '\n'; )
			;
	}
	return 0;
}

static void find_session(FILE *events, struct sg_match *m)
{
	char *line = malloc(SG_MATCH_LINE_MAX);
	int past = 0;

	m->session[0] = '\0';
	if (!line || fseek(events, 0, SEEK_SET)) {
		free(line);
		return;
	}
	while (next_line(events, line, SG_MATCH_LINE_MAX)) {
		char src[80], mx[80];

		if (!past) {
			past = !strcmp(line, m->line);
			continue;
		}
		if (!strstr(line, "\"event\":\"session\"") ||
		    sg_event_field(line, "source", src, sizeof(src)) || strcmp(src, m->source) ||
		    sg_event_field(line, "mx", mx, sizeof(mx)) || strcmp(mx, m->mx))
			continue;
		snprintf(m->session, sizeof(m->session), "%s", line);
		break;
	}
	free(line);
}

int sg_match_report(const struct sg_arf *arf, FILE *events, unsigned int window_s,
		    struct sg_match *best, char *err, size_t errlen)
{
	struct report_view rv = { .arf = arf, .window = window_s ? window_s :
					SG_MATCH_WINDOW_DEFAULT };
	char *line = malloc(SG_MATCH_LINE_MAX), why[320];
	int64_t best_delta = INT64_MAX;

	memset(best, 0, sizeof(*best));
	if (!line) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (arf->has_arrival) {
		rv.t = arf->arrival;
		rv.has_t = 1;
	} else if (arf->has_received_date) {
		rv.t = arf->received_epoch;
		rv.has_t = 1;
	} else if (arf->has_date) {
		rv.t = arf->date_epoch;
		rv.has_t = 1;
		rv.window *= 6;
	}
	report_rcpt_domain(arf, rv.rcpt_domain, sizeof(rv.rcpt_domain));
	if (fseek(events, 0, SEEK_SET) && errno != ESPIPE) {
		snprintf(err, errlen, "cannot read the events file from its start: %s",
			 strerror(errno));
		free(line);
		return -1;
	}
	while (next_line(events, line, SG_MATCH_LINE_MAX)) {
		enum sg_match_level level;
		int64_t delta, adelta;

		if (!strstr(line, "\"event\":\"message\"") || !delivered(line))
			continue;
		level = weigh(&rv, line, why, sizeof(why), &delta);
		if (level == SG_MATCH_NONE || level < best->level)
			continue;
		adelta = delta < 0 ? -delta : delta;
		if (level == best->level) {
			best->equals++;
			if (adelta >= best_delta)
				continue;
		} else {
			best->equals = 0;
		}
		best_delta = adelta;
		best->level = level;
		best->delta_s = delta;
		snprintf(best->why, sizeof(best->why), "%s", why);
		snprintf(best->line, sizeof(best->line), "%s", line);
	}
	if (ferror(events)) {
		snprintf(err, errlen, "reading the events file failed: %s", strerror(errno));
		free(line);
		return -1;
	}
	free(line);
	if (best->level == SG_MATCH_NONE)
		return 1;
	sg_event_field(best->line, "time", best->time, sizeof(best->time));
	sg_event_time_ms(best->time, &best->time_ms);
	sg_event_field(best->line, "source", best->source, sizeof(best->source));
	sg_event_address(best->source, best->vm, sizeof(best->vm));
	sg_event_field(best->line, "mx", best->mx, sizeof(best->mx));
	sg_event_field(best->line, "ref", best->ref, sizeof(best->ref));
	sg_event_field(best->line, "tenant", best->tenant, sizeof(best->tenant));
	if (!rv.has_t)
		best->delta_s = 0;
	find_session(events, best);
	return 0;
}
