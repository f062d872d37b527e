/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* notify.c - the service manager's notifications (see notify.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include "log.h"
#include "notify.h"
#include "parse.h"

/* a status line, and the fields that go with it */
#define SG_NOTIFY_LEN 512

/* One datagram; a failure to send is logged once (a full socket or a
 * manager gone), never fatal: the daemon's job goes on without it. */
static void notify(const char *text)
{
	static int warned;
	int ret = sd_notify(0, text);

	if (ret < 0 && !warned) {
		warned = 1;
		sg_warn("telling the service manager '%.*s' failed: %s (NOTIFY_SOCKET is set, "
			"but its socket does not take it)", (int)strcspn(text, "\n"), text,
			strerror(-ret));
	}
}

static void notify_with_status(const char *fields, const char *fmt, va_list ap)
{
	char status[SG_NOTIFY_LEN - 64], text[SG_NOTIFY_LEN];

	vsnprintf(status, sizeof(status), fmt, ap);
	/* one line: STATUS= ends at the newline */
	status[strcspn(status, "\n")] = '\0';
	snprintf(text, sizeof(text), "%sSTATUS=%s", fields, status);
	notify(text);
}

void sg_notify_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_with_status("READY=1\n", fmt, ap);
	va_end(ap);
}

void sg_notify_reloading(void)
{
	char text[SG_NOTIFY_LEN];

	snprintf(text, sizeof(text), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading "
		 "the configuration", (unsigned long long)(sg_now_ns() / 1000));
	notify(text);
}

void sg_notify_stopping(uint64_t extend_ns)
{
	char text[SG_NOTIFY_LEN];

	if (extend_ns)
		snprintf(text, sizeof(text), "STOPPING=1\nEXTEND_TIMEOUT_USEC=%llu\nSTATUS=stopping",
			 (unsigned long long)(extend_ns / 1000));
	else
		snprintf(text, sizeof(text), "STOPPING=1\nSTATUS=stopping");
	notify(text);
}

void sg_notify_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_with_status("", fmt, ap);
	va_end(ap);
}

uint64_t sg_notify_watchdog_interval_ns(void)
{
	uint64_t usec = 0;

	/* > 0: WATCHDOG_USEC is set, and WATCHDOG_PID (if set) is ours */
	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return 0;
	return usec * 1000 / 2;
}

void sg_notify_watchdog(void)
{
	notify("WATCHDOG=1");
}
