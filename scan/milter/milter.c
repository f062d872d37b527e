/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * milter.c - the milter client's connection: one a session per milter,
 * non-blocking in the session's event loop; option negotiation, the
 * lockstep of command and reply, timeouts, and what a failure means for
 * the message (see milter.h). What goes to the milter for a message, and
 * what its replies mean, is milter_message.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include "log.h"
#include "milter_internal.h"
#include "parse.h"
#include "pmetrics.h"
#include "pstats.h"

#define DECODER_SMALL	4096
/* a 'b' reply carries a body chunk: at most SG_MILTER_CHUNK_SIZE bytes */
#define DECODER_LARGE	(SG_MILTER_CHUNK_SIZE + 64)

static const char *const fault_names[SG_MILTER_FAULT__COUNT] = {
	[SG_MILTER_FAULT_CONNECT] = "connect",
	[SG_MILTER_FAULT_TIMEOUT] = "timeout",
	[SG_MILTER_FAULT_CLOSED] = "closed",
	[SG_MILTER_FAULT_PROTOCOL] = "protocol",
	[SG_MILTER_FAULT_NEGOTIATION] = "negotiation",
};

const char *sg_milter_fault_name(enum sg_milter_fault fault)
{
	return (unsigned)fault < SG_MILTER_FAULT__COUNT ? fault_names[fault] : "?";
}

static struct {
	char spec[112];
	struct sg_milter_stats stats;
} stats_table[SG_MILTER_STATS_MAX + 1];
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;

struct sg_milter_stats *sg_milter_stats_for(const char *spec)
{
	struct sg_milter_stats *found = &stats_table[SG_MILTER_STATS_MAX].stats;

	pthread_mutex_lock(&stats_lock);
	for (int i = 0; i < SG_MILTER_STATS_MAX; i++) {
		if (!stats_table[i].spec[0])
			snprintf(stats_table[i].spec, sizeof(stats_table[i].spec), "%s", spec);
		if (strcmp(stats_table[i].spec, spec) == 0) {
			found = &stats_table[i].stats;
			break;
		}
	}
	pthread_mutex_unlock(&stats_lock);
	return found;
}

void sg_milter_stats_each(void (*fn)(const char *spec, const struct sg_milter_stats *stats,
				     void *ctx), void *ctx)
{
	pthread_mutex_lock(&stats_lock);
	for (int i = 0; i < SG_MILTER_STATS_MAX && stats_table[i].spec[0]; i++)
		fn(stats_table[i].spec, &stats_table[i].stats, ctx);
	pthread_mutex_unlock(&stats_lock);
}

void milter_count(const struct sg_milter_config *cfg, uint64_t *counter)
{
	(void)cfg;
	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

int sg_milter_config_init(struct sg_milter_config *cfg, const char *spec,
			  uint64_t connect_timeout_ns, uint64_t command_timeout_ns,
			  uint64_t content_timeout_ns, enum sg_verdict_kind default_action,
			  struct sg_milter_stats *stats, char *err, size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->metric_slot = -1;
	if (sg_parse_milter_address(spec, &cfg->addr, &cfg->addr_len, err, errlen))
		return -1;
	snprintf(cfg->spec, sizeof(cfg->spec), "%s", spec);
	cfg->connect_timeout_ns = connect_timeout_ns;
	cfg->command_timeout_ns = command_timeout_ns;
	cfg->content_timeout_ns = content_timeout_ns;
	cfg->default_action = default_action;
	cfg->stats = stats;
	if (gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) || !cfg->hostname[0])
		snprintf(cfg->hostname, sizeof(cfg->hostname), "localhost");
	return 0;
}

static void conn_timeout(struct sg_timer *timer);
static void conn_ready(struct sg_watch *watch, uint32_t events);

/* Waits for what the connection waits on, at most ns. */
static void arm(struct milter_conn *c, uint64_t ns)
{
	sg_loop_timer_in(c->loop, &c->timer, ns);
}

/* What epoll should tell: always the milter's replies (and its hang-up);
 * its socket's room while output waits. */
static void watch_update(struct milter_conn *c)
{
	uint32_t ev = EPOLLIN | EPOLLRDHUP;

	if (c->state == CONN_CONNECTING || c->out_sent < c->out.len)
		ev |= EPOLLOUT;
	if (sg_loop_watch(c->loop, &c->watch, ev) < 0)
		conn_fail(c, SG_MILTER_FAULT_CLOSED, "cannot watch its socket: %s", strerror(errno));
}

