/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* proxy.c - the proxy as a whole (see proxy.h and worker.h): its engines,
 * TLS contexts, feedback and workers, started, reloaded and stopped. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "bulk_share.h"
#include "events.h"
#include "ladder.h"
#include "log.h"
#include "parse.h"
#include "proxy.h"
#include "pmetrics.h"
#include "pstats.h"
#include "tls.h"
#include "tunnel_sockmap.h"
#include "webhook.h"
#include "worker.h"

/* Two descriptors a session, six for a tunnel that splices (a pipe each
 * way): the soft limit a service manager leaves (often 1024) would cap the
 * proxy at a few hundred sessions. */
static void raise_fd_limit(int tls_mover)
{
	int per_session = tls_mover == SG_MOVER_SPLICE ? 6 : 2;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			sg_warn("raising the descriptor limit to %llu failed: %s",
				(unsigned long long)rl.rlim_max, strerror(errno));
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	sg_info("proxy: up to about %llu concurrent sessions (RLIMIT_NOFILE %llu; 2 descriptors "
		"a session, %d for one whose TLS passes through by %s)",
		(unsigned long long)(rl.rlim_cur > 128 ? (rl.rlim_cur - 64) / per_session : 0),
		(unsigned long long)rl.rlim_cur, per_session, sg_tls_mover_name(tls_mover));
}

static void post_step(void *ctx, const char *json, size_t len)
{
	sg_webhooks_post(ctx, json, len);
}

/* The webhooks the ladder's steps are posted to (webhook_urls); 0 with
 * none, -1 (logged) when a URL is wrong. */
static int webhooks_start(struct sg_proxy *proxy, const struct sg_config *cfg)
{
	struct sg_webhook_limits limits = {
		.queue_events = cfg->webhook_queue_events,
		.timeout_ns = cfg->webhook_timeout_ns,
		.max_attempts = cfg->webhook_max_attempts,
		.max_age_ns = cfg->webhook_max_age_ns,
		.tls_ca_file = cfg->webhook_tls_ca_file,
	};
	char list[sizeof(cfg->webhook_urls)], err[SG_ERR_LEN * 2], *save = NULL;
	const char *urls[SG_WEBHOOK_MAX_URLS + 1];
	int n = 0;

	snprintf(list, sizeof(list), "%s", cfg->webhook_urls);
	for (char *u = strtok_r(list, " \t,", &save); u; u = strtok_r(NULL, " \t,", &save)) {
		if (n == SG_WEBHOOK_MAX_URLS + 1)
			break;
		urls[n++] = u;
	}
	if (!n)
		return 0;
	proxy->webhooks = sg_webhooks_new(urls, n, &limits, err, sizeof(err));
	if (!proxy->webhooks) {
		sg_err("%s", err);
		return -1;
	}
	sg_ladder_on_step(proxy->feedback, post_step, proxy->webhooks);
	sg_info("webhooks: the ladder's steps are posted to %d URL(s)", n);
	return 0;
}

struct sg_proxy *sg_proxy_start(const struct sg_config *cfg, const struct sg_maps *maps,
				int events_fd)
{
	struct sg_proxy *proxy = calloc(1, sizeof(*proxy));
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (!proxy)
		return NULL;
	proxy->reserve_fd = -1;
	pthread_mutex_init(&proxy->generation_lock, NULL);
	pthread_mutex_init(&proxy->reserve_lock, NULL);
	proxy->tls_mover = cfg->tls_mover;
	/* before the engines are built: they publish their names there */
	if (sg_pmetrics_attach(maps->proxy_metrics))
		sg_warn("the proxy's gauges (map %s) could not be mapped: %s; the metrics "
			"show the counters alone", SG_MAP_PROXY_METRICS, strerror(errno));
	if (sg_events_use(events_fd)) {
		sg_pmetrics_detach();
		free(proxy);
		return NULL;
	}
	{
		char err[SG_ERR_LEN * 2];

		proxy->generation = generation_new(cfg, err, sizeof(err));
		if (!proxy->generation) {
			sg_err("%s", err);
			sg_events_close();
			sg_pmetrics_detach();
			free(proxy);
			return NULL;
		}
		generation_describe(proxy->generation, "");
	}
	raise_fd_limit(cfg->tls_mover);
	proxy->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	proxy->listeners_map = maps->listeners;
	proxy->maps = maps;
	proxy->feedback = sg_feedback_new(maps, cfg);
	if (sg_pstats_attach(maps->proxy_stats))
		sg_warn("the proxy's counters (map %s) could not be mapped: %s; smtpguardctl stats "
			"shows the kernel's alone", SG_MAP_PROXY_STATS, strerror(errno));
	if (webhooks_start(proxy, cfg))
		goto fail;
	{
		struct sg_behaviour_limits limits;

		sg_behaviour_limits_default(&limits);
		limits.capacity = cfg->behaviour_senders;
		proxy->behaviour = sg_behaviour_new(&limits);
		if (!proxy->behaviour)
			sg_warn("the behaviour signals' store (%u senders) could not be made: "
				"no sender is judged by its behaviour", cfg->behaviour_senders);
		else if (maps->bulk_shared >= 0)
			sg_behaviour_share_bulk(proxy->behaviour, sg_proxy_bulk_share,
						(void *)(intptr_t)maps->bulk_shared);
	}
	proxy->sources = sg_sources_new();
	proxy->tenancy = sg_tenancy_new();
	if (!proxy->feedback || !proxy->sources || !proxy->tenancy)
		goto fail;
	sg_feedback_set_tenancy(proxy->feedback, proxy->tenancy);
	{
		char err[SG_ERR_LEN * 2];

		proxy->tls = sg_tls_new(cfg, err, sizeof(err));
		if (!proxy->tls) {
			sg_err("%s", err);
			goto fail;
		}
		if (cfg->tls_mover == SG_MOVER_SOCKMAP && sg_sockmap_init(err, sizeof(err))) {
			sg_err("tls_mover = sockmap: %s", err);
			goto fail;
		}
		sg_info("proxy: TLS %s; passthrough tunnels move by %s",
			sg_tls_can_terminate(proxy->tls) ? "terminate possible (provider "
			"certificate loaded)" : "terminate not possible (no tls_cert_file)",
			sg_tls_mover_name(cfg->tls_mover));
	}
	proxy->n = cfg->proxy_workers ? cfg->proxy_workers :
		   (int)(cores > 0 ? (cores > SG_MAX_WORKERS ? SG_MAX_WORKERS : cores) : 1);
	proxy->workers = calloc((size_t)proxy->n, sizeof(*proxy->workers));
	if (!proxy->workers)
		goto fail;
	for (int i = 0; i < proxy->n; i++) {
		proxy->workers[i].stop_fd = -1;
		proxy->workers[i].listen_fd[0] = proxy->workers[i].listen_fd[1] = -1;
	}
	for (int i = 0; i < proxy->n; i++) {
		struct worker *w = &proxy->workers[i];

		if (worker_init(proxy, w, i))
			goto fail;
		if (pthread_create(&w->thread, NULL, worker_main, w)) {
			sg_err("worker %d: starting its thread failed", i);
			goto fail;
		}
		w->started = 1;
	}
	sg_info("proxy: %d worker(s) listening; scan flows are steered to them", proxy->n);
	return proxy;
fail:
	sg_proxy_stop(proxy);
	return NULL;
}

