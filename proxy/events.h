/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * events.h - one JSON line per message and per session, to the file named by
 * events_file (or stdout for "-"): who sent, to which MX, from which HELO
 * and envelope sender, to how many recipients in which domains, the size,
 * the Message-ID, the MX's reply, the verdict and its reason, the reference
 * id. Never a byte of the body. `smtpguardctl trace ID` reads it back.
 */
#ifndef SMTPGUARD_EVENTS_H
#define SMTPGUARD_EVENTS_H

#include "relay.h"

int sg_events_open(const char *path);
void sg_events_close(void);
/* verdict: "accept" (the MX's reply decides), "reject", "tempfail" */
void sg_event_message(const struct session *s, const char *verdict, const char *reason,
		      const char *mx_reply);
void sg_event_session(const struct session *s);

#endif
