/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * metrics.h - the Prometheus text exposition (format 0.0.4) of what the
 * pinned maps hold: the classifier's counters summed over CPUs, the
 * proxy's counters, gauges and histograms, and the registered listeners
 * and attached interfaces. smtpguardd's listener (daemon/metrics.c) and
 * `smtpguardctl metrics` both write it, so the two say the same.
 *
 * Collecting (sg_metrics_collect: reads the maps) is apart from writing
 * (sg_metrics_write: formats a snapshot, no system call but the stream's),
 * so the format is tested without maps. Every label value comes from a
 * fixed enum or an engine slot: no per-VM label, the number of series is
 * bounded. Counters whose names the enums gain (a new classifier counter)
 * appear by themselves: the writer walks the enums' names.
 */
#ifndef SMTPGUARD_METRICS_H
#define SMTPGUARD_METRICS_H

#include <stdint.h>
#include <stdio.h>
#include <smtpguard/maps.h>
#include "pinned.h"

#define SG_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct sg_metrics_snapshot {
	uint64_t kernel[SG_STAT__COUNT];
	struct sg_proxy_stats proxy;
	struct sg_proxy_metrics pm;
	int have_proxy;		/* the proxy's maps could be read */
	int listeners;		/* proxy listeners registered in the sockmap */
	int attached;		/* interfaces in the attachments map */
	int fail_closed;	/* the settings' fail_mode */
};

/* Reads the maps; -1 with err when the classifier's counters cannot be
 * read (the proxy's are optional: have_proxy). */
int sg_metrics_collect(const struct sg_maps *maps, struct sg_metrics_snapshot *out,
		       char *err, size_t errlen);
/* The exposition; -1 when the stream failed. */
int sg_metrics_write(FILE *out, const struct sg_metrics_snapshot *snap);
/* A label value as the format wants it: \\, \" and \n escaped, cut to
 * fit out (len > 0). */
void sg_metrics_escape(const char *value, char *out, size_t len);

/* The names the labels take (enum sg_psession, sg_pverdict, sg_preason). */
const char *sg_psession_name(int state);
const char *sg_pverdict_name(int verdict);
const char *sg_preason_name(int reason);

#endif
