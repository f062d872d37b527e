/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * scan_behaviour.c - what the behaviour store (scan/behaviour.h) costs per
 * message and per sender. A store of 131,072 entries is filled with
 * 100,000 senders, then messages from senders drawn at random (1 to 3
 * recipients in a pool of 20,000 domains, one MAIL FROM domain) are noted
 * and assessed. Drawn at random from 100,000, every sender's entry is
 * cold in the cache: these are costs of memory more than of arithmetic.
 * Time moves on one of two ways:
 *
 *   normal    1 ms a message (1,000 messages a second on the host): a
 *             sender comes back every 100 s (36 messages an hour, under
 *             every limit), so about a third of its notes move its
 *             windows on a slot (clearing it, rebuilding a merged sketch)
 *   flagged   10 us a message: a sender comes back every second (3,600
 *             an hour): every one is over its limits, so every assessment
 *             also writes the reasons of its 3 or 4 findings
 *
 *   note_message + assess   the cost per message the brief asks for
 *   note_reply              per RCPT reply
 *   note_message with body  the same with a fingerprint, through the bulk
 *                           table (bodies drawn from 2,000 mailings)
 *   fingerprint             begin/feed/end per KiB of text
 *   threads                 the normal case on N threads at once (one store)
 *
 * and the memory: bytes a sender (the table with its index, allocated
 * once), bytes a bulk entry, and the resident set after the fill.
 *
 *   build/bench/scan_behaviour [--senders N] [--messages N] [--threads N]
 *
 * Prints "BENCH scan_behaviour ..." lines, as the other benchmarks do.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "behaviour.h"
#include "parse.h"

#define USAGE "usage: scan_behaviour [--senders N] [--messages N] [--threads N]\n"

#define NS 1000000000ULL
#define T0 (20000 * 86400 * NS + 8 * 3600 * NS)
#define DOMAINS 20000
#define BODIES 2000

static struct sg_behaviour *store;
static struct sg_behaviour_thresholds limits;
static char domain_names[DOMAINS][24];
static struct sg_fingerprint bodies[BODIES];
static uint32_t n_senders = 100000;
static uint64_t n_messages = 2000000;

/* Costs are the thread's CPU time (a shared machine's other load does
 * not count, its cache misses do); the threads' throughput is wall time. */
static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static uint64_t next(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 16;
}

static struct sg_behaviour_id sender(uint32_t i, uint8_t key[18])
{
	memset(key, 0, 18);
	key[0] = 0x20;	/* an IPv6 /64 and an interface index */
	key[1] = 0x01;
	memcpy(key + 8, &i, sizeof(i));
	return (struct sg_behaviour_id){ key, 18, NULL, 0 };
}

enum mode { PLAIN, WITH_BODY, REPLIES };

/* n messages of the given kind, time moving step ns a message; returns
 * ns per message. */
static double run(enum mode mode, uint64_t n, uint64_t seed, uint64_t start, uint64_t step)
{
	uint64_t t = cpu_ns();
	uint8_t key[18];

	for (uint64_t i = 0; i < n; i++) {
		struct sg_behaviour_id id = sender((uint32_t)(next(&seed) % n_senders), key);
		const char *to[3];
		uint32_t rcpts = 1 + (uint32_t)(next(&seed) % 3);
		struct sg_behaviour_message m = { .rcpts = rcpts, .rcpt_domains = to,
						  .n_rcpt_domains = rcpts,
						  .mail_from_domain = "example.com" };
		struct sg_behaviour_report r;
		uint64_t when = start + i * step;

		for (uint32_t k = 0; k < rcpts; k++)
			to[k] = domain_names[next(&seed) % DOMAINS];
		if (mode == REPLIES) {
			sg_behaviour_note_reply(store, &id, when, SG_REPLY_RCPT, 250, "2.1.5", "Ok");
			continue;
		}
		if (mode == WITH_BODY)
			m.fingerprint = &bodies[next(&seed) % BODIES];
		sg_behaviour_note_message(store, &id, when, &m);
		sg_behaviour_assess(store, &id, when, &limits, &r);
	}
	return (double)(cpu_ns() - t) / (double)n;
}

static void make_bodies(double *ns_per_kib)
{
	char text[2048];
	uint64_t t, bytes = 0;

	t = cpu_ns();
	for (int b = 0; b < BODIES; b++) {
		struct sg_fingerprint_ctx ctx;
		int len = snprintf(text, sizeof(text),
			"Dear customer, mailing number %d of the season brings news from shop %d. "
			"Our collection %d has arrived with new colours and sizes for the family; "
			"members save on every order this week and delivery is free above a small "
			"amount. Read more at https://t.example.com/c/%d?u=%d or reply to this "
			"message. Offer %d ends soon; see the terms at https://example.com/terms. "
			"To stop receiving these messages follow the link at the bottom. Word%d "
			"word%d kind regards from the team of store %d and its partners.",
			b, b * 7, b * 13, b, b, b, b % 97, b % 89, b);

		/* each mailing its own: the numbers become '#', so vary words */
		for (int k = 0; k < 6; k++)
			text[10 + k * 37] = (char)('a' + (b >> k) % 26);
		sg_fingerprint_begin(&ctx);
		sg_fingerprint_feed(&ctx, text, (size_t)len);
		sg_fingerprint_end(&ctx, &bodies[b]);
		bytes += (uint64_t)len;
	}
	*ns_per_kib = (double)(cpu_ns() - t) / ((double)bytes / 1024);
}

