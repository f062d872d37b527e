/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * attach.h - puts the classifier on and takes it off VM-facing interfaces,
 * at TC ingress (clsact, netlink: portable from 5.10 on) or at XDP (through
 * libxdp, so other XDP programs can share the interface where the kernel
 * allows its dispatcher). Every attachment is recorded in the pinned
 * "attachments" map, which is how --detach and a restart find them.
 */
#ifndef SMTPGUARD_ATTACH_H
#define SMTPGUARD_ATTACH_H

#include "config.h"
#include "loader.h"

/* Attaches to ifindex per cfg->attach_mode; 0 or -1 (logged). A program of
 * ours already there is replaced atomically (TC) or kept (XDP). */
int sg_attach(struct sg_loader *ld, const struct sg_config *cfg, int ifindex,
	      const char *ifname);
/* Attaches the uplink program (the MX's replies to the proxy) at TC ingress. */
int sg_attach_uplink(struct sg_loader *ld, int ifindex, const char *ifname);
/* An attached interface that is (or stopped being) a bridge port: its
 * record gets the bridge's MAC address, and the bridge the bridge program.
 * Called at attach and at every link event of the interface. */
void sg_attach_follow_bridge(struct sg_loader *ld, int ifindex);
/* A bridge of ours changed (its address follows its ports): every port
 * follows it again. */
void sg_attach_follow_bridge_ports(struct sg_loader *ld);
/* Whether what the record a says for ifindex is still in place: 1 yes; 0
 * no (another tool took it off, or put another program at our handle and
 * priority); -1 when the kernel cannot be asked. */
int sg_attach_intact(int ifindex, const struct sg_attachment *a);
/* Puts back what the record a says for ifindex; 0 or -1 (logged). */
int sg_attach_restore(struct sg_loader *ld, const struct sg_config *cfg, int ifindex,
		      const struct sg_attachment *a);
/* Takes ours off ifindex per the recorded attachment, and forgets it. */
int sg_detach(const struct sg_maps *maps, int ifindex);
/* Forgets an interface that has gone (its programs went with it). */
void sg_forget(const struct sg_maps *maps, int ifindex);
/* Detaches every recorded attachment. Returns how many failed. */
int sg_detach_all(const struct sg_maps *maps);
/* Routes libbpf's and libxdp's messages into our log. */
void sg_attach_init_logging(void);

#endif
