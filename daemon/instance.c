/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* instance.c - the per-bpffs-root lock of smtpguardd (see instance.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "instance.h"
#include "log.h"

#define SG_LOCK_DIR "/run/smtpguard"

static void lock_path(const char *bpffs_root, char *path, size_t len)
{
	char name[300];
	size_t n = 0;

	for (const char *c = bpffs_root; *c && n < sizeof(name) - 1; c++)
		name[n++] = *c == '/' ? '_' : *c;
	name[n] = '\0';
	snprintf(path, len, "%s/%s.lock", SG_LOCK_DIR, name);
}

void sg_instance_forget(const char *bpffs_root)
{
	char path[512];

	lock_path(bpffs_root, path, sizeof(path));
	unlink(path);
}

int sg_instance_running(const char *bpffs_root)
{
	char path[512], pid[32];
	ssize_t len;
	int fd, held;

	lock_path(bpffs_root, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* a lock taken here means nobody holds it */
	held = flock(fd, LOCK_SH | LOCK_NB) != 0;
	len = held ? pread(fd, pid, sizeof(pid) - 1, 0) : 0;
	close(fd);
	pid[len > 0 ? len : 0] = '\0';
	return held ? atoi(pid) : 0;
}

int sg_instance_lock(const char *bpffs_root)
{
	char path[512], pid[32];
	ssize_t len;
	int fd;

	if (mkdir(SG_LOCK_DIR, 0700) && errno != EEXIST) {
		sg_err("cannot create %s for the instance lock: %s", SG_LOCK_DIR, strerror(errno));
		return -1;
	}
	lock_path(bpffs_root, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		sg_err("cannot open the instance lock %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		len = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[len > 0 ? len : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		sg_err("another smtpguardd (pid %s) already runs with bpffs_root = %s; stop it "
		       "first, or give this one another bpffs_root", pid[0] ? pid : "?", bpffs_root);
		close(fd);
		return -1;
	}
	len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)len, 0) != len)
		sg_warn("cannot record the pid in %s: %s", path, strerror(errno));
	return fd;
}
