/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* proxy.c - transparent relay workers (see proxy.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "log.h"
#include "parse.h"
#include "events.h"
#include "proxy.h"
#include "scanner.h"
#include "session.h"
#include "tls.h"
#include "tunnel_sockmap.h"

#define SG_RELAY_BUF	16384	/* per direction: two per session */
#define SG_LISTEN_BACKLOG 4096
#define SG_MAX_EVENTS	64
#define SG_MAX_SPARE	64	/* sessions' memory kept for reuse, per worker (4 MB) */

enum side { SIDE_VM = 0, SIDE_MX = 1 };

struct worker {
	struct sg_proxy *proxy;
	int index;
	int epfd;
	int stop_fd;
	int timer_fd;
	int recheck_fd;		/* sockmap tunnels whose end waits for its bytes: soon again */
	int recheck_armed;
	int listen_fd[2];	/* IPv4, IPv6 */
	uint64_t fd_warning_ns;
	int accept_paused;	/* out of descriptors even with the reserve: until the tick */
	struct session *sessions;
	struct session *closed;		/* ended in this batch: events may still name them */
	struct session *spare;		/* ended sessions' memory, for the next ones */
	unsigned int n_spare;
	pthread_t thread;
	int started;
};

struct sg_proxy {
	struct sg_config cfg;
	struct sg_patterns *patterns;
	struct sg_scanner scanner;	/* its engines: the patterns, if any */
	struct sg_feedback *feedback;
	struct sg_tls *tls;
	uint64_t no_cert_warning_ns;	/* terminate asked without a certificate: last logged */
	const struct sg_maps *maps;
	/* one descriptor held back for the whole process (the workers share
	 * the descriptor table): given up to answer a VM when they run out */
	pthread_mutex_t reserve_lock;
	int reserve_fd;
	struct sockaddr_storage relay_addr[2];	/* source mode relay-ip: IPv4, IPv6; family 0: none */
	int listeners_map;
	int n;
	struct worker *workers;
};

static int set_transparent(int fd, int family)
{
	int one = 1;

	if (family == AF_INET6)
		return setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
	return setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
}

static int make_listener(int family)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int one = 1;
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	/* without IP_TRANSPARENT the SYN is taken but no SYN-ACK ever leaves:
	 * its source, the MX's address, is not local */
	if (set_transparent(fd, family) || bind(fd, (struct sockaddr *)&ss, len) ||
	    listen(fd, SG_LISTEN_BACKLOG)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int ep_ctl(struct worker *w, int op, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(w->epfd, op, fd, &ev);
}

/* Bytes the socket has not had acknowledged yet (sent or not). */
static int unsent_bytes(int fd)
{
	int n = 0;

	return ioctl(fd, SIOCOUTQ, &n) ? 1 : n;
}

/* Ends a session: its sockets close now; the memory goes after the event
 * batch, as a later event of the same batch may still point at it. */
static void session_free(struct worker *w, struct session *s)
{
	if (s->closed)
		return;
	if (!s->connecting && (s->commands || s->end)) {
		sg_event_session(s);
		sg_feedback_session(s->feedback, &s->vm_addr,
				    s->tunnel_started || s->tls_phase == TLS_ON, !s->tunnel_started);
	}
	tunnel_release(s);
	for (int i = 0; i < 2; i++) {
		int peer_closed = i == SIDE_VM ? s->vm_eof : s->mx_eof;
		int reset = 0;

		if (s->fd[i] < 0)
			continue;
		/* close() takes it out of the epoll set (never dup'ed) */
		if (!peer_closed && (i == SIDE_MX || unsent_bytes(s->fd[i]) == 0)) {
			/* a reset, not a FIN: no TIME_WAIT of the proxied 4-tuple
			 * stays on the host (see relay.c, begin_drain) */
			struct linger hard = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(s->fd[i], SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
			reset = 1;
		}
		if (s->ssl[i]) {
			if (!reset && s->tls_phase == TLS_ON && !s->tls_fatal[i])
				SSL_shutdown(s->ssl[i]);	/* close_notify, not waited for */
			SSL_free(s->ssl[i]);
			s->ssl[i] = NULL;
		}
		close(s->fd[i]);
		s->fd[i] = -1;
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->closed = 1;
	s->prev = NULL;
	s->next = w->closed;
	w->closed = s;
}

static void reap_closed(struct worker *w)
{
	while (w->closed) {
		struct session *s = w->closed;

		w->closed = s->next;
		if (w->n_spare < SG_MAX_SPARE) {
			s->next = w->spare;
			w->spare = s;
			w->n_spare++;
		} else {
			free(s);
		}
	}
}

/* A session's memory: reused when a spare is at hand (a session is larger
 * than malloc's mmap threshold would like churned at every connection). */
static struct session *session_alloc(struct worker *w)
{
	struct session *s = w->spare;

	if (s) {
		w->spare = s->next;
		w->n_spare--;
	} else {
		s = malloc(sizeof(*s));
		if (!s)
			return NULL;
	}
	session_clear(s);
	return s;
}

static void free_spares(struct worker *w)
{
	while (w->spare) {
		struct session *s = w->spare;

		w->spare = s->next;
		free(s);
	}
	w->n_spare = 0;
}

#define SG_RECHECK_NS 2000000	/* a sockmap tunnel's end, waiting for the backlog */

/* Re-arms a socket only when what the relay waits for has changed: one
 * epoll_ctl less per socket and wake-up in the common case. */
static void session_update(struct worker *w, struct session *s)
{
	if (s->closed)
		return;
	if (s->tunnel_waiting && !w->recheck_armed) {
		struct itimerspec soon = { .it_value = { 0, SG_RECHECK_NS } };

		if (timerfd_settime(w->recheck_fd, 0, &soon, NULL) == 0)
			w->recheck_armed = 1;
	}
	for (int side = SIDE_VM; side <= SIDE_MX; side++) {
		uint32_t want = relay_interest(s, side);

		if (s->fd[side] < 0 || want == s->armed[side])
			continue;
		if (s->unwatched[side]) {
			/* closed both ways: back only to read what it still has
			 * (each wake-up then moves bytes or reaches its end) */
			if (!(want & EPOLLIN))
				continue;
			ep_ctl(w, EPOLL_CTL_ADD, s->fd[side], want, &s->ep[side]);
			s->unwatched[side] = 0;
		} else {
			ep_ctl(w, EPOLL_CTL_MOD, s->fd[side], want, &s->ep[side]);
		}
		s->armed[side] = want;
	}
}

/* The MX could not be reached: the VM's MTA gets a temporary failure and
 * keeps the message queued, as it would for an unreachable MX. */
static void session_run(struct worker *w, struct session *s, int vm_ready, int mx_ready);

/* The MX could not be reached: the VM's MTA gets a temporary failure and
 * keeps the message queued, as it would for an unreachable MX. */
static void session_tempfail(struct worker *w, struct session *s, const char *why)
{
	char reply[160];

	snprintf(reply, sizeof(reply), "421 4.4.1 smtpguard: the MX is not reachable (%s); "
		 "try again later\r\n", why);
	s->end = "mx_unreachable";
	snprintf(s->end_detail, sizeof(s->end_detail), "%s", why);
	s->connecting = 0;
	relay_close(s, reply);
	session_run(w, s, 1, 0);
}

/* The upstream connect ended: writable alone means it succeeded (a
 * failed one always reports EPOLLERR), so SO_ERROR is asked only then. */
static void session_connected(struct worker *w, struct session *s, uint32_t events)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (events & (EPOLLERR | EPOLLHUP)) {
		if (getsockopt(s->fd[SIDE_MX], SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
		session_tempfail(w, s, strerror(err ? err : ECONNRESET));
		return;
	}
	s->connecting = 0;
	relay_start(s);
	session_run(w, s, 1, 1);
}

/* Bytes that moved: what idleness is measured by (a wake-up that moved
 * nothing, an error reported again, is not activity). */
static uint64_t session_progress(const struct session *s)
{
	return s->read_bytes[0] + s->read_bytes[1] + s->written_bytes[0] + s->written_bytes[1] +
	       s->tunnel_bytes[0] + s->tunnel_bytes[1];
}

static void session_run(struct worker *w, struct session *s, int vm_ready, int mx_ready)
{
	uint64_t before = session_progress(s);
	enum tls_phase phase = s->tls_phase;

	if (relay_run(s, vm_ready, mx_ready) == RELAY_END) {
		session_free(w, s);
		return;
	}
	/* a handshake's bytes are OpenSSL's: its steps count instead */
	if (session_progress(s) != before || s->tls_phase != phase)
		s->last_active_ns = sg_now_ns();
	session_update(w, s);
}

static void session_event(struct worker *w, struct session_ep *ep, uint32_t events)
{
	struct session *s = ep->s;

	if (s->closed)
		return;
	if (s->connecting) {
		if (ep->side == SIDE_MX && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
			session_connected(w, s, events);
		} else if (ep->side == SIDE_VM && (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
			/* the VM gave up before the MX answered (RDHUP would
			 * otherwise wake the worker until the connect ends) */
			s->vm_eof = !(events & (EPOLLERR | EPOLLHUP));
			session_free(w, s);
		}
		return;
	}
	if (events & (EPOLLERR | EPOLLHUP)) {
		/*
		 * epoll reports these whatever a socket is armed for, so they
		 * are dealt with at once, never left to fire again: what the
		 * side still had is read and relayed (a reply the VM is owed).
		 * A reset side, or a VM gone both ways from a plain session,
		 * ends it. Otherwise (a tunnel's side closed both ways, bytes
		 * still to move) the socket leaves the epoll set, and comes
		 * back when the relay wants to read it again (session_update).
		 */
		session_run(w, s, ep->side == SIDE_VM, ep->side == SIDE_MX);
		if (s->closed)
			return;
		if ((events & EPOLLERR) || (ep->side == SIDE_VM && !s->tunnel_started)) {
			session_free(w, s);
			return;
		}
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd[ep->side], NULL);
		s->unwatched[ep->side] = 1;
		s->armed[ep->side] = 0;
		session_update(w, s);
		return;
	}
	{
		int ready = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;

		session_run(w, s, ep->side == SIDE_VM && ready, ep->side == SIDE_MX && ready);
	}
}

static void format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	int port;

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
		snprintf(buf, len, "[%s]:%d", a, port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
		snprintf(buf, len, "%s:%d", a, port);
	}
}

/* Where the upstream leg comes from: the VM's own address and port (source
 * mode transparent: the MX sees the VM, and no host-chosen port can collide
 * with a flow of the VM's that is not proxied), or the provider's delivery
 * address (relay-ip) with a port of the host's choosing. NULL: relay-ip
 * without a delivery address of the VM's family. */
static const struct sockaddr_storage *upstream_source(const struct sg_proxy *proxy,
						      const struct sockaddr_storage *vm,
						      const struct sg_policy *policy)
{
	const struct sockaddr_storage *relay = &proxy->relay_addr[vm->ss_family == AF_INET6];

	if (policy->source_mode != SG_SOURCE_RELAY_IP)
		return vm;
	return relay->ss_family ? relay : NULL;
}

/* The VM's policy, once a session: its source mode, rate class and TLS
 * mode. */
static void vm_policy(const struct sg_proxy *proxy, const struct sockaddr_storage *vm,
		      struct sg_policy *policy)
{
	const __u8 *addr = vm->ss_family == AF_INET6 ?
		(const __u8 *)&((const struct sockaddr_in6 *)vm)->sin6_addr :
		(const __u8 *)&((const struct sockaddr_in *)vm)->sin_addr;

	sg_policy_lookup(proxy->maps, addr, vm->ss_family == AF_INET6, policy);
}

/* The TLS mode that can apply: terminate needs the provider's certificate;
 * without one the session's TLS passes through (the VM's mail still goes
 * out, encrypted, uninspected), and the operator hears of it. */
static int session_tls_mode(struct sg_proxy *proxy, int wanted, const char *vm)
{
	uint64_t now, last;

	if (wanted != SG_TLS_TERMINATE || sg_tls_can_terminate(proxy->tls))
		return wanted;
	now = sg_now_ns();
	last = __atomic_load_n(&proxy->no_cert_warning_ns, __ATOMIC_RELAXED);
	/* the workers race for it: one of them logs */
	if (now - last > 60000000000ULL &&
	    __atomic_compare_exchange_n(&proxy->no_cert_warning_ns, &last, now, 0, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED)) {
		sg_err("session %s: its policy says --tls terminate, but no tls_cert_file and "
		       "tls_key_file are configured: its TLS passes through uninspected (logged "
		       "once a minute)", vm);
	}
	return SG_TLS_PASSTHROUGH;
}

/* The upstream leg, from src (see upstream_source) to the original
 * destination. */
static int connect_upstream(const struct sockaddr_storage *src, socklen_t src_len,
			    const struct sockaddr_storage *mx, socklen_t mx_len)
{
	int one = 1, fd = socket(src->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* transparent: the source need not be an address of the host's */
	if (set_transparent(fd, src->ss_family))
		goto fail;
	if (bind(fd, (const struct sockaddr *)src, src_len)) {
		/* the port is held here (a TIME_WAIT of an earlier session): the
		 * same address with a port of the host's choosing */
		struct sockaddr_storage any = *src;

		if (any.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&any)->sin6_port = 0;
		else
			((struct sockaddr_in *)&any)->sin_port = 0;
		if (bind(fd, (const struct sockaddr *)&any, src_len))
			goto fail;
	}
	if (connect(fd, (const struct sockaddr *)mx, mx_len) && errno != EINPROGRESS)
		goto fail;
	return fd;
fail:
	{
		int e = errno;

		close(fd);
		errno = e;
	}
	return -1;
}

#define SG_BUSY_REPLY "421 4.3.2 smtpguard: this host has too many SMTP sessions open; " \
		      "try again later\r\n"

/*
 * Out of descriptors: the connection waiting in the accept queue would keep
 * the listener readable (epoll would wake the worker in a loop) and leave
 * the VM without a greeting. The reserve descriptor is given up to take it
 * off the queue, tell the VM to come back later, and close it.
 */
static int refuse_over_limit(struct worker *w, int listen_fd)
{
	struct sg_proxy *proxy = w->proxy;
	uint64_t now = sg_now_ns();
	int fd;

	pthread_mutex_lock(&proxy->reserve_lock);
	if (proxy->reserve_fd >= 0) {
		close(proxy->reserve_fd);
		proxy->reserve_fd = -1;
	}
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		struct linger hard = { .l_onoff = 1, .l_linger = 0 };

		if (send(fd, SG_BUSY_REPLY, sizeof(SG_BUSY_REPLY) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			sg_debug("telling the VM the host is busy failed: %s", strerror(errno));
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
		close(fd);
	}
	proxy->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pthread_mutex_unlock(&proxy->reserve_lock);
	if (fd < 0) {
		/* another thread took the freed descriptor: stop listening until
		 * the next tick rather than wake on the queued connection */
		for (int f = 0; f < 2; f++)
			ep_ctl(w, EPOLL_CTL_MOD, w->listen_fd[f], 0, &w->listen_fd[f]);
		w->accept_paused = 1;
	}
	if (now - w->fd_warning_ns > 10000000000ULL) {
		w->fd_warning_ns = now;
		sg_warn("worker %d: out of file descriptors (RLIMIT_NOFILE): new sessions get "
			"421 until some end; raise the daemon's limit (2 descriptors a session)",
			w->index);
	}
	return fd >= 0 ? 0 : -1;
}

static void accept_sessions(struct worker *w, int listen_fd)
{
	for (;;) {
		struct sockaddr_storage vm, mx;
		socklen_t vm_len = sizeof(vm), mx_len = sizeof(mx);
		char vm_s[64], mx_s[64];
		const struct sockaddr_storage *src;
		struct session *s;
		int upstream_errno;
		int fd = accept4(listen_fd, (struct sockaddr *)&vm, &vm_len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			if (refuse_over_limit(w, listen_fd))
				return;	/* not even the reserve freed one */
			continue;
		}
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				sg_warn("worker %d: accept failed: %s", w->index, strerror(errno));
			return;
		}
		/* a transparent socket's local address is the original destination */
		getsockname(fd, (struct sockaddr *)&mx, &mx_len);
		format_addr(&vm, vm_s, sizeof(vm_s));
		format_addr(&mx, mx_s, sizeof(mx_s));
		s = session_alloc(w);
		if (!s) {
			close(fd);
			continue;
		}
		s->fd[SIDE_VM] = fd;
		vm_policy(w->proxy, &vm, &s->policy);
		s->tls = w->proxy->tls;
		s->tls_mode = session_tls_mode(w->proxy, s->policy.tls_mode, vm_s);
		src = upstream_source(w->proxy, &vm, &s->policy);
		if (src)
			s->fd[SIDE_MX] = connect_upstream(src, vm_len, &mx, mx_len);
		else
			s->fd[SIDE_MX] = -1;
		upstream_errno = errno;
		s->ep[SIDE_VM] = (struct session_ep){ s, SIDE_VM };
		s->ep[SIDE_MX] = (struct session_ep){ s, SIDE_MX };
		s->cfg = &w->proxy->cfg;
		s->scanner = &w->proxy->scanner;
		s->feedback = w->proxy->feedback;
		s->vm_addr = vm;
		s->mx_addr = mx;
		snprintf(s->vm_name, sizeof(s->vm_name), "%s", vm_s);
		snprintf(s->mx_name, sizeof(s->mx_name), "%s", mx_s);
		s->started_ns = s->last_active_ns = sg_now_ns();
		s->next = w->sessions;
		if (w->sessions)
			w->sessions->prev = s;
		w->sessions = s;
		ep_ctl(w, EPOLL_CTL_ADD, s->fd[SIDE_VM], EPOLLRDHUP, &s->ep[SIDE_VM]);
		s->armed[SIDE_VM] = EPOLLRDHUP;
		if (!src) {
			sg_err("session %s -> %s: the sender's policy has source mode relay-ip, but "
			       "no relay_ip%s is configured; the VM is told to retry later", vm_s,
			       mx_s, vm.ss_family == AF_INET6 ? "6" : "4");
			session_tempfail(w, s, "no delivery address configured");
			continue;
		}
		if (s->fd[SIDE_MX] < 0 && (upstream_errno == EMFILE || upstream_errno == ENFILE)) {
			s->connecting = 0;
			relay_close(s, SG_BUSY_REPLY);
			session_run(w, s, 1, 0);
			continue;
		}
		if (s->fd[SIDE_MX] < 0) {
			sg_warn("session %s -> %s: connecting upstream failed: %s", vm_s, mx_s,
				strerror(upstream_errno));
			session_tempfail(w, s, strerror(upstream_errno));
			continue;
		}
		s->connecting = 1;
		s->connect_deadline_ns = sg_now_ns() + w->proxy->cfg.connect_timeout_ns;
		sg_debug("worker %d: session %s -> %s", w->index, vm_s, mx_s);
		ep_ctl(w, EPOLL_CTL_ADD, s->fd[SIDE_MX], EPOLLOUT, &s->ep[SIDE_MX]);
		s->armed[SIDE_MX] = EPOLLOUT;
	}
}

/* The worker's 1 s tick: connects, idle sessions and long sessions. */
static void expire_sessions(struct worker *w)
{
	const struct sg_config *cfg = &w->proxy->cfg;
	uint64_t now = sg_now_ns();
	struct session *s = w->sessions, *next;

	for (; s; s = next) {
		next = s->next;
		if (s->draining) {
			if (now > s->drain_deadline_ns)
				session_free(w, s);
			continue;
		}
		if (s->connecting) {
			if (now > s->connect_deadline_ns)
				session_tempfail(w, s, "connection timed out");
			continue;
		}
		if (tunnel_watchdog(s, now)) {
			session_free(w, s);
			continue;
		}
		if (relay_in_handshake(s)) {
			if (now <= s->tls_deadline_ns)
				continue;
			if (relay_tls_timeout(s))
				session_free(w, s);
			else
				session_run(w, s, 1, 0);
			continue;
		}
		if (relay_awaiting_dot_reply(s)) {
			uint64_t wait = cfg->smtp_idle_timeout_ns > SG_DOT_REPLY_TIMEOUT_NS ?
				cfg->smtp_idle_timeout_ns : SG_DOT_REPLY_TIMEOUT_NS;

			if (now - s->last_active_ns <= wait)
				continue;
		} else if (now - s->last_active_ns <= cfg->smtp_idle_timeout_ns &&
			   now - s->started_ns <= cfg->smtp_session_timeout_ns) {
			continue;
		}
		s->end = relay_awaiting_dot_reply(s) ? "dot_reply_timeout" :
			 now - s->last_active_ns > cfg->smtp_idle_timeout_ns ? "idle_timeout" :
			 "session_timeout";
		sg_info("session %s -> %s: %s", s->vm_name, s->mx_name, s->end);
		relay_close(s, "421 4.4.2 smtpguard: session timed out\r\n");
		session_run(w, s, 1, 0);
	}
}

/* smtpguardd stops: a VM in a plain SMTP session, owed no half-sent reply,
 * hears why (best effort: one non-blocking write) before its connection
 * closes; one mid-DATA reads it after its dot, and tries again later. */
static void session_goodbye(struct session *s)
{
	static const char bye[] = "421 4.3.2 smtpguard: shutting down; try again later\r\n";

	s->end = "shutdown";
	if (s->connecting || s->draining || s->tunnel_started || s->tls_phase != TLS_NONE ||
	    s->vm_out.len || s->fd[SIDE_VM] < 0)
		return;
	if (send(s->fd[SIDE_VM], bye, sizeof(bye) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		s->written_bytes[SIDE_VM] += sizeof(bye) - 1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event events[SG_MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(w->epfd, events, SG_MAX_EVENTS, -1);

		if (n < 0 && errno != EINTR) {
			sg_err("worker %d: epoll_wait failed: %s", w->index, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;

			if (p == &w->stop_fd)
				goto out;
			if (p == &w->timer_fd) {
				uint64_t ticks;

				if (read(w->timer_fd, &ticks, sizeof(ticks)) > 0)
					expire_sessions(w);
				if (w->accept_paused) {
					for (int f = 0; f < 2; f++)
						ep_ctl(w, EPOLL_CTL_MOD, w->listen_fd[f], EPOLLIN,
						       &w->listen_fd[f]);
					w->accept_paused = 0;
				}
			} else if (p == &w->recheck_fd) {
				uint64_t ticks;
				struct session *s, *next;

				if (read(w->recheck_fd, &ticks, sizeof(ticks)) < 0)
					continue;
				w->recheck_armed = 0;
				for (s = w->sessions; s; s = next) {
					next = s->next;
					if (s->tunnel_waiting)
						session_run(w, s, 0, 0);
				}
			} else if (p == &w->listen_fd[0] || p == &w->listen_fd[1]) {
				accept_sessions(w, *(int *)p);
			} else {
				session_event(w, p, events[i].events);
			}
		}
		reap_closed(w);
	}
out:
	while (w->sessions) {
		session_goodbye(w->sessions);
		session_free(w, w->sessions);
	}
	reap_closed(w);
	free_spares(w);
	return NULL;
}

static int worker_init(struct sg_proxy *proxy, struct worker *w, int index)
{
	struct itimerspec tick = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };

	w->proxy = proxy;
	w->index = index;
	w->listen_fd[0] = w->listen_fd[1] = -1;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	w->recheck_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (w->epfd < 0 || w->stop_fd < 0 || w->timer_fd < 0 || w->recheck_fd < 0 ||
	    timerfd_settime(w->timer_fd, 0, &tick, NULL)) {
		sg_err("worker %d: creating its descriptors failed: %s", index, strerror(errno));
		return -1;
	}
	for (int f = 0; f < 2; f++) {
		w->listen_fd[f] = make_listener(f ? AF_INET6 : AF_INET);
		/* a host booted without IPv6 proxies IPv4 alone */
		if (w->listen_fd[f] < 0 && f && errno == EAFNOSUPPORT) {
			if (index == 0)
				sg_warn("proxy: IPv6 is not available on this host: IPv4 "
					"sessions only");
			continue;
		}
		if (w->listen_fd[f] < 0) {
			sg_err("worker %d: a transparent IPv%d listener could not be made: %s "
			       "(IP_TRANSPARENT needs CAP_NET_ADMIN)", index, f ? 6 : 4,
			       strerror(errno));
			return -1;
		}
	}
	ep_ctl(w, EPOLL_CTL_ADD, w->stop_fd, EPOLLIN, &w->stop_fd);
	ep_ctl(w, EPOLL_CTL_ADD, w->timer_fd, EPOLLIN, &w->timer_fd);
	ep_ctl(w, EPOLL_CTL_ADD, w->recheck_fd, EPOLLIN, &w->recheck_fd);
	for (int f = 0; f < 2; f++) {
		__u32 slot = (__u32)(2 * index + f);
		__u64 value = (__u64)w->listen_fd[f];	/* an 8-byte value: fd as u64 */

		if (w->listen_fd[f] < 0)
			continue;
		ep_ctl(w, EPOLL_CTL_ADD, w->listen_fd[f], EPOLLIN, &w->listen_fd[f]);

		if (bpf_map_update_elem(proxy->listeners_map, &slot, &value, BPF_ANY)) {
			sg_err("worker %d: registering its listener in the SOCKMAP failed: %s",
			       index, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void worker_close(struct worker *w)
{
	for (int f = 0; f < 2; f++)
		if (w->listen_fd[f] >= 0)
			close(w->listen_fd[f]);	/* leaves the SOCKMAP by itself */
	if (w->started) {
		uint64_t one = 1;

		if (write(w->stop_fd, &one, sizeof(one)) < 0)
			sg_warn("worker %d: stop signal failed: %s", w->index, strerror(errno));
		pthread_join(w->thread, NULL);
	}
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	if (w->timer_fd >= 0)
		close(w->timer_fd);
	if (w->recheck_fd >= 0)
		close(w->recheck_fd);
}

/* Two descriptors a session: the soft limit a service manager leaves
 * (often 1024) would cap the proxy at a few hundred sessions. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			sg_warn("raising the descriptor limit to %llu failed: %s",
				(unsigned long long)rl.rlim_max, strerror(errno));
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	sg_info("proxy: up to about %llu concurrent sessions (RLIMIT_NOFILE %llu, 2 "
		"descriptors a session)", (unsigned long long)(rl.rlim_cur > 128 ?
							       (rl.rlim_cur - 64) / 2 : 0),
		(unsigned long long)rl.rlim_cur);
}

struct sg_proxy *sg_proxy_start(const struct sg_config *cfg, const struct sg_maps *maps)
{
	struct sg_proxy *proxy = calloc(1, sizeof(*proxy));
	struct sg_settings settings;
	__u32 zero = 0;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (!proxy)
		return NULL;
	proxy->reserve_fd = -1;
	proxy->cfg = *cfg;
	if (sg_events_open(cfg->events_file)) {
		free(proxy);
		return NULL;
	}
	if (cfg->scan_patterns[0]) {
		char err[SG_ERR_LEN * 2];

		proxy->patterns = sg_patterns_load(cfg->scan_patterns, err, sizeof(err));
		if (!proxy->patterns) {
			sg_err("%s", err);
			free(proxy);
			return NULL;
		}
		sg_info("scanner: %d pattern rule(s) from %s", sg_patterns_count(proxy->patterns),
			cfg->scan_patterns);
		sg_scanner_add(&proxy->scanner, &sg_pattern_engine, proxy->patterns);
	}
	raise_fd_limit();
	pthread_mutex_init(&proxy->reserve_lock, NULL);
	proxy->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	proxy->listeners_map = maps->listeners;
	proxy->maps = maps;
	if (cfg->relay_ip4[0]) {
		struct sockaddr_in *a = (struct sockaddr_in *)&proxy->relay_addr[0];

		a->sin_family = AF_INET;
		inet_pton(AF_INET, cfg->relay_ip4, &a->sin_addr);	/* checked by the config */
	}
	if (cfg->relay_ip6[0]) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&proxy->relay_addr[1];

		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, cfg->relay_ip6, &a->sin6_addr);
	}
	proxy->feedback = sg_feedback_new(maps, &proxy->cfg);
	if (!proxy->feedback)
		goto fail;
	{
		char err[SG_ERR_LEN * 2];

		proxy->tls = sg_tls_new(cfg, err, sizeof(err));
		if (!proxy->tls) {
			sg_err("%s", err);
			goto fail;
		}
		if (cfg->tls_mover == SG_MOVER_SOCKMAP && sg_sockmap_init(err, sizeof(err))) {
			sg_err("tls_mover = sockmap: %s", err);
			goto fail;
		}
		sg_info("proxy: TLS %s; passthrough tunnels move by %s",
			sg_tls_can_terminate(proxy->tls) ? "terminate possible (provider "
			"certificate loaded)" : "terminate not possible (no tls_cert_file)",
			sg_tls_mover_name(cfg->tls_mover));
	}
	proxy->n = cfg->proxy_workers ? cfg->proxy_workers :
		   (int)(cores > 0 ? (cores > SG_MAX_WORKERS ? SG_MAX_WORKERS : cores) : 1);
	proxy->workers = calloc((size_t)proxy->n, sizeof(*proxy->workers));
	if (!proxy->workers)
		goto fail;
	for (int i = 0; i < proxy->n; i++) {
		proxy->workers[i].epfd = proxy->workers[i].stop_fd = -1;
		proxy->workers[i].timer_fd = -1;
		proxy->workers[i].recheck_fd = -1;

		proxy->workers[i].listen_fd[0] = proxy->workers[i].listen_fd[1] = -1;
	}
	for (int i = 0; i < proxy->n; i++) {
		struct worker *w = &proxy->workers[i];

		if (worker_init(proxy, w, i))
			goto fail;
		if (pthread_create(&w->thread, NULL, worker_main, w)) {
			sg_err("worker %d: starting its thread failed", i);
			goto fail;
		}
		w->started = 1;
	}
	if (bpf_map_lookup_elem(maps->settings, &zero, &settings) == 0) {
		settings.n_workers = (__u8)proxy->n;
		bpf_map_update_elem(maps->settings, &zero, &settings, BPF_ANY);
	}
	sg_info("proxy: %d worker(s) listening; scan flows are steered to them", proxy->n);
	return proxy;
fail:
	sg_proxy_stop(proxy);
	return NULL;
}

void sg_proxy_stop(struct sg_proxy *proxy)
{
	if (!proxy)
		return;
	for (int i = 0; proxy->workers && i < proxy->n; i++)
		worker_close(&proxy->workers[i]);
	free(proxy->workers);
	if (proxy->reserve_fd >= 0)
		close(proxy->reserve_fd);
	sg_feedback_free(proxy->feedback);
	if (proxy->cfg.tls_mover == SG_MOVER_SOCKMAP)
		sg_sockmap_exit();
	sg_tls_free(proxy->tls);
	sg_patterns_free(proxy->patterns);
	sg_events_close();
	free(proxy);
}

int sg_proxy_reload_tls(struct sg_proxy *proxy, const struct sg_config *cfg)
{
	char err[SG_ERR_LEN * 2];

	if (sg_tls_reload(proxy->tls, cfg, err, sizeof(err))) {
		sg_err("reload: %s; the running TLS settings stay", err);
		return -1;
	}
	sg_info("reload: TLS certificate, key, CA, versions and ciphers reloaded (running "
		"sessions keep theirs)");
	return 0;
}
