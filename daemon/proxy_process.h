/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * proxy_process.h - the proxy in a process of its own. The daemon forks it
 * once the maps are loaded; it keeps the maps' descriptors and the events
 * file the daemon opened for it, drops to proxy_user with only
 * CAP_NET_ADMIN and CAP_NET_RAW (IP_TRANSPARENT, SO_MARK), and only then
 * starts the workers that read what tenants send. The daemon hands it each
 * reload's configuration over a socket pair, waits for its answer, and
 * starts a new one when it dies (the classifier's fail_mode covers the
 * gap: no listener registered).
 */
#ifndef SMTPGUARD_PROXY_PROCESS_H
#define SMTPGUARD_PROXY_PROCESS_H

#include <sys/types.h>
#include "config.h"
#include "loop.h"
#include "pinned.h"
#include "privileges.h"

struct sg_proxy_process;

/* Forks the proxy and waits until its listeners are registered; NULL
 * (logged) when it could not start. cfg is the daemon's running
 * configuration, read again at each restart of the proxy. */
struct sg_proxy_process *sg_proxy_process_start(struct sg_loop *loop, const struct sg_config *cfg,
						const struct sg_maps *maps,
						const struct sg_identity *id);
/* A reload: cfg (live keys applied) to the proxy, the events file
 * reopened; waits for the proxy's answer. -1 when it reported an error
 * (logged by it) or is not running. */
int sg_proxy_process_reload(struct sg_proxy_process *pp, const struct sg_config *cfg);
/* SIGTERM to the proxy, which finishes what it owes (shutdown_timeout),
 * then waits for it. */
void sg_proxy_process_stop(struct sg_proxy_process *pp);
/* An upgrade in place: before the daemon executes itself anew, the
 * proxy's end of the pair is kept over the exec and described in env ("" when
 * there is no proxy); hand_back undoes it when the exec failed. */
int sg_proxy_process_hand_over(struct sg_proxy_process *pp, char *env, size_t envlen);
void sg_proxy_process_hand_back(struct sg_proxy_process *pp);
/* After the exec, once the new proxy took the listeners' slots: the one
 * described by handed_over is told to drain, and reaped when it ends. */
void sg_proxy_process_retire(struct sg_loop *loop, const char *handed_over);
/* The running proxy's pid, or 0 between a death and its restart. */
pid_t sg_proxy_process_pid(const struct sg_proxy_process *pp);

#endif
