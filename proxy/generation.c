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
#include "pmetrics.h"
#include "worker.h"

/* The behaviour_* keys as the store's thresholds; what they leave unsaid
 * is the store's default. */
static void thresholds_from(const struct sg_config *cfg, struct sg_behaviour_thresholds *t)
{
	sg_behaviour_thresholds_default(t);
	t->messages = cfg->behaviour_messages;
	t->rcpts = cfg->behaviour_rcpts;
	t->rcpt_domains = cfg->behaviour_rcpt_domains;
	t->burst = cfg->behaviour_burst;
	t->mail_from_domains = cfg->behaviour_mail_from_domains;
	t->tls_sessions = cfg->behaviour_tls_sessions;
	t->tls_mx = cfg->behaviour_tls_mx;
	t->tls_greetings = cfg->behaviour_tls_greetings;
	t->over_usual = cfg->behaviour_over_usual;
	t->unknown_pct = cfg->behaviour_unknown_pct;
	t->unknown_min_rcpts = cfg->behaviour_unknown_min_rcpts;
	t->policy_refusals = cfg->behaviour_policy_refusals;
	t->outbreak_senders = cfg->behaviour_outbreak_senders;
	t->new_sender_ns = cfg->behaviour_new_sender_ns;
	t->new_sender_pct = cfg->behaviour_new_sender_pct;
}

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
	if (cfg->ladder_allow[0]) {
		g->allow = sg_allow_load(cfg->ladder_allow, err, errlen);
		if (!g->allow) {
			generation_put(g);
			return NULL;
		}
	}
	/* the file's lines; the adapters are the daemon's (root), which
	 * writes each interface's tenant into attachments */
	if (cfg->tenants[0] || cfg->tenants_proxmox[0] || cfg->tenants_libvirt[0]) {
		g->tenants = sg_tenants_load(cfg->tenants, "", "", err, errlen);
		if (!g->tenants) {
			generation_put(g);
			return NULL;
		}
	}
	thresholds_from(cfg, &g->thresholds);
	/* the content engine reads every message, rules or none (unless
	 * content_scan = no): the behaviour signals take its fingerprint
	 * and sub-identities */
	if (cfg->content_rules[0]) {
		g->content_rules = sg_rules_load(cfg->content_rules, err, errlen);
		if (!g->content_rules) {
			generation_put(g);
			return NULL;
		}
	}
	if (g->content_rules && !cfg->content_scan) {
		snprintf(err, errlen, "content_rules = %s needs content_scan = yes (the content "
			 "engine is what reads them)", cfg->content_rules);
		generation_put(g);
		return NULL;
	}
	g->content.rules = g->content_rules;
	if (cfg->content_scan)
		sg_scanner_add(&g->scanner, &sg_content_engine, &g->content);
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
		g->milters[i].metric_slot = g->scanner.n;
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

/* The metrics name the engines by slot: "content", then "milter1"... in
 * the order milters = lists them (a bounded label, never an address). */
static void publish_engine_names(const struct sg_generation *g)
{
	char names[SG_MAX_ENGINES][SG_ENGINE_NAME_LEN];
	const char *ptrs[SG_MAX_ENGINES];
	unsigned char milters = 0;

	for (int i = 0; i < g->scanner.n; i++) {
		if (g->scanner.engines[i] == &sg_milter_engine)
			snprintf(names[i], sizeof(names[i]), "milter%u", (unsigned)++milters % 100);
		else
			snprintf(names[i], sizeof(names[i]), "%s", g->scanner.engines[i]->name);
		ptrs[i] = names[i];
	}
	sg_pmetric_engine_names(ptrs, g->scanner.n);
}

void generation_describe(const struct sg_generation *g, const char *prefix)
{
	const struct sg_config *cfg = &g->cfg;

	publish_engine_names(g);

	if (g->content_rules)
		sg_info("%sscanner: %u content rule(s) from %s", prefix,
			sg_rules_count(g->content_rules), cfg->content_rules);
	if (g->tenants) {
		char what[256];

		sg_tenants_describe(g->tenants, what, sizeof(what));
		sg_info("%stenants: %s", prefix, what);
	}
	for (int i = 0; i < cfg->milters.n; i++)
		sg_info("%sscanner: milter %s (milter_default_action = %s)", prefix,
			cfg->milters.addr[i], cfg->milter_default_action == SG_MILTER_ACCEPT ? "accept" :
			cfg->milter_default_action == SG_MILTER_REJECT ? "reject" : "tempfail");
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
	sg_rules_free(g->content_rules);
	sg_allow_free(g->allow);
	sg_tenants_free(g->tenants);
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
