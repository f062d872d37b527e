/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * webhook.c - the response ladder's events to the operator's HTTP(S)
 * endpoints (see webhook.h).
 *
 * Workers copy an event into each URL's queue under one short mutex and
 * poke an eventfd; nothing on their path touches the network, a name
 * server or a log. One sender thread runs every URL's delivery side by
 * side in a poll(2) loop: each URL has its own queue, its own connection
 * (non-blocking, TLS included), its own deadline and its own back-off, so a
 * URL that stalls for its whole timeout, or is dead for an hour, delays no
 * other. A URL's events go out one at a time, in order; a failed one is
 * tried again at the head of its queue after the URL's back-off (which
 * grows with the URL's failures in a row, not the event's), until it has
 * had webhook_max_attempts attempts or is webhook_max_age old. A dead URL
 * thus fills its own queue, and only its own events are dropped.
 *
 * Names are looked up with getaddrinfo_a(3), polled: the sender never
 * waits for a name server either. What a server answers is read into 4 KiB
 * at most, up to its status line, and the connection closed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "log.h"
#include "parse.h"
#include "pmetrics.h"
#include "pstats.h"
#include "tls.h"
#include "webhook.h"

#define SG_WEBHOOK_REPLY_MAX	4096	/* bytes of a reply read for its status line */
#define SG_WEBHOOK_ADDRS	8	/* addresses of a name tried in one attempt */
#define SG_WEBHOOK_DNS_TTL_NS	(60ULL * 1000000000ULL)	/* a name's addresses are reused this long */
#define SG_WEBHOOK_LOG_NS	(60ULL * 1000000000ULL)	/* a URL's warnings, at most this often */
#define SG_WEBHOOK_IDLE_MS	1000	/* the sender looks at its counts this often */
#define SG_WEBHOOK_RESOLVE_MS	10	/* ...and at a lookup under way this often */

/* One event, shared by the queues of every URL that took it. */
struct event {
	uint32_t refs;			/* queues holding it; under the lock */
	uint32_t len;
	uint64_t queued_ns;
	char body[];
};

/* One getaddrinfo_a(3) request. On the heap apart from its URL: glibc's
 * lookup thread writes into it until it is done, which a stop does not wait
 * for (see drop_resolution). */
struct resolution {
	struct gaicb request;
	struct addrinfo hints;
	char name[SG_WEBHOOK_HOST_MAX];
};

enum attempt_state {
	IDLE,			/* no attempt under way */
	RESOLVING,
	CONNECTING,
	HANDSHAKING,		/* https:// */
	SENDING,
	RECEIVING,
};

static const char *const attempt_state_names[] = {
	[IDLE] = "idle",
	[RESOLVING] = "resolving the host name",
	[CONNECTING] = "connecting",
	[HANDSHAKING] = "in the TLS handshake",
	[SENDING] = "sending the request",
	[RECEIVING] = "waiting for the reply",
};

struct endpoint {
	struct sg_webhook_url url;
	char *text;			/* as configured, for the log and the counts */

	/* the queue: a ring, under the lock */
	struct event **ring;
	uint32_t head, count;
	uint64_t bytes;

	/* the sender's own */
	enum attempt_state state;
	int fd;
	SSL *ssl;
	short want;			/* POLLIN or POLLOUT */
	struct sockaddr_storage addr[SG_WEBHOOK_ADDRS];
	socklen_t addr_len[SG_WEBHOOK_ADDRS];
	int addrs, next_addr;
	uint64_t resolved_ns;		/* when addr was filled; UINT64_MAX: an address literal */
	struct resolution *lookup;	/* under way, perhaps from an earlier attempt */
	uint64_t deadline_ns;		/* of the attempt under way */
	uint64_t next_try_ns;		/* the back-off: no attempt before */
	uint32_t attempts;		/* at the event at the head */
	uint32_t failures;		/* attempts in a row that failed, whichever the event */
	char *request;
	size_t request_len, sent;
	char reply[SG_WEBHOOK_REPLY_MAX];
	size_t reply_len;
	char connect_error[96];		/* the last address's, when every one failed */
	uint64_t fail_logged_ns, expiry_logged_ns, drop_logged_ns, recovery_logged_ns;
	uint64_t drops_logged, expiries_logged;

	/* the counts (atomic: the stats read them without the lock) */
	uint64_t queued, delivered, retried, dropped, expired, waiting;
	uint32_t failing;
};

struct sg_webhooks {
	pthread_mutex_t lock;
	pthread_cond_t drained;		/* every queue became empty */
	int wake_fd;			/* an eventfd: events queued, or stop */
	int wake_pending;		/* under the lock: wake_fd was written since the sender looked */
	int stop;			/* under the lock */
	pthread_t sender;
	SSL_CTX *tls;			/* NULL: no https:// URL */
	struct sg_webhook_limits limits;
	char *tls_ca_file;
	uint64_t random;		/* the back-off's jitter; the sender's */
	int n;
	struct endpoint ep[SG_WEBHOOK_MAX_URLS];
};

/* ------------------------------------------------------------------ */
/* URLs */

/* The URL as the error quotes it: its first 200 bytes, those that are not
 * printable ASCII as \xHH, so that a stray line feed cannot forge a log
 * line. */
static void quote_url(char *out, size_t len, const char *text)
{
	size_t o = 0, i;

	for (i = 0; text[i] && i < 200 && o + 5 < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c < 0x20 || c > 0x7e)
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	snprintf(out + o, len - o, "%s", text[i] ? "..." : "");
}

