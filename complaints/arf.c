/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* arf.c - RFC 5965 abuse reports taken apart (see arf.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "arf.h"
#include "date.h"
#include "fields.h"
#include "fingerprint.h"
#include "mime.h"

/* A text gathered from the parser's callbacks, up to max bytes. */
struct buf {
	char *p;
	size_t len, max;
	int over;
};

struct arf_parse {
	struct sg_arf *arf;
	char top_type[1024];		/* the report's own Content-Type, as written */
	int top_multipart_report;
	unsigned int parts;		/* parts of the report (depth 1) */
	unsigned int fields_index;	/* the feedback-report part's index (0: none yet) */
	unsigned int fields_parts;
	unsigned int headers_index;	/* a text/rfc822-headers part's */
	unsigned int human_index;	/* the first text part's */
	unsigned int orig_depth;	/* of a message/rfc822 part being read, 0: none */
	int orig_seen;
	struct buf fields, headers;
	struct sg_fingerprint_ctx fp;
	size_t fp_fed;
	int received_seen;
};

static void note(struct sg_arf *arf, const char *what)
{
	size_t used = strlen(arf->notes);

	if (used + 3 >= sizeof(arf->notes))
		return;
	snprintf(arf->notes + used, sizeof(arf->notes) - used, "%s%s", used ? "; " : "", what);
}

static void buf_add(struct buf *b, const char *data, size_t n)
{
	if (b->len + n > b->max) {
		n = b->max - b->len;
		b->over = 1;
	}
	if (!n)
		return;
	if (!b->p) {
		b->p = malloc(b->max);
		if (!b->p) {
			b->over = 1;
			return;
		}
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

/* value into out, cut, printable (a report is what a stranger wrote; it
 * goes to a terminal and into JSON) */
static void copy_clean(char *out, size_t len, const char *value, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < len; i++) {
		unsigned char c = (unsigned char)value[i];

		out[o++] = c == '\t' ? ' ' : c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[o] = '\0';
}

/* "<a@b>" -> "a@b"; what a receiver wrote around it stays */
static void copy_address(char *out, size_t len, const char *value)
{
	const char *lt = strchr(value, '<'), *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt)
		copy_clean(out, len, lt + 1, (size_t)(gt - lt - 1));
	else
		copy_clean(out, len, value, strlen(value));
}

const char *sg_arf_find_ref(const char *s, size_t n, char *out)
{
	for (size_t i = 0; i + 18 <= n; i++) {
		size_t j;

		if (s[i] != 'S' || s[i + 1] != 'G' || (i && isalnum((unsigned char)s[i - 1])))
			continue;
		for (j = 0; j < 16; j++) {
			char c = s[i + 2 + j];

			if (!isdigit((unsigned char)c) && !(c >= 'A' && c <= 'F'))
				break;
		}
		if (j < 16 || (i + 18 < n && isalnum((unsigned char)s[i + 18])))
			continue;
		memcpy(out, s + i, 18);
		out[18] = '\0';
		return s + i + 18;
	}
	return NULL;
}

static void find_refs(struct sg_arf *arf, const char *s, size_t n)
{
	char ref[SG_ARF_REF_LEN];
	const char *end = s + n, *p = s;

	while (arf->n_refs < SG_ARF_REFS_MAX && (p = sg_arf_find_ref(p, (size_t)(end - p), ref))) {
		unsigned int i;

		for (i = 0; i < arf->n_refs && strcmp(arf->refs[i], ref); i++)
			;
		if (i == arf->n_refs)
			memcpy(arf->refs[arf->n_refs++], ref, sizeof(ref));
	}
}

/* "[192.0.2.10]" or "[IPv6:2001:db8::10]" in a Received header's from
 * clause (before its ';'), as a valid address */
static void received_address(struct arf_parse *ap, const char *value)
{
	struct sg_arf *arf = ap->arf;
	const char *semi = strrchr(value, ';'), *p = value;
	const char *end = semi ? semi : value + strlen(value);

	while (arf->n_received_ip < SG_ARF_RECEIVED_MAX &&
	       (p = memchr(p, '[', (size_t)(end - p))) != NULL) {
		const char *close = memchr(p, ']', (size_t)(end - p));
		char a[64];
		unsigned char bin[16];
		size_t len;

		if (!close)
			break;
		p++;
		if (!strncasecmp(p, "IPv6:", 5))
			p += 5;
		len = (size_t)(close - p);
		if (len && len < sizeof(a)) {
			memcpy(a, p, len);
			a[len] = '\0';
			if (inet_pton(strchr(a, ':') ? AF_INET6 : AF_INET, a, bin) == 1) {
				unsigned int i;

				for (i = 0; i < arf->n_received_ip && strcmp(arf->received_ip[i], a); i++)
					;
				if (i == arf->n_received_ip)
					snprintf(arf->received_ip[arf->n_received_ip++], 64, "%s", a);
			}
		}
		p = close + 1;
	}
	if (!ap->received_seen && semi) {
		char err[160];

		if (sg_rfc5322_date(semi + 1, &arf->received_epoch, err, sizeof(err)) == 0)
			arf->has_received_date = 1;
	}
	ap->received_seen = 1;
}

/* A header of the message complained of (from message/rfc822 or
 * text/rfc822-headers); the first of each kind counts. */
static void original_header(struct arf_parse *ap, const char *name, const char *value,
			    size_t value_len)
{
	struct sg_arf *arf = ap->arf;
	char v[SG_FIELD_VALUE_MAX + 1];

	copy_clean(v, sizeof(v), value, value_len);
	find_refs(arf, v, strlen(v));
	if (!strcasecmp(name, "Message-ID") && !arf->message_id[0]) {
		/* "<redacted>", "[removed]": a receiver's, not the sender's */
		if (!strchr(v, '@'))
			note(arf, "the original's Message-ID is redacted");
		else
			copy_clean(arf->message_id, sizeof(arf->message_id), v, strcspn(v, " "));
	} else if (!strcasecmp(name, "Date") && !arf->date[0]) {
		char err[160];

		snprintf(arf->date, sizeof(arf->date), "%s", v);
		if (sg_rfc5322_date(v, &arf->date_epoch, err, sizeof(err)) == 0)
			arf->has_date = 1;
		else
			note(arf, "the original's Date is not a date");
	} else if (!strcasecmp(name, "From") && !arf->from[0]) {
		snprintf(arf->from, sizeof(arf->from), "%s", v);
	} else if (!strcasecmp(name, "To") && !arf->to[0]) {
		snprintf(arf->to, sizeof(arf->to), "%s", v);
	} else if (!strcasecmp(name, "Subject") && !arf->subject[0]) {
		snprintf(arf->subject, sizeof(arf->subject), "%s", v);
	} else if (!strcasecmp(name, "Received")) {
		received_address(ap, v);
	}
}

static void on_header(void *ctx, const struct sg_mime_part *part, const struct sg_mime_header *h)
{
	struct arf_parse *ap = ctx;
	char name[SG_FIELD_NAME_MAX + 1];

	copy_clean(name, sizeof(name), h->name, h->name_len);
	if (part->depth == 0) {
		if (!strcasecmp(name, "Content-Type") && !ap->top_type[0])
			copy_clean(ap->top_type, sizeof(ap->top_type), h->value, h->value_len);
		return;
	}
	/* the message complained of: its own headers, not those of its parts */
	if (ap->orig_depth && part->depth == ap->orig_depth + 1)
		original_header(ap, name, h->decoded, h->decoded_len);
}

static void on_part_begin(void *ctx, const struct sg_mime_part *part)
{
	struct arf_parse *ap = ctx;

	if (part->depth == 0) {
		ap->top_multipart_report = part->is_multipart && !strcmp(part->type, "multipart") &&
					   !strcmp(part->subtype, "report");
		return;
	}
	if (part->depth != 1 || !ap->top_multipart_report)
		return;
	ap->parts++;
	if (!strcmp(part->type, "message") && !strcmp(part->subtype, "feedback-report")) {
		if (++ap->fields_parts == 1)
			ap->fields_index = part->index;
	} else if (!strcmp(part->type, "text") && !strcmp(part->subtype, "rfc822-headers")) {
		if (!ap->headers_index && !ap->orig_seen)
			ap->headers_index = part->index;
	} else if (part->is_message) {
		if (!ap->orig_seen && !ap->headers_index) {
			ap->orig_depth = part->depth;
			ap->orig_seen = 1;
			ap->arf->original = SG_ARF_ORIGINAL_MESSAGE;
		}
	} else if (part->is_text && !ap->human_index) {
		ap->human_index = part->index;
	}
}

static void on_part_end(void *ctx, const struct sg_mime_part *part)
{
	struct arf_parse *ap = ctx;

	if (ap->orig_depth && part->depth == ap->orig_depth)
		ap->orig_depth = 0;
}

static void content(struct arf_parse *ap, const struct sg_mime_part *part, const char *data,
		   size_t n)
{
	if (part->depth == 1 && part->index == ap->fields_index) {
		buf_add(&ap->fields, data, n);
	} else if (part->depth == 1 && part->index == ap->headers_index) {
		buf_add(&ap->headers, data, n);
	} else if (part->depth == 1 && part->index == ap->human_index) {
		find_refs(ap->arf, data, n);
	} else if (ap->orig_depth && part->depth > ap->orig_depth && part->is_text &&
		   ap->fp_fed < SG_FP_TEXT_MAX) {
		/* what the content engine fed for the message event */
		size_t take = n < SG_FP_TEXT_MAX - ap->fp_fed ? n : SG_FP_TEXT_MAX - ap->fp_fed;

		sg_fingerprint_feed(&ap->fp, data, take);
		ap->fp_fed += take;
	}
}

static void on_text(void *ctx, const struct sg_mime_part *part, const char *data, size_t n)
{
	content(ctx, part, data, n);
}

static void on_raw(void *ctx, const struct sg_mime_part *part, const char *data, size_t n)
{
	content(ctx, part, data, n);
}

static const struct sg_mime_callbacks callbacks = {
	.header = on_header,
	.part_begin = on_part_begin,
	.part_end = on_part_end,
	.text = on_text,
	.raw = on_raw,
};

/* The report-type parameter of a Content-Type value ("" when none). */
static void report_type(const char *ct, char *out, size_t len)
{
	const char *p = ct;

	out[0] = '\0';
	while ((p = strchr(p, ';')) != NULL) {
		size_t n;

		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, "report-type", 11))
			continue;
		p += 11;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '"') {
			p++;
			n = strcspn(p, "\"");
		} else {
			n = strcspn(p, "; \t()");
		}
		snprintf(out, len, "%.*s", (int)n, p);
		return;
	}
}

