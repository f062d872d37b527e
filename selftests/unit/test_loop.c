/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_loop.c - the event loop: descriptors with their callbacks and
 * contexts, interest changed and withdrawn, timers in deadline order,
 * cancelled, re-armed from their own callback, and a heap that stays
 * ordered under random arming and cancelling. */
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "loop.h"
#include "parse.h"
#include "test.h"

#define MS 1000000ULL

struct hits {
	int calls;
	uint32_t events;
	void *ctx;
};

static void on_fd(struct sg_watch *w, uint32_t events)
{
	struct hits *h = w->ctx;
	char buf[16];

	h->calls++;
	h->events = events;
	h->ctx = w->ctx;
	if (events & EPOLLIN)
		(void)!read(w->fd, buf, sizeof(buf));
}

static void test_watch(void)
{
	struct sg_loop *loop = sg_loop_new();
	struct sg_watch w;
	struct hits h = { 0 };
	int p[2];

	if (!ASSERT_TRUE(loop != NULL, "watch: a loop") || !ASSERT_EQ(pipe(p), 0, "watch: a pipe"))
		return;
	sg_watch_init(&w, p[0], on_fd, &h);
	ASSERT_EQ(sg_loop_watch(loop, &w, EPOLLIN), 0, "watch: registered");
	ASSERT_EQ(sg_loop_run_once(loop, 5 * MS), 0, "watch: nothing to read, no call");
	ASSERT_EQ(write(p[1], "x", 1), 1, "watch: a byte written");
	ASSERT_EQ(sg_loop_run_once(loop, 1000 * MS), 1, "watch: one callback");
	ASSERT_EQ(h.calls, 1, "watch: called once");
	ASSERT_TRUE(h.events & EPOLLIN, "watch: told it is readable");
	ASSERT_TRUE(h.ctx == &h, "watch: with its context");
	ASSERT_EQ(sg_loop_watch(loop, &w, 0), 0, "watch: no interest");
	ASSERT_EQ(write(p[1], "x", 1), 1, "watch: another byte");
	ASSERT_EQ(sg_loop_run_once(loop, 5 * MS), 0, "watch: no interest, no call");
	ASSERT_EQ(sg_loop_watch(loop, &w, EPOLLIN), 0, "watch: interest again");
	ASSERT_EQ(sg_loop_run_once(loop, 1000 * MS), 1, "watch: the waiting byte is heard");
	sg_loop_unwatch(loop, &w);
	ASSERT_EQ(write(p[1], "x", 1), 1, "watch: a third byte");
	ASSERT_EQ(sg_loop_run_once(loop, 5 * MS), 0, "watch: unwatched, no call");
	ASSERT_EQ(sg_loop_watch(loop, &w, EPOLLIN), 0, "watch: back after unwatch");
	ASSERT_EQ(sg_loop_run_once(loop, 1000 * MS), 1, "watch: heard again");
	close(p[1]);
	ASSERT_EQ(sg_loop_run_once(loop, 1000 * MS), 1, "watch: the writer's close is heard");
	ASSERT_TRUE(h.events & EPOLLHUP, "watch: as a hang-up");
	close(p[0]);
	sg_watch_closed(&w);
	ASSERT_EQ(w.registered, 0, "watch: a closed descriptor is forgotten");
	sg_loop_free(loop);
}

struct order {
	int seen[8];
	int n;
};

struct tagged {
	struct sg_timer t;
	struct order *o;
	int tag;
	int rearm;		/* times left to arm itself again */
	struct sg_loop *loop;
};

static void on_timer(struct sg_timer *t)
{
	struct tagged *x = t->ctx;

	if (x->o->n < 8)
		x->o->seen[x->o->n++] = x->tag;
	if (x->rearm > 0) {
		x->rearm--;
		sg_loop_timer_in(x->loop, t, 0);
	}
}

