/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scan_rules.c - the content rules file (rules.h, docs/content-rules.md):
 * a file of every target, flag and action read as written (comments, blank
 * lines, defaults, a host list beside it); and each mistake refused with
 * its exact message, which names the file, line, column, rule, what is
 * wrong and how to fix it: names, targets, patterns (syntax, what a stream
 * cannot match, the empty text), flags, actions, limits, host lists, NUL
 * bytes and endless lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "matcher.h"
#include "rules.h"
#include "test.h"

static char dir[64];
static char rules_path[128];

static void write_file(const char *name, const char *text, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f || fwrite(text, 1, len, f) != len) {
		ASSERT_TRUE(0, "rules: write a temporary file");
		exit(1);
	}
	fclose(f);
}

/* Loads text as DIR/rules.conf: the rules, or NULL with err. */
static struct sg_rules *load_text(const char *text, char *err, size_t errlen)
{
	write_file("rules.conf", text, strlen(text));
	err[0] = '\0';
	return sg_rules_load(rules_path, err, errlen);
}

/* The text must be refused with exactly DIR/rules.conf + want. */
static void refused(const char *text, const char *want, const char *name)
{
	char err[1024], full[1024];
	struct sg_rules *r = load_text(text, err, sizeof(err));

	snprintf(full, sizeof(full), "%s%s", rules_path, want);
	if (!ASSERT_TRUE(r == NULL, name)) {
		sg_rules_free(r);
		return;
	}
	ASSERT_STREQ(err, full, name);
}

static void test_good_file(void)
{
	static const char text[] =
		"# content rules\n"
		"\n"
		"  viagra      body             /v[i1]agra/i\n"
		"subject.free  header:Subject   /free\\s+money/   flag   # a signal\n"
		"mailer_x      header           /^X-Mailer: evil/ims tempfail\n"
		"exe-name      attachment-name  /\\.(exe|scr)$/i reject\n"
		"dl-type       attachment-type  /^application\\/x-msdownload$/\n"
		"bad-host      url-host         /(^|\\.)evil\\.example$/#no space needed\n"
		"listed        url-host         file:hosts.txt  flag\n"
		"slash         body             /a\\/b c/\n";
	static const char hosts[] = "phish.example\n# a comment\n*.bad.test\n\n.Other.TEST.\n";
	const struct sg_rule *r;
	struct sg_rules *rules;
	char err[1024];

	write_file("hosts.txt", hosts, strlen(hosts));
	rules = load_text(text, err, sizeof(err));
	if (!ASSERT_TRUE(rules != NULL, "good file: loads")) {
		printf("# %s\n", err);
		return;
	}
	ASSERT_EQ(sg_rules_count(rules), 8, "good file: 8 rules, comments and blank lines skipped");
	r = sg_rules_rule(rules, 0);
	ASSERT_STREQ(r->name, "viagra", "good file: an indented rule's name");
	ASSERT_EQ(r->target, SG_TARGET_BODY, "good file: body target");
	ASSERT_STREQ(r->pattern, "v[i1]agra", "good file: the pattern without its slashes");
	ASSERT_EQ(r->flags, SG_RULE_CASELESS, "good file: flag i");
	ASSERT_EQ(r->action, SG_RULE_REJECT, "good file: reject is the default action");
	ASSERT_EQ(r->line, 3, "good file: the rule's line");
	ASSERT_EQ(r->column, 32, "good file: the pattern's column");
	r = sg_rules_rule(rules, 1);
	ASSERT_EQ(r->target, SG_TARGET_HEADER_NAMED, "good file: header:Name target");
	ASSERT_STREQ(r->header, "Subject", "good file: header:Name's name");
	ASSERT_EQ(r->action, SG_RULE_FLAG, "good file: flag action, a comment after it");
	r = sg_rules_rule(rules, 2);
	ASSERT_EQ(r->target, SG_TARGET_HEADER, "good file: header target");
	ASSERT_EQ(r->flags, SG_RULE_CASELESS | SG_RULE_MULTILINE | SG_RULE_DOTALL,
		  "good file: flags ims");
	ASSERT_EQ(r->action, SG_RULE_TEMPFAIL, "good file: tempfail action");
	ASSERT_EQ(sg_rules_rule(rules, 3)->target, SG_TARGET_ATTACHMENT_NAME,
		  "good file: attachment-name target");
	ASSERT_EQ(sg_rules_rule(rules, 4)->target, SG_TARGET_ATTACHMENT_TYPE,
		  "good file: attachment-type target");
	r = sg_rules_rule(rules, 5);
	ASSERT_TRUE(r->target == SG_TARGET_URL_HOST && r->pattern && r->flags == 0,
		    "good file: url-host regex, a comment right after the flags");
	r = sg_rules_rule(rules, 6);
	ASSERT_TRUE(r->pattern == NULL && r->hosts != NULL,
		    "good file: url-host file: list, found beside the rules file");
	ASSERT_STREQ(sg_rules_rule(rules, 7)->pattern, "a\\/b c",
		     "good file: an escaped slash and a space inside a pattern");
	ASSERT_EQ(sg_rules_count_target(rules, SG_TARGET_URL_HOST), 2,
		  "good file: rules counted by target");
	sg_rules_free(rules);
	rules = load_text("\xef\xbb\xbf" "bom body /x/\r\nnext body /y/ flag\r\n", err, sizeof(err));
	ASSERT_TRUE(rules && sg_rules_count(rules) == 2 &&
		    !strcmp(sg_rules_rule(rules, 0)->name, "bom"),
		    "good file: a byte order mark and CRLF line ends");
	sg_rules_free(rules);
}

