/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ladder.h - the response ladder (ladder.c): normal -> flagged ->
 * tempfail -> refused, per sender, kept in its src_feedback entry.
 */
#ifndef SMTPGUARD_LADDER_H
#define SMTPGUARD_LADDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "feedback.h"

const char *sg_ladder_step_name(int step);
/* What the behaviour signals make of the sender now: level 0 normal, 1
 * suspicious, 2 abusive, with their reasons. It climbs (or lapses); the
 * step it stands on after. *forget: the operator released the sender
 * since: its signals are to be forgotten (nothing climbed). */
int sg_ladder_note(struct sg_feedback *fb, const struct sockaddr_storage *vm, int level,
		   const char *reasons, uint64_t now, int *forget);
/* At MAIL FROM: -1 with the reason when the sender's messages are to be
 * tempfailed (its step is tempfail or refused), else 0. */
int sg_ladder_check(struct sg_feedback *fb, const struct sockaddr_storage *vm, char *reason,
		    size_t len);
/* Each step taken, as its event's JSON line, to fn (the webhooks). */
void sg_ladder_on_step(struct sg_feedback *fb, void (*fn)(void *ctx, const char *json, size_t len),
		       void *ctx);

#endif
