/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * instance.h - one smtpguardd per bpffs root. Two daemons on one set of
 * maps would fight over attachments; a lock file under /run, named after
 * the root and held for the daemon's life, refuses the second one clearly.
 */
#ifndef SMTPGUARD_INSTANCE_H
#define SMTPGUARD_INSTANCE_H

/* Returns the held lock's fd, or -1 (logged: who holds it). */
int sg_instance_lock(const char *bpffs_root);
/* The pid of the smtpguardd running on bpffs_root (the lock's holder), or
 * 0 when none runs. */
int sg_instance_running(const char *bpffs_root);
/* Removes the lock file (with --purge, while holding it). */
void sg_instance_forget(const char *bpffs_root);

#endif
