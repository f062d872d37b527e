/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* test_tenants.c - unit tests of the tenants file, the Proxmox and libvirt
 * adapters over lab files, and the lookup's order (lib/tenants.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "parse.h"
#include "tenants.h"
#include "test.h"

static char dir[64], path[128], pve[128], virt[128];

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	if (!f) {
		perror(p);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static struct sg_tenants *load(const char *text, char *err, size_t errlen)
{
	write_file(path, text);
	err[0] = '\0';
	return sg_tenants_load(path, pve, virt, err, errlen);
}

static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':')) {
		ss.ss_family = AF_INET6;
		inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr);
	} else {
		ss.ss_family = AF_INET;
		inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr);
	}
	return ss;
}

/* The tenant of (address, interface), "" for none. */
static const char *of(struct sg_tenants *t, const char *a, const char *ifname)
{
	static char name[SG_TENANT_NAME_LEN];
	struct sockaddr_storage ss = addr(a ? a : "0.0.0.0");

	sg_tenant_of_ifname(t, a ? &ss : NULL, ifname, name, sizeof(name));
	return name;
}

/* Each bad line: refused with FILE:LINE and what to write. */
static void test_errors(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "iface tap1 acme\nfoo bar baz\n", ":2: 'foo' is not a directive" },
		{ "iface tap1\n", ":1: 'iface' takes two words" },
		{ "prefix 192.0.2.0/24 acme extra\n", ":1: 'prefix' takes two words" },
		{ "prefix 192.0.2.1/24 acme\n", ":1: " },
		{ "prefix 192.0.2.300 acme\n", ":1: " },
		{ "iface tap1 ac/me\n", ":1: 'ac/me' is not a tenant name" },
		{ "iface tap1 acme\n\niface tap1 globex\n", ":3: interface pattern tap1 belongs to acme on line 1" },
		{ "prefix 192.0.2.0/24 a\nprefix 192.0.2.0/24 b\n", ":2: prefix 192.0.2.0/24 belongs to a on line 1" },
		{ "vmid 99 acme\n", ":1: VMID 99" },
		{ "vmid 101 a\nvmid 101 b\n", ":2: VMID 101 belongs to a on line 1" },
		{ "iface averyveryverylongname* acme\n", ":1: interface pattern 'averyveryverylongname*' is longer" },
		{ "tenant acme\n", ":1: a tenant line names the tenant and its limits" },
		{ "tenant acme msgs\n", ":1: msgs needs a limit" },
		{ "tenant acme msgs 0/h\n", ":1: msgs 0/h: " },
		{ "tenant acme speed 9/h\n", ":1: 'speed' is not a tenant setting" },
		{ "tenant acme msgs 2/h\ntenant acme rcpts 9/h\n", ":2: tenant acme has its limits on line 1 already" },
		{ "tenant acme exempt msgs 2/h\n", ":1: tenant acme is exempt and has limits" },
	};
	char err[SG_ERR_LEN * 2], want[256];
	struct sg_tenants *t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char name[96];

		t = load(bad[i].text, err, sizeof(err));
		snprintf(name, sizeof(name), "errors: bad file %zu refused", i + 1);
		ASSERT_TRUE(t == NULL, name);
		sg_tenants_free(t);
		snprintf(want, sizeof(want), "%s%s", path, bad[i].want);
		snprintf(name, sizeof(name), "errors: bad file %zu says FILE:LINE and what", i + 1);
		ASSERT_CONTAINS(err, want, name);
	}
	t = sg_tenants_load("/nonexistent/tenants", "", "", err, sizeof(err));
	ASSERT_TRUE(t == NULL, "errors: a missing file is refused");
	ASSERT_CONTAINS(err, "cannot open tenants file /nonexistent/tenants", "errors: ... named");
	t = sg_tenants_load("", "", "", err, sizeof(err));
	ASSERT_TRUE(t != NULL, "errors: no file is no tenants, not an error");
	ASSERT_STREQ(of(t, "192.0.2.11", "tap101i0"), "", "errors: ... and nobody has one");
	sg_tenants_free(t);
	ASSERT_STREQ(of(NULL, "192.0.2.11", "tap101i0"), "", "errors: a NULL table has none");
}

