/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * bulk_share.h - the proxy's side of bulk bodies shared between hosts:
 * the behaviour store's hook (sg_behaviour_share_bulk) over the pinned
 * map bulk_shared (maps.h). It writes this host's counts of a shareable
 * body (sg_bulk_view_shareable) and returns the other hosts' spreading
 * senders of it, which the daemon read from the shared store.
 */
#ifndef SMTPGUARD_PROXY_BULK_SHARE_H
#define SMTPGUARD_PROXY_BULK_SHARE_H

#include <stdint.h>
#include "bulk.h"

/* ctx: the map's descriptor, cast with (void *)(intptr_t)fd. */
uint32_t sg_proxy_bulk_share(void *ctx, const struct sg_bulk_view *v, uint64_t now);

#endif
