/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* scanner.c - a message cut into lines for the engines, and their verdict
 * (see scanner.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "scanner.h"

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
		   const struct sg_envelope *env)
{
	memset(scan, 0, offsetof(struct sg_scan, state));
	scan->scanner = scanner;
	for (int i = 0; scanner && i < scanner->n; i++) {
		memset(scan->state[i], 0, SG_ENGINE_STATE);
		scanner->engines[i]->begin(scan->state[i], scanner->configs[i], env);
	}
}

/* Is an engine still looking? Body lines are not even assembled once none
 * is (the headers always are: the Message-ID is among them). */
static int engines_looking(const struct sg_scan *scan)
{
	for (int i = 0; scan->scanner && i < scan->scanner->n; i++)
		if (!scan->done[i])
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
		if (!scan->done[i])
			scan->done[i] = sc->engines[i]->line(scan->state[i], sc->configs[i], scan->line,
							     scan->line_len, scan->in_body);
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

enum sg_verdict_kind sg_scan_verdict(struct sg_scan *scan, char *reason, size_t len)
{
	const struct sg_scanner *sc = scan->scanner;

	if (scan->line_len && (!scan->in_body || engines_looking(scan)))
		judge_line(scan);	/* a last line without its break */
	for (int i = 0; sc && i < sc->n; i++) {
		enum sg_verdict_kind v = sc->engines[i]->verdict(scan->state[i], sc->configs[i],
								reason, len);

		if (v != SG_ACCEPT)
			return v;
	}
	snprintf(reason, len, "clean");
	return SG_ACCEPT;
}
