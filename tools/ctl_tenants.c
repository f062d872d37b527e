/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * ctl_tenants.c - tenants (lib/tenants.h) as smtpguardctl sees them: the
 * daemon's config file names the tenants file and the adapters; a
 * sender's interface is the one its source is bound to (src_bound), else
 * the one the classifier first saw it on (src_state), and its tenant the
 * daemon's (attachments: it reads the adapters' files as root). `tenants`
 * sums the
 * proxy's per-sender counts (src_feedback) per tenant.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "config.h"
#include "ctl.h"
#include "log.h"
#include "parse.h"

int ctl_tenants_load(const char *config, struct sg_tenants **out)
{
	struct sg_config *cfg = malloc(sizeof(*cfg));
	char err[SG_ERR_LEN * 2];
	int implicit = !config;

	*out = NULL;
	if (!cfg)
		return 1;
	if (!config && access(DEFAULT_CONFIG, F_OK) == 0)
		config = DEFAULT_CONFIG;
	sg_config_defaults(cfg);
	if (config && sg_config_load(cfg, config, err, sizeof(err))) {
		free(cfg);
		if (implicit) {
			/* not asked for: the rest of the command goes on */
			sg_warn("%s; no tenants shown (-c FILE names the daemon's config)", err);
			return 0;
		}
		sg_err("%s", err);
		return EXIT_USAGE;
	}
	if (cfg->tenants[0] || cfg->tenants_proxmox[0] || cfg->tenants_libvirt[0]) {
		/* the file's prefixes; interfaces have the daemon's answer */
		*out = sg_tenants_load(cfg->tenants, "", "", err, sizeof(err));
		if (!*out) {
			free(cfg);
			if (implicit) {
				sg_warn("tenants: %s; no tenants shown", err);
				return 0;
			}
			sg_err("tenants: %s", err);
			return EXIT_USAGE;
		}
	}
	free(cfg);
	return 0;
}

struct tenant_sum {
	char name[SG_TENANT_NAME_LEN];	/* "": senders of no tenant */
	unsigned long long senders, msgs, rcpts, rejects, tempfails, sessions;
};

/* The sum of name: found or added (at most max). */
static struct tenant_sum *sum_of(struct tenant_sum *sums, size_t *n, size_t max, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(sums[i].name, name) == 0)
			return &sums[i];
	if (*n == max)
		return NULL;
	memset(&sums[*n], 0, sizeof(sums[*n]));
	snprintf(sums[*n].name, sizeof(sums[*n].name), "%s", name);
	return &sums[(*n)++];
}

static int by_msgs(const void *a, const void *b)
{
	const struct tenant_sum *x = a, *y = b;

	if (x->msgs != y->msgs)
		return x->msgs < y->msgs ? 1 : -1;
	return strcmp(x->name, y->name);
}

int cmd_tenants(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *config = NULL;
	struct opt_spec specs[] = { { "-c", &config } };
	size_t n = 0, max = SG_MAX_TENANTS + 1;
	struct tenant_sum *sums;
	struct sg_src_key key, next;
	struct sg_tenants *t;
	int ret, have = 0;

	ret = parse_opts(argc, argv, first, specs, 1, 0, "tenants [-c FILE]");
	if (ret)
		return ret;
	ret = ctl_tenants_load(config, &t);
	if (ret)
		return ret;
	ret = open_maps(ctl);
	if (ret) {
		sg_tenants_free(t);
		return ret;
	}
	sums = calloc(max, sizeof(*sums));
	if (!sums) {
		sg_tenants_free(t);
		return 1;
	}
	/* the file's tenants, each shown even before it sends */
	for (size_t i = 0; i < sg_tenants_count(t); i++)
		sum_of(sums, &n, max, sg_tenants_name(t, i));
	while (bpf_map_get_next_key(ctl->maps.src_feedback, have ? &key : NULL, &next) == 0) {
		struct sg_src_feedback fb;
		char name[SG_TENANT_NAME_LEN];
		struct tenant_sum *s;

		key = next;
		have = 1;
		if (bpf_map_lookup_elem(ctl->maps.src_feedback, &key, &fb))
			continue;
		sg_tenant_of_key(&ctl->maps, t, &key, name, sizeof(name));
		s = sum_of(sums, &n, max, name);
		if (!s)
			continue;
		s->senders++;
		s->msgs += fb.msgs;
		s->rcpts += fb.rcpts;
		s->rejects += fb.rejects;
		s->tempfails += fb.tempfails;
		s->sessions += fb.sessions;
	}
	qsort(sums, n, sizeof(*sums), by_msgs);
	if (!ctl->json)
		printf("%-24s %8s %8s %8s %8s %9s %8s  %s\n", "TENANT", "SENDERS", "SESSIONS",
		       "MSGS", "RCPTS", "TEMPFAILS", "REJECTS", "LIMITS");
	for (size_t i = 0; i < n; i++) {
		const struct sg_tenant_limits *l = sg_tenant_limits(t, sums[i].name);
		char msgs[48] = "none", rcpts[48] = "none", limits[128];

		if (l) {
			sg_format_limit(l->msg_interval_ns, l->msg_burst, msgs, sizeof(msgs));
			sg_format_limit(l->rcpt_interval_ns, l->rcpt_burst, rcpts, sizeof(rcpts));
		}
		if (!l)
			snprintf(limits, sizeof(limits), "-");
		else if (l->exempt)
			snprintf(limits, sizeof(limits), "exempt");
		else
			snprintf(limits, sizeof(limits), "msgs %s rcpts %s", msgs, rcpts);
		if (ctl->json) {
			printf("{\"tenant\":%s%s%s,\"senders\":%llu,\"sessions\":%llu,\"msgs\":%llu,"
			       "\"rcpts\":%llu,\"tempfails\":%llu,\"rejects\":%llu,\"limits\":\"%s\"}\n",
			       sums[i].name[0] ? "\"" : "", sums[i].name[0] ? sums[i].name : "null",
			       sums[i].name[0] ? "\"" : "", sums[i].senders, sums[i].sessions,
			       sums[i].msgs, sums[i].rcpts, sums[i].tempfails, sums[i].rejects, limits);
			continue;
		}
		printf("%-24s %8llu %8llu %8llu %8llu %9llu %8llu  %s\n",
		       sums[i].name[0] ? sums[i].name : "(none)", sums[i].senders, sums[i].sessions,
		       sums[i].msgs, sums[i].rcpts, sums[i].tempfails, sums[i].rejects, limits);
	}
	free(sums);
	sg_tenants_free(t);
	return 0;
}
