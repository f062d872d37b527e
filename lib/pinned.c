/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* pinned.c - the pinned maps and the operations the daemon, CLI and tests
 * share on them (see pinned.h). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "log.h"
#include "pinned.h"

static const struct {
	const char *name;
	size_t offset;
} pinned_maps[] = {
	{ SG_MAP_POLICY_V4, offsetof(struct sg_maps, policy_v4) },
	{ SG_MAP_POLICY_V6, offsetof(struct sg_maps, policy_v6) },
	{ SG_MAP_RATE_CLASSES, offsetof(struct sg_maps, rate_classes) },
	{ SG_MAP_SRC_STATE, offsetof(struct sg_maps, src_state) },
	{ SG_MAP_OVERFLOW, offsetof(struct sg_maps, overflow_state) },
	{ SG_MAP_SETTINGS, offsetof(struct sg_maps, settings) },
	{ SG_MAP_STATS, offsetof(struct sg_maps, stats) },
	{ SG_MAP_ATTACHMENTS, offsetof(struct sg_maps, attachments) },
	{ SG_MAP_LISTENERS, offsetof(struct sg_maps, listeners) },
	{ SG_MAP_FEEDBACK, offsetof(struct sg_maps, src_feedback) },
	{ SG_MAP_PROXY_STATS, offsetof(struct sg_maps, proxy_stats) },
	{ SG_MAP_SRC_BOUND, offsetof(struct sg_maps, src_bound) },
	{ SG_MAP_IFACE_STATE, offsetof(struct sg_maps, iface_state) },
	{ SG_MAP_FLOW_SENDER, offsetof(struct sg_maps, flow_sender) },
	{ SG_MAP_PROXY_METRICS, offsetof(struct sg_maps, proxy_metrics) },
	{ SG_MAP_BULK_SHARED, offsetof(struct sg_maps, bulk_shared) },
};

#define N_PINNED (sizeof(pinned_maps) / sizeof(pinned_maps[0]))

static int *map_slot(struct sg_maps *maps, size_t i)
{
	return (int *)((char *)maps + pinned_maps[i].offset);
}

int sg_layout_read(const char *root, unsigned *version)
{
	char path[512];
	__u32 zero = 0, v = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, SG_MAP_LAYOUT);
	fd = bpf_obj_get(path);
	if (fd < 0 && errno == EACCES) {
		LIBBPF_OPTS(bpf_obj_get_opts, ro, .file_flags = BPF_F_RDONLY);

		fd = bpf_obj_get_opts(path, &ro);
	}
	if (fd < 0) {
		char other[512];

		if (errno != ENOENT)
			return -1;
		/* pins from before the layout was recorded are layout 1 */
		snprintf(other, sizeof(other), "%s/%s", root, SG_MAP_SRC_STATE);
		*version = access(other, F_OK) == 0 ? 1 : 0;
		return 0;
	}
	if (bpf_map_lookup_elem(fd, &zero, &v)) {
		close(fd);
		return -1;
	}
	close(fd);
	*version = v;
	return 0;
}

int sg_layout_check(const char *root, int allow_older, char *err, size_t errlen)
{
	unsigned v;

	if (sg_layout_read(root, &v)) {
		snprintf(err, errlen, "reading the layout of the maps pinned at %s: %s", root,
			 strerror(errno));
		return -1;
	}
	if (v == 0 || v == SG_LAYOUT_VERSION || (allow_older && v < SG_LAYOUT_VERSION))
		return 0;
	snprintf(err, errlen, "the maps pinned at %s are of layout %u, this smtpguard's are of "
		 "layout %u: %s; `smtpguardd -c FILE --detach --purge` removes them (and the "
		 "policy, rate classes and per-sender state with them)", root, v,
		 (unsigned)SG_LAYOUT_VERSION,
		 v > SG_LAYOUT_VERSION ? "a newer smtpguard made them (a downgrade cannot read "
		 "them: run the newer one)" : "an older smtpguard made them: start this smtpguardd "
		 "once, which carries them over");
	return -1;
}

