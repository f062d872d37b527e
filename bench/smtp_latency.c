/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * smtp_latency.c - how long one message takes, end to end, through an SMTP
 * server (or through smtpguard's proxy in front of it). Runs COUNT complete
 * transactions, each on a fresh TCP connection: greeting, EHLO, MAIL FROM,
 * RCPT TO, DATA, a body of SIZE bytes, ".", QUIT. A message's time runs from
 * connect() to the 250 that accepts it (CLOCK_MONOTONIC). Every reply code
 * is checked; an unexpected one ends the run with exit status 1 and names
 * the step and the server's reply.
 *
 * Prints one line:
 *   count=N p50_us=... p90_us=... p99_us=... max_us=...
 *
 * Usage:
 *   smtp_latency [-n COUNT] [-s SIZE] [-c CONCURRENCY] ADDR[:PORT]
 *     -n COUNT        messages (default 100)
 *     -s SIZE         body bytes, k/m suffixes for KiB/MiB (default 1024)
 *     -c CONCURRENCY  transactions in parallel (default 1: one after the other)
 *     ADDR[:PORT]     192.0.2.25, 192.0.2.25:2525, [2001:db8::25]:25 or
 *                     2001:db8::25; the port defaults to 25
 *   e.g. in the lab:
 *     lab_exec vm1 build/bench/smtp_latency -n 500 -s 10k 198.51.100.25:25
 *
 * Build (libc and pthread only):
 *   cc -O2 -g -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
 *      bench/smtp_latency.c -o build/bench/smtp_latency -lpthread
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_NAME		"smtp_latency"
#define CLIENT_USAGE \
	"usage: smtp_latency [-n COUNT] [-s SIZE] [-c CONCURRENCY] ADDR[:PORT]"
#include "smtp_client.h"

#define DEFAULT_COUNT		100
#define DEFAULT_BODY_SIZE	1024
#define MAX_COUNT		10000000UL	/* a latency slot each: 80 MB */
#define MAX_BODY_SIZE		(256UL << 20)
#define MAX_CONCURRENCY		1024
#define IO_TIMEOUT_S		30	/* connect, each reply, each write */
#define REPLY_LINE_MAX		1024	/* RFC 5321 allows 512; be lenient */
#define ERR_LEN			640

#define HELO_NAME		"smtp-latency.example.org"
#define MAIL_FROM		"bench@example.org"
#define RCPT_TO			"sink@example.net"

struct options {
	unsigned long count;
	size_t body_size;
	unsigned int concurrency;
	const char *server;
};

/* A command and the reply that lets the transaction go on. */
struct step {
	const char *name;	/* names the step in error messages */
	const char *command;	/* NULL: the server speaks first */
	int want;
};

/* Everything up to DATA is the same for every message. */
static const struct step opening[] = {
	{ "greeting", NULL, 220 },
	{ "EHLO", "EHLO " HELO_NAME "\r\n", 250 },
	{ "MAIL FROM", "MAIL FROM:<" MAIL_FROM ">\r\n", 250 },
	{ "RCPT TO", "RCPT TO:<" RCPT_TO ">\r\n", 250 },
	{ "DATA", "DATA\r\n", 354 },
};

/* What all the threads share; the message is built once, read-only. */
struct run {
	const struct smtp_target *target;
	const char *message;	/* headers, body and the final dot */
	size_t message_len;
	unsigned long count;
	uint64_t *latency_ns;	/* one slot per message */
	atomic_ulong next;	/* the next message to send */
	atomic_int failed;	/* set by the first failure: the others stop */
};

struct smtp_conn {
	int fd;
	size_t len, off;	/* unread bytes are buf[off, len) */
	char buf[4096];
	char err[ERR_LEN];
};

static void conn_error(struct smtp_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void conn_error(struct smtp_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	unsigned long v;
	int opt;

	*o = (struct options){ .count = DEFAULT_COUNT, .body_size = DEFAULT_BODY_SIZE,
			       .concurrency = 1 };
	opterr = 0;
	while ((opt = getopt(argc, argv, ":n:s:c:")) != -1) {
		switch (opt) {
		case 'n':
			o->count = number_option(opt, optarg, 0, 1, MAX_COUNT, "a count");
			break;
		case 's':
			if (parse_number(optarg, 1, 0, MAX_BODY_SIZE, &v))
				usage_error("-s: '%s' is not a size from 0 to %lu bytes (k, m "
					    "suffixes allowed)", optarg, MAX_BODY_SIZE);
			o->body_size = v;
			break;
		case 'c':
			o->concurrency = (unsigned int)number_option(opt, optarg, 0, 1,
								     MAX_CONCURRENCY,
								     "a concurrency");
			break;
		default:
			option_error(opt);
		}
	}
	o->server = server_argument(argc, argv);
}

/* Headers, then a body of exactly body_size bytes in lines of printable
 * characters (none starts with a dot, so nothing is dot-stuffed), then the
 * end of data. */
static char *build_message(size_t body_size, size_t *len)
{
	static const char headers[] = MESSAGE_HEADERS(MAIL_FROM, RCPT_TO, "smtp_latency");
	size_t hlen = sizeof(headers) - 1, pos;
	char *m = malloc(hlen + body_size + 8);
	char *body;

	if (!m)
		return NULL;
	memcpy(m, headers, hlen);
	body = m + hlen;
	fill_text_lines(body, body_size, 0);
	pos = body_size;
	/* a body that does not end its last line gets the CRLF the dot needs */
	if (body_size && (body_size < 2 || body[body_size - 1] != '\n'))
		memcpy(body + pos, "\r\n.\r\n", 5), pos += 5;
	else
		memcpy(body + pos, ".\r\n", 3), pos += 3;
	*len = hlen + pos;
	return m;
}

static int conn_open(struct smtp_conn *c, const struct smtp_target *t)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int one = 1;

	c->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_error(c, "connect: socket: %s", strerror(errno));
		return -1;
	}
	/* the send timeout also bounds a blocking connect(); no Nagle, so the
	 * tail of the message is not held back for an ACK */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&t->addr, t->addr_len)) {
		if (errno == EINPROGRESS || errno == EAGAIN)
			conn_error(c, "connect to %s: no answer within %d s", t->name,
				   IO_TIMEOUT_S);
		else
			conn_error(c, "connect to %s: %s", t->name, strerror(errno));
		return -1;
	}
	return 0;
}

