/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * config.c - smtpguardd's config file and --set overrides (see config.h).
 *
 * config_keys[] is the one place a key is defined: its name, how its text
 * is read (a type, with bounds or names), the field it fills, its default as
 * etc/smtpguard.conf shows it, and whether SIGHUP applies it. Adding a key
 * is a field in struct sg_config, a row here and its paragraph in the .conf;
 * the defaults, --list-keys, the reload's copy and its log follow from the
 * row, and test_config checks the row against the .conf.
 *
 * Past 600 lines: the table (116 keys) and a reader per type, the setters of
 * the four keys no type fits, and the file reader, the settings derivation
 * and the cross-key checks, which stay here beside the keys they read.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "parse.h"
#include "shared_wire.h"

#define SG_CONFIG_LINE_MAX 4096

/* Enum keys' names, each at its value's index. Those of the classifier's
 * enums are smtpguardctl's too (parse.c); test_config checks they agree. */
static const char *const attach_names[] = {
	[SG_ATTACH_TC] = "tc", [SG_ATTACH_XDP] = "xdp",
	NULL,	/* uplink and bridge are the daemon's own, not a choice */
};
static const char *const xdp_mode_names[] = { "native", "generic", NULL };	/* xdp_generic */
static const char *const action_names[] = {
	[SG_ACTION_SCAN] = "scan", [SG_ACTION_EXEMPT] = "exempt",
	[SG_ACTION_PASSTHROUGH] = "passthrough", [SG_ACTION_BLOCK] = "block", NULL,
};
static const char *const tls_mode_names[] = {
	[SG_TLS_PASSTHROUGH] = "passthrough", [SG_TLS_TERMINATE] = "terminate",
	[SG_TLS_STRIP] = "strip", NULL,
};
static const char *const source_mode_names[] = {
	[SG_SOURCE_TRANSPARENT] = "transparent", [SG_SOURCE_RELAY_IP] = "relay-ip", NULL,
};
static const char *const refuse_names[] = {
	[SG_REFUSE_DROP] = "drop", [SG_REFUSE_RST] = "rst", NULL,
};
static const char *const malformed_names[] = {
	[SG_MALFORMED_DROP] = "drop", [SG_MALFORMED_PASS] = "pass", NULL,
};
static const char *const source_check_names[] = {
	[SG_SOURCE_CHECK_OFF] = "off", [SG_SOURCE_CHECK_ROUTE] = "route",
	[SG_SOURCE_CHECK_BOUND] = "bound", [SG_SOURCE_CHECK_AUTO] = "auto", NULL,
};
static const char *const fail_mode_names[] = {
	[SG_FAIL_OPEN] = "open", [SG_FAIL_CLOSED] = "closed", NULL,
};
static const char *const steer_mode_names[] = {
	[SG_STEER_ALL] = "all", [SG_STEER_SUSPECT] = "suspect", NULL,
};
static const char *const scan_action_names[] = {
	[SG_SCAN_TEMPFAIL] = "tempfail", [SG_SCAN_ACCEPT] = "accept", NULL,
};
static const char *const tls_verify_names[] = {
	[SG_TLS_VERIFY_NONE] = "none", [SG_TLS_VERIFY_PEER] = "verify", NULL,
};
static const char *const tls_missing_names[] = {
	[SG_TLS_MIRROR] = "mirror", [SG_TLS_REQUIRE] = "require", NULL,
};
static const char *const mover_names[] = {
	[SG_MOVER_COPY] = "copy", [SG_MOVER_SPLICE] = "splice",
	[SG_MOVER_SOCKMAP] = "sockmap", NULL,
};

const char *sg_tls_mover_name(int mover)
{
	return mover >= 0 && mover < SG_MOVER__COUNT ? mover_names[mover] : "?";
}

/* The custom setters: keys whose checks no type states. */

/* A firewall mark or routing table number: decimal or 0x hex, as ip-rule(8)
 * writes marks; 0 means "none" to the kernel. */
