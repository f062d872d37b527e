/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * proxy.h - the transparent proxy's workers. Each worker owns an IPv4 and
 * an IPv6 transparent listener, registered in the listeners SOCKMAP where
 * the TC classifier finds them, and relays every session it accepts to the
 * original destination from the VM's own address (IP_TRANSPARENT), event
 * driven (epoll, non-blocking sockets), with bounded buffers. The SMTP
 * dialogue is relay.c's, TLS tls.c's and tunnel.c's.
 */
#ifndef SMTPGUARD_PROXY_H
#define SMTPGUARD_PROXY_H

#include <stdint.h>
#include "config.h"
#include "pinned.h"

struct sg_proxy;

/* sg_proxy_reload's events_fd when the daemon could not reopen the file */
#define SG_EVENTS_KEEP (-2)

/* Starts the workers and registers their listeners, events going to
 * events_fd (taken over; -1: none); NULL on error (logged). */
struct sg_proxy *sg_proxy_start(const struct sg_config *cfg, const struct sg_maps *maps,
				int events_fd);
/* How many workers it runs: the classifier spreads SYNs over their
 * listeners (settings.n_workers, the daemon's to write). */
int sg_proxy_workers(const struct sg_proxy *proxy);
/* Another proxy took the listeners' slots: the listeners close after a
 * grace (a handshake under way completes here), the sessions run on until
 * they end or timeout_ns; returns when every worker is done. */
void sg_proxy_drain(struct sg_proxy *proxy, uint64_t timeout_ns);
/* Unregisters the listeners, ends every session, joins the workers. */
void sg_proxy_stop(struct sg_proxy *proxy);
/* SIGHUP: the proxy's part of the running configuration, cfg (its live
 * keys already applied by the caller): new sessions take it, with the TLS
 * contexts and the pattern rules made anew from it, events going to
 * events_fd (taken over; -1: none; SG_EVENTS_KEEP: the file opened
 * before); running sessions keep what they began with, so none is
 * dropped. -1 (logged): what failed to load stays as it was. */
int sg_proxy_reload(struct sg_proxy *proxy, const struct sg_config *cfg, int events_fd);

#endif
