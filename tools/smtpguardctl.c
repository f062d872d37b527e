/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * smtpguardctl - the operator's CLI: reads and writes the maps smtpguardd
 * pinned below a bpffs root. Policy, rate classes, per-source state, blocks,
 * counters and top talkers. A change takes effect on the next packet.
 *
 * Exit status: 0 done; 1 the change could not be made (e.g. a table full);
 * 2 bad arguments, or no smtpguard maps at the root.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "log.h"
#include "parse.h"
#include "pinned.h"

#define EXIT_USAGE 2
#define DEFAULT_ROOT "/sys/fs/bpf/smtpguard"

struct ctl {
	const char *root;
	int json;
	struct sg_maps maps;
};

static const char usage_text[] =
"usage: smtpguardctl [--root DIR] [--json] COMMAND [ARGS]\n"
"  policy add PREFIX ACTION [--class NAME] [--tls MODE] [--source MODE]\n"
"                           ACTION: scan|exempt|passthrough|block\n"
"  policy del PREFIX\n"
"  policy list\n"
"  rate-class set NAME [--conn RATE --burst N] [--msgs LIMIT] [--rcpts LIMIT]\n"
"                           RATE: e.g. 30/min, 5/s, 100/h; a new class needs --conn, --burst\n"
"                           LIMIT: COUNT/UNIT (COUNT at once, then one every UNIT/COUNT) or none\n"
"  rate-class list\n"
"  show ADDR\n"
"  block ADDR --for DURATION                  DURATION: e.g. 30s, 10m, 2h\n"
"  unblock ADDR\n"
"  stats\n"
"  top [--by syns|drops|msgs|rejects] [-n N]\n"
"  fail-mode [open|closed]                    scan flows while the proxy is down\n"
"  trace ID --events FILE                     which VM sent a message (Message-ID or ref)\n"
"--root: the bpffs root smtpguardd pins its maps in (default " DEFAULT_ROOT ")\n";

static int usage_error(const char *fmt, const char *arg)
{
	char msg[SG_ERR_LEN * 2];

	snprintf(msg, sizeof(msg), fmt, arg);
	sg_err("%s (see 'smtpguardctl --help')", msg);
	return EXIT_USAGE;
}

static int open_maps(struct ctl *ctl)
{
	char err[SG_ERR_LEN * 2];

	if (sg_maps_open(ctl->root, &ctl->maps, err, sizeof(err))) {
		sg_err("%s", err);
		return EXIT_USAGE;
	}
	return 0;
}

static void class_name(const struct ctl *ctl, __u32 slot, char *buf, size_t len)
{
	struct sg_rate_class rc;

	if (bpf_map_lookup_elem(ctl->maps.rate_classes, &slot, &rc) == 0 && rc.name[0])
		snprintf(buf, len, "%.*s", (int)sizeof(rc.name), rc.name);
	else
		snprintf(buf, len, "#%u", slot);
}

/* Options after a subcommand's positional arguments: --name VALUE pairs. */
struct opt_spec {
	const char *name;
	const char **value;
};

/* A subcommand's arguments: npositional plain ones, and --name VALUE
 * options from specs, in any order. synopsis is its usage line. */
static int parse_opts(int argc, char **argv, int first, struct opt_spec *specs,
		      int nspecs, int npositional, const char *synopsis)
{
	char msg[SG_ERR_LEN];
	int positional = 0;

	for (int i = first; i < argc; i++) {
		int matched = 0;

		if (argv[i][0] != '-') {
			if (positional++ >= npositional) {
				snprintf(msg, sizeof(msg), "unexpected argument '%%s' (usage: "
					 "smtpguardctl %s)", synopsis);
				return usage_error(msg, argv[i]);
			}
			continue;
		}
		for (int s = 0; s < nspecs; s++) {
			if (strcmp(argv[i], specs[s].name) != 0)
				continue;
			if (i + 1 >= argc)
				return usage_error("option %s needs a value", argv[i]);
			*specs[s].value = argv[++i];
			matched = 1;
			break;
		}
		if (!matched) {
			snprintf(msg, sizeof(msg), "unknown option '%%s' (usage: smtpguardctl %s)",
				 synopsis);
			return usage_error(msg, argv[i]);
		}
	}
	if (positional < npositional) {
		snprintf(msg, sizeof(msg), "missing argument (usage: smtpguardctl %s)%%s",
			 synopsis);
		return usage_error(msg, "");
	}
	return 0;
}

