/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * uplink.h - the proxy's uplink found when `uplink` is not set: the
 * interface of the default route (IPv4's, else IPv6's; of several, the
 * lowest metric), read through rtnetlink in the caller's network
 * namespace. When that interface is a Linux bridge, the MX's replies come
 * in on its ports, not on the bridge: the uplinks are then the bridge's
 * ports that are not VM-facing (none matching `interfaces`), the physical
 * port(s) of a host like Proxmox's vmbr0.
 */
#ifndef SMTPGUARD_UPLINK_H
#define SMTPGUARD_UPLINK_H

#include <stddef.h>
#include "config.h"

/* Fills cfg->uplinks (and n_uplinks) from the routes; why (for the log)
 * says how they were found. -1 with err when no uplink can be found. */
int sg_uplink_detect(struct sg_config *cfg, char *why, size_t whylen, char *err,
		     size_t errlen);

#endif
