/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * proxy_process.c - the proxy process, both sides of it (see
 * proxy_process.h). Daemon and proxy speak over a SOCK_SEQPACKET pair, one
 * struct proxy_msg a packet: READY or FAILED once the proxy started, then
 * RELOAD (the configuration, and the reopened events file as SCM_RIGHTS)
 * answered by RELOADED; DRAIN once a new proxy took its listeners' slots
 * (an upgrade in place: the daemon executed itself anew, keeping its end of
 * the pair, pid and children). The proxy ends on SIGTERM (finishing what
 * it owes), when the daemon closes its end, after a drain, or with the
 * daemon (PR_SET_PDEATHSIG).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "events.h"
#include "log.h"
#include "proxy.h"
#include "proxy_process.h"
#include "tls.h"
#include "tunnel_sockmap.h"

enum proxy_msg_type { MSG_READY = 1, MSG_FAILED, MSG_RELOAD, MSG_RELOADED, MSG_DRAIN };
enum proxy_msg_events { EVENTS_NONE, EVENTS_FD, EVENTS_KEEP };

struct proxy_msg {
	uint32_t type;		/* enum proxy_msg_type */
	int32_t status;		/* READY: its workers; RELOADED: 0, or -1 after errors (logged) */
	uint32_t events;	/* RELOAD: enum proxy_msg_events */
	struct sg_config cfg;	/* RELOAD */
};

/* A first start compiles the content rules (seconds for thousands); a
 * reload too. */
#define START_WAIT_MS	300000
#define RESTART_MIN_NS	1000000000ULL
#define RESTART_MAX_NS	30000000000ULL
/* a proxy that lived this long was healthy: its next restart is quick */
#define HEALTHY_NS	60000000000ULL

struct sg_proxy_process {
	struct sg_loop *loop;
	const struct sg_config *cfg;
	const struct sg_maps *maps;
	struct sg_identity id;
	pid_t pid;
	int sock;
	struct sg_watch watch;
	struct sg_timer restart;
	uint64_t started_ns, backoff_ns;
	int stopping;
};

static int send_msg(int sock, const struct proxy_msg *m, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)sizeof(*m) ? 0 : -1;
}

/* One packet: its size (0: the other side is gone; -1: error), *fd the
 * descriptor it carried or -1. */
static ssize_t recv_msg(int sock, struct proxy_msg *m, int *fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	ssize_t n;

	*fd = -1;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n > 0 && c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	if (n > 0 && (size_t)n != sizeof(*m)) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		errno = EPROTO;
		return -1;
	}
	return n;
}

/* ---- the proxy's side ---- */

static int keep_fd(int fd, const int *keep, int n)
{
	for (int i = 0; i < n; i++)
		if (keep[i] == fd)
			return 1;
	return fd <= STDERR_FILENO;
}

/* Nothing of the daemon's stays open in the proxy but what it needs: not
 * the instance lock, netlink, the programs or the signal descriptor. */
static void close_other_fds(const int *keep, int n)
{
	DIR *dir = opendir("/proc/self/fd");
	int fds[1024], nfds = 0;
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir)) && nfds < (int)(sizeof(fds) / sizeof(fds[0]))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && fd != dirfd(dir) && !keep_fd(fd, keep, n))
			fds[nfds++] = fd;
	}
	closedir(dir);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
}

static void answer(int sock, uint32_t type, int status)
{
	struct proxy_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return;
	m->type = type;
	m->status = status;
	send_msg(sock, m, -1);
	free(m);
}

/* The maps as the proxy holds them: the policy and the rate classes read
 * only (a tenant who took the proxy over must not rewrite anyone's policy;
 * src_bound and attachments too: a sender's interface, and its tenant),
 * the kernel's counters and overflow buckets not at all;
 * what it writes (each sender's feedback and penalty, its listeners, its
 * counters, the local counts of bulk bodies in bulk_shared) as it was. The daemon's descriptors are closed with the rest. */
