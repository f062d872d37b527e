/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * http_request.h - judges the bytes a metrics scraper sent so far: is the
 * request whole (its header ends with a blank line), and what does it ask.
 * Pure (no I/O), so hostile input is tested alone; the listener
 * (daemon/metrics.c) bounds the size and the time it gives a request.
 * Only what a scraper needs: GET (or HEAD) of one path, HTTP/1.0 or 1.1.
 */
#ifndef SMTPGUARD_HTTP_REQUEST_H
#define SMTPGUARD_HTTP_REQUEST_H

#include <stddef.h>

#define SG_HTTP_MAX_REQUEST 4096	/* a scraper's request is a few hundred bytes */

enum sg_http_verdict {
	SG_HTTP_INCOMPLETE = 0,	/* read more (the header has not ended) */
	SG_HTTP_GET,		/* GET of the path: 200 */
	SG_HTTP_HEAD,		/* HEAD of the path: 200 without the body */
	SG_HTTP_NOT_FOUND,	/* GET or HEAD of another path: 404 */
	SG_HTTP_BAD_METHOD,	/* another method: 405 */
	SG_HTTP_BAD_REQUEST,	/* not an HTTP/1.x request: 400 */
	SG_HTTP_TOO_LARGE,	/* no end of the header within max bytes: 431 */
};

/* buf[0..len) is all the connection sent; path is the one served
 * ("/metrics", a query string after it allowed); max bounds the header. */
enum sg_http_verdict sg_http_judge(const char *buf, size_t len, const char *path, size_t max);
/* The status line's code and reason for a verdict ("404 Not Found"). */
const char *sg_http_status(enum sg_http_verdict v);

#endif
