/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* ctl_policy.c - policy add|del|list and rate-class set|list (see ctl.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "ctl.h"
#include "log.h"
#include "parse.h"

int cmd_policy_add(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *class = NULL, *tls = NULL, *source = NULL;
	struct opt_spec specs[] = {
		{ "--class", &class }, { "--tls", &tls }, { "--source", &source },
	};
	struct sg_policy policy = {};
	struct sg_prefix prefix;
	char err[SG_ERR_LEN];
	const char *prefix_arg, *action_arg;
	int ret, v;

	ret = parse_opts(argc, argv, first, specs, 3, 2, "policy add PREFIX ACTION [--class NAME] [--tls MODE] [--source MODE]");
	if (ret)
		return ret;
	prefix_arg = positional_arg(argc, argv, first, 0);
	action_arg = positional_arg(argc, argv, first, 1);
	if (sg_parse_prefix(prefix_arg, &prefix, err, sizeof(err)))
		return usage_error("%s", err);
	if (name_arg(sg_action_from_name, action_arg, "action", SG_ACTION_NAMES, &policy.action) ||
	    (tls && name_arg(sg_tls_mode_from_name, tls, "TLS mode", SG_TLS_MODE_NAMES,
			     &policy.tls_mode)) ||
	    (source && name_arg(sg_source_mode_from_name, source, "source mode",
				SG_SOURCE_MODE_NAMES, &policy.source_mode)))
		return EXIT_USAGE;
	ret = open_maps(ctl);
	if (ret)
		return ret;
	if (!tls || !source) {
		struct sg_settings s;
		__u32 zero = 0;

		if (bpf_map_lookup_elem(ctl->maps.settings, &zero, &s) == 0) {
			if (!tls)
				policy.tls_mode = s.default_tls_mode;
			if (!source)
				policy.source_mode = s.default_source_mode;
		}
	}
	if (class) {
		v = sg_rate_class_find(&ctl->maps, class);
		if (v < 0) {
			snprintf(err, sizeof(err), "no rate class '%s' (create it with "
				 "'rate-class set %s --conn RATE --burst N')", class, class);
			return usage_error("%s", err);
		}
		policy.rate_class = (__u8)v;
	}
	if (sg_policy_set(&ctl->maps, &prefix, &policy, err, sizeof(err))) {
		sg_err("%s", err);
		return 1;
	}
	return 0;
}

int cmd_policy_del(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_prefix prefix;
	char err[SG_ERR_LEN];
	int ret;

	ret = parse_opts(argc, argv, first, NULL, 0, 1, "policy del PREFIX");
	if (ret)
		return ret;
	if (sg_parse_prefix(positional_arg(argc, argv, first, 0), &prefix, err, sizeof(err)))
		return usage_error("%s", err);
	ret = open_maps(ctl);
	if (ret)
		return ret;
	if (sg_policy_delete(&ctl->maps, &prefix, err, sizeof(err))) {
		sg_err("%s", err);
		return 1;
	}
	return 0;
}

static void print_policy(struct ctl *ctl, int family, const void *addr, __u32 len,
			 const struct sg_policy *p, int *first)
{
	struct sg_prefix prefix = { .family = family, .len = len };
	char pbuf[64], cbuf[SG_RATE_CLASS_NAME_LEN + 8];

	memcpy(prefix.addr, addr, family == AF_INET ? 4 : 16);
	sg_format_prefix(&prefix, pbuf, sizeof(pbuf));
	class_name(ctl, p->rate_class, cbuf, sizeof(cbuf));
	if (ctl->json) {
		printf("%s{\"prefix\":\"%s\",\"action\":\"%s\",\"class\":\"%s\","
		       "\"tls\":\"%s\",\"source\":\"%s\"}", *first ? "" : ",", pbuf,
		       sg_action_name(p->action), cbuf, sg_tls_mode_name(p->tls_mode),
		       sg_source_mode_name(p->source_mode));
	} else {
		printf("%-43s %-12s %-16s %-12s %s\n", pbuf, sg_action_name(p->action), cbuf,
		       sg_tls_mode_name(p->tls_mode), sg_source_mode_name(p->source_mode));
	}
	*first = 0;
}

int cmd_policy_list(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_lpm_v4_key k4, *prev4 = NULL;
	struct sg_lpm_v6_key k6, *prev6 = NULL;
	struct sg_settings s;
	struct sg_policy p;
	__u32 zero = 0;
	int ret, first_item = 1;

	ret = no_args_then_maps(ctl, argc, argv, first, "policy list");
	if (ret)
		return ret;
	if (ctl->json)
		printf("[");
	else
		printf("%-43s %-12s %-16s %-12s %s\n", "PREFIX", "ACTION", "CLASS", "TLS", "SOURCE");
	while (bpf_map_get_next_key(ctl->maps.policy_v4, prev4, &k4) == 0) {
		if (bpf_map_lookup_elem(ctl->maps.policy_v4, &k4, &p) == 0)
			print_policy(ctl, AF_INET, k4.addr, k4.prefixlen, &p, &first_item);
		prev4 = &k4;
	}
	while (bpf_map_get_next_key(ctl->maps.policy_v6, prev6, &k6) == 0) {
		if (bpf_map_lookup_elem(ctl->maps.policy_v6, &k6, &p) == 0)
			print_policy(ctl, AF_INET6, k6.addr, k6.prefixlen, &p, &first_item);
		prev6 = &k6;
	}
	if (ctl->json) {
		printf("]\n");
	} else if (bpf_map_lookup_elem(ctl->maps.settings, &zero, &s) == 0) {
		char cbuf[SG_RATE_CLASS_NAME_LEN + 8];

		class_name(ctl, s.default_rate_class, cbuf, sizeof(cbuf));
		printf("%-43s %-12s %-16s %-12s %s\n", "(default)", sg_action_name(s.default_action),
		       cbuf, sg_tls_mode_name(s.default_tls_mode),
		       sg_source_mode_name(s.default_source_mode));
	}
	return 0;
}

static int parse_limit_opt(const char *opt, const char *value, uint64_t *interval,
			   uint32_t *burst)
{
	char err[SG_ERR_LEN], msg[SG_ERR_LEN * 2];

	if (!value || !sg_parse_limit(value, interval, burst, err, sizeof(err)))
		return 0;
	snprintf(msg, sizeof(msg), "%s: %s", opt, err);
	return usage_error("%s", msg);
}

int cmd_rate_class_set(struct ctl *ctl, int argc, char **argv, int first)
{
	static const char synopsis[] = "rate-class set NAME [--conn RATE --burst N] "
				       "[--msgs LIMIT] [--rcpts LIMIT] [--sessions N] "
				       "[--ladder off|flag|tempfail|refuse]";
	const char *conn = NULL, *burst = NULL, *msgs = NULL, *rcpts = NULL, *sessions = NULL;
	const char *ladder = NULL, *name;
	struct opt_spec specs[] = { { "--conn", &conn }, { "--burst", &burst },
				    { "--msgs", &msgs }, { "--rcpts", &rcpts },
				    { "--sessions", &sessions }, { "--ladder", &ladder } };
	int ladder_top = SG_LADDER_REFUSED;
	char err[SG_ERR_LEN], msg[SG_ERR_LEN * 2];
	struct sg_rate_class rc;
	uint64_t conn_interval = 0, msg_interval = 0, rcpt_interval = 0, burst_n = 0;
	uint64_t sessions_n = 0;
	uint32_t msg_burst = 0, rcpt_burst = 0;
	int ret, slot;

	ret = parse_opts(argc, argv, first, specs, 6, 1, synopsis);
	if (ret)
		return ret;
	name = positional_arg(argc, argv, first, 0);
	if (strlen(name) >= SG_RATE_CLASS_NAME_LEN)
		return usage_error("rate class name '%s' is longer than 23 characters", name);
	if (!conn != !burst)
		return usage_error("--conn and --burst go together (rate-class set %s --conn "
				   "RATE --burst N)", name);
	for (const char *c = name; *c; c++)
		if (!sg_rate_class_name_char(*c))
			return usage_error("rate class name '%s' may hold letters, digits, '.', "
					   "'_' and '-' only", name);
	if (!conn && !msgs && !rcpts && !sessions && !ladder)
		return usage_error("'rate-class set %s' changes nothing: give --conn RATE "
				   "--burst N, --msgs LIMIT, --rcpts LIMIT, --sessions N or --ladder "
				   "STEP", name);
	if (ladder) {
		static const char *const steps[] = { "off", "flag", "tempfail", "refuse" };

		ladder_top = -1;
		for (int i = 0; i < 4; i++)
			if (!strcmp(ladder, steps[i]))
				ladder_top = i;
		if (ladder_top < 0)
			return usage_error("--ladder: '%s' is not one of off|flag|tempfail|refuse "
					   "(the highest step the response ladder may take a "
					   "sender of this class to)", ladder);
	}
	if (sessions && (!strcmp(sessions, "none") ? (sessions_n = 0, 0) :
			 sg_parse_uint(sessions, 1, 1000000, &sessions_n, err, sizeof(err)))) {
		snprintf(msg, sizeof(msg), "--sessions: %s (or none)", err);
		return usage_error("%s", msg);
	}
	if (conn && sg_parse_rate(conn, &conn_interval, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "--conn: %s", err);
		return usage_error("%s", msg);
	}
	if (burst && sg_parse_uint(burst, 1, 1000000, &burst_n, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "--burst: %s", err);
		return usage_error("%s", msg);
	}
	ret = parse_limit_opt("--msgs", msgs, &msg_interval, &msg_burst);
	if (!ret)
		ret = parse_limit_opt("--rcpts", rcpts, &rcpt_interval, &rcpt_burst);
	if (ret)
		return ret;
	ret = open_maps(ctl);
	if (ret)
		return ret;
	slot = sg_rate_class_find(&ctl->maps, name);
	memset(&rc, 0, sizeof(rc));
	if (slot >= 0) {
		__u32 key = (__u32)slot;

		bpf_map_lookup_elem(ctl->maps.rate_classes, &key, &rc);
	} else if (!conn) {
		sg_err("rate class %s does not exist; a new class needs --conn RATE --burst N",
		       name);
		return 1;
	} else {
		rc.ladder_top = SG_LADDER_REFUSED;	/* a new class: the whole ladder */
	}
	if (ladder)
		rc.ladder_top = (__u8)ladder_top;
	if (conn) {
		rc.conn_interval_ns = conn_interval;
		rc.conn_burst = (uint32_t)burst_n;
	}
	if (msgs) {
		rc.msg_interval_ns = msg_interval;
		rc.msg_burst = msg_burst;
	}
	if (rcpts) {
		rc.rcpt_interval_ns = rcpt_interval;
		rc.rcpt_burst = rcpt_burst;
	}
	if (sessions)
		rc.max_sessions = (uint32_t)sessions_n;
	if (sg_rate_class_set(&ctl->maps, name, &rc, err, sizeof(err)) < 0) {
		sg_err("%s", err);
		return 1;
	}
	return 0;
}

int cmd_rate_class_list(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_rate_class rc;
	int ret, first_item = 1;

	ret = no_args_then_maps(ctl, argc, argv, first, "rate-class list");
	if (ret)
		return ret;
	if (ctl->json)
		printf("[");
	else
		printf("%-24s %-14s %-8s %-18s %-18s %s\n", "CLASS", "CONN", "BURST", "MSGS", "RCPTS",
		       "SESSIONS");
	for (__u32 slot = 0; slot < SG_MAX_RATE_CLASSES; slot++) {
		char rate[32], msgs[48], rcpts[48], sessions[16];

		if (bpf_map_lookup_elem(ctl->maps.rate_classes, &slot, &rc) || !rc.name[0])
			continue;
		if (rc.max_sessions)
			snprintf(sessions, sizeof(sessions), "%u", rc.max_sessions);
		else
			snprintf(sessions, sizeof(sessions), "none");
		sg_format_rate(rc.conn_interval_ns, rate, sizeof(rate));
		sg_format_limit(rc.msg_interval_ns, rc.msg_burst, msgs, sizeof(msgs));
		sg_format_limit(rc.rcpt_interval_ns, rc.rcpt_burst, rcpts, sizeof(rcpts));
		if (ctl->json)
			printf("%s{\"name\":\"%.*s\",\"conn\":\"%s\",\"conn_interval_ns\":%llu,"
			       "\"burst\":%u,\"msg_interval_ns\":%llu,\"msg_burst\":%u,"
			       "\"rcpt_interval_ns\":%llu,\"rcpt_burst\":%u,\"max_sessions\":%u}",
			       first_item ? "" : ",",
			       (int)sizeof(rc.name), rc.name, rate,
			       (unsigned long long)rc.conn_interval_ns, rc.conn_burst,
			       (unsigned long long)rc.msg_interval_ns, rc.msg_burst,
			       (unsigned long long)rc.rcpt_interval_ns, rc.rcpt_burst, rc.max_sessions);
		else
			printf("%-24.*s %-14s %-8u %-18s %-18s %s\n", (int)sizeof(rc.name), rc.name,
			       rate, rc.conn_burst, msgs, rcpts, sessions);
		first_item = 0;
	}
	if (ctl->json)
		printf("]\n");
	return 0;
}
