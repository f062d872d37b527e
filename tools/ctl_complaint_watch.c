/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ctl_complaint_watch.c - complaint over many reports (see ctl_complaint.h):
 * a directory's regular files, once, in name order; or a maildir (new/,
 * cur/, tmp/), where a feedback-loop mailbox is delivered: each message in
 * new/ is read once and moved to cur/ with the flags a mail reader sets
 * (":2,S" seen; ":2,FS" flagged too when it did not parse, match or
 * confirm, so a human looks), so a report is never taken twice, whatever
 * stops in between. --watch waits on new/ with inotify (a delivery agent
 * writes in tmp/ and renames into new/: IN_MOVED_TO; a plain copy: its
 * IN_CLOSE_WRITE) until SIGINT or SIGTERM.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ctl_complaint.h"
#include "log.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int is_dir(const char *dir, const char *sub)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_maildir(const char *dir)
{
	return is_dir(dir, "new") && is_dir(dir, "cur");
}

static int worse(int a, int b)
{
	return a > b ? a : b;
}

/* new/NAME read, then moved to cur/ (flagged unless it went well). */
static int take_new(struct ctl *ctl, const struct complaint_opts *o, const char *maildir,
		    const char *name)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct stat st;
	int ret;

	if (name[0] == '.')
		return 0;
	if (snprintf(from, sizeof(from), "%s/new/%s", maildir, name) >= (int)sizeof(from))
		return 1;
	if (lstat(from, &st) || !S_ISREG(st.st_mode))
		return 0;	/* gone already, or not a message */
	ret = complaint_one(ctl, o, from);
	if (ret == 2)
		return ret;	/* the events could not be read: try it again later */
	snprintf(to, sizeof(to), "%s/cur/%.*s:2,%s", maildir, (int)strcspn(name, ":"), name,
		 ret ? "FS" : "S");
	if (rename(from, to))
		sg_err("moving %s to %s failed: %s (it will be read again)", from, to,
		       strerror(errno));
	return ret;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int take_all_new(struct ctl *ctl, const struct complaint_opts *o, const char *maildir)
{
	char dir[PATH_MAX];
	struct dirent **names;
	int n, ret = 0;

	snprintf(dir, sizeof(dir), "%s/new", maildir);
	n = scandir(dir, &names, NULL, by_name);
	if (n < 0) {
		sg_err("cannot list %s: %s", dir, strerror(errno));
		return 2;
	}
	for (int i = 0; i < n; i++) {
		if (!stop)
			ret = worse(ret, take_new(ctl, o, maildir, names[i]->d_name));
		free(names[i]);
	}
	free(names);
	return ret;
}

int complaint_dir(struct ctl *ctl, const struct complaint_opts *o, const char *dir)
{
	struct dirent **names;
	int n, ret = 0, seen = 0;

	if (is_maildir(dir))
		return take_all_new(ctl, o, dir);
	n = scandir(dir, &names, NULL, by_name);
	if (n < 0) {
		sg_err("cannot list %s: %s", dir, strerror(errno));
		return 2;
	}
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];
		struct stat st;

		if (names[i]->d_name[0] != '.' &&
		    snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name) < (int)sizeof(path) &&
		    lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			seen++;
			ret = worse(ret, complaint_one(ctl, o, path));
		}
		free(names[i]);
	}
	free(names);
	if (!seen) {
		sg_err("no reports in %s", dir);
		return 1;
	}
	return ret;
}

int complaint_watch(struct ctl *ctl, const struct complaint_opts *o, const char *maildir)
{
	char newdir[PATH_MAX], buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct sigaction sa = { .sa_handler = on_signal };
	int fd, ret = 0;

	if (!is_maildir(maildir)) {
		sg_err("%s is not a maildir (no new/ and cur/ in it): make one with "
		       "'mkdir -p %s/new %s/cur %s/tmp' and deliver the feedback loop's mail there",
		       maildir, maildir, maildir, maildir);
		return EXIT_USAGE;
	}
	snprintf(newdir, sizeof(newdir), "%s/new", maildir);
	fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0 || inotify_add_watch(fd, newdir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		sg_err("cannot watch %s: %s", newdir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	/* no SA_RESTART: a signal ends the read below */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	sg_info("watching %s for abuse reports", newdir);
	ret = take_all_new(ctl, o, maildir);	/* what came before the watch */
	while (!stop) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			sg_err("watching %s failed: %s", newdir, n ? strerror(errno) : "end of events");
			ret = 2;
			break;
		}
		for (char *p = buf; p < buf + n; ) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (ev->mask & IN_Q_OVERFLOW)
				ret = worse(ret, take_all_new(ctl, o, maildir));
			else if (ev->len && !stop)
				ret = worse(ret, take_new(ctl, o, maildir, ev->name));
			p += sizeof(*ev) + ev->len;
		}
	}
	close(fd);
	sg_info("stopped watching %s", newdir);
	return ret == 2 ? 2 : 0;
}
