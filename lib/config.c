/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* config.c - smtpguardd's config file and --set overrides (see config.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "parse.h"

#define SG_CONFIG_LINE_MAX 4096

void sg_config_defaults(struct sg_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->bpffs_root, sizeof(cfg->bpffs_root), "/sys/fs/bpf/smtpguard");
	snprintf(cfg->interfaces[0], sizeof(cfg->interfaces[0]), "tap*");
	snprintf(cfg->interfaces[1], sizeof(cfg->interfaces[1]), "vnet*");
	cfg->n_interfaces = 2;
	cfg->attach_mode = SG_ATTACH_TC;
	cfg->smtp_ports[0] = 25;
	cfg->n_smtp_ports = 1;
	cfg->default_action = SG_ACTION_SCAN;
	cfg->default_tls_mode = SG_TLS_PASSTHROUGH;
	cfg->default_source_mode = SG_SOURCE_TRANSPARENT;
	cfg->default_conn_interval_ns = 1000000000ULL;	/* 60/min */
	cfg->default_conn_burst = 20;
	cfg->refuse_mode = SG_REFUSE_DROP;
	cfg->malformed_mode = SG_MALFORMED_DROP;
	cfg->ipv6_source_prefix = 64;
	cfg->detach_on_exit = 0;
	cfg->state_idle_timeout_ns = 3600ULL * 1000000000ULL;
	cfg->gc_interval_ns = 60ULL * 1000000000ULL;
	cfg->proxy = 0;
	cfg->proxy_workers = 0;		/* 0: one per core */
	cfg->n_uplinks = 0;
	cfg->steer_mark = 0x5347;
	cfg->route_table = 5347;
	cfg->fail_mode = SG_FAIL_OPEN;
	cfg->connect_timeout_ns = 30ULL * 1000000000ULL;
	cfg->steer_mode = SG_STEER_ALL;
	cfg->steer_sample = 0;
	cfg->steer_soft_percent = 50;
	cfg->suspect_duration_ns = 3600ULL * 1000000000ULL;
	cfg->escalation_rejects = 5;
	cfg->escalation_window_ns = 600ULL * 1000000000ULL;
	cfg->escalation_penalty_ns = 3600ULL * 1000000000ULL;
	cfg->smtp_line_limit = 2048;
	cfg->smtp_command_limit = 1000;
	cfg->smtp_recipient_limit = 1000;
	cfg->smtp_message_size_limit = 52428800;
	cfg->smtp_idle_timeout_ns = 300ULL * 1000000000ULL;
	cfg->smtp_session_timeout_ns = 3600ULL * 1000000000ULL;
	cfg->scan_timeout_ns = 60ULL * 1000000000ULL;
	cfg->scan_timeout_action = SG_SCAN_TEMPFAIL;
	cfg->implicit_tls_ports[0] = 465;
	cfg->n_implicit_tls_ports = 1;
	cfg->tls_mx_verify = SG_TLS_VERIFY_NONE;
	cfg->tls_mx_without_starttls = SG_TLS_MIRROR;
	cfg->tls_min_version = 12;
	/* forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's own */
	snprintf(cfg->tls_ciphers, sizeof(cfg->tls_ciphers),
		 "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL");
	cfg->tls_handshake_timeout_ns = 30ULL * 1000000000ULL;
	cfg->tls_mover = SG_MOVER_SPLICE;	/* the fastest measured (README) */
}

typedef int (*sg_key_setter)(struct sg_config *cfg, char *value, char *err, size_t errlen);

static int set_enum(int *field, int v, const char *value, const char *accepted,
		    char *err, size_t errlen)
{
	if (v < 0) {
		snprintf(err, errlen, "'%s' is not one of %s", value, accepted);
		return -1;
	}
	*field = v;
	return 0;
}

static int set_bpffs_root(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	if (value[0] != '/' || strlen(value) >= sizeof(cfg->bpffs_root) - 32) {
		snprintf(err, errlen, "'%s' is not an absolute path of at most %zu characters",
			 value, sizeof(cfg->bpffs_root) - 33);
		return -1;
	}
	snprintf(cfg->bpffs_root, sizeof(cfg->bpffs_root), "%s", value);
	return 0;
}