static void test_file(void)
{
	char err[SG_ERR_LEN * 2];
	const struct sg_tenant_limits *l;
	struct sg_tenants *t;

	t = load("# the provider's customers\n"
		 "iface tap-web*  acme   # acme's web servers\n"
		 "iface tap-db1   globex\n"
		 "prefix 192.0.2.0/24 acme\n"
		 "prefix 192.0.2.128/25 initech\n"
		 "prefix 2001:db8:1::/48 globex\n"
		 "vmid 101 umbrella\n"
		 "tenant acme msgs 200/h rcpts 2000/h\n"
		 "tenant trusted exempt\n", err, sizeof(err));
	ASSERT_TRUE(t != NULL, "file: a valid file loads");
	if (!t) {
		printf("  %s\n", err);
		return;
	}
	ASSERT_EQ((long)sg_tenants_count(t), 5, "file: five tenants named");
	ASSERT_STREQ(sg_tenants_name(t, 0), "acme", "file: in the order named");
	ASSERT_STREQ(of(t, "192.0.2.11", NULL), "acme", "file: an address in a prefix");
	ASSERT_STREQ(of(t, "192.0.2.200", NULL), "initech", "file: the longest prefix wins");
	ASSERT_STREQ(of(t, "::ffff:192.0.2.200", NULL), "initech",
		     "file: an IPv4-mapped address is its IPv4 address");
	ASSERT_STREQ(of(t, "2001:db8:1:5::9", NULL), "globex", "file: an IPv6 address");
	ASSERT_STREQ(of(t, "198.51.100.7", NULL), "", "file: an address in none: no tenant");
	ASSERT_STREQ(of(t, "198.51.100.7", "tap-web7"), "acme", "file: an interface pattern");
	ASSERT_STREQ(of(t, "198.51.100.7", "tap-db1"), "globex", "file: an interface by name");
	ASSERT_STREQ(of(t, "192.0.2.200", "tap-db1"), "initech",
		     "file: the address's prefix before the interface");
	ASSERT_STREQ(of(t, NULL, "tap101i0"), "umbrella", "file: a vmid line for tap101i0");
	ASSERT_STREQ(of(t, NULL, "veth101i1"), "umbrella", "file: ... veth101i1");
	ASSERT_STREQ(of(t, NULL, "fwpr101p0"), "umbrella", "file: ... fwpr101p0");
	{
		struct sockaddr_storage ss = addr("192.0.2.200");
		char name[SG_TENANT_NAME_LEN];

		ASSERT_EQ(sg_tenant_of_sender(NULL, t, &ss, 0, name, sizeof(name)), 1,
			  "file: sg_tenant_of_sender without maps, by address");
		ASSERT_STREQ(name, "initech", "file: ... the longest prefix's");
		ss = addr("198.51.100.9");
		ASSERT_EQ(sg_tenant_of_sender(NULL, t, &ss, 0, name, sizeof(name)), 0,
			  "file: sg_tenant_of_sender: no prefix, no interface: none");
		ASSERT_STREQ(name, "", "file: ... and the name empty");
	}
	l = sg_tenant_limits(t, "acme");
	ASSERT_TRUE(l != NULL, "file: acme has limits");
	if (l) {
		ASSERT_EQ(l->msg_burst, 200, "file: acme's message burst");
		ASSERT_EQ(l->msg_interval_ns, 18000000000ULL, "file: one message every 18 s");
		ASSERT_EQ(l->rcpt_burst, 2000, "file: acme's recipient burst");
		ASSERT_EQ(l->exempt, 0, "file: acme is not exempt");
	}
	l = sg_tenant_limits(t, "trusted");
	ASSERT_TRUE(l && l->exempt, "file: trusted is exempt");
	ASSERT_TRUE(sg_tenant_limits(t, "globex") == NULL, "file: globex has no limits");
	ASSERT_TRUE(sg_tenant_limits(t, "nobody") == NULL, "file: an unknown tenant has none");
	sg_tenants_free(t);
}

