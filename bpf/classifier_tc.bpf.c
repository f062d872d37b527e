/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* classifier_tc.bpf.c - the classifier at TC ingress on a VM-facing interface.
 * smtpguard_tc runs either bucket (sg_lockfree_bucket); kernels before 5.12
 * load smtpguard_tc_locked instead, which holds no lock-free code. */
#define SG_CTX_TYPE struct __sk_buff
#include "steer.bpf.h"

/* Headers a frame may need in the linear area: two VLAN tags, IPv6 with a
 * few extension headers, a full TCP header. */
#define SG_PULL_BYTES 256

static __always_inline int sg_tc(struct __sk_buff *skb, int lf_ok)
{
	struct sg_pkt pkt = {};
	int verdict;

	verdict = sg_classify(skb, (void *)(long)skb->data, (void *)(long)skb->data_end, &pkt,
			      1, lf_ok, skb->ifindex);
	if (verdict == SG_VERDICT_RETRY) {
		/* Headers may sit beyond the linear part (GSO frames from taps). */
		__u32 want = skb->len < SG_PULL_BYTES ? skb->len : SG_PULL_BYTES;

		bpf_skb_pull_data(skb, want);
		verdict = sg_classify(skb, (void *)(long)skb->data,
				      (void *)(long)skb->data_end, &pkt, 0, lf_ok, skb->ifindex);
	}
	switch (verdict) {
	case SG_VERDICT_DROP:
		return TC_ACT_SHOT;
	case SG_VERDICT_RST:
		return bpf_redirect(skb->ifindex, 0);
	case SG_VERDICT_STEER:
		return sg_steer_from_vm(skb, &pkt);
	}
	return TC_ACT_OK;
}

SEC("tc")
int smtpguard_tc(struct __sk_buff *skb)
{
	return sg_tc(skb, 1);
}

SEC("tc")
int smtpguard_tc_locked(struct __sk_buff *skb)
{
	return sg_tc(skb, 0);
}

/* TC ingress on the uplink: the MX's replies to the proxy's upstream sockets. */
SEC("tc")
int smtpguard_uplink(struct __sk_buff *skb)
{
	return sg_steer_from_uplink(skb);
}

/* TC ingress on a bridge whose ports are ours: see sg_steer_on_bridge. */
SEC("tc")
int smtpguard_bridge(struct __sk_buff *skb)
{
	return sg_steer_on_bridge(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
