/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tcp_relay.c - the cheapest transparent TCP relay this benchmark can run:
 * the floor any transparent SMTP proxy is measured against. It does what
 * every such proxy must (take the VM's connection on the host, connect on
 * to the address the VM dialled from the VM's own address, and copy the
 * bytes both ways through userspace) and nothing else: no SMTP, no
 * scanning, no limits, no timeouts, no logging. The gap between it and
 * direct delivery is the price of the two extra TCP endpoints, the copies
 * and the wakeups; the gap between smtpguard and it is what smtpguard's own
 * work costs.
 *
 * nft TPROXY (bench/peers.sh, peer_relay_start) hands it the VM's
 * connections; one thread a worker, each with its own SO_REUSEPORT
 * listener and epoll set, level-triggered, TCP_NODELAY, 16 KiB a
 * direction.
 *
 * Usage: tcp_relay [-w WORKERS] PORT      (default: one worker a core)
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_BUF (16 * 1024)

/* one direction: bytes read from 'from' and not yet written to 'to' */
struct relay_dir {
	int from, to;
	size_t off, len;
	int eof;
	char buf[RELAY_BUF];
};

struct relay_pair {
	struct relay_dir dir[2];	/* 0: VM -> MX, 1: MX -> VM */
	int fd[2];			/* 0: VM side, 1: MX side */
	int done[2];			/* direction finished (EOF passed on) */
	uint32_t want[2];		/* the events epoll has for each side */
};

/* what an epoll entry points at: a pair's side, or NULL for the listener */
struct relay_ref {
	struct relay_pair *pair;
	int side;
};

static int one = 1;

/* the events a side waits for: reading when its buffer is empty, writing
 * when the other direction's is not; epoll is told only of a change */
static int relay_update(int ep, struct relay_pair *p, struct relay_ref refs[2])
{
	for (int side = 0; side < 2; side++) {
		struct relay_dir *in = &p->dir[side], *out = &p->dir[!side];
		struct epoll_event ev = { .data.ptr = &refs[side] };

		if (!in->eof && in->len == 0)
			ev.events |= EPOLLIN;
		if (out->len > out->off)
			ev.events |= EPOLLOUT;
		if (ev.events != p->want[side]) {
			if (epoll_ctl(ep, EPOLL_CTL_MOD, p->fd[side], &ev))
				return -1;
			p->want[side] = ev.events;
		}
	}
	return 0;
}

static void relay_free(struct relay_pair *p, struct relay_ref *refs)
{
	close(p->fd[0]);
	close(p->fd[1]);
	free(refs);
	free(p);
}

/* writes what direction d holds; -1 on an error */
static int relay_flush(struct relay_pair *p, int d)
{
	struct relay_dir *dir = &p->dir[d];

	while (dir->off < dir->len) {
		ssize_t n = send(dir->to, dir->buf + dir->off, dir->len - dir->off, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		dir->off += (size_t)n;
	}
	dir->off = dir->len = 0;
	if (dir->eof && !p->done[d]) {
		shutdown(dir->to, SHUT_WR);
		p->done[d] = 1;
	}
	return 0;
}

/* moves what one side's events allow; returns 1 when the pair ended */
static int relay_step(int ep, struct relay_pair *p, struct relay_ref *refs, int side,
		      uint32_t events)
{
	struct relay_dir *in = &p->dir[side];

	if (events & EPOLLOUT && relay_flush(p, !side))
		return 1;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR) && !in->eof && in->len == 0) {
		ssize_t n = read(in->from, in->buf, sizeof(in->buf));

		if (n > 0)
			in->len = (size_t)n;
		else if (n == 0)
			in->eof = 1;
		else if (errno != EAGAIN && errno != EINTR)
			return 1;
		if (relay_flush(p, side))
			return 1;
	}
	if (p->done[0] && p->done[1])
		return 1;
	return relay_update(ep, p, refs) ? 1 : 0;
}

