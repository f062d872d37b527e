/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * date.h - an RFC 5322 date-time ("Thu, 3 Dec 2026 10:15:02 +0100", with
 * the obsolete zones UT, GMT, Z, EST ... PDT and comments such as "(UTC)")
 * as seconds since the epoch: ARF's Arrival-Date, a message's Date, the
 * date after a Received header's ';'.
 */
#ifndef SMTPGUARD_DATE_H
#define SMTPGUARD_DATE_H

#include <stddef.h>
#include <stdint.h>

/* 0 and *epoch; -1 with what is wrong in err. */
int sg_rfc5322_date(const char *s, int64_t *epoch, char *err, size_t errlen);

#endif