__attribute__((format(printf, 4, 5)))
static int url_error(char *err, size_t errlen, const char *text, const char *fmt, ...)
{
	char quoted[820];
	va_list ap;
	int n;

	quote_url(quoted, sizeof(quoted), text);
	n = snprintf(err, errlen, "webhook_urls: '%s' ", quoted);

	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A DNS name as RFC 1123 writes host names: labels of letters, digits and
 * '-', 1-63 long, not beginning or ending with '-'; a final '.' allowed.
 * at is where the name begins in text, for the error's position. */
static int check_host_name(const char *text, const char *at, size_t len, char *err,
			   size_t errlen)
{
	size_t label = 0;

	if (len > 253)
		return url_error(err, errlen, text, "has a host name longer than 253 characters");
	for (size_t i = 0; i < len; i++) {
		char c = at[i];
		size_t pos = (size_t)(at - text) + i + 1;

		if (c == '.') {
			if (!label)
				return url_error(err, errlen, text, "has an empty label in its "
						 "host name at position %zu", pos);
			if (at[i - 1] == '-')
				return url_error(err, errlen, text, "has a label ending in '-' "
						 "at position %zu", pos - 1);
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-')) {
			if ((unsigned char)c < 0x21 || (unsigned char)c > 0x7e)
				return url_error(err, errlen, text, "has byte 0x%02x at position "
						 "%zu, which cannot be in a host name",
						 (unsigned char)c, pos);
			return url_error(err, errlen, text, "has '%c' at position %zu, which "
					 "cannot be in a host name (letters, digits, '-' and '.')",
					 c, pos);
		}
		if (c == '-' && !label)
			return url_error(err, errlen, text, "has a label beginning with '-' at "
					 "position %zu", pos);
		if (++label > 63)
			return url_error(err, errlen, text, "has a label longer than 63 characters "
					 "in its host name at position %zu", pos);
	}
	if (len && at[len - 1] == '-')
		return url_error(err, errlen, text, "has a label ending in '-' at position %zu",
				 (size_t)(at - text) + len);
	return 0;
}

int sg_webhook_parse_url(const char *text, struct sg_webhook_url *out, char *err,
			 size_t errlen)
{
	const char *authority, *authority_end, *host, *host_end, *after_host, *path;
	size_t len = strlen(text), host_len;
	uint16_t default_port;

	memset(out, 0, sizeof(*out));
	if (len >= SG_WEBHOOK_URL_MAX)
		return url_error(err, errlen, text, "is longer than %d characters",
				 SG_WEBHOOK_URL_MAX - 1);
	if (!strncasecmp(text, "http://", 7)) {
		authority = text + 7;
		default_port = 80;
	} else if (!strncasecmp(text, "https://", 8)) {
		authority = text + 8;
		default_port = 443;
		out->tls = 1;
	} else {
		return url_error(err, errlen, text, "is not an http:// or https:// URL");
	}
	out->port = default_port;
	authority_end = authority + strcspn(authority, "/?#");
	if (memchr(authority, '@', (size_t)(authority_end - authority)))
		return url_error(err, errlen, text, "has a user name or password before its host "
				 "('@'), which is not supported: put a token in the path or "
				 "query instead");
	if (authority == authority_end)
		return url_error(err, errlen, text, "has no host (write %s://HOST[:PORT]/PATH)",
				 out->tls ? "https" : "http");

	if (*authority == '[') {
		host = authority + 1;
		host_end = memchr(host, ']', (size_t)(authority_end - host));
		if (!host_end)
			return url_error(err, errlen, text, "has no ']' closing the IPv6 address "
					 "opened at position %zu", (size_t)(authority - text) + 1);
		host_len = (size_t)(host_end - host);
		if (memchr(host, '%', host_len))
			return url_error(err, errlen, text, "has an IPv6 zone ('%%'), which is not "
					 "supported: use a global or unique local address");
		if (host_len >= sizeof(out->host))
			return url_error(err, errlen, text, "has an IPv6 address that is too long");
		memcpy(out->host, host, host_len);
		{
			struct in6_addr a6;

			if (inet_pton(AF_INET6, out->host, &a6) != 1)
				return url_error(err, errlen, text, "has '[%s]', which is not an IPv6 "
						 "address", out->host);
		}
		out->family = AF_INET6;
		after_host = host_end + 1;
	} else {
		int digits_and_dots = 1;

		host = authority;
		host_end = memchr(host, ':', (size_t)(authority_end - host));
		if (!host_end)
			host_end = authority_end;
		host_len = (size_t)(host_end - host);
		if (!host_len)
			return url_error(err, errlen, text, "has no host before the ':' at position "
					 "%zu", (size_t)(host_end - text) + 1);
		if (check_host_name(text, host, host_len, err, errlen))
			return -1;
		memcpy(out->host, host, host_len);
		for (size_t i = 0; i < host_len; i++)
			if (host[i] != '.' && (host[i] < '0' || host[i] > '9'))
				digits_and_dots = 0;
		if (digits_and_dots) {
			/* no name is all digits: this was meant as an address, and a
			 * short form ("10.1") would be read differently by each resolver */
			struct in_addr a4;

			if (inet_pton(AF_INET, out->host, &a4) != 1)
				return url_error(err, errlen, text, "has '%s', which is not an IPv4 "
						 "address (four numbers 0-255, no leading zeros)",
						 out->host);
			out->family = AF_INET;
		} else {
			out->family = AF_UNSPEC;
		}
		after_host = host_end;
	}

	if (after_host < authority_end) {
		const char *port = after_host + 1;
		size_t port_len = (size_t)(authority_end - port);
		unsigned long value = 0;

		if (*after_host != ':')
			return url_error(err, errlen, text, "has '%c' at position %zu after its host, "
					 "where a ':' and a port or the path may follow", *after_host,
					 (size_t)(after_host - text) + 1);
		for (size_t i = 0; i < port_len; i++) {
			if (port[i] < '0' || port[i] > '9' || i >= 5) {
				value = 0;
				break;
			}
			value = value * 10 + (unsigned long)(port[i] - '0');
		}
		if (!port_len || value < 1 || value > 65535)
			return url_error(err, errlen, text, "has the port '%.*s' at position %zu, "
					 "which is not a number from 1 to 65535", (int)port_len, port,
					 (size_t)(port - text) + 1);
		out->port = (uint16_t)value;
	}

	/* the path goes into the request line as written: nothing that would
	 * end or split it (a space, a control character) may be in it */
	path = authority_end;
	for (const char *p = path; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '#')
			return url_error(err, errlen, text, "has a fragment ('#' at position %zu), "
					 "which is never sent: remove it", (size_t)(p - text) + 1);
		if (c < 0x21 || c > 0x7e)
			return url_error(err, errlen, text, "has byte 0x%02x at position %zu: "
					 "percent-encode it (a space is %%20)", c,
					 (size_t)(p - text) + 1);
	}
	snprintf(out->path, sizeof(out->path), "%s%s", *path == '/' ? "" : "/", path);
	if (out->port == default_port)
		snprintf(out->authority, sizeof(out->authority), out->family == AF_INET6 ?
			 "[%s]" : "%s", out->host);
	else
		snprintf(out->authority, sizeof(out->authority), out->family == AF_INET6 ?
			 "[%s]:%u" : "%s:%u", out->host, out->port);
	return 0;
}

