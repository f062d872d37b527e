/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * sessions.c - the worker a dialogue runs (rig.h), as its set-up lines
 * made it, and its sessions: opened as listener.c's accept_sessions would
 * ("session NAME [from ADDRESS]", or "main" at the first step), seen to
 * end ("session ended|alive"), and the worker's loop, run between steps
 * (settle: what is ready) and within them (pump: a slice while a step
 * waits), noting which sessions ended. relay_state says where the relay
 * stands, for a failure's reason.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "relay_test.h"

/* ------------------------------------------------------ the event loop */

/* Sessions that have left the worker have ended (their memory may be a
 * spare now, never touched again); called after anything that runs the
 * loop, and before a new session takes a spare. */
void note_end(struct run *r)
{
	for (int i = 0; i < r->n_conns; i++) {
		struct conn *c = &r->conn[i];

		if (!c->ended && !rig_live(&r->rig, c->s)) {
			c->ended = 1;
			c->s = NULL;
		}
	}
	session_reap(&r->rig.w);
}

int pump(struct run *r, uint64_t max_wait_ns)
{
	int n = sg_loop_run_once(r->rig.w.loop, max_wait_ns);

	note_end(r);
	return n;
}

/* Runs what is ready now (sockets, timers due), until nothing is. -1: the
 * relay kept its loop busy with nothing to show for it. */
int settle(struct run *r)
{
	for (int i = 0; i < SETTLE_LIMIT; i++)
		if (pump(r, 0) <= 0)
			return 0;
	return fail(r, "the loop still had work after %d rounds: the relay keeps waking "
		    "itself (a busy loop)", SETTLE_LIMIT);
}

void pump_for(struct run *r, uint64_t ns)
{
	uint64_t deadline = sg_now_ns() + ns;

	for (uint64_t now = sg_now_ns(); now < deadline; now = sg_now_ns())
		pump(r, deadline - now < PUMP_SLICE_NS ? deadline - now : PUMP_SLICE_NS);
	settle(r);
}

static const char *mode_name(enum relay_mode m)
{
	static const char *const names[] = { "COMMANDS", "WAIT", "AUTH_LINE", "BODY", "VERDICT",
					     "TUNNEL", "REFUSED" };

	return (unsigned)m < sizeof(names) / sizeof(names[0]) ? names[m] : "?";
}

/* The relay's state, for a failure's reason. */
void relay_state(struct run *r, char *out, size_t len)
{
	const struct session *s = r->c ? r->c->s : NULL;

	if (!s) {
		snprintf(out, len, "[the session%s%s has ended]", r->n_conns > 1 ? " " : "",
			 r->n_conns > 1 ? r->c->name : "");
		return;
	}
	snprintf(out, len, "[relay%s%s: mode %s, %d replies owed, vm_in %zu mx_out %zu mx_in %zu "
		 "vm_out %zu bytes%s%s%s%s%s]", r->n_conns > 1 ? " of " : "",
		 r->n_conns > 1 ? r->c->name : "", mode_name(s->mode), s->pend_count, s->vm_in.len,
		 s->mx_out.len, s->mx_in.len, s->vm_out.len, s->vm_eof ? ", VM ended" : "",
		 s->mx_eof ? ", MX ended" : "", s->mx_gone ? ", upstream aborted" : "",
		 s->draining ? ", draining" : "", s->close_after_flush ? ", closing" : "");
}

/* ------------------------------------------------------------ the session */

/* The worker, as the dialogue's set-up lines made it: its configuration,
 * content rules and engines. */
static int start_rig(struct run *r)
{
	char err[512];

	r->started = 1;
	if (rig_start(&r->rig, &r->cfg, r->rules, r->file, err, sizeof(err)))
		return fail(r, "%s", err);
	for (int i = 0; i < r->n_engines; i++)
		sg_scanner_add(&r->rig.proxy.generation->scanner, &test_engines[r->engines[i].kind],
			       &r->engines[i]);
	return 0;
}

/* A new session, the current one: from vm_ip (port 40000 and up, one a
 * session) to the MX, admitted as listener.c's accept_sessions would
 * (the MX's greeting is its first reply owed), or refused at its sender's
 * session limit (it has no MX then). */
