/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * migrate.h - pinned maps whose definition changed between two versions
 * of smtpguard (another value size, key size, type or capacity), carried
 * over instead of refused, as Cilium does it: before the load, each such
 * map is pinned anew at "NAME:pending" (libbpf creates it there, and the
 * programs use it); after the load, the old map's entries are copied into
 * it and "NAME:pending" is renamed over "NAME", atomically. Until then the
 * old map stays pinned and the running programs keep using it; a failure
 * removes the pending pins and changes nothing.
 *
 * What carries over by itself: an entry whose key is as before or grew at
 * its end (the new part zero: sg_src_key's ifindex, 0 for a sender not
 * keyed by a bridge port), its value copied as far as both sizes go, the
 * rest zero (values only ever grow at their end: include/smtpguard/maps.h
 * says so). Entries of a map whose key shrank or whose type changed, or of
 * a socket map, are not carried over; the log says how many.
 */
#ifndef SMTPGUARD_MIGRATE_H
#define SMTPGUARD_MIGRATE_H

#include <stddef.h>

struct bpf_object;

#define SG_MIGRATE_MAX 16

struct sg_migration {
	int n;
	struct {
		struct bpf_map *map;
		int old_fd;
		char final[512], pending[520];
	} maps[SG_MIGRATE_MAX];
};

/* Before bpf_object__load: the object's pinned maps whose pin differs from
 * their definition get a pending pin path. -1 with err. */
int sg_migrate_prepare(struct bpf_object *obj, struct sg_migration *mig, char *err,
		       size_t errlen);
/* After a successful load: entries carried over, pending pins renamed over
 * the old ones (each logged). -1 with err: what was renamed stays so. */
int sg_migrate_finish(struct sg_migration *mig, char *err, size_t errlen);
/* After a failed load: the pending pins removed, the old ones untouched. */
void sg_migrate_abort(struct sg_migration *mig);

#endif
