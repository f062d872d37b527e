/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* reconcile.c - our programs put back where another tool took them off
 * (see reconcile.h). */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <bpf/bpf.h>
#include "attach.h"
#include "log.h"
#include "pstats.h"
#include "reconcile.h"
#include "tenants_daemon.h"

static struct {
	struct daemon *d;
	struct sg_loop *loop;
	struct sg_timer timer;
	int counting;		/* proxy_stats mapped for the `reattached` count */
} rc;

static void count_reattached(struct daemon *d)
{
	/* mapped once, on the first repair: the proxy process maps it on its own */
	if (!rc.counting)
		rc.counting = sg_pstats_attach(d->ld.maps.proxy_stats) == 0 ? 1 : -1;
	if (rc.counting == 1)
		sg_pstat_add(SG_PSTAT_REATTACHED, 1);
}

/* One record: 1 when it was put back, 0 when it was in place (or is not
 * ours to keep), -1 when putting it back failed. */
static int check_one(struct daemon *d, int ifindex)
{
	struct sg_attachment a;
	__u32 key = (__u32)ifindex;
	char name[IF_NAMESIZE];
	int intact;

	if (bpf_map_lookup_elem(d->ld.maps.attachments, &key, &a))
		return 0;
	/* gone, or the index now names another interface: the link events
	 * deal with those */
	if (!if_indextoname((unsigned int)ifindex, name) ||
	    strncmp(name, a.ifname, sizeof(a.ifname)) != 0)
		return 0;
	intact = sg_attach_intact(ifindex, &a);
	if (intact != 0)
		return 0;	/* in place, or the kernel could not be asked: next time */
	sg_warn("%s (ifindex %d) lost smtpguard's %s program (another tool removed it): "
		"attaching it again", a.ifname, ifindex, sg_attach_mode_name((int)a.mode));
	if (sg_attach_restore(&d->ld, &d->cfg, ifindex, &a)) {
		sg_err("putting smtpguard's %s program back on %s failed; trying again in "
		       "reconcile_interval", sg_attach_mode_name((int)a.mode), a.ifname);
		return -1;
	}
	count_reattached(d);
	return 1;
}

int daemon_reconcile_check(struct daemon *d, int ifindex)
{
	__u32 keys[SG_MAX_ATTACHMENTS], key, next;
	int n = 0, have = 0, restored = 0;

	if (ifindex)
		return check_one(d, ifindex) == 1;
	/* collected first: a repair rewrites records while we walk */
	while (n < SG_MAX_ATTACHMENTS &&
	       bpf_map_get_next_key(d->ld.maps.attachments, have ? &key : NULL, &next) == 0) {
		keys[n++] = next;
		key = next;
		have = 1;
	}
	for (int i = 0; i < n; i++)
		if (check_one(d, (int)keys[i]) == 1)
			restored++;
	return restored;
}

static void on_timer(struct sg_timer *timer)
{
	(void)timer;
	daemon_reconcile_check(rc.d, 0);
	daemon_tenants_refresh(rc.d, 0);	/* a VM's tag or metadata may have changed */
	sg_loop_timer_in(rc.loop, &rc.timer, rc.d->cfg.reconcile_interval_ns);
}

int daemon_reconcile_start(struct daemon *d, struct sg_loop *loop)
{
	rc.d = d;
	rc.loop = loop;
	sg_timer_init(&rc.timer, on_timer, NULL);
	return sg_loop_timer_in(loop, &rc.timer, d->cfg.reconcile_interval_ns);
}