static void test_refusals(void)
{
	char line[SG_RULES_LINE_MAX + 64];

	refused("bad$name body /x/\n",
		":1:4: the rule name 'bad$name' holds '$'; a name is letters, digits, '_', "
		"'.' and '-'", "refused: a bad character in a name, at its column");
	refused("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa body /x/\n",
		":1:1: the rule name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is 65 characters; "
		"at most 64", "refused: a name longer than 64");
	refused("# first\nlonely\n",
		":2:7: rule 'lonely': no target; a rule is NAME TARGET /PATTERN/FLAGS [ACTION]",
		"refused: a rule without a target");
	refused("x bodies /x/\n",
		":1:3: rule 'x': unknown target 'bodies' (targets: header, header:NAME, body, "
		"url-host, attachment-name, attachment-type)", "refused: an unknown target");
	refused("x header:Sub:ject /x/\n",
		":1:13: rule 'x': a header name is printable characters other than ':'",
		"refused: a ':' in header:Name's name");
	refused("x header: /x/\n",
		":1:3: rule 'x': header: names no header (write header:NAME, say header:Subject)",
		"refused: header: without a name");
	refused("x body\n", ":1:7: rule 'x': no pattern; write /PATTERN/FLAGS after the target",
		"refused: a rule without a pattern");
	refused("x body viagra\n",
		":1:8: rule 'x': a pattern is written /PATTERN/FLAGS, not 'viagra'",
		"refused: a pattern without slashes");
	refused("x url-host evil.example\n",
		":1:12: rule 'x': a pattern is written /PATTERN/FLAGS or file:PATH, not "
		"'evil.example'", "refused: a url-host pattern without slashes names file:");
	refused("x body /abc\\/ reject\n",
		":1:8: rule 'x': the pattern has no closing '/' (a '/' inside a pattern is "
		"written '\\/')", "refused: a pattern without its closing slash");
	refused("x body // reject\n", ":1:8: rule 'x': the pattern is empty",
		"refused: an empty pattern");
	memset(line, 0, sizeof(line));
	strcpy(line, "x body /");
	memset(line + 8, 'a', SG_RULE_PATTERN_MAX + 1);
	strcat(line, "/\n");
	refused(line, ":1:8: rule 'x': the pattern is 1025 bytes; at most 1024",
		"refused: a pattern longer than the limit");
	refused("x body /abc/ig\n",
		":1:14: rule 'x': unknown flag 'g' (flags: i caseless, m ^ and $ at line "
		"breaks, s '.' matches a line break)", "refused: an unknown flag, at its column");
	refused("x body /abc/u\n",
		":1:13: rule 'x': flag 'u' (UTF-8) is not supported: patterns match bytes, and a "
		"UTF-8 mode would have to trust a sender's text to be valid UTF-8; write the "
		"UTF-8 bytes themselves", "refused: the UTF-8 flag, and why");
	refused("x body /abc/ drop\n",
		":1:14: rule 'x': unknown action 'drop' (actions: reject, the default; "
		"tempfail; flag)", "refused: an unknown action");
	refused("x body /abc/ flag now\n",
		":1:19: rule 'x': unexpected 'now' after the action (a comment starts with '#')",
		"refused: a word after the action");
	refused("a body /x/\nb body /y/\n\na body /z/\nb body /w/\n",
		":4: rule 'a': the name is taken by the rule on line 1; rule names must be unique",
		"refused: a repeated name, its first repeat named");
	refused("x body /ok/\ny header /(a/\n",
		":2:13: rule 'y': pattern /(a/ does not compile: missing closing parenthesis at "
		"offset 2", "refused: a pattern that does not compile, at its column");
	refused("y body /(a)b\\1/\n",
		":1:8: rule 'y': pattern /(a)b\\1/ refers back to a group (\\1); the matcher "
		"cannot, so write what it stands for (an alternation or a class)",
		"refused: a back-reference");
	refused("y body /buy(?=now)/\n",
		":1:8: rule 'y': pattern /buy(?=now)/ cannot be matched in a stream: "
		"Zero-width assertions are not supported. Rewrite it without back-references, "
		"look-arounds, atomic groups, possessive quantifiers, conditionals, recursion, "
		"\\K \\R \\G \\X or control verbs", "refused: a look-ahead, which Hyperscan cannot run");
	refused("y body /ab\\Kc/\n",
		":1:11: rule 'y': pattern /ab\\Kc/ cannot be matched in a stream: \\K at index 2 "
		"not supported. Rewrite it without back-references, look-arounds, atomic "
		"groups, possessive quantifiers, conditionals, recursion, \\K \\R \\G \\X or "
		"control verbs", "refused: \\K, at its column");
	refused("y body /(spam)?/\n",
		":1:8: rule 'y': pattern /(spam)?/ matches the empty text, so it would match "
		"every message; make it need at least one character",
		"refused: a pattern that matches the empty text");
	refused("y body /(*UTF)x/\n",
		":1:15: rule 'y': pattern /(*UTF)x/ does not compile: using UTF is disabled by "
		"the application at offset 6", "refused: a UTF mode switched on in the pattern");
	refused("y body file:hosts.txt\n",
		":1:8: rule 'y': file: lists are for url-host rules; a body rule takes a /PATTERN/",
		"refused: a host list for another target");
	refused("bad\x01name body /x/\n",
		":1:4: the rule name 'bad\\x01name' holds '?'; a name is letters, digits, '_', "
		"'.' and '-'", "refused: a control byte quoted, not written raw");
}

