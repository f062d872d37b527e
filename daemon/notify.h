/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * notify.h - what smtpguardd tells its service manager, by systemd's
 * sd_notify protocol (libsystemd): ready, reloading and ready again,
 * stopping, a status line, and the watchdog's pings. The unit
 * (dist/smtpguard.service.in) is Type=notify with NotifyAccess=main: only
 * the daemon's main process notifies.
 *
 * Without NOTIFY_SOCKET (started by hand, by the tests, by another service
 * manager) every call does nothing, and the watchdog's interval is 0.
 */
#ifndef SMTPGUARD_NOTIFY_H
#define SMTPGUARD_NOTIFY_H

#include <stdint.h>

/* READY=1, with the status line (printf-style): start-up, or a reload,
 * is done. */
void sg_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 with MONOTONIC_USEC= (which systemd 253 and later want, to
 * tell this reload from an earlier one): a reload begins; sg_notify_ready
 * ends it, whatever its outcome. */
void sg_notify_reloading(void);
/* STOPPING=1: the stop begins; it may take up to extend_ns more (the proxy
 * waiting for the MX's replies to dots already sent), so the manager's
 * stop timeout is extended by that (EXTEND_TIMEOUT_USEC=); 0: no more
 * than the manager's own timeout. */
void sg_notify_stopping(uint64_t extend_ns);
/* STATUS=: one line `systemctl status` shows. */
void sg_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How often to ping the watchdog: half the unit's WatchdogSec, or 0 when
 * the manager watches nothing (then sg_notify_watchdog is never needed). */
uint64_t sg_notify_watchdog_interval_ns(void);
/* WATCHDOG=1: the main loop still turns. */
void sg_notify_watchdog(void);

#endif
