/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* bulk_share.c - the proxy's side of bulk bodies shared between hosts
 * (see bulk_share.h). */
#include <stdint.h>
#include <string.h>
#include <bpf/bpf.h>
#include <smtpguard/maps.h>
#include "bulk_share.h"

uint32_t sg_proxy_bulk_share(void *ctx, const struct sg_bulk_view *v, uint64_t now)
{
	int fd = (int)(intptr_t)ctx;
	struct sg_bulk_shared e;
	__u64 key = v->digest;
	int found;

	if (fd < 0 || !key)
		return 0;
	found = !bpf_map_lookup_elem(fd, &key, &e);
	if (!found) {
		if (!sg_bulk_view_shareable(v))
			return 0;
		memset(&e, 0, sizeof(e));
	}
	/* written only when a count changed: the daemon sends what changed */
	if (!found || e.local_spreading != v->spreading_senders ||
	    e.local_senders != v->senders) {
		e.local_spreading = v->spreading_senders;
		e.local_senders = v->senders;
		e.last_seen_ns = now;
		bpf_map_update_elem(fd, &key, &e, BPF_ANY);
	}
	return e.shared_spreading;
}
