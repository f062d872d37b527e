/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* gc.c - idle per-source state eviction (see gc.h). */
#include <stdlib.h>
#include <bpf/bpf.h>
#include "gc.h"
#include "log.h"
#include "parse.h"

/* Whether a sender's entry may go: idle that long, holding nothing that
 * still runs. 0 also when it cannot be read (gone meanwhile). */
typedef int (*sg_entry_stale)(const struct sg_maps *maps, const struct sg_src_key *key,
			      uint64_t now, uint64_t idle_timeout_ns);

/* The kernel's entries: no penalty, a full bucket. */
static int state_stale(const struct sg_maps *maps, const struct sg_src_key *key,
		       uint64_t now, uint64_t idle_timeout_ns)
{
	struct sg_src_state st;

	return sg_source_read(maps, key, &st) == 0 && st.penalty_until_ns <= now &&
	       now - st.last_seen_ns >= idle_timeout_ns && st.tat_ns <= now;
}

/* The proxy's entries: no bucket debt, no suspect flag (an escalation
 * window shorter than the idle time has closed). Their counts go with
 * them, as the kernel's do. */
static int feedback_stale(const struct sg_maps *maps, const struct sg_src_key *key,
			  uint64_t now, uint64_t idle_timeout_ns)
{
	struct sg_src_feedback fb;

	/* a sender on the ladder (until its step has lapsed and it stayed
	 * away for the idle time), or refused not long ago (its next penalty
	 * is longer: ladder_forget), is remembered however idle; so is one
	 * with a confirmed complaint its ladder has not taken yet */
	return bpf_map_lookup_elem(maps->src_feedback, key, &fb) == 0 &&
	       now - fb.last_ns >= idle_timeout_ns && fb.msg_tat_ns <= now &&
	       fb.rcpt_tat_ns <= now && fb.suspect_until_ns <= now &&
	       (fb.ladder_step == SG_LADDER_NORMAL ||
		fb.ladder_until_ns + idle_timeout_ns <= now) &&
	       (!fb.ladder_refused_ns || now - fb.ladder_refused_ns >= SG_LADDER_FORGET_MAX_NS) &&
	       fb.complaints_applied >= fb.complaints;
}

/* Deletes the stale entries of one per-sender map; collected first, as
 * deleting while walking restarts the walk. */
static int evict(const struct sg_maps *maps, int map_fd, sg_entry_stale stale_fn,
		 uint64_t now, uint64_t idle_timeout_ns)
{
	struct sg_src_key key, prev, *stale = NULL;
	size_t nstale = 0, cap = 0;
	int have_prev = 0, evicted = 0;

	while (bpf_map_get_next_key(map_fd, have_prev ? &prev : NULL, &key) == 0) {
		prev = key;
		have_prev = 1;
		if (!stale_fn(maps, &key, now, idle_timeout_ns))
			continue;
		if (nstale == cap) {
			struct sg_src_key *grown;

			cap = cap ? cap * 2 : 1024;
			grown = realloc(stale, cap * sizeof(*stale));
			if (!grown)
				break;
			stale = grown;
		}
		stale[nstale++] = key;
	}
	for (size_t i = 0; i < nstale; i++)
		if (bpf_map_delete_elem(map_fd, &stale[i]) == 0)
			evicted++;
	free(stale);
	return evicted;
}

int sg_gc_sources(const struct sg_maps *maps, uint64_t idle_timeout_ns)
{
	uint64_t now = sg_now_ns();
	int kernel = evict(maps, maps->src_state, state_stale, now, idle_timeout_ns);
	int proxy = evict(maps, maps->src_feedback, feedback_stale, now, idle_timeout_ns);

	if (kernel || proxy)
		sg_debug("evicted %d idle source(s) and %d idle sender(s) from src_feedback",
			 kernel, proxy);
	return kernel + proxy;
}