static int least_maps(const char *root, const struct sg_maps *all, struct sg_maps *own)
{
	static const struct {
		const char *name;
		size_t offset;
	} readonly[] = {
		{ SG_MAP_POLICY_V4, offsetof(struct sg_maps, policy_v4) },
		{ SG_MAP_POLICY_V6, offsetof(struct sg_maps, policy_v6) },
		{ SG_MAP_RATE_CLASSES, offsetof(struct sg_maps, rate_classes) },
		{ SG_MAP_SETTINGS, offsetof(struct sg_maps, settings) },
		/* a session's interface and its tenant (proxy/tenancy.c) */
		{ SG_MAP_SRC_BOUND, offsetof(struct sg_maps, src_bound) },
		{ SG_MAP_ATTACHMENTS, offsetof(struct sg_maps, attachments) },
	};
	LIBBPF_OPTS(bpf_obj_get_opts, ro, .file_flags = BPF_F_RDONLY);

	*own = *all;
	own->stats = own->overflow_state = -1;
	/* the source check's: the proxy reads flow_sender, and deletes what
	 * it read, and src_bound read only (below) */
	own->iface_state = -1;
	for (size_t i = 0; i < sizeof(readonly) / sizeof(readonly[0]); i++) {
		char path[512];
		int fd;

		snprintf(path, sizeof(path), "%s/%s", root, readonly[i].name);
		fd = bpf_obj_get_opts(path, &ro);
		if (fd < 0)
			return -1;
		*(int *)((char *)own + readonly[i].offset) = fd;
	}
	return 0;
}

static int proxy_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -1;
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* The proxy process's life: never returns. */
static void proxy_main(const struct sg_config *start_cfg, const struct sg_maps *maps,
		       const struct sg_identity *id, int sock, int events_fd, pid_t parent)
{
	struct proxy_msg *m = malloc(sizeof(*m));
	struct sg_config *cfg = malloc(sizeof(*cfg));
	int keep[64], n, sig_fd, running = 1, drain = 0;
	struct sg_proxy *proxy;
	struct sg_maps own;
	char err[SG_ERR_LEN * 2];

	if (!m || !cfg)
		_exit(1);
	*cfg = *start_cfg;
	if (least_maps(cfg->bpffs_root, maps, &own)) {
		sg_err("proxy process: reopening the maps it reads read-only: %s", strerror(errno));
		goto failed;
	}
	maps = &own;
	n = sg_maps_fds(maps, keep, 60);
	keep[n++] = sock;
	if (events_fd >= 0)
		keep[n++] = events_fd;
	close_other_fds(keep, n);
	sig_fd = proxy_signals();
	if (sig_fd < 0) {
		sg_err("proxy process: its signal descriptor: %s", strerror(errno));
		goto failed;
	}
	/* loading the tunnels' sk_skb program needs CAP_BPF, given up next */
	if (cfg->tls_mover == SG_MOVER_SOCKMAP && sg_sockmap_init(err, sizeof(err))) {
		sg_err("tls_mover = sockmap: %s", err);
		goto failed;
	}
	if (sg_privileges_drop(id, err, sizeof(err))) {
		sg_err("%s", err);
		goto failed;
	}
	/* a change of user clears the parent-death signal: set again */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) || getppid() != parent) {
		sg_err("proxy process: the daemon is gone, or PR_SET_PDEATHSIG failed");
		goto failed;
	}
	if (id->keep_cap_bpf)
		sg_warn("proxy process: this kernel (before 5.19, kernel.unprivileged_bpf_disabled "
			"set) refuses map updates without CAP_BPF: the proxy keeps it");
	proxy = sg_proxy_start(cfg, maps, events_fd);
	if (!proxy) {
		sg_err("the proxy could not start as %s (proxy_user): the files it reads "
		       "(content_rules, ladder_allow, tls_mx_names, TLS certificate, key and CA) "
		       "must be readable by that user or its group", id->user);
		goto failed;
	}
	sg_info("proxy process %d runs as %s (uid %u, gid %u) with CAP_NET_ADMIN and "
		"CAP_NET_RAW%s only", (int)getpid(), id->user, (unsigned)id->uid,
		(unsigned)id->gid, id->keep_cap_bpf ? " and CAP_BPF" : "");
	answer(sock, MSG_READY, sg_proxy_workers(proxy));
	while (running) {
		struct pollfd p[2] = { { .fd = sig_fd, .events = POLLIN },
				       { .fd = sock, .events = POLLIN } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			sg_err("proxy process: poll: %s", strerror(errno));
			break;
		}
		if (p[0].revents) {
			struct signalfd_siginfo si;

			while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP)
					sg_warn("proxy process: SIGHUP ignored: reloads go through the "
						"daemon (send SIGHUP to its pid, %d)", (int)getppid());
				else
					running = 0;
			}
		}
		if (p[1].revents) {
			int fd;
			ssize_t got = recv_msg(sock, m, &fd);

			if (got == 0 || (got < 0 && errno != EAGAIN)) {
				/* the daemon is gone: nobody would restart or reload us */
				running = 0;
			} else if (got > 0 && m->type == MSG_RELOAD) {
				*cfg = m->cfg;
				if (m->events == EVENTS_KEEP)
					fd = SG_EVENTS_KEEP;
				else if (m->events == EVENTS_NONE && fd >= 0) {
					close(fd);
					fd = -1;
				}
				answer(sock, MSG_RELOADED, sg_proxy_reload(proxy, cfg, fd) ? -1 : 0);
			} else if (got > 0 && m->type == MSG_DRAIN) {
				drain = 1;
				running = 0;
				if (fd >= 0)
					close(fd);
			} else if (fd >= 0) {
				close(fd);
			}
		}
	}
	if (drain) {
		sg_info("proxy process %d: a new proxy took over; this one serves its sessions "
			"until they end (drain_timeout %llu s at most)", (int)getpid(),
			(unsigned long long)(cfg->drain_timeout_ns / 1000000000ULL));
		sg_proxy_drain(proxy, cfg->drain_timeout_ns);
	}
	sg_proxy_stop(proxy);
	if (drain)
		sg_info("proxy process %d: drained", (int)getpid());
	free(m);
	free(cfg);
	exit(0);