static int feedback_field(void *ctx, const char *name, const char *value, int line, char *err,
			  size_t errlen)
{
	struct sg_arf *arf = ctx;

	if (!strcasecmp(name, "Feedback-Type")) {
		copy_clean(arf->feedback_type, sizeof(arf->feedback_type), value, strcspn(value, " ;("));
	} else if (!strcasecmp(name, "User-Agent")) {
		copy_clean(arf->user_agent, sizeof(arf->user_agent), value, strlen(value));
	} else if (!strcasecmp(name, "Version")) {
		copy_clean(arf->version, sizeof(arf->version), value, strlen(value));
	} else if (!strcasecmp(name, "Source-IP")) {
		char a[64];
		unsigned char bin[16];
		size_t n = strcspn(value, " (");

		/* "[192.0.2.1]" is seen too */
		if (value[0] == '[' && n > 1 && value[n - 1] == ']') {
			value++;
			n -= 2;
		}
		if (n >= sizeof(a) || (memcpy(a, value, n), a[n] = '\0',
		    inet_pton(strchr(a, ':') ? AF_INET6 : AF_INET, a, bin) != 1)) {
			snprintf(err, errlen, "the feedback-report part, line %d: Source-IP '%.64s' "
				 "is not an IPv4 or IPv6 address", line, value);
			return -1;
		}
		snprintf(arf->source_ip, sizeof(arf->source_ip), "%s", a);
	} else if (!strcasecmp(name, "Arrival-Date") || !strcasecmp(name, "Received-Date")) {
		char why[200];

		if (sg_rfc5322_date(value, &arf->arrival, why, sizeof(why))) {
			snprintf(err, errlen, "the feedback-report part, line %d: %s: %s", line, name,
				 why);
			return -1;
		}
		arf->has_arrival = 1;
		copy_clean(arf->arrival_date, sizeof(arf->arrival_date), value, strlen(value));
	} else if (!strcasecmp(name, "Original-Mail-From")) {
		copy_address(arf->mail_from, sizeof(arf->mail_from), value);
	} else if (!strcasecmp(name, "Original-Rcpt-To")) {
		if (!arf->n_rcpt_to++)
			copy_address(arf->rcpt_to, sizeof(arf->rcpt_to), value);
	} else if (!strcasecmp(name, "Reported-Domain")) {
		copy_clean(arf->reported_domain, sizeof(arf->reported_domain), value, strlen(value));
	} else if (!strcasecmp(name, "Reporting-MTA")) {
		copy_clean(arf->reporting_mta, sizeof(arf->reporting_mta), value, strlen(value));
	} else if (!strcasecmp(name, "Authentication-Results")) {
		copy_clean(arf->auth_results, sizeof(arf->auth_results), value, strlen(value));
	}
	return 0;
}

