/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * maps.h - the one definition of every map key, value and enum that the BPF
 * classifier (bpf/) and userspace (lib/, proxy/, daemon/, tools/, selftests/) share.
 *
 * Compiled by clang -target bpf and by gcc; uses only fixed-width UAPI types.
 * Addresses are kept in network byte order. IPv4 sources are stored in the
 * per-source map as IPv4-mapped IPv6 (::ffff:a.b.c.d) so one map serves both.
 * Times are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns()).
 */
#ifndef SMTPGUARD_MAPS_H
#define SMTPGUARD_MAPS_H

#include <linux/types.h>
#include <linux/bpf.h>

/* Names of the pinned maps below the bpffs root (map names, 15 chars max). */
#define SG_MAP_POLICY_V4	"policy_v4"
#define SG_MAP_POLICY_V6	"policy_v6"
#define SG_MAP_RATE_CLASSES	"rate_classes"
#define SG_MAP_SRC_STATE	"src_state"
#define SG_MAP_SETTINGS		"settings"
#define SG_MAP_STATS		"stats"
#define SG_MAP_ATTACHMENTS	"attachments"
#define SG_MAP_OVERFLOW		"overflow_state"
#define SG_MAP_LISTENERS	"listeners"
#define SG_MAP_FEEDBACK		"src_feedback"
#define SG_MAP_PROXY_STATS	"proxy_stats"
#define SG_MAP_PROXY_METRICS	"proxy_metrics"
#define SG_MAP_SRC_BOUND	"src_bound"
#define SG_MAP_IFACE_STATE	"iface_state"
#define SG_MAP_FLOW_SENDER	"flow_sender"
#define SG_MAP_BULK_SHARED	"bulk_shared"
/* One u32 pinned beside them from userspace: SG_LAYOUT_VERSION of the
 * daemon that made the pins. Raise it whenever a pinned map's type, key,
 * value or size changes; a daemon or CLI refuses pins of another layout
 * (what a downgrade meets), by name, before reading a byte of them; the
 * daemon carries older ones over (daemon/migrate.c), so a value only ever
 * grows at its end, and a changed key needs a converter there. Pins
 * without it are of layout 1. */
#define SG_MAP_LAYOUT		"layout"
#define SG_LAYOUT_VERSION	4	/* 2: senders keyed with an interface, the source
				 * check's maps, per-interface overflow buckets;
				 * 3: proxy_stats grew by "reattached", and
				 * proxy_metrics; 4: proxy_stats grew by the
				 * shared store's counters, proxy_metrics by
				 * its state (daemon/shared_*.c) */

#define SG_MAX_RATE_CLASSES	64
#define SG_RATE_CLASS_NAME_LEN	24
#define SG_MAX_SMTP_PORTS	8
#define SG_MAX_ATTACHMENTS	1024
#define SG_TENANT_LEN		32	/* a tenant's name and its NUL (lib/tenants.h) */
#define SG_MAX_WORKERS		64
#define SG_MAX_POLICY_ENTRIES	65536
/* Size of the per-source state table; fixed at build time because a pinned
 * map cannot be resized, and a restart must reuse it. */
#define SG_MAX_SOURCES		262144
#define SG_DEFAULT_RATE_CLASS	0
/* Source prefixes bound to interfaces (source_bindings and learned). */
#define SG_MAX_BOUND		65536
/* Flows whose SYN the classifier steered, for the proxy to find the
 * sender's key by (an LRU: an accepted session reads it at once). */
#define SG_MAX_FLOWS		65536

/* What happens to the port-25 traffic of a source. */
enum sg_action {
	SG_ACTION_SCAN = 0,		/* rate-limited; steered to the proxy (proxy = yes) */
	SG_ACTION_EXEMPT = 1,		/* never limited, never inspected */
	SG_ACTION_PASSTHROUGH = 2,	/* counted and rate-limited, never inspected */
	SG_ACTION_BLOCK = 3,		/* every port-25 packet dropped */
	SG_ACTION__COUNT
};

enum sg_tls_mode {
	SG_TLS_PASSTHROUGH = 0,
	SG_TLS_TERMINATE = 1,
	SG_TLS_STRIP = 2,
	SG_TLS__COUNT
};

enum sg_source_mode {
	SG_SOURCE_TRANSPARENT = 0,	/* the MX sees the VM's own address */
	SG_SOURCE_RELAY_IP = 1,		/* the MX sees a provider delivery address */
	SG_SOURCE__COUNT
};

