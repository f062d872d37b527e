/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_scanner.c - the scanner: a message cut into lines however it comes,
 * the Message-ID noted, the content engine's verdicts (naming the rule by
 * its name, never its pattern), a second engine plugged in behind it (told
 * the envelope, its verdict taken when the content rules accept, its lines
 * no longer cut once every engine has decided), and engines that wait on
 * the event loop: one that answers later, one that never does, one that
 * fails; every engine's state released exactly once, whatever the outcome. */
#include <stdlib.h>
#include <unistd.h>
#include "content.h"
#include "loop.h"
#include "parse.h"
#include "scanner.h"
#include "test.h"

#define S(x) x, sizeof(x) - 1

static struct sg_rules *load_rules(const char *text)
{
	char path[] = "/tmp/sg-test-rules-XXXXXX", err[512];
	struct sg_rules *rules;
	int fd = mkstemp(path);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		ASSERT_TRUE(0, "rules: temporary file");
		return NULL;
	}
	close(fd);
	rules = sg_rules_load(path, err, sizeof(err));
	unlink(path);
	if (!ASSERT_TRUE(rules != NULL, "rules: loaded"))
		fprintf(stderr, "%s\n", err);
	return rules;
}

static const struct sg_envelope test_env = {
	.vm = "192.0.2.11:4000", .mail_from = "a@example.org", .rcpts = 2,
};

static enum sg_verdict_kind scan_all(const struct sg_scanner *sc, const char *msg, size_t n,
				     size_t chunk, char *reason, size_t len, struct sg_scan *scan)
{
	struct sg_verdict v;

	sg_scan_begin(scan, sc, &test_env, NULL);
	for (size_t off = 0; off < n; off += chunk)
		sg_scan_feed(scan, msg + off, n - off < chunk ? n - off : chunk);
	if (sg_scan_verdict(scan, &v) != SG_ENGINE_DONE) {
		snprintf(reason, len, "waits");
		return (enum sg_verdict_kind)-1;
	}
	snprintf(reason, len, "%s", v.reason);
	return v.kind;
}

static int states_alive;	/* allocated by an engine's begin, not yet released */

/* A second engine: refuses (tempfail) a message from a sender it is told
 * of in the envelope, and counts the lines it was given. */
struct counting_state {
	int lines;
	int from_listed;
};

static int counting_begin(const void *config, struct sg_scan *scan, const struct sg_envelope *env,
		void **session, void **state)
{
	(void)scan;
	(void)session;
	struct counting_state *st = calloc(1, sizeof(*st));

	if (!st)
		return SG_ENGINE_ERROR;
	states_alive++;
	st->from_listed = strcmp(env->mail_from, (const char *)config) == 0;
	*state = st;
	return SG_ENGINE_DONE;
}