static int headers_field(void *ctx, const char *name, const char *value, int line, char *err,
			 size_t errlen)
{
	(void)line;
	(void)err;
	(void)errlen;
	original_header(ctx, name, value, strlen(value));
	return 0;
}

static int check(struct arf_parse *ap, char *err, size_t errlen)
{
	struct sg_arf *arf = ap->arf;
	char rt[64], why[300];

	if (!ap->top_multipart_report) {
		snprintf(err, errlen, "the report's Content-Type is '%.80s', not multipart/report "
			 "(RFC 5965 section 2)", ap->top_type[0] ? ap->top_type : "text/plain (none given)");
		return -1;
	}
	report_type(ap->top_type, rt, sizeof(rt));
	if (strcasecmp(rt, "feedback-report")) {
		snprintf(err, errlen, "the report's Content-Type has report-type=%s, not "
			 "feedback-report (RFC 5965 section 2)", rt[0] ? rt : "(none)");
		return -1;
	}
	if (!ap->fields_index) {
		snprintf(err, errlen, "no message/feedback-report part among the report's %u "
			 "(RFC 5965 section 2: the second part)", ap->parts);
		return -1;
	}
	if (ap->fields.over) {
		snprintf(err, errlen, "the feedback-report part is over %u bytes", SG_ARF_FIELDS_MAX);
		return -1;
	}
	if (sg_fields_parse(ap->fields.p ? ap->fields.p : "", ap->fields.len, 1, feedback_field,
			    arf, NULL, why, sizeof(why))) {
		if (!strncmp(why, "the feedback-report", 19))
			snprintf(err, errlen, "%s", why);
		else
			snprintf(err, errlen, "the feedback-report part, %s", why);
		return -1;
	}
	if (!arf->feedback_type[0]) {
		snprintf(err, errlen, "the feedback-report part has no Feedback-Type field "
			 "(required: RFC 5965 section 3.1)");
		return -1;
	}
	if (!arf->version[0]) {
		snprintf(err, errlen, "the feedback-report part has no Version field "
			 "(required: RFC 5965 section 3.1)");
		return -1;
	}
	if (!arf->user_agent[0])
		note(arf, "no User-Agent (required by RFC 5965)");
	if (ap->fields_parts > 1)
		note(arf, "more than one feedback-report part: the first one read");
	if (ap->headers_index) {
		arf->original = SG_ARF_ORIGINAL_HEADERS;
		if (ap->headers.over)
			note(arf, "the rfc822-headers part was cut");
		sg_fields_parse(ap->headers.p ? ap->headers.p : "", ap->headers.len, 0, headers_field,
				ap, NULL, why, sizeof(why));
	}
	if (arf->original == SG_ARF_ORIGINAL_NONE)
		note(arf, "no copy of the message (third part)");
	return 0;
}

