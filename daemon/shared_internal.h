/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * shared_internal.h - what shared_conn.c and shared_sync.c share: the
 * sync's state (see shared.h).
 */
#ifndef SMTPGUARD_SHARED_INTERNAL_H
#define SMTPGUARD_SHARED_INTERNAL_H

#include <hiredis/async.h>
#include "shared.h"
#include "shared_table.h"
#include "shared_wire.h"

#define SG_SHARED_PASSWORD_LEN 512
#define SG_SHARED_BACKOFF_MIN_NS 1000000000ULL
#define SG_SHARED_BACKOFF_MAX_NS (30ULL * 1000000000ULL)
/* a deadline agreed with the store and one read back may differ by the
 * round trip and the clocks' conversion: closer than this is the same */
#define SG_SHARED_SLACK_NS 2000000000ULL
/* entries a round returns at most (senders, groups): the store bounds it */
#define SG_SHARED_RETURN_MAX 65536

/* A hiredis async context on the daemon's loop. */
struct shared_link {
	struct sg_shared *s;
	redisAsyncContext *ac;
	struct sg_watch watch;
	uint32_t want;			/* EPOLLIN/EPOLLOUT hiredis asked for */
};

struct sg_shared {
	struct sg_loop *loop;
	const struct sg_maps *maps;
	/* the daemon's tenants (its pointer: a reload replaces them); a
	 * sender of a tenant is counted in its tenant's group */
	struct sg_tenants *const *tenants;
	struct sg_config cfg;
	struct sg_redis_addr addr;
	char where[SG_REDIS_HOST_LEN + 16];	/* the address, for the log */
	char password[SG_SHARED_PASSWORD_LEN];	/* empty: no AUTH */
	/* the connections (shared_conn.c): the rounds', and the one subscribed
	 * to sg:changed (a penalty or step changed: a round now, not at the
	 * next tick) */
	struct shared_link main, sub;
	struct sg_timer retry;		/* the next connect, after the backoff */
	struct sg_timer deadline;	/* a reply (or the connect) due by then */
	uint64_t backoff_ns;
	int state;			/* enum sg_redis_state */
	int tearing;			/* freeing ac: its callbacks get no reply */
	int script_loaded;
	char sha[48];			/* the script's, as SCRIPT LOAD answered */
	uint64_t down_since_ns;		/* the outage began then; 0: up */
	struct sg_proxy_metrics *pm;	/* proxy_metrics mapped, for redis_state */
	size_t pm_len;
	/* the rounds (shared_sync.c) */
	struct sg_timer tick;
	struct sg_shared_table table;
	uint32_t round;			/* the round last built */
	int in_flight;			/* a round awaits its reply */
	int push_all;			/* the next round sends every local penalty and step */
	int baselined;
	int again;			/* notified while a round was in flight: one more after it */
	uint64_t last_ok_ns;		/* the counts sent until then are in the store */
	/* bulk bodies (bulk_shared): this host's name in the store, and the
	 * local counts changed since then are sent with the next round */
	char host_id[SG_SHARED_HOST_ID_LEN];
	uint64_t bulk_sent_ns;
	uint64_t bulk_sending_ns;	/* the round in flight read bulk_shared then */
	uint64_t sent_ns;		/* the round in flight read the maps then */			/* the counts in the maps at start were taken as sent */
};

/* shared_conn.c */
/* redis = none: the metrics say so, whatever a run before left there. */
void shared_state_off(const struct sg_maps *maps);
int shared_conn_start(struct sg_shared *s);
void shared_conn_stop(struct sg_shared *s);
/* A round's request failed (no reply, an error): counted; the connection
 * is dropped and retried when drop. */
void shared_conn_failed(struct sg_shared *s, const char *why, int drop);
void shared_set_state(struct sg_shared *s, int state);
/* Arms (or, with 0, cancels) the reply's deadline. */
void shared_conn_expect(struct sg_shared *s, int waiting);
/* SCRIPT LOAD again (NOSCRIPT); the round resumes once it is loaded. */
void shared_conn_load_script(struct sg_shared *s);

/* shared_sync.c */
/* The connection is up (the script loaded): a round now. */
void shared_sync_up(struct sg_shared *s);
/* The counts in the maps now are taken as sent (at start). */
void shared_sync_baseline(struct sg_shared *s);
void shared_sync_tick(struct sg_timer *timer);
/* Another host changed a penalty or step (sg:changed): a round now. */
void shared_sync_soon(struct sg_shared *s);
/* The subscription, made when the rounds' connection is up (shared_conn.c). */
void shared_conn_subscribe(struct sg_shared *s);

#endif
