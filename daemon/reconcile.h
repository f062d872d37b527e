/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * reconcile.h - keeps our programs on the interfaces we attached to while
 * other tools (OVS, Cilium, a careless `tc qdisc del dev X clsact`, `tc
 * filter del`, `ip link set dev X xdp off`) change what is attached there:
 * every reconcile_interval, and at once when netlink says a qdisc or
 * filter went or an interface changed, each recorded attachment is looked
 * for, and what is missing is put back, logged and counted (`reattached`).
 * Foreign filters and programs are never touched.
 */
#ifndef SMTPGUARD_RECONCILE_H
#define SMTPGUARD_RECONCILE_H

#include "daemon.h"
#include "loop.h"

/* Arms the periodic check on loop (it re-arms itself, taking
 * reconcile_interval anew each time, so a reload applies). 0 or -1. */
int daemon_reconcile_start(struct daemon *d, struct sg_loop *loop);
/* Checks ifindex's attachment (0: every one) and puts back what is
 * missing. Returns how many were put back. */
int daemon_reconcile_check(struct daemon *d, int ifindex);

#endif
