/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * steer.bpf.h - hands the flows the classifier chose for scanning to the
 * userspace proxy, at TC ingress (XDP cannot assign sockets):
 *  - a packet of a flow the proxy already holds (its accepted socket, a
 *    request socket, or on the uplink its upstream socket) goes to that
 *    socket, found with bpf_skc_lookup_tcp;
 *  - a new connection's SYN goes to a worker's transparent listener from the
 *    listeners SOCKMAP, chosen by flow hash;
 *  - no listener registered: the fail mode (open: route untouched; closed:
 *    an RST).
 * A frame assigned to a socket ends the filter chain (TC_ACT_OK); one left
 * alone goes on to the filters after ours (TC_ACT_UNSPEC).
 * bpf_sk_assign does not bypass routing: the mark makes the daemon's policy
 * routing rule deliver the (non-local) destination locally.
 */
#ifndef SMTPGUARD_STEER_BPF_H
#define SMTPGUARD_STEER_BPF_H

#include "classify.bpf.h"
#include <linux/pkt_cls.h>

/* The socket this host holds for the packet's flow, if any (not a listener:
 * a wildcard listener of the host itself is not ours to hand packets to; not
 * a TIME_WAIT). */
static __always_inline struct bpf_sock *sg_flow_socket(struct __sk_buff *skb,
						       const struct sg_pkt *pkt,
						       void *data_end)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	__u32 len;

	if ((void *)(pkt->tcp + 1) > data_end)
		return NULL;
	if (pkt->family == 2) {
		struct iphdr *ip = pkt->l3;

		if ((void *)(ip + 1) > data_end)
			return NULL;
		tuple.ipv4.saddr = ip->saddr;
		tuple.ipv4.daddr = ip->daddr;
		tuple.ipv4.sport = pkt->tcp->source;
		tuple.ipv4.dport = pkt->tcp->dest;
		len = sizeof(tuple.ipv4);
	} else {
		struct ipv6hdr *ip6 = pkt->l3;

		if ((void *)(ip6 + 1) > data_end)
			return NULL;
		__builtin_memcpy(tuple.ipv6.saddr, &ip6->saddr, 16);
		__builtin_memcpy(tuple.ipv6.daddr, &ip6->daddr, 16);
		tuple.ipv6.sport = pkt->tcp->source;
		tuple.ipv6.dport = pkt->tcp->dest;
		len = sizeof(tuple.ipv6);
	}
	sk = bpf_skc_lookup_tcp(skb, &tuple, len, BPF_F_CURRENT_NETNS, 0);
	/* A TIME_WAIT left by an ended proxied session is not a live flow: the
	 * VM may reuse the 4-tuple for a new connection, proxied (its SYN must
	 * reach a listener) or not (the MX's answers must reach the VM). */
	if (sk && (sk->state == BPF_TCP_LISTEN || sk->state == BPF_TCP_TIME_WAIT)) {
		bpf_sk_release(sk);
		return NULL;
	}
	return sk;
}

static __always_inline int sg_assign(struct __sk_buff *skb, struct bpf_sock *sk,
				     const struct sg_settings *cfg)
{
	const struct sg_attachment *port;
	__u32 ifindex = skb->ifindex;
	int err;

	/* on a bridge port the frame must be the bridge's own, or the bridge
	 * forwards it at layer 2 with the socket assigned: readdressed first,
	 * and not steered at all if that fails */
	port = bpf_map_lookup_elem(&attachments, &ifindex);
	if (port && port->bridge_port && bpf_skb_store_bytes(skb, 0, port->local_mac, 6, 0)) {
		bpf_sk_release(sk);
		return TC_ACT_UNSPEC;
	}
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	if (err)
		return TC_ACT_UNSPEC;	/* not assignable: the route decides */
	skb->mark = cfg->steer_mark;
	return TC_ACT_OK;
}