static int set_patterns(char patterns[][16], int *count, char *value, char *err,
			size_t errlen)
{
	char *save = NULL, *tok;
	int n = 0;

	for (tok = strtok_r(value, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		if (n == SG_MAX_IFACE_PATTERNS) {
			snprintf(err, errlen, "more than %d interface patterns", SG_MAX_IFACE_PATTERNS);
			return -1;
		}
		if (strlen(tok) >= 16) {
			snprintf(err, errlen, "pattern '%s' is longer than an interface name (15)", tok);
			return -1;
		}
		snprintf(patterns[n++], 16, "%s", tok);
	}
	if (n == 0) {
		snprintf(err, errlen, "no interface pattern given (expected e.g. 'tap* vnet*')");
		return -1;
	}
	*count = n;
	return 0;
}

static int set_interfaces(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_patterns(cfg->interfaces, &cfg->n_interfaces, value, err, errlen);
}

static int set_uplinks(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_patterns(cfg->uplinks, &cfg->n_uplinks, value, err, errlen);
}

static int set_proxy(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_bool(value, &cfg->proxy, err, errlen);
}

static int set_proxy_workers(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (sg_parse_uint(value, 0, SG_MAX_WORKERS, &v, err, errlen))
		return -1;
	cfg->proxy_workers = (int)v;
	return 0;
}

static int set_u32_nonzero(uint32_t *field, const char *value, char *err, size_t errlen)
{
	uint64_t v;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 0);
	if (errno || *end || end == value || v == 0 || v > UINT32_MAX) {
		snprintf(err, errlen, "'%s' is not a number from 1 to %u (decimal or 0x hex)",
			 value, UINT32_MAX);
		return -1;
	}
	*field = (uint32_t)v;
	return 0;
}

static int set_steer_mark(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_u32_nonzero(&cfg->steer_mark, value, err, errlen);
}

static int set_route_table(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	if (set_u32_nonzero(&cfg->route_table, value, err, errlen))
		return -1;
	if (cfg->route_table >= 252 && cfg->route_table <= 255) {
		snprintf(err, errlen, "table %u is one of the kernel's own (default, main, "
			 "local); choose another", cfg->route_table);
		return -1;
	}
	return 0;
}

static int set_fail_mode(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	int v = !strcmp(value, "open") ? SG_FAIL_OPEN : !strcmp(value, "closed") ? SG_FAIL_CLOSED : -1;

	return set_enum(&cfg->fail_mode, v, value, "open|closed", err, errlen);
}

static int set_default_msg_rate(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_limit(value, &cfg->default_msg_interval_ns, &cfg->default_msg_burst, err,
			      errlen);
}

static int set_default_rcpt_rate(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_limit(value, &cfg->default_rcpt_interval_ns, &cfg->default_rcpt_burst,
			      err, errlen);
}

static int set_steer_mode(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	int v = !strcmp(value, "all") ? SG_STEER_ALL : !strcmp(value, "suspect") ?
		SG_STEER_SUSPECT : -1;

	return set_enum(&cfg->steer_mode, v, value, "all|suspect", err, errlen);
}

static int set_steer_sample(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (sg_parse_uint(value, 0, 1000000, &v, err, errlen))
		return -1;
	cfg->steer_sample = (uint32_t)v;
	return 0;
}

static int set_steer_soft_percent(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (sg_parse_uint(value, 0, 100, &v, err, errlen))
		return -1;
	cfg->steer_soft_percent = (uint32_t)v;
	return 0;
}

static int set_suspect_duration(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_duration(value, &cfg->suspect_duration_ns, err, errlen);
}

static int set_relay_ip(char *field, size_t len, int family, const char *value, char *err,
			size_t errlen)
{
	unsigned char buf[16];

	if (inet_pton(family, value, buf) != 1 || strlen(value) >= len) {
		snprintf(err, errlen, "'%s' is not an %s address", value,
			 family == AF_INET ? "IPv4" : "IPv6");
		return -1;
	}
	snprintf(field, len, "%s", value);
	return 0;
}

