/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * relay.h - the SMTP relay of one session, as the worker drives it, and
 * what the relay's files share among themselves.
 *
 *   relay.c           one run: read, move, write; the sockets' interest
 *   relay_replies.c   the MX's replies, in the order of the commands
 *   relay_commands.c  the VM's commands, the limits, the envelope
 *   relay_data.c      the body streamed, scanned, the dot withheld
 *   replies.c         the queue of replies the VM is owed
 *   starttls.c        terminate: the two handshakes
 *   tunnel.c          passthrough: opaque bytes after STARTTLS
 *   drain.c           the end: upstream aborted, the VM told, peers close
 *   io.c              plain and TLS reads and writes of the buffers
 */
#ifndef SMTPGUARD_RELAY_H
#define SMTPGUARD_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include "feedback.h"
#include "session.h"

enum relay_result {
	RELAY_CONTINUE = 0,
	RELAY_END,
};

/* The session is connected both ways: the MX's greeting is the first reply
 * the VM is owed. */
void relay_start(struct session *s);
/* Reads what the sockets have (only those the loop called ready), moves it
 * by the rules of SMTP, writes what it can. */
enum relay_result relay_run(struct session *s, int vm_ready, int mx_ready);
/* Ends the session on the relay's own initiative (a timeout, an unreachable
 * MX): the upstream is reset, the VM gets reply (with its CRLF), then the
 * session drains. */
void relay_close(struct session *s, const char *reply);
/* The final dot is out and the MX has not answered it: the message may be
 * being committed, so no timeout but the MX's own (RFC 5321's 10 minutes)
 * may end the session now, or the VM would send it again. */
int relay_awaiting_dot_reply(const struct session *s);
/* When the oldest dot still owed its reply went out; 0: none is. */
uint64_t relay_dot_sent_ns(const struct session *s);
/* The message's body arrives slower than smtp_min_data_rate. */
int relay_body_too_slow(const struct session *s, uint64_t now);
#define SG_DOT_REPLY_TIMEOUT_NS (600ULL * 1000000000ULL)
/* The epoll interest of each side from the buffers' state. */
uint32_t relay_interest(const struct session *s, int side);
/* Whether a TLS handshake is under way (tls_deadline_ns applies). */
int relay_in_handshake(const struct session *s);
/* The handshake under way is past its deadline: the VM is told so where it
 * can still read SMTP. Returns 1 when the session is to end at once. */
int relay_tls_timeout(struct session *s);

/* tunnel.c: passthrough after STARTTLS */
int tunnel_start(struct session *s);
/* The worker's tick: a sockmap tunnel whose bytes stopped moving is woken,
 * and ended (logged) when it stays stuck. Returns 1 when it is to end. */
int tunnel_watchdog(struct session *s, uint64_t now);
enum relay_result tunnel_run(struct session *s, int vm_ready, int mx_ready);
uint32_t tunnel_interest(const struct session *s, int side);
void tunnel_release(struct session *s);
/* What the relay had read of `from` before the tunnel, out to the other
 * side (from userspace, whatever the mover); -1 on a send error. */
int tunnel_flush(struct session *s, int from);

/* Between the relay's files. */

/* io.c: reads while there is room, until the side would block (*drained)
 * or ends (*eof); -1 on an error that ends the session. */
int read_into(struct session *s, int side, struct sg_buf *b, int *eof, int *drained);
/* Writes what b holds until the side would block; -1 on an error. */
int write_from(struct session *s, int side, struct sg_buf *b);
/* OpenSSL's outcome of a step as errno: EAGAIN when it waits for the
 * socket (tls_want_write says which way), EPROTO with tls_error set. */
int tls_failed(struct session *s, int side, int ret);

/* replies.c */
struct pending *expect_reply(struct session *s, enum smtp_verb verb, int data_end);
/* A reply of the relay's own (no CRLF in fmt), given to the VM in its turn. */
void local_reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct pending *pending_head(struct session *s);
void pending_pop(struct session *s);
/* The relay's own replies at the head of the queue, out to vm_out. */
void emit_local_replies(struct session *s);
/* Every reply the VM is owed went out, or can no longer come. */
int nothing_owed(struct session *s);