/* The listener of the worker this flow hashes to (IPv4 in slot 2*w, IPv6
 * in 2*w+1): the same for every packet of the flow, and for a SYN seen
 * again on the bridge. */
static __always_inline struct bpf_sock *sg_listener(struct __sk_buff *skb,
						    const struct sg_settings *cfg, int family)
{
	__u32 slot = 2 * (bpf_get_hash_recalc(skb) % cfg->n_workers) + (family == 10);

	return bpf_map_lookup_elem(&listeners, &slot);
}

/* A SYN steered from a bridge port, if IPv6: its sender is (port,
 * prefix), which the proxy cannot tell from its socket (the session enters
 * the host's stack on the bridge). The flow is noted with the sender's key
 * for the proxy to read when it accepts. A global function, like the
 * source check: l3_off and l4_off locate the IP and TCP headers. */
__attribute__((noinline)) int sg_note_flow_sender(struct __sk_buff *skb, __u32 l3_off,
						  __u32 l4_off)
{
	struct sg_flow_key flow = {};
	struct sg_src_key sender = {};
	const struct sg_attachment *port;
	const struct sg_settings *cfg;
	__u32 ifindex = skb->ifindex, zero = 0;
	__u8 version;

	port = bpf_map_lookup_elem(&attachments, &ifindex);
	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!port || !port->bridge_port || !cfg || l3_off > 256 || l4_off > 512)
		return 0;
	/* saddr and daddr, then sport and dport, lie side by side in the
	 * headers as in the key */
	if (bpf_skb_load_bytes(skb, l3_off, &version, 1) || version >> 4 != 6 ||
	    bpf_skb_load_bytes(skb, l3_off + 8, flow.saddr, 32) ||
	    bpf_skb_load_bytes(skb, l4_off, &flow.sport, 4))
		return 0;
	__builtin_memcpy(sender.addr, flow.saddr, 16);
	sg_v6_sender(&sender, cfg, ifindex);
	bpf_map_update_elem(&flow_sender, &flow, &sender, BPF_ANY);
	return 0;
}

/* A scan flow's packet from a VM. */
/* A global function, so that its stack is not the TC program's own, which
 * the classifier's calls add to (kernels check 512 bytes over a chain of
 * calls). */
__attribute__((noinline)) int sg_steer_from_vm(struct __sk_buff *skb, __u32 l3_off,
					       __u32 l4_off)
{
	void *data_end = (void *)(long)skb->data_end;
	const struct sg_settings *cfg;
	struct sg_pkt frame = {}, *pkt = &frame;
	struct bpf_sock *sk;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg || !cfg->n_workers)
		return TC_ACT_UNSPEC;
	if (sg_pkt_at((void *)(long)skb->data, data_end, l3_off, l4_off, pkt))
		return TC_ACT_UNSPEC;
	sk = sg_flow_socket(skb, pkt, data_end);
	if (sk)
		return sg_assign(skb, sk, cfg);
	if ((void *)(pkt->tcp + 1) > data_end || !pkt->tcp->syn || pkt->tcp->ack)
		return TC_ACT_UNSPEC;	/* not ours: a flow that began before the proxy */

	sk = sg_listener(skb, cfg, pkt->family);
	if (sk) {
		int ret;

		sg_count(SG_STAT_STEERED);
		ret = sg_assign(skb, sk, cfg);
		/* last: nothing after the call branches (see sg_source_check) */
		sg_note_flow_sender(skb, l3_off, l4_off);
		return ret;
	}
	if (cfg->fail_mode == SG_FAIL_CLOSED) {
		sg_count(SG_STAT_FAIL_CLOSED);
		if (sg_make_rst(pkt, data_end) == 0) {
			sg_count(SG_STAT_RST_SENT);
			return bpf_redirect(skb->ifindex, 0);
		}
		return TC_ACT_SHOT;
	}
	sg_count(SG_STAT_FAIL_OPEN);
	return TC_ACT_UNSPEC;
}