static void test_timers(void)
{
	struct sg_loop *loop = sg_loop_new();
	struct order o = { 0 };
	struct tagged a = { .o = &o, .tag = 1, .loop = loop };
	struct tagged b = { .o = &o, .tag = 2, .loop = loop };
	struct tagged c = { .o = &o, .tag = 3, .loop = loop };
	uint64_t start = sg_now_ns();

	sg_timer_init(&a.t, on_timer, &a);
	sg_timer_init(&b.t, on_timer, &b);
	sg_timer_init(&c.t, on_timer, &c);
	sg_loop_timer_in(loop, &a.t, 30 * MS);
	sg_loop_timer_in(loop, &b.t, 10 * MS);
	sg_loop_timer_in(loop, &c.t, 20 * MS);
	ASSERT_TRUE(sg_timer_armed(&a.t), "timer: armed");
	while (o.n < 3 && sg_now_ns() - start < 2000 * MS)
		sg_loop_run_once(loop, UINT64_MAX);
	ASSERT_EQ(o.n, 3, "timer: all three fired");
	ASSERT_EQ(o.seen[0] * 100 + o.seen[1] * 10 + o.seen[2], 231, "timer: in deadline order");
	ASSERT_TRUE(sg_now_ns() - start >= 30 * MS, "timer: not before its deadline");
	ASSERT_TRUE(!sg_timer_armed(&a.t), "timer: disarmed once fired");

	o.n = 0;
	sg_loop_timer_in(loop, &a.t, 5 * MS);
	sg_loop_timer_in(loop, &b.t, 10 * MS);
	sg_loop_timer_cancel(loop, &a.t);
	sg_loop_timer_in(loop, &b.t, 1 * MS);	/* re-armed earlier */
	start = sg_now_ns();
	while (sg_now_ns() - start < 30 * MS)
		sg_loop_run_once(loop, 5 * MS);
	ASSERT_EQ(o.n, 1, "timer: a cancelled one never fires");
	ASSERT_EQ(o.seen[0], 2, "timer: the re-armed one fires once");

	o.n = 0;
	c.rearm = 2;
	sg_loop_timer_in(loop, &c.t, 0);
	ASSERT_EQ(sg_loop_run_once(loop, 0), 1, "timer: one re-armed from its callback waits a round");
	ASSERT_EQ(sg_loop_run_once(loop, 0), 1, "timer: and fires in the next");
	ASSERT_EQ(sg_loop_run_once(loop, 0), 1, "timer: and the next");
	ASSERT_EQ(sg_loop_run_once(loop, 0), 0, "timer: until it stops arming itself");
	ASSERT_EQ(o.n, 3, "timer: three calls");
	sg_loop_free(loop);
}

#define N_RANDOM 2000

static uint64_t last_fired;
static int out_of_order, fired;

static void on_ordered(struct sg_timer *t)
{
	if (t->deadline_ns < last_fired)
		out_of_order++;
	last_fired = t->deadline_ns;
	fired++;
}

static void test_heap(void)
{
	struct sg_loop *loop = sg_loop_new();
	struct sg_timer *t = calloc(N_RANDOM, sizeof(*t));
	uint64_t base = sg_now_ns();
	int armed = 0;

	srand(7);
	for (int i = 0; i < N_RANDOM; i++) {
		sg_timer_init(&t[i], on_ordered, NULL);
		sg_loop_timer_at(loop, &t[i], base + (uint64_t)(rand() % 1000) * 1000);
	}
	/* cancel a third, re-arm a third elsewhere */
	for (int i = 0; i < N_RANDOM; i += 3)
		sg_loop_timer_cancel(loop, &t[i]);
	for (int i = 1; i < N_RANDOM; i += 3)
		sg_loop_timer_at(loop, &t[i], base + (uint64_t)(rand() % 1000) * 1000);
	for (int i = 0; i < N_RANDOM; i++)
		armed += sg_timer_armed(&t[i]);
	ASSERT_EQ(armed, N_RANDOM - (N_RANDOM + 2) / 3, "heap: the cancelled ones are out");
	while (fired < armed && sg_now_ns() - base < 2000 * MS)
		sg_loop_run_once(loop, 1 * MS);
	ASSERT_EQ(fired, armed, "heap: every armed timer fired");
	ASSERT_EQ(out_of_order, 0, "heap: in deadline order");
	free(t);
	sg_loop_free(loop);
}

int main(void)
{
	test_watch();
	test_timers();
	test_heap();
	return test_exit_status();
}
