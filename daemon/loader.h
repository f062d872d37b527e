/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * loader.h - owns the classifier's maps: mounts bpffs if needed, loads the TC
 * object with pin_root_path so its maps are created and pinned on the first
 * start and reused on every later one (policy and per-source state survive a
 * restart), and writes the settings the config dictates.
 */
#ifndef SMTPGUARD_LOADER_H
#define SMTPGUARD_LOADER_H

#include "config.h"
#include "pinned.h"

struct classifier_tc;
struct bpf_program;

struct sg_loader {
	struct classifier_tc *tc_skel;
	struct bpf_program *tc_prog;	/* what TC attaches: lock-free or _locked */
	struct sg_maps maps;		/* opened from the pins */
	int dry_run;			/* --check-upgrade: load, but change no pin */
};

int sg_loader_open(struct sg_loader *ld, const struct sg_config *cfg);
/* Writes settings and the "default" rate class from cfg. */
int sg_loader_apply_config(struct sg_loader *ld, const struct sg_config *cfg);
int sg_loader_tc_prog_fd(const struct sg_loader *ld);
void sg_loader_close(struct sg_loader *ld);
/* Makes sure bpffs is mounted and root exists. */
int sg_bpffs_prepare(const char *root);

#endif
