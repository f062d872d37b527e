/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* source_check.c - source_bindings into the maps, learned sources expired
 * (see source_check.h). */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "log.h"
#include "source_check.h"

int sg_bindings_reload(const struct sg_config *cfg, struct sg_bindings *b)
{
	struct sg_bindings fresh;
	char err[SG_ERR_LEN * 2];

	if (sg_bindings_load(cfg->source_bindings, &fresh, err, sizeof(err))) {
		sg_err("%s; the source bindings stay as they were", err);
		return -1;
	}
	sg_bindings_free(b);
	*b = fresh;
	if (cfg->source_bindings[0])
		sg_info("source_bindings: %zu prefix(es) from %s", b->n, cfg->source_bindings);
	return 0;
}

/* Every key of src_bound, collected (deleting while walking restarts the
 * walk). */
static struct sg_lpm_v6_key *bound_keys(const struct sg_maps *maps, size_t *n)
{
	struct sg_lpm_v6_key key, prev, *keys = NULL;
	size_t cap = 0;
	int have = 0;

	*n = 0;
	while (bpf_map_get_next_key(maps->src_bound, have ? &prev : NULL, &key) == 0) {
		prev = key;
		have = 1;
		if (*n == cap) {
			struct sg_lpm_v6_key *grown;

			cap = cap ? cap * 2 : 256;
			grown = realloc(keys, cap * sizeof(*keys));
			if (!grown)
				break;
			keys = grown;
		}
		keys[(*n)++] = key;
	}
	return keys;
}

static void mark_attachments(const struct sg_maps *maps, const struct sg_bindings *b)
{
	__u32 key, next;
	int have = 0;

	while (bpf_map_get_next_key(maps->attachments, have ? &key : NULL, &next) == 0) {
		struct sg_attachment a;
		__u8 named;

		key = next;
		have = 1;
		if (bpf_map_lookup_elem(maps->attachments, &key, &a))
			continue;
		named = (__u8)sg_bindings_names(b, a.ifname);
		if (a.bound_configured == named)
			continue;
		a.bound_configured = named;
		if (bpf_map_update_elem(maps->attachments, &key, &a, BPF_EXIST))
			sg_warn("marking %s's source bindings failed: %s", a.ifname,
				strerror(errno));
	}
}

