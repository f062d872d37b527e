/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tunnel_sockmap.c - the sockmap mover (see tunnel_sockmap.h). The kernel's
 * pitfalls, each handled here (../shared/KERNEL-NOTES.md):
 *  - an empty (FIN) segment must not be redirected: the program passes it;
 *  - the end is not passed on by the kernel: userspace sees it (the TCP
 *    state), and shuts the other side's sending only once every byte this
 *    side received has been given to the other side (received since the
 *    start == acked + queued there since the start, less what userspace
 *    gave it itself); shutting earlier would cut bytes still in the psock
 *    backlog;
 *  - bytes queued before the sockets went into the map are not run through
 *    the program: the sockets go in before the VM is told 220, while
 *    neither peer has anything to send (the VM waits for the 220, the MX
 *    for the ClientHello), and what the relay had read already is sent
 *    from userspace first;
 *  - the backlog can sit for seconds: the watchdog wakes it (a write-space
 *    event on the stuck socket), and ends the session, logged, when it does
 *    not move for SG_SOCKMAP_GIVE_UP_NS.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "log.h"
#include "tunnel.skel.h"
#include "tunnel_sockmap.h"

/* TCP states in which the peer's FIN has arrived (include/net/tcp_states.h) */
enum { ST_TIME_WAIT = 6, ST_CLOSE = 7, ST_CLOSE_WAIT = 8, ST_LAST_ACK = 9, ST_CLOSING = 11 };

#define SG_SOCKMAP_KICK_SNDBUF	(4 * 1024 * 1024)
#define SG_SOCKMAP_GIVE_UP_NS	(10ULL * 1000000000ULL)

static struct tunnel *skel;
static int socks_fd = -1, peers_fd = -1;

int sg_sockmap_init(char *err, size_t errlen)
{
	int ret;

	/* loaded already: by the proxy process before it gave up CAP_BPF */
	if (skel)
		return 0;
	skel = tunnel__open_and_load();
	if (!skel) {
		snprintf(err, errlen, "loading the sk_skb redirect program failed: %s (the "
			 "kernel needs sockmap support: CONFIG_BPF_STREAM_PARSER)", strerror(errno));
		return -1;
	}
	socks_fd = bpf_map__fd(skel->maps.tunnel_socks);
	peers_fd = bpf_map__fd(skel->maps.tunnel_peers);
	ret = bpf_prog_attach(bpf_program__fd(skel->progs.tunnel_verdict), socks_fd,
			      BPF_SK_SKB_STREAM_VERDICT, 0);
	if (ret) {
		snprintf(err, errlen, "attaching the stream verdict to the tunnel SOCKHASH "
			 "failed: %s", strerror(errno));
		sg_sockmap_exit();
		return -1;
	}
	return 0;
}

void sg_sockmap_exit(void)
{
	tunnel__destroy(skel);
	skel = NULL;
	socks_fd = peers_fd = -1;
}

static struct sg_buf *dir_buf(struct session *s, int from)
{
	return from == SIDE_VM ? &s->vm_in : &s->mx_in;
}

static struct sg_buf *out_buf(struct session *s, int to)
{
	return to == SIDE_VM ? &s->vm_out : &s->mx_out;
}

/* What a socket has received, and what it has been given to send (acked or
 * still queued); *fin once the peer's FIN has arrived. */
static int tcp_counts(int fd, uint64_t *received, uint64_t *given, int *fin)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int outq = 0;

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) || ioctl(fd, SIOCOUTQ, &outq))
		return -1;
	*fin = ti.tcpi_state == ST_CLOSE_WAIT || ti.tcpi_state == ST_LAST_ACK ||
	       ti.tcpi_state == ST_CLOSING || ti.tcpi_state == ST_TIME_WAIT ||
	       ti.tcpi_state == ST_CLOSE;
	/* the peer's FIN takes a sequence number: it is counted as a byte */
	*received = ti.tcpi_bytes_received - (*fin && ti.tcpi_bytes_received ? 1 : 0);
	*given = ti.tcpi_bytes_acked + (uint64_t)outq;
	return 0;
}

int sg_sockmap_tunnel_add(struct session *s)
{
	socklen_t len = sizeof(uint64_t);
	int fin;

	for (int side = 0; side < 2; side++) {
		if (getsockopt(s->fd[side], SOL_SOCKET, SO_COOKIE, &s->tunnel[side].cookie, &len)) {
			sg_warn("session %s -> %s: no socket cookie (%s); this tunnel copies",
				s->vm_name, s->mx_name, strerror(errno));
			return -1;
		}
	}
	/* baselines, while neither peer sends (see the top of this file); what
	 * the relay owes a side, and what it read and not yet passed on, go
	 * out from userspace, on top of what the kernel moves */
	for (int from = 0; from < 2; from++) {
		struct tunnel_dir *d = &s->tunnel[from];
		uint64_t unused;

		if (tcp_counts(s->fd[from], &d->recv_base, &unused, &fin) ||
		    tcp_counts(s->fd[!from], &unused, &d->sent_base, &fin)) {
			sg_warn("session %s -> %s: TCP_INFO failed (%s); this tunnel copies",
				s->vm_name, s->mx_name, strerror(errno));
			return -1;
		}
		d->leftover = dir_buf(s, from)->len;
		d->extra = out_buf(s, !from)->len + d->leftover;
	}
	for (int side = 0; side < 2; side++) {
		if (bpf_map_update_elem(peers_fd, &s->tunnel[side].cookie,
					&s->tunnel[!side].cookie, BPF_ANY))
			goto fail;
	}
	for (int side = 0; side < 2; side++) {
		uint64_t fd = (uint64_t)s->fd[side];	/* an 8-byte value: the fd as u64 */

		if (bpf_map_update_elem(socks_fd, &s->tunnel[side].cookie, &fd, BPF_ANY))
			goto fail;
	}
	return 0;
fail:
	sg_warn("session %s -> %s: the tunnel's sockets did not go into the SOCKHASH (%s); "
		"this tunnel copies", s->vm_name, s->mx_name, strerror(errno));
	sg_sockmap_tunnel_remove(s);
	return -1;
}