static void test_proxmox(void)
{
	char err[SG_ERR_LEN * 2], name[SG_TENANT_NAME_LEN], p[256];
	struct sg_tenants *t;

	ASSERT_EQ((long)sg_proxmox_vmid("tap103i0"), 103, "proxmox: tap103i0 is VMID 103");
	ASSERT_EQ((long)sg_proxmox_vmid("veth2001i12"), 2001, "proxmox: veth2001i12");
	ASSERT_EQ((long)sg_proxmox_vmid("fwpr104p1"), 104, "proxmox: fwpr104p1");
	ASSERT_EQ((long)sg_proxmox_vmid("fwln104i0"), 104, "proxmox: fwln104i0");
	ASSERT_EQ((long)sg_proxmox_vmid("tap103"), 0, "proxmox: tap103 has no VMID");
	ASSERT_EQ((long)sg_proxmox_vmid("tap103i"), 0, "proxmox: tap103i has none");
	ASSERT_EQ((long)sg_proxmox_vmid("tap103i0x"), 0, "proxmox: tap103i0x has none");
	ASSERT_EQ((long)sg_proxmox_vmid("tap-vm1"), 0, "proxmox: tap-vm1 has none");
	ASSERT_EQ((long)sg_proxmox_vmid("vnet3"), 0, "proxmox: vnet3 has none");

	snprintf(p, sizeof(p), "%s/qemu-server", pve);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/lxc", pve);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/qemu-server/103.conf", pve);
	write_file(p, "boot: order=scsi0\ncores: 2\nname: web3\nnet0: virtio=BC:24:11:00:00:03,"
		   "bridge=vmbr0\ntags: prod;tenant-globex;web\n\n[snap1]\ntags: tenant-old\n");
	snprintf(p, sizeof(p), "%s/lxc/104.conf", pve);
	write_file(p, "arch: amd64\nhostname: ct104\ntags: tenant-hooli\n");
	snprintf(p, sizeof(p), "%s/qemu-server/105.conf", pve);
	write_file(p, "name: notag\ntags: prod\n");
	snprintf(p, sizeof(p), "%s/qemu-server/106.conf", pve);
	write_file(p, "tags: tenant-a;tenant-b\n");
	snprintf(p, sizeof(p), "%s/qemu-server/107.conf", pve);
	write_file(p, "tags: tenant-\n");

	ASSERT_EQ(sg_proxmox_tenant(pve, 103, name, sizeof(name), err, sizeof(err)), 1,
		  "proxmox: VM 103's tag");
	ASSERT_STREQ(name, "globex", "proxmox: ... tenant-globex (not the snapshot's)");
	ASSERT_EQ(sg_proxmox_tenant(pve, 104, name, sizeof(name), err, sizeof(err)), 1,
		  "proxmox: a container's (lxc/104.conf)");
	ASSERT_STREQ(name, "hooli", "proxmox: ... tenant-hooli");
	ASSERT_EQ(sg_proxmox_tenant(pve, 105, name, sizeof(name), err, sizeof(err)), 0,
		  "proxmox: no tenant tag: none");
	ASSERT_EQ(sg_proxmox_tenant(pve, 106, name, sizeof(name), err, sizeof(err)), -1,
		  "proxmox: two tenant tags: an error");
	ASSERT_CONTAINS(err, "106.conf:1: two tenant tags", "proxmox: ... named by file and line");
	ASSERT_EQ(sg_proxmox_tenant(pve, 107, name, sizeof(name), err, sizeof(err)), -1,
		  "proxmox: an empty tenant tag: an error");
	ASSERT_CONTAINS(err, "tag 'tenant-' names no tenant", "proxmox: ... says so");
	ASSERT_EQ(sg_proxmox_tenant(pve, 999, name, sizeof(name), err, sizeof(err)), -1,
		  "proxmox: a VMID without a config: an error");
	ASSERT_CONTAINS(err, "VMID 999 unknown to this host", "proxmox: ... says so");

	t = load("vmid 104 override\n", err, sizeof(err));
	ASSERT_STREQ(of(t, "192.0.2.13", "tap103i0"), "globex", "proxmox: lookup by tap103i0");
	ASSERT_STREQ(of(t, "192.0.2.13", "fwpr103p0"), "globex", "proxmox: ... by fwpr103p0");
	ASSERT_STREQ(of(t, NULL, "veth104i0"), "override", "proxmox: a vmid line before the tag");
	ASSERT_STREQ(of(t, NULL, "tap999i0"), "", "proxmox: a VM without config: none (warned)");
	ASSERT_STREQ(of(t, NULL, "tap106i0"), "", "proxmox: a garbled config: none (warned)");
	sg_tenants_free(t);
	t = sg_tenants_load("", "/nonexistent/pve", "", err, sizeof(err));
	ASSERT_STREQ(of(t, NULL, "tap103i0"), "", "proxmox: a missing directory: none (warned)");
	sg_tenants_free(t);
}

