/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* smtp.c - SMTP wire parsers for the relay (see smtp.h). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "smtp.h"

enum smtp_line_result smtp_next_line(const char *buf, size_t n, size_t max, size_t *len)
{
	size_t limit = n < max ? n : max;
	const char *lf = memchr(buf, '\n', limit);

	if (lf) {
		*len = (size_t)(lf - buf) + 1;
		return SMTP_LINE_OK;
	}
	return n >= max ? SMTP_LINE_TOO_LONG : SMTP_LINE_NONE;
}

int smtp_line_clean(const char *line, size_t len)
{
	size_t body = len;

	if (body && line[body - 1] == '\n')
		body--;
	if (body && line[body - 1] == '\r')
		body--;
	return !memchr(line, '\r', body) && !memchr(line, '\0', body);
}

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_HELO }, { "EHLO", SMTP_EHLO }, { "MAIL", SMTP_MAIL },
	{ "RCPT", SMTP_RCPT }, { "DATA", SMTP_DATA }, { "BDAT", SMTP_BDAT },
	{ "RSET", SMTP_RSET }, { "NOOP", SMTP_NOOP }, { "QUIT", SMTP_QUIT },
	{ "VRFY", SMTP_VRFY }, { "EXPN", SMTP_EXPN }, { "HELP", SMTP_HELP },
	{ "STARTTLS", SMTP_STARTTLS }, { "AUTH", SMTP_AUTH }, { "BURL", SMTP_BURL },
};

/* Blanks as MTAs split commands on: Postfix's tokenizer takes any white
 * space, so "DATA<TAB>" and " DATA" are DATA to it and must be to us. */
static int smtp_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

enum smtp_verb smtp_verb_of(const char *line, size_t len, size_t *arg)
{
	size_t start = 0, w;
	enum smtp_verb verb = SMTP_UNKNOWN;

	while (start < len && smtp_blank(line[start]))
		start++;
	w = start;
	while (w < len && !smtp_blank(line[w]))
		w++;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i].name) == w - start &&
		    strncasecmp(line + start, verbs[i].name, w - start) == 0)
			verb = verbs[i].verb;
	if (arg) {
		while (w < len && smtp_blank(line[w]))
			w++;
		*arg = w;
	}
	return verb;
}

const char *smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "unknown";
}

/* One reply line at buf: its code, whether more lines follow. */
static enum smtp_reply_result reply_line(const char *buf, size_t len, int *code, int *more)
{
	if (len < 4 || !isdigit((unsigned char)buf[0]) || !isdigit((unsigned char)buf[1]) ||
	    !isdigit((unsigned char)buf[2]) || buf[0] < '2' || buf[0] > '5')
		return SMTP_REPLY_MALFORMED;
	*code = (buf[0] - '0') * 100 + (buf[1] - '0') * 10 + (buf[2] - '0');
	/* "250\r\n" is a complete last line too */
	if (buf[3] == '\r' || buf[3] == '\n') {
		*more = 0;
		return SMTP_REPLY_OK;
	}
	if (buf[3] != ' ' && buf[3] != '-')
		return SMTP_REPLY_MALFORMED;
	*more = buf[3] == '-';
	return SMTP_REPLY_OK;
}

enum smtp_reply_result smtp_next_reply(const char *buf, size_t n, size_t max_line,
				       struct smtp_reply *reply)
{
	size_t off = 0;
	int first_code = 0, lines = 0;

	for (;;) {
		size_t len;
		int code, more;
		enum smtp_reply_result r;

		switch (smtp_next_line(buf + off, n - off, max_line, &len)) {
		case SMTP_LINE_NONE:
			return SMTP_REPLY_NONE;
		case SMTP_LINE_TOO_LONG:
			return SMTP_REPLY_TOO_LONG;
		case SMTP_LINE_OK:
			break;
		}
		r = reply_line(buf + off, len, &code, &more);
		if (r != SMTP_REPLY_OK)
			return r;
		if (lines && code != first_code)
			return SMTP_REPLY_MALFORMED;
		first_code = code;
		lines++;
		off += len;
		if (!more) {
			reply->code = code;
			reply->len = off;
			reply->lines = lines;
			return SMTP_REPLY_OK;
		}
	}
}

/* Where the line break before position p starts ("\r\n" or a bare "\n"). */
static size_t break_start(const char *buf, size_t p)
{
	return p >= 2 && buf[p - 2] == '\r' ? p - 2 : p - 1;
}

