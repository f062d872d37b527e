/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * smtp_tls.c - the two ends of the STARTTLS benchmark (bench/tls.sh):
 * smtp-source and smtp-sink speak no TLS, so this is both.
 *
 *   smtp_tls sink ADDR PORT CERT KEY
 *       an MX that offers STARTTLS (thread per connection), accepts every
 *       message and forgets it.
 *   smtp_tls send ADDR PORT SESSIONS SECONDS SIZE [handshakes]
 *       SESSIONS parallel clients for SECONDS, each delivering SIZE-byte
 *       messages one per connection: EHLO, STARTTLS, a full handshake,
 *       EHLO, MAIL, RCPT, DATA, QUIT. With "handshakes", each connection
 *       stops after the handshake (QUIT): TLS handshakes per second.
 *       Prints "BENCH done=N seconds=S per_second=R failed=F".
 *   smtp_tls tunnel-sink ADDR PORT
 *       an MX that answers STARTTLS with 220 and then counts the bytes that
 *       follow (no TLS: a passthrough tunnel cannot tell), until EOF; it
 *       answers the count and closes.
 *   smtp_tls tunnel ADDR PORT BYTES
 *       EHLO, STARTTLS, then BYTES opaque bytes and a half-close; waits for
 *       the sink's count. Prints "BENCH bytes=N seconds=S gbit_per_s=G"
 *       and fails unless the sink counted every byte.
 *
 * Certificates are not verified (the benchmark measures cost, not trust).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

struct conn {
	int fd;
	SSL *ssl;
	char buf[8192];
	size_t len;
};

static SSL_CTX *ctx;
static struct sockaddr_storage target;
static socklen_t target_len;
static double deadline;
static size_t message_size;
static int handshakes_only;
static atomic_ulong done, failed;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int conn_write(struct conn *c, const char *data, size_t n)
{
	while (n) {
		ssize_t w = c->ssl ? SSL_write(c->ssl, data, (int)n) : write(c->fd, data, n);

		if (w <= 0)
			return -1;
		data += w;
		n -= (size_t)w;
	}
	return 0;
}

static int conn_fill(struct conn *c)
{
	ssize_t r;

	if (c->len == sizeof(c->buf))
		return -1;
	r = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len)) :
		     read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (r <= 0)
		return -1;
	c->len += (size_t)r;
	return 0;
}

/* One line (through LF) into line; -1 at EOF or on an error. */
static int conn_line(struct conn *c, char *line, size_t max)
{
	for (;;) {
		char *lf = memchr(c->buf, '\n', c->len);

		if (lf) {
			size_t n = (size_t)(lf - c->buf) + 1;

			if (n >= max)
				return -1;
			memcpy(line, c->buf, n);
			line[n] = '\0';
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			return 0;
		}
		if (conn_fill(c))
			return -1;
	}
}

/* A whole reply; its code, or -1. */
static int conn_reply(struct conn *c)
{
	char line[1024];

	do {
		if (conn_line(c, line, sizeof(line)) || strlen(line) < 4)
			return -1;
	} while (line[3] == '-');
	return atoi(line);
}

static int say(struct conn *c, const char *text)
{
	return conn_write(c, text, strlen(text));
}

static int command(struct conn *c, const char *cmd, int want)
{
	return conn_write(c, cmd, strlen(cmd)) || conn_reply(c) != want ? -1 : 0;
}

/* ------------------------------------------------------------------ send */

static int one_session(const char *body, size_t body_len)
{
	struct conn c = { .fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0) };
	int one = 1, ret = -1;

	if (c.fd < 0)
		return -1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c.fd, (struct sockaddr *)&target, target_len) || conn_reply(&c) != 220 ||
	    command(&c, "EHLO bench.example.org\r\n", 250) || command(&c, "STARTTLS\r\n", 220))
		goto out;
	c.ssl = SSL_new(ctx);
	if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1 || SSL_connect(c.ssl) != 1)
		goto out;
	if (handshakes_only) {
		ret = command(&c, "QUIT\r\n", 221);
		goto out;
	}
	if (command(&c, "EHLO bench.example.org\r\n", 250) ||
	    command(&c, "MAIL FROM:<bench@example.org>\r\n", 250) ||
	    command(&c, "RCPT TO:<u@example.net>\r\n", 250) || command(&c, "DATA\r\n", 354) ||
	    conn_write(&c, body, body_len) || command(&c, ".\r\n", 250) ||
	    command(&c, "QUIT\r\n", 221))
		goto out;
	ret = 0;