/* ------------------------------------------------------------------ */
/* the queues (the lock held by the callers marked so) */

static int all_empty_locked(const struct sg_webhooks *wh)
{
	for (int i = 0; i < wh->n; i++)
		if (wh->ep[i].count)
			return 0;
	return 1;
}

static struct event *head_event(struct sg_webhooks *wh, struct endpoint *ep)
{
	struct event *ev;

	pthread_mutex_lock(&wh->lock);
	ev = ep->count ? ep->ring[ep->head] : NULL;
	pthread_mutex_unlock(&wh->lock);
	return ev;	/* only the sender removes it, so it stays valid */
}

/* The head event leaves ep's queue (delivered or given up). */
static void pop_head(struct sg_webhooks *wh, struct endpoint *ep)
{
	struct event *ev;
	int last;

	pthread_mutex_lock(&wh->lock);
	ev = ep->ring[ep->head];
	ep->ring[ep->head] = NULL;
	ep->head = (ep->head + 1) % wh->limits.queue_events;
	ep->count--;
	sg_pmetric_webhook_queued(-1);
	ep->bytes -= ev->len;
	__atomic_sub_fetch(&ep->waiting, 1, __ATOMIC_RELAXED);
	last = --ev->refs == 0;
	if (all_empty_locked(wh))
		pthread_cond_broadcast(&wh->drained);
	pthread_mutex_unlock(&wh->lock);
	if (last)
		free(ev);
	ep->attempts = 0;
}

static void wake_sender(struct sg_webhooks *wh)
{
	uint64_t one = 1;
	ssize_t n = write(wh->wake_fd, &one, sizeof(one));

	(void)n;	/* non-blocking; EAGAIN: the counter is full, the sender woken already */
}

