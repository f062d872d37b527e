/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * steps.c - the steps that act on the relay rather than on a peer: the
 * loop runs a while ("wait"), the worker's tick runs as if time had passed
 * ("tick"), the worker stops its sessions ("stop"), a peer sends from a
 * timer on the loop ("after"); and the checks of what the relay wrote and
 * held: its events file's lines ("event", "events", read back with
 * json_field) and the test engines' states ("engines").
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "relay_test.h"

/* ------------------------------------------------------------- the relay */

/* wait DURATION: the loop runs DURATION */
int step_wait(struct run *r, const char *p)
{
	uint64_t ns;

	if (duration(r, skip_blanks(p), &ns))
		return -1;
	pump_for(r, ns);
	return 0;
}

/* tick DURATION: the worker's tick, as if DURATION had passed */
int step_tick(struct run *r, const char *p)
{
	uint64_t ns;

	if (duration(r, skip_blanks(p), &ns))
		return -1;
	worker_expire(&r->rig.w, sg_now_ns() + ns);
	note_end(r);
	return settle(r);
}

/* stop: worker_stop_sessions */
int step_stop(struct run *r)
{
	/* the loop runs within, until the owed replies came or
	 * shutdown_timeout passed; every session has ended after */
	worker_stop_sessions(&r->rig.w);
	note_end(r);
	return settle(r);
}

