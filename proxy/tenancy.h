/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tenancy.h - the proxy's side of tenants (lib/tenants.h): which interface
 * a session came in on, the tenant's message and recipient buckets shared
 * by all of its VMs' sessions on this host, and the tenant of senders seen
 * lately (for the ladder's events, which know the sender alone).
 *
 * Memory is bounded: buckets only for tenants with a tenant line (at most
 * SG_MAX_TENANTS, kept by name over reloads), and the senders' tenants in
 * a table of SG_TENANCY_SENDERS slots, overwritten, never grown.
 */
#ifndef SMTPGUARD_TENANCY_H
#define SMTPGUARD_TENANCY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <smtpguard/maps.h>
#include "pinned.h"
#include "tenants.h"

#define SG_TENANCY_SENDERS 4096

struct sg_tenancy;

struct sg_tenancy *sg_tenancy_new(void);
void sg_tenancy_free(struct sg_tenancy *t);
/* Asks the listeners (before listen) to note each connection's incoming
 * interface (IP_PKTINFO); 0, or -1 with errno. */
int sg_tenancy_listener(int fd, int family);
/* The interface an accepted session came in on: the one its source is
 * bound to (src_bound, a bridge port's), else the one its SYN arrived on;
 * 0 when neither tells. maps may be NULL. */
unsigned int sg_tenancy_ifindex(int fd, const struct sockaddr_storage *vm,
				const struct sg_maps *maps);
/* The sender (as the classifier keys it) is of tenant ("" none). */
void sg_tenancy_note_sender(struct sg_tenancy *t, const struct sg_src_key *key,
			    const char *tenant);
/* Its tenant when noted lately: 1 with name, else 0 and "". */
int sg_tenancy_sender(struct sg_tenancy *t, const struct sg_src_key *key, char *name,
		      size_t len);
/* Would the tenant's message bucket take one message? 0, or -1 with the
 * reason (the tenant limit, named). No limits, or t NULL: 0. */
int sg_tenancy_check_message(struct sg_tenancy *t, const char *tenant,
			     const struct sg_tenant_limits *l, char *reason, size_t len);
/* Takes one message of nrcpts recipients from the tenant's buckets; -1
 * (nothing taken) with the reason when either is empty. */
int sg_tenancy_charge(struct sg_tenancy *t, const char *tenant, const struct sg_tenant_limits *l,
		      uint32_t nrcpts, char *reason, size_t len);

#endif