void sg_bindings_apply(const struct sg_maps *maps, const struct sg_bindings *b)
{
	struct sg_lpm_v6_key *keys, *want = NULL;
	struct sg_bound *want_v = NULL;
	size_t n = 0, nwant = 0;

	if (b->n) {
		want = calloc(b->n, sizeof(*want));
		want_v = calloc(b->n, sizeof(*want_v));
		if (!want || !want_v) {
			sg_err("applying source_bindings: out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		unsigned int ifindex = if_nametoindex(b->v[i].ifname);

		if (!ifindex)
			continue;	/* applied when it appears */
		sg_bound_key(&b->v[i].prefix, &want[nwant]);
		want_v[nwant].ifindex = ifindex;
		nwant++;
	}
	keys = bound_keys(maps, &n);
	for (size_t i = 0; i < n; i++) {
		struct sg_bound v;
		int keep = 0;

		if (bpf_map_lookup_elem(maps->src_bound, &keys[i], &v))
			continue;
		if (v.learned) {
			/* the file wins: nothing it binds, and nothing of an
			 * interface it names, stays learned */
			keep = 1;
			for (size_t j = 0; j < nwant && keep; j++)
				keep = !sg_bound_key_covers(&want[j], &keys[i]) &&
				       want_v[j].ifindex != v.ifindex;
		}
		for (size_t j = 0; j < nwant && !keep && !v.learned; j++)
			keep = want[j].prefixlen == keys[i].prefixlen &&
			       memcmp(want[j].addr, keys[i].addr, 16) == 0 &&
			       want_v[j].ifindex == v.ifindex;
		if (!keep)
			bpf_map_delete_elem(maps->src_bound, &keys[i]);
	}
	free(keys);
	for (size_t j = 0; j < nwant; j++)
		if (bpf_map_update_elem(maps->src_bound, &want[j], &want_v[j], BPF_ANY))
			sg_err("binding a source prefix to ifindex %u failed: %s%s",
			       want_v[j].ifindex, strerror(errno),
			       errno == ENOSPC || errno == E2BIG ? " (src_bound is full)" : "");
	mark_attachments(maps, b);
out:
	free(want);
	free(want_v);
}

static int attached(const struct sg_maps *maps, __u32 ifindex)
{
	struct sg_attachment a;

	return bpf_map_lookup_elem(maps->attachments, &ifindex, &a) == 0;
}

/* The per-interface maps' entries of interfaces that are no longer ours. */
static void forget_gone(const struct sg_maps *maps)
{
	struct sg_overflow_key ok, okprev, okgone[256];
	__u32 key, prev, gone[256];
	int have = 0, n = 0;

	while (n < 256 && bpf_map_get_next_key(maps->iface_state, have ? &prev : NULL, &key) == 0) {
		prev = key;
		have = 1;
		if (!attached(maps, key))
			gone[n++] = key;
	}
	for (int i = 0; i < n; i++)
		bpf_map_delete_elem(maps->iface_state, &gone[i]);
	have = 0;
	n = 0;
	while (n < 256 &&
	       bpf_map_get_next_key(maps->overflow_state, have ? &okprev : NULL, &ok) == 0) {
		okprev = ok;
		have = 1;
		if (!attached(maps, ok.ifindex))
			okgone[n++] = ok;
	}
	for (int i = 0; i < n; i++)
		bpf_map_delete_elem(maps->overflow_state, &okgone[i]);
}

/* Each interface's share of src_state (sg_iface_state.sources), recounted
 * from the entries left (the classifier only adds to it; the GC evicts). */
static void recount_sources(const struct sg_maps *maps)
{
	struct sg_src_key key, prev;
	__u32 ifs[SG_MAX_ATTACHMENTS], ifkey;
	__u64 counts[SG_MAX_ATTACHMENTS];
	int have = 0, n = 0;

	/* the interfaces first: there are few */
	while (n < SG_MAX_ATTACHMENTS &&
	       bpf_map_get_next_key(maps->iface_state, have ? &ifkey : NULL, &ifs[n]) == 0) {
		ifkey = ifs[n];
		counts[n++] = 0;
		have = 1;
	}
	have = 0;
	while (n && bpf_map_get_next_key(maps->src_state, have ? &prev : NULL, &key) == 0) {
		struct sg_src_state st;

		prev = key;
		have = 1;
		if (sg_source_read(maps, &key, &st) || !st.ifindex)
			continue;
		for (int i = 0; i < n; i++)
			if (ifs[i] == st.ifindex) {
				counts[i]++;
				break;
			}
	}
	for (int i = 0; i < n; i++) {
		struct sg_iface_state is;

		if (bpf_map_lookup_elem(maps->iface_state, &ifs[i], &is) || is.sources == counts[i])
			continue;
		is.sources = counts[i];
		bpf_map_update_elem(maps->iface_state, &ifs[i], &is, BPF_EXIST);
	}
}

void sg_bindings_gc(const struct sg_maps *maps, uint64_t idle_ns)
{
	uint64_t now = sg_now_ns();
	struct sg_lpm_v6_key *keys;
	__u32 *owners = NULL, ifkey, ifprev;
	size_t n = 0, nowners = 0;
	int expired = 0, have = 0;

	keys = bound_keys(maps, &n);
	if (n)
		owners = calloc(n, sizeof(*owners));
	for (size_t i = 0; i < n; i++) {
		struct sg_bound v;

		if (bpf_map_lookup_elem(maps->src_bound, &keys[i], &v) || !v.learned)
			continue;
		if ((now > v.last_seen_ns && now - v.last_seen_ns >= idle_ns) ||
		    !attached(maps, v.ifindex)) {
			bpf_map_delete_elem(maps->src_bound, &keys[i]);
			expired++;
		} else if (owners) {
			owners[nowners++] = v.ifindex;
		}
	}
	free(keys);
	/* each interface's learned count, recounted from what is left (the
	 * classifier only adds to it) */
	while ((owners || !n) &&
	       bpf_map_get_next_key(maps->iface_state, have ? &ifprev : NULL, &ifkey) == 0) {
		struct sg_iface_state is;
		__u64 count = 0;

		ifprev = ifkey;
		have = 1;
		if (bpf_map_lookup_elem(maps->iface_state, &ifkey, &is))
			continue;
		for (size_t i = 0; i < nowners; i++)
			count += owners[i] == ifkey;
		if (is.learned != count) {
			is.learned = count;
			bpf_map_update_elem(maps->iface_state, &ifkey, &is, BPF_EXIST);
		}
	}
	free(owners);
	recount_sources(maps);
	forget_gone(maps);
	if (expired)
		sg_debug("forgot %d learned source address(es)", expired);
}
