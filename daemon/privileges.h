/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * privileges.h - who the proxy process runs as, and how it becomes that:
 * the daemon (root) resolves proxy_user once, hands the pins and the
 * events file to that user's group, and the forked proxy drops to the user
 * keeping only what IP_TRANSPARENT needs.
 */
#ifndef SMTPGUARD_PRIVILEGES_H
#define SMTPGUARD_PRIVILEGES_H

#include <stddef.h>
#include <sys/types.h>

struct sg_identity {
	char user[33];
	uid_t uid;
	gid_t gid;		/* the user's primary group */
	int keep_cap_bpf;	/* the kernel refuses map calls without it */
};

/* proxy_user looked up; -1 with err (no such user, and how to make one). */
int sg_identity_resolve(const char *user, struct sg_identity *id, char *err, size_t errlen);

/* In the proxy process, before it reads anything a tenant sent: the
 * supplementary groups, gid and uid become the identity's; capabilities
 * shrink to CAP_NET_ADMIN and CAP_NET_RAW (permitted, effective and
 * bounding; CAP_BPF too where keep_cap_bpf says so); no_new_privs is set.
 * Every thread that exists then is changed, so call it before any is
 * started. -1 with err when a step fails (the process must not go on). */
int sg_privileges_drop(const struct sg_identity *id, char *err, size_t errlen);

/* The pins under root (and root itself) to root:gid, maps readable by the
 * group, so that its members' smtpguardctl can read them; a failure is
 * logged (the daemon works on; only the group's read access is missing). */
void sg_pins_share(const char *root, gid_t gid);

#endif
