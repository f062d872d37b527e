/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_matcher.c - a message matched against compiled content rules
 * (matcher.h): every target matched and not matched (any header and one
 * header by name, body, URL hosts by pattern and by list, attachment names
 * and types); a body pattern found across every cut of a message, after
 * 4,000 bytes of one line, after a NUL byte, but never across two text
 * parts; the flags; the actions (the first reject or tempfail decides,
 * flags before it are kept, a rule hits once); the cap on URL hosts; a
 * reload (two rule sets alive, the old one's message finishing after the
 * new one is built); and four threads matching with the same rules. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "matcher.h"
#include "test.h"

#define S(x) x, sizeof(x) - 1

static char dir[64];

static void write_file(const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fputs(text, f) < 0) {
		ASSERT_TRUE(0, "matcher: write a temporary file");
		exit(1);
	}
	fclose(f);
}

static struct sg_rules *load(const char *text)
{
	char path[256], err[1024];
	struct sg_rules *r;

	write_file("rules.conf", text);
	snprintf(path, sizeof(path), "%s/rules.conf", dir);
	r = sg_rules_load(path, err, sizeof(err));
	if (!r) {
		printf("# %s\n", err);
		ASSERT_TRUE(0, "matcher: rules load");
		exit(1);
	}
	return r;
}

/* The name of the rule that decided, or "" */
static const char *decided(const struct sg_match_stream *ms)
{
	const struct sg_rule *r = sg_match_result(ms)->decided;

	return r ? r->name : "";
}

/* One text part, in chunks of chunk bytes: the deciding rule's name. */
static const char *body_verdict(const struct sg_rules *rules, const char *text, size_t n,
				size_t chunk)
{
	static __thread char name[SG_RULE_NAME_MAX + 1];	/* threads call it too */
	struct sg_match_stream *ms = sg_match_begin(rules);

	for (size_t off = 0; off < n; off += chunk)
		sg_match_body(ms, text + off, n - off < chunk ? n - off : chunk);
	sg_match_body_end(ms);
	snprintf(name, sizeof(name), "%s", decided(ms));
	sg_match_end(ms);
	return name;
}

