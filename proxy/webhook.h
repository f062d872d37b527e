/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * webhook.h - the response ladder's events, POSTed to the operator's HTTP(S)
 * endpoints (webhook_urls). A worker hands over an event's JSON with
 * sg_webhooks_post(), which copies it into a bounded queue and returns at
 * once; one sender thread delivers every event to every URL, in order per
 * URL, retrying failures with exponential back-off, and gives up on an event
 * after webhook_max_attempts attempts or webhook_max_age. A slow or dead
 * URL never holds back another: each URL has its own queue, its own
 * connection and its own back-off.
 *
 * Use:
 *	wh = sg_webhooks_new(urls, n, &limits, err, sizeof(err));
 *	sg_webhooks_post(wh, line, len);	(any thread, never blocks)
 *	sg_webhooks_stats(wh, &stats);
 *	sg_webhooks_free(wh, 2 * SEC);		(no post() during or after)
 */
#ifndef SMTPGUARD_WEBHOOK_H
#define SMTPGUARD_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#define SG_WEBHOOK_MAX_URLS	8	/* URLs in webhook_urls */
#define SG_WEBHOOK_URL_MAX	2048	/* a URL's characters, with the terminating NUL */
#define SG_WEBHOOK_HOST_MAX	256	/* a host name (253) or an address */

/* The defaults of struct sg_webhook_limits (a field left 0 takes them). */
#define SG_WEBHOOK_DEFAULT_QUEUE_EVENTS	1000u
#define SG_WEBHOOK_DEFAULT_QUEUE_BYTES	(1024u * 1024u)
#define SG_WEBHOOK_DEFAULT_TIMEOUT_NS	(5ULL * 1000000000ULL)
#define SG_WEBHOOK_DEFAULT_BACKOFF_NS	(1ULL * 1000000000ULL)
#define SG_WEBHOOK_DEFAULT_BACKOFF_MAX_NS (60ULL * 1000000000ULL)
#define SG_WEBHOOK_DEFAULT_MAX_ATTEMPTS	10u
#define SG_WEBHOOK_DEFAULT_MAX_AGE_NS	(3600ULL * 1000000000ULL)

struct sg_webhook_limits {
	uint32_t queue_events;		/* events waiting, per URL */
	uint64_t queue_bytes;		/* their bytes, per URL; a larger event is dropped */
	uint64_t timeout_ns;		/* one attempt: resolve, connect, TLS, send, reply */
	uint64_t backoff_ns;		/* the wait after a first failure; doubles after each */
	uint64_t backoff_max_ns;	/* ...up to this */
	uint32_t max_attempts;		/* attempts at one event before it is given up */
	uint64_t max_age_ns;		/* an event older than this is given up */
	const char *tls_ca_file;	/* https:// servers are verified with its CAs instead of
					 * the system's (NULL or "": the system's) */
};

/* A URL as sg_webhook_parse_url reads it. */
struct sg_webhook_url {
	int tls;			/* https:// */
	int family;			/* AF_INET, AF_INET6 (an address), AF_UNSPEC (a name) */
	char host[SG_WEBHOOK_HOST_MAX];	/* without brackets */
	uint16_t port;			/* 80, 443 or as written */
	char authority[SG_WEBHOOK_HOST_MAX + 8];	/* the Host header: "[::1]:8080", "example.net" */
	char path[SG_WEBHOOK_URL_MAX];	/* from the first '/', query included; "/" if none */
};

/* One URL's counts: each counts events, once per URL. */
struct sg_webhook_url_stats {
	const char *url;		/* as configured; valid while the webhooks live */
	uint64_t queued;		/* taken into this URL's queue */
	uint64_t delivered;		/* answered 2xx */
	uint64_t retried;		/* attempts after a failed one */
	uint64_t dropped;		/* not queued: the queue was full */
	uint64_t expired;		/* given up: webhook_max_attempts or webhook_max_age */
	uint64_t waiting;		/* in the queue now, the one being sent included */
	uint32_t failing;		/* failed attempts in a row now; 0: the last one worked */
};

struct sg_webhook_stats {
	uint64_t queued, delivered, retried, dropped, expired, waiting;	/* over every URL */
	int urls;
	struct sg_webhook_url_stats url[SG_WEBHOOK_MAX_URLS];
};

struct sg_webhooks;

/* http://HOST[:PORT][/PATH][?QUERY] or https://..., HOST an IPv4 address,
 * [IPv6] or a DNS name. 0, or -1 with err saying what is wrong and where
 * ("webhook_urls: 'ftp://x' is not an http:// or https:// URL"). */
int sg_webhook_parse_url(const char *text, struct sg_webhook_url *out, char *err,
			 size_t errlen);

/* Parses the n URLs (1..SG_WEBHOOK_MAX_URLS), prepares TLS if one is
 * https://, and starts the sender thread. Names are resolved by that
 * thread, never here. limits may be NULL (every default). NULL with err on
 * an error. */
struct sg_webhooks *sg_webhooks_new(const char *const *urls, int n,
				    const struct sg_webhook_limits *limits, char *err,
				    size_t errlen);

/* Queues a copy of json[0..len) for every URL. Never waits for the network
 * (a short mutex at most). 0: queued for every URL; -1: dropped (counted)
 * for at least one, whose queue was full. The JSON goes into the body and
 * nowhere else (it may carry what tenants sent). wh NULL (no webhook_urls):
 * 0, nothing to do. */
int sg_webhooks_post(struct sg_webhooks *wh, const char *json, size_t len);

/* The counts so far (no lock: they are read one by one). */
void sg_webhooks_stats(const struct sg_webhooks *wh, struct sg_webhook_stats *out);

/* Waits at most drain_ns for every queue to empty, then stops the sender
 * (what is still queued is logged as lost) and frees everything. Returns
 * within drain_ns and a few milliseconds. NULL is a no-op. */
void sg_webhooks_free(struct sg_webhooks *wh, uint64_t drain_ns);

#endif
