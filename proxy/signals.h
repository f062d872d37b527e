/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * signals.h - the relay's hooks into the behaviour signals and the
 * response ladder (signals.c). Each takes the session it comes from.
 */
#ifndef SMTPGUARD_SIGNALS_H
#define SMTPGUARD_SIGNALS_H

#include "session.h"

/* A message ended: judged at its dot (accepted or refused by the scan). */
void signals_message(struct session *s, const struct sg_tx *tx, const struct sg_scan *scan);
/* The MX answered MAIL, RCPT, DATA or the dot (data_end). */
void signals_reply(struct session *s, enum smtp_verb verb, int data_end, const char *mail_from,
		   int code, const char *reply);
/* Is the sender, or the sub-identity that wrote tx, on the allow list? */
int signals_allowed(struct session *s, const struct sg_tx *tx);
/* A session passed through in TLS ended: what is known without reading it. */
void signals_tls_session(struct session *s, uint64_t bytes, uint64_t duration_ns);
/* A MAIL FROM the ladder holds: the sender is judged again (it may climb). */
void signals_held(struct session *s);

#endif
