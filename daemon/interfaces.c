/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * interfaces.c - the interfaces the daemon attaches to (see daemon.h):
 * the VM-facing ones matching `interfaces`, the uplinks matching `uplink`,
 * followed as they appear, are renamed, join a bridge or go.
 */
#include <fnmatch.h>
#include <bpf/bpf.h>
#include "attach.h"
#include "daemon.h"
#include "log.h"
#include "reconcile.h"
#include "tenants_daemon.h"

static int live_find(const struct daemon *d, int ifindex)
{
	for (int i = 0; i < d->nlive; i++)
		if (d->live[i] == ifindex)
			return i;
	return -1;
}

static void live_remove(struct daemon *d, int ifindex)
{
	int i = live_find(d, ifindex);

	if (i >= 0)
		d->live[i] = d->live[--d->nlive];
}

static int matches_any(char patterns[][16], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (fnmatch(patterns[i], name, 0) == 0)
			return 1;
	return 0;
}

/* A VM-facing interface of this instance. */
static int iface_matches(struct sg_config *cfg, const char *name)
{
	return matches_any(cfg->interfaces, cfg->n_interfaces, name);
}

/* An uplink, where the MX's replies to the proxy arrive. */
static int uplink_matches(struct sg_config *cfg, const char *name)
{
	return cfg->proxy && !iface_matches(cfg, name) &&
	       matches_any(cfg->uplinks, cfg->n_uplinks, name);
}

void daemon_on_link(enum sg_link_event ev, int ifindex, const char *ifname, void *ctx)
{
	struct daemon *d = ctx;
	struct sg_attachment a;
	__u32 key = (__u32)ifindex;

	if (ev == SG_LINK_TC_REMOVED) {
		/* maybe ours (a `tc qdisc del`, `tc filter del`): look now */
		daemon_reconcile_check(d, ifindex);
		return;
	}
	if (ev == SG_LINK_GONE) {
		live_remove(d, ifindex);
		if (bpf_map_lookup_elem(d->ld.maps.attachments, &key, &a) == 0) {
			sg_info("let go of %s (ifindex %d): the interface is gone", a.ifname,
				ifindex);
			sg_forget(&d->ld.maps, ifindex);
		}
		return;
	}
	if (bpf_map_lookup_elem(d->ld.maps.attachments, &key, &a) == 0 &&
	    a.mode == SG_ATTACH_BRIDGE) {
		/* a bridge's address follows its ports: its ports follow it */
		sg_attach_follow_bridge_ports(&d->ld);
		return;
	}
	if (!iface_matches(&d->cfg, ifname) && !uplink_matches(&d->cfg, ifname)) {
		/* renamed away from our patterns */
		if (live_find(d, ifindex) >= 0) {
			sg_detach(&d->ld.maps, ifindex);
			live_remove(d, ifindex);
		}
		return;
	}
	/* a NEWLINK also comes for every state change: attach once, but follow
	 * the interface into (or out of) a bridge */
	if (live_find(d, ifindex) >= 0) {
		sg_attach_follow_bridge(&d->ld, ifindex);
		/* `ip link set dev X xdp off` comes as a link change */
		daemon_reconcile_check(d, ifindex);
		return;
	}
	if (d->nlive == SG_MAX_ATTACHMENTS) {
		sg_err("not attaching to %s: already attached to %d interfaces", ifname,
		       SG_MAX_ATTACHMENTS);
		return;
	}
	if ((uplink_matches(&d->cfg, ifname) ? sg_attach_uplink(&d->ld, ifindex, ifname) :
	     sg_attach(&d->ld, &d->cfg, ifindex, ifname)) == 0) {
		d->live[d->nlive++] = ifindex;
		d->attached++;
		/* its bindings, now that it has an ifindex */
		sg_bindings_apply(&d->ld.maps, &d->bindings);
		daemon_tenants_refresh(d, ifindex);
	}
}

/* Attachments recorded by an earlier run whose interface no longer matches
 * (config changed) are taken off; those that still match are refreshed. */
void daemon_reconcile(struct daemon *d)
{
	__u32 keys[SG_MAX_ATTACHMENTS], key, next;
	int n = 0, have = 0;

	while (n < SG_MAX_ATTACHMENTS &&
	       bpf_map_get_next_key(d->ld.maps.attachments, have ? &key : NULL, &next) == 0) {
		keys[n++] = next;
		key = next;
		have = 1;
	}
	for (int i = 0; i < n; i++) {
		struct sg_attachment a;

		if (bpf_map_lookup_elem(d->ld.maps.attachments, &keys[i], &a) ||
		    a.mode == SG_ATTACH_BRIDGE)
			continue;	/* a bridge follows its ports */
		if (a.mode == SG_ATTACH_UPLINK ? !uplink_matches(&d->cfg, a.ifname) :
						 !iface_matches(&d->cfg, a.ifname)) {
			sg_info("%s no longer matches 'interfaces': detaching", a.ifname);
			sg_detach(&d->ld.maps, (int)keys[i]);
		}
	}
}
