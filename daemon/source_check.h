/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * source_check.h - the source check's state that the daemon keeps: the
 * source_bindings file in src_bound and the attachments, learned sources
 * expired, and per-interface entries of interfaces that are gone.
 */
#ifndef SMTPGUARD_DAEMON_SOURCE_CHECK_H
#define SMTPGUARD_DAEMON_SOURCE_CHECK_H

#include "bindings.h"
#include "config.h"
#include "pinned.h"

/* Reads the file cfg names into b (an error is logged, and b is left as it
 * was: the running bindings stay). 0 or -1. */
int sg_bindings_reload(const struct sg_config *cfg, struct sg_bindings *b);

/* Makes src_bound hold b's prefixes for the interfaces that exist (by name,
 * now), and no other configured entry; learned entries a configured prefix
 * covers go (the file wins); marks the attachments the file names. */
void sg_bindings_apply(const struct sg_maps *maps, const struct sg_bindings *b);

/* The GC's part: learned entries unused for idle_ns go, each interface's
 * learned and src_state counts are recounted, and iface_state and
 * overflow_state entries of interfaces no longer attached go. */
void sg_bindings_gc(const struct sg_maps *maps, uint64_t idle_ns);

#endif