static void test_libvirt(void)
{
	char err[SG_ERR_LEN * 2], name[SG_TENANT_NAME_LEN], domain[64], p[256];
	struct sg_tenants *t;

	mkdir(virt, 0755);
	snprintf(p, sizeof(p), "%s/lab-web.xml", virt);
	write_file(p, "<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE.\n-->\n"
		   "<domstatus state='running' reason='booted' pid='4242'>\n"
		   "  <domain type='kvm' id='3'>\n    <name>lab-web</name>\n"
		   "    <metadata>\n      <sg:tenant xmlns:sg=\"urn:smtpguard:tenant:1\">initech"
		   "</sg:tenant>\n    </metadata>\n"
		   "    <devices>\n      <disk type='file'><target dev='vda' bus='virtio'/></disk>\n"
		   "      <interface type='network'>\n        <mac address='52:54:00:00:00:04'/>\n"
		   "        <target dev='vnet4'/>\n        <model type='virtio'/>\n"
		   "      </interface>\n    </devices>\n  </domain>\n</domstatus>\n");
	snprintf(p, sizeof(p), "%s/lab-plain.xml", virt);
	write_file(p, "<domstatus><domain><name>lab-plain</name><metadata><other:x "
		   "xmlns:other='urn:x'>1</other:x></metadata><devices><interface type='bridge'>"
		   "<target dev=\"vnet5\"/></interface></devices></domain></domstatus>\n");
	snprintf(p, sizeof(p), "%s/lab-bad.xml", virt);
	write_file(p, "<domstatus><domain><metadata><sg:tenant xmlns:sg='urn:smtpguard:tenant:1'>"
		   "not a name!</sg:tenant></metadata><devices><interface><target dev='vnet6'/>"
		   "</interface></devices></domain></domstatus>\n");
	snprintf(p, sizeof(p), "%s/lab-cut.xml", virt);
	write_file(p, "<domstatus><domain><metadata><sg:tenant xmlns:sg='urn:smtpguard:tenant:1'>"
		   "cut");
	snprintf(p, sizeof(p), "%s/lab-cut2.xml", virt);
	write_file(p, "<domain><metadata><sg:tenant xmlns:sg='urn:smtpguard:tenant:1'>cut"
		   "</metadata><devices><interface><target dev='vnet8'/></interface></devices>"
		   "</domain>");

	ASSERT_EQ(sg_libvirt_tenant(virt, "vnet4", name, sizeof(name), domain, sizeof(domain),
				    err, sizeof(err)), 1, "libvirt: vnet4's domain has a tenant");
	ASSERT_STREQ(name, "initech", "libvirt: ... initech");
	ASSERT_STREQ(domain, "lab-web", "libvirt: ... of domain lab-web");
	ASSERT_EQ(sg_libvirt_tenant(virt, "vda", name, sizeof(name), domain, sizeof(domain),
				    err, sizeof(err)), 0, "libvirt: a disk's target is no interface");
	ASSERT_EQ(sg_libvirt_tenant(virt, "vnet5", name, sizeof(name), domain, sizeof(domain),
				    err, sizeof(err)), 0, "libvirt: a domain without our element: none");
	ASSERT_STREQ(domain, "lab-plain", "libvirt: ... but its domain found");
	ASSERT_EQ(sg_libvirt_tenant(virt, "vnet6", name, sizeof(name), domain, sizeof(domain),
				    err, sizeof(err)), -1, "libvirt: an element with no name: an error");
	ASSERT_CONTAINS(err, "lab-bad.xml: the tenant element holds 'not a name!'",
			"libvirt: ... naming the file and the value");
	ASSERT_EQ(sg_libvirt_tenant(virt, "vnet8", name, sizeof(name), domain, sizeof(domain),
				    err, sizeof(err)), -1, "libvirt: a garbled element: an error");
	ASSERT_CONTAINS(err, "lab-cut2.xml: garbled <metadata>", "libvirt: ... says garbled");
	ASSERT_EQ(sg_libvirt_tenant(virt, "vnet9", name, sizeof(name), domain, sizeof(domain),
				    err, sizeof(err)), 0, "libvirt: an interface no domain has: none");
	ASSERT_EQ(sg_libvirt_tenant("/nonexistent/qemu", "vnet4", name, sizeof(name), domain,
				    sizeof(domain), err, sizeof(err)), -1,
		  "libvirt: a missing directory: an error");
	ASSERT_CONTAINS(err, "cannot read /nonexistent/qemu", "libvirt: ... named");

	t = load("iface vnet5 globex\n", err, sizeof(err));
	ASSERT_STREQ(of(t, "192.0.2.14", "vnet4"), "initech", "libvirt: lookup by vnet4");
	ASSERT_STREQ(of(t, "192.0.2.15", "vnet5"), "globex", "libvirt: an iface line before it");
	ASSERT_STREQ(of(t, "192.0.2.16", "vnet6"), "", "libvirt: garbled: none (warned)");

	/* cached per interface: a changed file is seen after SG_TENANT_CACHE_NS */
	snprintf(p, sizeof(p), "%s/lab-web.xml", virt);
	unlink(p);
	ASSERT_STREQ(of(t, "192.0.2.14", "vnet4"), "initech", "libvirt: the answer is cached");
	sg_tenants_free(t);
	t = load("", err, sizeof(err));
	ASSERT_STREQ(of(t, "192.0.2.14", "vnet4"), "", "libvirt: a new table asks again");
	/* (found by fuzz_tenants: a domain without our element left its
	 * interfaces' tenant unwritten) */
	ASSERT_STREQ(of(t, "192.0.2.15", "vnet5"), "", "libvirt: a domain without our element: none");
	ASSERT_STREQ(of(t, "192.0.2.18", "vnet8"), "", "libvirt: a cut element: none");
	sg_tenants_free(t);
}

/* Many interfaces: the cache stays at its size. */
static void test_bounded(void)
{
	char err[SG_ERR_LEN * 2], ifname[16];
	struct sg_tenants *t = load("iface tap* acme\n", err, sizeof(err));
	int ok = 1;

	for (int i = 0; i < 3 * SG_TENANT_CACHE; i++) {
		snprintf(ifname, sizeof(ifname), "tap%d", i);
		if (strcmp(of(t, NULL, ifname), "acme") != 0)
			ok = 0;
	}
	ASSERT_TRUE(ok, "bounded: 3072 interfaces, each acme's");
	sg_tenants_free(t);
}

int main(void)
{
	char cmd[160];

	snprintf(dir, sizeof(dir), "/tmp/sg-test-tenants-%d", (int)getpid());
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/tenants", dir);
	snprintf(pve, sizeof(pve), "%s/pve", dir);
	snprintf(virt, sizeof(virt), "%s/qemu", dir);
	mkdir(pve, 0755);
	mkdir(virt, 0755);
	test_errors();
	test_file();
	test_proxmox();
	test_libvirt();
	test_bounded();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		printf("could not remove %s\n", dir);
	return test_exit_status();
}
