/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * urls.h - the hosts of the URLs in a message's decoded text, found as the
 * text streams by, in chunks of any size, for the url-host rules.
 *
 * What counts as a URL: "http:" or "https:" (any case) followed by one or
 * more '/' or '\' (browsers take either), anywhere, also inside HTML
 * attributes (href="...") and query strings; and "www." where no host
 * character comes before it. HTML numeric character references
 * (&#58; &#x2f;) are decoded first, as a browser decodes them in an
 * attribute. The host is what follows up to the first of '/', '?', '#',
 * '\', a quote, '<', '>', white space or a control byte, after the last
 * '@' (the userinfo before it is dropped: http://paypal.com@evil.example/
 * is evil.example), before a ':' port; percent-escapes are decoded,
 * ASCII lowercased, trailing dots dropped; an IPv6 literal comes without
 * its brackets; bytes >= 0x80 (an IDN) are kept as they are, but for the
 * ideographic and full-width full stops, which browsers take for '.'. A
 * URL that follows a quote (an attribute's value) ends at that quote, and
 * tabs and line breaks inside it are skipped, as browsers skip them.
 *
 * Bounded: the state is this struct (about 300 bytes, no allocation); a
 * host longer than SG_HOST_MAX (253) bytes is counted, not given; a URL
 * split across chunks is given once, when it ends. One extractor per text
 * part: sg_url_extract_end ends a part (a URL still open is given then).
 */
#ifndef SMTPGUARD_URLS_H
#define SMTPGUARD_URLS_H

#include <stddef.h>
#include <stdint.h>
#include "hostlist.h"

/* A host found: lowercase, without trailing dots, 1..SG_HOST_MAX bytes,
 * not NUL-terminated. */
typedef void (*sg_url_host_fn)(void *ctx, const char *host, size_t len);

struct sg_url_extractor {
	sg_url_host_fn on_host;
	void *ctx;
	uint64_t recent;		/* the last 8 bytes seen, lowercased, newest lowest */
	unsigned char state;		/* in text, after a scheme, in an authority */
	unsigned char slashes;		/* after a scheme: '/' or '\' seen */
	unsigned char host_state;	/* collecting, ended (port, other), invalid */
	unsigned char in_brackets;	/* an IPv6 literal */
	unsigned char quote;		/* the quote the URL began after, or 0 */
	unsigned char escape;		/* after '%': hex digits seen + 1, or 0 */
	unsigned char escape_value;
	unsigned char overlong;		/* the host went past SG_HOST_MAX */
	unsigned char ref_len;		/* an HTML character reference in progress */
	char ref[12];
	size_t host_len;
	size_t split_at;		/* a line break skipped in a quoted URL's host here */
	char host[SG_HOST_MAX + 1];	/* and a trailing dot */
	unsigned long hosts;		/* given to on_host */
	unsigned long overlong_hosts;	/* longer than SG_HOST_MAX: not given */
	unsigned long invalid_hosts;	/* a bad escape or byte, unclosed [: not given */
};

void sg_url_extract_init(struct sg_url_extractor *ex, sg_url_host_fn on_host, void *ctx);
/* Another chunk of a text part's decoded text. */
void sg_url_extract(struct sg_url_extractor *ex, const char *data, size_t n);
/* The part has ended: a URL still open is ended and its host given; the
 * extractor is ready for the next part (its counts kept). */
void sg_url_extract_end(struct sg_url_extractor *ex);

#endif
