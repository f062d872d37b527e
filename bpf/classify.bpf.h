/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * classify.bpf.h - the classifier's decision, shared by the XDP and TC
 * programs: is this frame TCP to an SMTP port, is its source the
 * interface's (source_check.bpf.h), which policy covers its source, is the
 * source within its connection rate (bucket.bpf.h), and how to refuse it.
 *
 * Only connection attempts (SYN without ACK) are rate-limited and penalised;
 * a blocked source loses every port-25 packet.
 */
#ifndef SMTPGUARD_CLASSIFY_BPF_H
#define SMTPGUARD_CLASSIFY_BPF_H

#include "maps.bpf.h"
#include "parse.bpf.h"

enum sg_verdict {
	SG_VERDICT_PASS = 0,
	SG_VERDICT_DROP,
	SG_VERDICT_RST,		/* the frame was rewritten into an RST to send back */
	SG_VERDICT_RETRY,	/* headers beyond the data seen: pull them and ask again */
	SG_VERDICT_STEER,	/* a scan flow, and a proxy is configured: TC steers it */
};

static __always_inline void sg_count(__u32 reason)
{
	__u64 *counter = bpf_map_lookup_elem(&stats, &reason);

	if (counter)
		*counter += 1;
}

static __always_inline int sg_src_is_v4mapped(const struct sg_src_key *k)
{
	const __u32 *w = (const __u32 *)k->addr;

	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

/* Which of smtp_ports the port is, as a bit (see implicit_tls_ports); 0:
 * not an SMTP port. */
static __always_inline __u32 sg_smtp_port_bit(const struct sg_settings *cfg, __u16 port)
{
	#pragma unroll
	for (int i = 0; i < SG_MAX_SMTP_PORTS; i++) {
		if (cfg->smtp_ports[i] == port)
			return 1u << i;
		if (!cfg->smtp_ports[i])
			return 0;
	}
	return 0;
}

static __always_inline struct sg_policy sg_lookup_policy(const struct sg_pkt *pkt,
							  const struct sg_settings *cfg)
{
	struct sg_policy policy = {
		.action = cfg->default_action,
		.rate_class = cfg->default_rate_class,
		.tls_mode = cfg->default_tls_mode,
		.source_mode = cfg->default_source_mode,
	};
	struct sg_policy *found;

	if (pkt->family == 2) {
		struct sg_lpm_v4_key key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, &pkt->src.addr[12], 4);
		found = bpf_map_lookup_elem(&policy_v4, &key);
	} else {
		struct sg_lpm_v6_key key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, pkt->src.addr, 16);
		found = bpf_map_lookup_elem(&policy_v6, &key);
	}
	if (found)
		policy = *found;
	return policy;
}

#include "source_check.bpf.h"
#include "bucket.bpf.h"

/* The per-sender key: IPv6 sources are cut to v6_source_prefix, and on a
 * bridge port (port_ifindex, else 0) keyed by the port as well: VMs on one
 * bridge may share a /64. */
static __always_inline void sg_v6_sender(struct sg_src_key *key, const struct sg_settings *cfg,
					 __u32 port_ifindex)
{
	__u64 *w = (__u64 *)key->addr;
	const __u64 *m = (const __u64 *)cfg->v6_sender_mask;

	w[0] &= m[0];
	w[1] &= m[1];
	key->ifindex = port_ifindex;
}

static __always_inline void sg_sender_key(const struct sg_pkt *pkt,
					  const struct sg_settings *cfg,
					  __u32 port_ifindex, struct sg_src_key *key)
{
	*key = pkt->src;
	if (pkt->family == 10)
		sg_v6_sender(key, cfg, port_ifindex);
}

static __always_inline __u16 sg_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline __u32 sg_csum_add(__u32 sum, const void *data, int words)
{
	const __u16 *w = data;

	#pragma unroll
	for (int i = 0; i < words; i++)
		sum += w[i];
	return sum;
}

/*
 * Rewrites a refused SYN in place into the RST|ACK that answers it (RFC 9293:
 * seq 0, ack = SYN's seq + 1), addressed back to the sender. Only for a plain
 * IPv4/IPv6 header and a SYN without payload; the TCP header shrinks to 20
 * bytes and the IP length with it (the leftover bytes become link padding).
 * Returns 0 when the frame was rewritten.
 */
