/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * rig.h - a proxy worker without its daemon, for the relay's dialogue test
 * (test_relay: its sessions.c) and its benchmarks (bench/scan_fairness.c):
 * one event loop, a generation made from a configuration (its content
 * rules), the sessions counted per sender, the events file, and sessions
 * set up the way listener.c's accept_sessions sets them up, over
 * socketpairs whose other ends the caller holds and plays: the VM and the
 * MX.
 *
 *   struct rig g = { 0 };
 *   rig_start(&g, &cfg, "spam body /spam/i\n", "bench", err, sizeof(err));
 *   rig_session(&g, "192.0.2.10", 40000, SG_TLS_PASSTHROUGH, fds, &s, err, sizeof(err));
 *   ... sg_loop_run_once(g.w.loop, ...); session_reap(&g.w); ...
 *   rig_stop(&g);
 *
 * No feedback (no BPF maps): a sender's session limit is
 * default_max_sessions. Header-only, so that a benchmark stays one file
 * in the Makefile's rules (Cilium's bpf/tests/pktgen.h is shared by its
 * tests and benchmarks the same way).
 */
#ifndef SMTPGUARD_SELFTESTS_RIG_H
#define SMTPGUARD_SELFTESTS_RIG_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include "events.h"
#include "parse.h"
#include "worker.h"

struct rig {
	struct sg_proxy proxy;
	struct worker w;	/* w.loop: NULL until rig_start */
	char events_path[64];	/* "": no events file */
	char rules_path[64];	/* "": no content_rules file */
};

/* A temporary file holding text; 0, or -1 with err. */
static inline int rig_temp_file(char *path, size_t len, const char *what, const char *text,
				char *err, size_t errlen)
{
	FILE *f;
	int fd;

	snprintf(path, len, "/tmp/sg-relay-%s-XXXXXX", what);
	fd = mkstemp(path);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		snprintf(err, errlen, "a temporary %s file: %s", what, strerror(errno));
		if (fd >= 0)
			close(fd);
		path[0] = '\0';
		return -1;
	}
	fputs(text, f);
	fclose(f);
	return 0;
}

/* The worker's loop, the proxy's generation from cfg (content_rules set
 * to a file of rules when that is not NULL), an events file (a temporary
 * one, events_path), the count of sessions per sender. name says whose
 * configuration it is, in err. 0, or -1 with err; rig_stop undoes what was
 * done either way. */
static inline int rig_start(struct rig *g, struct sg_config *cfg, const char *rules,
			    const char *name, char *err, size_t errlen)
{
	char set[128];

	g->w.listen_fd[0] = g->w.listen_fd[1] = g->w.stop_fd = -1;
	g->w.proxy = &g->proxy;
	g->proxy.reserve_fd = -1;
	pthread_mutex_init(&g->proxy.generation_lock, NULL);
	pthread_mutex_init(&g->proxy.reserve_lock, NULL);
	g->w.loop = sg_loop_new();
	g->proxy.sources = sg_sources_new();
	if (!g->w.loop || !g->proxy.sources) {
		snprintf(err, errlen, "sg_loop_new or sg_sources_new: out of memory");
		return -1;
	}
	if (rules && rules[0]) {
		if (rig_temp_file(g->rules_path, sizeof(g->rules_path), "rules", rules, err,
				  errlen))
			return -1;
		snprintf(set, sizeof(set), "content_rules = %s", g->rules_path);
		if (sg_config_set(cfg, set, name, 0, err, errlen))
			return -1;
	}
	if (sg_config_check(cfg, name, err, errlen))
		return -1;
	if (rig_temp_file(g->events_path, sizeof(g->events_path), "events", "", err, errlen))
		return -1;
	if (sg_events_open(g->events_path)) {
		snprintf(err, errlen, "sg_events_open %s failed", g->events_path);
		return -1;
	}
	g->proxy.generation = generation_new(cfg, err, errlen);
	return g->proxy.generation ? 0 : -1;
}

/* "192.0.2.10:40000" or "[2001:db8::1]:40000" of address ip (IPv4 or
 * IPv6) and port, into ss; -1 when ip is neither. */
static inline int rig_address(const char *ip, int port, struct sockaddr_storage *ss,
			      char *name, size_t len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		snprintf(name, len, "%s:%d", ip, port);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		snprintf(name, len, "[%s]:%d", ip, port);
		return 0;
	}
	return -1;
}

