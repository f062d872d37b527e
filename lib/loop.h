/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * loop.h - an event loop that code joins: whoever owns a descriptor
 * registers it with a callback and a context (sg_loop_watch), and whoever
 * needs a deadline arms a timer (sg_loop_timer_in); the loop knows no
 * descriptor or timer by name. Postfix's util/events.h is the model.
 *
 * One loop per thread: the daemon's main thread has one (signals,
 * rtnetlink, the state GC), each proxy worker its own (listeners,
 * sessions, the sockets of scanning engines). A loop is touched by its own
 * thread only. Watches and timers live in their owner's memory (no
 * allocation per registration); an owner unregisters them before freeing
 * that memory, and memory freed by a callback must stay readable until
 * sg_loop_run_once returns (a later event of the same batch may name it).
 */
#ifndef SMTPGUARD_LOOP_H
#define SMTPGUARD_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct sg_loop;
struct sg_watch;
struct sg_timer;

/* events: the epoll events that fired (EPOLLIN, EPOLLOUT, EPOLLERR...). */
typedef void (*sg_watch_fn)(struct sg_watch *watch, uint32_t events);
typedef void (*sg_timer_fn)(struct sg_timer *timer);

struct sg_watch {
	int fd;
	sg_watch_fn fn;
	void *ctx;
	uint32_t events;	/* what it is registered for */
	int registered;		/* in the epoll set */
};

struct sg_timer {
	sg_timer_fn fn;
	void *ctx;
	uint64_t deadline_ns;	/* CLOCK_MONOTONIC (sg_now_ns) */
	size_t slot;		/* its place in the loop's heap, plus one; 0: not armed */
};

/* NULL with errno on failure. */
struct sg_loop *sg_loop_new(void);
/* Armed timers and watches are forgotten, not called. */
void sg_loop_free(struct sg_loop *loop);

void sg_watch_init(struct sg_watch *watch, int fd, sg_watch_fn fn, void *ctx);
/* Registers the watch for events, or changes what it is registered for
 * (no system call when that is unchanged); 0 registers it with no interest
 * (errors and hang-ups are still reported). -1 with errno. */
int sg_loop_watch(struct sg_loop *loop, struct sg_watch *watch, uint32_t events);
/* Out of the loop (before its descriptor closes, or to stop hearing a
 * peer that hung up); sg_loop_watch brings it back. */
void sg_loop_unwatch(struct sg_loop *loop, struct sg_watch *watch);
/* Its descriptor was closed by its owner (which takes it out of the epoll
 * set): the loop forgets it without a system call. */
void sg_watch_closed(struct sg_watch *watch);

void sg_timer_init(struct sg_timer *timer, sg_timer_fn fn, void *ctx);
/* (Re)arms the timer to fire once, delay_ns from now, or at deadline_ns.
 * -1 (ENOMEM) when the loop could not grow its heap. */
int sg_loop_timer_in(struct sg_loop *loop, struct sg_timer *timer, uint64_t delay_ns);
int sg_loop_timer_at(struct sg_loop *loop, struct sg_timer *timer, uint64_t deadline_ns);
void sg_loop_timer_cancel(struct sg_loop *loop, struct sg_timer *timer);
static inline int sg_timer_armed(const struct sg_timer *timer)
{
	return timer->slot != 0;
}

/*
 * Waits for the registered descriptors or the next timer, but at most
 * max_wait_ns (UINT64_MAX: until something happens), then calls the
 * callbacks of what fired: descriptors first, then the timers that are
 * due. Returns how many callbacks ran, or -1 with errno (EINTR is not an
 * error: 0).
 */
int sg_loop_run_once(struct sg_loop *loop, uint64_t max_wait_ns);

#endif
