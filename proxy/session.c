/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * session.c - a session's life in its worker (see worker.h): its memory,
 * its two sockets in the worker's loop, the relay run when one of them
 * wakes, and its end (the sockets close at once, the memory after the
 * batch of events, its event and feedback written).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <unistd.h>
#include "events.h"
#include "log.h"
#include "parse.h"
#include "pmetrics.h"
#include "worker.h"
#include "signals.h"

#define SG_RECHECK_NS 2000000	/* a sockmap tunnel's end, waiting for the backlog */

static void session_ready(struct sg_watch *watch, uint32_t events);

/* A waiting engine has answered (relay_data.c arms this). */
static void session_woken(struct sg_timer *t)
{
	struct session *s = t->ctx;

	session_run(s->worker, s, 0, 0);
}

/* scan_timeout passed with the dot withheld: the failure action decides. */
static void session_scan_deadline(struct sg_timer *t)
{
	struct session *s = t->ctx;

	s->scan_timed_out = 1;
	session_run(s->worker, s, 0, 0);
}

void session_clear(struct session *s)
{
	struct sg_buf *bufs[] = { &s->vm_in, &s->mx_out, &s->mx_in, &s->vm_out };
	size_t caps[] = { SG_BODY_BUF, SG_BODY_BUF, SG_REPLY_BUF, SG_REPLY_BUF }, off = 0;

	memset(s, 0, offsetof(struct session, pending));
	s->fd[SIDE_VM] = s->fd[SIDE_MX] = -1;
	/* small at first: the scan's cost per byte is not known yet (the
	 * rules, the lines), and a first chunk too slow would hold the worker
	 * before adapt_chunk could halve it; it doubles while fast */
	s->scan_chunk = 1024;
	s->io[SIDE_VM] = s->io[SIDE_MX] = &sg_io_plain;
	for (int i = 0; i < 4; i++) {
		bufs[i]->len = 0;
		bufs[i]->cap = caps[i];
		bufs[i]->data = s->storage + off;
		off += caps[i];
	}
}

/* Bytes the socket has not had acknowledged yet (sent or not). */
static int unsent_bytes(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCOUTQ, &n) ? 1 : n;
}

/* How the session's TLS went: "none" (no STARTTLS), "passthrough" (a
 * tunnel: the content after STARTTLS was not inspected), "terminate",
 * "stripped" (STARTTLS hidden from the VM). */
static const char *tls_outcome(const struct session *s)
{
	if (s->tunnel_started)
		return "passthrough";
	if (s->tls_phase == TLS_ON)
		return "terminate";
	return s->stripped ? "stripped" : "none";
}

static void session_event(const struct session *s)
{
	struct sg_session_event e = {
		.source = s->vm_name, .tenant = s->tenant, .mx = s->mx_name, .helo = s->helo,
		.commands = s->commands, .messages = s->messages, .refused = s->refused,
		.duration_ms = (sg_now_ns() - s->started_ns) / 1000000,
		.end = s->end, .error = s->end_detail,
		.tls = tls_outcome(s), .inspected = !s->tunnel_started,
		/* what the relay read as SMTP; a tunnel's bytes are opaque */
		.read_vm = s->tunnel_started ? s->inspected_bytes[SIDE_VM] : s->read_bytes[SIDE_VM],
		.read_mx = s->tunnel_started ? s->inspected_bytes[SIDE_MX] : s->read_bytes[SIDE_MX],
	};

	if (s->tunnel_started) {
		e.tunnel_mover = sg_tls_mover_name(s->tunnel_mover);
		e.tunnel_from_vm = s->tunnel_bytes[SIDE_VM];
		e.tunnel_from_mx = s->tunnel_bytes[SIDE_MX];
	} else if (s->tls_phase == TLS_ON) {
		e.tls_vm = s->tls_vm;
		e.tls_mx = s->tls_mx;
		e.sni = s->vm_sni;
		e.mx_host = s->mx_host;
		e.resumed = s->tls_resumed;
		e.mx_resumed = s->mx_resumed;
		e.mx_verified = s->mx_verified;
		e.mx_verified_by = s->mx_verified_by;
	}
	sg_event_session(&e);
}

/* The relay's modes are the gauge's first states, in the same order. */
_Static_assert((int)RELAY_COMMANDS == SG_PSESSION_COMMANDS && (int)RELAY_WAIT == SG_PSESSION_WAIT &&
	       (int)RELAY_AUTH_LINE == SG_PSESSION_AUTH && (int)RELAY_BODY == SG_PSESSION_BODY &&
	       (int)RELAY_VERDICT == SG_PSESSION_VERDICT && (int)RELAY_TUNNEL == SG_PSESSION_TUNNEL &&
	       (int)RELAY_REFUSED == SG_PSESSION_REFUSED, "relay modes are gauge states");

