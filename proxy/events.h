/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * events.h - one JSON line per message and per session, to the file named by
 * events_file (or stdout for "-"): who sent, to which MX, from which HELO
 * and envelope sender, to how many recipients in which domains, the size,
 * the Message-ID, the MX's reply, the verdict and its reason, the reference
 * id, and the digest of the body's fingerprint (a hash, never a byte of the
 * body). `smtpguardctl trace ID` and `complaint` read it back.
 */
#ifndef SMTPGUARD_EVENTS_H
#define SMTPGUARD_EVENTS_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* One message: delivered (the MX's reply to its dot), refused by
 * smtpguard, or deferred. Strings may be NULL (written empty). */
struct sg_message_event {
	const char *source, *mx;	/* "address:port" */
	const char *tenant;		/* lib/tenants.h; NULL or "": none (null) */
	const char *helo, *mail_from, *rcpt_domains, *message_id, *ref;
	uint32_t rcpts;			/* recipients the MX accepted */
	uint64_t size;
	const char *verdict;		/* "accept" (the MX's reply decides), "reject", "tempfail" */
	const char *reason;
	const char *mx_reply;		/* the first line of the MX's reply to the dot, or "unknown" */
	const char *notes;		/* what engines noted besides the verdict, or NULL */
	const char *by;			/* the engine that refused it ("milter inet:..."), or NULL */
	const char *body_fp;		/* its body's fingerprint digest (16 hex digits), or NULL:
					 * equal for bodies equal but for what a mailing varies
					 * (scan/signals/fingerprint.h); `complaint` matches on it */
};

/* One session, as it ended. */
struct sg_session_event {
	const char *source, *mx, *helo;
	const char *tenant;		/* NULL or "": none (null) */
	uint32_t commands, messages, refused;
	uint64_t duration_ms;
	const char *end;		/* "closed", or why smtpguard ended it */
	const char *error;		/* what failed, or NULL */
	const char *tls;		/* "none", "passthrough", "terminate", "stripped" */
	int inspected;			/* 0: a tunnel carried what came after STARTTLS */
	uint64_t read_vm, read_mx;	/* what the relay read as SMTP */
	/* passthrough */
	const char *tunnel_mover;	/* NULL: no tunnel */
	uint64_t tunnel_from_vm, tunnel_from_mx;
	/* terminate */
	const char *tls_vm, *tls_mx, *sni, *mx_host;
	int resumed, mx_resumed, mx_verified;
	const char *mx_verified_by;	/* what authenticated the MX: "not verified", "chain only",
					 * "recipient domain example.net", ... */
};

/* The events file opened for appending (empty: none, -1 and no error;
 * "-": a duplicate of stdout), given to group when that is not -1 (the
 * daemon opens it as root for the proxy process, which could not). -1 on
 * error, logged. */
int sg_events_open_file(const char *path, gid_t group);
/* Events go to fd from now on (-1: nowhere); the previous descriptor is
 * closed, fd is taken over. */
int sg_events_use(int fd);
/* Both: path opened and swapped in. */
int sg_events_open(const char *path);
void sg_events_close(void);
void sg_event_message(const struct sg_message_event *e);
void sg_event_session(const struct sg_session_event *e);

/* A sender moved on the response ladder (ladder.c). */
struct sg_ladder_event {
	const char *source;		/* the sender, as the classifier keys it */
	const char *tenant;		/* its tenant when known; NULL: none (null) */
	const char *from, *to;		/* "normal", "flagged", "tempfail", "refused" */
	const char *reason;
	time_t until;			/* the step lapses then (0: never) */
	uint64_t penalty_s;		/* refused: how long */
	uint32_t refusals;		/* refusals so far (the penalty grows with them) */
};

/* Writes the event and returns its line (into line, without the newline
 * kept: the webhooks' body), its length; 0 when it did not fit. */
size_t sg_event_ladder(const struct sg_ladder_event *e, char *line, size_t len);

#endif
