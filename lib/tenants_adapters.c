/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tenants_adapters.c - the hypervisors' files read for a VM's tenant (see
 * tenants.h): Proxmox VE's VM configs (the VMID in an interface's name, a
 * "tenant-NAME" tag) and libvirt's live domain XML (an interface's
 * target, our metadata element). Not an XML parser: a reader of the few
 * elements it needs, in the forms libvirt writes them, that refuses what
 * it cannot read (fuzz_tenants).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "log.h"
#include "tenants.h"
#include "tenants_adapters.h"

#define LIBVIRT_XML_MAX (4 << 20)	/* a domain's live XML read at most this far */

/* The Proxmox adapter. */

/* PREFIX{digits}SEP{digits} and nothing else: the first number. */
static unsigned long vmid_in(const char *ifname, const char *prefix, char sep)
{
	size_t n = strlen(prefix);
	const char *p = ifname + n;
	unsigned long vmid = 0;
	int digits = 0;

	if (strncmp(ifname, prefix, n) != 0)
		return 0;
	for (; isdigit((unsigned char)*p) && digits < 10; p++, digits++)
		vmid = vmid * 10 + (unsigned long)(*p - '0');
	if (!digits || *p++ != sep || !isdigit((unsigned char)*p))
		return 0;
	while (isdigit((unsigned char)*p))
		p++;
	return *p ? 0 : vmid;
}

unsigned long sg_proxmox_vmid(const char *ifname)
{
	static const struct {
		const char *prefix;
		char sep;
	} names[] = {
		{ "tap", 'i' }, { "veth", 'i' }, { "fwpr", 'p' }, { "fwln", 'i' }, { "fwbr", 'i' },
	};
	unsigned long vmid;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((vmid = vmid_in(ifname, names[i].prefix, names[i].sep)))
			return vmid;
	return 0;
}

int sg_proxmox_tenant(const char *dir, unsigned long vmid, char *name, size_t len, char *err,
		      size_t errlen)
{
	static const char *const kinds[] = { "qemu-server", "lxc" };
	char path[512], text[4096], found[SG_TENANT_NAME_LEN] = "";
	int line = 0, ret = 0;
	FILE *f = NULL;

	name[0] = '\0';
	for (size_t i = 0; i < 2 && !f; i++) {
		snprintf(path, sizeof(path), "%s/%s/%lu.conf", dir, kinds[i], vmid);
		f = fopen(path, "r");
		if (!f && errno != ENOENT) {
			snprintf(err, errlen, "Proxmox adapter: cannot read %s: %s (the proxy's user "
				 "needs read access: e.g. its group www-data)", path, strerror(errno));
			return -1;
		}
	}
	if (!f) {
		snprintf(err, errlen, "Proxmox adapter: no %s/qemu-server/%lu.conf nor "
			 "%s/lxc/%lu.conf (VMID %lu unknown to this host, or tenants_proxmox "
			 "wrong)", dir, vmid, dir, vmid, vmid);
		return -1;
	}
	while (!ret && fgets(text, sizeof(text), f)) {
		char *save = NULL, *tag, *v;

		line++;
		if (text[0] == '[')	/* a snapshot's section: not the VM as it runs */
			break;
		if (strncmp(text, "tags:", 5) != 0)
			continue;
		for (v = text + 5; (tag = strtok_r(v, "; ,\t\r\n", &save)); v = NULL) {
			const char *tn = tag + strlen(SG_TENANT_PROXMOX_TAG);

			if (strncmp(tag, SG_TENANT_PROXMOX_TAG, strlen(SG_TENANT_PROXMOX_TAG)) != 0)
				continue;
			if (!sg_tenant_name_ok(tn)) {
				snprintf(err, errlen, "Proxmox adapter: %s:%d: tag '%s' names no tenant "
					 "(tenant-NAME, NAME of 1 to %d letters, digits, '.', '_', "
					 "'-')", path, line, tag, SG_TENANT_NAME_LEN - 1);
				ret = -1;
				break;
			}
			if (found[0] && strcmp(found, tn) != 0) {
				snprintf(err, errlen, "Proxmox adapter: %s:%d: two tenant tags "
					 "(tenant-%s, %s): a VM belongs to one tenant", path, line,
					 found, tag);
				ret = -1;
				break;
			}
			snprintf(found, sizeof(found), "%s", tn);
		}
	}
	fclose(f);
	if (ret)
		return -1;
	if (!found[0])
		return 0;
	snprintf(name, len, "%s", found);
	return 1;
}

/* The libvirt adapter: a small reader of the few elements it needs, not
 * an XML parser. libvirt writes the live XML itself, so its forms are
 * known: <target dev='vnet3'/> inside <interface>, and the metadata
 * element with its namespace declared on it. */

/* The value of attribute attr (with its '=' and quote) in the tag [tag, end). */
static int attr_value(const char *tag, const char *end, const char *attr, char *out, size_t len)
{
	size_t an = strlen(attr);

	for (const char *p = tag; p + an + 2 < end; p++) {
		const char *q;
		char quote;
		size_t n;

		if (strncmp(p, attr, an) != 0 || !isspace((unsigned char)p[-1]) || p[an] != '=')
			continue;
		quote = p[an + 1];
		if (quote != '\'' && quote != '"')
			return -1;
		q = memchr(p + an + 2, quote, (size_t)(end - (p + an + 2)));
		if (!q)
			return -1;
		n = (size_t)(q - (p + an + 2));
		if (n >= len)
			return -1;
		memcpy(out, p + an + 2, n);
		out[n] = '\0';
		return 0;
	}
	return -1;
}

