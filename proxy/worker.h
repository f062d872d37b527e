/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * worker.h - the proxy's insides, shared by its files: the proxy (struct
 * sg_proxy: configuration, engines, contexts, workers), a worker (one
 * thread, one event loop, two transparent listeners, its sessions), and
 * the session lifecycle a worker runs.
 *
 *   proxy.c     start, stop, reload of the whole
 *   generation.c  the configuration and engines sessions run with
 *   worker.c    a worker's thread, loop and 1 s tick (deadlines)
 *   listener.c  the transparent listeners: accept, the upstream connect
 *   session.c   a session's memory, its sockets in the loop, its end
 *
 * A session's path: listener.c accepts it and connects upstream;
 * session.c runs the relay (relay.c and the relay_*.c files) whenever one
 * of its sockets, or an engine it waits for, wakes it; worker.c ends the
 * ones past their deadlines.
 */
#ifndef SMTPGUARD_WORKER_H
#define SMTPGUARD_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include "config.h"
#include "loop.h"
#include "pinned.h"
#include "allow.h"
#include "behaviour.h"
#include "content.h"
#include "milter.h"
#include "scanner.h"
#include "relay.h"
#include "sources.h"
#include "tenancy.h"
#include "tenants.h"

#define SG_MAX_SPARE	64	/* sessions' memory kept for reuse, per worker (4 MB) */

struct worker {
	struct sg_proxy *proxy;
	int index;
	struct sg_loop *loop;
	int stop_fd;		/* an eventfd: the proxy stops, or drains */
	struct sg_watch stop_watch;
	int stopping;
	/* a drain (an upgrade or restart took the listeners' slots): the
	 * listeners close after a grace, the sessions run on until they end
	 * or drain_deadline_ns */
	int drain_requested;	/* atomic: set before stop_fd is written */
	uint64_t drain_deadline_ns;
	int draining;
	struct sg_timer drain_close;
	struct sg_timer tick;	/* 1 s: connect, idle, session and drain deadlines */
	struct sg_timer recheck;	/* soon: sockmap tunnels whose end waits for its bytes */
	int listen_fd[2];	/* IPv4, IPv6 */
	struct sg_watch listen_watch[2];
	uint64_t fd_warning_ns;
	uint64_t limit_warning_ns;	/* a sender at its session limit: last logged */
	int accept_paused;	/* out of descriptors even with the reserve: until the tick */
	struct session *sessions;
	struct session *closed;		/* ended in this batch: events may still name them */
	struct session *spare;		/* ended sessions' memory, for the next ones */
	unsigned int n_spare;
	pthread_t thread;
	int started;
};

/* What sessions run with (generation.c): the one a session began with
 * stays its own until it ends. */
struct sg_generation {
	int refs;		/* the proxy's, and one a session (atomic) */
	struct sg_config cfg;
	struct sg_rules *content_rules;
	struct sg_content_config content;
	struct sg_milter_config milters[SG_MAX_MILTERS];
	struct sg_allow *allow;		/* ladder_allow */
	struct sg_tenants *tenants;	/* tenants and its adapters; NULL: none */
	struct sg_behaviour_thresholds thresholds;	/* the behaviour_* keys */
	/* its engines: the content rules, then the milters (the built-in
	 * one first: a message it refuses costs no milter's time) */
	struct sg_scanner scanner;
	struct sockaddr_storage relay_addr[2];	/* source mode relay-ip: IPv4, IPv6; family 0: none */
};

struct sg_proxy {
	pthread_mutex_t generation_lock;
	struct sg_generation *generation;	/* for new sessions */
	int tls_mover;		/* as at start (a restart key) */
	struct sg_feedback *feedback;
	struct sg_behaviour *behaviour;	/* every sender's signals, for the ladder */
	struct sg_webhooks *webhooks;	/* the ladder's steps posted (webhook_urls) */
	struct sg_sources *sources;	/* sessions per sender, for their limit */
	struct sg_tenancy *tenancy;	/* the tenants' buckets, senders' tenants */
	struct sg_tls *tls;
	uint64_t no_cert_warning_ns;	/* terminate asked without a certificate: last logged */
	const struct sg_maps *maps;
	/* one descriptor held back for the whole process (the workers share
	 * the descriptor table): given up to answer a VM when they run out */
	pthread_mutex_t reserve_lock;
	int reserve_fd;
	int listeners_map;
	int n;
	struct worker *workers;
};

/* generation.c */
/* A generation from cfg (the pattern file loaded); NULL with err. */
struct sg_generation *generation_new(const struct sg_config *cfg, char *err, size_t errlen);
/* Logs what its scanner judges with (prefix: "" or "reload: "). */
void generation_describe(const struct sg_generation *g, const char *prefix);
/* The current generation, counted for the caller (a new session). */
struct sg_generation *generation_get(struct sg_proxy *proxy);
void generation_put(struct sg_generation *g);
/* g becomes current; the proxy's count of the old one is dropped. */
void generation_publish(struct sg_proxy *proxy, struct sg_generation *g);

/* worker.c */
int worker_init(struct sg_proxy *proxy, struct worker *w, int index);
void *worker_main(void *arg);
void worker_close(struct worker *w);
/* The 1 s tick's deadlines (connect, handshake, idle, session, body rate,
 * dot reply, drain grace) as they stand at now: the relay's tests pass a
 * time ahead. */
void worker_expire(struct worker *w, uint64_t now);

/* listener.c */
/* A transparent listener on loopback (the classifier steers SYNs to it);
 * -1 with errno. */
int listener_open(int family);
/* The listener's watch callback: takes every waiting connection. */
void listener_ready(struct sg_watch *watch, uint32_t events);
/* A new session's sender under its session limit: counted, 0. Over it:
 * the VM is told 421 (relay_close: run the session to send it), -1. */
int session_admit(struct worker *w, struct session *s);
/* Pauses (0) or resumes (1) both listeners of a worker. */
void listener_pause(struct worker *w, int listening);

/* session.c */
/* A new session's memory (reused when a spare is at hand); NULL: none. */
struct session *session_alloc(struct worker *w);
/* Its first socket (the VM's) is in the loop: the session is the worker's. */
void session_adopt(struct worker *w, struct session *s);
/* Ends it: the sockets close now, the memory after the batch (reap). */
void session_free(struct worker *w, struct session *s);
void session_reap(struct worker *w);
void session_free_spares(struct worker *w);
/* Runs the relay over what is ready, then the sockets' interest. */
void session_run(struct worker *w, struct session *s, int vm_ready, int mx_ready);
/* The MX could not be reached: the VM is told to retry later. */
void session_tempfail(struct worker *w, struct session *s, const char *why);
/* smtpguardd stops: a VM in a plain SMTP session hears why. */
void session_goodbye(struct session *s);

/* worker.c: the proxy stops. Sessions owed the MX's reply to a dot run on
 * in the worker's loop for up to shutdown_timeout; the others hear 421 and
 * close at once; then the rest close. */
void worker_stop_sessions(struct worker *w);

#endif
