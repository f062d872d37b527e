/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * session.h - one relayed SMTP session: the VM's socket, the upstream socket
 * to the MX, four bounded buffers, and the relay's state. The worker
 * (proxy.c) owns the sockets and the event loop; the relay (relay.c) moves
 * bytes between the buffers by the rules of SMTP. Memory per session is
 * fixed: this struct, with its four buffers.
 */
#ifndef SMTPGUARD_SESSION_H
#define SMTPGUARD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "config.h"
#include "feedback.h"
#include "scanner.h"
#include "smtp.h"

/* The VM-to-MX direction carries bodies: larger reads and writes mean
 * fewer system calls and larger segments. Replies and commands fit in
 * the smaller ones (both hold the longest line the limits allow, 4000). */
#define SG_BODY_BUF	16384	/* vm_in, mx_out */
#define SG_REPLY_BUF	8192	/* mx_in, vm_out */
#define SG_MAX_PENDING	64	/* commands awaiting a reply (PIPELINING) */
#define SG_DRAIN_GRACE_NS 2000000000ull	/* how long an ended session waits for its peers' FIN */

struct sg_buf {
	size_t len, cap;
	char *data;		/* in the session's storage */
};

enum relay_mode {
	RELAY_COMMANDS = 0,	/* VM lines are commands */
	RELAY_WAIT,		/* a sync point (DATA, STARTTLS, AUTH) awaits its reply */
	RELAY_AUTH_LINE,	/* the next VM line answers a 334 */
	RELAY_BODY,		/* DATA: the body streams to the MX, the dot withheld */
	RELAY_TUNNEL,		/* after STARTTLS: opaque bytes both ways */
	RELAY_REFUSED,		/* a message was refused: no upstream, local replies */
};

/* A reply the VM is owed, in order: the MX's answer to a command, or one
 * of the relay's own (local != NULL). */
struct pending {
	enum smtp_verb verb;
	int data_end;		/* the reply to the final dot */
	uint32_t rcpts;		/* with data_end: the message's accepted recipients */
	char local[160];
	int has_local;
};

struct session;

/*
 * How one side's bytes move, read(2)/send(2)-like (>0, 0 at EOF, -1 with
 * errno, EAGAIN when it would block). Plain sockets now; the TLS modes
 * (terminate: OpenSSL on either side) bring their own, and the relay above
 * stays as it is.
 */
struct sg_io_ops {
	ssize_t (*read)(struct session *s, int side, void *buf, size_t len);
	ssize_t (*write)(struct session *s, int side, const void *buf, size_t len);
};
extern const struct sg_io_ops sg_io_plain;

/* What an epoll event names: a session and which of its sockets. */
struct session_ep {
	struct session *s;
	int side;
};

struct session {
	int fd[2];		/* SIDE_VM, SIDE_MX */
	const struct sg_io_ops *io[2];	/* how each side's bytes move */
	int vm_eof, mx_eof;
	int mx_gone;		/* upstream closed on purpose (a refused message) */
	enum relay_mode mode;
	int pend_head, pend_count;	/* of pending[], below */
	int discard_line;	/* skipping the rest of an over-long line */
	int close_after_flush;	/* end once vm_out is sent */
	int draining;		/* over: waiting for the peers to close first */
	uint64_t drain_deadline_ns;
	uint32_t commands;
	uint32_t rcpts;		/* RCPT commands of this transaction (the limit) */
	uint32_t rcpts_ok;	/* of those, accepted by the MX */
	int body_started;
	struct sg_scan scan;
	char ref[24];		/* the current message's reference id */
	char helo[256];		/* for the events: never the body */
	char mail_from[512];
	char rcpt_domains[512];
	uint32_t messages, refused;
	uint64_t started_ns, last_active_ns;
	const struct sg_config *cfg;
	const struct sg_patterns *patterns;
	struct sg_feedback *feedback;
	struct sg_policy policy;	/* the VM's, looked up once at accept */
	struct sockaddr_storage vm_addr, mx_addr;
	char vm_name[64], mx_name[64];
	/* the worker's bookkeeping */
	int connecting;
	int closed;
	uint64_t connect_deadline_ns;
	struct session *prev, *next;
	struct session_ep ep[2];
	uint32_t armed[2];	/* the epoll events each socket is registered for */
	/* Not cleared for a new session (pending entries are cleared as they
	 * are queued, and a buffer is its len): from here on. */
	struct pending pending[SG_MAX_PENDING];
	struct sg_buf vm_in, mx_out, mx_in, vm_out;
	char storage[2 * SG_BODY_BUF + 2 * SG_REPLY_BUF];
};

/* A new session's memory: the fields before pending[] cleared, the
 * buffers empty. */
void session_clear(struct session *s);

enum relay_result {
	RELAY_CONTINUE = 0,
	RELAY_END,
};

/* The session is connected both ways: the MX's greeting is the first reply
 * the VM is owed. */
void relay_start(struct session *s);
/* Reads what the sockets have (only those epoll called ready), moves it by
 * the rules of SMTP, writes what it can. */
enum relay_result relay_run(struct session *s, int vm_ready, int mx_ready);
/* Ends the session on the relay's own initiative (a timeout, an unreachable
 * MX): the upstream is reset, the VM gets reply (with its CRLF), then the
 * session drains. */
void relay_close(struct session *s, const char *reply);
/* epoll interest of each side from the buffers' state. */
uint32_t relay_interest(const struct session *s, int side);

#endif
