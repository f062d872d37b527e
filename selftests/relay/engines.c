/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * engines.c - the test scanning engines a dialogue sets up ("engine
 * answer|wait|fail|fail-begin|body-match|slow ..."), in the scanner's
 * interface (scan/scanner.h, struct sg_engine): one that answers at once,
 * from a loop timer, from within its own verdict call or never; one whose
 * verdict or begin fails; one that judges by a body line; one whose every
 * body line costs CPU time (a costly scan). Each counts the
 * states it begins and releases in its run ("engines begun=N released=M",
 * and the end check that every state was released exactly once).
 */
#include <stdlib.h>
#include <string.h>
#include "relay_test.h"

#define STATE_MAGIC		0x5e551011u

/* One message's state of a test engine. */
struct engine_state {
	uint32_t magic;
	const struct engine_cfg *cfg;
	struct sg_timer timer;	/* ENG_WAIT: the answer */
	struct sg_scan *scan;
	struct sg_loop *loop;
	int matched;
};

static void engine_answer(struct sg_timer *t)
{
	struct engine_state *st = t->ctx;

	sg_scan_engine_done(st->scan, &st->cfg->verdict);
}

static int engine_begin(const void *config, struct sg_scan *scan, const struct sg_envelope *env,
		void **session, void **state)
{
	(void)scan;
	(void)session;
	const struct engine_cfg *cfg = config;
	struct engine_state *st;

	(void)env;
	if (cfg->kind == ENG_FAIL_BEGIN)
		return SG_ENGINE_ERROR;
	st = calloc(1, sizeof(*st));
	if (!st)
		return SG_ENGINE_ERROR;
	st->magic = STATE_MAGIC;
	st->cfg = cfg;
	sg_timer_init(&st->timer, engine_answer, st);
	cfg->run->begun++;
	*state = st;
	return SG_ENGINE_DONE;
}

static int engine_line(void *state, const void *config, const char *line, size_t len,
		       int in_body)
{
	const struct engine_cfg *cfg = config;
	struct engine_state *st = state;

	(void)len;
	if (cfg->kind == ENG_SLOW && in_body) {
		uint64_t until = sg_now_ns() + cfg->delay_ns;

		while (sg_now_ns() < until)
			;	/* scanning, as a costly engine does */
	}
	if (cfg->kind != ENG_BODY_MATCH)
		return 0;	/* the others read on, as a content scanner would */
	if (in_body && strstr(line, cfg->match))
		st->matched = 1;
	return st->matched;
}

static int engine_verdict(void *state, const void *config, struct sg_scan *scan,
			  struct sg_verdict *v)
{
	const struct engine_cfg *cfg = config;
	struct engine_state *st = state;

	st->scan = scan;
	st->loop = scan->host.loop;
	switch (cfg->kind) {
	case ENG_ANSWER:
	case ENG_SLOW:
		*v = cfg->verdict;
		return SG_ENGINE_DONE;
	case ENG_BODY_MATCH:
		*v = cfg->verdict;
		if (!st->matched)
			v->kind = SG_ACCEPT;
		return SG_ENGINE_DONE;
	case ENG_WAIT:
		if (!st->loop || sg_loop_timer_in(st->loop, &st->timer, cfg->delay_ns))
			return SG_ENGINE_ERROR;
		return SG_ENGINE_WAIT;
	case ENG_WAIT_INLINE:
		sg_scan_engine_done(scan, &cfg->verdict);
		return SG_ENGINE_WAIT;
	case ENG_WAIT_NEVER:
		return SG_ENGINE_WAIT;
	default:
		return SG_ENGINE_ERROR;
	}
}

static void engine_release(void *state, const void *config)
{
	const struct engine_cfg *cfg = config;
	struct engine_state *st = state;

	if (!st || st->magic != STATE_MAGIC) {
		cfg->run->bad_release++;
		return;
	}
	if (st->loop)
		sg_loop_timer_cancel(st->loop, &st->timer);
	st->magic = 0;
	cfg->run->released++;
	free(st);
}

#define TEST_ENGINE(n) { .name = n, .begin = engine_begin, .line = engine_line, \
			 .verdict = engine_verdict, .release = engine_release }
const struct sg_engine test_engines[ENG__COUNT] = {
	[ENG_ANSWER] = TEST_ENGINE("answer"),
	[ENG_WAIT] = TEST_ENGINE("wait"),
	[ENG_WAIT_INLINE] = TEST_ENGINE("wait-inline"),
	[ENG_WAIT_NEVER] = TEST_ENGINE("wait-never"),
	[ENG_FAIL] = TEST_ENGINE("fail"),
	[ENG_FAIL_BEGIN] = TEST_ENGINE("fail-begin"),
	[ENG_BODY_MATCH] = TEST_ENGINE("body-match"),
	[ENG_SLOW] = TEST_ENGINE("slow"),
};