static int set_relay_ip4(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_relay_ip(cfg->relay_ip4, sizeof(cfg->relay_ip4), AF_INET, value, err, errlen);
}

static int set_relay_ip6(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_relay_ip(cfg->relay_ip6, sizeof(cfg->relay_ip6), AF_INET6, value, err, errlen);
}

static int set_escalation_rejects(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (sg_parse_uint(value, 0, 1000000, &v, err, errlen))
		return -1;
	cfg->escalation_rejects = (uint32_t)v;
	return 0;
}

static int set_escalation_window(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_duration(value, &cfg->escalation_window_ns, err, errlen);
}

static int set_escalation_penalty(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_duration(value, &cfg->escalation_penalty_ns, err, errlen);
}

static int set_connect_timeout(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_duration(value, &cfg->connect_timeout_ns, err, errlen);
}

static int set_attach(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	int mode = sg_attach_mode_from_name(value);

	if (mode == SG_ATTACH_UPLINK || mode == SG_ATTACH_BRIDGE)
		mode = -1;	/* the daemon's own, not a choice */
	return set_enum(&cfg->attach_mode, mode, value,
			"tc|xdp", err, errlen);
}

static int set_xdp_mode(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	if (strcmp(value, "native") && strcmp(value, "generic")) {
		snprintf(err, errlen, "'%s' is not one of native|generic", value);
		return -1;
	}
	cfg->xdp_generic = strcmp(value, "generic") == 0;
	return 0;
}