out:
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	close(c.fd);
	return ret;
}

static void *sender(void *arg)
{
	char *body = malloc(message_size + 64);
	size_t len = 0;

	(void)arg;
	if (!body)
		return NULL;
	len = (size_t)snprintf(body, 64, "Subject: bench\r\n\r\n");
	while (len + 80 < message_size) {
		memset(body + len, 'x', 76);
		memcpy(body + len + 76, "\r\n", 2);
		len += 78;
	}
	while (now_s() < deadline) {
		if (one_session(body, len) == 0)
			atomic_fetch_add(&done, 1);
		else
			atomic_fetch_add(&failed, 1);
	}
	free(body);
	return NULL;
}

/* ------------------------------------------------------------------ sink */

static void *serve(void *arg)
{
	struct conn c = { .fd = (int)(long)arg };
	char line[2048];

	if (say(&c, "220 sink.example.net ESMTP bench\r\n"))
		goto out;
	for (;;) {
		const char *reply;

		if (conn_line(&c, line, sizeof(line)))
			break;
		if (!strncasecmp(line, "EHLO", 4)) {
			reply = c.ssl ? "250-sink.example.net\r\n250 PIPELINING\r\n" :
				"250-sink.example.net\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
		} else if (!strncasecmp(line, "STARTTLS", 8) && !c.ssl) {
			if (say(&c, "220 2.0.0 go ahead\r\n"))
				break;
			c.ssl = SSL_new(ctx);
			if (!c.ssl || SSL_set_fd(c.ssl, c.fd) != 1 || SSL_accept(c.ssl) != 1)
				break;
			c.len = 0;
			continue;
		} else if (!strncasecmp(line, "DATA", 4)) {
			if (say(&c, "354 go\r\n"))
				break;
			do {
				if (conn_line(&c, line, sizeof(line)))
					goto out;
			} while (strcmp(line, ".\r\n"));
			reply = "250 2.0.0 accepted\r\n";
		} else if (!strncasecmp(line, "QUIT", 4)) {
			say(&c, "221 bye\r\n");
			break;
		} else {
			reply = "250 2.0.0 ok\r\n";
		}
		if (conn_write(&c, reply, strlen(reply)))
			break;
	}
out:
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	close(c.fd);
	return NULL;
}

/* ---------------------------------------------------------------- tunnel */

#define TUNNEL_CHUNK (256 * 1024)

static void *count_bytes(void *arg)
{
	struct conn c = { .fd = (int)(long)arg };
	char line[1024], *chunk = malloc(TUNNEL_CHUNK);
	unsigned long long total;
	ssize_t n;

	if (!chunk || say(&c, "220 sink.example.net ESMTP bench\r\n") ||
	    conn_line(&c, line, sizeof(line)) ||
	    say(&c, "250-sink.example.net\r\n250 STARTTLS\r\n") ||
	    conn_line(&c, line, sizeof(line)) || say(&c, "220 2.0.0 go ahead\r\n"))
		goto out;
	total = c.len;	/* opaque bytes read along with the STARTTLS line */
	while ((n = read(c.fd, chunk, TUNNEL_CHUNK)) > 0)
		total += (unsigned long long)n;
	snprintf(line, sizeof(line), "%llu\n", total);
	conn_write(&c, line, strlen(line));
out:
	free(chunk);
	close(c.fd);
	return NULL;
}

