/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * shared_script.h - the Lua script Redis runs for each sync round (loaded
 * with SCRIPT LOAD, called with EVALSHA): Redis's own clock (TIME), every
 * key with a TTL, one round trip a sync.
 *
 * ARGV, all numbers in decimal, times in milliseconds:
 *   1 conn window   2 conn limit (0: none)   3 msg window   4 msg limit
 *   5 penalty       6 the longest a step with no end is kept (ladder_forget)
 *   7 most entries returned   8 groups G   9 senders S
 *   10 the time the deltas span (since the last round answered)
 *   then G times: GROUP  SYNS  MSGS      (deltas since the last round)
 *   then S times: SENDER  PENALTY_LEFT  STEP  STEP_LEFT   (0 0 0: released)
 *   then HOST  B, B times: DIGEST  SPREADING:SENDERS   (bulk bodies: this
 *                               host's counts, changed since the last round)
 *   then Q, Q times: DIGEST     (the bodies whose other hosts' counts it asks)
 * Keys (all under sg:, each with a TTL):
 *   sg:c:GROUP:N, sg:m:GROUP:N  a group's connections (SYNs that passed) and
 *                               messages in window N
 *                               (two windows kept: the limit is judged on a
 *                               sliding estimate, the last window weighted;
 *                               deltas that span more than half a window, as
 *                               after an outage, count the share of the last
 *                               window, in the window before: a catch-up is
 *                               not a burst)
 *   sg:over                     groups over a limit -> until (zset)
 *   sg:p:SENDER                 a sender's penalty until, step, step until (hash)
 *   sg:pen                      the senders in sg:p:* -> when theirs expires (zset)
 *   sg:bulk:DIGEST              a bulk body's counts: HOST -> "SPREADING:SENDERS"
 *                               (hash; TTL the bulk window, from each write)
 *   sg:alive                    when this store's state began (a restarted,
 *                               empty Redis starts it again)
 * A sender's penalty or step set or released, or a group newly over a
 * limit: PUBLISH sg:changed (the hosts subscribed run a round at once).
 * Returns { now, ms since sg:alive began,
 *           { SENDER, PENALTY_LEFT, STEP, STEP_LEFT, ... },
 *           { GROUP, PENALTY_LEFT, ... },
 *           { DIGEST, SPREADING, SENDERS, ... } }  (each asked, summed over the
 *                                                   other hosts)
 */
#ifndef SMTPGUARD_SHARED_SCRIPT_H
#define SMTPGUARD_SHARED_SCRIPT_H

#define SG_SHARED_ARGS_FIXED 10
#define SG_SHARED_ARGS_GROUP 3
#define SG_SHARED_ARGS_SENDER 4
/* sg:pen holds at most this many senders (the store's bound, whatever the hosts send) */
#define SG_SHARED_STORE_SENDERS_MAX 1000000
/* bulk bodies a round sends and asks about, at most each */
#define SG_SHARED_BULK_MAX 256
/* a body's counts are kept in the store this long after their last write
 * (the bulk table's window, scan/signals/bulk.h) */
#define SG_SHARED_BULK_TTL_MS 3600000

extern const char sg_shared_script[];

#endif
