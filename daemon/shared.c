/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* shared.c - the sync with the shared store started, reconfigured and
 * stopped (see shared.h). */
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "shared_internal.h"

struct sg_shared *sg_shared_start(struct sg_loop *loop, const struct sg_config *cfg,
				  const struct sg_maps *maps, int *off)
{
	struct sg_shared *s;

	*off = !cfg->redis[0];
	if (*off) {
		shared_state_off(maps);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || sg_shared_table_init(&s->table, cfg->shared_senders_max)) {
		sg_err("redis: no memory for the table of %u senders (shared_senders_max)",
		       cfg->shared_senders_max);
		free(s);
		return NULL;
	}
	s->loop = loop;
	s->maps = maps;
	s->cfg = *cfg;
	sg_timer_init(&s->tick, shared_sync_tick, s);
	shared_sync_baseline(s);
	if (shared_conn_start(s)) {
		sg_shared_table_free(&s->table);
		free(s);
		return NULL;
	}
	if (sg_loop_timer_in(loop, &s->tick, cfg->redis_sync_interval_ns)) {
		sg_shared_stop(s);
		return NULL;
	}
	return s;
}

void sg_shared_use_tenants(struct sg_shared *s, struct sg_tenants *const *tenants)
{
	if (s)
		s->tenants = tenants;
}

void sg_shared_configure(struct sg_shared *s, const struct sg_config *cfg)
{
	struct sg_config keep;

	if (!s)
		return;
	/* the connection's keys wait for a restart; the rest apply to the next round */
	keep = s->cfg;
	s->cfg = *cfg;
	memcpy(s->cfg.redis, keep.redis, sizeof(keep.redis));
	memcpy(s->cfg.redis_password_file, keep.redis_password_file,
	       sizeof(keep.redis_password_file));
	s->cfg.redis_sync_interval_ns = keep.redis_sync_interval_ns;
	s->cfg.redis_timeout_ns = keep.redis_timeout_ns;
	s->cfg.shared_senders_max = keep.shared_senders_max;
}

void sg_shared_stop(struct sg_shared *s)
{
	if (!s)
		return;
	sg_loop_timer_cancel(s->loop, &s->tick);
	shared_conn_stop(s);
	sg_shared_table_free(&s->table);
	free(s);
}
