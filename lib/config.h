/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * config.h - smtpguardd's configuration: a Postfix-style file ("key = value",
 * "#" comments, a line starting with white space continues the previous one)
 * and "--set key=value" overrides. One table in config.c holds a row per key
 * (its type, field, bounds, default and reload scope), and parsing, the
 * defaults, --list-keys and what SIGHUP applies all follow from it;
 * etc/smtpguard.conf documents every key once, with the same default text
 * (test_config checks the two agree). Errors name the file, the line, the
 * key and the accepted values.
 */
#ifndef SMTPGUARD_CONFIG_H
#define SMTPGUARD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <smtpguard/maps.h>

#define SG_MAX_IFACE_PATTERNS 32
#define SG_PATTERN_LEN 16	/* an interface pattern fits an interface name (IFNAMSIZ) */
#define SG_PATH_LEN 256
#define SG_LISTEN_LEN 64	/* ADDRESS:PORT, [IPv6]:PORT */

/* The proxy's TLS (see etc/smtpguard.conf, "TLS"). */
enum sg_tls_verify {
	SG_TLS_VERIFY_NONE = 0,	/* any certificate: what opportunistic SMTP does */
	SG_TLS_VERIFY_PEER,	/* the chain against tls_ca_file, and a trusted name: from
				 * tls_mx_names, the VM's SNI or its recipients' domains
				 * (never the MX's greeting) */
};
enum sg_tls_missing {
	SG_TLS_MIRROR = 0,	/* an MX without STARTTLS: the VM is not offered it either */
	SG_TLS_REQUIRE,		/* an MX without STARTTLS: the VM gets a 421 (tempfail) */
};
/* How a passthrough session's opaque bytes move after STARTTLS. */
enum sg_tls_mover {
	SG_MOVER_COPY = 0,	/* read(2)/write(2) through the session's buffers */
	SG_MOVER_SPLICE,	/* splice(2) through a pipe per direction */
	SG_MOVER_SOCKMAP,	/* sk_skb redirect between the two sockets, in the kernel */
	SG_MOVER__COUNT
};

/* The response ladder's penalties: the first refusal's, the second's, ... */
#define SG_MAX_PENALTIES 8
struct sg_penalties {
	uint64_t ns[SG_MAX_PENALTIES];
	int n;
};

/* The milters a message is judged by, in order (milters = ...). */
#define SG_MAX_MILTERS 3
#define SG_MILTER_ADDR_LEN 112	/* unix: and a sun_path */
struct sg_milter_list {
	char addr[SG_MAX_MILTERS][SG_MILTER_ADDR_LEN];
	int n;
};

/* What a milter that fails (cannot be reached, is too slow, breaks the
 * protocol) means for the message: milter_default_action, as Postfix's. */
enum sg_milter_action {
	SG_MILTER_TEMPFAIL = 0,
	SG_MILTER_ACCEPT,
	SG_MILTER_REJECT,
};

/* What a message gets when an engine fails or passes scan_timeout. */
enum sg_scan_action {
	SG_SCAN_TEMPFAIL = 0,	/* 451: the VM's MTA keeps it and tries again */
	SG_SCAN_ACCEPT,		/* the dot goes to the MX unjudged (fail open) */
};

/* a user name as useradd(8) takes it, with its NUL */
#define SG_USER_NAME_LEN 33

