/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * worker.c - a proxy worker (see worker.h): one thread running one event
 * loop, in which its listeners, its sessions' sockets, its timers and the
 * stop signal are registered; a 1 s tick ends the sessions past their
 * deadlines.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "log.h"
#include "parse.h"
#include "worker.h"

#define SG_TICK_NS 1000000000ULL

/* The session ends past one of its deadlines (s->end names it); the VM
 * hears which, and tries again later. */
static void timed_out(struct session *s, uint64_t now)
{
	const struct sg_config *cfg = s->cfg;
	char why[120], reply[200];

	if (!strcmp(s->end, "dot_reply_timeout"))
		snprintf(why, sizeof(why), "the MX did not answer the end of data within %llus",
			 (unsigned long long)(SG_DOT_REPLY_TIMEOUT_NS / 1000000000ULL));
	else if (!strcmp(s->end, "session_timeout"))
		snprintf(why, sizeof(why), "the session lasted longer than %llus",
			 (unsigned long long)(cfg->smtp_session_timeout_ns / 1000000000ULL));
	else if (!strcmp(s->end, "data_too_slow"))
		snprintf(why, sizeof(why), "the message arrives slower than %u bytes/s",
			 cfg->smtp_min_data_rate);
	else
		snprintf(why, sizeof(why), "nothing moved for %llus",
			 (unsigned long long)((now - s->last_active_ns) / 1000000000ULL));
	snprintf(reply, sizeof(reply), "421 4.4.2 smtpguard: session timed out (%s); try again "
		 "later\r\n", why);
	sg_info("session %s -> %s: %s: %s", s->vm_name, s->mx_name, s->end, why);
	relay_close(s, reply);
}

void worker_expire(struct worker *w, uint64_t now)
{
	struct session *s = w->sessions, *next;

	for (; s; s = next) {
		const struct sg_config *cfg = s->cfg;

		next = s->next;
		if (s->draining) {
			if (now > s->drain_deadline_ns)
				session_free(w, s);
			continue;
		}
		if (s->connecting) {
			if (now > s->connect_deadline_ns)
				session_tempfail(w, s, "connection timed out");
			continue;
		}
		if (tunnel_watchdog(s, now)) {
			session_free(w, s);
			continue;
		}
		if (relay_in_handshake(s)) {
			if (now <= s->tls_deadline_ns)
				continue;
			if (relay_tls_timeout(s))
				session_free(w, s);
			else
				session_run(w, s, 1, 0);
			continue;
		}
		if (relay_dot_sent_ns(s)) {
			/* RFC 5321's 10 minutes for the MX's reply to a dot, from
			 * the dot, and no other timeout: the VM would send again
			 * a message the MX may have committed */
			if (now - relay_dot_sent_ns(s) <= SG_DOT_REPLY_TIMEOUT_NS)
				continue;
			s->end = "dot_reply_timeout";
		} else if (s->mode == RELAY_VERDICT) {
			continue;	/* the dot is withheld: scan_timeout bounds it */
		} else if (now - s->started_ns > cfg->smtp_session_timeout_ns) {
			s->end = "session_timeout";
		} else if (now - s->last_active_ns > cfg->smtp_idle_timeout_ns) {
			s->end = "idle_timeout";
		} else if (relay_body_too_slow(s, now)) {
			s->end = "data_too_slow";
		} else {
			continue;
		}
		timed_out(s, now);
		session_run(w, s, 1, 0);
	}
}

static void on_tick(struct sg_timer *t)
{
	struct worker *w = t->ctx;

	sg_loop_timer_in(w->loop, &w->tick, SG_TICK_NS);
	worker_expire(w, sg_now_ns());
	if (w->accept_paused)
		listener_pause(w, 1);
}

/* Sockmap tunnels whose end waits for the kernel's backlog: again, soon. */
static void on_recheck(struct sg_timer *t)
{
	struct worker *w = t->ctx;
	struct session *s, *next;

	for (s = w->sessions; s; s = next) {
		next = s->next;
		if (s->tunnel_waiting)
			session_run(w, s, 0, 0);
	}
}

/* SYNs steered before another proxy took the listeners' slots may still
 * complete their handshake here: a round trip, given plenty. Closing the
 * listener sooner would reset them. */
#define DRAIN_ACCEPT_GRACE_NS	1000000000ULL

static void close_listeners(struct worker *w)
{
	for (int f = 0; f < 2; f++) {
		if (w->listen_fd[f] < 0)
			continue;
		listener_ready(&w->listen_watch[f], EPOLLIN);	/* what completed meanwhile */
		close(w->listen_fd[f]);
		sg_watch_closed(&w->listen_watch[f]);
		w->listen_fd[f] = -1;
	}
}

static void on_drain_close(struct sg_timer *t)
{
	struct worker *w = t->ctx;

	close_listeners(w);
	sg_info("worker %d: draining: listeners closed, %s", w->index,
		w->sessions ? "its sessions run on until they end" : "no session left");
}

static void on_stop(struct sg_watch *watch, uint32_t events)
{
	struct worker *w = watch->ctx;
	uint64_t value;

	(void)events;
	if (read(watch->fd, &value, sizeof(value)) < 0 && errno != EAGAIN)
		sg_warn("worker %d: reading its stop signal: %s", w->index, strerror(errno));
	if (__atomic_load_n(&w->drain_requested, __ATOMIC_ACQUIRE) && !w->draining) {
		w->draining = 1;
		sg_loop_timer_in(w->loop, &w->drain_close, DRAIN_ACCEPT_GRACE_NS);
		return;
	}
	w->stopping = 1;
}

