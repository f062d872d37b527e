/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * milter.h - the milter client engine: a message judged by a milter
 * (rspamd's proxy worker in milter mode, clamav-milter, any libmilter
 * filter) over the Sendmail milter protocol, version 6, as Postfix's
 * milter8 speaks it (scan/milter_proto.h is the codec).
 *
 * One engine per milter (milters = ..., in order). Each session keeps one
 * connection to each milter, opened at its first message and reused for
 * the next ones, non-blocking in the session's event loop. A message goes
 * as Postfix sends it: connect and helo once, then mail, each recipient
 * the MX accepted, data, each header, end of headers, the body in chunks
 * while it streams to the MX, and the end of the message once the dot has
 * come (the dot stays withheld until the milter's final reply). The
 * milter's reply is honoured: continue, accept, reject, tempfail, discard
 * (a reject: the VM must know), its reply code (passed to the VM), skip,
 * progress (the timer starts again); quarantine and the header, body and
 * envelope changes are recorded in the message's notes, never applied
 * (the message already streams to the MX).
 *
 * A milter that cannot be reached, does not answer in time, closes, or
 * breaks the protocol (a bad length, an unknown reply, a reply out of
 * order) gets milter_default_action, a log line saying what it did, and a
 * count in its stats; never a stuck session: every wait is timed
 * (milter_connect_timeout, milter_command_timeout, milter_content_timeout),
 * and a milter that reads the body slower than the VM sends it holds the
 * body back (the VM's TCP window closes) for at most its timeout.
 *
 * Memory: a connection keeps its decoder's packet storage (4 KiB, 64 KiB
 * for a milter that may replace the body) and its output (a packet at a
 * time: lockstep, as libmilter expects); a message keeps at most
 * SG_MILTER_BACKLOG_MAX body bytes not yet sent, one header being
 * assembled (at most SG_MILTER_HEADER_MAX), and its recipients.
 */
#ifndef SMTPGUARD_MILTER_H
#define SMTPGUARD_MILTER_H

#include <stdint.h>
#include <sys/socket.h>
#include "scanner.h"

#define SG_MILTER_HEADER_MAX	102400	/* Postfix's header_size_limit */
#define SG_MILTER_BACKLOG_HOLD	(128 * 1024)	/* the body is held back past this */
#define SG_MILTER_BACKLOG_MAX	(512 * 1024)

/* What went wrong with a milter, counted (atomically: every worker's
 * sessions count into one). */
enum sg_milter_fault {
	SG_MILTER_FAULT_CONNECT = 0,	/* could not connect, or the connect timed out */
	SG_MILTER_FAULT_TIMEOUT,	/* no reply in time */
	SG_MILTER_FAULT_CLOSED,		/* it closed or reset the connection */
	SG_MILTER_FAULT_PROTOCOL,	/* a bad length, an unknown reply, one out of order */
	SG_MILTER_FAULT_NEGOTIATION,	/* its option negotiation was refused */
	SG_MILTER_FAULT__COUNT
};

struct sg_milter_stats {
	uint64_t faults[SG_MILTER_FAULT__COUNT];
	uint64_t connections;
	uint64_t messages;
	uint64_t accepted, rejected, tempfailed, discarded, quarantined;
};

/* One milter, as configured; built once per configuration generation and
 * shared read-only by every worker (the stats are updated atomically). */
struct sg_milter_config {
	char spec[112];			/* "inet:127.0.0.1:11332", for the logs */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t connect_timeout_ns, command_timeout_ns, content_timeout_ns;
	enum sg_verdict_kind default_action;
	char hostname[256];		/* the macros j and {daemon_name} */
	struct sg_milter_stats *stats;	/* the proxy's, lasting across reloads */
	int metric_slot;		/* its engine slot, for the metrics' health; -1: none */
};

extern const struct sg_engine sg_milter_engine;

/* Fills cfg for the milter spec ("inet:..." or "unix:..."); -1 with err. */
int sg_milter_config_init(struct sg_milter_config *cfg, const char *spec,
			  uint64_t connect_timeout_ns, uint64_t command_timeout_ns,
			  uint64_t content_timeout_ns, enum sg_verdict_kind default_action,
			  struct sg_milter_stats *stats, char *err, size_t errlen);

const char *sg_milter_fault_name(enum sg_milter_fault fault);

/* The counters of the milter spec, kept for the process (a reload that
 * keeps the milter keeps counting into them); a shared overflow entry
 * past SG_MILTER_STATS_MAX specs. */
#define SG_MILTER_STATS_MAX 16
struct sg_milter_stats *sg_milter_stats_for(const char *spec);
/* Each milter's spec and counters, for a report. */
void sg_milter_stats_each(void (*fn)(const char *spec, const struct sg_milter_stats *stats,
				     void *ctx), void *ctx);

#endif