/* The first npositional non-option arguments from first on. */
static const char *positional_arg(int argc, char **argv, int first, int index)
{
	for (int i = first; i < argc; i++) {
		if (argv[i][0] == '-') {
			i++;	/* skip its value */
			continue;
		}
		if (index-- == 0)
			return argv[i];
	}
	return NULL;
}

/* A command without arguments: nothing after it, then the maps. */
static int no_args_then_maps(struct ctl *ctl, int argc, char **argv, int first,
			     const char *synopsis)
{
	int ret = parse_opts(argc, argv, first, NULL, 0, 0, synopsis);

	return ret ? ret : open_maps(ctl);
}

/* A named value (an action, a mode) into *out; a clear error otherwise. */
static int name_arg(int (*from_name)(const char *), const char *value, const char *kind,
		    const char *accepted, __u8 *out)
{
	char err[SG_ERR_LEN];
	int v = from_name(value);

	if (v < 0) {
		snprintf(err, sizeof(err), "unknown %s '%s' (expected %s)", kind, value, accepted);
		usage_error("%s", err);
		return -1;
	}
	*out = (__u8)v;
	return 0;
}

static int cmd_policy_add(struct ctl *ctl, int argc, char **argv, int first)
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

static int cmd_policy_del(struct ctl *ctl, int argc, char **argv, int first)
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

static int cmd_policy_list(struct ctl *ctl, int argc, char **argv, int first)
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

static int cmd_rate_class_set(struct ctl *ctl, int argc, char **argv, int first)
{
	static const char synopsis[] = "rate-class set NAME [--conn RATE --burst N] "
				       "[--msgs LIMIT] [--rcpts LIMIT]";
	const char *conn = NULL, *burst = NULL, *msgs = NULL, *rcpts = NULL, *name;
	struct opt_spec specs[] = { { "--conn", &conn }, { "--burst", &burst },
				    { "--msgs", &msgs }, { "--rcpts", &rcpts } };
	char err[SG_ERR_LEN], msg[SG_ERR_LEN * 2];
	struct sg_rate_class rc;
	uint64_t conn_interval = 0, msg_interval = 0, rcpt_interval = 0, burst_n = 0;
	uint32_t msg_burst = 0, rcpt_burst = 0;
	int ret, slot;

	ret = parse_opts(argc, argv, first, specs, 4, 1, synopsis);
	if (ret)
		return ret;
	name = positional_arg(argc, argv, first, 0);
	if (strlen(name) >= SG_RATE_CLASS_NAME_LEN)
		return usage_error("rate class name '%s' is longer than 23 characters", name);
	if (!conn != !burst)
		return usage_error("--conn and --burst go together (rate-class set %s --conn "
				   "RATE --burst N)", name);
	if (!conn && !msgs && !rcpts)
		return usage_error("'rate-class set %s' changes nothing: give --conn RATE "
				   "--burst N, --msgs LIMIT or --rcpts LIMIT", name);
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
	}
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
	if (sg_rate_class_set(&ctl->maps, name, &rc, err, sizeof(err)) < 0) {
		sg_err("%s", err);
		return 1;
	}
	return 0;
}

