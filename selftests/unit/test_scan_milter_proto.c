/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_milter_proto.c - the milter protocol codec: every MTA command's
 * bytes, written out by hand from the protocol (libmilter's mfdef.h,
 * Postfix's milter8.c); every milter reply decoded, whole, a byte at a
 * time and cut at every point; every kind of malformed reply refused with
 * its message; what is sent and awaited once flags are negotiated. */
#include <stdint.h>
#include <stdlib.h>
#include "milter_proto.h"
#include "test.h"

#define S(x) x, sizeof(x) - 1

static char storage[SG_MILTER_REPLY_MAX];

/* ---- encoders ---- */

static char out_bytes[70000];

static struct sg_milter_buf fresh_buf(void)
{
	struct sg_milter_buf b = { out_bytes, 0, sizeof(out_bytes), 0 };

	return b;
}

static void expect_bytes(const struct sg_milter_buf *b, const char *want, size_t want_len,
			 const char *name)
{
	char label[200];

	snprintf(label, sizeof(label), "%s: length", name);
	ASSERT_EQ(b->len, want_len, label);
	snprintf(label, sizeof(label), "%s: bytes", name);
	ASSERT_TRUE(b->len == want_len && memcmp(b->data, want, want_len) == 0, label);
}

static void test_encode_negotiation(void)
{
	struct sg_milter_buf b = fresh_buf();
	struct sg_milter_optneg offer;

	sg_milter_mta_offer(&offer);
	ASSERT_EQ(offer.version, 6, "offer: version 6");
	ASSERT_EQ(offer.actions, 0x1ff, "offer: every action Postfix offers (0x1ff)");
	ASSERT_EQ(offer.protocol, 0x1fffff, "offer: every version 6 protocol flag (0x1fffff)");
	ASSERT_EQ(offer.protocol & (SG_MILTER_SMFIP_MDS_256K | SG_MILTER_SMFIP_MDS_1M), 0,
		  "offer: no larger commands");
	ASSERT_EQ(sg_milter_put_optneg(&b, offer.version, offer.actions, offer.protocol), 0,
		  "encode optneg: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x0d" "O" "\x00\x00\x00\x06" "\x00\x00\x01\xff"
			   "\x00\x1f\xff\xff"), "encode optneg");
}

static void test_encode_macros(void)
{
	struct sg_milter_buf b = fresh_buf();
	struct sg_milter_macro m[] = {
		{ SG_MILTER_STR("j"), SG_MILTER_STR("mx.example") },
		{ SG_MILTER_STR("{daemon_name}"), SG_MILTER_STR("smtpguard") },
	};
	struct sg_milter_macro empty_name[] = { { SG_MILTER_STR(""), SG_MILTER_STR("x") } };
	struct sg_milter_macro nul_value[] = { { SG_MILTER_STR("i"), { "a\0b", 3 } } };

	ASSERT_EQ(sg_milter_put_macros(&b, 'C', m, 2), 0, "encode macros: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x27" "D" "C" "j\0" "mx.example\0" "{daemon_name}\0"
			   "smtpguard\0"), "encode macros for connect");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_macros(&b, 'Q', m, 2), -1, "encode macros: refused for QUIT (libmilter fails)");
	ASSERT_EQ(sg_milter_put_macros(&b, '\0', m, 2), -1, "encode macros: refused for a NUL command");
	ASSERT_EQ(sg_milter_put_macros(&b, 'M', m, 0), -1, "encode macros: an empty list is refused");
	ASSERT_EQ(sg_milter_put_macros(&b, 'M', empty_name, 1), -1, "encode macros: an empty name is refused");
	ASSERT_EQ(sg_milter_put_macros(&b, 'M', nul_value, 1), -1, "encode macros: a NUL in a value is refused");
	ASSERT_EQ(b.len, 0, "encode macros: refusals leave nothing");
}

static void test_encode_connect(void)
{
	struct sg_milter_buf b = fresh_buf();
	char long_path[200];

	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("mail.example"), SG_MILTER_SMFIA_INET, 25,
					SG_MILTER_STR("192.0.2.1")), 0, "encode connect v4: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x1b" "C" "mail.example\0" "4" "\x00\x19" "192.0.2.1\0"),
		     "encode connect v4");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("v6.example"), SG_MILTER_SMFIA_INET6, 587,
					SG_MILTER_STR("2001:db8::1")), 0, "encode connect v6: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x1b" "C" "v6.example\0" "6" "\x02\x4b" "2001:db8::1\0"),
		     "encode connect v6");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("localhost"), SG_MILTER_SMFIA_UNIX, 0,
					SG_MILTER_STR("/run/sock")), 0, "encode connect unix: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x18" "C" "localhost\0" "L" "\x00\x00" "/run/sock\0"),
		     "encode connect unix");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("unknown"), SG_MILTER_SMFIA_UNKNOWN, 25,
					SG_MILTER_STR("192.0.2.1")), 0, "encode connect unknown: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x0a" "C" "unknown\0" "U"), "encode connect unknown: no port, no address");

	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("h"), SG_MILTER_SMFIA_INET, 25,
					SG_MILTER_STR("300.1.1.1")), -1, "encode connect: a bad IPv4 address is refused");
	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("h"), SG_MILTER_SMFIA_INET, 25,
					SG_MILTER_STR("2001:db8::1")), -1, "encode connect: an IPv6 address as IPv4 is refused");
	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("h"), SG_MILTER_SMFIA_INET6, 25,
					SG_MILTER_STR("192.0.2.1")), -1, "encode connect: an IPv4 address as IPv6 is refused");
	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("h"), SG_MILTER_SMFIA_INET, 25,
					(struct sg_milter_str){ "192.0.2.1\0x", 11 }), -1,
		  "encode connect: a NUL inside the address is refused");
	ASSERT_EQ(sg_milter_put_connect(&b, (struct sg_milter_str){ "h\0x", 3 }, SG_MILTER_SMFIA_INET, 25,
					SG_MILTER_STR("192.0.2.1")), -1,
		  "encode connect: a NUL inside the hostname is refused");
	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("h"), 'X', 25, SG_MILTER_STR("192.0.2.1")), -1,
		  "encode connect: an unknown family is refused");
	memset(long_path, 'p', sizeof(long_path));
	ASSERT_EQ(sg_milter_put_connect(&b, SG_MILTER_STR("h"), SG_MILTER_SMFIA_UNIX, 0,
					(struct sg_milter_str){ long_path, sizeof(long_path) }), -1,
		  "encode connect: a unix path longer than sun_path is refused");
	ASSERT_EQ(b.len, 0, "encode connect: refusals leave nothing");
}

