/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_smtp.c - the SMTP wire parsers: command lines and verbs, replies,
 * the end of DATA (and the ends a lenient MX might see: SMTP smuggling), and
 * EHLO extensions removed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "smtp.h"
#include "test.h"

#define S(x) x, sizeof(x) - 1

static void test_lines(void)
{
	size_t len;

	ASSERT_EQ(smtp_next_line(S("EHLO vm\r\nMAIL"), 512, &len), SMTP_LINE_OK, "line: first line found");
	ASSERT_EQ(len, 9, "line: its length includes CRLF");
	ASSERT_EQ(smtp_next_line(S("EHLO vm"), 512, &len), SMTP_LINE_NONE, "line: incomplete line waits");
	ASSERT_EQ(smtp_next_line(S("EHLO vm\n"), 512, &len), SMTP_LINE_OK, "line: bare LF ends a line");
	ASSERT_EQ(smtp_next_line(S("0123456789"), 10, &len), SMTP_LINE_TOO_LONG, "line: no LF within max is too long");
	ASSERT_EQ(smtp_next_line(S("012345678\n"), 10, &len), SMTP_LINE_OK, "line: LF at max is fine");
	ASSERT_EQ(smtp_verb_of(S("ehlo vm.example\r\n"), NULL), SMTP_EHLO, "verb: lower-case ehlo");
	ASSERT_EQ(smtp_verb_of(S("MAIL FROM:<a@b>\r\n"), NULL), SMTP_MAIL, "verb: MAIL");
	ASSERT_EQ(smtp_verb_of(S("DATA\r\n"), NULL), SMTP_DATA, "verb: DATA");
	ASSERT_EQ(smtp_verb_of(S("STARTTLS\r\n"), NULL), SMTP_STARTTLS, "verb: STARTTLS");
	ASSERT_EQ(smtp_verb_of(S("DATAX\r\n"), NULL), SMTP_UNKNOWN, "verb: DATAX is not DATA");
	ASSERT_EQ(smtp_verb_of(S("XCLIENT ADDR=1\r\n"), NULL), SMTP_UNKNOWN, "verb: unknown verbs are unknown");
	ASSERT_EQ(smtp_verb_of(S(""), NULL), SMTP_UNKNOWN, "verb: empty line");
	/* read as Postfix reads them: otherwise a "DATA<TAB>" the MX answers
	 * 354 would pass as an unknown command, its body unscanned */
	ASSERT_EQ(smtp_verb_of(S("DATA\t\r\n"), NULL), SMTP_DATA, "verb: DATA and a tab");
	ASSERT_EQ(smtp_verb_of(S(" DATA\r\n"), NULL), SMTP_DATA, "verb: a blank before DATA");
	ASSERT_EQ(smtp_verb_of(S("\tdata \r\n"), NULL), SMTP_DATA, "verb: tab, data, blank");
	ASSERT_EQ(smtp_verb_of(S("RCPT\tTO:<a@b>\r\n"), NULL), SMTP_RCPT, "verb: RCPT and a tab");
	ASSERT_EQ(smtp_verb_of(S("DATA\n"), NULL), SMTP_DATA, "verb: DATA and a bare LF");
	ASSERT_EQ(smtp_verb_of(S("   \r\n"), NULL), SMTP_UNKNOWN, "verb: only blanks");
	{
		size_t arg = 0;

		ASSERT_EQ(smtp_verb_of(S(" MAIL \t FROM:<a@b>\r\n"), &arg), SMTP_MAIL, "verb: spaced MAIL");
		ASSERT_EQ(arg, 8, "verb: its argument starts past the blanks");
		ASSERT_EQ(smtp_verb_of(S("QUIT"), &arg), SMTP_QUIT, "verb: QUIT without CRLF");
		ASSERT_EQ(arg, 4, "verb: no argument: at the end");
	}
}

static void test_replies(void)
{
	struct smtp_reply r;

	ASSERT_EQ(smtp_next_reply(S("220 mx ESMTP\r\n"), 512, &r), SMTP_REPLY_OK, "reply: one line");
	ASSERT_EQ(r.code, 220, "reply: code 220");
	ASSERT_EQ(r.lines, 1, "reply: one line counted");
	ASSERT_EQ(smtp_next_reply(S("250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n354"), 512, &r),
		  SMTP_REPLY_OK, "reply: multi-line");
	ASSERT_EQ(r.lines, 3, "reply: three lines");
	ASSERT_EQ(r.len, 39, "reply: length of the three lines only");
	ASSERT_EQ(smtp_next_reply(S("250-mx\r\n250-PIPE"), 512, &r), SMTP_REPLY_NONE,
		  "reply: incomplete multi-line waits");
	ASSERT_EQ(smtp_next_reply(S("250-mx\r\n251 x\r\n"), 512, &r), SMTP_REPLY_MALFORMED,
		  "reply: codes that differ are malformed");
	ASSERT_EQ(smtp_next_reply(S("25 x\r\n"), 512, &r), SMTP_REPLY_MALFORMED, "reply: two digits");
	ASSERT_EQ(smtp_next_reply(S("250x\r\n"), 512, &r), SMTP_REPLY_MALFORMED, "reply: bad separator");
	ASSERT_EQ(smtp_next_reply(S("650 x\r\n"), 512, &r), SMTP_REPLY_MALFORMED, "reply: 6xx");
	ASSERT_EQ(smtp_next_reply(S("250\r\n"), 512, &r), SMTP_REPLY_OK, "reply: bare code line");
	ASSERT_EQ(smtp_next_reply(S("250 aaaaaaaaaaaaaaaa"), 10, &r), SMTP_REPLY_TOO_LONG,
		  "reply: over-long line");
}