static int send_all(struct smtp_conn *c, const char *step, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EAGAIN)
				conn_error(c, "%s: the server took nothing for %d s", step,
					   IO_TIMEOUT_S);
			else
				conn_error(c, "%s: sending failed: %s", step, strerror(errno));
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The next line from the server, CRLF removed, into line[REPLY_LINE_MAX]. */
static int read_line(struct smtp_conn *c, const char *step, char *line)
{
	for (;;) {
		char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
		ssize_t n;

		if (nl) {
			size_t l = (size_t)(nl - (c->buf + c->off));

			if (l && nl[-1] == '\r')
				l--;
			if (l >= REPLY_LINE_MAX)
				l = REPLY_LINE_MAX - 1;
			memcpy(line, c->buf + c->off, l);
			line[l] = '\0';
			c->off = (size_t)(nl - c->buf) + 1;
			return 0;
		}
		if (c->off) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		if (c->len == sizeof(c->buf)) {
			conn_error(c, "%s: a reply line longer than %zu bytes", step, sizeof(c->buf));
			return -1;
		}
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			conn_error(c, "%s: the server closed the connection before replying", step);
			return -1;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				conn_error(c, "%s: no reply within %d s", step, IO_TIMEOUT_S);
			else
				conn_error(c, "%s: receiving failed: %s", step, strerror(errno));
			return -1;
		}
		c->len += (size_t)n;
	}
}

/* Reads a whole (possibly multi-line) reply and checks its code. */
static int expect_reply(struct smtp_conn *c, const char *step, int want)
{
	char line[REPLY_LINE_MAX];

	for (;;) {
		int code;

		if (read_line(c, step, line))
			return -1;
		if (strlen(line) < 3 || line[0] < '2' || line[0] > '5' ||
		    line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9' ||
		    (line[3] && line[3] != ' ' && line[3] != '-')) {
			conn_error(c, "%s: expected %d, the server sent a malformed reply: %s",
				   step, want, line);
			return -1;
		}
		if (line[3] == '-')
			continue;
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (code != want) {
			conn_error(c, "%s: expected %d, the server replied: %s", step, want, line);
			return -1;
		}
		return 0;
	}
}

static int run_step(struct smtp_conn *c, const struct step *s)
{
	if (s->command && send_all(c, s->name, s->command, strlen(s->command)))
		return -1;
	return expect_reply(c, s->name, s->want);
}