static void test_targets(void)
{
	struct sg_rules *rules = load(
		"mailer   header            /^X-Mailer: evil/i\n"
		"subject  header:Subject    /free\\s+money/i    tempfail\n"
		"word     body              /v[i1]agra/i\n"
		"host-re  url-host          /(^|\\.)evil\\.example$/\n"
		"host-ls  url-host          file:hosts.txt\n"
		"exe      attachment-name   /\\.(exe|scr)$/i\n"
		"msdl     attachment-type   /^application\\/x-msdownload$/\n");
	struct sg_match_stream *ms;

	ms = sg_match_begin(rules);
	ASSERT_EQ(sg_match_header(ms, S("Subject"), S("hello")), SG_MATCH_GO_ON,
		  "targets: a clean header goes on");
	ASSERT_EQ(sg_match_header(ms, S("X-Subject"), S("free money")), SG_MATCH_GO_ON,
		  "targets: header:Subject ignores another header's value");
	ASSERT_EQ(sg_match_header(ms, S("X-Other"), S("X-Mailer: evil")), SG_MATCH_GO_ON,
		  "targets: header sees \"name: value\", not a value alone");
	ASSERT_EQ(sg_match_header(ms, S("X-Mailer"), S("EVIL 1.0")), SG_MATCH_DECIDED,
		  "targets: header matches \"name: value\"");
	ASSERT_STREQ(decided(ms), "mailer", "targets: the header rule named");
	sg_match_end(ms);

	ms = sg_match_begin(rules);
	ASSERT_EQ(sg_match_header(ms, S("sUbJeCt"), S("Get FREE \t money")), SG_MATCH_DECIDED,
		  "targets: header:Subject by name without case");
	ASSERT_STREQ(decided(ms), "subject", "targets: the header:Name rule named");
	ASSERT_EQ(sg_match_result(ms)->decided->action, SG_RULE_TEMPFAIL,
		  "targets: with its action");
	sg_match_end(ms);

	ASSERT_STREQ(body_verdict(rules, S("buy V1AGRA now"), 100), "word", "targets: body matched");
	ASSERT_STREQ(body_verdict(rules, S("buy vi-agra now"), 100), "", "targets: body not matched");
	ms = sg_match_begin(rules);
	ASSERT_EQ(sg_match_body(ms, NULL, 0), SG_MATCH_GO_ON, "targets: an empty chunk is nothing");
	ASSERT_EQ(sg_match_header(ms, S("X-Empty"), NULL, 0), SG_MATCH_GO_ON,
		  "targets: an empty header value is nothing");
	sg_match_end(ms);
	ASSERT_STREQ(body_verdict(rules, S("<a href=\"https://login.EVIL.example/\">"), 100),
		     "host-re", "targets: a URL's host in the body, by pattern");
	ASSERT_STREQ(body_verdict(rules, S("see http://a.b.phish.example:8080/x"), 100),
		     "host-ls", "targets: a URL's host in the body, by list (a subdomain)");
	ASSERT_STREQ(body_verdict(rules, S("see http://notevil.example/ www.phish.example.com"),
				  100), "", "targets: look-alike hosts not matched");

	ms = sg_match_begin(rules);
	ASSERT_EQ(sg_match_url_host(ms, S("Phish.Example.")), SG_MATCH_DECIDED,
		  "targets: url-host given directly, normalized");
	sg_match_end(ms);

	ms = sg_match_begin(rules);
	ASSERT_EQ(sg_match_attachment(ms, S("report.pdf"), S("application/pdf")), SG_MATCH_GO_ON,
		  "targets: a harmless attachment");
	ASSERT_EQ(sg_match_attachment(ms, NULL, 0, S("text/plain")), SG_MATCH_GO_ON,
		  "targets: a part without a name");
	ASSERT_EQ(sg_match_attachment(ms, S("invoice.PDF.exe"), S("application/octet-stream")),
		  SG_MATCH_DECIDED, "targets: attachment-name matched");
	ASSERT_STREQ(decided(ms), "exe", "targets: the attachment-name rule named");
	sg_match_end(ms);

	ms = sg_match_begin(rules);
	ASSERT_EQ(sg_match_attachment(ms, S("x.bin"), S("Application/X-MSDownload")),
		  SG_MATCH_DECIDED, "targets: attachment-type matched without case");
	ASSERT_STREQ(decided(ms), "msdl", "targets: the attachment-type rule named");
	sg_match_end(ms);
	sg_rules_free(rules);
}

static void test_body_streaming(void)
{
	struct sg_rules *rules = load("prize body /claim\\s+your\\s+prize/\n"
				      "nul   body /evil\\x00payload/\n");
	static const char msg[] = "Dear friend,\r\nYou have won. Please claim\r\n  your prize "
				  "today, before it is too late.\r\nRegards\r\n";
	char *line;
	int every_cut = 1, every_size = 1;

	for (size_t cut = 0; cut <= sizeof(msg) - 1; cut++) {
		struct sg_match_stream *ms = sg_match_begin(rules);

		sg_match_body(ms, msg, cut);
		sg_match_body(ms, msg + cut, sizeof(msg) - 1 - cut);
		sg_match_body_end(ms);
		if (strcmp(decided(ms), "prize"))
			every_cut = 0;
		sg_match_end(ms);
	}
	ASSERT_TRUE(every_cut, "body: a phrase over a line break found at every cut");
	for (size_t size = 1; size <= sizeof(msg) - 1; size++)
		if (strcmp(body_verdict(rules, msg, sizeof(msg) - 1, size), "prize"))
			every_size = 0;
	ASSERT_TRUE(every_size, "body: and in chunks of every size");

	line = malloc(4100);
	memset(line, 'a', 4000);
	line[1234] = '\0';
	memcpy(line + 4000, "claim your prize", 16);
	ASSERT_STREQ(body_verdict(rules, line, 4016, 4016), "prize",
		     "body: found 4,000 bytes into one line, after a NUL byte");
	ASSERT_STREQ(body_verdict(rules, line, 4016, 999), "prize",
		     "body: the same in chunks of 999 bytes");
	memcpy(line + 4000, "evil\0payload", 12);
	ASSERT_STREQ(body_verdict(rules, line, 4012, 7), "nul",
		     "body: a pattern with a NUL byte in it");
	free(line);
	sg_rules_free(rules);
}

