/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * metrics_listener.h - the metrics listener (metrics_listen): answers GET /metrics
 * with the exposition lib/metrics.c writes from the pinned maps, on the
 * main thread's event loop. A scraper cannot hold the loop: every socket
 * is non-blocking, a request is read to SG_HTTP_MAX_REQUEST bytes at
 * most, a connection has SG_METRICS_DEADLINE_NS from accept to its last
 * byte, and at most SG_METRICS_CLIENTS are served at once (more are
 * closed at accept).
 */
#ifndef SMTPGUARD_METRICS_LISTENER_H
#define SMTPGUARD_METRICS_LISTENER_H

#include "loop.h"
#include "pinned.h"

#define SG_METRICS_CLIENTS 8
#define SG_METRICS_DEADLINE_NS 5000000000ull

struct sg_metrics_server;

/* Listens on listen (ADDRESS:PORT, as metrics_listen checked it); NULL
 * (said) when it cannot. maps must outlive the server. */
struct sg_metrics_server *sg_metrics_serve(struct sg_loop *loop, const char *listen,
					   const struct sg_maps *maps);
void sg_metrics_stop(struct sg_metrics_server *srv);

#endif