static int run_tunnel(long long bytes)
{
	struct conn c = { .fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0) };
	char *chunk = calloc(1, TUNNEL_CHUNK), line[64];
	long long left = bytes;
	double t0;

	if (c.fd < 0 || !chunk || connect(c.fd, (struct sockaddr *)&target, target_len) ||
	    conn_reply(&c) != 220 || command(&c, "EHLO bench.example.org\r\n", 250) ||
	    command(&c, "STARTTLS\r\n", 220)) {
		fprintf(stderr, "smtp_tls: no STARTTLS dialogue with the tunnel sink\n");
		return 1;
	}
	t0 = now_s();
	while (left > 0) {
		ssize_t w = write(c.fd, chunk, left > TUNNEL_CHUNK ? TUNNEL_CHUNK : (size_t)left);

		if (w <= 0) {
			perror("smtp_tls: write");
			return 1;
		}
		left -= w;
	}
	shutdown(c.fd, SHUT_WR);
	if (conn_line(&c, line, sizeof(line)) || atoll(line) != bytes) {
		fprintf(stderr, "smtp_tls: the sink counted %s bytes of %lld\n", line, bytes);
		return 1;
	}
	t0 = now_s() - t0;
	printf("BENCH bytes=%lld seconds=%.3f gbit_per_s=%.2f\n", bytes, t0,
	       (double)bytes * 8 / t0 / 1e9);
	free(chunk);
	close(c.fd);
	return 0;
}

static int parse_addr(const char *addr, const char *port)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)&target;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&target;

	memset(&target, 0, sizeof(target));
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)atoi(port));
		target_len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)atoi(port));
		target_len = sizeof(*a6);
		return 0;
	}
	fprintf(stderr, "smtp_tls: '%s' is not an IPv4 or IPv6 address\n", addr);
	return -1;
}

/* tls: the message sink (else the tunnel sink) */
static int run_sink(char **argv, int tls)
{
	int one = 1, fd;

	ctx = tls ? SSL_CTX_new(TLS_server_method()) : NULL;
	if (tls && (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[4]) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, argv[5], SSL_FILETYPE_PEM) != 1)) {
		fprintf(stderr, "smtp_tls: loading %s / %s failed\n", argv[4], argv[5]);
		return 1;
	}
	fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&target, target_len) || listen(fd, 4096)) {
		perror("smtp_tls: listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		pthread_t t;

		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (pthread_create(&t, NULL, tls ? serve : count_bytes, (void *)(long)c)) {
			close(c);
			continue;
		}
		pthread_detach(t);
	}
}

static int run_send(int argc, char **argv)
{
	int sessions = atoi(argv[4]);
	double seconds = atof(argv[5]), t0, elapsed;
	pthread_t *threads;

	message_size = (size_t)atol(argv[6]);
	handshakes_only = argc > 7 && !strcmp(argv[7], "handshakes");
	if (sessions < 1 || sessions > 1000 || seconds <= 0) {
		fprintf(stderr, "smtp_tls: SESSIONS 1..1000 and SECONDS > 0\n");
		return 2;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return 1;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* a full handshake each time, as an MTA without a session cache */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	threads = calloc((size_t)sessions, sizeof(*threads));
	t0 = now_s();
	deadline = t0 + seconds;
	for (int i = 0; i < sessions; i++)
		pthread_create(&threads[i], NULL, sender, NULL);
	for (int i = 0; i < sessions; i++)
		pthread_join(threads[i], NULL);
	elapsed = now_s() - t0;
	printf("BENCH done=%lu seconds=%.2f per_second=%.0f failed=%lu\n",
	       (unsigned long)done, elapsed, (double)done / elapsed, (unsigned long)failed);
	free(threads);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 6 && !strcmp(argv[1], "sink"))
		return parse_addr(argv[2], argv[3]) ? 2 : run_sink(argv, 1);
	if (argc >= 4 && !strcmp(argv[1], "tunnel-sink"))
		return parse_addr(argv[2], argv[3]) ? 2 : run_sink(argv, 0);
	if (argc >= 5 && !strcmp(argv[1], "tunnel"))
		return parse_addr(argv[2], argv[3]) ? 2 : run_tunnel(atoll(argv[4]));
	if (argc >= 7 && !strcmp(argv[1], "send"))
		return parse_addr(argv[2], argv[3]) ? 2 : run_send(argc, argv);
	fprintf(stderr, "usage: smtp_tls sink ADDR PORT CERT KEY\n"
			"       smtp_tls send ADDR PORT SESSIONS SECONDS SIZE [handshakes]\n"
			"       smtp_tls tunnel-sink ADDR PORT\n"
			"       smtp_tls tunnel ADDR PORT BYTES\n");
	return 2;
}