static void test_encode_envelope(void)
{
	struct sg_milter_buf b = fresh_buf();
	struct sg_milter_str mail[] = { SG_MILTER_STR("<a@example.org>"), SG_MILTER_STR("SIZE=1000") };
	struct sg_milter_str rcpt[] = { SG_MILTER_STR("<b@example.net>") };
	struct sg_milter_str nul_arg[] = { SG_MILTER_STR("<a@b>"), { "X=1\0Y", 5 } };

	ASSERT_EQ(sg_milter_put_helo(&b, SG_MILTER_STR("vm.example")), 0, "encode helo: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x0c" "H" "vm.example\0"), "encode helo");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_mail(&b, mail, 2), 0, "encode mail: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x1b" "M" "<a@example.org>\0" "SIZE=1000\0"),
		     "encode mail with an ESMTP parameter");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_rcpt(&b, rcpt, 1), 0, "encode rcpt: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x11" "R" "<b@example.net>\0"), "encode rcpt");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_mail(&b, mail, 0), -1, "encode mail: no address is refused");
	ASSERT_EQ(sg_milter_put_rcpt(&b, nul_arg, 2), -1, "encode rcpt: a NUL inside a parameter is refused");
	ASSERT_EQ(sg_milter_put_helo(&b, (struct sg_milter_str){ "vm\0evil", 7 }), -1,
		  "encode helo: a NUL inside is refused, not truncated");
	ASSERT_EQ(b.len, 0, "encode envelope: refusals leave nothing");
	ASSERT_EQ(sg_milter_put_unknown(&b, SG_MILTER_STR("XFOO bar")), 0, "encode unknown: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x0a" "U" "XFOO bar\0"), "encode unknown");
}

static void test_encode_message(void)
{
	struct sg_milter_buf b = fresh_buf();
	static char big[SG_MILTER_CHUNK_SIZE + 1];

	ASSERT_EQ(sg_milter_put_data(&b), 0, "encode data: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x01" "T"), "encode data");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_header(&b, SG_MILTER_STR("Subject"), SG_MILTER_STR("hello")), 0,
		  "encode header: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x0f" "L" "Subject\0" "hello\0"), "encode header");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_eoh(&b), 0, "encode eoh: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x01" "N"), "encode eoh");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_body(&b, S("line\r\n")), 0, "encode body: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x07" "B" "line\r\n"), "encode body");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_eom(&b), 0, "encode eom: accepted");
	ASSERT_EQ(sg_milter_put_abort(&b), 0, "encode abort: accepted");
	ASSERT_EQ(sg_milter_put_quit(&b), 0, "encode quit: accepted");
	ASSERT_EQ(sg_milter_put_quit_nc(&b), 0, "encode quit_nc: accepted");
	expect_bytes(&b, S("\x00\x00\x00\x01" "E" "\x00\x00\x00\x01" "A" "\x00\x00\x00\x01" "Q"
			   "\x00\x00\x00\x01" "K"), "encode eom, abort, quit, quit_nc back to back");

	b = fresh_buf();
	memset(big, 'x', sizeof(big));
	ASSERT_EQ(sg_milter_put_body(&b, big, SG_MILTER_CHUNK_SIZE), 0, "encode body: 65535 bytes accepted");
	ASSERT_EQ(b.len, 4 + 1 + 65535, "encode body: 65535 bytes and the head");
	ASSERT_TRUE(memcmp(b.data, "\x00\x01\x00\x00" "B", 5) == 0, "encode body: length 65536 (command byte and data)");
	b = fresh_buf();
	ASSERT_EQ(sg_milter_put_body(&b, big, SG_MILTER_CHUNK_SIZE + 1), -1, "encode body: 65536 bytes refused");
	ASSERT_EQ(sg_milter_put_header(&b, SG_MILTER_STR("X"), (struct sg_milter_str){ big, 65533 }), -1,
		  "encode header: data of 65536 bytes refused (libmilter's limit)");
	ASSERT_EQ(sg_milter_put_header(&b, SG_MILTER_STR(""), SG_MILTER_STR("v")), -1,
		  "encode header: an empty name is refused");
	ASSERT_EQ(sg_milter_put_header(&b, SG_MILTER_STR("Subject"), (struct sg_milter_str){ "a\0b", 3 }), -1,
		  "encode header: a NUL inside the value is refused");
	ASSERT_EQ(b.len, 0, "encode header: refusals leave nothing");
	ASSERT_EQ(sg_milter_put_header(&b, SG_MILTER_STR("X"), (struct sg_milter_str){ big, 65532 }), 0,
		  "encode header: data of exactly 65535 bytes accepted");
}

static void test_encode_buffers(void)
{
	char small[20];
	struct sg_milter_buf b = { small, 0, sizeof(small), 0 };
	struct sg_milter_buf g = { NULL, 0, 0, 1 };
	int ok = 1;

	ASSERT_EQ(sg_milter_put_optneg(&b, 6, 0, 0), 0, "bounded buffer: a 17-byte packet fits 20");
	ASSERT_EQ(sg_milter_put_eoh(&b), -1, "bounded buffer: the next 5 bytes do not fit");
	ASSERT_EQ(b.len, 17, "bounded buffer: a refused packet leaves len as it was");
	ASSERT_EQ(sg_milter_put_data(&b), -1, "bounded buffer: still refused");
	for (int i = 0; i < 1000 && ok; i++)
		ok = sg_milter_put_header(&g, SG_MILTER_STR("Received"), SG_MILTER_STR("from a by b")) == 0;
	ASSERT_TRUE(ok, "growable buffer: 1000 headers appended");
	ASSERT_EQ(g.len, 1000 * (5 + 9 + 12), "growable buffer: every byte there");
	ASSERT_TRUE(g.cap >= g.len, "growable buffer: cap covers len");
	ASSERT_TRUE(memcmp(g.data + 999 * 26, "\x00\x00\x00\x16" "L" "Received\0" "from a by b\0", 26) == 0,
		    "growable buffer: the last packet intact");
	free(g.data);
}