int sg_webhooks_post(struct sg_webhooks *wh, const char *json, size_t len)
{
	struct event *ev = NULL;
	int dropped = 0, wake = 0, was_empty = 0, unused;

	if (!wh)
		return 0;	/* no webhook_urls: nothing to drop */
	/* the copy is made before the lock, so that others wait on a few
	 * pointer moves only */
	if (len <= wh->limits.queue_bytes && len <= UINT32_MAX)
		ev = malloc(sizeof(*ev) + len);
	if (ev) {
		ev->refs = 0;
		ev->len = (uint32_t)len;
		ev->queued_ns = sg_now_ns();
		memcpy(ev->body, json, len);
	}
	pthread_mutex_lock(&wh->lock);
	for (int i = 0; i < wh->n; i++) {
		struct endpoint *ep = &wh->ep[i];

		if (!ev || ep->count >= wh->limits.queue_events ||
		    ep->bytes + len > wh->limits.queue_bytes) {
			__atomic_add_fetch(&ep->dropped, 1, __ATOMIC_RELAXED);
			sg_pstat_add(SG_PSTAT_WEBHOOK_DROPPED, 1);
			dropped = 1;
			continue;
		}
		was_empty |= !ep->count;
		ep->ring[(ep->head + ep->count) % wh->limits.queue_events] = ev;
		ep->count++;
		sg_pmetric_webhook_queued(1);
		ep->bytes += len;
		ev->refs++;
		__atomic_add_fetch(&ep->queued, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&ep->waiting, 1, __ATOMIC_RELAXED);
	}
	unused = ev && !ev->refs;
	/* the sender needs waking only for a queue that was empty: behind
	 * another event, this one goes when that one is done, or when the
	 * back-off ends, which the sender wakes up for anyway. And once a
	 * round: it clears wake_pending before it looks at the queues */
	if (was_empty && !wh->wake_pending) {
		wh->wake_pending = 1;
		wake = 1;
	}
	pthread_mutex_unlock(&wh->lock);
	if (unused)
		free(ev);
	if (wake)
		wake_sender(wh);
	return dropped ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* one attempt: resolve, connect, TLS, send, read the status line */

static int log_due(uint64_t *last_ns, uint64_t now)
{
	if (*last_ns && now - *last_ns < SG_WEBHOOK_LOG_NS)
		return 0;
	*last_ns = now;
	return 1;
}

static uint64_t next_random(struct sg_webhooks *wh)
{
	/* xorshift64: jitter needs spread, not secrecy */
	wh->random ^= wh->random << 13;
	wh->random ^= wh->random >> 7;
	wh->random ^= wh->random << 17;
	return wh->random;
}

/* The wait after the failures-th failure in a row: backoff doubled each
 * time up to backoff_max, less up to a quarter at random, so that URLs
 * (and hosts) that failed together do not retry in step. */
static uint64_t backoff_after(struct sg_webhooks *wh, uint32_t failures)
{
	uint64_t wait = wh->limits.backoff_ns, max = wh->limits.backoff_max_ns;

	for (uint32_t i = 1; i < failures && wait < max; i++)
		wait = wait > max / 2 ? max : wait * 2;
	if (wait > max)
		wait = max;
	return wait - next_random(wh) % (wait / 4 + 1);
}

static void close_connection(struct endpoint *ep)
{
	if (ep->ssl) {
		/* one try at close_notify; the reply is in, so a refusal is moot */
		SSL_shutdown(ep->ssl);
		SSL_free(ep->ssl);
		ep->ssl = NULL;
		ERR_clear_error();
	}
	if (ep->fd >= 0)
		close(ep->fd);
	ep->fd = -1;
}

static void end_attempt(struct endpoint *ep)
{
	close_connection(ep);
	free(ep->request);
	ep->request = NULL;
	ep->request_len = ep->sent = ep->reply_len = 0;
	ep->state = IDLE;
}

static void delivered(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now, int status)
{
	end_attempt(ep);
	pop_head(wh, ep);
	__atomic_add_fetch(&ep->delivered, 1, __ATOMIC_RELAXED);
	sg_pstat_add(SG_PSTAT_WEBHOOK_DELIVERED, 1);
	sg_pmetric_webhook(SG_HEALTH_UP);
	if (ep->failures && log_due(&ep->recovery_logged_ns, now))
		sg_info("webhook %s: delivering again (HTTP %d) after %u failed attempt(s)",
			ep->text, status, ep->failures);
	ep->failures = 0;
	__atomic_store_n(&ep->failing, 0, __ATOMIC_RELAXED);
	ep->next_try_ns = now;
}

__attribute__((format(printf, 4, 5)))
static void attempt_failed(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now,
			   const char *fmt, ...)
{
	struct event *ev = head_event(wh, ep);
	char why[256];
	va_list ap;
	uint64_t wait;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	end_attempt(ep);
	if (ep->url.family == AF_UNSPEC)
		ep->resolved_ns = 0;	/* the name may point elsewhere now: look it up again */
	ep->attempts++;
	ep->failures++;
	sg_pmetric_webhook(SG_HEALTH_DOWN);
	__atomic_store_n(&ep->failing, ep->failures, __ATOMIC_RELAXED);
	wait = backoff_after(wh, ep->failures);
	ep->next_try_ns = now + wait;
	if (ev && (ep->attempts >= wh->limits.max_attempts ||
		   now - ev->queued_ns >= wh->limits.max_age_ns)) {
		uint32_t attempts = ep->attempts;
		uint64_t expired = __atomic_add_fetch(&ep->expired, 1, __ATOMIC_RELAXED);

		sg_pstat_add(SG_PSTAT_WEBHOOK_EXPIRED, 1);

		pop_head(wh, ep);
		if (log_due(&ep->expiry_logged_ns, now)) {
			sg_warn("webhook %s: gave up on an event after %u attempt(s) (the last: "
				"%s); %llu given up since the last warning", ep->text, attempts,
				why, (unsigned long long)(expired - ep->expiries_logged));
			ep->expiries_logged = expired;
		}
		return;
	}
	if (log_due(&ep->fail_logged_ns, now))
		sg_warn("webhook %s: %s; trying again in %llu ms (attempt %u at this event, %u "
			"failed in a row)", ep->text, why,
			(unsigned long long)(wait / 1000000), ep->attempts, ep->failures);
}

static int address_literal(const struct sg_webhook_url *url, struct sockaddr_storage *ss,
			   socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (url->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(url->port);
		*len = sizeof(*sin);
		return inet_pton(AF_INET, url->host, &sin->sin_addr) == 1 ? 0 : -1;
	}
	if (url->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(url->port);
		*len = sizeof(*sin6);
		return inet_pton(AF_INET6, url->host, &sin6->sin6_addr) == 1 ? 0 : -1;
	}
	return -1;
}

static void connected(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now);

/* Tries ep's addresses from the next one not tried in this attempt. */
static void connect_next(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now)
{
	while (ep->next_addr < ep->addrs) {
		int i = ep->next_addr++;
		int fd = socket(ep->addr[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				0);

		if (fd < 0) {
			snprintf(ep->connect_error, sizeof(ep->connect_error), "%s", strerror(errno));
			continue;
		}
		if (connect(fd, (struct sockaddr *)&ep->addr[i], ep->addr_len[i]) == 0) {
			ep->fd = fd;
			connected(wh, ep, now);
			return;
		}
		if (errno == EINPROGRESS) {
			ep->fd = fd;
			ep->state = CONNECTING;
			ep->want = POLLOUT;
			return;
		}
		snprintf(ep->connect_error, sizeof(ep->connect_error), "%s", strerror(errno));
		close(fd);
	}
	attempt_failed(wh, ep, now, "cannot connect: %s", ep->connect_error);
}

static void connected(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now)
{
	if (!ep->url.tls) {
		ep->state = SENDING;
		ep->want = POLLOUT;
		return;
	}
	ep->ssl = SSL_new(wh->tls);
	if (!ep->ssl || !SSL_set_fd(ep->ssl, ep->fd)) {
		char why[160];

		sg_tls_error(why, sizeof(why), "out of memory");
		attempt_failed(wh, ep, now, "TLS: %s", why);
		return;
	}
	if (ep->url.family == AF_UNSPEC) {
		/* SNI carries names only (RFC 6066); the certificate must hold it */
		SSL_set_tlsext_host_name(ep->ssl, ep->url.host);
		SSL_set1_host(ep->ssl, ep->url.host);
	} else {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ep->ssl), ep->url.host);
	}
	ep->state = HANDSHAKING;
	ep->want = POLLOUT;
}

/* The addresses a finished lookup found, with the URL's port. */
static void take_addresses(struct endpoint *ep, const struct addrinfo *ai, uint64_t now)
{
	ep->addrs = 0;
	for (; ai && ep->addrs < SG_WEBHOOK_ADDRS; ai = ai->ai_next) {
		struct sockaddr_storage *ss = &ep->addr[ep->addrs];

		if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
		    ai->ai_addrlen > sizeof(*ss))
			continue;
		memcpy(ss, ai->ai_addr, ai->ai_addrlen);
		if (ai->ai_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons(ep->url.port);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons(ep->url.port);
		ep->addr_len[ep->addrs++] = ai->ai_addrlen;
	}
	ep->resolved_ns = now;
}