void session_gauge(struct session *s, int state)
{
	enum sg_psession from = s->gauge ? (enum sg_psession)(s->gauge - 1) : SG_PSESSION__COUNT;

	sg_pmetric_session(from, (enum sg_psession)state);
	s->gauge = state >= 0 && state < SG_PSESSION__COUNT ? state + 1 : 0;
}

void session_free(struct worker *w, struct session *s)
{
	if (s->closed)
		return;
	session_gauge(s, SG_PSESSION__COUNT);
	tx_unanswered(s);	/* dots the MX never answered: "unknown" */
	/* a VM that gave up before the MX's greeting (a tarpitting MX, its
	 * own greeting timeout) made an attempt too: it has its event */
	if (!s->connecting && (s->commands || s->end || s->vm_left_ungreeted))
		session_event(s);
	if (!s->connecting && (s->commands || s->end))
		sg_feedback_session(s->feedback, &s->vm_addr,
				    s->tunnel_started || s->tls_phase == TLS_ON, !s->tunnel_started);
	if (s->tunnel_started)	/* unread: what is known of it is a signal */
		signals_tls_session(s, s->tunnel_bytes[SIDE_VM] + s->tunnel_bytes[SIDE_MX],
				    sg_now_ns() - s->started_ns);
	tunnel_release(s);
	sg_scan_end(&s->scan);	/* engines still judging let go of the message */
	sg_scan_session_end(s->scanner, s->engine_sessions);
	sg_loop_timer_cancel(w->loop, &s->wake);
	sg_loop_timer_cancel(w->loop, &s->scan_deadline);
	for (int i = 0; i < 2; i++) {
		int peer_closed = i == SIDE_VM ? s->vm_eof : s->mx_eof;
		int reset = 0;

		if (s->fd[i] < 0)
			continue;
		if (!peer_closed && (i == SIDE_MX || unsent_bytes(s->fd[i]) == 0)) {
			/* a reset, not a FIN: no TIME_WAIT of the proxied 4-tuple
			 * stays on the host (see drain.c) */
			struct linger hard = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(s->fd[i], SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
			reset = 1;
		}
		if (s->ssl[i]) {
			if (!reset && s->tls_phase == TLS_ON && !s->tls_fatal[i])
				SSL_shutdown(s->ssl[i]);	/* close_notify, not waited for */
			SSL_free(s->ssl[i]);
			s->ssl[i] = NULL;
		}
		/* close() takes it out of the epoll set (never dup'ed) */
		close(s->fd[i]);
		sg_watch_closed(&s->watch[i]);
		s->fd[i] = -1;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->sender_counted)
		sg_sources_leave(w->proxy->sources, &s->sender);
	s->sender_counted = 0;
	generation_put(s->generation);
	s->generation = NULL;
	s->closed = 1;
	s->prev = NULL;
	s->next = w->closed;
	w->closed = s;
}

void session_reap(struct worker *w)
{
	while (w->closed) {
		struct session *s = w->closed;

		w->closed = s->next;
		if (w->n_spare < SG_MAX_SPARE) {
			s->next = w->spare;
			w->spare = s;
			w->n_spare++;
		} else {
			free(s);
		}
	}
}

/* A session is larger than malloc's mmap threshold would like churned at
 * every connection: ended ones are kept for the next. */
struct session *session_alloc(struct worker *w)
{
	struct session *s = w->spare;

	if (s) {
		w->spare = s->next;
		w->n_spare--;
	} else {
		s = malloc(sizeof(*s));
		if (!s)
			return NULL;
	}
	session_clear(s);
	s->worker = w;
	s->loop = w->loop;
	for (int side = SIDE_VM; side <= SIDE_MX; side++)
		sg_watch_init(&s->watch[side], -1, session_ready, s);
	sg_timer_init(&s->wake, session_woken, s);
	sg_timer_init(&s->scan_deadline, session_scan_deadline, s);
	return s;
}

void session_free_spares(struct worker *w)
{
	while (w->spare) {
		struct session *s = w->spare;

		w->spare = s->next;
		free(s);
	}
	w->n_spare = 0;
}

void session_adopt(struct worker *w, struct session *s)
{
	s->next = w->sessions;
	if (w->sessions)
		w->sessions->prev = s;
	w->sessions = s;
}

/* Each socket's interest from what the relay waits for; the loop makes no
 * system call when it is unchanged (the common case). */
static void session_update(struct worker *w, struct session *s)
{
	if (s->closed)
		return;
	if (s->tunnel_waiting && !sg_timer_armed(&w->recheck))
		sg_loop_timer_in(w->loop, &w->recheck, SG_RECHECK_NS);
	for (int side = SIDE_VM; side <= SIDE_MX; side++) {
		struct sg_watch *watch = &s->watch[side];
		uint32_t want = relay_interest(s, side);

		if (s->fd[side] < 0)
			continue;
		if (watch->fd != s->fd[side])
			sg_watch_init(watch, s->fd[side], session_ready, s);
		/* closed both ways, out of the loop: back only to read what it
		 * still has (each wake-up then moves bytes or reaches its end) */
		if (!watch->registered && !(want & EPOLLIN) && s->unwatched[side])
			continue;
		if (sg_loop_watch(w->loop, watch, want) == 0)
			s->unwatched[side] = 0;
	}
}

void session_tempfail(struct worker *w, struct session *s, const char *why)
{
	char reply[160];

	snprintf(reply, sizeof(reply), "421 4.4.1 smtpguard: the MX is not reachable (%s); "
		 "try again later\r\n", why);
	s->end = "mx_unreachable";
	snprintf(s->end_detail, sizeof(s->end_detail), "%s", why);
	s->connecting = 0;
	relay_close(s, reply);
	session_run(w, s, 1, 0);
}

/* The upstream connect ended: writable alone means it succeeded (a
 * failed one always reports EPOLLERR), so SO_ERROR is asked only then. */
static void session_connected(struct worker *w, struct session *s, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (events & (EPOLLERR | EPOLLHUP)) {
		if (getsockopt(s->fd[SIDE_MX], SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
		session_tempfail(w, s, strerror(err ? err : ECONNRESET));
		return;
	}
	s->connecting = 0;
	relay_start(s);
	session_run(w, s, 1, 1);
}

/* Bytes that moved: what idleness is measured by (a wake-up that moved
 * nothing, an error reported again, is not activity). */
static uint64_t session_progress(const struct session *s)
{
	return s->read_bytes[0] + s->read_bytes[1] + s->written_bytes[0] + s->written_bytes[1] +
	       s->tunnel_bytes[0] + s->tunnel_bytes[1];
}

void session_run(struct worker *w, struct session *s, int vm_ready, int mx_ready)
{
	uint64_t before = session_progress(s);
	enum tls_phase phase = s->tls_phase;

	if (relay_run(s, vm_ready, mx_ready) == RELAY_END) {
		session_free(w, s);
		return;
	}
	/* a handshake's bytes are OpenSSL's: its steps count instead */
	if (session_progress(s) != before || s->tls_phase != phase)
		s->last_active_ns = sg_now_ns();
	session_update(w, s);
}

/* One of the session's sockets woke the loop. */
static void session_ready(struct sg_watch *watch, uint32_t events)
{
	struct session *s = watch->ctx;
	struct worker *w = s->worker;
	int side = watch == &s->watch[SIDE_VM] ? SIDE_VM : SIDE_MX;

	if (s->closed)
		return;
	if (s->connecting) {
		if (side == SIDE_MX && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
			session_connected(w, s, events);
		} else if (side == SIDE_VM && (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
			/* the VM gave up before the MX answered (RDHUP would
			 * otherwise wake the worker until the connect ends) */
			s->vm_eof = !(events & (EPOLLERR | EPOLLHUP));
			session_free(w, s);
		}
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		/*
		 * epoll reports these whatever a socket is armed for, so they
		 * are dealt with at once, never left to fire again: what the
		 * side still had is read and relayed (a reply the VM is owed).
		 * A reset side, or a VM gone both ways from a plain session,
		 * ends it. Otherwise (a tunnel's side closed both ways, bytes
		 * still to move) the socket leaves the loop, and comes back
		 * when the relay wants to read it again (session_update).
		 */
		session_run(w, s, side == SIDE_VM, side == SIDE_MX);
		if (s->closed)
			return;
		if (side == SIDE_VM && s->vm_gone) {
			/* the MX's reply to a dot is still owed */
			sg_loop_unwatch(w->loop, &s->watch[side]);
			s->unwatched[side] = 1;
			return;
		}
		if ((events & EPOLLERR) || (side == SIDE_VM && !s->tunnel_started)) {
			session_free(w, s);
			return;
		}
		sg_loop_unwatch(w->loop, &s->watch[side]);
		s->unwatched[side] = 1;
		session_update(w, s);
		return;
	}
	{
		int ready = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;

		session_run(w, s, side == SIDE_VM && ready, side == SIDE_MX && ready);
	}
}

/* smtpguardd stops: a VM in a plain SMTP session, owed no half-sent reply,
 * hears why (best effort: one non-blocking write) before its connection
 * closes; one mid-DATA reads it after its dot, and tries again later. */
void session_goodbye(struct session *s)
{
	static const char bye[] = "421 4.3.2 smtpguard: shutting down; try again later\r\n";

	s->end = "shutdown";
	if (s->connecting || s->draining || s->tunnel_started || s->tls_phase != TLS_NONE ||
	    s->vm_out.len || s->fd[SIDE_VM] < 0)
		return;
	if (send(s->fd[SIDE_VM], bye, sizeof(bye) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		s->written_bytes[SIDE_VM] += sizeof(bye) - 1;
}
