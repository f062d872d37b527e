/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * shared_conn.c - the connection to the shared store: hiredis's async API
 * driven by the daemon's loop (its descriptor watched, a deadline on every
 * reply), AUTH and SCRIPT LOAD first, a second connection subscribed to
 * sg:changed (another host's change: a round at once), and an outage
 * handled once: one
 * warning when Redis goes, one line when it is back, redis_errors and
 * redis_outages counted, the state in the metrics, connects retried after a
 * backoff that doubles from 1 s to 30 s (see shared.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include "log.h"
#include "parse.h"
#include "pstats.h"
#include "shared_internal.h"
#include "shared_script.h"

static void connect_now(struct sg_shared *s);
static void map_metrics(struct sg_shared *s);

void shared_set_state(struct sg_shared *s, int state)
{
	s->state = state;
	if (s->pm)
		__atomic_store_n(&s->pm->redis_state, (__u64)state, __ATOMIC_RELAXED);
}

/* hiredis's event hooks: what it wants to hear of, on our loop */
static void want(struct shared_link *l, uint32_t on, uint32_t off)
{
	l->want = (l->want | on) & ~off;
	if (sg_loop_watch(l->s->loop, &l->watch, l->want))
		sg_warn("redis %s: watching its socket failed: %s", l->s->where, strerror(errno));
}

static void ev_add_read(void *p) { want(p, EPOLLIN, 0); }
static void ev_del_read(void *p) { want(p, 0, EPOLLIN); }
static void ev_add_write(void *p) { want(p, EPOLLOUT, 0); }
static void ev_del_write(void *p) { want(p, 0, EPOLLOUT); }

/* hiredis frees the context (after a disconnect, or redisAsyncFree): its
 * descriptor is still open here */
static void ev_cleanup(void *p)
{
	struct shared_link *l = p;

	sg_loop_unwatch(l->s->loop, &l->watch);
	l->want = 0;
	l->ac = NULL;
}

static void on_io(struct sg_watch *watch, uint32_t events)
{
	struct shared_link *l = watch->ctx;

	if (l->ac && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (l->want & EPOLLIN))
		redisAsyncHandleRead(l->ac);
	if (l->ac && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (l->want & EPOLLOUT))
		redisAsyncHandleWrite(l->ac);
}

/* A context of the link, on the loop; NULL with why. */
static redisAsyncContext *link_connect(struct sg_shared *s, struct shared_link *l, char *why,
				       size_t whylen)
{
	redisAsyncContext *ac;

	if (s->addr.kind == SG_REDIS_UNIX)
		ac = redisAsyncConnectUnix(s->addr.path);
	else
		ac = redisAsyncConnect(s->addr.host, s->addr.port);
	if (!ac || ac->err) {
		snprintf(why, whylen, "connecting failed: %s", ac ? ac->errstr : "no memory");
		if (ac)
			redisAsyncFree(ac);
		return NULL;
	}
	l->s = s;
	l->ac = ac;
	/* an upgrade's exec opens its own */
	fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
	ac->data = s;
	ac->ev.data = l;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	sg_watch_init(&l->watch, ac->c.fd, on_io, l);
	l->want = 0;
	/* a non-blocking connect: hiredis writes what is queued once it completes */
	want(l, EPOLLOUT, 0);
	return ac;
}

static void link_free(struct sg_shared *s, struct shared_link *l)
{
	if (!l->ac)
		return;
	s->tearing = 1;
	redisAsyncFree(l->ac);
	s->tearing = 0;
	l->ac = NULL;
}

static void arm_retry(struct sg_shared *s)
{
	sg_loop_timer_in(s->loop, &s->retry, s->backoff_ns);
	s->backoff_ns = s->backoff_ns * 2 > SG_SHARED_BACKOFF_MAX_NS ? SG_SHARED_BACKOFF_MAX_NS
								   : s->backoff_ns * 2;
}

/* Redis went (or never came): one warning an outage, every failure counted. */
static void outage(struct sg_shared *s, const char *why)
{
	sg_pstat_add(SG_PSTAT_REDIS_ERRORS, 1);
	s->in_flight = 0;
	s->script_loaded = 0;
	sg_loop_timer_cancel(s->loop, &s->deadline);
	if (!s->down_since_ns) {
		s->down_since_ns = sg_now_ns();
		sg_pstat_add(SG_PSTAT_REDIS_OUTAGES, 1);
		sg_warn("redis %s: %s; enforcement goes on with this host's own state, the "
			"connection is retried (every %llus at most) and the counts are sent "
			"when it is back", s->where, why,
			(unsigned long long)(SG_SHARED_BACKOFF_MAX_NS / 1000000000ULL));
	}
	shared_set_state(s, SG_REDIS_DOWN);
}

/* Drops the connection (its pending callbacks run with no reply, and are
 * told apart by tearing) and retries after the backoff. */
static void drop(struct sg_shared *s, const char *why)
{
	outage(s, why);
	link_free(s, &s->main);
	link_free(s, &s->sub);
	if (!sg_timer_armed(&s->retry))
		arm_retry(s);
}

void shared_conn_failed(struct sg_shared *s, const char *why, int drop_it)
{
	if (drop_it)
		drop(s, why);
	else
		outage(s, why);
}

static void on_deadline(struct sg_timer *timer)
{
	struct sg_shared *s = timer->ctx;
	char why[96];

	snprintf(why, sizeof(why), "no reply within redis_timeout (%llums)",
		 (unsigned long long)(s->cfg.redis_timeout_ns / 1000000ULL));
	drop(s, why);
}

void shared_conn_expect(struct sg_shared *s, int waiting)
{
	if (waiting)
		sg_loop_timer_in(s->loop, &s->deadline, s->cfg.redis_timeout_ns);
	else
		sg_loop_timer_cancel(s->loop, &s->deadline);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct sg_shared *s = ac->data;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this */
		outage(s, ac->errstr[0] ? ac->errstr : "the connection failed");
		if (!sg_timer_armed(&s->retry))
			arm_retry(s);
	}
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct sg_shared *s = ac->data;

	(void)status;
	if (s->tearing)
		return;
	outage(s, ac->errstr[0] ? ac->errstr : "the connection closed");
	if (!sg_timer_armed(&s->retry))
		arm_retry(s);
}

static void on_auth(redisAsyncContext *ac, void *r, void *priv)
{
	struct sg_shared *s = priv;
	redisReply *reply = r;
	char why[256];

	(void)ac;
	if (s->tearing || !reply)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "AUTH refused (%.120s): check redis_password_file "
			 "against Redis's requirepass", reply->str);
		drop(s, why);
	}
}