int sg_arf_parse(const char *report, size_t n, struct sg_arf *arf, char *err, size_t errlen)
{
	struct arf_parse ap;
	struct sg_mime *m;
	struct sg_fingerprint fp;
	int ret;

	memset(arf, 0, sizeof(*arf));
	memset(&ap, 0, sizeof(ap));
	ap.arf = arf;
	ap.fields.max = SG_ARF_FIELDS_MAX;
	ap.headers.max = SG_ARF_HEADERS_MAX;
	if (n > SG_ARF_REPORT_MAX) {
		snprintf(err, errlen, "the report is %zu bytes, over the limit of %u", n,
			 SG_ARF_REPORT_MAX);
		return -1;
	}
	if (!n) {
		snprintf(err, errlen, "the report is empty");
		return -1;
	}
	sg_fingerprint_begin(&ap.fp);
	m = sg_mime_new(&callbacks, &ap, NULL);
	if (!m) {
		snprintf(err, errlen, "out of memory for the MIME parser");
		return -1;
	}
	ret = sg_mime_feed(m, report, n) || sg_mime_end(m) ? -1 : 0;
	if (ret)
		snprintf(err, errlen, "out of memory while parsing the report");
	else
		ret = check(&ap, err, errlen);
	if (!ret && arf->original == SG_ARF_ORIGINAL_MESSAGE) {
		sg_fingerprint_end(&ap.fp, &fp);
		if (fp.shingles) {
			arf->body_fp = sg_fingerprint_digest(&fp);
			arf->has_body_fp = 1;
		}
	}
	if (!ret && sg_mime_anomaly_count(m, SG_MIME_ANOM_UNTERMINATED))
		note(arf, "a multipart without its closing boundary");
	sg_mime_free(m);
	free(ap.fields.p);
	free(ap.headers.p);
	return ret;
}
