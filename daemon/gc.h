/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * gc.h - evicts per-source entries idle longer than state_idle_timeout and
 * under no penalty, so the fixed-size table keeps room for active senders.
 */
#ifndef SMTPGUARD_GC_H
#define SMTPGUARD_GC_H

#include <stdint.h>
#include "pinned.h"

/* Returns how many entries were evicted. */
int sg_gc_sources(const struct sg_maps *maps, uint64_t idle_timeout_ns);

#endif
