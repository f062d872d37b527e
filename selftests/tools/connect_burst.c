// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * connect_burst - offers new TCP connections at a paced rate, for measuring
 * smtpguard's per-source SYN rate limit from inside a lab VM.
 *
 *   connect_burst [-r RATE] [-d SECONDS] [-H HOLD_MS] [-s SRC] ADDR PORT
 *
 * Starts one non-blocking connect() every 1/RATE seconds (absolute pacing,
 * so a late wake-up does not lower the rate) for SECONDS seconds, to ADDR
 * (IPv4 or IPv6) port PORT. Each socket is closed HOLD_MS (default 200) after
 * its connect() with SO_LINGER {1, 0}: an abortive close, so an unanswered
 * SYN is never retransmitted (the first retransmission is at 1 s) and an
 * established connection leaves no TIME_WAIT. Exactly one SYN per attempt.
 *
 * Before closing it records what became of the attempt: connected (the
 * handshake completed), refused (an RST came back), pending (no answer:
 * the SYN was dropped), failed (connect() itself failed, e.g. no ports).
 * Prints one line:
 *   attempted=N connected=N refused=N pending=N failed=N elapsed_ms=N
 * Exit status 0, or 2 for bad arguments or a setup error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NSEC_PER_SEC 1000000000ULL

struct pending {
	int fd;
	uint64_t close_at;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = {
		.tv_sec = (time_t)(t / NSEC_PER_SEC),
		.tv_nsec = (long)(t % NSEC_PER_SEC),
	};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: connect_burst [-r RATE/s] [-d SECONDS] [-H HOLD_MS] [-s SRCADDR] ADDR PORT\n");
}

static int parse_num(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_addr(const char *s, unsigned short port, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -1;
}

struct counts {
	unsigned long attempted, connected, refused, pending, failed;
};

/* Classifies what became of the attempt on fd, then aborts it. */
static void finish(int fd, struct counts *c)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int err = 0;
	socklen_t elen = sizeof(err);

	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err == 0)
			c->connected++;
		else if (err == ECONNREFUSED || err == ECONNRESET)
			c->refused++;
		else
			c->failed++;
	} else {
		c->pending++;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

int main(int argc, char **argv)
{
	double rate = 100, seconds = 5, hold_ms = 200, port_d;
	const char *src = NULL;
	struct sockaddr_storage dst, srcaddr;
	socklen_t dstlen, srclen = 0;
	struct counts c = { 0 };
	struct pending *q;
	size_t qcap, qhead = 0, qtail = 0;
	uint64_t interval, hold, start, next, total;
	struct rlimit rl;
	int opt;

	while ((opt = getopt(argc, argv, "r:d:H:s:h")) != -1) {
		switch (opt) {
		case 'r':
			if (parse_num(optarg, 0.001, 1e6, &rate)) {
				fprintf(stderr, "connect_burst: bad rate '%s' (connections per second, >0)\n",
					optarg);
				return 2;
			}
			break;
		case 'd':
			if (parse_num(optarg, 0.001, 86400, &seconds)) {
				fprintf(stderr, "connect_burst: bad duration '%s' (seconds, >0)\n", optarg);
				return 2;
			}
			break;
		case 'H':
			if (parse_num(optarg, 0, 60000, &hold_ms)) {
				fprintf(stderr, "connect_burst: bad hold time '%s' (ms)\n", optarg);
				return 2;
			}
			break;
		case 's':
			src = optarg;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage();
		return 2;
	}
	if (parse_num(argv[optind + 1], 1, 65535, &port_d)) {
		fprintf(stderr, "connect_burst: bad port '%s'\n", argv[optind + 1]);
		return 2;
	}
	if (parse_addr(argv[optind], (unsigned short)port_d, &dst, &dstlen)) {
		fprintf(stderr, "connect_burst: bad address '%s' (IPv4 or IPv6 literal)\n",
			argv[optind]);
		return 2;
	}
	if (src) {
		if (parse_addr(src, 0, &srcaddr, &srclen) || srcaddr.ss_family != dst.ss_family) {
			fprintf(stderr, "connect_burst: bad source address '%s'\n", src);
			return 2;
		}
	}

	interval = (uint64_t)((double)NSEC_PER_SEC / rate);
	if (interval == 0)
		interval = 1;
	hold = (uint64_t)(hold_ms * 1e6);
	total = (uint64_t)(seconds * rate + 0.5);
	/* At most hold/interval + 1 sockets are open at once. */
	qcap = (size_t)(hold / interval) + 16;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < qcap + 64) {
		rl.rlim_cur = rl.rlim_max < qcap + 64 ? rl.rlim_max : qcap + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	q = calloc(qcap, sizeof(*q));
	if (!q) {
		fprintf(stderr, "connect_burst: out of memory\n");
		return 2;
	}

	start = now_ns();
	next = start;
	while (c.attempted < total || qhead != qtail) {
		uint64_t now = now_ns(), wake;

		/* close what has been held long enough */
		while (qhead != qtail && q[qhead % qcap].close_at <= now) {
			finish(q[qhead % qcap].fd, &c);
			qhead++;
		}
		if (c.attempted < total && next <= now) {
			int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

			c.attempted++;
			next = start + c.attempted * interval;
			if (fd < 0) {
				c.failed++;
			} else if ((srclen && bind(fd, (struct sockaddr *)&srcaddr, srclen) < 0) ||
				   (connect(fd, (struct sockaddr *)&dst, dstlen) < 0 &&
				    errno != EINPROGRESS)) {
				if (errno == ECONNREFUSED)
					c.refused++;
				else
					c.failed++;
				close(fd);
			} else if (qtail - qhead >= qcap) {
				/* cannot happen with the capacity above; be safe */
				finish(fd, &c);
			} else {
				q[qtail % qcap].fd = fd;
				q[qtail % qcap].close_at = now_ns() + hold;
				qtail++;
			}
			continue;
		}
		wake = UINT64_MAX;
		if (c.attempted < total)
			wake = next;
		if (qhead != qtail && q[qhead % qcap].close_at < wake)
			wake = q[qhead % qcap].close_at;
		if (wake != UINT64_MAX)
			sleep_until(wake);
	}
	printf("attempted=%lu connected=%lu refused=%lu pending=%lu failed=%lu elapsed_ms=%llu\n",
	       c.attempted, c.connected, c.refused, c.pending, c.failed,
	       (unsigned long long)((now_ns() - start) / 1000000ULL));
	free(q);
	return 0;
}
