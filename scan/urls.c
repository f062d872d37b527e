/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * urls.c - the streaming URL host extractor (see urls.h): a byte-at-a-time
 * state machine, so that where a chunk ends never matters (text that can
 * start nothing is skipped in bulk, its last 8 bytes remembered).
 */
#include <string.h>
#include "urls.h"

enum { IN_TEXT, AFTER_SCHEME, IN_AUTHORITY };
enum { HOST_COLLECTING, HOST_ENDED, HOST_INVALID };

/* the last bytes, newest lowest: "http:" is 'h' 't' 't' 'p' ':' */
#define RECENT_HTTP  0x687474703aULL		/* "http:" */
#define RECENT_HTTPS 0x68747470733aULL		/* "https:" */
#define RECENT_WWW   0x7777772eULL		/* "www." */

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* What ends an authority in a browser, in text or in an attribute. */
static int ends_authority(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return 1;
	switch (c) {
	case '/': case '?': case '#': case '\\': case '"': case '<': case '>':
	case '`': case '{': case '}': case '|': case '^':
		return 1;
	}
	return 0;
}

/* A byte a host name is made of (lowercased; >= 0x80: an IDN's bytes). */
static int is_host_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.' || c >= 0x80;
}

/* Before "www.": a byte of a longer name (so "awww.x" or "a.www.x" is no URL). */
static int continues_name(unsigned char c)
{
	return is_host_byte(c) && c < 0x80;
}

static void host_reset(struct sg_url_extractor *ex)
{
	ex->host_len = 0;
	ex->host_state = HOST_COLLECTING;
	ex->in_brackets = 0;
	ex->escape = 0;
	ex->overlong = 0;
	ex->split_at = 0;
}

void sg_url_extract_init(struct sg_url_extractor *ex, sg_url_host_fn on_host, void *ctx)
{
	memset(ex, 0, sizeof(*ex));
	ex->on_host = on_host;
	ex->ctx = ctx;
	ex->state = IN_TEXT;
}

/* IDNA maps these to '.', so browsers do: U+3002, U+FF0E, U+FF61. */
static size_t map_unicode_dots(char *host, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		const unsigned char *u = (const unsigned char *)host + i;

		if (i + 2 < len && ((u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x82) ||
				    (u[0] == 0xef && u[1] == 0xbc && u[2] == 0x8e) ||
				    (u[0] == 0xef && u[1] == 0xbd && u[2] == 0xa1))) {
			host[o++] = '.';
			i += 2;
		} else {
			host[o++] = host[i];
		}
	}
	return o;
}

/* A host is given: its dots mapped, trailing ones dropped, if it is not
 * too long. */
static void give_host(struct sg_url_extractor *ex, char *host, size_t len)
{
	len = map_unicode_dots(host, len);
	while (len && host[len - 1] == '.')
		len--;
	if (len > SG_HOST_MAX) {
		ex->overlong_hosts++;
		return;
	}
	if (!len)
		return;
	ex->hosts++;
	ex->on_host(ex->ctx, host, len);
}

static void host_append(struct sg_url_extractor *ex, unsigned char c)
{
	if (ex->split_at && !ex->overlong) {
		char before[sizeof(ex->host)];

		memcpy(before, ex->host, ex->split_at);
		give_host(ex, before, ex->split_at);
		ex->split_at = 0;
	}
	if (ex->host_len == sizeof(ex->host)) {	/* room for a trailing dot */
		ex->overlong = 1;	/* may still be userinfo: an '@' would start over */
		return;
	}
	ex->host[ex->host_len++] = (char)c;
}

/* One byte of the host part (after percent-decoding). */
static void host_byte(struct sg_url_extractor *ex, unsigned char c)
{
	c = lower(c);
	if (ex->in_brackets) {
		if (c == ']') {
			ex->in_brackets = 0;
			ex->host_state = HOST_ENDED;
		} else if (hex_value(c) >= 0 || c == ':' || c == '.') {
			host_append(ex, c);
		} else {
			ex->host_state = HOST_INVALID;
		}
	} else if (c == '[' && ex->host_len == 0) {
		ex->in_brackets = 1;
	} else if (is_host_byte(c)) {
		host_append(ex, c);
	} else {
		ex->host_state = HOST_ENDED;	/* a ':' port, or text after the host */
	}
}