/* ---- decoder ---- */

/* One line per reply, every decoded field in it, to compare streams. */
static void describe(const struct sg_milter_reply *r, char *out, size_t outlen)
{
	size_t w = 0;

	switch (r->cmd) {
	case 'y':
		w = snprintf(out, outlen, "y %d [%s] <%.*s> lines=%u {%s}", r->replycode.code,
			     r->replycode.enhanced, (int)r->replycode.text_len, r->replycode.text,
			     r->replycode.lines, r->replycode.smtp);
		break;
	case 'h':
	case 'i':
	case 'm':
		w = snprintf(out, outlen, "%c %u %s=%s", r->cmd, (unsigned)r->header.index,
			     r->header.name, r->header.value);
		break;
	case 'q':
		w = snprintf(out, outlen, "q %s", r->reason);
		break;
	case '+':
	case '-':
	case '2':
	case 'e':
		w = snprintf(out, outlen, "%c %s %s", r->cmd, r->address.addr,
			     r->address.args ? r->address.args : "-");
		break;
	case 'b':
		w = snprintf(out, outlen, "b %zu:%.*s", r->len, (int)r->len, r->data);
		break;
	case 'O':
		w = snprintf(out, outlen, "O v%u a%x p%x", (unsigned)r->optneg.version,
			     (unsigned)r->optneg.actions, (unsigned)r->optneg.protocol);
		for (int i = 0; i < SG_MILTER_MACRO_STAGES && w < outlen; i++)
			if (r->optneg.macros[i])
				w += snprintf(out + w, outlen - w, " %d=[%s]", i, r->optneg.macros[i]);
		break;
	default:
		w = snprintf(out, outlen, "%c", r->cmd);
	}
	(void)w;
}

/* Feeds the stream in slices of the given sizes (the last repeated);
 * every reply described, one a line, and the error if one came. */
static int decode_stream(const char *data, size_t n, const size_t *slices, size_t nslices,
			 char *log, size_t loglen)
{
	struct sg_milter_decoder d;
	struct sg_milter_reply r;
	size_t pos = 0, w = 0, k = 0;
	char line[600];

	log[0] = '\0';
	sg_milter_decoder_init(&d, storage, sizeof(storage));
	while (pos < n) {
		size_t slice = slices[k < nslices ? k : nslices - 1], end, used;
		int rc;

		k++;
		end = pos + slice < n ? pos + slice : n;
		while (pos < end) {
			rc = sg_milter_decode(&d, data + pos, end - pos, &used, &r);
			if (used > end - pos)
				return -1;
			pos += used;
			if (rc == SG_MILTER_ERROR) {
				w += snprintf(log + w, loglen - w, "ERROR %s\n", sg_milter_decoder_error(&d));
				return 0;
			}
			if (rc == SG_MILTER_REPLY) {
				describe(&r, line, sizeof(line));
				w += snprintf(log + w, loglen - w, "%s\n", line);
				if (w >= loglen)
					return -1;
			} else if (pos != end) {
				return -1;	/* NEED_MORE takes all it is given */
			}
		}
	}
	if (sg_milter_decoder_pending(&d))
		w += snprintf(log + w, loglen - w, "PENDING %zu\n", sg_milter_decoder_pending(&d));
	return 0;
}

/* Decodes a single whole reply from data, which must be exactly one. */
static int decode_one(struct sg_milter_decoder *d, const char *data, size_t n,
		      struct sg_milter_reply *r)
{
	size_t used = 0;
	int rc;

	sg_milter_decoder_init(d, storage, sizeof(storage));
	rc = sg_milter_decode(d, data, n, &used, r);
	if (rc == SG_MILTER_REPLY && used != n)
		return -2;
	return rc;
}

static void expect_reply(const char *data, size_t n, const char *want, const char *name)
{
	struct sg_milter_decoder d;
	struct sg_milter_reply r;
	char got[600];
	int rc = decode_one(&d, data, n, &r);

	if (rc != SG_MILTER_REPLY) {
		snprintf(got, sizeof(got), "result %d: %s", rc,
			 sg_milter_decoder_error(&d) ? sg_milter_decoder_error(&d) : "");
	} else {
		describe(&r, got, sizeof(got));
	}
	ASSERT_STREQ(got, want, name);
}

