/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tenants.c - the tenants file, the lookup of a sender's tenant, and the
 * adapters' answers cached per interface (see tenants.h; the adapters'
 * readers are tenants_adapters.c).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fnmatch.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "log.h"
#include "parse.h"
#include "tenants.h"
#include "tenants_adapters.h"

#define TENANTS_LINE_MAX 4096

struct iface_rule {
	char pattern[IF_NAMESIZE];
	int tenant;		/* index into names */
	int line;
};

struct prefix_rule {
	struct sg_prefix p;
	int tenant;
	int line;
};

struct vmid_rule {
	unsigned long vmid;
	int tenant;
	int line;
};

struct tenant_name {
	char name[SG_TENANT_NAME_LEN];
	struct sg_tenant_limits limits;
	int limits_line;	/* its tenant line; 0: none */
};

/* The interface part of a lookup, remembered per interface name. */
struct cache_entry {
	char ifname[IF_NAMESIZE];
	char tenant[SG_TENANT_NAME_LEN];	/* "": none */
	uint64_t at_ns;
};

struct sg_tenants {
	struct iface_rule *ifaces;
	size_t n_ifaces, cap_ifaces;
	struct prefix_rule *prefixes;
	size_t n_prefixes, cap_prefixes;
	struct vmid_rule *vmids;
	size_t n_vmids, cap_vmids;
	struct tenant_name *names;	/* every tenant the file names */
	size_t n_names, cap_names;
	size_t n_limited;		/* of those, with a tenant line */
	char proxmox_dir[256];
	char libvirt_dir[256];
	pthread_mutex_t lock;		/* the cache and the libvirt index */
	struct cache_entry cache[SG_TENANT_CACHE];
	size_t n_cache;
	/* the libvirt adapter's answer for every interface of every domain,
	 * from one pass over the directory (SG_TENANT_MISS_NS old at most
	 * when asked for one it lacks) */
	struct cache_entry *libvirt;
	size_t n_libvirt, cap_libvirt;
	uint64_t libvirt_at_ns;
	/* the adapters' warnings, each said once a SG_TENANT_WARN_NS: the
	 * daemon asks again every few seconds */
	pthread_mutex_t warn_lock;
	struct {
		uint64_t hash, at_ns;
	} warned[16];
};

int sg_tenant_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n >= SG_TENANT_NAME_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

void sg_tenants_free(struct sg_tenants *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->warn_lock);
	free(t->ifaces);
	free(t->prefixes);
	free(t->vmids);
	free(t->names);
	free(t->libvirt);
	free(t);
}

/* The index of a tenant name, added when new; -1 with err. */
static int name_index(struct sg_tenants *t, const char *name, const char *path, int line,
		      char *err, size_t errlen)
{
	for (size_t i = 0; i < t->n_names; i++)
		if (strcmp(t->names[i].name, name) == 0)
			return (int)i;
	if (!sg_tenant_name_ok(name)) {
		snprintf(err, errlen, "%s:%d: '%s' is not a tenant name (1 to %d letters, digits, "
			 "'.', '_' or '-')", path, line, name, SG_TENANT_NAME_LEN - 1);
		return -1;
	}
	if (t->n_names == SG_MAX_TENANTS) {
		snprintf(err, errlen, "%s:%d: more than %d tenants", path, line, SG_MAX_TENANTS);
		return -1;
	}
	if (sg_grow((void **)&t->names, t->n_names, &t->cap_names, sizeof(*t->names))) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	memset(&t->names[t->n_names], 0, sizeof(t->names[0]));
	snprintf(t->names[t->n_names].name, SG_TENANT_NAME_LEN, "%s", name);
	return (int)t->n_names++;
}

