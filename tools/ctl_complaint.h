/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ctl_complaint.h - what the complaint command's two files share:
 * ctl_complaint.c (one report: parse, match, tell, confirm) and
 * ctl_complaint_watch.c (a directory, a maildir, a maildir watched).
 */
#ifndef SMTPGUARD_CTL_COMPLAINT_H
#define SMTPGUARD_CTL_COMPLAINT_H

#include "ctl.h"

struct complaint_opts {
	const char *events;	/* the daemon's events_file */
	unsigned int window_s;	/* around the report's time */
	int confirm;		/* count exact and strong matches against the sender */
};

/* One report: 0 matched (and confirmed, with confirm); 1 not a report, no
 * match, or not confirmed; 2 the events could not be read. */
int complaint_one(struct ctl *ctl, const struct complaint_opts *o, const char *path);
/* Every report in dir (a maildir's new/ ones, moved to cur/ when done):
 * 0 when each returned 0, else the worst. */
int complaint_dir(struct ctl *ctl, const struct complaint_opts *o, const char *dir);
/* A maildir's new/ now and as reports arrive, until a signal ends it. */
int complaint_watch(struct ctl *ctl, const struct complaint_opts *o, const char *maildir);

#endif