struct sg_config {
	char bpffs_root[SG_PATH_LEN];
	char interfaces[SG_MAX_IFACE_PATTERNS][SG_PATTERN_LEN];	/* fnmatch patterns */
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
	uint32_t default_max_sessions;	/* a sender's concurrent proxy sessions; 0: no limit */
	int refuse_mode;		/* enum sg_refuse_mode */
	int malformed_mode;		/* enum sg_malformed_mode */
	int ipv6_source_prefix;		/* IPv6 senders counted per this prefix */
	int source_check;		/* enum sg_source_check */
	uint32_t source_learn;		/* addresses an interface may learn */
	uint64_t source_learn_idle_ns;	/* a learned address unused this long is forgotten */
	uint32_t source_state_max;	/* src_state entries one interface may make; 0: no cap */
	char source_bindings[SG_PATH_LEN];	/* file: interface -> its source prefixes */
	int detach_on_exit;
	uint64_t state_idle_timeout_ns;	/* per-source entries idle this long are evicted */
	uint64_t gc_interval_ns;
	uint64_t reconcile_interval_ns;	/* our programs checked for, put back if gone */
	/* the scanning proxy */
	int proxy;			/* steer scan flows to the proxy */
	int proxy_workers;
	char proxy_user[SG_USER_NAME_LEN];	/* the proxy process's user (its group too) */
	char uplinks[SG_MAX_IFACE_PATTERNS][SG_PATTERN_LEN];	/* MX replies arrive here */
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
	/* escalation: this many refusals within the window -> refused in the kernel */
	uint32_t escalation_rejects;	/* 0: never */
	uint64_t escalation_window_ns;
	/* the response ladder (proxy/ladder.c) */
	int default_ladder;		/* enum sg_ladder_step: the default class's top step */
	struct sg_penalties ladder_penalties;	/* a refusal's penalty, growing on repeat */
	uint64_t ladder_dwell_ns;	/* the least time on a step before the next */
	uint64_t ladder_tempfail_ns;	/* how long the tempfail step lasts */
	uint64_t ladder_forget_ns;	/* refusals this old no longer make the next longer */
	char ladder_allow[SG_PATH_LEN];	/* the allow list; empty: none */
	/* tenants (lib/tenants.h): the file, and the adapters' directories */
	char tenants[SG_PATH_LEN];	/* empty: no file */
	char tenants_proxmox[SG_PATH_LEN];	/* /etc/pve; empty: adapter off */
	char tenants_libvirt[SG_PATH_LEN];	/* /run/libvirt/qemu; empty: adapter off */
	/* webhooks: each ladder step POSTed (proxy/webhook.c checks the URLs) */
	char webhook_urls[2048];
	uint64_t webhook_timeout_ns;
	uint32_t webhook_max_attempts;
	uint64_t webhook_max_age_ns;
	uint32_t webhook_queue_events;
	char webhook_tls_ca_file[SG_PATH_LEN];
	/* the behaviour signals' limits (scan/behaviour.h), each "more than" */
	uint32_t behaviour_messages;	/* messages in the last hour; 0: no limit */
	uint32_t behaviour_rcpts;	/* recipients in the last hour; 0: no limit */
	uint32_t behaviour_rcpt_domains;	/* distinct recipient domains in the last hour; 0: no limit */
	uint32_t behaviour_burst;	/* messages in about the last minute; 0: no limit */
	uint32_t behaviour_mail_from_domains;	/* distinct MAIL FROM domains in the last hour; 0: no limit */
	uint32_t behaviour_tls_sessions;	/* sessions passed through in TLS in the last hour; 0: no limit */
	uint32_t behaviour_tls_mx;	/* distinct MX addresses those reached; 0: no limit */
	uint32_t behaviour_tls_greetings;	/* distinct MX greeting names; 0: no limit */
	uint32_t behaviour_over_usual;	/* messages, times the sender's usual busiest hour; 0: no limit */
	uint32_t behaviour_unknown_pct;	/* percent of recipients unknown at the MX (5.1.x); 0: no limit */
	uint32_t behaviour_unknown_min_rcpts;	/* RCPT replies before that ratio is judged; 0: no limit */
	uint32_t behaviour_policy_refusals;	/* 5.7.x refusals by MXes in the last hour; 0: no limit */
	uint32_t behaviour_outbreak_senders;	/* other senders spreading the same body; 0: no limit */
	uint32_t behaviour_new_sender_pct;	/* a new sender's count limits, percent of these; 0: no limit */
	uint64_t behaviour_new_sender_ns;	/* a sender first seen this recently is new */
	uint32_t behaviour_senders;	/* senders and sub-identities remembered */
	/* the SMTP relay's limits and scanner */
	uint32_t smtp_line_limit;
	uint32_t smtp_command_limit;
	uint32_t smtp_recipient_limit;
	uint64_t smtp_message_size_limit;
	uint64_t smtp_idle_timeout_ns;
	uint64_t smtp_session_timeout_ns;
	uint32_t smtp_min_data_rate;	/* bytes/s a body must keep up; 0: no minimum */
	uint64_t shutdown_timeout_ns;	/* a stop waits this long for owed replies to dots */
	uint64_t drain_timeout_ns;	/* a replaced proxy serves its sessions this long at most */
	char content_rules[SG_PATH_LEN];	/* the content engine's rules; empty: none */
	int content_scan;		/* the content engine reads messages (rules, signals) */
	uint64_t scan_timeout_ns;	/* the dot withheld this long at most for a verdict */
	int scan_timeout_action;	/* enum sg_scan_action: an engine failed or too slow */
	struct sg_milter_list milters;
	uint64_t milter_connect_timeout_ns;
	uint64_t milter_command_timeout_ns;	/* a reply to each command but the body's */
	uint64_t milter_content_timeout_ns;	/* to body chunks and the end of the message */
	int milter_default_action;	/* enum sg_milter_action */
	char events_file[SG_PATH_LEN];	/* JSON lines; "-" stdout; empty: none */
	char metrics_listen[SG_LISTEN_LEN];	/* ADDRESS:PORT of the metrics; empty: none */
	int metrics_remote;		/* metrics_listen may be a non-loopback address */
	/* the shared store (daemon/shared_*.c) */
	char redis[SG_PATH_LEN];	/* unix:/PATH or tcp:HOST:PORT; empty: none */
	char redis_password_file[SG_PATH_LEN];	/* its password's file; empty: none */
	uint64_t redis_sync_interval_ns;	/* a round trip this often */
	uint64_t redis_timeout_ns;	/* a reply later than this: down, reconnected */
	uint64_t shared_conn_interval_ns;	/* SYNs of a group across hosts; 0: no limit */
	uint32_t shared_conn_burst;
	uint64_t shared_msg_interval_ns;	/* messages (and refusals) likewise */
	uint32_t shared_msg_burst;
	uint64_t shared_penalty_ns;	/* a group over a shared limit is refused this long */
	uint32_t shared_prefix_v4;	/* the group: senders' addresses cut to these */
	uint32_t shared_prefix_v6;
	uint32_t shared_senders_max;	/* senders the sync tracks; more are not shared */
	/* TLS (tls_mode per policy entry, default_tls_mode) */
	/* ports that speak TLS from the first byte (465): when one is also in
	 * smtp_ports, the classifier never steers it (the proxy could not read it) */
	uint16_t implicit_tls_ports[SG_MAX_SMTP_PORTS];
	int n_implicit_tls_ports;
	char tls_cert_file[SG_PATH_LEN];	/* terminate: the provider's certificate (chain) */
	char tls_key_file[SG_PATH_LEN];
	char tls_ca_file[SG_PATH_LEN];	/* verify: the CA bundle; empty: the system's */
	int tls_mx_verify;		/* enum sg_tls_verify */
	char tls_mx_names[SG_PATH_LEN];	/* the operator's names of MXes by address; empty: none */
	uint64_t tls_ticket_key_rotation_ns;	/* a new key for the VMs' tickets this often */
	int tls_mx_without_starttls;	/* enum sg_tls_missing */
	int tls_min_version;		/* 10 (TLSv1) .. 13 (TLSv1.3) */
	char tls_ciphers[512];		/* TLS 1.2 and older, OpenSSL cipher list */
	char tls_ciphersuites[256];	/* TLS 1.3, OpenSSL ciphersuites */
	uint64_t tls_handshake_timeout_ns;
	int tls_mover;			/* enum sg_tls_mover */
};