/* What is done with a SYN that is over its rate or penalised, and with
 * blocked sources' SYNs. */
enum sg_refuse_mode {
	SG_REFUSE_DROP = 0,	/* the sender's TCP retries later */
	SG_REFUSE_RST = 1,	/* answered at once with a TCP RST */
	SG_REFUSE__COUNT
};

/* Frames whose IP/TCP headers are truncated or inconsistent. */
enum sg_malformed_mode {
	SG_MALFORMED_DROP = 0,
	SG_MALFORMED_PASS = 1,
	SG_MALFORMED__COUNT
};

/* Per-CPU packet counters, one slot per reason. */
enum sg_stat {
	SG_STAT_NON_SMTP = 0,	/* passed: not TCP to an SMTP port */
	SG_STAT_SMTP,		/* TCP to an SMTP port, any action */
	SG_STAT_SMTP_SYN,	/* of those, connection attempts */
	SG_STAT_EXEMPT,
	SG_STAT_PASSTHROUGH,
	SG_STAT_SCAN,
	SG_STAT_BLOCKED,
	SG_STAT_RATE_DROPPED,	/* SYN over the source's token bucket */
	SG_STAT_PENALTY_DROPPED,/* SYN while the source is penalised */
	SG_STAT_MALFORMED,
	SG_STAT_RST_SENT,	/* refusals answered with an RST */
	SG_STAT_STATE_FULL,	/* per-source table full: limited by its class's shared bucket */
	SG_STAT_STEERED,	/* connection attempts handed to a proxy listener */
	SG_STAT_FAIL_OPEN,	/* scan SYNs passed untouched: no listener */
	SG_STAT_FAIL_CLOSED,	/* scan SYNs refused: no listener */
	SG_STAT_UPLINK_STEERED,	/* MX replies handed to the proxy's upstream socket */
	SG_STAT_FAST_PATH,	/* scan SYNs left on the kernel path (steer mode suspect) */
	SG_STAT_SPOOFED,	/* SMTP packets dropped: the source is not the interface's */
	SG_STAT_LEARNED,	/* source addresses bound to an interface by learning */
	SG_STAT__COUNT
};

/* The proxy's counters (userspace only: the daemon's workers add to them
 * in place, the map mmap()ed; smtpguardctl stats reads them). */
enum sg_pstat {
	SG_PSTAT_CONTENT_REFUSED = 0,	/* messages a content rule refused or deferred */
	SG_PSTAT_CONTENT_FLAGGED,	/* messages a content flag rule matched */
	SG_PSTAT_MILTER_MESSAGES,	/* messages given to a milter */
	SG_PSTAT_MILTER_REFUSED,	/* ... it rejected, tempfailed or discarded */
	SG_PSTAT_MILTER_FAULT_CONNECT,	/* milter faults (milter_default_action): */
	SG_PSTAT_MILTER_FAULT_TIMEOUT,
	SG_PSTAT_MILTER_FAULT_CLOSED,
	SG_PSTAT_MILTER_FAULT_PROTOCOL,
	SG_PSTAT_MILTER_FAULT_NEGOTIATION,
	SG_PSTAT_LADDER_FLAGGED,	/* senders moved up to a step */
	SG_PSTAT_LADDER_TEMPFAIL,
	SG_PSTAT_LADDER_REFUSED,
	SG_PSTAT_WEBHOOK_DELIVERED,	/* webhook posts delivered (one a URL) */
	SG_PSTAT_WEBHOOK_DROPPED,	/* ... dropped: a full queue */
	SG_PSTAT_WEBHOOK_EXPIRED,	/* ... given up: attempts or age */
	SG_PSTAT_REATTACHED,		/* the daemon's: programs put back after another tool
					 * took them off (reconcile) */
	/* the daemon's sync with the shared store (redis, daemon/shared_*.c) */
	SG_PSTAT_REDIS_SYNCS,		/* round trips answered */
	SG_PSTAT_REDIS_ERRORS,		/* connects, replies or timeouts that failed */
	SG_PSTAT_REDIS_OUTAGES,		/* times it went from up to down */
	SG_PSTAT_REDIS_APPLIED,		/* shared penalties and steps written to the local maps */
	SG_PSTAT_REDIS_UNTRACKED,	/* senders left out of a sync: the sync's table was full */
	SG_PSTAT__COUNT
};