/* One message on its own connection; its time from connect() to the 250
 * after the dot goes to *elapsed_ns. */
static int send_message(const struct run *run, struct smtp_conn *c, uint64_t *elapsed_ns)
{
	static const struct step quit = { "QUIT", "QUIT\r\n", 221 };
	uint64_t start = now_ns();
	int err = -1;

	c->fd = -1;
	c->len = c->off = 0;
	if (conn_open(c, run->target))
		goto cleanup;
	for (size_t i = 0; i < sizeof(opening) / sizeof(opening[0]); i++)
		if (run_step(c, &opening[i]))
			goto cleanup;
	if (send_all(c, "message body", run->message, run->message_len) ||
	    expect_reply(c, "end of data (.)", 250))
		goto cleanup;
	*elapsed_ns = now_ns() - start;
	if (run_step(c, &quit))
		goto cleanup;
	err = 0;
cleanup:
	if (c->fd >= 0)
		close(c->fd);
	return err;
}

static void *client_thread(void *arg)
{
	struct run *run = arg;
	struct smtp_conn *c = malloc(sizeof(*c));

	if (!c) {
		if (!atomic_exchange(&run->failed, 1))
			fprintf(stderr, "smtp_latency: out of memory\n");
		return NULL;
	}
	while (!atomic_load(&run->failed)) {
		unsigned long i = atomic_fetch_add(&run->next, 1);

		if (i >= run->count)
			break;
		if (send_message(run, c, &run->latency_ns[i])) {
			/* only the first failure speaks: the others are its echo */
			if (!atomic_exchange(&run->failed, 1))
				fprintf(stderr, "smtp_latency: message %lu of %lu: %s\n", i + 1,
					run->count, c->err);
			break;
		}
	}
	free(c);
	return NULL;
}

static int run_clients(struct run *run, unsigned int concurrency)
{
	pthread_t threads[MAX_CONCURRENCY];
	unsigned int started = 0;
	int err = 0;

	if (concurrency > run->count)
		concurrency = (unsigned int)run->count;
	if (concurrency == 1) {
		client_thread(run);
		return atomic_load(&run->failed) ? -1 : 0;
	}
	for (; started < concurrency; started++) {
		err = pthread_create(&threads[started], NULL, client_thread, run);
		if (err) {
			fprintf(stderr, "smtp_latency: starting client thread %u failed: %s\n",
				started + 1, strerror(err));
			atomic_store(&run->failed, 1);
			break;
		}
	}
	for (unsigned int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	return atomic_load(&run->failed) ? -1 : 0;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least pct % of them at or below. */
static uint64_t percentile_us(const uint64_t *sorted, unsigned long n, unsigned int pct)
{
	unsigned long rank = (n * pct + 99) / 100;

	return sorted[rank ? rank - 1 : 0] / 1000;
}

int main(int argc, char **argv)
{
	struct options o;
	struct smtp_target target;
	struct run run = { 0 };
	char err[ERR_LEN];
	char *message = NULL;
	int status = 1;

	parse_options(argc, argv, &o);
	if (resolve_target(o.server, &target, err, sizeof(err)))
		usage_error("%s", err);
	message = build_message(o.body_size, &run.message_len);
	run.latency_ns = calloc(o.count, sizeof(*run.latency_ns));
	if (!message || !run.latency_ns) {
		fprintf(stderr, "smtp_latency: out of memory for %lu messages of %zu bytes\n",
			o.count, o.body_size);
		goto cleanup;
	}
	run.target = &target;
	run.message = message;
	run.count = o.count;
	atomic_init(&run.next, 0);
	atomic_init(&run.failed, 0);
	if (run_clients(&run, o.concurrency))
		goto cleanup;
	qsort(run.latency_ns, run.count, sizeof(*run.latency_ns), compare_u64);
	printf("count=%lu p50_us=%llu p90_us=%llu p99_us=%llu max_us=%llu\n", run.count,
	       (unsigned long long)percentile_us(run.latency_ns, run.count, 50),
	       (unsigned long long)percentile_us(run.latency_ns, run.count, 90),
	       (unsigned long long)percentile_us(run.latency_ns, run.count, 99),
	       (unsigned long long)(run.latency_ns[run.count - 1] / 1000));
	status = 0;
cleanup:
	free(run.latency_ns);
	free(message);
	return status;
}