static int read_u32_nonzero(const char *value, uint32_t *out, char *err, size_t errlen)
{
	uint64_t v;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 0);
	if (!isdigit((unsigned char)value[0]) || errno || *end || v == 0 || v > UINT32_MAX) {
		snprintf(err, errlen, "'%s' is not a number from 1 to %u (decimal or 0x hex)",
			 value, UINT32_MAX);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int set_steer_mark(void *field, char *value, char *err, size_t errlen)
{
	return read_u32_nonzero(value, field, err, errlen);
}

/* The proxy's user: a name as useradd(8) allows it (checked to exist when
 * the proxy starts, where the error can say how to create it). */
static int set_proxy_user(void *field, char *value, char *err, size_t errlen)
{
	size_t n = strlen(value);

	if (!n || n >= SG_USER_NAME_LEN) {
		snprintf(err, errlen, "a user name of 1 to %d characters is needed",
			 SG_USER_NAME_LEN - 1);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char c = value[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.') || (i == 0 && c == '-')) {
			snprintf(err, errlen, "'%s' is not a user name (letters, digits, '_', '-', "
				 "'.'; not starting with '-')", value);
			return -1;
		}
	}
	memcpy(field, value, n + 1);
	return 0;
}

static int set_route_table(void *field, char *value, char *err, size_t errlen)
{
	uint32_t table;

	if (read_u32_nonzero(value, &table, err, errlen))
		return -1;
	if (table >= 252 && table <= 255) {
		snprintf(err, errlen, "table %u is one of the kernel's own (default, main, "
			 "local); choose another", table);
		return -1;
	}
	*(uint32_t *)field = table;
	return 0;
}

/* metrics_listen: ADDRESS:PORT ([IPv6]:PORT), or empty (no listener); a
 * milter's inet: address without its prefix, so the same parser checks it. */
static int set_metrics_listen(void *field, char *value, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	char spec[SG_LISTEN_LEN + 8];
	socklen_t len;

	if (!value[0]) {
		*(char *)field = '\0';
		return 0;
	}
	if (strlen(value) >= SG_LISTEN_LEN) {
		snprintf(err, errlen, "'%s' is too long for an address and port", value);
		return -1;
	}
	snprintf(spec, sizeof(spec), "inet:%s", value);
	if (sg_parse_milter_address(spec, &addr, &len, err, errlen)) {
		snprintf(err, errlen, "'%s' is not ADDRESS:PORT (127.0.0.1:9425, [::1]:9425), or "
			 "empty for no metrics listener", value);
		return -1;
	}
	snprintf(field, SG_LISTEN_LEN, "%s", value);
	return 0;
}

/* redis: checked here (lib/shared_wire.c says what is wrong), kept as
 * written; none is kept empty. */
static int set_redis(void *field, char *value, char *err, size_t errlen)
{
	struct sg_redis_addr addr;

	if (sg_redis_addr_parse(value, &addr, err, errlen))
		return -1;
	if (strlen(value) >= SG_PATH_LEN) {
		snprintf(err, errlen, "'%s' is longer than %d characters", value, SG_PATH_LEN - 1);
		return -1;
	}
	snprintf(field, SG_PATH_LEN, "%s", addr.kind == SG_REDIS_NONE ? "" : value);
	return 0;
}

/* The classifier masks IPv6 senders by whole bytes. */
static int set_ipv6_source_prefix(void *field, char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (sg_parse_uint(value, 48, 128, &v, err, errlen))
		return -1;
	if (v % 8) {
		snprintf(err, errlen, "%s is not a multiple of 8 (e.g. 56, 64, 128)", value);
		return -1;
	}
	*(int *)field = (int)v;
	return 0;
}

/* OpenSSL's names for the versions; the field holds 10 (TLSv1) to 13. */
static int set_tls_min_version(void *field, char *value, char *err, size_t errlen)
{
	static const char *const versions[] = { "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3" };

	for (int i = 0; i < (int)(sizeof(versions) / sizeof(versions[0])); i++) {
		if (strcmp(value, versions[i]) == 0) {
			*(int *)field = 10 + i;
			return 0;
		}
	}
	snprintf(err, errlen, "'%s' is not one of TLSv1|TLSv1.1|TLSv1.2|TLSv1.3", value);
	return -1;
}

/* A ticket key lives two periods (it decrypts one more after it stops
 * encrypting): a week at most keeps that within RFC 8446's 7-day ticket
 * lifetime times two, and a second at least keeps resumption possible. */
static int set_tls_ticket_key_rotation(void *field, char *value, char *err, size_t errlen)
{
	uint64_t ns;

	if (sg_parse_duration(value, &ns, err, errlen))
		return -1;
	if (ns < 1000000000ULL || ns > 7ULL * 86400 * 1000000000ULL) {
		snprintf(err, errlen, "'%s' is not from 1s to 7d (e.g. 12h)", value);
		return -1;
	}
	*(uint64_t *)field = ns;
	return 0;
}

static const char *const milter_action_names[] = {
	[SG_MILTER_TEMPFAIL] = "tempfail", [SG_MILTER_ACCEPT] = "accept",
	[SG_MILTER_REJECT] = "reject", NULL,
};

/* The ladder's top steps, as smtpguardctl rate-class set --ladder names
 * them (enum sg_ladder_step). */
static const char *const ladder_names[] = {
	[SG_LADDER_NORMAL] = "off", [SG_LADDER_FLAGGED] = "flag",
	[SG_LADDER_TEMPFAIL] = "tempfail", [SG_LADDER_REFUSED] = "refuse", NULL,
};

/* Durations apart by blanks or commas, each longer than the one before. */
static int set_penalties(void *field, char *value, char *err, size_t errlen)
{
	struct sg_penalties *p = field;
	char *save = NULL;

	memset(p, 0, sizeof(*p));
	for (char *d = strtok_r(value, " \t,", &save); d; d = strtok_r(NULL, " \t,", &save)) {
		if (p->n == SG_MAX_PENALTIES) {
			snprintf(err, errlen, "more than %d penalties", SG_MAX_PENALTIES);
			return -1;
		}
		if (sg_parse_duration(d, &p->ns[p->n], err, errlen))
			return -1;
		if (!p->ns[p->n] || (p->n && p->ns[p->n] < p->ns[p->n - 1])) {
			snprintf(err, errlen, "'%s': each penalty is longer than 0 and at least the "
				 "one before (e.g. 1h 6h 24h)", d);
			return -1;
		}
		p->n++;
	}
	if (!p->n) {
		snprintf(err, errlen, "no penalty given (e.g. 1h 6h 24h)");
		return -1;
	}
	return 0;
}

/* Postfix's milters: addresses apart by blanks or commas, each checked. */
static int set_milters(void *field, char *value, char *err, size_t errlen)
{
	struct sg_milter_list *list = field;
	char *save = NULL;

	memset(list, 0, sizeof(*list));
	for (char *m = strtok_r(value, " \t,", &save); m; m = strtok_r(NULL, " \t,", &save)) {
		struct sockaddr_storage addr;
		socklen_t len;

		if (list->n == SG_MAX_MILTERS) {
			snprintf(err, errlen, "more than %d milters", SG_MAX_MILTERS);
			return -1;
		}
		if (sg_parse_milter_address(m, &addr, &len, err, errlen))
			return -1;
		snprintf(list->addr[list->n++], SG_MILTER_ADDR_LEN, "%s", m);
	}
	return 0;
}

#define FIELD_SIZE(member) sizeof(((struct sg_config *)0)->member)
/* A row: name, type, field, reload scope, default text, then what the type
 * needs: RANGE for UINT, .names for ENUM, WITH for a field that goes with it
 * (a count, a burst), .max for a PATH shorter than its field, .set for CUSTOM. */
#define KEY(key, kind, member, scope, def, ...)					\
	{ .name = key, .type = SG_KEY_##kind, .reload = SG_RELOAD_##scope,	\
	  .default_text = def, .offset = offsetof(struct sg_config, member),	\
	  .size = FIELD_SIZE(member), __VA_ARGS__ }
#define WITH(member) .pair_offset = offsetof(struct sg_config, member), \
		     .pair_size = FIELD_SIZE(member)
#define RANGE(lo, hi) .min = (lo), .max = (hi)

/*
 * Every key, in the order etc/smtpguard.conf documents them. RESTART: read
 * only at start: where and how the classifier attaches, the proxy's workers,
 * listeners and policy routing, and the passthrough mover (the sockmap
 * mover's program is loaded at start). Everything else is LIVE: the
 * classifier's settings map and default rate class are written again, the
 * GC reads its keys at each run, and new proxy sessions take the rest.
 */
static const struct sg_config_key config_keys[] = {
	/* maps are pinned as ROOT/NAME: room for the longest name */
	KEY("bpffs_root", PATH, bpffs_root, RESTART, "/sys/fs/bpf/smtpguard",
	    .max = SG_PATH_LEN - 33),
	KEY("interfaces", IFACES, interfaces, RESTART, "tap* vnet* macvtap*", WITH(n_interfaces)),
	KEY("attach", ENUM, attach_mode, RESTART, "tc", .names = attach_names),
	KEY("xdp_mode", ENUM, xdp_generic, RESTART, "native", .names = xdp_mode_names),
	KEY("smtp_ports", PORTS, smtp_ports, LIVE, "25", WITH(n_smtp_ports)),
	KEY("implicit_tls_ports", PORTS_OR_NONE, implicit_tls_ports, LIVE, "465",
	    WITH(n_implicit_tls_ports)),
	KEY("default_action", ENUM, default_action, LIVE, "scan", .names = action_names),
	KEY("default_tls_mode", ENUM, default_tls_mode, LIVE, "passthrough",
	    .names = tls_mode_names),
	KEY("default_source_mode", ENUM, default_source_mode, LIVE, "transparent",
	    .names = source_mode_names),
	KEY("default_conn_rate", RATE, default_conn_interval_ns, LIVE, "60/min"),
	KEY("default_conn_burst", UINT, default_conn_burst, LIVE, "20", RANGE(1, 1000000)),
	KEY("default_msg_rate", LIMIT, default_msg_interval_ns, LIVE, "none",
	    WITH(default_msg_burst)),
	KEY("default_rcpt_rate", LIMIT, default_rcpt_interval_ns, LIVE, "none",
	    WITH(default_rcpt_burst)),
	KEY("default_max_sessions", UINT, default_max_sessions, LIVE, "50", RANGE(0, 1000000)),
	KEY("refuse", ENUM, refuse_mode, LIVE, "drop", .names = refuse_names),
	KEY("malformed", ENUM, malformed_mode, LIVE, "drop", .names = malformed_names),
	KEY("ipv6_source_prefix", CUSTOM, ipv6_source_prefix, LIVE, "64",
	    .set = set_ipv6_source_prefix),
	KEY("source_check", ENUM, source_check, LIVE, "auto", .names = source_check_names),
	KEY("source_bindings", PATH, source_bindings, LIVE, ""),
	KEY("source_learn", UINT, source_learn, LIVE, "8", RANGE(0, 1000)),
	KEY("source_learn_idle", DURATION, source_learn_idle_ns, LIVE, "1d"),
	KEY("source_state_max", UINT, source_state_max, LIVE, "4096", RANGE(0, SG_MAX_SOURCES)),
	KEY("detach_on_exit", BOOL, detach_on_exit, LIVE, "no"),
	KEY("state_idle_timeout", DURATION, state_idle_timeout_ns, LIVE, "1h"),
	KEY("gc_interval", DURATION, gc_interval_ns, LIVE, "60s"),
	KEY("reconcile_interval", DURATION, reconcile_interval_ns, LIVE, "5s"),
	/* on: what smtpguard is for; the uplink is found when not set */
	KEY("proxy", BOOL, proxy, RESTART, "yes"),
	/* 0: one per core */
	KEY("proxy_workers", UINT, proxy_workers, RESTART, "0", RANGE(0, SG_MAX_WORKERS)),
	KEY("proxy_user", CUSTOM, proxy_user, RESTART, "smtpguard", .set = set_proxy_user),
	KEY("uplink", IFACES, uplinks, RESTART, "", WITH(n_uplinks)),
	KEY("steer_mark", CUSTOM, steer_mark, RESTART, "0x5347", .set = set_steer_mark),
	KEY("route_table", CUSTOM, route_table, RESTART, "5347", .set = set_route_table),
	KEY("fail_mode", ENUM, fail_mode, LIVE, "open", .names = fail_mode_names),
	KEY("connect_timeout", DURATION, connect_timeout_ns, LIVE, "30s"),
	KEY("steer_mode", ENUM, steer_mode, LIVE, "all", .names = steer_mode_names),
	KEY("steer_soft_percent", UINT, steer_soft_percent, LIVE, "50", RANGE(0, 100)),
	KEY("steer_sample", UINT, steer_sample, LIVE, "0", RANGE(0, 1000000)),
	KEY("suspect_duration", DURATION, suspect_duration_ns, LIVE, "1h"),
	KEY("relay_ip4", IPV4, relay_ip4, LIVE, ""),
	KEY("relay_ip6", IPV6, relay_ip6, LIVE, ""),
	KEY("escalation_rejects", UINT, escalation_rejects, LIVE, "5", RANGE(0, 1000000)),
	KEY("escalation_window", DURATION, escalation_window_ns, LIVE, "10m"),
	KEY("default_ladder", ENUM, default_ladder, LIVE, "refuse", .names = ladder_names),
	KEY("ladder_penalties", CUSTOM, ladder_penalties, LIVE, "1h 6h 24h",
	    .set = set_penalties),
	KEY("ladder_dwell", DURATION, ladder_dwell_ns, LIVE, "1s"),
	KEY("ladder_tempfail", DURATION, ladder_tempfail_ns, LIVE, "1h"),
	KEY("ladder_forget", DURATION, ladder_forget_ns, LIVE, "7d"),
	KEY("ladder_allow", PATH, ladder_allow, LIVE, ""),
	KEY("tenants", PATH, tenants, LIVE, ""),
	KEY("tenants_proxmox", PATH, tenants_proxmox, LIVE, ""),
	KEY("tenants_libvirt", PATH, tenants_libvirt, LIVE, ""),
	/* proxy/webhook.c's sender is made at start: restart keys */
	KEY("webhook_urls", STRING, webhook_urls, RESTART, ""),
	KEY("webhook_timeout", DURATION, webhook_timeout_ns, RESTART, "5s"),
	KEY("webhook_max_attempts", UINT, webhook_max_attempts, RESTART, "10", RANGE(1, 1000)),
	KEY("webhook_max_age", DURATION, webhook_max_age_ns, RESTART, "1h"),
	KEY("webhook_queue_events", UINT, webhook_queue_events, RESTART, "1000", RANGE(1, 100000)),
	KEY("webhook_tls_ca_file", PATH, webhook_tls_ca_file, RESTART, ""),
	/* scan/behaviour.h says what each default lets through, and what not */
	KEY("behaviour_messages", UINT, behaviour_messages, LIVE, "1000", RANGE(0, 100000000)),
	KEY("behaviour_rcpts", UINT, behaviour_rcpts, LIVE, "2000", RANGE(0, 100000000)),
	KEY("behaviour_rcpt_domains", UINT, behaviour_rcpt_domains, LIVE, "200", RANGE(0, 100000000)),
	KEY("behaviour_burst", UINT, behaviour_burst, LIVE, "120", RANGE(0, 100000000)),
	KEY("behaviour_mail_from_domains", UINT, behaviour_mail_from_domains, LIVE, "20", RANGE(0, 100000000)),
	KEY("behaviour_tls_sessions", UINT, behaviour_tls_sessions, LIVE, "600", RANGE(0, 100000000)),
	KEY("behaviour_tls_mx", UINT, behaviour_tls_mx, LIVE, "100", RANGE(0, 100000000)),
	KEY("behaviour_tls_greetings", UINT, behaviour_tls_greetings, LIVE, "100", RANGE(0, 100000000)),
	KEY("behaviour_over_usual", UINT, behaviour_over_usual, LIVE, "10", RANGE(0, 100000000)),
	KEY("behaviour_unknown_pct", UINT, behaviour_unknown_pct, LIVE, "10", RANGE(0, 100)),
	KEY("behaviour_unknown_min_rcpts", UINT, behaviour_unknown_min_rcpts, LIVE, "50", RANGE(0, 100000000)),
	KEY("behaviour_policy_refusals", UINT, behaviour_policy_refusals, LIVE, "10", RANGE(0, 100000000)),
	KEY("behaviour_outbreak_senders", UINT, behaviour_outbreak_senders, LIVE, "2", RANGE(0, 100000000)),
	KEY("behaviour_new_sender_pct", UINT, behaviour_new_sender_pct, LIVE, "50", RANGE(1, 100)),
	KEY("behaviour_new_sender", DURATION, behaviour_new_sender_ns, LIVE, "24h"),
	KEY("behaviour_senders", UINT, behaviour_senders, RESTART, "65536", RANGE(1024, 16777216)),
	/* RFC 5321 wants 512 for a command line; the relay's buffers hold 4000 */
	KEY("smtp_line_limit", UINT, smtp_line_limit, LIVE, "2048", RANGE(512, 4000)),
	KEY("smtp_command_limit", UINT, smtp_command_limit, LIVE, "1000", RANGE(10, 1000000)),
	KEY("smtp_recipient_limit", UINT, smtp_recipient_limit, LIVE, "1000", RANGE(1, 100000)),
	KEY("smtp_message_size_limit", UINT, smtp_message_size_limit, LIVE, "104857600",
	    RANGE(1024, 1ULL << 40)),
	KEY("smtp_idle_timeout", DURATION, smtp_idle_timeout_ns, LIVE, "300s"),
	KEY("smtp_session_timeout", DURATION, smtp_session_timeout_ns, LIVE, "3600s"),
	KEY("smtp_min_data_rate", UINT, smtp_min_data_rate, LIVE, "500", RANGE(0, 1000000000)),
	KEY("shutdown_timeout", DURATION, shutdown_timeout_ns, LIVE, "60s"),
	KEY("drain_timeout", DURATION, drain_timeout_ns, LIVE, "5m"),
	KEY("content_rules", PATH, content_rules, LIVE, ""),
	KEY("content_scan", BOOL, content_scan, LIVE, "yes"),
	KEY("scan_timeout", DURATION, scan_timeout_ns, LIVE, "60s"),
	KEY("scan_timeout_action", ENUM, scan_timeout_action, LIVE, "tempfail",
	    .names = scan_action_names),
	/* Postfix's names and defaults */
	KEY("milters", CUSTOM, milters, LIVE, "", .set = set_milters),
	KEY("milter_connect_timeout", DURATION, milter_connect_timeout_ns, LIVE, "30s"),
	KEY("milter_command_timeout", DURATION, milter_command_timeout_ns, LIVE, "30s"),
	KEY("milter_content_timeout", DURATION, milter_content_timeout_ns, LIVE, "300s"),
	KEY("milter_default_action", ENUM, milter_default_action, LIVE, "tempfail",
	    .names = milter_action_names),
	KEY("events_file", PATH_OR_DASH, events_file, LIVE, ""),
	/* off by default: a port opened on every host (and a clash between
	 * two instances on one) only where the operator asks for it */
	KEY("metrics_listen", CUSTOM, metrics_listen, RESTART, "", .set = set_metrics_listen),
	KEY("metrics_remote", BOOL, metrics_remote, RESTART, "no"),
	/* the shared store: none keeps everything local, as without one */
	KEY("redis", CUSTOM, redis, RESTART, "none", .set = set_redis),
	KEY("redis_password_file", PATH, redis_password_file, RESTART, ""),
	KEY("redis_sync_interval", DURATION, redis_sync_interval_ns, RESTART, "1s"),
	KEY("redis_timeout", DURATION, redis_timeout_ns, RESTART, "3s"),
	KEY("shared_conn_rate", LIMIT, shared_conn_interval_ns, LIVE, "none",
	    WITH(shared_conn_burst)),
	KEY("shared_msg_rate", LIMIT, shared_msg_interval_ns, LIVE, "none",
	    WITH(shared_msg_burst)),
	KEY("shared_penalty", DURATION, shared_penalty_ns, LIVE, "10m"),
	KEY("shared_prefix_v4", UINT, shared_prefix_v4, LIVE, "32", RANGE(8, 32)),
	KEY("shared_prefix_v6", UINT, shared_prefix_v6, LIVE, "64", RANGE(16, 128)),
	KEY("shared_senders_max", UINT, shared_senders_max, RESTART, "65536",
	    RANGE(1024, SG_MAX_SOURCES)),
	/* splice: the fastest measured (README) */
	KEY("tls_mover", ENUM, tls_mover, RESTART, "splice", .names = mover_names),
	KEY("tls_cert_file", PATH, tls_cert_file, LIVE, ""),
	KEY("tls_key_file", PATH, tls_key_file, LIVE, ""),
	KEY("tls_mx_verify", ENUM, tls_mx_verify, LIVE, "none", .names = tls_verify_names),
	KEY("tls_ca_file", PATH, tls_ca_file, LIVE, ""),
	KEY("tls_mx_names", PATH, tls_mx_names, LIVE, ""),
	KEY("tls_ticket_key_rotation", CUSTOM, tls_ticket_key_rotation_ns, LIVE, "12h",
	    .set = set_tls_ticket_key_rotation),
	KEY("tls_mx_without_starttls", ENUM, tls_mx_without_starttls, LIVE, "mirror",
	    .names = tls_missing_names),
	KEY("tls_min_version", CUSTOM, tls_min_version, LIVE, "TLSv1.2",
	    .set = set_tls_min_version),
	/* forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's own */
	KEY("tls_ciphers", STRING, tls_ciphers, LIVE,
	    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"),
	KEY("tls_ciphersuites", STRING, tls_ciphersuites, LIVE, ""),
	KEY("tls_handshake_timeout", DURATION, tls_handshake_timeout_ns, LIVE, "30s"),
};
#define N_KEYS (sizeof(config_keys) / sizeof(config_keys[0]))

const struct sg_config_key *sg_config_keys(size_t *count)
{
	*count = N_KEYS;
	return config_keys;
}

static const struct sg_config_key *find_key(const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* Keys that are gone, each with what replaces it: a config that still
 * says one is told how to move on, not just that the key is unknown. */
static const struct {
	const char *name, *instead;
} retired_keys[] = {
	{ "scan_patterns", "scan_patterns is gone: write the rules as content rules "
	  "(content_rules = FILE; docs/content-rules.md): 'body REGEX' becomes "
	  "'NAME body /REGEX/i', 'header REGEX' becomes 'NAME header /REGEX/i'" },
	{ "escalation_penalty", "escalation_penalty is gone: a refused sender's penalty "
	  "grows on repeat, set it as ladder_penalties (e.g. 'ladder_penalties = 1h 6h 24h'; "
	  "one duration for a fixed penalty)" },
};

static const char *retired_key(const char *name)
{
	for (size_t i = 0; i < sizeof(retired_keys) / sizeof(retired_keys[0]); i++)
		if (strcmp(retired_keys[i].name, name) == 0)
			return retired_keys[i].instead;
	return NULL;
}

/* The readers of the types. A reader checks the whole value before it
 * writes, and writes the whole field (no bytes of an earlier value stay
 * behind), so that a reload's byte comparison sees only real changes. */

static void store_uint(void *field, size_t size, uint64_t v)
{
	switch (size) {
	case sizeof(uint8_t): *(uint8_t *)field = (uint8_t)v; break;
	case sizeof(uint16_t): *(uint16_t *)field = (uint16_t)v; break;
	case sizeof(uint32_t): *(uint32_t *)field = (uint32_t)v; break;
	default: *(uint64_t *)field = v; break;
	}
}

static void store_text(void *field, size_t size, const char *value)
{
	memset(field, 0, size);
	memcpy(field, value, strlen(value));
}

static int read_enum(const struct sg_config_key *key, int *field, const char *value,
		     char *err, size_t errlen)
{
	char accepted[128] = "";

	for (int i = 0; key->names[i]; i++) {
		if (strcmp(value, key->names[i]) == 0) {
			*field = i;
			return 0;
		}
		snprintf(accepted + strlen(accepted), sizeof(accepted) - strlen(accepted),
			 "%s%s", i ? "|" : "", key->names[i]);
	}
	snprintf(err, errlen, "'%s' is not one of %s", value, accepted);
	return -1;
}

static int read_path(const struct sg_config_key *key, void *field, const char *value,
		     char *err, size_t errlen)
{
	size_t longest = key->max ? key->max : key->size - 1;
	int dash_ok = key->type == SG_KEY_PATH_OR_DASH;

	if ((value[0] != '/' && !(dash_ok && strcmp(value, "-") == 0)) ||
	    strlen(value) > longest) {
		snprintf(err, errlen, "'%s' is not an absolute path%s of at most %zu characters",
			 value, dash_ok ? " (or - for stdout)" : "", longest);
		return -1;
	}
	store_text(field, key->size, value);
	return 0;
}

static int read_ports(const struct sg_config_key *key, void *field, int *count, char *value,
		      char *err, size_t errlen)
{
	int none = key->type == SG_KEY_PORTS_OR_NONE && strcmp(value, "none") == 0;
	char *save = NULL, *tok, perr[SG_ERR_LEN - 8];	/* room for "port " */
	uint16_t ports[SG_MAX_SMTP_PORTS] = {};
	size_t room = key->size / sizeof(ports[0]);
	size_t n = 0;
	uint64_t port;

	if (room > SG_MAX_SMTP_PORTS)
		room = SG_MAX_SMTP_PORTS;
	for (tok = none ? NULL : strtok_r(value, " \t,", &save); tok;
	     tok = strtok_r(NULL, " \t,", &save)) {
		if (n == room) {
			snprintf(err, errlen, "more than %zu ports", room);
			return -1;
		}
		if (sg_parse_uint(tok, 1, 65535, &port, perr, sizeof(perr))) {
			snprintf(err, errlen, "port %s", perr);
			return -1;
		}
		ports[n++] = (uint16_t)port;
	}
	if (n == 0 && !none) {
		snprintf(err, errlen, "no port given (expected e.g. '25 587')");
		return -1;
	}
	memset(field, 0, key->size);
	memcpy(field, ports, n * sizeof(ports[0]));
	*count = (int)n;
	return 0;
}

static int read_patterns(const struct sg_config_key *key, void *field, int *count, char *value,
			 char *err, size_t errlen)
{
	char patterns[SG_MAX_IFACE_PATTERNS][SG_PATTERN_LEN] = {};
	size_t room = key->size / SG_PATTERN_LEN;
	char *save = NULL, *tok;
	size_t n = 0;

	if (room > SG_MAX_IFACE_PATTERNS)
		room = SG_MAX_IFACE_PATTERNS;
	for (tok = strtok_r(value, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		if (n == room) {
			snprintf(err, errlen, "more than %zu interface patterns", room);
			return -1;
		}
		if (strlen(tok) >= SG_PATTERN_LEN) {
			snprintf(err, errlen, "pattern '%s' is longer than an interface name (%d)",
				 tok, SG_PATTERN_LEN - 1);
			return -1;
		}
		memcpy(patterns[n++], tok, strlen(tok));
	}
	if (n == 0) {
		snprintf(err, errlen, "no interface pattern given (expected e.g. 'tap* vnet*')");
		return -1;
	}
	memset(field, 0, key->size);
	memcpy(field, patterns, n * SG_PATTERN_LEN);
	*count = (int)n;
	return 0;
}

static int read_address(const struct sg_config_key *key, void *field, const char *value,
			char *err, size_t errlen)
{
	int family = key->type == SG_KEY_IPV4 ? AF_INET : AF_INET6;
	unsigned char addr[16];

	if (inet_pton(family, value, addr) != 1 || strlen(value) >= key->size) {
		snprintf(err, errlen, "'%s' is not an %s address", value,
			 family == AF_INET ? "IPv4" : "IPv6");
		return -1;
	}
	store_text(field, key->size, value);
	return 0;
}

/* value: the key's text, trimmed and not empty (read in place: lists are
 * cut into tokens). */
static int set_key(struct sg_config *cfg, const struct sg_config_key *key, char *value,
		   char *err, size_t errlen)
{
	void *field = (char *)cfg + key->offset;
	void *pair = (char *)cfg + key->pair_offset;
	uint64_t v;

	switch (key->type) {
	case SG_KEY_BOOL:
		return sg_parse_bool(value, field, err, errlen);
	case SG_KEY_UINT:
		if (sg_parse_uint(value, key->min, key->max, &v, err, errlen))
			return -1;
		store_uint(field, key->size, v);
		return 0;
	case SG_KEY_DURATION:
		return sg_parse_duration(value, field, err, errlen);
	case SG_KEY_RATE:
		return sg_parse_rate(value, field, err, errlen);
	case SG_KEY_LIMIT:
		return sg_parse_limit(value, field, pair, err, errlen);
	case SG_KEY_ENUM:
		return read_enum(key, field, value, err, errlen);
	case SG_KEY_PATH:
	case SG_KEY_PATH_OR_DASH:
		return read_path(key, field, value, err, errlen);
	case SG_KEY_STRING:
		if (strlen(value) >= key->size) {
			snprintf(err, errlen, "longer than %zu characters", key->size - 1);
			return -1;
		}
		store_text(field, key->size, value);
		return 0;
	case SG_KEY_PORTS:
	case SG_KEY_PORTS_OR_NONE:
		return read_ports(key, field, pair, value, err, errlen);
	case SG_KEY_IFACES:
		return read_patterns(key, field, pair, value, err, errlen);
	case SG_KEY_IPV4:
	case SG_KEY_IPV6:
		return read_address(key, field, value, err, errlen);
	case SG_KEY_CUSTOM:
		return key->set(field, value, err, errlen);
	}
	snprintf(err, errlen, "key of unknown type %d", key->type);
	return -1;
}

void sg_config_defaults(struct sg_config *cfg)
{
	char value[SG_CONFIG_LINE_MAX], err[SG_ERR_LEN];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct sg_config_key *key = &config_keys[i];

		if (!key->default_text[0])
			continue;	/* unset: the zeroed field */
		snprintf(value, sizeof(value), "%s", key->default_text);
		if (set_key(cfg, key, value, err, sizeof(err))) {
			/* a row whose default its own type refuses: a bug
			 * here, which test_config catches before a release */
			fprintf(stderr, "config.c: the default of '%s', '%s': %s\n", key->name,
				key->default_text, err);
			abort();
		}
	}
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int sg_config_set(struct sg_config *cfg, const char *assignment, const char *origin,
		  int line, char *err, size_t errlen)
{
	char buf[SG_CONFIG_LINE_MAX], where[SG_PATH_LEN + 32], verr[SG_ERR_LEN];
	const struct sg_config_key *k;
	char *eq, *key, *value;

	if (line > 0)
		snprintf(where, sizeof(where), "%s, line %d", origin, line);
	else
		snprintf(where, sizeof(where), "%s", origin);
	if (strlen(assignment) >= sizeof(buf)) {
		snprintf(err, errlen, "%s: line longer than %d characters", where,
			 SG_CONFIG_LINE_MAX - 1);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", assignment);
	eq = strchr(buf, '=');
	if (!eq) {
		snprintf(err, errlen, "%s: '%s' is not 'key = value'", where, trim(buf));
		return -1;
	}
	*eq = '\0';
	key = trim(buf);
	value = trim(eq + 1);
	k = find_key(key);
	if (!k && retired_key(key)) {
		snprintf(err, errlen, "%s: %s", where, retired_key(key));
		return -1;
	}
	if (!k) {
		snprintf(err, errlen, "%s: unknown key '%s' (the keys are documented in "
			 "etc/smtpguard.conf; smtpguardd --list-keys lists them)", where, key);
		return -1;
	}
	if (!*value) {
		snprintf(err, errlen, "%s: key '%s' has no value", where, key);
		return -1;
	}
	if (set_key(cfg, k, value, verr, sizeof(verr))) {
		snprintf(err, errlen, "%s: key '%s': %s", where, key, verr);
		return -1;
	}
	return 0;
}

int sg_config_load(struct sg_config *cfg, const char *path, char *err, size_t errlen)
{
	char line[SG_CONFIG_LINE_MAX], logical[SG_CONFIG_LINE_MAX];
	int lineno = 0, logical_line = 0, ret = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
		return -1;
	}
	logical[0] = '\0';
	while (ret == 0) {
		char *got = fgets(line, sizeof(line), f);
		size_t len;

		if (got) {
			lineno++;
			len = strlen(line);
			if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
				snprintf(err, errlen, "%s, line %d: line longer than %d characters",
					 path, lineno, SG_CONFIG_LINE_MAX - 2);
				ret = -1;
				break;
			}
			line[strcspn(line, "\n")] = '\0';
			/* as in Postfix: blank lines and lines whose first
			 * non-blank character is '#' are ignored */
			{
				const char *first = line + strspn(line, " \t");

				if (*first == '#' || *first == '\0')
					continue;
			}
			/* a line starting with white space continues the previous one */
			if (isspace((unsigned char)line[0]) && logical[0]) {
				if (strlen(logical) + strlen(line) + 2 >= sizeof(logical)) {
					snprintf(err, errlen, "%s, line %d: continued line too long",
						 path, lineno);
					ret = -1;
					break;
				}
				strcat(logical, " ");
				strcat(logical, trim(line));
				continue;
			}
			if (isspace((unsigned char)line[0])) {
				snprintf(err, errlen, "%s, line %d: continuation line with no "
					 "'key = value' before it", path, lineno);
				ret = -1;
				break;
			}
		}
		if (logical[0])
			ret = sg_config_set(cfg, logical, path, logical_line, err, errlen);
		if (!got)
			break;
		snprintf(logical, sizeof(logical), "%s", line);
		logical_line = lineno;
	}
	fclose(f);
	return ret;
}

static int key_differs(const struct sg_config_key *key, const struct sg_config *a,
		       const struct sg_config *b)
{
	const char *pa = (const char *)a, *pb = (const char *)b;

	return memcmp(pa + key->offset, pb + key->offset, key->size) ||
	       memcmp(pa + key->pair_offset, pb + key->pair_offset, key->pair_size);
}

int sg_config_changed(const struct sg_config *a, const struct sg_config *b,
		      enum sg_reload_scope scope, char *names, size_t len)
{
	int n = 0;

	if (len)
		names[0] = '\0';
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct sg_config_key *key = &config_keys[i];
		size_t used = len ? strlen(names) : 0;

		if (key->reload != scope || !key_differs(key, a, b))
			continue;
		if (len && (size_t)snprintf(names + used, len - used, "%s%s", n ? ", " : "",
					    key->name) >= len - used && len > 4)
			memcpy(names + len - 4, "...", 4);
		n++;
	}
	return n;
}

void sg_config_apply_live(struct sg_config *running, const struct sg_config *fresh)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct sg_config_key *key = &config_keys[i];

		if (key->reload != SG_RELOAD_LIVE)
			continue;
		memcpy((char *)running + key->offset, (const char *)fresh + key->offset, key->size);
		memcpy((char *)running + key->pair_offset, (const char *)fresh + key->pair_offset,
		       key->pair_size);
	}
}