static __always_inline int sg_make_rst(struct sg_pkt *pkt, void *data_end)
{
	struct ethhdr *eth = pkt->eth;
	struct tcphdr *tcp = pkt->tcp;
	unsigned char mac[ETH_ALEN];
	__u32 sum = 0, seq;
	__u16 port;

	if (!pkt->plain_l3 || (void *)(tcp + 1) > data_end)
		return -1;
	if (pkt->tcp_len != (__u16)(tcp->doff * 4))
		return -1;	/* SYN with payload (TFO): just drop it */

	__builtin_memcpy(mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);

	seq = bpf_ntohl(tcp->seq);
	port = tcp->source;
	tcp->source = tcp->dest;
	tcp->dest = port;
	tcp->seq = 0;
	tcp->ack_seq = bpf_htonl(seq + 1);
	((__u16 *)tcp)[6] = 0;		/* doff, reserved bits and flags */
	tcp->doff = 5;
	tcp->rst = 1;
	tcp->ack = 1;
	tcp->window = 0;
	tcp->check = 0;
	tcp->urg_ptr = 0;

	if (pkt->family == 2) {
		struct iphdr *ip = pkt->l3;
		__be32 addr;

		if ((void *)(ip + 1) > data_end)
			return -1;
		addr = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = addr;
		ip->tot_len = bpf_htons(sizeof(*ip) + sizeof(*tcp));
		ip->id = 0;
		ip->frag_off = bpf_htons(0x4000);	/* DF */
		ip->ttl = 64;
		ip->check = 0;
		ip->check = sg_csum_fold(sg_csum_add(0, ip, sizeof(*ip) / 2));
		sum = sg_csum_add(sum, &ip->saddr, 4);
	} else {
		struct ipv6hdr *ip6 = pkt->l3;
		struct in6_addr addr;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		addr = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = addr;
		ip6->payload_len = bpf_htons(sizeof(*tcp));
		ip6->hop_limit = 64;
		sum = sg_csum_add(sum, &ip6->saddr, 16);
	}
	sum += bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(*tcp));
	sum = sg_csum_add(sum, tcp, sizeof(*tcp) / 2);
	tcp->check = sg_csum_fold(sum);
	return 0;
}

static __always_inline int sg_refuse(struct sg_pkt *pkt, void *data_end,
				     const struct sg_settings *cfg)
{
	if (cfg->refuse_mode == SG_REFUSE_RST && sg_make_rst(pkt, data_end) == 0) {
		sg_count(SG_STAT_RST_SENT);
		return SG_VERDICT_RST;
	}
	return SG_VERDICT_DROP;
}

static __always_inline int sg_malformed(const struct sg_settings *cfg)
{
	sg_count(SG_STAT_MALFORMED);
	if (cfg && cfg->malformed_mode == SG_MALFORMED_PASS)
		return SG_VERDICT_PASS;
	return SG_VERDICT_DROP;
}

static __always_inline int sg_steer_or_pass(const struct sg_policy *policy,
					    const struct sg_settings *cfg)
{
	return policy->action == SG_ACTION_SCAN && cfg->steer_mark ? SG_VERDICT_STEER :
								     SG_VERDICT_PASS;
}

/* Steer mode suspect: is this connection of a scan sender one for the
 * proxy? The proxy flagged the sender, it has used steer_soft_percent of
 * its connection burst (soft: see sg_bucket_soft), or the sample picked it. */
static __always_inline int sg_is_suspect(const struct sg_src_key *sender, int soft,
					 const struct sg_settings *cfg, __u64 now)
{
	const struct sg_src_feedback *fb = bpf_map_lookup_elem(&src_feedback, sender);

	if (fb && fb->suspect_until_ns > now)
		return 1;
	if (soft)
		return 1;
	return cfg->steer_sample && bpf_get_prandom_u32() % cfg->steer_sample == 0;
}

/* A scan SYN the rate let through: to the proxy, or (steer mode suspect,
 * nothing suspect) on along the kernel path. */
static __always_inline int sg_steer_syn(const struct sg_policy *policy,
					const struct sg_src_key *sender, int soft,
					const struct sg_settings *cfg, int lf_ok)
{
	if (policy->action != SG_ACTION_SCAN || !cfg->steer_mark)
		return SG_VERDICT_PASS;
	if (cfg->steer_mode == SG_STEER_SUSPECT &&
	    !sg_is_suspect(sender, soft, cfg, sg_now(lf_ok))) {
		sg_count(SG_STAT_FAST_PATH);
		return SG_VERDICT_PASS;
	}
	return SG_VERDICT_STEER;
}