int sg_layout_record(const char *root)
{
	char path[512];
	__u32 zero = 0, v = SG_LAYOUT_VERSION;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, SG_MAP_LAYOUT);
	fd = bpf_obj_get(path);
	if (fd < 0) {
		LIBBPF_OPTS(bpf_map_create_opts, opts);

		fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, SG_MAP_LAYOUT, sizeof(zero), sizeof(v), 1,
				    &opts);
		if (fd < 0)
			return -1;
		if (bpf_map_update_elem(fd, &zero, &v, BPF_ANY) || bpf_obj_pin(fd, path)) {
			int e = errno;

			close(fd);
			errno = e;
			return -1;
		}
	} else if (bpf_map_update_elem(fd, &zero, &v, BPF_ANY)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

int sg_maps_fds(const struct sg_maps *maps, int *fds, int max)
{
	int n = 0;

	for (size_t i = 0; i < N_PINNED && n < max; i++) {
		int fd = *map_slot((struct sg_maps *)maps, i);

		if (fd >= 0)
			fds[n++] = fd;
	}
	return n;
}

void sg_maps_close(struct sg_maps *maps)
{
	for (size_t i = 0; i < N_PINNED; i++) {
		int *fd = map_slot(maps, i);

		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

int sg_maps_open(const char *root, struct sg_maps *maps, char *err, size_t errlen)
{
	struct stat st;

	for (size_t i = 0; i < N_PINNED; i++)
		*map_slot(maps, i) = -1;
	if (stat(root, &st) != 0) {
		snprintf(err, errlen, "no pinned maps at %s: %s (is smtpguardd running "
			 "with bpffs_root = %s? otherwise pass --root DIR)", root,
			 strerror(errno), root);
		return -1;
	}
	if (sg_layout_check(root, 0, err, errlen))
		return -1;
	for (size_t i = 0; i < N_PINNED; i++) {
		char path[512];
		int fd;

		snprintf(path, sizeof(path), "%s/%s", root, pinned_maps[i].name);
		fd = bpf_obj_get(path);
		/* a member of the pins' group (sg_pins_share) reads, only root writes */
		if (fd < 0 && errno == EACCES) {
			LIBBPF_OPTS(bpf_obj_get_opts, ro, .file_flags = BPF_F_RDONLY);

			fd = bpf_obj_get_opts(path, &ro);
		}
		/* added to layout 4 after it was released: pins of a daemon
		 * from before it lack it, and its users do without (-1) */
		if (fd < 0 && errno == ENOENT && pinned_maps[i].offset ==
		    offsetof(struct sg_maps, bulk_shared))
			continue;
		if (fd < 0) {
			int e = errno;

			snprintf(err, errlen, "no pinned map %s: %s (%s is not an smtpguard "
				 "bpffs root, or smtpguardd has not started there; pass --root DIR)",
				 path, strerror(e), root);
			sg_maps_close(maps);
			return -1;
		}
		*map_slot(maps, i) = fd;
	}
	return 0;
}

int sg_rate_class_find(const struct sg_maps *maps, const char *name)
{
	struct sg_rate_class rc;

	for (__u32 slot = 0; slot < SG_MAX_RATE_CLASSES; slot++) {
		if (bpf_map_lookup_elem(maps->rate_classes, &slot, &rc))
			return -1;
		if (rc.name[0] && strncmp(rc.name, name, sizeof(rc.name)) == 0)
			return (int)slot;
	}
	return -1;
}

int sg_rate_class_set(const struct sg_maps *maps, const char *name,
		      const struct sg_rate_class *limits, char *err, size_t errlen)
{
	struct sg_rate_class rc;
	int slot = sg_rate_class_find(maps, name);
	__u32 key;

	if (strlen(name) == 0 || strlen(name) >= SG_RATE_CLASS_NAME_LEN) {
		snprintf(err, errlen, "rate class name '%s' must be 1 to %d characters",
			 name, SG_RATE_CLASS_NAME_LEN - 1);
		return -1;
	}
	for (const char *c = name; *c; c++) {
		if (!sg_rate_class_name_char(*c)) {
			snprintf(err, errlen, "rate class name '%s' may hold letters, digits, '.', "
				 "'_' and '-' only (it is quoted in SMTP replies)", name);
			return -1;
		}
	}
	if (slot < 0) {
		/* slot 0 is reserved for "default", which smtpguardd writes */
		for (key = 1; key < SG_MAX_RATE_CLASSES; key++) {
			if (bpf_map_lookup_elem(maps->rate_classes, &key, &rc) == 0 && !rc.name[0])
				break;
		}
		if (key == SG_MAX_RATE_CLASSES) {
			snprintf(err, errlen, "all %d rate classes are in use; reuse one with "
				 "'rate-class set EXISTING ...'", SG_MAX_RATE_CLASSES - 1);
			return -1;
		}
		slot = (int)key;
		memset(&rc, 0, sizeof(rc));
	} else {
		key = (__u32)slot;
		if (bpf_map_lookup_elem(maps->rate_classes, &key, &rc)) {
			snprintf(err, errlen, "reading rate class %s: %s", name, strerror(errno));
			return -1;
		}
	}
	key = (__u32)slot;
	rc = *limits;
	memset(rc.name, 0, sizeof(rc.name));
	snprintf(rc.name, sizeof(rc.name), "%s", name);
	if (bpf_map_update_elem(maps->rate_classes, &key, &rc, BPF_ANY)) {
		snprintf(err, errlen, "writing rate class %s: %s", name, strerror(errno));
		return -1;
	}
	return slot;
}

void sg_policy_lookup(const struct sg_maps *maps, const __u8 *addr, int is_v6,
		      struct sg_policy *out)
{
	struct sg_settings settings;
	__u32 zero = 0;

	if (is_v6) {
		struct sg_lpm_v6_key k = { .prefixlen = 128 };

		memcpy(k.addr, addr, 16);
		if (bpf_map_lookup_elem(maps->policy_v6, &k, out) == 0)
			return;
	} else {
		struct sg_lpm_v4_key k = { .prefixlen = 32 };

		memcpy(k.addr, addr, 4);
		if (bpf_map_lookup_elem(maps->policy_v4, &k, out) == 0)
			return;
	}
	memset(out, 0, sizeof(*out));
	if (bpf_map_lookup_elem(maps->settings, &zero, &settings) == 0) {
		out->action = settings.default_action;
		out->rate_class = settings.default_rate_class;
		out->tls_mode = settings.default_tls_mode;
		out->source_mode = settings.default_source_mode;
	}
}

static int policy_key(const struct sg_maps *maps, const struct sg_prefix *p,
		      struct sg_lpm_v6_key *key, int *fd)
{
	memset(key, 0, sizeof(*key));
	key->prefixlen = p->len;
	memcpy(key->addr, p->addr, p->family == AF_INET ? 4 : 16);
	*fd = p->family == AF_INET ? maps->policy_v4 : maps->policy_v6;
	return 0;
}

int sg_policy_set(const struct sg_maps *maps, const struct sg_prefix *p,
		  const struct sg_policy *policy, char *err, size_t errlen)
{
	struct sg_lpm_v6_key key;	/* the v4 key is a prefix of this layout */
	int fd;

	policy_key(maps, p, &key, &fd);
	if (bpf_map_update_elem(fd, &key, policy, BPF_ANY)) {
		char buf[64];

		sg_format_prefix(p, buf, sizeof(buf));
		snprintf(err, errlen, "adding policy for %s: %s%s", buf, strerror(errno),
			 errno == E2BIG || errno == ENOSPC ? " (policy table full)" : "");
		return -1;
	}
	return 0;
}

int sg_policy_delete(const struct sg_maps *maps, const struct sg_prefix *p,
		     char *err, size_t errlen)
{
	struct sg_lpm_v6_key key;
	int fd;

	policy_key(maps, p, &key, &fd);
	if (bpf_map_delete_elem(fd, &key)) {
		char buf[64];

		sg_format_prefix(p, buf, sizeof(buf));
		if (errno == ENOENT)
			snprintf(err, errlen, "no policy entry for %s ('policy list' shows "
				 "the entries)", buf);
		else
			snprintf(err, errlen, "deleting policy for %s: %s", buf, strerror(errno));
		return -1;
	}
	return 0;
}

int sg_stats_read(const struct sg_maps *maps, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 *percpu;

	if (ncpu <= 0)
		return -1;
	percpu = calloc((size_t)ncpu, sizeof(*percpu));
	if (!percpu)
		return -1;
	for (__u32 i = 0; i < SG_STAT__COUNT; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(maps->stats, &i, percpu) == 0)
			for (int c = 0; c < ncpu; c++)
				out[i] += percpu[c];
	}
	free(percpu);
	return 0;
}

int sg_source_read(const struct sg_maps *maps, const struct sg_src_key *k,
		   struct sg_src_state *out)
{
	return bpf_map_lookup_elem_flags(maps->src_state, k, out, BPF_F_LOCK) ? -1 : 0;
}

int sg_source_set_penalty(const struct sg_maps *maps, const struct sg_src_key *k,
			  uint64_t until_ns, char *err, size_t errlen)
{
	struct sg_src_state st;

	if (sg_source_read(maps, k, &st)) {
		memset(&st, 0, sizeof(st));
		st.first_seen_ns = sg_now_ns();
		st.last_seen_ns = st.first_seen_ns;
	}
	st.penalty_until_ns = until_ns;
	if (!until_ns)
		st.tat_ns = 0;	/* unblocked: a full bucket */
	if (bpf_map_update_elem(maps->src_state, k, &st, BPF_F_LOCK)) {
		char buf[64];

		sg_format_source(k, 0, buf, sizeof(buf));
		snprintf(err, errlen, "updating source %s: %s%s", buf, strerror(errno),
			 errno == E2BIG ? " (per-source table full)" : "");
		return -1;
	}
	return 0;
}

int sg_bpffs_purge(const char *root)
{
	DIR *dir = opendir(root);
	struct dirent *de;
	int ret = 0;

	if (!dir)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(dir))) {
		char path[PATH_MAX];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, de->d_name);
		if (unlink(path)) {
			sg_warn("cannot remove pin %s: %s", path, strerror(errno));
			ret = -1;
		}
	}
	closedir(dir);
	if (rmdir(root)) {
		sg_warn("cannot remove bpffs root %s: %s", root, strerror(errno));
		ret = -1;
	}
	return ret;
}