/* The URL has ended: its host, if it has a good one, is given. */
static void url_end(struct sg_url_extractor *ex)
{
	ex->state = IN_TEXT;
	if (ex->in_brackets || ex->host_state == HOST_INVALID) {
		ex->invalid_hosts++;
		return;
	}
	if (ex->overlong) {
		ex->overlong_hosts++;
		return;
	}
	give_host(ex, ex->host, ex->host_len);
}

static void authority_byte(struct sg_url_extractor *ex, unsigned char c)
{
	int v;

	if (ex->quote && (c == '\t' || c == '\r' || c == '\n')) {
		/* in an attribute's value browsers drop them, but text that
		 * only follows a quote ends there: should the host go on,
		 * what came before the break is given too */
		if (ex->host_state == HOST_COLLECTING && ex->host_len && !ex->escape &&
		    !ex->in_brackets && !ex->split_at)
			ex->split_at = ex->host_len;
		return;
	}
	if (ends_authority(c) || (ex->quote && c == ex->quote)) {
		url_end(ex);
		return;
	}
	if (c == '@') {
		host_reset(ex);	/* what came before was userinfo */
		return;
	}
	if (ex->host_state != HOST_COLLECTING)
		return;		/* an '@' may yet come */
	if (ex->escape) {
		v = hex_value(c);
		if (v < 0) {
			ex->host_state = HOST_INVALID;
			return;
		}
		ex->escape_value = (unsigned char)(ex->escape_value << 4 | v);
		if (++ex->escape == 3) {
			ex->escape = 0;
			host_byte(ex, ex->escape_value);
		}
		return;
	}
	if (c == '%') {
		ex->escape = 1;
		ex->escape_value = 0;
		return;
	}
	host_byte(ex, c);
}

/* The quote just before the last n bytes, or 0. */
static unsigned char quote_before(const struct sg_url_extractor *ex, unsigned int n)
{
	unsigned char c = (unsigned char)(ex->recent >> (8 * n));

	return c == '"' || c == '\'' ? c : 0;
}

/* One byte of text, after character references are decoded. */
static void text_byte(struct sg_url_extractor *ex, unsigned char c)
{
	ex->recent = ex->recent << 8 | lower(c);
	switch (ex->state) {
	case AFTER_SCHEME:
		if (c == '/' || c == '\\') {
			ex->slashes = 1;
			return;
		}
		if (ex->slashes) {
			ex->state = IN_AUTHORITY;
			host_reset(ex);
			authority_byte(ex, c);
			return;
		}
		ex->state = IN_TEXT;
		break;
	case IN_AUTHORITY:
		authority_byte(ex, c);
		/* past its host, an authority may still hold an '@', or be
		 * text with the next URL in it: "http://a.example,http://b..." */
		if (ex->state != IN_AUTHORITY || ex->host_state == HOST_COLLECTING)
			return;
		break;
	}
	if (c == ':' && ((ex->recent & 0xffffffffffULL) == RECENT_HTTP ||
			 (ex->recent & 0xffffffffffffULL) == RECENT_HTTPS)) {
		int https = (ex->recent & 0xffffffffffffULL) == RECENT_HTTPS;

		if (ex->state == IN_AUTHORITY)
			url_end(ex);
		ex->state = AFTER_SCHEME;
		ex->slashes = 0;
		ex->quote = quote_before(ex, https ? 6 : 5);
	} else if (c == '.' && (ex->recent & 0xffffffffULL) == RECENT_WWW &&
		   !continues_name((unsigned char)(ex->recent >> 32))) {
		if (ex->state == IN_AUTHORITY)
			url_end(ex);
		ex->state = IN_AUTHORITY;
		host_reset(ex);
		ex->quote = quote_before(ex, 4);
		memcpy(ex->host, "www.", 4);
		ex->host_len = 4;
	}
}

