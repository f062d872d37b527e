/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * privileges.c - the proxy process's identity (see privileges.h). The
 * capability calls are the raw system calls: two sets of 32-bit words are
 * all they take, and libcap would add a dependency for that.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "log.h"
#include "privileges.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

/* Before 5.19 a kernel with kernel.unprivileged_bpf_disabled set refuses
 * every bpf(2) call, even on a map descriptor already held, to a process
 * without CAP_BPF; from 5.19 only creating maps and loading programs is
 * refused. The proxy updates maps it inherited, so on such a kernel it
 * keeps CAP_BPF (and says so). */
static int kernel_needs_cap_bpf_for_maps(void)
{
	struct utsname u;
	unsigned major = 0, minor = 0;
	char buf[16] = "";
	FILE *f;

	if (uname(&u) || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return 0;
	if (major > 5 || (major == 5 && minor >= 19))
		return 0;
	f = fopen("/proc/sys/kernel/unprivileged_bpf_disabled", "re");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '0';
	fclose(f);
	return atoi(buf) != 0;
}

int sg_identity_resolve(const char *user, struct sg_identity *id, char *err, size_t errlen)
{
	struct passwd *pw;

	memset(id, 0, sizeof(*id));
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "proxy_user %s: %s; create it (`adduser --system --group "
			 "--no-create-home %s`, as the Debian package does) or name another "
			 "unprivileged user", user, errno ? strerror(errno) : "no such user", user);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errlen, "proxy_user %s: its %s is 0 (root's); the proxy reads what "
			 "tenants send and must not run as root: name an unprivileged user", user,
			 pw->pw_uid == 0 ? "uid" : "group");
		return -1;
	}
	snprintf(id->user, sizeof(id->user), "%s", user);
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	id->keep_cap_bpf = kernel_needs_cap_bpf_for_maps();
	return 0;
}

static int set_caps(uint64_t caps)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {
		{ .effective = (uint32_t)caps, .permitted = (uint32_t)caps },
		{ .effective = (uint32_t)(caps >> 32), .permitted = (uint32_t)(caps >> 32) },
	};

	return (int)syscall(SYS_capset, &hdr, data);
}

int sg_privileges_drop(const struct sg_identity *id, char *err, size_t errlen)
{
	uint64_t keep = (1ULL << CAP_NET_ADMIN) | (1ULL << CAP_NET_RAW);
	gid_t groups[1] = { id->gid };
	const char *step;

	if (id->keep_cap_bpf)
		keep |= 1ULL << CAP_BPF;
	/* the bounding set first: dropping from it needs CAP_SETPCAP, which
	 * goes with the user change */
	step = "dropping capabilities from the bounding set";
	for (int cap = 0; cap <= 63; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
			goto fail;
	}
	step = "keeping capabilities over the user change (PR_SET_KEEPCAPS)";
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		goto fail;
	step = "setting the supplementary groups";
	if (setgroups(1, groups))
		goto fail;
	step = "setting the group";
	if (setresgid(id->gid, id->gid, id->gid))
		goto fail;
	step = "setting the user";
	if (setresuid(id->uid, id->uid, id->uid))
		goto fail;
	step = "limiting the capabilities";
	if (set_caps(keep))
		goto fail;
	step = "clearing PR_SET_KEEPCAPS";
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0))
		goto fail;
	step = "setting no_new_privs";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		goto fail;
	/* a core dump or ptrace by the same user would read sessions */
	step = "making the process non-dumpable";
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "the proxy process dropping to %s (uid %u, gid %u): %s failed: %s",
		 id->user, (unsigned)id->uid, (unsigned)id->gid, step, strerror(errno));
	return -1;
}

void sg_pins_share(const char *root, gid_t gid)
{
	int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir;
	struct dirent *e;
	int failed = 0;

	if (dfd < 0) {
		sg_warn("sharing the pins under %s with group %u: %s", root, (unsigned)gid,
			strerror(errno));
		return;
	}
	if (fchown(dfd, 0, gid) || fchmod(dfd, 0750))
		failed = errno;
	dir = fdopendir(dfd);
	if (!dir) {
		sg_warn("sharing the pins under %s with group %u: %s", root, (unsigned)gid,
			strerror(errno));
		close(dfd);
		return;
	}
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		/* maps and programs readable by the group, written by root */
		if (fchownat(dfd, e->d_name, 0, gid, AT_SYMLINK_NOFOLLOW) ||
		    fchmodat(dfd, e->d_name, e->d_type == DT_DIR ? 0750 : 0640, 0))
			failed = errno;
	}
	closedir(dir);
	if (failed)
		sg_warn("sharing the pins under %s with group %u: %s; members of the group may "
			"not read them", root, (unsigned)gid, strerror(failed));
}