static void drop_resolution(struct resolution *r)
{
	if (r->request.ar_result)
		freeaddrinfo(r->request.ar_result);
	free(r);
}

static void start_lookup(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now)
{
	struct resolution *r = ep->lookup;

	ep->state = RESOLVING;
	if (r)
		return;	/* an earlier attempt's lookup still runs: its answer will do */
	r = calloc(1, sizeof(*r));
	if (!r) {
		attempt_failed(wh, ep, now, "cannot look up %s: out of memory", ep->url.host);
		return;
	}
	snprintf(r->name, sizeof(r->name), "%s", ep->url.host);
	r->hints.ai_family = AF_UNSPEC;
	r->hints.ai_socktype = SOCK_STREAM;
	r->request.ar_name = r->name;
	r->request.ar_request = &r->hints;
	{
		struct gaicb *list[1] = { &r->request };
		int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);

		if (rc) {
			free(r);
			attempt_failed(wh, ep, now, "cannot look up %s: %s", ep->url.host,
				       gai_strerror(rc));
			return;
		}
	}
	ep->lookup = r;
}

static void check_lookup(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now)
{
	struct resolution *r = ep->lookup;
	int rc = gai_error(&r->request);

	if (rc == EAI_INPROGRESS)
		return;
	ep->lookup = NULL;
	if (rc) {
		drop_resolution(r);
		attempt_failed(wh, ep, now, "cannot look up %s: %s", ep->url.host,
			       gai_strerror(rc));
		return;
	}
	take_addresses(ep, r->request.ar_result, now);
	drop_resolution(r);
	if (!ep->addrs) {
		attempt_failed(wh, ep, now, "%s has no IPv4 or IPv6 address", ep->url.host);
		return;
	}
	ep->next_addr = 0;
	snprintf(ep->connect_error, sizeof(ep->connect_error), "no address");
	connect_next(wh, ep, now);
}

static void start_attempt(struct sg_webhooks *wh, struct endpoint *ep, struct event *ev,
			  uint64_t now)
{
	char header[SG_WEBHOOK_URL_MAX + SG_WEBHOOK_HOST_MAX + 256];
	int n;

	if (ep->attempts)
		__atomic_add_fetch(&ep->retried, 1, __ATOMIC_RELAXED);
	ep->deadline_ns = now + wh->limits.timeout_ns;
	/* the event is the body and nothing else: it may carry what tenants sent */
	n = snprintf(header, sizeof(header),
		     "POST %s HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "User-Agent: smtpguard\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %u\r\n"
		     "Connection: close\r\n"
		     "\r\n", ep->url.path, ep->url.authority, ev->len);
	ep->request = n > 0 && (size_t)n < sizeof(header) ? malloc((size_t)n + ev->len) : NULL;
	if (!ep->request) {
		attempt_failed(wh, ep, now, "cannot build the request: out of memory");
		return;
	}
	memcpy(ep->request, header, (size_t)n);
	memcpy(ep->request + n, ev->body, ev->len);
	ep->request_len = (size_t)n + ev->len;
	ep->sent = ep->reply_len = 0;
	ep->next_addr = 0;
	snprintf(ep->connect_error, sizeof(ep->connect_error), "no address");
	if (ep->resolved_ns == UINT64_MAX ||
	    (ep->resolved_ns && ep->addrs && now - ep->resolved_ns < SG_WEBHOOK_DNS_TTL_NS))
		connect_next(wh, ep, now);
	else
		start_lookup(wh, ep, now);
}

/* The status of the final response at the start of the reply: its code,
 * 0 (not all in yet) or -1 (not HTTP). Interim responses (1xx but 101,
 * which would switch protocols) and their headers are skipped. */
static int reply_status(const char *buf, size_t len)
{
	size_t at = 0;

	for (;;) {
		const char *line = buf + at, *lf = memchr(line, '\n', len - at);
		size_t n;
		int code;

		/* what is in must be a status line's beginning: no need to wait
		 * for the line feed of a reply that is not HTTP at all */
		n = lf ? (size_t)(lf - line) : len - at;
		if (memcmp(line, "HTTP/1.", n < 7 ? n : 7) != 0)
			return -1;
		if (n > 7 && (line[7] < '0' || line[7] > '9'))
			return -1;
		if (n > 8 && line[8] != ' ')
			return -1;
		for (size_t i = 9; i < 12 && i < n; i++)
			if (line[i] < '0' || line[i] > '9')
				return -1;
		if (n > 12 && line[12] != ' ' && line[12] != '\r')
			return -1;
		if (!lf)
			return 0;
		if (n < 12)
			return -1;
		code = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
		if (code < 100)
			return -1;
		if (code >= 200 || code == 101)
			return code;
		/* an interim response: its header block ends with an empty line */
		at += n + 1;
		for (;;) {
			const char *next = memchr(buf + at, '\n', len - at);

			if (!next)
				return 0;
			n = (size_t)(next - (buf + at));
			at += n + 1;
			if (n == 0 || (n == 1 && buf[at - 2] == '\r'))
				break;
		}
		if (at >= len)
			return 0;
	}
}

static void tls_failed(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now,
		       const char *doing, int ssl_error)
{
	char why[160];
	long verify = SSL_get_verify_result(ep->ssl);

	if (ep->state == HANDSHAKING && verify != X509_V_OK) {
		attempt_failed(wh, ep, now, "TLS: the server's certificate is not trusted: %s",
			       X509_verify_cert_error_string(verify));
		return;
	}
	if (ssl_error == SSL_ERROR_SYSCALL && !ERR_peek_error())
		snprintf(why, sizeof(why), "%s", errno ? strerror(errno) :
			 "the connection was closed");
	else
		sg_tls_error(why, sizeof(why), "failed");
	attempt_failed(wh, ep, now, "TLS %s: %s", doing, why);
}

