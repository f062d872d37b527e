/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* scanner.c - a message cut into lines for the engines, and their verdict
 * (see scanner.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "parse.h"
#include "pmetrics.h"
#include "scanner.h"

_Static_assert(SG_MAX_ENGINES == SG_METRIC_ENGINES, "the metrics keep a slot per engine");

int sg_scanner_add(struct sg_scanner *scanner, const struct sg_engine *engine,
		   const void *config)
{
	if (scanner->n == SG_MAX_ENGINES)
		return -1;
	scanner->engines[scanner->n] = engine;
	scanner->configs[scanner->n] = config;
	scanner->n++;
	return 0;
}

void sg_scan_begin(struct sg_scan *scan, const struct sg_scanner *scanner,
		   const struct sg_envelope *env, const struct sg_scan_host *host)
{
	memset(scan, 0, sizeof(*scan));
	scan->scanner = scanner;
	if (host)
		scan->host = *host;
	for (int i = 0; scanner && i < scanner->n; i++) {
		void **session = scan->host.sessions ? &scan->host.sessions[i] : &scan->no_session[i];

		if (scanner->engines[i]->begin(scanner->configs[i], scan, env, session,
					       &scan->state[i]) < 0) {
			/* out of this message: its verdict is the failure action */
			scan->done[i] = 1;
			continue;
		}
		scan->live[i] = 1;
	}
}

/* Is a line engine still looking? Body lines are not even assembled once
 * none is (the headers always are: the Message-ID is among them). */
static int engines_looking(const struct sg_scan *scan)
{
	for (int i = 0; scan->scanner && i < scan->scanner->n; i++)
		if (!scan->done[i] && scan->scanner->engines[i]->line)
			return 1;
	return 0;
}

static void judge_line(struct sg_scan *scan)
{
	const struct sg_scanner *sc = scan->scanner;

	scan->line[scan->line_len] = '\0';
	if (!scan->in_body && scan->line_len == 0) {
		scan->in_body = 1;	/* the blank line between headers and body */
		return;
	}
	if (!scan->in_body && !scan->message_id[0] && strncasecmp(scan->line, "Message-ID:", 11) == 0) {
		const char *v = scan->line + 11;

		while (*v == ' ' || *v == '\t')
			v++;
		snprintf(scan->message_id, sizeof(scan->message_id), "%s", v);
	}
	for (int i = 0; sc && i < sc->n; i++)
		if (!scan->done[i] && sc->engines[i]->line)
			scan->done[i] = sc->engines[i]->line(scan->state[i], sc->configs[i], scan->line,
							     scan->line_len, scan->in_body);
}

static void deliver_data(struct sg_scan *scan, const char *data, size_t n)
{
	const struct sg_scanner *sc = scan->scanner;

	for (int i = 0; sc && i < sc->n; i++)
		if (!scan->done[i] && sc->engines[i]->data)
			scan->done[i] = sc->engines[i]->data(scan->state[i], sc->configs[i], data, n);
}

/* The data engines' bytes: runs between stuffed dots, each dot that begins
 * a line taken out (RFC 5321 4.5.2), however the stream is cut. */
static void feed_data(struct sg_scan *scan, const char *p, size_t n)
{
	const char *end = p + n;

	while (p < end) {
		const char *run, *lf;

		if (!scan->data_midline) {
			scan->data_midline = 1;
			if (*p == '.') {
				p++;
				continue;
			}
		}
		run = p;
		for (;;) {
			lf = memchr(p, '\n', (size_t)(end - p));
			if (!lf) {
				p = end;
				break;
			}
			p = lf + 1;
			if (p == end || *p == '.') {
				scan->data_midline = 0;
				break;
			}
		}
		deliver_data(scan, run, (size_t)(p - run));
	}
}

static int data_engines(const struct sg_scan *scan)
{
	for (int i = 0; scan->scanner && i < scan->scanner->n; i++)
		if (!scan->done[i] && scan->scanner->engines[i]->data)
			return 1;
	return 0;
}

static void line_append(struct sg_scan *scan, const char *data, size_t n)
{
	size_t room = SG_SCAN_LINE_MAX - scan->line_len;

	if (n > room) {
		n = room;
		scan->line_overflow = 1;
	}
	memcpy(scan->line + scan->line_len, data, n);
	scan->line_len += n;
}

void sg_scan_feed(struct sg_scan *scan, const char *data, size_t n)
{
	const char *p = data, *end = data + n;

	scan->bytes += n;
	if (data_engines(scan)) {
		if (scan->unstuffed)
			deliver_data(scan, data, n);
		else
			feed_data(scan, data, n);
	}
	while (p < end) {
		const char *lf;

		if (scan->in_body && !engines_looking(scan))
			return;
		lf = memchr(p, '\n', (size_t)(end - p));
		line_append(scan, p, (size_t)((lf ? lf : end) - p));
		if (!lf)
			return;
		if (scan->line_len && scan->line[scan->line_len - 1] == '\r' && !scan->line_overflow)
			scan->line_len--;
		judge_line(scan);
		scan->line_len = 0;
		scan->line_overflow = 0;
		p = lf + 1;
	}
}

static void release(struct sg_scan *scan, int i)
{
	const struct sg_scanner *sc = scan->scanner;

	if (!scan->live[i])
		return;
	scan->live[i] = 0;
	scan->held[i] = 0;
	sc->engines[i]->release(scan->state[i], sc->configs[i]);
	scan->state[i] = NULL;
}

void sg_scan_end(struct sg_scan *scan)
{
	for (int i = 0; scan->scanner && i < scan->scanner->n; i++)
		release(scan, i);
	scan->waiting = 0;
	if (!scan->host.sessions)	/* nobody keeps them past the message */
		sg_scan_session_end(scan->scanner, scan->no_session);
}

void sg_scan_hold(struct sg_scan *scan, const void *state, int on)
{
	for (int i = 0; scan->scanner && i < scan->scanner->n; i++) {
		if (!scan->live[i] || scan->state[i] != state || scan->held[i] == !!on)
			continue;
		scan->held[i] = !!on;
		if (!on && scan->host.wake)
			scan->host.wake(scan->host.owner);
	}
}

void sg_scan_note(struct sg_scan *scan, const char *engine, const char *text)
{
	size_t used = strlen(scan->notes);

	if (used + 3 >= sizeof(scan->notes))
		return;
	snprintf(scan->notes + used, sizeof(scan->notes) - used, "%s%s: %s", used ? "; " : "",
		 engine, text);
}

int sg_scan_held(const struct sg_scan *scan)
{
	for (int i = 0; scan->scanner && i < scan->scanner->n; i++)
		if (scan->held[i])
			return 1;
	return 0;
}

void sg_scan_session_end(const struct sg_scanner *scanner, void **sessions)
{
	for (int i = 0; scanner && sessions && i < scanner->n; i++) {
		if (sessions[i] && scanner->engines[i]->session_end)
			scanner->engines[i]->session_end(sessions[i], scanner->configs[i]);
		sessions[i] = NULL;
	}
}

void sg_scan_failure(const struct sg_scan *scan, struct sg_verdict *v, const char *why)
{
	v->kind = scan->scanner ? scan->scanner->failure_action : SG_TEMPFAIL;
	snprintf(v->reason, sizeof(v->reason), "%s", why);
}

void sg_scan_engine_done(struct sg_scan *scan, const struct sg_verdict *v)
{
	if (!scan->waiting || scan->answered)
		return;
	scan->answer = *v;
	scan->answered = 1;
	if (scan->host.wake)
		scan->host.wake(scan->host.owner);
}

/* The outcome of engine i, given or waited for: 1 to judge the next one,
 * 0 with *v the message's verdict, -1 to wait. */
static int judge(struct sg_scan *scan, int i, struct sg_verdict *v)
{
	const struct sg_scanner *sc = scan->scanner;
	char why[SG_REASON_LEN];
	int step;

	if (scan->waiting) {
		if (!scan->answered)
			return -1;
		*v = scan->answer;
		scan->waiting = scan->answered = 0;
		step = SG_ENGINE_DONE;
		sg_pmetric_engine_latency(i, sg_now_ns() - scan->asked_ns);
	} else if (!scan->live[i]) {
		step = SG_ENGINE_ERROR;	/* it failed at the message's start */
	} else {
		memset(v, 0, sizeof(*v));
		/* waiting from before the call: an answer given from within it
		 * (sg_scan_engine_done) is kept */
		scan->waiting = 1;
		scan->asked_ns = sg_now_ns();
		step = sc->engines[i]->verdict(scan->state[i], sc->configs[i], scan, v);
		if (step == SG_ENGINE_WAIT)
			return scan->answered ? judge(scan, i, v) : -1;
		scan->waiting = scan->answered = 0;
		sg_pmetric_engine_latency(i, sg_now_ns() - scan->asked_ns);
		if (step >= 0 && !sc->engines[i]->reports_health)
			sg_pmetric_engine_health(i, SG_HEALTH_UP);
	}
	if (step < 0 && !sc->engines[i]->reports_health)
		sg_pmetric_engine_health(i, SG_HEALTH_DOWN);
	release(scan, i);
	if (step >= 0 && v->kind != SG_ACCEPT && !v->by[0])
		snprintf(v->by, sizeof(v->by), "%s", sc->engines[i]->name);
	if (step < 0) {
		snprintf(why, sizeof(why), "the %s engine failed", sc->engines[i]->name);
		sg_scan_failure(scan, v, why);
		scan->failed = sc->engines[i]->name;
	}
	return v->kind == SG_ACCEPT ? 1 : 0;
}

int sg_scan_verdict(struct sg_scan *scan, struct sg_verdict *v)
{
	const struct sg_scanner *sc = scan->scanner;

	if (!scan->ended) {
		scan->ended = 1;
		if (scan->line_len && (!scan->in_body || engines_looking(scan)))
			judge_line(scan);	/* a last line without its break */
	}
	for (; sc && scan->judging < sc->n; scan->judging++) {
		int next = judge(scan, scan->judging, v);

		if (next < 0)
			return SG_ENGINE_WAIT;
		if (next == 0) {
			scan->judging = sc->n;
			sg_scan_end(scan);
			return SG_ENGINE_DONE;
		}
	}
	sg_scan_end(scan);
	v->kind = SG_ACCEPT;
	if (scan->failed)
		snprintf(v->reason, sizeof(v->reason), "accepted: the %s engine failed", scan->failed);
	else
		snprintf(v->reason, sizeof(v->reason), "clean");
	return SG_ENGINE_DONE;
}
