/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * test_complaints_match.c - abuse reports matched against an events file
 * (complaints/match.h): selftests/complaints/events.json holds what
 * smtpguardd would have written for the samples, with decoys (another VM
 * in the same second, a refused copy with the same Message-ID, the same VM
 * minutes later with another body, the same VM hours later). Each sample
 * finds its message at the level it deserves, with its session and
 * tenant; a report that fits two messages equally says it is ambiguous.
 * And the body fingerprint the report reader computes is the one the
 * content engine computed as the message streamed (scan/content), or a
 * redacted report could never find its message.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "arf.h"
#include "content.h"
#include "match.h"
#include "scanner.h"
#include "test.h"

static char dir[PATH_MAX];

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

static FILE *events(void)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/events.json", dir);
	return fopen(path, "r");
}

/* The report in text (or the sample named), matched. */
static int match_report(const char *sample, const char *text, struct sg_match *m)
{
	struct sg_arf arf;
	char err[400];
	size_t len = 0;
	char *buf = sample ? slurp(sample, &len) : strdup(text);
	FILE *ev = events();
	int ret = -2;

	if (buf && !sample)
		len = strlen(buf);
	if (buf && ev && sg_arf_parse(buf, len, &arf, err, sizeof(err)) == 0)
		ret = sg_match_report(&arf, ev, 0, m, err, sizeof(err));
	else if (buf && ev)
		printf("# %s: %s\n", sample ? sample : "report", err);
	if (ev)
		fclose(ev);
	free(buf);
	return ret;
}

static void test_samples(void)
{
	struct sg_match *m = calloc(1, sizeof(*m));

	if (ASSERT_EQ(match_report("rfc5965.eml", NULL, m), 0, "rfc5965: matched")) {
		ASSERT_STREQ(sg_match_level_name(m->level), "exact", "rfc5965: exactly");
		ASSERT_CONTAINS(m->why, "Message-ID", "rfc5965: by its Message-ID");
		ASSERT_STREQ(m->vm, "192.0.2.10", "rfc5965: names the VM");
		ASSERT_STREQ(m->tenant, "acme", "rfc5965: and its tenant");
		ASSERT_STREQ(m->source, "192.0.2.10:40001", "rfc5965: the session's source port");
		ASSERT_STREQ(m->ref, "SG692D6D860A1B0001", "rfc5965: the message's ref");
		ASSERT_CONTAINS(m->session, "\"event\":\"session\"", "rfc5965: its session event");
		ASSERT_CONTAINS(m->session, "\"source\":\"192.0.2.10:40001\"",
				"rfc5965: of the same source port");
		ASSERT_EQ(m->equals, 0, "rfc5965: no other message fits as well");
	}
	if (ASSERT_EQ(match_report("aol-scomp.eml", NULL, m), 0, "aol: matched")) {
		ASSERT_STREQ(sg_match_level_name(m->level), "exact", "aol: exactly");
		ASSERT_STREQ(m->ref, "SG692D77A60A1C0001",
			     "aol: the delivered copy, not the refused one with the same Message-ID");
		ASSERT_STREQ(m->tenant, "globex", "aol: its tenant");
		ASSERT_EQ(m->delta_s, 0, "aol: EST converted: the event at the arrival's second");
	}
	if (ASSERT_EQ(match_report("yahoo-cfl.eml", NULL, m), 0, "yahoo: matched")) {
		ASSERT_STREQ(sg_match_level_name(m->level), "strong",
			     "yahoo: Message-ID redacted: strong, by the body");
		ASSERT_CONTAINS(m->why, "body fingerprint", "yahoo: the fingerprint said so");
		ASSERT_STREQ(m->ref, "SG692D8D310A1D0000",
			     "yahoo: that body, not the same VM's other message 3 min later");
		ASSERT_STREQ(m->vm, "2001:db8:10::30", "yahoo: an IPv6 VM, without its port");
		ASSERT_STREQ(m->session, "", "yahoo: no session event in the file, none named");
	}
	if (ASSERT_EQ(match_report("jmrp-headers.eml", NULL, m), 0, "jmrp: matched")) {
		ASSERT_STREQ(sg_match_level_name(m->level), "probable",
			     "jmrp: headers only, no Source-IP: probable");
		ASSERT_STREQ(m->vm, "192.0.2.40",
			     "jmrp: the Received address, not the other VM in the same second");
		ASSERT_STREQ(m->ref, "SG692E0A3F0A1E0001", "jmrp: not the message hours later");
	}
	free(m);
}

/* A report built from rfc5965.eml with its Message-ID, recipient and
 * envelope sender gone: source and time alone fit two of 192.0.2.10's
 * messages (28 s apart): weak and ambiguous. */
