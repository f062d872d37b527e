/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * sources.h - the proxy's concurrent sessions per sender (sources.c), for
 * the session limit of the sender's rate class.
 */
#ifndef SMTPGUARD_SOURCES_H
#define SMTPGUARD_SOURCES_H

#include <stdint.h>
#include <smtpguard/maps.h>

struct sg_sources;

struct sg_sources *sg_sources_new(void);
void sg_sources_free(struct sg_sources *t);
/* Counts one more session of the sender; -1 (not counted) when it holds
 * max already (0: no limit). */
int sg_sources_enter(struct sg_sources *t, const struct sg_src_key *key, uint32_t max);
/* One of its sessions ended. */
void sg_sources_leave(struct sg_sources *t, const struct sg_src_key *key);

#endif