static int set_ports(uint16_t *ports, int *count, char *value, char *err, size_t errlen)
{
	char *save = NULL, *tok, perr[SG_ERR_LEN];
	uint64_t port;
	int n = 0;

	for (tok = strtok_r(value, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
		if (n == SG_MAX_SMTP_PORTS) {
			snprintf(err, errlen, "more than %d ports", SG_MAX_SMTP_PORTS);
			return -1;
		}
		if (sg_parse_uint(tok, 1, 65535, &port, perr, sizeof(perr))) {
			snprintf(err, errlen, "port %s", perr);
			return -1;
		}
		ports[n++] = (uint16_t)port;
	}
	if (n == 0) {
		snprintf(err, errlen, "no port given (expected e.g. '25 587')");
		return -1;
	}
	for (int i = n; i < SG_MAX_SMTP_PORTS; i++)
		ports[i] = 0;
	*count = n;
	return 0;
}

static int set_smtp_ports(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_ports(cfg->smtp_ports, &cfg->n_smtp_ports, value, err, errlen);
}

static int set_default_action(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_enum(&cfg->default_action, sg_action_from_name(value), value,
			SG_ACTION_NAMES, err, errlen);
}

static int set_default_tls_mode(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_enum(&cfg->default_tls_mode, sg_tls_mode_from_name(value), value,
			SG_TLS_MODE_NAMES, err, errlen);
}

static int set_default_source_mode(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_enum(&cfg->default_source_mode, sg_source_mode_from_name(value), value,
			SG_SOURCE_MODE_NAMES, err, errlen);
}

static int set_default_conn_rate(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_rate(value, &cfg->default_conn_interval_ns, err, errlen);
}

static int set_default_conn_burst(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (sg_parse_uint(value, 1, 1000000, &v, err, errlen))
		return -1;
	cfg->default_conn_burst = (uint32_t)v;
	return 0;
}

static int set_refuse(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_enum(&cfg->refuse_mode, sg_refuse_mode_from_name(value), value,
			"drop|rst", err, errlen);
}

static int set_malformed(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_enum(&cfg->malformed_mode, sg_malformed_mode_from_name(value), value,
			"drop|pass", err, errlen);
}

static int set_ipv6_source_prefix(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	uint64_t v;

	if (sg_parse_uint(value, 48, 128, &v, err, errlen))
		return -1;
	if (v % 8) {
		snprintf(err, errlen, "%s is not a multiple of 8 (e.g. 56, 64, 128)", value);
		return -1;
	}
	cfg->ipv6_source_prefix = (int)v;
	return 0;
}

static int set_detach_on_exit(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_bool(value, &cfg->detach_on_exit, err, errlen);
}

static int set_state_idle_timeout(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_duration(value, &cfg->state_idle_timeout_ns, err, errlen);
}

static int set_gc_interval(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_duration(value, &cfg->gc_interval_ns, err, errlen);
}

static int set_u32_range(uint32_t *field, const char *value, uint64_t min, uint64_t max,
			 char *err, size_t errlen)
{
	uint64_t v;

	if (sg_parse_uint(value, min, max, &v, err, errlen))
		return -1;
	*field = (uint32_t)v;
	return 0;
}

static int set_smtp_line_limit(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	/* RFC 5321 wants 512 for a command line; the relay's buffers hold 4000 */
	return set_u32_range(&cfg->smtp_line_limit, value, 512, 4000, err, errlen);
}

static int set_smtp_command_limit(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_u32_range(&cfg->smtp_command_limit, value, 10, 1000000, err, errlen);
}

static int set_smtp_recipient_limit(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_u32_range(&cfg->smtp_recipient_limit, value, 1, 100000, err, errlen);
}

static int set_smtp_message_size_limit(struct sg_config *cfg, char *value, char *err,
				       size_t errlen)
{
	return sg_parse_uint(value, 1024, 1ULL << 40, &cfg->smtp_message_size_limit, err, errlen);
}

static int set_smtp_idle_timeout(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_duration(value, &cfg->smtp_idle_timeout_ns, err, errlen);
}

static int set_smtp_session_timeout(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_duration(value, &cfg->smtp_session_timeout_ns, err, errlen);
}

static int set_scan_patterns(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	if (value[0] != '/' || strlen(value) >= sizeof(cfg->scan_patterns)) {
		snprintf(err, errlen, "'%s' is not an absolute path of at most %zu characters",
			 value, sizeof(cfg->scan_patterns) - 1);
		return -1;
	}
	snprintf(cfg->scan_patterns, sizeof(cfg->scan_patterns), "%s", value);
	return 0;
}

static int set_scan_timeout(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return sg_parse_duration(value, &cfg->scan_timeout_ns, err, errlen);
}

static int set_scan_timeout_action(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	int v = !strcmp(value, "tempfail") ? SG_SCAN_TEMPFAIL : !strcmp(value, "accept") ?
		SG_SCAN_ACCEPT : -1;

	return set_enum(&cfg->scan_timeout_action, v, value, "tempfail|accept", err, errlen);
}

static int set_events_file(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	if ((value[0] != '/' && strcmp(value, "-")) || strlen(value) >= sizeof(cfg->events_file)) {
		snprintf(err, errlen, "'%s' is not an absolute path (or - for stdout) of at most "
			 "%zu characters", value, sizeof(cfg->events_file) - 1);
		return -1;
	}
	snprintf(cfg->events_file, sizeof(cfg->events_file), "%s", value);
	return 0;
}

static int set_implicit_tls_ports(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	if (strcmp(value, "none") == 0) {
		memset(cfg->implicit_tls_ports, 0, sizeof(cfg->implicit_tls_ports));
		cfg->n_implicit_tls_ports = 0;
		return 0;
	}
	return set_ports(cfg->implicit_tls_ports, &cfg->n_implicit_tls_ports, value, err, errlen);
}

static int set_path(char *field, size_t len, const char *value, char *err, size_t errlen)
{
	if (value[0] != '/' || strlen(value) >= len) {
		snprintf(err, errlen, "'%s' is not an absolute path of at most %zu characters",
			 value, len - 1);
		return -1;
	}
	snprintf(field, len, "%s", value);
	return 0;
}

static int set_tls_cert_file(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_path(cfg->tls_cert_file, sizeof(cfg->tls_cert_file), value, err, errlen);
}

static int set_tls_key_file(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_path(cfg->tls_key_file, sizeof(cfg->tls_key_file), value, err, errlen);
}

static int set_tls_ca_file(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	return set_path(cfg->tls_ca_file, sizeof(cfg->tls_ca_file), value, err, errlen);
}

static int set_tls_mx_verify(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	int v = strcmp(value, "none") == 0 ? SG_TLS_VERIFY_NONE :
		strcmp(value, "verify") == 0 ? SG_TLS_VERIFY_PEER : -1;

	return set_enum(&cfg->tls_mx_verify, v, value, "none|verify", err, errlen);
}

static int set_tls_mx_without_starttls(struct sg_config *cfg, char *value, char *err,
				       size_t errlen)
{
	int v = strcmp(value, "mirror") == 0 ? SG_TLS_MIRROR :
		strcmp(value, "require") == 0 ? SG_TLS_REQUIRE : -1;

	return set_enum(&cfg->tls_mx_without_starttls, v, value, "mirror|require", err, errlen);
}

static int set_tls_min_version(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	static const struct { const char *name; int v; } versions[] = {
		{ "TLSv1", 10 }, { "TLSv1.1", 11 }, { "TLSv1.2", 12 }, { "TLSv1.3", 13 },
	};

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		if (strcmp(value, versions[i].name) == 0) {
			cfg->tls_min_version = versions[i].v;
			return 0;
		}
	}
	snprintf(err, errlen, "'%s' is not one of TLSv1|TLSv1.1|TLSv1.2|TLSv1.3", value);
	return -1;
}