static int prefix_equal(const struct sg_prefix *a, const struct sg_prefix *b)
{
	return a->family == b->family && a->len == b->len &&
	       memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

/* Does prefix p hold the address (family, 4 or 16 bytes)? */
static int prefix_holds(const struct sg_prefix *p, int family, const uint8_t *addr)
{
	unsigned int full = p->len / 8;

	if (p->family != family || memcmp(p->addr, addr, full) != 0)
		return 0;
	if (p->len % 8) {
		uint8_t mask = (uint8_t)(0xff00 >> (p->len % 8));

		return (p->addr[full] & mask) == (addr[full] & mask);
	}
	return 1;
}

/* "iface PATTERN TENANT", "prefix PREFIX TENANT", "vmid N TENANT". */
static int read_rule(struct sg_tenants *t, const char *kind, char **words, int n,
		     const char *path, int line, char *err, size_t errlen)
{
	char why[SG_ERR_LEN];
	int tenant;

	if (n != 3) {
		snprintf(err, errlen, "%s:%d: '%s' takes two words, what and the tenant (e.g. "
			 "'%s %s acme')", path, line, kind, kind,
			 kind[0] == 'i' ? "tap101i*" : kind[0] == 'p' ? "192.0.2.0/24" : "101");
		return -1;
	}
	tenant = name_index(t, words[2], path, line, err, errlen);
	if (tenant < 0)
		return -1;
	if (strcmp(kind, "iface") == 0) {
		struct iface_rule *r;

		if (strlen(words[1]) >= IF_NAMESIZE) {
			snprintf(err, errlen, "%s:%d: interface pattern '%s' is longer than an "
				 "interface name (%d characters at most)", path, line, words[1],
				 IF_NAMESIZE - 1);
			return -1;
		}
		for (size_t i = 0; i < t->n_ifaces; i++) {
			if (strcmp(t->ifaces[i].pattern, words[1]) == 0 &&
			    t->ifaces[i].tenant != tenant) {
				snprintf(err, errlen, "%s:%d: interface pattern %s belongs to %s on "
					 "line %d already; an interface belongs to one tenant", path,
					 line, words[1], t->names[t->ifaces[i].tenant].name,
					 t->ifaces[i].line);
				return -1;
			}
		}
		if (sg_grow((void **)&t->ifaces, t->n_ifaces, &t->cap_ifaces, sizeof(*r)))
			goto oom;
		r = &t->ifaces[t->n_ifaces++];
		snprintf(r->pattern, sizeof(r->pattern), "%s", words[1]);
		r->tenant = tenant;
		r->line = line;
	} else if (strcmp(kind, "prefix") == 0) {
		struct prefix_rule *r;
		struct sg_prefix p;

		if (sg_parse_prefix(words[1], &p, why, sizeof(why))) {
			snprintf(err, errlen, "%s:%d: %s", path, line, why);
			return -1;
		}
		for (size_t i = 0; i < t->n_prefixes; i++) {
			if (prefix_equal(&t->prefixes[i].p, &p) && t->prefixes[i].tenant != tenant) {
				snprintf(err, errlen, "%s:%d: prefix %s belongs to %s on line %d "
					 "already; an address belongs to one tenant", path, line,
					 words[1], t->names[t->prefixes[i].tenant].name,
					 t->prefixes[i].line);
				return -1;
			}
		}
		if (sg_grow((void **)&t->prefixes, t->n_prefixes, &t->cap_prefixes, sizeof(*r)))
			goto oom;
		r = &t->prefixes[t->n_prefixes++];
		r->p = p;
		r->tenant = tenant;
		r->line = line;
	} else {
		struct vmid_rule *r;
		uint64_t vmid;

		if (sg_parse_uint(words[1], 100, 999999999, &vmid, why, sizeof(why))) {
			snprintf(err, errlen, "%s:%d: VMID %s: %s (Proxmox VMIDs are 100 to "
				 "999999999)", path, line, words[1], why);
			return -1;
		}
		for (size_t i = 0; i < t->n_vmids; i++) {
			if (t->vmids[i].vmid == vmid && t->vmids[i].tenant != tenant) {
				snprintf(err, errlen, "%s:%d: VMID %s belongs to %s on line %d "
					 "already; a VM belongs to one tenant", path, line, words[1],
					 t->names[t->vmids[i].tenant].name, t->vmids[i].line);
				return -1;
			}
		}
		if (sg_grow((void **)&t->vmids, t->n_vmids, &t->cap_vmids, sizeof(*r)))
			goto oom;
		r = &t->vmids[t->n_vmids++];
		r->vmid = (unsigned long)vmid;
		r->tenant = tenant;
		r->line = line;
	}
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", path);
	return -1;
}

/* "tenant NAME [msgs COUNT/UNIT] [rcpts COUNT/UNIT] [exempt]". */
static int read_tenant(struct sg_tenants *t, char **words, int n, const char *path, int line,
		       char *err, size_t errlen)
{
	struct tenant_name *tn;
	char why[SG_ERR_LEN];
	int i, tenant;

	if (n < 3) {
		snprintf(err, errlen, "%s:%d: a tenant line names the tenant and its limits (e.g. "
			 "'tenant acme msgs 200/h rcpts 2000/h', or 'tenant acme exempt')", path,
			 line);
		return -1;
	}
	tenant = name_index(t, words[1], path, line, err, errlen);
	if (tenant < 0)
		return -1;
	tn = &t->names[tenant];
	if (tn->limits_line) {
		snprintf(err, errlen, "%s:%d: tenant %s has its limits on line %d already; one "
			 "tenant line a tenant", path, line, tn->name, tn->limits_line);
		return -1;
	}
	for (i = 2; i < n; i++) {
		if (strcmp(words[i], "exempt") == 0) {
			tn->limits.exempt = 1;
			continue;
		}
		if (strcmp(words[i], "msgs") != 0 && strcmp(words[i], "rcpts") != 0) {
			snprintf(err, errlen, "%s:%d: '%s' is not a tenant setting (msgs COUNT/UNIT, "
				 "rcpts COUNT/UNIT, exempt)", path, line, words[i]);
			return -1;
		}
		if (i + 1 == n) {
			snprintf(err, errlen, "%s:%d: %s needs a limit (e.g. '%s 200/h', or none)",
				 path, line, words[i], words[i]);
			return -1;
		}
		if (sg_parse_limit(words[i + 1], words[i][0] == 'm' ? &tn->limits.msg_interval_ns :
				   &tn->limits.rcpt_interval_ns,
				   words[i][0] == 'm' ? &tn->limits.msg_burst : &tn->limits.rcpt_burst,
				   why, sizeof(why))) {
			snprintf(err, errlen, "%s:%d: %s %s: %s", path, line, words[i], words[i + 1],
				 why);
			return -1;
		}
		i++;
	}
	if (tn->limits.exempt && (tn->limits.msg_interval_ns || tn->limits.rcpt_interval_ns)) {
		snprintf(err, errlen, "%s:%d: tenant %s is exempt and has limits: choose one", path,
			 line, tn->name);
		return -1;
	}
	tn->limits_line = line;
	t->n_limited++;
	return 0;
}

static int read_line(struct sg_tenants *t, char *text, const char *path, int line, char *err,
		     size_t errlen)
{
	char *words[16], *save = NULL, *w, *hash = strchr(text, '#');
	int n = 0;

	if (hash)
		*hash = '\0';
	while ((w = strtok_r(n ? NULL : text, " \t\r\n", &save))) {
		if (n == (int)(sizeof(words) / sizeof(words[0]))) {
			snprintf(err, errlen, "%s:%d: more than %zu words", path, line,
				 sizeof(words) / sizeof(words[0]));
			return -1;
		}
		words[n++] = w;
	}
	if (!n)
		return 0;
	if (t->n_ifaces + t->n_prefixes + t->n_vmids + t->n_limited >= SG_MAX_TENANT_LINES) {
		snprintf(err, errlen, "%s:%d: more than %d lines", path, line, SG_MAX_TENANT_LINES);
		return -1;
	}
	if (strcmp(words[0], "iface") == 0 || strcmp(words[0], "prefix") == 0 ||
	    strcmp(words[0], "vmid") == 0)
		return read_rule(t, words[0], words, n, path, line, err, errlen);
	if (strcmp(words[0], "tenant") == 0)
		return read_tenant(t, words, n, path, line, err, errlen);
	snprintf(err, errlen, "%s:%d: '%s' is not a directive (iface PATTERN TENANT, prefix "
		 "PREFIX TENANT, vmid VMID TENANT, tenant NAME msgs COUNT/UNIT rcpts COUNT/UNIT "
		 "| exempt)", path, line, words[0]);
	return -1;
}

struct sg_tenants *sg_tenants_load(const char *path, const char *proxmox_dir,
				   const char *libvirt_dir, char *err, size_t errlen)
{
	struct sg_tenants *t = calloc(1, sizeof(*t));
	char text[TENANTS_LINE_MAX];
	int line = 0, ret = 0;
	FILE *f;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->warn_lock, NULL);
	snprintf(t->proxmox_dir, sizeof(t->proxmox_dir), "%s", proxmox_dir ? proxmox_dir : "");
	snprintf(t->libvirt_dir, sizeof(t->libvirt_dir), "%s", libvirt_dir ? libvirt_dir : "");
	if (!path || !path[0])
		return t;
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open tenants file %s: %s", path, strerror(errno));
		sg_tenants_free(t);
		return NULL;
	}
	while (!ret && fgets(text, sizeof(text), f)) {
		line++;
		if (!strchr(text, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line longer than %d characters", path, line,
				 TENANTS_LINE_MAX - 2);
			ret = -1;
			break;
		}
		ret = read_line(t, text, path, line, err, errlen);
	}
	if (!ret && ferror(f)) {
		snprintf(err, errlen, "cannot read tenants file %s: %s", path, strerror(errno));
		ret = -1;
	}
	fclose(f);
	if (ret) {
		sg_tenants_free(t);
		return NULL;
	}
	return t;
}