static void counting_release(void *state, const void *config)
{
	(void)config;
	states_alive--;
	free(state);
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

static int counting_verdict(void *state, const void *config, struct sg_scan *scan,
			    struct sg_verdict *v)
{
	struct counting_state *st = state;

	(void)config;
	(void)scan;
	v->kind = st->from_listed ? SG_TEMPFAIL : SG_ACCEPT;
	if (st->from_listed)
		snprintf(v->reason, sizeof(v->reason), "sender listed after %d lines", st->lines);
	return SG_ENGINE_DONE;
}

static const struct sg_engine counting_engine = {
	.name = "counting",
	.begin = counting_begin,
	.line = counting_line,
	.verdict = counting_verdict,
	.release = counting_release,
};

/*
 * An engine that waits, as one behind a socket does: its verdict call arms
 * a timer in the host's loop and answers SG_ENGINE_WAIT; the timer gives
 * the verdict its config names ("accept", "reject", "never", "fail").
 */
struct waiting_state {
	struct sg_timer answer;
	struct sg_scan *scan;
	const char *says;
};

static void waiting_answers(struct sg_timer *t)
{
	struct waiting_state *st = t->ctx;
	struct sg_verdict v = { .kind = SG_ACCEPT };

	if (!strcmp(st->says, "reject")) {
		v.kind = SG_REJECT;
		snprintf(v.reason, sizeof(v.reason), "the waiting engine says spam");
	}
	sg_scan_engine_done(st->scan, &v);
}

static int waiting_begin(const void *config, struct sg_scan *scan, const struct sg_envelope *env,
		void **session, void **state)
{
	(void)scan;
	(void)session;
	struct waiting_state *st = calloc(1, sizeof(*st));

	(void)env;
	if (!st)
		return SG_ENGINE_ERROR;
	states_alive++;
	st->says = config;
	sg_timer_init(&st->answer, waiting_answers, st);
	*state = st;
	return SG_ENGINE_DONE;
}

static int waiting_line(void *state, const void *config, const char *line, size_t len,
			int in_body)
{
	(void)state;
	(void)config;
	(void)line;
	(void)len;
	(void)in_body;
	return 0;
}

static int waiting_verdict(void *state, const void *config, struct sg_scan *scan,
			   struct sg_verdict *v)
{
	struct waiting_state *st = state;

	(void)config;
	(void)v;
	if (!strcmp(st->says, "fail"))
		return SG_ENGINE_ERROR;
	st->scan = scan;
	if (strcmp(st->says, "never"))
		sg_loop_timer_in(scan->host.loop, &st->answer, 5000000);	/* 5 ms */
	return SG_ENGINE_WAIT;
}

static void waiting_release(void *state, const void *config)
{
	struct waiting_state *st = state;

	(void)config;
	if (st->scan)
		sg_loop_timer_cancel(st->scan->host.loop, &st->answer);
	states_alive--;
	free(st);
}

static const struct sg_engine waiting_engine = {
	.name = "waiting",
	.begin = waiting_begin,
	.line = waiting_line,
	.verdict = waiting_verdict,
	.release = waiting_release,
};

static int woken;

static void wake(void *owner)
{
	(void)owner;
	woken++;
}

/* Scans msg with sc, the host's loop run until the verdict or 200 ms. */
static int scan_waiting(const struct sg_scanner *sc, struct sg_loop *loop, const char *msg,
			struct sg_scan *scan, struct sg_verdict *v)
{
	struct sg_scan_host host = { .loop = loop, .wake = wake, .owner = scan };
	uint64_t start = sg_now_ns();
	int step;

	woken = 0;
	sg_scan_begin(scan, sc, &test_env, &host);
	sg_scan_feed(scan, msg, strlen(msg));
	while ((step = sg_scan_verdict(scan, v)) == SG_ENGINE_WAIT &&
	       sg_now_ns() - start < 200000000ULL)
		sg_loop_run_once(loop, 10000000);
	return step;
}

static void test_waiting(const struct sg_content_config *content, struct sg_scan *scan)
{
	static const char clean[] = "Subject: hi\r\n\r\nhello\r\n";
	static const char spam[] = "Subject: hi\r\n\r\nbuy-cheap-pills-7\r\n";
	struct sg_loop *loop = sg_loop_new();
	struct sg_scanner accepts = { .failure_action = SG_TEMPFAIL };
	struct sg_scanner rejects = { .failure_action = SG_TEMPFAIL };
	struct sg_scanner never = { .failure_action = SG_TEMPFAIL };
	struct sg_scanner fails = { .failure_action = SG_ACCEPT };
	struct sg_verdict v;

	sg_scanner_add(&accepts, &sg_content_engine, content);
	sg_scanner_add(&accepts, &waiting_engine, "accept");
	sg_scanner_add(&rejects, &waiting_engine, "reject");
	sg_scanner_add(&rejects, &counting_engine, "a@example.org");
	sg_scanner_add(&never, &waiting_engine, "never");
	sg_scanner_add(&fails, &waiting_engine, "fail");

	ASSERT_EQ(scan_waiting(&accepts, loop, clean, scan, &v), SG_ENGINE_DONE,
		  "wait: a waiting engine's verdict comes through the loop");
	ASSERT_EQ(v.kind, SG_ACCEPT, "wait: it accepts");
	ASSERT_EQ(woken, 1, "wait: the host was woken once");
	ASSERT_EQ(states_alive, 0, "wait: its state released after the verdict");

	ASSERT_EQ(scan_waiting(&accepts, loop, spam, scan, &v), SG_ENGINE_DONE,
		  "wait: the content rules refuse before the waiting engine is asked");
	ASSERT_EQ(v.kind, SG_REJECT, "wait: refused by the content rules");
	ASSERT_EQ(woken, 0, "wait: nothing waited for");
	ASSERT_EQ(states_alive, 0, "wait: the unasked engine released too");

	ASSERT_EQ(scan_waiting(&rejects, loop, clean, scan, &v), SG_ENGINE_DONE,
		  "wait: a waiting engine that refuses");
	ASSERT_EQ(v.kind, SG_REJECT, "wait: its refusal is the verdict");
	ASSERT_STREQ(v.reason, "the waiting engine says spam", "wait: with its reason");
	ASSERT_EQ(states_alive, 0, "wait: the engine behind it released, never asked");

	ASSERT_EQ(scan_waiting(&never, loop, clean, scan, &v), SG_ENGINE_WAIT,
		  "wait: an engine that never answers leaves the scan waiting");
	ASSERT_EQ(states_alive, 1, "wait: its state held while it waits");
	sg_scan_end(scan);
	ASSERT_EQ(states_alive, 0, "wait: released when the owner gives up (the deadline)");
	sg_scan_end(scan);
	ASSERT_EQ(states_alive, 0, "wait: a second end releases nothing twice");
	sg_scan_failure(scan, &v, "the scan took longer than 30s");
	ASSERT_EQ(v.kind, SG_TEMPFAIL, "wait: the failure action is the scanner's");

	ASSERT_EQ(scan_waiting(&fails, loop, spam, scan, &v), SG_ENGINE_DONE,
		  "fail: an engine that fails gives a verdict at once");
	ASSERT_EQ(v.kind, SG_ACCEPT, "fail: the failure action (here accept)");
	ASSERT_STREQ(v.reason, "accepted: the waiting engine failed", "fail: naming the engine");
	ASSERT_EQ(states_alive, 0, "fail: its state released");
	sg_loop_free(loop);
}

/* An engine that reads data: keeps what it is given (to compare with the
 * message unstuffed), holds the body after its first bytes, counts its
 * messages in its session slot. */
struct data_state {
	char got[512];
	size_t len;
	int calls;
};

struct data_session {
	int messages;
};

static int data_sessions_alive, data_wakes;

static int data_begin(const void *config, struct sg_scan *scan, const struct sg_envelope *env,
		      void **session, void **state)
{
	struct data_session *ds = *session;

	(void)config;
	(void)scan;
	(void)env;
	if (!ds) {
		ds = calloc(1, sizeof(*ds));
		if (!ds)
			return SG_ENGINE_ERROR;
		data_sessions_alive++;
		*session = ds;
	}
	ds->messages++;
	*state = calloc(1, sizeof(struct data_state));
	return *state ? SG_ENGINE_DONE : SG_ENGINE_ERROR;
}

static int data_data(void *state, const void *config, const char *data, size_t n)
{
	struct data_state *st = state;

	(void)config;
	st->calls++;
	if (st->len + n < sizeof(st->got)) {
		memcpy(st->got + st->len, data, n);
		st->len += n;
	}
	return 0;
}

static int data_verdict(void *state, const void *config, struct sg_scan *scan,
			struct sg_verdict *v)
{
	(void)state;
	(void)config;
	(void)scan;
	v->kind = SG_ACCEPT;
	return SG_ENGINE_DONE;
}

static void data_release(void *state, const void *config)
{
	(void)config;
	free(state);
}

static void data_session_end(void *session, const void *config)
{
	(void)config;
	free(session);
	data_sessions_alive--;
}

static const struct sg_engine data_engine = {
	.name = "data", .begin = data_begin, .data = data_data, .verdict = data_verdict,
	.release = data_release, .session_end = data_session_end,
};

static void count_wake(void *owner)
{
	(void)owner;
	data_wakes++;
}

static void test_data(struct sg_scan *scan)
{
	static const char stuffed[] = "Subject: x\r\n\r\n..one\r\n.\r\n...\r\nmid.dle\r\n..";
	static const char unstuffed[] = "Subject: x\r\n\r\n.one\r\n\r\n..\r\nmid.dle\r\n.";
	struct sg_scanner sc = { .failure_action = SG_TEMPFAIL };
	void *sessions[SG_MAX_ENGINES] = { 0 };
	struct sg_scan_host host = { .wake = count_wake, .sessions = sessions };
	struct sg_verdict v;
	int all_same = 1, few_calls = 1;

	sg_scanner_add(&sc, &data_engine, NULL);
	for (size_t chunk = 1; chunk < sizeof(stuffed); chunk++) {
		struct data_state *st;

		sg_scan_begin(scan, &sc, &test_env, &host);
		st = scan->state[0];
		for (size_t off = 0; off < sizeof(stuffed) - 1; off += chunk)
			sg_scan_feed(scan, stuffed + off,
				     sizeof(stuffed) - 1 - off < chunk ? sizeof(stuffed) - 1 - off : chunk);
		if (st->len != sizeof(unstuffed) - 1 || memcmp(st->got, unstuffed, st->len))
			all_same = 0;
		if (chunk == sizeof(stuffed) - 1 && st->calls > 6)
			few_calls = 0;	/* one run between stuffed dots */
		sg_scan_verdict(scan, &v);
	}
	ASSERT_TRUE(all_same, "data: every byte, dot-stuffing undone, in any chunks");
	ASSERT_TRUE(few_calls, "data: whole runs between stuffed dots, not a call a line");
	ASSERT_EQ(((struct data_session *)sessions[0])->messages, (int)sizeof(stuffed) - 1,
		  "data: one session slot kept across the session's messages");

	sg_scan_begin(scan, &sc, &test_env, &host);
	ASSERT_EQ(sg_scan_held(scan), 0, "hold: not held at the start");
	sg_scan_hold(scan, scan->state[0], 1);
	ASSERT_EQ(sg_scan_held(scan), 1, "hold: held by its engine");
	sg_scan_hold(scan, (void *)&sc, 0);
	ASSERT_EQ(sg_scan_held(scan), 1, "hold: not let go by a stranger");
	data_wakes = 0;
	sg_scan_hold(scan, scan->state[0], 0);
	ASSERT_EQ(sg_scan_held(scan) * 10 + data_wakes, 1, "hold: let go, the host woken once");
	sg_scan_hold(scan, scan->state[0], 1);
	sg_scan_end(scan);
	ASSERT_EQ(sg_scan_held(scan), 0, "hold: a released engine holds nothing");
	sg_scan_session_end(&sc, sessions);
	ASSERT_EQ(data_sessions_alive, 0, "session: its slot let go at its end");
	ASSERT_TRUE(sessions[0] == NULL, "session: the slot emptied");

	sg_scan_begin(scan, &sc, &test_env, NULL);
	sg_scan_verdict(scan, &v);
	ASSERT_EQ(data_sessions_alive, 0, "session: without a host's slots, let go with the message");
}

int main(void)
{
	static const char clean[] = "Message-ID: <m1@example.org>\r\nSubject: hello\r\n\r\n"
				    "nothing to see\r\nhere\r\n";
	static const char spam[] = "Subject: offer\r\n\r\nfirst\r\nbuy-cheap-pills-42 now\r\n";
	static const char bad_header[] = "X-Campaign: FORBIDDEN\r\n\r\nbody\r\n";
	struct sg_rules *rules = load_rules("# rules\ncampaign header /^X-Campaign:.*FORBIDDEN/i\n"
					    "drug-offer body /buy-cheap-pills-[0-9]+/i\n");
	struct sg_content_config content = { .rules = rules };
	struct sg_scanner sc = { .failure_action = SG_TEMPFAIL };
	struct sg_scan *scan = calloc(1, sizeof(*scan));
	char reason[200];

	if (!rules || !scan)
		return 1;
	ASSERT_EQ(sg_rules_count(rules), 2, "rules: two rules");
	ASSERT_EQ(sg_scanner_add(&sc, &sg_content_engine, &content), 0,
		  "scanner: content engine added");

	for (size_t chunk = 1; chunk <= sizeof(clean); chunk += 7) {
		ASSERT_EQ(scan_all(&sc, S(clean), chunk, reason, sizeof(reason), scan), SG_ACCEPT,
			  "scan: a clean message, in any chunks, is accepted");
		ASSERT_STREQ(scan->message_id, "<m1@example.org>", "scan: Message-ID noted");
		ASSERT_EQ(scan->bytes, sizeof(clean) - 1, "scan: every byte counted");
	}
	for (size_t chunk = 1; chunk <= sizeof(spam); chunk += 5) {
		ASSERT_EQ(scan_all(&sc, S(spam), chunk, reason, sizeof(reason), scan), SG_REJECT,
			  "scan: a body rule refuses, in any chunks");
		ASSERT_STREQ(reason, "matches the content rule drug-offer",
			     "scan: the rule, by its name, is the reason");
		ASSERT_TRUE(!strstr(reason, "pills"), "scan: never its pattern");
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

	/* a second engine, behind the content rules */
	ASSERT_EQ(sg_scanner_add(&sc, &counting_engine, "a@example.org"), 0,
		  "scanner: a second engine added");
	ASSERT_EQ(scan_all(&sc, S(clean), 3, reason, sizeof(reason), scan), SG_TEMPFAIL,
		  "engines: the second one's verdict when the first accepts");
	ASSERT_STREQ(reason, "sender listed after 3 lines",
		     "engines: told the envelope; given lines up to its decision only");
	ASSERT_EQ(scan_all(&sc, S(spam), 3, reason, sizeof(reason), scan), SG_REJECT,
		  "engines: the first one not to accept gives the verdict");
	ASSERT_CONTAINS(reason, "matches the content rule", "engines: and its reason");
	ASSERT_EQ(states_alive, 0, "engines: every state released after each verdict");
	for (int i = 2; i < SG_MAX_ENGINES; i++)
		ASSERT_EQ(sg_scanner_add(&sc, &counting_engine, "x"), 0, "scanner: engines up to the most");
	ASSERT_EQ(sg_scanner_add(&sc, &counting_engine, "x"), -1, "scanner: one more is refused");

	test_waiting(&content, scan);
	test_data(scan);
	free(scan);
	sg_rules_free(rules);
	return test_exit_status();
}
