/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* http_request.c - a metrics scraper's request judged (see http_request.h). */
#include <string.h>
#include "http_request.h"

/* Where the header ends (after its blank line), or NULL: a bare LF is
 * taken for CRLF, as most servers do. */
static const char *header_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return buf + i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return buf + i + 3;
	}
	return NULL;
}

/* RFC 9110's token characters: a method is one. */
static int token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

enum sg_http_verdict sg_http_judge(const char *buf, size_t len, const char *path, size_t max)
{
	const char *end, *eol, *sp1, *sp2, *p;
	size_t mlen, tlen, plen = strlen(path);

	/* nothing in the header may be NUL: the request is text */
	if (memchr(buf, '\0', len))
		return SG_HTTP_BAD_REQUEST;
	end = header_end(buf, len < max ? len : max);
	if (!end)
		return len >= max ? SG_HTTP_TOO_LARGE : SG_HTTP_INCOMPLETE;
	eol = memchr(buf, '\n', (size_t)(end - buf));
	if (eol > buf && eol[-1] == '\r')
		eol--;
	/* METHOD SP TARGET SP HTTP/1.x, single spaces */
	sp1 = memchr(buf, ' ', (size_t)(eol - buf));
	if (!sp1 || sp1 == buf)
		return SG_HTTP_BAD_REQUEST;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return SG_HTTP_BAD_REQUEST;
	if ((size_t)(eol - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return SG_HTTP_BAD_REQUEST;
	mlen = (size_t)(sp1 - buf);
	for (p = buf; p < sp1; p++)
		if (!token_char(*p))
			return SG_HTTP_BAD_REQUEST;
	tlen = (size_t)(sp2 - sp1 - 1);
	for (p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return SG_HTTP_BAD_REQUEST;
	if (!(mlen == 3 && memcmp(buf, "GET", 3) == 0) && !(mlen == 4 && memcmp(buf, "HEAD", 4) == 0))
		return SG_HTTP_BAD_METHOD;
	if (tlen < plen || memcmp(sp1 + 1, path, plen) || (tlen > plen && sp1[1 + plen] != '?'))
		return SG_HTTP_NOT_FOUND;
	return mlen == 3 ? SG_HTTP_GET : SG_HTTP_HEAD;
}

const char *sg_http_status(enum sg_http_verdict v)
{
	switch (v) {
	case SG_HTTP_GET:
	case SG_HTTP_HEAD:
		return "200 OK";
	case SG_HTTP_NOT_FOUND:
		return "404 Not Found";
	case SG_HTTP_BAD_METHOD:
		return "405 Method Not Allowed";
	case SG_HTTP_TOO_LARGE:
		return "431 Request Header Fields Too Large";
	default:
		return "400 Bad Request";
	}
}
