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
#include "events.h"
#include "log.h"
#include "parse.h"
#include "proxy.h"
#include "tls.h"
#include "tunnel_sockmap.h"
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

struct sg_proxy *sg_proxy_start(const struct sg_config *cfg, const struct sg_maps *maps)
{
	struct sg_proxy *proxy = calloc(1, sizeof(*proxy));
	struct sg_settings settings;
	__u32 zero = 0;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (!proxy)
		return NULL;
	proxy->reserve_fd = -1;
	pthread_mutex_init(&proxy->generation_lock, NULL);
	pthread_mutex_init(&proxy->reserve_lock, NULL);
	proxy->tls_mover = cfg->tls_mover;
	if (sg_events_open(cfg->events_file)) {
		free(proxy);
		return NULL;
	}
	{
		char err[SG_ERR_LEN * 2];

		proxy->generation = generation_new(cfg, err, sizeof(err));
		if (!proxy->generation) {
			sg_err("%s", err);
			sg_events_close();
			free(proxy);
			return NULL;
		}
		if (cfg->scan_patterns[0])
			sg_info("scanner: %d pattern rule(s) from %s",
				sg_patterns_count(proxy->generation->patterns), cfg->scan_patterns);
	}
	raise_fd_limit(cfg->tls_mover);
	proxy->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	proxy->listeners_map = maps->listeners;
	proxy->maps = maps;
	proxy->feedback = sg_feedback_new(maps, cfg);
	proxy->sources = sg_sources_new();
	if (!proxy->feedback || !proxy->sources)
		goto fail;
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
	if (bpf_map_lookup_elem(maps->settings, &zero, &settings) == 0) {
		settings.n_workers = (__u8)proxy->n;
		bpf_map_update_elem(maps->settings, &zero, &settings, BPF_ANY);
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
	sg_sources_free(proxy->sources);
	if (proxy->tls_mover == SG_MOVER_SOCKMAP)
		sg_sockmap_exit();
	sg_tls_free(proxy->tls);
	generation_put(proxy->generation);
	sg_events_close();
	free(proxy);
}

int sg_proxy_reload(struct sg_proxy *proxy, const struct sg_config *cfg)
{
	char err[SG_ERR_LEN * 2];
	struct sg_generation *g = generation_new(cfg, err, sizeof(err));
	int ret = 0;

	if (g) {
		generation_publish(proxy, g);
		sg_feedback_configure(proxy->feedback, cfg);
		if (cfg->scan_patterns[0])
			sg_info("reload: scanner: %d pattern rule(s) from %s",
				sg_patterns_count(g->patterns), cfg->scan_patterns);
	} else {
		sg_err("reload: %s; new sessions keep the running proxy settings and rules", err);
		ret = -1;
	}
	if (sg_tls_reload(proxy->tls, cfg, err, sizeof(err))) {
		sg_err("reload: %s; the running TLS settings stay", err);
		ret = -1;
	}
	/* reopened, so that a rotated file is left for the new one */
	if (sg_events_open(cfg->events_file)) {
		sg_err("reload: events go on to the file opened before");
		ret = -1;
	}
	if (!ret)
		sg_info("reload: proxy settings, pattern rules, TLS certificate, key, CA, versions "
			"and ciphers reloaded for new sessions (running sessions keep theirs)");
	return ret;
}