struct thread_arg {
	uint64_t seed;
	double ns;
};

static void *thread_run(void *p)
{
	struct thread_arg *a = p;

	a->ns = run(PLAIN, n_messages / 4, a->seed, T0 + 5 * 86400 * NS, 1000000);
	return NULL;
}

static long rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
	struct sg_behaviour_limits l;
	struct sg_behaviour_stats st;
	int threads = 2;
	double fp_ns_per_kib, plain, flagged, body, replies;
	long rss0, rss1;
	uint8_t key[18];

	for (int i = 1; i < argc; i++) {
		static const struct {
			const char *name;
			uint64_t min, max;
		} opts[] = { { "--senders", 1, 1u << 24 }, { "--messages", 1, 1ULL << 32 },
			     { "--threads", 1, 64 } };
		char err[160];
		uint64_t v;
		size_t o;

		for (o = 0; o < sizeof(opts) / sizeof(opts[0]) && strcmp(argv[i], opts[o].name); o++)
			;
		if (o == sizeof(opts) / sizeof(opts[0])) {
			fprintf(stderr, "scan_behaviour: unknown argument '%s'\n%s", argv[i], USAGE);
			return 2;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "scan_behaviour: %s needs a value\n%s", argv[i], USAGE);
			return 2;
		}
		if (sg_parse_uint(argv[i + 1], opts[o].min, opts[o].max, &v, err, sizeof(err))) {
			fprintf(stderr, "scan_behaviour: %s: %s\n%s", argv[i], err, USAGE);
			return 2;
		}
		if (o == 0)
			n_senders = (uint32_t)v;
		else if (o == 1)
			n_messages = v;
		else
			threads = (int)v;
		i++;
	}
	for (int d = 0; d < DOMAINS; d++)
		snprintf(domain_names[d], sizeof(domain_names[d]), "d%d.example", d);
	sg_behaviour_thresholds_default(&limits);
	sg_behaviour_limits_default(&l);
	l.capacity = 131072;
	while (l.capacity < n_senders + n_senders / 4)
		l.capacity *= 2;
	rss0 = rss_kib();
	store = sg_behaviour_new(&l);
	if (!store) {
		fprintf(stderr, "scan_behaviour: cannot allocate a store of %u senders\n", l.capacity);
		return 1;
	}
	make_bodies(&fp_ns_per_kib);
	for (uint32_t i = 0; i < n_senders; i++) {
		struct sg_behaviour_id id = sender(i, key);
		const char *to[1] = { domain_names[i % DOMAINS] };
		struct sg_behaviour_message m = { .rcpts = 1, .rcpt_domains = to, .n_rcpt_domains = 1 };

		sg_behaviour_note_message(store, &id, T0, &m);
	}
	rss1 = rss_kib();
	/* each run a day after the one before: its windows start empty */
	plain = run(PLAIN, n_messages, 1, T0 + 86400 * NS, 1000000);
	replies = run(REPLIES, n_messages, 2, T0 + 2 * 86400 * NS, 1000000);
	body = run(WITH_BODY, n_messages / 4, 3, T0 + 3 * 86400 * NS, 1000000);
	flagged = run(PLAIN, n_messages / 4, 4, T0 + 4 * 86400 * NS, 10000);
	sg_behaviour_stats(store, &st);
	printf("BENCH scan_behaviour note_message+assess normal senders=%u ns_per_message=%.0f\n",
	       n_senders, plain);
	printf("BENCH scan_behaviour note_message+assess flagged senders=%u ns_per_message=%.0f\n",
	       n_senders, flagged);
	printf("BENCH scan_behaviour note_reply normal senders=%u ns_per_reply=%.0f\n", n_senders,
	       replies);
	printf("BENCH scan_behaviour note_message+assess with_body normal senders=%u "
	       "ns_per_message=%.0f\n", n_senders, body);
	printf("BENCH scan_behaviour fingerprint ns_per_kib=%.0f\n", fp_ns_per_kib);
	{
		pthread_t th[64];
		struct thread_arg a[64];
		uint64_t t = clock_ns(CLOCK_MONOTONIC);

		for (int i = 0; i < threads; i++) {
			a[i].seed = 100 + (uint64_t)i;
			pthread_create(&th[i], NULL, thread_run, &a[i]);
		}
		for (int i = 0; i < threads; i++)
			pthread_join(th[i], NULL);
		printf("BENCH scan_behaviour threads=%d messages_per_s=%.0f (each thread %.0f ns a "
		       "message)\n", threads,
		       (double)(n_messages / 4) * threads / ((double)(clock_ns(CLOCK_MONOTONIC) - t) / NS),
		       a[0].ns);
	}
	printf("BENCH scan_behaviour memory capacity=%u bytes_per_sender=%zu store_bytes=%zu "
	       "bulk_entries=%u bulk_bytes_per_entry=%zu rss_kib_for_%u_senders=%ld held=%u "
	       "evictions=%llu\n", st.capacity, st.bytes_per_sender, st.bytes, st.bulk.capacity,
	       (st.bytes - st.bytes_per_sender * st.capacity) / (st.bulk.capacity ? st.bulk.capacity : 1),
	       n_senders, rss1 - rss0, st.held, (unsigned long long)st.evictions);
	sg_behaviour_free(store);
	return 0;
}
