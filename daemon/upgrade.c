/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * upgrade.c - SIGUSR2: an upgrade or restart in place (see daemon.h). The
 * daemon executes its binary anew (the file installed at the path it was
 * started from, so a package's new version), keeping its pid, so a service
 * manager sees one daemon throughout, and keeping its proxy process and
 * that process's end of their socket pair. The new daemon loads and
 * attaches (the classifier replaced in place, the pinned maps reused),
 * starts a new proxy that takes the listeners' slots in the SOCKMAP, and
 * only then tells the old proxy to drain: every SYN finds a listener, no
 * session is cut. Before the exec, the new binary must accept the
 * configuration and the pinned maps (--check-upgrade); otherwise this
 * daemon runs on, unchanged.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "daemon.h"
#include "log.h"
#include "notify.h"

extern char **environ;

/* The new binary with this daemon's arguments and --check-upgrade: 0 when
 * it accepts them (its errors are logged by it otherwise). */
static int preflight(const char *path, int argc, char **argv)
{
	char **args = calloc((size_t)argc + 2, sizeof(*args));
	int status = -1;
	pid_t pid;

	if (!args)
		return -1;
	for (int i = 0; i < argc; i++)
		args[i] = argv[i];
	args[argc] = "--check-upgrade";
	errno = posix_spawn(&pid, path, NULL, NULL, args, environ);
	free(args);
	if (errno) {
		sg_err("upgrade: running %s failed: %s", path, strerror(errno));
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

void daemon_upgrade(struct daemon *d, int argc, char **argv)
{
	char handed[64];

	if (!d->self_path[0]) {
		sg_err("upgrade: this daemon does not know its binary's path; restart it instead");
		return;
	}
	sg_info("upgrade: checking %s against the configuration and the pinned maps",
		d->self_path);
	if (preflight(d->self_path, argc, argv)) {
		sg_err("upgrade refused: %s does not accept this configuration or the maps pinned "
		       "at %s (its errors are above); this daemon runs on", d->self_path,
		       d->cfg.bpffs_root);
		return;
	}
	if (sg_proxy_process_hand_over(d->proxy, handed, sizeof(handed))) {
		sg_err("upgrade: keeping the proxy's socket over the exec: %s; this daemon runs on",
		       strerror(errno));
		return;
	}
	if (handed[0] && setenv(SG_TAKEOVER_ENV, handed, 1)) {
		sg_proxy_process_hand_back(d->proxy);
		sg_err("upgrade: %s; this daemon runs on", strerror(errno));
		return;
	}
	sg_info("upgrade: executing %s (pid %d stays; the proxy process %d drains once the "
		"new one listens)", d->self_path, (int)getpid(),
		(int)sg_proxy_process_pid(d->proxy));
	/* the new daemon says READY=1 once it runs; the pid stays the main one */
	sg_notify_reloading();
	fflush(stdout);
	fflush(stderr);
	execv(d->self_path, argv);
	sg_err("upgrade: executing %s failed: %s; this daemon runs on", d->self_path,
	       strerror(errno));
	unsetenv(SG_TAKEOVER_ENV);
	sg_proxy_process_hand_back(d->proxy);
	sg_notify_ready("running; the upgrade failed (the log says why)");
}