static void test_decode_each_reply(void)
{
	struct sg_milter_decoder d;
	struct sg_milter_reply r;

	expect_reply(S("\0\0\0\x01" "c"), "c", "decode continue");
	expect_reply(S("\0\0\0\x01" "a"), "a", "decode accept");
	expect_reply(S("\0\0\0\x01" "r"), "r", "decode reject");
	expect_reply(S("\0\0\0\x01" "t"), "t", "decode tempfail");
	expect_reply(S("\0\0\0\x01" "d"), "d", "decode discard");
	expect_reply(S("\0\0\0\x01" "p"), "p", "decode progress");
	expect_reply(S("\0\0\0\x01" "s"), "s", "decode skip");
	expect_reply(S("\0\0\0\x01" "f"), "f", "decode connection fail");
	expect_reply(S("\0\0\0\x01" "4"), "4", "decode shutdown");
	expect_reply(S("\0\0\0\x10" "y" "550 5.7.1 Spam\0"),
		     "y 550 [5.7.1] <Spam> lines=1 {550 5.7.1 Spam}", "decode replycode");
	expect_reply(S("\0\0\0\x23" "y" "451-4.7.1 first\r\n" "451 4.7.1 second\0"),
		     "y 451 [4.7.1] <first> lines=2 {451-4.7.1 first\r\n451 4.7.1 second}",
		     "decode replycode: multi-line");
	expect_reply(S("\0\0\0\x05" "y" "421\0"), "y 421 [] <> lines=1 {421}",
		     "decode replycode: a code alone");
	expect_reply(S("\0\0\0\x0d" "y" "554 go away\0"), "y 554 [] <go away> lines=1 {554 go away}",
		     "decode replycode: no enhanced code");
	expect_reply(S("\0\0\0\x10" "y" "550 5 things\tx\0"), "y 550 [] <5 things\tx> lines=1 {550 5 things\tx}",
		     "decode replycode: a digit that is no enhanced code, and a tab");
	expect_reply(S("\0\0\0\x16" "y" "550 5.7.1 100%% sure\0"),
		     "y 550 [5.7.1] <100% sure> lines=1 {550 5.7.1 100% sure}",
		     "decode replycode: sendmail's %% undone");
	expect_reply(S("\0\0\0\x0a" "q" "spam fun\0"), "q spam fun", "decode quarantine");
	expect_reply(S("\0\0\0\x0c" "h" "X-Spam\0" "Yes\0"), "h 0 X-Spam=Yes", "decode add header");
	expect_reply(S("\0\0\0\x0b" "i" "\0\0\0\x01" "X-A\0" "v\0"), "i 1 X-A=v", "decode insert header");
	expect_reply(S("\0\0\0\x0e" "m" "\0\0\0\x02" "Subject\0" "\0"), "m 2 Subject=",
		     "decode change header: an empty value deletes");
	expect_reply(S("\0\0\0\x0b" "b" "new body\r\n"), "b 10:new body\r\n", "decode replace body");
	expect_reply(S("\0\0\0\x01" "b"), "b 0:", "decode replace body: empty chunk");
	expect_reply(S("\0\0\0\x07" "+" "<c@x>\0"), "+ <c@x> -", "decode add recipient");
	expect_reply(S("\0\0\0\x07" "-" "<c@x>\0"), "- <c@x> -", "decode delete recipient");
	expect_reply(S("\0\0\0\x14" "2" "<c@x>\0" "NOTIFY=NEVER\0"), "2 <c@x> NOTIFY=NEVER",
		     "decode add recipient with arguments");
	expect_reply(S("\0\0\0\x07" "2" "<c@x>\0"), "2 <c@x> -", "decode add recipient, arguments left out");
	expect_reply(S("\0\0\0\x07" "e" "<s@x>\0"), "e <s@x> -", "decode change sender");
	expect_reply(S("\0\0\0\x0f" "e" "<s@x>\0" "SIZE=10\0"), "e <s@x> SIZE=10",
		     "decode change sender with arguments");
	expect_reply(S("\0\0\0\x27" "O" "\0\0\0\x06" "\0\0\0\x31" "\0\x0f\xf0\x80"
		       "\0\0\0\0" "j {daemon_name}\0" "\0\0\0\x05" "i\0"),
		     "O v6 a31 pff080 0=[j {daemon_name}] 5=[i]", "decode optneg v6 with macro lists");
	expect_reply(S("\0\0\0\x0d" "O" "\0\0\0\x02" "\0\0\0\x01" "\0\0\0\x7f"), "O v2 a1 p7f",
		     "decode optneg v2");
	expect_reply(S("\0\0\0\x15" "O" "\0\0\0\x06" "\0\0\0\x00" "\0\0\0\x00" "\0\0\0\x03" "\0" "\0\0\0"),
		     "result -1: milter reply 'O': the macro stage at byte 17 is cut short (3 of 4 bytes)",
		     "decode optneg: an empty macro list, then a cut stage");
	expect_reply(S("\0\0\0\x12" "O" "\0\0\0\x06" "\0\0\0\x00" "\0\0\0\x00" "\0\0\0\x03" "\0"),
		     "O v6 a0 p0 3=[]", "decode optneg: an empty macro list");

	/* the fields point into the data of the packet */
	if (decode_one(&d, S("\0\0\0\x0c" "h" "X-Spam\0" "Yes\0"), &r) == SG_MILTER_REPLY) {
		ASSERT_TRUE(r.data == storage + 1 && r.len == 11, "decode: data is the packet's, past its command");
		ASSERT_TRUE(r.header.name == r.data && r.header.value == r.data + 7,
			    "decode: header fields within the data");
	}
	ASSERT_STREQ(sg_milter_reply_name('y'), "replycode", "reply name: y");
	ASSERT_STREQ(sg_milter_reply_name('O'), "optneg", "reply name: O");
	ASSERT_TRUE(sg_milter_reply_name('Z') == NULL, "reply name: Z is none");

	/* what the MTA sends in optneg reads back the same: the format is shared */
	{
		struct sg_milter_buf b = fresh_buf();

		sg_milter_put_optneg(&b, 6, 0x1ff, 0x1fffff);
		expect_reply(b.data, b.len, "O v6 a1ff p1fffff", "decode: the MTA's optneg reads back");
	}
}

static const char stream[] =
	"\0\0\0\x01" "p"
	"\0\0\0\x0c" "h" "X-Spam\0" "Yes\0"
	"\0\0\0\x0b" "i" "\0\0\0\x01" "X-A\0" "v\0"
	"\0\0\0\x23" "y" "451-4.7.1 first\r\n" "451 4.7.1 second\0"
	"\0\0\0\x27" "O" "\0\0\0\x06" "\0\0\0\x31" "\0\x0f\xf0\x80" "\0\0\0\0" "j {daemon_name}\0"
	"\0\0\0\x05" "i\0"
	"\0\0\0\x0a" "q" "spam fun\0"
	"\0\0\0\x14" "2" "<c@x>\0" "NOTIFY=NEVER\0"
	"\0\0\0\x0b" "b" "new body\r\n"
	"\0\0\0\x01" "c";

static const char stream_log[] =
	"p\n"
	"h 0 X-Spam=Yes\n"
	"i 1 X-A=v\n"
	"y 451 [4.7.1] <first> lines=2 {451-4.7.1 first\r\n451 4.7.1 second}\n"
	"O v6 a31 pff080 0=[j {daemon_name}] 5=[i]\n"
	"q spam fun\n"
	"2 <c@x> NOTIFY=NEVER\n"
	"b 10:new body\r\n\n"
	"c\n";