/* The next <interface> element's <target dev='...'> from *p on: 1 with
 * dev (and *p past the element), 0 at the end. */
int sg_libvirt_next_interface(const char **p, char *dev, size_t len)
{
	while ((*p = strstr(*p, "<interface"))) {
		const char *end = strstr(*p, "</interface>"), *target = *p;

		if (!end)
			return 0;
		*p = end;
		while ((target = strstr(target, "<target")) && target < end) {
			const char *close = strchr(target, '>');

			if (close && close < end && attr_value(target, close, "dev", dev, len) == 0)
				return 1;
			target += 7;
		}
	}
	return 0;
}

/* Does an <interface> element of xml have <target dev='ifname'>? */
static int has_interface(const char *xml, const char *ifname)
{
	char dev[IF_NAMESIZE + 1];
	const char *p = xml;

	while (sg_libvirt_next_interface(&p, dev, sizeof(dev)))
		if (strcmp(dev, ifname) == 0)
			return 1;
	return 0;
}

/* The tenant in the metadata element of our namespace: 1, 0 none, -1 with err. */
int sg_libvirt_metadata_tenant(const char *xml, const char *file, char *name, size_t len,
			       char *err, size_t errlen)
{
	const char *meta = strstr(xml, "<metadata>"), *meta_end, *ns, *open, *close, *text_end;
	char value[SG_TENANT_NAME_LEN + 64];
	size_t n;

	if (len)
		name[0] = '\0';
	if (!meta)
		return 0;
	meta_end = strstr(meta, "</metadata>");
	if (!meta_end)
		goto garbled;
	ns = strstr(meta, "\"" SG_TENANT_LIBVIRT_NS "\"");
	if (!ns || ns > meta_end)
		ns = strstr(meta, "'" SG_TENANT_LIBVIRT_NS "'");
	if (!ns || ns > meta_end)
		return 0;
	/* the start tag holding the declaration, and its text */
	for (open = ns; open > meta && *open != '<'; open--)
		;
	close = strchr(ns, '>');
	if (*open != '<' || !close || close > meta_end)
		goto garbled;
	if (close[-1] == '/')
		goto garbled;	/* <sg:tenant xmlns:sg=.../>: no name */
	text_end = strchr(close + 1, '<');
	if (!text_end || text_end > meta_end || text_end[1] != '/')
		goto garbled;
	/* closed by its own end tag: </sg:tenant> for <sg:tenant ...> */
	n = strcspn(open + 1, " \t\r\n/>");
	if (strncmp(text_end + 2, open + 1, n) != 0 || text_end[2 + n] != '>')
		goto garbled;
	while (close + 1 < text_end && isspace((unsigned char)close[1]))
		close++;
	while (text_end > close + 1 && isspace((unsigned char)text_end[-1]))
		text_end--;
	n = (size_t)(text_end - (close + 1));
	if (n >= sizeof(value))
		goto garbled;
	memcpy(value, close + 1, n);
	value[n] = '\0';
	if (!sg_tenant_name_ok(value)) {
		snprintf(err, errlen, "libvirt adapter: %s: the tenant element holds '%s', not a "
			 "tenant name (1 to %d letters, digits, '.', '_', '-')", file, value,
			 SG_TENANT_NAME_LEN - 1);
		return -1;
	}
	snprintf(name, len, "%s", value);
	return 1;
garbled:
	snprintf(err, errlen, "libvirt adapter: %s: garbled <metadata> (write <sg:tenant "
		 "xmlns:sg=\"%s\">NAME</sg:tenant> inside it)", file, SG_TENANT_LIBVIRT_NS);
	return -1;
}

/* A whole file, NUL-terminated; NULL with errno. */
char *sg_libvirt_read_xml(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(LIBVIRT_XML_MAX + 1);
	if (!buf) {
		fclose(f);
		errno = ENOMEM;
		return NULL;
	}
	n = fread(buf, 1, LIBVIRT_XML_MAX, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

int sg_libvirt_tenant(const char *dir, const char *ifname, char *name, size_t len,
		      char *domain, size_t domain_len, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;

	name[0] = '\0';
	if (domain_len)
		domain[0] = '\0';
	if (!d) {
		snprintf(err, errlen, "libvirt adapter: cannot read %s: %s (tenants_libvirt names "
			 "libvirt's live XML directory, /run/libvirt/qemu; the proxy's user needs "
			 "read access)", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char path[512];
		char *xml;

		if (n < 5 || strcmp(e->d_name + n - 4, ".xml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		xml = sg_libvirt_read_xml(path);
		if (!xml) {
			sg_warn("libvirt adapter: cannot read %s: %s", path, strerror(errno));
			continue;
		}
		if (!has_interface(xml, ifname)) {
			free(xml);
			continue;
		}
		if (domain_len)
			snprintf(domain, domain_len, "%.*s", (int)(n - 4), e->d_name);
		ret = sg_libvirt_metadata_tenant(xml, path, name, len, err, errlen);
		free(xml);
		break;
	}
	closedir(d);
	return ret;
}