static int set_tls_ciphers(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	if (strlen(value) >= sizeof(cfg->tls_ciphers)) {
		snprintf(err, errlen, "longer than %zu characters", sizeof(cfg->tls_ciphers) - 1);
		return -1;
	}
	snprintf(cfg->tls_ciphers, sizeof(cfg->tls_ciphers), "%s", value);
	return 0;
}

static int set_tls_ciphersuites(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	if (strlen(value) >= sizeof(cfg->tls_ciphersuites)) {
		snprintf(err, errlen, "longer than %zu characters",
			 sizeof(cfg->tls_ciphersuites) - 1);
		return -1;
	}
	snprintf(cfg->tls_ciphersuites, sizeof(cfg->tls_ciphersuites), "%s", value);
	return 0;
}

static int set_tls_handshake_timeout(struct sg_config *cfg, char *value, char *err,
				     size_t errlen)
{
	return sg_parse_duration(value, &cfg->tls_handshake_timeout_ns, err, errlen);
}

static const char *const mover_names[SG_MOVER__COUNT] = {
	[SG_MOVER_COPY] = "copy",
	[SG_MOVER_SPLICE] = "splice",
	[SG_MOVER_SOCKMAP] = "sockmap",
};

const char *sg_tls_mover_name(int mover)
{
	return mover >= 0 && mover < SG_MOVER__COUNT ? mover_names[mover] : "?";
}

static int set_tls_mover(struct sg_config *cfg, char *value, char *err, size_t errlen)
{
	int v = -1;

	for (int i = 0; i < SG_MOVER__COUNT; i++)
		if (strcmp(value, mover_names[i]) == 0)
			v = i;
	return set_enum(&cfg->tls_mover, v, value, "copy|splice|sockmap", err, errlen);
}

