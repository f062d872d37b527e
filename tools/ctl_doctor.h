/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ctl_doctor.h - what `smtpguardctl doctor`'s files share: the findings
 * (each a level, what was checked, what was found and what to do) and the
 * checks, one function each, in two files: ctl_doctor.c (the command, the
 * config, bpffs, the kernel, the daemon, its listeners and fail mode) and
 * ctl_doctor_host.c (sysctls, interfaces, policy routing, milters, the
 * certificate, the metrics listener).
 */
#ifndef SMTPGUARD_CTL_DOCTOR_H
#define SMTPGUARD_CTL_DOCTOR_H

#include "config.h"
#include "ctl.h"

enum doctor_level { DOCTOR_OK = 0, DOCTOR_WARN = 1, DOCTOR_FAIL = 2 };

struct finding {
	enum doctor_level level;
	char check[40];		/* what was checked: "bpffs", "sysctl ip_forward" */
	char found[640];
	char todo[640];		/* what to do; empty when nothing is */
};

#define DOCTOR_MAX_FINDINGS 128

struct doctor {
	struct ctl *ctl;
	struct sg_config cfg;
	int have_maps;		/* the pinned maps opened */
	struct finding findings[DOCTOR_MAX_FINDINGS];
	int n;
};

/* A finding; found is printf-like. todo may be NULL. */
__attribute__((format(printf, 5, 6)))
void finding(struct doctor *d, enum doctor_level level, const char *check, const char *todo,
	     const char *found, ...);

/* ctl_doctor_host.c */
/* uplink not set: found as smtpguardd finds it, for the checks after */
void check_uplink_found(struct doctor *d);
void check_sysctls(struct doctor *d);
void check_interfaces(struct doctor *d);
void check_routing(struct doctor *d);
void check_milters(struct doctor *d);
void check_certificate(struct doctor *d);
void check_metrics_listener(struct doctor *d);

#endif
