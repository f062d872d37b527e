/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * scan_fairness.c - one session's scan must not hold its worker: the other
 * tenants' sessions in the same worker wait meanwhile (relay_data.c scans a
 * body in chunks and yields the worker after SG_SCAN_SLICE_NS). Two
 * sessions run in one worker, the relay's own code on its own thread over
 * socketpairs (selftests/relay/rig.h, as the relay's dialogue test sets
 * them up), with 200 content rules that never match
 * ("spam-N body /spam-token-N[0-9]+x/i"):
 *
 *   A  sends a 1 MiB body of 4-byte lines ("ab\r\n"): the costliest body
 *      per byte for a scanner that judges line by line; its MX takes it
 *      and answers the dot at once
 *   B  does NOOP round trips all along (its MX answers at once)
 *
 * It reports A's wall time and the worker's CPU time for the body, and B's
 * round-trip latency (p50, p99, max) while A's body is scanned, and before
 * (the worker idle). The relay before the yield is not built here; its
 * figure is worked out from the scanner alone (sg_scan_feed, the same
 * rules): a wake-up scanned a whole 16 KiB read at once, and up to 64 of
 * them (relay_run's rounds) while the VM kept its socket full. B's worst
 * wait was that.
 *
 *   build/bench/scan_fairness [--body BYTES] [--rules N] [--idle N]
 *
 * Prints "BENCH scan_fairness ..." lines, as the other benchmarks do. No
 * root, no network: socketpairs in one process.
 *
 * It links the proxy's room, which the generic bench rule does not: the
 * Makefile's rule (beside test_relay's) is
 *
 *   $(BUILD)/bench/scan_fairness: bench/scan_fairness.c selftests/relay/rig.h \
 *                                 $(proxy_OBJS) $(scan_OBJS) $(LIB_OBJS)
 *   	@mkdir -p $(@D)
 *   	$(CC) $(CFLAGS_BASE) $(INC_proxy) -Iselftests/relay $< $(proxy_OBJS) \
 *   	      $(scan_OBJS) $(LIB_OBJS) -o $@ $(LDLIBS_BPF) -lssl -lcrypto -lpthread
 *
 * Built by the generic rule instead (no proxy headers), it is a stub that
 * says so.
 */
#if !__has_include("worker.h")
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "scan_fairness: built without the proxy's headers (the generic bench "
		"rule): build it by its own rule (see bench/scan_fairness.c)\n");
	return 2;
}
#else
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "rig.h"

#define DEFAULT_BODY	(1u << 20)
#define DEFAULT_RULES	200
#define DEFAULT_IDLE	2000		/* NOOP round trips with the worker idle */
#define SCAN_CHUNK	16384		/* a read of the old relay: SG_BODY_BUF */
#define OLD_ROUNDS	64		/* relay_run's rounds a wake-up */
#define STEP_NS		(10ULL * 1000000000ULL)	/* a peer's step; more is a failure */
#define MAX_SAMPLES	(1u << 20)
#define HEADER		"Subject: fairness\r\n\r\n"

/* One peer's end of a session: what it read, not yet taken. */
struct end {
	const char *name;
	int fd;
	char buf[65536];
	size_t len;
};

static atomic_int worker_stop;
static struct rig *the_rig;	/* its temporary files go with a failure too */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "scan_fairness: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (the_rig && the_rig->events_path[0])
		unlink(the_rig->events_path);
	if (the_rig && the_rig->rules_path[0])
		unlink(the_rig->rules_path);
	exit(1);
}

/* The worker's thread, as worker_main runs it. */
static void *worker_thread(void *arg)
{
	struct rig *g = arg;

	while (!atomic_load(&worker_stop)) {
		if (sg_loop_run_once(g->w.loop, 20000000ULL) < 0)
			die("the worker's loop failed: %s", strerror(errno));
		session_reap(&g->w);
	}
	return NULL;
}

static uint64_t cpu_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void send_all(struct end *e, const char *data, size_t len)
{
	uint64_t deadline = sg_now_ns() + STEP_NS;

	while (len) {
		ssize_t n = send(e->fd, data, len, MSG_NOSIGNAL);
		struct pollfd p = { .fd = e->fd, .events = POLLOUT };

		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			die("the %s could not send: %s", e->name, strerror(errno));
		} else if (sg_now_ns() > deadline) {
			die("the %s's socket stayed full", e->name);
		} else {
			poll(&p, 1, 100);
		}
	}
}

