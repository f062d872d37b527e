/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_complaints_arf.c - abuse reports taken apart (complaints/arf.h,
 * fields.h, date.h): the samples in selftests/complaints/, built the way
 * receivers' feedback loops build them (RFC 5965's example, AOL, Yahoo,
 * Microsoft JMRP headers-only), each field where it should be; the bad
 * reports refused with what is wrong and where; reports cut at every byte
 * and split anywhere never crash and never pass for more than they are.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "arf.h"
#include "date.h"
#include "fields.h"
#include "test.h"

static char dir[PATH_MAX];

/* selftests/complaints/, from the repository's root (make check runs
 * there) or above the binary (build/selftests/, build/asan/selftests/). */
static int find_samples(void)
{
	char exe[PATH_MAX - 64];
	ssize_t n;

	snprintf(dir, sizeof(dir), "selftests/complaints");
	if (access(dir, R_OK) == 0)
		return 0;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
		*slash = '\0';
		snprintf(dir, sizeof(dir), "%s/selftests/complaints", exe);
		if (access(dir, R_OK) == 0)
			return 0;
	}
	return -1;
}

static char *slurp(const char *name, size_t *len)
{
	char path[PATH_MAX + 64];
	FILE *f;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	buf = malloc(1 << 20);
	*len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	if (buf)
		buf[*len] = '\0';
	fclose(f);
	return buf;
}

static int parse_sample(const char *name, struct sg_arf *arf, char *err, size_t errlen)
{
	size_t len;
	char *buf = slurp(name, &len);
	int ret;

	if (!buf) {
		snprintf(err, errlen, "cannot read %.200s/%s", dir, name);
		return -2;
	}
	ret = sg_arf_parse(buf, len, arf, err, errlen);
	free(buf);
	return ret;
}

static void test_rfc5965(void)
{
	struct sg_arf arf;
	char err[400] = "";

	if (!ASSERT_EQ(parse_sample("rfc5965.eml", &arf, err, sizeof(err)), 0,
		       "rfc5965: the example's structure parses"))
		return;
	ASSERT_STREQ(arf.feedback_type, "abuse", "rfc5965: Feedback-Type");
	ASSERT_STREQ(arf.user_agent, "SomeGenerator/1.0", "rfc5965: User-Agent");
	ASSERT_STREQ(arf.version, "1", "rfc5965: Version");
	ASSERT_STREQ(arf.source_ip, "192.0.2.10", "rfc5965: Source-IP");
	ASSERT_EQ(arf.has_arrival, 1, "rfc5965: Arrival-Date read");
	ASSERT_EQ(arf.arrival, 1796120102, "rfc5965: Arrival-Date is 2026-12-01T10:15:02Z");
	ASSERT_STREQ(arf.mail_from, "sales@shop.example.net", "rfc5965: Original-Mail-From, "
		     "without its brackets");
	ASSERT_STREQ(arf.rcpt_to, "user@example.com", "rfc5965: Original-Rcpt-To");
	ASSERT_STREQ(arf.reported_domain, "shop.example.net", "rfc5965: Reported-Domain");
	ASSERT_CONTAINS(arf.auth_results, "spf=fail smtp.mail=sales@shop.example.net",
			"rfc5965: Authentication-Results, its fold undone");
	ASSERT_EQ(arf.original, SG_ARF_ORIGINAL_MESSAGE, "rfc5965: the whole message");
	ASSERT_STREQ(arf.message_id, "<20261201101500.4711@vm10.tenant.example>",
		     "rfc5965: the original's Message-ID");
	ASSERT_STREQ(arf.subject, "Earn money", "rfc5965: the original's Subject");
	ASSERT_EQ(arf.n_received_ip, 1, "rfc5965: one Received address");
	ASSERT_STREQ(arf.received_ip[0], "192.0.2.10", "rfc5965: the VM's address in Received");
	ASSERT_EQ(arf.has_received_date, 1, "rfc5965: the Received date");
	ASSERT_EQ(arf.received_epoch, 1796120102, "rfc5965: the Received date's value");
	ASSERT_EQ(arf.has_body_fp, 1, "rfc5965: a body fingerprint");
	ASSERT_STREQ(arf.notes, "", "rfc5965: nothing odd");
}