static int cmd_rate_class_list(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_rate_class rc;
	int ret, first_item = 1;

	ret = no_args_then_maps(ctl, argc, argv, first, "rate-class list");
	if (ret)
		return ret;
	if (ctl->json)
		printf("[");
	else
		printf("%-24s %-14s %-8s %-18s %s\n", "CLASS", "CONN", "BURST", "MSGS", "RCPTS");
	for (__u32 slot = 0; slot < SG_MAX_RATE_CLASSES; slot++) {
		char rate[32], msgs[48], rcpts[48];

		if (bpf_map_lookup_elem(ctl->maps.rate_classes, &slot, &rc) || !rc.name[0])
			continue;
		sg_format_rate(rc.conn_interval_ns, rate, sizeof(rate));
		sg_format_limit(rc.msg_interval_ns, rc.msg_burst, msgs, sizeof(msgs));
		sg_format_limit(rc.rcpt_interval_ns, rc.rcpt_burst, rcpts, sizeof(rcpts));
		if (ctl->json)
			printf("%s{\"name\":\"%.*s\",\"conn\":\"%s\",\"conn_interval_ns\":%llu,"
			       "\"burst\":%u,\"msg_interval_ns\":%llu,\"msg_burst\":%u,"
			       "\"rcpt_interval_ns\":%llu,\"rcpt_burst\":%u}", first_item ? "" : ",",
			       (int)sizeof(rc.name), rc.name, rate,
			       (unsigned long long)rc.conn_interval_ns, rc.conn_burst,
			       (unsigned long long)rc.msg_interval_ns, rc.msg_burst,
			       (unsigned long long)rc.rcpt_interval_ns, rc.rcpt_burst);
		else
			printf("%-24.*s %-14s %-8u %-18s %s\n", (int)sizeof(rc.name), rc.name, rate,
			       rc.conn_burst, msgs, rcpts);
		first_item = 0;
	}
	if (ctl->json)
		printf("]\n");
	return 0;
}

static int parse_source_arg(int argc, char **argv, int first, const char *cmd,
			    struct opt_spec *specs, int nspecs, struct sg_src_key *key,
			    const char **addr)
{
	char err[SG_ERR_LEN];
	int ret = parse_opts(argc, argv, first, specs, nspecs, 1, cmd);

	if (ret)
		return ret;
	*addr = positional_arg(argc, argv, first, 0);
	if (sg_parse_source(*addr, 0, key, err, sizeof(err)))
		return usage_error("%s", err);
	return 0;
}

/* The prefix IPv6 senders are counted by, from the daemon's settings. */
static unsigned int v6_source_prefix(const struct ctl *ctl)
{
	struct sg_settings s;
	__u32 zero = 0;

	if (bpf_map_lookup_elem(ctl->maps.settings, &zero, &s))
		return 128;
	return s.v6_source_prefix ? s.v6_source_prefix : 128;
}

/* Opens the maps, then cuts the (already valid) address to the sender key
 * the classifier uses. */
static int open_maps_for_source(struct ctl *ctl, const char *addr, struct sg_src_key *key)
{
	char err[SG_ERR_LEN];
	int ret = open_maps(ctl);

	if (ret)
		return ret;
	sg_parse_source(addr, v6_source_prefix(ctl), key, err, sizeof(err));
	return 0;
}

