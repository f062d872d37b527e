/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * daemon.h - the control plane's state and what its files share:
 *
 *   main.c        start, the main thread's loop, stop, --detach
 *   args.c        the command line and the config file it names
 *   interfaces.c  which interfaces are attached to, as they come and go
 *   reload.c      SIGHUP: the config file again
 *   upgrade.c     SIGUSR2: the binary executed anew, the proxy handed over
 *   privileges.c  the proxy process's user and capabilities
 *   proxy_process.c  the proxy, forked, unprivileged, restarted
 *   notify.c      what the service manager is told (ready, reloading,
 *                 stopping, the watchdog: notify.h)
 *   tenants.c     each attached interface's tenant, into attachments
 *
 *   shared*.c     the sync with the shared store, Redis (shared.h)
 *
 * and loader.c, attach.c, netwatch.c, gc.c, routing.c, instance.c below
 * them (each with its header).
 */
#ifndef SMTPGUARD_DAEMON_H
#define SMTPGUARD_DAEMON_H

#include "config.h"
#include "loader.h"
#include "netwatch.h"
#include "privileges.h"
#include "proxy_process.h"
#include "shared.h"
#include "source_check.h"
#include "tenants.h"

struct daemon {
	struct sg_config cfg;
	struct sg_loader ld;
	int attached;		/* interfaces attached to since start */
	int live[SG_MAX_ATTACHMENTS];	/* ifindexes attached by this run */
	int nlive;
	struct sg_proxy_process *proxy;	/* proxy = yes */
	struct sg_shared *shared;	/* redis set: the sync with the shared store */
	struct sg_identity proxy_id;	/* proxy_user; its group reads the pins */
	int file_fail_mode;	/* what the config file last said */
	struct sg_bindings bindings;	/* source_bindings, as last read */
	char self_path[4096];	/* this binary, as started: an upgrade executes the file there */
	struct sg_tenants *tenants;	/* tenants and its adapters (tenants.c); NULL: none */
};

/* How an upgrade in place tells the new daemon about the old proxy
 * (upgrade.c, main.c): "sock=FD pid=PID". */
#define SG_TAKEOVER_ENV "SMTPGUARD_TAKEOVER"

/* What the command line asks for besides running (args.c's check_only). */
enum { SG_RUN = 0, SG_RUN_CHECK_CONFIG, SG_RUN_CHECK_UPGRADE, SG_RUN_SIGNAL_UPGRADE };

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

/* upgrade.c: SIGUSR2; returns only when the upgrade did not happen (logged). */
void daemon_upgrade(struct daemon *d, int argc, char **argv);

#endif
