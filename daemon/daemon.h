/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * daemon.h - the control plane's state and what its files share:
 *
 *   main.c        start, the main thread's loop, stop, --detach
 *   args.c        the command line and the config file it names
 *   interfaces.c  which interfaces are attached to, as they come and go
 *   reload.c      SIGHUP: the config file again
 *   notify.c      what the service manager is told (ready, reloading,
 *                 stopping, the watchdog: notify.h)
 *
 * and loader.c, attach.c, netwatch.c, gc.c, routing.c, instance.c below
 * them (each with its header).
 */
#ifndef SMTPGUARD_DAEMON_H
#define SMTPGUARD_DAEMON_H

#include "config.h"
#include "loader.h"
#include "netwatch.h"
#include "proxy.h"

struct daemon {
	struct sg_config cfg;
	struct sg_loader ld;
	int attached;		/* interfaces attached to since start */
	int live[SG_MAX_ATTACHMENTS];	/* ifindexes attached by this run */
	int nlive;
	struct sg_proxy *proxy;	/* proxy = yes */
	int file_fail_mode;	/* what the config file last said */
};

/* args.c: the command line (and the config file it names) into cfg; 0, or
 * the exit status after an error (said). */
int daemon_parse_args(int argc, char **argv, struct sg_config *cfg, int *detach, int *purge,
		      int *check_only);

/* interfaces.c: an interface appeared, changed or went (netwatch). */
void daemon_on_link(enum sg_link_event ev, int ifindex, const char *ifname, void *ctx);
/* Attachments an earlier run recorded whose interface no longer matches
 * are taken off. */
void daemon_reconcile(struct daemon *d);

/* reload.c */
void daemon_reload(struct daemon *d, int argc, char **argv);

#endif