static void test_aol(void)
{
	struct sg_arf arf;
	char err[400] = "";

	if (!ASSERT_EQ(parse_sample("aol-scomp.eml", &arf, err, sizeof(err)), 0,
		       "aol: SComp's shape parses"))
		return;
	ASSERT_STREQ(arf.version, "0.1", "aol: its Version 0.1 taken");
	ASSERT_EQ(arf.has_arrival, 1, "aol: Received-Date stands for Arrival-Date");
	ASSERT_EQ(arf.arrival, 1796122742, "aol: 05:59:02 -0500 (EST) is 10:59:02Z");
	ASSERT_STREQ(arf.source_ip, "192.0.2.20", "aol: Source-IP");
	ASSERT_STREQ(arf.message_id, "<20261201105901.GA221@vm20.tenant.example>",
		     "aol: the Message-ID of the copy");
	ASSERT_STREQ(arf.to, "redacted@aol.example", "aol: the recipient as redacted");
	ASSERT_STREQ(arf.received_ip[0], "192.0.2.20", "aol: the address of a folded Received");
	ASSERT_EQ(arf.has_body_fp, 1, "aol: a multipart/alternative body has a fingerprint");
	ASSERT_STREQ(arf.subject, "Your weekly deals \xe2\x80\x94 50% off",
		     "aol: the Subject's encoded-word decoded");
}

static void test_yahoo(void)
{
	struct sg_arf arf;
	char err[400] = "";

	if (!ASSERT_EQ(parse_sample("yahoo-cfl.eml", &arf, err, sizeof(err)), 0,
		       "yahoo: the complaint feedback loop's shape parses"))
		return;
	ASSERT_STREQ(arf.source_ip, "2001:db8:10::30", "yahoo: an IPv6 Source-IP");
	ASSERT_STREQ(arf.message_id, "", "yahoo: a redacted Message-ID is none");
	ASSERT_CONTAINS(arf.notes, "Message-ID is redacted", "yahoo: and said so");
	ASSERT_EQ(arf.has_body_fp, 1, "yahoo: the base64 body has a fingerprint");
	ASSERT_EQ(arf.body_fp, 0xf6bcade7f15452d9ULL, "yahoo: the body's digest (golden)");
	ASSERT_STREQ(arf.rcpt_to, "redacted@yahoo.example", "yahoo: the redacted recipient");
}

static void test_jmrp(void)
{
	struct sg_arf arf;
	char err[400] = "";

	if (!ASSERT_EQ(parse_sample("jmrp-headers.eml", &arf, err, sizeof(err)), 0,
		       "jmrp: headers only parses"))
		return;
	ASSERT_EQ(arf.original, SG_ARF_ORIGINAL_HEADERS, "jmrp: text/rfc822-headers");
	ASSERT_STREQ(arf.source_ip, "", "jmrp: no Source-IP");
	ASSERT_EQ(arf.has_arrival, 0, "jmrp: no Arrival-Date");
	ASSERT_EQ(arf.n_received_ip, 1, "jmrp: the Received header's address");
	ASSERT_STREQ(arf.received_ip[0], "192.0.2.40", "jmrp: is the VM's");
	ASSERT_EQ(arf.received_epoch, 1796161807, "jmrp: the Received date, 21:50:07Z");
	ASSERT_EQ(arf.has_date, 1, "jmrp: the original's Date");
	ASSERT_EQ(arf.has_body_fp, 0, "jmrp: no body, no fingerprint");
	ASSERT_STREQ(arf.to, "someone@outlook.example", "jmrp: the original's To");
}