/* A scan flow's packet at TC egress of a macvtap (SG_ATTACH_TC_EGRESS):
 * bpf_sk_assign works at ingress only, so the proxy cannot take it; a
 * connection attempt is what having no listener makes of it, the fail
 * mode's (counted as such). An RST goes back to the VM through the
 * macvtap's own receive path (its ingress). A global function, as
 * sg_steer_from_vm. */
__attribute__((noinline)) int sg_steer_at_egress(struct __sk_buff *skb, __u32 l3_off,
						 __u32 l4_off)
{
	void *data_end = (void *)(long)skb->data_end;
	const struct sg_settings *cfg;
	struct sg_pkt frame = {}, *pkt = &frame;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg)
		return TC_ACT_UNSPEC;
	if (sg_pkt_at((void *)(long)skb->data, data_end, l3_off, l4_off, pkt))
		return TC_ACT_UNSPEC;
	if ((void *)(pkt->tcp + 1) > data_end || !pkt->tcp->syn || pkt->tcp->ack)
		return TC_ACT_UNSPEC;
	if (cfg->fail_mode == SG_FAIL_CLOSED) {
		sg_count(SG_STAT_FAIL_CLOSED);
		if (sg_make_rst(pkt, data_end) == 0) {
			sg_count(SG_STAT_RST_SENT);
			return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
		}
		return TC_ACT_SHOT;
	}
	sg_count(SG_STAT_FAIL_OPEN);
	return TC_ACT_UNSPEC;
}

/* A packet arriving on the uplink: an MX's reply to one of the proxy's
 * upstream sockets goes to that socket. Everything else passes. */
static __always_inline int sg_steer_from_uplink(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	const struct sg_settings *cfg;
	struct sg_pkt pkt = {};
	struct bpf_sock *sk;
	__u32 zero = 0;

	if (sg_parse(data, data_end, &pkt) != SG_PARSE_TCP)
		return TC_ACT_UNSPEC;
	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg || !cfg->steer_mark || !sg_smtp_port_bit(cfg, bpf_ntohs(pkt.tcp->source)))
		return TC_ACT_UNSPEC;
	sk = sg_flow_socket(skb, &pkt, data_end);
	if (!sk)
		return TC_ACT_UNSPEC;
	sg_count(SG_STAT_UPLINK_STEERED);
	return sg_assign(skb, sk, cfg);
}

/*
 * TC ingress on a bridge whose ports are ours. With br_netfilter on, the
 * socket a port's program assigned is gone by the time the bridge passes
 * the frame up to the host's stack (the local TCP lookup finds no listener
 * and answers RST). The frame arrives here still marked: it is assigned
 * again, to the same socket (its flow's, or for a SYN the same worker's
 * listener: the same flow hash). Unmarked frames are not ours.
 */
static __always_inline int sg_steer_on_bridge(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	const struct sg_settings *cfg;
	struct sg_pkt pkt = {};
	struct bpf_sock *sk;
	__u32 zero = 0;
	int err, syn;

	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg || !cfg->steer_mark || skb->mark != cfg->steer_mark || !cfg->n_workers)
		return TC_ACT_UNSPEC;
	if (sg_parse(data, data_end, &pkt) != SG_PARSE_TCP || (void *)(pkt.tcp + 1) > data_end)
		return TC_ACT_UNSPEC;
	syn = pkt.tcp->syn && !pkt.tcp->ack;
	sk = sg_flow_socket(skb, &pkt, data_end);
	if (!sk) {
		if (!syn)
			return TC_ACT_UNSPEC;
		sk = sg_listener(skb, cfg, pkt.family);
		if (!sk)
			return TC_ACT_UNSPEC;
	}
	err = bpf_sk_assign(skb, sk, 0);
	bpf_sk_release(sk);
	(void)err;	/* not assignable: the mark's route still delivers it locally */
	return TC_ACT_OK;
}

#endif /* SMTPGUARD_STEER_BPF_H */