static void test_decode_splits(void)
{
	char log[4096];
	size_t n = sizeof(stream) - 1, whole = n, one = 1;
	int splits_ok = 1, threes_ok = 1;

	ASSERT_EQ(decode_stream(stream, n, &whole, 1, log, sizeof(log)), 0, "stream whole: promises kept");
	ASSERT_STREQ(log, stream_log, "stream whole: nine replies in order");
	ASSERT_EQ(decode_stream(stream, n, &one, 1, log, sizeof(log)), 0, "stream a byte at a time: promises kept");
	ASSERT_STREQ(log, stream_log, "stream a byte at a time: the same replies");
	for (size_t cut = 0; cut <= n; cut++) {
		size_t slices[2] = { cut ? cut : n, n };

		if (decode_stream(stream, n, slices, 2, log, sizeof(log)) != 0 || strcmp(log, stream_log) != 0) {
			printf("# cut at %zu gives:\n%s", cut, log);
			splits_ok = 0;
		}
	}
	ASSERT_TRUE(splits_ok, "stream cut in two at every point: the same replies");
	for (size_t a = 1; a < 12; a++)
		for (size_t c = 1; c < 12; c++) {
			size_t slices[3] = { a, c, a + c };

			if (decode_stream(stream, n, slices, 3, log, sizeof(log)) != 0 ||
			    strcmp(log, stream_log) != 0)
				threes_ok = 0;
		}
	ASSERT_TRUE(threes_ok, "stream in slices of mixed sizes: the same replies");
	ASSERT_EQ(decode_stream(stream, n - 3, &whole, 1, log, sizeof(log)), 0, "stream cut short: promises kept");
	ASSERT_TRUE(strstr(log, "PENDING 2\n") != NULL, "stream cut short: 2 bytes of the last packet held");
}

struct bad_reply {
	const char *name;
	const char *data;
	size_t len;
	const char *error;
};

#define BAD(name, bytes, error) { name, bytes, sizeof(bytes) - 1, error }