static void test_bad(void)
{
	static const struct { const char *file, *says; } bad[] = {
		{ "bad/not-a-report.eml", "not multipart/report" },
		{ "bad/delivery-status.eml", "report-type=delivery-status, not feedback-report" },
		{ "bad/no-feedback-part.eml", "no message/feedback-report part" },
		{ "bad/bad-source-ip.eml", "line 8: Source-IP '192.0.2.300' is not an IPv4 or IPv6" },
		{ "bad/no-feedback-type.eml", "no Feedback-Type field" },
		{ "bad/bad-arrival-date.eml", "line 6: Arrival-Date: 'yesterday, around noon' is "
					      "not an RFC 5322 date" },
		{ "bad/not-a-field.eml", "line 4: 'this line is not a field' is not a field" },
	};
	struct sg_arf arf;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[400] = "", name[200];

		snprintf(name, sizeof(name), "bad: %s refused", bad[i].file);
		ASSERT_EQ(parse_sample(bad[i].file, &arf, err, sizeof(err)), -1, name);
		snprintf(name, sizeof(name), "bad: %s: the error says what and where", bad[i].file);
		ASSERT_CONTAINS(err, bad[i].says, name);
	}
	{
		char err[400] = "";

		ASSERT_EQ(sg_arf_parse("", 0, &arf, err, sizeof(err)), -1, "bad: empty refused");
		ASSERT_EQ(sg_arf_parse("x", SG_ARF_REPORT_MAX + 1, &arf, err, sizeof(err)), -1,
			  "bad: over the size limit refused before a byte is read");
		ASSERT_CONTAINS(err, "over the limit", "bad: the limit named");
	}
}

/* Every prefix of a good report: no crash (ASan watches), and a prefix
 * that parses never has more than the whole report. */
static void test_truncated(void)
{
	size_t len;
	char *buf = slurp("rfc5965.eml", &len);
	struct sg_arf arf;
	int parsed = 0, liars = 0;

	if (!ASSERT_TRUE(buf != NULL, "truncated: sample read"))
		return;
	for (size_t n = 0; n <= len; n++) {
		char err[400];
		char *copy = malloc(n + 1);

		memcpy(copy, buf, n);
		if (sg_arf_parse(copy, n, &arf, err, sizeof(err)) == 0) {
			parsed++;
			/* cut inside the header it is that header's start, no more */
			liars += strncmp(arf.message_id, "<20261201101500.4711@vm10.tenant.example>",
					 strlen(arf.message_id)) != 0;
		}
		free(copy);
	}
	ASSERT_TRUE(parsed > 0, "truncated: a report cut after its fields still parses");
	ASSERT_EQ(liars, 0, "truncated: no prefix makes up a Message-ID (only cuts it)");
	free(buf);
}

struct seen {
	char names[8][80];
	char values[8][200];
	int lines[8];
	int n;
};

static int collect(void *ctx, const char *name, const char *value, int line, char *err,
		   size_t errlen)
{
	struct seen *s = ctx;

	(void)err;
	(void)errlen;
	if (s->n < 8) {
		snprintf(s->names[s->n], 80, "%s", name);
		snprintf(s->values[s->n], 200, "%s", value);
		s->lines[s->n++] = line;
	}
	return 0;
}

