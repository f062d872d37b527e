/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * relay.c - the SMTP relay of one session (see relay.h): each time the
 * worker wakes it, it reads what the sockets have, lets the MX's replies
 * and the VM's commands and body move by the rules of SMTP
 * (relay_replies.c, relay_commands.c, relay_data.c), hands over to the
 * handshakes (starttls.c) or the tunnel (tunnel.c), and writes what it can.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include "log.h"
#include "relay.h"

void relay_start(struct session *s)
{
	expect_reply(s, SMTP_UNKNOWN, 0);	/* the greeting */
	relay_set_mode(s, RELAY_COMMANDS);
}

/* Passthrough after STARTTLS: what the relay still owes each side goes
 * first (the 220), then the tunnel moves the rest, opaque. */
static enum relay_result tunnel_step(struct session *s, int vm_ready, int mx_ready)
{
	if (!s->tunnel_started) {
		/* Bytes either side sent after STARTTLS and before the other
		 * could have heard its answer are not TLS: they would reach the
		 * peer as if sent inside it (CVE-2011-0411's class). Dropped,
		 * as terminate drops them. */
		for (int from = SIDE_VM; from <= SIDE_MX; from++) {
			struct sg_buf *b = from == SIDE_VM ? &s->vm_in : &s->mx_in;

			if (!b->len)
				continue;
			sg_warn("session %s -> %s: %zu bytes the %s sent after STARTTLS, before "
				"TLS, dropped", s->vm_name, s->mx_name, b->len,
				from == SIDE_VM ? "VM" : "MX");
			b->len = 0;
		}
		/* before the 220 goes out: the sockmap mover needs both peers
		 * quiet */
		if (tunnel_start(s))
			return RELAY_END;
	}
	if (write_from(s, SIDE_VM, &s->vm_out) || write_from(s, SIDE_MX, &s->mx_out))
		return RELAY_END;
	if (s->vm_out.len || s->mx_out.len)
		return RELAY_CONTINUE;
	return tunnel_run(s, vm_ready, mx_ready);
}

/*
 * The VM's side failed (a reset) or can no longer be written to. With a
 * dot at the MX and its reply owed, the session goes on without the VM
 * until that reply comes: the MX may commit the message, and its event
 * must say so. Otherwise the session ends. 0: it goes on.
 */
static int vm_lost(struct session *s)
{
	if (!relay_awaiting_dot_reply(s))
		return -1;
	if (!s->vm_gone)
		sg_debug("session %s -> %s: the VM went away; waiting for the MX's reply to the "
			 "dot", s->vm_name, s->mx_name);
	s->vm_gone = 1;
	s->vm_eof = 1;
	s->vm_in.len = 0;
	s->vm_out.len = 0;
	return 0;
}

/* What a round changed: bytes read or written (the counts only grow), or
 * bytes moved between the buffers. */
struct relay_mark {
	uint64_t moved;
	size_t buffered;
};

static struct relay_mark relay_mark(const struct session *s)
{
	return (struct relay_mark){
		.moved = s->read_bytes[SIDE_VM] + s->read_bytes[SIDE_MX] +
			 s->written_bytes[SIDE_VM] + s->written_bytes[SIDE_MX],
		.buffered = s->vm_in.len + s->mx_in.len + s->vm_out.len + s->mx_out.len,
	};
}

/* Decrypted or buffered bytes a side still has in OpenSSL that the relay
 * could read now (a side read to EAGAIN waits for its socket instead). */
static int tls_unread(const struct session *s, int side, int drained, int eof,
		      const struct sg_buf *in)
{
	return !drained && !eof && buf_space(in) && tls_pending(s, side);
}

enum relay_result relay_run(struct session *s, int vm_ready, int mx_ready)
{
	/* OpenSSL may hold decrypted bytes, or wait to write before it reads */
	int vm_drained = !vm_ready && !tls_pending(s, SIDE_VM) && !s->tls_want_write[SIDE_VM];
	int mx_drained = !mx_ready && !tls_pending(s, SIDE_MX) && !s->tls_want_write[SIDE_MX];