static const struct {
	const char *key;
	sg_key_setter set;
} config_keys[] = {
	{ "bpffs_root", set_bpffs_root },
	{ "interfaces", set_interfaces },
	{ "attach", set_attach },
	{ "xdp_mode", set_xdp_mode },
	{ "smtp_ports", set_smtp_ports },
	{ "default_action", set_default_action },
	{ "default_tls_mode", set_default_tls_mode },
	{ "default_source_mode", set_default_source_mode },
	{ "default_conn_rate", set_default_conn_rate },
	{ "default_conn_burst", set_default_conn_burst },
	{ "default_msg_rate", set_default_msg_rate },
	{ "default_rcpt_rate", set_default_rcpt_rate },
	{ "refuse", set_refuse },
	{ "malformed", set_malformed },
	{ "ipv6_source_prefix", set_ipv6_source_prefix },
	{ "detach_on_exit", set_detach_on_exit },
	{ "state_idle_timeout", set_state_idle_timeout },
	{ "gc_interval", set_gc_interval },
	{ "proxy", set_proxy },
	{ "proxy_workers", set_proxy_workers },
	{ "uplink", set_uplinks },
	{ "steer_mark", set_steer_mark },
	{ "route_table", set_route_table },
	{ "fail_mode", set_fail_mode },
	{ "connect_timeout", set_connect_timeout },
	{ "steer_mode", set_steer_mode },
	{ "steer_sample", set_steer_sample },
	{ "steer_soft_percent", set_steer_soft_percent },
	{ "suspect_duration", set_suspect_duration },
	{ "relay_ip4", set_relay_ip4 },
	{ "relay_ip6", set_relay_ip6 },
	{ "escalation_rejects", set_escalation_rejects },
	{ "escalation_window", set_escalation_window },
	{ "escalation_penalty", set_escalation_penalty },
	{ "smtp_line_limit", set_smtp_line_limit },
	{ "smtp_command_limit", set_smtp_command_limit },
	{ "smtp_recipient_limit", set_smtp_recipient_limit },
	{ "smtp_message_size_limit", set_smtp_message_size_limit },
	{ "smtp_idle_timeout", set_smtp_idle_timeout },
	{ "smtp_session_timeout", set_smtp_session_timeout },
	{ "scan_patterns", set_scan_patterns },
	{ "scan_timeout", set_scan_timeout },
	{ "scan_timeout_action", set_scan_timeout_action },
	{ "events_file", set_events_file },
	{ "implicit_tls_ports", set_implicit_tls_ports },
	{ "tls_cert_file", set_tls_cert_file },
	{ "tls_key_file", set_tls_key_file },
	{ "tls_ca_file", set_tls_ca_file },
	{ "tls_mx_verify", set_tls_mx_verify },
	{ "tls_mx_without_starttls", set_tls_mx_without_starttls },
	{ "tls_min_version", set_tls_min_version },
	{ "tls_ciphers", set_tls_ciphers },
	{ "tls_ciphersuites", set_tls_ciphersuites },
	{ "tls_handshake_timeout", set_tls_handshake_timeout },
	{ "tls_mover", set_tls_mover },
};

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
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
		if (strcmp(key, config_keys[i].key) != 0)
			continue;
		if (!*value) {
			snprintf(err, errlen, "%s: key '%s' has no value", where, key);
			return -1;
		}
		if (config_keys[i].set(cfg, value, verr, sizeof(verr))) {
			snprintf(err, errlen, "%s: key '%s': %s", where, key, verr);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "%s: unknown key '%s' (the keys are documented in "
		 "etc/smtpguard.conf)", where, key);
	return -1;
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
	for (int i = 0; i < cfg->n_smtp_ports && i < SG_MAX_SMTP_PORTS; i++)
		for (int j = 0; j < cfg->n_implicit_tls_ports; j++)
			if (cfg->smtp_ports[i] == cfg->implicit_tls_ports[j])
				out->implicit_tls_ports |= (uint8_t)(1u << i);
	/* n_workers is written by the proxy once its listeners are in place */
}

int sg_config_check(const struct sg_config *cfg, const char *origin, char *err, size_t errlen)
{
	if (!cfg->tls_cert_file[0] != !cfg->tls_key_file[0]) {
		snprintf(err, errlen, "%s: tls_cert_file and tls_key_file go together (the "
			 "provider's certificate and its private key); only %s is set", origin,
			 cfg->tls_cert_file[0] ? "tls_cert_file" : "tls_key_file");
		return -1;
	}
	if (cfg->default_tls_mode == SG_TLS_TERMINATE && !cfg->tls_cert_file[0]) {
		snprintf(err, errlen, "%s: default_tls_mode = terminate needs tls_cert_file and "
			 "tls_key_file: the certificate the proxy shows the VMs", origin);
		return -1;
	}
	return 0;
}