static int cmd_show(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_src_feedback fb;
	struct sg_src_state st;
	struct sg_rate_class rc;
	struct sg_src_key key;
	const char *addr;
	char cbuf[SG_RATE_CLASS_NAME_LEN + 8], rate[32];
	uint64_t now = sg_now_ns(), penalty_ms = 0, tokens = 0, last_seen;
	int ret, known;

	ret = parse_source_arg(argc, argv, first, "show ADDR", NULL, 0, &key, &addr);
	if (ret)
		return ret;
	ret = open_maps_for_source(ctl, addr, &key);
	if (ret)
		return ret;
	known = sg_source_read(&ctl->maps, &key, &st) == 0;
	if (!known)
		memset(&st, 0, sizeof(st));
	if (bpf_map_lookup_elem(ctl->maps.src_feedback, &key, &fb))
		memset(&fb, 0, sizeof(fb));
	else
		known = 1;
	/* the kernel's table may have evicted it while the proxy's has not */
	last_seen = st.last_seen_ns > fb.last_ns ? st.last_seen_ns : fb.last_ns;
	class_name(ctl, st.rate_class, cbuf, sizeof(cbuf));
	memset(&rc, 0, sizeof(rc));
	bpf_map_lookup_elem(ctl->maps.rate_classes, &st.rate_class, &rc);
	sg_format_rate(rc.conn_interval_ns, rate, sizeof(rate));
	if (st.penalty_until_ns > now)
		penalty_ms = (st.penalty_until_ns - now) / 1000000;
	if (rc.conn_interval_ns) {
		uint64_t debt = st.tat_ns > now ? st.tat_ns - now : 0;
		uint64_t cap = (uint64_t)rc.conn_burst * rc.conn_interval_ns;

		tokens = debt >= cap ? 0 : (cap - debt) / rc.conn_interval_ns;
	}
	if (ctl->json) {
		printf("{\"source\":\"%s\",\"known\":%s,\"rate_class\":\"%s\",\"conn_rate\":\"%s\","
		       "\"burst\":%u,\"tokens\":%llu,\"syns\":%llu,\"syn_drops\":%llu,"
		       "\"penalty_remaining_ms\":%llu,\"idle_ms\":%llu,\"msgs\":%llu,"
		       "\"rcpts\":%llu,\"rejects\":%llu,\"tempfails\":%llu,\"mx_5xx\":%llu,"
		       "\"sessions\":%llu,\"tls_sessions\":%llu,\"tls_uninspected\":%llu,"
		       "\"penalties\":%u,\"suspect\":%s}\n",
		       addr, known ? "true" : "false", cbuf, rate, rc.conn_burst,
		       (unsigned long long)tokens, (unsigned long long)st.syns,
		       (unsigned long long)st.syn_drops, (unsigned long long)penalty_ms,
		       (unsigned long long)(known && now > last_seen ?
					    (now - last_seen) / 1000000 : 0),
		       (unsigned long long)fb.msgs, (unsigned long long)fb.rcpts,
		       (unsigned long long)fb.rejects, (unsigned long long)fb.tempfails,
		       (unsigned long long)fb.mx_5xx, (unsigned long long)fb.sessions,
		       (unsigned long long)fb.tls_sessions, (unsigned long long)fb.tls_uninspected,
		       fb.penalties, fb.suspect_until_ns > now ? "true" : "false");
		return 0;
	}
	if (!known) {
		printf("%s: no connection attempts seen (no per-source state)\n", addr);
		return 0;
	}
	printf("source:      %s\n", addr);
	printf("rate class:  %s (%s, burst %u)\n", cbuf, rate, rc.conn_burst);
	printf("bucket:      %llu of %u connections available\n",
	       (unsigned long long)tokens, rc.conn_burst);
	printf("syns:        %llu\n", (unsigned long long)st.syns);
	printf("syn drops:   %llu\n", (unsigned long long)st.syn_drops);
	if (penalty_ms)
		printf("penalty:     %llu.%03llu s left\n", (unsigned long long)penalty_ms / 1000,
		       (unsigned long long)penalty_ms % 1000);
	else
		printf("penalty:     none\n");
	printf("last seen:   %.1f s ago\n", now > last_seen ? (double)(now - last_seen) / 1e9 : 0.0);
	printf("messages:    %llu delivered (%llu recipients), %llu refused, %llu deferred, "
	       "%llu MX 5xx\n", (unsigned long long)fb.msgs, (unsigned long long)fb.rcpts,
	       (unsigned long long)fb.rejects, (unsigned long long)fb.tempfails,
	       (unsigned long long)fb.mx_5xx);
	printf("sessions:    %llu proxied, %llu with TLS (%llu passed through, not inspected)\n",
	       (unsigned long long)fb.sessions, (unsigned long long)fb.tls_sessions,
	       (unsigned long long)fb.tls_uninspected);
	printf("escalations: %u%s\n", fb.penalties,
	       fb.suspect_until_ns > now ? " (suspect: its flows are proxied)" : "");
	return 0;
}

