/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * drain.c - a session's end: the upstream aborted (a reset, so nothing the
 * MX could take for the end of a message), the VM told why, then a short
 * wait for the peers to close first.
 *
 * Whoever closes first keeps the 4-tuple in TIME_WAIT, and a TIME_WAIT
 * socket on the host would take the VM's later, unproxied flows of the
 * same 4-tuple: early demux attaches it to their packets and ip_forward
 * drops any packet that has a socket. The VM's connection would stall for
 * the 60 s of TIME_WAIT.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "log.h"
#include "parse.h"
#include "relay.h"

/* The upstream goes away without the final dot: the MX discards the
 * transaction. Nothing more is sent to it. */
void abort_upstream(struct session *s)
{
	if (s->mx_gone)
		return;
	if (s->fd[SIDE_MX] >= 0) {
		struct linger hard = { .l_onoff = 1, .l_linger = 0 };

		/* a reset, not a FIN: nothing the MX could take for an end */
		setsockopt(s->fd[SIDE_MX], SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
		if (s->ssl[SIDE_MX]) {
			SSL_free(s->ssl[SIDE_MX]);
			s->ssl[SIDE_MX] = NULL;
		}
		close(s->fd[SIDE_MX]);	/* also leaves the worker's epoll set */
		sg_watch_closed(&s->watch[SIDE_MX]);
		s->fd[SIDE_MX] = -1;
	}
	s->mx_gone = 1;
	s->mx_out.len = 0;
	s->mx_in.len = 0;
}

void begin_drain(struct session *s)
{
	if (s->draining)
		return;
	s->draining = 1;
	session_gauge(s, SG_PSESSION_DRAINING);
	s->drain_deadline_ns = sg_now_ns() + SG_DRAIN_GRACE_NS;
	s->vm_in.len = 0;
	s->mx_out.len = 0;
}

/*
 * Follows the lines a draining VM sends for a QUIT. An MTA told 421 often
 * says QUIT and waits for an answer; answered 221, it closes first (so no
 * TIME_WAIT of the proxied 4-tuple stays on the host) at once, instead of
 * at the drain's grace. The match: 0 at a line's start, 1-4 letters of
 * QUIT seen, 4 also through trailing blanks, -1 another line.
 */
static void drain_note_quit(struct session *s, const char *buf, size_t n)
{
	static const char quit[] = "quit";
	static const char bye[] = "221 2.0.0 smtpguard: closing the connection\r\n";
	int m = s->drain_quit_match;

	for (size_t i = 0; i < n && !s->drain_quit_answered; i++) {
		char c = buf[i];

		if (c == '\n') {
			if (m == 4 && s->mode != RELAY_TUNNEL && buf_space(&s->vm_out) >= sizeof(bye) - 1) {
				buf_append(&s->vm_out, bye, sizeof(bye) - 1);
				s->drain_quit_answered = 1;
			}
			m = 0;
		} else if (m >= 0 && m < 4) {
			m = (c | 0x20) == quit[m] ? m + 1 : -1;
		} else if (m == 4 && c != ' ' && c != '\r') {
			m = -1;
		}
	}
	s->drain_quit_match = m;
}

/* Reads and drops what a peer still sends, until it would block or ends. */
static int discard_input(struct session *s, int side, int *eof)
{
	char sink[4096];

	/* bounded: a peer that keeps sending must not hold the worker; the
	 * level-triggered epoll comes back for the rest */
	for (int i = 0; i < 16 && !*eof; i++) {
		ssize_t n = s->io[side]->read(s, side, sink, sizeof(sink));

		if (n > 0 && side == SIDE_VM)
			drain_note_quit(s, sink, (size_t)n);
		if (n == 0)
			*eof = 1;
		else if (n < 0 && errno == EAGAIN)
			return 0;
		else if (n < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

enum relay_result drain_run(struct session *s)
{
	if (discard_input(s, SIDE_VM, &s->vm_eof) || write_from(s, SIDE_VM, &s->vm_out))
		return RELAY_END;
	if (!s->mx_gone && discard_input(s, SIDE_MX, &s->mx_eof))
		return RELAY_END;
	if (!s->vm_out.len && s->vm_eof && (s->mx_gone || s->mx_eof))
		return RELAY_END;
	return RELAY_CONTINUE;
}

void relay_close(struct session *s, const char *reply)
{
	size_t n = strlen(reply);

	abort_upstream(s);
	begin_drain(s);
	/* a tunnel's stream is the VM's TLS: no plaintext reply goes in it */
	if (s->mode != RELAY_TUNNEL && buf_space(&s->vm_out) >= n)
		buf_append(&s->vm_out, reply, n);
}

/*
 * The MX's side ended and all it said has reached the VM. Unless its last
 * word was a goodbye (221, 421), the VM hears why in SMTP, at once: a VM
 * mid-DATA or waiting for a reply would otherwise get only a closed
 * connection, after the drain's grace.
 */
void mx_ended(struct session *s)
{
	char reply[200];

	if (s->mx_said_bye && !s->mx_errno) {
		begin_drain(s);
		return;
	}
	if (s->mx_errno) {
		snprintf(reply, sizeof(reply), "421 4.4.2 smtpguard: the connection to the MX "
			 "failed (%s); try again later\r\n", strerror(s->mx_errno));
		s->end = "mx_failed";
		snprintf(s->end_detail, sizeof(s->end_detail), "%s", strerror(s->mx_errno));
	} else {
		snprintf(reply, sizeof(reply), "421 4.4.2 smtpguard: the MX closed the "
			 "connection; try again later\r\n");
		s->end = "mx_closed";
	}
	sg_debug("session %s -> %s: %.*s", s->vm_name, s->mx_name, (int)strlen(reply) - 2, reply);
	relay_close(s, reply);
}
