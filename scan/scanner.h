/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * scanner.h - the verdict on a message, judged while it streams to the MX.
 *
 * The relay feeds each message as it arrives (headers, then body,
 * dot-stuffing as sent) and asks for the verdict before the final dot goes
 * out. The scanner cuts the stream into lines (judged by their first
 * SG_SCAN_LINE_MAX bytes), notes what every engine and the events need (the
 * size, the Message-ID), and hands each line to its engines, in order.
 * The first engine that does not accept gives the verdict and its reason.
 *
 * An engine (struct sg_engine) plugs in with three calls and a per-message
 * state of at most SG_ENGINE_STATE bytes, kept in the session, so that a
 * session's memory stays bounded whatever the engines. It is told the
 * envelope at the start. The built-in one is the pattern engine
 * (scan_patterns.c); later ones (a content scanner behind a socket, say)
 * are added to the same sg_scanner at the proxy's start.
 */
#ifndef SMTPGUARD_SCANNER_H
#define SMTPGUARD_SCANNER_H

#include <stddef.h>
#include <stdint.h>

#define SG_SCAN_LINE_MAX 998	/* RFC 5322's line limit: longer lines are judged by their start */
#define SG_MAX_ENGINES 4
#define SG_ENGINE_STATE 64	/* bytes of per-message state an engine may keep */

enum sg_verdict_kind {
	SG_ACCEPT = 0,
	SG_REJECT,		/* 550 5.7.1: never committed by the MX */
	SG_TEMPFAIL,		/* 451 4.7.1: the VM's MTA keeps it queued */
};

/* What an engine is told of a message besides its lines. */
struct sg_envelope {
	const char *vm;			/* "address:port" of the sending VM */
	const char *helo;
	const char *mail_from;
	const char *rcpt_domains;	/* comma-separated */
	uint32_t rcpts;			/* recipients the MX accepted */
};

struct sg_engine {
	const char *name;
	/* A message begins: state is SG_ENGINE_STATE zeroed bytes. */
	void (*begin)(void *state, const void *config, const struct sg_envelope *env);
	/* One line, without its line break (NUL-terminated at len), of the
	 * headers or of the body. Returns nonzero once the engine has decided
	 * and wants no more lines. */
	int (*line)(void *state, const void *config, const char *line, size_t len,
		    int in_body);
	/* The verdict, and a short reason for the reply and the log. */
	enum sg_verdict_kind (*verdict)(void *state, const void *config, char *reason,
					size_t len);
};

/* The engines of a proxy, in the order they judge; built once at start. */
struct sg_scanner {
	const struct sg_engine *engines[SG_MAX_ENGINES];
	const void *configs[SG_MAX_ENGINES];
	int n;
};

/* Adds an engine with its configuration (which must outlive the scanner);
 * -1 when SG_MAX_ENGINES are there already. */
int sg_scanner_add(struct sg_scanner *scanner, const struct sg_engine *engine,
		   const void *config);

/* One message's scan. */
struct sg_scan {
	const struct sg_scanner *scanner;
	int in_body;
	char line[SG_SCAN_LINE_MAX + 1];
	size_t line_len;
	int line_overflow;
	size_t bytes;
	char message_id[256];	/* the Message-ID header's value, for events and trace */
	int done[SG_MAX_ENGINES];	/* the engine has decided */
	_Alignas(max_align_t) unsigned char state[SG_MAX_ENGINES][SG_ENGINE_STATE];
};

/* scanner may be NULL (no engine: every message is accepted). */
void sg_scan_begin(struct sg_scan *scan, const struct sg_scanner *scanner,
		   const struct sg_envelope *env);
void sg_scan_feed(struct sg_scan *scan, const char *data, size_t n);
enum sg_verdict_kind sg_scan_verdict(struct sg_scan *scan, char *reason, size_t len);

/* The built-in pattern engine (scan_patterns.c), configured by a file of
 * "header REGEX" and "body REGEX" lines (POSIX extended, case-insensitive;
 * '#' comments and blank lines ignored): a message with a line that
 * matches is refused. */
struct sg_patterns;
extern const struct sg_engine sg_pattern_engine;
/* Loads the rules; NULL with err (file, line, what) on error. */
struct sg_patterns *sg_patterns_load(const char *path, char *err, size_t errlen);
void sg_patterns_free(struct sg_patterns *p);
int sg_patterns_count(const struct sg_patterns *p);

#endif