static void test_data(void)
{
	size_t body;

	ASSERT_EQ(smtp_data_scan(S("Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n"), 1, &body),
		  SMTP_DATA_END, "data: end found");
	ASSERT_EQ(body, 21, "data: body ends before the dot");
	ASSERT_EQ(smtp_data_scan(S(".\r\n"), 1, &body), SMTP_DATA_END, "data: empty body");
	ASSERT_EQ(body, 0, "data: empty body has no bytes");
	ASSERT_EQ(smtp_data_scan(S("a\r\n..\r\nb\r\n"), 1, &body), SMTP_DATA_MORE,
		  "data: a stuffed dot is not the end");
	ASSERT_EQ(body, 5, "data: the line breaks in the last 4 bytes are held back");
	ASSERT_EQ(smtp_data_scan(S("hello\r\n."), 0, &body), SMTP_DATA_MORE, "data: dot at the chunk end waits");
	ASSERT_EQ(body, 5, "data: the CRLF before the dot is held with it");
	ASSERT_EQ(smtp_data_scan(S("\r\n.\r\n"), 0, &body), SMTP_DATA_END, "data: end after held bytes");
	ASSERT_EQ(body, 2, "data: the held CRLF is body");
	ASSERT_EQ(smtp_data_scan(S("hello\r"), 0, &body), SMTP_DATA_MORE, "data: trailing CR waits");
	ASSERT_EQ(body, 5, "data: trailing CR held");
	ASSERT_EQ(smtp_data_scan(S("a.b\r\nc"), 1, &body), SMTP_DATA_MORE, "data: a dot mid-line is body");
	ASSERT_EQ(body, 3, "data: up to the last line break may go");
	/* SMTP smuggling: ends that some MX accept and the proxy must not miss */
	ASSERT_EQ(smtp_data_scan(S("hello\n.\r\nMAIL FROM:<x>\r\n"), 1, &body), SMTP_DATA_SMUGGLE,
		  "data: <LF>.<CR><LF> is refused");
	ASSERT_EQ(smtp_data_scan(S("hello\r\n.\nMAIL"), 1, &body), SMTP_DATA_SMUGGLE,
		  "data: <CR><LF>.<LF> is refused");
	ASSERT_EQ(smtp_data_scan(S("hello\r.\rMAIL"), 1, &body), SMTP_DATA_SMUGGLE,
		  "data: <CR>.<CR> is refused");
	ASSERT_EQ(smtp_data_scan(S("\n.\r\n"), 0, &body), SMTP_DATA_SMUGGLE,
		  "data: a held bare LF before the dot is refused");
	/* and the ones an MX that ends lines at a bare CR would see */
	ASSERT_EQ(smtp_data_scan(S("hello\r\n.\rMAIL"), 1, &body), SMTP_DATA_SMUGGLE,
		  "data: <CR><LF>.<CR> then more is refused");
	ASSERT_EQ(smtp_data_scan(S("hello\n.\rMAIL"), 1, &body), SMTP_DATA_SMUGGLE,
		  "data: <LF>.<CR> then more is refused");
	ASSERT_EQ(smtp_data_scan(S("hello\r.\nMAIL"), 1, &body), SMTP_DATA_SMUGGLE,
		  "data: <CR>.<LF> is refused");
	ASSERT_EQ(smtp_data_scan(S("hello\r.\r\nMAIL"), 1, &body), SMTP_DATA_SMUGGLE,
		  "data: <CR>.<CR><LF> is refused");
	ASSERT_EQ(smtp_data_scan(S("a\r.b\r\nc"), 1, &body), SMTP_DATA_MORE,
		  "data: a dot after a bare CR, mid-line, is body");
	ASSERT_EQ(smtp_data_scan(S("a\r\n..\r\nc"), 1, &body), SMTP_DATA_MORE,
		  "data: a stuffed dot line is body");
	ASSERT_EQ(smtp_data_scan(S("a\r\n.\r"), 1, &body), SMTP_DATA_MORE,
		  "data: <CR><LF>.<CR> at the end waits");
	ASSERT_EQ(body, 1, "data: and is held from its line break");
}