static void on_script(redisAsyncContext *ac, void *r, void *priv)
{
	struct sg_shared *s = priv;
	redisReply *reply = r;
	char why[256];

	(void)ac;
	if (s->tearing || !reply || !s->main.ac)
		return;
	shared_conn_expect(s, 0);
	if (reply->type != REDIS_REPLY_STRING) {
		snprintf(why, sizeof(why), "SCRIPT LOAD failed (%.120s)",
			 reply->type == REDIS_REPLY_ERROR ? reply->str : "not a digest");
		drop(s, why);
		return;
	}
	snprintf(s->sha, sizeof(s->sha), "%s", reply->str);
	s->script_loaded = 1;
	s->backoff_ns = SG_SHARED_BACKOFF_MIN_NS;
	if (s->down_since_ns)
		sg_info("redis %s is back after %llus: the counts kept meanwhile and every local "
			"penalty go to it now", s->where,
			(unsigned long long)((sg_now_ns() - s->down_since_ns) / 1000000000ULL));
	else
		sg_info("redis %s: connected; senders' counts, penalties and ladder steps are "
			"shared every %llums", s->where,
			(unsigned long long)(s->cfg.redis_sync_interval_ns / 1000000ULL));
	s->down_since_ns = 0;
	shared_set_state(s, SG_REDIS_UP);
	if (!s->sub.ac)
		shared_conn_subscribe(s);
	shared_sync_up(s);
}

/* (Re)loads the script: at connect, and when Redis says NOSCRIPT (a
 * SCRIPT FLUSH, or another Redis behind the same address). */
void shared_conn_load_script(struct sg_shared *s)
{
	const char *argv[] = { "SCRIPT", "LOAD", sg_shared_script };
	size_t lens[] = { 6, 4, strlen(sg_shared_script) };

	s->script_loaded = 0;
	if (redisAsyncCommandArgv(s->main.ac, on_script, s, 3, argv, lens) != REDIS_OK)
		drop(s, "queueing SCRIPT LOAD failed");
	else
		shared_conn_expect(s, 1);
}