static void relay_accept(int ep, int listener)
{
	for (;;) {
		struct sockaddr_storage vm, mx;
		socklen_t vm_len = sizeof(vm), mx_len = sizeof(mx);
		int fd = accept4(listener, (struct sockaddr *)&vm, &vm_len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct relay_pair *p;
		struct relay_ref *refs;
		int up;

		if (fd < 0)
			return;
		/* under TPROXY the accepted socket's own address is the MX's */
		if (getsockname(fd, (struct sockaddr *)&mx, &mx_len)) {
			close(fd);
			continue;
		}
		up = socket(vm.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (up < 0) {
			close(fd);
			continue;
		}
		((struct sockaddr_in *)&vm)->sin_port = 0;
		if (setsockopt(up, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) ||
		    bind(up, (struct sockaddr *)&vm, vm_len) ||
		    (connect(up, (struct sockaddr *)&mx, mx_len) && errno != EINPROGRESS)) {
			close(up);
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		p = calloc(1, sizeof(*p));
		refs = calloc(2, sizeof(*refs));
		if (!p || !refs) {
			free(p);
			free(refs);
			close(up);
			close(fd);
			continue;
		}
		p->fd[0] = fd;
		p->fd[1] = up;
		p->dir[0] = (struct relay_dir){ .from = fd, .to = up };
		p->dir[1] = (struct relay_dir){ .from = up, .to = fd };
		for (int side = 0; side < 2; side++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &refs[side] };

			p->want[side] = EPOLLIN;
			refs[side] = (struct relay_ref){ .pair = p, .side = side };
			epoll_ctl(ep, EPOLL_CTL_ADD, p->fd[side], &ev);
		}
	}
}

static void *relay_worker(void *arg)
{
	int port = *(int *)arg, ep = epoll_create1(EPOLL_CLOEXEC);
	int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, events[64];

	if (ep < 0 || listener < 0 ||
	    setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    setsockopt(listener, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) ||
	    bind(listener, (struct sockaddr *)&any, sizeof(any)) || listen(listener, 4096) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev)) {
		fprintf(stderr, "tcp_relay: cannot listen on port %d: %s\n", port, strerror(errno));
		exit(1);
	}
	for (;;) {
		int n = epoll_wait(ep, events, 64, -1);

		for (int i = 0; i < n; i++) {
			struct relay_ref *ref = events[i].data.ptr;

			if (!ref) {
				relay_accept(ep, listener);
				continue;
			}
			/* refs[0] is the start of the pair's ref array */
			if (relay_step(ep, ref->pair, ref - ref->side, ref->side,
				       events[i].events)) {
				struct relay_pair *p = ref->pair;
				struct relay_ref *refs = ref - ref->side;

				/* the pair's other side may still be in this batch */
				for (int j = i + 1; j < n; j++)
					if (events[j].data.ptr == &refs[!ref->side])
						events[j].data.ptr = NULL, events[j].events = 0;
				relay_free(p, refs);
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long workers = sysconf(_SC_NPROCESSORS_ONLN);
	int opt, port;
	char *end;

	while ((opt = getopt(argc, argv, "w:")) != -1) {
		if (opt != 'w')
			goto usage;
		workers = strtol(optarg, &end, 10);
		if (*end || workers < 1 || workers > 64) {
			fprintf(stderr, "tcp_relay: -w '%s': want 1 to 64 workers\n", optarg);
			return 2;
		}
	}
	if (optind != argc - 1)
		goto usage;
	port = (int)strtol(argv[optind], &end, 10);
	if (*end || port < 1 || port > 65535) {
		fprintf(stderr, "tcp_relay: port '%s': want 1 to 65535\n", argv[optind]);
		return 2;
	}
	for (long i = 1; i < workers; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, relay_worker, &port)) {
			fprintf(stderr, "tcp_relay: cannot start worker %ld\n", i);
			return 1;
		}
	}
	relay_worker(&port);
	return 0;
usage:
	fprintf(stderr, "usage: tcp_relay [-w WORKERS] PORT\n");
	return 2;
}
