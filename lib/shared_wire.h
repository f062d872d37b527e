/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * shared_wire.h - what the shared store (Redis) and smtpguard say to each
 * other, as text, apart from the connection: the `redis` setting read into
 * an address, a sender written as the member the store keys it by (and
 * read back), and the group a sender's shared limits count against.
 *
 * No Redis here (lib/ links no hiredis): the daemon's sync (daemon/shared_*.c)
 * and the unit tests (test_shared_wire) use it.
 */
#ifndef SMTPGUARD_SHARED_WIRE_H
#define SMTPGUARD_SHARED_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <smtpguard/maps.h>

#define SG_REDIS_HOST_LEN 256
#define SG_REDIS_PATH_LEN 108	/* sockaddr_un's sun_path */
/* a sender or group as text: an IPv6 address and a prefix length */
#define SG_SHARED_NAME_LEN 64
#define SG_SHARED_HOST_ID_LEN 128

/* This host's name in the shared store (bulk bodies are counted per host):
 * its host name, and the bpffs root when not the default one (two
 * instances on one host); truncated to fit. */
void sg_shared_host_id(const char *hostname, const char *bpffs_root, char *buf, size_t len);

enum sg_redis_kind {
	SG_REDIS_NONE = 0,
	SG_REDIS_UNIX = 1,
	SG_REDIS_TCP = 2,
};

struct sg_redis_addr {
	int kind;			/* enum sg_redis_kind */
	char path[SG_REDIS_PATH_LEN];	/* unix: */
	char host[SG_REDIS_HOST_LEN];	/* tcp: a name, an IPv4 or an IPv6 address */
	int port;
};

/* `redis = unix:/PATH | tcp:HOST:PORT | tcp:[IPV6]:PORT | none` (an empty
 * value is none). -1 with err saying what is wrong and what to write. */
int sg_redis_addr_parse(const char *spec, struct sg_redis_addr *out, char *err,
			size_t errlen);

/* A sender as the store's member: "a.b.c.d" for IPv4, the IPv6 address
 * (already cut to ipv6_source_prefix by the classifier) for IPv6. A bridge
 * port's ifindex is the host's own and is not shared. */
void sg_shared_sender_name(const struct sg_src_key *key, char *buf, size_t len);
/* Back from a member: -1 when it is not one (the store is not trusted to
 * hold only ours). ifindex is 0. */
int sg_shared_sender_parse(const char *name, struct sg_src_key *key);

/* The group of a sender of no tenant, whose shared limits it counts
 * against: its address cut to prefix_v4 (IPv4) or prefix_v6 (IPv6),
 * written "ADDR/LEN" (a tenant's sender is in "tenant:NAME": shared_sync.c). */
void sg_shared_group_name(const struct sg_src_key *key, int prefix_v4, int prefix_v6,
			  char *buf, size_t len);

#endif