/* How a key's text is read, and what its field in struct sg_config holds. */
enum sg_key_type {
	SG_KEY_BOOL,		/* int: yes|no (on|off, true|false, 1|0) */
	SG_KEY_UINT,		/* an integer field of any size: a whole number in [min, max] */
	SG_KEY_DURATION,	/* uint64_t ns: 500ms, 30s, 10m, 2h, 1d */
	SG_KEY_RATE,		/* uint64_t ns between two events: COUNT/UNIT */
	SG_KEY_LIMIT,		/* COUNT/UNIT or none: the interval, and the burst beside it */
	SG_KEY_ENUM,		/* int: the index of the value's name in names */
	SG_KEY_PATH,		/* char[]: an absolute path of at most max characters */
	SG_KEY_PATH_OR_DASH,	/* the same, or "-" (stdout) */
	SG_KEY_STRING,		/* char[]: any text that fits */
	SG_KEY_PORTS,		/* uint16_t[]: ports 1-65535, and their count */
	SG_KEY_PORTS_OR_NONE,	/* the same, or "none" for no port */
	SG_KEY_IFACES,		/* char[][16]: interface patterns, and their count */
	SG_KEY_IPV4,		/* char[]: an IPv4 address as written */
	SG_KEY_IPV6,		/* char[]: an IPv6 address as written */
	SG_KEY_CUSTOM,		/* set() reads it: the few keys no type above fits */
};