static void test_parts(void)
{
	struct sg_rules *rules = load("spans  body /foobar/\n"
				      "ending body /the end\\z/ flag\n"
				      "start  body /^Hello/ flag\n");
	struct sg_match_stream *ms = sg_match_begin(rules);
	const struct sg_rule_hit *hit;
	int in_order;

	sg_match_body(ms, S("Hello. It was foo"));
	sg_match_body_end(ms);
	sg_match_body(ms, S("bar, and the end"));
	sg_match_body_end(ms);
	hit = sg_match_result(ms);
	ASSERT_STREQ(decided(ms), "", "parts: a pattern does not span two text parts");
	ASSERT_EQ(hit->flagged_count, 2, "parts: \\z at a part's end, ^ at a part's start");
	in_order = hit->flagged_count == 2 && !strcmp(hit->flagged[0]->name, "start") &&
		   !strcmp(hit->flagged[1]->name, "ending");
	ASSERT_TRUE(in_order, "parts: in the order they hit");
	sg_match_body(ms, S("Hello again, the end"));
	sg_match_body_end(ms);
	ASSERT_EQ(sg_match_result(ms)->flagged_count, 2, "parts: a rule hits once a message");
	sg_match_end(ms);
	sg_rules_free(rules);
}

static void test_flags(void)
{
	struct sg_rules *rules = load("exact  body /viagra/ flag\n"
				      "nocase body /casino/i flag\n"
				      "lines  body /^subject line$/m flag\n"
				      "noline body /^first$/ flag\n"
				      "dotall body /begin.*end/s flag\n"
				      "nodot  body /start.*stop/ flag\n");
	struct sg_match_stream *ms = sg_match_begin(rules);
	const struct sg_rule_hit *hit;
	char names[256] = "";

	sg_match_body(ms, S("first\nVIAGRA CaSiNo\nsubject line\nbegin\nend start\nstop"));
	sg_match_body_end(ms);
	hit = sg_match_result(ms);
	for (unsigned int i = 0; i < hit->flagged_count; i++) {
		strcat(names, hit->flagged[i]->name);
		strcat(names, " ");
	}
	ASSERT_STREQ(names, "nocase lines dotall ",
		     "flags: i, m and s do what they say; without them, not");
	sg_match_end(ms);
	sg_rules_free(rules);
}

static void test_actions(void)
{
	struct sg_rules *rules = load("f-alpha  body /alpha/ flag\n"
				      "f-beta   header:Subject /beta/ flag\n"
				      "r-gamma  body /gamma/ reject\n"
				      "t-delta  body /delta/ tempfail\n"
				      "f-omega  body /omega/ flag\n");
	struct sg_match_stream *ms = sg_match_begin(rules);
	const struct sg_rule_hit *hit;

	ASSERT_EQ(sg_match_header(ms, S("Subject"), S("beta")), SG_MATCH_GO_ON,
		  "actions: a flag rule does not decide");
	ASSERT_EQ(sg_match_body(ms, S("alpha gamma delta")), SG_MATCH_DECIDED,
		  "actions: a reject rule decides");
	ASSERT_EQ(sg_match_body(ms, S("omega")), SG_MATCH_DECIDED,
		  "actions: once decided, nothing more is matched");
	ASSERT_EQ(sg_match_body_end(ms), SG_MATCH_DECIDED, "actions: nor at the part's end");
	hit = sg_match_result(ms);
	ASSERT_STREQ(decided(ms), "r-gamma", "actions: the first reject rule wins over flags");
	ASSERT_EQ(hit->decided->action, SG_RULE_REJECT, "actions: its action is reject");
	ASSERT_EQ(hit->flagged_count, 2, "actions: flags before it kept, none after");
	sg_match_end(ms);

	ms = sg_match_begin(rules);
	sg_match_body(ms, S("delta then gamma"));
	ASSERT_STREQ(decided(ms), "t-delta", "actions: the first to match decides: tempfail");
	sg_match_end(ms);
	sg_rules_free(rules);
}