static void step_handshake(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now)
{
	int rc, e;

	ERR_clear_error();
	rc = SSL_connect(ep->ssl);
	if (rc == 1) {
		ep->state = SENDING;
		ep->want = POLLOUT;
		return;
	}
	e = SSL_get_error(ep->ssl, rc);
	if (e == SSL_ERROR_WANT_READ)
		ep->want = POLLIN;
	else if (e == SSL_ERROR_WANT_WRITE)
		ep->want = POLLOUT;
	else
		tls_failed(wh, ep, now, "handshake", e);
}

static void step_send(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now)
{
	while (ep->sent < ep->request_len) {
		size_t left = ep->request_len - ep->sent;
		ssize_t n;

		if (ep->ssl) {
			int rc, e;

			ERR_clear_error();
			rc = SSL_write(ep->ssl, ep->request + ep->sent, left > INT32_MAX ?
				       INT32_MAX : (int)left);
			if (rc > 0) {
				ep->sent += (size_t)rc;
				continue;
			}
			e = SSL_get_error(ep->ssl, rc);
			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
				ep->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
				return;
			}
			tls_failed(wh, ep, now, "write", e);
			return;
		}
		n = send(ep->fd, ep->request + ep->sent, left, MSG_NOSIGNAL);
		if (n > 0) {
			ep->sent += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			ep->want = POLLOUT;
			return;
		}
		attempt_failed(wh, ep, now, "sending the request failed: %s",
			       n < 0 ? strerror(errno) : "no progress");
		return;
	}
	ep->state = RECEIVING;
	ep->want = POLLIN;
}

static void step_receive(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now)
{
	for (;;) {
		size_t room = sizeof(ep->reply) - ep->reply_len;
		ssize_t n;
		int status;

		if (!room) {
			attempt_failed(wh, ep, now, "no status line in the reply's first %d bytes",
				       SG_WEBHOOK_REPLY_MAX);
			return;
		}
		if (ep->ssl) {
			int rc, e;

			ERR_clear_error();
			errno = 0;	/* SSL_ERROR_SYSCALL with errno 0: the peer closed */
			rc = SSL_read(ep->ssl, ep->reply + ep->reply_len, (int)room);
			if (rc > 0) {
				n = rc;
			} else {
				e = SSL_get_error(ep->ssl, rc);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
					ep->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
					return;
				}
				if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL &&
								   !ERR_peek_error() && !errno)) {
					n = 0;
				} else {
					tls_failed(wh, ep, now, "read", e);
					return;
				}
			}
		} else {
			n = recv(ep->fd, ep->reply + ep->reply_len, room, 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
				ep->want = POLLIN;
				return;
			}
			if (n < 0) {
				attempt_failed(wh, ep, now, "reading the reply failed: %s",
					       strerror(errno));
				return;
			}
		}
		if (n == 0) {
			attempt_failed(wh, ep, now, "the server closed the connection %s",
				       ep->reply_len ? "in the middle of its status line" :
				       "without a reply");
			return;
		}
		ep->reply_len += (size_t)n;
		status = reply_status(ep->reply, ep->reply_len);
		if (status < 0) {
			attempt_failed(wh, ep, now, "the reply is not HTTP/1.x (no status line)");
			return;
		}
		if (status >= 200 && status <= 299) {
			delivered(wh, ep, now, status);
			return;
		}
		if (status) {
			attempt_failed(wh, ep, now, "HTTP %d", status);
			return;
		}
	}
}

