/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * pinned.h - opens the maps smtpguardd pinned below a bpffs root, and the
 * operations on them that the daemon, smtpguardctl and tests share: rate
 * classes by name, policy entries, per-source state, summed counters.
 */
#ifndef SMTPGUARD_PINNED_H
#define SMTPGUARD_PINNED_H

#include <stddef.h>
#include <stdint.h>
#include <smtpguard/maps.h>
#include "parse.h"

struct sg_maps {
	int policy_v4;
	int policy_v6;
	int rate_classes;
	int src_state;
	int overflow_state;
	int settings;
	int stats;
	int attachments;
	int listeners;
	int src_feedback;
	int proxy_stats;
	int src_bound;
	int iface_state;
	int flow_sender;
	int proxy_metrics;
	int bulk_shared;	/* bodies shared between hosts */
};

/* Opens every map below root; on error closes what it opened and explains
 * (no such root, not smtpguard's, permission). */
int sg_maps_open(const char *root, struct sg_maps *maps, char *err, size_t errlen);
void sg_maps_close(struct sg_maps *maps);
/* The layout (SG_LAYOUT_VERSION) of the pins at root: 0 when there are
 * none; -1 with errno when it cannot be read. */
int sg_layout_read(const char *root, unsigned *version);
/* 0 when the pins at root are of this build's layout (or an older one,
 * with allow_older: the daemon carries them over) or there are none;
 * otherwise -1 with err (whose layout, and what to do). */
int sg_layout_check(const char *root, int allow_older, char *err, size_t errlen);
/* Records this build's layout beside the pins (the daemon, once loaded). */
int sg_layout_record(const char *root);
/* The open maps' descriptors into fds (at most max); how many. */
int sg_maps_fds(const struct sg_maps *maps, int *fds, int max);

/* Rate classes: slot of NAME, or -1. */
int sg_rate_class_find(const struct sg_maps *maps, const char *name);
/* A rate class's name holds letters, digits, '.', '_' and '-' only: it is
 * quoted in SMTP replies, where a CR or LF would split the reply. */
static inline int sg_rate_class_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}
/* Creates or updates NAME (a bad name, or a full table: -1 with err);
 * returns its slot. */
int sg_rate_class_set(const struct sg_maps *maps, const char *name,
		      const struct sg_rate_class *limits, char *err, size_t errlen);
/* The policy that applies to an address (network byte order, 4 or 16
 * bytes): the longest matching prefix, else the settings' defaults. */
void sg_policy_lookup(const struct sg_maps *maps, const __u8 *addr, int is_v6,
		      struct sg_policy *out);

int sg_policy_set(const struct sg_maps *maps, const struct sg_prefix *p,
		  const struct sg_policy *policy, char *err, size_t errlen);
/* Returns 0, or -1 with err (e.g. no such entry). */
int sg_policy_delete(const struct sg_maps *maps, const struct sg_prefix *p,
		     char *err, size_t errlen);

/* Sum of each per-CPU counter, out[SG_STAT__COUNT]. */
int sg_stats_read(const struct sg_maps *maps, uint64_t *out);

/* Reads a source's state under its lock; -1 when it has none. */
int sg_source_read(const struct sg_maps *maps, const struct sg_src_key *k,
		   struct sg_src_state *out);
/* Sets penalty_until (0 clears it and the bucket), creating the entry. */
int sg_source_set_penalty(const struct sg_maps *maps, const struct sg_src_key *k,
			  uint64_t until_ns, char *err, size_t errlen);

/* Removes every pin below root and root itself (a missing root is fine). */
int sg_bpffs_purge(const char *root);

#endif