void sg_config_to_settings(const struct sg_config *cfg, struct sg_settings *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < cfg->n_smtp_ports && i < SG_MAX_SMTP_PORTS; i++)
		out->smtp_ports[i] = cfg->smtp_ports[i];
	out->default_action = (uint8_t)cfg->default_action;
	out->default_rate_class = SG_DEFAULT_RATE_CLASS;
	out->default_tls_mode = (uint8_t)cfg->default_tls_mode;
	out->default_source_mode = (uint8_t)cfg->default_source_mode;
	out->refuse_mode = (uint8_t)cfg->refuse_mode;
	out->malformed_mode = (uint8_t)cfg->malformed_mode;
	out->v6_source_prefix = (uint8_t)cfg->ipv6_source_prefix;
	for (int bit = 0; bit < cfg->ipv6_source_prefix && bit < 128; bit += 8)
		out->v6_sender_mask[bit / 8] = 0xff;
	out->steer_mark = cfg->proxy ? cfg->steer_mark : 0;
	out->fail_mode = (uint8_t)cfg->fail_mode;
	out->steer_mode = (uint8_t)cfg->steer_mode;
	out->steer_sample = cfg->steer_sample;
	out->steer_soft_percent = cfg->steer_soft_percent;
	out->source_check = (uint8_t)cfg->source_check;
	out->source_learn = cfg->source_learn;
	out->source_state_max = cfg->source_state_max;
	for (int i = 0; i < cfg->n_smtp_ports && i < SG_MAX_SMTP_PORTS; i++)
		for (int j = 0; j < cfg->n_implicit_tls_ports; j++)
			if (cfg->smtp_ports[i] == cfg->implicit_tls_ports[j])
				out->implicit_tls_ports |= (uint8_t)(1u << i);
	/* n_workers is written by the proxy once its listeners are in place */
}