struct sg_proxy_stats {
	__u64 count[SG_PSTAT__COUNT];
};

/*
 * The proxy's gauges and histograms for the metrics (lib/metrics.c), in a
 * map of their own beside proxy_stats (so that pins of an older version,
 * whose proxy_stats is smaller, stay reusable). Userspace only: the proxy
 * adds to it in place (lib/pmetrics.c), the metrics read it. Every label
 * is one of these fixed enums or an engine slot: the cardinality is
 * bounded whatever the traffic.
 */

/* Sessions by what the relay does (the proxy's relay modes, and the drain
 * after the end): gauges, added to when a session enters a state and
 * taken from when it leaves. */
enum sg_psession {
	SG_PSESSION_COMMANDS = 0,	/* SMTP commands and replies */
	SG_PSESSION_WAIT,		/* a sync point (DATA, STARTTLS, AUTH) awaits its reply */
	SG_PSESSION_AUTH,		/* an AUTH exchange */
	SG_PSESSION_BODY,		/* a message body streams */
	SG_PSESSION_VERDICT,		/* the dot waits for the engines' verdict */
	SG_PSESSION_TUNNEL,		/* passed through after STARTTLS */
	SG_PSESSION_REFUSED,		/* a message was refused: local replies only */
	SG_PSESSION_DRAINING,		/* over: waiting for the peers to close */
	SG_PSESSION__COUNT
};

/* A message's verdict, and its reason in classes. */
enum sg_pverdict {
	SG_PVERDICT_ACCEPT = 0,
	SG_PVERDICT_REJECT,
	SG_PVERDICT_TEMPFAIL,
	SG_PVERDICT__COUNT
};

enum sg_preason {
	SG_PREASON_CLEAN = 0,		/* every engine accepted */
	SG_PREASON_CONTENT,		/* the built-in content engine */
	SG_PREASON_MILTER,		/* a milter */
	SG_PREASON_ENGINE_FAILURE,	/* an engine failed or was too slow: the failure action */
	SG_PREASON_RATE,		/* the sender's message or recipient rate */
	SG_PREASON_LADDER,		/* the response ladder's tempfail step (at MAIL FROM) */
	SG_PREASON_SIZE,		/* over smtp_message_size_limit */
	SG_PREASON_PROTOCOL,		/* a malformed end of data */
	SG_PREASON_OTHER,
	SG_PREASON__COUNT
};

/* Engine latency: from the dot (the verdict asked) to the engine's answer.
 * Bucket i counts observations at most sg_latency_bounds_us[i] (not
 * cumulative: one add per observation); the last counts the rest. */
#define SG_LATENCY_BUCKETS 15
#define SG_LATENCY_BOUNDS_US { 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, \
			       500000, 1000000, 2500000, 5000000, 10000000, 30000000 }
#define SG_METRIC_ENGINES 8		/* = the scanner's SG_MAX_ENGINES */
#define SG_ENGINE_NAME_LEN 16

struct sg_latency_hist {
	__u64 bucket[SG_LATENCY_BUCKETS];
	__u64 sum_us;
};

/* An engine's or the webhook's health: what its last attempt did. */
enum sg_health {
	SG_HEALTH_UNKNOWN = 0,		/* not tried since the proxy started */
	SG_HEALTH_UP = 1,
	SG_HEALTH_DOWN = 2,
};

struct sg_proxy_metrics {
	__u64 sessions[SG_PSESSION__COUNT];
	__u64 verdicts[SG_PVERDICT__COUNT][SG_PREASON__COUNT];
	struct sg_latency_hist engine_latency[SG_METRIC_ENGINES];
	__u64 engine_health[SG_METRIC_ENGINES];	/* enum sg_health */
	/* the engines' names by slot ("content", "milter1"...), written by
	 * the proxy when its engines are built; an empty name: no engine */
	char engine_name[SG_METRIC_ENGINES][SG_ENGINE_NAME_LEN];
	__u64 webhook_health;			/* enum sg_health */
	__u64 webhook_queued;			/* gauge: posts waiting */
	__u64 redis_state;			/* enum sg_redis_state (the daemon's) */
};

