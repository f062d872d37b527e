/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * smtp_client.h - the pieces the bench's SMTP clients (smtp_hold,
 * smtp_latency) share: usage errors, numbers given as options, the server
 * given as ADDR[:PORT], and the lines of text a test message is made of.
 * Each client is a single .c file that builds on its own, with no library
 * of the project's, so these are static functions in a header.
 *
 * Before including it, a client defines
 *   CLIENT_NAME   its name, which starts its messages ("smtp_hold")
 *   CLIENT_USAGE  the usage line printed after a usage error
 */
#ifndef SMTPGUARD_BENCH_SMTP_CLIENT_H
#define SMTPGUARD_BENCH_SMTP_CLIENT_H

#if !defined(CLIENT_NAME) || !defined(CLIENT_USAGE)
#error "define CLIENT_NAME and CLIENT_USAGE before including smtp_client.h"
#endif

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_PORT		"25"
#define BODY_LINE_LEN		78	/* characters before each CRLF */

/* A test message's headers, up to the empty line before its body; the
 * subject names the client, so a message found at the far end says where
 * it came from. */
#define MESSAGE_HEADERS(from, to, subject) \
	"From: <" from ">\r\n" \
	"To: <" to ">\r\n" \
	"Subject: " subject "\r\n" \
	"\r\n"

/* The server to connect to, resolved once before any session starts. */
struct smtp_target {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char name[300];		/* as given, for messages */
};

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Exit status 2 sets a wrong command line apart from a failed run (1). */
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(CLIENT_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s\n", CLIENT_USAGE);
	exit(2);
}

/* A whole decimal number in [min, max], with an optional k or m suffix
 * (times 1024, 1024^2) when allowed; -1 when s is anything else. */
static int parse_number(const char *s, int suffixes, unsigned long min, unsigned long max,
			unsigned long *out)
{
	unsigned long v, scale = 1;
	char *end;

	/* strtoul would take a sign or white space, and "-1" as ULONG_MAX */
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno)
		return -1;
	if (suffixes && (*end == 'k' || *end == 'K'))
		scale = 1024, end++;
	else if (suffixes && (*end == 'm' || *end == 'M'))
		scale = 1024 * 1024, end++;
	if (*end || v > ULONG_MAX / scale || v * scale < min || v * scale > max)
		return -1;
	*out = v * scale;
	return 0;
}

/* The value of option -opt, a number as parse_number takes it; anything
 * else is a usage error that names the option and the range. */
static unsigned long number_option(int opt, const char *arg, int suffixes, unsigned long min,
				   unsigned long max, const char *what)
{
	unsigned long v;

	if (parse_number(arg, suffixes, min, max, &v))
		usage_error("-%c: '%s' is not %s from %lu to %lu", opt, arg, what, min, max);
	return v;
}

/* What getopt (called with a leading ':' in its option string, and opterr
 * 0, so that the message is ours) returned for a bad option: ':' when the
 * option's value is missing, '?' when the option is unknown. */
static void option_error(int opt) __attribute__((noreturn));

static void option_error(int opt)
{
	if (opt == ':')
		usage_error("-%c needs a value", optopt);
	usage_error("unknown option -%c", optopt);
}

/* After the options, exactly one argument: the server, ADDR[:PORT]. */
static const char *server_argument(int argc, char **argv)
{
	if (optind != argc - 1)
		usage_error(optind == argc ? "no server given" :
			    "only one server, as the last argument");
	return argv[optind];
}

/* ADDR[:PORT], [ADDR6]:PORT or a bare IPv6 address, numeric or a name.
 * A bare IPv6 address has more than one colon, so a single colon is taken
 * as the one before the port. */
static int resolve_target(const char *spec, struct smtp_target *t, char *err, size_t errlen)
{
	char host[256];
	const char *port = DEFAULT_PORT, *colon;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	unsigned long port_num;
	int rc;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || (close[1] && close[1] != ':') || close == spec + 1) {
			snprintf(err, errlen, "'%s' is not [IPV6-ADDRESS]:PORT", spec);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close - spec - 1), spec + 1);
		if (close[1] == ':')
			port = close + 2;
	} else if ((colon = strchr(spec, ':')) && !strchr(colon + 1, ':')) {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
		port = colon + 1;
	} else {
		snprintf(host, sizeof(host), "%s", spec);	/* no port, or bare IPv6 */
	}
	/* getaddrinfo would take port 0, and say less about a bad port */
	if (parse_number(port, 0, 1, 65535, &port_num)) {
		snprintf(err, errlen, "'%s' in '%s' is not a port (1-65535)", port, spec);
		return -1;
	}
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
	t->addr_len = res->ai_addrlen;
	snprintf(t->name, sizeof(t->name), "%s", spec);
	freeaddrinfo(res);
	return 0;
}

/*
 * Exactly len bytes of a message's body: lines of BODY_LINE_LEN letters,
 * each ended by a CRLF, the last one shorter to fit. No line starts with a
 * dot, so nothing needs dot-stuffing and any size can be asked for.
 *
 * When one byte would be left for a last line, whole_lines says what to do:
 * 0: leave it a lone letter with no CRLF (the caller ends that line before
 *    the final dot);
 * 1: shorten the line before it by one, so that every line ends with a CRLF
 *    (for a message left open in the middle of DATA, where the final dot
 *    comes later and must start a line); len must then not be 1.
 */
static void fill_text_lines(char *buf, size_t len, int whole_lines)
{
	size_t pos = 0;

	for (size_t line = 0; pos < len; line++) {
		size_t left = len - pos;
		size_t chars = left > BODY_LINE_LEN + 2 ? BODY_LINE_LEN :
			       left >= 2 ? left - 2 : left;

		if (whole_lines && left >= 2 && left - chars - 2 == 1)
			chars--;
		for (size_t i = 0; i < chars; i++)
			buf[pos++] = (char)('a' + (line + i) % 26);
		if (left - chars >= 2) {
			buf[pos++] = '\r';
			buf[pos++] = '\n';
		}
	}
}

#endif /* SMTPGUARD_BENCH_SMTP_CLIENT_H */