enum smtp_data_result smtp_data_scan(const char *buf, size_t n, int at_body_start,
				     size_t *body)
{
	/* Every end, real or smuggled, has a "." at its heart: look only at the
	 * dots (memchr is many times faster than a byte loop on a body). */
	for (const char *dot = memchr(buf, '.', n); dot;
	     dot = memchr(dot + 1, '.', n - (size_t)(dot + 1 - buf))) {
		size_t p = (size_t)(dot - buf), left = n - p;
		/* a line break before and after it under some MX's reading (a
		 * bare CR or LF counts): only CRLF "." CRLF is the end */
		int break_before = p == 0 ? at_body_start : buf[p - 1] == '\n' || buf[p - 1] == '\r';
		int crlf_before = p == 0 || (p >= 2 && buf[p - 2] == '\r' && buf[p - 1] == '\n');

		if (!break_before)
			continue;
		if (left == 1 || (left == 2 && buf[p + 1] == '\r')) {
			/* "." or ".\r" after a break: undecided; hold it with the
			 * line break before it */
			*body = p == 0 ? 0 : break_start(buf, p);
			return SMTP_DATA_MORE;
		}
		if (buf[p + 1] == '\r' || buf[p + 1] == '\n') {
			*body = p;
			return crlf_before && buf[p + 1] == '\r' && buf[p + 2] == '\n' ?
			       SMTP_DATA_END : SMTP_DATA_SMUGGLE;
		}
	}
	/* Every end, real or smuggled, begins with a CR or an LF and is at most
	 * 5 bytes long: a break in the last 4 bytes may begin one that is not
	 * complete yet. Hold back from the first such break (with a CR before
	 * its LF), so that every later call sees it whole. */
	*body = n;
	for (size_t q = n > 4 ? n - 4 : 0; q < n; q++) {
		if (buf[q] == '\r' || buf[q] == '\n') {
			*body = buf[q] == '\n' && q > 0 && buf[q - 1] == '\r' ? q - 1 : q;
			break;
		}
	}
	return SMTP_DATA_MORE;
}

/* The keyword of an EHLO reply line (after "250-" / "250 "): its length. */
static size_t ehlo_keyword_len(const char *line, size_t line_len)
{
	size_t kw_len = 0;

	while (4 + kw_len < line_len && line[4 + kw_len] != ' ' && line[4 + kw_len] != '\r' &&
	       line[4 + kw_len] != '\n')
		kw_len++;
	return kw_len;
}

size_t smtp_ehlo_remove(char *reply, size_t len, const char *const *keywords, int n)
{
	size_t in = 0, out = 0, last_start = 0;
	int first = 1;

	while (in < len) {
		const char *lf = memchr(reply + in, '\n', len - in);
		size_t line_len = lf ? (size_t)(lf - (reply + in)) + 1 : len - in;
		int drop = 0;

		if (!first && line_len > 4) {
			const char *kw = reply + in + 4;
			size_t kw_len = ehlo_keyword_len(reply + in, line_len);
			for (int k = 0; k < n; k++)
				if (strlen(keywords[k]) == kw_len &&
				    strncasecmp(kw, keywords[k], kw_len) == 0)
					drop = 1;
		}
		if (!drop) {
			memmove(reply + out, reply + in, line_len);
			last_start = out;
			out += line_len;
		}
		first = 0;
		in += line_len;
	}
	/* the separator: "-" on every line but the last */
	for (size_t p = 0; p < out;) {
		const char *lf = memchr(reply + p, '\n', out - p);
		size_t line_len = lf ? (size_t)(lf - (reply + p)) + 1 : out - p;

		if (line_len > 3 && (reply[p + 3] == ' ' || reply[p + 3] == '-'))
			reply[p + 3] = p == last_start ? ' ' : '-';
		p += line_len;
	}
	return out;
}

size_t smtp_ehlo_cap_size(char *reply, size_t len, size_t room, uint64_t limit)
{
	size_t in = 0;
	int first = 1;

	while (in < len) {
		const char *lf = memchr(reply + in, '\n', len - in);
		size_t line_len = lf ? (size_t)(lf - (reply + in)) + 1 : len - in;
		char *line = reply + in;
		char value[48];
		uint64_t v = 0;
		size_t vlen, old_len;

		if (first || line_len <= 4 || ehlo_keyword_len(line, line_len) != 4 ||
		    strncasecmp(line + 4, "SIZE", 4) != 0) {
			first = 0;
			in += line_len;
			continue;
		}
		/* "SIZE", "SIZE 0" (no fixed limit) or "SIZE n" */
		for (size_t i = 9; i < line_len && line[8] == ' ' && isdigit((unsigned char)line[i]) &&
				   v <= limit; i++)
			v = v * 10 + (uint64_t)(line[i] - '0');
		if (v && v <= limit)
			return len;
		vlen = (size_t)snprintf(value, sizeof(value), " %llu",
					(unsigned long long)limit);
		old_len = line_len - 8;	/* from after "SIZE" to the line's end */
		while (old_len && (line[8 + old_len - 1] == '\r' || line[8 + old_len - 1] == '\n'))
			old_len--;
		if (len - old_len + vlen > room)
			return len;	/* no room: the MX's value stays */
		memmove(line + 8 + vlen, line + 8 + old_len, len - in - 8 - old_len);
		memcpy(line + 8, value, vlen);
		return len - old_len + vlen;
	}
	return len;
}

int smtp_ehlo_has(const char *reply, size_t len, const char *keyword)
{
	size_t in = 0, want = strlen(keyword);
	int first = 1;

	while (in < len) {
		const char *lf = memchr(reply + in, '\n', len - in);
		size_t line_len = lf ? (size_t)(lf - (reply + in)) + 1 : len - in;

		if (!first && line_len > 4 && ehlo_keyword_len(reply + in, line_len) == want &&
		    strncasecmp(reply + in + 4, keyword, want) == 0)
			return 1;
		first = 0;
		in += line_len;
	}
	return 0;
}