failed:
	answer(sock, MSG_FAILED, -1);
	_exit(1);
}

/* ---- the daemon's side ---- */

/* A proxy an upgrade replaced: draining, reaped when it ends. */
struct retired {
	pid_t pid;
	int sock;
	struct sg_loop *loop;
	struct sg_watch watch;
	struct retired *next;
};
static struct retired *retired_list;

static void describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended (status 0x%x)", status);
}

/* Waits for one packet for up to ms; 0 with *m filled, -1 when the proxy
 * is gone or silent. */
static int wait_msg(struct sg_proxy_process *pp, struct proxy_msg *m, int ms)
{
	uint64_t deadline = sg_now_ns() + (uint64_t)ms * 1000000ULL;

	for (;;) {
		struct pollfd p = { .fd = pp->sock, .events = POLLIN };
		uint64_t now = sg_now_ns();
		int fd, r;
		ssize_t got;

		if (now >= deadline)
			return -1;
		r = poll(&p, 1, (int)((deadline - now) / 1000000ULL) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got = recv_msg(pp->sock, m, &fd);
		if (fd >= 0)
			close(fd);
		if (got < 0 && errno == EAGAIN)
			continue;
		return got > 0 ? 0 : -1;
	}
}

static void reap(struct sg_proxy_process *pp, int block)
{
	char how[96];
	int status;
	pid_t r;

	if (!pp->pid)
		return;
	do
		r = waitpid(pp->pid, &status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r != pp->pid)
		return;
	describe_exit(status, how, sizeof(how));
	if (pp->stopping)
		sg_info("proxy process %d %s", (int)pp->pid, how);
	else
		sg_err("proxy process %d %s", (int)pp->pid, how);
	pp->pid = 0;
}

static void forget_child(struct sg_proxy_process *pp)
{
	if (pp->sock >= 0) {
		sg_loop_unwatch(pp->loop, &pp->watch);
		close(pp->sock);
		pp->sock = -1;
	}
}

static int spawn(struct sg_proxy_process *pp);

static void schedule_restart(struct sg_proxy_process *pp)
{
	uint64_t lived = sg_now_ns() - pp->started_ns;

	if (pp->stopping)
		return;
	pp->backoff_ns = lived > HEALTHY_NS || !pp->backoff_ns ? RESTART_MIN_NS :
			 pp->backoff_ns * 2 > RESTART_MAX_NS ? RESTART_MAX_NS : pp->backoff_ns * 2;
	sg_warn("the proxy restarts in %llu s; until then its flows follow fail_mode",
		(unsigned long long)(pp->backoff_ns / 1000000000ULL));
	sg_loop_timer_in(pp->loop, &pp->restart, pp->backoff_ns);
}

/* The proxy died: its end of the pair closed. */
static void on_proxy_sock(struct sg_watch *watch, uint32_t events)
{
	struct sg_proxy_process *pp = watch->ctx;
	struct proxy_msg *m = malloc(sizeof(*m));
	int fd;
	ssize_t got = m ? recv_msg(pp->sock, m, &fd) : -1;

	(void)events;
	free(m);
	if (got > 0 || (got < 0 && errno == EAGAIN)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	forget_child(pp);
	reap(pp, 1);
	schedule_restart(pp);
}

static void on_restart(struct sg_timer *timer)
{
	struct sg_proxy_process *pp = timer->ctx;

	if (spawn(pp))
		schedule_restart(pp);
}

static int spawn(struct sg_proxy_process *pp)
{
	int sv[2], events_fd = -1;
	struct proxy_msg *m;
	pid_t parent = getpid();

	if (pp->cfg->events_file[0]) {
		events_fd = sg_events_open_file(pp->cfg->events_file, pp->id.gid);
		if (events_fd < 0)
			sg_err("the proxy starts without its events file");
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		sg_err("proxy process: socketpair: %s", strerror(errno));
		if (events_fd >= 0)
			close(events_fd);
		return -1;
	}
	pp->pid = fork();
	if (pp->pid < 0) {
		sg_err("proxy process: fork: %s", strerror(errno));
		pp->pid = 0;
		close(sv[0]);
		close(sv[1]);
		if (events_fd >= 0)
			close(events_fd);
		return -1;
	}
	if (pp->pid == 0) {
		/* the daemon killed outright takes its proxy along, as one
		 * process would have gone (its stop, SIGTERM, lets the proxy
		 * finish what it owes first) */
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (getppid() != parent)
			_exit(1);
		close(sv[0]);
		proxy_main(pp->cfg, pp->maps, &pp->id, sv[1], events_fd, parent);
	}
	close(sv[1]);
	if (events_fd >= 0)
		close(events_fd);
	pp->sock = sv[0];
	pp->started_ns = sg_now_ns();
	m = malloc(sizeof(*m));
	if (!m || wait_msg(pp, m, START_WAIT_MS) || m->type != MSG_READY) {
		free(m);
		sg_err("the proxy process did not start (its errors are above)");
		close(pp->sock);
		pp->sock = -1;
		kill(pp->pid, SIGKILL);
		reap(pp, 1);
		return -1;
	}
	/* the classifier spreads SYNs over this many workers' listeners; the
	 * proxy holds the settings read-only */
	{
		struct sg_settings settings;
		__u32 zero = 0;

		if (bpf_map_lookup_elem(pp->maps->settings, &zero, &settings) == 0) {
			settings.n_workers = (__u8)m->status;
			if (bpf_map_update_elem(pp->maps->settings, &zero, &settings, BPF_ANY))
				sg_err("proxy process: writing its worker count: %s", strerror(errno));
		}
	}
	free(m);
	sg_watch_init(&pp->watch, pp->sock, on_proxy_sock, pp);
	if (sg_loop_watch(pp->loop, &pp->watch, EPOLLIN)) {
		sg_err("proxy process: watching its socket: %s", strerror(errno));
		close(pp->sock);
		pp->sock = -1;
		return 0;	/* it runs; only its death would go unnoticed */
	}
	return 0;
}

static void retired_gone(struct retired *r, int block)
{
	struct retired **pp;
	int status;
	char how[96];

	if (r->pid > 0 && waitpid(r->pid, &status, block ? 0 : WNOHANG) == r->pid) {
		describe_exit(status, how, sizeof(how));
		sg_info("the replaced proxy process %d %s", (int)r->pid, how);
	}
	sg_loop_unwatch(r->loop, &r->watch);
	close(r->sock);
	for (pp = &retired_list; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	free(r);
}

static void on_retired_sock(struct sg_watch *watch, uint32_t events)
{
	struct retired *r = watch->ctx;
	struct proxy_msg *m = malloc(sizeof(*m));
	int fd = -1;
	ssize_t got = m ? recv_msg(r->sock, m, &fd) : -1;

	(void)events;
	free(m);
	if (fd >= 0)
		close(fd);
	if (got > 0 || (got < 0 && errno == EAGAIN))
		return;
	retired_gone(r, 1);
}

int sg_proxy_process_hand_over(struct sg_proxy_process *pp, char *env, size_t envlen)
{
	if (!pp || !pp->pid || pp->sock < 0) {
		env[0] = '\0';
		return 0;
	}
	/* its end of the pair outlives the exec; the proxy sees no close */
	if (fcntl(pp->sock, F_SETFD, 0))
		return -1;
	snprintf(env, envlen, "sock=%d pid=%d", pp->sock, (int)pp->pid);
	return 0;
}

void sg_proxy_process_hand_back(struct sg_proxy_process *pp)
{
	if (pp && pp->sock >= 0)
		fcntl(pp->sock, F_SETFD, FD_CLOEXEC);
}

void sg_proxy_process_retire(struct sg_loop *loop, const char *handed_over)
{
	struct retired *r;
	struct proxy_msg *m;
	int sock, pid;

	if (!handed_over || sscanf(handed_over, "sock=%d pid=%d", &sock, &pid) != 2 ||
	    fcntl(sock, F_GETFD) < 0) {
		sg_warn("upgrade: the previous proxy could not be found (%s)",
			handed_over ? handed_over : "nothing handed over");
		return;
	}
	fcntl(sock, F_SETFD, FD_CLOEXEC);
	r = calloc(1, sizeof(*r));
	m = calloc(1, sizeof(*m));
	if (!r || !m) {
		free(r);
		free(m);
		close(sock);
		return;
	}
	r->pid = pid;
	r->sock = sock;
	r->loop = loop;
	m->type = MSG_DRAIN;
	if (send_msg(sock, m, -1))
		sg_warn("upgrade: telling the previous proxy process %d to drain failed: %s", pid,
			strerror(errno));
	free(m);
	sg_watch_init(&r->watch, sock, on_retired_sock, r);
	if (sg_loop_watch(loop, &r->watch, EPOLLIN))
		sg_warn("upgrade: watching the previous proxy process %d: %s", pid,
			strerror(errno));
	r->next = retired_list;
	retired_list = r;
	sg_info("upgrade: the previous proxy process %d drains its sessions", pid);
}

/* A stop waits for the replaced proxies too: they finish what they owe. */
static void stop_retired(uint64_t timeout_ns)
{
	uint64_t deadline = sg_now_ns() + timeout_ns;

	for (struct retired *r = retired_list; r; r = r->next)
		kill(r->pid, SIGTERM);
	while (retired_list && sg_now_ns() < deadline) {
		struct retired *r = retired_list;

		int status;

		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			char how[96];

			describe_exit(status, how, sizeof(how));
			sg_info("the replaced proxy process %d %s", (int)r->pid, how);
			r->pid = 0;
			retired_gone(r, 0);
			continue;
		}
		usleep(20000);
	}
	while (retired_list) {
		kill(retired_list->pid, SIGKILL);
		retired_gone(retired_list, 1);
	}
}

struct sg_proxy_process *sg_proxy_process_start(struct sg_loop *loop, const struct sg_config *cfg,
						const struct sg_maps *maps,
						const struct sg_identity *id)
{
	struct sg_proxy_process *pp = calloc(1, sizeof(*pp));

	if (!pp)
		return NULL;
	pp->loop = loop;
	pp->cfg = cfg;
	pp->maps = maps;
	pp->id = *id;
	pp->sock = -1;
	sg_timer_init(&pp->restart, on_restart, pp);
	if (spawn(pp)) {
		free(pp);
		return NULL;
	}
	return pp;
}

int sg_proxy_process_reload(struct sg_proxy_process *pp, const struct sg_config *cfg)
{
	struct proxy_msg *m;
	int events_fd = -1, ret = -1;

	if (!pp->pid || pp->sock < 0) {
		sg_warn("reload: the proxy is not running; it starts with these settings");
		return -1;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -1;
	m->type = MSG_RELOAD;
	m->cfg = *cfg;
	m->events = EVENTS_NONE;
	if (cfg->events_file[0]) {
		/* reopened here, so that a rotated file is left for the new one */
		events_fd = sg_events_open_file(cfg->events_file, pp->id.gid);
		m->events = events_fd >= 0 ? EVENTS_FD : EVENTS_KEEP;
	}
	/* the watch stays: a proxy that dies meanwhile is seen after this */
	if (send_msg(pp->sock, m, events_fd) == 0 && wait_msg(pp, m, START_WAIT_MS) == 0 &&
	    m->type == MSG_RELOADED)
		ret = m->status;
	else
		sg_err("reload: the proxy process did not answer");
	if (events_fd >= 0)
		close(events_fd);
	free(m);
	return ret;
}

void sg_proxy_process_stop(struct sg_proxy_process *pp)
{
	uint64_t deadline;

	if (retired_list)
		stop_retired((pp ? pp->cfg->shutdown_timeout_ns : 60000000000ULL) + 10000000000ULL);
	if (!pp)
		return;
	pp->stopping = 1;
	sg_loop_timer_cancel(pp->loop, &pp->restart);
	if (pp->pid) {
		kill(pp->pid, SIGTERM);
		/* it owes the replies to dots it let go (shutdown_timeout) */
		deadline = sg_now_ns() + pp->cfg->shutdown_timeout_ns + 10000000000ULL;
		while (pp->pid && sg_now_ns() < deadline) {
			reap(pp, 0);
			if (pp->pid)
				usleep(20000);
		}
		if (pp->pid) {
			sg_err("proxy process %d still runs after shutdown_timeout: killed",
			       (int)pp->pid);
			kill(pp->pid, SIGKILL);
			reap(pp, 1);
		}
	}
	forget_child(pp);
	free(pp);
}

pid_t sg_proxy_process_pid(const struct sg_proxy_process *pp)
{
	return pp ? pp->pid : 0;
}
