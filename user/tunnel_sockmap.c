/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* tunnel_sockmap.c - the sockmap mover (see tunnel_sockmap.h). */
#include <errno.h>
#include "log.h"
#include "tunnel_sockmap.h"

int sg_sockmap_init(char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return 0;
}

void sg_sockmap_exit(void)
{
}

int sg_sockmap_tunnel_add(struct session *s)
{
	sg_warn("session %s -> %s: the sockmap mover is not built yet; this tunnel copies",
		s->vm_name, s->mx_name);
	return -1;
}

enum relay_result sg_sockmap_tunnel_run(struct session *s, int vm_ready, int mx_ready)
{
	(void)s;
	(void)vm_ready;
	(void)mx_ready;
	return RELAY_END;
}

uint32_t sg_sockmap_tunnel_interest(const struct session *s, int side)
{
	(void)s;
	(void)side;
	return 0;
}

void sg_sockmap_tunnel_remove(struct session *s)
{
	(void)s;
}
