/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tenants.h - which customer (tenant) a sender belongs to: the tenants
 * file (tenants = FILE), and two adapters that ask the hypervisor
 * (tenants_proxmox = DIR, tenants_libvirt = DIR). Read by the proxy (a
 * session's tenant, the tenant's limits), smtpguardctl (show, tenants) and
 * the daemon (a reload refuses a bad file). One directive a line, '#'
 * starts a comment:
 *
 *     iface  tap-web*        acme          # an interface pattern (fnmatch)
 *     prefix 192.0.2.0/24    acme          # an address prefix, IPv4 or IPv6
 *     vmid   101             acme          # a Proxmox VMID (tap101i0, veth101i0, fwpr101p0)
 *     tenant acme  msgs 200/h  rcpts 2000/h   # the tenant's limits on this host
 *     tenant trusted  exempt               # no tenant limits
 *
 * A sender's tenant, first found wins: the longest prefix holding its
 * address; the first iface line matching its interface; a vmid line for
 * the VMID its interface name carries; the Proxmox adapter (the VM's
 * config, a "tenant-NAME" tag); the libvirt adapter (the domain whose live
 * XML has the interface, its <metadata> element of namespace
 * SG_TENANT_LIBVIRT_NS). None of these: no tenant (nothing is per tenant
 * for that sender, and its events say "tenant":null).
 *
 * Memory is bounded whatever the senders do: the file's lines (at most
 * SG_MAX_TENANT_LINES) and tenants (SG_MAX_TENANTS) are what the operator
 * wrote; the adapters' answers are cached per interface name
 * (SG_TENANT_CACHE entries, each for SG_TENANT_CACHE_NS, "none" for
 * SG_TENANT_MISS_NS), never per address. The libvirt adapter reads the
 * directory once for all interfaces (an index, as old as the cache).
 */
#ifndef SMTPGUARD_TENANTS_H
#define SMTPGUARD_TENANTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <smtpguard/maps.h>
#include "pinned.h"

#define SG_TENANT_NAME_LEN	SG_TENANT_LEN	/* [A-Za-z0-9._-], 1 to 31 characters */
#define SG_MAX_TENANTS		4096
#define SG_MAX_TENANT_LINES	65536
#define SG_TENANT_CACHE		1024	/* interfaces the adapters' answers are kept for */
#define SG_TENANT_CACHE_NS	(30ULL * 1000000000ULL)
#define SG_TENANT_MISS_NS	(5ULL * 1000000000ULL)	/* "no tenant" is asked again sooner */
#define SG_TENANT_WARN_NS	(600ULL * 1000000000ULL)	/* an adapter's warning, said again */
/* the libvirt domain metadata element's namespace:
 *   <metadata><sg:tenant xmlns:sg="urn:smtpguard:tenant:1">acme</sg:tenant></metadata> */
#define SG_TENANT_LIBVIRT_NS	"urn:smtpguard:tenant:1"
/* a Proxmox tag naming the tenant: tenant-acme */
#define SG_TENANT_PROXMOX_TAG	"tenant-"

/* A tenant's limits across all its VMs on this host (tenant lines): as
 * rate classes hold them, interval 0 for none. */
struct sg_tenant_limits {
	uint64_t msg_interval_ns;
	uint32_t msg_burst;
	uint64_t rcpt_interval_ns;
	uint32_t rcpt_burst;
	int exempt;		/* "exempt": no tenant limits */
};

struct sg_tenants;

/* Reads the tenants file (path empty: no file, the adapters alone) and
 * keeps the adapters' directories (empty: that adapter off). NULL with err
 * ("FILE:LINE: what; how to fix") on error: a bad file is refused whole. */
struct sg_tenants *sg_tenants_load(const char *path, const char *proxmox_dir,
				   const char *libvirt_dir, char *err, size_t errlen);
void sg_tenants_free(struct sg_tenants *t);
/* What it holds, for the log: lines of each kind and tenants named. */
void sg_tenants_describe(const struct sg_tenants *t, char *buf, size_t len);

