/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tenants_daemon.h - the attached interfaces' tenants, resolved by the
 * daemon into the attachments map (tenants.c).
 */
#ifndef SMTPGUARD_TENANTS_DAEMON_H
#define SMTPGUARD_TENANTS_DAEMON_H

struct daemon;

/* The tenants file and adapters as the config names them (start, reload);
 * a file that no longer reads keeps the table before it (logged). */
void daemon_tenants_load(struct daemon *d);
/* The interface's tenant (0: every attached one's) looked up and written
 * into its attachments entry when it changed (logged). */
void daemon_tenants_refresh(struct daemon *d, int ifindex);

#endif