/* Decodes "&#58;" and "&#x3a;" (semicolon optional, as browsers allow) to
 * the ASCII byte they stand for; anything else passes as it came. */
static void ref_flush(struct sg_url_extractor *ex)
{
	for (unsigned i = 0; i < ex->ref_len; i++)
		text_byte(ex, (unsigned char)ex->ref[i]);
	ex->ref_len = 0;
}

static int ref_value(const struct sg_url_extractor *ex)
{
	int hex = ex->ref_len > 2 && (ex->ref[2] == 'x' || ex->ref[2] == 'X');
	unsigned i = hex ? 3 : 2;
	int v = 0;

	if (i >= ex->ref_len)
		return -1;
	for (; i < ex->ref_len; i++)
		v = v * (hex ? 16 : 10) + hex_value((unsigned char)ex->ref[i]);
	return v > 0 && v < 0x80 ? v : -1;
}

static void ref_byte(struct sg_url_extractor *ex, unsigned char c)
{
	int hex, v;

	if (!ex->ref_len) {
		if (c == '&')
			ex->ref[ex->ref_len++] = '&';
		else
			text_byte(ex, c);
		return;
	}
	if (ex->ref_len == 1) {
		if (c == '#') {
			ex->ref[ex->ref_len++] = '#';
			return;
		}
	} else {
		hex = ex->ref_len > 2 && (ex->ref[2] == 'x' || ex->ref[2] == 'X');
		if (ex->ref_len == 2 && (c == 'x' || c == 'X')) {
			ex->ref[ex->ref_len++] = (char)c;
			return;
		}
		if ((hex ? hex_value(c) >= 0 : (c >= '0' && c <= '9')) &&
		    ex->ref_len < sizeof(ex->ref) - 4) {
			/* leading zeros, which browsers skip, take no room */
			if (ex->ref_len == 3 + hex && ex->ref[ex->ref_len - 1] == '0')
				ex->ref_len--;
			ex->ref[ex->ref_len++] = (char)c;
			return;
		}
		v = ref_value(ex);
		if (v >= 0) {
			ex->ref_len = 0;
			text_byte(ex, (unsigned char)v);
			if (c == ';')
				return;
			ref_byte(ex, c);
			return;
		}
	}
	ref_flush(ex);
	ref_byte(ex, c);
}

/* In text, only these bytes can start anything: a character reference,
 * a scheme's ':', the '.' of "www.". */
static int starts_something(unsigned char c)
{
	return c == '&' || c == ':' || c == '.';
}

/* Text that starts nothing: only its last 8 bytes are remembered. */
static void skip_text(struct sg_url_extractor *ex, const unsigned char *p, size_t n)
{
	size_t i = n > 8 ? n - 8 : 0;

	if (n >= 8)
		ex->recent = 0;
	for (; i < n; i++)
		ex->recent = ex->recent << 8 | lower(p[i]);
}

void sg_url_extract(struct sg_url_extractor *ex, const char *data, size_t n)
{
	const unsigned char *p = (const unsigned char *)data;

	for (size_t i = 0; i < n;) {
		if (ex->state == IN_TEXT && !ex->ref_len) {
			size_t j = i;

			while (j < n && !starts_something(p[j]))
				j++;
			skip_text(ex, p + i, j - i);
			i = j;
			if (i == n)
				break;
		}
		ref_byte(ex, p[i++]);
	}
}

void sg_url_extract_end(struct sg_url_extractor *ex)
{
	int v = ex->ref_len > 2 ? ref_value(ex) : -1;

	if (v >= 0) {
		ex->ref_len = 0;
		text_byte(ex, (unsigned char)v);
	}
	ref_flush(ex);
	if (ex->state == IN_AUTHORITY)
		url_end(ex);
	ex->state = IN_TEXT;
	ex->recent = 0;
}