/* Every split of a message into two chunks finds the same end. */
static void test_data_splits(void)
{
	static const char msg[] = "From: a\r\n\r\nline .one\r\n..stuffed\r\n.\r\nQUIT\r\n";
	size_t n = sizeof(msg) - 1, want = 33;
	int all_ok = 1;

	for (size_t cut = 0; cut <= n; cut++) {
		size_t sent = 0, body, held_from;
		char buf[128];
		enum smtp_data_result r;

		r = smtp_data_scan(msg, cut, 1, &body);
		if (r != SMTP_DATA_MORE) {
			all_ok &= r == SMTP_DATA_END && body == want && cut >= want + 3;
			continue;
		}
		sent = body;
		held_from = body;
		memcpy(buf, msg + held_from, n - held_from);
		r = smtp_data_scan(buf, n - held_from, sent == 0, &body);
		all_ok &= r == SMTP_DATA_END && sent + body == want;
	}
	ASSERT_TRUE(all_ok, "data: every two-chunk split finds the end at byte 33");
}

static void test_ehlo(void)
{
	static const char *const drop[] = { "CHUNKING", "STARTTLS" };
	char r1[] = "250-mx.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 STARTTLS\r\n";
	char r2[] = "250-mx.example\r\n250-chunking\r\n250 8BITMIME\r\n";
	char r3[] = "250 mx.example\r\n";
	size_t n;

	n = smtp_ehlo_remove(r1, strlen(r1), drop, 2);
	r1[n] = 0;
	ASSERT_STREQ(r1, "250-mx.example\r\n250 PIPELINING\r\n", "ehlo: last kept line gets '250 '");
	n = smtp_ehlo_remove(r2, strlen(r2), drop, 2);
	r2[n] = 0;
	ASSERT_STREQ(r2, "250-mx.example\r\n250 8BITMIME\r\n", "ehlo: keywords are case-insensitive");
	n = smtp_ehlo_remove(r3, strlen(r3), drop, 2);
	r3[n] = 0;
	ASSERT_STREQ(r3, "250 mx.example\r\n", "ehlo: a one-line reply is kept");
	{
		const char *offer = "250-mx.example\r\n250-starttls\r\n250 SIZE 1000\r\n";
		const char *none = "250-STARTTLS.example\r\n250-STARTTLSX\r\n250 8BITMIME\r\n";

		ASSERT_EQ(smtp_ehlo_has(offer, strlen(offer), "STARTTLS"), 1,
			  "ehlo: STARTTLS offered (any case)");
		ASSERT_EQ(smtp_ehlo_has(none, strlen(none), "STARTTLS"), 0,
			  "ehlo: neither the greeting line nor a longer keyword is STARTTLS");
		ASSERT_EQ(smtp_ehlo_has(offer, strlen(offer), "SIZE"), 1,
			  "ehlo: a keyword with parameters");
	}
}

static void test_ehlo_size(void)
{
	static const struct {
		const char *reply;
		size_t room;
		uint64_t limit;
		const char *want, *what;
	} cases[] = {
		{ "250-mx\r\n250-SIZE 209715200\r\n250 8BITMIME\r\n", 256, 1000,
		  "250-mx\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
		  "ehlo size: the MX's larger limit becomes this host's" },
		{ "250-mx\r\n250-SIZE 999\r\n250 8BITMIME\r\n", 256, 1000,
		  "250-mx\r\n250-SIZE 999\r\n250 8BITMIME\r\n", "ehlo size: a lower MX limit stays" },
		{ "250-mx\r\n250 SIZE\r\n", 256, 52428800, "250-mx\r\n250 SIZE 52428800\r\n",
		  "ehlo size: SIZE without a value (no limit) gets this host's, last line kept '250 '" },
		{ "250-mx\r\n250-size 0\r\n250 DSN\r\n", 256, 1024,
		  "250-mx\r\n250-size 1024\r\n250 DSN\r\n",
		  "ehlo size: SIZE 0 (no fixed maximum) gets this host's, any case" },
		{ "250-mx\r\n250-SIZE 99999999999999999999999999\r\n250 DSN\r\n", 256, 1024,
		  "250-mx\r\n250-SIZE 1024\r\n250 DSN\r\n",
		  "ehlo size: a value too long for 64 bits is larger" },
		{ "250-SIZE.example\r\n250-SIZEX 5\r\n250 DSN\r\n", 256, 1024,
		  "250-SIZE.example\r\n250-SIZEX 5\r\n250 DSN\r\n",
		  "ehlo size: neither the greeting line nor a longer keyword is SIZE" },
		{ "250-mx\r\n250 SIZE\r\n", 20, 52428800, "250-mx\r\n250 SIZE\r\n",
		  "ehlo size: no room in the buffer, the reply is left as it was" },
		{ "250-mx\n250 SIZE 0\n", 256, 2048, "250-mx\n250 SIZE 2048\n",
		  "ehlo size: bare LF line ends kept" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[256];
		size_t n;

		snprintf(buf, sizeof(buf), "%s", cases[i].reply);
		n = smtp_ehlo_cap_size(buf, strlen(buf), cases[i].room, cases[i].limit);
		buf[n] = 0;
		ASSERT_STREQ(buf, cases[i].want, cases[i].what);
	}
}

int main(void)
{
	test_lines();
	test_replies();
	test_data();
	test_data_splits();
	test_ehlo();
	test_ehlo_size();
	return test_exit_status();
}
