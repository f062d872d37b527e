/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * fuzz_tenants.c - libFuzzer target for what the tenants code reads: the
 * tenants file (the operator's), a Proxmox VM config and a libvirt domain's
 * live XML (the hypervisor's, parts of it a customer may set). The first
 * byte picks which; the rest is the file. Every input is read or refused
 * with a message; nothing crashes; a tenant found is a valid name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tenants.h"

static char dir[64];

static void remove_dir(void)
{
	static const char *const files[] = { "tenants", "qemu-server/101.conf", "dom.xml",
					     "qemu-server", "" };
	char path[160];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (remove(path) && i + 1 == sizeof(files) / sizeof(files[0]))
			break;
	}
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[160], err[SG_ERR_LEN * 2], name[SG_TENANT_NAME_LEN], domain[64];
	struct sg_tenants *t;
	int r;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/sg-fuzz-tenants-%d", (int)getpid());
		mkdir(dir, 0700);
		snprintf(path, sizeof(path), "%s/qemu-server", dir);
		mkdir(path, 0700);
		atexit(remove_dir);
	}
	if (!size)
		return 0;
	err[0] = '\0';
	switch (data[0] % 3) {
	case 0:
		snprintf(path, sizeof(path), "%s/tenants", dir);
		write_file(path, data + 1, size - 1);
		t = sg_tenants_load(path, "", "", err, sizeof(err));
		if (!t) {
			if (!err[0])
				abort();	/* a refusal always says why */
			break;
		}
		if (sg_tenant_of_ifname(t, NULL, "tap101i0", name, sizeof(name)) &&
		    !sg_tenant_name_ok(name))
			abort();
		for (size_t i = 0; i < sg_tenants_count(t); i++)
			if (!sg_tenant_name_ok(sg_tenants_name(t, i)))
				abort();
		sg_tenants_free(t);
		break;
	case 1:
		snprintf(path, sizeof(path), "%s/qemu-server/101.conf", dir);
		write_file(path, data + 1, size - 1);
		r = sg_proxmox_tenant(dir, 101, name, sizeof(name), err, sizeof(err));
		if ((r == 1 && !sg_tenant_name_ok(name)) || (r < 0 && !err[0]))
			abort();
		break;
	default:
		snprintf(path, sizeof(path), "%s/dom.xml", dir);
		write_file(path, data + 1, size - 1);
		r = sg_libvirt_tenant(dir, "vnet0", name, sizeof(name), domain, sizeof(domain), err,
				      sizeof(err));
		if ((r == 1 && !sg_tenant_name_ok(name)) || (r < 0 && !err[0]))
			abort();
		/* the index's reader: the same file, through the lookup */
		t = sg_tenants_load("", "", dir, err, sizeof(err));
		if (!t)
			abort();
		if (sg_tenant_of_ifname(t, NULL, "vnet0", name, sizeof(name)) &&
		    !sg_tenant_name_ok(name))
			abort();
		sg_tenants_free(t);
		unlink(path);
		break;
	}
	return 0;
}