static const struct bad_reply bad_replies[] = {
	BAD("length 0", "\0\0\0\0", "milter reply: length 0"),
	BAD("length over 1 MiB", "\x00\x4c\x4b\x40" "y", "milter reply: length 5000000 over the 1 MiB limit"),
	BAD("length 1 MiB and 1", "\x00\x10\x00\x01" "b", "milter reply: length 1048577 over the 1 MiB limit"),
	BAD("unknown reply", "\0\0\0\x01" "Z", "milter reply: unknown reply 'Z' (0x5a)"),
	BAD("unknown unprintable reply", "\0\0\0\x01" "\x01", "milter reply: unknown reply 0x01"),
	BAD("unknown reply known before its data", "\0\0\x03\xe8" "Z", "milter reply: unknown reply 'Z' (0x5a)"),
	BAD("set macro list alone", "\0\0\0\x03" "l" "i\0",
	    "milter reply 'l': a macro list (set macro list) comes only inside the optneg reply"),
	BAD("continue with data", "\0\0\0\x04" "c" "abc", "milter reply 'c': continue takes no data, yet 3 bytes came"),
	BAD("accept with a byte", "\0\0\0\x02" "a" "x", "milter reply 'a': accept takes no data, yet 1 byte came"),
	BAD("replycode without data", "\0\0\0\x01" "y", "milter reply 'y': the reply code is not NUL-terminated"),
	BAD("replycode unterminated", "\0\0\0\x08" "y" "550 bad", "milter reply 'y': the reply code is not NUL-terminated"),
	BAD("replycode with bytes after its NUL", "\0\0\0\x0a" "y" "550 x\0" "zz\0",
	    "milter reply 'y': 3 bytes after the reply code's NUL at byte 5"),
	BAD("replycode empty", "\0\0\0\x02" "y" "\0", "milter reply 'y': the reply code is empty"),
	BAD("replycode a lone %", "\0\0\0\x03" "y" "%\0", "milter reply 'y': the reply code is empty"),
	BAD("replycode 2xx", "\0\0\0\x08" "y" "250 ok\0", "milter reply 'y': replycode '250 ok' is not a 4xx or 5xx reply"),
	BAD("replycode quoted with its quote escaped", "\0\0\0\x0a" "y" "250 it's\0",
	    "milter reply 'y': replycode '250 it\\x27s' is not a 4xx or 5xx reply"),
	BAD("replycode no code", "\0\0\0\x07" "y" "hello\0",
	    "milter reply 'y': replycode 'hello' does not start with a 3-digit code"),
	BAD("replycode two digits", "\0\0\0\x04" "y" "55\0",
	    "milter reply 'y': replycode '55' does not start with a 3-digit code"),
	BAD("replycode codes differ", "\0\0\0\x0e" "y" "550-a\r\n" "451 b\0",
	    "milter reply 'y': replycode line 2 '451 b' has code 451, line 1 has 550"),
	BAD("replycode last line continues", "\0\0\0\x07" "y" "550-a\0",
	    "milter reply 'y': replycode's last line '550-a' continues with '-'"),
	BAD("replycode first line ends", "\0\0\0\x0e" "y" "550 a\r\n" "550 b\0",
	    "milter reply 'y': replycode line 1 '550 a' has no '-' after its code, yet more lines follow"),
	BAD("replycode bad separator", "\0\0\0\x07" "y" "550xa\0",
	    "milter reply 'y': replycode line 1 '550xa' has 'x' after its code, not a space, '-' or its end"),
	BAD("replycode bare LF", "\0\0\0\x0d" "y" "550-a\n" "550 b\0",
	    "milter reply 'y': replycode line 1 has a bare LF at byte 5"),
	BAD("replycode bare CR", "\0\0\0\x0d" "y" "550-a\r" "550 b\0",
	    "milter reply 'y': replycode line 1 has a bare CR at byte 5"),
	BAD("replycode final CRLF", "\0\0\0\x09" "y" "550 a\r\n\0", "milter reply 'y': replycode ends with a line break"),
	BAD("replycode control character", "\0\0\0\x09" "y" "550 a\x07" "b\0",
	    "milter reply 'y': replycode line 1 has control character 0x07 at byte 5"),
	BAD("replycode DEL", "\0\0\0\x09" "y" "550 a\x7f" "b\0",
	    "milter reply 'y': replycode line 1 has control character 0x7f at byte 5"),
	BAD("replycode enhanced class differs", "\0\0\0\x0e" "y" "550 4.7.1 no\0",
	    "milter reply 'y': replycode '550 4.7.1 no' has enhanced status class 4 in a 5xx reply"),
	BAD("replycode enhanced class differs on line 2", "\0\0\0\x18" "y" "451-4.7.1 a\r\n" "451 2.0.0\0",
	    "milter reply 'y': replycode '451 2.0.0' has enhanced status class 2 in a 4xx reply"),
	BAD("header unterminated value", "\0\0\0\x06" "h" "X-A\0" "v",
	    "milter reply 'h': the header value is not NUL-terminated"),
	BAD("header no value", "\0\0\0\x05" "h" "X-A\0", "milter reply 'h': the header value is not NUL-terminated"),
	BAD("header trailing byte", "\0\0\0\x08" "h" "X-A\0" "v\0" "z", "milter reply 'h': 1 byte after the header value"),
	BAD("header empty name", "\0\0\0\x04" "h" "\0" "v\0", "milter reply 'h': the header name is empty"),
	BAD("header name with a colon", "\0\0\0\x07" "h" "X:A\0" "v\0",
	    "milter reply 'h': header name 'X:A' has byte 0x3a at 1, not a field name character"),
	BAD("header name with CR", "\0\0\0\x07" "h" "X\rA\0" "v\0",
	    "milter reply 'h': header name 'X\\x0dA' has byte 0x0d at 1, not a field name character"),
	BAD("insert header short index", "\0\0\0\x03" "i" "\0\0", "milter reply 'i': the header index is cut short (2 of 4 bytes)"),
	BAD("change header unterminated name", "\0\0\0\x09" "m" "\0\0\0\x01" "Subj",
	    "milter reply 'm': the header name is not NUL-terminated"),
	BAD("quarantine unterminated", "\0\0\0\x05" "q" "spam", "milter reply 'q': the quarantine reason is not NUL-terminated"),
	BAD("quarantine trailing", "\0\0\0\x07" "q" "spam\0" "x", "milter reply 'q': 1 byte after the quarantine reason"),
	BAD("add recipient empty", "\0\0\0\x02" "+" "\0", "milter reply '+': the recipient is empty"),
	BAD("delete recipient unterminated", "\0\0\0\x04" "-" "<a>", "milter reply '-': the recipient is not NUL-terminated"),
	BAD("add recipient two", "\0\0\0\x09" "+" "<a>\0" "<b>\0", "milter reply '+': 4 bytes after the recipient"),
	BAD("add recipient args unterminated", "\0\0\0\x08" "2" "<a>\0" "X=1",
	    "milter reply '2': the ESMTP arguments are not NUL-terminated"),
	BAD("change sender trailing", "\0\0\0\x0a" "e" "<a>\0" "X=1\0" "z", "milter reply 'e': 1 byte after the ESMTP arguments"),
	BAD("change sender empty", "\0\0\0\x02" "e" "\0", "milter reply 'e': the sender is empty"),
	BAD("optneg short", "\0\0\0\x09" "O" "\0\0\0\x06" "\0\0\0\x00",
	    "milter reply 'O': 8 data bytes, the optneg reply needs 12 (version, actions, protocol flags)"),
	BAD("optneg version 1", "\0\0\0\x0d" "O" "\0\0\0\x01" "\0\0\0\x00" "\0\0\0\x00",
	    "milter reply 'O': protocol version 1 is not one of 2..6"),
	BAD("optneg version 7", "\0\0\0\x0d" "O" "\0\0\0\x07" "\0\0\0\x00" "\0\0\0\x00",
	    "milter reply 'O': protocol version 7 is not one of 2..6"),
	BAD("optneg version 4 with macro lists", "\0\0\0\x13" "O" "\0\0\0\x04" "\0\0\0\x00" "\0\0\0\x00" "\0\0\0\x00" "x\0",
	    "milter reply 'O': 6 bytes after the flags of a version 4 reply (macro lists need version 6)"),
	BAD("optneg stage 9", "\0\0\0\x13" "O" "\0\0\0\x06" "\0\0\0\x00" "\0\0\0\x00" "\0\0\0\x09" "j\0",
	    "milter reply 'O': macro stage 9 at byte 12 is not one of 0..6"),
	BAD("optneg stage twice", "\0\0\0\x19" "O" "\0\0\0\x06" "\0\0\0\x00" "\0\0\0\x00" "\0\0\0\x01" "a\0"
	    "\0\0\0\x01" "b\0", "milter reply 'O': macro stage 1 (helo) is listed twice"),
	BAD("optneg list unterminated", "\0\0\0\x14" "O" "\0\0\0\x06" "\0\0\0\x00" "\0\0\0\x00" "\0\0\0\x02" "abc",
	    "milter reply 'O': the macro list of stage 2 (mail) is not NUL-terminated"),
	BAD("optneg stage cut short", "\0\0\0\x0f" "O" "\0\0\0\x06" "\0\0\0\x00" "\0\0\0\x00" "\0\0",
	    "milter reply 'O': the macro stage at byte 12 is cut short (2 of 4 bytes)"),
	BAD("optneg list with a tab", "\0\0\0\x15" "O" "\0\0\0\x06" "\0\0\0\x00" "\0\0\0\x00" "\0\0\0\x03" "a\tb\0",
	    "milter reply 'O': the macro list of stage 3 (rcpt) has byte 0x09 at 1"),
};

static void test_decode_malformed(void)
{
	char name[200];

	for (size_t i = 0; i < sizeof(bad_replies) / sizeof(bad_replies[0]); i++) {
		const struct bad_reply *bad = &bad_replies[i];
		struct sg_milter_decoder d;
		struct sg_milter_reply r;
		int rc = decode_one(&d, bad->data, bad->len, &r);

		snprintf(name, sizeof(name), "malformed: %s: refused", bad->name);
		ASSERT_EQ(rc, SG_MILTER_ERROR, name);
		snprintf(name, sizeof(name), "malformed: %s: says why", bad->name);
		ASSERT_STREQ(sg_milter_decoder_error(&d), bad->error, name);
	}
}

