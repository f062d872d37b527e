/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scanner.c - the scanner: a message cut into lines however it comes,
 * the Message-ID noted, the pattern engine's verdicts, and a second engine
 * plugged in behind it (told the envelope, its verdict taken when the
 * patterns accept, its lines no longer cut once every engine has decided). */
#include <stdlib.h>
#include <unistd.h>
#include "scanner.h"
#include "test.h"

#define S(x) x, sizeof(x) - 1

static struct sg_patterns *load_rules(const char *text)
{
	char path[] = "/tmp/sg-test-patterns-XXXXXX", err[256];
	struct sg_patterns *p;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		ASSERT_TRUE(0, "patterns: temporary file");
		return NULL;
	}
	close(fd);
	p = sg_patterns_load(path, err, sizeof(err));
	unlink(path);
	ASSERT_TRUE(p != NULL, "patterns: loaded");
	return p;
}

static enum sg_verdict_kind scan_all(const struct sg_scanner *sc, const char *msg, size_t n,
				     size_t chunk, char *reason, size_t len, struct sg_scan *scan)
{
	struct sg_envelope env = { .vm = "192.0.2.11:4000", .mail_from = "a@example.org",
				   .rcpts = 2 };

	sg_scan_begin(scan, sc, &env);
	for (size_t off = 0; off < n; off += chunk)
		sg_scan_feed(scan, msg + off, n - off < chunk ? n - off : chunk);
	return sg_scan_verdict(scan, reason, len);
}

/* A second engine: refuses (tempfail) a message from a sender it is told
 * of in the envelope, and counts the lines it was given. */
struct counting_state {
	int lines;
	int from_listed;
};

static void counting_begin(void *state, const void *config, const struct sg_envelope *env)
{
	struct counting_state *st = state;

	st->from_listed = strcmp(env->mail_from, (const char *)config) == 0;
}

static int counting_line(void *state, const void *config, const char *line, size_t len,
			 int in_body)
{
	struct counting_state *st = state;

	(void)config;
	(void)line;
	(void)len;
	st->lines++;
	return in_body;	/* decided at the first body line */
}

static enum sg_verdict_kind counting_verdict(void *state, const void *config, char *reason,
					     size_t len)
{
	struct counting_state *st = state;

	(void)config;
	if (!st->from_listed)
		return SG_ACCEPT;
	snprintf(reason, len, "sender listed after %d lines", st->lines);
	return SG_TEMPFAIL;
}

static const struct sg_engine counting_engine = {
	.name = "counting",
	.begin = counting_begin,
	.line = counting_line,
	.verdict = counting_verdict,
};

int main(void)
{
	static const char clean[] = "Message-ID: <m1@example.org>\r\nSubject: hello\r\n\r\n"
				    "nothing to see\r\nhere\r\n";
	static const char spam[] = "Subject: offer\r\n\r\nfirst\r\nbuy-cheap-pills-42 now\r\n";
	static const char bad_header[] = "X-Campaign: FORBIDDEN\r\n\r\nbody\r\n";
	struct sg_patterns *p = load_rules("# rules\nheader ^X-Campaign:.*FORBIDDEN\n"
					   "body buy-cheap-pills-[0-9]+\n");
	struct sg_scanner sc = { 0 };
	struct sg_scan *scan = calloc(1, sizeof(*scan));
	char reason[200];

	if (!p || !scan)
		return 1;
	ASSERT_EQ(sg_patterns_count(p), 2, "patterns: two rules");
	ASSERT_EQ(sg_scanner_add(&sc, &sg_pattern_engine, p), 0, "scanner: patterns added");

	for (size_t chunk = 1; chunk <= sizeof(clean); chunk += 7) {
		ASSERT_EQ(scan_all(&sc, S(clean), chunk, reason, sizeof(reason), scan), SG_ACCEPT,
			  "scan: a clean message, in any chunks, is accepted");
		ASSERT_STREQ(scan->message_id, "<m1@example.org>", "scan: Message-ID noted");
		ASSERT_EQ(scan->bytes, sizeof(clean) - 1, "scan: every byte counted");
	}
	for (size_t chunk = 1; chunk <= sizeof(spam); chunk += 5) {
		ASSERT_EQ(scan_all(&sc, S(spam), chunk, reason, sizeof(reason), scan), SG_REJECT,
			  "scan: a body rule refuses, in any chunks");
		ASSERT_CONTAINS(reason, "matches body buy-cheap-pills", "scan: the rule is the reason");
	}
	ASSERT_EQ(scan_all(&sc, S(bad_header), 4, reason, sizeof(reason), scan), SG_REJECT,
		  "scan: a header rule refuses");
	ASSERT_EQ(scan_all(&sc, S("Subject: x\r\n\r\nbuy-cheap-pills-1"), 64, reason,
			   sizeof(reason), scan), SG_REJECT,
		  "scan: a last line without its break is judged");
	ASSERT_EQ(scan_all(&sc, S("Subject: buy-cheap-pills-1\r\n\r\nx\r\n"), 64, reason,
			   sizeof(reason), scan), SG_ACCEPT,
		  "scan: a body rule does not judge headers");
	ASSERT_EQ(scan_all(NULL, S(spam), 64, reason, sizeof(reason), scan), SG_ACCEPT,
		  "scan: no engine accepts");

	/* a second engine, behind the patterns */
	ASSERT_EQ(sg_scanner_add(&sc, &counting_engine, "a@example.org"), 0,
		  "scanner: a second engine added");
	ASSERT_EQ(scan_all(&sc, S(clean), 3, reason, sizeof(reason), scan), SG_TEMPFAIL,
		  "engines: the second one's verdict when the first accepts");
	ASSERT_STREQ(reason, "sender listed after 3 lines",
		     "engines: told the envelope; given lines up to its decision only");
	ASSERT_EQ(scan_all(&sc, S(spam), 3, reason, sizeof(reason), scan), SG_REJECT,
		  "engines: the first one not to accept gives the verdict");
	ASSERT_CONTAINS(reason, "matches body", "engines: and its reason");
	ASSERT_EQ(sg_scanner_add(&sc, &counting_engine, "x"), 0, "scanner: third engine");
	ASSERT_EQ(sg_scanner_add(&sc, &counting_engine, "x"), 0, "scanner: fourth engine");
	ASSERT_EQ(sg_scanner_add(&sc, &counting_engine, "x"), -1, "scanner: a fifth is refused");

	free(scan);
	sg_patterns_free(p);
	return test_exit_status();
}