int sg_listen_is_loopback(const char *listen)
{
	struct in6_addr a6;
	struct in_addr a4;
	char host[64];
	const char *colon = strrchr(listen, ':');
	size_t n = colon ? (size_t)(colon - listen) : 0;

	if (!n || n >= sizeof(host))
		return 0;
	memcpy(host, listen, n);
	host[n] = '\0';
	if (host[0] == '[' && host[n - 1] == ']') {
		host[n - 1] = '\0';
		return inet_pton(AF_INET6, host + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
	}
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

int sg_config_check(const struct sg_config *cfg, const char *origin, char *err, size_t errlen)
{
	if (cfg->source_check == SG_SOURCE_CHECK_BOUND && !cfg->source_bindings[0] &&
	    !cfg->source_learn) {
		snprintf(err, errlen, "%s: source_check = bound with neither source_bindings nor "
			 "source_learn would refuse every SMTP source: name a source_bindings "
			 "file, let interfaces learn (source_learn = 8), or use source_check = auto",
			 origin);
		return -1;
	}
	if (!cfg->tls_cert_file[0] != !cfg->tls_key_file[0]) {
		snprintf(err, errlen, "%s: tls_cert_file and tls_key_file go together (the "
			 "provider's certificate and its private key); only %s is set", origin,
			 cfg->tls_cert_file[0] ? "tls_cert_file" : "tls_key_file");
		return -1;
	}
	if (!cfg->redis[0] && (cfg->shared_conn_interval_ns || cfg->shared_msg_interval_ns)) {
		snprintf(err, errlen, "%s: shared_conn_rate and shared_msg_rate count across hosts "
			 "in the shared store, and redis = none: set redis (unix:/PATH or "
			 "tcp:HOST:PORT), or leave them at none", origin);
		return -1;
	}
	if (cfg->redis_password_file[0] && !cfg->redis[0]) {
		snprintf(err, errlen, "%s: redis_password_file is set and redis = none: set redis, "
			 "or remove redis_password_file", origin);
		return -1;
	}
	if (cfg->metrics_listen[0] && !cfg->metrics_remote && !sg_listen_is_loopback(cfg->metrics_listen)) {
		snprintf(err, errlen, "%s: metrics_listen = %s is not a loopback address: the "
			 "metrics tell anyone who can reach them how the host's VMs send mail. "
			 "Use 127.0.0.1:PORT (a local scraper, or a proxy in front), or set "
			 "metrics_remote = yes to serve them on that address", origin,
			 cfg->metrics_listen);
		return -1;
	}
	if (cfg->default_tls_mode == SG_TLS_TERMINATE && !cfg->tls_cert_file[0]) {
		snprintf(err, errlen, "%s: default_tls_mode = terminate needs tls_cert_file and "
			 "tls_key_file: the certificate the proxy shows the VMs", origin);
		return -1;
	}
	return 0;
}