/*
 * A session from the VM at vm_ip:vm_port to 198.51.100.25:25, as
 * accept_sessions makes one: admitted under its sender's session limit
 * (session_admit), connected (a socketpair stands for the upstream
 * connect), started, and run once. fds[SIDE_VM] and fds[SIDE_MX] are the
 * peers' ends (non-blocking). 0: admitted. 1: refused at the limit: the
 * relay is telling the VM 421 and drains, and there is no MX (fds[SIDE_MX]
 * is -1). -1 with err.
 */
static inline int rig_session(struct rig *g, const char *vm_ip, int vm_port, int tls_mode,
			      int fds[2], struct session **out, char *err, size_t errlen)
{
	struct worker *w = &g->w;
	struct sockaddr_storage vm_addr, mx_addr;
	char vm_name[64], mx_name[64];
	int vm_pair[2], mx_pair[2], admitted;
	struct session *s;

	fds[SIDE_VM] = fds[SIDE_MX] = -1;
	*out = NULL;
	if (rig_address(vm_ip, vm_port, &vm_addr, vm_name, sizeof(vm_name)) ||
	    rig_address("198.51.100.25", 25, &mx_addr, mx_name, sizeof(mx_name))) {
		snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address", vm_ip);
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, vm_pair)) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, mx_pair)) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		close(vm_pair[0]);
		close(vm_pair[1]);
		return -1;
	}
	s = session_alloc(w);
	if (!s) {
		snprintf(err, errlen, "session_alloc: out of memory");
		for (int i = 0; i < 2; i++) {
			close(vm_pair[i]);
			close(mx_pair[i]);
		}
		return -1;
	}
	s->vm_addr = vm_addr;
	s->mx_addr = mx_addr;
	snprintf(s->vm_name, sizeof(s->vm_name), "%s", vm_name);
	snprintf(s->mx_name, sizeof(s->mx_name), "%s", mx_name);
	s->fd[SIDE_VM] = vm_pair[0];
	s->generation = generation_get(&g->proxy);
	s->cfg = &s->generation->cfg;
	s->scanner = &s->generation->scanner;
	s->tls_mode = tls_mode;
	admitted = session_admit(w, s) == 0;
	if (admitted) {
		s->fd[SIDE_MX] = mx_pair[0];
		fds[SIDE_MX] = mx_pair[1];
	} else {
		close(mx_pair[0]);
		close(mx_pair[1]);
	}
	fds[SIDE_VM] = vm_pair[1];
	s->started_ns = s->last_active_ns = sg_now_ns();
	session_adopt(w, s);
	s->watch[SIDE_VM].fd = s->fd[SIDE_VM];
	if (sg_loop_watch(w->loop, &s->watch[SIDE_VM], EPOLLRDHUP)) {
		snprintf(err, errlen, "sg_loop_watch: %s", strerror(errno));
		return -1;
	}
	*out = s;
	if (!admitted) {
		session_run(w, s, 1, 0);	/* its 421, then the drain */
		return 1;
	}
	/* the upstream connect succeeded: session_connected */
	s->watch[SIDE_MX].fd = s->fd[SIDE_MX];
	if (sg_loop_watch(w->loop, &s->watch[SIDE_MX], EPOLLIN)) {
		snprintf(err, errlen, "sg_loop_watch: %s", strerror(errno));
		return -1;
	}
	relay_start(s);
	session_run(w, s, 1, 1);
	return 0;
}

/* Whether s is still one of the worker's sessions (it has not ended).
 * Ask before a new session_alloc: an ended session's memory is reused. */
static inline int rig_live(const struct rig *g, const struct session *s)
{
	for (const struct session *x = g->w.sessions; x; x = x->next)
		if (x == s)
			return 1;
	return 0;
}

/* Undoes rig_start; sessions still running are ended first (their sockets
 * closed, their events written). */
static inline void rig_stop(struct rig *g)
{
	if (g->w.loop) {
		while (g->w.sessions)
			session_free(&g->w, g->w.sessions);
		session_reap(&g->w);
		session_free_spares(&g->w);
		sg_loop_free(g->w.loop);
		g->w.loop = NULL;
	}
	sg_events_close();
	if (g->proxy.generation)
		generation_put(g->proxy.generation);
	g->proxy.generation = NULL;
	sg_sources_free(g->proxy.sources);
	g->proxy.sources = NULL;
	if (g->w.proxy) {
		pthread_mutex_destroy(&g->proxy.generation_lock);
		pthread_mutex_destroy(&g->proxy.reserve_lock);
		g->w.proxy = NULL;
	}
	if (g->events_path[0])
		unlink(g->events_path);
	if (g->rules_path[0])
		unlink(g->rules_path);
	g->events_path[0] = g->rules_path[0] = '\0';
}

#endif
