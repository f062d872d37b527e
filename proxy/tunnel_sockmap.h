/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * tunnel_sockmap.h - the sockmap mover of passthrough tunnels (see
 * tunnel_sockmap.c): both sockets of a session go into a SOCKHASH whose
 * sk_skb verdict program redirects every segment to the other socket, so
 * the bytes never leave the kernel. Userspace watches the ends and the
 * progress.
 */
#ifndef SMTPGUARD_TUNNEL_SOCKMAP_H
#define SMTPGUARD_TUNNEL_SOCKMAP_H

#include <stdint.h>
#include "relay.h"

/* Loads the redirect program and its maps (once, at the proxy's start, when
 * tls_mover = sockmap); -1 with err. */
int sg_sockmap_init(char *err, size_t errlen);
void sg_sockmap_exit(void);

/* The session's sockets into the map; -1 (logged): the tunnel copies. */
int sg_sockmap_tunnel_add(struct session *s);
enum relay_result sg_sockmap_tunnel_run(struct session *s, int vm_ready, int mx_ready);
uint32_t sg_sockmap_tunnel_interest(const struct session *s, int side);
void sg_sockmap_tunnel_remove(struct session *s);

#endif