/* The shared store's connection as the daemon last saw it. */
enum sg_redis_state {
	SG_REDIS_OFF = 0,	/* redis = none */
	SG_REDIS_CONNECTING = 1,
	SG_REDIS_UP = 2,
	SG_REDIS_DOWN = 3,	/* local enforcement only; retried with a backoff */
};

struct sg_lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct sg_lpm_v6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

struct sg_policy {
	__u8 action;		/* enum sg_action */
	__u8 rate_class;	/* index into rate_classes */
	__u8 tls_mode;		/* enum sg_tls_mode */
	__u8 source_mode;	/* enum sg_source_mode */
};

/* A rate class; slot 0 is "default", configured by smtpguardd. A slot with an
 * empty name is unused. An interval of 0 means no limit. Each limit is a
 * token bucket: one token earned every interval, at most burst kept.
 * Connections are limited by the classifier, messages and recipients by the
 * proxy (a message over either gets 451 4.7.1). */
struct sg_rate_class {
	char name[SG_RATE_CLASS_NAME_LEN];
	__u64 conn_interval_ns;
	__u32 conn_burst;
	__u32 msg_burst;
	__u64 msg_interval_ns;
	__u64 rcpt_interval_ns;
	__u32 rcpt_burst;
	__u32 max_sessions;	/* concurrent sessions a sender holds on the proxy; 0: no limit */
	__u8 ladder_top;	/* enum sg_ladder_step: the highest the response ladder takes it */
	__u8 pad[7];
};

/* A sender: an IPv4 address (IPv4-mapped), or an IPv6 address cut to the
 * settings' v6_source_prefix (a VM given a /64 is one sender, whichever of
 * its addresses it uses). An IPv6 prefix seen on a bridge port is also
 * keyed by the port (ifindex): VMs on one bridge may share a /64 and are
 * separate senders; everywhere else ifindex is 0 (an IPv4 address, or a
 * prefix routed to one interface, is one VM wherever it is seen). */
struct sg_src_key {
	__u8 addr[16];
	__u32 ifindex;
	__u32 pad;
} __attribute__((aligned(8)));

/* The shared bucket of one rate class on one interface, used when
 * src_state is full: a flood of new source addresses stays within its
 * limits, and one interface's flood leaves the others' buckets alone. */
struct sg_overflow_key {
	__u32 ifindex;
	__u32 rate_class;
};

/* How the classifier checks that an SMTP packet's source belongs to the
 * interface it came in on (source_check). */
enum sg_source_check {
	SG_SOURCE_CHECK_OFF = 0,
	SG_SOURCE_CHECK_ROUTE = 1,	/* the route back to the source leaves by that
					 * interface (or, on a bridge port, its bridge) */
	SG_SOURCE_CHECK_BOUND = 2,	/* the source is bound to that interface:
					 * source_bindings, or learned */
	SG_SOURCE_CHECK_AUTO = 3,	/* route everywhere, and bound on bridge ports */
	SG_SOURCE_CHECK__COUNT
};

/* src_bound: an LPM trie over IPv6 (IPv4 as ::ffff:a.b.c.d/96+len) of the
 * prefixes bound to an interface. Configured entries (source_bindings) are
 * the daemon's; learned ones the classifier adds, the daemon expires. */
struct sg_bound {
	__u32 ifindex;
	__u8 learned;		/* 1: learned by the classifier; 0: configured */
	__u8 pad[3];
	__u64 last_seen_ns;	/* learned: the last SYN from it (the daemon expires it) */
};

/* iface_state: per VM-facing interface, keyed by ifindex; made by the
 * classifier on first use, removed by the daemon when the interface goes. */
struct sg_iface_state {
	__u64 spoofed;		/* SMTP packets dropped by the source check */
	__u64 learned;		/* learned entries in src_bound (the daemon recounts) */
	__u64 sources;		/* src_state entries it made (the daemon recounts) */
};

/* flow_sender: a steered SYN's flow -> the sender key the classifier used,
 * so that the proxy counts the session against the same key. Addresses as
 * in sg_src_key (IPv4-mapped), ports in network byte order. */
struct sg_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u32 pad;
};

/* Per-source state. The classifier and userspace update it under the lock
 * (userspace with BPF_F_LOCK), so counts stay exact with SYNs on every CPU. */