static char *stripped_report(const char *mid_line)
{
	size_t len;
	char *buf = slurp("rfc5965.eml", &len), *out, *o;
	const char *p;

	if (!buf)
		return NULL;
	out = calloc(1, len + 256);
	o = out;
	for (p = buf; *p; ) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);

		if (!strncmp(p, "Message-ID:", 11)) {
			if (mid_line)
				o += sprintf(o, "%s\n", mid_line);
		} else if (strncmp(p, "Original-", 9) && strncmp(p, "To:", 3) &&
			   !(p[0] == 'S' && strstr(p, "Spam") == p)) {
			memcpy(o, p, n);
			o += n;
		}
		p += n;
	}
	free(buf);
	return out;
}

static void test_ambiguous_and_refs(void)
{
	struct sg_match *m = calloc(1, sizeof(*m));
	char *r = stripped_report(NULL);

	if (r && ASSERT_EQ(match_report(NULL, r, m), 0, "stripped: something fits")) {
		ASSERT_STREQ(sg_match_level_name(m->level), "weak",
			     "stripped: source and time alone are weak");
		ASSERT_EQ(m->equals, 1, "stripped: and another message fits as well (ambiguous)");
		ASSERT_STREQ(m->ref, "SG692D6D860A1B0001", "stripped: the nearer in time first");
	}
	free(r);
	/* the report quotes our reference id (an abuse desk's note) */
	r = stripped_report("X-Note: refused earlier with ref SG692D6DA20A1B0002");
	if (r && ASSERT_EQ(match_report(NULL, r, m), 0, "ref: matched")) {
		ASSERT_STREQ(sg_match_level_name(m->level), "exact", "ref: exact by reference id");
		ASSERT_CONTAINS(m->why, "reference id", "ref: said so");
		ASSERT_STREQ(m->ref, "SG692D6DA20A1B0002", "ref: that message");
	}
	free(r);
	/* a Message-ID of the other VM's message, but our Source-IP: conflict */
	r = stripped_report("Message-ID: <20261201101440.1@vm11.tenant.example>");
	if (r && ASSERT_EQ(match_report(NULL, r, m), 0, "conflict: matched")) {
		ASSERT_TRUE(m->level < SG_MATCH_PROBABLE,
			    "conflict: a Message-ID from another source is not exact");
		ASSERT_CONTAINS(m->why, "", "conflict: why given");
	}
	free(r);
	/* another VM, another day: nothing */
	r = stripped_report(NULL);
	if (r) {
		char *ip = strstr(r, "Source-IP: 192.0.2.10");

		if (ip)
			memcpy(ip + 11, "192.0.2.99", 10);
		ASSERT_EQ(match_report(NULL, r, m), 1, "none: an unknown source matches nothing");
	}
	free(r);
	free(m);
}

/* The content engine's fingerprint of the message as it streamed equals
 * the report reader's of the report's copy. */
static void test_fingerprint_agrees(void)
{
	static const char *const samples[] = { "rfc5965.eml", "aol-scomp.eml", "yahoo-cfl.eml" };
	struct sg_content_config cfg = { .rules = NULL };
	struct sg_scanner sc = { .failure_action = SG_TEMPFAIL };
	struct sg_scan *scan = calloc(1, sizeof(*scan));

	sg_scanner_add(&sc, &sg_content_engine, &cfg);
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		struct sg_envelope env = { .vm = "192.0.2.10:40001", .ref = "SG0" };
		struct sg_verdict v;
		struct sg_arf arf;
		char err[400], name[120];
		size_t len;
		char *buf = slurp(samples[i], &len), *orig;

		if (!buf)
			continue;
		sg_arf_parse(buf, len, &arf, err, sizeof(err));
		/* the copy: after the rfc822 part's own header and blank line,
		 * up to the report's closing boundary */
		orig = strstr(buf, "message/rfc822");
		orig = orig ? strstr(orig, "\n\n") : NULL;
		if (!orig) {
			free(buf);
			continue;
		}
		orig += 2;
		{
			char *last = NULL;

			for (char *p = strstr(orig, "\n--"); p; p = strstr(p + 1, "\n--"))
				last = p;	/* the report's closing boundary */
			if (last)
				*last = '\0';
		}
		sg_scan_begin(scan, &sc, &env, NULL);
		sg_scan_feed(scan, orig, strlen(orig));
		sg_scan_verdict(scan, &v);
		snprintf(name, sizeof(name), "fingerprint: %s: the content engine made one",
			 samples[i]);
		ASSERT_EQ(scan->has_fingerprint, 1, name);
		snprintf(name, sizeof(name), "fingerprint: %s: the report's is the event's",
			 samples[i]);
		ASSERT_EQ(sg_fingerprint_digest(&scan->fingerprint), arf.body_fp, name);
		free(buf);
	}
	free(scan);
}

int main(void)
{
	if (find_samples()) {
		printf("FAIL samples: selftests/complaints not found\n");
		return 1;
	}
	test_samples();
	test_ambiguous_and_refs();
	test_fingerprint_agrees();
	return test_exit_status();
}
