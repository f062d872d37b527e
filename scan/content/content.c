/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * content.c - the built-in content engine: the message as it streams,
 * taken apart by the MIME parser (mime.h: headers unfolded and their
 * encoded-words decoded, base64 and quoted-printable text decoded, parts'
 * names and types) and judged by the compiled content rules (matcher.h:
 * headers, decoded text, the hosts of its URLs, attachment names and
 * types). The first reject or tempfail rule that matches refuses the
 * message, named by the rule's name (never its pattern); flag rules are
 * signals, noted and counted, the message not refused. With no rules it
 * still reads every message, for the behaviour signals: the fingerprint
 * of its text (bulk) and who inside the sender wrote it. So what a line
 * engine missed is caught: a body without the blank line, a pattern past
 * a line's first 998 bytes, a folded header, a base64 or quoted-printable
 * body, a NUL byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "content.h"
#include "matcher.h"
#include "mime.h"
#include "pstats.h"

struct content_state {
	const struct sg_rules *rules;	/* NULL: no rules, the signals alone */
	struct sg_fingerprint_ctx fp;
	size_t fp_fed;
	struct sg_scan *scan;
	struct sg_mime *mime;
	struct sg_match_stream *ms;
	int decided;		/* a reject or tempfail rule matched: nothing more */
	int failed;		/* the parser or the matcher ran out of memory */
};

/* Who inside the sender wrote the message, for its behaviour signals:
 * PHP's mail() names the script (mail.add_x_header), and submission
 * servers name the authenticated user in headers of their own. */
static void sub_identity(struct content_state *st, const struct sg_mime_part *part,
			 const struct sg_mime_header *h)
{
	static const char *const user_headers[] = {
		"X-Authenticated-User", "X-Authenticated-Sender", "X-AuthUser", "X-Auth-User",
	};
	char *to = NULL;
	size_t n;

	if (part->depth)
		return;	/* a forwarded message's headers are not the sender's */
	if (h->name_len == 23 && !strncasecmp(h->name, "X-PHP-Originating-Script", 23))
		to = st->scan->sub_script;
	for (size_t i = 0; !to && i < sizeof(user_headers) / sizeof(user_headers[0]); i++)
		if (h->name_len == strlen(user_headers[i]) &&
		    !strncasecmp(h->name, user_headers[i], h->name_len))
			to = st->scan->sub_user;
	if (!to || to[0])
		return;
	/* printable, cut: it becomes a key and appears in logs */
	n = 0;
	for (size_t i = 0; i < h->value_len && n + 1 < 128; i++)
		to[n++] = h->value[i] > 0x20 && h->value[i] < 0x7f ? h->value[i] : '_';
	to[n] = '\0';
}

static void judge(struct content_state *st, int rc)
{
	if (rc == SG_MATCH_DECIDED)
		st->decided = 1;
	else if (rc == SG_MATCH_FAILED)
		st->failed = 1;
}

static void on_header(void *ctx, const struct sg_mime_part *part, const struct sg_mime_header *h)
{
	struct content_state *st = ctx;

	sub_identity(st, part, h);
	if (st->decided || st->failed || !st->ms)
		return;
	/* the decoded value is what a reader sees; the raw one too, when it
	 * differs, so an encoded-word cannot hide what a rule looks for
	 * and a rule written for the raw form still holds */
	judge(st, sg_match_header(st->ms, h->name, h->name_len, h->decoded, h->decoded_len));
	if (!st->decided && !st->failed && h->decoded != h->value)
		judge(st, sg_match_header(st->ms, h->name, h->name_len, h->value, h->value_len));
}

static void on_part_begin(void *ctx, const struct sg_mime_part *part)
{
	struct content_state *st = ctx;
	char type[2 * SG_MIME_TOKEN_MAX + 2];
	int n;

	if (st->decided || st->failed || !st->ms || part->is_multipart || part->is_message)
		return;
	if (!part->filename_len && !part->attachment)
		return;
	n = snprintf(type, sizeof(type), "%s/%s", part->type, part->subtype);
	judge(st, sg_match_attachment(st->ms, part->filename_len ? part->filename : NULL,
				      part->filename_len, type, (size_t)n));
}

