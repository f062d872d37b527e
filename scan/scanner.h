/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * scanner.h - the scanning stage: the verdict on a message, judged while it
 * streams to the MX, the final dot withheld until it is given.
 *
 * The relay feeds each message as it arrives (headers, then body,
 * dot-stuffing as sent, or BDAT chunks' bytes as they are: unstuffed) and
 * asks for the verdict once the dot (or the last chunk) has come.
 * The scanner cuts the stream into lines (judged by their first
 * SG_SCAN_LINE_MAX bytes), notes what every engine and the events need (the
 * size, the Message-ID), and hands each line to its engines, in order.
 * The first engine that does not accept gives the verdict and its reason.
 *
 * An engine (struct sg_engine) reads the message as lines (line: each
 * line's first SG_SCAN_LINE_MAX bytes) or as it came (data: every byte,
 * dot-stuffing undone, line breaks kept, headers and body alike), and may
 * answer at once, or wait on something outside (a milter, a content
 * scanner): its verdict call returns SG_ENGINE_WAIT, it registers what it
 * waits on in the session's event loop (scan->host.loop), and once it
 * knows, it calls sg_scan_engine_done, which wakes the session through the
 * loop; the relay then asks for the verdict again. The steps follow
 * HAProxy's filters: negative on error, 0 to wait, positive to go on. An
 * engine that fails, or a message whose verdict takes longer than
 * scan_timeout, gets the scanner's failure action (scan_timeout_action:
 * tempfail, or accept). Engines keep per-message state they allocate in
 * begin and free in release, which is always called once begin has
 * succeeded: at the verdict, at the deadline, or when the session ends
 * first; and per-session state (a milter's connection, kept for the
 * session's next messages) in their session slot, freed by session_end
 * when the session ends.
 *
 * An engine that cannot take the body as fast as it comes (a milter's
 * socket backed up) holds the scan (sg_scan_hold): the relay stops reading
 * the body, so the VM's TCP window closes, until the engine lets go, which
 * wakes the session. An engine bounds its own holds by its timeouts.
 */
#ifndef SMTPGUARD_SCANNER_H
#define SMTPGUARD_SCANNER_H

#include <stddef.h>
#include <stdint.h>
#include "fingerprint.h"
#include "loop.h"

#define SG_SCAN_LINE_MAX 998	/* RFC 5322's line limit: longer lines are judged by their start */
#define SG_MAX_ENGINES 8
#define SG_REASON_LEN 200

enum sg_verdict_kind {
	SG_ACCEPT = 0,
	SG_REJECT,		/* 550 5.7.1: never committed by the MX */
	SG_TEMPFAIL,		/* 451 4.7.1: the VM's MTA keeps it queued */
};

struct sg_verdict {
	enum sg_verdict_kind kind;
	char reason[SG_REASON_LEN];	/* short, for the reply and the log: never a rule's pattern */
	/* the refusal's reply code and enhanced code ("554 5.7.1"), of the
	 * kind's class (4xx for a tempfail, 5xx for a reject); empty: 451
	 * 4.7.1 or 550 5.7.1 */
	char code[16];
	/* who gave it, for the log and the event ("milter inet:..."; empty:
	 * the engine's name): the VM is told the reason alone */
	char by[128];
};

#define SG_NOTES_LEN 256

/* What an engine is told of a message besides its lines: in begin, for
 * begin alone (an engine copies what it keeps). */
struct sg_envelope {
	const char *vm;			/* "address:port" of the sending VM */
	const char *vm_ip;		/* its address alone, and port */
	uint16_t vm_port;
	const char *helo;
	const char *mail_from;		/* the address, without <> or parameters */
	const char *rcpt_domains;	/* comma-separated */
	const char *rcpt_addrs;		/* the addresses the MX accepted, one a line ('\n') */
	uint32_t rcpts;			/* recipients the MX accepted */
	const char *ref;		/* the message's reference id (a queue id, for milters) */
};

/* An engine step's outcome. */
enum {
	SG_ENGINE_ERROR = -1,	/* the engine failed: the failure action applies */
	SG_ENGINE_WAIT = 0,	/* it will call sg_scan_engine_done */
	SG_ENGINE_DONE = 1,	/* the verdict is given */
};

struct sg_scan;

struct sg_engine {
	const char *name;
	/* A message begins; *state is NULL: an engine that keeps state per
	 * message allocates it here; *session is the engine's slot for the
	 * session (NULL at its first message). SG_ENGINE_ERROR: the engine
	 * failed (no release follows); otherwise SG_ENGINE_DONE. */
	int (*begin)(const void *config, struct sg_scan *scan, const struct sg_envelope *env,
		     void **session, void **state);
	/* One line, without its line break (NUL-terminated at len), of the
	 * headers or of the body. Returns nonzero once the engine has decided
	 * and wants no more lines. NULL: the engine reads data instead. */
	int (*line)(void *state, const void *config, const char *line, size_t len,
		    int in_body);
	/* The message's next bytes as they came, dot-stuffing undone; the
	 * final dot is never among them. Nonzero once the engine has decided.
	 * NULL: the engine reads lines. */
	int (*data)(void *state, const void *config, const char *data, size_t n);
	/* The message has ended, its dot withheld: SG_ENGINE_DONE with *v
	 * filled, SG_ENGINE_WAIT (sg_scan_engine_done comes later, from the
	 * loop), or SG_ENGINE_ERROR. */
	int (*verdict)(void *state, const void *config, struct sg_scan *scan,
		       struct sg_verdict *v);
	/* The message is over for this engine: what it allocated and
	 * registered goes (a pending answer it no longer waits for). */
	void (*release)(void *state, const void *config);
	/* The session ends: what its slot holds goes. NULL: nothing kept. */
	void (*session_end)(void *session, const void *config);
	/* The engine says its own health for the metrics (a milter: its
	 * connection); for the others the scanner says it: up when the
	 * engine answers, down when it fails. */
	int reports_health;
};

/* The engines of a proxy, in the order they judge; built once at start. */
struct sg_scanner {
	const struct sg_engine *engines[SG_MAX_ENGINES];
	const void *configs[SG_MAX_ENGINES];
	int n;
	enum sg_verdict_kind failure_action;	/* an engine failed or was too slow */
};

/* Adds an engine with its configuration (which must outlive the scanner);
 * -1 when SG_MAX_ENGINES are there already. */
int sg_scanner_add(struct sg_scanner *scanner, const struct sg_engine *engine,
		   const void *config);

/* What the scan's owner (the relay) gives its engines. */
struct sg_scan_host {
	struct sg_loop *loop;	/* where a waiting engine registers its sockets and timers */
	void (*wake)(void *owner);	/* called by sg_scan_engine_done and sg_scan_hold */
	void *owner;
	void **sessions;	/* SG_MAX_ENGINES slots the session keeps (NULL: none kept) */
};

/* One message's scan. */
struct sg_scan {
	const struct sg_scanner *scanner;
	struct sg_scan_host host;
	int in_body;
	char line[SG_SCAN_LINE_MAX + 1];
	size_t line_len;
	int line_overflow;
	int data_midline;	/* data engines: the last byte fed was not a line's end */
	int unstuffed;		/* the bytes come as the message is (BDAT chunks, RFC 3030):
				 * no dot-stuffing to undo */
	size_t bytes;
	char message_id[256];	/* the Message-ID header's value, for events and trace */
	int ended;		/* the last line was judged: verdicts are being asked */
	int judging;		/* the engine whose verdict is asked (in order) */
	int waiting;		/* that engine answered SG_ENGINE_WAIT */
	int answered;		/* and has since called sg_scan_engine_done */
	struct sg_verdict answer;	/* what it said */
	uint64_t asked_ns;	/* when that engine's verdict was asked (its latency) */
	const char *failed;	/* the name of an engine that failed, accepted for it */
	int live[SG_MAX_ENGINES];	/* begun, not yet released */
	int done[SG_MAX_ENGINES];	/* the engine has decided: no more lines */
	void *state[SG_MAX_ENGINES];
	int held[SG_MAX_ENGINES];	/* the engine holds the body (sg_scan_hold) */
	/* what engines noted of the message besides their verdict (a
	 * milter's quarantine or header changes), for its event */
	char notes[SG_NOTES_LEN];
	int flagged;		/* an engine flagged the message (a signal, not a refusal) */
	/* what the content engine read for the behaviour signals: the body's
	 * fingerprint, and who inside the sender wrote the message (its
	 * X-PHP-Originating-Script, an authenticated user's header) */
	int has_fingerprint;
	struct sg_fingerprint fingerprint;
	char sub_script[128];
	char sub_user[128];
	void *no_session[SG_MAX_ENGINES];	/* the slots when the host keeps none */
};

/* scanner may be NULL (no engine: every message is accepted). host may be
 * NULL when no engine waits (a test). */
void sg_scan_begin(struct sg_scan *scan, const struct sg_scanner *scanner,
		   const struct sg_envelope *env, const struct sg_scan_host *host);
void sg_scan_feed(struct sg_scan *scan, const char *data, size_t n);
/* After the last line: SG_ENGINE_DONE with *v (every engine released), or
 * SG_ENGINE_WAIT (ask again once the host is woken). */
int sg_scan_verdict(struct sg_scan *scan, struct sg_verdict *v);
/* A waiting engine's verdict (from its own callback in the loop): kept,
 * and the host woken. */
void sg_scan_engine_done(struct sg_scan *scan, const struct sg_verdict *v);
/* The scan ends without a verdict (a deadline, the session's end): every
 * engine still begun is released. Safe to call twice. */
void sg_scan_end(struct sg_scan *scan);
/* An engine (known by its message state) holds the body back (on), or
 * lets it go (off: the host is woken). Released engines hold nothing. */
void sg_scan_hold(struct sg_scan *scan, const void *state, int on);
/* Adds "engine: text" to the message's notes ("; " between; cut, never
 * overflowing, when too many). */
void sg_scan_note(struct sg_scan *scan, const char *engine, const char *text);
/* Is the body held by any engine? */
int sg_scan_held(const struct sg_scan *scan);
/* The session ends: every engine's session slot is let go. */
void sg_scan_session_end(const struct sg_scanner *scanner, void **sessions);
/* The scanner's failure action as a verdict, with why. */
void sg_scan_failure(const struct sg_scan *scan, struct sg_verdict *v, const char *why);

#endif
