/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * generation.c - what a session runs with, from its accept to its end:
 * the configuration, the scanning engines with their rules, the delivery
 * addresses. A reload (SIGHUP) makes a new generation for the sessions
 * that come after it; running sessions keep theirs, counted, and the last
 * one out frees it. So the proxy's keys reload without dropping a session.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include "log.h"
#include "worker.h"

struct sg_generation *generation_new(const struct sg_config *cfg, char *err, size_t errlen)
{
	struct sg_generation *g = calloc(1, sizeof(*g));

	if (!g) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->refs = 1;
	g->cfg = *cfg;
	g->scanner.failure_action = cfg->scan_timeout_action == SG_SCAN_ACCEPT ? SG_ACCEPT :
				    SG_TEMPFAIL;
	if (cfg->scan_patterns[0]) {
		g->patterns = sg_patterns_load(cfg->scan_patterns, err, errlen);
		if (!g->patterns) {
			free(g);
			return NULL;
		}
		sg_scanner_add(&g->scanner, &sg_pattern_engine, g->patterns);
	}
	for (int i = 0; i < cfg->milters.n; i++) {
		static const enum sg_verdict_kind actions[] = {
			[SG_MILTER_TEMPFAIL] = SG_TEMPFAIL, [SG_MILTER_ACCEPT] = SG_ACCEPT,
			[SG_MILTER_REJECT] = SG_REJECT,
		};
		const char *spec = cfg->milters.addr[i];

		if (sg_milter_config_init(&g->milters[i], spec, cfg->milter_connect_timeout_ns,
					  cfg->milter_command_timeout_ns,
					  cfg->milter_content_timeout_ns,
					  actions[cfg->milter_default_action],
					  sg_milter_stats_for(spec), err, errlen)) {
			generation_put(g);
			return NULL;
		}
		sg_scanner_add(&g->scanner, &sg_milter_engine, &g->milters[i]);
	}
	/* the addresses were checked by the config */
	if (cfg->relay_ip4[0]) {
		struct sockaddr_in *a = (struct sockaddr_in *)&g->relay_addr[0];

		a->sin_family = AF_INET;
		inet_pton(AF_INET, cfg->relay_ip4, &a->sin_addr);
	}
	if (cfg->relay_ip6[0]) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&g->relay_addr[1];

		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, cfg->relay_ip6, &a->sin6_addr);
	}
	return g;
}

struct sg_generation *generation_get(struct sg_proxy *proxy)
{
	struct sg_generation *g;

	pthread_mutex_lock(&proxy->generation_lock);
	g = proxy->generation;
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&proxy->generation_lock);
	return g;
}

void generation_put(struct sg_generation *g)
{
	if (!g || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL))
		return;
	sg_patterns_free(g->patterns);
	free(g);
}

void generation_publish(struct sg_proxy *proxy, struct sg_generation *g)
{
	struct sg_generation *old;

	pthread_mutex_lock(&proxy->generation_lock);
	old = proxy->generation;
	proxy->generation = g;
	pthread_mutex_unlock(&proxy->generation_lock);
	generation_put(old);
}