/* What SIGHUP does with a key whose value in the file changed. */
enum sg_reload_scope {
	SG_RELOAD_LIVE,		/* applied at once (new proxy sessions take it) */
	SG_RELOAD_RESTART,	/* read at start only: the reload logs that it waits */
};

/* One key: a row of the table in config.c. A key whose field goes with a
 * second one (a port list and its count, a limit's interval and burst) names
 * both, so that a reload compares and copies them together. */
struct sg_config_key {
	const char *name;
	enum sg_key_type type;
	enum sg_reload_scope reload;
	const char *default_text;	/* as etc/smtpguard.conf shows it; "": unset */
	size_t offset, size;		/* the field in struct sg_config */
	size_t pair_offset, pair_size;	/* the field that goes with it; size 0: none */
	uint64_t min, max;		/* UINT: the range; PATH*: max, the longest (0: all) */
	const char *const *names;	/* ENUM: a value's name at its index; NULL ends */
	int (*set)(void *field, char *value, char *err, size_t errlen);	/* CUSTOM */
};

/* The table, in the order etc/smtpguard.conf documents the keys. */
const struct sg_config_key *sg_config_keys(size_t *count);

/* Every key at its default_text. */
void sg_config_defaults(struct sg_config *cfg);
/* Reads FILE into cfg. */
int sg_config_load(struct sg_config *cfg, const char *path, char *err, size_t errlen);
/* One "key = value" (or "key=value"); origin and line go into errors. */
int sg_config_set(struct sg_config *cfg, const char *assignment, const char *origin,
		  int line, char *err, size_t errlen);
/* Is ADDRESS:PORT ([IPv6]:PORT, as metrics_listen checked it) on a
 * loopback address (127/8, ::1)? */
int sg_listen_is_loopback(const char *listen);
/* Checks that span keys (ports listed twice over, TLS files for terminate);
 * origin names the file in the error. */
int sg_config_check(const struct sg_config *cfg, const char *origin, char *err, size_t errlen);

/* The keys of scope whose fields differ between a and b, their names joined
 * by ", " into names (cut short with "..." if it does not fit); returns how
 * many. */
int sg_config_changed(const struct sg_config *a, const struct sg_config *b,
		      enum sg_reload_scope scope, char *names, size_t len);
/* SIGHUP: every live key's fields from fresh into running; the restart keys
 * keep what the daemon started with. */
void sg_config_apply_live(struct sg_config *running, const struct sg_config *fresh);

const char *sg_tls_mover_name(int mover);
/* The settings map's value derived from cfg. */
void sg_config_to_settings(const struct sg_config *cfg, struct sg_settings *out);

#endif
