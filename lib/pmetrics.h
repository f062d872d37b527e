/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * pmetrics.h - the proxy's gauges and histograms (struct sg_proxy_metrics
 * in maps.h), kept in the pinned proxy_metrics map and changed in place,
 * as pstats.h does for the counters: mapped once (sg_pmetrics_attach),
 * then any thread adds with one atomic operation. Unattached (the tests,
 * a daemon without the map), every call does nothing.
 */
#ifndef SMTPGUARD_PMETRICS_H
#define SMTPGUARD_PMETRICS_H

#include <stdint.h>
#include <smtpguard/maps.h>

/* Maps the proxy_metrics map for counting; -1 with errno. The gauges and
 * health of a proxy that ran before are zeroed (its sessions are gone);
 * the counters and histograms keep counting up. */
int sg_pmetrics_attach(int map_fd);
void sg_pmetrics_detach(void);

/* A session leaves state from (SG_PSESSION__COUNT: it is new) for state
 * to (SG_PSESSION__COUNT: it is gone). */
void sg_pmetric_session(enum sg_psession from, enum sg_psession to);
void sg_pmetric_verdict(enum sg_pverdict verdict, enum sg_preason reason);
/* An engine (its slot) answered after latency_ns. */
void sg_pmetric_engine_latency(int slot, uint64_t latency_ns);
void sg_pmetric_engine_health(int slot, enum sg_health health);
/* The engines' names, by slot (an empty or NULL name: no engine there). */
void sg_pmetric_engine_names(const char *const *names, int n);
void sg_pmetric_webhook(enum sg_health health);
void sg_pmetric_webhook_queued(int64_t delta);

/* The map's contents (smtpguardctl, the metrics); -1 on error. */
int sg_pmetrics_read(int map_fd, struct sg_proxy_metrics *out);
/* The bucket an observation of latency_us falls in. */
int sg_latency_bucket(uint64_t latency_us);

#endif