static void test_file_limits(void)
{
	char err[1024], want[1024];
	char *big, line[SG_RULES_LINE_MAX + 16];
	size_t n = 0;
	struct sg_rules *r;

	write_file("rules.conf", "x body /a\0b/\n", 13);
	r = sg_rules_load(rules_path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:1:10: the line holds a NUL byte; this is a text file",
		 rules_path);
	ASSERT_TRUE(r == NULL, "limits: a NUL byte refused");
	ASSERT_STREQ(err, want, "limits: a NUL byte's line and column");

	memset(line, 'a', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	write_file("rules.conf", line, sizeof(line));
	r = sg_rules_load(rules_path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:1: the line is longer than %d bytes", rules_path,
		 SG_RULES_LINE_MAX);
	ASSERT_TRUE(r == NULL, "limits: an endless line refused");
	ASSERT_STREQ(err, want, "limits: an endless line's message");

	big = malloc((size_t)(SG_RULES_MAX + 1) * 32);
	for (int i = 0; i <= SG_RULES_MAX; i++)
		n += (size_t)sprintf(big + n, "r%d body /w%d/\n", i, i);
	write_file("rules.conf", big, n);
	free(big);
	r = sg_rules_load(rules_path, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:%d:1: rule 'r%d': more than %d rules in one file",
		 rules_path, SG_RULES_MAX + 1, SG_RULES_MAX, SG_RULES_MAX);
	ASSERT_TRUE(r == NULL, "limits: more than 10,000 rules refused");
	ASSERT_STREQ(err, want, "limits: the rule past the limit named");

	snprintf(want, sizeof(want), "%s/none.conf", dir);
	r = sg_rules_load(want, err, sizeof(err));
	ASSERT_TRUE(r == NULL, "limits: a missing file refused");
	ASSERT_CONTAINS(err, "none.conf: cannot open: No such file or directory",
			"limits: a missing file's message");
}

/* A host list's error is its own file's line and column, inside the rule's. */
static void list_refused(const char *list, const char *want, const char *name)
{
	char full[1024];

	write_file("list.txt", list, strlen(list));
	snprintf(full, sizeof(full), ":2:12: rule 'l': host list: %s/list.txt%s", dir, want);
	refused("# lists\nl url-host file:list.txt\n", full, name);
}

static void test_host_list_errors(void)
{
	char entry[300], want[200];

	list_refused("ok.example\nsecond.example third.example\n",
		     ":2:15: more than one entry on the line; write one host or domain a line",
		     "host list refused: two entries on a line");
	list_refused("ev!l.example\n",
		     ":1:3: '!' cannot be in a host name (letters, digits, '-', '_' and '.' "
		     "between labels; IPv6 hex digits and ':')", "host list refused: a bad byte");
	list_refused("  a..example\n",
		     ":1:5: '.' cannot be in a host name (letters, digits, '-', '_' and '.' "
		     "between labels; IPv6 hex digits and ':')", "host list refused: an empty label");
	memset(entry, 'a', 254);
	strcpy(entry + 254, "\n");
	list_refused(entry, ":1:1: the entry is 254 bytes; a host is at most 253",
		     "host list refused: an entry longer than a host");
	snprintf(want, sizeof(want), ":1:12: rule 'l': host list: %s/missing.txt: cannot open: "
		 "No such file or directory", dir);
	refused("l url-host file:missing.txt\n", want, "host list refused: a missing list's message");
	snprintf(want, sizeof(want), ":1:12: rule 'l': host list: %s/.: not a regular file", dir);
	refused("l url-host file:.\n", want, "host list refused: a directory, not a file");
	refused("l url-host file: flag\n",
		":1:12: rule 'l': file: names no file (write file:PATH)",
		"host list refused: file: without a path");
}

static void remove_files(void)
{
	static const char *const names[] = { "rules.conf", "hosts.txt", "list.txt" };
	char path[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/sg-test-rules-XXXXXX");
	if (!mkdtemp(dir)) {
		ASSERT_TRUE(0, "rules: temporary directory");
		return test_exit_status();
	}
	snprintf(rules_path, sizeof(rules_path), "%s/rules.conf", dir);
	test_good_file();
	test_refusals();
	test_file_limits();
	test_host_list_errors();
	remove_files();
	sg_match_thread_release();
	return test_exit_status();
}