/* What the socket has now, appended; -1 at its end. */
static int fill(struct end *e)
{
	ssize_t n = read(e->fd, e->buf + e->len, sizeof(e->buf) - e->len);

	if (n > 0)
		e->len += (size_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		return -1;
	return 0;
}

/* The next line (CRLF cut) into line, if one is there: 1, else 0. */
static int take_line(struct end *e, char *line, size_t len)
{
	char *lf = memchr(e->buf, '\n', e->len);
	size_t n;

	if (!lf)
		return 0;
	n = (size_t)(lf - e->buf) + 1;
	snprintf(line, len, "%.*s", (int)(n >= 2 && lf[-1] == '\r' ? n - 2 : n - 1), e->buf);
	memmove(e->buf, e->buf + n, e->len - n);
	e->len -= n;
	return 1;
}

/* The next line, waited for; it must begin with want. */
static void expect(struct end *e, const char *want)
{
	uint64_t deadline = sg_now_ns() + STEP_NS;
	char line[1024];

	while (!take_line(e, line, sizeof(line))) {
		struct pollfd p = { .fd = e->fd, .events = POLLIN };

		if (sg_now_ns() > deadline)
			die("the %s waited in vain for \"%s\"", e->name, want);
		poll(&p, 1, 100);
		if (fill(e))
			die("the %s's connection ended, want \"%s\"", e->name, want);
	}
	if (strncmp(line, want, strlen(want)))
		die("the %s got \"%s\", want \"%s\"", e->name, line, want);
}

/* The VM says cmd, the MX reads it and answers reply (one line). */
static void exchange(struct end *vm, struct end *mx, const char *cmd, const char *reply)
{
	char text[512];

	snprintf(text, sizeof(text), "%s\r\n", cmd);
	send_all(vm, text, strlen(text));
	expect(mx, cmd);
	snprintf(text, sizeof(text), "%s\r\n", reply);
	send_all(mx, text, strlen(text));
	expect(vm, reply);
}

/* The greeting and EHLO. */
static void greet(struct end *vm, struct end *mx)
{
	static const char ehlo[] = "250-mx.example.net\r\n250 PIPELINING\r\n";

	send_all(mx, "220 mx.example.net ESMTP\r\n", 26);
	expect(vm, "220 ");
	send_all(vm, "EHLO vm.example.org\r\n", 21);
	expect(mx, "EHLO vm.example.org");
	send_all(mx, ehlo, sizeof(ehlo) - 1);
	expect(vm, "250-mx.example.net");
	expect(vm, "250 PIPELINING");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report_latency(const char *what, uint64_t *v, size_t n)
{
	if (!n) {
		printf("BENCH scan_fairness noop_b %s n=0\n", what);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("BENCH scan_fairness noop_b %s p50_us=%llu p99_us=%llu max_us=%llu n=%zu\n", what,
	       (unsigned long long)(v[n / 2] / 1000), (unsigned long long)(v[n * 99 / 100] / 1000),
	       (unsigned long long)(v[n - 1] / 1000), n);
}

/* The rules' file text: n body rules that never match the body. */
static char *rules_text(int n)
{
	size_t cap = (size_t)n * 48 + 1, off = 0;
	char *t = malloc(cap);

	if (!t)
		die("out of memory");
	t[0] = '\0';
	for (int i = 1; i <= n; i++)
		off += (size_t)snprintf(t + off, cap - off,
					"spam-%d body /spam-token-%d[0-9]+x/i\n", i, i);
	return t;
}

/* The scanner alone, the same rules: one 16 KiB chunk of the body (the
 * median of 9), in ns. */
static uint64_t scan_chunk_ns(const struct sg_scanner *scanner)
{
	struct sg_envelope env = { .vm = "192.0.2.10:40000", .helo = "vm.example.org",
				   .mail_from = "a@example.org", .rcpt_domains = "example.net",
				   .rcpts = 1 };
	static char chunk[SCAN_CHUNK];
	uint64_t t[9];
	struct sg_scan scan;

	for (size_t i = 0; i < sizeof(chunk); i += 4)
		memcpy(chunk + i, "ab\r\n", 4);
	sg_scan_begin(&scan, scanner, &env, NULL);
	sg_scan_feed(&scan, "Subject: fairness\r\n\r\n", 21);
	for (int i = 0; i < 9; i++) {
		uint64_t t0 = sg_now_ns();

		sg_scan_feed(&scan, chunk, sizeof(chunk));
		t[i] = sg_now_ns() - t0;
	}
	sg_scan_end(&scan);
	qsort(t, 9, sizeof(t[0]), cmp_u64);
	return t[4];
}

static long arg_value(int argc, char **argv, int *i, long min, long max)
{
	char *end;
	long v;

	if (*i + 1 >= argc)
		die("%s needs a value", argv[*i]);
	v = strtol(argv[++*i], &end, 10);
	if (*end || v < min || v > max)
		die("%s wants a whole number from %ld to %ld, not \"%s\"", argv[*i - 1], min, max,
		    argv[*i]);
	return v;
}

int main(int argc, char **argv)
{
	size_t body = DEFAULT_BODY, idle = DEFAULT_IDLE, sent = 0, total, n_idle = 0, n_busy = 0;
	int rules = DEFAULT_RULES, a_done = 0;
	size_t b_sent = 0, b_answered = 0, b_got = 0;	/* NOOPs during A's body */
	struct end a_vm = { .name = "VM of A" }, a_mx = { .name = "MX of A" };
	struct end b_vm = { .name = "VM of B" }, b_mx = { .name = "MX of B" };
	uint64_t chunk_ns, t0, t_end = 0, cpu0, cpu1, t_noop, *lat_idle, *lat_busy;
	char err[512], line[1024], *rules_file, *data, tail[5] = "";
	struct sg_config cfg;
	struct session *sa, *sb;
	struct rig g = { 0 };
	pthread_t worker;
	clockid_t worker_clock;
	int fds[2];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--body"))
			body = (size_t)arg_value(argc, argv, &i, 4096, 1L << 30) & ~(size_t)3;
		else if (!strcmp(argv[i], "--rules"))
			rules = (int)arg_value(argc, argv, &i, 1, 1000);
		else if (!strcmp(argv[i], "--idle"))
			idle = (size_t)arg_value(argc, argv, &i, 1, MAX_SAMPLES);
		else
			die("usage: scan_fairness [--body BYTES] [--rules N] [--idle N]");
	}
	sg_log_init("scan_fairness");
	sg_config_defaults(&cfg);
	/* B's round trips are many more commands than a session may give */
	if (sg_config_set(&cfg, "smtp_command_limit = 1000000", "scan_fairness", 0, err,
			  sizeof(err)))
		die("%s", err);
	rules_file = rules_text(rules);
	the_rig = &g;
	if (rig_start(&g, &cfg, rules_file, "scan_fairness", err, sizeof(err)))
		die("%s", err);
	free(rules_file);
	chunk_ns = scan_chunk_ns(&g.proxy.generation->scanner);

	if (rig_session(&g, "192.0.2.10", 40000, SG_TLS_PASSTHROUGH, fds, &sa, err, sizeof(err)))
		die("session A: %s", err);
	a_vm.fd = fds[SIDE_VM];
	a_mx.fd = fds[SIDE_MX];
	if (rig_session(&g, "192.0.2.11", 40001, SG_TLS_PASSTHROUGH, fds, &sb, err, sizeof(err)))
		die("session B: %s", err);
	b_vm.fd = fds[SIDE_VM];
	b_mx.fd = fds[SIDE_MX];
	if (pthread_create(&worker, NULL, worker_thread, &g) ||
	    pthread_getcpuclockid(worker, &worker_clock))
		die("the worker's thread: %s", strerror(errno));

	greet(&a_vm, &a_mx);
	exchange(&a_vm, &a_mx, "MAIL FROM:<a@example.org>", "250 2.1.0 Ok");
	exchange(&a_vm, &a_mx, "RCPT TO:<b@example.net>", "250 2.1.5 Ok");
	exchange(&a_vm, &a_mx, "DATA", "354 End data with <CR><LF>.<CR><LF>");
	greet(&b_vm, &b_mx);

	lat_idle = calloc(idle, sizeof(*lat_idle));
	lat_busy = calloc(MAX_SAMPLES, sizeof(*lat_busy));
	total = sizeof(HEADER) - 1 + body + 3;
	data = malloc(total);
	if (!lat_idle || !lat_busy || !data)
		die("out of memory");
	memcpy(data, HEADER, sizeof(HEADER) - 1);
	for (size_t i = 0; i < body; i += 4)
		memcpy(data + sizeof(HEADER) - 1 + i, "ab\r\n", 4);
	memcpy(data + total - 3, ".\r\n", 3);

	/* B's round trips with the worker idle */
	for (; n_idle < idle; n_idle++) {
		t_noop = sg_now_ns();
		send_all(&b_vm, "NOOP\r\n", 6);
		expect(&b_mx, "NOOP");
		send_all(&b_mx, "250 2.0.0 Ok\r\n", 14);
		expect(&b_vm, "250 2.0.0 Ok");
		lat_idle[n_idle] = sg_now_ns() - t_noop;
	}

	/* A's body, B's round trips meanwhile; A's MX reads raw from here */
	a_mx.len = 0;
	t0 = sg_now_ns();
	cpu0 = cpu_ns(worker_clock);
	send_all(&b_vm, "NOOP\r\n", 6);
	t_noop = sg_now_ns();
	b_sent = 1;
	while (!a_done) {
		struct pollfd p[4] = {
			{ .fd = a_vm.fd, .events = POLLIN | (sent < total ? POLLOUT : 0) },
			{ .fd = a_mx.fd, .events = POLLIN },
			{ .fd = b_vm.fd, .events = POLLIN },
			{ .fd = b_mx.fd, .events = POLLIN },
		};

		if (poll(p, 4, 10000) <= 0)
			die("nothing moved for 10 s (%zu of %zu body bytes sent)", sent, body);
		if (p[0].revents & POLLOUT) {
			ssize_t n = send(a_vm.fd, data + sent, total - sent, MSG_NOSIGNAL);

			if (n > 0)
				sent += (size_t)n;
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			/* the MX of A takes the body; at the dot, it answers */
			ssize_t n = read(a_mx.fd, a_mx.buf, sizeof(a_mx.buf));

			if (n <= 0)
				die("the MX of A's connection ended");
			for (ssize_t i = 0; i < n; i++) {
				memmove(tail, tail + 1, 4);
				tail[4] = a_mx.buf[i];
			}
			if (!memcmp(tail, "\r\n.\r\n", 5))
				send_all(&a_mx, "250 2.0.0 Ok: queued\r\n", 22);
		}
		if (p[0].revents & POLLIN) {
			if (fill(&a_vm))
				die("the VM of A's connection ended");
			if (take_line(&a_vm, line, sizeof(line))) {
				if (strncmp(line, "250 ", 4))
					die("the VM of A got \"%s\" for its message", line);
				a_done = 1;
				t_end = sg_now_ns();
			}
		}
		if (p[3].revents & POLLIN) {
			if (fill(&b_mx))
				die("the MX of B's connection ended");
			while (take_line(&b_mx, line, sizeof(line))) {
				send_all(&b_mx, "250 2.0.0 Ok\r\n", 14);
				b_answered++;
			}
		}
		if (p[2].revents & POLLIN) {
			if (fill(&b_vm))
				die("the VM of B's connection ended");
			while (take_line(&b_vm, line, sizeof(line))) {
				uint64_t now = sg_now_ns();

				if (n_busy < MAX_SAMPLES)
					lat_busy[n_busy++] = now - t_noop;
				b_got++;
				send_all(&b_vm, "NOOP\r\n", 6);
				t_noop = sg_now_ns();
				b_sent++;
			}
		}
	}
	cpu1 = cpu_ns(worker_clock);

	/* B's last NOOP is answered; then both say QUIT */
	for (; b_answered < b_sent; b_answered++) {
		expect(&b_mx, "NOOP");
		send_all(&b_mx, "250 2.0.0 Ok\r\n", 14);
	}
	for (; b_got < b_sent; b_got++)
		expect(&b_vm, "250 2.0.0 Ok");
	exchange(&a_vm, &a_mx, "QUIT", "221 2.0.0 Bye");
	exchange(&b_vm, &b_mx, "QUIT", "221 2.0.0 Bye");
	atomic_store(&worker_stop, 1);
	pthread_join(worker, NULL);
	for (int i = 0; i < 2; i++) {
		close(i ? b_vm.fd : a_vm.fd);
		close(i ? b_mx.fd : a_mx.fd);
	}
	rig_stop(&g);

	printf("# scan_fairness: %d body rules that never match; session A sends a %zu-byte body "
	       "of 4-byte lines while session B does NOOP round trips, both in one worker\n",
	       rules, body);
	printf("BENCH scan_fairness scan_16k_us=%llu (sg_scan_feed of one 16 KiB chunk: a "
	       "wake-up of the relay before the yield held the worker that long) "
	       "old_wakeup_max_ms=%llu (%d rounds of it: the VM keeping its socket full)\n",
	       (unsigned long long)(chunk_ns / 1000),
	       (unsigned long long)(OLD_ROUNDS * chunk_ns / 1000000), OLD_ROUNDS);
	printf("BENCH scan_fairness body_a wall_ms=%llu worker_cpu_ms=%llu kib_per_s=%llu\n",
	       (unsigned long long)((t_end - t0) / 1000000),
	       (unsigned long long)((cpu1 - cpu0) / 1000000),
	       (unsigned long long)((uint64_t)body * 1000000000ULL / 1024 / (t_end - t0)));
	report_latency("idle", lat_idle, n_idle);
	report_latency("during_scan", lat_busy, n_busy);
	if (n_busy)
		printf("BENCH scan_fairness noop_b during_scan max_vs_scan_16k ratio=%.2f "
		       "max_vs_old_wakeup_max ratio=%.3f\n",
		       (double)lat_busy[n_busy - 1] / (double)chunk_ns,
		       (double)lat_busy[n_busy - 1] / (double)(OLD_ROUNDS * chunk_ns));
	free(lat_idle);
	free(lat_busy);
	free(data);
	return 0;
}
#endif
