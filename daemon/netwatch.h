/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * netwatch.h - follows the host's interfaces through rtnetlink, so the
 * daemon attaches to VM interfaces as they appear and lets go of the ones
 * that disappear, and hears when a qdisc or tc filter is deleted (another
 * tool may have taken ours off: the reconcile check looks).
 */
#ifndef SMTPGUARD_NETWATCH_H
#define SMTPGUARD_NETWATCH_H

#include <linux/types.h>

enum sg_link_event {
	SG_LINK_NEW,
	SG_LINK_GONE,
	SG_LINK_TC_REMOVED,	/* a qdisc or tc filter of ifindex was deleted (no name) */
};

typedef void (*sg_link_cb)(enum sg_link_event ev, int ifindex, const char *ifname,
			   void *ctx);

/* A netlink socket subscribed to link and tc events; -1 on error (logged). */
int sg_netwatch_open(void);
/* Reads what is pending on fd and calls cb for each link event. */
int sg_netwatch_read(int fd, sg_link_cb cb, void *ctx);
/* Calls cb(SG_LINK_NEW) for every interface present now. */
int sg_netwatch_enumerate(sg_link_cb cb, void *ctx);
/* A port of a Linux bridge: 1, the bridge's MAC address (what a frame must
 * be sent to for the bridge to pass it up to the host's own stack) and its
 * ifindex; 0 when ifindex is not a bridge port; -1 on error. */
int sg_link_bridge_mac(int ifindex, unsigned char mac[6], int *bridge);

/* A macvtap or ipvtap: its VM's frames are transmitted on it (QEMU writes
 * them to /dev/tapN) and never cross an ingress hook of the host, so the
 * classifier runs at its TC egress. 1 yes, 0 no, -1 on error. */
int sg_link_tx_only(int ifindex);

/* The id of the XDP program attached to ifindex (0: none); 0 or -1. One
 * query for this interface alone (libbpf's bpf_xdp_query dumps every
 * interface: 500 interfaces made each answer cost milliseconds). */
int sg_link_xdp_prog_id(int ifindex, __u32 *prog_id);

#endif