static void test_fields(void)
{
	static const char text[] = "A: 1\r\nB-Long :  two\r\n  folded\there \r\nC:\r\n\r\nD: after\r\n";
	struct seen s = { .n = 0 };
	char err[200] = "";
	int lines;

	ASSERT_EQ(sg_fields_parse(text, sizeof(text) - 1, 1, collect, &s, &lines, err,
				  sizeof(err)), 0, "fields: parsed");
	ASSERT_EQ(s.n, 3, "fields: three before the blank line");
	ASSERT_STREQ(s.names[1], "B-Long", "fields: a name with blanks before its colon");
	ASSERT_STREQ(s.values[1], "two   folded\there", "fields: the fold undone, ends trimmed");
	ASSERT_EQ(s.lines[2], 4, "fields: a field's line");
	ASSERT_STREQ(s.values[2], "", "fields: an empty value");
	s.n = 0;
	ASSERT_EQ(sg_fields_parse(" lead: x\n", 9, 1, collect, &s, NULL, err, sizeof(err)), -1,
		  "fields: a continuation first is an error");
	ASSERT_CONTAINS(err, "line 1: a continuation line", "fields: said so, with its line");
	ASSERT_EQ(sg_fields_parse("A: x\nB\0: y\n", 11, 1, collect, &s, NULL, err, sizeof(err)),
		  -1, "fields: a NUL is an error");
	ASSERT_CONTAINS(err, "line 2: a NUL byte", "fields: the NUL's line");
	s.n = 0;
	ASSERT_EQ(sg_fields_parse("A: x\nnot a field\nB: y\n", 21, 0, collect, &s, NULL, err,
				  sizeof(err)), 0, "fields: lenient: a stray line ends them");
	ASSERT_EQ(s.n, 1, "fields: lenient: only what came before");
	{
		/* a value over the limit is cut, never overflows */
		size_t n = SG_FIELD_VALUE_MAX * 3;
		char *big = malloc(n + 8);

		memcpy(big, "X: ", 3);
		memset(big + 3, 'v', n);
		s.n = 0;
		ASSERT_EQ(sg_fields_parse(big, n + 3, 1, collect, &s, NULL, err, sizeof(err)), 0,
			  "fields: a huge value parses");
		ASSERT_EQ(s.n, 1, "fields: as one field");
		free(big);
	}
}

static void test_dates(void)
{
	static const struct { const char *s; long long want; } good[] = {
		{ "Tue, 1 Dec 2026 10:15:02 +0000", 1796120102 },
		{ "1 Dec 2026 10:15:02 +0000", 1796120102 },
		{ "Tue, 01 Dec 2026 05:15:02 -0500 (EST)", 1796120102 },
		{ "Tue, 1 Dec 2026 10:15:02 GMT", 1796120102 },
		{ "Tue, 1 Dec 2026 02:15:02 PST", 1796120102 },
		{ "Tue, 1 Dec 26 10:15 +0000", 1796120100 },
		{ "  Tue,  1  Dec  2026  11:15:02  +0100  ", 1796120102 },
	};
	static const char *const bad[] = {
		"", "yesterday", "Tue, 32 Dec 2026 10:15:02 +0000", "1 Foo 2026 10:15:02 +0000",
		"1 Dec 2026 25:15:02 +0000", "1 Dec 2026 10:15:02 +0099", "1 Dec 2026 10:15:02 XYZ",
		"1 Dec 2026 10", "Tuesday the first, 1 Dec 2026 10:15 +0000",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t t = 0;
		char err[200], name[120];

		snprintf(name, sizeof(name), "date: '%s'", good[i].s);
		if (ASSERT_EQ(sg_rfc5322_date(good[i].s, &t, err, sizeof(err)), 0, name))
			ASSERT_EQ(t, good[i].want, name);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t t;
		char err[200], name[120];

		snprintf(name, sizeof(name), "date: '%s' refused", bad[i]);
		ASSERT_EQ(sg_rfc5322_date(bad[i], &t, err, sizeof(err)), -1, name);
	}
}

static void test_refs(void)
{
	char ref[SG_ARF_REF_LEN];
	const char *s = "ref SG692D6D860A1B0001; not SG692D6D860A1B00012 nor xSG692D6D860A1B0001";

	ASSERT_TRUE(sg_arf_find_ref(s, strlen(s), ref) != NULL, "refs: one found");
	ASSERT_STREQ(ref, "SG692D6D860A1B0001", "refs: the whole id");
	s = "SG692D6D860A1B0001X SG692d6d860a1b0001 SG692D6D860A1B";
	ASSERT_TRUE(sg_arf_find_ref(s, strlen(s), ref) == NULL,
		    "refs: glued, lower-case or short ids are none");
}

int main(void)
{
	if (find_samples()) {
		printf("FAIL samples: selftests/complaints not found\n");
		return 1;
	}
	test_rfc5965();
	test_aol();
	test_yahoo();
	test_jmrp();
	test_bad();
	test_truncated();
	test_fields();
	test_dates();
	test_refs();
	return test_exit_status();
}
