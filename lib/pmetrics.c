/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* pmetrics.c - the proxy's gauges and histograms, changed in place (see
 * pmetrics.h). */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "pmetrics.h"

static struct sg_proxy_metrics *metrics;
static size_t mapped;
static const uint64_t bounds_us[SG_LATENCY_BUCKETS - 1] = SG_LATENCY_BOUNDS_US;

int sg_pmetrics_attach(int map_fd)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (sizeof(struct sg_proxy_metrics) + (size_t)page - 1) & ~((size_t)page - 1);
	struct sg_proxy_metrics *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
					    map_fd, 0);

	if (mem == MAP_FAILED)
		return -1;
	for (int i = 0; i < SG_PSESSION__COUNT; i++)
		__atomic_store_n(&mem->sessions[i], 0, __ATOMIC_RELAXED);
	for (int i = 0; i < SG_METRIC_ENGINES; i++)
		__atomic_store_n(&mem->engine_health[i], SG_HEALTH_UNKNOWN, __ATOMIC_RELAXED);
	__atomic_store_n(&mem->webhook_health, SG_HEALTH_UNKNOWN, __ATOMIC_RELAXED);
	__atomic_store_n(&mem->webhook_queued, 0, __ATOMIC_RELAXED);
	mapped = len;
	__atomic_store_n(&metrics, mem, __ATOMIC_RELEASE);
	return 0;
}

void sg_pmetrics_detach(void)
{
	struct sg_proxy_metrics *mem = __atomic_exchange_n(&metrics, NULL, __ATOMIC_ACQ_REL);

	if (mem)
		munmap(mem, mapped);
}

static struct sg_proxy_metrics *attached(void)
{
	return __atomic_load_n(&metrics, __ATOMIC_ACQUIRE);
}

static void add(__u64 *slot, uint64_t n)
{
	__atomic_add_fetch(slot, n, __ATOMIC_RELAXED);
}

void sg_pmetric_session(enum sg_psession from, enum sg_psession to)
{
	struct sg_proxy_metrics *m = attached();

	if (!m || from == to)
		return;
	/* a gauge goes down by adding its two's complement */
	if ((unsigned)from < SG_PSESSION__COUNT)
		add(&m->sessions[from], (uint64_t)-1);
	if ((unsigned)to < SG_PSESSION__COUNT)
		add(&m->sessions[to], 1);
}

void sg_pmetric_verdict(enum sg_pverdict verdict, enum sg_preason reason)
{
	struct sg_proxy_metrics *m = attached();

	if (m && (unsigned)verdict < SG_PVERDICT__COUNT && (unsigned)reason < SG_PREASON__COUNT)
		add(&m->verdicts[verdict][reason], 1);
}

int sg_latency_bucket(uint64_t latency_us)
{
	int i = 0;

	while (i < SG_LATENCY_BUCKETS - 1 && latency_us > bounds_us[i])
		i++;
	return i;
}

void sg_pmetric_engine_latency(int slot, uint64_t latency_ns)
{
	struct sg_proxy_metrics *m = attached();
	uint64_t us = latency_ns / 1000;

	if (!m || slot < 0 || slot >= SG_METRIC_ENGINES)
		return;
	add(&m->engine_latency[slot].bucket[sg_latency_bucket(us)], 1);
	add(&m->engine_latency[slot].sum_us, us);
}

void sg_pmetric_engine_health(int slot, enum sg_health health)
{
	struct sg_proxy_metrics *m = attached();

	if (m && slot >= 0 && slot < SG_METRIC_ENGINES)
		__atomic_store_n(&m->engine_health[slot], (uint64_t)health, __ATOMIC_RELAXED);
}

void sg_pmetric_engine_names(const char *const *names, int n)
{
	struct sg_proxy_metrics *m = attached();

	if (!m)
		return;
	/* the names change only when the engines are built again (a
	 * reload); a reader racing it sees a name cut short at worst */
	for (int i = 0; i < SG_METRIC_ENGINES; i++) {
		char name[SG_ENGINE_NAME_LEN] = "";

		if (i < n && names[i])
			strncpy(name, names[i], sizeof(name) - 1);
		memcpy(m->engine_name[i], name, sizeof(name));
	}
}

void sg_pmetric_webhook(enum sg_health health)
{
	struct sg_proxy_metrics *m = attached();

	if (m)
		__atomic_store_n(&m->webhook_health, (uint64_t)health, __ATOMIC_RELAXED);
}

void sg_pmetric_webhook_queued(int64_t delta)
{
	struct sg_proxy_metrics *m = attached();

	if (m)
		add(&m->webhook_queued, (uint64_t)delta);
}

int sg_pmetrics_read(int map_fd, struct sg_proxy_metrics *out)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(map_fd, &zero, out) ? -1 : 0;
}
