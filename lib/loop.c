/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* loop.c - epoll for descriptors, a binary min-heap for timers (see loop.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "loop.h"
#include "parse.h"

#define SG_LOOP_BATCH 64	/* epoll events taken a wake-up */

struct sg_loop {
	int epfd;
	struct sg_timer **heap;	/* heap[0] fires first */
	size_t n, cap;
};

struct sg_loop *sg_loop_new(void)
{
	struct sg_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int e = errno;

		free(loop);
		errno = e;
		return NULL;
	}
	return loop;
}

void sg_loop_free(struct sg_loop *loop)
{
	if (!loop)
		return;
	for (size_t i = 0; i < loop->n; i++)
		loop->heap[i]->slot = 0;
	free(loop->heap);
	close(loop->epfd);
	free(loop);
}

void sg_watch_init(struct sg_watch *watch, int fd, sg_watch_fn fn, void *ctx)
{
	*watch = (struct sg_watch){ .fd = fd, .fn = fn, .ctx = ctx };
}

int sg_loop_watch(struct sg_loop *loop, struct sg_watch *watch, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = watch };

	if (watch->registered && watch->events == events)
		return 0;
	if (epoll_ctl(loop->epfd, watch->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, watch->fd,
		      &ev))
		return -1;
	watch->registered = 1;
	watch->events = events;
	return 0;
}

void sg_loop_unwatch(struct sg_loop *loop, struct sg_watch *watch)
{
	if (!watch->registered)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
	watch->registered = 0;
	watch->events = 0;
}

void sg_watch_closed(struct sg_watch *watch)
{
	watch->registered = 0;
	watch->events = 0;
	watch->fd = -1;
}

void sg_timer_init(struct sg_timer *timer, sg_timer_fn fn, void *ctx)
{
	*timer = (struct sg_timer){ .fn = fn, .ctx = ctx };
}

static void heap_set(struct sg_loop *loop, size_t i, struct sg_timer *t)
{
	loop->heap[i] = t;
	t->slot = i + 1;
}

static void heap_up(struct sg_loop *loop, size_t i)
{
	struct sg_timer *t = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (loop->heap[parent]->deadline_ns <= t->deadline_ns)
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct sg_loop *loop, size_t i)
{
	struct sg_timer *t = loop->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= loop->n)
			break;
		if (child + 1 < loop->n &&
		    loop->heap[child + 1]->deadline_ns < loop->heap[child]->deadline_ns)
			child++;
		if (t->deadline_ns <= loop->heap[child]->deadline_ns)
			break;
		heap_set(loop, i, loop->heap[child]);
		i = child;
	}
	heap_set(loop, i, t);
}

void sg_loop_timer_cancel(struct sg_loop *loop, struct sg_timer *timer)
{
	size_t i;
	struct sg_timer *last;

	if (!timer->slot)
		return;
	i = timer->slot - 1;
	timer->slot = 0;
	last = loop->heap[--loop->n];
	if (i == loop->n)
		return;
	heap_set(loop, i, last);
	heap_down(loop, i);
	heap_up(loop, last->slot - 1);
}

int sg_loop_timer_at(struct sg_loop *loop, struct sg_timer *timer, uint64_t deadline_ns)
{
	sg_loop_timer_cancel(loop, timer);
	if (loop->n == loop->cap) {
		size_t cap = loop->cap ? 2 * loop->cap : 64;
		struct sg_timer **heap = realloc(loop->heap, cap * sizeof(*heap));

		if (!heap) {
			errno = ENOMEM;
			return -1;
		}
		loop->heap = heap;
		loop->cap = cap;
	}
	timer->deadline_ns = deadline_ns;
	heap_set(loop, loop->n++, timer);
	heap_up(loop, loop->n - 1);
	return 0;
}

int sg_loop_timer_in(struct sg_loop *loop, struct sg_timer *timer, uint64_t delay_ns)
{
	return sg_loop_timer_at(loop, timer, sg_now_ns() + delay_ns);
}

/* epoll_wait's timeout: until the first timer (rounded up to the next
 * millisecond, so that it is due when the wait ends) or max_wait_ns. */
static int wait_ms(const struct sg_loop *loop, uint64_t max_wait_ns)
{
	uint64_t wait = max_wait_ns;

	if (loop->n) {
		uint64_t now = sg_now_ns(), first = loop->heap[0]->deadline_ns;

		if (first <= now)
			return 0;
		if (first - now < wait)
			wait = first - now;
	}
	if (wait == UINT64_MAX)
		return -1;
	wait = (wait + 999999) / 1000000;
	return wait > 3600000 ? 3600000 : (int)wait;
}

int sg_loop_run_once(struct sg_loop *loop, uint64_t max_wait_ns)
{
	struct epoll_event events[SG_LOOP_BATCH];
	int n = epoll_wait(loop->epfd, events, SG_LOOP_BATCH, wait_ms(loop, max_wait_ns));
	int calls = 0;
	uint64_t now;

	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++) {
		struct sg_watch *watch = events[i].data.ptr;

		watch->fn(watch, events[i].events);
		calls++;
	}
	/* the timers due now; one armed again by its callback waits for the
	 * next round, so a zero delay cannot spin here */
	now = sg_now_ns();
	for (size_t due = loop->n; due && loop->n && loop->heap[0]->deadline_ns <= now; due--) {
		struct sg_timer *t = loop->heap[0];

		sg_loop_timer_cancel(loop, t);
		t->fn(t);
		calls++;
	}
	return calls;
}
