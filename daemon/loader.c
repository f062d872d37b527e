/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* loader.c - creates or reuses the pinned maps and applies the config (see loader.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "classifier_tc.skel.h"
#include "loader.h"
#include "migrate.h"
#include "log.h"
#include "probe.h"

#define BPFFS_MOUNT "/sys/fs/bpf"

static int is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0700) && errno != EEXIST ? -1 : 0;
}

int sg_bpffs_prepare(const char *root)
{
	if (!is_bpffs(BPFFS_MOUNT) && strncmp(root, BPFFS_MOUNT "/", strlen(BPFFS_MOUNT) + 1) == 0) {
		if (mount("bpf", BPFFS_MOUNT, "bpf", 0, "mode=0700")) {
			sg_err("bpffs is not mounted at %s and mounting it failed: %s "
			       "(mount it with 'mount -t bpf bpf %s')", BPFFS_MOUNT,
			       strerror(errno), BPFFS_MOUNT);
			return -1;
		}
		sg_info("mounted bpffs at %s", BPFFS_MOUNT);
	}
	if (mkdir_p(root)) {
		sg_err("cannot create bpffs root %s: %s", root, strerror(errno));
		return -1;
	}
	if (!is_bpffs(root)) {
		sg_err("bpffs_root %s is not on a bpf filesystem (set bpffs_root to a "
		       "directory below a bpffs mount such as %s)", root, BPFFS_MOUNT);
		return -1;
	}
	return 0;
}

int sg_loader_open(struct sg_loader *ld, const struct sg_config *cfg)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = cfg->bpffs_root);
	char err[SG_ERR_LEN * 2];
	struct sg_migration mig;
	int ret, lockfree;

	memset(&ld->maps, -1, sizeof(ld->maps));
	/* pins of another layout are refused by name before libbpf tries them */
	if (sg_layout_check(cfg->bpffs_root, 1, err, sizeof(err))) {
		sg_err("%s", err);
		return -1;
	}
	ld->tc_skel = classifier_tc__open_opts(&opts);
	if (!ld->tc_skel) {
		sg_err("opening the TC classifier object failed: %s", strerror(errno));
		return -1;
	}
	lockfree = sg_probe_lockfree_bucket();
	ld->tc_skel->rodata->sg_lockfree_bucket = (__u8)lockfree;
	/* kernels before 5.12 refuse a cmpxchg even in code never run: they
	 * load the program built without it */
	ld->tc_prog = lockfree ? ld->tc_skel->progs.smtpguard_tc :
				 ld->tc_skel->progs.smtpguard_tc_locked;
	bpf_program__set_autoload(lockfree ? ld->tc_skel->progs.smtpguard_tc_locked :
					     ld->tc_skel->progs.smtpguard_tc, false);
	sg_info("token bucket: %s", lockfree ? "lock-free (BPF cmpxchg, coarse clock)" :
		"spin-locked (this kernel has no BPF cmpxchg or coarse clock)");
	if (sg_migrate_prepare(ld->tc_skel->obj, &mig, err, sizeof(err))) {
		sg_err("%s", err);
		ret = -1;
		goto cleanup;
	}
	ret = classifier_tc__load(ld->tc_skel);
	if (ret || ld->dry_run)
		sg_migrate_abort(&mig);
	else if (sg_migrate_finish(&mig, err, sizeof(err))) {
		sg_err("carrying the pinned maps over to their new definitions: %s", err);
		goto cleanup;
	}
	if (ret) {
		sg_err("loading the classifier with maps pinned at %s failed: %s (if the "
		       "pins come from another smtpguard version, 'smtpguardd -c FILE --detach "
		       "--purge' removes them, and with them the policy)", cfg->bpffs_root,
		       strerror(-ret));
		goto cleanup;
	}
	if (!ld->dry_run && sg_layout_record(cfg->bpffs_root)) {
		sg_err("recording the maps' layout at %s/%s failed: %s", cfg->bpffs_root,
		       SG_MAP_LAYOUT, strerror(errno));
		ret = -1;
		goto cleanup;
	}
	if (sg_maps_open(cfg->bpffs_root, &ld->maps, err, sizeof(err))) {
		sg_err("%s", err);
		ret = -1;
		goto cleanup;
	}
	return 0;
cleanup:
	sg_loader_close(ld);
	return ret ? ret : -1;
}

int sg_loader_apply_config(struct sg_loader *ld, const struct sg_config *cfg)
{
	struct sg_settings settings;
	struct sg_rate_class rc = {};
	__u32 zero = 0;

	sg_config_to_settings(cfg, &settings);
	if (cfg->proxy) {
		/* the running proxy's worker count is the proxy's to set */
		struct sg_settings old;

		if (bpf_map_lookup_elem(ld->maps.settings, &zero, &old) == 0)
			settings.n_workers = old.n_workers;
	}
	if (bpf_map_update_elem(ld->maps.settings, &zero, &settings, BPF_ANY)) {
		sg_err("writing the settings map failed: %s", strerror(errno));
		return -1;
	}
	snprintf(rc.name, sizeof(rc.name), "default");
	rc.conn_interval_ns = cfg->default_conn_interval_ns;
	rc.conn_burst = cfg->default_conn_burst;
	rc.msg_interval_ns = cfg->default_msg_interval_ns;
	rc.msg_burst = cfg->default_msg_burst;
	rc.rcpt_interval_ns = cfg->default_rcpt_interval_ns;
	rc.rcpt_burst = cfg->default_rcpt_burst;
	rc.max_sessions = cfg->default_max_sessions;
	rc.ladder_top = (__u8)cfg->default_ladder;
	if (bpf_map_update_elem(ld->maps.rate_classes, &zero, &rc, BPF_ANY)) {
		sg_err("writing the default rate class failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int sg_loader_tc_prog_fd(const struct sg_loader *ld)
{
	return bpf_program__fd(ld->tc_prog);
}

void sg_loader_close(struct sg_loader *ld)
{
	sg_maps_close(&ld->maps);
	classifier_tc__destroy(ld->tc_skel);
	ld->tc_skel = NULL;
}
