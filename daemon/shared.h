/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * shared.h - the daemon's sync with the shared store (redis =): every
 * redis_sync_interval it sends the senders' deltas (SYNs, messages) and
 * the penalties and ladder steps that changed here, in one pipelined round
 * trip through a script Redis runs on its own clock, and writes what comes
 * back (senders penalised or on the ladder on any host, groups over a
 * shared limit) into the local maps, where the kernel and the proxy
 * enforce it. Nothing on a session's path waits for it: the proxy never
 * talks to Redis. Redis slow, down or restarted: local state goes on, the
 * outage is logged once and counted, the connection retried with a
 * backoff, the counts sent on reconnect (the table holds what was last
 * sent, so an outage costs no memory).
 *
 *   shared_conn.c    the connection: hiredis's async API on the daemon's loop
 *   shared_sync.c    a round: the maps read, the request, the reply applied
 *   shared_script.c  the script (what the store keeps, and its keys)
 * and lib/shared_table.c (the senders tracked), lib/shared_wire.c (the text).
 */
#ifndef SMTPGUARD_SHARED_H
#define SMTPGUARD_SHARED_H

#include "config.h"
#include "loop.h"
#include "pinned.h"
#include "tenants.h"

struct sg_shared;

/* NULL with the reason logged (a password file that cannot be read, no
 * memory); with redis = none, NULL and nothing to say (*off = 1). Redis
 * itself being down is no error: it is retried. */
struct sg_shared *sg_shared_start(struct sg_loop *loop, const struct sg_config *cfg,
				  const struct sg_maps *maps, int *off);
/* The daemon's tenants (*tenants, NULL: none; read at each round, so a
 * reload's are used): a sender of a tenant is counted, limited and
 * penalised in its tenant's group, across hosts; others in their prefix's. */
void sg_shared_use_tenants(struct sg_shared *s, struct sg_tenants *const *tenants);
/* A reload: the live keys (limits, penalty, groups). */
void sg_shared_configure(struct sg_shared *s, const struct sg_config *cfg);
void sg_shared_stop(struct sg_shared *s);

#endif