static int cmd_block(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *duration = NULL, *addr;
	struct opt_spec specs[] = { { "--for", &duration } };
	char err[SG_ERR_LEN], msg[SG_ERR_LEN * 2];
	struct sg_src_key key;
	uint64_t ns;
	int ret;

	ret = parse_source_arg(argc, argv, first, "block ADDR --for DURATION", specs, 1, &key, &addr);
	if (ret)
		return ret;
	if (!duration)
		return usage_error("'block %s' needs --for DURATION (e.g. --for 10m)", addr);
	if (sg_parse_duration(duration, &ns, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "--for: %s", err);
		return usage_error("%s", msg);
	}
	ret = open_maps_for_source(ctl, addr, &key);
	if (ret)
		return ret;
	if (sg_source_set_penalty(&ctl->maps, &key, sg_now_ns() + ns, err, sizeof(err))) {
		sg_err("%s", err);
		return 1;
	}
	return 0;
}

static int cmd_unblock(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_src_state st;
	struct sg_src_key key;
	char err[SG_ERR_LEN];
	const char *addr;
	int ret;

	ret = parse_source_arg(argc, argv, first, "unblock ADDR", NULL, 0, &key, &addr);
	if (ret)
		return ret;
	ret = open_maps_for_source(ctl, addr, &key);
	if (ret)
		return ret;
	if (sg_source_read(&ctl->maps, &key, &st)) {
		sg_err("%s has no per-source state, so no penalty to lift", addr);
		return 1;
	}
	if (sg_source_set_penalty(&ctl->maps, &key, 0, err, sizeof(err))) {
		sg_err("%s", err);
		return 1;
	}
	return 0;
}

static int cmd_stats(struct ctl *ctl, int argc, char **argv, int first)
{
	uint64_t counters[SG_STAT__COUNT];
	int ret;

	ret = no_args_then_maps(ctl, argc, argv, first, "stats");
	if (ret)
		return ret;
	if (sg_stats_read(&ctl->maps, counters)) {
		sg_err("reading the stats map at %s failed", ctl->root);
		return 1;
	}
	if (ctl->json)
		printf("{");
	for (int i = 0; i < SG_STAT__COUNT; i++) {
		if (ctl->json)
			printf("%s\"%s\":%llu", i ? "," : "", sg_stat_name(i),
			       (unsigned long long)counters[i]);
		else
			printf("%-16s %llu\n", sg_stat_name(i), (unsigned long long)counters[i]);
	}
	if (ctl->json)
		printf("}\n");
	return 0;
}

/* The fail mode of scan flows while no proxy listener is registered; it
 * holds over a reload (SIGHUP) unless the config file's fail_mode changed,
 * and the config sets it again at the daemon's next start. */
static int cmd_fail_mode(struct ctl *ctl, int argc, char **argv, int first)
{
	struct sg_settings s;
	const char *mode;
	__u32 zero = 0;
	int ret, v;

	if (!positional_arg(argc, argv, first, 0)) {
		ret = parse_opts(argc, argv, first, NULL, 0, 0, "fail-mode [open|closed]");
		if (ret)
			return ret;
		ret = open_maps(ctl);
		if (ret)
			return ret;
		if (bpf_map_lookup_elem(ctl->maps.settings, &zero, &s)) {
			sg_err("reading the settings at %s failed", ctl->root);
			return 1;
		}
		printf(ctl->json ? "{\"fail_mode\":\"%s\"}\n" : "%s\n",
		       s.fail_mode == SG_FAIL_CLOSED ? "closed" : "open");
		return 0;
	}
	ret = parse_opts(argc, argv, first, NULL, 0, 1, "fail-mode [open|closed]");
	if (ret)
		return ret;
	mode = positional_arg(argc, argv, first, 0);
	v = !strcmp(mode, "open") ? SG_FAIL_OPEN : !strcmp(mode, "closed") ? SG_FAIL_CLOSED : -1;
	if (v < 0)
		return usage_error("fail mode '%s' is not one of open|closed", mode);
	ret = open_maps(ctl);
	if (ret)
		return ret;
	if (bpf_map_lookup_elem(ctl->maps.settings, &zero, &s)) {
		sg_err("reading the settings at %s failed", ctl->root);
		return 1;
	}
	s.fail_mode = (__u8)v;
	if (bpf_map_update_elem(ctl->maps.settings, &zero, &s, BPF_ANY)) {
		sg_err("writing the settings at %s failed: %s", ctl->root, strerror(errno));
		return 1;
	}
	return 0;
}

