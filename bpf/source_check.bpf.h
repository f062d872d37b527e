/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * source_check.bpf.h - does an SMTP packet's source address belong to the
 * interface it came in on (source_check)? The classifier runs at a tap's
 * ingress, before any firewall and before rp_filter, and keys its state on
 * the source: a VM sending with a neighbour's address would spend the
 * neighbour's bucket, and one sending from random addresses would fill the
 * per-source table. So before any state is touched:
 *  - route: the route back to the source (bpf_fib_lookup, as an input
 *    lookup from the interface, as rp_filter does it) must leave by that
 *    interface; on a bridge port, by its bridge (routes point at the bridge,
 *    which tells only that the source is somewhere behind it);
 *  - bound: the source must lie in a prefix bound to that interface
 *    (source_bindings), or, when none is configured for it, be one of the
 *    first source_learn addresses it used (learned; an address bound to
 *    another interface is refused, configured or learned);
 *  - auto: route everywhere, and bound too on bridge ports;
 * on a macvtap (seen at TC egress) only bound applies: its frames leave by
 * the lower device without the host's routing, so route cannot tell.
 * A lookup that cannot decide (forwarding off on the interface, an
 * encapsulating route, a VLAN-tagged frame whose route is the VLAN device)
 * passes: the check refuses only what it knows is not the interface's.
 *
 * It runs as a global function, sg_source_check, verified once apart from
 * the classifier (the TC program is close to the verifier's budget on
 * older kernels). Its context type is the including object's SG_CTX_TYPE
 * (struct __sk_buff or struct xdp_md, SG_CTX_IFINDEX reads the interface),
 * so that bpf_fib_lookup gets a context. Included by classify.bpf.h, after
 * sg_count and sg_smtp_port_bit.
 */
#ifndef SMTPGUARD_SOURCE_CHECK_BPF_H
#define SMTPGUARD_SOURCE_CHECK_BPF_H

#include "maps.bpf.h"
#include <linux/if_ether.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/* sg_source_verdict's answer, bits */
#define SG_SRC_SPOOFED		1	/* drop: not this interface's source */
#define SG_SRC_BRIDGE_PORT	2	/* the interface is a bridge port, or a
					 * macvtap: VMs that share a segment */

/* what sg_source_verdict is told of the frame, bits */
#define SG_SRC_META_SYN		1	/* a connection attempt: keeps a learned entry alive */
#define SG_SRC_META_V6		2	/* an IPv6 source (else IPv4-mapped) */
#define SG_SRC_META_VLAN	4	/* the frame carried a VLAN tag */

/* 1: the route back to src leaves by ifindex (or its bridge), or the
 * lookup cannot tell; 0: it leaves elsewhere or there is none. */
static __always_inline int sg_route_ok(void *ctx, const __u64 *src, __u32 meta,
				       __u32 ifindex, __u32 bridge_ifindex)
{
	struct bpf_fib_lookup fib = {};
	__u32 via = bridge_ifindex ? bridge_ifindex : ifindex;
	long rc;

	/* a bridge port's frames enter the host's stack on the bridge */
	fib.ifindex = via;
	if (meta & SG_SRC_META_V6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_dst, src, 16);
	} else {
		fib.family = AF_INET;
		__builtin_memcpy(&fib.ipv4_dst, (const __u8 *)src + 12, 4);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
	case BPF_FIB_LKUP_RET_NO_NEIGH:		/* the egress device is known */
	case BPF_FIB_LKUP_RET_FRAG_NEEDED:
		/* a VLAN-tagged frame's route is the VLAN device on top */
		return fib.ifindex == via || (meta & SG_SRC_META_VLAN);
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
	case BPF_FIB_LKUP_RET_NOT_FWDED:	/* a local, broadcast or link-local source */
		return 0;
	}
	return 1;	/* forwarding off, an encapsulating route, an error */
}

static __always_inline struct sg_iface_state *sg_iface(__u32 ifindex)
{
	struct sg_iface_state *is = bpf_map_lookup_elem(&iface_state, &ifindex);

	if (is)
		return is;
	{
		struct sg_iface_state fresh = {};

		bpf_map_update_elem(&iface_state, &ifindex, &fresh, BPF_NOEXIST);
	}
	return bpf_map_lookup_elem(&iface_state, &ifindex);
}

