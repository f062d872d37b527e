/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tunnel.c - passthrough after STARTTLS: the TLS session between the VM and
 * the MX is not the proxy's to read, so its bytes move both ways, opaque,
 * until each side ends. Three movers (tls_mover): copy (read(2)/send(2)
 * through the session's buffers), splice (splice(2) through a pipe per
 * direction: the bytes never reach userspace) and sockmap (tunnel_sockmap.c:
 * the kernel redirects each segment to the other socket).
 *
 * A side's end (FIN) is passed on with shutdown(SHUT_WR) only once every
 * byte that came before it has gone out, so a half-close works and no byte
 * is lost; the session ends when both directions have ended. Bytes the
 * relay read before the tunnel began (in vm_in/mx_in) go first.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include "log.h"
#include "relay.h"
#include "tunnel_sockmap.h"

#define SG_TUNNEL_PIPE	(256 * 1024)	/* splice: asked of each pipe */
#define SG_TUNNEL_ROUNDS 32		/* per wake-up and direction; epoll comes back */

static struct sg_buf *dir_buf(struct session *s, int from)
{
	return from == SIDE_VM ? &s->vm_in : &s->mx_in;
}

static int *eof_of(struct session *s, int side)
{
	return side == SIDE_VM ? &s->vm_eof : &s->mx_eof;
}

/* Bytes of this direction still held by the proxy. */
static size_t held(const struct session *s, int from)
{
	const struct sg_buf *b = from == SIDE_VM ? &s->vm_in : &s->mx_in;

	return b->len + s->tunnel[from].in_pipe;
}

