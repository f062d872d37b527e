/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * dialogue.c - the dialogues' grammar: a dialogue file and the files it
 * includes, read line by line, each line to its step (run_step), which
 * runs before the next line is read; its check named "FILE:LINE STEP".
 * The set-up lines are taken here; the steps are in sessions.c, peers.c
 * and steps.c.
 *
 * The grammar (also in selftests/relay/README). One step a line; blank
 * lines and lines starting with '#' are ignored. SIDE is vm or mx.
 *
 * Set-up, before the first step:
 *   config KEY = VALUE      a smtpguard.conf setting (sg_config_set)
 *   rules NAME TARGET /PATTERN/FLAGS [ACTION]   a line of the content_rules file
 *   engine answer VERDICT ["REASON"]          answers at once
 *   engine wait DURATION VERDICT ["REASON"]   answers from a loop timer
 *   engine wait inline VERDICT ["REASON"]     answers from within its verdict call
 *   engine wait never                         never answers (scan_timeout applies)
 *   engine fail                               its verdict fails
 *   engine fail-begin                         its begin fails
 *   engine body-match TEXT VERDICT ["REASON"] VERDICT once a body line
 *                                             contains TEXT, else accept; at once
 *   engine slow DURATION                      DURATION of CPU on each body line
 *                                             (also Nus: microseconds), then
 *                                             accept (a costly scan)
 *       (VERDICT: accept, reject or tempfail; engines judge after the
 *       content rules, in the order given)
 *   tls_mode passthrough|strip                the session's policy (no terminate)
 * Anywhere:
 *   timeout DURATION        how long the following steps wait (default 2s)
 *   include FILE            the steps of DIR/FILE (a *.steps file: a common start)
 *   repeat N STEP           STEP N times over, one check ("repeat 63 mx< NOOP")
 * Peers:
 *   SIDE> TEXT              SIDE sends TEXT and CRLF ("SIDE>" alone: an empty line)
 *   SIDE>> RAW              SIDE sends RAW, C escapes (\r \n \t \0 \\ \xHH), no CRLF
 *   SIDE blob N [WORD]      SIDE sends N bytes of body lines (WORD repeated), CRLF-ended
 *   SIDE line N [PREFIX]    SIDE sends one line of N bytes, CRLF included: PREFIX
 *                           (C escapes: "NOOP\x20") and then x's
 *   SIDE repeat N RAW       SIDE sends RAW (escapes) N times over, in one write
 *   SIDE< PATTERN           the next line SIDE receives, which must end in CRLF,
 *                           matches the fnmatch(3) glob PATTERN ("[" and "\" are
 *                           special: "\[" for a bracket)
 *   SIDE<< RAW              the next bytes SIDE receives are exactly RAW (escapes)
 *   SIDE< ...               lines SIDE receives may be skipped until its next
 *                           expectation matches (a body the dialogue does not
 *                           spell out; before "closed", whatever came first)
 *   SIDE< nothing [DURATION]   no byte, and no close, within DURATION (100ms)
 *   SIDE< closed            SIDE reads an end (EOF or ECONNRESET), nothing before it
 *   SIDE shutdown           SIDE half-closes (shutdown SHUT_WR), reading on: a
 *                           TCP FIN (the relay reads an end, EPOLLRDHUP)
 *   SIDE close              SIDE reads what it was sent, then closes: on AF_UNIX
 *                           the relay sees its end and a hang-up (EPOLLHUP), as
 *                           of a peer gone for good; what SIDE had not checked
 *                           is an error, as at the dialogue's end
 *   SIDE reset              SIDE closes with bytes unread (SO_LINGER 0): on AF_UNIX
 *                           that is what makes the relay's read fail with
 *                           ECONNRESET, so it waits for an unread byte first
 * Sessions:
 *   session NAME [from ADDRESS]   the steps after it act on session NAME,
 *                           opened if new (from 192.0.2.10 unless ADDRESS,
 *                           IPv4 or IPv6, port 40000 and up), admitted or
 *                           refused at its sender's limit as accept_sessions
 *                           does (refused: no MX). Until the first one, the
 *                           steps act on "main", opened at the first step.
 * The relay:
 *   hold STEP               STEP's send leaves the loop alone (read at "once")
 *   once                    the loop runs one round: what is ready now
 *   mode NAME               the current session's relay mode, as it stands
 *   wait DURATION           the loop runs DURATION
 *   tick DURATION           the worker's tick runs as if DURATION had passed (its
 *                           deadlines: idle, session, dot reply, drain grace);
 *                           needs the worker_expire hook (README)
 *   stop                    worker_stop_sessions: the loop runs within it until
 *                           the dots' replies came or shutdown_timeout passed;
 *                           every session has ended after
 *   after DURATION SIDE> TEXT | SIDE>> RAW   SIDE sends from a timer on the
 *                           worker's loop, DURATION from now (during a stop)
 *   session ended | alive   the relay has ended the current session (it left
 *                           the worker), or not (after what was ready has run)
 *   event TYPE[#N] KEY=GLOB...   the last (or the N-th, from 1) events line of
 *                           TYPE (message, session) has fields KEY whose values
 *                           (a JSON string unquoted, or a number as written)
 *                           match GLOB; KEY="GLOB WITH BLANKS"
 *   events TYPE COUNT       exactly COUNT lines of TYPE were written (the writer
 *                           thread's lag is waited for)
 *   engines begun=N released=M   the test engines' states so far
 * Words reserved after "SIDE<": nothing, closed, "..." ("[c]losed" matches
 * a line "closed").
 *
 * After each step that sends, the loop runs what became ready, so that
 * each step reaches the relay before the next: a batch is one step (>>).
 * A side's received bytes are read only by the steps that check them:
 * what a peer has not read is still in its socket, as on a real network.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "relay_test.h"

/* A step failed: why, into r->why (for its FAIL line); -1. */
int fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---------------------------------------------------- parsing the lines */

const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* The next word, or "quoted words", into out; NULL at the line's end. */
const char *next_token(const char *p, char *out, size_t len)
{
	size_t o = 0;

	p = skip_blanks(p);
	if (!*p)
		return NULL;
	while (*p && *p != ' ' && *p != '\t') {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (o + 1 < len)
					out[o++] = *p;
			if (*p)
				p++;
			continue;
		}
		if (o + 1 < len)
			out[o++] = *p;
		p++;
	}
	out[o] = '\0';
	return p;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* C escapes (\r \n \t \0 \\ \" \xHH) into out; its length, or -1. */
long unescape(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (const char *p = in; *p; p++) {
		char c = *p;

		if (o + 1 >= len)
			return -1;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 'r': c = '\r'; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case '0': c = '\0'; break;
			case '\\': c = '\\'; break;
			case '"': c = '"'; break;
			case 'x':
				if (hex(p[1]) < 0 || hex(p[2]) < 0)
					return -1;	/* two digits, always */
				c = (char)(hex(p[1]) * 16 + hex(p[2]));
				p += 2;
				break;
			default:
				return -1;
			}
		}
		out[o++] = c;
	}
	return (long)o;
}

int duration(struct run *r, const char *text, uint64_t *ns)
{
	char err[256];

	if (sg_parse_duration(text, ns, err, sizeof(err)))
		return fail(r, "syntax: %s", err);
	return 0;
}

static int parse_verdict(struct run *r, const char *p, struct sg_verdict *v)
{
	char word[64], reason[SG_REASON_LEN];

	p = next_token(p, word, sizeof(word));
	if (!p)
		return fail(r, "syntax: a verdict (accept, reject, tempfail) is missing");
	if (!strcmp(word, "accept"))
		v->kind = SG_ACCEPT;
	else if (!strcmp(word, "reject"))
		v->kind = SG_REJECT;
	else if (!strcmp(word, "tempfail"))
		v->kind = SG_TEMPFAIL;
	else
		return fail(r, "syntax: '%s' is not a verdict (accept, reject, tempfail)", word);
	snprintf(v->reason, sizeof(v->reason), "%s", v->kind == SG_ACCEPT ? "clean" :
		 v->kind == SG_REJECT ? "refused by the test engine" :
		 "deferred by the test engine");
	if (next_token(p, reason, sizeof(reason)))
		snprintf(v->reason, sizeof(v->reason), "%s", reason);
	return 0;
}

/* engine KIND ARGS */
static int parse_engine(struct run *r, const char *p)
{
	char kind[64], arg[256];
	struct engine_cfg *e;

	if (r->n_engines == SG_MAX_ENGINES)
		return fail(r, "syntax: more engines than SG_MAX_ENGINES (%d)", SG_MAX_ENGINES);
	e = &r->engines[r->n_engines];
	memset(e, 0, sizeof(*e));
	e->run = r;
	p = next_token(p, kind, sizeof(kind));
	if (!p)
		return fail(r, "syntax: engine answer|wait|fail|fail-begin|body-match|slow ...");
	if (!strcmp(kind, "answer")) {
		e->kind = ENG_ANSWER;
		if (parse_verdict(r, p, &e->verdict))
			return -1;
	} else if (!strcmp(kind, "wait")) {
		p = next_token(p, arg, sizeof(arg));
		if (!p)
			return fail(r, "syntax: engine wait DURATION|inline|never [VERDICT]");
		if (!strcmp(arg, "never")) {
			e->kind = ENG_WAIT_NEVER;
		} else {
			e->kind = strcmp(arg, "inline") ? ENG_WAIT : ENG_WAIT_INLINE;
			if (e->kind == ENG_WAIT && duration(r, arg, &e->delay_ns))
				return -1;
			if (parse_verdict(r, p, &e->verdict))
				return -1;
		}
	} else if (!strcmp(kind, "fail")) {
		e->kind = ENG_FAIL;
	} else if (!strcmp(kind, "fail-begin")) {
		e->kind = ENG_FAIL_BEGIN;
	} else if (!strcmp(kind, "body-match")) {
		e->kind = ENG_BODY_MATCH;
		p = next_token(p, e->match, sizeof(e->match));
		if (!p)
			return fail(r, "syntax: engine body-match TEXT VERDICT [REASON]");
		if (parse_verdict(r, p, &e->verdict))
			return -1;
	} else if (!strcmp(kind, "slow")) {
		char *end;

		e->kind = ENG_SLOW;
		p = next_token(p, arg, sizeof(arg));
		if (!p)
			return fail(r, "syntax: engine slow DURATION|Nus");
		e->delay_ns = strtoull(arg, &end, 10) * 1000;	/* Nus: microseconds */
		if ((strcmp(end, "us") || end == arg) && duration(r, arg, &e->delay_ns))
			return -1;
		if (parse_verdict(r, "accept", &e->verdict))
			return -1;
	} else {
		return fail(r, "syntax: unknown engine '%s' (answer, wait, fail, fail-begin, "
			    "body-match, slow)", kind);
	}
	r->n_engines++;
	return 0;
}

/* ------------------------------------------------------ a line to its step */

/* Set-up lines; 1 when line was one. */
static int setup_line(struct run *r, const char *line, int *err)
{
	char e[512];

	*err = 0;
	if (!strncmp(line, "config ", 7)) {
		if (sg_config_set(&r->cfg, line + 7, r->file, r->lineno, e, sizeof(e)))
			*err = fail(r, "%s", e);
	} else if (!strncmp(line, "rules ", 6)) {
		size_t n = strlen(r->rules);

		if (snprintf(r->rules + n, sizeof(r->rules) - n, "%s\n", line + 6) >=
		    (int)(sizeof(r->rules) - n))
			*err = fail(r, "the rules are longer than %zu bytes", sizeof(r->rules) - 1);
	} else if (!strncmp(line, "engine ", 7)) {
		*err = parse_engine(r, line + 7);
	} else if (!strncmp(line, "tls_mode ", 9)) {
		const char *m = skip_blanks(line + 9);

		if (!strcmp(m, "passthrough"))
			r->tls_mode = SG_TLS_PASSTHROUGH;
		else if (!strcmp(m, "strip"))
			r->tls_mode = SG_TLS_STRIP;
		else
			*err = fail(r, "syntax: tls_mode passthrough|strip (terminate needs TLS "
				    "contexts this test does not make)");
	} else {
		return 0;
	}
	if (!*err && r->started)
		*err = fail(r, "syntax: set-up lines (config, rules, engine, tls_mode) come "
			    "before the first step");
	return 1;
}

/* One step: 1 a check that held, 0 an action done, -1 a failure (r->why). */
static int run_step(struct run *r, const char *line)
{
	char word[64];
	const char *p;
	int err;

	if (!strncmp(line, "timeout ", 8))
		return duration(r, skip_blanks(line + 8), &r->timeout_ns);
	if (setup_line(r, line, &err))
		return err;
	if (r->later_why[0]) {
		fail(r, "%s", r->later_why);
		r->later_why[0] = '\0';
		return -1;
	}
	p = next_token(line, word, sizeof(word));
	if (!strcmp(word, "session") && strcmp(skip_blanks(p), "ended") &&
	    strcmp(skip_blanks(p), "alive"))
		return step_session(r, p);
	/* the dialogue's steps act on one session until it opens others */
	if (!r->n_conns && open_conn(r, "main", "192.0.2.10"))
		return -1;
	if (!strncmp(line, "repeat ", 7)) {
		/* repeat N STEP: one check however many times it runs */
		char n_text[32], why[WHY_LEN];
		long n;
		int ret = 0;

		p = next_token(line + 7, n_text, sizeof(n_text));
		n = p ? atol(n_text) : 0;
		p = p ? skip_blanks(p) : "";
		if (n < 1 || !*p || !strncmp(p, "repeat ", 7) || setup_line(r, p, &err))
			return fail(r, "syntax: repeat N STEP (N >= 1, a step, not a set-up line)");
		for (long i = 0; i < n; i++) {
			int one = run_step(r, p);

			if (one < 0) {
				snprintf(why, sizeof(why), "%s", r->why);
				return fail(r, "repetition %ld of %ld: %s", i + 1, n, why);
			}
			ret |= one;
		}
		return ret;
	}
	if (!strncmp(line, "vm", 2) && strchr("<> ", line[2]))
		return step_side(r, SIDE_VM, line + 2);
	if (!strncmp(line, "mx", 2) && strchr("<> ", line[2]))
		return step_side(r, SIDE_MX, line + 2);
	if (!strcmp(word, "wait"))
		return step_wait(r, p);
	if (!strcmp(word, "hold")) {
		/* the send that follows on this line leaves the loop alone */
		r->hold = 1;
		return run_step(r, skip_blanks(p));
	}
	if (!strcmp(word, "once"))
		return step_once(r);
	if (!strcmp(word, "mode"))
		return step_mode(r, p);
	if (!strcmp(word, "session"))
		return step_session_state(r, p);
	if (!strcmp(word, "tick"))
		return step_tick(r, p);
	if (!strcmp(word, "after"))
		return step_after(r, p);
	if (!strcmp(word, "stop"))
		return step_stop(r);
	if (!strcmp(word, "event"))
		return step_event(r, p);
	if (!strcmp(word, "events"))
		return step_events(r, p);
	if (!strcmp(word, "engines"))
		return step_engines(r, p);
	return fail(r, "syntax: unknown step '%s'", word);
}

/* ----------------------------------------------------------- a dialogue */

/* "FILE:LINE STEP", or "FILE:LINE>INCLUDED:LINE STEP" for an included step. */
static void check_name(char *out, size_t len, const struct run *r, const char *step)
{
	if (r->inc)
		snprintf(out, len, "%s:%d>%s:%d %.100s", r->file, r->lineno, r->inc, r->inc_line,
			 step);
	else
		snprintf(out, len, "%s:%d %.100s", r->file, r->lineno, step);
}

/* The steps of dir/file (the dialogue, or a file it includes); -1 once
 * one failed. */
int run_lines(struct run *r, const char *dir, const char *file, int depth)
{
	char path[1024], text[8192], name[300];
	int *lineno = depth ? &r->inc_line : &r->lineno;
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "r");
	if (!f)
		return fail(r, "cannot open %s: %s", path, strerror(errno));
	*lineno = 0;
	while (ret >= 0 && fgets(text, sizeof(text), f)) {
		const char *line;

		++*lineno;
		text[strcspn(text, "\n")] = '\0';
		line = skip_blanks(text);
		if (!*line || *line == '#')
			continue;
		if (!strncmp(line, "include ", 8)) {
			const char *inc = skip_blanks(line + 8);

			if (depth) {
				ret = fail(r, "syntax: an included file includes no other");
			} else {
				r->inc = inc;
				ret = run_lines(r, dir, inc, 1);
				r->inc = NULL;
			}
			check_name(name, sizeof(name), r, line);
			if (ret < 0 && !r->reported)	/* it could not be opened */
				report(false, name, r->why);
			continue;
		}
		ret = run_step(r, line);
		check_name(name, sizeof(name), r, line);
		if (ret < 0) {
			report(false, name, r->why);
			r->reported = 1;
		} else if (ret > 0) {
			report(true, name, "");
		}
	}
	fclose(f);
	return ret < 0 ? -1 : 0;
}