void sg_tenants_describe(const struct sg_tenants *t, char *buf, size_t len)
{
	snprintf(buf, len, "%zu tenant(s), %zu with limits; %zu interface, %zu prefix, %zu "
		 "VMID line(s); Proxmox adapter %s%s, libvirt adapter %s%s", t->n_names,
		 t->n_limited, t->n_ifaces, t->n_prefixes, t->n_vmids,
		 t->proxmox_dir[0] ? "on " : "off", t->proxmox_dir,
		 t->libvirt_dir[0] ? "on " : "off", t->libvirt_dir);
}

size_t sg_tenants_count(const struct sg_tenants *t)
{
	return t ? t->n_names : 0;
}

const char *sg_tenants_name(const struct sg_tenants *t, size_t i)
{
	return t && i < t->n_names ? t->names[i].name : NULL;
}

const struct sg_tenant_limits *sg_tenant_limits(const struct sg_tenants *t, const char *name)
{
	if (!t || !name || !name[0])
		return NULL;
	for (size_t i = 0; i < t->n_names; i++)
		if (t->names[i].limits_line && strcmp(t->names[i].name, name) == 0)
			return &t->names[i].limits;
	return NULL;
}

/* An adapter's warning, unless the same was said within SG_TENANT_WARN_NS
 * (a table of the last 16, the oldest replaced). */
