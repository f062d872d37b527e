/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * smtp.h - the SMTP wire parsers the proxy's relay is built on; pure
 * functions over bytes, no I/O, so they are unit-tested and fuzzed alone.
 *  - the client side: complete command lines, bounded in length, and the
 *    command's verb;
 *  - the server side: complete replies (one or many lines), their code,
 *    checked for consistency;
 *  - DATA: where the body's terminating "." line starts, across chunks, so
 *    the relay can stream the body and withhold the final dot;
 *  - the EHLO reply: extensions removed (CHUNKING, STARTTLS per policy)
 *    with the last line's separator kept right.
 */
#ifndef SMTPGUARD_SMTP_H
#define SMTPGUARD_SMTP_H

#include <stddef.h>
#include <stdint.h>

enum smtp_verb {
	SMTP_UNKNOWN = 0,	/* relayed as it is; the MX answers it */
	SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_BDAT, SMTP_RSET,
	SMTP_NOOP, SMTP_QUIT, SMTP_VRFY, SMTP_EXPN, SMTP_HELP, SMTP_STARTTLS, SMTP_AUTH,
	SMTP_BURL,
};

enum smtp_line_result {
	SMTP_LINE_NONE = 0,	/* no complete line yet */
	SMTP_LINE_OK,		/* *len bytes, the CRLF (or bare LF) included */
	SMTP_LINE_TOO_LONG,	/* no line end within max bytes */
};

/* The first line in buf[0..n): SMTP_LINE_OK with its length (through the
 * LF), SMTP_LINE_NONE if it is not complete and still within max, or
 * SMTP_LINE_TOO_LONG. */
enum smtp_line_result smtp_next_line(const char *buf, size_t n, size_t max, size_t *len);
/* A command line (len bytes through its LF) with no CR but the one before
 * its LF, and no NUL. A lax MX may split "NOOP<CR>DATA" into two commands
 * where the relay sees one, so such a line is refused, never relayed. */
int smtp_line_clean(const char *line, size_t len);

/* The verb of a command line (case-insensitive, as RFC 5321 says; split
 * at any blank, leading blanks skipped, as lenient MTAs read it), and, if
 * arg is not NULL, where its argument starts (past the blanks after it). */
enum smtp_verb smtp_verb_of(const char *line, size_t len, size_t *arg);
const char *smtp_verb_name(enum smtp_verb verb);

struct smtp_reply {
	int code;		/* 200-599 */
	size_t len;		/* bytes of the whole reply, every line's CRLF included */
	int lines;
};

enum smtp_reply_result {
	SMTP_REPLY_NONE = 0,	/* not complete yet */
	SMTP_REPLY_OK,
	SMTP_REPLY_MALFORMED,	/* no 3-digit code, a bad separator, codes that differ */
	SMTP_REPLY_TOO_LONG,	/* a line longer than max_line */
};

/* The first complete reply in buf[0..n). */
enum smtp_reply_result smtp_next_reply(const char *buf, size_t n, size_t max_line,
				       struct smtp_reply *reply);

enum smtp_data_result {
	SMTP_DATA_MORE = 0,	/* no end yet: *body bytes may go to the MX now */
	SMTP_DATA_END,		/* *body bytes of body, then the 3-byte ".\r\n" end */
	SMTP_DATA_SMUGGLE,	/* a bare LF or CR around a lone "." at *body: an end
				 * the MX might see where the proxy does not */
};

/* Looks at body bytes buf[0..n) not yet sent to the MX; at_body_start: no
 * byte of this body has been sent yet. Stateless: the caller keeps the bytes
 * from *body on and shows them again, with what arrives next. Held bytes
 * always begin with a line break, so a "." line start is never split from
 * the break before it. */
enum smtp_data_result smtp_data_scan(const char *buf, size_t n, int at_body_start,
				     size_t *body);

/* Rewrites an EHLO reply in place without the named extensions (keywords,
 * case-insensitive), keeping the first line (the greeting) and putting the
 * final "250 " separator on the new last line. Returns the new length. */
size_t smtp_ehlo_remove(char *reply, size_t len, const char *const *keywords, int n);

/* Caps an EHLO reply's SIZE (RFC 1870) at limit, in place: "SIZE", "SIZE 0"
 * (no fixed maximum) and a larger "SIZE n" become "SIZE limit", so the VM
 * learns the lower of the MX's and this host's limit before it sends.
 * room: the buffer's size. Returns the new length (the old one when there
 * is no SIZE, it is already lower, or there is no room). */
size_t smtp_ehlo_cap_size(char *reply, size_t len, size_t room, uint64_t limit);

/* Whether an EHLO reply offers the extension (a keyword, case-insensitive;
 * the greeting line does not count). */
int smtp_ehlo_has(const char *reply, size_t len, const char *keyword);

#endif