static void test_decode_limits_and_state(void)
{
	struct sg_milter_decoder d;
	struct sg_milter_reply r;
	size_t used = 99;
	char small[64];
	static char long_line[4 + 1 + 4 + 600 + 1];
	static const char two[] = "\0\0\0\x01" "c" "\0\0\0\x02" "c" "x";

	sg_milter_decoder_init(&d, storage, sizeof(storage));
	ASSERT_EQ(sg_milter_decode(&d, "", 0, &used, &r), SG_MILTER_NEED_MORE, "decode: nothing given, more needed");
	ASSERT_EQ(used, 0, "decode: nothing given, nothing taken");
	ASSERT_TRUE(sg_milter_decoder_error(&d) == NULL, "decode: no error before one");
	ASSERT_EQ(sg_milter_decode(&d, "\0\0\0", 3, &used, &r), SG_MILTER_NEED_MORE, "decode: half a length");
	ASSERT_EQ(sg_milter_decoder_pending(&d), 3, "decode: 3 bytes of a packet held");
	ASSERT_EQ(sg_milter_decode(&d, "\x05" "y55", 4, &used, &r), SG_MILTER_NEED_MORE, "decode: half a reply");
	ASSERT_EQ(sg_milter_decoder_pending(&d), 7, "decode: 7 bytes of a packet held");
	ASSERT_EQ(sg_milter_decode(&d, "0\0" "\0\0", 4, &used, &r), SG_MILTER_REPLY, "decode: the reply completes");
	ASSERT_EQ(used, 2, "decode: only its bytes taken");
	ASSERT_EQ(r.replycode.code, 550, "decode: its code");
	ASSERT_EQ(sg_milter_decoder_pending(&d), 0, "decode: nothing held between packets");

	/* an error is for good: the stream cannot be resynchronised */
	sg_milter_decoder_init(&d, storage, sizeof(storage));
	ASSERT_EQ(sg_milter_decode(&d, two, sizeof(two) - 1, &used, &r), SG_MILTER_REPLY, "error after a reply: the reply first");
	ASSERT_EQ(used, 5, "error after a reply: its 5 bytes taken");
	ASSERT_EQ(sg_milter_decode(&d, two + 5, sizeof(two) - 1 - 5, &used, &r), SG_MILTER_ERROR,
		  "error after a reply: then the error");
	ASSERT_TRUE(used <= sizeof(two) - 1 - 5, "error after a reply: used within what was given");
	ASSERT_EQ(d.packet_offset, 5, "error after a reply: the bad packet began at stream byte 5");
	ASSERT_EQ(sg_milter_decode(&d, "\0\0\0\x01" "c", 5, &used, &r), SG_MILTER_ERROR,
		  "error is sticky: a good reply after it is refused");
	ASSERT_EQ(used, 0, "error is sticky: nothing taken");
	ASSERT_STREQ(sg_milter_decoder_error(&d), "milter reply 'c': continue takes no data, yet 1 byte came",
		     "error is sticky: the first error kept");

	sg_milter_decoder_init(&d, small, sizeof(small));
	ASSERT_EQ(sg_milter_decode(&d, "\0\0\0\x64" "b", 5, &used, &r), SG_MILTER_ERROR,
		  "small storage: a packet longer than it is refused");
	ASSERT_STREQ(sg_milter_decoder_error(&d), "milter reply: length 100 over the 64-byte limit",
		     "small storage: says its limit");
	sg_milter_decoder_init(&d, storage, 65536);
	ASSERT_EQ(sg_milter_decode(&d, "\0\x01\0\x01" "b", 5, &used, &r), SG_MILTER_ERROR,
		  "64 KiB storage: 65537 refused");
	ASSERT_STREQ(sg_milter_decoder_error(&d), "milter reply: length 65537 over the 64 KiB limit",
		     "64 KiB storage: says its limit");
	sg_milter_decoder_init(&d, storage, sizeof(storage));
	ASSERT_EQ(sg_milter_decode(&d, "\0\x10\0\0" "b", 5, &used, &r), SG_MILTER_NEED_MORE,
		  "a 1 MiB packet is taken");

	memcpy(long_line, "\0\0\x02\x5e" "y" "550 ", 9);
	memset(long_line + 9, 'a', 600);
	long_line[609] = '\0';
	ASSERT_EQ(decode_one(&d, long_line, sizeof(long_line), &r), SG_MILTER_ERROR, "replycode of 604 bytes: refused");
	ASSERT_STREQ(sg_milter_decoder_error(&d),
		     "milter reply 'y': replycode line 1 is 606 bytes, over SMTP's 512 with its CRLF",
		     "replycode of 604 bytes: says SMTP's limit");
}

/* ---- negotiation ---- */

