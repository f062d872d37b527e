/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ctl.h - what smtpguardctl's files share: the CLI's state (the root and
 * its maps), argument parsing with errors that say what to fix, and the
 * commands, one file a group:
 *
 *   smtpguardctl.c  usage, the table of commands, main
 *   ctl_args.c      options, positional arguments, the maps opened
 *   ctl_policy.c    policy add|del|list, rate-class set|list
 *   ctl_sources.c   show, block, unblock: per-sender state
 *   ctl_state.c     stats, metrics, fail-mode, trace
 *   ctl_complaint*.c complaint: abuse reports traced to the VM (ctl_complaint.h)
 *   ctl_top.c       top: the live view in a terminal
 *   ctl_tenants.c   tenants: per tenant sums; a sender's tenant (show)
 *   ctl_doctor*.c   doctor: what is wrong on this host, and what to do
 *
 * Exit status: 0 done; 1 the change could not be made (e.g. a table full);
 * 2 (EXIT_USAGE) bad arguments, or no smtpguard maps at the root.
 */
#ifndef SMTPGUARD_CTL_H
#define SMTPGUARD_CTL_H

#include <stddef.h>
#include <smtpguard/maps.h>
#include "pinned.h"
#include "tenants.h"

#define EXIT_USAGE 2
#define DEFAULT_ROOT "/sys/fs/bpf/smtpguard"
#define DEFAULT_CONFIG "/etc/smtpguard/smtpguard.conf"

struct ctl {
	const char *root;
	int json;
	struct sg_maps maps;
};

struct opt_spec {
	const char *name;
	const char **value;
};

/* ctl_args.c */
/* fmt names what is wrong (one %s: arg); EXIT_USAGE. */
int usage_error(const char *fmt, const char *arg);
int open_maps(struct ctl *ctl);
/* The name of rate class slot, or its number. */
void class_name(const struct ctl *ctl, __u32 slot, char *buf, size_t len);
/* The command's options (specs) and exactly npositional arguments from
 * argv[first]; EXIT_USAGE (said) when they do not fit synopsis. */
int parse_opts(int argc, char **argv, int first, struct opt_spec *specs, int nspecs,
	       int npositional, const char *synopsis);
const char *positional_arg(int argc, char **argv, int first, int index);
int no_args_then_maps(struct ctl *ctl, int argc, char **argv, int first,
		      const char *synopsis);
/* A name (an action, a TLS mode...) into *out through from_name. */
int name_arg(int (*from_name)(const char *), const char *value, const char *kind,
	     const char *accepted, __u8 *out);
/* ADDR, the one positional argument of cmd, as a sender key. */
int parse_source_arg(int argc, char **argv, int first, const char *cmd,
		     struct opt_spec *specs, int nspecs, struct sg_src_key *key,
		     const char **addr);
/* The prefix IPv6 senders are counted by, from the daemon's settings. */
unsigned int v6_source_prefix(const struct ctl *ctl);
/* Opens the maps, then cuts the (already valid) address to the sender key
 * the classifier uses. */
int open_maps_for_source(struct ctl *ctl, const char *addr, struct sg_src_key *key);

/* the commands: argv[first] is the command's first argument */
int cmd_policy_add(struct ctl *ctl, int argc, char **argv, int first);
int cmd_policy_del(struct ctl *ctl, int argc, char **argv, int first);
int cmd_policy_list(struct ctl *ctl, int argc, char **argv, int first);
int cmd_rate_class_set(struct ctl *ctl, int argc, char **argv, int first);
int cmd_rate_class_list(struct ctl *ctl, int argc, char **argv, int first);
int cmd_show(struct ctl *ctl, int argc, char **argv, int first);
int cmd_release(struct ctl *ctl, int argc, char **argv, int first);
int cmd_block(struct ctl *ctl, int argc, char **argv, int first);
int cmd_unblock(struct ctl *ctl, int argc, char **argv, int first);
int cmd_top(struct ctl *ctl, int argc, char **argv, int first);
int cmd_stats(struct ctl *ctl, int argc, char **argv, int first);
int cmd_metrics(struct ctl *ctl, int argc, char **argv, int first);
int cmd_doctor(struct ctl *ctl, int argc, char **argv, int first);
int cmd_fail_mode(struct ctl *ctl, int argc, char **argv, int first);
int cmd_trace(struct ctl *ctl, int argc, char **argv, int first);
int cmd_complaint(struct ctl *ctl, int argc, char **argv, int first);
int cmd_tenants(struct ctl *ctl, int argc, char **argv, int first);

/* ctl_tenants.c */
/* The tenants config (FILE, else DEFAULT_CONFIG when it exists) names;
 * *out NULL when it names none. 0, or the exit status (said). */
int ctl_tenants_load(const char *config, struct sg_tenants **out);

#endif
