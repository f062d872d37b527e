/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * listener.c - a worker's transparent listeners (see worker.h): each
 * connection the classifier steered here is a VM's to an MX; it is
 * accepted, looked up in the policy once, and its upstream leg connected
 * from the VM's own address (IP_TRANSPARENT) or the provider's delivery
 * address. Out of descriptors, the VM is told to come back later.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "log.h"
#include "parse.h"
#include "tls.h"
#include "worker.h"

#define SG_LISTEN_BACKLOG 4096

static int set_transparent(int fd, int family)
{
	int one = 1;

	if (family == AF_INET6)
		return setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
	return setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
}

int listener_open(int family)
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
	if (set_transparent(fd, family) || sg_tenancy_listener(fd, family) || bind(fd, (struct sockaddr *)&ss, len) ||
	    listen(fd, SG_LISTEN_BACKLOG)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
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
static const struct sockaddr_storage *upstream_source(const struct sg_generation *g,
						      const struct sockaddr_storage *vm,
						      const struct sg_policy *policy)
{
	const struct sockaddr_storage *relay = &g->relay_addr[vm->ss_family == AF_INET6];

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
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));	/* see accept_sessions */
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
		listener_pause(w, 0);
	}
	if (now - w->fd_warning_ns > 10000000000ULL) {
		w->fd_warning_ns = now;
		sg_warn("worker %d: out of file descriptors (RLIMIT_NOFILE): new sessions get "
			"421 until some end; raise the daemon's limit (2 descriptors a session, 6 "
			"while TLS passes through by splice)",
			w->index);
	}
	return fd >= 0 ? 0 : -1;
}

/*
 * A sender holds no more sessions than its rate class's session limit
 * (without feedback, as in the relay's tests: default_max_sessions),
 * across the workers: over it, the session is answered 421 and counted
 * (smtpguardctl show), and logged at most once a minute a worker.
 */
int session_admit(struct worker *w, struct session *s)
{
	uint32_t max;
	uint64_t now;
	char reply[160];

	sg_feedback_sender(w->proxy->feedback, &s->vm_addr, s->policy.rate_class, &s->sender,
			   &max);
	if (!w->proxy->feedback)
		max = s->cfg->default_max_sessions;
	if (sg_sources_enter(w->proxy->sources, &s->sender, max) == 0) {
		s->sender_counted = 1;
		return 0;
	}
	sg_feedback_note(w->proxy->feedback, &s->vm_addr, SG_FB_SESSION_REFUSED, 0);
	now = sg_now_ns();
	if (now - w->limit_warning_ns > 60000000000ULL) {
		char who[64];

		w->limit_warning_ns = now;
		sg_format_source(&s->sender, 0, who, sizeof(who));
		sg_warn("worker %d: %s holds %u sessions, its rate class's limit: more are "
			"refused with 421 (logged once a minute)", w->index, who, max);
	}
	snprintf(reply, sizeof(reply), "421 4.7.0 smtpguard: too many concurrent sessions from "
		 "this sender (the limit is %u); try again later\r\n", max);
	s->end = "session_limit";
	s->connecting = 0;
	relay_close(s, reply);
	return -1;
}

/* The session's tenant, by its address or the interface it came in on;
 * its tenant limits; the sender's tenant remembered for the ladder. */
static void session_tenant(struct worker *w, struct session *s, int fd)
{
	struct sg_tenants *t = s->generation->tenants;

	if (!t)
		return;
	sg_tenant_of_sender(w->proxy->maps, t, &s->vm_addr,
			    sg_tenancy_ifindex(fd, &s->vm_addr, w->proxy->maps), s->tenant,
			    sizeof(s->tenant));
	s->tenant_limits = sg_tenant_limits(t, s->tenant);
}

static void accept_sessions(struct worker *w, int listen_fd)
{
	for (;;) {
		struct sockaddr_storage vm, mx;
		socklen_t vm_len = sizeof(vm), mx_len = sizeof(mx);
		int one = 1;
		char vm_s[64], mx_s[64];
		const struct sockaddr_storage *src;
		struct session *s;
		int upstream_errno, admitted;
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
		/* the relay writes what it has read, a batch at a time: with
		 * Nagle's algorithm the short tail of one write waits for the ACK
		 * of the one before, which the peer delays (40 ms) while it waits
		 * for the rest: a BDAT chunk's last bytes, a reply. Both legs. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		s->fd[SIDE_VM] = fd;
		s->generation = generation_get(w->proxy);
		s->cfg = &s->generation->cfg;
		s->scanner = &s->generation->scanner;
		vm_policy(w->proxy, &vm, &s->policy);
		s->tls = w->proxy->tls;
		s->tls_mode = session_tls_mode(w->proxy, s->policy.tls_mode, vm_s);
		s->vm_addr = vm;
		/* s->vm_addr only: the upstream connection binds vm */
		sg_feedback_port(w->proxy->feedback, &s->vm_addr, &mx);
		session_tenant(w, s, fd);
		admitted = session_admit(w, s) == 0;
		if (s->generation->tenants)
			sg_tenancy_note_sender(w->proxy->tenancy, &s->sender, s->tenant);
		src = upstream_source(s->generation, &vm, &s->policy);
		if (src && admitted)
			s->fd[SIDE_MX] = connect_upstream(src, vm_len, &mx, mx_len);
		else
			s->fd[SIDE_MX] = -1;
		upstream_errno = errno;
		s->feedback = w->proxy->feedback;
		s->tenancy = w->proxy->tenancy;
		s->behaviour = w->proxy->behaviour;
		s->mx_addr = mx;
		snprintf(s->vm_name, sizeof(s->vm_name), "%s", vm_s);
		snprintf(s->mx_name, sizeof(s->mx_name), "%s", mx_s);
		s->started_ns = s->last_active_ns = sg_now_ns();
		session_adopt(w, s);
		s->watch[SIDE_VM].fd = fd;
		if (sg_loop_watch(w->loop, &s->watch[SIDE_VM], EPOLLRDHUP))
			sg_warn("worker %d: session %s -> %s: watching the VM's socket failed: %s",
				w->index, vm_s, mx_s, strerror(errno));
		if (!admitted) {
			session_run(w, s, 1, 0);	/* its 421, then the drain */
			continue;
		}
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
		s->connect_deadline_ns = sg_now_ns() + s->cfg->connect_timeout_ns;
		sg_debug("worker %d: session %s -> %s", w->index, vm_s, mx_s);
		s->watch[SIDE_MX].fd = s->fd[SIDE_MX];
		if (sg_loop_watch(w->loop, &s->watch[SIDE_MX], EPOLLOUT)) {
			sg_warn("session %s -> %s: watching the upstream socket failed: %s", vm_s,
				mx_s, strerror(errno));
			session_tempfail(w, s, strerror(errno));
		}
	}
}

void listener_ready(struct sg_watch *watch, uint32_t events)
{
	(void)events;
	accept_sessions(watch->ctx, watch->fd);
}

void listener_pause(struct worker *w, int listening)
{
	for (int f = 0; f < 2; f++)
		if (w->listen_fd[f] >= 0)
			sg_loop_watch(w->loop, &w->listen_watch[f], listening ? EPOLLIN : 0);
	w->accept_paused = !listening;
}

