/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * milter_internal.h - what the milter client's two halves share: the
 * connection (milter.c: socket, lockstep, timeouts) and the message
 * (milter_message.c: what is sent, what the replies mean). Not for use
 * outside the milter client.
 */
#ifndef SMTPGUARD_MILTER_INTERNAL_H
#define SMTPGUARD_MILTER_INTERNAL_H

#include <stdarg.h>
#include "loop.h"
#include "milter.h"
#include "milter_proto.h"

enum conn_state {
	CONN_CONNECTING = 0,
	CONN_NEGOTIATING,	/* connected; the option negotiation sent */
	CONN_READY,
	CONN_BROKEN,		/* closed after a fault: the next message opens another */
};

struct milter_msg;

struct milter_conn {
	const struct sg_milter_config *cfg;
	struct sg_loop *loop;
	int fd;
	struct sg_watch watch;
	struct sg_timer timer;		/* the connect, or the awaited reply */
	enum conn_state state;
	uint32_t version, protocol, actions;	/* negotiated */
	struct sg_milter_decoder dec;
	char *storage;
	size_t storage_size;
	struct sg_milter_buf out;
	size_t out_sent;
	/* the event whose reply is awaited; SG_MILTER_EV_COUNT: none */
	enum sg_milter_event awaiting;
	uint64_t awaited_since_ns;
	int greeted;			/* connect and helo went: once a session */
	int mid_message;		/* a MAIL went, its end did not: abort before the next */
	int session_decided;		/* the milter answered connect or helo for the session */
	struct sg_verdict session_verdict;
	struct milter_msg *msg;		/* the message being judged, if any */
	uint64_t messages;		/* begun on this connection */
	uint64_t awaiting_seq;		/* the message the awaited reply is for */
	char error[160];		/* why it broke */
};

/* Counts one (atomically). */
void milter_count(const struct sg_milter_config *cfg, uint64_t *counter);

struct milter_conn *conn_open(const struct sg_milter_config *cfg, struct sg_loop *loop);
void conn_close(struct milter_conn *c);
/* The connection breaks: closed, counted, logged; its message (if any)
 * gets milter_default_action. */
void conn_fail(struct milter_conn *c, enum sg_milter_fault fault, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Sends what is queued in c->out; the reply to ev is then awaited within
 * timeout_ns (ev SG_MILTER_EV_COUNT: no reply is due). -1: it broke. */
int conn_send(struct milter_conn *c, enum sg_milter_event ev, uint64_t timeout_ns);

/* milter_message.c: the connection's calls into its message. */
void message_pump(struct milter_msg *m);
void message_reply(struct milter_conn *c, const struct sg_milter_reply *r);
void message_failed(struct milter_msg *m, const char *why);
const char *milter_event_name(enum sg_milter_event ev);

#endif