void conn_fail(struct milter_conn *c, enum sg_milter_fault fault, const char *fmt, ...)
{
	char why[160];
	va_list ap;

	if (c->state == CONN_BROKEN)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	c->state = CONN_BROKEN;
	sg_loop_timer_cancel(c->loop, &c->timer);
	if (c->fd >= 0) {
		sg_loop_unwatch(c->loop, &c->watch);
		close(c->fd);
		sg_watch_closed(&c->watch);
		c->fd = -1;
	}
	milter_count(c->cfg, &c->cfg->stats->faults[fault]);
	sg_pstat_add(SG_PSTAT_MILTER_FAULT_CONNECT + (enum sg_pstat)fault, 1);
	sg_pmetric_engine_health(c->cfg->metric_slot, SG_HEALTH_DOWN);
	snprintf(c->error, sizeof(c->error), "%s", why);
	sg_warn("milter %s: %s (%s fault); milter_default_action applies", c->cfg->spec, why,
		sg_milter_fault_name(fault));
	if (c->msg)
		message_failed(c->msg, why);
}

/* Writes what is queued; 0, or -1 when the connection failed. */
static int flush(struct milter_conn *c)
{
	while (c->out_sent < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_sent, c->out.len - c->out_sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			conn_fail(c, SG_MILTER_FAULT_CLOSED, "sending failed: %s",
				  n < 0 ? strerror(errno) : "closed");
			return -1;
		}
		c->out_sent += (size_t)n;
	}
	if (c->out_sent == c->out.len)
		c->out_sent = c->out.len = 0;
	watch_update(c);
	return c->state == CONN_BROKEN ? -1 : 0;
}

int conn_send(struct milter_conn *c, enum sg_milter_event ev, uint64_t timeout_ns)
{
	if (c->state == CONN_BROKEN)
		return -1;
	if (ev != SG_MILTER_EV_COUNT) {
		c->awaiting = ev;
		c->awaiting_seq = c->messages;
		c->awaited_since_ns = sg_now_ns();
		arm(c, timeout_ns);
	}
	return flush(c);
}

/* The milter's answer to our option negotiation: what it wants sent, and
 * the macros it names, kept for the connection. */
static void negotiated(struct milter_conn *c, const struct sg_milter_reply *r)
{
	struct sg_milter_optneg offer;
	char err[SG_MILTER_ERROR_LEN];

	sg_milter_mta_offer(&offer);
	if (r->cmd != SG_MILTER_SMFIC_OPTNEG) {
		conn_fail(c, SG_MILTER_FAULT_PROTOCOL, "answered the option negotiation with "
			  "'%s' (0x%02x)", sg_milter_reply_name(r->cmd) ?: "?", (unsigned char)r->cmd);
		return;
	}
	if (sg_milter_check_optneg(&offer, &r->optneg, err, sizeof(err))) {
		conn_fail(c, SG_MILTER_FAULT_NEGOTIATION, "%s", err);
		return;
	}
	c->version = r->optneg.version;
	c->protocol = r->optneg.protocol;
	c->actions = r->optneg.actions;
	sg_loop_timer_cancel(c->loop, &c->timer);
	c->state = CONN_READY;
	c->awaiting = SG_MILTER_EV_COUNT;
}

/* After the option negotiation, a milter that may replace the body gets
 * the storage for its chunks (no packet is half read then). */
static int storage_for(struct milter_conn *c)
{
	char *big;

	if (!(c->actions & SG_MILTER_SMFIF_CHGBODY) || c->storage_size >= DECODER_LARGE)
		return 0;
	big = realloc(c->storage, DECODER_LARGE);
	if (!big)
		return -1;
	c->storage = big;
	c->storage_size = DECODER_LARGE;
	sg_milter_decoder_init(&c->dec, c->storage, c->storage_size);
	return 0;
}

static void read_replies(struct milter_conn *c)
{
	char buf[8192];

	while (c->state != CONN_BROKEN) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		size_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			conn_fail(c, SG_MILTER_FAULT_CLOSED, "%s%s",
				  n < 0 ? "the connection failed: " : "closed the connection",
				  n < 0 ? strerror(errno) :
				  sg_milter_decoder_pending(&c->dec) ? " in the middle of a reply" : "");
			return;
		}
		while (off < (size_t)n && c->state != CONN_BROKEN) {
			struct sg_milter_reply r;
			size_t used = 0;
			int rc = sg_milter_decode(&c->dec, buf + off, (size_t)n - off, &used, &r);

			off += used;
			if (rc == SG_MILTER_ERROR) {
				conn_fail(c, SG_MILTER_FAULT_PROTOCOL, "%s",
					  sg_milter_decoder_error(&c->dec));
				return;
			}
			if (rc == SG_MILTER_NEED_MORE)
				break;
			if (c->state == CONN_NEGOTIATING) {
				negotiated(c, &r);
				if (c->state == CONN_READY && storage_for(c) < 0)
					conn_fail(c, SG_MILTER_FAULT_NEGOTIATION, "out of memory");
				if (c->state == CONN_READY && off < (size_t)n)
					conn_fail(c, SG_MILTER_FAULT_PROTOCOL, "sent %zu bytes after its "
						  "option negotiation, unasked", (size_t)n - off);
				if (c->state == CONN_READY && c->msg)
					message_pump(c->msg);
				continue;
			}
			message_reply(c, &r);
		}
	}
}