/* A JSON string field's raw value in an event line (escapes kept). */
static int event_field(const char *line, const char *name, char *out, size_t len)
{
	char key[64];
	const char *p, *q;

	size_t n = 0;

	snprintf(key, sizeof(key), "\"%s\":\"", name);
	p = strstr(line, key);
	if (!p || !len)
		return -1;
	p += strlen(key);
	/* unescaped as the daemon escaped it (\" and \\; \uXXXX kept) */
	for (q = p; *q && *q != '"'; q++) {
		if (*q == '\\' && (q[1] == '"' || q[1] == '\\'))
			q++;
		if (n + 1 < len)
			out[n++] = *q;
	}
	out[n] = '\0';
	return 0;
}

/* Message-IDs compare whole, with or without their angle brackets. */
static int same_message_id(const char *a, const char *b)
{
	size_t la, lb;

	a += *a == '<';
	b += *b == '<';
	la = strlen(a) - (a[0] && a[strlen(a) - 1] == '>');
	lb = strlen(b) - (b[0] && b[strlen(b) - 1] == '>');
	return la && la == lb && strncmp(a, b, la) == 0;
}

/* Which VM sent a message: by its Message-ID or smtpguard's reference id. */
static int cmd_trace(struct ctl *ctl, int argc, char **argv, int first)
{
	const char *events = NULL, *id;
	struct opt_spec specs[] = { { "--events", &events } };
	char line[8192];
	int ret, found = 0;
	FILE *f;

	ret = parse_opts(argc, argv, first, specs, 1, 1, "trace ID --events FILE");
	if (ret)
		return ret;
	id = positional_arg(argc, argv, first, 0);
	if (!events)
		return usage_error("'trace %s' needs --events FILE (the daemon's events_file)", id);
	f = fopen(events, "r");
	if (!f) {
		sg_err("cannot open the events file %s: %s", events, strerror(errno));
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		char ref[64], mid[600], src[80], mx[80], verdict[16], t[40];

		if (!strstr(line, "\"event\":\"message\""))
			continue;
		if (event_field(line, "ref", ref, sizeof(ref)) ||
		    event_field(line, "message_id", mid, sizeof(mid)))
			continue;
		if (strcmp(ref, id) && !same_message_id(mid, id))
			continue;
		found++;
		if (ctl->json) {
			fputs(line, stdout);
			continue;
		}
		event_field(line, "source", src, sizeof(src));
		event_field(line, "mx", mx, sizeof(mx));
		event_field(line, "verdict", verdict, sizeof(verdict));
		event_field(line, "time", t, sizeof(t));
		printf("%s  %s -> %s  %s  ref %s  message-id %s\n", t, src, mx, verdict, ref,
		       mid[0] ? mid : "-");
	}
	fclose(f);
	if (!found) {
		sg_err("no message with Message-ID or reference id '%s' in %s", id, events);
		return 1;
	}
	return 0;
}

struct top_row {
	struct sg_src_key key;
	struct sg_src_state st;
	struct sg_src_feedback fb;
};