static void test_flagged_cap(void)
{
	char text[2048] = "";
	struct sg_rules *rules;
	struct sg_match_stream *ms;
	const struct sg_rule_hit *hit;

	for (int i = 0; i < 20; i++)
		sprintf(text + strlen(text), "flag%02d body /word%02d/ flag\n", i, i);
	rules = load(text);
	ms = sg_match_begin(rules);
	for (int i = 0; i < 20; i++) {
		snprintf(text, sizeof(text), " word%02d ", i);
		sg_match_body(ms, text, strlen(text));
	}
	hit = sg_match_result(ms);
	ASSERT_EQ(hit->flagged_count, 20, "flagged: all 20 flag rules counted");
	ASSERT_STREQ(hit->flagged[SG_MATCH_FLAGGED_MAX - 1]->name, "flag15",
		     "flagged: the first 16 named");
	ASSERT_TRUE(hit->decided == NULL, "flagged: flags alone decide nothing");
	sg_match_end(ms);
	sg_rules_free(rules);
}

static void test_url_cap(void)
{
	struct sg_rules *rules = load("late url-host /^late\\.example$/\n");
	struct sg_match_stream *ms = sg_match_begin(rules);
	const struct sg_rule_hit *hit;
	char host[64];

	for (int i = 0; i < 1200; i++) {
		int n = snprintf(host, sizeof(host), "h%d.example", i);

		sg_match_url_host(ms, host, (size_t)n);
		sg_match_url_host(ms, host, (size_t)n);	/* a repeat costs nothing */
	}
	hit = sg_match_result(ms);
	ASSERT_EQ(hit->url_hosts, SG_MATCH_URL_HOSTS_MAX, "url cap: 1,000 distinct hosts looked at");
	ASSERT_EQ(hit->url_hosts_over, 400, "url cap: each of the 200 past it counted each time");
	sg_match_url_host(ms, S("h5.example"));
	ASSERT_EQ(sg_match_result(ms)->url_hosts_over, 400,
		  "url cap: a host looked at already is not over the cap");
	ASSERT_EQ(sg_match_url_host(ms, S("late.example")), SG_MATCH_GO_ON,
		  "url cap: a host past the cap is not looked at");
	sg_match_url_host(ms, S(""));
	ASSERT_EQ(sg_match_result(ms)->url_hosts_unusable, 1, "url cap: an empty host is unusable");
	sg_match_end(ms);
	sg_rules_free(rules);
}

static void test_reload(void)
{
	struct sg_rules *old = load("old-rule body /old-spam/\n");
	struct sg_match_stream *before = sg_match_begin(old), *after;
	struct sg_rules *new;

	sg_match_body(before, S("this is old-"));
	new = load("new-rule body /new-spam/\nold-rule body /never/\n");
	after = sg_match_begin(new);
	ASSERT_EQ(sg_match_body(after, S("new-spam and old-spam")), SG_MATCH_DECIDED,
		  "reload: a message of the new rules");
	ASSERT_STREQ(decided(after), "new-rule", "reload: judged by the new rules");
	sg_match_end(after);
	ASSERT_EQ(sg_match_body(before, S("spam")), SG_MATCH_DECIDED,
		  "reload: the old rules' message finishes after the new rules are built");
	ASSERT_STREQ(decided(before), "old-rule", "reload: judged by the old rules");
	sg_match_end(before);
	sg_rules_free(old);
	after = sg_match_begin(new);
	ASSERT_EQ(sg_match_body(after, S("old-spam")), SG_MATCH_GO_ON,
		  "reload: the new rules still match once the old are freed");
	sg_match_end(after);
	sg_rules_free(new);
}

