/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * config.h - smtpguardd's configuration: a Postfix-style file ("key = value",
 * "#" comments, a line starting with white space continues the previous one)
 * and "--set key=value" overrides. Every key, its default and meaning are
 * documented once, in etc/smtpguard.conf. Errors name the file, the line, the
 * key and the accepted values.
 */
#ifndef SMTPGUARD_CONFIG_H
#define SMTPGUARD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <smtpguard/maps.h>

#define SG_MAX_IFACE_PATTERNS 32
#define SG_PATH_LEN 256

struct sg_config {
	char bpffs_root[SG_PATH_LEN];
	char interfaces[SG_MAX_IFACE_PATTERNS][16];	/* fnmatch patterns */
	int n_interfaces;
	int attach_mode;		/* enum sg_attach_mode */
	int xdp_generic;		/* xdp_mode = generic */
	uint16_t smtp_ports[SG_MAX_SMTP_PORTS];
	int n_smtp_ports;
	int default_action;		/* enum sg_action */
	int default_tls_mode;
	int default_source_mode;
	uint64_t default_conn_interval_ns;
	uint32_t default_conn_burst;
	uint64_t default_msg_interval_ns;	/* 0: no message limit */
	uint32_t default_msg_burst;
	uint64_t default_rcpt_interval_ns;	/* 0: no recipient limit */
	uint32_t default_rcpt_burst;
	int refuse_mode;		/* enum sg_refuse_mode */
	int malformed_mode;		/* enum sg_malformed_mode */
	int ipv6_source_prefix;		/* IPv6 senders counted per this prefix */
	int detach_on_exit;
	uint64_t state_idle_timeout_ns;	/* per-source entries idle this long are evicted */
	uint64_t gc_interval_ns;
	/* the scanning proxy */
	int proxy;			/* steer scan flows to the proxy */
	int proxy_workers;
	char uplinks[SG_MAX_IFACE_PATTERNS][16];	/* where the MX's replies arrive */
	int n_uplinks;
	uint32_t steer_mark;
	uint32_t route_table;
	int fail_mode;			/* enum sg_fail_mode */
	uint64_t connect_timeout_ns;
	int steer_mode;			/* enum sg_steer_mode */
	uint32_t steer_sample;		/* suspect: 1 in N other connections; 0 = none */
	uint32_t steer_soft_percent;	/* suspect: share of the connection burst used */
	uint64_t suspect_duration_ns;	/* a flagged source is proxied this long */
	/* source mode relay-ip: the provider's delivery addresses */
	char relay_ip4[16];		/* dotted quad; empty: none configured */
	char relay_ip6[46];
	/* escalation: this many refusals within the window -> a kernel penalty */
	uint32_t escalation_rejects;	/* 0: never */
	uint64_t escalation_window_ns;
	uint64_t escalation_penalty_ns;
	/* the SMTP relay's limits and scanner */
	uint32_t smtp_line_limit;
	uint32_t smtp_command_limit;
	uint32_t smtp_recipient_limit;
	uint64_t smtp_message_size_limit;
	uint64_t smtp_idle_timeout_ns;
	uint64_t smtp_session_timeout_ns;
	char scan_patterns[SG_PATH_LEN];	/* empty: no pattern rules */
	char events_file[SG_PATH_LEN];	/* JSON lines; "-" stdout; empty: none */
};

void sg_config_defaults(struct sg_config *cfg);
/* Reads FILE into cfg. */
int sg_config_load(struct sg_config *cfg, const char *path, char *err, size_t errlen);
/* One "key = value" (or "key=value"); origin and line go into errors. */
int sg_config_set(struct sg_config *cfg, const char *assignment, const char *origin,
		  int line, char *err, size_t errlen);
/* The settings map's value derived from cfg. */
void sg_config_to_settings(const struct sg_config *cfg, struct sg_settings *out);

#endif