enum top_order { TOP_SYNS, TOP_DROPS, TOP_MSGS, TOP_REJECTS };
static enum top_order top_order;

static uint64_t top_value(const struct top_row *r)
{
	switch (top_order) {
	case TOP_DROPS:
		return r->st.syn_drops;
	case TOP_MSGS:
		return r->fb.msgs;
	case TOP_REJECTS:
		return r->fb.rejects;
	default:
		return r->st.syns;
	}
}

static int top_cmp(const void *a, const void *b)
{
	uint64_t vx = top_value(a), vy = top_value(b);

	return vx < vy ? 1 : vx > vy ? -1 : 0;
}

/* Every sender of one map (src_state or src_feedback) not listed yet,
 * with what both maps hold of it. */
static int top_collect(struct ctl *ctl, int map_fd, int skip_known, struct top_row **rows,
		       size_t *nrows, size_t *cap)
{
	struct sg_src_key key, prev_key;
	int have_prev = 0;

	while (bpf_map_get_next_key(map_fd, have_prev ? &prev_key : NULL, &key) == 0) {
		struct top_row *r;
		int in_state;

		prev_key = key;
		have_prev = 1;
		if (*nrows == *cap) {
			struct top_row *grown;

			*cap = *cap ? *cap * 2 : 256;
			grown = realloc(*rows, *cap * sizeof(**rows));
			if (!grown)
				return -1;
			*rows = grown;
		}
		r = &(*rows)[*nrows];
		r->key = key;
		in_state = sg_source_read(&ctl->maps, &key, &r->st) == 0;
		if (skip_known && in_state)
			continue;	/* listed from src_state already */
		if (!in_state)
			memset(&r->st, 0, sizeof(r->st));
		if (bpf_map_lookup_elem(ctl->maps.src_feedback, &key, &r->fb))
			memset(&r->fb, 0, sizeof(r->fb));
		(*nrows)++;
	}
	return 0;
}

static int cmd_top(struct ctl *ctl, int argc, char **argv, int first)
{
	static const char *const orders[] = { "syns", "drops", "msgs", "rejects" };
	const char *by = NULL, *count = NULL;
	struct opt_spec specs[] = { { "--by", &by }, { "-n", &count } };
	struct top_row *rows = NULL;
	size_t nrows = 0, cap = 0;
	char err[SG_ERR_LEN], msg[SG_ERR_LEN * 2];
	uint64_t limit = 10;
	int ret;

	ret = parse_opts(argc, argv, first, specs, 2, 0,
			 "top [--by syns|drops|msgs|rejects] [-n N]");
	if (ret)
		return ret;
	top_order = TOP_SYNS;
	if (by) {
		size_t o;

		for (o = 0; o < sizeof(orders) / sizeof(orders[0]); o++)
			if (strcmp(by, orders[o]) == 0)
				break;
		if (o == sizeof(orders) / sizeof(orders[0]))
			return usage_error("--by '%s' is not one of syns|drops|msgs|rejects", by);
		top_order = (enum top_order)o;
	}
	if (count && sg_parse_uint(count, 1, 100000, &limit, err, sizeof(err))) {
		snprintf(msg, sizeof(msg), "-n: %s", err);
		return usage_error("%s", msg);
	}
	ret = open_maps(ctl);
	if (ret)
		return ret;
	if (top_collect(ctl, ctl->maps.src_state, 0, &rows, &nrows, &cap) ||
	    top_collect(ctl, ctl->maps.src_feedback, 1, &rows, &nrows, &cap)) {
		free(rows);
		sg_err("out of memory listing sources");
		return 1;
	}
	if (nrows)
		qsort(rows, nrows, sizeof(*rows), top_cmp);
	if (ctl->json)
		printf("[");
	else
		printf("%-40s %-16s %10s %10s %10s %10s\n", "SOURCE", "CLASS", "SYNS", "DROPS",
		       "MSGS", "REJECTS");
	for (size_t i = 0; i < nrows && i < limit; i++) {
		char addr[INET6_ADDRSTRLEN + 8], cbuf[SG_RATE_CLASS_NAME_LEN + 8];
		const struct top_row *r = &rows[i];

		sg_format_source(&r->key, v6_source_prefix(ctl), addr, sizeof(addr));
		class_name(ctl, r->st.rate_class, cbuf, sizeof(cbuf));
		if (ctl->json)
			printf("%s{\"source\":\"%s\",\"syns\":%llu,\"syn_drops\":%llu,"
			       "\"msgs\":%llu,\"rejects\":%llu,\"rate_class\":\"%s\"}",
			       i ? "," : "", addr, (unsigned long long)r->st.syns,
			       (unsigned long long)r->st.syn_drops, (unsigned long long)r->fb.msgs,
			       (unsigned long long)r->fb.rejects, cbuf);
		else
			printf("%-40s %-16s %10llu %10llu %10llu %10llu\n", addr, cbuf,
			       (unsigned long long)r->st.syns, (unsigned long long)r->st.syn_drops,
			       (unsigned long long)r->fb.msgs, (unsigned long long)r->fb.rejects);
	}
	if (ctl->json)
		printf("]\n");
	free(rows);
	return 0;
}