/* The sender's SYN through its bucket (bucket.bpf.h). */
static __always_inline int sg_syn_bucket(const struct sg_src_key *sender, __u32 ifindex,
					 __u32 class_id, __u32 flags, int lf_ok)
{
	__u64 hi = ((const __u64 *)sender->addr)[0], lo = ((const __u64 *)sender->addr)[1];
	__u32 class_flags = (class_id & 0xffff) | flags << 16;

	if (lf_ok)
		return sg_bucket_lockfree(hi, lo, ifindex, sender->ifindex, class_flags);
	return sg_bucket_locked(hi, lo, ifindex, sender->ifindex, class_flags);
}

/* The whole decision for one frame; pkt is filled for the caller's RST send.
 * can_pull: the caller can bring more of the frame into view (TC).
 * lf_ok: the program may hold the lock-free bucket (see SG_LOCKFREE).
 * ifindex: the interface the frame came in on; source: sg_source_check()'s
 * answer for the frame, asked by the caller first thing. */
static __always_inline int sg_classify(void *data, void *data_end, struct sg_pkt *pkt,
				       int can_pull, int lf_ok, __u32 ifindex, int source)
{
	const struct sg_settings *cfg;
	struct sg_src_key sender;
	struct sg_policy policy;
	__u32 zero = 0, port_ifindex;
	int parsed, syn, rate;
	__u32 port_bit;

	parsed = sg_parse(data, data_end, pkt);
	if (parsed == SG_PARSE_NOT_TCP) {
		sg_count(SG_STAT_NON_SMTP);
		return SG_VERDICT_PASS;
	}
	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg)
		return SG_VERDICT_PASS;
	if (parsed == SG_PARSE_TRUNCATED && can_pull)
		return SG_VERDICT_RETRY;
	if (parsed != SG_PARSE_TCP)
		return sg_malformed(cfg);
	port_bit = sg_smtp_port_bit(cfg, bpf_ntohs(pkt->tcp->dest));
	if (!port_bit) {
		sg_count(SG_STAT_NON_SMTP);
		return SG_VERDICT_PASS;
	}
	if (pkt->tcp->doff < 5 || (__u32)pkt->tcp->doff * 4 > pkt->tcp_len)
		return sg_malformed(cfg);
	if (sg_pkt_source(pkt, data_end))
		return sg_malformed(cfg);
	/* an IPv6 source in ::ffff:0:0/96 would share an IPv4 source's state;
	 * the kernel's own IPv6 input refuses such packets anyway */
	if (pkt->family == 10 && sg_src_is_v4mapped(&pkt->src))
		return sg_malformed(cfg);
	/* the options doff announces must be in the frame as well */
	if ((void *)pkt->tcp + (__u32)pkt->tcp->doff * 4 > data_end) {
		if (can_pull)
			return SG_VERDICT_RETRY;
		return sg_malformed(cfg);
	}

	sg_count(SG_STAT_SMTP);
	syn = pkt->tcp->syn && !pkt->tcp->ack;
	if (syn)
		sg_count(SG_STAT_SMTP_SYN);
	/* before any state is touched: a source that is not the interface's */
	if (source & SG_SRC_SPOOFED) {
		sg_count(SG_STAT_SPOOFED);
		return SG_VERDICT_DROP;
	}
	/* the bridge port's ifindex, else 0 */
	port_ifindex = ifindex & (0u - (((__u32)source & SG_SRC_BRIDGE_PORT) >> 1));
	policy = sg_lookup_policy(pkt, cfg);
	/* implicit TLS (465): the proxy could not read a byte of it, so a scan
	 * source's flow stays in the kernel, counted and rate-limited */
	if (policy.action == SG_ACTION_SCAN && (port_bit & cfg->implicit_tls_ports))
		policy.action = SG_ACTION_PASSTHROUGH;

	switch (policy.action) {
	case SG_ACTION_EXEMPT:
		sg_count(SG_STAT_EXEMPT);
		return SG_VERDICT_PASS;
	case SG_ACTION_BLOCK:
		sg_count(SG_STAT_BLOCKED);
		if (!syn)
			return SG_VERDICT_DROP;
		sg_sender_key(pkt, cfg, port_ifindex, &sender);
		sg_syn_bucket(&sender, ifindex, policy.rate_class, SG_BUCKET_REFUSE, lf_ok);
		return sg_refuse(pkt, data_end, cfg);
	case SG_ACTION_PASSTHROUGH:
		sg_count(SG_STAT_PASSTHROUGH);
		break;
	default:
		sg_count(SG_STAT_SCAN);
		break;
	}
	if (!syn)
		return sg_steer_or_pass(&policy, cfg);

	sg_sender_key(pkt, cfg, port_ifindex, &sender);
	rate = sg_syn_bucket(&sender, ifindex, policy.rate_class, 0, lf_ok);
	switch (rate & ~SG_RATE_SOFT) {
	case SG_RATE_OVER:
	case SG_RATE_NO_STATE:	/* no room for its state: not let through unlimited */
		sg_count(SG_STAT_RATE_DROPPED);
		return sg_refuse(pkt, data_end, cfg);
	case SG_RATE_PENALISED:
		sg_count(SG_STAT_PENALTY_DROPPED);
		return sg_refuse(pkt, data_end, cfg);
	}
	/* one call site: the verifier walks its branches once */
	return sg_steer_syn(&policy, &sender, rate & SG_RATE_SOFT, cfg, lf_ok);
}