int open_conn(struct run *r, const char *name, const char *vm_ip)
{
	struct conn *c;
	char err[512];
	int fds[2], ret;

	if (!r->started && start_rig(r))
		return -1;
	if (r->n_conns == MAX_CONNS)
		return fail(r, "syntax: more than %d sessions in one dialogue", MAX_CONNS);
	note_end(r);	/* before session_alloc takes an ended one's memory */
	c = &r->conn[r->n_conns];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->vm_ip, sizeof(c->vm_ip), "%s", vm_ip);
	c->peer[SIDE_VM] = (struct peer){ .name = "VM", .fd = -1 };
	c->peer[SIDE_MX] = (struct peer){ .name = "MX", .fd = -1 };
	ret = rig_session(&r->rig, vm_ip, 40000 + r->n_conns, r->tls_mode, fds, &c->s, err,
			  sizeof(err));
	if (ret < 0)
		return fail(r, "%s", err);
	r->n_conns++;
	r->c = c;
	c->admitted = ret == 0;
	c->peer[SIDE_VM].fd = fds[SIDE_VM];
	c->peer[SIDE_MX].fd = fds[SIDE_MX];
	note_end(r);
	return settle(r);
}

/* session NAME [from ADDRESS]: to the session NAME, opened if new. */
int step_session(struct run *r, const char *p)
{
	char name[64], word[64], ip[64] = "192.0.2.10";
	int from = 0;

	p = next_token(p, name, sizeof(name));
	if (!p)
		return fail(r, "syntax: session NAME [from ADDRESS] | session ended | session alive");
	if ((p = next_token(p, word, sizeof(word))) != NULL) {
		if (strcmp(word, "from") || !(p = next_token(p, ip, sizeof(ip))) ||
		    next_token(p, word, sizeof(word)))
			return fail(r, "syntax: session NAME [from ADDRESS]");
		from = 1;
	}
	for (int i = 0; i < r->n_conns; i++) {
		if (strcmp(r->conn[i].name, name))
			continue;
		if (from && strcmp(r->conn[i].vm_ip, ip))
			return fail(r, "syntax: session %s is from %s already", name,
				    r->conn[i].vm_ip);
		r->c = &r->conn[i];
		return 0;
	}
	if (strlen(name) >= sizeof(r->conn[0].name))
		return fail(r, "syntax: a session's name is at most %zu characters",
			    sizeof(r->conn[0].name) - 1);
	return open_conn(r, name, ip);
}

/* The current session has ended, or ns passed. */
static int wait_ended(struct run *r, uint64_t ns)
{
	uint64_t deadline = sg_now_ns() + ns;

	settle(r);
	while (!r->c->ended && sg_now_ns() < deadline)
		pump(r, PUMP_SLICE_NS);
	return r->c->ended;
}

/* Every session has ended, or ns passed. */
int wait_all_ended(struct run *r, uint64_t ns)
{
	uint64_t deadline = sg_now_ns() + ns;

	settle(r);
	while (r->rig.w.sessions && sg_now_ns() < deadline)
		pump(r, PUMP_SLICE_NS);
	return !r->rig.w.sessions;
}

/* session ended | alive: the relay has ended the current session, or not */
int step_session_state(struct run *r, const char *p)
{
	char st[300];

	p = skip_blanks(p);
	if (!strcmp(p, "ended")) {
		if (wait_ended(r, r->timeout_ns))
			return 1;
		relay_state(r, st, sizeof(st));
		return fail(r, "the session is still running after %llums %s",
			    (unsigned long long)(r->timeout_ns / MS), st);
	}
	if (!strcmp(p, "alive")) {
		if (settle(r))
			return -1;
		return r->c->ended ? fail(r, "the session has ended") : 1;
	}
	return fail(r, "syntax: session ended|alive");
}

int step_once(struct run *r)
{
	pump(r, 0);
	return 0;
}

int step_mode(struct run *r, const char *p)
{
	const struct session *s = r->c ? r->c->s : NULL;
	char st[300];

	p = skip_blanks(p);
	if (!*p)
		return fail(r, "syntax: mode NAME (COMMANDS, WAIT, BODY, VERDICT, ...)");
	if (!s)
		return fail(r, "the session has ended: it has no mode");
	if (!strcmp(mode_name(s->mode), p))
		return 1;
	relay_state(r, st, sizeof(st));
	return fail(r, "the relay is in %s, not %s %s", mode_name(s->mode), p, st);
}
