/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * pstats.h - the proxy's counters (enum sg_pstat in maps.h), kept in the
 * pinned proxy_stats map and added to in place: the daemon maps it into
 * its memory once (sg_pstats_attach), and any thread counts with one
 * atomic add; smtpguardctl stats reads the map. Unattached (the tests, a
 * daemon without the map), counting does nothing.
 */
#ifndef SMTPGUARD_PSTATS_H
#define SMTPGUARD_PSTATS_H

#include <stdint.h>
#include <smtpguard/maps.h>

/* Maps the proxy_stats map (its descriptor) for counting; -1 with errno. */
int sg_pstats_attach(int map_fd);
void sg_pstats_detach(void);
void sg_pstat_add(enum sg_pstat stat, uint64_t n);
/* The counters, read from the map (smtpguardctl); -1 on error. */
int sg_pstats_read(int map_fd, struct sg_proxy_stats *out);

#endif