int tunnel_flush(struct session *s, int from)
{
	struct sg_buf *b = dir_buf(s, from);

	while (b->len) {
		ssize_t n = send(s->fd[!from], b->data, b->len, MSG_NOSIGNAL);

		if (n > 0) {
			memmove(b->data, b->data + n, b->len - (size_t)n);
			b->len -= (size_t)n;
			s->written_bytes[!from] += (uint64_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			return 0;
		} else if (n < 0 && errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/* What a read (or a splice in) of n bytes from `from` means: counted, the
 * end, or nothing more for now; -1 on an error. *held: where the bytes
 * now wait (the buffer or the pipe). */
static int took(struct session *s, int from, ssize_t n, size_t *held_now, int *ready)
{
	if (n > 0) {
		*held_now = (size_t)n;
		s->tunnel_bytes[from] += (uint64_t)n;
	} else if (n == 0) {
		*eof_of(s, from) = 1;
	} else if (errno == EAGAIN) {
		*ready = 0;
	} else if (errno != EINTR) {
		return -1;
	}
	return 0;
}

static int copy_dir(struct session *s, int from, int ready)
{
	struct sg_buf *b = dir_buf(s, from);
	int *eof = eof_of(s, from);

	for (int i = 0; i < SG_TUNNEL_ROUNDS; i++) {
		ssize_t n;

		if (tunnel_flush(s, from))
			return -1;
		/* read again only once all is out: a slow reader slows its writer */
		if (b->len || *eof || !ready)
			return 0;
		n = read(s->fd[from], b->data, b->cap);
		if (took(s, from, n, &b->len, &ready))
			return -1;
	}
	return 0;
}

static int splice_dir(struct session *s, int from, int ready)
{
	struct tunnel_dir *d = &s->tunnel[from];
	int *eof = eof_of(s, from);

	if (tunnel_flush(s, from))
		return -1;
	if (dir_buf(s, from)->len)
		return 0;
	for (int i = 0; i < SG_TUNNEL_ROUNDS; i++) {
		ssize_t n;

		while (d->in_pipe) {
			n = splice(d->pipe[0], NULL, s->fd[!from], NULL, d->in_pipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->in_pipe -= (size_t)n;
				s->written_bytes[!from] += (uint64_t)n;
			} else if (n < 0 && errno == EAGAIN)
				return 0;	/* the other side is full: EPOLLOUT */
			else if (n < 0 && errno != EINTR)
				return -1;
		}
		if (*eof || !ready)
			return 0;
		n = splice(s->fd[from], NULL, d->pipe[1], NULL, SG_TUNNEL_PIPE,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (took(s, from, n, &d->in_pipe, &ready))
			return -1;
	}
	return 0;
}

static void close_pipes(struct session *s)
{
	for (int from = 0; from < 2; from++) {
		for (int i = 0; i < 2; i++) {
			if (s->tunnel[from].pipe[i] >= 0)
				close(s->tunnel[from].pipe[i]);
			s->tunnel[from].pipe[i] = -1;
		}
	}
}

int tunnel_start(struct session *s)
{
	int one = 1;

	/* the endpoints' segments go on as they come (no Nagle wait here) */
	for (int side = 0; side < 2; side++)
		setsockopt(s->fd[side], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->tunnel_started = 1;
	s->tunnel_mover = s->cfg->tls_mover;
	for (int from = 0; from < 2; from++) {
		s->tunnel[from] = (struct tunnel_dir){ .pipe = { -1, -1 } };
		/* what SMTP read of this side; the rest is the tunnel's */
		s->inspected_bytes[from] = s->read_bytes[from] - dir_buf(s, from)->len;
		s->tunnel_bytes[from] = dir_buf(s, from)->len;
	}
	if (s->tunnel_mover == SG_MOVER_SPLICE) {
		for (int from = 0; from < 2; from++) {
			if (pipe2(s->tunnel[from].pipe, O_NONBLOCK | O_CLOEXEC)) {
				/* out of descriptors: the copy mover needs none */
				sg_warn("session %s -> %s: no pipe for splice (%s); this tunnel "
					"copies", s->vm_name, s->mx_name, strerror(errno));
				close_pipes(s);
				s->tunnel_mover = SG_MOVER_COPY;
				break;
			}
			/* as large as allowed: fewer wake-ups (a failure keeps 64 KiB) */
			fcntl(s->tunnel[from].pipe[1], F_SETPIPE_SZ, SG_TUNNEL_PIPE);
		}
	} else if (s->tunnel_mover == SG_MOVER_SOCKMAP && sg_sockmap_tunnel_add(s)) {
		s->tunnel_mover = SG_MOVER_COPY;
	}
	sg_debug("session %s -> %s: STARTTLS passed through (%s mover); %llu + %llu bytes "
		 "were inspected before it", s->vm_name, s->mx_name,
		 sg_tls_mover_name(s->tunnel_mover),
		 (unsigned long long)s->inspected_bytes[SIDE_VM],
		 (unsigned long long)s->inspected_bytes[SIDE_MX]);
	return 0;
}

enum relay_result tunnel_run(struct session *s, int vm_ready, int mx_ready)
{
	int ready[2] = { vm_ready, mx_ready };

	if (s->tunnel_mover == SG_MOVER_SOCKMAP)
		return sg_sockmap_tunnel_run(s, vm_ready, mx_ready);
	for (int from = SIDE_VM; from <= SIDE_MX; from++) {
		struct tunnel_dir *d = &s->tunnel[from];
		int failed = s->tunnel_mover == SG_MOVER_SPLICE ? splice_dir(s, from, ready[from]) :
								 copy_dir(s, from, ready[from]);

		if (failed) {
			sg_debug("session %s -> %s: tunnel: %s", s->vm_name, s->mx_name,
				 strerror(errno));
			return RELAY_END;
		}
		/* every byte before the end went out: pass the end on */
		if (*eof_of(s, from) && !held(s, from) && !d->shut) {
			shutdown(s->fd[!from], SHUT_WR);
			d->shut = 1;
		}
	}
	return s->tunnel[SIDE_VM].shut && s->tunnel[SIDE_MX].shut ? RELAY_END : RELAY_CONTINUE;
}

uint32_t tunnel_interest(const struct session *s, int side)
{
	uint32_t ev = 0;

	if (s->tunnel_mover == SG_MOVER_SOCKMAP)
		return sg_sockmap_tunnel_interest(s, side);
	/* this side's bytes: read only when none are held */
	if (!(side == SIDE_VM ? s->vm_eof : s->mx_eof) && !held(s, side))
		ev |= EPOLLIN | EPOLLRDHUP;
	/* the other side's bytes, held for this one */
	if (held(s, !side))
		ev |= EPOLLOUT;
	return ev;
}

void tunnel_release(struct session *s)
{
	if (!s->tunnel_started)
		return;
	if (s->tunnel_mover == SG_MOVER_SPLICE)
		close_pipes(s);
	else if (s->tunnel_mover == SG_MOVER_SOCKMAP)
		sg_sockmap_tunnel_remove(s);
	s->tunnel_started = 0;
}