static void connect_now(struct sg_shared *s)
{
	redisAsyncContext *ac;
	char why[SG_REDIS_HOST_LEN + 64];

	link_free(s, &s->sub);
	ac = link_connect(s, &s->main, why, sizeof(why));
	if (!ac) {
		outage(s, why);
		arm_retry(s);
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (s->state != SG_REDIS_DOWN)
		shared_set_state(s, SG_REDIS_CONNECTING);
	if (s->password[0]) {
		const char *argv[] = { "AUTH", s->password };
		size_t lens[] = { 4, strlen(s->password) };

		if (redisAsyncCommandArgv(ac, on_auth, s, 2, argv, lens) != REDIS_OK) {
			drop(s, "queueing AUTH failed");
			return;
		}
	}
	shared_conn_load_script(s);
}

/* The subscription: a message on sg:changed is another host's change. */
static void on_notify(redisAsyncContext *ac, void *r, void *priv)
{
	struct sg_shared *s = priv;
	redisReply *reply = r;

	(void)ac;
	if (s->tearing || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
	    reply->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(reply->element[0]->str, "message") == 0)
		shared_sync_soon(s);
}

static void on_sub_gone(const redisAsyncContext *ac, int status)
{
	(void)ac;
	(void)status;
	/* the rounds go on; the next tick subscribes again */
}

void shared_conn_subscribe(struct sg_shared *s)
{
	redisAsyncContext *ac;
	char why[SG_REDIS_HOST_LEN + 64];

	ac = link_connect(s, &s->sub, why, sizeof(why));
	if (!ac)
		return;
	redisAsyncSetConnectCallback(ac, on_sub_gone);
	redisAsyncSetDisconnectCallback(ac, on_sub_gone);
	if (s->password[0]) {
		const char *argv[] = { "AUTH", s->password };
		size_t lens[] = { 4, strlen(s->password) };

		redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, lens);
	}
	if (redisAsyncCommand(ac, on_notify, s, "SUBSCRIBE sg:changed") != REDIS_OK)
		link_free(s, &s->sub);
}

static void on_retry(struct sg_timer *timer)
{
	connect_now(timer->ctx);
}

static int read_password(struct sg_shared *s)
{
	FILE *f;
	size_t n;

	if (!s->cfg.redis_password_file[0])
		return 0;
	f = fopen(s->cfg.redis_password_file, "r");
	if (!f) {
		sg_err("redis_password_file %s: %s (the file holds Redis's password on its "
		       "first line)", s->cfg.redis_password_file, strerror(errno));
		return -1;
	}
	if (!fgets(s->password, sizeof(s->password), f))
		s->password[0] = '\0';
	fclose(f);
	n = strcspn(s->password, "\r\n");
	s->password[n] = '\0';
	if (!n) {
		sg_err("redis_password_file %s: its first line is empty (the file holds Redis's "
		       "password on its first line)", s->cfg.redis_password_file);
		return -1;
	}
	return 0;
}

void shared_state_off(const struct sg_maps *maps)
{
	struct sg_shared s = { .maps = maps };

	/* a run before this one may have left its state in the pinned map */
	map_metrics(&s);
	if (s.pm) {
		__atomic_store_n(&s.pm->redis_state, (__u64)SG_REDIS_OFF, __ATOMIC_RELAXED);
		munmap(s.pm, s.pm_len);
	}
}

static void map_metrics(struct sg_shared *s)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (sizeof(struct sg_proxy_metrics) + (size_t)page - 1) & ~((size_t)page - 1);
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, s->maps->proxy_metrics, 0);

	if (mem == MAP_FAILED) {
		sg_warn("redis: proxy_metrics could not be mapped (%s): smtpguard_redis_state "
			"stays 0", strerror(errno));
		return;
	}
	s->pm = mem;
	s->pm_len = len;
}

int shared_conn_start(struct sg_shared *s)
{
	char err[SG_ERR_LEN];

	if (sg_redis_addr_parse(s->cfg.redis, &s->addr, err, sizeof(err))) {
		sg_err("redis: %s", err);
		return -1;
	}
	if (s->addr.kind == SG_REDIS_UNIX)
		snprintf(s->where, sizeof(s->where), "unix:%s", s->addr.path);
	else
		snprintf(s->where, sizeof(s->where), "tcp:%s:%d", s->addr.host, s->addr.port);
	if (read_password(s))
		return -1;
	if (sg_pstats_attach(s->maps->proxy_stats))
		sg_warn("redis: proxy_stats could not be mapped (%s): redis_errors is not counted",
			strerror(errno));
	map_metrics(s);
	sg_timer_init(&s->retry, on_retry, s);
	sg_timer_init(&s->deadline, on_deadline, s);
	s->backoff_ns = SG_SHARED_BACKOFF_MIN_NS;
	shared_set_state(s, SG_REDIS_CONNECTING);
	connect_now(s);
	return 0;
}

void shared_conn_stop(struct sg_shared *s)
{
	sg_loop_timer_cancel(s->loop, &s->retry);
	sg_loop_timer_cancel(s->loop, &s->deadline);
	link_free(s, &s->main);
	link_free(s, &s->sub);
	s->tearing = 1;	/* callbacks still to come from hiredis find nothing to do */
	shared_set_state(s, SG_REDIS_OFF);
	if (s->pm)
		munmap(s->pm, s->pm_len);
	s->pm = NULL;
	memset(s->password, 0, sizeof(s->password));
}