/* The socket of ep's attempt is ready (revents). */
static void on_ready(struct sg_webhooks *wh, struct endpoint *ep, short revents, uint64_t now)
{
	switch (ep->state) {
	case CONNECTING: {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (getsockopt(ep->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (!soerr && (revents & (POLLERR | POLLHUP)))
			soerr = ECONNREFUSED;
		if (soerr) {
			snprintf(ep->connect_error, sizeof(ep->connect_error), "%s",
				 strerror(soerr));
			close(ep->fd);
			ep->fd = -1;
			connect_next(wh, ep, now);
			return;
		}
		connected(wh, ep, now);
		return;
	}
	case HANDSHAKING:
		step_handshake(wh, ep, now);
		return;
	case SENDING:
		step_send(wh, ep, now);
		return;
	case RECEIVING:
		step_receive(wh, ep, now);
		return;
	default:
		return;
	}
}

/* What ep does next without its socket: an attempt that ran out of time
 * fails, a lookup is looked at, events too old are given up, and the next
 * attempt starts when the back-off has passed. */
static void tick(struct sg_webhooks *wh, struct endpoint *ep, uint64_t now)
{
	struct event *ev;

	if (ep->state != IDLE && now >= ep->deadline_ns) {
		attempt_failed(wh, ep, now, "timed out %s after %llu ms",
			       attempt_state_names[ep->state],
			       (unsigned long long)(wh->limits.timeout_ns / 1000000));
		return;
	}
	if (ep->state == RESOLVING)
		check_lookup(wh, ep, now);
	if (ep->state != IDLE)
		return;
	while ((ev = head_event(wh, ep)) && now - ev->queued_ns >= wh->limits.max_age_ns) {
		__atomic_add_fetch(&ep->expired, 1, __ATOMIC_RELAXED);
		sg_pstat_add(SG_PSTAT_WEBHOOK_EXPIRED, 1);
		pop_head(wh, ep);
	}
	if (ev && now >= ep->next_try_ns)
		start_attempt(wh, ep, ev, now);
}

/* Drops are counted on the workers' path, and logged here (a worker never
 * waits on the log): at most once a minute a URL. */
static void log_drops(struct endpoint *ep, const struct sg_webhook_limits *limits, uint64_t now)
{
	uint64_t dropped = __atomic_load_n(&ep->dropped, __ATOMIC_RELAXED);

	if (dropped == ep->drops_logged || !log_due(&ep->drop_logged_ns, now))
		return;
	sg_warn("webhook %s: %llu event(s) dropped since the last warning: its queue (%u "
		"events, %llu bytes) was full", ep->text,
		(unsigned long long)(dropped - ep->drops_logged), limits->queue_events,
		(unsigned long long)limits->queue_bytes);
	ep->drops_logged = dropped;
}

static void *sender_main(void *arg)
{
	struct sg_webhooks *wh = arg;
	sigset_t pipe_signal;

	/* OpenSSL writes to its socket without MSG_NOSIGNAL: a server that
	 * resets the connection is an error here, not the process's end */
	sigemptyset(&pipe_signal);
	sigaddset(&pipe_signal, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_signal, NULL);

	for (;;) {
		struct pollfd pfd[1 + SG_WEBHOOK_MAX_URLS];
		int owner[1 + SG_WEBHOOK_MAX_URLS], nfds = 1, stop;
		uint64_t now, wake_at;
		int timeout_ms;

		pthread_mutex_lock(&wh->lock);
		stop = wh->stop;
		wh->wake_pending = 0;
		pthread_mutex_unlock(&wh->lock);
		if (stop)
			break;
		now = sg_now_ns();
		wake_at = now + SG_WEBHOOK_IDLE_MS * 1000000ULL;
		pfd[0] = (struct pollfd){ .fd = wh->wake_fd, .events = POLLIN };
		for (int i = 0; i < wh->n; i++) {
			struct endpoint *ep = &wh->ep[i];

			tick(wh, ep, now);
			log_drops(ep, &wh->limits, now);
			if (ep->state == IDLE) {
				if (ep->count && ep->next_try_ns < wake_at)
					wake_at = ep->next_try_ns;
				continue;
			}
			if (ep->deadline_ns < wake_at)
				wake_at = ep->deadline_ns;
			if (ep->state == RESOLVING) {
				if (now + SG_WEBHOOK_RESOLVE_MS * 1000000ULL < wake_at)
					wake_at = now + SG_WEBHOOK_RESOLVE_MS * 1000000ULL;
				continue;
			}
			pfd[nfds] = (struct pollfd){ .fd = ep->fd, .events = ep->want };
			owner[nfds++] = i;
		}
		/* rounded up: waking before the time would only spin */
		timeout_ms = wake_at > now ? (int)((wake_at - now + 999999) / 1000000) : 0;
		if (poll(pfd, (nfds_t)nfds, timeout_ms) < 0 && errno != EINTR) {
			sg_err("webhooks: poll failed: %s", strerror(errno));
			usleep(100000);	/* not a spin, whatever failed */
			continue;
		}
		if (pfd[0].revents) {
			uint64_t count;

			if (read(wh->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
				sg_err("webhooks: reading the wake-up counter failed: %s",
				       strerror(errno));
		}
		now = sg_now_ns();
		for (int k = 1; k < nfds; k++)
			if (pfd[k].revents)
				on_ready(wh, &wh->ep[owner[k]], pfd[k].revents, now);
	}
	for (int i = 0; i < wh->n; i++)
		end_attempt(&wh->ep[i]);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* the lifecycle */

static SSL_CTX *tls_client_context(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char why[200];

	if (!ctx) {
		sg_tls_error(why, sizeof(why), "out of memory");
		snprintf(err, errlen, "webhooks: cannot make a TLS context: %s", why);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	if (ca_file && ca_file[0]) {
		if (!SSL_CTX_load_verify_locations(ctx, ca_file, NULL)) {
			sg_tls_error(why, sizeof(why), "no certificate in it");
			snprintf(err, errlen, "webhook_tls_ca_file: cannot load %s: %s", ca_file,
				 why);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (!SSL_CTX_set_default_verify_paths(ctx)) {
		sg_tls_error(why, sizeof(why), "not found");
		snprintf(err, errlen, "webhooks: cannot load the system's CA certificates: %s",
			 why);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void release(struct sg_webhooks *wh)
{
	for (int i = 0; i < wh->n; i++) {
		struct endpoint *ep = &wh->ep[i];

		while (ep->count) {
			struct event *ev = ep->ring[ep->head];

			ep->head = (ep->head + 1) % wh->limits.queue_events;
			ep->count--;
			if (--ev->refs == 0)
				free(ev);
		}
		if (ep->lookup) {
			int rc = gai_cancel(&ep->lookup->request);

			/* a lookup glibc's thread is still inside is left to it,
			 * allocated: freeing it would let that thread write into
			 * freed memory, and waiting for it could take a name
			 * server's whole timeout */
			if (rc != EAI_NOTCANCELED)
				drop_resolution(ep->lookup);
		}
		free(ep->ring);
		free(ep->text);
	}
	if (wh->tls)
		SSL_CTX_free(wh->tls);
	if (wh->wake_fd >= 0)
		close(wh->wake_fd);
	free(wh->tls_ca_file);
	pthread_cond_destroy(&wh->drained);
	pthread_mutex_destroy(&wh->lock);
	free(wh);
}

struct sg_webhooks *sg_webhooks_new(const char *const *urls, int n,
				    const struct sg_webhook_limits *limits, char *err,
				    size_t errlen)
{
	struct sg_webhook_limits lim = limits ? *limits : (struct sg_webhook_limits){ 0 };
	struct sg_webhooks *wh;
	pthread_condattr_t cattr;
	int need_tls = 0;

	if (n < 1) {
		snprintf(err, errlen, "webhook_urls: no URL given");
		return NULL;
	}
	if (n > SG_WEBHOOK_MAX_URLS) {
		snprintf(err, errlen, "webhook_urls: %d URLs given, at most %d", n,
			 SG_WEBHOOK_MAX_URLS);
		return NULL;
	}
	if (!lim.queue_events)
		lim.queue_events = SG_WEBHOOK_DEFAULT_QUEUE_EVENTS;
	if (!lim.queue_bytes)
		lim.queue_bytes = SG_WEBHOOK_DEFAULT_QUEUE_BYTES;
	if (!lim.timeout_ns)
		lim.timeout_ns = SG_WEBHOOK_DEFAULT_TIMEOUT_NS;
	if (!lim.backoff_ns)
		lim.backoff_ns = SG_WEBHOOK_DEFAULT_BACKOFF_NS;
	if (!lim.backoff_max_ns)
		lim.backoff_max_ns = SG_WEBHOOK_DEFAULT_BACKOFF_MAX_NS;
	if (lim.backoff_max_ns < lim.backoff_ns)
		lim.backoff_max_ns = lim.backoff_ns;
	if (!lim.max_attempts)
		lim.max_attempts = SG_WEBHOOK_DEFAULT_MAX_ATTEMPTS;
	if (!lim.max_age_ns)
		lim.max_age_ns = SG_WEBHOOK_DEFAULT_MAX_AGE_NS;

	wh = calloc(1, sizeof(*wh));
	if (!wh) {
		snprintf(err, errlen, "webhooks: out of memory");
		return NULL;
	}
	wh->wake_fd = -1;
	pthread_mutex_init(&wh->lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);	/* sg_now_ns()'s clock */
	pthread_cond_init(&wh->drained, &cattr);
	pthread_condattr_destroy(&cattr);
	wh->random = sg_now_ns() ^ (uint64_t)(uintptr_t)wh ^ 0x9e3779b97f4a7c15ULL;
	if (!wh->random)
		wh->random = 1;

	for (int i = 0; i < n; i++) {
		struct endpoint *ep = &wh->ep[i];

		wh->n = i + 1;	/* release() frees what is filled in */
		ep->fd = -1;
		if (!urls[i]) {
			snprintf(err, errlen, "webhook_urls: URL %d is missing", i + 1);
			goto fail;
		}
		if (sg_webhook_parse_url(urls[i], &ep->url, err, errlen))
			goto fail;
		for (int j = 0; j < i; j++) {
			if (!strcmp(urls[j], urls[i])) {
				snprintf(err, errlen, "webhook_urls: '%.200s' is listed twice (each "
					 "event would be posted to it twice)", urls[i]);
				goto fail;
			}
		}
		ep->text = strdup(urls[i]);
		ep->ring = calloc(lim.queue_events, sizeof(*ep->ring));
		if (!ep->text || !ep->ring) {
			snprintf(err, errlen, "webhooks: out of memory");
			goto fail;
		}
		if (ep->url.family != AF_UNSPEC) {
			address_literal(&ep->url, &ep->addr[0], &ep->addr_len[0]);
			ep->addrs = 1;
			ep->resolved_ns = UINT64_MAX;
		}
		need_tls |= ep->url.tls;
	}
	if (lim.tls_ca_file && lim.tls_ca_file[0]) {
		wh->tls_ca_file = strdup(lim.tls_ca_file);
		if (!wh->tls_ca_file) {
			snprintf(err, errlen, "webhooks: out of memory");
			goto fail;
		}
	}
	lim.tls_ca_file = wh->tls_ca_file;
	wh->limits = lim;
	if (need_tls && !(wh->tls = tls_client_context(wh->tls_ca_file, err, errlen)))
		goto fail;
	wh->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wh->wake_fd < 0) {
		snprintf(err, errlen, "webhooks: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&wh->sender, NULL, sender_main, wh)) {
		snprintf(err, errlen, "webhooks: cannot start the sender thread");
		goto fail;
	}
	return wh;
fail:
	wh->limits = lim;
	release(wh);
	return NULL;
}

void sg_webhooks_stats(const struct sg_webhooks *wh, struct sg_webhook_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->urls = wh->n;
	for (int i = 0; i < wh->n; i++) {
		const struct endpoint *ep = &wh->ep[i];
		struct sg_webhook_url_stats *s = &out->url[i];

		s->url = ep->text;
		s->queued = __atomic_load_n(&ep->queued, __ATOMIC_RELAXED);
		s->delivered = __atomic_load_n(&ep->delivered, __ATOMIC_RELAXED);
		s->retried = __atomic_load_n(&ep->retried, __ATOMIC_RELAXED);
		s->dropped = __atomic_load_n(&ep->dropped, __ATOMIC_RELAXED);
		s->expired = __atomic_load_n(&ep->expired, __ATOMIC_RELAXED);
		s->waiting = __atomic_load_n(&ep->waiting, __ATOMIC_RELAXED);
		s->failing = __atomic_load_n(&ep->failing, __ATOMIC_RELAXED);
		out->queued += s->queued;
		out->delivered += s->delivered;
		out->retried += s->retried;
		out->dropped += s->dropped;
		out->expired += s->expired;
		out->waiting += s->waiting;
	}
}

void sg_webhooks_free(struct sg_webhooks *wh, uint64_t drain_ns)
{
	uint64_t now, deadline;

	if (!wh)
		return;
	now = sg_now_ns();
	deadline = drain_ns > UINT64_MAX - now ? UINT64_MAX : now + drain_ns;
	pthread_mutex_lock(&wh->lock);
	while (!all_empty_locked(wh) && (now = sg_now_ns()) < deadline) {
		struct timespec until = {
			.tv_sec = (time_t)(deadline / 1000000000ULL),
			.tv_nsec = (long)(deadline % 1000000000ULL),
		};

		pthread_cond_timedwait(&wh->drained, &wh->lock, &until);
	}
	wh->stop = 1;
	pthread_mutex_unlock(&wh->lock);
	/* the sender never blocks (non-blocking sockets, polled lookups):
	 * woken, it stops within a round */
	wake_sender(wh);
	pthread_join(wh->sender, NULL);
	for (int i = 0; i < wh->n; i++)
		if (wh->ep[i].count)
			sg_warn("webhook %s: %u event(s) not delivered at stop", wh->ep[i].text,
				wh->ep[i].count);
	release(wh);
}