void sg_proxy_stop(struct sg_proxy *proxy)
{
	if (!proxy)
		return;
	for (int i = 0; proxy->workers && i < proxy->n; i++)
		worker_close(&proxy->workers[i]);
	free(proxy->workers);
	if (proxy->reserve_fd >= 0)
		close(proxy->reserve_fd);
	sg_feedback_free(proxy->feedback);
	sg_tenancy_free(proxy->tenancy);
	/* the workers are gone: nothing posts any more; what waits gets a
	 * moment to go */
	sg_webhooks_free(proxy->webhooks, 2000000000ULL);
	sg_pstats_detach();
	sg_pmetrics_detach();
	sg_behaviour_free(proxy->behaviour);
	sg_sources_free(proxy->sources);
	if (proxy->tls_mover == SG_MOVER_SOCKMAP)
		sg_sockmap_exit();
	sg_tls_free(proxy->tls);
	generation_put(proxy->generation);
	sg_events_close();
	free(proxy);
}

int sg_proxy_workers(const struct sg_proxy *proxy)
{
	return proxy->n;
}

void sg_proxy_drain(struct sg_proxy *proxy, uint64_t timeout_ns)
{
	uint64_t deadline = sg_now_ns() + timeout_ns, one = 1;

	for (int i = 0; i < proxy->n; i++) {
		struct worker *w = &proxy->workers[i];

		if (!w->started)
			continue;
		w->drain_deadline_ns = deadline;
		__atomic_store_n(&w->drain_requested, 1, __ATOMIC_RELEASE);
		if (write(w->stop_fd, &one, sizeof(one)) < 0)
			sg_warn("worker %d: drain signal failed: %s", i, strerror(errno));
	}
	for (int i = 0; i < proxy->n; i++) {
		struct worker *w = &proxy->workers[i];

		if (!w->started)
			continue;
		pthread_join(w->thread, NULL);
		w->started = 0;
	}
}

int sg_proxy_reload(struct sg_proxy *proxy, const struct sg_config *cfg, int events_fd)
{
	char err[SG_ERR_LEN * 2];
	struct sg_generation *g = generation_new(cfg, err, sizeof(err));
	int ret = 0;

	if (g) {
		generation_publish(proxy, g);
		sg_feedback_configure(proxy->feedback, cfg);
		generation_describe(g, "reload: ");
	} else {
		sg_err("reload: %s; new sessions keep the running proxy settings and rules", err);
		ret = -1;
	}
	if (sg_tls_reload(proxy->tls, cfg, err, sizeof(err))) {
		sg_err("reload: %s; the running TLS settings stay", err);
		ret = -1;
	}
	/* reopened by the daemon, so that a rotated file is left for the new one */
	if (events_fd == SG_EVENTS_KEEP) {
		sg_err("reload: events go on to the file opened before");
		ret = -1;
	} else if (sg_events_use(events_fd)) {
		ret = -1;
	}
	if (!ret)
		sg_info("reload: proxy settings, pattern rules, TLS certificate, key, CA, versions "
			"and ciphers reloaded for new sessions (running sessions keep theirs)");
	return ret;
}
