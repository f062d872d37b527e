/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* gc.c - idle per-source state eviction (see gc.h). */
#include <stdlib.h>
#include <bpf/bpf.h>
#include "gc.h"
#include "log.h"
#include "parse.h"

/* The proxy's entries, once idle as long and holding nothing that still
 * runs (no bucket debt, no suspect flag; an escalation window shorter than
 * the idle time has closed). Their counts go with them, as the kernel's do. */
static int gc_feedback(const struct sg_maps *maps, uint64_t idle_timeout_ns, uint64_t now)
{
	struct sg_src_key key, prev, *stale = NULL;
	size_t nstale = 0, cap = 0;
	int have_prev = 0, evicted = 0;

	while (bpf_map_get_next_key(maps->src_feedback, have_prev ? &prev : NULL, &key) == 0) {
		struct sg_src_feedback fb;

		prev = key;
		have_prev = 1;
		if (bpf_map_lookup_elem(maps->src_feedback, &key, &fb))
			continue;
		if (now - fb.last_ns < idle_timeout_ns || fb.msg_tat_ns > now ||
		    fb.rcpt_tat_ns > now || fb.suspect_until_ns > now)
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
		if (bpf_map_delete_elem(maps->src_feedback, &stale[i]) == 0)
			evicted++;
	free(stale);
	if (evicted)
		sg_debug("evicted %d idle sender(s) from src_feedback", evicted);
	return evicted;
}

int sg_gc_sources(const struct sg_maps *maps, uint64_t idle_timeout_ns)
{
	struct sg_src_key key, prev, *stale = NULL;
	size_t nstale = 0, cap = 0;
	uint64_t now = sg_now_ns();
	int have_prev = 0, evicted = 0;

	while (bpf_map_get_next_key(maps->src_state, have_prev ? &prev : NULL, &key) == 0) {
		struct sg_src_state st;

		prev = key;
		have_prev = 1;
		if (sg_source_read(maps, &key, &st))
			continue;
		if (st.penalty_until_ns > now || now - st.last_seen_ns < idle_timeout_ns ||
		    st.tat_ns > now)
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
		if (bpf_map_delete_elem(maps->src_state, &stale[i]) == 0)
			evicted++;
	free(stale);
	if (evicted)
		sg_debug("evicted %d idle source(s)", evicted);
	return evicted + gc_feedback(maps, idle_timeout_ns, now);
}