/*
 * The classifier as the body of a global function (each program object
 * defines its own, for its context type and bucket): verified once, apart
 * from what the program does with the verdict. Kernels before 6.4 stop
 * tracking precision (every scalar precise) when backtracking meets a call
 * into a subprogram, which the bucket and the source check are; inline,
 * the paths after those calls exceeded the verifier's budget on 6.1. The
 * verdict is returned with, for SG_VERDICT_STEER, where the IP and TCP
 * headers are (SG_VERDICT_*: bits 0-7, IP header offset: 8-15, TCP header
 * offset: 16-31), so that the caller's steering holds no value from before
 * the call.
 */
#define SG_VERDICT_OF(ret)	((ret) & 0xff)
#define SG_VERDICT_L3(ret)	(((__u32)(ret) >> 8) & 0xff)
#define SG_VERDICT_L4(ret)	(((__u32)(ret) >> 16) & 0xffff)

static __always_inline int sg_classify_ctx(SG_CTX_TYPE *ctx, __u32 can_pull, int lf_ok)
{
	/* first: see sg_source_check */
	int source = sg_source_check(ctx);
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct sg_pkt pkt = {};
	int verdict;

	verdict = sg_classify(data, data_end, &pkt, can_pull, lf_ok, SG_CTX_IFINDEX(ctx), source);
	if (verdict != SG_VERDICT_STEER)
		return verdict;
	return verdict | (int)((__u32)((void *)pkt.l3 - data) << 8) |
	       (int)((__u32)((void *)pkt.tcp - data) << 16);
}

/* The sg_pkt of a frame whose IP and TCP headers the classifier located at
 * l3_off and l4_off (SG_VERDICT_L3, SG_VERDICT_L4). 0, or -1 if the frame
 * does not hold them. */
static __always_inline int sg_pkt_at(void *data, void *data_end, __u32 l3_off, __u32 l4_off,
				     struct sg_pkt *pkt)
{
	struct tcphdr *tcp;
	__u8 *l3;

	if (data + sizeof(struct ethhdr) > data_end)
		return -1;
	/* bounded where they are used (the headers lie within the first
	 * SG_PULL_BYTES), so that the verifier knows the pointers' range */
	l3_off &= 0x3f;
	l4_off &= 0x3ff;
	l3 = data + l3_off;
	tcp = data + l4_off;
	/* opaque to the compiler: later uses take these (checked) pointers,
	 * not data + offset made anew, which the verifier knows nothing of */
	asm volatile("" : "+r"(l3), "+r"(tcp));
	if ((void *)(tcp + 1) > data_end || (void *)(l3 + 1) > data_end)
		return -1;
	pkt->eth = data;
	pkt->l3 = l3;
	pkt->tcp = tcp;
	if (*l3 >> 4 == 4) {
		struct iphdr *ip = (void *)l3;
		__u32 tot;

		if ((void *)(ip + 1) > data_end)
			return -1;
		tot = bpf_ntohs(ip->tot_len);
		pkt->family = 2;
		pkt->plain_l3 = ip->ihl == 5 && l4_off == l3_off + sizeof(*ip);
		pkt->tcp_len = tot && tot > l4_off - l3_off ? tot - (l4_off - l3_off) :
							      SG_TCP_LEN_UNKNOWN;
	} else {
		struct ipv6hdr *ip6 = (void *)l3;
		__u32 payload, ext;

		if ((void *)(ip6 + 1) > data_end || l4_off < l3_off + sizeof(*ip6))
			return -1;
		payload = bpf_ntohs(ip6->payload_len);
		ext = l4_off - l3_off - sizeof(*ip6);
		pkt->family = 10;
		pkt->plain_l3 = !ext;
		pkt->tcp_len = payload && payload > ext ? payload - ext : SG_TCP_LEN_UNKNOWN;
	}
	return 0;
}

#endif /* SMTPGUARD_CLASSIFY_BPF_H */