/* relay_replies.c */
void process_mx(struct session *s);

/* relay_commands.c */
void process_vm(struct session *s);

/* relay_data.c */
void process_body(struct session *s);
/* A message's reference id ("SG" and 16 hex digits) into buf. */
void new_reference(char *buf, size_t len);
/* The transaction's body begins (the MX's 354): a reference id, and the
 * engines told its envelope. */
void body_begin(struct session *s, struct sg_tx *tx);
/* smtpguard refuses the message: the upstream aborted, the event and the
 * feedback written, the VM told code (e.g. "550 5.7.1") and why; the log
 * and the event also who refused it (by: an engine; NULL: the relay). */
/* reason: the class the metrics count it in (enum sg_preason) */
void refuse_message(struct session *s, const char *code, const char *why, const char *by,
		    int reason);

/* transaction.c */
/* A free transaction, TX_OPENING with a new id; NULL when both are in use. */
struct sg_tx *tx_new(struct session *s);
/* The transaction a reply concerns; NULL when it has ended since. */
struct sg_tx *tx_find(struct session *s, uint32_t id);
/* A transaction the MX opened that ends with no event of its own (its
 * body never went, or never ended: a RSET after refused recipients, a lost
 * connection) gets one, verdict "not_sent", with the MX's last refusal. */
void tx_end(struct session *s, struct sg_tx *tx);
/* A RCPT relayed under tx: counted, its domain noted for the reply p. */
void tx_rcpt_asked(struct sg_tx *tx, const char *line, size_t len, size_t arg_off,
		   struct pending *p);
/* The MX accepted the RCPT of p. */
void tx_rcpt_accepted(struct sg_tx *tx, const struct pending *p);
/* The message event of tx. */
void tx_event(struct session *s, struct sg_tx *tx, const char *verdict,
	      const char *reason, const char *by, const char *mx_reply);
/* The message's verdict counted for the metrics (verdict as tx_event's;
 * reason_class: enum sg_preason). */
void tx_count_verdict(const char *verdict, int reason_class);
/* The class of an engine's verdict: by whom it came. */
int verdict_reason_class(const struct sg_verdict *v);
/* The session ends: each dot the MX never answered gets its event, with
 * the reply "unknown"; the other transactions end unsent (tx_end). */
void tx_unanswered(struct session *s);
/* The argument of a command line past keyword ("FROM:", or NULL) and the
 * blanks, without its line break; MAIL FROM's sender without brackets. */
void command_arg(const char *line, size_t len, size_t skip, const char *keyword, char *out,
		 size_t outlen);
void mail_sender(const char *line, size_t len, size_t arg_off, char *out, size_t outlen);

/* starttls.c */
/* The MX said 220 to STARTTLS: the proxy becomes its TLS client. */
void begin_mx_handshake(struct session *s);
/* One step of the handshakes. */
enum relay_result tls_step(struct session *s);
/* Decrypted bytes OpenSSL holds: epoll cannot know of them. */
int tls_pending(const struct session *s, int side);
uint32_t handshake_interest(const struct session *s, int side);
/* Sent unbuffered: a handshake's later flights must not wait for an ACK. */
void nodelay(int fd);
/* tls_mx_verify = verify, before a RCPT goes out: an MX no trusted name
 * authenticated for the whole session must be valid for the recipient's
 * domain. 1: refused (a 450 is owed the VM), 0: it may go. */
int tls_rcpt_refused(struct session *s, const char *line, size_t len, size_t arg);

/* drain.c */
/* The upstream goes away without the final dot (a reset): the MX discards
 * the transaction. Nothing more is sent to it. */
void abort_upstream(struct session *s);
void begin_drain(struct session *s);
enum relay_result drain_run(struct session *s);
/* The MX's side ended and all it said reached the VM: the VM hears why. */
void mx_ended(struct session *s);

#endif