struct worker {
	const struct sg_rules *rules;
	int wrong;
};

static void *match_many(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < 300; i++) {
		const char *want = i % 3 == 0 ? "spam" : i % 3 == 1 ? "url" : "";
		char text[128];
		int n = snprintf(text, sizeof(text), "message %d %s", i,
				 i % 3 == 0 ? "buy cheap pills" :
				 i % 3 == 1 ? "http://x.evil.example/" : "hello");

		if (strcmp(body_verdict(w->rules, text, (size_t)n, 5), want))
			w->wrong++;
	}
	sg_match_thread_release();
	return NULL;
}

static void test_threads(void)
{
	struct sg_rules *rules = load("spam body /cheap\\s+pills/\nurl url-host /evil\\.example$/\n");
	struct worker w[4];
	pthread_t t[4];
	int wrong = 0;

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .rules = rules };
		pthread_create(&t[i], NULL, match_many, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		wrong += w[i].wrong;
	}
	ASSERT_EQ(wrong, 0, "threads: four threads, one set of rules, each its own scratch");
	sg_rules_free(rules);
}

static void test_stats(void)
{
	struct sg_rules *rules = load("a body /x+y/\nb header:From /z/\nc url-host file:hosts.txt\n");
	struct sg_rules *none = load("# nothing yet\n");
	struct sg_match_stream *ms;
	struct sg_matcher_stats st;
	int ok;

	ASSERT_EQ(sg_matcher_stats(rules, &st), 0, "stats: known");
	ok = st.database_bytes[SG_TARGET_BODY] > 0 && st.database_bytes[SG_TARGET_HEADER_NAMED] > 0 &&
	     st.database_bytes[SG_TARGET_HEADER] == 0;
	ASSERT_TRUE(ok, "stats: a database a target with rules");
	ok = st.stream_bytes > 0 && st.message_bytes > st.stream_bytes &&
	     st.message_bytes_max > st.message_bytes;
	ASSERT_TRUE(ok, "stats: a message's state");
	ASSERT_EQ(st.hostlist_hosts, 1, "stats: the host list's hosts");
	ASSERT_TRUE(st.scratch_bytes > 0, "stats: this thread's scratch");
	sg_match_thread_release();	/* a thread that has matched with no database yet */
	ms = sg_match_begin(none);
	ASSERT_TRUE(ms != NULL, "stats: a message begins with rules that need no scratch");
	ASSERT_EQ(sg_match_body(ms, S("anything")) + sg_match_header(ms, S("A"), S("b")) +
		  sg_match_body_end(ms) + sg_match_attachment(ms, S("a.exe"), S("x/y")) +
		  sg_match_url_host(ms, S("evil.example")), SG_MATCH_GO_ON,
		  "stats: a file without rules matches nothing");
	sg_match_end(ms);
	sg_match_end(NULL);
	sg_rules_free(none);
	sg_rules_free(rules);
}

int main(void)
{
	char path[128];

	snprintf(dir, sizeof(dir), "/tmp/sg-test-matcher-XXXXXX");
	if (!mkdtemp(dir)) {
		ASSERT_TRUE(0, "matcher: temporary directory");
		return test_exit_status();
	}
	write_file("hosts.txt", "phish.example\n");
	test_targets();
	test_body_streaming();
	test_parts();
	test_flags();
	test_actions();
	test_flagged_cap();
	test_url_cap();
	test_reload();
	test_threads();
	test_stats();
	snprintf(path, sizeof(path), "%s/rules.conf", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/hosts.txt", dir);
	unlink(path);
	rmdir(dir);
	sg_match_thread_release();
	return test_exit_status();
}
