/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tenants.c - each attached interface's tenant, resolved by the daemon
 * (root: it may read /etc/pve and /run/libvirt/qemu, which the proxy's
 * user may not) from the tenants file and the adapters (lib/tenants.h),
 * and written into its attachments entry, where the proxy and
 * smtpguardctl read it. Looked at when an interface is attached, at every
 * reconcile tick (a VM's tag or metadata may change, or come after its
 * tap) and after a reload.
 */
#include <stdio.h>
#include <string.h>
#include <bpf/bpf.h>
#include "daemon.h"
#include "log.h"
#include "tenants_daemon.h"

void daemon_tenants_load(struct daemon *d)
{
	const struct sg_config *cfg = &d->cfg;
	struct sg_tenants *fresh = NULL;
	char err[SG_ERR_LEN * 2];

	if (cfg->tenants[0] || cfg->tenants_proxmox[0] || cfg->tenants_libvirt[0]) {
		fresh = sg_tenants_load(cfg->tenants, cfg->tenants_proxmox, cfg->tenants_libvirt,
					err, sizeof(err));
		if (!fresh) {
			/* the config's check read it a moment ago: changed since */
			sg_err("tenants: %s; the interfaces keep the tenants they had", err);
			return;
		}
	}
	sg_tenants_free(d->tenants);
	d->tenants = fresh;
}

void daemon_tenants_refresh(struct daemon *d, int ifindex)
{
	__u32 keys[SG_MAX_ATTACHMENTS], key, next;
	int n = 0, have = 0;

	if (ifindex) {
		keys[n++] = (__u32)ifindex;
	} else {
		while (n < SG_MAX_ATTACHMENTS &&
		       bpf_map_get_next_key(d->ld.maps.attachments, have ? &key : NULL, &next) == 0) {
			keys[n++] = next;
			key = next;
			have = 1;
		}
	}
	for (int i = 0; i < n; i++) {
		char ifname[sizeof(((struct sg_attachment *)0)->ifname) + 1];
		char tenant[SG_TENANT_LEN] = "";
		struct sg_attachment a;

		if (bpf_map_lookup_elem(d->ld.maps.attachments, &keys[i], &a) ||
		    a.mode == SG_ATTACH_BRIDGE || a.mode == SG_ATTACH_UPLINK)
			continue;
		snprintf(ifname, sizeof(ifname), "%.*s", (int)sizeof(a.ifname), a.ifname);
		sg_tenant_of_ifname(d->tenants, NULL, ifname, tenant, sizeof(tenant));
		if (strncmp(a.tenant, tenant, sizeof(a.tenant)) == 0)
			continue;
		if (a.tenant[0] || tenant[0])
			sg_info("tenant of %s: %s%s%.*s%s", ifname, tenant[0] ? tenant : "none",
				a.tenant[0] ? " (was " : "", (int)sizeof(a.tenant), a.tenant,
				a.tenant[0] ? ")" : "");
		memcpy(a.tenant, tenant, sizeof(a.tenant));
		/* gone meanwhile: nothing to write */
		bpf_map_update_elem(d->ld.maps.attachments, &keys[i], &a, BPF_EXIST);
	}
}