struct sg_src_state {
	struct bpf_spin_lock lock;
	__u32 rate_class;	/* class that last applied */
	__u64 tat_ns;		/* GCRA theoretical arrival time of the next SYN */
	__u64 penalty_until_ns;	/* SYNs refused until then; 0 = none */
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u64 syns;		/* connection attempts seen */
	__u64 syn_drops;	/* of those, refused (rate, penalty, block) */
	__u32 ifindex;		/* the interface it was first seen on (its share:
				 * source_state_max); 0: made by userspace */
	__u32 pad;
};

/* What the proxy learned of a sender (same key as src_state). Written by
 * smtpguardd alone, never by the classifier, so that the lock-free bucket
 * in src_state is never rewritten from userspace for a count; the
 * classifier only reads suspect_until_ns (steer mode suspect). An
 * escalation writes its penalty into src_state. */
#define SG_LADDER_REASON_LEN 160
/* the longest ladder_forget: the GC keeps a refused sender's entry this long */
#define SG_LADDER_FORGET_MAX_NS (30ULL * 24 * 3600 * 1000000000ULL)

struct sg_src_feedback {
	__u64 msgs;		/* messages the MX accepted */
	__u64 rcpts;		/* their recipients */
	__u64 rejects;		/* messages smtpguard refused (5xx verdicts) */
	__u64 tempfails;	/* messages smtpguard deferred (451: rates) */
	__u64 mx_5xx;		/* permanent refusals from the MX (MAIL, RCPT, DATA) */
	__u64 msg_tat_ns;	/* message bucket (GCRA theoretical arrival time) */
	__u64 rcpt_tat_ns;	/* recipient bucket */
	__u64 reject_window_ns;	/* escalation: when the current window began */
	__u32 reject_window_count;	/* rejections in that window */
	__u32 penalties;	/* escalations so far */
	__u64 suspect_until_ns;	/* steer mode suspect: its flows are proxied until then */
	__u64 last_ns;
	__u64 sessions;		/* SMTP sessions the proxy relayed */
	__u64 tls_sessions;	/* of those, encrypted after STARTTLS (terminated or passed through) */
	__u64 tls_uninspected;	/* of those, passed through: their content was not seen */
	__u64 sessions_refused;	/* refused at the session limit of its rate class */
	/* the response ladder (proxy/ladder.c): where the sender stands, since
	 * when and until when, and why */
	__u8 ladder_step;	/* enum sg_ladder_step */
	__u8 release_pending;	/* released by the operator: the daemon forgets its signals */
	__u8 ladder_pad[6];
	__u64 ladder_since_ns;
	__u64 ladder_until_ns;	/* the step lapses then (one step down); 0: never */
	__u64 ladder_refused_ns;	/* the last refusal in the kernel: repeats grow from it */
	__u64 released_ns;	/* `smtpguardctl release` moved it back to normal then */
	char ladder_reason[SG_LADDER_REASON_LEN];
	/* abuse complaints (ARF reports) traced to this sender and confirmed
	 * by `smtpguardctl complaint --confirm`, which counts them here; the
	 * proxy's ladder takes each (one step up) at the sender's next
	 * message and counts it as applied */
	__u32 complaints;
	__u32 complaints_applied;
	__u64 complaint_ns;	/* the last one confirmed (CLOCK_MONOTONIC) */
};

/* The response ladder's steps: each is an event (and a webhook). */
enum sg_ladder_step {
	SG_LADDER_NORMAL = 0,
	SG_LADDER_FLAGGED,	/* every flow steered and scanned, even in steer_mode suspect */
	SG_LADDER_TEMPFAIL,	/* its messages tempfailed at MAIL FROM (451 4.7.1, a reference) */
	SG_LADDER_REFUSED,	/* its connections refused in the kernel for a penalty */
	SG_LADDER__COUNT
};