/* A send from a timer (see "after"). */
static void later_send(struct sg_timer *t)
{
	struct later *l = t->ctx;
	struct peer *p = &l->c->peer[l->side];
	ssize_t n = p->fd < 0 ? -1 : send(p->fd, l->data, l->len, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (n != (ssize_t)l->len && !l->r->later_why[0])
		snprintf(l->r->later_why, sizeof(l->r->later_why), "the %s's send from a timer "
			 "(after) failed: %s", p->name, p->fd < 0 ? "its socket is closed" :
			 n < 0 ? strerror(errno) : "its socket was full");
	free(l->data);
	l->data = NULL;
}

/* after DURATION SIDE> TEXT | SIDE>> RAW: SIDE sends it from a timer on the
 * worker's loop, DURATION from now: whatever runs the loop then (a "stop",
 * a "wait", a step that waits) has it sent meanwhile. */
int step_after(struct run *r, const char *p)
{
	char when[32], raw[4096];
	struct later *l;
	uint64_t ns;
	long n;
	int side;

	p = next_token(p, when, sizeof(when));
	if (!p)
		return fail(r, "syntax: after DURATION SIDE> TEXT | SIDE>> RAW");
	if (duration(r, when, &ns))
		return -1;
	p = skip_blanks(p);
	if (strncmp(p, "vm>", 3) && strncmp(p, "mx>", 3))
		return fail(r, "syntax: after DURATION SIDE> TEXT | SIDE>> RAW");
	side = p[0] == 'v' ? SIDE_VM : SIDE_MX;
	if (p[3] == '>') {
		p += 4;
		if (*p == ' ')
			p++;
		n = unescape(p, raw, sizeof(raw));
		if (n <= 0)
			return fail(r, "syntax: nothing to send, or a bad escape");
	} else {
		p += 3;
		if (*p == ' ')
			p++;
		n = snprintf(raw, sizeof(raw), "%s\r\n", p);
		if (n >= (long)sizeof(raw))
			return fail(r, "syntax: too long");
	}
	if (r->n_later == MAX_LATER)
		return fail(r, "syntax: more than %d sends from a timer in one dialogue", MAX_LATER);
	l = &r->later[r->n_later++];
	*l = (struct later){ .r = r, .c = r->c, .side = side, .len = (size_t)n };
	l->data = malloc((size_t)n);
	if (!l->data)
		return fail(r, "out of memory");
	memcpy(l->data, raw, (size_t)n);
	sg_timer_init(&l->timer, later_send, l);
	if (sg_loop_timer_in(r->rig.w.loop, &l->timer, ns))
		return fail(r, "sg_loop_timer_in: %s", strerror(errno));
	return 0;
}

/* ------------------------------------------------------------ the events */

/* The value of "key": in a JSON line, unquoted (escapes undone), or a
 * number or literal as written; NULL when the line has no such key. */
char *json_field(const char *line, const char *key, char *out, size_t len)
{
	char needle[1100];
	const char *p;
	size_t o = 0;

	snprintf(needle, sizeof(needle), "\"%s\":", key);
	p = strstr(line, needle);
	if (!p)
		return NULL;
	p += strlen(needle);
	if (*p != '"') {
		size_t n = strcspn(p, ",}");

		snprintf(out, len, "%.*s", (int)n, p);
		return out;
	}
	for (p++; *p && *p != '"' && o + 5 < len; p++) {
		if (*p != '\\') {
			out[o++] = *p;
			continue;
		}
		p++;
		switch (*p) {
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u': {
			unsigned int c = 0;

			if (sscanf(p + 1, "%4x", &c) != 1)
				return NULL;
			p += 4;
			if (c < 0x80) {
				out[o++] = (char)c;
			} else if (c < 0x800) {
				out[o++] = (char)(0xc0 | c >> 6);
				out[o++] = (char)(0x80 | (c & 0x3f));
			} else {
				out[o++] = (char)(0xe0 | c >> 12);
				out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
				out[o++] = (char)(0x80 | (c & 0x3f));
			}
			break;
		}
		case '\0':
			return NULL;
		default:
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return out;
}

/* The events file's lines of type ("message", "session"): how many, and
 * the nth (1-based; 0: the last) into line. */
static int events_of(struct run *r, const char *type, int nth, char *line, size_t len)
{
	char buf[8192], prefix[64];
	int count = 0;
	FILE *f = fopen(r->rig.events_path, "r");

	if (!f)
		return 0;
	snprintf(prefix, sizeof(prefix), "{\"event\":\"%s\"", type);
	line[0] = '\0';
	while (fgets(buf, sizeof(buf), f)) {
		if (strncmp(buf, prefix, strlen(prefix)))
			continue;
		count++;
		if (nth == 0 || nth == count) {
			buf[strcspn(buf, "\n")] = '\0';
			snprintf(line, len, "%s", buf);
		}
	}
	fclose(f);
	return count;
}

/* event TYPE[#N] KEY=GLOB... : until it holds, or the timeout. */
int step_event(struct run *r, const char *p)
{
	char type[64], line[8192], tok[1024], *hash;
	uint64_t deadline = sg_now_ns() + r->timeout_ns;
	int nth = 0;

	p = next_token(p, type, sizeof(type));
	if (!p)
		return fail(r, "syntax: event TYPE[#N] KEY=GLOB...");
	hash = strchr(type, '#');
	if (hash) {
		*hash = '\0';
		nth = atoi(hash + 1);
		if (nth < 1)
			return fail(r, "syntax: event TYPE#N counts from 1");
	}
	settle(r);
	for (;;) {
		int count = events_of(r, type, nth, line, sizeof(line));
		const char *q = p;
		char bad[1400] = "";

		if (count && (!nth || count >= nth)) {
			while ((q = next_token(q, tok, sizeof(tok))) != NULL) {
				char *eq = strchr(tok, '='), value[1024];

				if (!eq)
					return fail(r, "syntax: '%s' is not KEY=GLOB", tok);
				*eq = '\0';
				if (!json_field(line, tok, value, sizeof(value))) {
					snprintf(bad, sizeof(bad), "no field \"%.60s\"", tok);
					break;
				}
				if (fnmatch(eq + 1, value, 0)) {
					snprintf(bad, sizeof(bad), "%.60s is \"%.500s\", want \"%.500s\"",
						 tok, value, eq + 1);
					break;
				}
			}
			if (!bad[0])
				return 1;
		} else {
			snprintf(bad, sizeof(bad), "%d %s event(s) written", count, type);
		}
		if (sg_now_ns() > deadline)
			return fail(r, "%s; the line: %s", bad, line[0] ? line : "(none)");
		pump(r, PUMP_SLICE_NS);
	}
}

/* events TYPE COUNT: the writer thread writes the lines a moment after
 * they are made, so fewer are waited for (up to the timeout), and a count
 * reached is read again a little later for a line still on its way. */
int step_events(struct run *r, const char *p)
{
	char type[64], n[32], line[8192];
	uint64_t deadline = sg_now_ns() + r->timeout_ns;
	int count, want;

	p = next_token(p, type, sizeof(type));
	if (!p || !next_token(p, n, sizeof(n)))
		return fail(r, "syntax: events TYPE COUNT");
	want = atoi(n);
	if (settle(r))
		return -1;
	while ((count = events_of(r, type, 0, line, sizeof(line))) < want &&
	       sg_now_ns() < deadline)
		pump(r, PUMP_SLICE_NS);
	if (count == want) {
		pump_for(r, EVENTS_GRACE_NS);
		count = events_of(r, type, 0, line, sizeof(line));
	}
	if (count != want)
		return fail(r, "%d %s event(s) written, want %s; the last: %s", count, type, n,
			    line[0] ? line : "(none)");
	return 1;
}

/* engines begun=N released=M */
int step_engines(struct run *r, const char *p)
{
	char tok[64];
	int want_begun = -1, want_released = -1;

	while ((p = next_token(p, tok, sizeof(tok))) != NULL) {
		if (!strncmp(tok, "begun=", 6))
			want_begun = atoi(tok + 6);
		else if (!strncmp(tok, "released=", 9))
			want_released = atoi(tok + 9);
		else
			return fail(r, "syntax: engines begun=N released=M");
	}
	if (settle(r))
		return -1;
	if ((want_begun >= 0 && r->begun != want_begun) ||
	    (want_released >= 0 && r->released != want_released))
		return fail(r, "%d engine states begun, %d released", r->begun, r->released);
	return 1;
}