static void test_wants(void)
{
	const uint32_t rspamd = 0xff080;	/* every NR_* but the end of message's */

	ASSERT_EQ(sg_milter_wants(6, 0, SG_MILTER_EV_CONNECT), SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY,
		  "wants: connect sent and answered by default");
	ASSERT_EQ(sg_milter_wants(6, 0, SG_MILTER_EV_EOM), SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY,
		  "wants: end of message always sent and answered");
	ASSERT_EQ(sg_milter_wants(6, 0xffffffff, SG_MILTER_EV_EOM), SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY,
		  "wants: end of message answered whatever the flags");
	ASSERT_EQ(sg_milter_wants(6, 0, SG_MILTER_EV_ABORT), SG_MILTER_SEND, "wants: abort sent, never answered");
	ASSERT_EQ(sg_milter_wants(6, 0, SG_MILTER_EV_QUIT), SG_MILTER_SEND, "wants: quit sent, never answered");
	ASSERT_EQ(sg_milter_wants(6, 0, SG_MILTER_EV_QUIT_NC), SG_MILTER_SEND, "wants: quit_nc sent in v6");
	ASSERT_EQ(sg_milter_wants(6, 0, SG_MILTER_EV_MACROS), SG_MILTER_SEND, "wants: macros sent, never answered");
	ASSERT_EQ(sg_milter_wants(6, 0, SG_MILTER_EV_RCPT_REJECTED), 0, "wants: refused recipients only when asked");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_RCPT_REJ, SG_MILTER_EV_RCPT_REJECTED),
		  SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY, "wants: refused recipients when asked");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_RCPT_REJ | SG_MILTER_SMFIP_NR_RCPT,
				  SG_MILTER_EV_RCPT_REJECTED), SG_MILTER_SEND,
		  "wants: refused recipients unanswered with NR_RCPT");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_RCPT_REJ | SG_MILTER_SMFIP_NORCPT,
				  SG_MILTER_EV_RCPT_REJECTED), 0, "wants: no refused recipients with NORCPT");

	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_CONNECT), SG_MILTER_SEND, "wants rspamd: connect unanswered");
	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_HELO), SG_MILTER_SEND, "wants rspamd: helo unanswered");
	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_MAIL), SG_MILTER_SEND, "wants rspamd: mail unanswered");
	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_RCPT), SG_MILTER_SEND, "wants rspamd: rcpt unanswered");
	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_DATA), SG_MILTER_SEND, "wants rspamd: data unanswered");
	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_HEADER), SG_MILTER_SEND, "wants rspamd: header unanswered");
	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_EOH), SG_MILTER_SEND, "wants rspamd: eoh unanswered");
	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_BODY), SG_MILTER_SEND, "wants rspamd: body unanswered");
	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_UNKNOWN), SG_MILTER_SEND, "wants rspamd: unknown unanswered");
	ASSERT_EQ(sg_milter_wants(6, rspamd, SG_MILTER_EV_EOM), SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY,
		  "wants rspamd: end of message answered");

	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NOCONNECT, SG_MILTER_EV_CONNECT), 0, "wants: NOCONNECT");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NOHELO, SG_MILTER_EV_HELO), 0, "wants: NOHELO");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NOMAIL, SG_MILTER_EV_MAIL), 0, "wants: NOMAIL");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NORCPT, SG_MILTER_EV_RCPT), 0, "wants: NORCPT");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NODATA, SG_MILTER_EV_DATA), 0, "wants: NODATA");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NOHDRS, SG_MILTER_EV_HEADER), 0, "wants: NOHDRS");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NOEOH, SG_MILTER_EV_EOH), 0, "wants: NOEOH");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NOBODY, SG_MILTER_EV_BODY), 0, "wants: NOBODY");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NOUNKNOWN, SG_MILTER_EV_UNKNOWN), 0, "wants: NOUNKNOWN");
	ASSERT_EQ(sg_milter_wants(6, SG_MILTER_SMFIP_NOBODY, SG_MILTER_EV_HEADER), SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY,
		  "wants: NOBODY leaves the headers");

	ASSERT_EQ(sg_milter_wants(2, 0, SG_MILTER_EV_DATA), 0, "wants v2: no DATA event");
	ASSERT_EQ(sg_milter_wants(2, 0, SG_MILTER_EV_UNKNOWN), 0, "wants v2: no UNKNOWN event");
	ASSERT_EQ(sg_milter_wants(2, 0, SG_MILTER_EV_QUIT_NC), 0, "wants v2: no QUIT_NC");
	ASSERT_EQ(sg_milter_wants(2, 0, SG_MILTER_EV_HEADER), SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY,
		  "wants v2: headers answered");
	ASSERT_EQ(sg_milter_wants(2, SG_MILTER_SMFIP_NR_HDR, SG_MILTER_EV_HEADER), SG_MILTER_SEND,
		  "wants v2: NOHREPL honoured");
	ASSERT_EQ(sg_milter_wants(3, 0, SG_MILTER_EV_UNKNOWN), SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY,
		  "wants v3: UNKNOWN");
	ASSERT_EQ(sg_milter_wants(3, 0, SG_MILTER_EV_DATA), 0, "wants v3: no DATA yet");
	ASSERT_EQ(sg_milter_wants(4, 0, SG_MILTER_EV_DATA), SG_MILTER_SEND | SG_MILTER_AWAIT_REPLY, "wants v4: DATA");
	ASSERT_EQ(sg_milter_wants(6, 0, SG_MILTER_EV_COUNT), 0, "wants: no such event");
}

static void test_check_optneg(void)
{
	struct sg_milter_optneg offer, reply;
	char err[200] = "";

	sg_milter_mta_offer(&offer);
	memset(&reply, 0, sizeof(reply));
	reply.version = 6;
	reply.actions = offer.actions;
	reply.protocol = 0xff080;
	ASSERT_EQ(sg_milter_check_optneg(&offer, &reply, err, sizeof(err)), 0, "optneg check: rspamd's answer agreed");
	reply.version = 2;
	reply.actions = SG_MILTER_SMFIF_ADDHDRS;
	reply.protocol = SG_MILTER_SMFIP_NOUNKNOWN | SG_MILTER_SMFIP_NODATA;
	ASSERT_EQ(sg_milter_check_optneg(&offer, &reply, err, sizeof(err)), 0, "optneg check: an older milter agreed");
	reply.version = 7;
	ASSERT_EQ(sg_milter_check_optneg(&offer, &reply, err, sizeof(err)), -1, "optneg check: a later version refused");
	ASSERT_STREQ(err, "milter optneg: the milter speaks version 7, above the 6 offered", "optneg check: says the versions");
	reply.version = 6;
	reply.actions = 0x200;
	ASSERT_EQ(sg_milter_check_optneg(&offer, &reply, err, sizeof(err)), -1, "optneg check: an action not offered refused");
	ASSERT_STREQ(err, "milter optneg: the milter asks for actions 0x200, not offered (offered 0x1ff)",
		     "optneg check: says which actions");
	reply.actions = 0;
	reply.protocol = SG_MILTER_SMFIP_MDS_1M;
	ASSERT_EQ(sg_milter_check_optneg(&offer, &reply, err, sizeof(err)), -1, "optneg check: a flag not offered refused");
	ASSERT_STREQ(err, "milter optneg: the milter sets protocol flags 0x20000000, not offered (offered 0x1fffff)",
		     "optneg check: says which flags");
}

int main(void)
{
	test_encode_negotiation();
	test_encode_macros();
	test_encode_connect();
	test_encode_envelope();
	test_encode_message();
	test_encode_buffers();
	test_decode_each_reply();
	test_decode_splits();
	test_decode_malformed();
	test_decode_limits_and_state();
	test_wants();
	test_check_optneg();
	return test_exit_status();
}