/* A draining worker is done when its listeners are closed and its last
 * session ended, or at the deadline (the rest then ends as at a stop). */
static int drained(const struct worker *w)
{
	return w->draining && ((w->listen_fd[0] < 0 && w->listen_fd[1] < 0 && !w->sessions) ||
			       sg_now_ns() >= w->drain_deadline_ns);
}

/* Whether a stop waits for the session: the MX's reply to a dot is owed
 * (a 421 now would have the VM send again a message the MX may have
 * committed), or that reply is still on its way to the VM. */
static int owed_at_stop(const struct session *s)
{
	return !s->draining && (relay_awaiting_dot_reply(s) || s->vm_out.len);
}

void worker_stop_sessions(struct worker *w)
{
	struct sg_generation *g = generation_get(w->proxy);
	uint64_t deadline = sg_now_ns() + g->cfg.shutdown_timeout_ns, now;
	unsigned int waited = 0;

	generation_put(g);
	for (;;) {
		struct session *s, *next;

		for (s = w->sessions; s; s = next) {
			next = s->next;
			if (owed_at_stop(s))
				continue;
			session_goodbye(s);
			session_free(w, s);
		}
		session_reap(w);
		now = sg_now_ns();
		if (!w->sessions || now >= deadline)
			break;
		if (!waited++)
			sg_info("worker %d: waiting up to %llu ms for the MX's replies to messages "
				"already sent", w->index,
				(unsigned long long)((deadline - now + 999999) / 1000000ULL));
		if (sg_loop_run_once(w->loop, deadline - now < 100000000ULL ? deadline - now :
				     100000000ULL) < 0)
			break;
	}
	if (w->sessions)
		sg_warn("worker %d: stopping with replies still owed (shutdown_timeout): their "
			"messages are logged with the reply unknown", w->index);
	while (w->sessions) {
		session_goodbye(w->sessions);
		session_free(w, w->sessions);
	}
	session_reap(w);
}

void *worker_main(void *arg)
{
	struct worker *w = arg;

	while (!w->stopping) {
		if (sg_loop_run_once(w->loop, UINT64_MAX) < 0) {
			sg_err("worker %d: its event loop failed: %s", w->index, strerror(errno));
			break;
		}
		session_reap(w);
		if (drained(w)) {
			if (w->sessions)
				sg_warn("worker %d: drain_timeout reached: its remaining sessions "
					"end as at a stop", w->index);
			if (sg_timer_armed(&w->drain_close))
				sg_loop_timer_cancel(w->loop, &w->drain_close);
			close_listeners(w);
			w->stopping = 1;
		}
	}
	worker_stop_sessions(w);
	session_free_spares(w);
	return NULL;
}

int worker_init(struct sg_proxy *proxy, struct worker *w, int index)
{
	w->proxy = proxy;
	w->index = index;
	w->listen_fd[0] = w->listen_fd[1] = -1;
	w->loop = sg_loop_new();
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!w->loop || w->stop_fd < 0) {
		sg_err("worker %d: creating its event loop failed: %s", index, strerror(errno));
		return -1;
	}
	sg_watch_init(&w->stop_watch, w->stop_fd, on_stop, w);
	sg_timer_init(&w->tick, on_tick, w);
	sg_timer_init(&w->recheck, on_recheck, w);
	sg_timer_init(&w->drain_close, on_drain_close, w);
	if (sg_loop_watch(w->loop, &w->stop_watch, EPOLLIN) ||
	    sg_loop_timer_in(w->loop, &w->tick, SG_TICK_NS)) {
		sg_err("worker %d: registering its stop signal and tick failed: %s", index,
		       strerror(errno));
		return -1;
	}
	for (int f = 0; f < 2; f++) {
		__u32 slot = (__u32)(2 * index + f);
		__u64 value;	/* an 8-byte value: fd as u64 */

		w->listen_fd[f] = listener_open(f ? AF_INET6 : AF_INET);
		/* a host booted without IPv6 proxies IPv4 alone */
		if (w->listen_fd[f] < 0 && f && errno == EAFNOSUPPORT) {
			if (index == 0)
				sg_warn("proxy: IPv6 is not available on this host: IPv4 "
					"sessions only");
			continue;
		}
		if (w->listen_fd[f] < 0) {
			sg_err("worker %d: a transparent IPv%d listener could not be made: %s "
			       "(IP_TRANSPARENT needs CAP_NET_ADMIN)", index, f ? 6 : 4,
			       strerror(errno));
			return -1;
		}
		sg_watch_init(&w->listen_watch[f], w->listen_fd[f], listener_ready, w);
		if (sg_loop_watch(w->loop, &w->listen_watch[f], EPOLLIN)) {
			sg_err("worker %d: watching its listener failed: %s", index,
			       strerror(errno));
			return -1;
		}
		value = (__u64)w->listen_fd[f];
		if (bpf_map_update_elem(proxy->listeners_map, &slot, &value, BPF_ANY)) {
			sg_err("worker %d: registering its listener in the SOCKMAP failed: %s",
			       index, strerror(errno));
			return -1;
		}
	}
	return 0;
}

void worker_close(struct worker *w)
{
	for (int f = 0; f < 2; f++)
		if (w->listen_fd[f] >= 0)
			close(w->listen_fd[f]);	/* leaves the SOCKMAP by itself */
	if (w->started) {
		uint64_t one = 1;

		if (write(w->stop_fd, &one, sizeof(one)) < 0)
			sg_warn("worker %d: stop signal failed: %s", w->index, strerror(errno));
		pthread_join(w->thread, NULL);
	}
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	sg_loop_free(w->loop);
	w->loop = NULL;
}