/* Global settings: array of one element. */
struct sg_settings {
	__u16 smtp_ports[SG_MAX_SMTP_PORTS];	/* host byte order; the list ends at the first 0 */
	__u8 default_action;	/* for sources no policy prefix matches */
	__u8 default_rate_class;
	__u8 default_tls_mode;
	__u8 default_source_mode;
	__u8 refuse_mode;	/* enum sg_refuse_mode */
	__u8 malformed_mode;	/* enum sg_malformed_mode */
	__u8 v6_source_prefix;	/* IPv6 senders are counted per this prefix (48-128, /8 steps) */
	__u8 implicit_tls_ports;	/* bit i: smtp_ports[i] speaks TLS from the first byte
				 * (465): never steered, the proxy could not read it */
	__u8 v6_sender_mask[16];	/* that prefix as a mask, applied to the address */
	__u32 steer_mark;	/* skb mark that policy routing delivers locally; 0 = no proxy */
	__u8 n_workers;		/* proxy workers: listeners at 2*worker (IPv4) and 2*worker+1 (IPv6) */
	__u8 fail_mode;		/* enum sg_fail_mode: no listener registered */
	__u8 steer_mode;	/* enum sg_steer_mode */
	__u8 source_check;	/* enum sg_source_check */
	__u32 steer_sample;	/* steer mode suspect: also 1 in N other connections; 0 = none */
	__u32 steer_soft_percent;	/* steer mode suspect: also once a source has used this
				 * share of its connection burst; 0 = never */
	__u32 source_learn;	/* source addresses an interface may have learned
				 * (source_check bound/auto); 0: none */
	__u32 source_state_max;	/* src_state entries one interface may make; then
				 * its senders share its overflow bucket; 0: no cap */
};

/* Which connections of scan sources the proxy sees. */
enum sg_steer_mode {
	SG_STEER_ALL = 0,	/* every one */
	SG_STEER_SUSPECT = 1,	/* flagged, over the soft threshold, or sampled */
	SG_STEER__COUNT
};

/* What a scan flow gets when no proxy listener is registered. */
enum sg_fail_mode {
	SG_FAIL_OPEN = 0,	/* route untouched: the VM talks to the MX directly */
	SG_FAIL_CLOSED = 1,	/* refused with an RST */
	SG_FAIL__COUNT
};

enum sg_attach_mode {
	SG_ATTACH_TC = 0,
	SG_ATTACH_XDP = 1,
	SG_ATTACH_UPLINK = 2,	/* TC ingress on the uplink: MX replies to the proxy */
	SG_ATTACH_BRIDGE = 3,	/* TC ingress on a bridge whose ports are ours */
	SG_ATTACH_TC_EGRESS = 4,	/* TC egress of a macvtap/ipvtap: its VM's
					 * frames cross no ingress hook */
	SG_ATTACH__COUNT
};

/* Which interfaces this instance attached to, so that --detach and a restart
 * find them. Keyed by ifindex. */
struct sg_attachment {
	__u32 mode;		/* enum sg_attach_mode */
	__u32 prog_id;
	char ifname[16];
	/* A port of a Linux bridge: a frame handed to the proxy must be
	 * addressed to the bridge itself, or the bridge forwards it on at
	 * layer 2 and it never reaches the host's stack. */
	__u8 local_mac[6];	/* the bridge's MAC address */
	__u8 bridge_port;
	__u8 bound_configured;	/* source_bindings name this interface: its
				 * sources are those, nothing is learned */
	__u32 bridge_ifindex;	/* the bridge of a bridge port */
	/* The interface's tenant as the daemon (root) resolved it from the
	 * tenants file and the hypervisor's adapters (lib/tenants.h), for the
	 * proxy and smtpguardctl, which cannot read the hypervisor's files;
	 * "": none. Userspace's alone: the classifier never reads it. */
	char tenant[SG_TENANT_LEN];
};

/* Bulk bodies shared between hosts (the shared store, daemon/shared_*.c):
 * keyed by a body's digest (sg_fingerprint_digest of the bulk entry's
 * first body). The proxy writes the local counts of a body its senders
 * sent to 2 or more senders or spread (scan/signals/bulk.h); the daemon
 * sends those changed since its last round to the store, per host, and
 * writes back the sums over the other hosts, which the outbreak signal
 * adds to the local spreading senders. An LRU: hostile tenants sending
 * unique bodies churn it, never grow it. Each side rewrites only its own
 * fields; a lost race is mended at the next message or round. */
#define SG_MAX_BULK_SHARED	8192

struct sg_bulk_shared {
	__u32 local_spreading;	/* this host's senders, each to spread_domains or more */
	__u32 local_senders;	/* this host's distinct senders */
	__u32 shared_spreading;	/* the other hosts', from the store */
	__u32 shared_senders;
	__u64 last_seen_ns;	/* the local counts last changed (CLOCK_MONOTONIC) */
	__u64 shared_ns;	/* the shared counts last written */
};

#endif /* SMTPGUARD_MAPS_H */