	if (relay_in_handshake(s)) {
		if (tls_step(s) == RELAY_END)
			return RELAY_END;
		if (relay_in_handshake(s) || s->draining)
			return s->draining ? drain_run(s) : RELAY_CONTINUE;
		/* TLS is up: records may have come with the last flight */
		vm_drained = mx_drained = 0;
	}
	if (s->mode == RELAY_TUNNEL && !s->draining)
		return tunnel_step(s, vm_ready, mx_ready);
	for (int round = 0; round < 64 && !s->draining; round++) {
		/* not the buffers' lengths alone: a round that read as much as
		 * it wrote leaves them as they were */
		struct relay_mark before = relay_mark(s), after;
		int vm_eof = s->vm_eof, mx_eof = s->mx_eof;

		if (read_into(s, SIDE_VM, &s->vm_in, &s->vm_eof, &vm_drained) && vm_lost(s))
			return RELAY_END;
		if (s->vm_eof && !vm_eof && !s->greeted && !s->commands && !s->vm_in.len) {
			/* a tarpitting MX's victim: its event says so */
			s->vm_left_ungreeted = 1;
			snprintf(s->end_detail, sizeof(s->end_detail),
				 "the VM closed before the MX's greeting");
		}
		if (!s->mx_gone && read_into(s, SIDE_MX, &s->mx_in, &s->mx_eof, &mx_drained))
			return RELAY_END;
		process_mx(s);
		process_vm(s);
		process_mx(s);	/* local replies queued by the VM's lines */
		/* STARTTLS was answered: the tunnel or the handshakes take over,
		 * before anything more is written (the sockmap mover puts the
		 * sockets in its map before the VM hears the 220) */
		if (s->mode == RELAY_TUNNEL || relay_in_handshake(s))
			return relay_run(s, 1, 1);
		if (s->vm_gone)
			s->vm_out.len = 0;	/* replies nobody reads */
		if (write_from(s, SIDE_VM, &s->vm_out) && vm_lost(s))
			return RELAY_END;
		if (!s->mx_gone && write_from(s, SIDE_MX, &s->mx_out)) {
			if (s->io[SIDE_MX] != &sg_io_plain)
				return RELAY_END;
			s->mx_errno = errno ? errno : EPIPE;
			s->mx_eof = 1;
			s->mx_out.len = 0;
		}
		if (s->close_after_flush && !s->vm_out.len && nothing_owed(s))
			begin_drain(s);
		/* the VM went away: mid-DATA the MX never sees the dot (the
		 * upstream is reset); otherwise once the MX has answered all */
		if (s->vm_eof && (s->mode == RELAY_BODY || s->mode == RELAY_VERDICT ||
				  (!s->mx_out.len && !s->pend_count)))
			return RELAY_END;
		if (s->mx_eof && !s->mx_gone && !s->mx_in.len && !s->vm_out.len)
			mx_ended(s);
		after = relay_mark(s);
		if (before.moved == after.moved && before.buffered == after.buffered &&
		    vm_eof == s->vm_eof && mx_eof == s->mx_eof)
			break;
	}
	if (s->draining)
		return drain_run(s);
	/* a side not read to EAGAIN (its buffer was full, or the rounds ran
	 * out) may have left bytes inside OpenSSL, which no epoll event
	 * announces: a wake-up reads them */
	if ((tls_unread(s, SIDE_VM, vm_drained, s->vm_eof, &s->vm_in) ||
	     tls_unread(s, SIDE_MX, mx_drained, s->mx_eof, &s->mx_in)) && !sg_timer_armed(&s->wake))
		sg_loop_timer_in(s->loop, &s->wake, 0);
	return RELAY_CONTINUE;
}

uint32_t relay_interest(const struct session *s, int side)
{
	uint32_t ev = 0;

	if (relay_in_handshake(s))
		return s->fd[side] >= 0 ? handshake_interest(s, side) : 0;
	if (s->mode == RELAY_TUNNEL && !s->draining) {
		if (side == SIDE_VM && s->vm_out.len)
			return EPOLLOUT;
		if (side == SIDE_MX && s->mx_out.len)
			return EPOLLOUT;
		if (s->vm_out.len || s->mx_out.len)
			return 0;
		return tunnel_interest(s, side);
	}
	if (side == SIDE_VM) {
		if (s->vm_gone)
			return 0;
		if (!s->vm_eof && (s->draining || buf_space(&s->vm_in)))
			ev |= EPOLLIN | EPOLLRDHUP;
		if (s->vm_out.len || s->tls_want_write[SIDE_VM])
			ev |= EPOLLOUT;
	} else if (!s->mx_gone) {
		if (!s->mx_eof && (s->draining || buf_space(&s->mx_in)))
			ev |= EPOLLIN | EPOLLRDHUP;
		if ((s->mx_out.len || s->tls_want_write[SIDE_MX]) && !s->draining)
			ev |= EPOLLOUT;
	}
	return ev;
}