static void on_text(void *ctx, const struct sg_mime_part *part, const char *data, size_t n)
{
	struct content_state *st = ctx;

	(void)part;
	if (st->fp_fed < SG_FP_TEXT_MAX) {
		size_t take = n < SG_FP_TEXT_MAX - st->fp_fed ? n : SG_FP_TEXT_MAX - st->fp_fed;

		sg_fingerprint_feed(&st->fp, data, take);
		st->fp_fed += take;
	}
	if (!st->decided && !st->failed && st->ms)
		judge(st, sg_match_body(st->ms, data, n));
}

static void on_part_end(void *ctx, const struct sg_mime_part *part)
{
	struct content_state *st = ctx;

	if (!st->decided && !st->failed && st->ms && part->is_text)
		judge(st, sg_match_body_end(st->ms));
}

static const struct sg_mime_callbacks callbacks = {
	.header = on_header,
	.part_begin = on_part_begin,
	.part_end = on_part_end,
	.text = on_text,
};

static int content_begin(const void *config, struct sg_scan *scan, const struct sg_envelope *env,
			 void **session, void **state)
{
	const struct sg_content_config *cfg = config;
	struct content_state *st = calloc(1, sizeof(*st));

	(void)env;
	(void)session;
	if (!st)
		return SG_ENGINE_ERROR;
	st->rules = cfg->rules;
	st->scan = scan;
	st->ms = cfg->rules ? sg_match_begin(cfg->rules) : NULL;
	st->mime = sg_mime_new(&callbacks, st, NULL);
	sg_fingerprint_begin(&st->fp);
	if ((cfg->rules && !st->ms) || !st->mime) {
		sg_match_end(st->ms);
		sg_mime_free(st->mime);
		free(st);
		return SG_ENGINE_ERROR;
	}
	*state = st;
	return SG_ENGINE_DONE;
}

static int content_data(void *state, const void *config, const char *data, size_t n)
{
	struct content_state *st = state;

	(void)config;
	/* on after a decision: the fingerprint and who wrote it are the
	 * behaviour signals', refused message or not */
	if (!st->failed && sg_mime_feed(st->mime, data, n) < 0)
		st->failed = 1;
	return st->failed;
}

static int content_verdict(void *state, const void *config, struct sg_scan *scan,
			   struct sg_verdict *v)
{
	struct content_state *st = state;
	const struct sg_rule_hit *hit;

	(void)config;
	if (!st->failed && sg_mime_end(st->mime) < 0)
		st->failed = 1;
	sg_fingerprint_end(&st->fp, &scan->fingerprint);
	scan->has_fingerprint = !st->failed;
	if (st->failed)
		return SG_ENGINE_ERROR;
	if (!st->ms) {
		v->kind = SG_ACCEPT;
		snprintf(v->reason, sizeof(v->reason), "clean");
		return SG_ENGINE_DONE;
	}
	hit = sg_match_result(st->ms);
	if (hit->failed)
		return SG_ENGINE_ERROR;
	if (hit->flagged_count) {
		char names[160] = "";
		size_t used = 0;

		for (unsigned int i = 0; i < hit->flagged_count && i < SG_MATCH_FLAGGED_MAX; i++)
			used += (size_t)snprintf(names + used, used < sizeof(names) ?
						 sizeof(names) - used : 0, "%s%s", i ? "," : "",
						 hit->flagged[i]->name);
		sg_scan_note(scan, "content rules flagged", names);
		scan->flagged = 1;
		sg_pstat_add(SG_PSTAT_CONTENT_FLAGGED, 1);
	}
	if (!hit->decided) {
		v->kind = SG_ACCEPT;
		snprintf(v->reason, sizeof(v->reason), "clean");
		return SG_ENGINE_DONE;
	}
	sg_pstat_add(SG_PSTAT_CONTENT_REFUSED, 1);
	v->kind = hit->decided->action == SG_RULE_TEMPFAIL ? SG_TEMPFAIL : SG_REJECT;
	snprintf(v->reason, sizeof(v->reason), "matches the content rule %s", hit->decided->name);
	snprintf(v->by, sizeof(v->by), "content rules");
	return SG_ENGINE_DONE;
}

static void content_release(void *state, const void *config)
{
	struct content_state *st = state;

	(void)config;
	sg_mime_free(st->mime);
	sg_match_end(st->ms);
	free(st);
}

const struct sg_engine sg_content_engine = {
	.name = "content",
	.begin = content_begin,
	.data = content_data,
	.verdict = content_verdict,
	.release = content_release,
};