/*
 * The lookup: the tenant of a sender, by its address (sender; NULL or
 * family 0: none) and the interface it came in on (ifindex, 0: unknown;
 * the name is looked up in this network namespace), in the order above. Writes the name (NUL-terminated, at most SG_TENANT_NAME_LEN - 1
 * characters of [A-Za-z0-9._-]) and returns 1; 0 with name "" when the
 * sender has no tenant. Thread-safe; a NULL table has no tenants. May read
 * the adapters' files (cached per interface for SG_TENANT_CACHE_NS).
 */
int sg_tenant_of(struct sg_tenants *t, const struct sockaddr_storage *sender,
		 unsigned int ifindex, char *name, size_t len);
/*
 * THE API for other parts of smtpguard (the shared state in Redis: keys
 * and counters per tenant): given a sender (its address and/or the
 * ifindex it came in on), its tenant's name, as the proxy and smtpguardctl
 * ask it, with the pinned maps (maps: the daemon's, or the proxy's; t: a
 * table of sg_tenants_load, the daemon's d->tenants, or a session's
 * generation->tenants; in the proxy a session has it already, s->tenant,
 * and proxy/tenancy.h's sg_tenancy_sender() gives it by sender key):
 * the sender's prefix in t; else the tenant the daemon resolved for the
 * interface (the attachments map: its tenants file and adapters, read as
 * root); else t's own lines for the interface's name (before the daemon's
 * first look at a new interface). maps NULL: as sg_tenant_of.
 */
int sg_tenant_of_sender(const struct sg_maps *maps, struct sg_tenants *t,
			const struct sockaddr_storage *sender, unsigned int ifindex, char *name,
			size_t len);
/* A sender by its key (the classifier's): its interface from the key (a
 * bridge port's), else the address's binding (src_bound), else the
 * interface its state was made on (src_state); then as
 * sg_tenant_of_sender. For smtpguardctl and the shared store's groups. */
int sg_tenant_of_key(const struct sg_maps *maps, struct sg_tenants *t,
		     const struct sg_src_key *key, char *name, size_t len);
/* The same with the interface by name (ifname NULL or "": unknown). */
int sg_tenant_of_ifname(struct sg_tenants *t, const struct sockaddr_storage *sender,
			const char *ifname, char *name, size_t len);
/* The tenant's limits (a tenant line), or NULL when it has none. */
const struct sg_tenant_limits *sg_tenant_limits(const struct sg_tenants *t, const char *name);
/* The tenant names of tenant lines, for reports: count, and the i-th. */
size_t sg_tenants_count(const struct sg_tenants *t);
const char *sg_tenants_name(const struct sg_tenants *t, size_t i);

/* The adapters alone (the unit tests; the lookup uses them in order). */
/* Proxmox's VMID in an interface name: tap{VMID}i{N}, veth{VMID}i{N},
 * fwpr{VMID}p{N}, fwln{VMID}i{N}, fwbr{VMID}i{N}; 0 when none. */
unsigned long sg_proxmox_vmid(const char *ifname);
/* The tenant tag of VMID's config under dir (qemu-server/VMID.conf, else
 * lxc/VMID.conf): 1 with name; 0 none; -1 with err (a file missing or
 * unreadable, a tag that is no tenant name). */
int sg_proxmox_tenant(const char *dir, unsigned long vmid, char *name, size_t len, char *err,
		      size_t errlen);
/* The tenant of the libvirt domain whose live XML under dir (DOMAIN.xml)
 * has ifname as an interface target: 1 with name (and the domain's name in
 * domain); 0 no domain has it, or it has no tenant; -1 with err (the
 * directory unreadable, a garbled metadata element). */
int sg_libvirt_tenant(const char *dir, const char *ifname, char *name, size_t len,
		      char *domain, size_t domain_len, char *err, size_t errlen);
/* Is s a tenant name ([A-Za-z0-9._-], 1 to SG_TENANT_NAME_LEN - 1)? */
int sg_tenant_name_ok(const char *s);

#endif
