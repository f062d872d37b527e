/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* migrate.c - pinned maps carried over to a changed definition (see migrate.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "log.h"
#include "migrate.h"

static int same_definition(const struct bpf_map_info *old, const struct bpf_map *map)
{
	return old->type == (__u32)bpf_map__type(map) && old->key_size == bpf_map__key_size(map) &&
	       old->value_size == bpf_map__value_size(map) &&
	       old->max_entries == bpf_map__max_entries(map) &&
	       old->map_flags == bpf_map__map_flags(map);
}

int sg_migrate_prepare(struct bpf_object *obj, struct sg_migration *mig, char *err,
		       size_t errlen)
{
	struct bpf_map *map;

	memset(mig, 0, sizeof(*mig));
	bpf_object__for_each_map(map, obj) {
		const char *pin = bpf_map__pin_path(map);
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		int fd;

		if (!pin || !bpf_map__autocreate(map))
			continue;
		fd = bpf_obj_get(pin);
		if (fd < 0)
			continue;	/* none yet: libbpf makes it */
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) || same_definition(&info, map)) {
			close(fd);
			continue;
		}
		if (mig->n == SG_MIGRATE_MAX) {
			close(fd);
			snprintf(err, errlen, "more than %d maps changed definition", SG_MIGRATE_MAX);
			sg_migrate_abort(mig);
			return -1;
		}
		snprintf(mig->maps[mig->n].final, sizeof(mig->maps[0].final), "%s", pin);
		snprintf(mig->maps[mig->n].pending, sizeof(mig->maps[0].pending), "%s:pending", pin);
		/* a pending pin left by an upgrade that failed half way */
		unlink(mig->maps[mig->n].pending);
		if (bpf_map__set_pin_path(map, mig->maps[mig->n].pending)) {
			close(fd);
			snprintf(err, errlen, "pinning %s anew at %s failed", bpf_map__name(map),
				 mig->maps[mig->n].pending);
			sg_migrate_abort(mig);
			return -1;
		}
		mig->maps[mig->n].map = map;
		mig->maps[mig->n].old_fd = fd;
		mig->n++;
		sg_info("map %s: its definition changed (type %u, key %u, value %u, %u entries -> "
			"type %u, key %u, value %u, %u entries): made anew at %s, its entries "
			"to be carried over", bpf_map__name(map), info.type, info.key_size,
			info.value_size, info.max_entries, (unsigned)bpf_map__type(map),
			bpf_map__key_size(map), bpf_map__value_size(map), bpf_map__max_entries(map),
			mig->maps[mig->n - 1].pending);
	}
	return 0;
}

static int per_cpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* Entries from old_fd into new_fd, each value (and key) copied as far as
 * both sizes go, the rest zero; how many were carried (and *dropped how
 * many were not). */
static long carry(int old_fd, const struct bpf_map_info *old, int new_fd,
		  const struct bpf_map *map, long *dropped)
{
	int cpus = per_cpu(old->type) ? libbpf_num_possible_cpus() : 1;
	size_t old_stride = per_cpu(old->type) ? (old->value_size + 7) / 8 * 8 : old->value_size;
	size_t new_stride = per_cpu(old->type) ? (bpf_map__value_size(map) + 7) / 8 * 8 :
						  bpf_map__value_size(map);
	size_t copy = old->value_size < bpf_map__value_size(map) ? old->value_size :
		      bpf_map__value_size(map);
	void *key = calloc(1, old->key_size), *next = calloc(1, old->key_size);
	void *new_key = calloc(1, bpf_map__key_size(map));
	char *oldv = calloc((size_t)cpus, old_stride), *newv = calloc((size_t)cpus, new_stride);
	long carried = 0;
	int first = 1;

	*dropped = 0;
	if (cpus < 1 || !key || !next || !new_key || !oldv || !newv) {
		carried = -1;
		goto out;
	}
	while (bpf_map_get_next_key(old_fd, first ? NULL : key, next) == 0) {
		first = 0;
		memcpy(key, next, old->key_size);
		if (bpf_map_lookup_elem(old_fd, key, oldv))
			continue;	/* gone meanwhile */
		memset(newv, 0, (size_t)cpus * new_stride);
		for (int c = 0; c < cpus; c++)
			memcpy(newv + (size_t)c * new_stride, oldv + (size_t)c * old_stride, copy);
		memcpy(new_key, key, old->key_size);
		if (bpf_map_update_elem(new_fd, new_key, newv, BPF_ANY))
			(*dropped)++;
		else
			carried++;
	}
out:
	free(key);
	free(next);
	free(new_key);
	free(oldv);
	free(newv);
	return carried;
}

int sg_migrate_finish(struct sg_migration *mig, char *err, size_t errlen)
{
	for (int i = 0; i < mig->n; i++) {
		struct bpf_map *map = mig->maps[i].map;
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		long carried = 0, dropped = 0;
		const char *why = NULL;

		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(mig->maps[i].old_fd, &info, &len))
			why = "its old definition could not be read";
		else if (info.type == BPF_MAP_TYPE_SOCKMAP || info.type == BPF_MAP_TYPE_SOCKHASH)
			why = "it holds sockets, which their owners register again";
		else if (info.type != (__u32)bpf_map__type(map))
			why = "its type changed";
		else if (info.key_size > bpf_map__key_size(map))
			why = "its key shrank";
		if (!why) {
			carried = carry(mig->maps[i].old_fd, &info, bpf_map__fd(map), map, &dropped);
			if (carried < 0) {
				snprintf(err, errlen, "map %s: out of memory carrying its entries over",
					 bpf_map__name(map));
				return -1;
			}
		}
		if (rename(mig->maps[i].pending, mig->maps[i].final)) {
			snprintf(err, errlen, "renaming %s over %s failed: %s", mig->maps[i].pending,
				 mig->maps[i].final, strerror(errno));
			return -1;
		}
		bpf_map__set_pin_path(map, mig->maps[i].final);
		close(mig->maps[i].old_fd);
		mig->maps[i].old_fd = -1;
		if (why)
			sg_warn("map %s: made anew, its entries not carried over: %s",
				bpf_map__name(map), why);
		else
			sg_info("map %s: made anew, %ld entries carried over%s", bpf_map__name(map),
				carried, dropped ? " (some did not fit)" : "");
		if (dropped)
			sg_warn("map %s: %ld entries did not fit the new definition", bpf_map__name(map),
				dropped);
	}
	mig->n = 0;
	return 0;
}

void sg_migrate_abort(struct sg_migration *mig)
{
	for (int i = 0; i < mig->n; i++) {
		unlink(mig->maps[i].pending);
		if (mig->maps[i].old_fd >= 0)
			close(mig->maps[i].old_fd);
		if (mig->maps[i].map)
			bpf_map__set_pin_path(mig->maps[i].map, mig->maps[i].final);
	}
	mig->n = 0;
}