/* Received on `from` since the start, less what its peer has been given
 * (by the kernel); *fin: the peer of `from` has ended. */
static int direction_lag(struct session *s, int from, uint64_t *lag, int *fin)
{
	struct tunnel_dir *d = &s->tunnel[from];
	uint64_t received, given, unused;
	int unused_fin;

	if (tcp_counts(s->fd[from], &received, &unused, fin) ||
	    tcp_counts(s->fd[!from], &unused, &given, &unused_fin))
		return -1;
	received -= d->recv_base;
	given -= d->sent_base + d->extra;
	*lag = received > given ? received - given : 0;
	s->tunnel_bytes[from] = d->leftover + received;
	return 0;
}

enum relay_result sg_sockmap_tunnel_run(struct session *s, int vm_ready, int mx_ready)
{
	(void)vm_ready;
	(void)mx_ready;
	s->tunnel_waiting = 0;
	for (int from = SIDE_VM; from <= SIDE_MX; from++) {
		struct tunnel_dir *d = &s->tunnel[from];
		uint64_t lag;
		int fin;

		if (tunnel_flush(s, from))
			return RELAY_END;
		if (d->shut)
			continue;
		if (direction_lag(s, from, &lag, &fin))
			return RELAY_END;
		d->lag = lag;
		if (!fin)
			continue;
		*(from == SIDE_VM ? &s->vm_eof : &s->mx_eof) = 1;
		if (lag || dir_buf(s, from)->len) {
			s->tunnel_waiting = 1;	/* the kernel's backlog still holds some */
			continue;
		}
		shutdown(s->fd[!from], SHUT_WR);
		d->shut = 1;
	}
	return s->tunnel[SIDE_VM].shut && s->tunnel[SIDE_MX].shut ? RELAY_END : RELAY_CONTINUE;
}

uint32_t sg_sockmap_tunnel_interest(const struct session *s, int side)
{
	uint32_t ev = 0;

	/* the kernel moves the bytes: userspace waits for the end only */
	if (!(side == SIDE_VM ? s->vm_eof : s->mx_eof))
		ev |= EPOLLRDHUP;
	if ((side == SIDE_VM ? s->mx_in.len : s->vm_in.len))
		ev |= EPOLLOUT;
	return ev;
}

int tunnel_watchdog(struct session *s, uint64_t now)
{
	uint64_t moved = s->tunnel_bytes[0] + s->tunnel_bytes[1];

	if (!s->tunnel_started || s->tunnel_mover != SG_MOVER_SOCKMAP)
		return 0;
	/* the bytes move without waking the worker: activity is their count */
	for (int from = SIDE_VM; from <= SIDE_MX; from++) {
		uint64_t lag;
		int fin;

		direction_lag(s, from, &lag, &fin);
	}
	if (s->tunnel_bytes[0] + s->tunnel_bytes[1] != moved)
		s->last_active_ns = now;
	for (int from = SIDE_VM; from <= SIDE_MX; from++) {
		struct tunnel_dir *d = &s->tunnel[from];
		uint64_t before = d->lag, lag;
		int fin, size = SG_SOCKMAP_KICK_SNDBUF;

		if (d->shut || direction_lag(s, from, &lag, &fin))
			continue;
		d->lag = lag;
		if (!lag || lag != before) {
			d->stalled_since_ns = 0;
			continue;
		}
		if (!d->stalled_since_ns)
			d->stalled_since_ns = now;
		if (now - d->stalled_since_ns > SG_SOCKMAP_GIVE_UP_NS) {
			sg_err("session %s -> %s: sockmap tunnel stuck: %llu bytes from the %s have "
			       "not reached the %s for %llus despite %u wake-ups; session ended",
			       s->vm_name, s->mx_name, (unsigned long long)lag,
			       from == SIDE_VM ? "VM" : "MX", from == SIDE_VM ? "MX" : "VM",
			       (unsigned long long)(SG_SOCKMAP_GIVE_UP_NS / 1000000000ULL), d->kicks);
			return 1;
		}
		/* a larger send buffer is a write-space event: the psock's
		 * backlog runs again */
		setsockopt(s->fd[!from], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		d->kicks++;
		sg_info("session %s -> %s: sockmap tunnel: %llu bytes waiting; woke the kernel's "
			"backlog", s->vm_name, s->mx_name, (unsigned long long)lag);
	}
	return 0;
}

void sg_sockmap_tunnel_remove(struct session *s)
{
	for (int side = 0; side < 2; side++) {
		if (!s->tunnel[side].cookie)
			continue;
		bpf_map_delete_elem(socks_fd, &s->tunnel[side].cookie);
		bpf_map_delete_elem(peers_fd, &s->tunnel[side].cookie);
	}
}
