/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* pstats.c - the proxy's counters, counted in place (see pstats.h). */
#include <sys/mman.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "pstats.h"

static struct sg_proxy_stats *counters;
static size_t mapped;

int sg_pstats_attach(int map_fd)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (sizeof(struct sg_proxy_stats) + (size_t)page - 1) & ~((size_t)page - 1);
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);

	if (mem == MAP_FAILED)
		return -1;
	mapped = len;
	__atomic_store_n(&counters, mem, __ATOMIC_RELEASE);
	return 0;
}

void sg_pstats_detach(void)
{
	struct sg_proxy_stats *mem = __atomic_exchange_n(&counters, NULL, __ATOMIC_ACQ_REL);

	if (mem)
		munmap(mem, mapped);
}

void sg_pstat_add(enum sg_pstat stat, uint64_t n)
{
	struct sg_proxy_stats *c = __atomic_load_n(&counters, __ATOMIC_ACQUIRE);

	if (c && (unsigned)stat < SG_PSTAT__COUNT)
		__atomic_add_fetch(&c->count[stat], n, __ATOMIC_RELAXED);
}

int sg_pstats_read(int map_fd, struct sg_proxy_stats *out)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(map_fd, &zero, out) ? -1 : 0;
}