struct command {
	const char *group;
	const char *verb;	/* NULL: the group alone is the command */
	int (*run)(struct ctl *ctl, int argc, char **argv, int first);
};

static const struct command commands[] = {
	{ "policy", "add", cmd_policy_add },
	{ "policy", "del", cmd_policy_del },
	{ "policy", "list", cmd_policy_list },
	{ "rate-class", "set", cmd_rate_class_set },
	{ "rate-class", "list", cmd_rate_class_list },
	{ "show", NULL, cmd_show },
	{ "block", NULL, cmd_block },
	{ "unblock", NULL, cmd_unblock },
	{ "stats", NULL, cmd_stats },
	{ "top", NULL, cmd_top },
	{ "fail-mode", NULL, cmd_fail_mode },
	{ "trace", NULL, cmd_trace },
};

int main(int argc, char **argv)
{
	struct ctl ctl = { .root = DEFAULT_ROOT };
	int i = 1, ret;

	memset(&ctl.maps, -1, sizeof(ctl.maps));
	sg_log_init("smtpguardctl");
	/* the global options may stand anywhere; take them out of argv */
	{
		int kept = 1;

		for (int a = 1; a < argc; a++) {
			if (strcmp(argv[a], "--json") == 0) {
				ctl.json = 1;
			} else if (strcmp(argv[a], "--root") == 0) {
				if (a + 1 >= argc)
					return usage_error("--root needs a directory%s", "");
				ctl.root = argv[++a];
			} else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
				fputs(usage_text, stdout);
				return 0;
			} else {
				argv[kept++] = argv[a];
			}
		}
		argc = kept;
	}
	if (i < argc && argv[i][0] == '-')
		return usage_error("unknown option '%s' (options of a command follow it)", argv[i]);
	if (i >= argc)
		return usage_error("no command given%s", "");
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		const struct command *cmd = &commands[c];

		if (strcmp(argv[i], cmd->group) != 0)
			continue;
		if (!cmd->verb) {
			ret = cmd->run(&ctl, argc, argv, i + 1);
			goto out;
		}
		if (i + 1 < argc && strcmp(argv[i + 1], cmd->verb) == 0) {
			ret = cmd->run(&ctl, argc, argv, i + 2);
			goto out;
		}
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c].group) == 0 && commands[c].verb)
			return usage_error(strcmp(argv[i], "policy") == 0 ?
					   "'%s' needs a subcommand: add, del or list" :
					   "'%s' needs a subcommand: set or list", argv[i]);
	}
	return usage_error("unknown command '%s'", argv[i]);
out:
	sg_maps_close(&ctl.maps);
	return ret;
}