static void conn_ready(struct sg_watch *watch, uint32_t events)
{
	struct milter_conn *c = watch->ctx;

	if (c->state == CONN_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_fail(c, SG_MILTER_FAULT_CONNECT, "cannot connect: %s", strerror(err));
			return;
		}
		c->state = CONN_NEGOTIATING;
		milter_count(c->cfg, &c->cfg->stats->connections);
		flush(c);	/* the option negotiation, queued at the start */
		return;
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		read_replies(c);
	if (c->state != CONN_BROKEN && (events & EPOLLOUT))
		flush(c);
}

/* A wait, for a log line: "300ms", "30s". */
static void format_wait(uint64_t ns, char *buf, size_t len)
{
	if (ns < 10000000000ULL && ns % 1000000000ULL)
		snprintf(buf, len, "%llums", (unsigned long long)(ns / 1000000ULL));
	else
		snprintf(buf, len, "%llus", (unsigned long long)(ns / 1000000000ULL));
}

static void conn_timeout(struct sg_timer *timer)
{
	struct milter_conn *c = timer->ctx;
	char waited[32];

	if (c->state == CONN_CONNECTING || c->state == CONN_NEGOTIATING) {
		format_wait(c->cfg->connect_timeout_ns, waited, sizeof(waited));
		conn_fail(c, c->state == CONN_CONNECTING ? SG_MILTER_FAULT_CONNECT :
			  SG_MILTER_FAULT_TIMEOUT, "%s within %s",
			  c->state == CONN_CONNECTING ? "no connection" :
			  "no answer to the option negotiation", waited);
		return;
	}
	format_wait(sg_now_ns() - c->awaited_since_ns, waited, sizeof(waited));
	conn_fail(c, SG_MILTER_FAULT_TIMEOUT, "no reply to %s within %s",
		  milter_event_name(c->awaiting), waited);
}

struct milter_conn *conn_open(const struct sg_milter_config *cfg, struct sg_loop *loop)
{
	struct milter_conn *c = calloc(1, sizeof(*c));
	struct sg_milter_optneg offer;

	if (!c)
		return NULL;
	c->cfg = cfg;
	c->loop = loop;
	c->awaiting = SG_MILTER_EV_COUNT;
	c->out.growable = 1;
	c->storage = malloc(DECODER_SMALL);
	c->storage_size = DECODER_SMALL;
	sg_watch_init(&c->watch, -1, conn_ready, c);
	sg_timer_init(&c->timer, conn_timeout, c);
	if (!c->storage) {
		free(c);
		return NULL;
	}
	sg_milter_decoder_init(&c->dec, c->storage, c->storage_size);
	c->fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->watch.fd = c->fd;
	c->state = CONN_CONNECTING;
	if (c->fd < 0) {
		conn_fail(c, SG_MILTER_FAULT_CONNECT, "cannot open a socket: %s", strerror(errno));
		return c;
	}
	sg_milter_mta_offer(&offer);
	sg_milter_put_optneg(&c->out, offer.version, offer.actions, offer.protocol);
	if (connect(c->fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) < 0 &&
	    errno != EINPROGRESS && errno != EAGAIN) {
		conn_fail(c, SG_MILTER_FAULT_CONNECT, "cannot connect: %s", strerror(errno));
		return c;
	}
	/* connected or not, epoll says when it can write: the negotiation
	 * then goes, and its answer is awaited within the connect timeout */
	arm(c, cfg->connect_timeout_ns);
	watch_update(c);
	return c;
}

void conn_close(struct milter_conn *c)
{
	if (!c)
		return;
	if (c->fd >= 0) {
		/* a polite goodbye when the milter is between commands */
		if (c->state == CONN_READY && c->out.len == 0 &&
		    sg_milter_put_quit(&c->out) == 0)
			(void)!send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		sg_loop_unwatch(c->loop, &c->watch);
		close(c->fd);
		sg_watch_closed(&c->watch);
	}
	sg_loop_timer_cancel(c->loop, &c->timer);
	free(c->out.data);
	free(c->storage);
	free(c);
}