/* 1: src is bound to ifindex (configured, learned before, or learned now). */
static __always_inline int sg_bound_ok(const __u64 *src, __u32 meta, __u32 ifindex,
				       const struct sg_attachment *port,
				       const struct sg_settings *cfg)
{
	struct sg_lpm_v6_key key = { .prefixlen = 128 };
	struct sg_iface_state *is;
	struct sg_bound *b, fresh = {};
	__u64 now;

	__builtin_memcpy(key.addr, src, 16);
	b = bpf_map_lookup_elem(&src_bound, &key);
	if (b) {
		if (b->ifindex != ifindex)
			return 0;
		if (b->learned && (meta & SG_SRC_META_SYN))
			b->last_seen_ns = bpf_ktime_get_ns();
		return 1;
	}
	/* an interface whose sources are configured learns none; any SMTP
	 * packet may teach the others (a session already open when the check
	 * began goes on) */
	if (port && port->bound_configured)
		return 0;
	is = sg_iface(ifindex);
	if (!is || is->learned >= cfg->source_learn)
		return 0;
	now = bpf_ktime_get_ns();
	fresh.ifindex = ifindex;
	fresh.learned = 1;
	fresh.last_seen_ns = now;
	/* another CPU may have learned it meanwhile, for this interface or
	 * another: the entry that is there decides */
	if (bpf_map_update_elem(&src_bound, &key, &fresh, BPF_NOEXIST) == 0) {
		__sync_fetch_and_add(&is->learned, 1);
		sg_count(SG_STAT_LEARNED);
		return 1;
	}
	b = bpf_map_lookup_elem(&src_bound, &key);
	return b && b->ifindex == ifindex;
}

/* The whole check for one packet; src: the source as in sg_src_key (two
 * words, network byte order), meta: SG_SRC_META_* bits. */
static __always_inline int sg_source_verdict(void *ctx, __u64 src_hi, __u64 src_lo,
					     __u32 ifindex, __u32 meta)
{
	const struct sg_attachment *port = bpf_map_lookup_elem(&attachments, &ifindex);
	const struct sg_settings *cfg;
	__u64 src[2] = { src_hi, src_lo };
	/* a macvtap's frames leave by its lower device without the host's
	 * routing: no route tells whose they are, and its VMs share a segment
	 * as a bridge's ports do */
	int macvtap = port && port->mode == SG_ATTACH_TC_EGRESS;
	int bridge_port = port && (port->bridge_port || macvtap), ok = 1;
	struct sg_iface_state *is;
	__u32 zero = 0, mode;

	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg)
		return 0;
	mode = cfg->source_check;
	if ((mode == SG_SOURCE_CHECK_ROUTE || mode == SG_SOURCE_CHECK_AUTO) && !macvtap)
		ok = sg_route_ok(ctx, src, meta, ifindex,
				 bridge_port && port ? port->bridge_ifindex : 0);
	if (ok && (mode == SG_SOURCE_CHECK_BOUND ||
		   (mode == SG_SOURCE_CHECK_AUTO && bridge_port)))
		ok = sg_bound_ok(src, meta, ifindex, port, cfg);
	if (ok)
		return bridge_port ? SG_SRC_BRIDGE_PORT : 0;
	is = sg_iface(ifindex);
	if (is)
		__sync_fetch_and_add(&is->spoofed, 1);
	return SG_SRC_SPOOFED | (bridge_port ? SG_SRC_BRIDGE_PORT : 0);
}

/*
 * The frame's check, the program's first act: 0 for a frame that is not
 * SMTP (or not parsed here: the classifier says what it is), else
 * SG_SRC_* bits. It parses the frame itself (sg_parse, verified once here)
 * and is called before the classifier's own parse, so that no value the
 * classifier branches on is older than the call: kernels before 6.4 stop
 * tracking precision (every scalar precise) when backtracking meets a call
 * into a subprogram, and the classifier's paths would then exceed the
 * verifier's budget.
 */
__attribute__((noinline)) int sg_source_check(SG_CTX_TYPE *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	const struct sg_settings *cfg;
	struct sg_pkt pkt = {};
	__u32 zero = 0, meta = 0;
	__u64 src_hi, src_lo;

	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg || cfg->source_check == SG_SOURCE_CHECK_OFF) {
		/* no check; a bridge port still keys IPv6 senders by the port */
		__u32 ifindex = SG_CTX_IFINDEX(ctx);
		const struct sg_attachment *port = bpf_map_lookup_elem(&attachments, &ifindex);

		return port && (port->bridge_port || port->mode == SG_ATTACH_TC_EGRESS) ?
			       SG_SRC_BRIDGE_PORT : 0;
	}
	if (sg_parse(data, data_end, &pkt) != SG_PARSE_TCP ||
	    !sg_smtp_port_bit(cfg, bpf_ntohs(pkt.tcp->dest)) || sg_pkt_source(&pkt, data_end))
		return 0;
	if (pkt.tcp->syn && !pkt.tcp->ack)
		meta |= SG_SRC_META_SYN;
	if (pkt.family == 10)
		meta |= SG_SRC_META_V6;
	if ((void *)pkt.l3 != data + sizeof(struct ethhdr))
		meta |= SG_SRC_META_VLAN;
	__builtin_memcpy(&src_hi, pkt.src.addr, 8);
	__builtin_memcpy(&src_lo, pkt.src.addr + 8, 8);
	return sg_source_verdict(ctx, src_hi, src_lo, SG_CTX_IFINDEX(ctx), meta);
}

#endif /* SMTPGUARD_SOURCE_CHECK_BPF_H */