static void __attribute__((format(printf, 2, 3))) adapter_warn(struct sg_tenants *t,
							       const char *fmt, ...)
{
	uint64_t h = 1469598103934665603ULL, now = sg_now_ns();
	char msg[SG_ERR_LEN * 3];
	size_t oldest = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (const char *p = msg; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	pthread_mutex_lock(&t->warn_lock);
	for (size_t i = 0; i < sizeof(t->warned) / sizeof(t->warned[0]); i++) {
		if (t->warned[i].hash == h && t->warned[i].at_ns &&
		    now - t->warned[i].at_ns < SG_TENANT_WARN_NS) {
			pthread_mutex_unlock(&t->warn_lock);
			return;
		}
		if (t->warned[i].at_ns < t->warned[oldest].at_ns)
			oldest = i;
	}
	t->warned[oldest].hash = h;
	t->warned[oldest].at_ns = now;
	pthread_mutex_unlock(&t->warn_lock);
	sg_warn("%s", msg);
}

/* The libvirt index anew: every domain's interfaces and its tenant (""
 * for none, or a garbled element, warned). With the lock. */
static void libvirt_index(struct sg_tenants *t, uint64_t now)
{
	char err[SG_ERR_LEN * 2], tenant[SG_TENANT_NAME_LEN], dev[IF_NAMESIZE + 1];
	DIR *d = opendir(t->libvirt_dir);
	struct dirent *e;

	t->n_libvirt = 0;
	t->libvirt_at_ns = now;
	if (!d) {
		adapter_warn(t, "libvirt adapter: cannot read %s: %s (tenants_libvirt names libvirt's live "
			"XML directory, /run/libvirt/qemu): no VM has a tenant by it",
			t->libvirt_dir, strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char path[512];
		const char *p;
		char *xml;

		if (n < 5 || strcmp(e->d_name + n - 4, ".xml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", t->libvirt_dir, e->d_name);
		xml = sg_libvirt_read_xml(path);
		if (!xml) {
			adapter_warn(t, "libvirt adapter: cannot read %s: %s", path, strerror(errno));
			continue;
		}
		if (sg_libvirt_metadata_tenant(xml, path, tenant, sizeof(tenant), err, sizeof(err)) < 0) {
			adapter_warn(t, "%s: its interfaces have no tenant", err);
			tenant[0] = '\0';
		}
		for (p = xml; sg_libvirt_next_interface(&p, dev, sizeof(dev));) {
			struct cache_entry *c;

			if (strlen(dev) >= IF_NAMESIZE || t->n_libvirt == SG_TENANT_CACHE * 4)
				continue;
			if (sg_grow((void **)&t->libvirt, t->n_libvirt, &t->cap_libvirt, sizeof(*c)))
				break;
			c = &t->libvirt[t->n_libvirt++];
			snprintf(c->ifname, sizeof(c->ifname), "%s", dev);
			snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
			c->at_ns = now;
		}
		free(xml);
	}
	closedir(d);
}

/* The interface in the libvirt index: 1 with a tenant, 0 without, -1 not there. */
static int libvirt_find(const struct sg_tenants *t, const char *ifname, char *name, size_t len)
{
	for (size_t i = 0; i < t->n_libvirt; i++) {
		if (strcmp(t->libvirt[i].ifname, ifname) == 0) {
			snprintf(name, len, "%s", t->libvirt[i].tenant);
			return name[0] != '\0';
		}
	}
	return -1;
}

/* The libvirt adapter through its index (made anew when SG_TENANT_CACHE_NS
 * old, or SG_TENANT_MISS_NS old and without the interface: a domain
 * started since): 1 with name, 0 none. */
static int libvirt_lookup(struct sg_tenants *t, const char *ifname, char *name, size_t len)
{
	uint64_t now = sg_now_ns();
	int r;

	pthread_mutex_lock(&t->lock);
	if (!t->libvirt_at_ns || now - t->libvirt_at_ns >= SG_TENANT_CACHE_NS)
		libvirt_index(t, now);
	r = libvirt_find(t, ifname, name, len);
	if (r < 0 && now - t->libvirt_at_ns >= SG_TENANT_MISS_NS) {
		libvirt_index(t, now);
		r = libvirt_find(t, ifname, name, len);
	}
	pthread_mutex_unlock(&t->lock);
	if (r <= 0 && len)
		name[0] = '\0';
	return r > 0;
}

/* The lookup. */

/* The interface part: file lines, then the adapters. Called with the
 * cache's lock not held (it reads files). */
static void tenant_of_interface(struct sg_tenants *t, const char *ifname, char *name, size_t len)
{
	char err[SG_ERR_LEN * 2];
	unsigned long vmid;

	name[0] = '\0';
	for (size_t i = 0; i < t->n_ifaces; i++) {
		if (fnmatch(t->ifaces[i].pattern, ifname, 0) == 0) {
			snprintf(name, len, "%s", t->names[t->ifaces[i].tenant].name);
			return;
		}
	}
	vmid = sg_proxmox_vmid(ifname);
	if (vmid) {
		for (size_t i = 0; i < t->n_vmids; i++) {
			if (t->vmids[i].vmid == vmid) {
				snprintf(name, len, "%s", t->names[t->vmids[i].tenant].name);
				return;
			}
		}
		if (t->proxmox_dir[0]) {
			int r = sg_proxmox_tenant(t->proxmox_dir, vmid, name, len, err, sizeof(err));

			if (r < 0)
				adapter_warn(t, "%s: %s has no tenant", err, ifname);
			if (r)
				return;
		}
	}
	if (t->libvirt_dir[0])
		libvirt_lookup(t, ifname, name, len);
}

int sg_tenant_of_ifname(struct sg_tenants *t, const struct sockaddr_storage *sender,
			const char *ifname, char *name, size_t len)
{
	char found[SG_TENANT_NAME_LEN] = "";
	uint64_t now;

	if (len)
		name[0] = '\0';
	if (!t)
		return 0;
	if (sender && (sender->ss_family == AF_INET || sender->ss_family == AF_INET6)) {
		const uint8_t *addr = sender->ss_family == AF_INET ?
			(const uint8_t *)&((const struct sockaddr_in *)sender)->sin_addr :
			(const uint8_t *)&((const struct sockaddr_in6 *)sender)->sin6_addr;
		int family = sender->ss_family, best = -1;
		uint8_t v4[4];

		/* an IPv4-mapped IPv6 address is the IPv4 address */
		if (family == AF_INET6 && memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
			memcpy(v4, addr + 12, 4);
			addr = v4;
			family = AF_INET;
		}
		for (size_t i = 0; i < t->n_prefixes; i++)
			if (prefix_holds(&t->prefixes[i].p, family, addr) &&
			    (best < 0 || t->prefixes[i].p.len > t->prefixes[best].p.len))
				best = (int)i;
		if (best >= 0) {
			snprintf(name, len, "%s", t->names[t->prefixes[best].tenant].name);
			return 1;
		}
	}
	if (!ifname || !ifname[0])
		return 0;
	now = sg_now_ns();
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n_cache; i++) {
		struct cache_entry *c = &t->cache[i];

		if (strcmp(c->ifname, ifname) == 0 &&
		    now - c->at_ns < (c->tenant[0] ? SG_TENANT_CACHE_NS : SG_TENANT_MISS_NS)) {
			snprintf(found, sizeof(found), "%s", c->tenant);
			pthread_mutex_unlock(&t->lock);
			snprintf(name, len, "%s", found);
			return found[0] != '\0';
		}
	}
	pthread_mutex_unlock(&t->lock);
	tenant_of_interface(t, ifname, found, sizeof(found));
	pthread_mutex_lock(&t->lock);
	{
		/* the same name's entry, else a free slot, else the oldest */
		size_t slot = t->n_cache;

		for (size_t i = 0; i < t->n_cache; i++)
			if (strcmp(t->cache[i].ifname, ifname) == 0)
				slot = i;
		if (slot == t->n_cache && t->n_cache == SG_TENANT_CACHE) {
			slot = 0;
			for (size_t i = 1; i < t->n_cache; i++)
				if (t->cache[i].at_ns < t->cache[slot].at_ns)
					slot = i;
		} else if (slot == t->n_cache) {
			t->n_cache++;
		}
		snprintf(t->cache[slot].ifname, sizeof(t->cache[slot].ifname), "%s", ifname);
		snprintf(t->cache[slot].tenant, sizeof(t->cache[slot].tenant), "%s", found);
		t->cache[slot].at_ns = now;
	}
	pthread_mutex_unlock(&t->lock);
	snprintf(name, len, "%s", found);
	return found[0] != '\0';
}

int sg_tenant_of(struct sg_tenants *t, const struct sockaddr_storage *sender,
		 unsigned int ifindex, char *name, size_t len)
{
	char ifname[IF_NAMESIZE] = "";

	if (ifindex && !if_indextoname(ifindex, ifname))
		ifname[0] = '\0';
	return sg_tenant_of_ifname(t, sender, ifname, name, len);
}

int sg_tenant_of_sender(const struct sg_maps *maps, struct sg_tenants *t,
			const struct sockaddr_storage *sender, unsigned int ifindex, char *name,
			size_t len)
{
	char ifname[IF_NAMESIZE + 1] = "";
	struct sg_attachment a;
	__u32 key = ifindex;

	if (len)
		name[0] = '\0';
	if (t && sg_tenant_of_ifname(t, sender, NULL, name, len))
		return 1;
	if (ifindex && maps && maps->attachments >= 0 &&
	    bpf_map_lookup_elem(maps->attachments, &key, &a) == 0) {
		if (a.tenant[0]) {
			snprintf(name, len, "%.*s", (int)sizeof(a.tenant) - 1, a.tenant);
			return sg_tenant_name_ok(name);
		}
		snprintf(ifname, sizeof(ifname), "%.*s", (int)sizeof(a.ifname), a.ifname);
	} else if (ifindex && !if_indextoname(ifindex, ifname)) {
		ifname[0] = '\0';
	}
	return sg_tenant_of_ifname(t, NULL, ifname, name, len);
}

int sg_tenant_of_key(const struct sg_maps *maps, struct sg_tenants *t,
		     const struct sg_src_key *key, char *name, size_t len)
{
	static const __u8 mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct sg_lpm_v6_key bound_key = { .prefixlen = 128 };
	struct sockaddr_storage ss;
	struct sg_src_state st;
	struct sg_bound b;
	__u32 ifindex = key->ifindex;

	memset(&ss, 0, sizeof(ss));
	if (memcmp(key->addr, mapped, 12) == 0) {
		ss.ss_family = AF_INET;
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, key->addr + 12, 4);
	} else {
		ss.ss_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, key->addr, 16);
	}
	memcpy(bound_key.addr, key->addr, 16);
	if (!ifindex && maps && maps->src_bound >= 0 &&
	    bpf_map_lookup_elem(maps->src_bound, &bound_key, &b) == 0)
		ifindex = b.ifindex;
	if (!ifindex && maps && sg_source_read(maps, key, &st) == 0)
		ifindex = st.ifindex;
	return sg_tenant_of_sender(maps, t, &ss, ifindex, name, len);
}
